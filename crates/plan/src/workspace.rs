//! The officer's workspace as operations shared by the pages and the JSON API: drafting a
//! section (streamed), editing with re-verification and citation-change tracking, review,
//! comments, the cited-source view and export.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use doctrina_audit::AuditLog;
use doctrina_draft::context::Source;
use doctrina_draft::record::SentenceRecord;
use doctrina_draft::{DraftError, DraftMode, DraftRecord, DraftRequest, Drafter};
use doctrina_types::{Clearance, Fault, Faulted, PassageFilter, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::export::{self, Export, SectionInput};
use crate::{
    Comment, MarkingOverride, NewVersion, Plan, PlanError, PlanStore, Review, ReviewAction,
    Section, Version, VersionKind, track_changes,
};
use doctrina_types::Marking;

/// What a workspace operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Draft(#[from] DraftError),
    #[error(transparent)]
    Audit(#[from] doctrina_audit::AuditError),
    #[error(transparent)]
    Index(#[from] doctrina_index::IndexError),
    /// A blocking task panicked or was cancelled (a bug).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl From<doctrina_draft::record::StoreError> for WorkspaceError {
    fn from(e: doctrina_draft::record::StoreError) -> Self {
        Self::Draft(e.into())
    }
}

impl From<tokio::task::JoinError> for WorkspaceError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

impl Faulted for WorkspaceError {
    fn fault(&self) -> Fault {
        match self {
            Self::Invalid(_) => Fault::Invalid,
            Self::NotFound(_) => Fault::NotFound,
            Self::Conflict(_) => Fault::Conflict,
            Self::Plan(e) => e.fault(),
            Self::Draft(e) => e.fault(),
            Self::Audit(e) => e.fault(),
            Self::Index(e) => e.fault(),
            Self::Task(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Plan(e) => e.code(),
            Self::Draft(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Index(e) => e.code(),
            Self::Task(_) => "internal",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Plan(e) => e.public_message(),
            Self::Draft(e) => e.public_message(),
            Self::Audit(e) => e.public_message(),
            Self::Index(e) => e.public_message(),
            Self::Task(_) => "internal error".to_string(),
            _ => self.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, WorkspaceError>;

/// The officer's workspace: the drafter (with its retriever and draft records), the plan
/// store, and the audit log every operation records in.
pub struct Workspace {
    pub drafter: Arc<Drafter>,
    pub plans: Arc<PlanStore>,
    pub audit: Arc<AuditLog>,
    drafting: Arc<InFlight>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").finish_non_exhaustive()
    }
}

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

impl Workspace {
    pub fn new(drafter: Arc<Drafter>, plans: Arc<PlanStore>, audit: Arc<AuditLog>) -> Self {
        Self {
            drafter,
            plans,
            audit,
            drafting: Arc::default(),
        }
    }

    /// Records an action in the audit log. The log is part of the action: if it cannot be
    /// written, the action fails rather than go unrecorded.
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.audit
            .append(&doctrina_audit::Event::new(
                actor, action, target, outcome, detail,
            ))
            .map(|_| ())
            .map_err(WorkspaceError::from)
    }

    /// Records the outcome of `result` (`ok`, or `error: <code>`) and passes it through.
    pub fn record_result<T>(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        result: Result<T>,
    ) -> Result<T> {
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {}", e.code()),
        };
        self.record(actor, action, target, &outcome, detail)?;
        result
    }

    pub fn plan(&self, id: &str) -> Result<Plan> {
        self.plans
            .plan(id)?
            .ok_or_else(|| WorkspaceError::NotFound(format!("plan {id}")))
    }

    pub fn section(&self, id: &str) -> Result<Section> {
        self.plans
            .section(id)?
            .ok_or_else(|| WorkspaceError::NotFound(format!("section {id}")))
    }

    /// Whether a person holding `clearance` may see the section: every passage any of its
    /// versions was drafted from (the sources given to the model, cited or not) is within it.
    pub fn section_visible(&self, section: &Section, clearance: &Clearance) -> Result<bool> {
        for v in self.plans.versions(&section.id)? {
            if !self.sources_of(&v)?.iter().all(|s| {
                let marking = doctrina_types::Marking::parse_banner(&s.hit.marking);
                self.drafter.retriever.permits(Some(clearance), &marking)
            }) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The sections of a plan the person may see.
    pub fn visible_sections(&self, plan_id: &str, clearance: &Clearance) -> Result<Vec<Section>> {
        let mut out = Vec::new();
        for s in self.plans.sections(plan_id)? {
            if self.section_visible(&s, clearance)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub fn version(&self, section: &Section, n: u32) -> Result<Version> {
        self.plans.version(&section.id, n)?.ok_or_else(|| {
            WorkspaceError::NotFound(format!("version {n} of section {}", section.id))
        })
    }

    /// The draft record a version's citations refer to.
    pub fn draft_record(&self, version: &Version) -> Result<Option<DraftRecord>> {
        match &version.draft_id {
            Some(id) => Ok(self.drafter.store.get(id).map_err(DraftError::from)?),
            None => Ok(None),
        }
    }

    pub fn sources_of(&self, version: &Version) -> Result<Vec<Source>> {
        Ok(self
            .draft_record(version)?
            .map(|r| r.sources)
            .unwrap_or_default())
    }

    pub fn create_section(
        &self,
        plan_id: &str,
        template: &str,
        title: Option<&str>,
        task: &str,
        guidance: &str,
        actor: &str,
    ) -> Result<Section> {
        let Some(t) = self.drafter.sections.get(template) else {
            return Err(WorkspaceError::Invalid(format!(
                "unknown section template '{template}'"
            )));
        };
        let title = title
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&t.title)
            .to_string();
        let created = self
            .plans
            .add_section(plan_id, template, &title, task, guidance, actor)
            .map_err(WorkspaceError::from);
        let detail =
            json!({"template": template, "section_id": created.as_ref().ok().map(|s| &s.id)});
        self.record_result(actor, "add-section", plan_id, detail, created)
    }

    pub fn begin_draft(
        &self,
        section_id: &str,
        input: &DraftInput,
        clearance: &Clearance,
    ) -> Result<DraftJob> {
        let current = self.section(section_id)?;
        let task = input.task.clone().unwrap_or_else(|| current.task.clone());
        let guidance = input
            .guidance
            .clone()
            .unwrap_or_else(|| current.guidance.clone());
        if task.trim().is_empty() {
            return Err(WorkspaceError::Invalid(
                "the task is empty: say what this section is for".to_string(),
            ));
        }
        let sources = input.sources.unwrap_or(6);
        if sources == 0 || sources > MAX_SOURCES {
            return Err(WorkspaceError::Invalid(format!(
                "sources must be between 1 and {MAX_SOURCES}"
            )));
        }
        if input.mode == DraftMode::Llm && self.drafter.chat.is_none() {
            return Err(DraftError::NoServer.into());
        }
        let slot = self.drafting.claim(section_id).ok_or_else(|| {
            WorkspaceError::Conflict(
                "this section is already being drafted; wait for it to finish".into(),
            )
        })?;
        self.plans.set_brief(section_id, &task, &guidance)?;
        let section = self.section(section_id)?;
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

    /// Runs the draft on a blocking thread (retrieval and the support check are CPU work) and
    /// stores the result as the section's next version. `on_delta` sees streamed text.
    pub async fn run_draft(
        &self,
        job: DraftJob,
        actor: &str,
        on_delta: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<DraftOutcome> {
        let section_id = job.section.id.clone();
        let mode = job.request.mode;
        let mut given: Vec<String> = Vec::new();
        let result = self.draft_and_store(job, actor, on_delta, &mut given).await;
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
        self.record_result(actor, "draft", &section_id, detail, result)
    }

    /// The draft itself; `given` receives the passage ids the model (or the extractive
    /// composer) was given, for the audit log.
    async fn draft_and_store(
        &self,
        job: DraftJob,
        actor: &str,
        on_delta: Box<dyn Fn(&str) + Send + Sync>,
        given: &mut Vec<String>,
    ) -> Result<DraftOutcome> {
        let drafter = self.drafter.clone();
        let request = job.request.clone();
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::spawn_blocking(move || {
            handle.block_on(drafter.draft(&request, on_delta.as_ref()))
        })
        .await?;
        let (record, error) = match result {
            // A draft stopped early (the model repeating itself) says why in its record.
            Ok(record) => {
                let error = record.incomplete_reason();
                (record, error)
            }
            Err(DraftError::Inference { draft_id, error }) => {
                let record = self
                    .drafter
                    .store
                    .get(&draft_id)
                    .map_err(DraftError::from)?
                    .ok_or_else(|| WorkspaceError::NotFound(format!("draft {draft_id}")))?;
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
            n => self.plans.version(&job.section.id, n)?,
        };
        let changes = previous
            .map(|p| track_changes(&p.sentences, &record.sentences))
            .unwrap_or_default();
        let version = self.plans.add_version(
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
        &self,
        section_id: &str,
        text: &str,
        base: u32,
        actor: &str,
    ) -> Result<Version> {
        let result = self.edit_version(section_id, text, base, actor).await;
        let detail = match &result {
            Ok(v) => {
                json!({"base": base, "version": v.n, "cited_sentences_changed": v.changes.len()})
            }
            Err(_) => json!({"base": base}),
        };
        self.record_result(actor, "edit", section_id, detail, result)
    }

    async fn edit_version(
        &self,
        section_id: &str,
        text: &str,
        base: u32,
        actor: &str,
    ) -> Result<Version> {
        let section = self.section(section_id)?;
        if text.trim().is_empty() {
            return Err(WorkspaceError::Invalid(
                "the text is empty; reject the section instead of saving an empty version".into(),
            ));
        }
        let previous = match section.current_version {
            0 => None,
            n => Some(self.version(&section, n)?),
        };
        let record = match &previous {
            Some(p) => self.draft_record(p)?,
            None => None,
        };
        let sources = record
            .as_ref()
            .map(|r| r.sources.clone())
            .unwrap_or_default();
        let drafter = self.drafter.clone();
        let owned = text.replace("\r\n", "\n");
        let checked = owned.clone();
        let checked_sources = sources.clone();
        let (mut sentences, invalid) =
            tokio::task::spawn_blocking(move || drafter.verify(&checked, &checked_sources))
                .await?
                .map_err(WorkspaceError::from)?;
        // An edited LLM draft is judged like the draft was; unchanged sentences keep their
        // judgement.
        if record.as_ref().is_some_and(|r| r.mode == DraftMode::Llm) {
            let known = previous
                .as_ref()
                .map(|p| p.sentences.as_slice())
                .unwrap_or_default();
            self.drafter.judge(&mut sentences, &sources, known).await;
        }
        let changes = previous
            .as_ref()
            .map(|p| track_changes(&p.sentences, &sentences))
            .unwrap_or_default();
        Ok(self.plans.add_version(
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
        &self,
        section_id: &str,
        version: u32,
        action: ReviewAction,
        actor: &str,
        note: &str,
    ) -> Result<Review> {
        let result = self
            .plans
            .review(section_id, version, action, actor, note)
            .map_err(WorkspaceError::from);
        let name = match action {
            ReviewAction::Accept => "accept",
            ReviewAction::Reject => "reject",
        };
        self.record_result(
            actor,
            name,
            section_id,
            json!({"version": version, "note": note}),
            result,
        )
    }

    pub fn comment(&self, section_id: &str, actor: &str, text: &str) -> Result<Comment> {
        let result = self
            .plans
            .add_comment(section_id, actor, text)
            .map_err(WorkspaceError::from);
        let detail = json!({"comment_id": result.as_ref().ok().map(|c| c.id)});
        self.record_result(actor, "comment", section_id, detail, result)
    }

    pub fn cited_source(
        &self,
        section_id: &str,
        version_n: Option<u32>,
        n: usize,
        sentence: Option<usize>,
    ) -> Result<CitedSource> {
        let section = self.section(section_id)?;
        let version_n = version_n.unwrap_or(section.current_version);
        let version = self.version(&section, version_n)?;
        let record = self
            .draft_record(&version)?
            .ok_or_else(|| WorkspaceError::NotFound(format!("sources of version {version_n}")))?;
        let source = record
            .sources
            .iter()
            .find(|s| s.n == n)
            .cloned()
            .ok_or_else(|| {
                WorkspaceError::NotFound(format!(
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
            return Err(WorkspaceError::NotFound(format!(
                "sentence {i} citing source [{n}]"
            )));
        }
        let spans = citing
            .iter()
            .filter(|(i, _)| sentence.is_none_or(|s| s == *i))
            .flat_map(|(_, s)| s.cited_spans.iter().filter(|e| e.n == n))
            .map(|e| (e.char_start, e.char_end))
            .collect();
        let stored = self
            .drafter
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

    /// Every plan, with its section counts as `clearance` may see them: a section drafted
    /// from passages above it is not counted (a count would say it exists).
    pub fn plans_for(&self, clearance: &Clearance) -> Result<Vec<Plan>> {
        let mut plans = self.plans.plans()?;
        for plan in &mut plans {
            let visible = self.visible_sections(&plan.id, clearance)?;
            plan.section_count = visible.len();
            plan.accepted_count = visible
                .iter()
                .filter(|s| s.accepted_version.is_some())
                .count();
        }
        Ok(plans)
    }

    /// What a version of a section must be marked: the highest marking of every passage the
    /// model was given for it (cited or not) and of any banner or portion mark its text
    /// carries, raised by an officer if they raised it, or an audited override for exactly
    /// this version.
    pub fn section_marking(
        &self,
        section: &Section,
        version: Option<&Version>,
    ) -> Result<SectionMarking> {
        let scheme = &self.drafter.retriever.indexes().scheme;
        let mut found: Vec<(Marking, String)> = Vec::new();
        if let Some(v) = version {
            let sources = self.sources_of(v)?;
            for s in &sources {
                let marking = Marking::parse_banner(&s.hit.marking);
                found.push((
                    marking.clone(),
                    format!("source [{}] {}: {}", s.n, s.label(), marking.banner()),
                ));
            }
            for item in doctrina_ingest::markings::scan(&v.text, scheme).items {
                found.push((item.marking.clone(), format!("text: {}", item.describe())));
            }
        }
        let derived = scheme.highest(found.iter().map(|(m, _)| m));
        let raised = section.raised_marking.as_deref().map(Marking::parse_banner);
        let overridden = section
            .marking_override
            .clone()
            .filter(|o| version.is_some_and(|v| v.n == o.version));
        let effective = match &overridden {
            Some(o) => Marking::parse_banner(&o.marking),
            None => scheme.highest(std::iter::once(&derived).chain(raised.as_ref())),
        };
        // The basis lists what set the level: the highest entries first.
        let rank = |m: &Marking| scheme.rank(&m.level).unwrap_or(u32::MAX);
        found.sort_by_key(|(m, _)| std::cmp::Reverse(rank(m)));
        let mut basis: Vec<String> = found.into_iter().map(|(_, b)| b).collect();
        if let Some(r) = &raised {
            basis.insert(0, format!("raised by an officer to {}", r.banner()));
        }
        if let Some(o) = &overridden {
            basis.insert(
                0,
                format!(
                    "overridden to {} by {} at {} (sources require {}): {}",
                    o.marking, o.by, o.at, o.derived, o.reason
                ),
            );
        }
        Ok(SectionMarking {
            derived,
            raised,
            overridden,
            effective,
            basis,
        })
    }

    /// Marks a section: raising is always allowed; marking it below what its sources and
    /// text require needs `override_reason`, applies to the current version only, and is
    /// audited as `marking-override`. Either way audited.
    pub fn set_marking(
        &self,
        section_id: &str,
        written: &str,
        override_reason: Option<&str>,
        actor: &str,
    ) -> Result<SectionMarking> {
        let result = (|| {
            let section = self.section(section_id)?;
            let scheme = &self.drafter.retriever.indexes().scheme;
            let wanted = Marking::parse_banner(written.trim());
            if scheme.rank(&wanted.level).is_none() {
                return Err(WorkspaceError::Invalid(format!(
                    "unknown marking level '{}' (known: {})",
                    wanted.level,
                    scheme.levels.join(", ")
                )));
            }
            let wanted = Marking {
                level: scheme
                    .canonical(&wanted.level)
                    .unwrap_or(&wanted.level)
                    .to_string(),
                caveats: wanted.caveats,
            };
            let version = match section.current_version {
                0 => None,
                n => Some(self.version(&section, n)?),
            };
            let current = self.section_marking(&section, version.as_ref())?;
            let floor =
                scheme.highest(std::iter::once(&current.derived).chain(current.raised.as_ref()));
            let raises = scheme.highest([&wanted, &floor]) == wanted;
            if raises {
                self.plans
                    .set_raised_marking(section_id, &wanted.banner())?;
            } else {
                let Some(reason) = override_reason.map(str::trim).filter(|r| !r.is_empty()) else {
                    return Err(WorkspaceError::Conflict(format!(
                        "{} is below what this section's sources and text require ({});                          marking it lower needs an override with a reason, which is audited",
                        wanted.banner(),
                        floor.banner()
                    )));
                };
                let Some(v) = &version else {
                    return Err(WorkspaceError::Invalid(
                        "there is no version to override the marking of".into(),
                    ));
                };
                self.plans.set_marking_override(
                    section_id,
                    &MarkingOverride {
                        version: v.n,
                        marking: wanted.banner(),
                        derived: floor.banner(),
                        reason: reason.to_string(),
                        by: actor.to_string(),
                        at: now(),
                    },
                )?;
            }
            let section = self.section(section_id)?;
            self.section_marking(&section, version.as_ref())
        })();
        let action = if override_reason.is_some_and(|r| !r.trim().is_empty()) {
            "marking-override"
        } else {
            "raise-marking"
        };
        let detail = json!({
            "requested": written,
            "reason": override_reason,
            "effective": result.as_ref().ok().map(|m| m.effective.banner()),
            "derived": result.as_ref().ok().map(|m| m.derived.banner()),
        });
        self.record_result(actor, action, section_id, detail, result)
    }

    /// The plan as one document with a plan-wide reference list and marking banner.
    pub fn export_plan(
        &self,
        plan_id: &str,
        actor: &str,
        clearance: &Clearance,
        format: &str,
    ) -> Result<Export> {
        let result = self.build_export(plan_id, clearance);
        let detail = match &result {
            Ok(e) => {
                json!({"format": format, "banner": e.banner, "references": e.references.len()})
            }
            Err(_) => json!({"format": format}),
        };
        self.record_result(actor, "export", plan_id, detail, result)
    }

    /// Only the sections the person may see are exported.
    fn build_export(&self, plan_id: &str, clearance: &Clearance) -> Result<Export> {
        let plan = self.plan(plan_id)?;
        let sections = self.visible_sections(plan_id, clearance)?;
        let mut accepted: Vec<(Option<Version>, Vec<Source>, Marking)> = Vec::new();
        for s in &sections {
            match s.accepted_version {
                Some(n) => {
                    let v = self.version(s, n)?;
                    let sources = self.sources_of(&v)?;
                    let marking = self.section_marking(s, Some(&v))?.effective;
                    accepted.push((Some(v), sources, marking));
                }
                None => accepted.push((None, Vec::new(), Marking::default())),
            }
        }
        let inputs: Vec<SectionInput<'_>> = sections
            .iter()
            .zip(&accepted)
            .map(|(section, (v, sources, marking))| SectionInput {
                section,
                accepted: v.as_ref(),
                sources,
                marking: marking.clone(),
            })
            .collect();
        let reviewers = |s: &Section| -> Option<String> {
            let n = s.accepted_version?;
            self.plans
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
            &self.drafter.retriever.indexes().scheme,
        ))
    }
}

/// A section version's marking and why (see [`Workspace::section_marking`]).
#[derive(Debug, Clone, Serialize)]
pub struct SectionMarking {
    /// What the passages given to the model and the text's own marks require.
    pub derived: Marking,
    /// What an officer raised it to.
    pub raised: Option<Marking>,
    /// An audited override below `derived`, when it is for this version.
    pub overridden: Option<MarkingOverride>,
    /// What the section is marked.
    pub effective: Marking,
    /// One line per source and text mark, highest first, after any raise or override.
    pub basis: Vec<String>,
}

/// The time now, as the stores write it (UTC, RFC 3339).
fn now() -> String {
    doctrina_types::utc_timestamp(std::time::SystemTime::now(), false)
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

/// What a finished draft produced: the stored version, and the model's error when the
/// output broke off (the partial text is still stored as the version).
#[derive(Debug, Serialize)]
pub struct DraftOutcome {
    pub version: Version,
    pub error: Option<String>,
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
