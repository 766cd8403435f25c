//! Seeding a fresh database fast, straight into its tables with every index,
//! key and CHECK in place (it stays a normal database afterwards): parents
//! `SB00000`… with 29 children each, bills holding 20 parents each, then the
//! counters set to the tables' totals. PostgreSQL loads with COPY; SQLite with
//! multi-row INSERTs of literal values (generated codes are plain ASCII) in
//! transactions of 100,000 rows.

use std::fmt::Write;
use std::time::Instant;

use sqlx::Connection;
use time::macros::format_description;
use traitortrack_server::db::{Db, Ts};
use traitortrack_server::on;

use super::codes::{self, CAPACITY, SEEDED_CHILDREN};
use super::invariants;

/// Parents on one seeded bill.
pub const PARENTS_PER_BILL: u32 = 20;
/// Room on one seeded bill: it is in progress, not full.
const BILL_CAPACITY: u32 = 25;
/// Bytes sent per COPY message.
const COPY_CHUNK: usize = 4 << 20;
/// Rows per SQLite INSERT statement, and per transaction.
const ROWS_PER_INSERT: u64 = 500;
const ROWS_PER_TX: u64 = 100_000;

/// How many of what a seeded database holds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Layout {
    pub parents: u32,
    pub bills: u32,
}

impl Layout {
    /// About `bags` bags: each parent comes with its 29 children, and one
    /// bill for every 30 parents.
    pub fn for_bags(bags: u64) -> anyhow::Result<Layout> {
        let parents = bags / u64::from(CAPACITY);
        // Leave room for the parents the scenarios and the ceiling create.
        let most = u64::from(codes::LAST_PARENT + 1) - 20_000;
        if parents == 0 || parents > most {
            anyhow::bail!(
                "--bags must be between {CAPACITY} and {} (parent codes run from SB00000 to SB99999)",
                most * u64::from(CAPACITY)
            );
        }
        let parents = parents as u32;
        Ok(Layout {
            parents,
            bills: parents / 30,
        })
    }

    pub fn bags(&self) -> u64 {
        u64::from(self.parents) * u64::from(1 + SEEDED_CHILDREN)
    }

    pub fn children(&self) -> u64 {
        u64::from(self.parents) * u64::from(SEEDED_CHILDREN)
    }

    fn bill_of(&self, parent: u32) -> Option<u32> {
        Some(parent / PARENTS_PER_BILL).filter(|b| *b < self.bills)
    }
}

/// One value of a seeded row.
enum Cell {
    Int(i64),
    Text(String),
    Const(&'static str),
    Null,
    Now,
}

fn opt(v: Option<u32>) -> Cell {
    v.map_or(Cell::Null, |v| Cell::Int(i64::from(v)))
}

const BILL_COLUMNS: &str = "id, code, status, capacity, parent_count, created_at, updated_at";
const BAG_COLUMNS: &str =
    "id, code, kind, capacity, child_count, bill_id, dispatch_area, created_at, updated_at";
const LINK_COLUMNS: &str = "id, parent_id, child_id, child_code, linked_at";

/// Bill `i` (ids from 1).
fn bill_row(i: u64) -> Vec<Cell> {
    vec![
        Cell::Int(i as i64 + 1),
        Cell::Text(format!("BILL{i:05}")),
        Cell::Const("in_progress"),
        Cell::Int(i64::from(BILL_CAPACITY)),
        Cell::Int(i64::from(PARENTS_PER_BILL)),
        Cell::Now,
        Cell::Now,
    ]
}

/// Bag `i`: every parent is followed by its children, so parent `p` has id
/// `p × 30 + 1` and its child in slot `s` id `p × 30 + 1 + s`.
fn bag_row(layout: &Layout, area: &str, i: u64) -> Vec<Cell> {
    let per = u64::from(1 + SEEDED_CHILDREN);
    let (p, slot) = ((i / per) as u32, (i % per) as u32);
    let id = Cell::Int(i as i64 + 1);
    if slot == 0 {
        vec![
            id,
            Cell::Text(codes::parent(p)),
            Cell::Const("parent"),
            Cell::Int(i64::from(CAPACITY)),
            Cell::Int(i64::from(SEEDED_CHILDREN)),
            opt(layout.bill_of(p).map(|b| b + 1)),
            Cell::Text(area.to_string()),
            Cell::Now,
            Cell::Now,
        ]
    } else {
        vec![
            id,
            Cell::Text(codes::child(p, slot)),
            Cell::Const("child"),
            Cell::Null,
            Cell::Int(0),
            Cell::Null,
            Cell::Text(area.to_string()),
            Cell::Now,
            Cell::Now,
        ]
    }
}

/// Link `i`: the child in slot `i % 29 + 1` of parent `i / 29`.
fn link_row(i: u64) -> Vec<Cell> {
    let per_parent = u64::from(SEEDED_CHILDREN);
    let (p, slot) = (i / per_parent, i % per_parent + 1);
    let parent_id = p * u64::from(1 + SEEDED_CHILDREN) + 1;
    vec![
        Cell::Int(i as i64 + 1),
        Cell::Int(parent_id as i64),
        Cell::Int((parent_id + slot) as i64),
        Cell::Text(codes::child(p as u32, slot as u32)),
        Cell::Now,
    ]
}

/// How long the seeding took.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Seeded {
    pub layout: Layout,
    pub bags: u64,
    /// Loading the rows, indexes and keys included.
    pub load_secs: f64,
    /// Afterwards: counters, and on PostgreSQL VACUUM ANALYZE and a checkpoint.
    pub settle_secs: f64,
}

/// Seeds an empty, migrated database.
pub async fn seed(db: &Db, layout: Layout, area: &str) -> anyhow::Result<Seeded> {
    let bags: i64 = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM bags"
    )
    .fetch_one(c)
    .await)?;
    if bags > 0 {
        anyhow::bail!("the database already holds {bags} bags: the benchmark needs an empty one");
    }
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let n_bags = layout.bags();
    let n_links = u64::from(layout.parents) * u64::from(SEEDED_CHILDREN);
    match db {
        Db::Pg(pool) => {
            let stamp = Ts::new(now).time().format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]+00"
            ))?;
            let mut conn = pool.acquire().await?;
            copy(
                &mut conn,
                "bills",
                BILL_COLUMNS,
                &stamp,
                u64::from(layout.bills),
                bill_row,
            )
            .await?;
            copy(&mut conn, "bags", BAG_COLUMNS, &stamp, n_bags, |i| {
                bag_row(&layout, area, i)
            })
            .await?;
            copy(&mut conn, "links", LINK_COLUMNS, &stamp, n_links, link_row).await?;
            for table in ["bills", "bags", "links"] {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                ))
                .execute(&mut *conn)
                .await?;
            }
        }
        Db::Sqlite { write, .. } => {
            let stamp = Ts::new(now).micros().to_string();
            let mut conn = write.acquire().await?;
            insert(
                &mut conn,
                "bills",
                BILL_COLUMNS,
                &stamp,
                u64::from(layout.bills),
                bill_row,
            )
            .await?;
            insert(&mut conn, "bags", BAG_COLUMNS, &stamp, n_bags, |i| {
                bag_row(&layout, area, i)
            })
            .await?;
            insert(&mut conn, "links", LINK_COLUMNS, &stamp, n_links, link_row).await?;
        }
    }
    let load_secs = started.elapsed().as_secs_f64();

    let settling = Instant::now();
    set_counters(db).await?;
    match db {
        Db::Pg(pool) => {
            for table in ["bills", "bags", "links"] {
                sqlx::query(&format!("VACUUM ANALYZE {table}"))
                    .execute(pool)
                    .await?;
            }
            // Start the scenarios with the load's writes already on disk (needs a superuser).
            if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
                eprintln!("note: no CHECKPOINT after seeding: {e}");
            }
        }
        Db::Sqlite { write, .. } => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(write)
                .await?;
        }
    }
    Ok(Seeded {
        layout,
        bags: n_bags,
        load_secs,
        settle_secs: settling.elapsed().as_secs_f64(),
    })
}

/// One row as a line of COPY text (no seeded value holds a tab or a backslash).
fn pg_line(cells: &[Cell], stamp: &str, out: &mut String) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match cell {
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Text(s) => out.push_str(s),
            Cell::Const(s) => out.push_str(s),
            Cell::Null => out.push_str("\\N"),
            Cell::Now => out.push_str(stamp),
        }
    }
    out.push('\n');
}

/// One row as SQL literal values (no seeded value holds a quote).
fn sql_values(cells: &[Cell], stamp: &str, out: &mut String) {
    out.push('(');
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match cell {
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Text(s) => {
                let _ = write!(out, "'{s}'");
            }
            Cell::Const(s) => {
                let _ = write!(out, "'{s}'");
            }
            Cell::Null => out.push_str("NULL"),
            Cell::Now => out.push_str(stamp),
        }
    }
    out.push(')');
}

async fn copy(
    conn: &mut sqlx::PgConnection,
    table: &str,
    columns: &str,
    stamp: &str,
    rows: u64,
    row: impl Fn(u64) -> Vec<Cell>,
) -> anyhow::Result<()> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await?;
    let mut buf = String::with_capacity(COPY_CHUNK + 4096);
    for i in 0..rows {
        pg_line(&row(i), stamp, &mut buf);
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

async fn insert(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    columns: &str,
    stamp: &str,
    rows: u64,
    row: impl Fn(u64) -> Vec<Cell>,
) -> anyhow::Result<()> {
    let mut sql = String::new();
    let mut i = 0;
    while i < rows {
        let mut tx = conn.begin().await?;
        let tx_end = (i + ROWS_PER_TX).min(rows);
        while i < tx_end {
            sql.clear();
            let _ = write!(sql, "INSERT INTO {table} ({columns}) VALUES ");
            let stmt_end = (i + ROWS_PER_INSERT).min(tx_end);
            for j in i..stmt_end {
                if j > i {
                    sql.push(',');
                }
                sql_values(&row(j), stamp, &mut sql);
            }
            sqlx::raw_sql(&sql).execute(&mut *tx).await?;
            i = stmt_end;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Writes each counter's total, counted from the tables, into its shard 0
/// (its only shard on a freshly seeded database).
async fn set_counters(db: &Db) -> anyhow::Result<()> {
    let totals = invariants::table_totals(db).await?;
    let mut tx = db.begin().await?;
    for (name, value) in totals {
        on!(tx.conn(), |c| sqlx::query(
            "DELETE FROM counters WHERE name = $1"
        )
        .bind(name)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        on!(tx.conn(), |c| sqlx::query(
            "INSERT INTO counters (name, shard, value) VALUES ($1, 0, $2)"
        )
        .bind(name)
        .bind(value)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_size_is_60000_parents_and_2000_bills() {
        let l = Layout::for_bags(1_800_000).expect("a valid size");
        assert_eq!(
            (l.parents, l.bills, l.bags(), l.children()),
            (60_000, 2_000, 1_800_000, 1_740_000)
        );
        assert_eq!(l.bill_of(39_999), Some(1_999));
        assert_eq!(l.bill_of(40_000), None);
        assert!(Layout::for_bags(10_000_000).is_err());
    }

    #[test]
    fn seeded_rows_reference_each_other_by_id() {
        let l = Layout::for_bags(1_800_000).expect("a valid size");
        let mut line = String::new();
        pg_line(&bag_row(&l, "Bench", 30), "T", &mut line);
        assert_eq!(line, "31\tSB00001\tparent\t30\t29\t1\tBench\tT\tT\n");
        line.clear();
        pg_line(&bag_row(&l, "Bench", 31), "T", &mut line);
        assert_eq!(line, "32\tC0000000031\tchild\t\\N\t0\t\\N\tBench\tT\tT\n");
        line.clear();
        // The 30th link is the first child of the second parent, with its code.
        sql_values(&link_row(29), "1", &mut line);
        assert_eq!(line, "(30,31,32,'C0000000031',1)");
    }
}
