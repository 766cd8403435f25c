//! The API calls the benchmark makes, over real HTTP on 127.0.0.1. Any answer
//! but the expected one comes back as a short plain description.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use traitortrack_protocol::{Event, EventBatch, EventResults, LoginResponse, StationCreated};

/// Longest wait for any one answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server listens, as `host:port`.
fn authority(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// What a failed request says: the status and the start of the body, or the transport error.
async fn refusal(resp: reqwest::Response) -> String {
    let status = resp.status();
    refused(status, &resp.text().await.unwrap_or_default())
}

/// A refusal's status and the start of its body.
fn refused(status: impl std::fmt::Display, body: &str) -> String {
    format!("{status}: {}", body.chars().take(200).collect::<String>())
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()?;
        Ok(Api {
            http,
            base: base.to_string(),
        })
    }

    /// Downloads an export as `token`, reading the body as it streams;
    /// answers the number of lines in it.
    pub async fn export_lines(&self, token: &str, path: &str) -> Result<u64, String> {
        // A whole export may take longer than one ordinary answer.
        let mut resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(refusal(resp).await);
        }
        let mut lines = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("download cut off: {e}"))?
        {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        Ok(lines)
    }

    /// Uploads a sheet to import as `token` and waits for its summary.
    pub async fn import(
        &self,
        token: &str,
        kind: &str,
        file_name: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, String> {
        let resp = self
            .http
            .post(self.url(&format!(
                "/api/v1/imports?kind={kind}&file_name={file_name}"
            )))
            .bearer_auth(token)
            .timeout(Duration::from_secs(600))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        if !resp.status().is_success() {
            return Err(refusal(resp).await);
        }
        resp.json()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn answer<T: DeserializeOwned>(
        req: reqwest::RequestBuilder,
        want: reqwest::StatusCode,
    ) -> Result<T, String> {
        let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
        if resp.status() != want {
            return Err(refusal(resp).await);
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("answer cut off: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("unreadable answer: {e}"))
    }

    /// Logs a user in, at a station when its key is given; answers the token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        station_key: Option<&str>,
    ) -> Result<String, String> {
        let mut req = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}));
        if let Some(key) = station_key {
            req = req.header("x-station-key", key);
        }
        let login: LoginResponse = Self::answer(req, reqwest::StatusCode::OK).await?;
        Ok(login.token)
    }

    /// Registers a station as admin.
    pub async fn register_station(
        &self,
        token: &str,
        name: &str,
    ) -> Result<StationCreated, String> {
        let req = self
            .http
            .post(self.url("/api/v1/stations"))
            .bearer_auth(token)
            .json(&json!({"name": name}));
        Self::answer(req, reqwest::StatusCode::CREATED).await
    }

    /// Sends events as a station; answers their results.
    pub async fn send_events(
        &self,
        station_key: &str,
        events: Vec<Event>,
    ) -> Result<EventResults, String> {
        let req = self
            .http
            .post(self.url("/api/v1/events"))
            .header("x-station-key", station_key)
            .json(&EventBatch { events });
        Self::answer(req, reqwest::StatusCode::OK).await
    }
}

/// One keep-alive HTTP/1.1 connection of a reading client, for the read
/// scenarios' loops: tens of thousands of requests a second come from the
/// same two cores the server runs on, so the tool's own share is kept small
/// (no pool, URL parsing or redirect handling per request, as [`Api`] has).
pub struct Reader {
    authority: String,
    bearer: String,
    conn: Option<Conn>,
}

impl Reader {
    /// A reader of `api`'s server as the holder of `token`; it connects at its first read.
    pub fn new(api: &Api, token: &str) -> Reader {
        Reader {
            authority: authority(&api.base).to_string(),
            bearer: format!("Bearer {token}"),
            conn: None,
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("no connection: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("no connection: {e}"))?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| format!("no connection: {e}"))?;
        tokio::spawn(conn);
        Ok(send)
    }

    /// `GET path`, expecting 200 and JSON; a failed read drops the connection.
    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, String> {
        let mut send = match self.conn.take() {
            Some(send) if !send.is_closed() => send,
            _ => self.connect().await?,
        };
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, &self.bearer)
            .body(http_body_util::Empty::new())
            .map_err(|e| format!("bad request: {e}"))?;
        let read = async {
            send.ready().await?;
            let resp = send.send_request(req).await?;
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(resp.into_body()).await?;
            Ok::<_, hyper::Error>((status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, read)
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
            .map_err(|e| format!("no answer: {e}"))?;
        self.conn = Some(send);
        if status != hyper::StatusCode::OK {
            return Err(refused(status, &String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
    }
}

type Conn = hyper::client::conn::http1::SendRequest<http_body_util::Empty<hyper::body::Bytes>>;
