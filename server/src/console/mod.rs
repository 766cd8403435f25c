//! The web console: pages the server renders for admins, billers and
//! dispatchers in a browser. Each handler parses, calls the same domain
//! functions as the API, and renders. Templates, the style sheet and the one
//! small script are built into the binary: no files at run time, no build
//! step, and no inline script or style (the CSP forbids them).

mod access;
pub mod account;
pub mod audit;
pub mod bags;
pub mod bills;
pub mod dashboard;
pub mod exports;
pub mod health;
pub mod imports;
pub mod notifications;
mod pages;
pub mod promotions;
pub mod stations;
pub mod users;

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
        "bill_created" => "The bill is made. Now put parent bags on it.",
        "parent_added" => "The parent bag is on the bill.",
        "parent_removed" => "The parent bag is off the bill.",
        "bill_saved" => "The bill's details are saved.",
        "bill_closed" => "The bill is closed.",
        "bill_reopened" => "The bill is open again.",
        "user_created" => "The account is made. The user can log in now.",
        "user_changed" => "The role and area are saved. The user is told in the app.",
        "unchanged" => "Nothing was changed: the role and area are the same as before.",
        "locked" => "The account is locked and its logins have ended.",
        "unlocked" => "The account is unlocked. The user can log in again.",
        "password_set" => {
            "The new password is set. The user must choose their own at the next login."
        }
        "deactivated" => "The account is switched off and its logins have ended.",
        "reactivated" => "The account is switched on again.",
        "logged_out_everywhere" => "Every login of this account has ended.",
        "two_step_reset" => "Two-step login is off for this account. The user can set it up again.",
        "approved" => "The request is approved. The user is told in the app.",
        "rejected" => "The request is turned down. The user is told in the app.",
        "asked" => "Your request is sent. An admin will answer, and you will see the answer here.",
        "read" => "The notification is marked as read.",
        "all_read" => "All your notifications are marked as read.",
        "station_revoked" => "The station is revoked: its key no longer works.",
        "unlinked" => {
            "The bag is taken out of its parent. Its history below shows it, with your reason."
        }
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
        unread: signed.unread,
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
