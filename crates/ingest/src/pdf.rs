//! PDF text layer via pdf-extract (on lopdf), one string per page, then the same
//! furniture-stripping and paragraph rebuilding as plain text with real page numbers.
//!
//! pdf-extract can panic on malformed content streams; a panic is caught here and reported
//! as a corrupt PDF so that one bad file never takes down an indexing run.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::blocks::Block;
use crate::error::{IngestError, Result};
use crate::text;

pub fn extract(bytes: &[u8], publication: Option<&str>) -> Result<Vec<Block>> {
    if !bytes.starts_with(b"%PDF") {
        let head = bytes.iter().take(1024);
        if !head.clone().any(|&b| b == b'%') || !bytes.windows(5).take(1024).any(|w| w == b"%PDF-")
        {
            return Err(IngestError::CorruptPdf(
                "no %PDF header: this is not a PDF file".to_string(),
            ));
        }
    }
    let pages = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<String>> {
        let doc = pdf_extract::Document::load_mem(bytes)
            .map_err(|e| IngestError::CorruptPdf(e.to_string()))?;
        if doc.is_encrypted() {
            // PDFs "encrypted" with an empty user password are readable; try that first.
            return pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| {
                tracing::debug!(error = %e, "encrypted pdf could not be opened");
                IngestError::EncryptedPdf
            });
        }
        pdf_extract::extract_text_from_mem_by_pages(bytes)
            .map_err(|e| IngestError::CorruptPdf(e.to_string()))
    }))
    .map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the parser failed");
        IngestError::CorruptPdf(format!("unreadable content ({why})"))
    })??;
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    Ok(text::extract_pages(
        &refs,
        true,
        publication,
        text::Layout::Pdf,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_clear_error() {
        let err = extract(b"this is not a pdf at all", None).unwrap_err();
        assert!(err.to_string().contains("not a PDF"), "{err}");
        let err = extract(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", None).unwrap_err();
        assert!(matches!(err, IngestError::CorruptPdf(_)), "{err}");
    }
}
