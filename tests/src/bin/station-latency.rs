//! Measures the station core against a server on loopback: the online
//! scan-to-verdict latency over 1,000 scans, and the time to drain 10,000
//! scans queued while the server was unreachable, and how soon a station
//! notices a server that comes back after an outage.
//!
//! `cargo run --release -p traitortrack-tests --bin station-latency [-- --database postgres://…]`
//! (default: a fresh SQLite file). Prints a table; exits non-zero if a scan
//! did not get the verdict it should.

use std::time::{Duration, Instant};

use traitortrack_protocol::Role;
use traitortrack_station_core::sounds::Sounds;
use traitortrack_station_core::station::{Station, StationConfig, Verdict};
use traitortrack_tests::process::Proxy;
use traitortrack_tests::{fresh_sqlite_url, settings, TestServer, PASSWORD};

const ONLINE_SCANS: usize = 1_000;
const QUEUED_SCANS: usize = 10_000;
const OUTAGE_SECS: u64 = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = match args.iter().position(|a| a == "--database") {
        Some(i) => args
            .get(i + 1)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("--database needs an address"))?,
        None => fresh_sqlite_url(),
    };
    let server = TestServer::start_with(settings(&url)).await;
    server
        .add_user("ravi", Role::Dispatcher, Some("north"))
        .await;
    let key = server.station("bench-1").await;
    let proxy = Proxy::start(server.addr).await;
    let data_dir = std::env::temp_dir().join(format!("tt-latency-{}", uuid::Uuid::now_v7()));
    let config = StationConfig {
        server_url: proxy.base(),
        station_key: key,
        data_dir: data_dir.clone(),
        outbox_max_bytes: None,
        language: "en".into(),
        scanner: None,
        station_name: None,
    };
    let station = Station::open(&config, Sounds::silent())?;
    let worker = station.login("ravi", PASSWORD).await?;

    // Online: each scan stored, sent and answered before the next.
    let mut times = Vec::with_capacity(ONLINE_SCANS);
    for n in 0..ONLINE_SCANS {
        let parent = format!("SB{:05}", 1 + n / 30);
        let started = Instant::now();
        let verdict = station.link(&worker, &parent, &format!("L{n:06}")).await;
        times.push(started.elapsed());
        if !matches!(verdict, Verdict::Applied { .. }) {
            anyhow::bail!("online scan {n} was not applied: {verdict:?}");
        }
    }
    times.sort();

    // Offline: queue scans with the server unreachable, then time the drain.
    proxy.set_down(true);
    for n in 0..QUEUED_SCANS {
        let parent = format!("SB{:05}", 1000 + n / 30);
        let verdict = station.link(&worker, &parent, &format!("Q{n:06}")).await;
        if !matches!(verdict, Verdict::SavedOffline { .. }) {
            anyhow::bail!("queued scan {n} was not saved: {verdict:?}");
        }
    }
    let mut status = station.status();
    let started = Instant::now();
    proxy.set_down(false);
    station.syncer().nudge();
    while status.borrow().unsent > 0 {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!(
                "the queue did not drain in 5 minutes: {:?}",
                *status.borrow()
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), status.changed()).await;
    }
    let drain = started.elapsed();

    // Reconnect: the server away long enough for the backoff to grow past
    // the probe interval, then back; time until a queued scan is applied.
    proxy.set_down(true);
    let verdict = station.link(&worker, "SB09999", "R000001").await;
    if !matches!(verdict, Verdict::SavedOffline { .. }) {
        anyhow::bail!("the scan during the outage was not saved: {verdict:?}");
    }
    tokio::time::sleep(Duration::from_secs(OUTAGE_SECS)).await;
    let back = Instant::now();
    proxy.set_down(false);
    while status.borrow().unsent > 0 {
        if back.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the station did not reconnect within 60 s");
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), status.changed()).await;
    }
    let reconnect = back.elapsed();

    let links = server.assert_invariants().await;
    let expected = (ONLINE_SCANS + QUEUED_SCANS + 1) as i64;
    if links != expected {
        anyhow::bail!("expected {expected} links on the server, found {links}");
    }

    println!(
        "station core against {} on loopback",
        server.backend.as_str()
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| online scan to verdict, p50 ({ONLINE_SCANS} scans) | {} |",
        ms(percentile(&times, 0.50))
    );
    println!(
        "| online scan to verdict, p99 | {} |",
        ms(percentile(&times, 0.99))
    );
    println!(
        "| online scan to verdict, max | {} |",
        ms(percentile(&times, 1.0))
    );
    println!(
        "| drain {QUEUED_SCANS} queued scans | {:.2} s ({:.0} events/s) |",
        drain.as_secs_f64(),
        QUEUED_SCANS as f64 / drain.as_secs_f64()
    );
    println!(
        "| server back after a {OUTAGE_SECS} s outage: queued scan applied after | {} |",
        ms(reconnect)
    );
    station.shutdown();
    std::fs::remove_dir_all(&data_dir).ok();
    Ok(())
}
