//! One's own notifications: list, count unread, mark read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::extract::{ApiQuery, Caller, PathId};
use crate::error::Result;
use crate::notifications::{self, Notification};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: i64,
    pub kind: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> NotificationView {
        NotificationView {
            id: n.id,
            kind: n.kind,
            message: n.message,
            created_at: n.created_at.time(),
            read_at: n.read_at.map(|t| t.time()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_before: Option<i64>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// The `next_before` of the previous page.
    before: Option<i64>,
    /// 1 to 100 (default 50).
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<NotificationList>> {
    let (items, next_before) =
        notifications::list(&state.db, caller.0.user.id, q.before, q.limit.unwrap_or(50)).await?;
    Ok(Json(NotificationList {
        items: items.into_iter().map(NotificationView::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Serialize)]
pub struct Unread {
    pub unread: i64,
}

#[tracing::instrument(skip_all)]
pub async fn unread_count(State(state): State<AppState>, caller: Caller) -> Result<Json<Unread>> {
    let unread = notifications::unread_count(&state.db, caller.0.user.id).await?;
    Ok(Json(Unread { unread }))
}

#[tracing::instrument(skip_all)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode> {
    notifications::mark_read(&state.db, caller.0.user.id, id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub struct Marked {
    pub marked: u64,
}

#[tracing::instrument(skip_all)]
pub async fn read_all(State(state): State<AppState>, caller: Caller) -> Result<Json<Marked>> {
    let marked = notifications::mark_all_read(&state.db, caller.0.user.id, state.now()).await?;
    Ok(Json(Marked { marked }))
}
