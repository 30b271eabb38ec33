//! A simulated cluster of whole brokers' partitions: every node runs the
//! broker's own `ShardReplicas` (the replica driver, the partitions with
//! their engines, due commands, distributions between partitions, exports)
//! over a `storage::SimDisk`, in one thread with simulated time. Clients
//! deploy, create instances, complete jobs and publish messages through the
//! leaders' command path (see [`workload`]); the checks of [`history`] run
//! as the run goes, and the replicas' engine fingerprints are compared at
//! equal applied indexes.
//!
//! Faults during the chaos phase: crash and restart (half of them in the
//! middle of a sync, tearing the log tail), a failed `fdatasync` (the node's
//! partitions stop; it restarts), a slow disk, a full disk, network
//! partitions (node, link, split), message loss and duplication, delays
//! (reordering), and jumps of a node's wall clock. Then everything heals,
//! and every acknowledged instance must complete within
//! [`LIVENESS_BOUND_MS`], plus how far clocks were skewed (job deadlines
//! are wall-clock times of the leader that set them).

pub mod history;
pub mod workload;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use node::command::CommandReply;
use node::consensus::{raft_node, OpenOptions, ShardReplicas};
use node::membership::ClusterConfiguration;
use node::metrics::Metrics;
use node::placement::{ClusterShape, PartitionId};
use node::view::BrokerView;
use raft::{Envelope, NodeId, RaftConfig};
use replica::Flight;
use storage::{DiskOp, Fault, FaultError, SimDisk};
use tokio::sync::oneshot::error::TryRecvError;

use crate::checker::{violation, Violation};
use crate::network::Network;
use crate::node::now;
use crate::prng::Prng;
use crate::simulation::{guarded, Failure};
use history::{Acked, RecordingSink};
use workload::{Held, InFlight, Op, Publishing};

/// Simulated ms between two turns of a node's shard loop (ticks).
pub const TICK_MS: u64 = 10;
/// After healing, every acknowledged instance completes within this (plus
/// how far the slowest clock is behind: job time-outs run on the leader's
/// clock).
pub const LIVENESS_BOUND_MS: u64 = 60_000;
/// Wall clock of the nodes at simulated time 0 (2026-01-01).
pub const EPOCH_MS: i64 = 1_767_225_600_000;
/// Hard cap on events per run.
pub const MAX_EVENTS: u64 = 2_000_000;
/// A client gives up on a request after this long (the gateway's request
/// time-out): it stays unanswered, its outcome unknown.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// The history is checked against the acknowledgements this often.
pub const CHECK_EVERY_MS: u64 = 100;
/// Engine state checkpoints every this many applied entries.
pub const STATE_CHECK_ENTRIES: u64 = 16;

/// Options of a broker simulation.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Simulated duration of the fault phase.
    pub chaos_ms: u64,
    /// Inject faults.
    pub faults: bool,
    /// Record a trace.
    pub trace: bool,
    /// A planted bug (of the replica driver; Raft's have their own
    /// simulation).
    pub bug: Option<crate::Planted>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            chaos_ms: 4_000,
            faults: true,
            trace: false,
            bug: None,
        }
    }
}

/// What a passing run did.
#[derive(Clone, Debug, Default)]
pub struct BrokerSummary {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Partitions.
    pub partitions: u32,
    /// Instances created and acknowledged.
    pub created: u64,
    /// Job completions acknowledged.
    pub completions: u64,
    /// Instances that completed.
    pub instances_completed: u64,
    /// Exported entries checked, and entries compared between leaders.
    pub entries: u64,
    /// Entries exported twice and found equal.
    pub entries_compared: u64,
    /// Engine fingerprints compared between replicas.
    pub fingerprints_compared: u64,
    /// Faults injected.
    pub faults: u64,
    /// Crashes (including failed syncs).
    pub crashes: u64,
    /// Wall-clock jumps.
    pub clock_jumps: u64,
    /// Events.
    pub events: u64,
    /// Simulated time at the end.
    pub sim_ms: u64,
    /// Partitions added while the faults ran (and made to take instances).
    pub partitions_added: u64,
}

#[derive(Debug)]
enum Ev {
    Tick(u32, u64),
    Deliver(u32, Bytes),
    Internal(u32, PartitionId, Box<engine::Record>),
    SyncDone(u32, u64),
    Client,
    Worker,
    Fault,
    Restart(u32),
    Heal,
    Check,
    ScaleUp,
}

struct BNode {
    up: bool,
    incarnation: u64,
    disk: SimDisk,
    replicas: ShardReplicas<SimDisk>,
    view: Arc<BrokerView>,
    io: Option<Flight>,
    /// Wall clock offset (clock jumps).
    skew_ms: i64,
    /// Sync latency range (a slow disk).
    sync_ms: (u64, u64),
}

/// See the module documentation.
pub struct BrokerSim {
    seed: u64,
    opts: BrokerOptions,
    rng: Prng,
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    shape: ClusterShape,
    /// Where the partitions are, and the routing: a scale up adds one.
    config: ClusterConfiguration,
    /// The partition being added, until partition 1 reports it ready.
    adding: Option<PartitionId>,
    /// The replicas of added partitions opened so far (node, partition):
    /// a node restarting opens those, and the others later, as the
    /// broker's membership loop does (a full disk can refuse one).
    opened: std::collections::BTreeSet<(u32, PartitionId)>,
    /// Nodes whose disk was made full (until healed).
    full: std::collections::BTreeSet<u32>,
    nodes: BTreeMap<u32, BNode>,
    net: Network,
    sink: Arc<RecordingSink>,
    base: Instant,
    healed_at_ms: Option<u64>,
    /// The furthest any clock has been ahead (deadlines it set outlast it).
    max_ahead_ms: u64,
    in_flight: Vec<InFlight>,
    held: Vec<Held>,
    publishing: Publishing,
    acked: Vec<Acked>,
    created: BTreeMap<i64, u64>,
    deployed: bool,
    next_id: u64,
    leaders: BTreeMap<PartitionId, u32>,
    fingerprints: BTreeMap<(PartitionId, u64), (u64, u32)>,
    /// The newest checkpoint compared per (node, partition).
    compared: BTreeMap<(u32, PartitionId), u64>,
    /// When a replica first applied each entry.
    applied_at: BTreeMap<(PartitionId, u64), u64>,
    summary: BrokerSummary,
    trace: Vec<String>,
    done: bool,
}

impl BrokerSim {
    /// The cluster of seed `seed`.
    pub fn new(seed: u64, opts: BrokerOptions) -> Result<Self, Violation> {
        let mut rng = Prng::new(seed);
        let nodes = if rng.chance(500) { 3 } else { 5 };
        let partitions = rng.range(1, 3) as u32;
        let shape = ClusterShape {
            cluster_size: nodes,
            partitions,
            replication_factor: 3,
        };
        let region = (0..nodes).map(|n| (raft_node(n), 0)).collect();
        let mut sim = BrokerSim {
            seed,
            opts,
            rng,
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            shape,
            config: ClusterConfiguration::initial(&shape, EPOCH_MS as u64),
            adding: None,
            opened: Default::default(),
            full: Default::default(),
            nodes: BTreeMap::new(),
            net: Network::new(region),
            sink: Arc::new(RecordingSink::default()),
            base: Instant::now(),
            healed_at_ms: None,
            max_ahead_ms: 0,
            in_flight: Vec::new(),
            held: Vec::new(),
            publishing: Publishing::new(),
            acked: Vec::new(),
            created: BTreeMap::new(),
            deployed: false,
            next_id: 0,
            leaders: BTreeMap::new(),
            fingerprints: BTreeMap::new(),
            compared: BTreeMap::new(),
            applied_at: BTreeMap::new(),
            summary: BrokerSummary {
                seed,
                nodes,
                partitions,
                ..BrokerSummary::default()
            },
            trace: Vec::new(),
            done: false,
        };
        for n in 0..nodes {
            let node = sim.boot(n, SimDisk::new(), 0, 0)?;
            sim.nodes.insert(n, node);
            let at = sim.rng.range(1, TICK_MS);
            sim.schedule(at, Ev::Tick(n, 0));
        }
        sim.schedule(5, Ev::Client);
        sim.schedule(7, Ev::Worker);
        sim.schedule(CHECK_EVERY_MS, Ev::Check);
        if sim.opts.faults {
            let at = sim.rng.range(200, 600);
            sim.schedule(at, Ev::Fault);
        }
        let chaos = sim.opts.chaos_ms;
        sim.schedule(chaos, Ev::Heal);
        // A third of the runs add a partition while the faults run.
        if sim.opts.faults && sim.rng.chance(333) {
            let at = sim.rng.range(300, chaos * 2 / 3);
            sim.schedule(at, Ev::ScaleUp);
        }
        Ok(sim)
    }

    fn boot(
        &mut self,
        n: u32,
        disk: SimDisk,
        incarnation: u64,
        skew_ms: i64,
    ) -> Result<BNode, Violation> {
        let first = self.shape.partitions;
        let owned: Vec<PartitionId> = self
            .config
            .local_partitions(n)
            .into_iter()
            .filter(|p| *p <= first || self.opened.contains(&(n, *p)))
            .collect();
        let view = Arc::new(BrokerView::new(&owned, 1));
        let options = self.open_options(n);
        let replicas = now(ShardReplicas::open_on(
            disk.clone(),
            &options,
            0,
            &owned,
            view.clone(),
            Arc::new(Metrics::new()),
            self.instant(),
        ))
        .map_err(|e| violation("storage works and recovers", format!("node {n}: {e}")))?;
        Ok(BNode {
            up: true,
            incarnation,
            disk,
            replicas,
            view,
            io: None,
            skew_ms,
            sync_ms: (1, 4),
        })
    }

    /// How node `n` opens its replicas, with the configuration of now.
    fn open_options(&mut self, n: u32) -> OpenOptions {
        OpenOptions {
            node: n,
            shape: self.config.shape(),
            members: Arc::new(node::membership::Members::new(self.config.clone())),
            dir: "/data/partitions".into(),
            segment_size_bytes: 64 << 10,
            accept_data_loss: false,
            raft: self.raft_config(),
            seed: self.rng.next_u64(),
            boot_ms: (EPOCH_MS as u64) + self.now_ms,
            snapshot_period: Duration::from_millis(self.rng.range(200, 2_000)),
            exporter: Some(node::consensus::ExportOptions {
                sink: self.sink.clone(),
                max_lag_records: 100_000,
                position_interval: Duration::from_millis(100),
            }),
            time_zone: "UTC".into(),
            state_check_entries: STATE_CHECK_ENTRIES,
            driver_bug: self.opts.bug.and_then(crate::Planted::driver),
        }
    }

    /// The brokers holding `partition`.
    fn replicas_of(&self, partition: PartitionId) -> Vec<u32> {
        self.config
            .replicas(partition)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    /// Adds a partition as a cluster change does: its replicas open (a
    /// node that is down opens it when it restarts), partition 1 is asked
    /// to scale up until it has begun, and once it reports the new
    /// partition bootstrapped and the others told, clients use it.
    fn scale_up(&mut self) -> Result<(), Violation> {
        if self.config.version == 1 {
            self.begin_scale_up();
        }
        let missing = self.open_missing()?;
        let Some(q) = self.adding else {
            if missing {
                self.schedule(20, Ev::ScaleUp);
            }
            return Ok(());
        };
        let progress = self
            .leaders
            .get(&1)
            .and_then(|l| self.nodes[l].replicas.membership(1))
            .and_then(|m| m.scaling);
        match progress {
            Some(s) if s.partitions >= q && s.complete => {
                self.say(format!("partition {q} takes instances"));
                self.config.partition_count = q;
                self.config.version += 1;
                self.adding = None;
                self.summary.partitions_added += 1;
            }
            Some(s) if s.partitions >= q => {}
            _ => {
                if !self.in_flight.iter().any(|r| matches!(r.op, Op::ScaleUp)) {
                    let command = node::command::PartitionCommand::ScaleUp {
                        desired_partition_count: q,
                    };
                    self.submit(1, Op::ScaleUp, command);
                }
            }
        }
        self.schedule(20, Ev::ScaleUp);
        Ok(())
    }

    /// The configuration with one more partition, placed round-robin.
    fn begin_scale_up(&mut self) {
        let q = self.config.partition_count + 1;
        let placed = ClusterConfiguration::initial(
            &ClusterShape {
                partitions: q,
                ..self.shape
            },
            EPOCH_MS as u64,
        );
        let mut next = self.config.clone();
        next.message_partition_count = self.config.message_partitions();
        next.version += 1;
        for (n, m) in placed.members {
            if let Some(replica) = m.partitions.get(&q) {
                let member = next.members.get_mut(&n).expect("a member");
                member.partitions.insert(q, *replica);
            }
        }
        self.config = next;
        self.adding = Some(q);
        self.say(format!("add partition {q} on {:?}", self.replicas_of(q)));
    }

    /// Opens the replicas of added partitions that up nodes do not hold
    /// yet; true while one is still missing (a node down, a full disk).
    fn open_missing(&mut self) -> Result<bool, Violation> {
        let mut missing = false;
        for q in self.shape.partitions + 1..=self.config.highest_partition() {
            for n in self.replicas_of(q) {
                if self.opened.contains(&(n, q)) {
                    continue;
                }
                if !self.nodes[&n].up {
                    missing = true;
                    continue;
                }
                let options = self.open_options(n);
                let node = self.nodes.get_mut(&n).expect("node");
                match now(node.replicas.join(&options, q, None, &|| {})) {
                    Ok(()) => {
                        self.opened.insert((n, q));
                        self.pump(n)?;
                    }
                    Err(e) => {
                        missing = true;
                        self.say(format!("n{n} cannot open partition {q} yet: {e}"));
                    }
                }
            }
        }
        Ok(missing)
    }

    fn raft_config(&self) -> RaftConfig {
        let mut config = RaftConfig::default();
        assert!(
            config.set_bug(self.opts.bug.and_then(crate::Planted::raft)),
            "a planted Raft bug needs the `bug-injection` feature"
        );
        config
    }

    /// Traces `line`; with `SIM_ECHO` set, also to stderr at once (a panic
    /// in the core loses the trace collected so far).
    fn say(&mut self, line: String) {
        if self.opts.trace {
            let line = format!("{:>7}ms {line}", self.now_ms);
            if std::env::var_os("SIM_ECHO").is_some() {
                eprintln!("{line}");
            }
            self.trace.push(line);
        }
    }

    fn schedule(&mut self, delay_ms: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        let slot = self.events.len() - 1;
        self.queue
            .push(Reverse((self.now_ms + delay_ms, self.seq, slot)));
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_millis(self.now_ms)
    }

    fn wall_ms(&self, n: u32) -> i64 {
        EPOCH_MS + self.now_ms as i64 + self.nodes[&n].skew_ms
    }

    /// Runs the simulation to its end.
    pub fn run(mut self) -> Result<BrokerSummary, Failure> {
        let seed = self.seed;
        guarded(seed, || {
            let r = self.run_inner();
            (
                r.map(|()| self.summary.clone()),
                self.now_ms,
                std::mem::take(&mut self.trace),
            )
        })
    }

    fn run_inner(&mut self) -> Result<(), Violation> {
        while let Some(Reverse((time_ms, _, slot))) = self.queue.pop() {
            self.now_ms = time_ms;
            self.sink.set_now(time_ms);
            self.summary.events += 1;
            if self.summary.events > MAX_EVENTS {
                return Err(violation(
                    "bounded run",
                    format!("more than {MAX_EVENTS} events"),
                ));
            }
            let ev = self.events[slot].take().expect("each event runs once");
            self.handle(ev)?;
            self.poll_replies();
            if let Some(v) = self.sink.violation() {
                return Err(v);
            }
            if self.done {
                break;
            }
        }
        self.summary.sim_ms = self.now_ms;
        self.sink.with_facts(|f| {
            self.summary.entries = f.entries;
            self.summary.entries_compared = f.entries_compared;
            self.summary.instances_completed = f.completed.len() as u64;
        });
        if !self.done {
            return Err(violation(
                "liveness",
                "the run ended before its end check".into(),
            ));
        }
        Ok(())
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Tick(n, inc) => {
                if !self.is_up(n, inc) {
                    return Ok(());
                }
                self.schedule(TICK_MS, Ev::Tick(n, inc));
                let (wall, at) = (self.wall_ms(n), self.instant());
                let node = self.nodes.get_mut(&n).expect("node");
                match now(node.replicas.retry_space(at)) {
                    Ok(released) => self.send_all(released),
                    Err(e) => return self.fail_node(n, &e.to_string()),
                }
                let node = self.nodes.get_mut(&n).expect("node");
                let pending = node.replicas.tick(wall, at);
                for (target, record) in pending {
                    self.route(n, target, record);
                }
                self.pump(n)
            }
            Ev::Deliver(to, bytes) => {
                if !self.nodes[&to].up {
                    return Ok(());
                }
                let env = raft::decode(bytes)
                    .map_err(|e| violation("wire codec round trip", e.to_string()))?;
                self.nodes.get_mut(&to).expect("node").replicas.step(env);
                self.pump(to)
            }
            Ev::Internal(to, partition, mut record) => {
                if !self.nodes[&to].up {
                    return Ok(());
                }
                let wall = self.wall_ms(to);
                let node = self.nodes.get_mut(&to).expect("node");
                if node.replicas.leader(partition).0 {
                    record.timestamp_ms = wall;
                    let entry = node::partition::encode_command(&record);
                    let _ = node.replicas.propose(partition, vec![entry]);
                    self.pump(to)?;
                }
                Ok(())
            }
            Ev::SyncDone(n, inc) => {
                if !self.is_up(n, inc) {
                    return Ok(());
                }
                self.sync_done(n)
            }
            Ev::Client => {
                self.client();
                // After healing only the deployment is still tried.
                if self.healed_at_ms.is_none() || !self.deployed {
                    let next = self.rng.range(5, 40);
                    self.schedule(next, Ev::Client);
                }
                Ok(())
            }
            Ev::Worker => {
                self.worker();
                let next = self.rng.range(10, 60);
                self.schedule(next, Ev::Worker);
                Ok(())
            }
            Ev::Fault => {
                if self.healed_at_ms.is_none() {
                    self.fault()?;
                    let next = self.rng.range(50, 700);
                    self.schedule(next, Ev::Fault);
                }
                Ok(())
            }
            Ev::Restart(n) => {
                if self.nodes[&n].up {
                    return Ok(());
                }
                self.restart(n)
            }
            Ev::Heal => self.heal(),
            Ev::Check => self.end_check(),
            Ev::ScaleUp => self.scale_up(),
        }
    }

    fn is_up(&self, n: u32, inc: u64) -> bool {
        let node = &self.nodes[&n];
        node.up && node.incarnation == inc
    }

    fn send_all(&mut self, envelopes: Vec<Envelope>) {
        for env in envelopes {
            let to = (env.to - 1) as u32;
            let bytes = raft::encode(&env);
            for delay in self.net.deliveries(&mut self.rng, env.from, env.to) {
                self.schedule(delay, Ev::Deliver(to, bytes.clone()));
            }
        }
    }

    /// A command for another partition: to each of its replicas (only the
    /// leader appends it; the sender sends it again until acknowledged).
    fn route(&mut self, from: u32, target: PartitionId, record: engine::Record) {
        for to in self.replicas_of(target) {
            for delay in self
                .net
                .deliveries(&mut self.rng, raft_node(from), raft_node(to))
            {
                let r = Box::new(record.clone());
                self.schedule(delay, Ev::Internal(to, target, r));
            }
        }
    }

    /// Hands the node's next ready to its replicas: messages out, writes
    /// buffered, the sync completes after the disk's latency.
    fn pump(&mut self, n: u32) -> Result<(), Violation> {
        let at = self.instant();
        let node = self.nodes.get_mut(&n).expect("node");
        if !node.up || node.io.is_some() || !node.replicas.has_ready() {
            return Ok(());
        }
        let mut early = Vec::new();
        let written = now(node.replicas.write_ready(&mut |m| early.extend(m), at));
        self.send_all(early);
        match written {
            Ok(flight) => {
                let node = self.nodes.get_mut(&n).expect("node");
                node.io = Some(flight);
                let (inc, (lo, hi)) = (node.incarnation, node.sync_ms);
                let delay = self.rng.range(lo, hi);
                self.schedule(delay, Ev::SyncDone(n, inc));
                Ok(())
            }
            Err(e) => self.fail_node(n, &e.to_string()),
        }
    }

    fn sync_done(&mut self, n: u32) -> Result<(), Violation> {
        let at = self.instant();
        let node = self.nodes.get_mut(&n).expect("node");
        let flight = node.io.take().expect("a sync follows a write");
        let turn = match now(node.replicas.finish_ready(flight, at)) {
            Ok(turn) => turn,
            Err(e) => return self.fail_node(n, &e.to_string()),
        };
        self.send_all(turn.messages);
        for (target, record) in turn.distributions {
            self.route(n, target, record);
        }
        self.compare_fingerprints(n)?;
        self.note_applied(n);
        self.pump(n)
    }

    /// Records when entries were first applied by any replica.
    fn note_applied(&mut self, n: u32) {
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&n).expect("node");
        for p in node.replicas.partitions().collect::<Vec<_>>() {
            let applied = node.replicas.partition_mut(p).expect("listed").applied();
            let from = self
                .applied_at
                .range((p, 0)..=(p, u64::MAX))
                .next_back()
                .map_or(1, |((_, i), _)| i + 1);
            for i in from..=applied {
                self.applied_at.insert((p, i), now_ms);
            }
        }
    }

    /// The newest engine checkpoints of `n` against those of the other
    /// replicas at the same index.
    fn compare_fingerprints(&mut self, n: u32) -> Result<(), Violation> {
        for (p, c) in self.nodes[&n].view.checks.latest() {
            if self.compared.insert((n, p), c.index) == Some(c.index) {
                continue;
            }
            match self.fingerprints.get(&(p, c.index)) {
                None => {
                    self.fingerprints.insert((p, c.index), (c.fingerprint, n));
                }
                Some(&(f, other)) if f != c.fingerprint => {
                    return Err(violation(
                        "replicas' engine states are equal at equal indexes",
                        format!(
                            "partition {p} at index {}: node {n} has {:016x}, node {other} has {f:016x}",
                            c.index, c.fingerprint
                        ),
                    ));
                }
                Some(&(_, other)) if other != n => self.summary.fingerprints_compared += 1,
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A storage failure stops the node's partitions (as the broker does);
    /// it is restarted later. What a failed sync did not keep is lost.
    fn fail_node(&mut self, n: u32, why: &str) -> Result<(), Violation> {
        self.say(format!("n{n} storage failed: {why}"));
        self.crash(n, false);
        let after = self.rng.range(100, 800);
        self.schedule(after, Ev::Restart(n));
        Ok(())
    }

    fn crash(&mut self, n: u32, mid_sync: bool) {
        self.summary.crashes += 1;
        self.say(format!("crash n{n}"));
        let at = self.instant();
        let node = self.nodes.get_mut(&n).expect("node");
        node.up = false;
        node.incarnation += 1;
        if let Some(flight) = node.io.take() {
            if mid_sync {
                node.disk.halt_after_mutations(self.rng.below(8));
                let _ = now(node.replicas.finish_ready(flight, at));
            }
        }
        node.disk.crash(self.rng.next_u64());
        self.note_applied(n);
        // A crashed node answers nothing more.
        self.in_flight.retain(|r| r.node != n);
    }

    fn restart(&mut self, n: u32) -> Result<(), Violation> {
        self.say(format!("restart n{n}"));
        let old = &self.nodes[&n];
        let (inc, disk, skew) = (old.incarnation, old.disk.clone(), old.skew_ms);
        // An injected one-shot disk fault still pending fails a start (as a
        // broker refuses to start on a failing disk); the supervisor starts
        // it again. A failed start that fired no injected fault is a
        // recovery bug.
        let node = loop {
            let pending = disk.pending_faults();
            match self.boot(n, disk.clone(), inc, skew) {
                Ok(node) => break node,
                Err(v) if disk.pending_faults() < pending => {
                    self.say(format!("n{n} did not start: {v}"))
                }
                // A partition never written yet (one added at run time)
                // needs space to open: the node stays down until healed.
                Err(v) if self.full.contains(&n) && self.healed_at_ms.is_none() => {
                    self.say(format!("n{n} did not start on its full disk: {v}"));
                    return Ok(());
                }
                Err(v) => return Err(v),
            }
        };
        self.nodes.insert(n, node);
        let at = self.rng.range(1, TICK_MS);
        self.schedule(at, Ev::Tick(n, inc));
        Ok(())
    }

    /// Sends `command` to the leader of `partition` this client believes
    /// in, through the broker's command path.
    fn submit(&mut self, partition: PartitionId, op: Op, command: node::command::PartitionCommand) {
        let guess = self.leaders.get(&partition).copied();
        let n = guess.unwrap_or_else(|| {
            let replicas = self.replicas_of(partition);
            self.rng.pick(&replicas)
        });
        let wall = self.wall_ms(n);
        let node = self.nodes.get_mut(&n).expect("node");
        if !node.up {
            self.leaders.remove(&partition);
            return;
        }
        let (leading, leader) = node.replicas.leader(partition);
        if !leading {
            match leader {
                Some(l) => self.leaders.insert(partition, l),
                None => self.leaders.remove(&partition),
            };
            return;
        }
        if node
            .replicas
            .admission(partition)
            .refusal(&command)
            .is_some()
        {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let p = node.replicas.partition_mut(partition).expect("a replica");
        if let Some(entry) = p.prepare(&command, wall, tx) {
            if let Err(e) = node.replicas.propose(partition, vec![entry.clone()]) {
                let p = node.replicas.partition_mut(partition).expect("a replica");
                p.abandon(&entry, e);
            }
        }
        self.in_flight.push(InFlight {
            op,
            node: n,
            partition,
            sent_ms: self.now_ms,
            reply: rx,
        });
        let _ = self.pump(n);
    }

    fn client(&mut self) {
        if !self.deployed {
            if !self.in_flight.iter().any(|r| matches!(r.op, Op::Deploy)) {
                self.submit(1, Op::Deploy, workload::deploy());
            }
            return;
        }
        if self.healed_at_ms.is_some() {
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let p = self.rng.range(1, u64::from(self.config.partition_count)) as PartitionId;
        self.submit(p, Op::Create { id }, workload::create(id));
    }

    fn worker(&mut self) {
        if !self.deployed {
            return;
        }
        let p = self.rng.range(1, u64::from(self.config.partition_count)) as PartitionId;
        let job_type = if self.rng.chance(500) {
            "work"
        } else {
            "finish"
        };
        self.submit(p, Op::Activate, workload::activate(job_type));
        let due: Vec<Held> = self
            .held
            .iter()
            .filter(|h| h.due_ms <= self.now_ms)
            .cloned()
            .collect();
        self.held.retain(|h| h.due_ms > self.now_ms);
        for h in due {
            let op = Op::Complete {
                job: h.job,
                job_type: h.job_type.clone(),
                id: h.id,
            };
            self.submit(h.partition, op, workload::complete(h.job));
            if h.job_type == "work" {
                self.publishing
                    .entry((h.id, h.instance))
                    .or_insert(self.now_ms);
            }
        }
        let waiting = self.sink.with_facts(|f| {
            self.publishing
                .iter()
                .filter(|((_, instance), at)| {
                    **at <= self.now_ms && !f.finish_jobs.contains_key(instance)
                })
                .map(|(message, _)| *message)
                .collect::<Vec<(u64, i64)>>()
        });
        for (id, instance) in waiting {
            let p = engine::message_partition(&id.to_string(), self.config.message_partitions());
            self.submit(p, Op::Publish, workload::publish(id, instance));
            self.publishing
                .insert((id, instance), self.now_ms + workload::REPUBLISH_AFTER_MS);
        }
    }

    fn poll_replies(&mut self) {
        let now_ms = self.now_ms;
        self.in_flight
            .retain(|r| now_ms < r.sent_ms + REQUEST_TIMEOUT_MS);
        let mut i = 0;
        while i < self.in_flight.len() {
            let answer = match self.in_flight[i].reply.try_recv() {
                Err(TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Err(TryRecvError::Closed) => None,
                Ok(answer) => Some(answer),
            };
            let r = self.in_flight.swap_remove(i);
            if let Some(Err(e)) = &answer {
                let line = format!("{:?} on partition {} refused: {e}", r.op, r.partition);
                self.say(line);
            }
            let Some(Ok(reply)) = answer else {
                if let Some(Err(node::command::CommandError::NotLeader { leader, .. })) = answer {
                    match leader {
                        Some(l) => self.leaders.insert(r.partition, l),
                        None => self.leaders.remove(&r.partition),
                    };
                }
                continue;
            };
            self.answered(r, reply);
        }
    }

    fn answered(&mut self, r: InFlight, reply: CommandReply) {
        let acked_ms = self.now_ms;
        match (r.op, reply) {
            (Op::Deploy, CommandReply::Deployed(_)) => self.deployed = true,
            (Op::Create { id }, CommandReply::Created(c)) => {
                self.created.insert(c.process_instance_key, id);
                self.summary.created += 1;
                self.acked.push(Acked::Created {
                    key: c.process_instance_key,
                    sent_ms: r.sent_ms,
                    acked_ms,
                });
            }
            (Op::Activate, CommandReply::Jobs(jobs)) => {
                for job in jobs {
                    let Some(id) = workload::job_id(&job.variables) else {
                        continue;
                    };
                    // Now and then a worker is slower than the job's timeout.
                    let delay = if self.rng.chance(30) {
                        self.rng.range(2_000, 3_000)
                    } else {
                        self.rng.range(5, 300)
                    };
                    self.held.push(Held {
                        job: job.key,
                        job_type: job.r#type.clone(),
                        partition: r.partition,
                        id,
                        instance: job.process_instance_key,
                        due_ms: self.now_ms + delay,
                    });
                }
            }
            (Op::Complete { job, .. }, CommandReply::Done | CommandReply::Key(_)) => {
                self.summary.completions += 1;
                self.acked.push(Acked::Completed {
                    job,
                    sent_ms: r.sent_ms,
                    acked_ms,
                });
            }
            _ => {}
        }
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.say("heal: network, disks and crashed nodes".into());
        self.healed_at_ms = Some(self.now_ms);
        self.net.heal();
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for n in ids {
            let node = self.nodes.get_mut(&n).expect("node");
            node.sync_ms = (1, 4);
            node.disk.set_capacity_bytes(None);
            self.full.remove(&n);
            if !node.up {
                self.restart(n)?;
            }
        }
        Ok(())
    }

    /// Safety checks of the history so far; after healing, the end once
    /// every acknowledged instance completed.
    fn end_check(&mut self) -> Result<(), Violation> {
        self.schedule(CHECK_EVERY_MS, Ev::Check);
        let Some(healed) = self.healed_at_ms else {
            return self
                .sink
                .with_facts(|f| history::check(f, &self.acked, &self.applied_at, false));
        };
        // Time-outs run on the leader's clock: one that is behind delays
        // them, and so does a deadline a clock ahead set (a job activated
        // by a leader 59 s ahead times out 59 s late on the next leader).
        let behind = self
            .nodes
            .values()
            .map(|n| (-n.skew_ms).max(0) as u64)
            .max();
        let bound = LIVENESS_BOUND_MS + behind.unwrap_or(0) + self.max_ahead_ms;
        let over = self.now_ms > healed + bound;
        let open: Vec<i64> = self.sink.with_facts(|f| {
            self.created
                .keys()
                .filter(|k| !f.completed.contains(k))
                .copied()
                .collect()
        });
        let settled = open.is_empty() && self.deployed && self.adding.is_none();
        let complete = settled || over;
        self.sink
            .with_facts(|f| history::check(f, &self.acked, &self.applied_at, complete))?;
        if settled {
            self.done = true;
            return Ok(());
        }
        if let Some(q) = self.adding.filter(|_| over) {
            return Err(violation(
                "a partition added is made ready",
                format!("partition {q} was not bootstrapped {bound} ms after healing"),
            ));
        }
        if over {
            return Err(violation(
                "every acknowledged instance completes",
                format!(
                    "{} of {} instances unfinished {bound} ms after healing: {:?}",
                    open.len(),
                    self.created.len(),
                    &open[..open.len().min(5)]
                ),
            ));
        }
        Ok(())
    }

    fn fault(&mut self) -> Result<(), Violation> {
        self.summary.faults += 1;
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        let raft_ids: Vec<NodeId> = ids.iter().map(|n| raft_node(*n)).collect();
        let n = self.rng.pick(&ids);
        match self.rng.below(12) {
            0 | 1 => {
                if self.nodes[&n].up {
                    let mid_sync = self.rng.chance(500);
                    self.crash(n, mid_sync);
                    let after = self.rng.range(50, 1_500);
                    self.schedule(after, Ev::Restart(n));
                }
            }
            2 => {
                let rest: Vec<NodeId> = raft_ids
                    .iter()
                    .copied()
                    .filter(|&m| m != raft_node(n))
                    .collect();
                self.say(format!("isolate n{n}"));
                self.net.partition(&[raft_node(n)], &rest);
            }
            3 => {
                let (a, b) = (self.rng.pick(&raft_ids), self.rng.pick(&raft_ids));
                if a != b {
                    self.net.block(a, b);
                }
            }
            4 => {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for &m in &raft_ids {
                    if self.rng.chance(500) {
                        a.push(m);
                    } else {
                        b.push(m);
                    }
                }
                self.say(format!("split {a:?} / {b:?}"));
                self.net.partition(&a, &b);
            }
            5 => {
                let (d, u) = (self.net.drop_per_mille, self.net.dup_per_mille);
                self.net.heal();
                self.net.drop_per_mille = d;
                self.net.dup_per_mille = u;
            }
            6 => {
                self.net.drop_per_mille = self.rng.below(100);
                self.net.dup_per_mille = self.rng.below(100);
            }
            7 => {
                // The wall clock jumps, forward (job time-outs, timers fire
                // early) or back.
                let jump = self.rng.range(1, 30) as i64 * 1_000;
                let jump = if self.rng.chance(500) { jump } else { -jump };
                self.summary.clock_jumps += 1;
                self.say(format!("clock of n{n} jumps {jump} ms"));
                let node = self.nodes.get_mut(&n).expect("node");
                node.skew_ms += jump;
                self.max_ahead_ms = self.max_ahead_ms.max(node.skew_ms.max(0) as u64);
            }
            8 => {
                self.say(format!("slow disk on n{n}"));
                self.nodes.get_mut(&n).expect("node").sync_ms = (20, 200);
            }
            9 => {
                self.say(format!("the next fdatasync on n{n} fails"));
                self.nodes[&n].disk.inject(Fault {
                    op: DiskOp::Sync,
                    path_contains: String::new(),
                    skip: 0,
                    error: FaultError::Io,
                });
            }
            10 => {
                self.say(format!("disk of n{n} full"));
                self.full.insert(n);
                let disk = &self.nodes[&n].disk;
                disk.set_capacity_bytes(Some(disk.used_bytes() + 4096));
            }
            _ => {
                let leader = self.leaders.values().next().copied();
                if let Some(l) = leader.filter(|l| self.nodes[l].up) {
                    self.crash(l, false);
                    let after = self.rng.range(50, 800);
                    self.schedule(after, Ev::Restart(l));
                }
            }
        }
        Ok(())
    }
}

/// Outcome of a batch of broker seeds.
#[derive(Debug, Default)]
pub struct BrokerReport {
    /// Passing runs.
    pub passed: Vec<BrokerSummary>,
    /// Failures, by ascending seed.
    pub failures: Vec<Failure>,
}

impl BrokerReport {
    /// One line: seeds, and what the passing ones did in total.
    pub fn describe(&self) -> String {
        let sum = |f: fn(&BrokerSummary) -> u64| self.passed.iter().map(f).sum::<u64>();
        format!(
            "{} broker seeds passed, {} failed; {} instances created and {} completed, {} job \
             completions acknowledged, {} exported entries checked ({} compared between \
             leaders), {} engine fingerprints compared, {} faults ({} crashes, {} clock jumps), \
             {} partitions added under faults",
            self.passed.len(),
            self.failures.len(),
            sum(|s| s.created),
            sum(|s| s.instances_completed),
            sum(|s| s.completions),
            sum(|s| s.entries),
            sum(|s| s.entries_compared),
            sum(|s| s.fingerprints_compared),
            sum(|s| s.faults),
            sum(|s| s.crashes),
            sum(|s| s.clock_jumps),
            sum(|s| s.partitions_added),
        )
    }
}

/// Runs broker seeds `first..first + count` on up to `threads` threads.
pub fn run_broker_seeds(
    first: u64,
    count: u64,
    opts: &BrokerOptions,
    threads: usize,
) -> BrokerReport {
    let next = std::sync::atomic::AtomicU64::new(first);
    let report = std::sync::Mutex::new(BrokerReport::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, crate::runner::MAX_THREADS) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= first + count {
                    return;
                }
                let result = run_broker_seed(seed, opts);
                let mut r = report.lock().expect("report lock");
                match result {
                    Ok(s) => r.passed.push(s),
                    Err(f) => r.failures.push(f),
                }
            });
        }
    });
    let mut r = report.into_inner().expect("report lock");
    r.failures.sort_by_key(|f| f.seed);
    r.passed.sort_by_key(|s| s.seed);
    r
}

/// Runs one broker seed.
pub fn run_broker_seed(seed: u64, opts: &BrokerOptions) -> Result<BrokerSummary, Failure> {
    match BrokerSim::new(seed, opts.clone()) {
        Ok(sim) => sim.run(),
        Err(violation) => Err(Failure {
            seed,
            time_ms: 0,
            violation,
            trace: Vec::new(),
        }),
    }
}
