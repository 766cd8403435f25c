//! Fixed-window rate limits kept in the database, so that every server
//! process counts against the same limit.

use crate::db::{Db, Ts};
use crate::error::{Error, Kind, Result};
use crate::on;

const WINDOW_SECS: i64 = 60;

/// Counts one attempt under `key`; refuses with 429 and the seconds until the
/// window ends once more than `per_minute` attempts fell in this minute.
pub async fn hit(db: &Db, key: &str, per_minute: u32, now: Ts) -> Result<()> {
    let secs = now.time().unix_timestamp();
    let start_secs = secs - secs.rem_euclid(WINDOW_SECS);
    let window_start = Ts::from_micros(start_secs * 1_000_000);
    let hits: i32 = on!(db.writer(), |c| sqlx::query_scalar(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
             hits = CASE WHEN rate_limits.window_start = excluded.window_start
                         THEN rate_limits.hits + 1 ELSE 1 END,
             window_start = excluded.window_start
         RETURNING hits"
    )
    .bind(key)
    .bind(window_start)
    .fetch_one(c)
    .await)?;
    if i64::from(hits) > i64::from(per_minute) {
        let wait = u32::try_from(start_secs + WINDOW_SECS - secs).unwrap_or(1);
        return Err(Error::refused(
            Kind::TooManyRequests(wait),
            "too_many_attempts",
            format!("Too many login attempts. Wait {wait} seconds and try again."),
        ));
    }
    Ok(())
}

/// Deletes windows that ended (run now and then).
pub async fn purge(db: &Db, now: Ts) -> Result<u64> {
    let before = Ts::from_micros(now.micros() - 2 * WINDOW_SECS * 1_000_000);
    Ok(on!(db.writer(), |c| sqlx::query(
        "DELETE FROM rate_limits WHERE window_start < $1"
    )
    .bind(before)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}
