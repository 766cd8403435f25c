//! The one error type of the server: a refusal in plain words with a stable
//! code, or an internal failure whose cause is logged and never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use traitortrack_protocol::{ErrorBody, ErrorDetail};

/// What kind of refusal, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadInput,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    UnsupportedMediaType,
    Unavailable,
    /// Too many attempts: try again after this many seconds.
    TooManyRequests(u32),
}

impl Kind {
    fn status(self) -> StatusCode {
        match self {
            Kind::BadInput => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal the person can act on.
    #[error("{message}")]
    Refused {
        kind: Kind,
        code: &'static str,
        message: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn refused(kind: Kind, code: &'static str, message: impl Into<String>) -> Error {
        Error::Refused {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Error {
        Error::refused(Kind::BadInput, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::refused(Kind::Conflict, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Error {
        Error::refused(Kind::NotFound, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::refused(Kind::Forbidden, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Error {
        Error::refused(Kind::Unauthorized, code, message)
    }
}

impl From<traitortrack_protocol::CodeError> for Error {
    fn from(e: traitortrack_protocol::CodeError) -> Error {
        Error::bad_input(e.code(), e.message())
    }
}

pub fn body(code: &str, message: &str) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
        },
    })
}

/// An error answer: the status, the JSON body, and the code for the request
/// metrics (see [`crate::metrics`]).
pub fn answer(status: StatusCode, code: &'static str, message: &str) -> Response {
    let mut response = (status, body(code, message)).into_response();
    response
        .extensions_mut()
        .insert(crate::metrics::RefusalCodes::one(code));
    response
}

fn retry_after(mut response: Response, secs: u32) -> Response {
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(secs.max(1)),
    );
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Refused {
                kind: Kind::TooManyRequests(secs),
                code,
                message,
            } => retry_after(answer(StatusCode::TOO_MANY_REQUESTS, code, &message), secs),
            Error::Refused {
                kind,
                code,
                message,
            } => answer(kind.status(), code, &message),
            Error::Db(e) if crate::db::is_transient(&e) => {
                tracing::warn!(error = %e, "database busy");
                retry_after(
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "retry_later",
                        "The server is busy. Try again in a moment.",
                    ),
                    1,
                )
            }
            other => {
                tracing::error!(error = %other, "request failed");
                answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on the server. It has been logged; try again.",
                )
            }
        }
    }
}
