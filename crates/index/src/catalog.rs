//! The catalog (SQLite): the source of truth for documents and their passages. The keyword
//! and vector indexes are derived from it and can always be rebuilt from it.

use std::path::Path;

use doctrina_types::{DocumentMeta, DocumentStatus, Marking, Passage, SourceFormat, sha256_hex};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{IndexError, Result};

const SCHEMA: &str = r#"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS documents (
    id               TEXT PRIMARY KEY,
    source_path      TEXT NOT NULL,
    title            TEXT NOT NULL,
    publication      TEXT,
    edition          TEXT,
    supersedes       TEXT,
    marking_level    TEXT NOT NULL,
    marking_rank     INTEGER NOT NULL,
    caveats          TEXT NOT NULL DEFAULT '[]',
    marking_basis    TEXT NOT NULL DEFAULT '[]',
    extra            TEXT NOT NULL DEFAULT '{}',
    language         TEXT NOT NULL DEFAULT '',
    format           TEXT NOT NULL,
    content_hash     TEXT NOT NULL,
    pipeline_version INTEGER NOT NULL,
    status           TEXT NOT NULL,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    body             TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    indexed_at       TEXT
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source_path);
CREATE TABLE IF NOT EXISTS passages (
    id          TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    section     TEXT NOT NULL,
    paragraphs  TEXT NOT NULL,
    pages       TEXT NOT NULL,
    char_start  INTEGER NOT NULL,
    char_end    INTEGER NOT NULL,
    text        TEXT NOT NULL,
    embed_hash  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS failures (
    source_path TEXT PRIMARY KEY,
    error       TEXT NOT NULL,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"#;

/// A document row as the catalog holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DocumentRecord {
    pub meta: DocumentMeta,
    pub marking_rank: u32,
    pub pipeline_version: u32,
    pub status: DocumentStatus,
    pub chunk_count: usize,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub indexed_at: Option<String>,
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The edition that replaces a superseded one: its id, and its marking (so a search can tell
/// whether the reader may see it without asking the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    pub id: String,
    pub marking: Marking,
}

/// The references in a document's `supersedes` (several are separated by `;`).
pub fn supersedes_references(meta: &DocumentMeta) -> Vec<String> {
    meta.supersedes
        .as_deref()
        .unwrap_or_default()
        .split(';')
        .map(norm)
        .filter(|r| !r.is_empty())
        .collect()
}

/// Whether `reference` (normalised) names `older` as an edition `newer` replaces: by
/// document id, `PUBLICATION (YEAR)`, `PUBLICATION EDITION`, or the bare publication (then
/// every other edition of it with an earlier edition date).
fn names(reference: &str, newer: &DocumentMeta, older: &DocumentMeta) -> bool {
    if older.id == newer.id {
        return false;
    }
    let publication = older.publication.as_deref().map(norm);
    let edition = older.edition.as_deref().map(norm);
    let year: Option<String> = edition
        .as_deref()
        .map(|e| e.chars().filter(char::is_ascii_digit).take(4).collect())
        .filter(|y: &String| y.len() == 4);
    reference == norm(&older.id)
        || matches!((&publication, &year), (Some(p), Some(y)) if reference == format!("{p} ({y})"))
        || matches!((&publication, &edition), (Some(p), Some(e)) if reference == format!("{p} {e}"))
        || (publication.as_deref() == Some(reference)
            && newer.publication.as_deref().map(norm) == publication
            && older.edition < newer.edition)
}

/// For each reference in `newer`'s `supersedes`, the documents it names.
pub fn superseded_targets<'a>(
    newer: &DocumentMeta,
    docs: &'a [DocumentRecord],
) -> Vec<(String, Vec<&'a DocumentRecord>)> {
    supersedes_references(newer)
        .into_iter()
        .map(|reference| {
            let named = docs
                .iter()
                .filter(|older| names(&reference, newer, &older.meta))
                .collect();
            (reference, named)
        })
        .collect()
}

/// Which documents a newer indexed edition supersedes: `old id -> newer` (see [`names`]).
pub fn superseded_by(docs: &[DocumentRecord]) -> std::collections::BTreeMap<String, Newer> {
    let mut out = std::collections::BTreeMap::new();
    for newer in docs {
        for (_, named) in superseded_targets(&newer.meta, docs) {
            for older in named {
                out.insert(
                    older.meta.id.clone(),
                    Newer {
                        id: newer.meta.id.clone(),
                        marking: newer.meta.marking.clone(),
                    },
                );
            }
        }
    }
    out
}

/// A passage with what the indexes need besides its own fields.
#[derive(Debug, Clone)]
pub struct StoredPassage {
    pub passage: Passage,
    /// sha256 of the exact text that was embedded; equal hashes can share a vector.
    pub embed_hash: String,
}

/// The text that is embedded for a passage: publication, title and section give the
/// vector the context a bare paragraph lacks.
pub fn embedding_text(meta: &DocumentMeta, passage: &Passage) -> String {
    let mut head = String::new();
    if let Some(p) = &meta.publication {
        head.push_str(p);
        head.push(' ');
    }
    head.push_str(&meta.title);
    let section = passage.section_display();
    if !section.is_empty() {
        head.push_str(" — ");
        head.push_str(&section);
    }
    format!("{head}\n{}", passage.text)
}

pub fn embed_hash(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

pub struct Catalog {
    conn: Connection,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| IndexError::Corrupt(format!("bad json column: {e}")))
}

const DOC_COLUMNS: &str = "id, source_path, title, publication, edition, supersedes, marking_level, \
    marking_rank, caveats, format, content_hash, pipeline_version, status, chunk_count, last_error, \
    created_at, updated_at, indexed_at, marking_basis, extra, language";

/// Columns added after the first release, with their definitions (added on open).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("marking_basis", "TEXT NOT NULL DEFAULT '[]'"),
    ("extra", "TEXT NOT NULL DEFAULT '{}'"),
    ("language", "TEXT NOT NULL DEFAULT ''"),
];

/// A document's marking as stored. Reading fails closed: a level or caveat list that
/// cannot be read gives [`Marking::unreadable`], which no clearance permits, never "no
/// caveats".
fn stored_marking(level: Option<String>, caveats: Option<String>) -> Marking {
    let level = level.filter(|l| !l.trim().is_empty());
    let caveats = caveats.and_then(|c| serde_json::from_str::<Vec<String>>(&c).ok());
    match (level, caveats) {
        (Some(level), Some(caveats)) => Marking { level, caveats },
        (level, _) => {
            tracing::error!(
                ?level,
                "a document's marking in the catalog is unreadable; it is hidden from everyone"
            );
            Marking::unreadable()
        }
    }
}

fn doc_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(DocumentRecord, String)> {
    let format: String = row.get(9)?;
    let status: String = row.get(12)?;
    let marking = stored_marking(row.get(6).ok(), row.get(8).ok());
    let basis: String = row.get(18)?;
    let extra: String = row.get(19)?;
    let record = DocumentRecord {
        meta: DocumentMeta {
            id: row.get(0)?,
            source_path: row.get(1)?,
            title: row.get(2)?,
            publication: row.get(3)?,
            edition: row.get(4)?,
            supersedes: row.get(5)?,
            marking,
            marking_basis: serde_json::from_str(&basis)
                .unwrap_or_else(|_| vec!["(the stored basis is unreadable)".to_string()]),
            extra: serde_json::from_str(&extra).unwrap_or_default(),
            language: row.get(20)?,
            format: SourceFormat::from_extension(match format.as_str() {
                "markdown" => "md",
                "text" => "txt",
                other => other,
            })
            .unwrap_or(SourceFormat::Text),
            content_hash: row.get(10)?,
        },
        marking_rank: row.get(7)?,
        pipeline_version: row.get(11)?,
        status: DocumentStatus::parse(&status).unwrap_or(DocumentStatus::Failed),
        chunk_count: row.get::<_, i64>(13)? as usize,
        last_error: row.get(14)?,
        created_at: row.get(15)?,
        updated_at: row.get(16)?,
        indexed_at: row.get(17)?,
    };
    Ok((record, status))
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        let existing: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('documents')")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for (column, definition) in ADDED_COLUMNS {
            if !existing.iter().any(|c| c == column) {
                conn.execute_batch(&format!(
                    "ALTER TABLE documents ADD COLUMN {column} {definition}"
                ))?;
            }
        }
        Ok(Self { conn })
    }

    pub fn documents(&self) -> Result<Vec<DocumentRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {DOC_COLUMNS} FROM documents ORDER BY id"))?;
        let rows = stmt.query_map([], doc_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.0);
        }
        Ok(out)
    }

    pub fn document(&self, id: &str) -> Result<Option<DocumentRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"
        ))?;
        Ok(stmt
            .query_row([id], doc_from_row)
            .optional()?
            .map(|(r, _)| r))
    }

    pub fn document_body(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT body FROM documents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn passages_of(&self, doc_id: &str) -> Result<Vec<StoredPassage>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, doc_id, ordinal, section, paragraphs, pages, char_start, char_end, text, embed_hash \
             FROM passages WHERE doc_id = ?1 ORDER BY ordinal",
        )?;
        let rows = stmt.query_map([doc_id], passage_row)?;
        rows.map(|r| r.map_err(IndexError::from).and_then(finish_passage))
            .collect()
    }

    /// Passages by id, in the order asked; unknown ids are skipped.
    pub fn passages(&self, ids: &[String]) -> Result<Vec<StoredPassage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, doc_id, ordinal, section, paragraphs, pages, char_start, char_end, text, embed_hash \
             FROM passages WHERE id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(raw) = stmt.query_row([id], passage_row).optional()? {
                out.push(finish_passage(raw)?);
            }
        }
        Ok(out)
    }

    pub fn passage_count(&self) -> Result<usize> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM passages p JOIN documents d ON d.id = p.doc_id WHERE d.status = 'indexed'",
            [],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    pub fn failures(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT source_path, error FROM failures ORDER BY source_path")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a file that could not be parsed. If it belongs to an indexed document, the
    /// document keeps serving its previous version and carries the error.
    pub fn record_failure(&mut self, source_path: &str, error: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        let updated = tx.execute(
            "UPDATE documents SET last_error = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE source_path = ?1",
            params![source_path, error],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO failures (source_path, error) VALUES (?1, ?2) \
                 ON CONFLICT(source_path) DO UPDATE SET error = excluded.error, at = excluded.at",
                params![source_path, error],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Step 1 of writing documents: mark them as being written. New documents get a row
    /// with no passages; existing ones keep their metadata and passages (the last good
    /// state) until [`Catalog::commit_documents`].
    pub fn begin_documents(&mut self, docs: &[(&DocumentMeta, u32)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (meta, rank) in docs {
            let updated = tx.execute(
                "UPDATE documents SET status = 'indexing' WHERE id = ?1",
                [&meta.id],
            )?;
            if updated == 0 {
                // Pipeline version 0 marks a document that has never committed.
                upsert_document(&tx, meta, *rank, 0, DocumentStatus::Indexing, 0, "")?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Step 3: the indexes hold the new passages; make them the catalog's truth.
    pub fn commit_documents(
        &mut self,
        docs: &[(&DocumentMeta, u32, &str, &[StoredPassage])],
        pipeline_version: u32,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (meta, rank, body, passages) in docs {
            tx.execute("DELETE FROM passages WHERE doc_id = ?1", [&meta.id])?;
            upsert_document(
                &tx,
                meta,
                *rank,
                pipeline_version,
                DocumentStatus::Indexed,
                passages.len(),
                body,
            )?;
            insert_passages(&tx, passages)?;
            tx.execute(
                "DELETE FROM failures WHERE source_path = ?1",
                [&meta.source_path],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_status(&mut self, ids: &[String], status: DocumentStatus) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE documents SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets documents' marking ranks (after the marking scheme changed).
    pub fn set_marking_ranks(&mut self, ranks: &[(String, u32)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (id, rank) in ranks {
            tx.execute(
                "UPDATE documents SET marking_rank = ?2 WHERE id = ?1 AND marking_rank != ?2",
                params![id, rank],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete_documents(&mut self, ids: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Writes a document row: inserts it, or replaces its metadata, status and body. An
/// `indexed` write also clears the last error and stamps `indexed_at`.
fn upsert_document(
    tx: &rusqlite::Transaction<'_>,
    meta: &DocumentMeta,
    rank: u32,
    pipeline_version: u32,
    status: DocumentStatus,
    chunk_count: usize,
    body: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO documents (id, source_path, title, publication, edition, supersedes, marking_level, \
         marking_rank, caveats, format, content_hash, pipeline_version, status, chunk_count, body, \
         marking_basis, extra, language) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
         ON CONFLICT(id) DO UPDATE SET source_path = excluded.source_path, title = excluded.title, \
         publication = excluded.publication, edition = excluded.edition, supersedes = excluded.supersedes, \
         marking_level = excluded.marking_level, marking_rank = excluded.marking_rank, \
         caveats = excluded.caveats, marking_basis = excluded.marking_basis, extra = excluded.extra, \
         language = excluded.language, \
         format = excluded.format, content_hash = excluded.content_hash, \
         pipeline_version = excluded.pipeline_version, status = excluded.status, \
         chunk_count = excluded.chunk_count, body = excluded.body, \
         last_error = CASE WHEN excluded.status = 'indexed' THEN NULL ELSE last_error END, \
         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
         indexed_at = CASE WHEN excluded.status = 'indexed' \
             THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE indexed_at END",
        params![
            meta.id,
            meta.source_path,
            meta.title,
            meta.publication,
            meta.edition,
            meta.supersedes,
            meta.marking.level,
            rank,
            json(&meta.marking.caveats),
            meta.format.as_str(),
            meta.content_hash,
            pipeline_version,
            status.as_str(),
            chunk_count as i64,
            body,
            json(&meta.marking_basis),
            serde_json::to_string(&meta.extra).unwrap_or_else(|_| "{}".to_string()),
            meta.language,
        ],
    )?;
    Ok(())
}

fn insert_passages(tx: &rusqlite::Transaction<'_>, passages: &[StoredPassage]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO passages (id, doc_id, ordinal, section, paragraphs, pages, char_start, char_end, text, embed_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for sp in passages {
        let p = &sp.passage;
        stmt.execute(params![
            p.id,
            p.doc_id,
            p.ordinal,
            json(&p.section_path),
            json(&p.paragraphs),
            json(&p.pages),
            p.char_start as i64,
            p.char_end as i64,
            p.text,
            sp.embed_hash,
        ])?;
    }
    Ok(())
}

type RawPassage = (
    String,
    String,
    u32,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
);

fn passage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPassage> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn finish_passage(raw: RawPassage) -> Result<StoredPassage> {
    let (id, doc_id, ordinal, section, paragraphs, pages, char_start, char_end, text, embed_hash) =
        raw;
    Ok(StoredPassage {
        passage: Passage {
            id,
            doc_id,
            ordinal,
            section_path: from_json(&section)?,
            paragraphs: from_json(&paragraphs)?,
            pages: from_json(&pages)?,
            char_start: char_start as usize,
            char_end: char_end as usize,
            text,
        },
        embed_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, publication: &str, edition: &str, supersedes: Option<&str>) -> DocumentRecord {
        DocumentRecord {
            meta: DocumentMeta {
                id: id.to_string(),
                title: "t".to_string(),
                publication: Some(publication.to_string()),
                edition: Some(edition.to_string()),
                supersedes: supersedes.map(String::from),
                marking: Marking::default(),
                marking_basis: Vec::new(),
                extra: Default::default(),
                language: String::new(),
                source_path: format!("/x/{id}"),
                format: SourceFormat::Markdown,
                content_hash: String::new(),
            },
            marking_rank: 0,
            pipeline_version: 1,
            status: DocumentStatus::Indexed,
            chunk_count: 1,
            last_error: None,
            created_at: String::new(),
            updated_at: String::new(),
            indexed_at: None,
        }
    }

    #[test]
    fn supersedes_resolves_by_id_year_edition_or_publication() {
        let docs = vec![
            doc("sop-2022", "SOP 2-101", "2022-03-01", None),
            doc(
                "sop-2024",
                "SOP 2-101",
                "2024-02-15",
                Some("SOP 2-101 (2022)"),
            ),
            doc("atp-2024", "ATP 4-0.6", "2024", Some("ATP 4-0.6 (2019)")),
            doc("fm-a", "FM 1", "2001", None),
            doc("fm-b", "FM 1", "2010", Some("fm-a")),
            doc("tc-old", "TC 9", "2015", None),
            doc("tc-mid", "TC 9", "2018", None),
            doc("tc-new", "TC 9", "2023", Some("tc 9")),
        ];
        let map = superseded_by(&docs);
        assert_eq!(map.get("sop-2022").map(|n| n.id.as_str()), Some("sop-2024"));
        assert_eq!(map.get("fm-a").map(|n| n.id.as_str()), Some("fm-b"));
        assert_eq!(map.get("tc-old").map(|n| n.id.as_str()), Some("tc-new"));
        assert_eq!(map.get("tc-mid").map(|n| n.id.as_str()), Some("tc-new"));
        assert!(!map.contains_key("tc-new") && !map.contains_key("atp-2024"));
        assert_eq!(map.len(), 4, "{map:?}");
        // Several references, separated by `;`.
        let docs = vec![
            doc("a", "FM 2", "2001", None),
            doc("b", "FM 3", "2002", None),
            doc("c", "FM 9", "2010", Some("a; FM 3 (2002)")),
        ];
        let map = superseded_by(&docs);
        assert_eq!(map.len(), 2, "{map:?}");
    }

    #[test]
    fn corrupt_markings_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
        let mut record = doc("doc-1", "FM 1", "2001", None);
        record.meta.marking = Marking::parse_banner("SECRET//NOFORN");
        catalog.begin_documents(&[(&record.meta, 3)]).unwrap();
        let scheme = doctrina_types::MarkingScheme::default();
        let top = doctrina_types::Clearance {
            level: "TOP SECRET".into(),
            caveats: vec!["NOFORN".into()],
        };
        let read = catalog.document("doc-1").unwrap().unwrap();
        assert!(scheme.permits(&top, &read.meta.marking));
        for corruption in [
            "UPDATE documents SET caveats = 'NOFORN' WHERE id = 'doc-1'",
            "UPDATE documents SET caveats = '{\"a\":1}' WHERE id = 'doc-1'",
            "UPDATE documents SET caveats = '[]', marking_level = '' WHERE id = 'doc-1'",
            "UPDATE documents SET marking_level = X'FF00' WHERE id = 'doc-1'",
        ] {
            catalog.conn.execute_batch(corruption).unwrap();
            let read = catalog.document("doc-1").unwrap().unwrap();
            assert_eq!(read.meta.marking, Marking::unreadable(), "{corruption}");
            assert!(!scheme.permits(&top, &read.meta.marking), "{corruption}");
            catalog
                .conn
                .execute_batch(
                    "UPDATE documents SET caveats = '[\"NOFORN\"]', marking_level = 'SECRET' WHERE id = 'doc-1'",
                )
                .unwrap();
        }
    }

    #[test]
    fn an_old_catalog_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            let old = SCHEMA
                .replace("    marking_basis    TEXT NOT NULL DEFAULT '[]',\n", "")
                .replace("    extra            TEXT NOT NULL DEFAULT '{}',\n", "");
            conn.execute_batch(&old).unwrap();
        }
        let mut catalog = Catalog::open(&path).unwrap();
        let record = doc("doc-1", "FM 1", "2001", None);
        catalog.begin_documents(&[(&record.meta, 0)]).unwrap();
        assert!(catalog.document("doc-1").unwrap().is_some());
    }
}
