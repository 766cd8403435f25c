//! The system's health as admins see it: version, uptime, the database's
//! kind, size and pools, this process's request figures and memory, the
//! audit sealing backlog and the totals. The console's health page and
//! `GET /api/v1/health/details` show the same [`Health`].

use serde::Serialize;
use traitortrack_protocol::{Role, Stats};

use crate::config::Settings;
use crate::db::{Db, PoolUse, Ts};
use crate::error::Result;
use crate::metrics::{Metrics, Summary};
use crate::users::User;
use crate::{counters, on};

/// The commit the binary was built from, when the build named it in
/// `TRAITORTRACK_GIT_COMMIT` (for example `TRAITORTRACK_GIT_COMMIT=$(git
/// rev-parse --short HEAD) cargo build --release`).
pub const COMMIT: Option<&str> = option_env!("TRAITORTRACK_GIT_COMMIT");

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub version: &'static str,
    pub commit: Option<&'static str>,
    /// Seconds since this server process started.
    pub uptime_seconds: u64,
    pub database: Database,
    /// This process's requests (each server process counts its own).
    pub requests: Summary,
    pub memory: Memory,
    pub audit: AuditBacklog,
    pub totals: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct Database {
    /// `postgres` or `sqlite`.
    pub kind: &'static str,
    pub size_bytes: i64,
    /// SQLite's write-ahead log; none on PostgreSQL.
    pub wal_bytes: Option<i64>,
    pub pools: Vec<PoolUse>,
}

/// This process's memory, from `/proc/self/status` (none where there is no such file).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// Resident now (VmRSS).
    pub rss_bytes: Option<u64>,
    /// The most it was resident since the start (VmHWM).
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditBacklog {
    /// Audit rows written but not yet sealed into the hash chain.
    pub unsealed: i64,
}

/// Gathers the health figures (admins only).
pub async fn details(
    db: &Db,
    settings: &Settings,
    metrics: &Metrics,
    user: &User,
    now: Ts,
) -> Result<Health> {
    user.require(&[Role::Admin], "see the system's health (it is for admins)")?;
    let size = db.size().await?;
    let unsealed: i64 = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_unsealed"
    )
    .fetch_one(c)
    .await)?;
    let today = counters::day_of(now.time(), settings.utc_offset);
    Ok(Health {
        version: env!("CARGO_PKG_VERSION"),
        commit: COMMIT,
        uptime_seconds: metrics.uptime().as_secs(),
        database: Database {
            kind: db.backend().as_str(),
            size_bytes: size.bytes,
            wal_bytes: size.wal_bytes,
            pools: db.pool_use(),
        },
        requests: metrics.summary(),
        memory: memory(),
        audit: AuditBacklog { unsealed },
        totals: counters::stats(db, today).await?,
    })
}

/// This process's memory now.
pub fn memory() -> Memory {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| memory_from(&status))
        .unwrap_or_default()
}

/// Reads VmRSS and VmHWM (in kB) from the text of `/proc/self/status`.
pub fn memory_from(status: &str) -> Memory {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    };
    Memory {
        rss_bytes: field("VmRSS:"),
        peak_rss_bytes: field("VmHWM:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status() {
        let status =
            "Name:\ttraitortrack\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let m = memory_from(status);
        assert_eq!(m.rss_bytes, Some(40 * 1024 * 1024));
        assert_eq!(m.peak_rss_bytes, Some(50 * 1024 * 1024));
        assert_eq!(memory_from("Name: x\n").rss_bytes, None);
        if cfg!(target_os = "linux") {
            assert!(memory().rss_bytes.is_some_and(|b| b > 0));
        }
    }
}
