use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doctrina_auth::AuthError;
use doctrina_draft::DraftError;
use doctrina_plan::PlanError;
use doctrina_retrieve::RetrieveError;
use serde_json::json;

/// Errors a handler can return. Mapped exhaustively to a status and a stable code; server
/// faults are logged and shown without internals.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// An upload over the configured size limit.
    #[error("{0}")]
    TooLarge(String),
    /// An upload whose type is not allowed or whose bytes are not what its name says.
    #[error("{0}")]
    UnsupportedType(String),
    #[error(transparent)]
    Retrieve(#[from] RetrieveError),
    #[error(transparent)]
    Draft(#[from] DraftError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Index(#[from] doctrina_index::IndexError),
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("page could not be rendered")]
    Render(#[from] askama::Error),
    #[error(transparent)]
    Audit(#[from] doctrina_audit::AuditError),
    #[error("{}", if *expired { "your session expired; sign in again" } else { "sign in first" })]
    Unauthenticated { expired: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Csrf(String),
    #[error(transparent)]
    Auth(#[from] doctrina_auth::AuthError),
    /// The library's job store or its files (a runtime fault).
    #[error("library: {0}")]
    Library(String),
    /// The evaluation run store or an export of it (a runtime fault).
    #[error("evaluation: {0}")]
    Evaluation(String),
}

impl AppError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) | Self::Plan(PlanError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Self::Conflict(_) | Self::Plan(PlanError::Conflict(_)) => {
                (StatusCode::CONFLICT, "conflict")
            }
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::UnsupportedType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type"),
            Self::Plan(PlanError::Invalid(_)) => (StatusCode::BAD_REQUEST, "invalid_input"),
            Self::Plan(PlanError::Sql(_) | PlanError::Json(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
            }
            Self::Retrieve(RetrieveError::EmptyQuery) => (StatusCode::BAD_REQUEST, "empty_query"),
            Self::Retrieve(RetrieveError::Index(_)) | Self::Index(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "index_unavailable")
            }
            Self::Retrieve(RetrieveError::Embed(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "embedder_unavailable")
            }
            Self::Draft(e) => match e {
                DraftError::UnknownSection { .. } => (StatusCode::BAD_REQUEST, "unknown_template"),
                DraftError::EmptyTask => (StatusCode::BAD_REQUEST, "empty_task"),
                DraftError::NoSources => (StatusCode::UNPROCESSABLE_ENTITY, "no_sources"),
                DraftError::NoServer => (StatusCode::SERVICE_UNAVAILABLE, "no_inference_server"),
                DraftError::Inference { .. } => (StatusCode::BAD_GATEWAY, "inference_failed"),
                DraftError::Retrieve(RetrieveError::EmptyQuery) => {
                    (StatusCode::BAD_REQUEST, "empty_query")
                }
                DraftError::Retrieve(_) => (StatusCode::SERVICE_UNAVAILABLE, "index_unavailable"),
                DraftError::Support(_) => (StatusCode::SERVICE_UNAVAILABLE, "embedder_unavailable"),
                DraftError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_failed"),
            },
            Self::Join(_) | Self::Render(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            Self::Library(_) => (StatusCode::INTERNAL_SERVER_ERROR, "library_failed"),
            Self::Evaluation(_) => (StatusCode::INTERNAL_SERVER_ERROR, "evaluation_failed"),
            Self::Unauthenticated { expired: false } => {
                (StatusCode::UNAUTHORIZED, "unauthenticated")
            }
            Self::Unauthenticated { expired: true } => {
                (StatusCode::UNAUTHORIZED, "session_expired")
            }
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Csrf(_) => (StatusCode::FORBIDDEN, "csrf_failed"),
            Self::Auth(e) => match e {
                AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
                AuthError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
                AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
                AuthError::NoSuchUser(_) => (StatusCode::NOT_FOUND, "not_found"),
                AuthError::Exists(_) => (StatusCode::CONFLICT, "conflict"),
                AuthError::Sql(_) | AuthError::Internal(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "accounts_unavailable")
                }
            },
        }
    }

    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// The message shown to users: the input problem, or a generic line for server faults.
    pub fn public_message(&self) -> String {
        let (status, _) = self.status_and_code();
        match self {
            Self::Retrieve(RetrieveError::Index(_)) | Self::Index(_) => {
                "the search index is unavailable; try again shortly".to_string()
            }
            Self::Retrieve(RetrieveError::Embed(_)) | Self::Draft(DraftError::Support(_)) => {
                "the embedding model is unavailable; keyword search (mode=bm25) still works"
                    .to_string()
            }
            // The inference server's own message names the server and what went wrong
            // (timeout, refused connection, bad answer); it carries no secrets.
            Self::Draft(DraftError::Inference { .. } | DraftError::NoServer) => self.to_string(),
            Self::Auth(AuthError::Sql(_) | AuthError::Internal(_)) => {
                "the account store is unavailable; try again shortly".to_string()
            }
            Self::Audit(_) => {
                "the audit log cannot be written; the action is refused until it can".to_string()
            }
            _ if status.is_server_error() => "internal error".to_string(),
            _ => self.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, code, "request failed");
        }
        let body = json!({"error": {"code": code, "message": self.public_message()}});
        let mut response = (status, Json(body)).into_response();
        if let Self::Auth(AuthError::Throttled { retry_after_secs }) = self
            && let Ok(v) = retry_after_secs.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}
