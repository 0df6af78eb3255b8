use std::path::PathBuf;

/// Why a file could not be ingested. Every variant but `Io` is a problem with the input;
/// messages are written for the custodian who has to fix the file.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the {limit}-byte limit (ingest.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("unsupported file type '{extension}' (supported: md, txt, html, pdf, docx)")]
    Unsupported { extension: String },
    #[error("binary content in a {format} file (NUL byte at offset {offset}); not a text document")]
    Binary { format: &'static str, offset: usize },
    #[error("invalid UTF-8 at byte {offset}; save the file as UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("encrypted PDF: remove the password protection before loading it")]
    EncryptedPdf,
    #[error("corrupt or unreadable PDF: {0}")]
    CorruptPdf(String),
    #[error("corrupt or unreadable DOCX: {0}")]
    CorruptDocx(String),
    #[error("no text found (a scanned PDF without a text layer, or an empty document)")]
    NoText,
    #[error("invalid metadata in {origin}: {message}")]
    Metadata { origin: String, message: String },
}

impl IngestError {
    /// True when the input is at fault (as opposed to the machine, e.g. a read error).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }
}

pub type Result<T> = std::result::Result<T, IngestError>;
