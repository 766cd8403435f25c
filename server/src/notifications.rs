//! In-app notifications: what happened to a user's account (a role change, an
//! answer to their promotion request), for them to read when they next look.

use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::on;

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub message: String,
    pub created_at: Ts,
    pub read_at: Option<Ts>,
}

/// The most notifications one page holds.
pub const MAX_PAGE: u32 = 100;

/// Leaves `message` for the user, in the transaction of the change it tells of.
pub async fn notify(tx: &mut Tx, user_id: i64, kind: &str, message: &str, now: Ts) -> Result<i64> {
    Ok(on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO notifications (user_id, kind, message, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id"
    )
    .bind(user_id)
    .bind(kind)
    .bind(message)
    .bind(now)
    .fetch_one(c)
    .await)?)
}

/// Leaves `message` for every active admin but `except`.
pub async fn notify_admins(
    tx: &mut Tx,
    except: i64,
    kind: &str,
    message: &str,
    now: Ts,
) -> Result<u64> {
    Ok(on!(tx.conn(), |c| sqlx::query(
        "INSERT INTO notifications (user_id, kind, message, created_at)
         SELECT id, $2, $3, $4 FROM users
         WHERE role = 'admin' AND deactivated_at IS NULL AND id <> $1"
    )
    .bind(except)
    .bind(kind)
    .bind(message)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// The user's notifications, newest first: `limit` (1 to [`MAX_PAGE`]) of
/// those older than the id `before`, when given; and the `before` of the
/// next page, when there is one.
pub async fn list(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<Notification>, Option<i64>)> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let rows: Vec<(i64, String, String, Ts, Option<Ts>)> = on!(db.reader(), |c| {
        sqlx::query_as(
            "SELECT id, kind, message, created_at, read_at FROM notifications
             WHERE user_id = $1 AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before)
        .bind(limit as i64 + 1)
        .fetch_all(c)
        .await
    })?;
    let mut items: Vec<Notification> = rows
        .into_iter()
        .map(|(id, kind, message, created_at, read_at)| Notification {
            id,
            kind,
            message,
            created_at,
            read_at,
        })
        .collect();
    let next = next_before(&mut items, limit, |n| n.id);
    Ok((items, next))
}

/// Cuts a page fetched with one row too many down to `limit`; the id to
/// continue before, when there was more.
pub fn next_before<T>(items: &mut Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> Option<i64> {
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(id)
    } else {
        None
    }
}

pub async fn unread_count(db: &Db, user_id: i64) -> Result<i64> {
    Ok(on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL"
    )
    .bind(user_id)
    .fetch_one(c)
    .await)?)
}

/// Marks one of the user's own notifications read; anyone else's is "not found".
pub async fn mark_read(db: &Db, user_id: i64, id: i64, now: Ts) -> Result<()> {
    let found: Option<i64> = on!(db.writer(), |c| sqlx::query_scalar(
        "UPDATE notifications SET read_at = COALESCE(read_at, $3)
         WHERE id = $1 AND user_id = $2 RETURNING id"
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    found.map(|_| ()).ok_or_else(|| {
        Error::not_found(
            "notification_not_found",
            format!("You have no notification with id {id}."),
        )
    })
}

/// Marks all the user's notifications read; returns how many were unread.
pub async fn mark_all_read(db: &Db, user_id: i64, now: Ts) -> Result<u64> {
    Ok(on!(db.writer(), |c| sqlx::query(
        "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL"
    )
    .bind(user_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}
