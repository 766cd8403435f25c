//! The users pages (admins): every account with its role, area and state,
//! a form to add one, and one account's page with every change an admin
//! can make to it. Each change goes through the same domain functions as
//! `/api/v1/users`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::Role;

use super::access::{AdminForm, AdminPage, Signed};
use super::pages::{self, form_message, page, role_name, Frame, Refusal};
use super::{frame, note, NoFields};
use crate::api::extract::{actor_of, Meta};
use crate::audit::{self, AuditFilter};
use crate::db::Ts;
use crate::error::{Error, Result};
use crate::users::{self, AccountState, Change, NewUser, User, UserFilter};
use crate::{areas, passwords, AppState};

/// Accounts on one page of the list.
const PAGE: u32 = 100;
/// Audit rows shown on an account's page.
const RECENT: u32 = 8;

/// The roles as the forms offer them.
const ROLES: [(&str, &str); 3] = [
    ("dispatcher", "Dispatcher"),
    ("biller", "Biller"),
    ("admin", "Admin"),
];

/// The states as the filter offers them.
const STATES: [(&str, &str); 4] = [
    ("active", "Active"),
    ("locked", "Locked"),
    ("blocked", "Blocked after wrong passwords"),
    ("deactivated", "Switched off"),
];

/// One account as the pages show it.
#[derive(Debug, Serialize)]
struct UserRow {
    username: String,
    role: &'static str,
    role_key: &'static str,
    area: Option<String>,
    /// `active`, `locked`, `blocked` or `deactivated`: also the CSS class.
    state: &'static str,
    state_label: String,
    two_step: bool,
    must_change: bool,
    last_login: String,
    last_login_at: String,
    created: String,
}

fn row(state: &AppState, user: &User, last_login: Option<Ts>) -> UserRow {
    let now = state.now();
    let offset = state.settings.utc_offset;
    let account = AccountState::of(user, now);
    let state_label = match account {
        AccountState::Active => "Active".to_string(),
        AccountState::Locked => "Locked".to_string(),
        AccountState::Deactivated => "Switched off".to_string(),
        AccountState::Blocked => match user.login_locked_until {
            Some(until) => format!(
                "Blocked until {} (wrong passwords)",
                pages::clock(until.time(), offset)
            ),
            None => "Blocked (wrong passwords)".to_string(),
        },
    };
    UserRow {
        username: user.username.clone(),
        role: role_name(user.role),
        role_key: user.role.as_str(),
        area: user.dispatch_area.clone(),
        state: account.as_str(),
        state_label,
        two_step: user.totp_enabled,
        must_change: user.must_change_password,
        last_login: last_login
            .map_or_else(|| "never".to_string(), |t| pages::ago(t.time(), now.time())),
        last_login_at: last_login.map_or_else(String::new, |t| pages::moment(t.time(), offset)),
        created: pages::moment(user.created_at.time(), offset),
    }
}

/// The names of the areas that take new members (and `keep`, the area an
/// account is in now, even when it was retired).
async fn area_names(state: &AppState, keep: Option<&str>) -> Result<Vec<String>> {
    let mut names: Vec<String> = areas::list(&state.db)
        .await?
        .into_iter()
        .filter(|a| a.retired_at.is_none() || Some(a.name.as_str()) == keep)
        .map(|a| a.name)
        .collect();
    if let Some(keep) = keep {
        if !names.iter().any(|n| n == keep) {
            names.push(keep.to_string());
        }
    }
    Ok(names)
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s.trim())
        .ok_or_else(|| Error::bad_input("bad_role", "Choose a role: dispatcher, biller or admin."))
}

/// An empty field is no value.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

// ------------------------------------------------------------ the list

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ListQuery {
    role: Option<String>,
    area: Option<String>,
    state: Option<String>,
    name: Option<String>,
    after: Option<String>,
}

/// The new-user form as typed, to show again after a refusal.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewUserForm {
    username: String,
    role: String,
    area: String,
    password: String,
    must_change: Option<String>,
}

/// What the list page shows besides the accounts.
#[derive(Default)]
struct ListExtras {
    error: Option<String>,
    notice: Option<&'static str>,
    typed: Option<NewUserForm>,
    /// The account just made with a made-up password, shown this once.
    created: Option<(String, String)>,
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    q: ListQuery,
    status: StatusCode,
    extras: ListExtras,
) -> Result<Response> {
    let mut error = extras.error;
    let role = match given(&q.role).map(parse_role) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            error.get_or_insert(e.to_string());
            None
        }
        None => None,
    };
    let account_state = match given(&q.state) {
        Some(s) => match AccountState::parse(s) {
            Some(st) => Some(st),
            None => {
                error.get_or_insert("Choose a state from the list.".into());
                None
            }
        },
        None => None,
    };
    let filter = UserFilter {
        role,
        area: given(&q.area).map(str::to_string),
        name: given(&q.name).map(str::to_string),
        state: account_state,
        after: given(&q.after).map(str::to_string),
        limit: PAGE,
    };
    let (found, next_after) = users::list(&state.db, &filter, state.now()).await?;
    let names: Vec<&str> = found.iter().map(|u| u.username.as_str()).collect();
    let logins = users::last_logins(&state.db, &names).await?;
    let rows: Vec<UserRow> = found
        .iter()
        .map(|u| row(state, u, logins.get(&u.username).copied()))
        .collect();
    let areas = area_names(state, None).await?;
    let filtered = filter.role.is_some()
        || filter.area.is_some()
        || filter.name.is_some()
        || filter.state.is_some();
    let frame = Frame {
        notice: extras.notice,
        ..frame(signed, "Users", "users")
    };
    let open_new = extras.typed.is_some() || extras.created.is_some();
    let typed = extras.typed.unwrap_or_default();
    Ok(page(
        status,
        "users.html",
        &frame,
        context! {
            users => Value::from(Serde(&rows)),
            q => Value::from(Serde(&q)),
            filtered,
            paged => filter.after.is_some(),
            next_after,
            roles => Value::from(Serde(&ROLES)),
            states => Value::from(Serde(&STATES)),
            areas,
            error,
            typed => Value::from(Serde(&typed)),
            open_new,
            created => extras.created.map(|(u, p)| context! { username => u, password => p }),
            min_password => passwords::MIN_LEN,
        },
    ))
}

/// Every account, with filters by role, area and state and a search by name.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    RawQuery(raw): RawQuery,
    q: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (q, error) = match q {
        Ok(Query(q)) => (q, None),
        Err(_) => (
            ListQuery::default(),
            Some("The filter could not be read. Choose again.".to_string()),
        ),
    };
    let extras = ListExtras {
        error,
        notice: note(raw.as_deref()),
        ..ListExtras::default()
    };
    list_page(&state, &signed, q, StatusCode::OK, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// Adds an account. Without a password one is made up and shown once; the
/// user must then choose their own at the first login.
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    meta: Meta,
    AdminForm { mut signed, form }: AdminForm<NewUserForm>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let now = state.now();
    let made = async {
        let role = parse_role(&form.role)?;
        let typed = form.password.as_str();
        let generated = typed.is_empty().then(passwords::generate);
        let password = generated.as_deref().unwrap_or(typed);
        let area = Some(form.area.trim()).filter(|a| !a.is_empty());
        let mut tx = state.db.begin().await?;
        let user = users::create(
            &mut tx,
            &state.settings,
            &actor,
            NewUser {
                username: &form.username,
                password,
                role,
                dispatch_area: area,
                must_change_password: generated.is_some() || form.must_change.is_some(),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>((user, generated))
    }
    .await;
    let (status, extras) = match made {
        Ok((user, None)) => {
            return Redirect::to(&format!(
                "/console/users/{}?note=user_created",
                user.username
            ))
            .into_response()
        }
        Ok((user, Some(password))) => (
            StatusCode::OK,
            ListExtras {
                created: Some((user.username, password)),
                ..ListExtras::default()
            },
        ),
        Err(e) => match form_message(e) {
            Ok((status, message)) => (
                status,
                ListExtras {
                    error: Some(message),
                    typed: Some(NewUserForm {
                        password: String::new(),
                        ..form
                    }),
                    ..ListExtras::default()
                },
            ),
            Err(refusal) => return refusal.into_response(),
        },
    };
    if let Err(refusal) = signed.count_unread(&state).await {
        return refusal.into_response();
    }
    list_page(&state, &signed, ListQuery::default(), status, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

// ------------------------------------------------------------ one account

/// One audit row about the account, as its page lists it.
#[derive(Debug, Serialize)]
struct Activity {
    at: String,
    action: String,
    actor: String,
}

/// What an account's page shows besides the account.
#[derive(Default)]
struct UserExtras {
    error: Option<String>,
    notice: Option<&'static str>,
    /// A made-up password from a reset, shown this once.
    new_password: Option<String>,
}

async fn user_page(
    state: &AppState,
    signed: &Signed,
    username: &str,
    status: StatusCode,
    extras: UserExtras,
) -> Result<Response> {
    let user = users::find_by_username(state.db.reader(), username)
        .await?
        .ok_or_else(|| users::not_found(username))?;
    let last = users::last_login(&state.db, &user).await?;
    let shown = row(state, &user, last);
    let recent = audit::list(
        &state.db,
        AuditFilter {
            entity: Some("user".into()),
            entity_code: Some(user.username.clone()),
            limit: RECENT,
            ..AuditFilter::default()
        },
    )
    .await?;
    let offset = state.settings.utc_offset;
    let activity: Vec<Activity> = recent
        .items
        .into_iter()
        .map(|e| Activity {
            at: pages::moment(e.at, offset),
            action: e.action,
            actor: e.actor.unwrap_or_else(|| "system".into()),
        })
        .collect();
    let areas = area_names(state, user.dispatch_area.as_deref()).await?;
    let frame = Frame {
        notice: extras.notice,
        ..frame(signed, &user.username, "users")
    };
    Ok(page(
        status,
        "user.html",
        &frame,
        context! {
            user => Value::from(Serde(&shown)),
            own => user.id == signed.session.user.id,
            roles => Value::from(Serde(&ROLES)),
            areas,
            activity => Value::from(Serde(&activity)),
            error => extras.error,
            new_password => extras.new_password,
            min_password => passwords::MIN_LEN,
        },
    ))
}

/// One account and the forms to change it.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    Path(username): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let extras = UserExtras {
        notice: note(raw.as_deref()),
        ..UserExtras::default()
    };
    user_page(&state, &signed, &username, StatusCode::OK, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// After a change: back to the account's page with its note, or the page
/// again with the refusal in plain words.
async fn finish(
    state: &AppState,
    mut signed: Signed,
    username: &str,
    done: Result<&'static str>,
) -> Response {
    let e = match done {
        Ok(note) => {
            return Redirect::to(&format!("/console/users/{username}?note={note}")).into_response()
        }
        Err(e) => e,
    };
    let (status, message) = match form_message(e) {
        // An account that is not there has no page to show again.
        Ok((StatusCode::NOT_FOUND, message)) => {
            return Refusal::Page {
                status: StatusCode::NOT_FOUND,
                title: "Not found",
                message,
            }
            .into_response()
        }
        Ok(shown) => shown,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = signed.count_unread(state).await {
        return refusal.into_response();
    }
    let extras = UserExtras {
        error: Some(message),
        ..UserExtras::default()
    };
    user_page(state, &signed, username, status, extras)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChangeForm {
    role: Option<String>,
    /// Empty: no area.
    area: Option<String>,
}

/// Changes an account's role and area (one form for both).
#[tracing::instrument(skip_all)]
pub async fn change(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, form }: AdminForm<ChangeForm>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let by = signed.session.user.clone();
    let done = async {
        let role = given(&form.role).map(parse_role).transpose()?;
        let change = Change {
            role,
            dispatch_area: form
                .area
                .as_deref()
                .map(|a| Some(a.trim().to_string()).filter(|a| !a.is_empty())),
        };
        let mut tx = state.db.begin().await?;
        let before = users::get(&mut tx, &username).await?;
        let after = users::update(
            &mut tx,
            &state.settings,
            &by,
            &actor,
            &username,
            &change,
            state.now(),
        )
        .await?;
        tx.commit().await?;
        let same = before.role == after.role && before.dispatch_area == after.dispatch_area;
        Ok(if same { "unchanged" } else { "user_changed" })
    }
    .await;
    finish(&state, signed, &username, done).await
}

/// Runs one change to an account in a transaction, and reports `note`.
macro_rules! account_action {
    ($state:expr, $note:expr, |$tx:ident| $call:expr) => {
        async {
            let mut $tx = $state.db.begin().await?;
            $call;
            $tx.commit().await?;
            Ok::<_, Error>($note)
        }
        .await
    };
}

#[tracing::instrument(skip_all)]
pub async fn lock(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = account_action!(state, "locked", |tx| users::lock(
        &mut tx,
        by,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[tracing::instrument(skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let done = account_action!(state, "unlocked", |tx| users::unlock(
        &mut tx,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[tracing::instrument(skip_all)]
pub async fn deactivate(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = account_action!(state, "deactivated", |tx| users::deactivate(
        &mut tx,
        by,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[tracing::instrument(skip_all)]
pub async fn reactivate(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = account_action!(state, "reactivated", |tx| users::reactivate(
        &mut tx,
        &state.settings,
        by,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[tracing::instrument(skip_all)]
pub async fn logout_everywhere(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let done = account_action!(state, "logged_out_everywhere", |tx| users::end_sessions(
        &mut tx,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[tracing::instrument(skip_all)]
pub async fn reset_two_step(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { signed, .. }: AdminForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let by = &signed.session.user;
    let done = account_action!(state, "two_step_reset", |tx| users::reset_two_step(
        &mut tx,
        by,
        &actor,
        &username,
        state.now()
    )
    .await?);
    finish(&state, signed, &username, done).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    /// Empty: one is made up and shown once.
    password: String,
}

/// An admin's password reset: typed by the admin, or made up and shown
/// once. Either way the user must choose their own at the next login, and
/// their logins end.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    State(state): State<AppState>,
    meta: Meta,
    Path(username): Path<String>,
    AdminForm { mut signed, form }: AdminForm<ResetForm>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let typed = Some(form.password.as_str()).filter(|p| !p.is_empty());
    let reset = async {
        let mut tx = state.db.begin().await?;
        let (_, generated) =
            users::reset_password(&mut tx, &actor, &username, typed, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(generated)
    }
    .await;
    match reset {
        Ok(None) => finish(&state, signed, &username, Ok("password_set")).await,
        Ok(Some(password)) => {
            if let Err(refusal) = signed.count_unread(&state).await {
                return refusal.into_response();
            }
            let extras = UserExtras {
                new_password: Some(password),
                ..UserExtras::default()
            };
            user_page(&state, &signed, &username, StatusCode::OK, extras)
                .await
                .unwrap_or_else(|e| Refusal::from(e).into_response())
        }
        Err(e) => finish(&state, signed, &username, Err(e)).await,
    }
}
