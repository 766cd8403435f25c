//! Reading bags.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use traitortrack_protocol::{Bag, BagKind, BagSummary, Page};

use super::extract::{ApiQuery, Caller};
use crate::bags::{self, BagFilter};
use crate::error::Result;
use crate::AppState;

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(code): Path<String>,
) -> Result<Json<Bag>> {
    bags::get(&state.db, &session.user, &code).await.map(Json)
}

#[derive(Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    kind: Option<BagKind>,
    area: Option<String>,
    complete: Option<bool>,
    billed: Option<bool>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Caller(session): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<BagSummary>>> {
    let filter = BagFilter {
        search: q.search.filter(|s| !s.trim().is_empty()),
        kind: q.kind,
        area: q.area.filter(|s| !s.trim().is_empty()),
        complete: q.complete,
        billed: q.billed,
        cursor: q.cursor.filter(|s| !s.is_empty()),
        limit: q.limit.unwrap_or(100),
    };
    bags::list(&state.db, &session.user, filter).await.map(Json)
}
