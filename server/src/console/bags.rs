//! The bags pages: finding bags (a code or its start, filters, keyset pages),
//! one bag with its parent or children, bill and whole history, and an
//! admin's correction: taking a child bag out of its parent, with a reason.
//! Everything goes through the domain functions the JSON API uses
//! (`bags::list`, `bags::get`, `bags::history`, `linking::unlink`).

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use traitortrack_protocol::{normalize, Bag, BagKind, BagSummary, Role};

use super::access::{Ready, Signed, SignedForm};
use super::exports::{self, Downloads};
use super::pages::{self, form_message, page, Frame, Refusal};
use super::{frame, note};
use crate::api::extract::{actor_of, Meta};
use crate::bags::{self, BagFilter, BagHistoryEntry, DateField};
use crate::error::{Error, Kind, Result};
use crate::export::Kind as ExportKind;
use crate::linking::{self, Unlink};
use crate::{areas, AppState};

/// Bags on one page of the list.
const PAGE_SIZE: u32 = 50;
/// History entries a bag's page shows (the newest).
const HISTORY_SHOWN: u32 = 300;
/// The longest value of a search field kept (codes are at most 64).
const FIELD_LIMIT: usize = 100;
/// The longest reason for a correction.
const REASON_LIMIT: usize = 500;

// ------------------------------------------------------------ addresses

/// Percent-encodes a value for a query string or a path segment.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console address of a bag's page.
pub fn bag_href(code: &str) -> String {
    format!("/console/bags/{}", encode(code))
}

/// The console address of a bill's page.
fn bill_href(code: &str) -> String {
    format!("/console/bills/{}", encode(code))
}

/// A code with the address of its page.
#[derive(Debug, Serialize)]
struct Linked {
    code: String,
    href: String,
}

impl Linked {
    fn bag(code: &str) -> Linked {
        Linked {
            code: code.to_string(),
            href: bag_href(code),
        }
    }

    fn bill(code: &str) -> Linked {
        Linked {
            code: code.to_string(),
            href: bill_href(code),
        }
    }
}

// ------------------------------------------------------------ the list

/// The search form as typed: every field as text, so that a page always
/// shows back what was asked and a wrong value gets a plain message.
#[derive(Debug, Default, Serialize)]
struct Search {
    search: String,
    kind: String,
    area: String,
    complete: String,
    billed: String,
    date: String,
    from: String,
    to: String,
    cursor: String,
}

impl Search {
    fn read(query: Option<&str>) -> Search {
        let uri: Option<Uri> = format!("/?{}", query.unwrap_or_default()).parse().ok();
        let pairs = uri
            .and_then(|u| Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
            .map(|q| q.0)
            .unwrap_or_default();
        let mut s = Search::default();
        for (key, value) in pairs {
            let field = match key.as_str() {
                "search" => &mut s.search,
                "kind" => &mut s.kind,
                "area" => &mut s.area,
                "complete" => &mut s.complete,
                "billed" => &mut s.billed,
                "date" => &mut s.date,
                "from" => &mut s.from,
                "to" => &mut s.to,
                "cursor" => &mut s.cursor,
                _ => continue,
            };
            if field.is_empty() {
                *field = value.trim().chars().take(FIELD_LIMIT).collect();
            }
        }
        s
    }

    /// Something chosen besides the code (the date field alone filters nothing).
    fn has_filters(&self) -> bool {
        [
            &self.kind,
            &self.area,
            &self.complete,
            &self.billed,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|f| !f.is_empty())
    }

    /// Only a code typed on the first page: an exact match opens the bag.
    fn only_a_code(&self) -> bool {
        !self.search.is_empty() && self.cursor.is_empty() && !self.has_filters()
    }

    /// The list's address with these filters and another cursor.
    fn href(&self, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("search", &self.search),
            ("kind", &self.kind),
            ("area", &self.area),
            ("complete", &self.complete),
            ("billed", &self.billed),
            ("date", &self.date),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                parts.push(format!("{key}={}", encode(value)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", encode(c)));
        }
        if parts.is_empty() {
            "/console/bags".into()
        } else {
            format!("/console/bags?{}", parts.join("&"))
        }
    }

    fn filter(&self, state: &AppState) -> Result<BagFilter> {
        let yes_no = |value: &str, what: &str| match value {
            "" => Ok(None),
            "yes" => Ok(Some(true)),
            "no" => Ok(Some(false)),
            _ => Err(Error::bad_input(
                "bad_filter",
                format!("Choose {what} from the list."),
            )),
        };
        let kind = match self.kind.as_str() {
            "" => None,
            other => Some(BagKind::parse(other).ok_or_else(|| {
                Error::bad_input("bad_filter", "Choose parent or child bags from the list.")
            })?),
        };
        let date = match self.date.as_str() {
            "" | "created" => DateField::Created,
            "changed" => DateField::Changed,
            _ => {
                return Err(Error::bad_input(
                    "bad_filter",
                    "Choose created or last changed from the list.",
                ))
            }
        };
        let crate::days::Span { from, to } =
            crate::days::Span::parse(Some(&self.from), Some(&self.to), state.settings.utc_offset)?;
        Ok(BagFilter {
            search: Some(self.search.clone()).filter(|s| !s.is_empty()),
            kind,
            area: Some(self.area.clone()).filter(|s| !s.is_empty()),
            complete: yes_no(&self.complete, "full or not full")?,
            billed: yes_no(&self.billed, "on a bill or not")?,
            date,
            from,
            to,
            cursor: Some(self.cursor.clone()).filter(|s| !s.is_empty()),
            limit: PAGE_SIZE,
        })
    }
}

/// One bag in the list, as the table shows it.
#[derive(Debug, Serialize)]
struct BagLine {
    code: String,
    href: String,
    kind: &'static str,
    is_parent: bool,
    complete: bool,
    children: u32,
    capacity: u32,
    bill: Option<Linked>,
    area: String,
    changed: String,
}

fn kind_label(kind: BagKind) -> &'static str {
    match kind {
        BagKind::Parent => "Parent",
        BagKind::Child => "Child",
    }
}

fn line(b: BagSummary, state: &AppState) -> BagLine {
    BagLine {
        href: bag_href(&b.code),
        kind: kind_label(b.kind),
        is_parent: b.kind == BagKind::Parent,
        complete: b.complete,
        children: b.child_count,
        capacity: b.capacity.unwrap_or(0),
        bill: b.bill.as_deref().map(Linked::bill),
        area: b.dispatch_area.unwrap_or_default(),
        changed: pages::moment(b.updated_at, state.settings.utc_offset),
        code: b.code,
    }
}

/// An area the filter offers.
#[derive(Debug, Serialize)]
struct AreaChoice {
    name: String,
    retired: bool,
}

/// `GET /console/bags`: the search form and one page of bags.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Ready(signed): Ready,
    RawQuery(query): RawQuery,
) -> Response {
    let search = Search::read(query.as_deref());
    let user = &signed.session.user;
    // A dispatcher sees their own area only: the form offers no other.
    let areas = if user.role == Role::Dispatcher {
        Vec::new()
    } else {
        match areas::list(&state.db).await {
            Ok(all) => all
                .into_iter()
                .map(|a| AreaChoice {
                    name: a.name,
                    retired: a.retired_at.is_some(),
                })
                .collect(),
            Err(e) => return Refusal::from(e).into_response(),
        }
    };
    let found = match search.filter(&state) {
        Ok(filter) => bags::list(&state.db, user, filter).await,
        Err(e) => Err(e),
    };
    let (status, error, page_of_bags) = match found {
        Ok(p) => (StatusCode::OK, None, Some(p)),
        Err(
            e @ Error::Refused {
                kind: Kind::Forbidden,
                ..
            },
        ) => return Refusal::from(e).into_response(),
        Err(e) => match form_message(e) {
            Ok((status, message)) => (status, Some(message), None),
            Err(refusal) => return refusal.into_response(),
        },
    };
    if let Some(p) = &page_of_bags {
        if search.only_a_code() {
            let exact = normalize(&search.search).ok();
            if let Some(first) = p.items.first().filter(|b| Some(&b.code) == exact.as_ref()) {
                return Redirect::to(&bag_href(&first.code)).into_response();
            }
        }
    }
    let (rows, next) = match page_of_bags {
        Some(p) => (
            p.items.into_iter().map(|b| line(b, &state)).collect(),
            p.next_cursor.as_deref().map(|c| search.href(Some(c))),
        ),
        None => (Vec::new(), None),
    };
    let first_page = (!search.cursor.is_empty()).then(|| search.href(None));
    let filtered = !search.search.is_empty() || search.has_filters();
    let downloads = (error.is_none() && exports::may(user, ExportKind::Bags)).then(|| {
        Downloads::of(
            ExportKind::Bags,
            &[
                ("search", search.search.as_str()),
                ("kind", search.kind.as_str()),
                ("area", search.area.as_str()),
                ("complete", exports::yes_no(&search.complete)),
                ("billed", exports::yes_no(&search.billed)),
                ("date", search.date.as_str()),
                ("from", search.from.as_str()),
                ("to", search.to.as_str()),
            ],
        )
    });
    page(
        status,
        "bags.html",
        &frame(&signed, "Bags", "bags"),
        context! {
            q => Value::from(Serde(&search)),
            areas => Value::from(Serde(&areas)),
            rows => Value::from(Serde(&rows)),
            next,
            first_page,
            filtered,
            error,
            downloads => Value::from(Serde(&downloads)),
            page_size => PAGE_SIZE,
        },
    )
}

// ------------------------------------------------------------ one bag

/// A bag as its page shows it.
#[derive(Debug, Serialize)]
struct BagView {
    code: String,
    kind: &'static str,
    is_parent: bool,
    complete: bool,
    children: u32,
    capacity: u32,
    parent: Option<Linked>,
    linked_by: String,
    linked_at: String,
    child_rows: Vec<ChildLine>,
    bill: Option<Linked>,
    area: String,
    created: String,
    changed: String,
    unlink_action: String,
}

#[derive(Debug, Serialize)]
struct ChildLine {
    n: usize,
    code: String,
    href: String,
    by: String,
    at: String,
}

/// A bag's view; a child's link into its parent (who, when) is the newest
/// link into that parent in its history.
fn view(bag: &Bag, history: &[BagHistoryEntry], state: &AppState) -> BagView {
    let offset = state.settings.utc_offset;
    let put_in = bag.parent.as_ref().and_then(|p| {
        history
            .iter()
            .find(|e| e.action == "link" && e.parent.as_ref() == Some(p))
    });
    BagView {
        code: bag.code.clone(),
        kind: kind_label(bag.kind),
        is_parent: bag.kind == BagKind::Parent,
        complete: bag.complete,
        children: bag.child_count,
        capacity: bag.capacity.unwrap_or(0),
        parent: bag.parent.as_deref().map(Linked::bag),
        linked_by: put_in.and_then(|e| e.by.clone()).unwrap_or_default(),
        linked_at: put_in
            .map(|e| pages::moment(e.at, offset))
            .unwrap_or_default(),
        child_rows: bag
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| ChildLine {
                n: i + 1,
                href: bag_href(&c.code),
                code: c.code.clone(),
                by: c.linked_by.clone().unwrap_or_default(),
                at: pages::moment(c.linked_at, offset),
            })
            .collect(),
        bill: bag.bill.as_deref().map(Linked::bill),
        area: bag.dispatch_area.clone().unwrap_or_default(),
        created: pages::moment(bag.created_at, offset),
        changed: pages::moment(bag.updated_at, offset),
        unlink_action: format!("{}/unlink", bag_href(&bag.code)),
    }
}

/// One line of a bag's history: what happened in plain words (with the
/// other bag or the bill as a link), who, where and when.
#[derive(Debug, Serialize)]
struct HistoryLine {
    /// `created`, `link`, `unlink`, `correction`, `bill` or `other`: also the CSS class.
    sort: &'static str,
    text: String,
    target: Option<Linked>,
    tail: &'static str,
    reason: Option<String>,
    by: String,
    station: String,
    when: String,
}

fn history_line(e: BagHistoryEntry, code: &str, state: &AppState) -> HistoryLine {
    // Seen from this bag: the other bag of a link, or the bill.
    let is_child = e.child.as_deref() == Some(code);
    let other = if is_child {
        e.parent.as_deref()
    } else {
        e.child.as_deref()
    };
    let bag_target = other.map(Linked::bag);
    let (sort, text, target, tail): (_, String, _, _) = match e.action.as_str() {
        "created" => ("created", "Bag created (first scan)".into(), None, ""),
        "imported" => (
            "created",
            format!("Bag created by import #{}", e.import_id.unwrap_or_default()),
            None,
            "",
        ),
        "imported_link" => (
            "link",
            format!(
                "Put in parent bag by import #{}",
                e.import_id.unwrap_or_default()
            ),
            bag_target,
            "",
        ),
        "link" if is_child => ("link", "Put in parent bag".into(), bag_target, ""),
        "link" => ("link", "Child bag".into(), bag_target, "put in"),
        "unlink" if is_child => (
            "unlink",
            "Taken out of parent bag".into(),
            bag_target,
            "(undo of a scan)",
        ),
        "unlink" => (
            "unlink",
            "Child bag".into(),
            bag_target,
            "taken out (undo of a scan)",
        ),
        "unlink_correction" if is_child => (
            "correction",
            "Taken out of parent bag".into(),
            bag_target,
            "by an admin",
        ),
        "unlink_correction" => (
            "correction",
            "Child bag".into(),
            bag_target,
            "taken out by an admin",
        ),
        "bill_add" => (
            "bill",
            "Put on bill".into(),
            e.bill.as_deref().map(Linked::bill),
            "",
        ),
        "bill_remove" => (
            "bill",
            "Taken off bill".into(),
            e.bill.as_deref().map(Linked::bill),
            "",
        ),
        other => {
            let mut words = other.replace('_', " ");
            if let Some(first) = words.get(..1) {
                words = first.to_uppercase() + &words[1..];
            }
            ("other", words, None, "")
        }
    };
    HistoryLine {
        sort,
        text,
        target,
        tail,
        reason: e.reason,
        by: e.by.unwrap_or_default(),
        station: e.station.unwrap_or_default(),
        when: to_the_second(e.at, state),
    }
}

/// A moment with its seconds: `22 Nov 2026, 14:05:09` (scans come seconds apart).
fn to_the_second(t: time::OffsetDateTime, state: &AppState) -> String {
    let offset = state.settings.utc_offset;
    let day = pages::moment(t, offset);
    let day = day.rsplit_once(", ").map_or(day.as_str(), |(d, _)| d);
    format!("{day}, {}", pages::clock(t, offset))
}

/// What a bag's page shows besides the bag: a notice after an action, or
/// the correction form again with its refusal.
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    error: Option<String>,
    reason: String,
}

async fn bag_page(
    state: &AppState,
    signed: &Signed,
    bag: &Bag,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let user = &signed.session.user;
    let history = match bags::history(&state.db, user, &bag.code, HISTORY_SHOWN).await {
        Ok(h) => h,
        Err(e) => return Refusal::from(e).into_response(),
    };
    let shown_bag = view(bag, &history.items, state);
    let lines: Vec<HistoryLine> = history
        .items
        .into_iter()
        .map(|e| history_line(e, &bag.code, state))
        .collect();
    let can_unlink = user.role == Role::Admin;
    let frame = Frame {
        notice: shown.notice,
        ..frame(signed, &format!("Bag {}", bag.code), "bags")
    };
    page(
        status,
        "bag.html",
        &frame,
        context! {
            bag => Value::from(Serde(&shown_bag)),
            history => Value::from(Serde(&lines)),
            truncated => history.truncated,
            history_shown => HISTORY_SHOWN,
            can_unlink,
            error => shown.error,
            reason => shown.reason,
            reason_limit => REASON_LIMIT,
        },
    )
}

/// `GET /console/bags/{code}`: one bag, its parent or children, bill and history.
#[tracing::instrument(skip_all)]
pub async fn bag(
    State(state): State<AppState>,
    Ready(signed): Ready,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match bags::get(&state.db, &state.bag_reads, &signed.session.user, &code).await {
        Ok(bag) => {
            let shown = Shown {
                notice: note(query.as_deref()),
                ..Shown::default()
            };
            bag_page(&state, &signed, &bag, StatusCode::OK, shown).await
        }
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// The correction form: why the bag is taken out.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnlinkForm {
    reason: String,
}

/// `POST /console/bags/{code}/unlink`: an admin takes a child bag out of its
/// parent, with a reason kept in the audit log and both bags' histories.
#[tracing::instrument(skip_all)]
pub async fn unlink(
    State(state): State<AppState>,
    meta: Meta,
    Path(code): Path<String>,
    SignedForm { signed, form }: SignedForm<UnlinkForm>,
) -> Response {
    if let Some(step) = signed.session.pending {
        return Refusal::step(step).into_response();
    }
    let user = &signed.session.user;
    if let Err(e) = user.require(
        &[Role::Admin],
        "take a bag out of its parent (it is for admins)",
    ) {
        return Refusal::from(e).into_response();
    }
    let bag = match bags::get(&state.db, &state.bag_reads, user, &code).await {
        Ok(bag) => bag,
        Err(e) => return Refusal::from(e).into_response(),
    };
    let reason = form.reason.trim();
    let refused = |message: String| Shown {
        error: Some(message),
        reason: reason.chars().take(REASON_LIMIT).collect(),
        notice: None,
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let Some(parent) = bag.parent.as_deref() else {
        let message = match bag.kind {
            BagKind::Parent => format!(
                "{} is a parent bag. Open the page of the child bag to take it out.",
                bag.code
            ),
            BagKind::Child => format!("{} is not in a parent bag now.", bag.code),
        };
        return bag_page(&state, &signed, &bag, unprocessable, refused(message)).await;
    };
    if reason.is_empty() {
        let message = "Write why the bag is taken out. The reason is kept in its history.";
        return bag_page(
            &state,
            &signed,
            &bag,
            unprocessable,
            refused(message.into()),
        )
        .await;
    }
    if reason.chars().count() > REASON_LIMIT {
        let message = format!("Keep the reason under {REASON_LIMIT} characters.");
        return bag_page(&state, &signed, &bag, unprocessable, refused(message)).await;
    }
    let actor = actor_of(&signed.session, meta);
    let now = state.now();
    let done: Result<()> = async {
        let mut tx = state.db.begin().await?;
        let req = Unlink {
            parent,
            child: Some(&bag.code),
            reason: Some(reason),
            at: now,
        };
        linking::unlink(&mut tx, &state.settings, user, &actor, req, now).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to(&format!("{}?note=unlinked", bag_href(&bag.code))).into_response(),
        Err(e) => match form_message(e) {
            Ok((status, message)) => {
                bag_page(&state, &signed, &bag, status, refused(message)).await
            }
            Err(failure) => failure.into_response(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_filters_survive_the_address() {
        assert_eq!(bag_href("SB00001"), "/console/bags/SB00001");
        assert_eq!(bag_href("A/B.C"), "/console/bags/A%2FB%2EC");
        let s = Search::read(Some(
            "search=sb0&kind=parent&from=2026-01-02&cursor=SB00050&x=1",
        ));
        assert_eq!(s.search, "sb0");
        assert!(!s.only_a_code());
        assert_eq!(
            s.href(Some("SB00100")),
            "/console/bags?search=sb0&kind=parent&from=2026-01-02&cursor=SB00100"
        );
        assert_eq!(
            s.href(None),
            "/console/bags?search=sb0&kind=parent&from=2026-01-02"
        );
        let s = Search::read(Some("search=a%20b%26c&search=ignored"));
        assert_eq!(s.search, "a b&c");
        assert!(s.only_a_code());
        assert_eq!(s.href(None), "/console/bags?search=a%20b%26c");
        assert_eq!(Search::read(Some("%%%")).search, "");
    }
}
