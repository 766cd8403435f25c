//! Accounts, run on SQLite and PostgreSQL: admins add and change users, lock
//! and switch them off, reset passwords and two-step login; dispatch areas
//! with their limit, renames and retirement; stations revoked and re-keyed;
//! promotion requests; notifications. Every change leaves an audit row.

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::{
    fresh_url, link, on_both, on_each_backend, send, settings, Backend, TestServer, PASSWORD,
};

/// A password the password rules accept.
const GOOD: &str = "plum-orbit-97-lantern";

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn login_with(s: &TestServer, username: &str, password: &str) -> (StatusCode, Value) {
    send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

async fn token_with(s: &TestServer, username: &str, password: &str) -> String {
    let (status, body) = login_with(s, username, password).await;
    assert_eq!(status, 200, "login of {username}: {body}");
    body["token"].as_str().expect("token").to_string()
}

/// A POST without a body.
async fn post(s: &TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    send(s.http.post(s.url(path)).bearer_auth(token)).await
}

/// The audit actions about `code` (a username, area, station), oldest first.
async fn audit_actions(s: &TestServer, code: &str) -> Vec<String> {
    traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE entity_code = $1 ORDER BY id"
    )
    .bind(code)
    .fetch_all(c)
    .await)
    .expect("audit rows")
}

async fn assert_audited(s: &TestServer, code: &str, actions: &[&str]) {
    let found = audit_actions(s, code).await;
    for action in actions {
        assert!(
            found.iter().any(|a| a == action),
            "no {action} audit row for {code}: {found:?}"
        );
    }
}

/// Admins that are neither switched off nor locked.
async fn active_admins(s: &TestServer) -> i64 {
    traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM users
         WHERE role = 'admin' AND deactivated_at IS NULL AND locked_at IS NULL"
    )
    .fetch_one(c)
    .await)
    .expect("count admins")
}

async fn unread(s: &TestServer, token: &str) -> i64 {
    let (status, body) = s.get(token, "/api/v1/notifications/unread-count").await;
    assert_eq!(status, 200, "{body}");
    body["unread"].as_i64().expect("unread")
}

async fn add_area(s: &TestServer, name: &str) -> i64 {
    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/areas", &json!({"name": name}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("area id")
}

async fn users_are_added_with_and_without_a_password(s: &TestServer) {
    let admin = &s.admin_token;
    let (status, body) = s
        .post_json(
            admin,
            "/api/v1/users",
            &json!({"username": "Mira", "role": "biller", "password": GOOD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "mira", "usernames are normalised");
    assert!(
        body.get("password").is_none(),
        "a given password is not echoed"
    );
    assert_eq!(body["must_change_password"], false);
    let (status, body) = login_with(s, "mira", GOOD).await;
    assert_eq!(status, 200, "{body}");
    let mira = body["token"].as_str().expect("token").to_string();
    let (status, _) = s.get(&mira, "/api/v1/bags").await;
    assert_eq!(status, 200);

    // Without a password, one is made up, shown once, and must be changed.
    let (status, body) = s
        .post_json(
            admin,
            "/api/v1/users",
            &json!({"username": "neel", "role": "biller"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["must_change_password"], true);
    let generated = body["password"].as_str().expect("a made-up password");
    assert_eq!(generated.len(), 16);
    let (status, body) = login_with(s, "neel", generated).await;
    assert_eq!(status, 200, "the made-up password works: {body}");
    let neel = body["token"].as_str().expect("token").to_string();
    let (status, body) = s.get(&neel, "/api/v1/bags").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "password_change_required")
    );
    let (status, me) = s.get(&neel, "/api/v1/me").await;
    assert_eq!(
        (status, me["pending"].as_str()),
        (StatusCode::OK, Some("password_change"))
    );
    let (status, body) = s
        .post_json(
            &neel,
            "/api/v1/auth/password",
            &json!({"current_password": generated, "new_password": GOOD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s.get(&neel, "/api/v1/bags").await;
    assert_eq!(status, 200, "the change lifts the restriction: {body}");

    // Bad input, in plain words.
    for (req, status, expected) in [
        (
            json!({"username": "neel", "role": "biller", "password": GOOD}),
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            json!({"username": "n", "role": "biller"}),
            StatusCode::BAD_REQUEST,
            "bad_username",
        ),
        (
            json!({"username": "dev", "role": "dispatcher"}),
            StatusCode::BAD_REQUEST,
            "area_required",
        ),
        (
            json!({"username": "dev", "role": "dispatcher", "dispatch_area": "nowhere"}),
            StatusCode::BAD_REQUEST,
            "unknown_area",
        ),
        (
            json!({"username": "dev", "role": "boss"}),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            json!({"username": "dev", "role": "biller", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
    ] {
        let (got, body) = s.post_json(admin, "/api/v1/users", &req).await;
        assert_eq!((got, code(&body)), (status, expected), "{req}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    let (status, body) = s.get(admin, "/api/v1/users/dev").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "user_not_found"),
        "nothing of a refused user was written"
    );

    // Reading.
    let (status, list) = s.get(admin, "/api/v1/users").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["admin", "mira", "neel"]);
    let (status, list) = s.get(admin, "/api/v1/users?role=admin").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let (status, list) = s.get(admin, "/api/v1/users?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(list["next_after"], "mira");
    let (status, list) = s.get(admin, "/api/v1/users?after=mira").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["username"], "neel");
    let (status, body) = s.get(admin, "/api/v1/users?role=boss").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_query")
    );
    let (status, one) = s.get(admin, "/api/v1/users/NEEL").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["role"], "biller");
    assert_eq!(one["active"], true);
    assert_eq!(one["locked"], false);
    assert!(one["last_login"].is_string(), "{one}");

    // Only admins manage users.
    let (status, body) = s.get(&mira, "/api/v1/users").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "not_allowed")
    );
    let (status, _) = s
        .post_json(
            &mira,
            "/api/v1/users",
            &json!({"username": "sneaky", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.get(admin, "/api/v1/users/sneaky").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_audited(s, "mira", &["user_create"]).await;
    assert_audited(s, "neel", &["user_create", "login", "password_change"]).await;
}
on_both!(users_are_added_with_and_without_a_password);

async fn a_role_change_ends_sessions_and_tells_the_user(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let ravi = s.login("ravi", None).await;
    let other = s.login("ravi", None).await;

    let (status, body) = s
        .patch_json(admin, "/api/v1/users/ravi", &json!({"role": "biller"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "biller");
    assert_eq!(
        body["dispatch_area"], "north",
        "the area stays unless changed"
    );
    for token in [&ravi, &other] {
        let (status, body) = s.get(token, "/api/v1/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "old logins end: {body}");
    }
    let ravi = s.login("ravi", None).await;
    let (_, me) = s.get(&ravi, "/api/v1/me").await;
    assert_eq!(me["role"], "biller");
    assert_eq!(unread(s, &ravi).await, 1);
    let (status, list) = s.get(&ravi, "/api/v1/notifications").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["kind"], "role_change");
    assert!(list["items"][0]["message"]
        .as_str()
        .expect("message")
        .contains("biller"));

    // Nobody changes their own role.
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/admin", &json!({"role": "biller"}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "own_role"));

    // A dispatcher needs an area that exists.
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/bina", &json!({"role": "dispatcher"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "area_required")
    );
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/bina",
            &json!({"role": "dispatcher", "dispatch_area": "south"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "unknown_area")
    );
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/bina",
            &json!({"role": "dispatcher", "dispatch_area": "NORTH"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["dispatch_area"], "north",
        "the area's own spelling is kept"
    );
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/bina", &json!({"dispatch_area": null}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "area_required")
    );
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/nobody", &json!({"role": "biller"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "user_not_found")
    );

    let rows: Vec<(String, Option<String>, Option<String>)> =
        traitortrack_server::on!(s.db.reader(), |c| sqlx::query_as(
            "SELECT action, before, after FROM audit_log
             WHERE entity_code = 'ravi' AND action = 'role_change'"
        )
        .fetch_all(c)
        .await)
        .expect("audit");
    assert_eq!(rows.len(), 1);
    let before: Value = serde_json::from_str(rows[0].1.as_deref().expect("before")).expect("json");
    let after: Value = serde_json::from_str(rows[0].2.as_deref().expect("after")).expect("json");
    assert_eq!(
        (before["role"].as_str(), after["role"].as_str()),
        (Some("dispatcher"), Some("biller"))
    );
    assert_audited(s, "ravi", &["role_change", "sessions_revoked"]).await;
    assert_audited(s, "bina", &["role_change"]).await;
}
on_both!(a_role_change_ends_sessions_and_tells_the_user);

async fn the_last_admin_stays(s: &TestServer) {
    let admin = &s.admin_token;
    // Alone, the admin can neither demote, lock nor switch off themself.
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/admin", &json!({"role": "biller"}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "own_role"));
    let (status, body) = post(s, admin, "/api/v1/users/admin/lock").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "own_account")
    );
    let (status, body) = post(s, admin, "/api/v1/users/admin/deactivate").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "own_account")
    );
    assert_eq!(active_admins(s).await, 1);

    // Two admins turn on each other at the same moment, again and again, by
    // demotion, lock and switch-off: never both succeed, one admin remains.
    s.add_user("asha", Role::Admin, None).await;
    let demote = json!({"role": "biller"});
    for round in 0..6 {
        let a = s.login("admin", None).await;
        let b = s.login("asha", None).await;
        let ((sa, ba), (sb, bb)) = match round % 3 {
            0 => tokio::join!(
                s.patch_json(&a, "/api/v1/users/asha", &demote),
                s.patch_json(&b, "/api/v1/users/admin", &demote),
            ),
            1 => tokio::join!(
                post(s, &a, "/api/v1/users/asha/lock"),
                post(s, &b, "/api/v1/users/admin/lock"),
            ),
            _ => tokio::join!(
                post(s, &a, "/api/v1/users/asha/deactivate"),
                post(s, &b, "/api/v1/users/admin/deactivate"),
            ),
        };
        let ok = [sa, sb].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(
            ok, 1,
            "round {round}: exactly one wins: {sa} {ba} / {sb} {bb}"
        );
        // The loser is refused by the rule, or, when the winner's change
        // lands while the loser's request is being let in, as no longer
        // logged in, switched off or locked.
        for (status, body) in [(sa, &ba), (sb, &bb)] {
            if status != StatusCode::OK {
                assert!(
                    [
                        "last_admin",
                        "not_allowed",
                        "not_logged_in",
                        "worker_inactive",
                        "worker_locked"
                    ]
                    .contains(&code(body)),
                    "round {round}: {status} {body}"
                );
            }
        }
        assert_eq!(active_admins(s).await, 1, "round {round}");
        // The winner brings the other back for the next round.
        let (winner, loser) = if sa == StatusCode::OK {
            ("admin", "asha")
        } else {
            ("asha", "admin")
        };
        let w = s.login(winner, None).await;
        let (status, body) = match round % 3 {
            0 => {
                s.patch_json(
                    &w,
                    &format!("/api/v1/users/{loser}"),
                    &json!({"role": "admin"}),
                )
                .await
            }
            1 => post(s, &w, &format!("/api/v1/users/{loser}/unlock")).await,
            _ => post(s, &w, &format!("/api/v1/users/{loser}/reactivate")).await,
        };
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(active_admins(s).await, 2);
    }
    let mut actions = audit_actions(s, "asha").await;
    actions.extend(audit_actions(s, "admin").await);
    for action in ["role_change", "lock", "unlock", "deactivate", "reactivate"] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} row: {actions:?}"
        );
    }
}
on_both!(the_last_admin_stays);

async fn areas_have_a_limit(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let mut st = settings(&url);
    st.max_dispatchers_per_area = 2;
    let s = TestServer::start_with(st).await;
    let admin = &s.admin_token;
    add_area(&s, "north").await;
    let dispatcher = |name: &str, area: &str| json!({"username": name, "role": "dispatcher", "dispatch_area": area, "password": GOOD});
    for name in ["d1", "d2"] {
        let (status, body) = s
            .post_json(admin, "/api/v1/users", &dispatcher(name, "north"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = s
        .post_json(admin, "/api/v1/users", &dispatcher("d3", "North"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "area_full"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("north") && message.contains('2'),
        "{message}"
    );

    // A biller made a dispatcher counts too.
    s.add_user("bina", Role::Biller, None).await;
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/bina",
            &json!({"role": "dispatcher", "dispatch_area": "north"}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "area_full"));
    let (_, bina) = s.get(admin, "/api/v1/users/bina").await;
    assert_eq!(bina["role"], "biller", "a refused change writes nothing");

    // A switched-off dispatcher leaves room, and needs room to come back.
    let (status, body) = post(&s, admin, "/api/v1/users/d1/deactivate").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .post_json(admin, "/api/v1/users", &dispatcher("d3", "north"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(&s, admin, "/api/v1/users/d1/reactivate").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "area_full"));

    // Many at once: the limit holds.
    add_area(&s, "east").await;
    let tries: Vec<_> = (0..6)
        .map(|i| {
            let req = s
                .http
                .post(s.url("/api/v1/users"))
                .bearer_auth(&s.admin_token)
                .json(&dispatcher(&format!("e{i}"), "east"));
            tokio::spawn(send(req))
        })
        .collect();
    let mut answers = Vec::new();
    for t in tries {
        answers.push(t.await.expect("request task"));
    }
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2, "{answers:?}");
    assert!(answers
        .iter()
        .all(|(status, body)| *status == StatusCode::CREATED || code(body) == "area_full"));
    let (_, areas) = s.get(admin, "/api/v1/areas").await;
    let east = areas["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["name"] == "east")
        .expect("east")
        .clone();
    assert_eq!(east["dispatchers"], 2);
}
on_each_backend!(areas_have_a_limit);

async fn areas_are_renamed_and_retired(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    let result = s.event(&key, link("ravi", "SB00001", "CHILD0001")).await;
    assert_eq!(result["status"], "applied", "{result}");

    let ravi = s.login("ravi", None).await;
    let (status, areas) = s.get(&ravi, "/api/v1/areas").await;
    assert_eq!(status, 200, "any user lists areas: {areas}");
    let north = areas["items"][0].clone();
    assert_eq!(
        (north["name"].as_str(), north["dispatchers"].as_i64()),
        (Some("north"), Some(1))
    );
    let id = north["id"].as_i64().expect("id");

    let (status, body) = s
        .post_json(admin, "/api/v1/areas", &json!({"name": " NORTH "}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "area_exists"));
    let (status, body) = s
        .post_json(admin, "/api/v1/areas", &json!({"name": ""}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_area"));
    let (status, body) = s
        .post_json(admin, "/api/v1/areas", &json!({"name": "x".repeat(65)}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_area"));
    let (status, body) = s
        .post_json(admin, "/api/v1/areas", &json!({"name": "a\u{7}b"}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_area"));
    let (status, _) = s
        .post_json(&ravi, "/api/v1/areas", &json!({"name": "mine"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A rename carries users and bags along.
    let (status, body) = s
        .patch_json(
            admin,
            &format!("/api/v1/areas/{id}"),
            &json!({"name": "North Dock"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "North Dock");
    let (_, user) = s.get(admin, "/api/v1/users/ravi").await;
    assert_eq!(user["dispatch_area"], "North Dock");
    for code in ["SB00001", "CHILD0001"] {
        let (_, bag) = s.get(admin, &format!("/api/v1/bags/{code}")).await;
        assert_eq!(bag["dispatch_area"], "North Dock", "{bag}");
    }
    let result = s.event(&key, link("ravi", "SB00001", "CHILD0002")).await;
    assert_eq!(
        result["status"], "applied",
        "ravi still works there: {result}"
    );
    let south = add_area(s, "south").await;
    let (status, body) = s
        .patch_json(
            admin,
            &format!("/api/v1/areas/{south}"),
            &json!({"name": "north dock"}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "area_exists"));
    let (status, body) = s
        .patch_json(admin, "/api/v1/areas/abc", &json!({"name": "x"}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_id"));
    let (status, body) = post(s, admin, "/api/v1/areas/999999/retire").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "area_not_found")
    );

    // Retiring waits until no active dispatcher is left in it.
    let (status, body) = post(s, admin, &format!("/api/v1/areas/{id}/retire")).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "area_in_use"));
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("1 active dispatcher"));
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/ravi",
            &json!({"dispatch_area": "south"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(s, admin, &format!("/api/v1/areas/{id}/retire")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["retired_at"].is_string());
    let (status, body) = post(s, admin, &format!("/api/v1/areas/{id}/retire")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "area_retired")
    );

    // A retired area keeps its bags and takes no new users.
    let (_, bag) = s.get(admin, "/api/v1/bags/SB00001").await;
    assert_eq!(bag["dispatch_area"], "North Dock");
    let (status, body) = s
        .post_json(
            admin,
            "/api/v1/users",
            &json!({"username": "newbie", "role": "dispatcher", "dispatch_area": "North Dock"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "area_retired")
    );
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/ravi",
            &json!({"dispatch_area": "north dock"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "area_retired")
    );

    assert_audited(s, "North Dock", &["area_rename", "area_retire"]).await;
    assert_audited(s, "south", &["area_create"]).await;
    assert_audited(s, "ravi", &["area_change"]).await;
}
on_both!(areas_are_renamed_and_retired);

async fn stations_are_revoked_and_rekeyed(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station("dock-1").await;
    let at_station = s.login("ravi", Some(&key)).await;
    let (status, list) = s.get(admin, "/api/v1/stations").await;
    assert_eq!(status, 200, "{list}");
    let station = list["items"][0].clone();
    assert_eq!(station["name"], "dock-1");
    assert!(station["revoked_at"].is_null());
    let id = station["id"].as_i64().expect("id");
    let settings_with = |k: &str| {
        send(
            s.http
                .get(s.url("/api/v1/station/settings"))
                .header("x-station-key", k),
        )
    };
    assert_eq!(settings_with(&key).await.0, 200);

    let (status, body) = post(s, admin, &format!("/api/v1/stations/{id}/revoke")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(settings_with(&key).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .events(&key, &[link("ravi", "SB00001", "CHILD0001")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.get(&at_station, "/api/v1/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "logins made at the station end"
    );
    let (status, body) = post(s, admin, &format!("/api/v1/stations/{id}/revoke")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "station_revoked")
    );
    let (_, list) = s.get(admin, "/api/v1/stations").await;
    assert!(list["items"][0]["revoked_at"].is_string());

    let (status, body) = post(s, admin, &format!("/api/v1/stations/{id}/key")).await;
    assert_eq!(status, 200, "{body}");
    let new_key = body["key"].as_str().expect("key").to_string();
    assert_ne!(new_key, key);
    assert_eq!(settings_with(&new_key).await.0, 200);
    assert_eq!(settings_with(&key).await.0, StatusCode::UNAUTHORIZED);
    let result = s
        .event(&new_key, link("ravi", "SB00001", "CHILD0001"))
        .await;
    assert_eq!(result["status"], "applied", "{result}");
    let (_, list) = s.get(admin, "/api/v1/stations").await;
    assert!(list["items"][0]["revoked_at"].is_null());

    let (status, body) = post(s, admin, "/api/v1/stations/999999/key").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "station_not_found")
    );
    let ravi = s.login("ravi", None).await;
    let (status, _) = s.get(&ravi, "/api/v1/stations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(s, &ravi, &format!("/api/v1/stations/{id}/revoke")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(settings_with(&new_key).await.0, 200);

    assert_audited(
        s,
        "dock-1",
        &["station_register", "station_revoke", "station_key"],
    )
    .await;
}
on_both!(stations_are_revoked_and_rekeyed);

async fn promotions_are_asked_for_and_decided(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("bina", Role::Biller, None).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("kiran", Role::Biller, None).await;
    s.add_user("asha", Role::Admin, None).await;
    let bina = s.login("bina", None).await;
    let ravi = s.login("ravi", None).await;

    for (req, expected) in [
        (json!({"role": "biller", "reason": "x"}), "same_role"),
        (json!({"role": "admin", "reason": "   "}), "bad_reason"),
        (
            json!({"role": "admin", "reason": "x".repeat(501)}),
            "bad_reason",
        ),
        (json!({"role": "king", "reason": "x"}), "bad_json"),
    ] {
        let (status, body) = s.post_json(&bina, "/api/v1/promotions", &req).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{req}"
        );
    }
    let (status, asked) = s
        .post_json(
            &bina,
            "/api/v1/promotions",
            &json!({"role": "admin", "reason": "I run the night shift"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    assert_eq!(asked["status"], "pending");
    let bina_request = asked["id"].as_i64().expect("id");
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/promotions",
            &json!({"role": "dispatcher", "reason": "or this"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "request_pending")
    );
    assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty());

    // Who sees what.
    let (_, own) = s.get(&bina, "/api/v1/promotions").await;
    assert_eq!(own["items"].as_array().expect("items").len(), 1);
    let (_, none) = s.get(&ravi, "/api/v1/promotions").await;
    assert_eq!(none["items"].as_array().expect("items").len(), 0, "{none}");
    let (status, all) = s.get(admin, "/api/v1/promotions?status=pending").await;
    assert_eq!(status, 200);
    assert_eq!(all["items"][0]["username"], "bina");
    let (status, body) = s.get(admin, "/api/v1/promotions?status=maybe").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_status")
    );
    let (status, _) = post(
        s,
        &bina,
        &format!("/api/v1/promotions/{bina_request}/approve"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins decide");

    // An admin cannot decide their own request.
    let asha = s.login("asha", None).await;
    let (status, asked) = s
        .post_json(
            &asha,
            "/api/v1/promotions",
            &json!({"role": "biller", "reason": "less work"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let asha_request = asked["id"].as_i64().expect("id");
    let (status, body) = post(
        s,
        &asha,
        &format!("/api/v1/promotions/{asha_request}/approve"),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "own_request")
    );

    // Approve: the role changes, the old login ends, the user is told once.
    let (status, body) = s
        .post_json(
            admin,
            &format!("/api/v1/promotions/{bina_request}/approve"),
            &json!({"note": "welcome"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["decided_by"].as_str()),
        (Some("approved"), Some("admin"))
    );
    let (status, _) = s.get(&bina, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bina = s.login("bina", None).await;
    let (_, me) = s.get(&bina, "/api/v1/me").await;
    assert_eq!(me["role"], "admin");
    assert_eq!(unread(s, &bina).await, 1);
    let (_, list) = s.get(&bina, "/api/v1/notifications").await;
    let note = list["items"][0].clone();
    assert_eq!(note["kind"], "promotion_approved");
    assert!(note["message"]
        .as_str()
        .expect("message")
        .contains("welcome"));
    let note_id = note["id"].as_i64().expect("id");
    let (status, body) = post(s, &bina, &format!("/api/v1/notifications/{note_id}/read")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(unread(s, &bina).await, 0);
    let (status, body) = post(
        s,
        admin,
        &format!("/api/v1/promotions/{bina_request}/approve"),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_decided")
    );
    let (status, body) = post(s, admin, "/api/v1/promotions/999999/reject").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "request_not_found")
    );

    // Someone else's notification is not there for you.
    let (status, body) = post(s, &ravi, &format!("/api/v1/notifications/{note_id}/read")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "notification_not_found")
    );
    let (status, body) = post(s, &ravi, "/api/v1/notifications/abc/read").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_id"));

    // Reject: the role stays, the user is told.
    let (status, asked) = s
        .post_json(
            &ravi,
            "/api/v1/promotions",
            &json!({"role": "biller", "reason": "bad knee"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let ravi_request = asked["id"].as_i64().expect("id");
    let (status, body) = s
        .post_json(
            admin,
            &format!("/api/v1/promotions/{ravi_request}/reject"),
            &json!({"note": "not this month"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    let (status, me) = s.get(&ravi, "/api/v1/me").await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("dispatcher"))
    );
    assert_eq!(unread(s, &ravi).await, 1);
    let (_, list) = s.get(&ravi, "/api/v1/notifications").await;
    assert_eq!(list["items"][0]["kind"], "promotion_rejected");
    assert!(list["items"][0]["message"]
        .as_str()
        .expect("message")
        .contains("not this month"));
    let (status, body) = post(s, &ravi, "/api/v1/notifications/read-all").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["marked"], 1);
    assert_eq!(unread(s, &ravi).await, 0);
    // Now a second request may be made.
    let (status, _) = s
        .post_json(
            &ravi,
            "/api/v1/promotions",
            &json!({"role": "biller", "reason": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Approving a new dispatcher follows the area rules; a refusal writes nothing.
    let kiran = s.login("kiran", None).await;
    let (_, asked) = s
        .post_json(
            &kiran,
            "/api/v1/promotions",
            &json!({"role": "dispatcher", "reason": "docks"}),
        )
        .await;
    let kiran_request = asked["id"].as_i64().expect("id");
    let (status, body) = post(
        s,
        admin,
        &format!("/api/v1/promotions/{kiran_request}/approve"),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "area_required")
    );
    let (_, own) = s.get(&kiran, "/api/v1/promotions").await;
    assert_eq!(own["items"][0]["status"], "pending");
    assert_eq!(unread(s, &kiran).await, 0);
    let (status, body) = s
        .post_json(
            admin,
            &format!("/api/v1/promotions/{kiran_request}/approve"),
            &json!({"dispatch_area": "north"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, user) = s.get(admin, "/api/v1/users/kiran").await;
    assert_eq!(
        (user["role"].as_str(), user["dispatch_area"].as_str()),
        (Some("dispatcher"), Some("north"))
    );

    // Admins hear of new requests.
    assert!(unread(s, admin).await >= 3);

    assert_audited(
        s,
        "bina",
        &["promotion_request", "role_change", "promotion_approve"],
    )
    .await;
    assert_audited(s, "ravi", &["promotion_request", "promotion_reject"]).await;
}
on_both!(promotions_are_asked_for_and_decided);

async fn accounts_are_locked_switched_off_and_reset(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let ravi = s.login("ravi", None).await;

    // Lock: logins end and are refused until unlocked.
    let (status, body) = post(s, admin, "/api/v1/users/ravi/lock").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["locked"], true);
    let (status, _) = s.get(&ravi, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "worker_locked")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/lock").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_locked")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/unlock").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["locked"], false);
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(status, 200, "{body}");

    // Unlock also lifts the lockout after too many wrong passwords.
    for _ in 0..s.settings.lockout_after {
        let (status, _) = login_with(s, "ravi", "wrong-password-000").await;
        assert!(status.is_client_error());
    }
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "account_locked")
    );
    let (_, user) = s.get(admin, "/api/v1/users/ravi").await;
    assert!(user["login_locked_until"].is_string(), "{user}");
    let (status, _) = post(s, admin, "/api/v1/users/ravi/unlock").await;
    assert_eq!(status, 200);
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(status, 200, "{body}");

    // Switch off and on.
    let ravi = s.login("ravi", None).await;
    let (status, body) = post(s, admin, "/api/v1/users/ravi/deactivate").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let (status, _) = s.get(&ravi, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "worker_inactive")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/deactivate").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_inactive")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/reactivate").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(s, admin, "/api/v1/users/ravi/reactivate").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_active")
    );

    // Log out everywhere.
    let one = s.login("ravi", None).await;
    let two = s.login("ravi", None).await;
    let (status, body) = post(s, admin, "/api/v1/users/ravi/logout-everywhere").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions_ended"], 2);
    for token in [&one, &two] {
        assert_eq!(s.get(token, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    }

    // Password reset: made up, shown once, to be changed at login.
    let (status, body) = s
        .post_json(
            admin,
            "/api/v1/users/ravi/password",
            &json!({"password": "short"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "weak_password")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/password").await;
    assert_eq!(status, 200, "{body}");
    let generated = body["password"].as_str().expect("password").to_string();
    assert_eq!(
        login_with(s, "ravi", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = login_with(s, "ravi", &generated).await;
    assert_eq!(status, 200, "{body}");
    let ravi = body["token"].as_str().expect("token").to_string();
    let (status, body) = s.get(&ravi, "/api/v1/bags").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "password_change_required")
    );
    let (status, body) = s
        .post_json(
            admin,
            "/api/v1/users/ravi/password",
            &json!({"password": GOOD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("password").is_none(),
        "a given password is not echoed"
    );
    let (status, body) = s
        .post_json(
            &token_with(s, "ravi", GOOD).await,
            "/api/v1/auth/password",
            &json!({"current_password": GOOD, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Two-step login reset by an admin.
    let ravi = s.login("ravi", None).await;
    let (status, body) = post(s, admin, "/api/v1/users/ravi/totp/disable").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "two_step_off")
    );
    let (status, enrol) = s
        .post_json(&ravi, "/api/v1/auth/totp/enrol", &json!({}))
        .await;
    assert_eq!(status, 200, "{enrol}");
    let secret = enrol["secret"].as_str().expect("secret");
    let code_now = traitortrack_server::totp::code_at(secret, s.clock.now()).expect("code");
    let (status, body) = s
        .post_json(
            &ravi,
            "/api/v1/auth/totp/confirm",
            &json!({"code": code_now}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "totp_required")
    );
    let (status, body) = post(s, admin, "/api/v1/users/ravi/totp/disable").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["two_step"], false);
    let (status, body) = login_with(s, "ravi", PASSWORD).await;
    assert_eq!(status, 200, "no code needed any more: {body}");
    let (status, body) = post(s, admin, "/api/v1/users/admin/totp/disable").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "own_account")
    );

    // Not for anyone but admins.
    let ravi = s.login("ravi", None).await;
    for path in [
        "/api/v1/users/admin/lock",
        "/api/v1/users/admin/deactivate",
        "/api/v1/users/admin/password",
        "/api/v1/users/admin/logout-everywhere",
    ] {
        let (status, _) = post(s, &ravi, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        s.get(admin, "/api/v1/me").await.0,
        200,
        "the admin is untouched"
    );
    let (status, body) = post(s, admin, "/api/v1/users/nobody/lock").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "user_not_found")
    );

    assert_audited(
        s,
        "ravi",
        &[
            "lock",
            "unlock",
            "deactivate",
            "reactivate",
            "sessions_revoked",
            "password_reset",
            "totp_disable",
        ],
    )
    .await;
}
on_both!(accounts_are_locked_switched_off_and_reset);

/// The status and error code of `GET /api/v1/me` with `token`.
async fn me_status(s: &TestServer, token: &str) -> (StatusCode, String) {
    let (status, body) = s.get(token, "/api/v1/me").await;
    (status, code(&body).to_string())
}

/// Each server process checks logins and station keys from a cache of its
/// own: a login or key used just before a change must still follow the
/// change at its very next request.
async fn a_change_applies_to_the_next_request_of_a_login_in_use(s: &TestServer) {
    let admin = &s.admin_token;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("mona", Role::Dispatcher, Some("north")).await;
    let south = add_area(s, "south").await;
    let ended = (StatusCode::UNAUTHORIZED, "not_logged_in".to_string());

    // Locked.
    let ravi = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    let (status, body) = post(s, admin, "/api/v1/users/ravi/lock").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me_status(s, &ravi).await, ended, "locked");
    let (status, body) = post(s, admin, "/api/v1/users/ravi/unlock").await;
    assert_eq!(status, 200, "{body}");

    // Logged out, and logged out everywhere.
    let ravi = s.login("ravi", None).await;
    let elsewhere = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    assert_eq!(me_status(s, &elsewhere).await.0, 200);
    let (status, body) = post(s, &ravi, "/api/v1/auth/logout").await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(me_status(s, &ravi).await, ended, "logged out");
    assert_eq!(
        me_status(s, &elsewhere).await.0,
        200,
        "the other login stays"
    );
    let ravi = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    let (status, body) = post(s, &ravi, "/api/v1/auth/logout-everywhere").await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        me_status(s, &elsewhere).await,
        ended,
        "logged out everywhere"
    );

    // Ended by an admin.
    let ravi = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    let (status, body) = post(s, admin, "/api/v1/users/ravi/logout-everywhere").await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(me_status(s, &ravi).await, ended, "ended by an admin");

    // A new area shows at once; a new role ends the login.
    let mona = s.login("mona", None).await;
    let (_, me) = s.get(&mona, "/api/v1/me").await;
    assert_eq!(me["dispatch_area"], "north");
    let (status, body) = s
        .patch_json(
            admin,
            "/api/v1/users/mona",
            &json!({"dispatch_area": "south"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, me) = s.get(&mona, "/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["dispatch_area"], "south", "the new area, at once");
    let (status, body) = s
        .patch_json(admin, "/api/v1/users/mona", &json!({"role": "biller"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me_status(s, &mona).await, ended, "a new role");
    let mona = s.login("mona", None).await;
    let (_, me) = s.get(&mona, "/api/v1/me").await;
    assert_eq!(me["role"], "biller");

    // A renamed area shows at once.
    let (status, body) = s
        .patch_json(
            admin,
            &format!("/api/v1/areas/{south}"),
            &json!({"name": "east"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, me) = s.get(&mona, "/api/v1/me").await;
    assert_eq!(me["dispatch_area"], "east", "the area's new name, at once");

    // A password reset, and a switch-off.
    let (status, body) = s
        .post_json(admin, "/api/v1/users/mona/password", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me_status(s, &mona).await, ended, "a password reset");
    let ravi = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    let (status, body) = post(s, admin, "/api/v1/users/ravi/deactivate").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me_status(s, &ravi).await, ended, "switched off");

    // A revoked station, and its new key.
    let key = s.station("dock-1").await;
    let settings_with = |k: &str| {
        send(
            s.http
                .get(s.url("/api/v1/station/settings"))
                .header("x-station-key", k),
        )
    };
    assert_eq!(settings_with(&key).await.0, 200);
    let (_, list) = s.get(admin, "/api/v1/stations").await;
    let id = list["items"][0]["id"].as_i64().expect("id");
    let (status, body) = post(s, admin, &format!("/api/v1/stations/{id}/revoke")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        settings_with(&key).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    let (status, body) = post(s, admin, &format!("/api/v1/stations/{id}/key")).await;
    assert_eq!(status, 200, "{body}");
    let new_key = body["key"].as_str().expect("key").to_string();
    assert_eq!(settings_with(&new_key).await.0, 200);
    assert_eq!(
        settings_with(&key).await.0,
        StatusCode::UNAUTHORIZED,
        "the old key"
    );

    // Idle too long, by the server's clock, with the copy in the cache (last:
    // every other login idles too).
    let (status, body) = post(s, admin, "/api/v1/users/ravi/reactivate").await;
    assert_eq!(status, 200, "{body}");
    let ravi = s.login("ravi", None).await;
    assert_eq!(me_status(s, &ravi).await.0, 200);
    s.clock
        .advance(s.settings.session_idle + time::Duration::seconds(1));
    let (status, body) = s.get(&ravi, "/api/v1/me").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "session_idle"),
        "{body}"
    );
}
on_both!(a_change_applies_to_the_next_request_of_a_login_in_use);
