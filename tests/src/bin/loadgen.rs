//! The benchmark of issue 7: seeds a fresh database with millions of bags,
//! runs a release `traitortrack serve` on it (this same binary, as
//! `loadgen serve …`), drives it from 127.0.0.1 with hundreds of stations,
//! measures the database's own ceiling, checks every invariant, and prints a
//! table (and JSON with `--json`).
//!
//! `cargo run --release -p traitortrack-tests --bin loadgen -- --db both --json /tmp/bench.json`
//!
//! Exits 1 when an invariant does not hold or a scenario saw an unexpected answer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use traitortrack_tests::loadgen::{self, Plan};

/// PostgreSQL as a server would run it: default durability (fsync and
/// synchronous commits on), room for the ceiling's connections, and 1 GB of
/// shared buffers (the README's advice for a production server, in place of
/// the 128 MB a fresh cluster starts with).
const DURABLE_POSTGRES: &str = "-c max_connections=400 -c shared_buffers=1GB";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "TraitorTrack benchmark: seed, serve, load, compare with the database's ceiling, check invariants"
)]
struct Args {
    /// The database(s) to run on.
    #[arg(long, value_enum, default_value = "both")]
    db: Which,
    /// A smoke run: 100,000 bags, 20 stations, 1 s warm-up and 5 s per scenario.
    #[arg(long)]
    quick: bool,
    /// Bags to seed (each parent with 29 children; default 1,800,000).
    #[arg(long)]
    bags: Option<u64>,
    /// Seconds each scenario is measured (default 20).
    #[arg(long)]
    seconds: Option<u64>,
    /// Seconds of warm-up before each scenario is measured (default 3).
    #[arg(long)]
    warmup: Option<u64>,
    /// Stations scanning in the link scenario (default 200).
    #[arg(long)]
    stations: Option<usize>,
    /// Run only these scenarios, comma-separated: link, ceiling, steady, sync,
    /// lookup, stats, export, import (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An empty database to use (postgres://… or sqlite://…) instead of a fresh
    /// one (a throwaway PostgreSQL, or a SQLite file in a temp folder).
    #[arg(long)]
    database_url: Option<String>,
}

fn plan(args: &Args) -> Plan {
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(b) = args.bags {
        plan.bags = b;
    }
    if let Some(s) = args.seconds {
        plan.seconds = Duration::from_secs(s.max(1));
    }
    if let Some(w) = args.warmup {
        plan.warmup = Duration::from_secs(w);
    }
    if let Some(s) = args.stations {
        plan.stations = s.max(1);
    }
    plan.only = args.only.iter().map(|o| o.trim().to_lowercase()).collect();
    plan
}

async fn bench(args: Args) -> anyhow::Result<bool> {
    let plan = plan(&args);
    if let Some(unknown) = plan
        .only
        .iter()
        .find(|o| !loadgen::SCENARIOS.contains(&o.as_str()))
    {
        anyhow::bail!(
            "--only {unknown}: the scenarios are {}",
            loadgen::SCENARIOS.join(", ")
        );
    }
    let me = std::env::current_exe().context("where this program is")?;
    let mut targets: Vec<(&str, Option<String>)> = Vec::new();
    match (&args.database_url, args.db) {
        (Some(_), Which::Both) => {
            anyhow::bail!(
                "--database-url names one database: pass --db sqlite or --db postgres with it"
            )
        }
        (Some(url), which) => {
            let is_pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if is_pg != (which == Which::Postgres) {
                anyhow::bail!(
                    "--database-url {} is not a {which:?} address",
                    url.split("://").next().unwrap_or(url)
                );
            }
            targets.push((if is_pg { "postgres" } else { "sqlite" }, Some(url.clone())));
        }
        (None, which) => {
            if matches!(which, Which::Sqlite | Which::Both) {
                targets.push(("sqlite", None));
            }
            if matches!(which, Which::Postgres | Which::Both) {
                targets.push(("postgres", None));
            }
        }
    }

    let mut runs = Vec::new();
    let mut postgres_admin: Option<String> = None;
    for (backend, given) in targets {
        let mut temp_dir = None;
        let url = match (given, backend) {
            (Some(url), _) => url,
            (None, "sqlite") => {
                let url = traitortrack_tests::fresh_sqlite_url();
                temp_dir = url
                    .strip_prefix("sqlite://")
                    .and_then(|p| PathBuf::from(p).parent().map(PathBuf::from));
                url
            }
            (None, _) => {
                if postgres_admin.is_none() {
                    eprintln!("[loadgen] starting a throwaway PostgreSQL ({DURABLE_POSTGRES}, otherwise its defaults)");
                    let admin = traitortrack_tests::start_postgres_server(DURABLE_POSTGRES)
                        .map_err(|e| anyhow::anyhow!("cannot start PostgreSQL: {e}"))?;
                    postgres_admin = Some(admin);
                }
                let admin = postgres_admin.as_deref().unwrap_or_default();
                traitortrack_tests::new_postgres_database(admin)
                    .await
                    .context("create the benchmark database")?
            }
        };
        let outcome = loadgen::run(&plan, &url, me.clone()).await;
        if let Some(dir) = temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let mut run = outcome?;
        if backend == "postgres" && args.database_url.is_none() {
            run.notes.push(
                "PostgreSQL: a fresh local cluster with its default durability (fsync, synchronous_commit and full_page_writes on), max_connections=400, shared_buffers=1GB".into(),
            );
        }
        println!("{}", run.text());
        runs.push(run);
    }

    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&runs)?;
        std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
        eprintln!("[loadgen] figures written to {}", path.display());
    }
    let mut ok = true;
    for run in &runs {
        if !run.problems.is_empty() {
            eprintln!(
                "loadgen: on {}, invariants do not hold: {}",
                run.backend,
                run.problems.join("; ")
            );
            ok = false;
        }
        if run.unexpected() > 0 {
            eprintln!(
                "loadgen: on {}, {} answers were unexpected",
                run.backend,
                run.unexpected()
            );
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    // The server under test is this same binary: `loadgen serve …`.
    if std::env::args_os().nth(1).is_some_and(|a| a == "serve") {
        return traitortrack_server::cli::main_from(std::env::args_os());
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
