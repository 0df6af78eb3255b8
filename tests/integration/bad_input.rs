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

fn clearance(level: &str, caveats: &[&str]) -> doctrina_types::Clearance {
    doctrina_types::Clearance {
        level: level.to_string(),
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
    }
}

/// Searches as a reader with `clearance` and returns the documents found.
fn visible_docs(
    index: &TestIndex,
    query: &str,
    clearance: doctrina_types::Clearance,
) -> Vec<String> {
    let filter = doctrina_types::PassageFilter {
        clearance: Some(clearance),
        ..doctrina_types::PassageFilter::default()
    };
    index
        .retriever()
        .search(query, SearchMode::Bm25, 10, &filter)
        .unwrap()
        .into_iter()
        .map(|h| h.doc_id)
        .collect()
}

/// Issue 12: a file with no marking in its metadata but `SECRET//NOFORN` banner lines was
/// indexed UNCLASSIFIED with the banners stripped. The text's markings are evidence.
#[test]
fn banner_lines_and_portion_marks_raise_the_marking() {
    let index = TestIndex::with_ingest(IngestConfig::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("raid.txt"),
        "SECRET//NOFORN\n\nOPERATION ORDER 9 (RAID ON KESTREL BRIDGE)\n\n1. SITUATION. Kestrel \
         bridge is held by one enemy platoon.\n\nSECRET//NOFORN\n",
    )
    .unwrap();
    // Marked UNCLASSIFIED in its own metadata, but its paragraphs carry SECRET portion marks.
    std::fs::write(
        dir.path().join("annex.md"),
        "---\nmarking: UNCLASSIFIED\n---\n# Annex K\n\n1-1. (S) Kestrel bridge crossing \
         times are set by the brigade.\n",
    )
    .unwrap();
    let report = index.index(&[dir.path().to_path_buf()]);
    assert!(report.failed.is_empty(), "{report:#?}");
    // (The catalog guard is a lock: dropped before searching.)
    let raid = index
        .indexes
        .catalog()
        .document("raid-txt")
        .unwrap()
        .unwrap();
    assert_eq!(raid.meta.marking.banner(), "SECRET//NOFORN");
    assert!(
        raid.meta
            .marking_basis
            .iter()
            .any(|b| b.contains("banner line 1")),
        "{:?}",
        raid.meta.marking_basis
    );
    let annex = index
        .indexes
        .catalog()
        .document("annex-md")
        .unwrap()
        .unwrap();
    assert_eq!(annex.meta.marking.banner(), "SECRET");
    assert!(
        annex.meta.marking_basis[0].contains("differ"),
        "the document says its statements disagree: {:?}",
        annex.meta.marking_basis
    );
    for reader in [clearance("UNCLASSIFIED", &[]), clearance("SECRET", &[])] {
        let docs = visible_docs(&index, "Kestrel bridge", reader.clone());
        assert!(
            !docs.contains(&"raid-txt".to_string()),
            "{reader:?}: {docs:?}"
        );
    }
    assert!(
        !visible_docs(&index, "Kestrel bridge", clearance("CONFIDENTIAL", &[]))
            .contains(&"annex-md".to_string())
    );
    let cleared = visible_docs(&index, "Kestrel bridge", clearance("SECRET", &["NOFORN"]));
    assert!(cleared.contains(&"raid-txt".to_string()) && cleared.contains(&"annex-md".to_string()));
}

/// Issue 12: an upload's sidecar said SECRET//NOFORN and the file's front matter (with no
/// `marking`) replaced the whole sidecar: indexed UNCLASSIFIED. Fields now merge, and a
/// disagreement takes the higher marking.
#[test]
fn front_matter_never_lowers_the_sidecar_marking() {
    let index = TestIndex::with_ingest(IngestConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.md");
    std::fs::write(
        &file,
        "---\ntitle: Crossing plan\npublication: PLAN 7\n---\n# Crossing plan\n\n1-1. The \
         Kestrel crossing starts at 0300.\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plan.md.meta.yaml"),
        "id: plan-7\nmarking: SECRET//NOFORN\n",
    )
    .unwrap();
    let report = index.index(&[dir.path().to_path_buf()]);
    assert!(report.failed.is_empty(), "{report:#?}");
    let doc = index.indexes.catalog().document("plan-7").unwrap().unwrap();
    assert_eq!(doc.meta.marking.banner(), "SECRET//NOFORN");
    assert_eq!(doc.meta.title, "Crossing plan");
    assert_eq!(doc.meta.publication.as_deref(), Some("PLAN 7"));
    assert!(visible_docs(&index, "Kestrel crossing", clearance("SECRET", &[])).is_empty());
}

/// An unmarked file is never silently the lowest level: refused by default, or given the
/// configured default (here a folder's `.doctrina-defaults.yaml`) with that said.
#[test]
fn unmarked_files_are_refused_or_take_the_stated_default() {
    let index = TestIndex::with_ingest(IngestConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    let defaulted = dir.path().join("defaulted");
    for d in [&plain, &defaulted] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("note.md"), "# Note\n\n1-1. Kestrel note text.\n").unwrap();
    }
    std::fs::write(defaulted.join(".doctrina-defaults.yaml"), "marking: CUI\n").unwrap();
    let report = index.index(&[dir.path().to_path_buf()]);
    assert_eq!(report.indexed, 1, "{report:#?}");
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert!(report.failed[0].path.contains("plain"));
    assert!(
        report.failed[0].error.contains("no classification marking"),
        "{}",
        report.failed[0].error
    );
    let doc = index
        .indexes
        .catalog()
        .document("defaulted-note-md")
        .unwrap()
        .unwrap();
    assert_eq!(doc.meta.marking.banner(), "CUI");
    assert!(
        doc.meta.marking_basis[0].starts_with("folder default"),
        "{:?}",
        doc.meta.marking_basis
    );
}
