//! Imports end to end, on both databases: files of every layout made here
//! (CSV, and XLSX with rust_xlsxwriter), sent to a real server over HTTP and
//! to the real `traitortrack import` command; outcomes read back from the
//! result files (with calamine) and checked against the database.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use calamine::{Data, Reader, Xlsx};
use reqwest::StatusCode;
use serde_json::Value;
use traitortrack_protocol::Role;
use traitortrack_server::config::Settings;
use traitortrack_server::import;
use traitortrack_tests::sheets::xlsx;
use traitortrack_tests::{
    fresh_url, on_each_backend, send, server_binary, settings, Backend, TestServer,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tt-imports-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn import_settings(url: &str) -> Settings {
    let mut s = settings(url);
    s.import_dir = temp_dir("results");
    s
}

async fn upload(s: &TestServer, query: &str, body: Vec<u8>) -> (StatusCode, Value) {
    send(
        s.http
            .post(s.url(&format!("/api/v1/imports?{query}")))
            .bearer_auth(&s.admin_token)
            .body(body),
    )
    .await
}

/// The result file as XLSX, read back: (sheet, row) -> (code, outcome, message).
async fn result_rows(s: &TestServer, id: i64) -> HashMap<(String, u32), (String, String, String)> {
    let resp = s
        .http
        .get(s.url(&format!("/api/v1/imports/{id}/result.xlsx")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.expect("bytes").to_vec();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("an xlsx file");
    assert_eq!(book.sheet_names()[0], "Summary");
    let summary = book.worksheet_range("Summary").expect("summary sheet");
    let cell = |r: &[Data], i: usize| r.get(i).map(|d| d.to_string()).unwrap_or_default();
    let summary: HashMap<String, String> =
        summary.rows().map(|r| (cell(r, 0), cell(r, 1))).collect();
    assert_eq!(summary["Import"], id.to_string());
    let rows = book.worksheet_range("Rows").expect("rows sheet");
    let mut out = HashMap::new();
    for r in rows.rows().skip(1) {
        let number = match r.get(1) {
            Some(Data::Float(f)) => *f as u32,
            Some(Data::Int(i)) => *i as u32,
            other => panic!("row number {other:?}"),
        };
        out.insert((cell(r, 0), number), (cell(r, 2), cell(r, 3), cell(r, 4)));
    }
    // The CSV says the same.
    let resp = s
        .http
        .get(s.url(&format!("/api/v1/imports/{id}/result.csv")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .expect("download");
    let text = resp.text().await.expect("csv");
    assert_eq!(text.lines().count(), out.len() + 1, "one CSV line per row");
    out
}

fn outcome(
    rows: &HashMap<(String, u32), (String, String, String)>,
    sheet: &str,
    row: u32,
) -> String {
    rows.get(&(sheet.to_string(), row))
        .map(|(code, o, m)| format!("{code} {o}: {m}"))
        .unwrap_or_else(|| format!("no row {sheet}:{row}"))
}

async fn count(s: &TestServer, sql: &str) -> i64 {
    traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(sql)
        .fetch_one(c)
        .await)
    .expect("count")
}

/// Every link as "PARENT>CHILD", sorted: the state two runs are compared by.
async fn links(s_db: &traitortrack_server::db::Db) -> Vec<String> {
    traitortrack_server::on!(s_db.reader(), |c| sqlx::query_scalar(
        "SELECT p.code || '>' || c.code FROM links l JOIN bags p ON p.id = l.parent_id
         JOIN bags c ON c.id = l.child_id ORDER BY 1"
    )
    .fetch_all(c)
    .await)
    .expect("links")
}

async fn child_parent_sheets_every_edge_case(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(import_settings(&url)).await;

    // A bags table with a BOM and the predecessor's headers: a parent with 28
    // of 30 children, and a child already in another parent.
    let mut table = String::from("\u{feff}qr_id,type,parent_qr_id\r\nSB00050,parent,\r\n");
    for i in 0..28 {
        table.push_str(&format!("N{i:04},child,SB00050\r\n"));
    }
    table.push_str("K0001,child,SB00060\r\n");
    let (status, body) = upload(&s, "kind=bags&file_name=bags.csv", table.into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["created"], 1, "{body}");
    assert_eq!(body["counts"]["linked"], 29, "{body}");
    assert_eq!(body["state"], "done");

    let file = xlsx(&[
        (
            "Lot A",
            vec![
                vec!["Sr. No.", "Label No."],
                vec!["1", "LABEL NO.0016586"],
                vec!["2", "label no.:0016587 LOT 4 DT 01.02.24"],
                vec!["", ""],
                vec!["3", "LABEL NO.0016588"],
                vec!["", "sb00050"], // 6: closes the run; SB00050 has room for two
                vec!["1", "LABEL NO.0000001"],
                vec!["2", "LABEL NO."],
                vec!["3", "LABEL NO.0016586"], // 9: already in SB00050 from this file
                vec!["Parent Code", "M444-00001"],
                vec!["1", "LABEL NO.K0001"], // 11: no digits: unreadable
                vec!["2", "LABEL NO.0000002"],
                vec!["16", "SB00070"],
                vec!["1", "LABEL NO.0000003"], // 14: orphaned by the sheet change
            ],
        ),
        (
            "Lot B",
            vec![
                vec!["Sr. No.", "Label No."],
                vec!["1", "LABEL NO.0000004"],
                vec!["2", "LABEL NO.0000001"], // 3: in M444-00001 already
                vec!["16", "SB00080"],
                vec!["1", "LABEL NO.0000005"], // 5: orphaned at the end
            ],
        ),
    ]);
    let (status, body) = upload(&s, "kind=child-parent&file_name=lots.xlsx", file.clone()).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_i64().expect("id");
    let rows = result_rows(&s, id).await;
    let o = |sheet: &str, row: u32| outcome(&rows, sheet, row);
    assert!(
        o("Lot A", 2).starts_with("0016586 linked"),
        "{}",
        o("Lot A", 2)
    );
    assert!(
        o("Lot A", 3).starts_with("0016587 linked"),
        "{}",
        o("Lot A", 3)
    );
    assert!(
        o("Lot A", 5).contains("refused: SB00050 is full: 30 of 30"),
        "{}",
        o("Lot A", 5)
    );
    assert!(
        o("Lot A", 6).starts_with("SB00050 already there"),
        "{}",
        o("Lot A", 6)
    );
    assert!(
        o("Lot A", 7).starts_with("0000001 linked"),
        "{}",
        o("Lot A", 7)
    );
    assert!(o("Lot A", 8).contains("refused"), "{}", o("Lot A", 8));
    assert!(
        o("Lot A", 9).contains("refused: 0016586 is already in SB00050"),
        "{}",
        o("Lot A", 9)
    );
    assert!(
        o("Lot A", 10).starts_with("M444-00001 created"),
        "{}",
        o("Lot A", 10)
    );
    assert!(o("Lot A", 11).contains("refused"), "{}", o("Lot A", 11));
    assert!(
        o("Lot A", 12).starts_with("0000002 linked"),
        "{}",
        o("Lot A", 12)
    );
    assert!(
        o("Lot A", 13).starts_with("SB00070 created"),
        "{}",
        o("Lot A", 13)
    );
    assert!(
        o("Lot A", 14).contains("refused: 0000003: no parent row"),
        "{}",
        o("Lot A", 14)
    );
    assert!(
        o("Lot B", 2).starts_with("0000004 linked"),
        "{}",
        o("Lot B", 2)
    );
    assert!(
        o("Lot B", 3).contains("refused: 0000001 is already in M444-00001"),
        "{}",
        o("Lot B", 3)
    );
    assert!(
        o("Lot B", 4).starts_with("SB00080 created"),
        "{}",
        o("Lot B", 4)
    );
    assert!(o("Lot B", 5).contains("refused"), "{}", o("Lot B", 5));
    assert_eq!(
        rows.len(),
        16,
        "one result row per non-blank data row: {rows:?}"
    );
    assert_eq!(body["counts"]["refused"], 7, "{body}");
    assert!(
        body["problems"].as_array().is_some_and(|p| p.len() == 7),
        "{body}"
    );
    assert_eq!(s.children_of("SB00050").await.len(), 30);
    assert_eq!(s.children_of("M444-00001").await, vec!["0000001"]);
    assert_eq!(s.children_of("SB00070").await, vec!["0000002"]);

    // The import is in the audit log, and in the bag's history.
    let (status, audit) = s.get(&s.admin_token, "/api/v1/audit?action=import").await;
    assert_eq!(status, 200, "{audit}");
    let entry = audit["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|e| e["entity_code"].as_str() == Some(id.to_string().as_str()))
        })
        .cloned()
        .expect("an audit row for the import");
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["after"]["file_name"], "lots.xlsx");
    assert_eq!(entry["after"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(entry["after"]["refused"], 7);
    let marks = import::history_of(&s.db, "0000002").await.expect("history");
    assert!(
        marks
            .iter()
            .any(|m| m.import_id == id && m.what == "created")
            && marks.iter().any(|m| m.import_id == id
                && m.what == "linked"
                && m.parent.as_deref() == Some("SB00070")),
        "{marks:?}"
    );
    // The bag's history, as the console and the API show it, says so.
    let (status, history) = s.get(&s.admin_token, "/api/v1/bags/0000002/history").await;
    assert_eq!(status, 200, "{history}");
    let items = history["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "imported" && e["import_id"] == id),
        "{history}"
    );
    assert!(
        items.iter().any(|e| e["action"] == "imported_link"
            && e["import_id"] == id
            && e["parent"] == "SB00070"),
        "{history}"
    );

    // The same file again changes nothing.
    let before = (links(&s.db).await, s.assert_invariants().await);
    let (status, again) = upload(&s, "kind=child-parent&file_name=lots.xlsx", file).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["counts"]["created"], 0, "{again}");
    assert_eq!(again["counts"]["linked"], 0, "{again}");
    assert_eq!(again["sha256"], body["sha256"]);
    assert_eq!((links(&s.db).await, s.assert_invariants().await), before);

    // Progress and the list.
    let (status, one) = s
        .get(&s.admin_token, &format!("/api/v1/imports/{id}"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["state"], "done");
    assert_eq!(one["rows_done"], one["total_rows"], "{one}");
    let (status, list) = s.get(&s.admin_token, "/api/v1/imports").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
}
on_each_backend!(child_parent_sheets_every_edge_case);

async fn bills_then_parents_on_bills(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(import_settings(&url)).await;
    let table = "code,kind,parent code\nSB00001,parent,\nSB00002,parent,\nSB00003,parent,\nSB00004,parent,\nc0001,child,SB00001\n";
    let (status, body) = upload(&s, "kind=bags", table.into()).await;
    assert_eq!(status, 200, "{body}");
    let bills = "bill_id,parent_bag_count\nB-1,2\nb-2,5\nB-3,0\nB-2,5\n";
    let (status, body) = upload(&s, "kind=bills&file_name=bills.csv", bills.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["created"], 2, "{body}");
    assert_eq!(
        body["counts"]["already_there"], 1,
        "duplicate in the file: {body}"
    );
    assert_eq!(body["problems"][0]["reason"], "bad_capacity", "{body}");
    let bills =
        "Code,Description,Capacity,Destination,Vehicle Number\nB-9,rice,5,Pune,MH12 AB 1234\n";
    let (status, body) = upload(&s, "kind=bills", bills.into()).await;
    assert_eq!(status, 200, "{body}");
    let (_, bill) = s.get(&s.admin_token, "/api/v1/bills/B-9").await;
    assert_eq!(bill["destination"], "Pune");
    assert_eq!(bill["vehicle_number"], "MH12 AB 1234");

    let sheet = xlsx(&[(
        "Dispatch",
        vec![
            vec!["Sr. No.", "Parent"],
            vec!["1", "SB00001"],
            vec!["2", "sb00002"],
            vec!["3", "SB00009"], // 4: no such bag
            vec!["BILL NO.", "B-1"],
            vec!["1", "SB00002"], // 6: on B-1 already
            vec!["2", "SB00003"],
            vec!["bill no:", "B-2"],
            vec!["1", "SB00004"],
            vec!["Bill No.", "B-404"], // 10: no such bill
            vec!["1", "SB00004"],      // 11: orphaned at the end
        ],
    )]);
    // A preview first: counts, and nothing changes.
    let (status, preview) = upload(&s, "kind=parent-bill&dry_run=true", sheet.clone()).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["counts"]["linked"], 3, "{preview}");
    let (_, bill) = s.get(&s.admin_token, "/api/v1/bills/B-1").await;
    assert_eq!(bill["parent_count"], 0, "a preview changes nothing: {bill}");

    let (status, body) = upload(&s, "kind=parent-bill&file_name=dispatch.xlsx", sheet).await;
    assert_eq!(status, 200, "{body}");
    let rows = result_rows(&s, body["id"].as_i64().expect("id")).await;
    let o = |row: u32| outcome(&rows, "Dispatch", row);
    assert!(o(2).starts_with("SB00001 linked"), "{}", o(2));
    assert!(o(3).starts_with("SB00002 linked"), "{}", o(3));
    assert!(
        o(4).contains("refused: There is no bag SB00009"),
        "{}",
        o(4)
    );
    assert!(o(5).starts_with("B-1 already there"), "{}", o(5));
    assert!(
        o(6).contains("refused: SB00002 is already on bill B-1"),
        "{}",
        o(6)
    );
    assert!(o(7).starts_with("SB00003 linked"), "{}", o(7));
    assert!(
        o(10).contains("refused: There is no bill B-404"),
        "{}",
        o(10)
    );
    assert!(o(11).contains("refused"), "{}", o(11));
    let (_, bill) = s.get(&s.admin_token, "/api/v1/bills/B-1").await;
    assert_eq!(bill["parent_count"], 2, "{bill}");
    assert_eq!(bill["status"], "ready", "{bill}");
    assert_eq!(bill["actual_weight_kg"], 1.0, "{bill}");
    let (_, bill) = s.get(&s.admin_token, "/api/v1/bills/B-2").await;
    assert_eq!(bill["parent_count"], 1, "{bill}");
    assert_eq!(bill["status"], "in_progress", "{bill}");
    let stats = s.stats().await;
    assert_eq!(stats["bills"]["ready"], 1, "{stats}");
    assert_eq!(stats["bills"]["in_progress"], 1, "{stats}");
    assert_eq!(stats["bills"]["new"], 1, "{stats}");
    s.assert_invariants().await;

    // All or nothing: one refused row, nothing applied.
    let table =
        "code,kind,parent code\nSB00005,parent,\nC0100,child,SB00005\nC0001,child,SB00005\n";
    let (status, body) = upload(&s, "kind=bags&all_or_nothing=true", table.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "rolled_back", "{body}");
    let (status, _) = s.get(&s.admin_token, "/api/v1/bags/SB00005").await;
    assert_eq!(status, 404, "nothing of a rolled-back import stays");
}
on_each_backend!(bills_then_parents_on_bills);

async fn bad_files_are_refused_in_plain_words(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let s = TestServer::start_with(import_settings(&url)).await;
    let (status, body) = upload(&s, "kind=bags", Vec::new()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("empty")),
        "{body}"
    );
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00".to_vec();
    let (status, body) = upload(&s, "kind=bags", png).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a spreadsheet")),
        "{body}"
    );
    let (status, body) = upload(&s, "kind=bags", b"code,colour\nC0001,red\n".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("colour")),
        "{body}"
    );
    let (status, body) = upload(&s, "kind=boxes", b"code\n".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    // 65 MB: over the 64 MB default.
    let big = vec![b'A'; 65 * 1024 * 1024];
    let (status, body) = upload(&s, "kind=bags", big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 64 MB")),
        "{body}"
    );

    // Another admin cannot download someone else's result.
    let (status, body) = upload(&s, "kind=bags", b"code\nC0001\n".to_vec()).await;
    assert_eq!(status, 200, "{body}");
    s.add_user("ada", Role::Admin, None).await;
    let other = s.login("ada", None).await;
    let (status, body) = s
        .get(
            &other,
            &format!("/api/v1/imports/{}/result.csv", body["id"]),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}
on_each_backend!(bad_files_are_refused_in_plain_words);

/// A child -> parent CSV of `parents` parents with 30 children each.
fn big_sheet(path: &Path, parents: usize) {
    let mut text = String::from("Sr. No.,Label No.\n");
    for p in 0..parents {
        for c in 0..30 {
            text.push_str(&format!("{},LABEL NO.{:08}\n", c + 1, p * 30 + c));
        }
        text.push_str(&format!("Parent Code,SB{:05}\n", p));
    }
    std::fs::write(path, text).expect("write the sheet");
}

fn cli(url: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(server_binary!());
    cmd.arg("import")
        .args(args)
        .args(["--database", url])
        .env("TRAITORTRACK_LOG", "warn")
        .env("TRAITORTRACK_IMPORT_DIR", dir)
        .stdin(Stdio::null());
    cmd
}

async fn the_command_line_resumes_after_a_kill(backend: Backend) {
    let (Some(url), Some(clean_url)) = (fresh_url(backend).await, fresh_url(backend).await) else {
        return;
    };
    let dir = temp_dir("cli");
    let file = dir.join("big.csv");
    big_sheet(&file, 3_000); // 93,000 rows
    let path = file.to_str().expect("path");

    // Killed half-way through.
    let mut child = cli(&url, &dir, &[path, "--kind", "child-parent"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the import");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let percent = line
            .split('(')
            .nth(1)
            .and_then(|p| p.split('%').next())
            .and_then(|p| p.parse::<u32>().ok());
        seen.push(line);
        if percent.is_some_and(|p| (30..90).contains(&p)) {
            child.kill().expect("kill the import");
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert!(
        !status.success(),
        "the import was killed half-way: {seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.contains("rows/s")),
        "a progress line: {seen:?}"
    );

    // Run again: it ends as one run does.
    let out = cli(&url, &dir, &[path, "--kind", "child-parent"])
        .output()
        .expect("run again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 refused"), "{text}");
    let out = cli(&clean_url, &dir, &[path, "--kind", "child-parent"])
        .output()
        .expect("clean run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = TestServer::start_with(import_settings(&url)).await;
    let clean = TestServer::start_with(import_settings(&clean_url)).await;
    let (a, b) = (links(&resumed.db).await, links(&clean.db).await);
    assert_eq!(a.len(), 90_000);
    assert!(a == b, "the resumed import ends as a single run");
    assert_eq!(resumed.assert_invariants().await, 90_000);
    assert_eq!(
        count(&resumed, "SELECT COUNT(*) FROM bags").await,
        count(&clean, "SELECT COUNT(*) FROM bags").await
    );
    assert_eq!(
        count(
            &resumed,
            "SELECT COUNT(*) FROM imports WHERE state = 'interrupted'"
        )
        .await,
        1,
        "the killed run is marked interrupted"
    );

    // Exit codes: 1 with refused rows, 2 when the file cannot be imported.
    let refused = dir.join("refused.csv");
    std::fs::write(&refused, "code,kind,parent code\nC0001,child,C0002\n").expect("write");
    let out = cli(
        &url,
        &dir,
        &[
            refused.to_str().expect("path"),
            "--kind",
            "bags",
            "--as",
            "admin",
        ],
    )
    .output()
    .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let out = cli(
        &url,
        &dir,
        &[empty.to_str().expect("path"), "--kind", "bags"],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty"),
        "{out:?}"
    );
    let huge = dir.join("huge.csv");
    std::fs::write(&huge, vec![b'A'; 65 * 1024 * 1024]).expect("write");
    let out = cli(
        &url,
        &dir,
        &[huge.to_str().expect("path"), "--kind", "bags"],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too large"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
on_each_backend!(the_command_line_resumes_after_a_kill);
