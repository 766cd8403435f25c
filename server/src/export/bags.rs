//! Bags and links, in id order by keyset batches.

use super::{Cell, Filter, Span, Table, BATCH};
use crate::bags::{Arg, BagFilter};
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::on;

pub const BAG_HEADERS: &[&str] = &[
    "code",
    "kind",
    "parent",
    "child count",
    "capacity",
    "complete",
    "bill",
    "dispatch area",
    "created",
    "last change",
];

pub const LINK_HEADERS: &[&str] = &["parent", "child", "linked", "worker", "station"];

type BagRow = (
    i64,
    String,
    String,
    Option<String>,
    i32,
    Option<i32>,
    Option<String>,
    Option<String>,
    Ts,
    Ts,
);

/// Every bag the filter takes, with its parent, bill and dates; the same
/// filter as the console's bag list.
pub async fn bags(db: &Db, filter: &Filter, span: Span, mut table: Table) -> Result<u64> {
    let area = filter
        .area
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let bag_filter = BagFilter {
        search: filter.search.clone(),
        kind: filter.kind,
        area: area.clone(),
        complete: filter.complete,
        billed: filter.billed,
        date: filter.date.unwrap_or_default(),
        from: span.from,
        to: span.to,
        cursor: None,
        limit: 0,
    };
    let (conditions, args) = crate::bags::conditions(&bag_filter, area.as_deref(), 2)?;
    let sql = format!(
        "SELECT b.id, b.code, b.kind, p.code, b.child_count, b.capacity, bl.code,
                b.dispatch_area, b.created_at, b.updated_at
         FROM bags b
         LEFT JOIN links l ON l.child_id = b.id
         LEFT JOIN bags p ON p.id = l.parent_id
         LEFT JOIN bills bl ON bl.id = b.bill_id
         WHERE b.id > $1{conditions} ORDER BY b.id LIMIT ${}",
        args.len() + 2
    );

    let mut after = 0i64;
    loop {
        let rows: Vec<BagRow> = on!(db.reader(), |c| {
            let mut q = sqlx::query_as(&sql).bind(after);
            for arg in &args {
                q = match arg {
                    Arg::Text(t) => q.bind(t),
                    Arg::Time(t) => q.bind(*t),
                };
            }
            q.bind(BATCH).fetch_all(c).await
        })?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.0;
        let full = rows.len() as i64 == BATCH;
        for (_, code, kind, parent, count, capacity, bill, area, created, changed) in &rows {
            let complete = match capacity {
                Some(cap) if *count >= *cap => "yes",
                Some(_) => "no",
                None => "",
            };
            table
                .row(&[
                    Cell::Text(code),
                    Cell::Text(kind),
                    parent.as_deref().into(),
                    if kind == "parent" {
                        Cell::Int(i64::from(*count))
                    } else {
                        Cell::Empty
                    },
                    capacity.map_or(Cell::Empty, |c| Cell::Int(i64::from(c))),
                    Cell::Text(complete),
                    bill.as_deref().into(),
                    area.as_deref().into(),
                    created.time().into(),
                    changed.time().into(),
                ])
                .await?;
        }
        if !full {
            break;
        }
    }
    table.finish().await
}

type LinkRow = (i64, String, String, Ts, Option<String>, Option<String>);

/// Every child in its parent, linked within the span.
pub async fn links(db: &Db, span: Span, mut table: Table) -> Result<u64> {
    let mut sql = String::from(
        "SELECT l.id, p.code, c.code, l.linked_at, u.username, s.name
         FROM links l
         JOIN bags p ON p.id = l.parent_id
         JOIN bags c ON c.id = l.child_id
         LEFT JOIN users u ON u.id = l.user_id
         LEFT JOIN stations s ON s.id = l.station_id
         WHERE l.id > $1",
    );
    let mut n = 1;
    if span.from.is_some() {
        n += 1;
        sql.push_str(&format!(" AND l.linked_at >= ${n}"));
    }
    if span.to.is_some() {
        n += 1;
        sql.push_str(&format!(" AND l.linked_at < ${n}"));
    }
    sql.push_str(&format!(" ORDER BY l.id LIMIT ${}", n + 1));

    let mut after = 0i64;
    loop {
        let rows: Vec<LinkRow> = on!(db.reader(), |c| {
            let mut q = sqlx::query_as(&sql).bind(after);
            for t in [span.from, span.to].into_iter().flatten() {
                q = q.bind(t);
            }
            q.bind(BATCH).fetch_all(c).await
        })?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.0;
        let full = rows.len() as i64 == BATCH;
        for (_, parent, child, at, worker, station) in &rows {
            table
                .row(&[
                    Cell::Text(parent),
                    Cell::Text(child),
                    at.time().into(),
                    worker.as_deref().into(),
                    station.as_deref().into(),
                ])
                .await?;
        }
        if !full {
            break;
        }
    }
    table.finish().await
}
