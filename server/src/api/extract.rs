//! Request extractors that refuse bad input with the API's one error shape.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::audit::{anonymize_ip, Actor};
use crate::error::{Error, Kind};
use crate::sessions::{self, Session};
use crate::stations::{self, Station};
use crate::AppState;

/// A JSON body; wrong content type, size or shape get a 4xx with a plain message.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(Error::refused(
                Kind::UnsupportedMediaType,
                "wrong_content_type",
                "Send the body as JSON, with Content-Type: application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::refused(
                    Kind::TooLarge,
                    "body_too_large",
                    "The request is too large. Send less at a time.",
                )
            } else {
                Error::bad_input("bad_body", "The request body could not be read.")
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let message = match e.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!(
                        "The body is not valid JSON (line {}, column {}).",
                        e.line(),
                        e.column()
                    )
                }
                _ => format!("The body does not have the expected fields: {e}."),
            };
            Error::bad_input("bad_json", message)
        })
    }
}

/// An optional JSON body: no body at all (and no content type) is `None`.
impl<S, T> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Error> {
        let no_type = !req.headers().contains_key(header::CONTENT_TYPE);
        let no_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0");
        if no_type && no_length {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// Query parameters; a bad one gets a 400 with a plain message.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from(query).map(ApiQuery)
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| Error::bad_input("bad_query", "The address has a malformed query."))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        Error::bad_input(
            "bad_query",
            format!("A query parameter is not valid: {}.", e.body_text()),
        )
    })
}

/// Who is calling and from where: the request id and the anonymised address.
pub struct Meta(pub Actor);

impl FromRequestParts<AppState> for Meta {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Error> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(64).collect());
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| anonymize_ip(ci.0.ip()));
        Ok(Meta(Actor {
            request_id,
            ip,
            ..Actor::default()
        }))
    }
}

/// Where a session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    /// The console cookie: state-changing requests must carry the CSRF token.
    Cookie,
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The console cookie's session token, if the request carries one.
pub fn console_cookie(parts: &Parts) -> Option<&str> {
    cookie_value(parts, sessions::COOKIE).filter(|t| !t.is_empty())
}

/// The session token of a request: `Authorization: Bearer …` or the console cookie.
pub fn session_token(parts: &Parts) -> Option<(&str, TokenSource)> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match bearer {
        Some(token) => Some((token, TokenSource::Bearer)),
        None => cookie_value(parts, sessions::COOKIE).map(|t| (t, TokenSource::Cookie)),
    }
}

/// Any logged-in session, even one with a step still to take (a forced
/// password change, two-step enrolment): for the routes that take those steps.
pub struct AccountCaller {
    pub session: Session,
    pub source: TokenSource,
}

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let (token, source) = session_token(parts).ok_or_else(|| {
            Error::unauthorized("not_logged_in", "Log in first (no login token was sent).")
        })?;
        if source == TokenSource::Cookie && !parts.method.is_safe() {
            let sent = parts
                .headers
                .get(sessions::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), sessions::csrf_token(token).as_bytes()) {
                return Err(Error::forbidden(
                    "csrf_failed",
                    "This request did not come from a TraitorTrack page. Reload the page and try again.",
                ));
            }
        }
        let session = state
            .sessions
            .from_token(&state.db, &state.settings, token, state.now())
            .await?;
        Ok(AccountCaller { session, source })
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in user with nothing left to do first: what most routes take.
pub struct Caller(pub Session);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let caller = AccountCaller::from_request_parts(parts, state).await?;
        caller.session.check_ready()?;
        Ok(Caller(caller.session))
    }
}

/// The caller's full address (the audit log keeps only an anonymised one).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0.ip()),
        ))
    }
}

impl Caller {
    /// The audit actor for this caller's request.
    pub fn actor(&self, meta: Meta) -> Actor {
        actor_of(&self.0, meta)
    }
}

/// The audit actor for a session's request.
pub fn actor_of(session: &Session, meta: Meta) -> Actor {
    Actor {
        station_id: session.station_id,
        ..meta.0.as_user(session.user.id, &session.user.username)
    }
}

/// The station header, if present and valid; absent is allowed.
pub struct OptionalStation(pub Option<Station>);

pub const STATION_KEY: &str = "x-station-key";

async fn station_from(parts: &Parts, state: &AppState) -> Result<Option<Station>, Error> {
    match parts.headers.get(STATION_KEY) {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map_err(|_| {
                Error::unauthorized("bad_station_key", "This station key is not valid.")
            })?;
            let mut station = state.station_keys.station(&state.db, key.trim()).await?;
            station.report = stations::Report::parse(
                parts
                    .headers
                    .get(traitortrack_protocol::STATION_VERSION_HEADER)
                    .map(|v| v.as_bytes()),
                parts
                    .headers
                    .get(traitortrack_protocol::STATION_QUEUE_HEADER)
                    .map(|v| v.as_bytes()),
            )?;
            Ok(Some(station))
        }
    }
}

impl FromRequestParts<AppState> for OptionalStation {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        station_from(parts, state).await.map(OptionalStation)
    }
}

/// A registered station, from `X-Station-Key`, with what it reports of
/// itself (`X-Station-Version`, `X-Station-Queue`).
pub struct StationCaller(pub Station);

impl FromRequestParts<AppState> for StationCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        station_from(parts, state)
            .await?
            .map(StationCaller)
            .ok_or_else(|| {
                Error::unauthorized(
                    "missing_station_key",
                    "Only a registered station can send events (no X-Station-Key was sent).",
                )
            })
    }
}

/// Route-level role gates: the role is checked before the body is read, so a
/// caller without the role gets 403 whatever they send. The domain functions
/// check again (the console calls them too).
macro_rules! role_gate {
    ($(#[$doc:meta])* $name:ident, $roles:expr, $what:literal) => {
        $(#[$doc])*
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.0.user.require($roles, $what)?;
                Ok($name(caller))
            }
        }
    };
}

role_gate!(
    /// An admin.
    Admin,
    &[traitortrack_protocol::Role::Admin],
    "use this (it is for admins)"
);
role_gate!(
    /// An admin or a biller.
    Billing,
    &[
        traitortrack_protocol::Role::Admin,
        traitortrack_protocol::Role::Biller
    ],
    "work on bills"
);

/// A numeric id as the one path parameter (`/…/{id}`); anything else gets a
/// 400 in plain words.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::bad_input("bad_id", "The address needs a number as the id."))?;
        raw.trim().parse().map(PathId).map_err(|_| {
            let shown: String = raw.chars().take(40).collect();
            Error::bad_input(
                "bad_id",
                format!("{shown:?} is not an id: an id is a whole number."),
            )
        })
    }
}
