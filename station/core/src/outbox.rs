//! The station's durable outbox: every accepted scan is an event row committed
//! to disk before the worker hears anything, kept until the server answered,
//! plus the last known state of the parents and bills this station touched.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;
use traitortrack_protocol::{BillState, Event, EventResult, EventStatus, EventType, ParentState};
use uuid::Uuid;

/// Schema versions this program knows, each applied all-or-nothing.
const MIGRATIONS: &[&str] = &[
    // 1: events, local cache, workers.
    "CREATE TABLE events (
         seq          INTEGER PRIMARY KEY AUTOINCREMENT,
         id           TEXT NOT NULL UNIQUE,
         worker       TEXT NOT NULL,
         kind         TEXT NOT NULL,
         parent       TEXT,
         child        TEXT,
         payload      TEXT NOT NULL,
         scanned_at   TEXT NOT NULL,
         state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'applied', 'rejected')),
         code         TEXT,
         message      TEXT,
         result       TEXT,
         answered_at  TEXT,
         acknowledged_at TEXT
     );
     CREATE INDEX events_unsent ON events (state, seq);
     CREATE INDEX events_unsent_parent ON events (parent) WHERE state IN ('pending', 'sent');
     CREATE TABLE parents (
         code      TEXT PRIMARY KEY,
         children  INTEGER NOT NULL,
         capacity  INTEGER NOT NULL
     );
     CREATE TABLE parent_children (
         child   TEXT PRIMARY KEY,
         parent  TEXT NOT NULL
     );
     CREATE TABLE bills (
         code          TEXT PRIMARY KEY,
         status        TEXT NOT NULL,
         parent_count  INTEGER NOT NULL,
         capacity      INTEGER NOT NULL
     );
     CREATE TABLE meta (
         key    TEXT PRIMARY KEY,
         value  TEXT NOT NULL
     );
     CREATE TABLE workers (
         username       TEXT PRIMARY KEY,
         role           TEXT NOT NULL,
         dispatch_area  TEXT,
         verifier       TEXT NOT NULL,
         last_login_at  TEXT NOT NULL
     );",
];

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("The disk is full: this scan was NOT saved. Free some space or call your supervisor.")]
    DiskFull,
    #[error(
        "The scan store cannot be written (read-only file or folder): this scan was NOT saved."
    )]
    ReadOnly,
    #[error("The scan store was made by a newer TraitorTrack station (version {found}; this program knows up to {known}). Install the newer station program.")]
    NewerSchema { found: i64, known: i64 },
    #[error("The scan store could not be opened: {0}")]
    Open(String),
    #[error("The scan store failed: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> OutboxError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => OutboxError::DiskFull,
            Some(ErrorCode::ReadOnly) | Some(ErrorCode::CannotOpen) => OutboxError::ReadOnly,
            _ => OutboxError::Storage(e.to_string()),
        }
    }
}

pub type Result<T, E = OutboxError> = std::result::Result<T, E>;

/// An event waiting for, or holding, the server's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub event: Event,
    pub state: State,
    pub code: Option<String>,
    pub message: Option<String>,
    /// The server's answer, once there is one.
    pub result: Option<EventResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Sent,
    Applied,
    Rejected,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Applied => "applied",
            State::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "sent" => State::Sent,
            "applied" => State::Applied,
            "rejected" => State::Rejected,
            _ => State::Pending,
        }
    }
}

/// What the station last knew of a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownParent {
    pub code: String,
    pub children: u32,
    pub capacity: u32,
}

/// A scan the server refused, waiting for a worker to acknowledge it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attention {
    pub id: Uuid,
    pub worker: String,
    pub kind: EventType,
    pub parent: Option<String>,
    pub child: Option<String>,
    pub bill: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub scanned_at: OffsetDateTime,
    pub code: String,
    pub message: String,
}

/// Counts for the status bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub unsent: u64,
    pub needs_attention: u64,
}

/// A worker's offline login: the verifier from their last online login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownWorker {
    pub username: String,
    pub role: String,
    pub dispatch_area: Option<String>,
    pub verifier: String,
}

pub struct Outbox {
    conn: std::sync::Mutex<Connection>,
    /// New scans are refused past this size; answers still get recorded.
    max_bytes: Option<u64>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Outbox {
    /// Opens (creating if needed) the outbox file. `max_bytes` caps its size:
    /// past it, new scans are refused with [`OutboxError::DiskFull`].
    pub fn open(path: &Path, max_bytes: Option<u64>) -> Result<Outbox> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => OutboxError::ReadOnly,
                _ => OutboxError::Open(format!("{}: {e}", dir.display())),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| match OutboxError::from(e) {
            OutboxError::Storage(m) => OutboxError::Open(m),
            other => other,
        })?;
        Outbox::setup(conn, max_bytes)
    }

    fn setup(mut conn: Connection, max_bytes: Option<u64>) -> Result<Outbox> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        if let Some(max) = max_bytes {
            // The hard stop leaves room above the limit for recording answers.
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = (max.saturating_mul(2) as i64 / page.max(512)).max(16);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        migrate(&mut conn)?;
        Ok(Outbox {
            conn: std::sync::Mutex::new(conn),
            max_bytes,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (its
        // transaction rolls back), so the connection stays usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a new event durably and, for a link, counts it in the local
    /// cache at once. Returns the per-station sequence number.
    pub fn append(&self, event: &Event) -> Result<i64> {
        let payload =
            serde_json::to_string(event).map_err(|e| OutboxError::Storage(e.to_string()))?;
        let mut conn = self.conn();
        if let Some(max) = self.max_bytes {
            let used: i64 = conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get(0),
            )?;
            if used.max(0) as u64 >= max {
                return Err(OutboxError::DiskFull);
            }
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO events (id, worker, kind, parent, child, payload, scanned_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            params![
                event.id.to_string(),
                event.user,
                event.kind.as_str(),
                event.parent,
                event.child,
                payload,
                rfc3339(event.at)
            ],
        )?;
        let seq = tx.last_insert_rowid();
        if let (EventType::Link, Some(parent), Some(child)) =
            (event.kind, event.parent.as_deref(), event.child.as_deref())
        {
            tx.execute(
                "INSERT INTO parent_children (child, parent) VALUES (?1, ?2)
                 ON CONFLICT (child) DO UPDATE SET parent = excluded.parent",
                params![child, parent],
            )?;
            tx.execute(
                "UPDATE parents SET children = children + 1 WHERE code = ?1",
                params![parent],
            )?;
        }
        tx.commit()?;
        Ok(seq)
    }

    /// The oldest unanswered events (pending or sent), up to `limit`.
    pub fn unsent(&self, limit: usize) -> Result<Vec<Stored>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {STORED_COLUMNS} FROM events
             WHERE state IN ('pending', 'sent') ORDER BY seq LIMIT ?1"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![limit as i64], read_stored)?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    }

    /// Marks events as on their way (before the request goes out).
    pub fn mark_sent(&self, ids: &[Uuid]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE events SET state = 'sent' WHERE id = ?1 AND state = 'pending'",
            )?;
            for id in ids {
                stmt.execute(params![id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the server's answers and refreshes the cache from them.
    pub fn record_results(&self, results: &[EventResult], now: OffsetDateTime) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let answered = rfc3339(now);
        for r in results {
            let state = match r.status {
                EventStatus::Applied | EventStatus::Duplicate => State::Applied,
                EventStatus::Rejected => State::Rejected,
            };
            let json = serde_json::to_string(r).map_err(|e| OutboxError::Storage(e.to_string()))?;
            let changed = tx.execute(
                "UPDATE events SET state = ?2, code = ?3, message = ?4, result = ?5, answered_at = ?6
                 WHERE id = ?1 AND state IN ('pending', 'sent')",
                params![
                    r.id.to_string(),
                    state.as_str(),
                    r.code,
                    r.message,
                    json,
                    answered
                ],
            )?;
            if changed == 0 {
                continue;
            }
            if let Some(p) = &r.parent {
                remember_parent(&tx, p)?;
            }
            if let Some(b) = &r.bill {
                remember_bill(&tx, b)?;
            }
            if state == State::Rejected {
                forget_rejected_link(&tx, &r.id)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Refused scans not yet acknowledged, oldest first.
    pub fn needs_attention(&self) -> Result<Vec<Attention>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT payload, code, message FROM events
             WHERE state = 'rejected' AND acknowledged_at IS NULL ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (payload, code, message) = row?;
            if let Ok(ev) = serde_json::from_str::<Event>(&payload) {
                out.push(Attention {
                    id: ev.id,
                    worker: ev.user,
                    kind: ev.kind,
                    parent: ev.parent,
                    child: ev.child,
                    bill: ev.bill,
                    scanned_at: ev.at,
                    code: code.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// A worker has seen a refused scan; returns false if it was not waiting.
    pub fn acknowledge(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE events SET acknowledged_at = ?2
             WHERE id = ?1 AND state = 'rejected' AND acknowledged_at IS NULL",
            params![id.to_string(), rfc3339(now)],
        )?;
        Ok(n > 0)
    }

    pub fn counts(&self) -> Result<Counts> {
        let conn = self.conn();
        let (unsent, attention): (i64, i64) = conn.query_row(
            "SELECT
                (SELECT COUNT(*) FROM events WHERE state IN ('pending', 'sent')),
                (SELECT COUNT(*) FROM events WHERE state = 'rejected' AND acknowledged_at IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Counts {
            unsent: unsent.max(0) as u64,
            needs_attention: attention.max(0) as u64,
        })
    }

    /// One stored event with its state, by id.
    pub fn get(&self, id: Uuid) -> Result<Option<Stored>> {
        let sql = format!("SELECT {STORED_COLUMNS} FROM events WHERE id = ?1");
        let row = self
            .conn()
            .query_row(&sql, params![id.to_string()], read_stored)
            .optional()?;
        Ok(row.flatten())
    }

    /// Every event ever stored here, oldest first (for checks and exports).
    pub fn all_ids(&self) -> Result<Vec<(Uuid, State)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, state FROM events ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, state) = row?;
            if let Ok(id) = Uuid::parse_str(&id) {
                out.push((id, State::parse(&state)));
            }
        }
        Ok(out)
    }

    /// The last known state of a parent, counting this station's unsent links.
    pub fn known_parent(&self, code: &str) -> Result<Option<KnownParent>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT code, children, capacity FROM parents WHERE code = ?1",
                params![code],
                |r| {
                    Ok(KnownParent {
                        code: r.get(0)?,
                        children: r.get::<_, i64>(1)?.max(0) as u32,
                        capacity: r.get::<_, i64>(2)?.max(0) as u32,
                    })
                },
            )
            .optional()?)
    }

    /// Records what the station now knows of a parent (from a fresh answer).
    pub fn remember_parent(&self, p: &ParentState) -> Result<()> {
        remember_parent(&self.conn(), p)?;
        Ok(())
    }

    /// The parent this station last saw a child go into.
    pub fn known_holder(&self, child: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT parent FROM parent_children WHERE child = ?1",
                params![child],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Forgets a link this station knew (after an undo).
    pub fn forget_link(&self, child: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM parent_children WHERE child = ?1",
            params![child],
        )?;
        Ok(())
    }

    pub fn known_bill(&self, code: &str) -> Result<Option<BillState>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT code, status, parent_count, capacity FROM bills WHERE code = ?1",
                params![code],
                |r| {
                    let status: String = r.get(1)?;
                    Ok(BillState {
                        code: r.get(0)?,
                        status: traitortrack_protocol::BillStatus::parse(&status)
                            .unwrap_or(traitortrack_protocol::BillStatus::InProgress),
                        parent_count: r.get::<_, i64>(2)?.max(0) as u32,
                        capacity: r.get::<_, i64>(3)?.max(0) as u32,
                    })
                },
            )
            .optional()?)
    }

    /// Keeps a worker's offline-login verifier from an online login.
    pub fn remember_worker(&self, w: &KnownWorker, now: OffsetDateTime) -> Result<()> {
        self.conn().execute(
            "INSERT INTO workers (username, role, dispatch_area, verifier, last_login_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (username) DO UPDATE SET role = excluded.role,
                dispatch_area = excluded.dispatch_area, verifier = excluded.verifier,
                last_login_at = excluded.last_login_at",
            params![
                w.username,
                w.role,
                w.dispatch_area,
                w.verifier,
                rfc3339(now)
            ],
        )?;
        Ok(())
    }

    pub fn known_worker(&self, username: &str) -> Result<Option<KnownWorker>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT username, role, dispatch_area, verifier FROM workers WHERE username = ?1",
                params![username],
                |r| {
                    Ok(KnownWorker {
                        username: r.get(0)?,
                        role: r.get(1)?,
                        dispatch_area: r.get(2)?,
                        verifier: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// A small remembered value (e.g. the parent in progress), durable like a scan.
    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        let conn = self.conn();
        match value {
            Some(v) => conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => conn.execute("DELETE FROM meta WHERE key = ?1", params![key])?,
        };
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Drops answered events older than `keep`, never unanswered or
    /// unacknowledged ones. Returns how many went.
    pub fn prune(&self, older_than: OffsetDateTime) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM events WHERE answered_at IS NOT NULL AND answered_at < ?1
               AND (state = 'applied' OR (state = 'rejected' AND acknowledged_at IS NOT NULL))",
            params![rfc3339(older_than)],
        )?)
    }
}

/// The columns [`read_stored`] reads, in its order.
const STORED_COLUMNS: &str = "seq, payload, state, code, message, result";

/// One event row; `None` (logged) when its payload cannot be read.
fn read_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Stored>> {
    let seq: i64 = r.get(0)?;
    let payload: String = r.get(1)?;
    let event = match serde_json::from_str::<Event>(&payload) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(seq, error = %e, "unreadable event in the outbox");
            return Ok(None);
        }
    };
    let result: Option<String> = r.get(5)?;
    Ok(Some(Stored {
        seq,
        event,
        state: State::parse(&r.get::<_, String>(2)?),
        code: r.get(3)?,
        message: r.get(4)?,
        result: result.and_then(|j| serde_json::from_str(&j).ok()),
    }))
}

fn remember_parent(conn: &Connection, p: &ParentState) -> rusqlite::Result<()> {
    // The server's count plus this station's links it has not answered yet.
    conn.execute(
        "INSERT INTO parents (code, children, capacity) VALUES (?1, ?2, ?3)
         ON CONFLICT (code) DO UPDATE SET children = excluded.children, capacity = excluded.capacity",
        params![
            p.code,
            i64::from(p.children) + unsent_links(conn, &p.code)?,
            i64::from(p.capacity)
        ],
    )?;
    Ok(())
}

fn unsent_links(conn: &Connection, parent: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM events WHERE parent = ?1 AND state IN ('pending', 'sent')
           AND kind = 'link'",
        params![parent],
        |r| r.get(0),
    )
}

fn remember_bill(conn: &Connection, b: &BillState) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO bills (code, status, parent_count, capacity) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (code) DO UPDATE SET status = excluded.status,
            parent_count = excluded.parent_count, capacity = excluded.capacity",
        params![
            b.code,
            b.status.as_str(),
            i64::from(b.parent_count),
            i64::from(b.capacity)
        ],
    )?;
    Ok(())
}

/// A refused link is not in its parent after all: drop it from the cache.
fn forget_rejected_link(conn: &Connection, id: &Uuid) -> rusqlite::Result<()> {
    let link: Option<(String, String)> = conn
        .query_row(
            "SELECT parent, child FROM events WHERE id = ?1 AND kind = 'link'",
            params![id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((parent, child)) = link {
        conn.execute(
            "DELETE FROM parent_children WHERE child = ?1 AND parent = ?2",
            params![child, parent],
        )?;
        conn.execute(
            "UPDATE parents SET children = MAX(children - 1, 0) WHERE code = ?1",
            params![parent],
        )?;
    }
    Ok(())
}

/// Brings the schema up to date, each step all-or-nothing; refuses a newer one.
fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(OutboxError::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tt-outbox-{}-{name}-{}",
            std::process::id(),
            Uuid::now_v7()
        ));
        dir.join("outbox.db")
    }

    fn link(parent: &str, child: &str) -> Event {
        Event {
            id: Uuid::now_v7(),
            kind: EventType::Link,
            user: "ravi".into(),
            parent: Some(parent.into()),
            child: Some(child.into()),
            bill: None,
            reason: None,
            at: OffsetDateTime::now_utc(),
        }
    }

    fn applied(ev: &Event, children: u32) -> EventResult {
        EventResult {
            id: ev.id,
            status: EventStatus::Applied,
            code: None,
            message: None,
            parent: Some(ParentState {
                code: ev.parent.clone().unwrap_or_default(),
                children,
                capacity: 30,
                complete: children >= 30,
            }),
            bill: None,
        }
    }

    #[test]
    fn events_survive_reopening_and_leave_only_when_answered() {
        let path = temp_path("reopen");
        let events: Vec<Event> = (0..5)
            .map(|i| link("SB00001", &format!("C000{i}")))
            .collect();
        {
            let outbox = Outbox::open(&path, None).expect("open");
            for e in &events {
                outbox.append(e).expect("append");
            }
            outbox.mark_sent(&[events[0].id]).expect("mark");
        }
        let outbox = Outbox::open(&path, None).expect("reopen");
        let unsent = outbox.unsent(500).expect("unsent");
        assert_eq!(unsent.len(), 5);
        assert_eq!(unsent[0].state, State::Sent);
        assert_eq!(unsent[0].event.id, events[0].id);
        assert!(
            unsent.windows(2).all(|w| w[0].seq < w[1].seq),
            "oldest first"
        );

        let now = OffsetDateTime::now_utc();
        let mut rejected = applied(&events[1], 0);
        rejected.status = EventStatus::Rejected;
        rejected.code = Some("parent_full".into());
        rejected.message = Some("SB00001 is full: 30 of 30".into());
        rejected.parent = None;
        outbox
            .record_results(&[applied(&events[0], 1), rejected], now)
            .expect("record");
        assert_eq!(outbox.unsent(500).expect("unsent").len(), 3);
        let attention = outbox.needs_attention().expect("attention");
        assert_eq!(attention.len(), 1);
        assert_eq!(attention[0].code, "parent_full");
        assert_eq!(
            outbox.counts().expect("counts"),
            Counts {
                unsent: 3,
                needs_attention: 1
            }
        );
        // Pruning never drops the unacknowledged refusal or the unsent ones.
        outbox.prune(now + time::Duration::days(1)).expect("prune");
        assert_eq!(
            outbox.counts().expect("counts"),
            Counts {
                unsent: 3,
                needs_attention: 1
            }
        );
        assert!(outbox.acknowledge(events[1].id, now).expect("ack"));
        assert!(!outbox.acknowledge(events[1].id, now).expect("ack twice"));
        assert_eq!(outbox.counts().expect("counts").needs_attention, 0);
    }

    #[test]
    fn the_cache_counts_unsent_links_and_forgets_refused_ones() {
        let outbox = Outbox::open(&temp_path("cache"), None).expect("open");
        let first = link("SB00001", "C0001");
        outbox.append(&first).expect("append");
        outbox
            .record_results(&[applied(&first, 1)], OffsetDateTime::now_utc())
            .expect("record");
        let second = link("SB00001", "C0002");
        outbox.append(&second).expect("append");
        assert_eq!(
            outbox
                .known_parent("SB00001")
                .expect("known")
                .map(|p| p.children),
            Some(2)
        );
        assert_eq!(
            outbox.known_holder("C0002").expect("holder").as_deref(),
            Some("SB00001")
        );
        let mut refused = applied(&second, 0);
        refused.status = EventStatus::Rejected;
        refused.parent = None;
        refused.code = Some("child_in_other_parent".into());
        outbox
            .record_results(&[refused], OffsetDateTime::now_utc())
            .expect("record");
        assert_eq!(
            outbox
                .known_parent("SB00001")
                .expect("known")
                .map(|p| p.children),
            Some(1)
        );
        assert_eq!(outbox.known_holder("C0002").expect("holder"), None);
    }

    #[test]
    fn a_read_only_store_refuses_the_scan_in_plain_words() {
        let path = temp_path("readonly");
        drop(Outbox::open(&path, None).expect("open"));
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("read-only open");
        let outbox = Outbox {
            conn: std::sync::Mutex::new(conn),
            max_bytes: None,
        };
        let err = outbox
            .append(&link("SB00001", "C0001"))
            .expect_err("refused");
        assert!(matches!(err, OutboxError::ReadOnly), "{err:?}");
        assert!(err.to_string().contains("NOT saved"));
    }

    #[test]
    fn a_newer_schema_stops_an_older_program() {
        let path = temp_path("newer");
        drop(Outbox::open(&path, None).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        let err = Outbox::open(&path, None).err().expect("refused");
        assert!(matches!(err, OutboxError::NewerSchema { found: 99, .. }));
        assert!(err.to_string().contains("newer TraitorTrack station"));
    }

    #[test]
    fn a_full_outbox_refuses_the_scan_and_keeps_the_earlier_ones() {
        let outbox = Outbox::open(&temp_path("full"), Some(160 * 1024)).expect("open");
        let mut kept = 0;
        let mut refused = None;
        for i in 0..10_000 {
            match outbox.append(&link("SB00001", &format!("C{i:05}"))) {
                Ok(_) => kept += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let err = refused.expect("the size limit is reached");
        assert!(matches!(err, OutboxError::DiskFull), "{err:?}");
        assert!(err.to_string().contains("NOT saved"));
        assert!(kept > 10, "earlier scans fit: {kept}");
        assert_eq!(outbox.unsent(100_000).expect("unsent").len(), kept);
    }
}
