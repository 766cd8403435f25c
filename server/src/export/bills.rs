//! Bills with their counts and weights, in id order by keyset batches.

use traitortrack_protocol::normalize;

use super::{Cell, Filter, Span, Table, BATCH};
use crate::bags::prefix_end;
use crate::config::Settings;
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::on;

pub const HEADERS: &[&str] = &[
    "code",
    "status",
    "capacity (parent bags)",
    "parent bags",
    "child bags",
    "actual weight (kg)",
    "expected weight (kg)",
    "destination",
    "vehicle number",
    "description",
    "created by",
    "created",
    "closed",
];

type Row = (
    i64,
    String,
    String,
    i32,
    i32,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Ts,
    Option<Ts>,
);

/// Every bill the filter takes. The weights follow from the child counts
/// as on a bill's page: actual from the children in its parents, expected
/// from the parents' capacities.
pub async fn bills(
    db: &Db,
    settings: &Settings,
    filter: &Filter,
    span: Span,
    mut table: Table,
) -> Result<u64> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(normalize)
        .transpose()?;
    let upper = search.as_deref().and_then(prefix_end);
    let mut sql = String::from(
        "SELECT bl.id, bl.code, bl.status, bl.capacity, bl.parent_count,
                (SELECT SUM(b.child_count) FROM bags b WHERE b.bill_id = bl.id),
                (SELECT SUM(b.capacity) FROM bags b WHERE b.bill_id = bl.id),
                bl.destination, bl.vehicle_number, bl.description, u.username,
                bl.created_at, bl.closed_at
         FROM bills bl LEFT JOIN users u ON u.id = bl.created_by
         WHERE bl.id > $1",
    );
    let mut n = 1;
    let mut arg = |sql: &mut String, clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if search.is_some() {
        arg(&mut sql, " AND bl.code >= ?");
    }
    if upper.is_some() {
        arg(&mut sql, " AND bl.code < ?");
    }
    if filter.status.is_some() {
        arg(&mut sql, " AND bl.status = ?");
    }
    if span.from.is_some() {
        arg(&mut sql, " AND bl.created_at >= ?");
    }
    if span.to.is_some() {
        arg(&mut sql, " AND bl.created_at < ?");
    }
    arg(&mut sql, " ORDER BY bl.id LIMIT ?");

    let kg = settings.kg_per_child;
    let mut after = 0i64;
    loop {
        let rows: Vec<Row> = on!(db.reader(), |c| {
            let mut q = sqlx::query_as(&sql).bind(after);
            if let Some(s) = &search {
                q = q.bind(s);
            }
            if let Some(u) = &upper {
                q = q.bind(u);
            }
            if let Some(s) = filter.status {
                q = q.bind(s.as_str());
            }
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
        for row in &rows {
            let (
                _,
                code,
                status,
                capacity,
                parents,
                children,
                expected,
                dest,
                vehicle,
                desc,
                by,
                created,
                closed,
            ) = row;
            let children = children.unwrap_or(0).max(0);
            let expected = expected.unwrap_or(0).max(0);
            table
                .row(&[
                    Cell::Text(code),
                    Cell::Text(status),
                    Cell::Int(i64::from(*capacity)),
                    Cell::Int(i64::from(*parents)),
                    Cell::Int(children),
                    Cell::Num(children as f64 * kg),
                    Cell::Num(expected as f64 * kg),
                    dest.as_deref().into(),
                    vehicle.as_deref().into(),
                    desc.as_deref().into(),
                    by.as_deref().into(),
                    created.time().into(),
                    closed.map(Ts::time).into(),
                ])
                .await?;
        }
        if !full {
            break;
        }
    }
    table.finish().await
}
