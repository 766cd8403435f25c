//! Logging in and out, and who am I.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use traitortrack_protocol::{LoginRequest, LoginResponse, UserInfo};

use super::extract::{ApiJson, Caller, Meta, OptionalStation};
use crate::error::Result;
use crate::{sessions, AppState};

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    OptionalStation(station): OptionalStation,
    Meta(actor): Meta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    let now = state.now();
    sessions::login(
        &state.db,
        &state.settings,
        &actor,
        &req.username,
        &req.password,
        station.as_ref(),
        now,
    )
    .await
    .map(Json)
}

#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
) -> Result<StatusCode> {
    let actor = caller.actor(meta);
    sessions::logout(&state.db, &actor, &caller.0, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(Caller(session): Caller) -> Json<UserInfo> {
    Json(session.user.info())
}
