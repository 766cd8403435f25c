//! The app's state and its commands: thin wrappers over the station core.
//! Each command locks the state, calls the core, and shapes the answer.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use tauri::{AppHandle, Emitter, State};
use tokio::sync::{mpsc, watch, Mutex};
use traitortrack_protocol::{normalize, Bill, CreateBill, ParentState, Role};
use traitortrack_station_core::devices::{
    list_devices, DeviceChoice, DeviceInfo, HidApiOpener, ScannerReader, ScannerState,
};
use traitortrack_station_core::flow::{FlowOutcome, ScanFlow};
use traitortrack_station_core::outbox::Attention;
use traitortrack_station_core::scan::{Scan, ScanSource};
use traitortrack_station_core::sounds::Sounds;
use traitortrack_station_core::station::{Station, StationConfig, Verdict};
use traitortrack_station_core::sync::{SendError, ServerLink, SyncStatus};
use traitortrack_station_core::wedge::{WedgeDecoder, WedgeKey, WedgeOutcome};
use traitortrack_station_core::workers::{LoginError, Worker};

/// An error for the screen: a stable code and plain words.
#[derive(Debug, Serialize)]
pub struct UiError {
    code: String,
    message: String,
}

impl UiError {
    fn new(code: &str, message: impl Into<String>) -> UiError {
        UiError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<SendError> for UiError {
    fn from(e: SendError) -> UiError {
        match e {
            SendError::Refused { code, message, .. } => UiError { code, message },
            SendError::Unreachable(_) => UiError::new(
                "offline",
                "The server cannot be reached. Check the network cable, then try again.",
            ),
            other => UiError::new("server_error", other.to_string()),
        }
    }
}

impl From<LoginError> for UiError {
    fn from(e: LoginError) -> UiError {
        let code = match &e {
            LoginError::BadCredentials => "bad_credentials",
            LoginError::NeverHere(_) => "never_here",
            LoginError::Refused(_) => "refused",
            LoginError::Storage(_) => "storage",
        };
        UiError::new(code, e.to_string())
    }
}

type Answer<T> = Result<T, UiError>;

/// Everything the app holds.
pub struct Shell {
    data_dir: PathBuf,
    inner: Mutex<Inner>,
}

/// Where a finished scan goes: what the screen shows decides, not the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Into the scan flow (link children).
    Scan,
    /// Onto the open bill.
    Billing,
    /// Nowhere: set-up, login, settings. The code is only shown (scanner test).
    Off,
}

struct Inner {
    mode: Mode,
    config: Option<StationConfig>,
    station: Option<Arc<Station>>,
    flow: Option<ScanFlow>,
    worker: Option<Worker>,
    wedge: WedgeDecoder,
    bill: Option<String>,
    settings_unlocked: bool,
    reader: Option<ScannerReader>,
    scanner: watch::Receiver<ScannerState>,
}

#[derive(Serialize)]
pub struct StationView {
    /// This app's version (the server is told it too).
    app_version: &'static str,
    configured: bool,
    server_url: Option<String>,
    station_name: Option<String>,
    language: String,
    worker: Option<Worker>,
    open_parent: Option<ParentState>,
    open_bill: Option<String>,
    status: SyncStatus,
    scanner: ScannerView,
}

#[derive(Serialize, Clone)]
pub struct ScannerView {
    connected: bool,
    name: Option<String>,
}

fn scanner_view(state: &ScannerState) -> ScannerView {
    match state {
        ScannerState::Connected(info) => ScannerView {
            connected: true,
            name: Some(info.name.clone()),
        },
        ScannerState::Disconnected => ScannerView {
            connected: false,
            name: None,
        },
    }
}

impl Shell {
    pub fn new(data_dir: PathBuf) -> Shell {
        let config = StationConfig::load(&data_dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "station settings unreadable; starting set-up again");
            None
        });
        let (_, scanner) = watch::channel(ScannerState::Disconnected);
        Shell {
            data_dir,
            inner: Mutex::new(Inner {
                mode: Mode::Off,
                config,
                station: None,
                flow: None,
                worker: None,
                wedge: WedgeDecoder::default(),
                bill: None,
                settings_unlocked: false,
                reader: None,
                scanner,
            }),
        }
    }

    /// Starts the scanner reader (at launch, and when the scanner choice changes).
    pub async fn start_scanner(self: &Arc<Self>, app: &AppHandle) {
        let mut inner = self.inner.lock().await;
        if let Some(old) = inner.reader.take() {
            // Joining the old reader thread blocks; keep it off the async threads.
            tauri::async_runtime::spawn_blocking(move || old.stop());
        }
        let choice = match inner.config.as_ref().and_then(|c| c.scanner) {
            Some((vid, pid)) => DeviceChoice::VidPid(vid, pid),
            None => DeviceChoice::First,
        };
        let (scan_tx, mut scans) = mpsc::unbounded_channel::<Scan>();
        let (state_tx, mut state_rx) = watch::channel(ScannerState::Disconnected);
        inner.reader = Some(ScannerReader::spawn(
            HidApiOpener::new(),
            choice,
            scan_tx,
            state_tx,
        ));
        inner.scanner = state_rx.clone();
        drop(inner);

        let handle = app.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                let view = scanner_view(&state_rx.borrow_and_update());
                let _ = handle.emit("scanner", view);
                if state_rx.changed().await.is_err() {
                    break;
                }
            }
        });
        // HID scanners feed the same screen as the keyboard wedge.
        let shell = Arc::clone(self);
        let handle = app.clone();
        tauri::async_runtime::spawn(async move {
            while let Some(scan) = scans.recv().await {
                let mut inner = shell.inner.lock().await;
                let routed = inner.route(&scan).await;
                drop(inner);
                match routed {
                    Ok(Routed::Flow(outcome)) => {
                        let _ = handle.emit("scan_outcome", outcome);
                    }
                    Ok(Routed::Bill(answer)) => {
                        let _ = handle.emit("bill_scan_outcome", answer);
                    }
                    Ok(Routed::Shown(code)) => {
                        let _ = handle.emit("scanner_test", json!({ "code": code }));
                    }
                    Err(e) => tracing::warn!(code = %e.code, "scan not handled"),
                }
            }
        });
    }

    /// Opens the station core when the app is set up (at launch or after set-up).
    pub async fn start_station(self: &Arc<Self>, app: &AppHandle) -> Answer<()> {
        let mut inner = self.inner.lock().await;
        let Some(config) = inner.config.clone() else {
            return Ok(());
        };
        if let Some(old) = inner.station.take() {
            old.shutdown();
        }
        let station = Station::open(&config, Sounds::new())
            .map_err(|e| UiError::new("storage", e.to_string()))?;
        let flow = ScanFlow::new(Arc::clone(&station))
            .await
            .map_err(|e| UiError::new("storage", e.to_string()))?;
        inner.flow = Some(flow);
        inner.station = Some(Arc::clone(&station));

        // The status bar follows the core.
        let mut status = station.status();
        let handle = app.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                let now = status.borrow_and_update().clone();
                let _ = handle.emit("status", now);
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }
}

enum Routed {
    Flow(FlowOutcome),
    Bill(Value),
    /// Not taken by any work: only shown (the scanner test).
    Shown(String),
}

impl Inner {
    fn station(&self) -> Answer<Arc<Station>> {
        self.station
            .clone()
            .ok_or_else(|| UiError::new("not_set_up", "This station is not set up yet."))
    }

    fn worker(&self) -> Answer<Worker> {
        self.worker
            .clone()
            .ok_or_else(|| UiError::new("not_logged_in", "Log in first."))
    }

    /// A scan from any source goes where the screen says: the scan flow, the
    /// open bill, or only shown.
    async fn route(&mut self, scan: &Scan) -> Answer<Routed> {
        let worker = match (&self.worker, self.mode) {
            (Some(w), Mode::Scan | Mode::Billing) => w.clone(),
            _ => return Ok(Routed::Shown(scan.code.clone())),
        };
        match self.mode {
            Mode::Billing => match self.bill.clone() {
                Some(bill) => Ok(Routed::Bill(
                    self.bill_scan_of(&worker, &bill, &scan.code).await?,
                )),
                None => Ok(Routed::Shown(scan.code.clone())),
            },
            _ => {
                let flow = self
                    .flow
                    .as_mut()
                    .ok_or_else(|| UiError::new("not_set_up", "This station is not set up yet."))?;
                Ok(Routed::Flow(flow.scan(&worker, scan).await))
            }
        }
    }

    async fn bill_scan_of(&self, worker: &Worker, bill: &str, parent: &str) -> Answer<Value> {
        let station = self.station()?;
        let verdict = station.bill(worker, bill, parent, true).await;
        let bill = self.fresh_bill(&station, worker, bill).await.ok();
        let code = normalize(parent).unwrap_or_else(|_| parent.to_string());
        Ok(json!({ "code": code, "verdict": verdict, "bill": bill }))
    }

    async fn fresh_bill(&self, station: &Station, worker: &Worker, code: &str) -> Answer<Bill> {
        let token = online_token(worker)?;
        Ok(station.syncer().link().bill(&token, code).await?)
    }

    fn open_bill(&self) -> Answer<String> {
        self.bill
            .clone()
            .ok_or_else(|| UiError::new("no_bill", "Open a bill first."))
    }
}

/// Billing talks to the server directly: it needs an online login.
fn online_token(worker: &Worker) -> Answer<String> {
    worker.token.clone().ok_or_else(|| {
        UiError::new(
            "billing_needs_server",
            "Billing needs the server. Connect the station and log in again.",
        )
    })
}

#[tauri::command]
pub async fn station_state(shell: State<'_, Arc<Shell>>) -> Answer<StationView> {
    let inner = shell.inner.lock().await;
    let open_parent = match &inner.flow {
        Some(flow) => flow.open_parent_state().await,
        None => None,
    };
    let config = inner.config.as_ref();
    let scanner = scanner_view(&inner.scanner.borrow());
    Ok(StationView {
        app_version: traitortrack_station_core::APP_VERSION,
        configured: config.is_some(),
        server_url: config.map(|c| c.server_url.clone()),
        station_name: config.and_then(|c| c.station_name.clone()),
        language: config.map_or_else(|| "en".to_string(), |c| c.language.clone()),
        worker: inner.worker.clone(),
        open_parent,
        open_bill: inner.bill.clone(),
        status: inner
            .station
            .as_ref()
            .map(|s| s.syncer().current())
            .unwrap_or_default(),
        scanner,
    })
}

#[tauri::command]
pub async fn setup(
    app: AppHandle,
    shell: State<'_, Arc<Shell>>,
    server_url: String,
    station_key: String,
) -> Answer<Value> {
    let url = server_url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(UiError::new(
            "bad_address",
            "The server address starts with http:// or https://, for example http://192.168.1.10:8080",
        ));
    }
    let link = ServerLink::new(&url, &station_key)?;
    let settings = link.settings().await?;
    {
        let mut inner = shell.inner.lock().await;
        if inner.config.is_some() && !inner.settings_unlocked {
            return Err(UiError::new("locked", "Ask an admin to open the settings."));
        }
        let mut config = inner
            .config
            .clone()
            .unwrap_or_else(|| StationConfig::new(&url, &station_key, shell.data_dir.clone()));
        config.server_url = url;
        config.station_key = station_key.trim().to_string();
        config.station_name = Some(settings.station.clone());
        config.save().map_err(|e| UiError::new("storage", e))?;
        inner.config = Some(config);
        inner.worker = None;
    }
    shell.start_station(&app).await?;
    Ok(json!({ "station_name": settings.station }))
}

#[tauri::command]
pub async fn login(
    shell: State<'_, Arc<Shell>>,
    username: String,
    password: String,
) -> Answer<Worker> {
    let station = shell.inner.lock().await.station()?;
    let worker = station.login(&username, &password).await?;
    let mut inner = shell.inner.lock().await;
    inner.worker = Some(worker.clone());
    inner.bill = None;
    Ok(worker)
}

#[tauri::command]
pub async fn logout(shell: State<'_, Arc<Shell>>) -> Answer<()> {
    let mut inner = shell.inner.lock().await;
    inner.worker = None;
    inner.bill = None;
    inner.mode = Mode::Off;
    inner.settings_unlocked = false;
    Ok(())
}

#[tauri::command]
pub async fn settings_unlock(
    shell: State<'_, Arc<Shell>>,
    username: String,
    password: String,
) -> Answer<bool> {
    let station = shell.inner.lock().await.station()?;
    let admin = station.login(&username, &password).await?;
    let ok = admin.role == Role::Admin;
    shell.inner.lock().await.settings_unlocked = ok;
    if ok {
        Ok(true)
    } else {
        Err(UiError::new(
            "not_admin",
            "Only an admin can change the settings.",
        ))
    }
}

/// One keystroke from the always-focused scan box.
#[tauri::command]
pub async fn wedge_key(
    shell: State<'_, Arc<Shell>>,
    key: String,
    ctrl: bool,
    at_ms: f64,
) -> Answer<Value> {
    let mut inner = shell.inner.lock().await;
    let key = WedgeKey::from_dom(&key, ctrl);
    match inner.wedge.feed(key, at_ms) {
        None => Ok(Value::Null),
        Some(WedgeOutcome::Typed(text)) => Ok(json!({ "typed": text })),
        Some(WedgeOutcome::Scan(code)) => {
            let scan = Scan {
                code,
                source: ScanSource::Wedge,
                at: time::OffsetDateTime::now_utc(),
            };
            match inner.route(&scan).await? {
                Routed::Flow(outcome) => Ok(serde_json::to_value(outcome).unwrap_or(Value::Null)),
                Routed::Bill(answer) => Ok(answer),
                Routed::Shown(code) => Ok(json!({ "typed": code })),
            }
        }
    }
}

/// A code a person typed (or a test sends) as if scanned.
#[tauri::command]
pub async fn scan(shell: State<'_, Arc<Shell>>, code: String) -> Answer<FlowOutcome> {
    let mut inner = shell.inner.lock().await;
    let worker = inner.worker()?;
    let scan = Scan {
        code,
        source: ScanSource::Wedge,
        at: time::OffsetDateTime::now_utc(),
    };
    let flow = inner
        .flow
        .as_mut()
        .ok_or_else(|| UiError::new("not_set_up", "This station is not set up yet."))?;
    Ok(flow.scan(&worker, &scan).await)
}

#[tauri::command]
pub async fn undo(shell: State<'_, Arc<Shell>>) -> Answer<Verdict> {
    let inner = shell.inner.lock().await;
    let (station, worker) = (inner.station()?, inner.worker()?);
    let parent = inner
        .flow
        .as_ref()
        .and_then(|f| f.open_parent().map(str::to_string))
        .ok_or_else(|| UiError::new("no_parent", "Scan the parent bag first."))?;
    Ok(station.undo(&worker, &parent, None).await)
}

#[tauri::command]
pub async fn close_parent(shell: State<'_, Arc<Shell>>) -> Answer<()> {
    if let Some(flow) = shell.inner.lock().await.flow.as_mut() {
        flow.close_parent().await;
    }
    Ok(())
}

#[tauri::command]
pub async fn needs_attention(shell: State<'_, Arc<Shell>>) -> Answer<Vec<Attention>> {
    let station = shell.inner.lock().await.station()?;
    station
        .needs_attention()
        .await
        .map_err(|e| UiError::new("storage", e.to_string()))
}

#[tauri::command]
pub async fn acknowledge(shell: State<'_, Arc<Shell>>, id: uuid::Uuid) -> Answer<bool> {
    let station = shell.inner.lock().await.station()?;
    station
        .acknowledge(id)
        .await
        .map_err(|e| UiError::new("storage", e.to_string()))
}

#[tauri::command]
pub async fn bill_open(shell: State<'_, Arc<Shell>>, code: String) -> Answer<Bill> {
    let mut inner = shell.inner.lock().await;
    let (station, worker) = (inner.station()?, inner.worker()?);
    let code = normalize(&code).map_err(|e| UiError::new(e.code(), e.message()))?;
    let bill = inner.fresh_bill(&station, &worker, &code).await?;
    inner.bill = Some(bill.code.clone());
    Ok(bill)
}

#[tauri::command]
pub async fn bill_create(
    shell: State<'_, Arc<Shell>>,
    code: String,
    capacity: i64,
    destination: Option<String>,
    vehicle_number: Option<String>,
) -> Answer<Bill> {
    let mut inner = shell.inner.lock().await;
    let (station, worker) = (inner.station()?, inner.worker()?);
    let token = online_token(&worker)?;
    let new = CreateBill {
        code,
        capacity,
        destination,
        vehicle_number,
        description: None,
    };
    let bill = station.syncer().link().create_bill(&token, &new).await?;
    inner.bill = Some(bill.code.clone());
    Ok(bill)
}

#[tauri::command]
pub async fn bill_scan(shell: State<'_, Arc<Shell>>, code: String) -> Answer<Value> {
    let inner = shell.inner.lock().await;
    let worker = inner.worker()?;
    let bill = inner.open_bill()?;
    inner.bill_scan_of(&worker, &bill, &code).await
}

#[tauri::command]
pub async fn bill_remove(shell: State<'_, Arc<Shell>>, parent: String) -> Answer<Value> {
    let inner = shell.inner.lock().await;
    let (station, worker) = (inner.station()?, inner.worker()?);
    let bill = inner.open_bill()?;
    let verdict = station.bill(&worker, &bill, &parent, false).await;
    let fresh = inner.fresh_bill(&station, &worker, &bill).await.ok();
    Ok(json!({ "verdict": verdict, "bill": fresh }))
}

#[tauri::command]
pub async fn bill_close(shell: State<'_, Arc<Shell>>, reason: Option<String>) -> Answer<Bill> {
    let mut inner = shell.inner.lock().await;
    let (station, worker) = (inner.station()?, inner.worker()?);
    let bill = inner.open_bill()?;
    let token = online_token(&worker)?;
    let reason = reason.filter(|r| !r.trim().is_empty());
    let closed = station
        .syncer()
        .link()
        .close_bill(&token, &bill, reason.as_deref())
        .await?;
    inner.bill = None;
    Ok(closed)
}

#[tauri::command]
pub async fn devices() -> Answer<Vec<DeviceInfo>> {
    Ok(tauri::async_runtime::spawn_blocking(list_devices)
        .await
        .unwrap_or_default())
}

#[tauri::command]
pub async fn choose_scanner(
    app: AppHandle,
    shell: State<'_, Arc<Shell>>,
    vendor_id: Option<u16>,
    product_id: Option<u16>,
) -> Answer<()> {
    {
        let mut inner = shell.inner.lock().await;
        if inner.config.is_some() && inner.worker.is_some() && !inner.settings_unlocked {
            return Err(UiError::new("locked", "Ask an admin to open the settings."));
        }
        let Some(config) = inner.config.as_mut() else {
            return Err(UiError::new(
                "not_set_up",
                "This station is not set up yet.",
            ));
        };
        config.scanner = vendor_id.zip(product_id);
        config.save().map_err(|e| UiError::new("storage", e))?;
    }
    shell.start_scanner(&app).await;
    Ok(())
}

/// What the screen shows decides where scans go: "scan", "billing" or "none".
#[tauri::command]
pub async fn set_scan_mode(shell: State<'_, Arc<Shell>>, mode: String) -> Answer<()> {
    let mode = match mode.as_str() {
        "scan" => Mode::Scan,
        "billing" => Mode::Billing,
        "none" => Mode::Off,
        other => {
            return Err(UiError::new(
                "bad_mode",
                format!("Unknown scan mode {other:?}: use scan, billing or none."),
            ))
        }
    };
    let mut inner = shell.inner.lock().await;
    inner.mode = mode;
    inner.wedge = WedgeDecoder::default();
    Ok(())
}

#[tauri::command]
pub async fn set_language(shell: State<'_, Arc<Shell>>, language: String) -> Answer<()> {
    if !matches!(language.as_str(), "en" | "hi") {
        return Err(UiError::new(
            "bad_language",
            "The languages are English (en) and Hindi (hi).",
        ));
    }
    let mut inner = shell.inner.lock().await;
    if let Some(config) = inner.config.as_mut() {
        config.language = language;
        config.save().map_err(|e| UiError::new("storage", e))?;
    }
    Ok(())
}
