//! An in-memory cluster of `MultiRaft<MemLog>` nodes with a controllable
//! network, used by the golden transcripts and the paper-section tests.
//! Every action is appended to a transcript.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use bytes::Bytes;
use raft::{
    Entry, EntryKind, Envelope, GroupBootstrap, GroupConfig, GroupId, LogReader, MemLog, MultiRaft,
    NodeId, RaftConfig, Role,
};

/// Bound on rounds in `stabilize`, so a livelock fails instead of hanging.
pub const MAX_STABILIZE_ROUNDS: usize = 10_000;

/// Elections without pre-vote, check-quorum or priorities: the paper's.
pub fn plain() -> RaftConfig {
    RaftConfig {
        pre_vote: false,
        check_quorum: false,
        priority_election: false,
        ..RaftConfig::default()
    }
}

/// Pre-vote and check-quorum on, priorities off.
pub fn with_pre_vote() -> RaftConfig {
    RaftConfig {
        pre_vote: true,
        check_quorum: true,
        priority_election: false,
        ..RaftConfig::default()
    }
}

/// A quiet cluster of `nodes` hosting group 1 with all of them as voters.
pub fn cluster(nodes: &[NodeId], cfg: RaftConfig) -> Cluster {
    let mut c = Cluster::new(nodes, &[1], GroupConfig::new(nodes.iter().copied()), cfg);
    c.quiet = true;
    c
}

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, MultiRaft<MemLog>>,
    pub down: BTreeSet<NodeId>,
    pub queue: VecDeque<Envelope>,
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub applied: BTreeMap<(NodeId, GroupId), Vec<Entry>>,
    pub out: String,
    pub cfg: RaftConfig,
    pub groups: Vec<GroupId>,
    pub configs: BTreeMap<GroupId, GroupConfig>,
    pub quiet: bool,
}

fn entry_label(e: &Entry) -> String {
    match e.kind {
        EntryKind::ConfChange => format!("{}/{}:conf", e.term, e.index),
        EntryKind::Normal if e.data.is_empty() => format!("{}/{}", e.term, e.index),
        EntryKind::Normal => format!(
            "{}/{}:{}",
            e.term,
            e.index,
            String::from_utf8_lossy(&e.data)
        ),
    }
}

fn labels(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(entry_label)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cluster {
    /// Nodes `nodes`, each hosting `groups`, all starting with `config`.
    pub fn new(nodes: &[NodeId], groups: &[GroupId], config: GroupConfig, cfg: RaftConfig) -> Self {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            down: BTreeSet::new(),
            queue: VecDeque::new(),
            blocked: BTreeSet::new(),
            applied: BTreeMap::new(),
            out: String::new(),
            cfg,
            groups: groups.to_vec(),
            configs: groups.iter().map(|&g| (g, config.clone())).collect(),
            quiet: false,
        };
        for &n in nodes {
            c.start_node(n, MemLog::new());
        }
        c
    }

    fn start_node(&mut self, n: NodeId, log: MemLog) {
        self.start_node_gated(n, log, false);
    }

    /// Starts node `n`; with `gate`, a group whose stored commit index is
    /// above its last index recovers before it votes (as the broker does).
    fn start_node_gated(&mut self, n: NodeId, log: MemLog, gate: bool) {
        let mut r = MultiRaft::new(n, self.cfg.clone(), log, n);
        for &g in &self.groups {
            let hs = r.reader().hard_state(g);
            let last = r.reader().last_index(g);
            let recovering_until = if gate && hs.commit > last {
                hs.commit
            } else {
                0
            };
            let (config, applied) = match r.reader().snapshot(g) {
                Some(meta) => (meta.config.clone(), meta.index),
                None => (self.configs[&g].clone(), 0),
            };
            r.add_group(
                g,
                GroupBootstrap {
                    config,
                    hard_state: hs,
                    applied,
                    recovering_until,
                    recovering_term: None,
                },
            )
            .expect("fresh node");
        }
        self.nodes.insert(n, r);
    }

    /// Restarts a node from its stored log (everything in MemLog is durable).
    pub fn restart(&mut self, n: NodeId) {
        let log = self.nodes.remove(&n).expect("node exists").reader().clone();
        self.applied.retain(|(node, _), _| *node != n);
        self.start_node(n, log);
        self.down.remove(&n);
        self.say(format!("n{n} restarted"));
    }

    /// Restarts a node whose stored log of every group lost the entries
    /// from `from` on (a torn tail); with `gate` it recovers them before it
    /// votes.
    pub fn restart_losing_tail(&mut self, n: NodeId, from: u64, gate: bool) {
        let mut log = self.nodes.remove(&n).expect("node exists").reader().clone();
        for &g in &self.groups {
            log.lose_tail(g, from);
        }
        self.applied.retain(|(node, _), _| *node != n);
        self.start_node_gated(n, log, gate);
        self.down.remove(&n);
        self.say(format!("n{n} restarted without entries from {from} on"));
    }

    /// Replaces node `n` with an empty replica of every group, as a node
    /// deleted and added back under its id: at `term`, and fenced at the
    /// committed entry `(index, index_term)` when given.
    pub fn rejoin_empty(&mut self, n: NodeId, term: u64, fence: Option<(u64, u64)>) {
        self.nodes.remove(&n).expect("node exists");
        self.applied.retain(|(node, _), _| *node != n);
        let mut r = MultiRaft::new(n, self.cfg.clone(), MemLog::new(), n);
        for &g in &self.groups {
            let hard_state = raft::HardState {
                term,
                ..Default::default()
            };
            r.reader_mut().set_hard_state(g, hard_state);
            r.add_group(
                g,
                GroupBootstrap {
                    config: self.configs[&g].clone(),
                    hard_state,
                    applied: 0,
                    recovering_until: fence.map_or(0, |(index, _)| index),
                    recovering_term: fence.map(|(_, term)| term),
                },
            )
            .expect("fresh node");
        }
        self.nodes.insert(n, r);
        self.down.remove(&n);
        self.say(format!(
            "n{n} rejoined empty at term {term}, fence {fence:?}"
        ));
    }

    pub fn say(&mut self, line: impl AsRef<str>) {
        if !self.quiet {
            self.out.push_str(line.as_ref());
            self.out.push('\n');
        }
    }

    pub fn raft(&mut self, n: NodeId) -> &mut MultiRaft<MemLog> {
        self.nodes.get_mut(&n).expect("node exists")
    }

    /// Handles one node's ready: send, persist, acknowledge, apply.
    pub fn process_ready(&mut self, n: NodeId) -> bool {
        if self.down.contains(&n) || !self.nodes[&n].has_ready() {
            return false;
        }
        let ready = self.raft(n).ready();
        for env in ready.messages {
            self.queue.push_back(env);
        }
        let mut acks = Vec::new();
        for gr in &ready.groups {
            let g = gr.group;
            let raft = self.nodes.get_mut(&n).expect("node exists");
            let mut lines = Vec::new();
            if let Some(s) = &gr.snapshot {
                raft.reader_mut().install_snapshot(g, s.clone());
                lines.push(format!("install snapshot {}/{}", s.meta.term, s.meta.index));
                acks.push((g, s.meta.index, s.meta.term));
            }
            if !gr.entries.is_empty() {
                raft.reader_mut().append(g, &gr.entries);
                lines.push(format!("write [{}]", labels(&gr.entries)));
                let last = gr.entries.last().expect("non-empty");
                acks.push((g, last.index, last.term));
            }
            if let Some(hs) = gr.hard_state {
                raft.reader_mut().set_hard_state(g, hs);
                lines.push(format!(
                    "hs term={} vote={} commit={}",
                    hs.term, hs.vote, hs.commit
                ));
            }
            if !gr.committed.is_empty() {
                lines.push(format!("apply [{}]", labels(&gr.committed)));
                self.applied
                    .entry((n, g))
                    .or_default()
                    .extend(gr.committed.iter().cloned());
            }
            for l in lines {
                self.say(format!("n{n}/g{g}: {l}"));
            }
        }
        for env in ready.messages_after_persist {
            self.queue.push_back(env);
        }
        for (g, index, term) in acks {
            self.raft(n).persisted(g, index, term);
        }
        true
    }

    /// Delivers every queued envelope once (in order).
    pub fn deliver(&mut self) -> bool {
        let batch: Vec<Envelope> = self.queue.drain(..).collect();
        let any = !batch.is_empty();
        for env in batch {
            let dropped = self.down.contains(&env.to)
                || self.blocked.contains(&(env.from, env.to))
                || !self.nodes.contains_key(&env.to);
            for m in &env.messages {
                let tag = if dropped { " DROPPED" } else { "" };
                self.say(format!("{}->{}{tag} {m}", env.from, env.to));
            }
            if !dropped {
                self.raft(env.to).step_envelope(env);
            }
        }
        any
    }

    /// Runs ready/deliver rounds until nothing moves.
    pub fn stabilize(&mut self) {
        for _ in 0..MAX_STABILIZE_ROUNDS {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            let mut moved = false;
            for n in ids {
                moved |= self.process_ready(n);
            }
            moved |= self.deliver();
            if !moved {
                return;
            }
        }
        panic!("cluster did not stabilize within {MAX_STABILIZE_ROUNDS} rounds");
    }

    pub fn tick(&mut self, n: NodeId, times: u32) {
        for _ in 0..times {
            if !self.down.contains(&n) {
                self.raft(n).tick();
            }
        }
    }

    /// Ticks every live node once and stabilizes, `times` times.
    pub fn tick_all(&mut self, times: u32) {
        for _ in 0..times {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for n in ids {
                self.tick(n, 1);
            }
            self.stabilize();
        }
    }

    pub fn isolate(&mut self, n: NodeId) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for m in ids {
            if m != n {
                self.blocked.insert((n, m));
                self.blocked.insert((m, n));
            }
        }
    }

    pub fn partition(&mut self, sides: &[Vec<NodeId>]) {
        for (i, a) in sides.iter().enumerate() {
            for (j, b) in sides.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            self.blocked.insert((x, y));
                        }
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    pub fn propose(
        &mut self,
        n: NodeId,
        g: GroupId,
        data: &str,
    ) -> Result<(u64, u64), raft::ProposeError> {
        let r = self
            .raft(n)
            .propose(g, vec![Bytes::copy_from_slice(data.as_bytes())]);
        match &r {
            Ok((a, b)) => self.say(format!("n{n}/g{g}: proposed {a}..={b}")),
            Err(e) => self.say(format!("n{n}/g{g}: propose failed: {e}")),
        }
        r
    }

    pub fn leader(&self, g: GroupId) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(n, _)| !self.down.contains(n))
            .filter_map(|(&n, r)| {
                let s = r.status(g)?;
                (s.role == Role::Leader).then_some((s.term, n))
            })
            .max()
            .map(|(_, n)| n)
    }

    pub fn role(&self, n: NodeId, g: GroupId) -> Role {
        self.nodes[&n].status(g).expect("group").role
    }

    pub fn term(&self, n: NodeId, g: GroupId) -> u64 {
        self.nodes[&n].status(g).expect("group").term
    }

    pub fn commit(&self, n: NodeId, g: GroupId) -> u64 {
        self.nodes[&n].status(g).expect("group").commit
    }

    /// Data of applied normal, non-empty entries of (node, group).
    pub fn applied_data(&self, n: NodeId, g: GroupId) -> Vec<String> {
        self.applied
            .get(&(n, g))
            .map(|v| {
                v.iter()
                    .filter(|e| e.kind == EntryKind::Normal && !e.data.is_empty())
                    .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The durable log of (node, group) as `term/index` labels.
    pub fn log_of(&self, n: NodeId, g: GroupId) -> String {
        labels(self.nodes[&n].reader().all_entries(g))
    }

    pub fn status_lines(&mut self) {
        let mut lines = Vec::new();
        for (&n, r) in &self.nodes {
            for &g in &self.groups {
                let Some(s) = r.status(g) else { continue };
                let mut line = String::new();
                let _ = write!(
                    line,
                    "n{n}/g{g}: {:?} term={} leader={} commit={} applied={} last={} voters={:?}",
                    s.role, s.term, s.leader, s.commit, s.applied, s.last_index, s.config.voters
                );
                if !s.config.outgoing.is_empty() {
                    let _ = write!(line, " outgoing={:?}", s.config.outgoing);
                }
                if self.down.contains(&n) {
                    line.push_str(" (down)");
                }
                lines.push(line);
            }
        }
        for l in lines {
            self.say(l);
        }
    }
}
