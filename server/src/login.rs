//! Logging in: rate limits per address and per username, the password, the
//! lockout after repeated failures, and the two-step code. Every attempt,
//! good or bad, leaves an audit row.

use serde_json::json;

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::sessions::{self, Opened};
use crate::stations::{self, secret_hash, Station};
use crate::users::{self, User};
use crate::{on, passwords, ratelimit, totp};

/// What a person typed to log in.
pub struct Attempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
    /// The caller's full address, for the per-address limit (kept hashed).
    pub client_ip: Option<std::net::IpAddr>,
}

fn bad_credentials() -> Error {
    Error::unauthorized("bad_credentials", "The username or password is wrong.")
}

fn locked_for(until: Ts, now: Ts) -> Error {
    let minutes = ((until.micros() - now.micros()) / 60_000_000 + 1).max(1);
    Error::forbidden(
        "account_locked",
        format!(
            "Too many wrong tries: this account is blocked for {minutes} more minute{}. \
             Wait, or ask an admin to unlock it.",
            if minutes == 1 { "" } else { "s" }
        ),
    )
}

/// The name a failed login tried, fit for the audit log: printable, bounded.
fn attempted_name(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .to_lowercase()
}

async fn audit_failure(
    tx: &mut Tx,
    actor: &Actor,
    user: Option<&User>,
    name: &str,
    why: &str,
    now: Ts,
) -> Result<()> {
    let actor = match user {
        Some(u) => actor.as_user(u.id, &u.username),
        None => actor.clone(),
    };
    audit::record(
        tx,
        &actor,
        now,
        Entry {
            action: "login_failed",
            entity: "user",
            code: Some(&attempted_name(name)),
            before: None,
            after: Some(json!({"why": why})),
        },
    )
    .await
}

/// Counts a failure against `user`; at the limit, blocks their logins for the
/// lockout time. Answers the refusal to give.
async fn count_failure(
    tx: &mut Tx,
    settings: &Settings,
    actor: &Actor,
    user: &User,
    refusal: Error,
    now: Ts,
) -> Result<Error> {
    tx.access_changed();
    let failures: i32 = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins"
    )
    .bind(user.id)
    .fetch_one(c)
    .await
    })?;
    if i64::from(failures) < i64::from(settings.lockout_after) {
        return Ok(refusal);
    }
    let until = Ts::new(now.time() + settings.lockout);
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET failed_logins = 0, login_locked_until = $2 WHERE id = $1"
    )
    .bind(user.id)
    .bind(until)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        &actor.as_user(user.id, &user.username),
        now,
        Entry {
            action: "lockout",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: Some(json!({"failures": failures, "until": until.time().unix_timestamp()})),
        },
    )
    .await?;
    Ok(locked_for(until, now))
}

/// Checks an attempt and opens a session (bound to `station` when given).
pub async fn login(
    db: &Db,
    settings: &Settings,
    actor: &Actor,
    attempt: &Attempt<'_>,
    station: Option<&Station>,
    now: Ts,
) -> Result<(User, Opened)> {
    if attempt.username.len() > 64 || attempt.password.len() > passwords::MAX_LEN * 4 {
        return Err(bad_credentials());
    }
    if let Some(ip) = attempt.client_ip {
        let key = format!("login-ip:{}", secret_hash(&ip.to_string()));
        ratelimit::hit(db, &key, settings.login_attempts_per_ip, now).await?;
    }
    let name_key = format!("login-user:{}", attempted_name(attempt.username));
    ratelimit::hit(db, &name_key, settings.login_attempts_per_user, now).await?;

    let user = users::find_by_username(db.reader(), attempt.username).await?;
    if let Some(u) = &user {
        if let Some(until) = u.login_locked_until.filter(|until| now < *until) {
            let mut tx = db.begin().await?;
            audit_failure(&mut tx, actor, Some(u), attempt.username, "locked", now).await?;
            tx.commit().await?;
            return Err(locked_for(until, now));
        }
    }
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = passwords::verify_off_runtime(attempt.password, stored).await?;

    let mut tx = db.begin().await?;
    let user = match user {
        Some(u) if matches => u,
        Some(u) => {
            audit_failure(&mut tx, actor, Some(&u), attempt.username, "password", now).await?;
            let refusal =
                count_failure(&mut tx, settings, actor, &u, bad_credentials(), now).await?;
            tx.commit().await?;
            return Err(refusal);
        }
        None => {
            audit_failure(&mut tx, actor, None, attempt.username, "unknown_user", now).await?;
            tx.commit().await?;
            return Err(bad_credentials());
        }
    };
    if let Err(refusal) = user.check_usable_at(now) {
        audit_failure(
            &mut tx,
            actor,
            Some(&user),
            attempt.username,
            "inactive",
            now,
        )
        .await?;
        tx.commit().await?;
        return Err(refusal);
    }
    let actor = Actor {
        station_id: station.map(|s| s.id),
        ..actor.as_user(user.id, &user.username)
    };
    if user.totp_enabled {
        let second = match (attempt.totp, attempt.recovery_code) {
            (Some(code), _) if !code.trim().is_empty() => {
                totp::check(&mut tx, &user, code, now).await
            }
            (_, Some(code)) if !code.trim().is_empty() => {
                totp::use_recovery_code(&mut tx, &actor, &user, code, now).await
            }
            _ => {
                return Err(Error::unauthorized(
                    "totp_required",
                    "Enter the 6-digit code from your authenticator app.",
                ))
            }
        };
        if let Err(refusal) = second {
            audit_failure(
                &mut tx,
                &actor,
                Some(&user),
                attempt.username,
                "two_step",
                now,
            )
            .await?;
            let refusal = count_failure(&mut tx, settings, &actor, &user, refusal, now).await?;
            tx.commit().await?;
            return Err(refusal);
        }
    }
    if user.failed_logins > 0 {
        tx.access_changed();
        on!(tx.conn(), |c| sqlx::query(
            "UPDATE users SET failed_logins = 0 WHERE id = $1"
        )
        .bind(user.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let opened = sessions::open(&mut tx, settings, &user, station, now).await?;
    if let Some(station) = station {
        stations::record_worker(&mut tx, station.id, user.id, now).await?;
    }
    audit::record(
        &mut tx,
        &actor,
        now,
        Entry {
            action: "login",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: Some(json!({"station": station.map(|s| s.name.clone())})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((user, opened))
}
