//! Evaluation runs as a service: the run store, starting runs in the background, and who may
//! see a run.
//!
//! Runs execute one at a time (a semaphore; a draft run with the language model can take
//! minutes and both kinds are CPU work on two cores) on blocking threads, under the
//! clearance of the evaluator who started them: retrieval and every draft's retrieval carry
//! `PassageFilter::clearance`. A finished run may only be read by someone whose clearance
//! permits the marking of every passage it holds, cited or merely given to the model; an
//! unfinished one by someone whose clearance covers the one it runs under. Anyone else is
//! told it does not exist, as for a missing run.

use std::sync::Arc;

use doctrina_audit::AuditLog;
use doctrina_draft::Drafter;
use doctrina_types::{Clearance, Faulted, Marking, PassageFilter};
use serde_json::json;

use crate::EvalError;
use crate::runs::{Run, RunKind, RunResult, RunSpec, RunStatus, RunStore};

/// The section template draft runs use (a direct answer to a doctrine question).
pub const DEFAULT_SECTION: &str = "doctrine-answer";
/// Sources given per draft in a draft run.
pub const DEFAULT_SOURCES: usize = 6;

/// The run store, the slot runs take turns in, and what runs use.
pub struct Evaluations {
    pub store: Arc<RunStore>,
    slot: Arc<tokio::sync::Semaphore>,
    drafter: Arc<Drafter>,
    audit: Arc<AuditLog>,
}

impl std::fmt::Debug for Evaluations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluations").finish_non_exhaustive()
    }
}

impl Evaluations {
    /// Wraps `store`; draft runs stored before every given passage's marking was recorded
    /// get it from their draft records first.
    pub fn new(
        store: RunStore,
        drafter: Arc<Drafter>,
        audit: Arc<AuditLog>,
    ) -> Result<Self, EvalError> {
        let changed = store.backfill_given_markings(|draft_id| {
            let record = drafter.store.get(draft_id).ok()??;
            Some(
                record
                    .sources
                    .iter()
                    .map(|s| s.hit.marking.clone())
                    .collect(),
            )
        })?;
        if changed > 0 {
            tracing::info!(
                runs = changed,
                "recorded the markings of every passage given to older draft runs"
            );
        }
        Ok(Self {
            store: Arc::new(store),
            slot: Arc::new(tokio::sync::Semaphore::new(1)),
            drafter,
            audit,
        })
    }

    fn permits(&self, clearance: &Clearance, marking: &Marking) -> bool {
        self.drafter.retriever.permits(Some(clearance), marking)
    }

    /// May someone holding `clearance` read `run`? See the module docs.
    pub fn visible(&self, clearance: &Clearance, run: &Run) -> bool {
        if run.status == RunStatus::Done {
            run.markings
                .iter()
                .all(|banner| self.permits(clearance, &Marking::parse_banner(banner)))
        } else {
            self.permits(
                clearance,
                &Marking {
                    level: run.spec.clearance.level.clone(),
                    caveats: run.spec.clearance.caveats.clone(),
                },
            )
        }
    }

    /// The run `id` if it exists and may be read; otherwise "not found".
    pub fn load(&self, clearance: &Clearance, id: &str) -> Result<Run, EvalError> {
        let not_found = || EvalError::NotFound(format!("evaluation run {id}"));
        let id: i64 = id.parse().map_err(|_| not_found())?;
        self.store
            .get(id)?
            .filter(|run| self.visible(clearance, run))
            .ok_or_else(not_found)
    }

    /// The newest runs that may be read, without their results.
    pub fn list(&self, clearance: &Clearance) -> Result<Vec<Run>, EvalError> {
        Ok(self
            .store
            .list(1000)?
            .into_iter()
            .filter(|run| self.visible(clearance, run))
            .take(100)
            .collect())
    }

    /// Stores `spec` as a queued run by `actor` and starts it in the background (on the
    /// current tokio runtime); the outcome is recorded in the audit log when it ends
    /// (`eval-run-finished`).
    pub fn submit(self: &Arc<Self>, actor: &str, spec: RunSpec) -> Result<Run, EvalError> {
        let run = self.store.create(actor, &spec, spec.questions.len())?;
        let this = self.clone();
        let id = run.id;
        let actor = actor.to_string();
        tokio::spawn(async move {
            let _turn = this.slot.clone().acquire_owned().await;
            let outcome = match this.store.start(id) {
                Ok(()) => this.execute(id, spec).await,
                Err(e) => Err(e),
            };
            let (outcome_text, detail) = match &outcome {
                Ok(result) => match this.store.finish(id, result) {
                    Ok(()) => ("ok".to_string(), json!({"markings": result.markings()})),
                    Err(e) => {
                        tracing::error!(run = id, error = %e, "evaluation run could not be stored");
                        let _ = this.store.fail(id, "the results could not be stored");
                        ("error: store_failed".to_string(), json!({}))
                    }
                },
                Err(e) => {
                    let message = e.public_message();
                    if e.fault().is_server_fault() {
                        tracing::warn!(run = id, error = %e, "evaluation run failed");
                    }
                    let _ = this.store.fail(id, &message);
                    (format!("error: {}", e.code()), json!({"error": message}))
                }
            };
            let event = doctrina_audit::Event::new(
                &actor,
                "eval-run-finished",
                &format!("run {id}"),
                &outcome_text,
                detail,
            );
            if let Err(e) = this.audit.append(&event) {
                tracing::error!(run = id, error = %e, "evaluation run outcome not audited");
            }
        });
        Ok(run)
    }

    async fn execute(&self, id: i64, spec: RunSpec) -> Result<RunResult, EvalError> {
        let filter = PassageFilter {
            clearance: Some(spec.clearance.clone()),
            ..PassageFilter::default()
        };
        let progress_store = self.store.clone();
        let progress = move |done: usize, total: usize| {
            if let Err(e) = progress_store.progress(id, done, total) {
                tracing::warn!(run = id, error = %e, "evaluation progress not stored");
            }
        };
        let task_failed = |e: tokio::task::JoinError| EvalError::Store(format!("run task: {e}"));
        match spec.kind {
            RunKind::Retrieval => {
                let retriever = self.drafter.retriever.clone();
                let result = tokio::task::spawn_blocking(move || {
                    crate::runs::run_retrieval(
                        &retriever,
                        &spec.questions,
                        &spec.modes,
                        spec.k,
                        &filter,
                        &progress,
                    )
                })
                .await
                .map_err(task_failed)??;
                Ok(RunResult::Retrieval(result))
            }
            RunKind::Drafts => {
                let drafter = self.drafter.clone();
                let handle = tokio::runtime::Handle::current();
                let result = tokio::task::spawn_blocking(move || {
                    handle.block_on(crate::runs::run_drafts(
                        &drafter,
                        &spec.questions,
                        spec.section.as_deref().unwrap_or(DEFAULT_SECTION),
                        spec.draft_mode
                            .unwrap_or(doctrina_draft::DraftMode::Extractive),
                        spec.sources.unwrap_or(DEFAULT_SOURCES),
                        &filter,
                        &progress,
                    ))
                })
                .await
                .map_err(task_failed)??;
                Ok(RunResult::Drafts(result))
            }
        }
    }
}
