//! The benchmark of issue 7: seed a database with millions of bags, start a
//! real `traitortrack serve` process on it, set up stations as a deployment
//! would, run each scenario for a bounded time from 127.0.0.1, measure the
//! database's own ceiling for the same link writes, and check every
//! invariant afterwards. The `loadgen` binary and the quick-mode test drive it.

pub mod api;
pub mod ceiling;
pub mod codes;
pub mod invariants;
pub mod measure;
pub mod report;
pub mod scenarios;
pub mod seed;
pub mod stations;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use traitortrack_server::db::Db;
use traitortrack_server::on;

use crate::process::ServerProcess;
use crate::PASSWORD;
use codes::NewParents;
use measure::{Probe, Window};
use report::{scenario, Machine, Row, Run};
use scenarios::Load;

/// How big and how long: the sizes of the data and of each scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Bags seeded (each parent with 29 children).
    pub bags: u64,
    /// Stations scanning in the link scenario, and the ceiling's connections.
    pub stations: usize,
    /// Stations scanning once a second in the steady scenario.
    pub steady_stations: usize,
    /// Console readers beside them.
    pub console_readers: usize,
    /// A console reader's pause between reads.
    pub console_pause: Duration,
    /// Stations draining their queue in the sync scenario.
    pub sync_stations: usize,
    /// Events queued at each of them.
    pub sync_queued: usize,
    /// Events per request when draining.
    pub sync_batch: usize,
    /// Clients reading bags back to back: as many as a big warehouse's
    /// stations and console users (the design's 100+ stations) asking at once.
    pub lookup_clients: usize,
    /// Clients reading the totals back to back.
    pub stats_clients: usize,
    /// Load before the measuring starts.
    pub warmup: Duration,
    /// Load measured.
    pub seconds: Duration,
    /// Rows of the large import (`bulk-import`).
    pub bulk_rows: usize,
    /// The scenarios to run (see [`SCENARIOS`]); empty runs them all.
    pub only: Vec<String>,
}

/// The scenarios' names, as `--only` takes them, in the order they run.
pub const SCENARIOS: [&str; 9] = [
    "link",
    "ceiling",
    "steady",
    "sync",
    "lookup",
    "stats",
    "export",
    "import",
    "bulk-import",
];

impl Plan {
    /// The sizes: 1.8 million bags, 200 stations, 3 s + 20 s a scenario.
    pub fn full() -> Plan {
        Plan {
            bags: 1_800_000,
            stations: 200,
            steady_stations: 100,
            console_readers: 10,
            console_pause: Duration::from_millis(50),
            sync_stations: 50,
            sync_queued: 2_000,
            sync_batch: 500,
            lookup_clients: 128,
            stats_clients: 16,
            warmup: Duration::from_secs(3),
            seconds: Duration::from_secs(20),
            bulk_rows: 1_800_000,
            only: Vec::new(),
        }
    }

    /// A smoke run: 100,000 bags, 20 stations, 1 s + 5 s a scenario.
    pub fn quick() -> Plan {
        Plan {
            bags: 100_000,
            stations: 20,
            steady_stations: 20,
            console_readers: 4,
            sync_stations: 20,
            sync_queued: 1_000,
            lookup_clients: 16,
            stats_clients: 8,
            warmup: Duration::from_secs(1),
            seconds: Duration::from_secs(5),
            bulk_rows: 20_000,
            ..Plan::full()
        }
    }

    /// Whether the scenario named `name` (one of [`SCENARIOS`]) runs.
    pub fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// Stations (and workers) to register: enough for every scenario.
    pub fn registered(&self) -> usize {
        self.stations
            .max(self.steady_stations)
            .max(self.sync_stations)
            .max(1)
    }

    /// The longest the sync drain may take.
    fn sync_limit(&self) -> Duration {
        (self.warmup + self.seconds) * 3
    }
}

fn say(what: &str) {
    eprintln!("[loadgen] {what}");
}

/// Waits (at most a minute) until the server has sealed the audit rows the
/// last scenario wrote, so one scenario's leftovers do not load the next.
async fn settle(db: &Db, notes: &mut Vec<String>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = on!(db.reader(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_unsealed"
        )
        .fetch_one(c)
        .await)?;
        if waiting <= 100 {
            return Ok(());
        }
        if Instant::now() > deadline {
            notes.push(format!(
                "{waiting} audit rows were still unsealed a minute after a scenario"
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The PostgreSQL postmaster's process id, when it runs on this machine.
async fn postmaster_pid(db: &Db) -> Option<u32> {
    let Db::Pg(pool) = db else {
        return None;
    };
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(pool)
        .await
        .ok()?;
    let pidfile = std::fs::read_to_string(PathBuf::from(dir).join("postmaster.pid")).ok()?;
    pidfile.lines().next()?.trim().parse().ok()
}

/// The ceiling's writers act as the registered stations and their workers.
async fn scanners(
    db: &Db,
    bench: &[stations::BenchStation],
) -> anyhow::Result<Vec<ceiling::Scanner>> {
    let mut out = Vec::with_capacity(bench.len());
    for st in bench {
        let user_id: i64 = on!(db.reader(), |c| sqlx::query_scalar(
            "SELECT id FROM users WHERE username = $1"
        )
        .bind(&st.worker)
        .fetch_one(c)
        .await)?;
        out.push(ceiling::Scanner {
            station_id: st.id,
            user_id,
            username: st.worker.clone(),
        });
    }
    Ok(out)
}

/// Runs the whole benchmark on the fresh database at `url`, against the
/// server command line at `server_binary` (`… serve --listen … --database …`).
/// An invariant that does not hold is in the answer's `problems`.
pub async fn run(plan: &Plan, url: &str, server_binary: PathBuf) -> anyhow::Result<Run> {
    let layout = seed::Layout::for_bags(plan.bags)?;
    let db = Db::connect(url, 4).await.context("open the database")?;
    db.migrate().await?;
    let backend = db.backend().as_str();
    say(&format!("{backend}: seeding {} bags", layout.bags()));
    let seeded = seed::seed(&db, layout, stations::AREA)
        .await
        .context("seeding")?;
    say(&format!(
        "{backend}: seeded in {:.1} s (+{:.1} s counters and settling)",
        seeded.load_secs, seeded.settle_secs
    ));
    let workers = plan.registered();
    stations::create_accounts(&db, url, workers)
        .await
        .context("creating accounts")?;

    let lab = scenarios::Lab::new()?;
    let settings = lab.settings();
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let server = ServerProcess::start_with(server_binary, url, &settings).await;
    let pid = server.pid().context("the server process is not running")?;
    let probe = Probe::new(pid, postmaster_pid(&db).await);
    let api = api::Api::new(&server.base())?;
    let admin_token = api
        .login("admin", PASSWORD, None)
        .await
        .map_err(|e| anyhow::anyhow!("admin login: {e}"))?;
    say(&format!(
        "{backend}: registering {workers} stations and logging their workers in"
    ));
    let bench = stations::register(&api, &admin_token, workers).await?;
    let parents = Arc::new(NewParents::after(layout.parents));
    let load = Load {
        api,
        stations: Arc::new(bench.clone()),
        admin_token: admin_token.into(),
        parents: Arc::clone(&parents),
        seeded_parents: layout.parents,
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if let Some(mb) = probe.peak_rss_mb() {
        notes.push(format!(
            "server peak RSS after setup ({} logins, admin and workers): {mb:.0} MB",
            workers + 1
        ));
    }
    if !probe.reset_peak() {
        notes.push(
            "peak RSS is the server's since it started (/proc/PID/clear_refs refused)".into(),
        );
    }
    let secs = plan.seconds.as_secs_f64();

    if plan.runs("link") {
        say(&format!("{backend}: link, {} stations", plan.stations));
        settle(&db, &mut notes).await?;
        let window = Window::new(plan.warmup, plan.seconds);
        let (tally, usage) = probe
            .during(&window, scenarios::link(&load, plan.stations, window))
            .await;
        rows.push(Row::new(
            scenario::LINK,
            plan.stations,
            &tally,
            secs,
            true,
            usage,
        ));
    }

    if plan.runs("ceiling") {
        say(&format!("{backend}: the SQL ceiling"));
        settle(&db, &mut notes).await?;
        let wanted = if matches!(db, Db::Sqlite { .. }) {
            1
        } else {
            plan.stations
        };
        let (conns, note) = ceiling::connect(&db, url, wanted).await?;
        notes.extend(note);
        let writers = conns.len();
        let who = scanners(&db, &bench).await?;
        let window = Window::new(plan.warmup, plan.seconds);
        let (tally, usage) = probe
            .during(
                &window,
                ceiling::run(conns, &who, Arc::clone(&parents), window),
            )
            .await;
        rows.push(Row::new(
            scenario::CEILING,
            writers,
            &tally,
            secs,
            true,
            usage,
        ));
        if let Some(path) = ceiling::sqlite_path(url) {
            // sqlx runs each SQLite connection on a thread of its own and hands it
            // every statement; the server pays that too. SQLite's own ceiling is
            // measured without it.
            say(&format!(
                "{backend}: the SQL ceiling through SQLite directly"
            ));
            settle(&db, &mut notes).await?;
            let (path, first) = (path.to_string(), who[0].clone());
            let window = Window::new(plan.warmup, plan.seconds);
            let parents = Arc::clone(&parents);
            let direct = tokio::task::spawn_blocking(move || {
                ceiling::run_sqlite_direct(&path, &first, &parents, window)
            });
            let (tally, usage) = probe.during(&window, direct).await;
            let tally = tally.context("the direct SQLite ceiling stopped")?;
            rows.push(Row::new(
                scenario::CEILING_DIRECT,
                1,
                &tally,
                secs,
                true,
                usage,
            ));
        }
    }

    if plan.runs("steady") {
        say(&format!(
            "{backend}: steady, {} stations at 1 scan/s and {} console readers",
            plan.steady_stations, plan.console_readers
        ));
        settle(&db, &mut notes).await?;
        let window = Window::new(plan.warmup, plan.seconds);
        let both = async {
            tokio::join!(
                scenarios::steady_scans(&load, plan.steady_stations, window),
                scenarios::console_reads(&load, plan.console_readers, plan.console_pause, window)
            )
        };
        let ((scans, reads), usage) = probe.during(&window, both).await;
        rows.push(Row::new(
            scenario::STEADY_SCANS,
            plan.steady_stations,
            &scans,
            secs,
            true,
            usage,
        ));
        rows.push(Row::new(
            scenario::STEADY_READS,
            plan.console_readers,
            &reads,
            secs,
            false,
            usage,
        ));
    }

    if plan.runs("sync") {
        say(&format!(
            "{backend}: sync, {} stations draining {} events each",
            plan.sync_stations, plan.sync_queued
        ));
        settle(&db, &mut notes).await?;
        probe.reset_peak();
        let from = probe.sample();
        let (tally, took) = scenarios::sync(
            &load,
            plan.sync_stations,
            plan.sync_queued,
            plan.sync_batch,
            plan.sync_limit(),
        )
        .await;
        let usage = probe.usage(from, probe.sample());
        let queued = (plan.sync_stations * plan.sync_queued) as u64;
        if tally.applied < queued {
            let cut = if took >= plan.sync_limit() {
                format!(
                    ", stopped at its time bound of {:.0} s",
                    plan.sync_limit().as_secs_f64()
                )
            } else {
                String::new()
            };
            notes.push(format!(
                "sync: {} of {queued} events applied in {:.0} s{cut}",
                tally.applied,
                took.as_secs_f64()
            ));
        }
        rows.push(Row::new(
            scenario::SYNC,
            plan.sync_stations,
            &tally,
            took.as_secs_f64(),
            true,
            usage,
        ));
    }

    if plan.runs("lookup") {
        say(&format!(
            "{backend}: lookup, {} clients",
            plan.lookup_clients
        ));
        settle(&db, &mut notes).await?;
        let window = Window::new(plan.warmup, plan.seconds);
        let (tally, usage) = probe
            .during(
                &window,
                scenarios::lookup(&load, plan.lookup_clients, window),
            )
            .await;
        rows.push(Row::new(
            scenario::LOOKUP,
            plan.lookup_clients,
            &tally,
            secs,
            false,
            usage,
        ));
    }

    if plan.runs("stats") {
        say(&format!("{backend}: stats, {} clients", plan.stats_clients));
        let window = Window::new(plan.warmup, plan.seconds);
        let (tally, usage) = probe
            .during(&window, scenarios::stats(&load, plan.stats_clients, window))
            .await;
        rows.push(Row::new(
            scenario::STATS,
            plan.stats_clients,
            &tally,
            secs,
            false,
            usage,
        ));
    }

    if plan.runs("export") {
        say(&format!("{backend}: export, every bag as CSV"));
        settle(&db, &mut notes).await?;
        probe.reset_peak();
        let from = probe.sample();
        // Every bag: the seeded ones and those the scenarios above made.
        let bags: i64 = on!(db.reader(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM bags"
        )
        .fetch_one(c)
        .await)?;
        let (tally, took) = scenarios::export(&load, bags.max(0) as u64).await;
        let usage = probe.usage(from, probe.sample());
        rows.push(Row::new(
            scenario::EXPORT,
            1,
            &tally,
            took.as_secs_f64(),
            true,
            usage,
        ));
    }

    if plan.runs("import") {
        say(&format!(
            "{backend}: import, {} rows of a child -> parent sheet",
            scenarios::IMPORT_ROWS
        ));
        settle(&db, &mut notes).await?;
        probe.reset_peak();
        let from = probe.sample();
        let (tally, took) = scenarios::import(&load).await;
        let usage = probe.usage(from, probe.sample());
        rows.push(Row::new(
            scenario::IMPORT,
            1,
            &tally,
            took.as_secs_f64(),
            true,
            usage,
        ));
    }

    if plan.runs("bulk-import") {
        say(&format!(
            "{backend}: import, {} rows of a child -> parent sheet",
            plan.bulk_rows
        ));
        settle(&db, &mut notes).await?;
        probe.reset_peak();
        let from = probe.sample();
        let (tally, took) = scenarios::bulk_import(&load, plan.bulk_rows).await;
        let usage = probe.usage(from, probe.sample());
        rows.push(Row::new(
            scenario::BULK_IMPORT,
            1,
            &tally,
            took.as_secs_f64(),
            true,
            usage,
        ));
    }

    say(&format!("{backend}: checking the invariants"));
    let problems = invariants::problems(&db).await?;
    drop(server);
    db.close().await;

    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .and_then(|r| r.events_per_s)
    };
    // The database's own ceiling: on SQLite the one without sqlx's hand-offs.
    let ceiling = rate(scenario::CEILING_DIRECT).or(rate(scenario::CEILING));
    let link_to_ceiling = match (rate(scenario::LINK), ceiling) {
        (Some(link), Some(ceiling)) if ceiling > 0.0 => Some(link / ceiling),
        _ => None,
    };
    let mut run = Run {
        backend: backend.to_string(),
        machine: Machine::here(),
        seeded,
        rows,
        link_to_ceiling,
        targets: Vec::new(),
        notes,
        problems,
    };
    run.judge();
    Ok(run)
}
