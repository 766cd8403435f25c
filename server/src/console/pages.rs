//! Rendering console pages: the templates and static files built into the
//! binary, the frame every page shares, the plain pages for a refusal, and
//! numbers and times as people read them.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::value::{Serde, Value};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};
use traitortrack_protocol::Role;

use crate::error::{Error, Kind};
use crate::sessions::Pending;
use crate::users::User;

/// Every template, by name, as built into the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("password.html", include_str!("templates/password.html")),
    ("two_step.html", include_str!("templates/two_step.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("stations.html", include_str!("templates/stations.html")),
    ("users.html", include_str!("templates/users.html")),
    ("user.html", include_str!("templates/user.html")),
    ("promotions.html", include_str!("templates/promotions.html")),
    (
        "notifications.html",
        include_str!("templates/notifications.html"),
    ),
    ("audit.html", include_str!("templates/audit.html")),
    (
        "station_confirm.html",
        include_str!("templates/station_confirm.html"),
    ),
    (
        "station_key.html",
        include_str!("templates/station_key.html"),
    ),
    ("bags.html", include_str!("templates/bags.html")),
    ("bag.html", include_str!("templates/bag.html")),
    ("refusal.html", include_str!("templates/refusal.html")),
    ("bills.html", include_str!("templates/bills.html")),
    ("bill.html", include_str!("templates/bill.html")),
    ("bill_sheet.html", include_str!("templates/bill_sheet.html")),
    (
        "bills_summary.html",
        include_str!("templates/bills_summary.html"),
    ),
    ("health.html", include_str!("templates/health.html")),
    ("imports.html", include_str!("templates/imports.html")),
    ("import.html", include_str!("templates/import.html")),
    ("import_run.html", include_str!("templates/import_run.html")),
    ("downloads.html", include_str!("templates/downloads.html")),
];

/// The console's style sheet and its one script.
pub const CSS: &str = include_str!("static/console.css");
pub const JS: &str = include_str!("static/console.js");

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // A misspelt name in a template is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // Caught by this module's test before any release.
                tracing::error!(template = name, error = %e, "a console template does not compile");
            }
        }
        env
    })
}

/// The address of a static file, with a digest of its content so that a
/// browser may keep it for a year and still get a changed one at once.
fn asset_url(name: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/console/static/{name}?v={short}")
}

fn css_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| asset_url("console.css", CSS))
}

fn js_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| asset_url("console.js", JS))
}

/// A static file's answer: kept by the browser for a year (its address
/// changes with its content).
pub fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The signed-in person as the page header shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    pub username: String,
    pub role: &'static str,
    pub area: Option<String>,
    pub is_admin: bool,
    pub is_billing: bool,
}

impl Me {
    pub fn of(user: &User) -> Me {
        Me {
            username: user.username.clone(),
            role: role_name(user.role),
            area: user.dispatch_area.clone(),
            is_admin: user.role == Role::Admin,
            is_billing: matches!(user.role, Role::Admin | Role::Biller),
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Biller => "Biller",
        Role::Dispatcher => "Dispatcher",
    }
}

/// What every page's frame shows: the title, who is signed in (with the
/// CSRF token for the log-out button) and which menu entry is open.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub title: String,
    pub me: Option<Me>,
    pub csrf: Option<String>,
    /// The menu entry to mark: `dashboard`, `bills`, `stations`, or empty.
    pub nav: &'static str,
    /// Only the log-out button in the header: a step must be taken first.
    pub steps_only: bool,
    /// A line of good news at the top (after an action).
    pub notice: Option<&'static str>,
    /// Unread notifications, for the menu's badge (when counted).
    pub unread: Option<i64>,
}

impl Frame {
    /// The frame of a page for nobody signed in.
    pub fn anonymous(title: &str) -> Frame {
        Frame {
            title: title.to_string(),
            me: None,
            csrf: None,
            nav: "",
            steps_only: false,
            notice: None,
            unread: None,
        }
    }
}

/// Renders a page: the frame's values and the page's own.
pub fn page(status: StatusCode, template: &str, frame: &Frame, own: Value) -> Response {
    let ctx = context! {
        css => Value::from_safe_string(css_url().to_string()),
        js => Value::from_safe_string(js_url().to_string()),
        frame => Value::from(Serde(frame)),
        ..own
    };
    let rendered = templates()
        .get_template(template)
        .and_then(|t| t.render(ctx));
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "a console page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on the server. It has been logged; try again.",
            )
                .into_response()
        }
    }
}

/// Why a console request does not get its page.
#[derive(Debug)]
pub enum Refusal {
    /// Elsewhere first: the login page, or a step the user must take.
    SeeOther(String),
    /// A plain page saying why.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
}

impl Refusal {
    /// To the login page, with a note when a login ended.
    pub fn log_in(note: Option<&str>) -> Refusal {
        Refusal::SeeOther(match note {
            Some(n) => format!("/console/login?note={n}"),
            None => "/console/login".into(),
        })
    }

    /// To the page of a step the user must take first.
    pub fn step(pending: Pending) -> Refusal {
        Refusal::SeeOther(step_path(pending).into())
    }

    pub fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal::Page {
            status: StatusCode::FORBIDDEN,
            title: "Not for your account",
            message: message.into(),
        }
    }

    pub fn bad_form(message: impl Into<String>) -> Refusal {
        Refusal::Page {
            status: StatusCode::BAD_REQUEST,
            title: "This form could not be read",
            message: message.into(),
        }
    }
}

/// The page of a step the user must take before anything else.
pub fn step_path(pending: Pending) -> &'static str {
    match pending {
        Pending::PasswordChange => "/console/password",
        Pending::TotpEnrolment => "/console/two-step",
    }
}

/// A server failure: logged here, shown in plain words.
fn failure(e: &Error) -> Refusal {
    if let Error::Db(db) = e {
        if crate::db::is_transient(db) {
            tracing::warn!(error = %db, "database busy");
            return Refusal::Page {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "The server is busy",
                message: "The server is busy. Wait a moment and reload the page.".into(),
            };
        }
    }
    tracing::error!(error = %e, "console request failed");
    Refusal::Page {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        title: "Something went wrong",
        message: "Something went wrong on the server. It has been logged; try again.".into(),
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        match e {
            Error::Refused {
                kind: Kind::Unauthorized,
                code,
                ..
            } => Refusal::log_in(Some(if code == "session_idle" {
                "idle"
            } else {
                "ended"
            })),
            Error::Refused {
                kind: Kind::Forbidden,
                message,
                ..
            } => Refusal::forbidden(message),
            Error::Refused { kind, message, .. } => Refusal::Page {
                status: form_status(kind),
                title: match kind {
                    Kind::NotFound => "Not found",
                    Kind::TooManyRequests(_) => "Too many tries",
                    _ => "That did not work",
                },
                message,
            },
            other => failure(&other),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SeeOther(to) => Redirect::to(&to).into_response(),
            Refusal::Page {
                status,
                title,
                message,
            } => page(
                status,
                "refusal.html",
                &Frame::anonymous(title),
                context! { heading => title, message },
            ),
        }
    }
}

/// The status of a form page shown again with a refusal of what was typed:
/// 422 for input the server understood and refused; limits keep their own.
pub fn form_status(kind: Kind) -> StatusCode {
    match kind {
        Kind::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The plain message of a refusal to show on a form, or the failure page
/// when it was the server that failed.
pub fn form_message(e: Error) -> Result<(StatusCode, String), Refusal> {
    match e {
        Error::Refused { kind, message, .. } => Ok((form_status(kind), message)),
        other => Err(failure(&other)),
    }
}

/// A count with thousands separated: `1,234,567` (the script does the same).
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A moment as the warehouse reads it: `22 Nov 2026, 14:05`.
pub fn moment(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{} {} {}, {:02}:{:02}",
        t.day(),
        &t.month().to_string()[..3],
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// The time of day as the warehouse reads it: `14:05:09`.
pub fn clock(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// How long ago, in plain words: `just now`, `5 minutes ago`, `3 days ago`.
pub fn ago(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    let (n, unit) = match secs {
        0..=59 => return "just now".into(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                panic!("{name}: {e:#}");
            }
        }
    }

    #[test]
    fn counts_and_times_read_plainly() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-12_345), "-12,345");
        let t = time::macros::datetime!(2026-11-22 08:35:09 UTC);
        let ist = time::macros::offset!(+05:30);
        assert_eq!(moment(t, ist), "22 Nov 2026, 14:05");
        assert_eq!(clock(t, ist), "14:05:09");
        let later = |s| t + time::Duration::seconds(s);
        assert_eq!(ago(t, later(5)), "just now");
        assert_eq!(ago(t, later(60)), "1 minute ago");
        assert_eq!(ago(t, later(7_300)), "2 hours ago");
        assert_eq!(ago(t, later(3 * 86_400)), "3 days ago");
    }

    #[test]
    fn refusal_pages_render_with_their_status() {
        let resp = Refusal::forbidden("A dispatcher cannot use this.").into_response();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = Refusal::log_in(Some("ended")).into_response();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            resp.headers()[header::LOCATION],
            "/console/login?note=ended"
        );
    }
}
