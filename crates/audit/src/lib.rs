//! The audit trail: an append-only log of who did what, when and with what outcome, in
//! SQLite (`audit.sqlite`). Each entry carries the hash of the previous one, and its own
//! hash covers its fields and that link, so editing or removing any entry breaks the chain
//! from there on; [`AuditLog::verify`] finds the first break. Triggers refuse `UPDATE` and
//! `DELETE` through SQLite; the chain catches changes made any other way. Removing entries
//! from the end leaves a valid shorter chain: compare the head hash `verify` reports with
//! one recorded elsewhere to detect that.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("audit log: {0}")]
    Json(#[from] serde_json::Error),
}

/// The log is part of every action: when it cannot be written, the action is refused.
impl doctrina_types::Faulted for AuditError {
    fn fault(&self) -> doctrina_types::Fault {
        doctrina_types::Fault::Unavailable
    }

    fn code(&self) -> &'static str {
        "audit_unavailable"
    }

    fn public_message(&self) -> String {
        "the audit log cannot be written; the action is refused until it can".to_string()
    }
}

type Result<T> = std::result::Result<T, AuditError>;

/// The hash that the first entry links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Who acted (`cli:<os user>` for the command line).
    pub actor: String,
    /// What was done: `search`, `draft`, `edit`, `review`, `comment`, `export`, `index`...
    pub action: String,
    /// What it was done to (a section id, a plan id, a path...).
    pub target: String,
    /// `ok`, or `error: <message>`, `denied`...
    pub outcome: String,
    /// Anything else worth keeping (e.g. the passage ids given to the model).
    pub detail: Value,
}

impl Event {
    pub fn new(actor: &str, action: &str, target: &str, outcome: &str, detail: Value) -> Self {
        Self {
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            detail,
        }
    }
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    #[serde(flatten)]
    pub event: Event,
    pub prev_hash: String,
    pub hash: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub entries: usize,
    /// The hash of the newest entry (record it elsewhere to detect a truncated tail).
    pub head: String,
    pub intact: bool,
    /// The first entry where the chain breaks, and why.
    pub first_break: Option<Break>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// The hash of an entry: sha256 over its sequence number, time, fields and the previous
/// hash, each on its own line (the detail as compact JSON).
pub fn entry_hash(seq: i64, at: &str, event: &Event, prev_hash: &str) -> String {
    let detail = serde_json::to_string(&event.detail).unwrap_or_default();
    let text = format!(
        "{seq}\n{at}\n{}\n{}\n{}\n{}\n{detail}\n{prev_hash}",
        event.actor, event.action, event.target, event.outcome
    );
    doctrina_types::sha256_hex(text.as_bytes())
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS entries (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

pub struct AuditLog {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Entry, String)> {
    Ok((
        Entry {
            seq: row.get(0)?,
            at: row.get(1)?,
            event: Event {
                actor: row.get(2)?,
                action: row.get(3)?,
                target: row.get(4)?,
                outcome: row.get(5)?,
                detail: Value::Null,
            },
            prev_hash: row.get(7)?,
            hash: row.get(8)?,
        },
        row.get(6)?,
    ))
}

const COLUMNS: &str = "seq, at, actor, action, target, outcome, detail, prev_hash, hash";

impl AuditLog {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event, linked to the newest entry.
    pub fn append(&self, event: &Event) -> Result<Entry> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let at: String = tx.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
            r.get(0)
        })?;
        let hash = entry_hash(seq, &at, event, &prev_hash);
        tx.execute(
            &format!("INSERT INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                seq,
                at,
                event.actor,
                event.action,
                event.target,
                event.outcome,
                serde_json::to_string(&event.detail)?,
                prev_hash,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(Entry {
            seq,
            at,
            event: event.clone(),
            prev_hash,
            hash,
        })
    }

    /// Entries in order, `limit` at most, starting after `after` (a sequence number).
    pub fn entries(&self, after: i64, limit: usize) -> Result<Vec<Entry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM entries WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], entry_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut entry, detail) = row?;
            entry.event.detail = serde_json::from_str(&detail).unwrap_or(Value::String(detail));
            out.push(entry);
        }
        Ok(out)
    }

    /// Walks the whole chain: every entry's hash must match its content and link to the
    /// previous entry's hash, and sequence numbers must run on without gaps.
    pub fn verify(&self) -> Result<Verification> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY seq"))?;
        let rows = stmt.query_map([], entry_from_row)?;
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_string();
        let mut entries = 0;
        let mut first_break = None;
        for row in rows {
            let (mut entry, detail) = row?;
            entries += 1;
            if first_break.is_some() {
                continue;
            }
            let reason = match serde_json::from_str::<Value>(&detail) {
                Err(_) => Some("its detail is not the JSON that was recorded".to_string()),
                Ok(d) => {
                    entry.event.detail = d;
                    if entry.seq != expected_seq {
                        Some(format!(
                            "entries {expected_seq}..{} are missing",
                            entry.seq - 1
                        ))
                    } else if entry.prev_hash != prev {
                        Some("it does not link to the previous entry".to_string())
                    } else if entry_hash(entry.seq, &entry.at, &entry.event, &entry.prev_hash)
                        != entry.hash
                    {
                        Some("its content does not match its hash (edited)".to_string())
                    } else {
                        None
                    }
                }
            };
            if let Some(reason) = reason {
                first_break = Some(Break {
                    seq: entry.seq,
                    reason,
                });
            }
            expected_seq = entry.seq + 1;
            prev = entry.hash;
        }
        Ok(Verification {
            entries,
            head: prev,
            intact: first_break.is_none(),
            first_break,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.sqlite")).unwrap();
        for i in 0..n {
            log.append(&Event::new(
                "maj. hale",
                "draft",
                &format!("s{i}"),
                "ok",
                json!({"passages": [format!("doc#{i}")]}),
            ))
            .unwrap();
        }
        (dir, log)
    }

    /// Tampering as someone with the file would: drop the guard triggers, then write.
    fn tamper(log: &AuditLog, sql: &str) {
        let conn = log.conn();
        conn.execute_batch("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;")
            .unwrap();
        conn.execute_batch(sql).unwrap();
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, log) = log_with(5);
        let v = log.verify().unwrap();
        assert!(v.intact, "{v:?}");
        assert_eq!(v.entries, 5);
        let entries = log.entries(0, 10).unwrap();
        assert_eq!(entries[0].prev_hash, GENESIS);
        assert_eq!(entries[4].hash, v.head);
        assert_eq!(entries[2].event.detail["passages"][0], "doc#2");
    }

    #[test]
    fn updates_and_deletes_are_refused() {
        let (_d, log) = log_with(2);
        let conn = log.conn();
        assert!(conn.execute("UPDATE entries SET actor = 'x'", []).is_err());
        assert!(conn.execute("DELETE FROM entries", []).is_err());
    }

    #[test]
    fn an_edited_entry_is_found() {
        let (_d, log) = log_with(5);
        tamper(&log, "UPDATE entries SET outcome = 'denied' WHERE seq = 3;");
        let v = log.verify().unwrap();
        assert!(!v.intact);
        let b = v.first_break.unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("edited"), "{}", b.reason);
    }

    #[test]
    fn an_edited_detail_is_found() {
        let (_d, log) = log_with(4);
        tamper(
            &log,
            r#"UPDATE entries SET detail = '{"passages":["other#1"]}' WHERE seq = 2;"#,
        );
        assert_eq!(log.verify().unwrap().first_break.unwrap().seq, 2);
    }

    #[test]
    fn a_removed_entry_is_found() {
        let (_d, log) = log_with(5);
        tamper(&log, "DELETE FROM entries WHERE seq = 2;");
        let b = log.verify().unwrap().first_break.unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("missing"), "{}", b.reason);
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_next_link() {
        let (_d, log) = log_with(4);
        // Edit entry 2 and recompute its own hash: entry 3 no longer links to it.
        let e2 = log.entries(1, 1).unwrap().remove(0);
        let mut forged = e2.event.clone();
        forged.outcome = "denied".to_string();
        let hash = entry_hash(2, &e2.at, &forged, &e2.prev_hash);
        tamper(
            &log,
            &format!("UPDATE entries SET outcome = 'denied', hash = '{hash}' WHERE seq = 2;"),
        );
        let b = log.verify().unwrap().first_break.unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("link"), "{}", b.reason);
    }
}
