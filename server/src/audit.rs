//! The audit trail: one row for every change and security event, written in the
//! same transaction as the change it describes, and sealed into a hash chain so
//! that a changed or deleted row is noticed.
//!
//! How the chain works:
//! - [`record`] writes the row to `audit_log` and queues its id in
//!   `audit_unsealed`, in the caller's transaction: a row that rolls back leaves
//!   no trace, and a row that commits is always queued.
//! - [`seal`] (run every second by the server, see [`keep_sealing`]) takes the
//!   queued ids in id order, appends each row to `audit_chain` with the next
//!   `seq` and `hash = SHA-256(previous hash ‖ the row's content)`, and empties
//!   the queue of them, in one transaction. Chain order is seal order: a row
//!   that commits after a higher id was sealed is sealed in a later pass.
//!   Only one sealer runs at a time (an advisory lock on PostgreSQL; SQLite has
//!   one writer).
//! - [`verify`] seals what is pending, then walks the chain and recomputes
//!   every hash. A row changed after sealing no longer matches its link; a
//!   deleted row leaves a link without its row; a deleted link leaves a gap in
//!   `seq`; a row written around [`record`] is in neither the chain nor the queue.
//!   Both tables also refuse UPDATE and DELETE by trigger (migration 0003), so
//!   changing them takes someone who can switch triggers off.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, On, Ts, Tx};
use crate::error::Result;
use crate::on;
use crate::rows::{self, Col, Form, Rows, Val};

/// Who is acting, from where, in which request: attached to every audit row.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub station_id: Option<i64>,
    pub request_id: Option<String>,
    /// Already anonymised (see [`anonymize_ip`]).
    pub ip: Option<String>,
}

impl Actor {
    /// The same request, acting as another user (a station event names its worker).
    pub fn as_user(&self, user_id: i64, username: &str) -> Actor {
        Actor {
            user_id: Some(user_id),
            username: Some(username.to_string()),
            ..self.clone()
        }
    }
}

/// One audit row's subject.
pub struct Entry<'a> {
    pub action: &'a str,
    pub entity: &'a str,
    pub code: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Writes one audit row and queues it for sealing, in the caller's transaction.
pub async fn record(tx: &mut Tx, actor: &Actor, at: Ts, entry: Entry<'_>) -> Result<()> {
    record_id(tx, actor, at, entry).await.map(drop)
}

/// [`record`], answering the new row's id.
pub async fn record_id(tx: &mut Tx, actor: &Actor, at: Ts, entry: Entry<'_>) -> Result<i64> {
    const INSERT: &str = "INSERT INTO audit_log (at, actor_id, actor, station_id, action, entity, \
         entity_code, before, after, request_id, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
    let before = entry.before.map(|v| v.to_string());
    let after = entry.after.map(|v| v.to_string());
    // PostgreSQL queues the row in the same statement (one round trip per
    // event); SQLite, in-process, takes a second statement.
    let sql = match tx.conn() {
        On::Pg(_) => format!(
            "WITH a AS ({INSERT}) INSERT INTO audit_unsealed (audit_id) SELECT id FROM a RETURNING audit_id"
        ),
        On::Sqlite(_) => INSERT.to_string(),
    };
    let id: i64 = on!(tx.conn(), |c| {
        sqlx::query_scalar(&sql)
            .bind(at)
            .bind(actor.user_id)
            .bind(actor.username.as_deref())
            .bind(actor.station_id)
            .bind(entry.action)
            .bind(entry.entity)
            .bind(entry.code)
            .bind(before.as_deref())
            .bind(after.as_deref())
            .bind(actor.request_id.as_deref())
            .bind(actor.ip.as_deref())
            .fetch_one(c)
            .await
    })?;
    if let On::Sqlite(c) = tx.conn() {
        sqlx::query("INSERT INTO audit_unsealed (audit_id) VALUES ($1)")
            .bind(id)
            .execute(c)
            .await?;
    }
    Ok(id)
}

/// An audit row to write with others in [`record_all`].
pub struct Pending {
    pub at: Ts,
    pub actor: Actor,
    pub action: &'static str,
    pub entity: &'static str,
    pub code: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Writes audit rows and queues them for sealing, in order, in a few
/// statements, in the caller's transaction: what [`record`] does for one.
pub async fn record_all(tx: &mut Tx, rows: Vec<Pending>) -> Result<()> {
    let total = rows.len();
    let mut list = Rows::new(
        &[
            Col::Ts,
            Col::Int,
            Col::Text,
            Col::Int,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
        ],
        total,
    );
    for row in rows {
        list.push([
            Val::Ts(row.at),
            Val::OptInt(row.actor.user_id),
            Val::OptText(row.actor.username),
            Val::OptInt(row.actor.station_id),
            Val::Text(row.action.to_string()),
            Val::Text(row.entity.to_string()),
            Val::OptText(row.code),
            Val::OptText(row.before.map(|v| v.to_string())),
            Val::OptText(row.after.map(|v| v.to_string())),
            Val::OptText(row.actor.request_id),
            Val::OptText(row.actor.ip),
        ]);
    }
    let pg = matches!(tx.conn(), On::Pg(_));
    rows::execute(tx.conn(), list, Form::Insert, |rows| {
        let insert = format!(
            "INSERT INTO audit_log (at, actor_id, actor, station_id, action, entity, \
             entity_code, before, after, request_id, ip) {rows}"
        );
        if pg {
            format!(
                "WITH a AS ({insert} RETURNING id) INSERT INTO audit_unsealed (audit_id) SELECT id FROM a"
            )
        } else {
            insert
        }
    })
    .await?;
    if let On::Sqlite(c) = tx.conn() {
        // SQLite gives a new row the highest id so far plus one, and this
        // transaction is the only writer: the newest rows are these.
        sqlx::query(
            "INSERT INTO audit_unsealed (audit_id) SELECT id FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(total as i64)
        .execute(c)
        .await?;
    }
    Ok(())
}

/// Most rows one [`seal`] pass takes.
pub const SEAL_BATCH: usize = 5_000;
/// Chain links read per page by [`verify`].
const VERIFY_PAGE: i64 = 5_000;
/// The advisory lock that keeps sealers one at a time on PostgreSQL. The
/// two-key form: a key space apart from `traitortrack_lock_keys`' bigint keys.
const SEAL_LOCK: (i32, i32) = (0x5454_4155, 1); // "TTAU"
/// What the first link's hash is chained to.
const GENESIS: &str = "traitortrack audit chain v1";

/// One audit row's content as the chain hashes it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: Ts,
    actor_id: Option<i64>,
    actor: Option<String>,
    station_id: Option<i64>,
    action: String,
    entity: String,
    entity_code: Option<String>,
    before: Option<String>,
    after: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
}

const ROW_COLUMNS: &str = "a.id, a.at, a.actor_id, a.actor, a.station_id, a.action, a.entity, \
     a.entity_code, a.before, a.after, a.request_id, a.ip";

/// Feeds one field to the hash: a NULL is one 0 byte; a value is a 1 byte,
/// its length as 8 bytes, then its bytes. No two rows encode alike.
fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0u8]),
        Some(bytes) => {
            h.update([1u8]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
    }
}

fn int_field(h: &mut Sha256, value: Option<i64>) {
    field(h, value.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
}

fn text_field(h: &mut Sha256, value: Option<&str>) {
    field(h, value.map(str::as_bytes));
}

/// The hash of a chain link: the previous link's hash (or [`GENESIS`] for the
/// first), then every column of the row, times as integer microseconds.
fn link_hash(previous: Option<&str>, row: &AuditRow) -> String {
    let mut h = Sha256::new();
    text_field(&mut h, Some(previous.unwrap_or(GENESIS)));
    int_field(&mut h, Some(row.id));
    int_field(&mut h, Some(row.at.micros()));
    int_field(&mut h, row.actor_id);
    text_field(&mut h, row.actor.as_deref());
    int_field(&mut h, row.station_id);
    text_field(&mut h, Some(&row.action));
    text_field(&mut h, Some(&row.entity));
    text_field(&mut h, row.entity_code.as_deref());
    text_field(&mut h, row.before.as_deref());
    text_field(&mut h, row.after.as_deref());
    text_field(&mut h, row.request_id.as_deref());
    text_field(&mut h, row.ip.as_deref());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends up to [`SEAL_BATCH`] queued rows to the chain, in one transaction.
/// Answers how many it sealed: 0 when there was nothing to seal or another
/// process is sealing right now.
pub async fn seal(db: &Db) -> Result<u64> {
    seal_pass(db, false).await
}

/// One sealing pass; with `wait`, it waits for another process's pass to end
/// instead of leaving the work to it.
#[tracing::instrument(skip_all)]
async fn seal_pass(db: &Db, wait: bool) -> Result<u64> {
    let mut tx = db.begin().await?;
    if let On::Pg(c) = tx.conn() {
        let locked: bool = if wait {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(SEAL_LOCK.0)
                .bind(SEAL_LOCK.1)
                .execute(c)
                .await?;
            true
        } else {
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
                .bind(SEAL_LOCK.0)
                .bind(SEAL_LOCK.1)
                .fetch_one(c)
                .await?
        };
        if !locked {
            return Ok(0);
        }
    }
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM audit_unsealed u JOIN audit_log a ON a.id = u.audit_id
         ORDER BY u.audit_id LIMIT $1"
    );
    let rows: Vec<AuditRow> = on!(tx.conn(), |c| sqlx::query_as(&sql)
        .bind(SEAL_BATCH as i64)
        .fetch_all(c)
        .await)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let last: Option<(i64, String)> = on!(tx.conn(), |c| sqlx::query_as(
        "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1"
    )
    .fetch_optional(c)
    .await)?;
    let (first_seq, mut previous) = match last {
        Some((seq, hash)) => (seq, Some(hash)),
        None => (0, None),
    };
    // Each row chained to the one before it, and taken off the queue.
    let mut chain = Rows::new(&[Col::Int, Col::Int, Col::Text], rows.len());
    let mut ids = Rows::new(&[Col::Int], rows.len());
    for (seq, row) in (first_seq + 1..).zip(&rows) {
        let hash = link_hash(previous.as_deref(), row);
        chain.push([Val::Int(seq), Val::Int(row.id), Val::Text(hash.clone())]);
        ids.push([Val::Int(row.id)]);
        previous = Some(hash);
    }
    rows::execute(tx.conn(), chain, Form::Insert, |rows| {
        format!("INSERT INTO audit_chain (seq, audit_id, hash) {rows}")
    })
    .await?;
    rows::execute(tx.conn(), ids, Form::In, |ids| {
        format!("DELETE FROM audit_unsealed WHERE audit_id {ids}")
    })
    .await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// Seals every second, and again at once after a full batch, until the task
/// is dropped. A failed pass is logged and tried again the next second.
pub async fn keep_sealing(db: Db) {
    loop {
        let full = match seal(&db).await {
            Ok(n) => n as usize == SEAL_BATCH,
            Err(e) => {
                tracing::warn!(error = %e, "could not seal the audit log");
                false
            }
        };
        if !full {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verification {
    /// True when every sealed row matches the chain and no row went around it.
    pub ok: bool,
    /// Chain links checked.
    pub rows_checked: u64,
    /// The first problem, in plain words, naming the audit row.
    pub first_problem: Option<String>,
    /// How many problems there are in all.
    pub problems: u64,
    /// Rows written properly and still waiting to be sealed.
    pub unsealed: u64,
    /// Rows in neither the chain nor the queue: written around the audit log.
    pub outside_chain: u64,
}

/// A chain link with its audit row, if the row is still there.
#[derive(sqlx::FromRow)]
struct LinkRow {
    seq: i64,
    audit_id: i64,
    hash: String,
    id: Option<i64>,
    at: Option<Ts>,
    actor_id: Option<i64>,
    actor: Option<String>,
    station_id: Option<i64>,
    action: Option<String>,
    entity: Option<String>,
    entity_code: Option<String>,
    before: Option<String>,
    after: Option<String>,
    request_id: Option<String>,
    ip: Option<String>,
}

impl LinkRow {
    fn row(self) -> Option<AuditRow> {
        Some(AuditRow {
            id: self.id?,
            at: self.at?,
            actor_id: self.actor_id,
            actor: self.actor,
            station_id: self.station_id,
            action: self.action?,
            entity: self.entity?,
            entity_code: self.entity_code,
            before: self.before,
            after: self.after,
            request_id: self.request_id,
            ip: self.ip,
        })
    }
}

/// The problems found so far: the first in words, and how many.
#[derive(Default)]
struct Findings {
    first: Option<String>,
    count: u64,
}

impl Findings {
    fn note(&mut self, how_many: u64, problem: String) {
        self.count += how_many;
        self.first.get_or_insert(problem);
    }
}

fn describe(action: &str, at: Ts) -> String {
    let when = at
        .time()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.micros().to_string());
    format!("{action:?} at {when}")
}

/// Seals what is pending, then checks every link of the chain against its
/// row, a page at a time, and counts rows that went around the chain.
#[tracing::instrument(skip_all)]
pub async fn verify(db: &Db) -> Result<Verification> {
    loop {
        match seal_pass(db, true).await {
            Ok(n) if n as usize == SEAL_BATCH => continue,
            Ok(_) => break,
            Err(e) => {
                // The walk below still says what is wrong; what is left is counted as unsealed.
                tracing::warn!(error = %e, "could not seal the audit log before verifying it");
                break;
            }
        }
    }
    let mut found = Findings::default();

    let end: Option<i64> = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT MAX(seq) FROM audit_chain"
    )
    .fetch_one(c)
    .await)?;
    let end = end.unwrap_or(0);
    let sql = format!(
        "SELECT c.seq, c.audit_id, c.hash, {ROW_COLUMNS} FROM audit_chain c
         LEFT JOIN audit_log a ON a.id = c.audit_id
         WHERE c.seq > $1 AND c.seq <= $2 ORDER BY c.seq LIMIT $3"
    );
    let mut checked = 0u64;
    let mut after_seq = 0i64;
    let mut previous: Option<String> = None;
    while after_seq < end {
        let page: Vec<LinkRow> = on!(db.reader(), |c| sqlx::query_as(&sql)
            .bind(after_seq)
            .bind(end)
            .bind(VERIFY_PAGE)
            .fetch_all(c)
            .await)?;
        if page.is_empty() {
            break;
        }
        for link in page {
            checked += 1;
            if link.seq != after_seq + 1 {
                found.note(1, if after_seq == 0 {
                    format!(
                        "The chain starts at position {}: links 1 to {} have been removed.",
                        link.seq,
                        link.seq - 1
                    )
                } else {
                    format!(
                        "The chain jumps from position {after_seq} to {}: links {} to {} have been removed.",
                        link.seq,
                        after_seq + 1,
                        link.seq - 1
                    )
                });
            }
            let (seq, audit_id, stored) = (link.seq, link.audit_id, link.hash.clone());
            match link.row() {
                None => found.note(1, format!(
                    "Audit row {audit_id} (position {seq} in the chain) is missing: it was sealed and has since been deleted."
                )),
                Some(row) => {
                    if link_hash(previous.as_deref(), &row) != stored {
                        found.note(1, format!(
                            "Audit row {} (position {seq} in the chain, {}) was changed after it was sealed: its content no longer matches the chain.",
                            row.id,
                            describe(&row.action, row.at)
                        ));
                    }
                }
            }
            // Later links are checked against the stored hash, so one change is reported once.
            previous = Some(stored);
            after_seq = seq;
        }
    }

    let (lost, first_lost): (i64, Option<i64>) = on!(db.reader(), |c| sqlx::query_as(
        "SELECT COUNT(*), MIN(u.audit_id) FROM audit_unsealed u
         WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.id = u.audit_id)"
    )
    .fetch_one(c)
    .await)?;
    if let Some(id) = first_lost {
        found.note(
            lost.max(1) as u64,
            format!("Audit row {id} is missing: it was deleted before it was sealed ({lost} such rows in all)."),
        );
    }

    let (outside, first_outside): (i64, Option<i64>) = on!(db.reader(), |c| sqlx::query_as(
        "SELECT COUNT(*), MIN(a.id) FROM audit_log a
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id)
           AND NOT EXISTS (SELECT 1 FROM audit_unsealed u WHERE u.audit_id = a.id)"
    )
    .fetch_one(c)
    .await)?;
    if let Some(id) = first_outside {
        let what: Option<(String, Ts)> = on!(db.reader(), |c| sqlx::query_as(
            "SELECT action, at FROM audit_log WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?;
        let what = what
            .map(|(action, at)| format!(" ({})", describe(&action, at)))
            .unwrap_or_default();
        found.note(
            outside.max(1) as u64,
            format!("Audit row {id}{what} was written around the audit log: it is neither sealed nor waiting to be sealed ({outside} such rows in all)."),
        );
    }

    let unsealed: i64 = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_unsealed"
    )
    .fetch_one(c)
    .await)?;
    Ok(Verification {
        ok: found.first.is_none(),
        rows_checked: checked,
        first_problem: found.first,
        problems: found.count,
        unsealed: (unsealed - lost).max(0) as u64,
        outside_chain: outside.max(0) as u64,
    })
}

/// Filters for the audit list; every one optional.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// The acting user's name.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity: Option<String>,
    pub entity_code: Option<String>,
    /// At or after this time.
    pub from: Option<Ts>,
    /// Before this time.
    pub to: Option<Ts>,
    /// The last id of the previous page: this page holds older rows.
    pub before: Option<i64>,
    pub limit: u32,
}

pub const MAX_PAGE: u32 = 500;

/// One audit row as the API shows it, with its chain link once sealed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub actor_id: Option<i64>,
    pub actor: Option<String>,
    pub station_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_code: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    /// Position in the chain; absent until sealed (within a second or so).
    pub seq: Option<i64>,
    pub hash: Option<String>,
}

/// A page of audit rows, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    #[sqlx(flatten)]
    row: AuditRow,
    seq: Option<i64>,
    hash: Option<String>,
}

fn json_or_text(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// One page of audit rows, newest first; keyset paging by id keeps every page fast.
#[tracing::instrument(skip_all)]
pub async fn list(db: &Db, filter: AuditFilter) -> Result<AuditPage> {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    // A known user is found by id (indexed); other names ("system") by the name kept.
    let actor = match filter.actor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => {
            let name = name.to_lowercase();
            let id: Option<i64> = on!(db.reader(), |c| sqlx::query_scalar(
                "SELECT id FROM users WHERE username = $1"
            )
            .bind(&name)
            .fetch_optional(c)
            .await)?;
            Some(id.ok_or(name))
        }
    };
    let mut sql = format!(
        "SELECT {ROW_COLUMNS}, c.seq, c.hash FROM audit_log a
         LEFT JOIN audit_chain c ON c.audit_id = a.id WHERE 1 = 1"
    );
    let mut n = 0;
    let mut arg = |sql: &mut String, clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if filter.before.is_some() {
        arg(&mut sql, " AND a.id < ?");
    }
    match &actor {
        Some(Ok(_)) => arg(&mut sql, " AND a.actor_id = ?"),
        Some(Err(_)) => arg(&mut sql, " AND a.actor = ?"),
        None => {}
    }
    if filter.action.is_some() {
        arg(&mut sql, " AND a.action = ?");
    }
    if filter.entity.is_some() {
        arg(&mut sql, " AND a.entity = ?");
    }
    if filter.entity_code.is_some() {
        arg(&mut sql, " AND a.entity_code = ?");
    }
    if filter.from.is_some() {
        arg(&mut sql, " AND a.at >= ?");
    }
    if filter.to.is_some() {
        arg(&mut sql, " AND a.at < ?");
    }
    arg(&mut sql, " ORDER BY a.id DESC LIMIT ?");

    let rows: Vec<ListRow> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        if let Some(before) = filter.before {
            q = q.bind(before);
        }
        match &actor {
            Some(Ok(id)) => q = q.bind(*id),
            Some(Err(name)) => q = q.bind(name),
            None => {}
        }
        for text in [&filter.action, &filter.entity, &filter.entity_code]
            .into_iter()
            .flatten()
        {
            q = q.bind(text);
        }
        for at in [filter.from, filter.to].into_iter().flatten() {
            q = q.bind(at);
        }
        q.bind(i64::from(limit) + 1).fetch_all(c).await
    })?;

    let mut items: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.row.id,
            at: r.row.at.time(),
            actor_id: r.row.actor_id,
            actor: r.row.actor,
            station_id: r.row.station_id,
            action: r.row.action,
            entity: r.row.entity,
            entity_code: r.row.entity_code,
            before: r.row.before.map(json_or_text),
            after: r.row.after.map(json_or_text),
            request_id: r.row.request_id,
            ip: r.row.ip,
            seq: r.seq,
            hash: r.hash,
        })
        .collect();
    let next_before = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { items, next_before })
}

/// Drops the host part of an address: the last octet of IPv4, the last 80 bits of IPv6.
pub fn anonymize_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0")
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymize_ip(std::net::IpAddr::V4(v4));
            }
            let s = v6.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AuditRow {
        AuditRow {
            id: 7,
            at: Ts::from_micros(1_700_000_000_123_456),
            actor_id: Some(1),
            actor: Some("admin".into()),
            station_id: None,
            action: "bill_create".into(),
            entity: "bill".into(),
            entity_code: Some("B-1".into()),
            before: None,
            after: Some(r#"{"capacity":5}"#.into()),
            request_id: Some("r-1".into()),
            ip: Some("127.0.0.0".into()),
        }
    }

    #[test]
    fn every_field_and_the_previous_link_change_the_hash() {
        let base = row();
        let h = link_hash(None, &base);
        assert_eq!(h.len(), 64);
        assert_eq!(h, link_hash(None, &row()), "the hash is deterministic");
        assert_ne!(h, link_hash(Some(&h), &base), "the previous link counts");
        let changes: [fn(&mut AuditRow); 7] = [
            |r| r.id = 8,
            |r| r.at = Ts::from_micros(r.at.micros() + 1),
            |r| r.actor_id = None,
            |r| r.station_id = Some(1),
            |r| r.action = "bill_close".into(),
            |r| r.after = Some(r#"{"capacity":6}"#.into()),
            |r| r.ip = None,
        ];
        for change in changes {
            let mut changed = row();
            change(&mut changed);
            assert_ne!(h, link_hash(None, &changed), "{changed:?}");
        }
    }

    #[test]
    fn the_encoding_tells_null_from_empty_and_where_fields_end() {
        let mut null = row();
        null.before = None;
        let mut empty = row();
        empty.before = Some(String::new());
        assert_ne!(link_hash(None, &null), link_hash(None, &empty));

        let mut a = row();
        a.entity = "bil".into();
        a.entity_code = Some("lB-1".into());
        let mut b = row();
        b.entity = "bill".into();
        b.entity_code = Some("B-1".into());
        assert_ne!(link_hash(None, &a), link_hash(None, &b));
    }

    #[test]
    fn addresses_lose_their_host_part() {
        assert_eq!(
            anonymize_ip("192.168.7.42".parse().expect("ip")),
            "192.168.7.0"
        );
        assert_eq!(
            anonymize_ip("2001:db8:1:2:3:4:5:6".parse().expect("ip")),
            "2001:db8:1::"
        );
        assert_eq!(
            anonymize_ip("::ffff:10.1.2.3".parse().expect("ip")),
            "10.1.2.0"
        );
    }
}
