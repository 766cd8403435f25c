//! The console's Imports page and the lists' download buttons, in a real
//! browser (headless Chromium through chromedriver) against a real server,
//! on each database.
//!
//! - An admin checks a generated child -> parent XLSX first (the counts and
//!   the first refused rows show, nothing changes), then imports it: the
//!   import's page follows it to 100% with the counts, the result files
//!   download and read back (calamine), and the bags are in the database.
//! - Bad files get a refusal in plain words on the page: not a
//!   spreadsheet, empty, too large, the wrong layout.
//! - Dispatchers and billers are refused the Imports pages and have no menu
//!   entry; the export buttons show only to roles the export lets in.
//! - The bags list's "Download CSV" carries the list's filters: the file's
//!   rows are the filter's bags in the database; the audit log's too.
//!
//! Every page looked at is checked for its style sheet and for running wider
//! than the window, and saved under `$CARGO_TARGET_DIR/console-screens/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx};
use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_server::config::Settings;
use traitortrack_tests::console_browser::{plain_http, text, Browser};
use traitortrack_tests::sheets::xlsx;
use traitortrack_tests::webdriver::WAIT;
use traitortrack_tests::{fresh_url, on_each_backend, settings, Backend, TestServer, PASSWORD};

/// The largest file the test server takes: 1 MB.
const MAX_BYTES: u64 = 1024 * 1024;

/// What the imports pages show.
const IMPORTS_LOOK: &str = r#"
const q = (s) => document.querySelector(s);
const shown = (e) => !!e && e.getClientRects().length > 0;
const txt = (s) => { const e = q(s); return shown(e) ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
const rows = (s) => Array.from(document.querySelectorAll(s)).filter(shown).map((r) => r.innerText.trim().replace(/\s+/g, ' '));
const run = q('#import-run');
const figure = (name) => { const e = run && run.querySelector(`[data-run="${name}"]`); return e ? e.textContent.trim() : null; };
return {
  ready: document.readyState,
  path: location.pathname + location.search,
  h1: txt('h1'),
  refusal: txt('#refusal-message'),
  nav: rows('.menu a'),
  form: !!q('#import-form'),
  error: txt('#import-error'),
  help: shown(q('#import-help')),
  run: shown(run),
  state: run ? run.dataset.state : null,
  mode: run ? run.dataset.runMode : null,
  id: run ? run.dataset.import : null,
  heading: shown(run) ? q('#run-heading').innerText.trim().replace(/\s+/g, ' ') : null,
  messages: run ? rows('#run-message > p') : [],
  percent: figure('percent'),
  numbers: shown(q('#import-run .run-numbers')),
  bar: run ? q('#import-run progress').value : null,
  rows_done: figure('rows_done'),
  counts: run ? { created: figure('created'), linked: figure('linked'), already_there: figure('already_there'), refused: figure('refused') } : null,
  problems: rows('#problems tbody tr'),
  xlsx: shown(q('#result-xlsx')) ? q('#result-xlsx').getAttribute('href') : null,
  csv: shown(q('#result-csv')) ? q('#result-csv').getAttribute('href') : null,
  buttons_off: Array.from(document.querySelectorAll('#import-form button')).map((b) => b.disabled),
  imports: rows('#imports tbody tr'),
  download_csv: q('#download-csv') ? q('#download-csv').getAttribute('href') : null,
  download_xlsx: q('#download-xlsx') ? q('#download-xlsx').getAttribute('href') : null,
};
"#;

async fn look(b: &mut Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    b.wait_until(what, WAIT, IMPORTS_LOOK, |v| {
        v["ready"] == "complete" && ok(v)
    })
    .await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// A folder of this test's own, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "tt-console-imports-{name}-{}",
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Folder(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write a test file");
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn import_settings(url: &str, dir: &Folder) -> Settings {
    let mut s = settings(url);
    s.import_dir = dir.0.join("results");
    s.import_max_bytes = MAX_BYTES;
    s
}

/// Parents of the second sheet, each with 25 children; SB10005 gets 30 and is full.
const PARENTS: u32 = 120;
const FULL_PARENT: u32 = 5;

fn children_of_parent(p: u32) -> u32 {
    if p == FULL_PARENT {
        30
    } else {
        25
    }
}

/// A child -> parent workbook as the warehouses keep them. Sheet "Lot 1":
/// 12 children of SB00101, 10 of SB00102, an unreadable label (refused),
/// one child of M444-00103, and a child with no parent row after it
/// (refused). Sheet "Lot 2": SB10001 to SB10120 with their children.
fn child_parent_sheet() -> Vec<u8> {
    let mut owned: Vec<Vec<String>> = vec![vec!["Sr. No.".into(), "Label No.".into()]];
    let child = |n: usize, code: String| vec![n.to_string(), format!("LABEL NO.{code}")];
    for i in 1..=12 {
        owned.push(child(i, format!("{:07}", 2_000_000 + i)));
    }
    owned.push(vec!["Parent Code".into(), "SB00101".into()]);
    for i in 1..=10 {
        owned.push(child(i, format!("{:07}", 2_000_100 + i)));
    }
    owned.push(vec!["Parent Code".into(), "SB00102".into()]);
    owned.push(vec!["1".into(), "LABEL NO.K0001".into()]); // row 26: no digits
    owned.push(child(2, "2000201".into()));
    owned.push(vec!["Parent Code".into(), "M444-00103".into()]);
    owned.push(child(1, "2000301".into())); // row 29: no parent row follows
    let mut lot2: Vec<Vec<String>> = vec![vec!["Sr. No.".into(), "Label No.".into()]];
    for p in 1..=PARENTS {
        for c in 1..=children_of_parent(p) {
            lot2.push(vec![
                c.to_string(),
                format!("LABEL NO.{:07}", 3_000_000 + p * 100 + c),
            ]);
        }
        lot2.push(vec!["Parent Code".into(), format!("SB1{p:04}")]);
    }
    fn borrow(rows: &[Vec<String>]) -> Vec<Vec<&str>> {
        rows.iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect()
    }
    xlsx(&[("Lot 1", borrow(&owned)), ("Lot 2", borrow(&lot2))])
}

/// Rows of the workbook and what becomes of them.
const CREATED: u64 = 3 + PARENTS as u64;
const LINKED: u64 = 23 + 25 * (PARENTS as u64 - 1) + 30;
const REFUSED: u64 = 2;

/// Chooses a file in a file field (WebDriver sends its path).
async fn choose_file(b: &Browser, css: &str, path: &Path) {
    let id = b.find(css).await;
    b.call(
        reqwest::Method::POST,
        &format!("/element/{id}/value"),
        Some(json!({ "text": path.display().to_string() })),
    )
    .await;
}

async fn count(s: &TestServer, sql: &str) -> i64 {
    traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(sql)
        .fetch_one(c)
        .await)
    .expect("count")
}

async fn codes(s: &TestServer, sql: &str) -> BTreeSet<String> {
    let found: Vec<String> = traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(sql)
        .fetch_all(c)
        .await)
    .expect("codes");
    found.into_iter().collect()
}

/// Downloads a console link with the browser's login: status, content type, bytes.
async fn fetch(s: &TestServer, cookie: &str, href: &str) -> (StatusCode, String, Vec<u8>) {
    let resp = plain_http()
        .get(s.url(href))
        .header("cookie", cookie)
        .send()
        .await
        .expect("download");
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, resp.bytes().await.expect("body").to_vec())
}

/// A CSV file's rows as named fields.
fn csv_records(bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().expect("a header row").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

// ------------------------------------------------------------ (a) check, then import

async fn an_admin_checks_then_imports_a_sheet(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let dir = Folder::new("sheet");
    let s = TestServer::start_with(import_settings(&url, &dir)).await;
    let sheet = dir.file("lots.xlsx", &child_parent_sheet());
    let Some(mut b) = Browser::open(&s, "imports").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;

    // The menu leads to the page: the form, the help, no imports yet.
    let home = look(&mut b, "the dashboard", |v| v["path"] == "/console/").await;
    assert!(
        strings(&home["nav"]).contains(&"Imports".to_string()),
        "{home}"
    );
    b.click(".menu a[href='/console/imports']").await;
    let seen = look(&mut b, "the imports page", |v| v["h1"] == "Imports").await;
    assert_eq!(seen["form"], true, "{seen}");
    assert_eq!(seen["help"], true, "{seen}");
    assert_eq!(
        seen["run"], false,
        "no run panel before a file is sent: {seen}"
    );
    assert!(
        seen["imports"].as_array().is_some_and(Vec::is_empty),
        "{seen}"
    );
    b.page("imports-empty").await;

    // Nothing chosen: said in plain words, nothing sent.
    b.click("#preview-button").await;
    let seen = look(&mut b, "no layout chosen", |v| !v["error"].is_null()).await;
    assert_eq!(
        text(&seen, "error"),
        "Say what is in the file first: choose one of the four kinds in step 1."
    );
    b.click("#kind-child-parent").await;
    b.click("#preview-button").await;
    let seen = look(&mut b, "no file chosen", |v| {
        text(v, "error") == "Choose the file first (step 2)."
    })
    .await;
    assert_eq!(seen["run"], false, "{seen}");

    // Check first: the counts and the first refused rows; nothing changes.
    choose_file(&b, "#import-file", &sheet).await;
    b.click("#preview-button").await;
    let checked = look(&mut b, "the check's outcome", |v| {
        v["state"] == "done" && v["mode"] == "preview"
    })
    .await;
    assert!(checked["error"].is_null(), "{checked}");
    assert_eq!(checked["run"], true, "{checked}");
    assert_eq!(checked["help"], false, "{checked}");
    let want_counts = json!({
        "created": CREATED.to_string(),
        "linked": grouped(LINKED),
        "already_there": "0",
        "refused": REFUSED.to_string(),
    });
    assert_eq!(checked["counts"], want_counts, "{checked}");
    assert_eq!(checked["percent"], "100", "{checked}");
    assert_eq!(checked["bar"], 100, "{checked}");
    let messages = strings(&checked["messages"]).join(" | ");
    assert!(
        messages.contains("The check is done and nothing was changed")
            && messages.contains("Some rows were refused"),
        "{messages}"
    );
    assert!(text(&checked, "heading").contains("Checked"), "{checked}");
    let problems = strings(&checked["problems"]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("Lot 1 26 "), "{problems:?}");
    assert!(
        problems[1].starts_with("Lot 1 29 2000301") && problems[1].contains("no parent row"),
        "{problems:?}"
    );
    assert_eq!(
        checked["buttons_off"],
        json!([false, false]),
        "the buttons work again: {checked}"
    );
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM bags").await,
        0,
        "a check changes nothing"
    );
    let preview_id: i64 = text(&checked, "id").parse().expect("the check's id");
    assert_eq!(
        text(&checked, "xlsx"),
        format!("/api/v1/imports/{preview_id}/result.xlsx")
    );
    b.page("imports-checked").await;

    // Import: on to the import's page, which follows it to its end.
    b.click("#import-button").await;
    let done = look(&mut b, "the import's page at its end", |v| {
        v["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/console/imports/"))
            && v["state"] == "done"
    })
    .await;
    let id: i64 = text(&done, "id").parse().expect("the import's id");
    assert_eq!(done["path"], format!("/console/imports/{id}"));
    assert_eq!(done["h1"], format!("Import {id}"));
    assert_eq!(done["mode"], "apply", "{done}");
    assert_eq!(done["percent"], "100", "{done}");
    assert_eq!(done["numbers"], true, "{done}");
    assert_eq!(done["bar"], 100, "{done}");
    assert_eq!(done["counts"], want_counts, "{done}");
    let messages = strings(&done["messages"]).join(" | ");
    assert!(
        messages.contains("The import is done.") && messages.contains("Some rows were refused"),
        "{messages}"
    );
    assert_eq!(strings(&done["problems"]).len(), 2, "{done}");
    b.page("import-done").await;

    // The database has the bags and links, as the counts say.
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM bags WHERE kind = 'parent'").await,
        CREATED as i64
    );
    assert_eq!(count(&s, "SELECT COUNT(*) FROM links").await, LINKED as i64);
    assert_eq!(s.children_of("SB00101").await.len(), 12);
    assert_eq!(s.children_of("M444-00103").await, vec!["2000201"]);
    assert_eq!(s.children_of("SB10005").await.len(), 30);
    s.assert_invariants().await;

    // The result files, as the page links them, read back.
    let cookie = b.session_cookie().await;
    let (status, kind, bytes) = fetch(&s, &cookie, text(&done, "xlsx")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{done} {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(kind.contains("spreadsheetml"), "{kind}");
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("an xlsx file");
    let summary = book.worksheet_range("Summary").expect("a summary sheet");
    let cell = |r: &[Data], i: usize| r.get(i).map(ToString::to_string).unwrap_or_default();
    let summary: HashMap<String, String> =
        summary.rows().map(|r| (cell(r, 0), cell(r, 1))).collect();
    assert_eq!(summary["Import"], id.to_string(), "{summary:?}");
    let rows = book.worksheet_range("Rows").expect("a rows sheet");
    let outcomes: Vec<(String, String, String)> = rows
        .rows()
        .skip(1)
        .map(|r| {
            (
                format!("{} {}", cell(r, 0), cell(r, 1)),
                cell(r, 2),
                cell(r, 3),
            )
        })
        .collect();
    assert_eq!(outcomes.len() as u64, CREATED + LINKED + REFUSED);
    let of = |at: &str| outcomes.iter().find(|o| o.0 == at).cloned();
    assert_eq!(
        of("Lot 1 14"),
        Some(("Lot 1 14".into(), "SB00101".into(), "created".into()))
    );
    assert_eq!(
        of("Lot 1 27"),
        Some(("Lot 1 27".into(), "2000201".into(), "linked".into()))
    );
    assert_eq!(of("Lot 1 26").map(|o| o.2), Some("refused".into()));
    let (status, kind, bytes) = fetch(&s, &cookie, text(&done, "csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert_eq!(csv_records(&bytes).len() as u64, CREATED + LINKED + REFUSED);

    // The list: the check and the import, newest first, with their counts.
    b.click("#all-imports").await;
    let list = look(&mut b, "the list of imports", |v| {
        v["imports"].as_array().is_some_and(|r| r.len() == 2)
    })
    .await;
    let lines = strings(&list["imports"]);
    assert!(
        lines[0].starts_with(&format!("Import {id} "))
            && lines[0].contains("lots.xlsx")
            && lines[0].contains("Child bags, then their parent")
            && lines[0].contains(&format!("{CREATED} {} 0 {REFUSED}", grouped(LINKED)))
            && lines[0].contains("Done")
            && lines[0].contains("Excel · CSV"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("Import {preview_id} "))
            && lines[1].contains("Check only")
            && lines[1].contains("Checked"),
        "{lines:?}"
    );
    b.js("document.getElementById('past-heading').scrollIntoView(); return null;")
        .await;
    b.page("imports-list").await;

    // The same file again: every row already there.
    choose_file(&b, "#import-file", &sheet).await;
    b.click("#kind-child-parent").await;
    b.click("#import-button").await;
    let again = look(&mut b, "the second import's end", |v| {
        v["state"] == "done" && v["id"].as_str().is_some_and(|i| i != id.to_string())
    })
    .await;
    assert_eq!(
        again["counts"],
        json!({"created": "0", "linked": "0", "already_there": grouped(CREATED + LINKED), "refused": "2"}),
        "{again}"
    );
    b.assert_clean_console().await;
}
on_each_backend!(an_admin_checks_then_imports_a_sheet);

/// A count as the page writes it.
fn grouped(n: u64) -> String {
    traitortrack_tests::console_browser::grouped(n as i64)
}

// ------------------------------------------------------------ (b) bad files

async fn bad_files_are_refused_in_plain_words(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let dir = Folder::new("bad");
    let s = TestServer::start_with(import_settings(&url, &dir)).await;
    let picture = dir.file(
        "photo.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89",
    );
    let empty = dir.file("empty.csv", b"");
    let big = dir.file("big.csv", &vec![b'7'; (MAX_BYTES + MAX_BYTES / 2) as usize]);
    let sheet = dir.file("lots.xlsx", &child_parent_sheet());
    let Some(mut b) = Browser::open(&s, "imports-bad").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;
    b.visit("/console/imports").await;
    look(&mut b, "the imports page", |v| v["h1"] == "Imports").await;
    b.click("#kind-bags").await;

    // Not a spreadsheet: the server's refusal, on the page.
    choose_file(&b, "#import-file", &picture).await;
    b.click("#import-button").await;
    let seen = look(&mut b, "a picture refused", |v| !v["error"].is_null()).await;
    assert_eq!(
        text(&seen, "error"),
        "This file is not a spreadsheet: import a CSV file or an Excel .xlsx/.xlsm file.",
        "{seen}"
    );
    assert_eq!(seen["run"], false, "{seen}");
    assert_eq!(
        seen["path"], "/console/imports",
        "still on the form: {seen}"
    );
    assert_eq!(seen["buttons_off"], json!([false, false]), "{seen}");
    b.page("imports-not-a-sheet").await;

    // Empty, and too large: said before anything is sent.
    choose_file(&b, "#import-file", &empty).await;
    b.click("#preview-button").await;
    let seen = look(&mut b, "an empty file refused", |v| {
        text(v, "error") == "The file is empty: there is nothing to import."
    })
    .await;
    assert_eq!(seen["run"], false, "{seen}");
    choose_file(&b, "#import-file", &big).await;
    b.click("#import-button").await;
    let seen = look(&mut b, "a big file refused", |v| {
        text(v, "error").starts_with("The file is too large")
    })
    .await;
    assert_eq!(
        text(&seen, "error"),
        "The file is too large (1.5 MB): an import takes at most 1 MB. Split it into smaller files."
    );

    // The server says the same when asked directly, and the refusals
    // changed nothing.
    let cookie = b.session_cookie().await;
    let (status, body) = traitortrack_tests::send(
        s.http
            .post(s.url("/api/v1/imports?kind=bags&file_name=big.csv"))
            .bearer_auth(&s.admin_token)
            .body(std::fs::read(&big).expect("big file")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The file is too large")),
        "{body}"
    );
    assert_eq!(count(&s, "SELECT COUNT(*) FROM imports").await, 0);

    // The wrong layout: the check stops with the reason.
    b.click("#kind-bills").await;
    choose_file(&b, "#import-file", &sheet).await;
    b.click("#preview-button").await;
    let seen = look(&mut b, "the wrong layout", |v| v["state"] == "failed").await;
    let messages = strings(&seen["messages"]).join(" | ");
    assert!(
        messages.contains("This stopped before its end: Row 1 of sheet Lot 1")
            && messages.contains("The first row must name the columns"),
        "{messages}"
    );
    assert!(text(&seen, "heading").contains("Stopped"), "{seen}");
    assert!(
        seen["xlsx"].is_null() && seen["numbers"] == false,
        "no numbers or result file for a file that was not read: {seen}"
    );
    b.page("imports-wrong-layout").await;
    assert_eq!(count(&s, "SELECT COUNT(*) FROM bags").await, 0);

    // The import pages answer a plain page for an import that is not there.
    b.visit("/console/imports/999").await;
    let seen = b.page("import-missing").await;
    assert_eq!(seen["h1"], "Not found", "{seen}");
    let resp = plain_http()
        .get(s.url("/console/imports/abc"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    b.assert_clean_console().await;
}
on_each_backend!(bad_files_are_refused_in_plain_words);

// ------------------------------------------------------------ (c) roles

async fn only_admins_import_and_buttons_follow_the_roles(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let dir = Folder::new("roles");
    let s = TestServer::start_with(import_settings(&url, &dir)).await;
    s.add_user("dora", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/bills",
            &json!({"code": "B-7", "capacity": 5, "destination": "Pune"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s
        .post_json(
            &s.admin_token,
            "/api/v1/bills",
            &json!({"code": "B-8", "capacity": 5, "destination": "Delhi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let Some(mut b) = Browser::open(&s, "imports-roles").await else {
        return;
    };

    for (user, role) in [("dora", "dispatcher"), ("bina", "biller")] {
        b.log_in(user, PASSWORD).await;
        let home = look(&mut b, "the dashboard", |v| v["path"] == "/console/").await;
        assert!(
            !strings(&home["nav"]).contains(&"Imports".to_string()),
            "no Imports entry for a {role}: {home}"
        );
        for path in ["/console/imports", "/console/imports/1"] {
            b.visit(path).await;
            let seen = look(&mut b, "the refusal", |v| !v["refusal"].is_null()).await;
            assert_eq!(seen["h1"], "Not for your account", "{path}: {seen}");
            assert!(
                text(&seen, "refusal").contains("it is for admins"),
                "{path}: {seen}"
            );
        }
        b.page(&format!("imports-refused-{role}")).await;
        let cookie = b.session_cookie().await;
        let resp = plain_http()
            .get(s.url("/console/imports"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role}");

        // No export buttons on the bags list: bags exports are for admins.
        b.visit("/console/bags").await;
        let seen = look(&mut b, "the bags list", |v| v["h1"] == "Bags").await;
        assert!(seen["download_csv"].is_null(), "{role}: {seen}");
        if user == "bina" {
            // Billers may download bills: the buttons work for her, and
            // the files narrow as the list does.
            b.visit("/console/bills?status=new&destination=pun").await;
            let seen = look(&mut b, "the bills list", |v| v["h1"] == "Bills").await;
            assert_eq!(
                text(&seen, "download_csv"),
                "/api/v1/exports/bills.csv?status=new&destination=pun",
                "{seen}"
            );
            b.page("bills-downloads-biller").await;
            let (status, _, bytes) = fetch(&s, &cookie, text(&seen, "download_csv")).await;
            assert_eq!(status, StatusCode::OK);
            let bills: Vec<String> = csv_records(&bytes)
                .into_iter()
                .map(|r| r["code"].clone())
                .collect();
            assert_eq!(bills, vec!["B-7"]);
            let (status, kind, _) = fetch(&s, &cookie, text(&seen, "download_xlsx")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(kind.contains("spreadsheetml"), "{kind}");
            b.visit("/console/bills/summary").await;
            let seen = look(&mut b, "the summary", |v| v["h1"] == "End-of-day summary").await;
            let href = text(&seen, "download_csv").to_string();
            assert!(
                href.starts_with("/api/v1/exports/summary.csv?from="),
                "{seen}"
            );
            let (status, _, _) = fetch(&s, &cookie, &href).await;
            assert_eq!(status, StatusCode::OK);
            b.page("bills-summary-downloads").await;
        } else {
            b.visit("/console/bills").await;
            let seen = look(&mut b, "the bills refusal", |v| !v["refusal"].is_null()).await;
            assert!(seen["download_csv"].is_null(), "{seen}");
        }
        b.visit("/console/").await;
        look(&mut b, "the dashboard", |v| v["path"] == "/console/").await;
        b.click("#logout").await;
        look(&mut b, "logged out", |v| {
            v["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/console/login"))
        })
        .await;
    }
    b.assert_clean_console().await;
}
on_each_backend!(only_admins_import_and_buttons_follow_the_roles);

// ------------------------------------------------------------ (d) downloads carry the filters

async fn downloads_carry_the_lists_filters(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let dir = Folder::new("exports");
    let s = TestServer::start_with(import_settings(&url, &dir)).await;
    // The bags of the sheet, imported over the API.
    let (status, body) = traitortrack_tests::send(
        s.http
            .post(s.url("/api/v1/imports?kind=child-parent&file_name=lots.xlsx"))
            .bearer_auth(&s.admin_token)
            .body(child_parent_sheet()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counts"]["refused"], REFUSED, "{body}");
    let Some(mut b) = Browser::open(&s, "imports-exports").await else {
        return;
    };
    b.log_in("admin", PASSWORD).await;

    // The bags list with a code's start, parent bags, not full.
    b.visit("/console/bags").await;
    look(&mut b, "the bags list", |v| v["h1"] == "Bags").await;
    b.type_into("#search", "SB100").await;
    b.js("document.getElementById('kind').value = 'parent'; document.getElementById('complete').value = 'no'; return null;")
        .await;
    b.submit("#bag-search").await;
    let seen = look(&mut b, "the filtered list", |v| {
        v["path"]
            .as_str()
            .is_some_and(|p| p.contains("complete=no"))
    })
    .await;
    let href = text(&seen, "download_csv").to_string();
    assert_eq!(
        href, "/api/v1/exports/bags.csv?search=SB100&kind=parent&complete=false&date=created",
        "{seen}"
    );
    assert_eq!(
        text(&seen, "download_xlsx"),
        "/api/v1/exports/bags.xlsx?search=SB100&kind=parent&complete=false&date=created"
    );
    b.page("bags-downloads").await;
    let cookie = b.session_cookie().await;
    let (status, kind, bytes) = fetch(&s, &cookie, &href).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let records = csv_records(&bytes);
    let in_file: BTreeSet<String> = records.iter().map(|r| r["code"].clone()).collect();
    let in_db = codes(
        &s,
        "SELECT code FROM bags WHERE kind = 'parent' AND code LIKE 'SB100%' \
         AND child_count < capacity",
    )
    .await;
    assert_eq!(in_db.len(), 98, "SB10001 to SB10099 but the full SB10005");
    assert_eq!(in_file, in_db);
    assert_eq!(records.len(), in_db.len(), "each bag once");
    assert!(
        records
            .iter()
            .all(|r| r["kind"] == "parent" && r["complete"] == "no"),
        "{records:?}"
    );
    let (status, kind, bytes) = fetch(&s, &cookie, text(&seen, "download_xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.contains("spreadsheetml"), "{kind}");
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).expect("a workbook");
    let sheet = book.worksheet_range("Bags").expect("a Bags sheet");
    assert_eq!(
        sheet.rows().count(),
        in_db.len() + 1,
        "a header and the bags"
    );

    // The audit log's buttons take its filter: the import's row.
    b.visit("/console/audit?action=import").await;
    let seen = look(&mut b, "the audit log", |v| v["h1"] == "Audit log").await;
    let href = text(&seen, "download_csv").to_string();
    assert_eq!(href, "/api/v1/exports/audit.csv?action=import", "{seen}");
    let (status, _, bytes) = fetch(&s, &cookie, &href).await;
    assert_eq!(status, StatusCode::OK);
    let records = csv_records(&bytes);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "import");
    assert_eq!(records[0]["entity"], "import");
    b.page("audit-downloads").await;
    b.assert_clean_console().await;
}
on_each_backend!(downloads_carry_the_lists_filters);
