//! The citation support check measured on labelled claim/passage pairs
//! (`corpus/eval/support_pairs*.jsonl`): `doctrina eval support`. Each pair is judged by the
//! local support check (or the inference server) and compared with its label, overall, by
//! calibration/test split, by language and by kind of alteration (changed number, negation,
//! paraphrase, ...).

use std::collections::BTreeMap;
use std::path::Path;

use doctrina_draft::inference::{ChatModel, Message};
use doctrina_draft::support::{
    Features, Support, SupportChecker, accuracy, label_slot, precision_recall,
};
use serde::{Deserialize, Serialize};

use crate::EvalError;

type Result<T> = std::result::Result<T, EvalError>;

/// One labelled pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupportPair {
    pub id: String,
    pub sentence: String,
    #[serde(default)]
    pub passage_ref: String,
    pub passage: String,
    pub label: String,
    /// What was done to the sentence (`paraphrase`, `changed_number`, `negation`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// `calibration` or `test`.
    #[serde(default)]
    pub split: Option<String>,
}

/// Reads pairs from JSONL files (every bad line named).
pub fn load_pairs(paths: &[&Path]) -> Result<Vec<SupportPair>> {
    let mut pairs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let pair: SupportPair = serde_json::from_str(line).map_err(|e| EvalError::Format {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if Support::parse(&pair.label).is_none_or(|l| l == Support::Uncited) {
                return Err(EvalError::Format {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: format!(
                        "label '{}' is not supported, weak or unsupported",
                        pair.label
                    ),
                });
            }
            pairs.push(pair);
        }
    }
    Ok(pairs)
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LabelFigures {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Pairs with this gold label.
    pub n: usize,
}

/// Agreement with the labels over a set of pairs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub pairs: usize,
    pub accuracy: f64,
    pub supported: LabelFigures,
    pub weak: LabelFigures,
    pub unsupported: LabelFigures,
    /// `confusion[gold][predicted]` over supported, weak, unsupported.
    pub confusion: [[usize; 3]; 3],
    /// False claims (gold `unsupported`) shown as `supported`: the costly error.
    pub false_supported: usize,
}

/// The summary of `(gold, predicted)` labels.
pub fn summarise(labels: &[(Support, Support)]) -> Summary {
    let mut confusion = [[0usize; 3]; 3];
    for (gold, predicted) in labels {
        confusion[label_slot(*gold)][label_slot(*predicted)] += 1;
    }
    let figures = |c: usize| {
        let pr = precision_recall(&confusion, c);
        LabelFigures {
            precision: pr.precision,
            recall: pr.recall,
            f1: pr.f1,
            n: confusion[c].iter().sum(),
        }
    };
    Summary {
        pairs: labels.len(),
        accuracy: accuracy(&confusion),
        supported: figures(0),
        weak: figures(1),
        unsupported: figures(2),
        confusion,
        false_supported: confusion[2][0],
    }
}

/// One pair's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    pub id: String,
    pub label: String,
    pub predicted: String,
    pub kind: Option<String>,
    pub lang: Option<String>,
    pub split: Option<String>,
    /// The support check's features and score (none for the LLM judge).
    pub features: Option<Features>,
    pub score: Option<f32>,
    /// The judge's answer could not be read (counted as `unsupported`).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupportReport {
    pub judge: String,
    pub pairs: usize,
    pub overall: Summary,
    /// By `split` (`calibration`, `test`; `-` for pairs without one).
    pub by_split: BTreeMap<String, Summary>,
    pub by_lang: BTreeMap<String, Summary>,
    /// By kind of alteration: how often each is labelled right.
    pub by_kind: BTreeMap<String, Summary>,
    pub per_pair: Vec<PairResult>,
}

fn group(
    results: &[PairResult],
    key: impl Fn(&PairResult) -> Option<String>,
) -> BTreeMap<String, Summary> {
    let mut groups: BTreeMap<String, Vec<(Support, Support)>> = BTreeMap::new();
    for r in results {
        let (Some(gold), Some(predicted)) =
            (Support::parse(&r.label), Support::parse(&r.predicted))
        else {
            continue;
        };
        groups
            .entry(key(r).unwrap_or_else(|| "-".to_string()))
            .or_default()
            .push((gold, predicted));
    }
    groups
        .into_iter()
        .map(|(k, labels)| (k, summarise(&labels)))
        .collect()
}

fn report(judge: &str, results: Vec<PairResult>) -> SupportReport {
    let labels: Vec<(Support, Support)> = results
        .iter()
        .filter_map(|r| Some((Support::parse(&r.label)?, Support::parse(&r.predicted)?)))
        .collect();
    SupportReport {
        judge: judge.to_string(),
        pairs: results.len(),
        overall: summarise(&labels),
        by_split: group(&results, |r| r.split.clone()),
        by_lang: group(&results, |r| r.lang.clone()),
        by_kind: group(&results, |r| r.kind.clone()),
        per_pair: results,
    }
}

/// Judges every pair with the local support check.
pub fn with_support_check(
    checker: &SupportChecker,
    pairs: &[SupportPair],
) -> Result<SupportReport> {
    let mut results = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let verdict = checker
            .check(&pair.sentence, &[pair.passage.as_str()])
            .map_err(|e| EvalError::Draft(e.into()))?;
        results.push(PairResult {
            id: pair.id.clone(),
            label: pair.label.clone(),
            predicted: verdict.support.as_str().to_string(),
            kind: pair.kind.clone(),
            lang: pair.lang.clone(),
            split: pair.split.clone(),
            features: Some(verdict.features),
            score: Some(verdict.score),
            error: None,
        });
    }
    Ok(report("support-check", results))
}

const JUDGE_INSTRUCTIONS: &str = "You check one citation. Decide whether the passage supports \
    the statement (the statement may be in Korean and the passage in English). Answer with one \
    word: SUPPORTS if the passage states everything the statement claims, PARTLY if it states \
    only part of it, NO if it contradicts it or does not say it.";

/// The three-way label in a judge's answer (its first word).
pub fn parse_label(answer: &str) -> Option<Support> {
    let word: String = answer
        .split_whitespace()
        .next()?
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<String>()
        .to_uppercase();
    match word.as_str() {
        "SUPPORTS" | "SUPPORTED" | "SUPPORT" | "YES" => Some(Support::Supported),
        "PARTLY" | "PARTIALLY" | "PARTIAL" => Some(Support::Weak),
        "NO" | "NOT" => Some(Support::Unsupported),
        _ => None,
    }
}

/// Judges every pair with the inference server.
pub async fn with_llm(chat: &dyn ChatModel, pairs: &[SupportPair]) -> SupportReport {
    let mut results = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let messages = vec![
            Message::system(JUDGE_INSTRUCTIONS),
            Message::user(format!(
                "Passage: {}\n\nStatement: {}\n\nAnswer SUPPORTS, PARTLY or NO.",
                pair.passage.trim(),
                pair.sentence.trim()
            )),
        ];
        let (predicted, error) = match chat.complete(&messages, &|_| {}).await {
            Ok(c) => match parse_label(&c.text) {
                Some(label) => (label, None),
                None => (
                    Support::Unsupported,
                    Some(format!(
                        "the judge answered {:?}",
                        c.text.trim().chars().take(60).collect::<String>()
                    )),
                ),
            },
            Err(e) => (Support::Unsupported, Some(e.to_string())),
        };
        results.push(PairResult {
            id: pair.id.clone(),
            label: pair.label.clone(),
            predicted: predicted.as_str().to_string(),
            kind: pair.kind.clone(),
            lang: pair.lang.clone(),
            split: pair.split.clone(),
            features: None,
            score: None,
            error,
        });
    }
    report("llm", results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_false_supported_and_per_label_figures() {
        use Support::*;
        let s = summarise(&[
            (Supported, Supported),
            (Unsupported, Supported),
            (Weak, Weak),
            (Unsupported, Unsupported),
        ]);
        assert_eq!(s.false_supported, 1);
        assert_eq!(s.supported.precision, 0.5);
        assert_eq!(s.unsupported.recall, 0.5);
        assert_eq!(s.accuracy, 0.75);
    }

    #[test]
    fn judge_answers_map_to_three_labels() {
        assert_eq!(parse_label("SUPPORTS."), Some(Support::Supported));
        assert_eq!(parse_label("partly, because"), Some(Support::Weak));
        assert_eq!(parse_label("No"), Some(Support::Unsupported));
        assert_eq!(parse_label("<|im_start|>"), None);
    }
}
