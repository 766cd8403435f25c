//! Registered stations: each has a secret key that authenticates its sync.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use traitortrack_protocol::StationCreated;

use crate::audit::{self, Actor, Entry};
use crate::db::{self, Db, Ts, Tx, Watched};
use crate::error::{Error, Result};
use crate::on;

#[derive(Debug, Clone)]
pub struct Station {
    pub id: i64,
    pub name: String,
    /// What the station said of itself with this request.
    pub report: Report,
}

/// What a station reports of itself with its requests (headers
/// `X-Station-Version` and `X-Station-Queue`); older stations send neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub version: Option<String>,
    /// Events waiting in the station's outbox besides the ones the request carries.
    pub queue: Option<i64>,
}

/// An unsent queue this deep is large: the console highlights it, and the
/// report of it crossing this line is written at once.
pub const LARGE_QUEUE: i64 = 100;
/// The deepest queue a station may report.
const MAX_QUEUE: i64 = 1_000_000_000;

impl Report {
    /// Reads the two header values (absent is fine; a malformed one is refused).
    pub fn parse(version: Option<&[u8]>, queue: Option<&[u8]>) -> Result<Report> {
        let bad = |what: &str| {
            Error::bad_input(
                "bad_station_report",
                format!("The station sent a bad {what}. Update the station app."),
            )
        };
        let version = match version {
            None => None,
            Some(raw) => {
                let v = std::str::from_utf8(raw)
                    .map_err(|_| bad("app version"))?
                    .trim();
                if v.is_empty()
                    || v.len() > traitortrack_protocol::MAX_STATION_VERSION_LEN
                    || !v.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                {
                    return Err(bad("app version"));
                }
                Some(v.to_string())
            }
        };
        let queue = match queue {
            None => None,
            Some(raw) => {
                let n: i64 = std::str::from_utf8(raw)
                    .ok()
                    .and_then(|q| q.trim().parse().ok())
                    .filter(|n| (0..=MAX_QUEUE).contains(n))
                    .ok_or_else(|| bad("count of unsent scans"))?;
                Some(n)
            }
        };
        Ok(Report { version, queue })
    }
}

/// A random secret, URL-safe, 256 bits.
pub fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of a secret: its SHA-256 in lower-case hex.
pub fn secret_hash(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
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

fn refused() -> Error {
    Error::unauthorized(
        "bad_station_key",
        "This station key is not valid. Ask an admin to register the station again.",
    )
}

/// The stored hash of a key that could be one.
fn key_hash(key: &str) -> Result<String> {
    if key.is_empty() || key.len() > 256 {
        return Err(refused());
    }
    Ok(secret_hash(key))
}

/// The station a key belongs to; refuses unknown and revoked keys alike.
/// Reads the database each time: request handlers go through [`Keys::station`].
pub async fn by_key(db: &Db, key: &str) -> Result<Station> {
    read_key(db, &key_hash(key)?).await
}

async fn read_key(db: &Db, key_hash: &str) -> Result<Station> {
    let row: Option<(i64, String, Option<Ts>)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT id, name, revoked_at FROM stations WHERE key_hash = $1"
    )
    .bind(key_hash)
    .fetch_optional(c)
    .await)?;
    match row {
        Some((id, name, None)) => Ok(Station {
            id,
            name,
            report: Report::default(),
        }),
        _ => Err(refused()),
    }
}

/// Station keys checked lately, so a station's request is let in without
/// asking the database. Like the session cache ([`crate::sessions::Cache`]):
/// a copy is used only while this process has committed no change to users,
/// sessions or stations since it was read (a revoked station or a new key
/// is refused at the very next request) and for at most [`db::ACCESS_TTL`]
/// (the bound for another server process's change). Refused keys are never
/// kept: they are read again each time, as without the cache.
#[derive(Default)]
pub struct Keys {
    copies: RwLock<HashMap<String, CachedKey>>,
}

/// The most keys a [`Keys`] cache keeps.
const KEYS_MAX: usize = 10_000;

struct CachedKey {
    id: i64,
    name: String,
    generation: u64,
    read_at: Instant,
}

impl CachedKey {
    fn current(&self, generation: u64) -> bool {
        self.generation == generation && self.read_at.elapsed() < db::ACCESS_TTL
    }
}

impl Keys {
    /// [`by_key`], from the cache when it holds a current copy.
    pub async fn station(&self, db: &Db, key: &str) -> Result<Station> {
        let key_hash = key_hash(key)?;
        // Read before the database: a change committed meanwhile makes the
        // copy stale at once.
        let generation = db::generation(Watched::Access);
        let hit = self
            .copies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key_hash)
            .filter(|c| c.current(generation))
            .map(|c| Station {
                id: c.id,
                name: c.name.clone(),
                report: Report::default(),
            });
        if let Some(station) = hit {
            return Ok(station);
        }
        let station = read_key(db, &key_hash).await?;
        let mut copies = self.copies.write().unwrap_or_else(PoisonError::into_inner);
        if copies.len() >= KEYS_MAX && !copies.contains_key(&key_hash) {
            let now = db::generation(Watched::Access);
            copies.retain(|_, c| c.current(now));
            if copies.len() >= KEYS_MAX {
                copies.clear();
            }
        }
        copies.insert(
            key_hash,
            CachedKey {
                id: station.id,
                name: station.name.clone(),
                generation,
                read_at: Instant::now(),
            },
        );
        Ok(station)
    }
}

/// Marks the station seen and keeps what it reported of itself, in one
/// statement that writes at most once a minute (keeps writes off the hot
/// path), except at once when the reported version changes, the first
/// queue depth comes, the queue empties, or it grows large. A report the
/// station did not send leaves the stored one as it was.
pub async fn touch(db: &Db, station: &Station, now: Ts) -> Result<()> {
    let stale = Ts::from_micros(now.micros() - 60_000_000);
    let Report { version, queue } = &station.report;
    on!(db.writer(), |c| sqlx::query(
        "UPDATE stations SET last_seen_at = $2,
             app_version = COALESCE($4, app_version),
             queue_before = CASE WHEN $5 IS NULL THEN queue_before ELSE queue_depth END,
             queue_depth = COALESCE($5, queue_depth)
         WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $3
             OR ($4 IS NOT NULL AND app_version IS DISTINCT FROM $4)
             OR ($5 IS NOT NULL AND (queue_depth IS NULL
                 OR ($5 = 0 AND queue_depth <> 0)
                 OR ($5 >= $6 AND queue_depth < $6))))"
    )
    .bind(station.id)
    .bind(now)
    .bind(stale)
    .bind(version.as_deref())
    .bind(*queue)
    .bind(LARGE_QUEUE)
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

/// Which of these (station, worker) pairs have logged in there.
pub async fn signed_in(
    tx: &mut Tx,
    pairs: &[(i64, i64)],
) -> Result<std::collections::HashSet<(i64, i64)>> {
    use crate::rows::{Col, Form, Rows, Val};
    let mut keys = Rows::new(&[Col::Int, Col::Int], pairs.len());
    for (station, user) in pairs {
        keys.push([Val::Int(*station), Val::Int(*user)]);
    }
    let found: Vec<(i64, i64)> = crate::rows::fetch(tx.conn(), keys, Form::In, |pairs| {
        format!(
            "SELECT station_id, user_id FROM station_workers WHERE (station_id, user_id) {pairs}"
        )
    })
    .await?;
    Ok(found.into_iter().collect())
}

/// A registered station as an admin sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registered {
    pub id: i64,
    pub name: String,
    pub created_at: Ts,
    pub last_seen_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
    /// The app version the station last reported.
    pub app_version: Option<String>,
    /// The unsent events the station last reported.
    pub queue_depth: Option<i64>,
    /// The depth reported before that one.
    pub queue_before: Option<i64>,
}

const REGISTERED: &str = "SELECT id, name, created_at, last_seen_at, revoked_at, \
                          app_version, queue_depth, queue_before FROM stations";

/// Every registered station, by name.
pub async fn list(db: &Db) -> Result<Vec<Registered>> {
    let sql = format!("{REGISTERED} ORDER BY name, id");
    Ok(on!(db.reader(), |c| {
        sqlx::query_as(&sql).fetch_all(c).await
    })?)
}

/// One registered station.
pub async fn get(db: &Db, id: i64) -> Result<Registered> {
    let sql = format!("{REGISTERED} WHERE id = $1");
    let row: Option<Registered> = on!(db.reader(), |c| {
        sqlx::query_as(&sql).bind(id).fetch_optional(c).await
    })?;
    row.ok_or_else(|| not_found(id))
}

fn not_found(id: i64) -> Error {
    Error::not_found(
        "station_not_found",
        format!("There is no station with id {id}."),
    )
}

async fn find(tx: &mut Tx, id: i64) -> Result<(String, Option<Ts>)> {
    let row: Option<(String, Option<Ts>)> = on!(tx.conn(), |c| sqlx::query_as(
        "SELECT name, revoked_at FROM stations WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    row.ok_or_else(|| not_found(id))
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
    tx.access_changed();
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
    tx.access_changed();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(version: Option<&str>, queue: Option<&str>) -> Result<Report> {
        Report::parse(version.map(str::as_bytes), queue.map(str::as_bytes))
    }

    #[test]
    fn a_report_is_read_from_its_headers() {
        assert_eq!(parse(None, None).ok(), Some(Report::default()));
        assert_eq!(
            parse(Some(" 0.1.0 "), Some("42")).ok(),
            Some(Report {
                version: Some("0.1.0".into()),
                queue: Some(42)
            })
        );
        assert_eq!(
            parse(Some("2.0.0-beta.1 (win)"), Some("0")).ok(),
            Some(Report {
                version: Some("2.0.0-beta.1 (win)".into()),
                queue: Some(0)
            })
        );
    }

    #[test]
    fn a_bad_report_is_refused_in_plain_words() {
        let too_long = "9".repeat(traitortrack_protocol::MAX_STATION_VERSION_LEN + 1);
        for (version, queue) in [
            (Some(""), None),
            (Some("1.0\u{7}"), None),
            (Some("1.0\u{200b}"), None),
            (Some(too_long.as_str()), None),
            (None, Some("")),
            (None, Some("-1")),
            (None, Some("lots")),
            (None, Some("1.5")),
            (None, Some("99999999999999999999")),
            (None, Some("1000000001")),
        ] {
            match parse(version, queue) {
                Err(Error::Refused { code, message, .. }) => {
                    assert_eq!(code, "bad_station_report");
                    assert!(message.contains("Update the station app"), "{message}");
                }
                other => panic!("{version:?} {queue:?}: {other:?}"),
            }
        }
        assert!(
            Report::parse(Some(&[0xff, 0xfe]), None).is_err(),
            "not UTF-8"
        );
    }
}
