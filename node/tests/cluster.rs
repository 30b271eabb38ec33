//! A 3-node cluster on 127.0.0.1 (replication factor 3, 3 partitions) under
//! load: a partition leader is killed with SIGKILL in the middle and
//! restarted; every instance acknowledged to the client completes, and no job
//! is completed twice. A node whose log tail is torn while it is down
//! recovers the lost committed entries from its peers before it votes, and
//! nothing acknowledged is missing. Replicas compare fingerprints of their
//! states throughout and find them equal; a replica configured with another
//! time zone computes other variables and marks itself diverged. A backup
//! taken under load restores, after every node and its data are gone, every
//! instance acknowledged before it and none created after it.

mod common;

use common::ONE_TASK;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{deeply_nested_deployment, free_port, http_get, http_request, run_waggle, wait_exit};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use node::routing::partition_of_key;
use tonic::transport::Channel;

const NODES: u32 = 3;
const INSTANCES: usize = 2_000;
/// Instances acknowledged before a leader is killed.
const KILL_AFTER: usize = 700;
/// Bound on each phase of the test.
const PHASE_LIMIT: Duration = Duration::from_secs(180);

struct Node {
    id: u32,
    config: PathBuf,
    dir: PathBuf,
    gateway_port: u16,
    management_port: u16,
    rest_port: u16,
    internal_port: u16,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join(format!("node-{}.log", self.id)))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_waggle"))
            .args(["broker", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start waggle broker");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling a child process we started, by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = wait_exit(&mut child);
        }
    }

    /// Stops the node with SIGTERM (a clean shutdown) and waits for it.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: signalling a child process we started, by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        Some(wait_exit(&mut child))
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    fn ready(&self) -> bool {
        matches!(http_get(self.management_port, "/ready"), Some((200, _)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{}.log", self.id))).unwrap_or_default()
    }

    /// Highest snapshot index stored for any partition of this node.
    fn newest_snapshot(&self) -> u64 {
        let mut newest = 0;
        for p in 1..=3 {
            let dir = self.dir.join(format!("data/partitions/{p}/snapshots"));
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(index) = name.split('-').next().and_then(|i| i.parse::<u64>().ok()) {
                    newest = newest.max(index);
                }
            }
        }
        newest
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cluster(root: &Path) -> Vec<Node> {
    cluster_with(root, |_| String::new())
}

/// A cluster whose node `id` has `extra(id)` at the end of its configuration.
fn cluster_with(root: &Path, extra: impl Fn(u32) -> String) -> Vec<Node> {
    cluster_of(root, NODES, 3, 3, extra)
}

/// A cluster of `size` nodes, `partitions` partitions of
/// `replication_factor` replicas.
fn cluster_of(
    root: &Path,
    size: u32,
    partitions: u32,
    replication_factor: u32,
    extra: impl Fn(u32) -> String,
) -> Vec<Node> {
    cluster_growing(root, size, size, partitions, replication_factor, extra)
}

/// [`cluster_of`] with `brokers` nodes: the ones beyond `size` have an
/// address in every node's contact points, for a cluster change to add.
fn cluster_growing(
    root: &Path,
    size: u32,
    brokers: u32,
    partitions: u32,
    replication_factor: u32,
    extra: impl Fn(u32) -> String,
) -> Vec<Node> {
    let nodes = brokers.to_string();
    let (ok, out, err) = run_waggle(
        root,
        &[
            "certs",
            "--dir",
            "certs",
            "--cluster-name",
            "test",
            "--nodes",
            &nodes,
        ],
        &[],
    );
    assert!(ok, "waggle certs: {err}");
    let certs: serde_json::Value = serde_json::from_str(&out).expect("certs JSON");
    let internal: Vec<u16> = (0..brokers).map(|_| free_port()).collect();
    let points: Vec<String> = internal
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    (0..brokers)
        .map(|id| {
            let dir = root.join(format!("node-{id}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            let (gateway_port, management_port, rest_port) =
                (free_port(), free_port(), free_port());
            let issued = &certs["issued"][id as usize];
            let config = format!(
                r#"
[cluster]
node_id = {id}
size = {size}
partitions = {partitions}
replication_factor = {replication_factor}
contact_points = [{points}]
name = "test"
heartbeat_interval_ms = 100
election_timeout_ms = 1000
state_check_entries = 20

[network]
host = "127.0.0.1"
gateway_port = {gateway_port}
internal_port = {internal}
management_port = {management_port}

[rest]
port = {rest_port}

[data]
directory = "data"
segment_size_bytes = 1048576
snapshot_period_ms = 1000
min_free_space_bytes = 0

[runtime]
shards = 1
pin_shards = false

[tls]
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
{extra}
"#,
                points = points.join(", "),
                internal = internal[id as usize],
                ca = root.join(certs["ca_file"].as_str().expect("ca")).display(),
                cert = root
                    .join(issued["cert_file"].as_str().expect("cert"))
                    .display(),
                key = root
                    .join(issued["key_file"].as_str().expect("key"))
                    .display(),
                extra = extra(id),
            );
            let path = dir.join("waggle.toml");
            std::fs::write(&path, config).expect("config");
            Node {
                id,
                config: path,
                dir,
                gateway_port,
                management_port,
                rest_port,
                internal_port: internal[id as usize],
                child: None,
            }
        })
        .collect()
}

/// The last lines of every node's log, for failure messages.
fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- node {} ---\n{}", n.id, tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_ready(nodes: &[&Node]) {
    let start = Instant::now();
    while !nodes.iter().all(|n| n.ready()) {
        if start.elapsed() > PHASE_LIMIT {
            for n in nodes {
                eprintln!("--- node {} ---\n{}", n.id, n.log());
            }
            panic!("cluster not ready within {PHASE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn leader_node(nodes: &[Node]) -> Option<u32> {
    for n in nodes {
        let Ok(mut c) = GatewayClient::connect(n.uri()).await else {
            continue;
        };
        let Ok(t) = c.topology(proto::TopologyRequest {}).await else {
            continue;
        };
        for b in t.into_inner().brokers {
            if b.node_id as u32 == n.id
                && b.partitions
                    .iter()
                    .any(|p| p.role == proto::partition::PartitionBrokerRole::Leader as i32)
            {
                return Some(n.id);
            }
        }
    }
    None
}

/// Whether `node`'s Topology shows `brokers` nodes and, for each of the 3
/// partitions, one leader and `replicas` healthy replicas (gossip).
async fn topology_complete(node: &Node, brokers: usize, replicas: usize) -> bool {
    let Ok(mut c) = GatewayClient::connect(node.uri()).await else {
        return false;
    };
    let Ok(t) = c.topology(proto::TopologyRequest {}).await else {
        return false;
    };
    let t = t.into_inner();
    let mut leaders = BTreeMap::new();
    let mut healthy = BTreeMap::new();
    for b in &t.brokers {
        for p in &b.partitions {
            if p.role == proto::partition::PartitionBrokerRole::Leader as i32 {
                *leaders.entry(p.partition_id).or_insert(0) += 1;
            }
            if p.health == proto::partition::PartitionBrokerHealth::Healthy as i32
                && p.role != proto::partition::PartitionBrokerRole::Inactive as i32
            {
                *healthy.entry(p.partition_id).or_insert(0) += 1;
            }
        }
    }
    t.brokers.len() == brokers
        && (1..=3).all(|p| leaders.get(&p) == Some(&1) && healthy.get(&p) == Some(&replicas))
}

/// Waits (bounded) until `node`'s Topology is complete.
fn wait_topology(rt: &tokio::runtime::Runtime, node: &Node, brokers: usize, replicas: usize) {
    let start = Instant::now();
    while !rt.block_on(topology_complete(node, brokers, replicas)) {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node {}'s topology never showed {brokers} brokers and {replicas} replicas per partition",
            node.id
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Activates and completes jobs through any live gateway; returns
/// (instance key → times its job was completed).
async fn work(clients: &mut [GatewayClient<Channel>], done: &mut BTreeMap<i64, u32>, round: usize) {
    let client = &mut clients[round % clients.len()];
    let Ok(response) = client
        .activate_jobs(proto::ActivateJobsRequest {
            r#type: "work".into(),
            worker: "w".into(),
            timeout: 5_000,
            max_jobs_to_activate: 200,
            request_timeout: -1,
            ..Default::default()
        })
        .await
    else {
        return;
    };
    let mut stream = response.into_inner();
    while let Ok(Some(batch)) = stream.message().await {
        for job in batch.jobs {
            let completed = client
                .complete_job(proto::CompleteJobRequest {
                    job_key: job.key,
                    variables: String::new(),
                    result: None,
                })
                .await;
            if completed.is_ok() {
                *done.entry(job.process_instance_key).or_default() += 1;
            }
        }
    }
}

/// Starts every node and waits until each is ready and sees the whole
/// cluster; returns the clients' runtime.
fn start_all(nodes: &mut [Node]) -> tokio::runtime::Runtime {
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let rt = client_runtime();
    for n in nodes.iter() {
        wait_topology(&rt, n, 3, 3);
    }
    rt
}

/// The tokio runtime of the test's clients.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Works jobs through every node's gateway until each instance of
/// `acknowledged` has had its job completed (bounded), and checks that no job
/// was completed twice.
fn complete_all(
    rt: &tokio::runtime::Runtime,
    nodes: &[Node],
    acknowledged: &BTreeSet<i64>,
    done: &mut BTreeMap<i64, u32>,
) {
    complete_all_but(rt, nodes, None, acknowledged, done);
}

/// [`complete_all`] through every node but `skip`.
fn complete_all_but(
    rt: &tokio::runtime::Runtime,
    nodes: &[Node],
    skip: Option<u32>,
    acknowledged: &BTreeSet<i64>,
    done: &mut BTreeMap<i64, u32>,
) {
    rt.block_on(async {
        let mut clients = connect_all(nodes, skip).await;
        let start = Instant::now();
        let mut round = 0;
        while !acknowledged.iter().all(|k| done.contains_key(k)) {
            let missing = acknowledged
                .iter()
                .filter(|k| !done.contains_key(k))
                .count();
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "{missing} acknowledged instances never got their job done\n{}",
                logs(nodes)
            );
            round += 1;
            work(&mut clients, done, round).await;
        }
    });
    let twice: Vec<_> = done.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs completed more than once: {twice:?}");
}

/// Creates an instance of `one_task`; its key once acknowledged.
async fn create_one(client: &mut GatewayClient<Channel>, round: usize) -> Option<i64> {
    let created = client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            variables: format!(r#"{{"n": {round}}}"#),
            ..Default::default()
        })
        .await;
    created.ok().map(|r| r.into_inner().process_instance_key)
}

/// Deploys [`ONE_TASK`] through `client`, retrying (bounded) until a leader
/// takes it.
async fn deploy_until_accepted(client: &mut GatewayClient<Channel>) {
    deploy_resource_until_accepted(client, "one_task.bpmn", ONE_TASK).await;
}

/// Deploys `content` as `name` through `client`, retrying (bounded) until a
/// leader takes it.
async fn deploy_resource_until_accepted(
    client: &mut GatewayClient<Channel>,
    name: &str,
    content: &str,
) {
    let start = Instant::now();
    loop {
        let deployed = client
            .deploy_resource(proto::DeployResourceRequest {
                resources: vec![proto::Resource {
                    name: name.into(),
                    content: content.as_bytes().to_vec(),
                }],
                tenant_id: String::new(),
            })
            .await;
        if deployed.is_ok() {
            return;
        }
        assert!(start.elapsed() < PHASE_LIMIT, "deploy: {deployed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connect_all(nodes: &[Node], skip: Option<u32>) -> Vec<GatewayClient<Channel>> {
    let mut clients = Vec::new();
    for n in nodes.iter().filter(|n| Some(n.id) != skip) {
        clients.push(GatewayClient::connect(n.uri()).await.expect("connect"));
    }
    clients
}

#[test]
fn a_killed_leader_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path());
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    // Garbage datagrams on every node's QUIC port are dropped; the nodes keep
    // serving (the load below runs across all of them).
    let garbage = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for n in &nodes {
        for size in [1usize, 17, 1200, 1500] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
            garbage
                .send_to(&bytes, ("127.0.0.1", n.internal_port))
                .expect("send garbage");
        }
    }
    let rt = client_runtime();
    // Every node sees the whole cluster.
    for n in &nodes {
        wait_topology(&rt, n, 3, 3);
    }
    // Every node's cluster configuration places the replicas alike.
    let placements: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            let (status, body) = http_get(n.management_port, "/actuator/cluster").expect("answer");
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let brokers = v["brokers"].as_array().expect("brokers").clone();
            let partitions: Vec<_> = brokers.iter().map(|b| b["partitions"].clone()).collect();
            serde_json::json!(partitions)
        })
        .collect();
    assert_eq!(placements[0].as_array().map(Vec::len), Some(3));
    assert!(
        placements.iter().all(|p| *p == placements[0]),
        "{placements:?}"
    );
    // Metrics of a cluster: certificate expiry and connected peers on every
    // node, and the leader's view of its followers (published every half
    // second).
    let start = Instant::now();
    loop {
        let scrapes: Vec<String> = nodes
            .iter()
            .map(|n| http_get(n.management_port, "/metrics").expect("metrics").1)
            .collect();
        let certs = scrapes.iter().all(|m| {
            m.contains("waggle_certificate_expiry_timestamp_seconds{certificate=\"node\"}")
                && m.contains("waggle_certificate_expiry_timestamp_seconds{certificate=\"ca-0\"}")
        });
        let lag = scrapes
            .iter()
            .any(|m| m.contains("waggle_raft_replication_lag_entries{partition=\"1\",follower="));
        let peers = scrapes.iter().enumerate().all(|(i, m)| {
            (0..3).filter(|p| *p != i).all(|p| {
                m.contains(&format!("waggle_peer_connected{{peer=\"{p}\"}} 1"))
                    && m.contains(&format!("waggle_peer_rtt_microseconds{{peer=\"{p}\"}}"))
            })
        });
        if certs && lag && peers {
            break;
        }
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "certificate or replication metrics missing:\n{}",
            scrapes.join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut acknowledged = BTreeSet::new();
    let mut done: BTreeMap<i64, u32> = BTreeMap::new();
    let mut killed: Option<(u32, u64)> = None;
    rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        deploy_until_accepted(&mut clients[0]).await;
        // Deployment reaches every partition before instances are created
        // round-robin.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let start = Instant::now();
        let mut round = 0;
        while acknowledged.len() < INSTANCES {
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "only {} instances created\n{}",
                acknowledged.len(),
                logs(&nodes)
            );
            round += 1;
            let count = clients.len();
            acknowledged.extend(create_one(&mut clients[round % count], round).await);
            if round % 50 == 0 {
                work(&mut clients, &mut done, round).await;
            }
            if killed.is_none() && acknowledged.len() >= KILL_AFTER {
                let victim = leader_node(&nodes)
                    .await
                    .expect("some node leads a partition");
                let node = &mut nodes[victim as usize];
                let snapshot_before = node.newest_snapshot();
                node.kill();
                killed = Some((victim, snapshot_before));
                clients = connect_all(&nodes, Some(victim)).await;
            }
        }
    });
    let (victim, snapshot_before) = killed.expect("a leader was killed");
    // The killed node drops out of the others' topology; every partition
    // still has a leader.
    let survivor = &nodes[(victim as usize + 1) % nodes.len()];
    wait_topology(&rt, survivor, 2, 2);
    nodes[victim as usize].start();
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    complete_all(&rt, &nodes, &acknowledged, &mut done);
    // The restarted node caught up past the snapshot it had (installed from
    // the leader or taken after replaying what it was sent).
    let start = Instant::now();
    while nodes[victim as usize].newest_snapshot() <= snapshot_before {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node {victim} took no snapshot after catching up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // It is back in everyone's topology with every replica healthy.
    for n in &nodes {
        wait_topology(&rt, n, 3, 3);
    }
    // Through the load, the kill and the catching up, every replica's state
    // was compared with its peers' and always agreed.
    for n in &nodes {
        for p in 1..=3 {
            let checks = state_checks(n, p);
            assert!(
                checks.compared > 0 && checks.mismatches == 0 && !checks.diverged,
                "node {} partition {p}: {checks:?}\n{}",
                n.id,
                logs(&nodes)
            );
        }
    }
    // SIGTERM on a leader: it hands its partitions over and exits 0.
    let leader = rt.block_on(leader_node(&nodes)).expect("some node leads");
    let node = &mut nodes[leader as usize];
    let mut child = node.child.take().expect("running");
    // SAFETY: signalling a child process we started, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    assert!(
        node.log().contains("handing leadership of partition over"),
        "{}",
        node.log()
    );
    for n in nodes.iter_mut() {
        n.kill();
    }
}

/// Which node leads `partition`, as the nodes themselves say.
async fn leader_of(nodes: &[Node], partition: i32) -> Option<u32> {
    for n in nodes {
        if leads(n, partition).await {
            return Some(n.id);
        }
    }
    None
}

#[test]
fn commands_forwarded_to_a_frozen_leader_fail_over_to_the_new_leader() {
    /// Creates sent while the leader is frozen (round-robin over the
    /// partitions, so several go to the frozen leader's).
    const WHILE_FROZEN: usize = 12;
    let root = tempfile::tempdir().expect("temp dir");
    // A request timeout far above the failover: a command that waited for
    // the frozen leader until its deadline fails with DEADLINE_EXCEEDED.
    let mut nodes = cluster_with(root.path(), |_| {
        "[gateway]\nrequest_timeout_ms = 120000\n".to_string()
    });
    let rt = start_all(&mut nodes);
    let mut acknowledged = BTreeSet::new();
    let victim = rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        deploy_until_accepted(&mut clients[0]).await;
        let start = Instant::now();
        loop {
            let victim = leader_of(&nodes, 1)
                .await
                .expect("partition 1 has a leader");
            // The gateway of another node learns the leaders by forwarding.
            let gateway = (victim as usize + 1) % nodes.len();
            for round in 0..6 {
                acknowledged.extend(create_one(&mut clients[gateway], round).await);
            }
            if acknowledged.len() >= 6 && leader_of(&nodes, 1).await == Some(victim) {
                return victim;
            }
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "no stable leader of partition 1"
            );
        }
    });
    let frozen = nodes[victim as usize].child.as_ref().expect("running").id();
    // SAFETY: signalling a child process we started, by its pid.
    unsafe { libc::kill(frozen as i32, libc::SIGSTOP) };
    // The frozen node's connections stay up until the peer timeout: the
    // gateway forwards to it, and its commands must move to the new leader
    // without waiting for their deadline.
    let gateway = &nodes[(victim as usize + 1) % nodes.len()];
    let results = rt.block_on(async {
        let client = GatewayClient::connect(gateway.uri())
            .await
            .expect("connect");
        let creates: Vec<_> = (0..WHILE_FROZEN)
            .map(|round| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    client
                        .create_process_instance(proto::CreateProcessInstanceRequest {
                            bpmn_process_id: "one_task".into(),
                            version: -1,
                            variables: format!(r#"{{"n": {}}}"#, 1000 + round),
                            ..Default::default()
                        })
                        .await
                        .map(|r| r.into_inner().process_instance_key)
                })
            })
            .collect();
        let mut results = Vec::new();
        for create in creates {
            results.push(create.await.expect("the create task ran"));
        }
        results
    });
    // SAFETY: as above.
    unsafe { libc::kill(frozen as i32, libc::SIGCONT) };
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "commands sent while node {victim} was frozen failed: {failed:?}\n{}",
        logs(&nodes)
    );
    acknowledged.extend(results.into_iter().flatten());
    assert!(
        rt.block_on(leader_of(&nodes, 1)).is_some(),
        "partition 1 has a leader again"
    );
    // The thawed node rejoins, and every acknowledged instance completes.
    for n in &nodes {
        wait_topology(&rt, n, 3, 3);
    }
    let mut done = BTreeMap::new();
    complete_all(&rt, &nodes, &acknowledged, &mut done);
}

/// The sum of `name`'s samples with `labels` on `node`.
fn metric(node: &Node, name: &str, labels: &str) -> f64 {
    let (_, text) = http_get(node.management_port, "/metrics").expect("metrics");
    common::metric_sum(&text, name, labels)
}

#[test]
fn jobs_are_pushed_across_nodes_and_given_back_when_the_worker_node_dies() {
    /// Far beyond the test: only a given-back job is activatable again.
    const STREAM_JOB_TIMEOUT_MS: i64 = 600_000;
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path());
    let rt = start_all(&mut nodes);
    let worker_node = 2;
    let (mut stream, clients) = rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        deploy_until_accepted(&mut clients[0]).await;
        let stream = clients[worker_node]
            .stream_activated_jobs(proto::StreamActivatedJobsRequest {
                r#type: "work".into(),
                worker: "pushed".into(),
                timeout: STREAM_JOB_TIMEOUT_MS,
                ..Default::default()
            })
            .await
            .expect("open stream")
            .into_inner();
        (stream, clients)
    });
    // Registered on every partition, on every replica.
    let start = Instant::now();
    while !nodes
        .iter()
        .all(|n| metric(n, "waggle_job_streams", "") == 3.0)
    {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "stream not registered\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let batches_before: f64 = nodes
        .iter()
        .map(|n| metric(n, "waggle_commands_processed_total", r#"kind="JOB_BATCH""#))
        .sum();
    // Created through node 0: the partitions' leaders push to node 2.
    let created = rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[0].uri())
            .await
            .expect("connect");
        let mut created = BTreeSet::new();
        for round in 0..6 {
            created.insert(create_one(&mut client, round).await.expect("created"));
        }
        created
    });
    let received = rt.block_on(async {
        let mut received = BTreeSet::new();
        while received.len() < created.len() {
            let job = tokio::time::timeout(PHASE_LIMIT, stream.message())
                .await
                .expect("a pushed job arrives")
                .expect("stream open")
                .expect("a job");
            assert_eq!(job.worker, "pushed");
            received.insert(job.process_instance_key);
        }
        received
    });
    assert_eq!(received, created);
    let batches_after: f64 = nodes
        .iter()
        .map(|n| metric(n, "waggle_commands_processed_total", r#"kind="JOB_BATCH""#))
        .sum();
    assert_eq!(
        batches_after, batches_before,
        "pushed without activation commands"
    );
    drop(clients);
    // The worker's node dies with its stream registered: the jobs pushed
    // to it now are given back, and a poller on another node gets them long
    // before their activation would time out.
    nodes[worker_node].kill();
    let start = Instant::now();
    while !rt.block_on(async {
        let Ok(mut c) = GatewayClient::connect(nodes[0].uri()).await else {
            return false;
        };
        c.topology(proto::TopologyRequest {})
            .await
            .is_ok_and(|t| t.into_inner().brokers.len() == 2)
    }) {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node {worker_node} still in the topology"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut after_death = BTreeSet::new();
    rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[0].uri())
            .await
            .expect("connect");
        let start = Instant::now();
        while after_death.len() < 3 {
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "no leaders without node {worker_node}"
            );
            after_death.extend(create_one(&mut client, 100 + after_death.len()).await);
        }
    });
    let mut done = BTreeMap::new();
    complete_all(&rt, &nodes[..worker_node], &after_death, &mut done);
    let streams_left: f64 = nodes[..worker_node]
        .iter()
        .map(|n| metric(n, "waggle_job_streams", ""))
        .sum();
    assert!(
        streams_left < 6.0,
        "the dead node's stream is removed where a push failed ({streams_left} left)"
    );
}

/// Whether `node` says it leads `partition`.
async fn leads(node: &Node, partition: i32) -> bool {
    let Ok(mut c) = GatewayClient::connect(node.uri()).await else {
        return false;
    };
    let Ok(t) = c.topology(proto::TopologyRequest {}).await else {
        return false;
    };
    t.into_inner().brokers.iter().any(|b| {
        b.node_id as u32 == node.id
            && b.partitions.iter().any(|p| {
                p.partition_id == partition
                    && p.role == proto::partition::PartitionBrokerRole::Leader as i32
            })
    })
}

#[test]
fn a_replica_with_a_torn_log_tail_recovers_the_lost_entries_from_its_peers() {
    /// Instances acknowledged before node 0's log is torn.
    const TORN_INSTANCES: usize = 300;
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path());
    let rt = start_all(&mut nodes);
    let mut acknowledged = BTreeSet::new();
    rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        deploy_until_accepted(&mut clients[0]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        let mut round = 0;
        while acknowledged.len() < TORN_INSTANCES {
            assert!(start.elapsed() < PHASE_LIMIT, "instances not created");
            round += 1;
            let count = clients.len();
            acknowledged.extend(create_one(&mut clients[round % count], round).await);
        }
    });
    // Node 0 (the preferred leader of partition 1) stops cleanly, and the
    // tail of its partition 1 log is torn while it is down.
    let victim = &mut nodes[0];
    let mut child = victim.child.take().expect("running");
    assert!(common::terminate_child(&mut child).success());
    let torn = common::tear_log_tail(&victim.dir.join("data/partitions/1/log"), 600);
    victim.start();
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let start = Instant::now();
    while !nodes[0]
        .log()
        .contains("recovered from the other replicas; voting again")
    {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node 0 never recovered its lost entries\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = nodes[0].log();
    let tail_warning = log
        .lines()
        .find(|l| l.contains("torn or damaged log tail"))
        .unwrap_or_else(|| panic!("no tail warning:\n{log}"));
    assert!(
        tail_warning.contains("WARN")
            && tail_warning.contains(&torn.segment.display().to_string())
            && tail_warning.contains(&format!("offset {}", torn.frame_offset)),
        "{tail_warning}\n{torn:?}"
    );
    let lost = log
        .lines()
        .find(|l| l.contains("committed entries are lost here; recovering them"))
        .unwrap_or_else(|| panic!("no loss warning:\n{log}"));
    assert!(
        lost.contains("WARN") && lost.contains(&format!("ends at index {}", torn.last_kept_index)),
        "{lost}"
    );
    // Caught up, node 0 leads partition 1 again (priority election), so the
    // jobs of partition 1 are served from its state.
    let start = Instant::now();
    while !rt.block_on(leads(&nodes[0], 1)) {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node 0 never led partition 1 again\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    complete_all(&rt, &nodes, &acknowledged, &mut BTreeMap::new());
    let (_, metrics) = http_get(nodes[0].management_port, "/metrics").expect("metrics");
    assert!(
        metrics.contains("waggle_log_entries_recovering{partition=\"1\"} 0")
            && !metrics.contains("waggle_log_tail_frames_dropped_total{partition=\"1\"} 0"),
        "{metrics}"
    );
    for n in nodes.iter_mut() {
        n.kill();
    }
}

/// Retries `deploy` (bounded) while the cluster is still electing leaders.
async fn deploy_when_led(
    client: &mut GatewayClient<Channel>,
    request: proto::DeployResourceRequest,
) -> Result<proto::DeployResourceResponse, tonic::Status> {
    let start = Instant::now();
    loop {
        match client.deploy_resource(request.clone()).await {
            Err(status) if status.code() == tonic::Code::Unavailable => {
                assert!(start.elapsed() < PHASE_LIMIT, "deploy: {status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.map(|r| r.into_inner()),
        }
    }
}

#[test]
fn a_deeply_nested_deployment_is_rejected_and_the_cluster_serves_on() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path());
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let create = |uri: String| async move {
        let mut client = GatewayClient::connect(uri).await.expect("connect");
        let start = Instant::now();
        loop {
            match client
                .create_process_instance(proto::CreateProcessInstanceRequest {
                    bpmn_process_id: "one_task".into(),
                    version: -1,
                    ..Default::default()
                })
                .await
            {
                Ok(r) => return r.into_inner().process_instance_key,
                Err(status) => assert!(start.elapsed() < PHASE_LIMIT, "create: {status:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[0].uri())
            .await
            .expect("connect");
        let error = deploy_when_led(&mut client, deeply_nested_deployment(100_000))
            .await
            .expect_err("too deep");
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        assert!(error.message().contains("levels deep"), "{error:?}");
        let one_task = proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: "one_task.bpmn".into(),
                content: ONE_TASK.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        };
        deploy_when_led(&mut client, one_task)
            .await
            .expect("deploy after the rejection");
        create(nodes[1].uri()).await;
    });
    // Every replica processed the rejected deployment and serves on.
    assert!(nodes.iter().all(|n| n.ready()), "{}", logs(&nodes));
    let status = nodes[2].stop().expect("running");
    assert!(status.success(), "clean stop: {status:?}");
    nodes[2].start();
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    rt.block_on(create(nodes[2].uri()));
    for n in &nodes {
        assert!(!n.log().contains("overflowed"), "{}", logs(&nodes));
    }
}

/// What a node's metrics say of its state checks of a partition.
#[derive(Debug)]
struct StateChecks {
    compared: u64,
    mismatches: u64,
    diverged: bool,
}

fn state_checks(node: &Node, partition: u32) -> StateChecks {
    let (_, metrics) = http_get(node.management_port, "/metrics").expect("metrics");
    let value = |family: &str| -> u64 {
        let series = format!("{family}{{partition=\"{partition}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    StateChecks {
        compared: value("waggle_state_fingerprints_compared"),
        mismatches: value("waggle_state_fingerprint_mismatches"),
        diverged: value("waggle_state_diverged") == 1,
    }
}

/// A task whose input mapping holds the current time as text: in the
/// configured time zone, so a replica with another zone keeps another
/// variable than its peers.
const CLOCKED_TASK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="clocked" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="clocked"/>
        <zeebe:ioMapping><zeebe:input source="=string(now())" target="at"/></zeebe:ioMapping>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"#;

#[test]
fn a_replica_whose_state_differs_from_the_majority_marks_itself_diverged() {
    let root = tempfile::tempdir().expect("temp dir");
    // Node 2 evaluates FEEL in another time zone than nodes 0 and 1: a
    // configuration error that makes its state differ.
    let mut nodes = cluster_with(root.path(), |id| {
        if id == 2 {
            "[engine]\ntime_zone = \"Asia/Tokyo\"\n".to_string()
        } else {
            String::new()
        }
    });
    let rt = start_all(&mut nodes);
    rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[0].uri())
            .await
            .expect("connect");
        let clocked = proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: "clocked.bpmn".into(),
                content: CLOCKED_TASK.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        };
        deploy_when_led(&mut client, clocked).await.expect("deploy");
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Instances on every partition (the gateway spreads them), and enough
        // entries for checkpoints after them.
        let start = Instant::now();
        let mut created = 0;
        while created < 60 {
            assert!(start.elapsed() < PHASE_LIMIT, "instances not created");
            let request = proto::CreateProcessInstanceRequest {
                bpmn_process_id: "clocked".into(),
                version: -1,
                ..Default::default()
            };
            if client.create_process_instance(request).await.is_ok() {
                created += 1;
            }
        }
    });
    // Node 2 is outvoted on some partition and says so; nodes 0 and 1 only
    // see mismatches and stay healthy.
    let start = Instant::now();
    while !(1..=3).any(|p| state_checks(&nodes[2], p).diverged) {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "node 2 never noticed that it diverged\n{}",
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let diverged: Vec<u32> = (1..=3)
        .filter(|p| state_checks(&nodes[2], *p).diverged)
        .collect();
    let (status, health) = http_get(nodes[2].management_port, "/health").expect("health");
    assert_eq!(status, 503, "{health}");
    for p in &diverged {
        assert!(
            health.contains(&format!("partition {p}: replica state diverged")),
            "{health}"
        );
    }
    let log = nodes[2].log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("replica state diverged")),
        "{log}"
    );
    for n in &nodes[..2] {
        for p in 1..=3 {
            assert!(!state_checks(n, p).diverged, "node {} partition {p}", n.id);
        }
        // Node 2's checkpoints reach them in its next gossip rounds.
        let start = Instant::now();
        while !(1..=3).any(|p| state_checks(n, p).mismatches > 0) {
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "node {} saw no mismatch",
                n.id
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let (status, health) = http_get(n.management_port, "/health").expect("health");
        assert_eq!(status, 200, "node {}: {health}", n.id);
    }
    for n in nodes.iter_mut() {
        n.kill();
    }
}

/// State of backup `id` as node `node` reports it.
fn backup_state(node: &Node, id: u64) -> String {
    let path = format!("/actuator/backupRuntime/{id}");
    let (_, body) = http_request(node.management_port, "GET", &path, "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["state"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_cluster_backed_up_under_load_is_restored_with_everything_acknowledged_before() {
    let root = tempfile::tempdir().expect("temp dir");
    // One store every node writes: a shared mount in production.
    let store = root.path().join("backups");
    let mut nodes = cluster_with(root.path(), |_| {
        format!("[backup]\ndirectory = \"{}\"\n", store.display())
    });
    let rt = start_all(&mut nodes);
    let before: BTreeSet<i64> = rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        deploy_until_accepted(&mut clients[0]).await;
        let mut keys = BTreeSet::new();
        for round in 0..60 {
            let count = clients.len();
            keys.extend(create_one(&mut clients[round % count], round).await);
        }
        keys
    });
    assert!(before.len() >= 50, "only {} created", before.len());
    // Load through another node while the backup is taken.
    let uri = nodes[2].uri();
    let load = std::thread::spawn(move || {
        client_runtime().block_on(async {
            let mut client = GatewayClient::connect(uri).await.expect("connect");
            for round in 0..60 {
                let _ = create_one(&mut client, 1_000 + round).await;
            }
        })
    });
    let body = r#"{"backupId": 3}"#;
    let (code, answer) = http_request(nodes[1].management_port, "POST", "/actuator/backups", body);
    assert_eq!(code, 202, "{answer}\n{}", logs(&nodes));
    load.join().expect("load");
    let start = Instant::now();
    while backup_state(&nodes[0], 3) != "COMPLETED" {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "backup 3: {}",
            backup_state(&nodes[0], 3)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after: BTreeSet<i64> = rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        let mut keys = BTreeSet::new();
        for round in 0..30 {
            let count = clients.len();
            keys.extend(create_one(&mut clients[round % count], 2_000 + round).await);
        }
        keys
    });

    // The cluster is lost: every node killed, every partition's data gone.
    for n in nodes.iter_mut() {
        n.kill();
        std::fs::remove_dir_all(n.dir.join("data/partitions")).expect("destroy");
    }
    for n in &nodes {
        let config = n.config.display().to_string();
        let args = ["restore", "--config", &config, "--backup-id", "3"];
        let (ok, out, err) = run_waggle(&n.dir, &args, &[]);
        assert!(ok, "restore on node {}: {out}{err}", n.id);
        assert_eq!(out.matches("restored backup 3").count(), 3, "{out}");
    }
    drop(rt);
    let rt = start_all(&mut nodes);
    let mut done = BTreeMap::new();
    complete_all(&rt, &nodes, &before, &mut done);
    // A few more rounds: nothing created after the backup comes back.
    rt.block_on(async {
        let mut clients = connect_all(&nodes, None).await;
        for round in 0..6 {
            work(&mut clients, &mut done, round).await;
        }
    });
    let newer: Vec<_> = after.iter().filter(|k| done.contains_key(k)).collect();
    assert!(
        newer.is_empty(),
        "created after the backup, restored: {newer:?}"
    );
}

#[test]
fn users_roles_and_authorizations_reach_every_node() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster_with(root.path(), |_| {
        "[security]\nauthentication = \"basic\"\ninitial_user = \"demo:demo\"\n".to_string()
    });
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let basic = |name: &str, password: &str| {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Authorization: Basic {encoded}\r\n")
    };
    let (demo, bob) = (basic("demo", "demo"), basic("bob", "builder"));
    let call = |node: &Node, method: &str, path: &str, auth: &str, body: &str| {
        common::http_request_with(node.rest_port, method, path, auth, body).0
    };
    let eventually = |what: &str, check: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < PHASE_LIMIT, "{what}\n{}", logs(&nodes));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The set-up (by whichever node got there first) reaches every node.
    for node in &nodes {
        eventually("demo is an admin on every node", &|| {
            common::http_request_with(node.management_port, "GET", "/incidents", &demo, "").0 == 200
        });
    }
    // A user made through node 1, a role given through node 2, used on node 0.
    let created = call(
        &nodes[1],
        "POST",
        "/v2/users",
        &demo,
        r#"{"username":"bob","password":"builder"}"#,
    );
    assert_eq!(created, 201, "{}", logs(&nodes));
    eventually("bob reaches node 2", &|| {
        call(&nodes[2], "GET", "/v2/topology", &bob, "") == 200
    });
    assert_eq!(call(&nodes[0], "POST", "/v2/users/search", &bob, "{}"), 403);
    assert_eq!(
        call(
            &nodes[2],
            "PUT",
            "/v2/roles/readonly-admin/users/bob",
            &demo,
            ""
        ),
        204
    );
    eventually("bob reads on node 0", &|| {
        call(&nodes[0], "POST", "/v2/users/search", &bob, "{}") == 200
    });
    // gRPC through every node: anonymous refused, demo served.
    let rt = client_runtime();
    rt.block_on(async {
        for node in &nodes {
            let mut anonymous = GatewayClient::connect(node.uri()).await.expect("connect");
            let refused = anonymous
                .topology(proto::TopologyRequest {})
                .await
                .expect_err("anonymous");
            assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        }
    });
    for n in nodes.iter_mut() {
        n.stop();
    }
}

#[test]
fn a_region_lost_for_good_is_failed_over_and_back_without_losing_anything() {
    // Two regions of two brokers, every partition on all four: a quorum (3
    // of 4) always holds a replica in each region. West is the primary
    // region: its brokers lead.
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster_of(root.path(), 4, 2, 4, |_| String::new());
    for n in nodes.iter_mut() {
        let config = std::fs::read_to_string(&n.config).expect("config");
        let regions = "regions = [\"east\", \"west\", \"east\", \"west\"]";
        let config = config.replacen(
            "[cluster]\n",
            &format!("[cluster]\n{regions}\nprimary_region = \"west\"\n"),
            1,
        );
        std::fs::write(&n.config, config).expect("config");
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let rt = client_runtime();
    wait_leaders_in(&rt, &nodes, 2, &[1, 3]);
    let mut acknowledged = deploy_and_create(&rt, &nodes[0], 200);

    // The primary region (brokers 1 and 3) is lost: no quorum is left.
    nodes[1].kill();
    nodes[3].kill();
    let lost = rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[2].uri())
            .await
            .expect("connect");
        tokio::time::timeout(Duration::from_secs(5), create_one(&mut client, 0)).await
    });
    assert!(
        !matches!(lost, Ok(Some(_))),
        "acknowledged without a quorum"
    );

    // The operator's failover.
    let change_id = patch_cluster(&nodes[0], "?force=true", r#"{"brokers":{"remove":[1,3]}}"#);
    wait_change(&nodes, &[0, 2], &change_id, &[0, 2], &[2, 2]);

    // Processing resumes on the survivors, and every instance acknowledged
    // before the loss is still there: its job is worked.
    rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[2].uri())
            .await
            .expect("connect");
        let start = Instant::now();
        let mut after = 0;
        while after < 50 {
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "creations after the failover\n{}",
                logs(&nodes)
            );
            if let Some(key) = create_one(&mut client, after).await {
                acknowledged.insert(key);
                after += 1;
            }
        }
    });

    // The failback: the lost region comes back on empty disks. Its brokers
    // take the configuration from the survivors (they are not members, and
    // open no partition), then are added back at replication factor 4.
    for i in [1usize, 3] {
        std::fs::remove_dir_all(nodes[i].dir.join("data")).expect("wipe the lost disk");
        nodes[i].start();
    }
    wait_ready(&[&nodes[1], &nodes[3]]);
    for i in [1usize, 3] {
        let v = cluster_api(&nodes[i]).expect("the cluster API answers");
        assert_eq!(
            broker_ids(&v),
            [0, 2],
            "a recreated broker takes the survivors' configuration"
        );
    }
    // Through the CLI, which waits for the change to complete.
    let address = format!("http://127.0.0.1:{}", nodes[0].management_port);
    let args = [
        "cluster",
        "--management-address",
        &address,
        "add",
        "1",
        "3",
        "--replication-factor",
        "4",
        "--wait",
    ];
    let (ok, out, err) = run_waggle(root.path(), &args, &[]);
    assert!(ok, "waggle cluster add: {err}\n{}", logs(&nodes));
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["lastChange"]["status"], "COMPLETED", "{out}");
    // Each rejoining replica was fenced where its partition's leader stood.
    for i in [1usize, 3] {
        let log = nodes[i].log();
        assert!(
            log.contains("it votes only for candidates holding entry"),
            "broker {i} joined without a fence:\n{}",
            logs(&nodes)
        );
    }
    wait_change(
        &nodes,
        &[0, 1, 2, 3],
        &shown["lastChange"]["id"],
        &[0, 1, 2, 3],
        &[2, 2, 2, 2],
    );
    // The rejoined brokers have the primary region's priorities again, and
    // lead once caught up.
    wait_leaders_in(&rt, &nodes, 2, &[1, 3]);

    // Every partition has four voters again: with broker 2 gone, a quorum
    // needs both rejoined brokers, which must hold everything acknowledged.
    nodes[2].kill();
    complete_all_but(&rt, &nodes, Some(2), &acknowledged, &mut BTreeMap::new());
    // A broker restarts with the changed configuration it stored, whatever
    // [cluster] says.
    nodes[2].start();
    wait_ready(&[&nodes[2]]);
    let v = cluster_api(&nodes[2]).expect("the cluster API answers");
    assert_eq!(broker_ids(&v), [0, 1, 2, 3]);
}

/// Waits (bounded) until each of partitions `1..=partitions` is led by one
/// of `brokers`.
fn wait_leaders_in(rt: &tokio::runtime::Runtime, nodes: &[Node], partitions: i32, brokers: &[u32]) {
    let start = Instant::now();
    rt.block_on(async {
        loop {
            let mut leaders = Vec::new();
            for p in 1..=partitions {
                leaders.push(leader_of(nodes, p).await);
            }
            if leaders
                .iter()
                .all(|l| l.is_some_and(|l| brokers.contains(&l)))
            {
                return;
            }
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "partitions led by {leaders:?}, not by brokers {brokers:?}\n{}",
                logs(nodes)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Deploys one_task through `node` and creates `count` acknowledged
/// instances there; their keys.
fn deploy_and_create(rt: &tokio::runtime::Runtime, node: &Node, count: usize) -> BTreeSet<i64> {
    let mut acknowledged = BTreeSet::new();
    rt.block_on(async {
        let mut client = GatewayClient::connect(node.uri()).await.expect("connect");
        deploy_until_accepted(&mut client).await;
        let start = Instant::now();
        while acknowledged.len() < count {
            assert!(start.elapsed() < PHASE_LIMIT, "creations before the change");
            if let Some(key) = create_one(&mut client, acknowledged.len()).await {
                acknowledged.insert(key);
            }
        }
    });
    acknowledged
}

/// `GET /actuator/cluster` of `node`.
fn cluster_api(node: &Node) -> Option<serde_json::Value> {
    let (200, body) = http_get(node.management_port, "/actuator/cluster")? else {
        return None;
    };
    serde_json::from_str(&body).ok()
}

fn broker_ids(topology: &serde_json::Value) -> Vec<u64> {
    topology["brokers"]
        .as_array()
        .map(|b| b.iter().filter_map(|b| b["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Creates instances through every node but `skip`, in turn, until node
/// `observer` shows change `change_id` completed (bounded); how many were
/// acknowledged, added to `acknowledged`.
fn create_during_change(
    rt: &tokio::runtime::Runtime,
    nodes: &[Node],
    skip: Option<u32>,
    observer: usize,
    change_id: &serde_json::Value,
    acknowledged: &mut BTreeSet<i64>,
) -> usize {
    rt.block_on(async {
        let mut clients = connect_all(nodes, skip).await;
        let start = Instant::now();
        let mut created = 0;
        for round in 0.. {
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "the change did not complete under load\n{}",
                logs(nodes)
            );
            let turn = round % clients.len();
            if let Some(key) = create_one(&mut clients[turn], round).await {
                acknowledged.insert(key);
                created += 1;
            }
            if round % 10 == 0 {
                let v = cluster_api(&nodes[observer]).expect("the cluster API answers");
                if v["lastChange"]["id"] == *change_id && v.get("pendingChange").is_none() {
                    break;
                }
            }
        }
        created
    })
}

/// Waits until every node of `on` shows change `change_id` completed, with
/// brokers `brokers` holding `partitions[i]` partitions each.
fn wait_change(
    nodes: &[Node],
    on: &[usize],
    change_id: &serde_json::Value,
    brokers: &[u64],
    partitions: &[usize],
) {
    let start = Instant::now();
    loop {
        let done = on.iter().all(|&i| {
            let Some(v) = cluster_api(&nodes[i]) else {
                return false;
            };
            let held: Vec<usize> = v["brokers"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .map(|b| b["partitions"].as_array().map_or(0, Vec::len))
                        .collect()
                })
                .unwrap_or_default();
            v["lastChange"]["id"] == *change_id
                && v["lastChange"]["status"] == "COMPLETED"
                && v.get("pendingChange").is_none()
                && broker_ids(&v) == brokers
                && held == partitions
        });
        if done {
            return;
        }
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "change {change_id} did not complete\n{}",
            logs(nodes)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_cluster_scaled_from_three_to_five_brokers_under_load_loses_nothing() {
    // Three brokers, three partitions on all three; brokers 3 and 4 have
    // addresses for the change to add them.
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster_growing(root.path(), 3, 5, 3, 3, |_| String::new());
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    for i in [3usize, 4] {
        let v = cluster_api(&nodes[i]).expect("the cluster API answers");
        assert_eq!(broker_ids(&v), [0, 1, 2], "a new broker holds nothing yet");
    }
    let rt = client_runtime();
    let mut acknowledged = deploy_and_create(&rt, &nodes[0], 100);
    let change_id = patch_cluster(&nodes[0], "", r#"{"brokers":{"add":[3,4]}}"#);
    // The change's coordinator dies once the others heard of the change:
    // broker 1, the lowest left, carries it on.
    let start = Instant::now();
    while !cluster_api(&nodes[1]).is_some_and(|v| v["pendingChange"]["id"] == change_id) {
        assert!(start.elapsed() < PHASE_LIMIT, "the change was not gossiped");
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes[0].kill();
    // Instances are created all through the change, through every other
    // broker.
    let during = create_during_change(&rt, &nodes, Some(0), 1, &change_id, &mut acknowledged);
    assert!(during > 0, "nothing was created during the change");
    // Round-robin over five: partition 1 on 0,1,2; 2 on 1,2,3; 3 on 2,3,4.
    let changed = |nodes: &[Node], on: &[usize]| {
        wait_change(nodes, on, &change_id, &[0, 1, 2, 3, 4], &[1, 2, 3, 2, 1])
    };
    changed(&nodes, &[1, 2, 3, 4]);
    // Broker 0 comes back with the configuration of before the change: it
    // takes the new one and deletes the replicas that left it.
    nodes[0].start();
    wait_ready(&[&nodes[0]]);
    changed(&nodes, &[0, 1, 2, 3, 4]);
    let data = |i: usize, p: u32| nodes[i].dir.join(format!("data/partitions/{p}"));
    let start = Instant::now();
    while data(0, 2).exists() || data(0, 3).exists() || data(1, 3).exists() {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "the replicas that left kept their data"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(data(4, 3).exists() && data(0, 1).exists());
    // The new replicas caught up as learners before they voted.
    let said: String = nodes.iter().map(|n| n.log()).collect();
    for p in [2, 3] {
        assert!(
            said.contains(&format!("proposing the learners of partition {p}")),
            "partition {p} took a voter that had not caught up as a learner\n{said}"
        );
    }
    complete_all(&rt, &nodes, &acknowledged, &mut BTreeMap::new());
}

/// start → message catch `paid` (key `=orderId`) → job `work` → end.
const PAID_THEN_WORK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="paid_then_work" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="work" retries="3"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
  <bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
</bpmn:definitions>"#;

/// Asks `node` for a cluster change (`query`: "" or "?force=true"); its
/// id, once accepted.
fn patch_cluster(node: &Node, query: &str, body: &str) -> serde_json::Value {
    let path = format!("/actuator/cluster{query}");
    let (status, answer) = http_request(node.management_port, "PATCH", &path, body);
    assert_eq!(status, 202, "{answer}");
    let planned: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    planned["changeId"].clone()
}

/// The partitions of the scaling test once the third is added.
const SCALED_PARTITIONS: u32 = 3;

/// Creates `paid_then_work` instances waiting for order `{prefix}-{i}`
/// through `client` until `count` are acknowledged and one is on
/// `partition` (bounded); their keys and order ids.
async fn create_waiting(
    client: &mut GatewayClient<Channel>,
    prefix: &str,
    count: usize,
    partition: u32,
) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = Vec::new();
    let start = Instant::now();
    while out.len() < count
        || !out
            .iter()
            .any(|(k, _)| partition_of_key(*k, SCALED_PARTITIONS) == Some(partition))
    {
        assert!(
            start.elapsed() < PHASE_LIMIT,
            "no instance on partition {partition}"
        );
        let order = format!("{prefix}-{}", out.len());
        let created = client
            .create_process_instance(proto::CreateProcessInstanceRequest {
                bpmn_process_id: "paid_then_work".into(),
                version: -1,
                variables: format!(r#"{{"orderId": "{order}"}}"#),
                ..Default::default()
            })
            .await;
        if let Ok(r) = created {
            out.push((r.into_inner().process_instance_key, order));
        }
    }
    out
}

#[test]
fn partitions_added_under_load_take_new_instances_and_messages_still_meet_their_subscriptions() {
    // Three brokers, two partitions on all three; a third partition is
    // added while instances are created.
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster_of(root.path(), 3, 2, 3, |_| String::new());
    for n in nodes.iter_mut() {
        n.start();
    }
    wait_ready(&nodes.iter().collect::<Vec<_>>());
    let rt = client_runtime();
    let mut acknowledged = deploy_and_create(&rt, &nodes[0], 50);
    let waiting_before = rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[0].uri())
            .await
            .expect("connect");
        deploy_resource_until_accepted(&mut client, "paid_then_work.bpmn", PAID_THEN_WORK).await;
        create_waiting(&mut client, "before", 10, 2).await
    });
    let change_id = patch_cluster(&nodes[1], "", r#"{"partitions":{"count":3}}"#);
    let during = create_during_change(&rt, &nodes, None, 2, &change_id, &mut acknowledged);
    assert!(during > 0, "nothing was created during the change");
    wait_change(&nodes, &[0, 1, 2], &change_id, &[0, 1, 2], &[3, 3, 3]);
    let v = cluster_api(&nodes[0]).expect("the cluster API answers");
    assert_eq!(v["routing"]["requestHandling"]["partitionCount"], 3);
    assert_eq!(v["routing"]["messageCorrelation"]["partitionCount"], 2);
    let waiting_after = rt.block_on(async {
        let mut client = GatewayClient::connect(nodes[2].uri())
            .await
            .expect("connect");
        let topology = client
            .topology(proto::TopologyRequest {})
            .await
            .expect("topology")
            .into_inner();
        assert_eq!(topology.partitions_count, 3);
        // New instances go to the new partition too, and wait for
        // messages whose subscriptions live on the partitions of before.
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < PHASE_LIMIT, "no instance on partition 3");
            if let Some(key) = create_one(&mut client, 0).await {
                acknowledged.insert(key);
                if partition_of_key(key, SCALED_PARTITIONS) == Some(3) {
                    break;
                }
            }
        }
        let waiting = create_waiting(&mut client, "after", 10, 3).await;
        for (_, order) in waiting_before.iter().chain(&waiting) {
            let published = client
                .publish_message(proto::PublishMessageRequest {
                    name: "paid".into(),
                    correlation_key: order.clone(),
                    time_to_live: 60_000,
                    ..Default::default()
                })
                .await;
            assert!(published.is_ok(), "{published:?}");
        }
        waiting
    });
    acknowledged.extend(waiting_before.iter().chain(&waiting_after).map(|(k, _)| *k));
    // A broker restarted after the change replays its partitions' logs as
    // its peers applied them (the partition count of each entry's time).
    nodes[1].kill();
    nodes[1].start();
    wait_ready(&[&nodes[1]]);
    complete_all(&rt, &nodes, &acknowledged, &mut BTreeMap::new());
    let start = Instant::now();
    for p in 1..=3 {
        loop {
            let checks = state_checks(&nodes[1], p);
            assert_eq!(
                checks.mismatches, 0,
                "partition {p} on the restarted broker"
            );
            if checks.compared > 0 {
                break;
            }
            assert!(
                start.elapsed() < PHASE_LIMIT,
                "partition {p} was never compared"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
