//! The officer's workspace through the JSON API and the pages: every route's success and
//! error cases, the SSE draft stream, review and versions, citation tracking, export, the
//! OpenAPI description, and XSS payloads in documents and model output rendered inert.

use std::collections::BTreeSet;
use std::sync::Arc;

use doctrina_tests::servers::{FakeServer, Fault};
use doctrina_tests::{TestIndex, chat_at, drafter, drafter_over, serve_app, signed_in};
use serde_json::{Value, json};

struct App {
    base: String,
    http: reqwest::Client,
    server: Option<doctrina_web::Server>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start(chat: Option<Arc<dyn doctrina_draft::inference::ChatModel>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = serve_app(drafter(chat, dir.path()), dir.path()).await;
        Self::with(server, dir).await
    }

    /// Signed in as `staff`, who holds every role.
    async fn with(server: doctrina_web::Server, dir: tempfile::TempDir) -> Self {
        let base = format!("http://{}", server.addr);
        Self {
            http: signed_in(&base, "staff").await,
            base,
            server: Some(server),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Parses a server-sent event stream into (event, data) pairs.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).expect("json data")))
        })
        .collect()
}

async fn new_plan(app: &App) -> String {
    let (status, plan) = app
        .post(
            "/api/plans",
            json!({"title": "OPORD 24-07 (IRON RIDGE)", "kind": "operation-order"}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    plan["id"].as_str().unwrap().to_string()
}

async fn new_section(app: &App, plan: &str) -> String {
    let (status, section) = app
        .post(
            &format!("/api/plans/{plan}/sections"),
            json!({"template": "opord-sustainment",
                   "task": "Sustain the battalion attack: plan bulk fuel and ammunition resupply"}),
        )
        .await;
    assert_eq!(status, 201, "{section}");
    section["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_sections_review_and_export_through_the_api() {
    let app = App::start(None).await;

    // Templates and plans.
    let (status, templates) = app.get_json("/api/templates").await;
    assert_eq!(status, 200);
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "opord-execution")
    );
    let (status, body) = app
        .post("/api/plans", json!({"title": "X", "kind": "coup"}))
        .await;
    assert_error(status, &body, 400, "invalid_input");
    let (status, body) = app
        .post(
            "/api/plans",
            json!({"title": "  ", "kind": "warning-order"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid_input");
    let r = app
        .http
        .post(format!("{}/api/plans", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_error(status, &body, 400, "bad_request");
    let plan = new_plan(&app).await;
    let (status, plans) = app.get_json("/api/plans").await;
    assert_eq!(status, 200);
    assert_eq!(plans[0]["id"], plan.as_str());
    assert_eq!(plans[0]["created_by"], "staff");
    let (status, body) = app.get_json("/api/plans/p-nope").await;
    assert_error(status, &body, 404, "not_found");

    // Sections.
    let (status, body) = app
        .post(
            &format!("/api/plans/{plan}/sections"),
            json!({"template": "nope", "task": "t"}),
        )
        .await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) = app
        .post(
            "/api/plans/p-nope/sections",
            json!({"template": "opord-execution", "task": "t"}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let section = new_section(&app, &plan).await;
    let (status, detail) = app.get_json(&format!("/api/plans/{plan}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["sections"][0]["id"], section.as_str());
    assert_eq!(detail["sections"][0]["title"], "Paragraph 4 — Sustainment");
    let (status, body) = app.get_json("/api/sections/s-nope").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/accept"),
            json!({"version": 1}),
        )
        .await;
    assert_error(status, &body, 400, "invalid_input");

    // Drafting: no inference server configured.
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "llm"}),
        )
        .await;
    assert_error(status, &body, 503, "no_inference_server");
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "extractive", "sources": 99}),
        )
        .await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) = app
        .post("/api/sections/s-nope/draft", json!({"mode": "extractive"}))
        .await;
    assert_error(status, &body, 404, "not_found");

    // An extractive draft, as one JSON answer.
    let (status, outcome) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "extractive", "guidance": "Emphasise night resupply"}),
        )
        .await;
    assert_eq!(status, 201, "{outcome}");
    let v1 = &outcome["version"];
    assert_eq!(v1["n"], 1);
    assert_eq!(v1["author"], "staff");
    let sentences = v1["sentences"].as_array().unwrap();
    assert!(!sentences.is_empty());
    for s in sentences {
        let cites = s["citations"].as_array().unwrap();
        assert_eq!(
            cites.len(),
            1,
            "each extractive bullet cites one source: {s}"
        );
        assert_eq!(s["cited_spans"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(
            s["support"], "supported",
            "a verbatim quote supports itself: {s}"
        );
    }
    // The page carries the highest marking of the cited sources as banner, and each
    // sentence its portion mark.
    let (_, page) = app.get(&format!("/sections/{section}")).await;
    let banner = page
        .split("id=\"version-banner\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        ["UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET"]
            .iter()
            .any(|l| banner.starts_with(l)),
        "banner {banner:?}"
    );
    assert!(page.contains("class=\"portion\""));

    // The same, streamed as server-sent events.
    let r = app
        .http
        .post(format!("{}/api/sections/{section}/draft", app.base))
        .json(&json!({"mode": "extractive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"), "{names:?}");
    assert!(names.contains(&"delta"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let done = &events.last().unwrap().1;
    assert_eq!(done["version"], 2);
    assert!(done["support"]["supported"].as_u64().unwrap() > 0, "{done}");
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    assert_eq!(detail["current"]["n"], 2);
    assert_eq!(detail["current"]["text"].as_str().unwrap(), streamed);
    assert_eq!(detail["section"]["guidance"], "Emphasise night resupply");
    let sources = detail["sources"].as_array().unwrap();
    assert!(!sources.is_empty());

    // The cited source: the exact text the model was given, with the span highlighted.
    let first = &detail["current"]["sentences"][0];
    let n = first["citations"][0].as_u64().unwrap();
    let (status, cited) = app
        .get_json(&format!("/api/sections/{section}/sources/{n}?v=2&s=0"))
        .await;
    assert_eq!(status, 200, "{cited}");
    assert_eq!(cited["status"], "current");
    let text = cited["source"]["text"].as_str().unwrap();
    let span = &cited["spans"][0];
    let (a, b) = (
        span[0].as_u64().unwrap() as usize,
        span[1].as_u64().unwrap() as usize,
    );
    let highlighted: String = text.chars().skip(a).take(b - a).collect();
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .contains(highlighted.trim().trim_end_matches('.')),
        "the highlighted span is what the sentence quotes: {highlighted:?} / {first}"
    );
    let (status, body) = app
        .get_json(&format!("/api/sections/{section}/sources/99"))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .get_json(&format!("/api/sections/{section}/sources/{n}?s=999"))
        .await;
    assert_error(status, &body, 404, "not_found");

    // Editing: based on an old version is refused; removing a cited sentence is tracked.
    let current = detail["current"]["text"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/edit"),
            json!({"text": current, "base_version": 1}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/edit"),
            json!({"text": " ", "base_version": 2}),
        )
        .await;
    assert_error(status, &body, 400, "bad_request");
    let kept: Vec<&str> = current.lines().filter(|l| !l.starts_with("- ")).collect();
    let mut bullets: Vec<&str> = current.lines().filter(|l| l.starts_with("- ")).collect();
    let removed = bullets.remove(0).to_string();
    let edited = format!(
        "{}\n{}\n- Fuel trucks also carry water for the attack [{n}][42].\n",
        kept.join("\n"),
        bullets.join("\n")
    );
    let (status, v3) = app
        .post(
            &format!("/api/sections/{section}/edit"),
            json!({"text": edited, "base_version": 2}),
        )
        .await;
    assert_eq!(status, 201, "{v3}");
    assert_eq!(v3["kind"], "edit");
    assert_eq!(v3["invalid_citations"], json!([42]), "{v3}");
    let kinds: BTreeSet<&str> = v3["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("removed") && kinds.contains("added"), "{v3}");
    assert!(
        v3["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "removed"
                && removed.contains(
                    c["before"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("- ")
                        .split(" [")
                        .next()
                        .unwrap()
                )),
        "the removed bullet is recorded: {v3}"
    );

    // Review: only the newest version; accepting keeps its citations.
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/accept"),
            json!({"version": 2}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, review) = app
        .post(
            &format!("/api/sections/{section}/reject"),
            json!({"version": 3, "note": "fix [42]"}),
        )
        .await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["action"], "reject");
    let fixed = edited.replace("[42]", "");
    let (status, _) = app
        .post(
            &format!("/api/sections/{section}/edit"),
            json!({"text": fixed, "base_version": 3}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, review) = app
        .post(
            &format!("/api/sections/{section}/accept"),
            json!({"version": 4, "note": "approved"}),
        )
        .await;
    assert_eq!(status, 200, "{review}");
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/comments"),
            json!({"text": ""}),
        )
        .await;
    assert_error(status, &body, 400, "invalid_input");
    let (status, comment) = app
        .post(
            &format!("/api/sections/{section}/comments"),
            json!({"text": "Check the fuel figures."}),
        )
        .await;
    assert_eq!(status, 201, "{comment}");
    assert_eq!(comment["version"], 4);
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    assert_eq!(detail["section"]["status"], "accepted");
    assert_eq!(
        detail["versions"].as_array().unwrap().len(),
        4,
        "every version is kept"
    );
    assert_eq!(detail["reviews"].as_array().unwrap().len(), 2);

    // A second section that nobody accepts.
    let other = new_section(&app, &plan).await;
    let _ = other;

    // Export: accepted text only, references renumbered, highest marking as banner.
    let (status, export) = app.get_json(&format!("/api/plans/{plan}/export")).await;
    assert_eq!(status, 200, "{export}");
    let refs = export["references"].as_array().unwrap();
    assert!(!refs.is_empty());
    assert!(
        refs.iter()
            .all(|r| r["label"].as_str().is_some_and(|l| !l.is_empty()))
    );
    let cited_markings: Vec<&str> = refs
        .iter()
        .map(|r| r["marking"].as_str().unwrap())
        .collect();
    let banner = export["banner"].as_str().unwrap();
    assert!(
        cited_markings
            .iter()
            .all(|m| banner.starts_with(m.split("//").next().unwrap())
                || m.starts_with("UNCLASSIFIED")
                || m.starts_with("CUI")
                || m.starts_with("CONFIDENTIAL")),
        "{banner} vs {cited_markings:?}"
    );
    assert!(
        export["sections"][1]["text"].is_null(),
        "unaccepted section exported as a placeholder"
    );
    let (status, md) = app
        .get(&format!("/api/plans/{plan}/export?format=markdown"))
        .await;
    assert_eq!(status, 200);
    assert!(md.starts_with(&format!("**{banner}**")), "{md}");
    assert!(
        md.contains("## References") && md.contains("NOT ACCEPTED"),
        "{md}"
    );
    let (status, html) = app.get(&format!("/plans/{plan}/export.html")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(
            "<div class=\"banner\">{}</div>",
            banner.replace('&', "&amp;")
        )),
        "{html}"
    );
    assert!(html.contains("id=\"ref-1\"") && !html.contains("<link") && !html.contains("<script"));
    let (status, body) = app
        .get_json(&format!("/api/plans/{plan}/export?format=pdf"))
        .await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) = app.get_json("/api/plans/p-nope/export").await;
    assert_error(status, &body, 404, "not_found");

    // Documents.
    let doc_id = cited["source"]["doc_id"].as_str().unwrap();
    let (status, doc) = app.get_json(&format!("/api/documents/{doc_id}")).await;
    assert_eq!(status, 200);
    assert!(!doc["passages"].as_array().unwrap().is_empty());
    let (status, body) = app.get_json("/api/documents/nope").await;
    assert_error(status, &body, 404, "not_found");

    // Pages.
    let (status, page) = app
        .get(&format!("/sections/{section}?v=2&cite={n}&s=0"))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"cited-span\""),
        "the panel highlights the span"
    );
    assert!(page.contains("class=\"badge label-supported\""));
    let anchor = cited["anchor"].as_str().unwrap();
    let (status, page) = app.get(&format!("/documents/{doc_id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("id=\"{anchor}\"")),
        "paragraph anchor {anchor}"
    );
    let (status, fragment) = app
        .get(&format!(
            "/sections/{section}/sources/{n}?v=2&s=0&fragment=true"
        ))
        .await;
    assert_eq!(status, 200);
    assert!(fragment.starts_with("<div class=\"source\""), "{fragment}");
    let (status, page) = app.get("/sections/s-nope").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("<!doctype html>") && page.contains("not found"),
        "{page}"
    );
    for path in [
        "/plans",
        &format!("/plans/{plan}"),
        &format!("/sections/{section}"),
    ] {
        let (status, _) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
    }

    // Forms (no JavaScript): create, then redirect; errors come back to the page.
    let r = app
        .form("/plans", &[("title", "WARNO 3"), ("kind", "warning-order")])
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/plans/p")
    );
    let r = app
        .form("/plans", &[("title", ""), ("kind", "warning-order")])
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));

    let (status, _) = app.get("/api/search?q=bulk%20fuel&k=3").await;
    assert_eq!(status, 200);

    // Every action is in the audit trail, attributed, with its outcome; the chain is intact.
    let audit = doctrina_audit::AuditLog::open(&app._dir.path().join("audit.sqlite")).unwrap();
    let entries = audit.entries(0, 1000).unwrap();
    let actions: BTreeSet<&str> = entries.iter().map(|e| e.event.action.as_str()).collect();
    for action in [
        "search",
        "create-plan",
        "add-section",
        "draft",
        "edit",
        "accept",
        "reject",
        "comment",
        "export",
    ] {
        assert!(
            actions.contains(action),
            "{action} not audited: {actions:?}"
        );
    }
    let draft = entries
        .iter()
        .find(|e| e.event.action == "draft" && e.event.outcome == "ok")
        .unwrap();
    assert_eq!(draft.event.actor, "staff");
    assert!(
        !draft.event.detail["passages"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the passages given to the model are recorded: {:?}",
        draft.event.detail
    );
    assert!(
        entries
            .iter()
            .any(|e| e.event.action == "edit" && e.event.outcome == "error: conflict"),
        "refused actions are recorded with their outcome"
    );
    let search = entries.iter().find(|e| e.event.action == "search").unwrap();
    assert_eq!(search.event.target, "bulk fuel");
    assert_eq!(search.event.detail["passages"].as_array().unwrap().len(), 3);
    assert!(audit.verify().unwrap().intact);

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_api_route() {
    let app = App::start(None).await;
    let (status, spec) = app.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes = doctrina_web::routes();
    let served: BTreeSet<(String, String)> = routes
        .iter()
        .filter(|r| r.path.starts_with("/api/") || r.path == "/healthz")
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, served, "openapi.json and the router disagree");
    for rule in routes {
        let (method, path) = (rule.method, rule.path);
        if path.ends_with("/logout") {
            continue; // would end the session the rest of the walk uses
        }
        let concrete = path.replace("{id}", "x-none").replace("{n}", "1");
        let r = app
            .http
            .request(method.parse().unwrap(), format!("{}{concrete}", app.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(r.status().as_u16(), 405, "{method} {path} is routed");
        assert!(r.status().as_u16() < 500, "{method} {path}: {}", r.status());
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_failures_are_reported_and_lose_nothing() {
    // The server fails before anything streams: a clear error, no new version.
    let fake = FakeServer::start(Fault::ServerError).await;
    let app = App::start(Some(chat_at(&fake.url))).await;
    let plan = new_plan(&app).await;
    let section = new_section(&app, &plan).await;
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "llm"}),
        )
        .await;
    assert_error(status, &body, 502, "inference_failed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("500"),
        "{body}"
    );
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    assert_eq!(detail["section"]["current_version"], 0);
    app.stop().await;

    // The stream breaks off: the partial text is stored as an incomplete version.
    let fake = FakeServer::start(Fault::CutStream).await;
    let app = App::start(Some(chat_at(&fake.url))).await;
    let plan = new_plan(&app).await;
    let section = new_section(&app, &plan).await;
    let r = app
        .http
        .post(format!("{}/api/sections/{section}/draft", app.base))
        .json(&json!({"mode": "llm"}))
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert_eq!(done["incomplete"], true);
    assert!(done["error"].as_str().is_some(), "{done}");
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    assert_eq!(detail["current"]["incomplete"], true);
    assert!(!detail["current"]["text"].as_str().unwrap().is_empty());
    let (_, page) = app.get(&format!("/sections/{section}")).await;
    assert!(
        page.contains("output broke off"),
        "the page says what went wrong"
    );
    app.stop().await;

    // A slow server: a second draft of the same section is refused while the first runs.
    let fake = FakeServer::start(Fault::SlowFirstToken(std::time::Duration::from_secs(2))).await;
    let app = App::start(Some(chat_at(&fake.url))).await;
    let plan = new_plan(&app).await;
    let section = new_section(&app, &plan).await;
    let first = {
        let http = app.http.clone();
        let url = format!("{}/api/sections/{section}/draft?stream=false", app.base);
        tokio::spawn(async move { http.post(url).json(&json!({"mode": "llm"})).send().await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/draft"),
            json!({"mode": "extractive"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let _ = first.await;
    let (status, _) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "extractive"}),
        )
        .await;
    assert_eq!(status, 201, "the slot is released after the first draft");
    app.stop().await;
}

const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xss_in_model_output_and_documents_renders_inert() {
    // Model output carrying markup, an event handler, a javascript: link.
    let reply = format!(
        "Fuel is pushed forward nightly {XSS} [1]. See [here](javascript:window.__xss=3) [1].\n\n<iframe src=\"http://example.com\"></iframe>"
    );
    let fake = FakeServer::start(Fault::Reply(reply)).await;
    let app = App::start(Some(chat_at(&fake.url))).await;
    let plan = new_plan(&app).await;
    let section = new_section(&app, &plan).await;
    let (status, outcome) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "llm"}),
        )
        .await;
    assert_eq!(status, 201, "{outcome}");
    let (_, page) = app.get(&format!("/sections/{section}")).await;
    // Escaped text may still read "onerror=" or "javascript:"; no tag or attribute may.
    for bad in [
        "<script>window",
        "<img",
        "onerror=\"",
        "href=\"javascript:",
        "<iframe",
    ] {
        assert!(!page.contains(bad), "{bad} reached the page");
    }
    assert!(
        page.contains("&lt;script&gt;window.__xss=1")
            || page.contains("&#60;script&#62;window.__xss=1"),
        "shown escaped in the sentence list: {}",
        &page[page.find("ol class=\"sentences\"").unwrap_or(0)..][..600]
    );
    let (_, md) = app.get(&format!("/plans/{plan}/export.md")).await;
    assert!(
        md.contains("NOT ACCEPTED"),
        "unaccepted model output is not exported as final"
    );
    app.stop().await;

    // A document carrying the same payloads.
    let index = TestIndex::new();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("xss.md"),
        format!(
            "---\ntitle: 'Hostile {XSS}'\npublication: 'FM 0-1<b>x</b>'\nmarking: CUI\n---\n# Chapter 1 <script>window.__xss=4</script>\n\n1-1. Convoy refuel procedure {XSS} at the release point.\n"
        ),
    )
    .unwrap();
    let report = index.index(&[docs.path().to_path_buf()]);
    assert!(report.failed.is_empty(), "{report:?}");
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(
        drafter_over(index.retriever(), None, dir.path()),
        dir.path(),
    )
    .await;
    let app = App::with(server, dir).await;
    let (_, page) = app.get("/?q=convoy+refuel").await;
    assert!(page.contains("class=\"hit\""), "{page}");
    let (_, doc) = app.get("/documents/xss").await;
    for html in [&page, &doc] {
        for bad in ["<script>window", "<img", "onerror=\"", "<b>x</b>"] {
            assert!(!html.contains(bad), "{bad} reached the page");
        }
    }
    let plan = new_plan(&app).await;
    let (_, s) = app
        .post(
            &format!("/api/plans/{plan}/sections"),
            json!({"template": "opord-sustainment", "task": "convoy refuel at the release point"}),
        )
        .await;
    let section = s["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "extractive"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, page) = app.get(&format!("/sections/{section}?cite=1")).await;
    assert!(page.contains("class=\"cited-span\""), "{page}");
    for bad in ["<script>window", "<img", "onerror=\"", "<b>x</b>"] {
        assert!(!page.contains(bad), "{bad} reached the section page");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_list_shows_status_superseded_and_failures() {
    let app = App::start(None).await;
    let (status, list) = app.get_json("/api/documents").await;
    assert_eq!(status, 200, "{list}");
    let docs = list["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 19);
    let old = docs.iter().find(|d| d["id"] == "sop-2-101-2022").unwrap();
    assert_eq!(old["status"], "superseded");
    assert_eq!(old["superseded_by"], "sop-2-101-2024");
    let (_, sop) = app.get_json("/api/documents?q=SOP%202-101").await;
    assert_eq!(sop["documents"].as_array().unwrap().len(), 2);
    let (_, only) = app.get_json("/api/documents?status=superseded").await;
    assert_eq!(only["documents"].as_array().unwrap().len(), 1);
    let (_, sorted) = app.get_json("/api/documents?sort=chunks&desc=true").await;
    let chunks: Vec<u64> = sorted["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["chunks"].as_u64().unwrap())
        .collect();
    assert!(chunks.windows(2).all(|w| w[0] >= w[1]), "{chunks:?}");
    let (status, body) = app.get_json("/api/documents?sort=bogus").await;
    assert_error(status, &body, 400, "bad_request");
    let (status, page) = app.get("/documents?sort=marking").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("status-superseded") && page.contains("not searched"),
        "{page}"
    );
    app.stop().await;

    // A file that fails shows with its error; the rest is listed as indexed.
    let index = TestIndex::new();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("good.md"),
        "# Good\n\n1-1. Fuel moves at night.\n",
    )
    .unwrap();
    std::fs::write(docs.path().join("broken.pdf"), b"%PDF-1.4 nonsense").unwrap();
    let report = index.index(&[docs.path().to_path_buf()]);
    assert_eq!(report.failed.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_app(
        drafter_over(index.retriever(), None, dir.path()),
        dir.path(),
    )
    .await;
    let app = App::with(server, dir).await;
    let (_, list) = app.get_json("/api/documents").await;
    assert_eq!(list["documents"][0]["status"], "indexed");
    let failed = list["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{list}");
    assert!(failed[0]["path"].as_str().unwrap().ends_with("broken.pdf"));
    let (_, page) = app.get("/documents").await;
    assert!(page.contains("Files that could not be indexed") && page.contains("broken.pdf"));
    // A file edited after it was indexed is stale (with the reason) until re-indexed; a
    // missing one too.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        docs.path().join("good.md"),
        "# Good\n\n1-1. Fuel moves at night, by the northern route.\n",
    )
    .unwrap();
    let (_, list) = app.get_json("/api/documents?status=stale").await;
    let stale = list["documents"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{list}");
    assert!(
        stale[0]["stale_reason"]
            .as_str()
            .unwrap()
            .starts_with("its file changed at"),
        "{list}"
    );
    std::fs::remove_file(docs.path().join("good.md")).unwrap();
    let (_, list) = app.get_json("/api/documents").await;
    assert_eq!(list["documents"][0]["stale_reason"], "its file is missing");
    app.stop().await;
}

/// Issue 12: a section drafted from SECRET//NOFORN sources that cites none was exported
/// UNCLASSIFIED (the export took marks from cited sources only). A section is marked by
/// every source the model was given; lowering it takes an audited override that applies to
/// that version only; raising is always allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_is_marked_by_every_source_it_was_given_not_only_the_cited() {
    // The model answers without a single citation.
    let fake = FakeServer::start(Fault::Reply(
        "Resupply moves by night along the northern route. Fuel is issued at the LRP.".into(),
    ))
    .await;
    let app = App::start(Some(chat_at(&fake.url))).await;
    let (_, plan) = app
        .post(
            "/api/plans",
            json!({"title": "GRANITE LANTERN", "kind": "operation-order"}),
        )
        .await;
    let plan = plan["id"].as_str().unwrap().to_string();
    let (_, section) = app
        .post(
            &format!("/api/plans/{plan}/sections"),
            json!({"template": "opord-sustainment", "task": "Operation GRANITE LANTERN sustainment: TF RAPTOR fuel and ammunition resupply"}),
        )
        .await;
    let section = section["id"].as_str().unwrap().to_string();
    let (status, draft) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "llm", "sources": 8}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    let given: Vec<&str> = detail["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["marking"].as_str().unwrap())
        .collect();
    assert!(
        given.contains(&"SECRET//NOFORN"),
        "the task retrieves the SECRET//NOFORN order: {given:?}"
    );
    let cited: usize = detail["current"]["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["citations"].as_array().unwrap().len())
        .sum();
    assert_eq!(cited, 0, "the draft cites nothing");
    assert_eq!(
        detail["marking"]["effective"]["level"], "SECRET",
        "{}",
        detail["marking"]
    );
    assert_eq!(detail["marking"]["effective"]["caveats"][0], "NOFORN");
    let (status, _) = app
        .post(
            &format!("/api/sections/{section}/accept"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, export) = app
        .get_json(&format!("/api/plans/{plan}/export?format=json"))
        .await;
    assert_eq!(export["banner"], "SECRET//NOFORN", "{export}");
    assert_eq!(export["sections"][0]["marking"], "SECRET//NOFORN");
    let (_, page) = app.get(&format!("/sections/{section}")).await;
    assert!(
        page.contains("SECRET//NOFORN"),
        "the section page shows the marking"
    );

    // Lower: refused without a reason, audited with one, for this version only.
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/marking"),
            json!({"marking": "UNCLASSIFIED"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, marking) = app
        .post(
            &format!("/api/sections/{section}/marking"),
            json!({"marking": "CUI", "override_reason": "classification review 24-17: sanitised text"}),
        )
        .await;
    assert_eq!(status, 200, "{marking}");
    assert_eq!(marking["effective"]["level"], "CUI");
    assert_eq!(marking["derived"]["level"], "SECRET");
    let audit = doctrina_audit::AuditLog::open(&app._dir.path().join("audit.sqlite")).unwrap();
    let entries = audit.entries(0, 1000).unwrap();
    let entry = entries
        .iter()
        .find(|e| e.event.action == "marking-override")
        .expect("the override is audited");
    assert_eq!(entry.event.actor, "staff");
    assert_eq!(entry.event.detail["derived"], "SECRET//NOFORN");
    // A new version is marked from its own sources again.
    let (status, _) = app
        .post(
            &format!("/api/sections/{section}/draft?stream=false"),
            json!({"mode": "llm", "sources": 8}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, detail) = app.get_json(&format!("/api/sections/{section}")).await;
    assert_eq!(detail["marking"]["effective"]["level"], "SECRET");
    // Raise: always allowed, no reason needed.
    let (status, marking) = app
        .post(
            &format!("/api/sections/{section}/marking"),
            json!({"marking": "TOP SECRET//NOFORN"}),
        )
        .await;
    assert_eq!(status, 200, "{marking}");
    assert_eq!(marking["effective"]["level"], "TOP SECRET");
    let (status, body) = app
        .post(
            &format!("/api/sections/{section}/marking"),
            json!({"marking": "ULTRA"}),
        )
        .await;
    assert_error(status, &body, 400, "bad_request");
}
