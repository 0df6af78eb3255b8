//! A plan section: draft (streamed over SSE), read with support labels and cited sources,
//! edit, accept or reject, comment. Pages and the JSON API.

use std::convert::Infallible;

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use doctrina_draft::context::Source;
use doctrina_draft::{DraftMode, cite};
use doctrina_plan::{
    CitationChange, Comment, Plan, Review, ReviewAction, Section, Version, VersionKind,
};
use doctrina_types::{Marking, MarkingScheme};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiJson, ApiQuery};
use crate::auth::Me;
use crate::auth::{OFFICER, READERS, RouteTable};
use crate::page::{self, PageResult, see_other};
use crate::render::{self, Segment};
use crate::sections::VisibleSection;
use crate::{AppError, AppState};
use doctrina_plan::workspace::{self, CitedSource, DraftInput, SourceStatus};
use doctrina_types::Faulted as _;

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/sections/{id}", READERS, section_page)
        .post("/sections/{id}/draft", OFFICER, draft_form)
        .post("/sections/{id}/edit", OFFICER, edit_form)
        .post("/sections/{id}/review", OFFICER, review_form)
        .post("/sections/{id}/comments", READERS, comment_form)
        .post("/sections/{id}/marking", OFFICER, marking_form)
        .get("/sections/{id}/sources/{n}", READERS, source_page)
        .get("/api/sections/{id}", READERS, section_api)
        .post("/api/sections/{id}/draft", OFFICER, draft_api)
        .post("/api/sections/{id}/edit", OFFICER, edit_api)
        .post("/api/sections/{id}/accept", OFFICER, accept_api)
        .post("/api/sections/{id}/reject", OFFICER, reject_api)
        .post("/api/sections/{id}/comments", READERS, comment_api)
        .post("/api/sections/{id}/marking", OFFICER, marking_api)
        .get("/api/sections/{id}/sources/{n}", READERS, source_api)
}

// ---------------------------------------------------------------------------------------
// Views

struct CiteView {
    n: usize,
    /// As written: `2` or `2.3` (sentence 3 of source 2).
    label: String,
    href: String,
}

struct SentenceView {
    idx: usize,
    /// The highest marking of the sources this sentence cites (portion mark).
    portion: String,
    text: String,
    label: &'static str,
    score: f32,
    /// Who decided the label: `check`, `check-and-judge` or `judge-unavailable`.
    basis: &'static str,
    /// The judge's probability of SUPPORTS, when it judged.
    p_supports: Option<f32>,
    cites: Vec<CiteView>,
}

struct VersionView {
    /// The version's marking (banner, top and bottom): every source it was drafted from,
    /// cited or not, and its text's own marks, as raised or overridden.
    banner: String,
    /// Why: one line per source or mark, highest first.
    marking_basis: Vec<String>,
    /// What the sources alone require (shown when an override lowered the banner).
    derived: String,
    overridden: bool,
    n: u32,
    kind: &'static str,
    author: String,
    created_at: String,
    mode: String,
    text: String,
    html: String,
    sentences: Vec<SentenceView>,
    invalid_citations: Vec<usize>,
    incomplete: bool,
    error: Option<String>,
    changes: Vec<CitationChange>,
    draft_id: String,
    counts: Vec<(&'static str, usize)>,
    flagged_sources: Vec<usize>,
    source_count: usize,
}

struct HistoryItem {
    n: u32,
    kind: &'static str,
    author: String,
    created_at: String,
    changes: usize,
}

struct SourceView {
    c: CitedSource,
    segments: Vec<Segment>,
    doc_href: String,
    status: &'static str,
    citing: Vec<(usize, String, &'static str)>,
}

fn section_href(section_id: &str, v: u32, cite: Option<(usize, Option<usize>)>) -> String {
    let mut href = format!("/sections/{section_id}?v={v}");
    if let Some((n, s)) = cite {
        href.push_str(&format!("&cite={n}"));
        if let Some(s) = s {
            href.push_str(&format!("&s={s}"));
        }
        href.push_str("#source");
    }
    href
}

fn kind_str(kind: VersionKind) -> &'static str {
    match kind {
        VersionKind::Draft => "draft",
        VersionKind::Edit => "edit",
    }
}

fn version_view(
    section: &Section,
    v: &Version,
    sources: &[Source],
    flagged: &[usize],
    scheme: &MarkingScheme,
    marking: &workspace::SectionMarking,
) -> VersionView {
    let count = sources.len();
    let citable = doctrina_draft::context::citable(sources);
    let marking_of = |n: &usize| {
        sources
            .iter()
            .find(|s| s.n == *n)
            .map(|s| Marking::parse_banner(&s.hit.marking))
    };
    let portion = |citations: &[usize]| {
        let markings: Vec<Marking> = citations.iter().filter_map(marking_of).collect();
        scheme.highest(&markings).banner()
    };
    let cited: Vec<usize> = v
        .sentences
        .iter()
        .flat_map(|s| s.citations.iter().copied())
        .collect();
    let sentences: Vec<SentenceView> = v
        .sentences
        .iter()
        .enumerate()
        .map(|(i, s)| SentenceView {
            idx: i,
            portion: portion(&s.citations),
            text: cite::strip_marks(&s.text),
            label: s.support.as_str(),
            score: s.score,
            basis: s.basis.as_str(),
            p_supports: s.judgement.as_ref().map(|j| j.p_supports()),
            cites: if s.refs.is_empty() {
                s.citations
                    .iter()
                    .map(|&n| doctrina_draft::cite::Ref { n, m: None })
                    .collect()
            } else {
                s.refs.clone()
            }
            .into_iter()
            .map(|r| CiteView {
                n: r.n,
                label: r.to_string(),
                href: section_href(&section.id, v.n, Some((r.n, Some(i)))),
            })
            .collect(),
        })
        .collect();
    let mut counts = Vec::new();
    for label in ["supported", "weak", "unsupported", "uncited"] {
        counts.push((
            label,
            v.sentences
                .iter()
                .filter(|s| s.support.as_str() == label)
                .count(),
        ));
    }
    let _ = cited;
    VersionView {
        banner: marking.effective.banner(),
        marking_basis: marking.basis.clone(),
        derived: marking.derived.banner(),
        overridden: marking.overridden.is_some(),
        n: v.n,
        kind: kind_str(v.kind),
        author: v.author.clone(),
        created_at: v.created_at.clone(),
        mode: match v.mode {
            Some(DraftMode::Llm) => "llm".to_string(),
            Some(DraftMode::Extractive) => "extractive".to_string(),
            None => String::new(),
        },
        text: v.text.clone(),
        html: render::markdown_with_citations(&v.text, &|r| citable.allows(r), &|n| {
            section_href(&section.id, v.n, Some((n, None)))
        }),
        sentences,
        invalid_citations: v.invalid_citations.clone(),
        incomplete: v.incomplete,
        error: v.error.clone(),
        changes: v.changes.clone(),
        draft_id: v.draft_id.clone().unwrap_or_default(),
        counts,
        flagged_sources: flagged.to_vec(),
        source_count: count,
    }
}

fn source_view(c: CitedSource) -> SourceView {
    let segments = render::mark_spans(&c.source.hit.text, &c.spans);
    let doc_href = format!("/documents/{}#{}", c.source.hit.doc_id, c.anchor);
    let status = match c.status {
        SourceStatus::Current => "current",
        SourceStatus::Changed => "changed",
        SourceStatus::Removed => "removed",
    };
    let citing = c
        .citing
        .iter()
        .filter(|(i, _)| c.sentence.is_none_or(|s| s == *i))
        .map(|(i, s)| (*i, cite::strip_marks(&s.text), s.support.as_str()))
        .collect();
    SourceView {
        segments,
        doc_href,
        status,
        citing,
        c,
    }
}

// ---------------------------------------------------------------------------------------
// Pages

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    me: Me,
    plan: Plan,
    section: Section,
    current: Option<VersionView>,
    viewing_old: bool,
    history: Vec<HistoryItem>,
    reviews: Vec<Review>,
    comments: Vec<Comment>,
    panel: Option<SourceView>,
    panel_error: Option<String>,
    error: Option<String>,
    llm_available: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct SectionParams {
    v: Option<u32>,
    cite: Option<usize>,
    s: Option<usize>,
    error: Option<String>,
}

async fn section_page(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Query(params): Query<SectionParams>,
) -> PageResult {
    let section = state.workspace.section(&id)?;
    let plan = state.workspace.plan(&section.plan_id)?;
    let versions = state.plans.versions(&section.id)?;
    let shown = params.v.unwrap_or(section.current_version);
    let current = match versions.iter().find(|v| v.n == shown) {
        Some(v) => {
            let record = state.workspace.draft_record(v)?;
            let (sources, flagged) = record
                .map(|r| (r.sources, r.flagged_sources))
                .unwrap_or_default();
            let marking = state.workspace.section_marking(&section, Some(v))?;
            // Rendering the Markdown is CPU work: off the async runtime.
            let (section2, v2, scheme) = (section.clone(), v.clone(), state.scheme().clone());
            Some(
                tokio::task::spawn_blocking(move || {
                    version_view(&section2, &v2, &sources, &flagged, &scheme, &marking)
                })
                .await
                .map_err(AppError::from)?,
            )
        }
        None if shown == 0 => None,
        None => return Err(AppError::not_found(format!("version {shown}")).into()),
    };
    let (panel, panel_error) = match params.cite {
        Some(n) => match state.workspace.cited_source(&id, Some(shown), n, params.s) {
            Ok(c) => (Some(source_view(c)), None),
            Err(e) => (None, Some(e.public_message())),
        },
        None => (None, None),
    };
    let history = versions
        .iter()
        .rev()
        .map(|v| HistoryItem {
            n: v.n,
            kind: kind_str(v.kind),
            author: v.author.clone(),
            created_at: v.created_at.clone(),
            changes: v.changes.len(),
        })
        .collect();
    page::html(&SectionPage {
        me: me.clone(),
        viewing_old: shown != section.current_version,
        reviews: state.plans.reviews(&section.id)?,
        comments: state.plans.comments(&section.id)?,
        plan,
        section,
        current,
        history,
        panel,
        panel_error,
        error: params.error,
        llm_available: state.drafter.chat.is_some(),
    })
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    me: Me,
    panel: SourceView,
    section_href: String,
}

#[derive(Template)]
#[template(path = "source_panel.html")]
struct SourcePanel {
    me: Me,
    panel: SourceView,
}

#[derive(Debug, Deserialize, Default)]
pub struct SourceParams {
    v: Option<u32>,
    s: Option<usize>,
    #[serde(default)]
    fragment: bool,
}

/// The cited source on its own page, or (`fragment=true`) as the side-panel fragment.
async fn source_page(
    State(state): State<AppState>,
    me: Me,
    _visible: VisibleSection,
    Path((id, n)): Path<(String, usize)>,
    Query(params): Query<SourceParams>,
) -> PageResult {
    let c = state.workspace.cited_source(&id, params.v, n, params.s)?;
    let section_href = section_href(&id, c.version, Some((n, params.s)));
    let panel = source_view(c);
    if params.fragment {
        page::html(&SourcePanel { me, panel })
    } else {
        page::html(&SourcePage {
            me,
            panel,
            section_href,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    mode: String,
    task: Option<String>,
    guidance: Option<String>,
}

fn parse_mode(mode: &str) -> Result<doctrina_draft::DraftMode, AppError> {
    if mode.is_empty() {
        return Ok(doctrina_draft::DraftMode::Llm);
    }
    mode.parse().map_err(AppError::bad_request)
}

/// Without JavaScript: drafts to completion, then shows the section.
async fn draft_form(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Form(form): Form<DraftForm>,
) -> Response {
    let back = format!("/sections/{id}");
    let result = async {
        let input = DraftInput {
            mode: parse_mode(&form.mode)?,
            task: form.task.clone(),
            guidance: form.guidance.clone(),
            sources: None,
        };
        let job = state.workspace.begin_draft(&id, &input, &me.clearance)?;
        Ok::<_, AppError>(
            state
                .workspace
                .run_draft(job, &me.name, Box::new(|_| {}))
                .await?,
        )
    }
    .await;
    match result {
        Ok(outcome) => match outcome.error {
            None => see_other(&back, None),
            Some(e) => see_other(&back, Some(&AppError::bad_request(e))),
        },
        Err(e) => see_other(&back, Some(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    base: u32,
}

async fn edit_form(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Form(form): Form<EditForm>,
) -> Response {
    let back = format!("/sections/{id}");
    match state
        .workspace
        .edit(&id, &form.text, form.base, &me.name)
        .await
    {
        Ok(_) => see_other(&back, None),
        Err(e) => see_other(&back, Some(&AppError::from(e))),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    version: u32,
    #[serde(default)]
    note: String,
}

async fn review_form(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Form(form): Form<ReviewForm>,
) -> Response {
    let back = format!("/sections/{id}");
    let action = match form.action.as_str() {
        "accept" => ReviewAction::Accept,
        "reject" => ReviewAction::Reject,
        other => {
            return see_other(
                &back,
                Some(&AppError::bad_request(format!(
                    "unknown review action '{other}'"
                ))),
            );
        }
    };
    match state
        .workspace
        .review(&id, form.version, action, &me.name, &form.note)
    {
        Ok(_) => see_other(&back, None),
        Err(e) => see_other(&back, Some(&AppError::from(e))),
    }
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    text: String,
}

async fn comment_form(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Form(form): Form<CommentForm>,
) -> Response {
    let back = format!("/sections/{id}#comments");
    match state.workspace.comment(&id, &me.name, &form.text) {
        Ok(_) => see_other(&back, None),
        Err(e) => see_other(&back, Some(&AppError::from(e))),
    }
}

// ---------------------------------------------------------------------------------------
// JSON API

#[derive(Serialize)]
struct SectionDetail {
    section: Section,
    /// The current version's marking and why.
    marking: workspace::SectionMarking,
    current: Option<Version>,
    /// The sources the current version's citations number.
    sources: Vec<Source>,
    versions: Vec<Version>,
    reviews: Vec<Review>,
    comments: Vec<Comment>,
}

async fn section_api(
    State(state): State<AppState>,
    VisibleSection(id): VisibleSection,
) -> Result<Json<SectionDetail>, AppError> {
    let section = state.workspace.section(&id)?;
    let versions = state.plans.versions(&section.id)?;
    let current = versions
        .iter()
        .find(|v| v.n == section.current_version)
        .cloned();
    let sources = match &current {
        Some(v) => state.workspace.sources_of(v)?,
        None => Vec::new(),
    };
    let marking = state
        .workspace
        .section_marking(&section, current.as_ref())?;
    Ok(Json(SectionDetail {
        marking,
        reviews: state.plans.reviews(&section.id)?,
        comments: state.plans.comments(&section.id)?,
        section,
        current,
        sources,
        versions,
    }))
}

/// `{"marking": "SECRET//NOFORN"}` raises a section's marking; with `"override_reason"`,
/// marks the current version below what its sources require (audited).
#[derive(Debug, Deserialize)]
pub struct MarkingInput {
    marking: String,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn set_marking(
    state: &AppState,
    me: &Me,
    id: &str,
    input: MarkingInput,
) -> Result<workspace::SectionMarking, AppError> {
    let (state, me, id) = (state.clone(), me.clone(), id.to_string());
    Ok(tokio::task::spawn_blocking(move || {
        state.workspace.set_marking(
            &id,
            &input.marking,
            input
                .override_reason
                .as_deref()
                .filter(|r| !r.trim().is_empty()),
            &me.name,
        )
    })
    .await??)
}

/// `POST /api/sections/{id}/marking`: raise the section's marking, or override it below
/// what its sources require for the current version with a reason (409 without one).
async fn marking_api(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    ApiJson(input): ApiJson<MarkingInput>,
) -> Result<Json<workspace::SectionMarking>, AppError> {
    Ok(Json(set_marking(&state, &me, &id, input).await?))
}

async fn marking_form(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    Form(input): Form<MarkingInput>,
) -> Response {
    let back = format!("/sections/{id}");
    match set_marking(&state, &me, &id, input).await {
        Ok(_) => see_other(&back, None),
        Err(e) => see_other(&back, Some(&e)),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct DraftParams {
    stream: Option<bool>,
}

fn event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn summary(outcome: &workspace::DraftOutcome) -> serde_json::Value {
    let v = &outcome.version;
    let mut labels = serde_json::Map::new();
    for s in &v.sentences {
        let entry = labels.entry(s.support.as_str()).or_insert(json!(0));
        *entry = json!(entry.as_u64().unwrap_or(0) + 1);
    }
    json!({
        "section_id": v.section_id,
        "version": v.n,
        "draft_id": v.draft_id,
        "incomplete": v.incomplete,
        "error": outcome.error,
        "invalid_citations": v.invalid_citations,
        "support": labels,
        "url": format!("/sections/{}", v.section_id),
    })
}

/// `POST /api/sections/{id}/draft`: streams `start`, `delta`…, then `done` (or `error`) as
/// server-sent events; `?stream=false` answers with the stored version as JSON. The draft
/// runs to the end and is stored even if the client goes away.
async fn draft_api(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    ApiQuery(params): ApiQuery<DraftParams>,
    ApiJson(input): ApiJson<DraftInput>,
) -> Result<Response, AppError> {
    let job = state.workspace.begin_draft(&id, &input, &me.clearance)?;
    if params.stream == Some(false) {
        let outcome = state
            .workspace
            .run_draft(job, &me.name, Box::new(|_| {}))
            .await?;
        return Ok((StatusCode::CREATED, Json(outcome)).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let _ = tx.send(event(
        "start",
        json!({"section_id": id, "mode": input.mode, "task": job.request.task}),
    ));
    tokio::spawn(async move {
        let deltas = tx.clone();
        let on_delta = Box::new(move |text: &str| {
            let _ = deltas.send(event("delta", json!({ "text": text })));
        });
        match state.workspace.run_draft(job, &me.name, on_delta).await {
            Ok(outcome) => {
                let _ = tx.send(event("done", summary(&outcome)));
            }
            Err(e) => {
                let code = e.code();
                let _ = tx.send(event(
                    "error",
                    json!({"error": {"code": code, "message": e.public_message()}}),
                ));
            }
        }
    });
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct EditInput {
    text: String,
    /// The version the edit was made on (refused with 409 if the section has moved on).
    base_version: u32,
}

async fn edit_api(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    ApiJson(input): ApiJson<EditInput>,
) -> Result<(StatusCode, Json<Version>), AppError> {
    let version = state
        .workspace
        .edit(&id, &input.text, input.base_version, &me.name)
        .await?;
    Ok((StatusCode::CREATED, Json(version)))
}

#[derive(Debug, Deserialize)]
pub struct ReviewInput {
    version: u32,
    #[serde(default)]
    note: String,
}

async fn accept_api(
    state: State<AppState>,
    me: Me,
    id: VisibleSection,
    input: ApiJson<ReviewInput>,
) -> Result<Json<Review>, AppError> {
    review_api(state, me, id, input, ReviewAction::Accept)
}

async fn reject_api(
    state: State<AppState>,
    me: Me,
    id: VisibleSection,
    input: ApiJson<ReviewInput>,
) -> Result<Json<Review>, AppError> {
    review_api(state, me, id, input, ReviewAction::Reject)
}

fn review_api(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    ApiJson(input): ApiJson<ReviewInput>,
    action: ReviewAction,
) -> Result<Json<Review>, AppError> {
    Ok(Json(state.workspace.review(
        &id,
        input.version,
        action,
        &me.name,
        &input.note,
    )?))
}

#[derive(Debug, Deserialize)]
pub struct CommentInput {
    text: String,
}

async fn comment_api(
    State(state): State<AppState>,
    me: Me,
    VisibleSection(id): VisibleSection,
    ApiJson(input): ApiJson<CommentInput>,
) -> Result<(StatusCode, Json<Comment>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(state.workspace.comment(&id, &me.name, &input.text)?),
    ))
}

async fn source_api(
    State(state): State<AppState>,
    _visible: VisibleSection,
    Path((id, n)): Path<(String, usize)>,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> Result<Json<CitedSource>, AppError> {
    Ok(Json(
        state.workspace.cited_source(&id, params.v, n, params.s)?,
    ))
}
