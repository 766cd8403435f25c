//! The end-of-day bill summary: for one warehouse day, the bills created and
//! closed, their parent and child bags and weights, by status and by biller.
//! The console page, the JSON API and the exports all read it from here.

use std::collections::BTreeMap;

use time::{Date, OffsetDateTime};
use traitortrack_protocol::{
    BillStatus, BillerSummary, DaySummary, Role, SummaryBill, SummaryTotals,
};

use crate::bills::weight_kg;
use crate::config::Settings;
use crate::days;
use crate::db::{Db, Ts};
use crate::error::{Error, Result};
use crate::on;
use crate::users::User;

/// Adds one bill to a set of totals.
fn tally(totals: &mut SummaryTotals, bill: &SummaryBill) {
    totals.bills_created += i64::from(bill.created_that_day);
    totals.bills_closed += i64::from(bill.closed_that_day);
    let by = &mut totals.by_status;
    *match bill.status {
        BillStatus::New => &mut by.new,
        BillStatus::InProgress => &mut by.in_progress,
        BillStatus::Ready => &mut by.ready,
        BillStatus::Closed => &mut by.closed,
    } += 1;
    totals.parent_bags += i64::from(bill.parent_count);
    totals.child_bags += i64::try_from(bill.child_count).unwrap_or(i64::MAX);
    totals.actual_weight_kg += bill.actual_weight_kg;
    totals.expected_weight_kg += bill.expected_weight_kg;
}

/// The summary of the warehouse day `day` (billers and admins).
pub async fn of_day(db: &Db, settings: &Settings, user: &User, day: Date) -> Result<DaySummary> {
    user.require(&[Role::Biller, Role::Admin], "see the bill summary")?;
    day_summary(db, settings, day).await
}

/// The summary of the warehouse day `day`, for whoever was let see it
/// (the exports and the mail check the role themselves).
pub async fn day_summary(db: &Db, settings: &Settings, day: Date) -> Result<DaySummary> {
    let start = days::start(day, settings.utc_offset);
    let end = days::start(day.next_day().unwrap_or(day), settings.utc_offset);
    type Row = (
        String,
        String,
        i32,
        i32,
        Option<String>,
        Option<String>,
        Option<String>,
        Ts,
        Option<Ts>,
        i64,
        i64,
    );
    let rows: Vec<Row> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT b.code, b.status, b.capacity, b.parent_count, b.destination, b.vehicle_number,
                u.username, b.created_at, b.closed_at,
                COALESCE(SUM(p.child_count), 0), COALESCE(SUM(p.capacity), 0)
         FROM bills b
         LEFT JOIN users u ON u.id = b.created_by
         LEFT JOIN bags p ON p.bill_id = b.id
         WHERE (b.created_at >= $1 AND b.created_at < $2)
            OR (b.closed_at >= $1 AND b.closed_at < $2)
         GROUP BY b.id, b.code, b.status, b.capacity, b.parent_count, b.destination,
                  b.vehicle_number, u.username, b.created_at, b.closed_at
         ORDER BY b.code"
    )
    .bind(start)
    .bind(end)
    .fetch_all(c)
    .await)?;
    let within = |t: OffsetDateTime| t >= start.time() && t < end.time();
    let mut bills = Vec::with_capacity(rows.len());
    for (
        code,
        status,
        capacity,
        parents,
        destination,
        vehicle,
        biller,
        created,
        closed,
        children,
        room,
    ) in rows
    {
        let status = BillStatus::parse(&status)
            .ok_or_else(|| Error::Internal(format!("bill {code} has an unknown status")))?;
        let children = children.max(0) as u64;
        let closed_at = closed.map(Ts::time);
        bills.push(SummaryBill {
            code,
            status,
            biller,
            destination,
            vehicle_number: vehicle,
            created_that_day: within(created.time()),
            closed_that_day: closed_at.is_some_and(within),
            created_at: created.time(),
            closed_at,
            capacity: capacity.max(0) as u32,
            parent_count: parents.max(0) as u32,
            child_count: children,
            actual_weight_kg: weight_kg(children, settings),
            expected_weight_kg: weight_kg(room.max(0) as u64, settings),
        });
    }
    let mut totals = SummaryTotals::default();
    // Billers by username; bills of no known biller last.
    let mut by_biller: BTreeMap<(bool, String), BillerSummary> = BTreeMap::new();
    for bill in &bills {
        tally(&mut totals, bill);
        let key = (
            bill.biller.is_none(),
            bill.biller.clone().unwrap_or_default(),
        );
        let line = by_biller.entry(key).or_insert_with(|| BillerSummary {
            biller: bill.biller.clone(),
            totals: SummaryTotals::default(),
        });
        tally(&mut line.totals, bill);
    }
    Ok(DaySummary {
        date: day.to_string(),
        utc_offset: days::offset_text(settings.utc_offset),
        kg_per_child: settings.kg_per_child,
        totals,
        billers: by_biller.into_values().collect(),
        bills,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_runs_midnight_to_midnight_in_the_warehouse() {
        let settings = crate::config::Config {
            utc_offset: "+05:30".into(),
            ..crate::config::Config::default()
        }
        .validate()
        .expect("valid settings");
        let start = days::start(time::macros::date!(2026 - 03 - 31), settings.utc_offset);
        assert_eq!(start.time(), time::macros::datetime!(2026-03-30 18:30 UTC));
        assert_eq!(
            crate::counters::day_of(start.time(), settings.utc_offset),
            time::macros::date!(2026 - 03 - 31)
        );
    }
}
