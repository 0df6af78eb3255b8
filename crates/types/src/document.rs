use serde::{Deserialize, Serialize};

use crate::Marking;

/// The source formats doctrina can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Markdown,
    Text,
    Html,
    Pdf,
    Docx,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Html => "html",
            Self::Pdf => "pdf",
            Self::Docx => "docx",
        }
    }

    /// The format for a file extension (case-insensitive), if supported.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            "html" | "htm" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            _ => None,
        }
    }
}

/// Descriptive metadata of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// Stable id: from metadata if given, otherwise derived from the source path.
    pub id: String,
    pub title: String,
    /// Publication number such as `ATP 4-0.6`.
    pub publication: Option<String>,
    /// Edition date as written in the metadata (ISO `YYYY-MM-DD` where known).
    pub edition: Option<String>,
    pub supersedes: Option<String>,
    /// The highest marking stated anywhere about the document (metadata, banner lines,
    /// portion marks, a configured default for unmarked files).
    pub marking: Marking,
    /// Where `marking` came from, one line per statement (`sidecar: SECRET//NOFORN`,
    /// `banner line 1: SECRET`), led by a note when the statements disagree.
    #[serde(default)]
    pub marking_basis: Vec<String>,
    /// Metadata keys doctrina does not interpret, kept as written (shown on the document
    /// page): `법령구분: 법률`, `reviewed_by: ...`.
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
    /// The language of the text: `en`, `ko`, `mixed` (both scripts in quantity) or empty
    /// when there are no letters. Retrieval weighs the keyword side by how much of the
    /// corpus is in the query's language.
    #[serde(default)]
    pub language: String,
    pub source_path: String,
    pub format: SourceFormat,
    /// sha256 of the source file's bytes (and its sidecar, if any).
    pub content_hash: String,
}

/// Where a document stands in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Chunks are being written; a document left in this state was interrupted.
    Indexing,
    Indexed,
    Failed,
    /// Being removed from the indexes; a document left in this state was interrupted.
    Deleting,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Indexing => "indexing",
            Self::Indexed => "indexed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "indexing" => Some(Self::Indexing),
            "indexed" => Some(Self::Indexed),
            "failed" => Some(Self::Failed),
            "deleting" => Some(Self::Deleting),
            _ => None,
        }
    }
}
