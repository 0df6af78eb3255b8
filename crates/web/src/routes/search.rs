use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use doctrina_types::{PassageFilter, SearchHit, SearchMode};
use serde::Deserialize;

use crate::{AppError, AppState};

const MAX_K: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(search_page))
        .route("/api/search", get(search_api))
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    k: Option<usize>,
    mode: Option<String>,
    publication: Option<String>,
}

impl SearchParams {
    fn parsed(&self) -> Result<(SearchMode, usize, PassageFilter), AppError> {
        let mode = match self.mode.as_deref() {
            None | Some("") => SearchMode::Hybrid,
            Some(m) => m.parse().map_err(AppError::BadRequest)?,
        };
        let k = self.k.unwrap_or(10);
        if k == 0 || k > MAX_K {
            return Err(AppError::BadRequest(format!(
                "k must be between 1 and {MAX_K}"
            )));
        }
        let mut filter = PassageFilter::default();
        if let Some(p) = self.publication.as_deref().filter(|p| !p.trim().is_empty()) {
            filter.publications.push(p.trim().to_string());
        }
        Ok((mode, k, filter))
    }
}

async fn run_search(state: &AppState, params: &SearchParams) -> Result<Vec<SearchHit>, AppError> {
    let (mode, k, filter) = params.parsed()?;
    let retriever = state.retriever.clone();
    let query = params.q.clone();
    Ok(tokio::task::spawn_blocking(move || retriever.search(&query, mode, k, &filter)).await??)
}

/// `GET /api/search?q=...&k=...&mode=...`: the same objects as `doctrina search --json`.
async fn search_api(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<Vec<SearchHit>>, AppError> {
    Ok(Json(run_search(&state, &params).await?))
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    query: String,
    mode: String,
    publication: String,
    hits: Vec<SearchHit>,
    error: Option<String>,
    searched: bool,
}

async fn search_page(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> impl IntoResponse {
    let searched = !params.q.trim().is_empty();
    let (hits, error) = if searched {
        match run_search(&state, &params).await {
            Ok(hits) => (hits, None),
            Err(e) => (Vec::new(), Some(e.public_message())),
        }
    } else {
        (Vec::new(), None)
    };
    let page = SearchPage {
        query: params.q.clone(),
        mode: params.mode.clone().unwrap_or_else(|| "hybrid".to_string()),
        publication: params.publication.clone().unwrap_or_default(),
        hits,
        error,
        searched,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            AppError::BadRequest("page could not be rendered".to_string()).into_response()
        }
    }
}
