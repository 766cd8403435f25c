//! User accounts: who may do what, and whether they may act at a given moment.

use serde_json::json;
use traitortrack_protocol::{Role, UserInfo};

use crate::areas::{self, Area};
use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, On, Ts, Tx};
use crate::error::{Error, Result};
use crate::{notifications, on, passwords, sessions, totp};

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
    pub created_at: Ts,
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
    created_at: Ts,
}

const COLUMNS: &str =
    "id, username, role, dispatch_area, password_hash, deactivated_at, locked_at, \
     locked_until, login_locked_until, failed_logins, must_change_password, totp_enabled_at, \
     created_at";

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
        created_at: r.created_at,
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

/// The users with these names (already normalized), by name; names no
/// account has are left out.
pub async fn find_by_usernames(
    tx: &mut Tx,
    names: &[&str],
) -> Result<std::collections::HashMap<String, User>> {
    use crate::rows::{Col, Form, Rows, Val};
    let keys = Rows::keys(Col::Text, names, |n| Val::Text(n.to_string()));
    let rows: Vec<UserRow> = crate::rows::fetch(tx.conn(), keys, Form::In, |names| {
        format!("SELECT {COLUMNS} FROM users WHERE username {names}")
    })
    .await?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let user = from_row(row)?;
        found.insert(user.username.clone(), user);
    }
    Ok(found)
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
    /// The user must choose their own password at their first login.
    pub must_change_password: bool,
}

/// Refuses a new active dispatcher in a full area. `already_in` is true when
/// the user is counted in `area.dispatchers` already.
fn check_room(settings: &Settings, area: &Area, already_in: bool) -> Result<()> {
    let limit = i64::from(settings.max_dispatchers_per_area);
    let others = area.dispatchers - i64::from(already_in);
    if others >= limit {
        return Err(Error::conflict(
            "area_full",
            format!(
                "The area {} is full: it has {others} of {limit} dispatchers.",
                area.name
            ),
        ));
    }
    Ok(())
}

fn area_required() -> Error {
    Error::bad_input("area_required", "A dispatcher needs a dispatch area.")
}

/// Creates an account. The caller hashes nothing: this runs argon2 off the
/// runtime. The area must exist and not be retired, and a dispatcher needs
/// room in it (`settings.max_dispatchers_per_area`).
pub async fn create(
    tx: &mut Tx,
    settings: &Settings,
    actor: &Actor,
    new: NewUser<'_>,
    now: Ts,
) -> Result<User> {
    let username = normalize_username(new.username)?;
    passwords::check_new(new.password, &username)?;
    let area = new.dispatch_area.map(normalize_area).transpose()?;
    if new.role == Role::Dispatcher && area.is_none() {
        return Err(area_required());
    }
    // Hash before taking the area's lock: hashing is slow on purpose.
    let hash = passwords::hash_off_runtime(new.password).await?;
    let area = match area {
        Some(name) => {
            let area = areas::for_new_member(tx, &name).await?;
            if new.role == Role::Dispatcher {
                check_room(settings, &area, false)?;
            }
            Some(area.name)
        }
        None => None,
    };
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, dispatch_area, must_change_password, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id"
    )
    .bind(&username)
    .bind(&hash)
    .bind(new.role.as_str())
    .bind(area.as_deref())
    .bind(new.must_change_password)
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
            after: Some(json!({
                "role": new.role.as_str(),
                "dispatch_area": area,
                "must_change_password": new.must_change_password,
            })),
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
        must_change_password: new.must_change_password,
        totp_enabled: false,
        created_at: now,
    })
}

/// Where an account stands, as an admin sees it at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Can log in.
    Active,
    /// Locked by an admin.
    Locked,
    /// Logins blocked for a while after too many wrong passwords.
    Blocked,
    /// Switched off.
    Deactivated,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Locked => "locked",
            AccountState::Blocked => "blocked",
            AccountState::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<AccountState> {
        match s {
            "active" => Some(AccountState::Active),
            "locked" => Some(AccountState::Locked),
            "blocked" => Some(AccountState::Blocked),
            "deactivated" => Some(AccountState::Deactivated),
            _ => None,
        }
    }

    /// The state of `user` at `now`: switched off before locked, locked
    /// before blocked.
    pub fn of(user: &User, now: Ts) -> AccountState {
        if user.deactivated_at.is_some() {
            AccountState::Deactivated
        } else if !user.is_active(now) {
            AccountState::Locked
        } else if user.login_locked_until.is_some_and(|until| now < until) {
            AccountState::Blocked
        } else {
            AccountState::Active
        }
    }
}

/// Which accounts to list.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub area: Option<String>,
    /// Usernames that contain this text.
    pub name: Option<String>,
    /// Accounts in this state (see [`AccountState::of`]).
    pub state: Option<AccountState>,
    /// Usernames after this one (the previous page's last).
    pub after: Option<String>,
    pub limit: u32,
}

/// The longest text a username search takes.
pub const MAX_NAME_SEARCH: usize = 32;

/// A LIKE pattern for usernames containing `text` (lower-cased, at most
/// [`MAX_NAME_SEARCH`] characters), with `\`, `%` and `_` taken literally.
fn contains_pattern(text: &str) -> Option<String> {
    let text: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_SEARCH)
        .collect();
    if text.is_empty() {
        return None;
    }
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// Accounts by username, at most `filter.limit` (1 to 500), and the
/// username to continue after when there are more. States are judged at `now`.
pub async fn list(db: &Db, filter: &UserFilter, now: Ts) -> Result<(Vec<User>, Option<String>)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users
         WHERE ($1 IS NULL OR role = $1)
           AND ($2 IS NULL OR lower(dispatch_area) = lower($2))
           AND ($3 IS NULL OR username > $3)
           AND ($4 IS NULL OR username LIKE $4 ESCAPE '\\')
           AND ($5 IS NULL
             OR ($5 = 'deactivated' AND deactivated_at IS NOT NULL)
             OR ($5 = 'locked' AND deactivated_at IS NULL AND locked_at IS NOT NULL
                 AND (locked_until IS NULL OR locked_until > $6))
             OR ($5 = 'blocked' AND deactivated_at IS NULL
                 AND NOT (locked_at IS NOT NULL AND (locked_until IS NULL OR locked_until > $6))
                 AND login_locked_until IS NOT NULL AND login_locked_until > $6)
             OR ($5 = 'active' AND deactivated_at IS NULL
                 AND NOT (locked_at IS NOT NULL AND (locked_until IS NULL OR locked_until > $6))
                 AND (login_locked_until IS NULL OR login_locked_until <= $6)))
         ORDER BY username LIMIT $7"
    );
    let limit = filter.limit.clamp(1, 500) as usize;
    let pattern = filter.name.as_deref().and_then(contains_pattern);
    let rows: Vec<UserRow> = on!(db.reader(), |c| sqlx::query_as(&sql)
        .bind(filter.role.map(Role::as_str))
        .bind(filter.area.as_deref())
        .bind(filter.after.as_deref())
        .bind(pattern.as_deref())
        .bind(filter.state.map(AccountState::as_str))
        .bind(now)
        .bind(limit as i64 + 1)
        .fetch_all(c)
        .await)?;
    let mut users = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let next = if users.len() > limit {
        users.truncate(limit);
        users.last().map(|u| u.username.clone())
    } else {
        None
    };
    Ok((users, next))
}

/// When each of these users last logged in, from the audit log (users who
/// never did are left out). At most 500 names are looked up.
pub async fn last_logins(
    db: &Db,
    usernames: &[&str],
) -> Result<std::collections::HashMap<String, Ts>> {
    let names = &usernames[..usernames.len().min(500)];
    if names.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT entity_code, MAX(at) FROM audit_log
         WHERE entity = 'user' AND action = 'login' AND entity_code IN ({})
         GROUP BY entity_code",
        marks.join(", ")
    );
    let rows: Vec<(String, Ts)> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        for name in names {
            q = q.bind(*name);
        }
        q.fetch_all(c).await
    })?;
    Ok(rows.into_iter().collect())
}

/// When the user last logged in, from the audit log.
pub async fn last_login(db: &Db, user: &User) -> Result<Option<Ts>> {
    Ok(on!(db.reader(), |c| {
        sqlx::query_scalar(
        "SELECT MAX(at) FROM audit_log WHERE entity = 'user' AND entity_code = $1 AND action = 'login'"
    )
    .bind(&user.username)
    .fetch_one(c)
    .await
    })?)
}

/// "There is no user named …".
pub fn not_found(username: &str) -> Error {
    Error::not_found(
        "user_not_found",
        format!(
            "There is no user named {}.",
            username
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(40)
                .collect::<String>()
        ),
    )
}

/// The user named `username`, read in `tx`; a plain 404 when there is none.
pub async fn get(tx: &mut Tx, username: &str) -> Result<User> {
    find_by_username(tx.conn(), username)
        .await?
        .ok_or_else(|| not_found(username))
}

/// The lock every admin change to an account takes first, in every server
/// process: changes that could leave no admin (or overfill an area) queue
/// there, then count what is left.
const ACCOUNTS_LOCK: &str = "~admins";

impl User {
    /// Neither switched off nor locked now. Unlike [`User::check_usable_at`]
    /// (which judges a scan by when it was made), a switch-off or lock counts
    /// from the moment it is written, whatever time it carries: two requests
    /// racing each other must each see the other's change.
    pub fn is_active(&self, now: Ts) -> bool {
        self.deactivated_at.is_none()
            && !(self.locked_at.is_some() && self.locked_until.is_none_or(|until| now < until))
    }
}

/// Takes [`ACCOUNTS_LOCK`] and checks, after it, that `by` is still an
/// active admin (another admin may have just demoted them).
async fn lock_accounts(tx: &mut Tx, by: &User, now: Ts) -> Result<()> {
    tx.lock_codes([ACCOUNTS_LOCK]).await?;
    let current = find_by_id(tx.conn(), by.id).await?;
    match current {
        Some(u) if u.role == Role::Admin && u.is_active(now) => Ok(()),
        _ => Err(Error::forbidden(
            "not_allowed",
            "Only an admin can manage accounts, and you are no longer one.",
        )),
    }
}

/// Refuses when `target` is the last active admin. Call under [`ACCOUNTS_LOCK`].
async fn check_not_last_admin(tx: &mut Tx, target: &User, what: &str, now: Ts) -> Result<()> {
    if target.role != Role::Admin || !target.is_active(now) {
        return Ok(());
    }
    let others: i64 = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM users
         WHERE role = 'admin' AND id <> $1 AND deactivated_at IS NULL
           AND (locked_at IS NULL OR (locked_until IS NOT NULL AND locked_until <= $2))"
    )
    .bind(target.id)
    .bind(now)
    .fetch_one(c)
    .await)?;
    if others == 0 {
        return Err(Error::conflict(
            "last_admin",
            format!(
                "{} is the only active admin, so they cannot be {what}. Make another user an admin first.",
                target.username
            ),
        ));
    }
    Ok(())
}

fn own_account(what: &str) -> Error {
    Error::forbidden(
        "own_account",
        format!("You cannot {what} your own account. Ask another admin."),
    )
}

/// A change to a user's role or dispatch area.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub role: Option<Role>,
    /// `Some(None)` takes the user out of any area.
    pub dispatch_area: Option<Option<String>>,
}

/// A user before and after a [`change`].
#[derive(Debug, Clone)]
pub struct Changed {
    pub before: User,
    pub after: User,
}

impl Changed {
    pub fn role_changed(&self) -> bool {
        self.before.role != self.after.role
    }

    pub fn area_changed(&self) -> bool {
        self.before.dispatch_area != self.after.dispatch_area
    }
}

/// Changes a user's role and/or area, by the admin `by`, under every rule:
/// nobody changes their own role, the last active admin stays one, a
/// dispatcher is in an area that exists, is not retired and has room. A role
/// change ends the user's sessions. Nothing is written when nothing changes.
/// Sends no notification: see [`update`].
pub async fn change(
    tx: &mut Tx,
    settings: &Settings,
    by: &User,
    actor: &Actor,
    username: &str,
    change: &Change,
    now: Ts,
) -> Result<Changed> {
    let wanted_area = match &change.dispatch_area {
        Some(Some(a)) => Some(Some(normalize_area(a)?)),
        Some(None) => Some(None),
        None => None,
    };
    lock_accounts(tx, by, now).await?;
    let before = get(tx, username).await?;
    let role = change.role.unwrap_or(before.role);
    if by.id == before.id && role != before.role {
        return Err(Error::forbidden(
            "own_role",
            "You cannot change your own role. Ask another admin.",
        ));
    }
    let area = wanted_area.unwrap_or_else(|| before.dispatch_area.clone());
    if role == Role::Dispatcher && area.is_none() {
        return Err(area_required());
    }
    if role != Role::Admin {
        check_not_last_admin(tx, &before, "demoted", now).await?;
    }
    let same_area = match (&area, &before.dispatch_area) {
        (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
        (None, None) => true,
        _ => false,
    };
    let active = before.deactivated_at.is_none();
    let joining =
        role == Role::Dispatcher && active && !(before.role == Role::Dispatcher && same_area);
    let area = match area {
        Some(name) if joining || !same_area => {
            let found = areas::for_new_member(tx, &name).await?;
            if joining {
                check_room(settings, &found, false)?;
            }
            Some(found.name)
        }
        // The same area (whatever case it was typed in) or none.
        _ if same_area => before.dispatch_area.clone(),
        _ => None,
    };
    let after = User {
        role,
        dispatch_area: area,
        ..before.clone()
    };
    let changed = Changed { before, after };
    if !changed.role_changed() && !changed.area_changed() {
        return Ok(changed);
    }
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET role = $2, dispatch_area = $3, updated_at = $4 WHERE id = $1"
    )
    .bind(changed.after.id)
    .bind(changed.after.role.as_str())
    .bind(changed.after.dispatch_area.as_deref())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let state = |u: &User| json!({"role": u.role.as_str(), "dispatch_area": u.dispatch_area});
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: if changed.role_changed() {
                "role_change"
            } else {
                "area_change"
            },
            entity: "user",
            code: Some(&changed.after.username),
            before: Some(state(&changed.before)),
            after: Some(state(&changed.after)),
        },
    )
    .await?;
    if changed.role_changed() {
        sessions::revoke_all(tx, actor, &changed.after, None, "role_change", now).await?;
    }
    Ok(changed)
}

/// [`change`], and the user is told in the app.
pub async fn update(
    tx: &mut Tx,
    settings: &Settings,
    by: &User,
    actor: &Actor,
    username: &str,
    what: &Change,
    now: Ts,
) -> Result<User> {
    let changed = change(tx, settings, by, actor, username, what, now).await?;
    let user = &changed.after;
    if changed.role_changed() {
        let message = format!(
            "An admin changed your role to {}. Log in again to go on.",
            user.role.as_str()
        );
        notifications::notify(tx, user.id, "role_change", &message, now).await?;
    } else if changed.area_changed() {
        let message = match &user.dispatch_area {
            Some(area) => format!("An admin moved you to the dispatch area {area}."),
            None => "An admin took you out of your dispatch area.".to_string(),
        };
        notifications::notify(tx, user.id, "area_change", &message, now).await?;
    }
    Ok(changed.after)
}

/// Locks an account until an admin unlocks it, and ends its sessions.
pub async fn lock(tx: &mut Tx, by: &User, actor: &Actor, username: &str, now: Ts) -> Result<User> {
    lock_accounts(tx, by, now).await?;
    let user = get(tx, username).await?;
    if user.id == by.id {
        return Err(own_account("lock"));
    }
    if user.locked_at.is_some() && user.locked_until.is_none() {
        return Err(Error::conflict(
            "already_locked",
            format!("The account {} is already locked.", user.username),
        ));
    }
    check_not_last_admin(tx, &user, "locked", now).await?;
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET locked_at = $2, locked_until = NULL, updated_at = $2 WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "lock",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: None,
        },
    )
    .await?;
    sessions::revoke_all(tx, actor, &user, None, "locked", now).await?;
    Ok(User {
        locked_at: Some(now),
        locked_until: None,
        ..user
    })
}

/// Lifts an admin's lock and an automatic lockout after wrong passwords.
pub async fn unlock(tx: &mut Tx, actor: &Actor, username: &str, now: Ts) -> Result<User> {
    let user = get(tx, username).await?;
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET locked_at = NULL, locked_until = NULL, login_locked_until = NULL,
             failed_logins = 0, updated_at = $2
         WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "unlock",
            entity: "user",
            code: Some(&user.username),
            before: Some(json!({
                "locked": user.locked_at.is_some(),
                "login_locked": user.login_locked_until.is_some_and(|until| now < until),
                "failed_logins": user.failed_logins,
            })),
            after: None,
        },
    )
    .await?;
    Ok(User {
        locked_at: None,
        locked_until: None,
        login_locked_until: None,
        failed_logins: 0,
        ..user
    })
}

/// Switches an account off and ends its sessions; its history stays.
pub async fn deactivate(
    tx: &mut Tx,
    by: &User,
    actor: &Actor,
    username: &str,
    now: Ts,
) -> Result<User> {
    lock_accounts(tx, by, now).await?;
    let user = get(tx, username).await?;
    if user.id == by.id {
        return Err(own_account("switch off"));
    }
    if user.deactivated_at.is_some() {
        return Err(Error::conflict(
            "already_inactive",
            format!("The account {} is already switched off.", user.username),
        ));
    }
    check_not_last_admin(tx, &user, "switched off", now).await?;
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET deactivated_at = $2, updated_at = $2 WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "deactivate",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: None,
        },
    )
    .await?;
    sessions::revoke_all(tx, actor, &user, None, "deactivated", now).await?;
    Ok(User {
        deactivated_at: Some(now),
        ..user
    })
}

/// Switches an account back on; a dispatcher needs room in their area again.
pub async fn reactivate(
    tx: &mut Tx,
    settings: &Settings,
    by: &User,
    actor: &Actor,
    username: &str,
    now: Ts,
) -> Result<User> {
    lock_accounts(tx, by, now).await?;
    let user = get(tx, username).await?;
    if user.deactivated_at.is_none() {
        return Err(Error::conflict(
            "already_active",
            format!("The account {} is already switched on.", user.username),
        ));
    }
    if user.role == Role::Dispatcher {
        let name = user.dispatch_area.as_deref().ok_or_else(area_required)?;
        let area = areas::for_new_member(tx, name).await?;
        check_room(settings, &area, false)?;
    }
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET deactivated_at = NULL, updated_at = $2 WHERE id = $1"
    )
    .bind(user.id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "reactivate",
            entity: "user",
            code: Some(&user.username),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(User {
        deactivated_at: None,
        ..user
    })
}

/// An admin's password reset: `password`, or a generated one (returned, to
/// show once). The user must choose their own at the next login.
pub async fn reset_password(
    tx: &mut Tx,
    actor: &Actor,
    username: &str,
    password: Option<&str>,
    now: Ts,
) -> Result<(User, Option<String>)> {
    let user = get(tx, username).await?;
    let generated = password.is_none().then(passwords::generate);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    set_password(tx, actor, &user, password, true, None, now).await?;
    Ok((
        User {
            must_change_password: true,
            ..user
        },
        generated,
    ))
}

/// Ends every session of a user, at an admin's request.
pub async fn end_sessions(tx: &mut Tx, actor: &Actor, username: &str, now: Ts) -> Result<u64> {
    let user = get(tx, username).await?;
    sessions::revoke_all(tx, actor, &user, None, "admin_request", now).await
}

/// Turns a user's two-step login off, so they can set it up again.
pub async fn reset_two_step(
    tx: &mut Tx,
    by: &User,
    actor: &Actor,
    username: &str,
    now: Ts,
) -> Result<User> {
    let user = get(tx, username).await?;
    if user.id == by.id {
        return Err(own_account("reset two-step login on"));
    }
    if !user.totp_enabled {
        return Err(Error::conflict(
            "two_step_off",
            format!("Two-step login is not on for {}.", user.username),
        ));
    }
    totp::disable(tx, actor, &user, now).await?;
    Ok(User {
        totp_enabled: false,
        ..user
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
    let hash = passwords::hash_off_runtime(password).await?;
    tx.access_changed();
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

/// Checks a typed password against the user's stored hash (the hashing runs
/// off the request threads).
pub async fn check_password(user: &User, typed: &str) -> Result<()> {
    let ok = passwords::verify_off_runtime(typed, Some(user.password_hash.clone())).await?;
    if ok {
        Ok(())
    } else {
        Err(Error::forbidden(
            "bad_password",
            "Your current password is not right.",
        ))
    }
}

/// A user changes their own password: the current one first, then the
/// password rules. Every other session of the user ends; the one asking stays.
pub async fn change_own_password(
    db: &Db,
    actor: &Actor,
    session: &sessions::Session,
    current: &str,
    new: &str,
    now: Ts,
) -> Result<()> {
    check_password(&session.user, current).await?;
    let mut tx = db.begin().await?;
    set_password(
        &mut tx,
        actor,
        &session.user,
        new,
        false,
        Some(&session.token_hash),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The longest mail address kept (RFC 5321's limit).
const MAX_EMAIL: usize = 254;

/// Reads a mail address as typed: `ravi@example.com`; empty is none.
fn email_of(raw: Option<&str>) -> Result<Option<String>> {
    let Some(text) = raw.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let plain = text.len() <= MAX_EMAIL
        && !text.contains(|c: char| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        && text.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
        })
        && crate::mail::mailbox(text).is_some();
    if !plain {
        let shown: String = text.chars().take(40).collect();
        return Err(Error::bad_input(
            "bad_email",
            format!("Give a mail address like ravi@example.com, not {shown:?}."),
        ));
    }
    Ok(Some(text.to_string()))
}

/// Sets the mail address of `username` (admins), or clears it with `None`;
/// the end-of-day summary goes to the admins and billers who have one.
pub async fn set_email(
    tx: &mut Tx,
    by: &User,
    actor: &Actor,
    username: &str,
    email: Option<&str>,
    now: Ts,
) -> Result<Option<String>> {
    by.require(&[Role::Admin], "set a user's mail address")?;
    let email = email_of(email)?;
    let user = get(tx, username).await?;
    let before: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT email FROM users WHERE id = $1"
    )
    .bind(user.id)
    .fetch_one(c)
    .await)?;
    if before == email {
        return Ok(email);
    }
    tx.access_changed();
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET email = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(user.id)
    .bind(&email)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "email_change",
            entity: "user",
            code: Some(&user.username),
            before: Some(json!({ "email": before })),
            after: Some(json!({ "email": email })),
        },
    )
    .await?;
    Ok(email)
}

/// A user's mail address, if they have one.
pub async fn email(db: &Db, username: &str) -> Result<Option<String>> {
    Ok(
        on!(db.reader(), |c| sqlx::query_scalar::<_, Option<String>>(
            "SELECT email FROM users WHERE username = $1"
        )
        .bind(username)
        .fetch_optional(c)
        .await)?
        .flatten(),
    )
}

/// The usernames and mail addresses of the active admins and billers who
/// have one: the readers of the end-of-day summary.
pub async fn summary_readers(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(on!(db.reader(), |c| sqlx::query_as(
        "SELECT username, email FROM users
         WHERE role IN ('admin', 'biller') AND deactivated_at IS NULL AND locked_at IS NULL
           AND email IS NOT NULL
         ORDER BY username"
    )
    .fetch_all(c)
    .await)?)
}

#[cfg(test)]
mod tests {
    use super::email_of;

    #[test]
    fn mail_addresses_are_plain() {
        assert_eq!(
            email_of(Some(" ravi@example.com ")).expect("ok").as_deref(),
            Some("ravi@example.com")
        );
        assert_eq!(email_of(Some("")).expect("empty is none"), None);
        assert_eq!(email_of(None).expect("none"), None);
        for bad in [
            "ravi",
            "ravi@",
            "@example.com",
            "ravi@example",
            "a b@example.com",
            "Ravi <r@example.com>",
            "r@example.com, s@example.com",
        ] {
            let e = email_of(Some(bad)).expect_err(bad);
            assert!(
                e.to_string().contains("like ravi@example.com"),
                "{bad}: {e}"
            );
        }
        assert!(email_of(Some(&format!("{}@example.com", "a".repeat(250)))).is_err());
    }
}
