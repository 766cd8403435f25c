//! The system health page (admins): the figures of [`crate::health`], as
//! people read them. The page asks `GET /api/v1/health/details` every few
//! seconds (console.js) and writes the fresh figures in place, formatted as
//! the functions here format them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::access::AdminPage;
use super::frame;
use super::pages::{self, count, page, Refusal};
use crate::health::{self, Health};
use crate::AppState;

/// How often the page asks for fresh figures, in milliseconds.
const REFRESH_MS: u32 = 5000;

/// `512 bytes`, `12.5 KB`, `340.2 MB`, `1.25 GB` (1 KB = 1,024 bytes).
pub fn bytes(n: i64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if n.abs() < 1024 {
        format!("{n} bytes")
    } else if f.abs() < K * K {
        format!("{:.1} KB", f / K)
    } else if f.abs() < K * K * K {
        format!("{:.1} MB", f / (K * K))
    } else {
        format!("{:.2} GB", f / (K * K * K))
    }
}

/// A latency: `0.25 ms`, `12.0 ms`; a dash when there was no request.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1.0 => format!("{ms:.2} ms"),
        Some(ms) => format!("{ms:.1} ms"),
    }
}

/// Requests a second: `0.3`, `125.0`.
pub fn rate(per_second: f64) -> String {
    format!("{per_second:.1}")
}

/// How long the server has run: `45 s`, `12 min 5 s`, `3 h 12 min`, `2 days 4 h`.
pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        (1, _, _) => format!("1 day {h} h"),
        _ => format!("{d} days {h} h"),
    }
}

#[derive(Debug, Serialize)]
struct WindowRow {
    minutes: u64,
    requests: String,
    per_second: String,
    p50: String,
    p99: String,
    errors: String,
}

#[derive(Debug, Serialize)]
struct Shown {
    uptime: String,
    size: String,
    wal: Option<String>,
    rss: String,
    peak_rss: String,
    unsealed: String,
    total_requests: String,
    windows: Vec<WindowRow>,
    totals: Vec<(&'static str, &'static str, String)>,
}

fn shown(h: &Health) -> Shown {
    let opt_bytes = |b: Option<u64>| b.map_or_else(|| "—".into(), |b| bytes(b as i64));
    let t = &h.totals;
    Shown {
        uptime: uptime(h.uptime_seconds),
        size: bytes(h.database.size_bytes),
        wal: h.database.wal_bytes.map(bytes),
        rss: opt_bytes(h.memory.rss_bytes),
        peak_rss: opt_bytes(h.memory.peak_rss_bytes),
        unsealed: count(h.audit.unsealed),
        total_requests: count(h.requests.total as i64),
        windows: h
            .requests
            .windows
            .iter()
            .map(|w| WindowRow {
                minutes: w.minutes,
                requests: count(w.requests as i64),
                per_second: rate(w.per_second),
                p50: millis(w.p50_ms),
                p99: millis(w.p99_ms),
                errors: count(w.errors as i64),
            })
            .collect(),
        totals: [
            ("bags", "All bags", t.bags),
            ("parents", "Parent bags", t.parents),
            ("children", "Child bags", t.children),
            ("links", "Children in a parent", t.links),
            ("bills.new", "New bills", t.bills.new),
            (
                "bills.in_progress",
                "Bills in progress",
                t.bills.in_progress,
            ),
            ("bills.ready", "Bills ready to close", t.bills.ready),
            ("bills.closed", "Closed bills", t.bills.closed),
        ]
        .into_iter()
        .map(|(key, label, n)| (key, label, count(n)))
        .collect(),
    }
}

/// The system health page (admins).
#[tracing::instrument(skip_all)]
pub async fn health(State(state): State<AppState>, AdminPage(signed): AdminPage) -> Response {
    let now = state.now();
    let details = health::details(
        &state.db,
        &state.settings,
        &state.metrics,
        &signed.session.user,
        now,
    )
    .await;
    match details {
        Ok(h) => page(
            StatusCode::OK,
            "health.html",
            &frame(&signed, "System health", "health"),
            context! {
                h => Value::from(Serde(&h)),
                shown => Value::from(Serde(&shown(&h))),
                updated => pages::clock(now.time(), state.settings.utc_offset),
                refresh_every => REFRESH_MS,
                offset_minutes => state.settings.utc_offset.whole_minutes(),
            },
        ),
        Err(e) => Refusal::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_plainly() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(12_800), "12.5 KB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.50 GB");
        assert_eq!(millis(None), "—");
        assert_eq!(millis(Some(0.256)), "0.26 ms");
        assert_eq!(millis(Some(12.0)), "12.0 ms");
        assert_eq!(rate(2.0 / 3.0), "0.7");
        assert_eq!(uptime(45), "45 s");
        assert_eq!(uptime(12 * 60 + 5), "12 min 5 s");
        assert_eq!(uptime(3 * 3600 + 12 * 60), "3 h 12 min");
        assert_eq!(uptime(86_400 + 4 * 3600), "1 day 4 h");
        assert_eq!(uptime(2 * 86_400 + 4 * 3600), "2 days 4 h");
    }
}
