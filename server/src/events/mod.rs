//! Applying station events exactly once, in groups.
//!
//! Requests that arrive together are applied together: each request's batch
//! joins a queue, and whoever finds the queue waiting takes everything in it
//! (up to [`GROUP_EVENTS`] events) and applies it in one transaction (see
//! [`group`]). One commit then serves many stations, and link scans are
//! read and written set-based instead of a dozen statements each. Each event
//! stays all-or-nothing: a refused event leaves no trace but its stored
//! outcome and never fails its neighbours.
//!
//! The stored outcome, keyed by the event's id, is what a resend gets back.

mod group;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use traitortrack_protocol::{Event, EventResult, MAX_EVENTS_PER_REQUEST};

use crate::audit::Actor;
use crate::batches::Batches;
use crate::config::Settings;
use crate::db::{Backend, Db, Ts};
use crate::error::{Error, Result};
use crate::on;
use crate::stations::{self, Report, Station};
use crate::users::User;

/// Most events one group takes (it always takes at least one request).
const GROUP_EVENTS: usize = 1_000;
/// How long this process skips marking a station seen again when its
/// report is unchanged (`stations::touch` writes at most once a minute anyway).
const TOUCH_EVERY: Duration = Duration::from_secs(20);

/// One request's batch waiting for its group.
struct Job {
    station: Station,
    actor: Actor,
    events: Vec<Event>,
    now: Ts,
    reply: oneshot::Sender<Result<Vec<EventResult>>>,
}

/// The queue of batches and the right to apply a group.
#[derive(Clone)]
pub struct Groups {
    /// Groups applied at once: one on SQLite (one writer), a few on
    /// PostgreSQL, where groups naming the same codes queue on their locks.
    batches: Arc<Batches<Job>>,
    /// When each station was last marked seen, and with what report.
    touched: Arc<Mutex<HashMap<i64, (Instant, Report)>>>,
    /// (station, worker) pairs known to have logged in there: a login at a
    /// station is never taken back, so what was read once holds.
    signed_in: SignedIn,
}

/// (station, worker) pairs known to have logged in there.
type SignedIn = Arc<Mutex<HashSet<(i64, i64)>>>;

impl Groups {
    pub fn new(backend: Backend) -> Groups {
        let appliers = match backend {
            Backend::Sqlite => 1,
            // Three keep both cores busy while a group waits for its
            // commit's fsync (the benchmark's link: two left a fifth of the
            // CPU idle, four cost more than they gained).
            Backend::Postgres => 3,
        };
        Groups {
            batches: Arc::new(Batches::new(appliers, take)),
            touched: Arc::default(),
            signed_in: Arc::default(),
        }
    }

    /// Marks the station seen, unless this process did so lately with the same report.
    async fn touch(&self, db: &Db, station: &Station, now: Ts) -> Result<()> {
        {
            let touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, report)) = touched.get(&station.id) {
                if at.elapsed() < TOUCH_EVERY && *report == station.report {
                    return Ok(());
                }
            }
        }
        stations::touch(db, station, now).await?;
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        if touched.len() > 100_000 {
            touched.clear();
        }
        touched.insert(station.id, (Instant::now(), station.report.clone()));
        Ok(())
    }
}

/// Takes the waiting batches for one group, oldest first.
fn take(queue: &mut VecDeque<Job>) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut events = 0;
    while let Some(job) = queue.front() {
        if !jobs.is_empty() && events + job.events.len() > GROUP_EVENTS {
            break;
        }
        events += job.events.len();
        jobs.extend(queue.pop_front());
    }
    jobs
}

/// Applies a batch from a station; one result per event, in order.
pub async fn apply_batch(
    db: &Db,
    settings: &Arc<Settings>,
    groups: &Groups,
    station: &Station,
    actor: &Actor,
    events: Vec<Event>,
    now: Ts,
) -> Result<Vec<EventResult>> {
    if events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Error::bad_input(
            "too_many_events",
            format!(
                "Send at most {MAX_EVENTS_PER_REQUEST} events at a time, not {}.",
                events.len()
            ),
        ));
    }
    // Outside the group's transaction: its row lock must not queue the groups.
    groups.touch(db, station, now).await?;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        station: station.clone(),
        actor: actor.clone(),
        events,
        now,
        reply,
    };
    groups
        .batches
        .submit(job, answer, |jobs| {
            let (db, settings, known) = (db.clone(), settings.clone(), groups.signed_in.clone());
            async move { group::apply(&db, &settings, &known, jobs).await }
        })
        .await
}

/// A refused station event, as the dashboard lists it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub received_at: Ts,
    pub station: String,
    /// The worker named by the event, when the server knows them.
    pub worker: Option<String>,
    /// `link`, `unlink`, `bill_add` or `bill_remove`.
    pub kind: String,
    pub code: Option<String>,
    /// The reason in plain words, as the station was told.
    pub message: String,
}

/// The most recent refused station events received since `since`, newest
/// first, at most `limit` (1 to 100). Admins and billers see every one; a
/// dispatcher sees those of the workers of their own dispatch area, and
/// their own (only their own without an area).
pub async fn recent_refusals(db: &Db, user: &User, since: Ts, limit: u32) -> Result<Vec<Refused>> {
    let dispatcher = user.role == traitortrack_protocol::Role::Dispatcher;
    // `status = 'rejected'` as written here is what lets both engines use the
    // partial index `events_refused`.
    let sql = format!(
        "SELECT e.received_at, s.name, u.username, e.kind, e.code, e.result
         FROM events e
         JOIN stations s ON s.id = e.station_id
         LEFT JOIN users u ON u.id = e.user_id
         WHERE e.status = 'rejected' AND e.received_at >= $1 {}
         ORDER BY e.received_at DESC LIMIT {}",
        if dispatcher {
            "AND (e.user_id = $2 OR lower(u.dispatch_area) = lower($3))"
        } else {
            ""
        },
        limit.clamp(1, 100)
    );
    type Row = (Ts, String, Option<String>, String, Option<String>, String);
    let rows: Vec<Row> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql).bind(since);
        if dispatcher {
            q = q.bind(user.id).bind(user.dispatch_area.as_deref());
        }
        q.fetch_all(c).await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(received_at, station, worker, kind, code, result)| Refused {
                received_at,
                station,
                worker,
                kind,
                code,
                message: serde_json::from_str::<EventResult>(&result)
                    .ok()
                    .and_then(|r| r.message)
                    .unwrap_or_default(),
            },
        )
        .collect())
}
