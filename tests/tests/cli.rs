//! The `traitortrack` command as an operator uses it: first start on an empty
//! SQLite database, adding users and stations, and plain errors for bad settings.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use traitortrack_tests::{fresh_sqlite_url, send, server_binary, PASSWORD};

/// A running `traitortrack serve`, stopped on drop.
struct Served {
    child: Child,
    base: String,
    lines: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `serve` and reads its standard output up to the "running on" line.
fn serve(url: &str) -> Served {
    let port = free_port();
    let mut child = Command::new(server_binary!())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            url,
        ])
        .env("TRAITORTRACK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start traitortrack serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let done = line.contains("is running on");
            lines.push(line);
            if done {
                return Served {
                    child,
                    base: format!("http://127.0.0.1:{port}"),
                    lines,
                };
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not say it was running within 30 s: {lines:?}");
}

fn run(args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(server_binary!());
    cmd.args(args)
        .env("TRAITORTRACK_LOG", "warn")
        .stdin(Stdio::null());
    match password {
        Some(pw) => cmd.env("TRAITORTRACK_PASSWORD", pw),
        None => cmd.env_remove("TRAITORTRACK_PASSWORD"),
    };
    cmd.output().expect("run traitortrack")
}

#[tokio::test]
async fn first_start_prints_a_working_admin_password_once() {
    let url = fresh_sqlite_url();
    let server = serve(&url);
    let password = server
        .lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the first start prints the admin password")
        .to_string();
    assert!(server
        .lines
        .iter()
        .any(|l| l.contains(&format!("{}/api/v1", server.base))));
    let http = reqwest::Client::new();
    let (status, body) = send(
        http.post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"username": "admin", "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    let (status, _) = send(http.get(format!("{}/readyz", server.base))).await;
    assert_eq!(status, 200);
    drop(server);

    let again = serve(&url);
    assert!(
        !again.lines.iter().any(|l| l.contains("password")),
        "the password is shown once: {:?}",
        again.lines
    );
}

#[tokio::test]
async fn users_and_stations_from_the_command_line() {
    let url = fresh_sqlite_url();
    let out = run(
        &[
            "user",
            "add",
            "--username",
            "Ravi",
            "--role",
            "dispatcher",
            "--area",
            "north",
            "--database",
            &url,
        ],
        Some(PASSWORD),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Added ravi (dispatcher)"));

    let out = run(
        &[
            "user",
            "add",
            "--username",
            "gita",
            "--role",
            "dispatcher",
            "--database",
            &url,
        ],
        Some(PASSWORD),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("A dispatcher needs a dispatch area."));
    let out = run(
        &[
            "user",
            "add",
            "--username",
            "gita",
            "--role",
            "boss",
            "--database",
            &url,
        ],
        Some(PASSWORD),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin, biller or dispatcher"));
    let out = run(
        &[
            "user",
            "add",
            "--username",
            "gita",
            "--role",
            "biller",
            "--database",
            &url,
        ],
        Some("short"),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
    let out = run(
        &[
            "user",
            "add",
            "--username",
            "gita",
            "--role",
            "biller",
            "--database",
            &url,
        ],
        None,
    );
    assert!(
        !out.status.success(),
        "no password and no terminal is an error"
    );

    let out = run(&["station", "add", "Dock 1", "--database", &url], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Station key"))
        .nth(1)
        .map(str::trim)
        .expect("the key is printed")
        .to_string();

    // The station key and the user work against the served database.
    let server = serve(&url);
    let http = reqwest::Client::new();
    let (status, body) = send(
        http.post(format!("{}/api/v1/auth/login", server.base))
            .header("x-station-key", &key)
            .json(&json!({"username": "ravi", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        http.post(format!("{}/api/v1/events", server.base))
            .header("x-station-key", &key)
            .json(&json!({"events": [traitortrack_tests::link("ravi", "SB00001", "C0001")]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "applied");
}

#[test]
fn bad_settings_stop_with_a_plain_message_and_no_secrets() {
    let out = run(
        &[
            "migrate",
            "--database",
            "postgres://tt:s3cret-pw@127.0.0.1:1/tt",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("postgres://tt:***@127.0.0.1:1/tt"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");

    let out = run(&["migrate", "--database", "mysql://x"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must start with postgres:// or sqlite://")
    );

    let mut cmd = Command::new(server_binary!());
    let out = cmd
        .args(["migrate", "--database", &fresh_sqlite_url()])
        .env("TRAITORTRACK_UNDO_WINDOW_SECS", "soon")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("TRAITORTRACK_UNDO_WINDOW_SECS must be a number"));
}
