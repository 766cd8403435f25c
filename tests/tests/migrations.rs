//! Upgrades, on SQLite and PostgreSQL: a database made by an older build
//! (its migrations only, then rows written as that build wrote them) takes
//! this build's migrations with every row kept, or refuses them whole.

use std::path::{Path, PathBuf};

use traitortrack_server::db::{Backend, Db, Ts};
use traitortrack_server::on;
use traitortrack_tests::fresh_url;

/// The last migration before links kept their child's code.
const BEFORE_CHILD_CODE: i64 = 8;

/// A folder holding this backend's migrations up to `version`.
fn migrations_up_to(backend: Backend, version: i64) -> PathBuf {
    let all = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(backend.as_str());
    let dir = std::env::temp_dir().join(format!(
        "traitortrack-migrations-{}-{}",
        backend.as_str(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for entry in std::fs::read_dir(&all).expect("the migrations folder") {
        let path = entry.expect("a migration").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let number: i64 = name
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(i64::MAX);
        if number <= version {
            std::fs::copy(&path, dir.join(name)).expect("copy a migration");
        }
    }
    dir
}

/// A database at migration `version`, as an older build left it.
async fn database_at(backend: Backend, version: i64) -> Option<Db> {
    let url = fresh_url(backend).await?;
    let db = Db::connect(&url, 4).await.expect("connect");
    let older = sqlx::migrate::Migrator::new(migrations_up_to(backend, version).as_path())
        .await
        .expect("the older migrations");
    on!(db.writer(), |c| older.run(c).await).expect("the older migrations apply");
    Some(db)
}

/// A parent with two children linked, as builds before 0009 wrote links
/// (no child code); and a link to `missing_child` when given.
async fn old_links(db: &Db, missing_child: Option<i64>) {
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let bags = [
        ("SB00001", "parent", Some(30), 2),
        ("C0001", "child", None, 0),
        ("C0002", "child", None, 0),
    ];
    for (code, kind, capacity, count) in bags {
        on!(db.writer(), |c| sqlx::query(
            "INSERT INTO bags (code, kind, capacity, child_count, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)"
        )
        .bind(code)
        .bind(kind)
        .bind(capacity)
        .bind(count)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
        .expect("an old bag");
    }
    let mut children = vec![2i64, 3];
    children.extend(missing_child);
    for child in children {
        on!(db.writer(), |c| sqlx::query(
            "INSERT INTO links (parent_id, child_id, linked_at) VALUES (1, $1, $2)"
        )
        .bind(child)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
        .expect("an old link");
    }
}

async fn version(db: &Db) -> i64 {
    on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT MAX(version) FROM _sqlx_migrations"
    )
    .fetch_one(c)
    .await)
    .expect("the applied migrations")
}

async fn links_keep_their_child_codes(backend: Backend) {
    let Some(db) = database_at(backend, BEFORE_CHILD_CODE).await else {
        return;
    };
    old_links(&db, None).await;
    db.migrate().await.expect("this build's migrations apply");
    assert!(version(&db).await > BEFORE_CHILD_CODE);
    let codes: Vec<(i64, String)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT child_id, child_code FROM links ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .expect("the links");
    assert_eq!(
        codes,
        vec![(2, "C0001".to_string()), (3, "C0002".to_string())]
    );
}

/// A link whose child is gone (no build makes one, but a database edited by
/// hand could hold it) stops the upgrade before it changes anything.
async fn a_link_without_its_child_stops_the_upgrade_whole(backend: Backend) {
    let Some(db) = database_at(backend, BEFORE_CHILD_CODE).await else {
        return;
    };
    old_links(&db, Some(999)).await;
    assert!(
        db.migrate().await.is_err(),
        "a link to no bag cannot get a code"
    );
    assert_eq!(
        version(&db).await,
        BEFORE_CHILD_CODE,
        "the upgrade is not half-done"
    );
    let links: i64 = on!(db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM links"
    )
    .fetch_one(c)
    .await)
    .expect("the links");
    assert_eq!(links, 3, "every link is still there");
}

#[tokio::test]
async fn sqlite_links_keep_their_child_codes() {
    links_keep_their_child_codes(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_links_keep_their_child_codes() {
    links_keep_their_child_codes(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_link_without_its_child_stops_the_upgrade_whole() {
    a_link_without_its_child_stops_the_upgrade_whole(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_link_without_its_child_stops_the_upgrade_whole() {
    a_link_without_its_child_stops_the_upgrade_whole(Backend::Postgres).await;
}
