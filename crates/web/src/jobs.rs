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
//! A re-index of everything is refused (409) while another one is queued or running.
//! `DOCTRINA_FAILPOINT=slow-job` makes the worker sleep before each uploaded file, so a
//! crash test can kill the server midway through a job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use doctrina_audit::AuditLog;
use doctrina_index::indexer::FileOutcome;
use doctrina_index::{IndexReport, Indexer, Progress};
use doctrina_ingest::Ingestor;
use doctrina_retrieve::Retriever;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One file of a job and what became of it: `pending`, `indexed`, `unchanged`, `failed`,
/// `removed` or `skipped`, with the reason if it failed or was skipped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileResult {
    /// The name shown to people (an upload's original name; never used as a path).
    pub name: String,
    /// Where the file lives (inside the library for uploads).
    pub path: String,
    pub doc_id: Option<String>,
    pub outcome: String,
    pub error: Option<String>,
}

impl FileResult {
    pub fn pending(name: String, path: String, doc_id: Option<String>) -> Self {
        Self {
            name,
            path,
            doc_id,
            outcome: "pending".to_string(),
            error: None,
        }
    }

    fn finished(&self) -> bool {
        self.outcome != "pending"
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
    pub kind: String,
    pub actor: String,
    /// The document a replace, delete or re-index is about.
    pub target: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// True when the job was interrupted (the server stopped) and resumed on restart.
    pub resumed: bool,
    pub resume_note: Option<String>,
    pub progress: JobProgress,
    pub files: Vec<FileResult>,
}

impl Job {
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "done" | "failed")
    }
}

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
    finished_at TEXT
);
";

const COLUMNS: &str = "id, kind, actor, target, status, error, files, files_total, files_done, \
    passages_embedded, resumed, resume_note, created_at, started_at, finished_at";

fn store_error(e: impl std::fmt::Display) -> AppError {
    AppError::Library(format!("job store: {e}"))
}

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let files: String = row.get(6)?;
    let files: Vec<FileResult> = serde_json::from_str(&files).unwrap_or_default();
    let files_total: i64 = row.get(7)?;
    let files_done: i64 = row.get(8)?;
    let files_total = (files_total as usize).max(files.len());
    let files_done = files_done as usize;
    let percent = (files_done.min(files_total) * 100)
        .checked_div(files_total)
        .unwrap_or(0) as u32;
    Ok(Job {
        id: row.get(0)?,
        kind: row.get(1)?,
        actor: row.get(2)?,
        target: row.get(3)?,
        status: row.get(4)?,
        error: row.get(5)?,
        progress: JobProgress {
            files_total,
            files_done,
            files_failed: files.iter().filter(|f| f.outcome == "failed").count(),
            passages_embedded: row.get::<_, i64>(9)? as usize,
            percent,
        },
        files,
        resumed: row.get::<_, i64>(10)? != 0,
        resume_note: row.get(11)?,
        created_at: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
    })
}

/// `jobs.sqlite`.
pub struct JobStore {
    conn: Mutex<Connection>,
}

impl JobStore {
    pub fn open(path: &Path) -> Result<Self, AppError> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
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
        target: Option<&str>,
        files: &[FileResult],
    ) -> Result<i64, AppError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (kind, actor, target, status, files, files_total) \
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
            params![
                kind.as_str(),
                actor,
                target,
                serde_json::to_string(files).map_err(store_error)?,
                files.len() as i64
            ],
        )
        .map_err(store_error)?;
        Ok(conn.last_insert_rowid())
    }

    pub fn get(&self, id: i64) -> Result<Option<Job>, AppError> {
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
    pub fn list(&self, limit: usize) -> Result<Vec<Job>, AppError> {
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

    fn unfinished(&self) -> Result<Vec<Job>, AppError> {
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

    fn set_status(&self, id: i64, status: &str, error: Option<&str>) -> Result<(), AppError> {
        let stamp = match status {
            "running" => ", started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), finished_at = NULL",
            "done" | "failed" => ", finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            _ => "",
        };
        self.conn()
            .execute(
                &format!("UPDATE jobs SET status = ?2, error = ?3{stamp} WHERE id = ?1"),
                params![id, status, error],
            )
            .map_err(store_error)?;
        Ok(())
    }

    fn mark_resumed(&self, id: i64, note: &str) -> Result<(), AppError> {
        self.conn()
            .execute(
                "UPDATE jobs SET status = 'interrupted', resumed = 1, resume_note = ?2 WHERE id = ?1",
                params![id, note],
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
    ) -> Result<(), AppError> {
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
    fn active(&self, kind: JobKind) -> Result<Option<(i64, String)>, AppError> {
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
    pub retriever: Arc<Retriever>,
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

impl Jobs {
    pub fn new(store: Arc<JobStore>) -> Self {
        Self {
            store,
            queue: Mutex::new(None),
        }
    }

    /// Starts the worker thread; interrupted jobs are noted as resumed and queued first.
    pub fn start(&self, worker: Worker) -> Result<(), AppError> {
        let (tx, rx) = mpsc::channel::<i64>();
        for job in self.store.unfinished()? {
            let left: Vec<&str> = job
                .files
                .iter()
                .filter(|f| !f.finished())
                .map(|f| f.name.as_str())
                .collect();
            let note = match job.status.as_str() {
                "queued" => {
                    "resumed after an interruption: the server stopped before the job started"
                        .to_string()
                }
                _ if left.is_empty() => {
                    "resumed after an interruption: the server stopped while the job ran"
                        .to_string()
                }
                _ => format!(
                    "resumed after an interruption: the server stopped while the job ran, with {} of {} files left: {}",
                    left.len(),
                    job.files.len(),
                    left.join(", ")
                ),
            };
            tracing::warn!(job = job.id, kind = %job.kind, "resuming an interrupted job");
            self.store.mark_resumed(job.id, &note)?;
            let _ = tx.send(job.id);
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
                            "failed",
                            Some("internal error while running the job"),
                        );
                    }
                }
            })
            .map_err(|e| AppError::Library(format!("cannot start the job worker: {e}")))?;
        Ok(())
    }

    /// Records a job and queues it. A re-index of everything is refused while another is
    /// queued or running.
    pub fn submit(
        &self,
        kind: JobKind,
        actor: &str,
        target: Option<&str>,
        files: &[FileResult],
    ) -> Result<Job, AppError> {
        // The queue lock also serialises the check-then-insert below.
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = queue.as_ref() else {
            return Err(AppError::Library(
                "the job worker is not running".to_string(),
            ));
        };
        if kind == JobKind::ReindexAll
            && let Some((id, status)) = self.store.active(kind)?
        {
            return Err(AppError::Conflict(format!(
                "a re-index of all documents is already {status} (job {id}); wait for it to finish"
            )));
        }
        let id = self.store.create(kind, actor, target, files)?;
        tx.send(id)
            .map_err(|_| AppError::Library("the job worker stopped".to_string()))?;
        self.store
            .get(id)?
            .ok_or_else(|| AppError::NotFound(format!("job {id}")))
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

    /// Sets a file's outcome (found by path, added if new). An `indexed` file stays
    /// `indexed` when a resumed run finds it unchanged.
    fn set(&self, path: &str, outcome: &str, error: Option<String>) {
        let mut files = self.files();
        let key = canonical(Path::new(path));
        let found = files
            .by_path
            .get(&key)
            .or_else(|| files.by_path.get(path))
            .copied();
        let index = match found {
            Some(i) => i,
            None => {
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
        };
        let entry = &mut files[index];
        if !(entry.outcome == "indexed" && outcome == "unchanged") {
            entry.outcome = outcome.to_string();
        }
        if error.is_some() {
            entry.error = error;
        }
        self.save_throttled(&files, false);
    }
}

impl Progress for Tracker<'_> {
    fn files_found(&self, total: usize) {
        if self.count_found {
            self.total.store(total, Ordering::Relaxed);
            self.save(&self.files());
        }
    }

    fn file_done(&self, path: &Path, outcome: FileOutcome) {
        let outcome = match outcome {
            FileOutcome::Indexed => "indexed",
            FileOutcome::Unchanged => "unchanged",
            FileOutcome::Failed => "failed",
        };
        self.set(&path.to_string_lossy(), outcome, None);
    }

    fn passages_embedded(&self, count: usize) {
        self.embedded.fetch_add(count, Ordering::Relaxed);
        self.save_throttled(&self.files(), !self.count_found);
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
        if let Err(e) = self.store.set_status(id, "running", None) {
            tracing::error!(job = id, error = %e, "job not started");
            return;
        }
        let Some(kind) = JobKind::parse(&job.kind) else {
            let _ = self
                .store
                .set_status(id, "failed", Some("unknown job kind"));
            return;
        };
        tracing::info!(job = id, kind = kind.as_str(), "job started");
        let tracker = Tracker::new(&self.store, &job, kind == JobKind::ReindexAll);
        let result = match kind {
            JobKind::Upload => self.index_files(&tracker),
            JobKind::Replace => self.replace(&tracker, job.target.as_deref().unwrap_or_default()),
            JobKind::Delete => self.delete(&tracker, job.target.as_deref().unwrap_or_default()),
            JobKind::Reindex => {
                self.reindex_one(&tracker, job.target.as_deref().unwrap_or_default())
            }
            JobKind::ReindexAll => self.reindex_all(&tracker),
            JobKind::Repair => self.repair(&tracker),
        };
        self.fill_doc_ids(&tracker);
        let files = tracker.files().list.clone();
        let failed = files.iter().filter(|f| f.outcome == "failed").count();
        let error = match result {
            Err(e) => Some(e),
            Ok(()) if failed > 0 => Some(format!("{failed} of {} files failed", files.len())),
            Ok(()) => None,
        };
        let status = if error.is_some() { "failed" } else { "done" };
        if let Err(e) = self.store.set_status(id, status, error.as_deref()) {
            tracing::error!(job = id, error = %e, "job status not saved");
        }
        tracing::info!(job = id, status, error = ?error, "job finished");
        let outcome = match &error {
            None => "ok".to_string(),
            Some(e) => format!("error: {e}"),
        };
        let detail = serde_json::json!({
            "job": id,
            "resumed": job.resumed,
            "files": files.iter().map(|f| serde_json::json!({
                "name": f.name, "doc_id": f.doc_id, "outcome": f.outcome, "error": f.error,
            })).collect::<Vec<_>>(),
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

    fn indexer_run(&self, roots: &[PathBuf], tracker: &Tracker<'_>) -> Result<IndexReport, String> {
        let indexes = self.retriever.indexes();
        Indexer::new(indexes, &self.ingestor, self.retriever.embedder().as_ref())
            .run(roots, tracker)
            .map_err(|e| e.to_string())
    }

    fn apply_failures(&self, report: &IndexReport, tracker: &Tracker<'_>) {
        for failed in &report.failed {
            tracker.set(&failed.path, "failed", Some(failed.error.clone()));
        }
    }

    /// Indexes the job's files that are not finished yet, one at a time, so progress and
    /// a crash both land between files.
    fn index_files(&self, tracker: &Tracker<'_>) -> Result<(), String> {
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
                    "failed",
                    Some("the uploaded file is missing".to_string()),
                );
                continue;
            }
            match self.indexer_run(&[PathBuf::from(&path)], tracker) {
                Ok(report) => self.apply_failures(&report, tracker),
                Err(e) => tracker.set(&path, "failed", Some(e)),
            }
        }
        Ok(())
    }

    fn replace(&self, tracker: &Tracker<'_>, old_id: &str) -> Result<(), String> {
        self.index_files(tracker)?;
        self.fill_doc_ids(tracker);
        let new_id = tracker.files().first().and_then(|f| {
            (f.outcome == "indexed" || f.outcome == "unchanged")
                .then(|| f.doc_id.clone())
                .flatten()
        });
        let Some(new_id) = new_id else {
            return Ok(()); // the file's failure is reported with it
        };
        let superseded = self
            .retriever
            .indexes()
            .superseded()
            .map_err(|e| e.to_string())?;
        match superseded.get(old_id) {
            Some(by) if by.id == new_id => Ok(()),
            _ => Err(format!(
                "the new edition {new_id} is indexed but does not supersede {old_id}: \
                 its own front matter overrides the upload's metadata; add `supersedes: {old_id}` to it"
            )),
        }
    }

    fn delete(&self, tracker: &Tracker<'_>, id: &str) -> Result<(), String> {
        let indexes = self.retriever.indexes();
        let record = indexes.catalog().document(id).map_err(|e| e.to_string())?;
        let path = tracker
            .files()
            .first()
            .map(|f| f.path.clone())
            .or_else(|| record.as_ref().map(|r| r.meta.source_path.clone()))
            .unwrap_or_default();
        if record.is_some() {
            indexes
                .remove_documents(&[id.to_string()])
                .map_err(|e| e.to_string())?;
            indexes.flush().map_err(|e| e.to_string())?;
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
        tracker.set(&path, "removed", None);
        Ok(())
    }

    fn reindex_one(&self, tracker: &Tracker<'_>, id: &str) -> Result<(), String> {
        let path = tracker
            .files()
            .first()
            .map(|f| f.path.clone())
            .unwrap_or_default();
        let file = Path::new(&path);
        if !file.is_file() {
            tracker.set(&path, "failed", Some("the source file is gone".to_string()));
            return Ok(());
        }
        if let Some(reason) = self.id_would_change(file, id) {
            tracker.set(&path, "skipped", Some(reason));
            return Err(format!("document {id} was not re-indexed"));
        }
        match self.indexer_run(&[file.to_path_buf()], tracker) {
            Ok(report) => self.apply_failures(&report, tracker),
            Err(e) => tracker.set(&path, "failed", Some(e)),
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

    /// Re-indexes the library folder and every document's source file outside it.
    /// `Indexes::check(repair)`, in the queue like any other change so it never races a
    /// write; each document it repaired or removed, and each orphan, is a result line.
    /// Fails if the indexes still disagree with the catalog afterwards.
    fn repair(&self, tracker: &Tracker<'_>) -> Result<(), String> {
        let indexes = self.retriever.indexes();
        let report = indexes
            .check(Some(self.retriever.embedder().as_ref()), true)
            .map_err(|e| e.to_string())?;
        for id in &report.repaired {
            tracker.set(id, "repaired", None);
        }
        for id in &report.removed {
            tracker.set(id, "removed", None);
        }
        for id in &report.orphans {
            tracker.set(id, "removed", Some("orphaned index entries".to_string()));
        }
        let after = indexes.check(None, false).map_err(|e| e.to_string())?;
        if after.consistent {
            Ok(())
        } else {
            Err(format!(
                "still inconsistent after repair: catalog {} · keyword {} · vectors {} passages",
                after.catalog_passages, after.keyword_passages, after.vector_passages
            ))
        }
    }

    fn reindex_all(&self, tracker: &Tracker<'_>) -> Result<(), String> {
        let documents = self
            .retriever
            .indexes()
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
                tracker.set(&doc.meta.source_path, "skipped", Some(reason));
                continue;
            }
            roots.push(path);
        }
        roots.sort();
        roots.dedup();
        let report = self.indexer_run(&roots, tracker)?;
        self.apply_failures(&report, tracker);
        Ok(())
    }

    /// Fills in each file's document id from the catalog.
    fn fill_doc_ids(&self, tracker: &Tracker<'_>) {
        let documents: HashMap<String, String> = self
            .retriever
            .indexes()
            .catalog()
            .documents()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.meta.source_path, d.meta.id))
            .collect();
        let mut files = tracker.files();
        for f in files.iter_mut() {
            if let Some(id) = documents.get(&f.path) {
                f.doc_id = Some(id.clone());
            }
        }
        tracker.save(&files);
    }
}
