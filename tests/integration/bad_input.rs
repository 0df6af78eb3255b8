//! Bad input yields a clear per-file error; the rest is indexed; nothing indexed is lost.

use std::path::Path;

use doctrina_tests::{TestIndex, corpus_documents};
use doctrina_types::SearchMode;
use doctrina_types::config::IngestConfig;

/// A syntactically valid PDF whose trailer declares encryption with a handler nobody can open.
fn encrypted_pdf() -> Vec<u8> {
    use pdf_extract::{Dictionary, Document, Object, Stream};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let content = doc.add_object(Stream::new(Dictionary::new(), b"BT ET".to_vec()));
    let mut page = Dictionary::new();
    page.set("Type", Object::Name(b"Page".to_vec()));
    page.set("Parent", Object::Reference(pages_id));
    page.set("Contents", Object::Reference(content));
    let page_id = doc.add_object(page);
    let mut pages = Dictionary::new();
    pages.set("Type", Object::Name(b"Pages".to_vec()));
    pages.set("Kids", Object::Array(vec![Object::Reference(page_id)]));
    pages.set("Count", Object::Integer(1));
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let mut catalog = Dictionary::new();
    catalog.set("Type", Object::Name(b"Catalog".to_vec()));
    catalog.set("Pages", Object::Reference(pages_id));
    let catalog_id = doc.add_object(catalog);
    let mut encrypt = Dictionary::new();
    encrypt.set("Filter", Object::Name(b"ProprietaryLock".to_vec()));
    encrypt.set("V", Object::Integer(4));
    encrypt.set("R", Object::Integer(4));
    let encrypt_id = doc.add_object(encrypt);
    doc.trailer.set("Root", Object::Reference(catalog_id));
    doc.trailer.set("Encrypt", Object::Reference(encrypt_id));
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("pdf written");
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write fixture");
}

#[test]
fn each_bad_file_gets_its_reason_and_the_rest_is_indexed() {
    let ingest = IngestConfig {
        max_file_bytes: 200_000,
        ..IngestConfig::default()
    };
    let index = TestIndex::with_ingest(ingest);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(corpus_documents().join("atp-4-0-6.md"), d.join("good.md")).unwrap();
    std::fs::copy(corpus_documents().join("fm-5-0-1.pdf"), d.join("good.pdf")).unwrap();
    std::fs::copy(
        corpus_documents().join("fm-5-0-1.pdf.meta.yaml"),
        d.join("good.pdf.meta.yaml"),
    )
    .unwrap();
    write(
        d,
        "corrupt.pdf",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ngarbage garbage",
    );
    write(d, "encrypted.pdf", &encrypted_pdf());
    write(d, "binary.txt", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00binary");
    write(d, "empty.md", b"");
    write(d, "huge.txt", &vec![b'a'; 300_000]);
    write(d, "latin1.md", b"# Caf\xe9\n\n1-1. Na\xefve text.\n");
    write(d, "program.exe", b"whatever");
    write(d, "corrupt.docx", b"PK\x03\x04 not really a zip");
    write(
        d,
        "bad-meta.md",
        b"---\nmarking: ULTRA SECRET\n---\n# x\n\n1-1. Text.\n",
    );

    let report = index.index(&[d.to_path_buf()]);
    assert_eq!(report.indexed, 2, "{report:#?}");
    let reason = |name: &str| -> String {
        report
            .failed
            .iter()
            .find(|f| f.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported as failed: {report:#?}"))
            .error
            .clone()
    };
    assert!(reason("corrupt.pdf").contains("corrupt or unreadable PDF"));
    assert!(
        reason("encrypted.pdf").contains("encrypted PDF"),
        "{}",
        reason("encrypted.pdf")
    );
    assert!(reason("binary.txt").contains("binary content"));
    assert!(reason("empty.md").contains("empty"));
    assert!(reason("huge.txt").contains("over the 200000-byte limit"));
    assert!(reason("latin1.md").contains("invalid UTF-8 at byte 5"));
    assert!(reason("program.exe").contains("unsupported file type 'exe'"));
    assert!(reason("corrupt.docx").contains("DOCX"));
    assert!(reason("bad-meta.md").contains("unknown marking level 'ULTRA SECRET'"));
    assert_eq!(report.failed.len(), 9);

    // Failures are in the catalog for the custodian to see.
    let failures = index.indexes.catalog().failures().unwrap();
    assert_eq!(failures.len(), 9);

    // The good files are searchable.
    let hits = index.search("Class III bulk fuel", SearchMode::Hybrid, 5);
    assert!(hits.iter().any(|h| h.doc_id == "atp-4-0-6"));
}

#[test]
fn a_broken_new_version_keeps_the_indexed_one() {
    let index = TestIndex::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("atp-4-0-6.md");
    std::fs::copy(corpus_documents().join("atp-4-0-6.md"), &file).unwrap();
    let first = index.index(&[dir.path().to_path_buf()]);
    assert_eq!(first.indexed, 1);
    let before = index
        .indexes
        .catalog()
        .document("atp-4-0-6")
        .unwrap()
        .unwrap();

    // The custodian overwrites it with garbage: reported, and the old version keeps serving.
    std::fs::write(&file, b"\xff\xfe\x00garbage").unwrap();
    let second = index.index(&[dir.path().to_path_buf()]);
    assert_eq!(second.failed.len(), 1, "{second:#?}");
    assert_eq!(second.removed, 0);
    let after = index
        .indexes
        .catalog()
        .document("atp-4-0-6")
        .unwrap()
        .unwrap();
    assert_eq!(after.chunk_count, before.chunk_count);
    assert!(
        after.last_error.as_deref().unwrap_or("").contains("binary"),
        "{after:?}"
    );
    let hits = index.search("72-hour look", SearchMode::Hybrid, 3);
    assert_eq!(hits[0].doc_id, "atp-4-0-6");
    let health = index.indexes.check(None, false).unwrap();
    assert!(health.consistent, "{health:?}");
}
