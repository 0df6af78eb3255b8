//! `doctrina bench`: one run that measures every stage of indexing and search against the
//! physical limit on this machine (computing embeddings), on a deterministic generated
//! corpus or a given one. Every figure is measured in the run that prints it; where a
//! figure rests on something not computed in the run (stored vectors at scale), the report
//! says so in `notes`.

pub mod corpus;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doctrina_embed::Embedder;
use doctrina_index::catalog::{StoredPassage, embed_hash, embedding_text};
use doctrina_index::indexer::NoProgress;
use doctrina_index::{Indexer, Indexes, PreparedDocument};
use doctrina_ingest::{Ingestor, PIPELINE_VERSION, ParsedDocument, id_from_path};
use doctrina_retrieve::Retriever;
use doctrina_types::{
    Config, DocumentMeta, Marking, Passage, PassageFilter, SearchMode, SourceFormat,
};
use serde::Serialize;

use crate::corpus::Rng;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Chunks to generate and index end to end (ignored with `corpus`).
    pub chunks: usize,
    /// Index this directory instead of a generated corpus.
    pub corpus: Option<PathBuf>,
    /// Passage counts of the query-latency indexes.
    pub scales: Vec<usize>,
    /// Queries per mode and scale.
    pub queries: usize,
    /// Texts in the fixed-order versus length-bucketed comparison.
    pub batching_texts: usize,
    /// Size of the corpus copy the re-index figures are measured on.
    pub reindex_chunks: usize,
    pub load_users: usize,
    pub load_seconds: u64,
    /// Where the corpus and data directories go (a temporary directory by default).
    pub work_dir: Option<PathBuf>,
    pub seed: u64,
    /// A Qdrant server to measure the scale indexes on as well, beside the embedded
    /// store (`backend = "qdrant"`, its URL; each scale gets a collection of its own,
    /// deleted afterwards).
    pub qdrant: Option<doctrina_types::config::VectorConfig>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            chunks: 2_000,
            corpus: None,
            scales: vec![10_000, 100_000],
            queries: 200,
            batching_texts: 384,
            reindex_chunks: 10_000,
            load_users: 50,
            load_seconds: 30,
            qdrant: None,
            work_dir: None,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub seconds: f64,
    pub items: usize,
    pub per_second: f64,
}

impl Rate {
    fn new(items: usize, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            seconds: round(seconds, 3),
            items,
            per_second: round(items as f64 / seconds.max(1e-9), 1),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: usize,
}

impl Percentiles {
    /// Percentiles in milliseconds (nearest rank).
    pub fn of(durations: &[Duration]) -> Self {
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
            round(ms[rank - 1], 3)
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
            samples: ms.len(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CorpusFigures {
    pub source: String,
    pub documents: usize,
    pub chunks: usize,
    pub chunk_chars_min: usize,
    pub chunk_chars_mean: usize,
    pub chunk_chars_max: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexingFigures {
    /// Parsing and chunking only (documents/s in `documents`, chunks/s in `chunks`).
    pub parse_documents: Rate,
    pub parse_chunks: Rate,
    /// ONNX Runtime embedding of exactly the texts indexing embeds, in one call.
    pub raw_embedding: Rate,
    /// `doctrina index` on a fresh data directory: parse, chunk, embed, BM25, vectors,
    /// catalog, flush.
    pub end_to_end: Rate,
    /// end_to_end / raw_embedding chunks per second (target ≥ 0.90).
    pub ratio_to_raw: f64,
    pub disk_bytes: u64,
    pub disk_mb_per_10k_chunks: f64,
}

/// One embedding model on this run's passages and queries.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedderFigures {
    /// `embedding.model`.
    pub model: String,
    /// The model indexing used (the configured one).
    pub configured: bool,
    pub languages: String,
    /// Passages embedded in one call, as indexing embeds them (with the passage prefix).
    pub passages: Rate,
    /// One query at a time (with the query prefix), in milliseconds.
    pub query: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReindexFigures {
    pub chunks: usize,
    pub files: usize,
    /// The first index of the copied corpus (vectors reused, nothing embedded).
    pub initial_with_reused_vectors: Rate,
    /// Re-indexing it unchanged (target under 5 s for 10k chunks).
    pub unchanged_seconds: f64,
    pub unchanged_embedded: usize,
    /// 1% of the files changed (a paragraph added to each).
    pub changed_files: usize,
    pub changed_seconds: f64,
    /// Passages the indexer embedded.
    pub changed_embedded: usize,
    /// Of those, texts the model computed (the rest were already known).
    pub changed_embedded_by_model: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchingFigures {
    pub texts: usize,
    pub fixed_order: Rate,
    pub length_bucketed: Rate,
    /// length_bucketed / fixed_order throughput (target ≥ 1.3).
    pub speedup: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleFigures {
    /// `edge` (embedded, in this process) or `qdrant` (a server).
    pub backend: String,
    pub chunks: usize,
    pub build: Rate,
    pub disk_bytes: u64,
    pub disk_mb_per_10k_chunks: f64,
    pub rss_mb_after: f64,
    /// Latency per stage, milliseconds.
    pub query_embedding: Percentiles,
    pub bm25: Percentiles,
    pub dense_excluding_embedding: Percentiles,
    pub hybrid_excluding_embedding: Percentiles,
    pub hybrid_total: Percentiles,
    /// Hybrid, including embedding, as a SECRET reader without caveats (the clearance is
    /// resolved and both queries carry the rank bound and the NOFORN exclusion).
    pub hybrid_total_with_clearance: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadFigures {
    pub chunks: usize,
    pub users: usize,
    pub seconds: f64,
    pub requests: usize,
    pub errors: usize,
    pub requests_per_second: f64,
    pub latency: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    /// Peak resident memory of the bench process over the whole run.
    pub peak_rss_mb: f64,
    /// Per stage: the peak during the stage (the kernel's high-water mark is reset before
    /// each stage) and the resident memory after it.
    pub stages: Vec<StageMemory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageMemory {
    pub stage: String,
    pub rss_before_mb: f64,
    pub peak_rss_mb: f64,
    pub rss_after_mb: f64,
}

/// Resets the process's peak-RSS mark (`VmHWM`) so the next stage's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn stage_done(stages: &mut Vec<StageMemory>, stage: &str) {
    let before = stages.last().map_or(0.0, |s| s.rss_after_mb);
    stages.push(StageMemory {
        stage: stage.to_string(),
        rss_before_mb: before,
        peak_rss_mb: rss_mb("VmHWM:"),
        rss_after_mb: rss_mb("VmRSS:"),
    });
    reset_peak();
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cores: usize,
    pub corpus: CorpusFigures,
    /// The configured embedding model (what indexing used) and every other installed
    /// model, on the same passages and queries.
    pub embedders: Vec<EmbedderFigures>,
    pub indexing: IndexingFigures,
    pub batching: BatchingFigures,
    pub reindex: ReindexFigures,
    pub scales: Vec<ScaleFigures>,
    pub load: Option<LoadFigures>,
    pub memory: MemoryFigures,
    pub total_seconds: f64,
    pub notes: Vec<String>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Resident memory from `/proc/self/status` (`VmRSS` now, `VmHWM` peak), in MB.
pub fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| round(kb / 1024.0, 1))
}

/// Bytes allocated on disk under `path`.
fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                // Allocated blocks, not apparent length: Qdrant preallocates sparse files.
                Ok(m) => total += std::os::unix::fs::MetadataExt::blocks(&m) * 512,
                Err(_) => {}
            }
        }
    }
    total
}

fn mb_per_10k(bytes: u64, chunks: usize) -> f64 {
    round(bytes as f64 / 1e6 * 10_000.0 / chunks.max(1) as f64, 1)
}

/// Progress lines go to stderr so `--json` stays clean.
fn say(message: &str) {
    eprintln!("bench: {message}");
}

pub fn run(options: &BenchOptions, config: &Config) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let work = match &options.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::tempdir_in(dir)?
        }
        None => tempfile::tempdir()?,
    };
    let embedder = doctrina_app::App::open_embedder(config)?;
    // Parsing in this process: the parse rate of the parsers themselves. Indexing below
    // goes through the app, which parses each file in a child process as in production.
    let ingestor = Ingestor::new(config.ingest.clone(), config.markings.clone());
    let app_with = |dir: &Path,
                    embedder: Arc<dyn Embedder>,
                    vector: &doctrina_types::config::VectorConfig|
     -> anyhow::Result<doctrina_app::App> {
        let mut config = config.clone();
        config.data_dir = dir.to_path_buf();
        config.vector = vector.clone();
        Ok(doctrina_app::App::builder(config)
            .embedder(embedder)
            .chat(None)
            .open()?)
    };
    // Everything but the scale indexes on the embedded store.
    let edge = doctrina_types::config::VectorConfig::default();
    let app_at = |dir: &Path, embedder: Arc<dyn Embedder>| app_with(dir, embedder, &edge);

    // The corpus: generated (sized to the requested chunk count) or given.
    let corpus_dir = match &options.corpus {
        Some(dir) => dir.clone(),
        None => {
            let dir = work.path().join("corpus");
            std::fs::create_dir_all(&dir)?;
            // Documents are added until the chunker has produced the requested count.
            let mut produced = 0;
            let mut n = 0;
            while produced < options.chunks {
                let text = corpus::document(n, options.seed);
                produced += ingestor
                    .parse_bytes(
                        text.as_bytes(),
                        SourceFormat::Markdown,
                        None,
                        "generated.md",
                        "generated",
                        String::new(),
                    )
                    .map(|d| d.passages.len())
                    .unwrap_or(0)
                    .max(1);
                std::fs::write(dir.join(format!("bench-{n:05}.md")), text)?;
                n += 1;
            }
            dir
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !doctrina_ingest::is_sidecar(p))
        .collect();
    files.sort();

    // Parse and chunk.
    say(&format!("parsing {} files", files.len()));
    let t = Instant::now();
    let mut parsed: Vec<ParsedDocument> = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&corpus_dir).unwrap_or(path);
        if let Ok(doc) = ingestor.parse_file(path, &id_from_path(relative)) {
            parsed.push(doc);
        }
    }
    let parse_elapsed = t.elapsed();
    let texts: Vec<String> = parsed
        .iter()
        .flat_map(|d| d.passages.iter().map(move |p| embedding_text(&d.meta, p)))
        .collect();
    let chunk_lengths: Vec<usize> = parsed
        .iter()
        .flat_map(|d| d.passages.iter().map(|p| p.text.chars().count()))
        .collect();
    let chunks = texts.len();
    anyhow::ensure!(chunks > 0, "the corpus has no indexable passages");
    let corpus_figures = CorpusFigures {
        source: match &options.corpus {
            Some(dir) => dir.display().to_string(),
            None => format!("generated (seed {})", options.seed),
        },
        documents: parsed.len(),
        chunks,
        chunk_chars_min: chunk_lengths.iter().copied().min().unwrap_or(0),
        chunk_chars_mean: chunk_lengths.iter().sum::<usize>() / chunks,
        chunk_chars_max: chunk_lengths.iter().copied().max().unwrap_or(0),
    };

    let mut stages = Vec::new();
    stage_done(&mut stages, "load model, generate and parse");

    // The limit: raw embedding of exactly these texts.
    say(&format!("embedding {chunks} chunks (the limit)"));
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    let base_vectors = embedder.embed_passages(&refs)?;
    let raw = Rate::new(chunks, t.elapsed());
    stage_done(&mut stages, "raw embedding");

    // Every installed model on the same passages and queries, the configured one first.
    let embedders = compare_embedders(config, &embedder, raw.clone(), &refs, options, &mut notes)?;
    stage_done(&mut stages, "embedding models compared");

    // End to end on a fresh data directory.
    say("indexing end to end");
    let e2e_dir = work.path().join("e2e");
    let (end_to_end, e2e_report) = {
        let app = app_at(&e2e_dir, embedder.clone())?;
        let indexer = Indexer::new(&app.indexes, &app.ingestor, embedder.as_ref());
        let t = Instant::now();
        let report = indexer.run(std::slice::from_ref(&corpus_dir), &NoProgress)?;
        (Rate::new(report.chunks, t.elapsed()), report)
    };
    if !e2e_report.failed.is_empty() {
        notes.push(format!(
            "{} files failed to index (first: {:?})",
            e2e_report.failed.len(),
            e2e_report.failed.first()
        ));
    }
    let e2e_disk = dir_size(&e2e_dir);
    stage_done(&mut stages, "end-to-end indexing");

    // Re-index at size: the corpus copied until it holds `reindex_chunks` passages, indexed
    // once (its texts are the ones embedded above, so the real vectors are reused), then
    // re-indexed unchanged, then with 1% of its files changed (new text: embedded for real).
    say(&format!(
        "re-indexing a {}-chunk copy of the corpus: unchanged and 1% changed",
        options.reindex_chunks
    ));
    let reindex = {
        let copies = options.reindex_chunks.div_ceil(chunks).max(1);
        let root = work.path().join("reindex-corpus");
        let mut copied = Vec::new();
        for k in 0..copies {
            let dir = root.join(format!("copy-{k:03}"));
            std::fs::create_dir_all(&dir)?;
            for path in &files {
                let dest = dir.join(path.file_name().unwrap_or_default());
                std::fs::copy(path, &dest)?;
                copied.push(dest);
            }
        }
        let memo = Arc::new(MemoEmbedder::new(embedder.clone(), &refs, &base_vectors));
        let dir = work.path().join("reindex");
        let app = app_at(&dir, memo.clone())?;
        let indexer = Indexer::new(&app.indexes, &app.ingestor, memo.as_ref());
        let roots = std::slice::from_ref(&root);
        let t = Instant::now();
        let first = indexer.run(roots, &NoProgress)?;
        let initial = Rate::new(first.chunks, t.elapsed());
        let t = Instant::now();
        let unchanged = indexer.run(roots, &NoProgress)?;
        let unchanged_s = t.elapsed().as_secs_f64();
        let changed_files = copied.len().div_ceil(100);
        let mut rng = Rng::new(options.seed ^ 0xC0FFEE);
        for path in copied.iter().step_by(100).take(changed_files) {
            let mut text = std::fs::read_to_string(path)?;
            text.push_str(&format!("\n9-9. {}\n", corpus::passage_text(&mut rng)));
            std::fs::write(path, text)?;
        }
        let before = memo.computed();
        let t = Instant::now();
        let changed = indexer.run(roots, &NoProgress)?;
        let changed_s = t.elapsed().as_secs_f64();
        ReindexFigures {
            chunks: first.chunks,
            files: copied.len(),
            initial_with_reused_vectors: initial,
            unchanged_seconds: round(unchanged_s, 3),
            unchanged_embedded: unchanged.embedded,
            changed_files,
            changed_seconds: round(changed_s, 3),
            changed_embedded: changed.embedded,
            changed_embedded_by_model: memo.computed() - before,
        }
    };
    notes.push(format!(
        "the re-index corpus is the {}-chunk corpus copied {} times; its first index reuses this run's real embeddings of the identical texts, so it measures everything but embedding",
        chunks,
        options.reindex_chunks.div_ceil(chunks).max(1)
    ));
    stage_done(&mut stages, "re-index");

    // Query latency at scale, over stored vectors.
    let mut scales = Vec::new();
    let mut load = None;
    let largest = options.scales.iter().copied().max();
    let mut backends = vec![("edge", edge.clone())];
    if let Some(qdrant) = &options.qdrant {
        backends.push(("qdrant", qdrant.clone()));
    }
    for (&scale, (backend, vector)) in options
        .scales
        .iter()
        .flat_map(|scale| backends.iter().map(move |b| (scale, b)))
    {
        say(&format!(
            "building a {scale}-chunk index from stored vectors ({backend})"
        ));
        let dir = work.path().join(format!("scale-{scale}-{backend}"));
        let mut vector = vector.clone();
        if *backend == "qdrant" {
            vector.collection = format!("doctrina-bench-{scale}-{}", std::process::id());
        }
        let app = app_with(&dir, embedder.clone(), &vector)?;
        let build = build_scaled(&app.indexes, scale, &base_vectors, options.seed)?;
        let disk = dir_size(&dir);
        let retriever = app.retriever.clone();
        say(&format!("querying the {scale}-chunk index ({backend})"));
        let figures = query_latencies(&retriever, options.queries, options.seed)?;
        let rss_after = rss_mb("VmRSS:");
        scales.push(ScaleFigures {
            backend: backend.to_string(),
            chunks: scale,
            build,
            disk_bytes: disk,
            disk_mb_per_10k_chunks: mb_per_10k(disk, scale),
            rss_mb_after: rss_after,
            query_embedding: figures.0,
            bm25: figures.1,
            dense_excluding_embedding: figures.2,
            hybrid_excluding_embedding: figures.3,
            hybrid_total: figures.4,
            hybrid_total_with_clearance: figures.5,
        });
        stage_done(
            &mut stages,
            &format!("{scale}-chunk index ({backend}): build and queries"),
        );
        if *backend == "qdrant" {
            drop(retriever);
            drop(app);
            delete_collection(&vector)?;
            continue;
        }
        if Some(scale) == largest && options.load_seconds > 0 && options.load_users > 0 {
            say(&format!(
                "{} users searching through the HTTP API for {} s",
                options.load_users, options.load_seconds
            ));
            load = Some(load_test(&app, scale, options)?);
            stage_done(&mut stages, "HTTP load");
        }
    }

    // Fixed order versus length-bucketed batches on mixed-length chunks.
    say("comparing fixed-order and length-bucketed batches");
    let batching = {
        let step = (chunks / options.batching_texts.max(1)).max(1);
        let mut sample: Vec<&str> = refs.iter().step_by(step).copied().collect();
        sample.truncate(options.batching_texts.max(1));
        let mut rng = Rng::new(options.seed ^ 0xBA7C);
        for i in (1..sample.len()).rev() {
            sample.swap(i, rng.below(i + 1));
        }
        let t = Instant::now();
        embedder.embed_in_order(&sample)?;
        let fixed = Rate::new(sample.len(), t.elapsed());
        let t = Instant::now();
        embedder.embed(&sample)?;
        let bucketed = Rate::new(sample.len(), t.elapsed());
        BatchingFigures {
            texts: sample.len(),
            speedup: round(bucketed.per_second / fixed.per_second.max(1e-9), 2),
            fixed_order: fixed,
            length_bucketed: bucketed,
        }
    };
    stage_done(
        &mut stages,
        "batching comparison (last: the fixed-order baseline pads every batch to its longest text)",
    );

    if !options.scales.is_empty() {
        notes.push(format!(
            "the query-latency indexes hold generated passages whose vectors are the {chunks} real embeddings computed above, reused with deterministic ±5% noise (not embedded in this run: embedding {} chunks here would take hours)",
            largest.unwrap_or(0)
        ));
        notes.push(
            "the query-latency documents are 70% UNCLASSIFIED and 10% each CUI, SECRET and SECRET//NOFORN; `hybrid_total_with_clearance` and the HTTP load search as a signed-in SECRET reader without caveats, so the rank bound and the NOFORN exclusion are inside both queries"
                .to_string(),
        );
    }

    let indexing = IndexingFigures {
        parse_documents: Rate::new(parsed.len(), parse_elapsed),
        parse_chunks: Rate::new(chunks, parse_elapsed),
        ratio_to_raw: round(end_to_end.per_second / raw.per_second.max(1e-9), 3),
        raw_embedding: raw,
        disk_bytes: e2e_disk,
        disk_mb_per_10k_chunks: mb_per_10k(e2e_disk, e2e_report.chunks),
        end_to_end,
    };
    Ok(BenchReport {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        corpus: corpus_figures,
        embedders,
        indexing,
        batching,
        reindex,
        scales,
        load,
        memory: MemoryFigures {
            peak_rss_mb: stages.iter().map(|s| s.peak_rss_mb).fold(0.0, f64::max),
            stages,
        },
        total_seconds: round(started.elapsed().as_secs_f64(), 1),
        notes,
    })
}

/// The real model, remembering every text embedded in this run (seeded with the corpus's
/// embeddings): a text it has embedded once is not embedded again. Used to build the
/// re-index corpus, whose texts repeat the corpus's.
struct MemoEmbedder {
    model: Arc<dyn Embedder>,
    known: std::sync::Mutex<std::collections::HashMap<String, Vec<f32>>>,
    computed: std::sync::atomic::AtomicUsize,
}

impl MemoEmbedder {
    fn new(model: Arc<dyn Embedder>, texts: &[&str], vectors: &[Vec<f32>]) -> Self {
        Self {
            model,
            known: std::sync::Mutex::new(
                texts
                    .iter()
                    .map(|t| t.to_string())
                    .zip(vectors.iter().cloned())
                    .collect(),
            ),
            computed: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn computed(&self) -> usize {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Embedder for MemoEmbedder {
    fn dimension(&self) -> usize {
        self.model.dimension()
    }

    fn model_name(&self) -> &str {
        self.model.model_name()
    }

    fn embed(&self, texts: &[&str]) -> doctrina_embed::Result<Vec<Vec<f32>>> {
        self.model.embed(texts)
    }

    fn embed_queries(&self, texts: &[&str]) -> doctrina_embed::Result<Vec<Vec<f32>>> {
        self.model.embed_queries(texts)
    }

    /// Passages (what indexing embeds) come from the memo of this run's real embeddings.
    fn embed_passages(&self, texts: &[&str]) -> doctrina_embed::Result<Vec<Vec<f32>>> {
        let missing: Vec<&str> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            texts
                .iter()
                .copied()
                .filter(|t| !known.contains_key(*t))
                .collect()
        };
        if !missing.is_empty() {
            let vectors = self.model.embed_passages(&missing)?;
            self.computed
                .fetch_add(missing.len(), std::sync::atomic::Ordering::Relaxed);
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            for (t, v) in missing.into_iter().zip(vectors) {
                known.insert(t.to_string(), v);
            }
        }
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Ok(texts.iter().map(|t| known[*t].clone()).collect())
    }
}

/// Writes `count` generated passages, 100 per document, with vectors taken from
/// `base` (real embeddings) plus small deterministic noise.
/// Deletes a scale index's collection from the Qdrant server once it is measured.
fn delete_collection(vector: &doctrina_types::config::VectorConfig) -> anyhow::Result<()> {
    let store = doctrina_index::QdrantVectorStore::open(
        doctrina_index::QdrantSettings::from(vector),
        doctrina_types::EMBEDDING_DIM,
    )?;
    store.delete_collection()?;
    Ok(())
}

fn build_scaled(
    indexes: &Indexes,
    count: usize,
    base: &[Vec<f32>],
    seed: u64,
) -> anyhow::Result<Rate> {
    const PER_DOC: usize = 100;
    const DOCS_PER_WRITE: usize = 20;
    let mut rng = Rng::new(seed ^ count as u64);
    let t = Instant::now();
    let mut written = 0;
    let mut doc_n = 0;
    while written < count {
        let mut batch = Vec::new();
        while batch.len() < DOCS_PER_WRITE && written < count {
            let n = PER_DOC.min(count - written);
            batch.push(synthetic_document(doc_n, n, written, base, &mut rng));
            written += n;
            doc_n += 1;
        }
        indexes.write_documents(&batch, PIPELINE_VERSION)?;
    }
    indexes.flush()?;
    Ok(Rate::new(count, t.elapsed()))
}

fn synthetic_document(
    doc_n: usize,
    passages: usize,
    offset: usize,
    base: &[Vec<f32>],
    rng: &mut Rng,
) -> PreparedDocument {
    let id = format!("scale-{doc_n:06}");
    let meta = DocumentMeta {
        id: id.clone(),
        title: format!("Scale Manual {doc_n}"),
        publication: Some(format!("STP {}-{}", 1 + doc_n / 100, doc_n % 100)),
        edition: None,
        supersedes: None,
        // A mixed corpus, so the clearance filter has work to do: 70% UNCLASSIFIED, then
        // CUI, SECRET and SECRET//NOFORN at 10% each.
        marking: match doc_n % 10 {
            7 => Marking::parse_banner("CUI"),
            8 => Marking::parse_banner("SECRET"),
            9 => Marking::parse_banner("SECRET//NOFORN"),
            _ => Marking::default(),
        },
        marking_basis: Vec::new(),
        extra: Default::default(),
        language: String::new(),
        source_path: format!("/bench/{id}.md"),
        format: SourceFormat::Markdown,
        content_hash: format!("{doc_n}"),
    };
    let mut body = String::new();
    let mut stored = Vec::with_capacity(passages);
    let mut vectors = Vec::with_capacity(passages);
    for i in 0..passages {
        let number = format!("{}-{}", 1 + i / 20, 1 + i % 20);
        let text = format!("{number}. {}", corpus::passage_text(rng));
        let start = body.chars().count();
        body.push_str(&text);
        let end = body.chars().count();
        body.push_str("\n\n");
        let passage = Passage {
            id: format!("{id}#{i}"),
            doc_id: id.clone(),
            ordinal: i as u32,
            section_path: vec![format!("Chapter {}", 1 + i / 20)],
            paragraphs: vec![number],
            pages: Vec::new(),
            char_start: start,
            char_end: end,
            text,
        };
        let source = &base[(offset + i) % base.len()];
        let mut v: Vec<f32> = source
            .iter()
            .map(|x| x + 0.05 * rng.unit() / 20.0)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        v.iter_mut().for_each(|x| *x /= norm);
        vectors.push(v);
        stored.push(StoredPassage {
            embed_hash: embed_hash(&passage.text),
            passage,
        });
    }
    PreparedDocument {
        record_meta: meta,
        marking_rank: 0,
        body,
        passages: stored,
        vectors,
    }
}

type Latencies = (
    Percentiles,
    Percentiles,
    Percentiles,
    Percentiles,
    Percentiles,
    Percentiles,
);

/// The clearance the cleared-search figures and the HTTP load run with: SECRET without
/// caveats, so both the rank bound and the NOFORN exclusion are in every query.
fn bench_clearance() -> doctrina_types::Clearance {
    doctrina_types::Clearance {
        level: "SECRET".to_string(),
        caveats: Vec::new(),
    }
}

/// Query embedding latencies of `embedder` over `queries` generated questions (after ten
/// to warm up).
fn query_embedding(
    embedder: &dyn Embedder,
    queries: usize,
    seed: u64,
) -> anyhow::Result<Percentiles> {
    let qs = bench_queries(queries, seed);
    for q in qs.iter().take(10) {
        embedder.embed_queries(&[q.as_str()])?;
    }
    let mut times = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        embedder.embed_queries(&[q.as_str()])?;
        times.push(t.elapsed());
    }
    Ok(Percentiles::of(&times))
}

fn compare_embedders(
    config: &Config,
    configured: &Arc<dyn Embedder>,
    configured_rate: Rate,
    passages: &[&str],
    options: &BenchOptions,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<EmbedderFigures>> {
    let mut out = Vec::new();
    let spec_of = |name: &str| doctrina_embed::MODELS.iter().find(|m| m.name == name);
    let chosen = config.embedding.model.clone();
    say(&format!("query embedding with {chosen}"));
    out.push(EmbedderFigures {
        model: chosen.clone(),
        configured: true,
        languages: spec_of(&chosen).map_or("", |m| m.languages).to_string(),
        passages: configured_rate,
        query: query_embedding(configured.as_ref(), options.queries, options.seed)?,
    });
    for spec in doctrina_embed::MODELS.iter().filter(|m| m.name != chosen) {
        let mut other = config.clone();
        other.embedding.model = spec.name.to_string();
        other.embedding.model_dir = None;
        let embedder = match doctrina_app::App::open_embedder(&other) {
            Ok(e) => e,
            Err(e) => {
                notes.push(format!("{} not compared: {e}", spec.name));
                continue;
            }
        };
        say(&format!("embedding the same passages with {}", spec.name));
        let t = Instant::now();
        embedder.embed_passages(passages)?;
        let rate = Rate::new(passages.len(), t.elapsed());
        out.push(EmbedderFigures {
            model: spec.name.to_string(),
            configured: false,
            languages: spec.languages.to_string(),
            passages: rate,
            query: query_embedding(embedder.as_ref(), options.queries, options.seed)?,
        });
    }
    Ok(out)
}

/// The generated questions every query measurement uses (the same for a given seed).
fn bench_queries(queries: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed ^ 0x0051_EA5C);
    (0..queries.max(1))
        .map(|_| corpus::query(&mut rng))
        .collect()
}

fn query_latencies(retriever: &Retriever, queries: usize, seed: u64) -> anyhow::Result<Latencies> {
    let qs = bench_queries(queries, seed);
    let filter = PassageFilter::default();
    // Warm caches and the embedding session.
    for q in qs.iter().take(10) {
        retriever.search(q, SearchMode::Hybrid, 10, &filter)?;
    }
    let mut embed = Vec::new();
    let mut bm25 = Vec::new();
    let mut dense = Vec::new();
    let mut hybrid = Vec::new();
    let mut hybrid_total = Vec::new();
    let mut cleared_total = Vec::new();
    let cleared = PassageFilter {
        clearance: Some(bench_clearance()),
        ..PassageFilter::default()
    };
    for q in &qs {
        let (_, t) = retriever.search_timed(q, SearchMode::Bm25, 10, &filter)?;
        bm25.push(t.bm25 + t.fuse_and_load);
        let (_, t) = retriever.search_timed(q, SearchMode::Dense, 10, &filter)?;
        embed.push(t.embed);
        dense.push(t.dense + t.fuse_and_load);
        let (_, t) = retriever.search_timed(q, SearchMode::Hybrid, 10, &filter)?;
        hybrid.push(t.bm25 + t.dense + t.fuse_and_load);
        hybrid_total.push(t.embed + t.bm25 + t.dense + t.fuse_and_load);
        let start = Instant::now();
        retriever.search(q, SearchMode::Hybrid, 10, &cleared)?;
        cleared_total.push(start.elapsed());
    }
    Ok((
        Percentiles::of(&embed),
        Percentiles::of(&bm25),
        Percentiles::of(&dense),
        Percentiles::of(&hybrid),
        Percentiles::of(&hybrid_total),
        Percentiles::of(&cleared_total),
    ))
}

/// `users` concurrent clients searching (hybrid) through the real HTTP API on loopback.
fn load_test(
    app: &doctrina_app::App,
    chunks: usize,
    options: &BenchOptions,
) -> anyhow::Result<LoadFigures> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The load runs as one signed-in officer cleared SECRET without caveats, so every
        // search goes through the session check and the clearance filter as in production.
        let auth = &app.auth;
        let password = doctrina_auth::random_token()?;
        if auth.user("bench")?.is_none() {
            auth.add_user(&doctrina_auth::NewUser {
                name: "bench".into(),
                password: password.clone(),
                roles: vec![doctrina_auth::Role::Officer],
                clearance: bench_clearance(),
            })?;
        } else {
            auth.set_password("bench", &password)?;
        }
        let server =
            doctrina_web::spawn("127.0.0.1:0".parse()?, doctrina_web::AppState::new(app)).await?;
        let base = format!("http://{}", server.addr);
        let login = reqwest::Client::new()
            .post(format!("{base}/api/login"))
            .json(&serde_json::json!({"name": "bench", "password": password}))
            .send()
            .await?
            .error_for_status()?;
        let cookie = login
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("the login set no session cookie"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, cookie.parse()?);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(options.load_users)
            .default_headers(headers)
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(options.load_seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for user in 0..options.load_users {
            let client = client.clone();
            let base = base.clone();
            let seed = options.seed ^ (user as u64 + 1);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(seed);
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < deadline {
                    let q = corpus::query(&mut rng);
                    let t = Instant::now();
                    let ok = match client
                        .get(format!("{base}/api/search"))
                        .query(&[("q", q.as_str()), ("k", "10"), ("mode", "hybrid")])
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    latencies.push(t.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        let seconds = started.elapsed().as_secs_f64();
        server.shutdown().await?;
        Ok(LoadFigures {
            chunks,
            users: options.load_users,
            seconds: round(seconds, 2),
            requests: latencies.len(),
            errors,
            requests_per_second: round(latencies.len() as f64 / seconds.max(1e-9), 1),
            latency: Percentiles::of(&latencies),
        })
    })
}

/// The report as a table for people.
pub fn render(report: &BenchReport) -> String {
    let i = &report.indexing;
    let b = &report.batching;
    let mut out = String::new();
    let c = &report.corpus;
    out.push_str(&format!(
        "corpus: {} — {} documents, {} chunks ({}..{} chars, mean {})\n\n",
        c.source, c.documents, c.chunks, c.chunk_chars_min, c.chunk_chars_max, c.chunk_chars_mean
    ));
    out.push_str("| embedding model | passages/s | query p50 / p95 (ms) | languages |\n| --- | --- | --- | --- |\n");
    for e in &report.embedders {
        out.push_str(&format!(
            "| {}{} | {} | {:.1} / {:.1} | {} |\n",
            e.model,
            if e.configured { " (configured)" } else { "" },
            e.passages.per_second,
            e.query.p50,
            e.query.p95,
            e.languages
        ));
    }
    out.push('\n');
    out.push_str("| stage | figure |\n| --- | --- |\n");
    let mut row = |k: &str, v: String| out.push_str(&format!("| {k} | {v} |\n"));
    row(
        "parse + chunk",
        format!(
            "{} docs/s, {} chunks/s",
            i.parse_documents.per_second, i.parse_chunks.per_second
        ),
    );
    row(
        "raw embedding (the limit)",
        format!(
            "{} chunks/s ({} s)",
            i.raw_embedding.per_second, i.raw_embedding.seconds
        ),
    );
    row(
        "end-to-end indexing",
        format!(
            "{} chunks/s ({} s)",
            i.end_to_end.per_second, i.end_to_end.seconds
        ),
    );
    row(
        "end-to-end / raw",
        format!("{:.1}% (target ≥ 90%)", i.ratio_to_raw * 100.0),
    );
    row(
        "fixed-order vs length-bucketed",
        format!(
            "{} vs {} chunks/s on {} mixed texts: {}x (target ≥ 1.3x)",
            b.fixed_order.per_second, b.length_bucketed.per_second, b.texts, b.speedup
        ),
    );
    let r = &report.reindex;
    row(
        &format!("re-index {} chunks unchanged", r.chunks),
        format!(
            "{} s, {} files (target < 5 s per 10k chunks)",
            r.unchanged_seconds, r.files
        ),
    );
    row(
        &format!("re-index {} chunks, 1% changed", r.chunks),
        format!(
            "{} s ({} files, {} passages embedded)",
            r.changed_seconds, r.changed_files, r.changed_embedded
        ),
    );
    row(
        "disk (end-to-end index)",
        format!("{} MB per 10k chunks", i.disk_mb_per_10k_chunks),
    );
    for s in &report.scales {
        let p = |x: &Percentiles| format!("{}/{}/{}", x.p50, x.p95, x.p99);
        row(
            &format!("{} chunks ({}): build", s.chunks, s.backend),
            format!(
                "{} chunks/s, {} MB per 10k chunks, RSS after {} MB",
                s.build.per_second, s.disk_mb_per_10k_chunks, s.rss_mb_after
            ),
        );
        row(
            &format!("{} chunks ({}): p50/p95/p99 ms", s.chunks, s.backend),
            format!(
                "query embedding {} · bm25 {} · dense {} · hybrid {} (excl. embedding) · hybrid total {} · hybrid total with a clearance {}",
                p(&s.query_embedding),
                p(&s.bm25),
                p(&s.dense_excluding_embedding),
                p(&s.hybrid_excluding_embedding),
                p(&s.hybrid_total),
                p(&s.hybrid_total_with_clearance)
            ),
        );
    }
    if let Some(l) = &report.load {
        row(
            &format!("HTTP load ({} chunks)", l.chunks),
            format!(
                "{} users, {} s: {} requests, {} errors, {} req/s, p50/p95/p99 {}/{}/{} ms",
                l.users,
                l.seconds,
                l.requests,
                l.errors,
                l.requests_per_second,
                l.latency.p50,
                l.latency.p95,
                l.latency.p99
            ),
        );
    }
    for m in &report.memory.stages {
        row(
            &format!("memory: {}", m.stage),
            format!(
                "RSS {} MB before, peak {} MB, {} MB after",
                m.rss_before_mb, m.peak_rss_mb, m.rss_after_mb
            ),
        );
    }
    row("peak RSS", format!("{} MB", report.memory.peak_rss_mb));
    row(
        "total",
        format!("{} s on {} cores", report.total_seconds, report.cores),
    );
    for note in &report.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&d);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[]).samples, 0);
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_mb("VmRSS:") > 0.0);
    }
}
