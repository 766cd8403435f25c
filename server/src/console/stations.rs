//! The stations page (admins): every station with its state, last seen, app
//! version and unsent scans; registering a station (its key shown once),
//! revoking one and giving one a new key, each after a confirmation page.
//!
//! A new key travels from the form to the page that shows it in a cookie
//! that lives two minutes, is bound to the admin's login, and is cleared by
//! that page: the key is shown once, and reloading does not show it again.
//! The server keeps only its hash.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::{Role, StationCreated};

use super::access::{AdminPage, Signed, SignedForm};
use super::frame;
use super::pages::{self, count, form_message, page, Frame, Refusal};
use crate::api::extract::{actor_of, Meta};
use crate::error::{Error, Result};
use crate::stations::{self, secret_hash, Registered, LARGE_QUEUE};
use crate::AppState;

/// A station seen this recently counts as active.
pub const ACTIVE_MINUTES: i64 = 5;

/// The cookie that carries a new key to the page that shows it once.
const KEY_COOKIE: &str = "tt_station_key";
/// Where that cookie goes, and nowhere else.
const KEY_PAGE: &str = "/console/stations/key";
/// How long the cookie lives: the redirect follows at once.
const KEY_COOKIE_SECS: i64 = 120;

#[derive(Debug, Serialize)]
pub struct StationRow {
    id: i64,
    name: String,
    /// `active`, `quiet`, `never` or `revoked`: also the CSS class.
    pub state: &'static str,
    state_label: &'static str,
    seen: String,
    seen_at: String,
    registered: String,
    /// The app version it reported; empty when it never did.
    version: String,
    /// The unsent scans it reported (`1,234`); empty when it never did.
    queue: String,
    /// `large`, `growing`, `stuck` or empty: also the CSS class.
    queue_flag: &'static str,
    /// The flag in plain words.
    queue_note: &'static str,
}

/// Whether a reported queue needs an admin's eye, and why, in plain words.
fn queue_flag(s: &Registered) -> (&'static str, &'static str) {
    let Some(depth) = s.queue_depth.filter(|d| *d > 0) else {
        return ("", "");
    };
    let growing = s.queue_before.is_some_and(|before| depth > before);
    match (s.revoked_at.is_some(), depth >= LARGE_QUEUE, growing) {
        (true, _, _) => ("stuck", "Cannot send: revoked"),
        (false, true, true) => ("large", "Large and growing"),
        (false, true, false) => ("large", "Large"),
        (false, false, true) => ("growing", "Growing"),
        (false, false, false) => ("", ""),
    }
}

pub async fn station_rows(state: &AppState) -> Result<Vec<StationRow>> {
    let now = state.now().time();
    let offset = state.settings.utc_offset;
    Ok(stations::list(&state.db)
        .await?
        .into_iter()
        .map(|s| {
            let seen = s.last_seen_at.map(|t| t.time());
            let (st, label) = match (s.revoked_at, seen) {
                (Some(_), _) => ("revoked", "Revoked"),
                (None, None) => ("never", "Never seen"),
                (None, Some(t)) if now - t <= time::Duration::minutes(ACTIVE_MINUTES) => {
                    ("active", "Active")
                }
                (None, Some(_)) => ("quiet", "Quiet"),
            };
            let (queue_flag, queue_note) = queue_flag(&s);
            StationRow {
                id: s.id,
                state: st,
                state_label: label,
                seen: seen.map_or_else(|| "never".into(), |t| pages::ago(t, now)),
                seen_at: seen.map_or_else(String::new, |t| pages::moment(t, offset)),
                registered: pages::moment(s.created_at.time(), offset),
                version: s.app_version.unwrap_or_default(),
                queue: s.queue_depth.map(count).unwrap_or_default(),
                queue_flag,
                queue_note,
                name: s.name,
            }
        })
        .collect())
}

/// The stations page, with a refusal of the register form when there is one.
async fn list_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    error: Option<String>,
    typed_name: &str,
    notice: Option<&'static str>,
) -> Response {
    match station_rows(state).await {
        Ok(rows) => page(
            status,
            "stations.html",
            &Frame {
                notice,
                ..frame(signed, "Stations", "stations")
            },
            context! {
                stations => Value::from(Serde(&rows)),
                active_minutes => ACTIVE_MINUTES,
                large_queue => LARGE_QUEUE,
                error,
                typed_name,
            },
        ),
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// A refused form shown on the stations page. A station that is not there
/// is a mistake in the form (the page is there): 422, not 404.
async fn refused(state: &AppState, signed: &Signed, e: Error, typed_name: &str) -> Response {
    match form_message(e) {
        Ok((status, message)) => {
            let status = if status == StatusCode::NOT_FOUND {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                status
            };
            list_page(state, signed, status, Some(message), typed_name, None).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Forms of this page are for admins with no step left to take.
fn admin_only(signed: &Signed) -> std::result::Result<(), Refusal> {
    if let Some(step) = signed.session.pending {
        return Err(Refusal::step(step));
    }
    signed
        .session
        .user
        .require(&[Role::Admin], "change stations (it is for admins)")
        .map_err(Refusal::from)
}

/// Every registered station with its state and reports (admins).
#[tracing::instrument(skip_all)]
pub async fn stations(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    RawQuery(query): RawQuery,
) -> Response {
    let notice = super::note(query.as_deref());
    list_page(&state, &signed, StatusCode::OK, None, "", notice).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    name: String,
}

/// Registers a station with the API's domain function; on to the page
/// that shows its key once.
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    meta: Meta,
    SignedForm { signed, form }: SignedForm<RegisterForm>,
) -> Response {
    if let Err(refusal) = admin_only(&signed) {
        return refusal.into_response();
    }
    let actor = actor_of(&signed.session, meta);
    let created = async {
        let mut tx = state.db.begin().await?;
        let created = stations::create(&mut tx, &actor, &form.name, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(created)
    }
    .await;
    match created {
        Ok(created) => to_key_page(&state, &signed, &created),
        Err(e) => refused(&state, &signed, e, form.name.trim()).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfirmForm {
    /// `yes` once the admin confirmed on the confirmation page.
    confirm: String,
}

/// What the confirmation page asks about.
#[derive(Clone, Copy)]
enum Change {
    Revoke,
    NewKey,
}

/// The confirmation page for a change to a station.
async fn confirm_page(state: &AppState, signed: &Signed, id: i64, change: Change) -> Response {
    let station = match stations::get(&state.db, id).await {
        Ok(s) => s,
        Err(e) => return refused(state, signed, e, "").await,
    };
    let revoked = station.revoked_at.is_some();
    if revoked && matches!(change, Change::Revoke) {
        let message = format!("The station {} is already revoked.", station.name);
        return list_page(
            state,
            signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            "",
            None,
        )
        .await;
    }
    let (what, title) = match change {
        Change::Revoke => ("revoke", format!("Revoke {}?", station.name)),
        Change::NewKey => ("key", format!("Give {} a new key?", station.name)),
    };
    page(
        StatusCode::OK,
        "station_confirm.html",
        &frame(signed, &title, "stations"),
        context! {
            what,
            title,
            id => station.id,
            name => station.name,
            revoked,
            queue => station.queue_depth.filter(|d| *d > 0).map(count),
        },
    )
}

/// Revokes a station after the confirmation page: its key stops working.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    meta: Meta,
    Path(raw): Path<String>,
    SignedForm { signed, form }: SignedForm<ConfirmForm>,
) -> Response {
    if let Err(refusal) = admin_only(&signed) {
        return refusal.into_response();
    }
    let Ok(id) = raw.trim().parse::<i64>() else {
        return super::not_found();
    };
    if form.confirm != "yes" {
        return confirm_page(&state, &signed, id, Change::Revoke).await;
    }
    let actor = actor_of(&signed.session, meta);
    let done = async {
        let mut tx = state.db.begin().await?;
        stations::revoke(&mut tx, &actor, id, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to("/console/stations?note=station_revoked").into_response(),
        Err(e) => refused(&state, &signed, e, "").await,
    }
}

/// Gives a station a new key after the confirmation page; on to the page
/// that shows it once.
#[tracing::instrument(skip_all)]
pub async fn new_key(
    State(state): State<AppState>,
    meta: Meta,
    Path(raw): Path<String>,
    SignedForm { signed, form }: SignedForm<ConfirmForm>,
) -> Response {
    if let Err(refusal) = admin_only(&signed) {
        return refusal.into_response();
    }
    let Ok(id) = raw.trim().parse::<i64>() else {
        return super::not_found();
    };
    if form.confirm != "yes" {
        return confirm_page(&state, &signed, id, Change::NewKey).await;
    }
    let actor = actor_of(&signed.session, meta);
    let created = async {
        let mut tx = state.db.begin().await?;
        let created = stations::new_key(&mut tx, &actor, id, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(created)
    }
    .await;
    match created {
        Ok(created) => to_key_page(&state, &signed, &created),
        Err(e) => refused(&state, &signed, e, "").await,
    }
}

// ------------------------------------------------------------ the key, once

/// Ties a key in the cookie to the login that made it.
fn key_tag(signed: &Signed, id: i64, key: &str) -> String {
    secret_hash(&format!("{}.{id}.{key}", signed.csrf))[..32].to_string()
}

fn key_cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.settings.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{KEY_COOKIE}={value}; Path={KEY_PAGE}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// On to the key page, the key in its cookie.
fn to_key_page(state: &AppState, signed: &Signed, created: &StationCreated) -> Response {
    let value = format!(
        "{}.{}.{}",
        created.id,
        created.key,
        key_tag(signed, created.id, &created.key)
    );
    match key_cookie(state, &value, KEY_COOKIE_SECS) {
        Some(cookie) => super::see_other_with_cookie(cookie, KEY_PAGE),
        None => Refusal::from(Error::Internal("station key cookie".into())).into_response(),
    }
}

/// The key cookie's station id and key, when it was made for this login.
fn key_from_cookie(headers: &HeaderMap, signed: &Signed) -> Option<(i64, String)> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == KEY_COOKIE)
        .map(|(_, v)| v.trim())?;
    let mut parts = value.splitn(3, '.');
    let id: i64 = parts.next()?.parse().ok()?;
    let key = parts.next()?;
    let tag = parts.next()?;
    let right = key_tag(signed, id, key);
    crate::api::extract::constant_time_eq(tag.as_bytes(), right.as_bytes())
        .then(|| (id, key.to_string()))
}

/// Shows a new station key once, and clears it: reloading shows it no more.
#[tracing::instrument(skip_all)]
pub async fn key_page(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    headers: HeaderMap,
) -> Response {
    // Only a key that still opens its station is worth copying.
    let shown = match key_from_cookie(&headers, &signed) {
        Some((id, key)) => match stations::by_key(&state.db, &key).await {
            Ok(station) if station.id == id => Some((station.name, key)),
            _ => None,
        },
        None => None,
    };
    let title = match &shown {
        Some((name, _)) => format!("The key for {name}"),
        None => "No key to show".to_string(),
    };
    let (name, key) = shown.unzip();
    let mut response = page(
        StatusCode::OK,
        "station_key.html",
        &frame(&signed, &title, "stations"),
        context! { title, name, key },
    );
    if headers.get(header::COOKIE).is_some() {
        if let Some(clear) = key_cookie(&state, "", 0) {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Ts;

    fn reported(depth: Option<i64>, before: Option<i64>, revoked: bool) -> Registered {
        let t = Ts::new(time::OffsetDateTime::UNIX_EPOCH);
        Registered {
            id: 1,
            name: "Dock 1".into(),
            created_at: t,
            last_seen_at: Some(t),
            revoked_at: revoked.then_some(t),
            app_version: Some("0.1.0".into()),
            queue_depth: depth,
            queue_before: before,
        }
    }

    #[test]
    fn a_queue_is_flagged_when_large_growing_or_stuck() {
        let flag = |d, b, r| queue_flag(&reported(d, b, r));
        assert_eq!(flag(None, None, false), ("", ""));
        assert_eq!(flag(Some(0), Some(40), false), ("", ""));
        assert_eq!(flag(Some(3), None, false), ("", ""));
        assert_eq!(flag(Some(3), Some(5), false), ("", ""));
        assert_eq!(flag(Some(7), Some(3), false), ("growing", "Growing"));
        assert_eq!(
            flag(Some(LARGE_QUEUE), Some(LARGE_QUEUE), false),
            ("large", "Large")
        );
        assert_eq!(
            flag(Some(LARGE_QUEUE + 1), Some(0), false),
            ("large", "Large and growing")
        );
        assert_eq!(
            flag(Some(2), Some(2), true),
            ("stuck", "Cannot send: revoked")
        );
        assert_eq!(flag(Some(0), Some(2), true), ("", ""));
    }
}
