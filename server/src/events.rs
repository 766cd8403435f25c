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
                tx.deltas
                    .add(today.clone(), i64::from(counts_as_scan(ev.kind)));
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
