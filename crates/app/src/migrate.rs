//! `doctrina vectors migrate`: moving a data directory's vectors to another backend (the
//! embedded Qdrant Edge, or a Qdrant server) by copying the stored vectors, never by
//! embedding again.
//!
//! A marker file in the data directory names the target while a copy is under way, so a
//! killed copy resumes into the same target (documents it already holds in full are
//! skipped) instead of refusing a target that is no longer empty.

use std::path::{Path, PathBuf};

use doctrina_index::{CopyReport, IndexError, Indexes};
use doctrina_types::Config;
use doctrina_types::config::VectorConfig;
use serde::{Deserialize, Serialize};

use crate::open_vector_store;

const MARKER: &str = "vector-migration.json";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The request cannot be carried out as asked (same backend, a target in use).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a migration did, as `doctrina vectors migrate --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// The store the vectors were read from, and the one they were written to.
    pub from: String,
    pub to: String,
    /// Whether an interrupted copy into the same target was resumed.
    pub resumed: bool,
    #[serde(flatten)]
    pub copy: CopyReport,
}

/// The copy under way, recorded in the data directory.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Marker {
    target: String,
}

/// Copies the vectors of `indexes` (opened with `config`'s backend) into the backend
/// `target` describes. Refuses a target that is the source, or that already holds vectors
/// not written by an interrupted copy of this data directory unless `overwrite` (which
/// empties it first). `progress(done, total)` counts passages.
pub fn migrate_vectors(
    config: &Config,
    indexes: &Indexes,
    target: &VectorConfig,
    dimension: usize,
    overwrite: bool,
    progress: &dyn Fn(usize, usize),
) -> Result<MigrationReport, MigrateError> {
    let source = &config.vector;
    let same = source.backend == target.backend
        && (target.backend == "edge"
            || (source.url == target.url && source.collection == target.collection));
    if same {
        return Err(MigrateError::Refused(format!(
            "the vectors are already in {}; name another backend, server or collection",
            indexes.vectors.describe()
        )));
    }
    let target_config = Config {
        vector: target.clone(),
        ..config.clone()
    };
    let store = open_vector_store(&target_config, &config.data_dir, dimension)?;
    let to = store.describe();
    let marker_path = config.data_dir.join(MARKER);
    let resumed = read_marker(&marker_path)?.is_some_and(|m| m.target == to);
    if !resumed {
        let held = store.count()?;
        if held > 0 && !overwrite {
            return Err(MigrateError::Refused(format!(
                "{to} already holds {held} vectors; pass --overwrite to replace them"
            )));
        }
        if held > 0 {
            store.retain_docs(&[])?;
        }
        write_marker(&marker_path, &Marker { target: to.clone() })?;
    }
    let copy = indexes.copy_vectors(store.as_ref(), progress)?;
    std::fs::remove_file(&marker_path).map_err(|source| MigrateError::Io {
        path: marker_path.clone(),
        source,
    })?;
    Ok(MigrationReport {
        from: indexes.vectors.describe(),
        to,
        resumed,
        copy,
    })
}

fn read_marker(path: &Path) -> Result<Option<Marker>, MigrateError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MigrateError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_marker(path: &Path, marker: &Marker) -> Result<(), MigrateError> {
    let bytes = serde_json::to_vec(marker).unwrap_or_default();
    doctrina_types::write_atomically(path, &bytes).map_err(|source| MigrateError::Io {
        path: path.to_path_buf(),
        source,
    })
}
