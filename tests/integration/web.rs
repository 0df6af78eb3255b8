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
