//! Shared domain types for doctrina: documents, passages, markings, search hits and the
//! layered configuration. Every other crate speaks in these types; this crate depends on
//! nothing of doctrina's own.

pub mod config;
mod document;
mod marking;
mod passage;
mod search;

pub mod fault;

pub use config::Config;
pub use document::{DocumentMeta, DocumentStatus, SourceFormat};
pub use fault::{Fault, Faulted};
pub use marking::{Clearance, Marking, MarkingScheme, UNREADABLE, caveat_token};
pub use passage::Passage;
pub use search::{PassageFilter, QueryPlan, ScoreBreakdown, SearchHit, SearchMode};

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

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first) prefixed with `'`, for CSV exports of untrusted text (document text,
/// questions, search queries, account names).
pub fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spreadsheet_formulas_are_defused() {
        use super::spreadsheet_safe as cell;
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("plain"), "plain");
    }
}
