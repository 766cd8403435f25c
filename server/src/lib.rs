//! TraitorTrack server: bags, links, bills, stations and accounts over one
//! event API, on PostgreSQL or the embedded SQLite.

pub mod api;
pub mod areas;
pub mod audit;
pub mod bags;
pub mod batches;
pub mod bills;
pub mod cli;
pub mod config;
pub mod console;
pub mod counters;
pub mod days;
pub mod db;
pub mod error;
pub mod events;
pub mod export;
pub mod health;
pub mod housekeeping;
pub mod import;
pub mod linking;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod notifications;
pub mod passwords;
pub mod promotions;
pub mod ratelimit;
pub mod rows;
pub mod sessions;
pub mod stations;
pub mod summary;
pub mod summary_mail;
pub mod totp;
pub mod users;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub use api::{app, serve};

/// What every request handler shares: one reference-counted [`Shared`], so
/// the clone each request takes is a single count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub db: db::Db,
    pub settings: Arc<config::Settings>,
    pub clock: Clock,
    /// This process's request metrics (the health page's figures).
    pub metrics: Arc<metrics::Metrics>,
    /// Imports running in this process, for their progress.
    pub imports: import::Running,
    /// Station batches waiting to be applied together.
    pub events: events::Groups,
    /// Bag reads waiting to be read together.
    pub bag_reads: bags::Reads,
    /// Sessions checked lately (see [`sessions::Cache`]).
    pub sessions: sessions::Cache,
    /// Station keys checked lately (see [`stations::Keys`]).
    pub station_keys: stations::Keys,
    /// The totals as last read (see [`counters::Snapshot`]).
    pub stats: counters::Snapshot,
}

impl AppState {
    pub fn new(db: db::Db, settings: config::Settings) -> AppState {
        AppState(Arc::new(Shared {
            events: events::Groups::new(db.backend()),
            bag_reads: bags::Reads::default(),
            db,
            settings: Arc::new(settings),
            clock: Clock::default(),
            metrics: Arc::new(metrics::Metrics::new()),
            imports: import::Running::default(),
            sessions: sessions::Cache::default(),
            station_keys: stations::Keys::default(),
            stats: counters::Snapshot::default(),
        }))
    }

    pub fn now(&self) -> db::Ts {
        self.clock.now()
    }
}

/// The server's clock: the system time, plus an offset that only moves forward
/// (tests use it to pass a lockout or a session timeout without waiting).
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    pub fn now(&self) -> db::Ts {
        let offset = time::Duration::microseconds(self.0.load(Ordering::Relaxed));
        db::Ts::new(time::OffsetDateTime::now_utc() + offset)
    }

    /// Moves this clock forward (a negative or zero step does nothing).
    pub fn advance(&self, by: time::Duration) {
        let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        if micros > 0 {
            self.0.fetch_add(micros, Ordering::Relaxed);
        }
    }
}
