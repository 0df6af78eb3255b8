//! Background jobs of the custodian's library: uploads, replacements, deletions and
//! re-indexing run one at a time, first in first out, on one worker thread (indexing is CPU
//! work and must not block the async runtime). Searches and drafts go on meanwhile: the
//! indexer takes the catalog lock only for short reads and per-batch writes, and tantivy
//! and Qdrant Edge serve readers while a batch is written.
//!
//! Jobs live in `<data-dir>/jobs.sqlite`: kind, actor, files with their per-file result,
//! status (`queued`, `running`, `done`, `failed`, `interrupted`), progress and times. A job
//! found `queued` or `running` when the server starts was interrupted: it is marked
//! `interrupted`, noted as resumed (with the files it had left) and queued again before any
//! new job; indexing is incremental, so finished files are not redone.
//!
//! A file that was being indexed when the server stopped is counted against; a file that
//! stopped the server twice is moved to `<library>/.quarantine/` and reported as
//! `quarantined`, so a file that crashes the server cannot make it crash-loop. A job that
//! has been interrupted three times is failed instead of resumed again.
//!
//! Uploads and replacements run under the clearance of whoever submitted them: a document
//! may only supersede editions that person is cleared to see (and a reference that names
//! nothing they can see is refused the same way, so the refusal says nothing about what
//! exists above their access). What was superseded is in the job's audit entry.
//!
//! A re-index of everything is refused (409) while another one is queued or running.
//! `DOCTRINA_FAILPOINT=slow-job` makes the worker sleep before each uploaded file, so a
//! crash test can kill the server midway through a job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use doctrina_audit::AuditLog;
use doctrina_embed::Embedder;
use doctrina_index::indexer::FileOutcome as IndexOutcome;
use doctrina_index::{DocumentRecord, IndexReport, Indexer, Indexes, Progress};
use doctrina_ingest::Ingestor;
use doctrina_types::{Clearance, DocumentMeta, MarkingScheme};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{LibraryError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Upload,
    Replace,
    Delete,
    Reindex,
    ReindexAll,
    /// Compare both indexes with the catalog and repair what disagrees.
    Repair,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Replace => "replace",
            Self::Delete => "delete",
            Self::Reindex => "reindex",
            Self::ReindexAll => "reindex-all",
            Self::Repair => "repair",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Upload,
            Self::Replace,
            Self::Delete,
            Self::Reindex,
            Self::ReindexAll,
            Self::Repair,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    /// The server stopped while the job was queued or running; it is queued again.
    Interrupted,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "interrupted" => Self::Interrupted,
            // Anything unreadable counts as failed, never as done.
            _ => Self::Failed,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one file of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOutcome {
    Pending,
    /// Being parsed or indexed right now; a file found running after a restart was the
    /// one the server stopped on.
    Running,
    Indexed,
    Unchanged,
    Failed,
    Removed,
    Skipped,
    Repaired,
    /// Moved out of the library after interrupting the server twice.
    Quarantined,
}

impl FileOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Indexed => "indexed",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
            Self::Removed => "removed",
            Self::Skipped => "skipped",
            Self::Repaired => "repaired",
            Self::Quarantined => "quarantined",
        }
    }

    fn finished(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

impl std::fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Templates compare outcomes with literals (`f.outcome == "removed"`).
impl PartialEq<&str> for FileOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One file of a job and what became of it, with the reason if it failed or was skipped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileResult {
    /// The name shown to people (an upload's original name; never used as a path).
    pub name: String,
    /// Where the file lives (inside the library for uploads).
    pub path: String,
    pub doc_id: Option<String>,
    pub outcome: FileOutcome,
    pub error: Option<String>,
    /// Times the server stopped while this file was being indexed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interruptions: u32,
    /// The file's marking (its document's, or what its metadata states if it never
    /// indexed): who may see this line. `None`: unknown, shown only to people cleared for
    /// everything.
    #[serde(default)]
    pub marking: Option<String>,
    /// The document whose id this file tried to take, if that is why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts_with: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl FileResult {
    pub fn pending(name: String, path: String, doc_id: Option<String>) -> Self {
        Self {
            name,
            path,
            doc_id,
            outcome: FileOutcome::Pending,
            error: None,
            interruptions: 0,
            marking: None,
            conflicts_with: None,
        }
    }

    fn finished(&self) -> bool {
        self.outcome.finished()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobProgress {
    pub files_total: usize,
    pub files_done: usize,
    pub files_failed: usize,
    pub passages_embedded: usize,
    /// 0..=100, by files.
    pub percent: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub actor: String,
    /// The document a replace, delete or re-index is about.
    pub target: Option<String>,
    pub status: JobStatus,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// True when the job was interrupted (the server stopped) and resumed on restart.
    pub resumed: bool,
    pub resume_note: Option<String>,
    /// Times the server stopped while this job was queued or running.
    pub interruptions: u32,
    pub progress: JobProgress,
    pub files: Vec<FileResult>,
    /// The clearance of whoever submitted the job (uploads and replacements run under it).
    #[serde(skip)]
    pub clearance: Option<Clearance>,
    /// Result lines withheld from the person viewing the job ([`Job::redacted`]).
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub hidden_files: usize,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

impl Job {
    pub fn finished(&self) -> bool {
        matches!(self.status, JobStatus::Done | JobStatus::Failed)
    }

    /// The job as someone may see it: result lines they may not see are withheld (counted
    /// in `hidden_files`, never named), a failure naming a document they may not see does
    /// not name it, and notes that list file names lose the list when any is withheld.
    pub fn redacted(
        mut self,
        line_visible: impl Fn(&FileResult) -> bool,
        doc_visible: impl Fn(&str) -> bool,
    ) -> Self {
        let before = self.files.len();
        self.files.retain(|f| line_visible(f));
        self.hidden_files = before - self.files.len();
        for f in &mut self.files {
            if let Some(other) = f.conflicts_with.clone()
                && !doc_visible(&other)
            {
                f.error = Some(format!(
                    "document id '{other}' is already used by another document"
                ));
            }
        }
        if self.hidden_files > 0
            && let Some(note) = &mut self.resume_note
        {
            for marker in [" files left: ", "; quarantined: "] {
                if let Some(at) = note.find(marker) {
                    note.truncate(at + marker.len() - 2);
                }
            }
        }
        self
    }
}

/// Interruptions after which a file is quarantined, and after which a job is not resumed.
const QUARANTINE_AFTER: u32 = 2;
const RESUME_AT_MOST: u32 = 3;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    target TEXT,
    status TEXT NOT NULL,
    error TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    files_total INTEGER NOT NULL DEFAULT 0,
    files_done INTEGER NOT NULL DEFAULT 0,
    passages_embedded INTEGER NOT NULL DEFAULT 0,
    resumed INTEGER NOT NULL DEFAULT 0,
    resume_note TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at TEXT,
    finished_at TEXT,
    interruptions INTEGER NOT NULL DEFAULT 0,
    clearance TEXT
);
";

/// Columns added after the first release (added on open).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("interruptions", "INTEGER NOT NULL DEFAULT 0"),
    ("clearance", "TEXT"),
];

const COLUMNS: &str = "id, kind, actor, target, status, error, files, files_total, files_done, \
    passages_embedded, resumed, resume_note, created_at, started_at, finished_at, interruptions, \
    clearance";

fn store_error(e: impl std::fmt::Display) -> LibraryError {
    LibraryError::Store(format!("job store: {e}"))
}

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let files: String = row.get(6)?;
    let files: Vec<FileResult> = serde_json::from_str(&files).unwrap_or_default();
    let kind: String = row.get(1)?;
    let status: String = row.get(4)?;
    let clearance: Option<String> = row.get(16)?;
    let files_total: i64 = row.get(7)?;
    let files_done: i64 = row.get(8)?;
    let files_total = (files_total as usize).max(files.len());
    let files_done = files_done as usize;
    let percent = (files_done.min(files_total) * 100)
        .checked_div(files_total)
        .unwrap_or(0) as u32;
    Ok(Job {
        id: row.get(0)?,
        // A kind this version does not know cannot be run: it is failed when it would run.
        kind: JobKind::parse(&kind).unwrap_or(JobKind::Repair),
        actor: row.get(2)?,
        target: row.get(3)?,
        status: if JobKind::parse(&kind).is_some() {
            JobStatus::parse(&status)
        } else {
            JobStatus::Failed
        },
        error: row.get(5)?,
        progress: JobProgress {
            files_total,
            files_done,
            files_failed: files
                .iter()
                .filter(|f| matches!(f.outcome, FileOutcome::Failed | FileOutcome::Quarantined))
                .count(),
            passages_embedded: row.get::<_, i64>(9)? as usize,
            percent,
        },
        files,
        resumed: row.get::<_, i64>(10)? != 0,
        resume_note: row.get(11)?,
        created_at: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
        interruptions: row.get::<_, i64>(15)? as u32,
        // Unreadable: no clearance, so nothing the job would need one for is allowed.
        clearance: clearance.and_then(|c| serde_json::from_str(&c).ok()),
        hidden_files: 0,
    })
}

/// `jobs.sqlite`.
pub struct JobStore {
    conn: Mutex<Connection>,
}

impl JobStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        let existing: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('jobs')")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(store_error)?;
        for (column, definition) in ADDED_COLUMNS {
            if !existing.iter().any(|c| c == column) {
                conn.execute_batch(&format!(
                    "ALTER TABLE jobs ADD COLUMN {column} {definition}"
                ))
                .map_err(store_error)?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create(
        &self,
        kind: JobKind,
        actor: &str,
        clearance: Option<&Clearance>,
        target: Option<&str>,
        files: &[FileResult],
    ) -> Result<i64> {
        let conn = self.conn();
        let clearance = clearance
            .map(serde_json::to_string)
            .transpose()
            .map_err(store_error)?;
        conn.execute(
            "INSERT INTO jobs (kind, actor, target, status, files, files_total, clearance) \
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6)",
            params![
                kind.as_str(),
                actor,
                target,
                serde_json::to_string(files).map_err(store_error)?,
                files.len() as i64,
                clearance,
            ],
        )
        .map_err(store_error)?;
        Ok(conn.last_insert_rowid())
    }

    pub fn get(&self, id: i64) -> Result<Option<Job>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
            .map_err(store_error)
    }

    /// The newest jobs first.
    pub fn list(&self, limit: usize) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
            ))
            .map_err(store_error)?;
        let rows = stmt
            .query_map([limit as i64], job_from_row)
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(store_error)
    }

    fn unfinished(&self) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running', 'interrupted') \
                 ORDER BY id"
            ))
            .map_err(store_error)?;
        let rows = stmt.query_map([], job_from_row).map_err(store_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(store_error)
    }

    fn set_status(&self, id: i64, status: JobStatus, error: Option<&str>) -> Result<()> {
        let stamp = match status {
            JobStatus::Running => {
                ", started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), finished_at = NULL"
            }
            JobStatus::Done | JobStatus::Failed => {
                ", finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            }
            _ => "",
        };
        self.conn()
            .execute(
                &format!("UPDATE jobs SET status = ?2, error = ?3{stamp} WHERE id = ?1"),
                params![id, status.as_str(), error],
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// Records an interruption: the note, the files as they stand after the count
    /// (quarantined ones included), and the job queued again (`interrupted`) or failed.
    fn mark_interrupted(
        &self,
        id: i64,
        note: &str,
        files: &[FileResult],
        give_up: Option<&str>,
    ) -> Result<()> {
        let status = if give_up.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Interrupted
        };
        self.conn()
            .execute(
                "UPDATE jobs SET status = ?2, resumed = 1, resume_note = ?3, files = ?4, \
                 interruptions = interruptions + 1, error = ?5, \
                 finished_at = CASE WHEN ?2 = 'failed' \
                     THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE finished_at END \
                 WHERE id = ?1",
                params![
                    id,
                    status.as_str(),
                    note,
                    serde_json::to_string(files).map_err(store_error)?,
                    give_up
                ],
            )
            .map_err(store_error)?;
        Ok(())
    }

    fn save_progress(
        &self,
        id: i64,
        files: &[FileResult],
        total: usize,
        done: usize,
        embedded: usize,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET files = ?2, files_total = ?3, files_done = ?4, passages_embedded = ?5 \
                 WHERE id = ?1",
                params![
                    id,
                    serde_json::to_string(files).map_err(store_error)?,
                    total as i64,
                    done as i64,
                    embedded as i64
                ],
            )
            .map_err(store_error)?;
        Ok(())
    }

    /// An unfinished job of this kind, if any.
    fn active(&self, kind: JobKind) -> Result<Option<(i64, String)>> {
        self.conn()
            .query_row(
                "SELECT id, status FROM jobs WHERE kind = ?1 \
                 AND status IN ('queued', 'running', 'interrupted') ORDER BY id LIMIT 1",
                [kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(store_error)
    }
}

/// What the worker needs to run jobs.
pub struct Worker {
    pub store: Arc<JobStore>,
    pub indexes: Arc<Indexes>,
    pub embedder: Arc<dyn Embedder>,
    pub ingestor: Ingestor,
    pub audit: Arc<AuditLog>,
    /// The library directory, canonical.
    pub library_dir: PathBuf,
}

/// The job queue: submit jobs, read them back.
pub struct Jobs {
    pub store: Arc<JobStore>,
    queue: Mutex<Option<mpsc::Sender<i64>>>,
}

/// Moves a library file and its sidecar out of the way (into `<library>/.quarantine/`,
/// which indexing never reads) and says where it went.
fn quarantine(library_dir: &Path, path: &Path) -> std::result::Result<PathBuf, String> {
    let in_library = std::fs::canonicalize(path)
        .map(|p| p.starts_with(library_dir) && p != library_dir)
        .unwrap_or(false);
    if !in_library {
        return Err("it is outside the library, so it was left in place".to_string());
    }
    let dir = library_dir.join(".quarantine");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let target = dir.join(format!("{stamp}-{name}"));
    std::fs::rename(path, &target).map_err(|e| e.to_string())?;
    let sidecar = doctrina_ingest::sidecar_path(path);
    if sidecar.exists() {
        let _ = std::fs::rename(&sidecar, doctrina_ingest::sidecar_path(&target));
    }
    Ok(target)
}

/// Counts an interruption against a job found unfinished on start: a file it was indexing
/// (`running`) gets one more interruption and, at [`QUARANTINE_AFTER`], is moved out of the
/// library and reported `quarantined`; the job gets its resume note, and a reason to give up
/// once it has been interrupted [`RESUME_AT_MOST`] times.
fn account_interruption(job: &mut Job, library_dir: &Path) -> (String, Option<String>) {
    let mut quarantined = Vec::new();
    for file in job.files.iter_mut() {
        if file.outcome != FileOutcome::Running {
            continue;
        }
        file.interruptions += 1;
        file.outcome = FileOutcome::Pending;
        if file.interruptions >= QUARANTINE_AFTER {
            file.outcome = FileOutcome::Quarantined;
            file.error = Some(match quarantine(library_dir, Path::new(&file.path)) {
                Ok(to) => format!(
                    "the server stopped {} times while indexing this file; it was moved to {} and will not be indexed",
                    file.interruptions,
                    to.display()
                ),
                Err(why) => format!(
                    "the server stopped {} times while indexing this file; it is skipped ({why})",
                    file.interruptions
                ),
            });
            quarantined.push(file.name.clone());
            tracing::error!(job = job.id, file = %file.name, "file quarantined after stopping the server twice");
        }
    }
    let left: Vec<&str> = job
        .files
        .iter()
        .filter(|f| !f.finished())
        .map(|f| f.name.as_str())
        .collect();
    let mut note = match job.status {
        JobStatus::Queued => {
            "resumed after an interruption: the server stopped before the job started".to_string()
        }
        _ if left.is_empty() => {
            "resumed after an interruption: the server stopped while the job ran".to_string()
        }
        _ => format!(
            "resumed after an interruption: the server stopped while the job ran, with {} of {} files left: {}",
            left.len(),
            job.files.len(),
            left.join(", ")
        ),
    };
    if !quarantined.is_empty() {
        note.push_str(&format!("; quarantined: {}", quarantined.join(", ")));
    }
    let give_up = (job.interruptions + 1 >= RESUME_AT_MOST).then(|| {
        format!(
            "the server stopped {} times during this job; it is not resumed again (run it again once the cause is fixed)",
            job.interruptions + 1
        )
    });
    (note, give_up)
}

impl Jobs {
    pub fn new(store: Arc<JobStore>) -> Self {
        Self {
            store,
            queue: Mutex::new(None),
        }
    }

    /// Starts the worker thread. Interrupted jobs are counted, their files checked for
    /// quarantine, noted as resumed and queued first (or failed after too many tries).
    pub fn start(&self, worker: Worker) -> Result<()> {
        let (tx, rx) = mpsc::channel::<i64>();
        for mut job in self.store.unfinished()? {
            let (note, give_up) = account_interruption(&mut job, &worker.library_dir);
            tracing::warn!(job = job.id, kind = %job.kind, gave_up = give_up.is_some(), "an interrupted job");
            self.store
                .mark_interrupted(job.id, &note, &job.files, give_up.as_deref())?;
            if give_up.is_none() {
                let _ = tx.send(job.id);
            }
        }
        *self.queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        std::thread::Builder::new()
            .name("doctrina-jobs".to_string())
            .spawn(move || {
                for id in rx {
                    // A panic (a bug, or a store failing underneath) fails that job, not
                    // the worker: later jobs still run.
                    let ran =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(id)));
                    if ran.is_err() {
                        tracing::error!(job = id, "job panicked");
                        let _ = worker.store.set_status(
                            id,
                            JobStatus::Failed,
                            Some("internal error while running the job"),
                        );
                    }
                }
            })
            .map_err(|e| LibraryError::Stopped(format!("cannot start the job worker: {e}")))?;
        Ok(())
    }

    /// Records a job and queues it. A re-index of everything is refused while another is
    /// queued or running. `clearance` is the submitter's: uploads and replacements run
    /// under it.
    pub fn submit(
        &self,
        kind: JobKind,
        actor: &str,
        clearance: Option<&Clearance>,
        target: Option<&str>,
        files: &[FileResult],
    ) -> Result<Job> {
        // The queue lock also serialises the check-then-insert below.
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = queue.as_ref() else {
            return Err(LibraryError::Stopped(
                "the job worker is not running".to_string(),
            ));
        };
        if kind == JobKind::ReindexAll
            && let Some((id, status)) = self.store.active(kind)?
        {
            return Err(LibraryError::Conflict(format!(
                "a re-index of all documents is already {status} (job {id}); wait for it to finish"
            )));
        }
        let id = self.store.create(kind, actor, clearance, target, files)?;
        tx.send(id)
            .map_err(|_| LibraryError::Stopped("the job worker stopped".to_string()))?;
        self.store
            .get(id)?
            .ok_or_else(|| LibraryError::NotFound(format!("job {id}")))
    }
}

/// Sleeps before each uploaded file when `DOCTRINA_FAILPOINT=slow-job` (crash tests).
fn slow_job_failpoint() {
    if std::env::var_os("DOCTRINA_FAILPOINT").is_some_and(|v| v == "slow-job") {
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
}

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Per-file results and counters of the running job, saved to the store as they change.
struct Tracker<'a> {
    store: &'a JobStore,
    job: i64,
    files: Mutex<FileList>,
    /// When progress was last saved: a re-index of everything saves at most every
    /// [`SAVE_EVERY`] (its file list can be long); other jobs save every change.
    last_save: Mutex<Instant>,
    /// Take the total from the indexer (re-index all) instead of the job's file list.
    count_found: bool,
    total: AtomicUsize,
    embedded: AtomicUsize,
}

const SAVE_EVERY: Duration = Duration::from_millis(250);

/// A job's files with an index by path.
struct FileList {
    list: Vec<FileResult>,
    by_path: HashMap<String, usize>,
}

impl std::ops::Deref for FileList {
    type Target = Vec<FileResult>;
    fn deref(&self) -> &Self::Target {
        &self.list
    }
}

impl std::ops::DerefMut for FileList {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.list
    }
}

impl<'a> Tracker<'a> {
    fn new(store: &'a JobStore, job: &Job, count_found: bool) -> Self {
        let by_path = job
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        Self {
            store,
            job: job.id,
            total: AtomicUsize::new(job.files.len()),
            files: Mutex::new(FileList {
                list: job.files.clone(),
                by_path,
            }),
            last_save: Mutex::new(Instant::now()),
            count_found,
            embedded: AtomicUsize::new(job.progress.passages_embedded),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, FileList> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves unless throttled (a re-index of everything, saved less than
    /// [`SAVE_EVERY`] ago); `force` always saves.
    fn save_throttled(&self, files: &[FileResult], force: bool) {
        if self.count_found && !force {
            let mut last = self.last_save.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < SAVE_EVERY {
                return;
            }
            *last = Instant::now();
        }
        self.save(files);
    }

    fn save(&self, files: &[FileResult]) {
        let done = files.iter().filter(|f| f.finished()).count();
        let total = self.total.load(Ordering::Relaxed).max(files.len());
        if let Err(e) = self.store.save_progress(
            self.job,
            files,
            total,
            done,
            self.embedded.load(Ordering::Relaxed),
        ) {
            tracing::error!(job = self.job, error = %e, "job progress not saved");
        }
    }

    /// The index of a file's entry (found by path, added if new).
    fn entry(files: &mut FileList, path: &str) -> usize {
        let key = canonical(Path::new(path));
        if let Some(i) = files.by_path.get(&key).or_else(|| files.by_path.get(path)) {
            return *i;
        }
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string());
        files
            .list
            .push(FileResult::pending(name, key.clone(), None));
        let i = files.list.len() - 1;
        files.by_path.insert(key, i);
        i
    }

    /// Sets a file's outcome. An `indexed` file stays `indexed` when a resumed run finds it
    /// unchanged. A file marked running is saved at once: if the server stops now, that is
    /// the file it stopped on.
    fn set(&self, path: &str, outcome: FileOutcome, error: Option<String>) {
        let mut files = self.files();
        let index = Self::entry(&mut files, path);
        let entry = &mut files[index];
        if entry.outcome == FileOutcome::Quarantined {
            return;
        }
        if !(entry.outcome == FileOutcome::Indexed && outcome == FileOutcome::Unchanged) {
            entry.outcome = outcome;
        }
        if error.is_some() {
            entry.error = error;
        }
        self.save_throttled(&files, outcome == FileOutcome::Running);
    }

    fn failed(&self, path: &str, error: String, conflicts_with: Option<String>) {
        {
            let mut files = self.files();
            let index = Self::entry(&mut files, path);
            files[index].conflicts_with = conflicts_with;
        }
        self.set(path, FileOutcome::Failed, Some(error));
    }
}

impl Progress for Tracker<'_> {
    fn files_found(&self, total: usize) {
        if self.count_found {
            self.total.store(total, Ordering::Relaxed);
            self.save(&self.files());
        }
    }

    fn file_done(&self, path: &Path, outcome: IndexOutcome) {
        let outcome = match outcome {
            IndexOutcome::Indexed => FileOutcome::Indexed,
            IndexOutcome::Unchanged => FileOutcome::Unchanged,
            IndexOutcome::Failed => FileOutcome::Failed,
        };
        self.set(&path.to_string_lossy(), outcome, None);
    }

    fn passages_embedded(&self, count: usize) {
        self.embedded.fetch_add(count, Ordering::Relaxed);
        self.save_throttled(&self.files(), !self.count_found);
    }
}

/// The rule that a document may only supersede editions its uploader is cleared to see:
/// each reference in its `supersedes` must name at least one document, all of them
/// permitted. A reference naming nothing visible is refused exactly like one naming
/// something hidden, so the refusal reveals nothing. Approved supersessions are collected
/// for the audit log.
struct SupersedeGate<'a> {
    scheme: &'a MarkingScheme,
    clearance: Option<&'a Clearance>,
    approved: Mutex<Vec<serde_json::Value>>,
}

impl SupersedeGate<'_> {
    fn check(
        &self,
        meta: &DocumentMeta,
        docs: &[DocumentRecord],
    ) -> std::result::Result<(), String> {
        for (reference, named) in doctrina_index::catalog::superseded_targets(meta, docs) {
            let permitted = |d: &&DocumentRecord| {
                self.clearance
                    .is_some_and(|c| self.scheme.permits(c, &d.meta.marking))
            };
            if named.is_empty() || !named.iter().all(permitted) {
                return Err(format!(
                    "supersedes '{reference}': a document may only supersede editions you are cleared to see, and this names none you can see; remove the reference or ask a custodian cleared for it"
                ));
            }
            self.approved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(serde_json::json!({
                    "document": meta.id,
                    "supersedes": named.iter().map(|d| d.meta.id.clone()).collect::<Vec<_>>(),
                }));
        }
        Ok(())
    }
}

impl Worker {
    fn run(&self, id: i64) {
        let job = match self.store.get(id) {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(job = id, error = %e, "job not readable");
                return;
            }
        };
        if job.status == JobStatus::Failed {
            return; // an unknown kind, refused when read
        }
        if let Err(e) = self.store.set_status(id, JobStatus::Running, None) {
            tracing::error!(job = id, error = %e, "job not started");
            return;
        }
        let kind = job.kind;
        tracing::info!(job = id, kind = kind.as_str(), "job started");
        let tracker = Tracker::new(&self.store, &job, kind == JobKind::ReindexAll);
        let gate = SupersedeGate {
            scheme: &self.indexes.scheme,
            clearance: job.clearance.as_ref(),
            approved: Mutex::new(Vec::new()),
        };
        let result = match kind {
            JobKind::Upload => self.index_files(&tracker, &gate),
            JobKind::Replace => {
                self.replace(&tracker, &gate, job.target.as_deref().unwrap_or_default())
            }
            JobKind::Delete => self.delete(&tracker, job.target.as_deref().unwrap_or_default()),
            JobKind::Reindex => {
                self.reindex_one(&tracker, job.target.as_deref().unwrap_or_default())
            }
            JobKind::ReindexAll => self.reindex_all(&tracker),
            JobKind::Repair => self.repair(&tracker),
        };
        self.fill_in(&tracker);
        let files = tracker.files().list.clone();
        let failed = files
            .iter()
            .filter(|f| matches!(f.outcome, FileOutcome::Failed | FileOutcome::Quarantined))
            .count();
        let error = match result {
            Err(e) => Some(e),
            Ok(()) if failed > 0 => Some(format!("{failed} of {} files failed", files.len())),
            Ok(()) => None,
        };
        let status = if error.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Done
        };
        if let Err(e) = self.store.set_status(id, status, error.as_deref()) {
            tracing::error!(job = id, error = %e, "job status not saved");
        }
        tracing::info!(job = id, %status, error = ?error, "job finished");
        let outcome = match &error {
            None => "ok".to_string(),
            Some(e) => format!("error: {e}"),
        };
        let approved = gate
            .approved
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let detail = serde_json::json!({
            "job": id,
            "resumed": job.resumed,
            "files": files.iter().map(|f| serde_json::json!({
                "name": f.name, "doc_id": f.doc_id, "outcome": f.outcome, "error": f.error,
            })).collect::<Vec<_>>(),
            "superseded": approved,
        });
        let event = doctrina_audit::Event::new(
            &job.actor,
            &format!("{}-job", kind.as_str()),
            job.target.as_deref().unwrap_or(""),
            &outcome,
            detail,
        );
        if let Err(e) = self.audit.append(&event) {
            tracing::error!(job = id, error = %e, "job outcome not audited");
        }
    }

    fn indexer_run(
        &self,
        roots: &[PathBuf],
        tracker: &Tracker<'_>,
        gate: Option<&SupersedeGate<'_>>,
    ) -> std::result::Result<IndexReport, String> {
        let admission = |meta: &DocumentMeta, docs: &[DocumentRecord]| match gate {
            Some(gate) => gate.check(meta, docs),
            None => Ok(()),
        };
        Indexer::new(&self.indexes, &self.ingestor, self.embedder.as_ref())
            .admit(&admission)
            .run(roots, tracker)
            .map_err(|e| e.to_string())
    }

    fn apply_failures(&self, report: &IndexReport, tracker: &Tracker<'_>) {
        for failed in &report.failed {
            tracker.failed(
                &failed.path,
                failed.error.clone(),
                failed.conflicts_with.clone(),
            );
        }
    }

    /// Indexes the job's files that are not finished yet, one at a time, so progress and
    /// a crash both land between files: each is marked running (and saved) first, so a
    /// file the server stops on is known.
    fn index_files(
        &self,
        tracker: &Tracker<'_>,
        gate: &SupersedeGate<'_>,
    ) -> std::result::Result<(), String> {
        let pending: Vec<String> = tracker
            .files()
            .iter()
            .filter(|f| !f.finished())
            .map(|f| f.path.clone())
            .collect();
        for path in pending {
            slow_job_failpoint();
            if !Path::new(&path).is_file() {
                tracker.set(
                    &path,
                    FileOutcome::Failed,
                    Some("the uploaded file is missing".to_string()),
                );
                continue;
            }
            tracker.set(&path, FileOutcome::Running, None);
            match self.indexer_run(&[PathBuf::from(&path)], tracker, Some(gate)) {
                Ok(report) => self.apply_failures(&report, tracker),
                Err(e) => tracker.set(&path, FileOutcome::Failed, Some(e)),
            }
        }
        Ok(())
    }

    fn replace(
        &self,
        tracker: &Tracker<'_>,
        gate: &SupersedeGate<'_>,
        old_id: &str,
    ) -> std::result::Result<(), String> {
        self.index_files(tracker, gate)?;
        self.fill_in(tracker);
        let new_id = tracker.files().first().and_then(|f| {
            matches!(f.outcome, FileOutcome::Indexed | FileOutcome::Unchanged)
                .then(|| f.doc_id.clone())
                .flatten()
        });
        let Some(new_id) = new_id else {
            return Ok(()); // the file's failure is reported with it
        };
        let superseded = self.indexes.superseded().map_err(|e| e.to_string())?;
        match superseded.get(old_id) {
            Some(by) if by.id == new_id => Ok(()),
            _ => Err(format!(
                "the new edition {new_id} is indexed but does not supersede {old_id}"
            )),
        }
    }

    fn delete(&self, tracker: &Tracker<'_>, id: &str) -> std::result::Result<(), String> {
        let record = self
            .indexes
            .catalog()
            .document(id)
            .map_err(|e| e.to_string())?;
        let path = tracker
            .files()
            .first()
            .map(|f| f.path.clone())
            .or_else(|| record.as_ref().map(|r| r.meta.source_path.clone()))
            .unwrap_or_default();
        if let Some(record) = &record {
            let mut files = tracker.files();
            let i = Tracker::entry(&mut files, &path);
            files[i].marking = Some(record.meta.marking.banner());
            files[i].doc_id = Some(id.to_string());
        }
        if record.is_some() {
            self.indexes
                .remove_documents(&[id.to_string()])
                .map_err(|e| e.to_string())?;
            self.indexes.flush().map_err(|e| e.to_string())?;
        }
        let file = Path::new(&path);
        let in_library = std::fs::canonicalize(file)
            .map(|p| p.starts_with(&self.library_dir) && p != self.library_dir)
            .unwrap_or(false);
        if in_library {
            let sidecar = doctrina_ingest::sidecar_path(file);
            for f in [file.to_path_buf(), sidecar] {
                if let Err(e) = std::fs::remove_file(&f)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(format!("removed from the indexes, but the file stays: {e}"));
                }
            }
        }
        tracker.set(&path, FileOutcome::Removed, None);
        Ok(())
    }

    fn reindex_one(&self, tracker: &Tracker<'_>, id: &str) -> std::result::Result<(), String> {
        let path = tracker
            .files()
            .first()
            .map(|f| f.path.clone())
            .unwrap_or_default();
        let file = Path::new(&path);
        if !file.is_file() {
            tracker.set(
                &path,
                FileOutcome::Failed,
                Some("the source file is gone".to_string()),
            );
            return Ok(());
        }
        if let Some(reason) = self.id_would_change(file, id) {
            tracker.set(&path, FileOutcome::Skipped, Some(reason));
            return Err(format!("document {id} was not re-indexed"));
        }
        tracker.set(&path, FileOutcome::Running, None);
        match self.indexer_run(&[file.to_path_buf()], tracker, None) {
            Ok(report) => self.apply_failures(&report, tracker),
            Err(e) => tracker.set(&path, FileOutcome::Failed, Some(e)),
        }
        Ok(())
    }

    /// Indexing a single file derives the default id from its name; a document first
    /// indexed from a nested folder had its id from the relative path, and would be
    /// renamed. Such documents are left to `doctrina index DIR`.
    fn id_would_change(&self, file: &Path, id: &str) -> Option<String> {
        let hint = doctrina_ingest::id_from_path(Path::new(file.file_name()?));
        if hint == id {
            return None;
        }
        match self.ingestor.parse_file(file, &hint) {
            Ok(parsed) if parsed.meta.id == id => None,
            Ok(_) => Some(format!(
                "{id} was indexed from a folder outside the library; re-index that folder with `doctrina index`"
            )),
            Err(_) => None, // the run reports the parse error against the file
        }
    }

    /// `Indexes::check(repair)`, in the queue like any other change so it never races a
    /// write; each document it repaired or removed, and each orphan, is a result line.
    /// Fails if the indexes still disagree with the catalog afterwards.
    fn repair(&self, tracker: &Tracker<'_>) -> std::result::Result<(), String> {
        let report = self
            .indexes
            .check(Some(self.embedder.as_ref()), true)
            .map_err(|e| e.to_string())?;
        for id in &report.repaired {
            tracker.set(id, FileOutcome::Repaired, None);
        }
        for id in &report.removed {
            tracker.set(id, FileOutcome::Removed, None);
        }
        for id in &report.orphans {
            tracker.set(
                id,
                FileOutcome::Removed,
                Some("orphaned index entries".to_string()),
            );
        }
        // Result lines of a repair name documents, not files: their markings decide who
        // sees each line.
        {
            let catalog = self.indexes.catalog();
            let mut files = tracker.files();
            for f in files.iter_mut() {
                if let Ok(Some(d)) = catalog.document(&f.name) {
                    f.doc_id = Some(d.meta.id.clone());
                    f.marking = Some(d.meta.marking.banner());
                }
            }
        }
        let after = self.indexes.check(None, false).map_err(|e| e.to_string())?;
        if after.consistent {
            Ok(())
        } else {
            Err(format!(
                "still inconsistent after repair: catalog {} · keyword {} · vectors {} passages",
                after.catalog_passages, after.keyword_passages, after.vector_passages
            ))
        }
    }

    /// Re-indexes the library folder and every document's source file outside it.
    fn reindex_all(&self, tracker: &Tracker<'_>) -> std::result::Result<(), String> {
        let documents = self
            .indexes
            .catalog()
            .documents()
            .map_err(|e| e.to_string())?;
        let mut roots = vec![self.library_dir.clone()];
        for doc in documents {
            let path = PathBuf::from(&doc.meta.source_path);
            if path.starts_with(&self.library_dir) || !path.is_file() {
                continue;
            }
            if let Some(reason) = self.id_would_change(&path, &doc.meta.id) {
                tracker.set(&doc.meta.source_path, FileOutcome::Skipped, Some(reason));
                continue;
            }
            roots.push(path);
        }
        roots.sort();
        roots.dedup();
        let report = self.indexer_run(&roots, tracker, None)?;
        self.apply_failures(&report, tracker);
        Ok(())
    }

    /// Fills in each file's document id and marking: from the catalog, or, for a file that
    /// never indexed, what its metadata states (unknown stays unknown).
    fn fill_in(&self, tracker: &Tracker<'_>) {
        let documents: HashMap<String, (String, String)> = self
            .indexes
            .catalog()
            .documents()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                (
                    d.meta.source_path.clone(),
                    (d.meta.id.clone(), d.meta.marking.banner()),
                )
            })
            .collect();
        let mut files = tracker.files();
        for f in files.iter_mut() {
            if let Some((id, marking)) = documents.get(&f.path) {
                f.doc_id = Some(id.clone());
                f.marking = Some(marking.clone());
            } else if f.marking.is_none() && Path::new(&f.path).is_file() {
                f.marking = self
                    .ingestor
                    .stated_marking(Path::new(&f.path))
                    .map(|m| m.banner());
            }
        }
        tracker.save(&files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_with(files: Vec<FileResult>, interruptions: u32) -> Job {
        Job {
            id: 1,
            kind: JobKind::Upload,
            actor: "c".into(),
            target: None,
            status: JobStatus::Running,
            error: None,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            resumed: false,
            resume_note: None,
            interruptions,
            progress: JobProgress {
                files_total: files.len(),
                files_done: 0,
                files_failed: 0,
                passages_embedded: 0,
                percent: 0,
            },
            files,
            clearance: None,
            hidden_files: 0,
        }
    }

    /// Issue 12: a job interrupted twice by the same file quarantines it, so a file that
    /// takes the server down cannot make it crash-loop.
    #[test]
    fn a_file_that_stops_the_server_twice_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let library = std::fs::canonicalize(dir.path()).unwrap();
        let bad = library.join("bad.pdf");
        std::fs::write(&bad, b"%PDF-1.4").unwrap();
        std::fs::write(library.join("bad.pdf.meta.yaml"), "marking: CUI\n").unwrap();
        let mut file = FileResult::pending("bad.pdf".into(), bad.display().to_string(), None);
        file.outcome = FileOutcome::Running;
        let other = FileResult::pending(
            "next.md".into(),
            library.join("next.md").display().to_string(),
            None,
        );
        let mut job = job_with(vec![file, other], 0);

        // First interruption: counted, the file is tried again.
        let (note, give_up) = account_interruption(&mut job, &library);
        assert!(give_up.is_none());
        assert_eq!(job.files[0].outcome, FileOutcome::Pending);
        assert_eq!(job.files[0].interruptions, 1);
        assert!(note.contains("bad.pdf"), "{note}");
        assert!(bad.exists());

        // Second: quarantined, moved out of the library (and out of every later index run).
        job.files[0].outcome = FileOutcome::Running;
        job.interruptions = 1;
        let (note, give_up) = account_interruption(&mut job, &library);
        assert!(give_up.is_none(), "the job goes on with its other files");
        assert_eq!(job.files[0].outcome, FileOutcome::Quarantined);
        assert!(
            job.files[0]
                .error
                .as_deref()
                .unwrap()
                .contains("stopped 2 times")
        );
        assert!(note.contains("quarantined: bad.pdf"), "{note}");
        assert!(!bad.exists());
        let moved: Vec<_> = std::fs::read_dir(library.join(".quarantine"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(moved.len(), 2, "the file and its sidecar: {moved:?}");
        assert_eq!(job.files[1].outcome, FileOutcome::Pending);

        // A job interrupted three times is not resumed again.
        job.interruptions = 2;
        let (_, give_up) = account_interruption(&mut job, &library);
        assert!(give_up.unwrap().contains("not resumed again"));
    }

    #[test]
    fn redaction_counts_what_it_withholds() {
        let mut secret =
            FileResult::pending("raid.md".into(), "/l/raid.md".into(), Some("raid".into()));
        secret.marking = Some("SECRET".into());
        let mut clash = FileResult::pending("x.md".into(), "/l/x.md".into(), None);
        clash.marking = Some("UNCLASSIFIED".into());
        clash.outcome = FileOutcome::Failed;
        clash.error = Some("document id 'raid' is already used by /l/raid.md".into());
        clash.conflicts_with = Some("raid".into());
        let mut job = job_with(vec![secret, clash], 1);
        job.resume_note = Some("resumed ..., with 2 of 2 files left: raid.md, x.md".into());
        let seen = job.redacted(
            |f| f.marking.as_deref() == Some("UNCLASSIFIED"),
            |id| id != "raid",
        );
        assert_eq!(seen.hidden_files, 1);
        assert_eq!(seen.files.len(), 1);
        let error = seen.files[0].error.as_deref().unwrap();
        assert!(!error.contains("/l/raid.md"), "{error}");
        assert!(!seen.resume_note.unwrap().contains("raid.md"));
    }
}
