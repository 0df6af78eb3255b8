//! Administration: accounts (roles, clearance, disable, password reset) and the audit log
//! (browse, verify, export). Admin only; every account change is audited.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use doctrina_audit::{Entry, Verification};
use doctrina_auth::{Change, NewUser, Role, User};
use doctrina_types::Clearance;
use serde::Deserialize;
use serde_json::json;

use super::{ApiJson, ApiQuery};
use crate::auth::{ADMIN, Me, RouteTable};
use crate::page::{self, PageResult, see_other};
use crate::{AppError, AppState};

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/admin/users", ADMIN, users_page)
        .post("/admin/users", ADMIN, add_user_form)
        .post("/admin/users/{name}", ADMIN, update_user_form)
        .get("/admin/audit", ADMIN, audit_page)
        .get("/admin/audit/export", ADMIN, audit_export)
        .get("/api/admin/users", ADMIN, users_api)
        .post("/api/admin/users", ADMIN, add_user_api)
        .post("/api/admin/users/{name}", ADMIN, update_user_api)
        .get("/api/admin/audit", ADMIN, audit_api)
        .get("/api/admin/audit/verify", ADMIN, verify_api)
}

#[derive(Debug, Deserialize)]
pub struct UserInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// Comma-separated roles (`officer,evaluator`).
    #[serde(default)]
    roles: String,
    #[serde(default)]
    level: String,
    /// Comma- or newline-separated caveats; `REL TO` lists keep their commas when written
    /// one per line.
    #[serde(default)]
    caveats: String,
}

/// An update: each field present is changed.
#[derive(Debug, Deserialize, Default)]
pub struct UserUpdate {
    roles: Option<String>,
    level: Option<String>,
    caveats: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// Caveats one per line, or comma-separated when there is a single line (a `REL TO` list
/// must then be on its own line).
pub fn parse_caveats(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let items: Vec<String> = if lines.len() == 1 && !lines[0].to_uppercase().starts_with("REL TO") {
        lines[0].split(',').map(|c| c.trim().to_string()).collect()
    } else {
        lines.iter().map(|l| l.to_string()).collect()
    };
    items.into_iter().filter(|c| !c.is_empty()).collect()
}

fn clearance_from(state: &AppState, level: &str, caveats: &str) -> Result<Clearance, AppError> {
    state
        .scheme()
        .clearance(level, parse_caveats(caveats))
        .map_err(AppError::bad_request)
}

fn add_user(state: &AppState, me: &Me, input: &UserInput) -> Result<User, AppError> {
    let result = (|| {
        let clearance = clearance_from(state, &input.level, &input.caveats)?;
        let roles = Role::parse_list(&input.roles)?;
        Ok(state.auth.add_user(&NewUser {
            name: input.name.trim().to_string(),
            password: input.password.clone(),
            roles,
            clearance,
        })?)
    })();
    let detail = json!({"roles": input.roles, "level": input.level, "caveats": input.caveats});
    state.record_result(&me.name, "add-user", input.name.trim(), detail, result)
}

fn update_user(
    state: &AppState,
    me: &Me,
    name: &str,
    update: &UserUpdate,
) -> Result<User, AppError> {
    let result = (|| {
        let change = Change {
            roles: update.roles.as_deref().map(Role::parse_list).transpose()?,
            level: update.level.clone(),
            caveats: update.caveats.as_deref().map(parse_caveats),
            disabled: update.disabled,
            password: update.password.clone(),
        };
        Ok(state.auth.change(name, &change, state.scheme())?)
    })();
    // Never record the password itself, only that it changed.
    let detail = json!({
        "roles": update.roles,
        "level": update.level,
        "caveats": update.caveats,
        "disabled": update.disabled,
        "password_changed": update.password.as_deref().is_some_and(|p| !p.is_empty()),
    });
    state.record_result(&me.name, "update-user", name, detail, result)
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    me: Me,
    users: Vec<User>,
    levels: Vec<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct Flash {
    error: Option<String>,
}

async fn users_page(
    State(state): State<AppState>,
    me: Me,
    Query(flash): Query<Flash>,
) -> PageResult {
    page::html(&UsersPage {
        me,
        users: state.auth.users().map_err(AppError::from)?,
        levels: state.scheme().levels.clone(),
        error: flash.error,
    })
}

async fn add_user_form(
    State(state): State<AppState>,
    me: Me,
    Form(input): Form<UserInput>,
) -> Response {
    match add_user(&state, &me, &input) {
        Ok(_) => see_other("/admin/users", None),
        Err(e) => see_other("/admin/users", Some(&e)),
    }
}

/// The page form sends every field; checkboxes are absent when unticked.
#[derive(Debug, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    level: String,
    #[serde(default)]
    caveats: String,
    #[serde(default)]
    disabled: Option<String>,
    #[serde(default)]
    password: String,
}

async fn update_user_form(
    State(state): State<AppState>,
    me: Me,
    Path(name): Path<String>,
    axum_extra_form: axum::body::Bytes,
) -> Response {
    // Repeated `roles` fields: parse the body as a list of pairs.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&axum_extra_form)
        .into_owned()
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let form = UserForm {
        roles: pairs
            .iter()
            .filter(|(k, _)| k == "roles")
            .map(|(_, v)| v.clone())
            .collect(),
        level: get("level").unwrap_or_default(),
        caveats: get("caveats").unwrap_or_default(),
        disabled: get("disabled"),
        password: get("password").unwrap_or_default(),
    };
    let update = UserUpdate {
        roles: Some(form.roles.join(",")),
        level: Some(form.level),
        caveats: Some(form.caveats),
        disabled: Some(form.disabled.is_some()),
        password: Some(form.password),
    };
    match update_user(&state, &me, &name, &update) {
        Ok(_) => see_other("/admin/users", None),
        Err(e) => see_other("/admin/users", Some(&e)),
    }
}

async fn users_api(State(state): State<AppState>) -> Result<Json<Vec<User>>, AppError> {
    Ok(Json(state.auth.users()?))
}

async fn add_user_api(
    State(state): State<AppState>,
    me: Me,
    ApiJson(input): ApiJson<UserInput>,
) -> Result<Json<User>, AppError> {
    Ok(Json(add_user(&state, &me, &input)?))
}

async fn update_user_api(
    State(state): State<AppState>,
    me: Me,
    Path(name): Path<String>,
    ApiJson(update): ApiJson<UserUpdate>,
) -> Result<Json<User>, AppError> {
    Ok(Json(update_user(&state, &me, &name, &update)?))
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
}

const MAX_AUDIT_PAGE: usize = 1000;

/// Entries matching the filters, oldest first, after `q.after`.
fn audit_entries(state: &AppState, q: &AuditQuery) -> Result<Vec<Entry>, AppError> {
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_AUDIT_PAGE);
    let mut out = Vec::new();
    let mut after = q.after;
    loop {
        let batch = state.audit.entries(after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        out.extend(batch.into_iter().filter(|e| {
            (q.actor.is_empty() || e.event.actor.eq_ignore_ascii_case(q.actor.trim()))
                && (q.action.is_empty() || e.event.action == q.action.trim())
        }));
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}

async fn audit_api(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<Entry>>, AppError> {
    Ok(Json(audit_entries(&state, &q)?))
}

async fn verify_api(State(state): State<AppState>) -> Result<Json<Verification>, AppError> {
    Ok(Json(state.audit.verify()?))
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    me: Me,
    entries: Vec<Entry>,
    verification: Verification,
    actor: String,
    action: String,
    next_after: Option<i64>,
}

async fn audit_page(
    State(state): State<AppState>,
    me: Me,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let entries = audit_entries(&state, &q)?;
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_AUDIT_PAGE);
    page::html(&AuditPage {
        me,
        next_after: (entries.len() == limit).then(|| entries.last().map_or(0, |e| e.seq)),
        entries,
        verification: state.audit.verify().map_err(AppError::from)?,
        actor: q.actor.clone(),
        action: q.action.clone(),
    })
}

#[derive(Debug, Deserialize, Default)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
}

/// The whole log as CSV or JSON Lines (one entry per line, with its hashes, so the export
/// can be verified elsewhere).
async fn audit_export(
    State(state): State<AppState>,
    me: Me,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let batch = state.audit.entries(after, 5000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        entries.extend(batch);
    }
    let (body, content_type, ext) = match q.format.as_str() {
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "seq",
                "at",
                "actor",
                "action",
                "target",
                "outcome",
                "detail",
                "prev_hash",
                "hash",
            ])
            .map_err(|e| AppError::bad_request(e.to_string()))?;
            // Search queries, names and targets are typed by people: a cell a spreadsheet
            // would run as a formula (`=HYPERLINK(...)`, `+cmd`, `@SUM`) is neutralised.
            // The JSON Lines export keeps every value exact for re-verification.
            use doctrina_types::spreadsheet_safe as cell;
            for e in &entries {
                w.write_record([
                    e.seq.to_string().as_str(),
                    &e.at,
                    &cell(&e.event.actor),
                    &cell(&e.event.action),
                    &cell(&e.event.target),
                    &cell(&e.event.outcome),
                    &cell(&e.event.detail.to_string()),
                    &e.prev_hash,
                    &e.hash,
                ])
                .map_err(|e| AppError::bad_request(e.to_string()))?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| AppError::bad_request(e.to_string()))?;
            (bytes, "text/csv; charset=utf-8", "csv")
        }
        "" | "jsonl" => {
            let mut out = String::new();
            for e in &entries {
                out.push_str(&serde_json::to_string(e).unwrap_or_default());
                out.push('\n');
            }
            (out.into_bytes(), "application/x-ndjson", "jsonl")
        }
        other => {
            return Err(AppError::bad_request(format!(
                "unknown format {other:?} (expected csv or jsonl)"
            )));
        }
    };
    state.record(
        &me.name,
        "export-audit",
        ext,
        "ok",
        json!({"entries": entries.len()}),
    )?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}
