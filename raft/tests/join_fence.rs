//! A node deleted from its group and added back under the same id starts
//! empty. Its earlier incarnation may have been counted in a configuration
//! from before its removal, by a replica that has not heard of the removal
//! since: the new replica's vote must not elect such a candidate. It starts
//! fenced at the leader's committed entry of the moment it joined
//! (`GroupBootstrap::recovering_term`), and votes only for candidates whose
//! log holds that entry until its own log does.

mod common;

use common::{cluster, plain, with_pre_vote, Cluster};
use raft::{RaftConfig, Role};

const WAIT_TICKS: u32 = 200;

/// n1 leads and commits entries that n3, cut off, never receives; then n2
/// is replaced by an empty replica at the leader's term (with `fence`, the
/// leader's last committed entry) and n1 goes away. Returns the cluster and
/// that commit index.
fn stale_candidate_and_empty_rejoiner(cfg: RaftConfig, fenced: bool) -> (Cluster, u64) {
    let mut c = cluster(&[1, 2, 3], cfg);
    c.raft(1).campaign(1);
    c.stabilize();
    assert_eq!(c.role(1, 1), Role::Leader);
    c.propose(1, 1, "a").expect("leader");
    c.stabilize();
    c.down.insert(3);
    for data in ["b", "c", "d"] {
        c.propose(1, 1, data).expect("leader");
    }
    c.stabilize();
    let commit = c.commit(1, 1);
    assert_eq!(commit, 5, "committed by n1 and n2 without n3");
    let term = c.term(1, 1);
    let commit_term = c.raft(1).term_at(1, commit).expect("held");
    c.down.insert(1);
    c.rejoin_empty(2, term, fenced.then_some((commit, commit_term)));
    c.down.remove(&3);
    (c, commit)
}

fn fenced_rejoiner_refuses_the_stale_candidate(cfg: RaftConfig) {
    let (mut c, commit) = stale_candidate_and_empty_rejoiner(cfg, true);
    assert_eq!(c.raft(2).recovering_until(1), Some(commit));
    let mut asked = false;
    for _ in 0..WAIT_TICKS {
        c.tick_all(1);
        assert_ne!(
            c.role(3, 1),
            Role::Leader,
            "n3 lacks committed entries and was elected by the empty n2"
        );
        asked |= c.role(3, 1) != Role::Follower;
    }
    assert!(asked, "n3 did ask for votes");

    // The group's present is not refused: n1, holding the fence's entry,
    // is elected by the empty n2 while n3 is away, and brings it up to date
    // (restarted, as a leader cut off without check-quorum never learns of
    // the terms that passed).
    c.down.insert(3);
    c.restart(1);
    for _ in 0..WAIT_TICKS {
        c.tick_all(1);
        if c.raft(2).recovering_until(1).is_none() {
            break;
        }
    }
    assert_eq!(c.leader(1), Some(1), "n1 elected with the fenced n2's vote");
    assert_eq!(c.raft(2).recovering_until(1), None, "the fence lifts");
    assert_eq!(
        c.applied_data(2, 1),
        c.applied_data(1, 1),
        "n2 holds the group's log again"
    );
}

#[test]
fn a_fenced_rejoiner_refuses_a_stale_candidate_and_elects_a_current_one() {
    fenced_rejoiner_refuses_the_stale_candidate(plain());
}

#[test]
fn a_fenced_rejoiner_refuses_a_stale_pre_candidate_too() {
    fenced_rejoiner_refuses_the_stale_candidate(with_pre_vote());
}

/// Why the fence exists: without it the empty replica's vote elects the
/// candidate that lacks committed entries.
#[test]
fn without_the_fence_the_empty_rejoiner_elects_the_stale_candidate() {
    let (mut c, commit) = stale_candidate_and_empty_rejoiner(plain(), false);
    let mut stale_leader = false;
    for _ in 0..WAIT_TICKS {
        c.tick_all(1);
        if c.role(3, 1) == Role::Leader {
            stale_leader = true;
            break;
        }
    }
    assert!(stale_leader, "n3 was not elected");
    assert!(
        c.nodes[&3].status(1).expect("group").last_index < commit,
        "the new leader lacks committed entries"
    );
}
