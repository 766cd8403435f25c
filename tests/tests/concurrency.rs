//! Concurrency over real HTTP: 200 link events for one parent from 50
//! concurrent clients (SQLite and PostgreSQL), the same children raced into two
//! parents, and the 200-event race split across two `traitortrack serve`
//! processes on one PostgreSQL database: exactly `capacity` applied, the rest
//! `parent_full`, counters equal the tables. And a scan and an import that
//! meet a new bag's code taken by another writer meanwhile run again
//! instead of failing. Lookups read together each get their own bag.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::process::ServerProcess;
use traitortrack_tests::{
    children, fresh_postgres_url, link, on_both, server_binary, settings, unlink, TestServer,
};

const PARENT: &str = "SB00001";
const OTHER_PARENT: &str = "SB00002";
const CAPACITY: usize = 30;
/// Concurrent clients; each is one worker at one station with its own HTTP client.
const CLIENTS: usize = 50;
const STATIONS: usize = 5;
const EVENTS: usize = 200;
/// Bounds on every request and on a whole race, so nothing hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const RACE_TIMEOUT: Duration = Duration::from_secs(40);

/// A worker logged in at a station: who scans, and the station key to send with.
struct Worker {
    name: String,
    key: String,
}

/// `stations` stations with `per_station` dispatchers each (all in one area),
/// every worker logged in at their station once.
async fn workers(s: &TestServer, stations: usize, per_station: usize) -> Vec<Worker> {
    let mut out = Vec::with_capacity(stations * per_station);
    for st in 0..stations {
        let key = s.station(&format!("dock-{st}")).await;
        for w in 0..per_station {
            let name = format!("worker{st}x{w}");
            s.add_user(&name, Role::Dispatcher, Some("north")).await;
            s.login(&name, Some(&key)).await;
            out.push(Worker {
                name,
                key: key.clone(),
            });
        }
    }
    out
}

/// One request a client sends: one event, to one server, as one station.
struct Shot {
    base: String,
    key: String,
    event: Value,
}

/// What came back for one shot.
struct Outcome {
    client: usize,
    event: Value,
    /// `None` when the request did not get an answer at all.
    status: Option<StatusCode>,
    body: Value,
}

/// Runs each client's shots in its own task with its own HTTP client; all
/// clients start together. Every request is bounded, and so is the whole race.
async fn race(plan: Vec<Vec<Shot>>) -> Vec<Outcome> {
    let barrier = Arc::new(tokio::sync::Barrier::new(plan.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (client, shots) in plan.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("http client");
            barrier.wait().await;
            let mut outcomes = Vec::with_capacity(shots.len());
            for shot in shots {
                let sent = http
                    .post(format!("{}/api/v1/events", shot.base))
                    .header("x-station-key", &shot.key)
                    .json(&json!({ "events": [shot.event.clone()] }))
                    .send()
                    .await;
                let (status, body) = match sent {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = match resp.text().await {
                            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                            Err(e) => Value::String(format!("body unreadable: {e}")),
                        };
                        (Some(status), body)
                    }
                    Err(e) => (None, Value::String(format!("no answer: {e}"))),
                };
                outcomes.push(Outcome {
                    client,
                    event: shot.event,
                    status,
                    body,
                });
            }
            outcomes
        });
    }
    let joined = tokio::time::timeout(RACE_TIMEOUT, async {
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("client task panicked"));
        }
        all
    })
    .await;
    joined.unwrap_or_else(|_| panic!("the race did not finish within {RACE_TIMEOUT:?}"))
}

/// Checks every request got a 200 with exactly one result for its event, and
/// returns (event, result) pairs.
fn results(outcomes: Vec<Outcome>) -> Vec<(Value, Value)> {
    let mut bad = Vec::new();
    let mut out = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let results = o.body["results"].as_array();
        let ok = o.status == Some(StatusCode::OK)
            && results.is_some_and(|r| r.len() == 1 && r[0]["id"] == o.event["id"]);
        if ok {
            out.push((o.event, o.body["results"][0].clone()));
        } else {
            bad.push(format!(
                "client {} event {}: {:?} {}",
                o.client, o.event, o.status, o.body
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of the requests did not get a 200 with their one result, e.g.:\n{}",
        bad.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    out
}

/// "applied" or "rejected/<code>" (or whatever came back), for tallies.
fn outcome_name(result: &Value) -> String {
    match result["status"].as_str() {
        Some("rejected") => format!("rejected/{}", result["code"].as_str().unwrap_or("?")),
        Some(other) => other.to_string(),
        None => format!("no status: {result}"),
    }
}

fn tally(results: &[(Value, Value)]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for (_, r) in results {
        *t.entry(outcome_name(r)).or_insert(0) += 1;
    }
    t
}

fn full_message(parent: &str) -> String {
    format!("{parent} is full: {CAPACITY} of {CAPACITY}")
}

/// The applied results for `parent` each report the parent state after their
/// own link: every count from 1 to capacity exactly once, complete only at the
/// last; rejections say the parent is full in plain words.
fn assert_parent_states(results: &[(Value, Value)], parent: &str) {
    let mut counts = Vec::new();
    for (event, r) in results.iter().filter(|(e, _)| e["parent"] == parent) {
        match r["status"].as_str() {
            Some("applied") => {
                assert_eq!(r["parent"]["code"], parent, "{event} -> {r}");
                assert_eq!(r["parent"]["capacity"], json!(CAPACITY), "{r}");
                let n = r["parent"]["children"].as_u64().expect("children count");
                assert_eq!(
                    r["parent"]["complete"],
                    json!(n as usize == CAPACITY),
                    "{r}"
                );
                counts.push(n);
            }
            _ if r["code"] == "parent_full" => {
                assert_eq!(r["message"], full_message(parent).as_str(), "{r}");
            }
            _ => {}
        }
    }
    counts.sort_unstable();
    let expected: Vec<u64> = (1..=CAPACITY as u64).collect();
    assert_eq!(
        counts, expected,
        "each applied link into {parent} must see its own count, 1 to {CAPACITY} once each"
    );
}

/// Reads a parent through a server's API and checks it is full; returns its children.
async fn full_parent(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    parent: &str,
) -> BTreeSet<String> {
    let resp = http
        .get(format!("{base}/api/v1/bags/{parent}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET bag answered");
    assert_eq!(resp.status(), StatusCode::OK, "GET {parent} from {base}");
    let bag: Value = resp.json().await.expect("bag JSON");
    assert_eq!(
        bag["child_count"],
        json!(CAPACITY),
        "{parent} at {base}: {bag}"
    );
    assert_eq!(bag["capacity"], json!(CAPACITY), "{bag}");
    assert_eq!(bag["complete"], true, "{bag}");
    let kids: Vec<String> = bag["children"]
        .as_array()
        .expect("children list")
        .iter()
        .map(|c| c["code"].as_str().expect("child code").to_string())
        .collect();
    assert_eq!(
        kids.len(),
        CAPACITY,
        "{parent} lists {} children",
        kids.len()
    );
    let set: BTreeSet<String> = kids.into_iter().collect();
    assert_eq!(set.len(), CAPACITY, "{parent} lists a child twice");
    set
}

/// Client `k` sends events `k`, `k + CLIENTS`, … of `events`, as worker `k`,
/// to `bases[k % bases.len()]`.
fn deal(events: Vec<(String, String)>, workers: &[Worker], bases: &[String]) -> Vec<Vec<Shot>> {
    let mut plan: Vec<Vec<Shot>> = (0..CLIENTS).map(|_| Vec::new()).collect();
    for (i, (parent, child)) in events.into_iter().enumerate() {
        let k = i % CLIENTS;
        let w = &workers[k];
        plan[k].push(Shot {
            base: bases[k % bases.len()].clone(),
            key: w.key.clone(),
            event: link(&w.name, &parent, &child),
        });
    }
    plan
}

/// The checks of a 200-child race into one parent; returns the applied children.
fn assert_one_parent_race(results: &[(Value, Value)]) -> BTreeSet<String> {
    let expected = BTreeMap::from([
        ("applied".to_string(), CAPACITY),
        ("rejected/parent_full".to_string(), EVENTS - CAPACITY),
    ]);
    assert_eq!(
        tally(results),
        expected,
        "outcomes of {EVENTS} links into {PARENT}"
    );
    assert_parent_states(results, PARENT);
    results
        .iter()
        .filter(|(_, r)| r["status"] == "applied")
        .map(|(e, _)| e["child"].as_str().expect("child").to_string())
        .collect()
}

/// The stored state after a one-parent race, through the API.
async fn assert_one_parent_stored(s: &TestServer, applied: &BTreeSet<String>) {
    let kids = full_parent(&s.http, &s.base, &s.admin_token, PARENT).await;
    assert_eq!(
        &kids, applied,
        "{PARENT} holds exactly the children whose link was applied"
    );
    assert_eq!(s.assert_invariants().await, CAPACITY as i64, "links stored");
    let stats = s.stats().await;
    assert_eq!(stats["parents"], 1, "{stats}");
    assert_eq!(
        stats["children"],
        json!(CAPACITY),
        "refused children are not created: {stats}"
    );
    assert_eq!(stats["complete_parents"], 1, "{stats}");
}

/// Sends a request (bounded by [`REQUEST_TIMEOUT`]): its status and JSON body.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = request
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .expect("an answer");
    let status = resp.status();
    (status, resp.json::<Value>().await.expect("a JSON body"))
}

/// Another writer's transaction holding a new child's code, uncommitted.
async fn hold_code<'c>(
    conn: &'c mut sqlx::PgConnection,
    code: &str,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    use sqlx::Connection as _;
    let mut held = conn.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO bags (code, kind, child_count, created_at, updated_at)
         VALUES ($1, 'child', 0, now(), now())",
    )
    .bind(code)
    .execute(&mut *held)
    .await
    .expect("hold a code");
    held
}

async fn fifty_clients_one_parent(s: &TestServer) {
    let ws = workers(s, STATIONS, CLIENTS / STATIONS).await;
    let events = children("C", EVENTS)
        .into_iter()
        .map(|c| (PARENT.to_string(), c))
        .collect();
    let plan = deal(events, &ws, std::slice::from_ref(&s.base));
    let results = results(race(plan).await);
    assert_eq!(results.len(), EVENTS);
    let applied = assert_one_parent_race(&results);
    assert_one_parent_stored(s, &applied).await;
}
on_both!(fifty_clients_one_parent);

async fn same_children_into_two_parents(s: &TestServer) {
    let ws = workers(s, STATIONS, CLIENTS / STATIONS).await;
    // Each child goes to both parents; the two links of one child are sent by
    // neighbouring clients in the same round, so they are in flight together.
    let kids = children("C", EVENTS);
    let events = kids
        .iter()
        .flat_map(|c| {
            [
                (PARENT.to_string(), c.clone()),
                (OTHER_PARENT.to_string(), c.clone()),
            ]
        })
        .collect();
    let plan = deal(events, &ws, std::slice::from_ref(&s.base));
    let results = results(race(plan).await);
    assert_eq!(results.len(), 2 * EVENTS);

    let in_first = full_parent(&s.http, &s.base, &s.admin_token, PARENT).await;
    let in_second = full_parent(&s.http, &s.base, &s.admin_token, OTHER_PARENT).await;
    // With 200 children for 60 places both parents fill: a parent left short
    // would have refused every child as being in the other one.
    assert!(
        in_first.is_disjoint(&in_second),
        "a child is in both parents: {:?}",
        in_first.intersection(&in_second).collect::<Vec<_>>()
    );
    let holder = |child: &str| -> Option<&str> {
        if in_first.contains(child) {
            Some(PARENT)
        } else if in_second.contains(child) {
            Some(OTHER_PARENT)
        } else {
            None
        }
    };

    let mut applied_per_child: BTreeMap<String, usize> = BTreeMap::new();
    let mut applied_links = BTreeSet::new();
    let mut wrong = Vec::new();
    for (event, r) in &results {
        let parent = event["parent"].as_str().expect("parent");
        let child = event["child"].as_str().expect("child");
        let other = if parent == PARENT {
            OTHER_PARENT
        } else {
            PARENT
        };
        let fits = match (r["status"].as_str(), r["code"].as_str()) {
            (Some("applied"), _) => {
                *applied_per_child.entry(child.to_string()).or_insert(0) += 1;
                applied_links.insert((parent.to_string(), child.to_string()));
                holder(child) == Some(parent)
            }
            (Some("rejected"), Some("parent_full")) => true,
            (Some("rejected"), Some("child_in_other_parent")) => holder(child) == Some(other),
            (Some("rejected"), Some("already_linked")) => holder(child) == Some(parent),
            _ => false,
        };
        if !fits {
            wrong.push(format!(
                "{parent} <- {child}: {r} (child now in {:?})",
                holder(child)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "outcomes that do not match where the children ended up ({} of them), e.g.:\n{}",
        wrong.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    let twice: Vec<_> = applied_per_child.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "children linked more than once: {twice:?}"
    );

    let stored: BTreeSet<(String, String)> = in_first
        .iter()
        .map(|c| (PARENT.to_string(), c.clone()))
        .chain(
            in_second
                .iter()
                .map(|c| (OTHER_PARENT.to_string(), c.clone())),
        )
        .collect();
    assert_eq!(
        applied_links, stored,
        "the applied links are exactly the stored ones"
    );
    assert_parent_states(&results, PARENT);
    assert_parent_states(&results, OTHER_PARENT);
    let links = s.assert_invariants().await;
    assert_eq!(
        links,
        (in_first.len() + in_second.len()) as i64,
        "links stored equal the two parents' counts"
    );
    assert_eq!(links, 2 * CAPACITY as i64);
    let t = tally(&results);
    assert_eq!(t.get("applied"), Some(&(2 * CAPACITY)), "{t:?}");
}
on_both!(same_children_into_two_parents);

/// Lookups that arrive together are read in one statement; each answer
/// must still be the bag asked for. Parents holding 1 to 8 children, each
/// of those children, an empty parent, a child in no parent and a code
/// that is no bag: every one asked 3 times, all at once.
async fn lookups_read_together_answer_each_their_own(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    // code -> (its children, its parent)
    let mut expected: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
    for p in 1..=8usize {
        let parent = format!("SB{p:05}");
        let kids = children(&format!("K{p}X"), p);
        let events: Vec<Value> = kids.iter().map(|c| link("ravi", &parent, c)).collect();
        let (status, body) = s.events(&key, &events).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for child in &kids {
            expected.insert(child.clone(), (Vec::new(), Some(parent.clone())));
        }
        expected.insert(parent, (kids, None));
    }
    // An empty parent and a child in no parent: a scan taken back.
    let r = s.event(&key, link("ravi", "SB00099", "K99X0001")).await;
    assert_eq!(r["status"], "applied", "{r}");
    let r = s.event(&key, unlink("ravi", "SB00099", None)).await;
    assert_eq!(r["status"], "applied", "{r}");
    expected.insert("SB00099".into(), (Vec::new(), None));
    expected.insert("K99X0001".into(), (Vec::new(), None));

    let mut asks: Vec<String> = expected.keys().cloned().collect();
    asks.push("SB09999".into());
    let asks: Vec<String> = asks.iter().cycle().take(asks.len() * 3).cloned().collect();
    let mut reads = tokio::task::JoinSet::new();
    for code in asks {
        let read = s
            .http
            .get(s.url(&format!("/api/v1/bags/{code}")))
            .bearer_auth(&s.admin_token);
        reads.spawn(async move {
            let (status, body) = answer(read).await;
            (code, status, body)
        });
    }
    let mut answered = 0;
    while let Some(read) = tokio::time::timeout(RACE_TIMEOUT, reads.join_next())
        .await
        .expect("every lookup answers in time")
    {
        let (code, status, bag) = read.expect("lookup task");
        answered += 1;
        let Some((kids, parent)) = expected.get(&code) else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{code}: {bag}");
            assert_eq!(bag["error"]["code"], "bag_not_found", "{bag}");
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{code}: {bag}");
        assert_eq!(bag["code"], json!(code), "the answer is the bag asked for");
        let listed: Vec<&str> = bag["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| c["code"].as_str().expect("child code"))
            .collect();
        assert_eq!(listed, *kids, "{code}'s children, in link order");
        assert_eq!(bag["parent"], json!(parent), "{code}'s parent");
        if !kids.is_empty() {
            assert_eq!(bag["child_count"], json!(kids.len()), "{bag}");
            assert_eq!(bag["children"][0]["linked_by"], "ravi", "{bag}");
        }
    }
    assert_eq!(answered, (expected.len() + 1) * 3);
}
on_both!(lookups_read_together_answer_each_their_own);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_one_parent_across_two_processes() {
    let Some(url) = fresh_postgres_url().await else {
        return;
    };
    let bin = server_binary!();
    // Accounts, stations and station logins go through an in-process server
    // on the same database; the events go only to the two real processes.
    let s = TestServer::start_with(settings(&url)).await;
    let ws = workers(&s, STATIONS, CLIENTS / STATIONS).await;

    let servers = [
        ServerProcess::start(bin.clone(), &url).await,
        ServerProcess::start(bin, &url).await,
    ];
    let bases: Vec<String> = servers.iter().map(ServerProcess::base).collect();

    let events = children("C", EVENTS)
        .into_iter()
        .map(|c| (PARENT.to_string(), c))
        .collect();
    // Clients alternate between the processes; each station talks to both.
    let plan = deal(events, &ws, &bases);
    let outcomes = race(plan).await;
    let results = results(outcomes);
    let applied = assert_one_parent_race(&results);

    // Both processes, and the in-process server, read the same full parent.
    for base in &bases {
        let kids = full_parent(&s.http, base, &s.admin_token, PARENT).await;
        assert_eq!(&kids, &applied, "{PARENT} as {base} reads it");
    }
    assert_one_parent_stored(&s, &applied).await;
    drop(servers);
}

// ------------------------------------------------------------ a code taken meanwhile

/// Waits (at most 10 s) until a statement on this database waits for a lock.
async fn until_one_waits(conn: &mut sqlx::PgConnection) {
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no statement came to wait for the held code within 10 s");
}

/// Another writer (here a bare transaction) holds a new bag's code,
/// uncommitted, while a scan and then an import insert that same code: each
/// waits, meets the code taken when the other commits, and runs again on
/// the fresh state instead of failing. PostgreSQL only: SQLite has one writer.
#[tokio::test]
async fn a_code_taken_meanwhile_reruns_the_scan_and_the_import() {
    use sqlx::Connection as _;
    let Some(url) = fresh_postgres_url().await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let ws = workers(&s, 1, 1).await;
    let w = &ws[0];
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut watch = sqlx::PgConnection::connect(&url).await.expect("connect");

    // A scan of a new child while another writer holds its code.
    let held = hold_code(&mut other, "TAKEN0001").await;
    let scan = tokio::spawn(answer(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &w.key)
            .json(&json!({ "events": [link(&w.name, PARENT, "TAKEN0001")] })),
    ));
    until_one_waits(&mut watch).await;
    held.commit().await.expect("commit");
    let (status, body) = scan.await.expect("the scan task");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");

    // An import naming a new child while another writer holds its code.
    let held = hold_code(&mut other, "TAKEN0002").await;
    let import = tokio::spawn(answer(
        s.http
            .post(s.url("/api/v1/imports?kind=bags&file_name=taken.csv"))
            .bearer_auth(&s.admin_token)
            .body("code,kind,parent code\nTAKEN0002,child,SB00002\n"),
    ));
    until_one_waits(&mut watch).await;
    held.commit().await.expect("commit");
    let (status, summary) = import.await.expect("the import task");
    assert!(status.is_success(), "{summary}");
    assert_eq!(summary["state"], "done", "{summary}");
    assert_eq!(summary["counts"]["linked"], 1, "{summary}");
    assert_eq!(summary["counts"]["refused"], 0, "{summary}");

    let parents: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.code, p.code FROM links l JOIN bags c ON c.id = l.child_id
         JOIN bags p ON p.id = l.parent_id WHERE c.code LIKE 'TAKEN%' ORDER BY c.code",
    )
    .fetch_all(&mut watch)
    .await
    .expect("links");
    assert_eq!(
        parents,
        [("TAKEN0001", PARENT), ("TAKEN0002", OTHER_PARENT)]
            .map(|(c, p)| (c.to_string(), p.to_string()))
    );
}
