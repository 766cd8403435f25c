//! The station event pipeline's door.

use axum::extract::State;
use axum::Json;
use traitortrack_protocol::{EventBatch, EventResults};

use super::extract::{ApiJson, Meta, StationCaller};
use crate::error::Result;
use crate::{events, AppState};

#[tracing::instrument(skip_all, fields(station = %station.name, events = batch.events.len()))]
pub async fn post(
    State(state): State<AppState>,
    StationCaller(station): StationCaller,
    Meta(actor): Meta,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<EventResults>> {
    let results = events::apply_batch(
        &state.db,
        &state.settings,
        &station,
        &actor,
        &batch.events,
        state.now(),
    )
    .await?;
    Ok(Json(EventResults { results }))
}
