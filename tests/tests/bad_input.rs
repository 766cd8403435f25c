//! Bad input: malformed or oversized bodies, wrong content types, missing or bad keys and tokens, hostile codes, unknown routes and queries; each a 4xx in the one error shape with nothing written, and never a 5xx.

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_server::api::EVENTS_BODY_LIMIT;
use traitortrack_tests::{
    bill_add, link, now_rfc3339, on_both, send, unlink, TestServer, PASSWORD,
};

/// Sends a request and fails the test on any 5xx answer.
async fn call(req: RequestBuilder) -> (StatusCode, Value) {
    let (status, body) = send(req).await;
    assert!(
        status.as_u16() < 500,
        "the server answered {status}: {body}"
    );
    (status, body)
}

fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('_')
        && !code.contains("__")
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a refusal: this status (a 4xx), the body `{"error":{"code","message"}}`
/// with this snake_case code, and a message in plain words.
#[track_caller]
fn assert_refused(what: &str, answer: &(StatusCode, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert!(got.is_client_error(), "{what}: not a 4xx: {got} {body}");
    assert_eq!(got.as_u16(), status, "{what}: {body}");
    let error = &body["error"];
    assert!(
        body.as_object().is_some_and(|o| o.len() == 1),
        "{what}: not the error shape: {body}"
    );
    let got_code = error["code"].as_str().unwrap_or_default();
    assert!(
        is_snake_case(got_code),
        "{what}: code not snake_case: {body}"
    );
    assert_eq!(got_code, code, "{what}: {body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.trim().len() > 10,
        "{what}: no plain message: {body}"
    );
    for internal in [
        "sqlx",
        "panicked",
        "SQLSTATE",
        "database:",
        "Error {",
        "Refused",
    ] {
        assert!(
            !message.contains(internal),
            "{what}: the message shows internals: {body}"
        );
    }
}

/// How much is stored: the totals and the row count of every table a request could write.
#[derive(Debug, PartialEq)]
struct Written {
    stats: Value,
    rows: Vec<(&'static str, i64)>,
}

const TABLES: [&str; 9] = [
    "bags",
    "links",
    "bills",
    "events",
    "sessions",
    "stations",
    "station_workers",
    "users",
    "audit_log",
];

async fn written(s: &TestServer) -> Written {
    let mut rows = Vec::new();
    for table in TABLES {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(&sql)
            .fetch_one(c)
            .await)
        .expect("count rows");
        rows.push((table, n));
    }
    Written {
        stats: s.stats().await,
        rows,
    }
}

impl Written {
    /// The same, leaving one table out (failed logins are audited by design).
    fn without(mut self, table: &str) -> Written {
        self.rows.retain(|(t, _)| *t != table);
        self
    }
}

/// Checks that a bag does not exist.
async fn assert_no_bag(s: &TestServer, code: &str) {
    let answer = call(
        s.http
            .get(s.url(&format!("/api/v1/bags/{code}")))
            .bearer_auth(&s.admin_token),
    )
    .await;
    assert_refused(&format!("bag {code}"), &answer, 404, "bag_not_found");
}

/// A dispatcher `ravi` and the admin, both logged in at a new station; its key.
async fn station(s: &TestServer) -> String {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.station_with("dock-1", &["admin", "ravi"]).await
}

/// A POST of raw bytes as a station, with this content type.
fn raw_events(
    s: &TestServer,
    key: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> RequestBuilder {
    let mut req = s
        .http
        .post(s.url("/api/v1/events"))
        .header("x-station-key", key);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.body(body)
}

fn raw_post(
    s: &TestServer,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> RequestBuilder {
    s.http
        .post(s.url(path))
        .header(CONTENT_TYPE, content_type)
        .body(body)
}

/// Percent-encodes every byte but unreserved ASCII, for a path segment.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn malformed_json_is_refused(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let valid = serde_json::to_string(&link("ravi", "SB00001", "C0001")).expect("json");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "cut short",
            format!(r#"{{"events":[{valid},{{"id":"#).into_bytes(),
        ),
        (
            "trailing comma",
            format!(r#"{{"events":[{valid},]}}"#).into_bytes(),
        ),
        ("empty", Vec::new()),
        ("not JSON", b"link SB00001 C0001".to_vec()),
        ("not UTF-8", b"\xff\xfe{\"events\":[]}".to_vec()),
        ("nested 10,000 deep", "[".repeat(10_000).into_bytes()),
        ("events not a list", br#"{"events":"all of them"}"#.to_vec()),
        ("no events field", b"{}".to_vec()),
        ("null", b"null".to_vec()),
        ("events of numbers", br#"{"events":[1,2,3]}"#.to_vec()),
    ];
    for (what, body) in bodies {
        let answer = call(raw_events(s, &key, Some("application/json"), body)).await;
        assert_refused(&format!("events, {what}"), &answer, 400, "bad_json");
    }
    let logins: Vec<(&str, Vec<u8>)> = vec![
        ("cut short", br#"{"username":"admin","password":"#.to_vec()),
        ("empty", Vec::new()),
        ("no password", br#"{"username":"admin"}"#.to_vec()),
        (
            "username a list",
            format!(r#"{{"username":["admin"],"password":"{PASSWORD}"}}"#).into_bytes(),
        ),
    ];
    for (what, body) in logins {
        let answer = call(raw_post(s, "/api/v1/auth/login", "application/json", body)).await;
        assert_refused(&format!("login, {what}"), &answer, 400, "bad_json");
    }
    assert_eq!(written(s).await, before, "a malformed body wrote something");
    assert_no_bag(s, "SB00001").await;
}
on_both!(malformed_json_is_refused);

async fn unknown_event_type_refuses_the_batch(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let at = now_rfc3339();
    let id = uuid::Uuid::now_v7();
    let broken = [
        (
            "unknown type",
            json!({"id": id, "type": "teleport", "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "no type",
            json!({"id": id, "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "type null",
            json!({"id": id, "type": null, "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "id not a UUID",
            json!({"id": "not-a-uuid", "type": "link", "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "id a number",
            json!({"id": 42, "type": "link", "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "no id",
            json!({"type": "link", "user": "ravi", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "no user",
            json!({"id": id, "type": "link", "parent": "SB00001", "child": "C0002", "at": at}),
        ),
        (
            "time not RFC 3339",
            json!({"id": id, "type": "link", "user": "ravi", "parent": "SB00001", "child": "C0002", "at": "yesterday"}),
        ),
        (
            "code a number",
            json!({"id": id, "type": "link", "user": "ravi", "parent": "SB00001", "child": 2, "at": at}),
        ),
    ];
    for (what, ev) in broken {
        // A valid neighbour first: the whole request is refused, so it must not apply either.
        let answer = call(
            s.http
                .post(s.url("/api/v1/events"))
                .header("x-station-key", &key)
                .json(&json!({"events": [link("ravi", "SB00001", "C0001"), ev]})),
        )
        .await;
        assert_refused(what, &answer, 400, "bad_json");
        if what == "unknown type" {
            let message = answer.1["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("teleport"),
                "the message names the bad type: {message}"
            );
        }
    }
    assert_eq!(written(s).await, before, "a refused batch wrote something");
    assert_no_bag(s, "SB00001").await;
    assert_no_bag(s, "C0001").await;
}
on_both!(unknown_event_type_refuses_the_batch);

async fn wrong_content_type_is_415(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let batch = json!({"events": [link("ravi", "SB00001", "C0001")]}).to_string();
    for ct in [
        Some("text/plain"),
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
    ] {
        let answer = call(raw_events(s, &key, ct, batch.clone())).await;
        assert_refused(
            &format!("events as {ct:?}"),
            &answer,
            415,
            "wrong_content_type",
        );
    }
    let login = json!({"username": "admin", "password": PASSWORD}).to_string();
    let answer = call(raw_post(s, "/api/v1/auth/login", "text/plain", login)).await;
    assert_refused("login as text/plain", &answer, 415, "wrong_content_type");
    let bill = json!({"code": "BILL1", "capacity": 10}).to_string();
    let answer =
        call(raw_post(s, "/api/v1/bills", "text/plain", bill).bearer_auth(&s.admin_token)).await;
    assert_refused("bill as text/plain", &answer, 415, "wrong_content_type");
    assert_eq!(written(s).await, before, "a refused body wrote something");
    assert_no_bag(s, "SB00001").await;

    // JSON with a charset parameter is still JSON.
    let (status, body) = call(raw_events(
        s,
        &key,
        Some("application/json; charset=utf-8"),
        batch,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
}
on_both!(wrong_content_type_is_415);

/// How a raw request's body goes on the wire.
#[derive(Clone, Copy)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Sends one HTTP/1.1 POST over a plain TCP socket and reads the answer while
/// the body is still being written. A server may answer a too-large body (413)
/// before reading it all and then close the connection; an ordinary client
/// that is still writing reports that as a broken pipe and loses the answer, so
/// this one reads and writes at once, as a browser or curl does.
async fn raw_post_tcp(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    framing: Framing,
) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stream = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
        s.addr
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match framing {
        Framing::ContentLength => head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len())),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    // The write half lives until the answer is read: dropping it would half-close
    // the connection, which a server may take as the client going away.
    let writer = tokio::spawn(async move {
        let sent = async {
            wr.write_all(head.as_bytes()).await?;
            match framing {
                Framing::ContentLength => wr.write_all(&body).await?,
                Framing::Chunked => {
                    for chunk in body.chunks(64 * 1024) {
                        wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .await?;
                        wr.write_all(chunk).await?;
                        wr.write_all(b"\r\n").await?;
                    }
                    wr.write_all(b"0\r\n\r\n").await?;
                }
            }
            wr.flush().await
        }
        .await;
        (wr, sent)
    });

    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read = async {
        loop {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| answer.len() >= end + 4 + n) {
                    break;
                }
            }
            match rd.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if answer.is_empty() => panic!("no answer from {path}: {e}"),
                Err(_) => break,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("an answer within 60 s");
    writer.abort();

    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {path}: {head:?}"));
    let status = StatusCode::from_u16(status).expect("status code");
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    assert!(
        status.as_u16() < 500,
        "the server answered {status}: {body}"
    );
    (status, body)
}

async fn huge_bodies_are_413(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let padded = |len: usize| {
        let mut ev = link("ravi", "SB00001", "C0001");
        ev["child"] = json!("A".repeat(len));
        json!({ "events": [ev] }).to_string()
    };
    let ten_mb = padded(10 * 1024 * 1024).into_bytes();
    assert!(ten_mb.len() > 10 * 1024 * 1024);
    let station_key = [("X-Station-Key", key.as_str())];
    for framing in [Framing::ContentLength, Framing::Chunked] {
        let answer = raw_post_tcp(s, "/api/v1/events", &station_key, ten_mb.clone(), framing).await;
        assert_refused("10 MB of events", &answer, 413, "body_too_large");
    }
    let just_over = padded(EVENTS_BODY_LIMIT).into_bytes();
    let answer = raw_post_tcp(
        s,
        "/api/v1/events",
        &station_key,
        just_over,
        Framing::ContentLength,
    )
    .await;
    assert_refused("just over the events limit", &answer, 413, "body_too_large");
    let login = json!({"username": "admin", "password": "p".repeat(10 * 1024 * 1024)}).to_string();
    let answer = raw_post_tcp(
        s,
        "/api/v1/auth/login",
        &[],
        login.into_bytes(),
        Framing::ContentLength,
    )
    .await;
    assert_refused("10 MB login", &answer, 413, "body_too_large");
    let bill =
        json!({"code": "BILL1", "capacity": 10, "description": "d".repeat(100 * 1024)}).to_string();
    let bearer = format!("Bearer {}", s.admin_token);
    let answer = raw_post_tcp(
        s,
        "/api/v1/bills",
        &[("Authorization", bearer.as_str())],
        bill.into_bytes(),
        Framing::ContentLength,
    )
    .await;
    assert_refused("100 KB bill", &answer, 413, "body_too_large");
    assert_eq!(
        written(s).await,
        before,
        "an oversized body wrote something"
    );
    assert_no_bag(s, "SB00001").await;

    // Under the limit, a megabyte-long code is one rejected event, not a failed request.
    let (status, body) = call(raw_events(
        s,
        &key,
        Some("application/json"),
        padded(1024 * 1024),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["code"], "code_too_long", "{body}");
    assert_no_bag(s, "SB00001").await;
}
on_both!(huge_bodies_are_413);

async fn too_many_events_in_one_batch(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let events: Vec<Value> = (0..1001)
        .map(|i| link("ravi", &format!("SB{:05}", i / 30 + 1), &format!("C{i:04}")))
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).expect("json");
    assert!(
        body.len() < EVENTS_BODY_LIMIT,
        "1,001 small events take {} bytes, over the body limit",
        body.len()
    );
    let answer = call(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .header(CONTENT_TYPE, "application/json")
            .body(body),
    )
    .await;
    assert_refused("1,001 events", &answer, 400, "too_many_events");
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1000"),
        "the message says the limit: {message}"
    );
    assert_eq!(written(s).await, before, "a refused batch wrote something");
    assert_no_bag(s, "SB00001").await;
    assert_no_bag(s, "C0000").await;

    // 1,000 is allowed: one result each.
    let events: Vec<Value> = (0..1000)
        .map(|i| link("nobody", "SB00001", &format!("C{i:04}")))
        .collect();
    let (status, body) = call(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .json(&json!({ "events": events })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 1000);
    assert!(
        results.iter().all(|r| r["code"] == "unknown_worker"),
        "{}",
        results[0]
    );
}
on_both!(too_many_events_in_one_batch);

async fn missing_or_bad_station_key_is_401(s: &TestServer) {
    let key = station(s).await;
    let before = written(s).await;
    let batch = json!({"events": [link("ravi", "SB00001", "C0001")]});
    let post = || s.http.post(s.url("/api/v1/events")).json(&batch);

    let answer = call(post()).await;
    assert_refused("no station key", &answer, 401, "missing_station_key");
    let answer = call(post().bearer_auth(&s.admin_token)).await;
    assert_refused(
        "a login token instead of a station key",
        &answer,
        401,
        "missing_station_key",
    );
    let long = "k".repeat(300);
    for bad in [
        "nope",
        "",
        long.as_str(),
        s.admin_token.as_str(),
        &key[..key.len() - 1],
    ] {
        let answer = call(post().header("x-station-key", bad)).await;
        assert_refused(
            &format!("station key {bad:?}"),
            &answer,
            401,
            "bad_station_key",
        );
    }
    let not_text = HeaderValue::from_bytes(b"\xffkey\xfe").expect("header value");
    let answer = call(post().header("x-station-key", not_text)).await;
    assert_refused("station key not text", &answer, 401, "bad_station_key");

    // A login through a station with a bad key opens no session.
    let answer = call(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .header("x-station-key", "nope")
            .json(&json!({"username": "ravi", "password": PASSWORD})),
    )
    .await;
    assert_refused("login at a bad station", &answer, 401, "bad_station_key");
    assert_eq!(
        written(s).await,
        before,
        "a refused station wrote something"
    );
    assert_no_bag(s, "SB00001").await;
}
on_both!(missing_or_bad_station_key_is_401);

async fn missing_or_bad_token_is_401(s: &TestServer) {
    let key = station(s).await;
    let ended = s.login("admin", None).await;
    let (status, body) = call(
        s.http
            .post(s.url("/api/v1/auth/logout"))
            .bearer_auth(&ended),
    )
    .await;
    assert!(status.is_success(), "logout: {status} {body}");
    let before = written(s).await;

    let long = format!("Bearer {}", "t".repeat(300));
    let key_as_token = format!("Bearer {key}");
    let ended_token = format!("Bearer {ended}");
    let auths: [(&str, Option<&str>); 7] = [
        ("no token", None),
        ("unknown token", Some("Bearer nope")),
        ("empty token", Some("Bearer ")),
        ("basic auth", Some("Basic YWRtaW46dGVzdA==")),
        ("a 300-character token", Some(&long)),
        ("the station key", Some(&key_as_token)),
        ("a logged-out token", Some(&ended_token)),
    ];
    for path in [
        "/api/v1/bags/SB00001",
        "/api/v1/stats",
        "/api/v1/bags",
        "/api/v1/me",
    ] {
        for (what, auth) in &auths {
            let mut req = s.http.get(s.url(path));
            if let Some(auth) = auth {
                req = req.header(AUTHORIZATION, *auth);
            }
            let answer = call(req).await;
            assert_refused(
                &format!("GET {path} with {what}"),
                &answer,
                401,
                "not_logged_in",
            );
        }
    }
    let answer = call(
        s.http
            .post(s.url("/api/v1/bills"))
            .json(&json!({"code": "BILL1", "capacity": 10})),
    )
    .await;
    assert_refused("bill without a token", &answer, 401, "not_logged_in");
    let answer = call(
        s.http
            .post(s.url("/api/v1/stations"))
            .bearer_auth("nope")
            .json(&json!({"name": "rogue"})),
    )
    .await;
    assert_refused("station with a bad token", &answer, 401, "not_logged_in");
    assert_eq!(written(s).await, before, "a refused caller wrote something");
}
on_both!(missing_or_bad_token_is_401);

async fn hostile_codes_in_events(s: &TestServer) {
    let key = station(s).await;
    let mut no_parent = link("ravi", "SB00001", "C0009");
    no_parent.as_object_mut().expect("object").remove("parent");
    let batch: Vec<(Value, Result<u32, &str>)> = vec![
        (link("ravi", "SB00001", "C0001"), Ok(1)),
        (
            link("ravi", "SB00001", "SB1'; DROP TABLE bags;--"),
            Err("bad_code"),
        ),
        (
            link("ravi", "<script>alert(1)</script>", "C0002"),
            Err("bad_code"),
        ),
        (
            link("ravi", "SB00001", "C0003<img src=x onerror=alert(1)>"),
            Err("bad_code"),
        ),
        (
            link("ravi", "sb00001\u{200b}", "\u{feff}c0004\u{200d}"),
            Ok(2),
        ),
        (link("ravi", " SB00001\r\n", "\u{0}c0005\u{7}\t"), Ok(3)),
        (
            link("ravi", "SB00001", &"C".repeat(65)),
            Err("code_too_long"),
        ),
        (no_parent, Err("missing_field")),
        (link("ravi", "SB00001", "\u{200b}\u{0} "), Err("empty_code")),
        (
            link("ravi", "SB00001", "Robert'); DROP TABLE links;--"),
            Err("bad_code"),
        ),
        (unlink("ravi", "<b>SB00001</b>", None), Err("bad_code")),
        (
            bill_add("admin", "BILL1'; DELETE FROM bills;--", "SB00001"),
            Err("bad_code"),
        ),
        (link("ravi", "SB00001", "C0010"), Ok(4)),
    ];
    let events: Vec<Value> = batch.iter().map(|(e, _)| e.clone()).collect();
    let (status, body) = call(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .json(&json!({ "events": events })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), batch.len());
    for ((ev, want), r) in batch.iter().zip(results) {
        assert_eq!(r["id"], ev["id"], "results in order");
        match want {
            Ok(children) => {
                assert_eq!(r["status"], "applied", "{ev} -> {r}");
                assert_eq!(r["parent"]["code"], "SB00001", "{r}");
                assert_eq!(r["parent"]["children"], json!(children), "{r}");
            }
            Err(code) => {
                assert_eq!(r["status"], "rejected", "{ev} -> {r}");
                assert_eq!(r["code"], *code, "{ev} -> {r}");
                let message = r["message"].as_str().unwrap_or_default();
                assert!(message.trim().len() > 10, "a plain message: {r}");
            }
        }
    }
    let (status, bag) = call(
        s.http
            .get(s.url("/api/v1/bags/SB00001"))
            .bearer_auth(&s.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bag}");
    let codes: Vec<&str> = bag["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(codes, ["C0001", "C0004", "C0005", "C0010"]);
    let stats = s.stats().await;
    assert_eq!(
        stats["bags"],
        json!(5),
        "only the clean codes became bags: {stats}"
    );
    assert_eq!(
        stats["bills"],
        json!({"new": 0, "in_progress": 0, "ready": 0, "closed": 0})
    );
    assert_eq!(s.assert_invariants().await, 4);
}
on_both!(hostile_codes_in_events);

async fn hostile_codes_in_addresses(s: &TestServer) {
    let key = station(s).await;
    let r = s.event(&key, link("ravi", "SB00001", "C0001")).await;
    assert_eq!(r["status"], "applied", "{r}");
    let before = written(s).await;
    let get = |path: String| call(s.http.get(s.url(&path)).bearer_auth(&s.admin_token));

    let refused = [
        ("SB1'; DROP TABLE bags;--".to_string(), "bad_code"),
        ("<script>alert(1)</script>".to_string(), "bad_code"),
        ("SB00001\u{202e}".to_string(), "bad_code"),
        ("A".repeat(65), "code_too_long"),
        ("A".repeat(10_000), "code_too_long"),
        (" ".to_string(), "empty_code"),
        ("\u{0}\u{200b}".to_string(), "empty_code"),
    ];
    for (code, want) in &refused {
        let answer = get(format!("/api/v1/bags/{}", encode(code))).await;
        assert_refused(&format!("bag {code:?}"), &answer, 400, want);
        let answer = get(format!("/api/v1/bills/{}", encode(code))).await;
        assert_refused(&format!("bill {code:?}"), &answer, 400, want);
    }
    for code in ["SB1'; DROP TABLE bags;--", "<script>alert(1)</script>"] {
        let answer = get(format!("/api/v1/bags?search={}", encode(code))).await;
        assert_refused(&format!("search {code:?}"), &answer, 400, "bad_code");
        let answer = get(format!("/api/v1/bags?cursor={}", encode(code))).await;
        assert_refused(&format!("cursor {code:?}"), &answer, 400, "bad_code");
    }
    // Control and zero-width characters are stripped: these are SB00001.
    for code in [
        "sb00001\u{200b}",
        "\u{7}sb00001",
        "\u{feff} SB00001\u{2060}",
    ] {
        let (status, bag) = get(format!("/api/v1/bags/{}", encode(code))).await;
        assert_eq!(status, StatusCode::OK, "{code:?}: {bag}");
        assert_eq!(bag["code"], "SB00001", "{bag}");
        assert_eq!(bag["child_count"], json!(1), "{bag}");
    }
    let answer = get(format!("/api/v1/bags/{}", encode("../stats"))).await;
    assert_refused("bag ../stats", &answer, 404, "bag_not_found");

    for code in ["<script>alert(1)</script>", "BILL1'; DROP TABLE bills;--"] {
        let answer = call(
            s.http
                .post(s.url("/api/v1/bills"))
                .bearer_auth(&s.admin_token)
                .json(&json!({"code": code, "capacity": 10})),
        )
        .await;
        assert_refused(&format!("new bill {code:?}"), &answer, 400, "bad_code");
    }
    assert_eq!(written(s).await, before, "a hostile code wrote something");

    // Failed logins are audited by design; nothing else is written.
    for username in ["admin' OR '1'='1' --", "<script>alert(1)</script>"] {
        let answer = call(
            s.http
                .post(s.url("/api/v1/auth/login"))
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
        assert_refused(
            &format!("login as {username:?}"),
            &answer,
            401,
            "bad_credentials",
        );
    }
    assert_eq!(
        written(s).await.without("audit_log"),
        before.without("audit_log"),
        "a hostile login wrote something"
    );
    assert_eq!(s.assert_invariants().await, 1);
}
on_both!(hostile_codes_in_addresses);

/// Routing and query checks need no particular database: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_methods_and_queries() {
    let s = TestServer::start(traitortrack_tests::Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let before = written(&s).await;
    let req = |method: Method, path: &str| {
        s.http
            .request(method, s.url(path))
            .bearer_auth(&s.admin_token)
    };

    for path in [
        "/api/v1/nope",
        "/nope",
        "/api/v2/bags",
        "/api/v1/bags/SB00001/children",
    ] {
        let answer = call(req(Method::GET, path)).await;
        assert_refused(&format!("GET {path}"), &answer, 404, "not_found");
    }
    let answer = call(req(Method::POST, "/api/v1/nope").json(&json!({}))).await;
    assert_refused("POST /api/v1/nope", &answer, 404, "not_found");

    let wrong_methods = [
        (Method::POST, "/api/v1/stats"),
        (Method::DELETE, "/api/v1/bags/SB00001"),
        (Method::GET, "/api/v1/events"),
        (Method::PUT, "/api/v1/auth/login"),
        (Method::POST, "/healthz"),
    ];
    for (method, path) in wrong_methods {
        let answer = call(req(method.clone(), path).json(&json!({}))).await;
        assert_refused(
            &format!("{method} {path}"),
            &answer,
            405,
            "method_not_allowed",
        );
    }

    for query in [
        "limit=abc",
        "limit=-1",
        "limit=99999999999",
        "kind=banana",
        "complete=maybe",
        "billed=2",
    ] {
        let answer = call(req(Method::GET, &format!("/api/v1/bags?{query}"))).await;
        assert_refused(&format!("bags?{query}"), &answer, 400, "bad_query");
    }
    for query in ["limit=5", "limit=100000", "kind=parent&complete=true"] {
        let (status, body) = call(req(Method::GET, &format!("/api/v1/bags?{query}"))).await;
        assert_eq!(status, StatusCode::OK, "bags?{query}: {body}");
        assert!(body["items"].is_array(), "{body}");
    }
    assert_eq!(
        written(&s).await,
        before,
        "a refused request wrote something"
    );
}

/// A NUL character is valid JSON (`\u0000`) but PostgreSQL text cannot hold
/// it. A login name with one is just a wrong login.
async fn nul_in_login_username(s: &TestServer) {
    let before = written(s).await;
    for username in ["admin\u{0}", "\u{0}"] {
        let answer = call(
            s.http
                .post(s.url("/api/v1/auth/login"))
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
        assert_refused(
            &format!("login as {username:?}"),
            &answer,
            401,
            "bad_credentials",
        );
    }
    assert_eq!(
        written(s).await.without("audit_log"),
        before.without("audit_log"),
        "a failed login wrote something"
    );
}
on_both!(nul_in_login_username);

/// A worker name with a NUL in an event is one rejected event; its neighbours apply.
async fn nul_in_event_worker_name(s: &TestServer) {
    let key = station(s).await;
    let events = [
        link("ravi", "SB00001", "C0001"),
        link("ravi\u{0}", "SB00001", "C0002"),
        link("ravi", "SB00001", "C0003"),
    ];
    let (status, body) = call(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .json(&json!({ "events": events })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    assert_eq!(body["results"][1]["status"], "rejected", "{body}");
    assert_eq!(body["results"][1]["code"], "unknown_worker", "{body}");
    assert_eq!(body["results"][2]["status"], "applied", "{body}");
    assert_eq!(s.assert_invariants().await, 2);
}
on_both!(nul_in_event_worker_name);

/// Free text with a NUL (station name, bill fields, a correction's reason):
/// refused in the error shape, or taken, never a 5xx.
async fn nul_in_free_text(s: &TestServer) {
    let key = station(s).await;
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/bills",
            &json!({"code": "BILL1", "capacity": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = written(s).await;
    let admin = |req: RequestBuilder| call(req.bearer_auth(&s.admin_token));

    let answer = admin(
        s.http
            .post(s.url("/api/v1/stations"))
            .json(&json!({"name": "dock\u{0}2"})),
    )
    .await;
    assert_refused("station name with NUL", &answer, 400, "bad_station_name");
    for field in ["destination", "vehicle_number", "description"] {
        let bill = json!({"code": "BILL2", "capacity": 5, field: "x\u{0}y"});
        let answer = admin(s.http.post(s.url("/api/v1/bills")).json(&bill)).await;
        assert_refused(
            &format!("new bill, {field} with NUL"),
            &answer,
            400,
            "bad_text",
        );
        let answer = admin(
            s.http
                .patch(s.url("/api/v1/bills/BILL1"))
                .json(&json!({field: "x\u{0}y"})),
        )
        .await;
        assert_refused(
            &format!("bill change, {field} with NUL"),
            &answer,
            400,
            "bad_text",
        );
    }
    let answer = admin(
        s.http
            .post(s.url("/api/v1/bills/BILL1/close"))
            .json(&json!({"reason": "x\u{0}y"})),
    )
    .await;
    assert_refused("close reason with NUL", &answer, 400, "bad_text");
    assert_eq!(written(s).await, before, "a refused text wrote something");

    // An admin's correction with a NUL in its reason still takes effect, once.
    let r = s.event(&key, link("ravi", "SB00001", "C0001")).await;
    assert_eq!(r["status"], "applied", "{r}");
    let mut fix = unlink("admin", "SB00001", Some("C0001"));
    fix["reason"] = json!("scanned by mistake\u{0}");
    let (status, body) = call(
        s.http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .json(&json!({ "events": [fix] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    assert_eq!(s.assert_invariants().await, 0);
}
on_both!(nul_in_free_text);
