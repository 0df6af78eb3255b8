//! The indexes: the SQLite catalog (source of truth), the tantivy keyword index and the
//! vector store, kept in agreement by [`Indexes`], plus the incremental [`indexer`].

mod access;
pub mod analysis;
pub mod catalog;
#[cfg(test)]
mod conformance;
mod error;
pub mod indexer;
pub mod keyword;
pub mod qdrant;
mod store;
pub mod vector;

pub use access::AccessFilter;
pub use catalog::{Catalog, DocumentRecord, Newer, StoredPassage};
pub use error::{IndexError, Result};
pub use indexer::{IndexReport, Indexer, Progress};
pub use keyword::KeywordIndex;
pub use qdrant::{QdrantSettings, QdrantVectorStore};
pub use store::{
    CaveatTokens, CopyReport, DocumentLanguage, HealthReport, Indexes, PreparedDocument,
    caveat_tokens_of,
};
pub use vector::{EdgeVectorStore, VectorPoint, VectorStore};
