//! Multi-row statements: `VALUES` lists with their bound values, for the
//! set-based writes of imports and of station event groups.
//!
//! Their text changes with the number of rows, so they are not kept as
//! prepared statements (they would push the server's everyday statements out
//! of each connection's cache).

use uuid::Uuid;

use crate::db::{Backend, On, Ts, Tx};
use crate::error::Result;
use crate::on;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Ts(Ts),
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
}

/// `(…), (…)` with `cols` placeholders a row, numbered from `first`, and
/// `tail` (values shared by every row, such as `$1`) at the end of each;
/// `casts` gives a column's SQL type where the database cannot infer it.
pub fn values(rows: usize, cols: usize, first: usize, casts: &[&str], tail: &str) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(rows * (cols * 9 + tail.len() + 4));
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            // Writing into a String cannot fail.
            let _ = match casts.get(c) {
                Some(t) if !t.is_empty() => write!(sql, "CAST(${n} AS {t})"),
                _ => write!(sql, "${n}"),
            };
            n += 1;
        }
        sql.push_str(tail);
        sql.push(')');
    }
    sql
}

/// The transaction's database.
pub fn backend(tx: &mut Tx) -> Backend {
    match tx.conn() {
        On::Pg(_) => Backend::Postgres,
        On::Sqlite(_) => Backend::Sqlite,
    }
}

/// Values bound per statement of a [`rows_list`] or an [`in_list`]. On
/// SQLite they stay under its oldest limit of 999.
pub fn list_binds(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 6_000,
        Backend::Sqlite => 960,
    }
}

/// Rows per statement for a [`rows_list`] of rows of `cols` values.
pub fn rows_per_list(tx: &mut Tx, cols: usize) -> usize {
    (list_binds(backend(tx)) / cols.max(1)).max(1)
}

/// [`values`] for a statement whose only values are its rows, numbered from
/// the first. SQLite gets anonymous `?` placeholders: it names each numbered
/// one by a scan of all of them, which costs the square of their number.
pub fn rows_list(tx: &mut Tx, rows: usize, cols: usize, casts: &[&str]) -> String {
    let numbered = values(rows, cols, 1, casts, "");
    match tx.conn() {
        On::Pg(_) => numbered,
        On::Sqlite(_) => anonymous(&numbered),
    }
}

/// `n` placeholders for an `IN (…)` list of values bound in order: numbered
/// on PostgreSQL, anonymous on SQLite (see [`rows_list`]); at most
/// [`list_binds`] of them.
pub fn in_list(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(n),
        Backend::Sqlite => vec!["?"; n].join(", "),
    }
}

/// `$1`, `$2`, … in order, as `?`.
fn anonymous(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `$1, $2, …, $n`.
pub fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds every value of `vals` in order to the query `q`.
#[macro_export]
macro_rules! bind_all {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                $crate::rows::Val::Int(x) => q.bind(x),
                $crate::rows::Val::OptInt(x) => q.bind(x),
                $crate::rows::Val::Text(x) => q.bind(x),
                $crate::rows::Val::OptText(x) => q.bind(x),
                $crate::rows::Val::Ts(x) => q.bind(x),
                $crate::rows::Val::Uuid(x) => q.bind(x),
                $crate::rows::Val::OptUuid(x) => q.bind(x),
            };
        }
        q
    }};
}

/// Runs `sql` with `now` as `$1` (when given) and `vals` after it; answers the rows it changed.
pub async fn execute(tx: &mut Tx, sql: &str, now: Option<Ts>, vals: Vec<Val>) -> Result<u64> {
    let done = on!(tx.conn(), |c| {
        let mut q = sqlx::query(sql).persistent(false);
        if let Some(now) = now {
            q = q.bind(now);
        }
        bind_all!(q, vals)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done)
}

/// Runs `sql` with `now` as `$1` (when given) and `vals` after it; answers
/// the `(id, code)` rows it returns.
pub async fn ids_of(
    tx: &mut Tx,
    sql: &str,
    now: Option<Ts>,
    vals: Vec<Val>,
) -> Result<Vec<(i64, String)>> {
    let rows = on!(tx.conn(), |c| {
        let mut q = sqlx::query_as::<_, (i64, String)>(sql).persistent(false);
        if let Some(now) = now {
            q = q.bind(now);
        }
        bind_all!(q, vals).fetch_all(c).await
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_lists_number_their_placeholders() {
        assert_eq!(
            values(2, 2, 2, &["BIGINT", ""], ""),
            "(CAST($2 AS BIGINT), $3), (CAST($4 AS BIGINT), $5)"
        );
        assert_eq!(values(2, 1, 2, &[], ", $1"), "($2, $1), ($3, $1)");
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(
            anonymous("(CAST($1 AS BIGINT), $2), ($3, $14)"),
            "(CAST(? AS BIGINT), ?), (?, ?)"
        );
    }
}
