//! Applying station events exactly once.
//!
//! A batch runs in one transaction; each event runs inside a savepoint, so a
//! refused event leaves no trace but its stored outcome and never fails its
//! neighbours. The stored outcome, keyed by the event's id, is what a resend
//! gets back. Inserting that row is the arbiter between concurrent resends:
//! the loser's insert waits for the winner, conflicts, and rolls its event back.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use traitortrack_protocol::{
    normalize, Event, EventResult, EventStatus, EventType, MAX_EVENTS_PER_REQUEST,
};

use crate::audit::Actor;
use crate::bills;
use crate::config::Settings;
use crate::counters;
use crate::db::{self, Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::linking::{self, Link, Unlink};
use crate::on;
use crate::stations::{self, Station};
use crate::users::{self, User};

const ATTEMPTS: u32 = 5;

/// Applies a batch from a station; one result per event, in order.
pub async fn apply_batch(
    db: &Db,
    settings: &Settings,
    station: &Station,
    actor: &Actor,
    events: &[Event],
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
    // Outside the batch's transaction: its row lock must not queue the station's batches.
    stations::touch(db, station, now).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_batch(db, settings, station, actor, events, now).await {
            Err(Error::Db(e)) if db::is_transient(&e) && attempt < ATTEMPTS => {
                let wait = rand::thread_rng().gen_range(5..20 * u64::from(attempt));
                tracing::debug!(error = %e, attempt, "batch retried");
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            other => return other,
        }
    }
}

async fn try_batch(
    db: &Db,
    settings: &Settings,
    station: &Station,
    actor: &Actor,
    events: &[Event],
    now: Ts,
) -> Result<Vec<EventResult>> {
    let mut tx = db.begin().await?;
    let codes: Vec<String> = events
        .iter()
        .flat_map(|ev| [&ev.parent, &ev.child, &ev.bill])
        .filter_map(|c| c.as_deref().and_then(|c| normalize(c).ok()))
        .collect();
    tx.lock_codes(codes.iter().map(String::as_str)).await?;
    let mut workers: HashMap<&str, Result<User>> = HashMap::new();
    let mut results = Vec::with_capacity(events.len());
    let today = counters::scans_on(counters::day_of(now.time(), settings.utc_offset));
    let (day, hour) = counters::hour_of(now.time(), settings.utc_offset);
    let this_hour = counters::scans_in_hour(day, hour);

    for ev in events {
        if let Some(stored) = stored_outcome(&mut tx, station, ev).await? {
            results.push(stored);
            continue;
        }
        if !workers.contains_key(ev.user.as_str()) {
            let checked = worker_for(&mut tx, station, &ev.user).await?;
            workers.insert(ev.user.as_str(), checked);
        }
        let worker: Result<&User> = match workers.get(ev.user.as_str()) {
            Some(Ok(w)) => Ok(w),
            Some(Err(Error::Refused {
                kind,
                code,
                message,
            })) => Err(Error::refused(*kind, code, message.clone())),
            _ => Err(Error::Internal("worker check missing".into())),
        };

        tx.savepoint().await?;
        let (worker, outcome) = match worker {
            Ok(w) => (
                Some(w),
                apply_one(&mut tx, settings, w, actor, station, ev, now).await,
            ),
            Err(e) => (None, Err(e)),
        };
        let result = match outcome {
            Ok(mut result) => {
                let scans = i64::from(counts_as_scan(ev.kind));
                tx.deltas.add(today.clone(), scans);
                tx.deltas.add(this_hour.clone(), scans);
                if store_outcome(&mut tx, station, worker, ev, &result, now).await? {
                    tx.release().await?;
                    result.status = EventStatus::Applied;
                    result
                } else {
                    tx.rollback_to_savepoint().await?;
                    resent_meanwhile(&mut tx, station, ev).await?
                }
            }
            Err(Error::Refused { code, message, .. }) => {
                tx.rollback_to_savepoint().await?;
                let result = EventResult {
                    id: ev.id,
                    status: EventStatus::Rejected,
                    code: Some(code.to_string()),
                    message: Some(message),
                    parent: None,
                    bill: None,
                };
                if store_outcome(&mut tx, station, worker, ev, &result, now).await? {
                    result
                } else {
                    resent_meanwhile(&mut tx, station, ev).await?
                }
            }
            Err(other) => return Err(other),
        };
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

fn counts_as_scan(kind: EventType) -> bool {
    matches!(kind, EventType::Link | EventType::BillAdd)
}

/// Checks that a worker named by a station event may act through that station.
async fn worker_for(tx: &mut Tx, station: &Station, username: &str) -> Result<Result<User>> {
    let Some(user) = users::find_by_username(tx.conn(), username).await? else {
        return Ok(Err(Error::forbidden(
            "unknown_worker",
            format!("There is no worker called {username:?}."),
        )));
    };
    if stations::worker_since(tx, station.id, user.id)
        .await?
        .is_none()
    {
        return Ok(Err(Error::forbidden(
            "worker_not_signed_in_here",
            format!(
                "{} has never logged in at station {}. Log in there first.",
                user.username, station.name
            ),
        )));
    }
    Ok(Ok(user))
}

async fn apply_one<'e>(
    tx: &mut Tx,
    settings: &Settings,
    worker: &User,
    actor: &Actor,
    station: &Station,
    ev: &'e Event,
    now: Ts,
) -> Result<EventResult> {
    let at = Ts::new(ev.at);
    worker.check_usable_at(at)?;
    let actor = Actor {
        station_id: Some(station.id),
        ..actor.as_user(worker.id, &worker.username)
    };
    let need = |field: &'e Option<String>, name: &str| -> Result<&'e str> {
        field.as_deref().ok_or_else(|| {
            Error::bad_input(
                "missing_field",
                format!("A {} event needs a {name}.", ev.kind.as_str()),
            )
        })
    };
    let mut result = EventResult {
        id: ev.id,
        status: EventStatus::Applied,
        code: None,
        message: None,
        parent: None,
        bill: None,
    };
    match ev.kind {
        EventType::Link => {
            let scan = Link {
                parent: need(&ev.parent, "parent")?,
                child: need(&ev.child, "child")?,
                event_id: Some(ev.id),
                at,
            };
            result.parent = Some(linking::link(tx, settings, worker, &actor, scan, now).await?);
        }
        EventType::Unlink => {
            let req = Unlink {
                parent: need(&ev.parent, "parent")?,
                child: ev.child.as_deref(),
                reason: ev.reason.as_deref(),
                at,
            };
            result.parent = Some(linking::unlink(tx, settings, worker, &actor, req, now).await?);
        }
        EventType::BillAdd => {
            let (bill, parent) = (need(&ev.bill, "bill")?, need(&ev.parent, "parent")?);
            result.bill = Some(bills::add_parent(tx, worker, &actor, bill, parent, now).await?);
        }
        EventType::BillRemove => {
            let (bill, parent) = (need(&ev.bill, "bill")?, need(&ev.parent, "parent")?);
            result.bill = Some(bills::remove_parent(tx, worker, &actor, bill, parent, now).await?);
        }
    }
    Ok(result)
}

/// The outcome stored for an event sent before, as a resend sees it. An id
/// another station used is refused, and that station's outcome stays private.
async fn stored_outcome(tx: &mut Tx, station: &Station, ev: &Event) -> Result<Option<EventResult>> {
    let stored: Option<(i64, String)> = on!(tx.conn(), |c| sqlx::query_as(
        "SELECT station_id, result FROM events WHERE id = $1"
    )
    .bind(ev.id)
    .fetch_optional(c)
    .await)?;
    if let Some((owner, _)) = &stored {
        if *owner != station.id {
            return Ok(Some(EventResult {
                id: ev.id,
                status: EventStatus::Rejected,
                code: Some("event_id_taken".into()),
                message: Some(
                    "Another station already sent an event with this id. Scan again.".into(),
                ),
                parent: None,
                bill: None,
            }));
        }
    }
    stored
        .map(|(_, json)| {
            let mut result: EventResult = serde_json::from_str(&json).map_err(|e| {
                Error::Internal(format!("stored outcome of {} unreadable: {e}", ev.id))
            })?;
            if result.status == EventStatus::Applied {
                result.status = EventStatus::Duplicate;
            }
            Ok(result)
        })
        .transpose()
}

async fn resent_meanwhile(tx: &mut Tx, station: &Station, ev: &Event) -> Result<EventResult> {
    stored_outcome(tx, station, ev)
        .await?
        .ok_or_else(|| Error::Internal(format!("event {} vanished", ev.id)))
}

/// Stores an event's outcome; false when a concurrent resend stored one first.
async fn store_outcome(
    tx: &mut Tx,
    station: &Station,
    worker: Option<&User>,
    ev: &Event,
    result: &EventResult,
    now: Ts,
) -> Result<bool> {
    let stored = EventResult {
        status: match result.status {
            EventStatus::Rejected => EventStatus::Rejected,
            _ => EventStatus::Applied,
        },
        ..result.clone()
    };
    let json = serde_json::to_string(&stored)
        .map_err(|e| Error::Internal(format!("outcome not serialisable: {e}")))?;
    let status = match stored.status {
        EventStatus::Rejected => "rejected",
        _ => "applied",
    };
    let inserted: Option<uuid::Uuid> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "INSERT INTO events (id, station_id, user_id, kind, status, code, scanned_at, received_at, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    .bind(ev.id)
    .bind(station.id)
    .bind(worker.map(|w| w.id))
    .bind(ev.kind.as_str())
    .bind(status)
    .bind(stored.code.as_deref())
    .bind(Ts::new(ev.at))
    .bind(now)
    .bind(&json)
    .fetch_optional(c)
    .await
    })?;
    Ok(inserted.is_some())
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
