//! The dashboard: live totals, bills in progress and the stations.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;
use traitortrack_protocol::{BillStatus, BillSummary, Stats};

use super::access::{Polling, Ready, Signed};
use super::pages::{self, count, page, Frame, Me, Refusal};
use super::stations::{station_rows, ACTIVE_MINUTES};
use super::{frame, note};
use crate::bills::{self, BillFilter};
use crate::error::Result;
use crate::{counters, AppState};

/// How often the dashboard asks for fresh totals, in milliseconds.
const LIVE_EVERY_MS: u32 = 5000;
/// Bills of each open status the dashboard lists.
const DASHBOARD_BILLS: u32 = 20;

/// One total on the dashboard; `key` names it in `/console/live.json`.
#[derive(Debug, Serialize)]
struct Tile {
    key: &'static str,
    label: &'static str,
    group: &'static str,
    value: String,
}

/// The totals of `GET /api/v1/stats`, as the dashboard names them.
fn totals(stats: &Stats) -> [(&'static str, &'static str, &'static str, i64); 10] {
    [
        ("scans_today", "Scans today", "bags", stats.scans_today),
        ("parents", "Parent bags", "bags", stats.parents),
        (
            "complete_parents",
            "Full parent bags",
            "bags",
            stats.complete_parents,
        ),
        ("children", "Child bags", "bags", stats.children),
        ("links", "Children in a parent", "bags", stats.links),
        ("bags", "All bags", "bags", stats.bags),
        ("bills_new", "New", "bills", stats.bills.new),
        (
            "bills_in_progress",
            "In progress",
            "bills",
            stats.bills.in_progress,
        ),
        ("bills_ready", "Ready to close", "bills", stats.bills.ready),
        ("bills_closed", "Closed", "bills", stats.bills.closed),
    ]
}

async fn current_totals(state: &AppState) -> Result<Stats> {
    let today = counters::day_of(state.now().time(), state.settings.utc_offset);
    counters::stats(&state.db, today).await
}

#[derive(Debug, Serialize)]
struct BillRow {
    code: String,
    status: &'static str,
    ready: bool,
    parents: u32,
    capacity: u32,
    destination: String,
    vehicle: String,
}

impl BillRow {
    fn of(b: BillSummary) -> BillRow {
        BillRow {
            ready: b.status == BillStatus::Ready,
            status: match b.status {
                BillStatus::New => "New",
                BillStatus::InProgress => "In progress",
                BillStatus::Ready => "Ready to close",
                BillStatus::Closed => "Closed",
            },
            code: b.code,
            parents: b.parent_count,
            capacity: b.capacity,
            destination: b.destination.unwrap_or_default(),
            vehicle: b.vehicle_number.unwrap_or_default(),
        }
    }
}

/// Open bills with parents on them: in progress, then ready to close.
async fn bills_in_progress(state: &AppState, signed: &Signed) -> Result<Vec<BillRow>> {
    let mut rows = Vec::new();
    for status in [BillStatus::InProgress, BillStatus::Ready] {
        let page = bills::list(
            &state.db,
            &state.settings,
            &signed.session.user,
            BillFilter {
                status: Some(status),
                limit: DASHBOARD_BILLS,
                ..BillFilter::default()
            },
        )
        .await?;
        rows.extend(page.items.into_iter().map(BillRow::of));
    }
    Ok(rows)
}

#[tracing::instrument(skip_all)]
pub async fn dashboard(
    State(state): State<AppState>,
    Ready(signed): Ready,
    RawQuery(query): RawQuery,
) -> Response {
    match dashboard_page(&state, &signed, note(query.as_deref())).await {
        Ok(r) => r,
        Err(e) => Refusal::from(e).into_response(),
    }
}

async fn dashboard_page(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
) -> Result<Response> {
    let stats = current_totals(state).await?;
    let tiles: Vec<Tile> = totals(&stats)
        .into_iter()
        .map(|(key, label, group, n)| Tile {
            key,
            label,
            group,
            value: count(n),
        })
        .collect();
    let me = Me::of(&signed.session.user);
    let bills = if me.is_billing {
        Some(bills_in_progress(state, signed).await?)
    } else {
        None
    };
    let stations = if me.is_admin {
        Some(station_rows(state).await?)
    } else {
        None
    };
    let active = stations
        .as_ref()
        .map_or(0, |s| s.iter().filter(|r| r.state == "active").count());
    let frame = Frame {
        notice,
        ..frame(signed, "Dashboard", "dashboard")
    };
    Ok(page(
        StatusCode::OK,
        "dashboard.html",
        &frame,
        context! {
            tiles => Value::from(Serde(&tiles)),
            bills => Value::from(Serde(&bills)),
            stations => Value::from(Serde(&stations)),
            active,
            active_minutes => ACTIVE_MINUTES,
            updated => pages::clock(state.now().time(), state.settings.utc_offset),
            live_every => LIVE_EVERY_MS,
        },
    ))
}

/// What the dashboard's script polls: the totals by their tile keys.
#[derive(Debug, Serialize)]
pub struct Live {
    pub totals: std::collections::BTreeMap<&'static str, i64>,
    /// The server's time of day, as the page shows it.
    pub updated: String,
}

#[tracing::instrument(skip_all)]
pub async fn live(State(state): State<AppState>, _caller: Polling) -> Result<Json<Live>> {
    let stats = current_totals(&state).await?;
    Ok(Json(Live {
        totals: totals(&stats)
            .into_iter()
            .map(|(key, _, _, n)| (key, n))
            .collect(),
        updated: pages::clock(state.now().time(), state.settings.utc_offset),
    }))
}

