//! Promotion requests: anyone asks for another role; admins decide.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use traitortrack_protocol::Role;

use super::extract::{Admin, ApiJson, ApiQuery, Caller, Meta, PathId};
use crate::error::{Error, Result};
use crate::promotions::{self, Decision, Request, Status};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct RequestView {
    pub id: i64,
    pub username: String,
    /// The user's role now.
    pub current_role: Role,
    /// The role asked for.
    pub role: Role,
    pub reason: String,
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub note: Option<String>,
}

impl From<Request> for RequestView {
    fn from(r: Request) -> RequestView {
        RequestView {
            id: r.id,
            username: r.username,
            current_role: r.current_role,
            role: r.role,
            reason: r.reason,
            status: r.status.as_str(),
            created_at: r.created_at.time(),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(|t| t.time()),
            note: r.note,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub role: Role,
    pub reason: String,
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    ApiJson(req): ApiJson<Ask>,
) -> Result<(StatusCode, Json<RequestView>)> {
    let user = caller.0.user.clone();
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let made =
        promotions::request(&mut tx, &user, &actor, req.role, &req.reason, state.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

#[derive(Debug, Serialize)]
pub struct RequestList {
    pub items: Vec<RequestView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_before: Option<i64>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// pending, approved or rejected.
    status: Option<String>,
    before: Option<i64>,
    /// 1 to 100 (default 50).
    limit: Option<u32>,
}

/// Everyone's requests for an admin; one's own for anyone else.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<RequestList>> {
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Error::bad_input("bad_status", "The status is pending, approved or rejected.")
        })?),
    };
    let (items, next_before) = promotions::list(
        &state.db,
        &caller.0.user,
        status,
        q.before,
        q.limit.unwrap_or(50),
    )
    .await?;
    Ok(Json(RequestList {
        items: items.into_iter().map(RequestView::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    pub note: Option<String>,
    /// The area, when the user becomes a dispatcher.
    pub dispatch_area: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn approve(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
    body: Option<ApiJson<Approve>>,
) -> Result<Json<RequestView>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let decision = Decision {
        note: req.note.as_deref(),
        dispatch_area: req.dispatch_area.as_deref(),
    };
    let mut tx = state.db.begin().await?;
    let decided = promotions::approve(
        &mut tx,
        &state.settings,
        &by,
        &actor,
        id,
        decision,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(decided.into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    pub note: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn reject(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
    body: Option<ApiJson<Reject>>,
) -> Result<Json<RequestView>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let decided =
        promotions::reject(&mut tx, &by, &actor, id, req.note.as_deref(), state.now()).await?;
    tx.commit().await?;
    Ok(Json(decided.into()))
}
