//! The scan screen's logic: which parent is open and what each scan means.
//! Every scanner source ends here, through one debouncer: a parent code opens
//! that parent (also in the middle of another), a child code goes into the
//! open parent, and a completed parent closes so the next scan starts fresh.
//! The open parent survives a restart.

use std::sync::Arc;

use traitortrack_protocol::{normalize, CodeKind, ParentState};

use crate::outbox::OutboxError;
use crate::scan::{Debouncer, Scan, DEFAULT_DEBOUNCE};
use crate::sounds::Tone;
use crate::station::{Station, Verdict};
use crate::sync::blocking;
use crate::workers::Worker;

const OPEN_PARENT: &str = "open_parent";

/// What one scan did, for the screen.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowOutcome {
    /// A parent code: this parent is now open, as the station knows it.
    ParentOpened { parent: ParentState },
    /// A child went (or did not go) into the open parent.
    Child { code: String, verdict: Verdict },
    /// A child code with no parent open.
    NeedParent { code: String },
    /// The same code again within the debounce window: one scan.
    Repeat { code: String },
    /// Not a code this station can use.
    NotACode { code: String, message: String },
}

impl FlowOutcome {
    /// The sound for this outcome (none for a repeat).
    pub fn tone(&self) -> Option<Tone> {
        match self {
            FlowOutcome::ParentOpened { .. } => Some(Tone::Ok),
            FlowOutcome::Child { verdict, .. } => Some(verdict.tone()),
            FlowOutcome::NeedParent { .. } | FlowOutcome::NotACode { .. } => Some(Tone::Error),
            FlowOutcome::Repeat { .. } => None,
        }
    }
}

pub struct ScanFlow {
    station: Arc<Station>,
    debouncer: Debouncer,
    open: Option<String>,
}

impl ScanFlow {
    /// Picks up the parent that was open when the station last stopped.
    pub async fn new(station: Arc<Station>) -> Result<ScanFlow, OutboxError> {
        let outbox = Arc::clone(station.outbox());
        let open = blocking(move || outbox.meta(OPEN_PARENT)).await?;
        Ok(ScanFlow {
            station,
            debouncer: Debouncer::new(DEFAULT_DEBOUNCE),
            open,
        })
    }

    pub fn with_debounce(mut self, window: time::Duration) -> ScanFlow {
        self.debouncer = Debouncer::new(window);
        self
    }

    pub fn open_parent(&self) -> Option<&str> {
        self.open.as_deref()
    }

    /// The open parent as the station last knew it.
    pub async fn open_parent_state(&self) -> Option<ParentState> {
        let code = self.open.clone()?;
        Some(self.known_state(&code).await)
    }

    async fn remember(&mut self, open: Option<String>) {
        let outbox = Arc::clone(self.station.outbox());
        let value = open.clone();
        if let Err(e) = blocking(move || outbox.set_meta(OPEN_PARENT, value.as_deref())).await {
            tracing::warn!(error = %e, "the open parent was not remembered");
        }
        self.open = open;
    }

    /// Closes the open parent (the worker chose to start again).
    pub async fn close_parent(&mut self) {
        self.remember(None).await;
    }

    async fn known_state(&self, code: &str) -> ParentState {
        let outbox = Arc::clone(self.station.outbox());
        let lookup = code.to_string();
        let known = blocking(move || outbox.known_parent(&lookup))
            .await
            .ok()
            .flatten();
        let capacity = match self.station.classify(code) {
            CodeKind::Parent { capacity } => capacity,
            _ => 0,
        };
        match known {
            Some(p) => ParentState {
                complete: p.children >= p.capacity,
                code: p.code,
                children: p.children,
                capacity: p.capacity,
            },
            None => ParentState {
                code: code.to_string(),
                children: 0,
                capacity,
                complete: false,
            },
        }
    }

    /// Handles one scan from any source, plays its sound, and says what it did.
    pub async fn scan(&mut self, worker: &Worker, scan: &Scan) -> FlowOutcome {
        let outcome = self.judge(worker, scan).await;
        // A child's verdict already played its sound in the station.
        if !matches!(outcome, FlowOutcome::Child { .. }) {
            if let Some(tone) = outcome.tone() {
                self.station.play(tone);
            }
        }
        outcome
    }

    async fn judge(&mut self, worker: &Worker, scan: &Scan) -> FlowOutcome {
        let code = match normalize(&scan.code) {
            Ok(code) => code,
            Err(e) => {
                return FlowOutcome::NotACode {
                    code: scan.code.chars().take(64).collect(),
                    message: e.message(),
                }
            }
        };
        if !self.debouncer.accept(&code, scan.at) {
            return FlowOutcome::Repeat { code };
        }
        match self.station.classify(&code) {
            CodeKind::Parent { .. } => {
                self.remember(Some(code.clone())).await;
                FlowOutcome::ParentOpened {
                    parent: self.known_state(&code).await,
                }
            }
            CodeKind::Child => {
                let Some(parent) = self.open.clone() else {
                    return FlowOutcome::NeedParent { code };
                };
                let verdict = self.station.link(worker, &parent, &code).await;
                let complete = match &verdict {
                    Verdict::Applied {
                        parent: Some(p), ..
                    }
                    | Verdict::SavedOffline {
                        parent: Some(p), ..
                    } => p.complete,
                    _ => false,
                };
                if complete {
                    self.remember(None).await;
                }
                FlowOutcome::Child { code, verdict }
            }
            CodeKind::Unknown => FlowOutcome::NotACode {
                message: format!("{code} is not a bag code."),
                code,
            },
        }
    }
}
