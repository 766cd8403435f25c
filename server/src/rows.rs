//! Lists of rows for set-based statements: the writes of station event
//! groups and imports, and reads of many rows by their keys.
//!
//! On PostgreSQL each column travels as one array and the statement reads the
//! arrays with `UNNEST`: its text is the same for any number of rows, so each
//! connection prepares it once and PostgreSQL can keep one plan for it. SQLite
//! has no arrays: there the rows are a `VALUES` list of anonymous
//! placeholders, whose text changes with the number of rows, so only the
//! shortest lists are kept prepared (the others would push the everyday
//! statements out of each connection's cache).

use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, PgConnection, SqliteConnection};
use uuid::Uuid;

use crate::db::{Backend, On, Ts};
use crate::error::{Error, Result};

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

/// The type of a column of [`Rows`]: which array it is on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Int,
    Text,
    Ts,
    Uuid,
}

impl Col {
    fn array(self) -> &'static str {
        match self {
            Col::Int => "INT8[]",
            Col::Text => "TEXT[]",
            Col::Ts => "TIMESTAMPTZ[]",
            Col::Uuid => "UUID[]",
        }
    }

    fn holds(self, val: &Val) -> bool {
        matches!(
            (self, val),
            (Col::Int, Val::Int(_) | Val::OptInt(_))
                | (Col::Text, Val::Text(_) | Val::OptText(_))
                | (Col::Ts, Val::Ts(_))
                | (Col::Uuid, Val::Uuid(_) | Val::OptUuid(_))
        )
    }
}

/// Where a statement takes its rows, which decides the text they become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The rows of an `INSERT … {rows}`.
    Insert,
    /// A table in a `FROM`: `{rows}` is named `v`, its columns `column1`, `column2`, ….
    Table,
    /// A key test: `WHERE key {rows}` for one column, `WHERE (a, b) {rows}` for more.
    In,
}

/// Rows of values, one [`Col`] type per column, row after row.
#[derive(Debug)]
pub struct Rows {
    cols: &'static [Col],
    vals: Vec<Val>,
    /// A row was pushed with the wrong number of values.
    misshapen: bool,
}

impl Rows {
    pub fn new(cols: &'static [Col], rows: usize) -> Rows {
        Rows {
            cols,
            vals: Vec::with_capacity(rows * cols.len()),
            misshapen: false,
        }
    }

    /// One column of keys.
    pub fn keys<T>(col: Col, keys: impl IntoIterator<Item = T>, val: fn(T) -> Val) -> Rows {
        let cols: &'static [Col] = match col {
            Col::Int => &[Col::Int],
            Col::Text => &[Col::Text],
            Col::Ts => &[Col::Ts],
            Col::Uuid => &[Col::Uuid],
        };
        let mut rows = Rows::new(cols, 0);
        for key in keys {
            rows.push([val(key)]);
        }
        rows
    }

    pub fn push<const N: usize>(&mut self, row: [Val; N]) {
        self.misshapen |= N != self.cols.len();
        self.vals.extend(row);
    }

    pub fn len(&self) -> usize {
        self.vals.len() / self.cols.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    /// Every row as wide as the columns and every value of its column's type.
    fn check(&self) -> Result<()> {
        let width = self.cols.len();
        if self.misshapen
            || width == 0
            || !self
                .vals
                .iter()
                .zip(self.cols.iter().cycle())
                .all(|(v, c)| c.holds(v))
        {
            return Err(misfit(self.cols));
        }
        Ok(())
    }

    /// The rows of each statement: at most [`rows_per_statement`] each.
    fn split(self, backend: Backend) -> impl Iterator<Item = Vec<Val>> {
        let per = rows_per_statement(backend, self.cols.len()) * self.cols.len();
        let mut vals = self.vals.into_iter().peekable();
        std::iter::from_fn(move || {
            vals.peek()?;
            Some(vals.by_ref().take(per).collect())
        })
    }
}

fn misfit(cols: &[Col]) -> Error {
    Error::Internal(format!("a list of rows does not fit its columns {cols:?}"))
}

/// Values bound per statement of an [`in_list`]; on SQLite they stay under
/// its oldest limit of 999.
pub fn list_binds(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 6_000,
        Backend::Sqlite => 960,
    }
}

/// Rows per statement for rows of `cols` values. PostgreSQL binds a column
/// as one array whatever its length; its statements take as many values as
/// its `IN` lists do, which keeps an import batch's statements the size the
/// import times were measured at.
fn rows_per_statement(backend: Backend, cols: usize) -> usize {
    (list_binds(backend) / cols.max(1)).max(1)
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

/// `n` placeholders for an `IN (…)` list of values bound in order: numbered
/// on PostgreSQL, anonymous on SQLite; at most [`list_binds`] of them.
pub fn in_list(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(n),
        Backend::Sqlite => vec!["?"; n].join(", "),
    }
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

/// The text `rows` of `cols` columns take in a statement of this form.
fn text(backend: Backend, form: Form, cols: &[Col], rows: usize) -> String {
    match backend {
        Backend::Postgres => {
            let arrays = cols
                .iter()
                .enumerate()
                .map(|(i, c)| format!("CAST(${} AS {})", i + 1, c.array()))
                .collect::<Vec<_>>()
                .join(", ");
            match (form, cols.len()) {
                (Form::Insert, _) => format!("SELECT * FROM UNNEST({arrays})"),
                (Form::Table, n) => {
                    let names = (1..=n)
                        .map(|i| format!("column{i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("UNNEST({arrays}) AS v({names})")
                }
                (Form::In, 1) => format!("= ANY({arrays})"),
                (Form::In, _) => format!("IN (SELECT * FROM UNNEST({arrays}))"),
            }
        }
        Backend::Sqlite => {
            let row = format!("({})", vec!["?"; cols.len()].join(", "));
            let list = vec![row.as_str(); rows].join(", ");
            match (form, cols.len()) {
                (Form::Insert, _) => format!("VALUES {list}"),
                (Form::Table, _) => format!("(VALUES {list}) AS v"),
                (Form::In, 1) => format!("IN ({})", vec!["?"; rows].join(", ")),
                (Form::In, _) => format!("IN (VALUES {list})"),
            }
        }
    }
}

/// A column's values as PostgreSQL binds them.
enum Array {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Ts(Vec<Ts>),
    Uuid(Vec<Option<Uuid>>),
}

/// One array per column, in order.
fn pg_arguments(cols: &[Col], vals: Vec<Val>) -> Result<PgArguments> {
    let rows = vals.len() / cols.len().max(1);
    let mut arrays: Vec<Array> = cols
        .iter()
        .map(|c| match c {
            Col::Int => Array::Int(Vec::with_capacity(rows)),
            Col::Text => Array::Text(Vec::with_capacity(rows)),
            Col::Ts => Array::Ts(Vec::with_capacity(rows)),
            Col::Uuid => Array::Uuid(Vec::with_capacity(rows)),
        })
        .collect();
    let width = arrays.len();
    for (i, val) in vals.into_iter().enumerate() {
        match (arrays.get_mut(i % width), val) {
            (Some(Array::Int(a)), Val::Int(x)) => a.push(Some(x)),
            (Some(Array::Int(a)), Val::OptInt(x)) => a.push(x),
            (Some(Array::Text(a)), Val::Text(x)) => a.push(Some(x)),
            (Some(Array::Text(a)), Val::OptText(x)) => a.push(x),
            (Some(Array::Ts(a)), Val::Ts(x)) => a.push(x),
            (Some(Array::Uuid(a)), Val::Uuid(x)) => a.push(Some(x)),
            (Some(Array::Uuid(a)), Val::OptUuid(x)) => a.push(x),
            _ => return Err(misfit(cols)),
        }
    }
    let mut args = PgArguments::default();
    for array in arrays {
        let added = match array {
            Array::Int(a) => args.add(a),
            Array::Text(a) => args.add(a),
            Array::Ts(a) => args.add(a),
            Array::Uuid(a) => args.add(a),
        };
        added.map_err(|e| Error::Internal(format!("binding a list of rows: {e}")))?;
    }
    Ok(args)
}

/// Every value in order.
fn sqlite_arguments(vals: Vec<Val>) -> Result<SqliteArguments<'static>> {
    let mut args = SqliteArguments::default();
    for val in vals {
        let added = match val {
            Val::Int(x) => args.add(x),
            Val::OptInt(x) => args.add(x),
            Val::Text(x) => args.add(x),
            Val::OptText(x) => args.add(x),
            Val::Ts(x) => args.add(x),
            Val::Uuid(x) => args.add(x),
            Val::OptUuid(x) => args.add(x),
        };
        added.map_err(|e| Error::Internal(format!("binding a list of rows: {e}")))?;
    }
    Ok(args)
}

/// SQLite statements of at most this many rows stay prepared: a lone scan's
/// (one link, two bags), a handful of shapes.
const KEPT_ROWS: usize = 2;

/// A connection of either database, for the functions below.
pub type Conn<'c> = On<&'c mut PgConnection, &'c mut SqliteConnection>;

/// One statement's text and values, as its database takes them.
enum Statement {
    Pg(String, PgArguments),
    /// With whether to keep it prepared.
    Sqlite(String, SqliteArguments<'static>, bool),
}

/// The statements that take `rows` in this form into `sql`, made one by one.
fn statements<'s>(
    conn: &Conn<'_>,
    rows: Rows,
    form: Form,
    sql: &'s impl Fn(&str) -> String,
) -> Result<impl Iterator<Item = Result<Statement>> + 's> {
    rows.check()?;
    let cols = rows.cols;
    let backend = match conn {
        On::Pg(_) => Backend::Postgres,
        On::Sqlite(_) => Backend::Sqlite,
    };
    Ok(rows.split(backend).map(move |vals| {
        let n = vals.len() / cols.len();
        let text = sql(&text(backend, form, cols, n));
        Ok(match backend {
            Backend::Postgres => Statement::Pg(text, pg_arguments(cols, vals)?),
            Backend::Sqlite => Statement::Sqlite(text, sqlite_arguments(vals)?, n <= KEPT_ROWS),
        })
    }))
}

fn mismatch() -> Error {
    Error::Internal("a statement was made for the other database".into())
}

/// Runs `sql(rows as text in this form)` for all of `rows`, in as many
/// statements as it takes; answers the rows they changed.
pub async fn execute(
    mut conn: Conn<'_>,
    rows: Rows,
    form: Form,
    sql: impl Fn(&str) -> String,
) -> Result<u64> {
    let mut changed = 0;
    for statement in statements(&conn, rows, form, &sql)? {
        changed += match (&mut conn, statement?) {
            (On::Pg(c), Statement::Pg(text, args)) => {
                { sqlx::query_with(&text, args).execute(&mut **c).await? }.rows_affected()
            }
            (On::Sqlite(c), Statement::Sqlite(text, args, keep)) => {
                sqlx::query_with(&text, args)
                    .persistent(keep)
                    .execute(&mut **c)
                    .await?
            }
            .rows_affected(),
            _ => return Err(mismatch()),
        };
    }
    Ok(changed)
}

/// Runs `sql(rows as text in this form)` for all of `rows`, in as many
/// statements as it takes; answers the rows they return.
pub async fn fetch<O>(
    mut conn: Conn<'_>,
    rows: Rows,
    form: Form,
    sql: impl Fn(&str) -> String,
) -> Result<Vec<O>>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    let mut found = Vec::new();
    for statement in statements(&conn, rows, form, &sql)? {
        found.extend(match (&mut conn, statement?) {
            (On::Pg(c), Statement::Pg(text, args)) => {
                sqlx::query_as_with(&text, args).fetch_all(&mut **c).await?
            }
            (On::Sqlite(c), Statement::Sqlite(text, args, keep)) => {
                sqlx::query_as_with(&text, args)
                    .persistent(keep)
                    .fetch_all(&mut **c)
                    .await?
            }
            _ => return Err(mismatch()),
        });
    }
    Ok(found)
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
    }

    #[test]
    fn rows_are_arrays_on_postgres_and_value_lists_on_sqlite() {
        let cols = [Col::Int, Col::Text];
        let pg = |form| text(Backend::Postgres, form, &cols, 3);
        assert_eq!(
            pg(Form::Insert),
            "SELECT * FROM UNNEST(CAST($1 AS INT8[]), CAST($2 AS TEXT[]))"
        );
        assert_eq!(
            pg(Form::Table),
            "UNNEST(CAST($1 AS INT8[]), CAST($2 AS TEXT[])) AS v(column1, column2)"
        );
        assert_eq!(
            pg(Form::In),
            "IN (SELECT * FROM UNNEST(CAST($1 AS INT8[]), CAST($2 AS TEXT[])))"
        );
        assert_eq!(
            text(Backend::Postgres, Form::In, &[Col::Uuid], 7),
            "= ANY(CAST($1 AS UUID[]))"
        );
        let sqlite = |form| text(Backend::Sqlite, form, &cols, 2);
        assert_eq!(sqlite(Form::Insert), "VALUES (?, ?), (?, ?)");
        assert_eq!(sqlite(Form::Table), "(VALUES (?, ?), (?, ?)) AS v");
        assert_eq!(sqlite(Form::In), "IN (VALUES (?, ?), (?, ?))");
        assert_eq!(
            text(Backend::Sqlite, Form::In, &[Col::Ts], 3),
            "IN (?, ?, ?)"
        );
    }

    #[test]
    fn rows_that_do_not_fit_their_columns_are_refused() {
        let mut rows = Rows::new(&[Col::Int, Col::Text], 2);
        rows.push([Val::Int(1), Val::Text("a".into())]);
        assert!(rows.check().is_ok());
        rows.push([Val::Int(2)]);
        assert!(rows.check().is_err(), "a short row");
        let mut rows = Rows::new(&[Col::Int, Col::Text], 1);
        rows.push([Val::Text("a".into()), Val::Int(1)]);
        assert!(rows.check().is_err(), "values in the wrong columns");
        assert!(pg_arguments(&[Col::Int], vec![Val::Text("a".into())]).is_err());
    }

    #[test]
    fn statements_split_at_the_bind_limit() {
        let split = |backend| {
            let mut rows = Rows::new(&[Col::Int, Col::Int, Col::Int], 700);
            for i in 0..700 {
                rows.push([Val::Int(i), Val::Int(i), Val::Int(i)]);
            }
            assert_eq!(rows.len(), 700);
            rows.split(backend).map(|v| v.len() / 3).collect::<Vec<_>>()
        };
        assert_eq!(split(Backend::Sqlite), [320, 320, 60]);
        assert_eq!(split(Backend::Postgres), [700]);
    }
}
