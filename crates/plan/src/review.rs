//! Tracking what an edit does to cited sentences: a reviewer may rewrite anything, but a
//! cited claim that disappears or changes wording is recorded with the version, so the
//! accepted text never silently loses or alters what its sources were checked against.

use std::collections::HashSet;

use doctrina_draft::record::SentenceRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A cited sentence is gone.
    Removed,
    /// A cited sentence was reworded or its citations changed.
    Changed,
    /// A new cited sentence (its citations are checked like the model's).
    Added,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitationChange {
    pub kind: ChangeKind,
    /// The sentence before the edit (`None` for `added`).
    pub before: Option<String>,
    /// The sentence after the edit (`None` for `removed`).
    pub after: Option<String>,
    pub citations_before: Vec<usize>,
    pub citations_after: Vec<usize>,
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count() as f32;
    inter / (a.len() + b.len()) as f32 * 2.0
}

/// Sentences at least this similar (Dice over words) are the same sentence reworded.
const SAME_SENTENCE: f32 = 0.5;

fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cited sentences `after` removed, changed or added relative to `before`.
pub fn track_changes(before: &[SentenceRecord], after: &[SentenceRecord]) -> Vec<CitationChange> {
    let mut changes = Vec::new();
    let mut matched_after = vec![false; after.len()];
    // Unchanged sentences first, so a reworded copy cannot steal their match.
    let mut unmatched_before = Vec::new();
    for b in before {
        let exact = after.iter().enumerate().position(|(j, a)| {
            !matched_after[j]
                && normalised(&a.text) == normalised(&b.text)
                && a.citations == b.citations
        });
        match exact {
            Some(j) => matched_after[j] = true,
            None => unmatched_before.push(b),
        }
    }
    for b in unmatched_before {
        let b_words = words(&b.text);
        let best = after
            .iter()
            .enumerate()
            .filter(|(j, _)| !matched_after[*j])
            .map(|(j, a)| (j, jaccard(&b_words, &words(&a.text))))
            .filter(|(_, sim)| *sim >= SAME_SENTENCE)
            .max_by(|x, y| x.1.total_cmp(&y.1));
        match best {
            Some((j, _)) => {
                matched_after[j] = true;
                let a = &after[j];
                if !b.citations.is_empty() || !a.citations.is_empty() {
                    changes.push(CitationChange {
                        kind: ChangeKind::Changed,
                        before: Some(b.text.clone()),
                        after: Some(a.text.clone()),
                        citations_before: b.citations.clone(),
                        citations_after: a.citations.clone(),
                    });
                }
            }
            None if !b.citations.is_empty() => changes.push(CitationChange {
                kind: ChangeKind::Removed,
                before: Some(b.text.clone()),
                after: None,
                citations_before: b.citations.clone(),
                citations_after: Vec::new(),
            }),
            None => {}
        }
    }
    for (j, a) in after.iter().enumerate() {
        if !matched_after[j] && !a.citations.is_empty() {
            changes.push(CitationChange {
                kind: ChangeKind::Added,
                before: None,
                after: Some(a.text.clone()),
                citations_before: Vec::new(),
                citations_after: a.citations.clone(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use doctrina_draft::support::{Features, Support};

    use super::*;

    fn sentence(text: &str, citations: &[usize]) -> SentenceRecord {
        SentenceRecord {
            text: text.to_string(),
            citations: citations.to_vec(),
            refs: Vec::new(),
            invalid_refs: Vec::new(),
            support: Support::Supported,
            score: 1.0,
            features: Features::default(),
            evidence: None,
            cited_spans: Vec::new(),
            basis: Default::default(),
            check: None,
            judgement: None,
        }
    }

    #[test]
    fn unchanged_text_has_no_changes() {
        let v = vec![
            sentence("Fuel is pushed forward nightly [1].", &[1]),
            sentence("Plain sentence.", &[]),
        ];
        assert!(track_changes(&v, &v).is_empty());
    }

    #[test]
    fn removed_changed_and_added_cited_sentences_are_tracked() {
        let before = vec![
            sentence("Fuel is pushed forward nightly from the BSA [1].", &[1]),
            sentence("Ammunition is throughput to the FLE [2].", &[2]),
            sentence("Uncited filler.", &[]),
        ];
        let after = vec![
            sentence("Fuel is pushed forward every night from the BSA [1].", &[1]),
            sentence(
                "Water is delivered by the forward support company [3].",
                &[3],
            ),
        ];
        let changes = track_changes(&before, &after);
        let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![ChangeKind::Changed, ChangeKind::Removed, ChangeKind::Added],
            "{changes:#?}"
        );
        assert_eq!(changes[1].citations_before, vec![2]);
    }

    #[test]
    fn a_dropped_citation_is_a_change() {
        let before = vec![sentence("Fuel is pushed forward nightly [1].", &[1])];
        let after = vec![sentence("Fuel is pushed forward nightly.", &[])];
        let changes = track_changes(&before, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Changed);
        assert!(changes[0].citations_after.is_empty());
    }
}
