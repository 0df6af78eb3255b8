//! Ingestion: read a source file, check it, extract its structure and cut it into citable
//! passages.
//!
//! The path is `bytes -> Block`s (format-specific extractors) `-> normalised text + Passage`s
//! (the format-independent chunker). Extractors only say what each block *is* (heading,
//! paragraph, list item, table, note, caption) and on which page it sits; numbered paragraph
//! identities, section paths, offsets and chunk sizes are decided once, in [`chunk`].

mod blocks;
pub mod chunk;
mod detect;
mod docx;
mod error;
mod html;
mod markdown;
mod meta;
mod pdf;
mod text;

pub use blocks::{Block, BlockKind};
pub use chunk::{ChunkOptions, Chunked};
pub use detect::{SidecarMeta, is_sidecar, sidecar_path, sniff};
pub use error::{IngestError, Result};

use std::path::Path;

use doctrina_types::config::IngestConfig;
use doctrina_types::{DocumentMeta, MarkingScheme, Passage, SourceFormat, sha256_hex};

/// Bump when parsing or chunking changes what a file turns into: documents indexed by an
/// older pipeline are re-indexed even though their bytes did not change.
pub const PIPELINE_VERSION: u32 = 1;

/// A parsed document: its metadata, normalised text and passages.
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    pub meta: DocumentMeta,
    /// The normalised document text that passage offsets point into.
    pub text: String,
    pub passages: Vec<Passage>,
}

/// Parses source files into [`ParsedDocument`]s.
#[derive(Debug, Clone)]
pub struct Ingestor {
    config: IngestConfig,
    scheme: MarkingScheme,
}

impl Ingestor {
    pub fn new(config: IngestConfig, scheme: MarkingScheme) -> Self {
        Self { config, scheme }
    }

    /// The content hash the catalog compares to decide whether a file changed: the file's
    /// bytes plus its metadata sidecar, if any. Cheap next to parsing.
    pub fn content_hash(&self, path: &Path) -> Result<String> {
        let bytes = detect::read_checked(path, self.config.max_file_bytes)?;
        let sidecar = detect::read_sidecar_bytes(path)?;
        Ok(hash_with_sidecar(&bytes, sidecar.as_deref()))
    }

    /// Reads, checks and parses one file. `id_hint` is the id to use when the file's own
    /// metadata does not set one (normally derived from its path).
    pub fn parse_file(&self, path: &Path, id_hint: &str) -> Result<ParsedDocument> {
        let format = detect::format_of(path)?;
        let bytes = detect::read_checked(path, self.config.max_file_bytes)?;
        let sidecar_bytes = detect::read_sidecar_bytes(path)?;
        let content_hash = hash_with_sidecar(&bytes, sidecar_bytes.as_deref());
        let sidecar = sidecar_bytes
            .as_deref()
            .map(|b| meta::parse_sidecar(b, &sidecar_path(path)))
            .transpose()?;
        self.parse_bytes(
            &bytes,
            format,
            sidecar,
            path.to_string_lossy().as_ref(),
            id_hint,
            content_hash,
        )
    }

    /// Parses in-memory bytes of a known format (used by uploads and tests).
    pub fn parse_bytes(
        &self,
        bytes: &[u8],
        format: SourceFormat,
        sidecar: Option<SidecarMeta>,
        source_path: &str,
        id_hint: &str,
        content_hash: String,
    ) -> Result<ParsedDocument> {
        if bytes.is_empty() {
            return Err(IngestError::Empty);
        }
        let extracted = match format {
            SourceFormat::Markdown | SourceFormat::Text => {
                let text = detect::decode_text(bytes)?;
                let (front, body) = meta::split_front_matter(text)?;
                let front = front.or(sidecar);
                let blocks = if format == SourceFormat::Markdown {
                    markdown::extract(body)
                } else {
                    let publication = front.as_ref().and_then(|m| m.publication.as_deref());
                    text::extract_plain(body, publication)
                };
                Extracted {
                    blocks,
                    meta: front,
                    title: None,
                }
            }
            SourceFormat::Html => {
                let text = detect::decode_text(bytes)?;
                let (blocks, title) = html::extract(text);
                Extracted {
                    blocks,
                    meta: sidecar,
                    title,
                }
            }
            SourceFormat::Pdf => {
                let publication = sidecar.as_ref().and_then(|m| m.publication.clone());
                let blocks = pdf::extract(bytes, publication.as_deref())?;
                Extracted {
                    blocks,
                    meta: sidecar,
                    title: None,
                }
            }
            SourceFormat::Docx => {
                let (blocks, title) = docx::extract(bytes)?;
                Extracted {
                    blocks,
                    meta: sidecar,
                    title,
                }
            }
        };
        if extracted
            .blocks
            .iter()
            .all(|b| b.kind == BlockKind::Heading || b.text.trim().is_empty())
        {
            return Err(IngestError::NoText);
        }
        let meta = meta::resolve(
            extracted.meta,
            extracted.title,
            &extracted.blocks,
            &self.scheme,
            source_path,
            id_hint,
            format,
            content_hash,
        )?;
        let options = ChunkOptions {
            target_tokens: self.config.chunk_target_tokens,
            max_tokens: self.config.chunk_max_tokens,
        };
        let chunked = chunk::chunk(&meta.id, &extracted.blocks, &options);
        Ok(ParsedDocument {
            meta,
            text: chunked.text,
            passages: chunked.passages,
        })
    }
}

struct Extracted {
    blocks: Vec<Block>,
    meta: Option<SidecarMeta>,
    title: Option<String>,
}

fn hash_with_sidecar(bytes: &[u8], sidecar: Option<&[u8]>) -> String {
    match sidecar {
        None => sha256_hex(bytes),
        Some(side) => {
            let mut all = Vec::with_capacity(bytes.len() + side.len() + 1);
            all.extend_from_slice(bytes);
            all.push(0);
            all.extend_from_slice(side);
            sha256_hex(&all)
        }
    }
}

/// A stable document id derived from a path relative to the indexed root:
/// lowercase, `[a-z0-9-]` only, e.g. `manuals/ATP 4-0.6.pdf` -> `manuals-atp-4-0-6-pdf`.
pub fn id_from_path(relative: &Path) -> String {
    slug(&relative.to_string_lossy())
}

/// Lowercase ASCII slug: runs of anything but `[a-z0-9]` become one `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_stable_and_safe() {
        assert_eq!(
            id_from_path(Path::new("manuals/ATP 4-0.6.pdf")),
            "manuals-atp-4-0-6-pdf"
        );
        assert_eq!(slug("  --Hello__World!! "), "hello-world");
    }
}
