//! The document view: the normalised document as indexed, passage by passage, with
//! section headings, paragraph anchors (`#para-2-15`), pages and the marking.

use askama::Template;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use doctrina_index::DocumentRecord;
use doctrina_types::Passage;
use serde::Serialize;

use crate::page::{self, PageResult};
use crate::user::Actor;
use crate::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/documents/{id}", get(document_page))
        .route("/api/documents/{id}", get(document_api))
}

#[derive(Serialize)]
struct DocumentDetail {
    document: DocumentRecord,
    passages: Vec<Passage>,
}

fn load(state: &AppState, id: &str) -> Result<DocumentDetail, AppError> {
    let catalog = state.retriever.indexes().catalog();
    let document = catalog
        .document(id)?
        .ok_or_else(|| AppError::NotFound(format!("document {id}")))?;
    let passages = catalog
        .passages_of(id)?
        .into_iter()
        .map(|p| p.passage)
        .collect();
    Ok(DocumentDetail { document, passages })
}

async fn document_api(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, AppError> {
    let state2 = state.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || load(&state2, &id)).await??,
    ))
}

struct Block {
    ordinal: u32,
    /// The section heading, shown when it changes.
    heading: Option<String>,
    /// Anchors for the numbered paragraphs that start in this passage.
    anchors: Vec<String>,
    paragraphs: Vec<String>,
    pages: String,
    text: String,
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    user: String,
    document: DocumentRecord,
    marking: String,
    blocks: Vec<Block>,
}

async fn document_page(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
) -> PageResult {
    let state2 = state.clone();
    let detail = tokio::task::spawn_blocking(move || load(&state2, &id)).await??;
    let mut seen = std::collections::HashSet::new();
    let mut last_section = String::new();
    let blocks = detail
        .passages
        .into_iter()
        .map(|p| {
            let heading = (p.section_path.join(" › ") != last_section).then(|| {
                last_section = p.section_path.join(" › ");
                last_section.clone()
            });
            let anchors = p
                .paragraphs
                .iter()
                .filter(|para| seen.insert((*para).clone()))
                .map(|para| format!("para-{para}"))
                .collect();
            let pages = match (p.pages.first(), p.pages.last()) {
                (Some(a), Some(b)) if a == b => format!("p. {a}"),
                (Some(a), Some(b)) => format!("pp. {a}–{b}"),
                _ => String::new(),
            };
            Block {
                ordinal: p.ordinal,
                heading: heading.filter(|h| !h.is_empty()),
                anchors,
                paragraphs: p.paragraphs,
                pages,
                text: p.text,
            }
        })
        .collect();
    page::html(&DocumentPage {
        user,
        marking: detail.document.meta.marking.banner(),
        document: detail.document,
        blocks,
    })
}
