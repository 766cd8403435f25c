//! Crash: the station core in a child process (`station-under-test`) killed
//! with SIGKILL at random points while it scans and syncs, ten rounds on one
//! data folder, the server sometimes down, sometimes coming back and sometimes
//! killed mid-round. After a final run drains the outbox, every scan the
//! station had accepted reached the server exactly once, and the server holds
//! exactly what the station's outbox says happened. SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use traitortrack_protocol::{EventType, Role};
use traitortrack_station_core::outbox::{Outbox, State};
use traitortrack_tests::process::ServerProcess;
use traitortrack_tests::{fresh_url, server_binary, settings, Backend, TestServer, PASSWORD};
use uuid::Uuid;

const ROUNDS: usize = 10;
/// The plan is longer than ten rounds can scan, so every round is cut short.
const PARENTS: &str = "60";
const CHILDREN_PER_PARENT: &str = "20";
const WORKER: &str = "ravi";

fn seed() -> u64 {
    traitortrack_tests::test_seed(20_240_601)
}

/// What the server does during one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weather {
    /// Up all round: scans are sent at once.
    Online,
    /// Down all round: every scan is queued.
    Offline,
    /// Down at the start, started again while the station scans.
    Comeback,
    /// Up at the start, killed while the station scans and syncs.
    ServerDies,
}

/// The station child process; killed if the test gives up early.
struct StationChild {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    seen: Vec<String>,
}

impl StationChild {
    fn start(data: &Path, base: &str, key: &str, extra: &[&str]) -> StationChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_station-under-test"))
            .arg("--data")
            .arg(data)
            .args(["--server", base, "--key", key, "--user", WORKER])
            .args(["--password", PASSWORD])
            .args(extra)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start station-under-test");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        StationChild {
            child,
            lines,
            reader: Some(reader),
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a line starting with `prefix`; `None` when the
    /// process ended first.
    async fn wait_for(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Ok(None) => return None,
                Err(_) => panic!("no {prefix:?} from the station within {limit:?}"),
            }
        }
    }

    /// Still running?
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGKILL (on Unix `Child::kill` is SIGKILL), then every line it printed.
    fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        self.child.wait().expect("reap the station");
        self.collect()
    }

    /// Waits (bounded) for the process to end by itself.
    async fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return (status, self.collect());
            }
            assert!(
                start.elapsed() < limit,
                "the station did not finish within {limit:?}; printed {:?}",
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn collect(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            // The pipe is closed: the process is gone.
            reader.join().expect("stdout reader");
        }
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for StationChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn accepted_ids(lines: &[String]) -> Vec<Uuid> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("accepted "))
        .map(|id| Uuid::parse_str(id).unwrap_or_else(|e| panic!("accepted {id:?}: {e}")))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tt-{name}-{}", Uuid::now_v7()))
}

async fn server_events(admin: &TestServer) -> Vec<(Uuid, String, String)> {
    traitortrack_server::on!(admin.db.reader(), |c| {
        sqlx::query_as("SELECT id, kind, status FROM events")
            .fetch_all(c)
            .await
    })
    .expect("read the server's events")
}

/// Every link on the server: (parent, child) -> the event that made it.
async fn server_links(admin: &TestServer) -> BTreeMap<(String, String), Option<Uuid>> {
    let rows: Vec<(String, String, Option<Uuid>)> =
        traitortrack_server::on!(admin.db.reader(), |c| {
            sqlx::query_as(
                "SELECT p.code, c.code, l.event_id FROM links l
                 JOIN bags p ON p.id = l.parent_id JOIN bags c ON c.id = l.child_id",
            )
            .fetch_all(c)
            .await
        })
        .expect("read the server's links");
    rows.into_iter().map(|(p, c, e)| ((p, c), e)).collect()
}

async fn killed_station_loses_nothing(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let seed = seed();
    eprintln!("station_crash: seed {seed} (TRAITORTRACK_TEST_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let admin = TestServer::start_with(settings(&url)).await;
    admin
        .add_user(WORKER, Role::Dispatcher, Some("north"))
        .await;
    let key = admin.station("dock-crash").await;
    let mut server = ServerProcess::start(server_binary!(), &url).await;
    let base = server.base();
    let data = temp_dir("station-crash");
    let plan = [
        "--parents",
        PARENTS,
        "--children-per-parent",
        CHILDREN_PER_PARENT,
        "--seed",
        &seed.to_string(),
    ];

    // Each kind of round at least twice, in a seeded order; the first login
    // must reach the server (the worker has never been at this station).
    let mut weathers = vec![
        Weather::Online,
        Weather::Offline,
        Weather::Offline,
        Weather::Comeback,
        Weather::Comeback,
        Weather::Comeback,
        Weather::ServerDies,
        Weather::ServerDies,
        Weather::ServerDies,
    ];
    weathers.shuffle(&mut rng);
    weathers.insert(0, Weather::Online);
    assert_eq!(weathers.len(), ROUNDS);

    let mut accepted: Vec<Uuid> = Vec::new();
    let mut server_up = true;
    let mut cut_short = 0;
    for (round, &weather) in weathers.iter().enumerate() {
        let want_up = matches!(weather, Weather::Online | Weather::ServerDies);
        if want_up && !server_up {
            server.resume().await;
        } else if !want_up && server_up {
            server.stop();
        }
        server_up = want_up;
        let before = rng.gen_range(50..600);
        let after = rng.gen_range(0..300);

        let mut station = StationChild::start(&data, &base, &key, &plan);
        let ready = station.wait_for("ready", Duration::from_secs(30)).await;
        assert!(
            ready.is_some(),
            "round {round}: the station ended before it was ready: {:?}",
            station.exited()
        );
        tokio::time::sleep(Duration::from_millis(before)).await;
        match weather {
            Weather::Comeback => {
                server.resume().await;
                server_up = true;
                tokio::time::sleep(Duration::from_millis(after)).await;
            }
            Weather::ServerDies => {
                server.stop();
                server_up = false;
                tokio::time::sleep(Duration::from_millis(after)).await;
            }
            Weather::Online | Weather::Offline => {}
        }
        let lines = match station.exited() {
            None => {
                cut_short += 1;
                station.kill()
            }
            Some(status) => {
                let lines = station.collect();
                assert!(
                    status.success(),
                    "round {round}: the station failed by itself ({status}); printed {lines:?}"
                );
                lines
            }
        };
        let got = accepted_ids(&lines);
        eprintln!(
            "station_crash round {round}: {weather:?}, killed {before}+{after} ms after {}, {} accepted",
            ready.unwrap_or_default(),
            got.len()
        );
        accepted.extend(got);
    }

    // Once more, with the server up, to send what is left.
    if !server_up {
        server.resume().await;
    }
    let station = StationChild::start(&data, &base, &key, &["--drain-only"]);
    let (status, lines) = station.finish(Duration::from_secs(60)).await;
    assert!(
        status.success() && lines.iter().any(|l| l == "drained"),
        "the last run did not drain the outbox ({status}): {lines:?}"
    );

    // Nothing was printed twice, and rounds were really cut short mid-scan.
    let unique: HashSet<Uuid> = accepted.iter().copied().collect();
    assert_eq!(unique.len(), accepted.len(), "an event accepted twice");
    assert!(
        cut_short >= ROUNDS / 2,
        "only {cut_short} of {ROUNDS} rounds were killed while running"
    );
    assert!(
        accepted.len() >= 50,
        "too few scans for the test to mean anything: {}",
        accepted.len()
    );

    // The station's own record: every event answered.
    let outbox = Outbox::open(&data.join("outbox.db"), None).expect("open the outbox");
    let stored = outbox.all_ids().expect("outbox events");
    let unanswered: Vec<_> = stored
        .iter()
        .filter(|(_, s)| matches!(s, State::Pending | State::Sent))
        .collect();
    assert!(unanswered.is_empty(), "still unsent: {unanswered:?}");
    let outbox_state: HashMap<Uuid, State> = stored.iter().copied().collect();
    assert_eq!(
        outbox_state.len(),
        stored.len(),
        "an id twice in the outbox"
    );

    // Every accepted scan is in the outbox and on the server, once, with the
    // same outcome on both sides.
    let events = server_events(&admin).await;
    let on_server: HashMap<Uuid, (String, String)> = events
        .iter()
        .map(|(id, kind, status)| (*id, (kind.clone(), status.clone())))
        .collect();
    assert_eq!(
        on_server.len(),
        events.len(),
        "an event id twice on the server"
    );
    for id in &accepted {
        assert!(
            outbox_state.contains_key(id),
            "accepted {id} is not in the outbox"
        );
        let Some((_, status)) = on_server.get(id) else {
            panic!("accepted {id} never reached the server");
        };
        assert!(
            status == "applied" || status == "rejected",
            "{id}: {status}"
        );
    }
    assert_eq!(
        events.len(),
        stored.len(),
        "events on the server vs in the station's outbox"
    );
    let mut refused = Vec::new();
    for (id, state) in &stored {
        let Some((_, status)) = on_server.get(id) else {
            panic!("{id} is in the outbox ({state:?}) but not on the server");
        };
        let same = matches!(
            (state, status.as_str()),
            (State::Applied, "applied") | (State::Rejected, "rejected")
        );
        assert!(
            same,
            "{id}: {state:?} at the station, {status} on the server"
        );
        if *state == State::Rejected {
            refused.push(outbox.get(*id).expect("get").map(|s| (s.event, s.code)));
        }
    }
    // The plan never asks for anything the server would refuse: a refusal
    // here means a scan was applied twice (e.g. "already_linked").
    assert!(refused.is_empty(), "refused: {refused:?}");

    // The server holds exactly what the outbox says happened, in order.
    let mut model: BTreeMap<(String, String), Uuid> = BTreeMap::new();
    let (mut links, mut undos) = (0i64, 0i64);
    for (id, _) in &stored {
        let ev = outbox
            .get(*id)
            .expect("get")
            .expect("listed event readable")
            .event;
        let key = (
            ev.parent.clone().expect("parent"),
            ev.child.clone().expect("child"),
        );
        match ev.kind {
            EventType::Link => {
                links += 1;
                assert!(model.insert(key, ev.id).is_none(), "linked twice: {ev:?}");
            }
            EventType::Unlink => {
                undos += 1;
                assert!(model.remove(&key).is_some(), "undo of nothing: {ev:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let kinds = |kind: &str| {
        events
            .iter()
            .filter(|(_, k, s)| k == kind && s == "applied")
            .count() as i64
    };
    assert_eq!(kinds("link"), links, "applied links on the server");
    assert_eq!(kinds("unlink"), undos, "applied undos on the server");
    let on_server_links = server_links(&admin).await;
    let expected: BTreeMap<(String, String), Option<Uuid>> =
        model.into_iter().map(|(k, id)| (k, Some(id))).collect();
    if on_server_links != expected {
        let have: BTreeSet<_> = on_server_links.keys().collect();
        let want: BTreeSet<_> = expected.keys().collect();
        panic!(
            "server links differ from the station's record: extra {:?}, missing {:?}",
            have.difference(&want).take(10).collect::<Vec<_>>(),
            want.difference(&have).take(10).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        admin.assert_invariants().await,
        links - undos,
        "link count = applied links - applied undos"
    );
    eprintln!(
        "station_crash: {} accepted over {ROUNDS} rounds ({cut_short} killed mid-run), {} events, {links} links, {undos} undos",
        accepted.len(),
        stored.len()
    );
    std::fs::remove_dir_all(&data).ok();
}

traitortrack_tests::on_each_backend!(killed_station_loses_nothing);
