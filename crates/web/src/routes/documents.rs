//! Documents: the list a custodian checks (publication, edition, marking, status with its
//! error, superseded editions, chunk count, last indexed, files that failed), filterable
//! and sortable; and the document view, the normalised document as indexed, passage by
//! passage, with section headings, paragraph anchors (`#para-2-15`), pages and marking.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use doctrina_index::DocumentRecord;
use doctrina_types::Passage;
use serde::{Deserialize, Serialize};

use super::ApiQuery;

use crate::auth::Me;
use crate::auth::{RouteTable, SEARCHERS};
use crate::page::{self, PageResult};
use crate::{AppError, AppState};

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/documents", SEARCHERS, documents_page)
        .get("/api/documents", SEARCHERS, documents_api)
        .get("/documents/{id}", SEARCHERS, document_page)
        .get("/api/documents/{id}", SEARCHERS, document_api)
}

#[derive(Serialize)]
struct DocumentDetail {
    document: DocumentRecord,
    passages: Vec<Passage>,
}

/// A document the person may see; one above their access is "not found", exactly like one
/// that does not exist. Where the file lives on the server is for custodians and admins.
fn load(state: &AppState, id: &str, me: &Me) -> Result<DocumentDetail, AppError> {
    let catalog = state.retriever.indexes().catalog();
    let mut document = catalog
        .document(id)?
        .filter(|d| {
            state
                .retriever
                .permits(Some(&me.clearance), &d.meta.marking)
        })
        .ok_or_else(|| AppError::not_found(format!("document {id}")))?;
    if !(me.has("custodian") || me.has("admin")) {
        document.meta.source_path = String::new();
    }
    let passages = catalog
        .passages_of(id)?
        .into_iter()
        .map(|p| p.passage)
        .collect();
    Ok(DocumentDetail { document, passages })
}

async fn document_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, AppError> {
    Ok(Json(
        tokio::task::spawn_blocking(move || load(&state, &id, &me)).await??,
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
    me: Me,
    document: DocumentRecord,
    marking: String,
    blocks: Vec<Block>,
}

async fn document_page(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> PageResult {
    let (state2, me2) = (state.clone(), me.clone());
    let detail = tokio::task::spawn_blocking(move || load(&state2, &id, &me2)).await??;
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
        me: me.clone(),
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
    /// `indexed`, `stale`, `indexing`, `failed`, `deleting`, or `superseded`.
    pub status: String,
    pub superseded_by: Option<String>,
    /// Why a `stale` document no longer matches its source.
    pub stale_reason: Option<String>,
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
    /// version and shows the error in `last_error`), those the person may see.
    pub failed: Vec<FailedFile>,
    /// Failed files withheld: their metadata states a marking above the person's access,
    /// or none at all and the person is not cleared for everything.
    pub failed_hidden: usize,
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

/// Why an indexed document no longer matches its source, if it does not: the parser has
/// changed since (a re-index will redo it), the file is gone, or it was modified after it
/// was indexed. Cheap (one `stat`), so the list can show it for every document.
fn stale(d: &DocumentRecord) -> Option<String> {
    if d.pipeline_version != doctrina_ingest::PIPELINE_VERSION {
        return Some(format!(
            "indexed by parser version {}, now {}",
            d.pipeline_version,
            doctrina_ingest::PIPELINE_VERSION
        ));
    }
    let modified = match std::fs::metadata(&d.meta.source_path) {
        Err(_) => return Some("its file is missing".to_string()),
        Ok(m) => m.modified().ok()?,
    };
    let indexed = d.indexed_at.as_deref()?;
    // The catalog's timestamp format, so the two compare as text.
    let modified = doctrina_types::utc_timestamp(modified, true);
    (modified.as_str() > indexed).then(|| format!("its file changed at {modified}"))
}

/// The documents the person may see. Files that failed to parse have no trusted marking, so
/// only custodians and admins see them.
fn list(state: &AppState, params: &ListParams, me: &Me) -> Result<DocumentList, AppError> {
    let sort = if params.sort.is_empty() {
        "publication"
    } else {
        params.sort.as_str()
    };
    if !SORTS.contains(&sort) {
        return Err(AppError::bad_request(format!(
            "unknown sort '{sort}' (expected one of {})",
            SORTS.join(", ")
        )));
    }
    let indexes = state.retriever.indexes();
    let superseded = indexes.superseded()?;
    let catalog = indexes.catalog();
    let needle = params.q.trim().to_lowercase();
    let visible: Vec<_> = catalog
        .documents()?
        .into_iter()
        .filter(|d| {
            state
                .retriever
                .permits(Some(&me.clearance), &d.meta.marking)
        })
        .collect();
    let mut documents: Vec<DocumentRow> = visible
        .into_iter()
        .map(|d| {
            // A newer edition the person may not see is not named.
            let superseded_by = superseded
                .get(&d.meta.id)
                .filter(|newer| state.retriever.permits(Some(&me.clearance), &newer.marking))
                .map(|newer| newer.id.clone());
            let stale_reason = (superseded_by.is_none()
                && d.status == doctrina_types::DocumentStatus::Indexed)
                .then(|| stale(&d))
                .flatten();
            DocumentRow {
                status: if superseded_by.is_some() {
                    "superseded".to_string()
                } else if stale_reason.is_some() {
                    "stale".to_string()
                } else {
                    d.status.as_str().to_string()
                },
                stale_reason,
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
    let may_see_failures = me.has("custodian") || me.has("admin");
    let failures = if may_see_failures {
        catalog.failures()?
    } else {
        Vec::new()
    };
    drop(catalog);
    // A failed file has no trusted marking: what its metadata states decides, and a file
    // that states none is shown only to someone cleared for everything.
    let sees_everything = indexes
        .resolve_clearance(&doctrina_types::PassageFilter {
            clearance: Some(me.clearance.clone()),
            ..doctrina_types::PassageFilter::default()
        })?
        .is_some_and(|f| f.sees_everything());
    let mut failed_hidden = 0;
    let failed = failures
        .into_iter()
        .filter(|(path, _)| {
            // A failure of an indexed document shows on its row instead.
            !documents
                .iter()
                .any(|d| d.last_error.is_some() && path.ends_with(&d.id))
        })
        .filter(|(path, _)| {
            let visible = match state.ingestor.stated_marking(std::path::Path::new(path)) {
                Some(marking) => state.retriever.permits(Some(&me.clearance), &marking),
                None => sees_everything,
            };
            failed_hidden += usize::from(!visible);
            visible
        })
        .map(|(path, error)| FailedFile { path, error })
        .collect();
    Ok(DocumentList {
        documents,
        failed,
        failed_hidden,
    })
}

/// `GET /api/documents`: every document with its status, filterable and sortable.
async fn documents_api(
    State(state): State<AppState>,
    me: Me,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<DocumentList>, AppError> {
    Ok(Json(list(&state, &params, &me)?))
}

#[derive(Template)]
#[template(path = "documents.html")]
struct DocumentsPage {
    me: Me,
    list: DocumentList,
    q: String,
    status: String,
    sort: String,
    desc: bool,
    statuses: Vec<&'static str>,
}

async fn documents_page(
    State(state): State<AppState>,
    me: Me,
    Query(params): Query<ListParams>,
) -> PageResult {
    let list = list(&state, &params, &me)?;
    page::html(&DocumentsPage {
        me: me.clone(),
        list,
        q: params.q.clone(),
        status: params.status.clone(),
        sort: if params.sort.is_empty() {
            "publication".to_string()
        } else {
            params.sort.clone()
        },
        desc: params.desc,
        statuses: vec![
            "indexed",
            "stale",
            "superseded",
            "failed",
            "indexing",
            "deleting",
        ],
    })
}
