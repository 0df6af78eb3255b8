mod account;
mod admin;
mod documents;
mod eval;
mod glossary;
mod health;
mod library;
mod plans;
mod search;
mod sections;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppError;
use crate::auth::{RouteTable, Rule};

/// Every route with its access rule. Routes are only ever added through [`RouteTable`], which
/// takes the rule with the handler, so a route cannot be served without one; the
/// authorisation test walks this table for every role.
pub fn table() -> RouteTable {
    RouteTable::default()
        .merge(health::routes())
        .merge(account::routes())
        .merge(search::routes())
        .merge(plans::routes())
        .merge(sections::routes())
        .merge(documents::routes())
        .merge(library::routes())
        .merge(glossary::routes())
        .merge(eval::routes())
        .merge(admin::routes())
}

/// `(method, path, access)` of every route the app serves; the OpenAPI test checks that each
/// `/api/` route is described in `static/openapi.json` and that nothing else is.
pub fn routes() -> Vec<Rule> {
    table().rules().to_vec()
}

/// A JSON body whose rejection is our error body (`{"error":{...}}`), not axum's text.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Self(v))
            .map_err(|e| AppError::bad_request(e.body_text()))
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
            .map_err(|e| AppError::bad_request(e.body_text()))
    }
}
