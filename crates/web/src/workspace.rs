//! The officer's workspace as operations shared by the pages and the JSON API: drafting a
//! section (streamed), editing with re-verification and citation-change tracking, review,
//! comments, the cited-source view and export.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use doctrina_draft::context::Source;
use doctrina_draft::record::SentenceRecord;
use doctrina_draft::{DraftError, DraftMode, DraftRecord, DraftRequest};
use doctrina_plan::export::{self, Export, SectionInput};
use doctrina_plan::{
    Comment, NewVersion, Plan, Review, ReviewAction, Section, Version, VersionKind, track_changes,
};
use doctrina_types::{Clearance, PassageFilter, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Me;
use crate::{AppError, AppState};

/// Sections being drafted right now; a second draft of the same section is refused
/// until the first finishes (it would race for the next version number).
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<String>>);

/// Releases a section's drafting slot when dropped (also on panic or cancellation).
#[derive(Debug)]
pub struct Slot {
    set: Arc<InFlight>,
    section_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.section_id);
    }
}

impl InFlight {
    fn claim(self: &Arc<Self>, section_id: &str) -> Option<Slot> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(section_id.to_string()).then(|| Slot {
            set: self.clone(),
            section_id: section_id.to_string(),
        })
    }
}

pub fn plan(state: &AppState, id: &str) -> Result<Plan, AppError> {
    state
        .plans
        .plan(id)?
        .ok_or_else(|| AppError::NotFound(format!("plan {id}")))
}

pub fn section(state: &AppState, id: &str) -> Result<Section, AppError> {
    state
        .plans
        .section(id)?
        .ok_or_else(|| AppError::NotFound(format!("section {id}")))
}

/// Whether a person holding `clearance` may see the section: every passage any of its
/// versions was drafted from (the sources given to the model, cited or not) is within it.
pub fn section_visible(
    state: &AppState,
    section: &Section,
    clearance: &Clearance,
) -> Result<bool, AppError> {
    for v in state.plans.versions(&section.id)? {
        if !sources_of(state, &v)?.iter().all(|s| {
            let marking = doctrina_types::Marking::parse_banner(&s.hit.marking);
            state.retriever.permits(Some(clearance), &marking)
        }) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The sections of a plan the person may see.
pub fn visible_sections(
    state: &AppState,
    plan_id: &str,
    clearance: &Clearance,
) -> Result<Vec<Section>, AppError> {
    let mut out = Vec::new();
    for s in state.plans.sections(plan_id)? {
        if section_visible(state, &s, clearance)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// A section id from the path that the signed-in person may see. A section drafted from
/// passages above their access is "not found", exactly like one that does not exist.
#[derive(Debug, Clone)]
pub struct VisibleSection(pub String);

impl FromRequestParts<AppState> for VisibleSection {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let api = parts.uri.path().starts_with("/api/");
        let reject = |e: AppError| {
            if api {
                e.into_response()
            } else {
                crate::page::PageError(e).into_response()
            }
        };
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| reject(AppError::BadRequest(e.body_text())))?;
        let Some(id) = params
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_string())
        else {
            return Err(reject(AppError::BadRequest("no section id".into())));
        };
        let me = Me::from_request_parts(parts, state).await.map_err(reject)?;
        let (state, id2) = (state.clone(), id.clone());
        let visible = tokio::task::spawn_blocking(move || {
            let s = section(&state, &id2)?;
            section_visible(&state, &s, &me.clearance)
        })
        .await
        .map_err(|e| reject(e.into()))?
        .map_err(reject)?;
        if visible {
            Ok(Self(id))
        } else {
            Err(reject(AppError::NotFound(format!("section {id}"))))
        }
    }
}

pub fn version(state: &AppState, section: &Section, n: u32) -> Result<Version, AppError> {
    state
        .plans
        .version(&section.id, n)?
        .ok_or_else(|| AppError::NotFound(format!("version {n} of section {}", section.id)))
}

/// The draft record a version's citations refer to.
pub fn draft_record(state: &AppState, version: &Version) -> Result<Option<DraftRecord>, AppError> {
    match &version.draft_id {
        Some(id) => Ok(state.drafter.store.get(id).map_err(DraftError::from)?),
        None => Ok(None),
    }
}

pub fn sources_of(state: &AppState, version: &Version) -> Result<Vec<Source>, AppError> {
    Ok(draft_record(state, version)?
        .map(|r| r.sources)
        .unwrap_or_default())
}

pub fn create_section(
    state: &AppState,
    plan_id: &str,
    template: &str,
    title: Option<&str>,
    task: &str,
    guidance: &str,
    actor: &str,
) -> Result<Section, AppError> {
    let Some(t) = state.drafter.sections.get(template) else {
        return Err(AppError::BadRequest(format!(
            "unknown section template '{template}'"
        )));
    };
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(&t.title)
        .to_string();
    let created = state
        .plans
        .add_section(plan_id, template, &title, task, guidance, actor)
        .map_err(AppError::from);
    let detail = json!({"template": template, "section_id": created.as_ref().ok().map(|s| &s.id)});
    state.record_result(actor, "add-section", plan_id, detail, created)
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftInput {
    #[serde(default = "default_mode")]
    pub mode: DraftMode,
    /// Replaces the section's task when given.
    pub task: Option<String>,
    /// Replaces the section's guidance when given.
    pub guidance: Option<String>,
    pub sources: Option<usize>,
}

fn default_mode() -> DraftMode {
    DraftMode::Llm
}

/// A draft ready to run: validated, with the section's drafting slot held.
#[derive(Debug)]
pub struct DraftJob {
    pub section: Section,
    pub request: DraftRequest,
    _slot: Slot,
}

pub const MAX_SOURCES: usize = 12;

pub fn begin_draft(
    state: &AppState,
    section_id: &str,
    input: &DraftInput,
    clearance: &Clearance,
) -> Result<DraftJob, AppError> {
    let current = section(state, section_id)?;
    let task = input.task.clone().unwrap_or_else(|| current.task.clone());
    let guidance = input
        .guidance
        .clone()
        .unwrap_or_else(|| current.guidance.clone());
    if task.trim().is_empty() {
        return Err(AppError::BadRequest(
            "the task is empty: say what this section is for".to_string(),
        ));
    }
    let sources = input.sources.unwrap_or(6);
    if sources == 0 || sources > MAX_SOURCES {
        return Err(AppError::BadRequest(format!(
            "sources must be between 1 and {MAX_SOURCES}"
        )));
    }
    if input.mode == DraftMode::Llm && state.drafter.chat.is_none() {
        return Err(DraftError::NoServer.into());
    }
    let slot = state.drafting.claim(section_id).ok_or_else(|| {
        AppError::Conflict("this section is already being drafted; wait for it to finish".into())
    })?;
    state.plans.set_brief(section_id, &task, &guidance)?;
    let section = section(state, section_id)?;
    Ok(DraftJob {
        request: DraftRequest {
            section: section.template.clone(),
            task,
            guidance: Some(guidance).filter(|g| !g.trim().is_empty()),
            mode: input.mode,
            sources,
            // Retrieval for the model sees only what the officer may see.
            filter: PassageFilter {
                clearance: Some(clearance.clone()),
                ..PassageFilter::default()
            },
        },
        section,
        _slot: slot,
    })
}

/// What a finished draft produced: the stored version, and the model's error when the
/// output broke off (the partial text is still stored as the version).
#[derive(Debug, Serialize)]
pub struct DraftOutcome {
    pub version: Version,
    pub error: Option<String>,
}

/// Runs the draft on a blocking thread (retrieval and the support check are CPU work) and
/// stores the result as the section's next version. `on_delta` sees streamed text.
pub async fn run_draft(
    state: &AppState,
    job: DraftJob,
    actor: &str,
    on_delta: Box<dyn Fn(&str) + Send + Sync>,
) -> Result<DraftOutcome, AppError> {
    let section_id = job.section.id.clone();
    let mode = job.request.mode;
    let mut given: Vec<String> = Vec::new();
    let result = draft_and_store(state, job, actor, on_delta, &mut given).await;
    let detail = match &result {
        Ok(o) => json!({
            "mode": mode,
            "version": o.version.n,
            "draft_id": o.version.draft_id,
            "incomplete": o.version.incomplete,
            "passages": given,
        }),
        Err(_) => json!({"mode": mode, "passages": given}),
    };
    state.record_result(actor, "draft", &section_id, detail, result)
}

/// The draft itself; `given` receives the passage ids the model (or the extractive
/// composer) was given, for the audit log.
async fn draft_and_store(
    state: &AppState,
    job: DraftJob,
    actor: &str,
    on_delta: Box<dyn Fn(&str) + Send + Sync>,
    given: &mut Vec<String>,
) -> Result<DraftOutcome, AppError> {
    let drafter = state.drafter.clone();
    let request = job.request.clone();
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        handle.block_on(drafter.draft(&request, on_delta.as_ref()))
    })
    .await?;
    let (record, error) = match result {
        Ok(record) => (record, None),
        Err(DraftError::Inference { draft_id, error }) => {
            let record = state
                .drafter
                .store
                .get(&draft_id)
                .map_err(DraftError::from)?
                .ok_or_else(|| AppError::NotFound(format!("draft {draft_id}")))?;
            // Nothing arrived: report the failure, keep the section as it was (the failed
            // attempt stays in the draft records).
            if record.raw_output.trim().is_empty() {
                given.extend(record.sources.iter().map(|s| s.hit.passage_id.clone()));
                return Err(DraftError::Inference { draft_id, error }.into());
            }
            (record, Some(error.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    given.extend(record.sources.iter().map(|s| s.hit.passage_id.clone()));
    let previous = match job.section.current_version {
        0 => None,
        n => state.plans.version(&job.section.id, n)?,
    };
    let changes = previous
        .map(|p| track_changes(&p.sentences, &record.sentences))
        .unwrap_or_default();
    let version = state.plans.add_version(
        &job.section.id,
        NewVersion {
            kind: VersionKind::Draft,
            text: record.text.clone(),
            author: actor.to_string(),
            draft_id: Some(record.draft_id.clone()),
            mode: Some(record.mode),
            incomplete: record.incomplete,
            error: error.clone(),
            sentences: record.sentences,
            invalid_citations: record.invalid_citations,
            changes,
        },
        None,
    )?;
    drop(job);
    Ok(DraftOutcome { version, error })
}

/// Stores a reviewer's edit as the next version: its sentences are re-verified against the
/// sources the draft was given, and what it did to cited sentences is recorded.
pub async fn edit(
    state: &AppState,
    section_id: &str,
    text: &str,
    base: u32,
    actor: &str,
) -> Result<Version, AppError> {
    let result = edit_version(state, section_id, text, base, actor).await;
    let detail = match &result {
        Ok(v) => json!({"base": base, "version": v.n, "cited_sentences_changed": v.changes.len()}),
        Err(_) => json!({"base": base}),
    };
    state.record_result(actor, "edit", section_id, detail, result)
}

async fn edit_version(
    state: &AppState,
    section_id: &str,
    text: &str,
    base: u32,
    actor: &str,
) -> Result<Version, AppError> {
    let section = section(state, section_id)?;
    if text.trim().is_empty() {
        return Err(AppError::BadRequest(
            "the text is empty; reject the section instead of saving an empty version".into(),
        ));
    }
    let previous = match section.current_version {
        0 => None,
        n => Some(version(state, &section, n)?),
    };
    let record = match &previous {
        Some(p) => draft_record(state, p)?,
        None => None,
    };
    let sources = record
        .as_ref()
        .map(|r| r.sources.clone())
        .unwrap_or_default();
    let drafter = state.drafter.clone();
    let owned = text.replace("\r\n", "\n");
    let checked = owned.clone();
    let (sentences, invalid) =
        tokio::task::spawn_blocking(move || drafter.verify(&checked, &sources))
            .await?
            .map_err(AppError::from)?;
    let changes = previous
        .as_ref()
        .map(|p| track_changes(&p.sentences, &sentences))
        .unwrap_or_default();
    Ok(state.plans.add_version(
        section_id,
        NewVersion {
            kind: VersionKind::Edit,
            text: owned,
            author: actor.to_string(),
            draft_id: record.map(|r| r.draft_id),
            mode: None,
            incomplete: false,
            error: None,
            sentences,
            invalid_citations: invalid,
            changes,
        },
        Some(base),
    )?)
}

pub fn review(
    state: &AppState,
    section_id: &str,
    version: u32,
    action: ReviewAction,
    actor: &str,
    note: &str,
) -> Result<Review, AppError> {
    let result = state
        .plans
        .review(section_id, version, action, actor, note)
        .map_err(AppError::from);
    let name = match action {
        ReviewAction::Accept => "accept",
        ReviewAction::Reject => "reject",
    };
    state.record_result(
        actor,
        name,
        section_id,
        json!({"version": version, "note": note}),
        result,
    )
}

pub fn comment(
    state: &AppState,
    section_id: &str,
    actor: &str,
    text: &str,
) -> Result<Comment, AppError> {
    let result = state
        .plans
        .add_comment(section_id, actor, text)
        .map_err(AppError::from);
    let detail = json!({"comment_id": result.as_ref().ok().map(|c| c.id)});
    state.record_result(actor, "comment", section_id, detail, result)
}

/// Whether the passage a citation names is still in the index with the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// The index holds the same text the model was given.
    Current,
    /// The document was re-indexed and this passage's text changed.
    Changed,
    /// The passage is no longer in the index.
    Removed,
}

/// A cited source as the reviewer sees it: the exact text the model was given, the span
/// each citing sentence matched, and whether the index still agrees.
#[derive(Debug, Clone, Serialize)]
pub struct CitedSource {
    pub section_id: String,
    pub version: u32,
    pub draft_id: String,
    pub source: Source,
    pub label: String,
    /// The sentences of this version that cite the source, with their index.
    pub citing: Vec<(usize, SentenceRecord)>,
    /// Character ranges of `source.text` to highlight.
    pub spans: Vec<(usize, usize)>,
    /// The sentence the reviewer opened the citation from, if any.
    pub sentence: Option<usize>,
    pub status: SourceStatus,
    /// The anchor of the passage in the document view.
    pub anchor: String,
}

pub fn passage_anchor(paragraphs: &[String], passage_id: &str) -> String {
    match paragraphs.first() {
        Some(p) => format!("para-{p}"),
        None => format!(
            "passage-{}",
            passage_id.rsplit_once('#').map_or("0", |(_, o)| o)
        ),
    }
}

pub fn cited_source(
    state: &AppState,
    section_id: &str,
    version_n: Option<u32>,
    n: usize,
    sentence: Option<usize>,
) -> Result<CitedSource, AppError> {
    let section = section(state, section_id)?;
    let version_n = version_n.unwrap_or(section.current_version);
    let version = version(state, &section, version_n)?;
    let record = draft_record(state, &version)?
        .ok_or_else(|| AppError::NotFound(format!("sources of version {version_n}")))?;
    let source = record
        .sources
        .iter()
        .find(|s| s.n == n)
        .cloned()
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "source [{n}] (this draft had {} sources)",
                record.sources.len()
            ))
        })?;
    let citing: Vec<(usize, SentenceRecord)> = version
        .sentences
        .iter()
        .enumerate()
        .filter(|(_, s)| s.citations.contains(&n))
        .map(|(i, s)| (i, s.clone()))
        .collect();
    if let Some(i) = sentence
        && !citing.iter().any(|(j, _)| *j == i)
    {
        return Err(AppError::NotFound(format!(
            "sentence {i} citing source [{n}]"
        )));
    }
    let spans = citing
        .iter()
        .filter(|(i, _)| sentence.is_none_or(|s| s == *i))
        .flat_map(|(_, s)| s.cited_spans.iter().filter(|e| e.n == n))
        .map(|e| (e.char_start, e.char_end))
        .collect();
    let stored = state
        .retriever
        .indexes()
        .catalog()
        .passages(std::slice::from_ref(&source.hit.passage_id))?;
    let status = match stored.first() {
        None => SourceStatus::Removed,
        Some(p) if sha256_hex(p.passage.text.as_bytes()) == source.text_hash => {
            SourceStatus::Current
        }
        Some(_) => SourceStatus::Changed,
    };
    Ok(CitedSource {
        section_id: section.id,
        version: version.n,
        draft_id: record.draft_id,
        label: source.label(),
        anchor: passage_anchor(&source.hit.paragraphs, &source.hit.passage_id),
        source,
        citing,
        spans,
        sentence,
        status,
    })
}

/// The plan as one document with a plan-wide reference list and marking banner.
pub fn export_plan(
    state: &AppState,
    plan_id: &str,
    me: &Me,
    format: &str,
) -> Result<Export, AppError> {
    let actor = me.name.as_str();
    let result = build_export(state, plan_id, &me.clearance);
    let detail = match &result {
        Ok(e) => json!({"format": format, "banner": e.banner, "references": e.references.len()}),
        Err(_) => json!({"format": format}),
    };
    state.record_result(actor, "export", plan_id, detail, result)
}

/// Only the sections the person may see are exported.
fn build_export(
    state: &AppState,
    plan_id: &str,
    clearance: &Clearance,
) -> Result<Export, AppError> {
    let plan = plan(state, plan_id)?;
    let sections = visible_sections(state, plan_id, clearance)?;
    let mut accepted: Vec<(Option<Version>, Vec<Source>)> = Vec::new();
    for s in &sections {
        match s.accepted_version {
            Some(n) => {
                let v = version(state, s, n)?;
                let sources = sources_of(state, &v)?;
                accepted.push((Some(v), sources));
            }
            None => accepted.push((None, Vec::new())),
        }
    }
    let inputs: Vec<SectionInput<'_>> = sections
        .iter()
        .zip(&accepted)
        .map(|(section, (v, sources))| SectionInput {
            section,
            accepted: v.as_ref(),
            sources,
        })
        .collect();
    let reviewers = |s: &Section| -> Option<String> {
        let n = s.accepted_version?;
        state
            .plans
            .reviews(&s.id)
            .ok()?
            .into_iter()
            .rev()
            .find(|r| r.version == n && r.action == ReviewAction::Accept)
            .map(|r| format!("{} at {}", r.author, r.created_at))
    };
    Ok(export::build(
        &plan,
        &inputs,
        &reviewers,
        &state.retriever.indexes().scheme,
    ))
}
