//! The dashboard: live totals, scans per hour today, bills in progress, the
//! stations and the recent refusals.

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
use crate::{counters, events, AppState};

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
    let chart = scans_chart(state).await?;
    let refusals = refusal_rows(state, signed).await?;
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
            chart => Value::from(Serde(&chart)),
            refusals => Value::from(Serde(&refusals)),
            refusal_days => REFUSAL_DAYS,
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

// ------------------------------------------------------------ scans per hour

/// The chart's drawing area, in SVG units (it scales to the page's width).
const CHART_W: f64 = 960.0;
const CHART_H: f64 = 170.0;
const PLOT_LEFT: f64 = 52.0;
const PLOT_RIGHT: f64 = 8.0;
const PLOT_TOP: f64 = 12.0;
const PLOT_BOTTOM: f64 = 28.0;

#[derive(Debug, Serialize)]
struct Bar {
    hour: u8,
    /// `14:00`.
    label: String,
    /// `14:00 to 15:00`.
    span: String,
    /// What hovering the hour says: `14:00 to 15:00: 37 scans`.
    title: String,
    count: i64,
    count_text: String,
    x: String,
    y: String,
    width: String,
    height: String,
    /// The whole hour's column, for hovering an empty hour.
    slot_x: String,
    slot_width: String,
    /// Every third hour is labelled under the axis.
    labelled: bool,
    label_x: String,
    current: bool,
    /// Not reached yet today.
    later: bool,
}

#[derive(Debug, Serialize)]
struct GridLine {
    y: String,
    label: String,
}

#[derive(Debug, Serialize)]
struct Chart {
    day: String,
    total: String,
    /// In words, for screen readers: the total and the busiest hour.
    summary: String,
    bars: Vec<Bar>,
    grid: Vec<GridLine>,
    width: f64,
    height: f64,
    plot_left: String,
    plot_right: String,
    axis_y: String,
    label_y: String,
}

/// The smallest of 1, 2, 5, 10, 20, 50, … at or above `n`: the chart's top.
fn nice_top(n: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= n {
                return step * m;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn scans(n: i64) -> String {
    format!("{} scan{}", count(n), if n == 1 { "" } else { "s" })
}

/// Today's scans (links and parents onto bills) hour by hour, in the
/// warehouse's day, from the hourly scan counters.
async fn scans_chart(state: &AppState) -> Result<Chart> {
    let now = state.now().time();
    let (day, this_hour) = counters::hour_of(now, state.settings.utc_offset);
    let hours = counters::scans_by_hour(&state.db, day).await?;
    Ok(draw_chart(day, this_hour, &hours))
}

fn draw_chart(day: time::Date, this_hour: u8, hours: &[i64; 24]) -> Chart {
    let px = |v: f64| format!("{v:.1}");
    let top = nice_top(hours.iter().copied().max().unwrap_or(0).max(1));
    let plot_w = CHART_W - PLOT_LEFT - PLOT_RIGHT;
    let plot_h = CHART_H - PLOT_TOP - PLOT_BOTTOM;
    let slot = plot_w / 24.0;
    let axis = PLOT_TOP + plot_h;
    let bars = (0u8..24)
        .zip(hours.iter().copied())
        .map(|(hour, n)| {
            let height = plot_h * n.max(0) as f64 / top as f64;
            let slot_x = PLOT_LEFT + slot * f64::from(hour);
            let span = format!("{hour:02}:00 to {:02}:00", (hour + 1) % 24);
            Bar {
                hour,
                label: format!("{hour:02}:00"),
                title: format!("{span}: {}", scans(n)),
                span,
                count: n,
                count_text: count(n),
                x: px(slot_x + slot * 0.15),
                y: px(axis - height),
                width: px(slot * 0.7),
                height: px(height),
                slot_x: px(slot_x),
                slot_width: px(slot),
                labelled: hour % 3 == 0,
                label_x: px(slot_x + slot / 2.0),
                current: hour == this_hour,
                later: hour > this_hour,
            }
        })
        .collect();
    let mut marks = vec![top];
    if top % 2 == 0 {
        marks.push(top / 2);
    }
    marks.push(0);
    let grid = marks
        .into_iter()
        .map(|v| GridLine {
            y: px(axis - plot_h * v as f64 / top as f64),
            label: count(v),
        })
        .collect();
    let total: i64 = hours.iter().sum();
    let busiest = (0u8..24)
        .zip(hours.iter().copied())
        .max_by_key(|(h, n)| (*n, std::cmp::Reverse(*h)))
        .filter(|(_, n)| *n > 0);
    let summary = match busiest {
        Some((h, n)) => format!(
            "{} today; the busiest hour was {h:02}:00 to {:02}:00 with {}.",
            scans(total),
            (h + 1) % 24,
            scans(n)
        ),
        None => "No scans yet today.".into(),
    };
    Chart {
        day: format!(
            "{} {} {}",
            day.day(),
            &day.month().to_string()[..3],
            day.year()
        ),
        total: count(total),
        summary,
        bars,
        grid,
        width: CHART_W,
        height: CHART_H,
        plot_left: px(PLOT_LEFT),
        plot_right: px(CHART_W - PLOT_RIGHT),
        axis_y: px(axis),
        label_y: px(axis + 18.0),
    }
}

// ------------------------------------------------------------ recent refusals

/// Refused scans the dashboard lists, and how far back it looks.
const REFUSALS_SHOWN: u32 = 20;
const REFUSAL_DAYS: i64 = 7;

#[derive(Debug, Serialize)]
struct RefusalRow {
    at: String,
    station: String,
    worker: String,
    scan: &'static str,
    code: String,
    reason: String,
}

fn scan_kind(kind: &str) -> &'static str {
    match kind {
        "link" => "Child into parent",
        "unlink" => "Undo",
        "bill_add" => "Parent onto bill",
        "bill_remove" => "Parent off bill",
        _ => "Scan",
    }
}

/// The last refused scans this user may see (see [`events::recent_refusals`]).
async fn refusal_rows(state: &AppState, signed: &Signed) -> Result<Vec<RefusalRow>> {
    let now = state.now();
    let since = crate::db::Ts::new(now.time() - time::Duration::days(REFUSAL_DAYS));
    let offset = state.settings.utc_offset;
    let today = counters::day_of(now.time(), offset);
    Ok(
        events::recent_refusals(&state.db, &signed.session.user, since, REFUSALS_SHOWN)
            .await?
            .into_iter()
            .map(|r| {
                let t = r.received_at.time();
                RefusalRow {
                    at: if counters::day_of(t, offset) == today {
                        pages::clock(t, offset)
                    } else {
                        pages::moment(t, offset)
                    },
                    station: r.station,
                    worker: r.worker.unwrap_or_else(|| "unknown".into()),
                    scan: scan_kind(&r.kind),
                    code: r.code.unwrap_or_default(),
                    reason: r.message,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_tops_are_round_numbers() {
        assert_eq!(nice_top(1), 1);
        assert_eq!(nice_top(3), 5);
        assert_eq!(nice_top(7), 10);
        assert_eq!(nice_top(37), 50);
        assert_eq!(nice_top(101), 200);
    }

    #[test]
    fn chart_bars_follow_the_counts() {
        let mut hours = [0; 24];
        hours[9] = 20;
        hours[14] = 37;
        let chart = draw_chart(time::macros::date!(2026 - 11 - 22), 14, &hours);
        assert_eq!(chart.total, "57");
        assert_eq!(chart.bars[14].title, "14:00 to 15:00: 37 scans");
        assert_eq!(chart.bars[9].height, "52.0", "20 of a top of 50");
        assert_eq!(chart.bars[0].height, "0.0");
        assert!(chart.bars[14].current && chart.bars[15].later && !chart.bars[13].later);
        assert_eq!(
            chart.summary,
            "57 scans today; the busiest hour was 14:00 to 15:00 with 37 scans."
        );
        assert_eq!(chart.day, "22 Nov 2026");
    }
}
