use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/static/style.css", get(stylesheet))
}

/// 200 when the indexes answer: counts from the catalog and both indexes.
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
    let catalog = catalog.map_err(|e| AppError::Retrieve(e.into()))?;
    let vectors = vectors.map_err(|e| AppError::Retrieve(e.into()))?;
    Ok(Json(json!({
        "status": "ok",
        "passages": {"catalog": catalog, "keyword": keyword, "vectors": vectors}
    })))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../../static/style.css"),
    )
}
