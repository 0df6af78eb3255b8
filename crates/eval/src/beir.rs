//! The BEIR layout (`corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`): loading, indexing
//! into a data directory of its own (one passage per corpus document, embedded with the
//! same model as everything else), and the BEIR metrics (graded nDCG@10 with linear gains as
//! trec_eval computes it, recall over judged-relevant documents, MRR@10), so results can be
//! set beside published BEIR tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use doctrina_embed::Embedder;
use doctrina_index::catalog::{StoredPassage, embed_hash, embedding_text};
use doctrina_index::{Indexes, PreparedDocument};
use doctrina_retrieve::Retriever;
use doctrina_types::{
    DocumentMeta, Marking, Passage, PassageFilter, SearchHit, SearchMode, SourceFormat, sha256_hex,
};
use serde::{Deserialize, Serialize};

use crate::{EvalError, Metrics, QuestionResult, RetrievalReport};

/// Documents embedded and written per batch.
const BATCH: usize = 256;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BeirDoc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
struct BeirQuery {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

#[derive(Debug, Clone)]
pub struct BeirDataset {
    pub name: String,
    pub corpus: Vec<BeirDoc>,
    /// Judged queries only (those with at least one relevant document in the qrels).
    pub queries: Vec<(String, String)>,
    /// `query id -> (document id -> grade)`.
    pub qrels: BTreeMap<String, BTreeMap<String, u32>>,
    /// sha256 of the corpus file, to know when an existing index is current.
    pub corpus_hash: String,
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Format {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Loads a BEIR dataset directory (the `test` split).
pub fn load(dir: &Path) -> Result<BeirDataset, EvalError> {
    let corpus_path = dir.join("corpus.jsonl");
    let corpus_text = read(&corpus_path)?;
    let corpus: Vec<BeirDoc> = jsonl(&corpus_path, &corpus_text)?;
    let queries_path = dir.join("queries.jsonl");
    let all_queries: Vec<BeirQuery> = jsonl(&queries_path, &read(&queries_path)?)?;
    let qrels_path = dir.join("qrels").join("test.tsv");
    let mut qrels: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (i, line) in read(&qrels_path)?.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (i == 0 && fields.first() == Some(&"query-id")) {
            continue;
        }
        let format = |message: String| EvalError::Format {
            path: qrels_path.display().to_string(),
            line: i + 1,
            message,
        };
        let [query, doc, grade] = fields[..] else {
            return Err(format(
                "expected query-id<TAB>corpus-id<TAB>score".to_string(),
            ));
        };
        let grade: i64 = grade
            .parse()
            .map_err(|_| format(format!("score '{grade}' is not an integer")))?;
        if grade > 0 {
            qrels
                .entry(query.to_string())
                .or_default()
                .insert(doc.to_string(), grade as u32);
        }
    }
    let queries = all_queries
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .map(|q| (q.id, q.text))
        .collect();
    Ok(BeirDataset {
        name: dir
            .file_name()
            .map_or_else(|| "beir".to_string(), |n| n.to_string_lossy().into_owned()),
        corpus,
        queries,
        qrels,
        corpus_hash: sha256_hex(corpus_text.as_bytes()),
    })
}

/// The default data directory of a dataset: `<data_dir>/beir/<name>`.
pub fn default_index_dir(data_dir: &Path, dataset: &BeirDataset) -> PathBuf {
    data_dir.join("beir").join(&dataset.name)
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Marker {
    corpus_hash: String,
    documents: usize,
}

/// Indexes the corpus into `indexes` unless it already holds this exact corpus (a marker
/// file records the corpus hash once every document is written). Returns how many
/// documents were embedded and written in this call.
pub fn index(
    indexes: &Indexes,
    embedder: &dyn Embedder,
    dataset: &BeirDataset,
    on_progress: &dyn Fn(usize, usize),
) -> Result<usize, anyhow::Error> {
    let marker_path = indexes.data_dir().join("beir-corpus.json");
    let wanted = Marker {
        corpus_hash: dataset.corpus_hash.clone(),
        documents: dataset.corpus.len(),
    };
    if let Ok(text) = std::fs::read_to_string(&marker_path)
        && serde_json::from_str::<Marker>(&text).ok().as_ref() == Some(&wanted)
        && indexes.catalog().documents()?.len() == dataset.corpus.len()
    {
        return Ok(0);
    }
    let _ = std::fs::remove_file(&marker_path);
    // Start clean: a different corpus (or an interrupted run) leaves nothing behind.
    let existing: Vec<String> = indexes
        .catalog()
        .documents()?
        .into_iter()
        .map(|d| d.meta.id)
        .collect();
    indexes.remove_documents(&existing)?;
    let mut written = 0;
    for batch in dataset.corpus.chunks(BATCH) {
        let mut prepared: Vec<PreparedDocument> = batch.iter().map(prepare).collect();
        let texts: Vec<String> = prepared
            .iter()
            .map(|d| embedding_text(&d.record_meta, &d.passages[0].passage))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for (doc, vector) in prepared.iter_mut().zip(embedder.embed_passages(&refs)?) {
            doc.vectors = vec![vector];
        }
        // Not parsed by the ingestion pipeline, but stamped with its version so `check`
        // treats the documents as current.
        indexes.write_documents(&prepared, doctrina_ingest::PIPELINE_VERSION)?;
        written += prepared.len();
        on_progress(written, dataset.corpus.len());
    }
    indexes.flush()?;
    std::fs::write(&marker_path, serde_json::to_string(&wanted)?)?;
    Ok(written)
}

fn prepare(doc: &BeirDoc) -> PreparedDocument {
    let text = doc.text.trim().to_string();
    let passage = Passage {
        id: format!("{}#0", doc.id),
        doc_id: doc.id.clone(),
        ordinal: 0,
        section_path: Vec::new(),
        paragraphs: Vec::new(),
        pages: Vec::new(),
        char_start: 0,
        char_end: text.chars().count(),
        text: text.clone(),
    };
    let meta = DocumentMeta {
        id: doc.id.clone(),
        title: doc.title.trim().to_string(),
        publication: None,
        edition: None,
        supersedes: None,
        marking: Marking::default(),
        marking_basis: vec!["BEIR datasets are public: UNCLASSIFIED".to_string()],
        extra: Default::default(),
        language: String::new(),
        source_path: format!("beir:{}", doc.id),
        format: SourceFormat::Text,
        content_hash: sha256_hex(format!("{}\n{}", doc.title, doc.text).as_bytes()),
    };
    let embed = embedding_text(&meta, &passage);
    PreparedDocument {
        record_meta: meta,
        marking_rank: 0,
        body: text,
        passages: vec![StoredPassage {
            embed_hash: embed_hash(&embed),
            passage,
        }],
        vectors: Vec::new(),
    }
}

/// BEIR metrics of one ranking: graded nDCG@10 (linear gains, log2 discount, as
/// trec_eval's `ndcg_cut_10`), recall@k over the judged-relevant documents, MRR@10.
pub fn score(hits: &[SearchHit], relevant: &BTreeMap<String, u32>) -> Metrics {
    let grade = |h: &SearchHit| relevant.get(&h.doc_id).copied().unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    let ranked: Vec<u32> = hits
        .iter()
        .map(|h| {
            if seen.insert(h.doc_id.clone()) {
                grade(h)
            } else {
                0
            }
        })
        .collect();
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| f64::from(*g) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| f64::from(*g) / (i as f64 + 2.0).log2())
        .sum();
    let recall_at = |k: usize| {
        ranked.iter().take(k).filter(|g| **g > 0).count() as f64 / relevant.len().max(1) as f64
    };
    Metrics {
        recall_1: recall_at(1),
        recall_5: recall_at(5),
        recall_10: recall_at(10),
        mrr_10: ranked
            .iter()
            .take(10)
            .position(|g| *g > 0)
            .map_or(0.0, |p| 1.0 / (p as f64 + 1.0)),
        ndcg_10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
    }
}

/// Every judged query in every mode (top `k.max(10)`), averaged.
pub fn evaluate(
    retriever: &Retriever,
    dataset: &BeirDataset,
    modes: &[SearchMode],
    k: usize,
) -> Result<RetrievalReport, EvalError> {
    let depth = k.max(10);
    let filter = PassageFilter::default();
    let mut sums: BTreeMap<String, Metrics> = BTreeMap::new();
    let mut per_question = Vec::with_capacity(dataset.queries.len());
    for (id, text) in &dataset.queries {
        let relevant = &dataset.qrels[id];
        let mut results = BTreeMap::new();
        for mode in modes {
            let hits = match retriever.search(text, *mode, depth, &filter) {
                Ok(hits) => hits,
                Err(doctrina_retrieve::RetrieveError::EmptyQuery) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let m = score(&hits, relevant);
            sums.entry(mode.as_str().to_string()).or_default().add(&m);
            results.insert(mode.as_str().to_string(), m);
        }
        per_question.push(QuestionResult {
            id: id.clone(),
            question: text.clone(),
            gold: relevant.keys().cloned().collect(),
            modes: results,
        });
    }
    let n = dataset.queries.len().max(1) as f64;
    Ok(RetrievalReport {
        questions: dataset.queries.len(),
        modes: Metrics::means(sums, n),
        per_question,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doctrina_types::ScoreBreakdown;

    fn hit(doc: &str) -> SearchHit {
        SearchHit {
            rank: 0,
            passage_id: format!("{doc}#0"),
            doc_id: doc.to_string(),
            title: String::new(),
            publication: None,
            section: String::new(),
            paragraphs: Vec::new(),
            pages: Vec::new(),
            marking: String::new(),
            char_start: 0,
            char_end: 0,
            text: String::new(),
            scores: ScoreBreakdown::new(),
        }
    }

    #[test]
    fn graded_ndcg_and_recall_follow_trec_eval() {
        let relevant: BTreeMap<String, u32> = [("a".to_string(), 2), ("b".to_string(), 1)]
            .into_iter()
            .collect();
        let perfect = score(&[hit("a"), hit("b"), hit("x")], &relevant);
        assert!((perfect.ndcg_10 - 1.0).abs() < 1e-9);
        let swapped = score(&[hit("b"), hit("a")], &relevant);
        // dcg = 1/log2(2) + 2/log2(3); idcg = 2/log2(2) + 1/log2(3)
        let expected = (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((swapped.ndcg_10 - expected).abs() < 1e-9);
        let half = score(&[hit("x"), hit("a")], &relevant);
        assert_eq!((half.recall_1, half.recall_5, half.mrr_10), (0.0, 0.5, 0.5));
    }

    #[test]
    fn the_bundled_mini_dataset_loads() {
        let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
            .join("../../corpus/eval/beir-mini");
        let d = load(&dir).unwrap();
        assert_eq!(d.corpus.len(), 24);
        assert_eq!(d.queries.len(), 8, "the unjudged query is left out");
        assert_eq!(d.qrels["q1"].len(), 2);
    }
}
