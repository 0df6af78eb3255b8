//! A run's results as CSV: one row per question and mode (retrieval), or per citation and
//! judge (drafts: the automatic label, then each evaluator's). Text cells a spreadsheet
//! would run as a formula are neutralised ([`doctrina_types::spreadsheet_safe`]).

use std::collections::BTreeMap;

use doctrina_types::spreadsheet_safe as cell;

use crate::EvalError;
use crate::runs::{DraftRun, Judgement, RetrievalRun};

fn csv_error(e: impl std::fmt::Display) -> EvalError {
    EvalError::Store(format!("csv: {e}"))
}

/// The five retrieval figures in column order.
pub fn metric_values(m: &crate::Metrics) -> [f64; 5] {
    [m.recall_1, m.recall_5, m.recall_10, m.mrr_10, m.ndcg_10]
}

/// CSV column names of the five figures.
pub const METRIC_NAMES: [&str; 5] = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"];
/// The same figures as people read them (pages, comparisons).
pub const METRIC_TITLES: [&str; 5] = ["Recall@1", "Recall@5", "Recall@10", "MRR@10", "nDCG@10"];

pub fn retrieval_csv(r: &RetrievalRun) -> Result<Vec<u8>, EvalError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["question_id", "question", "mode"];
    header.extend(METRIC_NAMES);
    w.write_record(&header).map_err(csv_error)?;
    for q in &r.per_question {
        for (mode, result) in &q.modes {
            let m = &result.metrics;
            let mut record = vec![cell(&q.id), cell(&q.question), mode.clone()];
            record.extend(metric_values(m).iter().map(|v| v.to_string()));
            w.write_record(&record).map_err(csv_error)?;
        }
    }
    w.into_inner().map_err(csv_error)
}

pub fn drafts_csv(d: &DraftRun, judgements: &[Judgement]) -> Result<Vec<u8>, EvalError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "question_id",
        "question",
        "sentence",
        "sentence_text",
        "sentence_support",
        "statement_recall",
        "citation",
        "citation_key",
        "passage_id",
        "publication",
        "paragraphs",
        "marking",
        "citation_precise",
        "judge",
        "label",
        "comment",
    ])
    .map_err(csv_error)?;
    let mut by_citation: BTreeMap<&str, Vec<&Judgement>> = BTreeMap::new();
    for j in judgements {
        by_citation.entry(j.citation.as_str()).or_default().push(j);
    }
    for a in &d.per_question {
        for (si, s) in a.sentences.iter().enumerate() {
            for c in &s.citations {
                let base = [
                    cell(&a.id),
                    cell(&a.question),
                    (si + 1).to_string(),
                    cell(&s.text),
                    s.support.as_str().to_string(),
                    s.recall.to_string(),
                    c.n.to_string(),
                    c.key.clone(),
                    cell(&c.passage.passage_id),
                    cell(c.passage.publication.as_deref().unwrap_or_default()),
                    c.passage.paragraphs.join(" "),
                    c.passage.marking.clone(),
                    c.precise.to_string(),
                ];
                let mut judges = vec![(
                    "automatic".to_string(),
                    c.auto_label.as_str(),
                    String::new(),
                )];
                for j in by_citation.get(c.key.as_str()).into_iter().flatten() {
                    judges.push((j.evaluator.clone(), j.label.as_str(), j.comment.clone()));
                }
                for (judge, label, comment) in judges {
                    let mut record = base.to_vec();
                    record.extend([cell(&judge), label.to_string(), cell(&comment)]);
                    w.write_record(&record).map_err(csv_error)?;
                }
            }
        }
    }
    w.into_inner().map_err(csv_error)
}
