//! The bilingual glossary custodians maintain: one entry per line,
//! `한국어 용어 = english term, synonym, ACRONYM`; `#` starts a comment line.
//!
//! A keyword query is expanded with the other side of every entry it mentions: a Korean
//! question saying `지속지원` also searches `sustainment`, an English one saying `MDMP`
//! also searches `군사적 의사결정절차`. The dense side needs no help (the embedding model is
//! multilingual); the keyword side cannot match across scripts without it.
//!
//! Matching: a Korean term matches where it occurs in the query (particles attach to the
//! end of a noun, `지속지원은`, so a substring is the right test; spaces inside the term
//! are optional, `임무 분석` = `임무분석`); an English term or acronym matches as whole
//! words, case-insensitively (acronyms of two or three letters case-sensitively, so `COA`
//! matches but `coa` inside prose does not pretend to be one). Longer terms win: a query
//! saying `방책 분석` expands that entry, not also `방책`.

use std::collections::BTreeSet;

use crate::has_hangul;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("glossary line {line}: {message}")]
pub struct GlossaryError {
    pub line: usize,
    pub message: String,
}

/// One entry: the Korean term and its English terms (the first is the main one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub korean: String,
    pub english: Vec<String>,
    /// 1-based line in the file.
    pub line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Glossary {
    entries: Vec<Entry>,
}

/// What expanding a query added, for the score breakdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// `(term found in the query, terms added for it)`.
    pub matches: Vec<(String, Vec<String>)>,
}

impl Expansion {
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// Every added term, once, in order.
    pub fn added(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.matches
            .iter()
            .flat_map(|(_, added)| added.iter())
            .filter(|t| seen.insert(t.as_str()))
            .map(String::as_str)
            .collect()
    }

    /// `지속지원 → sustainment; MDMP → 군사적 의사결정절차`
    pub fn describe(&self) -> String {
        self.matches
            .iter()
            .map(|(found, added)| format!("{found} → {}", added.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Glossary {
    /// Parses a glossary file. Every bad line is reported (a custodian fixes them all in
    /// one pass), none is skipped silently.
    pub fn parse(text: &str) -> Result<Self, Vec<GlossaryError>> {
        let (glossary, errors) = Self::parse_lenient(text);
        if errors.is_empty() {
            Ok(glossary)
        } else {
            Err(errors)
        }
    }

    /// The good entries and the bad lines: for a file already in use, where one bad line
    /// should not take every entry away (the bad lines are logged and shown).
    pub fn parse_lenient(text: &str) -> (Self, Vec<GlossaryError>) {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim().trim_start_matches('\u{feff}');
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let fail = |message: &str| GlossaryError {
                line,
                message: message.to_string(),
            };
            let Some((left, right)) = content.split_once('=') else {
                errors.push(fail("expected `한국어 = english[, synonym ...]`"));
                continue;
            };
            let korean = left.split_whitespace().collect::<Vec<_>>().join(" ");
            let english: Vec<String> = right
                .split(',')
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|t| !t.is_empty())
                .collect();
            if korean.is_empty() || english.is_empty() {
                errors.push(fail("both sides of `=` need a term"));
                continue;
            }
            if !has_hangul(&korean) {
                errors.push(fail("the left side should be the Korean term"));
                continue;
            }
            if english.iter().any(|t| t.contains('=')) {
                errors.push(fail("one `=` per line"));
                continue;
            }
            entries.push(Entry {
                korean,
                english,
                line,
            });
        }
        (Self { entries }, errors)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The terms to add to a keyword query, with what triggered them.
    pub fn expand(&self, query: &str) -> Expansion {
        let compact_query: String = query.chars().filter(|c| !c.is_whitespace()).collect();
        let words = words(query);
        // (span in the query as a key for "longer wins", found, added)
        let mut found: Vec<(usize, String, Vec<String>)> = Vec::new();
        for entry in &self.entries {
            let compact_korean: String = entry
                .korean
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if compact_query.contains(&compact_korean) {
                found.push((
                    compact_korean.chars().count(),
                    entry.korean.clone(),
                    entry.english.clone(),
                ));
                continue;
            }
            for term in &entry.english {
                if matches_words(&words, term) {
                    let mut added = vec![entry.korean.clone()];
                    added.extend(entry.english.iter().filter(|t| *t != term).cloned());
                    found.push((term.chars().count(), term.clone(), added));
                    break;
                }
            }
        }
        // Longer terms win over terms they contain (`방책 분석` over `방책`).
        found.sort_by_key(|b| std::cmp::Reverse(b.0));
        let mut kept: Vec<(String, Vec<String>)> = Vec::new();
        for (_, term, added) in found {
            let compact: String = term.chars().filter(|c| !c.is_whitespace()).collect();
            let inside_longer = kept.iter().any(|(k, _)| {
                let k: String = k.chars().filter(|c| !c.is_whitespace()).collect();
                k.to_lowercase().contains(&compact.to_lowercase())
            });
            if inside_longer {
                continue;
            }
            match kept.iter_mut().find(|(k, _)| *k == term) {
                Some((_, existing)) => {
                    for a in added {
                        if !existing.contains(&a) {
                            existing.push(a);
                        }
                    }
                }
                None => kept.push((term, added)),
            }
        }
        Expansion { matches: kept }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// True when `term`'s words occur consecutively in `words`: case-insensitively, except
/// that a short all-capitals acronym must match exactly.
fn matches_words(words: &[String], term: &str) -> bool {
    let wanted = self::words(term);
    if wanted.is_empty() || wanted.len() > words.len() {
        return false;
    }
    let acronym = wanted.len() == 1
        && wanted[0].chars().count() <= 3
        && wanted[0].chars().all(|c| c.is_ascii_uppercase());
    words.windows(wanted.len()).any(|w| {
        w.iter().zip(&wanted).all(|(a, b)| {
            if acronym {
                a == b
            } else {
                a.eq_ignore_ascii_case(b) || plural_of(a, b)
            }
        })
    })
}

/// `orders` ~ `order`, `COAs` ~ `COA`.
fn plural_of(word: &str, term: &str) -> bool {
    word.len() == term.len() + 1
        && word.to_lowercase().starts_with(&term.to_lowercase())
        && word.ends_with(['s', 'S'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\n\
        지속지원 = sustainment\n\
        작전명령 = operation order, OPORD\n\
        방책 = course of action, COA\n\
        방책 분석 = course of action analysis, COA analysis, war game\n\
        \n\
        군사적 의사결정절차 = military decision-making process, MDMP\n";

    #[test]
    fn parses_and_reports_every_bad_line() {
        let g = Glossary::parse(SAMPLE).unwrap();
        assert_eq!(g.len(), 5);
        assert_eq!(g.entries()[1].english, vec!["operation order", "OPORD"]);
        let errors =
            Glossary::parse("지속지원 sustainment\n= x\nsustainment = 지속지원\n").unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn expands_both_ways() {
        let g = Glossary::parse(SAMPLE).unwrap();
        let e = g.expand("여단 지속지원은 어떻게 계획하나?");
        assert_eq!(e.added(), vec!["sustainment"]);
        let e = g.expand("Who issues the OPORD annex?");
        assert_eq!(e.added(), vec!["작전명령", "operation order"]);
        let e = g.expand("What happens in the military decision-making process?");
        assert_eq!(e.added(), vec!["군사적 의사결정절차", "MDMP"]);
        assert!(g.expand("coa").is_empty(), "lowercase is not the acronym");
        assert_eq!(
            g.expand("Who approves operation orders?").added(),
            vec!["작전명령", "OPORD"]
        );
    }

    #[test]
    fn longer_terms_win() {
        let g = Glossary::parse(SAMPLE).unwrap();
        let e = g.expand("방책분석 절차에서 워게임 결과는?");
        assert_eq!(e.matches.len(), 1, "{e:?}");
        assert_eq!(e.matches[0].0, "방책 분석");
        assert!(
            e.describe()
                .starts_with("방책 분석 → course of action analysis")
        );
    }
}
