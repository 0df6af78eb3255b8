use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
        (status, Json(body)).into_response()
    }
}
