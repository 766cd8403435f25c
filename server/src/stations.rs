//! Registered stations: each has a secret key that authenticates its sync.

use serde_json::json;
use sha2::{Digest, Sha256};
use traitortrack_protocol::StationCreated;

use crate::audit::{self, Actor, Entry};
use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::on;

#[derive(Debug, Clone)]
pub struct Station {
    pub id: i64,
    pub name: String,
}

/// A random secret, URL-safe, 256 bits.
pub fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of a secret.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn normalize_name(raw: &str) -> Result<String> {
    let name = raw.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::bad_input(
            "bad_station_name",
            "A station name is 1 to 64 characters.",
        ));
    }
    Ok(name)
}

/// Registers a station; its key is in the answer and nowhere else.
pub async fn create(tx: &mut Tx, actor: &Actor, name: &str, now: Ts) -> Result<StationCreated> {
    let name = normalize_name(name)?;
    let key = random_secret();
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO stations (name, key_hash, created_at) VALUES ($1, $2, $3) RETURNING id"
    )
    .bind(&name)
    .bind(secret_hash(&key))
    .bind(now)
    .fetch_one(c)
    .await);
    let id = match inserted {
        Ok(id) => id,
        Err(e) if crate::db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "station_exists",
                format!("A station named {name} is already registered."),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "station_register",
            entity: "station",
            code: Some(&name),
            before: None,
            after: Some(json!({"id": id})),
        },
    )
    .await?;
    Ok(StationCreated { id, name, key })
}

/// The station a key belongs to; refuses unknown and revoked keys alike.
pub async fn by_key(db: &Db, key: &str) -> Result<Station> {
    let refused = || {
        Error::unauthorized(
            "bad_station_key",
            "This station key is not valid. Ask an admin to register the station again.",
        )
    };
    if key.is_empty() || key.len() > 256 {
        return Err(refused());
    }
    let row: Option<(i64, String, Option<Ts>)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT id, name, revoked_at FROM stations WHERE key_hash = $1"
    )
    .bind(secret_hash(key))
    .fetch_optional(c)
    .await)?;
    match row {
        Some((id, name, None)) => Ok(Station { id, name }),
        _ => Err(refused()),
    }
}

/// Marks the station seen, at most once a minute (keeps writes off the hot path).
pub async fn touch(db: &Db, station_id: i64, now: Ts) -> Result<()> {
    let stale = Ts::from_micros(now.micros() - 60_000_000);
    on!(db.writer(), |c| sqlx::query(
        "UPDATE stations SET last_seen_at = $2
         WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $3)"
    )
    .bind(station_id)
    .bind(now)
    .bind(stale)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Remembers that a worker logged in at this station through the server.
pub async fn record_worker(tx: &mut Tx, station_id: i64, user_id: i64, now: Ts) -> Result<()> {
    on!(tx.conn(), |c| sqlx::query(
        "INSERT INTO station_workers (station_id, user_id, first_login_at, last_login_at)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (station_id, user_id) DO UPDATE SET last_login_at = excluded.last_login_at"
    )
    .bind(station_id)
    .bind(user_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// When the worker first logged in at this station, if ever.
pub async fn worker_since(tx: &mut Tx, station_id: i64, user_id: i64) -> Result<Option<Ts>> {
    Ok(on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT first_login_at FROM station_workers WHERE station_id = $1 AND user_id = $2"
    )
    .bind(station_id)
    .bind(user_id)
    .fetch_optional(c)
    .await)?)
}

/// A registered station as an admin sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registered {
    pub id: i64,
    pub name: String,
    pub created_at: Ts,
    pub last_seen_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

/// Every registered station, by name.
pub async fn list(db: &Db) -> Result<Vec<Registered>> {
    Ok(on!(db.reader(), |c| {
        sqlx::query_as(
            "SELECT id, name, created_at, last_seen_at, revoked_at FROM stations ORDER BY name, id",
        )
        .fetch_all(c)
        .await
    })?)
}

async fn find(tx: &mut Tx, id: i64) -> Result<(String, Option<Ts>)> {
    let row: Option<(String, Option<Ts>)> = on!(tx.conn(), |c| sqlx::query_as(
        "SELECT name, revoked_at FROM stations WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    row.ok_or_else(|| {
        Error::not_found(
            "station_not_found",
            format!("There is no station with id {id}."),
        )
    })
}

/// Revokes a station: its key stops working and the logins made at it end.
pub async fn revoke(tx: &mut Tx, actor: &Actor, id: i64, now: Ts) -> Result<()> {
    let (name, revoked_at) = find(tx, id).await?;
    if revoked_at.is_some() {
        return Err(Error::conflict(
            "station_revoked",
            format!("The station {name} is already revoked."),
        ));
    }
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE stations SET revoked_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let ended = on!(tx.conn(), |c| sqlx::query(
        "DELETE FROM sessions WHERE station_id = $1"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "station_revoke",
            entity: "station",
            code: Some(&name),
            before: None,
            after: Some(json!({"id": id, "sessions": ended})),
        },
    )
    .await
}

/// Gives a station a new key (the old one stops working) and lifts a
/// revocation; the key is in the answer and nowhere else.
pub async fn new_key(tx: &mut Tx, actor: &Actor, id: i64, now: Ts) -> Result<StationCreated> {
    let (name, revoked_at) = find(tx, id).await?;
    let key = random_secret();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE stations SET key_hash = $2, revoked_at = NULL WHERE id = $1"
    )
    .bind(id)
    .bind(secret_hash(&key))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "station_key",
            entity: "station",
            code: Some(&name),
            before: Some(json!({"revoked": revoked_at.is_some()})),
            after: Some(json!({"id": id})),
        },
    )
    .await?;
    Ok(StationCreated { id, name, key })
}
