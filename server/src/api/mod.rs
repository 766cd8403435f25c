//! The HTTP surface: `/api/v1` JSON routes and health probes. Handlers parse,
//! call the domain, and shape the answer.

mod auth;
mod bags;
mod bills;
mod events;
pub mod extract;
mod openapi;
mod stations;
mod stats;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderName, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::body;
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
    use Auth::{Public, Station, User};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PATCH: Method = Method::PATCH;
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
    .add(GET, "/api/v1/stats", User, "Totals", stats::stats)
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
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        body("not_found", "There is no such address on this server."),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        body(
            "method_not_allowed",
            "This address does not take that kind of request.",
        ),
    )
        .into_response()
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        body(
            "internal_error",
            "Something went wrong on the server. It has been logged; try again.",
        ),
    )
        .into_response()
}

/// Serves the app on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
