//! Totals and health probes.

use axum::extract::State;
use axum::Json;
use traitortrack_protocol::Stats;

use super::extract::Caller;
use crate::counters;
use crate::error::{Error, Kind, Result};
use crate::on;
use crate::AppState;

#[tracing::instrument(skip_all)]
pub async fn stats(State(state): State<AppState>, _caller: Caller) -> Result<Json<Stats>> {
    let today = counters::day_of(state.now().time(), state.settings.utc_offset);
    state.stats.stats(&state.db, today).await.map(Json)
}

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str> {
    let answered: std::result::Result<i32, sqlx::Error> =
        on!(state.db.reader(), |c| sqlx::query_scalar("SELECT 1")
            .fetch_one(c)
            .await);
    answered.map(|_| "ready").map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        Error::refused(
            Kind::Unavailable,
            "database_unreachable",
            "The database does not answer.",
        )
    })
}
