//! Dispatch areas: anyone logged in lists them; admins add, rename and retire.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::extract::{Admin, ApiJson, Caller, Meta, PathId};
use crate::areas::{self, Area};
use crate::error::Result;
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct AreaView {
    pub id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// Active dispatchers in the area.
    pub dispatchers: i64,
}

impl From<Area> for AreaView {
    fn from(a: Area) -> AreaView {
        AreaView {
            id: a.id,
            name: a.name,
            created_at: a.created_at.time(),
            retired_at: a.retired_at.map(|t| t.time()),
            dispatchers: a.dispatchers,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AreaList {
    pub items: Vec<AreaView>,
}

#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>, _: Caller) -> Result<Json<AreaList>> {
    let items = areas::list(&state.db).await?;
    Ok(Json(AreaList {
        items: items.into_iter().map(AreaView::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaName {
    pub name: String,
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    ApiJson(req): ApiJson<AreaName>,
) -> Result<(StatusCode, Json<AreaView>)> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let area = areas::create(&mut tx, &actor, &req.name, state.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(area.into())))
}

/// Renames an area; its users and bags follow in the same change.
#[tracing::instrument(skip_all)]
pub async fn rename(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
    ApiJson(req): ApiJson<AreaName>,
) -> Result<Json<AreaView>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let area = areas::rename(&mut tx, &actor, id, &req.name, state.now()).await?;
    tx.commit().await?;
    Ok(Json(area.into()))
}

#[tracing::instrument(skip_all)]
pub async fn retire(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
) -> Result<Json<AreaView>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let area = areas::retire(&mut tx, &actor, id, state.now()).await?;
    tx.commit().await?;
    Ok(Json(area.into()))
}
