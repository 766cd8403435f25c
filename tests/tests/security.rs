//! Security end to end: the role matrix over every route, the OpenAPI
//! document, brute force and lockout (also across two server processes),
//! two-step login, CSRF on console sessions, session timeouts, the browser
//! headers, and built-in HTTPS.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_server::api::{route_docs, RouteDoc};
use traitortrack_tests::process::ServerProcess;
use traitortrack_tests::{
    fresh_url, link, on_each_backend, production_settings, send, server_binary, settings, Backend,
    TestServer, PASSWORD,
};

/// Who calls a route in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Station,
    Dispatcher,
    Biller,
    Admin,
}

const EVERYONE: &[Who] = &[
    Who::Anonymous,
    Who::Station,
    Who::Dispatcher,
    Who::Biller,
    Who::Admin,
];

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum May {
    Anyone,
    StationOnly,
    AnyUser,
    Billing,
    AdminOnly,
    /// A console page for any logged-in user; without a login, a 303 to the
    /// console's login page (not a 401).
    ConsoleUser,
    /// A console page for admins; others logged in get 403, nobody a 303.
    ConsoleAdmin,
    /// A console page for billers and admins; dispatchers get 403.
    ConsoleBilling,
}

/// The expected access of every route, written by hand: a route the server
/// answers that is missing here fails the test, and so does an entry here
/// for a route the server does not have.
const MATRIX: &[(&str, &str, May)] = &[
    ("GET", "/healthz", May::Anyone),
    ("GET", "/readyz", May::Anyone),
    ("GET", "/api/v1/openapi.json", May::Anyone),
    ("POST", "/api/v1/auth/login", May::Anyone),
    ("POST", "/api/v1/auth/session", May::Anyone),
    ("POST", "/api/v1/auth/logout", May::AnyUser),
    ("POST", "/api/v1/auth/logout-everywhere", May::AnyUser),
    ("POST", "/api/v1/auth/password", May::AnyUser),
    ("POST", "/api/v1/auth/totp/enrol", May::AnyUser),
    ("POST", "/api/v1/auth/totp/confirm", May::AnyUser),
    ("POST", "/api/v1/auth/totp/disable", May::AnyUser),
    ("GET", "/api/v1/me", May::AnyUser),
    ("GET", "/api/v1/station/settings", May::StationOnly),
    ("POST", "/api/v1/events", May::StationOnly),
    ("GET", "/api/v1/bags", May::AnyUser),
    ("GET", "/api/v1/bags/{code}", May::AnyUser),
    ("GET", "/api/v1/bags/{code}/history", May::AnyUser),
    ("POST", "/api/v1/bills", May::Billing),
    ("GET", "/api/v1/bills", May::Billing),
    ("GET", "/api/v1/bills/{code}", May::Billing),
    ("PATCH", "/api/v1/bills/{code}", May::Billing),
    ("POST", "/api/v1/bills/{code}/close", May::Billing),
    ("POST", "/api/v1/bills/{code}/reopen", May::AdminOnly),
    ("GET", "/api/v1/bills/summary", May::Billing),
    ("GET", "/api/v1/stats", May::AnyUser),
    ("POST", "/api/v1/stations", May::AdminOnly),
    ("GET", "/api/v1/stations", May::AdminOnly),
    ("POST", "/api/v1/stations/{id}/revoke", May::AdminOnly),
    ("POST", "/api/v1/stations/{id}/key", May::AdminOnly),
    ("GET", "/api/v1/users", May::AdminOnly),
    ("POST", "/api/v1/users", May::AdminOnly),
    ("GET", "/api/v1/users/{username}", May::AdminOnly),
    ("PATCH", "/api/v1/users/{username}", May::AdminOnly),
    ("POST", "/api/v1/users/{username}/lock", May::AdminOnly),
    ("POST", "/api/v1/users/{username}/unlock", May::AdminOnly),
    ("POST", "/api/v1/users/{username}/password", May::AdminOnly),
    (
        "POST",
        "/api/v1/users/{username}/deactivate",
        May::AdminOnly,
    ),
    (
        "POST",
        "/api/v1/users/{username}/reactivate",
        May::AdminOnly,
    ),
    (
        "POST",
        "/api/v1/users/{username}/logout-everywhere",
        May::AdminOnly,
    ),
    (
        "POST",
        "/api/v1/users/{username}/totp/disable",
        May::AdminOnly,
    ),
    ("PUT", "/api/v1/users/{username}/email", May::AdminOnly),
    ("GET", "/api/v1/areas", May::AnyUser),
    ("POST", "/api/v1/areas", May::AdminOnly),
    ("PATCH", "/api/v1/areas/{id}", May::AdminOnly),
    ("POST", "/api/v1/areas/{id}/retire", May::AdminOnly),
    ("POST", "/api/v1/promotions", May::AnyUser),
    ("GET", "/api/v1/promotions", May::AnyUser),
    ("POST", "/api/v1/promotions/{id}/approve", May::AdminOnly),
    ("POST", "/api/v1/promotions/{id}/reject", May::AdminOnly),
    ("GET", "/api/v1/notifications", May::AnyUser),
    ("GET", "/api/v1/notifications/unread-count", May::AnyUser),
    ("POST", "/api/v1/notifications/{id}/read", May::AnyUser),
    ("POST", "/api/v1/notifications/read-all", May::AnyUser),
    ("GET", "/api/v1/audit", May::AdminOnly),
    ("POST", "/api/v1/audit/verify", May::AdminOnly),
    // As bags.csv (see `concrete`); bills.csv is for billers too (tests/exports.rs).
    ("GET", "/api/v1/exports/{file}", May::AdminOnly),
    ("GET", "/api/v1/health/details", May::AdminOnly),
    ("POST", "/api/v1/imports", May::AdminOnly),
    ("GET", "/api/v1/imports", May::AdminOnly),
    ("GET", "/api/v1/imports/{id}", May::AdminOnly),
    ("GET", "/api/v1/imports/{id}/result.xlsx", May::AdminOnly),
    ("GET", "/api/v1/imports/{id}/result.csv", May::AdminOnly),
    ("GET", "/console", May::Anyone),
    ("GET", "/console/", May::ConsoleUser),
    ("GET", "/console/login", May::Anyone),
    ("POST", "/console/login", May::Anyone),
    ("POST", "/console/logout", May::ConsoleUser),
    ("GET", "/console/password", May::ConsoleUser),
    ("POST", "/console/password", May::ConsoleUser),
    ("GET", "/console/two-step", May::ConsoleUser),
    ("POST", "/console/two-step", May::ConsoleUser),
    ("GET", "/console/stations", May::ConsoleAdmin),
    ("GET", "/console/bills", May::ConsoleBilling),
    ("POST", "/console/bills", May::ConsoleBilling),
    ("GET", "/console/bills/summary", May::ConsoleBilling),
    ("GET", "/console/bills/{code}", May::ConsoleBilling),
    ("GET", "/console/bills/{code}/sheet", May::ConsoleBilling),
    ("POST", "/console/bills/{code}/parents", May::ConsoleBilling),
    (
        "POST",
        "/console/bills/{code}/parents/remove",
        May::ConsoleBilling,
    ),
    ("POST", "/console/bills/{code}/details", May::ConsoleBilling),
    ("POST", "/console/bills/{code}/close", May::ConsoleBilling),
    ("POST", "/console/bills/{code}/reopen", May::ConsoleAdmin),
    ("GET", "/console/users", May::ConsoleAdmin),
    ("POST", "/console/users", May::ConsoleAdmin),
    ("GET", "/console/users/{username}", May::ConsoleAdmin),
    (
        "POST",
        "/console/users/{username}/change",
        May::ConsoleAdmin,
    ),
    ("POST", "/console/users/{username}/lock", May::ConsoleAdmin),
    (
        "POST",
        "/console/users/{username}/unlock",
        May::ConsoleAdmin,
    ),
    (
        "POST",
        "/console/users/{username}/password",
        May::ConsoleAdmin,
    ),
    (
        "POST",
        "/console/users/{username}/deactivate",
        May::ConsoleAdmin,
    ),
    (
        "POST",
        "/console/users/{username}/reactivate",
        May::ConsoleAdmin,
    ),
    (
        "POST",
        "/console/users/{username}/logout-everywhere",
        May::ConsoleAdmin,
    ),
    (
        "POST",
        "/console/users/{username}/two-step-off",
        May::ConsoleAdmin,
    ),
    ("GET", "/console/promotions", May::ConsoleAdmin),
    ("POST", "/console/promotions", May::ConsoleUser),
    (
        "POST",
        "/console/promotions/{id}/approve",
        May::ConsoleAdmin,
    ),
    ("POST", "/console/promotions/{id}/reject", May::ConsoleAdmin),
    ("GET", "/console/notifications", May::ConsoleUser),
    ("POST", "/console/notifications/{id}/read", May::ConsoleUser),
    ("POST", "/console/notifications/read-all", May::ConsoleUser),
    ("GET", "/console/audit", May::ConsoleAdmin),
    ("POST", "/console/audit/verify", May::ConsoleAdmin),
    ("POST", "/console/stations", May::ConsoleAdmin),
    ("GET", "/console/stations/key", May::ConsoleAdmin),
    ("POST", "/console/stations/{id}/revoke", May::ConsoleAdmin),
    ("POST", "/console/stations/{id}/key", May::ConsoleAdmin),
    ("GET", "/console/bags", May::ConsoleUser),
    ("GET", "/console/bags/{code}", May::ConsoleUser),
    ("POST", "/console/bags/{code}/unlink", May::ConsoleAdmin),
    ("GET", "/console/imports", May::ConsoleAdmin),
    ("GET", "/console/imports/{id}", May::ConsoleAdmin),
    ("GET", "/console/health", May::ConsoleAdmin),
    ("GET", "/console/live.json", May::AnyUser),
    ("GET", "/console/static/console.css", May::Anyone),
    ("GET", "/console/static/console.js", May::Anyone),
];

/// A console page: the session travels in the cookie, forms carry the token.
fn is_console(may: May) -> bool {
    matches!(
        may,
        May::ConsoleUser | May::ConsoleAdmin | May::ConsoleBilling
    )
}

fn allowed(may: May, who: Who) -> bool {
    match may {
        May::Anyone => true,
        May::StationOnly => who == Who::Station,
        May::AnyUser | May::ConsoleUser => !matches!(who, Who::Anonymous | Who::Station),
        May::Billing | May::ConsoleBilling => matches!(who, Who::Biller | Who::Admin),
        May::AdminOnly | May::ConsoleAdmin => who == Who::Admin,
    }
}

/// A concrete address for a route: parameters get values that name nothing
/// the test depends on.
fn concrete(path: &str) -> String {
    // An import's console page: the import the setup makes, the first.
    if path == "/console/imports/{id}" {
        return "/console/imports/1".into();
    }
    path.replace("{code}", "SB00001")
        .replace("{username}", "victim")
        .replace("{id}", "999999")
        .replace("{file}", "bags.csv")
}

/// A console login: the cookie pair (`tt_session=…`) and the CSRF token.
async fn console_session(s: &TestServer, username: &str) -> (String, String) {
    let resp = s
        .http
        .post(s.url("/api/v1/auth/session"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("console login");
    assert_eq!(resp.status(), StatusCode::OK, "console login of {username}");
    let pair = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    (pair, body["csrf_token"].as_str().expect("csrf").to_string())
}

/// One call of the matrix: the status, the body, and where a redirect leads.
/// API routes get a bearer token and a JSON body; console pages the cookie,
/// and console forms the CSRF token as a form field.
async fn call(
    s: &TestServer,
    http: &reqwest::Client,
    route: &RouteDoc,
    may: May,
    who: Who,
    station_key: &str,
) -> (StatusCode, Value, String) {
    let url = s.url(&concrete(route.path));
    let mut req = http.request(route.method.clone(), &url);
    let user = match who {
        Who::Anonymous => None,
        Who::Station => {
            req = req.header("x-station-key", station_key);
            None
        }
        Who::Dispatcher => Some("dora"),
        Who::Biller => Some("bina"),
        Who::Admin => Some("admin"),
    };
    let mut csrf = None;
    if let Some(user) = user {
        if is_console(may) {
            let (pair, token) = console_session(s, user).await;
            req = req.header("cookie", pair);
            csrf = Some(token);
        } else {
            req = req.bearer_auth(s.login(user, None).await);
        }
    }
    if route.method != reqwest::Method::GET {
        req = match csrf {
            Some(token) => req.form(&[("csrf", token)]),
            None if is_console(may) => req.form(&[("csrf", "")]),
            None => req.json(&json!({})),
        };
    }
    let resp = req.send().await.expect("request reached the server");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, location)
}

async fn role_matrix_covers_every_route(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let mut config = settings(&url);
    config.import_dir =
        std::env::temp_dir().join(format!("tt-matrix-imports-{}", uuid::Uuid::now_v7()));
    let import_dir = config.import_dir.clone();
    let s = TestServer::start_with(config).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    s.add_user("victim", Role::Dispatcher, Some("north")).await;
    let station_key = s.station("matrix").await;
    // The import of `/console/imports/{id}` (see `concrete`).
    let (status, body) = send(
        s.http
            .post(s.url("/api/v1/imports?kind=bags&file_name=matrix.csv"))
            .bearer_auth(&s.admin_token)
            .body("code,kind,parent code\nSB00009,parent,\n"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], 1, "{body}");
    // A bill for the pages of one bill (`{code}` is SB00001).
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/bills",
            &json!({"code": "SB00001", "capacity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The bag the `{code}` routes name: SB00001 of dora's area, with a child.
    s.login("victim", Some(&station_key)).await;
    let result = s
        .event(&station_key, link("victim", "SB00001", "C0001"))
        .await;
    assert_eq!(result["status"], "applied", "{result}");

    let routes = route_docs();
    let served: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let listed: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let unlisted: Vec<_> = served.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "routes without a matrix entry: {unlisted:?}"
    );
    let gone: Vec<_> = listed.difference(&served).collect();
    assert!(
        gone.is_empty(),
        "matrix entries for routes the server lacks: {gone:?}"
    );

    // Redirects are answers here, not something to follow.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    for route in &routes {
        let (_, _, may) = MATRIX
            .iter()
            .find(|(m, p, _)| *m == route.method.as_str() && *p == route.path)
            .expect("listed above");
        for &who in EVERYONE {
            let (status, body, location) = call(&s, &http, route, *may, who, &station_key).await;
            let what = format!(
                "{} {} as {who:?}: {status} {location} {body}",
                route.method, route.path
            );
            assert!(status.as_u16() < 500, "{what}");
            if allowed(*may, who) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "should be let in: {what}"
                );
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                assert_ne!(
                    body["error"]["code"], "not_found",
                    "route not served: {what}"
                );
                if is_console(*may) {
                    assert_ne!(status, StatusCode::NOT_FOUND, "route not served: {what}");
                    assert_ne!(
                        location, "/console/login",
                        "a logged-in user sent to log in: {what}"
                    );
                    if route.method == reqwest::Method::GET {
                        assert_eq!(status, StatusCode::OK, "{what}");
                    }
                }
            } else if is_console(*may) && matches!(who, Who::Anonymous | Who::Station) {
                // No console login: on to the login page, for pages and forms alike.
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "should be sent to log in: {what}"
                );
                assert_eq!(location, "/console/login", "{what}");
            } else if matches!(who, Who::Anonymous | Who::Station)
                || matches!(may, May::StationOnly)
            {
                // No login (or no station key) at all: 401, not 403.
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "should be refused: {what}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "should be refused: {what}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&import_dir);
}
on_each_backend!(role_matrix_covers_every_route);

#[test]
fn no_debug_seed_reset_or_emergency_routes() {
    for route in route_docs() {
        for segment in route.path.split('/') {
            assert!(
                !["debug", "seed", "reset", "emergency", "test", "dev"].contains(&segment),
                "{} {} looks like a maintenance route",
                route.method,
                route.path
            );
        }
    }
}

async fn openapi_lists_every_route(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let (status, doc) = send(s.http.get(s.url("/api/v1/openapi.json"))).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for route in route_docs() {
        let op = &paths
            .get(route.path)
            .unwrap_or_else(|| panic!("{} is not in the document", route.path))
            [route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
        assert_eq!(op["summary"], route.summary);
        documented += 1;
    }
    let in_doc: usize = paths
        .values()
        .map(|m| m.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(
        in_doc, documented,
        "the document lists routes the server does not have"
    );
}
on_each_backend!(openapi_lists_every_route);

/// Settings with the production limits, but no two-step login for the admin
/// (who unlocks accounts in these tests).
fn lockout_settings(url: &str) -> traitortrack_server::config::Settings {
    let mut s = production_settings(url);
    s.require_admin_totp = false;
    s
}

async fn login_status(
    s: &TestServer,
    base: &str,
    user: &str,
    password: &str,
) -> (StatusCode, Value) {
    send(
        s.http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password})),
    )
    .await
}

async fn brute_force_locks_then_the_window_passes(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(lockout_settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let mut seen = Vec::new();
    for i in 0..20 {
        let (status, body) = login_status(&s, &s.base, "ravi", &format!("wrong-guess-{i}")).await;
        seen.push((
            status,
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        ));
    }
    for (status, code) in &seen[..4] {
        assert_eq!(
            (*status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "bad_credentials")
        );
    }
    assert_eq!(
        seen[4].1, "account_locked",
        "the 5th failure locks: {seen:?}"
    );
    for (status, code) in &seen[5..] {
        assert!(
            code == "account_locked"
                || (*status == StatusCode::TOO_MANY_REQUESTS && code == "too_many_attempts"),
            "{status} {code}"
        );
    }
    // The per-username limit (10 a minute) answered some with 429 and Retry-After.
    assert!(
        seen.iter()
            .any(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS),
        "{seen:?}"
    );
    let resp = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "ravi", "password": "again"}))
        .send()
        .await
        .expect("answer");
    let retry: u32 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("429 carries Retry-After");
    assert!((1..=60).contains(&retry));

    // The right password is refused while locked, and let in after the window.
    s.clock.advance(time::Duration::minutes(2));
    let (status, body) = login_status(&s, &s.base, "ravi", PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_locked")),
        "{body}"
    );
    s.clock.advance(time::Duration::minutes(14));
    let (status, body) = login_status(&s, &s.base, "ravi", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let actions: Vec<String> = sqlx_actions(&s, "ravi").await;
    assert!(
        actions.iter().filter(|a| *a == "login_failed").count() >= 5,
        "{actions:?}"
    );
    assert!(actions.contains(&"lockout".to_string()), "{actions:?}");
    assert!(actions.contains(&"login".to_string()), "{actions:?}");
}
on_each_backend!(brute_force_locks_then_the_window_passes);

/// The audit actions recorded about `user`, oldest first.
async fn sqlx_actions(s: &TestServer, user: &str) -> Vec<String> {
    use traitortrack_server::on;
    let rows: Vec<String> = on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE entity_code = $1 ORDER BY id"
    )
    .bind(user)
    .fetch_all(c)
    .await)
    .expect("audit rows");
    rows
}

async fn lockout_holds_across_two_processes(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(lockout_settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let lab = [("TRAITORTRACK_REQUIRE_ADMIN_TOTP", "false")];
    let a = ServerProcess::start_with(server_binary!(), &url, &lab).await;
    let b = ServerProcess::start_with(server_binary!(), &url, &lab).await;
    for i in 0..5 {
        let base = if i % 2 == 0 { a.base() } else { b.base() };
        let (status, _) = login_status(&s, &base, "ravi", "not-the-password").await;
        assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN);
    }
    for base in [a.base(), b.base()] {
        let (status, body) = login_status(&s, &base, "ravi", PASSWORD).await;
        assert_eq!(body["error"]["code"], "account_locked", "{status} {body}");
    }
    // An admin unlocks through one process; the other lets the worker in.
    let (status, body) = login_status(&s, &b.base(), "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = body["token"].as_str().expect("token").to_string();
    let (status, body) = send(
        s.http
            .post(format!("{}/api/v1/users/ravi/unlock", b.base()))
            .bearer_auth(&admin),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = login_status(&s, &a.base(), "ravi", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
on_each_backend!(lockout_holds_across_two_processes);

async fn two_step_login(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(production_settings(&url)).await;
    // Admins must enrol first: until then only the account routes answer.
    let token = s.admin_token.clone();
    let (status, body) = s.get(&token, "/api/v1/bags").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("two_step_required"))
    );
    let (status, me) = s.get(&token, "/api/v1/me").await;
    assert_eq!(
        (status, me["pending"].as_str()),
        (StatusCode::OK, Some("two_step_enrolment"))
    );

    let (status, enrol) = s
        .post_json(&token, "/api/v1/auth/totp/enrol", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{enrol}");
    let secret = enrol["secret"].as_str().expect("secret").to_string();
    assert!(enrol["otpauth_uri"]
        .as_str()
        .expect("uri")
        .starts_with("otpauth://totp/"));
    assert!(enrol["qr_svg"].as_str().expect("svg").contains("<svg"));
    let code = |at| traitortrack_server::totp::code_at(&secret, at).expect("code");

    let (status, body) = s
        .post_json(
            &token,
            "/api/v1/auth/totp/confirm",
            &json!({"code": "000000"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a wrong code does not confirm: {body}"
    );
    let confirmed = code(s.clock.now());
    let (status, body) = s
        .post_json(
            &token,
            "/api/v1/auth/totp/confirm",
            &json!({"code": confirmed}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recovery: Vec<String> = body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let (status, _) = s.get(&token, "/api/v1/bags").await;
    assert_eq!(status, StatusCode::OK, "enrolled: the session is whole");

    let login = |extra: Value| {
        let mut body = json!({"username": "admin", "password": PASSWORD});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        send(s.http.post(s.url("/api/v1/auth/login")).json(&body))
    };
    let (status, body) = login(json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp_required"))
    );
    // The code that confirmed enrolment was spent: the same code is refused
    // (the code itself, not the code of the step now, which a slow machine
    // may have left behind meanwhile).
    let (status, body) = login(json!({"totp": confirmed})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_totp")),
        "replay"
    );
    s.clock.advance(time::Duration::seconds(30));
    let fresh = code(s.clock.now());
    let (status, body) = login(json!({"totp": fresh})).await;
    assert_eq!(status, StatusCode::OK, "a fresh code: {body}");
    let (status, body) = login(json!({"totp": fresh})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_totp")),
        "the same code twice"
    );
    // One step of clock drift: the phone is 30 s ahead.
    let ahead = code(traitortrack_server::db::Ts::new(
        s.clock.now().time() + time::Duration::seconds(30),
    ));
    let (status, body) = login(json!({"totp": ahead})).await;
    assert_eq!(status, StatusCode::OK, "one step ahead: {body}");
    // Two steps off is refused.
    s.clock.advance(time::Duration::seconds(60));
    let far = code(traitortrack_server::db::Ts::new(
        s.clock.now().time() + time::Duration::seconds(90),
    ));
    let (status, _) = login(json!({"totp": far})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "three steps ahead");

    // A recovery code works once.
    let (status, body) = login(json!({"recovery_code": recovery[3].to_uppercase()})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = login(json!({"recovery_code": recovery[3]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_totp"))
    );

    let actions = sqlx_actions(&s, "admin").await;
    for a in ["totp_enrol", "recovery_code_used", "login", "login_failed"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    // Admins cannot turn it off while it is required.
    let (status, _) = s
        .post_json(
            body_token(&s).await.as_str(),
            "/api/v1/auth/totp/disable",
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
on_each_backend!(two_step_login);

async fn body_token(s: &TestServer) -> String {
    s.clock.advance(time::Duration::seconds(30));
    let secret: String = {
        use traitortrack_server::on;
        on!(s.db.reader(), |c| sqlx::query_scalar(
            "SELECT totp_secret FROM users WHERE username = 'admin'"
        )
        .fetch_one(c)
        .await)
        .expect("secret")
    };
    let code = traitortrack_server::totp::code_at(&secret, s.clock.now()).expect("code");
    let (status, body) = send(
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD, "totp": code})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_string()
}

async fn console_cookie_needs_the_csrf_token(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let resp = s
        .http
        .post(s.url("/api/v1/auth/session"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure over plain HTTP: {cookie}"
    );
    let body: Value = resp.json().await.expect("json");
    assert!(
        body.get("token").is_none(),
        "the token stays in the cookie: {body}"
    );
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    let pair = cookie.split(';').next().expect("name=value").to_string();

    let (status, _) = send(s.http.get(s.url("/api/v1/me")).header("cookie", &pair)).await;
    assert_eq!(status, StatusCode::OK, "reads need no CSRF token");
    let bill = json!({"code": "B-CSRF", "capacity": 2});
    let (status, body) = send(
        s.http
            .post(s.url("/api/v1/bills"))
            .header("cookie", &pair)
            .json(&bill),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed")),
        "{body}"
    );
    let (status, _) = send(
        s.http
            .post(s.url("/api/v1/bills"))
            .header("cookie", &pair)
            .header("x-csrf-token", "0".repeat(48))
            .json(&bill),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token");
    let (status, body) = send(
        s.http
            .post(s.url("/api/v1/bills"))
            .header("cookie", &pair)
            .header("x-csrf-token", &csrf)
            .json(&bill),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Logging out clears the cookie and ends the session.
    let resp = s
        .http
        .post(s.url("/api/v1/auth/logout"))
        .header("cookie", &pair)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap_or("")
        .contains("Max-Age=0"));
    let (status, _) = send(s.http.get(s.url("/api/v1/me")).header("cookie", &pair)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
on_each_backend!(console_cookie_needs_the_csrf_token);

async fn sessions_end_idle_absolute_and_on_password_change(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station("dock-1").await;
    let minutes = |m| time::Duration::minutes(m);

    // Idle: used every 29 minutes it stays; 31 minutes untouched ends it.
    let token = s.login("ravi", None).await;
    for _ in 0..3 {
        s.clock.advance(minutes(29));
        assert_eq!(s.get(&token, "/api/v1/me").await.0, StatusCode::OK);
    }
    s.clock.advance(minutes(31));
    let (status, body) = s.get(&token, "/api/v1/me").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_idle"))
    );

    // Absolute: used every 20 minutes, it still ends after 8 hours.
    let token = s.login("ravi", None).await;
    let mut alive = 0;
    for _ in 0..30 {
        s.clock.advance(minutes(20));
        if s.get(&token, "/api/v1/me").await.0 == StatusCode::OK {
            alive += 1;
        }
    }
    assert_eq!(alive, 23, "8 hours of 20-minute steps, then refused");

    // A station session has no idle end, and ends after 12 hours.
    let token = s.login("ravi", Some(&key)).await;
    s.clock.advance(time::Duration::hours(11));
    assert_eq!(s.get(&token, "/api/v1/me").await.0, StatusCode::OK);
    s.clock.advance(time::Duration::hours(2));
    assert_eq!(
        s.get(&token, "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Changing the password ends the other sessions, not the one that changed it.
    let first = s.login("ravi", None).await;
    let second = s.login("ravi", None).await;
    let (status, body) = s
        .post_json(
            &first,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": "a much better passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(s.get(&first, "/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(
        s.get(&second, "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Log out everywhere ends the rest.
    let (status, _) = s
        .post_json(&first, "/api/v1/auth/logout-everywhere", &json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&first, "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let actions = sqlx_actions(&s, "ravi").await;
    assert!(
        actions.iter().filter(|a| *a == "sessions_revoked").count() >= 2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"password_change".to_string()),
        "{actions:?}"
    );
}
on_each_backend!(sessions_end_idle_absolute_and_on_password_change);

async fn every_answer_carries_the_browser_protections(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    for path in ["/healthz", "/api/v1/me", "/no/such/page"] {
        let resp = s.http.get(s.url(path)).send().await.expect("answer");
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
}
on_each_backend!(every_answer_carries_the_browser_protections);

/// Built-in HTTPS with a certificate made here: the answers carry HSTS and the
/// console cookie is Secure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_https() {
    let dir = std::env::temp_dir().join(format!("tt-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");

    let url = fresh_url(Backend::Sqlite).await.expect("sqlite");
    let mut config = traitortrack_server::config::Config {
        database_url: url.clone(),
        listen: "127.0.0.1:0".into(),
        require_admin_totp: false,
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Default::default()
    };
    config.max_connections = 4;
    let settings = config.validate().expect("valid TLS settings");
    let server = TestServer::start_with(settings).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("cert");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let resp = http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("https answer");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["strict-transport-security"]
        .to_str()
        .unwrap_or("")
        .contains("max-age="));
    let resp = http
        .post(server.url("/api/v1/auth/session"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap_or("")
        .contains("Secure"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Each server process keeps the logins and station keys it checked for a
/// moment (`ACCESS_TTL`): a logout or a revoked station in one process ends
/// the login and the key in another soon after, never later.
async fn a_logout_in_one_process_ends_the_login_in_another(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let lab = [("TRAITORTRACK_REQUIRE_ADMIN_TOTP", "false")];
    let other = ServerProcess::start_with(server_binary!(), &url, &lab).await;
    let (status, body) = login_status(&s, &s.base, "ravi", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ravi = body["token"].as_str().expect("token").to_string();
    let key = s.station("dock-1").await;
    let me = || {
        send(
            s.http
                .get(format!("{}/api/v1/me", other.base()))
                .bearer_auth(&ravi),
        )
    };
    let station = || {
        send(
            s.http
                .get(format!("{}/api/v1/station/settings", other.base()))
                .header("x-station-key", &key),
        )
    };
    // The other process has both in its cache now.
    assert_eq!(me().await.0, StatusCode::OK);
    assert_eq!(station().await.0, StatusCode::OK);

    let (status, body) = send(s.http.post(s.url("/api/v1/auth/logout")).bearer_auth(&ravi)).await;
    assert!(status.is_success(), "{status} {body}");
    let (_, list) = s.get(&s.admin_token, "/api/v1/stations").await;
    let id = list["items"][0]["id"].as_i64().expect("id");
    let (status, body) = s
        .post_json(
            &s.admin_token,
            &format!("/api/v1/stations/{id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Asked again and again: the refusal comes once the copies' time is up
    // (2 s); the bound here is only there to end the test if it never does.
    let mut refused = (false, false);
    for _ in 0..300 {
        refused = (
            me().await.0 == StatusCode::UNAUTHORIZED,
            station().await.0 == StatusCode::UNAUTHORIZED,
        );
        if refused == (true, true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        refused,
        (true, true),
        "(login, station key) refused in the other process"
    );
}
on_each_backend!(a_logout_in_one_process_ends_the_login_in_another);
