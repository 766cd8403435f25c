//! Bags: finding, creating on first scan, and reading them back with their
//! parent, children and bill.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use traitortrack_protocol::{
    normalize, Bag, BagKind, BagSummary, CodeKind, Formats, LinkedChild, Page, ParentState, Role,
};

use crate::batches::{take_up_to, Batches};
use crate::db::{self, Db, On, Ts};
use crate::error::{Error, Result};
use crate::on;
use crate::rows;
use crate::users::User;

/// A bag as stored.
#[derive(Debug, Clone)]
pub struct BagRow {
    pub id: i64,
    pub code: String,
    pub kind: BagKind,
    pub capacity: Option<i32>,
    pub child_count: i32,
    pub bill_id: Option<i64>,
    pub dispatch_area: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

type Row = (
    i64,
    String,
    String,
    Option<i32>,
    i32,
    Option<i64>,
    Option<String>,
    Ts,
    Ts,
);

const COLUMNS: &str =
    "id, code, kind, capacity, child_count, bill_id, dispatch_area, created_at, updated_at";

fn from_row(r: Row) -> Result<BagRow> {
    let kind = BagKind::parse(&r.2)
        .ok_or_else(|| Error::Internal(format!("bag {} has an unknown kind {:?}", r.1, r.2)))?;
    Ok(BagRow {
        id: r.0,
        code: r.1,
        kind,
        capacity: r.3,
        child_count: r.4,
        bill_id: r.5,
        dispatch_area: r.6,
        created_at: r.7,
        updated_at: r.8,
    })
}

impl BagRow {
    pub fn is_complete(&self) -> bool {
        self.capacity.is_some_and(|c| self.child_count >= c)
    }

    pub fn parent_state(&self) -> ParentState {
        ParentState {
            code: self.code.clone(),
            children: self.child_count.max(0) as u32,
            capacity: self.capacity.unwrap_or(0).max(0) as u32,
            complete: self.is_complete(),
        }
    }
}

pub async fn find<'c, P, S>(on: On<P, S>, code: &str) -> Result<Option<BagRow>>
where
    P: sqlx::PgExecutor<'c>,
    S: sqlx::SqliteExecutor<'c>,
{
    let sql = format!("SELECT {COLUMNS} FROM bags WHERE code = $1");
    let row: Option<Row> = on!(on, |c| sqlx::query_as(&sql)
        .bind(code)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).transpose()
}

/// The capacity a new parent gets from its code's format; refuses a code that is no parent code.
pub fn parent_capacity(formats: &Formats, code: &str) -> Result<u32> {
    match formats.classify(code) {
        CodeKind::Parent { capacity } => Ok(capacity),
        CodeKind::Child => Err(Error::bad_input(
            "not_a_parent",
            format!("{code} is a child bag code. Scan a parent bag."),
        )),
        CodeKind::Unknown => Err(Error::bad_input(
            "not_a_parent",
            format!("{code} is not a parent bag code."),
        )),
    }
}

/// Finds a bag `viewer` may see: a dispatcher only those of their area.
async fn visible(db: &Db, viewer: &User, raw_code: &str) -> Result<BagRow> {
    let code = normalize(raw_code)?;
    let not_found = || Error::not_found("bag_not_found", format!("There is no bag {code}."));
    let bag = find(db.reader(), &code).await?.ok_or_else(not_found)?;
    viewer.check_area(&bag.code, bag.dispatch_area.as_deref())?;
    Ok(bag)
}

/// A bag as [`get`] reads it: its row, bill, parent and children.
type Found = (Row, Option<String>, Option<String>, Vec<LinkedChild>);

/// One bag read waiting for its batch.
struct Read {
    code: String,
    reply: oneshot::Sender<Result<Option<Found>>>,
}

/// Bag reads that arrive together go to the database in one statement (see
/// [`crate::batches`]): a busy console or a hundred stations looking bags
/// up cost a few statements instead of one each.
pub struct Reads(Batches<Read>);

/// Codes read in one statement at most.
const READ_CODES: usize = 64;
/// Read statements running at once.
const READERS: usize = 3;

impl Default for Reads {
    fn default() -> Reads {
        Reads(Batches::new(READERS, |queue| take_up_to(queue, READ_CODES)))
    }
}

/// Reads one bag with everything about it, as `viewer` may see it.
pub async fn get(db: &Db, reads: &Reads, viewer: &User, raw_code: &str) -> Result<Bag> {
    let code = normalize(raw_code)?;
    let (reply, answer) = oneshot::channel();
    let read = Read {
        code: code.clone(),
        reply,
    };
    let found = reads
        .0
        .submit(read, answer, |batch| {
            let db = db.clone();
            async move { read_batch(&db, batch).await }
        })
        .await?;
    let Some((bag, bill, parent, children)) = found else {
        return Err(Error::not_found(
            "bag_not_found",
            format!("There is no bag {code}."),
        ));
    };
    let bag = from_row(bag)?;
    viewer.check_area(&bag.code, bag.dispatch_area.as_deref())?;
    let (parent, children) = match bag.kind {
        BagKind::Child => (parent, Vec::new()),
        BagKind::Parent => (None, children),
    };
    Ok(Bag {
        complete: bag.is_complete(),
        code: bag.code,
        kind: bag.kind,
        parent,
        children,
        child_count: bag.child_count.max(0) as u32,
        capacity: bag.capacity.map(|c| c.max(0) as u32),
        bill,
        dispatch_area: bag.dispatch_area,
        created_at: bag.created_at.time(),
        updated_at: bag.updated_at.time(),
    })
}

/// Answers every read of the batch. When the database is busy or gone,
/// every read gets the busy answer (503, try again) at once; when the
/// batch's statement fails otherwise, each code is read alone, so each read
/// gets its own answer or error.
async fn read_batch(db: &Db, batch: Vec<Read>) {
    let mut codes: Vec<&str> = batch.iter().map(|r| r.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    let mut found = match read_codes(db, &codes).await {
        Ok(found) => found,
        Err(Error::Db(e)) if db::is_transient(&e) => {
            tracing::warn!(error = %e, codes = codes.len(), "bag reads found the database busy");
            // sqlx's errors cannot be copied: each read gets one that
            // answers as this one does (503, try again).
            for read in batch {
                let _ = read.reply.send(Err(Error::Db(sqlx::Error::PoolTimedOut)));
            }
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, codes = codes.len(), "bag reads failed together; each is read alone");
            for read in batch {
                let alone = read_codes(db, &[read.code.as_str()])
                    .await
                    .map(|mut found| found.remove(&read.code));
                let _ = read.reply.send(alone);
            }
            return;
        }
    };
    // A code asked for twice in one batch: its last read takes the bag, the
    // others a copy.
    let last: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, read)| (read.code.as_str(), i))
        .collect();
    let answers: Vec<Option<Found>> = batch
        .iter()
        .enumerate()
        .map(|(i, read)| match last.get(read.code.as_str()) {
            Some(&at) if at == i => found.remove(&read.code),
            _ => found.get(&read.code).cloned(),
        })
        .collect();
    for (read, answer) in batch.into_iter().zip(answers) {
        // A request whose client left has nobody to answer.
        let _ = read.reply.send(Ok(answer));
    }
}

/// Reads the bags of `codes` with everything about each, in one statement:
/// a row per child (one row for a child bag or an empty parent), the bag's
/// columns, bill and parent repeated on each. The bags come first, each
/// with its bill and parent read once (not once per child).
async fn read_codes(db: &Db, codes: &[&str]) -> Result<HashMap<String, Found>> {
    let Some(&first) = codes.first() else {
        return Ok(HashMap::new());
    };
    // Padded with the first code to a power of two: a few statement shapes
    // for the database to prepare instead of one per count.
    let n = codes.len().next_power_of_two();
    let sql = format!(
        "WITH b AS MATERIALIZED (
             SELECT b.id, b.code, b.kind, b.capacity, b.child_count, b.bill_id,
                    b.dispatch_area, b.created_at, b.updated_at,
                    (SELECT bl.code FROM bills bl WHERE bl.id = b.bill_id) AS bill,
                    (SELECT p.code FROM links pl JOIN bags p ON p.id = pl.parent_id
                     WHERE pl.child_id = b.id) AS parent
             FROM bags b WHERE b.code IN ({}))
         SELECT b.*, l.child_code, l.linked_at, u.username
         FROM b
         LEFT JOIN links l ON l.parent_id = b.id
         LEFT JOIN users u ON u.id = l.user_id
         ORDER BY b.id, l.id",
        rows::in_list(db.backend(), n)
    );
    let found = on!(db.reader(), |c| {
        async {
            let mut query = sqlx::query(&sql);
            for i in 0..n {
                query = query.bind(codes.get(i).copied().unwrap_or(first));
            }
            let rows = query.fetch_all(c).await?;
            // Each column by its place in the SELECT.
            macro_rules! get {
                ($row:expr, $i:literal) => {
                    sqlx::Row::try_get($row, $i)?
                };
            }
            let mut found: HashMap<String, Found> = HashMap::with_capacity(codes.len());
            let mut current: Option<(i64, Found)> = None;
            for row in &rows {
                let id: i64 = get!(row, 0);
                if current.as_ref().is_none_or(|(at, _)| *at != id) {
                    if let Some((_, done)) = current.take() {
                        found.insert(done.0 .1.clone(), done);
                    }
                    let bag: Row = (
                        id,
                        get!(row, 1),
                        get!(row, 2),
                        get!(row, 3),
                        get!(row, 4),
                        get!(row, 5),
                        get!(row, 6),
                        get!(row, 7),
                        get!(row, 8),
                    );
                    current = Some((id, (bag, get!(row, 9), get!(row, 10), Vec::new())));
                }
                let child: Option<String> = get!(row, 11);
                let linked_at: Option<Ts> = get!(row, 12);
                if let (Some((_, f)), Some(code), Some(at)) = (current.as_mut(), child, linked_at) {
                    f.3.push(LinkedChild {
                        code,
                        linked_at: at.time(),
                        linked_by: get!(row, 13),
                    });
                }
            }
            if let Some((_, done)) = current {
                found.insert(done.0 .1.clone(), done);
            }
            Ok::<_, sqlx::Error>(found)
        }
        .await
    })?;
    Ok(found)
}

/// Filters for a bag list.
#[derive(Debug, Default, Clone)]
pub struct BagFilter {
    /// A code or the start of one.
    pub search: Option<String>,
    pub kind: Option<BagKind>,
    pub area: Option<String>,
    pub complete: Option<bool>,
    pub billed: Option<bool>,
    /// Which date `from` and `to` look at.
    pub date: DateField,
    /// At or after this moment.
    pub from: Option<Ts>,
    /// Before this moment.
    pub to: Option<Ts>,
    /// The last code of the previous page.
    pub cursor: Option<String>,
    pub limit: u32,
}

/// Which of a bag's dates a date range looks at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateField {
    /// When the bag was first scanned or imported.
    #[default]
    Created,
    /// When anything about it last changed (a child put in or taken out, a bill).
    Changed,
}

impl DateField {
    fn column(self) -> &'static str {
        match self {
            DateField::Created => "b.created_at",
            DateField::Changed => "b.updated_at",
        }
    }
}

pub const MAX_PAGE: u32 = 500;

/// The smallest string greater than every string starting with `prefix`
/// (codes are ASCII, so bumping the last byte is enough).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// A value a filter's condition compares with.
pub(crate) enum Arg {
    Text(String),
    Time(Ts),
}

/// The conditions of a bag filter on `b` (the bags table), with parameters
/// numbered from `$first`, and their values in order: the code prefix, kind,
/// area (`area`, as the caller may see it), complete, billed and dates. The
/// list's cursor is its own.
pub(crate) fn conditions(
    filter: &BagFilter,
    area: Option<&str>,
    first: usize,
) -> Result<(String, Vec<Arg>)> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(normalize)
        .transpose()?;
    let mut sql = String::new();
    let mut args = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Arg| {
        sql.push_str(&clause.replace('?', &format!("${}", first + args.len())));
        args.push(value);
    };
    if let Some(s) = search {
        if let Some(upper) = prefix_end(&s) {
            arg(&mut sql, " AND b.code < ?", Arg::Text(upper));
        }
        arg(&mut sql, " AND b.code >= ?", Arg::Text(s));
    }
    if let Some(k) = filter.kind {
        arg(&mut sql, " AND b.kind = ?", Arg::Text(k.as_str().into()));
    }
    if let Some(a) = area {
        arg(&mut sql, " AND b.dispatch_area = ?", Arg::Text(a.into()));
    }
    match filter.complete {
        Some(true) => sql.push_str(" AND b.kind = 'parent' AND b.child_count >= b.capacity"),
        Some(false) => sql.push_str(" AND b.kind = 'parent' AND b.child_count < b.capacity"),
        None => {}
    }
    match filter.billed {
        Some(true) => sql.push_str(" AND b.bill_id IS NOT NULL"),
        Some(false) => sql.push_str(" AND b.bill_id IS NULL"),
        None => {}
    }
    let column = filter.date.column();
    if let Some(from) = filter.from {
        arg(&mut sql, &format!(" AND {column} >= ?"), Arg::Time(from));
    }
    if let Some(to) = filter.to {
        arg(&mut sql, &format!(" AND {column} < ?"), Arg::Time(to));
    }
    Ok((sql, args))
}

/// One page of bags in code order; keyset paging keeps every page fast.
pub async fn list(db: &Db, viewer: &User, filter: BagFilter) -> Result<Page<BagSummary>> {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let cursor = filter.cursor.as_deref().map(normalize).transpose()?;
    let area = if viewer.role == Role::Dispatcher {
        match (&filter.area, &viewer.dispatch_area) {
            (Some(asked), Some(mine)) if asked != mine => {
                return Err(Error::forbidden(
                    "wrong_area",
                    format!("You can only see bags of your area {mine}."),
                ))
            }
            (_, mine) => mine.clone(),
        }
    } else {
        filter.area.clone()
    };

    let (conditions, args) = conditions(&filter, area.as_deref(), 1)?;
    let mut sql = format!(
        "SELECT b.code, b.kind, b.child_count, b.capacity, bl.code, b.dispatch_area, b.updated_at
         FROM bags b LEFT JOIN bills bl ON bl.id = b.bill_id WHERE 1 = 1{conditions}"
    );
    let mut n = args.len();
    if cursor.is_some() {
        n += 1;
        sql.push_str(&format!(" AND b.code > ${n}"));
    }
    sql.push_str(&format!(" ORDER BY b.code LIMIT ${}", n + 1));

    type ListRow = (
        String,
        String,
        i32,
        Option<i32>,
        Option<String>,
        Option<String>,
        Ts,
    );
    let rows: Vec<ListRow> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        for arg in &args {
            q = match arg {
                Arg::Text(t) => q.bind(t),
                Arg::Time(t) => q.bind(*t),
            };
        }
        if let Some(c) = &cursor {
            q = q.bind(c);
        }
        q.bind(i64::from(limit) + 1).fetch_all(c).await
    })?;

    let mut items = Vec::with_capacity(rows.len());
    for (code, kind, count, capacity, bill, area, updated) in rows {
        let kind = BagKind::parse(&kind)
            .ok_or_else(|| Error::Internal(format!("bag {code} has an unknown kind")))?;
        items.push(BagSummary {
            complete: capacity.is_some_and(|c| count >= c),
            code,
            kind,
            child_count: count.max(0) as u32,
            capacity: capacity.map(|c| c.max(0) as u32),
            bill,
            dispatch_area: area,
            updated_at: updated.time(),
        });
    }
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|b| b.code.clone())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// One thing that happened to a bag, as its history lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BagHistoryEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `created`, `link`, `unlink`, `unlink_correction`, `bill_add`,
    /// `bill_remove`, or another audit action about the bag.
    pub action: String,
    /// Who did it (a username), when known.
    pub by: Option<String>,
    /// The station it was scanned at, when it came from one.
    pub station: Option<String>,
    /// The parent bag of a link or unlink.
    pub parent: Option<String>,
    /// The child bag of a link or unlink.
    pub child: Option<String>,
    /// The bill of a `bill_add` or `bill_remove`.
    pub bill: Option<String>,
    /// An admin's reason for a correction.
    pub reason: Option<String>,
    /// The audit row it comes from (none for `created` and imports).
    pub audit_id: Option<i64>,
    /// The import that made the bag or put it in its parent
    /// (`imported`, `imported_link`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<i64>,
}

/// A bag's history, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BagHistory {
    pub code: String,
    pub items: Vec<BagHistoryEntry>,
    /// Older entries exist than were asked for.
    pub truncated: bool,
}

/// Most entries one history answer holds.
pub const MAX_HISTORY: u32 = 1000;
/// Child codes per query when gathering the links into a parent.
const CODES_PER_QUERY: usize = 200;

/// An audit row as a history reads it: id, time, who, station name,
/// action, the bag it is recorded under, before, after.
type AuditRow = (
    i64,
    Ts,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const HISTORY_SELECT: &str =
    "SELECT a.id, a.at, a.actor, s.name, a.action, a.entity_code, a.before, a.after
     FROM audit_log a LEFT JOIN stations s ON s.id = a.station_id";

/// A text field of an audit row's `after`, else of its `before`.
fn named(
    after: &Option<serde_json::Value>,
    before: &Option<serde_json::Value>,
    key: &str,
) -> Option<String> {
    [after, before]
        .into_iter()
        .flatten()
        .find_map(|v| v.get(key).and_then(|f| f.as_str()).map(str::to_string))
}

fn history_entry(row: AuditRow) -> (i64, BagHistoryEntry) {
    let (id, at, by, station, action, recorded_under, before, after) = row;
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    let (before, after) = (json(before), json(after));
    let mut parent = named(&after, &before, "parent");
    let mut child = named(&after, &before, "child");
    // A link is recorded under its child, the other side of an unlink under its parent.
    if parent.is_some() && child.is_none() {
        child = recorded_under.clone();
    } else if child.is_some() && parent.is_none() {
        parent = recorded_under.clone();
    }
    let entry = BagHistoryEntry {
        at: at.time(),
        bill: named(&after, &before, "bill"),
        reason: named(&after, &before, "reason"),
        action,
        by,
        station,
        parent,
        child,
        audit_id: Some(id),
        import_id: None,
    };
    (id, entry)
}

/// A bag's history, newest first, as `viewer` may see it: every change
/// recorded in the audit log under its code (links and unlinks of a child;
/// bills, corrections and children taken out of a parent; imports), for a
/// parent also the links of its children into it, and when it was created.
/// At most `limit` entries (up to [`MAX_HISTORY`]).
pub async fn history(db: &Db, viewer: &User, raw_code: &str, limit: u32) -> Result<BagHistory> {
    let limit = limit.clamp(1, MAX_HISTORY);
    let fetch = i64::from(limit) + 1;
    let bag = visible(db, viewer, raw_code).await?;

    let sql = format!(
        "{HISTORY_SELECT} WHERE a.entity = 'bag' AND a.entity_code = $1 ORDER BY a.id DESC LIMIT $2"
    );
    let own: Vec<AuditRow> = on!(db.reader(), |c| sqlx::query_as(&sql)
        .bind(&bag.code)
        .bind(fetch)
        .fetch_all(c)
        .await)?;
    let mut entries: Vec<(i64, BagHistoryEntry)> = own.into_iter().map(history_entry).collect();

    if bag.kind == BagKind::Parent {
        // An unlink is recorded under its child, naming the parent it left
        // (exactly as `linking::unlink` writes it); unlinks are few, and the
        // action index finds them.
        let left = serde_json::json!({ "parent": bag.code }).to_string();
        let sql = format!(
            "{HISTORY_SELECT} WHERE a.entity = 'bag' AND a.action IN ('unlink', 'unlink_correction')
             AND a.before = $1 ORDER BY a.id DESC LIMIT $2"
        );
        let unlinks: Vec<AuditRow> = on!(db.reader(), |c| sqlx::query_as(&sql)
            .bind(&left)
            .bind(fetch)
            .fetch_all(c)
            .await)?;
        entries.extend(unlinks.into_iter().map(history_entry));
        // Each link into the parent is recorded under its child: look under
        // the children it holds and those taken out of it.
        let held: Vec<String> = on!(db.reader(), |c| {
            sqlx::query_scalar("SELECT child_code FROM links WHERE parent_id = $1")
                .bind(bag.id)
                .fetch_all(c)
                .await
        })?;
        let mut codes: std::collections::BTreeSet<String> = held.into_iter().collect();
        codes.extend(entries.iter().filter_map(|(_, e)| e.child.clone()));
        let codes: Vec<String> = codes.into_iter().collect();
        for chunk in codes.chunks(CODES_PER_QUERY) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "{HISTORY_SELECT} WHERE a.entity = 'bag' AND a.action = 'link'
                 AND a.entity_code IN ({}) ORDER BY a.id DESC LIMIT $1",
                marks.join(", ")
            );
            let rows: Vec<AuditRow> = on!(db.reader(), |c| {
                let mut q = sqlx::query_as(&sql).bind(fetch);
                for code in chunk {
                    q = q.bind(code);
                }
                q.fetch_all(c).await
            })?;
            entries.extend(
                rows.into_iter()
                    .map(history_entry)
                    .filter(|(_, e)| e.parent.as_deref() == Some(bag.code.as_str())),
            );
        }
    }

    // What imports did to it: they leave no audit row per bag.
    let mut made_by_import = None;
    for mark in crate::import::history_of(db, &bag.code).await? {
        if mark.what == "created" {
            made_by_import = Some(mark.import_id);
            continue;
        }
        entries.push((
            0,
            BagHistoryEntry {
                at: mark.at,
                action: "imported_link".into(),
                by: None,
                station: None,
                parent: mark.parent,
                child: Some(bag.code.clone()),
                bill: None,
                reason: None,
                audit_id: None,
                import_id: Some(mark.import_id),
            },
        ));
    }

    entries.sort_by_key(|(id, e)| std::cmp::Reverse((e.at, *id)));
    // The creation is the oldest entry: it fits when everything else does.
    let truncated = entries.len() >= limit as usize;
    entries.truncate(limit as usize);
    let mut items: Vec<BagHistoryEntry> = entries.into_iter().map(|(_, e)| e).collect();
    if !truncated {
        items.push(BagHistoryEntry {
            at: bag.created_at.time(),
            action: if made_by_import.is_some() {
                "imported".into()
            } else {
                "created".into()
            },
            by: None,
            station: None,
            parent: None,
            child: None,
            bill: None,
            reason: None,
            audit_id: None,
            import_id: made_by_import,
        });
    }
    Ok(BagHistory {
        code: bag.code,
        items,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::{history_entry, prefix_end, AuditRow};
    use crate::db::Ts;

    fn row(action: &str, under: &str, before: &str, after: &str) -> AuditRow {
        (
            7,
            Ts::from_micros(1_000_000),
            Some("ravi".into()),
            Some("Dock 1".into()),
            action.into(),
            Some(under.into()),
            Some(before.into()),
            Some(after.into()),
        )
    }

    #[test]
    fn history_entries_name_both_bags_of_a_link() {
        // Recorded under the child: the parent is in the row, the child is its code.
        let (_, e) = history_entry(row(
            "link",
            "C0001",
            r#"{"parent":null}"#,
            r#"{"parent":"SB00001"}"#,
        ));
        assert_eq!(
            (e.parent.as_deref(), e.child.as_deref()),
            (Some("SB00001"), Some("C0001"))
        );
        assert_eq!(
            (e.by.as_deref(), e.station.as_deref()),
            (Some("ravi"), Some("Dock 1"))
        );
        // A correction, recorded under the child, with its reason.
        let (_, e) = history_entry(row(
            "unlink_correction",
            "C0001",
            r#"{"parent":"SB00001"}"#,
            r#"{"parent":null,"reason":"wrong parent"}"#,
        ));
        assert_eq!(
            (e.parent.as_deref(), e.child.as_deref()),
            (Some("SB00001"), Some("C0001"))
        );
        assert_eq!(e.reason.as_deref(), Some("wrong parent"));
        let (_, e) = history_entry(row(
            "bill_remove",
            "SB00001",
            r#"{"bill":"B-1"}"#,
            r#"{"bill":null}"#,
        ));
        assert_eq!(
            (e.bill.as_deref(), e.parent.as_deref()),
            (Some("B-1"), None)
        );
        // Not JSON: still an entry.
        let (_, e) = history_entry(row("import", "SB00001", "file.xlsx", "12 rows"));
        assert_eq!(e.action, "import");
    }

    #[test]
    fn prefix_end_bounds_every_code_with_the_prefix() {
        assert_eq!(prefix_end("SB1").as_deref(), Some("SB2"));
        assert_eq!(prefix_end("SB9").as_deref(), Some("SB:"));
        assert!("SB19999" < "SB2");
    }
}
