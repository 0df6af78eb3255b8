//! Korean and cross-lingual: statute articles as citable units, Hangul document ids,
//! Korean questions over English doctrine and the reverse (through the multilingual model
//! and the glossary), the glossary page, and the interface in Korean.

use doctrina_tests::{corpus_index, drafter, serve_app, signed_in};
use doctrina_types::SearchMode;

fn paragraphs(hits: &[doctrina_types::SearchHit]) -> Vec<(String, Vec<String>)> {
    hits.iter()
        .map(|h| (h.doc_id.clone(), h.paragraphs.clone()))
        .collect()
}

#[test]
fn statute_articles_are_citable_units() {
    let index = corpus_index();
    let hits = index.search("진급 최저복무기간", SearchMode::Bm25, 5);
    let article = hits
        .iter()
        .find(|h| h.paragraphs == ["제7조"])
        .unwrap_or_else(|| panic!("제7조 not among {:?}", paragraphs(&hits)));
    // A statute is cited by its name (front matter `법령구분`), its article as printed.
    assert_eq!(article.publication.as_deref(), Some("군인사법(예시)"));
    assert!(
        article.text.starts_with("제7조 (진급 최저복무기간)"),
        "{}",
        article.text
    );

    let hits = index.search("제24조의2", SearchMode::Hybrid, 3);
    assert_eq!(hits[0].paragraphs, ["제24조의2"], "{:?}", paragraphs(&hits));

    // Supplementary provisions never collide with the main articles.
    let hits = index.search("부칙 시행일", SearchMode::Hybrid, 5);
    assert!(
        hits.iter()
            .any(|h| h.paragraphs.iter().any(|p| p.starts_with("부칙 제"))),
        "{:?}",
        paragraphs(&hits)
    );

    // The deleted 제30조 is not a passage, and no passage spans it.
    let retriever = index.retriever();
    let catalog = retriever.indexes().catalog();
    let law = catalog
        .documents()
        .unwrap()
        .into_iter()
        .find(|d| d.meta.publication.as_deref() == Some("군인사법(예시)"))
        .expect("the sample statute is indexed");
    let passages = catalog.passages_of(&law.meta.id).unwrap();
    assert!(passages.len() > 30, "{}", passages.len());
    for p in &passages {
        assert!(
            !p.passage.text.contains("제30조 삭제"),
            "{}",
            p.passage.text
        );
        assert!(
            p.passage.paragraphs.len() <= 1,
            "{:?}",
            p.passage.paragraphs
        );
    }
    // Front matter keys doctrina does not interpret are kept, and `시행일자` is not lost.
    assert_eq!(
        law.meta.extra.get("법령구분").map(String::as_str),
        Some("법률")
    );
    assert_eq!(law.meta.language, "ko");
}

#[test]
fn hangul_file_names_give_distinct_readable_ids() {
    let retriever = corpus_index().retriever();
    let docs = retriever.indexes().catalog().documents().unwrap();
    let ids: Vec<&str> = docs.iter().map(|d| d.meta.id.as_str()).collect();
    let hangul: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| doctrina_korean::has_hangul(id))
        .collect();
    // From the path under the indexed folder, Hangul kept (NFC).
    assert!(hangul.contains(&"법령-군인사법-예시-md"), "{ids:?}");
    assert!(hangul.contains(&"법령-군인사법-시행령-예시-md"), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn questions_cross_languages_both_ways() {
    let index = corpus_index();
    // Korean over English doctrine: the glossary gives the keyword side `sustainment
    // decision point`, the multilingual model the semantic side.
    let hits = index.search("지속지원 결심지점의 정의", SearchMode::Hybrid, 5);
    assert!(
        hits.iter()
            .any(|h| h.publication.as_deref() == Some("ATP 4-0.6") && h.paragraphs == ["2-8"]),
        "{:?}",
        paragraphs(&hits)
    );
    // English over a Korean statute.
    let hits = index.search(
        "minimum time in grade before promotion to captain",
        SearchMode::Hybrid,
        5,
    );
    assert!(
        hits.iter().any(
            |h| h.publication.as_deref() == Some("군인사법(예시)") && h.paragraphs == ["제7조"]
        ),
        "{:?}",
        paragraphs(&hits)
    );
    // Why, in the plan: the language and the glossary's terms.
    let filter = doctrina_types::PassageFilter::default();
    let (_, plan, _) = index
        .retriever()
        .search_explained("지속지원 결심지점의 정의", SearchMode::Hybrid, 5, &filter)
        .unwrap();
    assert_eq!(plan.language, "ko");
    assert!(
        plan.keyword_query.contains("sustainment"),
        "{}",
        plan.keyword_query
    );
    assert!(!plan.reasons.is_empty());
    assert!(plan.bm25_weight > 0.0 && plan.dense_weight > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glossary_page_names_bad_lines_and_installs_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(drafter(None, dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let http = signed_in(&base, "custodian").await;
    let page = http.get(format!("{base}/glossary")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("지속지원"), "the starter glossary is shown");

    let refused = http
        .post(format!("{base}/glossary"))
        .form(&[("text", "작전명령 = operation order\n이 줄은 등호가 없다\n")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"glossary-errors\""), "{html}");
    assert!(html.contains("line 2") || html.contains("줄 2"), "{html}");

    // The current glossary plus one entry (other tests share this index's glossary).
    let current = corpus_index()
        .retriever()
        .glossary()
        .expect("the test app has a glossary")
        .text()
        .unwrap();
    let text = format!("{current}\n차륜형장갑차 = wheeled armored vehicle\n");
    let saved = http
        .post(format!("{base}/glossary"))
        .form(&[("text", text.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    // The server's searches use it at once: the query plan line names the expansion.
    let html = http
        .get(format!("{base}/?q=차륜형장갑차%20정비"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("wheeled armored vehicle"), "{html}");
    // Officers cannot edit it.
    let officer = signed_in(&base, "officer").await;
    let denied = officer
        .post(format!("{base}/glossary"))
        .form(&[("text", "a = b")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interface_speaks_the_readers_language() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(drafter(None, dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let http = signed_in(&base, "officer").await;
    let korean = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("accept-language", "ko-KR,ko;q=0.9,en;q=0.5")
            .send()
    };
    // The browser's language when the account has none.
    let html = korean("/?q=지속지원").await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"ko\">"), "{html}");
    assert!(
        html.contains("질의 언어"),
        "the query plan line is in Korean"
    );
    // A handler's error page too, and the login page.
    let missing = korean("/plans/no-such-plan").await.unwrap();
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"ko\">") && html.contains("찾을 수 없"),
        "{html}"
    );
    let login = reqwest::Client::new()
        .get(format!("{base}/login"))
        .header("accept-language", "ko")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("<html lang=\"ko\">"), "{login}");
    // The account setting wins over the browser.
    let set = http
        .post(format!("{base}/api/session/language"))
        .json(&serde_json::json!({"language": "en"}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());
    let html = korean("/").await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    server.shutdown().await.unwrap();
}
