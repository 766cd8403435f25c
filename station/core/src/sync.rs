//! Sending the outbox to the server: batches oldest first, marked only from
//! the server's answer, retried with backoff, and a quick probe so a server
//! coming back is noticed within two seconds. Every request with the station
//! key also reports the app's version and how many events wait in the outbox
//! besides the ones it carries, so admins see both in the web console.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex, Notify};
use traitortrack_protocol::{
    Bill, CloseBill, CreateBill, ErrorBody, Event, EventBatch, EventResult, EventResults,
    LoginRequest, LoginResponse, StationSettings, STATION_QUEUE_HEADER, STATION_VERSION_HEADER,
};

use crate::outbox::{Outbox, OutboxError};

/// The most events one request carries.
pub const BATCH: usize = 500;
/// The longest wait between two tries at a failing server.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an unreachable server is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("The server cannot be reached.")]
    Unreachable(String),
    #[error("The server is busy (answer {status}). Trying again soon.")]
    Busy { status: u16 },
    #[error("The server is slow to answer. Trying again soon.")]
    TimedOut,
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("The server's answer could not be read: {0}")]
    BadAnswer(String),
}

impl SendError {
    fn from_request(e: reqwest::Error) -> SendError {
        if e.is_timeout() && !e.is_connect() {
            SendError::TimedOut
        } else {
            SendError::Unreachable(e.to_string())
        }
    }

    /// True when the server answered nothing at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SendError::Unreachable(_))
    }
}

/// The station's connection to its server, authenticated by the station key.
#[derive(Clone)]
pub struct ServerLink {
    http: reqwest::Client,
    base: String,
    key: String,
    /// The unsent events as last counted (the sync loop keeps it current).
    waiting: Arc<AtomicU64>,
}

impl ServerLink {
    /// `base` is the server's address, e.g. `http://10.0.0.5:8080`.
    pub fn new(base: &str, station_key: &str) -> Result<ServerLink, SendError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| SendError::Unreachable(e.to_string()))?;
        Ok(ServerLink {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: station_key.trim().to_string(),
            waiting: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Records how many events wait in the outbox, for the next requests' report.
    pub fn set_waiting(&self, unsent: u64) {
        self.waiting.store(unsent, Ordering::Relaxed);
    }

    /// A request as this station: its key, its app version, and the number
    /// of events waiting besides the ones the request carries.
    fn as_station(&self, req: reqwest::RequestBuilder, waiting: u64) -> reqwest::RequestBuilder {
        req.header("x-station-key", &self.key)
            .header(STATION_VERSION_HEADER, crate::APP_VERSION)
            .header(STATION_QUEUE_HEADER, waiting)
    }

    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        waiting: u64,
    ) -> Result<T, SendError> {
        let req = self.http.post(format!("{}{path}", self.base));
        let resp = self
            .as_station(req, waiting)
            .json(body)
            .send()
            .await
            .map_err(SendError::from_request)?;
        answer(resp).await
    }

    /// Sends a batch; `behind` events wait in the outbox after it.
    pub async fn send(&self, events: &[Event], behind: u64) -> Result<Vec<EventResult>, SendError> {
        let batch = EventBatch {
            events: events.to_vec(),
        };
        let answer: EventResults = self.post("/api/v1/events", &batch, behind).await?;
        Ok(answer.results)
    }

    /// Logs a worker in at this station (the request carries the station key).
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse, SendError> {
        let req = LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            totp: None,
            recovery_code: None,
        };
        self.post(
            "/api/v1/auth/login",
            &req,
            self.waiting.load(Ordering::Relaxed),
        )
        .await
    }

    pub async fn settings(&self) -> Result<StationSettings, SendError> {
        let req = self
            .http
            .get(format!("{}/api/v1/station/settings", self.base));
        let resp = self
            .as_station(req, self.waiting.load(Ordering::Relaxed))
            .send()
            .await
            .map_err(SendError::from_request)?;
        answer(resp).await
    }

    async fn with_token<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        token: &str,
    ) -> Result<T, SendError> {
        let resp = req
            .bearer_auth(token)
            .send()
            .await
            .map_err(SendError::from_request)?;
        answer(resp).await
    }

    /// A bill as the server has it (billing needs a worker logged in online).
    pub async fn bill(&self, token: &str, code: &str) -> Result<Bill, SendError> {
        let url = format!("{}/api/v1/bills/{}", self.base, encode_path(code));
        self.with_token(self.http.get(url), token).await
    }

    pub async fn create_bill(&self, token: &str, bill: &CreateBill) -> Result<Bill, SendError> {
        let url = format!("{}/api/v1/bills", self.base);
        self.with_token(self.http.post(url).json(bill), token).await
    }

    pub async fn close_bill(
        &self,
        token: &str,
        code: &str,
        reason: Option<&str>,
    ) -> Result<Bill, SendError> {
        let url = format!("{}/api/v1/bills/{}/close", self.base, encode_path(code));
        let body = CloseBill {
            reason: reason.map(str::to_string),
        };
        self.with_token(self.http.post(url).json(&body), token)
            .await
    }

    /// True when the server answers its health probe within a second.
    pub async fn reachable(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// Escapes a code for a URL path (codes are normalised, but a typed one may not be).
fn encode_path(code: &str) -> String {
    code.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, SendError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(SendError::from_request)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| SendError::BadAnswer(e.to_string()));
    }
    if status.is_server_error() {
        return Err(SendError::Busy {
            status: status.as_u16(),
        });
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(SendError::Refused {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        }),
        Err(_) => Err(SendError::Refused {
            status: status.as_u16(),
            code: "unexpected_answer".into(),
            message: format!("The server refused the request ({status})."),
        }),
    }
}

/// What the status bar shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub online: bool,
    pub unsent: u64,
    pub needs_attention: u64,
    pub last_error: Option<String>,
}

/// Moves the outbox to the server. One sender at a time, so events always
/// leave in the order they were scanned.
pub struct Syncer {
    outbox: Arc<Outbox>,
    link: ServerLink,
    sending: Mutex<()>,
    status: watch::Sender<SyncStatus>,
    wake: Notify,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl Syncer {
    pub fn new(outbox: Arc<Outbox>, link: ServerLink) -> Arc<Syncer> {
        let (status, _) = watch::channel(SyncStatus::default());
        let syncer = Arc::new(Syncer {
            outbox,
            link,
            sending: Mutex::new(()),
            status,
            wake: Notify::new(),
        });
        syncer.refresh_counts(None);
        syncer
    }

    pub fn link(&self) -> &ServerLink {
        &self.link
    }

    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    pub fn current(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Records that the server just failed to answer (seen outside a send,
    /// e.g. by a login), so the next scans are judged offline at once.
    pub fn mark_unreachable(&self) {
        self.status.send_modify(|s| s.online = false);
        self.nudge();
    }

    /// Asks the loop to send now (a new scan is waiting).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    fn refresh_counts(&self, online: Option<bool>) {
        let counts = self.outbox.counts().unwrap_or_default();
        self.link.set_waiting(counts.unsent);
        self.status.send_modify(|s| {
            s.unsent = counts.unsent;
            s.needs_attention = counts.needs_attention;
            if let Some(online) = online {
                s.online = online;
            }
        });
    }

    fn note(&self, outcome: &Result<Vec<EventResult>, SyncError>) {
        match outcome {
            // Only an answer says the server is there; an empty send asked nothing.
            Ok(results) if results.is_empty() => self.refresh_counts(None),
            Ok(_) => {
                self.status.send_modify(|s| s.last_error = None);
                self.refresh_counts(Some(true));
            }
            Err(SyncError::Send(e)) => {
                let online = !e.is_unreachable();
                self.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
                self.refresh_counts(Some(online));
            }
            Err(SyncError::Outbox(e)) => {
                self.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
                self.refresh_counts(None);
            }
        }
    }

    /// Sends the oldest unanswered events (one batch) and records the answers.
    /// Returns the results received (empty when nothing was waiting).
    pub async fn send_batch(&self) -> Result<Vec<EventResult>, SyncError> {
        let _one_sender = self.sending.lock().await;
        let outcome = self.send_batch_locked().await;
        self.note(&outcome);
        outcome
    }

    async fn send_batch_locked(&self) -> Result<Vec<EventResult>, SyncError> {
        let outbox = Arc::clone(&self.outbox);
        let (waiting, behind) = blocking(move || {
            let waiting = outbox.unsent(BATCH)?;
            // A short batch took everything; a full one may leave some behind.
            let behind = if waiting.len() < BATCH {
                0
            } else {
                outbox.counts()?.unsent.saturating_sub(waiting.len() as u64)
            };
            Ok((waiting, behind))
        })
        .await?;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = waiting.iter().map(|s| s.event.id).collect();
        let outbox = Arc::clone(&self.outbox);
        let marked = ids.clone();
        blocking(move || outbox.mark_sent(&marked)).await?;
        let events: Vec<Event> = waiting.into_iter().map(|s| s.event).collect();
        let results = self.link.send(&events, behind).await?;
        let in_order =
            results.len() == ids.len() && results.iter().zip(&ids).all(|(r, id)| r.id == *id);
        if !in_order {
            return Err(
                SendError::BadAnswer("the results do not match the events sent".into()).into(),
            );
        }
        let outbox = Arc::clone(&self.outbox);
        let recorded = results.clone();
        blocking(move || outbox.record_results(&recorded, OffsetDateTime::now_utc())).await?;
        Ok(results)
    }

    /// Sends until the outbox is empty or the server stops answering.
    pub async fn drain(&self) -> Result<usize, SyncError> {
        let mut total = 0;
        loop {
            let sent = self.send_batch().await?.len();
            if sent == 0 {
                return Ok(total);
            }
            total += sent;
        }
    }

    /// The background loop: runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let wait = match self.drain().await {
                Ok(_) => {
                    failures = 0;
                    // Idle: look again on a nudge, or every two seconds to keep
                    // the online light honest.
                    Wait::Idle
                }
                Err(SyncError::Send(e)) if e.is_unreachable() => {
                    failures = failures.saturating_add(1);
                    Wait::Unreachable(backoff(failures))
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "sync failed");
                    Wait::Backoff(backoff(failures))
                }
            };
            match wait {
                Wait::Idle => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {
                            let online = self.link.reachable().await;
                            self.refresh_counts(Some(online));
                        }
                        _ = stop.changed() => {}
                    }
                }
                Wait::Backoff(delay) => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => {}
                    }
                }
                Wait::Unreachable(delay) => {
                    // Resend after the backoff, or as soon as a probe answers.
                    let deadline = tokio::time::Instant::now() + delay;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + PROBE_EVERY)) => {}
                            _ = stop.changed() => break,
                        }
                        if tokio::time::Instant::now() >= deadline || self.link.reachable().await {
                            break;
                        }
                    }
                }
            }
        }
    }
}

enum Wait {
    Idle,
    Backoff(Duration),
    Unreachable(Duration),
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s, … capped at 30 s.
pub fn backoff(failures: u32) -> Duration {
    let base =
        Duration::from_millis(500).saturating_mul(1u32 << failures.min(10).saturating_sub(1));
    let capped = base.min(MAX_BACKOFF);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    capped.mul_f64(jitter).min(MAX_BACKOFF)
}

/// Runs outbox work off the async threads (SQLite waits on the disk).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OutboxError::Storage(format!("the storage task stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stops_at_thirty_seconds() {
        assert!(backoff(1) <= Duration::from_millis(600));
        assert!(backoff(3) >= Duration::from_millis(1600));
        for n in [7, 10, 30, u32::MAX] {
            let d = backoff(n);
            assert!(
                d <= MAX_BACKOFF && d >= Duration::from_secs(24),
                "{n}: {d:?}"
            );
        }
    }
}
