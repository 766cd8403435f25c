//! The web console: pages the server renders for admins, billers and
//! dispatchers in a browser. Each handler parses, calls the same domain
//! functions as the API, and renders. Templates, the style sheet and the one
//! small script are built into the binary: no files at run time, no build
//! step, and no inline script or style (the CSP forbids them).

mod access;
mod pages;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::{BillStatus, BillSummary, Stats};

use crate::api::auth::session_cookie;
use crate::api::extract::{actor_of, ClientIp, Meta};
use crate::bills::{self, BillFilter};
use crate::error::{Error, Result};
use crate::login::{self, Attempt};
use crate::sessions::{self, Opened, Pending};
use crate::{counters, stations, totp, users, AppState};

use access::{AdminPage, Polling, Ready, SameOrigin, Signed, SignedForm};
use pages::{count, form_message, page, step_path, Frame, Me, Refusal};

/// How often the dashboard asks for fresh totals, in milliseconds.
const LIVE_EVERY_MS: u32 = 5000;
/// A station seen this recently counts as active.
const ACTIVE_MINUTES: i64 = 5;
/// Bills of each open status the dashboard lists.
const DASHBOARD_BILLS: u32 = 20;

// ------------------------------------------------------------ static files

pub async fn style() -> Response {
    pages::static_file("text/css; charset=utf-8", pages::CSS)
}

pub async fn script() -> Response {
    pages::static_file("text/javascript; charset=utf-8", pages::JS)
}

/// `/console` without the slash.
pub async fn home() -> Redirect {
    Redirect::to("/console/")
}

/// A console address that does not exist: a page, not JSON.
pub fn not_found() -> Response {
    Refusal::Page {
        status: StatusCode::NOT_FOUND,
        title: "No such page",
        message:
            "There is no such page in the console. Check the address, or start from the dashboard."
                .into(),
    }
    .into_response()
}

/// The line of good news a redirect asks for with `?note=…`.
fn note(query: Option<&str>) -> Option<&'static str> {
    let note = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("note="))?;
    Some(match note {
        "logged_out" => "You are logged out.",
        "ended" => "Your login has ended. Log in again.",
        "idle" => "You were logged out after a time without use. Log in again.",
        "password_changed" => "Your password is changed.",
        "two_step_on" => "Two-step login is on. Keep your recovery codes somewhere safe.",
        _ => return None,
    })
}

fn frame(signed: &Signed, title: &str, nav: &'static str) -> Frame {
    Frame {
        title: title.to_string(),
        me: Some(Me::of(&signed.session.user)),
        csrf: Some(signed.csrf.clone()),
        nav,
        steps_only: signed.session.pending.is_some(),
        notice: None,
    }
}

fn see_other_with_cookie(cookie: axum::http::HeaderValue, to: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, cookie);
    (headers, Redirect::to(to)).into_response()
}

// ------------------------------------------------------------ logging in

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    username: String,
    password: String,
    /// The 6-digit code, or a recovery code.
    code: String,
    /// `code` when the form was the second step.
    step: String,
}

/// What the login page shows: the first step, or the code step for `username`.
fn login_form(
    status: StatusCode,
    step: &str,
    username: &str,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    let frame = Frame {
        notice,
        ..Frame::anonymous("Log in")
    };
    page(
        status,
        "login.html",
        &frame,
        context! { step, username, error },
    )
}

/// The login form; someone already logged in goes on to the dashboard.
#[tracing::instrument(skip_all)]
pub async fn login_page(signed: Option<Signed>, RawQuery(query): RawQuery) -> Response {
    if signed.is_some() {
        return Redirect::to("/console/").into_response();
    }
    login_form(StatusCode::OK, "password", "", None, note(query.as_deref()))
}

/// Logs in with the same domain function as the API. A right password
/// without the needed code shows the code step; a login sets the session
/// cookie and goes on to the dashboard, or to a step that must come first.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    _: SameOrigin,
    Meta(actor): Meta,
    ip: ClientIp,
    form: std::result::Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            "password",
            "",
            Some("The form could not be read. Fill it in again.".into()),
            None,
        );
    };
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    let is_totp = !code.is_empty() && code.chars().all(|c| c.is_ascii_digit());
    let attempt = Attempt {
        username: form.username.trim(),
        password: &form.password,
        totp: is_totp.then_some(code.as_str()),
        recovery_code: (!is_totp && !code.is_empty()).then_some(code.as_str()),
        client_ip: ip.0,
    };
    let now = state.now();
    let step = if form.step == "code" {
        "code"
    } else {
        "password"
    };
    let username = attempt.username;
    match login::login(&state.db, &state.settings, &actor, &attempt, None, now).await {
        Ok((_, Opened { token, expires_at })) => {
            let max_age = (expires_at.micros() - now.micros()) / 1_000_000;
            let session = match sessions::from_token(&state.db, &state.settings, &token, now).await
            {
                Ok(s) => s,
                Err(e) => return Refusal::from(e).into_response(),
            };
            let to = session.pending.map_or("/console/", step_path);
            match session_cookie(&state, &token, max_age) {
                Ok(cookie) => see_other_with_cookie(cookie, to),
                Err(e) => Refusal::from(e).into_response(),
            }
        }
        Err(Error::Refused {
            code: "totp_required",
            ..
        }) => login_form(StatusCode::OK, "code", username, None, None),
        Err(e) => match form_message(e) {
            Ok((status, message)) => login_form(status, step, username, Some(message), None),
            Err(refusal) => refusal.into_response(),
        },
    }
}

/// Logs out: the session ends and the cookie goes.
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    meta: Meta,
    SignedForm { signed, .. }: SignedForm<NoFields>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    if let Err(e) = sessions::logout(&state.db, &actor, &signed.session, state.now()).await {
        return Refusal::from(e).into_response();
    }
    match session_cookie(&state, "", 0) {
        Ok(cookie) => see_other_with_cookie(cookie, "/console/login?note=logged_out"),
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// A form with no fields of its own (only the CSRF token).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

// ------------------------------------------------------------ the steps

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new: String,
    again: String,
}

fn password_form(signed: &Signed, status: StatusCode, error: Option<String>) -> Response {
    let forced = signed.session.pending == Some(Pending::PasswordChange);
    page(
        status,
        "password.html",
        &frame(signed, "Choose a new password", ""),
        context! { forced, error },
    )
}

pub async fn password_page(signed: Signed) -> Response {
    password_form(&signed, StatusCode::OK, None)
}

/// Changes one's own password; the other logins of the user end.
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AppState>,
    meta: Meta,
    SignedForm { signed, form }: SignedForm<PasswordForm>,
) -> Response {
    if form.new != form.again {
        return password_form(
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("The two new passwords are not the same. Type the new one twice.".into()),
        );
    }
    let actor = actor_of(&signed.session, meta);
    let now = state.now();
    let changed = users::change_own_password(
        &state.db,
        &actor,
        &signed.session,
        &form.current,
        &form.new,
        now,
    )
    .await;
    if let Err(e) = changed {
        return match form_message(e) {
            Ok((status, message)) => password_form(&signed, status, Some(message)),
            Err(refusal) => refusal.into_response(),
        };
    }
    // The same session, now without the forced change: is there another step?
    let to = match sessions::from_token(&state.db, &state.settings, &signed.token, now).await {
        Ok(s) if s.pending == Some(Pending::TotpEnrolment) => {
            "/console/two-step?note=password_changed"
        }
        Ok(_) => "/console/?note=password_changed",
        Err(e) => return Refusal::from(e).into_response(),
    };
    Redirect::to(to).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

/// The enrolment page: the QR code, the secret to type in, and the code field.
async fn enrol_form(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    let enrolment = match totp::start_enrolment(&state.db, &signed.session, true).await {
        Ok(e) => e,
        Err(e) => return Refusal::from(e).into_response(),
    };
    // The secret in groups of four, for typing in by hand.
    let grouped = enrolment
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let required = signed.session.pending == Some(Pending::TotpEnrolment);
    let frame = Frame {
        notice,
        ..frame(signed, "Set up two-step login", "")
    };
    page(
        status,
        "two_step.html",
        &frame,
        context! {
            state => "enrol",
            required,
            secret => grouped,
            // Made here by the qrcode crate from the otpauth address: safe to embed.
            qr_svg => Value::from_safe_string(enrolment.qr_svg),
            error,
        },
    )
}

/// Two-step login: set it up (the QR code), or see that it is on.
#[tracing::instrument(skip_all)]
pub async fn two_step_page(
    State(state): State<AppState>,
    signed: Signed,
    RawQuery(query): RawQuery,
) -> Response {
    if signed.session.pending == Some(Pending::PasswordChange) {
        return Refusal::step(Pending::PasswordChange).into_response();
    }
    if signed.session.user.totp_enabled {
        return page(
            StatusCode::OK,
            "two_step.html",
            &frame(&signed, "Two-step login", ""),
            context! { state => "on" },
        );
    }
    enrol_form(
        &state,
        &signed,
        StatusCode::OK,
        None,
        note(query.as_deref()),
    )
    .await
}

/// Confirms two-step login with a code from the app, then shows the
/// recovery codes once.
#[tracing::instrument(skip_all)]
pub async fn two_step_confirm(
    State(state): State<AppState>,
    meta: Meta,
    SignedForm { signed, form }: SignedForm<CodeForm>,
) -> Response {
    let actor = actor_of(&signed.session, meta);
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    match totp::finish_enrolment(&state.db, &actor, &signed.session, &code, state.now()).await {
        Ok(codes) => {
            let frame = Frame {
                steps_only: false,
                ..frame(&signed, "Your recovery codes", "")
            };
            page(
                StatusCode::OK,
                "two_step.html",
                &frame,
                context! { state => "codes", codes },
            )
        }
        Err(e) => match form_message(e) {
            Ok((status, message)) => enrol_form(&state, &signed, status, Some(message), None).await,
            Err(refusal) => refusal.into_response(),
        },
    }
}

// ------------------------------------------------------------ the dashboard

/// One total on the dashboard; `key` names it in `/console/live.json`.
#[derive(Debug, Serialize)]
struct Tile {
    key: &'static str,
    label: &'static str,
    group: &'static str,
    value: String,
}

/// The totals of `GET /api/v1/stats`, as the dashboard names them.
fn totals(stats: &Stats) -> [(&'static str, &'static str, &'static str, i64); 10] {
    [
        ("scans_today", "Scans today", "bags", stats.scans_today),
        ("parents", "Parent bags", "bags", stats.parents),
        (
            "complete_parents",
            "Full parent bags",
            "bags",
            stats.complete_parents,
        ),
        ("children", "Child bags", "bags", stats.children),
        ("links", "Children in a parent", "bags", stats.links),
        ("bags", "All bags", "bags", stats.bags),
        ("bills_new", "New", "bills", stats.bills.new),
        (
            "bills_in_progress",
            "In progress",
            "bills",
            stats.bills.in_progress,
        ),
        ("bills_ready", "Ready to close", "bills", stats.bills.ready),
        ("bills_closed", "Closed", "bills", stats.bills.closed),
    ]
}

async fn current_totals(state: &AppState) -> Result<Stats> {
    let today = counters::day_of(state.now().time(), state.settings.utc_offset);
    counters::stats(&state.db, today).await
}

#[derive(Debug, Serialize)]
struct BillRow {
    code: String,
    status: &'static str,
    ready: bool,
    parents: u32,
    capacity: u32,
    destination: String,
    vehicle: String,
}

impl BillRow {
    fn of(b: BillSummary) -> BillRow {
        BillRow {
            ready: b.status == BillStatus::Ready,
            status: match b.status {
                BillStatus::New => "New",
                BillStatus::InProgress => "In progress",
                BillStatus::Ready => "Ready to close",
                BillStatus::Closed => "Closed",
            },
            code: b.code,
            parents: b.parent_count,
            capacity: b.capacity,
            destination: b.destination.unwrap_or_default(),
            vehicle: b.vehicle_number.unwrap_or_default(),
        }
    }
}

/// Open bills with parents on them: in progress, then ready to close.
async fn bills_in_progress(state: &AppState, signed: &Signed) -> Result<Vec<BillRow>> {
    let mut rows = Vec::new();
    for status in [BillStatus::InProgress, BillStatus::Ready] {
        let page = bills::list(
            &state.db,
            &state.settings,
            &signed.session.user,
            BillFilter {
                status: Some(status),
                limit: DASHBOARD_BILLS,
                ..BillFilter::default()
            },
        )
        .await?;
        rows.extend(page.items.into_iter().map(BillRow::of));
    }
    Ok(rows)
}

#[derive(Debug, Serialize)]
struct StationRow {
    name: String,
    /// `active`, `quiet`, `never` or `revoked`: also the CSS class.
    state: &'static str,
    state_label: &'static str,
    seen: String,
    seen_at: String,
    registered: String,
}

async fn station_rows(state: &AppState) -> Result<Vec<StationRow>> {
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
            StationRow {
                name: s.name,
                state: st,
                state_label: label,
                seen: seen.map_or_else(|| "never".into(), |t| pages::ago(t, now)),
                seen_at: seen.map_or_else(String::new, |t| pages::moment(t, offset)),
                registered: pages::moment(s.created_at.time(), offset),
            }
        })
        .collect())
}

/// The dashboard: live totals for everyone; bills in progress for billers
/// and admins; the stations for admins.
#[tracing::instrument(skip_all)]
pub async fn dashboard(
    State(state): State<AppState>,
    Ready(signed): Ready,
    RawQuery(query): RawQuery,
) -> Response {
    match dashboard_page(&state, &signed, note(query.as_deref())).await {
        Ok(r) => r,
        Err(e) => Refusal::from(e).into_response(),
    }
}

async fn dashboard_page(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
) -> Result<Response> {
    let stats = current_totals(state).await?;
    let tiles: Vec<Tile> = totals(&stats)
        .into_iter()
        .map(|(key, label, group, n)| Tile {
            key,
            label,
            group,
            value: count(n),
        })
        .collect();
    let me = Me::of(&signed.session.user);
    let bills = if me.is_billing {
        Some(bills_in_progress(state, signed).await?)
    } else {
        None
    };
    let stations = if me.is_admin {
        Some(station_rows(state).await?)
    } else {
        None
    };
    let active = stations
        .as_ref()
        .map_or(0, |s| s.iter().filter(|r| r.state == "active").count());
    let frame = Frame {
        notice,
        ..frame(signed, "Dashboard", "dashboard")
    };
    Ok(page(
        StatusCode::OK,
        "dashboard.html",
        &frame,
        context! {
            tiles => Value::from(Serde(&tiles)),
            bills => Value::from(Serde(&bills)),
            stations => Value::from(Serde(&stations)),
            active,
            active_minutes => ACTIVE_MINUTES,
            updated => pages::clock(state.now().time(), state.settings.utc_offset),
            live_every => LIVE_EVERY_MS,
        },
    ))
}

/// What the dashboard's script polls: the totals by their tile keys.
#[derive(Debug, Serialize)]
pub struct Live {
    pub totals: std::collections::BTreeMap<&'static str, i64>,
    /// The server's time of day, as the page shows it.
    pub updated: String,
}

#[tracing::instrument(skip_all)]
pub async fn live(State(state): State<AppState>, _caller: Polling) -> Result<Json<Live>> {
    let stats = current_totals(&state).await?;
    Ok(Json(Live {
        totals: totals(&stats)
            .into_iter()
            .map(|(key, _, _, n)| (key, n))
            .collect(),
        updated: pages::clock(state.now().time(), state.settings.utc_offset),
    }))
}

// ------------------------------------------------------------ stations

/// Every registered station with when it was last seen (admins).
#[tracing::instrument(skip_all)]
pub async fn stations(State(state): State<AppState>, AdminPage(signed): AdminPage) -> Response {
    match station_rows(&state).await {
        Ok(rows) => page(
            StatusCode::OK,
            "stations.html",
            &frame(&signed, "Stations", "stations"),
            context! {
                stations => Value::from(Serde(&rows)),
                active_minutes => ACTIVE_MINUTES,
            },
        ),
        Err(e) => Refusal::from(e).into_response(),
    }
}
