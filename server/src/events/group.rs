//! One group of station batches in one transaction.
//!
//! The group locks every code it names (in one global order, so groups that
//! share codes queue instead of deadlocking), reads the stored outcomes and
//! the workers once, and applies the events in order: link scans in memory
//! over bags read once ([`Scans`]), written back set-based; the rarer
//! unlinks and bill changes one by one inside a savepoint. The outcomes are
//! stored last, in one statement: inserting them is the arbiter between
//! concurrent resends, and a resend stored first by someone else sends the
//! whole group round again, where it is answered from the stored outcome.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use traitortrack_protocol::{normalize, Event, EventResult, EventStatus, EventType};
use uuid::Uuid;

use super::{Job, SignedIn};
use crate::audit::Actor;
use crate::bills;
use crate::config::Settings;
use crate::counters;
use crate::db::{self, Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::linking::{self, Changed, Link, Scans, Unlink};
use crate::rows::{self, Col, Form, Rows, Val};
use crate::stations::{self, Station};
use crate::users::{self, User};

/// Runs of a group that met a transient failure or a change made around its locks.
const ATTEMPTS: u32 = 5;

/// Applies the jobs in one transaction and answers each. When the group
/// fails for a reason that is not passing, each batch is tried alone, so
/// one batch's failure is never its neighbours'.
pub(super) async fn apply(db: &Db, settings: &Settings, known: &SignedIn, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        match with_retries(db, settings, known, &jobs).await {
            Ok(answers) => return answer(jobs, answers),
            Err(e) => {
                tracing::warn!(error = %e, batches = jobs.len(), "group failed; batches apply alone")
            }
        }
    }
    for job in jobs {
        let one = std::slice::from_ref(&job);
        let result = with_retries(db, settings, known, one)
            .await
            .map(|mut answers| answers.pop().unwrap_or_default());
        let _ = job.reply.send(result);
    }
}

fn answer(jobs: Vec<Job>, answers: Vec<Vec<EventResult>>) {
    for (job, results) in jobs.into_iter().zip(answers) {
        // A request whose client left has nobody to answer.
        let _ = job.reply.send(Ok(results));
    }
}

async fn with_retries(
    db: &Db,
    settings: &Settings,
    known: &SignedIn,
    jobs: &[Job],
) -> Result<Vec<Vec<EventResult>>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let again = match try_group(db, settings, known, jobs).await {
            Ok(Ok(answers)) => return Ok(answers),
            Ok(Err(Changed)) => Ok(()),
            // A code, child or event id taken meanwhile by a writer outside
            // the group's locks (an import, a resend): the inserts carry no
            // ON CONFLICT clause, which PostgreSQL pays for on every row.
            Err(Error::Db(e)) if db::is_unique_violation(&e) => Ok(()),
            Err(Error::Db(e)) if db::is_transient(&e) => Err(Error::Db(e)),
            Err(other) => return Err(other),
        };
        if attempt >= ATTEMPTS {
            return Err(again.err().unwrap_or_else(|| {
                Error::conflict(
                    "busy",
                    "These bags kept changing while the scans were saved. Send them again.",
                )
            }));
        }
        let wait = rand::thread_rng().gen_range(5..20 * u64::from(attempt));
        tracing::debug!(attempt, "event group runs again");
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// An event's outcome row, written at the end of the group.
struct Stored {
    id: Uuid,
    station_id: i64,
    user_id: Option<i64>,
    kind: EventType,
    result: EventResult,
    scanned_at: Ts,
    received_at: Ts,
}

/// The codes of an event that are well formed, normalized.
fn codes_of(ev: &Event) -> impl Iterator<Item = String> + '_ {
    [&ev.parent, &ev.child, &ev.bill]
        .into_iter()
        .filter_map(|c| c.as_deref().and_then(|c| normalize(c).ok()))
}

async fn try_group(
    db: &Db,
    settings: &Settings,
    known: &SignedIn,
    jobs: &[Job],
) -> Result<Result<Vec<Vec<EventResult>>, Changed>> {
    let mut tx = db.begin().await?;
    let all = || {
        jobs.iter()
            .flat_map(|j| j.events.iter().map(move |ev| (j, ev)))
    };
    let codes: BTreeSet<String> = all().flat_map(|(_, ev)| codes_of(ev)).collect();
    tx.lock_codes(codes.iter().map(String::as_str)).await?;

    let ids: Vec<Uuid> = all().map(|(_, ev)| ev.id).collect();
    let mut stored = stored_outcomes(&mut tx, &ids).await?;
    let names: BTreeSet<String> = all()
        .filter_map(|(_, ev)| users::normalize_username(&ev.user).ok())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let workers = users::find_by_usernames(&mut tx, &names).await?;
    let pairs: BTreeSet<(i64, i64)> = all()
        .filter_map(|(j, ev)| Some((j.station.id, worker_of(&workers, &ev.user)?.id)))
        .collect();
    let (mut signed_in, mut unknown) = (HashSet::new(), Vec::new());
    {
        let known = lock(known);
        for pair in pairs {
            if known.contains(&pair) {
                signed_in.insert(pair);
            } else {
                unknown.push(pair);
            }
        }
    }
    if !unknown.is_empty() {
        let found = stations::signed_in(&mut tx, &unknown).await?;
        let mut known = lock(known);
        if known.len() > 1_000_000 {
            known.clear();
        }
        known.extend(found.iter().copied());
        signed_in.extend(found);
    }
    let link_codes: BTreeSet<String> = all()
        .filter(|(_, ev)| ev.kind == EventType::Link)
        .flat_map(|(_, ev)| codes_of(ev))
        .collect();

    let mut scans: Option<Scans> = None;
    let mut rows: Vec<Stored> = Vec::with_capacity(ids.len());
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let station = &job.station;
        let today = counters::scans_on(counters::day_of(job.now.time(), settings.utc_offset));
        let (day, hour) = counters::hour_of(job.now.time(), settings.utc_offset);
        let this_hour = counters::scans_in_hour(day, hour);
        let mut results = Vec::with_capacity(job.events.len());
        for ev in &job.events {
            if let Some(earlier) = stored.get(&ev.id) {
                results.push(resent(station, ev, earlier));
                continue;
            }
            let worker = worker_of(&workers, &ev.user);
            let refusal = worker_refusal(
                worker,
                worker.is_some_and(|w| signed_in.contains(&(station.id, w.id))),
                &ev.user,
                station,
            );
            let outcome = match (refusal, worker) {
                (Some(refusal), _) => Err(refusal),
                (None, None) => Err(Error::Internal("worker check missing".into())),
                (None, Some(worker)) => {
                    let actor = Actor {
                        station_id: Some(station.id),
                        ..job.actor.as_user(worker.id, &worker.username)
                    };
                    if ev.kind == EventType::Link {
                        if scans.is_none() {
                            scans = Some(Scans::load(&mut tx, &link_codes).await?);
                        }
                        match scans.as_mut() {
                            Some(s) => link(s, settings, worker, &actor, ev, job.now),
                            None => Err(Error::Internal("scans not loaded".into())),
                        }
                    } else {
                        // The bags as written so far, for this event to see.
                        if let Some(s) = scans.take() {
                            if let Err(changed) = s.write(&mut tx).await? {
                                return Ok(Err(changed));
                            }
                        }
                        tx.savepoint().await?;
                        let outcome =
                            apply_one(&mut tx, settings, worker, &actor, ev, job.now).await;
                        match outcome {
                            Ok(_) => tx.release().await?,
                            Err(_) => tx.rollback_to_savepoint().await?,
                        }
                        outcome
                    }
                }
            };
            let mut result = EventResult {
                id: ev.id,
                status: EventStatus::Applied,
                code: None,
                message: None,
                parent: None,
                bill: None,
            };
            match outcome {
                Ok(applied) => {
                    result.parent = applied.parent;
                    result.bill = applied.bill;
                    let scans = i64::from(counts_as_scan(ev.kind));
                    tx.deltas.add(today.clone(), scans);
                    tx.deltas.add(this_hour.clone(), scans);
                }
                Err(Error::Refused { code, message, .. }) => {
                    result.status = EventStatus::Rejected;
                    result.code = Some(code.to_string());
                    result.message = Some(message);
                }
                Err(other) => return Err(other),
            }
            let row = Stored {
                id: ev.id,
                station_id: station.id,
                user_id: worker.map(|w| w.id),
                kind: ev.kind,
                result: result.clone(),
                scanned_at: Ts::new(ev.at),
                received_at: job.now,
            };
            // The same id again later in this group is a resend of this one.
            stored.insert(ev.id, (station.id, result.clone()));
            rows.push(row);
            results.push(result);
        }
        answers.push(results);
    }
    if let Some(s) = scans.take() {
        if let Err(changed) = s.write(&mut tx).await? {
            return Ok(Err(changed));
        }
    }
    store_outcomes(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(Ok(answers))
}

fn lock(known: &SignedIn) -> std::sync::MutexGuard<'_, HashSet<(i64, i64)>> {
    known.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker_of<'w>(workers: &'w HashMap<String, User>, name: &str) -> Option<&'w User> {
    users::normalize_username(name)
        .ok()
        .and_then(|n| workers.get(&n))
}

/// Checks that a worker named by a station event may act through that
/// station: answers the refusal to store when not.
fn worker_refusal(
    user: Option<&User>,
    signed_in: bool,
    username: &str,
    station: &Station,
) -> Option<Error> {
    let Some(user) = user else {
        return Some(Error::forbidden(
            "unknown_worker",
            format!("There is no worker called {username:?}."),
        ));
    };
    (!signed_in).then(|| {
        Error::forbidden(
            "worker_not_signed_in_here",
            format!(
                "{} has never logged in at station {}. Log in there first.",
                user.username, station.name
            ),
        )
    })
}

fn counts_as_scan(kind: EventType) -> bool {
    matches!(kind, EventType::Link | EventType::BillAdd)
}

/// What an applied event answers besides its status.
#[derive(Default)]
struct Applied {
    parent: Option<traitortrack_protocol::ParentState>,
    bill: Option<traitortrack_protocol::BillState>,
}

fn need<'e>(ev: &'e Event, field: &'e Option<String>, name: &str) -> Result<&'e str> {
    field.as_deref().ok_or_else(|| {
        Error::bad_input(
            "missing_field",
            format!("A {} event needs a {name}.", ev.kind.as_str()),
        )
    })
}

fn link(
    scans: &mut Scans,
    settings: &Settings,
    worker: &User,
    actor: &Actor,
    ev: &Event,
    now: Ts,
) -> Result<Applied> {
    let at = Ts::new(ev.at);
    worker.check_usable_at(at)?;
    let scan = Link {
        parent: need(ev, &ev.parent, "parent")?,
        child: need(ev, &ev.child, "child")?,
        event_id: Some(ev.id),
        at,
    };
    Ok(Applied {
        parent: Some(scans.link(settings, worker, actor, scan, now)?),
        bill: None,
    })
}

/// An unlink or a bill change, on its own.
async fn apply_one(
    tx: &mut Tx,
    settings: &Settings,
    worker: &User,
    actor: &Actor,
    ev: &Event,
    now: Ts,
) -> Result<Applied> {
    let at = Ts::new(ev.at);
    worker.check_usable_at(at)?;
    let mut applied = Applied::default();
    match ev.kind {
        EventType::Link => {
            return Err(Error::Internal(
                "a link scan went the one-by-one way".into(),
            ))
        }
        EventType::Unlink => {
            let req = Unlink {
                parent: need(ev, &ev.parent, "parent")?,
                child: ev.child.as_deref(),
                reason: ev.reason.as_deref(),
                at,
            };
            applied.parent = Some(linking::unlink(tx, settings, worker, actor, req, now).await?);
        }
        EventType::BillAdd => {
            let (bill, parent) = (need(ev, &ev.bill, "bill")?, need(ev, &ev.parent, "parent")?);
            applied.bill = Some(bills::add_parent(tx, worker, actor, bill, parent, now).await?);
        }
        EventType::BillRemove => {
            let (bill, parent) = (need(ev, &ev.bill, "bill")?, need(ev, &ev.parent, "parent")?);
            applied.bill = Some(bills::remove_parent(tx, worker, actor, bill, parent, now).await?);
        }
    }
    Ok(applied)
}

/// The outcomes stored for these event ids: the sending station and the outcome.
async fn stored_outcomes(tx: &mut Tx, ids: &[Uuid]) -> Result<HashMap<Uuid, (i64, EventResult)>> {
    let keys = Rows::keys(Col::Uuid, ids, |id| Val::Uuid(*id));
    let rows: Vec<(Uuid, i64, String)> = rows::fetch(tx.conn(), keys, Form::In, |ids| {
        format!("SELECT id, station_id, result FROM events WHERE id {ids}")
    })
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for (id, station, json) in rows {
        let result: EventResult = serde_json::from_str(&json)
            .map_err(|e| Error::Internal(format!("stored outcome of {id} unreadable: {e}")))?;
        found.insert(id, (station, result));
    }
    Ok(found)
}

/// The answer to an event sent before, as a resend sees it. An id another
/// station used is refused, and that station's outcome stays private.
fn resent(station: &Station, ev: &Event, (owner, earlier): &(i64, EventResult)) -> EventResult {
    if *owner != station.id {
        return EventResult {
            id: ev.id,
            status: EventStatus::Rejected,
            code: Some("event_id_taken".into()),
            message: Some("Another station already sent an event with this id. Scan again.".into()),
            parent: None,
            bill: None,
        };
    }
    let mut result = earlier.clone();
    if result.status == EventStatus::Applied {
        result.status = EventStatus::Duplicate;
    }
    result
}

/// Stores the outcomes. An outcome a concurrent resend stored first fails
/// the statement with a unique violation, which runs the group again.
async fn store_outcomes(tx: &mut Tx, rows: &[Stored]) -> Result<()> {
    let mut list = Rows::new(
        &[
            Col::Uuid,
            Col::Int,
            Col::Int,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Ts,
            Col::Ts,
            Col::Text,
        ],
        rows.len(),
    );
    for row in rows {
        let json = serde_json::to_string(&row.result)
            .map_err(|e| Error::Internal(format!("outcome not serialisable: {e}")))?;
        let status = match row.result.status {
            EventStatus::Rejected => "rejected",
            _ => "applied",
        };
        list.push([
            Val::Uuid(row.id),
            Val::Int(row.station_id),
            Val::OptInt(row.user_id),
            Val::Text(row.kind.as_str().to_string()),
            Val::Text(status.to_string()),
            Val::OptText(row.result.code.clone()),
            Val::Ts(row.scanned_at),
            Val::Ts(row.received_at),
            Val::Text(json),
        ]);
    }
    rows::execute(tx.conn(), list, Form::Insert, |rows| {
        format!(
            "INSERT INTO events (id, station_id, user_id, kind, status, code, scanned_at, received_at, result)
             {rows}"
        )
    })
    .await?;
    Ok(())
}
