//! Incremental indexing of files and directories.
//!
//! A file is re-parsed only when its content hash (bytes + sidecar) or the pipeline version
//! changed; a changed document replaces its old passages in both indexes, reusing stored
//! vectors for passages whose embedded text did not change, so only new text is embedded.
//! Files under the given roots that disappeared are removed from both indexes. A file that
//! fails to parse is reported with its reason and, if it was indexed before, keeps serving
//! its previous version.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use doctrina_embed::Embedder;
use doctrina_ingest::{Ingestor, PIPELINE_VERSION, ParsedDocument, id_from_path, is_sidecar};
use serde::Serialize;

use crate::catalog::{StoredPassage, embed_hash, embedding_text};
use crate::error::{IndexError, Result};
use crate::store::{Indexes, PreparedDocument};

/// Passages gathered before a batch is embedded and written. Bounds memory and the work a
/// crash can interrupt.
const BATCH_PASSAGES: usize = 512;
/// Texts handed to the embedder per call, so progress moves during long runs.
const EMBED_CALL: usize = 128;

/// The `doctrina index --json` report. Field names are a public contract.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IndexReport {
    /// Documents (re)indexed in this run.
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub failed: Vec<FailedFile>,
    /// Passages written in this run.
    pub chunks: usize,
    /// Passages embedded in this run (passages whose text was unchanged reuse their vector).
    pub embedded: usize,
    /// Passages in the index after the run.
    pub total_chunks: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailedFile {
    pub path: String,
    pub error: String,
    /// The document whose id this file tried to take, when that is why it failed (so a
    /// front end can withhold its name from someone not cleared for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicts_with: Option<String>,
}

/// A check every parsed document must pass before it is written (the library's rule that
/// superseding needs access to what is superseded): `Err` fails that file with the reason.
pub type Admission<'a> = dyn Fn(
        &doctrina_types::DocumentMeta,
        &[crate::catalog::DocumentRecord],
    ) -> std::result::Result<(), String>
    + Sync
    + 'a;

/// Progress notifications for a terminal progress bar or a background job page.
pub trait Progress: Send + Sync {
    fn files_found(&self, _total: usize) {}
    /// A changed file is about to be parsed (unchanged files are not announced).
    fn file_started(&self, _path: &Path) {}
    fn file_done(&self, _path: &Path, _outcome: FileOutcome) {}
    fn passages_embedded(&self, _count: usize) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Indexed,
    Unchanged,
    Failed,
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

pub struct Indexer<'a> {
    indexes: &'a Indexes,
    ingestor: &'a Ingestor,
    embedder: &'a dyn Embedder,
    admission: Option<&'a Admission<'a>>,
}

struct Source {
    path: PathBuf,
    /// Path relative to the root it was found under; the default document id comes from it.
    relative: PathBuf,
}

/// Files under `root` (itself if a file), skipping hidden entries and metadata sidecars.
fn collect(root: &Path, out: &mut Vec<Source>) -> Result<()> {
    let io = |source| IndexError::Io {
        path: root.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(root).map_err(io)?;
    if meta.is_file() {
        out.push(Source {
            path: root.to_path_buf(),
            relative: PathBuf::from(root.file_name().unwrap_or_default()),
        });
        return Ok(());
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|source| IndexError::Io {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || is_sidecar(&path) {
                continue;
            }
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file() || file_type.is_symlink() {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                out.push(Source { path, relative });
            }
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl<'a> Indexer<'a> {
    pub fn new(indexes: &'a Indexes, ingestor: &'a Ingestor, embedder: &'a dyn Embedder) -> Self {
        Self {
            indexes,
            ingestor,
            embedder,
            admission: None,
        }
    }

    /// Every parsed document must pass `admission` before it is written.
    pub fn admit(mut self, admission: &'a Admission<'a>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Indexes files and directories. Fatal errors (disk, locks, the embedder) abort with
    /// `Err`; per-file problems are collected in the report.
    /// Indexes `roots` as a three-stage pipeline so that only embedding is on the critical
    /// path: a reader thread hashes and parses files, this thread embeds batches of
    /// passages, and a writer thread writes each embedded batch to both indexes and the
    /// catalog (the write protocol is per batch, unchanged) while the next batch embeds.
    pub fn run(&self, roots: &[PathBuf], progress: &dyn Progress) -> Result<IndexReport> {
        let mut report = IndexReport::default();
        let mut sources = Vec::new();
        let mut root_prefixes = Vec::new();
        for root in roots {
            if let Err(e) = collect(root, &mut sources) {
                report.failed.push(FailedFile {
                    path: root.display().to_string(),
                    error: e.to_string(),
                    conflicts_with: None,
                });
                continue;
            }
            root_prefixes.push(absolute(root));
        }
        progress.files_found(sources.len());

        let existing = self.indexes.catalog().documents()?;
        let by_path: HashMap<String, &crate::catalog::DocumentRecord> = existing
            .iter()
            .map(|d| (d.meta.source_path.clone(), d))
            .collect();
        let by_id: HashMap<&str, &crate::catalog::DocumentRecord> =
            existing.iter().map(|d| (d.meta.id.as_str(), d)).collect();

        let mut seen_paths = HashSet::new();
        let mut superseded_ids: Vec<String> = Vec::new();

        std::thread::scope(|scope| -> Result<()> {
            // Reader: hash, skip unchanged, parse. Bounded so it runs only a little ahead.
            let (read_tx, read_rx) = std::sync::mpsc::sync_channel::<Read>(64);
            let by_path_ref = &by_path;
            let sources_ref = &sources;
            let ingestor = self.ingestor;
            scope.spawn(move || {
                for source in sources_ref {
                    let abs = absolute(&source.path);
                    let key = abs.to_string_lossy().into_owned();
                    let previous = by_path_ref.get(&key).copied();
                    let parsed = (|| -> std::result::Result<Option<ParsedDocument>, String> {
                        let hash = ingestor.content_hash(&abs).map_err(|e| e.to_string())?;
                        if let Some(prev) = previous
                            && prev.meta.content_hash == hash
                            && prev.pipeline_version == PIPELINE_VERSION
                            && prev.status == doctrina_types::DocumentStatus::Indexed
                        {
                            return Ok(None);
                        }
                        progress.file_started(&source.path);
                        ingestor
                            .parse_file(&abs, &id_from_path(&source.relative))
                            .map(Some)
                            .map_err(|e| e.to_string())
                    })();
                    if read_tx
                        .send(Read {
                            path: source.path.clone(),
                            key,
                            parsed,
                        })
                        .is_err()
                    {
                        return; // the embedding stage stopped (an error); stop reading
                    }
                }
            });

            // Writer: one embedded batch at a time, in order.
            let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<Vec<PreparedDocument>>(1);
            let indexes = self.indexes;
            let writer = scope.spawn(move || -> Result<(usize, usize)> {
                let (mut indexed, mut chunks) = (0, 0);
                for prepared in write_rx {
                    indexes.write_documents(&prepared, PIPELINE_VERSION)?;
                    for doc in &prepared {
                        indexed += 1;
                        chunks += doc.passages.len();
                        progress.file_done(
                            Path::new(&doc.record_meta.source_path),
                            FileOutcome::Indexed,
                        );
                    }
                }
                Ok((indexed, chunks))
            });

            // This thread: identity checks, batching, embedding.
            let embedded = (|| -> Result<()> {
                let mut claimed_ids: HashMap<String, String> = HashMap::new();
                let mut batch: Vec<ParsedDocument> = Vec::new();
                let mut batch_passages = 0;
                for read in read_rx {
                    seen_paths.insert(read.key.clone());
                    let previous = by_path.get(&read.key).copied();
                    let mut conflicts_with = None;
                    let outcome = read.parsed.and_then(|parsed| {
                        let Some(parsed) = parsed else {
                            return Ok(None);
                        };
                        let id = parsed.meta.id.clone();
                        if let Some(other) = claimed_ids.get(&id) {
                            conflicts_with = Some(id.clone());
                            return Err(format!("document id '{id}' is already used by {other}"));
                        }
                        if let Some(owner) = by_id.get(id.as_str())
                            && owner.meta.source_path != read.key
                            && Path::new(&owner.meta.source_path).exists()
                        {
                            conflicts_with = Some(id.clone());
                            return Err(format!(
                                "document id '{id}' is already used by {}",
                                owner.meta.source_path
                            ));
                        }
                        if let Some(admit) = self.admission {
                            admit(&parsed.meta, &existing)?;
                        }
                        Ok(Some(parsed))
                    });
                    match outcome {
                        Ok(None) => {
                            report.unchanged += 1;
                            if let Some(prev) = previous {
                                claimed_ids.insert(prev.meta.id.clone(), read.key.clone());
                            }
                            progress.file_done(&read.path, FileOutcome::Unchanged);
                        }
                        Ok(Some(parsed)) => {
                            claimed_ids.insert(parsed.meta.id.clone(), read.key.clone());
                            if let Some(prev) = previous
                                && prev.meta.id != parsed.meta.id
                            {
                                // The file now declares another id: its old document goes.
                                superseded_ids.push(prev.meta.id.clone());
                            }
                            batch_passages += parsed.passages.len();
                            batch.push(parsed);
                            if batch_passages >= BATCH_PASSAGES {
                                let prepared = self.embed_batch(
                                    std::mem::take(&mut batch),
                                    &mut report,
                                    progress,
                                )?;
                                if write_tx.send(prepared).is_err() {
                                    return Ok(()); // the writer failed; its error is reported
                                }
                                batch_passages = 0;
                            }
                        }
                        Err(error) => {
                            tracing::debug!(path = %read.path.display(), %error, "file not indexed");
                            self.indexes.catalog().record_failure(&read.key, &error)?;
                            report.failed.push(FailedFile {
                                path: read.path.display().to_string(),
                                error,
                                conflicts_with,
                            });
                            if let Some(prev) = previous {
                                claimed_ids.insert(prev.meta.id.clone(), read.key.clone());
                            }
                            progress.file_done(&read.path, FileOutcome::Failed);
                        }
                    }
                }
                let prepared = self.embed_batch(batch, &mut report, progress)?;
                if !prepared.is_empty() {
                    let _ = write_tx.send(prepared);
                }
                Ok(())
            })();
            drop(write_tx);
            let written = writer
                .join()
                .map_err(|_| IndexError::Corrupt("the index writer panicked".to_string()))?;
            // A write error explains an embedding stop, so it comes first.
            let (indexed, chunks) = written?;
            embedded?;
            report.indexed += indexed;
            report.chunks += chunks;
            Ok(())
        })?;

        // Documents under the indexed roots whose file is gone.
        let mut removed: Vec<String> = existing
            .iter()
            .filter(|d| {
                let path = Path::new(&d.meta.source_path);
                root_prefixes.iter().any(|root| path.starts_with(root))
                    && !seen_paths.contains(&d.meta.source_path)
                    && !path.exists()
            })
            .map(|d| d.meta.id.clone())
            .collect();
        removed.extend(superseded_ids);
        removed.sort();
        removed.dedup();
        self.indexes.remove_documents(&removed)?;
        report.removed = removed.len();
        if report.indexed > 0 || report.removed > 0 {
            self.indexes.flush()?;
        }
        report.total_chunks = self.indexes.catalog().passage_count()?;
        Ok(report)
    }

    /// Embeds a batch's passages (reusing stored vectors of unchanged passage texts) and
    /// returns the documents ready to write.
    fn embed_batch(
        &self,
        batch: Vec<ParsedDocument>,
        report: &mut IndexReport,
        progress: &dyn Progress,
    ) -> Result<Vec<PreparedDocument>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut prepared = Vec::with_capacity(batch.len());
        let mut to_embed: Vec<(usize, usize, String)> = Vec::new();
        for (d, parsed) in batch.into_iter().enumerate() {
            let texts: Vec<String> = parsed
                .passages
                .iter()
                .map(|passage| embedding_text(&parsed.meta, passage))
                .collect();
            let passages: Vec<StoredPassage> = parsed
                .passages
                .into_iter()
                .zip(&texts)
                .map(|(passage, text)| StoredPassage {
                    embed_hash: embed_hash(text),
                    passage,
                })
                .collect();
            // Reuse vectors of the previous version's passages whose embedded text is the same.
            let previous = self.indexes.catalog().passages_of(&parsed.meta.id)?;
            let reusable: HashMap<&str, &str> = previous
                .iter()
                .map(|p| (p.embed_hash.as_str(), p.passage.id.as_str()))
                .collect();
            let reuse_ids: Vec<String> = passages
                .iter()
                .filter_map(|p| reusable.get(p.embed_hash.as_str()).map(|id| id.to_string()))
                .collect();
            let stored = if reuse_ids.is_empty() {
                HashMap::new()
            } else {
                self.indexes.vectors.vectors(&reuse_ids)?
            };
            let mut vectors = Vec::with_capacity(passages.len());
            for (i, (p, text)) in passages.iter().zip(texts).enumerate() {
                let reused = reusable
                    .get(p.embed_hash.as_str())
                    .and_then(|id| stored.get(*id));
                match reused {
                    Some(v) => vectors.push(v.clone()),
                    None => {
                        vectors.push(Vec::new());
                        to_embed.push((d, i, text));
                    }
                }
            }
            let marking_rank = self.indexes.marking_rank(&parsed.meta.marking.level);
            prepared.push(PreparedDocument {
                record_meta: parsed.meta,
                marking_rank,
                body: parsed.text,
                passages,
                vectors,
            });
        }
        for call in to_embed.chunks(EMBED_CALL) {
            let texts: Vec<&str> = call.iter().map(|(_, _, t)| t.as_str()).collect();
            let vectors = self.embedder.embed_passages(&texts)?;
            for ((d, i, _), v) in call.iter().zip(vectors) {
                prepared[*d].vectors[*i] = v;
            }
            progress.passages_embedded(call.len());
        }
        report.embedded += to_embed.len();
        Ok(prepared)
    }
}

/// A file as the reader stage saw it: `Ok(None)` when unchanged.
struct Read {
    path: PathBuf,
    key: String,
    parsed: std::result::Result<Option<ParsedDocument>, String>,
}
