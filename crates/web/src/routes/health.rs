use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::{Access, RouteTable};
use crate::{AppError, AppState};

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/healthz", Access::Public, healthz)
        .get("/static/style.css", Access::Public, stylesheet)
        .get("/static/app.js", Access::Public, script)
        .get("/api/openapi.json", Access::Public, openapi)
}

/// The OpenAPI 3.1 description of the JSON API (kept in `static/openapi.json`; a test
/// checks it against the router's routes).
pub const OPENAPI: &str = include_str!("../../../../static/openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The page script: streaming drafts and the citation side panel. Everything else works
/// without it.
async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../../static/app.js"),
    )
}

/// 200 when the indexes answer, with whether the catalog and both indexes hold the same
/// number of passages. Public (for monitoring), so it shows no counts: those would reveal
/// how much the corpus holds above a reader's access; custodians see them at
/// `/api/index/health`.
async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let retriever = state.retriever.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let indexes = retriever.indexes();
        let catalog = indexes.catalog().passage_count();
        let vectors = indexes.vectors.count();
        (catalog, indexes.keyword.count(), vectors)
    })
    .await?;
    let (catalog, keyword, vectors) = counts;
    let catalog = catalog.map_err(AppError::from)?;
    let vectors = vectors.map_err(AppError::from)?;
    Ok(Json(json!({
        "status": "ok",
        "consistent": catalog == keyword && keyword == vectors,
    })))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../../static/style.css"),
    )
}
