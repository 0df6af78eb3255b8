//! The web app (axum): server-rendered pages from `templates/` and a JSON API under `/api/`.
//! `app()` builds the router so tests can serve the real app on port 0.

pub mod auth;
pub mod chart;
mod error;
pub mod i18n;
mod page;
pub mod render;
mod routes;
mod sections;
pub mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use doctrina_app::App;
use doctrina_audit::AuditLog;
use doctrina_auth::AuthStore;
use doctrina_draft::Drafter;
use doctrina_plan::PlanStore;
use doctrina_retrieve::Retriever;

pub use error::AppError;
pub use routes::routes;

/// Shared state: the parts of the [`App`] the handlers use (the retriever owns the indexes
/// and the embedder; the drafter talks to the inference server and keeps draft records;
/// the workspace keeps plans and their versions), plus the route rules and cookie policy.
#[derive(Clone)]
pub struct AppState {
    pub retriever: Arc<Retriever>,
    pub drafter: Arc<Drafter>,
    pub plans: Arc<PlanStore>,
    pub audit: Arc<AuditLog>,
    /// The officer's workspace: plans, sections, drafts, edits, reviews, exports.
    pub workspace: Arc<doctrina_plan::Workspace>,
    /// Accounts and sessions.
    pub auth: Arc<AuthStore>,
    /// Every route's access rule (filled by [`app`]).
    pub rules: Arc<auth::RuleMap>,
    /// Whether cookies are marked `Secure` (see `auth.secure_cookies`).
    pub secure_cookies: bool,
    /// The custodian's library and its job queue (when the app was opened with one).
    pub library: Option<Arc<doctrina_library::Library>>,
    /// Evaluation runs and their judgements.
    pub evals: Option<Arc<doctrina_eval::service::Evaluations>>,
    /// Reads what a file's metadata states (the marking of files that failed to parse).
    pub ingestor: doctrina_ingest::Ingestor,
    /// How often refused logins of a throttled account or address are audited.
    pub throttled_logins: Arc<auth::ThrottledLogins>,
}

impl AppState {
    /// The state of the web app over `app` (built by [`App::open`] or its builder).
    pub fn new(app: &App) -> Self {
        Self {
            retriever: app.retriever.clone(),
            drafter: app.drafter.clone(),
            plans: app.plans.clone(),
            audit: app.audit.clone(),
            workspace: app.workspace.clone(),
            auth: app.auth.clone(),
            rules: Arc::default(),
            secure_cookies: true,
            library: app.library.clone(),
            evals: Some(app.evals.clone()),
            ingestor: app.ingestor.clone(),
            throttled_logins: Arc::default(),
        }
    }

    /// The marking scheme documents and clearances are compared with.
    pub fn scheme(&self) -> &doctrina_types::MarkingScheme {
        &self.retriever.indexes().scheme
    }

    /// Records an action in the audit log. The log is part of the action: if it cannot be
    /// written, the request fails (503) rather than go unrecorded.
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        self.audit
            .append(&doctrina_audit::Event::new(
                actor, action, target, outcome, detail,
            ))
            .map(|_| ())
            .map_err(AppError::from)
    }

    /// Records the outcome of `result` (`ok`, or `error: <code>`) and passes it through.
    pub fn record_result<T>(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {}", e.code()),
        };
        self.record(actor, action, target, &outcome, detail)?;
        result
    }
}

impl AppState {
    pub fn evals(&self) -> Result<&Arc<doctrina_eval::service::Evaluations>, AppError> {
        self.evals.as_ref().ok_or_else(|| {
            AppError::not_found("evaluation runs (this server was started without a run store)")
        })
    }

    /// The library, or an error if this app was started without one.
    pub fn library(&self) -> Result<&Arc<doctrina_library::Library>, AppError> {
        self.library.as_ref().ok_or_else(|| {
            AppError::not_found("a document library (this server was started without one)")
        })
    }
}

/// The app: every route behind [`auth::gate`], security headers on every response.
pub fn app(mut state: AppState) -> Router {
    let (router, rules) = routes::table().into_parts();
    state.rules = Arc::new(auth::rule_map(&rules));
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .with_state(state)
}

fn with_cookie_policy(mut state: AppState, addr: SocketAddr) -> AppState {
    state.secure_cookies = auth::secure_cookies(&state.auth.config().secure_cookies, addr);
    state
}

/// Serves the app until Ctrl-C / SIGTERM.
pub async fn serve(addr: SocketAddr, state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "doctrina is serving");
    let state = with_cookie_policy(state, local);
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// A server running in the background (tests); stop it with [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, finishes in-flight requests and drops the app state.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `addr` (use port 0 for tests) and serves in the background.
pub async fn spawn(addr: SocketAddr, state: AppState) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = with_cookie_policy(state, addr);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Server { addr, stop, task })
}
