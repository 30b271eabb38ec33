//! Safety checks run after every simulation step, and the record they keep:
//!
//! - election safety: one leader per (group, term);
//! - log matching: every written entry is checked against a global table of
//!   (group, index, term) -> (payload hash, previous term), which by
//!   induction makes equal (index, term) imply equal prefixes;
//! - leader completeness: when a node becomes leader of term T its log holds
//!   every entry committed in an earlier term, and every entry acknowledged
//!   to a client under an earlier term;
//! - state machine safety and byte-identical committed prefixes: every
//!   replica's apply chain hash at index i equals the first one recorded,
//!   and installed snapshots carry the chain hash of their index.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use raft::{Entry, EntryKind, GroupId, Index, NodeId, Term};

/// A broken invariant, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{invariant} violated: {detail}")]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

pub(crate) fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// Hash of an entry's kind and payload.
pub fn payload_hash(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    matches!(e.kind, EntryKind::ConfChange).hash(&mut h);
    e.data.hash(&mut h);
    h.finish()
}

/// Next link of an apply chain.
pub fn chain_hash(prev: u64, e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    prev.hash(&mut h);
    e.term.hash(&mut h);
    e.index.hash(&mut h);
    payload_hash(e).hash(&mut h);
    h.finish()
}

#[derive(Clone, Copy, Debug)]
struct Committed {
    term: Term,
    commit_term: Term,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Acked {
    pub(crate) index: Index,
    pub(crate) term: Term,
    pub(crate) payload: u64,
}

/// Global record of what every replica did.
#[derive(Default, Debug)]
pub struct Checker {
    leaders: HashMap<(GroupId, Term), NodeId>,
    entries: HashMap<(GroupId, Index, Term), (u64, Term)>,
    committed: BTreeMap<GroupId, Vec<Committed>>,
    chain: BTreeMap<GroupId, Vec<u64>>,
    pub(crate) acked: BTreeMap<GroupId, Vec<Acked>>,
    leader_seen: HashMap<(NodeId, GroupId), Term>,
    /// Last (term, commit index) seen on each node while it led a group.
    leader_commits: HashMap<(NodeId, GroupId), (Term, Index)>,
    /// Entries acknowledged to clients.
    pub acked_count: u64,
    /// Elections won.
    pub elections: u64,
}

impl Checker {
    /// Election safety; returns true when `node` just became leader of `term`.
    pub(crate) fn leader(
        &mut self,
        group: GroupId,
        term: Term,
        node: NodeId,
    ) -> Result<bool, Violation> {
        let first = *self.leaders.entry((group, term)).or_insert(node);
        if first != node {
            return Err(violation(
                "election safety",
                format!("group {group} term {term}: leaders {first} and {node}"),
            ));
        }
        let seen = self.leader_seen.entry((node, group)).or_insert(0);
        let new = *seen != term;
        *seen = term;
        if new {
            self.elections += 1;
        }
        Ok(new)
    }

    /// Log matching, for an entry written after an entry of `prev_term`.
    /// `existing` is the term of the entry the write replaces, if any.
    pub(crate) fn written(
        &mut self,
        node: NodeId,
        group: GroupId,
        e: &Entry,
        prev_term: Term,
        existing: Option<Term>,
    ) -> Result<(), Violation> {
        if let Some(c) = self
            .committed
            .get(&group)
            .and_then(|v| v.get(e.index as usize - 1))
        {
            if existing == Some(c.term) && c.term != e.term {
                return Err(violation(
                    "committed entries are never overwritten",
                    format!(
                        "node {node} group {group} writes {}/{} over committed {}/{}",
                        e.term, e.index, c.term, e.index
                    ),
                ));
            }
        }
        let h = payload_hash(e);
        let rec = *self
            .entries
            .entry((group, e.index, e.term))
            .or_insert((h, prev_term));
        if rec != (h, prev_term) {
            return Err(violation(
                "log matching",
                format!(
                    "node {node} group {group}: entry {}/{} has (payload {:x}, prev term {}) but another replica has (payload {:x}, prev term {})",
                    e.term, e.index, h, prev_term, rec.0, rec.1
                ),
            ));
        }
        Ok(())
    }

    /// The commit rule of Raft §5.4.2: while it leads, a leader moves its
    /// commit index only onto an entry of its own term (earlier entries are
    /// committed through it). `term_at_commit` is the term of the entry at
    /// `commit` in the leader's log.
    pub(crate) fn leader_commit(
        &mut self,
        node: NodeId,
        group: GroupId,
        term: Term,
        commit: Index,
        term_at_commit: Option<Term>,
    ) -> Result<(), Violation> {
        let before = self.leader_commits.insert((node, group), (term, commit));
        match before {
            Some((t, c)) if t == term && commit > c && term_at_commit != Some(term) => {
                Err(violation(
                    "a leader commits by counting only entries of its own term (§5.4.2)",
                    format!(
                        "node {node} leads group {group} in term {term} and moved its commit \
                         index from {c} to {commit}, an entry of term {term_at_commit:?}"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Highest index known committed in `group`.
    pub(crate) fn commit_index(&self, group: GroupId) -> Index {
        self.committed
            .get(&group)
            .map(|v| v.len() as Index)
            .unwrap_or(0)
    }

    /// Records that a leader of `commit_term` committed index `index` (term `term`).
    pub(crate) fn commit(&mut self, group: GroupId, index: Index, term: Term, commit_term: Term) {
        let v = self.committed.entry(group).or_default();
        assert_eq!(v.len() as Index + 1, index, "commits are recorded in order");
        v.push(Committed { term, commit_term });
    }

    /// Leader completeness for a new leader of `term`: `term_at` gives the
    /// leader's view (None when compacted or missing), `last` its last index,
    /// `first` its first index.
    pub(crate) fn new_leader(
        &self,
        node: NodeId,
        group: GroupId,
        term: Term,
        first: Index,
        last: Index,
        term_at: &dyn Fn(Index) -> Option<Term>,
    ) -> Result<(), Violation> {
        let check = |what: &'static str, index: Index, want: Term| -> Result<(), Violation> {
            if index < first {
                return Ok(()); // compacted: it was applied here (see the apply chain)
            }
            if index > last || term_at(index) != Some(want) {
                return Err(violation(
                    what,
                    format!(
                        "node {node} leads group {group} in term {term} without entry {want}/{index} (has {:?}, last {last})",
                        term_at(index)
                    ),
                ));
            }
            Ok(())
        };
        if let Some(v) = self.committed.get(&group) {
            if let Some(pos) = v.iter().rposition(|c| c.commit_term < term) {
                check("leader completeness", pos as Index + 1, v[pos].term)?;
            }
        }
        if let Some(v) = self.acked.get(&group) {
            for a in v.iter().filter(|a| a.term < term) {
                check("acknowledged entry in later leader", a.index, a.term)?;
            }
        }
        Ok(())
    }

    /// State machine safety: `node` applied `e` after chain hash `prev`;
    /// returns the new chain hash.
    pub(crate) fn applied(
        &mut self,
        node: NodeId,
        group: GroupId,
        prev: u64,
        e: &Entry,
    ) -> Result<u64, Violation> {
        let h = chain_hash(prev, e);
        let chain = self.chain.entry(group).or_insert_with(|| vec![0]);
        let i = e.index as usize;
        if i < chain.len() {
            if chain[i] != h {
                return Err(violation(
                    "state machine safety",
                    format!("node {node} group {group} applied a different entry {}/{} (prefix differs)", e.term, e.index),
                ));
            }
        } else if i == chain.len() {
            chain.push(h);
        } else {
            return Err(violation(
                "state machine safety",
                format!(
                    "node {node} group {group} applied {} before {}",
                    e.index,
                    chain.len()
                ),
            ));
        }
        Ok(h)
    }

    /// An installed snapshot's chain hash must match the record.
    pub(crate) fn snapshot_installed(
        &self,
        node: NodeId,
        group: GroupId,
        index: Index,
        hash: u64,
    ) -> Result<(), Violation> {
        let known = self
            .chain
            .get(&group)
            .and_then(|c| c.get(index as usize))
            .copied();
        if known != Some(hash) {
            return Err(violation(
                "state machine safety",
                format!("node {node} group {group} installed a snapshot at {index} whose state differs ({known:?})"),
            ));
        }
        Ok(())
    }

    pub(crate) fn ack(&mut self, group: GroupId, index: Index, term: Term, payload: u64) {
        self.acked_count += 1;
        self.acked.entry(group).or_default().push(Acked {
            index,
            term,
            payload,
        });
    }
}
