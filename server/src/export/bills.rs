//! Bills with their counts and weights, in code order by keyset batches.

use super::{Cell, Table, BATCH};
use crate::bills::BillFilter;
use crate::config::Settings;
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::{bind_all, on};

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

/// Every bill the filter takes, in code order, narrowed as the console's
/// list narrows them. The weights follow from the child counts as on a
/// bill's page: actual from the children in its parents, expected from the
/// parents' capacities.
pub async fn bills(
    db: &Db,
    settings: &Settings,
    filter: &BillFilter,
    mut table: Table,
) -> Result<u64> {
    let (conditions, vals) = filter.conditions(settings, 3)?;
    let sql = format!(
        "SELECT bl.code, bl.status, bl.capacity, bl.parent_count,
                (SELECT SUM(b.child_count) FROM bags b WHERE b.bill_id = bl.id),
                (SELECT SUM(b.capacity) FROM bags b WHERE b.bill_id = bl.id),
                bl.destination, bl.vehicle_number, bl.description, u.username,
                bl.created_at, bl.closed_at
         FROM bills bl LEFT JOIN users u ON u.id = bl.created_by
         WHERE bl.code > $1{conditions} ORDER BY bl.code LIMIT $2"
    );
    let kg = settings.kg_per_child;
    let mut after = String::new();
    loop {
        let rows: Vec<Row> = on!(db.reader(), |c| {
            let q = sqlx::query_as(&sql).bind(&after).bind(BATCH);
            bind_all!(q, vals.clone()).fetch_all(c).await
        })?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.0.clone();
        let full = rows.len() as i64 == BATCH;
        for row in &rows {
            let (
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
