//! Fuzzing the event door: generated bodies shaped like event batches (and
//! unlike them) are posted to a real server on each backend. Every answer is a
//! 200 with one result per event or a 4xx in the one error shape, never a 5xx;
//! a refused request stores no event; and afterwards the stored invariants hold.
//! A second, in-process property: decoding any bytes as an `EventBatch` never panics.
//!
//! Bodies over the size limit are left to `bad_input.rs`: the server answers
//! 413 before reading them and closes, which an ordinary client may see as a
//! broken pipe.
//!
//! The cases come from a seeded generator (`TRAITORTRACK_TEST_SEED` replays
//! another run); a failing case is printed whole.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use traitortrack_protocol::{EventBatch, Role, MAX_EVENTS_PER_REQUEST};
use traitortrack_tests::{on_each_backend, rfc3339, send, Backend, TestServer};

/// Requests per backend.
const CASES: u32 = 200;

/// The longest the requests of one backend may take together.
const TIME_BOUND: Duration = Duration::from_secs(180);

fn seed() -> u64 {
    traitortrack_tests::test_seed(20_240_610)
}

const PARENTS: &[&str] = &[
    "SB00001",
    "SB00002",
    "M444-00001",
    "sb00003",
    " SB00001\r\n",
];
const BILLS: &[&str] = &["BILL1", "BILL2", "NOBILL"];
const USERS: &[&str] = &[
    "admin",
    "ravi",
    "meena",
    "nobody",
    "ADMIN",
    "",
    "ravi\u{0}",
    " ravi ",
];
const TYPES: &[&str] = &["link", "unlink", "bill_add", "bill_remove"];

/// Event ids from a small pool, so resends and clashes happen.
fn pooled_id(i: u8) -> String {
    format!("0190a5c4-7c1e-7000-8000-{:012x}", u64::from(i))
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

// The strategies are boxed: unboxed, their nested value trees overflow a test
// thread's 2 MiB stack in a debug build.

/// Strings a scanner, a bad client or an attacker may put in a field.
fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        ".{0,40}",
        any::<String>(),
        "[a-z0-9 \t\r\n\u{0}\u{7}\u{200b}\u{feff}'\";<>%\\-]{0,30}",
        (1usize..5000).prop_map(|n| "C".repeat(n)),
        Just("SB00001'; DROP TABLE bags;--".to_string()),
        Just("\u{0}".to_string()),
        Just("SB０0001".to_string()),
    ]
    .boxed()
}

/// Values of the wrong type for any field (`null` is left out: optional fields take it).
fn wrong_type() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1e308)),
        Just(json!(u64::MAX)),
        Just(json!([])),
        Just(json!(["SB00001"])),
        Just(json!({})),
        Just(json!({"code": "SB00001"})),
    ]
    .boxed()
}

/// A bag or bill code: mostly from the pools, so links and bills take effect.
fn code() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => prop::sample::select(PARENTS).prop_map(text),
        6 => (1u32..=40).prop_map(|i| text(format!("C{i:04}"))),
        2 => prop::sample::select(BILLS).prop_map(text),
        2 => hostile_string().prop_map(text),
        1 => Just(Value::Null),
    ]
    .boxed()
}

/// Event ids, some from a small pool so that resends and clashes happen.
fn event_id() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => (0u8..24).prop_map(|i| text(pooled_id(i))),
        8 => any::<u128>().prop_map(|n| json!(uuid::Uuid::from_u128(n))),
        1 => Just(json!(uuid::Uuid::nil())),
        1 => Just(json!(uuid::Uuid::max())),
        1 => Just(text(pooled_id(0).to_uppercase())),
    ]
    .boxed()
}

fn user() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => prop::sample::select(USERS).prop_map(text),
        1 => hostile_string().prop_map(text),
    ]
    .boxed()
}

/// When it was scanned: mostly about now (made when the case is sent, so the
/// undo window applies), sometimes far off or at the edges of RFC 3339.
fn scanned_at() -> BoxedStrategy<Value> {
    prop_oneof![
        10 => (-7200i64..120).prop_map(|secs| {
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
            text(rfc3339(at))
        }),
        1 => (-4_000_000_000i64..4_000_000_000).prop_map(|secs| {
            let at = time::OffsetDateTime::now_utc()
                .checked_add(time::Duration::seconds(secs))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text(rfc3339(at))
        }),
        2 => prop::sample::select(&[
            "1970-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T23:59:59-23:59",
            "2024-06-01T10:00:00.5+05:30",
            "2024-06-01t10:00:00z",
        ][..]).prop_map(text),
    ]
    .boxed()
}

/// One event of the wire type: mostly one a station would send, with the
/// fields its type needs; otherwise right field types, any contents.
fn event() -> BoxedStrategy<Value> {
    prop_oneof![3 => plausible_event(), 2 => any_event()].boxed()
}

/// An event as a station sends it, by a worker who may or may not act there.
fn plausible_event() -> BoxedStrategy<Value> {
    (
        event_id(),
        prop::sample::select(TYPES),
        prop_oneof![6 => Just("ravi"), 3 => Just("admin"), 1 => prop::sample::select(USERS)],
        prop::sample::select(PARENTS),
        (1u32..=40).prop_map(|i| format!("C{i:04}")),
        prop::sample::select(BILLS),
        any::<bool>(),
        prop::option::weighted(0.1, hostile_string()),
        scanned_at(),
    )
        .prop_map(
            |(id, kind, user, parent, child, bill, with_child, reason, at)| {
                let mut ev =
                    json!({"id": id, "type": kind, "user": user, "parent": parent, "at": at});
                match kind {
                    "link" => ev["child"] = text(child),
                    "unlink" if with_child => ev["child"] = text(child),
                    "bill_add" | "bill_remove" => ev["bill"] = text(bill),
                    _ => {}
                }
                if let Some(reason) = reason {
                    ev["reason"] = text(reason);
                }
                ev
            },
        )
        .boxed()
}

/// Any event of the wire type: right field types, any contents.
fn any_event() -> BoxedStrategy<Value> {
    (
        event_id(),
        prop::sample::select(TYPES),
        user(),
        prop::option::weighted(0.9, code()),
        prop::option::weighted(0.7, code()),
        prop::option::weighted(0.3, code()),
        prop::option::weighted(0.2, hostile_string().prop_map(text)),
        scanned_at(),
        // Fields the wire type does not know are ignored.
        prop::option::weighted(0.05, ("[a-z_]{1,12}", wrong_type())),
    )
        .prop_map(
            |(id, kind, user, parent, child, bill, reason, at, unknown)| {
                let mut ev = Map::new();
                ev.insert("id".into(), id);
                ev.insert("type".into(), text(kind));
                ev.insert("user".into(), user);
                for (name, value) in [
                    ("parent", parent),
                    ("child", child),
                    ("bill", bill),
                    ("reason", reason),
                ] {
                    if let Some(value) = value {
                        ev.insert(name.into(), value);
                    }
                }
                ev.insert("at".into(), at);
                if let Some((name, value)) = unknown {
                    ev.entry(name).or_insert(value);
                }
                Value::Object(ev)
            },
        )
        .boxed()
}

/// A field value no event can have: it makes the whole batch unreadable.
fn bad_field() -> BoxedStrategy<(&'static str, Value)> {
    let broken_time = prop::sample::select(
        &[
            "2016-12-31T23:59:60Z",
            "2024-02-30T10:00:00Z",
            "2024-06-01 10:00:00",
            "2024-06-01T10:00:00",
            "10000-01-01T00:00:00Z",
            "yesterday",
            "",
        ][..],
    )
    .prop_map(text);
    prop_oneof![
        (
            Just("id"),
            prop_oneof![
                hostile_string().prop_map(text),
                wrong_type(),
                Just(Value::Null)
            ]
        ),
        (
            Just("type"),
            prop_oneof![
                Just(text("LINK")),
                Just(text("teleport")),
                wrong_type(),
                Just(Value::Null),
            ]
        ),
        (Just("user"), prop_oneof![wrong_type(), Just(Value::Null)]),
        (
            prop::sample::select(&["parent", "child", "bill", "reason"][..]),
            wrong_type()
        ),
        (
            Just("at"),
            prop_oneof![broken_time, wrong_type(), Just(Value::Null)]
        ),
    ]
    .boxed()
}

/// An event unlike the wire type: a field of the wrong type, or a required one missing.
fn broken_event() -> BoxedStrategy<Value> {
    (
        event(),
        prop_oneof![
            bad_field().prop_map(|(name, value)| (name, Some(value))),
            prop::sample::select(&["id", "type", "user", "at"][..]).prop_map(|name| (name, None)),
        ],
    )
        .prop_map(|(mut ev, (name, value))| {
            match value {
                Some(value) => ev[name] = value,
                None => {
                    if let Some(fields) = ev.as_object_mut() {
                        fields.remove(name);
                    }
                }
            }
            ev
        })
        .boxed()
}

/// A request body and its content type.
#[derive(Debug, Clone)]
struct Body {
    bytes: Vec<u8>,
    content_type: &'static str,
}

fn json_body(value: &Value) -> Body {
    Body {
        bytes: serde_json::to_vec(value).unwrap_or_default(),
        content_type: "application/json",
    }
}

fn batch() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Vec::new()),
        10 => prop::collection::vec(event(), 1..10),
        // One broken event among good ones: the whole batch is refused.
        3 => (prop::collection::vec(event(), 0..6), broken_event(), any::<prop::sample::Index>())
            .prop_map(|(mut events, broken, at)| {
                events.insert(at.index(events.len() + 1), broken);
                events
            }),
        // One over the limit: refused whole.
        1 => event().prop_map(|ev| vec![ev; MAX_EVENTS_PER_REQUEST + 1]),
    ]
    .prop_map(|events| json!({ "events": events }))
    .boxed()
}

/// Bodies shaped like event batches, and unlike them.
fn body() -> BoxedStrategy<Body> {
    prop_oneof![
        14 => batch().prop_map(|b| json_body(&b)),
        1 => (batch(), "[a-z]{1,8}", wrong_type()).prop_map(|(mut b, k, v)| {
            b[k] = v;
            json_body(&b)
        }),
        2 => prop_oneof![
            wrong_type(),
            Just(Value::Null),
            Just(json!({})),
            prop::collection::vec(event(), 0..3).prop_map(Value::Array),
            event().prop_map(|ev| json!({ "events": ev })),
            wrong_type().prop_map(|v| json!({ "events": v })),
            prop::collection::vec(wrong_type(), 1..4).prop_map(|v| json!({ "events": v })),
        ]
        .prop_map(|v| json_body(&v)),
        // Cut short, or one byte changed.
        2 => (batch(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(
            |(b, at, byte, cut)| {
                let mut body = json_body(&b);
                if !body.bytes.is_empty() {
                    let i = at.index(body.bytes.len());
                    if cut {
                        body.bytes.truncate(i);
                    } else {
                        body.bytes[i] = byte;
                    }
                }
                body
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|bytes| Body {
            bytes,
            content_type: "application/json",
        }),
        1 => (1usize..20_000).prop_map(|depth| Body {
            bytes: format!("{{\"events\":{}", "[".repeat(depth)).into_bytes(),
            content_type: "application/json",
        }),
        1 => (batch(), prop::sample::select(&["text/plain", "application/x-www-form-urlencoded", "application/jsonx", ""][..]))
            .prop_map(|(b, content_type)| Body { content_type, ..json_body(&b) }),
    ]
    .boxed()
}

fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('_')
        && !code.contains("__")
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A readable form of a body for a failure message.
fn shown(body: &Body) -> String {
    let text = String::from_utf8_lossy(&body.bytes);
    let mut shown: String = text.chars().take(2000).collect();
    if text.chars().count() > 2000 {
        shown.push_str(&format!("… ({} bytes)", body.bytes.len()));
    }
    format!("content type {:?}, body {shown}", body.content_type)
}

async fn stored_events(s: &TestServer) -> i64 {
    traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM events"
    )
    .fetch_one(c)
    .await)
    .expect("count events")
}

/// What the answers were, to show the generator reached every path.
#[derive(Debug, Default)]
struct Tally {
    /// How often each refusal or rejection code came back.
    codes: std::collections::BTreeMap<String, u32>,
    ok: u32,
    refused: u32,
    applied: u32,
    duplicate: u32,
    rejected: u32,
}

/// Checks one answer; a failure names the case, the seed and the body.
fn check_answer(case: &str, body: &Body, status: StatusCode, answer: &Value, tally: &mut Tally) {
    assert!(
        status == StatusCode::OK || status.is_client_error(),
        "{case}: answered {status}: {answer}\n{}",
        shown(body)
    );
    if status.is_client_error() {
        tally.refused += 1;
        let code = answer["error"]["code"].as_str().unwrap_or("?").to_string();
        *tally.codes.entry(code).or_default() += 1;
        let shape_ok = answer.as_object().is_some_and(|o| o.len() == 1)
            && answer["error"].as_object().is_some_and(|e| e.len() == 2)
            && answer["error"]["code"].as_str().is_some_and(is_snake_case)
            && answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.trim().len() > 10);
        assert!(
            shape_ok,
            "{case}: {status} not in the error shape: {answer}\n{}",
            shown(body)
        );
        return;
    }
    tally.ok += 1;
    let sent: EventBatch = serde_json::from_slice(&body.bytes).unwrap_or_else(|e| {
        panic!(
            "{case}: a body that is not an event batch ({e}) was taken: {answer}\n{}",
            shown(body)
        )
    });
    let results = answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: 200 without results: {answer}\n{}", shown(body)));
    assert_eq!(
        results.len(),
        sent.events.len(),
        "{case}: one result per event: {answer}\n{}",
        shown(body)
    );
    for (result, ev) in results.iter().zip(&sent.events) {
        assert_eq!(
            result["id"],
            json!(ev.id),
            "{case}: results in order: {answer}\n{}",
            shown(body)
        );
        match result["status"].as_str() {
            Some("applied") => tally.applied += 1,
            Some("duplicate") => tally.duplicate += 1,
            Some("rejected") => {
                tally.rejected += 1;
                let code = result["code"].as_str().unwrap_or("?").to_string();
                *tally.codes.entry(code).or_default() += 1;
                let plain = result["code"].as_str().is_some_and(is_snake_case)
                    && result["message"]
                        .as_str()
                        .is_some_and(|m| m.trim().len() > 10);
                assert!(
                    plain,
                    "{case}: a rejection without a code and a plain message: {result}\n{}",
                    shown(body)
                );
            }
            _ => panic!("{case}: unknown status in {result}\n{}", shown(body)),
        }
    }
}

async fn fuzzed_event_bodies(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    // A worker who never logs in at the station: her events are refused one by one.
    s.add_user("meena", Role::Biller, None).await;
    let key = s.station_with("dock-1", &["admin", "ravi"]).await;
    for bill in ["BILL1", "BILL2"] {
        let (status, answer) = s
            .post_json(
                &s.admin_token,
                "/api/v1/bills",
                &json!({"code": bill, "capacity": 3}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "bill {bill}: {answer}");
    }

    let seed = seed();
    let mut seed_bytes = [0u8; 32];
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = body();
    let started = Instant::now();
    let mut tally = Tally::default();
    for n in 1..=runner.config().cases {
        assert!(
            started.elapsed() < TIME_BOUND,
            "{backend:?}: only {} of {CASES} cases ran within {TIME_BOUND:?}",
            n - 1
        );
        let body = strategy
            .new_tree(&mut runner)
            .expect("the generator makes a case")
            .current();
        let case = format!("{backend:?} case {n} of seed {seed} (TRAITORTRACK_TEST_SEED={seed})");
        let before = stored_events(&s).await;
        let mut req = s
            .http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .body(body.bytes.clone());
        if !body.content_type.is_empty() {
            req = req.header(CONTENT_TYPE, body.content_type);
        }
        let (status, answer) = send(req).await;
        check_answer(&case, &body, status, &answer, &mut tally);
        if status != StatusCode::OK {
            assert_eq!(
                stored_events(&s).await,
                before,
                "{case}: a refused request stored events\n{}",
                shown(&body)
            );
        }
    }
    let links = s.assert_invariants().await;
    println!(
        "{backend:?}: {CASES} cases in {:.1?}: {tally:?}, {links} links stored",
        started.elapsed()
    );
    // The generator must reach every path, or this test proves little.
    assert!(tally.refused > 10, "too few refused requests: {tally:?}");
    assert!(tally.ok > 50, "too few accepted requests: {tally:?}");
    assert!(tally.applied > 20, "too few applied events: {tally:?}");
    assert!(tally.rejected > 20, "too few rejected events: {tally:?}");
    assert!(tally.duplicate > 0, "no resent events: {tally:?}");
    assert!(links > 0, "nothing was linked");
}
on_each_backend!(fuzzed_event_bodies);

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Decoding never panics, whatever the bytes; what decodes re-encodes and decodes the same.
    #[test]
    fn decoding_any_bytes_as_a_batch_never_panics(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        body().prop_map(|b| b.bytes),
    ]) {
        if let Ok(batch) = serde_json::from_slice::<EventBatch>(&body) {
            let again = serde_json::to_vec(&batch).expect("a decoded batch encodes");
            let back: EventBatch = serde_json::from_slice(&again).expect("and decodes again");
            prop_assert_eq!(back.events, batch.events);
        }
    }
}
