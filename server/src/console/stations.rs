//! The stations page (admins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::access::AdminPage;
use super::frame;
use super::pages::{self, page, Refusal};
use crate::error::Result;
use crate::{stations, AppState};

/// A station seen this recently counts as active.
pub const ACTIVE_MINUTES: i64 = 5;

#[derive(Debug, Serialize)]
pub struct StationRow {
    name: String,
    /// `active`, `quiet`, `never` or `revoked`: also the CSS class.
    pub state: &'static str,
    state_label: &'static str,
    seen: String,
    seen_at: String,
    registered: String,
}

pub async fn station_rows(state: &AppState) -> Result<Vec<StationRow>> {
    let now = state.now().time();
    let offset = state.settings.utc_offset;
    Ok(stations::list(&state.db)
        .await?
        .into_iter()
        .map(|s| {
            let seen = s.last_seen_at.map(|t| t.time());
            let (st, label) = match (s.revoked_at, seen) {
                (Some(_), _) => ("revoked", "Revoked"),
                (None, None) => ("never", "Never seen"),
                (None, Some(t)) if now - t <= time::Duration::minutes(ACTIVE_MINUTES) => {
                    ("active", "Active")
                }
                (None, Some(_)) => ("quiet", "Quiet"),
            };
            StationRow {
                name: s.name,
                state: st,
                state_label: label,
                seen: seen.map_or_else(|| "never".into(), |t| pages::ago(t, now)),
                seen_at: seen.map_or_else(String::new, |t| pages::moment(t, offset)),
                registered: pages::moment(s.created_at.time(), offset),
            }
        })
        .collect())
}

/// The dashboard: live totals for everyone; bills in progress for billers
/// and admins; the stations for admins.

/// Every registered station with when it was last seen (admins).
#[tracing::instrument(skip_all)]
pub async fn stations(State(state): State<AppState>, AdminPage(signed): AdminPage) -> Response {
    match station_rows(&state).await {
        Ok(rows) => page(
            StatusCode::OK,
            "stations.html",
            &frame(&signed, "Stations", "stations"),
            context! {
                stations => Value::from(Serde(&rows)),
                active_minutes => ACTIVE_MINUTES,
            },
        ),
        Err(e) => Refusal::from(e).into_response(),
    }
}

