//! Registering stations, listing them, revoking them and giving them new keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use traitortrack_protocol::{CreateStation, StationCreated, StationSettings};

use serde::Serialize;
use time::OffsetDateTime;

use super::extract::{Admin, ApiJson, Meta, PathId, StationCaller};
use crate::error::Result;
use crate::{stations, AppState};

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    ApiJson(req): ApiJson<CreateStation>,
) -> Result<(StatusCode, Json<StationCreated>)> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let created = stations::create(&mut tx, &actor, &req.name, state.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The settings a station judges offline scans by.
#[tracing::instrument(skip_all)]
pub async fn settings(
    State(state): State<AppState>,
    StationCaller(station): StationCaller,
) -> Result<Json<StationSettings>> {
    stations::touch(&state.db, &station, state.now()).await?;
    Ok(Json(StationSettings {
        station: station.name,
        formats: state.settings.formats.spec().clone(),
        undo_window_secs: state.settings.undo_window.whole_seconds(),
        kg_per_child: state.settings.kg_per_child,
    }))
}

/// A registered station as an admin sees it.
#[derive(Debug, Serialize)]
pub struct StationView {
    pub id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The app version the station last reported, if it reports one.
    pub app_version: Option<String>,
    /// The unsent events the station last reported, if it reports them.
    pub queue_depth: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct StationList {
    pub items: Vec<StationView>,
}

#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>, _: Admin) -> Result<Json<StationList>> {
    let items = stations::list(&state.db).await?;
    Ok(Json(StationList {
        items: items
            .into_iter()
            .map(|s| StationView {
                id: s.id,
                name: s.name,
                created_at: s.created_at.time(),
                last_seen_at: s.last_seen_at.map(|t| t.time()),
                revoked_at: s.revoked_at.map(|t| t.time()),
                app_version: s.app_version,
                queue_depth: s.queue_depth,
            })
            .collect(),
    }))
}

/// Revokes a station: its key stops working and the logins made at it end.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
) -> Result<StatusCode> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    stations::revoke(&mut tx, &actor, id, state.now()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new key for a station (the old one stops working); answered once.
#[tracing::instrument(skip_all)]
pub async fn new_key(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    PathId(id): PathId,
) -> Result<Json<StationCreated>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let created = stations::new_key(&mut tx, &actor, id, state.now()).await?;
    tx.commit().await?;
    Ok(Json(created))
}
