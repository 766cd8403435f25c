//! Bags and links, in id order by keyset batches.

use std::collections::{BTreeSet, HashMap};

use super::{Cell, Filter, Span, Table, BATCH};
use crate::bags::{Arg, BagFilter};
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::on;
use crate::rows::{in_list, list_binds};

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
    i32,
    Option<i32>,
    Option<String>,
    Option<String>,
    Ts,
    Ts,
);

/// Parent codes kept between batches (children come in runs of the same parent).
const PARENT_CODES_KEPT: usize = 100_000;

/// Every bag the filter takes, with its parent, bill and dates; the same
/// filter as the console's bag list.
///
/// Each batch of bags is read in id order, then where its children are, by
/// one range scan of `links` over the batch's ids (or the children's ids
/// when the filter leaves the batch sparse), then the codes of those
/// parents: a few ordered reads a batch instead of two index lookups a bag.
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
        "SELECT b.id, b.code, b.kind, b.child_count, b.capacity, bl.code,
                b.dispatch_area, b.created_at, b.updated_at
         FROM bags b
         LEFT JOIN bills bl ON bl.id = b.bill_id
         WHERE b.id > $1{conditions} ORDER BY b.id LIMIT ${}",
        args.len() + 2
    );

    let mut parent_codes: HashMap<i64, String> = HashMap::new();
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
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            break;
        };
        after = last.0;
        let full = rows.len() as i64 == BATCH;
        let children: Vec<i64> = rows
            .iter()
            .filter(|r| r.2 == "child")
            .map(|r| r.0)
            .collect();
        let parents = parents_of(db, &children, first.0, last.0).await?;
        if parent_codes.len() > PARENT_CODES_KEPT {
            parent_codes.clear();
        }
        let unknown: BTreeSet<i64> = parents
            .values()
            .filter(|p| !parent_codes.contains_key(p))
            .copied()
            .collect();
        codes_of(db, &unknown, &mut parent_codes).await?;
        for (id, code, kind, count, capacity, bill, area, created, changed) in &rows {
            let complete = match capacity {
                Some(cap) if *count >= *cap => "yes",
                Some(_) => "no",
                None => "",
            };
            let parent = parents.get(id).and_then(|p| parent_codes.get(p));
            table
                .row(&[
                    Cell::Text(code),
                    Cell::Text(kind),
                    parent.map(String::as_str).into(),
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

/// The parent id of each of these children that is in a parent. `first` and
/// `last` bound the batch's ids: when the children fill most of that range,
/// one range scan of `links` reads them all.
async fn parents_of(db: &Db, children: &[i64], first: i64, last: i64) -> Result<HashMap<i64, i64>> {
    if children.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64)> = if (last - first) < 2 * children.len() as i64 {
        on!(db.reader(), |c| sqlx::query_as(
            "SELECT child_id, parent_id FROM links WHERE child_id >= $1 AND child_id <= $2"
        )
        .bind(first)
        .bind(last)
        .fetch_all(c)
        .await)?
    } else {
        let mut rows = Vec::new();
        for chunk in children.chunks(list_binds(db.backend())) {
            let sql = format!(
                "SELECT child_id, parent_id FROM links WHERE child_id IN ({})",
                in_list(db.backend(), chunk.len())
            );
            let got: Vec<(i64, i64)> = on!(db.reader(), |c| {
                let mut q = sqlx::query_as(&sql).persistent(false);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(c).await
            })?;
            rows.extend(got);
        }
        rows
    };
    Ok(rows.into_iter().collect())
}

/// Adds the codes of these bags to `codes`.
async fn codes_of(db: &Db, ids: &BTreeSet<i64>, codes: &mut HashMap<i64, String>) -> Result<()> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(list_binds(db.backend())) {
        let sql = format!(
            "SELECT id, code FROM bags WHERE id IN ({})",
            in_list(db.backend(), chunk.len())
        );
        let got: Vec<(i64, String)> = on!(db.reader(), |c| {
            let mut q = sqlx::query_as(&sql).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(c).await
        })?;
        codes.extend(got);
    }
    Ok(())
}

type LinkRow = (i64, String, String, Ts, Option<String>, Option<String>);

/// Every child in its parent, linked within the span.
pub async fn links(db: &Db, span: Span, mut table: Table) -> Result<u64> {
    let mut sql = String::from(
        "SELECT l.id, p.code, l.child_code, l.linked_at, u.username, s.name
         FROM links l
         JOIN bags p ON p.id = l.parent_id
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
