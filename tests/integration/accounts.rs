//! Accounts through the real app: the authorisation matrix generated from the router's route
//! table (every route × every role and the anonymous), CSRF on every state-changing route,
//! login throttling, cookie flags, logout, session expiry, account changes ending sessions,
//! the admin pages and audit export, and SQL metacharacters and markup in every input.

use std::time::Duration;

use doctrina_tests::{ACCOUNTS, PASSWORD, app_state_with, drafter, login, serve_state, signed_in};
use doctrina_web::auth::Access;
use serde_json::{Value, json};

struct App {
    base: String,
    server: doctrina_web::Server,
    dir: tempfile::TempDir,
}

impl App {
    async fn start(auth: doctrina_types::config::AuthConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = serve_state(app_state_with(drafter(None, dir.path()), dir.path(), auth)).await;
        Self {
            base: format!("http://{}", server.addr),
            server,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn audit(&self) -> doctrina_audit::AuditLog {
        doctrina_audit::AuditLog::open(&self.dir.path().join("audit.sqlite")).unwrap()
    }
}

fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "x-none")
        .replace("{n}", "1")
        .replace("{name}", "nobody")
}

async fn call(client: &reqwest::Client, app: &App, method: &str, path: &str) -> (u16, String) {
    let r = client
        .request(method.parse().unwrap(), app.url(&concrete(path)))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r.text().await.unwrap();
    (status, if location.is_empty() { body } else { location })
}

/// The error code of a JSON error body, or of an HTML error page (`data-code`).
fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .or_else(|| {
            body.split("data-code=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Every route in the router's table, for the anonymous and for an account holding each
/// single role: public routes answer everyone; the anonymous get 401 (API, writes) or a
/// redirect to the login page (page reads); a role the rule does not name gets 403; a role
/// it names gets neither. A new route is in this table by construction, so it is covered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_its_rule_for_every_role() {
    let app = App::start(Default::default()).await;
    let routes = doctrina_web::routes();
    assert!(routes.len() >= 40, "{} routes", routes.len());
    let anon = anonymous();
    let mut checked = 0;
    for rule in &routes {
        let (status, body) = call(&anon, &app, rule.method, rule.path).await;
        match rule.access {
            Access::Public => assert!(
                ![401, 403].contains(&status),
                "{} {} is public but answered {status}",
                rule.method,
                rule.path
            ),
            _ if rule.method == "GET" && !rule.path.starts_with("/api/") => {
                assert_eq!(status, 303, "{} {}", rule.method, rule.path);
                assert!(body.starts_with("/login?next="), "{body}");
            }
            _ => {
                assert_eq!(status, 401, "{} {}: {body}", rule.method, rule.path);
                assert_eq!(code(&body), "unauthenticated");
            }
        }
        checked += 1;
    }
    for (name, roles, _, _) in ACCOUNTS.iter().filter(|a| a.1.len() == 1) {
        let client = signed_in(&app.base, name).await;
        for rule in routes.iter().filter(|r| !r.path.ends_with("/logout")) {
            let (status, body) = call(&client, &app, rule.method, rule.path).await;
            let what = format!("{name} {} {} -> {status} {body}", rule.method, rule.path);
            if rule.access.allows(roles) {
                assert!(![401, 403].contains(&status), "allowed but refused: {what}");
                assert!(status < 500, "{what}");
            } else {
                assert_eq!(status, 403, "denied but answered: {what}");
                assert_eq!(code(&body), "forbidden", "{what}");
            }
            checked += 1;
        }
    }
    eprintln!(
        "authorisation matrix: {checked} requests over {} routes",
        routes.len()
    );
    // Every route outside the account routes names its roles.
    for rule in &routes {
        if rule.access == Access::SignedIn {
            assert!(
                [
                    "/logout",
                    "/api/logout",
                    "/api/session",
                    // Choosing one's own interface language.
                    "/api/session/language",
                    "/account/language",
                ]
                .contains(&rule.path),
                "{} {} is open to every signed-in account",
                rule.method,
                rule.path
            );
        }
    }
    // Denials are audited.
    let entries = app.audit().entries(0, 100_000).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.event.action == "denied" && e.event.outcome == "denied: role")
    );
    app.server.shutdown().await.unwrap();
}

/// A signed-in request that changes state without the session's CSRF token is refused on
/// every such route, and with the token it gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_route_needs_the_csrf_token() {
    let app = App::start(Default::default()).await;
    let (cookie, csrf) = login(&app.base, "staff", PASSWORD).await.unwrap();
    let client = anonymous();
    let writes: Vec<_> = doctrina_web::routes()
        .into_iter()
        .filter(|r| r.method != "GET" && r.access != Access::Public)
        .collect();
    assert!(writes.len() >= 15);
    for rule in &writes {
        for token in [None, Some("forged"), Some(&csrf[..csrf.len() - 1])] {
            let mut request = client
                .request(rule.method.parse().unwrap(), app.url(&concrete(rule.path)))
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("title=x&kind=warning-order");
            if let Some(token) = token {
                request = request.header("x-csrf-token", token);
            }
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_eq!(status, 403, "{} {} with {token:?}", rule.method, rule.path);
            assert_eq!(code(&body), "csrf_failed", "{body}");
        }
    }
    // A form field carries the token too (the pages' forms do this).
    let r = client
        .post(app.url("/plans"))
        .header("cookie", &cookie)
        .form(&[
            ("title", "WARNO 9"),
            ("kind", "warning-order"),
            ("_csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = client
        .post(app.url("/api/plans"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"title": "OPORD 1", "kind": "operation-order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Nothing was created by the refused requests.
    let plans: Value = signed_in(&app.base, "officer")
        .await
        .get(app.url("/api/plans"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plans.as_array().unwrap().len(), 2, "{plans}");
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_throttled_and_sessions_end() {
    let app = App::start(doctrina_types::config::AuthConfig {
        max_failures: 3,
        session_idle_secs: 2,
        ..Default::default()
    })
    .await;
    let http = anonymous();

    // Cookie flags; the login page's form is tied to this browser.
    let r = http
        .post(app.url("/api/login"))
        .json(&json!({"name": "officer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("doctrina_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let r = http
        .post(app.url("/login"))
        .form(&[("name", "officer"), ("password", PASSWORD), ("_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "login CSRF: no form cookie");
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().starts_with("doctrina_session"))
    );

    // Wrong passwords, then even the right one is refused for a while.
    for _ in 0..3 {
        let r = http
            .post(app.url("/api/login"))
            .json(&json!({"name": "evaluator", "password": "guess guess guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let body = r.text().await.unwrap();
        assert_eq!(code(&body), "invalid_credentials");
        assert!(
            !body.contains("evaluator"),
            "no hint about the account: {body}"
        );
    }
    let r = http
        .post(app.url("/api/login"))
        .json(&json!({"name": "evaluator", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900);
    // An unknown account is refused exactly like a wrong password.
    let r = http
        .post(app.url("/api/login"))
        .json(&json!({"name": "ghost", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Logout ends the session server-side: the old cookie opens nothing.
    let (cookie, csrf) = login(&app.base, "officer", PASSWORD).await.unwrap();
    let r = http
        .post(app.url("/api/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(app.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // An idle session expires, and says so.
    let (cookie, _) = login(&app.base, "officer", PASSWORD).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let r = http
        .get(app.url("/api/plans"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(code(&r.text().await.unwrap()), "session_expired");
    let r = http
        .get(app.url("/plans"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "gone: a plain redirect to the login page"
    );

    // An admin's change to an account ends that account's sessions.
    let (cookie, _) = login(&app.base, "officer", PASSWORD).await.unwrap();
    let admin = signed_in(&app.base, "admin").await;
    let r = admin
        .post(app.url("/api/admin/users/officer"))
        .json(&json!({"level": "CUI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(app.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (_, _) = login(&app.base, "officer", PASSWORD).await.unwrap();
    let me: Value = signed_in(&app.base, "officer")
        .await
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["clearance"]["level"], "CUI");

    // Logins, throttling and the role change are in the audit log.
    let entries = app.audit().entries(0, 10_000).unwrap();
    let outcomes: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.event.action.as_str(), e.event.outcome.as_str()))
        .collect();
    for expected in [
        ("login", "ok"),
        ("login", "denied: invalid credentials"),
        ("login", "denied: throttled"),
        ("logout", "ok"),
        ("update-user", "ok"),
    ] {
        assert!(outcomes.contains(&expected), "{expected:?} in {outcomes:?}");
    }
    assert!(app.audit().verify().unwrap().intact);
    app.server.shutdown().await.unwrap();
}

/// SQL metacharacters and markup in account names, passwords, search queries, plan fields,
/// comments and audit filters: refused or stored as data, and rendered as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_metacharacters_and_markup_in_inputs_are_harmless() {
    let app = App::start(Default::default()).await;
    let admin = signed_in(&app.base, "staff").await;
    let nasty = [
        "' OR '1'='1",
        "'; DROP TABLE users; --",
        "\" OR \"\"=\"",
        "1; DELETE FROM entries",
        "<script>window.__x=1</script>",
        "<img src=x onerror=alert(1)>",
        "%27%20OR%201=1",
        "\\'; --",
    ];
    for input in nasty {
        // As an account name: refused (names are letters, digits and . _ - @).
        let r = admin
            .post(app.url("/api/admin/users"))
            .json(&json!({"name": input, "password": PASSWORD, "roles": "officer", "level": "CUI"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{input}");
        // As login credentials: a plain failure.
        let r = anonymous()
            .post(app.url("/api/login"))
            .json(&json!({"name": input, "password": input}))
            .send()
            .await
            .unwrap();
        assert!([401, 429].contains(&r.status().as_u16()), "{input}");
        // As a search query, a plan title, a section task and a comment: data.
        let r = admin
            .get(app.url("/api/search"))
            .query(&[("q", input), ("k", "3")])
            .send()
            .await
            .unwrap();
        assert!([200, 400].contains(&r.status().as_u16()), "{input}");
        let plan: Value = admin
            .post(app.url("/api/plans"))
            .json(&json!({"title": input, "kind": "operation-order"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(plan["title"], input);
        let page = admin
            .get(app.url(&format!("/plans/{}", plan["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("<script>window.__x") && !page.contains("<img src=x"));
        let r = admin
            .get(app.url("/admin/audit"))
            .query(&[("actor", input), ("action", input)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // The tables are intact and every account still there.
    let users: Value = admin
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), ACCOUNTS.len());
    let audit_page = admin
        .get(app.url("/admin/audit?limit=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = audit_page
        .find("window.__x=1")
        .expect("the query is listed");
    assert!(
        audit_page[at.saturating_sub(20)..at].contains("&#60;script&#62;"),
        "{}",
        &audit_page[at.saturating_sub(40)..at + 20]
    );
    assert!(!audit_page.contains("<script>window.__x"));
    assert!(app.audit().verify().unwrap().intact);

    // Security headers on pages and API answers.
    let r = admin.get(app.url("/plans")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    app.server.shutdown().await.unwrap();
}

/// The admin pages: add an account through the form, change its roles, and export the
/// audit log as CSV and JSON Lines that verify against the live chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_accounts_and_exports_the_audit_log() {
    let app = App::start(Default::default()).await;
    let admin = signed_in(&app.base, "admin").await;
    let r = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("name", "capt.ode"),
            ("password", "a long enough password"),
            ("roles", "officer,evaluator"),
            ("level", "SECRET"),
            ("caveats", "NOFORN\nREL TO USA\nREL TO GBR"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/admin/users");
    let page = admin
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("capt.ode") && page.contains("REL TO GBR"));
    let (_, _) = login(&app.base, "capt.ode", "a long enough password")
        .await
        .unwrap();
    // Too short a password, an unknown level: the page says why.
    let r = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("name", "x"),
            ("password", "short"),
            ("roles", "officer"),
            ("level", "SECRET"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));
    for (level, caveats) in [
        ("COSMIC", ""),
        ("SECRET", "NOFRON"),
        ("SECRET", "REL TO USA, GBR"),
    ] {
        let r = admin
            .post(app.url("/admin/users/capt.ode"))
            .form(&[
                ("roles", "custodian"),
                ("level", level),
                ("caveats", caveats),
            ])
            .send()
            .await
            .unwrap();
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.contains("error="), "{level} {caveats}: {location}");
    }
    // The last admin cannot be demoted or disabled (staff demotes admin, then tries itself).
    let staff = signed_in(&app.base, "staff").await;
    let r = staff
        .post(app.url("/api/admin/users/admin"))
        .json(&json!({"roles": "officer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for change in [json!({"roles": "officer"}), json!({"disabled": true})] {
        let r = staff
            .post(app.url("/api/admin/users/staff"))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{change}");
    }
    let admin = staff;

    let csv = admin
        .get(app.url("/admin/audit/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("seq,at,actor,action,target,outcome,detail,prev_hash,hash"));
    let jsonl = admin
        .get(app.url("/admin/audit/export?format=jsonl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entries: Vec<doctrina_audit::Entry> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.iter().any(|e| e.event.action == "add-user"));
    // The export recomputes: every entry's hash follows from its fields and its link.
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for e in &entries {
        assert_eq!(
            doctrina_audit::entry_hash(e.seq, &e.at, &e.event, &e.prev_hash),
            e.hash
        );
    }
    let verify: Value = admin
        .get(app.url("/api/admin/audit/verify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["intact"], true);
    app.server.shutdown().await.unwrap();
}

/// Issue 12's side channels around accounts: the login's `next` that left the site once a
/// browser stripped a tab; throttled logins flooding the audit log; formulas in the audit
/// CSV; passwords checked for length only; the server's file paths shown to every reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_audit_passwords_and_paths_leak_nothing() {
    let app = App::start(doctrina_types::config::AuthConfig {
        max_failures: 2,
        ..Default::default()
    })
    .await;
    let http = anonymous();

    // `next` stays on this site, whatever the browser would strip or reinterpret.
    let page = http.get(app.url("/login")).send().await.unwrap();
    let form_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    for next in [
        "/\t/evil.example",
        "/\\evil.example",
        "//evil.example",
        "/\n/evil",
        "https://evil.example",
        "/ /evil",
    ] {
        let r = http
            .post(app.url("/login"))
            .header("cookie", &form_cookie)
            .form(&[
                ("name", "officer"),
                ("password", PASSWORD),
                ("_csrf", csrf.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/", "{next:?} is not followed");
    }

    // A flood of throttled logins is a handful of audit entries, with the count refused.
    for _ in 0..40 {
        http.post(app.url("/api/login"))
            .json(&json!({"name": "evaluator", "password": "guess guess guess"}))
            .send()
            .await
            .unwrap();
    }
    let entries = app.audit().entries(0, 10_000).unwrap();
    let throttled: Vec<_> = entries
        .iter()
        .filter(|e| e.event.action == "login" && e.event.outcome == "denied: throttled")
        .collect();
    assert!(
        !throttled.is_empty() && throttled.len() <= 2,
        "{} throttled entries for one account and address",
        throttled.len()
    );

    // The audit CSV neutralises formulas typed into searches.
    let officer = signed_in(&app.base, "officer").await;
    let query = "=HYPERLINK(\"http://evil.example\",\"x\")";
    officer
        .get(app.url(&format!(
            "/api/search?q={}",
            doctrina_web::user::percent_encode(query)
        )))
        .send()
        .await
        .unwrap();
    let admin = signed_in(&app.base, "admin").await;
    let csv = admin
        .get(app.url("/admin/audit/export?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let mut seen = false;
    for row in reader.records() {
        let row = row.unwrap();
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '@']),
                "a cell a spreadsheet would run: {cell}"
            );
            seen |= cell.contains("HYPERLINK");
        }
    }
    assert!(seen, "the search is in the export");

    // Common passwords and the account's own name are refused.
    let body =
        json!({"name": "newbie", "password": "Password123!", "roles": "officer", "level": "CUI"});
    let r = admin
        .post(app.url("/api/admin/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("too easy to guess"));
    let body = json!({"name": "newbie", "password": "newbie-for-all-seasons", "roles": "officer", "level": "CUI"});
    let r = admin
        .post(app.url("/api/admin/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("account name"));

    // Where a document's file lives is for custodians and admins.
    let (officer_view, custodian_view) = {
        let custodian = signed_in(&app.base, "custodian").await;
        let get = |c: &reqwest::Client| c.get(app.url("/api/documents/atp-4-0-6")).send();
        let a: Value = get(&officer).await.unwrap().json().await.unwrap();
        let b: Value = get(&custodian).await.unwrap().json().await.unwrap();
        (a, b)
    };
    assert_eq!(
        officer_view["document"]["meta"]["source_path"], "",
        "{officer_view}"
    );
    assert!(
        custodian_view["document"]["meta"]["source_path"]
            .as_str()
            .unwrap()
            .ends_with("atp-4-0-6.md")
    );
}
