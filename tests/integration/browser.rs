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
    b.sign_in(&format!("{base}/"), "staff", PASSWORD).await;
    search(&b, "convoy refuel at the release point").await;
    b.wait_css(".hit mark", LONG).await;
    let scores = b.client.find(Locator::Css(".hit .scores")).await.unwrap();
    assert!(scores.text().await.unwrap().contains("bm25"));
    b.shot("search").await;

    // Create a plan and add the sustainment paragraph.
    let plan_url = create_plan(&b, &base, "OPORD 24-07 (IRON RIDGE)").await;
    fill_section(
        &b,
        "opord-sustainment",
        "Sustain the battalion attack: plan bulk fuel and ammunition resupply",
    )
    .await;
    b.shot("plan").await;
    b.click("form.add-section button").await;
    b.wait_css("#draft-form", LONG).await;

    // Draft with the real model: the text streams in, then the verified draft shows.
    b.send_keys(
        "#draft-form textarea[name=guidance]",
        "Emphasise night resupply.",
    )
    .await;
    b.click("#draft-button").await;
    b.wait_css("#stream:not([hidden])", LONG).await;
    b.shot("llm-streaming").await;
    wait_for_draft(&mut b, 1, "llm").await;
    let user = b
        .js("return document.querySelector('#current h2 small').textContent")
        .await;
    assert!(user.as_str().unwrap().contains("staff"), "{user}");
    b.shot("llm-draft").await;

    // Draft again, extractive: quoted sentences, each with a support label and a citation.
    b.click("input[name=mode][value=extractive]").await;
    b.click("#draft-button").await;
    b.wait_css("#current[data-version='2']", LONG).await;
    let labels = b.js("return Array.from(document.querySelectorAll('ol.sentences .badge')).map(e => e.textContent)",
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
    b.click("ol.sentences a.cite").await;
    let mark = b.wait_css("#source mark.cited-span", LONG).await;
    let marked = mark.text().await.unwrap();
    let sentence = b
        .js("return document.querySelector('ol.sentences li').textContent")
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
    b.wait_css("article.document", LONG).await;
    let anchor = href.split('#').nth(1).unwrap();
    let found = b
        .js(&format!("return !!document.getElementById('{anchor}')"))
        .await;
    assert_eq!(found, serde_json::Value::Bool(true), "anchor {anchor}");
    b.shot("document").await;
    b.client.goto(&section_url).await.unwrap();
    b.wait_css("#current[data-version='2']", LONG).await;

    // Edit: drop the first quoted bullet; the removal of a cited sentence is tracked.
    b.js("const t = document.querySelector('#edit-text'); \
         const lines = t.value.split('\\n'); \
         const i = lines.findIndex(l => l.startsWith('- ')); \
         lines.splice(i, 1); t.value = lines.join('\\n'); return i")
        .await;
    b.click("form.edit-form button").await;
    b.wait_css("#current[data-version='3']", LONG).await;
    let changes = b
        .client
        .find(Locator::Css("details.changes"))
        .await
        .unwrap();
    assert!(changes.text().await.unwrap().contains("removed"));
    b.shot("edited").await;

    // Accept.
    b.click("button.accept").await;
    b.wait_css("#section-status.status-accepted", LONG).await;
    b.shot("accepted").await;

    // Export: standalone HTML with the marking banner and the reference list.
    b.client
        .goto(&format!("{plan_url}/export.html"))
        .await
        .unwrap();
    let banner = b.wait_css(".banner", LONG).await;
    let banner = banner.text().await.unwrap();
    assert!(!banner.trim().is_empty());
    let refs = b
        .js("return document.querySelectorAll('.references li').length")
        .await;
    assert!(refs.as_u64().unwrap() >= 1, "{refs}");
    let requests = b
        .js("return performance.getEntriesByType('resource').length")
        .await;
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

    b.sign_in(&format!("{base}/plans"), "officer", PASSWORD)
        .await;
    b.wait_css("form.create-plan input[name=title]", LONG)
        .await
        .send_keys("<img src=x onerror=\"window.__xss=4\">")
        .await
        .unwrap();
    b.click("form.create-plan button").await;
    b.wait_css("form.add-section", LONG)
        .await
        .find(Locator::Css("textarea[name=task]"))
        .await
        .unwrap()
        .send_keys("Resupply fuel <script>window.__xss=5</script>")
        .await
        .unwrap();
    b.click("form.add-section button").await;
    b.wait_css("#draft-button", LONG)
        .await
        .click()
        .await
        .unwrap();
    b.wait_css("#current[data-version='1']", LONG).await;
    let state = b.js("return [typeof window.__xss, document.querySelectorAll('#draft-text script, #draft-text img, #draft-text a[href^=javascript]').length]",
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
    b.wait_css("table.plans", LONG).await;
    let state = b.js("return typeof window.__xss").await;
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
    b.wait_css("#login-name", LONG).await;
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
    b.sign_in(&format!("{base}/plans"), "custodian", "not the password")
        .await;
    let error = b.wait_css("#login-error", LONG).await;
    assert!(
        error
            .text()
            .await
            .unwrap()
            .contains("wrong account name or password")
    );
    b.shot("wrong-password").await;

    // A custodian signs in; plans are not theirs: 403 page, and no Plans link.
    b.sign_in(&format!("{base}/documents"), "custodian", PASSWORD)
        .await;
    b.wait_css("table.documents, .documents", LONG).await;
    let nav = b
        .js("return document.querySelector('header nav').textContent")
        .await;
    assert!(!nav.as_str().unwrap().contains("Plans"), "{nav}");
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let error = b.wait_css("[data-code=forbidden]", LONG).await;
    assert!(error.text().await.unwrap().contains("officer"));
    let heading = b
        .js("return document.querySelector('main h1').textContent")
        .await;
    assert!(heading.as_str().unwrap().contains("403"), "{heading}");
    b.shot("role-denied").await;

    // An officer: a form with a forged CSRF token is refused and changes nothing.
    b.click("#logout").await;
    b.wait_css("#login-name", LONG).await;
    b.sign_in(&format!("{base}/plans"), "officer", PASSWORD)
        .await;
    let title = b.wait_css("form.create-plan input[name=title]", LONG).await;
    title.send_keys("FORGED").await.unwrap();
    b.js("document.querySelector('form.create-plan input[name=_csrf]').value = 'forged'; return 1")
        .await;
    b.click("form.create-plan button").await;
    let error = b.wait_css("[data-code=csrf_failed]", LONG).await;
    assert!(error.text().await.unwrap().contains("CSRF"));
    b.shot("csrf-refused").await;
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    b.wait_css("form.create-plan", LONG).await;
    let list = b
        .js("return document.querySelector('main').textContent")
        .await;
    assert!(
        !list.as_str().unwrap().contains("FORGED"),
        "nothing was created"
    );

    // Logout ends the session: the old page now asks for a login.
    b.click("#logout").await;
    let notice = b.wait_css(".notice", LONG).await.text().await.unwrap();
    assert!(notice.contains("signed out"), "{notice}");
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    b.wait_css("#login-name", LONG).await;
    b.shot("signed-out").await;

    // An idle session expires (10 s here): the next page says so.
    b.sign_in(&format!("{base}/plans"), "officer", PASSWORD)
        .await;
    b.wait_css("form.create-plan", LONG).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let notice = b.wait_css(".notice", LONG).await.text().await.unwrap();
    assert!(notice.contains("session expired"), "{notice}");
    b.shot("session-expired").await;

    b.close().await;
    server.shutdown().await.unwrap();
}

/// The page has no horizontal overflow (Korean text wraps inside the layout).
async fn fits_the_window(b: &Browser, page: &str) {
    let overflow = b
        .js("return document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 1),
        "{page}: the page is {overflow} px wider than the window"
    );
}

/// A Korean officer's walk: the interface switched to Korean from the header, a Korean
/// question answered from English doctrine (with the glossary's terms shown), a Korean
/// section template drafted (extractive, cited), a citation opened in the side panel, the
/// section accepted and the plan exported, with its banner and portion marks exactly as in
/// English. Screenshots: `test-artifacts/browser/korean-officer/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn korean_officer_searches_drafts_and_exports_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(drafter(None, dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("korean-officer").await;
    b.sign_in(&format!("{base}/"), "staff", PASSWORD).await;
    b.wait_css("#language-form", LONG).await;
    let select = b
        .client
        .find(Locator::Css("#language-form select[name=language]"))
        .await
        .unwrap();
    select.select_by_value("ko").await.unwrap();
    b.click("#language-submit").await;
    b.wait_css("html[lang=ko]", LONG).await;

    // A Korean question over English doctrine.
    search(&b, "지속지원 결심지점의 정의").await;
    b.wait_css(".hit", LONG).await;
    let plan = b
        .js("return document.querySelector('.query-plan').textContent")
        .await;
    let plan = plan.as_str().unwrap_or_default().to_string();
    assert!(
        plan.contains("질의 언어") && plan.contains("한국어"),
        "{plan}"
    );
    assert!(
        plan.contains("sustainment"),
        "the glossary's terms are shown: {plan}"
    );
    let publications = b
        .js("return Array.from(document.querySelectorAll('.hit .cite strong')).map(e => e.textContent)")
        .await;
    assert!(
        publications
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "ATP 4-0.6")),
        "English doctrine among the hits: {publications}"
    );
    fits_the_window(&b, "search").await;
    b.shot("search").await;

    // A plan with the Korean sustainment paragraph.
    let plan_url = create_plan(&b, &base, "작전명령 24-07 (그래닛 랜턴)").await;
    fill_section(
        &b,
        "ko-opord-sustainment",
        "대대 공격을 지원하기 위한 유류와 탄약 재보급 계획",
    )
    .await;
    fits_the_window(&b, "plan").await;
    b.shot("plan").await;
    b.click("form.add-section button").await;
    b.wait_css("#draft-form", LONG).await;

    // Draft (extractive: quoted, cited sentences; no model needed), labels in Korean.
    b.click("input[name=mode][value=extractive]").await;
    b.click("#draft-button").await;
    b.wait_css("#current[data-version='1']", LONG).await;
    let labels = b
        .js("return Array.from(document.querySelectorAll('ol.sentences .badge')).map(e => e.textContent)")
        .await;
    assert!(
        labels
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|x| x == "근거 충분")),
        "{labels}"
    );
    let current = b
        .js("return document.querySelector('#current').textContent")
        .await;
    assert!(
        current.as_str().is_some_and(|t| t.contains("발췌 초안")),
        "the extractive notice is in the section's language: {current}"
    );
    fits_the_window(&b, "draft").await;
    b.shot("draft").await;

    // The citation panel, labelled in Korean, with the exact cited span.
    b.click("ol.sentences a.cite").await;
    b.wait_css("#source mark.cited-span", LONG).await;
    let meta = b
        .client
        .find(Locator::Css("#source .source-meta"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        meta.contains("간행물") && meta.contains("문단") && meta.contains("페이지"),
        "{meta}"
    );
    fits_the_window(&b, "citation").await;
    b.shot("citation").await;

    // Accept and export: the export's own words in Korean, its markings unchanged.
    b.click("button.accept").await;
    b.wait_css("#section-status.status-accepted", LONG).await;
    b.client
        .goto(&format!("{plan_url}/export.html"))
        .await
        .unwrap();
    let banner = b.wait_css(".banner", LONG).await.text().await.unwrap();
    assert!(
        banner.is_ascii() && !banner.trim().is_empty(),
        "the banner is a marking, not translated: {banner}"
    );
    let portions = b
        .js("return Array.from(document.querySelectorAll('.portion')).map(e => e.textContent)")
        .await;
    assert!(
        portions.as_array().is_some_and(|p| !p.is_empty()
            && p.iter().all(|x| x
                .as_str()
                .is_some_and(|s| s.starts_with('(') && s.is_ascii()))),
        "{portions}"
    );
    let accepted = b
        .js("return document.querySelector('.accepted').textContent")
        .await;
    assert!(
        accepted.as_str().is_some_and(|s| s.contains("승인됨")),
        "{accepted}"
    );
    let lang = b.js("return document.documentElement.lang").await;
    assert_eq!(lang, "ko");
    fits_the_window(&b, "export").await;
    b.shot("export").await;

    b.close().await;
    server.shutdown().await.unwrap();
}

/// The inference server of `make llm` (the default model), for the walk below.
fn default_model_url() -> String {
    std::env::var("DOCTRINA_WALK_LLM").unwrap_or_else(|_| "http://127.0.0.1:8081".to_string())
}

/// The officer's walk against the default model (Qwen2.5-Coder-1.5B-Instruct, as `make run`
/// serves it), not the small test model: a Korean question over English doctrine translated
/// by it, an English and a Korean section drafted by it with sentence-level citations, and
/// the cited sentence highlighted in its passage. Needs the server of `make llm`; `make walk`
/// starts it, runs this, and stops it. Screenshots: `test-artifacts/browser/default-model/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the default model's server (make walk)"]
async fn officer_walk_with_the_default_model_in_chromium() {
    let url = default_model_url();
    let health = reqwest::get(format!("{url}/health")).await;
    assert!(
        health.is_ok_and(|r| r.status().is_success()),
        "no inference server at {url}: run `make walk` (or `make llm` beside this test)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Two CPU cores: a cold prompt takes most of a minute, and the judge asks once per
    // cited sentence.
    let chat = chat(&url, |c| {
        c.first_token_timeout_ms = 300_000;
        c.total_timeout_ms = 600_000;
    });
    let server = serve_app(drafter(Some(chat), dir.path()), dir.path()).await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("default-model").await;
    b.sign_in(&format!("{base}/"), "staff", PASSWORD).await;

    // A Korean question over (mostly English) doctrine: translated by the model, the
    // translation shown with the plan, the English paragraph among the hits.
    search(
        &b,
        "공격할 때 계산된 유류 소모량 외에 얼마나 더 계획해야 하나?",
    )
    .await;
    b.wait_css(".hit", LONG).await;
    let translation = b
        .js("const q = document.querySelector('.query-plan q.translation'); return q ? q.textContent : ''")
        .await;
    let translation = translation.as_str().unwrap_or_default().to_string();
    assert!(
        doctrina_korean::detect(&translation) == doctrina_korean::Language::English,
        "the question is translated: {translation:?}"
    );
    let publications = b
        .js("return Array.from(document.querySelectorAll('.hit .cite strong')).map(e => e.textContent)")
        .await;
    assert!(
        publications
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "ATP 4-0.6")),
        "{publications}"
    );
    b.shot("korean-question-translated").await;

    // An English sustainment paragraph drafted by the model.
    let plan_url = create_plan(&b, &base, "OPORD 24-07 (IRON RIDGE)").await;
    draft_section(
        &mut b,
        "opord-sustainment",
        "Sustain the battalion attack: plan bulk fuel and ammunition resupply",
        "english",
    )
    .await;

    // Its first citation: the passage beside the draft, the cited sentence highlighted,
    // and only that sentence.
    b.click("ol.sentences a.cite").await;
    let mark = b.wait_css("#source mark.cited-span", LONG).await;
    let marked = mark.text().await.unwrap();
    let passage = b
        .js("return document.querySelector('#source blockquote.passage').textContent")
        .await;
    let passage = passage.as_str().unwrap_or_default();
    assert!(
        !marked.trim().is_empty() && marked.len() < passage.len(),
        "one sentence of the passage is highlighted: {marked:?}"
    );
    b.shot("cited-sentence").await;

    // A Korean sustainment paragraph over the same (mostly English) sources.
    b.client.goto(&plan_url).await.unwrap();
    b.wait_css("form.add-section", LONG).await;
    draft_section(
        &mut b,
        "ko-opord-sustainment",
        "대대 공격을 지원하기 위한 유류와 탄약 재보급 계획",
        "korean",
    )
    .await;
    b.click("ol.sentences a.cite").await;
    b.wait_css("#source mark.cited-span", LONG).await;
    b.shot("korean-cited-sentence").await;

    b.close().await;
    server.shutdown().await.unwrap();
}

/// Adds a section from `template` with `task`, drafts it with the model and checks the
/// draft an officer would keep: sentences cited at sentence level, no invalid citation,
/// no chat-template tokens.
async fn draft_section(b: &mut Browser, template: &str, task: &str, label: &str) {
    fill_section(b, template, task).await;
    b.click("form.add-section button").await;
    b.wait_css("#draft-form", LONG).await;
    b.click("#draft-button").await;
    wait_for_draft(b, 1, label).await;
    let current = b
        .js("return document.querySelector('#current').textContent")
        .await;
    let current = current.as_str().unwrap_or_default();
    assert!(
        !current.contains("<|") && !current.contains("im_start"),
        "{current}"
    );
    assert!(
        !current.contains("Invalid citations"),
        "no invalid citation: {current}"
    );
    let cites = b
        .js("return Array.from(document.querySelectorAll('ol.sentences a.cite')).map(e => e.textContent)")
        .await;
    let cites: Vec<String> = cites
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !cites.is_empty() && cites.iter().any(|c| c.contains('.')),
        "sentence-level citations ([n.m]): {cites:?}"
    );
    b.shot(&format!("{label}-llm-draft")).await;
}

/// Types `query` into the search box of the page shown and submits it.
async fn search(b: &Browser, query: &str) {
    let q = b.wait_css("input[name=q]", LONG).await;
    q.send_keys(query).await.unwrap();
    b.click("form.search button").await;
}

/// Creates a plan titled `title` from the plans page; returns the new plan's URL.
async fn create_plan(b: &Browser, base: &str, title: &str) -> String {
    b.client.goto(&format!("{base}/plans")).await.unwrap();
    let input = b.wait_css("form.create-plan input[name=title]", LONG).await;
    input.send_keys(title).await.unwrap();
    b.click("form.create-plan button").await;
    b.wait_css("form.add-section", LONG).await;
    b.client.current_url().await.unwrap().to_string()
}

/// Fills the plan page's add-section form with `template` and `task`, unsubmitted (a walk
/// takes its screenshot first).
async fn fill_section(b: &Browser, template: &str, task: &str) {
    let select = b
        .client
        .find(Locator::Css("form.add-section select[name=template]"))
        .await
        .unwrap();
    select.select_by_value(template).await.unwrap();
    b.send_keys("form.add-section textarea[name=task]", task)
        .await;
}

/// Waits for version `version` of the section's draft; a failed draft fails the walk with
/// its error shown and a screenshot (`<label>-error`).
async fn wait_for_draft(b: &mut Browser, version: u32, label: &str) {
    let shown = b
        .wait_css(
            &format!("#current[data-version='{version}'], #stream .error"),
            LONG,
        )
        .await;
    if shown.attr("class").await.unwrap().as_deref() == Some("error") {
        b.shot(&format!("{label}-error")).await;
        panic!("the draft failed: {}", shown.text().await.unwrap());
    }
}
