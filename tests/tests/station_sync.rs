//! The station core against a real `traitortrack serve` on loopback, on
//! SQLite and PostgreSQL: scanning online, queueing offline, network cuts
//! mid-request, and a full outbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use traitortrack_protocol::Role;
use traitortrack_station_core::sounds::{Sounds, Tone};
use traitortrack_station_core::station::{Station, StationConfig, Verdict};
use traitortrack_station_core::workers::Worker;
use traitortrack_tests::process::{Proxy, ServerProcess};
use traitortrack_tests::{fresh_url, server_binary, settings, Backend, TestServer, PASSWORD};

/// A served database with a dispatcher `ravi` and a registered station.
struct Site {
    admin: TestServer,
    server: ServerProcess,
    key: String,
}

async fn site(backend: Backend) -> Option<Site> {
    let url = fresh_url(backend).await?;
    let admin = TestServer::start_with(settings(&url)).await;
    admin
        .add_user("ravi", Role::Dispatcher, Some("north"))
        .await;
    let key = admin.station("dock-1").await;
    let server = ServerProcess::start(server_binary!(), &url).await;
    Some(Site { admin, server, key })
}

fn open_station(base: &str, key: &str, max_bytes: Option<u64>) -> Arc<Station> {
    let dir = std::env::temp_dir().join(format!("tt-station-{}", uuid::Uuid::now_v7()));
    let config = StationConfig {
        server_url: base.to_string(),
        station_key: key.to_string(),
        data_dir: dir,
        outbox_max_bytes: max_bytes,
        language: "en".into(),
        scanner: None,
        station_name: None,
    };
    Station::open(&config, Sounds::silent()).expect("open station")
}

async fn ravi(station: &Station) -> Worker {
    let worker = station.login("ravi", PASSWORD).await.expect("login");
    assert!(worker.online);
    worker
}

/// Waits until the station has nothing unsent, at most `limit`.
async fn drained(station: &Station, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut status = station.status();
    loop {
        if status.borrow().unsent == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still unsent after {limit:?}: {:?}",
            *status.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

async fn one_station_fills_a_parent(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let station = open_station(&site.server.base(), &site.key, None);
    let worker = ravi(&station).await;
    for i in 1..=30 {
        let v = station.link(&worker, "sb00001", &format!("c{i:04}")).await;
        let Verdict::Applied {
            parent: Some(p), ..
        } = &v
        else {
            panic!("scan {i}: {v:?}");
        };
        assert_eq!(p.children, i);
        assert_eq!(v.tone(), if i == 30 { Tone::Complete } else { Tone::Ok });
    }
    let v = station.link(&worker, "SB00001", "C0031").await;
    assert_eq!(
        v,
        Verdict::Refused {
            code: "parent_full".into(),
            message: "SB00001 is full: 30 of 30".into()
        }
    );
    assert_eq!(v.tone(), Tone::Error);
    assert!(
        station
            .needs_attention()
            .await
            .expect("attention")
            .is_empty(),
        "a refusal the worker saw on screen needs no second look"
    );
    // Refused here before any network: a parent code in the child slot.
    let v = station.link(&worker, "SB00001", "SB00002").await;
    assert!(
        matches!(&v, Verdict::Refused { code, .. } if code == "child_is_parent"),
        "{v:?}"
    );

    let v = station.undo(&worker, "SB00001", None).await;
    let Verdict::Applied {
        parent: Some(p), ..
    } = &v
    else {
        panic!("undo: {v:?}")
    };
    assert_eq!(p.children, 29);
    assert_eq!(site.admin.children_of("SB00001").await.len(), 29);
    assert_eq!(station.status().borrow().unsent, 0);
    site.admin.assert_invariants().await;
}

async fn offline_scans_drain_when_the_server_returns(backend: Backend) {
    let Some(mut site) = site(backend).await else {
        return;
    };
    let station = open_station(&site.server.base(), &site.key, None);
    let worker = ravi(&station).await;
    site.server.stop();

    let mut model: Vec<(String, Vec<String>)> = Vec::new();
    for n in 0..500 {
        let parent = format!("SB{:05}", 100 + n / 25);
        let child = format!("K{n:05}");
        let v = station.link(&worker, &parent, &child).await;
        assert!(matches!(v, Verdict::SavedOffline { .. }), "scan {n}: {v:?}");
        assert_eq!(v.tone(), Tone::SavedOffline);
        match model.last_mut() {
            Some((p, kids)) if *p == parent => kids.push(child),
            _ => model.push((parent, vec![child])),
        }
    }
    // Known locally: the same child again is refused here, without the server.
    let v = station.link(&worker, "SB00100", "K00000").await;
    assert!(
        matches!(&v, Verdict::Refused { code, .. } if code == "already_linked"),
        "{v:?}"
    );
    assert_eq!(station.status().borrow().unsent, 500);

    site.server.resume().await;
    drained(&station, Duration::from_secs(10)).await;
    for (parent, kids) in &model {
        assert_eq!(&site.admin.children_of(parent).await, kids, "{parent}");
    }
    assert_eq!(site.admin.assert_invariants().await, 500, "nothing doubled");
    assert_eq!(station.status().borrow().needs_attention, 0);
}

async fn a_cut_connection_changes_nothing_on_resend(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let proxy = Proxy::start(site.server.addr).await;
    let station = open_station(&proxy.base(), &site.key, None);
    let worker = ravi(&station).await;

    proxy.cut_next_answers(1);
    let v = station.link(&worker, "SB00001", "C0001").await;
    assert!(
        matches!(v, Verdict::SavedOffline { .. }),
        "the answer was lost: {v:?}"
    );
    assert_eq!(proxy.answers_cut(), 1, "the request reached the server");
    drained(&station, Duration::from_secs(10)).await;
    assert_eq!(site.admin.children_of("SB00001").await, ["C0001"]);

    // A whole queued batch whose answer is lost.
    proxy.set_down(true);
    for i in 2..=21 {
        let v = station.link(&worker, "SB00001", &format!("C{i:04}")).await;
        assert!(matches!(v, Verdict::SavedOffline { .. }), "{v:?}");
    }
    proxy.cut_next_answers(1);
    proxy.set_down(false);
    drained(&station, Duration::from_secs(10)).await;
    assert_eq!(proxy.answers_cut(), 2);
    assert_eq!(site.admin.children_of("SB00001").await.len(), 21);
    assert_eq!(site.admin.assert_invariants().await, 21, "each scan once");
    assert_eq!(station.status().borrow().needs_attention, 0);
}

async fn a_full_outbox_refuses_new_scans_and_keeps_the_earlier_ones(backend: Backend) {
    let Some(mut site) = site(backend).await else {
        return;
    };
    let station = open_station(&site.server.base(), &site.key, Some(192 * 1024));
    let worker = ravi(&station).await;
    site.server.stop();
    let mut kept = 0usize;
    let mut refusal = None;
    for n in 0..5000 {
        let parent = format!("SB{:05}", 1 + n / 30);
        match station.link(&worker, &parent, &format!("F{n:05}")).await {
            Verdict::SavedOffline { .. } => kept += 1,
            other => {
                refusal = Some(other);
                break;
            }
        }
    }
    let refusal = refusal.expect("the outbox filled up");
    let Verdict::NotSaved { message } = &refusal else {
        panic!("{refusal:?}")
    };
    assert!(message.contains("NOT saved"), "{message}");
    assert_eq!(refusal.tone(), Tone::Error);
    assert!(kept > 20, "earlier scans fit: {kept}");

    site.server.resume().await;
    drained(&station, Duration::from_secs(20)).await;
    assert_eq!(
        site.admin.assert_invariants().await,
        kept as i64,
        "every kept scan arrived"
    );
}

traitortrack_tests::on_each_backend!(one_station_fills_a_parent);
traitortrack_tests::on_each_backend!(offline_scans_drain_when_the_server_returns);
traitortrack_tests::on_each_backend!(a_cut_connection_changes_nothing_on_resend);
traitortrack_tests::on_each_backend!(a_full_outbox_refuses_new_scans_and_keeps_the_earlier_ones);

async fn offline_login_and_local_verdicts(backend: Backend) {
    let Some(mut site) = site(backend).await else {
        return;
    };
    site.admin
        .add_user("sita", Role::Dispatcher, Some("north"))
        .await;
    let station = open_station(&site.server.base(), &site.key, None);
    let worker = ravi(&station).await;
    for i in 1..=30 {
        station.link(&worker, "SB00001", &format!("C{i:04}")).await;
    }
    assert!(matches!(
        station.login("ravi", "wrong password").await,
        Err(traitortrack_station_core::workers::LoginError::BadCredentials)
    ));
    site.server.stop();

    // Offline: a worker who logged in here before gets in; nobody else does.
    let again = station
        .login("RAVI", PASSWORD)
        .await
        .expect("offline login");
    assert!(!again.online);
    assert_eq!(again.dispatch_area.as_deref(), Some("north"));
    assert!(matches!(
        station.login("ravi", "wrong password").await,
        Err(traitortrack_station_core::workers::LoginError::BadCredentials)
    ));
    let never = station.login("sita", PASSWORD).await;
    assert!(
        matches!(&never, Err(traitortrack_station_core::workers::LoginError::NeverHere(n)) if n == "sita"),
        "{never:?}"
    );

    // The last known count refuses a full parent here; a child seen in
    // another parent is refused too; nothing of it is queued.
    let v = station.link(&again, "SB00001", "C0031").await;
    assert_eq!(
        v,
        Verdict::Refused {
            code: "parent_full".into(),
            message: "SB00001 is full: 30 of 30".into()
        }
    );
    let v = station.link(&again, "SB00002", "C0005").await;
    assert!(
        matches!(&v, Verdict::Refused { code, message } if code == "child_in_other_parent" && message.contains("SB00001")),
        "{v:?}"
    );
    assert_eq!(station.status().borrow().unsent, 0);

    // Scanned offline, refused by the server later: it waits for a worker.
    let v = station.link(&again, "SB00003", "SB00004").await;
    assert!(
        matches!(v, Verdict::Refused { .. }),
        "a parent code as a child is refused here: {v:?}"
    );
    let saved = station.link(&again, "SB00003", "C0031").await;
    assert!(matches!(saved, Verdict::SavedOffline { .. }), "{saved:?}");
    // Another station takes C0031 while this one is offline.
    let other = site.admin.station_with("dock-2", &["ravi"]).await;
    site.server.resume().await;
    let r = site
        .admin
        .event(&other, traitortrack_tests::link("ravi", "SB00009", "C0031"))
        .await;
    assert_eq!(r["status"], "applied", "{r}");
    drained(&station, Duration::from_secs(10)).await;
    let attention = station.needs_attention().await.expect("attention");
    assert_eq!(attention.len(), 1, "{attention:?}");
    assert_eq!(attention[0].code, "child_in_other_parent");
    assert!(
        attention[0].message.contains("SB00009"),
        "{}",
        attention[0].message
    );
    assert_eq!(station.status().borrow().needs_attention, 1);
    assert!(station.acknowledge(attention[0].id).await.expect("ack"));
    assert!(station
        .needs_attention()
        .await
        .expect("attention")
        .is_empty());
}
traitortrack_tests::on_each_backend!(offline_login_and_local_verdicts);

async fn the_scan_flow_opens_switches_and_remembers_parents(backend: Backend) {
    use traitortrack_station_core::flow::{FlowOutcome, ScanFlow};
    use traitortrack_station_core::scan::{Scan, ScanSource};
    let Some(site) = site(backend).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tt-flow-{}", uuid::Uuid::now_v7()));
    let config = StationConfig {
        server_url: site.server.base(),
        station_key: site.key.clone(),
        data_dir: dir.clone(),
        outbox_max_bytes: None,
        language: "en".into(),
        scanner: None,
        station_name: None,
    };
    let station = Station::open(&config, Sounds::silent()).expect("open");
    let worker = ravi(&station).await;
    let mut flow = ScanFlow::new(Arc::clone(&station)).await.expect("flow");
    let start = time::OffsetDateTime::now_utc();
    let mut t = 0i64;
    let mut scan = |code: &str| {
        t += 2; // two seconds apart: past the debounce window
        Scan {
            code: code.to_string(),
            source: ScanSource::Wedge,
            at: start + time::Duration::seconds(t),
        }
    };

    let out = flow.scan(&worker, &scan("C0001")).await;
    assert_eq!(
        out,
        FlowOutcome::NeedParent {
            code: "C0001".into()
        }
    );
    let out = flow.scan(&worker, &scan("sb00001")).await;
    assert!(
        matches!(&out, FlowOutcome::ParentOpened { parent } if parent.code == "SB00001" && parent.capacity == 30),
        "{out:?}"
    );
    let first = scan("C0001");
    let out = flow.scan(&worker, &first).await;
    assert!(
        matches!(
            &out,
            FlowOutcome::Child {
                verdict: Verdict::Applied { .. },
                ..
            }
        ),
        "{out:?}"
    );
    // The scanner's double read: the same code within 1.5 s is one scan.
    let again = Scan {
        at: first.at + time::Duration::milliseconds(300),
        ..first.clone()
    };
    assert_eq!(
        flow.scan(&worker, &again).await,
        FlowOutcome::Repeat {
            code: "C0001".into()
        }
    );

    // A parent scanned mid-way switches; its children go there.
    let out = flow.scan(&worker, &scan("M444-00001")).await;
    assert!(
        matches!(&out, FlowOutcome::ParentOpened { parent } if parent.capacity == 15),
        "{out:?}"
    );
    for i in 1..=15 {
        let out = flow.scan(&worker, &scan(&format!("K{i:04}"))).await;
        assert!(
            matches!(
                &out,
                FlowOutcome::Child {
                    verdict: Verdict::Applied { .. },
                    ..
                }
            ),
            "{i}: {out:?}"
        );
    }
    // Complete: the parent closes, the next child needs a parent again.
    assert_eq!(flow.open_parent(), None);
    let out = flow.scan(&worker, &scan("K0016")).await;
    assert_eq!(
        out,
        FlowOutcome::NeedParent {
            code: "K0016".into()
        }
    );
    let out = flow.scan(&worker, &scan("??")).await;
    assert!(matches!(out, FlowOutcome::NotACode { .. }), "{out:?}");

    // The open parent survives a restart of the station.
    flow.scan(&worker, &scan("SB00001")).await;
    drop(flow);
    station.shutdown();
    drop(station);
    let station = Station::open(&config, Sounds::silent()).expect("reopen");
    let flow = ScanFlow::new(Arc::clone(&station)).await.expect("flow");
    assert_eq!(flow.open_parent(), Some("SB00001"));
    let state = flow.open_parent_state().await.expect("state");
    assert_eq!(state.children, 1);
    assert_eq!(site.admin.children_of("M444-00001").await.len(), 15);
}
traitortrack_tests::on_each_backend!(the_scan_flow_opens_switches_and_remembers_parents);

/// The station's own report of itself, as the server stored it.
async fn stored_report(site: &Site, name: &str) -> traitortrack_server::stations::Registered {
    traitortrack_server::stations::list(&site.admin.db)
        .await
        .expect("list stations")
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no station {name}"))
}

async fn the_server_keeps_the_real_apps_version_and_queue(backend: Backend) {
    let Some(mut site) = site(backend).await else {
        return;
    };
    let station = open_station(&site.server.base(), &site.key, None);
    ravi(&station).await;
    let report = stored_report(&site, "dock-1").await;
    assert_eq!(
        report.app_version.as_deref(),
        Some(traitortrack_station_core::APP_VERSION)
    );
    assert_eq!(
        traitortrack_station_core::APP_VERSION,
        env!("CARGO_PKG_VERSION"),
        "the station reports the workspace's version"
    );
    assert_eq!(report.queue_depth, Some(0), "nothing waiting at login");

    // Offline: more than one batch piles up at the station.
    let worker = ravi(&station).await;
    site.server.stop();
    let queued = traitortrack_station_core::sync::BATCH + 120;
    for n in 0..queued {
        let parent = format!("SB{:05}", 100 + n / 25);
        let v = station.link(&worker, &parent, &format!("Q{n:05}")).await;
        assert!(matches!(v, Verdict::SavedOffline { .. }), "scan {n}: {v:?}");
    }
    assert_eq!(station.status().borrow().unsent, queued as u64);

    // Back online: the first batch says 120 more wait behind it, the last
    // that none do; both are stored at once (large, then emptied).
    site.server.resume().await;
    drained(&station, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = stored_report(&site, "dock-1").await;
        if report.queue_depth == Some(0) || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report.queue_depth, Some(0), "{report:?}");
    assert_eq!(
        report.queue_before,
        Some(120),
        "the depth reported mid-way: {report:?}"
    );
    assert_eq!(
        report.app_version.as_deref(),
        Some(traitortrack_station_core::APP_VERSION)
    );
    assert!(report.last_seen_at.is_some());
    assert_eq!(site.admin.assert_invariants().await, queued as i64);
}
traitortrack_tests::on_each_backend!(the_server_keeps_the_real_apps_version_and_queue);
