//! The station core in a process of its own, for tests that kill it.
//!
//! ```text
//! station-under-test --data DIR --server URL --key KEY --user NAME --password PW
//!                    [--parents N] [--children-per-parent M] [--seed S] [--drain-only]
//! ```
//!
//! Opens the station at DIR, logs the worker in (through the server, or
//! offline from an earlier login here), then works through a deterministic
//! plan of link scans with undos mixed in, starting after the scans its outbox
//! already holds (each plan step stores exactly one event). It prints, flushed:
//!
//! - `ready <already-stored> <plan-length>` once logged in;
//! - `accepted <event-id>` right after each scan whose event is in the outbox;
//! - `done` when the plan is finished, then `drained` once nothing is unsent.
//!
//! With `--drain-only` it scans nothing, waits for the outbox to drain and
//! prints `drained`. Exit codes: 0 done, 2 bad arguments or setup, 3 a scan
//! the plan did not expect (not stored, or refused here), 4 not drained in 30 s.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use traitortrack_station_core::sounds::Sounds;
use traitortrack_station_core::station::{Station, StationConfig, Verdict};
use uuid::Uuid;

/// How long the outbox may take to drain at the end.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Link { parent: String, child: String },
    Undo { parent: String, child: String },
}

/// The scans, the same for the same arguments: `parents` parents (SB with
/// capacity 30 and M444 with 15, alternating), each given up to
/// `per_parent` distinct children (never more than its capacity, so no scan
/// is refused for a full parent), interleaved over a few open parents at a
/// time; about one link in six is followed by the undo of that same child.
fn plan(parents: u32, per_parent: u32, seed: u64) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tag = seed % 10_000;
    let mut queues: Vec<(String, VecDeque<String>)> = (0..parents)
        .map(|p| {
            let (parent, capacity) = if p % 2 == 0 {
                (format!("SB{:05}", 10_000 + p), 30)
            } else {
                (format!("M444-{:05}", 10_000 + p), 15)
            };
            let children = (0..per_parent.min(capacity))
                .map(|c| format!("X{tag:04}{p:04}{c:02}"))
                .collect();
            (parent, children)
        })
        .collect();
    queues.reverse();
    let mut open: Vec<(String, VecDeque<String>)> = Vec::new();
    let mut steps = Vec::new();
    loop {
        while open.len() < 3 {
            match queues.pop() {
                Some(q) => open.push(q),
                None => break,
            }
        }
        if open.is_empty() {
            return steps;
        }
        let i = rng.gen_range(0..open.len());
        let (parent, children) = &mut open[i];
        match children.pop_front() {
            Some(child) => {
                steps.push(Step::Link {
                    parent: parent.clone(),
                    child: child.clone(),
                });
                if rng.gen_ratio(1, 6) {
                    steps.push(Step::Undo {
                        parent: parent.clone(),
                        child,
                    });
                }
            }
            None => {
                open.swap_remove(i);
            }
        }
    }
}

struct Args {
    data: PathBuf,
    server: String,
    key: String,
    user: String,
    password: String,
    parents: u32,
    per_parent: u32,
    seed: u64,
    drain_only: bool,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut data, mut server, mut key, mut user, mut password) = (None, None, None, None, None);
    let (mut parents, mut per_parent, mut seed, mut drain_only) = (10u32, 10u32, 1u64, false);
    while let Some(flag) = it.next() {
        if flag == "--drain-only" {
            drain_only = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value)),
            "--server" => server = Some(value),
            "--key" => key = Some(value),
            "--user" => user = Some(value),
            "--password" => password = Some(value),
            "--parents" => parents = number(&value)?.try_into().map_err(|_| "too many parents")?,
            "--children-per-parent" => {
                per_parent = number(&value)?
                    .try_into()
                    .map_err(|_| "too many children")?
            }
            "--seed" => seed = number(&value)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("{name} is required"));
    Ok(Args {
        data: data.ok_or("--data is required")?,
        server: need(server, "--server")?,
        key: need(key, "--key")?,
        user: need(user, "--user")?,
        password: need(password, "--password")?,
        parents,
        per_parent,
        seed,
        drain_only,
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the test is gone; nothing to do about it here.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn stored_ids(station: &Station) -> Result<HashSet<Uuid>, String> {
    station
        .outbox()
        .all_ids()
        .map(|ids| ids.into_iter().map(|(id, _)| id).collect())
        .map_err(|e| format!("cannot read the outbox: {e}"))
}

/// Waits until nothing is unsent; false after [`DRAIN_LIMIT`].
async fn drained(station: &Station) -> bool {
    let mut status = station.status();
    let wait = async {
        loop {
            if status.borrow_and_update().unsent == 0 {
                return;
            }
            // The status only changes when the sync loop does something; look
            // again now and then anyway.
            let _ = tokio::time::timeout(Duration::from_millis(250), status.changed()).await;
        }
    };
    tokio::time::timeout(DRAIN_LIMIT, wait).await.is_ok()
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let config = StationConfig::new(&args.server, &args.key, args.data.clone());
    let station = Station::open(&config, Sounds::silent())
        .map_err(|e| format!("cannot open the station: {e}"))?;
    if args.drain_only {
        if drained(&station).await {
            say("drained");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "station-under-test: still unsent after {DRAIN_LIMIT:?}: {:?}",
            *station.status().borrow()
        );
        return Ok(ExitCode::from(4));
    }
    let worker = station
        .login(&args.user, &args.password)
        .await
        .map_err(|e| format!("login of {}: {e}", args.user))?;
    let steps = plan(args.parents, args.per_parent, args.seed);
    let mut ids = stored_ids(&station)?;
    say(&format!("ready {} {}", ids.len(), steps.len()));
    for (n, step) in steps.iter().enumerate().skip(ids.len()) {
        let verdict = match step {
            Step::Link { parent, child } => station.link(&worker, parent, child).await,
            Step::Undo { parent, child } => station.undo(&worker, parent, Some(child)).await,
        };
        let after = stored_ids(&station)?;
        let new: Vec<Uuid> = after.difference(&ids).copied().collect();
        let stored = matches!(
            verdict,
            Verdict::Applied { .. } | Verdict::SavedOffline { .. } | Verdict::Refused { .. }
        );
        match new.as_slice() {
            [id] if stored => say(&format!("accepted {id}")),
            _ => {
                eprintln!(
                    "station-under-test: step {n} {step:?} gave {verdict:?} with new outbox events {new:?}"
                );
                return Ok(ExitCode::from(3));
            }
        }
        ids = after;
    }
    say("done");
    if drained(&station).await {
        say("drained");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "station-under-test: still unsent after {DRAIN_LIMIT:?}: {:?}",
            *station.status().borrow()
        );
        Ok(ExitCode::from(4))
    }
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("station-under-test: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("station-under-test: no runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("station-under-test: {e}");
            ExitCode::from(2)
        }
    }
}
