//! Sessions: tokens whose hashes live in the database, so any server process
//! can check them. A console or API session ends after `session_idle` without
//! use and after `session_ttl` in all; a station session after
//! `station_session_ttl`. A token travels as a bearer header or, for the
//! console, in an HttpOnly cookie whose state-changing requests also carry a
//! CSRF token derived from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{self, Db, Ts, Tx, Watched};
use crate::error::{Error, Result};
use crate::on;
use crate::stations::{self, secret_hash, Station};
use crate::users::{self, User};

/// The console's session cookie.
pub const COOKIE: &str = "tt_session";
/// The header a cookie session's state-changing requests carry their CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Something the user must do before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// An admin reset the password: choose a new one.
    PasswordChange,
    /// Admins must turn on two-step login first.
    TotpEnrolment,
}

/// The user behind a valid token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token_hash: String,
    pub station_id: Option<i64>,
    pub pending: Option<Pending>,
}

impl Session {
    /// Refuses while the user still has a [`Pending`] step to take.
    pub fn check_ready(&self) -> Result<()> {
        match self.pending {
            None => Ok(()),
            Some(Pending::PasswordChange) => Err(Error::forbidden(
                "password_change_required",
                "Choose a new password first (an admin reset yours).",
            )),
            Some(Pending::TotpEnrolment) => Err(Error::forbidden(
                "two_step_required",
                "Admins must turn on two-step login first: set up an authenticator app.",
            )),
        }
    }
}

fn pending_for(user: &User, settings: &Settings) -> Option<Pending> {
    if user.must_change_password {
        Some(Pending::PasswordChange)
    } else if user.role == traitortrack_protocol::Role::Admin
        && settings.require_admin_totp
        && !user.totp_enabled
    {
        Some(Pending::TotpEnrolment)
    } else {
        None
    }
}

/// The CSRF token of a cookie session: a hash of its secret token, so only a
/// page the server rendered for that session (or its JSON login answer) knows it.
pub fn csrf_token(token: &str) -> String {
    let digest = Sha256::digest(format!("traitortrack-csrf\0{token}").as_bytes());
    digest.iter().take(24).map(|b| format!("{b:02x}")).collect()
}

/// A freshly opened session: the secret token (shown once) and its end.
pub struct Opened {
    pub token: String,
    pub expires_at: Ts,
}

/// Opens a session for `user` (bound to `station` when given), in `tx`.
pub async fn open(
    tx: &mut Tx,
    settings: &Settings,
    user: &User,
    station: Option<&Station>,
    now: Ts,
) -> Result<Opened> {
    let token = stations::random_secret();
    let ttl = if station.is_some() {
        settings.station_session_ttl
    } else {
        settings.session_ttl
    };
    let expires_at = Ts::new(now.time() + ttl);
    on!(tx.conn(), |c| {
        sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, station_id, created_at, expires_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $4)"
    )
    .bind(secret_hash(&token))
    .bind(user.id)
    .bind(station.map(|s| s.id))
    .bind(now)
    .bind(expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(Opened { token, expires_at })
}

fn ended() -> Error {
    Error::unauthorized(
        "not_logged_in",
        "You are not logged in, or your login has ended. Log in again.",
    )
}

/// The session a token opens, if it is valid now. Marks it used (at most
/// once a minute, to keep writes off the hot path). Reads the database each
/// time: request handlers go through [`Cache::from_token`] instead.
pub async fn from_token(db: &Db, settings: &Settings, token: &str, now: Ts) -> Result<Session> {
    let token_hash = hash_of(token)?;
    let found = read(db, settings, &token_hash, now).await?;
    let session = found.session(settings, token_hash);
    touch(db, &session.token_hash, &found.last_seen, now).await?;
    Ok(session)
}

/// Like [`from_token`], without counting this as use: for a page that asks
/// the server by itself every few seconds, which must not keep an unattended
/// login from ending after `session_idle`.
pub async fn peek(db: &Db, settings: &Settings, token: &str, now: Ts) -> Result<Session> {
    let token_hash = hash_of(token)?;
    let found = read(db, settings, &token_hash, now).await?;
    Ok(found.session(settings, token_hash))
}

/// The stored hash of a token that could be one.
fn hash_of(token: &str) -> Result<String> {
    if token.is_empty() || token.len() > 256 {
        return Err(ended());
    }
    Ok(secret_hash(token))
}

/// A valid session as read from the database, with its user.
struct Found {
    user: User,
    station_id: Option<i64>,
    expires_at: Ts,
    /// When it was last marked used, in microseconds: moved on by [`touch`].
    last_seen: AtomicI64,
}

impl Found {
    fn session(&self, settings: &Settings, token_hash: String) -> Session {
        Session {
            pending: pending_for(&self.user, settings),
            user: self.user.clone(),
            token_hash,
            station_id: self.station_id,
        }
    }

    /// True when the session is still good at `now` by what this copy says:
    /// not ended, not idle too long, and its user neither switched off nor locked.
    fn holds(&self, settings: &Settings, now: Ts) -> bool {
        let last_seen = Ts::from_micros(self.last_seen.load(Ordering::Acquire));
        self.expires_at > now
            && (self.station_id.is_some() || last_seen.time() + settings.session_idle > now.time())
            && self.user.check_usable_at(now).is_ok()
    }
}

/// Reads the session of a token hash and checks it: refused when it ended,
/// sat idle too long, or its user may not act now.
async fn read(db: &Db, settings: &Settings, token_hash: &str, now: Ts) -> Result<Found> {
    let row: Option<(i64, Option<i64>, Ts, Ts)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT user_id, station_id, last_seen_at, expires_at FROM sessions
         WHERE token_hash = $1 AND expires_at > $2"
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let (user_id, station_id, last_seen, expires_at) = row.ok_or_else(ended)?;
    if station_id.is_none() && last_seen.time() + settings.session_idle <= now.time() {
        return Err(Error::unauthorized(
            "session_idle",
            "You were logged out after a time without use. Log in again.",
        ));
    }
    let user = users::find_by_id(db.reader(), user_id)
        .await?
        .ok_or_else(ended)?;
    user.check_usable_at(now)?;
    Ok(Found {
        user,
        station_id,
        expires_at,
        last_seen: AtomicI64::new(last_seen.micros()),
    })
}

/// Marks a session used at `now`, unless it was less than a minute ago: one
/// write a minute at most, by one request of the many that may use it at once.
async fn touch(db: &Db, token_hash: &str, last_seen: &AtomicI64, now: Ts) -> Result<()> {
    let seen = last_seen.load(Ordering::Acquire);
    if Ts::from_micros(seen).time() + time::Duration::MINUTE > now.time()
        || last_seen
            .compare_exchange(seen, now.micros(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return Ok(());
    }
    on!(db.writer(), |c| sqlx::query(
        "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2"
    )
    .bind(token_hash)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sessions checked lately, so a request's token is checked without asking
/// the database. A copy is used only while nothing this process committed
/// has changed users, sessions or stations since it was read (see
/// [`Watched::Access`]: a logout, lock, switch-off, role, area, password or
/// two-step change here applies to the very next request) and for at most
/// [`db::ACCESS_TTL`], which bounds how long another server process's change
/// takes to apply here. Expiry, the idle timeout and the user's lock window
/// are judged at each request from the copy; whatever the copy refuses is
/// read again from the database, which has the last word (and the error).
/// "Last seen" is written as without the cache: at most once a minute.
#[derive(Default)]
pub struct Cache {
    copies: RwLock<HashMap<String, Arc<Cached>>>,
}

/// The most sessions a [`Cache`] keeps.
const CACHE_MAX: usize = 10_000;

struct Cached {
    found: Found,
    generation: u64,
    read_at: Instant,
}

impl Cached {
    fn current(&self, generation: u64) -> bool {
        self.generation == generation && self.read_at.elapsed() < db::ACCESS_TTL
    }
}

impl Cache {
    /// [`from_token`], from the cache when it holds a current copy.
    pub async fn from_token(
        &self,
        db: &Db,
        settings: &Settings,
        token: &str,
        now: Ts,
    ) -> Result<Session> {
        let (cached, session) = self.check(db, settings, token, now).await?;
        touch(db, &session.token_hash, &cached.found.last_seen, now).await?;
        Ok(session)
    }

    /// [`peek`], from the cache when it holds a current copy.
    pub async fn peek(
        &self,
        db: &Db,
        settings: &Settings,
        token: &str,
        now: Ts,
    ) -> Result<Session> {
        Ok(self.check(db, settings, token, now).await?.1)
    }

    async fn check(
        &self,
        db: &Db,
        settings: &Settings,
        token: &str,
        now: Ts,
    ) -> Result<(Arc<Cached>, Session)> {
        let token_hash = hash_of(token)?;
        // Read before the database: a change committed meanwhile makes the
        // copy stale at once.
        let generation = db::generation(Watched::Access);
        let hit = self
            .copies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&token_hash)
            .filter(|c| c.current(generation))
            .cloned();
        let cached = match hit.filter(|c| c.found.holds(settings, now)) {
            Some(cached) => cached,
            None => {
                let found = read(db, settings, &token_hash, now).await?;
                let cached = Arc::new(Cached {
                    found,
                    generation,
                    read_at: Instant::now(),
                });
                self.keep(token_hash.clone(), Arc::clone(&cached));
                cached
            }
        };
        let session = cached.found.session(settings, token_hash);
        Ok((cached, session))
    }

    fn keep(&self, token_hash: String, cached: Arc<Cached>) {
        let mut copies = self.copies.write().unwrap_or_else(PoisonError::into_inner);
        if copies.len() >= CACHE_MAX && !copies.contains_key(&token_hash) {
            let generation = db::generation(Watched::Access);
            copies.retain(|_, c| c.current(generation));
            if copies.len() >= CACHE_MAX {
                copies.clear();
            }
        }
        copies.insert(token_hash, cached);
    }
}

pub async fn logout(db: &Db, actor: &Actor, session: &Session, now: Ts) -> Result<()> {
    let mut tx = db.begin().await?;
    tx.access_changed();
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

/// Ends every session of `user` but `keep` (a token hash), with an audit row
/// naming `why` ("password_change", "role_change", "admin_request", …).
/// Returns how many sessions ended.
pub async fn revoke_all(
    tx: &mut Tx,
    actor: &Actor,
    user: &User,
    keep: Option<&str>,
    why: &str,
    now: Ts,
) -> Result<u64> {
    tx.access_changed();
    let ended = on!(tx.conn(), |c| sqlx::query(
        "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2"
    )
    .bind(user.id)
    .bind(keep.unwrap_or(""))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "sessions_revoked",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: Some(json!({"sessions": ended, "why": why})),
        },
    )
    .await?;
    Ok(ended)
}

/// Deletes sessions that ended (run now and then; expired ones are refused anyway).
pub async fn purge_expired(db: &Db, settings: &Settings, now: Ts) -> Result<u64> {
    let idle_before = Ts::new(now.time() - settings.session_idle);
    let purged = on!(db.writer(), |c| sqlx::query(
        "DELETE FROM sessions
         WHERE expires_at <= $1 OR (station_id IS NULL AND last_seen_at <= $2)"
    )
    .bind(now)
    .bind(idle_before)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if purged > 0 {
        db::changed(Watched::Access);
    }
    Ok(purged)
}
