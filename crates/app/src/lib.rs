//! The composition root: [`App::open`] is the only place doctrina's stack is built from its
//! [`Config`]: the embedder, the indexes with the configured vector backend (repaired on
//! open), the retriever, the drafter with its inference client and support check, the
//! ingestor (isolated parsing), the plan store and workspace, the audit log, the accounts,
//! the library with its job queue, and the evaluation runs. The CLI, the web server, the
//! benchmark and the tests all build through it; tests and benchmarks only swap parts (a
//! shared embedder, a fault-injecting inference server, already-open indexes) through
//! [`AppBuilder`].

pub mod migrate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use doctrina_audit::AuditLog;
use doctrina_auth::AuthStore;
use doctrina_draft::Drafter;
use doctrina_draft::inference::{ChatModel, OpenAiChat};
use doctrina_draft::translate::LlmTranslator;
use doctrina_embed::{Embedder, FastEmbedder};
use doctrina_eval::service::Evaluations;
use doctrina_index::{
    EdgeVectorStore, HealthReport, Indexes, QdrantSettings, QdrantVectorStore, VectorStore,
};
use doctrina_ingest::{Ingestor, Sandbox};
use doctrina_library::Library;
use doctrina_plan::{PlanStore, Workspace};
use doctrina_retrieve::{GlossaryStore, Retriever};
use doctrina_types::{Config, EMBEDDING_DIM, Fault, Faulted};

/// A part of the stack that could not be opened, with what was being opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("loading the embedding model: {0}")]
    Embed(#[from] doctrina_embed::EmbedError),
    #[error("opening the indexes in {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: doctrina_index::IndexError,
    },
    #[error("starting the document parser: {0}")]
    Ingest(#[from] doctrina_ingest::IngestError),
    #[error("opening the glossary: {0}")]
    Glossary(String),
    #[error("setting up drafting: {0}")]
    Draft(String),
    #[error("opening the plan store: {0}")]
    Plan(#[from] doctrina_plan::PlanError),
    #[error("opening the audit log: {0}")]
    Audit(#[from] doctrina_audit::AuditError),
    #[error("opening the account store: {0}")]
    Auth(#[from] doctrina_auth::AuthError),
    #[error("opening the library: {0}")]
    Library(#[from] doctrina_library::LibraryError),
    #[error("opening the evaluation runs: {0}")]
    Eval(#[from] doctrina_eval::EvalError),
    #[error("creating {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Faulted for OpenError {
    fn fault(&self) -> Fault {
        match self {
            Self::Config(_) => Fault::Invalid,
            _ => Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "invalid_config",
            Self::Embed(e) => e.code(),
            Self::Index { source, .. } => source.code(),
            _ => "unavailable",
        }
    }
}

pub type Result<T> = std::result::Result<T, OpenError>;

/// The inference server the drafter talks to.
enum ChatChoice {
    /// `inference.*` from the configuration.
    Configured,
    /// A given client, or none (extractive drafting only).
    Given(Option<Arc<dyn ChatModel>>),
}

/// Opens an [`App`], with parts swapped where a test or benchmark needs it.
pub struct AppBuilder {
    config: Config,
    embedder: Option<Arc<dyn Embedder>>,
    indexes: Option<Arc<Indexes>>,
    chat: ChatChoice,
    sandbox: Option<Sandbox>,
    repair: bool,
    library: bool,
}

impl AppBuilder {
    /// Use this embedder instead of loading the configured one (ONNX Runtime allows one
    /// environment per process: tests share one).
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Use indexes that are already open (tests that share one indexed corpus but keep
    /// plans, drafts and accounts of their own in the data directory).
    pub fn indexes(mut self, indexes: Arc<Indexes>) -> Self {
        self.indexes = Some(indexes);
        self
    }

    /// Talk to this inference client (`None`: extractive drafting only) instead of the
    /// configured server.
    pub fn chat(mut self, chat: Option<Arc<dyn ChatModel>>) -> Self {
        self.chat = ChatChoice::Given(chat);
        self
    }

    /// Parse files in children started this way (default: `doctrina extract --child` from
    /// the running binary).
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Whether opening repairs what an interrupted run left (default: yes). `doctrina
    /// check` without `--repair` reports instead.
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// Open the library and start its job worker (the server does; commands that only
    /// read do not, so they never resume a job).
    pub fn library(mut self, library: bool) -> Self {
        self.library = library;
        self
    }

    pub fn open(self) -> Result<App> {
        let config = self.config;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| OpenError::Io {
            path: data_dir.clone(),
            source,
        })?;
        doctrina_korean::configure(&config.korean.mecab_dir);
        let embedder: Arc<dyn Embedder> = match self.embedder {
            Some(e) => e,
            None => Arc::new(FastEmbedder::load(&config.embedding)?),
        };
        let index_error = |source| OpenError::Index {
            path: data_dir.clone(),
            source,
        };
        let indexes = match self.indexes {
            Some(indexes) => indexes,
            None => Arc::new(open_indexes(&config, embedder.dimension()).map_err(index_error)?),
        };
        ensure_embedding_model(&config, &indexes, embedder.as_ref())?;
        let health = indexes
            .check(Some(embedder.as_ref()), self.repair)
            .map_err(index_error)?;
        if !health.repaired.is_empty() || !health.removed.is_empty() || !health.orphans.is_empty() {
            tracing::warn!(
                repaired = ?health.repaired,
                removed = ?health.removed,
                orphans = ?health.orphans,
                "repaired the indexes after an interrupted run"
            );
        }
        let sandbox = match self.sandbox {
            Some(s) => s,
            None => Sandbox::current_exe()?,
        };
        let ingestor =
            Ingestor::new(config.ingest.clone(), config.markings.clone()).isolated(sandbox);
        let glossary_path = config
            .retrieval
            .glossary
            .clone()
            .unwrap_or_else(|| data_dir.join("glossary.txt"));
        let glossary = Arc::new(
            GlossaryStore::open(&glossary_path).map_err(|e| OpenError::Glossary(e.to_string()))?,
        );
        // Drafting's client, and query translation's: the configured server, each with
        // its own settings (a given client, in tests, serves both).
        let (chat, translation_chat) = match self.chat {
            ChatChoice::Configured => {
                let client = |inference| -> Result<Option<Arc<dyn ChatModel>>> {
                    let chat =
                        OpenAiChat::new(inference).map_err(|e| OpenError::Draft(e.to_string()))?;
                    Ok(Some(Arc::new(chat)))
                };
                (
                    client(config.inference.clone())?,
                    client(translation_inference(&config))?,
                )
            }
            ChatChoice::Given(chat) => (chat.clone(), chat),
        };
        let mut retriever =
            Retriever::new(indexes.clone(), embedder.clone(), config.retrieval.clone())
                .with_glossary(glossary);
        if let Some(chat) = translation_chat.filter(|_| config.retrieval.translate_queries) {
            let timeout = Duration::from_millis(config.retrieval.translation_timeout_ms);
            let translator = LlmTranslator::new(chat, timeout)
                .map_err(|e| OpenError::Draft(format!("starting the query translator: {e}")))?;
            retriever = retriever.with_translator(Arc::new(translator));
        }
        let retriever = Arc::new(retriever);
        let mut drafter = drafter(
            &retriever,
            embedder.clone(),
            chat,
            &data_dir.join("drafts.sqlite"),
        )?;
        drafter.citation_grammar = config.inference.citation_grammar;
        drafter.support_judge = config.inference.support_judge;
        drafter.source_sentences = config.inference.source_sentences;
        let drafter = Arc::new(drafter);
        let plans = Arc::new(PlanStore::open(&data_dir.join("plans.sqlite"))?);
        let audit = Arc::new(AuditLog::open(&data_dir.join("audit.sqlite"))?);
        let auth = Arc::new(AuthStore::open(
            &data_dir.join("users.sqlite"),
            config.auth.clone(),
        )?);
        let workspace = Arc::new(Workspace::new(
            drafter.clone(),
            plans.clone(),
            audit.clone(),
        ));
        let evals = Arc::new(Evaluations::new(
            doctrina_eval::runs::RunStore::open(&data_dir.join("evals.sqlite"))?,
            drafter.clone(),
            audit.clone(),
        )?);
        let library = if self.library {
            let library = Library::open(&data_dir, config.library.clone(), ingestor.clone())?;
            library.jobs.start(doctrina_library::Worker {
                store: library.jobs.store.clone(),
                indexes: indexes.clone(),
                embedder: embedder.clone(),
                ingestor: ingestor.clone(),
                audit: audit.clone(),
                library_dir: library.dir().to_path_buf(),
            })?;
            Some(Arc::new(library))
        } else {
            None
        };
        Ok(App {
            config,
            embedder,
            indexes,
            retriever,
            drafter,
            ingestor,
            plans,
            workspace,
            audit,
            auth,
            library,
            evals,
            health,
        })
    }
}

/// Which embedding model wrote a data directory's vectors.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct EmbeddingRecord {
    model: String,
    dimension: usize,
}

const EMBEDDING_RECORD: &str = "embedding-model.json";

/// Makes sure every stored vector comes from `embedder`'s model: a data directory written by
/// another model (one from before the record existed was all-MiniLM-L6-v2, the only model
/// then) has every passage re-embedded from the catalog, or is refused
/// (`embedding.on_model_change = "refuse"`). Vectors of two models are never mixed.
fn ensure_embedding_model(
    config: &Config,
    indexes: &Indexes,
    embedder: &dyn Embedder,
) -> Result<()> {
    let path = config.data_dir.join(EMBEDDING_RECORD);
    let io = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    let recorded: Option<EmbeddingRecord> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let index_error = |source| OpenError::Index {
        path: config.data_dir.clone(),
        source,
    };
    let has_passages = indexes.catalog().passage_count().map_err(index_error)? > 0;
    let written_by = match &recorded {
        Some(r) => Some(r.model.clone()),
        None if has_passages => Some("all-minilm-l6-v2".to_string()),
        None => None,
    };
    let current = embedder.model_name();
    if let Some(old) = written_by.as_deref()
        && old != current
        && has_passages
    {
        if config.embedding.on_model_change == "refuse" {
            return Err(OpenError::Config(format!(
                "the index in {} was embedded with {old}, and embedding.model is {current}; \
                 vectors of two models cannot be searched together (set \
                 embedding.on_model_change = \"reembed\" to re-embed every passage)",
                config.data_dir.display()
            )));
        }
        tracing::warn!(
            from = old,
            to = current,
            "re-embedding every passage with the configured model"
        );
        let started = std::time::Instant::now();
        let n = indexes
            .reembed_all(embedder, &|done, total| {
                if done % 1024 < 128 {
                    tracing::info!(done, total, "re-embedding");
                }
            })
            .map_err(index_error)?;
        tracing::warn!(
            passages = n,
            seconds = started.elapsed().as_secs(),
            "re-embedded"
        );
    }
    if recorded.as_ref().is_none_or(|r| r.model != current) {
        let record = EmbeddingRecord {
            model: current.to_string(),
            dimension: embedder.dimension(),
        };
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        doctrina_types::write_atomically(&path, &bytes).map_err(io)?;
    }
    Ok(())
}

/// The vector store `config.vector` names, for the data directory `data_dir`.
pub fn open_vector_store(
    config: &Config,
    data_dir: &Path,
    dimension: usize,
) -> doctrina_index::Result<Box<dyn VectorStore>> {
    let vector = &config.vector;
    Ok(match vector.backend.as_str() {
        "edge" => Box::new(EdgeVectorStore::open(&data_dir.join("vectors"), dimension)?),
        "qdrant" => {
            let settings = QdrantSettings::from(vector);
            if settings.urls.is_empty() {
                return Err(doctrina_index::IndexError::Vector(
                    "vector.backend = \"qdrant\" needs vector.url (the server's gRPC \
                     endpoint, e.g. http://127.0.0.1:6334; a cluster's nodes separated by \
                     commas)"
                        .to_string(),
                ));
            }
            Box::new(QdrantVectorStore::open(settings, dimension)?)
        }
        other => {
            return Err(doctrina_index::IndexError::Vector(format!(
                "vector.backend '{other}' is unknown; use 'edge' (embedded Qdrant Edge) or \
                 'qdrant' (a Qdrant server at vector.url)"
            )));
        }
    })
}

/// The indexes of `config.data_dir` with the configured vector backend.
fn open_indexes(config: &Config, dimension: usize) -> doctrina_index::Result<Indexes> {
    // Korean analysis first: the indexes record which one wrote them.
    doctrina_korean::configure(&config.korean.mecab_dir);
    Indexes::open_with(&config.data_dir, config.markings.clone(), |data_dir| {
        open_vector_store(config, data_dir, dimension)
    })
}

/// A drafter over `retriever`: the bundled section templates, the support check on
/// `embedder`, drafts recorded in `store`.
pub fn drafter(
    retriever: &Arc<Retriever>,
    embedder: Arc<dyn Embedder>,
    chat: Option<Arc<dyn ChatModel>>,
    store: &Path,
) -> Result<Drafter> {
    Ok(Drafter {
        retriever: retriever.clone(),
        chat,
        citation_grammar: Default::default(),
        support_judge: false,
        combination: doctrina_draft::judge::Combination::default(),
        source_sentences: 0,
        checker: doctrina_draft::support::SupportChecker::new(
            embedder,
            doctrina_draft::support::Thresholds::default(),
        ),
        sections: doctrina_draft::sections::SectionLibrary::bundled()
            .map_err(|e| OpenError::Draft(e.to_string()))?,
        store: doctrina_draft::DraftStore::open(store)
            .map_err(|e| OpenError::Draft(e.to_string()))?,
    })
}

/// doctrina, assembled.
pub struct App {
    pub config: Config,
    pub embedder: Arc<dyn Embedder>,
    pub indexes: Arc<Indexes>,
    pub retriever: Arc<Retriever>,
    pub drafter: Arc<Drafter>,
    /// Parses files in child processes ([`Sandbox`]).
    pub ingestor: Ingestor,
    pub plans: Arc<PlanStore>,
    pub workspace: Arc<Workspace>,
    pub audit: Arc<AuditLog>,
    pub auth: Arc<AuthStore>,
    /// The custodian's library and its running job worker (see [`AppBuilder::library`]).
    pub library: Option<Arc<Library>>,
    pub evals: Arc<Evaluations>,
    /// What the consistency check on open found (and repaired, unless told not to).
    pub health: HealthReport,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Everything from `config`, with the configured embedder, vector backend and
    /// inference server, repaired on open, without the library's job worker.
    pub fn open(config: &Config) -> Result<Self> {
        Self::builder(config.clone()).open()
    }

    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            embedder: None,
            indexes: None,
            chat: ChatChoice::Configured,
            sandbox: None,
            repair: true,
            library: false,
        }
    }

    /// The embedding dimension indexes are built with.
    pub fn dimension() -> usize {
        EMBEDDING_DIM
    }

    /// The indexes alone, opened from `config` with its vector backend (for tools that
    /// index into a data directory of their own: BEIR datasets, the benchmark).
    pub fn open_indexes(config: &Config) -> Result<Indexes> {
        open_indexes(config, EMBEDDING_DIM).map_err(|source| OpenError::Index {
            path: config.data_dir.clone(),
            source,
        })
    }

    /// The embedder `config` names.
    pub fn open_embedder(config: &Config) -> Result<Arc<dyn Embedder>> {
        Ok(Arc::new(FastEmbedder::load(&config.embedding)?))
    }
}

/// Stores the account and audit commands use without the rest of the stack (no embedder:
/// they work on a machine without the model).
impl App {
    pub fn open_accounts(config: &Config) -> Result<(AuthStore, AuditLog)> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        Ok((
            AuthStore::open(&config.data_dir.join("users.sqlite"), config.auth.clone())?,
            Self::open_audit(config)?,
        ))
    }

    pub fn open_audit(config: &Config) -> Result<AuditLog> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        Ok(AuditLog::open(&config.data_dir.join("audit.sqlite"))?)
    }

    pub fn open_draft_store(config: &Config) -> Result<doctrina_draft::DraftStore> {
        doctrina_draft::DraftStore::open(&config.data_dir.join("drafts.sqlite"))
            .map_err(|e| OpenError::Draft(e.to_string()))
    }
}

/// The inference settings for query translation: the configured server, answering one
/// short line deterministically within the translation's time budget, never retried (a
/// search does not wait for a second attempt).
fn translation_inference(config: &Config) -> doctrina_types::config::InferenceConfig {
    let budget = config.retrieval.translation_timeout_ms;
    doctrina_types::config::InferenceConfig {
        max_tokens: 96,
        temperature: 0.0,
        stream: false,
        retries: 0,
        first_token_timeout_ms: budget,
        total_timeout_ms: budget,
        ..config.inference.clone()
    }
}
