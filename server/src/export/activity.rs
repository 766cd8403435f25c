//! The audit log, and what each user did: both read from the audit log.

use std::collections::BTreeMap;

use super::{Cell, Span, Table};
use crate::audit::{self, AuditFilter};
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::on;

pub const AUDIT_HEADERS: &[&str] = &[
    "id",
    "time",
    "user",
    "station id",
    "action",
    "entity",
    "code",
    "before",
    "after",
    "request id",
    "address",
    "chain position",
];

/// The audit rows the filter takes, newest first, as the console lists them.
pub async fn audit(db: &Db, mut filter: AuditFilter, mut table: Table) -> Result<u64> {
    loop {
        let page = audit::list(db, filter.clone()).await?;
        for e in &page.items {
            let before = e.before.as_ref().map(ToString::to_string);
            let after = e.after.as_ref().map(ToString::to_string);
            table
                .row(&[
                    Cell::Int(e.id),
                    e.at.into(),
                    e.actor.as_deref().into(),
                    e.station_id.map_or(Cell::Empty, Cell::Int),
                    Cell::Text(&e.action),
                    Cell::Text(&e.entity),
                    e.entity_code.as_deref().into(),
                    before.as_deref().into(),
                    after.as_deref().into(),
                    e.request_id.as_deref().into(),
                    e.ip.as_deref().into(),
                    e.seq.map_or(Cell::Empty, Cell::Int),
                ])
                .await?;
        }
        match page.next_before {
            Some(before) => filter.before = Some(before),
            None => break,
        }
    }
    table.finish().await
}

pub const ACTIVITY_HEADERS: &[&str] = &[
    "user",
    "role",
    "dispatch area",
    "children linked",
    "children unlinked",
    "bills created",
    "parents put on bills",
    "bills closed",
    "logins",
    "failed logins",
    "exports",
    "other actions",
    "first action",
    "last action",
];

/// One user's counts in the span.
#[derive(Default)]
struct Tally {
    role: Option<String>,
    area: Option<String>,
    /// In the order of [`COUNTED`], then other actions.
    counts: [i64; 9],
    first: Option<Ts>,
    last: Option<Ts>,
}

/// The actions with a column of their own; an action may share one.
const COUNTED: &[(&str, usize)] = &[
    ("link", 0),
    ("unlink", 1),
    ("unlink_correction", 1),
    ("bill_create", 2),
    ("bill_add", 3),
    ("bill_close", 4),
    ("login", 5),
    ("login_failed", 6),
    ("export", 7),
];

type Group = (Option<String>, String, i64, Ts, Ts);

/// Per user (by the name the audit log keeps), the actions in the span.
pub async fn activity(db: &Db, span: Span, mut table: Table) -> Result<u64> {
    let mut sql =
        String::from("SELECT actor, action, COUNT(*), MIN(at), MAX(at) FROM audit_log WHERE 1 = 1");
    let mut n = 0;
    if span.from.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at >= ${n}"));
    }
    if span.to.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at < ${n}"));
    }
    sql.push_str(" GROUP BY actor, action");
    let groups: Vec<Group> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        for t in [span.from, span.to].into_iter().flatten() {
            q = q.bind(t);
        }
        q.fetch_all(c).await
    })?;
    let users: Vec<(String, String, Option<String>)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT username, role, dispatch_area FROM users"
    )
    .fetch_all(c)
    .await)?;

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for (actor, action, count, first, last) in groups {
        let name = actor.unwrap_or_else(|| "(unknown)".into());
        let t = tallies.entry(name).or_default();
        let column = COUNTED
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(8, |(_, c)| *c);
        t.counts[column] += count;
        t.first = Some(t.first.map_or(first, |f| f.min(first)));
        t.last = Some(t.last.map_or(last, |l| l.max(last)));
    }
    for (name, role, area) in users {
        if let Some(t) = tallies.get_mut(&name) {
            t.role = Some(role);
            t.area = area;
        }
    }
    for (name, t) in &tallies {
        let mut cells = vec![
            Cell::Text(name),
            t.role.as_deref().into(),
            t.area.as_deref().into(),
        ];
        cells.extend(t.counts.iter().map(|n| Cell::Int(*n)));
        cells.push(t.first.map(Ts::time).into());
        cells.push(t.last.map(Ts::time).into());
        table.row(&cells).await?;
    }
    table.finish().await
}
