//! The database's own ceiling for link scans: the same writes the server makes
//! for one online link, as plain SQL sent straight from this tool, one
//! transaction per link, with the link scenario's concurrency (one connection
//! per station on PostgreSQL; SQLite has one writer), for the same time, on
//! new parents and children.
//!
//! Each transaction holds what one applied link event leaves behind:
//! - the parent bag, created on its first child (as the server does on the first scan);
//! - the child bag (insert, as on its first scan);
//! - the parent's count, moved only while under capacity, answering the new count;
//! - the link row;
//! - the audit row and its queue row for the hash chain (on PostgreSQL in one
//!   statement, on SQLite in two, as the server writes them);
//! - the event row with its stored outcome (the JSON a resend gets back);
//! - the counter deltas (links, children, the day's scans, and parents or
//!   complete parents when they move) into one random shard, in one statement.
//!
//! On SQLite it runs twice: through sqlx, as the server's writes go, and
//! through SQLite's C library directly (rusqlite), SQLite's own ceiling.
//!
//! Left out is what the server adds on top, which the fraction measures:
//! HTTP and JSON, the station key and worker checks, the resend lookup, the
//! reads that find the parent and child and check the child is in no parent,
//! the ordered advisory locks, the savepoint, and one statement per counter.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use time::UtcOffset;
use traitortrack_protocol::{EventResult, EventStatus, ParentState};
use traitortrack_server::counters;
use traitortrack_server::db::{Db, On, Ts};
use traitortrack_server::on;

use super::codes::{self, NewParents, CAPACITY};
use super::measure::{Tally, Window};

/// Connections left free for the server when PostgreSQL runs short of them.
const SPARE_CONNECTIONS: usize = 4;
/// Shards per counter, as the server has them.
const SHARDS: i32 = 64;

/// Who the ceiling's links are made by: a registered station and its worker.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub station_id: i64,
    pub user_id: i64,
    pub username: String,
}

/// A writer connection of the ceiling.
pub type Conn = On<PgConnection, PoolConnection<Sqlite>>;

/// Opens the writers: `wanted` PostgreSQL connections (or as many as it
/// accepts, less a few for the server, with a note saying so), or SQLite's one.
pub async fn connect(
    db: &Db,
    url: &str,
    wanted: usize,
) -> anyhow::Result<(Vec<Conn>, Option<String>)> {
    match db {
        Db::Sqlite { write, .. } => Ok((vec![On::Sqlite(write.acquire().await?)], None)),
        Db::Pg(_) => {
            let mut conns = Vec::with_capacity(wanted);
            let mut refused = None;
            for _ in 0..wanted {
                match PgConnection::connect(url).await {
                    Ok(c) => conns.push(On::Pg(c)),
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            let Some(e) = refused else {
                return Ok((conns, None));
            };
            if conns.len() <= SPARE_CONNECTIONS {
                anyhow::bail!("PostgreSQL refused the ceiling's connections: {e}");
            }
            conns.truncate(conns.len() - SPARE_CONNECTIONS);
            let note = format!(
                "PostgreSQL accepted {} of {wanted} connections ({e}); the ceiling ran with {}",
                conns.len() + SPARE_CONNECTIONS,
                conns.len()
            );
            Ok((conns, Some(note)))
        }
    }
}

/// Links children as fast as the database commits them, one writer per connection.
pub async fn run(
    conns: Vec<Conn>,
    scanners: &[Scanner],
    parents: Arc<NewParents>,
    window: Window,
) -> Tally {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let who = scanners[i % scanners.len()].clone();
        let parents = Arc::clone(&parents);
        tasks.spawn(scan(conn, who, parents, window));
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(t) => tally.merge(t),
            Err(e) => tally.unexpected(format!("a ceiling writer stopped: {e}")),
        }
    }
    tally
}

async fn scan(mut conn: Conn, who: Scanner, parents: Arc<NewParents>, window: Window) -> Tally {
    let mut tally = Tally::default();
    'parents: loop {
        let Some(p) = parents.take() else {
            tally.unexpected("no parent codes left (SB99999 reached)");
            break;
        };
        let parent = codes::parent(p);
        for slot in 1..=CAPACITY {
            if Instant::now() >= window.end {
                break 'parents;
            }
            let child = codes::child(p, slot);
            let started = Instant::now();
            let done = link(&mut conn, &who, &parent, &child, slot == 1).await;
            let measured = tally.record(&window, started, Instant::now());
            match done {
                Ok(()) if measured => tally.applied += 1,
                Ok(()) => {}
                Err(e) => tally.unexpected(format!("ceiling link {parent} {child}: {e}")),
            }
        }
    }
    tally
}

const NEW_PARENT: &str =
    "INSERT INTO bags (code, kind, capacity, dispatch_area, created_at, updated_at)
     VALUES ($1, 'parent', $2, $3, $4, $4) ON CONFLICT (code) DO NOTHING RETURNING id";
const NEW_CHILD: &str = "INSERT INTO bags (code, kind, dispatch_area, created_at, updated_at)
     VALUES ($1, 'child', $2, $3, $3) ON CONFLICT (code) DO NOTHING RETURNING id";
const COUNT: &str = "UPDATE bags SET child_count = child_count + 1, updated_at = $2
     WHERE code = $1 AND child_count < capacity RETURNING id, child_count, capacity";
const LINK: &str =
    "INSERT INTO links (parent_id, child_id, child_code, user_id, station_id, event_id, linked_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (child_id) DO NOTHING RETURNING id";
const AUDIT: &str = "INSERT INTO audit_log (at, actor_id, actor, station_id, action, entity, \
     entity_code, before, after, request_id, ip)
     VALUES ($1, $2, $3, $4, 'link', 'bag', $5, $6, $7, $8, $9) RETURNING id";
const EVENT: &str = "INSERT INTO events (id, station_id, user_id, kind, status, code, scanned_at, received_at, result)
     VALUES ($1, $2, $3, 'link', 'applied', NULL, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id";

type Tx<'c> = On<Transaction<'c, Postgres>, Transaction<'c, Sqlite>>;

fn conn<'a>(tx: &'a mut Tx<'_>) -> On<&'a mut PgConnection, &'a mut SqliteConnection> {
    match tx {
        On::Pg(t) => On::Pg(&mut **t),
        On::Sqlite(t) => On::Sqlite(&mut **t),
    }
}

/// One link, committed.
async fn link(
    c: &mut Conn,
    who: &Scanner,
    parent: &str,
    child: &str,
    new_parent: bool,
) -> Result<(), sqlx::Error> {
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let area = Some(super::stations::AREA);
    let event_id = uuid::Uuid::now_v7();
    let mut tx: Tx<'_> = match c {
        On::Pg(c) => On::Pg(c.begin().await?),
        On::Sqlite(c) => On::Sqlite(c.begin().await?),
    };
    let mut parent_made = false;
    if new_parent {
        let made: Option<i64> = on!(conn(&mut tx), |c| sqlx::query_scalar(NEW_PARENT)
            .bind(parent)
            .bind(CAPACITY as i32)
            .bind(area)
            .bind(now)
            .fetch_optional(c)
            .await)?;
        parent_made = made.is_some();
    }
    let child_id: i64 = on!(conn(&mut tx), |c| sqlx::query_scalar(NEW_CHILD)
        .bind(child)
        .bind(area)
        .bind(now)
        .fetch_one(c)
        .await)?;
    let (parent_id, count, capacity): (i64, i32, i32) =
        on!(conn(&mut tx), |c| sqlx::query_as(COUNT)
            .bind(parent)
            .bind(now)
            .fetch_one(c)
            .await)?;
    let _link: i64 = on!(conn(&mut tx), |c| sqlx::query_scalar(LINK)
        .bind(parent_id)
        .bind(child_id)
        .bind(child)
        .bind(who.user_id)
        .bind(who.station_id)
        .bind(event_id)
        .bind(now)
        .fetch_one(c)
        .await)?;

    let before = serde_json::json!({"parent": null}).to_string();
    let after = serde_json::json!({"parent": parent}).to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let audit_cte = format!(
        "WITH a AS ({AUDIT}) INSERT INTO audit_unsealed (audit_id) SELECT id FROM a RETURNING audit_id"
    );
    let sql = match conn(&mut tx) {
        On::Pg(_) => audit_cte.as_str(),
        On::Sqlite(_) => AUDIT,
    };
    let audit_id: i64 = on!(conn(&mut tx), |c| sqlx::query_scalar(sql)
        .bind(now)
        .bind(who.user_id)
        .bind(&who.username)
        .bind(who.station_id)
        .bind(child)
        .bind(&before)
        .bind(&after)
        .bind(&request_id)
        .bind("127.0.0.0")
        .fetch_one(c)
        .await)?;
    if let On::Sqlite(c) = conn(&mut tx) {
        sqlx::query("INSERT INTO audit_unsealed (audit_id) VALUES ($1)")
            .bind(audit_id)
            .execute(c)
            .await?;
    }

    let outcome = EventResult {
        id: event_id,
        status: EventStatus::Applied,
        code: None,
        message: None,
        parent: Some(ParentState {
            code: parent.to_string(),
            children: count.max(0) as u32,
            capacity: capacity.max(0) as u32,
            complete: count >= capacity,
        }),
        bill: None,
    };
    let outcome = serde_json::to_string(&outcome).unwrap_or_default();
    let _event: uuid::Uuid = on!(conn(&mut tx), |c| sqlx::query_scalar(EVENT)
        .bind(event_id)
        .bind(who.station_id)
        .bind(who.user_id)
        .bind(now)
        .bind(now)
        .bind(&outcome)
        .fetch_one(c)
        .await)?;

    // In name order, as the server writes them, so writers never deadlock.
    let scans = counters::scans_on(counters::day_of(now.time(), UtcOffset::UTC));
    let (day, hour) = counters::hour_of(now.time(), UtcOffset::UTC);
    let this_hour = counters::scans_in_hour(day, hour);
    let mut names: Vec<&str> = vec![counters::CHILDREN, counters::LINKS, &scans, &this_hour];
    if count == capacity {
        names.push(counters::COMPLETE_PARENTS);
    }
    if parent_made {
        names.push(counters::PARENTS);
    }
    names.sort_unstable();
    let values: Vec<String> = (0..names.len())
        .map(|i| format!("(${}, $1, 1)", i + 2))
        .collect();
    let sql = format!(
        "INSERT INTO counters (name, shard, value) VALUES {}
         ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value",
        values.join(", ")
    );
    let shard = rand::thread_rng().gen_range(0..SHARDS);
    on!(conn(&mut tx), |c| {
        let mut q = sqlx::query(&sql).bind(shard);
        for name in &names {
            q = q.bind(*name);
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?;
    on!(tx, |t| t.commit().await)
}

/// The SQLite file of a `sqlite://` address.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The same links on SQLite through its C library directly (rusqlite), on
/// one writer with the server's settings (WAL, synchronous FULL, foreign
/// keys): what SQLite itself can commit, without sqlx's hand-off of every
/// statement to a connection thread. Blocks; run it off the async threads.
pub fn run_sqlite_direct(path: &str, who: &Scanner, parents: &NewParents, window: Window) -> Tally {
    let mut tally = Tally::default();
    let conn = match open_direct(path) {
        Ok(c) => c,
        Err(e) => {
            tally.unexpected(format!("cannot open {path}: {e}"));
            return tally;
        }
    };
    let mut conn = conn;
    'parents: loop {
        let Some(p) = parents.take() else {
            tally.unexpected("no parent codes left (SB99999 reached)");
            break;
        };
        let parent = codes::parent(p);
        for slot in 1..=CAPACITY {
            if Instant::now() >= window.end {
                break 'parents;
            }
            let child = codes::child(p, slot);
            let started = Instant::now();
            let done = link_direct(&mut conn, who, &parent, &child, slot == 1);
            let measured = tally.record(&window, started, Instant::now());
            match done {
                Ok(()) if measured => tally.applied += 1,
                Ok(()) => {}
                Err(e) => tally.unexpected(format!("direct ceiling link {parent} {child}: {e}")),
            }
        }
    }
    tally
}

fn open_direct(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    Ok(conn)
}

/// The SQL with `?N` for `$N`: SQLite numbers `?N` parameters by N, where
/// it numbers `$N` ones by first appearance (sqlx reads either by N).
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

/// [`link`], statement for statement, through rusqlite.
fn link_direct(
    conn: &mut rusqlite::Connection,
    who: &Scanner,
    parent: &str,
    child: &str,
    new_parent: bool,
) -> rusqlite::Result<()> {
    use rusqlite::{params, OptionalExtension};
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let us = now.micros();
    let area = Some(super::stations::AREA);
    let event_id = uuid::Uuid::now_v7();
    let tx = conn.transaction()?;
    let mut parent_made = false;
    if new_parent {
        let made: Option<i64> = tx
            .prepare_cached(&numbered(NEW_PARENT))?
            .query_row(params![parent, CAPACITY, area, us], |r| r.get(0))
            .optional()?;
        parent_made = made.is_some();
    }
    let child_id: i64 = tx
        .prepare_cached(&numbered(NEW_CHILD))?
        .query_row(params![child, area, us], |r| r.get(0))?;
    let (parent_id, count, capacity): (i64, i32, i32) = tx
        .prepare_cached(&numbered(COUNT))?
        .query_row(params![parent, us], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let event_blob = event_id.as_bytes().to_vec();
    let _link: i64 = tx.prepare_cached(&numbered(LINK))?.query_row(
        params![
            parent_id,
            child_id,
            child,
            who.user_id,
            who.station_id,
            event_blob,
            us
        ],
        |r| r.get(0),
    )?;
    let before = serde_json::json!({"parent": null}).to_string();
    let after = serde_json::json!({"parent": parent}).to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let audit_id: i64 = tx.prepare_cached(&numbered(AUDIT))?.query_row(
        params![
            us,
            who.user_id,
            who.username,
            who.station_id,
            child,
            before,
            after,
            request_id,
            "127.0.0.0"
        ],
        |r| r.get(0),
    )?;
    tx.prepare_cached("INSERT INTO audit_unsealed (audit_id) VALUES (?1)")?
        .execute(params![audit_id])?;
    let outcome = EventResult {
        id: event_id,
        status: EventStatus::Applied,
        code: None,
        message: None,
        parent: Some(ParentState {
            code: parent.to_string(),
            children: count.max(0) as u32,
            capacity: capacity.max(0) as u32,
            complete: count >= capacity,
        }),
        bill: None,
    };
    let outcome = serde_json::to_string(&outcome).unwrap_or_default();
    let _event: Vec<u8> = tx.prepare_cached(&numbered(EVENT))?.query_row(
        params![event_blob, who.station_id, who.user_id, us, us, outcome],
        |r| r.get(0),
    )?;
    let scans = counters::scans_on(counters::day_of(now.time(), UtcOffset::UTC));
    let (day, hour) = counters::hour_of(now.time(), UtcOffset::UTC);
    let this_hour = counters::scans_in_hour(day, hour);
    let mut names: Vec<&str> = vec![counters::CHILDREN, counters::LINKS, &scans, &this_hour];
    if count == capacity {
        names.push(counters::COMPLETE_PARENTS);
    }
    if parent_made {
        names.push(counters::PARENTS);
    }
    names.sort_unstable();
    let values: Vec<String> = (0..names.len())
        .map(|i| format!("(${}, $1, 1)", i + 2))
        .collect();
    let sql = format!(
        "INSERT INTO counters (name, shard, value) VALUES {}
         ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value",
        values.join(", ")
    );
    let shard = rand::thread_rng().gen_range(0..SHARDS);
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![&shard];
    for name in &names {
        args.push(name);
    }
    tx.prepare_cached(&numbered(&sql))?
        .execute(args.as_slice())?;
    tx.commit()
}
