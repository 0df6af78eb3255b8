//! The live glossary: a file custodians edit (in the app or with `doctrina glossary import`),
//! read once and swapped whole when it is replaced, so a search always sees one consistent
//! version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use doctrina_korean::{Glossary, GlossaryError};

/// The starter glossary bundled with doctrina (`corpus/glossary.txt`): common ROK–US staff
/// terms, written for the project; custodians review and extend it.
pub const STARTER: &str = include_str!("../../../corpus/glossary.txt");

#[derive(Debug, thiserror::Error)]
pub enum GlossaryStoreError {
    #[error("the glossary has {} bad line(s): {}", .0.len(), describe(.0))]
    Invalid(Vec<GlossaryError>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn describe(errors: &[GlossaryError]) -> String {
    errors
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl doctrina_types::Faulted for GlossaryStoreError {
    fn fault(&self) -> doctrina_types::Fault {
        match self {
            Self::Invalid(_) => doctrina_types::Fault::Invalid,
            Self::Io { .. } => doctrina_types::Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_glossary",
            Self::Io { .. } => "glossary_unavailable",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Invalid(_) => self.to_string(),
            Self::Io { .. } => "the glossary file could not be read or written".to_string(),
        }
    }
}

#[derive(Debug)]
pub struct GlossaryStore {
    path: PathBuf,
    current: RwLock<Arc<Glossary>>,
    /// Bad lines of the file as last loaded (a file edited by hand may have some).
    problems: RwLock<Vec<GlossaryError>>,
}

impl GlossaryStore {
    /// Opens the glossary at `path`, writing the bundled starter there first if there is
    /// no file yet. Bad lines in an existing file are kept out and reported
    /// ([`GlossaryStore::problems`]); an unreadable file is an error.
    pub fn open(path: &Path) -> Result<Self, GlossaryStoreError> {
        let io = |source| GlossaryStoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            doctrina_types::write_atomically(path, STARTER.as_bytes()).map_err(io)?;
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let (glossary, problems) = Glossary::parse_lenient(&text);
        for problem in &problems {
            tracing::warn!(path = %path.display(), %problem, "glossary line left out");
        }
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(glossary)),
            problems: RwLock::new(problems),
        })
    }

    /// A glossary that is not backed by a file (tests, tools).
    pub fn in_memory(glossary: Glossary) -> Self {
        Self {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(glossary)),
            problems: RwLock::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> Arc<Glossary> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn problems(&self) -> Vec<GlossaryError> {
        self.problems
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file's text as it is now.
    pub fn text(&self) -> Result<String, GlossaryStoreError> {
        std::fs::read_to_string(&self.path).map_err(|source| GlossaryStoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Replaces the glossary with `text` if every line is valid (else nothing changes and
    /// every bad line is returned). The previous file is kept as `<name>.previous`.
    /// Returns the number of entries.
    pub fn replace(&self, text: &str) -> Result<usize, GlossaryStoreError> {
        let glossary = Glossary::parse(text).map_err(GlossaryStoreError::Invalid)?;
        let io = |source| GlossaryStoreError::Io {
            path: self.path.clone(),
            source,
        };
        if self.path.exists() {
            let previous = previous_path(&self.path);
            std::fs::copy(&self.path, &previous).map_err(io)?;
        }
        doctrina_types::write_atomically(&self.path, text.as_bytes()).map_err(io)?;
        let entries = glossary.len();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(glossary);
        self.problems
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(entries)
    }
}

fn previous_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".previous");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_glossary_is_valid() {
        let glossary = Glossary::parse(STARTER).expect("the bundled glossary parses");
        assert!(glossary.len() >= 200, "{}", glossary.len());
    }

    #[test]
    fn seeded_replaced_and_bad_text_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glossary.txt");
        let store = GlossaryStore::open(&path).unwrap();
        assert_eq!(store.text().unwrap(), STARTER);
        let before = store.get().len();
        let err = store
            .replace("지속지원 = sustainment\nnot a line\n")
            .unwrap_err();
        assert!(matches!(&err, GlossaryStoreError::Invalid(e) if e.len() == 1 && e[0].line == 2));
        assert_eq!(store.get().len(), before, "a bad edit changes nothing");
        assert_eq!(store.replace("지속지원 = sustainment\n").unwrap(), 1);
        assert_eq!(store.get().len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("glossary.txt.previous")).unwrap(),
            STARTER
        );
        // A hand-edited file with a bad line loads its good lines and names the bad one.
        std::fs::write(&path, "작전명령 = operation order\noops\n").unwrap();
        let reopened = GlossaryStore::open(&path).unwrap();
        assert_eq!(reopened.get().len(), 1);
        assert_eq!(reopened.problems()[0].line, 2);
    }
}
