//! Two finished runs of the same kind side by side: the difference (b − a) of every figure,
//! overall and per question.

use std::collections::{BTreeMap, BTreeSet};

use crate::export::{METRIC_TITLES, metric_values};
use crate::runs::{DraftRun, RetrievalRun, RunResult};

/// Which way a figure moved from run a to run b.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Same,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Same => "same",
        }
    }
}

/// One figure in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `b - a` when both exist.
    pub delta: Option<f64>,
    pub direction: Direction,
}

pub fn diff(a: Option<f64>, b: Option<f64>) -> Diff {
    let delta = a.zip(b).map(|(a, b)| b - a);
    let direction = match delta {
        Some(d) if d > 1e-12 => Direction::Up,
        Some(d) if d < -1e-12 => Direction::Down,
        _ => Direction::Same,
    };
    Diff {
        a,
        b,
        delta,
        direction,
    }
}

/// A row of figures: a question (or "all questions") in one mode.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub name: String,
    pub mode: String,
    pub cells: Vec<Diff>,
    pub changed: bool,
}

/// Column names, overall rows and per-question rows of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub columns: Vec<String>,
    pub overall: Vec<DiffRow>,
    pub per_question: Vec<DiffRow>,
    /// Questions only one of the runs has.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

fn row(name: &str, mode: &str, cells: Vec<Diff>) -> DiffRow {
    DiffRow {
        name: name.to_string(),
        mode: mode.to_string(),
        changed: cells.iter().any(|c| c.direction != Direction::Same),
        cells,
    }
}

fn compare_retrieval(a: &RetrievalRun, b: &RetrievalRun) -> (Vec<DiffRow>, Vec<DiffRow>) {
    let modes: BTreeSet<&String> = a.modes.keys().chain(b.modes.keys()).collect();
    let row_for =
        |name: &str, mode: &str, x: Option<&crate::Metrics>, y: Option<&crate::Metrics>| {
            let (x, y) = (x.map(metric_values), y.map(metric_values));
            let cells = (0..METRIC_TITLES.len())
                .map(|i| diff(x.map(|v| v[i]), y.map(|v| v[i])))
                .collect();
            row(name, mode, cells)
        };
    let overall = modes
        .iter()
        .map(|m| row_for("all questions", m, a.modes.get(*m), b.modes.get(*m)))
        .collect();
    let by_id: BTreeMap<&str, _> = b.per_question.iter().map(|q| (q.id.as_str(), q)).collect();
    let mut per_question = Vec::new();
    for qa in &a.per_question {
        let Some(qb) = by_id.get(qa.id.as_str()) else {
            continue;
        };
        for m in &modes {
            per_question.push(row_for(
                &qa.id,
                m,
                qa.modes.get(*m).map(|r| &r.metrics),
                qb.modes.get(*m).map(|r| &r.metrics),
            ));
        }
    }
    (overall, per_question)
}

/// Support labels counted in a draft run's totals.
pub const SUPPORT_LABELS: [&str; 4] = ["supported", "weak", "unsupported", "uncited"];

fn compare_drafts(a: &DraftRun, b: &DraftRun) -> (Vec<DiffRow>, Vec<DiffRow>) {
    let figures = |t: &crate::runs::DraftTotals| -> Vec<(String, f64)> {
        let mut v = vec![
            ("citation validity".to_string(), t.citation_validity),
            ("citation recall".to_string(), t.citation_recall),
            ("citation precision".to_string(), t.citation_precision),
            ("statements".to_string(), t.statements as f64),
            ("citations".to_string(), t.citations as f64),
            ("drafts failed".to_string(), t.failed as f64),
        ];
        for l in SUPPORT_LABELS {
            v.push((
                format!("sentences {l}"),
                t.support_labels.get(l).copied().unwrap_or(0) as f64,
            ));
        }
        v
    };
    let (fa, fb) = (figures(&a.totals), figures(&b.totals));
    let overall = fa
        .iter()
        .zip(&fb)
        .map(|((name, x), (_, y))| row(name, "", vec![diff(Some(*x), Some(*y))]))
        .collect();
    let by_id: BTreeMap<&str, _> = b.per_question.iter().map(|q| (q.id.as_str(), q)).collect();
    let per_question = a
        .per_question
        .iter()
        .filter_map(|qa| {
            let qb = by_id.get(qa.id.as_str())?;
            Some(row(
                &qa.id,
                "",
                vec![
                    diff(qa.citation_validity, qb.citation_validity),
                    diff(Some(qa.citation_recall), Some(qb.citation_recall)),
                    diff(qa.citation_precision, qb.citation_precision),
                ],
            ))
        })
        .collect();
    (overall, per_question)
}

fn question_ids(result: &RunResult) -> Vec<String> {
    match result {
        RunResult::Retrieval(r) => r.per_question.iter().map(|q| q.id.clone()).collect(),
        RunResult::Drafts(d) => d.per_question.iter().map(|q| q.id.clone()).collect(),
    }
}

/// Compares two results; `None` if they are of different kinds.
pub fn compare(a: &RunResult, b: &RunResult) -> Option<Comparison> {
    let (columns, (overall, per_question)) = match (a, b) {
        (RunResult::Retrieval(x), RunResult::Retrieval(y)) => (
            METRIC_TITLES.iter().map(|s| s.to_string()).collect(),
            compare_retrieval(x, y),
        ),
        (RunResult::Drafts(x), RunResult::Drafts(y)) => (
            vec![
                "citation validity".to_string(),
                "citation recall".to_string(),
                "citation precision".to_string(),
            ],
            compare_drafts(x, y),
        ),
        _ => return None,
    };
    let (ids_a, ids_b) = (question_ids(a), question_ids(b));
    Some(Comparison {
        columns,
        overall,
        per_question,
        only_a: ids_a
            .iter()
            .filter(|i| !ids_b.contains(i))
            .cloned()
            .collect(),
        only_b: ids_b
            .iter()
            .filter(|i| !ids_a.contains(i))
            .cloned()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_their_direction() {
        let d = diff(Some(0.5), Some(0.75));
        assert_eq!((d.delta, d.direction), (Some(0.25), Direction::Up));
        assert_eq!(diff(Some(0.5), Some(0.25)).direction, Direction::Down);
        assert_eq!(diff(Some(0.5), Some(0.5)).direction, Direction::Same);
        assert_eq!(diff(None, Some(0.5)).delta, None);
    }
}
