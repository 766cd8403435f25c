//! The load: stations scanning and syncing, and console users reading, each
//! scenario bounded in time. Every station scans into parents of its own (new
//! ones, `SB` numbers after the seeded parents), so no refusal is expected:
//! any answer but "applied" counts as unexpected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use traitortrack_protocol::{
    BillSummary, Event, EventResults, EventStatus, EventType, Page, Stats,
};

use super::api::{Api, Reader};
use super::codes::{self, NewParents, CAPACITY, SEEDED_CHILDREN};
use super::measure::{Tally, Window};
use super::stations::BenchStation;
use crate::process::LAB_SETTINGS;

/// What every scenario works with.
#[derive(Clone)]
pub struct Load {
    pub api: Api,
    pub stations: Arc<Vec<BenchStation>>,
    pub admin_token: Arc<str>,
    pub parents: Arc<NewParents>,
    /// Parents `SB00000` up to this number (excluded) were seeded with 29 children each.
    pub seeded_parents: u32,
}

async fn gather(mut tasks: JoinSet<Tally>) -> Tally {
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(t) => tally.merge(t),
            Err(e) => tally.unexpected(format!("a client task stopped: {e}")),
        }
    }
    tally
}

fn link_event(worker: &str, parent: &str, child: &str, at: OffsetDateTime) -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        kind: EventType::Link,
        user: worker.to_string(),
        parent: Some(parent.to_string()),
        child: Some(child.to_string()),
        bill: None,
        reason: None,
        at,
    }
}

/// Checks that every one of `sent` events was applied; answers how many were.
fn check_applied(tally: &mut Tally, sent: &[uuid::Uuid], answer: &EventResults) -> u64 {
    if answer.results.len() != sent.len() {
        tally.unexpected(format!(
            "{} results for {} events",
            answer.results.len(),
            sent.len()
        ));
    }
    let mut applied = 0;
    for (id, result) in sent.iter().zip(&answer.results) {
        if result.id != *id {
            tally.unexpected(format!("result for {} where {id} was sent", result.id));
        } else if result.status == EventStatus::Applied {
            applied += 1;
        } else {
            tally.unexpected(format!(
                "event {id} {:?}: {} {}",
                result.status,
                result.code.as_deref().unwrap_or(""),
                result.message.as_deref().unwrap_or("")
            ));
        }
    }
    applied
}

/// One station scanning children into parents of its own, one event per
/// request: as fast as answers come, or on `pace`'s ticks.
async fn scan_station(
    api: Api,
    st: BenchStation,
    parents: Arc<NewParents>,
    window: Window,
    mut pace: Option<tokio::time::Interval>,
) -> Tally {
    let mut tally = Tally::default();
    'parents: loop {
        let Some(p) = parents.take() else {
            tally.unexpected("no parent codes left (SB99999 reached)");
            break;
        };
        let parent = codes::parent(p);
        for slot in 1..=CAPACITY {
            if let Some(ticks) = pace.as_mut() {
                ticks.tick().await;
            }
            if Instant::now() >= window.end {
                break 'parents;
            }
            let event = link_event(
                &st.worker,
                &parent,
                &codes::child(p, slot),
                OffsetDateTime::now_utc(),
            );
            let id = event.id;
            let started = Instant::now();
            let answer = api.send_events(&st.key, vec![event]).await;
            let measured = tally.record(&window, started, Instant::now());
            match answer {
                Ok(results) => {
                    let applied = check_applied(&mut tally, &[id], &results);
                    if measured {
                        tally.applied += applied;
                    }
                }
                Err(e) => tally.unexpected(format!("{}: {e}", st.name)),
            }
        }
    }
    tally
}

/// Scenario 1: `stations` stations scanning as fast as answers come.
pub async fn link(load: &Load, stations: usize, window: Window) -> Tally {
    let mut tasks = JoinSet::new();
    for st in load.stations.iter().take(stations).cloned() {
        let (api, parents) = (load.api.clone(), Arc::clone(&load.parents));
        tasks.spawn(scan_station(api, st, parents, window, None));
    }
    gather(tasks).await
}

/// Scenario 2, the stations' half: each scans once a second, the stations
/// spread evenly over the second.
pub async fn steady_scans(load: &Load, stations: usize, window: Window) -> Tally {
    let mut tasks = JoinSet::new();
    let n = stations.max(1) as u32;
    for (i, st) in load.stations.iter().take(stations).cloned().enumerate() {
        let offset = Duration::from_secs(1) * i as u32 / n;
        let mut ticks =
            tokio::time::interval_at((window.start + offset).into(), Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (api, parents) = (load.api.clone(), Arc::clone(&load.parents));
        tasks.spawn(scan_station(api, st, parents, window, Some(ticks)));
    }
    gather(tasks).await
}

/// What the load checks of a bag's answer: which bag it is and how many
/// children it shows (the children are read past, not decoded: the tool's
/// own work shares the cores with the server's).
#[derive(serde::Deserialize)]
struct BagSeen {
    code: String,
    children: Vec<serde::de::IgnoredAny>,
}

/// Reads a seeded parent and checks it is the bag asked for, with its 29 children.
async fn read_seeded_parent(
    load: &Load,
    reader: &mut Reader,
    rng: &mut StdRng,
) -> Result<(), String> {
    let code = codes::parent(rng.gen_range(0..load.seeded_parents));
    let bag: BagSeen = reader.get(&format!("/api/v1/bags/{code}")).await?;
    if bag.code != code {
        return Err(format!("{code} was asked for, {} answered", bag.code));
    }
    if bag.children.len() != SEEDED_CHILDREN as usize {
        return Err(format!(
            "{code} shows {} children, not {SEEDED_CHILDREN}",
            bag.children.len()
        ));
    }
    Ok(())
}

/// Scenario 2, the console's half: `readers` logged-in admins, each reading a
/// bag, the totals and the bills in turn, with `pause` between reads.
pub async fn console_reads(load: &Load, readers: usize, pause: Duration, window: Window) -> Tally {
    let mut tasks = JoinSet::new();
    for r in 0..readers {
        let load = load.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(r as u64);
            let mut reader = Reader::new(&load.api, &load.admin_token);
            let mut tally = Tally::default();
            let mut turn = 0u64;
            while Instant::now() < window.end {
                let started = Instant::now();
                let read = match turn % 3 {
                    0 => read_seeded_parent(&load, &mut reader, &mut rng).await,
                    1 => reader.get::<Stats>("/api/v1/stats").await.map(drop),
                    _ => reader
                        .get::<Page<BillSummary>>("/api/v1/bills?limit=50")
                        .await
                        .map(drop),
                };
                tally.record(&window, started, Instant::now());
                if let Err(e) = read {
                    tally.unexpected(e);
                }
                turn += 1;
                tokio::time::sleep(pause).await;
            }
            tally
        });
    }
    gather(tasks).await
}

/// Scenario 3: `stations` stations, each with `queued` events made while
/// offline, sending them in batches of `batch`, all at once. Answers what
/// they saw and how long the drain took; batches not sent by `limit` are left.
pub async fn sync(
    load: &Load,
    stations: usize,
    queued: usize,
    batch: usize,
    limit: Duration,
) -> (Tally, Duration) {
    // The queues are made first: scanned an hour ago, 100 ms apart.
    let scanned = OffsetDateTime::now_utc() - time::Duration::HOUR;
    let mut queues = Vec::with_capacity(stations);
    let mut tally = Tally::default();
    for st in load.stations.iter().take(stations) {
        let mut events = Vec::with_capacity(queued);
        let mut parent = None;
        for k in 0..queued {
            let slot = (k as u32 % CAPACITY) + 1;
            if slot == 1 {
                parent = load.parents.take();
            }
            let Some(p) = parent else {
                tally.unexpected("no parent codes left (SB99999 reached)");
                break;
            };
            let at = scanned + time::Duration::milliseconds(100 * k as i64);
            events.push(link_event(
                &st.worker,
                &codes::parent(p),
                &codes::child(p, slot),
                at,
            ));
        }
        queues.push((st.clone(), events));
    }

    // Every answer counts, also one that comes after the bound: no batch
    // starts after it, and none waits longer than the request timeout.
    let window = Window::new(Duration::ZERO, limit + super::api::REQUEST_TIMEOUT * 2);
    let stop = window.start + limit;
    let mut tasks = JoinSet::new();
    for (st, events) in queues {
        let api = load.api.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            for chunk in events.chunks(batch.max(1)) {
                if Instant::now() >= stop {
                    break;
                }
                let ids: Vec<uuid::Uuid> = chunk.iter().map(|e| e.id).collect();
                let started = Instant::now();
                let answer = api.send_events(&st.key, chunk.to_vec()).await;
                let measured = tally.record(&window, started, Instant::now());
                match answer {
                    Ok(results) => {
                        let applied = check_applied(&mut tally, &ids, &results);
                        if measured {
                            tally.applied += applied;
                        }
                    }
                    Err(e) => tally.unexpected(format!("{}: {e}", st.name)),
                }
            }
            tally
        });
    }
    tally.merge(gather(tasks).await);
    (tally, window.start.elapsed())
}

/// Scenario 4: `clients` clients reading random seeded parents, back to back.
pub async fn lookup(load: &Load, clients: usize, window: Window) -> Tally {
    let mut tasks = JoinSet::new();
    for r in 0..clients {
        let load = load.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(1000 + r as u64);
            let mut reader = Reader::new(&load.api, &load.admin_token);
            let mut tally = Tally::default();
            while Instant::now() < window.end {
                let started = Instant::now();
                let read = read_seeded_parent(&load, &mut reader, &mut rng).await;
                tally.record(&window, started, Instant::now());
                if let Err(e) = read {
                    tally.unexpected(e);
                }
            }
            tally
        });
    }
    gather(tasks).await
}

/// Scenario 5: `clients` clients reading the totals, back to back.
pub async fn stats(load: &Load, clients: usize, window: Window) -> Tally {
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let load = load.clone();
        tasks.spawn(async move {
            let mut reader = Reader::new(&load.api, &load.admin_token);
            let mut tally = Tally::default();
            while Instant::now() < window.end {
                let started = Instant::now();
                let read = reader.get::<Stats>("/api/v1/stats").await;
                tally.record(&window, started, Instant::now());
                if let Err(e) = read {
                    tally.unexpected(e);
                }
            }
            tally
        });
    }
    gather(tasks).await
}

/// One download of every bag as CSV, as an admin would from the console;
/// answers the tally (one request; `applied` is the rows) and its time.
pub async fn export(load: &Load, bags: u64) -> (Tally, Duration) {
    let mut tally = Tally::default();
    let started = Instant::now();
    let got = load
        .api
        .export_lines(&load.admin_token, "/api/v1/exports/bags.csv")
        .await;
    let took = started.elapsed();
    tally.requests = 1;
    tally
        .latencies_us
        .push(took.as_micros().min(u128::from(u32::MAX)) as u32);
    match got {
        // The header line, then one line per bag.
        Ok(lines) if lines == bags + 1 => tally.applied = bags,
        Ok(lines) => tally.unexpected(format!(
            "the export held {} rows, not {bags}",
            lines.saturating_sub(1)
        )),
        Err(e) => tally.unexpected(format!("export: {e}")),
    }
    (tally, took)
}

/// Rows in the benchmark's import: child -> parent rows of `M444` parents
/// (15 children and the parent row each), codes no other scenario uses.
pub const IMPORT_ROWS: usize = 80_000;

/// The benchmark's sheet: `IMPORT_ROWS` rows as the warehouses write them.
pub fn import_sheet() -> Vec<u8> {
    let mut text = String::from("Sr. No.,Label No.\n");
    for p in 0..IMPORT_ROWS / 16 {
        for c in 1..=15 {
            text.push_str(&format!("{c},LABEL NO.9{p:05}{c:02}\n"));
        }
        text.push_str(&format!("Parent Code,M444-{p:05}\n"));
    }
    text.into_bytes()
}

/// The server's settings for the benchmark: the lab's ([`LAB_SETTINGS`]),
/// import files in a folder of the run's own, and one more parent format,
/// `LOT` and six digits (30 children), for the large import: the `SB` and
/// `M444` codes are the seed's, the link scenario's and the small import's.
pub struct Lab {
    dir: std::path::PathBuf,
}

/// The large import's parent format.
const LOT_FORMAT: &str = "LOT[0-9]{6}";

impl Lab {
    pub fn new() -> anyhow::Result<Lab> {
        let dir = std::env::temp_dir().join(format!("traitortrack-loadgen-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let spec = traitortrack_protocol::FormatSpec::default();
        let mut toml = String::from("[formats]\n");
        toml.push_str(&format!("child_pattern = {:?}\n", spec.child_pattern));
        let parents = spec
            .parents
            .iter()
            .map(|p| (p.name.as_str(), p.pattern.as_str(), p.capacity));
        for (name, pattern, capacity) in parents.chain([("LOT", LOT_FORMAT, 30)]) {
            toml.push_str(&format!(
                "[[formats.parents]]\nname = {name:?}\npattern = {pattern:?}\ncapacity = {capacity}\n"
            ));
        }
        std::fs::write(dir.join("traitortrack.toml"), toml)?;
        Ok(Lab { dir })
    }

    /// The `TRAITORTRACK_*` settings to start the server with.
    pub fn settings(&self) -> Vec<(String, String)> {
        let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
        let mut settings: Vec<(String, String)> = LAB_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings.push((
            "TRAITORTRACK_CONFIG".into(),
            path(self.dir.join("traitortrack.toml")),
        ));
        settings.push((
            "TRAITORTRACK_IMPORT_DIR".into(),
            path(self.dir.join("imports")),
        ));
        settings
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A sheet of `rows` rows: `LOT` parents of 30 children each (the last
/// one as many as are left), each run closed by its parent's row.
pub fn bulk_sheet(rows: usize) -> Vec<u8> {
    let mut text = String::with_capacity(rows * 26 + 32);
    text.push_str("Sr. No.,Label No.\n");
    let mut left = rows;
    let mut p = 0usize;
    while left >= 2 {
        let mut children = (left - 1).min(30);
        if left - (children + 1) == 1 {
            // A lone row left over could not be a run: end this one a child early.
            children -= 1;
        }
        for c in 1..=children {
            text.push_str(&format!("{c},LABEL NO.8{p:06}{c:02}\n"));
        }
        text.push_str(&format!("Parent Code,LOT{p:06}\n"));
        left -= children + 1;
        p += 1;
    }
    text.into_bytes()
}

/// One import of a [`bulk_sheet`] of `rows` rows through the API.
pub async fn bulk_import(load: &Load, rows: usize) -> (Tally, Duration) {
    let sheet = bulk_sheet(rows);
    let expected = sheet.iter().filter(|b| **b == b'\n').count() - 1;
    timed_import(load, sheet, "bench-large.csv", expected).await
}

/// One import of `IMPORT_ROWS` rows through the API, as an admin uploads
/// it; answers the tally (one request; `applied` is the rows) and its time.
pub async fn import(load: &Load) -> (Tally, Duration) {
    timed_import(load, import_sheet(), "bench-80k.csv", IMPORT_ROWS).await
}

async fn timed_import(
    load: &Load,
    sheet: Vec<u8>,
    file_name: &str,
    expected: usize,
) -> (Tally, Duration) {
    let mut tally = Tally::default();
    let started = Instant::now();
    let got = load
        .api
        .import(&load.admin_token, "child-parent", file_name, sheet)
        .await;
    let took = started.elapsed();
    tally.requests = 1;
    tally
        .latencies_us
        .push(took.as_micros().min(u128::from(u32::MAX)) as u32);
    match got {
        Ok(summary) => {
            let rows = summary["rows"].as_u64().unwrap_or(0);
            let refused = summary["counts"]["refused"].as_u64().unwrap_or(u64::MAX);
            if summary["state"] == "done" && rows == expected as u64 && refused == 0 {
                tally.applied = rows;
            } else {
                tally.unexpected(format!("import: {summary}"));
            }
        }
        Err(e) => tally.unexpected(format!("import: {e}")),
    }
    (tally, took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_large_sheet_has_the_rows_asked_for_in_full_runs() {
        for rows in [2, 31, 32, 100, 20_000] {
            let sheet = String::from_utf8(bulk_sheet(rows)).expect("text");
            let lines: Vec<&str> = sheet.lines().skip(1).collect();
            assert_eq!(lines.len(), rows, "{rows}");
            assert!(lines
                .last()
                .is_some_and(|l| l.starts_with("Parent Code,LOT")));
            let mut run = 0;
            for line in lines {
                if line.starts_with("Parent Code,") {
                    assert!((1..=30).contains(&run), "{rows}: a run of {run}");
                    run = 0;
                } else {
                    run += 1;
                }
            }
        }
    }
}
