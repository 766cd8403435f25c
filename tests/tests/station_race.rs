//! Race: 20 stations (in this process, each with its own outbox and its own
//! TCP proxy to one real `traitortrack serve`) scan seeded random links and
//! undos over a few shared parents, while their networks go down at random.
//! After every station has drained: the stored invariants hold, every event in
//! every outbox was answered with the outcome the server stored, and the
//! server holds exactly the links the stations' recorded outcomes add up to.
//! SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use traitortrack_protocol::{EventType, Role};
use traitortrack_station_core::outbox::State;
use traitortrack_station_core::sounds::Sounds;
use traitortrack_station_core::station::{Station, StationConfig, Verdict};
use traitortrack_station_core::workers::Worker;
use traitortrack_tests::process::{Proxy, ServerProcess};
use traitortrack_tests::{fresh_url, server_binary, settings, Backend, TestServer, PASSWORD};
use uuid::Uuid;

const STATIONS: usize = 20;
const SCANS_PER_STATION: usize = 40;
const WORKERS: [&str; 4] = ["asha", "bilal", "chen", "dara"];
/// Eight shared parents: four of capacity 30, four of capacity 15.
const PARENTS: [&str; 8] = [
    "SB20001",
    "SB20002",
    "SB20003",
    "SB20004",
    "M444-20001",
    "M444-20002",
    "M444-20003",
    "M444-20004",
];
const CHILDREN: usize = 300;
/// Bounds on the scanning (40 scans a station) and on the drain after it.
const SCAN_LIMIT: Duration = Duration::from_secs(90);
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

fn seed() -> u64 {
    traitortrack_tests::test_seed(20_240_602)
}

/// What the worker heard for a scan that was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Applied,
    Refused,
    SavedOffline,
}

/// One station's run: what it heard for each stored event, and counts.
#[derive(Debug, Default)]
struct Run {
    heard: Vec<(Uuid, Heard)>,
    refused_here: usize,
    outages: usize,
}

/// A station's network: its proxy, down while any outage covers it.
struct Line {
    proxy: Proxy,
    outages: std::sync::Mutex<u32>,
}

impl Line {
    fn down(&self) {
        let mut n = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        self.proxy.set_down(true);
    }

    fn up(&self) {
        let mut n = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.proxy.set_down(false);
        }
    }

    /// Down now, up again after `length`.
    fn outage(self: &Arc<Self>, length: Duration) -> tokio::task::JoinHandle<()> {
        self.down();
        let line = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            line.up();
        })
    }
}

/// The station's events, oldest first (SQLite work, off the async threads).
fn ids(station: &Station) -> Vec<Uuid> {
    tokio::task::block_in_place(|| station.outbox().all_ids())
        .expect("outbox ids")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn scan_at_random(
    n: usize,
    station: Arc<Station>,
    worker: Worker,
    line: Arc<Line>,
    seed: u64,
) -> Run {
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut run = Run::default();
    // The links this station heard go in (applied or queued), newest last.
    let mut mine: Vec<(&str, String)> = Vec::new();
    let mut outages = Vec::new();
    for _ in 0..SCANS_PER_STATION {
        if rng.gen_ratio(1, 8) {
            run.outages += 1;
            outages.push(line.outage(Duration::from_millis(rng.gen_range(100..=800))));
        }
        let before = ids(&station);
        let verdict = if !mine.is_empty() && rng.gen_ratio(1, 5) {
            // Undo the last child this station put in: the model stays exact
            // because the undo names its child.
            let (parent, child) = mine.pop().expect("a link to undo");
            station.undo(&worker, parent, Some(&child)).await
        } else {
            let parent = PARENTS[rng.gen_range(0..PARENTS.len())];
            let child = format!("R{:04}", rng.gen_range(1..=CHILDREN));
            let v = station.link(&worker, parent, &child).await;
            if matches!(v, Verdict::Applied { .. } | Verdict::SavedOffline { .. }) {
                mine.push((parent, child));
            }
            v
        };
        let after = ids(&station);
        let new: Vec<Uuid> = after
            .iter()
            .filter(|id| !before.contains(id))
            .copied()
            .collect();
        let heard = match &verdict {
            Verdict::Applied { .. } => Some(Heard::Applied),
            Verdict::SavedOffline { .. } => Some(Heard::SavedOffline),
            Verdict::Refused { .. } if !new.is_empty() => Some(Heard::Refused),
            Verdict::Refused { .. } => None,
            Verdict::NotSaved { message } => panic!("station {n}: not saved: {message}"),
        };
        match (heard, new.as_slice()) {
            (Some(h), [id]) => run.heard.push((*id, h)),
            (None, []) => run.refused_here += 1,
            _ => panic!("station {n}: {verdict:?} but new outbox events {new:?}"),
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..60))).await;
    }
    for task in outages {
        task.await.expect("outage over");
    }
    run
}

/// What each station shows, and how many events the server stored: for a
/// failure message.
async fn situation(stations: &[Arc<Station>], admin: &TestServer) -> String {
    let shown: Vec<String> = stations
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let st = s.status().borrow().clone();
            format!(
                "{n}: {} unsent {} ({})",
                if st.online { "online" } else { "offline" },
                st.unsent,
                st.last_error.unwrap_or_default()
            )
        })
        .collect();
    let stored: Result<i64, _> = traitortrack_server::on!(admin.db.reader(), |c| {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(c)
            .await
    });
    format!("server stored {stored:?} events; stations: {shown:#?}")
}

/// Waits until the station has nothing unsent.
async fn drained(station: &Station) {
    let mut status = station.status();
    while status.borrow_and_update().unsent > 0 {
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

async fn twenty_stations_agree_with_the_server(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let seed = seed();
    eprintln!("station_race: seed {seed} (TRAITORTRACK_TEST_SEED to replay)");
    let admin = TestServer::start_with(settings(&url)).await;
    for w in WORKERS {
        admin.add_user(w, Role::Dispatcher, Some("north")).await;
    }
    let mut keys = Vec::new();
    for n in 0..STATIONS {
        keys.push(admin.station(&format!("race-{n:02}")).await);
    }
    let server = ServerProcess::start(server_binary!(), &url).await;

    let mut stations = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let line = Arc::new(Line {
            proxy: Proxy::start(server.addr).await,
            outages: std::sync::Mutex::new(0),
        });
        let config = StationConfig::new(
            &line.proxy.base(),
            key,
            std::env::temp_dir().join(format!("tt-station-race-{}", Uuid::now_v7())),
        );
        let station = Station::open(&config, Sounds::silent()).expect("open station");
        let worker = station
            .login(WORKERS[n % WORKERS.len()], PASSWORD)
            .await
            .expect("login");
        assert!(worker.online, "station {n}: logged in through the server");
        stations.push((station, worker, line, config.data_dir));
    }
    let all: Vec<Arc<Station>> = stations.iter().map(|(s, ..)| Arc::clone(s)).collect();

    // Besides each station's own outages, the whole site loses the network
    // once, and every station comes back with a queue at the same moment.
    let mut rng = StdRng::seed_from_u64(seed);
    let site_down_at = Duration::from_millis(rng.gen_range(500..=2500));
    let site_down_for = Duration::from_millis(rng.gen_range(1000..=3000));
    let lines: Vec<Arc<Line>> = stations.iter().map(|(_, _, l, _)| Arc::clone(l)).collect();
    let site_outage = tokio::spawn(async move {
        tokio::time::sleep(site_down_at).await;
        let ends: Vec<_> = lines.iter().map(|l| l.outage(site_down_for)).collect();
        for end in ends {
            end.await.expect("site outage over");
        }
    });

    let started = Instant::now();
    let tasks: Vec<_> = stations
        .iter()
        .enumerate()
        .map(|(n, (station, worker, line, _))| {
            tokio::spawn(scan_at_random(
                n,
                Arc::clone(station),
                worker.clone(),
                Arc::clone(line),
                seed,
            ))
        })
        .collect();
    let scanning = async {
        let mut runs = Vec::new();
        for t in tasks {
            runs.push(t.await.expect("station task"));
        }
        site_outage.await.expect("site outage");
        runs
    };
    let runs = match tokio::time::timeout(SCAN_LIMIT, scanning).await {
        Ok(runs) => runs,
        Err(_) => panic!(
            "the stations did not get through their {SCANS_PER_STATION} scans within {SCAN_LIMIT:?}: {}",
            situation(&all, &admin).await
        ),
    };
    let scanned = started.elapsed();
    let draining = async {
        for station in &all {
            drained(station).await;
        }
    };
    if tokio::time::timeout(DRAIN_LIMIT, draining).await.is_err() {
        panic!(
            "not drained {DRAIN_LIMIT:?} after the last scan: {}",
            situation(&all, &admin).await
        );
    }
    let all_drained = started.elapsed();

    // Every event in every outbox was answered, and the station's record of
    // it matches what the worker heard.
    let mut recorded: HashMap<Uuid, (usize, State, traitortrack_protocol::Event)> = HashMap::new();
    let mut outbox_events = 0usize;
    for (n, ((station, ..), run)) in stations.iter().zip(&runs).enumerate() {
        let all = station.outbox().all_ids().expect("outbox ids");
        outbox_events += all.len();
        assert_eq!(
            all.len(),
            run.heard.len(),
            "station {n}: events vs stored scans"
        );
        for (id, state) in &all {
            assert!(
                matches!(state, State::Applied | State::Rejected),
                "station {n}: {id} still {state:?}"
            );
            let stored = station
                .outbox()
                .get(*id)
                .expect("get")
                .expect("listed event readable");
            assert!(
                recorded.insert(*id, (n, *state, stored.event)).is_none(),
                "{id} in two outboxes"
            );
        }
        for (id, heard) in &run.heard {
            let state = recorded.get(id).map(|r| r.1);
            let agrees = match heard {
                Heard::Applied => state == Some(State::Applied),
                Heard::Refused => state == Some(State::Rejected),
                Heard::SavedOffline => state.is_some(),
            };
            assert!(
                agrees,
                "station {n}: {id} heard {heard:?}, recorded {state:?}"
            );
        }
    }

    // The server stored each of those events once, with the same outcome.
    let events: Vec<(Uuid, String, String, Option<String>)> =
        traitortrack_server::on!(admin.db.reader(), |c| {
            sqlx::query_as("SELECT id, kind, status, code FROM events")
                .fetch_all(c)
                .await
        })
        .expect("read the server's events");
    assert_eq!(
        events.len(),
        outbox_events,
        "events on the server vs in all outboxes"
    );
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for (id, kind, status, code) in &events {
        let Some((n, state, ev)) = recorded.get(id) else {
            panic!("{id} ({kind}, {status}) is on the server but in no outbox");
        };
        assert_eq!(kind, ev.kind.as_str(), "{id}");
        let same = matches!(
            (state, status.as_str()),
            (State::Applied, "applied") | (State::Rejected, "rejected")
        );
        assert!(
            same,
            "station {n}: {id} {state:?} there, {status} on the server"
        );
        if status == "rejected" {
            *refusals
                .entry(code.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }

    // The model: per (parent, child), applied links minus applied undos.
    let mut net: BTreeMap<(String, String), i64> = BTreeMap::new();
    let (mut links, mut undos) = (0, 0);
    for (_, state, ev) in recorded.values() {
        if *state != State::Applied {
            continue;
        }
        let key = (
            ev.parent.clone().expect("parent"),
            ev.child.clone().expect("child"),
        );
        match ev.kind {
            EventType::Link => {
                links += 1;
                *net.entry(key).or_default() += 1;
            }
            EventType::Unlink => {
                undos += 1;
                *net.entry(key).or_default() -= 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let bad: Vec<_> = net.iter().filter(|(_, v)| !(0..=1).contains(*v)).collect();
    assert!(
        bad.is_empty(),
        "applied links minus undos out of 0..=1: {bad:?}"
    );
    let model: BTreeSet<(String, String)> = net
        .into_iter()
        .filter(|(_, v)| *v == 1)
        .map(|(k, _)| k)
        .collect();
    let mut holders: HashMap<&str, &str> = HashMap::new();
    for (parent, child) in &model {
        if let Some(other) = holders.insert(child, parent) {
            panic!("the model has {child} in {other} and {parent}");
        }
    }

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
    for (parent, child, event) in &rows {
        let made_by = event.and_then(|id| recorded.get(&id));
        assert!(
            matches!(made_by, Some((_, State::Applied, ev))
                if ev.kind == EventType::Link
                    && ev.parent.as_deref() == Some(parent.as_str())
                    && ev.child.as_deref() == Some(child.as_str())),
            "{child} in {parent} was made by {event:?}: {made_by:?}"
        );
    }
    let on_server: BTreeSet<(String, String)> = rows.into_iter().map(|(p, c, _)| (p, c)).collect();
    for parent in PARENTS {
        let have: BTreeSet<&str> = on_server
            .iter()
            .filter(|(p, _)| p == parent)
            .map(|(_, c)| c.as_str())
            .collect();
        let want: BTreeSet<&str> = model
            .iter()
            .filter(|(p, _)| p == parent)
            .map(|(_, c)| c.as_str())
            .collect();
        assert_eq!(have, want, "children of {parent}: server vs model");
    }
    assert_eq!(on_server, model, "links outside the shared parents");
    assert_eq!(
        admin.assert_invariants().await,
        model.len() as i64,
        "link count"
    );

    // The run really raced: conflicts, queued scans and undos all happened.
    let heard = |h: Heard| {
        runs.iter()
            .flat_map(|r| &r.heard)
            .filter(|(_, x)| *x == h)
            .count()
    };
    let outages: usize = runs.iter().map(|r| r.outages).sum();
    let refused_here: usize = runs.iter().map(|r| r.refused_here).sum();
    eprintln!(
        "station_race: {outbox_events} events ({links} links and {undos} undos applied, refused {refusals:?}), \
         {refused_here} refused at the station, heard applied {} / refused {} / saved offline {}, \
         {outages} station outages and one of the site ({site_down_for:?} from {site_down_at:?}); scanned in {scanned:?}, drained by {all_drained:?}",
        heard(Heard::Applied),
        heard(Heard::Refused),
        heard(Heard::SavedOffline),
    );
    assert!(undos > 0, "no undo applied");
    assert!(
        outages > 0 && heard(Heard::SavedOffline) > 0,
        "no scan queued offline"
    );
    assert!(
        refusals.contains_key("child_in_other_parent") || refusals.contains_key("parent_full"),
        "no conflict between stations: {refusals:?}"
    );

    for (station, _, _, dir) in &stations {
        station.shutdown();
        std::fs::remove_dir_all(dir).ok();
    }
}

traitortrack_tests::on_each_backend!(twenty_stations_agree_with_the_server);
