//! Logins: bearer tokens whose hashes live in the database, so any server
//! process can check them.

use serde_json::json;
use traitortrack_protocol::LoginResponse;

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, Ts};
use crate::error::{Error, Result};
use crate::stations::{self, secret_hash, Station};
use crate::users::{self, User};
use crate::{on, passwords};

/// The user behind a valid bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token_hash: String,
    pub station_id: Option<i64>,
}

fn bad_credentials() -> Error {
    Error::unauthorized("bad_credentials", "The username or password is wrong.")
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

/// Checks a password and opens a session (bound to `station` when given).
pub async fn login(
    db: &Db,
    settings: &Settings,
    actor: &Actor,
    username: &str,
    password: &str,
    station: Option<&Station>,
    now: Ts,
) -> Result<LoginResponse> {
    if username.len() > 64 || password.len() > passwords::MAX_LEN * 4 {
        return Err(bad_credentials());
    }
    let user = users::find_by_username(db.reader(), username).await?;
    let stored = user.as_ref().map_or_else(
        || passwords::decoy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let attempt = password.to_string();
    let matches = tokio::task::spawn_blocking(move || passwords::verify(&attempt, &stored))
        .await
        .map_err(|e| Error::Internal(format!("password check stopped: {e}")))?;

    let mut tx = db.begin().await?;
    let user = match user {
        Some(u) if matches => u,
        other => {
            let actor = match &other {
                Some(u) => actor.as_user(u.id, &u.username),
                None => actor.clone(),
            };
            audit::record(
                &mut tx,
                &actor,
                now,
                Entry {
                    action: "login_failed",
                    entity: "user",
                    code: Some(&attempted_name(username)),
                    before: None,
                    after: None,
                },
            )
            .await?;
            tx.commit().await?;
            return Err(bad_credentials());
        }
    };
    user.check_usable_at(now)?;

    let token = stations::random_secret();
    let ttl = if station.is_some() {
        settings.station_session_ttl
    } else {
        settings.session_ttl
    };
    let expires = Ts::new(now.time() + ttl);
    on!(tx.conn(), |c| sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, station_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(secret_hash(&token))
    .bind(user.id)
    .bind(station.map(|s| s.id))
    .bind(now)
    .bind(expires)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if let Some(station) = station {
        stations::record_worker(&mut tx, station.id, user.id, now).await?;
    }
    let actor = Actor {
        station_id: station.map(|s| s.id),
        ..actor.as_user(user.id, &user.username)
    };
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
    Ok(LoginResponse {
        token,
        expires_at: expires.time(),
        user: user.info(),
    })
}

/// The session a bearer token opens, if it is valid now.
pub async fn from_token(db: &Db, token: &str, now: Ts) -> Result<Session> {
    let expired = || {
        Error::unauthorized(
            "not_logged_in",
            "You are not logged in, or your login has ended. Log in again.",
        )
    };
    if token.is_empty() || token.len() > 256 {
        return Err(expired());
    }
    let token_hash = secret_hash(token);
    let row: Option<(i64, Option<i64>)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT user_id, station_id FROM sessions WHERE token_hash = $1 AND expires_at > $2"
    )
    .bind(&token_hash)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let (user_id, station_id) = row.ok_or_else(expired)?;
    let user = users::find_by_id(db.reader(), user_id)
        .await?
        .ok_or_else(expired)?;
    user.check_usable_at(now)?;
    Ok(Session {
        user,
        token_hash,
        station_id,
    })
}

pub async fn logout(db: &Db, actor: &Actor, session: &Session, now: Ts) -> Result<()> {
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| sqlx::query(
        "DELETE FROM sessions WHERE token_hash = $1"
    )
    .bind(&session.token_hash)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        now,
        Entry {
            action: "logout",
            entity: "user",
            code: Some(&session.user.username),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
