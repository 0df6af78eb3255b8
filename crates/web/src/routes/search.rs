use askama::Template;
use axum::extract::{Query, State};

use super::ApiQuery;
use axum::Json;
use axum::response::{IntoResponse, Response};
use doctrina_types::{PassageFilter, QueryPlan, SearchHit, SearchMode};
use serde::Deserialize;

use crate::auth::Me;
use crate::auth::{RouteTable, SEARCHERS};
use crate::page::{self, PageResult};
use crate::render::{Segment, highlight_terms};
use crate::{AppError, AppState};
use doctrina_plan::workspace::passage_anchor;

const MAX_K: usize = 100;

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/", SEARCHERS, search_page)
        .get("/api/search", SEARCHERS, search_api)
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    k: Option<usize>,
    mode: Option<String>,
    publication: Option<String>,
    /// The highest marking level to include (e.g. `CUI`).
    marking: Option<String>,
    /// Also search superseded editions.
    #[serde(default)]
    include_superseded: bool,
}

impl SearchParams {
    fn parsed(&self, state: &AppState) -> Result<(SearchMode, usize, PassageFilter), AppError> {
        let mode = match self.mode.as_deref() {
            None | Some("") => SearchMode::Hybrid,
            Some(m) => m.parse().map_err(AppError::bad_request)?,
        };
        let k = self.k.unwrap_or(10);
        if k == 0 || k > MAX_K {
            return Err(AppError::bad_request(format!(
                "k must be between 1 and {MAX_K}"
            )));
        }
        let mut filter = PassageFilter {
            include_superseded: self.include_superseded,
            ..PassageFilter::default()
        };
        if let Some(p) = self.publication.as_deref().filter(|p| !p.trim().is_empty()) {
            filter.publications.push(p.trim().to_string());
        }
        if let Some(level) = self.marking.as_deref().filter(|m| !m.trim().is_empty()) {
            let scheme = &state.retriever.indexes().scheme;
            let rank = scheme.rank(level).ok_or_else(|| {
                AppError::bad_request(format!(
                    "unknown marking level '{level}' (expected one of {})",
                    scheme.levels.join(", ")
                ))
            })?;
            filter.max_marking_rank = Some(rank);
        }
        Ok((mode, k, filter))
    }
}

/// A search with how it was run (language, glossary terms, weights).
async fn run_search_explained(
    state: &AppState,
    params: &SearchParams,
    me: &Me,
) -> Result<(Vec<SearchHit>, QueryPlan), AppError> {
    let actor = me.name.as_str();
    let result = async {
        let (mode, k, mut filter) = params.parsed(state)?;
        // The person's clearance is part of both queries, never a filter after top-k.
        filter.clearance = Some(me.clearance.clone());
        let retriever = state.retriever.clone();
        let query = params.q.clone();
        Ok(tokio::task::spawn_blocking(move || {
            retriever
                .search_explained(&query, mode, k, &filter)
                .map(|(hits, plan, _)| (hits, plan))
        })
        .await??)
    }
    .await;
    let detail = serde_json::json!({
        "mode": params.mode,
        "k": params.k,
        "publication": params.publication,
        "marking": params.marking,
        "passages": result.as_ref().ok().map(|(hits, _): &(Vec<SearchHit>, QueryPlan)| {
            hits.iter().map(|h| h.passage_id.as_str()).collect::<Vec<_>>()
        }),
        "degraded": result.as_ref().ok().and_then(|(_, plan)| plan.degraded.as_deref()),
    });
    let query: String = params.q.chars().take(500).collect();
    state.record_result(actor, "search", &query, detail, result)
}

/// `GET /api/search?q=...&k=...&mode=...`: the same objects as `doctrina search --json`.
/// Keyword-only results (the vector store is unreachable) carry the header
/// `X-Doctrina-Degraded: keyword-only`.
async fn search_api(
    State(state): State<AppState>,
    me: Me,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Response, AppError> {
    let (hits, plan) = run_search_explained(&state, &params, &me).await?;
    let mut response = Json(hits).into_response();
    if plan.degraded.is_some() {
        response.headers_mut().insert(
            "x-doctrina-degraded",
            axum::http::HeaderValue::from_static("keyword-only"),
        );
    }
    Ok(response)
}

struct HitView {
    hit: SearchHit,
    segments: Vec<Segment>,
    anchor: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    me: Me,
    query: String,
    mode: String,
    publication: String,
    marking: String,
    include_superseded: bool,
    publications: Vec<String>,
    levels: Vec<String>,
    hits: Vec<HitView>,
    error: Option<String>,
    searched: bool,
    plan: Option<PlanView>,
}

/// How the query was searched, for the line above the hits.
struct PlanView {
    /// `Korean`, `English`, ... (translated by the template).
    language: &'static str,
    /// `지속지원 → sustainment; ...`
    expansion: String,
    /// Percent of the searchable passages in the query's language.
    same_language: Option<u32>,
    bm25_weight: f32,
    dense_weight: f32,
    /// Why, in English (shown as the line's tooltip).
    reasons: String,
    /// What failed when the results are keyword results only.
    degraded: Option<String>,
    /// The query as translated into the other language of the sources, and by whom.
    translation: Option<(String, String)>,
    /// Why a wanted translation is missing (the search ran on the query as written).
    translation_error: Option<String>,
}

impl PlanView {
    fn new(plan: &QueryPlan) -> Self {
        Self {
            language: match plan.language.as_str() {
                "ko" => "Korean",
                "en" => "English",
                "mixed" => "Korean and English",
                _ => "unknown",
            },
            expansion: plan
                .expansion
                .iter()
                .map(|(found, added)| format!("{found} → {}", added.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
            same_language: plan.same_language_share.map(|s| (s * 100.0).round() as u32),
            bm25_weight: plan.bm25_weight,
            dense_weight: plan.dense_weight,
            reasons: plan.reasons.join(" "),
            degraded: plan.degraded.clone(),
            translation: plan
                .translation
                .as_ref()
                .map(|t| (t.text.clone(), t.translator.clone())),
            translation_error: plan.translation_error.clone(),
        }
    }
}

/// Publications in the catalog the person may see, for the filter.
fn publications(state: &AppState, me: &Me) -> Vec<String> {
    let docs = state
        .retriever
        .indexes()
        .catalog()
        .documents()
        .unwrap_or_default();
    let mut pubs: Vec<String> = docs
        .into_iter()
        .filter(|d| {
            state
                .retriever
                .permits(Some(&me.clearance), &d.meta.marking)
        })
        .filter_map(|d| d.meta.publication)
        .collect();
    pubs.sort();
    pubs.dedup();
    pubs
}

async fn search_page(
    State(state): State<AppState>,
    me: Me,
    Query(params): Query<SearchParams>,
) -> PageResult {
    let searched = !params.q.trim().is_empty();
    let (hits, plan, error) = if searched {
        match run_search_explained(&state, &params, &me).await {
            Ok((hits, plan)) => (hits, Some(PlanView::new(&plan)), None),
            Err(e) => (Vec::new(), None, Some(e.public_message())),
        }
    } else {
        (Vec::new(), None, None)
    };
    let hits = hits
        .into_iter()
        .map(|hit| HitView {
            segments: highlight_terms(&hit.text, &params.q),
            anchor: passage_anchor(&hit.paragraphs, &hit.passage_id),
            hit,
        })
        .collect();
    page::html(&SearchPage {
        me: me.clone(),
        query: params.q.clone(),
        mode: params.mode.clone().unwrap_or_else(|| "hybrid".to_string()),
        publication: params.publication.clone().unwrap_or_default(),
        marking: params.marking.clone().unwrap_or_default(),
        include_superseded: params.include_superseded,
        publications: publications(&state, &me),
        levels: state.retriever.indexes().scheme.levels.clone(),
        hits,
        error,
        searched,
        plan,
    })
    .map(IntoResponse::into_response)
}
