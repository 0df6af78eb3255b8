//! Helpers for server-rendered pages: rendering, redirects, and errors shown as a page
//! (the JSON API shows the same errors as `{"error":{...}}`).

use askama::Template;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::AppError;
use crate::user::percent_encode;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    me: crate::auth::Me,
    status: u16,
    code: &'static str,
    message: String,
}

/// An error on a page request: rendered as an HTML page with the right status.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

/// Everything that converts to an [`AppError`] converts to a page error too.
macro_rules! page_errors {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for PageError {
            fn from(e: $error) -> Self {
                Self(e.into())
            }
        })*
    };
}

page_errors!(
    doctrina_retrieve::RetrieveError,
    doctrina_draft::DraftError,
    doctrina_plan::PlanError,
    doctrina_index::IndexError,
    doctrina_audit::AuditError,
    doctrina_auth::AuthError,
    doctrina_eval::EvalError,
    doctrina_library::LibraryError,
    doctrina_plan::WorkspaceError,
    tokio::task::JoinError,
    askama::Error,
);

impl IntoResponse for PageError {
    /// Rendered without the person (a handler's error does not know who asked); the
    /// access gate re-renders it with their header and language ([`localize`]).
    fn into_response(self) -> Response {
        let parts = ErrorParts {
            status: self.0.status(),
            code: self.0.code(),
            message: self.0.public_message(),
        };
        let mut response = error_page(self.0, crate::auth::Me::nobody());
        response.extensions_mut().insert(parts);
        response
    }
}

/// An error page's content, kept on the response so it can be rendered again for the
/// person who asked.
#[derive(Debug, Clone)]
struct ErrorParts {
    status: axum::http::StatusCode,
    code: &'static str,
    message: String,
}

/// The error page in `me`'s language and with their header, when `response` is one.
pub fn localize(response: Response, me: &crate::auth::Me) -> Response {
    let Some(parts) = response.extensions().get::<ErrorParts>().cloned() else {
        return response;
    };
    let page = ErrorPage {
        me: me.clone(),
        status: parts.status.as_u16(),
        code: parts.code,
        message: parts.message,
    };
    match page.render() {
        Ok(html) => (parts.status, Html(html)).into_response(),
        Err(_) => response,
    }
}

/// An error as an HTML page with the right status; `me` fills the header (sign-out, nav)
/// when the person is signed in.
pub fn error_page(error: AppError, me: crate::auth::Me) -> Response {
    let (status, code) = (error.status(), error.code());
    if status.is_server_error() {
        tracing::error!(error = %error, code, "page failed");
    }
    let page = ErrorPage {
        me,
        status: status.as_u16(),
        code,
        message: error.public_message(),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, page.message).into_response(),
    }
}

pub type PageResult = Result<Response, PageError>;

pub fn html<T: Template>(page: &T) -> PageResult {
    Ok(Html(page.render().map_err(AppError::from)?).into_response())
}

/// 303 to `url` (after a form post), with `error` carried as a query parameter so the page
/// shows it.
pub fn see_other(url: &str, error: Option<&AppError>) -> Response {
    match error {
        None => Redirect::to(url).into_response(),
        Some(e) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            let (path, fragment) = url.split_once('#').unwrap_or((url, ""));
            let fragment = if fragment.is_empty() {
                String::new()
            } else {
                format!("#{fragment}")
            };
            Redirect::to(&format!(
                "{path}{sep}error={}{fragment}",
                percent_encode(&e.public_message())
            ))
            .into_response()
        }
    }
}
