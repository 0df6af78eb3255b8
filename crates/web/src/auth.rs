//! Who may do what: every route is registered with its [`Access`] rule through
//! [`RouteTable`], so a route cannot exist without one; [`gate`] runs after routing and
//! resolves the session cookie, refuses the anonymous (401, or a redirect to the login page
//! for page requests), refuses roles the rule does not allow (403), and checks the CSRF
//! token on every state-changing request (403). Denials are recorded in the audit log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, on};
use doctrina_auth::{Role, Session};
use doctrina_types::Clearance;

use crate::{AppError, AppState};

pub const SESSION_COOKIE: &str = "doctrina_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "_csrf";
/// Largest form body read to find its CSRF field (section edits are the largest forms).
const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (login, health, static files).
    Public,
    /// Any signed-in account.
    SignedIn,
    /// Signed-in accounts holding one of these roles.
    Roles(&'static [Role]),
}

impl Access {
    pub fn allows(self, roles: &[Role]) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Roles(allowed) => allowed.iter().any(|r| roles.contains(r)),
        }
    }

    /// The roles named, for documentation and the authorisation test.
    pub fn describe(self) -> String {
        match self {
            Access::Public => "public".into(),
            Access::SignedIn => "signed-in".into(),
            Access::Roles(r) => r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
        }
    }
}

pub const OFFICER: Access = Access::Roles(&[Role::Officer]);
pub const READERS: Access = Access::Roles(&[Role::Officer, Role::Evaluator]);
pub const SEARCHERS: Access = Access::Roles(&[Role::Officer, Role::Evaluator, Role::Custodian]);
pub const CUSTODIAN: Access = Access::Roles(&[Role::Custodian]);
pub const EVALUATOR: Access = Access::Roles(&[Role::Evaluator]);
pub const ADMIN: Access = Access::Roles(&[Role::Admin]);

/// One registered route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Builds the router and its rule table together.
pub struct RouteTable {
    router: Router<AppState>,
    rules: Vec<Rule>,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self {
            router: Router::new(),
            rules: Vec::new(),
        }
    }
}

impl RouteTable {
    pub fn route<H, T>(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("unsupported method {other} for {path}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.rules.push(Rule {
            method,
            path,
            access,
        });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.route("GET", path, access, h)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.route("POST", path, access, h)
    }

    pub fn merge(mut self, other: RouteTable) -> Self {
        self.router = self.router.merge(other.router);
        self.rules.extend(other.rules);
        self
    }

    /// Maps the router (e.g. to add a body limit to some routes), keeping the rules.
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Rule>) {
        (self.router, self.rules)
    }
}

/// Rules by (method, matched path).
pub type RuleMap = HashMap<(Method, String), Access>;

pub fn rule_map(rules: &[Rule]) -> RuleMap {
    rules
        .iter()
        .filter_map(|r| Some(((r.method.parse().ok()?, r.path.to_string()), r.access)))
        .collect()
}

/// What the session cookie opened.
#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    Expired,
    Signed(Arc<Session>),
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The client address failed logins are also counted against.
pub fn client_address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The middleware behind every route (see the module docs).
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(access) = state.rules.get(&(method.clone(), path.clone())).copied() else {
        tracing::error!(%method, path, "route without an access rule");
        return AppError::forbidden("this route has no access rule").into_response();
    };
    if access == Access::Public {
        let me = Me::nobody_in(req.headers());
        return crate::page::localize(next.run(req).await, &me);
    }
    let principal = match cookie(req.headers(), SESSION_COOKIE) {
        None => Principal::Anonymous,
        Some(token) => match state.auth.session(&token) {
            Ok(Ok(session)) => Principal::Signed(Arc::new(session)),
            Ok(Err(doctrina_auth::SessionState::Expired)) => Principal::Expired,
            Ok(Err(doctrina_auth::SessionState::Unknown)) => Principal::Anonymous,
            Err(e) => return AppError::from(e).into_response(),
        },
    };
    let uri_path = req.uri().path().to_string();
    let session = match principal {
        Principal::Signed(s) => s,
        other => {
            let expired = matches!(other, Principal::Expired);
            return unauthenticated(&req, expired);
        }
    };
    // Page requests get an HTML error page (with the person's header), API requests the
    // JSON error body.
    let me = Me::from_session(session.as_ref(), req.headers());
    let refuse = |e: AppError| {
        if is_api(&uri_path) {
            e.into_response()
        } else {
            crate::page::error_page(e, me.clone())
        }
    };
    if !access.allows(&session.user.roles) {
        let _ = state.record(
            &session.user.name,
            "denied",
            &format!("{method} {uri_path}"),
            "denied: role",
            serde_json::json!({"needs": access.describe()}),
        );
        return refuse(AppError::forbidden(format!(
            "your account may not do this (needs the role: {})",
            access.describe()
        )));
    }
    if !matches!(method, Method::GET | Method::OPTIONS) {
        req = match check_csrf(req, &session.csrf).await {
            Ok(req) => req,
            Err(reason) => {
                let _ = state.record(
                    &session.user.name,
                    "denied",
                    &format!("{method} {uri_path}"),
                    "denied: csrf",
                    serde_json::json!({"reason": reason}),
                );
                return refuse(AppError::csrf(reason));
            }
        };
    }
    req.extensions_mut().insert(session);
    crate::page::localize(next.run(req).await, &me)
}

fn unauthenticated(req: &Request, expired: bool) -> Response {
    let path = req.uri().path();
    if req.method() == Method::GET && !is_api(path) {
        let next = req
            .uri()
            .path_and_query()
            .map_or(path, |pq| pq.as_str())
            .to_string();
        let mut url = format!("/login?next={}", crate::user::percent_encode(&next));
        if expired {
            url.push_str("&expired=1");
        }
        return Redirect::to(&url).into_response();
    }
    let error = AppError::unauthenticated(expired);
    if is_api(path) {
        error.into_response()
    } else {
        crate::page::localize(
            crate::page::PageError(error).into_response(),
            &Me::nobody_in(req.headers()),
        )
    }
}

/// The token from the header, the `_csrf` query parameter (multipart forms), or the `_csrf`
/// field of a URL-encoded form body (which is read and put back).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, String> {
    let given = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| field(req.uri().query().unwrap_or_default(), CSRF_FIELD));
    if let Some(given) = given {
        return if doctrina_auth::same_token(&given, expected) {
            Ok(req)
        } else {
            Err("the CSRF token does not match this session; reload the page".into())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(format!(
            "missing CSRF token (send the {CSRF_HEADER} header from GET /api/session)"
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| "the form is too large".to_string())?;
    let given = field(&String::from_utf8_lossy(&bytes), CSRF_FIELD);
    match given {
        Some(given) if doctrina_auth::same_token(&given, expected) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        Some(_) => Err("the CSRF token does not match this session; reload the page".into()),
        None => Err("missing CSRF token in the form; reload the page".into()),
    }
}

fn field(encoded: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(encoded.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Security headers on every response: no caching of pages that may hold restricted text,
/// no framing, no sniffing, and a content security policy that allows only this origin's
/// scripts (the app has no inline script).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    if !is_static {
        set(headers, "cache-control", "no-store");
    }
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'",
    );
    response
}

/// The signed-in person, for handlers and page templates.
#[derive(Debug, Clone)]
pub struct Me {
    pub name: String,
    pub csrf: String,
    pub roles: Vec<Role>,
    pub clearance: Clearance,
    /// The interface language ([`crate::i18n`]).
    pub lang: crate::i18n::Lang,
}

impl Me {
    /// `english` in this person's language (templates: `{{ me.t("Search") }}`).
    pub fn t(&self, english: &str) -> String {
        self.lang.t(english)
    }

    /// The language code for `<html lang>`.
    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }

    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An empty identity for pages shown without a session (login, errors).
    pub fn nobody() -> Self {
        Self {
            name: String::new(),
            csrf: String::new(),
            roles: Vec::new(),
            clearance: Clearance {
                level: String::new(),
                caveats: Vec::new(),
            },
            lang: crate::i18n::Lang::En,
        }
    }

    /// Nobody, in the browser's language (login and error pages before a session).
    pub fn nobody_in(headers: &axum::http::HeaderMap) -> Self {
        Self {
            lang: browser_lang(headers).unwrap_or_default(),
            ..Self::nobody()
        }
    }
}

/// The language a browser asks for, if this app speaks it.
pub fn browser_lang(headers: &axum::http::HeaderMap) -> Option<crate::i18n::Lang> {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::i18n::Lang::from_accept_language)
}

impl Me {
    /// The signed-in person, in the language they chose, else their browser's.
    pub fn from_session(s: &Session, headers: &axum::http::HeaderMap) -> Self {
        let lang = s
            .user
            .language
            .as_deref()
            .and_then(crate::i18n::Lang::parse)
            .or_else(|| browser_lang(headers))
            .unwrap_or_default();
        Self {
            name: s.user.name.clone(),
            csrf: s.csrf.clone(),
            roles: s.user.roles.clone(),
            clearance: s.user.clearance.clone(),
            lang,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Me {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Session>>()
            .map(|s| Me::from_session(s.as_ref(), &parts.headers))
            .ok_or(AppError::unauthenticated(false))
    }
}

/// The `Set-Cookie` value for a session token.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_session_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether cookies get `Secure`, from `auth.secure_cookies` and the listening address.
pub fn secure_cookies(setting: &str, addr: std::net::SocketAddr) -> bool {
    match setting {
        "always" => true,
        "never" => false,
        _ => !addr.ip().is_loopback(),
    }
}

/// Throttled logins, aggregated for the audit log: the first refusal of an (account,
/// address) pair in a minute is recorded with how many were refused since its last entry;
/// the rest only count. Memory is bounded: the oldest pairs are forgotten first.
#[derive(Debug, Default)]
pub struct ThrottledLogins {
    seen: std::sync::Mutex<std::collections::HashMap<(String, String), (std::time::Instant, u64)>>,
}

impl ThrottledLogins {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX_PAIRS: usize = 10_000;

    /// `Some(refused since the last entry)` when this refusal should be recorded.
    pub fn admit(&self, account: &str, client: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let key = (account.to_string(), client.to_string());
        if let Some((at, count)) = seen.get_mut(&key) {
            if now.duration_since(*at) < Self::WINDOW {
                *count += 1;
                return None;
            }
            let suppressed = *count;
            *at = now;
            *count = 0;
            return Some(suppressed);
        }
        if seen.len() >= Self::MAX_PAIRS {
            seen.retain(|_, (at, _)| now.duration_since(*at) < Self::WINDOW);
            if seen.len() >= Self::MAX_PAIRS {
                return None; // still a flood: counted nowhere, recorded by the earlier entries
            }
        }
        seen.insert(key, (now, 0));
        Some(0)
    }
}
