//! Idempotency, on SQLite and PostgreSQL: a batch resent one after another or all at once takes effect once and answers with the first outcome every time.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::{bill_add, link, on_both, send, unlink, TestServer};

/// What the first sending of one event must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Applied,
    Rejected(&'static str),
}

/// A mixed batch for one parent: 8 links, a parent code scanned as a child, the
/// first child scanned again, the parent put on `bill`, and a scan by a worker
/// nobody knows. Returns the events and what each must give the first time.
fn mixed_batch(parent: &str, prefix: &str, bill: &str) -> (Vec<Value>, Vec<Want>) {
    let mut events = Vec::new();
    let mut want = Vec::new();
    for i in 1..=8 {
        events.push(link("ravi", parent, &format!("{prefix}{i:04}")));
        want.push(Want::Applied);
    }
    events.push(link("ravi", parent, "SB09999"));
    want.push(Want::Rejected("child_is_parent"));
    events.push(link("ravi", parent, &format!("{prefix}0001")));
    want.push(Want::Rejected("already_linked"));
    events.push(bill_add("admin", bill, parent));
    want.push(Want::Applied);
    events.push(link("stranger", parent, &format!("{prefix}0009")));
    want.push(Want::Rejected("unknown_worker"));
    (events, want)
}

/// A result with its status taken out: what every answer for one event shares.
fn without_status(result: &Value) -> Value {
    let mut r = result.clone();
    if let Some(obj) = r.as_object_mut() {
        obj.remove("status");
    }
    r
}

/// Checks a first answer against what each event must give.
fn check_first_answer(events: &[Value], want: &[Want], results: &[Value]) {
    assert_eq!(results.len(), events.len(), "one result per event");
    let mut links_applied = 0;
    for ((ev, want), r) in events.iter().zip(want).zip(results) {
        assert_eq!(r["id"], ev["id"], "results follow the request order: {r}");
        match want {
            Want::Applied => {
                assert_eq!(r["status"], "applied", "{ev} -> {r}");
                assert!(r.get("code").is_none_or(Value::is_null), "{r}");
                if ev["type"] == "link" {
                    links_applied += 1;
                    assert_eq!(r["parent"]["children"], json!(links_applied), "{r}");
                } else {
                    assert_eq!(r["bill"]["parent_count"], json!(1), "{r}");
                }
            }
            Want::Rejected(code) => {
                assert_eq!(r["status"], "rejected", "{ev} -> {r}");
                assert_eq!(r["code"], *code, "{r}");
                let message = r["message"].as_str().unwrap_or_default();
                assert!(!message.trim().is_empty(), "a rejection says why: {r}");
            }
        }
    }
}

/// The results array of a 200 answer to an event batch.
fn results_of(status: StatusCode, body: &Value) -> Vec<Value> {
    assert_eq!(status, StatusCode::OK, "events: {body}");
    body["results"].as_array().expect("results array").clone()
}

/// Sends one batch `n` times at once, released together; returns the answers.
async fn send_concurrently(
    s: &TestServer,
    key: &str,
    events: &[Value],
    n: usize,
) -> Vec<Vec<Value>> {
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let req = s
                .http
                .post(s.url("/api/v1/events"))
                .header("x-station-key", key)
                .json(&json!({ "events": events }));
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.wait().await;
                send(req).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("sender task");
        answers.push(results_of(status, &body));
    }
    answers
}

/// The child codes of a parent, in link order, and its child_count.
async fn children_of(s: &TestServer, parent: &str) -> (Vec<String>, Value) {
    let (status, bag) = s
        .get(&s.admin_token, &format!("/api/v1/bags/{parent}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{bag}");
    let codes = bag["children"]
        .as_array()
        .expect("children array")
        .iter()
        .map(|c| c["code"].as_str().expect("child code").to_string())
        .collect();
    (codes, bag["child_count"].clone())
}

/// Checks that one mixed batch for `parent` took effect exactly once, against
/// the totals `before` it was first sent.
async fn check_one_effect(s: &TestServer, before: &Value, parent: &str, prefix: &str, bill: &str) {
    let (codes, count) = children_of(s, parent).await;
    let expected: Vec<String> = (1..=8).map(|i| format!("{prefix}{i:04}")).collect();
    assert_eq!(codes, expected, "children of {parent}");
    assert_eq!(count, json!(8), "child_count of {parent}");
    // The rejected scans created nothing.
    for code in ["SB09999".to_string(), format!("{prefix}0009")] {
        let (status, body) = s.get(&s.admin_token, &format!("/api/v1/bags/{code}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{code}: {body}");
    }
    let (status, b) = s
        .get(&s.admin_token, &format!("/api/v1/bills/{bill}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["parent_count"], json!(1), "{b}");
    assert_eq!(b["child_count"], json!(8), "{b}");
    assert_eq!(b["status"], "in_progress", "{b}");

    let after = s.stats().await;
    let grew = |path: &str| {
        after.pointer(path).and_then(Value::as_i64).unwrap_or(-1000)
            - before.pointer(path).and_then(Value::as_i64).unwrap_or(0)
    };
    assert_eq!(grew("/links"), 8, "links counter: {before} -> {after}");
    assert_eq!(
        grew("/children"),
        8,
        "children counter: {before} -> {after}"
    );
    assert_eq!(grew("/parents"), 1, "parents counter: {before} -> {after}");
    assert_eq!(grew("/bags"), 9, "bags counter: {before} -> {after}");
    assert_eq!(
        grew("/scans_today"),
        9,
        "8 links and 1 bill scan: {before} -> {after}"
    );
    assert_eq!(
        grew("/bills/new"),
        -1,
        "the bill left new once: {before} -> {after}"
    );
    assert_eq!(
        grew("/bills/in_progress"),
        1,
        "the bill is in progress once: {before} -> {after}"
    );
}

async fn create_bill(s: &TestServer, code: &str) {
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/bills",
            &json!({"code": code, "capacity": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "bill {code}: {body}");
}

async fn batch_resent_takes_effect_once(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["admin", "ravi"]).await;
    create_bill(s, "BILL1").await;
    create_bill(s, "BILL2").await;

    // Five times, one after another.
    let before = s.stats().await;
    let (events, want) = mixed_batch("SB00001", "C", "BILL1");
    let (status, body) = s.events(&key, &events).await;
    let first = results_of(status, &body);
    check_first_answer(&events, &want, &first);
    for round in 2..=5 {
        let (status, body) = s.events(&key, &events).await;
        let again = results_of(status, &body);
        assert_eq!(again.len(), first.len(), "round {round}");
        for (a, f) in again.iter().zip(&first) {
            let status = if f["status"] == "applied" {
                "duplicate"
            } else {
                "rejected"
            };
            assert_eq!(a["status"], status, "round {round}: {f} -> {a}");
            assert_eq!(
                without_status(a),
                without_status(f),
                "round {round}: the first outcome again"
            );
        }
    }
    // In another order, each event still gets its own first outcome.
    let reversed: Vec<Value> = events.iter().rev().cloned().collect();
    let (status, body) = s.events(&key, &reversed).await;
    let again = results_of(status, &body);
    for (a, f) in again.iter().zip(first.iter().rev()) {
        assert_eq!(without_status(a), without_status(f), "reversed resend");
    }
    check_one_effect(s, &before, "SB00001", "C", "BILL1").await;
    assert_eq!(s.assert_invariants().await, 8);

    // The same kind of batch, fresh ids, five times at once.
    let before = s.stats().await;
    let (events, want) = mixed_batch("SB00002", "D", "BILL2");
    let answers = send_concurrently(s, &key, &events, 5).await;
    for (i, (ev, want)) in events.iter().zip(&want).enumerate() {
        let mine: Vec<&Value> = answers.iter().map(|a| &a[i]).collect();
        for r in &mine {
            assert_eq!(r["id"], ev["id"], "results follow the request order");
            assert_eq!(
                without_status(r),
                without_status(mine[0]),
                "event {i}: one outcome for all: {mine:?}"
            );
        }
        let count = |status: &str| mine.iter().filter(|r| r["status"] == status).count();
        match want {
            Want::Applied => {
                assert_eq!(
                    count("applied"),
                    1,
                    "event {i} applied exactly once: {mine:?}"
                );
                assert_eq!(
                    count("duplicate"),
                    4,
                    "event {i}: the others are duplicates: {mine:?}"
                );
            }
            Want::Rejected(code) => {
                assert_eq!(count("rejected"), 5, "event {i}: {mine:?}");
                assert_eq!(mine[0]["code"], *code, "event {i}: {mine:?}");
            }
        }
    }
    // The answer that applied each event saw the parent grow one by one.
    let firsts: Vec<Value> = (0..events.len())
        .map(|i| {
            let r = answers
                .iter()
                .map(|a| &a[i])
                .find(|r| r["status"] != "duplicate");
            r.expect("one first outcome per event").clone()
        })
        .collect();
    check_first_answer(&events, &want, &firsts);
    check_one_effect(s, &before, "SB00002", "D", "BILL2").await;
    assert_eq!(s.assert_invariants().await, 16);
}
on_both!(batch_resent_takes_effect_once);

async fn undo_resent_removes_one_child(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    for child in ["C0001", "C0002"] {
        let r = s.event(&key, link("ravi", "SB00001", child)).await;
        assert_eq!(r["status"], "applied", "{r}");
    }

    // The undo names no child: it takes the worker's last scan, so a second
    // effect would remove C0001 too.
    let undo = unlink("ravi", "SB00001", None);
    let first = s.event(&key, undo.clone()).await;
    assert_eq!(first["status"], "applied", "{first}");
    assert_eq!(first["parent"]["children"], json!(1), "{first}");
    for _ in 0..3 {
        let again = s.event(&key, undo.clone()).await;
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(without_status(&again), without_status(&first));
    }
    let (codes, count) = children_of(s, "SB00001").await;
    assert_eq!(codes, ["C0001"], "only the last scan was undone");
    assert_eq!(count, json!(1));
    assert_eq!(s.stats().await["links"], json!(1));

    // A fresh undo of a fresh scan, sent five times at once.
    let r = s.event(&key, link("ravi", "SB00001", "C0003")).await;
    assert_eq!(r["parent"]["children"], json!(2), "{r}");
    let undo = unlink("ravi", "SB00001", None);
    let answers = send_concurrently(s, &key, &[undo], 5).await;
    let statuses: Vec<&Value> = answers.iter().map(|a| &a[0]["status"]).collect();
    assert_eq!(
        statuses.iter().filter(|st| **st == "applied").count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        statuses.iter().filter(|st| **st == "duplicate").count(),
        4,
        "{answers:?}"
    );
    for a in &answers {
        assert_eq!(a[0]["parent"]["children"], json!(1), "{answers:?}");
    }
    let (codes, count) = children_of(s, "SB00001").await;
    assert_eq!(codes, ["C0001"], "one undo removed one child");
    assert_eq!(count, json!(1));
    let (status, child) = s.get(&s.admin_token, "/api/v1/bags/C0001").await;
    assert_eq!(status, StatusCode::OK, "{child}");
    assert_eq!(child["parent"], "SB00001", "{child}");
    assert_eq!(s.assert_invariants().await, 1);
}
on_both!(undo_resent_removes_one_child);
