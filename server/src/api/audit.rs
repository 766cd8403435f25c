//! The audit log for admins: a filtered list, newest first, and a check of the chain.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{Admin, ApiQuery};
use crate::audit::{self, AuditFilter, AuditPage, Verification};
use crate::db::Ts;
use crate::error::{Error, Result};
use crate::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    /// A username.
    actor: Option<String>,
    action: Option<String>,
    entity: Option<String>,
    entity_code: Option<String>,
    /// RFC 3339; rows at or after it.
    from: Option<String>,
    /// RFC 3339; rows before it.
    to: Option<String>,
    /// The `next_before` of the previous page.
    before: Option<i64>,
    limit: Option<u32>,
}

fn time(name: &str, value: Option<String>) -> Result<Option<Ts>> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| Some(Ts::new(t)))
        .map_err(|_| {
            Error::bad_input(
                "bad_time",
                format!("{name} must be a time like 2025-01-31T09:30:00Z (got {value:?})."),
            )
        })
}

fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<AuditPage>> {
    let filter = AuditFilter {
        actor: text(q.actor),
        action: text(q.action),
        entity: text(q.entity),
        entity_code: text(q.entity_code),
        from: time("from", q.from)?,
        to: time("to", q.to)?,
        before: q.before,
        limit: q.limit.unwrap_or(100),
    };
    audit::list(&state.db, filter).await.map(Json)
}

#[tracing::instrument(skip_all)]
pub async fn verify(State(state): State<AppState>, _: Admin) -> Result<Json<Verification>> {
    audit::verify(&state.db).await.map(Json)
}
