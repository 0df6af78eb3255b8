use std::path::PathBuf;

/// Failures of the index layer. None of these is the user's input: they are the machine
/// (disk, locks, a missing runtime) or a bug, and the web layer reports them as 5xx/503.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "data directory {path} is in use by another doctrina process (stop it, or use its HTTP API)"
    )]
    Locked { path: PathBuf },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog: {0}")]
    Catalog(#[from] rusqlite::Error),
    #[error("keyword index: {0}")]
    Keyword(#[from] tantivy::TantivyError),
    #[error("keyword index {path} was written with another schema: {message}")]
    KeywordSchema { path: PathBuf, message: String },
    /// A bug: a filter reached an index with its clearance not yet turned into ranks and
    /// caveats, and searching would ignore it.
    #[error("a search filter still carries an unresolved clearance")]
    UnresolvedClearance,
    #[error("vector store: {0}")]
    Vector(String),
    #[error(transparent)]
    Embed(#[from] doctrina_embed::EmbedError),
    #[error("catalog data is inconsistent: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, IndexError>;
