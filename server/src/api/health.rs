//! The system's health in figures (admins).

use axum::extract::State;
use axum::Json;

use crate::console::Polling;
use crate::error::Result;
use crate::health::{self, Health};
use crate::AppState;

/// The health figures. Asking does not count as use of the login, so a
/// health page left open (or a monitor polling it) keeps no login alive.
#[tracing::instrument(skip_all)]
pub async fn details(
    State(state): State<AppState>,
    Polling(session): Polling,
) -> Result<Json<Health>> {
    health::details(
        &state.db,
        &state.settings,
        &state.metrics,
        &session.user,
        state.now(),
    )
    .await
    .map(Json)
}
