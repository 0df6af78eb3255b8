//! Each format parses, and structure (paragraph numbers, pages, sections) survives.

use doctrina_ingest::{Ingestor, ParsedDocument};
use doctrina_tests::corpus_documents;
use doctrina_types::config::IngestConfig;
use doctrina_types::{MarkingScheme, Passage};

fn parse(name: &str) -> ParsedDocument {
    let ingestor = Ingestor::new(IngestConfig::default(), MarkingScheme::default());
    ingestor
        .parse_file(&corpus_documents().join(name), "hint")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn passage_with<'a>(doc: &'a ParsedDocument, paragraph: &str) -> &'a Passage {
    doc.passages
        .iter()
        .find(|p| p.paragraphs.iter().any(|x| x == paragraph))
        .unwrap_or_else(|| panic!("{}: no passage covers {paragraph}", doc.meta.id))
}

fn assert_spans_exact(doc: &ParsedDocument) {
    for p in &doc.passages {
        let span: String = doc
            .text
            .chars()
            .skip(p.char_start)
            .take(p.char_end - p.char_start)
            .collect();
        assert_eq!(
            span, p.text,
            "{}: offsets do not point at the passage text",
            p.id
        );
        assert!(!p.text.trim().is_empty());
    }
}

#[test]
fn messy_pdf_style_text_keeps_paragraphs_and_pages() {
    let doc = parse("atp-4-11-7.txt");
    assert_eq!(doc.meta.publication.as_deref(), Some("ATP 4-11.7"));
    // Running headers/footers ("... ATP 4-11.7 1-3") are gone from the text.
    assert!(
        !doc.text.contains("ATP 4-11.7 1-"),
        "page furniture left in the text"
    );
    // Paragraph 1-8 runs over a page break: one passage, both pages, text joined.
    let p = passage_with(&doc, "1-8");
    assert_eq!(p.pages, vec![3, 4], "{p:?}");
    assert!(p.text.starts_with("1-8. "));
    // Hyphenated line wraps are joined and numbered paragraphs are in order.
    let numbers: Vec<&str> = doc
        .passages
        .iter()
        .flat_map(|p| p.paragraphs.iter().map(String::as_str))
        .collect();
    let expected: Vec<String> = (1..=9)
        .map(|n| format!("1-{n}"))
        .chain((1..=7).map(|n| format!("2-{n}")))
        .collect();
    assert_eq!(numbers, expected);
    assert!(doc.passages.iter().all(|p| !p.section_path.is_empty()));
    assert_spans_exact(&doc);
}

#[test]
fn pdf_text_layer_gives_real_pages() {
    let doc = parse("fm-5-0-1.pdf");
    assert_eq!(doc.meta.publication.as_deref(), Some("FM 5-0.1"));
    let p = passage_with(&doc, "2-6");
    assert_eq!(p.pages, vec![4, 5], "2-6 continues across a page break");
    assert!(
        !p.text.contains("  "),
        "justified-text spacing is normalised"
    );
    assert_eq!(passage_with(&doc, "2-12").pages, vec![5, 6]);
    assert!(
        p.section_path[0].starts_with("Chapter 2"),
        "{:?}",
        p.section_path
    );
    assert!(
        !doc.text.contains("12 September 2023\n"),
        "running header stripped"
    );
    assert_spans_exact(&doc);
}

#[test]
fn docx_headings_and_paragraphs() {
    let doc = parse("atp-5-0-7.docx");
    assert_eq!(doc.meta.publication.as_deref(), Some("ATP 5-0.7"));
    let p = passage_with(&doc, "2-3");
    assert!(p.section_path.len() >= 2, "{:?}", p.section_path);
    assert!(p.pages.is_empty(), "DOCX has no fixed pages");
    assert_spans_exact(&doc);
}

#[test]
fn html_drops_scripts_and_keeps_structure() {
    let doc = parse("atp-6-0-8.html");
    assert!(
        !doc.text.contains("alert(1)"),
        "script text must not be indexed"
    );
    assert!(!doc.text.contains("onclick"));
    assert!(doc.passages.iter().any(|p| !p.paragraphs.is_empty()));
    assert_spans_exact(&doc);
}

#[test]
fn markdown_front_matter_gives_metadata() {
    let doc = parse("atp-4-0-6.md");
    assert_eq!(doc.meta.id, "atp-4-0-6");
    assert_eq!(doc.meta.publication.as_deref(), Some("ATP 4-0.6"));
    assert_eq!(doc.meta.edition.as_deref(), Some("2024-01-17"));
    assert_eq!(doc.meta.supersedes.as_deref(), Some("ATP 4-0.6 (2019)"));
    assert_eq!(doc.meta.marking.banner(), "UNCLASSIFIED");
    let secret = parse("opord-24-07.md");
    assert_eq!(secret.meta.marking.banner(), "SECRET//NOFORN");
    // Appendix paragraphs keep their letter.
    assert!(
        doc.passages
            .iter()
            .any(|p| p.paragraphs.iter().any(|x| x == "A-1"))
    );
    assert_spans_exact(&doc);
}
