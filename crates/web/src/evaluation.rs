//! Evaluation runs in the web app: the run store (`<data-dir>/evals.sqlite`, see
//! [`doctrina_eval::runs`]), starting runs in the background, and who may see a run.
//!
//! Runs execute one at a time (a semaphore; a draft run with the language model can take
//! minutes and both kinds are CPU work on two cores) on blocking threads, under the
//! clearance of the evaluator who started them: retrieval and every draft's retrieval carry
//! `PassageFilter::clearance`. A run may only be read by someone whose clearance permits the
//! marking of every passage it holds; until it is done, by someone whose clearance covers
//! the one it runs under. Anyone else gets a 404, as for a missing run.

use std::sync::Arc;

use doctrina_eval::runs::{Run, RunKind, RunResult, RunSpec, RunStore};
use doctrina_types::{Marking, PassageFilter};
use serde_json::json;

use crate::auth::Me;
use crate::{AppError, AppState};

/// The store and the slot runs take turns in.
pub struct Evaluations {
    pub store: Arc<RunStore>,
    slot: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Evaluations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluations").finish_non_exhaustive()
    }
}

impl From<doctrina_eval::EvalError> for AppError {
    fn from(e: doctrina_eval::EvalError) -> Self {
        use doctrina_eval::EvalError;
        match e {
            EvalError::Format { .. } => AppError::BadRequest(e.to_string()),
            EvalError::Retrieve(e) => AppError::Retrieve(e),
            EvalError::Draft(e) => AppError::Draft(e),
            EvalError::Io { .. } | EvalError::Sql(_) | EvalError::Json(_) | EvalError::Store(_) => {
                AppError::Evaluation(e.to_string())
            }
        }
    }
}

impl AppState {
    /// Adds evaluation runs kept in `store` (the evaluator's pages and API answer 404
    /// without it).
    pub fn with_evals(mut self, store: RunStore) -> Self {
        self.evals = Some(Arc::new(Evaluations {
            store: Arc::new(store),
            slot: Arc::new(tokio::sync::Semaphore::new(1)),
        }));
        self
    }

    pub fn evals(&self) -> Result<&Arc<Evaluations>, AppError> {
        self.evals.as_ref().ok_or_else(|| {
            AppError::NotFound(
                "evaluation runs (this server was started without a run store)".to_string(),
            )
        })
    }
}

/// May `me` read `run`? See the module docs.
pub fn visible(state: &AppState, me: &Me, run: &Run) -> bool {
    let permits = |marking: &Marking| state.retriever.permits(Some(&me.clearance), marking);
    if run.status == "done" {
        run.markings
            .iter()
            .all(|banner| permits(&Marking::parse_banner(banner)))
    } else {
        permits(&Marking {
            level: run.spec.clearance.level.clone(),
            caveats: run.spec.clearance.caveats.clone(),
        })
    }
}

/// The run `id` if it exists and `me` may read it; otherwise "not found".
pub fn load(state: &AppState, me: &Me, id: &str) -> Result<Run, AppError> {
    let not_found = || AppError::NotFound(format!("evaluation run {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    state
        .evals()?
        .store
        .get(id)?
        .filter(|run| visible(state, me, run))
        .ok_or_else(not_found)
}

/// The newest runs `me` may read, without their results.
pub fn list(state: &AppState, me: &Me) -> Result<Vec<Run>, AppError> {
    Ok(state
        .evals()?
        .store
        .list(1000)?
        .into_iter()
        .filter(|run| visible(state, me, run))
        .take(100)
        .collect())
}

/// Stores `spec` as a queued run by `actor` and starts it in the background; the outcome
/// is recorded in the audit log when it ends (`eval-run-finished`).
pub fn submit(state: &AppState, actor: &str, spec: RunSpec) -> Result<Run, AppError> {
    let evals = state.evals()?.clone();
    let run = evals.store.create(actor, &spec, spec.questions.len())?;
    let state = state.clone();
    let id = run.id;
    let actor = actor.to_string();
    tokio::spawn(async move {
        let _turn = evals.slot.clone().acquire_owned().await;
        let outcome = match evals.store.start(id) {
            Ok(()) => execute(&state, &evals.store, id, spec).await,
            Err(e) => Err(AppError::from(e)),
        };
        let (outcome_text, detail) = match &outcome {
            Ok(result) => match evals.store.finish(id, result) {
                Ok(()) => ("ok".to_string(), json!({"markings": result.markings()})),
                Err(e) => {
                    tracing::error!(run = id, error = %e, "evaluation run could not be stored");
                    let _ = evals.store.fail(id, "the results could not be stored");
                    ("error: store_failed".to_string(), json!({}))
                }
            },
            Err(e) => {
                let message = e.public_message();
                if e.status_and_code().0.is_server_error() {
                    tracing::warn!(run = id, error = %e, "evaluation run failed");
                }
                let _ = evals.store.fail(id, &message);
                (format!("error: {}", e.code()), json!({"error": message}))
            }
        };
        if let Err(e) = state.record(
            &actor,
            "eval-run-finished",
            &format!("run {id}"),
            &outcome_text,
            detail,
        ) {
            tracing::error!(run = id, error = %e, "evaluation run outcome not audited");
        }
    });
    Ok(run)
}

async fn execute(
    state: &AppState,
    store: &Arc<RunStore>,
    id: i64,
    spec: RunSpec,
) -> Result<RunResult, AppError> {
    let filter = PassageFilter {
        clearance: Some(spec.clearance.clone()),
        ..PassageFilter::default()
    };
    let progress_store = store.clone();
    let progress = move |done: usize, total: usize| {
        if let Err(e) = progress_store.progress(id, done, total) {
            tracing::warn!(run = id, error = %e, "evaluation progress not stored");
        }
    };
    match spec.kind {
        RunKind::Retrieval => {
            let retriever = state.retriever.clone();
            let result = tokio::task::spawn_blocking(move || {
                doctrina_eval::runs::run_retrieval(
                    &retriever,
                    &spec.questions,
                    &spec.modes,
                    spec.k,
                    &filter,
                    &progress,
                )
            })
            .await??;
            Ok(RunResult::Retrieval(result))
        }
        RunKind::Drafts => {
            let drafter = state.drafter.clone();
            let handle = tokio::runtime::Handle::current();
            let result = tokio::task::spawn_blocking(move || {
                handle.block_on(doctrina_eval::runs::run_drafts(
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
            .await??;
            Ok(RunResult::Drafts(result))
        }
    }
}

/// The section template draft runs use (a direct answer to a doctrine question).
pub const DEFAULT_SECTION: &str = "doctrine-answer";
/// Sources given per draft in a draft run.
pub const DEFAULT_SOURCES: usize = 6;
