//! `waggle-perf failover`: how long clients stall when a partition's leader
//! is killed with `kill -9` under load.
//!
//! A cluster of real brokers runs on loopback. Each round:
//! 1. the leader of partition 1 is found (the victim); the client talks to
//!    the gateway of another node, as a client behind a load balancer would
//!    after losing the victim's gateway;
//! 2. an open-loop starter creates one_task instances at `--rate` for
//!    `LOAD_BEFORE_KILL` + `LOAD_AFTER_KILL`, each retried on `UNAVAILABLE`,
//!    `RESOURCE_EXHAUSTED` and `DEADLINE_EXCEEDED` until it is acknowledged;
//! 3. the victim is killed with SIGKILL `LOAD_BEFORE_KILL` after the start;
//! 4. the round's **gap** is the longest a request waited past the kill:
//!    the largest `ack - max(intended start, kill)` over the requests
//!    acknowledged after the kill. Round-robin routing sends a request to
//!    every partition within a few milliseconds, so the gap is the time
//!    until every partition serves again, as a client sees it;
//! 5. the victim starts again on its data, and the round ends when every
//!    partition has a leader and every node is ready.
//!
//! The baseline of the same run is the p99 of the create latency before
//! each kill. Every loop is bounded: rounds, requests, retries, waits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use serde::Serialize;
use tonic::transport::Channel;
use tonic::Code;

use crate::brokers::{find_waggle, Brokers, ClusterSpec};
use crate::load::{connect, deploy, PROCESS_ID};
use crate::restart_bench::replace_section;
use crate::scenario::load_average;

/// Load before the kill (the baseline's window).
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(1);
/// Load after the kill.
const LOAD_AFTER_KILL: Duration = Duration::from_secs(4);
/// Longest one request is retried.
const MAX_REQUEST_WAIT: Duration = Duration::from_secs(30);
/// Pause between two attempts of one request.
const RETRY_PAUSE: Duration = Duration::from_millis(5);
/// Longest wait for every partition to have a leader after a restart.
const MAX_SETTLE: Duration = Duration::from_secs(60);
/// Most rounds.
pub const MAX_KILLS: usize = 200;
/// Highest request rate.
pub const MAX_RATE: u64 = 5_000;

/// Heading of the sections `--markdown` writes, one per round trip.
pub const FAILOVER_SECTION: &str = "## Failover: kill -9 of a leader";

/// The heading of the section of a run at `rtt_ms`.
fn heading(rtt_ms: u64) -> String {
    format!("{FAILOVER_SECTION}, {rtt_ms} ms between nodes")
}

/// Options of `waggle-perf failover`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Leaders killed, one per round.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// Nodes (each a replica of every partition).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Partitions.
    #[arg(long, default_value_t = 3)]
    pub partitions: u32,
    /// Instances created per second (open loop).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Round trip between nodes, in ms: each node in its own zone or region
    /// behind a delaying relay (0: plain loopback).
    #[arg(long, default_value_t = 0)]
    pub rtt_ms: u64,
    /// `cluster.heartbeat_interval_ms` of every node.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// `cluster.election_timeout_ms` of every node.
    #[arg(long, default_value_t = 400)]
    pub election_ms: u64,
    /// `cluster.peer_timeout_ms` of every node.
    #[arg(long, default_value_t = 1000)]
    pub peer_timeout_ms: u64,
    /// The `waggle` binary (default: `$WAGGLE_BIN`, else beside `waggle-perf`).
    #[arg(long)]
    pub waggle: Option<PathBuf>,
    /// Where the brokers' directories and `failover.json` go.
    #[arg(long, default_value = "perf/out")]
    pub out: PathBuf,
    /// Write the figures into this RESULTS.md (section `FAILOVER_SECTION`).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// One round.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// The node killed.
    pub victim: usize,
    /// The node whose gateway the client used.
    pub gateway: usize,
    /// Longest wait past the kill, in ms.
    pub gap_ms: f64,
    /// p99 of the create latency before the kill, in ms.
    pub steady_p99_ms: f64,
    /// Requests sent, and those never acknowledged within `MAX_REQUEST_WAIT`
    /// or refused with another error.
    pub requests: usize,
    /// See `requests`.
    pub failed: usize,
    /// Attempts answered with a retryable error.
    pub retried: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverRun {
    /// Options.
    pub nodes: usize,
    /// Options.
    pub partitions: u32,
    /// Options.
    pub rate: u64,
    /// Options.
    pub rtt_ms: u64,
    /// Options.
    pub heartbeat_ms: u64,
    /// Options.
    pub election_ms: u64,
    /// Options.
    pub peer_timeout_ms: u64,
    /// Each round.
    pub rounds: Vec<Round>,
    /// Load average before and after.
    pub load_average: (String, String),
}

/// One request's fate, times since the round's epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) intended: Duration,
    pub(crate) acked: Option<Duration>,
    pub(crate) retried: u64,
    /// The partition the instance was created on.
    pub(crate) partition: Option<u32>,
}

/// Runs `waggle-perf failover`.
pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_KILLS).contains(&args.kills),
        "--kills {}: expected 1 to {MAX_KILLS}",
        args.kills
    );
    ensure!(
        (3..=crate::brokers::MAX_NODES).contains(&args.nodes),
        "--nodes {}: a leader can be lost only with 3 or more nodes",
        args.nodes
    );
    ensure!(
        (1..=MAX_RATE).contains(&args.rate),
        "--rate {}: expected 1 to {MAX_RATE}",
        args.rate
    );
    let waggle = find_waggle(args.waggle.as_deref())?
        .canonicalize()
        .context("resolving the waggle binary")?;
    let spec = ClusterSpec {
        nodes: args.nodes,
        partitions: args.partitions,
        replication_factor: 3,
        site_of: if args.rtt_ms > 0 {
            (0..args.nodes).collect()
        } else {
            vec![0; args.nodes]
        },
        rtt_ms: args.rtt_ms,
        raw_append: false,
        env: vec![
            (
                "WAGGLE_CLUSTER_HEARTBEAT_INTERVAL_MS".into(),
                args.heartbeat_ms.to_string(),
            ),
            (
                "WAGGLE_CLUSTER_ELECTION_TIMEOUT_MS".into(),
                args.election_ms.to_string(),
            ),
            (
                "WAGGLE_CLUSTER_PEER_TIMEOUT_MS".into(),
                args.peer_timeout_ms.to_string(),
            ),
        ],
        spare: 0,
    };
    let before = load_average();
    let mut brokers = Brokers::start(&waggle, &spec, &args.out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let first = runtime
        .block_on(connect(&brokers.gateways[..1], 1))?
        .remove(0);
    runtime.block_on(deploy(first.clone(), Duration::from_secs(60)))?;
    runtime.block_on(wait_for_distribution(first, args.partitions))?;
    let mut rounds = Vec::new();
    for round in 0..args.kills {
        let outcome = one_round(&runtime, &mut brokers, &args)
            .with_context(|| format!("round {} of {}", round + 1, args.kills));
        match outcome {
            Ok(r) => {
                eprintln!(
                    "round {:>3}: killed node {}, gap {:.0} ms (steady p99 {:.1} ms, {} retried, {} failed)",
                    round + 1,
                    r.victim,
                    r.gap_ms,
                    r.steady_p99_ms,
                    r.retried,
                    r.failed
                );
                rounds.push(r);
            }
            Err(e) => {
                let tails: Vec<String> = (0..args.nodes).map(|i| brokers.log_tail(i)).collect();
                return Err(e.context(tails.join("\n")));
            }
        }
    }
    drop(brokers);
    let result = FailoverRun {
        nodes: args.nodes,
        partitions: args.partitions,
        rate: args.rate,
        rtt_ms: args.rtt_ms,
        heartbeat_ms: args.heartbeat_ms,
        election_ms: args.election_ms,
        peer_timeout_ms: args.peer_timeout_ms,
        rounds,
        load_average: (before, load_average()),
    };
    std::fs::create_dir_all(&args.out)?;
    let json = args.out.join("failover.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let section = markdown(&result);
    println!("{section}");
    if let Some(path) = &args.markdown {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, replace_section(&old, &heading(args.rtt_ms), &section))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn one_round(
    runtime: &tokio::runtime::Runtime,
    brokers: &mut Brokers,
    args: &Args,
) -> anyhow::Result<Round> {
    let nodes = args.nodes;
    let leaders = runtime.block_on(wait_for_leaders(&brokers.gateways, args.partitions))?;
    let victim = leaders[0];
    let gateway = (victim + 1) % nodes;
    let channel = runtime
        .block_on(connect(&brokers.gateways[gateway..=gateway], 1))?
        .remove(0);
    let epoch = tokio::time::Instant::now();
    let total = LOAD_BEFORE_KILL + LOAD_AFTER_KILL;
    let count = (args.rate as f64 * total.as_secs_f64()) as u64;
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let load = {
        let sent = Arc::clone(&sent);
        let rate = args.rate;
        runtime.spawn(async move {
            let mut tasks = Vec::new();
            for i in 0..count {
                let intended = Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(epoch + intended).await;
                let client = GatewayClient::new(channel.clone());
                let sent = Arc::clone(&sent);
                tasks.push(tokio::spawn(async move {
                    let (acked, retried, partition) = create(client, epoch).await;
                    sent.lock().expect("never poisoned").push(Sent {
                        intended,
                        acked,
                        retried,
                        partition,
                    });
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        })
    };
    std::thread::sleep(LOAD_BEFORE_KILL);
    let killed_at = epoch.elapsed();
    brokers.kill9(victim)?;
    runtime
        .block_on(load)
        .context("the load generator stopped")?;
    let sent = sent.lock().expect("never poisoned").clone();
    let (gap, steady) = measure(&sent, killed_at);
    let failed = sent.iter().filter(|s| s.acked.is_none()).count();
    brokers.restart(victim)?;
    runtime.block_on(wait_for_leaders(&brokers.gateways, args.partitions))?;
    Ok(Round {
        victim,
        gateway,
        gap_ms: gap.as_secs_f64() * 1e3,
        steady_p99_ms: steady.as_secs_f64() * 1e3,
        requests: sent.len(),
        failed,
        retried: sent.iter().map(|s| s.retried).sum(),
    })
}

/// The longest wait past `killed_at` of the requests acknowledged after it,
/// and the p99 latency of those acknowledged before it.
pub(crate) fn measure(sent: &[Sent], killed_at: Duration) -> (Duration, Duration) {
    let gap = sent
        .iter()
        .filter_map(|s| s.acked.filter(|a| *a >= killed_at).map(|a| (s.intended, a)))
        .map(|(intended, acked)| acked - intended.max(killed_at))
        .max()
        .unwrap_or_default();
    let mut steady: Vec<Duration> = sent
        .iter()
        .filter_map(|s| s.acked.filter(|a| *a < killed_at).map(|a| a - s.intended))
        .collect();
    steady.sort();
    (gap, nearest_rank(&steady, 0.99))
}

/// The nearest-rank percentile `q` of sorted `values` (zero when empty).
pub(crate) fn nearest_rank<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Creates one instance, retrying retryable refusals; the acknowledgement
/// time since `epoch` (`None` if never), the retries and the partition the
/// instance was created on.
pub(crate) async fn create(
    mut client: GatewayClient<Channel>,
    epoch: tokio::time::Instant,
) -> (Option<Duration>, u64, Option<u32>) {
    let deadline = tokio::time::Instant::now() + MAX_REQUEST_WAIT;
    let mut retried = 0;
    while tokio::time::Instant::now() < deadline {
        let request = proto::CreateProcessInstanceRequest {
            bpmn_process_id: PROCESS_ID.into(),
            version: -1,
            variables: "{\"round\":1}".into(),
            ..Default::default()
        };
        match client.create_process_instance(request).await {
            Ok(created) => {
                let key = created.into_inner().process_instance_key;
                let partition = node::routing::partition_of_key(key, u32::MAX);
                return (Some(epoch.elapsed()), retried, partition);
            }
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded
                ) =>
            {
                retried += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(status) => {
                eprintln!("a create failed: {status}");
                return (None, retried, None);
            }
        }
    }
    (None, retried, None)
}

/// Waits until the deployment reached every partition: as many instances in
/// a row as there are partitions are created (round-robin puts one on each).
pub(crate) async fn wait_for_distribution(channel: Channel, partitions: u32) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + MAX_SETTLE;
    let mut client = GatewayClient::new(channel);
    let mut in_a_row = 0;
    while in_a_row < partitions {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the deployment did not reach every partition within {MAX_SETTLE:?}"
        );
        let request = proto::CreateProcessInstanceRequest {
            bpmn_process_id: PROCESS_ID.into(),
            version: -1,
            ..Default::default()
        };
        match client.create_process_instance(request).await {
            Ok(_) => in_a_row += 1,
            Err(_) => {
                in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

/// Waits until every partition has a leader that every live gateway agrees
/// on; the leader of each partition, by node.
async fn wait_for_leaders(gateways: &[String], partitions: u32) -> anyhow::Result<Vec<usize>> {
    let deadline = tokio::time::Instant::now() + MAX_SETTLE;
    loop {
        if let Ok(leaders) = leaders_seen(gateways, partitions).await {
            return Ok(leaders);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the partitions had no agreed leaders within {MAX_SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leaders_seen(gateways: &[String], partitions: u32) -> anyhow::Result<Vec<usize>> {
    let mut agreed: Option<Vec<usize>> = None;
    for uri in gateways {
        let channel = connect(std::slice::from_ref(uri), 1).await?.remove(0);
        let topology = GatewayClient::new(channel)
            .topology(proto::TopologyRequest {})
            .await?
            .into_inner();
        ensure!(
            topology.brokers.len() == gateways.len(),
            "a node is missing"
        );
        let mut leaders = vec![usize::MAX; partitions as usize];
        for broker in &topology.brokers {
            for p in &broker.partitions {
                let leads = p.role == proto::partition::PartitionBrokerRole::Leader as i32;
                let healthy = p.health == proto::partition::PartitionBrokerHealth::Healthy as i32;
                let slot = leaders.get_mut(p.partition_id as usize - 1);
                if let (true, true, Some(slot)) = (leads, healthy, slot) {
                    *slot = broker.node_id as usize;
                }
            }
        }
        ensure!(!leaders.contains(&usize::MAX), "a partition has no leader");
        match &agreed {
            Some(a) => ensure!(*a == leaders, "the gateways disagree"),
            None => agreed = Some(leaders),
        }
    }
    agreed.context("no gateway")
}

fn ms(v: f64) -> String {
    format!("{v:.0} ms")
}

fn markdown(run: &FailoverRun) -> String {
    let mut gaps: Vec<f64> = run.rounds.iter().map(|r| r.gap_ms).collect();
    gaps.sort_by(f64::total_cmp);
    let mut steady: Vec<f64> = run.rounds.iter().map(|r| r.steady_p99_ms).collect();
    steady.sort_by(f64::total_cmp);
    let failed: usize = run.rounds.iter().map(|r| r.failed).sum();
    let requests: usize = run.rounds.iter().map(|r| r.requests).sum();
    let mut out = format!(
        "{heading}\n\n`waggle-perf failover --kills {kills} --rate {rate} --rtt-ms {rtt} --heartbeat-ms {hb} --election-ms {el} --peer-timeout-ms {peer}`: \
         {nodes} nodes on loopback ({rtt} ms round trip between any two, through delaying relays when above 0), {partitions} partitions, \
         replication factor 3. Each round kills the leader of partition 1 with SIGKILL \
         while a client creates one_task instances at {rate}/s (open loop) through another node's gateway, retrying UNAVAILABLE, \
         RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED; then starts the node again. The gap is the longest a request waited past the kill \
         (the time until every partition serves again, as the client sees it). Baseline of the same run: the p99 create latency in the \
         second before each kill.\n\n",
        heading = heading(run.rtt_ms),
        kills = run.rounds.len(),
        rate = run.rate,
        rtt = run.rtt_ms,
        hb = run.heartbeat_ms,
        el = run.election_ms,
        peer = run.peer_timeout_ms,
        nodes = run.nodes,
        partitions = run.partitions,
    );
    out.push_str("| kills | gap p50 | gap p99 | gap max | steady p99 (median of rounds) | gap p99 / election timeout | requests never acknowledged |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    out.push_str(&format!(
        "| {} | {} | **{}** | {} | {:.1} ms | {:.2} | {failed} of {requests} |\n\n",
        gaps.len(),
        ms(nearest_rank(&gaps, 0.5)),
        ms(nearest_rank(&gaps, 0.99)),
        ms(gaps.last().copied().unwrap_or_default()),
        nearest_rank(&steady, 0.5),
        nearest_rank(&gaps, 0.99) / run.election_ms as f64,
    ));
    out.push_str(&format!(
        "Gaps of each round (ms): {}. Load average {} → {}.\n",
        run.rounds
            .iter()
            .map(|r| format!("{:.0}", r.gap_ms))
            .collect::<Vec<_>>()
            .join(", "),
        run.load_average.0,
        run.load_average.1
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_gap_is_the_longest_wait_past_the_kill() {
        let sent = [
            // Before the kill: latencies 10 and 30 ms.
            Sent {
                intended: at(0),
                acked: Some(at(10)),
                retried: 0,
                partition: None,
            },
            Sent {
                intended: at(100),
                acked: Some(at(130)),
                retried: 0,
                partition: None,
            },
            // In flight at the kill (1000 ms), acknowledged at 1400: 400.
            Sent {
                intended: at(990),
                acked: Some(at(1400)),
                retried: 1,
                partition: None,
            },
            // Sent after the kill, acknowledged at 1700: 690.
            Sent {
                intended: at(1010),
                acked: Some(at(1700)),
                retried: 3,
                partition: None,
            },
            // Never acknowledged: not a gap (counted as failed).
            Sent {
                intended: at(1020),
                acked: None,
                retried: 9,
                partition: None,
            },
        ];
        let (gap, steady) = measure(&sent, at(1000));
        assert_eq!(gap, at(690));
        assert_eq!(steady, at(30));
        assert_eq!(measure(&[], at(1)), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn nearest_rank_takes_the_value_at_or_above_the_quantile() {
        let v: Vec<u32> = (1..=20).collect();
        assert_eq!(nearest_rank(&v, 0.5), 10);
        assert_eq!(nearest_rank(&v, 0.99), 20);
        assert_eq!(nearest_rank(&[7], 0.99), 7);
    }
}
