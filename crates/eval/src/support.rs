//! The citation support check measured on labelled claim/passage pairs
//! (`corpus/eval/support_pairs*.jsonl`): `doctrina eval support`. Each pair is judged by the
//! local support check (or the inference server) and compared with its label, overall, by
//! calibration/test split, by language and by kind of alteration (changed number, negation,
//! paraphrase, ...). Three judges: the local check drafts use (`support-check`), the
//! inference server alone (`llm`), and the two combined as drafts combine them
//! (`check+llm`: [`doctrina_draft::judge::Combination`]).

use std::collections::BTreeMap;
use std::path::Path;

use doctrina_draft::inference::ChatModel;
use doctrina_draft::judge::{Combination, Judgement};
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

/// Who judges the pairs in `doctrina eval support`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Judge {
    /// The local support check alone.
    #[default]
    SupportCheck,
    /// The inference server alone.
    Llm,
    /// Both, combined as drafts combine them.
    CheckAndLlm,
}

impl Judge {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SupportCheck => "support-check",
            Self::Llm => "llm",
            Self::CheckAndLlm => "check+llm",
        }
    }
}

impl std::str::FromStr for Judge {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "support-check" => Ok(Self::SupportCheck),
            "llm" => Ok(Self::Llm),
            "check+llm" => Ok(Self::CheckAndLlm),
            other => Err(format!(
                "unknown judge '{other}' (expected support-check, llm or check+llm)"
            )),
        }
    }
}

/// One pair's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    pub id: String,
    /// The label as the pair file gives it.
    pub label: String,
    /// The label read as supported, weak or unsupported (`partial` is `weak`).
    pub gold: String,
    pub predicted: String,
    /// The span of the passage the check matched the sentence to (none for the LLM judge
    /// alone).
    pub evidence: Option<String>,
    /// The inference server's answer and its probabilities (none for the check alone).
    pub judgement: Option<Judgement>,
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
    /// `support-check`, `llm` or `check+llm`.
    pub judge: String,
    pub pairs: usize,
    /// Over all pairs (as [`SupportReport::overall`]).
    pub accuracy: f64,
    /// Precision and recall per label over all pairs.
    pub labels: BTreeMap<String, LabelFigures>,
    /// `confusion[gold][predicted]`, by label name.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Pairs the LLM judge could not judge (no answer, or none of the three words): each
    /// counted as `unsupported`.
    pub judge_errors: usize,
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
        let (Some(gold), Some(predicted)) = (Support::parse(&r.gold), Support::parse(&r.predicted))
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
        .filter_map(|r| Some((Support::parse(&r.gold)?, Support::parse(&r.predicted)?)))
        .collect();
    let overall = summarise(&labels);
    let names = ["supported", "weak", "unsupported"];
    SupportReport {
        judge: judge.to_string(),
        pairs: results.len(),
        accuracy: overall.accuracy,
        labels: BTreeMap::from([
            (names[0].to_string(), overall.supported),
            (names[1].to_string(), overall.weak),
            (names[2].to_string(), overall.unsupported),
        ]),
        confusion: names
            .iter()
            .enumerate()
            .map(|(g, gold)| {
                let row = names
                    .iter()
                    .enumerate()
                    .map(|(p, predicted)| (predicted.to_string(), overall.confusion[g][p]))
                    .collect();
                (gold.to_string(), row)
            })
            .collect(),
        judge_errors: results.iter().filter(|r| r.error.is_some()).count(),
        overall,
        by_split: group(&results, |r| r.split.clone()),
        by_lang: group(&results, |r| r.lang.clone()),
        by_kind: group(&results, |r| r.kind.clone()),
        per_pair: results,
    }
}

/// The pair's label as supported, weak or unsupported (checked by [`load_pairs`]).
fn gold(pair: &SupportPair) -> Support {
    Support::parse(&pair.label).unwrap_or(Support::Unsupported)
}

fn result(pair: &SupportPair, predicted: Support) -> PairResult {
    PairResult {
        id: pair.id.clone(),
        label: pair.label.clone(),
        gold: gold(pair).as_str().to_string(),
        predicted: predicted.as_str().to_string(),
        evidence: None,
        judgement: None,
        kind: pair.kind.clone(),
        lang: pair.lang.clone(),
        split: pair.split.clone(),
        features: None,
        score: None,
        error: None,
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
            evidence: verdict.evidence.map(|e| e.text),
            features: Some(verdict.features),
            score: Some(verdict.score),
            ..result(pair, verdict.support)
        });
    }
    Ok(report(Judge::SupportCheck.as_str(), results))
}

/// The judge's label, or the error that leaves the pair `unsupported`.
fn judged(
    outcome: std::result::Result<Judgement, doctrina_draft::inference::InferenceError>,
) -> (Option<Judgement>, Option<String>) {
    match outcome {
        Ok(j) => {
            let error = j.verdict().err();
            (Some(j), error)
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

/// Judges every pair with the inference server.
pub async fn with_llm(chat: &dyn ChatModel, pairs: &[SupportPair]) -> SupportReport {
    let mut results = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let outcome =
            doctrina_draft::judge::judge(chat, &pair.sentence, &[pair.passage.as_str()]).await;
        let (judgement, error) = judged(outcome);
        let predicted = match (&judgement, &error) {
            (Some(j), None) => j.label.unwrap_or(Support::Unsupported),
            _ => Support::Unsupported,
        };
        results.push(PairResult {
            judgement,
            error,
            ..result(pair, predicted)
        });
    }
    report(Judge::Llm.as_str(), results)
}

/// Judges every pair with the check and the server combined by `combination`, as drafts
/// are labelled. A pair the server could not judge keeps the check's label, capped at
/// `weak` (drafts do the same).
pub async fn with_check_and_llm(
    checker: &SupportChecker,
    chat: &dyn ChatModel,
    combination: Combination,
    pairs: &[SupportPair],
) -> Result<SupportReport> {
    let mut results = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let verdict = checker
            .check(&pair.sentence, &[pair.passage.as_str()])
            .map_err(|e| EvalError::Draft(e.into()))?;
        let outcome =
            doctrina_draft::judge::judge(chat, &pair.sentence, &[pair.passage.as_str()]).await;
        let (judgement, error) = judged(outcome);
        let predicted = match (&judgement, &error) {
            (Some(j), None) => {
                combination.label(&verdict.features, verdict.score, verdict.support, j)
            }
            _ => doctrina_draft::judge::without_judge(verdict.support),
        };
        results.push(PairResult {
            evidence: verdict.evidence.map(|e| e.text),
            features: Some(verdict.features),
            score: Some(verdict.score),
            judgement,
            error,
            ..result(pair, predicted)
        });
    }
    Ok(report(Judge::CheckAndLlm.as_str(), results))
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
    fn judges_are_named_on_the_command_line() {
        for judge in [Judge::SupportCheck, Judge::Llm, Judge::CheckAndLlm] {
            assert_eq!(judge.as_str().parse::<Judge>(), Ok(judge));
        }
        assert!("nli".parse::<Judge>().is_err());
    }
}
