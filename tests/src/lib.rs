//! Helpers for doctrina's integration tests: the real embedder (ONNX Runtime + the int8
//! MiniLM model installed by `make setup`), fresh data directories, the bundled corpus.

pub mod browser;
pub mod servers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use doctrina_embed::{Embedder, FastEmbedder};
use doctrina_index::indexer::NoProgress;
use doctrina_index::{IndexReport, Indexer, Indexes};
use doctrina_ingest::Ingestor;
use doctrina_retrieve::Retriever;
use doctrina_types::config::IngestConfig;
use doctrina_types::{Config, EMBEDDING_DIM, PassageFilter, SearchHit, SearchMode};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

pub fn corpus_documents() -> PathBuf {
    workspace().join("corpus/documents")
}

/// One real embedder per test process (ONNX Runtime allows one environment per process).
/// Panics with the setup command if the runtime or model is missing: these tests must not
/// pass without the real parts.
pub fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<FastEmbedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let config = Config::default();
            Arc::new(FastEmbedder::load(&config.embedding).unwrap_or_else(|e| {
                panic!("the real embedding model is required: {e} (run `make setup`)")
            }))
        })
        .clone()
}

/// A fresh data directory with its indexes.
pub struct TestIndex {
    // Field order matters: the indexes flush on drop, so they go before their directory.
    pub indexes: Arc<Indexes>,
    pub ingest: IngestConfig,
    pub dir: tempfile::TempDir,
}

impl TestIndex {
    pub fn new() -> Self {
        Self::with_ingest(IngestConfig::default())
    }

    pub fn with_ingest(ingest: IngestConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let indexes = Self::open_at(dir.path());
        Self {
            dir,
            indexes: Arc::new(indexes),
            ingest,
        }
    }

    pub fn open_at(path: &Path) -> Indexes {
        Indexes::open(path, EMBEDDING_DIM, Config::default().markings).expect("indexes open")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn index(&self, paths: &[PathBuf]) -> IndexReport {
        let config = Config::default();
        let ingestor = Ingestor::new(self.ingest.clone(), config.markings);
        let embedder = embedder();
        Indexer::new(&self.indexes, &ingestor, embedder.as_ref())
            .run(paths, &NoProgress)
            .expect("index run")
    }

    pub fn retriever(&self) -> Retriever {
        Retriever::new(
            self.indexes.clone(),
            embedder(),
            Config::default().retrieval,
        )
    }

    pub fn search(&self, query: &str, mode: SearchMode, k: usize) -> Vec<SearchHit> {
        self.retriever()
            .search(query, mode, k, &PassageFilter::default())
            .expect("search")
    }
}

impl Default for TestIndex {
    fn default() -> Self {
        Self::new()
    }
}

/// Copies the bundled documents into `dest` (so tests can edit and delete them).
pub fn copy_corpus(dest: &Path) {
    std::fs::create_dir_all(dest).expect("create corpus copy");
    for entry in std::fs::read_dir(corpus_documents()).expect("corpus/documents") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dest.join(entry.file_name())).expect("copy");
    }
}

/// The bundled question set (`corpus/eval/questions.jsonl`).
pub fn questions() -> Vec<doctrina_eval::Question> {
    doctrina_eval::load_questions(&workspace().join("corpus/eval/questions.jsonl"))
        .expect("questions.jsonl")
}

/// The bundled corpus indexed once per test process, shared by the tests that only read.
pub fn corpus_index() -> &'static TestIndex {
    static INDEX: OnceLock<TestIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = TestIndex::new();
        let report = index.index(&[corpus_documents()]);
        assert!(report.failed.is_empty(), "{report:#?}");
        index
    })
}

/// A drafter over the shared corpus index, storing drafts in `store_dir`.
pub fn drafter(
    chat: Option<Arc<dyn doctrina_draft::inference::ChatModel>>,
    store_dir: &Path,
) -> doctrina_draft::Drafter {
    drafter_over(Arc::new(corpus_index().retriever()), chat, store_dir)
}

/// The real web app (with the workspace) on a free port, drafting with `chat`, keeping
/// plans and drafts in `store_dir`.
pub async fn serve_app(drafter: doctrina_draft::Drafter, store_dir: &Path) -> doctrina_web::Server {
    let plans = doctrina_plan::PlanStore::open(&store_dir.join("plans.sqlite")).expect("plans");
    let audit = doctrina_audit::AuditLog::open(&store_dir.join("audit.sqlite")).expect("audit");
    doctrina_web::spawn(
        "127.0.0.1:0".parse().expect("addr"),
        doctrina_web::AppState::new(Arc::new(drafter), plans, audit),
    )
    .await
    .expect("server starts")
}

/// A drafter over any retriever.
pub fn drafter_over(
    retriever: Arc<Retriever>,
    chat: Option<Arc<dyn doctrina_draft::inference::ChatModel>>,
    store_dir: &Path,
) -> doctrina_draft::Drafter {
    doctrina_draft::Drafter {
        retriever,
        chat,
        checker: doctrina_draft::support::SupportChecker::new(
            embedder(),
            doctrina_draft::support::Thresholds::default(),
        ),
        sections: doctrina_draft::sections::SectionLibrary::bundled().expect("templates"),
        store: doctrina_draft::DraftStore::open(&store_dir.join("drafts.sqlite")).expect("store"),
    }
}

/// An OpenAI-compatible client for `url` with short timeouts (tests), adjusted by `tweak`.
pub fn chat(
    url: &str,
    tweak: impl FnOnce(&mut doctrina_types::config::InferenceConfig),
) -> Arc<dyn doctrina_draft::inference::ChatModel> {
    let mut config = doctrina_types::config::InferenceConfig {
        base_url: url.to_string(),
        first_token_timeout_ms: 3_000,
        total_timeout_ms: 20_000,
        retry_backoff_ms: 50,
        ..Default::default()
    };
    tweak(&mut config);
    Arc::new(doctrina_draft::inference::OpenAiChat::new(config).expect("client"))
}

/// [`chat`] with a minute for the whole answer (the web tests).
pub fn chat_at(url: &str) -> Arc<dyn doctrina_draft::inference::ChatModel> {
    chat(url, |c| c.total_timeout_ms = 60_000)
}
