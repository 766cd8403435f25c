//! The one seam between PostgreSQL and SQLite.
//!
//! Domain code writes each query once and runs it through [`on!`], which
//! expands the same expression for both sqlx drivers. The schemas differ only
//! where the engines do (see `migrations/`); time values go through [`Ts`],
//! `timestamptz` on PostgreSQL and integer microseconds on SQLite, so range
//! comparisons and ordering behave the same on both.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    SqliteTypeInfo, SqliteValueRef,
};
use sqlx::{Postgres, Sqlite};
use time::OffsetDateTime;

use crate::counters::Deltas;

/// Either backend's handle; the variant names are what [`on!`] matches.
pub enum On<P, S> {
    Pg(P),
    Sqlite(S),
}

/// Runs one expression against whichever backend `$target` holds:
/// `on!(db.reader(), |c| sqlx::query("…").fetch_one(c).await)`.
#[macro_export]
macro_rules! on {
    ($target:expr, |$c:ident| $body:expr) => {
        match $target {
            $crate::db::On::Pg($c) => $body,
            $crate::db::On::Sqlite($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// The connection pools. SQLite gets one writer connection (SQLite has one
/// writer at a time anyway; a single connection means no lock upgrades and no
/// `SQLITE_BUSY`) and a pool of read-only readers, which WAL lets run beside it.
#[derive(Clone)]
pub enum Db {
    Pg(PgPool),
    Sqlite { write: SqlitePool, read: SqlitePool },
}

/// A read-write transaction, with the counter changes it makes: they are
/// written by [`Tx::commit`], and a rolled-back savepoint drops its own.
pub struct Tx {
    inner: On<sqlx::Transaction<'static, Postgres>, sqlx::Transaction<'static, Sqlite>>,
    pub deltas: Deltas,
    saved: Option<Deltas>,
    /// The transaction wrote to what [`Watched::Access`] covers.
    access_changed: bool,
}

/// What the in-process caches copy from the database, each with a
/// generation this process moves on after every commit that changes it. A
/// copy is good only while the generation it was read at is still the
/// current one (and no older than its cache's time to live, for changes
/// other server processes make).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// Who may do what: users, sessions and stations (the session and
    /// station key caches).
    Access,
    /// The running totals (the stats snapshot): moved by every commit with
    /// counter deltas.
    Counters,
}

/// How long a cached copy of what [`Watched::Access`] covers is used before
/// it is read again: how long a change another server process makes (a
/// logout, a lock, a revoked station) may take to apply in this one.
pub const ACCESS_TTL: Duration = Duration::from_secs(2);

/// The generations of [`Watched`]: one set for the process, since a cache
/// that reloads once too often is harmless (only tests run several servers
/// in one process) and one that misses a change is not.
static GENERATIONS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// The current generation of `what`: read it before reading the database
/// for a copy, and keep it with the copy.
pub fn generation(what: Watched) -> u64 {
    GENERATIONS[what as usize].load(Ordering::SeqCst)
}

/// Moves `what` on: call it after a change to it is committed (a
/// [`Tx`] does it itself; see [`Tx::access_changed`]).
pub fn changed(what: Watched) {
    GENERATIONS[what as usize].fetch_add(1, Ordering::SeqCst);
}

static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the database address must start with postgres:// or sqlite:// (got {0:?})")]
    UnknownScheme(String),
    #[error("cannot create the folder for the SQLite database at {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Open(#[from] sqlx::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Opens pools for a `postgres://` or `sqlite://` address.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, ConnectError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Pg(pool))
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or(rest);
            if path != ":memory:" {
                if let Some(dir) = Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|source| ConnectError::Folder {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
            }
            let base = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(base.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.clamp(1, 16))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(base.read_only(true))
                .await?;
            Ok(Db::Sqlite { write, read })
        } else {
            Err(ConnectError::UnknownScheme(
                url.split("://").next().unwrap_or(url).to_string(),
            ))
        }
    }

    /// Applies the embedded migrations for this backend.
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        match self {
            Db::Pg(p) => PG_MIGRATIONS.run(p).await?,
            Db::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Pg(_) => Backend::Postgres,
            Db::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// A pool for reads outside a transaction.
    pub fn reader(&self) -> On<&PgPool, &SqlitePool> {
        match self {
            Db::Pg(p) => On::Pg(p),
            Db::Sqlite { read, .. } => On::Sqlite(read),
        }
    }

    /// The pool for a single-statement write outside a transaction.
    pub fn writer(&self) -> On<&PgPool, &SqlitePool> {
        match self {
            Db::Pg(p) => On::Pg(p),
            Db::Sqlite { write, .. } => On::Sqlite(write),
        }
    }

    /// Starts a read-write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let inner = match self {
            Db::Pg(p) => On::Pg(p.begin().await?),
            Db::Sqlite { write, .. } => On::Sqlite(write.begin().await?),
        };
        Ok(Tx {
            inner,
            deltas: Deltas::default(),
            saved: None,
            access_changed: false,
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Pg(p) => p.close().await,
            Db::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
        }
    }
}

impl Tx {
    /// The transaction's connection, for [`on!`].
    pub fn conn(&mut self) -> On<&mut sqlx::PgConnection, &mut sqlx::SqliteConnection> {
        match &mut self.inner {
            On::Pg(t) => On::Pg(&mut **t),
            On::Sqlite(t) => On::Sqlite(&mut **t),
        }
    }

    /// Marks this transaction as a change to users, sessions or stations:
    /// its commit makes every cached session and station key be read again.
    /// Every write to those tables calls it, except new sessions and
    /// stations (nothing cached them yet) and "last seen" marks.
    pub fn access_changed(&mut self) {
        self.access_changed = true;
    }

    /// Writes the counter changes, then commits; then moves the generations
    /// of what it changed on (whatever the outcome: a commit whose answer
    /// was lost may still have happened).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let deltas = std::mem::take(&mut self.deltas);
        let counted = !deltas.is_empty();
        let access = self.access_changed;
        let done = match deltas.write(&mut self).await {
            Ok(()) => on!(self.inner, |t| t.commit().await),
            Err(e) => Err(e),
        };
        if access {
            changed(Watched::Access);
        }
        if counted {
            changed(Watched::Counters);
        }
        done
    }

    /// Opens the savepoint that keeps one event all-or-nothing inside a batch.
    pub async fn savepoint(&mut self) -> Result<(), sqlx::Error> {
        on!(self.conn(), |c| sqlx::query("SAVEPOINT ev")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        self.saved = Some(self.deltas.clone());
        Ok(())
    }

    pub async fn release(&mut self) -> Result<(), sqlx::Error> {
        on!(self.conn(), |c| sqlx::query("RELEASE SAVEPOINT ev")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        self.saved = None;
        Ok(())
    }

    pub async fn rollback_to_savepoint(&mut self) -> Result<(), sqlx::Error> {
        on!(self.conn(), |c| sqlx::query("ROLLBACK TO SAVEPOINT ev")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        on!(self.conn(), |c| sqlx::query("RELEASE SAVEPOINT ev")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        if let Some(saved) = self.saved.take() {
            self.deltas = saved;
        }
        Ok(())
    }
}

impl Tx {
    /// Locks the given codes for the rest of the transaction, in one global
    /// order, so transactions that share codes queue instead of deadlocking.
    /// A no-op on SQLite, where one writer runs at a time.
    pub async fn lock_codes<'a>(
        &mut self,
        codes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), sqlx::Error> {
        let On::Pg(t) = &mut self.inner else {
            return Ok(());
        };
        let mut keys: Vec<i64> = codes.into_iter().map(code_key).collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        sqlx::query("SELECT traitortrack_lock_keys($1)")
            .bind(&keys)
            .execute(&mut **t)
            .await?;
        Ok(())
    }
}

/// A stable 64-bit key for a code (FNV-1a): the same in every server process.
fn code_key(code: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in code.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// True when the database refused for a reason that goes away on a retry:
/// a deadlock or serialization failure (PostgreSQL) or a busy/locked file (SQLite).
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            Some("40001" | "40P01" | "55P03" | "5" | "6" | "517" | "262")
        ),
        _ => false,
    }
}

/// A point in time as stored: microsecond precision, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(OffsetDateTime);

impl Ts {
    pub fn new(t: OffsetDateTime) -> Ts {
        Ts::from_micros((t.unix_timestamp_nanos() / 1000) as i64)
    }

    pub fn from_micros(us: i64) -> Ts {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ts(t)
    }

    pub fn micros(self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1000) as i64
    }

    pub fn time(self) -> OffsetDateTime {
        self.0
    }
}

impl From<OffsetDateTime> for Ts {
    fn from(t: OffsetDateTime) -> Ts {
        Ts::new(t)
    }
}

impl sqlx::Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::postgres::PgHasArrayType for Ts {
    fn array_type_info() -> PgTypeInfo {
        <OffsetDateTime as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl<'q> sqlx::Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as sqlx::Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<OffsetDateTime as sqlx::Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

impl sqlx::Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as sqlx::Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as sqlx::Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> sqlx::Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as sqlx::Encode<'q, Sqlite>>::encode(self.micros(), buf)
    }
}

impl<'r> sqlx::Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts::from_micros(<i64 as sqlx::Decode<'r, Sqlite>>::decode(
            value,
        )?))
    }
}

/// One connection pool's use, for the health page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PoolUse {
    /// `main` on PostgreSQL; `writer` and `readers` on SQLite.
    pub name: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// How much room the database takes, for the health page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Size {
    /// PostgreSQL: the database's size on disk; SQLite: the file's pages.
    pub bytes: i64,
    /// SQLite only: the write-ahead log beside the file.
    pub wal_bytes: Option<i64>,
}

impl Db {
    /// Connections in use and idle, for each pool.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        fn of<D: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<D>) -> PoolUse {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            PoolUse {
                name,
                in_use: pool.size().saturating_sub(idle),
                idle,
                max: pool.options().get_max_connections(),
            }
        }
        match self {
            Db::Pg(p) => vec![of("main", p)],
            Db::Sqlite { write, read } => vec![of("writer", write), of("readers", read)],
        }
    }

    /// The database's size: `pg_database_size` on PostgreSQL; on SQLite the
    /// file's pages, and the write-ahead log's file.
    pub async fn size(&self) -> Result<Size, sqlx::Error> {
        match self {
            Db::Pg(p) => {
                let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await?;
                Ok(Size {
                    bytes,
                    wal_bytes: None,
                })
            }
            Db::Sqlite { read, .. } => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                    .fetch_one(read)
                    .await?;
                let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
                    .fetch_one(read)
                    .await?;
                let files: Vec<(i64, String, String)> = sqlx::query_as("PRAGMA database_list")
                    .fetch_all(read)
                    .await?;
                let wal_bytes = files
                    .iter()
                    .find(|(_, name, file)| name == "main" && !file.is_empty())
                    .map(|(_, _, file)| {
                        std::fs::metadata(format!("{file}-wal"))
                            .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
                    });
                Ok(Size {
                    bytes: pages.saturating_mul(page_size),
                    wal_bytes,
                })
            }
        }
    }
}
