//! [`Indexes`]: the catalog, keyword index and vector store of one data directory, opened
//! together under an exclusive lock, written in an order that a crash cannot turn into
//! disagreement, and checked (and repaired) on open.
//!
//! Write protocol for a batch of documents:
//! 1. catalog: mark them `indexing` (new documents get an empty row; existing ones keep
//!    their last committed metadata and passages);
//! 2. both indexes: delete the documents' old entries, add the new ones; commit tantivy
//!    (Qdrant Edge logs every update to its WAL);
//! 3. catalog: replace passages and metadata, mark `indexed`, in one transaction.
//!
//! A crash before 3 leaves documents in `indexing`; [`Indexes::check`] then puts both indexes
//! back to the catalog's last committed state (or removes never-committed documents), so
//! nothing that was indexed is lost. Deletions mark `deleting` first for the same reason.
//!
//! `index-format.json` records the index format and the marking scheme the indexes were
//! built with. When either differs on open (an index from an older doctrina, or a scheme
//! whose levels changed, which changes every stored rank), the keyword index is recreated
//! and both indexes are rebuilt from the catalog, reusing stored vectors, before anything
//! can search them; the file is written only once that rebuild is complete.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use doctrina_embed::Embedder;
use doctrina_types::{DocumentStatus, Marking, MarkingScheme, PassageFilter, caveat_token};
use serde::{Deserialize, Serialize};

use crate::access::AccessFilter;
use crate::catalog::{Catalog, DocumentRecord, StoredPassage, embedding_text};
use crate::error::{IndexError, Result};
use crate::keyword::{KeywordDoc, KeywordIndex};
use crate::vector::{EdgeVectorStore, VectorPoint, VectorStore};

/// Fault injection for crash tests: `DOCTRINA_FAILPOINT=<name>` aborts the process at the
/// named point, exactly as a kill would. Points: `after-index-write` (both indexes written
/// and committed, catalog not yet); `after-vector-copy` (one document's vectors copied to
/// another backend, the rest not).
fn failpoint(name: &str) {
    if std::env::var_os("DOCTRINA_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("doctrina: failpoint {name} reached, aborting");
        std::process::abort();
    }
}

/// The index format: bump when what the indexes hold changes in a way that needs every
/// document re-added (2: the keyword `caveat` field and caveat tokens in vector payloads;
/// 3: the `doctrina` analyzer, Korean by morphemes, and Korean article identifiers).
const INDEX_FORMAT: u32 = 3;
const INDEX_FORMAT_FILE: &str = "index-format.json";

/// What the indexes of a data directory were built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IndexFormat {
    format: u32,
    /// The marking scheme's levels: stored ranks are positions in this list.
    levels: Vec<String>,
    /// How Korean text was analysed ([`doctrina_korean::analysis_name`]): keyword terms
    /// written by one analysis cannot be searched with another.
    #[serde(default)]
    analysis: String,
}

impl IndexFormat {
    fn read(data_dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(data_dir.join(INDEX_FORMAT_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(INDEX_FORMAT_FILE);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| IndexError::Corrupt(format!("index format: {e}")))?;
        doctrina_types::write_atomically(&path, &json)
            .map_err(|source| IndexError::Io { path, source })
    }
}

/// The caveats of a marking in [`caveat_token`] form, sorted and deduplicated: what both
/// indexes store and filter on.
pub fn caveat_tokens_of(marking: &Marking) -> Vec<String> {
    let tokens: BTreeSet<String> = marking.caveats.iter().map(|c| caveat_token(c)).collect();
    tokens.into_iter().collect()
}

/// A parsed, embedded document ready to be written.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    pub record_meta: doctrina_types::DocumentMeta,
    /// Not trusted: [`Indexes::write_documents`] stores the rank the scheme gives the
    /// document's level ([`Indexes::marking_rank`]), so ranks always follow the scheme.
    pub marking_rank: u32,
    pub body: String,
    pub passages: Vec<StoredPassage>,
    pub vectors: Vec<Vec<f32>>,
}

/// What a consistency check found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthReport {
    /// Which vector store was checked (`embedded Qdrant Edge`, or the server and collection).
    pub vector_store: String,
    pub documents: usize,
    pub catalog_passages: usize,
    pub keyword_passages: usize,
    pub vector_passages: usize,
    /// Documents found with an interrupted write (status `indexing` or `deleting`).
    pub interrupted: Vec<String>,
    /// Documents whose interrupted write or mismatched counts were repaired.
    pub repaired: Vec<String>,
    /// Documents removed because their first indexing or their deletion was interrupted.
    pub removed: Vec<String>,
    /// Document ids found in an index but not in the catalog (removed when repairing).
    pub orphans: Vec<String>,
    /// Documents whose index counts disagree with the catalog (left as found: no repair).
    pub mismatched: Vec<String>,
    pub consistent: bool,
}

/// What [`Indexes::copy_vectors`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// Documents in the catalog.
    pub documents: usize,
    /// Documents whose vectors were written to the target.
    pub copied: usize,
    /// Documents the target already held in full (an earlier, interrupted copy).
    pub skipped: usize,
    /// Vectors written.
    pub vectors: usize,
    /// Vectors the target holds at the end (equal to the catalog's passages).
    pub target_vectors: usize,
}

/// One indexed document's language, marking and passage count: what retrieval weighs the
/// keyword side by (the share of passages a reader may see that are in the query's
/// language).
#[derive(Debug, Clone)]
pub struct DocumentLanguage {
    pub doc_id: String,
    pub language: String,
    pub marking: Marking,
    pub passages: usize,
}

/// `old edition id -> the newer edition`.
pub type Superseded = Arc<BTreeMap<String, crate::catalog::Newer>>;

/// Distinct caveat tokens ([`caveat_token`] form) that documents in the indexes carry.
pub type CaveatTokens = Arc<BTreeSet<String>>;

/// The known caveat tokens, cached, plus those of documents being written right now (their
/// caveats reach the indexes before the catalog), counted per write in progress.
#[derive(Default)]
struct CaveatCache {
    tokens: Option<CaveatTokens>,
    /// The highest rank in the catalog (`Some(None)`: no documents), cached likewise.
    highest_rank: Option<Option<u32>>,
    /// Ranks of documents being written right now, counted per write in progress.
    pending_ranks: BTreeMap<u32, usize>,
    pending: BTreeMap<String, usize>,
}

/// Keeps a write's caveat tokens known until the catalog holds them.
struct PendingCaveats<'a> {
    indexes: &'a Indexes,
    tokens: Vec<String>,
    ranks: Vec<u32>,
}

impl Drop for PendingCaveats<'_> {
    fn drop(&mut self) {
        let mut cache = self.indexes.caveat_cache();
        for token in &self.tokens {
            if let Some(n) = cache.pending.get_mut(token) {
                *n -= 1;
                if *n == 0 {
                    cache.pending.remove(token);
                }
            }
        }
        for rank in &self.ranks {
            if let Some(n) = cache.pending_ranks.get_mut(rank) {
                *n -= 1;
                if *n == 0 {
                    cache.pending_ranks.remove(rank);
                }
            }
        }
        cache.tokens = None;
        cache.highest_rank = None;
    }
}

/// What putting a document back to its catalog state did.
enum Restored {
    Rebuilt,
    Removed,
    NotInCatalog,
}

pub struct Indexes {
    data_dir: PathBuf,
    _lock: File,
    catalog: Mutex<Catalog>,
    pub keyword: KeywordIndex,
    pub vectors: Box<dyn VectorStore>,
    pub scheme: MarkingScheme,
    /// Superseded editions, cached until the next write to the catalog's documents.
    superseded: Mutex<Option<Superseded>>,
    /// Documents' languages, cached the same way.
    languages: Mutex<Option<Arc<Vec<DocumentLanguage>>>>,
    /// Caveat tokens, cached the same way (see [`Indexes::caveat_tokens`]).
    caveats: Mutex<CaveatCache>,
}

impl std::fmt::Debug for Indexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Indexes {
    /// Opens (creating if needed) the indexes in `data_dir` with the embedded Qdrant Edge
    /// vector store. Fails with [`IndexError::Locked`] if another process has them open.
    /// Indexes built with another index format or marking scheme are rebuilt from the
    /// catalog first (see the module docs).
    pub fn open(data_dir: &Path, dimension: usize, scheme: MarkingScheme) -> Result<Self> {
        Self::open_with(data_dir, scheme, |data_dir| {
            Ok(Box::new(EdgeVectorStore::open(
                &data_dir.join("vectors"),
                dimension,
            )?))
        })
    }

    /// Opens the indexes with the vector store `vectors` makes (given the data directory,
    /// once the directory is locked): the composition root's choice of backend.
    pub fn open_with(
        data_dir: &Path,
        scheme: MarkingScheme,
        vectors: impl FnOnce(&Path) -> Result<Box<dyn VectorStore>>,
    ) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| IndexError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let lock_path = data_dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| IndexError::Io {
                path: lock_path.clone(),
                source,
            })?;
        if lock.try_lock().is_err() {
            return Err(IndexError::Locked {
                path: data_dir.to_path_buf(),
            });
        }
        let catalog = Catalog::open(&data_dir.join("catalog.sqlite"))?;
        let format = IndexFormat {
            format: INDEX_FORMAT,
            levels: scheme.levels.clone(),
            analysis: doctrina_korean::analysis_name().to_string(),
        };
        let stored = IndexFormat::read(data_dir);
        if let Some(stored) = &stored
            && stored.format > INDEX_FORMAT
        {
            return Err(IndexError::Corrupt(format!(
                "the indexes in {} were written by a newer doctrina (index format {}, this one \
                 reads {INDEX_FORMAT})",
                data_dir.display(),
                stored.format
            )));
        }
        let keyword_dir = data_dir.join("keyword");
        let mut rebuild = stored.as_ref() != Some(&format);
        let keyword = if rebuild {
            KeywordIndex::recreate(&keyword_dir)?
        } else {
            match KeywordIndex::open(&keyword_dir) {
                Err(IndexError::KeywordSchema { .. }) => {
                    rebuild = true;
                    KeywordIndex::recreate(&keyword_dir)?
                }
                other => other?,
            }
        };
        let vectors = vectors(data_dir)?;
        let indexes = Self {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            catalog: Mutex::new(catalog),
            keyword,
            vectors,
            scheme,
            superseded: Mutex::new(None),
            languages: Mutex::new(None),
            caveats: Mutex::new(CaveatCache::default()),
        };
        if rebuild {
            indexes.rebuild_all()?;
            format.write(data_dir)?;
        }
        Ok(indexes)
    }

    /// Rebuilds both indexes from the catalog into a just-recreated keyword index: ranks
    /// recomputed under the current scheme, caveats in token form. Stored vectors are
    /// reused; a document whose vectors are missing is left out of both indexes, so it
    /// cannot be found until `check` (which runs on open, with the embedder) re-embeds it.
    /// Interrupted writes are resolved on the way, exactly as `check` with repair would.
    fn rebuild_all(&self) -> Result<()> {
        let documents = self.catalog().documents()?;
        if !documents.is_empty() {
            tracing::warn!(
                documents = documents.len(),
                "rebuilding the indexes from the catalog (new index format, marking scheme or Korean analysis)"
            );
        }
        let ranks: Vec<(String, u32)> = documents
            .iter()
            .map(|d| (d.meta.id.clone(), self.marking_rank(&d.meta.marking.level)))
            .collect();
        self.catalog().set_marking_ranks(&ranks)?;
        let keep: Vec<String> = documents.iter().map(|d| d.meta.id.clone()).collect();
        self.vectors.retain_docs(&keep)?;
        for d in &documents {
            match self.restore(&d.meta.id, None) {
                Ok(_) => {}
                Err(IndexError::Corrupt(error)) => {
                    tracing::warn!(document = %d.meta.id, %error, "left out of the rebuilt indexes");
                    self.purge(&d.meta.id)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.keyword.commit()?;
        self.vectors.flush()?;
        self.documents_changed();
        Ok(())
    }

    /// Documents that a newer indexed edition supersedes (`old id -> new id`). Computed
    /// once and kept until a write changes the catalog's documents, so a search pays one
    /// uncontended lock and an `Arc` clone.
    pub fn superseded(&self) -> Result<Superseded> {
        if let Some(map) = self
            .superseded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(map.clone());
        }
        let map = Arc::new(crate::catalog::superseded_by(&self.catalog().documents()?));
        *self.superseded.lock().unwrap_or_else(|p| p.into_inner()) = Some(map.clone());
        Ok(map)
    }

    /// The language, marking and passage count of every indexed document, cached until a
    /// write changes the catalog's documents. Callers filter by what a reader may see.
    pub fn document_languages(&self) -> Result<Arc<Vec<DocumentLanguage>>> {
        if let Some(list) = self
            .languages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(list.clone());
        }
        let list: Vec<DocumentLanguage> = self
            .catalog()
            .documents()?
            .into_iter()
            .filter(|d| d.status == DocumentStatus::Indexed)
            .map(|d| DocumentLanguage {
                doc_id: d.meta.id,
                language: d.meta.language,
                marking: d.meta.marking,
                passages: d.chunk_count,
            })
            .collect();
        let list = Arc::new(list);
        *self.languages.lock().unwrap_or_else(|p| p.into_inner()) = Some(list.clone());
        Ok(list)
    }

    /// Forgets the superseded map, the languages and the caveat tokens after a write to
    /// the catalog's documents.
    fn documents_changed(&self) {
        *self.superseded.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.languages.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut cache = self.caveat_cache();
        cache.tokens = None;
        cache.highest_rank = None;
    }

    fn caveat_cache(&self) -> MutexGuard<'_, CaveatCache> {
        self.caveats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every caveat token ([`caveat_token`] form) that a passage in either index may carry:
    /// the caveats of the catalog's documents, of documents being written right now, and
    /// those in the keyword index's terms (which covers a write a crash interrupted). A
    /// superset is harmless: it only feeds the list of caveats a clearance is denied.
    /// Cached until a write changes the catalog's documents, so a search costs no catalog
    /// query. Computed under the cache's lock, so a write finishing meanwhile cannot leave
    /// a stale set behind.
    pub fn caveat_tokens(&self) -> Result<CaveatTokens> {
        let mut cache = self.caveat_cache();
        if let Some(tokens) = &cache.tokens {
            return Ok(tokens.clone());
        }
        let mut tokens: BTreeSet<String> = cache.pending.keys().cloned().collect();
        for d in self.catalog().documents()? {
            tokens.extend(caveat_tokens_of(&d.meta.marking));
        }
        tokens.extend(self.keyword.caveat_terms()?);
        let tokens = Arc::new(tokens);
        cache.tokens = Some(tokens.clone());
        Ok(tokens)
    }

    /// Registers the caveats of documents about to be written until the guard drops.
    fn pending_caveats(&self, docs: &[PreparedDocument]) -> PendingCaveats<'_> {
        let tokens: Vec<String> = docs
            .iter()
            .flat_map(|d| caveat_tokens_of(&d.record_meta.marking))
            .collect();
        let ranks: Vec<u32> = docs
            .iter()
            .map(|d| self.marking_rank(&d.record_meta.marking.level))
            .collect();
        let mut cache = self.caveat_cache();
        for token in &tokens {
            *cache.pending.entry(token.clone()).or_default() += 1;
        }
        for rank in &ranks {
            *cache.pending_ranks.entry(*rank).or_default() += 1;
        }
        cache.tokens = None;
        drop(cache);
        PendingCaveats {
            indexes: self,
            tokens,
            ranks,
        }
    }

    /// Turns `filter.clearance` into what both indexes filter on inside their queries: the
    /// rank bound becomes the lower of `max_marking_rank` and the clearance's rank, and every
    /// known caveat token the clearance does not permit goes to `exclude_caveats`. The
    /// result carries no clearance. `None` when the clearance permits nothing (its level is
    /// not in the scheme). A filter without a clearance comes back unchanged.
    ///
    /// Documents whose level the scheme does not know are stored with a rank above the top
    /// level ([`Indexes::marking_rank`]), so no clearance reaches them.
    pub fn resolve_clearance(&self, filter: &PassageFilter) -> Result<Option<AccessFilter>> {
        let Some(clearance) = &filter.clearance else {
            return Ok(Some(AccessFilter::resolved(filter.clone(), true)));
        };
        let Some(rank) = self.scheme.rank(&clearance.level) else {
            return Ok(None);
        };
        let mut resolved = filter.clone();
        resolved.clearance = None;
        resolved.max_marking_rank = Some(filter.max_marking_rank.map_or(rank, |m| m.min(rank)));
        let mut denied = false;
        for token in self.caveat_tokens()?.iter() {
            if !self.scheme.permits_caveat(clearance, token) {
                denied = true;
                if !resolved.exclude_caveats.contains(token) {
                    resolved.exclude_caveats.push(token.clone());
                }
            }
        }
        let sees_everything = !denied && self.highest_rank()?.is_none_or(|top| top <= rank);
        Ok(Some(AccessFilter::resolved(resolved, sees_everything)))
    }

    /// The highest marking rank of any document in the indexes: the catalog's (cached with
    /// the caveats) and those of writes in progress.
    pub fn highest_rank(&self) -> Result<Option<u32>> {
        let mut cache = self.caveat_cache();
        let pending = cache.pending_ranks.keys().next_back().copied();
        let committed = match cache.highest_rank {
            Some(top) => top,
            None => {
                let top = self
                    .catalog()
                    .documents()?
                    .iter()
                    .map(|d| self.marking_rank(&d.meta.marking.level))
                    .max();
                cache.highest_rank = Some(top);
                top
            }
        };
        Ok(committed.max(pending))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The catalog, for reads and for the indexer's bookkeeping.
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rank stored for a document's level. Levels the scheme does not know (ingestion
    /// refuses them, but a scheme can change under an existing catalog) rank above the top
    /// level, so no clearance permits them; only unrestricted searches return them.
    pub fn marking_rank(&self, level: &str) -> u32 {
        self.scheme
            .rank(level)
            .unwrap_or(self.scheme.levels.len() as u32)
    }

    fn add_to_indexes(
        &self,
        record: &DocumentRecord,
        passages: &[StoredPassage],
        vectors: &[Vec<f32>],
    ) -> Result<()> {
        let meta = &record.meta;
        // Ranks follow the current scheme, whatever rank an older scheme gave the record.
        let marking_rank = self.marking_rank(&meta.marking.level);
        let caveats = caveat_tokens_of(&meta.marking);
        let sections: Vec<String> = passages
            .iter()
            .map(|p| p.passage.section_display())
            .collect();
        let docs: Vec<KeywordDoc<'_>> = passages
            .iter()
            .zip(&sections)
            .map(|(sp, section)| KeywordDoc {
                passage_id: &sp.passage.id,
                doc_id: &meta.id,
                title: &meta.title,
                publication: meta.publication.as_deref(),
                section,
                paragraphs: &sp.passage.paragraphs,
                body: &sp.passage.text,
                marking_rank,
                caveats: &caveats,
            })
            .collect();
        self.keyword.add(&docs)?;
        self.vectors
            .upsert(&self.points_of(record, passages, vectors.to_vec()))
    }

    /// The vector store's points for passages of `record` and their vectors: the payload
    /// every backend filters on, ranked under the current scheme.
    fn points_of(
        &self,
        record: &DocumentRecord,
        passages: &[StoredPassage],
        vectors: Vec<Vec<f32>>,
    ) -> Vec<VectorPoint> {
        let meta = &record.meta;
        let marking_rank = self.marking_rank(&meta.marking.level);
        let caveats = caveat_tokens_of(&meta.marking);
        passages
            .iter()
            .zip(vectors)
            .map(|(sp, vector)| VectorPoint {
                passage_id: sp.passage.id.clone(),
                doc_id: meta.id.clone(),
                marking_rank,
                caveats: caveats.clone(),
                publication: meta.publication.clone(),
                vector,
            })
            .collect()
    }

    /// Copies every document's stored vectors into `target`, another vector store, without
    /// embedding anything: the catalog says which passages exist, this store holds their
    /// vectors. A document `target` already holds in full is skipped, so a copy that was
    /// killed resumes where it stopped; a partly copied one is written again. Documents the
    /// catalog no longer has are removed from `target`. `progress(done, total)` counts
    /// passages. Fails, naming the document, if this store lacks any of its vectors (`check
    /// --repair` re-embeds them first).
    pub fn copy_vectors(
        &self,
        target: &dyn VectorStore,
        progress: &dyn Fn(usize, usize),
    ) -> Result<CopyReport> {
        let documents = self.catalog().documents()?;
        let total = self.catalog().passage_count()?;
        let held = target.doc_counts()?;
        let mut report = CopyReport {
            documents: documents.len(),
            ..CopyReport::default()
        };
        let mut done = 0;
        for d in &documents {
            let id = &d.meta.id;
            if matches!(
                d.status,
                DocumentStatus::Indexing | DocumentStatus::Deleting
            ) {
                return Err(IndexError::Corrupt(format!(
                    "document {id} has an interrupted write; run `doctrina check --repair` first"
                )));
            }
            if held.get(id) == Some(&d.chunk_count) {
                report.skipped += 1;
                done += d.chunk_count;
                progress(done, total);
                continue;
            }
            let passages = self.catalog().passages_of(id)?;
            let ids: Vec<String> = passages.iter().map(|p| p.passage.id.clone()).collect();
            let mut stored = self.vectors.vectors(&ids)?;
            let vectors: Vec<Vec<f32>> = ids
                .iter()
                .map(|p| stored.remove(p))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    IndexError::Corrupt(format!(
                        "document {id} lacks some of its vectors in {}; run `doctrina check \
                         --repair` first",
                        self.vectors.describe()
                    ))
                })?;
            target.delete_doc(id)?;
            target.upsert(&self.points_of(d, &passages, vectors))?;
            report.copied += 1;
            report.vectors += passages.len();
            failpoint("after-vector-copy");
            done += d.chunk_count;
            progress(done, total);
        }
        let keep: Vec<String> = documents.iter().map(|d| d.meta.id.clone()).collect();
        target.retain_docs(&keep)?;
        target.flush()?;
        let count = target.count()?;
        if count != total {
            return Err(IndexError::Corrupt(format!(
                "{} holds {count} vectors after the copy, the catalog {total} passages",
                target.describe()
            )));
        }
        report.target_vectors = count;
        Ok(report)
    }

    /// Replaces every stored vector with one from `embedder` (the index was written by
    /// another model, and vectors of two models must never be mixed in one search). Reads
    /// each document's passages from the catalog, embeds them as passages and replaces the
    /// document's points; `progress(done, total)` counts passages. The caller records the
    /// new model only once this returns, so an interrupted run starts over.
    pub fn reembed_all(
        &self,
        embedder: &dyn Embedder,
        progress: &dyn Fn(usize, usize),
    ) -> Result<usize> {
        let documents = self.catalog().documents()?;
        let total = self.catalog().passage_count()?;
        let mut done = 0;
        for d in &documents {
            let passages = self.catalog().passages_of(&d.meta.id)?;
            let texts: Vec<String> = passages
                .iter()
                .map(|p| embedding_text(&d.meta, &p.passage))
                .collect();
            let mut vectors = Vec::with_capacity(passages.len());
            for texts in texts.chunks(128) {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                vectors.extend(embedder.embed_passages(&refs)?);
                done += texts.len();
                progress(done, total);
            }
            self.vectors.delete_doc(&d.meta.id)?;
            self.vectors
                .upsert(&self.points_of(d, &passages, vectors))?;
        }
        self.vectors.flush()?;
        Ok(done)
    }

    fn purge(&self, doc_id: &str) -> Result<()> {
        self.keyword.delete_doc(doc_id);
        self.vectors.delete_doc(doc_id)
    }

    /// Writes documents to both indexes and then the catalog (see the module docs).
    pub fn write_documents(&self, docs: &[PreparedDocument], pipeline_version: u32) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let ranks: Vec<u32> = docs
            .iter()
            .map(|d| self.marking_rank(&d.record_meta.marking.level))
            .collect();
        let begin: Vec<_> = docs
            .iter()
            .zip(&ranks)
            .map(|(d, rank)| (&d.record_meta, *rank))
            .collect();
        // Searches must know these caveats from the moment the indexes hold them.
        let _pending = self.pending_caveats(docs);
        self.documents_changed();
        self.catalog().begin_documents(&begin)?;
        let written = (|| -> Result<()> {
            for (doc, rank) in docs.iter().zip(&ranks) {
                self.purge(&doc.record_meta.id)?;
                let record = DocumentRecord {
                    meta: doc.record_meta.clone(),
                    marking_rank: *rank,
                    pipeline_version,
                    status: DocumentStatus::Indexing,
                    chunk_count: doc.passages.len(),
                    last_error: None,
                    created_at: String::new(),
                    updated_at: String::new(),
                    indexed_at: None,
                };
                self.add_to_indexes(&record, &doc.passages, &doc.vectors)?;
            }
            self.keyword.commit()
        })();
        if let Err(e) = written {
            // Put the indexes back to the catalog's last committed state before reporting.
            let _ = self.keyword.rollback();
            let ids: Vec<String> = docs.iter().map(|d| d.record_meta.id.clone()).collect();
            tracing::error!(error = %e, "index write failed, restoring previous state");
            let repaired = self.repair_interrupted(&ids, None);
            self.documents_changed();
            return match repaired {
                Ok(_) => Err(e),
                Err(repair) => Err(IndexError::Corrupt(format!(
                    "write failed ({e}) and restoring failed ({repair}); run `doctrina check`"
                ))),
            };
        }
        failpoint("after-index-write");
        let commit: Vec<_> = docs
            .iter()
            .zip(&ranks)
            .map(|(d, rank)| {
                (
                    &d.record_meta,
                    *rank,
                    d.body.as_str(),
                    d.passages.as_slice(),
                )
            })
            .collect();
        let committed = self.catalog().commit_documents(&commit, pipeline_version);
        self.documents_changed();
        committed
    }

    /// Removes documents from both indexes, then from the catalog.
    pub fn remove_documents(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.catalog().set_status(ids, DocumentStatus::Deleting)?;
        for id in ids {
            self.purge(id)?;
        }
        self.keyword.commit()?;
        let deleted = self.catalog().delete_documents(ids);
        self.documents_changed();
        deleted
    }

    /// Makes vector writes durable and lets Qdrant Edge optimise its segments.
    pub fn flush(&self) -> Result<()> {
        self.vectors.flush()
    }

    /// Puts documents whose write was interrupted back to their catalog state: documents
    /// with committed passages are rebuilt from them (reusing stored vectors where the
    /// embedded text is unchanged, embedding the rest with `embedder`); documents that
    /// never committed are removed. Returns (repaired, removed).
    fn repair_interrupted(
        &self,
        ids: &[String],
        embedder: Option<&dyn Embedder>,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let mut repaired = Vec::new();
        let mut removed = Vec::new();
        for id in ids {
            match self.restore(id, embedder)? {
                Restored::Rebuilt => repaired.push(id.clone()),
                Restored::Removed => removed.push(id.clone()),
                Restored::NotInCatalog => {}
            }
        }
        self.keyword.commit()?;
        Ok((repaired, removed))
    }

    /// Puts one document's index entries back to its catalog state (without committing the
    /// keyword index): rebuilt from committed passages, or removed if it never committed.
    fn restore(&self, id: &str, embedder: Option<&dyn Embedder>) -> Result<Restored> {
        let record = self.catalog().document(id)?;
        let Some(record) = record else {
            self.purge(id)?;
            return Ok(Restored::NotInCatalog);
        };
        let committed = record.pipeline_version > 0 && record.status != DocumentStatus::Deleting;
        if !committed {
            self.purge(id)?;
            self.catalog().delete_documents(&[id.to_string()])?;
            return Ok(Restored::Removed);
        }
        let passages = self.catalog().passages_of(id)?;
        let vectors = self.vectors_for(&record, &passages, embedder)?;
        self.purge(id)?;
        self.add_to_indexes(&record, &passages, &vectors)?;
        self.catalog()
            .set_status(&[id.to_string()], DocumentStatus::Indexed)?;
        Ok(Restored::Rebuilt)
    }

    /// Vectors for passages: stored ones where their text is unchanged, else embedded.
    fn vectors_for(
        &self,
        record: &DocumentRecord,
        passages: &[StoredPassage],
        embedder: Option<&dyn Embedder>,
    ) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<String> = passages.iter().map(|p| p.passage.id.clone()).collect();
        let mut stored = self.vectors.vectors(&ids)?;
        let mut missing = Vec::new();
        for (i, sp) in passages.iter().enumerate() {
            if !stored.contains_key(&sp.passage.id) {
                missing.push(i);
            }
        }
        let mut embedded: HashMap<usize, Vec<f32>> = HashMap::new();
        if !missing.is_empty() {
            let embedder = embedder.ok_or_else(|| {
                IndexError::Corrupt(format!(
                    "document {} needs re-embedding to repair; run `doctrina check`",
                    record.meta.id
                ))
            })?;
            let texts: Vec<String> = missing
                .iter()
                .map(|&i| embedding_text(&record.meta, &passages[i].passage))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            for (i, v) in missing.iter().zip(embedder.embed_passages(&refs)?) {
                embedded.insert(*i, v);
            }
        }
        Ok(passages
            .iter()
            .enumerate()
            .map(|(i, sp)| {
                embedded
                    .remove(&i)
                    .or_else(|| stored.remove(&sp.passage.id))
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Compares the catalog with both indexes and, with `repair`, fixes what disagrees:
    /// interrupted writes, per-document count mismatches and orphaned index entries.
    pub fn check(&self, embedder: Option<&dyn Embedder>, repair: bool) -> Result<HealthReport> {
        self.documents_changed();
        let mut report = HealthReport::default();
        let documents = self.catalog().documents()?;
        let interrupted: Vec<String> = documents
            .iter()
            .filter(|d| {
                matches!(
                    d.status,
                    DocumentStatus::Indexing | DocumentStatus::Deleting
                )
            })
            .map(|d| d.meta.id.clone())
            .collect();
        report.interrupted = interrupted.clone();
        if repair && !interrupted.is_empty() {
            tracing::warn!(
                documents = interrupted.len(),
                "repairing interrupted index writes"
            );
            let (repaired, removed) = self.repair_interrupted(&interrupted, embedder)?;
            report.repaired.extend(repaired);
            report.removed.extend(removed);
        }

        let documents = self.catalog().documents()?;
        let known: BTreeSet<String> = documents.iter().map(|d| d.meta.id.clone()).collect();
        let expected = self.catalog().passage_count()?;
        let mut keyword = self.keyword.count();
        let mut vectors = self.vectors.count()?;
        if keyword != expected || vectors != expected || (!interrupted.is_empty() && !repair) {
            // Find out which documents disagree (one per-document count of the vector store,
            // which may be a remote collection, rather than a request per document).
            let vector_counts = self.vectors.doc_counts()?;
            let mut mismatched = Vec::new();
            for d in &documents {
                let k = self.keyword.count_doc(&d.meta.id)?;
                let v = vector_counts.get(&d.meta.id).copied().unwrap_or(0);
                if k != d.chunk_count || v != d.chunk_count {
                    mismatched.push(d.meta.id.clone());
                }
            }
            let orphans: Vec<String> = self
                .keyword
                .doc_ids()?
                .into_iter()
                .chain(vector_counts.into_keys())
                .filter(|id| !known.contains(id))
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect();
            if repair {
                for id in &orphans {
                    self.keyword.delete_doc(id);
                }
                let keep: Vec<String> = known.iter().cloned().collect();
                self.vectors.retain_docs(&keep)?;
                let (repaired, removed) = self.repair_interrupted(&mismatched, embedder)?;
                report.repaired.extend(repaired);
                report.removed.extend(removed);
                self.keyword.commit()?;
                self.vectors.flush()?;
                keyword = self.keyword.count();
                vectors = self.vectors.count()?;
            } else {
                report.mismatched = mismatched;
            }
            report.orphans = orphans;
        }
        report.vector_store = self.vectors.describe();
        report.documents = documents.len();
        report.catalog_passages = self.catalog().passage_count()?;
        report.keyword_passages = keyword;
        report.vector_passages = vectors;
        report.consistent = report.catalog_passages == keyword
            && keyword == vectors
            && report.mismatched.is_empty()
            && (repair || interrupted.is_empty());
        Ok(report)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use doctrina_types::{Clearance, DocumentMeta, Passage, SourceFormat};

    const DIM: usize = 8;

    pub(crate) fn document(
        id: &str,
        level: &str,
        caveats: &[&str],
        passages: usize,
    ) -> PreparedDocument {
        let meta = DocumentMeta {
            id: id.to_string(),
            title: format!("Convoy planning {id}"),
            publication: None,
            edition: None,
            supersedes: None,
            marking: Marking {
                level: level.to_string(),
                caveats: caveats.iter().map(|c| c.to_string()).collect(),
            },
            marking_basis: Vec::new(),
            extra: Default::default(),
            language: String::new(),
            source_path: format!("/corpus/{id}.md"),
            format: SourceFormat::Markdown,
            content_hash: id.to_string(),
        };
        let passages: Vec<StoredPassage> = (0..passages)
            .map(|i| {
                let text = format!("Fuel convoy planning, passage {i} of {id}.");
                StoredPassage {
                    embed_hash: crate::catalog::embed_hash(&text),
                    passage: Passage {
                        id: Passage::id_for(id, i as u32),
                        doc_id: id.to_string(),
                        ordinal: i as u32,
                        section_path: Vec::new(),
                        paragraphs: Vec::new(),
                        pages: Vec::new(),
                        char_start: 0,
                        char_end: text.chars().count(),
                        text,
                    },
                }
            })
            .collect();
        let vectors = (0..passages.len())
            .map(|i| {
                let mut v = vec![1.0; DIM];
                v[i % DIM] = 2.0;
                v
            })
            .collect();
        PreparedDocument {
            record_meta: meta,
            marking_rank: 0,
            body: String::new(),
            passages,
            vectors,
        }
    }

    fn corpus() -> Vec<PreparedDocument> {
        vec![
            document("u", "UNCLASSIFIED", &[], 4),
            document("c", "CONFIDENTIAL", &[], 4),
            document("s-nf", "SECRET", &["NOFORN"], 4),
            document("s-rel", "SECRET", &["REL TO USA, GBR"], 4),
            document("c-rel", "CONFIDENTIAL", &["rel to fra, usa"], 4),
            document("ts-or", "TOP SECRET", &["ORCON"], 4),
        ]
    }

    fn clearance(level: &str, caveats: &[&str]) -> Clearance {
        Clearance {
            level: level.into(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Document ids a clearance finds with both indexes (everything, k = 100).
    fn found(indexes: &Indexes, clearance: &Clearance) -> BTreeSet<String> {
        let filter = PassageFilter {
            clearance: Some(clearance.clone()),
            ..PassageFilter::default()
        };
        let Some(filter) = indexes.resolve_clearance(&filter).unwrap() else {
            return BTreeSet::new();
        };
        let keyword: BTreeSet<String> = indexes
            .keyword
            .search("fuel convoy planning", 100, &filter)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id.split('#').next().unwrap().to_string())
            .collect();
        let dense: BTreeSet<String> = indexes
            .vectors
            .search(&[1.0; DIM], 100, &filter)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id.split('#').next().unwrap().to_string())
            .collect();
        assert_eq!(keyword, dense, "both indexes agree for {clearance:?}");
        keyword
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clearances_resolve_into_ranks_and_denied_caveats() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = Indexes::open(dir.path(), DIM, MarkingScheme::default()).unwrap();
        indexes.write_documents(&corpus(), 1).unwrap();
        assert_eq!(
            indexes.caveat_tokens().unwrap().iter().collect::<Vec<_>>(),
            vec!["NOFORN", "ORCON", "REL TO FRA, USA", "REL TO GBR, USA"]
        );
        let cases: [(&str, &[&str], &[&str]); 7] = [
            ("UNCLASSIFIED", &["NOFORN"], &["u"]),
            ("CONFIDENTIAL", &[], &["u", "c"]),
            ("confidential", &["REL TO USA"], &["u", "c", "c-rel"]),
            ("SECRET", &["REL TO GBR"], &["u", "c", "s-rel"]),
            (
                "SECRET",
                &["NOFORN", "REL TO USA"],
                &["u", "c", "s-nf", "s-rel", "c-rel"],
            ),
            ("TOP SECRET", &["ORCON"], &["u", "c", "ts-or"]),
            ("SECERT", &["NOFORN", "ORCON", "REL TO USA"], &[]),
        ];
        for (level, held, expected) in cases {
            let c = clearance(level, held);
            assert_eq!(found(&indexes, &c), ids(expected), "{level} {held:?}");
        }
        // An explicit lower bound still applies under a higher clearance.
        let filter = PassageFilter {
            max_marking_rank: Some(0),
            clearance: Some(clearance("TOP SECRET", &[])),
            ..PassageFilter::default()
        };
        let resolved = indexes.resolve_clearance(&filter).unwrap().unwrap();
        assert_eq!(resolved.filter().max_marking_rank, Some(0));
        assert!(resolved.filter().clearance.is_none());

        // A new caveat is known as soon as it is written; a removed one may linger (harmless).
        indexes
            .write_documents(&[document("s-px", "SECRET", &["propin"], 2)], 1)
            .unwrap();
        assert!(indexes.caveat_tokens().unwrap().contains("PROPIN"));
        assert!(!found(&indexes, &clearance("TOP SECRET", &[])).contains("s-px"));
        assert!(found(&indexes, &clearance("SECRET", &["PROPIN"])).contains("s-px"));
    }

    #[test]
    fn unknown_document_levels_are_above_every_clearance() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = Indexes::open(dir.path(), DIM, MarkingScheme::default()).unwrap();
        indexes
            .write_documents(
                &[
                    document("u", "UNCLASSIFIED", &[], 2),
                    document("odd", "COSMIC", &[], 2),
                ],
                1,
            )
            .unwrap();
        assert_eq!(
            indexes
                .catalog()
                .document("odd")
                .unwrap()
                .unwrap()
                .marking_rank,
            5
        );
        assert_eq!(
            found(&indexes, &clearance("TOP SECRET", &["NOFORN", "ORCON"])),
            ids(&["u"])
        );
    }

    #[test]
    fn old_indexes_and_changed_schemes_are_rebuilt_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let indexes = Indexes::open(dir.path(), DIM, MarkingScheme::default()).unwrap();
            indexes.write_documents(&corpus(), 1).unwrap();
            indexes.flush().unwrap();
        }
        // An index from before the caveat field: no format file, a keyword index with the
        // old schema, raw caveats in the vector payloads.
        std::fs::remove_file(dir.path().join(INDEX_FORMAT_FILE)).unwrap();
        let keyword_dir = dir.path().join("keyword");
        std::fs::remove_dir_all(&keyword_dir).unwrap();
        std::fs::create_dir_all(&keyword_dir).unwrap();
        {
            use tantivy::schema::{STORED, STRING, Schema};
            let mut b = Schema::builder();
            let passage_id = b.add_text_field("passage_id", STRING | STORED);
            let old = tantivy::Index::create_in_dir(&keyword_dir, b.build()).unwrap();
            let mut writer: tantivy::IndexWriter = old.writer(16_000_000).unwrap();
            writer
                .add_document(tantivy::doc!(passage_id => "s-nf#0"))
                .unwrap();
            writer.commit().unwrap();
            let store = EdgeVectorStore::open(&dir.path().join("vectors"), DIM).unwrap();
            store
                .upsert(&[VectorPoint {
                    passage_id: "s-rel#0".into(),
                    doc_id: "s-rel".into(),
                    marking_rank: 3,
                    caveats: vec!["REL TO USA, GBR".into()],
                    publication: None,
                    vector: vec![1.0; DIM],
                }])
                .unwrap();
            store.flush().unwrap();
        }
        {
            let indexes = Indexes::open(dir.path(), DIM, MarkingScheme::default()).unwrap();
            let health = indexes.check(None, false).unwrap();
            assert!(health.consistent, "{health:#?}");
            assert_eq!(health.keyword_passages, 24);
            assert_eq!(
                found(&indexes, &clearance("SECRET", &["REL TO GBR"])),
                ids(&["u", "c", "s-rel"])
            );
        }
        // A keyword index whose schema disagrees with a current format file is rebuilt too.
        {
            std::fs::remove_dir_all(&keyword_dir).unwrap();
            std::fs::create_dir_all(&keyword_dir).unwrap();
            let mut b = tantivy::schema::Schema::builder();
            b.add_text_field("passage_id", tantivy::schema::STRING);
            tantivy::Index::create_in_dir(&keyword_dir, b.build()).unwrap();
            let indexes = Indexes::open(dir.path(), DIM, MarkingScheme::default()).unwrap();
            assert_eq!(indexes.keyword.count(), 24);
        }
        // A level inserted into the scheme moves every rank above it.
        let mut scheme = MarkingScheme::default();
        scheme.levels.insert(3, "RESTRICTED".to_string());
        let indexes = Indexes::open(dir.path(), DIM, scheme).unwrap();
        assert_eq!(
            indexes
                .catalog()
                .document("ts-or")
                .unwrap()
                .unwrap()
                .marking_rank,
            5
        );
        assert_eq!(
            found(
                &indexes,
                &clearance("RESTRICTED", &["NOFORN", "REL TO USA", "ORCON"])
            ),
            ids(&["u", "c", "c-rel"])
        );
    }
}
