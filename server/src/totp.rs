//! Two-step login: TOTP codes (RFC 6238: SHA-1, 6 digits, 30 s, one step of
//! clock drift either way), each accepted once, and ten one-time recovery codes.

use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use serde_json::json;
use totp_rs::{Builder, Secret, Totp};

use crate::audit::{self, Actor, Entry};
use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::on;
use crate::sessions::{Pending, Session};
use crate::stations::secret_hash;
use crate::users::User;

const ISSUER: &str = "TraitorTrack";
/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;

/// What an authenticator app needs to start making codes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolment {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    /// The `otpauth://` address the QR code holds.
    pub otpauth_uri: String,
    /// The QR code as an SVG picture.
    pub qr_svg: String,
}

fn totp(secret_base32: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|e| Error::Internal(format!("a stored TOTP secret is unreadable: {e}")))?;
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Internal(format!("TOTP setup failed: {e}")))
}

fn unix_secs(now: Ts) -> u64 {
    u64::try_from(now.time().unix_timestamp()).unwrap_or(0)
}

/// The code an authenticator shows at `now` for a base32 secret (for tests and tools).
pub fn code_at(secret_base32: &str, now: Ts) -> Result<String> {
    Ok(totp(secret_base32, "x")?
        .generate(unix_secs(now))
        .to_string())
}

fn bad_code() -> Error {
    Error::unauthorized(
        "bad_totp",
        "That code is not right, or was used already. Enter the newest 6-digit code from your app.",
    )
}

/// What an authenticator app needs for this secret: the address and its QR code.
fn enrolment(secret: String, username: &str) -> Result<Enrolment> {
    let otp = totp(&secret, username)?;
    let otpauth_uri = otp
        .to_url()
        .map_err(|e| Error::Internal(format!("otpauth address failed: {e}")))?;
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| Error::Internal(format!("QR code failed: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .build();
    Ok(Enrolment {
        secret,
        otpauth_uri,
        qr_svg,
    })
}

/// Starts enrolment: a new secret, kept aside until a code from it is confirmed.
pub async fn begin(tx: &mut Tx, user: &User) -> Result<Enrolment> {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    let secret = Secret::from(bytes.to_vec()).to_base32();
    let enrolment = enrolment(secret, &user.username)?;
    let secret = &enrolment.secret;
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET totp_pending_secret = $2 WHERE id = $1"
    )
    .bind(user.id)
    .bind(secret)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(enrolment)
}

/// The enrolment a user started and has not confirmed yet, if any.
pub async fn pending(tx: &mut Tx, user: &User) -> Result<Option<Enrolment>> {
    let secret: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT totp_pending_secret FROM users WHERE id = $1"
    )
    .bind(user.id)
    .fetch_one(c)
    .await)?;
    secret.map(|s| enrolment(s, &user.username)).transpose()
}

/// Refuses enrolment while a forced password change comes first, or when two-step
/// login is already on.
fn check_may_enrol(session: &Session) -> Result<()> {
    if session.pending == Some(Pending::PasswordChange) {
        session.check_ready()?;
    }
    if session.user.totp_enabled {
        return Err(Error::conflict(
            "two_step_on",
            "Two-step login is already on for this account.",
        ));
    }
    Ok(())
}

/// Starts enrolment for the session's user. With `resume`, an enrolment
/// started before and not confirmed is shown again rather than replaced (a
/// page reloaded keeps its QR code).
pub async fn start_enrolment(db: &Db, session: &Session, resume: bool) -> Result<Enrolment> {
    check_may_enrol(session)?;
    let mut tx = db.begin().await?;
    let started = match pending(&mut tx, &session.user).await? {
        Some(enrolment) if resume => enrolment,
        _ => begin(&mut tx, &session.user).await?,
    };
    tx.commit().await?;
    Ok(started)
}

/// Finishes the session's user's enrolment with a code from the app; answers
/// the recovery codes (shown once).
pub async fn finish_enrolment(
    db: &Db,
    actor: &Actor,
    session: &Session,
    code: &str,
    now: Ts,
) -> Result<Vec<String>> {
    if session.pending == Some(Pending::PasswordChange) {
        session.check_ready()?;
    }
    let mut tx = db.begin().await?;
    let codes = confirm(&mut tx, actor, &session.user, code, now).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Finishes enrolment with a code from the new secret; answers the recovery
/// codes (shown once: only their hashes are kept).
pub async fn confirm(
    tx: &mut Tx,
    actor: &Actor,
    user: &User,
    code: &str,
    now: Ts,
) -> Result<Vec<String>> {
    let pending: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT totp_pending_secret FROM users WHERE id = $1"
    )
    .bind(user.id)
    .fetch_one(c)
    .await)?;
    let Some(secret) = pending else {
        return Err(Error::conflict(
            "no_enrolment",
            "Start setting up two-step login first.",
        ));
    };
    let Some(step) = totp(&secret, &user.username)?.check(code.trim(), unix_secs(now)) else {
        return Err(bad_code());
    };
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
             totp_enabled_at = $2, totp_last_step = $3, updated_at = $2
         WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .bind(i64::try_from(step).unwrap_or(i64::MAX))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let codes = replace_recovery_codes(tx, user, now).await?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "totp_enrol",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: Some(json!({"recovery_codes": codes.len()})),
        },
    )
    .await?;
    Ok(codes)
}

/// Turns two-step login off for `user` (their own choice or an admin's reset).
pub async fn disable(tx: &mut Tx, actor: &Actor, user: &User, now: Ts) -> Result<()> {
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL,
             updated_at = $2
         WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    on!(tx.conn(), |c| sqlx::query(
        "DELETE FROM recovery_codes WHERE user_id = $1"
    )
    .bind(user.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "totp_disable",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: None,
        },
    )
    .await
}

/// Checks a login code and spends its time step: the same code, or an older
/// one, is refused afterwards, in every server process.
pub async fn check(tx: &mut Tx, user: &User, code: &str, now: Ts) -> Result<()> {
    let secret: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT totp_secret FROM users WHERE id = $1"
    )
    .bind(user.id)
    .fetch_one(c)
    .await)?;
    let secret = secret.ok_or_else(bad_code)?;
    let step = totp(&secret, &user.username)?
        .check(code.trim(), unix_secs(now))
        .ok_or_else(bad_code)?;
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    tx.access_changed();
    let spent = on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET totp_last_step = $2
         WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"
    )
    .bind(user.id)
    .bind(step)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if spent == 1 {
        Ok(())
    } else {
        Err(bad_code())
    }
}

fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = OsRng;
    let mut pick = || char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]);
    let first: String = (0..5).map(|_| pick()).collect();
    let second: String = (0..5).map(|_| pick()).collect();
    format!("{first}-{second}")
}

async fn replace_recovery_codes(tx: &mut Tx, user: &User, now: Ts) -> Result<Vec<String>> {
    on!(tx.conn(), |c| sqlx::query(
        "DELETE FROM recovery_codes WHERE user_id = $1"
    )
    .bind(user.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    for code in &codes {
        on!(tx.conn(), |c| sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)"
        )
        .bind(user.id)
        .bind(secret_hash(&normalize_recovery(code)))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(codes)
}

/// Spends a recovery code in place of a TOTP code; each works once.
pub async fn use_recovery_code(
    tx: &mut Tx,
    actor: &Actor,
    user: &User,
    code: &str,
    now: Ts,
) -> Result<()> {
    let normalized = normalize_recovery(code);
    if normalized.is_empty() || normalized.len() > 32 {
        return Err(bad_code());
    }
    let spent = on!(tx.conn(), |c| sqlx::query(
        "UPDATE recovery_codes SET used_at = $3
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL"
    )
    .bind(user.id)
    .bind(secret_hash(&normalized))
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if spent == 0 {
        return Err(bad_code());
    }
    let left: i64 = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL"
    )
    .bind(user.id)
    .fetch_one(c)
    .await)?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "recovery_code_used",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: Some(json!({"left": left})),
        },
    )
    .await
}
