//! Plans: list and create them, add sections, export. Pages and the JSON API.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use doctrina_plan::export::{Export, ExportLabels, to_markdown_in};
use doctrina_plan::{Plan, PlanKind, Section};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery};
use crate::auth::Me;
use crate::auth::{OFFICER, READERS, RouteTable};
use crate::page::{self, PageResult, see_other};
use crate::render;
use crate::{AppError, AppState};

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/plans", READERS, plans_page)
        .post("/plans", OFFICER, create_plan_form)
        .get("/plans/{id}", READERS, plan_page)
        .post("/plans/{id}/sections", OFFICER, add_section_form)
        .get("/plans/{id}/export.md", OFFICER, export_markdown)
        .get("/plans/{id}/export.html", OFFICER, export_html)
        .get("/api/templates", READERS, templates_api)
        .get("/api/plans", READERS, plans_api)
        .post("/api/plans", OFFICER, create_plan_api)
        .get("/api/plans/{id}", READERS, plan_api)
        .post("/api/plans/{id}/sections", OFFICER, add_section_api)
        .get("/api/plans/{id}/export", OFFICER, export_api)
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
    me: Me,
    plans: Vec<Plan>,
    kinds: Vec<KindOption>,
    error: Option<String>,
}

async fn plans_page(
    State(state): State<AppState>,
    me: Me,
    Query(flash): Query<Flash>,
) -> PageResult {
    page::html(&PlansPage {
        me: me.clone(),
        plans: state.workspace.plans_for(&me.clearance)?,
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
    me: Me,
    Form(input): Form<NewPlan>,
) -> Response {
    match create_plan(&state, &input, &me.name) {
        Ok(plan) => see_other(&format!("/plans/{}", plan.id), None),
        Err(e) => see_other("/plans", Some(&e)),
    }
}

struct TemplateOption {
    name: String,
    title: String,
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage {
    me: Me,
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
    me: Me,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> PageResult {
    let plan = state.workspace.plan(&id)?;
    page::html(&PlanPage {
        me: me.clone(),
        sections: state.workspace.visible_sections(&plan.id, &me.clearance)?,
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
    me: Me,
    Path(id): Path<String>,
    Form(input): Form<NewSection>,
) -> Response {
    match state.workspace.create_section(
        &id,
        &input.template,
        input.title.as_deref(),
        &input.task,
        &input.guidance,
        &me.name,
    ) {
        Ok(section) => see_other(&format!("/sections/{}", section.id), None),
        Err(e) => see_other(&format!("/plans/{id}"), Some(&AppError::from(e))),
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
    me: Me,
    Path(id): Path<String>,
) -> PageResult {
    Ok(rendered_export(state, me, id, "markdown").await?)
}

struct ExportSectionView {
    title: String,
    marking: String,
    html: Option<String>,
    /// `Accepted: version 3 by kim.` or the not-accepted notice, in the reader's language.
    note: String,
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage {
    export: Export,
    lang: &'static str,
    kind: String,
    references: String,
    sections: Vec<ExportSectionView>,
    css: &'static str,
}

/// The export's own words in the language of the person exporting.
fn export_labels(me: &Me, export: &Export) -> ExportLabels {
    let lang = me.lang;
    ExportLabels {
        kind: me.t(&export.kind),
        accepted: me.t("Accepted: version {v} by {by}."),
        not_accepted: me
            .t("NOT ACCEPTED: this section is {status} and is not part of the approved plan."),
        references: me.t("References"),
        status: Box::new(move |status| lang.t(status)),
    }
}

fn export_page(export: Export, me: &Me) -> ExportPage {
    let refs = export.references.len();
    let labels = export_labels(me, &export);
    let sections = export
        .sections
        .iter()
        .map(|s| ExportSectionView {
            title: s.title.clone(),
            marking: s.marking.clone(),
            note: match (s.text.is_some(), s.version, &s.accepted_by) {
                (true, Some(v), Some(by)) => labels.accepted_line(v, by),
                (true, _, _) => String::new(),
                (false, _, _) => labels.not_accepted_line(&s.status),
            },
            html: s.text.as_deref().map(|t| {
                render::markdown_with_citations(t, &|r| r.n >= 1 && r.n <= refs, &|n| {
                    format!("#ref-{n}")
                })
            }),
        })
        .collect();
    ExportPage {
        export,
        lang: me.lang_code(),
        kind: labels.kind,
        references: labels.references,
        sections,
        css: include_str!("../../../../static/export.css"),
    }
}

/// The export as a standalone HTML response.
fn html_export(export: Export, me: &Me) -> Result<Response, AppError> {
    let stem = file_stem(&export);
    Ok(attachment(
        "text/html; charset=utf-8",
        &format!("{stem}.html"),
        export_page(export, me).render()?,
    ))
}

/// The export as a Markdown response.
fn markdown_export(export: &Export, me: &Me) -> Response {
    attachment(
        "text/markdown; charset=utf-8",
        &format!("{}.md", file_stem(export)),
        to_markdown_in(export, &export_labels(me, export)),
    )
}

/// Builds and renders an export off the async runtime (rendering Markdown is CPU work).
async fn rendered_export(
    state: AppState,
    me: Me,
    id: String,
    format: &'static str,
) -> Result<Response, AppError> {
    tokio::task::spawn_blocking(move || {
        let export = state
            .workspace
            .export_plan(&id, &me.name, &me.clearance, format)?;
        match format {
            "json" => Ok(Json(export).into_response()),
            "markdown" => Ok(markdown_export(&export, &me)),
            _ => html_export(export, &me),
        }
    })
    .await?
}

async fn export_html(State(state): State<AppState>, me: Me, Path(id): Path<String>) -> PageResult {
    Ok(rendered_export(state, me, id, "html").await?)
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
}

async fn export_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, AppError> {
    let format = params.format.as_deref().unwrap_or("json");
    if !["json", "markdown", "md", "html"].contains(&format) {
        return Err(AppError::bad_request(format!(
            "unknown export format '{format}' (expected json, markdown or html)"
        )));
    }
    let format = match format {
        "json" => "json",
        "markdown" | "md" => "markdown",
        _ => "html",
    };
    rendered_export(state, me, id, format).await
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

async fn plans_api(State(state): State<AppState>, me: Me) -> Result<Json<Vec<Plan>>, AppError> {
    let plans =
        tokio::task::spawn_blocking(move || state.workspace.plans_for(&me.clearance)).await??;
    Ok(Json(plans))
}

async fn create_plan_api(
    State(state): State<AppState>,
    me: Me,
    ApiJson(input): ApiJson<NewPlan>,
) -> Result<(StatusCode, Json<Plan>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(create_plan(&state, &input, &me.name)?),
    ))
}

#[derive(Serialize)]
struct PlanDetail {
    plan: Plan,
    sections: Vec<Section>,
}

async fn plan_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
) -> Result<Json<PlanDetail>, AppError> {
    let plan = state.workspace.plan(&id)?;
    Ok(Json(PlanDetail {
        sections: state.workspace.visible_sections(&plan.id, &me.clearance)?,
        plan,
    }))
}

async fn add_section_api(
    State(state): State<AppState>,
    me: Me,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NewSection>,
) -> Result<(StatusCode, Json<Section>), AppError> {
    let section = state.workspace.create_section(
        &id,
        &input.template,
        input.title.as_deref(),
        &input.task,
        &input.guidance,
        &me.name,
    )?;
    Ok((StatusCode::CREATED, Json(section)))
}
