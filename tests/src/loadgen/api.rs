//! The API calls the benchmark makes, over real HTTP on 127.0.0.1. Any answer
//! but the expected one comes back as a short plain description.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use traitortrack_protocol::{Event, EventBatch, EventResults, LoginResponse, StationCreated};

/// Longest wait for any one answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// What a failed request says: the status and the start of the body, or the transport error.
async fn refusal(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
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

    /// Reads a route as a logged-in user.
    pub async fn get<T: DeserializeOwned>(&self, token: &str, path: &str) -> Result<T, String> {
        let req = self.http.get(self.url(path)).bearer_auth(token);
        Self::answer(req, reqwest::StatusCode::OK).await
    }
}
