//! The station event pipeline's door.

use axum::extract::State;
use axum::{Extension, Json};
use traitortrack_protocol::{EventBatch, EventResults, EventStatus};

use super::extract::{ApiJson, Meta, StationCaller};
use crate::error::Result;
use crate::metrics::RefusalCodes;
use crate::{events, AppState};

#[tracing::instrument(skip_all, fields(station = %station.name, events = batch.events.len()))]
pub async fn post(
    State(state): State<AppState>,
    StationCaller(station): StationCaller,
    Meta(actor): Meta,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<(Extension<RefusalCodes>, Json<EventResults>)> {
    let results = events::apply_batch(
        &state.db,
        &state.settings,
        &state.events,
        &station,
        &actor,
        batch.events,
        state.now(),
    )
    .await?;
    // The request metrics count refused scans by their code.
    let refused = results
        .iter()
        .filter(|r| r.status == EventStatus::Rejected)
        .filter_map(|r| r.code.clone().map(Into::into))
        .collect();
    Ok((
        Extension(RefusalCodes(refused)),
        Json(EventResults { results }),
    ))
}
