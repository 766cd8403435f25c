//! Downloads: `GET /api/v1/exports/{kind}.{csv|xlsx}` with the filters of the
//! console's lists, and `GET /api/v1/exports/epcis.jsonld`. The role check,
//! the filters and the audit row come before the first byte; the file then
//! streams as it is written.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio_stream::wrappers::ReceiverStream;

use super::extract::{ApiQuery, Caller, Meta};
use crate::error::{Error, Result};
use crate::export::{self, Filter, Format, Kind, Out};
use crate::AppState;

/// The export and format a file name asks for: `bags.csv`, `epcis.jsonld`.
pub fn wanted(file: &str) -> Result<(Kind, Format)> {
    let (kind, extension) = file.rsplit_once('.').ok_or_else(|| {
        Error::not_found(
            "no_such_export",
            format!("Ask for a file such as bags.csv, bills.xlsx or epcis.jsonld, not {file:?}."),
        )
    })?;
    Ok((Kind::parse(kind)?, Format::parse(extension)?))
}

#[tracing::instrument(skip_all, fields(file = %file))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(file): Path<String>,
    ApiQuery(filter): ApiQuery<Filter>,
) -> Result<Response> {
    let actor = caller.actor(meta);
    let now = state.now();
    let request = export::begin(
        &state.db,
        &state.settings,
        &caller.0.user,
        &actor,
        wanted(&file)?,
        &filter,
        now,
    )
    .await?;
    let (out, breaker, rx) = Out::chunks();
    let (db, settings) = (state.db.clone(), state.settings.clone());
    let name = request.kind.name();
    tokio::spawn(async move {
        match export::run(&db, &settings, request, &filter, now, out).await {
            Ok(rows) => tracing::info!(export = name, rows, "export done"),
            Err(e) => {
                tracing::warn!(export = name, error = %e, "export stopped");
                breaker.fail("the export stopped; see the server log").await;
            }
        }
    });
    let file_name = export::file_name(
        name,
        request.format.extension(),
        now,
        state.settings.utc_offset,
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(request.format.content_type()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}
