//! Hybrid retrieval: BM25 top-k and dense top-k, fused with weighted reciprocal rank
//! fusion, each hit carrying its score breakdown. Filters go into both retrievers' queries.
//!
//! Access control: a filter's clearance is resolved ([`Indexes::resolve_clearance`]) into a
//! marking-rank bound and the caveat tokens it does not permit before either query runs, so
//! both the BM25 and the nearest-neighbour query only ever see permitted passages and a
//! restricted search still returns its full k.
//!
//! Languages: every query gets a [`QueryPlan`]. Its language is detected; the glossary
//! adds the other language's terms to the keyword query; and when few of the passages the
//! reader may see are in the query's language (a Korean question over English doctrine),
//! the keyword list, which can then only match through those terms, weighs less than the
//! multilingual semantic list. In that case the query is also translated into the other
//! language (a [`QueryTranslator`]: the inference server, with the glossary's terms); the
//! translation seeks the other language's passages semantically and, in hybrid mode, by
//! keyword too. The plan's reasons say so, and each hit's score breakdown carries the
//! weights used.

pub mod glossary;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doctrina_embed::Embedder;
use doctrina_index::Indexes;
use doctrina_korean::Language;
use doctrina_types::config::RetrievalConfig;
use doctrina_types::{
    Clearance, Marking, PassageFilter, QueryPlan, ScoreBreakdown, SearchHit, SearchMode,
};

pub use glossary::{GlossaryStore, GlossaryStoreError};

/// What a [`QueryTranslator`] is asked: `query`, in `from`, into `to`, using the glossary's
/// pairs `(term in the query, its translation)` where they apply.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationRequest<'a> {
    pub query: &'a str,
    pub from: Language,
    pub to: Language,
    pub terms: &'a [(String, String)],
}

/// Translates queries for cross-lingual search (the inference server, in
/// `doctrina_draft::translate`). Called from synchronous retrieval, on any thread; an
/// implementation bounds its own time and says why it failed.
pub trait QueryTranslator: Send + Sync {
    fn translate(
        &self,
        request: &TranslationRequest<'_>,
    ) -> std::result::Result<doctrina_types::QueryTranslation, String>;
}

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
    glossary: Option<Arc<GlossaryStore>>,
    translator: Option<Arc<dyn QueryTranslator>>,
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
        entry.bm25_weight = bm25_weight;
        entry.dense_weight = dense_weight;
        entry.bm25 = Some(*score);
        entry.bm25_rank = Some(rank + 1);
        entry.fused += bm25_weight / (k + rank as f32 + 1.0);
    }
    for (rank, (id, score)) in dense.iter().enumerate() {
        let entry = fused.entry(id).or_default();
        entry.bm25_weight = bm25_weight;
        entry.dense_weight = dense_weight;
        entry.dense = Some(*score);
        entry.dense_rank = Some(rank + 1);
        entry.fused += dense_weight / (k + rank as f32 + 1.0);
    }
    let mut out: Vec<(String, ScoreBreakdown)> = fused
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect();
    rank_by_fused(&mut out);
    out
}

/// Best fused score first; ties broken by id so results are deterministic.
fn rank_by_fused(fused: &mut [(String, ScoreBreakdown)]) {
    fused.sort_by(|a, b| b.1.fused.total_cmp(&a.1.fused).then_with(|| a.0.cmp(&b.0)));
}

/// Adds the exact-reference list to a fused ranking (`weight / (k + rank)` per passage, as
/// the other lists) and ranks again.
/// Adds one more ranked list to a fused ranking (weighted RRF), `mark` recording each
/// passage's rank in it on its breakdown.
fn add_list(
    fused: &mut Vec<(String, ScoreBreakdown)>,
    list: &[(String, f32)],
    k: f32,
    weight: f32,
    mark: impl Fn(&mut ScoreBreakdown, usize),
) {
    let at: HashMap<String, usize> = fused
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), i))
        .collect();
    for (rank, (id, _)) in list.iter().enumerate() {
        let i = match at.get(id) {
            Some(&i) => i,
            None => {
                fused.push((id.clone(), ScoreBreakdown::default()));
                fused.len() - 1
            }
        };
        let scores = &mut fused[i].1;
        mark(scores, rank + 1);
        scores.fused += weight / (k + rank as f32 + 1.0);
    }
    rank_by_fused(fused);
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
            glossary: None,
            translator: None,
        }
    }

    /// Translates minority-language queries with `translator` (when
    /// `retrieval.translate_queries` is on; see the module docs).
    pub fn with_translator(mut self, translator: Arc<dyn QueryTranslator>) -> Self {
        self.translator = Some(translator);
        self
    }

    /// Expands keyword queries with this glossary.
    pub fn with_glossary(mut self, glossary: Arc<GlossaryStore>) -> Self {
        self.glossary = Some(glossary);
        self
    }

    pub fn glossary(&self) -> Option<&Arc<GlossaryStore>> {
        self.glossary.as_ref()
    }

    /// How `query` will be searched for a reader holding `clearance` (see the module docs),
    /// with its translation when one is wanted: this is where the translator is asked.
    pub fn plan(
        &self,
        query: &str,
        mode: SearchMode,
        clearance: Option<&Clearance>,
    ) -> Result<QueryPlan> {
        let language = doctrina_korean::detect(query);
        let mut plan = QueryPlan {
            language: language.code().to_string(),
            keyword_query: query.to_string(),
            ..QueryPlan::default()
        };
        let share = self.same_language_share(language, clearance)?;
        let minority = share.is_some_and(|share| share < self.config.cross_lingual_share);
        let expansion = self
            .glossary
            .as_ref()
            .map(|glossary| glossary.get().expand(query))
            .unwrap_or_default();
        // The glossary's pair for each of the query's terms: the custodians' words, which
        // a translator is told to use.
        let terms: Vec<(String, String)> = expansion
            .matches
            .iter()
            .filter_map(|(found, added)| added.first().map(|first| (found.clone(), first.clone())))
            .collect();
        if mode != SearchMode::Dense && !expansion.is_empty() {
            for term in expansion.added() {
                plan.keyword_query.push(' ');
                plan.keyword_query.push_str(term);
            }
            // Added terms count fully where the query's own language is the minority of
            // the reader's sources (they are its way in); elsewhere they help without
            // outweighing what was asked.
            plan.expansion_weight = if minority {
                1.0
            } else {
                self.config.glossary_term_weight
            };
            plan.reasons.push(format!(
                "glossary added to the keyword query (weight {}): {}",
                plan.expansion_weight,
                expansion.describe()
            ));
            plan.expansion = expansion.matches;
        }
        let (mut bm25, dense) = match mode {
            SearchMode::Hybrid => (self.config.bm25_weight, self.config.dense_weight),
            SearchMode::Bm25 => (1.0, 0.0),
            SearchMode::Dense => (0.0, 1.0),
        };
        // Keyword mode searches what was typed (and the glossary's terms): a translation
        // is for the semantic side and fusion.
        if minority && mode != SearchMode::Bm25 {
            self.translate(query, language, &terms, &mut plan);
            if plan.translation.is_some() && mode == SearchMode::Hybrid {
                plan.translation_weight = bm25 * self.config.translation_weight;
                plan.reasons.push(format!(
                    "the translation is searched by keyword too (weight {})",
                    plan.translation_weight
                ));
            }
        }
        let translated = plan.translation.is_some();
        if mode == SearchMode::Hybrid {
            plan.same_language_share = share;
            let identifier = doctrina_index::keyword::has_identifier(query);
            if identifier {
                bm25 *= self.config.identifier_bm25_boost;
                plan.reasons.push(format!(
                    "the query names an identifier: keyword weight ×{}",
                    self.config.identifier_bm25_boost
                ));
            }
            match plan.same_language_share {
                Some(share) if share < self.config.cross_lingual_share && !identifier => {
                    bm25 *= self.config.cross_lingual_bm25_weight;
                    plan.reasons.push(format!(
                        "{:.0}% of the passages you can search are in {}: keyword weight ×{} \
                         (it matches other-language sources only through the glossary); \
                         {} carries the query",
                        share * 100.0,
                        language_name(language),
                        self.config.cross_lingual_bm25_weight,
                        if translated {
                            "the translation, with the multilingual semantic ranking,"
                        } else {
                            "the multilingual semantic ranking"
                        }
                    ));
                }
                Some(share) => plan.reasons.push(format!(
                    "{:.0}% of the passages you can search are in {}",
                    share * 100.0,
                    language_name(language)
                )),
                None => {}
            }
        }
        if mode != SearchMode::Bm25 && translated {
            plan.reasons.push(
                "passages in the other language are searched semantically with the translation, \
                 the rest with the query as written"
                    .to_string(),
            );
        } else if mode != SearchMode::Bm25
            && self.config.cross_lingual_dense_offset != 0.0
            && plan.same_language_share.is_some_and(|share| share < 1.0)
        {
            plan.reasons.push(format!(
                "passages in the other language are also searched semantically on their own, \
                 their similarity raised by {} (the cross-lingual gap of the embedding model)",
                self.config.cross_lingual_dense_offset
            ));
        }
        plan.bm25_weight = bm25;
        plan.dense_weight = dense;
        Ok(plan)
    }

    /// Translates the query into the other language of the reader's sources (called when
    /// its own language is their minority), when a translator is configured; the plan
    /// records the translation, or why there is none. A failed translation never fails the
    /// search: the query is searched as written.
    fn translate(
        &self,
        query: &str,
        language: Language,
        terms: &[(String, String)],
        plan: &mut QueryPlan,
    ) {
        let Some(translator) = self
            .translator
            .as_ref()
            .filter(|_| self.config.translate_queries)
        else {
            return;
        };
        let to = match language {
            Language::Korean => Language::English,
            Language::English => Language::Korean,
            Language::Mixed | Language::Unknown => return,
        };
        let request = TranslationRequest {
            query,
            from: language,
            to,
            terms,
        };
        match translator.translate(&request) {
            Ok(translation) => {
                plan.reasons.push(format!(
                    "translated into {} by {}{}: {}",
                    language_name(to),
                    translation.translator,
                    if translation.cached {
                        " (cached)".to_string()
                    } else {
                        format!(" in {} ms", translation.elapsed_ms)
                    },
                    translation.text
                ));
                plan.translation = Some(translation);
            }
            Err(why) => {
                tracing::warn!(error = %why, "query translation failed; searching the query as written");
                plan.reasons.push(format!(
                    "not translated ({why}): the query is searched as written"
                ));
                plan.translation_error = Some(why);
            }
        }
    }

    /// The share of passages a reader holding `clearance` may see whose document is in
    /// `language` (mixed documents count half); `None` for a query without a language or
    /// a reader who can see nothing.
    fn same_language_share(
        &self,
        language: Language,
        clearance: Option<&Clearance>,
    ) -> Result<Option<f32>> {
        let code = match language {
            Language::English | Language::Korean => language.code(),
            Language::Mixed | Language::Unknown => return Ok(None),
        };
        let (mut same, mut total) = (0.0f64, 0.0f64);
        for doc in self.indexes.document_languages()?.iter() {
            if !self.permits(clearance, &doc.marking) {
                continue;
            }
            let n = doc.passages as f64;
            total += n;
            if doc.language == code {
                same += n;
            } else if doc.language == Language::Mixed.code() {
                same += n / 2.0;
            }
        }
        Ok((total > 0.0).then(|| (same / total) as f32))
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

    /// A search and where its time went. Fails if either index fails: drafts, evaluation
    /// runs and the benchmark never run on half the retrieval without saying so.
    pub fn search_timed(
        &self,
        query: &str,
        mode: SearchMode,
        k: usize,
        filter: &PassageFilter,
    ) -> Result<(Vec<SearchHit>, SearchTimings)> {
        self.run(query, mode, k, filter, false)
            .map(|(hits, _, timings)| (hits, timings))
    }

    /// A search with its [`QueryPlan`] (what was searched, with which weights, and why),
    /// for a person reading the results: a hybrid search whose vector store cannot be
    /// reached returns the keyword results, with [`QueryPlan::degraded`] saying so.
    pub fn search_explained(
        &self,
        query: &str,
        mode: SearchMode,
        k: usize,
        filter: &PassageFilter,
    ) -> Result<(Vec<SearchHit>, QueryPlan, SearchTimings)> {
        self.run(query, mode, k, filter, true)
    }

    fn run(
        &self,
        query: &str,
        mode: SearchMode,
        k: usize,
        filter: &PassageFilter,
        may_degrade: bool,
    ) -> Result<(Vec<SearchHit>, QueryPlan, SearchTimings)> {
        let query = query.trim();
        if query.is_empty() {
            return Err(RetrieveError::EmptyQuery);
        }
        let mut timings = SearchTimings::default();
        let mut plan = self.plan(query, mode, filter.clearance.as_ref())?;
        if k == 0 {
            return Ok((Vec::new(), plan, timings));
        }
        let clearance = filter.clearance.as_ref();
        let Some(mut filter) = self.indexes.resolve_clearance(filter)? else {
            // The clearance's level is not in the scheme: it permits nothing.
            return Ok((Vec::new(), plan, timings));
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
        let translation = plan.translation.as_ref().map(|t| t.text.clone());
        let bm25 = if mode != SearchMode::Dense {
            let start = Instant::now();
            let expansion = plan.keyword_query[query.len().min(plan.keyword_query.len())..].trim();
            let hits = self.indexes.keyword.search_expanded(
                query,
                expansion,
                plan.expansion_weight,
                candidates,
                filter,
            )?;
            timings.bm25 = start.elapsed();
            hits
        } else {
            Vec::new()
        };
        // The translation's own keyword list: it matches the other language's passages word
        // for word, where the query reaches them only through the glossary's terms.
        let translated_bm25 = match &translation {
            Some(translation) if mode == SearchMode::Hybrid => {
                let start = Instant::now();
                let hits = self.indexes.keyword.search_expanded(
                    translation,
                    "",
                    0.0,
                    candidates,
                    filter,
                )?;
                timings.bm25 += start.elapsed();
                hits
            }
            _ => Vec::new(),
        };
        let dense = if mode != SearchMode::Bm25 {
            let start = Instant::now();
            // The other language's passages are sought with the translation where there is
            // one, else with the glossary's terms added (in their language); the rest with
            // the query as written.
            let other_text = match &translation {
                Some(translation) => Some(translation.as_str()),
                None if !plan.expansion.is_empty() => Some(plan.keyword_query.as_str()),
                None => None,
            };
            let texts: Vec<&str> = std::iter::once(query).chain(other_text).collect();
            let mut vectors = self.embedder.embed_queries(&texts)?;
            let other_vector = if other_text.is_some() {
                vectors.pop()
            } else {
                None
            };
            let vector = vectors.pop().unwrap_or_default();
            timings.embed = start.elapsed();
            let start = Instant::now();
            let hits = match self.dense_candidates(
                &vector,
                other_vector.as_deref().unwrap_or(&vector),
                translation.is_some(),
                candidates,
                filter,
                &plan,
            ) {
                Err(RetrieveError::Index(e @ doctrina_index::IndexError::Vector(_)))
                    if may_degrade && mode == SearchMode::Hybrid =>
                {
                    tracing::warn!(error = %e, "vector search failed; keyword results only");
                    plan.degraded = Some(e.to_string());
                    plan.dense_weight = 0.0;
                    plan.reasons.push(
                        "keyword results only: the vector store could not be reached".to_string(),
                    );
                    Vec::new()
                }
                other => other?,
            };
            timings.dense = start.elapsed();
            hits
        } else {
            Vec::new()
        };
        // Passages whose paragraph number the query names: a list of their own, weighted
        // like the keyword side (the semantic side cannot see paragraph numbers).
        let references = if mode == SearchMode::Hybrid {
            self.indexes
                .keyword
                .search_references(query, candidates, filter)?
        } else {
            Vec::new()
        };
        let start = Instant::now();
        let mut fused = reciprocal_rank_fusion(
            &bm25,
            &dense,
            self.config.rrf_k,
            plan.bm25_weight,
            plan.dense_weight,
        );
        if !translated_bm25.is_empty() {
            let weight = plan.translation_weight;
            add_list(
                &mut fused,
                &translated_bm25,
                self.config.rrf_k,
                weight,
                |s, rank| {
                    s.translation_rank = Some(rank);
                },
            );
        }
        if !references.is_empty() {
            let weight = plan.bm25_weight;
            add_list(
                &mut fused,
                &references,
                self.config.rrf_k,
                weight,
                |s, rank| {
                    s.reference_rank = Some(rank);
                },
            );
        }
        fused.truncate(k);
        if !filter.sees_everything() {
            for (_, scores) in &mut fused {
                scores.hide_raw_bm25();
            }
        }
        let hits = self.load_hits(fused, clearance)?;
        timings.fuse_and_load = start.elapsed();
        Ok((hits, plan, timings))
    }

    /// The semantic ranking, balanced across languages: the nearest passages overall and,
    /// when the reader's corpus holds documents in the other language than the query's,
    /// the nearest of those on their own; the other language's similarities are raised by
    /// `cross_lingual_dense_offset` before one ranking is formed (raw cosines are kept for
    /// the breakdown).
    fn dense_candidates(
        &self,
        vector: &[f32],
        other_vector: &[f32],
        translated: bool,
        candidates: usize,
        filter: &doctrina_index::AccessFilter,
        plan: &QueryPlan,
    ) -> Result<Vec<(String, f32)>> {
        let search = |v: &[f32]| self.indexes.vectors.search(v, candidates, filter);
        let other = match plan.language.as_str() {
            "en" => Language::Korean.code(),
            "ko" => Language::English.code(),
            _ => return Ok(search(vector)?),
        };
        // A translation is in the other language's passages' own language: no gap to make up.
        let offset = if translated {
            0.0
        } else {
            self.config.cross_lingual_dense_offset
        };
        if offset == 0.0 && !translated {
            return Ok(search(vector)?);
        }
        let languages = self.indexes.document_languages()?;
        let other_docs: Vec<String> = languages
            .iter()
            .filter(|d| d.language == other)
            .map(|d| d.doc_id.clone())
            .collect();
        // A corpus in one language needs no balance: the plain ranking is the ranking (the
        // translation's, when it is all in the translation's language).
        if other_docs.len() == languages.len() {
            return Ok(search(if translated { other_vector } else { vector })?);
        }
        let hits = search(vector)?;
        let Some(narrowed) = filter.only_docs(&other_docs) else {
            return Ok(hits);
        };
        let other_hits = self
            .indexes
            .vectors
            .search(other_vector, candidates, &narrowed)?;
        let other_docs: HashSet<&str> = other_docs.iter().map(String::as_str).collect();
        let is_other = |id: &str| {
            id.rsplit_once('#')
                .is_some_and(|(doc, _)| other_docs.contains(doc))
        };
        let mut seen = HashSet::new();
        let mut merged: Vec<(String, f32, f32)> = hits
            .into_iter()
            // With a translation, each language's passages are ranked by the query in
            // their own language: the original's similarities to the other language's
            // passages are dropped for the translation's.
            .filter(|(id, _)| !(translated && is_other(id)))
            .chain(other_hits)
            .filter(|(id, _)| seen.insert(id.clone()))
            .map(|(id, cosine)| {
                let ranked = if is_other(&id) {
                    cosine + offset
                } else {
                    cosine
                };
                (id, cosine, ranked)
            })
            .collect();
        merged.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        merged.truncate(candidates);
        Ok(merged
            .into_iter()
            .map(|(id, cosine, _)| (id, cosine))
            .collect())
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

fn language_name(language: Language) -> &'static str {
    match language {
        Language::English => "English",
        Language::Korean => "Korean",
        Language::Mixed => "both languages",
        Language::Unknown => "no language",
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
