//! Evaluation beside retrieval and drafting: question sets with gold paragraphs and the
//! standard ranking metrics (Recall@k, MRR@10, nDCG@10) per retrieval mode, overall and per
//! question, so the effect of fusion is visible; BEIR-layout datasets in their own index
//! ([`beir`]); citation quality of drafts ([`drafts`]); and the runs the web app keeps, with
//! human judgements of citations and their agreement ([`runs`], [`agreement`]).

pub mod agreement;
pub mod beir;
pub mod compare;
pub mod drafts;
pub mod export;
pub mod runs;
pub mod service;
pub mod support;

use std::collections::BTreeMap;
use std::path::Path;

use doctrina_retrieve::Retriever;
use doctrina_types::{PassageFilter, SearchHit, SearchMode};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Retrieve(#[from] doctrina_retrieve::RetrieveError),
    #[error(transparent)]
    Draft(#[from] doctrina_draft::DraftError),
    #[error("evaluation store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("evaluation store: bad record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("evaluation store: {0}")]
    Store(String),
    /// Absent, or not visible to the person asking (the same answer either way).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the run's state (no results yet).
    #[error("{0}")]
    Conflict(String),
}

impl doctrina_types::Faulted for EvalError {
    fn fault(&self) -> doctrina_types::Fault {
        use doctrina_types::Fault;
        match self {
            Self::Format { .. } => Fault::Invalid,
            Self::NotFound(_) => Fault::NotFound,
            Self::Conflict(_) => Fault::Conflict,
            Self::Retrieve(e) => e.fault(),
            Self::Draft(e) => e.fault(),
            Self::Io { .. } | Self::Sql(_) | Self::Json(_) | Self::Store(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Format { .. } => "invalid_input",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Retrieve(e) => e.code(),
            Self::Draft(e) => e.code(),
            Self::Io { .. } | Self::Sql(_) | Self::Json(_) | Self::Store(_) => "evaluation_failed",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Format { .. } | Self::NotFound(_) | Self::Conflict(_) => self.to_string(),
            Self::Retrieve(e) => e.public_message(),
            Self::Draft(e) => e.public_message(),
            _ => "internal error".to_string(),
        }
    }
}

/// `{"id":"q1","question":"...","gold":["2-15","ATP 4-0.6#2-16"]}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub gold: Vec<String>,
}

/// Reads a JSONL question set; every line must be a question with at least one gold item.
pub fn load_questions(path: &Path) -> Result<Vec<Question>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let format = |message: String| EvalError::Format {
            path: path.display().to_string(),
            line: i + 1,
            message,
        };
        let q: Question = serde_json::from_str(line).map_err(|e| format(e.to_string()))?;
        if q.gold.is_empty() {
            return Err(format(format!("question '{}' has no gold items", q.id)));
        }
        out.push(q);
    }
    Ok(out)
}

/// Does `hit` cover gold item `item`: a paragraph number, optionally prefixed by a
/// publication or document id and `#` (`ATP 4-0.6#2-16`, `atp-4-0-6#2-16`, `2-16`)?
pub fn covers(hit: &SearchHit, item: &str) -> bool {
    let (scope, paragraph) = match item.rsplit_once('#') {
        Some((scope, paragraph)) => (Some(scope.trim()), paragraph.trim()),
        None => (None, item.trim()),
    };
    let normalise = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let in_scope = scope.is_none_or(|s| {
        hit.doc_id.eq_ignore_ascii_case(s)
            || hit
                .publication
                .as_deref()
                .is_some_and(|p| normalise(p) == normalise(s))
    });
    in_scope && hit.paragraphs.iter().any(|p| p == paragraph)
}

/// The metrics of one mode (averaged over questions) or one question.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "recall@1")]
    pub recall_1: f64,
    #[serde(rename = "recall@5")]
    pub recall_5: f64,
    #[serde(rename = "recall@10")]
    pub recall_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_10: f64,
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
}

impl Metrics {
    /// Adds `other` field by field (for averaging).
    pub fn add(&mut self, other: &Metrics) {
        self.recall_1 += other.recall_1;
        self.recall_5 += other.recall_5;
        self.recall_10 += other.recall_10;
        self.mrr_10 += other.mrr_10;
        self.ndcg_10 += other.ndcg_10;
    }

    /// Per-mode sums over `n` rankings, as means.
    pub fn means(sums: BTreeMap<String, Metrics>, n: f64) -> BTreeMap<String, Metrics> {
        sums.into_iter()
            .map(|(mode, s)| {
                let mean = Metrics {
                    recall_1: s.recall_1 / n,
                    recall_5: s.recall_5 / n,
                    recall_10: s.recall_10 / n,
                    mrr_10: s.mrr_10 / n,
                    ndcg_10: s.ndcg_10 / n,
                };
                (mode, mean)
            })
            .collect()
    }
}

/// Metrics of one ranked list against gold items. Each gold item is credited once, at the
/// first hit that covers it (binary relevance).
pub fn score(hits: &[SearchHit], gold: &[String]) -> Metrics {
    let mut credited = vec![false; gold.len()];
    let mut gains = Vec::new();
    for hit in hits.iter().take(10) {
        let mut gain = 0.0;
        for (g, item) in gold.iter().enumerate() {
            if !credited[g] && covers(hit, item) {
                credited[g] = true;
                gain = 1.0;
            }
        }
        gains.push(gain);
    }
    let recall_at = |k: usize| {
        let found = gold
            .iter()
            .filter(|item| hits.iter().take(k).any(|h| covers(h, item)))
            .count();
        found as f64 / gold.len().max(1) as f64
    };
    let mrr_10 = hits
        .iter()
        .take(10)
        .position(|h| gold.iter().any(|item| covers(h, item)))
        .map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
    let dcg: f64 = gains
        .iter()
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..gold.len().min(10))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    Metrics {
        recall_1: recall_at(1),
        recall_5: recall_at(5),
        recall_10: recall_at(10),
        mrr_10,
        ndcg_10: if ideal > 0.0 { dcg / ideal } else { 0.0 },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub question: String,
    pub gold: Vec<String>,
    pub modes: BTreeMap<String, Metrics>,
}

/// The `doctrina eval retrieval --json` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalReport {
    pub questions: usize,
    pub modes: BTreeMap<String, Metrics>,
    pub per_question: Vec<QuestionResult>,
}

/// Runs every question in every mode (top `k.max(10)`) and averages the metrics.
pub fn evaluate_retrieval(
    retriever: &Retriever,
    questions: &[Question],
    modes: &[SearchMode],
    k: usize,
    filter: &PassageFilter,
) -> Result<RetrievalReport, EvalError> {
    let depth = k.max(10);
    let mut per_question = Vec::with_capacity(questions.len());
    let mut sums: BTreeMap<String, Metrics> = BTreeMap::new();
    for q in questions {
        let mut results = BTreeMap::new();
        for mode in modes {
            let hits = retriever.search(&q.question, *mode, depth, filter)?;
            let m = score(&hits, &q.gold);
            sums.entry(mode.as_str().to_string()).or_default().add(&m);
            results.insert(mode.as_str().to_string(), m);
        }
        per_question.push(QuestionResult {
            id: q.id.clone(),
            question: q.question.clone(),
            gold: q.gold.clone(),
            modes: results,
        });
    }
    let n = questions.len().max(1) as f64;
    Ok(RetrievalReport {
        questions: questions.len(),
        modes: Metrics::means(sums, n),
        per_question,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doctrina_types::ScoreBreakdown;

    fn hit(publication: &str, doc_id: &str, paragraphs: &[&str]) -> SearchHit {
        SearchHit {
            rank: 0,
            passage_id: format!("{doc_id}#0"),
            doc_id: doc_id.into(),
            title: String::new(),
            publication: Some(publication.into()),
            section: String::new(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            pages: vec![],
            marking: "UNCLASSIFIED".into(),
            char_start: 0,
            char_end: 0,
            text: String::new(),
            scores: ScoreBreakdown::new(),
        }
    }

    #[test]
    fn gold_items_match_by_paragraph_publication_or_doc_id() {
        let h = hit("ATP 4-0.6", "atp-4-0-6", &["2-15", "2-16"]);
        assert!(covers(&h, "2-15"));
        assert!(covers(&h, "ATP 4-0.6#2-16"));
        assert!(covers(&h, "atp 4-0.6#2-16"));
        assert!(covers(&h, "atp-4-0-6#2-15"));
        assert!(!covers(&h, "FM 5-0.1#2-15"));
        assert!(!covers(&h, "2-1"));
    }

    #[test]
    fn metrics_follow_their_definitions() {
        let gold = vec!["A#1-1".to_string(), "A#1-2".to_string()];
        let hits = vec![
            hit("B", "b", &["1-1"]),
            hit("A", "a", &["1-2"]),
            hit("A", "a", &["1-1"]),
        ];
        let m = score(&hits, &gold);
        assert_eq!(m.recall_1, 0.0);
        assert_eq!(m.recall_5, 1.0);
        assert_eq!(m.mrr_10, 0.5);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((m.ndcg_10 - dcg / ideal).abs() < 1e-12);
        let json = serde_json::to_value(m).unwrap();
        assert!(json.get("recall@5").is_some() && json.get("ndcg@10").is_some());
    }
}
