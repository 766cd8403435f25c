//! Linking child bags into parent bags, and undoing a link.
//!
//! The capacity cap and "one parent per child" are enforced by the database:
//! the parent's counter only moves with `child_count < capacity` in the same
//! statement, and `links.child_id` is unique. No lock lives in this process.

use serde_json::json;
use traitortrack_protocol::{normalize, BagKind, CodeKind, ParentState, Role};

use crate::audit::{self, Actor, Entry};
use crate::bags::{self, BagRow};
use crate::config::Settings;
use crate::counters;
use crate::db::{Ts, Tx};
use crate::error::{Error, Result};
use crate::on;
use crate::users::User;

const SCANNERS: &[Role] = &[Role::Dispatcher, Role::Admin];

/// One scan that puts a child into a parent.
pub struct Link<'a> {
    pub parent: &'a str,
    pub child: &'a str,
    pub event_id: Option<uuid::Uuid>,
    /// When it was scanned.
    pub at: Ts,
}

/// Finds the parent for a scan, creating it on first scan, and checks the worker may use it.
async fn scan_parent(
    tx: &mut Tx,
    settings: &Settings,
    worker: &User,
    raw: &str,
    now: Ts,
) -> Result<BagRow> {
    let code = normalize(raw)?;
    let parent = match bags::find(tx.conn(), &code).await? {
        Some(bag) => bag,
        None => {
            let capacity = bags::parent_capacity(&settings.formats, &code)?;
            let area = worker.dispatch_area.as_deref();
            bags::find_or_create(tx, &code, BagKind::Parent, Some(capacity), area, now).await?
        }
    };
    check_open_parent(tx, worker, &parent).await?;
    Ok(parent)
}

/// Refuses a parent the worker may not put bags in or take bags from:
/// not a parent, another area, or on a closed bill.
async fn check_open_parent(tx: &mut Tx, worker: &User, parent: &BagRow) -> Result<()> {
    let code = &parent.code;
    if parent.kind != BagKind::Parent {
        return Err(Error::bad_input(
            "not_a_parent",
            format!("{code} is a child bag. Scan a parent bag."),
        ));
    }
    worker.check_area(code, parent.dispatch_area.as_deref())?;
    if let Some(bill_id) = parent.bill_id {
        let closed: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
            "SELECT code FROM bills WHERE id = $1 AND status = 'closed'"
        )
        .bind(bill_id)
        .fetch_optional(c)
        .await)?;
        if let Some(bill) = closed {
            return Err(Error::conflict(
                "bill_closed",
                format!("{code} is on bill {bill}, which is closed."),
            ));
        }
    }
    Ok(())
}

/// Links a child into a parent. Returns the parent's state after the link.
pub async fn link(
    tx: &mut Tx,
    settings: &Settings,
    worker: &User,
    actor: &Actor,
    scan: Link<'_>,
    now: Ts,
) -> Result<ParentState> {
    worker.require(SCANNERS, "link bags")?;
    let parent = scan_parent(tx, settings, worker, scan.parent, now).await?;
    if parent.dispatch_area.is_none() && worker.dispatch_area.is_some() {
        on!(tx.conn(), |c| sqlx::query(
            "UPDATE bags SET dispatch_area = $2 WHERE id = $1 AND dispatch_area IS NULL"
        )
        .bind(parent.id)
        .bind(worker.dispatch_area.as_deref())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let area = parent
        .dispatch_area
        .as_deref()
        .or(worker.dispatch_area.as_deref());

    let child_code = normalize(scan.child)?;
    if child_code == parent.code {
        return Err(Error::bad_input(
            "same_bag",
            format!("{child_code} is the parent bag itself. Scan a child bag."),
        ));
    }
    let child = match bags::find(tx.conn(), &child_code).await? {
        Some(bag) => bag,
        None => match settings.formats.classify(&child_code) {
            CodeKind::Child => {
                bags::find_or_create(tx, &child_code, BagKind::Child, None, area, now).await?
            }
            CodeKind::Parent { .. } => return Err(child_is_parent(&child_code)),
            CodeKind::Unknown => {
                return Err(Error::bad_input(
                    "not_a_child",
                    format!("{child_code} is not a child bag code."),
                ))
            }
        },
    };
    if child.kind != BagKind::Child {
        return Err(child_is_parent(&child_code));
    }

    let current: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT p.code FROM links l JOIN bags p ON p.id = l.parent_id WHERE l.child_id = $1"
    )
    .bind(child.id)
    .fetch_optional(c)
    .await)?;
    if let Some(other) = current {
        return Err(already_in(&child_code, &other, &parent.code));
    }

    let counted: Option<(i32, i32)> = on!(tx.conn(), |c| sqlx::query_as(
        "UPDATE bags SET child_count = child_count + 1, updated_at = $2
         WHERE id = $1 AND child_count < capacity RETURNING child_count, capacity"
    )
    .bind(parent.id)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let Some((count, capacity)) = counted else {
        let cap = parent.capacity.unwrap_or(0);
        return Err(Error::conflict(
            "parent_full",
            format!("{} is full: {cap} of {cap}", parent.code),
        ));
    };

    let linked: Option<i64> = on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO links (parent_id, child_id, user_id, station_id, event_id, linked_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (child_id) DO NOTHING RETURNING id"
    )
    .bind(parent.id)
    .bind(child.id)
    .bind(worker.id)
    .bind(actor.station_id)
    .bind(scan.event_id)
    .bind(scan.at)
    .fetch_optional(c)
    .await)?;
    if linked.is_none() {
        // Linked elsewhere by a transaction that committed while this one ran;
        // the caller rolls back this event, counter included.
        return Err(Error::conflict(
            "child_in_other_parent",
            format!("{child_code} was just put in another parent bag."),
        ));
    }

    tx.deltas.add(counters::LINKS, 1);
    if count == capacity {
        tx.deltas.add(counters::COMPLETE_PARENTS, 1);
    }
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "link",
            entity: "bag",
            code: Some(&child_code),
            before: Some(json!({"parent": null})),
            after: Some(json!({"parent": parent.code})),
        },
    )
    .await?;
    Ok(ParentState {
        code: parent.code,
        children: count.max(0) as u32,
        capacity: capacity.max(0) as u32,
        complete: count >= capacity,
    })
}

fn child_is_parent(code: &str) -> Error {
    Error::bad_input(
        "child_is_parent",
        format!("{code} is a parent bag, not a child bag."),
    )
}

fn already_in(child: &str, holder: &str, scanned_parent: &str) -> Error {
    if holder == scanned_parent {
        Error::conflict("already_linked", format!("{child} is already in {holder}."))
    } else {
        Error::conflict(
            "child_in_other_parent",
            format!("{child} is already in {holder}."),
        )
    }
}

/// Removing a link: the worker's undo of their own last scan, or an admin's correction.
pub struct Unlink<'a> {
    pub parent: &'a str,
    /// The child to remove; for an undo, when given, it must be the worker's last scan.
    pub child: Option<&'a str>,
    /// An admin's reason: with it, an admin may remove any link.
    pub reason: Option<&'a str>,
    pub at: Ts,
}

/// Removes a link. Returns the parent's state after it.
pub async fn unlink(
    tx: &mut Tx,
    settings: &Settings,
    worker: &User,
    actor: &Actor,
    req: Unlink<'_>,
    now: Ts,
) -> Result<ParentState> {
    worker.require(SCANNERS, "remove bags from a parent")?;
    let parent_code = normalize(req.parent)?;
    let parent = bags::find(tx.conn(), &parent_code).await?.ok_or_else(|| {
        Error::not_found("bag_not_found", format!("There is no bag {parent_code}."))
    })?;
    check_open_parent(tx, worker, &parent).await?;

    let child_code = req.child.map(normalize).transpose()?;
    let reason = req
        .reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(500).collect::<String>());
    let correction = worker.role == Role::Admin && reason.is_some();

    type LinkRow = (i64, String, Option<i64>, Ts);
    let target: LinkRow = if correction {
        let Some(child_code) = &child_code else {
            return Err(Error::bad_input(
                "child_required",
                "Say which child bag to remove.",
            ));
        };
        let row: Option<LinkRow> = on!(tx.conn(), |c| {
            sqlx::query_as(
            "SELECT l.id, c.code, l.user_id, l.linked_at FROM links l JOIN bags c ON c.id = l.child_id
             WHERE l.parent_id = $1 AND c.code = $2"
        )
        .bind(parent.id)
        .bind(child_code)
        .fetch_optional(c)
        .await
        })?;
        row.ok_or_else(|| {
            Error::not_found(
                "not_in_parent",
                format!("{child_code} is not in {parent_code}."),
            )
        })?
    } else {
        if let Some(child_code) = &child_code {
            let owner: Option<(Option<i64>, Option<String>)> = on!(tx.conn(), |c| sqlx::query_as(
                "SELECT l.user_id, u.username FROM links l JOIN bags c ON c.id = l.child_id
                 LEFT JOIN users u ON u.id = l.user_id WHERE l.parent_id = $1 AND c.code = $2"
            )
            .bind(parent.id)
            .bind(child_code)
            .fetch_optional(c)
            .await)?;
            match owner {
                None => {
                    return Err(Error::not_found(
                        "not_in_parent",
                        format!("{child_code} is not in {parent_code}."),
                    ))
                }
                Some((uid, name)) if uid != Some(worker.id) => {
                    return Err(Error::forbidden(
                        "not_your_scan",
                        format!(
                            "{child_code} was scanned by {}. Only they or an admin can remove it.",
                            name.unwrap_or_else(|| "someone else".into())
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let last: Option<LinkRow> = on!(tx.conn(), |c| {
            sqlx::query_as(
            "SELECT l.id, c.code, l.user_id, l.linked_at FROM links l JOIN bags c ON c.id = l.child_id
             WHERE l.parent_id = $1 AND l.user_id = $2 ORDER BY l.id DESC LIMIT 1"
        )
        .bind(parent.id)
        .bind(worker.id)
        .fetch_optional(c)
        .await
        })?;
        let last = last.ok_or_else(|| {
            Error::conflict(
                "nothing_to_undo",
                format!("You have no scan in {parent_code} to remove."),
            )
        })?;
        if let Some(child_code) = &child_code {
            if *child_code != last.1 {
                return Err(Error::conflict(
                    "not_your_last_scan",
                    format!(
                        "Only your last scan into {parent_code} ({}) can be removed. Ask an admin to remove {child_code}.",
                        last.1
                    ),
                ));
            }
        }
        if req.at.micros() - last.3.micros() > settings.undo_window.whole_microseconds() as i64 {
            return Err(Error::conflict(
                "undo_too_late",
                format!(
                    "{} was scanned more than {} minutes ago. Ask an admin to remove it.",
                    last.1,
                    settings.undo_window.whole_minutes()
                ),
            ));
        }
        last
    };

    let removed: Option<i64> = on!(tx.conn(), |c| sqlx::query_scalar(
        "DELETE FROM links WHERE id = $1 RETURNING id"
    )
    .bind(target.0)
    .fetch_optional(c)
    .await)?;
    if removed.is_none() {
        return Err(Error::conflict(
            "nothing_to_undo",
            format!("{} was just removed from {parent_code}.", target.1),
        ));
    }
    let (count, capacity): (i32, i32) = on!(tx.conn(), |c| sqlx::query_as(
        "UPDATE bags SET child_count = child_count - 1, updated_at = $2
         WHERE id = $1 RETURNING child_count, capacity"
    )
    .bind(parent.id)
    .bind(now)
    .fetch_one(c)
    .await)?;
    tx.deltas.add(counters::LINKS, -1);
    if count + 1 == capacity {
        tx.deltas.add(counters::COMPLETE_PARENTS, -1);
    }
    let action = if correction {
        "unlink_correction"
    } else {
        "unlink"
    };
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action,
            entity: "bag",
            code: Some(&target.1),
            before: Some(json!({"parent": parent_code})),
            after: Some(json!({"parent": null, "reason": reason})),
        },
    )
    .await?;
    Ok(ParentState {
        code: parent_code,
        children: count.max(0) as u32,
        capacity: capacity.max(0) as u32,
        complete: count >= capacity,
    })
}
