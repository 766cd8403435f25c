//! Logging in and out, and the steps a user must take before anything else:
//! a forced password change and two-step enrolment.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::Value;
use serde::Deserialize;

use super::access::{SameOrigin, Signed, SignedForm};
use super::pages::{form_message, page, step_path, Frame, Refusal};
use super::{frame, note, see_other_with_cookie, NoFields};
use crate::api::auth::session_cookie;
use crate::api::extract::{actor_of, ClientIp, Meta};
use crate::error::Error;
use crate::login::{self, Attempt};
use crate::sessions::{self, Opened, Pending};
use crate::{totp, users, AppState};
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
