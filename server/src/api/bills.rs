//! Bills: create, read, list, change, close, reopen; the end-of-day summary.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use traitortrack_protocol::{
    Bill, BillStatus, BillSummary, CloseBill, CreateBill, DaySummary, Page, PatchBill,
};

use super::extract::{Admin, ApiJson, ApiQuery, Billing, Caller, Meta};
use crate::bills::{self, BillFilter};
use crate::days::parse as parse_day;
use crate::error::Result;
use crate::summary;
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
    /// Created on this day (YYYY-MM-DD); or a range with `from` and `to`.
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Part of the code.
    code: Option<String>,
    /// Part of the destination.
    destination: Option<String>,
    /// The username of the biller who created the bill.
    biller: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Billing(caller): Billing,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<BillSummary>>> {
    let date = parse_day(q.date.as_deref())?;
    let filter = BillFilter {
        status: q.status,
        code: q.code,
        destination: q.destination,
        from: parse_day(q.from.as_deref())?.or(date),
        to: parse_day(q.to.as_deref())?.or(date),
        biller: q.biller,
        cursor: q.cursor.filter(|c| !c.is_empty()),
        limit: q.limit.unwrap_or(100),
    };
    bills::list(&state.db, &state.settings, &caller.0.user, filter)
        .await
        .map(Json)
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    /// YYYY-MM-DD; today (in the warehouse) when absent.
    date: Option<String>,
}

/// The end-of-day summary of one warehouse day.
#[tracing::instrument(skip_all)]
pub async fn summary(
    State(state): State<AppState>,
    Billing(caller): Billing,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<DaySummary>> {
    let day = parse_day(q.date.as_deref())?
        .unwrap_or_else(|| crate::counters::day_of(state.now().time(), state.settings.utc_offset));
    summary::of_day(&state.db, &state.settings, &caller.0.user, day)
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
