//! A small W3C WebDriver client over plain HTTP, shared by the browser tests:
//! the station app (tauri-driver and WebKitWebDriver under Xvfb) and the web
//! console (chromedriver and headless Chromium). Also what such tests need
//! around it: finding a tool, a free port, child processes stopped politely,
//! a session ended even when a test fails, and screenshots as numbered PNGs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key of an element reference in WebDriver answers.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The longest a wait on the page may take by default.
pub const WAIT: Duration = Duration::from_secs(20);

/// A tool a browser test cannot run without: a skip with a note outside CI,
/// a failure when `CI` is set.
pub fn unavailable(test: &str, what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and the {test} cannot run: {what}");
    }
    eprintln!("skipping the {test}: {what}");
}

/// A program on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process stopped with SIGTERM when dropped (never SIGKILL: a killed
/// tauri-driver orphans WebKitWebDriver, and a killed chromedriver its
/// browser, which then hold pipes open).
pub struct Terminated {
    pub name: &'static str,
    pub child: Child,
}

impl Terminated {
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Terminated {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} (pid {}) did not stop within 10 s of SIGTERM",
            self.name,
            self.child.id()
        );
    }
}

/// A WebDriver server's client, with one session at a time.
pub struct Client {
    pub http: reqwest::Client,
    /// The WebDriver server, `http://127.0.0.1:PORT`.
    pub base: String,
    pub session: Option<String>,
    /// Where screenshots go.
    pub shots: PathBuf,
    /// Put before the number of each screenshot's name.
    pub shot_prefix: String,
    pub shot_count: u32,
}

impl Client {
    pub fn new(base: String, shots: PathBuf) -> Client {
        Client {
            http: reqwest::Client::new(),
            base,
            session: None,
            shots,
            shot_prefix: String::new(),
            shot_count: 0,
        }
    }

    /// Waits until the WebDriver server answers `/status`; fails with its log
    /// when the process ends first or `within` passes.
    pub async fn wait_until_up(&self, driver: &mut Terminated, log: &Path, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self
                .try_call(reqwest::Method::GET, "/status", None)
                .await
                .is_ok()
            {
                return;
            }
            if let Some(exit) = driver.exited() {
                panic!(
                    "{} exited ({exit}): {}",
                    driver.name,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer on {} within {within:?}",
                driver.name,
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a session with these capabilities; the guard ends it.
    pub async fn start_session(&mut self, capabilities: Value) -> Result<SessionGuard, String> {
        let session = self
            .try_call(
                reqwest::Method::POST,
                "/session",
                Some(json!({ "capabilities": capabilities })),
            )
            .await?;
        let id = session["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {session}"))?
            .to_string();
        self.session = Some(id.clone());
        Ok(SessionGuard {
            base: self.base.clone(),
            id,
        })
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    /// One command of the session (or of the server, before a session).
    pub async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = match &self.session {
            Some(id) => format!("{}/session/{id}{path}", self.base),
            None => format!("{}{path}", self.base),
        };
        let mut req = self
            .http
            .request(method, url)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let value: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!("{status}: {value}"))
        }
    }

    /// The element a CSS selector finds first.
    pub async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element id for {css}: {found}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types into a form field as a person would (WebDriver element send keys).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// One key pressed and let go, into whatever has focus.
    pub async fn press(&self, key: &str) {
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": key},
                    {"type": "keyUp", "value": key},
                ]}]}),
            ),
        )
        .await;
        self.call(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Runs a script in the page and answers what it returns.
    pub async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Runs an async script: it ends by calling `done(value)`.
    pub async fn js_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({
                "script": format!("const done = arguments[arguments.length - 1];\n{script}"),
                "args": [],
            })),
        )
        .await
    }

    /// Opens an address and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The address of the page shown.
    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sets the window's outer size.
    pub async fn set_window(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// The session's cookies, HttpOnly ones too.
    pub async fn cookies(&self) -> Value {
        self.call(reqwest::Method::GET, "/cookie", None).await
    }

    /// Waits (at most `within`) until `ok` holds for what `script` returns.
    /// A script that fails (a page still loading) counts as not yet. On a
    /// timeout the page is saved as a `FAILED-…` screenshot.
    pub async fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        script: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let seen = self
                .try_call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": script, "args": []})),
                )
                .await
                .unwrap_or_else(|e| json!({ "script_error": e }));
            if ok(&seen) {
                return seen;
            }
            if start.elapsed() > within {
                let shot = self.shot(&format!("FAILED-{}", slug(what))).await;
                panic!(
                    "not seen within {within:?}: {what}\nseen: {}\nscreenshot: {}",
                    serde_json::to_string_pretty(&seen).unwrap_or_default(),
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the window as `PREFIX-NN-name.png` and returns its path.
    pub async fn shot(&mut self, name: &str) -> PathBuf {
        self.shot_count += 1;
        let path = self.shots.join(format!(
            "{}{:02}-{}.png",
            self.shot_prefix,
            self.shot_count,
            slug(name)
        ));
        // The window is captured as last painted: let two frames pass first.
        let _ = self
            .try_call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[0]; \
                               requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
                    "args": [],
                })),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        match self
            .try_call(reqwest::Method::GET, "/screenshot", None)
            .await
        {
            Ok(Value::String(b64)) => match base64_decode(&b64) {
                Some(png) => std::fs::write(&path, png).expect("write screenshot"),
                None => eprintln!("screenshot {name}: not base64"),
            },
            other => eprintln!("screenshot {name}: {other:?}"),
        }
        eprintln!("screenshot: {}", path.display());
        path
    }
}

/// Ends a WebDriver session (closing its browser or app) when the test ends,
/// also on a failure: a blocking DELETE, since Drop cannot await.
pub struct SessionGuard {
    base: String,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.id);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = reqwest::Client::new()
                        .delete(url)
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await;
                });
            }
        })
        .join();
    }
}

/// A name fit for a file: lower case, words joined by `-`, at most 60 characters.
pub fn slug(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .take(60)
        .collect()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_slugs() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(slug("Login: wrong password"), "login-wrong-password");
    }
}
