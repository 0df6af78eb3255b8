//! The contract every [`VectorStore`] keeps: writes, deletes, search with every filter kind
//! inside the query, counts, retain, stored vectors, persistence, and the repair of the
//! indexes after a crash. Run against the embedded Qdrant Edge always, and against a Qdrant
//! server whenever `DOCTRINA_TEST_QDRANT_URL` names one (e.g. `http://127.0.0.1:6334`;
//! each test uses a collection of its own and deletes it afterwards).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use doctrina_embed::Embedder;
use doctrina_types::{MarkingScheme, PassageFilter};

use crate::access::AccessFilter;
use crate::qdrant::{QdrantSettings, QdrantVectorStore};
use crate::store::Indexes;
use crate::vector::{EdgeVectorStore, VectorPoint, VectorStore};

const DIM: usize = 8;

/// Where a test's vectors live: a temporary directory, or a fresh server collection.
enum Backend {
    Edge,
    Qdrant { url: String, collection: String },
}

impl Backend {
    /// Edge, plus the Qdrant server when one is configured for tests.
    fn all(test: &str) -> Vec<Backend> {
        let mut backends = vec![Backend::Edge];
        if let Ok(url) = std::env::var("DOCTRINA_TEST_QDRANT_URL")
            && !url.is_empty()
        {
            backends.push(Backend::Qdrant {
                url,
                collection: format!("doctrina-conformance-{test}-{}", uuid::Uuid::new_v4()),
            });
        }
        backends
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Edge => "edge",
            Backend::Qdrant { .. } => "qdrant",
        }
    }

    /// The store of this backend for data directory `dir` (opened again on reopen).
    fn open(&self, dir: &Path) -> crate::Result<Box<dyn VectorStore>> {
        Ok(match self {
            Backend::Edge => Box::new(EdgeVectorStore::open(&dir.join("vectors"), DIM)?),
            Backend::Qdrant { url, collection } => {
                Box::new(QdrantVectorStore::open(settings(url, collection), DIM)?)
            }
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Qdrant { url, collection } = self
            && let Ok(store) = QdrantVectorStore::open(settings(url, collection), DIM)
        {
            let _ = store.delete_collection();
        }
    }
}

fn settings(url: &str, collection: &str) -> QdrantSettings {
    QdrantSettings {
        urls: vec![url.to_string()],
        api_key: std::env::var("DOCTRINA_TEST_QDRANT_API_KEY").ok(),
        collection: collection.to_string(),
        shard_number: 2,
        replication_factor: 1,
        write_consistency: 1,
        timeout: Duration::from_secs(10),
    }
}

fn unfiltered() -> AccessFilter {
    AccessFilter::for_tests(PassageFilter::default())
}

fn filtered(filter: PassageFilter) -> AccessFilter {
    AccessFilter::for_tests(filter)
}

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i % DIM] = 1.0;
    v
}

fn point(
    doc: &str,
    i: usize,
    rank: u32,
    caveats: &[&str],
    publication: Option<&str>,
) -> VectorPoint {
    VectorPoint {
        passage_id: format!("{doc}#{i}"),
        doc_id: doc.to_string(),
        marking_rank: rank,
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
        publication: publication.map(str::to_string),
        vector: unit(i),
    }
}

fn hit_docs(hits: &[(String, f32)]) -> BTreeSet<String> {
    hits.iter()
        .map(|(id, _)| id.split('#').next().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn writes_counts_and_stored_vectors() {
    for backend in Backend::all("writes") {
        let dir = tempfile::tempdir().unwrap();
        let store = backend.open(dir.path()).unwrap();
        let name = backend.name();
        assert_eq!(store.count().unwrap(), 0, "{name}: a new store is empty");
        store.upsert(&[]).unwrap();
        let points: Vec<VectorPoint> = (0..6)
            .map(|i| point(if i < 4 { "a" } else { "b" }, i, 0, &[], None))
            .collect();
        store.upsert(&points).unwrap();
        // Writing the same passages again replaces them.
        store.upsert(&points[..2]).unwrap();
        store.flush().unwrap();
        assert_eq!(store.count().unwrap(), 6, "{name}");
        assert_eq!(store.count_doc("a").unwrap(), 4, "{name}");
        assert_eq!(store.count_doc("b").unwrap(), 2, "{name}");
        assert_eq!(store.count_doc("nobody").unwrap(), 0, "{name}");
        assert_eq!(
            store.doc_counts().unwrap().into_iter().collect::<Vec<_>>(),
            vec![("a".to_string(), 4), ("b".to_string(), 2)],
            "{name}"
        );
        let wanted = [
            "a#1".to_string(),
            "b#5".to_string(),
            "missing#0".to_string(),
        ];
        let vectors = store.vectors(&wanted).unwrap();
        assert_eq!(vectors.len(), 2, "{name}: only stored passages come back");
        assert_eq!(vectors["a#1"], unit(1), "{name}");
        assert_eq!(vectors["b#5"], unit(5), "{name}");

        let hits = store.search(&unit(2), 3, &unfiltered()).unwrap();
        assert_eq!(hits.len(), 3, "{name}");
        assert_eq!(hits[0].0, "a#2", "{name}: nearest first");
        assert!((hits[0].1 - 1.0).abs() < 1e-5, "{name}: cosine similarity");
        assert!(
            hits.windows(2).all(|w| w[0].1 >= w[1].1),
            "{name}: best first"
        );
        assert!(store.search(&unit(2), 0, &unfiltered()).unwrap().is_empty());
        assert!(!store.describe().is_empty());
    }
}

#[test]
fn every_filter_kind_is_inside_the_query() {
    for backend in Backend::all("filters") {
        let dir = tempfile::tempdir().unwrap();
        let store = backend.open(dir.path()).unwrap();
        let name = backend.name();
        let points = vec![
            point("u", 0, 0, &[], Some("ATP 4-0.6")),
            point("u", 1, 0, &[], Some("ATP 4-0.6")),
            point("c", 2, 1, &[], Some("FM 4-0")),
            point("s-nf", 3, 2, &["NOFORN"], None),
            point("s-rel", 4, 2, &["REL TO USA, GBR"], None),
            point("ts", 5, 3, &["orcon"], Some("atp 4-0.6")),
        ];
        store.upsert(&points).unwrap();
        store.flush().unwrap();
        let query = vec![1.0; DIM];
        let cases: Vec<(&str, PassageFilter, &[&str])> = vec![
            (
                "none",
                PassageFilter::default(),
                &["u", "c", "s-nf", "s-rel", "ts"],
            ),
            (
                "doc ids",
                PassageFilter {
                    doc_ids: vec!["c".into(), "ts".into()],
                    ..PassageFilter::default()
                },
                &["c", "ts"],
            ),
            (
                "publication, normalised",
                PassageFilter {
                    publications: vec!["atp 4-0.6".into()],
                    ..PassageFilter::default()
                },
                &["u", "ts"],
            ),
            (
                "marking rank",
                PassageFilter {
                    max_marking_rank: Some(1),
                    ..PassageFilter::default()
                },
                &["u", "c"],
            ),
            (
                "excluded docs",
                PassageFilter {
                    exclude_doc_ids: vec!["u".into(), "s-nf".into()],
                    ..PassageFilter::default()
                },
                &["c", "s-rel", "ts"],
            ),
            (
                "denied caveats, any of an array",
                PassageFilter {
                    exclude_caveats: vec!["NOFORN".into(), "ORCON".into()],
                    ..PassageFilter::default()
                },
                &["u", "c", "s-rel"],
            ),
            (
                "everything at once",
                PassageFilter {
                    doc_ids: vec!["u".into(), "c".into(), "s-rel".into(), "ts".into()],
                    publications: vec!["ATP 4-0.6".into(), "FM 4-0".into()],
                    max_marking_rank: Some(2),
                    exclude_doc_ids: vec!["u".into()],
                    exclude_caveats: vec!["REL TO GBR, USA".into()],
                    ..PassageFilter::default()
                },
                &["c"],
            ),
        ];
        for (case, filter, expected) in cases {
            let filter = filtered(filter);
            let hits = store.search(&query, 10, &filter).unwrap();
            assert_eq!(hit_docs(&hits), set(expected), "{name}: {case}");
        }
    }
}

#[test]
fn clearance_filtering_returns_k_permitted_hits() {
    for backend in Backend::all("clearance") {
        let dir = tempfile::tempdir().unwrap();
        let store = backend.open(dir.path()).unwrap();
        let name = backend.name();
        let markings: [(u32, &[&str]); 6] = [
            (0, &[]),
            (3, &["NOFORN"]),
            (3, &["REL TO USA, GBR"]),
            (2, &["rel to fra,usa"]),
            (4, &["ORCON"]),
            (1, &[]),
        ];
        // Restricted points sit exactly on the query; permitted ones a little off it, so
        // filtering after an unfiltered top-k would return nothing permitted.
        let query = unit(0);
        let points: Vec<VectorPoint> = (0..60)
            .map(|i| {
                let (rank, caveats) = markings[i % markings.len()];
                let mut vector = query.clone();
                if rank == 0 && caveats.is_empty() || rank == 1 {
                    vector[1 + i % 7] = 0.3;
                }
                VectorPoint {
                    passage_id: format!("d{i}#0"),
                    doc_id: format!("d{i}"),
                    marking_rank: rank,
                    caveats: caveats.iter().map(|c| c.to_string()).collect(),
                    publication: None,
                    vector,
                }
            })
            .collect();
        store.upsert(&points).unwrap();
        store.flush().unwrap();
        let scheme = MarkingScheme::default();
        let tokens: Vec<String> = ["NOFORN", "ORCON", "REL TO FRA, USA", "REL TO GBR, USA"]
            .map(String::from)
            .to_vec();
        let clearances: [(&str, &[&str]); 5] = [
            ("UNCLASSIFIED", &[]),
            ("SECRET", &["REL TO GBR"]),
            ("SECRET", &["REL TO USA"]),
            ("TOP SECRET", &["NOFORN"]),
            ("TOP SECRET", &["ORCON", "NOFORN"]),
        ];
        for (level, held) in clearances {
            let clearance = doctrina_types::Clearance {
                level: level.into(),
                caveats: held.iter().map(|c| c.to_string()).collect(),
            };
            let filter = filtered(PassageFilter {
                max_marking_rank: scheme.rank(level),
                exclude_caveats: tokens
                    .iter()
                    .filter(|t| !scheme.permits_caveat(&clearance, t))
                    .cloned()
                    .collect(),
                ..PassageFilter::default()
            });
            let hits = store.search(&query, 8, &filter).unwrap();
            assert_eq!(
                hits.len(),
                8,
                "{name} {level} {held:?}: k hits despite the filter"
            );
            for (id, _) in &hits {
                let i: usize = id[1..id.len() - 2].parse().unwrap();
                let (rank, caveats) = markings[i % markings.len()];
                let marking = doctrina_types::Marking {
                    level: scheme.levels[rank as usize].clone(),
                    caveats: caveats.iter().map(|c| c.to_string()).collect(),
                };
                assert!(
                    scheme.permits(&clearance, &marking),
                    "{name} {level} {held:?} got {id}"
                );
            }
        }
    }
}

#[test]
fn deletes_retain_and_persistence() {
    for backend in Backend::all("deletes") {
        let dir = tempfile::tempdir().unwrap();
        let name = backend.name();
        {
            let store = backend.open(dir.path()).unwrap();
            let points: Vec<VectorPoint> = ["a", "b", "c", "d"]
                .iter()
                .enumerate()
                .flat_map(|(n, doc)| (0..3).map(move |i| point(doc, n * 3 + i, 0, &[], None)))
                .collect();
            store.upsert(&points).unwrap();
            store.delete_doc("b").unwrap();
            store.delete_doc("never-written").unwrap();
            store
                .retain_docs(&["a".to_string(), "c".to_string()])
                .unwrap();
            store.flush().unwrap();
            assert_eq!(store.count().unwrap(), 6, "{name}");
        }
        // What was written is there after the store is opened again.
        let store = backend.open(dir.path()).unwrap();
        assert_eq!(
            store.doc_counts().unwrap().into_keys().collect::<Vec<_>>(),
            vec!["a".to_string(), "c".to_string()],
            "{name}"
        );
        assert_eq!(
            hit_docs(&store.search(&unit(4), 10, &unfiltered()).unwrap()),
            set(&["a", "c"])
        );
        store.retain_docs(&[]).unwrap();
        assert_eq!(
            store.count().unwrap(),
            0,
            "{name}: keeping nothing empties the store"
        );
    }
}

/// Embeds by text length and counts what it embeds: shows which passages a repair re-embeds.
#[derive(Default)]
struct CountingEmbedder(std::sync::atomic::AtomicUsize);

impl Embedder for CountingEmbedder {
    fn dimension(&self) -> usize {
        DIM
    }
    fn embed(&self, texts: &[&str]) -> doctrina_embed::Result<Vec<Vec<f32>>> {
        self.0
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(texts.iter().map(|t| unit(t.len())).collect())
    }
    fn model_name(&self) -> &str {
        "counting"
    }
}

#[test]
fn the_indexes_repair_after_a_crash() {
    use crate::store::tests::document;
    for backend in Backend::all("repair") {
        let dir = tempfile::tempdir().unwrap();
        let name = backend.name();
        let open = || {
            Indexes::open_with(dir.path(), MarkingScheme::default(), |d| backend.open(d)).unwrap()
        };
        {
            let indexes = open();
            indexes
                .write_documents(
                    &[
                        document("a", "UNCLASSIFIED", &[], 3),
                        document("b", "SECRET", &["NOFORN"], 3),
                    ],
                    1,
                )
                .unwrap();
            // A crash in the middle of writing: document `c` began but never committed (its
            // vectors are in the store), `b` lost a vector, and vectors of a document the
            // catalog never heard of were left behind.
            let c = document("c", "UNCLASSIFIED", &[], 2);
            indexes
                .catalog()
                .begin_documents(&[(&c.record_meta, 0)])
                .unwrap();
            let stray = |doc: &str, i: usize| VectorPoint {
                passage_id: format!("{doc}#{i}"),
                doc_id: doc.to_string(),
                marking_rank: 0,
                caveats: Vec::new(),
                publication: None,
                vector: unit(i),
            };
            indexes
                .vectors
                .upsert(&[stray("c", 0), stray("c", 1), stray("ghost", 0)])
                .unwrap();
            indexes.vectors.delete_doc("b").unwrap();
            indexes
                .vectors
                .upsert(&[VectorPoint {
                    marking_rank: 2,
                    caveats: vec!["NOFORN".into()],
                    ..stray("b", 0)
                }])
                .unwrap();
            indexes.flush().unwrap();
        }
        let indexes = open();
        let before = indexes.check(None, false).unwrap();
        assert!(!before.consistent, "{name}: the crash is seen");
        assert_eq!(before.interrupted, vec!["c".to_string()], "{name}");
        let embedder = CountingEmbedder::default();
        let report = indexes.check(Some(&embedder), true).unwrap();
        assert!(report.consistent, "{name}: {report:?}");
        assert_eq!(report.removed, vec!["c".to_string()], "{name}");
        assert_eq!(
            embedder.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "{name}: only b's two lost vectors are embedded again"
        );
        assert_eq!(
            indexes
                .vectors
                .doc_counts()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![("a".to_string(), 3), ("b".to_string(), 3)],
            "{name}: the orphan is gone, nothing committed was lost"
        );
        // b's repaired vectors keep its marking inside the query.
        let low = indexes
            .resolve_clearance(&PassageFilter {
                clearance: Some(doctrina_types::Clearance {
                    level: "TOP SECRET".into(),
                    caveats: Vec::new(),
                }),
                ..PassageFilter::default()
            })
            .unwrap()
            .unwrap();
        let hits = indexes.vectors.search(&[1.0; DIM], 10, &low).unwrap();
        assert_eq!(hit_docs(&hits), set(&["a"]), "{name}");
    }
}
