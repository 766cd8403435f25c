//! Promotion requests: admins see the waiting ones and approve or turn them
//! down with a note; anyone else asks for another role from their
//! notifications page. The same domain functions as `/api/v1/promotions`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::Role;

use super::access::{AdminForm, AdminPage, ReadyForm, Signed};
use super::notifications::{self, notifications_page, path_id};
use super::pages::{self, form_message, page, role_name, Frame, Refusal};
use super::{frame, note};
use crate::api::extract::{actor_of, Meta};
use crate::error::{Error, Result};
use crate::promotions::{self, Decision, Request, Status};
use crate::{areas, AppState};

/// Waiting requests on the admins' page.
const PENDING: u32 = 100;
/// Requests read for the "decided lately" list.
const RECENT: u32 = 30;

/// One request as the pages show it.
#[derive(Debug, Serialize)]
pub(super) struct RequestRow {
    id: i64,
    username: String,
    current_role: &'static str,
    role: &'static str,
    /// The role asked for is dispatcher: approving needs an area.
    to_dispatcher: bool,
    reason: String,
    /// `pending`, `approved` or `rejected`: also the CSS class.
    status: &'static str,
    status_label: &'static str,
    pub(super) pending: bool,
    asked: String,
    decided_by: Option<String>,
    decided: Option<String>,
    note: Option<String>,
}

pub(super) fn request_rows(state: &AppState, requests: Vec<Request>) -> Vec<RequestRow> {
    let offset = state.settings.utc_offset;
    let now = state.now().time();
    requests
        .into_iter()
        .map(|r| RequestRow {
            id: r.id,
            username: r.username,
            current_role: role_name(r.current_role),
            role: role_name(r.role),
            to_dispatcher: r.role == Role::Dispatcher,
            reason: r.reason,
            status: r.status.as_str(),
            status_label: match r.status {
                Status::Pending => "Waiting",
                Status::Approved => "Approved",
                Status::Rejected => "Turned down",
            },
            pending: r.status == Status::Pending,
            asked: format!(
                "{} ({})",
                pages::moment(r.created_at.time(), offset),
                pages::ago(r.created_at.time(), now)
            ),
            decided_by: r.decided_by,
            decided: r.decided_at.map(|t| pages::moment(t.time(), offset)),
            note: r.note,
        })
        .collect()
}

async fn promotions_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response> {
    let me = &signed.session.user;
    let (pending, _) =
        promotions::list(&state.db, me, Some(Status::Pending), None, PENDING).await?;
    let (recent, _) = promotions::list(&state.db, me, None, None, RECENT).await?;
    let decided: Vec<Request> = recent
        .into_iter()
        .filter(|r| r.status != Status::Pending)
        .collect();
    let own: Vec<i64> = pending
        .iter()
        .filter(|r| r.user_id == me.id)
        .map(|r| r.id)
        .collect();
    let areas: Vec<String> = areas::list(&state.db)
        .await?
        .into_iter()
        .filter(|a| a.retired_at.is_none())
        .map(|a| a.name)
        .collect();
    let frame = Frame {
        notice,
        ..frame(signed, "Promotion requests", "promotions")
    };
    Ok(page(
        status,
        "promotions.html",
        &frame,
        context! {
            pending => Value::from(Serde(&request_rows(state, pending))),
            decided => Value::from(Serde(&request_rows(state, decided))),
            own,
            areas,
            error,
            max_note => promotions::MAX_TEXT,
        },
    ))
}

/// The waiting promotion requests, and those decided lately (admins).
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    RawQuery(raw): RawQuery,
) -> Response {
    promotions_page(&state, &signed, StatusCode::OK, None, note(raw.as_deref()))
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecideForm {
    note: String,
    /// The area of a new dispatcher.
    area: String,
}

/// After a decision: back to the list with its note, or the list again
/// with the refusal in plain words.
async fn decided(state: &AppState, mut signed: Signed, done: Result<&'static str>) -> Response {
    match done {
        Ok(note) => Redirect::to(&format!("/console/promotions?note={note}")).into_response(),
        Err(e) => match form_message(e) {
            Ok((status, message)) => {
                // A request gone since the page was shown: a refused form.
                let status = if status == StatusCode::NOT_FOUND {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    status
                };
                if let Err(refusal) = signed.count_unread(state).await {
                    return refusal.into_response();
                }
                promotions_page(state, &signed, status, Some(message), None)
                    .await
                    .unwrap_or_else(|e| Refusal::from(e).into_response())
            }
            Err(refusal) => refusal.into_response(),
        },
    }
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// Approves a request: the role changes under every rule of a role change.
#[tracing::instrument(skip_all)]
pub async fn approve(
    State(state): State<AppState>,
    meta: Meta,
    Path(id): Path<String>,
    AdminForm { signed, form }: AdminForm<DecideForm>,
) -> Response {
    let id = match path_id(&id) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = async {
        let decision = Decision {
            note: given(&form.note),
            dispatch_area: given(&form.area),
        };
        let mut tx = state.db.begin().await?;
        promotions::approve(
            &mut tx,
            &state.settings,
            by,
            &actor,
            id,
            decision,
            state.now(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>("approved")
    }
    .await;
    decided(&state, signed, done).await
}

/// Turns a request down; the user keeps their role and is told.
#[tracing::instrument(skip_all)]
pub async fn reject(
    State(state): State<AppState>,
    meta: Meta,
    Path(id): Path<String>,
    AdminForm { signed, form }: AdminForm<DecideForm>,
) -> Response {
    let id = match path_id(&id) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = async {
        let mut tx = state.db.begin().await?;
        promotions::reject(&mut tx, by, &actor, id, given(&form.note), state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>("rejected")
    }
    .await;
    decided(&state, signed, done).await
}

/// The ask form, as typed.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AskForm {
    role: String,
    reason: String,
}

/// Asks for another role, with a reason; the admins are told.
#[tracing::instrument(skip_all)]
pub async fn ask(
    State(state): State<AppState>,
    meta: Meta,
    ReadyForm { mut signed, form }: ReadyForm<AskForm>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let user = signed.session.user.clone();
    let done = async {
        let role = Role::parse(form.role.trim())
            .ok_or_else(|| Error::bad_input("bad_role", "Choose the role you ask for."))?;
        let mut tx = state.db.begin().await?;
        promotions::request(&mut tx, &user, &actor, role, &form.reason, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    let e = match done {
        Ok(()) => return Redirect::to("/console/notifications?note=asked").into_response(),
        Err(e) => e,
    };
    match form_message(e) {
        Ok((status, message)) => {
            if let Err(refusal) = signed.count_unread(&state).await {
                return refusal.into_response();
            }
            let extras = notifications::Extras {
                error: Some(message),
                typed: Some(form),
                ..notifications::Extras::default()
            };
            notifications_page(&state, &signed, None, status, extras)
                .await
                .unwrap_or_else(|e| Refusal::from(e).into_response())
        }
        Err(refusal) => refusal.into_response(),
    }
}
