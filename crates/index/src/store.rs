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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use doctrina_embed::Embedder;
use doctrina_types::{DocumentStatus, MarkingScheme};
use serde::Serialize;

use crate::catalog::{Catalog, DocumentRecord, StoredPassage, embedding_text};
use crate::error::{IndexError, Result};
use crate::keyword::{KeywordDoc, KeywordIndex};
use crate::vector::{EdgeVectorStore, VectorPoint, VectorStore};

/// Fault injection for crash tests: `DOCTRINA_FAILPOINT=<name>` aborts the process at the
/// named point, exactly as a kill would. Points: `after-index-write` (both indexes written
/// and committed, catalog not yet).
fn failpoint(name: &str) {
    if std::env::var_os("DOCTRINA_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("doctrina: failpoint {name} reached, aborting");
        std::process::abort();
    }
}

/// A parsed, embedded document ready to be written.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    pub record_meta: doctrina_types::DocumentMeta,
    pub marking_rank: u32,
    pub body: String,
    pub passages: Vec<StoredPassage>,
    pub vectors: Vec<Vec<f32>>,
}

/// What a consistency check found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthReport {
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

/// `old edition id -> newer edition id`.
pub type Superseded = Arc<BTreeMap<String, String>>;

pub struct Indexes {
    data_dir: PathBuf,
    _lock: File,
    catalog: Mutex<Catalog>,
    pub keyword: KeywordIndex,
    pub vectors: Box<dyn VectorStore>,
    pub scheme: MarkingScheme,
    /// Superseded editions, cached until the next write to the catalog's documents.
    superseded: Mutex<Option<Superseded>>,
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
    pub fn open(data_dir: &Path, dimension: usize, scheme: MarkingScheme) -> Result<Self> {
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
        let keyword = KeywordIndex::open(&data_dir.join("keyword"))?;
        let vectors = Box::new(EdgeVectorStore::open(&data_dir.join("vectors"), dimension)?);
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            catalog: Mutex::new(catalog),
            keyword,
            vectors,
            scheme,
            superseded: Mutex::new(None),
        })
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

    /// Forgets the superseded map after a write to the catalog's documents.
    fn documents_changed(&self) {
        *self.superseded.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The catalog, for reads and for the indexer's bookkeeping.
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn marking_rank(&self, level: &str) -> u32 {
        // Unknown levels (a scheme changed under an existing catalog) rank above everything.
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
                marking_rank: record.marking_rank,
            })
            .collect();
        self.keyword.add(&docs)?;
        let points: Vec<VectorPoint> = passages
            .iter()
            .zip(vectors)
            .map(|(sp, vector)| VectorPoint {
                passage_id: sp.passage.id.clone(),
                doc_id: meta.id.clone(),
                marking_rank: record.marking_rank,
                caveats: meta.marking.caveats.clone(),
                publication: meta.publication.clone(),
                vector: vector.clone(),
            })
            .collect();
        self.vectors.upsert(&points)
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
        let begin: Vec<_> = docs
            .iter()
            .map(|d| (&d.record_meta, d.marking_rank))
            .collect();
        self.documents_changed();
        self.catalog().begin_documents(&begin)?;
        let written = (|| -> Result<()> {
            for doc in docs {
                self.purge(&doc.record_meta.id)?;
                let record = DocumentRecord {
                    meta: doc.record_meta.clone(),
                    marking_rank: doc.marking_rank,
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
            .map(|d| {
                (
                    &d.record_meta,
                    d.marking_rank,
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
            let record = self.catalog().document(id)?;
            let Some(record) = record else {
                self.purge(id)?;
                continue;
            };
            let committed =
                record.pipeline_version > 0 && record.status != DocumentStatus::Deleting;
            if !committed {
                self.purge(id)?;
                self.catalog().delete_documents(std::slice::from_ref(id))?;
                removed.push(id.clone());
                continue;
            }
            let passages = self.catalog().passages_of(id)?;
            let vectors = self.vectors_for(&record, &passages, embedder)?;
            self.purge(id)?;
            self.add_to_indexes(&record, &passages, &vectors)?;
            self.catalog()
                .set_status(std::slice::from_ref(id), DocumentStatus::Indexed)?;
            repaired.push(id.clone());
        }
        self.keyword.commit()?;
        Ok((repaired, removed))
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
            for (i, v) in missing.iter().zip(embedder.embed(&refs)?) {
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
            // Find out which documents disagree.
            let mut mismatched = Vec::new();
            for d in &documents {
                let k = self.keyword.count_doc(&d.meta.id)?;
                let v = self.vectors.count_doc(&d.meta.id)?;
                if k != d.chunk_count || v != d.chunk_count {
                    mismatched.push(d.meta.id.clone());
                }
            }
            let orphans: Vec<String> = self
                .keyword
                .doc_ids()?
                .into_iter()
                .filter(|id| !known.contains(id))
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
