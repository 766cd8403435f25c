//! Running totals kept in the same transaction as each change, so totals are
//! read in constant time at any size. Each total is split in shards that a
//! transaction picks at random, so concurrent writers rarely wait on one another.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use time::{Date, OffsetDateTime, UtcOffset};
use traitortrack_protocol::{BillStatus, BillsByStatus, Stats};

use crate::db::{self, Db, Tx, Watched};
use crate::error::Result;
use crate::on;
use crate::rows::{placeholders, values};

pub const PARENTS: &str = "parents";
pub const CHILDREN: &str = "children";
pub const COMPLETE_PARENTS: &str = "complete_parents";
pub const LINKS: &str = "links";

const SHARDS: i32 = 64;

pub fn bills(status: BillStatus) -> &'static str {
    match status {
        BillStatus::New => "bills_new",
        BillStatus::InProgress => "bills_in_progress",
        BillStatus::Ready => "bills_ready",
        BillStatus::Closed => "bills_closed",
    }
}

/// The name of the scan counter of one warehouse day.
pub fn scans_on(day: Date) -> String {
    format!("scans:{day}")
}

/// The warehouse day a moment falls on.
pub fn day_of(t: OffsetDateTime, offset: UtcOffset) -> Date {
    t.to_offset(offset).date()
}

/// The name of the scan counter of one hour (0 to 23) of a warehouse day:
/// the dashboard's scans-per-hour chart reads these, so it never counts events.
pub fn scans_in_hour(day: Date, hour: u8) -> String {
    format!("scans:{day}:{hour:02}")
}

/// The warehouse day and hour a moment falls in.
pub fn hour_of(t: OffsetDateTime, offset: UtcOffset) -> (Date, u8) {
    let t = t.to_offset(offset);
    (t.date(), t.hour())
}

/// Warehouse days whose hourly scan counters are kept (today and yesterday);
/// housekeeping deletes older ones.
const HOURLY_DAYS_KEPT: i64 = 2;

/// The scans in each hour of a warehouse day: 24 totals, at most 24 x 64
/// small counter rows read, however busy the day was.
pub async fn scans_by_hour(db: &Db, day: Date) -> Result<[i64; 24]> {
    let names: Vec<String> = (0..24).map(|h| scans_in_hour(day, h)).collect();
    let sql = format!(
        "SELECT name, CAST(SUM(value) AS BIGINT) FROM counters WHERE name IN ({}) GROUP BY name",
        placeholders(names.len())
    );
    let rows: Vec<(String, i64)> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        for name in &names {
            q = q.bind(name);
        }
        q.fetch_all(c).await
    })?;
    let mut hours = [0; 24];
    for (name, value) in rows {
        if let Some(i) = names.iter().position(|n| *n == name) {
            hours[i] = value;
        }
    }
    Ok(hours)
}

/// Deletes the hourly scan counters of days before yesterday; answers how
/// many rows went.
pub async fn prune_hourly(db: &Db, today: Date) -> Result<u64> {
    let keep: Vec<String> = (0..HOURLY_DAYS_KEPT)
        .filter_map(|back| today.checked_sub(time::Duration::days(back)))
        .flat_map(|day| (0..24).map(move |h| scans_in_hour(day, h)))
        .collect();
    let sql = format!(
        "DELETE FROM counters WHERE name LIKE 'scans:%:%' AND name NOT IN ({})",
        placeholders(keep.len())
    );
    let deleted = on!(db.writer(), |c| {
        let mut q = sqlx::query(&sql);
        for name in &keep {
            q = q.bind(name);
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(deleted)
}

/// Changes to totals gathered during a transaction, written at its end.
#[derive(Debug, Default, Clone)]
pub struct Deltas(BTreeMap<String, i64>);

impl Deltas {
    pub fn add(&mut self, name: impl Into<String>, by: i64) {
        *self.0.entry(name.into()).or_insert(0) += by;
    }

    /// True when no total changes.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|by| *by == 0)
    }

    /// Records a bill moving from one status to another.
    pub fn bill_moved(&mut self, from: Option<BillStatus>, to: BillStatus) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            self.add(bills(from), -1);
        }
        self.add(bills(to), 1);
    }

    /// Writes the changes into one random shard of each total, in one statement.
    pub(crate) async fn write(self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        let shard = rand::thread_rng().gen_range(0..SHARDS);
        let changes: Vec<(String, i64)> = self.0.into_iter().filter(|(_, by)| *by != 0).collect();
        if changes.is_empty() {
            return Ok(());
        }
        // The text depends only on how many totals change: a handful of
        // shapes, kept as prepared statements.
        let sql = format!(
            "INSERT INTO counters (name, value, shard) VALUES {}
             ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value",
            values(changes.len(), 2, 2, &["", "BIGINT"], ", $1")
        );
        on!(tx.conn(), |c| {
            let mut q = sqlx::query(&sql).bind(shard);
            for (name, by) in &changes {
                q = q.bind(name).bind(*by);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Adds another set of changes to these.
    pub fn merge(&mut self, other: Deltas) {
        for (name, by) in other.0 {
            self.add(name, by);
        }
    }
}

/// The totals for the dashboard and `GET /api/v1/stats`.
pub async fn stats(db: &Db, today: Date) -> Result<Stats> {
    let scans = scans_on(today);
    let rows: Vec<(String, i64)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT name, CAST(SUM(value) AS BIGINT) FROM counters
         WHERE name IN ($1, $2, $3, $4, $5, $6, $7, $8, $9) GROUP BY name"
    )
    .bind(PARENTS)
    .bind(CHILDREN)
    .bind(COMPLETE_PARENTS)
    .bind(LINKS)
    .bind(bills(BillStatus::New))
    .bind(bills(BillStatus::InProgress))
    .bind(bills(BillStatus::Ready))
    .bind(bills(BillStatus::Closed))
    .bind(&scans)
    .fetch_all(c)
    .await)?;
    let get = |name: &str| rows.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    Ok(Stats {
        bags: get(PARENTS) + get(CHILDREN),
        parents: get(PARENTS),
        children: get(CHILDREN),
        complete_parents: get(COMPLETE_PARENTS),
        links: get(LINKS),
        bills: BillsByStatus {
            new: get(bills(BillStatus::New)),
            in_progress: get(bills(BillStatus::InProgress)),
            ready: get(bills(BillStatus::Ready)),
            closed: get(bills(BillStatus::Closed)),
        },
        scans_today: get(&scans),
    })
}

/// How old the [`Snapshot`] may be when no change of this process moved it
/// on: how long another server process's changes may take to show here.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

/// The totals as last read, for `GET /api/v1/stats`: read again when this
/// process has committed a change to them since (every commit with counter
/// deltas moves [`Watched::Counters`] on, so a reader sees its own change at
/// once), when the warehouse day changed, and otherwise at most
/// [`SNAPSHOT_MAX_AGE`] after the last read. One request reads while the
/// others that need a new snapshot wait for it.
#[derive(Default)]
pub struct Snapshot {
    last: RwLock<Option<Taken>>,
    reading: tokio::sync::Mutex<()>,
}

struct Taken {
    day: Date,
    generation: u64,
    read_at: Instant,
    stats: Stats,
}

impl Snapshot {
    /// The totals of `today`, from the snapshot while it is current.
    pub async fn stats(&self, db: &Db, today: Date) -> Result<Stats> {
        if let Some(stats) = self.current(today) {
            return Ok(stats);
        }
        let _reading = self.reading.lock().await;
        // Another request may have read them while this one waited.
        if let Some(stats) = self.current(today) {
            return Ok(stats);
        }
        // Read before the database: a change committed meanwhile makes the
        // snapshot stale at once.
        let generation = db::generation(Watched::Counters);
        let stats = stats(db, today).await?;
        *self.last.write().unwrap_or_else(PoisonError::into_inner) = Some(Taken {
            day: today,
            generation,
            read_at: Instant::now(),
            stats: stats.clone(),
        });
        Ok(stats)
    }

    fn current(&self, today: Date) -> Option<Stats> {
        let generation = db::generation(Watched::Counters);
        self.last
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|t| {
                t.day == today
                    && t.generation == generation
                    && t.read_at.elapsed() < SNAPSHOT_MAX_AGE
            })
            .map(|t| t.stats.clone())
    }
}
