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
    #[error("vector store: {0}")]
    Vector(String),
    #[error(transparent)]
    Embed(#[from] doctrina_embed::EmbedError),
    #[error("catalog data is inconsistent: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, IndexError>;

impl doctrina_types::Faulted for IndexError {
    fn fault(&self) -> doctrina_types::Fault {
        match self {
            Self::Embed(e) => e.fault(),
            _ => doctrina_types::Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Embed(e) => e.code(),
            Self::Locked { .. } => "index_locked",
            Self::Vector(_) => "vector_store_unavailable",
            _ => "index_unavailable",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Embed(e) => e.public_message(),
            // Names the vector server and what failed; carries no secrets.
            Self::Vector(_) => self.to_string(),
            _ => "the search index is unavailable; try again shortly".to_string(),
        }
    }
}
