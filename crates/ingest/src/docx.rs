//! DOCX (Office Open XML): `word/document.xml` read with quick-xml. Paragraph styles give
//! headings (`Heading1`..`Heading6`, `Title`), numbering properties give list items, tables
//! keep one row per line. The title comes from `docProps/core.xml` or a `Title` paragraph.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::blocks::{Block, BlockKind, classify_paragraph, squash_whitespace};
use crate::error::{IngestError, Result};

/// Largest XML part read (about 10,000 pages of dense text).
const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;

fn zip_bomb(name: &str, size: u64) -> IngestError {
    IngestError::CorruptDocx(format!(
        "{name} inflates to {} MB, over the {} MB limit for one part: a zip bomb, or a corrupt file",
        size.div_ceil(1024 * 1024),
        MAX_XML_BYTES / (1024 * 1024)
    ))
}

fn read_entry(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<String>> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(IngestError::CorruptDocx(format!("{name}: {e}"))),
    };
    // The size the archive declares is checked first; the read is bounded too, since the
    // declaration can lie.
    if entry.size() > MAX_XML_BYTES {
        return Err(zip_bomb(name, entry.size()));
    }
    let mut xml = String::new();
    entry
        .take(MAX_XML_BYTES + 1)
        .read_to_string(&mut xml)
        .map_err(|e| IngestError::CorruptDocx(format!("{name}: {e}")))?;
    if xml.len() as u64 > MAX_XML_BYTES {
        return Err(zip_bomb(name, xml.len() as u64));
    }
    Ok(Some(xml))
}

/// What a DOCX gives: body blocks, its title, and the text of its headers and footers
/// (where banner markings usually sit), which is not part of the body.
pub struct DocxExtract {
    pub blocks: Vec<Block>,
    pub title: Option<String>,
    pub furniture: Vec<String>,
}

pub fn extract(bytes: &[u8]) -> Result<DocxExtract> {
    if !bytes.starts_with(b"PK") {
        return Err(IngestError::CorruptDocx(
            "not a zip archive, so not a .docx file".to_string(),
        ));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| IngestError::CorruptDocx(e.to_string()))?;
    let document = read_entry(&mut archive, "word/document.xml")?
        .ok_or_else(|| IngestError::CorruptDocx("word/document.xml is missing".to_string()))?;
    let core_title = read_entry(&mut archive, "docProps/core.xml")?
        .and_then(|xml| element_text(&xml, b"dc:title"))
        .filter(|t| !t.is_empty());
    let (blocks, style_title) = parse_document(&document)?;
    let parts: Vec<String> = archive
        .file_names()
        .filter(|n| {
            (n.starts_with("word/header") || n.starts_with("word/footer")) && n.ends_with(".xml")
        })
        .map(String::from)
        .collect();
    let mut furniture = Vec::new();
    for part in parts.iter().take(64) {
        if let Some(xml) = read_entry(&mut archive, part)? {
            let (part_blocks, _) = parse_document(&xml)?;
            furniture.extend(part_blocks.into_iter().map(|b| b.text));
        }
    }
    Ok(DocxExtract {
        blocks,
        title: core_title.or(style_title),
        furniture,
    })
}

fn element_text(xml: &str, tag: &[u8]) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut out = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == tag => inside = true,
            Ok(Event::End(e)) if e.name().as_ref() == tag => return Some(squash_whitespace(&out)),
            Ok(Event::Text(t)) if inside => out.push_str(&t.decode().ok()?),
            Ok(Event::GeneralRef(r)) if inside => out.push_str(&resolve_entity(&r)),
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

fn resolve_entity(name: &[u8]) -> String {
    match name {
        b"amp" => "&".into(),
        b"lt" => "<".into(),
        b"gt" => ">".into(),
        b"quot" => "\"".into(),
        b"apos" => "'".into(),
        other => {
            let s = String::from_utf8_lossy(other);
            let code = s
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| s.strip_prefix('#').and_then(|d| d.parse().ok()));
            code.and_then(char::from_u32)
                .map(String::from)
                .unwrap_or_default()
        }
    }
}

#[derive(Default)]
struct Para {
    style: Option<String>,
    numbered: bool,
    text: String,
}

fn heading_level(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase();
    let rest = lower.strip_prefix("heading")?;
    rest.trim()
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=6).contains(l))
}

fn parse_document(xml: &str) -> Result<(Vec<Block>, Option<String>)> {
    let mut reader = Reader::from_str(xml);
    let mut blocks = Vec::new();
    let mut title = None;
    let mut para: Option<Para> = None;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut rows: Vec<String> = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();

    loop {
        let event = reader
            .read_event()
            .map_err(|e| IngestError::CorruptDocx(format!("word/document.xml: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_start = matches!(event, Event::Start(_));
                match e.name().as_ref() {
                    b"w:p" => para = Some(Para::default()),
                    b"w:pStyle" => {
                        if let Some(p) = para.as_mut() {
                            for attr in e.attributes().flatten() {
                                if attr.key.as_ref() == b"w:val" {
                                    p.style =
                                        Some(String::from_utf8_lossy(&attr.value).into_owned());
                                }
                            }
                        }
                    }
                    b"w:numPr" => {
                        if let Some(p) = para.as_mut() {
                            p.numbered = true;
                        }
                    }
                    b"w:t" => in_text = is_start,
                    b"w:tab" => {
                        if let Some(p) = para.as_mut() {
                            p.text.push('\t');
                        }
                    }
                    b"w:br" | b"w:cr" => {
                        if let Some(p) = para.as_mut() {
                            p.text.push(' ');
                        }
                    }
                    b"w:tbl" => {
                        table_depth += 1;
                        if table_depth == 1 {
                            rows.clear();
                        }
                    }
                    b"w:tr" => cells.clear(),
                    b"w:tc" => cell.clear(),
                    _ => {}
                }
            }
            Event::Text(t) if in_text => {
                let s = t
                    .decode()
                    .map_err(|e| IngestError::CorruptDocx(e.to_string()))?;
                if let Some(p) = para.as_mut() {
                    p.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(p) = para.as_mut() {
                    p.text.push_str(&resolve_entity(&r));
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => {
                    let Some(p) = para.take() else { continue };
                    let text = squash_whitespace(&p.text);
                    if text.is_empty() {
                        continue;
                    }
                    if table_depth > 0 {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(&text);
                        continue;
                    }
                    let style = p.style.as_deref().unwrap_or("");
                    if style.eq_ignore_ascii_case("Title") {
                        title.get_or_insert(text);
                    } else if let Some(level) = heading_level(style) {
                        blocks.push(Block::heading(level, text));
                    } else if p.numbered || style.to_ascii_lowercase().starts_with("list") {
                        blocks.push(Block::new(BlockKind::ListItem, text));
                    } else if style.eq_ignore_ascii_case("Caption") {
                        blocks.push(Block::new(BlockKind::Caption, text));
                    } else {
                        blocks.push(Block::new(classify_paragraph(&text), text));
                    }
                }
                b"w:tc" => cells.push(std::mem::take(&mut cell)),
                b"w:tr" => {
                    if cells.iter().any(|c| !c.is_empty()) {
                        rows.push(cells.join(" | "));
                    }
                    cells.clear();
                }
                b"w:tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 && !rows.is_empty() {
                        blocks.push(Block::new(BlockKind::Table, rows.join("\n")));
                        rows.clear();
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((blocks, title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn docx(body: &str) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            zip.start_file("word/document.xml", opts).unwrap();
            write!(
                zip,
                r#"<?xml version="1.0"?><w:document xmlns:w="x"><w:body>{body}</w:body></w:document>"#
            )
            .unwrap();
            zip.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn headings_lists_tables() {
        let body = r#"<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Unit SOP</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Chapter 2</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">2-3. Convoys </w:t></w:r><w:r><w:t>move &amp; halt.</w:t></w:r></w:p>
<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t>item</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>A</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>B</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#;
        let DocxExtract { blocks, title, .. } = extract(&docx(body)).unwrap();
        assert_eq!(title.as_deref(), Some("Unit SOP"));
        let texts: Vec<_> = blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (BlockKind::Heading, "Chapter 2"),
                (BlockKind::Paragraph, "2-3. Convoys move & halt."),
                (BlockKind::ListItem, "item"),
                (BlockKind::Table, "A | B"),
            ]
        );
    }

    #[test]
    fn not_a_zip_is_corrupt() {
        assert!(matches!(
            extract(b"hello"),
            Err(IngestError::CorruptDocx(_))
        ));
        assert!(matches!(
            extract(b"PK\x03\x04garbage"),
            Err(IngestError::CorruptDocx(_))
        ));
    }

    #[test]
    fn a_zip_bomb_is_named_not_read() {
        let path =
            std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
                .join("../../tests/corpus/hostile/zip-bomb.docx");
        let bytes = std::fs::read(path).unwrap();
        let err = extract(&bytes).err().unwrap().to_string();
        assert!(err.contains("zip bomb"), "{err}");
        assert!(err.contains("120 MB"), "{err}");
    }

    #[test]
    fn header_text_is_kept_as_furniture() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            zip.start_file("word/document.xml", opts).unwrap();
            write!(zip, r#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Body.</w:t></w:r></w:p></w:body></w:document>"#).unwrap();
            zip.start_file("word/header1.xml", opts).unwrap();
            write!(
                zip,
                r#"<w:hdr xmlns:w="x"><w:p><w:r><w:t>SECRET//NOFORN</w:t></w:r></w:p></w:hdr>"#
            )
            .unwrap();
            zip.finish().unwrap();
        }
        let extracted = extract(&buf.into_inner()).unwrap();
        assert_eq!(extracted.furniture, vec!["SECRET//NOFORN"]);
        assert_eq!(extracted.blocks.len(), 1);
    }
}
