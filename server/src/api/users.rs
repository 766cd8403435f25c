//! Managing user accounts (admins): list, add, change role or area, lock,
//! switch off, reset a password or two-step login, end sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use traitortrack_protocol::Role;

use super::extract::{Admin, ApiJson, ApiQuery, Meta};
use crate::db::Ts;
use crate::error::{Error, Result};
use crate::users::{self, AccountState, Change, NewUser, User, UserFilter};
use crate::{passwords, AppState};

/// An account as an admin sees it.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    pub dispatch_area: Option<String>,
    /// Not switched off.
    pub active: bool,
    /// Locked by an admin.
    pub locked: bool,
    /// Logins are blocked until then after too many wrong passwords.
    #[serde(with = "time::serde::rfc3339::option")]
    pub login_locked_until: Option<OffsetDateTime>,
    /// Two-step login is on.
    pub two_step: bool,
    pub must_change_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl UserView {
    pub fn new(user: &User, now: Ts) -> UserView {
        UserView {
            username: user.username.clone(),
            role: user.role,
            dispatch_area: user.dispatch_area.clone(),
            active: user.deactivated_at.is_none(),
            locked: user.locked_at.is_some() && user.locked_until.is_none_or(|until| now < until),
            login_locked_until: user
                .login_locked_until
                .filter(|until| now < *until)
                .map(Ts::time),
            two_step: user.totp_enabled,
            must_change_password: user.must_change_password,
            created_at: user.created_at.time(),
        }
    }
}

/// One account, with when it last logged in.
#[derive(Debug, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize)]
pub struct UserList {
    pub items: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    role: Option<Role>,
    area: Option<String>,
    /// Usernames containing this text.
    name: Option<String>,
    /// active, locked, blocked (after wrong passwords) or deactivated.
    state: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<UserList>> {
    let account_state = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(AccountState::parse(s).ok_or_else(|| {
            Error::bad_input(
                "bad_state",
                "The state is active, locked, blocked or deactivated.",
            )
        })?),
    };
    let filter = UserFilter {
        role: q.role,
        area: q.area.filter(|a| !a.trim().is_empty()),
        name: q.name,
        state: account_state,
        after: q.after.filter(|a| !a.is_empty()),
        limit: q.limit.unwrap_or(500),
    };
    let now = state.now();
    let (found, next_after) = users::list(&state.db, &filter, now).await?;
    Ok(Json(UserList {
        items: found.iter().map(|u| UserView::new(u, now)).collect(),
        next_after,
    }))
}

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(username): Path<String>,
) -> Result<Json<UserDetail>> {
    let user = users::find_by_username(state.db.reader(), &username)
        .await?
        .ok_or_else(|| users::not_found(&username))?;
    let last_login = users::last_login(&state.db, &user).await?;
    Ok(Json(UserDetail {
        user: UserView::new(&user, state.now()),
        last_login: last_login.map(Ts::time),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    /// Left out: one is made up, shown once, and must be changed at first login.
    pub password: Option<String>,
    pub role: Role,
    pub dispatch_area: Option<String>,
    /// Also make a given password a one-time one.
    #[serde(default)]
    pub must_change_password: bool,
}

/// An answer that may carry a made-up password, shown this once.
#[derive(Debug, Serialize)]
pub struct WithPassword {
    #[serde(flatten)]
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<WithPassword>)> {
    let generated = req.password.is_none().then(passwords::generate);
    let password = req
        .password
        .as_deref()
        .or(generated.as_deref())
        .unwrap_or_default();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::create(
        &mut tx,
        &state.settings,
        &actor,
        NewUser {
            username: &req.username,
            password,
            role: req.role,
            dispatch_area: req.dispatch_area.as_deref(),
            must_change_password: generated.is_some() || req.must_change_password,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(WithPassword {
            user: UserView::new(&user, now),
            password: generated,
        }),
    ))
}

/// A field that may be left out (`None`), or given as null (`Some(None)`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    pub role: Option<Role>,
    /// null takes the user out of their area.
    #[serde(default, deserialize_with = "present")]
    pub dispatch_area: Option<Option<String>>,
}

#[tracing::instrument(skip_all)]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<PatchUser>,
) -> Result<Json<UserView>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let now = state.now();
    let change = Change {
        role: req.role,
        dispatch_area: req.dispatch_area,
    };
    let mut tx = state.db.begin().await?;
    let user = users::update(
        &mut tx,
        &state.settings,
        &by,
        &actor,
        &username,
        &change,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[tracing::instrument(skip_all)]
pub async fn lock(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<UserView>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::lock(&mut tx, &by, &actor, &username, now).await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<UserView>> {
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::unlock(&mut tx, &actor, &username, now).await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[tracing::instrument(skip_all)]
pub async fn deactivate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<UserView>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::deactivate(&mut tx, &by, &actor, &username, now).await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[tracing::instrument(skip_all)]
pub async fn reactivate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<UserView>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::reactivate(&mut tx, &state.settings, &by, &actor, &username, now).await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// Left out: one is made up and shown once.
    pub password: Option<String>,
}

/// An admin's password reset: the user must choose their own at the next login.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
    body: Option<ApiJson<ResetPassword>>,
) -> Result<Json<WithPassword>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let (user, generated) =
        users::reset_password(&mut tx, &actor, &username, req.password.as_deref(), now).await?;
    tx.commit().await?;
    Ok(Json(WithPassword {
        user: UserView::new(&user, now),
        password: generated,
    }))
}

#[derive(Debug, Serialize)]
pub struct Ended {
    pub sessions_ended: u64,
}

#[tracing::instrument(skip_all)]
pub async fn logout_everywhere(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<Ended>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let ended = users::end_sessions(&mut tx, &actor, &username, state.now()).await?;
    tx.commit().await?;
    Ok(Json(Ended {
        sessions_ended: ended,
    }))
}

#[tracing::instrument(skip_all)]
pub async fn reset_two_step(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
) -> Result<Json<UserView>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let user = users::reset_two_step(&mut tx, &by, &actor, &username, now).await?;
    tx.commit().await?;
    Ok(Json(UserView::new(&user, now)))
}

#[derive(serde::Deserialize)]
pub struct EmailBody {
    /// The address, or null (or empty) to clear it.
    email: Option<String>,
}

/// Sets or clears a user's mail address (admin).
#[tracing::instrument(skip_all)]
pub async fn set_email(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(username): Path<String>,
    super::extract::ApiJson(body): super::extract::ApiJson<EmailBody>,
) -> Result<Json<serde_json::Value>> {
    let by = caller.0.user.clone();
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let email = users::set_email(
        &mut tx,
        &by,
        &actor,
        &username,
        body.email.as_deref(),
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        serde_json::json!({ "username": username.trim().to_lowercase(), "email": email }),
    ))
}
