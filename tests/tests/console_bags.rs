//! The console's bags pages in a real browser (headless Chromium through
//! chromedriver) against a real server, on each database; and the bag
//! history API over plain HTTP.
//!
//! - Among 100,000 bags (seeded by the benchmark's seeder): search by an
//!   exact code (straight to the bag) and by a code's start, filters, keyset
//!   pages; a parent's page with its children and bill, a child's with its
//!   parent; a station event shows in the bag's history within 5 s.
//! - A dispatcher sees only their area's bags and is refused another's.
//! - An admin takes a child out of its parent with a reason: the pages and
//!   both histories show it; a dispatcher or biller posting the form is refused.
//! - `GET /api/v1/bags/{code}/history` and the list's date filter: roles,
//!   areas, bad input in plain words.
//!
//! Every page looked at is checked for its style sheet and for running wider
//! than the window, and saved under `$CARGO_TARGET_DIR/console-screens/`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::loadgen::seed::{self, Layout};
use traitortrack_tests::webdriver::WAIT;
use traitortrack_tests::{
    fresh_url, link, on_each_backend, settings, unlink, Backend, TestServer, PASSWORD,
};

/// What a bags page shows.
const BAGS_LOOK: &str = r#"
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
const rows = (s) => Array.from(document.querySelectorAll(s)).map((r) => r.innerText.trim().replace(/\s+/g, ' '));
const href = (s) => { const e = q(s); return e ? e.getAttribute('href') : null; };
return {
  ready: document.readyState,
  path: location.pathname + location.search,
  h1: txt('h1'),
  notice: txt('#notice'),
  error: txt('#form-error'),
  refusal: txt('#refusal-message'),
  codes: Array.from(document.querySelectorAll('#bags tbody tr')).map((r) => r.cells[0].innerText.trim()),
  bag_rows: rows('#bags tbody tr'),
  next: href('#next-page'),
  first_page: href('#first-page'),
  no_bags: txt('#no-bags'),
  area_select: !!q('#area'),
  own_area: txt('#own-area'),
  kind: txt('#bag-kind'),
  full: !!q('#bag-full'),
  children_fact: txt('#fact-children'),
  parent_fact: txt('#fact-parent'),
  parent_href: href('#fact-parent a'),
  bill_fact: txt('#fact-bill'),
  bill_href: href('#fact-bill a'),
  area_fact: txt('#fact-area'),
  children: rows('#children tbody tr'),
  history: rows('#history tbody tr'),
  unlink_form: !!q('#unlink-form'),
  csrf: q('input[name=csrf]') ? q('input[name=csrf]').value : null,
};
"#;

async fn look(b: &mut Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    b.wait_until(what, WAIT, BAGS_LOOK, |v| v["ready"] == "complete" && ok(v))
        .await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The warehouse's day today, as a date field takes it.
fn today(s: &TestServer, days_on: i64) -> String {
    let now = s.clock.now().time().to_offset(s.settings.utc_offset) + time::Duration::days(days_on);
    let d = now.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A form sent from the page itself with these fields.
fn send_form(action: &str, fields: &[(&str, &str)]) -> String {
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

/// A console login over plain HTTP: the cookie pair and the CSRF token.
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

// ------------------------------------------------------------ (a) 100,000 bags

async fn search_a_bag_among_100_000(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    // Parents SB00000… with 29 children each, 20 parents to a bill.
    let layout = Layout::for_bags(100_000).expect("a valid size");
    let seeded = seed::seed(&s.db, layout, "north").await.expect("seeding");
    eprintln!(
        "{backend:?}: seeded {} bags in {:.1} s",
        seeded.bags, seeded.load_secs
    );
    assert!(seeded.bags >= 99_990, "{seeded:?}");
    let key = s.station_with("Dock 1", &["ravi"]).await;
    let Some(mut b) = Browser::open(&s, "bags-100k").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;

    // The list: 50 bags in code order, and the next page after them.
    b.visit("/console/bags").await;
    b.page("bags-list").await;
    let first = look(&mut b, "the first page", |v| v["h1"] == "Bags").await;
    let codes = strings(&first["codes"]);
    assert_eq!(codes.len(), 50, "{first}");
    assert!(
        codes.windows(2).all(|w| w[0] < w[1]),
        "in code order: {codes:?}"
    );
    assert!(
        first["area_select"] == true,
        "admins choose any area: {first}"
    );
    let next = text(&first, "next").to_string();
    assert!(next.contains("cursor="), "{first}");
    b.click("#next-page").await;
    let second = look(&mut b, "the second page", |v| {
        v["path"].as_str().is_some_and(|p| p.contains("cursor="))
    })
    .await;
    let more = strings(&second["codes"]);
    assert_eq!(more.len(), 50, "{second}");
    assert!(more[0] > codes[49], "{more:?} after {codes:?}");
    let (status, api) = s
        .get(
            &s.admin_token,
            &format!("/api/v1/bags?limit=50&cursor={}", codes[49]),
        )
        .await;
    assert_eq!(status, 200, "{api}");
    let api_codes: Vec<String> = api["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(more, api_codes, "the page is the API's next page");
    assert!(second["first_page"].is_string(), "{second}");
    b.page("bags-list-page-2").await;

    // A code's start: every bag starting so, and only those.
    b.visit("/console/bags").await;
    look(&mut b, "the search form", |v| v["h1"] == "Bags").await;
    b.type_into("#search", "sb0001").await;
    b.submit("#bag-search").await;
    let seen = look(&mut b, "bags starting SB0001", |v| {
        v["path"]
            .as_str()
            .is_some_and(|p| p.contains("search=sb0001"))
    })
    .await;
    let want: Vec<String> = (10..20).map(|n| format!("SB000{n}")).collect();
    assert_eq!(strings(&seen["codes"]), want, "{seen}");
    assert!(seen["next"].is_null(), "one page: {seen}");
    b.page("bags-prefix").await;

    // Filters: parents not on a bill and not full, from today.
    let from = today(&s, 0);
    b.visit(&format!(
        "/console/bags?kind=parent&billed=no&complete=no&area=north&date=created&from={from}"
    ))
    .await;
    let seen = look(&mut b, "filtered parents", |v| v["h1"] == "Bags").await;
    let codes = strings(&seen["codes"]);
    // 111 bills of 20 parents: SB00000 to SB02219 are on one.
    assert_eq!(codes.first().map(String::as_str), Some("SB02220"), "{seen}");
    assert!(codes.iter().all(|c| c.starts_with("SB")), "{codes:?}");
    b.page("bags-filtered").await;
    b.visit(&format!("/console/bags?date=changed&from={}", today(&s, 1)))
        .await;
    let seen = look(&mut b, "nothing changed tomorrow", |v| v["h1"] == "Bags").await;
    assert_eq!(
        text(&seen, "no_bags"),
        "No bags match. Check the code, or clear the filters.",
        "{seen}"
    );
    b.visit(&format!(
        "/console/bags?from={}&to={}",
        today(&s, 1),
        today(&s, 0)
    ))
    .await;
    let seen = look(&mut b, "dates the wrong way round", |v| v["h1"] == "Bags").await;
    assert!(text(&seen, "error").starts_with("The last day ("), "{seen}");
    b.page("bags-bad-dates").await;

    // A full code typed: straight to the bag's page.
    b.visit("/console/bags").await;
    look(&mut b, "the search form again", |v| v["h1"] == "Bags").await;
    b.type_into("#search", " sb01234 ").await;
    b.submit("#bag-search").await;
    let seen = look(&mut b, "the parent's page", |v| {
        v["path"] == "/console/bags/SB01234"
    })
    .await;
    assert_eq!(seen["h1"], "SB01234");
    assert_eq!(seen["kind"], "Parent bag");
    assert_eq!(seen["full"], false);
    assert_eq!(text(&seen, "children_fact"), "29 of 30", "{seen}");
    assert_eq!(text(&seen, "bill_fact"), "BILL00061", "{seen}");
    assert_eq!(seen["bill_href"], "/console/bills/BILL00061");
    assert_eq!(text(&seen, "area_fact"), "north");
    let children = strings(&seen["children"]);
    assert_eq!(children.len(), 29, "{seen}");
    assert!(children[0].starts_with("1 C0000037021"), "{children:?}");
    assert!(children[28].starts_with("29 C0000037049"), "{children:?}");
    let history = strings(&seen["history"]);
    assert_eq!(history.len(), 1, "seeded bags have no scans: {history:?}");
    assert!(history[0].contains("Bag created"), "{history:?}");
    b.page("bag-parent-seeded").await;

    // One of its children: its parent, linked.
    b.click("#children tbody tr:first-child a").await;
    let seen = look(&mut b, "the child's page", |v| {
        v["path"] == "/console/bags/C0000037021"
    })
    .await;
    assert_eq!(seen["kind"], "Child bag");
    assert!(text(&seen, "parent_fact").starts_with("SB01234"), "{seen}");
    assert_eq!(seen["parent_href"], "/console/bags/SB01234");
    assert!(seen["children"].as_array().is_some_and(Vec::is_empty));
    b.page("bag-child-seeded").await;

    // A station event through the API: in the bag's history within 5 s.
    b.visit("/console/bags/SB03000").await;
    look(&mut b, "SB03000 before the scan", |v| v["h1"] == "SB03000").await;
    let result = s.event(&key, link("ravi", "sb03000", "n0001")).await;
    assert_eq!(result["status"], "applied", "{result}");
    let posted = Instant::now();
    let seen = loop {
        b.visit("/console/bags/SB03000").await;
        let seen = look(&mut b, "SB03000 reloaded", |v| v["h1"] == "SB03000").await;
        if strings(&seen["history"])
            .iter()
            .any(|h| h.contains("Child bag N0001 put in"))
        {
            break seen;
        }
        assert!(
            posted.elapsed() < Duration::from_secs(5),
            "the scan is not in the history after 5 s: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "the history showed the scan after {} ms",
        posted.elapsed().as_millis()
    );
    let newest = &strings(&seen["history"])[0];
    assert!(newest.contains("Child bag N0001 put in"), "{newest}");
    assert!(
        newest.contains("ravi") && newest.contains("Dock 1"),
        "{newest}"
    );
    assert_eq!(seen["full"], true, "the 30th child fills it: {seen}");
    assert_eq!(text(&seen, "children_fact"), "30 of 30 (full)");
    b.page("bag-parent-after-scan").await;
    b.visit("/console/bags/N0001").await;
    let seen = look(&mut b, "the new child's page", |v| v["h1"] == "N0001").await;
    let history = strings(&seen["history"]);
    assert!(
        history[0].contains("Put in parent bag SB03000")
            && history[0].contains("ravi")
            && history[0].contains("Dock 1"),
        "{history:?}"
    );
    assert!(history[1].contains("Bag created"), "{history:?}");
    assert!(
        text(&seen, "parent_fact").contains("put in by ravi"),
        "{seen}"
    );
    b.page("bag-child-after-scan").await;

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/bags?search=SB0300").await;
    b.page("bags-tablet").await;
    b.visit("/console/bags/SB03000").await;
    b.page("bag-tablet").await;
    b.set_window(1366, 768).await;

    // A code that does not exist, and one no code can be.
    b.visit("/console/bags/SB99999").await;
    let seen = look(&mut b, "no such bag", |v| !v["refusal"].is_null()).await;
    assert_eq!(text(&seen, "refusal"), "There is no bag SB99999.");
    b.visit("/console/bags?search=%3Cb%3E").await;
    let seen = look(&mut b, "a search no code can match", |v| {
        !v["error"].is_null()
    })
    .await;
    assert!(text(&seen, "error").len() > 10, "{seen}");
    b.page("bags-bad-search").await;
    b.assert_clean_console().await;
}
on_each_backend!(search_a_bag_among_100_000);

// ------------------------------------------------------------ (b) areas

async fn a_dispatcher_sees_only_their_area(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("sam", Role::Dispatcher, Some("south")).await;
    let key = s.station_with("Dock 1", &["dora", "sam"]).await;
    for ev in [
        link("dora", "SB00001", "C0001"),
        link("dora", "SB00001", "C0002"),
        link("sam", "SB00002", "C0003"),
    ] {
        let result = s.event(&key, ev).await;
        assert_eq!(result["status"], "applied", "{result}");
    }
    let Some(mut b) = Browser::open(&s, "bags-area").await else {
        return;
    };
    b.log_in("dora", PASSWORD).await;
    b.visit("/console/bags").await;
    b.page("bags-dispatcher").await;
    let seen = look(&mut b, "dora's bags", |v| v["h1"] == "Bags").await;
    assert_eq!(
        strings(&seen["codes"]),
        ["C0001", "C0002", "SB00001"],
        "only the area north: {seen}"
    );
    assert_eq!(seen["area_select"], false, "no other area offered: {seen}");
    assert_eq!(text(&seen, "own_area"), "Bags of your area north");

    // Searching for another area's bag finds nothing; its page is refused.
    b.type_into("#search", "SB00002").await;
    b.submit("#bag-search").await;
    let seen = look(&mut b, "no bag of the south", |v| !v["no_bags"].is_null()).await;
    assert!(strings(&seen["codes"]).is_empty(), "{seen}");
    b.visit("/console/bags/SB00002").await;
    let seen = b.page("bag-other-area").await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    assert_eq!(
        text(&seen, "refusal"),
        "SB00002 belongs to area south, not to your area north."
    );
    b.visit("/console/bags/C0003").await;
    let seen = look(&mut b, "the south's child refused", |v| {
        !v["refusal"].is_null()
    })
    .await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    b.visit("/console/bags?area=south").await;
    let seen = look(&mut b, "another area asked for", |v| {
        !v["refusal"].is_null()
    })
    .await;
    assert_eq!(
        text(&seen, "refusal"),
        "You can only see bags of your area north."
    );

    // Her own bags open, without the correction form.
    b.visit("/console/bags/SB00001").await;
    let seen = look(&mut b, "dora's parent", |v| v["h1"] == "SB00001").await;
    assert_eq!(strings(&seen["children"]).len(), 2, "{seen}");
    assert_eq!(seen["unlink_form"], false);
    b.page("bag-dispatcher").await;

    let cookie = b.session_cookie().await;
    for path in ["/console/bags/SB00002", "/console/bags?area=south"] {
        let resp = plain_http()
            .get(s.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    b.assert_clean_console().await;
}
on_each_backend!(a_dispatcher_sees_only_their_area);

// ------------------------------------------------------------ (c) corrections

async fn an_admin_takes_a_child_out_with_a_reason(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("Dock 1", &["ravi"]).await;
    for child in ["C0001", "C0002", "C0003"] {
        let result = s.event(&key, link("ravi", "SB00001", child)).await;
        assert_eq!(result["status"], "applied", "{result}");
    }
    // Ravi undoes his last scan at the station: an undo, not a correction.
    let result = s
        .event(&key, unlink("ravi", "SB00001", Some("C0003")))
        .await;
    assert_eq!(result["status"], "applied", "{result}");

    let Some(mut b) = Browser::open(&s, "bags-unlink").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/bags/SB00001").await;
    let seen = look(&mut b, "the parent", |v| v["h1"] == "SB00001").await;
    assert_eq!(strings(&seen["children"]).len(), 2, "{seen}");
    let history = strings(&seen["history"]);
    assert!(
        history[0].contains("Child bag C0003 taken out (undo of a scan)")
            && history[0].contains("ravi")
            && history[0].contains("Dock 1"),
        "{history:?}"
    );
    b.page("bag-parent-before-unlink").await;

    // The child's page: the admin's correction form.
    b.click("#children tbody tr:first-child td:last-child a")
        .await;
    let seen = look(&mut b, "the child with the form", |v| {
        v["path"] == "/console/bags/C0001" && v["unlink_form"] == true
    })
    .await;
    assert!(
        text(&seen, "parent_fact").starts_with("SB00001 put in by ravi"),
        "{seen}"
    );
    b.page("bag-child-unlink-form").await;

    let reason = "Scanned into the wrong parent by mistake";
    b.type_into("#reason", reason).await;
    b.submit("#unlink-form").await;
    let seen = look(&mut b, "taken out", |v| !v["notice"].is_null()).await;
    assert_eq!(seen["path"], "/console/bags/C0001?note=unlinked");
    assert_eq!(
        text(&seen, "notice"),
        "The bag is taken out of its parent. Its history below shows it, with your reason."
    );
    assert_eq!(text(&seen, "parent_fact"), "Not in a parent bag", "{seen}");
    assert_eq!(seen["unlink_form"], false, "{seen}");
    let history = strings(&seen["history"]);
    assert!(
        history[0].contains("Taken out of parent bag SB00001 by an admin")
            && history[0].contains(&format!("Reason: {reason}"))
            && history[0].contains("admin"),
        "{history:?}"
    );
    assert!(
        history[1].contains("Put in parent bag SB00001"),
        "{history:?}"
    );
    b.page("bag-child-unlinked").await;

    b.visit("/console/bags/SB00001").await;
    let seen = look(&mut b, "the parent after", |v| v["h1"] == "SB00001").await;
    let children = strings(&seen["children"]);
    assert_eq!(children.len(), 1, "{children:?}");
    assert!(children[0].contains("C0002"), "{children:?}");
    assert_eq!(text(&seen, "children_fact"), "1 of 30");
    let history = strings(&seen["history"]);
    assert!(
        history[0].contains("Child bag C0001 taken out by an admin") && history[0].contains(reason),
        "{history:?}"
    );
    // Every link into it stays in its history, also of bags taken out.
    for child in ["C0001", "C0002", "C0003"] {
        assert!(
            history
                .iter()
                .any(|h| h.contains(&format!("Child bag {child} put in"))),
            "{child}: {history:?}"
        );
    }
    b.page("bag-parent-after-unlink").await;

    // The API shows the same history.
    let (status, api) = s.get(&s.admin_token, "/api/v1/bags/C0001/history").await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["items"][0]["action"], "unlink_correction", "{api}");
    assert_eq!(api["items"][0]["reason"], reason, "{api}");
    assert_eq!(api["items"][0]["parent"], "SB00001", "{api}");
    assert_eq!(api["items"][0]["by"], "admin", "{api}");

    // The form again on a parent: a plain refusal, nothing changed.
    let csrf = text(&seen, "csrf").to_string();
    b.js(&send_form(
        "/console/bags/SB00001/unlink",
        &[("csrf", &csrf), ("reason", "no")],
    ))
    .await;
    let seen = look(&mut b, "a parent cannot be taken out", |v| {
        !v["error"].is_null()
    })
    .await;
    assert!(text(&seen, "error").contains("is a parent bag"), "{seen}");
    b.page("bag-unlink-refused").await;
    b.assert_clean_console().await;

    // A dispatcher sees no form, and posting one is refused.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    b.log_in("ravi", PASSWORD).await;
    b.visit("/console/bags/C0002").await;
    let seen = look(&mut b, "ravi's child", |v| v["h1"] == "C0002").await;
    assert_eq!(seen["unlink_form"], false, "{seen}");
    let csrf = text(&seen, "csrf").to_string();
    b.js(&send_form(
        "/console/bags/C0002/unlink",
        &[("csrf", &csrf), ("reason", "I want it out")],
    ))
    .await;
    let seen = look(&mut b, "the dispatcher refused", |v| {
        !v["refusal"].is_null()
    })
    .await;
    assert_eq!(seen["h1"], "Not for your account", "{seen}");
    assert_eq!(
        text(&seen, "refusal"),
        "A dispatcher cannot take a bag out of its parent (it is for admins)."
    );
    b.page("bag-unlink-dispatcher-refused").await;
    assert_eq!(s.children_of("SB00001").await, ["C0002"], "nothing changed");

    // A biller, over plain HTTP with a console login: 403 too.
    let (cookie, csrf) = console_session(&s, "bina").await;
    let resp = plain_http()
        .post(s.url("/console/bags/C0002/unlink"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("reason", "billing wants it")])
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // An admin with no reason: the form again with the refusal.
    let (cookie, csrf) = console_session(&s, "admin").await;
    let resp = plain_http()
        .post(s.url("/console/bags/C0002/unlink"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("reason", "   ")])
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.expect("page");
    assert!(page.contains("Write why the bag is taken out."), "{page}");
    assert_eq!(s.children_of("SB00001").await, ["C0002"], "nothing changed");
    s.assert_invariants().await;
    b.assert_clean_console().await;
}
on_each_backend!(an_admin_takes_a_child_out_with_a_reason);

// ------------------------------------------------------------ (d) the API

async fn bag_history_api_checks_roles_areas_and_input(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("sam", Role::Dispatcher, Some("south")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("Dock 1", &["dora"]).await;
    for child in ["C0001", "C0002"] {
        let result = s.event(&key, link("dora", "SB00001", child)).await;
        assert_eq!(result["status"], "applied", "{result}");
    }
    let result = s.event(&key, unlink("dora", "SB00001", None)).await;
    assert_eq!(result["status"], "applied", "{result}");

    let history = |token: String, path: &'static str| {
        let s = &s;
        async move { s.get(&token, path).await }
    };
    let admin = s.admin_token.clone();
    let (status, h) = history(admin.clone(), "/api/v1/bags/SB00001/history").await;
    assert_eq!(status, 200, "{h}");
    let actions: Vec<&str> = h["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["unlink", "link", "link", "created"], "{h}");
    assert_eq!(
        h["items"][0]["child"], "C0002",
        "the undo names its child: {h}"
    );
    assert_eq!(h["items"][0]["station"], "Dock 1", "{h}");
    assert_eq!(h["items"][1]["child"], "C0002", "{h}");
    assert_eq!(h["items"][2]["child"], "C0001", "{h}");
    assert_eq!(h["items"][2]["by"], "dora", "{h}");
    assert_eq!(h["truncated"], false);

    let (status, h) = history(admin.clone(), "/api/v1/bags/sb00001/history?limit=2").await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["items"].as_array().map(Vec::len), Some(2), "{h}");
    assert_eq!(h["truncated"], true, "{h}");

    // Billers and the area's dispatcher read it; another area's does not.
    let bina = s.login("bina", None).await;
    let (status, h) = history(bina, "/api/v1/bags/C0002/history").await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["items"][0]["action"], "unlink", "{h}");
    assert_eq!(h["items"][0]["parent"], "SB00001", "{h}");
    let dora = s.login("dora", None).await;
    let (status, h) = history(dora.clone(), "/api/v1/bags/C0001/history").await;
    assert_eq!(status, 200, "{h}");
    let sam = s.login("sam", None).await;
    let (status, h) = history(sam.clone(), "/api/v1/bags/C0001/history").await;
    assert_eq!(status, 403, "{h}");
    assert_eq!(h["error"]["code"], "wrong_area", "{h}");
    assert_eq!(
        h["error"]["message"],
        "C0001 belongs to area north, not to your area south."
    );

    // Bad input in plain words.
    let (status, h) = history(admin.clone(), "/api/v1/bags/SB99999/history").await;
    assert_eq!(status, 404, "{h}");
    assert_eq!(h["error"]["message"], "There is no bag SB99999.");
    let (status, h) = history(admin.clone(), "/api/v1/bags/%3Cb%3E/history").await;
    assert_eq!(status, 400, "{h}");
    assert!(
        h["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with('.')),
        "{h}"
    );
    let (status, h) = history(admin.clone(), "/api/v1/bags/SB00001/history?limit=many").await;
    assert_eq!(status, 400, "{h}");
    let (status, h) = history(String::new(), "/api/v1/bags/SB00001/history").await;
    assert_eq!(status, 401, "{h}");

    // The list's date filter.
    let day = |n| today(&s, n);
    let list = |query: String| {
        let s = &s;
        let admin = admin.clone();
        async move { s.get(&admin, &format!("/api/v1/bags?{query}")).await }
    };
    let (status, page) = list(format!("from={}&to={}", day(0), day(0))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3), "{page}");
    let (status, page) = list(format!("date=changed&from={}", day(1))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]), "{page}");
    let (status, page) = list(format!("to={}", day(-1))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]), "{page}");
    let (status, page) = list(format!("from={}&to={}", day(1), day(0))).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(page["error"]["code"], "bad_range", "{page}");
    let (status, page) = list("from=31-01-2026".into()).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(
        page["error"]["message"],
        "Give the date as YYYY-MM-DD (like 2026-03-31), not \"31-01-2026\"."
    );
    let (status, page) = list("date=yesterday".into()).await;
    assert_eq!(status, 400, "{page}");
}
on_each_backend!(bag_history_api_checks_roles_areas_and_input);
