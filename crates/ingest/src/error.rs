use std::path::PathBuf;

use doctrina_types::SourceFormat;

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
    #[error("{}", no_text_message(*format))]
    NoText { format: SourceFormat },
    #[error("invalid metadata in {origin}: {message}")]
    Metadata { origin: String, message: String },
    #[error(
        "no classification marking: none in its metadata (front matter or sidecar), and no banner \
         line or portion mark in its text; add `marking:` to its metadata, or set a default \
         (ingest.default_marking, or `marking:` in a .doctrina-defaults.yaml in its folder)"
    )]
    Unmarked,
    /// The isolated parser died on the file (a stack overflow, a memory fault, an abort).
    #[error("the parser crashed on this file ({detail}); the file is malformed or hostile")]
    ParserCrashed { detail: String },
    #[error(
        "parsing took longer than {secs} s (ingest.extract_timeout_secs); the file is malformed or too complex"
    )]
    ParserTimeout { secs: u64 },
    #[error(
        "parsing used more than {secs} s of CPU (ingest.extract_cpu_secs); the file is malformed or too complex"
    )]
    ParserCpu { secs: u64 },
    #[error(
        "parsing needed more than {limit_mb} MB of memory (ingest.extract_memory_mb); the file is malformed or too large"
    )]
    ParserMemory { limit_mb: u64 },
    /// An error the isolated parser reported (its message as the parser wrote it).
    #[error("{message}")]
    Reported { message: String, input: bool },
    /// The isolated parser could not be started or answered nonsense: a fault of this
    /// machine or installation, not of the file.
    #[error("the document parser could not run: {0}")]
    Sandbox(String),
}

fn no_text_message(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::Pdf => {
            "no text found: the PDF has no text layer (a scanned PDF needs OCR before it can be indexed)"
        }
        _ => "no text found: the document is empty apart from headings and markup",
    }
}

impl IngestError {
    /// True when the input is at fault (as opposed to the machine, e.g. a read error).
    pub fn is_input_error(&self) -> bool {
        match self {
            Self::Io { .. } | Self::Sandbox(_) => false,
            Self::Reported { input, .. } => *input,
            _ => true,
        }
    }
}

pub type Result<T> = std::result::Result<T, IngestError>;

impl doctrina_types::Faulted for IngestError {
    fn fault(&self) -> doctrina_types::Fault {
        use doctrina_types::Fault;
        match self {
            Self::TooLarge { .. } => Fault::TooLarge,
            Self::Unsupported { .. } => Fault::Unsupported,
            Self::Io { .. } => Fault::Internal,
            Self::Sandbox(_) => Fault::Unavailable,
            Self::Reported { input: false, .. } => Fault::Internal,
            _ => Fault::Invalid,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Unsupported { .. } => "unsupported_type",
            Self::Unmarked => "unmarked",
            Self::Metadata { .. } => "invalid_metadata",
            Self::Io { .. } | Self::Reported { input: false, .. } => "io_error",
            Self::Sandbox(_) => "parser_unavailable",
            _ => "invalid_document",
        }
    }
}
