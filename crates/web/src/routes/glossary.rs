//! The custodian's page for the bilingual glossary (`지속지원 = sustainment`): the file as
//! it is, the lines left out of it, and an editor that installs a new text only when every
//! line is valid (each bad line named), keeping the previous file. Every save is audited.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{CUSTODIAN, Me, RouteTable};
use crate::page::{self, PageResult};
use crate::{AppError, AppState};
use doctrina_retrieve::GlossaryStoreError;

/// Largest glossary text accepted from the form.
const MAX_GLOSSARY_BYTES: usize = 1024 * 1024;

pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/glossary", CUSTODIAN, glossary_page)
        .post("/glossary", CUSTODIAN, glossary_save)
}

struct LineError {
    line: usize,
    message: String,
}

#[derive(Template)]
#[template(path = "glossary.html")]
struct GlossaryPage {
    me: Me,
    path: String,
    entries: usize,
    text: String,
    /// Lines of the file on disk that were left out when it was loaded.
    problems: Vec<LineError>,
    /// Lines of a refused edit.
    errors: Vec<LineError>,
    notice: Option<String>,
}

fn line_errors(errors: &[doctrina_korean::GlossaryError]) -> Vec<LineError> {
    errors
        .iter()
        .map(|e| LineError {
            line: e.line,
            message: e.message.clone(),
        })
        .collect()
}

fn store(state: &AppState) -> Result<&std::sync::Arc<doctrina_retrieve::GlossaryStore>, AppError> {
    state
        .retriever
        .glossary()
        .ok_or_else(|| AppError::not_found("this server has no glossary configured"))
}

fn current_page(
    state: &AppState,
    me: Me,
    notice: Option<String>,
) -> Result<GlossaryPage, AppError> {
    let store = store(state)?;
    Ok(GlossaryPage {
        me,
        path: store.path().display().to_string(),
        entries: store.get().len(),
        text: store.text()?,
        problems: line_errors(&store.problems()),
        errors: Vec::new(),
        notice,
    })
}

#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<usize>,
}

async fn glossary_page(
    State(state): State<AppState>,
    me: Me,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> PageResult {
    let notice = q.saved.map(|n| {
        me.t("Saved: {n} entries. Keyword searches use it from now on.")
            .replace("{n}", &n.to_string())
    });
    page::html(&current_page(&state, me, notice)?)
}

#[derive(Debug, Deserialize)]
pub struct GlossaryForm {
    #[serde(default)]
    text: String,
}

async fn glossary_save(
    State(state): State<AppState>,
    me: Me,
    Form(form): Form<GlossaryForm>,
) -> Result<Response, page::PageError> {
    if form.text.len() > MAX_GLOSSARY_BYTES {
        return Err(AppError::too_large(format!(
            "the glossary is {} bytes; the limit is {MAX_GLOSSARY_BYTES}",
            form.text.len()
        ))
        .into());
    }
    // Browsers send CRLF from a textarea; the file keeps the custodian's lines as LF.
    let text = form.text.replace("\r\n", "\n");
    let store = store(&state)?.clone();
    let path = store.path().display().to_string();
    let result = {
        let text = text.clone();
        tokio::task::spawn_blocking(move || store.replace(&text)).await?
    };
    match result {
        Ok(entries) => {
            state.record(
                &me.name,
                "glossary",
                &path,
                "ok",
                json!({"entries": entries}),
            )?;
            Ok(page::see_other(&format!("/glossary?saved={entries}"), None))
        }
        Err(GlossaryStoreError::Invalid(errors)) => {
            state.record(
                &me.name,
                "glossary",
                &path,
                "refused: bad lines",
                json!({"bad_lines": errors.iter().map(|e| e.line).collect::<Vec<_>>()}),
            )?;
            let mut view = current_page(&state, me, None)?;
            view.text = text;
            view.errors = line_errors(&errors);
            let html = view.render().map_err(AppError::from)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::response::Html(html)).into_response())
        }
        Err(e) => {
            let _ = state.record(
                &me.name,
                "glossary",
                &path,
                &format!("error: {e}"),
                json!({}),
            );
            Err(AppError::from(e).into())
        }
    }
}
