//! The benchmark's people and stations, set up as a deployment would: the
//! admin and one dispatcher per station, all in one area, made in the database
//! before the server starts (as `traitortrack user add` does), then each
//! station registered over HTTP and its worker logged in at it, so that the
//! station's events are accepted.

use std::sync::Arc;

use anyhow::Context;
use traitortrack_protocol::Role;
use traitortrack_server::areas;
use traitortrack_server::audit::Actor;
use traitortrack_server::db::{Db, Ts};
use traitortrack_server::users::{self, NewUser};

use super::api::Api;
use crate::PASSWORD;

/// The dispatch area of every benchmark worker and seeded bag.
pub const AREA: &str = "Bench";
/// Logins run this many at a time: each costs the server an argon2 hash.
const LOGINS_AT_ONCE: usize = 4;

/// A registered station and the dispatcher who scans at it.
#[derive(Debug, Clone)]
pub struct BenchStation {
    pub id: i64,
    pub name: String,
    pub key: String,
    pub worker: String,
}

pub fn worker_name(i: usize) -> String {
    format!("worker{:03}", i + 1)
}

/// Creates `admin` and `workers` dispatchers in [`AREA`], all with the test password.
pub async fn create_accounts(db: &Db, url: &str, workers: usize) -> anyhow::Result<()> {
    let settings = crate::settings(url);
    let actor = Actor {
        username: Some("loadgen".into()),
        ..Actor::default()
    };
    let now = Ts::new(time::OffsetDateTime::now_utc());
    let mut tx = db.begin().await?;
    areas::ensure(&mut tx, &actor, AREA, now).await?;
    let admin = NewUser {
        username: "admin",
        password: PASSWORD,
        role: Role::Admin,
        dispatch_area: None,
        must_change_password: false,
    };
    users::create(&mut tx, &settings, &actor, admin, now).await?;
    for i in 0..workers {
        let name = worker_name(i);
        let worker = NewUser {
            username: &name,
            password: PASSWORD,
            role: Role::Dispatcher,
            dispatch_area: Some(AREA),
            must_change_password: false,
        };
        users::create(&mut tx, &settings, &actor, worker, now)
            .await
            .with_context(|| format!("create {name}"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// Registers `n` stations as the admin and logs each one's worker in at it.
pub async fn register(api: &Api, admin_token: &str, n: usize) -> anyhow::Result<Vec<BenchStation>> {
    let mut stations = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-{:03}", i + 1);
        let created = api
            .register_station(admin_token, &name)
            .await
            .map_err(|e| anyhow::anyhow!("registering {name}: {e}"))?;
        stations.push(BenchStation {
            id: created.id,
            name,
            key: created.key,
            worker: worker_name(i),
        });
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(LOGINS_AT_ONCE));
    let mut logins = tokio::task::JoinSet::new();
    for st in &stations {
        let (api, gate, st) = (api.clone(), Arc::clone(&gate), st.clone());
        logins.spawn(async move {
            let _permit = gate.acquire_owned().await;
            api.login(&st.worker, PASSWORD, Some(&st.key))
                .await
                .map_err(|e| anyhow::anyhow!("{} logging in at {}: {e}", st.worker, st.name))
        });
    }
    while let Some(done) = logins.join_next().await {
        done??;
    }
    Ok(stations)
}
