//! Evaluation runs kept for the web app (`<data-dir>/evals.sqlite`): what was asked (the
//! question set, modes and k, or the draft mode and limit), by whom and under which
//! clearance, progress, and the full results — per question and mode the metrics and the
//! ranked passages for retrieval runs; for draft runs each answer's sentences with their
//! citations, the cited passages' exact text, the automatic support labels and the ALCE
//! judgements — plus the evaluators' own judgements of each citation and their agreement.
//!
//! A run records the banner of every passage its results hold ([`Run::markings`]), so a
//! reader can be refused a run holding anything above their clearance without loading it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use doctrina_draft::cite;
use doctrina_draft::support::Support;
use doctrina_draft::{DraftMode, Drafter};
use doctrina_retrieve::Retriever;
use doctrina_types::{Clearance, PassageFilter, SearchHit, SearchMode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::agreement::{self, PairAgreement};
use crate::{EvalError, Metrics, Question, covers, score};

/// The bundled question set (`corpus/eval/questions.jsonl`), compiled in so a server needs
/// no path to it.
pub const BUNDLED_QUESTIONS: &str = include_str!("../../../corpus/eval/questions.jsonl");

/// Retrieved passages kept per question and mode (every metric looks at the top 10).
const KEPT_HITS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Retrieval,
    Drafts,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrieval => "retrieval",
            Self::Drafts => "drafts",
        }
    }
}

/// What a run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub kind: RunKind,
    /// A name the evaluator gave the run (may be empty).
    #[serde(default)]
    pub label: String,
    /// `bundled` or `uploaded`.
    pub question_set: String,
    pub questions: Vec<Question>,
    /// Retrieval modes (retrieval runs).
    #[serde(default)]
    pub modes: Vec<SearchMode>,
    /// Retrieval depth (at least 10).
    #[serde(default)]
    pub k: usize,
    /// Draft runs: language model or extractive.
    #[serde(default)]
    pub draft_mode: Option<DraftMode>,
    /// Draft runs: the section template.
    #[serde(default)]
    pub section: Option<String>,
    /// Draft runs: sources given per draft.
    #[serde(default)]
    pub sources: Option<usize>,
    /// The clearance retrieval and drafting ran under (the evaluator's who started it).
    pub clearance: Clearance,
}

/// One retrieved passage of a ranking, as shown in the drill-down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedHit {
    pub rank: usize,
    pub passage_id: String,
    pub doc_id: String,
    pub title: String,
    pub publication: Option<String>,
    pub paragraphs: Vec<String>,
    pub marking: String,
    /// It covers one of the question's gold items.
    pub relevant: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    pub metrics: Metrics,
    /// The top 10 passages.
    pub hits: Vec<RankedHit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalQuestion {
    pub id: String,
    pub question: String,
    pub gold: Vec<String>,
    pub modes: BTreeMap<String, ModeResult>,
}

/// A retrieval run's results: metrics per mode (means over questions) and per question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRun {
    pub questions: usize,
    pub modes: BTreeMap<String, Metrics>,
    pub per_question: Vec<RetrievalQuestion>,
}

/// A human (or the automatic) judgement of one citation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CitationLabel {
    /// The passage supports the sentence.
    Supports,
    /// It supports part of it.
    Partly,
    /// It does not support it.
    DoesNot,
}

impl CitationLabel {
    pub const ALL: [CitationLabel; 3] = [Self::Supports, Self::Partly, Self::DoesNot];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supports => "supports",
            Self::Partly => "partly",
            Self::DoesNot => "does_not",
        }
    }

    /// What a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Supports => "supports",
            Self::Partly => "partly supports",
            Self::DoesNot => "does not support",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The automatic label's counterpart: supported ↔ supports, weak (partially supported)
    /// ↔ partly, unsupported ↔ does not.
    pub fn from_support(support: Support) -> Self {
        match support {
            Support::Supported => Self::Supports,
            Support::Weak => Self::Partly,
            Support::Unsupported | Support::Uncited => Self::DoesNot,
        }
    }
}

/// A cited passage exactly as the drafter gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitedPassage {
    pub passage_id: String,
    pub doc_id: String,
    pub title: String,
    pub publication: Option<String>,
    pub paragraphs: Vec<String>,
    pub pages: Vec<u32>,
    pub marking: String,
    pub text: String,
    /// The span the support check matched to the sentence (character offsets in `text`).
    pub span: Option<(usize, usize)>,
}

impl CitedPassage {
    /// `text` split around the matched span (before, span, after), for highlighting.
    pub fn parts(&self) -> (String, String, String) {
        let chars: Vec<char> = self.text.chars().collect();
        let (start, end) = self.span.unwrap_or((0, 0));
        let start = start.min(chars.len());
        let end = end.clamp(start, chars.len());
        (
            chars[..start].iter().collect(),
            chars[start..end].iter().collect(),
            chars[end..].iter().collect(),
        )
    }
}

/// One citation of one sentence, with the automatic judgements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitationResult {
    /// Stable key within the run (`question.sentence.source`), what judgements refer to.
    pub key: String,
    /// The source number cited.
    pub n: usize,
    /// The support check of the sentence against this passage alone.
    pub auto_support: Support,
    pub auto_label: CitationLabel,
    /// ALCE: the citation is not irrelevant.
    pub precise: bool,
    pub passage: CitedPassage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSentence {
    pub text: String,
    /// The sentence's support label against all its cited passages.
    pub support: Support,
    /// ALCE: its cited passages together support it.
    pub recall: bool,
    /// Cited numbers that name no source.
    pub invalid: Vec<usize>,
    pub citations: Vec<CitationResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftAnswer {
    pub id: String,
    pub question: String,
    pub draft_id: Option<String>,
    pub error: Option<String>,
    /// The draft as shown (invalid citations removed).
    pub text: String,
    pub support_labels: BTreeMap<String, usize>,
    pub citation_validity: Option<f64>,
    pub citation_recall: f64,
    pub citation_precision: Option<f64>,
    pub sentences: Vec<AnswerSentence>,
    /// The markings of every passage the model was given for this answer, cited or not:
    /// what a reader must be cleared for to see the answer.
    #[serde(default)]
    pub given_markings: Vec<String>,
}

/// A draft run's totals (the `doctrina eval drafts` figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftTotals {
    pub questions: usize,
    pub failed: usize,
    pub statements: usize,
    pub citations: usize,
    pub invalid_citations: usize,
    pub citation_validity: f64,
    pub support_labels: BTreeMap<String, usize>,
    pub citation_recall: f64,
    pub citation_precision: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftRun {
    pub mode: DraftMode,
    pub section: String,
    pub judge: String,
    pub totals: DraftTotals,
    pub per_question: Vec<DraftAnswer>,
}

impl DraftRun {
    /// Every citation with the answer and sentence it belongs to.
    pub fn citations(
        &self,
    ) -> impl Iterator<Item = (&DraftAnswer, &AnswerSentence, &CitationResult)> {
        self.per_question.iter().flat_map(|a| {
            a.sentences
                .iter()
                .flat_map(move |s| s.citations.iter().map(move |c| (a, s, c)))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunResult {
    Retrieval(RetrievalRun),
    Drafts(DraftRun),
}

impl RunResult {
    /// The banner of every passage the results hold.
    pub fn markings(&self) -> BTreeSet<String> {
        match self {
            Self::Retrieval(r) => r
                .per_question
                .iter()
                .flat_map(|q| q.modes.values())
                .flat_map(|m| m.hits.iter().map(|h| h.marking.clone()))
                .collect(),
            // Every passage given to the model counts, cited or not: an uncited draft from
            // SECRET sources is still drawn from SECRET sources.
            Self::Drafts(d) => d
                .citations()
                .map(|(_, _, c)| c.passage.marking.clone())
                .chain(
                    d.per_question
                        .iter()
                        .flat_map(|a| a.given_markings.iter().cloned()),
                )
                .collect(),
        }
    }

    pub fn summary(&self) -> RunSummary {
        match self {
            Self::Retrieval(r) => RunSummary::Retrieval {
                modes: r.modes.clone(),
            },
            Self::Drafts(d) => RunSummary::Drafts(d.totals.clone()),
        }
    }
}

/// The headline figures, kept beside the full results for lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunSummary {
    Retrieval { modes: BTreeMap<String, Metrics> },
    Drafts(DraftTotals),
}

/// A run as stored. `result` is only loaded by [`RunStore::get`].
/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            _ => Self::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Templates compare statuses with literals (`run.status == "done"`).
impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub actor: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub spec: RunSpec,
    /// Questions finished of `total`.
    pub done: usize,
    pub total: usize,
    /// Banners of every passage in the results (empty until the run is done).
    pub markings: Vec<String>,
    pub summary: Option<RunSummary>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
}

impl Run {
    pub fn finished(&self) -> bool {
        matches!(self.status, RunStatus::Done | RunStatus::Failed)
    }

    pub fn percent(&self) -> usize {
        (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(0)
    }
}

/// One evaluator's judgement of one citation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub citation: String,
    pub evaluator: String,
    pub label: CitationLabel,
    pub comment: String,
    pub at: String,
}

/// Agreement on a draft run's citations: between each pair of evaluators, and of each
/// evaluator with the automatic labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunAgreement {
    pub evaluators: Vec<String>,
    /// Citations judged by at least one evaluator, of all.
    pub judged: usize,
    pub citations: usize,
    pub pairs: Vec<PairAgreement>,
    pub with_automatic: Vec<PairAgreement>,
}

/// Name of the automatic judge in agreement tables.
pub const AUTOMATIC: &str = "automatic (support check)";

/// Agreement of the evaluators' judgements (only those of citations in `run`).
pub fn run_agreement(run: &DraftRun, judgements: &[Judgement]) -> RunAgreement {
    let automatic: BTreeMap<&str, CitationLabel> = run
        .citations()
        .map(|(_, _, c)| (c.key.as_str(), c.auto_label))
        .collect();
    let mut raters: BTreeMap<String, BTreeMap<&str, CitationLabel>> = BTreeMap::new();
    for j in judgements {
        if let Some((key, _)) = automatic.get_key_value(j.citation.as_str()) {
            raters
                .entry(j.evaluator.clone())
                .or_default()
                .insert(*key, j.label);
        }
    }
    let judged: BTreeSet<&str> = raters.values().flat_map(|m| m.keys().copied()).collect();
    let with_automatic = raters
        .iter()
        .map(|(name, labels)| agreement::agreement_between(name, labels, AUTOMATIC, &automatic))
        .collect();
    RunAgreement {
        evaluators: raters.keys().cloned().collect(),
        judged: judged.len(),
        citations: automatic.len(),
        pairs: agreement::pairwise(&raters),
        with_automatic,
    }
}

/// Reads a JSONL question set from text (`name` is used in errors); every line must be a
/// question with at least one gold item, ids unique.
pub fn parse_questions(text: &str, name: &str) -> Result<Vec<Question>, EvalError> {
    let mut out: Vec<Question> = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let format = |message: String| EvalError::Format {
            path: name.to_string(),
            line: i + 1,
            message,
        };
        let q: Question = serde_json::from_str(line).map_err(|e| format(e.to_string()))?;
        if q.id.trim().is_empty() || q.question.trim().is_empty() {
            return Err(format("a question needs an id and a question".to_string()));
        }
        if q.gold.is_empty() {
            return Err(format(format!("question '{}' has no gold items", q.id)));
        }
        if !ids.insert(q.id.clone()) {
            return Err(format(format!("question id '{}' appears twice", q.id)));
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(EvalError::Format {
            path: name.to_string(),
            line: 0,
            message: "no questions".to_string(),
        });
    }
    Ok(out)
}

fn ranked(hit: &SearchHit, rank: usize, gold: &[String]) -> RankedHit {
    RankedHit {
        rank,
        passage_id: hit.passage_id.clone(),
        doc_id: hit.doc_id.clone(),
        title: hit.title.clone(),
        publication: hit.publication.clone(),
        paragraphs: hit.paragraphs.clone(),
        marking: hit.marking.clone(),
        relevant: gold.iter().any(|g| covers(hit, g)),
    }
}

/// Runs every question in every mode, like [`crate::evaluate_retrieval`] (same depth, same
/// scoring, same averaging, so the figures are identical), keeping each top 10.
pub fn run_retrieval(
    retriever: &Retriever,
    questions: &[Question],
    modes: &[SearchMode],
    k: usize,
    filter: &PassageFilter,
    on_progress: &dyn Fn(usize, usize),
) -> Result<RetrievalRun, EvalError> {
    let depth = k.max(10);
    let mut per_question = Vec::with_capacity(questions.len());
    let mut sums: BTreeMap<String, Metrics> = BTreeMap::new();
    for (i, q) in questions.iter().enumerate() {
        let mut results = BTreeMap::new();
        for mode in modes {
            let hits = retriever.search(&q.question, *mode, depth, filter)?;
            let metrics = score(&hits, &q.gold);
            sums.entry(mode.as_str().to_string())
                .or_default()
                .add(&metrics);
            let hits = hits
                .iter()
                .take(KEPT_HITS)
                .enumerate()
                .map(|(r, h)| ranked(h, r + 1, &q.gold))
                .collect();
            results.insert(mode.as_str().to_string(), ModeResult { metrics, hits });
        }
        per_question.push(RetrievalQuestion {
            id: q.id.clone(),
            question: q.question.clone(),
            gold: q.gold.clone(),
            modes: results,
        });
        on_progress(i + 1, questions.len());
    }
    let n = questions.len().max(1) as f64;
    Ok(RetrievalRun {
        questions: questions.len(),
        modes: Metrics::means(sums, n),
        per_question,
    })
}

/// Drafts an answer to every question under `filter` ([`crate::drafts::evaluate_filtered`])
/// and keeps, for every citation, the passage as given, the support check of the sentence
/// against that passage alone, and the ALCE judgements.
pub async fn run_drafts(
    drafter: &Drafter,
    questions: &[Question],
    section: &str,
    mode: DraftMode,
    sources: usize,
    filter: &PassageFilter,
    on_progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<DraftRun, EvalError> {
    let report = crate::drafts::evaluate_filtered(
        drafter,
        questions,
        section,
        mode,
        sources,
        filter,
        crate::drafts::Judge::SupportCheck,
        on_progress,
    )
    .await?;
    let mut per_question = Vec::with_capacity(report.per_question.len());
    for (qi, q) in report.per_question.into_iter().enumerate() {
        let record = match &q.draft_id {
            Some(id) => drafter
                .store
                .get(id)
                .map_err(doctrina_draft::DraftError::from)?,
            None => None,
        };
        let mut sentences = Vec::new();
        if let Some(record) = &record {
            let parsed = cite::parse(
                &record.output(),
                &doctrina_draft::context::citable(&record.sources),
            );
            for (si, statement) in q.statements.iter().enumerate() {
                let claim = parsed
                    .get(si)
                    .map_or_else(|| cite::strip_marks(&statement.text), |p| p.claim.clone());
                let sentence = record.sentences.get(si);
                let mut citations = Vec::new();
                for (ci, n) in statement.citations.iter().enumerate() {
                    let Some(source) = record.sources.iter().find(|s| s.n == *n) else {
                        continue;
                    };
                    let verdict = drafter
                        .checker
                        .check(&claim, &[source.hit.text.as_str()])
                        .map_err(doctrina_draft::DraftError::from)?;
                    let span = sentence
                        .and_then(|s| s.cited_spans.iter().find(|e| e.n == *n))
                        .map(|e| (e.char_start, e.char_end));
                    let hit = &source.hit;
                    citations.push(CitationResult {
                        key: format!("{qi}.{si}.{n}"),
                        n: *n,
                        auto_support: verdict.support,
                        auto_label: CitationLabel::from_support(verdict.support),
                        precise: statement.precise.get(ci).copied().unwrap_or(false),
                        passage: CitedPassage {
                            passage_id: hit.passage_id.clone(),
                            doc_id: hit.doc_id.clone(),
                            title: hit.title.clone(),
                            publication: hit.publication.clone(),
                            paragraphs: hit.paragraphs.clone(),
                            pages: hit.pages.clone(),
                            marking: hit.marking.clone(),
                            text: hit.text.clone(),
                            span,
                        },
                    });
                }
                sentences.push(AnswerSentence {
                    text: statement.text.clone(),
                    support: sentence.map_or(Support::Uncited, |s| s.support),
                    recall: statement.recall,
                    invalid: statement.invalid.clone(),
                    citations,
                });
            }
        }
        per_question.push(DraftAnswer {
            id: q.id,
            question: q.question,
            draft_id: q.draft_id,
            error: q.error,
            text: record.as_ref().map(|r| r.text.clone()).unwrap_or_default(),
            support_labels: q.support_labels,
            citation_validity: q.citation_validity,
            citation_recall: q.citation_recall,
            citation_precision: q.citation_precision,
            sentences,
            given_markings: record
                .as_ref()
                .map(|r| {
                    let set: BTreeSet<String> =
                        r.sources.iter().map(|s| s.hit.marking.clone()).collect();
                    set.into_iter().collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(DraftRun {
        mode: report.mode,
        section: report.section,
        judge: report.judge,
        totals: DraftTotals {
            questions: report.questions,
            failed: report.failed,
            statements: report.statements,
            citations: report.citations,
            invalid_citations: report.invalid_citations,
            citation_validity: report.citation_validity,
            support_labels: report.support_labels,
            citation_recall: report.citation_recall,
            citation_precision: report.citation_precision,
        },
        per_question,
    })
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    spec TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    markings TEXT NOT NULL DEFAULT '[]',
    summary TEXT,
    result TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at TEXT,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS judgements (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    citation TEXT NOT NULL,
    evaluator TEXT NOT NULL,
    label TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, citation, evaluator)
);
";

const COLUMNS: &str = "id, actor, status, error, spec, done, total, markings, summary, \
    created_at, started_at, finished_at";

fn json_column<T: serde::de::DeserializeOwned>(text: &str, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    let spec: String = row.get(4)?;
    let markings: String = row.get(7)?;
    let summary: Option<String> = row.get(8)?;
    Ok(Run {
        id: row.get(0)?,
        actor: row.get(1)?,
        status: RunStatus::parse(&row.get::<_, String>(2)?),
        error: row.get(3)?,
        spec: json_column(&spec, 4)?,
        done: row.get::<_, i64>(5)? as usize,
        total: row.get::<_, i64>(6)? as usize,
        markings: json_column(&markings, 7)?,
        summary: summary.map(|s| json_column(&s, 8)).transpose()?,
        created_at: row.get(9)?,
        started_at: row.get(10)?,
        finished_at: row.get(11)?,
        result: None,
    })
}

/// `evals.sqlite`: runs and judgements.
pub struct RunStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for RunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStore").finish_non_exhaustive()
    }
}

impl RunStore {
    /// Opens (or creates) the store. Runs left `queued` or `running` by a server that stopped
    /// are marked failed with that reason: a run is not resumed (start it again).
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "UPDATE runs SET status = 'failed', \
             error = 'the server stopped before the run finished; start it again', \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE status IN ('queued', 'running')",
            [],
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a new run as `queued`.
    pub fn create(&self, actor: &str, spec: &RunSpec, total: usize) -> Result<Run, EvalError> {
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO runs (kind, actor, status, spec, total) VALUES (?1, ?2, 'queued', ?3, ?4)",
                params![
                    spec.kind.as_str(),
                    actor,
                    serde_json::to_string(spec)?,
                    total as i64
                ],
            )?;
            conn.last_insert_rowid()
        };
        self.get(id)?
            .ok_or_else(|| EvalError::Store(format!("run {id} vanished")))
    }

    pub fn start(&self, id: i64) -> Result<(), EvalError> {
        self.conn().execute(
            "UPDATE runs SET status = 'running', started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    pub fn progress(&self, id: i64, done: usize, total: usize) -> Result<(), EvalError> {
        self.conn().execute(
            "UPDATE runs SET done = ?2, total = ?3 WHERE id = ?1",
            params![id, done as i64, total as i64],
        )?;
        Ok(())
    }

    pub fn finish(&self, id: i64, result: &RunResult) -> Result<(), EvalError> {
        let markings: Vec<String> = result.markings().into_iter().collect();
        self.conn().execute(
            "UPDATE runs SET status = 'done', error = NULL, markings = ?2, summary = ?3, result = ?4, \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            params![
                id,
                serde_json::to_string(&markings)?,
                serde_json::to_string(&result.summary())?,
                serde_json::to_string(result)?
            ],
        )?;
        Ok(())
    }

    pub fn fail(&self, id: i64, error: &str) -> Result<(), EvalError> {
        self.conn().execute(
            "UPDATE runs SET status = 'failed', error = ?2, \
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// A run with its results.
    pub fn get(&self, id: i64) -> Result<Option<Run>, EvalError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS}, result FROM runs WHERE id = ?1"),
                [id],
                |row| {
                    let run = run_from_row(row)?;
                    let result: Option<String> = row.get(12)?;
                    Ok((run, result))
                },
            )
            .optional()?;
        let Some((mut run, result)) = row else {
            return Ok(None);
        };
        run.result = result.map(|r| serde_json::from_str(&r)).transpose()?;
        Ok(Some(run))
    }

    /// Finished draft runs stored before every given passage's marking was recorded: fills
    /// each answer's `given_markings` from its draft record (`given(draft_id)`) and stores
    /// the run's markings again, so such a run is never visible to someone not cleared
    /// for every passage its drafts were given. Returns how many runs changed.
    pub fn backfill_given_markings(
        &self,
        given: impl Fn(&str) -> Option<Vec<String>>,
    ) -> Result<usize, EvalError> {
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM runs WHERE status = 'done' AND kind = 'drafts' AND result IS NOT NULL",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut changed = 0;
        for id in ids {
            let Some(Run {
                result: Some(RunResult::Drafts(mut drafts)),
                ..
            }) = self.get(id)?
            else {
                continue;
            };
            let mut touched = false;
            for answer in &mut drafts.per_question {
                if !answer.given_markings.is_empty() {
                    continue;
                }
                let Some(draft_id) = &answer.draft_id else {
                    continue;
                };
                // A draft record that cannot be read makes the answer unreadable to all.
                answer.given_markings = given(draft_id)
                    .unwrap_or_else(|| vec![doctrina_types::Marking::unreadable().banner()]);
                touched = true;
            }
            if touched {
                let result = RunResult::Drafts(drafts);
                let markings: Vec<String> = result.markings().into_iter().collect();
                self.conn().execute(
                    "UPDATE runs SET markings = ?2, result = ?3 WHERE id = ?1",
                    params![
                        id,
                        serde_json::to_string(&markings)?,
                        serde_json::to_string(&result)?
                    ],
                )?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Runs without their results, newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<Run>, EvalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], run_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records `evaluator`'s judgement of a citation, replacing their earlier one.
    pub fn judge(
        &self,
        run_id: i64,
        evaluator: &str,
        citation: &str,
        label: CitationLabel,
        comment: &str,
    ) -> Result<(), EvalError> {
        self.conn().execute(
            "INSERT INTO judgements (run_id, citation, evaluator, label, comment) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (run_id, citation, evaluator) DO UPDATE SET label = excluded.label, \
             comment = excluded.comment, at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![run_id, citation, evaluator, label.as_str(), comment],
        )?;
        Ok(())
    }

    /// Every judgement of a run, by citation then evaluator.
    pub fn judgements(&self, run_id: i64) -> Result<Vec<Judgement>, EvalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT citation, evaluator, label, comment, at FROM judgements WHERE run_id = ?1 \
             ORDER BY citation, evaluator",
        )?;
        let rows = stmt.query_map([run_id], |row| {
            let label: String = row.get(2)?;
            Ok(Judgement {
                citation: row.get(0)?,
                evaluator: row.get(1)?,
                label: CitationLabel::parse(&label).unwrap_or(CitationLabel::DoesNot),
                comment: row.get(3)?,
                at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            kind: RunKind::Drafts,
            label: "t".into(),
            question_set: "bundled".into(),
            questions: parse_questions(BUNDLED_QUESTIONS, "bundled").unwrap(),
            modes: vec![],
            k: 10,
            draft_mode: Some(DraftMode::Extractive),
            section: Some("doctrine-answer".into()),
            sources: Some(6),
            clearance: Clearance {
                level: "SECRET".into(),
                caveats: vec![],
            },
        }
    }

    fn passage(marking: &str) -> CitedPassage {
        CitedPassage {
            passage_id: "p".into(),
            doc_id: "d".into(),
            title: "T".into(),
            publication: None,
            paragraphs: vec![],
            pages: vec![],
            marking: marking.into(),
            text: "abcdef".into(),
            span: Some((2, 4)),
        }
    }

    fn draft_run(autos: &[CitationLabel]) -> DraftRun {
        let citations = autos
            .iter()
            .enumerate()
            .map(|(i, l)| CitationResult {
                key: format!("0.{i}.1"),
                n: 1,
                auto_support: Support::Supported,
                auto_label: *l,
                precise: true,
                passage: passage(if i == 0 { "SECRET" } else { "UNCLASSIFIED" }),
            })
            .collect();
        DraftRun {
            mode: DraftMode::Extractive,
            section: "s".into(),
            judge: "support-check".into(),
            totals: DraftTotals {
                questions: 1,
                failed: 0,
                statements: 1,
                citations: autos.len(),
                invalid_citations: 0,
                citation_validity: 1.0,
                support_labels: BTreeMap::new(),
                citation_recall: 1.0,
                citation_precision: 1.0,
            },
            per_question: vec![DraftAnswer {
                id: "q1".into(),
                question: "?".into(),
                draft_id: None,
                error: None,
                text: String::new(),
                support_labels: BTreeMap::new(),
                citation_validity: None,
                citation_recall: 1.0,
                citation_precision: None,
                sentences: vec![AnswerSentence {
                    text: "s".into(),
                    support: Support::Supported,
                    recall: true,
                    invalid: vec![],
                    citations,
                }],
                given_markings: vec!["SECRET".into()],
            }],
        }
    }

    #[test]
    fn the_bundled_set_parses_and_bad_lines_are_named() {
        assert!(parse_questions(BUNDLED_QUESTIONS, "bundled").unwrap().len() >= 30);
        let e = parse_questions("{\"id\":\"a\",\"question\":\"x\",\"gold\":[]}", "pasted")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pasted line 1") && e.contains("no gold"), "{e}");
        let twice = "{\"id\":\"a\",\"question\":\"x\",\"gold\":[\"1-1\"]}\n".repeat(2);
        assert!(
            parse_questions(&twice, "p")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(parse_questions("\n \n", "p").is_err());
        assert!(parse_questions("not json", "p").is_err());
    }

    #[test]
    fn store_keeps_runs_results_and_one_judgement_per_evaluator() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(&dir.path().join("evals.sqlite")).unwrap();
        let run = store.create("eve", &spec(), 3).unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        store.start(run.id).unwrap();
        store.progress(run.id, 1, 3).unwrap();
        let result = RunResult::Drafts(draft_run(&[
            CitationLabel::Supports,
            CitationLabel::DoesNot,
        ]));
        store.finish(run.id, &result).unwrap();
        let got = store.get(run.id).unwrap().unwrap();
        assert_eq!(got.status, RunStatus::Done);
        assert_eq!(
            got.markings,
            vec!["SECRET".to_string(), "UNCLASSIFIED".to_string()]
        );
        assert_eq!(got.result.as_ref(), Some(&result));
        assert!(matches!(got.summary, Some(RunSummary::Drafts(_))));
        assert!(store.list(10).unwrap()[0].result.is_none());

        store
            .judge(run.id, "eve", "0.0.1", CitationLabel::Partly, "half")
            .unwrap();
        store
            .judge(run.id, "eve", "0.0.1", CitationLabel::Supports, "")
            .unwrap();
        store
            .judge(run.id, "bob", "0.0.1", CitationLabel::Supports, "ok")
            .unwrap();
        let j = store.judgements(run.id).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(
            (j[1].evaluator.as_str(), j[1].label),
            ("eve", CitationLabel::Supports)
        );

        // A run left running by a stopped server is failed on the next open.
        let other = store.create("eve", &spec(), 3).unwrap();
        store.start(other.id).unwrap();
        drop(store);
        let store = RunStore::open(&dir.path().join("evals.sqlite")).unwrap();
        let other = store.get(other.id).unwrap().unwrap();
        assert_eq!(other.status, RunStatus::Failed);
        assert!(other.error.unwrap().contains("stopped"));
        assert_eq!(store.get(run.id).unwrap().unwrap().status, RunStatus::Done);
    }

    /// Issue 12: a draft run was visible by the markings of cited passages only, so an
    /// uncited draft from SECRET sources was readable by an UNCLASSIFIED evaluator.
    #[test]
    fn every_passage_given_counts_toward_a_run_marking() {
        let mut run = draft_run(&[]);
        for answer in &mut run.per_question {
            answer.sentences.clear();
            answer.given_markings = vec!["SECRET//NOFORN".into()];
            answer.draft_id = Some("d1".into());
        }
        let result = RunResult::Drafts(run.clone());
        assert!(result.markings().contains("SECRET//NOFORN"));

        // A run stored before given markings were recorded is filled from its drafts.
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(&dir.path().join("evals.sqlite")).unwrap();
        let stored = store.create("eve", &spec(), 1).unwrap();
        for answer in &mut run.per_question {
            answer.given_markings.clear();
        }
        store.finish(stored.id, &RunResult::Drafts(run)).unwrap();
        assert!(store.get(stored.id).unwrap().unwrap().markings.is_empty());
        let changed = store
            .backfill_given_markings(|id| (id == "d1").then(|| vec!["TOP SECRET".into()]))
            .unwrap();
        assert_eq!(changed, 1);
        assert_eq!(
            store.get(stored.id).unwrap().unwrap().markings,
            vec!["TOP SECRET".to_string()]
        );
        // An unreadable draft record makes the answer readable by no one.
        let again = store.create("eve", &spec(), 1).unwrap();
        let mut lost = draft_run(&[]);
        for answer in &mut lost.per_question {
            answer.sentences.clear();
            answer.given_markings.clear();
            answer.draft_id = Some("gone".into());
        }
        store.finish(again.id, &RunResult::Drafts(lost)).unwrap();
        store.backfill_given_markings(|_| None).unwrap();
        assert_eq!(
            store.get(again.id).unwrap().unwrap().markings,
            vec![doctrina_types::Marking::unreadable().banner()]
        );
    }

    #[test]
    fn agreement_between_evaluators_and_with_the_automatic_labels() {
        use CitationLabel::*;
        let run = draft_run(&[Supports, Supports, DoesNot, DoesNot]);
        let j = |c: usize, who: &str, label| Judgement {
            citation: format!("0.{c}.1"),
            evaluator: who.into(),
            label,
            comment: String::new(),
            at: String::new(),
        };
        let judgements = vec![
            j(0, "ann", Supports),
            j(1, "ann", Supports),
            j(2, "ann", DoesNot),
            j(3, "ann", DoesNot),
            j(0, "bob", Supports),
            j(1, "bob", DoesNot),
            j(2, "bob", DoesNot),
            j(3, "bob", DoesNot),
            // A key not in the run is ignored.
            Judgement {
                citation: "9.9.9".into(),
                ..j(0, "bob", Partly)
            },
        ];
        let a = run_agreement(&run, &judgements);
        assert_eq!(a.evaluators, vec!["ann".to_string(), "bob".to_string()]);
        assert_eq!((a.judged, a.citations), (4, 4));
        // ann S,S,D,D vs bob S,D,D,D: p_o 3/4; p_e 1/2*1/4 + 1/2*3/4 = 1/2; kappa 1/2.
        let pair = &a.pairs[0];
        assert_eq!(pair.n, 4);
        assert!((pair.agreement.unwrap().kappa.unwrap() - 0.5).abs() < 1e-12);
        // ann agrees with the automatic labels exactly.
        assert_eq!(a.with_automatic[0].agreement.unwrap().kappa, Some(1.0));
    }

    #[test]
    fn passage_parts_split_around_the_span() {
        assert_eq!(
            passage("U").parts(),
            ("ab".to_string(), "cd".to_string(), "ef".to_string())
        );
        let mut p = passage("U");
        p.span = Some((4, 99));
        assert_eq!(p.parts().2, "");
    }
}
