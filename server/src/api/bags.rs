//! Reading bags.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use traitortrack_protocol::{Bag, BagKind, BagSummary, Page};

use super::extract::{ApiQuery, Caller};
use crate::bags::{self, BagFilter, BagHistory, DateField};
use crate::error::Result;
use crate::AppState;

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
) -> Result<Json<Bag>> {
    bags::get(&state.db, &state.bag_reads, &session.user, &code)
        .await
        .map(Json)
}

#[derive(Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    kind: Option<BagKind>,
    area: Option<String>,
    complete: Option<bool>,
    billed: Option<bool>,
    /// Which date `from` and `to` look at: `created` (the default) or `changed`.
    date: Option<DateField>,
    /// YYYY-MM-DD, a warehouse day: bags of that day or later.
    from: Option<String>,
    /// YYYY-MM-DD, a warehouse day: bags of that day or earlier.
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Caller(session): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<BagSummary>>> {
    let crate::days::Span { from, to } = crate::days::Span::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        state.settings.utc_offset,
    )?;
    let filter = BagFilter {
        search: q.search.filter(|s| !s.trim().is_empty()),
        kind: q.kind,
        area: q.area.filter(|s| !s.trim().is_empty()),
        complete: q.complete,
        billed: q.billed,
        date: q.date.unwrap_or_default(),
        from,
        to,
        cursor: q.cursor.filter(|s| !s.is_empty()),
        limit: q.limit.unwrap_or(100),
    };
    bags::list(&state.db, &session.user, filter).await.map(Json)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    /// At most this many entries, newest first (default 200, at most 1,000).
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn history(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<BagHistory>> {
    bags::history(&state.db, &session.user, &code, q.limit.unwrap_or(200))
        .await
        .map(Json)
}
