//! Link scans in groups: the bags a group names are read once, each scan is
//! decided in memory in order with the rules below, and what they changed is
//! written back in a few set-based statements.
//!
//! The caller holds the group's code locks (`Tx::lock_codes`), so no other
//! scan changes these bags meanwhile. Writers that do not take those locks
//! (imports) are caught by the writes' guards: a parent's count only moves
//! while it stays within capacity, `links.child_id` is unique and a new code
//! must still be free. A guard that fails answers [`Changed`], and the caller
//! runs the whole group again on fresh state.
//!
//! A scan is all-or-nothing: every check runs before anything in memory
//! changes, so a refused scan leaves no trace.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use traitortrack_protocol::{normalize, BagKind, CodeKind, ParentState};

use super::{already_in, child_is_parent, Link, SCANNERS};
use crate::audit::{self, Actor};
use crate::bags;
use crate::config::Settings;
use crate::counters::{self, Deltas};
use crate::db::{Ts, Tx};
use crate::error::{Error, Result};
use crate::rows::{self, Col, Form, Rows, Val};
use crate::users::User;

/// A write's guard did not hold: someone outside the group's locks changed a
/// bag between the read and the write. Run the group again.
#[derive(Debug)]
pub struct Changed;

#[derive(Debug)]
struct Bag {
    /// 0 for a new bag (written and linked by its code).
    id: i64,
    kind: BagKind,
    capacity: Option<i32>,
    count: i32,
    start_count: i32,
    area: Option<String>,
    /// The area was empty when read and a scan gave it one.
    area_given: bool,
    /// The parent holding this child.
    holder: Option<String>,
    /// The closed bill this parent is on.
    closed_bill: Option<String>,
    new: bool,
    created_at: Ts,
    updated_at: Ts,
}

/// The bags of a group of link scans and what the scans did to them.
#[derive(Default)]
pub struct Scans {
    bags: HashMap<String, Bag>,
    /// New bags in the order scans made them.
    new_bags: Vec<String>,
    links: Vec<NewLink>,
    audit: Vec<audit::Pending>,
    deltas: Deltas,
}

/// A link a scan made: parent, child, worker, station, event, scanned at.
type NewLink = (String, String, i64, Option<i64>, Option<uuid::Uuid>, Ts);

type Read = (
    i64,
    String,
    String,
    Option<i32>,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Ts,
    Ts,
);

impl Scans {
    /// Reads the bags named by `codes` (normalized), where each child is and
    /// which closed bill each parent is on.
    pub async fn load(tx: &mut Tx, codes: &BTreeSet<String>) -> Result<Scans> {
        let mut scans = Scans::default();
        let keys = Rows::keys(Col::Text, codes, |c| Val::Text(c.clone()));
        let rows: Vec<Read> = rows::fetch(tx.conn(), keys, Form::In, |codes| {
            format!(
                "SELECT b.id, b.code, b.kind, b.capacity, b.child_count, b.dispatch_area, p.code,
                        CASE WHEN bl.status = 'closed' THEN bl.code END, b.created_at, b.updated_at
                 FROM bags b
                 LEFT JOIN links l ON l.child_id = b.id
                 LEFT JOIN bags p ON p.id = l.parent_id
                 LEFT JOIN bills bl ON bl.id = b.bill_id
                 WHERE b.code {codes}"
            )
        })
        .await?;
        for (id, code, kind, capacity, count, area, holder, closed_bill, created, updated) in rows {
            let kind = BagKind::parse(&kind)
                .ok_or_else(|| Error::Internal(format!("bag {code} has an unknown kind")))?;
            scans.bags.insert(
                code,
                Bag {
                    id,
                    kind,
                    capacity,
                    count,
                    start_count: count,
                    area,
                    area_given: false,
                    holder,
                    closed_bill,
                    new: false,
                    created_at: created,
                    updated_at: updated,
                },
            );
        }
        Ok(scans)
    }

    /// Decides one scan that puts a child into a parent (the parent is made on
    /// its first scan, the child on its first link); answers the parent's
    /// state after it, or the refusal, which changes nothing.
    pub fn link(
        &mut self,
        settings: &Settings,
        worker: &User,
        actor: &Actor,
        scan: Link<'_>,
        now: Ts,
    ) -> Result<ParentState> {
        worker.require(SCANNERS, "link bags")?;
        let parent_code = normalize(scan.parent)?;
        let new_parent = match self.bags.get(&parent_code) {
            Some(_) => None,
            None => {
                let capacity = bags::parent_capacity(&settings.formats, &parent_code)?;
                Some(new_bag(
                    BagKind::Parent,
                    Some(capacity as i32),
                    worker.dispatch_area.clone(),
                    now,
                ))
            }
        };
        let parent = match (&new_parent, self.bags.get(&parent_code)) {
            (Some(made), _) => made,
            (None, Some(found)) => found,
            (None, None) => return Err(Error::Internal("the parent went missing".into())),
        };
        if parent.kind != BagKind::Parent {
            return Err(Error::bad_input(
                "not_a_parent",
                format!("{parent_code} is a child bag. Scan a parent bag."),
            ));
        }
        worker.check_area(&parent_code, parent.area.as_deref())?;
        if let Some(bill) = &parent.closed_bill {
            return Err(Error::conflict(
                "bill_closed",
                format!("{parent_code} is on bill {bill}, which is closed."),
            ));
        }
        let give_area = parent.area.is_none() && worker.dispatch_area.is_some();
        let area = parent.area.clone().or(worker.dispatch_area.clone());

        let child_code = normalize(scan.child)?;
        if child_code == parent_code {
            return Err(Error::bad_input(
                "same_bag",
                format!("{child_code} is the parent bag itself. Scan a child bag."),
            ));
        }
        let new_child = match self.bags.get(&child_code) {
            Some(child) => {
                if child.kind != BagKind::Child {
                    return Err(child_is_parent(&child_code));
                }
                if let Some(holder) = &child.holder {
                    return Err(already_in(&child_code, holder, &parent_code));
                }
                None
            }
            None => match settings.formats.classify(&child_code) {
                CodeKind::Child => Some(new_bag(BagKind::Child, None, area, now)),
                CodeKind::Parent { .. } => return Err(child_is_parent(&child_code)),
                CodeKind::Unknown => {
                    return Err(Error::bad_input(
                        "not_a_child",
                        format!("{child_code} is not a child bag code."),
                    ))
                }
            },
        };
        let capacity = parent.capacity.unwrap_or(0);
        if parent.count >= capacity {
            return Err(Error::conflict(
                "parent_full",
                format!("{parent_code} is full: {capacity} of {capacity}"),
            ));
        }

        // Every check passed: change the state.
        for (code, made) in [(&parent_code, new_parent), (&child_code, new_child)] {
            if let Some(bag) = made {
                self.deltas.add(
                    match bag.kind {
                        BagKind::Parent => counters::PARENTS,
                        BagKind::Child => counters::CHILDREN,
                    },
                    1,
                );
                self.bags.insert(code.clone(), bag);
                self.new_bags.push(code.clone());
            }
        }
        if let Some(child) = self.bags.get_mut(&child_code) {
            child.holder = Some(parent_code.clone());
        }
        let parent = self
            .bags
            .get_mut(&parent_code)
            .ok_or_else(|| Error::Internal("the parent went missing".into()))?;
        if give_area {
            parent.area = worker.dispatch_area.clone();
            parent.area_given = !parent.new;
        }
        parent.count += 1;
        parent.updated_at = now;
        let count = parent.count;
        self.deltas.add(counters::LINKS, 1);
        if count == capacity {
            self.deltas.add(counters::COMPLETE_PARENTS, 1);
        }
        self.links.push((
            parent_code.clone(),
            child_code.clone(),
            worker.id,
            actor.station_id,
            scan.event_id,
            scan.at,
        ));
        self.audit.push(audit::Pending {
            at: now,
            actor: actor.clone(),
            action: "link",
            entity: "bag",
            code: Some(child_code),
            before: Some(json!({"parent": null})),
            after: Some(json!({"parent": parent_code})),
        });
        Ok(ParentState {
            code: parent_code,
            children: count.max(0) as u32,
            capacity: capacity.max(0) as u32,
            complete: count >= capacity,
        })
    }

    /// Writes what the scans changed; the counter changes go to the transaction's.
    pub async fn write(mut self, tx: &mut Tx) -> Result<Result<(), Changed>> {
        if self.links.is_empty() {
            return Ok(Ok(()));
        }
        // New bags, with their final counts and areas.
        let mut new_bags = Rows::new(
            &[
                Col::Text,
                Col::Text,
                Col::Int,
                Col::Int,
                Col::Text,
                Col::Ts,
                Col::Ts,
            ],
            self.new_bags.len(),
        );
        for code in &self.new_bags {
            let Some(bag) = self.bags.get(code) else {
                return Ok(Err(Changed));
            };
            new_bags.push([
                Val::Text(code.clone()),
                Val::Text(bag.kind.as_str().to_string()),
                Val::OptInt(bag.capacity.map(i64::from)),
                Val::Int(i64::from(bag.count)),
                Val::OptText(bag.area.clone()),
                Val::Ts(bag.created_at),
                Val::Ts(bag.updated_at),
            ]);
        }
        // Every row goes in, or a code taken meanwhile fails the statement.
        rows::execute(tx.conn(), new_bags, Form::Insert, |rows| {
            format!(
                "INSERT INTO bags (code, kind, capacity, child_count, dispatch_area, created_at, updated_at)
                 {rows}"
            )
        })
        .await?;

        // Parents that were there and got children (or an area).
        let mut grown = Rows::new(&[Col::Int, Col::Int, Col::Ts, Col::Text], 0);
        for b in self
            .bags
            .values()
            .filter(|b| !b.new && (b.count != b.start_count || b.area_given))
        {
            grown.push([
                Val::Int(b.id),
                Val::Int(i64::from(b.count - b.start_count)),
                Val::Ts(b.updated_at),
                Val::OptText(b.area.clone().filter(|_| b.area_given)),
            ]);
        }
        let want = grown.len() as u64;
        let done = rows::execute(tx.conn(), grown, Form::Table, |v| {
            format!(
                "UPDATE bags SET child_count = bags.child_count + v.column2, updated_at = v.column3,
                        dispatch_area = COALESCE(bags.dispatch_area, v.column4)
                 FROM {v}
                 WHERE bags.id = v.column1 AND bags.child_count + v.column2 <= bags.capacity"
            )
        })
        .await?;
        if done != want {
            return Ok(Err(Changed));
        }

        // The links, by code: new bags' ids never travel back from the
        // database. In scan order: a worker's last scan is their newest link.
        let mut links = Rows::new(
            &[
                Col::Text,
                Col::Text,
                Col::Int,
                Col::Int,
                Col::Uuid,
                Col::Ts,
                Col::Int,
            ],
            self.links.len(),
        );
        for (n, (parent, child, worker, station, event, at)) in self.links.iter().enumerate() {
            links.push([
                Val::Text(parent.clone()),
                Val::Text(child.clone()),
                Val::Int(*worker),
                Val::OptInt(*station),
                Val::OptUuid(*event),
                Val::Ts(*at),
                Val::Int(n as i64),
            ]);
        }
        let want = links.len() as u64;
        let done = rows::execute(tx.conn(), links, Form::Table, |v| {
            format!(
                "INSERT INTO links (parent_id, child_id, child_code, user_id, station_id, event_id, linked_at)
                 SELECT p.id, c.id, c.code, v.column3, v.column4, v.column5, v.column6
                 FROM {v}
                 JOIN bags p ON p.code = v.column1
                 JOIN bags c ON c.code = v.column2
                 ORDER BY v.column7"
            )
        })
        .await?;
        if done != want {
            return Ok(Err(Changed));
        }
        audit::record_all(tx, std::mem::take(&mut self.audit)).await?;
        tx.deltas.merge(self.deltas);
        Ok(Ok(()))
    }
}

fn new_bag(kind: BagKind, capacity: Option<i32>, area: Option<String>, now: Ts) -> Bag {
    Bag {
        id: 0,
        kind,
        capacity,
        count: 0,
        start_count: 0,
        area,
        area_given: false,
        holder: None,
        closed_bill: None,
        new: true,
        created_at: now,
        updated_at: now,
    }
}
