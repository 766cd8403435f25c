//! Registering stations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use traitortrack_protocol::{CreateStation, Role, StationCreated, StationSettings};

use super::extract::{ApiJson, Caller, Meta, StationCaller};
use crate::error::Result;
use crate::{stations, AppState};

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    ApiJson(req): ApiJson<CreateStation>,
) -> Result<(StatusCode, Json<StationCreated>)> {
    caller.0.user.require(&[Role::Admin], "register stations")?;
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let created = stations::create(&mut tx, &actor, &req.name, state.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The settings a station judges offline scans by.
pub async fn settings(
    State(state): State<AppState>,
    StationCaller(station): StationCaller,
) -> Json<StationSettings> {
    Json(StationSettings {
        station: station.name,
        formats: state.settings.formats.spec().clone(),
        undo_window_secs: state.settings.undo_window.whole_seconds(),
        kg_per_child: state.settings.kg_per_child,
    })
}
