//! The custodian's corpus management: upload (one or many files, with optional metadata),
//! replace with a new edition, delete, re-index one or all, and the jobs that do the work
//! (JSON with live progress, and a page that polls it).
//!
//! Uploads are checked while they stream in: each file against `library.max_upload_bytes`
//! (413 naming the file), its type against the allowed extensions and its bytes against
//! that type (415 naming the file). Nothing is stored unless every file passes. Every
//! request is audited with its outcome; the job records its own outcome when it ends.

use std::collections::HashSet;

use askama::Template;
use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::auth::{CUSTODIAN, Me, RouteTable};
use crate::page::{self, PageResult};
use crate::{AppError, AppState};
use doctrina_library::jobs::FileResult;
use doctrina_library::{Job, JobKind, Upload, UploadMeta};

/// The most an upload request may carry, whatever the configuration says per file; the
/// per-file and per-request limits from `library.*` are checked as the body streams in.
const UPLOAD_BODY_LIMIT: usize = 4 * 1024 * 1024 * 1024;
/// Largest metadata form field read.
const MAX_FIELD_BYTES: usize = 4096;

pub fn routes() -> RouteTable {
    let uploads = RouteTable::default()
        .post("/documents/upload", CUSTODIAN, upload_page)
        .post("/api/documents", CUSTODIAN, upload_api)
        .post("/documents/{id}/replace", CUSTODIAN, replace_page)
        .post("/api/documents/{id}/replace", CUSTODIAN, replace_api)
        .map_router(|r| r.layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)));
    RouteTable::default()
        .merge(uploads)
        .post("/documents/{id}/delete", CUSTODIAN, delete_page)
        .route("DELETE", "/api/documents/{id}", CUSTODIAN, delete_api)
        .post("/documents/{id}/reindex", CUSTODIAN, reindex_page)
        .post("/api/documents/{id}/reindex", CUSTODIAN, reindex_api)
        .post("/documents/reindex", CUSTODIAN, reindex_all_page)
        .post("/api/reindex", CUSTODIAN, reindex_all_api)
        .get("/api/jobs", CUSTODIAN, jobs_api)
        .get("/api/jobs/{id}", CUSTODIAN, job_api)
        .get("/jobs", CUSTODIAN, jobs_page)
        .get("/jobs/{id}", CUSTODIAN, job_page)
        .get("/documents/health", CUSTODIAN, health_page)
        .post("/documents/health/repair", CUSTODIAN, repair_page)
        .get("/api/index/health", CUSTODIAN, health_api)
        .post("/api/index/repair", CUSTODIAN, repair_api)
}

/// The indexes against the catalog, as this person may see it: passage counts only when
/// they may see every document (a total would reveal how much lies above their access),
/// and only the ids of documents they may see.
#[derive(Debug, serde::Serialize)]
struct IndexHealth {
    consistent: bool,
    /// Whether the counts are shown (the person may see every document).
    complete: bool,
    documents: Option<usize>,
    catalog_passages: Option<usize>,
    keyword_passages: Option<usize>,
    vector_passages: Option<usize>,
    /// Documents left mid-write (repaired at the next start or by a repair job).
    interrupted: Vec<String>,
    /// Documents whose index counts disagree with the catalog.
    mismatched: Vec<String>,
    /// Ids in an index but not in the catalog (shown only with complete access).
    orphans: Vec<String>,
}

/// Counts per index against the catalog, without changing anything.
async fn index_health(state: &AppState, me: &Me) -> Result<IndexHealth, AppError> {
    let (state, clearance) = (state.clone(), me.clearance.clone());
    tokio::task::spawn_blocking(move || {
        let indexes = state.retriever.indexes();
        let report = indexes.check(None, false)?;
        let visible: HashSet<String> = indexes
            .catalog()
            .documents()?
            .into_iter()
            .filter(|d| state.retriever.permits(Some(&clearance), &d.meta.marking))
            .map(|d| d.meta.id)
            .collect();
        let complete = visible.len() == report.documents;
        let shown = |ids: Vec<String>| -> Vec<String> {
            ids.into_iter().filter(|id| visible.contains(id)).collect()
        };
        let counts = |n: usize| complete.then_some(n);
        Ok(IndexHealth {
            consistent: report.consistent,
            complete,
            documents: counts(report.documents),
            catalog_passages: counts(report.catalog_passages),
            keyword_passages: counts(report.keyword_passages),
            vector_passages: counts(report.vector_passages),
            interrupted: shown(report.interrupted),
            mismatched: shown(report.mismatched),
            orphans: if complete { report.orphans } else { Vec::new() },
        })
    })
    .await?
}

/// `GET /api/index/health`: what `doctrina check --json` reports, within the person's access.
async fn health_api(State(state): State<AppState>, me: Me) -> Result<Json<IndexHealth>, AppError> {
    Ok(Json(index_health(&state, &me).await?))
}

#[derive(Template)]
#[template(path = "documents_health.html")]
struct HealthPage {
    me: Me,
    report: IndexHealth,
}

async fn health_page(State(state): State<AppState>, me: Me) -> PageResult {
    let report = index_health(&state, &me).await?;
    page::html(&HealthPage { me, report })
}

/// Queues a job about no particular document (a repair, a re-index of everything).
async fn queue_job(state: &AppState, me: &Me, kind: JobKind) -> Result<Job, AppError> {
    let state2 = state.clone();
    let me2 = me.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Job, AppError> {
        let job =
            state2
                .library()?
                .jobs
                .submit(kind, &me2.name, Some(&me2.clearance), None, &[])?;
        Ok(visible_job(&state2, &me2, job))
    })
    .await
    .map_err(AppError::from)
    .and_then(|r| r);
    let (action, target) = match kind {
        JobKind::Repair => ("repair", "indexes"),
        _ => ("reindex-all", ""),
    };
    record(state, &me.name, action, target, result)
}

/// `POST /api/index/repair`: queues a repair (202 with the job).
async fn repair_api(State(state): State<AppState>, me: Me) -> Result<Response, AppError> {
    Ok(accepted(queue_job(&state, &me, JobKind::Repair).await?))
}

async fn repair_page(State(state): State<AppState>, me: Me) -> PageResult {
    Ok(job_page_redirect(
        &queue_job(&state, &me, JobKind::Repair).await?,
    ))
}

/// A multipart body whose rejection (not multipart, no boundary) is our error body.
struct MultipartUpload(Multipart);

impl<S: Send + Sync> FromRequest<S> for MultipartUpload {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| {
                AppError::bad_request(format!(
                    "expected a multipart/form-data upload: {}",
                    e.body_text()
                ))
            })
    }
}

/// A file being received; removed if the request stops before it is checked.
struct Staged(std::path::PathBuf);

impl Staged {
    fn keep(mut self) -> std::path::PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Files and metadata of an upload request, checked.
struct Received {
    files: Vec<Upload>,
    meta: UploadMeta,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large(format!("the upload is too large: {}", e.body_text()))
    } else {
        AppError::bad_request(format!("malformed upload: {}", e.body_text()))
    }
}

/// Reads every part. An oversize file stops the reading of that file but the rest of the
/// body is drained (up to a bound) so the client sees the 413 instead of a reset.
async fn receive(state: &AppState, mut multipart: Multipart) -> Result<Received, AppError> {
    let library = state.library()?;
    let per_file = library.config.max_upload_bytes;
    let max_files = library.config.max_files_per_upload;
    let mut files = Vec::new();
    let mut meta = UploadMeta::default();
    let mut refused: Option<AppError> = None;
    let mut drained: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if let Some(raw_name) = field.file_name().map(str::to_string) {
            if refused.is_some() {
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    drained += chunk.len() as u64;
                    if drained > per_file.saturating_mul(2) {
                        break;
                    }
                }
                continue;
            }
            if raw_name.is_empty() && field.name() == Some("files") {
                // A form submitted with no file chosen sends an empty part.
                while field.chunk().await.map_err(multipart_error)?.is_some() {}
                continue;
            }
            if files.len() >= max_files {
                refused = Some(AppError::too_large(format!(
                    "at most {max_files} files per upload (library.max_files_per_upload)"
                )));
                continue;
            }
            // Streamed to a staging file, so a request holds at most one file in memory
            // (while it is sniffed) however many it carries.
            let staged = Staged(library.staging_path());
            let mut out = tokio::fs::File::create(&staged.0)
                .await
                .map_err(|e| AppError::internal(format!("cannot receive a file: {e}")))?;
            let mut size: u64 = 0;
            let mut too_large = false;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if too_large {
                    drained += chunk.len() as u64;
                    if drained > per_file.saturating_mul(2) {
                        break;
                    }
                    continue;
                }
                size += chunk.len() as u64;
                if size > per_file {
                    too_large = true;
                    continue;
                }
                out.write_all(&chunk)
                    .await
                    .map_err(|e| AppError::internal(format!("cannot receive a file: {e}")))?;
            }
            out.flush()
                .await
                .map_err(|e| AppError::internal(format!("cannot receive a file: {e}")))?;
            if !too_large {
                out.sync_all()
                    .await
                    .map_err(|e| AppError::internal(format!("cannot receive a file: {e}")))?;
            }
            drop(out);
            if too_large {
                let name = doctrina_library::clean_name(&raw_name)
                    .unwrap_or_else(|_| "a file".to_string());
                refused = Some(AppError::too_large(format!(
                    "'{name}' is larger than the upload limit of {per_file} bytes (library.max_upload_bytes)"
                )));
                continue;
            }
            let path = staged.keep();
            let checked =
                tokio::task::spawn_blocking(move || Upload::check(&raw_name, path, per_file))
                    .await?;
            match checked {
                Ok(upload) => files.push(upload),
                Err(e) => refused = Some(e.into()),
            }
        } else {
            let name = field.name().unwrap_or_default().to_string();
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if value.len() + chunk.len() > MAX_FIELD_BYTES {
                    return Err(AppError::bad_request(format!(
                        "the '{name}' field is too long"
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            meta.set(&name, &String::from_utf8_lossy(&value))?;
        }
    }
    if let Some(e) = refused {
        return Err(e);
    }
    if files.is_empty() {
        return Err(AppError::bad_request(
            "no file was uploaded (send one or more 'files' parts)".to_string(),
        ));
    }
    meta.validate(state.scheme())?;
    Ok(Received { files, meta })
}

/// Ids no new upload may take: every document's and every queued upload's.
fn taken_ids(state: &AppState) -> Result<HashSet<String>, AppError> {
    Ok(state
        .retriever
        .indexes()
        .catalog()
        .documents()?
        .into_iter()
        .map(|d| d.meta.id)
        .collect())
}

/// Stores the files and queues their job, which runs under the uploader's clearance.
fn submit_upload(
    state: &AppState,
    me: &Me,
    received: Received,
    replaces: Option<&str>,
) -> Result<Job, AppError> {
    let library = state.library()?;
    let stored = library.store(&received.files, &received.meta, &taken_ids(state)?)?;
    let kind = if replaces.is_some() {
        JobKind::Replace
    } else {
        JobKind::Upload
    };
    let job = library
        .jobs
        .submit(kind, &me.name, Some(&me.clearance), replaces, &stored)
        .map_err(AppError::from);
    if job.is_err() {
        for f in &stored {
            let path = std::path::Path::new(&f.path);
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(doctrina_ingest::sidecar_path(path));
        }
    }
    job
}

async fn upload(state: &AppState, me: &Me, multipart: Multipart) -> Result<Job, AppError> {
    let result = match receive(state, multipart).await {
        Ok(received) => {
            let state2 = state.clone();
            let me2 = me.clone();
            tokio::task::spawn_blocking(move || submit_upload(&state2, &me2, received, None))
                .await
                .map_err(AppError::from)
                .and_then(|r| r)
        }
        Err(e) => Err(e),
    };
    record(state, &me.name, "upload", "", result)
}

/// Audits a request's outcome (with the job's files on success).
fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    result: Result<Job, AppError>,
) -> Result<Job, AppError> {
    let detail = match &result {
        Ok(job) => json!({
            "job": job.id,
            "files": job.files.iter().map(|f| json!({"name": f.name, "doc_id": f.doc_id})).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e.public_message()}),
    };
    state.record_result(actor, action, target, detail, result)
}

fn accepted(job: Job) -> Response {
    let location = format!("/api/jobs/{}", job.id);
    (
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        Json(job),
    )
        .into_response()
}

fn job_page_redirect(job: &Job) -> Response {
    page::see_other(&format!("/jobs/{}", job.id), None)
}

/// `POST /api/documents`: upload one or more files (multipart `files` parts, optional
/// `title`, `publication`, `edition`, `marking` fields); 202 with the job.
async fn upload_api(
    State(state): State<AppState>,
    me: Me,
    MultipartUpload(multipart): MultipartUpload,
) -> Result<Response, AppError> {
    Ok(accepted(upload(&state, &me, multipart).await?))
}

async fn upload_page(
    State(state): State<AppState>,
    me: Me,
    MultipartUpload(multipart): MultipartUpload,
) -> PageResult {
    Ok(job_page_redirect(&upload(&state, &me, multipart).await?))
}

async fn replace(
    state: &AppState,
    me: &Me,
    old_id: &str,
    multipart: Multipart,
) -> Result<Job, AppError> {
    let actor = me.name.as_str();
    let result = async {
        let state2 = state.clone();
        let id2 = old_id.to_string();
        let old = tokio::task::spawn_blocking(move || {
            state2.retriever.indexes().catalog().document(&id2)
        })
        .await??
        // A document above the custodian's access is "not found", like a missing one.
        .filter(|d| {
            state
                .retriever
                .permits(Some(&me.clearance), &d.meta.marking)
        })
        .ok_or_else(|| AppError::not_found(format!("document {old_id}")))?;
        let mut received = receive(state, multipart).await?;
        if received.files.len() != 1 {
            return Err(AppError::bad_request(
                "a replacement is exactly one file".to_string(),
            ));
        }
        // The new edition keeps the old one's publication and marking unless told otherwise,
        // so a replacement never silently lowers a marking.
        received.meta.supersedes = Some(old.meta.id.clone());
        if received.meta.publication.is_none() {
            received.meta.publication = old.meta.publication.clone();
        }
        if received.meta.marking.is_none() {
            received.meta.marking = Some(old.meta.marking.banner());
        }
        let state2 = state.clone();
        let me2 = me.clone();
        let old_id2 = old_id.to_string();
        tokio::task::spawn_blocking(move || submit_upload(&state2, &me2, received, Some(&old_id2)))
            .await?
    }
    .await;
    record(state, actor, "replace", old_id, result)
}

/// `POST /api/documents/{id}/replace`: upload a new edition that supersedes `{id}`.
async fn replace_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    MultipartUpload(multipart): MultipartUpload,
) -> Result<Response, AppError> {
    Ok(accepted(replace(&state, &me, &id, multipart).await?))
}

async fn replace_page(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    MultipartUpload(multipart): MultipartUpload,
) -> PageResult {
    Ok(job_page_redirect(
        &replace(&state, &me, &id, multipart).await?,
    ))
}

/// Queues a delete or a re-index of one document (404 if it is not in the catalog).
async fn document_job(state: &AppState, me: &Me, id: &str, kind: JobKind) -> Result<Job, AppError> {
    let actor = me.name.as_str();
    let clearance = me.clearance.clone();
    let state2 = state.clone();
    let actor2 = actor.to_string();
    let id2 = id.to_string();
    let result = tokio::task::spawn_blocking(move || -> Result<Job, AppError> {
        let library = state2.library()?;
        let record = state2
            .retriever
            .indexes()
            .catalog()
            .document(&id2)?
            .filter(|d| state2.retriever.permits(Some(&clearance), &d.meta.marking))
            .ok_or_else(|| AppError::not_found(format!("document {id2}")))?;
        let file = FileResult::pending(
            record.meta.title.clone(),
            record.meta.source_path.clone(),
            Some(id2.clone()),
        );
        Ok(library
            .jobs
            .submit(kind, &actor2, Some(&clearance), Some(&id2), &[file])?)
    })
    .await
    .map_err(AppError::from)
    .and_then(|r| r);
    let action = match kind {
        JobKind::Delete => "delete-document",
        _ => "reindex",
    };
    record(state, actor, action, id, result)
}

/// `DELETE /api/documents/{id}`: removes the document from both indexes and the catalog,
/// and its file if it lives in the library (a bundled document's file stays).
async fn delete_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(accepted(
        document_job(&state, &me, &id, JobKind::Delete).await?,
    ))
}

async fn delete_page(State(state): State<AppState>, me: Me, Path(id): Path<String>) -> PageResult {
    Ok(job_page_redirect(
        &document_job(&state, &me, &id, JobKind::Delete).await?,
    ))
}

/// `POST /api/documents/{id}/reindex`.
async fn reindex_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(accepted(
        document_job(&state, &me, &id, JobKind::Reindex).await?,
    ))
}

async fn reindex_page(State(state): State<AppState>, me: Me, Path(id): Path<String>) -> PageResult {
    Ok(job_page_redirect(
        &document_job(&state, &me, &id, JobKind::Reindex).await?,
    ))
}

/// `POST /api/reindex`: re-indexes the library and every document's source file; 409 while
/// another re-index of everything is queued or running.
async fn reindex_all_api(State(state): State<AppState>, me: Me) -> Result<Response, AppError> {
    Ok(accepted(queue_job(&state, &me, JobKind::ReindexAll).await?))
}

async fn reindex_all_page(State(state): State<AppState>, me: Me) -> PageResult {
    Ok(job_page_redirect(
        &queue_job(&state, &me, JobKind::ReindexAll).await?,
    ))
}

/// Jobs name files and documents, which may be above another custodian's access: each
/// custodian sees their own jobs; admins see all.
fn may_see(me: &Me, job: &Job) -> bool {
    me.has("admin") || job.actor == me.name
}

/// A job as `me` may see it ([`Job::redacted`]): a result line is shown if its marking is
/// within their clearance; a line whose marking is unknown (a file that never indexed and
/// states none) only to someone cleared for every document.
fn visible_job(state: &AppState, me: &Me, job: Job) -> Job {
    let scheme = state.scheme();
    let sees_everything = state
        .retriever
        .indexes()
        .resolve_clearance(&doctrina_types::PassageFilter {
            clearance: Some(me.clearance.clone()),
            ..doctrina_types::PassageFilter::default()
        })
        .ok()
        .flatten()
        .is_some_and(|f| f.sees_everything());
    let catalog_marking = |id: &str| {
        state
            .retriever
            .indexes()
            .catalog()
            .document(id)
            .ok()
            .flatten()
            .map(|d| d.meta.marking)
    };
    job.redacted(
        |f| match &f.marking {
            Some(m) => scheme.permits(&me.clearance, &doctrina_types::Marking::parse_banner(m)),
            None => sees_everything,
        },
        |id| catalog_marking(id).is_some_and(|m| scheme.permits(&me.clearance, &m)),
    )
}

fn load_job(state: &AppState, id: &str, me: &Me) -> Result<Job, AppError> {
    let not_found = || AppError::not_found(format!("job {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let job = state
        .library()?
        .jobs
        .store
        .get(id)?
        .filter(|job| may_see(me, job))
        .ok_or_else(not_found)?;
    Ok(visible_job(state, me, job))
}

fn list_jobs(state: &AppState, me: &Me) -> Result<Vec<Job>, AppError> {
    Ok(state
        .library()?
        .jobs
        .store
        .list(1000)?
        .into_iter()
        .filter(|job| may_see(me, job))
        .take(100)
        .map(|job| visible_job(state, me, job))
        .collect())
}

/// `GET /api/jobs`: the 100 newest jobs this person may see.
async fn jobs_api(
    State(state): State<AppState>,
    me: Me,
) -> Result<Json<serde_json::Value>, AppError> {
    let jobs = tokio::task::spawn_blocking(move || list_jobs(&state, &me)).await??;
    Ok(Json(json!({ "jobs": jobs })))
}

/// `GET /api/jobs/{id}`: status, progress and per-file results.
async fn job_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> Result<Json<Job>, AppError> {
    Ok(Json(
        tokio::task::spawn_blocking(move || load_job(&state, &id, &me)).await??,
    ))
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    me: Me,
    job: Job,
}

async fn job_page(State(state): State<AppState>, me: Me, Path(id): Path<String>) -> PageResult {
    let me2 = me.clone();
    let job = tokio::task::spawn_blocking(move || load_job(&state, &id, &me2)).await??;
    page::html(&JobPage { me, job })
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    me: Me,
    jobs: Vec<Job>,
}

/// `/jobs`: the 100 newest jobs.
async fn jobs_page(State(state): State<AppState>, me: Me) -> PageResult {
    let me2 = me.clone();
    let jobs = tokio::task::spawn_blocking(move || list_jobs(&state, &me2)).await??;
    page::html(&JobsPage { me, jobs })
}
