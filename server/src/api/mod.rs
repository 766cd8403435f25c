//! The HTTP surface: `/api/v1` JSON routes, health probes, and the web
//! console's pages (handlers in [`crate::console`]), all in one route table.
//! Handlers parse, call the domain, and shape the answer.

mod areas;
mod audit;
pub(crate) mod auth;
mod bags;
mod bills;
mod events;
mod exports;
pub mod extract;
mod health;
mod imports;
mod notifications;
mod openapi;
mod promotions;
mod stations;
mod stats;
mod users;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::answer;
use crate::AppState;

/// Largest body for ordinary routes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Largest body for an event batch (1,000 events fit with room to spare).
pub const EVENTS_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Who may call a route, as the OpenAPI document states it. The handlers
/// enforce it (with the role checks of the domain); the role matrix test
/// checks each route against its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    Public,
    /// A registered station (`X-Station-Key`).
    Station,
    /// A logged-in user (bearer token or console cookie); roles are checked inside.
    User,
    /// A web console page: the console cookie; without a login the answer is
    /// a redirect (303) to the console's login page. Forms carry the CSRF token.
    Console,
}

/// One route of the API, as listed in the OpenAPI document.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub method: Method,
    pub path: &'static str,
    pub auth: Auth,
    pub summary: &'static str,
}

/// The route table: every route is added here once, with its description.
struct Routes {
    router: Router<AppState>,
    docs: Vec<RouteDoc>,
}

impl Routes {
    fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        auth: Auth,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter(&method), handler));
        self.docs.push(RouteDoc {
            method,
            path,
            auth,
            summary,
        });
        self
    }

    /// Like [`Routes::add`], with its own body limit.
    fn add_limited<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        auth: Auth,
        summary: &'static str,
        limit: usize,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(
            path,
            on(filter(&method), handler).layer(DefaultBodyLimit::max(limit)),
        );
        self.docs.push(RouteDoc {
            method,
            path,
            auth,
            summary,
        });
        self
    }
}

fn filter(method: &Method) -> MethodFilter {
    match *method {
        Method::POST => MethodFilter::POST,
        Method::PATCH => MethodFilter::PATCH,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

fn routes() -> Routes {
    use crate::console;
    use Auth::{Console, Public, Station, User};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PATCH: Method = Method::PATCH;
    const PUT: Method = Method::PUT;
    Routes {
        router: Router::new(),
        docs: Vec::new(),
    }
    .add(
        GET,
        "/healthz",
        Public,
        "Liveness: the process answers",
        stats::healthz,
    )
    .add(
        GET,
        "/readyz",
        Public,
        "Readiness: the database answers",
        stats::readyz,
    )
    .add(
        GET,
        "/api/v1/openapi.json",
        Public,
        "This API's OpenAPI document",
        openapi::document,
    )
    .add(
        POST,
        "/api/v1/auth/login",
        Public,
        "Log in; answers a bearer token",
        auth::login,
    )
    .add(
        POST,
        "/api/v1/auth/session",
        Public,
        "Log in for the console: a session cookie and its CSRF token",
        auth::console_login,
    )
    .add(
        POST,
        "/api/v1/auth/logout",
        User,
        "End this login",
        auth::logout,
    )
    .add(
        POST,
        "/api/v1/auth/logout-everywhere",
        User,
        "End every login of the caller",
        auth::logout_everywhere,
    )
    .add(
        POST,
        "/api/v1/auth/password",
        User,
        "Change one's own password",
        auth::change_password,
    )
    .add(
        POST,
        "/api/v1/auth/totp/enrol",
        User,
        "Start two-step login: secret, otpauth address, QR code",
        auth::totp_enrol,
    )
    .add(
        POST,
        "/api/v1/auth/totp/confirm",
        User,
        "Confirm two-step login with a code; answers recovery codes once",
        auth::totp_confirm,
    )
    .add(
        POST,
        "/api/v1/auth/totp/disable",
        User,
        "Turn one's own two-step login off (not for admins)",
        auth::totp_disable,
    )
    .add(
        GET,
        "/api/v1/me",
        User,
        "Who is logged in, and any step they must take first",
        auth::me,
    )
    .add(
        POST,
        "/api/v1/stations",
        User,
        "Register a station (admin); answers its key once",
        stations::create,
    )
    .add(
        GET,
        "/api/v1/stations",
        User,
        "List stations: created, last seen, revoked (admin)",
        stations::list,
    )
    .add(
        POST,
        "/api/v1/stations/{id}/revoke",
        User,
        "Revoke a station: its key stops working, its logins end (admin)",
        stations::revoke,
    )
    .add(
        POST,
        "/api/v1/stations/{id}/key",
        User,
        "Give a station a new key, answered once; lifts a revocation (admin)",
        stations::new_key,
    )
    .add(
        GET,
        "/api/v1/users",
        User,
        "List users; filters role, area, name, state (admin)",
        users::list,
    )
    .add(
        POST,
        "/api/v1/users",
        User,
        "Add a user; without a password one is made up and answered once (admin)",
        users::create,
    )
    .add(
        GET,
        "/api/v1/users/{username}",
        User,
        "One user, with their last login (admin)",
        users::get,
    )
    .add(
        PATCH,
        "/api/v1/users/{username}",
        User,
        "Change a user's role or dispatch area (admin; not one's own role)",
        users::update,
    )
    .add(
        POST,
        "/api/v1/users/{username}/lock",
        User,
        "Lock a user until unlocked; ends their logins (admin)",
        users::lock,
    )
    .add(
        POST,
        "/api/v1/users/{username}/unlock",
        User,
        "Unlock a user, also after too many wrong passwords (admin)",
        users::unlock,
    )
    .add(
        POST,
        "/api/v1/users/{username}/password",
        User,
        "Reset a user's password; they choose their own at next login (admin)",
        users::reset_password,
    )
    .add(
        POST,
        "/api/v1/users/{username}/deactivate",
        User,
        "Switch a user off; ends their logins (admin)",
        users::deactivate,
    )
    .add(
        POST,
        "/api/v1/users/{username}/reactivate",
        User,
        "Switch a user back on (admin)",
        users::reactivate,
    )
    .add(
        POST,
        "/api/v1/users/{username}/logout-everywhere",
        User,
        "End every login of a user (admin)",
        users::logout_everywhere,
    )
    .add(
        POST,
        "/api/v1/users/{username}/totp/disable",
        User,
        "Turn a user's two-step login off so they can set it up again (admin)",
        users::reset_two_step,
    )
    .add(
        PUT,
        "/api/v1/users/{username}/email",
        User,
        "Set or clear a user's mail address: the summary mail goes to admins and billers with one (admin)",
        users::set_email,
    )
    .add(
        GET,
        "/api/v1/areas",
        User,
        "List dispatch areas",
        areas::list,
    )
    .add(
        POST,
        "/api/v1/areas",
        User,
        "Add a dispatch area (admin)",
        areas::create,
    )
    .add(
        PATCH,
        "/api/v1/areas/{id}",
        User,
        "Rename a dispatch area; its users and bags follow (admin)",
        areas::rename,
    )
    .add(
        POST,
        "/api/v1/areas/{id}/retire",
        User,
        "Retire a dispatch area with no active dispatchers (admin)",
        areas::retire,
    )
    .add(
        POST,
        "/api/v1/promotions",
        User,
        "Ask for another role, with a reason",
        promotions::create,
    )
    .add(
        GET,
        "/api/v1/promotions",
        User,
        "Promotion requests: all for admins, one's own for others",
        promotions::list,
    )
    .add(
        POST,
        "/api/v1/promotions/{id}/approve",
        User,
        "Approve a promotion request (admin; not one's own)",
        promotions::approve,
    )
    .add(
        POST,
        "/api/v1/promotions/{id}/reject",
        User,
        "Reject a promotion request (admin; not one's own)",
        promotions::reject,
    )
    .add(
        GET,
        "/api/v1/notifications",
        User,
        "One's own notifications, newest first (keyset pages by `before`)",
        notifications::list,
    )
    .add(
        GET,
        "/api/v1/notifications/unread-count",
        User,
        "How many of one's notifications are unread",
        notifications::unread_count,
    )
    .add(
        POST,
        "/api/v1/notifications/{id}/read",
        User,
        "Mark one of one's notifications read",
        notifications::read,
    )
    .add(
        POST,
        "/api/v1/notifications/read-all",
        User,
        "Mark all of one's notifications read",
        notifications::read_all,
    )
    .add(
        GET,
        "/api/v1/station/settings",
        Station,
        "The settings a station judges offline scans by",
        stations::settings,
    )
    .add_limited(
        POST,
        "/api/v1/events",
        Station,
        "Send scan events (a batch of up to 1,000)",
        EVENTS_BODY_LIMIT,
        events::post,
    )
    .add(
        GET,
        "/api/v1/bags",
        User,
        "List bags (keyset pages)",
        bags::list,
    )
    .add(
        GET,
        "/api/v1/bags/{code}",
        User,
        "One bag with its parent or children",
        bags::get,
    )
    .add(
        GET,
        "/api/v1/bags/{code}/history",
        User,
        "A bag's history, newest first: links, unlinks, bills, corrections (dispatchers: their area)",
        bags::history,
    )
    .add(
        POST,
        "/api/v1/bills",
        User,
        "Create a bill (admin, biller)",
        bills::create,
    )
    .add(GET, "/api/v1/bills", User, "List bills", bills::list)
    .add(
        GET,
        "/api/v1/bills/{code}",
        User,
        "One bill with its parent bags",
        bills::get,
    )
    .add(
        PATCH,
        "/api/v1/bills/{code}",
        User,
        "Change a bill (admin, biller)",
        bills::update,
    )
    .add(
        POST,
        "/api/v1/bills/{code}/close",
        User,
        "Close a bill (admin, biller)",
        bills::close,
    )
    .add(
        POST,
        "/api/v1/bills/{code}/reopen",
        User,
        "Reopen a closed bill (admin)",
        bills::reopen,
    )
    .add(
        GET,
        "/api/v1/bills/summary",
        User,
        "The end-of-day summary of a day's bills, by biller and status (admin, biller; `date`)",
        bills::summary,
    )
    .add(GET, "/api/v1/stats", User, "Totals", stats::stats)
    .add(
        GET,
        "/api/v1/audit",
        User,
        "The audit log, newest first (admin; keyset pages by `before`)",
        audit::list,
    )
    .add(
        GET,
        "/api/v1/exports/{file}",
        User,
        "Download bags, bills, links, audit or activity as .csv or .xlsx, or epcis.jsonld (filters as the lists; bills for billers, the rest admin)",
        exports::get,
    )
    .add(
        POST,
        "/api/v1/audit/verify",
        User,
        "Seal and check the audit log's hash chain (admin)",
        audit::verify,
    )
    .add(
        POST,
        "/api/v1/imports",
        User,
        "Import a sheet (admin): the file is the body; kind=bags|bills|child-parent|parent-bill, dry_run, all_or_nothing, file_name, wait",
        imports::create,
    )
    .add(
        GET,
        "/api/v1/imports",
        User,
        "Imports, newest first, with their counts (admin)",
        imports::list,
    )
    .add(
        GET,
        "/api/v1/imports/{id}",
        User,
        "One import: state, rows done of total, rows/s, counts, first problems (admin)",
        imports::get,
    )
    .add(
        GET,
        "/api/v1/imports/{id}/result.xlsx",
        User,
        "An import's result file as XLSX: a summary sheet and one row per input row (the admin who ran it)",
        imports::result_xlsx,
    )
    .add(
        GET,
        "/api/v1/imports/{id}/result.csv",
        User,
        "An import's result file as CSV: one row per input row (the admin who ran it)",
        imports::result_csv,
    )
    .add(
        GET,
        "/api/v1/health/details",
        User,
        "The system's health: version, uptime, database, pools, request rates and latency, errors by code, memory (admin)",
        health::details,
    )
    .add(
        GET,
        "/console",
        Public,
        "The web console (on to /console/)",
        console::home,
    )
    .add(
        GET,
        "/console/",
        Console,
        "Console: the dashboard (live totals; bills in progress; stations for admins)",
        console::dashboard::dashboard,
    )
    .add(
        GET,
        "/console/login",
        Public,
        "Console: the login page",
        console::account::login_page,
    )
    .add(
        POST,
        "/console/login",
        Public,
        "Console: log in (form: username, password, and a code when two-step login is on)",
        console::account::login,
    )
    .add(
        POST,
        "/console/logout",
        Console,
        "Console: log out",
        console::account::logout,
    )
    .add(
        GET,
        "/console/password",
        Console,
        "Console: the page to choose a new password",
        console::account::password_page,
    )
    .add(
        POST,
        "/console/password",
        Console,
        "Console: change one's password (form: current, new, again)",
        console::account::change_password,
    )
    .add(
        GET,
        "/console/two-step",
        Console,
        "Console: set up two-step login (QR code and secret)",
        console::account::two_step_page,
    )
    .add(
        POST,
        "/console/two-step",
        Console,
        "Console: confirm two-step login with a code; shows the recovery codes once",
        console::account::two_step_confirm,
    )
    .add(
        GET,
        "/console/stations",
        Console,
        "Console: stations with their state, last seen, app version and unsent scans (admin)",
        console::stations::stations,
    )
    .add(
        POST,
        "/console/stations",
        Console,
        "Console: register a station (form: name); on to its key, shown once (admin)",
        console::stations::register,
    )
    .add(
        GET,
        "/console/stations/key",
        Console,
        "Console: a new station key, shown once (admin)",
        console::stations::key_page,
    )
    .add(
        POST,
        "/console/stations/{id}/revoke",
        Console,
        "Console: revoke a station (a confirmation page first; form: confirm=yes) (admin)",
        console::stations::revoke,
    )
    .add(
        POST,
        "/console/stations/{id}/key",
        Console,
        "Console: give a station a new key (a confirmation page first; form: confirm=yes) (admin)",
        console::stations::new_key,
    )
    .add(
        GET,
        "/console/bills",
        Console,
        "Console: bills with filters, and the new-bill form (admin, biller)",
        console::bills::list,
    )
    .add(
        POST,
        "/console/bills",
        Console,
        "Console: create a bill (admin, biller)",
        console::bills::create,
    )
    .add(
        GET,
        "/console/bills/summary",
        Console,
        "Console: the end-of-day summary of a day's bills (admin, biller; `date`)",
        console::bills::summary,
    )
    .add(
        GET,
        "/console/bills/{code}",
        Console,
        "Console: a bill with its parent bags, weights and actions (admin, biller)",
        console::bills::bill,
    )
    .add(
        GET,
        "/console/bills/{code}/sheet",
        Console,
        "Console: a bill's printable dispatch sheet (admin, biller)",
        console::bills::sheet,
    )
    .add(
        POST,
        "/console/bills/{code}/parents",
        Console,
        "Console: put a parent bag on a bill (admin, biller)",
        console::bills::add_parent,
    )
    .add(
        POST,
        "/console/bills/{code}/parents/remove",
        Console,
        "Console: take a parent bag off a bill (admin, biller)",
        console::bills::remove_parent,
    )
    .add(
        POST,
        "/console/bills/{code}/details",
        Console,
        "Console: change a bill's destination, vehicle, description, capacity (admin, biller)",
        console::bills::details,
    )
    .add(
        POST,
        "/console/bills/{code}/close",
        Console,
        "Console: close a bill (admin, biller)",
        console::bills::close,
    )
    .add(
        POST,
        "/console/bills/{code}/reopen",
        Console,
        "Console: reopen a closed bill (admin)",
        console::bills::reopen,
    )
    .add(
        GET,
        "/console/users",
        Console,
        "Console: users with role, area and state; filters and a search by name (admin)",
        console::users::list,
    )
    .add(
        POST,
        "/console/users",
        Console,
        "Console: add a user (form: username, role, area, password or none) (admin)",
        console::users::create,
    )
    .add(
        GET,
        "/console/users/{username}",
        Console,
        "Console: one user and the forms to change them (admin)",
        console::users::show,
    )
    .add(
        POST,
        "/console/users/{username}/change",
        Console,
        "Console: change a user's role and area (form: role, area) (admin)",
        console::users::change,
    )
    .add(
        POST,
        "/console/users/{username}/lock",
        Console,
        "Console: lock a user; ends their logins (admin)",
        console::users::lock,
    )
    .add(
        POST,
        "/console/users/{username}/unlock",
        Console,
        "Console: unlock a user, also after wrong passwords (admin)",
        console::users::unlock,
    )
    .add(
        POST,
        "/console/users/{username}/password",
        Console,
        "Console: reset a user's password (form: password, or none to make one up) (admin)",
        console::users::reset_password,
    )
    .add(
        POST,
        "/console/users/{username}/deactivate",
        Console,
        "Console: switch a user off (admin)",
        console::users::deactivate,
    )
    .add(
        POST,
        "/console/users/{username}/reactivate",
        Console,
        "Console: switch a user back on (admin)",
        console::users::reactivate,
    )
    .add(
        POST,
        "/console/users/{username}/logout-everywhere",
        Console,
        "Console: end every login of a user (admin)",
        console::users::logout_everywhere,
    )
    .add(
        POST,
        "/console/users/{username}/two-step-off",
        Console,
        "Console: turn a user's two-step login off (admin)",
        console::users::reset_two_step,
    )
    .add(
        GET,
        "/console/promotions",
        Console,
        "Console: promotion requests to decide (admin)",
        console::promotions::list,
    )
    .add(
        POST,
        "/console/promotions",
        Console,
        "Console: ask for another role (form: role, reason)",
        console::promotions::ask,
    )
    .add(
        POST,
        "/console/promotions/{id}/approve",
        Console,
        "Console: approve a promotion request (form: note, area) (admin)",
        console::promotions::approve,
    )
    .add(
        POST,
        "/console/promotions/{id}/reject",
        Console,
        "Console: turn down a promotion request (form: note) (admin)",
        console::promotions::reject,
    )
    .add(
        GET,
        "/console/notifications",
        Console,
        "Console: one's notifications, and asking for another role",
        console::notifications::list,
    )
    .add(
        POST,
        "/console/notifications/{id}/read",
        Console,
        "Console: mark one of one's notifications read",
        console::notifications::read,
    )
    .add(
        POST,
        "/console/notifications/read-all",
        Console,
        "Console: mark all one's notifications read",
        console::notifications::read_all,
    )
    .add(
        GET,
        "/console/audit",
        Console,
        "Console: the audit log with filters, newest first (admin)",
        console::audit::list,
    )
    .add(
        POST,
        "/console/audit/verify",
        Console,
        "Console: seal and check the audit log's hash chain (admin)",
        console::audit::verify,
    )
    .add(
        GET,
        "/console/bags",
        Console,
        "Console: find bags by code or its start, with filters (keyset pages)",
        console::bags::list,
    )
    .add(
        GET,
        "/console/bags/{code}",
        Console,
        "Console: a bag with its parent or children, bill and history",
        console::bags::bag,
    )
    .add(
        POST,
        "/console/bags/{code}/unlink",
        Console,
        "Console: take a child bag out of its parent, with a reason (admin)",
        console::bags::unlink,
    )
    .add(
        GET,
        "/console/imports",
        Console,
        "Console: import a file (sent to POST /api/v1/imports), and the imports so far (admin)",
        console::imports::list,
    )
    .add(
        GET,
        "/console/imports/{id}",
        Console,
        "Console: one import, its progress while it runs, counts, problems and result files (admin)",
        console::imports::show,
    )
    .add(
        GET,
        "/console/health",
        Console,
        "Console: the system's health (admin)",
        console::health::health,
    )
    .add(
        GET,
        "/console/live.json",
        User,
        "Console: the dashboard's totals, polled by the page",
        console::dashboard::live,
    )
    .add(
        GET,
        "/console/static/console.css",
        Public,
        "Console: the style sheet",
        console::style,
    )
    .add(
        GET,
        "/console/static/console.js",
        Public,
        "Console: the pages' one script",
        console::script,
    )
}

/// The browser protections every answer carries; HSTS only when served over TLS.
async fn security_headers(
    axum::extract::State(tls): axum::extract::State<bool>,
    mut response: Response,
) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Every route the server answers, with its description.
pub fn route_docs() -> Vec<RouteDoc> {
    routes().docs
}

/// The whole application, ready to serve.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_response_with_state(
            state.settings.tls.is_some(),
            security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/console/") {
        return crate::console::not_found();
    }
    answer(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such address on this server.",
    )
}

async fn method_not_allowed() -> Response {
    answer(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This address does not take that kind of request.",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on the server. It has been logged; try again.",
    )
}

/// Serves the app on a bound listener until `shutdown` resolves: plain HTTP,
/// or HTTPS when the settings name a certificate and key. The background
/// upkeep runs alongside and stops with it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn(crate::housekeeping::run(state.clone()));
    let sealer = tokio::spawn(crate::audit::keep_sealing(state.db.clone()));
    let tls = state.settings.tls.clone();
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            let config = tls_config(&tls).await?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, config)?
                .handle(handle)
                .serve(service)
                .await
        }
    };
    upkeep.abort();
    sealer.abort();
    served
}

/// The rustls configuration from the PEM files in the settings.
async fn tls_config(
    tls: &crate::config::Tls,
) -> std::io::Result<axum_server::tls_rustls::RustlsConfig> {
    // One crypto provider for the process (ring); a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot use the TLS certificate {} and key {}: {e}",
                    tls.cert.display(),
                    tls.key.display()
                ),
            )
        })
}
