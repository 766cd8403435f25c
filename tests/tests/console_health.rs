//! System health and the dashboard's scans per hour and recent refusals.
//!
//! First the in-memory request metrics on a controlled clock: percentiles of
//! known latencies, slots that roll over, refusals by code, fixed memory.
//! Then, in a real browser on each database: an admin opens the health page
//! and sees the database kind, the requests and the refusals the test caused
//! (and the page picks up a new refusal by itself); a dispatcher is refused
//! it; `GET /api/v1/health/details` answers the same figures; the dashboard's
//! chart puts today's scans in the right hour and its recent refusals list
//! the refusals the test caused, a dispatcher seeing only their area's.

use std::borrow::Cow;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_server::metrics::Metrics;
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::{
    fresh_url, link, on_each_backend, settings, Backend, TestServer, PASSWORD,
};

// ------------------------------------------------------------ the metrics

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn percentiles_of_known_latencies() {
    let m = Metrics::new();
    // 1 ms, 2 ms, …, 100 ms, all in the first 10 seconds.
    for i in 1..=100 {
        m.record_at(secs(5), 200, ms(i), &[]);
    }
    let s = m.summary_at(secs(9));
    let w = &s.windows[0];
    assert_eq!((w.minutes, w.requests, w.errors), (1, 100, 0));
    let p50 = w.p50_ms.expect("p50");
    let p99 = w.p99_ms.expect("p99");
    // Read at the end of a log-scale bin: never below, at most 12.5% above.
    assert!((50.0..=50.0 * 1.125).contains(&p50), "p50 {p50}");
    assert!((99.0..=99.0 * 1.125).contains(&p99), "p99 {p99}");
    // 9 s into the run: 100 requests over 9 s.
    assert!(
        (w.per_second - 100.0 / 9.0).abs() < 1e-9,
        "{}",
        w.per_second
    );
    assert_eq!(s.total, 100);

    // One slow request among many fast ones moves p99, not p50.
    let m = Metrics::new();
    for _ in 0..99 {
        m.record_at(secs(1), 200, Duration::from_micros(300), &[]);
    }
    m.record_at(secs(1), 200, secs(2), &[]);
    let w = &m.summary_at(secs(2)).windows[0];
    let (p50, p99) = (w.p50_ms.expect("p50"), w.p99_ms.expect("p99"));
    assert!((0.3..=0.3 * 1.125).contains(&p50), "p50 {p50}");
    assert!(p99 < 1.0, "99 of 100 were fast: {p99}");
    let p100 = m.summary_at(secs(2)).windows[0].p99_ms;
    assert_eq!(p100, Some(p99));

    // No requests: no percentiles.
    let empty = Metrics::new().summary_at(secs(30));
    assert_eq!(empty.windows[2].requests, 0);
    assert_eq!(empty.windows[2].p50_ms, None);
}

#[test]
fn slots_roll_over_on_the_clock() {
    let m = Metrics::new();
    for _ in 0..10 {
        m.record_at(secs(5), 200, ms(3), &[]);
    }
    for _ in 0..4 {
        m.record_at(secs(125), 200, ms(3), &[]);
    }
    let requests = |at: u64| -> Vec<u64> {
        m.summary_at(secs(at))
            .windows
            .iter()
            .map(|w| w.requests)
            .collect()
    };
    // Windows of 1, 5 and 15 minutes.
    assert_eq!(requests(130), vec![4, 14, 14]);
    // Past a minute, the 4 leave the 1-minute window; past 5 minutes the 10 leave the 5-minute one.
    assert_eq!(requests(190), vec![0, 14, 14]);
    assert_eq!(requests(305), vec![0, 4, 14]);
    // After 15 minutes nothing is left.
    assert_eq!(requests(5 + 900), vec![0, 0, 4]);
    assert_eq!(requests(125 + 900), vec![0, 0, 0]);
    // The ring comes round: the slot of second 5 now holds second 905 only.
    m.record_at(secs(905), 200, ms(3), &[]);
    assert_eq!(requests(906), vec![1, 1, 5]);
    assert_eq!(m.summary_at(secs(906)).total, 15, "since the start");
    // The rate counts the time the window covers (here: since the start).
    let m = Metrics::new();
    for _ in 0..10 {
        m.record_at(secs(5), 200, ms(3), &[]);
    }
    let w = &m.summary_at(secs(20)).windows[1];
    assert!(
        (w.per_second - 10.0 / 20.0).abs() < 1e-9,
        "{}",
        w.per_second
    );
}

#[test]
fn errors_by_status_and_by_code() {
    let m = Metrics::new();
    let full: &[Cow<'static, str>] = &[Cow::Borrowed("parent_full")];
    m.record_at(secs(1), 200, ms(1), &[]);
    m.record_at(secs(1), 200, ms(1), full); // a batch with a refused scan
    m.record_at(
        secs(2),
        200,
        ms(1),
        &[Cow::Borrowed("parent_full"), Cow::Owned("bad_code".into())],
    );
    m.record_at(secs(3), 404, ms(1), &[Cow::Borrowed("not_found")]);
    m.record_at(secs(3), 409, ms(1), full);
    m.record_at(secs(3), 500, ms(1), &[Cow::Borrowed("internal_error")]);
    let s = m.summary_at(secs(4));
    let statuses: Vec<(u16, &str, u64)> = s
        .by_status
        .iter()
        .map(|c| (c.status, c.reason, c.count))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (404, "Not Found", 1),
            (409, "Conflict", 1),
            (500, "Internal Server Error", 1)
        ]
    );
    let codes: Vec<(&str, u64)> = s
        .by_code
        .iter()
        .map(|c| (c.code.as_str(), c.count))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("parent_full", 3),
            ("bad_code", 1),
            ("internal_error", 1),
            ("not_found", 1)
        ]
    );
    assert_eq!(s.windows[0].errors, 3);
    assert_eq!(s.windows[0].requests, 6);

    // Many distinct codes stay within a fixed size: the rest count as "other".
    let m = Metrics::new();
    let codes: Vec<Cow<'static, str>> = (0..100).map(|i| Cow::Owned(format!("code_{i}"))).collect();
    m.record_at(secs(1), 400, ms(1), &codes);
    for status in 400..450 {
        m.record_at(secs(1), status, ms(1), &[]);
    }
    let s = m.summary_at(secs(2));
    assert_eq!(s.by_code.len(), 33, "32 codes and other");
    let other = s.by_code.iter().find(|c| c.code == "other").expect("other");
    assert_eq!(other.count, 68);
    assert_eq!(s.by_code.iter().map(|c| c.count).sum::<u64>(), 100);
    assert_eq!(s.by_status.len(), 17, "16 statuses and other");
    assert_eq!(s.by_status.iter().map(|c| c.count).sum::<u64>(), 51);
    assert_eq!(s.windows[0].errors, 51);
}

/// What recording costs: printed, not asserted (timings vary with the machine).
#[test]
fn recording_cost_per_request() {
    let m = std::sync::Arc::new(Metrics::new());
    let codes: &[Cow<'static, str>] = &[];
    let n = 200_000u32;
    let start = std::time::Instant::now();
    for i in 0..n {
        m.record(200, Duration::from_micros(u64::from(i % 5000)), codes);
    }
    let one = start.elapsed() / n;
    // The same from 8 threads at once, on one slot's mutex.
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..n / 8 {
                    m.record(200, Duration::from_micros(u64::from(i % 5000)), &[]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let contended = start.elapsed() / n;
    eprintln!(
        "metrics: {one:?} a request from one thread; 8 threads at once: {contended:?} of wall time a request"
    );
    assert_eq!(m.summary().total, u64::from(n) * 2);
}

// ------------------------------------------------------------ the pages

/// The health page's figures as shown.
const HEALTH_LOOK: &str = r#"
const txt = (s) => { const e = document.querySelector(s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
const rows = (s) => Array.from(document.querySelectorAll(s)).map((r) => Array.from(r.cells).map((c) => c.textContent.trim()));
return {
  h1: txt('h1'),
  kind: txt('#db-kind'),
  size: txt('#db-size'),
  wal: txt('#db-wal'),
  version: txt('#version'),
  uptime: txt('#uptime'),
  rss: txt('#memory-rss'),
  peak: txt('#memory-peak'),
  total: txt('#requests-total'),
  unsealed: txt('#audit-unsealed'),
  windows: rows('#request-windows tbody tr'),
  pools: rows('#pools tbody tr'),
  statuses: rows('#errors-by-status tbody tr'),
  codes: rows('#errors-by-code tbody tr'),
  totals: Array.from(document.querySelectorAll('#health-totals > div')).map((d) => d.innerText.trim().replace(/\s+/g, ' ')),
  live: txt('#health-live'),
  live_class: document.querySelector('#health-live') ? document.querySelector('#health-live').className : null,
  nav: Array.from(document.querySelectorAll('.menu a')).map((a) => a.textContent.trim()),
  current: txt('.menu a[aria-current=page]'),
};
"#;

/// The dashboard's chart and refusals as shown.
const DASHBOARD_LOOK: &str = r#"
const hours = Array.from(document.querySelectorAll('#scans-chart g.hour')).map((g) => ({
  hour: Number(g.dataset.hour),
  title: g.querySelector('title').textContent.trim(),
  height: Number(g.querySelector('rect.bar').getAttribute('height')),
  current: g.classList.contains('current'),
}));
const rows = (s) => Array.from(document.querySelectorAll(s)).map((r) => Array.from(r.cells).map((c) => c.textContent.trim().replace(/\s+/g, ' ')));
const q = (s) => document.querySelector(s);
return {
  h1: q('h1') ? q('h1').textContent.trim() : null,
  hours,
  chart_heading: q('#chart-heading') ? q('#chart-heading').textContent.trim().replace(/\s+/g, ' ') : null,
  chart_desc: q('#chart-desc') ? q('#chart-desc').textContent.trim() : null,
  chart_role: q('#scans-chart') ? q('#scans-chart').getAttribute('role') : null,
  hour_table: rows('#scans-by-hour tbody tr'),
  refusals: rows('#recent-refusals tbody tr'),
  no_refusals: q('#no-refusals') ? q('#no-refusals').textContent.trim() : null,
};
"#;

fn look(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// The cells of the rows whose first cell is `first`.
fn row<'a>(rows: &'a Value, first: &str) -> Option<&'a Vec<Value>> {
    rows.as_array()?
        .iter()
        .filter_map(Value::as_array)
        .find(|r| r.first().and_then(Value::as_str) == Some(first))
}

fn cell(r: Option<&Vec<Value>>, i: usize) -> String {
    r.and_then(|r| r.get(i))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn health_page_shows_the_figures(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("Dock 1", &["ravi"]).await;

    // Requests the test makes: 31 children into a parent of 30 (the last is
    // refused as parent_full), and a bag that does not exist (404 bag_not_found).
    let batch: Vec<Value> = (1..=31)
        .map(|i| link("ravi", "SB00001", &format!("C{i:04}")))
        .collect();
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][30]["code"], "parent_full", "{body}");
    let (status, body) = s.get(&s.admin_token, "/api/v1/bags/SB99999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "bag_not_found");

    // The same figures as JSON.
    let (status, h) = s.get(&s.admin_token, "/api/v1/health/details").await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["database"]["kind"], backend.as_str(), "{h}");
    assert!(
        h["database"]["size_bytes"].as_i64().is_some_and(|b| b > 0),
        "{h}"
    );
    let pools = h["database"]["pools"].as_array().expect("pools");
    let names: Vec<&str> = pools.iter().filter_map(|p| p["name"].as_str()).collect();
    match backend {
        Backend::Postgres => {
            assert_eq!(names, ["main"]);
            assert!(h["database"]["wal_bytes"].is_null(), "{h}");
        }
        Backend::Sqlite => {
            assert_eq!(names, ["writer", "readers"]);
            assert!(h["database"]["wal_bytes"].as_i64().is_some(), "{h}");
        }
    }
    for p in pools {
        assert!(p["max"].as_u64().is_some_and(|m| m >= 1), "{p}");
        assert!(
            p["in_use"].as_u64().is_some() && p["idle"].as_u64().is_some(),
            "{p}"
        );
    }
    let windows = h["requests"]["windows"].as_array().expect("windows");
    let minutes: Vec<u64> = windows
        .iter()
        .filter_map(|w| w["minutes"].as_u64())
        .collect();
    assert_eq!(minutes, [1, 5, 15]);
    for w in windows {
        assert!(w["requests"].as_u64().is_some_and(|n| n >= 4), "{w}");
        assert!(w["per_second"].as_f64().is_some_and(|r| r > 0.0), "{w}");
        assert!(
            w["p50_ms"].as_f64().is_some() && w["p99_ms"].as_f64().is_some(),
            "{w}"
        );
        assert!(w["p50_ms"].as_f64() <= w["p99_ms"].as_f64(), "{w}");
        assert!(w["errors"].as_u64().is_some_and(|n| n >= 1), "the 404: {w}");
    }
    let by_code = |h: &Value, code: &str| {
        h["requests"]["by_code"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["code"] == code))
            .and_then(|c| c["count"].as_u64())
    };
    assert_eq!(by_code(&h, "parent_full"), Some(1), "{h}");
    assert_eq!(by_code(&h, "bag_not_found"), Some(1), "{h}");
    let not_found = h["requests"]["by_status"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["status"] == 404))
        .cloned();
    assert_eq!(
        not_found,
        Some(json!({"status": 404, "reason": "Not Found", "count": 1})),
        "{h}"
    );
    assert!(
        h["memory"]["rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 1 << 20),
        "{h}"
    );
    assert!(
        h["memory"]["peak_rss_bytes"].as_u64() >= h["memory"]["rss_bytes"].as_u64(),
        "{h}"
    );
    assert!(
        h["audit"]["unsealed"].as_i64().is_some_and(|n| n >= 0),
        "{h}"
    );
    assert_eq!(h["totals"]["links"], 30, "{h}");
    assert!(h["uptime_seconds"].as_u64().is_some(), "{h}");
    // Only admins.
    let dora = s.login("dora", None).await;
    let (status, body) = s.get(&dora, "/api/v1/health/details").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["message"],
        "A dispatcher cannot see the system's health (it is for admins)."
    );

    let Some(mut b) = Browser::open(&s, "health").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/health").await;
    b.page("health").await;
    let seen = b.js(HEALTH_LOOK).await;
    assert_eq!(look(&seen, "h1"), "System health", "{seen}");
    assert_eq!(seen["current"], "Health", "{seen}");
    assert_eq!(
        look(&seen, "kind"),
        match backend {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        }
    );
    assert!(
        look(&seen, "version").starts_with(env!("CARGO_PKG_VERSION")),
        "{seen}"
    );
    let total: u64 = look(&seen, "total")
        .replace(',', "")
        .parse()
        .expect("a count");
    assert!(total >= 5, "{seen}");
    let one_minute = row(&seen["windows"], "1 minute");
    let requests: u64 = cell(one_minute, 1)
        .replace(',', "")
        .parse()
        .expect("a count");
    assert!(requests > 0, "{seen}");
    assert!(cell(one_minute, 3).ends_with(" ms"), "p50: {seen}");
    assert!(cell(one_minute, 4).ends_with(" ms"), "p99: {seen}");
    assert_eq!(cell(row(&seen["codes"], "parent_full"), 1), "1", "{seen}");
    assert_eq!(cell(row(&seen["codes"], "bag_not_found"), 1), "1", "{seen}");
    assert_eq!(
        cell(row(&seen["statuses"], "404"), 1),
        "Not Found",
        "{seen}"
    );
    for key in ["rss", "peak", "size"] {
        let shown = look(&seen, key);
        assert!(
            shown.ends_with("MB") || shown.ends_with("KB"),
            "{key}: {seen}"
        );
    }
    let pool_names: Vec<String> = seen["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(pool_names, names, "{seen}");
    assert!(
        seen["totals"]
            .to_string()
            .contains("Children in a parent 30"),
        "{seen}"
    );

    // The page refreshes by itself: a new refusal shows within 5 s.
    let result = s.event(&key, link("ravi", "SB00002", "C!?")).await;
    assert_eq!(result["status"], "rejected", "{result}");
    let bad = result["code"].as_str().expect("a code").to_string();
    let seen = b
        .wait_until(
            "the new refusal on the health page",
            Duration::from_millis(5_500),
            HEALTH_LOOK,
            |v| row(&v["codes"], &bad).is_some(),
        )
        .await;
    assert!(look(&seen, "live_class").contains("on"), "{seen}");
    b.shot("health-refreshed").await;
    // The whole page at once, for the eye.
    b.set_window(1366, 1800).await;
    b.page("health-whole").await;

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/health").await;
    b.page("health-tablet").await;
    b.set_window(1366, 768).await;
    b.assert_clean_console().await;

    // A dispatcher: no menu entry, and the page is refused.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    let seen = b.log_in("dora", PASSWORD).await;
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Notifications"]),
        "{seen}"
    );
    b.visit("/console/health").await;
    let seen = b.page("health-forbidden").await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    assert_eq!(
        text(&seen, "refusal"),
        "A dispatcher cannot open this page (it is for admins)."
    );
    let cookie = b.session_cookie().await;
    let resp = plain_http()
        .get(s.url("/console/health"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    b.assert_clean_console().await;
}
on_each_backend!(health_page_shows_the_figures);

async fn dashboard_charts_scans_and_lists_refusals(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let mut config = settings(&url);
    // A warehouse day that is not UTC's.
    config.utc_offset = time::macros::offset!(+05:30);
    let s = TestServer::start_with(config).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("sam", Role::Dispatcher, Some("south")).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("Dock 1", &["ravi", "sam"]).await;
    let hour = || s.clock.now().time().to_offset(s.settings.utc_offset).hour();

    // 12 scans: 11 children and one more than SB00001 takes (capacity 30)
    // would be refused, so fill it with 30 first.
    let before = hour();
    let mut batch: Vec<Value> = (1..=30)
        .map(|i| link("ravi", "SB00001", &format!("C{i:04}")))
        .collect();
    batch.extend((31..=35).map(|i| link("ravi", "SB00002", &format!("C{i:04}"))));
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Refused: ravi's 31st child (north), and sam (south) scanning into a north bag.
    let full = s.event(&key, link("ravi", "SB00001", "C0099")).await;
    assert_eq!(full["code"], "parent_full", "{full}");
    let other_area = s.event(&key, link("sam", "SB00002", "C0098")).await;
    assert_eq!(other_area["status"], "rejected", "{other_area}");
    let other_code = other_area["code"].as_str().expect("code").to_string();
    let after = hour();
    let scans = s.stats().await["scans_today"]
        .as_i64()
        .expect("scans today");
    assert_eq!(scans, 35);

    let Some(mut b) = Browser::open(&s, "dashboard-health").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/").await;
    b.page("dashboard-chart-admin").await;
    b.set_window(1366, 1500).await;
    b.page("dashboard-chart-admin-whole").await;
    b.set_window(1366, 768).await;
    let seen = b.js(DASHBOARD_LOOK).await;
    let hours = seen["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24, "{seen}");
    let bar = |h: u8| &hours[usize::from(h)];
    let title = |h: u8| look(bar(h), "title");
    let count_in = |h: u8| -> i64 {
        title(h)
            .rsplit(": ")
            .next()
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or(-1)
    };
    if before == after {
        let next = (before + 1) % 24;
        assert_eq!(
            title(before),
            format!("{before:02}:00 to {next:02}:00: 35 scans"),
            "{seen}"
        );
        assert!(
            bar(before)["height"].as_f64().is_some_and(|h| h > 0.0),
            "{seen}"
        );
    } else {
        // The hour turned while the test ran: the scans are in one of the two.
        assert_eq!(count_in(before) + count_in(after), 35, "{seen}");
    }
    assert_eq!(
        (0..24).map(count_in).sum::<i64>(),
        35,
        "every hour's title: {seen}"
    );
    assert_eq!(bar(after)["current"], true, "{seen}");
    assert_eq!(seen["chart_role"], "img");
    assert!(
        look(&seen, "chart_desc").starts_with("35 scans today"),
        "{seen}"
    );
    assert!(look(&seen, "chart_heading").contains("35 in all"), "{seen}");
    // The text alternative: a table of the hours so far.
    assert_eq!(
        seen["hour_table"].as_array().map(Vec::len),
        Some(usize::from(after) + 1),
        "{seen}"
    );

    // Admins see every refusal, newest first.
    let refusals = seen["refusals"].as_array().expect("refusals").clone();
    assert_eq!(refusals.len(), 2, "{seen}");
    let r = |i: usize, c: usize| refusals[i][c].as_str().unwrap_or_default().to_string();
    assert_eq!(
        (r(0, 1), r(0, 2)),
        ("Dock 1".into(), "sam".into()),
        "{seen}"
    );
    assert!(r(0, 4).contains(&other_code), "{seen}");
    assert_eq!(
        (r(1, 1), r(1, 2), r(1, 3)),
        ("Dock 1".into(), "ravi".into(), "Child into parent".into())
    );
    assert_eq!(r(1, 4), "SB00001 is full: 30 of 30 parent_full", "{seen}");
    assert_eq!(r(1, 0).len(), 8, "a time of day today: {seen}");
    b.assert_clean_console().await;

    // A dispatcher of the north sees the north's refusals, not the south's.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    b.log_in("dora", PASSWORD).await;
    b.visit("/console/").await;
    b.page("dashboard-chart-dispatcher").await;
    let seen = b.js(DASHBOARD_LOOK).await;
    let refusals = seen["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 1, "{seen}");
    assert_eq!(refusals[0][2], "ravi", "{seen}");
    assert_eq!(
        seen["hours"].as_array().map(Vec::len),
        Some(24),
        "the chart too"
    );
    b.assert_clean_console().await;

    // Sam, in the south, sees only his own.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    b.log_in("sam", PASSWORD).await;
    b.visit("/console/").await;
    let seen = b.js(DASHBOARD_LOOK).await;
    let refusals = seen["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 1, "{seen}");
    assert_eq!(refusals[0][2], "sam", "{seen}");
}
on_each_backend!(dashboard_charts_scans_and_lists_refusals);

async fn no_refusals_and_no_scans_read_plainly(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let Some(mut b) = Browser::open(&s, "dashboard-empty").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/").await;
    b.page("dashboard-empty").await;
    let seen = b.js(DASHBOARD_LOOK).await;
    assert_eq!(look(&seen, "chart_desc"), "No scans yet today.", "{seen}");
    assert_eq!(
        look(&seen, "no_refusals"),
        "No scans were refused in the last 7 days.",
        "{seen}"
    );
    b.assert_clean_console().await;
}
on_each_backend!(no_refusals_and_no_scans_read_plainly);
