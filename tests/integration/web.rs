//! The real app on port 0: health, the search API (same objects as the CLI), the page.

use std::sync::Arc;

use doctrina_tests::{corpus_index, drafter_over, serve_app};
use doctrina_types::{PassageFilter, SearchHit, SearchMode};

async fn get(url: &str) -> (u16, String) {
    // A minimal HTTP/1.1 client over a TCP stream keeps the test free of extra crates.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text[9..12].parse().expect("status code");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_api_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let retriever = Arc::new(corpus_index().retriever());
    let server = serve_app(
        drafter_over(retriever.clone(), None, dir.path()),
        dir.path(),
    )
    .await;
    let base = format!("http://{}", server.addr);

    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["passages"]["catalog"], health["passages"]["vectors"]);

    let (status, body) = get(&format!(
        "{base}/api/search?q=convoy%20trail%20party&k=3&mode=hybrid"
    ))
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

    let (status, body) = get(&format!("{base}/api/search?q=&k=3")).await;
    assert_eq!(status, 400);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "empty_query");
    let (status, body) = get(&format!("{base}/api/search?q=x&mode=fuzzy")).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown search mode"), "{body}");
    let (status, _) = get(&format!("{base}/api/search?q=x&k=0")).await;
    assert_eq!(status, 400);

    let (status, page) = get(&format!(
        "{base}/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E+convoy"
    ))
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
