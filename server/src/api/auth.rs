//! Logging in and out, who am I, changing one's password, and two-step login.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use traitortrack_protocol::{LoginRequest, LoginResponse, UserInfo};

use super::extract::{
    AccountCaller, ApiJson, Caller, ClientIp, Meta, OptionalStation, TokenSource,
};
use crate::error::{Error, Result};
use crate::login::{self, Attempt};
use crate::sessions::{self, Opened, Pending};
use crate::{stations, totp, users, AppState};

fn attempt<'a>(req: &'a LoginRequest, ip: ClientIp) -> Attempt<'a> {
    Attempt {
        username: &req.username,
        password: &req.password,
        totp: req.totp.as_deref(),
        recovery_code: req.recovery_code.as_deref(),
        client_ip: ip.0,
    }
}

/// Log in for the API or a station: the answer carries a bearer token.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    OptionalStation(station): OptionalStation,
    Meta(actor): Meta,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    if let Some(station) = &station {
        stations::touch(&state.db, station, state.now()).await?;
    }
    let (user, opened) = login::login(
        &state.db,
        &state.settings,
        &actor,
        &attempt(&req, ip),
        station.as_ref(),
        state.now(),
    )
    .await?;
    Ok(Json(LoginResponse {
        token: opened.token,
        expires_at: opened.expires_at.time(),
        user: user.info(),
    }))
}

/// The answer to a console login: the token stays in the HttpOnly cookie.
#[derive(Debug, Serialize)]
pub struct ConsoleSession {
    pub csrf_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
    pub user: UserInfo,
    pub pending: Option<&'static str>,
}

fn pending_name(pending: Option<Pending>) -> Option<&'static str> {
    pending.map(|p| match p {
        Pending::PasswordChange => "password_change",
        Pending::TotpEnrolment => "two_step_enrolment",
    })
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when served over TLS.
pub fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue> {
    let secure = if state.settings.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        sessions::COOKIE
    ))
    .map_err(|e| Error::Internal(format!("session cookie: {e}")))
}

/// Log in for the console: the session travels in a cookie, and the answer
/// carries the CSRF token its state-changing requests must send.
#[tracing::instrument(skip_all)]
pub async fn console_login(
    State(state): State<AppState>,
    Meta(actor): Meta,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(HeaderMap, Json<ConsoleSession>)> {
    let now = state.now();
    let (user, Opened { token, expires_at }) = login::login(
        &state.db,
        &state.settings,
        &actor,
        &attempt(&req, ip),
        None,
        now,
    )
    .await?;
    let mut headers = HeaderMap::new();
    let max_age = (expires_at.micros() - now.micros()) / 1_000_000;
    headers.insert(header::SET_COOKIE, session_cookie(&state, &token, max_age)?);
    let session = sessions::from_token(&state.db, &state.settings, &token, now).await?;
    Ok((
        headers,
        Json(ConsoleSession {
            csrf_token: sessions::csrf_token(&token),
            expires_at: expires_at.time(),
            user: user.info(),
            pending: pending_name(session.pending),
        }),
    ))
}

#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    caller: AccountCaller,
    meta: Meta,
) -> Result<(StatusCode, HeaderMap)> {
    let actor = super::extract::actor_of(&caller.session, meta);
    sessions::logout(&state.db, &actor, &caller.session, state.now()).await?;
    let mut headers = HeaderMap::new();
    if caller.source == TokenSource::Cookie {
        headers.insert(header::SET_COOKIE, session_cookie(&state, "", 0)?);
    }
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Ends every session of the caller, on every device.
#[tracing::instrument(skip_all)]
pub async fn logout_everywhere(
    State(state): State<AppState>,
    caller: AccountCaller,
    meta: Meta,
) -> Result<StatusCode> {
    let actor = super::extract::actor_of(&caller.session, meta);
    let mut tx = state.db.begin().await?;
    sessions::revoke_all(
        &mut tx,
        &actor,
        &caller.session.user,
        None,
        "own_request",
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is logged in, and what they must do first, if anything.
#[derive(Debug, Serialize)]
pub struct Me {
    #[serde(flatten)]
    pub user: UserInfo,
    pub two_step: bool,
    pub pending: Option<&'static str>,
}

pub async fn me(caller: AccountCaller) -> Json<Me> {
    let session = caller.session;
    Json(Me {
        user: session.user.info(),
        two_step: session.user.totp_enabled,
        pending: pending_name(session.pending),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes one's own password; every other session of the user ends.
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AccountCaller,
    meta: Meta,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode> {
    let session = &caller.session;
    let actor = super::extract::actor_of(session, meta);
    users::change_own_password(
        &state.db,
        &actor,
        session,
        &req.current_password,
        &req.new_password,
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts two-step enrolment: the secret, its otpauth address and a QR code.
#[tracing::instrument(skip_all)]
pub async fn totp_enrol(
    State(state): State<AppState>,
    caller: AccountCaller,
) -> Result<Json<totp::Enrolment>> {
    totp::start_enrolment(&state.db, &caller.session, false)
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

#[derive(Debug, Serialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Confirms enrolment with a code from the app; answers the recovery codes once.
#[tracing::instrument(skip_all)]
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: AccountCaller,
    meta: Meta,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodes>> {
    let session = &caller.session;
    let actor = super::extract::actor_of(session, meta);
    let codes = totp::finish_enrolment(&state.db, &actor, session, &req.code, state.now()).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpOff {
    pub password: String,
}

/// Turns one's own two-step login off (not for admins while it is required).
#[tracing::instrument(skip_all)]
pub async fn totp_disable(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    ApiJson(req): ApiJson<TotpOff>,
) -> Result<StatusCode> {
    let session = &caller.0;
    if session.user.role == traitortrack_protocol::Role::Admin && state.settings.require_admin_totp
    {
        return Err(Error::forbidden(
            "two_step_required",
            "Admins must keep two-step login on.",
        ));
    }
    users::check_password(&session.user, &req.password).await?;
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    totp::disable(&mut tx, &actor, &session.user, state.now()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
