//! Reading a file safely: size limit before reading, format by extension checked against the
//! content, UTF-8 and binary checks with the offset of the first bad byte.

use std::io::Read;
use std::path::{Path, PathBuf};

use doctrina_types::SourceFormat;

use crate::error::{IngestError, Result};

pub use crate::meta::SidecarMeta;

/// `report.pdf` -> `report.pdf.meta.yaml`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".meta.yaml");
    path.with_file_name(name)
}

/// True for files that are metadata sidecars, not documents.
pub fn is_sidecar(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".meta.yaml"))
}

pub fn format_of(path: &Path) -> Result<SourceFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    SourceFormat::from_extension(ext).ok_or_else(|| IngestError::Unsupported {
        extension: if ext.is_empty() {
            "(none)".to_string()
        } else {
            ext.to_string()
        },
    })
}

/// Reads a file, refusing empty files and files over `limit` bytes before reading them.
pub fn read_checked(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size == 0 {
        return Err(IngestError::Empty);
    }
    if size > limit {
        return Err(IngestError::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while being read.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(IngestError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

pub fn read_sidecar_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    let side = sidecar_path(path);
    match std::fs::read(&side) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IngestError::Io { path: side, source }),
    }
}

/// Decodes a text format: rejects binary content and invalid UTF-8 with the first bad
/// offset; strips a UTF-8 byte-order mark.
pub fn decode_text(bytes: &[u8]) -> Result<&str> {
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(IngestError::Binary {
            format: "text",
            offset,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| IngestError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Checks that `bytes` really are the format their extension claims, without parsing them:
/// a PDF has a `%PDF-` header near the start, a DOCX is a zip archive, and the text formats
/// are NUL-free UTF-8. A file that passes can still fail to parse (a corrupt PDF); one that
/// fails is not that kind of file at all (a binary renamed `.pdf`).
pub fn sniff(format: SourceFormat, bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Err(IngestError::Empty);
    }
    match format {
        SourceFormat::Pdf => {
            let head = &bytes[..bytes.len().min(1024)];
            if head.windows(5).any(|w| w == b"%PDF-") {
                Ok(())
            } else {
                Err(IngestError::CorruptPdf(
                    "no %PDF header: this is not a PDF file".to_string(),
                ))
            }
        }
        SourceFormat::Docx => {
            if bytes.starts_with(b"PK\x03\x04") {
                Ok(())
            } else {
                Err(IngestError::CorruptDocx(
                    "not a zip archive, so not a .docx file".to_string(),
                ))
            }
        }
        SourceFormat::Markdown | SourceFormat::Text | SourceFormat::Html => {
            decode_text(bytes).map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reports_first_bad_byte() {
        let err = decode_text(b"abc\xff\xfe").unwrap_err();
        assert!(
            matches!(err, IngestError::InvalidUtf8 { offset: 3 }),
            "{err}"
        );
        let err = decode_text(b"ab\0cd").unwrap_err();
        assert!(
            matches!(err, IngestError::Binary { offset: 2, .. }),
            "{err}"
        );
        assert_eq!(decode_text("\u{feff}hi".as_bytes()).unwrap(), "hi");
    }

    #[test]
    fn sniffing_rejects_renamed_binaries() {
        assert!(sniff(SourceFormat::Pdf, b"%PDF-1.7\ngarbage").is_ok());
        assert!(sniff(SourceFormat::Pdf, b"\x7fELF\x02\x01").is_err());
        assert!(sniff(SourceFormat::Docx, b"PK\x03\x04rest").is_ok());
        assert!(sniff(SourceFormat::Docx, b"%PDF-1.7").is_err());
        assert!(sniff(SourceFormat::Markdown, b"# Title\n").is_ok());
        assert!(sniff(SourceFormat::Markdown, b"\x7fELF\x00\x01").is_err());
    }

    #[test]
    fn sidecars_are_named_after_their_document() {
        assert_eq!(
            sidecar_path(Path::new("/a/b/fm-5-0.pdf")),
            PathBuf::from("/a/b/fm-5-0.pdf.meta.yaml")
        );
        assert!(is_sidecar(Path::new("x.pdf.meta.yaml")));
        assert!(!is_sidecar(Path::new("x.yaml")));
    }
}
