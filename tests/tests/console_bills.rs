//! The bills pages of the web console in a real browser (headless Chromium
//! through chromedriver), on each database: a biller makes a bill, puts
//! parent bags on it and sees it on the dashboard; the bill's page shows its
//! child count, weights and progress; closing and reopening follow the
//! domain's rules; the dispatch sheet renders with its QR code and prints
//! without the menu; the end-of-day summary page and its API route give the
//! same numbers, checked against what the test did; the list filters and
//! pages; dispatchers are refused; refused forms say why in plain words.
//!
//! Screenshots land in `$CARGO_TARGET_DIR/console-screens/` as
//! `BACKEND-bills-…`, `BACKEND-sheet-…`, `BACKEND-summary-…`, `BACKEND-bill-list-…`.

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::{
    bill_add, children, fresh_url, link, on_each_backend, settings, Backend, TestServer, PASSWORD,
};

/// What the bills pages show, read in the page.
const BILLS_LOOK: &str = r#"
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
const rows = (s) => Array.from(document.querySelectorAll(s)).map((r) => r.innerText.trim().replace(/\s+/g, ' '));
const seen = (s) => { const e = q(s); return e ? e.innerText.trim().replace(/\s+/g, ' ') : null; };
const progress = q('#bill-progress');
return {
  path: location.pathname + location.search,
  h1: txt('h1'),
  notice: txt('#notice'),
  error: txt('#form-error'),
  status: txt('#bill-status'),
  parents: txt('#bill-parents'),
  children: txt('#bill-children'),
  actual: txt('#bill-actual'),
  expected: txt('#bill-expected'),
  progress: progress ? [progress.value, progress.max] : null,
  parent_rows: rows('#bill-parents-table tbody tr'),
  parent_links: Array.from(document.querySelectorAll('#bill-parents-table tbody a')).map((a) => a.getAttribute('href')),
  details: seen('#bill-details'),
  close_form: !!q('#close-form'),
  reopen_form: !!q('#reopen-form'),
  reopen_admins: txt('#reopen-admins'),
  list: rows('#bills tbody tr'),
  no_bills: txt('#no-bills'),
  next_page: q('#next-page') ? q('#next-page').getAttribute('href') : null,
  first_page: !!q('#first-page'),
  new_bill: q('#new-bill-form') ? Object.fromEntries(Array.from(q('#new-bill-form').elements).filter((e) => e.name && e.name !== 'csrf').map((e) => [e.name, e.value])) : null,
  figures: Object.fromEntries(Array.from(document.querySelectorAll('[data-figure]')).map((e) => [e.dataset.figure, e.textContent.trim()])),
  billers: rows('#summary-billers tbody tr'),
  day_bills: rows('#summary-bills tbody tr'),
  sheet_facts: seen('#sheet-facts'),
  sheet_parents: rows('#sheet-parents tbody tr'),
  sheet_total: seen('#sheet-total'),
  sheet_weights: seen('#sheet-weights'),
  signatures: rows('#signatures .signer'),
  qr_svg: !!q('#qr svg path, #qr svg rect'),
  top_display: q('.top') ? getComputedStyle(q('.top')).display : null,
  print_shown: q('#print') ? q('#print').getClientRects().length > 0 : null,
};
"#;

async fn look(b: &Browser) -> Value {
    b.js(BILLS_LOOK).await
}

/// Waits until the bills page shown fits `ok`.
async fn wait_look(b: &mut Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    b.wait_until(what, traitortrack_tests::webdriver::WAIT, BILLS_LOOK, ok)
        .await
}

/// A warehouse: ravi (dispatcher) fills parents at a station where bina
/// (biller) and the admin may scan too.
async fn warehouse(s: &TestServer) -> String {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    s.station_with("Dock 1", &["ravi", "bina", "admin"]).await
}

/// Links `n` new children into `parent` through the API (a station's events).
async fn fill(s: &TestServer, key: &str, parent: &str, prefix: &str, n: usize) {
    let batch: Vec<Value> = children(prefix, n)
        .iter()
        .map(|c| link("ravi", parent, c))
        .collect();
    let (status, body) = s.events(key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let applied = body["results"]
        .as_array()
        .is_some_and(|r| r.iter().all(|r| r["status"] == "applied"));
    assert!(applied, "{body}");
}

async fn create_bill(s: &TestServer, token: &str, bill: Value) {
    let (status, body) = s.post_json(token, "/api/v1/bills", &bill).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The CSRF token of the page shown.
async fn csrf_of(b: &Browser) -> String {
    b.js("return document.querySelector('input[name=csrf]').value;")
        .await
        .as_str()
        .expect("the page's token")
        .to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------ (a) a bill from start to close

async fn biller_makes_fills_and_closes_a_bill(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let key = warehouse(&s).await;
    // Parents with children, linked through the API first.
    fill(&s, &key, "SB00001", "A", 30).await;
    fill(&s, &key, "SB00002", "B", 12).await;
    fill(&s, &key, "SB00003", "C", 5).await;
    let Some(mut b) = Browser::open(&s, "bills").await else {
        return;
    };

    let seen = b.log_in("bina", PASSWORD).await;
    assert_eq!(seen["path"], "/console/", "{seen}");
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Bills", "Notifications"]),
        "{seen}"
    );
    b.click(".menu a[href='/console/bills']").await;
    let seen = b.page("bills-empty").await;
    assert_eq!(seen["h1"], "Bills", "{seen}");
    let mine = look(&b).await;
    assert_eq!(
        text(&mine, "no_bills"),
        "There are no bills yet. Make the first one with the form."
    );

    // A new bill, its code typed in lower case.
    b.type_into("#code", " b-2001 ").await;
    b.type_into("#capacity", "4").await;
    b.type_into("#destination", "Kolkata").await;
    b.type_into("#vehicle_number", "WB 01 AB 1234").await;
    b.type_into("#description", "Rice, 2nd lot").await;
    b.submit("#new-bill-form").await;
    b.wait_page("the new bill's page", |v| v["h1"] == "Bill B-2001 New")
        .await;
    let seen = b.page("bill-new").await;
    assert_eq!(seen["path"], "/console/bills/B-2001?note=bill_created");
    assert_eq!(
        text(&seen, "notice"),
        "The bill is made. Now put parent bags on it."
    );
    let mine = look(&b).await;
    assert_eq!(mine["parents"], "0 of 4", "{mine}");
    assert_eq!(mine["children"], "0");
    assert_eq!(mine["progress"], json!([0, 4]));
    assert!(
        text(&mine, "details").contains("Kolkata")
            && text(&mine, "details").contains("WB 01 AB 1234")
            && text(&mine, "details").contains("by bina"),
        "{mine}"
    );

    // Parent bags on it, scanned (typed) into the form.
    for (parent, count) in [("SB00001", "1 of 4"), ("sb00002", "2 of 4")] {
        b.type_into("#parent", parent).await;
        b.submit("#add-parent-form").await;
        wait_look(&mut b, "a parent on the bill", |v| {
            text(v, "path").ends_with("note=parent_added") && v["parents"] == count
        })
        .await;
    }
    let seen = b.page("bill-two-parents").await;
    assert_eq!(text(&seen, "notice"), "The parent bag is on the bill.");
    let mine = look(&b).await;
    assert_eq!(mine["status"], "In progress", "{mine}");
    assert_eq!(mine["parents"], "2 of 4");
    assert_eq!(mine["children"], "42", "30 + 12 children: {mine}");
    assert_eq!(mine["actual"], "42 kg", "1 kg a child: {mine}");
    assert_eq!(mine["expected"], "60 kg", "2 parents of 30: {mine}");
    assert_eq!(mine["progress"], json!([2, 4]));
    assert_eq!(
        strings(&mine["parent_rows"]),
        [
            "SB00001 30 of 30 Full 30 kg Take off",
            "SB00002 12 of 30 12 kg Take off"
        ]
    );
    assert_eq!(
        strings(&mine["parent_links"]),
        ["/console/bags/SB00001", "/console/bags/SB00002"]
    );

    // Refusals, in plain words, with the code kept in the field.
    for (code, why) in [
        ("SB00001", "SB00001 is already on bill B-2001."),
        ("A0001", "A0001 is a child bag. Scan a parent bag."),
        (
            "SB09999",
            "There is no bag SB09999. Fill it with child bags first.",
        ),
    ] {
        b.type_into("#parent", code).await;
        b.submit("#add-parent-form").await;
        let mine = wait_look(&mut b, why, |v| text(v, "error") == why).await;
        assert_eq!(mine["parents"], "2 of 4", "nothing changed: {mine}");
        let kept = b
            .js("return document.querySelector('#parent').value;")
            .await;
        assert_eq!(kept, code);
    }
    b.page("bill-parent-refused").await;

    // The dashboard lists it among the bills in progress.
    b.visit("/console/").await;
    let seen = b.page("dashboard-with-bill").await;
    let bills = seen["bills"].to_string();
    assert!(
        bills.contains("B-2001") && bills.contains("2 of 4") && bills.contains("Kolkata"),
        "{seen}"
    );

    // Change the details; take a parent off; a third one on.
    b.visit("/console/bills/B-2001").await;
    b.wait_page("the bill again", |v| {
        text(v, "h1").starts_with("Bill B-2001")
    })
    .await;
    b.click("details.edit summary").await;
    b.type_into("#e-vehicle", "WB 02 CD 5678").await;
    b.type_into("#e-capacity", "3").await;
    b.submit("#details-form").await;
    b.wait_page("details saved", |v| {
        text(v, "path").ends_with("note=bill_saved")
    })
    .await;
    let mine = look(&b).await;
    assert_eq!(text(&mine, "notice"), "The bill's details are saved.");
    assert!(text(&mine, "details").contains("WB 02 CD 5678"), "{mine}");
    assert_eq!(mine["parents"], "2 of 3");

    b.click("button[data-remove='SB00002']").await;
    b.wait_page("a parent off", |v| {
        text(v, "path").ends_with("note=parent_removed")
    })
    .await;
    let mine = look(&b).await;
    assert_eq!(text(&mine, "notice"), "The parent bag is off the bill.");
    assert_eq!(mine["parents"], "1 of 3");
    assert_eq!(mine["children"], "30");
    b.type_into("#parent", "SB00003").await;
    b.submit("#add-parent-form").await;
    let mine = wait_look(&mut b, "the third parent on", |v| {
        text(v, "path").ends_with("note=parent_added")
    })
    .await;
    assert_eq!(mine["parents"], "2 of 3");
    assert_eq!(mine["children"], "35");
    assert_eq!(mine["actual"], "35 kg");
    assert_eq!(mine["expected"], "60 kg");

    // Closing early needs a reason.
    b.submit("#close-form").await;
    let mine = wait_look(&mut b, "close refused", |v| !v["error"].is_null()).await;
    assert_eq!(
        text(&mine, "error"),
        "Bill B-2001 has 2 of 3 parent bags. Give a reason to close it early."
    );
    b.page("bill-close-refused").await;
    b.type_into("#reason", "The truck leaves early").await;
    b.submit("#close-form").await;
    b.wait_page("closed", |v| text(v, "path").ends_with("note=bill_closed"))
        .await;
    let seen = b.page("bill-closed").await;
    assert_eq!(text(&seen, "notice"), "The bill is closed.");
    let mine = look(&b).await;
    assert_eq!(mine["status"], "Closed");
    assert!(
        text(&mine, "details").contains("The truck leaves early"),
        "{mine}"
    );
    assert_eq!(mine["close_form"], false);
    assert_eq!(mine["reopen_form"], false, "billers cannot reopen");
    assert_eq!(
        text(&mine, "reopen_admins"),
        "Only an admin can reopen a closed bill."
    );

    // A biller's reopen, sent anyway: the 403 page, and the bill stays closed.
    let cookie = b.session_cookie().await;
    let csrf = csrf_of(&b).await;
    let resp = plain_http()
        .post(s.url("/console/bills/B-2001/reopen"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, bill) = s.get(&s.admin_token, "/api/v1/bills/B-2001").await;
    assert_eq!(bill["status"], "closed", "{bill}");
    b.assert_clean_console().await;

    // An admin reopens it.
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/bills/B-2001").await;
    let mine = wait_look(&mut b, "the admin sees the closed bill", |v| {
        v["reopen_form"] == true
    })
    .await;
    assert_eq!(mine["status"], "Closed");
    b.submit("#reopen-form").await;
    b.wait_page("reopened", |v| {
        text(v, "path").ends_with("note=bill_reopened")
    })
    .await;
    let seen = b.page("bill-reopened").await;
    assert_eq!(text(&seen, "notice"), "The bill is open again.");
    let mine = look(&b).await;
    assert_eq!(mine["status"], "In progress", "{mine}");
    assert_eq!(mine["close_form"], true);

    // A tablet held upright.
    b.set_window(820, 1180).await;
    b.visit("/console/bills/B-2001").await;
    b.page("bill-tablet").await;
    b.set_window(1366, 768).await;
    b.assert_clean_console().await;
}
on_each_backend!(biller_makes_fills_and_closes_a_bill);

// ------------------------------------------------------------ (b) the dispatch sheet

async fn dispatch_sheet_prints_without_the_menu(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let key = warehouse(&s).await;
    fill(&s, &key, "SB00011", "D", 30).await;
    fill(&s, &key, "SB00012", "E", 17).await;
    let bina = s.login("bina", None).await;
    create_bill(
        &s,
        &bina,
        json!({"code": "DS/2026/7", "capacity": 2, "destination": "Kanpur",
               "vehicle_number": "UP 32 CD 5678", "description": "Sugar"}),
    )
    .await;
    for parent in ["SB00011", "SB00012"] {
        let result = s.event(&key, bill_add("bina", "DS/2026/7", parent)).await;
        assert_eq!(result["status"], "applied", "{result}");
    }
    let Some(mut b) = Browser::open(&s, "sheet").await else {
        return;
    };
    b.log_in("bina", PASSWORD).await;

    // From the list to the bill (a "/" in its code) to its sheet.
    b.visit("/console/bills").await;
    b.page("bill-list").await;
    b.click("#bills a").await;
    let mine = wait_look(&mut b, "the bill with a slash in its code", |v| {
        v["h1"] == "Bill DS/2026/7 Ready to close"
    })
    .await;
    assert_eq!(mine["path"], "/console/bills/DS%2F2026%2F7", "{mine}");
    b.click("#sheet-link").await;
    b.wait_page("the dispatch sheet", |v| {
        text(v, "path").ends_with("/sheet")
    })
    .await;
    let seen = b.page("sheet").await;
    assert_eq!(seen["h1"], "Bill DS/2026/7", "{seen}");
    assert_eq!(seen["qr"], true, "the QR code is an SVG: {seen}");
    let mine = look(&b).await;
    assert_eq!(mine["qr_svg"], true, "the SVG draws something: {mine}");
    let facts = text(&mine, "sheet_facts");
    assert!(
        facts.contains("Destination Kanpur")
            && facts.contains("Vehicle UP 32 CD 5678")
            && facts.contains("Date ")
            && facts.contains("Sugar"),
        "{mine}"
    );
    assert_eq!(
        strings(&mine["sheet_parents"]),
        ["1 SB00011 30 30 kg", "2 SB00012 17 17 kg"]
    );
    assert_eq!(text(&mine, "sheet_total"), "2 of 2 parent bags 47 47 kg");
    assert_eq!(
        text(&mine, "sheet_weights"),
        "Actual weight 47 kg Expected weight 60 kg"
    );
    assert_eq!(
        strings(&mine["signatures"]),
        ["Loaded by", "Driver", "Checked by"]
    );
    assert_eq!(mine["top_display"], "flex", "the menu shows on screen");

    // The Print button is hooked by console.js (no inline script).
    b.js("window.print = () => { window.printed = true; }; return null;")
        .await;
    b.click("#print").await;
    assert_eq!(b.js("return window.printed === true;").await, true);

    // On paper: no menu, no buttons.
    b.call(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": "print"}})),
    )
    .await;
    let mine = look(&b).await;
    assert_eq!(
        mine["top_display"], "none",
        "the menu is not printed: {mine}"
    );
    assert_eq!(mine["print_shown"], false, "nor the Print button: {mine}");
    b.shot("sheet-as-printed").await;
    b.call(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": ""}})),
    )
    .await;
    assert_eq!(look(&b).await["top_display"], "flex");
    b.assert_clean_console().await;
}
on_each_backend!(dispatch_sheet_prints_without_the_menu);

// ------------------------------------------------------------ (c) the end-of-day summary

/// The day a moment falls on in the warehouse, `YYYY-MM-DD`.
fn day_of(s: &TestServer) -> String {
    traitortrack_server::counters::day_of(s.clock.now().time(), s.settings.utc_offset).to_string()
}

async fn close(s: &TestServer, token: &str, bill: &str, reason: Option<&str>) {
    let (status, body) = s
        .post_json(
            token,
            &format!("/api/v1/bills/{bill}/close"),
            &json!({ "reason": reason }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn summary_page_and_api_agree(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let key = warehouse(&s).await;
    let bina = s.login("bina", None).await;
    for (parent, prefix, n) in [
        ("SB00021", "F", 30),
        ("SB00022", "G", 20),
        ("SB00023", "H", 10),
        ("SB00024", "J", 7),
    ] {
        fill(&s, &key, parent, prefix, n).await;
    }

    // Day one: bina makes X with one full parent.
    let day_one = day_of(&s);
    create_bill(&s, &bina, json!({"code": "X-1", "capacity": 2})).await;
    let r = s.event(&key, bill_add("bina", "X-1", "SB00021")).await;
    assert_eq!(r["status"], "applied", "{r}");

    // Day two: bina closes X early, makes Y and closes it full; the admin
    // makes Z (one parent on it) and W (none).
    s.clock.advance(time::Duration::days(1));
    let day_two = day_of(&s);
    assert_ne!(day_one, day_two);
    // Logins of day one have ended.
    let bina = s.login("bina", None).await;
    let admin = s.login("admin", None).await;
    s.login("bina", Some(&key)).await;
    s.login("admin", Some(&key)).await;
    close(&s, &bina, "X-1", Some("Half a load today")).await;
    create_bill(&s, &bina, json!({"code": "Y-1", "capacity": 1})).await;
    let r = s.event(&key, bill_add("bina", "Y-1", "SB00022")).await;
    assert_eq!(r["status"], "applied", "{r}");
    close(&s, &bina, "Y-1", None).await;
    create_bill(&s, &admin, json!({"code": "Z-1", "capacity": 3})).await;
    let r = s.event(&key, bill_add("admin", "Z-1", "SB00023")).await;
    assert_eq!(r["status"], "applied", "{r}");
    create_bill(&s, &admin, json!({"code": "W-1", "capacity": 5})).await;

    // What the test did on day two: created Y, Z, W; closed X, Y.
    // Parents now: X 1 (30 children), Y 1 (20), Z 1 (10), W 0.
    let (status, api) = s
        .get(&bina, &format!("/api/v1/bills/summary?date={day_two}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{api}");
    assert_eq!(api["date"], day_two.as_str());
    let totals = &api["totals"];
    assert_eq!(totals["bills_created"], 3, "{api}");
    assert_eq!(totals["bills_closed"], 2, "{api}");
    assert_eq!(
        totals["by_status"],
        json!({"new": 1, "in_progress": 1, "ready": 0, "closed": 2})
    );
    assert_eq!(totals["parent_bags"], 3);
    assert_eq!(totals["child_bags"], 60);
    assert_eq!(totals["actual_weight_kg"], 60.0);
    assert_eq!(totals["expected_weight_kg"], 90.0);
    let billers = api["billers"].as_array().expect("billers");
    assert_eq!(billers.len(), 2, "{api}");
    assert_eq!(billers[0]["biller"], "admin");
    assert_eq!(billers[0]["totals"]["bills_created"], 2);
    assert_eq!(billers[0]["totals"]["bills_closed"], 0);
    assert_eq!(billers[0]["totals"]["child_bags"], 10);
    assert_eq!(billers[1]["biller"], "bina");
    assert_eq!(billers[1]["totals"]["bills_created"], 1);
    assert_eq!(billers[1]["totals"]["bills_closed"], 2);
    assert_eq!(billers[1]["totals"]["parent_bags"], 2);
    assert_eq!(billers[1]["totals"]["child_bags"], 50);
    let codes: Vec<&str> = api["bills"]
        .as_array()
        .expect("bills")
        .iter()
        .map(|b| b["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["W-1", "X-1", "Y-1", "Z-1"]);

    // Day one: X only, created then (and closed since).
    let (_, first) = s
        .get(&bina, &format!("/api/v1/bills/summary?date={day_one}"))
        .await;
    assert_eq!(first["totals"]["bills_created"], 1, "{first}");
    assert_eq!(first["totals"]["bills_closed"], 0);
    assert_eq!(first["totals"]["by_status"]["closed"], 1);
    assert_eq!(first["totals"]["child_bags"], 30);

    // A dispatcher is refused; a bad date is a plain 400.
    let ravi = s.login("ravi", None).await;
    let (status, body) = s.get(&ravi, "/api/v1/bills/summary").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = s.get(&bina, "/api/v1/bills/summary?date=31-12-2026").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_date");

    // The page shows the same numbers.
    let Some(mut b) = Browser::open(&s, "summary").await else {
        return;
    };
    b.log_in("bina", PASSWORD).await;
    b.visit("/console/bills").await;
    b.click("#summary-link").await;
    let seen = b
        .wait_page("today's summary", |v| v["h1"] == "End-of-day summary")
        .await;
    assert_eq!(seen["path"], "/console/bills/summary");
    let mine = look(&b).await;
    assert_eq!(
        mine["figures"]["bills_created"], "3",
        "today is day two: {mine}"
    );
    b.visit(&format!("/console/bills/summary?date={day_two}"))
        .await;
    b.page("summary-day-two").await;
    let mine = look(&b).await;
    let n = |v: &Value| v.as_i64().expect("a count").to_string();
    let kg = |v: &Value| format!("{} kg", v.as_f64().expect("a weight"));
    let figures = &mine["figures"];
    assert_eq!(figures["bills_created"], n(&totals["bills_created"]));
    assert_eq!(figures["bills_closed"], n(&totals["bills_closed"]));
    assert_eq!(figures["parents"], n(&totals["parent_bags"]));
    assert_eq!(figures["children"], n(&totals["child_bags"]));
    assert_eq!(figures["actual"], kg(&totals["actual_weight_kg"]));
    assert_eq!(figures["expected"], kg(&totals["expected_weight_kg"]));
    for status in ["new", "in_progress", "ready", "closed"] {
        assert_eq!(
            figures[status],
            n(&totals["by_status"][status]),
            "{status}: {mine}"
        );
    }
    assert_eq!(
        strings(&mine["billers"]),
        [
            "admin 2 0 1 1 0 0 1 10 10 kg 30 kg",
            "bina 1 2 0 0 0 2 2 50 50 kg 60 kg"
        ]
    );
    assert_eq!(
        strings(&mine["day_bills"]),
        [
            "W-1 Created New admin 0 of 5 0 0 kg 0 kg",
            "X-1 Closed Closed bina 1 of 2 30 30 kg 30 kg",
            "Y-1 Created and closed Closed bina 1 of 1 20 20 kg 30 kg",
            "Z-1 Created In progress admin 1 of 3 10 10 kg 30 kg",
        ]
    );

    // The day before, through the form's link.
    b.click("#previous-day").await;
    let mine = wait_look(&mut b, "day one", |v| {
        text(v, "path") == format!("/console/bills/summary?date={day_one}")
    })
    .await;
    assert_eq!(mine["figures"]["bills_created"], "1", "{mine}");
    assert_eq!(mine["figures"]["children"], "30");
    b.page("summary-day-one").await;

    // A date that is no date: said plainly, today shown instead.
    b.visit("/console/bills/summary?date=31-12-2026").await;
    let seen = b.page("summary-bad-date").await;
    assert_eq!(
        text(&seen, "error"),
        "Give the date as YYYY-MM-DD (like 2026-03-31), not \"31-12-2026\"."
    );
    b.assert_clean_console().await;
}
on_each_backend!(summary_page_and_api_agree);

// ------------------------------------------------------------ (d) the list, refusals, dispatchers

async fn list_filters_refusals_and_dispatchers(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(settings(&url)).await;
    let key = warehouse(&s).await;
    fill(&s, &key, "SB00031", "K", 3).await;
    let bina = s.login("bina", None).await;
    // 55 bills of the admin's to Kanpur, 2 of bina's to Kolkata (one in progress).
    for i in 1..=55 {
        create_bill(
            &s,
            &s.admin_token,
            json!({"code": format!("L-{i:03}"), "capacity": 2, "destination": "Kanpur"}),
        )
        .await;
    }
    for code in ["K-001", "K-002"] {
        create_bill(
            &s,
            &bina,
            json!({"code": code, "capacity": 2, "destination": "Kolkata Port"}),
        )
        .await;
    }
    let r = s.event(&key, bill_add("bina", "K-002", "SB00031")).await;
    assert_eq!(r["status"], "applied", "{r}");

    let Some(mut b) = Browser::open(&s, "bill-list").await else {
        return;
    };
    b.log_in("bina", PASSWORD).await;

    // Keyset pages of 50, in code order.
    b.visit("/console/bills").await;
    b.page("bills-first-page").await;
    let mine = look(&b).await;
    let list = strings(&mine["list"]);
    assert_eq!(list.len(), 50, "{mine}");
    assert!(
        list[0].starts_with("K-001 New") && list[0].contains("Kolkata Port"),
        "{list:?}"
    );
    assert!(list[49].starts_with("L-048 "), "{list:?}");
    assert_eq!(mine["next_page"], "/console/bills?cursor=L-048");
    b.click("#next-page").await;
    let mine = wait_look(&mut b, "the second page", |v| v["first_page"] == true).await;
    let list = strings(&mine["list"]);
    assert_eq!(list.len(), 7, "{mine}");
    assert!(list[0].starts_with("L-049 "), "{list:?}");
    assert!(mine["next_page"].is_null());

    // Filters: they combine and stay in the address.
    b.visit("/console/bills").await;
    b.type_into("#f-destination", "kolkata").await;
    b.click("#filter-form button[type=submit]").await;
    let mine = wait_look(&mut b, "bills to Kolkata", |v| {
        text(v, "path").contains("destination=kolkata")
    })
    .await;
    assert_eq!(strings(&mine["list"]).len(), 2, "{mine}");
    b.js("document.querySelector('#f-status').value = 'in_progress'; return null;")
        .await;
    b.click("#filter-form button[type=submit]").await;
    let mine = wait_look(&mut b, "in progress to Kolkata", |v| {
        text(v, "path").contains("status=in_progress")
    })
    .await;
    let list = strings(&mine["list"]);
    assert_eq!(list.len(), 1, "{mine}");
    assert!(
        list[0].starts_with("K-002 In progress") && list[0].contains("1 of 2"),
        "{list:?}"
    );
    b.page("bills-filtered").await;
    for (query, want) in [
        ("code=l-05", 6),
        ("biller=bina", 2),
        ("biller=admin&code=L-00", 9),
        ("status=closed", 0),
    ] {
        b.visit(&format!("/console/bills?{query}")).await;
        let mine = wait_look(&mut b, query, |v| v["h1"] == "Bills").await;
        assert_eq!(strings(&mine["list"]).len(), want, "{query}: {mine}");
    }
    let mine = look(&b).await;
    assert_eq!(text(&mine, "no_bills"), "No bills match these filters.");
    let today = day_of(&s);
    b.visit(&format!("/console/bills?from={today}&to={today}&code=K"))
        .await;
    let mine = wait_look(&mut b, "made today", |v| v["h1"] == "Bills").await;
    assert_eq!(strings(&mine["list"]).len(), 2, "{mine}");
    b.visit("/console/bills?from=2020-01-02&to=2020-01-01")
        .await;
    let mine = wait_look(&mut b, "a range backwards", |v| v["h1"] == "Bills").await;
    assert!(strings(&mine["list"]).is_empty(), "{mine}");
    let said = b
        .js("return document.querySelector('#filter-error').textContent;")
        .await;
    assert_eq!(
        said,
        "The last day (2020-01-01) is before the first day (2020-01-02)."
    );

    // Refused "new bill" forms say why and keep what was typed.
    b.visit("/console/bills").await;
    for (code, capacity, why) in [
        ("L-001", "2", "Bill L-001 already exists."),
        (
            "N-1",
            "many",
            "Give the capacity as a whole number of parent bags, from 1 to 50.",
        ),
        (
            "N-1",
            "60",
            "A bill holds from 1 to 50 parent bags here, not 60.",
        ),
    ] {
        b.type_into("#code", code).await;
        b.type_into("#capacity", capacity).await;
        b.type_into("#destination", "Agra").await;
        b.submit("#new-bill-form").await;
        let mine = wait_look(&mut b, why, |v| text(v, "error") == why).await;
        assert_eq!(mine["new_bill"]["code"], code);
        assert_eq!(mine["new_bill"]["capacity"], capacity);
        assert_eq!(mine["new_bill"]["destination"], "Agra");
    }
    b.page("bill-create-refused").await;
    let (_, page) = s.get(&bina, "/api/v1/bills?code=N-1").await;
    assert_eq!(page["items"], json!([]), "nothing was made: {page}");

    // A page of a bill that does not exist.
    b.visit("/console/bills/NO-SUCH-BILL").await;
    let seen = b.page("bill-not-found").await;
    assert_eq!(seen["h1"], "Not found", "{seen}");
    assert_eq!(text(&seen, "refusal"), "There is no bill NO-SUCH-BILL.");
    b.assert_clean_console().await;

    // A dispatcher: no Bills menu, and the 403 page on every bills page.
    b.visit("/console/").await;
    b.click("#logout").await;
    b.wait_page("logged out", |v| v["h1"] == "Log in").await;
    let seen = b.log_in("ravi", PASSWORD).await;
    assert_eq!(
        seen["nav"],
        json!(["Dashboard", "Bags", "Notifications"]),
        "{seen}"
    );
    for path in [
        "/console/bills",
        "/console/bills/K-002",
        "/console/bills/K-002/sheet",
        "/console/bills/summary",
    ] {
        b.visit(path).await;
        let seen = b.page(&format!("dispatcher-{path}")).await;
        assert_eq!(seen["h1"], "Not for your account", "{path}: {seen}");
        assert_eq!(
            text(&seen, "refusal"),
            "A dispatcher cannot open the bills pages (they are for billers and admins).",
            "{path}"
        );
    }
    let cookie = b.session_cookie().await;
    b.visit("/console/").await;
    let csrf = csrf_of(&b).await;
    let resp = plain_http()
        .post(s.url("/console/bills"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("code", "D-1"), ("capacity", "2")])
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, page) = s.get(&bina, "/api/v1/bills?code=D-1").await;
    assert_eq!(page["items"], json!([]), "nothing was made: {page}");
    b.assert_clean_console().await;
}
on_each_backend!(list_filters_refusals_and_dispatchers);
