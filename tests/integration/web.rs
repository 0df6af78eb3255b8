//! The real app on port 0: health, the search API (same objects as the CLI, for an account
//! cleared for the whole corpus), the page.

use doctrina_tests::{corpus_index, drafter_over, serve_app, signed_in};
use doctrina_types::{PassageFilter, SearchHit, SearchMode};

/// GET as `staff` (every role; cleared for the whole bundled corpus).
async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_api_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let retriever = corpus_index().retriever();
    let server = serve_app(
        drafter_over(retriever.clone(), None, dir.path()),
        dir.path(),
    )
    .await;
    let base = format!("http://{}", server.addr);
    let client = signed_in(&base, "staff").await;

    let (status, body) = get(&client, &format!("{base}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "consistent": true})
    );
    let anonymous = reqwest::Client::new();
    let (status, public) = get(&anonymous, &format!("{base}/healthz")).await;
    assert_eq!(
        (status, public),
        (200, body),
        "the same, with no counts, for anyone"
    );
    let (status, body) = get(&client, &format!("{base}/api/index/health")).await;
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["catalog_passages"], report["vector_passages"]);
    assert_eq!(report["catalog_passages"], report["keyword_passages"]);
    assert_eq!(report["consistent"], true);

    let (status, body) = get(
        &client,
        &format!("{base}/api/search?q=convoy%20trail%20party&k=3&mode=hybrid"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let api: Vec<SearchHit> = serde_json::from_str(&body).expect("search hits");
    let direct = retriever
        .search(
            "convoy trail party",
            SearchMode::Hybrid,
            3,
            &PassageFilter::default(),
        )
        .unwrap();
    assert_eq!(
        api, direct,
        "the API returns what the retriever (and the CLI) returns"
    );

    let (status, body) = get(&client, &format!("{base}/api/search?q=&k=3")).await;
    assert_eq!(status, 400);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "empty_query");
    let (status, body) = get(&client, &format!("{base}/api/search?q=x&mode=fuzzy")).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown search mode"), "{body}");
    let (status, _) = get(&client, &format!("{base}/api/search?q=x&k=0")).await;
    assert_eq!(status, 400);

    let (status, page) = get(
        &client,
        &format!("{base}/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E+convoy"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("<script>alert(1)"),
        "the query is escaped, not injected"
    );
    assert!(
        page.contains("alert(1)"),
        "the query is echoed back (escaped)"
    );
    assert!(page.contains("class=\"hit\""), "results rendered");
    drop(retriever);
    server.shutdown().await.expect("clean shutdown");
}

/// A vector store whose node can be taken down: the fault a dead Qdrant server gives
/// (`IndexError::Vector`, naming the server), injected over the real embedded store.
struct NodeDown {
    inner: doctrina_index::EdgeVectorStore,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl NodeDown {
    fn check(&self) -> doctrina_index::Result<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(doctrina_index::IndexError::Vector(
                "Qdrant server http://127.0.0.1:6334 (collection doctrina): searching failed: \
                 unreachable (connection refused)"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

impl doctrina_index::VectorStore for NodeDown {
    fn upsert(&self, points: &[doctrina_index::VectorPoint]) -> doctrina_index::Result<()> {
        self.check()?;
        self.inner.upsert(points)
    }
    fn delete_doc(&self, doc_id: &str) -> doctrina_index::Result<()> {
        self.check()?;
        self.inner.delete_doc(doc_id)
    }
    fn retain_docs(&self, keep: &[String]) -> doctrina_index::Result<()> {
        self.check()?;
        self.inner.retain_docs(keep)
    }
    fn search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &doctrina_index::AccessFilter,
    ) -> doctrina_index::Result<Vec<(String, f32)>> {
        self.check()?;
        self.inner.search(vector, limit, filter)
    }
    fn count(&self) -> doctrina_index::Result<usize> {
        self.check()?;
        self.inner.count()
    }
    fn count_doc(&self, doc_id: &str) -> doctrina_index::Result<usize> {
        self.check()?;
        self.inner.count_doc(doc_id)
    }
    fn doc_counts(&self) -> doctrina_index::Result<std::collections::BTreeMap<String, usize>> {
        self.check()?;
        self.inner.doc_counts()
    }
    fn vectors(
        &self,
        passage_ids: &[String],
    ) -> doctrina_index::Result<std::collections::HashMap<String, Vec<f32>>> {
        self.check()?;
        self.inner.vectors(passage_ids)
    }
    fn flush(&self) -> doctrina_index::Result<()> {
        self.check()?;
        self.inner.flush()
    }
    fn describe(&self) -> String {
        "a vector store that can be taken down".to_string()
    }
}

/// With the vector store down, a hybrid search still answers, from the keyword index, and
/// says so: a notice on the page, a header on the API, a line in the audit detail. A
/// semantic-only search fails with the error naming the server; nothing else is affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_degrades_to_keywords_when_the_vector_store_is_down() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let indexes = {
        let down = down.clone();
        Arc::new(
            doctrina_index::Indexes::open_with(
                dir.path(),
                doctrina_types::MarkingScheme::default(),
                |d| {
                    Ok(Box::new(NodeDown {
                        inner: doctrina_index::EdgeVectorStore::open(
                            &d.join("vectors"),
                            doctrina_app::App::dimension(),
                        )?,
                        down,
                    }))
                },
            )
            .unwrap(),
        )
    };
    let app = doctrina_tests::open_app(dir.path(), |_| {}, |b| b.indexes(indexes.clone()));
    let report = doctrina_index::Indexer::new(&indexes, &app.ingestor, app.embedder.as_ref())
        .run(
            &[doctrina_tests::corpus_documents().join("atp-4-0-6.md")],
            &doctrina_index::indexer::NoProgress,
        )
        .unwrap();
    assert_eq!(report.failed.len(), 0, "{report:?}");
    doctrina_tests::add_accounts(&app.auth);
    let server = doctrina_tests::serve_state(doctrina_web::AppState::new(&app)).await;
    let base = format!("http://{}", server.addr);
    let client = signed_in(&base, "staff").await;
    let api = format!("{base}/api/search?q=convoy%20trail%20party&k=5&mode=hybrid");

    let up = client.get(&api).send().await.unwrap();
    assert!(up.headers().get("x-doctrina-degraded").is_none());
    let hits: Vec<SearchHit> = up.json().await.unwrap();
    assert!(hits.iter().any(|h| h.scores.dense.is_some()), "{hits:?}");

    down.store(true, Ordering::SeqCst);
    let degraded = client.get(&api).send().await.unwrap();
    assert_eq!(degraded.status(), 200);
    assert_eq!(
        degraded.headers()["x-doctrina-degraded"].to_str().unwrap(),
        "keyword-only"
    );
    let hits: Vec<SearchHit> = degraded.json().await.unwrap();
    assert!(!hits.is_empty(), "keyword results still come back");
    assert!(hits.iter().all(|h| h.scores.dense.is_none()), "{hits:?}");

    let (status, page) = get(&client, &format!("{base}/?q=convoy+trail+party")).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"notice degraded\""), "{page}");
    assert!(page.contains("keyword results only"), "{page}");
    assert!(
        page.contains("http://127.0.0.1:6334"),
        "the notice names the server"
    );
    assert!(page.contains("class=\"hit\""), "results rendered");

    let (status, body) = get(&client, &format!("{base}/api/search?q=convoy&mode=dense")).await;
    assert_eq!(status, 503, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "vector_store_unavailable");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:6334")
    );

    // Back up: semantic results return, no notice.
    down.store(false, Ordering::SeqCst);
    let (_, page) = get(&client, &format!("{base}/?q=convoy+trail+party")).await;
    assert!(!page.contains("notice degraded"));
    server.shutdown().await.expect("clean shutdown");
}
