//! The console's users, promotions, notifications and audit pages in a real
//! browser (headless Chromium through chromedriver) against a real server,
//! on each database.
//!
//! An admin adds users (one with a made-up first password that must be
//! changed at the first login), locks and unlocks one (whose logins are
//! refused meanwhile, in the console and the API), changes roles and areas
//! and sees the refusals in plain words; a dispatcher asks for promotion, an
//! admin approves it, and the dispatcher reads the answer under the menu's
//! badge; the audit page filters, pages and verifies the chain, and names a
//! row changed behind its back; dispatchers and billers are refused every
//! admin page. Every page is checked for its style sheet and width and
//! saved under `$CARGO_TARGET_DIR/console-screens/`.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use traitortrack_protocol::Role;
use traitortrack_server::audit::{self, Actor, Entry};
use traitortrack_server::db::Ts;
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::webdriver::WAIT;
use traitortrack_tests::{
    fresh_url, on_each_backend, send, settings, Backend, TestServer, PASSWORD,
};

// ------------------------------------------------------------ helpers

/// The text of every element `css` finds, spaces folded.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let v = b
        .js(&format!(
            "return Array.from(document.querySelectorAll({css:?})).map((e) => e.innerText.trim().replace(/\\s+/g, ' '));"
        ))
        .await;
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// An attribute of every element `css` finds.
async fn attrs(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let v = b
        .js(&format!(
            "return Array.from(document.querySelectorAll({css:?})).map((e) => e.getAttribute({attr:?}) || '');"
        ))
        .await;
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The text of the first element `css` finds, once there is one.
async fn wait_text(b: &mut Browser, what: &str, css: &str) -> String {
    let script = format!(
        "const e = document.querySelector({css:?}); return e && document.readyState === 'complete' ? e.innerText.trim().replace(/\\s+/g, ' ') : null;"
    );
    b.wait_until(what, WAIT, &script, |v| v.is_string())
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits for the page at an address that contains `part`.
async fn wait_path(b: &mut Browser, what: &str, part: &str) -> Value {
    b.wait_page(what, |v| {
        text(v, "path").contains(part) && v["ready"] == "complete"
    })
    .await
}

/// Picks an option of a `<select>` the way a person does: by clicking it.
async fn choose(b: &Browser, select: &str, value: &str) {
    b.click(&format!("{select} option[value=\"{value}\"]"))
        .await;
}

async fn log_out(b: &mut Browser) {
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
}

/// Logs in through the API: the status and the body.
async fn api_login(s: &TestServer, username: &str, password: &str) -> (StatusCode, Value) {
    send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

const ADMIN_MENU: [&str; 10] = [
    "Dashboard",
    "Bags",
    "Bills",
    "Stations",
    "Users",
    "Promotions",
    "Imports",
    "Audit",
    "Health",
    "Notifications",
];

// ------------------------------------------------------------ (a) adding users

async fn admin_adds_users(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let Some(mut b) = Browser::open(&s, "users-add").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/users").await;
    let seen = b.page("users").await;
    assert_eq!(seen["h1"], "Users");
    assert_eq!(seen["nav"], json!(ADMIN_MENU), "{seen}");
    let rows = texts(&b, "#users tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("admin Admin — Active Off just now"),
        "{rows:?}"
    );
    assert_eq!(rows[1], "ravi Dispatcher north Active Off never");

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/users/ravi").await;
    b.page("user-tablet").await;
    b.visit("/console/audit").await;
    b.page("audit-tablet").await;
    b.set_window(1366, 768).await;
    b.visit("/console/users").await;
    b.wait_page("the list again", |v| v["h1"] == "Users").await;

    // A dispatcher with no first password: one is made up and shown once.
    b.click("#new-user summary").await;
    b.type_into("#new-username", "Nora").await;
    choose(&b, "#new-role", "dispatcher").await;
    choose(&b, "#new-area", "north").await;
    b.page("users-new-form").await;
    b.submit("#new-user-form").await;
    let made_up = wait_text(&mut b, "the made-up password", "#created-password").await;
    let seen = b.page("users-created-password-shown").await;
    assert!(seen["error"].is_null(), "{seen}");
    assert!(made_up.len() >= 10, "{made_up}");
    let rows = texts(&b, "#users tbody tr").await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with("nora New password Dispatcher north Active Off never")),
        "the name is lower-cased, the account listed: {rows:?}"
    );

    // A common password is refused in plain words; what was typed stays.
    b.click("#new-user summary").await;
    b.type_into("#new-username", "bert").await;
    choose(&b, "#new-role", "biller").await;
    b.type_into("#new-password", "1234567890").await;
    b.submit("#new-user-form").await;
    b.wait_page("a common password refused", |v| !v["error"].is_null())
        .await;
    let seen = b.page("users-weak-password").await;
    assert!(
        text(&seen, "error").starts_with("This password is too common"),
        "{seen}"
    );
    let kept = b
        .js("return document.querySelector('#new-username').value;")
        .await;
    assert_eq!(kept, "bert");

    // A typed password that need not be changed: on to the account's page.
    b.type_into("#new-password", "green lantern harbour").await;
    b.submit("#new-user-form").await;
    let seen = wait_path(
        &mut b,
        "bert's page",
        "/console/users/bert?note=user_created",
    )
    .await;
    assert_eq!(
        text(&seen, "notice"),
        "The account is made. The user can log in now."
    );
    b.page("user-created").await;
    assert_eq!(texts(&b, "#fact-role").await, ["Biller"]);
    assert_eq!(texts(&b, "#must-change").await, Vec::<String>::new());
    let (status, body) = api_login(&s, "bert", "green lantern harbour").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, bert) = s.get(&s.admin_token, "/api/v1/users/bert").await;
    assert_eq!(bert["must_change_password"], false, "{bert}");

    // The same name twice.
    b.visit("/console/users").await;
    b.click("#new-user summary").await;
    b.type_into("#new-username", "bert").await;
    choose(&b, "#new-role", "biller").await;
    b.submit("#new-user-form").await;
    let seen = b
        .wait_page("a taken name refused", |v| !v["error"].is_null())
        .await;
    assert_eq!(text(&seen, "error"), "The username bert is already taken.");

    // Nora logs in with the made-up password and must choose her own.
    log_out(&mut b).await;
    let seen = b.log_in("nora", &made_up).await;
    assert_eq!(seen["path"], "/console/password", "{seen}");
    let seen = b.page("new-user-forced-change").await;
    assert_eq!(seen["forced"], true, "{seen}");
    b.type_into("#current", &made_up).await;
    b.type_into("#new", "quiet river morning").await;
    b.type_into("#again", "quiet river morning").await;
    b.submit("#password-form").await;
    let seen = b
        .wait_page("nora's dashboard", |v| v["h1"] == "Dashboard")
        .await;
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Notifications"]),
        "{seen}"
    );
    b.assert_clean_console().await;
}
on_each_backend!(admin_adds_users);

// ------------------------------------------------------------ (b) lock and unlock

async fn admin_locks_and_unlocks_a_user(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let mut config = settings(&url);
    config.lockout_after = 3;
    let s = TestServer::start_with(config).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("wendy", Role::Biller, None).await;
    // Wendy types a wrong password three times: her logins are blocked a while.
    for _ in 0..3 {
        let (status, body) = api_login(&s, "wendy", "not-her-password").await;
        assert!(status.is_client_error(), "{status} {body}");
    }
    let Some(mut b) = Browser::open(&s, "users-lock").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/users/dora").await;
    let seen = b.page("user-dora").await;
    assert_eq!(seen["h1"], "dora");
    assert_eq!(texts(&b, "#fact-state").await, ["Active"]);

    b.submit("#lock-form").await;
    let seen = wait_path(&mut b, "dora locked", "note=locked").await;
    assert_eq!(
        text(&seen, "notice"),
        "The account is locked and its logins have ended."
    );
    b.page("user-locked").await;
    assert_eq!(texts(&b, "#fact-state").await, ["Locked"]);

    // The API refuses her in plain words.
    let (status, body) = api_login(&s, "dora", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["message"],
        "The account dora is locked. Ask an admin to unlock it."
    );

    // The list's filter by state: the locked account, and the blocked one.
    b.visit("/console/users").await;
    b.wait_page("the list", |v| v["h1"] == "Users").await;
    choose(&b, "#filter-state", "locked").await;
    b.submit("#user-filter").await;
    wait_path(&mut b, "locked accounts", "state=locked").await;
    b.page("users-filter-locked").await;
    assert_eq!(attrs(&b, "#users tbody tr", "data-user").await, ["dora"]);
    b.visit("/console/users?state=blocked").await;
    b.page("users-filter-blocked").await;
    let rows = texts(&b, "#users tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].starts_with("wendy Biller — Blocked until ")
            && rows[0].contains("(wrong passwords)"),
        "{rows:?}"
    );
    b.visit("/console/users?state=active").await;
    b.wait_page("active accounts", |v| v["h1"] == "Users").await;
    assert_eq!(attrs(&b, "#users tbody tr", "data-user").await, ["admin"]);

    // Lift wendy's block from her page.
    b.visit("/console/users/wendy").await;
    b.wait_page("wendy's page", |v| v["h1"] == "wendy").await;
    assert_eq!(texts(&b, "#unlock-form button").await, ["Lift the block"]);
    b.submit("#unlock-form").await;
    wait_path(&mut b, "wendy unblocked", "note=unlocked").await;
    let (status, body) = api_login(&s, "wendy", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Dora's console login is refused with the same words.
    log_out(&mut b).await;
    b.type_into("#username", "dora").await;
    b.type_into("#password", PASSWORD).await;
    b.submit("#login-form").await;
    b.wait_page("dora refused", |v| !v["error"].is_null()).await;
    let seen = b.page("login-locked").await;
    assert_eq!(
        text(&seen, "error"),
        "The account dora is locked. Ask an admin to unlock it."
    );
    assert_eq!(seen["path"], "/console/login");

    // Unlocked, she gets in again.
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/users/dora").await;
    b.wait_page("dora's page", |v| v["h1"] == "dora").await;
    b.submit("#unlock-form").await;
    let seen = wait_path(&mut b, "dora unlocked", "note=unlocked").await;
    assert_eq!(
        text(&seen, "notice"),
        "The account is unlocked. The user can log in again."
    );
    assert_eq!(texts(&b, "#fact-state").await, ["Active"]);
    log_out(&mut b).await;
    let seen = b.log_in("dora", PASSWORD).await;
    assert_eq!(seen["path"], "/console/", "{seen}");
    let (status, _) = api_login(&s, "dora", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    b.assert_clean_console().await;
}
on_each_backend!(admin_locks_and_unlocks_a_user);

// ------------------------------------------------------------ (c) role and area

async fn role_and_area_changes_show_in_the_list(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let mut config = settings(&url);
    config.max_dispatchers_per_area = 1;
    let s = TestServer::start_with(config).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("dev", Role::Biller, None).await;
    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/areas", &json!({"name": "south"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let Some(mut b) = Browser::open(&s, "users-role").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;

    // Dora moves to the south.
    b.visit("/console/users/dora").await;
    b.wait_page("dora's page", |v| v["h1"] == "dora").await;
    choose(&b, "#change-area", "south").await;
    b.submit("#change-form").await;
    let seen = wait_path(&mut b, "area saved", "note=user_changed").await;
    assert_eq!(
        text(&seen, "notice"),
        "The role and area are saved. The user is told in the app."
    );
    assert_eq!(texts(&b, "#fact-area").await, ["south"]);
    b.visit("/console/users").await;
    b.wait_page("the list", |v| v["h1"] == "Users").await;
    let rows = texts(&b, "#users tbody tr[data-user=dora]").await;
    assert_eq!(rows, ["dora Dispatcher south Active Off never"]);

    // Nothing changed is said so.
    b.visit("/console/users/dora").await;
    b.wait_page("dora's page", |v| v["h1"] == "dora").await;
    b.submit("#change-form").await;
    let seen = wait_path(&mut b, "nothing changed", "note=unchanged").await;
    assert_eq!(
        text(&seen, "notice"),
        "Nothing was changed: the role and area are the same as before."
    );

    // Dora becomes a biller.
    choose(&b, "#change-role", "biller").await;
    b.submit("#change-form").await;
    wait_path(&mut b, "role saved", "note=user_changed").await;
    b.page("user-role-changed").await;
    assert_eq!(texts(&b, "#fact-role").await, ["Biller"]);
    b.visit("/console/users?role=biller").await;
    b.page("users-filter-billers").await;
    assert_eq!(
        attrs(&b, "#users tbody tr", "data-user").await,
        ["dev", "dora"]
    );
    let rows = texts(&b, "#users tbody tr[data-user=dora]").await;
    assert_eq!(rows, ["dora Biller south Active Off never"]);

    // The search by name.
    b.type_into("#filter-name", "DOR").await;
    b.submit("#user-filter").await;
    wait_path(&mut b, "search by name", "name=DOR").await;
    assert_eq!(attrs(&b, "#users tbody tr", "data-user").await, ["dora"]);
    b.visit("/console/users?name=zzz").await;
    b.wait_page("nobody found", |v| v["h1"] == "Users").await;
    assert_eq!(
        texts(&b, "#no-users").await,
        ["No account fits this filter."]
    );

    // A dispatcher needs an area, and an area with room (one per area here).
    b.visit("/console/users/dev").await;
    b.wait_page("dev's page", |v| v["h1"] == "dev").await;
    choose(&b, "#change-role", "dispatcher").await;
    b.submit("#change-form").await;
    let seen = b
        .wait_page("a dispatcher needs an area", |v| !v["error"].is_null())
        .await;
    assert_eq!(text(&seen, "error"), "A dispatcher needs a dispatch area.");
    s.add_user("sam", Role::Dispatcher, Some("south")).await;
    choose(&b, "#change-role", "dispatcher").await;
    choose(&b, "#change-area", "south").await;
    b.submit("#change-form").await;
    let seen = b
        .wait_page("the area is full", |v| {
            text(v, "error").starts_with("The area south is full")
        })
        .await;
    b.page("user-area-full").await;
    assert_eq!(
        text(&seen, "error"),
        "The area south is full: it has 1 of 1 dispatchers."
    );

    // The only admin cannot demote or lock themself.
    b.visit("/console/users/admin").await;
    b.wait_page("the admin's own page", |v| v["h1"] == "admin")
        .await;
    assert_eq!(texts(&b, "#own-account").await.len(), 1);
    choose(&b, "#change-role", "biller").await;
    b.submit("#change-form").await;
    let seen = b
        .wait_page("own role refused", |v| !v["error"].is_null())
        .await;
    b.page("user-own-role-refused").await;
    assert_eq!(
        text(&seen, "error"),
        "You cannot change your own role. Ask another admin."
    );
    b.submit("#lock-form").await;
    let seen = b
        .wait_page("own lock refused", |v| {
            text(v, "error").contains("lock your own account")
        })
        .await;
    assert_eq!(
        text(&seen, "error"),
        "You cannot lock your own account. Ask another admin."
    );
    let (_, me) = s.get(&s.admin_token, "/api/v1/users/admin").await;
    assert_eq!(me["role"], "admin", "{me}");
    assert_eq!(me["locked"], false, "{me}");

    // A password reset with a made-up password, shown once.
    b.visit("/console/users/dora").await;
    b.wait_page("dora's page", |v| v["h1"] == "dora").await;
    b.submit("#password-form").await;
    let shown = wait_text(&mut b, "the new password", "#new-password-shown").await;
    b.page("user-password-reset").await;
    assert_eq!(texts(&b, "#must-change").await.len(), 1);
    let (status, body) = api_login(&s, "dora", &shown).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, dora) = s.get(&s.admin_token, "/api/v1/users/dora").await;
    assert_eq!(dora["must_change_password"], true, "{dora}");
    b.assert_clean_console().await;
}
on_each_backend!(role_and_area_changes_show_in_the_list);

// ------------------------------------------------------------ (d) promotion

async fn a_dispatcher_is_promoted(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let Some(mut b) = Browser::open(&s, "promotion").await else {
        return;
    };

    // Dora asks to become a biller.
    b.log_in("dora", PASSWORD).await;
    b.visit("/console/notifications").await;
    let seen = b.page("notifications-empty").await;
    assert_eq!(seen["h1"], "Notifications");
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Notifications"]),
        "{seen}"
    );
    choose(&b, "#ask-role", "biller").await;
    b.type_into("#ask-reason", "I make the bills on the night shift.")
        .await;
    b.submit("#ask-form").await;
    let seen = wait_path(&mut b, "request sent", "note=asked").await;
    assert_eq!(
        text(&seen, "notice"),
        "Your request is sent. An admin will answer, and you will see the answer here."
    );
    b.page("notifications-asked").await;
    let own = texts(&b, "#own-requests tbody tr").await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(
        own[0].starts_with("Biller ") && own[0].contains("Waiting"),
        "{own:?}"
    );
    assert_eq!(
        texts(&b, "#ask-waiting").await.len(),
        1,
        "one request at a time"
    );
    log_out(&mut b).await;

    // Bina asks too, through the API; the admin will turn her down.
    let bina = s.login("bina", None).await;
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/promotions",
            &json!({"role": "admin", "reason": "I want to see everything."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The admin sees both requests under a badge, and decides.
    let seen = b.log_in("admin", PASSWORD).await;
    assert_eq!(seen["path"], "/console/");
    assert_eq!(texts(&b, "#unread-badge").await, ["2"]);
    b.visit("/console/promotions").await;
    let seen = b.page("promotions-waiting").await;
    assert_eq!(seen["h1"], "Promotion requests");
    assert_eq!(
        attrs(&b, "#pending .request", "data-user").await,
        ["bina", "dora"]
    );
    let dora_request = attrs(&b, "#pending .request[data-user=dora]", "data-request").await;
    let dora_request = &dora_request[0];
    let card = texts(&b, "#pending .request[data-user=dora]").await;
    assert!(
        card[0].contains("dora asks to become Biller")
            && card[0].contains("I make the bills on the night shift."),
        "{card:?}"
    );
    b.type_into(&format!("#note-{dora_request}"), "Welcome to billing.")
        .await;
    b.click(&format!("#approve-{dora_request}")).await;
    let seen = wait_path(&mut b, "approved", "note=approved").await;
    assert_eq!(
        text(&seen, "notice"),
        "The request is approved. The user is told in the app."
    );
    let bina_request = attrs(&b, "#pending .request[data-user=bina]", "data-request").await;
    let bina_request = &bina_request[0];
    b.type_into(&format!("#note-{bina_request}"), "Not now.")
        .await;
    b.click(&format!("#reject-{bina_request}")).await;
    wait_path(&mut b, "turned down", "note=rejected").await;
    b.page("promotions-decided").await;
    assert_eq!(texts(&b, "#no-pending").await, ["No requests are waiting."]);
    let decided = texts(&b, "#decided tbody tr").await;
    assert_eq!(decided.len(), 2, "{decided:?}");
    assert!(
        decided[0].starts_with("bina Admin Turned down admin") && decided[0].ends_with("Not now."),
        "{decided:?}"
    );
    assert!(
        decided[1].starts_with("dora Biller Approved admin")
            && decided[1].ends_with("Welcome to billing."),
        "{decided:?}"
    );
    let (_, dora) = s.get(&s.admin_token, "/api/v1/users/dora").await;
    assert_eq!(dora["role"], "biller", "{dora}");

    // The admin's own notifications: both requests, marked read at once.
    b.visit("/console/notifications").await;
    b.page("notifications-admin").await;
    assert_eq!(texts(&b, "#notifications .note.unread").await.len(), 2);
    assert!(texts(&b, "#ask").await.is_empty(), "admins do not ask");
    b.submit("#read-all-form").await;
    let seen = wait_path(&mut b, "all read", "note=all_read").await;
    assert_eq!(
        text(&seen, "notice"),
        "All your notifications are marked as read."
    );
    assert!(texts(&b, "#unread-badge").await.is_empty());
    assert_eq!(
        texts(&b, "#unread-count").await,
        ["You have no unread notifications."]
    );
    log_out(&mut b).await;

    // Dora (logged out by the role change) sees the answer under the badge.
    let seen = b.log_in("dora", PASSWORD).await;
    assert_eq!(seen["path"], "/console/");
    assert_eq!(texts(&b, "#unread-badge").await, ["1"]);
    let nav = texts(&b, ".menu a").await;
    assert_eq!(
        nav,
        ["Dashboard", "Bags", "Bills", "Notifications 1"],
        "a biller's menu"
    );
    b.click("#nav-notifications").await;
    let seen = b
        .wait_page("dora's notifications", |v| v["h1"] == "Notifications")
        .await;
    assert!(seen["notice"].is_null());
    b.page("notifications-unread").await;
    let unread = texts(&b, "#notifications .note.unread .message").await;
    assert_eq!(
        unread,
        ["admin approved your request: you are now a biller. Log in again to go on. Note: Welcome to billing."]
    );
    assert_eq!(
        texts(&b, "#unread-count").await,
        ["You have 1 unread notification."]
    );
    let own = texts(&b, "#own-requests tbody tr").await;
    assert!(own[0].contains("Approved by admin"), "{own:?}");
    let id = attrs(&b, "#notifications .note.unread", "data-id").await;
    b.submit(&format!("#read-{}", id[0])).await;
    let seen = wait_path(&mut b, "marked read", "note=read").await;
    assert_eq!(text(&seen, "notice"), "The notification is marked as read.");
    b.page("notifications-read").await;
    assert!(texts(&b, "#unread-badge").await.is_empty(), "no badge");
    assert!(texts(&b, "#notifications .note.unread").await.is_empty());
    assert_eq!(texts(&b, "#notifications .note").await.len(), 1);
    let (_, count) = s
        .get(
            &s.login("dora", None).await,
            "/api/v1/notifications/unread-count",
        )
        .await;
    assert_eq!(count["unread"], 0, "{count}");
    b.assert_clean_console().await;
}
on_each_backend!(a_dispatcher_is_promoted);

// ------------------------------------------------------------ (e) audit

/// Runs `sql` on audit row `id` as someone with the database's own keys:
/// on PostgreSQL a superuser's session with triggers off, on SQLite after
/// dropping `trigger` (as `tests/audit.rs` does).
async fn tamper(s: &TestServer, trigger: &str, sql: &str, id: i64) {
    match s.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&s.url).await.expect("connect");
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut c)
                .await
                .expect("triggers off");
            let done = sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("tamper");
            assert_eq!(done.rows_affected(), 1);
            c.close().await.ok();
        }
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&s.url)
                .await
                .expect("connect");
            sqlx::query(&format!("DROP TRIGGER {trigger}"))
                .execute(&mut c)
                .await
                .expect("drop trigger");
            let done = sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("tamper");
            assert_eq!(done.rows_affected(), 1);
            c.close().await.ok();
        }
    }
}

async fn audit_page_filters_and_verifies(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    // Enough rows for more than one page.
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let mut tx = s.db.begin().await.expect("begin");
    for i in 0..120 {
        let code = format!("SB{i:05}");
        audit::record(
            &mut tx,
            &Actor::default(),
            now,
            Entry {
                action: "filler",
                entity: "bag",
                code: Some(&code),
                before: None,
                after: Some(json!({"n": i})),
            },
        )
        .await
        .expect("audit row");
    }
    tx.commit().await.expect("commit");

    let Some(mut b) = Browser::open(&s, "audit").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    // The admin locks dora and bina in the browser: rows this test caused.
    for who in ["dora", "bina"] {
        b.visit(&format!("/console/users/{who}")).await;
        b.wait_page("the account's page", |v| v["h1"] == who).await;
        b.submit("#lock-form").await;
        wait_path(&mut b, "locked", "note=locked").await;
    }

    b.visit("/console/audit").await;
    let seen = b.page("audit").await;
    assert_eq!(seen["h1"], "Audit log");
    let ids: Vec<i64> = attrs(&b, "#audit tbody tr", "data-id")
        .await
        .iter()
        .map(|i| i.parse().expect("an id"))
        .collect();
    assert_eq!(ids.len(), 100, "a page of 100");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // The next page holds the older rows only.
    b.submit("#audit-next").await;
    wait_path(&mut b, "older rows", "before=").await;
    b.page("audit-older").await;
    let older: Vec<i64> = attrs(&b, "#audit tbody tr", "data-id")
        .await
        .iter()
        .map(|i| i.parse().expect("an id"))
        .collect();
    assert!(!older.is_empty());
    assert!(older.iter().all(|id| *id < ids[99]), "{older:?}");

    // Filter by who and what: the two locks.
    b.visit("/console/audit").await;
    b.wait_page("the audit log", |v| v["h1"] == "Audit log")
        .await;
    b.type_into("#filter-actor", "admin").await;
    b.type_into("#filter-action", "lock").await;
    b.submit("#audit-filter").await;
    wait_path(&mut b, "filtered", "action=lock").await;
    b.page("audit-filtered").await;
    let rows = texts(&b, "#audit tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].contains("admin lock user bina"), "{rows:?}");
    assert!(rows[1].contains("admin lock user dora"), "{rows:?}");
    assert_eq!(
        attrs(&b, "#audit tbody tr", "data-actor").await,
        ["admin", "admin"]
    );
    let lock_of_dora: i64 = attrs(&b, "#audit tbody tr", "data-id").await[1]
        .parse()
        .expect("id");

    // By entity and code, and by dates.
    b.visit("/console/audit?entity=user&code=dora").await;
    b.wait_page("dora's rows", |v| v["h1"] == "Audit log").await;
    let actions = attrs(&b, "#audit tbody tr", "data-action").await;
    assert!(actions.contains(&"lock".to_string()), "{actions:?}");
    assert!(actions.contains(&"user_create".to_string()), "{actions:?}");
    b.visit("/console/audit?from=2999-01-01").await;
    b.wait_page("the future", |v| v["h1"] == "Audit log").await;
    assert_eq!(texts(&b, "#no-rows").await, ["No rows fit this filter."]);
    b.visit("/console/audit?from=2000-01-01&to=2999-12-31&action=lock")
        .await;
    b.wait_page("all time", |v| v["h1"] == "Audit log").await;
    assert_eq!(texts(&b, "#audit tbody tr").await.len(), 2);
    b.visit("/console/audit?from=yesterday").await;
    let seen = b.wait_page("a bad date", |v| !v["error"].is_null()).await;
    assert_eq!(
        text(&seen, "error"),
        "The from date must be a date like 2026-11-22."
    );

    // The chain is intact.
    b.submit("#verify-form").await;
    let headline = wait_text(&mut b, "the chain checked", "#verify-headline").await;
    b.page("audit-verified").await;
    assert!(
        headline.starts_with("The audit log is intact: all ")
            && headline.ends_with(" sealed rows are unchanged and none is missing."),
        "{headline}"
    );
    assert_eq!(
        attrs(&b, "#verify-result", "class").await,
        ["notice good verified"]
    );

    // A row changed behind the server's back is named.
    tamper(
        &s,
        "audit_log_no_update",
        "UPDATE audit_log SET entity_code = 'nobody' WHERE id = $1",
        lock_of_dora,
    )
    .await;
    b.submit("#verify-form").await;
    let headline = b
        .wait_until(
            "the change found",
            WAIT,
            "const e = document.querySelector('#verify-headline'); return e ? e.innerText : null;",
            |v| v.as_str().is_some_and(|t| t.contains("tampered")),
        )
        .await;
    assert_eq!(headline, "The audit log has been tampered with.");
    b.page("audit-tampered").await;
    let details = texts(&b, ".verify-detail").await;
    assert!(
        details[0].starts_with(&format!("Audit row {lock_of_dora} "))
            && details[0].contains("\"lock\"")
            && details[0].contains("was changed after it was sealed"),
        "{details:?}"
    );
    b.assert_clean_console().await;
}
on_each_backend!(audit_page_filters_and_verifies);

// ------------------------------------------------------------ (f) roles

async fn others_are_refused_the_admin_pages(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let Some(mut b) = Browser::open(&s, "users-refused").await else {
        return;
    };
    for (who, role, menu) in [
        (
            "dora",
            "dispatcher",
            json!(["Dashboard", "Bags", "Notifications"]),
        ),
        (
            "bina",
            "biller",
            json!(["Dashboard", "Bags", "Bills", "Notifications"]),
        ),
    ] {
        let seen = b.log_in(who, PASSWORD).await;
        assert_eq!(seen["path"], "/console/", "{seen}");
        assert_eq!(seen["nav"], menu, "{seen}");
        for path in [
            "/console/users",
            "/console/users/admin",
            "/console/promotions",
            "/console/audit",
        ] {
            b.visit(path).await;
            let seen = b
                .page(&format!("{who}-refused-{}", &path[9..].replace('/', "-")))
                .await;
            assert_eq!(seen["h1"], "Not for your account", "{path}: {seen}");
            assert_eq!(
                text(&seen, "refusal"),
                format!("A {role} cannot open this page (it is for admins)."),
                "{path}"
            );
        }
        // A form sent with the right token is refused too, and changes nothing.
        let cookie = b.session_cookie().await;
        b.visit("/console/notifications").await;
        b.wait_page("own notifications", |v| v["h1"] == "Notifications")
            .await;
        let csrf = b
            .js("return document.querySelector('input[name=csrf]').value;")
            .await
            .as_str()
            .expect("the page's token")
            .to_string();
        for path in [
            "/console/users/admin/lock",
            "/console/users/admin/change",
            "/console/audit/verify",
        ] {
            let resp = plain_http()
                .post(s.url(path))
                .header("cookie", &cookie)
                .form(&[("csrf", csrf.as_str()), ("role", "dispatcher")])
                .send()
                .await
                .expect("answer");
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{who} {path}");
        }
        log_out(&mut b).await;
    }
    let (_, admin) = s.get(&s.admin_token, "/api/v1/users/admin").await;
    assert_eq!(admin["role"], "admin", "{admin}");
    assert_eq!(admin["locked"], false, "{admin}");
    b.assert_clean_console().await;
}
on_each_backend!(others_are_refused_the_admin_pages);

// ------------------------------------------------------------ (g) the list's filters, no browser

/// The usernames `GET /api/v1/users` answers for a query.
async fn listed(s: &TestServer, query: &str) -> Vec<String> {
    let (status, body) = s
        .get(&s.admin_token, &format!("/api/v1/users?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn the_user_list_filters_by_name_and_state(s: &TestServer) {
    for name in ["a_b", "axb", "dora", "wendy", "zed"] {
        s.add_user(name, Role::Biller, None).await;
    }
    // `_` is a letter here, not LIKE's any-character; the search ignores case.
    assert_eq!(listed(s, "name=a_").await, ["a_b"]);
    assert_eq!(listed(s, "name=A").await, ["a_b", "admin", "axb", "dora"]);
    assert_eq!(listed(s, "name=%25").await, Vec::<String>::new());
    assert_eq!(
        listed(s, "name=%00").await.len(),
        6,
        "control characters are dropped"
    );

    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/users/dora/lock", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/users/zed/deactivate", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..s.settings.lockout_after {
        let (status, _) = api_login(s, "wendy", "not-her-password").await;
        assert!(status.is_client_error());
    }
    assert_eq!(listed(s, "state=locked").await, ["dora"]);
    assert_eq!(listed(s, "state=deactivated").await, ["zed"]);
    assert_eq!(listed(s, "state=blocked").await, ["wendy"]);
    assert_eq!(listed(s, "state=active").await, ["a_b", "admin", "axb"]);
    assert_eq!(listed(s, "state=active&name=x&limit=1").await, ["axb"]);
    let (status, body) = s.get(&s.admin_token, "/api/v1/users?state=asleep").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_state");

    // A block ends by itself: wendy is active again once it has passed.
    s.clock
        .advance(s.settings.lockout + time::Duration::seconds(1));
    assert_eq!(listed(s, "state=blocked").await, Vec::<String>::new());
    assert!(listed(s, "state=active")
        .await
        .contains(&"wendy".to_string()));

    // Last logins come in one query for a whole page.
    s.login("axb", None).await;
    let logins = traitortrack_server::users::last_logins(&s.db, &["axb", "a_b", "admin"])
        .await
        .expect("last logins");
    assert!(
        logins.contains_key("axb") && logins.contains_key("admin"),
        "{logins:?}"
    );
    assert!(!logins.contains_key("a_b"), "never logged in: {logins:?}");
}
traitortrack_tests::on_both!(the_user_list_filters_by_name_and_state);
