//! Linking rules, run on SQLite and PostgreSQL: formats and normalisation,
//! capacity, one parent per child, parents scanned as children, undo.

use serde_json::json;
use traitortrack_protocol::Role;
use traitortrack_tests::{children, link, on_both, TestServer};

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
