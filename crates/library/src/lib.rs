//! The custodian's library: `<data-dir>/library/`, where uploaded files live, and the job
//! queue that indexes, replaces, deletes and re-indexes them ([`jobs`]).
//!
//! Upload names are never trusted: only the final component of the name is kept, control
//! characters and leading dots are dropped, and the name is only shown, never used as a
//! path. The file is stored as `<id>.<ext>`, where the id is a fresh `[a-z0-9-]` slug, with
//! a `<file>.meta.yaml` sidecar giving that id and any metadata sent with the upload.

pub mod jobs;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use doctrina_ingest::{Ingestor, sidecar_path};
use doctrina_types::config::LibraryConfig;
use doctrina_types::{Fault, Faulted, SourceFormat};

use crate::jobs::{FileResult, JobStore, Jobs};

pub use jobs::{FileOutcome, Job, JobKind, JobStatus, Worker};

/// What went wrong in the library or its job queue.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The request is wrong (an unusable name, an unknown marking level).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
    /// A type not accepted, or bytes that are not what the name says.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Conflicts with work already queued (a second re-index of everything).
    #[error("{0}")]
    Conflict(String),
    /// The job store or the library's files (a fault of this machine).
    #[error("library: {0}")]
    Store(String),
    /// The job worker is not running.
    #[error("library: {0}")]
    Stopped(String),
}

impl Faulted for LibraryError {
    fn fault(&self) -> Fault {
        match self {
            Self::Invalid(_) => Fault::Invalid,
            Self::TooLarge(_) => Fault::TooLarge,
            Self::Unsupported(_) => Fault::Unsupported,
            Self::NotFound(_) => Fault::NotFound,
            Self::Conflict(_) => Fault::Conflict,
            Self::Store(_) => Fault::Internal,
            Self::Stopped(_) => Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "bad_request",
            Self::TooLarge(_) => "too_large",
            Self::Unsupported(_) => "unsupported_type",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Store(_) => "library_failed",
            Self::Stopped(_) => "library_unavailable",
        }
    }
}

pub type Result<T> = std::result::Result<T, LibraryError>;

/// Extensions an upload may have.
pub const ALLOWED_EXTENSIONS: &[&str] = &["md", "markdown", "txt", "html", "htm", "pdf", "docx"];
/// Longest name (in characters) shown for an upload; longer names are refused.
const MAX_NAME_CHARS: usize = 200;
/// Longest stem kept in a generated file name / document id.
const MAX_ID_CHARS: usize = 60;
/// Longest metadata value accepted from a form.
const MAX_FIELD_CHARS: usize = 300;

pub struct Library {
    /// Canonical path of `<data-dir>/library`.
    dir: PathBuf,
    pub config: LibraryConfig,
    pub ingestor: Ingestor,
    pub jobs: Jobs,
    /// Held while choosing names and creating files, so two uploads never pick the same.
    naming: Mutex<()>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Library {
    /// Opens (creating) `<data_dir>/library/` and `<data_dir>/jobs.sqlite`.
    pub fn open(data_dir: &Path, config: LibraryConfig, ingestor: Ingestor) -> Result<Self> {
        let dir = data_dir.join("library");
        std::fs::create_dir_all(&dir)
            .map_err(|e| LibraryError::Store(format!("cannot create {}: {e}", dir.display())))?;
        let dir = std::fs::canonicalize(&dir)
            .map_err(|e| LibraryError::Store(format!("cannot open {}: {e}", dir.display())))?;
        // Uploads are written here while they stream in, and moved into place once every
        // file of the request passed; whatever a crash left behind is discarded.
        let staging = dir.join(".staging");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| {
            LibraryError::Store(format!("cannot create {}: {e}", staging.display()))
        })?;
        let store = Arc::new(JobStore::open(&data_dir.join("jobs.sqlite"))?);
        Ok(Self {
            dir,
            config,
            ingestor,
            jobs: Jobs::new(store),
            naming: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh path for a file being received (hidden from the indexer).
    pub fn staging_path(&self) -> PathBuf {
        self.dir
            .join(".staging")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// True if `path` is a file inside the library.
    pub fn contains(&self, path: &Path) -> bool {
        std::fs::canonicalize(path)
            .map(|p| p.starts_with(&self.dir) && p != self.dir)
            .unwrap_or(false)
    }

    /// Stores checked uploads under fresh names with their sidecars and returns the job's
    /// file list. Either every file is stored or none is.
    pub fn store(
        &self,
        files: &[Upload],
        meta: &UploadMeta,
        taken_ids: &HashSet<String>,
    ) -> Result<Vec<FileResult>> {
        let _naming = self.naming.lock().unwrap_or_else(|p| p.into_inner());
        let mut reserved = taken_ids.clone();
        let mut written: Vec<PathBuf> = Vec::new();
        let result = (|| -> Result<Vec<FileResult>> {
            let mut out = Vec::new();
            for file in files {
                let stem = Path::new(&file.name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let id = self.fresh_id(&stem, &reserved);
                reserved.insert(id.clone());
                let path = self.dir.join(format!("{id}.{}", file.extension));
                let sidecar = sidecar_path(&path);
                if path.parent() != Some(self.dir.as_path()) {
                    return Err(LibraryError::Invalid(format!(
                        "'{}' cannot be stored safely",
                        file.name
                    )));
                }
                if path.exists() || sidecar.exists() {
                    return Err(LibraryError::Store(format!("{} exists", path.display())));
                }
                // The sidecar first: a re-index running meanwhile never sees the file
                // without the id it is meant to have.
                write_new(&sidecar, meta.sidecar(&id)?.as_bytes())?;
                written.push(sidecar);
                std::fs::rename(&file.staged, &path).map_err(|e| {
                    LibraryError::Store(format!("cannot store {}: {e}", path.display()))
                })?;
                written.push(path.clone());
                if !self.contains(&path) {
                    return Err(LibraryError::Invalid(format!(
                        "'{}' cannot be stored safely",
                        file.name
                    )));
                }
                out.push(FileResult::pending(
                    file.name.clone(),
                    path.to_string_lossy().into_owned(),
                    Some(id),
                ));
            }
            Ok(out)
        })();
        if result.is_err() {
            for path in written {
                let _ = std::fs::remove_file(path);
            }
        }
        result
    }

    /// A document id (and file stem) from an upload's name, unused by any document or
    /// library file.
    fn fresh_id(&self, stem: &str, taken: &HashSet<String>) -> String {
        let mut base: String = doctrina_ingest::slug(stem)
            .chars()
            .take(MAX_ID_CHARS)
            .collect();
        while base.ends_with('-') {
            base.pop();
        }
        if base.is_empty() {
            base = "document".to_string();
        }
        let used = |id: &str| {
            taken.contains(id)
                || ALLOWED_EXTENSIONS
                    .iter()
                    .any(|ext| self.dir.join(format!("{id}.{ext}")).exists())
        };
        if !used(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|id| !used(id))
            .expect("some suffix is free")
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| LibraryError::Store(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| LibraryError::Store(format!("cannot write {}: {e}", path.display())))
}

/// One uploaded file, checked: a clean display name, an allowed extension, and bytes that
/// are what the extension says.
#[derive(Debug)]
pub struct Upload {
    pub name: String,
    pub extension: String,
    /// Where the received bytes wait (removed on drop unless moved into the library).
    pub staged: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.staged);
    }
}

impl Upload {
    /// Checks a file received into `staged` (at most `limit` bytes). Unsupported types and
    /// renamed binaries are 415. The staged file is removed if it is refused.
    pub fn check(raw_name: &str, staged: PathBuf, limit: u64) -> Result<Self> {
        let checked = std::fs::read(&staged)
            .map_err(|e| LibraryError::Store(format!("cannot read the received file: {e}")))
            .and_then(|bytes| {
                if bytes.len() as u64 > limit {
                    return Err(LibraryError::TooLarge(format!(
                        "a file is larger than the upload limit of {limit} bytes"
                    )));
                }
                Self::check_bytes(raw_name, &bytes)
            });
        match checked {
            Ok((name, extension)) => Ok(Self {
                name,
                extension,
                staged,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                Err(e)
            }
        }
    }

    /// The display name and extension of a file with these bytes, or why it is refused.
    fn check_bytes(raw_name: &str, bytes: &[u8]) -> Result<(String, String)> {
        let name = clean_name(raw_name)?;
        let extension = Path::new(&name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if !ALLOWED_EXTENSIONS.contains(&extension.as_str()) {
            return Err(LibraryError::Unsupported(format!(
                "'{name}': unsupported file type '{}' (allowed: {})",
                if extension.is_empty() {
                    "(none)"
                } else {
                    &extension
                },
                ALLOWED_EXTENSIONS.join(", ")
            )));
        }
        let format = SourceFormat::from_extension(&extension).ok_or_else(|| {
            LibraryError::Unsupported(format!("'{name}': unsupported file type '{extension}'"))
        })?;
        if bytes.is_empty() {
            return Err(LibraryError::Invalid(format!("'{name}' is empty")));
        }
        doctrina_ingest::sniff(format, bytes).map_err(|e| {
            LibraryError::Unsupported(format!("'{name}' is not a {} file: {e}", format.as_str()))
        })?;
        Ok((name, extension))
    }
}

/// The name shown for an upload: its final path component (after `/` or `\`), without
/// control characters or leading dots. Refused if nothing is left or it is too long.
pub fn clean_name(raw: &str) -> Result<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return Err(LibraryError::Invalid(
            "a file has no usable name".to_string(),
        ));
    }
    if cleaned.chars().count() > MAX_NAME_CHARS {
        return Err(LibraryError::Invalid(format!(
            "a file name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(cleaned.to_string())
}

/// Metadata sent with an upload, written to the sidecar.
#[derive(Debug, Clone, Default)]
pub struct UploadMeta {
    pub title: Option<String>,
    pub publication: Option<String>,
    pub edition: Option<String>,
    pub marking: Option<String>,
    pub supersedes: Option<String>,
}

impl UploadMeta {
    /// Sets a field from a form value (control characters dropped, bounded); unknown
    /// fields are ignored.
    pub fn set(&mut self, field: &str, value: &str) -> Result<()> {
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        let value = value.trim();
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(LibraryError::Invalid(format!(
                "'{field}' is longer than {MAX_FIELD_CHARS} characters"
            )));
        }
        let value = (!value.is_empty()).then(|| value.to_string());
        match field {
            "title" => self.title = value,
            "publication" => self.publication = value,
            "edition" => self.edition = value,
            "marking" => self.marking = value,
            _ => {}
        }
        Ok(())
    }

    /// Refuses a marking the scheme does not know, before anything is stored.
    pub fn validate(&self, scheme: &doctrina_types::MarkingScheme) -> Result<()> {
        if let Some(marking) = &self.marking {
            let level = marking.split("//").next().unwrap_or_default().trim();
            if scheme.canonical(level).is_none() {
                return Err(LibraryError::Invalid(format!(
                    "unknown marking level '{level}' (known: {})",
                    scheme.levels.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The sidecar YAML (serialised, so any value is quoted as needed).
    fn sidecar(&self, id: &str) -> Result<String> {
        let mut map = BTreeMap::new();
        map.insert("id", id.to_string());
        for (key, value) in [
            ("title", &self.title),
            ("publication", &self.publication),
            ("edition", &self.edition),
            ("marking", &self.marking),
            ("supersedes", &self.supersedes),
        ] {
            if let Some(v) = value {
                map.insert(key, v.clone());
            }
        }
        serde_yaml_ng::to_string(&map)
            .map_err(|e| LibraryError::Store(format!("sidecar not written: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_a_clean_final_component() {
        assert_eq!(clean_name("../../etc/passwd.md").unwrap(), "passwd.md");
        assert_eq!(clean_name("..\\x.md").unwrap(), "x.md");
        assert_eq!(clean_name("/etc/passwd.md").unwrap(), "passwd.md");
        assert_eq!(clean_name("a\0b\n.md").unwrap(), "ab.md");
        assert_eq!(clean_name("...hidden.md").unwrap(), "hidden.md");
        assert!(clean_name("..").is_err());
        assert!(clean_name("dir/").is_err());
        assert!(clean_name(&format!("{}.md", "x".repeat(300))).is_err());
    }

    #[test]
    fn renamed_binaries_and_other_types_are_415() {
        let err = Upload::check_bytes("a.pdf", b"\x7fELF\x02\x01\x01").unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        assert!(err.to_string().contains("a.pdf"), "{err}");
        let err = Upload::check_bytes("a.exe", b"MZ").unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        assert_eq!(
            Upload::check_bytes("dir/a.MD", b"# hi\n").unwrap(),
            ("a.MD".to_string(), "md".to_string())
        );
    }

    #[test]
    fn sidecar_values_are_quoted() {
        let meta = UploadMeta {
            title: Some("x\": y\n- z".to_string()),
            ..UploadMeta::default()
        };
        let yaml = meta.sidecar("doc").unwrap();
        let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back["title"], "x\": y\n- z");
        assert_eq!(back["id"], "doc");
    }
}
