//! Plans: list and create them, add sections, export. Pages and the JSON API.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doctrina_plan::export::{Export, to_markdown};
use doctrina_plan::{Plan, PlanKind, Section};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery};
use crate::page::{self, PageResult, see_other};
use crate::render;
use crate::user::{Actor, USER_COOKIE, percent_encode};
use crate::workspace;
use crate::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", get(plans_page).post(create_plan_form))
        .route("/whoami", post(whoami))
        .route("/plans/{id}", get(plan_page))
        .route("/plans/{id}/sections", post(add_section_form))
        .route("/plans/{id}/export.md", get(export_markdown))
        .route("/plans/{id}/export.html", get(export_html))
        .route("/api/templates", get(templates_api))
        .route("/api/plans", get(plans_api).post(create_plan_api))
        .route("/api/plans/{id}", get(plan_api))
        .route("/api/plans/{id}/sections", post(add_section_api))
        .route("/api/plans/{id}/export", get(export_api))
}

#[derive(Debug, Deserialize, Default)]
pub struct Flash {
    error: Option<String>,
}

struct KindOption {
    value: &'static str,
    title: &'static str,
}

fn kinds() -> Vec<KindOption> {
    PlanKind::ALL
        .iter()
        .map(|k| KindOption {
            value: k.as_str(),
            title: k.title(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "plans.html")]
struct PlansPage {
    user: String,
    plans: Vec<Plan>,
    kinds: Vec<KindOption>,
    error: Option<String>,
}

async fn plans_page(
    State(state): State<AppState>,
    Actor(user): Actor,
    Query(flash): Query<Flash>,
) -> PageResult {
    page::html(&PlansPage {
        user,
        plans: state.plans.plans()?,
        kinds: kinds(),
        error: flash.error,
    })
}

#[derive(Debug, Deserialize)]
pub struct NewPlan {
    #[serde(default)]
    title: String,
    #[serde(default)]
    kind: String,
}

fn create_plan(state: &AppState, input: &NewPlan, actor: &str) -> Result<Plan, AppError> {
    let created = input
        .kind
        .parse::<PlanKind>()
        .and_then(|kind| state.plans.create_plan(&input.title, kind, actor))
        .map_err(AppError::from);
    let target = created.as_ref().map_or("-", |p| p.id.as_str()).to_string();
    state.record_result(
        actor,
        "create-plan",
        &target,
        serde_json::json!({"kind": input.kind}),
        created,
    )
}

async fn create_plan_form(
    State(state): State<AppState>,
    Actor(user): Actor,
    Form(input): Form<NewPlan>,
) -> Response {
    match create_plan(&state, &input, &user) {
        Ok(plan) => see_other(&format!("/plans/{}", plan.id), None),
        Err(e) => see_other("/plans", Some(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct WhoAmI {
    #[serde(default)]
    name: String,
    #[serde(default)]
    back: String,
}

/// Sets the name recorded with this browser's actions (accounts replace this in issue 6).
async fn whoami(Form(input): Form<WhoAmI>) -> Response {
    // Only local paths: never redirect to another site.
    let back = if input.back.starts_with('/') && !input.back.starts_with("//") {
        input.back.as_str()
    } else {
        "/"
    };
    let mut response = see_other(back, None);
    let cookie = match crate::user::Actor::clean(&input.name) {
        Some(name) => format!(
            "{USER_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000",
            percent_encode(&name)
        ),
        None => format!("{USER_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

struct TemplateOption {
    name: String,
    title: String,
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage {
    user: String,
    plan: Plan,
    sections: Vec<Section>,
    templates: Vec<TemplateOption>,
    error: Option<String>,
}

fn template_options(state: &AppState) -> Vec<TemplateOption> {
    state
        .drafter
        .sections
        .all()
        .iter()
        .map(|t| TemplateOption {
            name: t.name.clone(),
            title: t.title.clone(),
        })
        .collect()
}

async fn plan_page(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> PageResult {
    let plan = workspace::plan(&state, &id)?;
    page::html(&PlanPage {
        user,
        sections: state.plans.sections(&plan.id)?,
        plan,
        templates: template_options(&state),
        error: flash.error,
    })
}

#[derive(Debug, Deserialize)]
pub struct NewSection {
    #[serde(default)]
    template: String,
    title: Option<String>,
    #[serde(default)]
    task: String,
    #[serde(default)]
    guidance: String,
}

async fn add_section_form(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
    Form(input): Form<NewSection>,
) -> Response {
    match workspace::create_section(
        &state,
        &id,
        &input.template,
        input.title.as_deref(),
        &input.task,
        &input.guidance,
        &user,
    ) {
        Ok(section) => see_other(&format!("/sections/{}", section.id), None),
        Err(e) => see_other(&format!("/plans/{id}"), Some(&e)),
    }
}

fn attachment(content_type: &str, filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn file_stem(export: &Export) -> String {
    let stem: String = export
        .title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = stem.trim_matches('-').to_lowercase();
    if stem.is_empty() {
        export.plan_id.clone()
    } else {
        stem.chars().take(60).collect()
    }
}

async fn export_markdown(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
) -> PageResult {
    Ok(markdown_export(&workspace::export_plan(
        &state, &id, &user, "markdown",
    )?))
}

struct ExportSectionView {
    title: String,
    marking: String,
    status: String,
    version: Option<u32>,
    accepted_by: Option<String>,
    html: Option<String>,
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage {
    export: Export,
    sections: Vec<ExportSectionView>,
    css: &'static str,
}

fn export_page(export: Export) -> ExportPage {
    let refs = export.references.len();
    let sections = export
        .sections
        .iter()
        .map(|s| ExportSectionView {
            title: s.title.clone(),
            marking: s.marking.clone(),
            status: s.status.clone(),
            version: s.version,
            accepted_by: s.accepted_by.clone(),
            html: s.text.as_deref().map(|t| {
                render::markdown_with_citations(t, &|n| n >= 1 && n <= refs, &|n| {
                    format!("#ref-{n}")
                })
            }),
        })
        .collect();
    ExportPage {
        export,
        sections,
        css: include_str!("../../../../static/export.css"),
    }
}

/// The export as a standalone HTML response.
fn html_export(export: Export) -> Result<Response, AppError> {
    let stem = file_stem(&export);
    Ok(attachment(
        "text/html; charset=utf-8",
        &format!("{stem}.html"),
        export_page(export).render()?,
    ))
}

/// The export as a Markdown response.
fn markdown_export(export: &Export) -> Response {
    attachment(
        "text/markdown; charset=utf-8",
        &format!("{}.md", file_stem(export)),
        to_markdown(export),
    )
}

async fn export_html(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
) -> PageResult {
    Ok(html_export(workspace::export_plan(
        &state, &id, &user, "html",
    )?)?)
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
}

async fn export_api(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, AppError> {
    let format = params.format.as_deref().unwrap_or("json");
    if !["json", "markdown", "md", "html"].contains(&format) {
        return Err(AppError::BadRequest(format!(
            "unknown export format '{format}' (expected json, markdown or html)"
        )));
    }
    let export = workspace::export_plan(&state, &id, &user, format)?;
    match format {
        "json" => Ok(Json(export).into_response()),
        "markdown" | "md" => Ok(markdown_export(&export)),
        "html" => html_export(export),
        other => Err(AppError::BadRequest(format!(
            "unknown export format '{other}' (expected json, markdown or html)"
        ))),
    }
}

#[derive(Serialize)]
struct TemplateInfo {
    name: String,
    title: String,
    subheadings: Vec<String>,
}

async fn templates_api(State(state): State<AppState>) -> Json<Vec<TemplateInfo>> {
    Json(
        state
            .drafter
            .sections
            .all()
            .iter()
            .map(|t| TemplateInfo {
                name: t.name.clone(),
                title: t.title.clone(),
                subheadings: t.subheadings.clone(),
            })
            .collect(),
    )
}

async fn plans_api(State(state): State<AppState>) -> Result<Json<Vec<Plan>>, AppError> {
    Ok(Json(state.plans.plans()?))
}

async fn create_plan_api(
    State(state): State<AppState>,
    Actor(user): Actor,
    ApiJson(input): ApiJson<NewPlan>,
) -> Result<(StatusCode, Json<Plan>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(create_plan(&state, &input, &user)?),
    ))
}

#[derive(Serialize)]
struct PlanDetail {
    plan: Plan,
    sections: Vec<Section>,
}

async fn plan_api(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PlanDetail>, AppError> {
    let plan = workspace::plan(&state, &id)?;
    Ok(Json(PlanDetail {
        sections: state.plans.sections(&plan.id)?,
        plan,
    }))
}

async fn add_section_api(
    State(state): State<AppState>,
    Actor(user): Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NewSection>,
) -> Result<(StatusCode, Json<Section>), AppError> {
    let section = workspace::create_section(
        &state,
        &id,
        &input.template,
        input.title.as_deref(),
        &input.task,
        &input.guidance,
        &user,
    )?;
    Ok((StatusCode::CREATED, Json(section)))
}
