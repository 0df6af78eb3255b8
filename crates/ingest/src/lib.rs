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
pub mod markings;
mod meta;
mod pdf;
pub mod sandbox;
mod text;

pub use blocks::{Block, BlockKind};
pub use chunk::{ChunkOptions, Chunked};
pub use detect::{SidecarMeta, is_sidecar, sidecar_path, sniff};
pub use error::{IngestError, Result};
pub use meta::Unmarked;
pub use sandbox::Sandbox;

use std::path::Path;

use doctrina_types::config::IngestConfig;
use doctrina_types::{DocumentMeta, MarkingScheme, Passage, SourceFormat, sha256_hex};
use serde::{Deserialize, Serialize};

use crate::markings::Evidence;
use crate::meta::GivenMeta;

/// Bump when parsing or chunking changes what a file turns into: documents indexed by an
/// older pipeline are re-indexed even though their bytes did not change.
/// 2: markings from the text and merged metadata; extra metadata keys.
pub const PIPELINE_VERSION: u32 = 2;

/// A folder's defaults for the files under it (`marking:` for unmarked files).
pub const FOLDER_DEFAULTS: &str = ".doctrina-defaults.yaml";

/// A parsed document: its metadata, normalised text and passages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParsedDocument {
    pub meta: DocumentMeta,
    /// The normalised document text that passage offsets point into.
    pub text: String,
    pub passages: Vec<Passage>,
}

/// Parses source files into [`ParsedDocument`]s, in this process or, with
/// [`Ingestor::isolated`], in a child process per file.
#[derive(Debug, Clone)]
pub struct Ingestor {
    config: IngestConfig,
    scheme: MarkingScheme,
    sandbox: Option<Sandbox>,
}

impl Ingestor {
    pub fn new(config: IngestConfig, scheme: MarkingScheme) -> Self {
        Self {
            config,
            scheme,
            sandbox: None,
        }
    }

    /// Parses every file in a child process run through `sandbox`, with the limits of the
    /// ingest config, so a parser that crashes, loops or runs out of memory on a hostile
    /// file fails that file and nothing else.
    pub fn isolated(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    pub fn scheme(&self) -> &MarkingScheme {
        &self.scheme
    }

    /// The content hash the catalog compares to decide whether a file changed: the file's
    /// bytes plus its metadata sidecar, if any. Cheap next to parsing.
    pub fn content_hash(&self, path: &Path) -> Result<String> {
        let bytes = detect::read_checked(path, self.config.max_file_bytes)?;
        let sidecar = detect::read_sidecar_bytes(path)?;
        Ok(hash_with_sidecar(&bytes, sidecar.as_deref()))
    }

    /// The highest marking a file's metadata states (its sidecar, and the front matter of a
    /// Markdown or text file), read without parsing the document: how a file that failed to
    /// parse is shown only to people cleared for it. `None` when nothing readable states one
    /// (callers then treat the file as above every clearance).
    pub fn stated_marking(&self, path: &Path) -> Option<doctrina_types::Marking> {
        let mut found = Vec::new();
        if let Ok(Some(bytes)) = detect::read_sidecar_bytes(path)
            && let Ok(meta) = meta::parse_sidecar(&bytes, &sidecar_path(path))
        {
            found.push(meta);
        }
        let text_format = matches!(
            detect::format_of(path),
            Ok(SourceFormat::Markdown | SourceFormat::Text)
        );
        if text_format && let Ok(file) = std::fs::File::open(path) {
            use std::io::Read;
            let mut head = Vec::new();
            if file.take(64 * 1024).read_to_end(&mut head).is_ok() {
                let text = String::from_utf8_lossy(&head);
                if let Ok((Some(front), _)) = meta::split_front_matter(&text) {
                    found.push(front);
                }
            }
        }
        let markings: Vec<doctrina_types::Marking> = found
            .iter()
            .filter_map(|m| {
                let written = m.marking.as_deref()?;
                let mut marking = doctrina_types::Marking::parse_banner(written);
                marking.caveats.extend(m.caveats.iter().cloned());
                Some(marking)
            })
            .collect();
        (!markings.is_empty()).then(|| self.scheme.highest(&markings))
    }

    /// Reads, checks and parses one file (isolated when so configured). `id_hint` is the id
    /// to use when the file's own metadata does not set one (normally derived from its path).
    pub fn parse_file(&self, path: &Path, id_hint: &str) -> Result<ParsedDocument> {
        match &self.sandbox {
            Some(sandbox) => sandbox.parse(path, id_hint, &self.config, &self.scheme),
            None => self.parse_file_here(path, id_hint),
        }
    }

    /// [`Ingestor::parse_file`] in this process, whatever the configuration: the child
    /// process's own work, and tests of the parsers.
    pub fn parse_file_here(&self, path: &Path, id_hint: &str) -> Result<ParsedDocument> {
        let format = detect::format_of(path)?;
        let bytes = detect::read_checked(path, self.config.max_file_bytes)?;
        let sidecar_bytes = detect::read_sidecar_bytes(path)?;
        let content_hash = hash_with_sidecar(&bytes, sidecar_bytes.as_deref());
        let sidecar = sidecar_bytes
            .as_deref()
            .map(|b| meta::parse_sidecar(b, &sidecar_path(path)))
            .transpose()?;
        let unmarked = self.unmarked_policy(path)?;
        self.parse_with(
            &bytes,
            format,
            sidecar,
            &unmarked,
            path.to_string_lossy().as_ref(),
            id_hint,
            content_hash,
        )
    }

    /// What happens to a file that states no marking: the nearest folder default
    /// (`.doctrina-defaults.yaml` in its folder or one above it), else
    /// `ingest.default_marking`, else refusal.
    fn unmarked_policy(&self, path: &Path) -> Result<Unmarked> {
        let folders = path.parent().into_iter().flat_map(Path::ancestors).take(8);
        for folder in folders {
            let file = folder.join(FOLDER_DEFAULTS);
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let defaults = meta::parse_sidecar(&bytes, &file)?;
                    if let Some(marking) = defaults.marking {
                        return Ok(Unmarked::Default {
                            marking,
                            origin: format!("folder default ({})", file.display()),
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(IngestError::Io { path: file, source }),
            }
        }
        Ok(self.configured_default())
    }

    fn configured_default(&self) -> Unmarked {
        match &self.config.default_marking {
            Some(marking) => Unmarked::Default {
                marking: marking.clone(),
                origin: "ingest.default_marking".to_string(),
            },
            None => Unmarked::Refuse,
        }
    }

    /// Parses in-memory bytes of a known format (used by the benchmark and tests); an
    /// unmarked document gets `ingest.default_marking` or is refused.
    pub fn parse_bytes(
        &self,
        bytes: &[u8],
        format: SourceFormat,
        sidecar: Option<SidecarMeta>,
        source_path: &str,
        id_hint: &str,
        content_hash: String,
    ) -> Result<ParsedDocument> {
        let unmarked = self.configured_default();
        self.parse_with(
            bytes,
            format,
            sidecar,
            &unmarked,
            source_path,
            id_hint,
            content_hash,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_with(
        &self,
        bytes: &[u8],
        format: SourceFormat,
        sidecar: Option<SidecarMeta>,
        unmarked: &Unmarked,
        source_path: &str,
        id_hint: &str,
        content_hash: String,
    ) -> Result<ParsedDocument> {
        if bytes.is_empty() {
            return Err(IngestError::Empty);
        }
        let mut given = GivenMeta {
            front: None,
            sidecar,
        };
        let extracted = match format {
            SourceFormat::Markdown | SourceFormat::Text => {
                let text = detect::decode_text(bytes)?;
                let (front, body) = meta::split_front_matter(text)?;
                given.front = front;
                let evidence = markings::scan(body, &self.scheme);
                let blocks = if format == SourceFormat::Markdown {
                    markdown::extract(body)
                } else {
                    let publication = given.publication();
                    text::extract_plain(body, publication.as_deref())
                };
                Extracted {
                    blocks,
                    title: None,
                    evidence,
                }
            }
            SourceFormat::Html => {
                let text = detect::decode_text(bytes)?;
                let html = html::extract(text);
                Extracted {
                    evidence: markings::scan(&html.all_text, &self.scheme),
                    blocks: html.blocks,
                    title: html.title,
                }
            }
            SourceFormat::Pdf => {
                let publication = given.publication();
                let pdf = pdf::extract(bytes, publication.as_deref())?;
                Extracted {
                    evidence: markings::scan(&pdf.pages.join("\n"), &self.scheme),
                    blocks: pdf.blocks,
                    title: None,
                }
            }
            SourceFormat::Docx => {
                let docx = docx::extract(bytes)?;
                let mut evidence = markings::scan(&docx.furniture.join("\n"), &self.scheme);
                let body: Vec<&str> = docx.blocks.iter().map(|b| b.text.as_str()).collect();
                evidence.extend(markings::scan(&body.join("\n"), &self.scheme));
                Extracted {
                    blocks: docx.blocks,
                    title: docx.title,
                    evidence,
                }
            }
        };
        if extracted
            .blocks
            .iter()
            .all(|b| b.kind == BlockKind::Heading || b.text.trim().is_empty())
        {
            return Err(IngestError::NoText { format });
        }
        let meta = meta::resolve(
            given,
            extracted.title,
            &extracted.blocks,
            &extracted.evidence,
            &self.scheme,
            unmarked,
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
    title: Option<String>,
    evidence: Evidence,
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
/// lowercase letters and digits of any script joined by `-`, e.g.
/// `manuals/ATP 4-0.6.pdf` -> `manuals-atp-4-0-6-pdf`, `군인사법-예시.md` -> `군인사법-예시-md`.
pub fn id_from_path(relative: &Path) -> String {
    slug(&relative.to_string_lossy())
}

/// Lowercase slug: letters and digits (any script, NFC-normalised so a Hangul name copied
/// from a decomposing file system gives the same id) are kept, runs of anything else become
/// one `-`. ASCII names slug exactly as they always have.
pub fn slug(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.nfc() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
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
        // Hangul names keep their letters: two statutes never collapse to `md`.
        assert_eq!(
            id_from_path(Path::new("군인사법-예시.md")),
            "군인사법-예시-md"
        );
        assert_ne!(
            id_from_path(Path::new("군인사법.md")),
            id_from_path(Path::new("군인사법 시행령.md"))
        );
        // Decomposed jamo (as macOS writes names) give the same id as composed syllables.
        let decomposed: String = "군인사법.md"
            .chars()
            .flat_map(|c| {
                use unicode_normalization::UnicodeNormalization;
                c.to_string().nfd().collect::<Vec<_>>()
            })
            .collect();
        assert_ne!(decomposed, "군인사법.md");
        assert_eq!(slug(&decomposed), "군인사법-md");
    }
}
