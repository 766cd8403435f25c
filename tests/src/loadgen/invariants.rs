//! The checks after a run, straight on the database: no parent over its
//! capacity; each parent's `child_count` equal to its links; one parent per
//! child (the unique index on `links.child_id` is there, and no child has two
//! links); every link between bags that exist; each bill's `parent_count` equal to its parents; and every counter
//! total equal to what the tables hold.

use std::collections::HashMap;

use traitortrack_protocol::BillStatus;
use traitortrack_server::counters;
use traitortrack_server::db::Db;
use traitortrack_server::on;

/// Each counter's true value, counted from the tables.
pub async fn table_totals(db: &Db) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let sql = "SELECT
         (SELECT COUNT(*) FROM bags WHERE kind = 'parent'),
         (SELECT COUNT(*) FROM bags WHERE kind = 'child'),
         (SELECT COUNT(*) FROM bags WHERE kind = 'parent' AND child_count >= capacity),
         (SELECT COUNT(*) FROM links),
         (SELECT COUNT(*) FROM bills WHERE status = 'new'),
         (SELECT COUNT(*) FROM bills WHERE status = 'in_progress'),
         (SELECT COUNT(*) FROM bills WHERE status = 'ready'),
         (SELECT COUNT(*) FROM bills WHERE status = 'closed')";
    type Row = (i64, i64, i64, i64, i64, i64, i64, i64);
    let r: Row = on!(db.reader(), |c| sqlx::query_as(sql).fetch_one(c).await)?;
    Ok(vec![
        (counters::PARENTS, r.0),
        (counters::CHILDREN, r.1),
        (counters::COMPLETE_PARENTS, r.2),
        (counters::LINKS, r.3),
        (counters::bills(BillStatus::New), r.4),
        (counters::bills(BillStatus::InProgress), r.5),
        (counters::bills(BillStatus::Ready), r.6),
        (counters::bills(BillStatus::Closed), r.7),
    ])
}

async fn count(db: &Db, sql: &str) -> anyhow::Result<i64> {
    Ok(on!(db.reader(), |c| sqlx::query_scalar(sql)
        .fetch_one(c)
        .await)?)
}

/// Every invariant that does not hold, in plain words; empty when all hold.
pub async fn problems(db: &Db) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let checks: &[(&str, &str)] = &[
        (
            "parents over capacity",
            "SELECT COUNT(*) FROM bags WHERE kind = 'parent' AND (child_count < 0 OR child_count > capacity)",
        ),
        (
            "parents whose child_count differs from their links",
            "SELECT COUNT(*) FROM bags p
             LEFT JOIN (SELECT parent_id, COUNT(*) AS n FROM links GROUP BY parent_id) l ON l.parent_id = p.id
             WHERE p.kind = 'parent' AND p.child_count <> COALESCE(l.n, 0)",
        ),
        (
            "children in more than one parent",
            "SELECT COUNT(*) FROM (SELECT child_id FROM links GROUP BY child_id HAVING COUNT(*) > 1) d",
        ),
        (
            "links whose parent or child is not a bag",
            "SELECT COUNT(*) FROM links l
             WHERE NOT EXISTS (SELECT 1 FROM bags p WHERE p.id = l.parent_id)
                OR NOT EXISTS (SELECT 1 FROM bags c WHERE c.id = l.child_id)",
        ),
        (
            "links that are not from a parent to a child",
            "SELECT COUNT(*) FROM links l JOIN bags p ON p.id = l.parent_id JOIN bags c ON c.id = l.child_id
             WHERE p.kind <> 'parent' OR c.kind <> 'child'",
        ),
        (
            "links whose child_code is not their child's code",
            "SELECT COUNT(*) FROM links l JOIN bags c ON c.id = l.child_id WHERE l.child_code <> c.code",
        ),
        (
            "bills whose parent_count differs from their parents",
            "SELECT COUNT(*) FROM bills b
             LEFT JOIN (SELECT bill_id, COUNT(*) AS n FROM bags WHERE bill_id IS NOT NULL GROUP BY bill_id) x
               ON x.bill_id = b.id
             WHERE b.parent_count <> COALESCE(x.n, 0)",
        ),
    ];
    for (what, sql) in checks {
        let n = count(db, sql).await?;
        if n != 0 {
            found.push(format!("{n} {what}"));
        }
    }

    let unique_child = match db {
        Db::Pg(_) => {
            "SELECT COUNT(*) FROM pg_index i
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
             WHERE t.relname = 'links' AND i.indisunique AND i.indnatts = 1 AND a.attname = 'child_id'"
        }
        Db::Sqlite { .. } => {
            "SELECT COUNT(*) FROM pragma_index_list('links') il
             WHERE il.\"unique\" = 1
               AND (SELECT COUNT(*) FROM pragma_index_info(il.name)) = 1
               AND (SELECT name FROM pragma_index_info(il.name)) = 'child_id'"
        }
    };
    if count(db, unique_child).await? == 0 {
        found.push(
            "links.child_id has no unique index: one parent per child is not enforced".into(),
        );
    }

    let sums: Vec<(String, i64)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT name, CAST(SUM(value) AS BIGINT) FROM counters GROUP BY name"
    )
    .fetch_all(c)
    .await)?;
    let sums: HashMap<String, i64> = sums.into_iter().collect();
    for (name, truth) in table_totals(db).await? {
        let counted = sums.get(name).copied().unwrap_or(0);
        if counted != truth {
            found.push(format!(
                "the counter {name} says {counted}, the tables hold {truth}"
            ));
        }
    }
    Ok(found)
}
