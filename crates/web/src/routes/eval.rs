//! The evaluator's pages and API: start retrieval and draft runs (bundled or uploaded
//! question sets), follow them, read their results with inline SVG plots, drill down per
//! question, compare two runs, export them (JSON, CSV), and score each cited passage by
//! hand, with agreement between evaluators (Cohen's kappa) and with the automatic labels.
//!
//! Every route is for evaluators only: runs hold the evaluators' judgements and question
//! sets, and officers read the same passages through search and drafting. A run shows only
//! to those whose clearance permits every passage in it ([`doctrina_eval::service::Evaluations::visible`]);
//! anyone else gets a 404 as for a missing run. Run starts, scoring and exports are audited.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use doctrina_draft::DraftMode;
use doctrina_eval::Question;
use doctrina_eval::runs::{
    self, CitationLabel, DraftRun, Judgement, RetrievalRun, Run, RunAgreement, RunKind, RunResult,
    RunSpec,
};
use doctrina_types::SearchMode;
use serde::Deserialize;
use serde_json::json;

use super::{ApiJson, ApiQuery};
use crate::auth::{EVALUATOR, Me, RouteTable};
use crate::chart::BarChart;
use crate::page::{self, PageResult};
use crate::{AppError, AppState};
use doctrina_eval::compare;
use doctrina_eval::service::{DEFAULT_SECTION, DEFAULT_SOURCES};

/// Most questions one run may take.
const MAX_QUESTIONS: usize = 5000;
/// Default number of questions a draft run answers.
const DEFAULT_DRAFT_LIMIT: usize = 5;
/// Largest uploaded or pasted question set read from a form.
const MAX_FIELD_BYTES: usize = 1024 * 1024;

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/eval", EVALUATOR, eval_page)
        .post("/eval/runs", EVALUATOR, start_page)
        .get("/eval/runs/{id}", EVALUATOR, run_page)
        .get("/eval/runs/{id}/score", EVALUATOR, score_page)
        .post("/eval/runs/{id}/score", EVALUATOR, score_form)
        .get("/eval/compare", EVALUATOR, compare_page)
        .get("/api/eval/runs", EVALUATOR, runs_api)
        .post("/api/eval/runs", EVALUATOR, start_api)
        .get("/api/eval/runs/{id}", EVALUATOR, run_api)
        .post("/api/eval/runs/{id}/judgements", EVALUATOR, judgements_api)
}

// --- Starting runs ------------------------------------------------------------------------

/// `POST /api/eval/runs` (and the start forms, read into the same shape).
#[derive(Debug, Deserialize, Default)]
pub struct StartRun {
    /// `retrieval` or `drafts`.
    kind: String,
    #[serde(default)]
    label: String,
    /// A question set in the JSONL format; the bundled set when neither this nor
    /// `questions` is given.
    #[serde(default)]
    questions_jsonl: Option<String>,
    #[serde(default)]
    questions: Option<Vec<Question>>,
    /// Retrieval: modes (default bm25, dense, hybrid) and depth (default 10).
    #[serde(default)]
    modes: Option<Vec<String>>,
    #[serde(default)]
    k: Option<usize>,
    /// Drafts: `extractive` (default) or `llm`, and how many questions (default 5).
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_request(message.into())
}

/// Checks a start request and turns it into a run's spec under `me`'s clearance.
fn spec_for(state: &AppState, me: &Me, input: StartRun) -> Result<RunSpec, AppError> {
    let kind = match input.kind.trim() {
        "retrieval" => RunKind::Retrieval,
        "drafts" | "draft" => RunKind::Drafts,
        other => {
            return Err(bad(format!(
                "unknown run kind '{other}' (expected retrieval or drafts)"
            )));
        }
    };
    let (question_set, mut questions) = match (input.questions, input.questions_jsonl) {
        (Some(list), _) => {
            let text = list
                .iter()
                .map(|q| serde_json::to_string(q).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            (
                "uploaded",
                runs::parse_questions(&text, "the question set")?,
            )
        }
        (None, Some(text)) if !text.trim().is_empty() => (
            "uploaded",
            runs::parse_questions(&text, "the question set")?,
        ),
        _ => (
            "bundled",
            runs::parse_questions(runs::BUNDLED_QUESTIONS, "the bundled question set")?,
        ),
    };
    if questions.len() > MAX_QUESTIONS {
        return Err(bad(format!("at most {MAX_QUESTIONS} questions per run")));
    }
    let mut spec = RunSpec {
        kind,
        label: input.label.trim().chars().take(200).collect(),
        question_set: question_set.to_string(),
        questions: Vec::new(),
        modes: Vec::new(),
        k: 10,
        draft_mode: None,
        section: None,
        sources: None,
        clearance: me.clearance.clone(),
    };
    match kind {
        RunKind::Retrieval => {
            let names = input
                .modes
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| vec!["bm25".into(), "dense".into(), "hybrid".into()]);
            for name in names {
                let mode: SearchMode = name.parse().map_err(bad)?;
                if !spec.modes.contains(&mode) {
                    spec.modes.push(mode);
                }
            }
            let k = input.k.unwrap_or(10);
            if !(1..=100).contains(&k) {
                return Err(bad("k must be between 1 and 100"));
            }
            spec.k = k.max(10);
        }
        RunKind::Drafts => {
            let mode: DraftMode = input
                .mode
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or("extractive")
                .parse()
                .map_err(bad)?;
            if mode == DraftMode::Llm && state.drafter.chat.is_none() {
                return Err(doctrina_draft::DraftError::NoServer.into());
            }
            let limit = input.limit.unwrap_or(DEFAULT_DRAFT_LIMIT);
            if !(1..=500).contains(&limit) {
                return Err(bad("limit must be between 1 and 500"));
            }
            questions.truncate(limit);
            spec.draft_mode = Some(mode);
            spec.section = Some(DEFAULT_SECTION.to_string());
            spec.sources = Some(DEFAULT_SOURCES);
        }
    }
    spec.questions = questions;
    Ok(spec)
}

/// Checks, stores and starts a run; audited as `eval-run` either way.
fn start(state: &AppState, me: &Me, input: StartRun) -> Result<Run, AppError> {
    let kind = input.kind.clone();
    let result =
        spec_for(state, me, input).and_then(|spec| Ok(state.evals()?.submit(&me.name, spec)?));
    let (target, detail) = match &result {
        Ok(run) => (
            format!("run {}", run.id),
            json!({
                "kind": run.spec.kind.as_str(),
                "question_set": run.spec.question_set,
                "questions": run.spec.questions.len(),
                "modes": run.spec.modes.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "k": run.spec.k,
                "draft_mode": run.spec.draft_mode,
            }),
        ),
        Err(e) => (
            String::new(),
            json!({"kind": kind, "error": e.public_message()}),
        ),
    };
    state.record_result(&me.name, "eval-run", &target, detail, result)
}

/// `POST /api/eval/runs`: 202 with the queued run; follow it at `GET /api/eval/runs/{id}`.
async fn start_api(
    State(state): State<AppState>,
    me: Me,
    ApiJson(input): ApiJson<StartRun>,
) -> Result<Response, AppError> {
    let run = start(&state, &me, input)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/eval/runs/{}", run.id))],
        Json(run),
    )
        .into_response())
}

/// Reads the start form (multipart, so a question file can come with it).
async fn read_start_form(mut multipart: Multipart) -> Result<StartRun, AppError> {
    let mut input = StartRun::default();
    let mut modes = Vec::new();
    let mut pasted = String::new();
    let mut file = String::new();
    let mut source = String::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| bad(format!("malformed form: {}", e.body_text())))?;
        if bytes.len() > MAX_FIELD_BYTES {
            return Err(AppError::too_large(format!(
                "the '{name}' field is larger than {MAX_FIELD_BYTES} bytes"
            )));
        }
        let value = String::from_utf8(bytes.to_vec())
            .map_err(|_| bad(format!("the '{name}' field is not UTF-8 text")))?;
        let number = |v: &str| -> Result<Option<usize>, AppError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| bad(format!("'{name}' must be a whole number")))
        };
        match name.as_str() {
            "kind" => input.kind = value,
            "label" => input.label = value,
            "questions_source" => source = value,
            "questions_jsonl" => pasted = value,
            "questions_file" => file = value,
            "modes" => modes.push(value),
            "k" => input.k = number(&value)?,
            "mode" => input.mode = Some(value),
            "limit" => input.limit = number(&value)?,
            _ => {}
        }
    }
    if !modes.is_empty() {
        input.modes = Some(modes);
    }
    input.questions_jsonl = match source.as_str() {
        "bundled" => None,
        _ if !file.trim().is_empty() => Some(file),
        _ if !pasted.trim().is_empty() => Some(pasted),
        "uploaded" => return Err(bad("paste a question set or choose a file")),
        _ => None,
    };
    Ok(input)
}

async fn start_page(
    State(state): State<AppState>,
    me: Me,
    multipart: Result<Multipart, MultipartRejection>,
) -> PageResult {
    let result = match multipart {
        Ok(m) => match read_start_form(m).await {
            Ok(input) => start(&state, &me, input),
            Err(e) => Err(e),
        },
        Err(e) => Err(bad(format!("expected a form: {}", e.body_text()))),
    };
    Ok(match result {
        Ok(run) => page::see_other(&format!("/eval/runs/{}", run.id), None),
        Err(e) if e.status().is_client_error() => page::see_other("/eval", Some(&e)),
        Err(e) => return Err(e.into()),
    })
}

// --- Lists and the start page -------------------------------------------------------------

/// A run in a list.
struct RunRow {
    id: i64,
    title: String,
    kind: &'static str,
    status: String,
    actor: String,
    created_at: String,
    questions: usize,
    settings: String,
    headline: String,
}

fn title(run: &Run) -> String {
    if run.spec.label.is_empty() {
        format!("Run {}", run.id)
    } else {
        run.spec.label.clone()
    }
}

fn settings(run: &Run) -> String {
    match run.spec.kind {
        RunKind::Retrieval => format!(
            "{} · k {}",
            run.spec
                .modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            run.spec.k
        ),
        RunKind::Drafts => format!(
            "{} · {} · {} sources",
            match run.spec.draft_mode {
                Some(DraftMode::Llm) => "language model",
                _ => "extractive",
            },
            run.spec.section.as_deref().unwrap_or(DEFAULT_SECTION),
            run.spec.sources.unwrap_or(DEFAULT_SOURCES)
        ),
    }
}

fn headline(run: &Run) -> String {
    match &run.summary {
        Some(runs::RunSummary::Retrieval { modes }) => modes
            .iter()
            .map(|(mode, m)| format!("{mode} R@5 {:.3}", m.recall_5))
            .collect::<Vec<_>>()
            .join(" · "),
        Some(runs::RunSummary::Drafts(t)) => format!(
            "recall {:.3} · precision {:.3} · validity {:.3}",
            t.citation_recall, t.citation_precision, t.citation_validity
        ),
        None => String::new(),
    }
}

fn row(run: &Run) -> RunRow {
    RunRow {
        id: run.id,
        title: title(run),
        kind: run.spec.kind.as_str(),
        status: run.status.to_string(),
        actor: run.actor.clone(),
        created_at: run.created_at.clone(),
        questions: run.spec.questions.len(),
        settings: settings(run),
        headline: headline(run),
    }
}

#[derive(Template)]
#[template(path = "eval.html")]
struct EvalPage {
    me: Me,
    runs: Vec<RunRow>,
    bundled_questions: usize,
    llm_available: bool,
    error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ErrorParam {
    #[serde(default)]
    error: Option<String>,
}

/// `/eval`: start a run, the runs so far, compare two.
async fn eval_page(
    State(state): State<AppState>,
    me: Me,
    ApiQuery(q): ApiQuery<ErrorParam>,
) -> PageResult {
    let (state2, me2) = (state.clone(), me.clone());
    let runs = tokio::task::spawn_blocking(move || -> Result<_, AppError> {
        Ok(state2.evals()?.list(&me2.clearance)?)
    })
    .await??;
    let bundled_questions = runs::parse_questions(runs::BUNDLED_QUESTIONS, "bundled")
        .map(|q| q.len())
        .unwrap_or(0);
    page::html(&EvalPage {
        me,
        runs: runs.iter().map(row).collect(),
        bundled_questions,
        llm_available: state.drafter.chat.is_some(),
        error: q.error,
    })
}

/// `GET /api/eval/runs`: the 100 newest runs this evaluator may read (no results).
async fn runs_api(
    State(state): State<AppState>,
    me: Me,
) -> Result<Json<serde_json::Value>, AppError> {
    let runs = tokio::task::spawn_blocking(move || -> Result<_, AppError> {
        Ok(state.evals()?.list(&me.clearance)?)
    })
    .await??;
    Ok(Json(json!({ "runs": runs })))
}

// --- A run's results ----------------------------------------------------------------------

fn f3(v: f64) -> String {
    format!("{v:.3}")
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

fn opt3(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), f3)
}

use doctrina_eval::export::{METRIC_TITLES as METRIC_NAMES, metric_values};

/// Colours of the support labels (as on the section page).
fn label_colour(label: &str) -> &'static str {
    match label {
        "supported" | "supports" => "#3a8d5c",
        "weak" | "partly" => "#d9822b",
        "unsupported" | "does_not" => "#b03a2e",
        _ => "#6c7a89",
    }
}

use doctrina_eval::compare::SUPPORT_LABELS;

struct MetricRow {
    name: String,
    cells: Vec<String>,
}

struct HitView {
    rank: usize,
    reference: String,
    title: String,
    doc_id: String,
    marking: String,
    relevant: bool,
}

struct ModeView {
    mode: String,
    cells: Vec<String>,
    hits: Vec<HitView>,
}

struct RetrievalQuestionView {
    id: String,
    question: String,
    gold: String,
    modes: Vec<ModeView>,
}

struct HumanView {
    evaluator: String,
    label: &'static str,
    label_key: &'static str,
    comment: String,
}

struct CitationView {
    key: String,
    n: usize,
    reference: String,
    marking: String,
    doc_id: String,
    auto_label: &'static str,
    auto_key: &'static str,
    precise: bool,
    before: String,
    span: String,
    after: String,
    human: Vec<HumanView>,
    mine: Option<CitationLabel>,
    my_comment: String,
}

impl CitationView {
    fn is_mine(&self, label: &str) -> bool {
        self.mine.is_some_and(|l| l.as_str() == label)
    }
}

struct SentenceView {
    text: String,
    support: &'static str,
    recall: bool,
    invalid: String,
    citations: Vec<CitationView>,
}

struct AnswerView {
    id: String,
    question: String,
    error: Option<String>,
    draft_id: Option<String>,
    validity: String,
    recall: String,
    precision: String,
    sentences: Vec<SentenceView>,
}

struct AgreementRow {
    a: String,
    b: String,
    n: usize,
    observed: String,
    expected: String,
    kappa: String,
    note: String,
}

fn agreement_rows(pairs: &[doctrina_eval::agreement::PairAgreement]) -> Vec<AgreementRow> {
    pairs
        .iter()
        .map(|p| {
            let (observed, expected, kappa, note) = match p.agreement {
                None => (
                    "—".into(),
                    "—".into(),
                    "—".into(),
                    "no citation judged by both".to_string(),
                ),
                Some(k) => match k.kappa {
                    Some(kappa) => (f3(k.observed), f3(k.expected), f3(kappa), String::new()),
                    None => (
                        f3(k.observed),
                        f3(k.expected),
                        "undefined".into(),
                        "every judgement had the same label, so chance agreement is 1".into(),
                    ),
                },
            };
            AgreementRow {
                a: p.a.clone(),
                b: p.b.clone(),
                n: p.n,
                observed,
                expected,
                kappa,
                note,
            }
        })
        .collect()
}

fn reference(
    publication: &Option<String>,
    title: &str,
    paragraphs: &[String],
    pages: &[u32],
) -> String {
    let mut out = publication.clone().unwrap_or_else(|| title.to_string());
    if !paragraphs.is_empty() {
        out.push_str(&format!(" ¶ {}", paragraphs.join(", ")));
    }
    if !pages.is_empty() {
        let pages: Vec<String> = pages.iter().map(u32::to_string).collect();
        out.push_str(&format!(", p. {}", pages.join("–")));
    }
    out
}

/// A retrieval run's metric table, plot and drill-down.
type RetrievalViews = (Vec<MetricRow>, Vec<String>, Vec<RetrievalQuestionView>);

fn retrieval_views(r: &RetrievalRun) -> Result<RetrievalViews, AppError> {
    let table = r
        .modes
        .iter()
        .map(|(mode, m)| MetricRow {
            name: mode.clone(),
            cells: metric_values(m).iter().map(|v| f3(*v)).collect(),
        })
        .collect();
    let modes: Vec<String> = r.modes.keys().cloned().collect();
    let groups: Vec<String> = METRIC_NAMES.iter().map(|s| s.to_string()).collect();
    let values: Vec<Vec<f64>> = (0..METRIC_NAMES.len())
        .map(|i| {
            modes
                .iter()
                .map(|m| metric_values(&r.modes[m])[i])
                .collect()
        })
        .collect();
    let chart = BarChart::grouped(
        "chart-metrics",
        "Metric by mode",
        &groups,
        &modes,
        &values,
        1.0,
        f2,
    )
    .svg()?;
    let questions = r
        .per_question
        .iter()
        .map(|q| RetrievalQuestionView {
            id: q.id.clone(),
            question: q.question.clone(),
            gold: q.gold.join(", "),
            modes: q
                .modes
                .iter()
                .map(|(mode, result)| ModeView {
                    mode: mode.clone(),
                    cells: metric_values(&result.metrics)
                        .iter()
                        .map(|v| f3(*v))
                        .collect(),
                    hits: result
                        .hits
                        .iter()
                        .map(|h| HitView {
                            rank: h.rank,
                            reference: reference(&h.publication, &h.title, &h.paragraphs, &[]),
                            title: h.title.clone(),
                            doc_id: h.doc_id.clone(),
                            marking: h.marking.clone(),
                            relevant: h.relevant,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ok((table, vec![chart], questions))
}

fn label_key(label: CitationLabel) -> &'static str {
    label.as_str()
}

fn answer_views(d: &DraftRun, judgements: &[Judgement], me: &str) -> Vec<AnswerView> {
    let mut by_citation: BTreeMap<&str, Vec<&Judgement>> = BTreeMap::new();
    for j in judgements {
        by_citation.entry(j.citation.as_str()).or_default().push(j);
    }
    d.per_question
        .iter()
        .map(|a| AnswerView {
            id: a.id.clone(),
            question: a.question.clone(),
            error: a.error.clone(),
            draft_id: a.draft_id.clone(),
            validity: opt3(a.citation_validity),
            recall: f3(a.citation_recall),
            precision: opt3(a.citation_precision),
            sentences: a
                .sentences
                .iter()
                .map(|s| SentenceView {
                    text: s.text.clone(),
                    support: s.support.as_str(),
                    recall: s.recall,
                    invalid: s
                        .invalid
                        .iter()
                        .map(|n| format!("[{n}]"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    citations: s
                        .citations
                        .iter()
                        .map(|c| {
                            let (before, span, after) = c.passage.parts();
                            let human: Vec<&Judgement> =
                                by_citation.get(c.key.as_str()).cloned().unwrap_or_default();
                            let mine = human.iter().find(|j| j.evaluator == me);
                            CitationView {
                                key: c.key.clone(),
                                n: c.n,
                                reference: reference(
                                    &c.passage.publication,
                                    &c.passage.title,
                                    &c.passage.paragraphs,
                                    &c.passage.pages,
                                ),
                                marking: c.passage.marking.clone(),
                                doc_id: c.passage.doc_id.clone(),
                                auto_label: c.auto_label.describe(),
                                auto_key: label_key(c.auto_label),
                                precise: c.precise,
                                before,
                                span,
                                after,
                                mine: mine.map(|j| j.label),
                                my_comment: mine.map(|j| j.comment.clone()).unwrap_or_default(),
                                human: human
                                    .iter()
                                    .map(|j| HumanView {
                                        evaluator: j.evaluator.clone(),
                                        label: j.label.describe(),
                                        label_key: label_key(j.label),
                                        comment: j.comment.clone(),
                                    })
                                    .collect(),
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Everything the run page shows.
#[derive(Template)]
#[template(path = "eval_run.html")]
struct RunPage {
    me: Me,
    run: RunRow,
    finished: bool,
    done: usize,
    total: usize,
    error: Option<String>,
    question_set: String,
    clearance: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    metric_names: Vec<String>,
    metric_rows: Vec<MetricRow>,
    charts: Vec<String>,
    retrieval: Vec<RetrievalQuestionView>,
    is_drafts: bool,
    totals: Vec<(String, String)>,
    labels: Vec<(String, usize)>,
    answers: Vec<AnswerView>,
    agreement: Option<AgreementView>,
    others: Vec<RunRow>,
}

struct AgreementView {
    judged: usize,
    citations: usize,
    evaluators: String,
    pairs: Vec<AgreementRow>,
    with_automatic: Vec<AgreementRow>,
}

fn agreement_view(a: &RunAgreement) -> AgreementView {
    AgreementView {
        judged: a.judged,
        citations: a.citations,
        evaluators: a.evaluators.join(", "),
        pairs: agreement_rows(&a.pairs),
        with_automatic: agreement_rows(&a.with_automatic),
    }
}

struct Loaded {
    run: Run,
    judgements: Vec<Judgement>,
    others: Vec<Run>,
}

async fn load_run(state: &AppState, me: &Me, id: String, others: bool) -> Result<Loaded, AppError> {
    let (state, me) = (state.clone(), me.clone());
    tokio::task::spawn_blocking(move || -> Result<Loaded, AppError> {
        let run = state.evals()?.load(&me.clearance, &id)?;
        let judgements = match run.spec.kind {
            RunKind::Drafts => state.evals()?.store.judgements(run.id)?,
            RunKind::Retrieval => Vec::new(),
        };
        let others = if others {
            state
                .evals()?
                .list(&me.clearance)?
                .into_iter()
                .filter(|r| r.id != run.id && r.spec.kind == run.spec.kind && r.status == "done")
                .collect()
        } else {
            Vec::new()
        };
        Ok(Loaded {
            run,
            judgements,
            others,
        })
    })
    .await?
}

/// `/eval/runs/{id}`: status, metric table, plots, per-question drill-down, agreement.
async fn run_page(State(state): State<AppState>, me: Me, Path(id): Path<String>) -> PageResult {
    let Loaded {
        run,
        judgements,
        others,
    } = load_run(&state, &me, id, true).await?;
    let mut page = RunPage {
        me,
        run: row(&run),
        finished: run.finished(),
        done: run.done,
        total: run.total,
        error: run.error.clone(),
        question_set: run.spec.question_set.clone(),
        clearance: {
            let c = &run.spec.clearance;
            if c.caveats.is_empty() {
                c.level.clone()
            } else {
                format!("{} ({})", c.level, c.caveats.join(", "))
            }
        },
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        metric_names: METRIC_NAMES.iter().map(|s| s.to_string()).collect(),
        metric_rows: Vec::new(),
        charts: Vec::new(),
        retrieval: Vec::new(),
        is_drafts: run.spec.kind == RunKind::Drafts,
        totals: Vec::new(),
        labels: Vec::new(),
        answers: Vec::new(),
        agreement: None,
        others: others.iter().map(row).collect(),
    };
    match &run.result {
        Some(RunResult::Retrieval(r)) => {
            let (table, charts, questions) = retrieval_views(r)?;
            page.metric_rows = table;
            page.charts = charts;
            page.retrieval = questions;
        }
        Some(RunResult::Drafts(d)) => {
            let t = &d.totals;
            page.totals = vec![
                ("Questions".into(), t.questions.to_string()),
                ("Drafts failed".into(), t.failed.to_string()),
                ("Statements".into(), t.statements.to_string()),
                ("Citations".into(), t.citations.to_string()),
                ("Invalid citations".into(), t.invalid_citations.to_string()),
                ("Citation validity".into(), f3(t.citation_validity)),
                ("Citation recall (ALCE)".into(), f3(t.citation_recall)),
                ("Citation precision (ALCE)".into(), f3(t.citation_precision)),
            ];
            page.labels = SUPPORT_LABELS
                .iter()
                .map(|l| {
                    (
                        l.to_string(),
                        t.support_labels.get(*l).copied().unwrap_or(0),
                    )
                })
                .collect();
            let mode = match d.mode {
                DraftMode::Llm => "llm",
                DraftMode::Extractive => "extractive",
            };
            page.charts = vec![
                BarChart::grouped(
                    "chart-metrics",
                    "Citation metrics by draft mode",
                    &[
                        "validity".to_string(),
                        "recall".to_string(),
                        "precision".to_string(),
                    ],
                    &[mode.to_string()],
                    &[
                        vec![t.citation_validity],
                        vec![t.citation_recall],
                        vec![t.citation_precision],
                    ],
                    1.0,
                    f2,
                )
                .svg()?,
                BarChart::simple(
                    "chart-labels",
                    "Support labels of the sentences",
                    &page
                        .labels
                        .iter()
                        .map(|(l, n)| (l.clone(), *n as f64, label_colour(l).to_string()))
                        .collect::<Vec<_>>(),
                )
                .svg()?,
            ];
            page.answers = answer_views(d, &judgements, &page.me.name);
            page.agreement = Some(agreement_view(&runs::run_agreement(d, &judgements)));
        }
        None => {}
    }
    page::html(&page)
}

// --- Export -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
pub struct FormatParam {
    #[serde(default)]
    format: String,
}

/// `GET /api/eval/runs/{id}` (`?format=json`, the default, or `csv`): the run with its full
/// results, the evaluators' judgements and their agreement; CSV has one row per question
/// and mode (retrieval) or per citation and judge (drafts: the automatic label, then each
/// evaluator's). Audited as an export.
async fn run_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FormatParam>,
) -> Result<Response, AppError> {
    let format = match q.format.as_str() {
        "" | "json" => "json",
        "csv" => "csv",
        other => {
            return Err(bad(format!(
                "unknown format {other:?} (expected json or csv)"
            )));
        }
    };
    let result = load_run(&state, &me, id.clone(), false).await;
    let result = result.and_then(|loaded| export(&loaded, format));
    let detail = json!({"format": format});
    let target = format!("run {id}");
    let (body, content_type) =
        state.record_result(&me.name, "eval-export", &target, detail, result)?;
    let mut response = ([(header::CONTENT_TYPE, content_type.to_string())], body).into_response();
    if format == "csv"
        && let Ok(v) = format!("attachment; filename=\"eval-run-{id}.csv\"").parse()
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn export(loaded: &Loaded, format: &str) -> Result<(Vec<u8>, &'static str), AppError> {
    let run = &loaded.run;
    if format == "csv" {
        let bytes = match &run.result {
            Some(RunResult::Retrieval(r)) => doctrina_eval::export::retrieval_csv(r)?,
            Some(RunResult::Drafts(d)) => doctrina_eval::export::drafts_csv(d, &loaded.judgements)?,
            None => {
                return Err(AppError::conflict(format!(
                    "run {} is {}; it has no results to export yet",
                    run.id, run.status
                )));
            }
        };
        return Ok((bytes, "text/csv; charset=utf-8"));
    }
    let agreement = match &run.result {
        Some(RunResult::Drafts(d)) => Some(runs::run_agreement(d, &loaded.judgements)),
        _ => None,
    };
    let body = json!({
        "run": run,
        "judgements": loaded.judgements,
        "agreement": agreement,
    });
    Ok((
        serde_json::to_vec(&body).map_err(|e| AppError::internal(e.to_string()))?,
        "application/json",
    ))
}

// --- Human scoring ------------------------------------------------------------------------

/// One judgement sent to `POST /api/eval/runs/{id}/judgements`.
#[derive(Debug, Deserialize)]
pub struct JudgementInput {
    citation: String,
    label: CitationLabel,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
pub struct JudgementsBody {
    judgements: Vec<JudgementInput>,
}

/// Records `me`'s judgements of citations of run `id` (re-scoring replaces their own);
/// audited as `eval-score`. Returns how many were saved.
async fn score(
    state: &AppState,
    me: &Me,
    id: &str,
    input: Vec<JudgementInput>,
) -> Result<usize, AppError> {
    let (state2, me2, id2) = (state.clone(), me.clone(), id.to_string());
    let count = input.len();
    let result = tokio::task::spawn_blocking(move || -> Result<usize, AppError> {
        let run = state2.evals()?.load(&me2.clearance, &id2)?;
        let Some(RunResult::Drafts(d)) = &run.result else {
            return Err(AppError::conflict(format!(
                "run {} is not a finished draft run; only its citations can be scored",
                run.id
            )));
        };
        let keys: BTreeSet<&str> = d.citations().map(|(_, _, c)| c.key.as_str()).collect();
        if let Some(unknown) = input.iter().find(|j| !keys.contains(j.citation.as_str())) {
            return Err(bad(format!(
                "run {} has no citation '{}'",
                run.id, unknown.citation
            )));
        }
        if let Some(long) = input.iter().find(|j| j.comment.chars().count() > 2000) {
            return Err(bad(format!(
                "the comment on citation '{}' is longer than 2000 characters",
                long.citation
            )));
        }
        let store = &state2.evals()?.store;
        for j in &input {
            store.judge(run.id, &me2.name, &j.citation, j.label, j.comment.trim())?;
        }
        Ok(input.len())
    })
    .await
    .map_err(AppError::from)
    .and_then(|r| r);
    state.record_result(
        &me.name,
        "eval-score",
        &format!("run {id}"),
        json!({"judgements": count}),
        result,
    )
}

/// `POST /api/eval/runs/{id}/judgements` `{"judgements":[{"citation","label","comment"}]}`
/// with `label` one of `supports`, `partly`, `does_not`.
async fn judgements_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<JudgementsBody>,
) -> Result<Json<serde_json::Value>, AppError> {
    let saved = score(&state, &me, &id, body.judgements).await?;
    let loaded = load_run(&state, &me, id, false).await?;
    let agreement = match &loaded.run.result {
        Some(RunResult::Drafts(d)) => Some(runs::run_agreement(d, &loaded.judgements)),
        _ => None,
    };
    Ok(Json(json!({"saved": saved, "agreement": agreement})))
}

#[derive(Template)]
#[template(path = "eval_score.html")]
struct ScorePage {
    me: Me,
    run: RunRow,
    answers: Vec<AnswerView>,
    labels: Vec<(&'static str, &'static str)>,
    mine: usize,
    citations: usize,
    error: Option<String>,
    saved: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ScoreParams {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    saved: Option<usize>,
}

/// `/eval/runs/{id}/score`: every answer sentence with its cited passages (the exact text
/// given to the drafter, the matched span marked) and a judgement per citation. The
/// automatic labels are not shown here, so they do not sway the person scoring.
async fn score_page(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ScoreParams>,
) -> PageResult {
    let Loaded {
        run, judgements, ..
    } = load_run(&state, &me, id, false).await?;
    let Some(RunResult::Drafts(d)) = &run.result else {
        return Err(AppError::conflict(format!(
            "run {} is not a finished draft run; only its citations can be scored",
            run.id
        ))
        .into());
    };
    let answers = answer_views(d, &judgements, &me.name);
    let citations = d.citations().count();
    let mine = judgements.iter().filter(|j| j.evaluator == me.name).count();
    page::html(&ScorePage {
        run: row(&run),
        answers,
        labels: CitationLabel::ALL
            .iter()
            .map(|l| (l.as_str(), l.describe()))
            .collect(),
        mine,
        citations,
        error: params.error,
        saved: params.saved,
        me,
    })
}

/// The scoring form: `label.<key>` = `supports|partly|does_not` (left empty: not judged)
/// and `comment.<key>` per citation.
async fn score_form(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> PageResult {
    let comments: BTreeMap<&str, &str> = fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("comment.").map(|key| (key, v.as_str())))
        .collect();
    let mut input = Vec::new();
    for (k, v) in &fields {
        let Some(key) = k.strip_prefix("label.") else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let Some(label) = CitationLabel::parse(v) else {
            let e = bad(format!("unknown judgement '{v}'"));
            return Ok(page::see_other(&format!("/eval/runs/{id}/score"), Some(&e)));
        };
        input.push(JudgementInput {
            citation: key.to_string(),
            label,
            comment: comments.get(key).copied().unwrap_or_default().to_string(),
        });
    }
    let back = format!("/eval/runs/{id}/score");
    match score(&state, &me, &id, input).await {
        Ok(saved) => Ok(page::see_other(&format!("{back}?saved={saved}"), None)),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => Ok(page::see_other(&back, Some(&e))),
        Err(e) => Err(e.into()),
    }
}

// --- Comparing two runs -------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
pub struct CompareParams {
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

/// One figure in both runs, formatted.
struct DiffCell {
    a: String,
    b: String,
    delta: String,
    /// `up`, `down` or `same`.
    direction: &'static str,
}

impl From<&compare::Diff> for DiffCell {
    fn from(d: &compare::Diff) -> Self {
        Self {
            a: opt3(d.a),
            b: opt3(d.b),
            delta: d
                .delta
                .map_or_else(|| "—".to_string(), |v| format!("{v:+.3}")),
            direction: d.direction.as_str(),
        }
    }
}

struct DiffRow {
    name: String,
    mode: String,
    cells: Vec<DiffCell>,
    changed: bool,
}

impl From<&compare::DiffRow> for DiffRow {
    fn from(r: &compare::DiffRow) -> Self {
        Self {
            name: r.name.clone(),
            mode: r.mode.clone(),
            cells: r.cells.iter().map(DiffCell::from).collect(),
            changed: r.changed,
        }
    }
}

#[derive(Template)]
#[template(path = "eval_compare.html")]
struct ComparePage {
    me: Me,
    a: RunRow,
    b: RunRow,
    columns: Vec<String>,
    overall: Vec<DiffRow>,
    per_question: Vec<DiffRow>,
    only_a: Vec<String>,
    only_b: Vec<String>,
}

/// `/eval/compare?a=ID&b=ID`: two finished runs of the same kind side by side, with the
/// difference (b − a) of every metric, overall and per question.
async fn compare_page(
    State(state): State<AppState>,
    me: Me,
    ApiQuery(q): ApiQuery<CompareParams>,
) -> PageResult {
    if q.a.is_empty() || q.b.is_empty() {
        return Err(bad("choose two runs to compare (a and b)").into());
    }
    let a = load_run(&state, &me, q.a.clone(), false).await?.run;
    let b = load_run(&state, &me, q.b.clone(), false).await?.run;
    let (Some(ra), Some(rb)) = (&a.result, &b.result) else {
        return Err(AppError::conflict("both runs must be finished to compare them").into());
    };
    let Some(c) = compare::compare(ra, rb) else {
        return Err(bad("only runs of the same kind can be compared").into());
    };
    page::html(&ComparePage {
        me,
        a: row(&a),
        b: row(&b),
        columns: c.columns,
        overall: c.overall.iter().map(DiffRow::from).collect(),
        per_question: c.per_question.iter().map(DiffRow::from).collect(),
        only_a: c.only_a,
        only_b: c.only_b,
    })
}
