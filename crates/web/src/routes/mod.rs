mod documents;
mod health;
mod plans;
mod search;
mod sections;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(search::router())
        .merge(plans::router())
        .merge(sections::router())
        .merge(documents::router())
}

/// Every route the app serves, as `(method, path)`; the OpenAPI test checks that each
/// `/api/` route is described in `static/openapi.json` and that nothing else is.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/static/style.css"),
    ("GET", "/static/app.js"),
    ("GET", "/api/openapi.json"),
    ("GET", "/"),
    ("GET", "/api/search"),
    ("GET", "/plans"),
    ("POST", "/plans"),
    ("POST", "/whoami"),
    ("GET", "/plans/{id}"),
    ("POST", "/plans/{id}/sections"),
    ("GET", "/plans/{id}/export.md"),
    ("GET", "/plans/{id}/export.html"),
    ("GET", "/api/templates"),
    ("GET", "/api/plans"),
    ("POST", "/api/plans"),
    ("GET", "/api/plans/{id}"),
    ("POST", "/api/plans/{id}/sections"),
    ("GET", "/api/plans/{id}/export"),
    ("GET", "/sections/{id}"),
    ("POST", "/sections/{id}/draft"),
    ("POST", "/sections/{id}/edit"),
    ("POST", "/sections/{id}/review"),
    ("POST", "/sections/{id}/comments"),
    ("GET", "/sections/{id}/sources/{n}"),
    ("GET", "/api/sections/{id}"),
    ("POST", "/api/sections/{id}/draft"),
    ("POST", "/api/sections/{id}/edit"),
    ("POST", "/api/sections/{id}/accept"),
    ("POST", "/api/sections/{id}/reject"),
    ("POST", "/api/sections/{id}/comments"),
    ("GET", "/api/sections/{id}/sources/{n}"),
    ("GET", "/documents"),
    ("GET", "/api/documents"),
    ("GET", "/documents/{id}"),
    ("GET", "/api/documents/{id}"),
];

/// A JSON body whose rejection is our error body (`{"error":{...}}`), not axum's text.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Self(v))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// Query parameters whose rejection is our error body.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}
