//! Linking child bags into parent bags ([`Scans`], in groups), and undoing a link.
//!
//! The capacity cap and "one parent per child" are enforced by the database:
//! the parent's counter only moves while it stays within capacity, in the
//! same statement, and `links.child_id` is unique. No lock lives in this process.

mod scans;

pub use scans::{Changed, Scans};

use serde_json::json;
use traitortrack_protocol::{normalize, BagKind, ParentState, Role};

use crate::audit::{self, Actor, Entry};
use crate::bags::{self, BagRow};
use crate::config::Settings;
use crate::counters;
use crate::db::{Ts, Tx};
use crate::error::{Error, Result};
use crate::on;
use crate::users::User;

pub(super) const SCANNERS: &[Role] = &[Role::Dispatcher, Role::Admin];

/// One scan that puts a child into a parent.
pub struct Link<'a> {
    pub parent: &'a str,
    pub child: &'a str,
    pub event_id: Option<uuid::Uuid>,
    /// When it was scanned.
    pub at: Ts,
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

pub(super) fn child_is_parent(code: &str) -> Error {
    Error::bad_input(
        "child_is_parent",
        format!("{code} is a parent bag, not a child bag."),
    )
}

pub(super) fn already_in(child: &str, holder: &str, scanned_parent: &str) -> Error {
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
                "SELECT id, child_code, user_id, linked_at FROM links
                 WHERE parent_id = $1 AND child_code = $2",
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
            let owner: Option<(Option<i64>, Option<String>)> = on!(tx.conn(), |c| {
                sqlx::query_as(
                    "SELECT l.user_id, u.username FROM links l
                     LEFT JOIN users u ON u.id = l.user_id
                     WHERE l.parent_id = $1 AND l.child_code = $2",
                )
                .bind(parent.id)
                .bind(child_code)
                .fetch_optional(c)
                .await
            })?;
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
                "SELECT id, child_code, user_id, linked_at FROM links
                 WHERE parent_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT 1",
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
