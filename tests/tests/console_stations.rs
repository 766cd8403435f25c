//! The stations page of the web console in a real browser, on each
//! database: an admin registers a station and reads its key once, the key
//! works for the station API, the station's reported app version and unsent
//! scans show on the page and the dashboard, a revoke (after its
//! confirmation page) makes the API refuse the key, a new key works again,
//! and a dispatcher is refused the page. Also, over plain HTTP: what a
//! station reports is stored at most once a minute, except at once when it
//! matters, and a malformed report is refused in plain words.

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::{Role, STATION_QUEUE_HEADER, STATION_VERSION_HEADER};
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::{
    fresh_url, link, now_rfc3339, on_each_backend, send, settings, Backend, TestServer, PASSWORD,
};

/// What the stations pages show, beyond the shared look.
const STATIONS_LOOK: &str = r#"
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
return {
  path: location.pathname + location.search,
  h1: txt('h1'),
  key: txt('#station-key'),
  key_warning: txt('#key-warning'),
  no_key: txt('#no-key'),
  error: txt('#form-error'),
  typed_name: q('#station-name') ? q('#station-name').value : null,
  confirm_text: txt('#confirm-text'),
  confirm_queue: txt('#confirm-queue'),
  rows: Array.from(document.querySelectorAll('#stations tbody tr')).map((r) => ({
    id: Number(r.dataset.station),
    cells: Array.from(r.cells).slice(0, 6).map((c) => c.innerText.trim().replace(/\s+/g, ' ')),
    revoke: !!r.querySelector('button[id^=revoke-]'),
  })),
  dashboard: Array.from(document.querySelectorAll('#dashboard-stations tbody tr')).map((r) => r.innerText.trim().replace(/\s+/g, ' ')),
};
"#;

/// A request as a station: its key, and a report when given.
fn as_station(
    req: reqwest::RequestBuilder,
    key: &str,
    version: Option<&str>,
    queue: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = req.header("x-station-key", key);
    if let Some(v) = version {
        req = req.header(STATION_VERSION_HEADER, v);
    }
    if let Some(q) = queue {
        req = req.header(STATION_QUEUE_HEADER, q);
    }
    req
}

/// Logs a worker in at a station over HTTP, with a report.
async fn station_login(
    s: &TestServer,
    key: &str,
    user: &str,
    version: Option<&str>,
    queue: Option<&str>,
) -> (StatusCode, Value) {
    let req = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": PASSWORD}));
    send(as_station(req, key, version, queue)).await
}

/// Posts one event as a station, with a report.
async fn station_event(
    s: &TestServer,
    key: &str,
    event: Value,
    version: Option<&str>,
    queue: Option<&str>,
) -> (StatusCode, Value) {
    let req = s
        .http
        .post(s.url("/api/v1/events"))
        .json(&json!({ "events": [event] }));
    send(as_station(req, key, version, queue)).await
}

/// A station as `GET /api/v1/stations` lists it.
async fn listed(s: &TestServer, name: &str) -> Value {
    let (status, body) = s.get(&s.admin_token, "/api/v1/stations").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {body}"))
}

fn row<'a>(seen: &'a Value, name: &str) -> &'a Value {
    seen["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["cells"][0] == name))
        .unwrap_or_else(|| panic!("no row for {name}: {seen}"))
}

// ------------------------------------------------------------ the page

async fn admin_registers_and_revokes_a_station(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    // An older station that reports nothing of itself.
    let old_key = s.station_with("Dock 1 (old app)", &["ravi"]).await;
    let Some(mut b) = Browser::open(&s, "stations").await else {
        return;
    };

    let seen = b.log_in("admin", PASSWORD).await;
    assert_eq!(seen["path"], "/console/", "{seen}");
    b.visit("/console/stations").await;
    b.page("stations-before").await;
    let seen = b.js(STATIONS_LOOK).await;
    let old = &row(&seen, "Dock 1 (old app)")["cells"];
    assert_eq!(old[1], "Active", "{seen}");
    assert_eq!(old[3], "not reported", "{seen}");
    assert_eq!(old[4], "not reported", "{seen}");

    // Register: on to the key, shown once.
    b.type_into("#station-name", "  Dock 7  ").await;
    b.submit("#register-form").await;
    b.wait_page("the new key", |v| v["path"] == "/console/stations/key")
        .await;
    b.page("station-key").await;
    let seen = b.js(STATIONS_LOOK).await;
    assert_eq!(seen["h1"], "The key for Dock 7", "{seen}");
    assert!(
        text(&seen, "key_warning").starts_with("Copy this key into the station app now."),
        "{seen}"
    );
    let key = text(&seen, "key").to_string();
    assert_eq!(key.len(), 43, "a 256-bit key: {seen}");

    // Reloading does not show it again.
    b.call(reqwest::Method::POST, "/refresh", Some(json!({})))
        .await;
    b.wait_page("the key page reloaded", |v| v["h1"] == "No key to show")
        .await;
    b.page("station-key-reloaded").await;
    let seen = b.js(STATIONS_LOOK).await;
    assert!(seen["key"].is_null(), "the key is gone: {seen}");
    assert!(text(&seen, "no_key").contains("shown only once"), "{seen}");
    assert!(
        !b.js("return document.body.innerText;")
            .await
            .as_str()
            .unwrap_or_default()
            .contains(&key),
        "the key is nowhere on the page"
    );
    let cookies = b.cookies().await.to_string();
    assert!(
        !cookies.contains(&key),
        "no cookie keeps the key: {cookies}"
    );

    // The key works for the station API; the station reports itself.
    let (status, body) = station_login(&s, &key, "ravi", Some("9.8.7"), Some("0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = station_event(
        &s,
        &key,
        link("ravi", "SB00007", "C0700"),
        Some("9.8.7"),
        Some("150"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");

    b.visit("/console/stations").await;
    b.page("stations-reported").await;
    let seen = b.js(STATIONS_LOOK).await;
    let dock7 = row(&seen, "Dock 7");
    let cells: Vec<&str> = dock7["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().unwrap_or_default())
        .collect();
    assert_eq!(cells[1], "Active", "{seen}");
    assert!(cells[2].starts_with("just now"), "{seen}");
    assert_eq!(cells[3], "9.8.7", "{seen}");
    assert_eq!(cells[4], "150 Large and growing", "{seen}");
    let id = dock7["id"].as_i64().expect("the station's id");

    // The dashboard shows the same.
    b.visit("/console/").await;
    b.page("dashboard-stations").await;
    let seen = b.js(STATIONS_LOOK).await;
    let rows = seen["dashboard"].to_string();
    assert!(
        rows.contains("Dock 7 just now Active 9.8.7 150 Large and growing"),
        "{rows}"
    );
    assert!(
        rows.contains("Dock 1 (old app) just now Active — —"),
        "{rows}"
    );

    // The same name twice: refused on the form, the name kept.
    b.visit("/console/stations").await;
    b.wait_page("the stations page", |v| v["h1"] == "Stations")
        .await;
    b.type_into("#station-name", "Dock 7").await;
    b.submit("#register-form").await;
    b.wait_page("a second Dock 7 refused", |v| !v["error"].is_null())
        .await;
    b.page("station-name-taken").await;
    let seen = b.js(STATIONS_LOOK).await;
    assert_eq!(
        seen["error"], "A station named Dock 7 is already registered.",
        "{seen}"
    );
    assert_eq!(seen["typed_name"], "Dock 7", "{seen}");

    // Revoke: a confirmation page first; going back changes nothing.
    b.click(&format!("#revoke-{id}")).await;
    b.wait_page("the revoke confirmation", |v| v["h1"] == "Revoke Dock 7?")
        .await;
    b.page("station-revoke-confirm").await;
    let seen = b.js(STATIONS_LOOK).await;
    assert!(
        text(&seen, "confirm_queue").contains("150 scans were still waiting"),
        "{seen}"
    );
    b.click("#confirm-cancel").await;
    b.wait_page("back on the list", |v| v["h1"] == "Stations")
        .await;
    let (status, body) = send(as_station(
        s.http.get(s.url("/api/v1/station/settings")),
        &key,
        None,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "not revoked by going back: {body}");

    b.click(&format!("#revoke-{id}")).await;
    b.wait_page("the revoke confirmation again", |v| {
        v["h1"] == "Revoke Dock 7?"
    })
    .await;
    b.submit("#confirm-form").await;
    b.wait_page("revoked", |v| {
        v["path"] == "/console/stations?note=station_revoked"
    })
    .await;
    let shown = b.page("station-revoked").await;
    assert_eq!(
        shown["notice"], "The station is revoked: its key no longer works.",
        "{shown}"
    );
    let seen = b.js(STATIONS_LOOK).await;
    let dock7 = row(&seen, "Dock 7");
    assert_eq!(dock7["cells"][1], "Revoked", "{seen}");
    assert_eq!(dock7["cells"][4], "150 Cannot send: revoked", "{seen}");
    assert_eq!(dock7["revoke"], false, "no revoke button: {seen}");

    // The API refuses the key from now on; the older station goes on.
    let (status, body) = station_event(
        &s,
        &key,
        link("ravi", "SB00007", "C0701"),
        Some("9.8.7"),
        Some("0"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "bad_station_key", "{body}");
    let (status, body) = station_login(&s, &key, "ravi", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let result = s.event(&old_key, link("ravi", "SB00008", "C0800")).await;
    assert_eq!(result["status"], "applied", "{result}");

    // A new key (confirmed, shown once) makes the station work again.
    b.click(&format!("#new-key-{id}")).await;
    b.wait_page("the new key confirmation", |v| {
        v["h1"] == "Give Dock 7 a new key?"
    })
    .await;
    b.page("station-new-key-confirm").await;
    b.submit("#confirm-form").await;
    b.wait_page("the second key", |v| v["path"] == "/console/stations/key")
        .await;
    b.page("station-new-key").await;
    let seen = b.js(STATIONS_LOOK).await;
    let new_key = text(&seen, "key").to_string();
    assert_eq!(new_key.len(), 43, "{seen}");
    assert_ne!(new_key, key);
    let (status, body) = station_login(&s, &new_key, "ravi", Some("9.8.8"), Some("0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = station_login(&s, &key, "ravi", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old key stays refused"
    );
    b.click("#key-done").await;
    b.wait_page("back on the list", |v| v["h1"] == "Stations")
        .await;
    let seen = b.js(STATIONS_LOOK).await;
    let dock7 = row(&seen, "Dock 7");
    assert_eq!(dock7["cells"][1], "Active", "{seen}");
    assert_eq!(dock7["cells"][3], "9.8.8", "a new version at once: {seen}");
    assert_eq!(dock7["cells"][4], "0", "an emptied queue at once: {seen}");

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/stations").await;
    b.page("stations-tablet").await;
    b.set_window(1366, 768).await;
    b.assert_clean_console().await;

    // A dispatcher is refused the page and its forms.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    b.log_in("dora", PASSWORD).await;
    b.visit("/console/stations").await;
    let seen = b.page("stations-dispatcher").await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    assert_eq!(
        text(&seen, "refusal"),
        "A dispatcher cannot open this page (it is for admins)."
    );
    b.visit("/console/").await;
    let csrf = b
        .js("return document.querySelector('input[name=csrf]').value;")
        .await
        .as_str()
        .expect("the page's token")
        .to_string();
    let cookie = b.session_cookie().await;
    for (path, form) in [
        (
            "/console/stations",
            vec![("csrf", csrf.as_str()), ("name", "Dock 9")],
        ),
        (
            &format!("/console/stations/{id}/revoke"),
            vec![("csrf", csrf.as_str()), ("confirm", "yes")],
        ),
        (
            &format!("/console/stations/{id}/key"),
            vec![("csrf", csrf.as_str()), ("confirm", "yes")],
        ),
    ] {
        let resp = plain_http()
            .post(s.url(path))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let resp = plain_http()
        .get(s.url("/console/stations/key"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = station_login(&s, &new_key, "ravi", None, None).await;
    assert_eq!(status, StatusCode::OK, "nothing changed by the dispatcher");
    let (status, body) = s.get(&s.admin_token, "/api/v1/stations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["items"].as_array().map(Vec::len),
        Some(2),
        "no Dock 9: {body}"
    );
    b.assert_clean_console().await;
}
on_each_backend!(admin_registers_and_revokes_a_station);

// ------------------------------------------------------------ the reports

async fn reports_are_stored_cheaply_and_checked(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station("Dock 3").await;
    let dock = || listed(&s, "Dock 3");
    let report = |v: &Value| (v["app_version"].clone(), v["queue_depth"].clone());
    assert_eq!(report(&dock().await), (Value::Null, Value::Null));

    let mut n = 0;
    let mut scan = |version: Option<&'static str>, queue: Option<&'static str>| {
        n += 1;
        let event = link("ravi", "SB00001", &format!("C{n:04}"));
        let s = &s;
        let key = key.clone();
        async move {
            let (status, body) = station_event(s, &key, event, version, queue).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["results"][0]["status"], "applied", "{body}");
        }
    };

    // The first report is stored at once.
    let (status, body) = station_login(&s, &key, "ravi", Some("1.0.0"), Some("3")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(report(&dock().await), (json!("1.0.0"), json!(3)));
    // A small change waits for the minute.
    scan(Some("1.0.0"), Some("5")).await;
    assert_eq!(report(&dock().await), (json!("1.0.0"), json!(3)));
    // An emptied queue is stored at once; a small one after it waits.
    scan(Some("1.0.0"), Some("0")).await;
    assert_eq!(report(&dock().await), (json!("1.0.0"), json!(0)));
    scan(Some("1.0.0"), Some("2")).await;
    assert_eq!(report(&dock().await), (json!("1.0.0"), json!(0)));
    // A queue that grows large is stored at once, and so is a new version.
    scan(Some("1.0.0"), Some("100")).await;
    assert_eq!(report(&dock().await), (json!("1.0.0"), json!(100)));
    scan(Some("1.0.1"), Some("101")).await;
    assert_eq!(report(&dock().await), (json!("1.0.1"), json!(101)));
    // A station that reports nothing leaves the report as it was.
    s.clock.advance(time::Duration::seconds(61));
    scan(None, None).await;
    assert_eq!(report(&dock().await), (json!("1.0.1"), json!(101)));
    // A minute on, any change is stored.
    s.clock.advance(time::Duration::seconds(61));
    scan(Some("1.0.1"), Some("42")).await;
    assert_eq!(report(&dock().await), (json!("1.0.1"), json!(42)));
    let seen = dock().await;
    assert!(seen["last_seen_at"].is_string(), "{seen}");

    // The settings request reports too.
    s.clock.advance(time::Duration::seconds(61));
    let (status, body) = send(as_station(
        s.http.get(s.url("/api/v1/station/settings")),
        &key,
        Some("1.0.2"),
        Some("7"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(report(&dock().await), (json!("1.0.2"), json!(7)));

    // A malformed report is refused in plain words, and changes nothing.
    let too_long = "9".repeat(41);
    for (version, queue) in [
        (b"1.0\t2".as_slice(), "0"),
        (b"1.0.\xff".as_slice(), "0"),
        (too_long.as_bytes(), "0"),
        (b"".as_slice(), "0"),
        (b"1.0.3".as_slice(), "-4"),
        (b"1.0.3".as_slice(), "many"),
        (b"1.0.3".as_slice(), "2.5"),
    ] {
        let version = reqwest::header::HeaderValue::from_bytes(version).expect("a header value");
        let req = s
            .http
            .post(s.url("/api/v1/events"))
            .header("x-station-key", &key)
            .header(STATION_VERSION_HEADER, version.clone())
            .header(STATION_QUEUE_HEADER, queue)
            .json(&json!({
                "events": [{"id": uuid::Uuid::now_v7(), "type": "link", "user": "ravi",
                            "parent": "SB00002", "child": "C0999", "at": now_rfc3339()}]
            }));
        let (status, body) = send(req).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{version:?} {queue:?}: {body}"
        );
        assert_eq!(body["error"]["code"], "bad_station_report", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Update the station app")),
            "{body}"
        );
    }
    assert_eq!(report(&dock().await), (json!("1.0.2"), json!(7)));
    let (status, body) = s.get(&s.admin_token, "/api/v1/bags/SB00002").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing applied: {body}");
}
on_each_backend!(reports_are_stored_cheaply_and_checked);
