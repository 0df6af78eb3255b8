//! Section routes' extractor: a section id the signed-in person may see.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::auth::Me;
use crate::{AppError, AppState};

/// A section id from the path that the signed-in person may see. A section drafted from
/// passages above their access is "not found", exactly like one that does not exist.
#[derive(Debug, Clone)]
pub struct VisibleSection(pub String);

impl FromRequestParts<AppState> for VisibleSection {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let api = parts.uri.path().starts_with("/api/");
        let reject = |e: AppError| {
            if api {
                e.into_response()
            } else {
                crate::page::PageError(e).into_response()
            }
        };
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| reject(AppError::bad_request(e.body_text())))?;
        let Some(id) = params
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_string())
        else {
            return Err(reject(AppError::bad_request("no section id")));
        };
        let me = Me::from_request_parts(parts, state).await.map_err(reject)?;
        let (state, id2) = (state.clone(), id.clone());
        let visible = tokio::task::spawn_blocking(move || {
            let s = state.workspace.section(&id2)?;
            state.workspace.section_visible(&s, &me.clearance)
        })
        .await
        .map_err(|e| reject(e.into()))?
        .map_err(|e| reject(e.into()))?;
        if visible {
            Ok(Self(id))
        } else {
            Err(reject(AppError::not_found(format!("section {id}"))))
        }
    }
}
