//! Bags: finding, creating on first scan, and reading them back with their
//! parent, children and bill.

use traitortrack_protocol::{
    normalize, Bag, BagKind, BagSummary, CodeKind, Formats, LinkedChild, Page, ParentState, Role,
};

use crate::counters;
use crate::db::{Db, On, Ts, Tx};
use crate::error::{Error, Result};
use crate::on;
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

/// Finds a bag by code, creating it as `kind` when it does not exist yet.
pub async fn find_or_create(
    tx: &mut Tx,
    code: &str,
    kind: BagKind,
    capacity: Option<u32>,
    area: Option<&str>,
    now: Ts,
) -> Result<BagRow> {
    if let Some(bag) = find(tx.conn(), code).await? {
        return Ok(bag);
    }
    let sql = format!(
        "INSERT INTO bags (code, kind, capacity, dispatch_area, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (code) DO NOTHING RETURNING {COLUMNS}"
    );
    let capacity = capacity.map(|c| c as i32);
    let row: Option<Row> = on!(tx.conn(), |c| sqlx::query_as(&sql)
        .bind(code)
        .bind(kind.as_str())
        .bind(capacity)
        .bind(area)
        .bind(now)
        .fetch_optional(c)
        .await)?;
    match row {
        Some(r) => {
            tx.deltas.add(
                match kind {
                    BagKind::Parent => counters::PARENTS,
                    BagKind::Child => counters::CHILDREN,
                },
                1,
            );
            from_row(r)
        }
        // Another transaction created it a moment ago.
        None => find(tx.conn(), code)
            .await?
            .ok_or_else(|| Error::Internal(format!("bag {code} vanished while being created"))),
    }
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

/// Reads one bag with everything about it, as `viewer` may see it.
pub async fn get(db: &Db, viewer: &User, raw_code: &str) -> Result<Bag> {
    let code = normalize(raw_code)?;
    let not_found = || Error::not_found("bag_not_found", format!("There is no bag {code}."));
    let bag = find(db.reader(), &code).await?.ok_or_else(not_found)?;
    if viewer.role == Role::Dispatcher {
        viewer.check_area(&bag.code, bag.dispatch_area.as_deref())?;
    }
    let (parent, children) = match bag.kind {
        BagKind::Child => {
            let parent: Option<String> = on!(db.reader(), |c| {
                sqlx::query_scalar(
                "SELECT p.code FROM links l JOIN bags p ON p.id = l.parent_id WHERE l.child_id = $1"
            )
            .bind(bag.id)
            .fetch_optional(c)
            .await
            })?;
            (parent, Vec::new())
        }
        BagKind::Parent => {
            let rows: Vec<(String, Ts, Option<String>)> = on!(db.reader(), |c| sqlx::query_as(
                "SELECT c.code, l.linked_at, u.username FROM links l
                 JOIN bags c ON c.id = l.child_id LEFT JOIN users u ON u.id = l.user_id
                 WHERE l.parent_id = $1 ORDER BY l.id"
            )
            .bind(bag.id)
            .fetch_all(c)
            .await)?;
            let children = rows
                .into_iter()
                .map(|(code, at, by)| LinkedChild {
                    code,
                    linked_at: at.time(),
                    linked_by: by,
                })
                .collect();
            (None, children)
        }
    };
    let bill = match bag.bill_id {
        Some(id) => on!(db.reader(), |c| sqlx::query_scalar(
            "SELECT code FROM bills WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?,
        None => None,
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

/// Filters for a bag list.
#[derive(Debug, Default, Clone)]
pub struct BagFilter {
    /// A code or the start of one.
    pub search: Option<String>,
    pub kind: Option<BagKind>,
    pub area: Option<String>,
    pub complete: Option<bool>,
    pub billed: Option<bool>,
    /// The last code of the previous page.
    pub cursor: Option<String>,
    pub limit: u32,
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

/// One page of bags in code order; keyset paging keeps every page fast.
pub async fn list(db: &Db, viewer: &User, filter: BagFilter) -> Result<Page<BagSummary>> {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let search = filter.search.as_deref().map(normalize).transpose()?;
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

    // Lower bound: after the cursor and at or after the search prefix.
    let lower = match (&search, &cursor) {
        (Some(s), Some(c)) if c.as_str() >= s.as_str() => Some((c.clone(), true)),
        (Some(s), _) => Some((s.clone(), false)),
        (None, Some(c)) => Some((c.clone(), true)),
        (None, None) => None,
    };
    let upper = search.as_deref().and_then(prefix_end);

    let mut sql = String::from(
        "SELECT b.code, b.kind, b.child_count, b.capacity, bl.code, b.dispatch_area, b.updated_at
         FROM bags b LEFT JOIN bills bl ON bl.id = b.bill_id WHERE 1 = 1",
    );
    let mut n = 0;
    let mut arg = |sql: &mut String, clause: &str| {
        n += 1;
        sql.push_str(&clause.replace('?', &format!("${n}")));
    };
    if let Some((_, exclusive)) = &lower {
        arg(
            &mut sql,
            if *exclusive {
                " AND b.code > ?"
            } else {
                " AND b.code >= ?"
            },
        );
    }
    if upper.is_some() {
        arg(&mut sql, " AND b.code < ?");
    }
    if filter.kind.is_some() {
        arg(&mut sql, " AND b.kind = ?");
    }
    if area.is_some() {
        arg(&mut sql, " AND b.dispatch_area = ?");
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
    arg(&mut sql, " ORDER BY b.code LIMIT ?");

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
        if let Some((l, _)) = &lower {
            q = q.bind(l);
        }
        if let Some(u) = &upper {
            q = q.bind(u);
        }
        if let Some(k) = filter.kind {
            q = q.bind(k.as_str());
        }
        if let Some(a) = &area {
            q = q.bind(a);
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

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_every_code_with_the_prefix() {
        assert_eq!(prefix_end("SB1").as_deref(), Some("SB2"));
        assert_eq!(prefix_end("SB9").as_deref(), Some("SB:"));
        assert!("SB19999" < "SB2");
    }
}
