//! Link history as an EPCIS 2.0 JSON-LD document: one aggregation event per
//! link (`ADD`) and per unlink (`DELETE`), with the parent bag as
//! `parentID`, the child as `childEPCs`, the station as the read point and
//! the parent's bill in `bizTransactionList`.
//!
//! Our codes are not GS1 keys, so every identifier is a URN of our own:
//! `urn:x-traitortrack:bag:CODE`, `…:station:NAME`, `…:bill:CODE`, and the
//! event `…:event:audit-ID` after the audit row it comes from (so the same
//! event always has the same id, in every export).

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::UtcOffset;

use super::{Out, Span, BATCH};
use crate::db::{Db, Ts};
use crate::error::{Error, Result};
use crate::on;

const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";
const URN: &str = "urn:x-traitortrack:";

/// An identifier of ours: `urn:x-traitortrack:KIND:NAME`, the name
/// percent-encoded where it is not a plain URN character.
pub fn urn(kind: &str, name: &str) -> String {
    let mut out = format!("{URN}{kind}:");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rfc3339(t: Ts) -> Result<String> {
    t.time()
        .format(&Rfc3339)
        .map_err(|e| Error::Internal(format!("a time cannot be written: {e}")))
}

type Row = (
    i64,
    Ts,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn parent_of(json: Option<&str>) -> Option<String> {
    let v: Value = serde_json::from_str(json?).ok()?;
    v.get("parent")?.as_str().map(str::to_string)
}

/// Writes the document for links and unlinks in `span`, oldest first.
/// Answers the number of events.
pub async fn write(db: &Db, span: Span, offset: UtcOffset, now: Ts, mut out: Out) -> Result<u64> {
    let stations: HashMap<i64, String> = on!(db.reader(), |c| sqlx::query_as::<_, (i64, String)>(
        "SELECT id, name FROM stations"
    )
    .fetch_all(c)
    .await)?
    .into_iter()
    .collect();

    let head = json!({
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": rfc3339(now)?,
    });
    // The head without its closing brace, then the body's list.
    let head = head.to_string();
    let mut buf = format!(
        "{},\"epcisBody\":{{\"eventList\":[",
        head.strip_suffix('}').unwrap_or(&head)
    )
    .into_bytes();

    let mut sql = String::from(
        "SELECT id, at, station_id, action, entity_code, before, after FROM audit_log
         WHERE id > $1 AND entity = 'bag' AND action IN ('link', 'unlink', 'unlink_correction')",
    );
    let mut n = 1;
    if span.from.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at >= ${n}"));
    }
    if span.to.is_some() {
        n += 1;
        sql.push_str(&format!(" AND at < ${n}"));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));

    let zone = crate::days::offset_text(offset);
    let mut events = 0u64;
    let mut after = 0i64;
    loop {
        let rows: Vec<Row> = on!(db.reader(), |c| {
            let mut q = sqlx::query_as(&sql).bind(after);
            for t in [span.from, span.to].into_iter().flatten() {
                q = q.bind(t);
            }
            q.bind(BATCH).fetch_all(c).await
        })?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.0;
        let full = rows.len() as i64 == BATCH;

        // The bills of this batch's parents, in one query.
        let parents: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| {
                if r.3 == "link" {
                    parent_of(r.6.as_deref())
                } else {
                    parent_of(r.5.as_deref())
                }
            })
            .collect();
        let bills = bills_of(db, &parents).await?;

        for (id, at, station, action, child, before, after_json) in rows {
            let adding = action == "link";
            let parent = if adding {
                parent_of(after_json.as_deref())
            } else {
                parent_of(before.as_deref())
            };
            let (Some(parent), Some(child)) = (parent, child) else {
                // A row without both bags names no aggregation.
                continue;
            };
            let mut event = json!({
                "type": "AggregationEvent",
                "eventID": urn("event", &format!("audit-{id}")),
                "eventTime": rfc3339(at)?,
                "eventTimeZoneOffset": zone,
                "parentID": urn("bag", &parent),
                "childEPCs": [urn("bag", &child)],
                "action": if adding { "ADD" } else { "DELETE" },
                "bizStep": if adding { "packing" } else { "unpacking" },
                "disposition": "in_progress",
            });
            if let Some(name) = station.and_then(|s| stations.get(&s)) {
                event["readPoint"] = json!({ "id": urn("station", name) });
            }
            if let Some(bill) = bills.get(&parent) {
                event["bizTransactionList"] =
                    json!([{ "type": "desadv", "bizTransaction": urn("bill", bill) }]);
            }
            if events > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut buf, &event)
                .map_err(|e| Error::Internal(format!("writing an event: {e}")))?;
            events += 1;
        }
        if buf.len() >= 256 * 1024 {
            out.send(std::mem::take(&mut buf)).await?;
        }
        if !full {
            break;
        }
    }
    buf.extend_from_slice(b"]}}");
    out.send(buf).await?;
    Ok(events)
}

/// The bill each of these parents is on now.
async fn bills_of(db: &Db, parents: &BTreeSet<String>) -> Result<HashMap<String, String>> {
    if parents.is_empty() {
        return Ok(HashMap::new());
    }
    let marks: Vec<String> = (1..=parents.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT p.code, bl.code FROM bags p JOIN bills bl ON bl.id = p.bill_id
         WHERE p.code IN ({})",
        marks.join(", ")
    );
    let rows: Vec<(String, String)> = on!(db.reader(), |c| {
        let mut q = sqlx::query_as(&sql);
        for p in parents {
            q = q.bind(p);
        }
        q.fetch_all(c).await
    })?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_urns() {
        assert_eq!(urn("bag", "SB00012"), "urn:x-traitortrack:bag:SB00012");
        assert_eq!(
            urn("station", "Line 1/A"),
            "urn:x-traitortrack:station:Line%201%2FA"
        );
    }
}
