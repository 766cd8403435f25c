//! The benchmark in quick mode, on each database, against the server binary:
//! every scenario makes requests, none gets an unexpected answer, and every
//! invariant holds afterwards. It asserts correctness only, never a time.

use std::time::Duration;

use traitortrack_tests::loadgen::report::scenario;
use traitortrack_tests::loadgen::{self, Plan};
use traitortrack_tests::{fresh_url, on_each_backend, server_binary, Backend};

/// Small enough for a debug build on two cores.
fn plan() -> Plan {
    Plan {
        bags: 20_000,
        stations: 8,
        steady_stations: 8,
        console_readers: 2,
        sync_stations: 4,
        sync_queued: 500,
        sync_batch: 250,
        lookup_clients: 4,
        stats_clients: 4,
        warmup: Duration::from_secs(1),
        seconds: Duration::from_secs(3),
        ..Plan::quick()
    }
}

async fn quick_run_keeps_every_invariant(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let run = loadgen::run(&plan(), &url, server_binary!())
        .await
        .expect("the benchmark ran");
    println!("{}", run.text());
    assert!(
        run.problems.is_empty(),
        "invariants broken: {:?}",
        run.problems
    );
    assert_eq!(run.seeded.bags, 19_980, "parents of 30 bags each");
    for name in [
        scenario::LINK,
        scenario::CEILING,
        scenario::STEADY_SCANS,
        scenario::STEADY_READS,
        scenario::SYNC,
        scenario::LOOKUP,
        scenario::STATS,
        scenario::EXPORT,
        scenario::IMPORT,
        scenario::BULK_IMPORT,
    ] {
        assert!(run.row(name).is_some(), "no row for {name}");
    }
    if backend == Backend::Sqlite {
        assert!(
            run.row(scenario::CEILING_DIRECT).is_some(),
            "no direct SQLite ceiling"
        );
    }
    for row in &run.rows {
        assert_eq!(
            row.unexpected,
            0,
            "{}: {}",
            row.scenario,
            row.first_unexpected.as_deref().unwrap_or("")
        );
        assert!(row.requests > 0, "{} made no requests", row.scenario);
        if let Some(events) = row.events_per_s {
            assert!(events > 0.0, "{} applied no events", row.scenario);
        }
    }
}

on_each_backend!(quick_run_keeps_every_invariant);
