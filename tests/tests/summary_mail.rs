//! The end-of-day summary by mail, on SQLite and PostgreSQL, delivered by a
//! real server through lettre to an SMTP server the test starts on
//! 127.0.0.1: sent once a day to the admins and billers with an address,
//! never twice (a second server process on the same database sends
//! nothing), and tried again after a failure.

use std::time::{Duration, Instant};

use calamine::{Reader, Xlsx};
use serde_json::json;
use traitortrack_protocol::{CreateBill, Role};
use traitortrack_server::audit::Actor;
use traitortrack_server::config::Settings;
use traitortrack_server::db::{Db, Ts};
use traitortrack_server::mail::{mailbox, Security, Smtp};
use traitortrack_server::summary_mail::{self, Outcome};
use traitortrack_server::{bills, on, users};
use traitortrack_tests::smtp::SmtpSink;
use traitortrack_tests::{fresh_url, on_each_backend, settings, Backend, TestServer, PASSWORD};

/// Settings that mail the summary through the sink at `port`, from midnight on.
fn mailing(url: &str, port: u16) -> Settings {
    let mut s = settings(url);
    s.smtp = Some(Smtp {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        login: None,
        from: mailbox("TraitorTrack <tt@warehouse.test>").expect("an address"),
    });
    s.summary_mail_at = time::Time::MIDNIGHT;
    s
}

fn now() -> Ts {
    Ts::new(time::OffsetDateTime::now_utc())
}

/// A database with readers (an admin and a biller with addresses, a biller
/// and a dispatcher without) and one bill made today by `bina`.
async fn prepared(url: &str) -> Db {
    let db = Db::connect(url, 4).await.expect("open");
    db.migrate().await.expect("migrate");
    let s = settings(url);
    let actor = Actor::default();
    let mut tx = db.begin().await.expect("begin");
    traitortrack_server::areas::ensure(&mut tx, &actor, "north", now())
        .await
        .expect("area");
    for (name, role, area) in [
        ("admin", Role::Admin, None),
        ("bina", Role::Biller, None),
        ("bilal", Role::Biller, None),
        ("ravi", Role::Dispatcher, Some("north")),
    ] {
        let new = users::NewUser {
            username: name,
            password: PASSWORD,
            role,
            dispatch_area: area,
            must_change_password: false,
        };
        users::create(&mut tx, &s, &actor, new, now())
            .await
            .expect("a user");
    }
    let admin = users::get(&mut tx, "admin").await.expect("admin");
    for (name, address) in [
        ("admin", "boss@warehouse.test"),
        ("bina", "bina@warehouse.test"),
        ("ravi", "ravi@warehouse.test"),
    ] {
        users::set_email(&mut tx, &admin, &actor, name, Some(address), now())
            .await
            .expect("an address");
    }
    let bina = users::get(&mut tx, "bina").await.expect("bina");
    let bill = CreateBill {
        code: "MAIL-1".into(),
        capacity: 3,
        destination: Some("Kanpur".into()),
        vehicle_number: None,
        description: None,
    };
    bills::create(&mut tx, &bina, &actor, &bill, now())
        .await
        .expect("a bill");
    tx.commit().await.expect("commit");
    db
}

/// Waits (at most 15 s) until the sink holds `n` messages.
async fn wait_for(sink: &SmtpSink, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.messages().len() < n {
        assert!(
            Instant::now() < deadline,
            "no mail within 15 s: {:?}",
            sink.messages()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_summary_is_mailed_once(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let db = prepared(&url).await;
    let sink = SmtpSink::start().await;
    // The server sends at its first round, as its time (midnight) has come.
    let server = TestServer::start_with(mailing(&url, sink.port)).await;
    wait_for(&sink, 1).await;
    let mail = &sink.messages()[0];
    assert_eq!(mail.from, "<tt@warehouse.test>");
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(
        to,
        ["<bina@warehouse.test>", "<boss@warehouse.test>"],
        "admins and billers with an address; not the dispatcher"
    );
    let data = &mail.data;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(server.settings.utc_offset)
        .date();
    assert!(
        data.contains(&format!("Subject: TraitorTrack: bills of {today}")),
        "{data}"
    );
    assert!(data.contains("Bills made: 1"), "{data}");
    assert!(data.contains("bina: 1 made"), "{data}");
    assert!(
        data.contains(&format!("traitortrack-summary-{today}.xlsx")),
        "{data}"
    );
    assert!(
        data.contains(&format!("traitortrack-summary-{today}.csv")),
        "{data}"
    );
    // The workbook, taken out of the message, holds the day's figures.
    let workbook = attachment(data, "xlsx");
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(workbook)).expect("a workbook");
    let sheet = book.worksheet_range("Summary").expect("the summary sheet");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(rows[1][1], "bina", "{rows:?}");
    assert_eq!(rows[1][2], "1", "{rows:?}");
    assert_eq!(rows[2][1], "All billers", "{rows:?}");

    // Audited, and never sent twice: not by this server's next round, not
    // by a second server process on the same database.
    let sent: i64 = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'summary_mailed'"
    )
    .fetch_one(c)
    .await)
    .expect("count");
    assert_eq!(sent, 1);
    let outcome = summary_mail::send_if_due(&db, &server.settings, now())
        .await
        .expect("a check");
    assert_eq!(outcome, Outcome::Done);
    let second = TestServer::start_with(mailing(&url, sink.port)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 1, "one mail a day");
    drop(second);

    // The next day it goes again.
    let tomorrow = Ts::new(now().time() + time::Duration::days(1));
    let outcome = summary_mail::send_if_due(&db, &server.settings, tomorrow)
        .await
        .expect("the next day's mail");
    assert!(
        matches!(outcome, Outcome::Sent { recipients: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(sink.messages().len(), 2);
    assert!(sink.messages()[1].data.contains("Bills made: 0"));
}
on_each_backend!(the_summary_is_mailed_once);

async fn a_failed_send_is_tried_again(backend: Backend) {
    let Some(url) = fresh_url(backend).await else {
        return;
    };
    let db = prepared(&url).await;
    // Nothing listens on this port yet.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port();
    let s = mailing(&url, closed);
    let at = now();
    let failed = summary_mail::send_if_due(&db, &s, at).await;
    assert!(failed.is_err(), "{failed:?}");
    let (attempts, error): (i32, Option<String>) = on!(db.reader(), |c| sqlx::query_as(
        "SELECT attempts, last_error FROM mail_log WHERE kind = 'summary'"
    )
    .fetch_one(c)
    .await)
    .expect("the mail log");
    assert_eq!(attempts, 1);
    assert!(
        error.is_some_and(|e| e.contains("127.0.0.1")),
        "the failure is kept"
    );
    // Not again at once...
    let outcome = summary_mail::send_if_due(&db, &s, at)
        .await
        .expect("a check");
    assert_eq!(outcome, Outcome::Done);
    // ...but after the wait, to a server that now answers.
    let sink = SmtpSink::start().await;
    let s = mailing(&url, sink.port);
    let later = Ts::new(at.time() + time::Duration::minutes(11));
    let outcome = summary_mail::send_if_due(&db, &s, later)
        .await
        .expect("the retry");
    assert!(
        matches!(outcome, Outcome::Sent { recipients: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(sink.messages().len(), 1);
    // Without an SMTP server set there is nothing to do.
    let quiet = settings(&url);
    let outcome = summary_mail::send_if_due(&db, &quiet, later)
        .await
        .expect("a check");
    assert_eq!(outcome, Outcome::NotDue);
}
on_each_backend!(a_failed_send_is_tried_again);

/// Setting a mail address through the API: admins only, plain refusals.
async fn addresses_are_set_by_admins(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.add_user("bina", Role::Biller, None).await;
    let path = "/api/v1/users/bina/email";
    let put = |token: &str, body: serde_json::Value| {
        traitortrack_tests::send(
            server
                .http
                .put(server.url(path))
                .bearer_auth(token)
                .json(&body),
        )
    };
    let (status, body) = put(&server.admin_token, json!({"email": "bina@warehouse.test"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "bina@warehouse.test");
    assert_eq!(
        users::email(&server.db, "bina")
            .await
            .expect("read")
            .as_deref(),
        Some("bina@warehouse.test")
    );
    let (status, body) = put(&server.admin_token, json!({"email": "not an address"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_email");
    let bina = server.login("bina", None).await;
    let (status, _) = put(&bina, json!({"email": "x@warehouse.test"})).await;
    assert_eq!(status, 403);
    let (status, body) = put(&server.admin_token, json!({"email": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(users::email(&server.db, "bina").await.expect("read"), None);
    let changes: i64 = on!(server.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'email_change' AND entity_code = 'bina'"
    )
    .fetch_one(c)
    .await)
    .expect("count");
    assert_eq!(changes, 2, "each change is audited");
}
on_each_backend!(addresses_are_set_by_admins);

/// The base64 body of the attachment whose file name ends in `.ext`, decoded.
fn attachment(message: &str, ext: &str) -> Vec<u8> {
    use base64::Engine as _;
    let name = format!(".{ext}\"");
    let start = message
        .find(&name)
        .unwrap_or_else(|| panic!("no .{ext} attachment"));
    let rest = &message[start..];
    let body_start = rest
        .find("\r\n\r\n")
        .map(|i| i + 4)
        .expect("the part's body");
    let body = &rest[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    let text: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}
