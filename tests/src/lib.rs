//! Helpers for doctrina's integration tests: the real embedder (ONNX Runtime + the int8
//! MiniLM model installed by `make setup`), fresh data directories, the bundled corpus.

pub mod browser;
pub mod servers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use doctrina_app::App;
use doctrina_embed::Embedder;
use doctrina_index::indexer::NoProgress;
use doctrina_index::{IndexReport, Indexer, Indexes};
use doctrina_ingest::Ingestor;
use doctrina_retrieve::Retriever;
use doctrina_types::config::IngestConfig;
use doctrina_types::{Config, PassageFilter, SearchHit, SearchMode};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
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
    static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            App::open_embedder(&Config::default()).unwrap_or_else(|e| {
                panic!("the real embedding model is required: {e} (run `make setup`)")
            })
        })
        .clone()
}

/// The app over `data_dir` as the server builds it (through the composition root), with
/// this process's shared embedder and the test parser child; `tweak` adjusts the config
/// and the builder (indexes to share, an inference client, the library).
pub fn open_app(
    data_dir: &Path,
    configure: impl FnOnce(&mut Config),
    build: impl FnOnce(doctrina_app::AppBuilder) -> doctrina_app::AppBuilder,
) -> App {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        ingest: ingest_config(),
        ..Config::default()
    };
    configure(&mut config);
    let builder = App::builder(config)
        .embedder(embedder())
        .sandbox(sandbox())
        .chat(None);
    build(builder).open().expect("the app opens")
}

/// The isolated parser every test ingestor uses: the `doctrina-test-extract` binary built
/// beside the test binary (`target/<profile>/`), which runs the same child as
/// `doctrina extract --child`.
pub fn sandbox() -> doctrina_ingest::Sandbox {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let helper = dir.join("doctrina-test-extract");
    assert!(
        helper.is_file(),
        "{} is missing: build it with `cargo build -p doctrina-tests --bins` (cargo test builds it)",
        helper.display()
    );
    doctrina_ingest::Sandbox::new(helper, &[])
}

/// The ingest settings of most tests: files that state no marking are UNCLASSIFIED (a
/// configured default, as `ingest.default_marking`), so a test file need not be marked
/// unless marking is what it tests. The default policy (refusal) has tests of its own.
pub fn ingest_config() -> IngestConfig {
    IngestConfig {
        default_marking: Some("UNCLASSIFIED".to_string()),
        ..IngestConfig::default()
    }
}

/// An ingestor as the app builds one: every file parsed in a child process.
pub fn ingestor(ingest: IngestConfig) -> Ingestor {
    Ingestor::new(ingest, Config::default().markings).isolated(sandbox())
}

/// A fresh data directory with the app opened on it.
pub struct TestIndex {
    // Field order matters: the indexes flush on drop, so they go before their directory.
    pub app: App,
    pub indexes: Arc<Indexes>,
    pub ingest: IngestConfig,
    pub dir: tempfile::TempDir,
}

impl TestIndex {
    /// Files that state no marking are UNCLASSIFIED here ([`ingest_config`]).
    pub fn new() -> Self {
        Self::with_ingest(ingest_config())
    }

    pub fn with_ingest(ingest: IngestConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ingest2 = ingest.clone();
        let app = open_app(dir.path(), |c| c.ingest = ingest2, |b| b);
        Self {
            indexes: app.indexes.clone(),
            app,
            dir,
            ingest,
        }
    }

    /// The indexes of `path` alone, opened as the app opens them (tests of reopening).
    pub fn open_at(path: &Path) -> Indexes {
        let config = Config {
            data_dir: path.to_path_buf(),
            ..Config::default()
        };
        App::open_indexes(&config).expect("indexes open")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn index(&self, paths: &[PathBuf]) -> IndexReport {
        Indexer::new(
            &self.indexes,
            &self.app.ingestor,
            self.app.embedder.as_ref(),
        )
        .run(paths, &NoProgress)
        .expect("index run")
    }

    pub fn retriever(&self) -> Arc<Retriever> {
        self.app.retriever.clone()
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
    copy_tree(&corpus_documents(), dest);
}

/// Copies a folder with its subfolders (the Korean statutes sit in `법령/`).
pub fn copy_tree(from: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("create corpus copy");
    for entry in std::fs::read_dir(from).expect("corpus folder") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &dest.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).expect("copy");
        }
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
    drafter_over(corpus_index().retriever(), chat, store_dir)
}

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// The accounts every test app has: `(name, roles, clearance level, caveats)`.
pub const ACCOUNTS: &[(&str, &[doctrina_auth::Role], &str, &[&str])] = {
    use doctrina_auth::Role::*;
    &[
        (
            "officer",
            &[Officer],
            "TOP SECRET",
            &["NOFORN", "REL TO USA"],
        ),
        (
            "custodian",
            &[Custodian],
            "TOP SECRET",
            &["NOFORN", "REL TO USA"],
        ),
        (
            "evaluator",
            &[Evaluator],
            "TOP SECRET",
            &["NOFORN", "REL TO USA"],
        ),
        ("admin", &[Admin], "TOP SECRET", &["NOFORN", "REL TO USA"]),
        (
            "staff",
            &[Officer, Custodian, Evaluator, Admin],
            "TOP SECRET",
            &["NOFORN", "REL TO USA"],
        ),
        ("low", &[Officer, Custodian, Evaluator], "UNCLASSIFIED", &[]),
    ]
};

/// Adds [`ACCOUNTS`] to an account store (those it lacks).
pub fn add_accounts(store: &doctrina_auth::AuthStore) {
    for (name, roles, level, caveats) in ACCOUNTS {
        if store.user(name).expect("account").is_none() {
            store
                .add_user(&doctrina_auth::NewUser {
                    name: (*name).to_string(),
                    password: PASSWORD.to_string(),
                    roles: roles.to_vec(),
                    clearance: doctrina_types::Clearance {
                        level: (*level).to_string(),
                        caveats: caveats.iter().map(|c| (*c).to_string()).collect(),
                    },
                })
                .expect("add account");
        }
    }
}

/// The app's state over `drafter`'s indexes and inference client, with plans, drafts, audit
/// log, evaluation runs and [`ACCOUNTS`] in `store_dir`.
pub fn app_state(drafter: doctrina_draft::Drafter, store_dir: &Path) -> doctrina_web::AppState {
    app_state_with(
        drafter,
        store_dir,
        doctrina_types::config::AuthConfig::default(),
    )
}

/// [`app_state`] with its own session and throttling settings.
pub fn app_state_with(
    drafter: doctrina_draft::Drafter,
    store_dir: &Path,
    auth: doctrina_types::config::AuthConfig,
) -> doctrina_web::AppState {
    let app = open_app(
        store_dir,
        |c| c.auth = auth.clone(),
        |b| {
            b.indexes(drafter.retriever.indexes().clone())
                .chat(drafter.chat.clone())
        },
    );
    add_accounts(&app.auth);
    doctrina_web::AppState::new(&app)
}

/// The real web app (with the workspace) on a free port, drafting with `chat`, keeping
/// plans and drafts in `store_dir`; sign in as one of [`ACCOUNTS`] with [`signed_in`].
pub async fn serve_app(drafter: doctrina_draft::Drafter, store_dir: &Path) -> doctrina_web::Server {
    serve_state(app_state(drafter, store_dir)).await
}

pub async fn serve_state(state: doctrina_web::AppState) -> doctrina_web::Server {
    doctrina_web::spawn("127.0.0.1:0".parse().expect("addr"), state)
        .await
        .expect("server starts")
}

/// Signs in through `POST /api/login`: returns the session cookie (`name=value`) and the
/// CSRF token.
pub async fn login(base: &str, name: &str, password: &str) -> Result<(String, String), String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"name": name, "password": password}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    match cookie {
        Some(cookie) if status.is_success() => Ok((
            cookie,
            body["csrf_token"].as_str().unwrap_or_default().to_string(),
        )),
        _ => Err(format!("{status}: {body}")),
    }
}

/// A client signed in as `name` (one of [`ACCOUNTS`]): it sends the session cookie and the
/// CSRF header with every request, and does not follow redirects.
pub async fn signed_in(base: &str, name: &str) -> reqwest::Client {
    let (cookie, csrf) = login(base, name, PASSWORD).await.expect("login");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().expect("cookie"));
    headers.insert("x-csrf-token", csrf.parse().expect("csrf"));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A drafter over any retriever.
pub fn drafter_over(
    retriever: Arc<Retriever>,
    chat: Option<Arc<dyn doctrina_draft::inference::ChatModel>>,
    store_dir: &Path,
) -> doctrina_draft::Drafter {
    doctrina_app::drafter(
        &retriever,
        embedder(),
        chat,
        &store_dir.join("drafts.sqlite"),
    )
    .expect("drafter")
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

/// Records a figure a test measured (the leak probe's count, ...) for `make test` to print
/// after the run: `$DOCTRINA_REPORT_DIR/<name>.txt` when that is set, and stderr always.
pub fn report(name: &str, line: &str) {
    eprintln!("{line}");
    if let Some(dir) = std::env::var_os("DOCTRINA_REPORT_DIR") {
        let dir = PathBuf::from(dir);
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join(format!("{name}.txt")), format!("{line}\n"));
        }
    }
}
