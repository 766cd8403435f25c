//! The verifiable audit log, on SQLite and PostgreSQL: real actions verify; a
//! row changed or deleted behind the server's back is named by
//! `traitortrack audit verify`; the tables refuse plain changes; a row that
//! commits late is still sealed; and only admins may read the log.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use traitortrack_protocol::Role;
use traitortrack_server::audit::{self, Actor, Entry};
use traitortrack_server::db::{Backend, Db, Ts};
use traitortrack_server::on;
use traitortrack_tests::{link, on_both, server_binary, TestServer};

/// A day's work through the API: users, a station, links, a bill, a logout.
async fn some_work(s: &TestServer) {
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    s.add_user("bina", Role::Biller, None).await;
    let key = s.station_with("dock-1", &["ravi", "bina"]).await;
    let batch: Vec<Value> = ["C0001", "C0002", "C0003"]
        .iter()
        .map(|c| link("ravi", "SB12345", c))
        .collect();
    let (status, body) = s.events(&key, &batch).await;
    assert_eq!(status, 200, "{body}");
    let bina = s.login("bina", None).await;
    let (status, body) = s
        .post_json(
            &bina,
            "/api/v1/bills",
            &json!({"code": "B-1", "capacity": 5, "destination": "Kanpur"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s.post_json(&bina, "/api/v1/auth/logout", &json!({})).await;
    assert!(status.is_success(), "logout: {status} {body}");
}

async fn audit_rows(db: &Db) -> i64 {
    on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log"
    )
    .fetch_one(c)
    .await)
    .expect("count audit rows")
}

/// The id of the only audit row with this action.
async fn row_of(s: &TestServer, action: &str) -> i64 {
    let (status, page) = s
        .get(&s.admin_token, &format!("/api/v1/audit?action={action}"))
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one {action} row: {page}");
    items[0]["id"].as_i64().expect("id")
}

async fn verify_api(s: &TestServer) -> Value {
    let (status, body) = s
        .post_json(&s.admin_token, "/api/v1/audit/verify", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs `traitortrack audit verify` on the test database: exit code and all output.
async fn verify_cli(s: &TestServer) -> (i32, String) {
    let out = tokio::process::Command::new(server_binary!())
        .args(["audit", "verify", "--database", &s.url])
        .env("TRAITORTRACK_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run traitortrack audit verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `sql` as someone with the database's own keys: on PostgreSQL a
/// superuser's session with triggers off, on SQLite after dropping `trigger`.
async fn tamper(s: &TestServer, trigger: &str, sql: &str, id: i64) {
    match s.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&s.url).await.expect("connect");
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut c)
                .await
                .expect("triggers off");
            let done = sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("tamper");
            assert_eq!(done.rows_affected(), 1);
            c.close().await.ok();
        }
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&s.url)
                .await
                .expect("connect");
            sqlx::query(&format!("DROP TRIGGER {trigger}"))
                .execute(&mut c)
                .await
                .expect("drop trigger");
            let done = sqlx::query(sql)
                .bind(id)
                .execute(&mut c)
                .await
                .expect("tamper");
            assert_eq!(done.rows_affected(), 1);
            c.close().await.ok();
        }
    }
}

async fn real_actions_verify(s: &TestServer) {
    some_work(s).await;
    let report = verify_api(s).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["first_problem"], Value::Null);
    assert_eq!(report["unsealed"], 0, "{report}");
    assert_eq!(report["outside_chain"], 0, "{report}");
    let total = audit_rows(&s.db).await;
    assert!(total >= 8, "logins, station, links, bill, logout: {total}");
    assert_eq!(report["rows_checked"], total, "{report}");

    let (code, out) = verify_cli(s).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("The audit log is intact: {total} rows checked.")),
        "{out}"
    );

    // The list: every row once, newest first, sealed rows with their link.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/audit?limit=3&before={b}"),
            None => "/api/v1/audit?limit=3".to_string(),
        };
        let (status, page) = s.get(&s.admin_token, &path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        for item in items {
            assert!(item["seq"].as_i64().is_some(), "sealed: {item}");
            assert_eq!(item["hash"].as_str().map(str::len), Some(64), "{item}");
            seen.push(item["id"].as_i64().expect("id"));
        }
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, total);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    let (_, page) = s
        .get(&s.admin_token, "/api/v1/audit?action=bill_create")
        .await;
    let bill = &page["items"][0];
    assert_eq!(bill["actor"], "bina");
    assert_eq!(bill["entity_code"], "B-1");
    assert_eq!(bill["after"]["capacity"], 5, "{bill}");

    let (_, page) = s.get(&s.admin_token, "/api/v1/audit?actor=ravi").await;
    let items = page["items"].as_array().expect("items");
    assert!(items.len() >= 4, "a login and three links: {page}");
    assert!(items.iter().all(|i| i["actor"] == "ravi"), "{page}");
    let (_, page) = s
        .get(&s.admin_token, "/api/v1/audit?entity=bag&entity_code=C0002")
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["items"][0]["action"], "link");

    let (_, page) = s
        .get(&s.admin_token, "/api/v1/audit?from=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = s
        .get(
            &s.admin_token,
            "/api/v1/audit?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00%2B05:30",
        )
        .await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(100.min(total as usize))
    );
    let (status, body) = s.get(&s.admin_token, "/api/v1/audit?from=yesterday").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_time");
}
on_both!(real_actions_verify);

async fn a_changed_row_is_named(s: &TestServer) {
    some_work(s).await;
    assert_eq!(verify_api(s).await["ok"], true);
    let id = row_of(s, "bill_create").await;
    tamper(
        s,
        "audit_log_no_update",
        r#"UPDATE audit_log SET after = '{"capacity":50}' WHERE id = $1"#,
        id,
    )
    .await;

    let (code, out) = verify_cli(s).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("Audit row {id} ")), "{out}");
    assert!(out.contains("\"bill_create\""), "{out}");
    assert!(out.contains("changed"), "{out}");

    let report = verify_api(s).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["problems"], 1, "one change is one problem: {report}");
    let problem = report["first_problem"].as_str().expect("problem");
    assert!(problem.contains(&format!("Audit row {id} ")), "{problem}");
    // Rows after the changed one are still checked against their own links.
    assert_eq!(report["rows_checked"], audit_rows(&s.db).await, "{report}");
}
on_both!(a_changed_row_is_named);

async fn a_deleted_row_is_named(s: &TestServer) {
    some_work(s).await;
    assert_eq!(verify_api(s).await["ok"], true);
    let id = row_of(s, "bill_create").await;
    tamper(
        s,
        "audit_log_no_delete",
        "DELETE FROM audit_log WHERE id = $1",
        id,
    )
    .await;

    let (code, out) = verify_cli(s).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("Audit row {id} ")), "{out}");
    assert!(out.contains("missing"), "{out}");
    assert!(out.contains("deleted"), "{out}");
}
on_both!(a_deleted_row_is_named);

async fn a_row_written_around_the_log_is_counted(s: &TestServer) {
    some_work(s).await;
    let id: i64 = on!(s.db.writer(), |c| sqlx::query_scalar(
        "INSERT INTO audit_log (at, action, entity) VALUES ($1, 'forged', 'bag') RETURNING id"
    )
    .bind(Ts::new(time::OffsetDateTime::now_utc()))
    .fetch_one(c)
    .await)
    .expect("insert around the log");
    let report = verify_api(s).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["outside_chain"], 1, "{report}");
    let problem = report["first_problem"].as_str().expect("problem");
    assert!(problem.contains(&format!("Audit row {id} ")), "{problem}");
    assert!(problem.contains("forged"), "{problem}");
}
on_both!(a_row_written_around_the_log_is_counted);

async fn plain_changes_are_refused(s: &TestServer) {
    some_work(s).await;
    assert_eq!(verify_api(s).await["ok"], true);
    let statements = [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "UPDATE audit_chain SET hash = 'x'",
        "DELETE FROM audit_chain",
    ];
    for sql in statements {
        let refused = on!(s.db.writer(), |c| sqlx::query(sql)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .expect_err(sql);
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
    }
    if let Db::Pg(pool) = &s.db {
        for table in ["audit_log", "audit_chain"] {
            let refused = sqlx::query(&format!("TRUNCATE {table}"))
                .execute(pool)
                .await
                .expect_err("truncate");
            assert!(refused.to_string().contains("append-only"), "{refused}");
        }
    }
    let report = verify_api(s).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rows_checked"], audit_rows(&s.db).await);
}
on_both!(plain_changes_are_refused);

fn entry(action: &str) -> Entry<'_> {
    Entry {
        action,
        entity: "bag",
        code: Some("SB99999"),
        before: None,
        after: Some(json!({"n": 1})),
    }
}

/// The link position of an audit row, once sealed.
async fn seq_of(db: &Db, id: i64) -> Option<i64> {
    on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT seq FROM audit_chain WHERE audit_id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)
    .expect("chain lookup")
}

/// Seals (beside the server's own sealer) until the row is in the chain.
async fn sealed(db: &Db, id: i64) -> i64 {
    for _ in 0..200 {
        audit::seal(db).await.expect("seal");
        if let Some(seq) = seq_of(db, id).await {
            return seq;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("audit row {id} was not sealed within 10 s");
}

async fn late_commits_are_sealed(s: &TestServer) {
    // Everything so far sealed, so the sealer has nothing of its own to write.
    assert_eq!(verify_api(s).await["ok"], true);
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let actor = Actor {
        username: Some("test".into()),
        ..Actor::default()
    };
    // The late writer has its own connection (SQLite: its own writer).
    let other = Db::connect(&s.url, 2).await.expect("second connection");
    let mut late = other.begin().await.expect("begin");
    let late_id = audit::record_id(&mut late, &actor, now, entry("late"))
        .await
        .expect("record");

    let early_seq = match s.backend {
        Backend::Postgres => {
            let mut early = s.db.begin().await.expect("begin");
            let early_id = audit::record_id(&mut early, &actor, now, entry("early"))
                .await
                .expect("record");
            early.commit().await.expect("commit");
            assert!(early_id > late_id);
            let seq = sealed(&s.db, early_id).await;
            Some(seq)
        }
        Backend::Sqlite => {
            // One writer at a time: nothing else commits while `late` is open,
            // but the sealer runs and must neither block on it nor lose it.
            assert_eq!(audit::seal(&s.db).await.expect("seal"), 0);
            None
        }
    };
    assert_eq!(seq_of(&s.db, late_id).await, None, "not committed yet");

    late.commit().await.expect("commit the late row");
    let late_seq = sealed(&s.db, late_id).await;
    if let Some(early_seq) = early_seq {
        assert!(
            late_seq > early_seq,
            "chain order is seal order: {late_seq} after {early_seq}"
        );
    }
    other.close().await;

    let report = verify_api(s).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["unsealed"], 0, "{report}");
    assert_eq!(report["rows_checked"], audit_rows(&s.db).await, "{report}");
}
on_both!(late_commits_are_sealed);

async fn only_admins_read_the_log(s: &TestServer) {
    s.add_user("bina", Role::Biller, None).await;
    s.add_user("ravi", Role::Dispatcher, Some("north")).await;
    for user in ["bina", "ravi"] {
        let token = s.login(user, None).await;
        let (status, body) = s.get(&token, "/api/v1/audit").await;
        assert_eq!(status, 403, "{user}: {body}");
        assert_eq!(body["error"]["code"], "not_allowed");
        let (status, body) = s
            .post_json(&token, "/api/v1/audit/verify", &json!({}))
            .await;
        assert_eq!(status, 403, "{user}: {body}");
    }
    let (status, _) = traitortrack_tests::send(s.http.get(s.url("/api/v1/audit"))).await;
    assert_eq!(status, 401);
    let (status, page) = s.get(&s.admin_token, "/api/v1/audit").await;
    assert_eq!(status, 200, "{page}");
}
on_both!(only_admins_read_the_log);
