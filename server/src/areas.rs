//! Dispatch areas: the parts of the warehouse dispatchers work in. Users and
//! bags hold their area's name; a retired area keeps its bags and history but
//! takes no new users.

use serde_json::json;

use crate::audit::{self, Actor, Entry};
use crate::db::{Db, Ts, Tx};
use crate::error::{Error, Result};
use crate::on;
use crate::users::normalize_area;

#[derive(Debug, Clone)]
pub struct Area {
    pub id: i64,
    pub name: String,
    pub created_at: Ts,
    pub retired_at: Option<Ts>,
    /// Dispatchers in the area whose accounts are not switched off.
    pub dispatchers: i64,
}

type AreaRow = (i64, String, Ts, Option<Ts>, i64);

const SELECT: &str = "SELECT a.id, a.name, a.created_at, a.retired_at,
        (SELECT COUNT(*) FROM users u
         WHERE u.dispatch_area = a.name AND u.role = 'dispatcher' AND u.deactivated_at IS NULL)
     FROM areas a";

fn from_row((id, name, created_at, retired_at, dispatchers): AreaRow) -> Area {
    Area {
        id,
        name,
        created_at,
        retired_at,
        dispatchers,
    }
}

/// The lock key that queues every change to who is in an area (any process).
pub fn lock_key(name: &str) -> String {
    format!("~area:{}", name.to_lowercase())
}

/// Every area, by name.
pub async fn list(db: &Db) -> Result<Vec<Area>> {
    let sql = format!("{SELECT} ORDER BY lower(a.name), a.id");
    let rows: Vec<AreaRow> = on!(db.reader(), |c| sqlx::query_as(&sql).fetch_all(c).await)?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The area with this name, compared without regard to case.
pub async fn find_by_name(tx: &mut Tx, name: &str) -> Result<Option<Area>> {
    let sql = format!("{SELECT} WHERE lower(a.name) = lower($1)");
    let row: Option<AreaRow> = on!(tx.conn(), |c| sqlx::query_as(&sql)
        .bind(name)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(from_row))
}

async fn find_by_id(tx: &mut Tx, id: i64) -> Result<Area> {
    let sql = format!("{SELECT} WHERE a.id = $1");
    let row: Option<AreaRow> = on!(tx.conn(), |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    row.map(from_row).ok_or_else(|| {
        Error::not_found(
            "area_not_found",
            format!("There is no dispatch area with id {id}."),
        )
    })
}

fn taken(name: &str) -> Error {
    Error::conflict(
        "area_exists",
        format!("There is already a dispatch area named {name}."),
    )
}

async fn insert(tx: &mut Tx, actor: &Actor, name: &str, now: Ts) -> Result<Area> {
    let inserted: std::result::Result<i64, sqlx::Error> = on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO areas (name, created_at) VALUES ($1, $2) RETURNING id"
    )
    .bind(name)
    .bind(now)
    .fetch_one(c)
    .await);
    let id = match inserted {
        Ok(id) => id,
        Err(e) if crate::db::is_unique_violation(&e) => return Err(taken(name)),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "area_create",
            entity: "area",
            code: Some(name),
            before: None,
            after: Some(json!({"id": id})),
        },
    )
    .await?;
    Ok(Area {
        id,
        name: name.to_string(),
        created_at: now,
        retired_at: None,
        dispatchers: 0,
    })
}

/// Adds an area. Names are unique whatever their case.
pub async fn create(tx: &mut Tx, actor: &Actor, name: &str, now: Ts) -> Result<Area> {
    let name = normalize_area(name)?;
    tx.lock_codes([lock_key(&name).as_str()]).await?;
    if let Some(existing) = find_by_name(tx, &name).await? {
        return Err(taken(&existing.name));
    }
    insert(tx, actor, &name, now).await
}

/// The area with this name, added first when there is none; `true` when it was added.
pub async fn ensure(tx: &mut Tx, actor: &Actor, name: &str, now: Ts) -> Result<(Area, bool)> {
    let name = normalize_area(name)?;
    tx.lock_codes([lock_key(&name).as_str()]).await?;
    if let Some(existing) = find_by_name(tx, &name).await? {
        return Ok((existing, false));
    }
    Ok((insert(tx, actor, &name, now).await?, true))
}

/// Renames an area, and with it every user and bag that names it.
pub async fn rename(tx: &mut Tx, actor: &Actor, id: i64, name: &str, now: Ts) -> Result<Area> {
    let name = normalize_area(name)?;
    let old = find_by_id(tx, id).await?;
    tx.lock_codes([lock_key(&old.name).as_str(), lock_key(&name).as_str()])
        .await?;
    // Read again under the locks: a rename that ran meanwhile has finished.
    let old = find_by_id(tx, id).await?;
    if old.name == name {
        return Ok(old);
    }
    if let Some(other) = find_by_name(tx, &name).await?.filter(|a| a.id != id) {
        return Err(taken(&other.name));
    }
    let renamed = on!(tx.conn(), |c| sqlx::query(
        "UPDATE areas SET name = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(&name)
    .execute(c)
    .await
    .map(|r| r.rows_affected()));
    match renamed {
        Ok(_) => {}
        Err(e) if crate::db::is_unique_violation(&e) => return Err(taken(&name)),
        Err(e) => return Err(e.into()),
    }
    tx.access_changed();
    let users = on!(tx.conn(), |c| sqlx::query(
        "UPDATE users SET dispatch_area = $2, updated_at = $3 WHERE dispatch_area = $1"
    )
    .bind(&old.name)
    .bind(&name)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let bags = on!(tx.conn(), |c| sqlx::query(
        "UPDATE bags SET dispatch_area = $2 WHERE dispatch_area = $1"
    )
    .bind(&old.name)
    .bind(&name)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "area_rename",
            entity: "area",
            code: Some(&name),
            before: Some(json!({"name": old.name})),
            after: Some(json!({"name": name, "users": users, "bags": bags})),
        },
    )
    .await?;
    Ok(Area { name, ..old })
}

/// Retires an area: refused while active dispatchers are still in it.
pub async fn retire(tx: &mut Tx, actor: &Actor, id: i64, now: Ts) -> Result<Area> {
    let area = find_by_id(tx, id).await?;
    tx.lock_codes([lock_key(&area.name).as_str()]).await?;
    let area = find_by_id(tx, id).await?;
    if area.retired_at.is_some() {
        return Err(Error::conflict(
            "area_retired",
            format!("The area {} is already retired.", area.name),
        ));
    }
    if area.dispatchers > 0 {
        let who = if area.dispatchers == 1 {
            "1 active dispatcher".to_string()
        } else {
            format!("{} active dispatchers", area.dispatchers)
        };
        return Err(Error::conflict(
            "area_in_use",
            format!(
                "The area {} still has {who}. Move them to another area or switch their accounts off first.",
                area.name
            ),
        ));
    }
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE areas SET retired_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        now,
        Entry {
            action: "area_retire",
            entity: "area",
            code: Some(&area.name),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(Area {
        retired_at: Some(now),
        ..area
    })
}

/// The area a user may be put in: it exists and is not retired. Takes the
/// area's lock, so the caller can count its dispatchers safely.
pub async fn for_new_member(tx: &mut Tx, name: &str) -> Result<Area> {
    let name = normalize_area(name)?;
    tx.lock_codes([lock_key(&name).as_str()]).await?;
    let area = find_by_name(tx, &name).await?.ok_or_else(|| {
        Error::bad_input(
            "unknown_area",
            format!("There is no dispatch area named {name}. An admin can add it first."),
        )
    })?;
    if area.retired_at.is_some() {
        return Err(Error::conflict(
            "area_retired",
            format!("The area {} is retired and takes no new users.", area.name),
        ));
    }
    Ok(area)
}
