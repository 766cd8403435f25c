//! Linking rules, run on SQLite and PostgreSQL: formats and normalisation,
//! capacity, one parent per child, parents scanned as children, undo.

use reqwest::StatusCode;
use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::{children, link, on_both, unlink, TestServer};

async fn fill_to_capacity_then_refuse(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    let kids = children("C", 31);
    for (i, child) in kids.iter().take(30).enumerate() {
        let r = s.event(&key, link("ravi", "SB00001", child)).await;
        assert_eq!(r["status"], "applied", "{r}");
        assert_eq!(r["parent"]["children"], json!(i + 1));
        assert_eq!(r["parent"]["complete"], json!(i + 1 == 30));
    }
    let r = s.event(&key, link("ravi", "SB00001", &kids[30])).await;
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["code"], "parent_full");
    assert_eq!(r["message"], "SB00001 is full: 30 of 30");
    let (_, bag) = s.get(&s.admin_token, "/api/v1/bags/SB00001").await;
    assert_eq!(bag["child_count"], 30);
    assert_eq!(bag["complete"], true);
    assert_eq!(bag["children"][0]["code"], "C0001");
    assert_eq!(bag["children"][29]["code"], "C0030");
    // The refused child was not created.
    let (status, _) = s.get(&s.admin_token, "/api/v1/bags/C0031").await;
    assert_eq!(status, 404);
    assert_eq!(s.assert_invariants().await, 30);
}
on_both!(fill_to_capacity_then_refuse);

/// An event scanned `minutes` ago.
fn scanned_ago(mut ev: serde_json::Value, minutes: i64) -> serde_json::Value {
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes);
    ev["at"] = json!(traitortrack_tests::rfc3339(at));
    ev
}

async fn codes_are_normalised_and_formats_decide_kind(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    let r = s
        .event(
            &key,
            link("ravi", "  sb00001\r\n", "\u{200B}c00\u{FEFF}01 "),
        )
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["parent"]["code"], "SB00001");
    let (status, bag) = s.get(&s.admin_token, "/api/v1/bags/c0001").await;
    assert_eq!(status, 200, "{bag}");
    assert_eq!(bag["kind"], "child");
    assert_eq!(bag["parent"], "SB00001");

    // A parent code in the child slot, a child code in the parent slot, junk in either.
    let cases = [
        ("SB00001", "SB00002", "child_is_parent"),
        ("SB00001", "M444-00001", "child_is_parent"),
        ("C0002", "C0003", "not_a_parent"),
        ("XY-1", "C0003", "not_a_parent"),
        ("SB00001", "AB", "not_a_child"),
        ("SB00001", "SB00001", "same_bag"),
        ("SB00001", "", "empty_code"),
    ];
    for (parent, child, code) in cases {
        let r = s.event(&key, link("ravi", parent, child)).await;
        assert_eq!(r["status"], "rejected", "{parent}/{child}: {r}");
        assert_eq!(r["code"], code, "{parent}/{child}: {r}");
        assert!(!r["message"].as_str().unwrap_or("").is_empty());
    }
    // None of the refused scans created a bag.
    for code in ["SB00002", "M444-00001", "C0002", "C0003"] {
        let (status, _) = s.get(&s.admin_token, &format!("/api/v1/bags/{code}")).await;
        assert_eq!(status, 404, "{code} must not exist");
    }
    // A known child used as a parent is refused by its stored kind.
    let r = s.event(&key, link("ravi", "C0001", "C0009")).await;
    assert_eq!(r["code"], "not_a_parent", "{r}");
    s.assert_invariants().await;
}
on_both!(codes_are_normalised_and_formats_decide_kind);

async fn m444_parents_hold_fifteen(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    let batch: Vec<_> = children("K", 16)
        .iter()
        .map(|c| link("ravi", "M444-00007", c))
        .collect();
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 16);
    assert!(results[..15].iter().all(|r| r["status"] == "applied"));
    assert_eq!(results[14]["parent"]["complete"], true);
    assert_eq!(results[15]["code"], "parent_full");
    assert_eq!(results[15]["message"], "M444-00007 is full: 15 of 15");
    assert_eq!(s.stats().await["complete_parents"], 1);
    s.assert_invariants().await;
}
on_both!(m444_parents_hold_fifteen);

async fn a_child_belongs_to_one_parent(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    assert_eq!(
        s.event(&key, link("ravi", "SB00001", "C0001")).await["status"],
        "applied"
    );
    let r = s.event(&key, link("ravi", "SB00002", "C0001")).await;
    assert_eq!(r["code"], "child_in_other_parent");
    assert_eq!(r["message"], "C0001 is already in SB00001.");
    let r = s.event(&key, link("ravi", "SB00001", "C0001")).await;
    assert_eq!(r["code"], "already_linked");
    // The refused scan left nothing behind, not even the new parent.
    let (status, _) = s.get(&s.admin_token, "/api/v1/bags/SB00002").await;
    assert_eq!(status, 404);
    assert_eq!(s.assert_invariants().await, 1);
}
on_both!(a_child_belongs_to_one_parent);

async fn undo_rules(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("sita", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi", "sita", "admin"]).await;
    for c in ["C0001", "C0002", "C0003"] {
        assert_eq!(
            s.event(&key, link("ravi", "SB00001", c)).await["status"],
            "applied"
        );
    }
    // Only the worker's own last scan, and only their own.
    let r = s
        .event(&key, unlink("ravi", "SB00001", Some("C0001")))
        .await;
    assert_eq!(r["code"], "not_your_last_scan", "{r}");
    let r = s
        .event(&key, unlink("sita", "SB00001", Some("C0003")))
        .await;
    assert_eq!(r["code"], "not_your_scan", "{r}");
    assert!(r["message"].as_str().unwrap_or("").contains("ravi"));
    let r = s.event(&key, unlink("sita", "SB00001", None)).await;
    assert_eq!(r["code"], "nothing_to_undo", "{r}");

    // Inside the window: the last scan goes, then the one before it.
    let r = s.event(&key, unlink("ravi", "SB00001", None)).await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["parent"]["children"], 2);
    let r = s
        .event(&key, unlink("ravi", "SB00001", Some("C0002")))
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    let (_, bag) = s.get(&s.admin_token, "/api/v1/bags/SB00001").await;
    assert_eq!(bag["children"].as_array().map(Vec::len), Some(1));
    let (_, child) = s.get(&s.admin_token, "/api/v1/bags/C0003").await;
    assert_eq!(child["parent"], serde_json::Value::Null);

    // Outside the window (scanned 61 minutes ago): only an admin, with a reason.
    let r = s
        .event(&key, scanned_ago(link("ravi", "SB00005", "C0050"), 61))
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    let r = s.event(&key, unlink("ravi", "SB00005", None)).await;
    assert_eq!(r["code"], "undo_too_late", "{r}");
    let r = s
        .event(&key, unlink("admin", "SB00005", Some("C0050")))
        .await;
    assert_eq!(
        r["code"], "not_your_scan",
        "an admin without a reason is a worker: {r}"
    );
    let mut fix = unlink("admin", "SB00005", Some("C0050"));
    fix["reason"] = json!("scanned into the wrong bag");
    let r = s.event(&key, fix).await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["parent"]["children"], 0);
    let audit: i64 = traitortrack_server::on!(s.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'unlink_correction' AND entity_code = 'C0050'"
    )
    .fetch_one(c)
    .await)
    .expect("audit query");
    assert_eq!(audit, 1);
    // A dispatcher's reason does not make them an admin.
    assert_eq!(
        s.event(&key, link("ravi", "SB00001", "C0060")).await["status"],
        "applied"
    );
    let mut not_admin = unlink("sita", "SB00001", Some("C0060"));
    not_admin["reason"] = json!("I say so");
    assert_eq!(s.event(&key, not_admin).await["code"], "not_your_scan");
    s.assert_invariants().await;
}
on_both!(undo_rules);

/// Scans applied together keep their order: the parent lists its children
/// as they were scanned, and an undo in the same batch takes the last scan.
async fn a_batch_keeps_scan_order(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    // Codes scanned in falling order, so no order by code can pass for scan order.
    let scanned: Vec<String> = (1..=20).rev().map(|n| format!("C{n:04}")).collect();
    let mut batch: Vec<Value> = scanned.iter().map(|c| link("ravi", "SB00007", c)).collect();
    batch.push(unlink("ravi", "SB00007", Some("C0001")));
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, vec!["applied"; 21], "{body}");
    assert_eq!(s.children_of("SB00007").await, scanned[..19].to_vec());
    let r = s.event(&key, unlink("ravi", "SB00007", None)).await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(s.children_of("SB00007").await, scanned[..18].to_vec());
    s.assert_invariants().await;
}
on_both!(a_batch_keeps_scan_order);

async fn areas_and_roles_limit_scanning(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("mona", Role::Dispatcher, Some("south")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("dock-1", &["ravi", "mona", "bina"]).await;
    assert_eq!(
        s.event(&key, link("ravi", "SB00001", "C0001")).await["status"],
        "applied"
    );
    let (_, child) = s.get(&s.admin_token, "/api/v1/bags/C0001").await;
    assert_eq!(
        child["dispatch_area"], "north",
        "a child takes its parent's area"
    );

    let r = s.event(&key, link("mona", "SB00001", "C0002")).await;
    assert_eq!(r["code"], "wrong_area", "{r}");
    let r = s.event(&key, link("bina", "SB00001", "C0002")).await;
    assert_eq!(r["code"], "not_allowed", "{r}");

    // Dispatchers see only their own area.
    let mona = s.login("mona", None).await;
    let (status, body) = s.get(&mona, "/api/v1/bags/SB00001").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "wrong_area");
    let (status, page) = s.get(&mona, "/api/v1/bags").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));
    let ravi = s.login("ravi", None).await;
    let (_, page) = s.get(&ravi, "/api/v1/bags").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert!(s.event(&key, link("mona", "SB00002", "C0002")).await["status"] == "applied");
    s.assert_invariants().await;
}
on_both!(areas_and_roles_limit_scanning);

async fn workers_must_be_known_signed_in_and_active(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("gopal", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi"]).await;
    let r = s.event(&key, link("nobody", "SB00001", "C0001")).await;
    assert_eq!(r["code"], "unknown_worker", "{r}");
    let r = s.event(&key, link("gopal", "SB00001", "C0001")).await;
    assert_eq!(r["code"], "worker_not_signed_in_here", "{r}");
    // Logging in elsewhere does not count for this station.
    let other = s.station_with("dock-2", &["gopal"]).await;
    assert_eq!(
        s.event(&key, link("gopal", "SB00001", "C0001")).await["code"],
        "worker_not_signed_in_here"
    );
    assert_eq!(
        s.event(&other, link("gopal", "SB00001", "C0001")).await["status"],
        "applied"
    );

    // Switched off ten minutes ago: earlier scans still count, later ones do not.
    let off = traitortrack_server::db::Ts::new(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(10),
    );
    let mut tx = s.db.begin().await.expect("begin");
    traitortrack_server::on!(tx.conn(), |c| {
        sqlx::query("UPDATE users SET deactivated_at = $1 WHERE username = 'ravi'")
            .bind(off)
            .execute(c)
            .await
            .map(|_| ())
    })
    .expect("deactivate");
    tx.commit().await.expect("commit");
    let early = s
        .event(&key, scanned_ago(link("ravi", "SB00001", "C0004"), 20))
        .await;
    assert_eq!(early["status"], "applied", "scanned while active: {early}");
    let late = s.event(&key, link("ravi", "SB00001", "C0005")).await;
    assert_eq!(late["code"], "worker_inactive", "{late}");
    s.assert_invariants().await;
}
on_both!(workers_must_be_known_signed_in_and_active);

async fn stations_learn_the_formats_they_judge_offline_scans_by(s: &TestServer) {
    let key = s.station("dock-1").await;
    let (status, body) = traitortrack_tests::send(
        s.http
            .get(s.url("/api/v1/station/settings"))
            .header("x-station-key", &key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["station"], "dock-1");
    assert_eq!(body["formats"]["parents"][1]["capacity"], 15);
    assert_eq!(body["undo_window_secs"], 3600);
    let (status, body) =
        traitortrack_tests::send(s.http.get(s.url("/api/v1/station/settings"))).await;
    assert_eq!(status, 401, "{body}");
}
on_both!(stations_learn_the_formats_they_judge_offline_scans_by);

/// The totals and a bag as read back right after each scan: the server
/// keeps both close at hand, and a scan it applied must show at once.
async fn a_scan_shows_at_once_in_the_totals_and_the_bag(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("sita", Role::Dispatcher, Some("north")).await;
    let key = s.station_with("dock-1", &["ravi", "sita"]).await;
    let figure = |stats: &serde_json::Value, name: &str| stats[name].as_i64().expect(name);
    for (i, (who, child)) in [("ravi", "C0001"), ("sita", "C0002"), ("ravi", "C0003")]
        .into_iter()
        .enumerate()
    {
        let before = s.stats().await;
        // Read twice: a second read must not keep an old figure either.
        assert_eq!(s.stats().await, before);
        let r = s.event(&key, link(who, "SB00001", child)).await;
        assert_eq!(r["status"], "applied", "{r}");
        let after = s.stats().await;
        assert_eq!(figure(&after, "links"), figure(&before, "links") + 1);
        assert_eq!(figure(&after, "children"), figure(&before, "children") + 1);
        assert_eq!(
            figure(&after, "parents"),
            figure(&before, "parents") + i64::from(i == 0),
            "the parent was made by its first scan"
        );
        assert_eq!(
            figure(&after, "scans_today"),
            figure(&before, "scans_today") + 1
        );
        assert_eq!(
            figure(&after, "bags"),
            figure(&before, "bags") + 1 + i64::from(i == 0)
        );
    }

    let (status, bag) = s.get(&s.admin_token, "/api/v1/bags/sb00001").await;
    assert_eq!(status, 200, "{bag}");
    let mut fields: Vec<&str> = bag
        .as_object()
        .expect("a bag")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "bill",
            "capacity",
            "child_count",
            "children",
            "code",
            "complete",
            "created_at",
            "dispatch_area",
            "kind",
            "parent",
            "updated_at"
        ]
    );
    assert_eq!(
        (&bag["code"], &bag["kind"], &bag["parent"], &bag["bill"]),
        (
            &json!("SB00001"),
            &json!("parent"),
            &json!(null),
            &json!(null)
        )
    );
    assert_eq!(
        (&bag["child_count"], &bag["capacity"], &bag["complete"]),
        (&json!(3), &json!(30), &json!(false))
    );
    assert_eq!(bag["dispatch_area"], "north");
    let children: Vec<(&str, &str)> = bag["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| {
            assert!(c["linked_at"].is_string(), "{c}");
            (
                c["code"].as_str().unwrap_or_default(),
                c["linked_by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        children,
        [("C0001", "ravi"), ("C0002", "sita"), ("C0003", "ravi")],
        "in the order they went in, with who scanned them"
    );

    let (status, child) = s.get(&s.admin_token, "/api/v1/bags/C0002").await;
    assert_eq!(status, 200, "{child}");
    assert_eq!(
        (
            &child["kind"],
            &child["parent"],
            &child["children"],
            &child["capacity"]
        ),
        (&json!("child"), &json!("SB00001"), &json!([]), &json!(null))
    );
    let r = s.event(&key, unlink("ravi", "SB00001", None)).await;
    assert_eq!(r["status"], "applied", "{r}");
    let (_, child) = s.get(&s.admin_token, "/api/v1/bags/C0003").await;
    assert_eq!(child["parent"], json!(null), "taken out: no parent");
    let (status, body) = s.get(&s.admin_token, "/api/v1/bags/SB09999").await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (404, Some("bag_not_found"))
    );
    s.assert_invariants().await;
}
on_both!(a_scan_shows_at_once_in_the_totals_and_the_bag);
