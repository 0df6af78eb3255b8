//! Draft records (SQLite `drafts.sqlite` in the data directory): every draft is stored with
//! everything needed to show it exactly as produced and to audit it later.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::context::Source;
use crate::inference::Message;
use crate::judge::Judgement;
use crate::support::{Features, Support};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftMode {
    Llm,
    Extractive,
}

impl std::str::FromStr for DraftMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "llm" => Ok(Self::Llm),
            "extractive" => Ok(Self::Extractive),
            other => Err(format!(
                "unknown draft mode '{other}' (expected llm or extractive)"
            )),
        }
    }
}

/// The span of a source that best matches a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSpan {
    /// The source number.
    pub n: usize,
    /// Character offsets within the source's passage text.
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceRecord {
    pub text: String,
    pub citations: Vec<usize>,
    /// The citations as written: `[2.3]` is sentence 3 of source 2.
    #[serde(default)]
    pub refs: Vec<crate::cite::Ref>,
    /// Citations of a given source naming a sentence it was not given with (removed from
    /// the text).
    #[serde(default)]
    pub invalid_refs: Vec<crate::cite::Ref>,
    pub support: Support,
    pub score: f32,
    pub features: Features,
    pub evidence: Option<EvidenceSpan>,
    /// The span of each citation, in citation order (what a reviewer sees highlighted when
    /// opening it): the cited sentence for `[n.m]`, the best-matching sentence of the
    /// source for `[n]`.
    #[serde(default)]
    pub cited_spans: Vec<EvidenceSpan>,
    /// Who decided [`SentenceRecord::support`].
    #[serde(default)]
    pub basis: SupportBasis,
    /// The local check's own label, when the judge's answer was combined with it.
    #[serde(default)]
    pub check: Option<Support>,
    /// The inference server's judgement, when it was asked.
    #[serde(default)]
    pub judgement: Option<Judgement>,
}

/// Who decided a sentence's support label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupportBasis {
    /// The local check alone (the judge is off, or the draft is extractive: quotes).
    #[default]
    Check,
    /// The check and the inference server as judge, combined
    /// ([`crate::judge::Combination`]).
    CheckAndJudge,
    /// The judge was to be asked but could not answer: the check's label, never
    /// `supported`.
    JudgeUnavailable,
}

impl SupportBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::CheckAndJudge => "check-and-judge",
            Self::JudgeUnavailable => "judge-unavailable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    pub retrieval: u64,
    pub first_token: Option<u64>,
    pub total: u64,
    /// Time spent asking the inference server to judge the sentences' support.
    #[serde(default)]
    pub judge: Option<u64>,
    /// Tokens the model generated and how fast (after its first token): as the server
    /// says, or, when a stream was stopped before the server said (a loop cut short), the
    /// content events received (llama-server sends one per token).
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub tokens_per_second: Option<f64>,
}

fn parse_path() -> String {
    "parse".to_string()
}

/// Everything about one draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftRecord {
    pub draft_id: String,
    pub created_at: String,
    pub section: String,
    pub section_title: String,
    pub task: String,
    pub mode: DraftMode,
    /// The draft as shown: invalid citations removed.
    pub text: String,
    /// Exactly what the model (or the extractive composer) produced.
    pub raw_output: String,
    pub prompt: Vec<Message>,
    pub prompt_tokens: usize,
    /// `server` when the inference server counted the tokens, `estimate` otherwise.
    pub token_count: String,
    /// How citations were bound: `grammar` (the server generated under a grammar that
    /// only lets a sentence end with citations of given sources) or `parse` (generated
    /// freely, then parsed, checked and flagged).
    #[serde(default = "parse_path")]
    pub citation_path: String,
    pub server: Option<String>,
    pub model: String,
    pub max_tokens: u32,
    pub temperature: f32,
    pub sources: Vec<Source>,
    /// Passages retrieved but dropped to fit the context window (lowest ranked first).
    pub dropped_sources: Vec<String>,
    /// Source numbers whose text looks like instructions to the model (prompt injection).
    pub flagged_sources: Vec<usize>,
    pub sentences: Vec<SentenceRecord>,
    pub invalid_citations: Vec<usize>,
    /// The model that judged the sentences' support with the check (`model@server`), when
    /// one did.
    #[serde(default)]
    pub support_judge: Option<String>,
    /// Why the judge could not answer (its sentences keep the check's label, capped at
    /// `weak`).
    #[serde(default)]
    pub judge_error: Option<String>,
    /// The output broke off (timeout, cut stream) or was stopped because the model kept
    /// writing the same sentence ([`crate::inference::REPETITION_LIMIT`]); `text` is what
    /// arrived, and `error` says which.
    pub incomplete: bool,
    pub error: Option<String>,
    pub timings_ms: Timings,
}

impl DraftRecord {
    /// The model's output as drafts read it: [`Self::raw_output`] with any source label
    /// opening a line removed ([`crate::context::strip_source_labels`]). Verification,
    /// rendering and evaluation all read this, so they see the same sentences.
    pub fn output(&self) -> String {
        crate::context::strip_source_labels(&self.raw_output, &self.sources)
    }

    /// Why the draft is incomplete (it broke off, or the model was stopped repeating
    /// itself); `None` for a finished draft.
    pub fn incomplete_reason(&self) -> Option<String> {
        self.error.clone().filter(|_| self.incomplete)
    }
}

pub struct DraftStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for DraftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DraftStore").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("draft store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("draft store: bad record: {0}")]
    Json(#[from] serde_json::Error),
}

impl DraftStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS drafts (
                 id         TEXT PRIMARY KEY,
                 created_at TEXT NOT NULL,
                 section    TEXT NOT NULL,
                 task       TEXT NOT NULL,
                 mode       TEXT NOT NULL,
                 record     TEXT NOT NULL
             );",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new, unique draft id and its creation time (UTC, from SQLite's clock).
    pub fn new_id(&self) -> Result<(String, String), StoreError> {
        let (now, random): (String, i64) = self.conn().query_row(
            "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), random()",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let id = format!(
            "d{}-{:08x}",
            now.chars().filter(char::is_ascii_digit).collect::<String>(),
            random as u32
        );
        Ok((id, now))
    }

    pub fn save(&self, record: &DraftRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO drafts (id, created_at, section, task, mode, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.draft_id,
                record.created_at,
                record.section,
                record.task,
                serde_json::to_value(record.mode)?.as_str().unwrap_or("llm"),
                json
            ],
        )?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<DraftRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT record FROM drafts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    /// (id, created_at, section, task), newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<(String, String, String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, created_at, section, task FROM drafts ORDER BY created_at DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
