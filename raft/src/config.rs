//! Group membership: the voters of a group (two voter sets while a joint
//! consensus change is in progress) and each node's election priority, with
//! the quorum arithmetic that commit and elections use.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Index, NodeId};

/// Priority of a node that has no explicit priority.
pub const DEFAULT_PRIORITY: u32 = 1;

/// Most voters a single configuration may hold.
pub const MAX_VOTERS: usize = 64;

/// Membership of one group.
///
/// While `outgoing` is non-empty the group is in joint consensus: decisions
/// (commit, election) need a majority of `voters` *and* of `outgoing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupConfig {
    /// Voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration; empty unless joint.
    pub outgoing: BTreeSet<NodeId>,
    /// Election priority per node (Zeebe-style): the healthy, caught-up voter
    /// with the highest priority becomes leader. Missing nodes have
    /// [`DEFAULT_PRIORITY`].
    pub priorities: BTreeMap<NodeId, u32>,
    /// Learners: replicated to like voters, but never counted in a quorum
    /// and never candidates. A new replica catches up as one before it is
    /// made a voter. Never voters at the same time.
    pub learners: BTreeSet<NodeId>,
}

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer be reached.
    Lost,
    /// Still waiting for responses.
    Pending,
}

fn majority_index(set: &BTreeSet<NodeId>, matched: &dyn Fn(NodeId) -> Index) -> Index {
    if set.is_empty() {
        return Index::MAX;
    }
    let mut indexes: Vec<Index> = set.iter().map(|&id| matched(id)).collect();
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[set.len() / 2]
}

fn majority_vote(set: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if set.is_empty() {
        return VoteResult::Won;
    }
    let quorum = set.len() / 2 + 1;
    let granted = set.iter().filter(|id| votes.get(id) == Some(&true)).count();
    let rejected = set
        .iter()
        .filter(|id| votes.get(id) == Some(&false))
        .count();
    if granted >= quorum {
        VoteResult::Won
    } else if set.len() - rejected < quorum {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

impl GroupConfig {
    /// A simple (non-joint) configuration with default priorities.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        GroupConfig {
            voters: voters.into_iter().collect(),
            outgoing: BTreeSet::new(),
            priorities: BTreeMap::new(),
            learners: BTreeSet::new(),
        }
    }

    /// Sets a node's priority (builder style).
    pub fn with_priority(mut self, node: NodeId, priority: u32) -> Self {
        self.priorities.insert(node, priority);
        self
    }

    /// Whether a joint-consensus change is in progress.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `node` votes in either half of the configuration.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.outgoing.contains(&node)
    }

    /// Every voter of either half, ascending.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.outgoing).copied().collect()
    }

    /// Every node the leader replicates to: the voters and the learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut out = self.all_voters();
        out.extend(self.learners.iter().copied());
        out
    }

    /// Whether `node` is a learner.
    pub fn is_learner(&self, node: NodeId) -> bool {
        self.learners.contains(&node)
    }

    /// Priority of `node`.
    pub fn priority(&self, node: NodeId) -> u32 {
        self.priorities
            .get(&node)
            .copied()
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// Highest index matched by a quorum (of both halves when joint).
    pub fn committed_index(&self, matched: &dyn Fn(NodeId) -> Index) -> Index {
        let a = majority_index(&self.voters, matched);
        let b = majority_index(&self.outgoing, matched);
        a.min(b)
    }

    /// Counts votes (both halves must win when joint).
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let a = majority_vote(&self.voters, votes);
        let b = majority_vote(&self.outgoing, votes);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Whether `active` contains a quorum (of both halves when joint).
    pub fn has_quorum(&self, active: &BTreeSet<NodeId>) -> bool {
        let votes: BTreeMap<NodeId, bool> = active.iter().map(|&id| (id, true)).collect();
        self.vote_result(&votes) == VoteResult::Won
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_commit_needs_both_majorities() {
        let mut cfg = GroupConfig::new([1, 2, 3]);
        cfg.outgoing = [3, 4, 5].into_iter().collect();
        let matched = |id: NodeId| match id {
            1 | 2 => 10,
            3 => 5,
            _ => 1,
        };
        // New half: 10, old half {3,4,5}: 5,1,1 -> 1.
        assert_eq!(cfg.committed_index(&matched), 1);
        cfg.outgoing.clear();
        assert_eq!(cfg.committed_index(&matched), 10);
    }

    #[test]
    fn votes_lost_when_majority_rejects() {
        let cfg = GroupConfig::new([1, 2, 3]);
        let mut votes = BTreeMap::new();
        votes.insert(1, true);
        assert_eq!(cfg.vote_result(&votes), VoteResult::Pending);
        votes.insert(2, false);
        votes.insert(3, false);
        assert_eq!(cfg.vote_result(&votes), VoteResult::Lost);
        votes.insert(3, true);
        assert_eq!(cfg.vote_result(&votes), VoteResult::Won);
    }
}
