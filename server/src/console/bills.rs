//! The bills pages (billers and admins): the list with its filters and the
//! "new bill" form, a bill's page with its parent bags, weights and actions,
//! the printable dispatch sheet, and the end-of-day summary. Every action
//! calls the same domain functions as the JSON API (`crate::bills`,
//! `crate::summary`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, RawQuery, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use time::{Date, UtcOffset};
use traitortrack_protocol::{
    Bill, BillStatus, BillSummary, CloseBill, CreateBill, DaySummary, PatchBill, Role,
    SummaryTotals,
};

use super::access::{Ready, Signed, SignedForm};
use super::exports::{self, Downloads};
use super::pages::{self, count, form_message, page, Frame, Refusal};
use super::{frame, note, NoFields};
use crate::api::extract::{actor_of, Meta};
use crate::bills::{self, BillFilter};
use crate::days::parse as parse_day;
use crate::error::{Error, Result};
use crate::export::Kind as ExportKind;
use crate::{counters, summary, AppState};

/// Bills on one page of the list.
const PAGE_SIZE: u32 = 50;

const BILLERS: &[Role] = &[Role::Biller, Role::Admin];
const FOR_BILLERS: &str = "open the bills pages (they are for billers and admins)";

// ------------------------------------------------------------ access

/// A console session of a biller or an admin; a dispatcher gets the 403 page.
pub struct BillingPage(pub Signed);

impl FromRequestParts<AppState> for BillingPage {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let Ready(signed) = Ready::from_request_parts(parts, state).await?;
        signed.session.user.require(BILLERS, FOR_BILLERS)?;
        Ok(BillingPage(signed))
    }
}

/// The same for a form: no step left to take, and the role.
fn may_bill(signed: &Signed, roles: &[Role], what: &str) -> Result<(), Refusal> {
    if let Some(step) = signed.session.pending {
        return Err(Refusal::step(step));
    }
    signed.session.user.require(roles, what)?;
    Ok(())
}

// ------------------------------------------------------------ words and numbers

pub fn status_label(status: BillStatus) -> &'static str {
    match status {
        BillStatus::New => "New",
        BillStatus::InProgress => "In progress",
        BillStatus::Ready => "Ready to close",
        BillStatus::Closed => "Closed",
    }
}

/// A weight as people read it: `1,230 kg`, `22.5 kg`.
pub fn kg(weight: f64) -> String {
    let tenths = (weight * 10.0).round() as i64;
    let whole = count(tenths / 10);
    match (tenths % 10).abs() {
        0 => format!("{whole} kg"),
        d => format!("{whole}.{d} kg"),
    }
}

/// A day as the warehouse reads it: `22 Nov 2026`.
pub fn day_text(day: Date) -> String {
    format!(
        "{} {} {}",
        day.day(),
        &day.month().to_string()[..3],
        day.year()
    )
}

/// Text as one segment of an address or one value of a query: everything
/// but letters, digits and `-_.~` percent-encoded (a `/` in a bill code too).
pub fn encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The address of a bill's page.
pub fn bill_path(code: &str) -> String {
    format!("/console/bills/{}", encoded(code))
}

fn today(state: &AppState) -> Date {
    counters::day_of(state.now().time(), state.settings.utc_offset)
}

// ------------------------------------------------------------ the list

/// The list's filters, as the filter form sends them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    code: String,
    destination: String,
    from: String,
    to: String,
    biller: String,
    cursor: String,
}

impl ListQuery {
    fn filter(&self) -> Result<BillFilter> {
        let status =
            match self.status.as_str() {
                "" => None,
                s => Some(BillStatus::parse(s).ok_or_else(|| {
                    Error::bad_input("bad_status", "Pick a status from the list.")
                })?),
            };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(BillFilter {
            status,
            code: text(&self.code),
            destination: text(&self.destination),
            from: parse_day(Some(&self.from))?,
            to: parse_day(Some(&self.to))?,
            biller: text(&self.biller),
            cursor: text(&self.cursor),
            limit: PAGE_SIZE,
        })
    }

    /// The query of this filter with another cursor (none: the first page).
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let pairs = [
            ("status", self.status.as_str()),
            ("code", self.code.trim()),
            ("destination", self.destination.trim()),
            ("from", self.from.trim()),
            ("to", self.to.trim()),
            ("biller", self.biller.trim()),
            ("cursor", cursor.unwrap_or_default()),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encoded(v)))
            .collect();
        if query.is_empty() {
            "/console/bills".into()
        } else {
            format!("/console/bills?{}", query.join("&"))
        }
    }

    /// The download buttons: the export narrows as the list does.
    fn downloads(&self) -> Downloads {
        Downloads::of(
            ExportKind::Bills,
            &[
                ("status", self.status.as_str()),
                ("code", self.code.as_str()),
                ("destination", self.destination.as_str()),
                ("biller", self.biller.as_str()),
                ("from", self.from.as_str()),
                ("to", self.to.as_str()),
            ],
        )
    }

    fn is_filtered(&self) -> bool {
        [
            &self.status,
            &self.code,
            &self.destination,
            &self.from,
            &self.to,
            &self.biller,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

#[derive(Debug, Serialize)]
struct ListRow {
    code: String,
    path: String,
    status: &'static str,
    status_key: &'static str,
    parents: u32,
    capacity: u32,
    destination: String,
    vehicle: String,
    created: String,
}

impl ListRow {
    fn of(b: BillSummary, offset: UtcOffset) -> ListRow {
        ListRow {
            path: bill_path(&b.code),
            status: status_label(b.status),
            status_key: b.status.as_str(),
            parents: b.parent_count,
            capacity: b.capacity,
            destination: b.destination.unwrap_or_default(),
            vehicle: b.vehicle_number.unwrap_or_default(),
            created: pages::moment(b.created_at, offset),
            code: b.code,
        }
    }
}

/// What the "new bill" form holds.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct NewBillForm {
    code: String,
    description: String,
    capacity: String,
    destination: String,
    vehicle_number: String,
}

/// The bills list: the filtered page, the "new bill" form (with what was
/// typed and why it was refused, after a refusal).
async fn list_page(
    state: &AppState,
    signed: &Signed,
    query: &ListQuery,
    new_bill: &NewBillForm,
    error: Option<String>,
    status: StatusCode,
    notice: Option<&'static str>,
) -> Response {
    let listed = match query.filter() {
        Ok(filter) => bills::list(&state.db, &state.settings, &signed.session.user, filter).await,
        Err(e) => Err(e),
    };
    let (rows, next, filter_error) = match listed {
        Ok(page) => {
            let offset = state.settings.utc_offset;
            let next = page
                .next_cursor
                .as_deref()
                .map(|c| query.with_cursor(Some(c)));
            let rows: Vec<ListRow> = page
                .items
                .into_iter()
                .map(|b| ListRow::of(b, offset))
                .collect();
            (rows, next, None)
        }
        Err(e) => match form_message(e) {
            Ok((_, message)) => (Vec::new(), None, Some(message)),
            Err(refusal) => return refusal.into_response(),
        },
    };
    let downloads = (filter_error.is_none()
        && exports::may(&signed.session.user, ExportKind::Bills))
    .then(|| query.downloads());
    let frame = Frame {
        notice,
        ..frame(signed, "Bills", "bills")
    };
    page(
        if filter_error.is_some() && error.is_none() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        },
        "bills.html",
        &frame,
        context! {
            rows => Value::from(Serde(&rows)),
            query => Value::from(Serde(query)),
            filtered => query.is_filtered(),
            paged => !query.cursor.is_empty(),
            first_page => query.with_cursor(None),
            next,
            filter_error,
            downloads => Value::from(Serde(&downloads)),
            new_bill => Value::from(Serde(new_bill)),
            error,
            max_capacity => bills::MAX_NEW_CAPACITY,
        },
    )
}

/// `GET /console/bills`
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    BillingPage(signed): BillingPage,
    query: Result<Query<ListQuery>, QueryRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (query, error) = match query {
        Ok(Query(q)) => (q, None),
        Err(_) => (
            ListQuery::default(),
            Some("The filters in the address could not be read; all bills are shown.".into()),
        ),
    };
    list_page(
        &state,
        &signed,
        &query,
        &NewBillForm::default(),
        error,
        StatusCode::OK,
        note(raw.as_deref()),
    )
    .await
}

/// `POST /console/bills`: creates a bill, then on to its page.
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    meta: Meta,
    SignedForm { signed, form }: SignedForm<NewBillForm>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, BILLERS, "create bills") {
        return refusal.into_response();
    }
    let created = async {
        let capacity = form.capacity.trim().parse::<i64>().map_err(|_| {
            Error::bad_input(
                "bad_capacity",
                format!(
                    "Give the capacity as a whole number of parent bags, from 1 to {}.",
                    bills::MAX_NEW_CAPACITY
                ),
            )
        })?;
        let new = CreateBill {
            code: form.code.clone(),
            capacity,
            destination: Some(form.destination.clone()),
            vehicle_number: Some(form.vehicle_number.clone()),
            description: Some(form.description.clone()),
        };
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let bill = bills::create(&mut tx, &signed.session.user, &actor, &new, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(bill.code)
    }
    .await;
    match created {
        Ok(code) => {
            Redirect::to(&format!("{}?note=bill_created", bill_path(&code))).into_response()
        }
        Err(e) => match form_message(e) {
            Ok((status, message)) => {
                list_page(
                    &state,
                    &signed,
                    &ListQuery::default(),
                    &form,
                    Some(message),
                    status,
                    None,
                )
                .await
            }
            Err(refusal) => refusal.into_response(),
        },
    }
}

// ------------------------------------------------------------ one bill

#[derive(Debug, Serialize)]
struct ParentRow {
    code: String,
    /// The bag's page.
    path: String,
    children: u32,
    capacity: u32,
    full: bool,
    weight: String,
}

/// A bill as its page and its dispatch sheet show it.
#[derive(Debug, Serialize)]
struct BillView {
    code: String,
    path: String,
    status: &'static str,
    status_key: &'static str,
    open: bool,
    ready: bool,
    parents: u32,
    capacity: u32,
    percent: u32,
    children: String,
    actual: String,
    expected: String,
    destination: String,
    vehicle: String,
    description: String,
    created_by: String,
    created: String,
    closed: String,
    close_reason: String,
    parent_rows: Vec<ParentRow>,
}

impl BillView {
    fn of(bill: Bill, state: &AppState) -> BillView {
        let offset = state.settings.utc_offset;
        let parent_rows = bill
            .parents
            .iter()
            .map(|p| ParentRow {
                path: format!("/console/bags/{}", encoded(&p.code)),
                code: p.code.clone(),
                children: p.child_count,
                capacity: p.capacity,
                full: p.capacity > 0 && p.child_count >= p.capacity,
                weight: kg(bills::weight_kg(u64::from(p.child_count), &state.settings)),
            })
            .collect();
        let percent = (u64::from(bill.parent_count) * 100)
            .checked_div(u64::from(bill.capacity))
            .unwrap_or(0)
            .min(100) as u32;
        BillView {
            path: bill_path(&bill.code),
            status: status_label(bill.status),
            status_key: bill.status.as_str(),
            open: bill.status != BillStatus::Closed,
            ready: bill.status == BillStatus::Ready,
            parents: bill.parent_count,
            capacity: bill.capacity,
            percent,
            children: count(i64::try_from(bill.child_count).unwrap_or(i64::MAX)),
            actual: kg(bill.actual_weight_kg),
            expected: kg(bill.expected_weight_kg),
            destination: bill.destination.unwrap_or_default(),
            vehicle: bill.vehicle_number.unwrap_or_default(),
            description: bill.description.unwrap_or_default(),
            created_by: bill.created_by.unwrap_or_default(),
            created: pages::moment(bill.created_at, offset),
            closed: bill
                .closed_at
                .map(|t| pages::moment(t, offset))
                .unwrap_or_default(),
            close_reason: bill.close_reason.unwrap_or_default(),
            parent_rows,
            code: bill.code,
        }
    }
}

/// What a refused form on a bill's page held, to show it again.
#[derive(Debug, Default, Serialize)]
struct Typed {
    parent: String,
    reason: String,
    details: Option<DetailsForm>,
}

async fn bill_page(
    state: &AppState,
    signed: &Signed,
    code: &str,
    typed: Typed,
    error: Option<String>,
    status: StatusCode,
    notice: Option<&'static str>,
) -> Response {
    let bill = match bills::get(&state.db, &state.settings, &signed.session.user, code).await {
        Ok(b) => b,
        Err(e) => return Refusal::from(e).into_response(),
    };
    let view = BillView::of(bill, state);
    let frame = Frame {
        notice,
        ..frame(signed, &format!("Bill {}", view.code), "bills")
    };
    page(
        status,
        "bill.html",
        &frame,
        context! {
            bill => Value::from(Serde(&view)),
            typed => Value::from(Serde(&typed)),
            error,
            is_admin => signed.session.user.role == Role::Admin,
            max_capacity => bills::MAX_CAPACITY,
        },
    )
}

/// `GET /console/bills/{code}`
#[tracing::instrument(skip_all)]
pub async fn bill(
    State(state): State<AppState>,
    BillingPage(signed): BillingPage,
    Path(code): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    bill_page(
        &state,
        &signed,
        &code,
        Typed::default(),
        None,
        StatusCode::OK,
        note(raw.as_deref()),
    )
    .await
}

/// After an action on a bill: its page with a note, or the page again
/// with the refusal in plain words (and what was typed).
async fn after_action(
    state: &AppState,
    signed: &Signed,
    code: &str,
    done: Result<String>,
    note_key: &str,
    typed: Typed,
) -> Response {
    match done {
        Ok(code) => Redirect::to(&format!("{}?note={note_key}", bill_path(&code))).into_response(),
        Err(e) => match form_message(e) {
            Ok((status, message)) => {
                bill_page(state, signed, code, typed, Some(message), status, None).await
            }
            Err(refusal) => refusal.into_response(),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ParentForm {
    parent: String,
}

/// `POST /console/bills/{code}/parents`: puts a parent bag on the bill.
#[tracing::instrument(skip_all)]
pub async fn add_parent(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, form }: SignedForm<ParentForm>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, BILLERS, "put bags on bills") {
        return refusal.into_response();
    }
    let done = async {
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let user = &signed.session.user;
        let placed =
            bills::add_parent(&mut tx, user, &actor, &code, &form.parent, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(placed.code)
    }
    .await;
    let typed = Typed {
        parent: form.parent.chars().take(80).collect(),
        ..Typed::default()
    };
    after_action(&state, &signed, &code, done, "parent_added", typed).await
}

/// `POST /console/bills/{code}/parents/remove`: takes a parent bag off.
#[tracing::instrument(skip_all)]
pub async fn remove_parent(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, form }: SignedForm<ParentForm>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, BILLERS, "take bags off bills") {
        return refusal.into_response();
    }
    let done = async {
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let user = &signed.session.user;
        let taken =
            bills::remove_parent(&mut tx, user, &actor, &code, &form.parent, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(taken.code)
    }
    .await;
    after_action(
        &state,
        &signed,
        &code,
        done,
        "parent_removed",
        Typed::default(),
    )
    .await
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct DetailsForm {
    destination: String,
    vehicle_number: String,
    description: String,
    capacity: String,
}

/// `POST /console/bills/{code}/details`: destination, vehicle, description
/// and capacity (an empty text field clears it).
#[tracing::instrument(skip_all)]
pub async fn details(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, form }: SignedForm<DetailsForm>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, BILLERS, "change bills") {
        return refusal.into_response();
    }
    let done = async {
        let capacity = match form.capacity.trim() {
            "" => None,
            c => Some(c.parse::<i64>().map_err(|_| {
                Error::bad_input(
                    "bad_capacity",
                    format!(
                        "Give the capacity as a whole number of parent bags, up to {}.",
                        bills::MAX_CAPACITY
                    ),
                )
            })?),
        };
        let patch = PatchBill {
            capacity,
            destination: Some(form.destination.clone()),
            vehicle_number: Some(form.vehicle_number.clone()),
            description: Some(form.description.clone()),
        };
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let user = &signed.session.user;
        let bill = bills::update(&mut tx, user, &actor, &code, &patch, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(bill.code)
    }
    .await;
    let typed = Typed {
        details: Some(form.clone()),
        ..Typed::default()
    };
    after_action(&state, &signed, &code, done, "bill_saved", typed).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CloseForm {
    reason: String,
}

/// `POST /console/bills/{code}/close`: closes the bill (early, with a reason).
#[tracing::instrument(skip_all)]
pub async fn close(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, form }: SignedForm<CloseForm>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, BILLERS, "close bills") {
        return refusal.into_response();
    }
    let done = async {
        let req = CloseBill {
            reason: Some(form.reason.clone()),
        };
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let user = &signed.session.user;
        let bill = bills::close(&mut tx, user, &actor, &code, &req, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(bill.code)
    }
    .await;
    let typed = Typed {
        reason: form.reason.chars().take(300).collect(),
        ..Typed::default()
    };
    after_action(&state, &signed, &code, done, "bill_closed", typed).await
}

/// `POST /console/bills/{code}/reopen`: opens a closed bill again (admins).
#[tracing::instrument(skip_all)]
pub async fn reopen(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, .. }: SignedForm<NoFields>,
) -> Response {
    if let Err(refusal) = may_bill(&signed, &[Role::Admin], "reopen bills (only an admin can)") {
        return refusal.into_response();
    }
    let done = async {
        let actor = actor_of(&signed.session, meta);
        let mut tx = state.db.begin().await?;
        let bill = bills::reopen(&mut tx, &signed.session.user, &actor, &code, state.now()).await?;
        tx.commit().await?;
        Ok::<_, Error>(bill.code)
    }
    .await;
    after_action(
        &state,
        &signed,
        &code,
        done,
        "bill_reopened",
        Typed::default(),
    )
    .await
}

// ------------------------------------------------------------ the dispatch sheet

/// The bill's code as a QR code, an SVG picture.
fn qr_svg(code: &str) -> Result<String> {
    Ok(qrcode::QrCode::new(code.as_bytes())
        .map_err(|e| Error::Internal(format!("QR code of bill {code} failed: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build())
}

/// `GET /console/bills/{code}/sheet`: the dispatch sheet, made to be printed.
#[tracing::instrument(skip_all)]
pub async fn sheet(
    State(state): State<AppState>,
    BillingPage(signed): BillingPage,
    Path(code): Path<String>,
) -> Response {
    let shown = async {
        let bill = bills::get(&state.db, &state.settings, &signed.session.user, &code).await?;
        let qr = qr_svg(&bill.code)?;
        Ok::<_, Error>((BillView::of(bill, &state), qr))
    }
    .await;
    let (view, qr) = match shown {
        Ok(v) => v,
        Err(e) => return Refusal::from(e).into_response(),
    };
    let now = state.now().time();
    page(
        StatusCode::OK,
        "bill_sheet.html",
        &frame(&signed, &format!("Dispatch sheet {}", view.code), "bills"),
        context! {
            bill => Value::from(Serde(&view)),
            qr => Value::from_safe_string(qr),
            printed => pages::moment(now, state.settings.utc_offset),
            printed_day => day_text(today(&state)),
        },
    )
}

// ------------------------------------------------------------ the end-of-day summary

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SummaryQuery {
    date: String,
}

/// One summary line as the page shows it.
#[derive(Debug, Serialize)]
struct TotalsView {
    bills_created: String,
    bills_closed: String,
    new: String,
    in_progress: String,
    ready: String,
    closed: String,
    parents: String,
    children: String,
    actual: String,
    expected: String,
}

impl TotalsView {
    fn of(t: &SummaryTotals) -> TotalsView {
        TotalsView {
            bills_created: count(t.bills_created),
            bills_closed: count(t.bills_closed),
            new: count(t.by_status.new),
            in_progress: count(t.by_status.in_progress),
            ready: count(t.by_status.ready),
            closed: count(t.by_status.closed),
            parents: count(t.parent_bags),
            children: count(t.child_bags),
            actual: kg(t.actual_weight_kg),
            expected: kg(t.expected_weight_kg),
        }
    }
}

#[derive(Debug, Serialize)]
struct SummaryBillRow {
    code: String,
    path: String,
    status: &'static str,
    status_key: &'static str,
    biller: String,
    what: &'static str,
    parents: u32,
    capacity: u32,
    children: String,
    actual: String,
    expected: String,
}

fn summary_view(s: &DaySummary) -> (TotalsView, Vec<(String, TotalsView)>, Vec<SummaryBillRow>) {
    let billers = s
        .billers
        .iter()
        .map(|b| {
            (
                b.biller.clone().unwrap_or_else(|| "(not known)".into()),
                TotalsView::of(&b.totals),
            )
        })
        .collect();
    let bills = s
        .bills
        .iter()
        .map(|b| SummaryBillRow {
            code: b.code.clone(),
            path: bill_path(&b.code),
            status: status_label(b.status),
            status_key: b.status.as_str(),
            biller: b.biller.clone().unwrap_or_default(),
            what: match (b.created_that_day, b.closed_that_day) {
                (true, true) => "Created and closed",
                (true, false) => "Created",
                _ => "Closed",
            },
            parents: b.parent_count,
            capacity: b.capacity,
            children: count(i64::try_from(b.child_count).unwrap_or(i64::MAX)),
            actual: kg(b.actual_weight_kg),
            expected: kg(b.expected_weight_kg),
        })
        .collect();
    (TotalsView::of(&s.totals), billers, bills)
}

/// `GET /console/bills/summary?date=YYYY-MM-DD` (today when absent).
#[tracing::instrument(skip_all)]
pub async fn summary(
    State(state): State<AppState>,
    BillingPage(signed): BillingPage,
    query: Result<Query<SummaryQuery>, QueryRejection>,
) -> Response {
    let today = today(&state);
    let asked = query.map(|Query(q)| q.date).unwrap_or_default();
    let (day, error) = match parse_day(Some(&asked)) {
        Ok(day) => (day.unwrap_or(today), None),
        Err(e) => match form_message(e) {
            Ok((_, message)) => (today, Some(message)),
            Err(refusal) => return refusal.into_response(),
        },
    };
    let summary = match summary::of_day(&state.db, &state.settings, &signed.session.user, day).await
    {
        Ok(s) => s,
        Err(e) => return Refusal::from(e).into_response(),
    };
    let (totals, billers, bills) = summary_view(&summary);
    let downloads = exports::may(&signed.session.user, ExportKind::Summary).then(|| {
        let date = summary.date.as_str();
        Downloads::of(ExportKind::Summary, &[("from", date), ("to", date)])
    });
    let link = |d: Option<Date>| d.map(|d| format!("/console/bills/summary?date={d}"));
    page(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "bills_summary.html",
        &frame(&signed, "End-of-day summary", "bills"),
        context! {
            date => summary.date,
            day => day_text(day),
            is_today => day == today,
            offset => summary.utc_offset,
            kg_per_child => kg(summary.kg_per_child),
            totals => Value::from(Serde(&totals)),
            billers => Value::from(Serde(&billers)),
            bills => Value::from(Serde(&bills)),
            previous => link(day.previous_day()),
            next => link(day.next_day().filter(|d| *d <= today)),
            downloads => Value::from(Serde(&downloads)),
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_days_and_addresses_read_plainly() {
        assert_eq!(kg(0.0), "0 kg");
        assert_eq!(kg(30.0), "30 kg");
        assert_eq!(kg(22.5), "22.5 kg");
        assert_eq!(kg(1234.0), "1,234 kg");
        assert_eq!(day_text(time::macros::date!(2026 - 11 - 02)), "2 Nov 2026");
        assert_eq!(bill_path("B/2026/7"), "/console/bills/B%2F2026%2F7");
        assert_eq!(encoded("a b&c"), "a%20b%26c");
    }

    #[test]
    fn the_list_keeps_its_filters_from_page_to_page() {
        let q = ListQuery {
            status: "in_progress".into(),
            destination: " Kanpur ".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            q.with_cursor(Some("B-10")),
            "/console/bills?status=in_progress&destination=Kanpur&cursor=B-10"
        );
        assert_eq!(ListQuery::default().with_cursor(None), "/console/bills");
        assert!(q.is_filtered());
        assert!(!ListQuery::default().is_filtered());
    }
}
