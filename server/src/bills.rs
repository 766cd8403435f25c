//! Bills: dispatch documents that group parent bags, with weights that follow
//! from the child counts.

use serde_json::json;
use time::Date;
use traitortrack_protocol::{
    normalize, Bill, BillParent, BillState, BillStatus, BillSummary, CloseBill, CreateBill, Page,
    PatchBill, Role,
};

use crate::audit::{self, Actor, Entry};
use crate::bags;
use crate::config::Settings;
use crate::days::Span;
use crate::db::{Db, On, Ts, Tx};
use crate::error::{Error, Result};
use crate::rows::Val;
use crate::users::User;
use crate::{bind_all, on};

pub const MAX_NEW_CAPACITY: i64 = 50;
pub const MAX_CAPACITY: i64 = 500;
const MAX_TEXT: usize = 200;

const BILLERS: &[Role] = &[Role::Biller, Role::Admin];

/// A bill as stored.
#[derive(Debug, Clone)]
pub struct BillRow {
    pub id: i64,
    pub code: String,
    pub status: BillStatus,
    pub capacity: i32,
    pub parent_count: i32,
    pub destination: Option<String>,
    pub vehicle_number: Option<String>,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Ts,
    pub closed_at: Option<Ts>,
    pub close_reason: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    i32,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Ts,
    Option<Ts>,
    Option<String>,
);

const COLUMNS: &str = "b.id, b.code, b.status, b.capacity, b.parent_count, b.destination, \
    b.vehicle_number, b.description, u.username, b.created_at, b.closed_at, b.close_reason";

fn from_row(r: Row) -> Result<BillRow> {
    let status = BillStatus::parse(&r.2)
        .ok_or_else(|| Error::Internal(format!("bill {} has an unknown status {:?}", r.1, r.2)))?;
    Ok(BillRow {
        id: r.0,
        code: r.1,
        status,
        capacity: r.3,
        parent_count: r.4,
        destination: r.5,
        vehicle_number: r.6,
        description: r.7,
        created_by: r.8,
        created_at: r.9,
        closed_at: r.10,
        close_reason: r.11,
    })
}

impl BillRow {
    pub fn state(&self) -> BillState {
        BillState {
            code: self.code.clone(),
            status: self.status,
            parent_count: self.parent_count.max(0) as u32,
            capacity: self.capacity.max(0) as u32,
        }
    }
}

/// The status of an open bill with `count` of `capacity` parents.
pub fn open_status(count: i32, capacity: i32) -> BillStatus {
    if count <= 0 {
        BillStatus::New
    } else if count >= capacity {
        BillStatus::Ready
    } else {
        BillStatus::InProgress
    }
}

/// SQL for the same rule over an unchanged `parent_count` and the given capacity
/// (inside an UPDATE, columns hold their old values).
fn open_status_sql(capacity: &str) -> String {
    format!(
        "CASE WHEN parent_count <= 0 THEN 'new' \
         WHEN parent_count >= {capacity} THEN 'ready' ELSE 'in_progress' END"
    )
}

pub async fn find<'c, P, S>(on: On<P, S>, code: &str) -> Result<Option<BillRow>>
where
    P: sqlx::PgExecutor<'c>,
    S: sqlx::SqliteExecutor<'c>,
{
    let sql = format!(
        "SELECT {COLUMNS} FROM bills b LEFT JOIN users u ON u.id = b.created_by WHERE b.code = $1"
    );
    let row: Option<Row> = on!(on, |c| sqlx::query_as(&sql)
        .bind(code)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).transpose()
}

fn not_found(code: &str) -> Error {
    Error::not_found("bill_not_found", format!("There is no bill {code}."))
}

async fn find_open(tx: &mut Tx, raw_code: &str) -> Result<BillRow> {
    let code = normalize(raw_code)?;
    let bill = find(tx.conn(), &code)
        .await?
        .ok_or_else(|| not_found(&code))?;
    if bill.status == BillStatus::Closed {
        return Err(Error::conflict(
            "bill_closed",
            format!("Bill {code} is closed."),
        ));
    }
    Ok(bill)
}

pub fn clean_text(field: &str, value: Option<&str>) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_TEXT || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::bad_input(
            "bad_text",
            format!("The {field} can be at most {MAX_TEXT} characters, on one line."),
        ));
    }
    Ok(Some(v.to_string()))
}

fn check_capacity(capacity: i64, max: i64, at_least: i64) -> Result<i32> {
    if capacity < 1.max(at_least) || capacity > max {
        let low = 1.max(at_least);
        return Err(Error::bad_input(
            "bad_capacity",
            format!("A bill holds from {low} to {max} parent bags here, not {capacity}."),
        ));
    }
    Ok(capacity as i32)
}

pub async fn create(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    new: &CreateBill,
    now: Ts,
) -> Result<BillRow> {
    user.require(BILLERS, "create bills")?;
    let code = normalize(&new.code)?;
    let capacity = check_capacity(new.capacity, MAX_NEW_CAPACITY, 1)?;
    let destination = clean_text("destination", new.destination.as_deref())?;
    let vehicle = clean_text("vehicle number", new.vehicle_number.as_deref())?;
    let description = clean_text("description", new.description.as_deref())?;
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO bills (code, status, capacity, destination, vehicle_number, description,
                            created_by, created_at, updated_at)
         VALUES ($1, 'new', $2, $3, $4, $5, $6, $7, $7) RETURNING id"
    )
    .bind(&code)
    .bind(capacity)
    .bind(destination.as_deref())
    .bind(vehicle.as_deref())
    .bind(description.as_deref())
    .bind(user.id)
    .bind(now)
    .fetch_one(c)
    .await);
    match inserted {
        Ok(_) => {}
        Err(e) if crate::db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "bill_exists",
                format!("Bill {code} already exists."),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tx.deltas.bill_moved(None, BillStatus::New);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_create",
            entity: "bill",
            code: Some(&code),
            before: None,
            after: Some(json!({"capacity": capacity, "destination": destination,
                "vehicle_number": vehicle, "description": description})),
        },
    )
    .await?;
    find(tx.conn(), &code)
        .await?
        .ok_or_else(|| Error::Internal(format!("bill {code} vanished after creation")))
}

/// A bill with its parents and weights.
pub async fn get(db: &Db, settings: &Settings, user: &User, raw_code: &str) -> Result<Bill> {
    user.require(BILLERS, "see bills")?;
    let code = normalize(raw_code)?;
    let bill = find(db.reader(), &code)
        .await?
        .ok_or_else(|| not_found(&code))?;
    let parents: Vec<(String, i32, i32)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT code, child_count, capacity FROM bags WHERE bill_id = $1 ORDER BY code"
    )
    .bind(bill.id)
    .fetch_all(c)
    .await)?;
    let child_count: u64 = parents.iter().map(|p| p.1.max(0) as u64).sum();
    let expected: u64 = parents.iter().map(|p| p.2.max(0) as u64).sum();
    Ok(Bill {
        code: bill.code,
        status: bill.status,
        capacity: bill.capacity.max(0) as u32,
        destination: bill.destination,
        vehicle_number: bill.vehicle_number,
        description: bill.description,
        parent_count: bill.parent_count.max(0) as u32,
        parents: parents
            .into_iter()
            .map(|(code, children, capacity)| BillParent {
                code,
                child_count: children.max(0) as u32,
                capacity: capacity.max(0) as u32,
            })
            .collect(),
        child_count,
        actual_weight_kg: weight_kg(child_count, settings),
        expected_weight_kg: weight_kg(expected, settings),
        created_by: bill.created_by,
        created_at: bill.created_at.time(),
        closed_at: bill.closed_at.map(Ts::time),
        close_reason: bill.close_reason,
    })
}

#[derive(Debug, Default, Clone)]
pub struct BillFilter {
    pub status: Option<BillStatus>,
    /// Part of the bill's code.
    pub code: Option<String>,
    /// Part of the destination, in any case.
    pub destination: Option<String>,
    /// Bills created on this warehouse day or later.
    pub from: Option<Date>,
    /// Bills created on this warehouse day or earlier.
    pub to: Option<Date>,
    /// The username of the biller who created the bill.
    pub biller: Option<String>,
    /// The last code of the previous page.
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The weight of this many child bags.
pub fn weight_kg(children: u64, settings: &Settings) -> f64 {
    children as f64 * settings.kg_per_child
}

/// `text` for a LIKE pattern: `%`, `_` and `\` match only themselves
/// (with `ESCAPE '\'`).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl BillFilter {
    /// The filter's conditions on the bills table `bl`, checked, as
    /// ` AND …` clauses with placeholders numbered from `first`, and their
    /// values in order. The list and the bills export both narrow by these.
    pub fn conditions(&self, settings: &Settings, first: usize) -> Result<(String, Vec<Val>)> {
        let code = self
            .code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(normalize)
            .transpose()?
            .map(|c| format!("%{}%", like_escaped(&c)));
        let destination = clean_text("destination", self.destination.as_deref())?
            .map(|d| format!("%{}%", like_escaped(&d.to_lowercase())));
        let biller = match self.biller.as_deref().map(str::trim) {
            Some(b) if !b.is_empty() => {
                Some(crate::users::normalize_username(b).map_err(|_| {
                    Error::bad_input(
                        "bad_username",
                        "The biller is a username: 2 to 32 letters, digits, dots, dashes or underscores.",
                    )
                })?)
            }
            _ => None,
        };
        let Span { from, to } = Span::of(self.from, self.to, settings.utc_offset)?;
        let mut sql = String::new();
        let mut vals = Vec::new();
        let mut n = first;
        let mut add = |clause: &str, val: Val| {
            sql.push_str(&clause.replace('?', &format!("${n}")));
            vals.push(val);
            n += 1;
        };
        if let Some(s) = self.status {
            add(" AND bl.status = ?", Val::Text(s.as_str().into()));
        }
        if let Some(c) = code {
            add(" AND bl.code LIKE ? ESCAPE '\\'", Val::Text(c));
        }
        if let Some(d) = destination {
            add(
                " AND LOWER(bl.destination) LIKE ? ESCAPE '\\'",
                Val::Text(d),
            );
        }
        if let Some(f) = from {
            add(" AND bl.created_at >= ?", Val::Ts(f));
        }
        if let Some(t) = to {
            add(" AND bl.created_at < ?", Val::Ts(t));
        }
        if let Some(b) = biller {
            add(
                " AND bl.created_by IN (SELECT id FROM users WHERE username = ?)",
                Val::Text(b),
            );
        }
        Ok((sql, vals))
    }
}

/// One page of bills in code order.
pub async fn list(
    db: &Db,
    settings: &Settings,
    user: &User,
    filter: BillFilter,
) -> Result<Page<BillSummary>> {
    user.require(BILLERS, "see bills")?;
    let limit = filter.limit.clamp(1, 500);
    let cursor = filter.cursor.as_deref().map(normalize).transpose()?;
    let (conditions, vals) = filter.conditions(settings, 3)?;
    let sql = format!(
        "SELECT bl.code, bl.status, bl.capacity, bl.parent_count, bl.destination,
                bl.vehicle_number, bl.created_at
         FROM bills bl WHERE bl.code > $1{conditions} ORDER BY bl.code LIMIT $2"
    );
    type ListRow = (String, String, i32, i32, Option<String>, Option<String>, Ts);
    let rows: Vec<ListRow> = on!(db.reader(), |c| {
        let q = sqlx::query_as(&sql)
            .bind(cursor.as_deref().unwrap_or(""))
            .bind(i64::from(limit) + 1);
        bind_all!(q, vals).fetch_all(c).await
    })?;
    let mut items = Vec::with_capacity(rows.len());
    for (code, status, capacity, count, destination, vehicle, created) in rows {
        let status = BillStatus::parse(&status)
            .ok_or_else(|| Error::Internal(format!("bill {code} has an unknown status")))?;
        items.push(BillSummary {
            code,
            status,
            capacity: capacity.max(0) as u32,
            parent_count: count.max(0) as u32,
            destination,
            vehicle_number: vehicle,
            created_at: created.time(),
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

pub async fn update(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    raw_code: &str,
    patch: &PatchBill,
    now: Ts,
) -> Result<BillRow> {
    user.require(BILLERS, "change bills")?;
    let bill = find_open(tx, raw_code).await?;
    let capacity = match patch.capacity {
        Some(c) => check_capacity(c, MAX_CAPACITY, i64::from(bill.parent_count))?,
        None => bill.capacity,
    };
    let pick = |field: &str, new: &Option<String>, old: &Option<String>| match new {
        Some(v) => clean_text(field, Some(v)),
        None => Ok(old.clone()),
    };
    let destination = pick("destination", &patch.destination, &bill.destination)?;
    let vehicle = pick(
        "vehicle number",
        &patch.vehicle_number,
        &bill.vehicle_number,
    )?;
    let description = pick("description", &patch.description, &bill.description)?;
    let sql = format!(
        "UPDATE bills SET capacity = $2, destination = $3, vehicle_number = $4, description = $5,
                updated_at = $6, status = {}
         WHERE id = $1 AND status <> 'closed' AND parent_count <= $2 RETURNING status",
        open_status_sql("$2")
    );
    let status: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(&sql)
        .bind(bill.id)
        .bind(capacity)
        .bind(destination.as_deref())
        .bind(vehicle.as_deref())
        .bind(description.as_deref())
        .bind(now)
        .fetch_optional(c)
        .await)?;
    let Some(status) = status.as_deref().and_then(BillStatus::parse) else {
        return Err(Error::conflict(
            "bill_changed",
            format!("Bill {} changed while you edited it. Try again.", bill.code),
        ));
    };
    tx.deltas.bill_moved(Some(bill.status), status);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_update",
            entity: "bill",
            code: Some(&bill.code),
            before: Some(
                json!({"capacity": bill.capacity, "destination": bill.destination,
                "vehicle_number": bill.vehicle_number, "description": bill.description}),
            ),
            after: Some(json!({"capacity": capacity, "destination": destination,
                "vehicle_number": vehicle, "description": description})),
        },
    )
    .await?;
    find(tx.conn(), &bill.code)
        .await?
        .ok_or_else(|| not_found(&bill.code))
}

pub async fn close(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    raw_code: &str,
    req: &CloseBill,
    now: Ts,
) -> Result<BillRow> {
    user.require(BILLERS, "close bills")?;
    let bill = find_open(tx, raw_code).await?;
    let reason = clean_text("reason", req.reason.as_deref())?;
    if bill.parent_count < bill.capacity && reason.is_none() {
        return Err(Error::bad_input(
            "reason_required",
            format!(
                "Bill {} has {} of {} parent bags. Give a reason to close it early.",
                bill.code, bill.parent_count, bill.capacity
            ),
        ));
    }
    let done: Option<i64> = on!(tx.conn(), |c| sqlx::query_scalar(
        "UPDATE bills SET status = 'closed', closed_at = $2, closed_by = $3, close_reason = $4,
                updated_at = $2
         WHERE id = $1 AND status <> 'closed' AND parent_count = $5 RETURNING id"
    )
    .bind(bill.id)
    .bind(now)
    .bind(user.id)
    .bind(reason.as_deref())
    .bind(bill.parent_count)
    .fetch_optional(c)
    .await)?;
    if done.is_none() {
        return Err(Error::conflict(
            "bill_changed",
            format!("Bill {} changed a moment ago. Look at it again.", bill.code),
        ));
    }
    tx.deltas.bill_moved(Some(bill.status), BillStatus::Closed);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_close",
            entity: "bill",
            code: Some(&bill.code),
            before: Some(json!({"status": bill.status.as_str()})),
            after: Some(json!({"status": "closed", "reason": reason})),
        },
    )
    .await?;
    find(tx.conn(), &bill.code)
        .await?
        .ok_or_else(|| not_found(&bill.code))
}

pub async fn reopen(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    raw_code: &str,
    now: Ts,
) -> Result<BillRow> {
    user.require(&[Role::Admin], "reopen bills")?;
    let code = normalize(raw_code)?;
    let bill = find(tx.conn(), &code)
        .await?
        .ok_or_else(|| not_found(&code))?;
    if bill.status != BillStatus::Closed {
        return Err(Error::conflict(
            "bill_not_closed",
            format!("Bill {code} is not closed."),
        ));
    }
    let sql = format!(
        "UPDATE bills SET status = {}, closed_at = NULL, closed_by = NULL,
                close_reason = NULL, updated_at = $2
         WHERE id = $1 AND status = 'closed' RETURNING status",
        open_status_sql("capacity")
    );
    let status: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(&sql)
        .bind(bill.id)
        .bind(now)
        .fetch_optional(c)
        .await)?;
    let status = status
        .as_deref()
        .and_then(BillStatus::parse)
        .ok_or_else(|| {
            Error::conflict("bill_changed", format!("Bill {code} changed a moment ago."))
        })?;
    tx.deltas.bill_moved(Some(BillStatus::Closed), status);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_reopen",
            entity: "bill",
            code: Some(&code),
            before: Some(json!({"status": "closed", "reason": bill.close_reason})),
            after: Some(json!({"status": status.as_str()})),
        },
    )
    .await?;
    find(tx.conn(), &code)
        .await?
        .ok_or_else(|| not_found(&code))
}

/// Puts a parent bag on a bill (a biller's scan).
pub async fn add_parent(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    raw_bill: &str,
    raw_parent: &str,
    now: Ts,
) -> Result<BillState> {
    user.require(BILLERS, "put bags on bills")?;
    let bill = find_open(tx, raw_bill).await?;
    let code = normalize(raw_parent)?;
    let parent = bags::find(tx.conn(), &code).await?.ok_or_else(|| {
        Error::not_found(
            "bag_not_found",
            format!("There is no bag {code}. Fill it with child bags first."),
        )
    })?;
    if parent.kind != traitortrack_protocol::BagKind::Parent {
        return Err(Error::bad_input(
            "not_a_parent",
            format!("{code} is a child bag. Scan a parent bag."),
        ));
    }
    if let Some(on_bill) = parent.bill_id {
        return Err(on_other_bill(tx, &code, on_bill, &bill).await?);
    }
    let moved: Option<(i32, String)> = on!(tx.conn(), |c| sqlx::query_as(
        "UPDATE bills SET parent_count = parent_count + 1, updated_at = $2,
                status = CASE WHEN parent_count + 1 >= capacity THEN 'ready' ELSE 'in_progress' END
         WHERE id = $1 AND status <> 'closed' AND parent_count < capacity
         RETURNING parent_count, status"
    )
    .bind(bill.id)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let Some((count, status)) = moved else {
        let cap = bill.capacity;
        return Err(Error::conflict(
            "bill_full",
            format!("Bill {} is full: {cap} of {cap}", bill.code),
        ));
    };
    let placed: Option<i64> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "UPDATE bags SET bill_id = $2, updated_at = $3 WHERE id = $1 AND bill_id IS NULL RETURNING id"
    )
    .bind(parent.id)
    .bind(bill.id)
    .bind(now)
    .fetch_optional(c)
    .await
    })?;
    if placed.is_none() {
        return Err(Error::conflict(
            "parent_on_other_bill",
            format!("{code} was just put on another bill."),
        ));
    }
    let status = BillStatus::parse(&status).unwrap_or(BillStatus::InProgress);
    tx.deltas
        .bill_moved(Some(open_status(count - 1, bill.capacity)), status);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_add",
            entity: "bag",
            code: Some(&code),
            before: Some(json!({"bill": null})),
            after: Some(json!({"bill": bill.code})),
        },
    )
    .await?;
    Ok(BillState {
        code: bill.code,
        status,
        parent_count: count.max(0) as u32,
        capacity: bill.capacity.max(0) as u32,
    })
}

async fn on_other_bill(tx: &mut Tx, code: &str, on_bill: i64, bill: &BillRow) -> Result<Error> {
    if on_bill == bill.id {
        return Ok(Error::conflict(
            "already_on_bill",
            format!("{code} is already on bill {}.", bill.code),
        ));
    }
    let other: Option<String> = on!(tx.conn(), |c| sqlx::query_scalar(
        "SELECT code FROM bills WHERE id = $1"
    )
    .bind(on_bill)
    .fetch_optional(c)
    .await)?;
    Ok(Error::conflict(
        "parent_on_other_bill",
        format!(
            "{code} is already on bill {}.",
            other.unwrap_or_else(|| "another bill".into())
        ),
    ))
}

/// Takes a parent bag off a bill.
pub async fn remove_parent(
    tx: &mut Tx,
    user: &User,
    actor: &Actor,
    raw_bill: &str,
    raw_parent: &str,
    now: Ts,
) -> Result<BillState> {
    user.require(BILLERS, "take bags off bills")?;
    let bill = find_open(tx, raw_bill).await?;
    let code = normalize(raw_parent)?;
    let removed: Option<i64> = on!(tx.conn(), |c| {
        sqlx::query_scalar(
        "UPDATE bags SET bill_id = NULL, updated_at = $3 WHERE code = $1 AND bill_id = $2 RETURNING id"
    )
    .bind(&code)
    .bind(bill.id)
    .bind(now)
    .fetch_optional(c)
    .await
    })?;
    if removed.is_none() {
        return Err(Error::conflict(
            "not_on_bill",
            format!("{code} is not on bill {}.", bill.code),
        ));
    }
    let moved: Option<(i32, String)> = on!(tx.conn(), |c| sqlx::query_as(
        "UPDATE bills SET parent_count = parent_count - 1, updated_at = $2,
                status = CASE WHEN parent_count - 1 <= 0 THEN 'new' ELSE 'in_progress' END
         WHERE id = $1 AND status <> 'closed' RETURNING parent_count, status"
    )
    .bind(bill.id)
    .bind(now)
    .fetch_optional(c)
    .await)?;
    let Some((count, status)) = moved else {
        return Err(Error::conflict(
            "bill_closed",
            format!("Bill {} is closed.", bill.code),
        ));
    };
    let status = BillStatus::parse(&status).unwrap_or(BillStatus::InProgress);
    tx.deltas
        .bill_moved(Some(open_status(count + 1, bill.capacity)), status);
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "bill_remove",
            entity: "bag",
            code: Some(&code),
            before: Some(json!({"bill": bill.code})),
            after: Some(json!({"bill": null})),
        },
    )
    .await?;
    Ok(BillState {
        code: bill.code,
        status,
        parent_count: count.max(0) as u32,
        capacity: bill.capacity.max(0) as u32,
    })
}
