//! Exports, run on SQLite and PostgreSQL over real HTTP and through the real
//! command line: every file is read back (CSV with the csv crate, XLSX with
//! calamine, EPCIS as JSON) and compared with the database, row by row and
//! event by event. Also: filters, who may export what, plain refusals, and
//! the audit row each export leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use calamine::{Reader, Xlsx};
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_server::on;
use traitortrack_tests::{bill_add, children, link, on_both, server_binary, unlink, TestServer};

/// A small warehouse: three parents (one full), one unlink, one bill.
///
/// - `SB00001`: 30 children `A0001…A0030` (full), on bill `BILL-EX1`;
/// - `SB00002`: `B0001…B0004` linked, then `B0004` unlinked (3 left);
/// - `M444-00003`: one child `C0001`.
async fn warehouse(s: &TestServer) -> String {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("dock-1", &["ravi", "bina", "admin"]).await;
    let mut batch: Vec<Value> = children("A", 30)
        .iter()
        .map(|c| link("ravi", "SB00001", c))
        .collect();
    batch.extend(children("B", 4).iter().map(|c| link("ravi", "SB00002", c)));
    batch.push(link("ravi", "M444-00003", "C0001"));
    batch.push(unlink("ravi", "SB00002", Some("B0004")));
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, 200, "{body}");
    for r in body["results"].as_array().expect("results") {
        assert_eq!(r["status"], "applied", "{body}");
    }
    let bina = s.login("bina", None).await;
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/bills",
            &json!({"code": "BILL-EX1", "capacity": 2, "destination": "=Kanpur",
                    "vehicle_number": "UP32 AB 1234", "description": "rice, 1st lot"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = s.event(&key, bill_add("bina", "BILL-EX1", "SB00001")).await;
    assert_eq!(r["status"], "applied", "{r}");
    s.assert_invariants().await;
    bina
}

/// Downloads an export; answers the status, the headers' content type and
/// disposition, and the bytes.
async fn download(s: &TestServer, token: &str, path: &str) -> (u16, String, String, Vec<u8>) {
    let resp = s
        .http
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("export request");
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    let bytes = resp.bytes().await.expect("export body").to_vec();
    (status, kind, disposition, bytes)
}

/// A CSV file as rows of named fields.
fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(bytes);
    let headers = r.headers().expect("a header row").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("a CSV record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Every sheet of a workbook as rows of named fields (numbers as integers
/// where whole).
fn xlsx_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut book: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("an XLSX workbook");
    let mut out = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).expect("a sheet");
        let mut rows = range.rows();
        let headers: Vec<String> = rows
            .next()
            .expect("a header row")
            .iter()
            .map(ToString::to_string)
            .collect();
        for row in rows {
            out.push(
                headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| {
                        let v = match v {
                            calamine::Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
                            calamine::Data::Int(i) => i.to_string(),
                            other => other.to_string(),
                        };
                        (h.clone(), v)
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The bags as the database holds them: code -> (kind, parent, child count, bill).
async fn bags_in_db(s: &TestServer) -> BTreeMap<String, (String, String, i64, String)> {
    type Row = (String, String, Option<String>, i32, Option<String>);
    let rows: Vec<Row> = on!(s.db.reader(), |c| sqlx::query_as(
        "SELECT b.code, b.kind, p.code, b.child_count, bl.code FROM bags b
             LEFT JOIN links l ON l.child_id = b.id LEFT JOIN bags p ON p.id = l.parent_id
             LEFT JOIN bills bl ON bl.id = b.bill_id"
    )
    .fetch_all(c)
    .await)
    .expect("bags");
    rows.into_iter()
        .map(|(code, kind, parent, n, bill)| {
            (
                code,
                (
                    kind,
                    parent.unwrap_or_default(),
                    i64::from(n),
                    bill.unwrap_or_default(),
                ),
            )
        })
        .collect()
}

fn bags_in_file(
    rows: &[BTreeMap<String, String>],
) -> BTreeMap<String, (String, String, i64, String)> {
    rows.iter()
        .map(|r| {
            let n = if r["kind"] == "parent" {
                r["child count"].parse().expect("a child count")
            } else {
                assert_eq!(r["child count"], "", "a child has no child count: {r:?}");
                0
            };
            (
                r["code"].clone(),
                (r["kind"].clone(), r["parent"].clone(), n, r["bill"].clone()),
            )
        })
        .collect()
}

async fn exports_match_the_database(s: &TestServer) {
    let bina = warehouse(s).await;
    let admin = &s.admin_token;
    let db_bags = bags_in_db(s).await;
    assert_eq!(db_bags.len(), 3 + 30 + 4 + 1);

    // Bags, as CSV and as a workbook: the same rows as the database.
    let (status, kind, disposition, csv) = download(s, admin, "/api/v1/exports/bags.csv").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csv));
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert!(
        disposition.starts_with("attachment; filename=\"traitortrack-bags-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert_eq!(bags_in_file(&csv_rows(&csv)), db_bags);
    let (status, kind, _, xlsx) = download(s, admin, "/api/v1/exports/bags.xlsx").await;
    assert_eq!(status, 200);
    assert!(kind.contains("spreadsheetml"), "{kind}");
    let rows = xlsx_rows(&xlsx);
    assert_eq!(bags_in_file(&rows), db_bags);
    let full = rows
        .iter()
        .find(|r| r["code"] == "SB00001")
        .expect("SB00001");
    assert_eq!(full["complete"], "yes");
    assert_eq!(full["capacity"], "30");
    assert_eq!(full["dispatch area"], "north");

    // Filters as on the lists.
    let (_, _, _, csv) =
        download(s, admin, "/api/v1/exports/bags.csv?kind=parent&billed=true").await;
    let codes: Vec<String> = csv_rows(&csv)
        .into_iter()
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(codes, ["SB00001"]);
    let (_, _, _, csv) = download(s, admin, "/api/v1/exports/bags.csv?search=b000").await;
    let codes: BTreeSet<String> = csv_rows(&csv)
        .into_iter()
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(
        codes,
        ["B0001", "B0002", "B0003", "B0004"]
            .map(String::from)
            .into()
    );
    let (_, _, _, csv) = download(s, admin, "/api/v1/exports/bags.csv?complete=false").await;
    let codes: BTreeSet<String> = csv_rows(&csv)
        .into_iter()
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(codes, ["SB00002", "M444-00003"].map(String::from).into());

    // Links: the children now in a parent, with who linked them at which station.
    let (_, _, _, csv) = download(s, admin, "/api/v1/exports/links.csv").await;
    let links = csv_rows(&csv);
    let in_file: BTreeSet<(String, String)> = links
        .iter()
        .map(|r| (r["parent"].clone(), r["child"].clone()))
        .collect();
    let in_db: BTreeSet<(String, String)> = db_bags
        .iter()
        .filter(|(_, v)| !v.1.is_empty())
        .map(|(child, v)| (v.1.clone(), child.clone()))
        .collect();
    assert_eq!(in_file, in_db);
    assert_eq!(in_file.len(), 30 + 3 + 1);
    assert!(
        links
            .iter()
            .all(|r| r["worker"] == "ravi" && r["station"] == "dock-1"),
        "{links:?}"
    );

    // Bills, for a biller too: counts and weights follow from the children.
    let (status, _, _, csv) = download(s, &bina, "/api/v1/exports/bills.csv").await;
    assert_eq!(status, 200);
    let bills = csv_rows(&csv);
    assert_eq!(bills.len(), 1);
    let b = &bills[0];
    assert_eq!(b["code"], "BILL-EX1");
    assert_eq!(b["parent bags"], "1");
    assert_eq!(b["child bags"], "30");
    let kg = s.settings.kg_per_child;
    assert_eq!(b["actual weight (kg)"], format!("{}", 30.0 * kg));
    assert_eq!(b["expected weight (kg)"], format!("{}", 30.0 * kg));
    assert_eq!(b["created by"], "bina");
    // A cell that would start a formula in a spreadsheet is quoted.
    assert_eq!(b["destination"], "'=Kanpur");
    // The bills list's filters narrow the file the same way.
    for (query, expected) in [
        ("code=ex1", 1),
        ("code=EX2", 0),
        ("destination=KANP", 1),
        ("destination=delhi", 0),
        ("biller=bina", 1),
        ("biller=ravi", 0),
        ("status=in_progress&code=bill", 1),
        ("status=closed", 0),
    ] {
        let (status, _, _, csv) =
            download(s, &bina, &format!("/api/v1/exports/bills.csv?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(csv_rows(&csv).len(), expected, "{query}");
    }
    let (status, _, _, body) = download(
        s,
        &bina,
        "/api/v1/exports/bills.csv?biller=no%20such%20name!",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("The biller is a username"),
        "a bad filter is refused before the file starts"
    );
    let (_, _, _, xlsx) = download(s, &bina, "/api/v1/exports/bills.xlsx").await;
    let rows = xlsx_rows(&xlsx);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["destination"], "=Kanpur",
        "a workbook keeps text as text"
    );
    assert_eq!(rows[0]["status"], "in_progress");

    // The end-of-day summary, today by default: the same figures as the
    // summary's own API, per biller and for the whole day.
    let (_, summary) = s.get(&bina, "/api/v1/bills/summary").await;
    let (status, _, _, csv) = download(s, &bina, "/api/v1/exports/summary.csv").await;
    assert_eq!(status, 200);
    let lines = csv_rows(&csv);
    assert_eq!(lines.len(), 2, "bina, then the whole day: {lines:?}");
    assert_eq!(lines[0]["biller"], "bina");
    assert_eq!(lines[1]["biller"], "All billers");
    for line in &lines {
        assert_eq!(line["date"], summary["date"].as_str().expect("a date"));
        assert_eq!(
            line["bills created"],
            summary["totals"]["bills_created"].to_string()
        );
        assert_eq!(
            line["in progress"],
            summary["totals"]["by_status"]["in_progress"].to_string()
        );
        assert_eq!(line["parent bags"], "1");
        assert_eq!(line["child bags"], "30");
        assert_eq!(line["actual weight (kg)"], format!("{}", 30.0 * kg));
    }
    let (_, _, _, xlsx) = download(
        s,
        admin,
        "/api/v1/exports/summary.xlsx?from=2026-01-01&to=2026-01-03",
    )
    .await;
    let rows = xlsx_rows(&xlsx);
    let dates: Vec<&str> = rows.iter().map(|r| r["date"].as_str()).collect();
    assert_eq!(
        dates,
        ["2026-01-01", "2026-01-02", "2026-01-03"],
        "a day with no bills still has its line"
    );
    assert!(rows
        .iter()
        .all(|r| r["biller"] == "All billers" && r["bills created"] == "0"));

    // Who may export what, with plain refusals before any byte.
    let ravi = s.login("ravi", None).await;
    for (token, path, want) in [
        (&bina, "/api/v1/exports/bags.csv", 403),
        (&ravi, "/api/v1/exports/bills.csv", 403),
        (&ravi, "/api/v1/exports/audit.xlsx", 403),
        (&bina, "/api/v1/exports/epcis.jsonld", 403),
        (admin, "/api/v1/exports/passwords.csv", 404),
        (admin, "/api/v1/exports/bags", 404),
        (admin, "/api/v1/exports/bags.pdf", 400),
        (admin, "/api/v1/exports/epcis.csv", 400),
        (admin, "/api/v1/exports/bags.jsonld", 400),
        (admin, "/api/v1/exports/links.csv?from=22/11/2026", 400),
        (
            admin,
            "/api/v1/exports/links.csv?from=2026-11-22&to=2026-11-21",
            400,
        ),
        (admin, "/api/v1/exports/bags.csv?kind=box", 400),
        (&ravi, "/api/v1/exports/summary.csv", 403),
        (
            admin,
            "/api/v1/exports/summary.csv?from=2024-01-01&to=2026-01-01",
            400,
        ),
    ] {
        let (status, body) = s.get(token, path).await;
        assert_eq!(status.as_u16(), want, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{path}: a plain message: {body}");
    }
    let (status, _) = traitortrack_tests::send(s.http.get(s.url("/api/v1/exports/bags.csv"))).await;
    assert_eq!(status.as_u16(), 401);

    // A date range: today holds every link; a day long past holds none.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(s.settings.utc_offset)
        .date();
    let (_, _, _, csv) = download(
        s,
        admin,
        &format!("/api/v1/exports/links.csv?from={today}&to={today}"),
    )
    .await;
    assert_eq!(csv_rows(&csv).len(), links.len());
    let (_, _, _, csv) = download(
        s,
        admin,
        "/api/v1/exports/links.csv?from=2001-01-01&to=2001-01-31",
    )
    .await;
    assert_eq!(csv_rows(&csv).len(), 0);

    // The audit log and each user's activity.
    let (_, _, _, csv) = download(s, admin, "/api/v1/exports/audit.csv?action=link").await;
    let audit = csv_rows(&csv);
    assert_eq!(audit.len(), 30 + 4 + 1, "one audit row per link");
    assert!(audit
        .iter()
        .all(|r| r["action"] == "link" && r["user"] == "ravi"));
    let (_, _, _, csv) = download(s, admin, "/api/v1/exports/activity.csv").await;
    let activity = csv_rows(&csv);
    let ravi_row = activity
        .iter()
        .find(|r| r["user"] == "ravi")
        .expect("ravi's activity");
    assert_eq!(ravi_row["children linked"], "35");
    assert_eq!(ravi_row["children unlinked"], "1");
    assert_eq!(ravi_row["role"], "dispatcher");
    let bina_row = activity
        .iter()
        .find(|r| r["user"] == "bina")
        .expect("bina's activity");
    assert_eq!(bina_row["bills created"], "1");
    assert_eq!(bina_row["parents put on bills"], "1");
    assert!(bina_row["exports"].parse::<i64>().expect("a count") >= 2);

    // Every export is audited: who, what, which filters.
    let exports: Vec<(Option<String>, Option<String>, Option<String>)> =
        on!(s.db.reader(), |c| sqlx::query_as(
            "SELECT actor, entity_code, after FROM audit_log WHERE action = 'export' ORDER BY id"
        )
        .fetch_all(c)
        .await)
        .expect("export audit rows");
    let filtered = exports
        .iter()
        .find(|(_, what, after)| {
            what.as_deref() == Some("bags")
                && after
                    .as_deref()
                    .is_some_and(|a| a.contains("\"billed\":\"true\""))
        })
        .expect("the filtered bags export is audited with its filters");
    assert_eq!(filtered.0.as_deref(), Some("admin"));
    assert!(
        exports.iter().any(
            |(who, what, _)| who.as_deref() == Some("bina") && what.as_deref() == Some("bills")
        ),
        "{exports:?}"
    );
    // Refused exports are not audited as exports.
    assert!(!exports
        .iter()
        .any(|(who, _, _)| who.as_deref() == Some("ravi")));
}
on_both!(exports_match_the_database);

/// EPCIS: one aggregation event per link (ADD) and unlink (DELETE), checked
/// event by event against the audit log.
async fn epcis_events_follow_the_links(s: &TestServer) {
    warehouse(s).await;
    let (status, kind, disposition, body) =
        download(s, &s.admin_token, "/api/v1/exports/epcis.jsonld").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(kind, "application/ld+json");
    assert!(disposition.contains(".jsonld"), "{disposition}");
    let doc: Value = serde_json::from_slice(&body).expect("the document is JSON");
    assert_eq!(doc["type"], "EPCISDocument");
    assert_eq!(doc["schemaVersion"], "2.0");
    assert!(doc["@context"][0]
        .as_str()
        .expect("a context")
        .contains("gs1.org"));
    let events = doc["epcisBody"]["eventList"]
        .as_array()
        .expect("an event list");

    let rows: Vec<(i64, String, Option<String>)> = on!(s.db.reader(), |c| sqlx::query_as(
        "SELECT id, action, entity_code FROM audit_log
         WHERE entity = 'bag' AND action IN ('link', 'unlink', 'unlink_correction') ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .expect("audit rows");
    assert_eq!(events.len(), rows.len());
    assert_eq!(events.len(), 30 + 4 + 1 + 1);
    let bag = |code: &str| format!("urn:x-traitortrack:bag:{code}");
    for (event, (id, action, child)) in events.iter().zip(&rows) {
        let child = child.as_deref().expect("a child code");
        assert_eq!(event["type"], "AggregationEvent");
        assert_eq!(
            event["eventID"],
            format!("urn:x-traitortrack:event:audit-{id}")
        );
        assert_eq!(event["childEPCs"], json!([bag(child)]));
        assert_eq!(
            event["readPoint"]["id"],
            "urn:x-traitortrack:station:dock-1"
        );
        assert!(
            event["eventTime"].as_str().expect("a time").ends_with('Z'),
            "{event}"
        );
        assert!(
            event["eventTimeZoneOffset"]
                .as_str()
                .expect("an offset")
                .len()
                == 6
        );
        let parent = match child.as_bytes()[0] {
            b'A' => "SB00001",
            b'B' => "SB00002",
            _ => "M444-00003",
        };
        assert_eq!(event["parentID"], bag(parent), "{event}");
        if action == "link" {
            assert_eq!(event["action"], "ADD");
            assert_eq!(event["bizStep"], "packing");
        } else {
            assert_eq!(event["action"], "DELETE");
            assert_eq!(child, "B0004");
        }
        // The bill of the parent, where it has one.
        if parent == "SB00001" {
            assert_eq!(
                event["bizTransactionList"],
                json!([{"type": "desadv", "bizTransaction": "urn:x-traitortrack:bill:BILL-EX1"}])
            );
        } else {
            assert!(event.get("bizTransactionList").is_none(), "{event}");
        }
    }
    // A range with no links is an empty list, still a whole document.
    let (_, _, _, body) = download(
        s,
        &s.admin_token,
        "/api/v1/exports/epcis.jsonld?from=2001-01-01&to=2001-01-02",
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["epcisBody"]["eventList"], json!([]));
}
on_both!(epcis_events_follow_the_links);

/// The command line writes the same files as the API, and says how many rows.
async fn command_line_exports(s: &TestServer) {
    warehouse(s).await;
    let dir = std::env::temp_dir().join(format!("tt-export-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let run = |what: &str, file: &str, extra: &[&str]| {
        let out = dir.join(file);
        let output = Command::new(server_binary!())
            .args(["--database", &s.url, "export", what, "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .expect("run the command line");
        (output, out)
    };
    let (output, path) = run("bags", "bags.csv", &[]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("Wrote 38 rows"), "{said}");
    let file = std::fs::read(&path).expect("the file");
    assert_eq!(bags_in_file(&csv_rows(&file)), bags_in_db(s).await);

    let (output, path) = run("bags", "parents.xlsx", &["--kind", "parent"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = xlsx_rows(&std::fs::read(&path).expect("the workbook"));
    let codes: BTreeSet<String> = rows.iter().map(|r| r["code"].clone()).collect();
    assert_eq!(
        codes,
        ["SB00001", "SB00002", "M444-00003"]
            .map(String::from)
            .into()
    );

    let (output, path) = run("epcis", "events.jsonld", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the file")).expect("JSON");
    assert_eq!(
        doc["epcisBody"]["eventList"].as_array().map(Vec::len),
        Some(36)
    );

    // Plain refusals, with a failing exit code and nothing written.
    for (what, file, extra, says) in [
        ("bags", "bags.pdf", &[][..], ".csv, .xlsx or .jsonld"),
        ("epcis", "events.csv", &[], "JSON-LD only"),
        ("boxes", "boxes.csv", &[], "no export"),
        (
            "links",
            "links.csv",
            &["--from", "yesterday"][..],
            "YYYY-MM-DD",
        ),
        (
            "bags",
            "bags2.csv",
            &["--kind", "box"][..],
            "parent or child",
        ),
    ] {
        let (output, path) = run(what, file, extra);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what} {file}");
        assert!(err.contains(says), "{what} {file}: {err}");
        assert!(!path.exists(), "{file} is not written");
    }
    let audited: i64 = on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'export' AND actor = 'system'"
    )
    .fetch_one(c)
    .await)
    .expect("count");
    assert_eq!(audited, 3, "each command-line export is audited");
    let _ = std::fs::remove_dir_all(&dir);
}
on_both!(command_line_exports);
