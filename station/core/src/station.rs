//! The station: every worker action goes through one pipeline. Check what can
//! be checked here, store the event durably, send it at once when the server
//! answers, and give the worker a verdict with its sound.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;
use traitortrack_protocol::{
    normalize, BillState, CodeKind, Event, EventResult, EventStatus, EventType, FormatSpec,
    Formats, ParentState, Role,
};
use uuid::Uuid;

use crate::outbox::{Attention, Outbox, OutboxError};
use crate::sounds::{Sounds, Tone};
use crate::sync::{blocking, SendError, ServerLink, SyncStatus, Syncer};
use crate::workers::{self, LoginError, Worker};

/// What a station needs to run: kept in `station.json` in its data folder,
/// readable only by the user the app runs as (it holds the station key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StationConfig {
    pub server_url: String,
    pub station_key: String,
    /// Where the outbox lives.
    pub data_dir: PathBuf,
    /// Caps the outbox file; past it new scans are refused with a clear error.
    #[serde(default)]
    pub outbox_max_bytes: Option<u64>,
    /// The screen language: "en" or "hi".
    #[serde(default = "default_language")]
    pub language: String,
    /// The scanner to read (vendor, product); none means the first scanner found.
    #[serde(default)]
    pub scanner: Option<(u16, u16)>,
    /// The name the server registered this station under, shown on screen.
    #[serde(default)]
    pub station_name: Option<String>,
}

fn default_language() -> String {
    "en".into()
}

impl StationConfig {
    /// Settings for a station of this server, with the defaults for the rest.
    pub fn new(server_url: &str, station_key: &str, data_dir: PathBuf) -> StationConfig {
        StationConfig {
            server_url: server_url.to_string(),
            station_key: station_key.to_string(),
            data_dir,
            outbox_max_bytes: None,
            language: default_language(),
            scanner: None,
            station_name: None,
        }
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("station.json")
    }

    pub fn load(data_dir: &Path) -> Result<Option<StationConfig>, String> {
        let path = StationConfig::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                format!(
                    "The station settings in {} are damaged: {e}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("Cannot read {}: {e}", path.display())),
        }
    }

    /// Saves the settings with owner-only permissions.
    pub fn save(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("Cannot make the folder {}: {e}", self.data_dir.display()))?;
        let path = StationConfig::path(&self.data_dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = |options: &std::fs::OpenOptions| -> std::io::Result<()> {
            use std::io::Write;
            let mut file = options.open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write(&options).map_err(|e| format!("Cannot save {}: {e}", path.display()))
    }
}

/// The outcome of one worker action, as the screen and the speaker show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The server applied it (green). For a link or undo, the parent after it.
    Applied {
        parent: Option<ParentState>,
        bill: Option<BillState>,
    },
    /// The server refused it (red), with the reason in plain words.
    Refused { code: String, message: String },
    /// Stored here, sent when the server answers (yellow).
    SavedOffline {
        unsent: u64,
        /// What the station last knew of the parent, counting this scan.
        parent: Option<ParentState>,
    },
    /// Not stored: the station itself could not keep it (red).
    NotSaved { message: String },
}

impl Verdict {
    /// The sound for this outcome.
    pub fn tone(&self) -> Tone {
        match self {
            Verdict::Applied {
                parent: Some(p), ..
            } if p.complete => Tone::Complete,
            Verdict::Applied { .. } => Tone::Ok,
            Verdict::SavedOffline { .. } => Tone::SavedOffline,
            Verdict::Refused { .. } | Verdict::NotSaved { .. } => Tone::Error,
        }
    }

    fn refused(code: &str, message: impl Into<String>) -> Verdict {
        Verdict::Refused {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// The station core, shared by the UI and the scanner loop.
pub struct Station {
    outbox: Arc<Outbox>,
    syncer: Arc<Syncer>,
    sounds: Sounds,
    formats: RwLock<Formats>,
    stop: watch::Sender<bool>,
}

impl Station {
    /// Opens the outbox and starts the sync loop (inside a tokio runtime).
    pub fn open(config: &StationConfig, sounds: Sounds) -> Result<Arc<Station>, OutboxError> {
        let outbox = Arc::new(Outbox::open(
            &config.data_dir.join("outbox.db"),
            config.outbox_max_bytes,
        )?);
        let link = ServerLink::new(&config.server_url, &config.station_key)
            .map_err(|e| OutboxError::Open(e.to_string()))?;
        let syncer = Syncer::new(Arc::clone(&outbox), link);
        let formats = Formats::new(FormatSpec::default())
            .map_err(|e| OutboxError::Open(format!("built-in formats: {e}")))?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(Arc::clone(&syncer).run(stopped));
        let station = Arc::new(Station {
            outbox,
            syncer,
            sounds,
            formats: RwLock::new(formats),
            stop,
        });
        let weak = Arc::downgrade(&station);
        tokio::spawn(async move {
            if let Some(station) = weak.upgrade() {
                station.refresh_settings().await;
            }
        });
        Ok(station)
    }

    /// Fetches the server's code formats (kept for offline checks).
    pub async fn refresh_settings(&self) -> bool {
        match self.syncer.link().settings().await {
            Ok(settings) => match Formats::new(settings.formats) {
                Ok(formats) => {
                    if let Ok(mut f) = self.formats.write() {
                        *f = formats;
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the server's formats do not compile here");
                    false
                }
            },
            Err(_) => false,
        }
    }

    /// Stops the sync loop.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.syncer.status()
    }

    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.syncer
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Worker, LoginError> {
        let result = workers::login(self.syncer.link(), &self.outbox, username, password).await;
        let unreachable = match &result {
            Ok(worker) => !worker.online,
            Err(LoginError::NeverHere(_)) => true,
            Err(_) => false,
        };
        if unreachable {
            self.syncer.mark_unreachable();
        }
        result
    }

    /// Plays a sound (for outcomes decided outside [`Station`]'s own actions).
    pub fn play(&self, tone: Tone) {
        self.sounds.play(tone);
    }

    /// What kind of bag a normalised code is, by the server's formats.
    pub fn classify(&self, code: &str) -> CodeKind {
        match self.formats.read() {
            Ok(f) => f.classify(code),
            Err(poisoned) => poisoned.into_inner().classify(code),
        }
    }

    /// A child scanned into a parent.
    pub async fn link(&self, worker: &Worker, parent: &str, child: &str) -> Verdict {
        let verdict = self.judge_link(worker, parent, child).await;
        self.sounds.play(verdict.tone());
        verdict
    }

    async fn judge_link(&self, worker: &Worker, parent: &str, child: &str) -> Verdict {
        if !matches!(worker.role, Role::Dispatcher | Role::Admin) {
            return Verdict::refused("not_allowed", "Only dispatchers put bags in parent bags.");
        }
        let (parent, child) = match (normalize(parent), normalize(child)) {
            (Ok(p), Ok(c)) => (p, c),
            (Err(e), _) | (_, Err(e)) => return Verdict::refused(e.code(), e.message()),
        };
        if !matches!(self.classify(&parent), CodeKind::Parent { .. }) {
            return Verdict::refused(
                "not_a_parent",
                format!("{parent} is not a parent bag code."),
            );
        }
        match self.classify(&child) {
            CodeKind::Child if child != parent => {}
            CodeKind::Child => {
                return Verdict::refused("same_bag", format!("{child} is the parent bag itself."))
            }
            CodeKind::Parent { .. } => {
                return Verdict::refused(
                    "child_is_parent",
                    format!("{child} is a parent bag, not a child bag."),
                )
            }
            CodeKind::Unknown => {
                return Verdict::refused("not_a_child", format!("{child} is not a child bag code."))
            }
        }
        // What this station knows: a child it saw go into a parent, a parent it saw fill.
        let (outbox, p, c) = (Arc::clone(&self.outbox), parent.clone(), child.clone());
        let known =
            blocking(move || Ok((outbox.known_holder(&c)?, outbox.known_parent(&p)?))).await;
        let (holder, known_parent) = match known {
            Ok(k) => k,
            Err(e) => {
                return Verdict::NotSaved {
                    message: e.to_string(),
                }
            }
        };
        match holder {
            Some(h) if h == parent => {
                return Verdict::refused(
                    "already_linked",
                    format!("{child} is already in {parent}."),
                )
            }
            Some(h) if !self.syncer.current().online => {
                return Verdict::refused(
                    "child_in_other_parent",
                    format!("{child} is already in {h}."),
                )
            }
            _ => {}
        }
        if let Some(p) = &known_parent {
            if p.children >= p.capacity && !self.syncer.current().online {
                return Verdict::refused(
                    "parent_full",
                    format!("{parent} is full: {} of {}", p.capacity, p.capacity),
                );
            }
        }
        let event = self.event(
            worker,
            EventType::Link,
            Some(parent),
            Some(child),
            None,
            None,
        );
        self.submit(event).await
    }

    /// The worker's undo of their last scan into `parent`.
    pub async fn undo(&self, worker: &Worker, parent: &str, child: Option<&str>) -> Verdict {
        let verdict = match (normalize(parent), child.map(normalize).transpose()) {
            (Ok(p), Ok(c)) => {
                let event = self.event(worker, EventType::Unlink, Some(p), c.clone(), None, None);
                let verdict = self.submit(event).await;
                if let (Verdict::Applied { .. }, Some(c)) = (&verdict, &c) {
                    let outbox = Arc::clone(&self.outbox);
                    let c = c.clone();
                    let _ = blocking(move || outbox.forget_link(&c)).await;
                }
                verdict
            }
            (Err(e), _) | (_, Err(e)) => Verdict::refused(e.code(), e.message()),
        };
        self.sounds.play(verdict.tone());
        verdict
    }

    /// A biller puts a parent on a bill (`add`) or takes it off.
    pub async fn bill(&self, worker: &Worker, bill: &str, parent: &str, add: bool) -> Verdict {
        let verdict = if !matches!(worker.role, Role::Biller | Role::Admin) {
            Verdict::refused("not_allowed", "Only billers put bags on bills.")
        } else {
            match (normalize(bill), normalize(parent)) {
                (Ok(b), Ok(p)) => {
                    let kind = if add {
                        EventType::BillAdd
                    } else {
                        EventType::BillRemove
                    };
                    let event = self.event(worker, kind, Some(p), None, Some(b), None);
                    self.submit(event).await
                }
                (Err(e), _) | (_, Err(e)) => Verdict::refused(e.code(), e.message()),
            }
        };
        self.sounds.play(verdict.tone());
        verdict
    }

    fn event(
        &self,
        worker: &Worker,
        kind: EventType,
        parent: Option<String>,
        child: Option<String>,
        bill: Option<String>,
        reason: Option<String>,
    ) -> Event {
        Event {
            id: Uuid::now_v7(),
            kind,
            user: worker.username.clone(),
            parent,
            child,
            bill,
            reason,
            at: OffsetDateTime::now_utc(),
        }
    }

    /// Stores the event durably, then tries to send it (with anything older).
    async fn submit(&self, event: Event) -> Verdict {
        let id = event.id;
        let outbox = Arc::clone(&self.outbox);
        let stored = event.clone();
        if let Err(e) = blocking(move || outbox.append(&stored)).await {
            tracing::error!(error = %e, "scan not stored");
            return Verdict::NotSaved {
                message: e.to_string(),
            };
        }
        // Sends this scan with anything older; the background loop may have
        // taken it first, so the outbox, not this call, says what became of it.
        if let Err(e) = self.syncer.send_batch().await {
            if !matches!(e, crate::sync::SyncError::Send(SendError::Unreachable(_))) {
                tracing::warn!(error = %e, "scan kept for later");
            }
        }
        let outbox = Arc::clone(&self.outbox);
        if let Ok(Some(stored)) = blocking(move || outbox.get(id)).await {
            if let Some(result) = stored.result {
                if result.status == EventStatus::Rejected {
                    // The worker sees this refusal now: it needs no second look
                    // (only refusals found later wait for acknowledgement).
                    let outbox = Arc::clone(&self.outbox);
                    let now = OffsetDateTime::now_utc();
                    if let Err(e) = blocking(move || outbox.acknowledge(id, now)).await {
                        tracing::warn!(error = %e, "refusal not marked as seen");
                    }
                    self.syncer.nudge();
                }
                return verdict_of(result);
            }
        }
        self.syncer.nudge();
        self.saved_offline(&event).await
    }

    async fn saved_offline(&self, event: &Event) -> Verdict {
        let outbox = Arc::clone(&self.outbox);
        let parent = event.parent.clone();
        let known = blocking(move || {
            let counts = outbox.counts()?;
            let parent = match parent {
                Some(p) => outbox.known_parent(&p)?,
                None => None,
            };
            Ok((counts, parent))
        })
        .await;
        match known {
            Ok((counts, parent)) => Verdict::SavedOffline {
                unsent: counts.unsent,
                parent: parent.map(|p| ParentState {
                    complete: p.children >= p.capacity,
                    code: p.code,
                    children: p.children,
                    capacity: p.capacity,
                }),
            },
            Err(_) => Verdict::SavedOffline {
                unsent: 0,
                parent: None,
            },
        }
    }

    /// Scans the server refused after an offline period, to acknowledge one by one.
    pub async fn needs_attention(&self) -> Result<Vec<Attention>, OutboxError> {
        let outbox = Arc::clone(&self.outbox);
        blocking(move || outbox.needs_attention()).await
    }

    pub async fn acknowledge(&self, id: Uuid) -> Result<bool, OutboxError> {
        let outbox = Arc::clone(&self.outbox);
        let done = blocking(move || outbox.acknowledge(id, OffsetDateTime::now_utc())).await;
        self.syncer.nudge();
        done
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn verdict_of(r: EventResult) -> Verdict {
    match r.status {
        EventStatus::Applied | EventStatus::Duplicate => Verdict::Applied {
            parent: r.parent,
            bill: r.bill,
        },
        EventStatus::Rejected => Verdict::Refused {
            code: r.code.unwrap_or_else(|| "rejected".into()),
            message: r
                .message
                .unwrap_or_else(|| "The server refused this scan.".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_sound() {
        let parent = |complete| ParentState {
            code: "SB00001".into(),
            children: if complete { 30 } else { 3 },
            capacity: 30,
            complete,
        };
        let applied = |p| Verdict::Applied {
            parent: Some(p),
            bill: None,
        };
        assert_eq!(applied(parent(false)).tone(), Tone::Ok);
        assert_eq!(applied(parent(true)).tone(), Tone::Complete);
        assert_eq!(Verdict::refused("parent_full", "x").tone(), Tone::Error);
        assert_eq!(
            Verdict::SavedOffline {
                unsent: 1,
                parent: None
            }
            .tone(),
            Tone::SavedOffline
        );
        assert_eq!(
            Verdict::NotSaved {
                message: "x".into()
            }
            .tone(),
            Tone::Error
        );
    }

    #[test]
    fn settings_are_saved_for_the_owner_only() {
        let dir = std::env::temp_dir().join(format!("tt-station-{}", Uuid::now_v7()));
        let config = StationConfig {
            server_url: "http://127.0.0.1:8080".into(),
            station_key: "secret".into(),
            data_dir: dir.clone(),
            outbox_max_bytes: None,
            language: "hi".into(),
            scanner: Some((0x0c2e, 0x0b61)),
            station_name: Some("Dock 1".into()),
        };
        config.save().expect("save");
        assert_eq!(StationConfig::load(&dir).expect("load"), Some(config));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(StationConfig::path(&dir))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by the owner only: {mode:o}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
