//! User accounts: who may do what, and whether they may act at a given moment.

use serde_json::json;
use traitortrack_protocol::{Role, UserInfo};

use crate::audit::{self, Actor, Entry};
use crate::db::{Db, On, Ts, Tx};
use crate::error::{Error, Result};
use crate::{on, passwords};

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub dispatch_area: Option<String>,
    pub password_hash: String,
    pub deactivated_at: Option<Ts>,
    /// Locked by an admin from this time (until `locked_until`, or until unlocked).
    pub locked_at: Option<Ts>,
    pub locked_until: Option<Ts>,
    /// Logins are blocked until then after too many wrong passwords.
    pub login_locked_until: Option<Ts>,
    pub failed_logins: i32,
    pub must_change_password: bool,
    /// Two-step login is on (a TOTP secret was enrolled and confirmed).
    pub totp_enabled: bool,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    dispatch_area: Option<String>,
    password_hash: String,
    deactivated_at: Option<Ts>,
    locked_at: Option<Ts>,
    locked_until: Option<Ts>,
    login_locked_until: Option<Ts>,
    failed_logins: i32,
    must_change_password: bool,
    totp_enabled_at: Option<Ts>,
}

const COLUMNS: &str =
    "id, username, role, dispatch_area, password_hash, deactivated_at, locked_at, \
     locked_until, login_locked_until, failed_logins, must_change_password, totp_enabled_at";

fn from_row(r: UserRow) -> Result<User> {
    let role = Role::parse(&r.role).ok_or_else(|| {
        Error::Internal(format!(
            "user {} has an unknown role {:?}",
            r.username, r.role
        ))
    })?;
    Ok(User {
        id: r.id,
        username: r.username,
        role,
        dispatch_area: r.dispatch_area,
        password_hash: r.password_hash,
        deactivated_at: r.deactivated_at,
        locked_at: r.locked_at,
        locked_until: r.locked_until,
        login_locked_until: r.login_locked_until,
        failed_logins: r.failed_logins,
        must_change_password: r.must_change_password,
        totp_enabled: r.totp_enabled_at.is_some(),
    })
}

impl User {
    pub fn info(&self) -> UserInfo {
        UserInfo {
            username: self.username.clone(),
            role: self.role,
            dispatch_area: self.dispatch_area.clone(),
        }
    }

    /// Refuses when the account was deactivated or locked at `at`.
    pub fn check_usable_at(&self, at: Ts) -> Result<()> {
        if self.deactivated_at.is_some_and(|d| d <= at) {
            return Err(Error::forbidden(
                "worker_inactive",
                format!("The account {} is switched off.", self.username),
            ));
        }
        if let Some(from) = self.locked_at {
            if from <= at && self.locked_until.is_none_or(|until| at < until) {
                return Err(Error::forbidden(
                    "worker_locked",
                    format!(
                        "The account {} is locked. Ask an admin to unlock it.",
                        self.username
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::forbidden(
                "not_allowed",
                format!("A {} cannot {what}.", self.role.as_str()),
            ))
        }
    }

    /// For dispatchers, refuses work on a bag of another area.
    pub fn check_area(&self, bag_code: &str, bag_area: Option<&str>) -> Result<()> {
        if self.role != Role::Dispatcher {
            return Ok(());
        }
        match (bag_area, self.dispatch_area.as_deref()) {
            (Some(bag), Some(mine)) if bag != mine => Err(Error::forbidden(
                "wrong_area",
                format!("{bag_code} belongs to area {bag}, not to your area {mine}."),
            )),
            _ => Ok(()),
        }
    }
}

pub async fn find_by_username<'c, P, S>(on: On<P, S>, username: &str) -> Result<Option<User>>
where
    P: sqlx::PgExecutor<'c>,
    S: sqlx::SqliteExecutor<'c>,
{
    // A name no account can have is not looked up (and NUL never reaches PostgreSQL).
    let Ok(name) = normalize_username(username) else {
        return Ok(None);
    };
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
    let row: Option<UserRow> = on!(on, |c| sqlx::query_as(&sql)
        .bind(&name)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).transpose()
}

pub async fn find_by_id<'c, P, S>(on: On<P, S>, id: i64) -> Result<Option<User>>
where
    P: sqlx::PgExecutor<'c>,
    S: sqlx::SqliteExecutor<'c>,
{
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = on!(on, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).transpose()
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM users"
    )
    .fetch_one(c)
    .await)?)
}

/// Checks and normalises a username: 2 to 32 of `a-z 0-9 . _ -`, lower-cased.
pub fn normalize_username(raw: &str) -> Result<String> {
    let name = raw.trim().to_lowercase();
    let ok = (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(Error::bad_input(
            "bad_username",
            "A username is 2 to 32 letters, digits, dots, dashes or underscores.",
        ))
    }
}

/// Checks and normalises a dispatch area name.
pub fn normalize_area(raw: &str) -> Result<String> {
    let area = raw.trim().to_string();
    if area.is_empty() || area.chars().count() > 64 || area.chars().any(char::is_control) {
        return Err(Error::bad_input(
            "bad_area",
            "A dispatch area name is 1 to 64 characters.",
        ));
    }
    Ok(area)
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub role: Role,
    pub dispatch_area: Option<&'a str>,
}

/// Creates an account. The caller hashes nothing: this runs argon2 off the runtime.
pub async fn create(tx: &mut Tx, actor: &Actor, new: NewUser<'_>, now: Ts) -> Result<User> {
    let username = normalize_username(new.username)?;
    passwords::check_new(new.password, &username)?;
    let area = new.dispatch_area.map(normalize_area).transpose()?;
    if new.role == Role::Dispatcher && area.is_none() {
        return Err(Error::bad_input(
            "area_required",
            "A dispatcher needs a dispatch area.",
        ));
    }
    let password = new.password.to_string();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing stopped: {e}")))??;
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, dispatch_area, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id"
    )
    .bind(&username)
    .bind(&hash)
    .bind(new.role.as_str())
    .bind(area.as_deref())
    .bind(now)
    .fetch_one(c)
    .await
    });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if crate::db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "username_taken",
                format!("The username {username} is already taken."),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "user_create",
            entity: "user",
            code: Some(&username),
            before: None,
            after: Some(json!({"role": new.role.as_str(), "dispatch_area": area})),
        },
    )
    .await?;
    Ok(User {
        id,
        username,
        role: new.role,
        dispatch_area: area,
        password_hash: hash,
        deactivated_at: None,
        locked_at: None,
        locked_until: None,
        login_locked_until: None,
        failed_logins: 0,
        must_change_password: false,
        totp_enabled: false,
    })
}

/// Sets a new password (after the password rules): by the user themself
/// (`must_change` false) or by an admin's reset (`must_change` true: the user
/// chooses their own at the next login). Ends every other session of the user;
/// `keep` is the token hash of the session that made the change, if it stays.
pub async fn set_password(
    tx: &mut Tx,
    actor: &Actor,
    user: &User,
    password: &str,
    must_change: bool,
    keep: Option<&str>,
    now: Ts,
) -> Result<()> {
    passwords::check_new(password, &user.username)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing stopped: {e}")))??;
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = $3, password_changed_at = $4,
             failed_logins = 0, login_locked_until = NULL, updated_at = $4
         WHERE id = $1"
    )
    .bind(user.id)
    .bind(&hash)
    .bind(must_change)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: if must_change {
                "password_reset"
            } else {
                "password_change"
            },
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: None,
        },
    )
    .await?;
    crate::sessions::revoke_all(tx, actor, user, keep, "password_change", now).await?;
    Ok(())
}
