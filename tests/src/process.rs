//! A real `traitortrack serve` process that tests stop and start again on
//! the same address, and a TCP proxy that can cut connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A `traitortrack serve` child process on a fixed loopback port.
pub struct ServerProcess {
    binary: PathBuf,
    url: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
    settings: Vec<(String, String)>,
}

/// The settings every test server runs with unless a test asks otherwise: a
/// lab's, where admins need no two-step login and login rate limits are high
/// (the security tests start servers with the production defaults).
pub const LAB_SETTINGS: &[(&str, &str)] = &[
    ("TRAITORTRACK_REQUIRE_ADMIN_TOTP", "false"),
    ("TRAITORTRACK_LOGIN_ATTEMPTS_PER_IP", "100000"),
    ("TRAITORTRACK_LOGIN_ATTEMPTS_PER_USER", "100000"),
    ("TRAITORTRACK_MAX_DISPATCHERS_PER_AREA", "1000"),
];

impl ServerProcess {
    /// Starts the server binary on `database_url` with [`LAB_SETTINGS`] and
    /// waits until it is ready.
    pub async fn start(binary: PathBuf, database_url: &str) -> ServerProcess {
        ServerProcess::start_with(binary, database_url, LAB_SETTINGS).await
    }

    /// Starts the server binary with these `TRAITORTRACK_*` settings only.
    pub async fn start_with(
        binary: PathBuf,
        database_url: &str,
        settings: &[(&str, &str)],
    ) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut server = ServerProcess {
            binary,
            url: database_url.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            log: std::env::temp_dir().join(format!(
                "traitortrack-serve-{}-{port}.log",
                std::process::id()
            )),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.resume().await;
        server
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote to its standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the process again (after [`ServerProcess::stop`]). Only the
    /// command line chooses its settings: no inherited `TRAITORTRACK_*`.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log file");
        let mut cmd = Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TRAITORTRACK_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .args([
                "serve",
                "--listen",
                &self.addr.to_string(),
                "--database",
                &self.url,
            ])
            .envs(self.settings.iter().map(|(k, v)| (k, v)))
            .env("TRAITORTRACK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start traitortrack serve");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = http
                .get(format!("{}/readyz", self.base()))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            if let Some(Ok(Some(exit))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "traitortrack serve on {} exited ({exit}): {}",
                    self.addr,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "traitortrack serve on {} was not ready within 30 s: {}",
            self.addr,
            self.log()
        );
    }

    /// Kills the process (as a crash or power cut would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
        // The log stays behind only when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A loopback TCP proxy in front of a server. It can refuse connections
/// (an outage) or let a request through and drop the connection before the
/// answer comes back (a network cut mid-request).
pub struct Proxy {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    cut_answers: Arc<AtomicU32>,
    cut_done: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let down = Arc::new(AtomicBool::new(false));
        let cut_answers = Arc::new(AtomicU32::new(0));
        let cut_done = Arc::new(AtomicU32::new(0));
        let (d, c, cd) = (
            Arc::clone(&down),
            Arc::clone(&cut_answers),
            Arc::clone(&cut_done),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (d, c, cd) = (Arc::clone(&d), Arc::clone(&c), Arc::clone(&cd));
                tokio::spawn(async move {
                    let _ = relay(client, target, d, c, cd).await;
                });
            }
        });
        Proxy {
            addr,
            down,
            cut_answers,
            cut_done,
            task,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// While down, connections are closed at once, open ones at their next request.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` answers are lost: the request reaches the server, and the
    /// connection drops as its answer starts to come back.
    pub fn cut_next_answers(&self, n: u32) {
        self.cut_answers.store(n, Ordering::SeqCst);
    }

    /// How many answers were cut so far.
    pub fn answers_cut(&self) -> u32 {
        self.cut_done.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    target: SocketAddr,
    down: Arc<AtomicBool>,
    cut_answers: Arc<AtomicU32>,
    cut_done: Arc<AtomicU32>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(target).await?;
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut up = vec![0u8; 64 * 1024];
    let mut answer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = cr.read(&mut up) => {
                let n = n?;
                if n == 0 {
                    sw.shutdown().await?;
                    // Keep relaying the answer to a half-closed client.
                    tokio::io::copy(&mut sr, &mut cw).await?;
                    return Ok(());
                }
                if down.load(Ordering::SeqCst) {
                    // An outage: live connections die too.
                    return Ok(());
                }
                sw.write_all(&up[..n]).await?;
            }
            n = sr.read(&mut answer) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                let cut = cut_answers
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                    .is_ok();
                if cut {
                    // The server answered, so it applied the request; the client never hears it.
                    cut_done.fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                }
                cw.write_all(&answer[..n]).await?;
            }
        }
    }
}
