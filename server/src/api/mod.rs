//! The HTTP surface: `/api/v1` JSON routes and health probes. Handlers parse,
//! call the domain, and shape the answer.

mod auth;
mod bags;
mod bills;
mod events;
pub mod extract;
mod stations;
mod stats;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

/// The whole application, ready to serve.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/stations", post(stations::create))
        .route("/station/settings", get(stations::settings))
        .route(
            "/events",
            post(events::post).layer(DefaultBodyLimit::max(EVENTS_BODY_LIMIT)),
        )
        .route("/bags", get(bags::list))
        .route("/bags/{code}", get(bags::get))
        .route("/bills", post(bills::create).get(bills::list))
        .route("/bills/{code}", get(bills::get).patch(bills::update))
        .route("/bills/{code}/close", post(bills::close))
        .route("/bills/{code}/reopen", post(bills::reopen))
        .route("/stats", get(stats::stats));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(stats::healthz))
        .route("/readyz", get(stats::readyz))
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
