//! The end-of-day bill summary as a table: for each day of the range, one
//! line per biller and one for the whole day.

use time::Date;
use traitortrack_protocol::{DaySummary, SummaryTotals};

use super::{Cell, Table};
use crate::config::Settings;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::summary;

/// The longest range of days one export covers.
pub const MAX_DAYS: i64 = 366;

pub const HEADERS: &[&str] = &[
    "date",
    "biller",
    "bills created",
    "bills closed",
    "new",
    "in progress",
    "ready",
    "closed",
    "parent bags",
    "child bags",
    "actual weight (kg)",
    "expected weight (kg)",
];

/// The summary's lines for one day.
pub async fn write_day(table: &mut Table, day: &DaySummary) -> Result<()> {
    for line in &day.billers {
        let who = line.biller.as_deref().unwrap_or("(unknown)");
        row(table, &day.date, who, &line.totals).await?;
    }
    row(table, &day.date, "All billers", &day.totals).await
}

async fn row(table: &mut Table, date: &str, who: &str, t: &SummaryTotals) -> Result<()> {
    let s = &t.by_status;
    table
        .row(&[
            Cell::Text(date),
            Cell::Text(who),
            Cell::Int(t.bills_created),
            Cell::Int(t.bills_closed),
            Cell::Int(s.new),
            Cell::Int(s.in_progress),
            Cell::Int(s.ready),
            Cell::Int(s.closed),
            Cell::Int(t.parent_bags),
            Cell::Int(t.child_bags),
            Cell::Num(t.actual_weight_kg),
            Cell::Num(t.expected_weight_kg),
        ])
        .await
}

/// Every day from `first` to `last` (both included).
pub async fn summary(
    db: &Db,
    settings: &Settings,
    first: Date,
    last: Date,
    mut table: Table,
) -> Result<u64> {
    if (last - first).whole_days() >= MAX_DAYS {
        return Err(Error::bad_input(
            "range_too_long",
            format!("A summary covers at most {MAX_DAYS} days; choose a shorter range."),
        ));
    }
    let mut day = first;
    while day <= last {
        let s = summary::day_summary(db, settings, day).await?;
        write_day(&mut table, &s).await?;
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    table.finish().await
}
