//! The plan store (SQLite `plans.sqlite` in the data directory). Versions, reviews and
//! comments are append-only: nothing a person or the model wrote is ever overwritten.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use doctrina_draft::record::{DraftMode, SentenceRecord};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::review::CitationChange;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0} not found")]
    NotFound(String),
    /// The request raced another change (e.g. an edit based on an old version).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("plan store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("plan store: bad stored value: {0}")]
    Json(#[from] serde_json::Error),
}

impl doctrina_types::Faulted for PlanError {
    fn fault(&self) -> doctrina_types::Fault {
        use doctrina_types::Fault;
        match self {
            Self::NotFound(_) => Fault::NotFound,
            Self::Conflict(_) => Fault::Conflict,
            Self::Invalid(_) => Fault::Invalid,
            Self::Sql(_) | Self::Json(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "invalid_input",
            Self::Sql(_) | Self::Json(_) => "store_failed",
        }
    }
}

type Result<T> = std::result::Result<T, PlanError>;

/// The kinds of plan products a staff builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanKind {
    OperationOrder,
    WarningOrder,
    FragmentaryOrder,
    MissionAnalysis,
    StaffEstimate,
}

impl PlanKind {
    pub const ALL: [PlanKind; 5] = [
        Self::OperationOrder,
        Self::WarningOrder,
        Self::FragmentaryOrder,
        Self::MissionAnalysis,
        Self::StaffEstimate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OperationOrder => "operation-order",
            Self::WarningOrder => "warning-order",
            Self::FragmentaryOrder => "fragmentary-order",
            Self::MissionAnalysis => "mission-analysis",
            Self::StaffEstimate => "staff-estimate",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::OperationOrder => "Operation order",
            Self::WarningOrder => "Warning order",
            Self::FragmentaryOrder => "Fragmentary order",
            Self::MissionAnalysis => "Mission analysis",
            Self::StaffEstimate => "Staff estimate",
        }
    }
}

impl std::str::FromStr for PlanKind {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                PlanError::Invalid(format!(
                    "unknown plan type '{s}' (expected one of {})",
                    known.join(", ")
                ))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub title: String,
    pub kind: PlanKind,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub section_count: usize,
    pub accepted_count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SectionStatus {
    /// No version yet.
    Empty,
    /// The newest version is a draft nobody has reviewed.
    Drafted,
    /// The newest version is a reviewer's edit.
    Edited,
    /// A reviewer accepted the newest version.
    Accepted,
    /// A reviewer rejected the newest version.
    Rejected,
}

impl SectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Drafted => "drafted",
            Self::Edited => "edited",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "drafted" => Self::Drafted,
            "edited" => Self::Edited,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            _ => Self::Empty,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    pub plan_id: String,
    pub ordinal: u32,
    /// The section template (`doctrina sections`).
    pub template: String,
    pub title: String,
    pub task: String,
    pub guidance: String,
    pub status: SectionStatus,
    /// The newest version number (0 when there is none).
    pub current_version: u32,
    /// The version a reviewer accepted, while it is still the newest.
    pub accepted_version: Option<u32>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// A marking an officer raised the section to (banner form); it can only raise.
    pub raised_marking: Option<String>,
    /// An audited marking below what the section's sources require, for one version.
    pub marking_override: Option<MarkingOverride>,
}

/// A section marked below what its sources and text require, by a named person with a
/// reason, for one version only (a new version is marked from its own sources again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkingOverride {
    pub version: u32,
    pub marking: String,
    /// What the sources and text required when it was made.
    pub derived: String,
    pub reason: String,
    pub by: String,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    /// Produced by the model or the extractive composer.
    Draft,
    /// Written by a reviewer.
    Edit,
}

/// One immutable version of a section's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub section_id: String,
    pub n: u32,
    pub kind: VersionKind,
    /// Markdown with `[n]` citations into the sources of `draft_id`.
    pub text: String,
    pub author: String,
    pub created_at: String,
    /// The draft record whose sources the citations number.
    pub draft_id: Option<String>,
    pub mode: Option<DraftMode>,
    /// The model's output broke off; `text` is what arrived.
    pub incomplete: bool,
    pub error: Option<String>,
    /// Every sentence with its citations and support label, checked at save time.
    pub sentences: Vec<SentenceRecord>,
    /// Citation numbers in the text that name no source.
    pub invalid_citations: Vec<usize>,
    /// What this version did to the previous version's cited sentences.
    pub changes: Vec<CitationChange>,
}

/// A version about to be stored.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub kind: VersionKind,
    pub text: String,
    pub author: String,
    pub draft_id: Option<String>,
    pub mode: Option<DraftMode>,
    pub incomplete: bool,
    pub error: Option<String>,
    pub sentences: Vec<SentenceRecord>,
    pub invalid_citations: Vec<usize>,
    pub changes: Vec<CitationChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewAction {
    Accept,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub section_id: String,
    pub version: u32,
    pub action: ReviewAction,
    pub author: String,
    pub created_at: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: i64,
    pub section_id: String,
    /// The version the comment was made on.
    pub version: u32,
    pub author: String,
    pub text: String,
    pub created_at: String,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS plans (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sections (
    id               TEXT PRIMARY KEY,
    plan_id          TEXT NOT NULL REFERENCES plans(id),
    ordinal          INTEGER NOT NULL,
    template         TEXT NOT NULL,
    title            TEXT NOT NULL,
    task             TEXT NOT NULL,
    guidance         TEXT NOT NULL,
    status           TEXT NOT NULL,
    current_version  INTEGER NOT NULL DEFAULT 0,
    accepted_version INTEGER,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    raised_marking   TEXT,
    marking_override TEXT
);
CREATE INDEX IF NOT EXISTS sections_plan ON sections(plan_id, ordinal);
CREATE TABLE IF NOT EXISTS versions (
    section_id        TEXT NOT NULL REFERENCES sections(id),
    n                 INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    text              TEXT NOT NULL,
    author            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    draft_id          TEXT,
    mode              TEXT,
    incomplete        INTEGER NOT NULL,
    error             TEXT,
    sentences         TEXT NOT NULL,
    invalid_citations TEXT NOT NULL,
    changes           TEXT NOT NULL,
    PRIMARY KEY (section_id, n)
);
CREATE TABLE IF NOT EXISTS reviews (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    section_id TEXT NOT NULL REFERENCES sections(id),
    version    INTEGER NOT NULL,
    action     TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    note       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    section_id TEXT NOT NULL REFERENCES sections(id),
    version    INTEGER NOT NULL,
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Limits on what people type, so a pasted book cannot bloat the store.
pub const MAX_TITLE: usize = 200;
pub const MAX_TEXT: usize = 100_000;

fn required(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(PlanError::Invalid(format!("{field} is required")));
    }
    bounded(field, value, max)
}

fn bounded(field: &str, value: &str, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(PlanError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(value.to_string())
}

fn new_id(prefix: char) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..12])
}

pub struct PlanStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for PlanStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanStore").finish_non_exhaustive()
    }
}

const PLAN_COLUMNS: &str = "p.id, p.title, p.kind, p.created_at, p.created_by, p.updated_at, \
    (SELECT count(*) FROM sections s WHERE s.plan_id = p.id), \
    (SELECT count(*) FROM sections s WHERE s.plan_id = p.id AND s.status = 'accepted')";

fn plan_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Plan, String)> {
    let kind: String = row.get(2)?;
    Ok((
        Plan {
            id: row.get(0)?,
            title: row.get(1)?,
            kind: PlanKind::OperationOrder,
            created_at: row.get(3)?,
            created_by: row.get(4)?,
            updated_at: row.get(5)?,
            section_count: row.get::<_, i64>(6)? as usize,
            accepted_count: row.get::<_, i64>(7)? as usize,
        },
        kind,
    ))
}

fn with_kind((mut plan, kind): (Plan, String)) -> Result<Plan> {
    plan.kind = kind.parse()?;
    Ok(plan)
}

const SECTION_COLUMNS: &str = "id, plan_id, ordinal, template, title, task, guidance, status, \
    current_version, accepted_version, created_at, created_by, updated_at, raised_marking, \
    marking_override";

/// Columns added after the first release (added on open).
const ADDED_SECTION_COLUMNS: &[&str] = &["raised_marking", "marking_override"];

fn section_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Section> {
    let status: String = row.get(7)?;
    Ok(Section {
        id: row.get(0)?,
        plan_id: row.get(1)?,
        ordinal: row.get(2)?,
        template: row.get(3)?,
        title: row.get(4)?,
        task: row.get(5)?,
        guidance: row.get(6)?,
        status: SectionStatus::parse(&status),
        current_version: row.get(8)?,
        accepted_version: row.get(9)?,
        created_at: row.get(10)?,
        created_by: row.get(11)?,
        updated_at: row.get(12)?,
        raised_marking: row.get(13)?,
        // An override that cannot be read does not apply: the section is marked from its
        // sources.
        marking_override: row
            .get::<_, Option<String>>(14)?
            .and_then(|o| serde_json::from_str(&o).ok()),
    })
}

const VERSION_COLUMNS: &str = "section_id, n, kind, text, author, created_at, draft_id, mode, \
    incomplete, error, sentences, invalid_citations, changes";

type VersionRow = (Version, String, Option<String>, String, String, String);

fn version_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok((
        Version {
            section_id: row.get(0)?,
            n: row.get(1)?,
            kind: VersionKind::Draft,
            text: row.get(3)?,
            author: row.get(4)?,
            created_at: row.get(5)?,
            draft_id: row.get(6)?,
            mode: None,
            incomplete: row.get::<_, i64>(8)? != 0,
            error: row.get(9)?,
            sentences: Vec::new(),
            invalid_citations: Vec::new(),
            changes: Vec::new(),
        },
        row.get(2)?,
        row.get(7)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    ))
}

fn decode_version((mut v, kind, mode, sentences, invalid, changes): VersionRow) -> Result<Version> {
    v.kind = if kind == "edit" {
        VersionKind::Edit
    } else {
        VersionKind::Draft
    };
    v.mode = mode.and_then(|m| m.parse().ok());
    v.sentences = serde_json::from_str(&sentences)?;
    v.invalid_citations = serde_json::from_str(&invalid)?;
    v.changes = serde_json::from_str(&changes)?;
    Ok(v)
}

impl PlanStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        let existing: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('sections')")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for column in ADDED_SECTION_COLUMNS {
            if !existing.iter().any(|c| c == column) {
                conn.execute_batch(&format!("ALTER TABLE sections ADD COLUMN {column} TEXT"))?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Raises the section's marking floor (banner form); the caller has checked it raises.
    pub fn set_raised_marking(&self, section_id: &str, banner: &str) -> Result<()> {
        let changed = self.conn().execute(
            &format!("UPDATE sections SET raised_marking = ?2, updated_at = {NOW} WHERE id = ?1"),
            params![section_id, banner],
        )?;
        if changed == 0 {
            return Err(PlanError::NotFound(format!("section {section_id}")));
        }
        Ok(())
    }

    /// Records an override of the section's marking for one version.
    pub fn set_marking_override(&self, section_id: &str, o: &MarkingOverride) -> Result<()> {
        let changed = self.conn().execute(
            &format!("UPDATE sections SET marking_override = ?2, updated_at = {NOW} WHERE id = ?1"),
            params![section_id, serde_json::to_string(o)?],
        )?;
        if changed == 0 {
            return Err(PlanError::NotFound(format!("section {section_id}")));
        }
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create_plan(&self, title: &str, kind: PlanKind, author: &str) -> Result<Plan> {
        let title = required("title", title, MAX_TITLE)?;
        let id = new_id('p');
        self.conn().execute(
            &format!(
                "INSERT INTO plans (id, title, kind, created_at, created_by, updated_at) \
                 VALUES (?1, ?2, ?3, {NOW}, ?4, {NOW})"
            ),
            params![id, title, kind.as_str(), author],
        )?;
        self.plan(&id)?
            .ok_or_else(|| PlanError::NotFound(format!("plan {id}")))
    }

    /// All plans, most recently changed first.
    pub fn plans(&self) -> Result<Vec<Plan>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans p ORDER BY p.updated_at DESC, p.id"
        ))?;
        let rows = stmt.query_map([], plan_from_row)?;
        rows.map(|r| with_kind(r?)).collect()
    }

    pub fn plan(&self, id: &str) -> Result<Option<Plan>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {PLAN_COLUMNS} FROM plans p WHERE p.id = ?1"),
                [id],
                plan_from_row,
            )
            .optional()?;
        row.map(with_kind).transpose()
    }

    /// A section's newest version number and its plan, inside a transaction.
    fn current(tx: &Transaction<'_>, section_id: &str) -> Result<(u32, String)> {
        tx.query_row(
            "SELECT current_version, plan_id FROM sections WHERE id = ?1",
            [section_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| PlanError::NotFound(format!("section {section_id}")))
    }

    fn touch_plan(tx: &Transaction<'_>, plan_id: &str) -> Result<()> {
        tx.execute(
            &format!("UPDATE plans SET updated_at = {NOW} WHERE id = ?1"),
            [plan_id],
        )?;
        Ok(())
    }

    pub fn add_section(
        &self,
        plan_id: &str,
        template: &str,
        title: &str,
        task: &str,
        guidance: &str,
        author: &str,
    ) -> Result<Section> {
        let title = required("section title", title, MAX_TITLE)?;
        let task = bounded("task", task.trim(), MAX_TEXT)?;
        let guidance = bounded("guidance", guidance.trim(), MAX_TEXT)?;
        let id = new_id('s');
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let exists: Option<String> = tx
                .query_row("SELECT id FROM plans WHERE id = ?1", [plan_id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_none() {
                return Err(PlanError::NotFound(format!("plan {plan_id}")));
            }
            tx.execute(
                &format!(
                    "INSERT INTO sections (id, plan_id, ordinal, template, title, task, guidance, \
                     status, created_at, created_by, updated_at) \
                     VALUES (?1, ?2, (SELECT coalesce(max(ordinal), 0) + 1 FROM sections WHERE plan_id = ?2), \
                     ?3, ?4, ?5, ?6, 'empty', {NOW}, ?7, {NOW})"
                ),
                params![id, plan_id, template, title, task, guidance, author],
            )?;
            Self::touch_plan(&tx, plan_id)?;
            tx.commit()?;
        }
        self.section(&id)?
            .ok_or_else(|| PlanError::NotFound(format!("section {id}")))
    }

    /// Updates the task and guidance a section is drafted for.
    pub fn set_brief(&self, section_id: &str, task: &str, guidance: &str) -> Result<()> {
        let task = required("task", task, MAX_TEXT)?;
        let guidance = bounded("guidance", guidance.trim(), MAX_TEXT)?;
        let changed = self.conn().execute(
            &format!(
                "UPDATE sections SET task = ?2, guidance = ?3, updated_at = {NOW} WHERE id = ?1"
            ),
            params![section_id, task, guidance],
        )?;
        if changed == 0 {
            return Err(PlanError::NotFound(format!("section {section_id}")));
        }
        Ok(())
    }

    pub fn sections(&self, plan_id: &str) -> Result<Vec<Section>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {SECTION_COLUMNS} FROM sections WHERE plan_id = ?1 ORDER BY ordinal"
        ))?;
        let rows = stmt.query_map([plan_id], section_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn section(&self, id: &str) -> Result<Option<Section>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {SECTION_COLUMNS} FROM sections WHERE id = ?1"),
                [id],
                section_from_row,
            )
            .optional()?)
    }

    /// Stores the next version. With `base`, the newest version must still be `base`
    /// (an edit made on an older version is refused, never silently applied).
    pub fn add_version(
        &self,
        section_id: &str,
        version: NewVersion,
        base: Option<u32>,
    ) -> Result<Version> {
        let text = bounded("text", &version.text, MAX_TEXT)?;
        let n = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let (current, plan_id) = Self::current(&tx, section_id)?;
            if let Some(base) = base
                && base != current
            {
                return Err(PlanError::Conflict(format!(
                    "this edit was made on version {base}, but the section is now at version {current}; reload and edit again"
                )));
            }
            let n = current + 1;
            let (kind, status) = match version.kind {
                VersionKind::Draft => ("draft", SectionStatus::Drafted),
                VersionKind::Edit => ("edit", SectionStatus::Edited),
            };
            let mode = version.mode.map(|m| match m {
                DraftMode::Llm => "llm",
                DraftMode::Extractive => "extractive",
            });
            tx.execute(
                &format!(
                    "INSERT INTO versions ({VERSION_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    section_id,
                    n,
                    kind,
                    text,
                    version.author,
                    version.draft_id,
                    mode,
                    version.incomplete as i64,
                    version.error,
                    serde_json::to_string(&version.sentences)?,
                    serde_json::to_string(&version.invalid_citations)?,
                    serde_json::to_string(&version.changes)?,
                ],
            )?;
            tx.execute(
                &format!(
                    "UPDATE sections SET current_version = ?2, status = ?3, accepted_version = NULL, \
                     updated_at = {NOW} WHERE id = ?1"
                ),
                params![section_id, n, status.as_str()],
            )?;
            Self::touch_plan(&tx, &plan_id)?;
            tx.commit()?;
            n
        };
        self.version(section_id, n)?
            .ok_or_else(|| PlanError::NotFound(format!("version {n} of section {section_id}")))
    }

    pub fn version(&self, section_id: &str, n: u32) -> Result<Option<Version>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {VERSION_COLUMNS} FROM versions WHERE section_id = ?1 AND n = ?2"),
                params![section_id, n],
                version_from_row,
            )
            .optional()?;
        row.map(decode_version).transpose()
    }

    /// Every version, oldest first.
    pub fn versions(&self, section_id: &str) -> Result<Vec<Version>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE section_id = ?1 ORDER BY n"
        ))?;
        let rows = stmt.query_map([section_id], version_from_row)?;
        rows.map(|r| decode_version(r?)).collect()
    }

    /// Accepts or rejects `version`, which must be the newest one.
    pub fn review(
        &self,
        section_id: &str,
        version: u32,
        action: ReviewAction,
        author: &str,
        note: &str,
    ) -> Result<Review> {
        let note = bounded("note", note.trim(), MAX_TEXT)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (current, plan_id) = Self::current(&tx, section_id)?;
        if current == 0 {
            return Err(PlanError::Invalid(
                "the section has no text to review yet; draft it first".to_string(),
            ));
        }
        if version != current {
            return Err(PlanError::Conflict(format!(
                "version {version} is not the newest (version {current}); review the newest version"
            )));
        }
        let (action_str, status, accepted) = match action {
            ReviewAction::Accept => ("accept", SectionStatus::Accepted, Some(version)),
            ReviewAction::Reject => ("reject", SectionStatus::Rejected, None),
        };
        tx.execute(
            &format!(
                "INSERT INTO reviews (section_id, version, action, author, created_at, note) \
                 VALUES (?1, ?2, ?3, ?4, {NOW}, ?5)"
            ),
            params![section_id, version, action_str, author, note],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            &format!(
                "UPDATE sections SET status = ?2, accepted_version = ?3, updated_at = {NOW} WHERE id = ?1"
            ),
            params![section_id, status.as_str(), accepted],
        )?;
        Self::touch_plan(&tx, &plan_id)?;
        tx.commit()?;
        drop(conn);
        self.reviews(section_id)?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| PlanError::NotFound(format!("review {id}")))
    }

    /// Every review, oldest first.
    pub fn reviews(&self, section_id: &str) -> Result<Vec<Review>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, section_id, version, action, author, created_at, note FROM reviews \
             WHERE section_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([section_id], |r| {
            let action: String = r.get(3)?;
            Ok(Review {
                id: r.get(0)?,
                section_id: r.get(1)?,
                version: r.get(2)?,
                action: if action == "accept" {
                    ReviewAction::Accept
                } else {
                    ReviewAction::Reject
                },
                author: r.get(4)?,
                created_at: r.get(5)?,
                note: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_comment(&self, section_id: &str, author: &str, text: &str) -> Result<Comment> {
        let text = required("comment", text, MAX_TEXT)?;
        let id = {
            let conn = self.conn();
            let inserted = conn.execute(
                &format!(
                    "INSERT INTO comments (section_id, version, author, text, created_at) \
                     SELECT id, current_version, ?2, ?3, {NOW} FROM sections WHERE id = ?1"
                ),
                params![section_id, author, text],
            )?;
            if inserted == 0 {
                return Err(PlanError::NotFound(format!("section {section_id}")));
            }
            conn.last_insert_rowid()
        };
        self.comments(section_id)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| PlanError::NotFound(format!("comment {id}")))
    }

    /// Every comment, oldest first.
    pub fn comments(&self, section_id: &str) -> Result<Vec<Comment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, section_id, version, author, text, created_at FROM comments \
             WHERE section_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([section_id], |r| {
            Ok(Comment {
                id: r.get(0)?,
                section_id: r.get(1)?,
                version: r.get(2)?,
                author: r.get(3)?,
                text: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(kind: VersionKind, text: &str) -> NewVersion {
        NewVersion {
            kind,
            text: text.to_string(),
            author: "maj. hale".to_string(),
            draft_id: Some("d1".to_string()),
            mode: Some(DraftMode::Extractive),
            incomplete: false,
            error: None,
            sentences: Vec::new(),
            invalid_citations: Vec::new(),
            changes: Vec::new(),
        }
    }

    #[test]
    fn versions_reviews_and_comments_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlanStore::open(&dir.path().join("plans.sqlite")).unwrap();
        let plan = store
            .create_plan(
                "OPORD 24-07 Iron Ridge",
                PlanKind::OperationOrder,
                "maj. hale",
            )
            .unwrap();
        let section = store
            .add_section(
                &plan.id,
                "opord-execution",
                "3. Execution",
                "Seize OBJ IRON",
                "",
                "maj. hale",
            )
            .unwrap();
        assert_eq!(section.status, SectionStatus::Empty);
        assert!(matches!(
            store.review(&section.id, 1, ReviewAction::Accept, "x", ""),
            Err(PlanError::Invalid(_))
        ));

        let v1 = store
            .add_version(&section.id, version(VersionKind::Draft, "draft [1]."), None)
            .unwrap();
        assert_eq!(v1.n, 1);
        let v2 = store
            .add_version(
                &section.id,
                version(VersionKind::Edit, "edited [1]."),
                Some(1),
            )
            .unwrap();
        assert_eq!(v2.n, 2);
        // An edit based on version 1 now conflicts instead of overwriting version 2.
        assert!(matches!(
            store.add_version(&section.id, version(VersionKind::Edit, "late"), Some(1)),
            Err(PlanError::Conflict(_))
        ));
        assert!(matches!(
            store.review(&section.id, 1, ReviewAction::Accept, "x", ""),
            Err(PlanError::Conflict(_))
        ));
        store
            .review(
                &section.id,
                2,
                ReviewAction::Accept,
                "col. ward",
                "approved",
            )
            .unwrap();
        let section = store.section(&section.id).unwrap().unwrap();
        assert_eq!(section.status, SectionStatus::Accepted);
        assert_eq!(section.accepted_version, Some(2));
        store
            .add_comment(&section.id, "col. ward", "Check fuel figures.")
            .unwrap();

        let versions = store.versions(&section.id).unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].text, "draft [1].");
        assert_eq!(versions[1].kind, VersionKind::Edit);
        assert_eq!(store.comments(&section.id).unwrap()[0].version, 2);
        let plan = store.plan(&plan.id).unwrap().unwrap();
        assert_eq!((plan.section_count, plan.accepted_count), (1, 1));

        // A new version withdraws the acceptance.
        store
            .add_version(&section.id, version(VersionKind::Edit, "again"), Some(2))
            .unwrap();
        let section = store.section(&section.id).unwrap().unwrap();
        assert_eq!(section.status, SectionStatus::Edited);
        assert_eq!(section.accepted_version, None);
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlanStore::open(&dir.path().join("plans.sqlite")).unwrap();
        assert!(matches!(
            store.create_plan("  ", PlanKind::WarningOrder, "a"),
            Err(PlanError::Invalid(_))
        ));
        assert!(matches!(
            store.add_section("p-missing", "t", "Title", "task", "", "a"),
            Err(PlanError::NotFound(_))
        ));
        assert!("coup".parse::<PlanKind>().is_err());
        let sql = "Robert'); DROP TABLE plans;--";
        let plan = store.create_plan(sql, PlanKind::WarningOrder, sql).unwrap();
        assert_eq!(store.plan(&plan.id).unwrap().unwrap().title, sql);
    }
}
