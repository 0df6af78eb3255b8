use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doctrina_types::{Fault, Faulted};
use serde_json::json;

/// An error a handler returns: whose fault it is, a stable code, the message a user may
/// see, and (for server faults) the internal detail that is logged but never shown.
///
/// The kind and code come from the crate that knows ([`Faulted`]): every library error
/// converts with `?`, so the same failure has the same status and code on every route.
#[derive(Debug)]
pub struct AppError {
    fault: Fault,
    code: &'static str,
    /// Shown to the user.
    message: String,
    /// Logged for server faults; never shown.
    detail: String,
    retry_after: Option<u64>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    fn new(fault: Fault, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            fault,
            code,
            detail: message.clone(),
            message,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Fault::Invalid, "bad_request", message)
    }

    /// `what` is named in the message: "section x not found".
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(Fault::NotFound, "not_found", format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Fault::Conflict, "conflict", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Fault::TooLarge, "too_large", message)
    }

    pub fn unsupported_type(message: impl Into<String>) -> Self {
        Self::new(Fault::Unsupported, "unsupported_type", message)
    }

    pub fn unauthenticated(expired: bool) -> Self {
        if expired {
            Self::new(
                Fault::Unauthenticated,
                "session_expired",
                "your session expired; sign in again",
            )
        } else {
            Self::new(Fault::Unauthenticated, "unauthenticated", "sign in first")
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Fault::Forbidden, "forbidden", message)
    }

    pub fn csrf(message: impl Into<String>) -> Self {
        Self::new(Fault::Forbidden, "csrf_failed", message)
    }

    /// A fault of this server (a page that cannot render, a task that panicked): logged
    /// with `detail`, shown as "internal error".
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(Fault::Internal, "internal", "internal error");
        e.detail = detail.to_string();
        e
    }

    /// From any library error, by its own fault kind, code and public message.
    pub fn of<E: Faulted + ?Sized>(e: &E) -> Self {
        Self {
            fault: e.fault(),
            code: e.code(),
            message: e.public_message(),
            detail: e.to_string(),
            retry_after: e.retry_after(),
        }
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.fault.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message shown to users: the input problem, or a safe line for server faults.
    pub fn public_message(&self) -> String {
        self.message.clone()
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// Every library error converts by what it says about itself.
macro_rules! faulted {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for AppError {
            fn from(e: $error) -> Self {
                Self::of(&e)
            }
        })*
    };
}

faulted!(
    doctrina_retrieve::RetrieveError,
    doctrina_draft::DraftError,
    doctrina_plan::PlanError,
    doctrina_index::IndexError,
    doctrina_embed::EmbedError,
    doctrina_audit::AuditError,
    doctrina_auth::AuthError,
    doctrina_eval::EvalError,
    doctrina_ingest::IngestError,
    doctrina_library::LibraryError,
    doctrina_plan::WorkspaceError,
    doctrina_retrieve::GlossaryStoreError,
);

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("internal task failed: {e}"))
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::internal(format!("page could not be rendered: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self.detail, code = self.code, "request failed");
        }
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_has_the_same_code_everywhere() {
        let embed = || doctrina_embed::EmbedError::Inference("onnx".into());
        let searching = AppError::from(doctrina_retrieve::RetrieveError::Embed(embed()));
        let drafting = AppError::from(doctrina_draft::DraftError::Retrieve(
            doctrina_retrieve::RetrieveError::Embed(embed()),
        ));
        let checking = AppError::from(doctrina_draft::DraftError::Support(embed().into()));
        for e in [&searching, &drafting, &checking] {
            assert_eq!(e.code(), "embedder_unavailable");
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(!e.public_message().contains("onnx"), "no internals shown");
        }
    }

    #[test]
    fn throttling_carries_retry_after() {
        let e = AppError::from(doctrina_auth::AuthError::Throttled {
            retry_after_secs: 42,
        });
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        let response = e.into_response();
        assert_eq!(response.headers()["retry-after"], "42");
    }
}
