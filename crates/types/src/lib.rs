//! Shared domain types for doctrina: documents, passages, markings, search hits and the
//! layered configuration. Every other crate speaks in these types; this crate depends on
//! nothing of doctrina's own.

pub mod config;
mod document;
mod marking;
mod passage;
mod search;

pub use config::Config;
pub use document::{DocumentMeta, DocumentStatus, SourceFormat};
pub use marking::{Clearance, Marking, MarkingScheme, UNREADABLE, caveat_token};
pub use passage::Passage;
pub use search::{PassageFilter, ScoreBreakdown, SearchHit, SearchMode};

use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of `bytes`; used for content hashes of files and passage texts.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Dimension of the embedding vectors (all-MiniLM-L6-v2).
pub const EMBEDDING_DIM: usize = 384;
