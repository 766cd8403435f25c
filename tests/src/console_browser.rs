//! The web console in a real browser: Debian's headless Chromium at
//! 1366x768, driven through chromedriver (W3C WebDriver over plain HTTP)
//! against a real test server. Every page a test looks at is checked for its
//! style sheet and for running wider than the window, and saved as a PNG
//! under `$CARGO_TARGET_DIR/console-screens/`.
//!
//! Needs chromium and chromium-driver (`apt-get install chromium
//! chromium-driver`). Outside CI a missing one is a skip with a note; with
//! `CI` set it is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::webdriver::{self, free_port, on_path, unavailable, SessionGuard, Terminated, WAIT};
use crate::TestServer;

/// The browser tests, as a skip or failure names them.
pub const TEST: &str = "web console browser test";

/// The console's page background: a page without its style sheet has none.
pub const STYLED_BACKGROUND: &str = "rgb(238, 241, 245)";

/// One browser at a time: the scenarios run in parallel threads, and a
/// two-core machine drives one Chromium well.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ------------------------------------------------------------ the browser

fn tool(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/bin").join(name);
    if debian.is_file() {
        Some(debian)
    } else {
        on_path(name)
    }
}

/// `$CARGO_TARGET_DIR/console-screens`, or the same beside this test's
/// own target folder.
pub fn screens_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/debug/deps/console-HASH -> target
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("console-screens")
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Headless Chromium at 1366x768 on a fresh profile, driven by a
/// chromedriver of its own, pointed at one test server.
pub struct Browser {
    pub wd: webdriver::Client,
    /// The server under test, `http://127.0.0.1:PORT`.
    pub base: String,
    // Dropped in this order: the session (Chromium closes), chromedriver,
    // the profile folder, then the turn for the next test.
    _session: SessionGuard,
    _driver: Terminated,
    _profile: TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Browser {
    type Target = webdriver::Client;

    fn deref(&self) -> &webdriver::Client {
        &self.wd
    }
}

impl std::ops::DerefMut for Browser {
    fn deref_mut(&mut self) -> &mut webdriver::Client {
        &mut self.wd
    }
}

impl Browser {
    /// A browser for `server`, its screenshots named `BACKEND-SCENARIO-NN-…`;
    /// `None` (a skip) when Chromium cannot be had outside CI.
    pub async fn open(server: &TestServer, scenario: &str) -> Option<Browser> {
        let Some(chromium) = tool("chromium") else {
            unavailable(TEST, "chromium is not installed (apt-get install chromium)");
            return None;
        };
        let Some(chromedriver) = tool("chromedriver") else {
            unavailable(
                TEST,
                "chromedriver is not installed (apt-get install chromium-driver)",
            );
            return None;
        };
        let turn = ONE_BROWSER.lock().await;

        let shots = screens_dir();
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        let prefix = format!("{}-{scenario}-", server.backend.as_str());
        for old in std::fs::read_dir(&shots).into_iter().flatten().flatten() {
            if old.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(old.path());
            }
        }
        eprintln!("{TEST}: screenshots in {}", shots.display());

        let profile =
            TempDir(std::env::temp_dir().join(format!("tt-chromium-{}", uuid::Uuid::now_v7())));
        std::fs::create_dir_all(&profile.0).expect("browser profile folder");
        let port = free_port();
        let log = profile.0.join("chromedriver.log");
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Terminated {
            name: "chromedriver",
            child,
        };
        let mut wd = webdriver::Client::new(format!("http://127.0.0.1:{port}"), shots);
        wd.shot_prefix = prefix;
        wd.wait_until_up(&mut driver, &log, WAIT).await;
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1366,768".into(),
            format!("--user-data-dir={}", profile.0.join("chromium").display()),
        ];
        let session = wd
            .start_session(json!({"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": args,
                },
                "goog:loggingPrefs": {"browser": "ALL"},
            }}))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session: {e}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Some(Browser {
            wd,
            base: server.base.clone(),
            _session: session,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Opens a console address (a path on the server).
    pub async fn visit(&self, path: &str) {
        self.goto(&format!("{}{path}", self.base)).await;
    }

    /// Waits until the page shown fits `ok`.
    pub async fn wait_page(&mut self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.wait_until(what, WAIT, LOOK, ok).await
    }

    /// The page as a person sees it: styled, no wider than the window,
    /// saved as a screenshot. Answers the look.
    pub async fn page(&mut self, name: &str) -> Value {
        let seen = self
            .wait_page(&format!("{name}: loaded and styled"), |v| {
                v["ready"] == "complete" && v["styled"] == STYLED_BACKGROUND
            })
            .await;
        assert_eq!(
            seen["overflow_x"], 0,
            "{name}: the page is wider than the window: {seen}"
        );
        self.shot(name).await;
        seen
    }

    /// Presses the submit button of a form.
    pub async fn submit(&self, form: &str) {
        self.click(&format!("{form} button[type=submit]")).await;
    }

    /// The console cookie as a `Cookie` header value (`tt_session=…`).
    pub async fn session_cookie(&self) -> String {
        let cookies = self.cookies().await;
        let value = cookies
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == "tt_session"))
            .and_then(|c| c["value"].as_str())
            .unwrap_or_else(|| panic!("no session cookie among {cookies}"))
            .to_string();
        format!("tt_session={value}")
    }

    /// Fails on a Content-Security-Policy report or a script error in the
    /// browser's console: the pages run no inline script or style.
    pub async fn assert_clean_console(&self) {
        let Ok(entries) = self
            .try_call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await
        else {
            eprintln!("this chromedriver does not hand out the browser's log; not checked");
            return;
        };
        let bad: Vec<&Value> = entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                // Pages answered 403, 404 or 422 on purpose are not faults.
                let m = e["message"].as_str().unwrap_or_default();
                (e["level"] == "SEVERE" && e["source"] != "network")
                    || m.contains("Content Security Policy")
            })
            .collect();
        assert!(bad.is_empty(), "the browser's console: {bad:?}");
    }

    /// Logs in through the login page, with no second step.
    pub async fn log_in(&mut self, username: &str, password: &str) -> Value {
        self.visit("/console/login").await;
        self.wait_page("login page", |v| v["h1"] == "Log in").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.submit("#login-form").await;
        self.wait_page("logged in", |v| v["path"] != "/console/login")
            .await
    }
}

/// One look at a console page.
pub const LOOK: &str = r#"
const q = (s) => document.querySelector(s);
const txt = (s) => { const e = q(s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : null; };
const rows = (s) => Array.from(document.querySelectorAll(s)).map((r) => r.innerText.trim().replace(/\s+/g, ' '));
const root = document.documentElement;
return {
  ready: document.readyState,
  path: location.pathname + location.search,
  h1: txt('h1'),
  notice: txt('#notice'),
  error: txt('#form-error'),
  refusal: txt('#refusal-message'),
  signed_in: txt('#signed-in'),
  nav: rows('.menu a'),
  code_step: !!q('#code-step'),
  forced: !!q('#forced'),
  required: !!q('#required'),
  secret: txt('#secret'),
  qr: !!q('#qr svg'),
  codes: rows('#recovery-codes code'),
  totals: Object.fromEntries(Array.from(document.querySelectorAll('[data-total]')).map((e) => [e.dataset.total, e.textContent.trim()])),
  live: q('#live') ? q('#live').className : null,
  live_text: q('#live') ? q('#live').innerText.trim().replace(/\s+/g, ' ') : null,
  bills: q('#open-bills-heading') ? rows('#open-bills tbody tr') : null,
  stations: q('#stations-heading') ? rows('#dashboard-stations tbody tr') : null,
  station_list: rows('#stations tbody tr'),
  styled: getComputedStyle(document.body).backgroundColor,
  overflow_x: Math.max(0, root.scrollWidth - root.clientWidth),
};
"#;

/// A total as the page writes it: `1,234`.
pub fn grouped(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A client that shows redirects instead of following them.
pub fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}
