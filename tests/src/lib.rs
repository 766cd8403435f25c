//! Test harness for TraitorTrack's end-to-end tests: a throwaway PostgreSQL,
//! fresh databases, and real servers on 127.0.0.1 driven over real HTTP.
//!
//! PostgreSQL comes from `TRAITORTRACK_TEST_DATABASE_URL` (an account that may
//! create databases) or is started here from the server binaries on PATH or in
//! `/usr/lib/postgresql/*/bin`, as the `postgres` user when running as root.
//! When `CI` is set, a PostgreSQL that cannot be had is a failure, not a skip.

pub mod console_browser;
pub mod loadgen;
pub mod process;
pub mod sheets;
pub mod smtp;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use traitortrack_protocol::Role;
use traitortrack_server::areas;
use traitortrack_server::audit::Actor;
use traitortrack_server::config::{Config, Settings};
use traitortrack_server::db::{Db, Ts};
use traitortrack_server::users::{self, NewUser};
use traitortrack_server::AppState;

pub use traitortrack_server::db::Backend;

/// The password every test account gets.
pub const PASSWORD: &str = "test-password-123";

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        DB_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A PostgreSQL server for this test process, and the URL of a database on it
/// whose account may create databases.
struct Postgres {
    admin_url: String,
}

static POSTGRES: OnceLock<Result<Postgres, String>> = OnceLock::new();

fn postgres() -> Result<&'static Postgres, String> {
    POSTGRES
        .get_or_init(|| match std::env::var("TRAITORTRACK_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Postgres { admin_url: url }),
            _ => start_postgres_server(TEST_POSTGRES_SETTINGS)
                .map(|admin_url| Postgres { admin_url }),
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = dirs.into_iter().rev().find(|d| d.join("initdb").exists()) {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs a shell script, as the `postgres` user when we are root.
fn shell(script: &str, as_postgres: bool) -> Command {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    cmd.stdin(Stdio::null());
    cmd
}

/// The tests' PostgreSQL settings: fast, not durable.
const TEST_POSTGRES_SETTINGS: &str = "-c fsync=off -c synchronous_commit=off \
     -c full_page_writes=off -c max_connections=400 -c shared_buffers=128MB";

/// Starts a PostgreSQL server on 127.0.0.1 with these `-c` settings, in a
/// fresh data folder that goes when this process ends (the server stops then
/// too), and answers the URL of its `postgres` database as superuser.
pub fn start_postgres_server(settings: &str) -> Result<String, String> {
    let bin = pg_bin_dir()
        .ok_or("no PostgreSQL server binaries (initdb) on PATH or in /usr/lib/postgresql")?;
    let root = is_root();
    let dir = std::env::temp_dir().join(unique("traitortrack-pg"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    if root {
        let status = Command::new("chown")
            .args(["postgres:", &dir.display().to_string()])
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err("cannot hand the data folder to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let init = shell(
        &format!(
            "'{}/initdb' -D '{}' -U postgres -A trust -E UTF8 --locale=C --no-sync >'{}/initdb.log' 2>&1",
            bin.display(),
            data.display(),
            dir.display()
        ),
        root,
    )
    .status()
    .map_err(|e| format!("initdb did not run: {e}"))?;
    if !init.success() {
        let log = std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default();
        return Err(format!("initdb failed: {log}"));
    }
    let port = free_port()?;
    // The server stops when this test process is gone, whatever way it ends.
    let script = format!(
        "'{bin}/postgres' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         {settings} >'{dir}/postgres.log' 2>&1 & pg=$!; \
         while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 1; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf '{dir}'",
        bin = bin.display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    shell(&script, root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("postgres did not start: {e}"))?;
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(admin_url);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            return Err(format!("PostgreSQL did not answer within 60 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A new, empty PostgreSQL database; `None` (with a note) when PostgreSQL
/// cannot be had outside CI.
pub async fn fresh_postgres_url() -> Option<String> {
    let pg = match postgres() {
        Ok(pg) => pg,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set and PostgreSQL is not available: {e}")
        }
        Err(e) => {
            eprintln!("skipping the PostgreSQL run of this test: {e}");
            return None;
        }
    };
    Some(
        new_postgres_database(&pg.admin_url)
            .await
            .expect("create a test database"),
    )
}

/// Creates a new, empty database on the PostgreSQL server of `admin_url` (an
/// account that may create databases) and answers its URL.
pub async fn new_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = unique("tt");
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// A new SQLite database file in a fresh temp folder.
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join(unique("traitortrack-sqlite"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}", dir.join("tt.db").display())
}

pub async fn fresh_url(backend: Backend) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(fresh_sqlite_url()),
        Backend::Postgres => fresh_postgres_url().await,
    }
}

/// Settings for a test server on `url`: a lab's (see [`process::LAB_SETTINGS`]).
pub fn settings(url: &str) -> Settings {
    let config = Config {
        database_url: url.to_string(),
        listen: "127.0.0.1:0".into(),
        max_connections: 16,
        require_admin_totp: false,
        login_attempts_per_ip: 100_000,
        login_attempts_per_user: 100_000,
        // Some tests put dozens of dispatchers in one area.
        max_dispatchers_per_area: 1000,
        import_dir: scratch_import_dir(),
        ..Config::default()
    };
    config.validate().expect("test settings are valid")
}

/// Where test servers keep uploads and import results: a folder of this
/// test process under the system's temp folder, never the source tree.
fn scratch_import_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("traitortrack-test-imports-{}", std::process::id()))
}

/// Settings for a test server on `url` with the production defaults.
pub fn production_settings(url: &str) -> Settings {
    let config = Config {
        database_url: url.to_string(),
        listen: "127.0.0.1:0".into(),
        max_connections: 16,
        import_dir: scratch_import_dir(),
        ..Config::default()
    };
    config.validate().expect("test settings are valid")
}

/// A server running in this process on 127.0.0.1, with an admin account.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub db: Db,
    pub http: reqwest::Client,
    pub backend: Backend,
    pub url: String,
    pub admin_token: String,
    /// The server's clock: move it forward to pass a timeout without waiting.
    pub clock: traitortrack_server::Clock,
    /// The settings the server runs with.
    pub settings: std::sync::Arc<Settings>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server on a fresh database of `backend`; `None` when that
    /// backend cannot be had here (PostgreSQL outside CI only).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        let url = fresh_url(backend).await?;
        Some(TestServer::start_with(settings(&url)).await)
    }

    pub async fn start_with(settings: Settings) -> TestServer {
        let url = settings.database_url.clone();
        let db = Db::connect(&url, settings.max_connections)
            .await
            .expect("open the test database");
        db.migrate().await.expect("migrate the test database");
        let backend = db.backend();
        let state = AppState::new(db.clone(), settings);
        let settings_in_use = state.settings.clone();
        let clock = state.clock.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(60));
        let mut scheme = "http";
        if let Some(tls) = &state.settings.tls {
            // Trust the server's own certificate, as a configured client would.
            let pem = std::fs::read(&tls.cert).expect("read the test certificate");
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"),
            );
            scheme = "https";
        }
        let http = http.build().expect("http client");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(traitortrack_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        let mut server = TestServer {
            base: format!("{scheme}://{addr}"),
            addr,
            db,
            http,
            backend,
            url,
            admin_token: String::new(),
            clock,
            settings: settings_in_use,
            stop: Some(tx),
        };
        if users::find_by_username(server.db.reader(), "admin")
            .await
            .expect("look up admin")
            .is_none()
        {
            server.add_user("admin", Role::Admin, None).await;
        }
        server.admin_token = server.login("admin", None).await;
        server
    }

    /// Creates an account directly in the database, and its dispatch area
    /// first when there is no such area yet.
    pub async fn add_user(&self, username: &str, role: Role, area: Option<&str>) {
        let now = Ts::new(time::OffsetDateTime::now_utc());
        let mut tx = self.db.begin().await.expect("begin");
        if let Some(area) = area {
            areas::ensure(&mut tx, &Actor::default(), area, now)
                .await
                .expect("add the test area");
        }
        users::create(
            &mut tx,
            &self.settings,
            &Actor::default(),
            NewUser {
                username,
                password: PASSWORD,
                role,
                dispatch_area: area,
                must_change_password: false,
            },
            now,
        )
        .await
        .expect("create test user");
        tx.commit().await.expect("commit");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in with the test password, through a station when its key is given.
    pub async fn login(&self, username: &str, station_key: Option<&str>) -> String {
        let mut req = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}));
        if let Some(key) = station_key {
            req = req.header("x-station-key", key);
        }
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::OK, "login of {username} failed: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Registers a station as admin and returns its key.
    pub async fn station(&self, name: &str) -> String {
        let (status, body) = self
            .post_json(
                &self.admin_token,
                "/api/v1/stations",
                &json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "station: {body}");
        body["key"].as_str().expect("key").to_string()
    }

    /// A registered station with these workers logged in at it.
    pub async fn station_with(&self, name: &str, workers: &[&str]) -> String {
        let key = self.station(name).await;
        for w in workers {
            self.login(w, Some(&key)).await;
        }
        key
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        send(self.http.get(self.url(path)).bearer_auth(token)).await
    }

    pub async fn post_json(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.http.post(self.url(path)).bearer_auth(token).json(body)).await
    }

    pub async fn patch_json(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        send(
            self.http
                .patch(self.url(path))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// Sends events as a station; returns the status and the body.
    pub async fn events(&self, station_key: &str, events: &[Value]) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url("/api/v1/events"))
                .header("x-station-key", station_key)
                .json(&json!({"events": events})),
        )
        .await
    }

    /// Sends one event and returns its result (panics on a non-200 answer).
    pub async fn event(&self, station_key: &str, event: Value) -> Value {
        let (status, body) = self.events(station_key, &[event]).await;
        assert_eq!(status, StatusCode::OK, "events: {body}");
        body["results"][0].clone()
    }

    /// A parent's children as the server lists them, in link order.
    pub async fn children_of(&self, parent: &str) -> Vec<String> {
        let (status, bag) = self
            .get(&self.admin_token, &format!("/api/v1/bags/{parent}"))
            .await;
        assert_eq!(status, 200, "{bag}");
        bag["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| c["code"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The totals, as the admin sees them.
    pub async fn stats(&self) -> Value {
        let (status, body) = self.get(&self.admin_token, "/api/v1/stats").await;
        assert_eq!(status, StatusCode::OK, "stats: {body}");
        body
    }

    /// Checks the stored invariants: no parent over capacity, counters equal
    /// the tables, one link per child. Returns the number of links.
    pub async fn assert_invariants(&self) -> i64 {
        let sums: (i64, i64, i64, i64, i64) = traitortrack_server::on!(self.db.reader(), |c| {
            sqlx::query_as(
                "SELECT
                   (SELECT COUNT(*) FROM links),
                   (SELECT COUNT(*) FROM bags WHERE kind = 'parent'),
                   (SELECT COUNT(*) FROM bags WHERE kind = 'child'),
                   (SELECT COUNT(*) FROM bags WHERE kind = 'parent' AND child_count >= capacity),
                   (SELECT COUNT(*) FROM bags p WHERE p.kind = 'parent' AND
                      (p.child_count > p.capacity OR
                       p.child_count <> (SELECT COUNT(*) FROM links l WHERE l.parent_id = p.id)))",
            )
            .fetch_one(c)
            .await
        })
        .expect("invariant query");
        let (links, parents, children, complete, broken) = sums;
        assert_eq!(
            broken, 0,
            "parents over capacity or with a wrong child_count"
        );
        let stats = self.stats().await;
        assert_eq!(stats["links"], json!(links), "links counter");
        assert_eq!(stats["parents"], json!(parents), "parents counter");
        assert_eq!(stats["children"], json!(children), "children counter");
        assert_eq!(
            stats["complete_parents"],
            json!(complete),
            "complete counter"
        );
        links
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Sends a request; returns the status and the JSON body (`Null` when empty,
/// a string when the body is not JSON).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request reached the server");
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The current time as the wire wants it.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// A link event scanned now.
pub fn link(user: &str, parent: &str, child: &str) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": "link", "user": user,
           "parent": parent, "child": child, "at": now_rfc3339()})
}

/// An unlink (undo) event scanned now.
pub fn unlink(user: &str, parent: &str, child: Option<&str>) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": "unlink", "user": user,
           "parent": parent, "child": child, "at": now_rfc3339()})
}

pub fn bill_add(user: &str, bill: &str, parent: &str) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": "bill_add", "user": user,
           "bill": bill, "parent": parent, "at": now_rfc3339()})
}

pub fn bill_remove(user: &str, bill: &str, parent: &str) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": "bill_remove", "user": user,
           "bill": bill, "parent": parent, "at": now_rfc3339()})
}

/// `n` distinct child codes with a prefix: `C0001`, `C0002`, …
pub fn children(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// The server's command line as a program (this package's
/// `traitortrack-under-test`, the same code as `traitortrack`), always built
/// fresh by `cargo test`.
#[macro_export]
macro_rules! server_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_traitortrack-under-test"))
    };
}

/// The seed of a seeded test: `TRAITORTRACK_TEST_SEED` replays another run.
pub fn test_seed(default: u64) -> u64 {
    std::env::var("TRAITORTRACK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The longest any one end-to-end scenario may run before it fails.
pub const WHOLE_TEST: Duration = Duration::from_secs(300);

/// Runs a scenario, failing it if it outlasts [`WHOLE_TEST`].
pub async fn bounded(scenario: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(WHOLE_TEST, scenario)
        .await
        .expect("the scenario finished within its time bound");
}

/// Runs the scenario `async fn NAME(Backend)` (which sets up its own servers)
/// once per backend, as `NAME::sqlite` and `NAME::postgres`, time-bounded.
#[macro_export]
macro_rules! on_each_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::bounded(super::$name($crate::Backend::Sqlite)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::bounded(super::$name($crate::Backend::Postgres)).await;
            }
        }
    };
}

/// Runs the scenario `async fn NAME(&TestServer)` once on SQLite and once on
/// PostgreSQL, as the tests `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let server = $crate::TestServer::start($crate::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                super::$name(&server).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(server) = $crate::TestServer::start($crate::Backend::Postgres).await {
                    super::$name(&server).await;
                }
            }
        }
    };
}
