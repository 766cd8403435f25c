//! Who may see a console page: the session from the console cookie, the step
//! a user must take first, the role a page needs, and, for every form, the
//! CSRF token in its hidden `csrf` field.
//!
//! No login is a redirect (303) to the login page; a role that may not see a
//! page is a plain 403 page; a form without the right token is a plain 403
//! page and changes nothing.

use axum::extract::{Form, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use traitortrack_protocol::Role;

use super::pages::Refusal;
use crate::api::extract::{console_cookie, constant_time_eq, session_token};
use crate::error::Error;
use crate::sessions::{self, Session};
use crate::{notifications, AppState};

/// A console session from the cookie, even one with a step still to take
/// (a forced password change, two-step enrolment): for the pages of those steps.
pub struct Signed {
    pub session: Session,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
    /// The session's secret token, from the cookie.
    pub token: String,
    /// The user's unread notifications, for the menu's badge: counted for
    /// pages ([`Ready`]), not for forms that only redirect.
    pub unread: Option<i64>,
}

impl Signed {
    /// Counts the user's unread notifications for the menu's badge (one
    /// indexed count).
    pub async fn count_unread(&mut self, state: &AppState) -> Result<(), Refusal> {
        let n = notifications::unread_count(&state.db, self.session.user.id).await?;
        self.unread = Some(n);
        Ok(())
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let token = console_cookie(parts).ok_or(Refusal::log_in(None))?;
        let session = sessions::from_token(&state.db, &state.settings, token, state.now()).await?;
        Ok(Signed {
            session,
            csrf: sessions::csrf_token(token),
            token: token.to_string(),
            unread: None,
        })
    }
}

/// For the login page: a valid console session, or none at all.
impl OptionalFromRequestParts<AppState> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Refusal> {
        Ok(
            <Signed as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// A console session with no step left to take: what most pages need. A
/// session with a step is sent to that step's page.
pub struct Ready(pub Signed);

impl FromRequestParts<AppState> for Ready {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let signed =
            <Signed as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let mut signed = ready(signed)?;
        signed.count_unread(state).await?;
        Ok(Ready(signed))
    }
}

/// Refuses a session with a step still to take: on to that step's page.
fn ready(signed: Signed) -> Result<Signed, Refusal> {
    match signed.session.pending {
        Some(step) => Err(Refusal::step(step)),
        None => Ok(signed),
    }
}

/// A console session of an admin; anyone else gets the 403 page.
pub struct AdminPage(pub Signed);

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let Ready(signed) = Ready::from_request_parts(parts, state).await?;
        signed
            .session
            .user
            .require(&[Role::Admin], "open this page (it is for admins)")?;
        Ok(AdminPage(signed))
    }
}

/// A console form sent by a signed-in user: the session from the cookie
/// (even one with a step to take), a same-origin check, the CSRF token from
/// the form's `csrf` field, then the form's own fields as `T` (missing
/// fields take their defaults). Nothing of `T` is looked at before the token
/// is found right.
pub struct SignedForm<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refusal> {
        let (mut parts, body) = req.into_parts();
        let signed =
            <Signed as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        check_same_origin(&parts)?;
        let req = Request::from_parts(parts, body);
        // A body that is no form (another type, or none) has no token either.
        let fields = match Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(Form(fields)) => fields,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(Refusal::Page {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    title: "This form is too large",
                    message: "The form is too large. Send less at a time.".into(),
                })
            }
            Err(_) => Vec::new(),
        };
        let sent = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str());
        if !constant_time_eq(sent.as_bytes(), signed.csrf.as_bytes()) {
            return Err(csrf_refused());
        }
        let mut map = serde_json::Map::new();
        for (k, v) in fields {
            if k != "csrf" {
                map.entry(k).or_insert(serde_json::Value::String(v));
            }
        }
        let form = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| Refusal::bad_form("Reload the page and fill in the form again."))?;
        Ok(SignedForm { signed, form })
    }
}

/// A [`SignedForm`] of a session with no step left to take.
pub struct ReadyForm<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for ReadyForm<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refusal> {
        let SignedForm { signed, form } = SignedForm::from_request(req, state).await?;
        Ok(ReadyForm {
            signed: ready(signed)?,
            form,
        })
    }
}

/// A [`SignedForm`] of an admin with no step left to take; anyone else
/// gets the 403 page and nothing changes.
pub struct AdminForm<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for AdminForm<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refusal> {
        let ReadyForm { signed, form } = ReadyForm::from_request(req, state).await?;
        signed
            .session
            .user
            .require(&[Role::Admin], "do this (it is for admins)")?;
        Ok(AdminForm { signed, form })
    }
}

fn csrf_refused() -> Refusal {
    Refusal::Page {
        status: StatusCode::FORBIDDEN,
        title: "This form was refused",
        message: "This form did not come from a TraitorTrack page, so nothing was changed. \
                  Go back, reload the page and try again."
            .into(),
    }
}

/// A browser says in `Sec-Fetch-Site` whether a request comes from a page
/// of this same server; a form sent from another site is refused. (Requests
/// without the header, from older browsers or other programs, pass: the CSRF
/// token still guards every signed-in form.) Unlike `Origin` against `Host`,
/// this holds behind a proxy that rewrites `Host`.
pub fn check_same_origin(parts: &Parts) -> Result<(), Refusal> {
    match parts
        .headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err(csrf_refused()),
    }
}

/// A form from a page of this server (see [`check_same_origin`]): for the
/// login form, which has no session and so no CSRF token yet.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refusal> {
        check_same_origin(parts).map(|()| SameOrigin)
    }
}

/// The caller of a page's own polling (the dashboard's totals): a ready
/// session from the cookie or a bearer token, looked at without counting as
/// use, so an open page does not keep an unattended login alive. Refusals
/// are the API's JSON errors (the page's script reads the status).
pub struct Polling(pub Session);

impl FromRequestParts<AppState> for Polling {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let (token, _) = session_token(parts).ok_or_else(|| {
            Error::unauthorized("not_logged_in", "Log in first (no login token was sent).")
        })?;
        let session = sessions::peek(&state.db, &state.settings, token, state.now()).await?;
        session.check_ready()?;
        Ok(Polling(session))
    }
}
