//! Bills: create, read, list, change, close, reopen.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use traitortrack_protocol::{
    Bill, BillStatus, BillSummary, CloseBill, CreateBill, Page, PatchBill,
};

use super::extract::{Admin, ApiJson, ApiQuery, Billing, Caller, Meta};
use crate::bills::{self, BillFilter};
use crate::error::{Error, Result};
use crate::AppState;

async fn read(state: &AppState, caller: &Caller, code: &str) -> Result<Json<Bill>> {
    bills::get(&state.db, &state.settings, &caller.0.user, code)
        .await
        .map(Json)
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Billing(caller): Billing,
    meta: Meta,
    ApiJson(req): ApiJson<CreateBill>,
) -> Result<(StatusCode, Json<Bill>)> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let bill = bills::create(&mut tx, &caller.0.user, &actor, &req, state.now()).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        read(&state, &caller, &bill.code).await?,
    ))
}

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Billing(caller): Billing,
    Path(code): Path<String>,
) -> Result<Json<Bill>> {
    read(&state, &caller, &code).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<BillStatus>,
    /// YYYY-MM-DD
    date: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Billing(caller): Billing,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<BillSummary>>> {
    let date = q
        .date
        .filter(|d| !d.is_empty())
        .map(|d| {
            time::Date::parse(
                &d,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| {
                Error::bad_input(
                    "bad_date",
                    format!("Give the date as YYYY-MM-DD, not {d:?}."),
                )
            })
        })
        .transpose()?;
    let filter = BillFilter {
        status: q.status,
        date,
        cursor: q.cursor.filter(|c| !c.is_empty()),
        limit: q.limit.unwrap_or(100),
    };
    bills::list(&state.db, &state.settings, &caller.0.user, filter)
        .await
        .map(Json)
}

#[tracing::instrument(skip_all)]
pub async fn update(
    State(state): State<AppState>,
    Billing(caller): Billing,
    meta: Meta,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<PatchBill>,
) -> Result<Json<Bill>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let bill = bills::update(&mut tx, &caller.0.user, &actor, &code, &req, state.now()).await?;
    tx.commit().await?;
    read(&state, &caller, &bill.code).await
}

#[tracing::instrument(skip_all)]
pub async fn close(
    State(state): State<AppState>,
    Billing(caller): Billing,
    meta: Meta,
    Path(code): Path<String>,
    body: Option<ApiJson<CloseBill>>,
) -> Result<Json<Bill>> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let bill = bills::close(&mut tx, &caller.0.user, &actor, &code, &req, state.now()).await?;
    tx.commit().await?;
    read(&state, &caller, &bill.code).await
}

#[tracing::instrument(skip_all)]
pub async fn reopen(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    Path(code): Path<String>,
) -> Result<Json<Bill>> {
    let actor = caller.actor(meta);
    let mut tx = state.db.begin().await?;
    let bill = bills::reopen(&mut tx, &caller.0.user, &actor, &code, state.now()).await?;
    tx.commit().await?;
    read(&state, &caller, &bill.code).await
}
