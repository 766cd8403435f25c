//! Exports: every record out as CSV or an Excel workbook, streamed in
//! bounded memory with no row cap, and link history as EPCIS 2.0 JSON-LD
//! for partners' track-and-trace systems. The console's buttons, the API and
//! the command line all run [`run`] (or [`epcis::write`]).
//!
//! Rows are read in keyset batches, so no export holds a database
//! connection or a snapshot for its whole length: rows changed while an
//! export runs may show in their old or new state, as on the console's lists.

mod activity;
mod bags;
mod bills;
pub mod epcis;
mod summary;
mod table;

use serde::Deserialize;
use time::UtcOffset;
use traitortrack_protocol::{BagKind, BillStatus, Role};

use crate::audit::{self, Actor, AuditFilter, Entry};
use crate::config::Settings;
pub use crate::days::Span;
use crate::db::{Db, Ts};
use crate::error::{Error, Result};
use crate::users::User;

pub use table::{file_out, iso, Breaker, Cell, Format, Out, Table, SHEET_ROWS};

/// Rows read from the database at a time.
const BATCH: i64 = 5000;

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bags with parent, child count, bill, area and dates.
    Bags,
    /// Bills with counts and weights.
    Bills,
    /// Each child in its parent: who linked it, where and when.
    Links,
    /// The audit log.
    Audit,
    /// Per user: what they did in the date range.
    Activity,
    /// Links and unlinks as EPCIS 2.0 aggregation events (JSON-LD).
    Epcis,
    /// The end-of-day bill summary: per day, per biller and in all.
    Summary,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Bags,
        Kind::Bills,
        Kind::Links,
        Kind::Audit,
        Kind::Activity,
        Kind::Epcis,
        Kind::Summary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Bags => "bags",
            Kind::Bills => "bills",
            Kind::Links => "links",
            Kind::Audit => "audit",
            Kind::Activity => "activity",
            Kind::Epcis => "epcis",
            Kind::Summary => "summary",
        }
    }

    /// The sheet's name in a workbook.
    fn title(self) -> &'static str {
        match self {
            Kind::Bags => "Bags",
            Kind::Bills => "Bills",
            Kind::Links => "Links",
            Kind::Audit => "Audit log",
            Kind::Activity => "User activity",
            Kind::Epcis => "EPCIS",
            Kind::Summary => "Summary",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::not_found(
                    "no_such_export",
                    format!(
                        "There is no export {s:?}. Choose one of: bags, bills, links, audit, activity, summary, epcis."
                    ),
                )
            })
    }

    /// Billers may export bills; everything else is for admins.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Kind::Bills | Kind::Summary => &[Role::Admin, Role::Biller],
            _ => &[Role::Admin],
        }
    }

    /// Refuses a format this export does not come in.
    pub fn check(self, format: Format) -> Result<()> {
        match (self, format) {
            (Kind::Epcis, Format::JsonLd) => Ok(()),
            (Kind::Epcis, _) => Err(Error::bad_input(
                "bad_format",
                "The EPCIS export comes as JSON-LD only (epcis.jsonld).",
            )),
            (_, Format::JsonLd) => Err(Error::bad_input(
                "bad_format",
                format!("The {} export comes as csv or xlsx.", self.name()),
            )),
            _ => Ok(()),
        }
    }
}

/// The filters of an export, as the console's lists take them. Each kind
/// reads the ones that apply to it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// First warehouse day, `YYYY-MM-DD` (bags, bills: created; links:
    /// linked; audit, activity: acted).
    pub from: Option<String>,
    /// Last warehouse day, inclusive.
    pub to: Option<String>,
    /// Bags: a code or the start of one.
    pub search: Option<String>,
    /// Bags: `parent` or `child`.
    pub kind: Option<BagKind>,
    /// Bags: which date `from` and `to` look at: `created` (the default)
    /// or `changed`.
    pub date: Option<crate::bags::DateField>,
    /// Bags: a dispatch area.
    pub area: Option<String>,
    /// Bags: only parents that are full (`true`) or not (`false`).
    pub complete: Option<bool>,
    /// Bags: only bags on a bill (`true`) or not (`false`).
    pub billed: Option<bool>,
    /// Bills: a status.
    pub status: Option<BillStatus>,
    /// Bills: part of the code.
    pub code: Option<String>,
    /// Bills: part of the destination, in any case.
    pub destination: Option<String>,
    /// Bills: the username of the biller who created them.
    pub biller: Option<String>,
    /// Audit: a username.
    pub actor: Option<String>,
    /// Audit: an action such as `link`.
    pub action: Option<String>,
    /// Audit: an entity such as `bag`.
    pub entity: Option<String>,
    /// Audit: an entity's code.
    pub entity_code: Option<String>,
}

fn some_text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The bills list's filter that this export's filter gives.
fn bill_filter(f: &Filter) -> Result<crate::bills::BillFilter> {
    Ok(crate::bills::BillFilter {
        status: f.status,
        code: some_text(&f.code),
        destination: some_text(&f.destination),
        from: crate::days::parse(f.from.as_deref())?,
        to: crate::days::parse(f.to.as_deref())?,
        biller: some_text(&f.biller),
        cursor: None,
        limit: 0,
    })
}

/// The days a summary covers: `from` to `to`; one of them alone is that
/// one day; neither is today.
pub fn summary_days(
    filter: &Filter,
    settings: &Settings,
    now: Ts,
) -> Result<(time::Date, time::Date)> {
    let from = crate::days::parse(filter.from.as_deref())?;
    let to = crate::days::parse(filter.to.as_deref())?;
    let today = crate::counters::day_of(now.time(), settings.utc_offset);
    let (first, last) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(d), None) | (None, Some(d)) => (d, d),
        (None, None) => (today, today),
    };
    Span::of(Some(first), Some(last), settings.utc_offset)?;
    if (last - first).whole_days() >= summary::MAX_DAYS {
        return Err(Error::bad_input(
            "range_too_long",
            format!(
                "A summary covers at most {} days; choose a shorter range.",
                summary::MAX_DAYS
            ),
        ));
    }
    Ok((first, last))
}

/// Reads the filter's date range in the warehouse's offset.
pub fn span(filter: &Filter, settings: &Settings) -> Result<Span> {
    Span::parse(
        filter.from.as_deref(),
        filter.to.as_deref(),
        settings.utc_offset,
    )
}

/// Audits an export: who exported what, in which format, with which filters.
pub async fn record(
    db: &Db,
    actor: &Actor,
    kind: Kind,
    format: Format,
    filter: &Filter,
    now: Ts,
) -> Result<()> {
    let mut tx = db.begin().await?;
    audit::record(
        &mut tx,
        actor,
        now,
        Entry {
            action: "export",
            entity: "export",
            code: Some(kind.name()),
            before: None,
            after: Some(serde_json::json!({
                "format": format.extension(),
                "filter": filter_json(filter),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The filters that were given, for the audit row.
fn filter_json(f: &Filter) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            map.insert(k.into(), serde_json::Value::String(v));
        }
    };
    put("from", some_text(&f.from));
    put("to", some_text(&f.to));
    put("search", some_text(&f.search));
    put("kind", f.kind.map(|k| format!("{k:?}").to_lowercase()));
    put("date", f.date.map(|d| format!("{d:?}").to_lowercase()));
    put("area", some_text(&f.area));
    put("complete", f.complete.map(|b| b.to_string()));
    put("billed", f.billed.map(|b| b.to_string()));
    put("status", f.status.map(|s| format!("{s:?}")));
    put("code", some_text(&f.code));
    put("destination", some_text(&f.destination));
    put("biller", some_text(&f.biller));
    put("actor", some_text(&f.actor));
    put("action", some_text(&f.action));
    put("entity", some_text(&f.entity));
    put("entity_code", some_text(&f.entity_code));
    serde_json::Value::Object(map)
}

/// The file name a download of `kind` gets.
pub fn file_name(kind: &str, extension: &str, now: Ts, offset: UtcOffset) -> String {
    let day = now.time().to_offset(offset).date();
    format!("traitortrack-{kind}-{day}.{extension}")
}

/// What a download asks for, checked: the export, its format, the date
/// range of its filter.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub kind: Kind,
    pub format: Format,
    pub span: Span,
}

impl Request {
    /// Checks the format and the filter's dates for this export.
    pub fn checked(
        (kind, format): (Kind, Format),
        filter: &Filter,
        settings: &Settings,
        now: Ts,
    ) -> Result<Request> {
        kind.check(format)?;
        let span = span(filter, settings)?;
        if kind == Kind::Summary {
            summary_days(filter, settings, now)?;
        }
        if kind == Kind::Bills {
            bill_filter(filter)?.conditions(settings, 1)?;
        }
        Ok(Request { kind, format, span })
    }
}

/// Checks that `user` may run this export in this format and that its
/// filters read, and audits it. Run before the first byte leaves, so a
/// refusal is a plain error rather than a broken file.
pub async fn begin(
    db: &Db,
    settings: &Settings,
    user: &User,
    actor: &Actor,
    (kind, format): (Kind, Format),
    filter: &Filter,
    now: Ts,
) -> Result<Request> {
    user.require(kind.roles(), &format!("export {}", kind.name()))?;
    let request = Request::checked((kind, format), filter, settings, now)?;
    record(db, actor, kind, format, filter, now).await?;
    Ok(request)
}

/// Writes the whole export of `kind` into `out`, answering the row count.
/// Call [`begin`] first.
pub async fn run(
    db: &Db,
    settings: &Settings,
    request: Request,
    filter: &Filter,
    now: Ts,
    out: Out,
) -> Result<u64> {
    let Request { kind, format, span } = request;
    let offset = settings.utc_offset;
    match kind {
        Kind::Epcis => epcis::write(db, span, offset, now, out).await,
        Kind::Summary => {
            let (first, last) = summary_days(filter, settings, now)?;
            let t = Table::new(format, kind.title(), summary::HEADERS, offset, out)?;
            summary::summary(db, settings, first, last, t).await
        }
        Kind::Bags => {
            let t = Table::new(format, kind.title(), bags::BAG_HEADERS, offset, out)?;
            bags::bags(db, filter, span, t).await
        }
        Kind::Links => {
            let t = Table::new(format, kind.title(), bags::LINK_HEADERS, offset, out)?;
            bags::links(db, span, t).await
        }
        Kind::Bills => {
            let t = Table::new(format, kind.title(), bills::HEADERS, offset, out)?;
            bills::bills(db, settings, &bill_filter(filter)?, t).await
        }
        Kind::Audit => {
            let t = Table::new(format, kind.title(), activity::AUDIT_HEADERS, offset, out)?;
            let audit_filter = AuditFilter {
                actor: some_text(&filter.actor),
                action: some_text(&filter.action),
                entity: some_text(&filter.entity),
                entity_code: some_text(&filter.entity_code),
                from: span.from,
                to: span.to,
                before: None,
                limit: audit::MAX_PAGE,
            };
            activity::audit(db, audit_filter, t).await
        }
        Kind::Activity => {
            let t = Table::new(
                format,
                kind.title(),
                activity::ACTIVITY_HEADERS,
                offset,
                out,
            )?;
            activity::activity(db, span, t).await
        }
    }
}

/// One day's summary as a whole file in memory (for the summary mail).
pub async fn summary_file(
    day: &traitortrack_protocol::DaySummary,
    settings: &Settings,
    format: Format,
) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| Error::Internal(format!("a temporary file: {e}"));
    let mut file = tempfile::tempfile().map_err(io)?;
    let out = Out::File(file.try_clone().map_err(io)?);
    let mut table = Table::new(
        format,
        Kind::Summary.title(),
        summary::HEADERS,
        settings.utc_offset,
        out,
    )?;
    summary::write_day(&mut table, day).await?;
    table.finish().await?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()).expect("kind"), k);
        }
        assert_eq!(Kind::parse(" BAGS ").expect("kind"), Kind::Bags);
        assert!(Kind::parse("passwords").is_err());
    }
}
