//! An officer's walk through the workspace in real headless Chromium: search, create a
//! plan, draft a section against the real llama-server (streamed) and in extractive mode,
//! open a citation and see the highlighted span, open the document at that paragraph,
//! edit, accept, export. Plus XSS payloads in model output executing nothing in the
//! browser. Screenshots of each step: `test-artifacts/browser/`.

use std::time::Duration;

use doctrina_tests::browser::Browser;
use doctrina_tests::servers::{FakeServer, Fault, LlamaServer};
use doctrina_tests::{PASSWORD, app_state_with, chat, chat_at, drafter, serve_app, serve_state};
use fantoccini::Locator;

const LONG: Duration = Duration::from_secs(480);

/// Waits for `css` to match, polling. Every WebDriver error is retried until the deadline:
/// a lookup that races a page navigation (the draft script navigates when the stream ends)
/// is answered with "aborted by navigation", which is not a failure of the page.
async fn wait_css(b: &Browser, css: &str, timeout: Duration) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match b.client.find(Locator::Css(css)).await {
            Ok(element) => return element,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("waiting for {css}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Opens `url`, which redirects to the login page, and signs in as `name`; ends on `url`.
async fn sign_in(b: &Browser, url: &str, name: &str, password: &str) {
    b.client.goto(url).await.unwrap();
    wait_css(b, "#login-name", LONG)
        .await
        .send_keys(name)
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#login-password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn js(b: &Browser, script: &str) -> serde_json::Value {
    b.client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_drafts_reviews_and_exports_in_chromium() {
    let llama = LlamaServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Generous timeouts and a short answer: the small model shares two cores with the
    // rest of the test suite.
    let chat = chat(&llama.url, |c| {
        c.first_token_timeout_ms = 240_000;
        c.total_timeout_ms = 400_000;
        c.max_tokens = 96;
    });
    let server = serve_app(drafter(Some(chat), dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("officer").await;

    // Sign in (the search page sends us to the login page and back), then search with
    // highlighted matches and score breakdowns.
    sign_in(&b, &format!("{base}/"), "staff", PASSWORD).await;
    let q = wait_css(&b, "input[name=q]", LONG).await;
    q.send_keys("convoy refuel at the release point")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, ".hit mark", LONG).await;
    let scores = b.client.find(Locator::Css(".hit .scores")).await.unwrap();
    assert!(scores.text().await.unwrap().contains("bm25"));
    b.shot("search").await;

    // Create a plan.
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let title = wait_css(&b, "form.create-plan input[name=title]", LONG).await;
    title.send_keys("OPORD 24-07 (IRON RIDGE)").await.unwrap();
    b.client
        .find(Locator::Css("form.create-plan button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "form.add-section", LONG).await;
    let plan_url = b.client.current_url().await.unwrap().to_string();

    // Add the sustainment paragraph.
    let template = b
        .client
        .find(Locator::Css("form.add-section select[name=template]"))
        .await
        .unwrap();
    template.select_by_value("opord-sustainment").await.unwrap();
    b.client
        .find(Locator::Css("form.add-section textarea[name=task]"))
        .await
        .unwrap()
        .send_keys("Sustain the battalion attack: plan bulk fuel and ammunition resupply")
        .await
        .unwrap();
    b.shot("plan").await;
    b.client
        .find(Locator::Css("form.add-section button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#draft-form", LONG).await;

    // Draft with the real model: the text streams in, then the verified draft shows.
    b.client
        .find(Locator::Css("#draft-form textarea[name=guidance]"))
        .await
        .unwrap()
        .send_keys("Emphasise night resupply.")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#draft-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#stream:not([hidden])", LONG).await;
    b.shot("llm-streaming").await;
    let shown = wait_css(&b, "#current[data-version='1'], #stream .error", LONG).await;
    if shown.attr("class").await.unwrap().as_deref() == Some("error") {
        b.shot("llm-error").await;
        panic!("the draft failed: {}", shown.text().await.unwrap());
    }
    let user = js(
        &b,
        "return document.querySelector('#current h2 small').textContent",
    )
    .await;
    assert!(user.as_str().unwrap().contains("staff"), "{user}");
    b.shot("llm-draft").await;

    // Draft again, extractive: quoted sentences, each with a support label and a citation.
    b.client
        .find(Locator::Css("input[name=mode][value=extractive]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#draft-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#current[data-version='2']", LONG).await;
    let labels = js(
        &b,
        "return Array.from(document.querySelectorAll('ol.sentences .badge')).map(e => e.textContent)",
    )
    .await;
    assert!(
        labels
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|x| x == "supported")),
        "{labels}"
    );
    b.shot("extractive-draft").await;

    // Open a citation: the passage shows beside the draft with the cited span highlighted.
    b.client
        .find(Locator::Css("ol.sentences a.cite"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mark = wait_css(&b, "#source mark.cited-span", LONG).await;
    let marked = mark.text().await.unwrap();
    let sentence = js(
        &b,
        "return document.querySelector('ol.sentences li').textContent",
    )
    .await;
    let words: Vec<&str> = marked.split_whitespace().take(6).collect();
    assert!(
        sentence.as_str().unwrap().contains(&words.join(" ")),
        "the highlighted span is the quoted text: {marked:?} in {sentence}"
    );
    let meta = b
        .client
        .find(Locator::Css("#source .source-meta"))
        .await
        .unwrap();
    let meta = meta.text().await.unwrap();
    assert!(meta.contains("Publication") && meta.contains("Paragraph") && meta.contains("Page"));
    b.shot("citation").await;

    // The full document at that paragraph.
    let doc_link = b
        .client
        .find(Locator::Css("#source a.doc-link"))
        .await
        .unwrap();
    let href = doc_link.attr("href").await.unwrap().unwrap();
    assert!(
        href.starts_with("/documents/") && href.contains('#'),
        "{href}"
    );
    let section_url = b.client.current_url().await.unwrap().to_string();
    doc_link.click().await.unwrap();
    wait_css(&b, "article.document", LONG).await;
    let anchor = href.split('#').nth(1).unwrap();
    let found = js(&b, &format!("return !!document.getElementById('{anchor}')")).await;
    assert_eq!(found, serde_json::Value::Bool(true), "anchor {anchor}");
    b.shot("document").await;
    b.client.goto(&section_url).await.unwrap();
    wait_css(&b, "#current[data-version='2']", LONG).await;

    // Edit: drop the first quoted bullet; the removal of a cited sentence is tracked.
    js(
        &b,
        "const t = document.querySelector('#edit-text'); \
         const lines = t.value.split('\\n'); \
         const i = lines.findIndex(l => l.startsWith('- ')); \
         lines.splice(i, 1); t.value = lines.join('\\n'); return i",
    )
    .await;
    b.client
        .find(Locator::Css("form.edit-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#current[data-version='3']", LONG).await;
    let changes = b
        .client
        .find(Locator::Css("details.changes"))
        .await
        .unwrap();
    assert!(changes.text().await.unwrap().contains("removed"));
    b.shot("edited").await;

    // Accept.
    b.client
        .find(Locator::Css("button.accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#section-status.status-accepted", LONG).await;
    b.shot("accepted").await;

    // Export: standalone HTML with the marking banner and the reference list.
    b.client
        .goto(&format!("{plan_url}/export.html"))
        .await
        .unwrap();
    let banner = wait_css(&b, ".banner", LONG).await;
    let banner = banner.text().await.unwrap();
    assert!(!banner.trim().is_empty());
    let refs = js(
        &b,
        "return document.querySelectorAll('.references li').length",
    )
    .await;
    assert!(refs.as_u64().unwrap() >= 1, "{refs}");
    let requests = js(&b, "return performance.getEntriesByType('resource').length").await;
    assert_eq!(requests, 0, "the export loads nothing from anywhere");
    b.shot("export").await;

    b.close().await;
    server.shutdown().await.unwrap();
    drop(llama);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xss_in_model_output_executes_nothing_in_chromium() {
    let reply = "Fuel is pushed forward nightly <script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"> [1]. \
                 See [the annex](javascript:window.__xss=3) [1]."
        .to_string();
    let fake = FakeServer::start(Fault::Reply(reply)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(drafter(Some(chat_at(&fake.url)), dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("xss").await;

    sign_in(&b, &format!("{base}/plans"), "officer", PASSWORD).await;
    wait_css(&b, "form.create-plan input[name=title]", LONG)
        .await
        .send_keys("<img src=x onerror=\"window.__xss=4\">")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form.create-plan button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "form.add-section", LONG)
        .await
        .find(Locator::Css("textarea[name=task]"))
        .await
        .unwrap()
        .send_keys("Resupply fuel <script>window.__xss=5</script>")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form.add-section button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#draft-button", LONG)
        .await
        .click()
        .await
        .unwrap();
    wait_css(&b, "#current[data-version='1']", LONG).await;
    let state = js(
        &b,
        "return [typeof window.__xss, document.querySelectorAll('#draft-text script, #draft-text img, #draft-text a[href^=javascript]').length]",
    )
    .await;
    assert_eq!(
        state,
        serde_json::json!(["undefined", 0]),
        "payloads stay inert"
    );
    let shown = b.client.find(Locator::Css("ol.sentences")).await.unwrap();
    assert!(
        shown
            .text()
            .await
            .unwrap()
            .contains("<script>window.__xss=1</script>"),
        "shown as text"
    );
    b.shot("model-output-inert").await;
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    wait_css(&b, "table.plans", LONG).await;
    let state = js(&b, "return typeof window.__xss").await;
    assert_eq!(state, "undefined");
    b.close().await;
    server.shutdown().await.unwrap();
}

/// Login, a wrong password, role denial, a forged CSRF token, logout, and an expired
/// session, in Chromium. Screenshots: `test-artifacts/browser/accounts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_login_logout_expiry_csrf_and_roles_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_state(app_state_with(
        drafter(None, dir.path()),
        dir.path(),
        doctrina_types::config::AuthConfig {
            session_idle_secs: 10,
            ..Default::default()
        },
    ))
    .await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("accounts").await;

    // Anonymous: every page sends you to the login page.
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    wait_css(&b, "#login-name", LONG).await;
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/login?next=%2Fplans")
    );
    b.shot("login-page").await;

    // A wrong password: an error, no session.
    sign_in(
        &b,
        &format!("{base}/plans"),
        "custodian",
        "not the password",
    )
    .await;
    let error = wait_css(&b, "#login-error", LONG).await;
    assert!(
        error
            .text()
            .await
            .unwrap()
            .contains("wrong account name or password")
    );
    b.shot("wrong-password").await;

    // A custodian signs in; plans are not theirs: 403 page, and no Plans link.
    sign_in(&b, &format!("{base}/documents"), "custodian", PASSWORD).await;
    wait_css(&b, "table.documents, .documents", LONG).await;
    let nav = js(
        &b,
        "return document.querySelector('header nav').textContent",
    )
    .await;
    assert!(!nav.as_str().unwrap().contains("Plans"), "{nav}");
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let error = wait_css(&b, "[data-code=forbidden]", LONG).await;
    assert!(error.text().await.unwrap().contains("officer"));
    let heading = js(&b, "return document.querySelector('main h1').textContent").await;
    assert!(heading.as_str().unwrap().contains("403"), "{heading}");
    b.shot("role-denied").await;

    // An officer: a form with a forged CSRF token is refused and changes nothing.
    b.client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&b, "#login-name", LONG).await;
    sign_in(&b, &format!("{base}/plans"), "officer", PASSWORD).await;
    let title = wait_css(&b, "form.create-plan input[name=title]", LONG).await;
    title.send_keys("FORGED").await.unwrap();
    js(
        &b,
        "document.querySelector('form.create-plan input[name=_csrf]').value = 'forged'; return 1",
    )
    .await;
    b.client
        .find(Locator::Css("form.create-plan button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_css(&b, "[data-code=csrf_failed]", LONG).await;
    assert!(error.text().await.unwrap().contains("CSRF"));
    b.shot("csrf-refused").await;
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    wait_css(&b, "form.create-plan", LONG).await;
    let list = js(&b, "return document.querySelector('main').textContent").await;
    assert!(
        !list.as_str().unwrap().contains("FORGED"),
        "nothing was created"
    );

    // Logout ends the session: the old page now asks for a login.
    b.client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = wait_css(&b, ".notice", LONG).await.text().await.unwrap();
    assert!(notice.contains("signed out"), "{notice}");
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    wait_css(&b, "#login-name", LONG).await;
    b.shot("signed-out").await;

    // An idle session expires (10 s here): the next page says so.
    sign_in(&b, &format!("{base}/plans"), "officer", PASSWORD).await;
    wait_css(&b, "form.create-plan", LONG).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let notice = wait_css(&b, ".notice", LONG).await.text().await.unwrap();
    assert!(notice.contains("session expired"), "{notice}");
    b.shot("session-expired").await;

    b.close().await;
    server.shutdown().await.unwrap();
}
