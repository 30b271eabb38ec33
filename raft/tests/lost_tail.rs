//! A replica that lost the tail of its log (a torn write, a damaged disk)
//! below the commit index it had persisted: it may have been part of the
//! quorum that committed the lost entries, so it must not vote (or
//! campaign) until it holds them again (`GroupBootstrap::recovering_until`).

mod common;

use common::{cluster, plain, with_pre_vote, Cluster};
use raft::{NodeId, RaftConfig, Role};

/// Ticks a scenario waits for an election that must not happen.
const WAIT_TICKS: u32 = 200;

fn elect(c: &mut Cluster, n: NodeId) {
    c.raft(n).campaign(1);
    c.stabilize();
    assert_eq!(c.role(n, 1), Role::Leader, "n{n} elected");
}

fn last_index(c: &Cluster, n: NodeId) -> u64 {
    c.nodes[&n].status(1).expect("group").last_index
}

/// Ticks every live node once per round and checks `check` after each.
fn tick_checking(c: &mut Cluster, rounds: u32, mut check: impl FnMut(&Cluster)) {
    for _ in 0..rounds {
        c.tick_all(1);
        check(c);
    }
}

fn recovering_replica_votes_only_once_caught_up(cfg: RaftConfig) {
    let mut c = cluster(&[1, 2, 3], cfg);
    elect(&mut c, 1);
    for data in ["a", "b", "c", "d", "e"] {
        c.propose(1, 1, data).expect("leader");
    }
    c.stabilize();
    let commit = c.commit(1, 1);
    assert_eq!(commit, 6, "the leader's empty entry and five proposals");

    // n2 comes back holding entries 1..=3 only, n1 is gone for now.
    c.down.insert(1);
    c.restart_losing_tail(2, 4, true);
    assert_eq!(last_index(&c, 2), 3);
    assert_eq!(c.raft(2).recovering_until(1), Some(commit));

    // n3 (which holds everything) asks n2 for its vote and gets none;
    // n2 never campaigns itself.
    let mut asked = false;
    tick_checking(&mut c, WAIT_TICKS, |c| {
        assert_eq!(
            c.role(2, 1),
            Role::Follower,
            "a recovering replica campaigned"
        );
        assert_ne!(c.role(3, 1), Role::Leader, "n2 voted while recovering");
        asked |= c.role(3, 1) != Role::Follower;
    });
    assert!(asked, "n3 did ask for votes");
    assert_ne!(c.raft(2).reader().hard_state(1).vote, 3, "n2 voted for n3");

    // Knowing what was lost survives another restart, even though the term
    // moved on meanwhile.
    c.restart_losing_tail(2, 4, true);
    assert_eq!(c.raft(2).recovering_until(1), Some(commit));

    // n1 returns: n3 wins with its vote and brings n2 back up to date.
    c.down.remove(&1);
    for _ in 0..WAIT_TICKS {
        c.tick_all(1);
        if c.raft(2).recovering_until(1).is_none() {
            break;
        }
    }
    assert_eq!(c.raft(2).recovering_until(1), None, "the gate lifts");
    assert!(last_index(&c, 2) >= commit);
    let leader = c.leader(1).expect("a leader");
    assert_ne!(leader, 2);

    // Caught up, n2 takes part in elections again: with the leader gone,
    // the two others elect one of them.
    c.down.insert(leader);
    c.tick_all(WAIT_TICKS);
    let next = c.leader(1).expect("n2 votes or campaigns again");
    assert_ne!(next, leader);
}

#[test]
fn a_recovering_replica_neither_votes_nor_campaigns_until_caught_up() {
    recovering_replica_votes_only_once_caught_up(plain());
}

#[test]
fn a_recovering_replica_refuses_pre_votes_too() {
    recovering_replica_votes_only_once_caught_up(with_pre_vote());
}

/// n1 leads and commits "a" and "b" with n2 while n3 is cut off; n2 then
/// loses them in a torn tail and n1 goes down. Returns the cluster with n2
/// and n3 talking.
fn committed_entries_held_by_a_crashed_leader_and_a_torn_follower(gate: bool) -> Cluster {
    let mut c = cluster(&[1, 2, 3], plain());
    elect(&mut c, 1);
    c.stabilize();
    let before = last_index(&c, 1);
    c.isolate(3);
    c.propose(1, 1, "a").expect("leader");
    c.propose(1, 1, "b").expect("leader");
    c.stabilize();
    assert_eq!(c.commit(1, 1), before + 2, "n1 and n2 commit a and b");
    assert_eq!(c.applied_data(1, 1), ["a", "b"]);
    c.down.insert(1);
    c.restart_losing_tail(2, before + 1, gate);
    c.heal();
    c
}

#[test]
fn without_the_gate_a_torn_replica_elects_a_leader_missing_committed_entries() {
    // The control: shows the scenario below is a real danger.
    let mut c = committed_entries_held_by_a_crashed_leader_and_a_torn_follower(false);
    c.tick_all(WAIT_TICKS);
    let leader = c.leader(1).expect("n2 and n3 elect a leader");
    assert!(
        !c.log_of(leader, 1).contains(":a"),
        "the new leader lacks the committed entry a: {}",
        c.log_of(leader, 1)
    );
}

#[test]
fn with_the_gate_no_leader_without_committed_entries_is_elected() {
    let mut c = committed_entries_held_by_a_crashed_leader_and_a_torn_follower(true);
    tick_checking(&mut c, WAIT_TICKS, |c| {
        assert_eq!(c.leader(1), None, "a leader without a and b was elected");
    });
    // n1 comes back: a leader holding a and b is elected and every replica
    // ends up with them.
    c.down.remove(&1);
    c.tick_all(WAIT_TICKS);
    let leader = c.leader(1).expect("a leader once n1 is back");
    c.propose(leader, 1, "c").expect("leader");
    c.stabilize();
    for n in [1, 2, 3] {
        let log = c.log_of(n, 1);
        assert!(
            log.contains(":a") && log.contains(":b") && log.contains(":c"),
            "n{n}: {log}"
        );
    }
    assert_eq!(c.raft(2).recovering_until(1), None);
    let applied = c.applied_data(2, 1);
    assert_eq!(applied[applied.len() - 3..], ["a", "b", "c"]);
}

#[test]
fn the_leader_repairs_a_follower_that_lost_acknowledged_entries() {
    for cfg in [plain(), with_pre_vote()] {
        let mut c = cluster(&[1, 2, 3], cfg);
        elect(&mut c, 1);
        for data in ["a", "b", "c"] {
            c.propose(1, 1, data).expect("leader");
        }
        c.stabilize();
        let term = c.term(1, 1);
        // The leader's progress says n2 holds 1..=4; after the restart it
        // holds 1..=2 and tells the leader so on the next heartbeat.
        c.restart_losing_tail(2, 3, true);
        assert_eq!(c.raft(2).recovering_until(1), Some(4));
        c.tick_all(3);
        assert_eq!(c.raft(2).recovering_until(1), None, "caught up");
        assert_eq!(c.log_of(2, 1), c.log_of(1, 1));
        assert_eq!((c.leader(1), c.term(1, 1)), (Some(1), term), "no election");
        assert_eq!(c.nodes[&1].progress(1).expect("leader")[&2].match_index, 4);
    }
}
