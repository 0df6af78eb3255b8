//! Hybrid retrieval: BM25 top-k and dense top-k, fused with weighted reciprocal rank
//! fusion, each hit carrying its score breakdown. Filters go into both retrievers' queries.
//!
//! Access control: a filter's clearance is resolved ([`Indexes::resolve_clearance`]) into a
//! marking-rank bound and the caveat tokens it does not permit before either query runs, so
//! both the BM25 and the nearest-neighbour query only ever see permitted passages and a
//! restricted search still returns its full k.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doctrina_embed::Embedder;
use doctrina_index::Indexes;
use doctrina_types::config::RetrievalConfig;
use doctrina_types::{Clearance, Marking, PassageFilter, ScoreBreakdown, SearchHit, SearchMode};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("the query is empty")]
    EmptyQuery,
    #[error(transparent)]
    Index(#[from] doctrina_index::IndexError),
    #[error(transparent)]
    Embed(#[from] doctrina_embed::EmbedError),
}

impl doctrina_types::Faulted for RetrieveError {
    fn fault(&self) -> doctrina_types::Fault {
        match self {
            Self::EmptyQuery => doctrina_types::Fault::Invalid,
            Self::Index(e) => e.fault(),
            Self::Embed(e) => e.fault(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::EmptyQuery => "empty_query",
            Self::Index(e) => e.code(),
            Self::Embed(e) => e.code(),
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::EmptyQuery => self.to_string(),
            Self::Index(e) => e.public_message(),
            Self::Embed(e) => e.public_message(),
        }
    }
}

pub type Result<T> = std::result::Result<T, RetrieveError>;

/// Time spent in each stage of one search.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchTimings {
    pub embed: Duration,
    pub bm25: Duration,
    pub dense: Duration,
    pub fuse_and_load: Duration,
}

pub struct Retriever {
    indexes: Arc<Indexes>,
    embedder: Arc<dyn Embedder>,
    config: RetrievalConfig,
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Weighted reciprocal rank fusion: `score(d) = sum_i w_i / (k + rank_i(d))`, ranks from 1.
/// Returns ids best first with each list's original score kept for the breakdown.
pub fn reciprocal_rank_fusion(
    bm25: &[(String, f32)],
    dense: &[(String, f32)],
    k: f32,
    bm25_weight: f32,
    dense_weight: f32,
) -> Vec<(String, ScoreBreakdown)> {
    let mut fused: HashMap<&str, ScoreBreakdown> = HashMap::new();
    for (rank, (id, score)) in bm25.iter().enumerate() {
        let entry = fused.entry(id).or_default();
        entry.bm25 = Some(*score);
        entry.bm25_rank = Some(rank + 1);
        entry.fused += bm25_weight / (k + rank as f32 + 1.0);
    }
    for (rank, (id, score)) in dense.iter().enumerate() {
        let entry = fused.entry(id).or_default();
        entry.dense = Some(*score);
        entry.dense_rank = Some(rank + 1);
        entry.fused += dense_weight / (k + rank as f32 + 1.0);
    }
    let mut out: Vec<(String, ScoreBreakdown)> = fused
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect();
    // Ties broken by id so results are deterministic.
    out.sort_by(|a, b| b.1.fused.total_cmp(&a.1.fused).then_with(|| a.0.cmp(&b.0)));
    out
}

impl Retriever {
    pub fn new(
        indexes: Arc<Indexes>,
        embedder: Arc<dyn Embedder>,
        config: RetrievalConfig,
    ) -> Self {
        Self {
            indexes,
            embedder,
            config,
        }
    }

    pub fn indexes(&self) -> &Arc<Indexes> {
        &self.indexes
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Whether a person holding `clearance` may see a document marked `marking` (`None`:
    /// unrestricted). For callers that look documents or passages up by id rather than
    /// through [`Retriever::search`]: document views, cited sources. The same rules as the
    /// search filter ([`doctrina_types::MarkingScheme::permits`]).
    pub fn permits(&self, clearance: Option<&Clearance>, marking: &Marking) -> bool {
        clearance.is_none_or(|c| self.indexes.scheme.permits(c, marking))
    }

    pub fn search(
        &self,
        query: &str,
        mode: SearchMode,
        k: usize,
        filter: &PassageFilter,
    ) -> Result<Vec<SearchHit>> {
        self.search_timed(query, mode, k, filter)
            .map(|(hits, _)| hits)
    }

    pub fn search_timed(
        &self,
        query: &str,
        mode: SearchMode,
        k: usize,
        filter: &PassageFilter,
    ) -> Result<(Vec<SearchHit>, SearchTimings)> {
        let query = query.trim();
        if query.is_empty() {
            return Err(RetrieveError::EmptyQuery);
        }
        let mut timings = SearchTimings::default();
        if k == 0 {
            return Ok((Vec::new(), timings));
        }
        let clearance = filter.clearance.as_ref();
        let Some(mut filter) = self.indexes.resolve_clearance(filter)? else {
            // The clearance's level is not in the scheme: it permits nothing.
            return Ok((Vec::new(), timings));
        };
        // Superseded editions stay viewable but are not searched unless asked for.
        if !filter.filter().include_superseded {
            let superseded = self.indexes.superseded()?;
            // An edition is replaced only for those who may see its replacement: someone
            // without access to the newer edition keeps searching the one they can read
            // (and learns nothing from it disappearing).
            filter.exclude_docs(
                superseded
                    .iter()
                    .filter(|(_, newer)| self.permits(clearance, &newer.marking))
                    .map(|(old, _)| old.clone()),
            );
        }
        let filter = &filter;
        let candidates = self.config.candidates.max(k);
        let bm25 = if mode != SearchMode::Dense {
            let start = Instant::now();
            let hits = self.indexes.keyword.search(query, candidates, filter)?;
            timings.bm25 = start.elapsed();
            hits
        } else {
            Vec::new()
        };
        let dense = if mode != SearchMode::Bm25 {
            let start = Instant::now();
            let vector = self.embedder.embed(&[query])?.pop().unwrap_or_default();
            timings.embed = start.elapsed();
            let start = Instant::now();
            let hits = self.indexes.vectors.search(&vector, candidates, filter)?;
            timings.dense = start.elapsed();
            hits
        } else {
            Vec::new()
        };
        let start = Instant::now();
        let (bm25_weight, dense_weight) = match mode {
            SearchMode::Hybrid if doctrina_index::keyword::has_identifier(query) => (
                self.config.bm25_weight * self.config.identifier_bm25_boost,
                self.config.dense_weight,
            ),
            SearchMode::Hybrid => (self.config.bm25_weight, self.config.dense_weight),
            SearchMode::Bm25 => (1.0, 0.0),
            SearchMode::Dense => (0.0, 1.0),
        };
        let mut fused =
            reciprocal_rank_fusion(&bm25, &dense, self.config.rrf_k, bm25_weight, dense_weight);
        fused.truncate(k);
        if !filter.sees_everything() {
            for (_, scores) in &mut fused {
                scores.hide_raw_bm25();
            }
        }
        let hits = self.load_hits(fused, clearance)?;
        timings.fuse_and_load = start.elapsed();
        Ok((hits, timings))
    }

    fn load_hits(
        &self,
        fused: Vec<(String, ScoreBreakdown)>,
        clearance: Option<&Clearance>,
    ) -> Result<Vec<SearchHit>> {
        let ids: Vec<String> = fused.iter().map(|(id, _)| id.clone()).collect();
        let catalog = self.indexes.catalog();
        let passages: HashMap<String, _> = catalog
            .passages(&ids)?
            .into_iter()
            .map(|p| (p.passage.id.clone(), p.passage))
            .collect();
        let mut documents = HashMap::new();
        let mut hits = Vec::with_capacity(fused.len());
        for (id, scores) in fused {
            // A passage missing from the catalog means an index is ahead of it (a write in
            // progress); it is skipped rather than shown without its source.
            let Some(passage) = passages.get(&id) else {
                continue;
            };
            if !documents.contains_key(&passage.doc_id) {
                let doc = catalog.document(&passage.doc_id)?;
                documents.insert(passage.doc_id.clone(), doc);
            }
            let Some(Some(doc)) = documents.get(&passage.doc_id) else {
                continue;
            };
            // The queries already excluded what the clearance does not permit; this only
            // matters while a write re-marks a document (the indexes hold the new marking,
            // the catalog's text and marking are still the old ones until it commits).
            if !self.permits(clearance, &doc.meta.marking) {
                tracing::warn!(passage = %id, "hit withheld: its catalog marking is not permitted");
                continue;
            }
            hits.push(SearchHit {
                rank: hits.len() + 1,
                passage_id: passage.id.clone(),
                doc_id: passage.doc_id.clone(),
                title: doc.meta.title.clone(),
                publication: doc.meta.publication.clone(),
                section: passage.section_display(),
                paragraphs: passage.paragraphs.clone(),
                pages: passage.pages.clone(),
                marking: doc.meta.marking.banner(),
                char_start: passage.char_start,
                char_end: passage.char_end,
                text: passage.text.clone(),
                scores,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), 10.0 - i as f32))
            .collect()
    }

    #[test]
    fn rrf_rewards_agreement_and_keeps_breakdown() {
        let fused = reciprocal_rank_fusion(
            &list(&["a", "b", "c"]),
            &list(&["c", "b", "d"]),
            60.0,
            1.0,
            1.0,
        );
        let order: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        // c: 1/63 + 1/61 > b: 2/62 > a: 1/61 > d: 1/63
        assert_eq!(order, vec!["c", "b", "a", "d"]);
        let d = &fused.iter().find(|(id, _)| id == "d").unwrap().1;
        assert_eq!(d.bm25, None);
        assert_eq!(d.dense, Some(8.0));
        assert!((d.fused - 1.0 / 63.0).abs() < 1e-6);
    }

    #[test]
    fn zero_weight_removes_a_retriever_influence() {
        let fused = reciprocal_rank_fusion(&list(&["a", "b"]), &list(&["b", "a"]), 60.0, 0.0, 1.0);
        assert_eq!(fused[0].0, "b");
    }
}
