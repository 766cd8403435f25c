//! Applying planned operations to the database, a batch at a time, with the
//! same rules as scans (see `linking/` and `bills.rs`): formats, one parent
//! per child, the capacity cap, one bill per parent, a full or closed bill.
//!
//! A batch reads the state of every code it names in a few set-based
//! queries (locking the rows on PostgreSQL, in code order, so scans of those
//! bags wait for the batch), decides every row's outcome in memory in file
//! order, then writes with set-based statements whose guards are the same as
//! the scan's (`child_count + n <= capacity`, `bill_id IS NULL`, the unique
//! child in `links`). A guard that does not hold means a scan got in between:
//! the batch goes back to its savepoint and runs again on fresh state.

use std::collections::{BTreeSet, HashMap};

use traitortrack_protocol::{BagKind, BillStatus, CodeKind, Formats};

use super::plan::{NewBill, Op, Reason, RowRef};
use super::{Outcome, RowOutcome};
use crate::bills::open_status;
use crate::counters;
use crate::db::{On, Ts, Tx};
use crate::error::{Error, Result};
use crate::rows::{execute, fetch, Col, Form, Rows, Val};

/// What a batch needs besides its operations.
pub struct Context<'a> {
    pub formats: &'a Formats,
    pub import_id: i64,
    pub user_id: Option<i64>,
}

/// Attempts of a batch that met a change made by someone else meanwhile.
const ATTEMPTS: u32 = 5;

enum Fail {
    /// Someone changed a row between the read and the write: run the batch again.
    Changed,
    Error(Error),
}

impl<E: Into<Error>> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail::Error(e.into())
    }
}

/// Applies one batch inside the caller's transaction; answers each row's outcome in row order.
pub async fn apply(tx: &mut Tx, ctx: &Context<'_>, ops: &[Op], now: Ts) -> Result<Vec<RowOutcome>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        tx.savepoint().await?;
        match apply_once(tx, ctx, ops, now).await {
            Ok(mut outcomes) => {
                tx.release().await?;
                outcomes.sort_by_key(|o| (o.at.sheet_index, o.at.number));
                return Ok(outcomes);
            }
            Err(fail) => {
                tx.rollback_to_savepoint().await?;
                // A code or a child taken meanwhile (the inserts carry no
                // ON CONFLICT clause: PostgreSQL's speculative inserts cost
                // a second index probe and log record a row).
                let fail = match fail {
                    Fail::Error(Error::Db(e)) if crate::db::is_unique_violation(&e) => {
                        Fail::Changed
                    }
                    other => other,
                };
                let again = match &fail {
                    Fail::Changed => true,
                    Fail::Error(Error::Db(e)) => crate::db::is_transient(e),
                    Fail::Error(_) => false,
                };
                if !again || attempt >= ATTEMPTS {
                    return Err(match fail {
                        Fail::Changed => Error::conflict(
                            "import_busy",
                            "The bags of this file kept changing while it was imported (scans at the same time). Run the import again.",
                        ),
                        Fail::Error(e) => e,
                    });
                }
            }
        }
    }
}

#[derive(Debug)]
struct Bag {
    id: i64,
    kind: BagKind,
    capacity: Option<i32>,
    count: i32,
    start_count: i32,
    parent: Option<String>,
    bill: Option<String>,
    area: Option<String>,
    new: bool,
}

#[derive(Debug)]
struct Bill {
    id: i64,
    status: BillStatus,
    start_status: Option<BillStatus>,
    capacity: i32,
    count: i32,
    start_count: i32,
    new: Option<NewBill>,
}

fn lock_clause(tx: &mut Tx) -> &'static str {
    match tx.conn() {
        On::Pg(_) => " FOR UPDATE",
        On::Sqlite(_) => "",
    }
}

type BagRead = (
    i64,
    String,
    String,
    Option<i32>,
    i32,
    Option<i64>,
    Option<String>,
);
type BillRead = (i64, String, String, i32, i32);

async fn read_bags(tx: &mut Tx, codes: &BTreeSet<String>) -> Result<HashMap<String, Bag>> {
    let mut bags = HashMap::with_capacity(codes.len());
    let lock = lock_clause(tx);
    let keys = Rows::keys(Col::Text, codes, |c| Val::Text(c.clone()));
    let rows: Vec<BagRead> = fetch(tx.conn(), keys, Form::In, |codes| {
        format!(
            "SELECT id, code, kind, capacity, child_count, bill_id, dispatch_area FROM bags
             WHERE code {codes} ORDER BY code{lock}"
        )
    })
    .await?;
    for (id, code, kind, capacity, count, bill_id, area) in rows {
        let kind = BagKind::parse(&kind)
            .ok_or_else(|| Error::Internal(format!("bag {code} has an unknown kind")))?;
        bags.insert(
            code,
            Bag {
                id,
                kind,
                capacity,
                count,
                start_count: count,
                parent: None,
                // The bill's id for now; replaced by its code below.
                bill: bill_id.map(|b| b.to_string()),
                area,
                new: false,
            },
        );
    }
    // Where the children are now.
    let children: Vec<(i64, String)> = bags
        .iter()
        .filter(|(_, b)| b.kind == BagKind::Child)
        .map(|(code, b)| (b.id, code.clone()))
        .collect();
    let by_id: HashMap<i64, String> = children.iter().cloned().collect();
    let keys = Rows::keys(Col::Int, &children, |(id, _)| Val::Int(*id));
    let rows: Vec<(i64, String)> = fetch(tx.conn(), keys, Form::In, |ids| {
        format!(
            "SELECT l.child_id, p.code FROM links l JOIN bags p ON p.id = l.parent_id
             WHERE l.child_id {ids}"
        )
    })
    .await?;
    for (child_id, parent) in rows {
        if let Some(bag) = by_id.get(&child_id).and_then(|code| bags.get_mut(code)) {
            bag.parent = Some(parent);
        }
    }
    Ok(bags)
}

async fn read_bills(
    tx: &mut Tx,
    codes: &BTreeSet<String>,
    ids: &BTreeSet<i64>,
) -> Result<(HashMap<String, Bill>, HashMap<i64, String>)> {
    let lock = lock_clause(tx);
    let keys = Rows::keys(Col::Text, codes, |c| Val::Text(c.clone()));
    let mut rows: Vec<BillRead> = fetch(tx.conn(), keys, Form::In, |codes| {
        format!(
            "SELECT id, code, status, capacity, parent_count FROM bills
             WHERE code {codes} ORDER BY code{lock}"
        )
    })
    .await?;
    let keys = Rows::keys(Col::Int, ids, |id| Val::Int(*id));
    let by_id: Vec<BillRead> = fetch(tx.conn(), keys, Form::In, |ids| {
        format!(
            "SELECT id, code, status, capacity, parent_count FROM bills WHERE id {ids} ORDER BY code{lock}"
        )
    })
    .await?;
    rows.extend(by_id);
    let mut bills = HashMap::new();
    let mut codes_by_id = HashMap::new();
    for (id, code, status, capacity, count) in rows {
        let status = BillStatus::parse(&status)
            .ok_or_else(|| Error::Internal(format!("bill {code} has an unknown status")))?;
        codes_by_id.insert(id, code.clone());
        bills.insert(
            code,
            Bill {
                id,
                status,
                start_status: Some(status),
                capacity,
                count,
                start_count: count,
                new: None,
            },
        );
    }
    Ok((bills, codes_by_id))
}

fn outcome(at: &RowRef, code: &str, outcome: Outcome, message: String) -> RowOutcome {
    RowOutcome {
        at: at.clone(),
        code: code.to_string(),
        outcome,
        reason: None,
        message,
    }
}

fn refused(at: &RowRef, code: &str, reason: &'static str, message: String) -> RowOutcome {
    RowOutcome {
        at: at.clone(),
        code: code.to_string(),
        outcome: Outcome::Refused,
        reason: Some(reason),
        message,
    }
}

fn from_reason(at: &RowRef, code: &str, reason: &Reason) -> RowOutcome {
    refused(at, code, reason.code, reason.message.clone())
}

/// The decisions of one batch: outcomes and what to write.
#[derive(Default)]
struct Decided {
    outcomes: Vec<RowOutcome>,
    /// New bags in the order they were met.
    new_bags: Vec<String>,
    new_bills: Vec<String>,
    links: Vec<(String, String)>,
    on_bills: Vec<(String, String)>,
}

fn decide(
    ops: &[Op],
    formats: &Formats,
    bags: &mut HashMap<String, Bag>,
    bills: &mut HashMap<String, Bill>,
) -> Decided {
    let mut d = Decided::default();
    for op in ops {
        let o = match op {
            Op::Refuse { at, code, reason } => from_reason(at, code, reason),
            Op::Bag { at, code, kind } => match bags.get(code) {
                Some(b) if b.kind == *kind => outcome(
                    at,
                    code,
                    Outcome::AlreadyThere,
                    format!("{code} is already there."),
                ),
                Some(_) => wrong_kind(at, code, *kind),
                None => match new_bag(formats, code, *kind, None) {
                    Ok(bag) => {
                        bags.insert(code.clone(), bag);
                        d.new_bags.push(code.clone());
                        outcome(
                            at,
                            code,
                            Outcome::Created,
                            format!("Created the {} bag {code}.", kind.as_str()),
                        )
                    }
                    Err(reason) => from_reason(at, code, &reason),
                },
            },
            Op::Link { at, child, parent } => link(at, child, parent, formats, bags, bills, &mut d),
            Op::Bill { at, bill } => {
                let code = &bill.code;
                if bills.contains_key(code) {
                    outcome(
                        at,
                        code,
                        Outcome::AlreadyThere,
                        format!("Bill {code} is already there."),
                    )
                } else {
                    bills.insert(
                        code.clone(),
                        Bill {
                            id: 0,
                            status: BillStatus::New,
                            start_status: None,
                            capacity: bill.capacity,
                            count: 0,
                            start_count: 0,
                            new: Some(bill.clone()),
                        },
                    );
                    d.new_bills.push(code.clone());
                    outcome(
                        at,
                        code,
                        Outcome::Created,
                        format!("Created bill {code} for {} parent bags.", bill.capacity),
                    )
                }
            }
            Op::BillRow { at, code } => match bills.get(code) {
                None => refused(
                    at,
                    code,
                    "bill_not_found",
                    format!("There is no bill {code}. Import the bills first."),
                ),
                Some(b) if b.status == BillStatus::Closed => {
                    refused(at, code, "bill_closed", format!("Bill {code} is closed."))
                }
                Some(b) => outcome(
                    at,
                    code,
                    Outcome::AlreadyThere,
                    format!("Bill {code}: {} of {} parent bags.", b.count, b.capacity),
                ),
            },
            Op::OnBill { at, parent, bill } => on_bill(at, parent, bill, bags, bills, &mut d),
        };
        d.outcomes.push(o);
    }
    d
}

fn wrong_kind(at: &RowRef, code: &str, wanted: BagKind) -> RowOutcome {
    match wanted {
        BagKind::Parent => refused(
            at,
            code,
            "not_a_parent",
            format!("{code} is a child bag, not a parent bag."),
        ),
        BagKind::Child => refused(
            at,
            code,
            "child_is_parent",
            format!("{code} is a parent bag, not a child bag."),
        ),
    }
}

fn new_bag(
    formats: &Formats,
    code: &str,
    kind: BagKind,
    area: Option<String>,
) -> Result<Bag, Reason> {
    let capacity = match (kind, formats.classify(code)) {
        (BagKind::Parent, CodeKind::Parent { capacity }) => Some(capacity as i32),
        (BagKind::Child, CodeKind::Child) => None,
        _ => {
            return Err(Reason::new(
                "bad_format",
                format!("{code} is not a {} bag code.", kind.as_str()),
            ))
        }
    };
    Ok(Bag {
        id: 0,
        kind,
        capacity,
        count: 0,
        start_count: 0,
        parent: None,
        bill: None,
        area,
        new: true,
    })
}

fn link(
    at: &RowRef,
    child: &str,
    parent: &str,
    formats: &Formats,
    bags: &mut HashMap<String, Bag>,
    bills: &HashMap<String, Bill>,
    d: &mut Decided,
) -> RowOutcome {
    match bags.get(parent) {
        Some(p) if p.kind != BagKind::Parent => {
            return refused(
                at,
                child,
                "not_a_parent",
                format!("{parent} is a child bag, not a parent bag."),
            )
        }
        Some(p) => {
            if let Some(bill) = &p.bill {
                if bills
                    .get(bill)
                    .is_some_and(|b| b.status == BillStatus::Closed)
                {
                    return refused(
                        at,
                        child,
                        "bill_closed",
                        format!("{parent} is on bill {bill}, which is closed."),
                    );
                }
            }
        }
        None => match new_bag(formats, parent, BagKind::Parent, None) {
            Ok(bag) => {
                bags.insert(parent.to_string(), bag);
                d.new_bags.push(parent.to_string());
            }
            Err(reason) => return from_reason(at, child, &reason),
        },
    }
    let (count, capacity, area) = match bags.get(parent) {
        Some(p) => (p.count, p.capacity.unwrap_or(0), p.area.clone()),
        None => return refused(at, child, "internal", "The parent went missing.".into()),
    };
    match bags.get(child) {
        Some(c) if c.kind != BagKind::Child => return wrong_kind(at, child, BagKind::Child),
        Some(c) => match &c.parent {
            Some(p) if p == parent => {
                return outcome(
                    at,
                    child,
                    Outcome::AlreadyThere,
                    format!("{child} is already in {parent}."),
                )
            }
            Some(other) => {
                return refused(
                    at,
                    child,
                    "child_in_other_parent",
                    format!("{child} is already in {other}."),
                )
            }
            None => {}
        },
        None => {}
    }
    if count >= capacity {
        return refused(
            at,
            child,
            "parent_full",
            format!("{parent} is full: {capacity} of {capacity}"),
        );
    }
    if !bags.contains_key(child) {
        match new_bag(formats, child, BagKind::Child, area) {
            Ok(bag) => {
                bags.insert(child.to_string(), bag);
                d.new_bags.push(child.to_string());
            }
            Err(reason) => return from_reason(at, child, &reason),
        }
    }
    if let Some(c) = bags.get_mut(child) {
        c.parent = Some(parent.to_string());
    }
    if let Some(p) = bags.get_mut(parent) {
        p.count += 1;
    }
    d.links.push((parent.to_string(), child.to_string()));
    outcome(at, child, Outcome::Linked, format!("Put in {parent}."))
}

fn on_bill(
    at: &RowRef,
    parent: &str,
    bill: &str,
    bags: &mut HashMap<String, Bag>,
    bills: &mut HashMap<String, Bill>,
    d: &mut Decided,
) -> RowOutcome {
    let Some(b) = bills.get(bill) else {
        return refused(
            at,
            parent,
            "bill_not_found",
            format!("There is no bill {bill}. Import the bills first."),
        );
    };
    if b.status == BillStatus::Closed {
        return refused(at, parent, "bill_closed", format!("Bill {bill} is closed."));
    }
    let Some(p) = bags.get(parent) else {
        return refused(
            at,
            parent,
            "unknown_parent",
            format!("There is no bag {parent}. Fill it with child bags first."),
        );
    };
    if p.kind != BagKind::Parent {
        return wrong_kind(at, parent, BagKind::Parent);
    }
    match &p.bill {
        Some(on) if on == bill => {
            return outcome(
                at,
                parent,
                Outcome::AlreadyThere,
                format!("{parent} is already on bill {bill}."),
            )
        }
        Some(other) => {
            return refused(
                at,
                parent,
                "parent_on_other_bill",
                format!("{parent} is already on bill {other}."),
            )
        }
        None => {}
    }
    if b.count >= b.capacity {
        let cap = b.capacity;
        return refused(
            at,
            parent,
            "bill_full",
            format!("Bill {bill} is full: {cap} of {cap}"),
        );
    }
    if let Some(b) = bills.get_mut(bill) {
        b.count += 1;
        b.status = open_status(b.count, b.capacity);
    }
    if let Some(p) = bags.get_mut(parent) {
        p.bill = Some(bill.to_string());
    }
    d.on_bills.push((parent.to_string(), bill.to_string()));
    outcome(at, parent, Outcome::Linked, format!("Put on bill {bill}."))
}

async fn apply_once(
    tx: &mut Tx,
    ctx: &Context<'_>,
    ops: &[Op],
    now: Ts,
) -> std::result::Result<Vec<RowOutcome>, Fail> {
    let mut bag_codes = BTreeSet::new();
    let mut bill_codes = BTreeSet::new();
    for op in ops {
        match op {
            Op::Refuse { .. } => {}
            Op::Bag { code, .. } => {
                bag_codes.insert(code.clone());
            }
            Op::Link { child, parent, .. } => {
                bag_codes.insert(child.clone());
                bag_codes.insert(parent.clone());
            }
            Op::Bill { bill, .. } => {
                bill_codes.insert(bill.code.clone());
            }
            Op::BillRow { code, .. } => {
                bill_codes.insert(code.clone());
            }
            Op::OnBill { parent, bill, .. } => {
                bag_codes.insert(parent.clone());
                bill_codes.insert(bill.clone());
            }
        }
    }
    let mut bags = read_bags(tx, &bag_codes).await?;
    let bill_ids: BTreeSet<i64> = bags
        .values()
        .filter_map(|b| b.bill.as_ref().and_then(|id| id.parse().ok()))
        .collect();
    let (mut bills, bill_codes_by_id) = read_bills(tx, &bill_codes, &bill_ids).await?;
    for bag in bags.values_mut() {
        if let Some(id) = bag.bill.as_ref().and_then(|id| id.parse::<i64>().ok()) {
            bag.bill = bill_codes_by_id.get(&id).cloned();
        }
    }

    let d = decide(ops, ctx.formats, &mut bags, &mut bills);

    // New bags, with their final child counts.
    let mut new_bags = Rows::new(
        &[
            Col::Text,
            Col::Text,
            Col::Int,
            Col::Int,
            Col::Text,
            Col::Int,
            Col::Ts,
            Col::Ts,
        ],
        d.new_bags.len(),
    );
    for code in &d.new_bags {
        let bag = bags.get(code).ok_or(Fail::Changed)?;
        new_bags.push([
            Val::Text(code.clone()),
            Val::Text(bag.kind.as_str().to_string()),
            Val::OptInt(bag.capacity.map(i64::from)),
            Val::Int(i64::from(bag.count)),
            Val::OptText(bag.area.clone()),
            Val::Int(ctx.import_id),
            Val::Ts(now),
            Val::Ts(now),
        ]);
    }
    // Every row goes in, or a code taken meanwhile fails the statement.
    let made: Vec<(i64, String)> = fetch(tx.conn(), new_bags, Form::Insert, |rows| {
        format!(
            "INSERT INTO bags (code, kind, capacity, child_count, dispatch_area, import_id, created_at, updated_at)
             {rows} RETURNING id, code"
        )
    })
    .await?;
    for (id, code) in made {
        if let Some(bag) = bags.get_mut(&code) {
            bag.id = id;
        }
    }
    for code in &d.new_bags {
        if let Some(bag) = bags.get(code) {
            match bag.kind {
                BagKind::Parent => tx.deltas.add(counters::PARENTS, 1),
                BagKind::Child => tx.deltas.add(counters::CHILDREN, 1),
            }
        }
    }

    // New bills.
    let mut new_bills = Rows::new(
        &[
            Col::Text,
            Col::Text,
            Col::Int,
            Col::Int,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Int,
            Col::Ts,
            Col::Ts,
        ],
        d.new_bills.len(),
    );
    for code in &d.new_bills {
        let bill = bills.get(code).ok_or(Fail::Changed)?;
        let new = bill.new.clone().ok_or(Fail::Changed)?;
        new_bills.push([
            Val::Text(code.clone()),
            Val::Text(bill.status.as_str().to_string()),
            Val::Int(i64::from(bill.capacity)),
            Val::Int(i64::from(bill.count)),
            Val::OptText(new.destination),
            Val::OptText(new.vehicle_number),
            Val::OptText(new.description),
            Val::OptInt(ctx.user_id),
            Val::Ts(now),
            Val::Ts(now),
        ]);
    }
    // Every row goes in, or a code taken meanwhile fails the statement.
    let made: Vec<(i64, String)> = fetch(tx.conn(), new_bills, Form::Insert, |rows| {
        format!(
            "INSERT INTO bills (code, status, capacity, parent_count, destination, vehicle_number, description, created_by, created_at, updated_at)
             {rows} RETURNING id, code"
        )
    })
    .await?;
    for (id, code) in made {
        if let Some(bill) = bills.get_mut(&code) {
            bill.id = id;
        }
    }

    // Existing parents that got children.
    let mut grown = Rows::new(&[Col::Int, Col::Int, Col::Ts], 0);
    for b in bags.values().filter(|b| !b.new && b.count != b.start_count) {
        grown.push([
            Val::Int(b.id),
            Val::Int(i64::from(b.count - b.start_count)),
            Val::Ts(now),
        ]);
    }
    let want = grown.len() as u64;
    let done = execute(tx.conn(), grown, Form::Table, |v| {
        format!(
            "UPDATE bags SET child_count = bags.child_count + v.column2, updated_at = v.column3
             FROM {v}
             WHERE bags.id = v.column1 AND bags.child_count + v.column2 <= bags.capacity"
        )
    })
    .await?;
    if done != want {
        return Err(Fail::Changed);
    }
    let completed = bags
        .values()
        .filter(|b| {
            b.kind == BagKind::Parent
                && b.count != b.start_count
                && b.capacity
                    .is_some_and(|c| b.count >= c && (b.new || b.start_count < c))
        })
        .count();
    tx.deltas.add(counters::COMPLETE_PARENTS, completed as i64);

    // Links.
    let mut links = Rows::new(
        &[Col::Int, Col::Int, Col::Text, Col::Int, Col::Int, Col::Ts],
        d.links.len(),
    );
    for (parent, child) in &d.links {
        let p = bags.get(parent).map(|b| b.id).ok_or(Fail::Changed)?;
        let c = bags.get(child).map(|b| b.id).ok_or(Fail::Changed)?;
        links.push([
            Val::Int(p),
            Val::Int(c),
            Val::Text(child.clone()),
            Val::OptInt(ctx.user_id),
            Val::Int(ctx.import_id),
            Val::Ts(now),
        ]);
    }
    execute(tx.conn(), links, Form::Insert, |rows| {
        format!(
            "INSERT INTO links (parent_id, child_id, child_code, user_id, import_id, linked_at)
             {rows}"
        )
    })
    .await?;
    tx.deltas.add(counters::LINKS, d.links.len() as i64);

    // Parents put on bills, then the bills' counts and statuses.
    let mut on_bills = Rows::new(&[Col::Int, Col::Int, Col::Ts], d.on_bills.len());
    for (parent, bill) in &d.on_bills {
        on_bills.push([
            Val::Int(bags.get(parent).map(|b| b.id).ok_or(Fail::Changed)?),
            Val::Int(bills.get(bill).map(|b| b.id).ok_or(Fail::Changed)?),
            Val::Ts(now),
        ]);
    }
    let want = on_bills.len() as u64;
    let done = execute(tx.conn(), on_bills, Form::Table, |v| {
        format!(
            "UPDATE bags SET bill_id = v.column2, updated_at = v.column3
             FROM {v}
             WHERE bags.id = v.column1 AND bags.bill_id IS NULL"
        )
    })
    .await?;
    if done != want {
        return Err(Fail::Changed);
    }
    let mut filled = Rows::new(&[Col::Int, Col::Int, Col::Ts], 0);
    for b in bills
        .values()
        .filter(|b| b.new.is_none() && b.count != b.start_count)
    {
        filled.push([
            Val::Int(b.id),
            Val::Int(i64::from(b.count - b.start_count)),
            Val::Ts(now),
        ]);
    }
    let want = filled.len() as u64;
    let done = execute(tx.conn(), filled, Form::Table, |v| {
        format!(
            "UPDATE bills SET parent_count = bills.parent_count + v.column2, updated_at = v.column3,
                    status = CASE WHEN bills.parent_count + v.column2 >= bills.capacity THEN 'ready'
                                  ELSE 'in_progress' END
             FROM {v}
             WHERE bills.id = v.column1 AND bills.status <> 'closed'
               AND bills.parent_count + v.column2 <= bills.capacity"
        )
    })
    .await?;
    if done != want {
        return Err(Fail::Changed);
    }
    for bill in bills.values() {
        if bill.new.is_some() || bill.count != bill.start_count {
            tx.deltas.bill_moved(bill.start_status, bill.status);
        }
    }
    Ok(d.outcomes)
}
