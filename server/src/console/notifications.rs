//! The signed-in user's notifications (every role): newest first, marked
//! read one at a time or all at once; and, for those who are not admins,
//! the form to ask for another role with their own requests' answers.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::Role;

use super::access::{Ready, ReadyForm, Signed};
use super::pages::{self, form_message, page, role_name, Frame, Refusal};
use super::promotions::{request_rows, AskForm, RequestRow};
use super::{frame, note, NoFields};
use crate::error::{Error, Result};
use crate::{notifications, promotions, AppState};

/// Notifications on one page.
const PAGE: u32 = 50;
/// One's own promotion requests shown.
const OWN_REQUESTS: u32 = 5;

#[derive(Debug, Serialize)]
struct NotificationRow {
    id: i64,
    message: String,
    at: String,
    ago: String,
    unread: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// The id to continue before (the previous page's last).
    before: Option<String>,
}

/// What the page shows besides the notifications.
#[derive(Default)]
pub(super) struct Extras {
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    /// The ask form as typed, to show again after a refusal.
    pub typed: Option<AskForm>,
}

pub(super) async fn notifications_page(
    state: &AppState,
    signed: &Signed,
    before: Option<i64>,
    status: StatusCode,
    extras: Extras,
) -> Result<Response> {
    let user = &signed.session.user;
    let now = state.now().time();
    let offset = state.settings.utc_offset;
    let (items, next_before) = notifications::list(&state.db, user.id, before, PAGE).await?;
    let rows: Vec<NotificationRow> = items
        .into_iter()
        .map(|n| NotificationRow {
            id: n.id,
            message: n.message,
            at: pages::moment(n.created_at.time(), offset),
            ago: pages::ago(n.created_at.time(), now),
            unread: n.read_at.is_none(),
        })
        .collect();
    let unread = match signed.unread {
        Some(n) => n,
        None => notifications::unread_count(&state.db, user.id).await?,
    };
    // Admins decide requests; everyone else may ask for another role.
    let (own, roles) = if user.role == Role::Admin {
        (Vec::new(), Vec::new())
    } else {
        let (mine, _) = promotions::list(&state.db, user, None, None, OWN_REQUESTS).await?;
        let roles: Vec<(&str, &str)> = [Role::Biller, Role::Admin, Role::Dispatcher]
            .into_iter()
            .filter(|r| *r != user.role)
            .map(|r| (r.as_str(), role_name(r)))
            .collect();
        (request_rows(state, mine), roles)
    };
    let pending = own.iter().any(|r: &RequestRow| r.pending);
    let frame = Frame {
        notice: extras.notice,
        ..frame(signed, "Notifications", "notifications")
    };
    let typed = extras.typed.unwrap_or_default();
    Ok(page(
        status,
        "notifications.html",
        &frame,
        context! {
            notifications => Value::from(Serde(&rows)),
            unread,
            paged => before.is_some(),
            next_before,
            own => Value::from(Serde(&own)),
            pending,
            roles => Value::from(Serde(&roles)),
            error => extras.error,
            typed => Value::from(Serde(&typed)),
            max_reason => promotions::MAX_TEXT,
        },
    ))
}

/// The signed-in user's notifications.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Ready(signed): Ready,
    RawQuery(raw): RawQuery,
    q: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let before = q
        .ok()
        .and_then(|Query(q)| q.before)
        .and_then(|b| b.trim().parse::<i64>().ok());
    let extras = Extras {
        notice: note(raw.as_deref()),
        ..Extras::default()
    };
    notifications_page(&state, &signed, before, StatusCode::OK, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// An id from the address; anything else is a page that is not there.
pub(super) fn path_id(raw: &str) -> std::result::Result<i64, Refusal> {
    raw.trim().parse::<i64>().map_err(|_| Refusal::Page {
        status: StatusCode::NOT_FOUND,
        title: "Not found",
        message: "There is no such notification or request. Go back and reload the page.".into(),
    })
}

/// Marks one of one's own notifications read.
#[tracing::instrument(skip_all)]
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ReadyForm { signed, .. }: ReadyForm<NoFields>,
) -> Response {
    let id = match path_id(&id) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let e = match notifications::mark_read(&state.db, signed.session.user.id, id, state.now()).await
    {
        Ok(()) => return Redirect::to("/console/notifications?note=read").into_response(),
        Err(e) => e,
    };
    shown_again(&state, signed, e).await
}

/// The page again with a form's refusal in plain words. Something gone
/// since the page was shown is a refused form (422), not a missing page.
async fn shown_again(state: &AppState, mut signed: Signed, e: Error) -> Response {
    let (status, message) = match form_message(e) {
        Ok((StatusCode::NOT_FOUND, m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(shown) => shown,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = signed.count_unread(state).await {
        return refusal.into_response();
    }
    let extras = Extras {
        error: Some(message),
        ..Extras::default()
    };
    notifications_page(state, &signed, None, status, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// Marks all one's notifications read.
#[tracing::instrument(skip_all)]
pub async fn read_all(
    State(state): State<AppState>,
    ReadyForm { signed, .. }: ReadyForm<NoFields>,
) -> Response {
    match notifications::mark_all_read(&state.db, signed.session.user.id, state.now()).await {
        Ok(_) => Redirect::to("/console/notifications?note=all_read").into_response(),
        Err(e) => Refusal::from(e).into_response(),
    }
}
