//! Documents: the list a custodian checks (publication, edition, marking, status with its
//! error, superseded editions, chunk count, last indexed, files that failed), filterable
//! and sortable; and the document view, the normalised document as indexed, passage by
//! passage, with section headings, paragraph anchors (`#para-2-15`), pages and marking.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use doctrina_index::DocumentRecord;
use doctrina_types::Passage;
use serde::{Deserialize, Serialize};

use super::ApiQuery;

use crate::page::{self, PageResult};
use crate::user::Actor;
use crate::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/documents", get(documents_page))
        .route("/api/documents", get(documents_api))
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

/// One row of the documents list.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentRow {
    pub id: String,
    pub title: String,
    pub publication: Option<String>,
    pub edition: Option<String>,
    pub marking: String,
    /// `indexed`, `indexing`, `failed`, `deleting`, or `superseded`.
    pub status: String,
    pub superseded_by: Option<String>,
    pub last_error: Option<String>,
    pub chunks: usize,
    pub indexed_at: Option<String>,
    #[serde(skip)]
    marking_rank: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedFile {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentList {
    pub documents: Vec<DocumentRow>,
    /// Files that never indexed (a document that failed on re-index keeps its previous
    /// version and shows the error in `last_error`).
    pub failed: Vec<FailedFile>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    /// Matches id, title or publication (case-insensitive).
    #[serde(default)]
    q: String,
    /// Only this status.
    #[serde(default)]
    status: String,
    /// `publication` (default), `title`, `edition`, `marking`, `status`, `chunks`, `indexed`.
    #[serde(default)]
    sort: String,
    #[serde(default)]
    desc: bool,
}

const SORTS: &[&str] = &[
    "publication",
    "title",
    "edition",
    "marking",
    "status",
    "chunks",
    "indexed",
];

fn list(state: &AppState, params: &ListParams) -> Result<DocumentList, AppError> {
    let sort = if params.sort.is_empty() {
        "publication"
    } else {
        params.sort.as_str()
    };
    if !SORTS.contains(&sort) {
        return Err(AppError::BadRequest(format!(
            "unknown sort '{sort}' (expected one of {})",
            SORTS.join(", ")
        )));
    }
    let indexes = state.retriever.indexes();
    let superseded = indexes.superseded()?;
    let catalog = indexes.catalog();
    let needle = params.q.trim().to_lowercase();
    let mut documents: Vec<DocumentRow> = catalog
        .documents()?
        .into_iter()
        .map(|d| {
            let superseded_by = superseded.get(&d.meta.id).cloned();
            DocumentRow {
                status: if superseded_by.is_some() {
                    "superseded".to_string()
                } else {
                    d.status.as_str().to_string()
                },
                superseded_by,
                marking: d.meta.marking.banner(),
                marking_rank: d.marking_rank,
                id: d.meta.id,
                title: d.meta.title,
                publication: d.meta.publication,
                edition: d.meta.edition,
                last_error: d.last_error,
                chunks: d.chunk_count,
                indexed_at: d.indexed_at,
            }
        })
        .filter(|d| {
            needle.is_empty()
                || d.id.to_lowercase().contains(&needle)
                || d.title.to_lowercase().contains(&needle)
                || d.publication
                    .as_deref()
                    .is_some_and(|p| p.to_lowercase().contains(&needle))
        })
        .filter(|d| params.status.is_empty() || d.status == params.status)
        .collect();
    documents.sort_by(|a, b| {
        let order = match sort {
            "title" => a.title.cmp(&b.title),
            "edition" => a.edition.cmp(&b.edition),
            "marking" => a.marking_rank.cmp(&b.marking_rank),
            "status" => a.status.cmp(&b.status),
            "chunks" => a.chunks.cmp(&b.chunks),
            "indexed" => a.indexed_at.cmp(&b.indexed_at),
            _ => a.publication.cmp(&b.publication),
        };
        order.then_with(|| a.id.cmp(&b.id))
    });
    if params.desc {
        documents.reverse();
    }
    let failed = catalog
        .failures()?
        .into_iter()
        .filter(|(path, _)| {
            // A failure of an indexed document shows on its row instead.
            !documents
                .iter()
                .any(|d| d.last_error.is_some() && path.ends_with(&d.id))
        })
        .map(|(path, error)| FailedFile { path, error })
        .collect();
    Ok(DocumentList { documents, failed })
}

/// `GET /api/documents`: every document with its status, filterable and sortable.
async fn documents_api(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<DocumentList>, AppError> {
    Ok(Json(list(&state, &params)?))
}

#[derive(Template)]
#[template(path = "documents.html")]
struct DocumentsPage {
    user: String,
    list: DocumentList,
    q: String,
    status: String,
    sort: String,
    desc: bool,
    statuses: Vec<&'static str>,
}

async fn documents_page(
    State(state): State<AppState>,
    Actor(user): Actor,
    Query(params): Query<ListParams>,
) -> PageResult {
    let list = list(&state, &params)?;
    page::html(&DocumentsPage {
        user,
        list,
        q: params.q.clone(),
        status: params.status.clone(),
        sort: if params.sort.is_empty() {
            "publication".to_string()
        } else {
            params.sort.clone()
        },
        desc: params.desc,
        statuses: vec!["indexed", "superseded", "failed", "indexing", "deleting"],
    })
}
