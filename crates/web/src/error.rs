use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doctrina_retrieve::RetrieveError;
use serde_json::json;

/// Errors a handler can return. Mapped exhaustively to a status and a stable code; server
/// faults are logged and shown without internals.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Retrieve(#[from] RetrieveError),
    #[error("internal task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl AppError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Retrieve(RetrieveError::EmptyQuery) => (StatusCode::BAD_REQUEST, "empty_query"),
            Self::Retrieve(RetrieveError::Index(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "index_unavailable")
            }
            Self::Retrieve(RetrieveError::Embed(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "embedder_unavailable")
            }
            Self::Join(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The message shown to users: the input problem, or a generic line for server faults.
    pub fn public_message(&self) -> String {
        let (status, _) = self.status_and_code();
        if status.is_server_error() {
            match self {
                Self::Retrieve(RetrieveError::Index(_)) => {
                    "the search index is unavailable; try again shortly".to_string()
                }
                Self::Retrieve(RetrieveError::Embed(_)) => {
                    "the embedding model is unavailable; keyword search (mode=bm25) still works"
                        .to_string()
                }
                _ => "internal error".to_string(),
            }
        } else {
            self.to_string()
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
