//! Signing in and out: the login page and its API twin, logout, and the session's CSRF
//! token for API clients. Every login attempt is audited with its outcome.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use doctrina_auth::{AuthError, Session};
use serde::Deserialize;
use serde_json::json;

use super::ApiJson;
use crate::auth::{Access, Me, RouteTable, clear_session_cookie, cookie, session_cookie};
use crate::page::see_other;
use crate::{AppError, AppState};

/// The pre-session cookie that ties the login form to this browser (login CSRF).
const LOGIN_COOKIE: &str = "doctrina_login";

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/login", Access::Public, login_page)
        .post("/login", Access::Public, login_form)
        .post("/logout", Access::SignedIn, logout_form)
        .post("/api/login", Access::Public, login_api)
        .post("/api/logout", Access::SignedIn, logout_api)
        .get("/api/session", Access::SignedIn, session_api)
        .post("/api/session/language", Access::SignedIn, language_api)
        .post("/account/language", Access::SignedIn, language_form)
}

/// `{"language": "ko"}`, `"en"`, or `null` to follow the browser.
#[derive(Debug, serde::Deserialize)]
pub struct LanguageInput {
    #[serde(default)]
    language: Option<String>,
    /// Where the form goes back to (a local path).
    #[serde(default)]
    next: String,
}

fn set_language(state: &AppState, me: &Me, input: &LanguageInput) -> Result<(), AppError> {
    let language = input
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "browser");
    let result = state
        .auth
        .set_language(&me.name, language)
        .map_err(AppError::from);
    state.record_result(
        &me.name,
        "set-language",
        &me.name,
        json!({"language": language}),
        result,
    )
}

/// `POST /api/session/language`: the interface language of this account.
async fn language_api(
    State(state): State<AppState>,
    me: Me,
    crate::routes::ApiJson(input): crate::routes::ApiJson<LanguageInput>,
) -> Result<Json<serde_json::Value>, AppError> {
    set_language(&state, &me, &input)?;
    Ok(Json(json!({"language": input.language})))
}

async fn language_form(
    State(state): State<AppState>,
    me: Me,
    Form(input): Form<LanguageInput>,
) -> Response {
    let back = local_path(&input.next).to_string();
    match set_language(&state, &me, &input) {
        Ok(()) => see_other(&back, None),
        Err(e) => see_other(&back, Some(&e)),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    me: Me,
    next: String,
    name: String,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    no_accounts: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    out: Option<String>,
}

/// Only local paths: never redirect to another site. Browsers drop tabs and newlines from
/// a URL and read `\\` as `/`, so `/\t/evil` and `/\\evil` would leave the site: any control
/// character, whitespace or backslash, or a second leading slash, means "home".
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if local { next } else { "/" }
}

fn render_login(state: &AppState, page: LoginPage, status: StatusCode) -> Response {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{LOGIN_COOKIE}={}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        page.csrf
    );
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            if let Ok(v) = cookie.parse() {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let me = Me::nobody_in(&headers);
    let csrf = match doctrina_auth::random_token() {
        Ok(t) => t,
        Err(e) => return AppError::from(e).into_response(),
    };
    let notice = if q.expired.is_some() {
        Some(me.t("Your session expired. Sign in again."))
    } else if q.out.is_some() {
        Some(me.t("You are signed out."))
    } else {
        None
    };
    let no_accounts = state.auth.users().map(|u| u.is_empty()).unwrap_or(false);
    render_login(
        &state,
        LoginPage {
            me,
            next: local_path(&q.next).to_string(),
            name: String::new(),
            csrf,
            error: None,
            notice,
            no_accounts,
        },
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Checks the password, audits the attempt, and returns the cookie token and session.
fn sign_in(
    state: &AppState,
    name: &str,
    password: &str,
    client: &str,
) -> Result<(String, Session), AppError> {
    let name: String = name.trim().chars().take(64).collect();
    let result = state.auth.login(&name, password, client);
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(AuthError::Throttled { .. }) => "denied: throttled".to_string(),
        Err(AuthError::InvalidCredentials) => "denied: invalid credentials".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let actor = if name.is_empty() { "-" } else { &name };
    // Refusals while throttled are one entry per account and address per minute, with how
    // many were refused since the last: a flood cannot flood the log.
    if matches!(result, Err(AuthError::Throttled { .. })) {
        if let Some(suppressed) = state.throttled_logins.admit(actor, client) {
            state.record(
                actor,
                "login",
                client,
                &outcome,
                json!({"refused_since_last_entry": suppressed}),
            )?;
        }
    } else {
        state.record(actor, "login", client, &outcome, json!({}))?;
    }
    Ok(result?)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(input): Form<Credentials>,
) -> Response {
    let next = local_path(&input.next).to_string();
    let fresh = doctrina_auth::random_token().unwrap_or_default();
    let me = Me::nobody_in(&headers);
    // In Korean the error's title by its code; the English message otherwise.
    let say = |code: &str, english: String| match me.lang {
        crate::i18n::Lang::En => english,
        lang => lang.error_title(code),
    };
    let retry = |error: String, status: StatusCode| {
        render_login(
            &state,
            LoginPage {
                me: me.clone(),
                next: next.clone(),
                name: input.name.chars().take(64).collect(),
                csrf: fresh.clone(),
                error: Some(error),
                notice: None,
                no_accounts: false,
            },
            status,
        )
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !doctrina_auth::same_token(&expected, &input.csrf) {
        return retry(
            say(
                "csrf_failed",
                "The login form expired or came from elsewhere; try again.".into(),
            ),
            StatusCode::FORBIDDEN,
        );
    }
    let client = crate::auth::client_address(&extensions);
    match sign_in(&state, &input.name, &input.password, &client) {
        Ok((token, _)) => with_cookie(
            see_other(&next, None),
            &session_cookie(&token, state.secure_cookies),
        ),
        Err(e) => {
            let mut response = retry(say(e.code(), e.public_message()), e.status());
            if let Some(secs) = e.retry_after()
                && let Ok(v) = secs.to_string().parse()
            {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiCredentials {
    name: String,
    password: String,
}

fn session_body(session: &Me, expires_at: Option<i64>) -> serde_json::Value {
    json!({
        "user": session.name,
        "roles": session.roles,
        "clearance": session.clearance,
        "csrf_token": session.csrf,
        "expires_at": expires_at,
    })
}

/// `POST /api/login {"name","password"}`: sets the session cookie and returns the CSRF
/// token to send as `X-CSRF-Token` with every state-changing call.
async fn login_api(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    ApiJson(input): ApiJson<ApiCredentials>,
) -> Result<Response, AppError> {
    let client = crate::auth::client_address(&extensions);
    let (token, session) = sign_in(&state, &input.name, &input.password, &client)?;
    let body = session_body(
        &Me::from_session(&session, &axum::http::HeaderMap::new()),
        Some(session.expires_at),
    );
    Ok(with_cookie(
        Json(body).into_response(),
        &session_cookie(&token, state.secure_cookies),
    ))
}

async fn session_api(me: Me) -> Json<serde_json::Value> {
    Json(session_body(&me, None))
}

fn end_session(state: &AppState, headers: &HeaderMap, me: &Me) -> Result<(), AppError> {
    if let Some(token) = cookie(headers, crate::auth::SESSION_COOKIE) {
        state.auth.logout(&token)?;
    }
    state.record(&me.name, "logout", "-", "ok", json!({}))
}

async fn logout_form(State(state): State<AppState>, headers: HeaderMap, me: Me) -> Response {
    match end_session(&state, &headers, &me) {
        Ok(()) => with_cookie(
            see_other("/login?out=1", None),
            &clear_session_cookie(state.secure_cookies),
        ),
        Err(e) => crate::page::PageError(e).into_response(),
    }
}

async fn logout_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    me: Me,
) -> Result<Response, AppError> {
    end_session(&state, &headers, &me)?;
    Ok(with_cookie(
        Json(json!({"signed_out": true})).into_response(),
        &clear_session_cookie(state.secure_cookies),
    ))
}
