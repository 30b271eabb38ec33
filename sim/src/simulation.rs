//! One seeded run: N nodes × M groups in one thread, simulated time as a
//! priority queue of events, faults during a chaos phase, then a liveness
//! phase in which every fault is healed and each group must commit a probe
//! entry within [`LIVENESS_BOUND_MS`]. The [`Checker`] runs after every event.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use bytes::Bytes;
use raft::{
    Entry, EntryKind, Envelope, GroupConfig, GroupId, Index, LogReader, NodeId, ProposeError,
    RaftConfig, Role, Term, UnsafeForce,
};
use replica::{Driver, GroupSpec, ReplicaError};
use storage::{LogConfig, SimDisk};

use crate::checker::{payload_hash, violation, Checker, Violation};
use crate::network::Network;
use crate::node::{now, HashMachine, SimNode};
use crate::options::{
    Membership, Planted, Scenario, SimOptions, COMPACT_EVERY_ENTRIES, LIVENESS_BOUND_MS,
    MAX_EVENTS_PER_RUN, TICK_MS,
};
use crate::prng::Prng;

/// Simulated clients proposing concurrently.
pub const CLIENTS: usize = 3;
/// Proposed but uncommitted entries per group before the leader refuses
/// more: bounds the backlog that must drain before the liveness probe.
pub const MAX_UNCOMMITTED_ENTRIES: u64 = 500;
/// Simulated ms of a disk sync (range).
pub const SYNC_MS: (u64, u64) = (1, 4);
/// Latest a strike on a new leader lands after its election.
pub const STRIKE_MAX_DELAY_MS: u64 = 12;
/// Segment size of the simulated logs: small, so that runs roll, retire and
/// recycle segments.
pub const SIM_SEGMENT_SIZE_BYTES: u64 = 64 << 10;
/// A crash in the middle of a sync halts the disk after fewer mutating
/// operations than this.
pub const MAX_HALT_MUTATIONS: u64 = 8;
/// Longest interval between two writes of a commit-only hard state change
/// (drawn per run; the broker's is 1 s).
pub const MAX_COMMIT_STORE_INTERVAL_MS: u64 = 1_000;

#[derive(Debug)]
enum EventKind {
    Tick(NodeId, u64),
    Deliver(NodeId, Bytes),
    SyncDone(NodeId, u64),
    Client(usize),
    Fault,
    Restart(NodeId),
    /// Crash or isolate a node that just became leader (if still the same
    /// incarnation and the chaos phase is on).
    Strike(NodeId, u64),
    /// Ends the isolation of a struck leader.
    Reconnect(NodeId),
    Heal,
    Probe,
    /// A region is lost for good (`Membership::RegionFailover`).
    RegionLoss,
    /// The operator forces the survivors to a configuration of their own.
    Failover,
    /// The lost region comes back on empty disks and is added back; repeats
    /// until every group has every node as a voter again.
    Failback,
}

#[derive(Debug)]
struct Event {
    time_ms: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.time_ms, self.seq) == (other.time_ms, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time_ms, self.seq).cmp(&(other.time_ms, other.seq))
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    term: Term,
    payload: u64,
    probe: bool,
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// The seed.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Groups.
    pub groups: u64,
    /// Elections won.
    pub elections: u64,
    /// Entries acknowledged to clients.
    pub acked: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Faults injected.
    pub faults: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time when the run ended.
    pub sim_ms: u64,
    /// Simulated time from healing to the last group's probe commit.
    pub recovery_ms: u64,
    /// Membership changes proposed and accepted by a leader.
    pub reconfigurations: u64,
    /// Learners made voters once caught up (each also counts as a
    /// membership change).
    pub promotions: u64,
    /// Replicas added back to a group under the id of one deleted from it
    /// (empty, fenced by their leader's [`replica::JoinFence`]).
    pub rejoins: u64,
    /// Groups forced to the survivors of a lost region, and later restored
    /// to every node.
    pub failovers: u64,
}

/// A failed run.
#[derive(Clone, Debug, thiserror::Error)]
#[error("seed {seed} failed at {time_ms} ms: {violation}")]
pub struct Failure {
    /// The seed (replay with `--seed`).
    pub seed: u64,
    /// Simulated time of the failure.
    pub time_ms: u64,
    /// What broke.
    pub violation: Violation,
    /// Event trace (when tracing).
    pub trace: Vec<String>,
}

/// A whole simulated cluster.
pub struct Simulation {
    seed: u64,
    opts: SimOptions,
    sc: Scenario,
    rng: Prng,
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Event>>,
    nodes: BTreeMap<NodeId, SimNode>,
    net: Network,
    checker: Checker,
    targets: Vec<BTreeMap<GroupId, NodeId>>,
    next_payload: u64,
    pending: HashMap<(NodeId, GroupId, Index), Pending>,
    healed_at_ms: Option<u64>,
    probes_done: BTreeSet<GroupId>,
    trace: Vec<String>,
    summary: RunSummary,
    done: bool,
    commit_store_interval_ms: u64,
    /// The nodes of a region lost for good (down until the failback).
    gone: BTreeSet<NodeId>,
    /// `(node, group)` replicas held with membership changes.
    hosting: BTreeMap<(NodeId, GroupId), GroupConfig>,
    /// Replicas removed from their group's configuration, deleted once the
    /// leader applied the removal.
    leaving: BTreeSet<(NodeId, GroupId)>,
    /// Replicas deleted after leaving: added back under the same id, they
    /// count as rejoins (see `delete_left`).
    retired: BTreeSet<(NodeId, GroupId)>,
    /// The voters the survivors were forced to, once the failover ran.
    forced: Option<BTreeSet<NodeId>>,
    failback_started: bool,
    failback_done: bool,
}

impl Simulation {
    /// Builds the cluster for `seed`.
    pub fn new(seed: u64, opts: SimOptions) -> Self {
        let mut rng = Prng::new(seed);
        let sc = Scenario::draw(seed, &mut rng, opts.membership);
        let ids: Vec<NodeId> = (1..=sc.nodes).collect();
        let region = ids
            .iter()
            .map(|&n| (n, if sc.two_regions { (n % 2) as u8 } else { 0 }))
            .collect();
        let mut sim = Simulation {
            seed,
            opts,
            sc: sc.clone(),
            rng,
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: BTreeMap::new(),
            net: Network::new(region),
            checker: Checker::default(),
            targets: vec![BTreeMap::new(); CLIENTS],
            next_payload: 0,
            pending: HashMap::new(),
            healed_at_ms: None,
            probes_done: BTreeSet::new(),
            trace: Vec::new(),
            summary: RunSummary {
                seed,
                nodes: sc.nodes,
                groups: sc.groups,
                ..RunSummary::default()
            },
            done: false,
            commit_store_interval_ms: 0,
            gone: BTreeSet::new(),
            hosting: BTreeMap::new(),
            leaving: BTreeSet::new(),
            retired: BTreeSet::new(),
            forced: None,
            failback_started: false,
            failback_done: false,
        };
        sim.say(format!("scenario {:?}", sim.sc));
        sim.commit_store_interval_ms = sim.rng.below(MAX_COMMIT_STORE_INTERVAL_MS + 1);
        if sc.membership == Membership::Changes {
            for n in sc.initial_voters() {
                for g in 1..=sc.groups {
                    sim.hosting.insert((n, g), sim.initial_config());
                }
            }
        }
        for &n in &ids {
            let node = sim
                .boot(n, SimDisk::new(), 0)
                .expect("a fresh simulated disk opens");
            sim.nodes.insert(n, node);
            let first_tick = sim.rng.range(1, TICK_MS);
            sim.schedule(first_tick, EventKind::Tick(n, 0));
        }
        for c in 0..CLIENTS {
            let at = sim.rng.range(1, 20);
            sim.schedule(at, EventKind::Client(c));
        }
        if sim.opts.faults {
            let at = sim.rng.range(50, sim.sc.fault_every_ms * 2);
            sim.schedule(at, EventKind::Fault);
        }
        let chaos = sim.opts.chaos_ms;
        if sim.opts.faults && sim.sc.membership == Membership::RegionFailover {
            let at = sim.rng.range(chaos / 5, chaos / 2);
            sim.schedule(at, EventKind::RegionLoss);
        }
        sim.schedule(chaos, EventKind::Heal);
        sim
    }

    fn raft_config(&self) -> RaftConfig {
        let mut cfg = RaftConfig {
            election_ticks: self.sc.election_ticks,
            heartbeat_ticks: self.sc.heartbeat_ticks,
            max_append_bytes: self.sc.max_append_bytes,
            max_inflight_msgs: self.sc.max_inflight_msgs,
            snapshot_chunk_bytes: 32,
            max_snapshot_chunks_in_flight: 2,
            max_uncommitted_entries: MAX_UNCOMMITTED_ENTRIES,
            ..RaftConfig::default()
        };
        assert!(
            cfg.set_bug(self.opts.bug.and_then(Planted::raft)),
            "a bug variant was requested but raft lacks the `bug-injection` feature"
        );
        cfg
    }

    /// The configuration of a group whose node holds nothing yet: the
    /// scenario's voters, or the survivors' once a region was lost (a node
    /// that rejoins on an empty disk does not vote until it is added back).
    fn initial_config(&self) -> GroupConfig {
        let mut c = match &self.forced {
            Some(survivors) => GroupConfig::new(survivors.iter().copied()),
            None => GroupConfig::new(self.sc.initial_voters()),
        };
        if self.sc.priorities {
            c = c.with_priority(1, 3).with_priority(2, 2);
        }
        c
    }

    /// Starts node `id` over `disk` (fresh or after a crash): the driver
    /// opens every group, recovering what the disk kept.
    fn boot(&mut self, id: NodeId, disk: SimDisk, incarnation: u64) -> Result<SimNode, Violation> {
        let options = replica::Options {
            me: id,
            raft: self.raft_config(),
            seed: self.rng.next_u64(),
            log: LogConfig {
                segment_size_bytes: SIM_SEGMENT_SIZE_BYTES,
                ..LogConfig::default()
            },
            accept_data_loss: false,
            commit_store_interval_ms: self.commit_store_interval_ms,
            bug: self.opts.bug.and_then(Planted::driver),
        };
        let groups = self
            .hosted(id)
            .into_iter()
            .map(|(g, initial)| self.group_spec(g, initial))
            .collect();
        let (driver, _) = now(Driver::open(disk.clone(), &options, groups, &|| {}))
            .map_err(|e| storage_violation(id, e))?;
        Ok(SimNode {
            id,
            up: true,
            incarnation,
            disk,
            driver,
            io: None,
        })
    }

    /// The groups node `id` holds a replica of: every group, except that
    /// with membership changes a node holds one from the change that adds
    /// it until the leader applied the change that removes it.
    /// With each, the configuration it starts with when it holds nothing yet
    /// (the one of the moment it joined).
    fn hosted(&self, id: NodeId) -> Vec<(GroupId, GroupConfig)> {
        match self.sc.membership {
            Membership::Changes => self
                .hosting
                .iter()
                .filter(|((n, _), _)| *n == id)
                .map(|((_, g), c)| (*g, c.clone()))
                .collect(),
            Membership::Fixed | Membership::RegionFailover => (1..=self.sc.groups)
                .map(|g| (g, self.initial_config()))
                .collect(),
        }
    }

    fn group_spec(&self, g: GroupId, initial: GroupConfig) -> GroupSpec<HashMachine> {
        GroupSpec {
            group: g,
            dir: format!("/g{g}").into(),
            initial,
            machine: HashMachine::default(),
            fence: None,
        }
    }

    fn say(&mut self, line: String) {
        if self.opts.trace {
            self.trace.push(format!("{:>7}ms {line}", self.now_ms));
        }
    }

    fn schedule(&mut self, delay_ms: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            time_ms: self.now_ms + delay_ms,
            seq: self.seq,
            kind,
        }));
    }

    fn send(&mut self, env: Envelope) {
        if self.opts.trace {
            for m in &env.messages {
                self.trace.push(format!(
                    "{:>7}ms send {}->{} {m}",
                    self.now_ms, env.from, env.to
                ));
            }
        }
        let bytes = raft::encode(&env);
        for delay in self.net.deliveries(&mut self.rng, env.from, env.to) {
            self.schedule(delay, EventKind::Deliver(env.to, bytes.clone()));
        }
    }

    /// Runs the simulation to its end.
    pub fn run(mut self) -> Result<RunSummary, Failure> {
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
        while let Some(Reverse(ev)) = self.queue.pop() {
            self.now_ms = ev.time_ms;
            self.summary.events += 1;
            if self.summary.events > MAX_EVENTS_PER_RUN {
                return Err(violation(
                    "bounded run",
                    format!("more than {MAX_EVENTS_PER_RUN} events"),
                ));
            }
            self.handle(ev.kind)?;
            if self.done {
                break;
            }
        }
        self.summary.sim_ms = self.now_ms;
        self.summary.elections = self.checker.elections;
        self.summary.acked = self.checker.acked_count;
        self.final_checks()
    }

    fn handle(&mut self, kind: EventKind) -> Result<(), Violation> {
        match kind {
            EventKind::Tick(n, inc) => {
                let node = self.nodes.get_mut(&n).expect("node");
                if !node.up || node.incarnation != inc {
                    return Ok(());
                }
                node.raft_mut().tick();
                self.schedule(TICK_MS, EventKind::Tick(n, inc));
                self.pump(n)?;
                self.check_node(n)
            }
            EventKind::Deliver(to, bytes) => {
                if !self.nodes[&to].up {
                    return Ok(());
                }
                let env = raft::decode(bytes)
                    .map_err(|e| violation("wire codec round trip", e.to_string()))?;
                if self.opts.trace {
                    for m in &env.messages {
                        self.trace.push(format!(
                            "{:>7}ms recv {}->{} {m}",
                            self.now_ms, env.from, env.to
                        ));
                    }
                }
                self.nodes.get_mut(&to).expect("node").driver.step(env);
                self.pump(to)?;
                self.check_node(to)
            }
            EventKind::SyncDone(n, inc) => {
                let node = &self.nodes[&n];
                if !node.up || node.incarnation != inc {
                    return Ok(());
                }
                self.sync_done(n)?;
                self.pump(n)?;
                self.check_node(n)
            }
            EventKind::Client(c) => {
                self.client(c)?;
                if self.healed_at_ms.is_none() {
                    let next = self.rng.range(3, 30);
                    self.schedule(next, EventKind::Client(c));
                }
                Ok(())
            }
            EventKind::Fault => {
                if self.healed_at_ms.is_none() {
                    self.fault()?;
                    let next = self.rng.range(10, self.sc.fault_every_ms * 2);
                    self.schedule(next, EventKind::Fault);
                }
                Ok(())
            }
            EventKind::Strike(n, inc) => {
                let node = &self.nodes[&n];
                if self.healed_at_ms.is_some() || !node.up || node.incarnation != inc {
                    return Ok(());
                }
                self.summary.faults += 1;
                if self.rng.chance(500) {
                    self.say(format!("strike: crash new leader n{n}"));
                    self.crash(n)?;
                    let after = self.rng.range(20, 600);
                    self.schedule(after, EventKind::Restart(n));
                } else {
                    self.say(format!("strike: isolate new leader n{n}"));
                    let rest: Vec<NodeId> =
                        self.nodes.keys().copied().filter(|&m| m != n).collect();
                    self.net.partition(&[n], &rest);
                    let after = self.rng.range(30, 300);
                    self.schedule(after, EventKind::Reconnect(n));
                }
                Ok(())
            }
            EventKind::Reconnect(n) => {
                if self.healed_at_ms.is_none() {
                    self.say(format!("reconnect n{n}"));
                    self.net.reconnect(n);
                }
                Ok(())
            }
            EventKind::Restart(n) => {
                if self.nodes[&n].up || self.gone.contains(&n) {
                    return Ok(());
                }
                self.restart(n)?;
                self.pump(n)?;
                self.check_node(n)
            }
            EventKind::Heal => {
                self.say("heal: network restored, crashed nodes restart".into());
                self.healed_at_ms = Some(self.now_ms);
                self.net.heal();
                let down: Vec<NodeId> = self
                    .nodes
                    .values()
                    .filter(|n| !n.up && !self.gone.contains(&n.id))
                    .map(|n| n.id)
                    .collect();
                for n in down {
                    self.restart(n)?;
                    self.pump(n)?;
                }
                self.schedule(0, EventKind::Probe);
                Ok(())
            }
            EventKind::Probe => self.probe(),
            EventKind::RegionLoss => self.region_loss(),
            EventKind::Failover => self.failover(),
            EventKind::Failback => self.failback(),
        }
    }

    /// Hands the node's next ready to its driver: messages go out, writes
    /// are buffered, and the sync completes after a simulated delay.
    fn pump(&mut self, n: NodeId) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&n).expect("node");
        if !node.up || node.io.is_some() || !node.driver.has_ready() {
            return Ok(());
        }
        let ready = node.driver.ready();
        for gr in &ready.groups {
            let Some(first) = gr.entries.first() else {
                continue;
            };
            let reader = self.nodes[&n].raft().reader();
            let snap = gr.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term));
            let term_of = |i: Index| match snap {
                Some((si, st)) if i == si => Some(st),
                Some((si, _)) if i > si => None,
                _ => reader.term(gr.group, i),
            };
            let mut prev = term_of(first.index - 1).unwrap_or(0);
            let existing: Vec<Option<Term>> = gr.entries.iter().map(|e| term_of(e.index)).collect();
            for (e, existing) in gr.entries.iter().zip(existing) {
                self.checker.written(n, gr.group, e, prev, existing)?;
                prev = e.term;
            }
        }
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&n).expect("node");
        let flight = now(node
            .driver
            .write(ready.groups, ready.messages_after_persist, now_ms))
        .map_err(|e| storage_violation(n, e))?;
        node.io = Some(flight);
        let inc = node.incarnation;
        for env in ready.messages {
            self.send(env);
        }
        let delay = self.rng.range(SYNC_MS.0, SYNC_MS.1);
        self.schedule(delay, EventKind::SyncDone(n, inc));
        Ok(())
    }

    /// The node's sync completed: acknowledgements, messages that waited for
    /// it, installed snapshots checked, committed entries applied.
    fn sync_done(&mut self, n: NodeId) -> Result<(), Violation> {
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&n).expect("node");
        let flight = node.io.take().expect("sync without write");
        let landed = now(node.driver.sync(flight, now_ms)).map_err(|e| storage_violation(n, e))?;
        for env in landed.messages {
            self.send(env);
        }
        for (g, meta) in landed.installed {
            let state = self.nodes[&n].sm(g);
            if state.applied != meta.index {
                return Err(violation(
                    "snapshot format",
                    format!(
                        "node {n} group {g}: data at {} for meta {}",
                        state.applied, meta.index
                    ),
                ));
            }
            self.checker
                .snapshot_installed(n, g, meta.index, state.hash)?;
            self.say(format!("n{n}/g{g} installed snapshot at {}", meta.index));
        }
        for (g, entries) in landed.committed {
            let mut out = Vec::new();
            self.nodes
                .get_mut(&n)
                .expect("node")
                .driver
                .apply(g, &entries, &mut out)
                .map_err(|e| violation("apply order", format!("node {n}: {e}")))?;
            for (prev, e) in out {
                self.apply(n, g, prev, &e)?;
            }
        }
        if self.sc.compaction {
            for g in 1..=self.sc.groups {
                let node = &self.nodes[&n];
                let sm = node.sm(g);
                let first = node.raft().reader().first_index(g);
                let status_applied = node.raft().status(g).map(|s| s.applied).unwrap_or(0);
                if sm.applied + 1 >= first + COMPACT_EVERY_ENTRIES
                    && status_applied == sm.applied
                    && self.rng.chance(300)
                {
                    self.say(format!("n{n}/g{g} snapshot and compact at {}", sm.applied));
                    let node = self.nodes.get_mut(&n).expect("node");
                    now(node.driver.snapshot(g, now_ms)).map_err(|e| storage_violation(n, e))?;
                }
            }
        }
        Ok(())
    }

    /// The checker's view of an applied entry (`prev`: the chain hash before
    /// it), and the acknowledgement of a pending proposal.
    fn apply(&mut self, n: NodeId, g: GroupId, prev: u64, e: &Entry) -> Result<(), Violation> {
        self.checker.applied(n, g, prev, e)?;
        if let Some(p) = self.pending.remove(&(n, g, e.index)) {
            if p.term == e.term && p.payload == payload_hash(e) {
                self.checker.ack(g, e.index, e.term, p.payload);
                if p.probe {
                    self.say(format!("g{g} probe committed at {}", e.index));
                    self.probes_done.insert(g);
                    self.maybe_done();
                }
            }
        }
        Ok(())
    }

    /// The run ends once every group committed its probe and a lost region
    /// is back.
    fn maybe_done(&mut self) {
        let failback_pending = self.sc.membership == Membership::RegionFailover
            && self.opts.faults
            && !self.failback_done;
        if self.probes_done.len() as u64 == self.sc.groups && !failback_pending {
            self.summary.recovery_ms = self.now_ms - self.healed_at_ms.unwrap_or(self.now_ms);
            self.done = true;
        }
    }

    /// Election safety, leader completeness and commit bookkeeping for `n`.
    fn check_node(&mut self, n: NodeId) -> Result<(), Violation> {
        if !self.nodes[&n].up {
            return Ok(());
        }
        for g in 1..=self.sc.groups {
            let Some(b) = self.nodes[&n].raft().brief(g) else {
                continue;
            };
            if b.role != Role::Leader {
                continue;
            }
            if self.checker.leader(g, b.term, n)? {
                let config = self.nodes[&n].raft().status(g).map(|s| s.config);
                self.say(format!(
                    "n{n} leads g{g} in term {} with {config:?}",
                    b.term
                ));
                if self.opts.faults
                    && self.healed_at_ms.is_none()
                    && self.rng.chance(self.opts.strike_per_mille)
                {
                    let inc = self.nodes[&n].incarnation;
                    let at = self.rng.range(1, STRIKE_MAX_DELAY_MS);
                    self.schedule(at, EventKind::Strike(n, inc));
                }
                let raft = self.nodes[&n].raft();
                let first = raft.reader().first_index(g);
                self.checker
                    .new_leader(n, g, b.term, first, b.last_index, &|i| raft.term_at(g, i))?;
            }
            let at = self.nodes[&n].raft().term_at(g, b.commit);
            self.checker.leader_commit(n, g, b.term, b.commit, at)?;
            let known = self.checker.commit_index(g);
            for i in known + 1..=b.commit {
                match self.nodes[&n].raft().term_at(g, i) {
                    Some(t) => self.checker.commit(g, i, t, b.term),
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn client(&mut self, c: usize) -> Result<(), Violation> {
        let g = self.rng.range(1, self.sc.groups);
        let n = match self.targets[c].get(&g) {
            Some(&n) => n,
            None => self.rng.range(1, self.sc.nodes),
        };
        if !self.nodes[&n].up {
            let other = self.rng.range(1, self.sc.nodes);
            self.targets[c].insert(g, other);
            return Ok(());
        }
        let count = self.rng.range(1, 3);
        let batch: Vec<Bytes> = (0..count)
            .map(|_| {
                self.next_payload += 1;
                Bytes::from(format!("c{c}-{}", self.next_payload))
            })
            .collect();
        self.propose(n, g, batch, false, c)
    }

    fn propose(
        &mut self,
        n: NodeId,
        g: GroupId,
        batch: Vec<Bytes>,
        probe: bool,
        c: usize,
    ) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&n).expect("node");
        match node.raft_mut().propose(g, batch.clone()) {
            Ok((first, _)) => {
                let term = node.raft().brief(g).expect("group").term;
                for (k, data) in batch.into_iter().enumerate() {
                    let e = Entry {
                        term,
                        index: first + k as u64,
                        kind: EntryKind::Normal,
                        data,
                    };
                    self.pending.insert(
                        (n, g, e.index),
                        Pending {
                            term,
                            payload: payload_hash(&e),
                            probe,
                        },
                    );
                }
                self.pump(n)?;
                self.check_node(n)
            }
            Err(ProposeError::NotLeader { leader_hint, .. }) => {
                let next = if leader_hint != 0 {
                    leader_hint
                } else {
                    self.rng.range(1, self.sc.nodes)
                };
                if !probe {
                    self.targets[c].insert(g, next);
                }
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    fn probe(&mut self) -> Result<(), Violation> {
        let healed = self.healed_at_ms.expect("probe after heal");
        self.maybe_done();
        if self.done {
            return Ok(());
        }
        if self.now_ms > healed + LIVENESS_BOUND_MS
            && self.probes_done.len() as u64 == self.sc.groups
        {
            return Err(violation(
                "liveness",
                format!(
                    "the lost region was not added back within {LIVENESS_BOUND_MS} ms of healing"
                ),
            ));
        }
        if self.now_ms > healed + LIVENESS_BOUND_MS {
            if self.opts.trace {
                for node in self.nodes.values() {
                    for g in 1..=self.sc.groups {
                        let status = node.raft().status(g);
                        self.trace.push(format!("n{} g{g}: {status:?}", node.id));
                    }
                }
            }
            let missing: Vec<GroupId> = (1..=self.sc.groups)
                .filter(|g| !self.probes_done.contains(g))
                .collect();
            return Err(violation(
                "liveness",
                format!(
                    "groups {missing:?} committed nothing within {LIVENESS_BOUND_MS} ms of healing"
                ),
            ));
        }
        for g in 1..=self.sc.groups {
            if self.probes_done.contains(&g) {
                continue;
            }
            let leader = self
                .nodes
                .values()
                .filter(|n| n.up)
                .filter_map(|n| {
                    let b = n.raft().brief(g)?;
                    (b.role == Role::Leader).then_some((b.term, n.id))
                })
                .max();
            if let Some((_, n)) = leader {
                self.next_payload += 1;
                let data = Bytes::from(format!("probe-{}", self.next_payload));
                self.propose(n, g, vec![data], true, 0)?;
            }
        }
        self.schedule(100, EventKind::Probe);
        Ok(())
    }

    /// Power loss on `n`, half the time in the middle of the sync in
    /// flight (the disk halts after a few mutating operations: a segment
    /// write done but not its `fdatasync`, ...), so that the log's tail is
    /// torn at a sector boundary. The node stays down until its restart,
    /// when its driver recovers from what the disk kept.
    fn crash(&mut self, n: NodeId) -> Result<(), Violation> {
        self.summary.crashes += 1;
        self.say(format!("crash n{n}"));
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&n).expect("node");
        node.up = false;
        node.incarnation += 1;
        if let Some(flight) = node.io.take() {
            if self.rng.chance(500) {
                node.disk
                    .halt_after_mutations(self.rng.below(MAX_HALT_MUTATIONS));
                // Fails once the disk halts; what it wrote before may survive.
                let _ = now(node.driver.sync(flight, now_ms));
            }
        }
        node.disk.crash(self.rng.next_u64());
        self.pending.retain(|(node, _, _), _| *node != n);
        Ok(())
    }

    fn restart(&mut self, n: NodeId) -> Result<(), Violation> {
        self.say(format!("restart n{n}"));
        let old = &self.nodes[&n];
        let (inc, disk) = (old.incarnation, old.disk.clone());
        let mut node = self.boot(n, disk, inc)?;
        if let (Some(survivors), false) = (&self.forced, self.failback_started) {
            // The failover is an operator's decision held outside the log
            // until a later configuration is durable: a survivor whose disk
            // holds only the configuration with the lost region is forced
            // again, or two survivors restarting together could never
            // elect a leader.
            if survivors.contains(&n) {
                for g in 1..=self.sc.groups {
                    node.raft_mut().force_reconfiguration(
                        g,
                        survivors.clone(),
                        UnsafeForce::IAcceptDataLoss,
                    );
                }
            }
        }
        self.nodes.insert(n, node);
        let first = self.rng.range(1, TICK_MS);
        self.schedule(first, EventKind::Tick(n, inc));
        Ok(())
    }

    /// The up node that leads `g` in the highest term.
    fn leader_of(&self, g: GroupId) -> Option<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.up)
            .filter_map(|n| {
                let b = n.raft().brief(g)?;
                (b.role == Role::Leader).then_some((b.term, n.id))
            })
            .max()
            .map(|(_, n)| n)
    }

    /// A membership change through the leader of a random group: add a
    /// node (half the time as a learner first, as the broker's cluster
    /// changes do), remove a voter (keeping three), replace one (two nodes
    /// change at once, through the joint configuration) or only new
    /// priorities; with a learner in the group, make it a voter once caught
    /// up, or drop it.
    fn reconfigure(&mut self) -> Result<(), Violation> {
        let g = self.rng.range(1, self.sc.groups);
        let Some(l) = self.leader_of(g) else {
            return Ok(());
        };
        let config = self.nodes[&l].raft().status(g).expect("group").config;
        if config.is_joint() {
            return Ok(());
        }
        self.delete_left(g, &config)?;
        if let Some(&learner) = config.learners.iter().next() {
            return self.settle_learner(g, l, &config, learner);
        }
        let members: Vec<NodeId> = config.voters.iter().copied().collect();
        // A node joins only when it is up and holds nothing of the group.
        let others: Vec<NodeId> = (1..=self.sc.nodes)
            .filter(|n| !config.voters.contains(n))
            .filter(|n| self.nodes[n].up && !self.hosting.contains_key(&(*n, g)))
            .collect();
        let mut next = config.voters.clone();
        match self.rng.below(4) {
            0 if !others.is_empty() && self.rng.chance(500) => {
                let n = self.pick_joiner(g, &others);
                return self.add_learner(g, l, &config, n);
            }
            0 if !others.is_empty() => {
                let n = self.pick_joiner(g, &others);
                next.insert(n);
            }
            1 if members.len() > 3 => {
                next.remove(&self.rng.pick(&members));
            }
            2 if !others.is_empty() => {
                next.remove(&self.rng.pick(&members));
                let n = self.pick_joiner(g, &others);
                next.insert(n);
            }
            _ => {}
        }
        let joining: Vec<NodeId> = next.difference(&config.voters).copied().collect();
        let left: Vec<NodeId> = config.voters.difference(&next).copied().collect();
        let priorities: BTreeMap<NodeId, u32> = if self.sc.priorities {
            next.iter()
                .map(|&n| (n, self.rng.range(1, 3) as u32))
                .collect()
        } else {
            BTreeMap::new()
        };
        self.say(format!("reconfigure g{g} on n{l}: {next:?} {priorities:?}"));
        let fence = self.nodes[&l].driver.join_fence(g);
        if !self.propose_voters(l, g, next, priorities) {
            return Ok(());
        }
        // The joining replicas start empty, with the configuration of the
        // moment (they vote once the change that adds them is applied), and
        // fenced where the leader stood.
        for n in joining {
            self.open_empty(n, g, &config, fence)?;
        }
        if !left.is_empty() && self.rng.chance(600) {
            // A voter that stays misses the removal for a while: still in the
            // configuration that counts the removed node, it meets it again
            // when it rejoins, empty.
            let stays: Vec<NodeId> = config
                .voters
                .iter()
                .copied()
                .filter(|n| *n != l && !left.contains(n))
                .collect();
            if !stays.is_empty() {
                let s = self.rng.pick(&stays);
                let rest: Vec<NodeId> = self.nodes.keys().copied().filter(|&m| m != s).collect();
                self.say(format!("isolate n{s} (it misses the removal)"));
                self.net.partition(&[s], &rest);
            }
        }
        self.leaving.extend(left.into_iter().map(|n| (n, g)));
        self.pump(l)
    }

    /// One of `others` to join `g`: most often one deleted from it before,
    /// so that a replica still in a configuration from before that removal
    /// meets the new, empty one often.
    fn pick_joiner(&mut self, g: GroupId, others: &[NodeId]) -> NodeId {
        let again: Vec<NodeId> = others
            .iter()
            .copied()
            .filter(|n| self.retired.contains(&(*n, g)))
            .collect();
        if !again.is_empty() && self.rng.below(4) != 0 {
            self.rng.pick(&again)
        } else {
            self.rng.pick(others)
        }
    }

    /// Makes `n` a learner of `g` through its leader `l`, and opens an empty
    /// replica on it with the configuration of the moment: it is sent the
    /// log (a snapshot first, when compacted) but counts in no quorum.
    fn add_learner(
        &mut self,
        g: GroupId,
        l: NodeId,
        config: &GroupConfig,
        n: NodeId,
    ) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&l).expect("node");
        let fence = node.driver.join_fence(g);
        if node.raft_mut().propose_learners(g, [n].into()).is_err() {
            return Ok(());
        }
        self.say(format!("n{n} joins g{g} as a learner (through n{l})"));
        self.summary.reconfigurations += 1;
        self.open_empty(n, g, config, fence)?;
        self.pump(l)
    }

    /// Opens an empty replica of `g` on `n` with `config`, the
    /// configuration of the moment, fenced where its leader stood.
    fn open_empty(
        &mut self,
        n: NodeId,
        g: GroupId,
        config: &GroupConfig,
        fence: Option<replica::JoinFence>,
    ) -> Result<(), Violation> {
        let again = self.retired.remove(&(n, g));
        self.summary.rejoins += u64::from(again);
        self.say(format!(
            "n{n} opens an empty replica of g{g}{} ({fence:?})",
            if again { " again, under its id" } else { "" }
        ));
        let spec = GroupSpec {
            fence,
            ..self.group_spec(g, config.clone())
        };
        let node = self.nodes.get_mut(&n).expect("node");
        now(node.driver.add_group(spec, &|| {})).map_err(|e| storage_violation(n, e))?;
        self.hosting.insert((n, g), config.clone());
        self.pump(n)
    }

    /// The learner `n` of `g`: made a voter once its log is close to the
    /// leader's commit index, or (one time in four) dropped, its replica
    /// deleted once the leader applied that.
    fn settle_learner(
        &mut self,
        g: GroupId,
        l: NodeId,
        config: &GroupConfig,
        n: NodeId,
    ) -> Result<(), Violation> {
        if self.rng.below(4) == 0 {
            let node = self.nodes.get_mut(&l).expect("node");
            if node.raft_mut().propose_learners(g, BTreeSet::new()).is_ok() {
                self.say(format!("g{g} drops its learner n{n}"));
                self.summary.reconfigurations += 1;
                self.leaving.insert((n, g));
            }
            return self.pump(l);
        }
        let raft = self.nodes[&l].raft();
        let commit = raft.status(g).expect("group").commit;
        let caught_up = raft
            .progress(g)
            .and_then(|p| p.get(&n).map(|p| p.match_index + 8 >= commit))
            .unwrap_or(false);
        if !caught_up {
            return Ok(());
        }
        let mut next = config.voters.clone();
        next.insert(n);
        let mut priorities = config.priorities.clone();
        if self.sc.priorities {
            priorities.insert(n, self.rng.range(1, 3) as u32);
        }
        if self.propose_voters(l, g, next.clone(), priorities) {
            self.say(format!("g{g} makes its learner n{n} a voter: {next:?}"));
            self.summary.promotions += 1;
        }
        self.pump(l)
    }

    /// Proposes `voters` and `priorities` for `g` on its leader `l`; true
    /// (and counted) when the leader accepted the change.
    fn propose_voters(
        &mut self,
        l: NodeId,
        g: GroupId,
        voters: BTreeSet<NodeId>,
        priorities: BTreeMap<NodeId, u32>,
    ) -> bool {
        let node = self.nodes.get_mut(&l).expect("node");
        let accepted = node
            .raft_mut()
            .propose_conf_change(g, voters, priorities)
            .is_ok();
        self.summary.reconfigurations += u64::from(accepted);
        accepted
    }

    /// Deletes the replicas of `g` whose removal the leader applied
    /// (`config`, not joint): a replica that left deletes its data. Such a
    /// node may join the group again under the same id: empty, it would
    /// grant its vote to a candidate whose configuration predates its
    /// removal and still counts it, a quorum that need not overlap the
    /// group's, were it not fenced where the leader stood when it joined
    /// (`replica::JoinFence`; the planted `JoinWithoutFence` shows it). In
    /// the failover seeds the rejoining region is safe because the failback
    /// waits until no survivor can restart with a configuration from before
    /// the failover.
    fn delete_left(&mut self, g: GroupId, config: &GroupConfig) -> Result<(), Violation> {
        let done: Vec<NodeId> = self
            .leaving
            .iter()
            .filter(|(n, lg)| *lg == g && !config.members().contains(n))
            .map(|(n, _)| *n)
            .collect();
        for n in done {
            self.leaving.remove(&(n, g));
            self.hosting.remove(&(n, g));
            self.retired.insert((n, g));
            if !self.nodes[&n].up {
                // It opens only what it holds when it comes back.
                continue;
            }
            self.say(format!("n{n} deletes its replica of g{g}"));
            let node = self.nodes.get_mut(&n).expect("node");
            now(node.driver.remove_group(g)).map_err(|e| storage_violation(n, e))?;
        }
        Ok(())
    }

    /// One region is lost for good: its nodes go down and stay down.
    fn region_loss(&mut self) -> Result<(), Violation> {
        let region = self.rng.below(2) as u8;
        let lost: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|n| self.net.region.get(n) == Some(&region))
            .collect();
        self.say(format!("region {region} lost for good: {lost:?}"));
        for n in lost {
            if self.nodes[&n].up {
                self.crash(n)?;
            }
            self.gone.insert(n);
        }
        let after = self.rng.range(100, 800);
        self.schedule(after, EventKind::Failover);
        Ok(())
    }

    /// The operator's failover: every surviving replica of every group is
    /// forced to the survivors (a survivor that is down is forced when it
    /// restarts).
    fn failover(&mut self) -> Result<(), Violation> {
        let survivors: BTreeSet<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|n| !self.gone.contains(n))
            .collect();
        self.say(format!("failover: force {survivors:?}"));
        self.forced = Some(survivors.clone());
        for &n in &survivors {
            if !self.nodes[&n].up {
                continue;
            }
            for g in 1..=self.sc.groups {
                self.nodes
                    .get_mut(&n)
                    .expect("node")
                    .raft_mut()
                    .force_reconfiguration(g, survivors.clone(), UnsafeForce::IAcceptDataLoss);
            }
            self.pump(n)?;
        }
        self.summary.failovers += self.sc.groups;
        let after = self.rng.range(800, 1500);
        self.schedule(after, EventKind::Failback);
        Ok(())
    }

    /// The operator's failback: the lost nodes start on empty disks (not
    /// voters yet), and the leader of each group adds them back, retried
    /// every 100 ms until every group has every node as a voter.
    fn failback(&mut self) -> Result<(), Violation> {
        if !self.failback_started {
            // The failover must be complete first: every survivor would
            // restart with the survivors' configuration. Before that, a
            // survivor restarting with the lost region's configuration could
            // be elected by the empty rejoining nodes without the entries
            // only the other survivor holds.
            let survivors = self.forced.clone().expect("failback after failover");
            let durable = survivors.iter().all(|n| {
                let node = &self.nodes[n];
                node.up
                    && (1..=self.sc.groups).all(|g| {
                        let c = node.driver.durable_config(g);
                        c.voters == survivors && !c.is_joint()
                    })
            });
            if !durable {
                self.schedule(100, EventKind::Failback);
                return Ok(());
            }
            self.failback_started = true;
            let back: Vec<NodeId> = std::mem::take(&mut self.gone).into_iter().collect();
            self.say(format!("failback: {back:?} rejoin on empty disks"));
            for n in back {
                let inc = self.nodes[&n].incarnation + 1;
                let node = self.boot(n, SimDisk::new(), inc)?;
                self.nodes.insert(n, node);
                let first = self.rng.range(1, TICK_MS);
                self.schedule(first, EventKind::Tick(n, inc));
            }
        }
        let all: BTreeSet<NodeId> = self.nodes.keys().copied().collect();
        let mut complete = true;
        for g in 1..=self.sc.groups {
            let Some(l) = self.leader_of(g) else {
                complete = false;
                continue;
            };
            let config = self.nodes[&l].raft().status(g).expect("group").config;
            if config.voters == all && !config.is_joint() {
                continue;
            }
            complete = false;
            let priorities = config.priorities.clone();
            if self.propose_voters(l, g, all.clone(), priorities) {
                self.say(format!("failback: g{g} on n{l} adds back to {all:?}"));
            }
            self.pump(l)?;
        }
        if complete {
            self.say("failback complete".into());
            self.failback_done = true;
            self.maybe_done();
        } else {
            self.schedule(100, EventKind::Failback);
        }
        Ok(())
    }

    fn fault(&mut self) -> Result<(), Violation> {
        self.summary.faults += 1;
        if self.sc.membership == Membership::Changes && self.rng.chance(400) {
            return self.reconfigure();
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let leaders: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|n| {
                let node = &self.nodes[n];
                node.up
                    && (1..=self.sc.groups)
                        .any(|g| node.raft().brief(g).map(|b| b.role) == Some(Role::Leader))
            })
            .collect();
        match self.rng.below(11) {
            9 if !leaders.is_empty() => {
                // Kill a leader (the classic chaos experiment).
                let n = self.rng.pick(&leaders);
                self.crash(n)?;
                let after = self.rng.range(20, 600);
                self.schedule(after, EventKind::Restart(n));
            }
            10 if !leaders.is_empty() => {
                let n = self.rng.pick(&leaders);
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&m| m != n).collect();
                self.say(format!("isolate leader n{n}"));
                self.net.partition(&[n], &rest);
            }
            0 | 1 => {
                let n = self.rng.pick(&ids);
                if self.nodes[&n].up {
                    self.crash(n)?;
                    let after = self.rng.range(50, 1500);
                    self.schedule(after, EventKind::Restart(n));
                }
            }
            2 => {
                let n = self.rng.pick(&ids);
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&m| m != n).collect();
                self.say(format!("isolate n{n}"));
                self.net.partition(&[n], &rest);
            }
            3 => {
                let a = self.rng.pick(&ids);
                let b = self.rng.pick(&ids);
                if a != b {
                    self.say(format!("cut link n{a} -> n{b}"));
                    self.net.block(a, b);
                }
            }
            4 => {
                // Split into a minority and a majority (random sides).
                let mut side_a = Vec::new();
                let mut side_b = Vec::new();
                for &n in &ids {
                    if self.rng.chance(500) {
                        side_a.push(n);
                    } else {
                        side_b.push(n);
                    }
                }
                self.say(format!("partition {side_a:?} / {side_b:?}"));
                self.net.partition(&side_a, &side_b);
            }
            5 => {
                self.say("heal partitions".into());
                let (d, u) = (self.net.drop_per_mille, self.net.dup_per_mille);
                self.net.heal();
                self.net.drop_per_mille = d;
                self.net.dup_per_mille = u;
            }
            6 => {
                self.net.drop_per_mille = self.rng.below(150);
                self.net.dup_per_mille = self.rng.below(100);
                let (d, u) = (self.net.drop_per_mille, self.net.dup_per_mille);
                self.say(format!("drop {d}‰ duplicate {u}‰"));
            }
            7 => {
                if self.sc.two_regions {
                    let region = self.rng.below(2) as u8;
                    self.say(format!("region {region} lost"));
                    let lost: Vec<NodeId> = ids
                        .iter()
                        .copied()
                        .filter(|n| self.net.region.get(n) == Some(&region))
                        .collect();
                    let after = self.rng.range(300, 2000);
                    for n in lost {
                        if self.nodes[&n].up {
                            self.crash(n)?;
                            self.schedule(after, EventKind::Restart(n));
                        }
                    }
                } else {
                    let n = self.rng.pick(&ids);
                    if self.nodes[&n].up {
                        self.crash(n)?;
                        self.schedule(0, EventKind::Restart(n));
                    }
                }
            }
            8 => {
                let g = self.rng.range(1, self.sc.groups);
                let to = self.rng.pick(&ids);
                let leader = ids.iter().copied().find(|n| {
                    self.nodes[n].up
                        && self.nodes[n].raft().brief(g).map(|b| b.role) == Some(Role::Leader)
                });
                if let Some(l) = leader {
                    self.say(format!("transfer g{g} from n{l} to n{to}"));
                    let _ = self
                        .nodes
                        .get_mut(&l)
                        .expect("node")
                        .raft_mut()
                        .transfer_leadership(g, to);
                    self.pump(l)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Committed prefixes are byte-identical and hold every acknowledged
    /// entry, on every replica.
    fn final_checks(&self) -> Result<(), Violation> {
        for g in 1..=self.sc.groups {
            let mut seen: HashMap<Index, (Term, u64)> = HashMap::new();
            for node in self.nodes.values().filter(|n| n.up) {
                let disk = node.raft().reader();
                // The stored commit index only covers entries acknowledged
                // as durable (newer commits may cover an unwritten tail).
                let first = disk.first_index(g);
                let hi = disk.hard_state(g).commit.min(disk.last_index(g));
                if first > hi {
                    continue;
                }
                let mut entries = Vec::new();
                disk.entries(g, first, hi + 1, u64::MAX, &mut entries);
                for e in &entries {
                    let v = (e.term, payload_hash(e));
                    if *seen.entry(e.index).or_insert(v) != v {
                        return Err(violation(
                            "committed prefixes identical",
                            format!("group {g} index {} differs on node {}", e.index, node.id),
                        ));
                    }
                }
                if let Some(acked) = self.checker.acked.get(&g) {
                    for a in acked.iter().filter(|a| a.index >= first && a.index <= hi) {
                        let e = &entries[(a.index - first) as usize];
                        if e.term != a.term || payload_hash(e) != a.payload {
                            return Err(violation(
                                "acknowledged entry kept",
                                format!("group {g} index {} on node {}", a.index, node.id),
                            ));
                        }
                    }
                }
            }
        }
        if !self.done {
            return Err(violation(
                "liveness",
                "the run ended before every probe committed".into(),
            ));
        }
        Ok(())
    }
}

fn storage_violation(n: NodeId, e: ReplicaError) -> Violation {
    violation("storage works and recovers", format!("node {n}: {e}"))
}

/// Runs one seed's `run` (which returns its outcome, the simulated time
/// and the trace), turning a violation or a panic into a [`Failure`].
pub(crate) fn guarded<T>(
    seed: u64,
    run: impl FnOnce() -> (Result<T, Violation>, u64, Vec<String>),
) -> Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok((Ok(summary), _, _)) => Ok(summary),
        Ok((Err(violation), time_ms, trace)) => Err(Failure {
            seed,
            time_ms,
            violation,
            trace,
        }),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure {
                seed,
                time_ms: 0,
                violation: violation("no panic (assertion in the core)", msg),
                trace: Vec::new(),
            })
        }
    }
}
