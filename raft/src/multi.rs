//! [`MultiRaft`]: drives every Raft group of one shard on one node.
//!
//! Owned by the shard's thread for the life of the shard. It holds a
//! [`Group`] per hosted group, the shared [`LogReader`], a seeded PRNG for
//! election timeouts, and the outboxes in which the messages of all groups
//! are coalesced into one envelope per destination node.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::GroupConfig;
use crate::error::{GroupError, ProposeError};
use crate::group::{CampaignKind, Ctx, Group, Outbox};
use crate::message::{Envelope, GroupMessage};
use crate::options::RaftConfig;
use crate::reader::LogReader;
use crate::ready::{GroupReady, Ready};
use crate::types::{GroupId, HardState, Index, NodeId, Role, Term};

/// How a group starts on this node: from its persisted state after a
/// restart, or empty on first boot.
#[derive(Clone, Debug, Default)]
pub struct GroupBootstrap {
    /// Configuration as of the latest snapshot (or the initial one).
    pub config: GroupConfig,
    /// Persisted hard state.
    pub hard_state: HardState,
    /// Index up to which the application state already reflects the log
    /// (the snapshot index after a restart).
    pub applied: Index,
    /// The persisted commit index when it is above the last index found in
    /// the log (its tail was lost, e.g. torn), else 0. Until the log reaches
    /// it again (from the leader), this replica neither campaigns nor grants
    /// votes or pre-votes: its acknowledgement may have formed the quorum of
    /// the lost entries, so voting with the shorter log could elect a leader
    /// without them. The gate lifts itself once the log reaches the index.
    /// A replica that joins its group empty starts gated too, at the
    /// leader's committed entry it joined at (see `recovering_term`).
    pub recovering_until: Index,
    /// The term of the entry at `recovering_until`, when known: a replica
    /// that joins its group empty knows the committed entry it joined at.
    /// Then the gate refuses only candidates whose log does not hold that
    /// entry (by the up-to-date rule, §5.4.1), not every candidate: an
    /// earlier incarnation of this node may have voted in a configuration
    /// from before its removal, and a candidate still in that configuration
    /// must not count the new, empty replica's vote, while a candidate of
    /// the group's present gets it.
    pub recovering_term: Option<Term>,
}

/// Acknowledges that [`MultiRaft::force_reconfiguration`] bypasses consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsafeForce {
    /// "I have lost a quorum for good (region loss) and accept that
    /// acknowledged writes held only by the lost replicas are gone."
    IAcceptDataLoss,
}

/// Observable state of one group on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Role.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// Known leader, or 0.
    pub leader: NodeId,
    /// Commit index.
    pub commit: Index,
    /// Index of the last entry handed out for applying.
    pub applied: Index,
    /// Last index of the log (including the unstable tail).
    pub last_index: Index,
    /// Configuration in effect.
    pub config: GroupConfig,
}

/// The cheap part of [`Status`] (no allocation), for per-step checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Brief {
    /// Role.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// Known leader, or 0.
    pub leader: NodeId,
    /// Commit index.
    pub commit: Index,
    /// Last index of the log (including the unstable tail).
    pub last_index: Index,
}

/// Every Raft group of one shard on one node.
pub struct MultiRaft<R: LogReader> {
    me: NodeId,
    cfg: RaftConfig,
    reader: R,
    rng: Xoshiro256PlusPlus,
    groups: BTreeMap<GroupId, Group>,
    out: Outbox,
    unreachable: BTreeSet<NodeId>,
}

macro_rules! ctx {
    ($s:ident) => {
        Ctx {
            reader: &$s.reader,
            cfg: &$s.cfg,
            rng: &mut $s.rng,
            out: &mut $s.out,
            unreachable: &$s.unreachable,
        }
    };
}

impl<R: LogReader> MultiRaft<R> {
    /// A node `me` (non-zero) with no groups; `seed` drives election jitter.
    pub fn new(me: NodeId, cfg: RaftConfig, reader: R, seed: u64) -> Self {
        assert!(me != crate::types::NO_NODE, "node id 0 is reserved");
        MultiRaft {
            me,
            cfg,
            reader,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            groups: BTreeMap::new(),
            out: Outbox::default(),
            unreachable: BTreeSet::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The configuration shared by all groups.
    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    /// The log reader (the application writes through it between readies).
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Mutable access to the log reader, for the application's writes.
    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Starts hosting a group; its log is read from the reader.
    pub fn add_group(&mut self, group: GroupId, boot: GroupBootstrap) -> Result<(), GroupError> {
        if self.groups.contains_key(&group) {
            return Err(GroupError::AlreadyExists { group });
        }
        let me = self.me;
        let mut ctx = ctx!(self);
        let g = Group::new(&mut ctx, group, me, boot);
        self.groups.insert(group, g);
        Ok(())
    }

    /// Stops hosting a group.
    pub fn remove_group(&mut self, group: GroupId) -> bool {
        self.groups.remove(&group).is_some()
    }

    /// Ids of the hosted groups.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// Feeds one message from `from`. Messages for unknown groups are dropped.
    pub fn step(&mut self, from: NodeId, msg: GroupMessage) {
        let mut ctx = ctx!(self);
        if let Some(g) = self.groups.get_mut(&msg.group) {
            g.step(&mut ctx, from, msg);
        }
    }

    /// Feeds every message of an envelope addressed to this node.
    pub fn step_envelope(&mut self, env: Envelope) {
        if env.to != self.me {
            return;
        }
        for m in env.messages {
            self.step(env.from, m);
        }
    }

    /// The nodes this node cannot reach now (the application's transport
    /// knows). Only the priority election reads it: a replica does not wait
    /// for an unreachable node of higher priority to campaign first.
    pub fn set_unreachable(&mut self, nodes: BTreeSet<NodeId>) {
        self.unreachable = nodes;
    }

    /// Advances logical time by one tick for every group.
    pub fn tick(&mut self) {
        let mut ctx = ctx!(self);
        for g in self.groups.values_mut() {
            g.tick(&mut ctx);
        }
    }

    /// Starts an election in `group` at once (tests and operator tooling).
    pub fn campaign(&mut self, group: GroupId) {
        let mut ctx = ctx!(self);
        if let Some(g) = self.groups.get_mut(&group) {
            if g.role != Role::Leader {
                let kind = if ctx.cfg.pre_vote {
                    CampaignKind::PreVote
                } else {
                    CampaignKind::Election
                };
                g.campaign(&mut ctx, kind);
            }
        }
    }

    /// Appends a batch of entries on the leader; returns their index range.
    pub fn propose(
        &mut self,
        group: GroupId,
        batch: Vec<Bytes>,
    ) -> Result<(Index, Index), ProposeError> {
        self.with_group(group, |g, ctx| g.propose(ctx, batch))
    }

    /// Starts a membership change by joint consensus to `voters` (with new
    /// priorities); returns the index of the configuration entry. The leader
    /// leaves the joint configuration by itself once it is applied.
    pub fn propose_conf_change(
        &mut self,
        group: GroupId,
        voters: BTreeSet<NodeId>,
        priorities: BTreeMap<NodeId, u32>,
    ) -> Result<Index, ProposeError> {
        self.with_group(group, |g, ctx| g.propose_config(ctx, voters, priorities))
    }

    /// Proposes `learners` as the group's learners (leader only): they are
    /// replicated to and catch up, but count in no quorum and never stand
    /// for election. Make one a voter with [`MultiRaft::propose_conf_change`].
    pub fn propose_learners(
        &mut self,
        group: GroupId,
        learners: BTreeSet<NodeId>,
    ) -> Result<Index, ProposeError> {
        self.with_group(group, |g, ctx| g.propose_learners(ctx, learners))
    }

    /// Runs a proposal `f` on `group`.
    fn with_group<T>(
        &mut self,
        group: GroupId,
        f: impl FnOnce(&mut Group, &mut Ctx<'_>) -> Result<T, ProposeError>,
    ) -> Result<T, ProposeError> {
        let mut ctx = ctx!(self);
        let g = self
            .groups
            .get_mut(&group)
            .ok_or(ProposeError::UnknownGroup { group })?;
        f(g, &mut ctx)
    }

    /// **Unsafe**: replaces the group's voters on this node without
    /// consensus, for the region-loss runbook when a quorum is gone for good.
    /// Run it on every surviving replica with the same voters; the next
    /// leader writes the configuration to the log. Entries acknowledged by
    /// the lost replicas only are lost, and two disjoint forced
    /// configurations can elect two leaders.
    pub fn force_reconfiguration(
        &mut self,
        group: GroupId,
        voters: BTreeSet<NodeId>,
        _ack: UnsafeForce,
    ) {
        let mut ctx = ctx!(self);
        if let Some(g) = self.groups.get_mut(&group) {
            g.force_config(&mut ctx, voters);
        }
    }

    /// Hands leadership of `group` to `to` (a caught-up voter).
    pub fn transfer_leadership(&mut self, group: GroupId, to: NodeId) -> Result<(), ProposeError> {
        let mut ctx = ctx!(self);
        let g = self
            .groups
            .get_mut(&group)
            .ok_or(ProposeError::UnknownGroup { group })?;
        if g.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                group,
                leader_hint: g.leader,
            });
        }
        g.transfer_leadership(&mut ctx, to);
        Ok(())
    }

    /// Storage acknowledgement: the entries of `group` up to `index` (whose
    /// term is `term`), or the snapshot at (`index`, `term`), are durable.
    pub fn persisted(&mut self, group: GroupId, index: Index, term: Term) {
        let mut ctx = ctx!(self);
        if let Some(g) = self.groups.get_mut(&group) {
            g.persisted(&mut ctx, index, term);
        }
    }

    /// Whether `ready()` would return something.
    pub fn has_ready(&self) -> bool {
        if !self.out.now.is_empty() || !self.out.after_persist.is_empty() {
            return true;
        }
        self.groups.values().any(|g| {
            g.bcast_entries
                || g.bcast_commit
                || g.log.has_unpersisted()
                || g.received_snapshot.is_some()
                || g.hard_state() != g.persisted_hs
                || g.log.committed.min(g.log.stable_last()) > g.log.applied
        })
    }

    /// Collects everything to persist, send and apply (see [`Ready`]).
    pub fn ready(&mut self) -> Ready {
        let mut ready = Ready::default();
        let mut ctx = ctx!(self);
        for g in self.groups.values_mut() {
            // Apply first: configuration changes may add followers or
            // entries (leaving a joint configuration).
            let committed = g.take_committed(&mut ctx);
            let peers: Vec<NodeId> = g.progress.keys().copied().collect();
            if g.bcast_commit || g.bcast_entries {
                let commit = g.bcast_commit;
                g.bcast_commit = false;
                g.bcast_entries = false;
                for p in peers {
                    if commit {
                        g.send_append(&mut ctx, p, true);
                    }
                    while g.send_append(&mut ctx, p, false) {}
                }
            }
            let mut gr = GroupReady {
                group: g.id,
                ..GroupReady::default()
            };
            if g.log.pending_snapshot().is_some() && !g.log.snapshot_handed_out {
                gr.snapshot = g.received_snapshot.take();
                g.log.snapshot_handed_out = true;
            }
            gr.entries = g.log.take_unpersisted();
            let hs = g.hard_state();
            if hs != g.persisted_hs {
                gr.hard_state = Some(hs);
                g.persisted_hs = hs;
            }
            gr.committed = committed;
            if gr.snapshot.is_some()
                || !gr.entries.is_empty()
                || gr.hard_state.is_some()
                || !gr.committed.is_empty()
            {
                ready.groups.push(gr);
            }
        }
        let me = self.me;
        let envelopes = |map: &mut BTreeMap<NodeId, Vec<GroupMessage>>| -> Vec<Envelope> {
            std::mem::take(map)
                .into_iter()
                .map(|(to, messages)| Envelope {
                    from: me,
                    to,
                    messages,
                })
                .collect()
        };
        ready.messages = envelopes(&mut self.out.now);
        ready.messages_after_persist = envelopes(&mut self.out.after_persist);
        ready
    }

    /// Observable state of a group.
    pub fn status(&self, group: GroupId) -> Option<Status> {
        let g = self.groups.get(&group)?;
        Some(Status {
            role: g.role,
            term: g.term,
            leader: g.leader,
            commit: g.log.committed,
            applied: g.log.applied,
            last_index: g.log.last_index(&self.reader),
            config: g.config.clone(),
        })
    }

    /// Role, term, leader, commit and last index of a group.
    pub fn brief(&self, group: GroupId) -> Option<Brief> {
        let g = self.groups.get(&group)?;
        Some(Brief {
            role: g.role,
            term: g.term,
            leader: g.leader,
            commit: g.log.committed,
            last_index: g.log.last_index(&self.reader),
        })
    }

    /// Term of the entry at `index` in this node's view of the log
    /// (including the unstable tail); for checkers.
    pub fn term_at(&self, group: GroupId, index: Index) -> Option<Term> {
        let g = self.groups.get(&group)?;
        g.log.term(&self.reader, index)
    }

    /// The index this replica must hold again (durably) before it votes or
    /// campaigns (see [`GroupBootstrap::recovering_until`]), while it is
    /// recovering a lost log tail; `None` once its log has reached it (or it
    /// never had to).
    pub fn recovering_until(&self, group: GroupId) -> Option<Index> {
        self.groups.get(&group)?.recovering_until()
    }

    /// Replication progress of each follower, when this node leads `group`.
    pub fn progress(&self, group: GroupId) -> Option<BTreeMap<NodeId, crate::Progress>> {
        let g = self.groups.get(&group)?;
        (g.role == Role::Leader).then(|| g.progress.clone())
    }
}
