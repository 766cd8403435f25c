//! Bill rules, run on SQLite and PostgreSQL: codes, capacity, one bill per
//! parent, statuses, closing, weights, and who may do what.

use serde_json::{json, Value};
use traitortrack_protocol::Role;
use traitortrack_tests::{bill_add, bill_remove, children, link, on_both, TestServer};

/// A station where `ravi` (dispatcher) fills parents and `bina` (biller) bills them.
async fn warehouse(s: &TestServer) -> (String, String) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("dock-1", &["ravi", "bina", "admin"]).await;
    let bina = s.login("bina", None).await;
    (key, bina)
}

/// Links `n` children into `parent` in one batch.
async fn fill(s: &TestServer, key: &str, parent: &str, prefix: &str, n: usize) {
    let batch: Vec<Value> = children(prefix, n)
        .iter()
        .map(|c| link("ravi", parent, c))
        .collect();
    let (status, body) = s.events(key, &batch).await;
    assert_eq!(status, 200);
    assert!(
        body["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == "applied"),
        "{body}"
    );
}

async fn create_bill(s: &TestServer, token: &str, code: &str, capacity: i64) -> (u16, Value) {
    let (status, body) = s
        .post_json(
            token,
            "/api/v1/bills",
            &json!({"code": code, "capacity": capacity, "destination": "Kanpur",
                    "vehicle_number": "UP32 AB 1234", "description": "rice"}),
        )
        .await;
    (status.as_u16(), body)
}

async fn bill_codes_and_capacity(s: &TestServer) {
    let (_, bina) = warehouse(s).await;
    for bad in [0, 51, -3] {
        let (status, body) = create_bill(s, &bina, "B-1", bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_capacity");
    }
    let (status, body) = create_bill(s, &bina, " b-1 ", 50).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["code"], "B-1");
    assert_eq!(body["status"], "new");
    assert_eq!(body["destination"], "Kanpur");
    assert_eq!(body["created_by"], "bina");
    let (status, body) = create_bill(s, &bina, "B-1", 5).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "bill_exists");

    // Editable up to 500.
    let (status, body) = s
        .patch_json(&bina, "/api/v1/bills/b-1", &json!({"capacity": 500}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["capacity"], 500);
    let (status, body) = s
        .patch_json(&bina, "/api/v1/bills/B-1", &json!({"capacity": 501}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .patch_json(&bina, "/api/v1/bills/NOPE", &json!({"capacity": 5}))
        .await;
    assert_eq!(status, 404);
    let (_, stats) = s.get(&bina, "/api/v1/stats").await;
    assert_eq!(stats["bills"]["new"], 1);
}
on_both!(bill_codes_and_capacity);

async fn parents_fill_a_bill_and_weights_follow(s: &TestServer) {
    let (key, bina) = warehouse(s).await;
    fill(s, &key, "SB00001", "A", 30).await;
    fill(s, &key, "SB00002", "B", 10).await;
    fill(s, &key, "M444-00003", "C", 15).await;
    create_bill(s, &bina, "BILL1", 2).await;

    let r = s.event(&key, bill_add("bina", "BILL1", "SB00001")).await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["bill"]["status"], "in_progress");
    let r = s.event(&key, bill_add("bina", "BILL1", "SB00002")).await;
    assert_eq!(r["bill"]["status"], "ready", "{r}");
    let r = s.event(&key, bill_add("bina", "BILL1", "M444-00003")).await;
    assert_eq!(r["code"], "bill_full", "{r}");
    assert_eq!(r["message"], "Bill BILL1 is full: 2 of 2");

    let (_, bill) = s.get(&bina, "/api/v1/bills/BILL1").await;
    assert_eq!(bill["parent_count"], 2);
    assert_eq!(bill["child_count"], 40);
    assert_eq!(bill["actual_weight_kg"], 40.0);
    assert_eq!(bill["expected_weight_kg"], 60.0);
    assert_eq!(bill["parents"][0]["code"], "SB00001");

    // One bill per parent.
    create_bill(s, &bina, "BILL2", 5).await;
    let r = s.event(&key, bill_add("bina", "BILL2", "SB00001")).await;
    assert_eq!(r["code"], "parent_on_other_bill", "{r}");
    assert_eq!(r["message"], "SB00001 is already on bill BILL1.");
    let r = s.event(&key, bill_add("bina", "BILL1", "SB00001")).await;
    assert_eq!(r["code"], "already_on_bill", "{r}");
    let r = s.event(&key, bill_add("bina", "BILL2", "SB09999")).await;
    assert_eq!(r["code"], "bag_not_found", "{r}");
    let r = s.event(&key, bill_add("bina", "BILL2", "A0001")).await;
    assert_eq!(r["code"], "not_a_parent", "{r}");
    let r = s
        .event(&key, bill_add("bina", "NOBILL", "M444-00003"))
        .await;
    assert_eq!(r["code"], "bill_not_found", "{r}");

    // Taking a parent off frees it for another bill.
    let r = s.event(&key, bill_remove("bina", "BILL1", "SB00002")).await;
    assert_eq!(r["bill"]["status"], "in_progress", "{r}");
    let r = s.event(&key, bill_remove("bina", "BILL1", "SB00002")).await;
    assert_eq!(r["code"], "not_on_bill", "{r}");
    assert_eq!(
        s.event(&key, bill_add("bina", "BILL2", "SB00002")).await["status"],
        "applied"
    );
    let (_, bag) = s.get(&bina, "/api/v1/bags/SB00002").await;
    assert_eq!(bag["bill"], "BILL2");

    // A child linked later raises the bill's actual weight.
    fill(s, &key, "SB00002", "D", 5).await;
    let (_, bill) = s.get(&bina, "/api/v1/bills/BILL2").await;
    assert_eq!(bill["actual_weight_kg"], 15.0);
    let (_, stats) = s.get(&bina, "/api/v1/stats").await;
    assert_eq!(
        stats["bills"],
        json!({"new": 0, "in_progress": 2, "ready": 0, "closed": 0})
    );
    s.assert_invariants().await;
}
on_both!(parents_fill_a_bill_and_weights_follow);

async fn closing_and_reopening(s: &TestServer) {
    let (key, bina) = warehouse(s).await;
    fill(s, &key, "SB00001", "A", 3).await;
    fill(s, &key, "SB00002", "B", 3).await;
    create_bill(s, &bina, "EARLY", 3).await;
    create_bill(s, &bina, "FULL", 1).await;
    s.event(&key, bill_add("bina", "EARLY", "SB00001")).await;
    s.event(&key, bill_add("bina", "FULL", "SB00002")).await;

    let (status, body) = s
        .post_json(&bina, "/api/v1/bills/EARLY/close", &json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "reason_required");
    assert_eq!(
        body["error"]["message"],
        "Bill EARLY has 1 of 3 parent bags. Give a reason to close it early."
    );
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/bills/EARLY/close",
            &json!({"reason": "truck leaving now"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "closed");
    assert_eq!(body["close_reason"], "truck leaving now");
    // A full bill closes without a reason, and without a body at all.
    let (status, body) = traitortrack_tests::send(
        s.http
            .post(s.url("/api/v1/bills/FULL/close"))
            .bearer_auth(&bina),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "closed");

    // Closed means closed: no parents added or removed, no edits, no more children.
    let r = s.event(&key, bill_add("bina", "EARLY", "SB00003")).await;
    assert_eq!(r["code"], "bill_closed", "{r}");
    let r = s.event(&key, bill_remove("bina", "EARLY", "SB00001")).await;
    assert_eq!(r["code"], "bill_closed", "{r}");
    let r = s.event(&key, link("ravi", "SB00001", "A0099")).await;
    assert_eq!(r["code"], "bill_closed", "{r}");
    let (status, _) = s
        .patch_json(&bina, "/api/v1/bills/EARLY", &json!({"destination": "x"}))
        .await;
    assert_eq!(status, 409);
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/bills/EARLY/close",
            &json!({"reason": "again"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Only an admin reopens.
    let (status, body) = s
        .post_json(&bina, "/api/v1/bills/EARLY/reopen", &json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/bills/EARLY/reopen", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "in_progress");
    assert_eq!(body["close_reason"], Value::Null);
    let (status, _) = s
        .post_json(&s.admin_token, "/api/v1/bills/EARLY/reopen", &json!({}))
        .await;
    assert_eq!(status, 409);
    let (_, stats) = s.get(&bina, "/api/v1/stats").await;
    assert_eq!(
        stats["bills"],
        json!({"new": 0, "in_progress": 1, "ready": 0, "closed": 1})
    );
    s.assert_invariants().await;
}
on_both!(closing_and_reopening);

async fn who_may_touch_bills(s: &TestServer) {
    let (key, bina) = warehouse(s).await;
    let ravi = s.login("ravi", None).await;
    let (status, body) = create_bill(s, &ravi, "B1", 5).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_allowed");
    create_bill(s, &bina, "B1", 5).await;
    let (status, _) = s.get(&ravi, "/api/v1/bills/B1").await;
    assert_eq!(status, 403);
    let (status, _) = s.get(&ravi, "/api/v1/bills").await;
    assert_eq!(status, 403);
    fill(s, &key, "SB00001", "A", 2).await;
    let r = s.event(&key, bill_add("ravi", "B1", "SB00001")).await;
    assert_eq!(r["code"], "not_allowed", "{r}");
    // Billers read bags but do not scan them into parents or register stations.
    let (status, _) = s.get(&bina, "/api/v1/bags/SB00001").await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post_json(&bina, "/api/v1/stations", &json!({"name": "x"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .post_json(&ravi, "/api/v1/stations", &json!({"name": "x"}))
        .await;
    assert_eq!(status, 403);
    // The admin may do all of it.
    assert_eq!(
        s.event(&key, bill_add("admin", "B1", "SB00001")).await["status"],
        "applied"
    );
}
on_both!(who_may_touch_bills);

async fn lists_page_with_cursors(s: &TestServer) {
    let (key, bina) = warehouse(s).await;
    for i in 1..=5 {
        fill(s, &key, &format!("SB1000{i}"), &format!("P{i}X"), 1).await;
        create_bill(s, &bina, &format!("L{i}"), 1).await;
    }
    fill(s, &key, "SB20001", "Q", 1).await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/bags?kind=parent&search=sb1&limit=2".to_string();
    for _ in 0..10 {
        let (status, page) = s.get(&bina, &path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["code"].as_str().expect("code").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/bags?kind=parent&search=sb1&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["SB10001", "SB10002", "SB10003", "SB10004", "SB10005"]
    );
    let (_, page) = s.get(&bina, "/api/v1/bags?kind=parent&complete=true").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));
    let (_, page) = s.get(&bina, "/api/v1/bags?kind=child&limit=500").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(6));

    let (_, page) = s.get(&bina, "/api/v1/bills?limit=3").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let cursor = page["next_cursor"].as_str().expect("more bills");
    let (_, page) = s
        .get(&bina, &format!("/api/v1/bills?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(page["items"][1]["code"], "L5");
    assert_eq!(page["next_cursor"], Value::Null);
    s.event(&key, bill_add("bina", "L2", "SB10002")).await;
    let (_, page) = s.get(&bina, "/api/v1/bills?status=ready").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let today = time::OffsetDateTime::now_utc().date();
    let (_, page) = s.get(&bina, &format!("/api/v1/bills?date={today}")).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5));
    let (_, page) = s.get(&bina, "/api/v1/bills?date=2001-01-01").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));
    let (status, body) = s.get(&bina, "/api/v1/bills?date=yesterday").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_date");
}
on_both!(lists_page_with_cursors);
