//! Promotion requests: a user asks for another role, an admin approves or
//! rejects it, and the user is told in the app either way.

use serde_json::json;
use traitortrack_protocol::Role;

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::users::{self, Change, User};
use crate::{notifications, on};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "approved" => Some(Status::Approved),
            "rejected" => Some(Status::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    /// The user's role when this was read.
    pub current_role: Role,
    pub role: Role,
    pub reason: String,
    pub status: Status,
    pub created_at: Ts,
    pub decided_by: Option<String>,
    pub decided_at: Option<Ts>,
    pub note: Option<String>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Ts,
    Option<String>,
    Option<Ts>,
    Option<String>,
);

const SELECT: &str = "SELECT p.id, p.user_id, u.username, u.role, p.role, p.reason, p.status,
        p.created_at, d.username, p.decided_at, p.note
     FROM promotion_requests p
     JOIN users u ON u.id = p.user_id
     LEFT JOIN users d ON d.id = p.decided_by";

fn from_row(r: Row) -> Result<Request> {
    let bad =
        |what: &str, v: &str| Error::Internal(format!("promotion {} has a bad {what} {v:?}", r.0));
    Ok(Request {
        id: r.0,
        user_id: r.1,
        current_role: Role::parse(&r.3).ok_or_else(|| bad("user role", &r.3))?,
        role: Role::parse(&r.4).ok_or_else(|| bad("role", &r.4))?,
        status: Status::parse(&r.6).ok_or_else(|| bad("status", &r.6))?,
        username: r.2,
        reason: r.5,
        created_at: r.7,
        decided_by: r.8,
        decided_at: r.9,
        note: r.10,
    })
}

/// The role with its article: "an admin", "a biller".
pub fn a_role(role: Role) -> &'static str {
    match role {
        Role::Admin => "an admin",
        Role::Biller => "a biller",
        Role::Dispatcher => "a dispatcher",
    }
}

/// The longest reason or note, in characters.
pub const MAX_TEXT: usize = 500;

fn text(raw: &str, what: &str, code: &'static str) -> Result<String> {
    let text = raw.trim().to_string();
    let bad = text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t');
    if bad || text.chars().count() > MAX_TEXT {
        return Err(Error::bad_input(
            code,
            format!("The {what} can be at most {MAX_TEXT} characters of ordinary text."),
        ));
    }
    Ok(text)
}

/// `user` asks for `role`, giving a reason. One pending request per user.
pub async fn request(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    role: Role,
    reason: &str,
    now: Ts,
) -> Result<Request> {
    if role == user.role {
        return Err(Error::bad_input(
            "same_role",
            format!("You are already {}.", a_role(role)),
        ));
    }
    let reason = text(reason, "reason", "bad_reason")?;
    if reason.is_empty() {
        return Err(Error::bad_input(
            "bad_reason",
            "Say in a few words why you need the new role.",
        ));
    }
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
            "INSERT INTO promotion_requests (user_id, role, reason, status, created_at)
             VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
        )
        .bind(user.id)
        .bind(role.as_str())
        .bind(&reason)
        .bind(now)
        .fetch_one(c)
        .await
    });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if crate::db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "request_pending",
                "You already have a request waiting for an admin. Wait for their answer before you ask again.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "promotion_request",
            entity: "user",
            code: Some(&user.username),
            before: Some(json!({"role": user.role.as_str()})),
            after: Some(json!({"role": role.as_str(), "request": id})),
        },
    )
    .await?;
    let message = format!(
        "{} asks to become {}: {reason}",
        user.username,
        a_role(role)
    );
    notifications::notify_admins(tx, user.id, "promotion_request", &message, now).await?;
    get(tx, id).await
}

async fn get(tx: &mut Tx, id: i64) -> Result<Request> {
    let sql = format!("{SELECT} WHERE p.id = $1");
    let row: Option<Row> = on!(tx.conn(), |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).transpose()?.ok_or_else(|| {
        Error::not_found(
            "request_not_found",
            format!("There is no promotion request with id {id}."),
        )
    })
}

/// Requests newest first: everyone's for an admin, only one's own for others.
pub async fn list(
    db: &Db,
    viewer: &User,
    status: Option<Status>,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<Request>, Option<i64>)> {
    let limit = limit.clamp(1, 100) as usize;
    let own = (viewer.role != Role::Admin).then_some(viewer.id);
    let sql = format!(
        "{SELECT}
         WHERE ($1 IS NULL OR p.user_id = $1) AND ($2 IS NULL OR p.status = $2)
           AND ($3 IS NULL OR p.id < $3)
         ORDER BY p.id DESC LIMIT $4"
    );
    let rows: Vec<Row> = on!(db.reader(), |c| sqlx::query_as(&sql)
        .bind(own)
        .bind(status.map(Status::as_str))
        .bind(before)
        .bind(limit as i64 + 1)
        .fetch_all(c)
        .await)?;
    let mut items = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let next = notifications::next_before(&mut items, limit, |r| r.id);
    Ok((items, next))
}

/// The pending request `id`, under its lock, for `by` to decide.
async fn pending_for(tx: &mut Tx, by: &User, id: i64) -> Result<Request> {
    by.require(&[Role::Admin], "decide promotion requests")?;
    tx.lock_codes([format!("~promotion:{id}").as_str()]).await?;
    let req = get(tx, id).await?;
    if req.user_id == by.id {
        return Err(Error::forbidden(
            "own_request",
            "You cannot decide your own request. Ask another admin.",
        ));
    }
    if req.status != Status::Pending {
        return Err(Error::conflict(
            "already_decided",
            format!(
                "This request was already {} by {}.",
                req.status.as_str(),
                req.decided_by.as_deref().unwrap_or("an admin")
            ),
        ));
    }
    Ok(req)
}

async fn decide(
    tx: &mut Tx,
    by: &User,
    req: &Request,
    status: Status,
    note: Option<&str>,
    now: Ts,
) -> Result<()> {
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE promotion_requests SET status = $2, decided_by = $3, decided_at = $4, note = $5
         WHERE id = $1 AND status = 'pending'"
    )
    .bind(req.id)
    .bind(status.as_str())
    .bind(by.id)
    .bind(now)
    .bind(note)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

fn note_text(note: Option<&str>) -> Result<Option<String>> {
    Ok(note
        .map(|n| text(n, "note", "bad_note"))
        .transpose()?
        .filter(|n| !n.is_empty()))
}

/// An admin's answer to a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decision<'a> {
    /// Shown to the user.
    pub note: Option<&'a str>,
    /// The area of a new dispatcher (else the one the user already names).
    pub dispatch_area: Option<&'a str>,
}

/// Approves a request: the role changes through [`users::change`], with all its rules.
pub async fn approve(
    tx: &mut Tx,
    settings: &Settings,
    by: &User,
    actor: &Actor,
    id: i64,
    decision: Decision<'_>,
    now: Ts,
) -> Result<Request> {
    let note = note_text(decision.note)?;
    let dispatch_area = decision.dispatch_area;
    let req = pending_for(tx, by, id).await?;
    let change = Change {
        role: Some(req.role),
        dispatch_area: dispatch_area.map(|a| Some(a.to_string())),
    };
    let changed = users::change(tx, settings, by, actor, &req.username, &change, now).await?;
    decide(tx, by, &req, Status::Approved, note.as_deref(), now).await?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "promotion_approve",
            entity: "user",
            code: Some(&req.username),
            before: Some(json!({"role": changed.before.role.as_str()})),
            after: Some(json!({
                "role": changed.after.role.as_str(),
                "dispatch_area": changed.after.dispatch_area,
                "request": req.id,
                "note": note,
            })),
        },
    )
    .await?;
    let mut message = format!(
        "{} approved your request: you are now {}. Log in again to go on.",
        by.username,
        a_role(req.role)
    );
    if let Some(note) = &note {
        message.push_str(&format!(" Note: {note}"));
    }
    notifications::notify(tx, req.user_id, "promotion_approved", &message, now).await?;
    get(tx, id).await
}

/// Rejects a request; the user keeps their role and is told.
pub async fn reject(
    tx: &mut Tx,
    by: &User,
    actor: &Actor,
    id: i64,
    note: Option<&str>,
    now: Ts,
) -> Result<Request> {
    let note = note_text(note)?;
    let req = pending_for(tx, by, id).await?;
    decide(tx, by, &req, Status::Rejected, note.as_deref(), now).await?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "promotion_reject",
            entity: "user",
            code: Some(&req.username),
            before: None,
            after: Some(json!({"role": req.role.as_str(), "request": req.id, "note": note})),
        },
    )
    .await?;
    let mut message = format!(
        "{} turned down your request to become {}.",
        by.username,
        a_role(req.role)
    );
    if let Some(note) = &note {
        message.push_str(&format!(" Note: {note}"));
    }
    notifications::notify(tx, req.user_id, "promotion_rejected", &message, now).await?;
    get(tx, id).await
}
