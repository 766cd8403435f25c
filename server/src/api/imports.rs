//! Imports for admins: upload a file (the raw body), follow its progress,
//! list imports, and download an import's result file.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body::Frame;
use serde::Deserialize;
use tokio::io::AsyncRead;

use super::extract::{Admin, ApiQuery, Meta, PathId};
use crate::error::{Error, Result};
use crate::import::{self, Layout, Live, Request as ImportRequest, Summary};
use crate::AppState;

#[derive(Deserialize)]
pub struct UploadQuery {
    /// bags, bills, child-parent or parent-bill.
    kind: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    all_or_nothing: bool,
    /// The file's name on the admin's computer, for the records.
    file_name: Option<String>,
    /// false: answer at once with the import's id (202) and let it run.
    wait: Option<bool>,
}

/// Deletes the uploaded copy when the import is over.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams the body to a file in the import folder, refusing it past the limit.
async fn save_body(state: &AppState, body: Body) -> Result<Upload> {
    use tokio::io::AsyncWriteExt;
    let max = state.settings.import_max_bytes;
    let dir = state.settings.import_dir.join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let upload = Upload(dir.join(format!("{}.upload", uuid::Uuid::now_v7())));
    let mut file = tokio::fs::File::create(&upload.0)
        .await
        .map_err(|e| Error::Internal(format!("cannot create an upload file: {e}")))?;
    let mut body = body;
    let mut size: u64 = 0;
    let mut over = false;
    while let Some(chunk) = next_data(&mut body).await {
        let chunk = chunk.map_err(|_| {
            Error::bad_input(
                "upload_broken",
                "The upload was cut off. Send the file again.",
            )
        })?;
        size += chunk.len() as u64;
        if size > max {
            // Read on (up to as much again) so the client hears the answer
            // instead of a cut connection; write nothing more.
            over = true;
            if size > max.saturating_mul(2) {
                break;
            }
            continue;
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::Internal(format!("cannot write the upload: {e}")))?;
    }
    if over {
        return Err(import::too_large(None, max));
    }
    file.flush()
        .await
        .map_err(|e| Error::Internal(format!("cannot write the upload: {e}")))?;
    Ok(upload)
}

/// The next piece of a request body's data.
async fn next_data(body: &mut Body) -> Option<std::result::Result<Bytes, axum::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// A file sent as a response body, a piece at a time.
struct FileBody {
    file: tokio::fs::File,
    buf: Box<[u8]>,
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let mut read = tokio::io::ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(read.filled())))))
            }
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    meta: Meta,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> Result<Response> {
    let kind = q.kind.unwrap_or_default();
    let layout = Layout::parse(&kind).ok_or_else(|| {
        Error::bad_input(
            "bad_kind",
            "Say which layout the file has: kind=bags, bills, child-parent or parent-bill.",
        )
    })?;
    let max = state.settings.import_max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let upload = save_body(&state, req.into_body()).await?;
    if declared.is_some_and(|n| n > max) {
        return Err(import::too_large(declared, max));
    }
    let actor = caller.actor(meta);
    let user = caller.0.user.clone();
    let file_name = q.file_name.unwrap_or_else(|| "upload".into());
    let prepared = import::prepare(
        &state.db,
        &state.settings,
        Some(&user),
        &actor,
        ImportRequest {
            layout,
            file: &upload.0,
            file_name: &file_name,
            dry_run: q.dry_run,
            all_or_nothing: q.all_or_nothing,
        },
        state.now(),
    )
    .await?;
    let id = prepared.id;
    let live = Arc::new(Live::default());
    state.imports.add(id, live.clone());
    // The import runs on its own: a client that goes away does not stop it half-way.
    let task_state = state.clone();
    let task = tokio::spawn(async move {
        let ran = import::execute(&task_state.db, &task_state.settings, prepared, live).await;
        task_state.imports.remove(id);
        drop(upload);
        ran
    });
    if q.wait == Some(false) {
        let summary = import::get(&state.db, &state.imports, &user, id).await?;
        return Ok((StatusCode::ACCEPTED, Json(summary)).into_response());
    }
    let summary: Summary = task
        .await
        .map_err(|e| Error::Internal(format!("the import task stopped: {e}")))??;
    Ok((StatusCode::OK, Json(summary)).into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// The smallest id of the previous page.
    before: Option<i64>,
    limit: Option<u32>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Summary>>> {
    import::list(
        &state.db,
        &state.imports,
        &caller.0.user,
        q.before,
        q.limit.unwrap_or(50),
    )
    .await
    .map(Json)
}

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathId(id): PathId,
) -> Result<Json<Summary>> {
    import::get(&state.db, &state.imports, &caller.0.user, id)
        .await
        .map(Json)
}

async fn download(state: &AppState, caller: &Admin, id: i64, xlsx: bool) -> Result<Response> {
    let path = import::result_file(&state.db, &state.settings, &caller.0 .0.user, id, xlsx).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Internal(format!("cannot open {}: {e}", path.display())))?;
    let (kind, ext) = if xlsx {
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        )
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    let body = Body::new(FileBody {
        file,
        buf: vec![0u8; 64 * 1024].into_boxed_slice(),
    });
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"import-{id}-result.{ext}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[tracing::instrument(skip_all)]
pub async fn result_xlsx(
    State(state): State<AppState>,
    caller: Admin,
    PathId(id): PathId,
) -> Result<Response> {
    download(&state, &caller, id, true).await
}

#[tracing::instrument(skip_all)]
pub async fn result_csv(
    State(state): State<AppState>,
    caller: Admin,
    PathId(id): PathId,
) -> Result<Response> {
    download(&state, &caller, id, false).await
}
