use serde::{Deserialize, Serialize};

use crate::Clearance;

/// Which retriever(s) answer a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Bm25,
    Dense,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Bm25 => "bm25",
            Self::Dense => "dense",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hybrid" => Ok(Self::Hybrid),
            "bm25" | "keyword" => Ok(Self::Bm25),
            "dense" | "vector" => Ok(Self::Dense),
            other => Err(format!(
                "unknown search mode '{other}' (expected hybrid, bm25 or dense)"
            )),
        }
    }
}

/// Per-retriever scores of one hit; `None` where that retriever did not return it.
///
/// `bm25` is the raw BM25 score only for readers cleared for every document in the
/// indexes: idf and average length come from the whole corpus, so a raw score moves with
/// documents a reader may not see. For everyone else it is `1 / bm25_rank`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    pub bm25: Option<f32>,
    pub dense: Option<f32>,
    pub fused: f32,
    /// Rank (from 1) in the BM25 list, if it was in it.
    #[serde(default)]
    pub bm25_rank: Option<usize>,
    /// Rank (from 1) in the dense list, if it was in it.
    #[serde(default)]
    pub dense_rank: Option<usize>,
    /// The weights fusion gave each list for this query (why: the search's
    /// [`QueryPlan`](crate::QueryPlan) reasons).
    #[serde(default)]
    pub bm25_weight: f32,
    #[serde(default)]
    pub dense_weight: f32,
    /// Rank (from 1) among the passages whose paragraph number the query names exactly
    /// (`ATP 4-0.6 2-8`, `제24조의2`), if it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_rank: Option<usize>,
    /// Rank (from 1) in the keyword list of the query's translation (cross-lingual
    /// search), if it was in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation_rank: Option<usize>,
}

impl ScoreBreakdown {
    pub fn new() -> Self {
        Self {
            bm25: None,
            dense: None,
            fused: 0.0,
            bm25_rank: None,
            dense_rank: None,
            bm25_weight: 0.0,
            dense_weight: 0.0,
            reference_rank: None,
            translation_rank: None,
        }
    }

    /// Replaces the raw BM25 score by `1 / rank` (see the type's docs).
    pub fn hide_raw_bm25(&mut self) {
        self.bm25 = self.bm25_rank.map(|r| 1.0 / r as f32);
    }
}

impl Default for ScoreBreakdown {
    fn default() -> Self {
        Self::new()
    }
}

/// How one query was searched: its language, what the glossary added to the keyword
/// query, and the weights fusion gave the keyword and semantic lists, with the reasons.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueryPlan {
    /// `en`, `ko`, `mixed` or `unknown`.
    pub language: String,
    /// The text the keyword index searched: the query plus the glossary's terms.
    pub keyword_query: String,
    /// `(term found in the query, terms the glossary added for it)`.
    pub expansion: Vec<(String, Vec<String>)>,
    /// Weight of the added terms against the query's own (1.0).
    pub expansion_weight: f32,
    /// Share of the passages this reader may see that are in the query's language (mixed
    /// documents count half), when the query has one.
    pub same_language_share: Option<f32>,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// Why the weights are what they are, one line each.
    pub reasons: Vec<String>,
    /// Set when a hybrid search ran on keywords alone because the vector store could not
    /// be reached: what failed, for the notice shown with the results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// The query translated into the other language of the reader's sources by the
    /// inference server, when it was (see `retrieval.translate_queries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<QueryTranslation>,
    /// Why a translation was wanted but not used (server down, timed out, an answer in the
    /// wrong language): the search ran on the query as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation_error: Option<String>,
    /// Fusion weight of the translation's keyword list (0 without a translation).
    #[serde(default)]
    pub translation_weight: f32,
}

/// A query translated for cross-lingual search.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueryTranslation {
    /// The translated query, as searched.
    pub text: String,
    /// Its language: `en` or `ko`.
    pub language: String,
    /// `model@server` that translated it.
    pub translator: String,
    /// Glossary pairs given to the translator (`term = translation`).
    pub terms: Vec<String>,
    /// Time the translation took (0 when it came from the cache).
    pub elapsed_ms: u64,
    pub cached: bool,
}

/// One ranked search result, as printed by `doctrina search --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub rank: usize,
    pub passage_id: String,
    pub doc_id: String,
    pub title: String,
    pub publication: Option<String>,
    pub section: String,
    pub paragraphs: Vec<String>,
    pub pages: Vec<u32>,
    pub marking: String,
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
    pub scores: ScoreBreakdown,
}

/// Restricts retrieval. Applied *inside* each retriever's query (never after top-k), so a
/// filtered search still returns its full k.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassageFilter {
    /// Only these documents (empty = all).
    #[serde(default)]
    pub doc_ids: Vec<String>,
    /// Only these publications, e.g. `ATP 4-0.6` (empty = all).
    #[serde(default)]
    pub publications: Vec<String>,
    /// Only documents whose marking rank is at most this.
    #[serde(default)]
    pub max_marking_rank: Option<u32>,
    /// Never these documents.
    #[serde(default)]
    pub exclude_doc_ids: Vec<String>,
    /// Also search editions that a newer indexed edition supersedes (excluded by default).
    #[serde(default)]
    pub include_superseded: bool,
    /// Only what this clearance permits (`None` = unrestricted). Set by the server from the
    /// signed-in account, never read from a request. Retrieval resolves it into
    /// `max_marking_rank` and `exclude_caveats` before the indexes see the filter.
    #[serde(skip)]
    pub clearance: Option<Clearance>,
    /// Never passages of documents carrying one of these caveats (in
    /// [`caveat_token`](crate::caveat_token) form): the caveats a clearance does not permit.
    #[serde(skip)]
    pub exclude_caveats: Vec<String>,
}

impl PassageFilter {
    pub fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
            && self.publications.is_empty()
            && self.max_marking_rank.is_none()
            && self.exclude_doc_ids.is_empty()
            && self.clearance.is_none()
            && self.exclude_caveats.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_cannot_supply_a_clearance() {
        let filter: PassageFilter = serde_json::from_str(
            r#"{"clearance":{"level":"TOP SECRET","caveats":["NOFORN"]},"exclude_caveats":[]}"#,
        )
        .unwrap();
        assert_eq!(filter.clearance, None);
        assert!(filter.is_empty());
        let with = PassageFilter {
            clearance: Some(Clearance {
                level: "SECRET".into(),
                caveats: vec![],
            }),
            ..PassageFilter::default()
        };
        assert!(!with.is_empty());
        let json = serde_json::to_string(&with).unwrap();
        assert!(!json.contains("clearance"), "{json}");
    }
}
