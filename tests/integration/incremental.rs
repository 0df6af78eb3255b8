//! Re-indexing is incremental and keeps the catalog and both indexes in agreement.

use doctrina_tests::{TestIndex, copy_corpus};
use doctrina_types::SearchMode;

#[test]
fn unchanged_edit_and_delete_propagate_to_both_indexes() {
    let index = TestIndex::new();
    let corpus = tempfile::tempdir().unwrap();
    copy_corpus(corpus.path());
    let roots = [corpus.path().to_path_buf()];

    let first = index.index(&roots);
    assert_eq!(first.indexed, 19, "{first:#?}");
    assert!(first.failed.is_empty(), "{first:#?}");
    assert_eq!(first.embedded, first.chunks);
    let total = first.total_chunks;

    // Unchanged corpus: nothing parsed into the indexes, nothing embedded.
    let again = index.index(&roots);
    assert_eq!(
        (again.indexed, again.unchanged, again.embedded),
        (0, 19, 0),
        "{again:#?}"
    );
    assert_eq!(again.total_chunks, total);

    // Edit one file: add a paragraph with a distinctive term.
    let file = corpus.path().join("atp-5-0-9.md");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n\n3-99. Zebra-stripe reporting requires every section to flag amber thresholds to the executive officer within ten minutes.\n");
    std::fs::write(&file, text).unwrap();
    let edited = index.index(&roots);
    assert_eq!((edited.indexed, edited.unchanged), (1, 18), "{edited:#?}");
    assert!(
        edited.embedded < edited.chunks,
        "unchanged passages reuse their vectors: {edited:#?}"
    );
    assert!(edited.embedded >= 1);
    for mode in [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid] {
        let hits = index.search("zebra-stripe reporting of amber thresholds", mode, 3);
        assert!(
            hits.iter()
                .any(|h| h.paragraphs.contains(&"3-99".to_string())),
            "{mode:?}: new paragraph not found: {hits:#?}"
        );
    }

    // Delete a file: gone from both indexes and the catalog.
    let removed_chunks = index
        .indexes
        .catalog()
        .document("atp-4-11-7")
        .unwrap()
        .unwrap()
        .chunk_count;
    std::fs::remove_file(corpus.path().join("atp-4-11-7.txt")).unwrap();
    let deleted = index.index(&roots);
    assert_eq!(deleted.removed, 1, "{deleted:#?}");
    assert!(
        index
            .indexes
            .catalog()
            .document("atp-4-11-7")
            .unwrap()
            .is_none()
    );
    assert_eq!(index.indexes.keyword.count_doc("atp-4-11-7").unwrap(), 0);
    assert_eq!(index.indexes.vectors.count_doc("atp-4-11-7").unwrap(), 0);
    for mode in [SearchMode::Bm25, SearchMode::Dense] {
        let hits = index.search("convoy trail party recovery vehicle", mode, 10);
        assert!(hits.iter().all(|h| h.doc_id != "atp-4-11-7"), "{mode:?}");
    }
    let health = index.indexes.check(None, false).unwrap();
    assert!(health.consistent, "{health:?}");
    assert_eq!(deleted.total_chunks, edited.total_chunks - removed_chunks);
    assert_eq!(health.catalog_passages, deleted.total_chunks);
    assert_eq!(health.keyword_passages, deleted.total_chunks);
    assert_eq!(health.vector_passages, deleted.total_chunks);
}
