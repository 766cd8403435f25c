//! The imports pages (admins): the upload form with "Check first" and
//! "Import", the imports run so far, and one import with its progress,
//! counts, first problems and result files.
//!
//! There is one way to run an import: the page's script sends the file to
//! `POST /api/v1/imports` (the console cookie with the CSRF header), which
//! runs [`crate::import`]; the pages follow it through
//! `GET /api/v1/imports/{id}` and download the result files from the API.
//! The pages themselves only read, through `import::list` and `import::get`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::access::{AdminPage, Signed};
use super::frame;
use super::pages::{count, moment, page, Refusal};
use crate::error::Result;
use crate::import::{self, Layout, Problem, Summary};
use crate::AppState;

/// Imports on one page of the list.
const PAGE: u32 = 50;

/// The layouts the form offers, in plain words: value, name, what is in it.
const LAYOUTS: &[(Layout, &str, &str)] = &[
    (
        Layout::ChildParent,
        "Child bags, then their parent",
        "Label sheets: a run of child bag labels (LABEL NO.0016586), then the row of the parent bag they go in.",
    ),
    (
        Layout::ParentBill,
        "Parent bags, then their bill",
        "A run of parent bag codes, then a “Bill No.” row with the bill they go on.",
    ),
    (
        Layout::Bags,
        "Bags table",
        "One bag a row: code, kind (parent or child), parent code.",
    ),
    (
        Layout::Bills,
        "Bills table",
        "One bill a row: code, description, capacity, destination, vehicle number.",
    ),
];

fn layout_name(layout: Layout) -> &'static str {
    LAYOUTS
        .iter()
        .find(|(l, _, _)| *l == layout)
        .map_or("", |(_, name, _)| name)
}

#[derive(Debug, Serialize)]
struct LayoutChoice {
    value: &'static str,
    name: &'static str,
    help: &'static str,
}

/// Rows per outcome, as the page writes them.
#[derive(Debug, Default, Serialize)]
struct CountsView {
    created: String,
    linked: String,
    already_there: String,
    refused: String,
}

/// The result files of an import, or why they are not offered.
#[derive(Debug, Serialize)]
struct Results {
    xlsx: String,
    csv: String,
}

/// One import as the pages show it. `state` is the import's own
/// (`running`, `done`, `rolled_back`, `failed`, `interrupted`); `mode` is
/// `preview` or `apply`.
#[derive(Debug, Default, Serialize)]
struct ImportView {
    id: i64,
    href: String,
    layout: &'static str,
    file_name: String,
    by: String,
    started: String,
    finished: Option<String>,
    mode: &'static str,
    all_or_nothing: bool,
    state: String,
    percent: u64,
    rows_done: String,
    total_rows: String,
    rows_per_sec: String,
    counts: CountsView,
    /// Rows with an outcome, and of those refused.
    rows: u64,
    refused: u64,
    problems: Vec<Problem>,
    error: Option<String>,
    /// The result files, for the admin who ran the import (any admin for
    /// one run from the command line); there once the import has ended
    /// (not cut off).
    results: Option<Results>,
    /// The admin who alone may download the results, when that is someone else.
    results_of: Option<String>,
}

/// How far an import has read its file, in whole per cent (the total is an
/// estimate until the file is read to its end). The script does the same.
fn percent(s: &Summary) -> u64 {
    if s.total_rows == 0 {
        return if s.state == "running" { 0 } else { 100 };
    }
    (s.rows_done.saturating_mul(100) / s.total_rows).min(100)
}

fn grouped(n: u64) -> String {
    count(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Whether `me` may download the result of an import `by` ran: the rule of
/// `import::result_file` (the admin who ran it; anyone for the command
/// line's own imports, recorded as "system").
fn may_download(by: Option<&str>, me: &str) -> bool {
    match by {
        None | Some("system") => true,
        Some(by) => by == me,
    }
}

fn view(s: Summary, me: &str, state: &AppState) -> ImportView {
    let offset = state.settings.utc_offset;
    let allowed = may_download(s.by.as_deref(), me);
    ImportView {
        id: s.id,
        href: format!("/console/imports/{}", s.id),
        layout: layout_name(s.kind),
        by: match s.by.as_deref() {
            None | Some("system") => "the command line".into(),
            Some(by) => by.to_string(),
        },
        started: moment(s.started_at, offset),
        finished: s.finished_at.map(|t| moment(t, offset)),
        mode: if s.dry_run { "preview" } else { "apply" },
        all_or_nothing: s.all_or_nothing,
        percent: percent(&s),
        rows_done: grouped(s.rows_done),
        total_rows: grouped(s.total_rows.max(s.rows_done)),
        rows_per_sec: grouped(s.rows_per_sec.round().max(0.0) as u64),
        counts: CountsView {
            created: grouped(s.counts.created),
            linked: grouped(s.counts.linked),
            already_there: grouped(s.counts.already_there),
            refused: grouped(s.counts.refused),
        },
        rows: s.counts.rows(),
        refused: s.counts.refused,
        results: allowed.then(|| Results {
            xlsx: format!("/api/v1/imports/{}/result.xlsx", s.id),
            csv: format!("/api/v1/imports/{}/result.csv", s.id),
        }),
        results_of: (!allowed).then(|| s.by.clone().unwrap_or_default()),
        file_name: s.file_name,
        state: s.state,
        problems: s.problems,
        error: s.error,
    }
}

/// An import's page before it exists: the upload page's run panel, hidden
/// until the script fills it in.
fn blank() -> ImportView {
    ImportView {
        state: "sending".into(),
        mode: "preview",
        rows_done: "0".into(),
        total_rows: "0".into(),
        rows_per_sec: "0".into(),
        counts: CountsView {
            created: "0".into(),
            linked: "0".into(),
            already_there: "0".into(),
            refused: "0".into(),
        },
        ..ImportView::default()
    }
}

/// `?before=ID`: the page of imports older than that one.
fn before(query: Option<&str>) -> Option<i64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("before="))?
        .parse()
        .ok()
}

async fn imports_page(state: &AppState, signed: &Signed, before: Option<i64>) -> Result<Response> {
    let me = &signed.session.user;
    let found = import::list(&state.db, &state.imports, me, before, PAGE).await?;
    let next = (found.len() == PAGE as usize)
        .then(|| {
            found
                .last()
                .map(|s| format!("/console/imports?before={}", s.id))
        })
        .flatten();
    let rows: Vec<ImportView> = found
        .into_iter()
        .map(|s| view(s, &me.username, state))
        .collect();
    let layouts: Vec<LayoutChoice> = LAYOUTS
        .iter()
        .map(|(l, name, help)| LayoutChoice {
            value: l.as_str(),
            name,
            help,
        })
        .collect();
    let max = state.settings.import_max_bytes;
    Ok(page(
        StatusCode::OK,
        "imports.html",
        &frame(signed, "Imports", "imports"),
        context! {
            layouts => Value::from(Serde(&layouts)),
            rows => Value::from(Serde(&rows)),
            imp => Value::from(Serde(blank())),
            live => true,
            max_bytes => max,
            max_mb => format!("{:.0}", max as f64 / (1024.0 * 1024.0)),
            paged => before.is_some(),
            next,
        },
    ))
}

/// `GET /console/imports`: the upload form and the imports run so far.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    RawQuery(query): RawQuery,
) -> Response {
    imports_page(&state, &signed, before(query.as_deref()))
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// `GET /console/imports/{id}`: one import; while it runs the page follows it.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.trim().parse::<i64>() else {
        return Refusal::Page {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: "There is no such import. Choose one from the list of imports.".into(),
        }
        .into_response();
    };
    let me = &signed.session.user;
    let shown = async {
        let s = import::get(&state.db, &state.imports, me, id).await?;
        let title = format!("Import {id}");
        let imp = view(s, &me.username, &state);
        Ok::<_, crate::error::Error>(page(
            StatusCode::OK,
            "import.html",
            &frame(&signed, &title, "imports"),
            context! {
                imp => Value::from(Serde(&imp)),
                live => imp.state == "running",
            },
        ))
    }
    .await;
    shown.unwrap_or_else(|e| Refusal::from(e).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_has_plain_words() {
        for layout in [
            Layout::Bags,
            Layout::Bills,
            Layout::ChildParent,
            Layout::ParentBill,
        ] {
            assert!(!layout_name(layout).is_empty(), "{layout:?}");
        }
        assert_eq!(before(Some("before=42")), Some(42));
        assert_eq!(before(Some("before=x")), None);
        assert_eq!(before(None), None);
        assert!(may_download(Some("asha"), "asha"));
        assert!(may_download(Some("system"), "asha"));
        assert!(may_download(None, "asha"));
        assert!(!may_download(Some("ravi"), "asha"));
    }
}
