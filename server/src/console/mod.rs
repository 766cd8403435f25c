//! The web console: pages the server renders for admins, billers and
//! dispatchers in a browser. Each handler parses, calls the same domain
//! functions as the API, and renders. Templates, the style sheet and the one
//! small script are built into the binary: no files at run time, no build
//! step, and no inline script or style (the CSP forbids them).

mod access;
pub mod account;
pub mod dashboard;
pub mod health;
mod pages;
pub mod stations;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub(crate) use access::Polling;
use access::Signed;
use pages::{Frame, Me, Refusal};

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
pub(crate) fn note(query: Option<&str>) -> Option<&'static str> {
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

pub(crate) fn frame(signed: &Signed, title: &str, nav: &'static str) -> Frame {
    Frame {
        title: title.to_string(),
        me: Some(Me::of(&signed.session.user)),
        csrf: Some(signed.csrf.clone()),
        nav,
        steps_only: signed.session.pending.is_some(),
        notice: None,
    }
}

pub(crate) fn see_other_with_cookie(cookie: axum::http::HeaderValue, to: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, cookie);
    (headers, Redirect::to(to)).into_response()
}


/// A form with no fields of its own (only the CSRF token).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}
