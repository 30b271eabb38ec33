//! The Raft state machine of one group on one node: role, term, vote, the
//! log, the configuration, and (on the leader) a [`Progress`] per follower.
//!
//! Every input arrives with a [`Ctx`] that lends the shared pieces owned by
//! [`crate::MultiRaft`]: the log reader, the configuration, the seeded PRNG
//! and the per-node outboxes that coalesce messages of all groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use rand_core::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::codec::{decode_config, encode_config};
use crate::config::{GroupConfig, VoteResult};
use crate::error::ProposeError;
use crate::message::{GroupMessage, MessageBody};
use crate::options::{Bug, RaftConfig};
use crate::progress::{Progress, ProgressState};
use crate::raft_log::RaftLog;
use crate::reader::LogReader;
use crate::types::{
    Entry, EntryKind, GroupId, HardState, Index, NodeId, Role, Snapshot, SnapshotMeta, Term,
    NO_NODE,
};

/// Messages waiting for the next `ready()`, coalesced per destination node.
#[derive(Default, Debug)]
pub(crate) struct Outbox {
    /// May be sent at once (they depend on nothing unpersisted).
    pub(crate) now: BTreeMap<NodeId, Vec<GroupMessage>>,
    /// May be sent only once the ready's hard states and entries are durable.
    pub(crate) after_persist: BTreeMap<NodeId, Vec<GroupMessage>>,
}

/// Shared pieces lent to a group for one input.
pub(crate) struct Ctx<'a> {
    pub(crate) reader: &'a dyn LogReader,
    pub(crate) cfg: &'a RaftConfig,
    pub(crate) rng: &'a mut Xoshiro256PlusPlus,
    pub(crate) out: &'a mut Outbox,
    /// Nodes the application reports unreachable (see
    /// [`crate::MultiRaft::set_unreachable`]).
    pub(crate) unreachable: &'a BTreeSet<NodeId>,
}

/// How a campaign starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignKind {
    PreVote,
    Election,
    Transfer,
}

/// One group's replica on this node.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) id: GroupId,
    pub(crate) me: NodeId,
    pub(crate) term: Term,
    pub(crate) vote: NodeId,
    pub(crate) leader: NodeId,
    /// The last leader this replica followed (kept across elections): when
    /// it goes silent it is not a candidate the priority election waits for.
    last_leader: NodeId,
    pub(crate) role: Role,
    pub(crate) config: GroupConfig,
    pub(crate) log: RaftLog,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    votes: BTreeMap<NodeId, bool>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_timeout: u32,
    pub(crate) lead_transferee: NodeId,
    pending_conf_index: Index,
    /// Last hard state handed out for persisting.
    pub(crate) persisted_hs: HardState,
    snapshot_rx: Option<(SnapshotMeta, BytesMut)>,
    pub(crate) received_snapshot: Option<Snapshot>,
    forced_config: bool,
    pub(crate) bcast_entries: bool,
    pub(crate) bcast_commit: bool,
    scratch: Vec<Entry>,
    /// See [`crate::GroupBootstrap::recovering_until`]; 0 once lifted.
    recovering_until: Index,
    /// See [`crate::GroupBootstrap::recovering_term`]; `None` once lifted.
    recovering_term: Option<Term>,
}

impl Group {
    pub(crate) fn new(
        ctx: &mut Ctx<'_>,
        id: GroupId,
        me: NodeId,
        boot: crate::GroupBootstrap,
    ) -> Self {
        let crate::GroupBootstrap {
            config,
            hard_state: hs,
            applied,
            recovering_until,
            recovering_term,
        } = boot;
        let log = RaftLog::new(id, ctx.reader, hs.commit, applied);
        let mut g = Group {
            id,
            me,
            term: hs.term,
            vote: hs.vote,
            leader: NO_NODE,
            last_leader: NO_NODE,
            role: Role::Follower,
            config,
            log,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            lead_transferee: NO_NODE,
            pending_conf_index: 0,
            persisted_hs: HardState {
                commit: hs.commit.max(recovering_until),
                ..hs
            },
            snapshot_rx: None,
            received_snapshot: None,
            forced_config: false,
            bcast_entries: false,
            bcast_commit: false,
            scratch: Vec::new(),
            recovering_until,
            recovering_term,
        };
        g.reset_randomized_timeout(ctx);
        g
    }

    /// The hard state to persist. Its commit index never exceeds the
    /// entries acknowledged as durable here, so that a crash which keeps the
    /// hard state but loses unsynced log writes cannot make a stale entry
    /// look committed after restart. While recovering a lost tail it keeps
    /// the commit index found at start, so that a restart before the log
    /// has caught up still knows what was lost.
    pub(crate) fn hard_state(&self) -> HardState {
        let commit = if self.log.pending_snapshot().is_some() {
            self.persisted_hs.commit
        } else {
            self.log.committed.min(self.log.stable_last())
        };
        HardState {
            term: self.term,
            vote: self.vote,
            commit: commit.max(self.recovering_until),
        }
    }

    /// The index the log must durably reach before this replica votes or
    /// campaigns, while it is below it. Durably: a crash right after the
    /// gate lifts must not lose the entries again.
    pub(crate) fn recovering_until(&self) -> Option<Index> {
        let held = self.log.stable_last();
        (self.recovering_until > held).then_some(self.recovering_until)
    }

    /// Whether voting and campaigning are still held back by a lost log
    /// tail; lifts the gate for good once the log has reached its index.
    fn voting_held_back(&mut self) -> bool {
        if self.recovering_until().is_some() {
            return true;
        }
        self.recovering_until = 0;
        self.recovering_term = None;
        false
    }

    /// Whether the gate of [`Self::voting_held_back`] lets a vote go to a
    /// candidate whose log ends at `last_index` in `last_term`: always once
    /// lifted; while it holds, only when the entry it waits for is known and
    /// the candidate's log is at least as up to date as that entry (so holds
    /// it, as it is committed).
    fn gate_admits(&mut self, last_index: Index, last_term: Term) -> bool {
        if !self.voting_held_back() {
            return true;
        }
        self.recovering_term.is_some_and(|term| {
            last_term > term || (last_term == term && last_index >= self.recovering_until)
        })
    }

    fn send_at(&self, ctx: &mut Ctx<'_>, to: NodeId, term: Term, body: MessageBody) {
        let after = self.role != Role::Leader
            && !matches!(
                body,
                MessageBody::PreVote { .. } | MessageBody::PreVoteResp { .. }
            );
        let msg = GroupMessage {
            group: self.id,
            term,
            body,
        };
        let queue = if after {
            &mut ctx.out.after_persist
        } else {
            &mut ctx.out.now
        };
        queue.entry(to).or_default().push(msg);
    }

    fn send(&self, ctx: &mut Ctx<'_>, to: NodeId, body: MessageBody) {
        self.send_at(ctx, to, self.term, body);
    }

    /// Extra ticks a replica waits before campaigning, one election timeout
    /// per distinct higher priority among the voters that could still win:
    /// the leader it last followed (now silent) and the nodes reported
    /// unreachable cannot, so a dead leader costs its successor no extra
    /// timeout.
    fn priority_delay(&self, ctx: &Ctx<'_>) -> u32 {
        if !ctx.cfg.priority_election {
            return 0;
        }
        let mine = self.config.priority(self.me);
        let higher: BTreeSet<u32> = self
            .config
            .all_voters()
            .iter()
            .filter(|&&n| n != self.last_leader && !ctx.unreachable.contains(&n))
            .map(|&n| self.config.priority(n))
            .filter(|&p| p > mine)
            .collect();
        higher.len() as u32 * ctx.cfg.election_ticks.max(1)
    }

    fn reset_randomized_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let e = ctx.cfg.election_ticks.max(1);
        let jitter = (ctx.rng.next_u64() % u64::from(e)) as u32;
        self.randomized_timeout = e + jitter;
    }

    fn reset(&mut self, ctx: &mut Ctx<'_>, term: Term) {
        if self.term != term {
            self.term = term;
            self.vote = NO_NODE;
        }
        self.leader = NO_NODE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.lead_transferee = NO_NODE;
        self.votes.clear();
        self.progress.clear();
        self.bcast_entries = false;
        self.bcast_commit = false;
        self.reset_randomized_timeout(ctx);
    }

    pub(crate) fn become_follower(&mut self, ctx: &mut Ctx<'_>, term: Term, leader: NodeId) {
        self.reset(ctx, term);
        self.role = Role::Follower;
        self.leader = leader;
        if leader != NO_NODE {
            self.last_leader = leader;
        }
    }

    fn become_leader(&mut self, ctx: &mut Ctx<'_>) {
        assert!(self.role != Role::Follower, "follower cannot become leader");
        let term = self.term;
        self.reset(ctx, term);
        self.role = Role::Leader;
        self.leader = self.me;
        let last = self.log.last_index(ctx.reader);
        for v in self.config.members() {
            let mut pr = Progress::new(last + 1);
            if v == self.me {
                pr.match_index = self.log.stable_last();
                pr.recent_active = true;
            }
            self.progress.insert(v, pr);
        }
        // No configuration change until everything before this term is applied.
        self.pending_conf_index = last;
        self.append_own(ctx, vec![(EntryKind::Normal, Bytes::new())]);
        if self.forced_config || self.config.is_joint() {
            self.forced_config = false;
            let mut next = self.config.clone();
            next.outgoing.clear();
            let data = encode_config(&next);
            let (_, idx) = self.append_own(ctx, vec![(EntryKind::ConfChange, data)]);
            self.pending_conf_index = idx;
        }
    }

    fn append_own(&mut self, ctx: &mut Ctx<'_>, items: Vec<(EntryKind, Bytes)>) -> (Index, Index) {
        let last = self.log.last_index(ctx.reader);
        let term = self.term;
        let entries: Vec<Entry> = items
            .into_iter()
            .enumerate()
            .map(|(i, (kind, data))| Entry {
                term,
                index: last + 1 + i as u64,
                kind,
                data,
            })
            .collect();
        let range = (last + 1, last + entries.len() as u64);
        self.log.append(ctx.reader, &entries);
        self.bcast_entries = true;
        range
    }

    fn poll(&mut self, ctx: &Ctx<'_>, from: NodeId, granted: bool) -> VoteResult {
        self.votes.entry(from).or_insert(granted);
        if from == self.me && granted && ctx.cfg.has_bug(Bug::CountOwnVoteTwice) {
            // Broken on purpose: the own vote also fills the first empty slot.
            if let Some(other) = self
                .config
                .all_voters()
                .into_iter()
                .find(|v| !self.votes.contains_key(v))
            {
                self.votes.insert(other, true);
            }
        }
        self.config.vote_result(&self.votes)
    }

    pub(crate) fn campaign(&mut self, ctx: &mut Ctx<'_>, kind: CampaignKind) {
        if !self.config.is_voter(self.me)
            || self.log.pending_snapshot().is_some()
            || self.voting_held_back()
        {
            return;
        }
        let msg_term = if kind == CampaignKind::PreVote {
            self.role = Role::PreCandidate;
            self.votes.clear();
            self.leader = NO_NODE;
            self.term + 1
        } else {
            let term = self.term + 1;
            self.reset(ctx, term);
            self.role = Role::Candidate;
            self.vote = self.me;
            self.term
        };
        match self.poll(ctx, self.me, true) {
            VoteResult::Won => {
                if kind == CampaignKind::PreVote {
                    self.campaign(ctx, CampaignKind::Election);
                } else {
                    self.become_leader(ctx);
                }
                return;
            }
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(ctx, term, NO_NODE);
                return;
            }
            VoteResult::Pending => {}
        }
        let last_index = self.log.last_index(ctx.reader);
        let last_term = self.log.last_term(ctx.reader);
        for v in self.config.all_voters() {
            if v == self.me {
                continue;
            }
            let body = match kind {
                CampaignKind::PreVote => MessageBody::PreVote {
                    last_index,
                    last_term,
                },
                _ => MessageBody::Vote {
                    last_index,
                    last_term,
                    transfer: kind == CampaignKind::Transfer,
                },
            };
            self.send_at(ctx, v, msg_term, body);
        }
    }

    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.role == Role::Leader {
            self.tick_leader(ctx);
            return;
        }
        self.election_elapsed += 1;
        // The plain timeout first: the priority delay is worked out only
        // once it has passed, not on every tick.
        if self.config.is_voter(self.me)
            && self.election_elapsed >= self.randomized_timeout
            && self.election_elapsed >= self.randomized_timeout + self.priority_delay(ctx)
        {
            self.election_elapsed = 0;
            let kind = if ctx.cfg.pre_vote {
                CampaignKind::PreVote
            } else {
                CampaignKind::Election
            };
            self.campaign(ctx, kind);
        }
    }

    fn tick_leader(&mut self, ctx: &mut Ctx<'_>) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= ctx.cfg.election_ticks {
            self.election_elapsed = 0;
            let preferred = self.preferred_successor(ctx);
            if ctx.cfg.check_quorum && !self.quorum_active() {
                let term = self.term;
                self.become_follower(ctx, term, NO_NODE);
                return;
            }
            if self.lead_transferee != NO_NODE {
                // The transfer did not finish within an election timeout.
                self.lead_transferee = NO_NODE;
            } else if let Some(to) = preferred {
                self.transfer_leadership(ctx, to);
            }
        }
        let election_ticks = ctx.cfg.election_ticks;
        let stalled: Vec<NodeId> = self
            .progress
            .iter_mut()
            .filter_map(|(&id, pr)| match &mut pr.state {
                ProgressState::Snapshot { stalled_ticks, .. } => {
                    *stalled_ticks += 1;
                    (*stalled_ticks >= election_ticks).then_some(id)
                }
                _ => None,
            })
            .collect();
        for id in stalled {
            self.send_snapshot_chunks(ctx, id, true);
        }
        if self.heartbeat_elapsed >= ctx.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            let peers: Vec<(NodeId, Index)> = self
                .progress
                .iter()
                .filter(|(&id, _)| id != self.me)
                .map(|(&id, pr)| (id, pr.match_index.min(self.log.committed)))
                .collect();
            for (id, commit) in peers {
                self.send(ctx, id, MessageBody::Heartbeat { commit });
            }
        }
    }

    /// A caught-up, recently active voter whose priority beats ours.
    fn preferred_successor(&self, ctx: &Ctx<'_>) -> Option<NodeId> {
        if !ctx.cfg.priority_election || self.config.is_joint() {
            return None;
        }
        let last = self.log.last_index(ctx.reader);
        let mine = self.config.priority(self.me);
        self.config
            .voters
            .iter()
            .filter(|&&v| v != self.me && self.config.priority(v) > mine)
            .filter(|v| {
                self.progress
                    .get(v)
                    .is_some_and(|pr| pr.recent_active && pr.match_index == last)
            })
            .max_by_key(|&&v| (self.config.priority(v), std::cmp::Reverse(v)))
            .copied()
    }

    fn quorum_active(&mut self) -> bool {
        let mut active = BTreeSet::new();
        for (&id, pr) in self.progress.iter_mut() {
            if id == self.me || pr.recent_active {
                active.insert(id);
            }
            if id != self.me {
                pr.recent_active = false;
            }
        }
        self.config.has_quorum(&active)
    }

    pub(crate) fn transfer_leadership(&mut self, ctx: &mut Ctx<'_>, to: NodeId) {
        if self.role != Role::Leader || to == self.me || self.lead_transferee == to {
            return;
        }
        if !self.progress.contains_key(&to) || !self.config.voters.contains(&to) {
            return;
        }
        self.lead_transferee = to;
        self.election_elapsed = 0;
        let last = self.log.last_index(ctx.reader);
        if self.progress[&to].match_index == last {
            self.send(ctx, to, MessageBody::TimeoutNow);
        } else {
            self.send_append(ctx, to, true);
        }
    }

    pub(crate) fn step(&mut self, ctx: &mut Ctx<'_>, from: NodeId, m: GroupMessage) {
        if m.term > self.term {
            let force = matches!(m.body, MessageBody::Vote { transfer: true, .. });
            if matches!(
                m.body,
                MessageBody::PreVote { .. } | MessageBody::Vote { .. }
            ) {
                let in_lease = ctx.cfg.check_quorum
                    && self.leader != NO_NODE
                    && self.election_elapsed < ctx.cfg.election_ticks;
                if in_lease && !force {
                    return;
                }
            }
            match m.body {
                MessageBody::PreVote { .. } => {}
                MessageBody::PreVoteResp { reject: false } => {}
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::SnapshotChunk { .. } => self.become_follower(ctx, m.term, from),
                _ => self.become_follower(ctx, m.term, NO_NODE),
            }
        } else if m.term < self.term {
            if (ctx.cfg.check_quorum || ctx.cfg.pre_vote)
                && matches!(
                    m.body,
                    MessageBody::Append { .. } | MessageBody::Heartbeat { .. }
                )
            {
                // Tell a deposed leader about the newer term.
                self.send(
                    ctx,
                    from,
                    MessageBody::AppendResp {
                        index: 0,
                        reject: false,
                        hint_index: 0,
                        hint_term: 0,
                    },
                );
            } else if matches!(m.body, MessageBody::PreVote { .. }) {
                self.send(ctx, from, MessageBody::PreVoteResp { reject: true });
            }
            return;
        }
        match m.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => self.handle_vote_request(ctx, from, m.term, true, last_index, last_term),
            MessageBody::Vote {
                last_index,
                last_term,
                ..
            } => self.handle_vote_request(ctx, from, m.term, false, last_index, last_term),
            body => match self.role {
                Role::Leader => self.step_leader(ctx, from, body),
                Role::PreCandidate | Role::Candidate => self.step_candidate(ctx, from, body),
                Role::Follower => self.step_follower(ctx, from, body),
            },
        }
    }

    fn handle_vote_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        msg_term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == from
            || (self.vote == NO_NODE && self.leader == NO_NODE)
            || (pre && msg_term > self.term);
        let granted = can_vote
            && self.log.is_up_to_date(ctx.reader, last_index, last_term)
            && self.gate_admits(last_index, last_term);
        if granted {
            if !pre {
                self.election_elapsed = 0;
                self.vote = from;
            }
            let body = if pre {
                MessageBody::PreVoteResp { reject: false }
            } else {
                MessageBody::VoteResp { reject: false }
            };
            self.send_at(ctx, from, msg_term, body);
        } else {
            let body = if pre {
                MessageBody::PreVoteResp { reject: true }
            } else {
                MessageBody::VoteResp { reject: true }
            };
            self.send(ctx, from, body);
        }
    }

    fn step_candidate(&mut self, ctx: &mut Ctx<'_>, from: NodeId, body: MessageBody) {
        let granted = match (&body, self.role) {
            (MessageBody::PreVoteResp { reject }, Role::PreCandidate) => !reject,
            (MessageBody::VoteResp { reject }, Role::Candidate) => !reject,
            (
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::SnapshotChunk { .. },
                _,
            ) => {
                let term = self.term;
                self.become_follower(ctx, term, from);
                self.step_follower(ctx, from, body);
                return;
            }
            _ => return,
        };
        match self.poll(ctx, from, granted) {
            VoteResult::Won => {
                if self.role == Role::PreCandidate {
                    self.campaign(ctx, CampaignKind::Election);
                } else {
                    self.become_leader(ctx);
                }
            }
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(ctx, term, NO_NODE);
            }
            VoteResult::Pending => {}
        }
    }

    fn heard_from_leader(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        self.leader = leader;
        self.last_leader = leader;
    }

    fn step_follower(&mut self, ctx: &mut Ctx<'_>, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::Append {
                prev_index,
                prev_term,
                commit,
                entries,
            } => {
                self.heard_from_leader(from);
                self.handle_append(ctx, from, prev_index, prev_term, commit, entries);
            }
            MessageBody::Heartbeat { commit } => {
                self.heard_from_leader(from);
                let last = self.log.last_index(ctx.reader);
                self.log.commit_to(commit.min(last));
                self.send(ctx, from, MessageBody::HeartbeatResp);
                if commit > last {
                    // The leader believes this log holds `commit`, which
                    // it acknowledged before losing its tail.
                    let hint_term = self.log.last_term(ctx.reader);
                    self.send(
                        ctx,
                        from,
                        MessageBody::AppendResp {
                            index: 0,
                            reject: true,
                            hint_index: last,
                            hint_term,
                        },
                    );
                }
            }
            MessageBody::SnapshotChunk { meta, offset, data } => {
                self.heard_from_leader(from);
                self.handle_snapshot_chunk(ctx, from, meta, offset, data);
            }
            MessageBody::TimeoutNow => self.campaign(ctx, CampaignKind::Transfer),
            _ => {}
        }
    }

    fn handle_append(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        commit: Index,
        mut entries: Vec<Entry>,
    ) {
        if prev_index < self.log.committed {
            let index = self.log.committed;
            self.send(ctx, from, accept(index));
            return;
        }
        let last = self.log.last_index(ctx.reader);
        let matches = if ctx.cfg.has_bug(Bug::AcceptMismatchedPrevTerm) {
            prev_index <= last
        } else {
            self.log.match_term(ctx.reader, prev_index, prev_term)
        };
        if matches {
            let last_new = prev_index + entries.len() as u64;
            if let Some(pos) = self.log.find_conflict(ctx.reader, &entries) {
                // The message is consumed here: move its entries, no clone.
                entries.drain(..pos);
                self.log.append_owned(ctx.reader, entries);
            }
            self.log.commit_to(commit.min(last_new));
            self.send(ctx, from, accept(last_new));
        } else {
            let hint = prev_index.min(last);
            let (hint_index, hint_term) =
                self.log.find_conflict_by_term(ctx.reader, hint, prev_term);
            self.send(
                ctx,
                from,
                MessageBody::AppendResp {
                    index: prev_index,
                    reject: true,
                    hint_index,
                    hint_term,
                },
            );
        }
    }

    fn handle_snapshot_chunk(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
    ) {
        if meta.index <= self.log.committed {
            self.snapshot_rx = None;
            let index = self.log.committed;
            self.send(ctx, from, accept(index));
            return;
        }
        // Bytes of the same snapshot from an earlier attempt (of this leader
        // or another) are kept, and the leader goes on after them. Replicas
        // of two releases may lay the same snapshot out differently, so the
        // size must match too.
        let same_snapshot = |m: &SnapshotMeta| {
            m.index == meta.index && m.term == meta.term && m.size_bytes == meta.size_bytes
        };
        let same = matches!(&self.snapshot_rx, Some((m, _)) if same_snapshot(m));
        if !same && offset == 0 {
            self.snapshot_rx = Some((meta.clone(), BytesMut::new()));
        }
        let mut received = 0;
        if let Some((m, buf)) = &mut self.snapshot_rx {
            if same_snapshot(m) {
                if offset == buf.len() as u64
                    && buf.len() as u64 + data.len() as u64 <= meta.size_bytes
                {
                    buf.extend_from_slice(&data);
                }
                received = buf.len() as u64;
            }
        }
        let complete = matches!(&self.snapshot_rx, Some((m, buf)) if same_snapshot(m) && buf.len() as u64 == m.size_bytes);
        if !complete {
            self.send(
                ctx,
                from,
                MessageBody::SnapshotResp {
                    index: meta.index,
                    received_bytes: received,
                },
            );
            return;
        }
        let Some((meta, buf)) = self.snapshot_rx.take() else {
            return;
        };
        if self.log.match_term(ctx.reader, meta.index, meta.term) {
            // We already hold the snapshot's last entry: just learn the commit.
            self.log.commit_to(meta.index);
            let index = self.log.committed;
            self.send(ctx, from, accept(index));
            return;
        }
        self.log.restore(meta.clone());
        self.config = meta.config.clone();
        self.received_snapshot = Some(Snapshot {
            meta: meta.clone(),
            data: buf.freeze(),
        });
        self.send(ctx, from, accept(meta.index));
    }

    fn step_leader(&mut self, ctx: &mut Ctx<'_>, from: NodeId, body: MessageBody) {
        match body {
            MessageBody::AppendResp {
                index,
                reject,
                hint_index,
                hint_term,
            } => self.handle_append_resp(ctx, from, index, reject, hint_index, hint_term),
            MessageBody::HeartbeatResp => {
                let max_msgs = ctx.cfg.max_inflight_msgs;
                let last = self.log.last_index(ctx.reader);
                let Some(pr) = self.progress.get_mut(&from) else {
                    return;
                };
                pr.recent_active = true;
                pr.probe_sent = false;
                if pr.state == ProgressState::Replicate && pr.inflight.len() >= max_msgs {
                    pr.free_first_inflight();
                }
                if pr.match_index < last {
                    self.send_append(ctx, from, true);
                }
            }
            MessageBody::SnapshotResp {
                index,
                received_bytes,
            } => {
                let Some(pr) = self.progress.get_mut(&from) else {
                    return;
                };
                pr.recent_active = true;
                if let ProgressState::Snapshot {
                    index: si,
                    sent_bytes,
                    acked_bytes,
                    stalled_ticks,
                } = &mut pr.state
                {
                    if *si != index {
                        return;
                    }
                    if received_bytes > *acked_bytes {
                        *acked_bytes = received_bytes;
                        // The follower may hold more than this leader sent
                        // (bytes of an earlier attempt at the same snapshot):
                        // go on from there.
                        *sent_bytes = (*sent_bytes).max(received_bytes);
                        *stalled_ticks = 0;
                    } else if received_bytes < *acked_bytes {
                        // The follower lost its buffer (restart): start over there.
                        *acked_bytes = received_bytes;
                        *sent_bytes = received_bytes;
                    }
                    self.send_snapshot_chunks(ctx, from, false);
                }
            }
            _ => {}
        }
    }

    fn handle_append_resp(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        index: Index,
        reject: bool,
        hint_index: Index,
        hint_term: Term,
    ) {
        let max_msgs = ctx.cfg.max_inflight_msgs;
        let max_bytes = ctx.cfg.max_inflight_bytes;
        let first = self.log.first_index(ctx.reader);
        let next_probe = if reject && hint_term > 0 {
            self.log
                .find_conflict_by_term(ctx.reader, hint_index, hint_term)
                .0
        } else {
            hint_index
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if reject && index == 0 {
            if hint_index < pr.match_index {
                pr.lost_entries_after(hint_index);
                self.send_append(ctx, from, true);
            }
            return;
        }
        if reject {
            if pr.maybe_decr_to(index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(ctx, from, true);
            }
            return;
        }
        let was_paused = pr.is_paused(max_msgs, max_bytes);
        if !pr.maybe_update(index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot { index: si, .. } => {
                if pr.match_index >= si || pr.match_index + 1 >= first {
                    pr.become_probe();
                    pr.become_replicate();
                }
            }
            ProgressState::Replicate => pr.free_inflight_to(index),
        }
        if self.maybe_commit(ctx) {
            self.bcast_commit = true;
        } else if was_paused {
            self.send_append(ctx, from, false);
        }
        while self.send_append(ctx, from, false) {}
        let last = self.log.last_index(ctx.reader);
        if self.lead_transferee == from && self.progress[&from].match_index == last {
            self.send(ctx, from, MessageBody::TimeoutNow);
        }
    }

    /// Raft §5.3/§5.4.2: advance the commit index to the highest index
    /// replicated on a quorum, but only for an entry of the current term.
    pub(crate) fn maybe_commit(&mut self, ctx: &Ctx<'_>) -> bool {
        let progress = &self.progress;
        let mci = self
            .config
            .committed_index(&|id| progress.get(&id).map(|p| p.match_index).unwrap_or(0));
        if mci == Index::MAX || mci <= self.log.committed {
            return false;
        }
        let current = self.log.term(ctx.reader, mci) == Some(self.term);
        if current || ctx.cfg.has_bug(Bug::CommitPreviousTermByCount) {
            self.log.commit_to(mci);
            return true;
        }
        false
    }

    /// Sends the next append to `to`; returns whether something was sent.
    pub(crate) fn send_append(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: NodeId,
        send_if_empty: bool,
    ) -> bool {
        let max_msgs = ctx.cfg.max_inflight_msgs;
        let max_bytes = ctx.cfg.max_inflight_bytes;
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if to == self.me || pr.is_paused(max_msgs, max_bytes) {
            return false;
        }
        let next = pr.next_index;
        let last = self.log.last_index(ctx.reader);
        let prev_index = next - 1;
        let prev_term = self.log.term(ctx.reader, prev_index);
        let mut entries = std::mem::take(&mut self.scratch);
        entries.clear();
        let available = prev_term.is_some()
            && (next > last
                || self.log.entries(
                    ctx.reader,
                    next,
                    last + 1,
                    ctx.cfg.max_append_bytes,
                    &mut entries,
                ));
        let Some(prev_term) = prev_term.filter(|_| available) else {
            self.scratch = entries;
            return self.send_snapshot(ctx, to);
        };
        if entries.is_empty() && !send_if_empty {
            self.scratch = entries;
            return false;
        }
        let committed = self.log.committed;
        let pr = self.progress.get_mut(&to).expect("checked above");
        match pr.state {
            ProgressState::Replicate => {
                if let Some(e) = entries.last() {
                    let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
                    pr.next_index = e.index + 1;
                    pr.add_inflight(e.index, bytes);
                }
            }
            ProgressState::Probe => pr.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
        self.send(
            ctx,
            to,
            MessageBody::Append {
                prev_index,
                prev_term,
                commit: committed,
                entries,
            },
        );
        true
    }

    fn send_snapshot(&mut self, ctx: &mut Ctx<'_>, to: NodeId) -> bool {
        let Some(meta) = ctx.reader.snapshot(self.id) else {
            return false;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        pr.become_snapshot(meta.index);
        self.send_snapshot_chunks(ctx, to, true);
        true
    }

    fn send_snapshot_chunks(&mut self, ctx: &mut Ctx<'_>, to: NodeId, restart: bool) {
        let Some(meta) = ctx.reader.snapshot(self.id) else {
            return;
        };
        let chunk = ctx.cfg.snapshot_chunk_bytes.max(1);
        let window = chunk * ctx.cfg.max_snapshot_chunks_in_flight.max(1);
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let ProgressState::Snapshot {
            index,
            sent_bytes,
            acked_bytes,
            stalled_ticks,
        } = &mut pr.state
        else {
            return;
        };
        if *index != meta.index {
            // A newer snapshot replaced the one being sent: start over.
            *index = meta.index;
            *acked_bytes = 0;
            *sent_bytes = 0;
        }
        if restart {
            *sent_bytes = *acked_bytes;
            *stalled_ticks = 0;
        }
        let mut chunks = Vec::new();
        let mut force = restart;
        while (*sent_bytes < meta.size_bytes && *sent_bytes - *acked_bytes < window) || force {
            force = false;
            let data = ctx.reader.snapshot_chunk(self.id, *sent_bytes, chunk);
            let offset = *sent_bytes;
            *sent_bytes += data.len() as u64;
            let empty = data.is_empty();
            chunks.push((offset, data));
            if empty {
                break;
            }
        }
        for (offset, data) in chunks {
            self.send(
                ctx,
                to,
                MessageBody::SnapshotChunk {
                    meta: meta.clone(),
                    offset,
                    data,
                },
            );
        }
    }

    pub(crate) fn propose(
        &mut self,
        ctx: &mut Ctx<'_>,
        batch: Vec<Bytes>,
    ) -> Result<(Index, Index), ProposeError> {
        self.check_proposable(ctx, batch.len() as u64)?;
        Ok(self.append_own(
            ctx,
            batch.into_iter().map(|d| (EntryKind::Normal, d)).collect(),
        ))
    }

    fn check_proposable(&self, ctx: &Ctx<'_>, n: u64) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                group: self.id,
                leader_hint: self.leader,
            });
        }
        if self.lead_transferee != NO_NODE {
            return Err(ProposeError::TransferInProgress { group: self.id });
        }
        if n == 0 {
            return Err(ProposeError::EmptyBatch { group: self.id });
        }
        let uncommitted = self.log.last_index(ctx.reader) - self.log.committed;
        if uncommitted + n > ctx.cfg.max_uncommitted_entries {
            return Err(ProposeError::Backpressure {
                group: self.id,
                uncommitted,
            });
        }
        Ok(())
    }

    /// A configuration change may be proposed: this replica leads, and no
    /// other change is still being applied.
    fn check_conf_change(&self, ctx: &Ctx<'_>) -> Result<(), ProposeError> {
        self.check_proposable(ctx, 1)?;
        if self.config.is_joint() || self.pending_conf_index > self.log.applied {
            return Err(ProposeError::ConfChangeInProgress { group: self.id });
        }
        Ok(())
    }

    pub(crate) fn propose_config(
        &mut self,
        ctx: &mut Ctx<'_>,
        voters: BTreeSet<NodeId>,
        priorities: BTreeMap<NodeId, u32>,
    ) -> Result<Index, ProposeError> {
        self.check_conf_change(ctx)?;
        if voters.is_empty() {
            return Err(ProposeError::EmptyBatch { group: self.id });
        }
        let outgoing = if voters == self.config.voters {
            BTreeSet::new()
        } else {
            self.config.voters.clone()
        };
        // A learner made a voter is no longer a learner.
        let learners = self.config.learners.difference(&voters).copied().collect();
        let next = GroupConfig {
            voters,
            outgoing,
            priorities,
            learners,
        };
        let (_, idx) = self.append_own(ctx, vec![(EntryKind::ConfChange, encode_config(&next))]);
        self.pending_conf_index = idx;
        Ok(idx)
    }

    /// Proposes `learners` as the group's learners, the voters unchanged. A
    /// learner changes no quorum, so this is a simple change, not a joint
    /// one. A voter cannot be made a learner.
    pub(crate) fn propose_learners(
        &mut self,
        ctx: &mut Ctx<'_>,
        learners: BTreeSet<NodeId>,
    ) -> Result<Index, ProposeError> {
        self.check_conf_change(ctx)?;
        if learners.iter().any(|l| self.config.is_voter(*l)) {
            return Err(ProposeError::LearnerIsVoter { group: self.id });
        }
        let next = GroupConfig {
            learners,
            ..self.config.clone()
        };
        let (_, idx) = self.append_own(ctx, vec![(EntryKind::ConfChange, encode_config(&next))]);
        self.pending_conf_index = idx;
        Ok(idx)
    }

    pub(crate) fn force_config(&mut self, ctx: &mut Ctx<'_>, voters: BTreeSet<NodeId>) {
        self.config.voters = voters;
        self.config.outgoing.clear();
        self.forced_config = true;
        let term = self.term;
        self.become_follower(ctx, term, NO_NODE);
    }

    /// Storage acknowledged entries (or the pending snapshot) up to `index`.
    pub(crate) fn persisted(&mut self, ctx: &mut Ctx<'_>, index: Index, term: Term) {
        if self.log.snapshot_installed(index, term) {
            return;
        }
        if !self.log.stable_to(index, term) || self.role != Role::Leader {
            return;
        }
        let stable = self.log.stable_last();
        if let Some(pr) = self.progress.get_mut(&self.me) {
            pr.maybe_update(stable);
        }
        if self.maybe_commit(ctx) {
            self.bcast_commit = true;
        }
    }

    /// Applies a committed configuration-change entry.
    pub(crate) fn apply_conf(&mut self, ctx: &mut Ctx<'_>, entry: &Entry) {
        let cfg = decode_config(entry.data.clone()).unwrap_or_else(|e| {
            panic!(
                "group {}: committed configuration entry {} is corrupt: {e}",
                self.id, entry.index
            )
        });
        self.config = cfg;
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index(ctx.reader);
        let members = self.config.members();
        for &v in &members {
            self.progress
                .entry(v)
                .or_insert_with(|| Progress::new(last + 1));
        }
        let me = self.me;
        self.progress
            .retain(|id, _| members.contains(id) || *id == me);
        if self.config.is_joint() {
            let mut next = self.config.clone();
            next.outgoing.clear();
            let (_, idx) =
                self.append_own(ctx, vec![(EntryKind::ConfChange, encode_config(&next))]);
            self.pending_conf_index = idx;
        } else if !self.config.is_voter(self.me) {
            let term = self.term;
            self.become_follower(ctx, term, NO_NODE);
            return;
        }
        if self.maybe_commit(ctx) {
            self.bcast_commit = true;
        }
    }

    /// Committed, durable entries not yet handed out, in order.
    pub(crate) fn take_committed(&mut self, ctx: &mut Ctx<'_>) -> Vec<Entry> {
        let hi = self.log.committed.min(self.log.stable_last());
        if hi <= self.log.applied {
            return Vec::new();
        }
        let mut out = Vec::new();
        let ok = self.log.entries(
            ctx.reader,
            self.log.applied + 1,
            hi + 1,
            ctx.cfg.max_apply_bytes,
            &mut out,
        );
        assert!(
            ok,
            "group {}: committed entries were compacted before apply",
            self.id
        );
        if let Some(e) = out.last() {
            assert_eq!(
                out[0].index,
                self.log.applied + 1,
                "group {}: apply out of order",
                self.id
            );
            self.log.applied = e.index;
        }
        for e in &out {
            if e.kind == EntryKind::ConfChange {
                self.apply_conf(ctx, e);
            }
        }
        out
    }
}

fn accept(index: Index) -> MessageBody {
    MessageBody::AppendResp {
        index,
        reject: false,
        hint_index: 0,
        hint_term: 0,
    }
}
