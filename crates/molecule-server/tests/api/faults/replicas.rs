//! The same promise with three replicas on one PostgreSQL database and one
//! Docker engine: faults seen by several replicas restart nothing, the
//! fleet breaker and the governor move with leadership, and the containers
//! of a replica killed with -9 are adopted (agents behind a load balancer).
//! On SQLite there is one process: the tests check the refusal and stop.

use super::*;

/// The index of the replica that governs restarts (leads the provisioner
/// task), once exactly one does and the others stand by.
async fn governor_of(replicas: &[crate::Replica]) -> usize {
    leader_of(replicas, PROVISIONER).await
}

/// The index of the replica that leads singleton `task`, once exactly one
/// does and the others stand by.
async fn leader_of(replicas: &[crate::Replica], task: &str) -> usize {
    let leads =
        |r: &crate::Replica| r.server.app.tasks().snapshot()[task].state.as_str() != "standby";
    crate::eventually(Duration::from_secs(10), || async {
        let leading: Vec<usize> = (0..replicas.len())
            .filter(|i| leads(&replicas[*i]))
            .collect();
        (leading.len() == 1).then(|| leading[0])
    })
    .await
    .unwrap_or_else(|| panic!("one replica leads {task}, the others stand by"))
}

/// An A2A `message/send` request carrying `text`.
fn message_send(text: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "message/send",
        "params": {"message": {"role": "user", "messageId": "m1",
                               "parts": [{"kind": "text", "text": text}]}}
    })
}

/// Three Docker-backed replicas on one database, every engine call through
/// `proxy`; `None` where they cannot run (SQLite is one process; outside
/// CI, no engine or image).
async fn three_through(
    proxy: &DockerFaultProxy,
    liveness_ttl: Duration,
) -> Option<[crate::Replica; 3]> {
    if !crate::lifecycle::docker_ready() {
        return None;
    }
    crate::replicas::three(through(proxy, liveness_ttl)).await
}

/// A Docker-backed replica's configuration, every engine call through
/// `proxy`.
fn through(
    proxy: &DockerFaultProxy,
    liveness_ttl: Duration,
) -> impl Fn(&mut molecule_server::config::Config) + Clone {
    let host = proxy.host();
    move |c| {
        crate::lifecycle::backend_config(Backend::Docker, c);
        c.docker_host = Some(host.clone());
        c.docker_call_timeout = CALL_TIMEOUT;
        c.liveness_ttl = liveness_ttl;
    }
}

/// The fault window of the three-replica run (shorter than the quality
/// bar's: the single-replica test in `faults` holds the 60 s).
const REPLICA_FAULT_WINDOW: Duration = Duration::from_secs(20);

/// Three replicas on one PostgreSQL database and one Docker engine, half of
/// every engine call failing transiently: no replica restarts anything
/// (the health sweep runs on one, restarts go through one governor, and an
/// unknown is unknown on every replica).
#[tokio::test]
async fn transient_faults_restart_nothing_across_three_replicas() {
    let proxy = proxy();
    let Some(replicas) = three_through(&proxy, Duration::from_secs(5)).await else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 4).await;
    // Every replica's events reach the third's /ws.
    let log = EventLog::start(&clients[2]).await;
    let (polls, counts, unknown) =
        online_through_transient_faults(&proxy, &clients, &ids, REPLICA_FAULT_WINDOW).await;
    eprintln!("three replicas: {polls} polls; proxy {counts:?}; {unknown} unknown inspects");
    assert!(counts.transient() > 0, "faults were injected: {counts:?}");
    assert!(
        unknown >= counts.transient() as f64,
        "{unknown} unknowns for {counts:?}"
    );
    for c in &clients {
        let metrics = c.metrics_text().await.unwrap();
        assert_eq!(counter(&metrics, "molecule_fleet_breaker_trips_total"), 0.0);
    }
    let bad = log.matching(disruptive);
    assert!(
        bad.is_empty(),
        "status changes under transient faults: {bad:?}"
    );
    let decisions = restart_decisions(&clients[1], &ids.0).await;
    assert!(decisions.is_empty(), "restart decisions: {decisions:?}");
    assert_all_online(&clients[1], &ids.0, "after the faults").await;

    delete_all(&clients[0], &ids).await;
    crate::replicas::shutdown_all(replicas).await;
    proxy.stop();
}

/// The fleet breaker is the fleet's, not one replica's: when the replica
/// whose health sweep tripped it and the one that governs restarts leave,
/// the replica that takes over both tasks (a third) keeps it open (no
/// restarts, no second trip) until its own sweeps see the containers
/// again.
#[tokio::test]
async fn the_fleet_breaker_stays_open_when_its_replicas_leave() {
    let proxy = proxy();
    // The agents heartbeat to the replica that started them, which leaves:
    // only the health sweep judges here.
    let Some(replicas) = three_through(&proxy, Duration::from_secs(600)).await else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 4).await;
    let sweeper = leader_of(&replicas, HEALTH_SWEEP).await;
    let governor = governor_of(&replicas).await;
    let survivor = (0..3).find(|i| *i != sweeper && *i != governor).unwrap();
    let log = EventLog::start(&clients[survivor]).await;

    vanish_three_of_four(&proxy, &ids).await;
    let tripped = log
        .wait_for("FLEET_BREAKER_TRIPPED", Duration::from_secs(15))
        .await
        .expect("the fleet breaker trips");
    assert_eq!(tripped.payload["gone"], 3, "{}", tripped.payload);
    // Every replica holds it open.
    let open = |r: &crate::Replica| r.server.app.breaker_open();
    crate::eventually(Duration::from_secs(5), || async {
        replicas.iter().all(open).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "breaker open on every replica: {:?}",
            replicas.iter().map(open).collect::<Vec<_>>()
        )
    });

    // The sweeper and the governor leave (with the third, if they are one
    // replica); the survivor takes both tasks.
    let mut replicas = replicas.map(Some);
    let last = replicas[survivor].take().unwrap();
    for r in replicas.into_iter().flatten() {
        r.shutdown().await.unwrap();
    }
    let leads = |task: &str| last.server.app.tasks().snapshot()[task].state.as_str() != "standby";
    crate::eventually(Duration::from_secs(10), || async {
        (leads(HEALTH_SWEEP) && leads(PROVISIONER)).then_some(())
    })
    .await
    .expect("the survivor sweeps and governs");
    crate::ticks(&last.server.app, HEALTH_SWEEP, 3).await;
    assert!(
        last.server.app.breaker_open(),
        "the breaker moved with the tasks"
    );
    let trips = log.matching(|e| e.event == "FLEET_BREAKER_TRIPPED");
    assert_eq!(
        trips.len(),
        1,
        "tripped again after the takeover: {trips:?}"
    );
    let survivor = &clients[survivor];
    assert_all_online(survivor, &ids.0, "breaker open after the takeover").await;
    let decisions = restart_decisions(survivor, &ids.0).await;
    assert!(decisions.is_empty(), "restart decisions: {decisions:?}");

    // The survivor's own sweeps close it once the containers are seen.
    assert!(
        proxy
            .wait_idle(Duration::from_millis(100), Duration::from_secs(10))
            .await
    );
    proxy.faults_off();
    log.wait_for("FLEET_BREAKER_RESET", Duration::from_secs(15))
        .await
        .expect("the survivor resets the breaker");
    crate::ticks(&last.server.app, HEALTH_SWEEP, 3).await;
    assert!(!last.server.app.breaker_open());
    let bad = log.matching(disruptive);
    assert!(bad.is_empty(), "status changes around the breaker: {bad:?}");
    assert_all_online(survivor, &ids.0, "after the reset").await;

    delete_all(survivor, &ids).await;
    last.shutdown().await.unwrap();
    proxy.stop();
}

/// A replica cut off from the database misses the breaker's reset; once
/// its listener listens again it asks, and the replica leading the health
/// sweep tells it: its governor does not hold restarts back for ever.
#[tokio::test]
async fn a_replica_that_missed_the_breakers_reset_learns_it_when_back() {
    let proxy = proxy();
    if !crate::lifecycle::docker_ready() {
        return;
    }
    let Some((replicas, relay)) =
        crate::replicas::three_one_cut_off(through(&proxy, Duration::from_secs(600))).await
    else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 4).await;
    let log = EventLog::start(&clients[0]).await;
    vanish_three_of_four(&proxy, &ids).await;
    log.wait_for("FLEET_BREAKER_TRIPPED", Duration::from_secs(15))
        .await
        .expect("the fleet breaker trips");
    let open = |r: &crate::Replica| r.server.app.breaker_open();
    crate::eventually(Duration::from_secs(5), || async {
        replicas.iter().all(open).then_some(())
    })
    .await
    .expect("breaker open on every replica");

    // B (the second) is cut off; A or C sweeps, sees the containers again
    // and resets the breaker while B cannot hear it.
    relay.cut();
    let [a, b, c] = replicas;
    let reachable = [a, c];
    leader_of(&reachable, HEALTH_SWEEP).await;
    assert!(
        proxy
            .wait_idle(Duration::from_millis(100), Duration::from_secs(10))
            .await
    );
    proxy.faults_off();
    log.wait_for("FLEET_BREAKER_RESET", Duration::from_secs(15))
        .await
        .expect("the breaker resets");
    crate::eventually(Duration::from_secs(5), || async {
        reachable.iter().all(|r| !open(r)).then_some(())
    })
    .await
    .expect("closed on A and C");
    assert!(open(&b), "B, cut off, missed the reset");

    relay.restore();
    crate::eventually(Duration::from_secs(15), || async {
        (!open(&b)).then_some(())
    })
    .await
    .expect("B learns the breaker is closed once it is back");
    let decisions = restart_decisions(&clients[1], &ids.0).await;
    assert!(decisions.is_empty(), "restart decisions: {decisions:?}");
    assert_all_online(&clients[1], &ids.0, "after the reset").await;

    delete_all(&clients[0], &ids).await;
    let [a, c] = reachable;
    crate::replicas::shutdown_all([a, b, c]).await;
    proxy.stop();
}

/// A TCP load balancer in front of the replicas, as an operator runs one:
/// each connection goes to the next backend that accepts it (round robin).
struct Balancer {
    url: String,
    backends: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listening on `ip` (an address the containers reach).
    async fn start(ip: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let backends: Arc<Mutex<Vec<String>>> = Arc::default();
        let list = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let candidates = list.lock().unwrap().clone();
                next += 1;
                let first = next;
                tokio::spawn(async move {
                    for i in 0..candidates.len() {
                        let addr = &candidates[(first + i) % candidates.len()];
                        let connect = tokio::net::TcpStream::connect(addr.as_str());
                        if let Ok(Ok(mut outbound)) =
                            tokio::time::timeout(Duration::from_secs(1), connect).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url,
            backends,
            task,
        }
    }

    fn serve(&self, urls: &[String]) {
        *self.backends.lock().unwrap() = urls
            .iter()
            .map(|u| u.trim_start_matches("http://").to_string())
            .collect();
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The host's address on Docker's default bridge (reachable from every
/// container network): the first address of its subnet, as Docker assigns
/// it when the gateway is not set explicitly.
fn docker_bridge_ip() -> String {
    let text = docker(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}|{{(index .IPAM.Config 0).Subnet}}",
    ]);
    let (gateway, subnet) = text.split_once('|').unwrap_or_default();
    if !gateway.is_empty() {
        return gateway.to_string();
    }
    let net: std::net::Ipv4Addr = subnet
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the bridge's subnet: {text}"));
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

/// `kill -9` of the replica that started the containers and governed their
/// restarts, with the agents' `PLATFORM_URL` on a load balancer in front of
/// three replicas: another replica takes over the restarts and adopts the
/// containers as they are (none restarted, none offline: the agents'
/// heartbeats reach the survivors through the balancer), the A2A proxy of
/// a survivor reaches them, and a later crash is restarted once by the new
/// governor.
#[tokio::test]
async fn a_dead_replicas_containers_are_adopted_behind_a_load_balancer() {
    if !crate::lifecycle::docker_ready() {
        return;
    }
    const TTL: Duration = Duration::from_secs(4);
    let (database, dir) = crate::fresh_database().await;
    let molecule_server::config::Database::Postgres(pg) = &database else {
        // SQLite is one process (the refusal is tested in `replicas`).
        return;
    };
    let balancer = Balancer::start(&docker_bridge_ip()).await;
    let data_dir = dir.unwrap_or_default();
    let ttl = TTL.as_secs().to_string();
    let crate::adversarial::activity::serve::Serve {
        child: mut first,
        url: first_url,
    } = crate::adversarial::activity::serve::serve(
        &data_dir.0,
        Some(pg),
        &[
            ("MOLECULE_PROVISIONER", "docker"),
            ("MOLECULE_AGENT_IMAGE", &crate::lifecycle::image()),
            ("PLATFORM_URL", &balancer.url),
            ("MOLECULE_AGENT_HEARTBEAT_SECONDS", "0.5"),
            ("MOLECULE_LIVENESS_TTL_SECONDS", &ttl),
        ],
    )
    .await;
    let first_client = Client::new(first_url.clone());
    // It leads every task (it started alone) before the others join.
    crate::eventually(Duration::from_secs(20), || async {
        let (s, v) = crate::call(
            &first_client,
            molecule_client::Method::GET,
            "/admin/liveness",
            None,
        )
        .await;
        (s == 200 && v["subsystems"][PROVISIONER]["last_tick_at"].is_string()).then_some(())
    })
    .await
    .expect("the first replica governs");
    let lb = balancer.url.clone();
    let tweak = move |c: &mut molecule_server::Config| {
        crate::lifecycle::backend_config(Backend::Docker, c);
        c.platform_url = Some(lb.clone());
        c.agent_heartbeat_every = Duration::from_millis(500);
        c.liveness_ttl = TTL;
    };
    let others = [
        crate::start_on(database.clone(), tweak.clone()).await,
        crate::start_on(database.clone(), tweak).await,
    ];
    balancer.serve(&[first_url, others[0].url(), others[1].url()]);
    let clients: Vec<Client> = others.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 2).await;
    let log = EventLog::start(&clients[1]).await;
    let before: Vec<String> = ids.0.iter().map(|id| container_id(*id)).collect();
    let standby = |r: &crate::Replica| {
        r.server.app.tasks().snapshot()[PROVISIONER].state.as_str() == "standby"
    };
    assert!(others.iter().all(standby), "the first replica started them");

    first.start_kill().expect("SIGKILL");
    let _ = first.wait().await;
    let governor = governor_of(&others).await;
    eprintln!("replica {governor} governs after the kill");
    // Three TTLs: every agent has moved to a survivor through the
    // balancer, or it would be judged.
    let until = Instant::now() + TTL * 3;
    while Instant::now() < until {
        assert_all_online(&clients[governor], &ids.0, "after the kill").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after: Vec<String> = ids.0.iter().map(|id| container_id(*id)).collect();
    assert_eq!(before, after, "the containers are adopted, not replaced");
    let bad = log.matching(disruptive);
    assert!(bad.is_empty(), "status changes after the kill: {bad:?}");
    // Not even a TTL expiry judged (and kept) a running container: the
    // heartbeats kept arriving.
    let judged = log.matching(|e| e.event == "WORKSPACE_RESTART_DECISION");
    assert!(judged.is_empty(), "heartbeats were missed: {judged:?}");

    let message = message_send("still there");
    let (status, body) = crate::call(
        &clients[1 - governor],
        molecule_client::Method::POST,
        &format!("/workspaces/{}/a2a", ids.0[1]),
        Some(message),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].is_object(), "{body}");

    // The new governor restarts a crash of an adopted container, once.
    let crashed = ids.0[0];
    docker_kill(crashed);
    let decision = log
        .wait_for("WORKSPACE_RESTART_DECISION", RECOVERY)
        .await
        .expect("a restart decision");
    assert_eq!(
        decision.payload["decision"], "restart",
        "{}",
        decision.payload
    );
    wait_status(&clients[0], crashed, WorkspaceStatus::Online, RECOVERY).await;
    assert_ne!(
        container_id(crashed),
        before[0],
        "restarted in a new container"
    );
    crate::ticks(&others[governor].server.app, HEALTH_SWEEP, 3).await;
    let decisions = restart_decisions(&clients[1], &ids.0).await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");

    delete_all(&clients[0], &ids).await;
    for r in others {
        r.shutdown().await.unwrap();
    }
    drop(data_dir);
}

/// Three replicas, one of which governs restarts (it leads the provisioner
/// task). A replica that does not govern finds a killed container (its A2A
/// proxy cannot reach the agent): it reports to the governor, which
/// restarts the workspace once.
#[tokio::test]
async fn a_kill_seen_by_another_replica_is_restarted_once_by_the_governor() {
    if !crate::lifecycle::docker_ready() {
        return;
    }
    let Some(replicas) = crate::replicas::three(|c| {
        crate::lifecycle::backend_config(Backend::Docker, c);
        // Only the proxy's reactive check will notice the kill.
        c.health_sweep_every = Duration::from_secs(600);
        c.liveness_ttl = Duration::from_secs(600);
    })
    .await
    else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 1).await;
    let id = ids.0[0];
    let log = EventLog::start(&clients[0]).await;
    let governor = governor_of(&replicas).await;
    let observer = (governor + 1) % 3;

    docker_kill(id);
    let message = message_send("hello");
    let (status, body) = crate::call(
        &clients[observer],
        molecule_client::Method::POST,
        &format!("/workspaces/{id}/a2a"),
        Some(message),
    )
    .await;
    eprintln!("A2A through a non-governing replica after the kill: {status} {body}");
    let decision = log
        .wait_for("WORKSPACE_RESTART_DECISION", RECOVERY)
        .await
        .expect("a restart decision");
    assert_eq!(
        decision.payload["decision"], "restart",
        "{}",
        decision.payload
    );
    assert!(
        decision.payload["reason"]
            .as_str()
            .unwrap_or("")
            .contains("agent unreachable"),
        "{}",
        decision.payload
    );
    wait_status(&clients[2], id, WorkspaceStatus::Online, RECOVERY).await;
    let decisions = restart_decisions(&clients[1], &ids.0).await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");

    delete_all(&clients[0], &ids).await;
    crate::replicas::shutdown_all(replicas).await;
}

/// An operator's restart on a replica that does not govern voids the
/// restart the governor had queued (with backoff) for the same workspace:
/// without that, the queued restart would fire later and restart the
/// healthy workspace a second time.
#[tokio::test]
async fn an_operator_restart_elsewhere_voids_the_governors_queued_restart() {
    if !crate::lifecycle::docker_ready() {
        return;
    }
    const BACKOFF: Duration = Duration::from_secs(4);
    let Some(replicas) = crate::replicas::three(|c| {
        crate::lifecycle::backend_config(Backend::Docker, c);
        c.governor.backoff_start = BACKOFF;
    })
    .await
    else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 1).await;
    let id = ids.0[0];
    let log = EventLog::start(&clients[0]).await;
    let governor = governor_of(&replicas).await;
    let operator = (governor + 1) % 3;
    let decisions = |n: usize| {
        let log = &log;
        async move {
            crate::eventually(RECOVERY, || async {
                let d = log.matching(|e| {
                    e.event == "WORKSPACE_RESTART_DECISION" && e.payload["decision"] == "restart"
                });
                (d.len() >= n).then(|| d[n - 1].clone())
            })
            .await
            .unwrap_or_else(|| panic!("restart decision {n}"))
        }
    };
    // A first crash is restarted at once…
    docker_kill(id);
    decisions(1).await;
    wait_status(&clients[1], id, WorkspaceStatus::Online, RECOVERY).await;
    // …a second one is queued with backoff on the governor.
    docker_kill(id);
    let queued = decisions(2).await;
    assert_eq!(
        queued.payload["delay_seconds"],
        BACKOFF.as_secs_f64(),
        "{}",
        queued.payload
    );
    act_as_operator(&clients[operator], id, "restart").await;
    let operated = chrono::Utc::now();
    wait_status(&clients[2], id, WorkspaceStatus::Online, RECOVERY).await;
    // Past the queued restart's due time, the governor's provisioner runs
    // again: nothing restarts the workspace a second time.
    let due = queued.timestamp + chrono::Duration::from_std(BACKOFF).unwrap();
    while chrono::Utc::now() < due {
        crate::ticks(&replicas[governor].server.app, PROVISIONER, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    crate::ticks(&replicas[governor].server.app, PROVISIONER, 3).await;
    crate::ticks(&replicas[governor].server.app, HEALTH_SWEEP, 3).await;
    let starts = log.matching(|e| e.event == "WORKSPACE_PROVISIONING" && e.timestamp >= operated);
    assert!(
        starts.is_empty(),
        "a second restart after the operator's: {starts:?}"
    );
    wait_status(&clients[0], id, WorkspaceStatus::Online, RECOVERY).await;

    delete_all(&clients[0], &ids).await;
    crate::replicas::shutdown_all(replicas).await;
}

/// An operator's restart taken by a replica that does not govern, whose
/// removal of the old container got no answer (here the engine never saw
/// it): the governor's start, on another replica, replaces the old
/// container, which still runs, instead of adopting it. (Regression: only
/// the replica that asked for the removal remembered the container as not
/// to be adopted, and the governor adopted it: the restart did nothing.)
#[tokio::test]
async fn a_restart_elsewhere_whose_removal_was_lost_does_not_adopt_the_old_container() {
    let proxy = proxy();
    let Some(replicas) = three_through(&proxy, Duration::from_secs(5)).await else {
        return;
    };
    let clients: Vec<Client> = replicas.iter().map(|r| Client::new(r.url())).collect();
    let ids = provision(&clients[0], 1).await;
    let governor = governor_of(&replicas).await;
    let operator = (governor + 1) % 3;
    restart_with_its_removal_lost(&proxy, &clients[operator], &clients[governor], ids.0[0]).await;

    delete_all(&clients[0], &ids).await;
    crate::replicas::shutdown_all(replicas).await;
    proxy.stop();
}
