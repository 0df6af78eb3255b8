//! Draft evaluation: for each question, a draft (language model or extractive) is produced
//! and its citations scored. Citation validity (cited numbers that name a given source),
//! the support-label distribution, and ALCE's citation recall and precision (Gao et al.,
//! 2023): a statement's recall is 1 when its cited passages together support it; a
//! citation is precise unless it is irrelevant — it does not support the statement alone
//! and the remaining citations still do. The judge is the local support check (a claim is
//! supported when the check says `supported`) or, optionally, the inference server asked
//! one question per judgement ([`Judge::Llm`]).

use std::collections::BTreeMap;

use doctrina_draft::cite;
use doctrina_draft::inference::ChatModel;
use doctrina_draft::support::{Support, SupportChecker};
use doctrina_draft::{DraftError, DraftMode, DraftRecord, DraftRequest, Drafter};
use doctrina_types::PassageFilter;
use serde::Serialize;

use crate::Question;

/// ALCE judgement of one statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub text: String,
    /// Valid citations (source numbers).
    pub citations: Vec<usize>,
    /// Citation numbers that name no source (never credited as precise).
    pub invalid: Vec<usize>,
    /// The cited passages together support the statement.
    pub recall: bool,
    /// Per valid citation: precise (not irrelevant).
    pub precise: Vec<bool>,
}

/// ALCE recall and precision of one statement, given a judge of `claim` against passages.
pub fn judge_statement(
    claim: &str,
    citations: &[usize],
    passage: &dyn Fn(usize) -> String,
    supports: &mut dyn FnMut(&str, &[String]) -> bool,
) -> (bool, Vec<bool>) {
    if citations.is_empty() {
        return (false, Vec::new());
    }
    let all: Vec<String> = citations.iter().map(|n| passage(*n)).collect();
    let recall = supports(claim, &all);
    let precise = if !recall {
        // Nothing in an unsupported statement is credited.
        vec![false; citations.len()]
    } else if citations.len() == 1 {
        vec![true]
    } else {
        (0..citations.len())
            .map(|i| {
                if supports(claim, std::slice::from_ref(&all[i])) {
                    return true;
                }
                let rest: Vec<String> = all
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| p.clone())
                    .collect();
                // Irrelevant when the others still support the statement without it.
                !supports(claim, &rest)
            })
            .collect()
    };
    (recall, precise)
}

/// Who decides whether passages support a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Judge {
    /// The local support check from drafting (embedding similarity, overlap, numbers).
    #[default]
    SupportCheck,
    /// The inference server, asked to answer SUPPORTS, PARTLY or NO. Only SUPPORTS counts;
    /// an answer that is none of the three is a judge error and counts as not supported.
    Llm,
}

impl std::str::FromStr for Judge {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "support-check" => Ok(Self::SupportCheck),
            "llm" => Ok(Self::Llm),
            other => Err(format!(
                "unknown judge '{other}' (expected support-check or llm)"
            )),
        }
    }
}

/// Asks the inference server for one judgement (from inside the async evaluation, on a
/// multi-threaded runtime): the closed question drafting asks
/// ([`doctrina_draft::judge::judge`]); only SUPPORTS counts.
fn ask_llm(
    chat: &dyn ChatModel,
    claim: &str,
    passages: &[String],
) -> Result<Result<bool, String>, String> {
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let judgement = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(doctrina_draft::judge::judge(chat, claim, &refs))
    })
    .map_err(|e| e.to_string())?;
    Ok(judgement.verdict().map(|label| label == Support::Supported))
}

#[derive(Debug, Clone, Serialize)]
pub struct DraftQuestionResult {
    pub id: String,
    pub question: String,
    pub draft_id: Option<String>,
    pub error: Option<String>,
    pub statements: Vec<Statement>,
    pub support_labels: BTreeMap<String, usize>,
    pub citation_validity: Option<f64>,
    pub citation_recall: f64,
    pub citation_precision: Option<f64>,
}

/// The `doctrina eval drafts --json` report.
#[derive(Debug, Clone, Serialize)]
pub struct DraftReport {
    pub questions: usize,
    pub mode: DraftMode,
    pub section: String,
    /// `support-check`, or `llm:<model>@<server>`.
    pub judge: String,
    /// Support questions put to the judge (one per statement, more for precision when a
    /// statement cites several passages).
    pub judgements: usize,
    /// Judgements the LLM judge could not give (no answer, or none of SUPPORTS, PARTLY,
    /// NO); each counted as not supported. Always 0 for the support check.
    pub judge_errors: usize,
    /// The first judge error, for the report.
    pub judge_error: Option<String>,
    /// Drafts that failed (no output); they count as zero recall.
    pub failed: usize,
    pub statements: usize,
    pub citations: usize,
    pub invalid_citations: usize,
    /// Valid citations / all citations.
    pub citation_validity: f64,
    /// Sentences per support label (supported, weak, unsupported, uncited).
    pub support_labels: BTreeMap<String, usize>,
    /// Mean over statements of ALCE citation recall.
    pub citation_recall: f64,
    /// Precise citations / all citations (invalid ones included, never precise).
    pub citation_precision: f64,
    pub per_question: Vec<DraftQuestionResult>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Judgements asked so far, and the LLM judge's errors.
#[derive(Debug, Default)]
struct JudgeErrors {
    asked: usize,
    count: usize,
    first: Option<String>,
}

fn judge_record(
    record: &DraftRecord,
    checker: &SupportChecker,
    llm: Option<&dyn ChatModel>,
    errors: &mut JudgeErrors,
) -> Result<Vec<Statement>, DraftError> {
    let passage = |n: usize| -> String {
        record
            .sources
            .iter()
            .find(|s| s.n == n)
            .map(|s| s.hit.text.clone())
            .unwrap_or_default()
    };
    let mut failure = None;
    let mut supports = |claim: &str, passages: &[String]| -> bool {
        errors.asked += 1;
        if let Some(chat) = llm {
            return match ask_llm(chat, claim, passages) {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(e)) | Err(e) => {
                    errors.count += 1;
                    errors.first.get_or_insert(e);
                    false
                }
            };
        }
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        match checker.check(claim, &refs) {
            Ok(v) => v.support == Support::Supported,
            Err(e) => {
                failure.get_or_insert(e);
                false
            }
        }
    };
    let mut out = Vec::new();
    for sentence in cite::parse(
        &record.output(),
        &doctrina_draft::context::citable(&record.sources),
    ) {
        let (recall, precise) = judge_statement(
            &sentence.claim,
            &sentence.citations,
            &passage,
            &mut supports,
        );
        out.push(Statement {
            text: sentence.text,
            citations: sentence.citations,
            invalid: sentence.invalid,
            recall,
            precise,
        });
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}

/// Drafts an answer to every question and scores it.
pub async fn evaluate(
    drafter: &Drafter,
    questions: &[Question],
    section: &str,
    mode: DraftMode,
    sources: usize,
    on_progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<DraftReport, DraftError> {
    evaluate_filtered(
        drafter,
        questions,
        section,
        mode,
        sources,
        &PassageFilter::default(),
        Judge::SupportCheck,
        on_progress,
    )
    .await
}

/// [`evaluate`] with every draft's retrieval restricted by `filter` (the web app passes the
/// evaluator's clearance) and the given judge. The LLM judge needs the drafter's inference
/// server and a multi-threaded runtime.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate_filtered(
    drafter: &Drafter,
    questions: &[Question],
    section: &str,
    mode: DraftMode,
    sources: usize,
    filter: &PassageFilter,
    judge: Judge,
    on_progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<DraftReport, DraftError> {
    let llm: Option<&dyn ChatModel> = match judge {
        Judge::SupportCheck => None,
        Judge::Llm => Some(drafter.chat.as_deref().ok_or(DraftError::NoServer)?),
    };
    let judge_name = match llm {
        None => "support-check".to_string(),
        Some(chat) => format!("llm:{}@{}", chat.model(), chat.server()),
    };
    let mut judge_errors = JudgeErrors::default();
    let mut per_question = Vec::with_capacity(questions.len());
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    let (mut statements, mut citations, mut invalid, mut recalled, mut precise, mut failed) =
        (0, 0, 0, 0, 0, 0);
    for (i, q) in questions.iter().enumerate() {
        let request = DraftRequest {
            section: section.to_string(),
            task: q.question.clone(),
            guidance: None,
            mode,
            sources,
            filter: filter.clone(),
        };
        let (record, error) = match drafter.draft(&request, &|_| {}).await {
            // Stopped early (the model repeating a sentence): the reason goes with it.
            Ok(record) => {
                let error = record.incomplete_reason();
                (Some(record), error)
            }
            Err(DraftError::Inference { draft_id, error }) => {
                (drafter.store.get(&draft_id)?, Some(error.to_string()))
            }
            Err(e @ (DraftError::NoSources | DraftError::EmptyTask)) => (None, Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let judged = match &record {
            Some(r) => judge_record(r, &drafter.checker, llm, &mut judge_errors)?,
            None => Vec::new(),
        };
        if judged.is_empty() {
            failed += usize::from(error.is_some());
        }
        let mut q_labels = BTreeMap::new();
        if let Some(r) = &record {
            for s in &r.sentences {
                *q_labels.entry(s.support.as_str().to_string()).or_insert(0) += 1;
                *labels.entry(s.support.as_str().to_string()).or_insert(0) += 1;
            }
        }
        let q_cites: usize = judged
            .iter()
            .map(|s| s.citations.len() + s.invalid.len())
            .sum();
        let q_invalid: usize = judged.iter().map(|s| s.invalid.len()).sum();
        let q_recalled = judged.iter().filter(|s| s.recall).count();
        let q_precise: usize = judged
            .iter()
            .map(|s| s.precise.iter().filter(|p| **p).count())
            .sum();
        statements += judged.len();
        citations += q_cites;
        invalid += q_invalid;
        recalled += q_recalled;
        precise += q_precise;
        per_question.push(DraftQuestionResult {
            id: q.id.clone(),
            question: q.question.clone(),
            draft_id: record.as_ref().map(|r| r.draft_id.clone()),
            error,
            support_labels: q_labels,
            citation_validity: (q_cites > 0).then(|| ratio(q_cites - q_invalid, q_cites)),
            citation_recall: ratio(q_recalled, judged.len()),
            citation_precision: (q_cites > 0).then(|| ratio(q_precise, q_cites)),
            statements: judged,
        });
        on_progress(i + 1, questions.len());
    }
    for label in ["supported", "weak", "unsupported", "uncited"] {
        labels.entry(label.to_string()).or_insert(0);
    }
    Ok(DraftReport {
        questions: questions.len(),
        mode,
        section: section.to_string(),
        judge: judge_name,
        judgements: judge_errors.asked,
        judge_errors: judge_errors.count,
        judge_error: judge_errors.first,
        failed,
        statements,
        citations,
        invalid_citations: invalid,
        citation_validity: ratio(citations - invalid, citations),
        support_labels: labels,
        citation_recall: ratio(recalled, statements),
        citation_precision: ratio(precise, citations),
        per_question,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A judge that says a set supports the claim when it contains every word the claim
    /// tags with `!` (so the ALCE rules can be checked exactly).
    fn judge(claim: &str, passages: &[String]) -> bool {
        let joined = passages.join(" ");
        claim
            .split_whitespace()
            .filter_map(|w| w.strip_prefix('!'))
            .all(|w| joined.split_whitespace().any(|p| p == w))
    }

    fn run(claim: &str, cites: &[usize], texts: &[&str]) -> (bool, Vec<bool>) {
        let passage = |n: usize| texts[n - 1].to_string();
        judge_statement(claim, cites, &passage, &mut |c, p| judge(c, p))
    }

    #[test]
    fn judges_are_named_on_the_command_line() {
        assert_eq!("llm".parse::<Judge>(), Ok(Judge::Llm));
        assert_eq!("support-check".parse::<Judge>(), Ok(Judge::SupportCheck));
        assert!("gpt".parse::<Judge>().is_err());
    }

    #[test]
    fn alce_recall_and_precision() {
        let texts = ["fuel", "ammo", "fuel ammo", "water"];
        // Uncited: recall 0, no citations.
        assert_eq!(run("!fuel", &[], &texts), (false, vec![]));
        // One citation that supports: precise.
        assert_eq!(run("!fuel", &[1], &texts), (true, vec![true]));
        // One that does not: recall 0, imprecise.
        assert_eq!(run("!fuel", &[2], &texts), (false, vec![false]));
        // Both needed together: each precise (removing either breaks support).
        assert_eq!(
            run("!fuel !ammo", &[1, 2], &texts),
            (true, vec![true, true])
        );
        // An irrelevant extra citation: the rest still supports without it.
        assert_eq!(run("!fuel", &[1, 4], &texts), (true, vec![true, false]));
        // Redundant citations that each support alone are both precise.
        assert_eq!(run("!fuel", &[1, 3], &texts), (true, vec![true, true]));
        // Jointly unsupported: nothing credited.
        assert_eq!(
            run("!fuel !water !ammo", &[1, 4], &texts),
            (false, vec![false, false])
        );
    }
}
