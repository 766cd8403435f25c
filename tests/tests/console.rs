//! The web console in a real browser: Debian's headless Chromium driven
//! through chromedriver (W3C WebDriver over plain HTTP) against a real
//! server, on each database.
//!
//! An admin logs in with two-step login through the real pages (enrolment
//! first, then the code step); a dispatcher whose password was reset chooses
//! a new one and is refused an admin page; a console form without its CSRF
//! token is refused; the dashboard's totals follow a station event within
//! 5 s, and its polling does not keep an unattended login alive. Every page
//! is checked for its style sheet and for running wider than the window
//! (1366x768), and saved as a PNG under `$CARGO_TARGET_DIR/console-screens/`
//! (the folder is printed).
//!
//! The browser harness is `traitortrack_tests::console_browser`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::console_browser::{grouped, plain_http, text, Browser, LOOK};
use traitortrack_tests::{
    bill_add, fresh_url, link, on_each_backend, production_settings, settings, Backend, TestServer,
    PASSWORD,
};

// ------------------------------------------------------------ (a) two-step login

async fn admin_logs_in_with_two_step(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    // Production settings: admins must use two-step login.
    let s = TestServer::start_with(production_settings(&url)).await;
    let Some(mut b) = Browser::open(&s, "two-step").await else {
        return;
    };

    // Not logged in: the dashboard sends us to the login page.
    b.visit("/console/").await;
    let seen = b.page("login").await;
    assert_eq!(seen["path"], "/console/login", "{seen}");
    assert_eq!(seen["h1"], "Log in");

    b.type_into("#username", "admin").await;
    b.type_into("#password", "not-the-password").await;
    b.submit("#login-form").await;
    b.wait_page("wrong password refused", |v| !v["error"].is_null())
        .await;
    let seen = b.page("login-wrong-password").await;
    assert_eq!(
        text(&seen, "error"),
        "The username or password is wrong.",
        "{seen}"
    );

    // The username is kept; the right password opens the enrolment page.
    b.type_into("#password", PASSWORD).await;
    b.submit("#login-form").await;
    b.wait_page("two-step enrolment", |v| {
        v["path"] == "/console/two-step" && v["qr"] == true
    })
    .await;
    let seen = b.page("two-step-setup").await;
    assert_eq!(seen["required"], true, "{seen}");
    assert!(seen["nav"].as_array().is_some_and(Vec::is_empty), "{seen}");
    let secret: String = text(&seen, "secret").split_whitespace().collect();
    assert_eq!(secret.len(), 32, "a 160-bit base32 secret: {seen}");

    // Until enrolled, the other pages send the admin back here.
    b.visit("/console/").await;
    b.wait_page("dashboard refused until enrolled", |v| {
        v["path"] == "/console/two-step"
    })
    .await;

    b.type_into("#code", "000000").await;
    b.submit("#two-step-form").await;
    b.wait_page("a wrong code refused", |v| !v["error"].is_null())
        .await;
    let seen = b.page("two-step-wrong-code").await;
    assert!(text(&seen, "error").contains("not right"), "{seen}");
    let shown_again: String = text(&seen, "secret").split_whitespace().collect();
    assert_eq!(shown_again, secret, "the same secret is shown again");

    let code = |at| traitortrack_server::totp::code_at(&secret, at).expect("code");
    b.type_into("#code", &code(s.clock.now())).await;
    b.submit("#two-step-form").await;
    b.wait_page("recovery codes", |v| {
        v["codes"].as_array().is_some_and(|c| !c.is_empty())
    })
    .await;
    let seen = b.page("recovery-codes").await;
    assert_eq!(seen["h1"], "Two-step login is on");
    let recovery: Vec<String> = seen["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{seen}");

    b.click("#codes-done").await;
    b.wait_page("dashboard after enrolment", |v| v["h1"] == "Dashboard")
        .await;
    let seen = b.page("dashboard-two-step-on").await;
    assert!(
        text(&seen, "notice").starts_with("Two-step login is on"),
        "{seen}"
    );
    assert!(text(&seen, "signed_in").starts_with("admin"), "{seen}");

    b.visit("/console/two-step").await;
    let seen = b.page("two-step-already-on").await;
    assert_eq!(seen["h1"], "Two-step login is on");
    assert_eq!(seen["codes"], json!([]), "recovery codes are shown once");

    // Log out; a new login asks for the code.
    b.click("#logout").await;
    b.wait_page("logged out", |v| {
        v["path"] == "/console/login?note=logged_out"
    })
    .await;
    let seen = b.page("logged-out").await;
    assert_eq!(text(&seen, "notice"), "You are logged out.");
    b.type_into("#username", "admin").await;
    b.type_into("#password", PASSWORD).await;
    b.submit("#login-form").await;
    b.wait_page("the code step", |v| v["code_step"] == true)
        .await;
    let seen = b.page("login-code-step").await;
    assert_eq!(seen["path"], "/console/login", "{seen}");

    // The code that confirmed enrolment is spent: the next one, 30 s later.
    s.clock.advance(time::Duration::seconds(30));
    b.type_into("#password", PASSWORD).await;
    b.type_into("#code", &code(s.clock.now())).await;
    b.submit("#login-form").await;
    b.wait_page("dashboard after the code", |v| v["h1"] == "Dashboard")
        .await;
    let seen = b.page("dashboard-after-code").await;
    assert_eq!(seen["path"], "/console/");

    // A recovery code works in place of the code, once.
    b.click("#logout").await;
    b.wait_page("logged out again", |v| v["h1"] == "Log in")
        .await;
    b.type_into("#username", "admin").await;
    b.type_into("#password", PASSWORD).await;
    b.submit("#login-form").await;
    b.wait_page("the code step again", |v| v["code_step"] == true)
        .await;
    b.type_into("#password", PASSWORD).await;
    b.type_into("#code", &recovery[0]).await;
    b.submit("#login-form").await;
    b.wait_page("dashboard after a recovery code", |v| {
        v["h1"] == "Dashboard"
    })
    .await;
    b.assert_clean_console().await;
}
on_each_backend!(admin_logs_in_with_two_step);

// ------------------------------------------------------------ (b) roles

async fn dispatcher_is_refused_an_admin_page(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    // An admin resets dora's password: she chooses her own at the next login.
    let temporary = "temporary-pass-4711";
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/users/dora/password",
            &json!({ "password": temporary }),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let Some(mut b) = Browser::open(&s, "dispatcher").await else {
        return;
    };

    let seen = b.log_in("dora", temporary).await;
    assert_eq!(seen["path"], "/console/password", "{seen}");
    let seen = b.page("password-forced").await;
    assert_eq!(seen["forced"], true, "{seen}");
    b.type_into("#current", temporary).await;
    b.type_into("#new", "sunflower tractor evening").await;
    b.type_into("#again", "sunflower tractor morning").await;
    b.submit("#password-form").await;
    b.wait_page("passwords differ", |v| !v["error"].is_null())
        .await;
    let seen = b.page("password-mismatch").await;
    assert!(text(&seen, "error").contains("not the same"), "{seen}");

    b.type_into("#current", temporary).await;
    b.type_into("#new", "sunflower tractor evening").await;
    b.type_into("#again", "sunflower tractor evening").await;
    b.submit("#password-form").await;
    b.wait_page("dashboard after the change", |v| v["h1"] == "Dashboard")
        .await;
    let seen = b.page("dashboard-dispatcher").await;
    assert_eq!(text(&seen, "notice"), "Your password is changed.");
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Notifications"]),
        "no admin menu: {seen}"
    );
    assert!(seen["bills"].is_null(), "no bills for dispatchers: {seen}");
    assert!(
        seen["stations"].is_null(),
        "no stations for dispatchers: {seen}"
    );
    assert_eq!(
        seen["totals"]["parents"], "0",
        "the totals are there: {seen}"
    );

    // An admin page: a plain 403 page.
    b.visit("/console/stations").await;
    let seen = b.page("stations-forbidden").await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    assert_eq!(
        text(&seen, "refusal"),
        "A dispatcher cannot open this page (it is for admins)."
    );
    let cookie = b.session_cookie().await;
    let resp = plain_http()
        .get(s.url("/console/stations"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    b.visit("/console/no-such-page").await;
    let seen = b.page("no-such-page").await;
    assert_eq!(seen["h1"], "No such page", "{seen}");
    b.assert_clean_console().await;
}
on_each_backend!(dispatcher_is_refused_an_admin_page);

// ------------------------------------------------------------ (c) CSRF

/// Sends a form from the page itself, with these fields (no CSRF token
/// unless one is among them).
fn forged_form(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{{ const i = document.createElement('input'); i.type = 'hidden'; \
                 i.name = {k:?}; i.value = {v:?}; f.appendChild(i); }}"
            )
        })
        .collect();
    format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = {action:?}; \
         {inputs} document.body.appendChild(f); f.submit(); return null;"
    )
}

async fn console_form_without_csrf_is_refused(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("bina", Role::Biller, None).await;
    let Some(mut b) = Browser::open(&s, "csrf").await else {
        return;
    };
    let seen = b.log_in("bina", PASSWORD).await;
    assert_eq!(seen["path"], "/console/", "{seen}");

    // Log out without the token: refused, and still logged in.
    b.js(&forged_form("/console/logout", &[])).await;
    b.wait_page("logout without a token refused", |v| {
        !v["refusal"].is_null()
    })
    .await;
    let seen = b.page("logout-without-csrf").await;
    assert_eq!(seen["h1"], "This form was refused", "{seen}");
    assert!(
        text(&seen, "refusal").contains("did not come from a TraitorTrack page"),
        "{seen}"
    );
    b.visit("/console/").await;
    let seen = b
        .wait_page("still logged in", |v| v["h1"] == "Dashboard")
        .await;
    assert!(text(&seen, "signed_in").starts_with("bina"), "{seen}");

    // A wrong token on the password form: refused, nothing changed.
    let wrong = "0".repeat(48);
    b.js(&forged_form(
        "/console/password",
        &[
            ("csrf", &wrong),
            ("current", PASSWORD),
            ("new", "a stolen new passphrase"),
            ("again", "a stolen new passphrase"),
        ],
    ))
    .await;
    b.wait_page("password form with a wrong token refused", |v| {
        !v["refusal"].is_null()
    })
    .await;
    b.shot("password-wrong-csrf").await;
    s.login("bina", None).await; // the old password still works

    // The same over plain HTTP, with the browser's cookie.
    let cookie = b.session_cookie().await;
    b.visit("/console/").await;
    let csrf = b
        .js("return document.querySelector('input[name=csrf]').value;")
        .await
        .as_str()
        .expect("the page's token")
        .to_string();
    let http = plain_http();
    let post = |path: &str| {
        http.post(s.url(path))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
    };
    for (what, req) in [
        ("no body", post("/console/logout")),
        ("no token", post("/console/logout").body("")),
        (
            "a wrong token",
            post("/console/logout").body(format!("csrf={wrong}")),
        ),
        (
            "the right token from another site",
            post("/console/logout")
                .header("sec-fetch-site", "cross-site")
                .body(format!("csrf={csrf}")),
        ),
    ] {
        let resp = req.send().await.expect("answer");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}");
    }
    let resp = http
        .post(s.url("/console/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "bina"), ("password", PASSWORD)])
        .send()
        .await
        .expect("answer");
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a login form sent from another site"
    );
    let resp = post("/console/logout")
        .header("sec-fetch-site", "same-origin")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the right token");
    assert_eq!(resp.headers()["location"], "/console/login?note=logged_out");
    let resp = http
        .get(s.url("/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "logged out");
    assert_eq!(resp.headers()["location"], "/console/login?note=ended");
    b.assert_clean_console().await;
}
on_each_backend!(console_form_without_csrf_is_refused);

// ------------------------------------------------------------ (d) live totals

async fn dashboard_totals_follow_a_station_event(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("Dock 1", &["ravi", "admin"]).await;
    s.station("Dock 2 (spare)").await;
    // A full parent, one with 12 children, and two bills.
    let mut batch: Vec<Value> = (1..=30)
        .map(|i| link("ravi", "SB00001", &format!("C{i:04}")))
        .collect();
    batch.extend((31..=42).map(|i| link("ravi", "SB00002", &format!("C{i:04}"))));
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (code, capacity, destination, vehicle) in [
        ("B-1001", 3, "Kolkata", "WB 01 AB 1234"),
        ("B-1002", 1, "Kanpur", "UP 32 CD 5678"),
    ] {
        let (status, body) = s
            .post_json(
                &s.admin_token,
                "/api/v1/bills",
                &json!({"code": code, "capacity": capacity,
                        "destination": destination, "vehicle_number": vehicle}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (bill, parent) in [("B-1001", "SB00001"), ("B-1002", "SB00002")] {
        let result = s.event(&key, bill_add("admin", bill, parent)).await;
        assert_eq!(result["status"], "applied", "{result}");
    }
    let Some(mut b) = Browser::open(&s, "dashboard").await else {
        return;
    };

    let seen = b.log_in("admin", PASSWORD).await;
    assert_eq!(seen["path"], "/console/", "{seen}");
    let seen = b.page("dashboard-admin").await;
    let stats = s.stats().await;
    let n = |v: &Value| v.as_i64().expect("a count");
    for (key, want) in [
        ("parents", n(&stats["parents"])),
        ("children", n(&stats["children"])),
        ("complete_parents", n(&stats["complete_parents"])),
        ("links", n(&stats["links"])),
        ("bags", n(&stats["bags"])),
        ("scans_today", n(&stats["scans_today"])),
        ("bills_in_progress", n(&stats["bills"]["in_progress"])),
        ("bills_ready", n(&stats["bills"]["ready"])),
    ] {
        assert_eq!(seen["totals"][key], grouped(want), "{key}: {seen}");
    }
    assert_eq!(seen["totals"]["links"], "42");
    let bills = seen["bills"].to_string();
    assert!(
        bills.contains("B-1001") && bills.contains("1 of 3") && bills.contains("Kolkata"),
        "{bills}"
    );
    assert!(
        bills.contains("B-1002") && bills.contains("Ready to close"),
        "{bills}"
    );
    let stations = seen["stations"].to_string();
    assert!(stations.contains("Dock 1 just now Active"), "{stations}");
    assert!(
        stations.contains("Dock 2 (spare) never Never seen"),
        "{stations}"
    );
    assert_eq!(
        seen["nav"],
        json!([
            "Dashboard",
            "Bags",
            "Bills",
            "Stations",
            "Users",
            "Promotions",
            "Imports",
            "Audit",
            "Health",
            "Notifications"
        ])
    );

    // A station event through the API: the totals follow within 5 s.
    let before = s.stats().await;
    let result = s.event(&key, link("ravi", "SB00003", "C0100")).await;
    let posted = Instant::now();
    assert_eq!(result["status"], "applied", "{result}");
    let want_links = grouped(n(&before["links"]) + 1);
    let want_parents = grouped(n(&before["parents"]) + 1);
    let seen = b
        .wait_until(
            "the totals after the event",
            Duration::from_millis(5_500),
            LOOK,
            |v| {
                v["totals"]["links"] == want_links.as_str()
                    && v["totals"]["parents"] == want_parents.as_str()
            },
        )
        .await;
    let took = posted.elapsed();
    eprintln!("dashboard showed the event after {} ms", took.as_millis());
    assert!(text(&seen, "live").contains("on"), "{seen}");
    b.shot("dashboard-live-update").await;

    b.visit("/console/stations").await;
    let seen = b.page("stations").await;
    assert_eq!(seen["h1"], "Stations");
    assert_eq!(
        seen["station_list"].as_array().map(Vec::len),
        Some(2),
        "{seen}"
    );

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/").await;
    b.page("dashboard-tablet").await;
    b.set_window(1366, 768).await;

    // The open dashboard asks every 5 s, but that is no use of the login: it
    // still ends after 30 minutes without a person doing anything.
    b.visit("/console/").await;
    b.wait_page("the dashboard again", |v| v["h1"] == "Dashboard")
        .await;
    s.clock.advance(time::Duration::minutes(20));
    tokio::time::sleep(Duration::from_millis(5_500)).await; // a poll or more
    s.clock.advance(time::Duration::minutes(11));
    let seen = b
        .wait_until(
            "the dashboard says the login ended",
            Duration::from_millis(5_500),
            LOOK,
            |v| text(v, "live").contains("ended"),
        )
        .await;
    assert_eq!(
        text(&seen, "live_text"),
        "Your login has ended. Reload the page to log in again."
    );
    b.shot("dashboard-login-ended").await;
    b.visit("/console/").await;
    let seen = b.page("login-after-idle").await;
    assert_eq!(seen["path"], "/console/login?note=idle", "{seen}");
    assert_eq!(
        text(&seen, "notice"),
        "You were logged out after a time without use. Log in again."
    );
    b.assert_clean_console().await;
}
on_each_backend!(dashboard_totals_follow_a_station_event);
