//! Tests named after the sections of the Raft paper (Ongaro & Ousterhout,
//! "In Search of an Understandable Consensus Algorithm") that they check.

mod common;

use common::{cluster, plain, Cluster};
use raft::{GroupConfig, NodeId, RaftConfig, Role};

#[test]
fn section_5_2_candidate_with_majority_becomes_leader() {
    let mut c = cluster(&[1, 2, 3, 4, 5], plain());
    c.isolate(4);
    c.isolate(5);
    c.raft(1).campaign(1);
    c.stabilize();
    assert_eq!(c.role(1, 1), Role::Leader, "3 of 5 votes elect");
    assert_eq!(c.term(1, 1), 1);
}

#[test]
fn section_5_2_candidate_without_majority_stays_candidate() {
    let mut c = cluster(&[1, 2, 3, 4, 5], plain());
    c.isolate(3);
    c.isolate(4);
    c.isolate(5);
    c.raft(1).campaign(1);
    c.stabilize();
    assert_eq!(c.role(1, 1), Role::Candidate, "2 of 5 votes do not elect");
}

#[test]
fn section_5_2_one_vote_per_term() {
    let mut c = cluster(&[1, 2, 3], plain());
    // 1 and 2 campaign in term 1; 3 hears 1 first and must refuse 2.
    c.raft(1).campaign(1);
    c.raft(2).campaign(1);
    c.stabilize();
    let leaders: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .filter(|&n| c.role(n, 1) == Role::Leader && c.term(n, 1) == 1)
        .collect();
    assert!(leaders.len() <= 1, "two leaders in term 1: {leaders:?}");
    assert_eq!(c.raft(3).reader().hard_state(1).vote, 1);
}

#[test]
fn section_5_2_candidate_steps_down_for_leader_of_same_term() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.isolate(3);
    c.raft(1).campaign(1);
    c.stabilize();
    assert_eq!(c.role(1, 1), Role::Leader);
    // 3 times out alone and becomes candidate of term 1... then term 2.
    c.raft(3).campaign(1);
    c.stabilize();
    assert_eq!(c.role(3, 1), Role::Candidate);
    c.heal();
    // 3's higher term deposes 1; someone with an up-to-date log wins again.
    c.tick_all(40);
    let leader = c.leader(1).expect("a leader after healing");
    for n in [1, 2, 3] {
        assert_eq!(c.raft(n).status(1).expect("group").leader, leader);
    }
}

#[test]
fn section_5_2_election_timeout_starts_an_election() {
    let mut c = cluster(&[1, 2, 3], RaftConfig::default());
    c.tick_all(40);
    assert!(c.leader(1).is_some(), "randomised timeouts elect a leader");
}

#[test]
fn section_5_3_leader_commits_once_replicated_on_majority() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.raft(1).campaign(1);
    c.stabilize();
    c.isolate(3);
    c.propose(1, 1, "x").expect("leader accepts");
    c.stabilize();
    assert_eq!(c.applied_data(1, 1), vec!["x"]);
    assert_eq!(c.applied_data(2, 1), vec!["x"]);
    assert!(c.applied_data(3, 1).is_empty());
    c.heal();
    c.tick_all(2);
    assert_eq!(
        c.applied_data(3, 1),
        vec!["x"],
        "the isolated follower catches up"
    );
}

#[test]
fn section_5_3_leader_counts_itself_only_once_durable() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.raft(1).campaign(1);
    c.stabilize();
    c.isolate(3);
    let (_, idx) = c
        .raft(1)
        .propose(1, vec![bytes::Bytes::from_static(b"y")])
        .expect("leader");
    // Take the leader's ready, send its appends, but do not acknowledge the
    // leader's own write.
    let ready = c.raft(1).ready();
    let write = &ready.groups[0].entries;
    assert_eq!(write.last().map(|e| e.index), Some(idx));
    for env in ready.messages {
        c.queue.push_back(env);
    }
    for _ in 0..4 {
        c.deliver();
        c.process_ready(2);
    }
    c.deliver();
    assert!(
        c.commit(1, 1) < idx,
        "follower 2 alone is not a quorum without the leader's disk"
    );
    c.raft(1).reader_mut().append(1, write);
    let term = c.term(1, 1);
    c.raft(1).persisted(1, idx, term);
    assert_eq!(
        c.commit(1, 1),
        idx,
        "leader's durable write completes the quorum"
    );
}

#[test]
fn section_5_3_follower_rejects_append_with_mismatched_previous_entry() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.raft(1).campaign(1);
    c.stabilize();
    c.isolate(1);
    c.propose(1, 1, "lost").expect("leader");
    c.stabilize();
    c.raft(2).campaign(1);
    c.stabilize();
    c.propose(2, 1, "kept").expect("new leader");
    c.stabilize();
    c.heal();
    c.tick_all(2);
    // The conflicting entry is gone everywhere; logs match.
    let log2 = c.log_of(2, 1);
    assert_eq!(c.log_of(1, 1), log2);
    assert_eq!(c.log_of(3, 1), log2);
    assert!(!log2.contains("lost"));
    assert_eq!(c.applied_data(1, 1), vec!["kept"]);
}

#[test]
fn section_5_4_1_voter_refuses_candidate_with_older_log() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.raft(1).campaign(1);
    c.stabilize();
    c.isolate(3);
    c.propose(1, 1, "x").expect("leader");
    c.stabilize();
    c.heal();
    // 3 lacks entry 2: its campaign must fail, 1 and 2 refuse.
    c.isolate(1);
    c.raft(3).campaign(1);
    c.stabilize();
    assert_ne!(c.role(3, 1), Role::Leader);
    assert_ne!(c.raft(2).reader().hard_state(1).vote, 3);
    // 2 (up to date) can win.
    c.raft(2).campaign(1);
    c.stabilize();
    assert_eq!(c.role(2, 1), Role::Leader);
}

#[test]
fn section_5_4_2_entries_of_earlier_terms_commit_only_with_current_term() {
    let cfg = RaftConfig {
        max_append_bytes: 1,
        max_inflight_msgs: 1,
        ..plain()
    };
    let mut c = cluster(&[1, 2, 3], cfg);
    c.raft(1).campaign(1);
    c.stabilize();
    c.isolate(1);
    c.propose(1, 1, "old").expect("leader"); // index 2, term 1, only on node 1
    c.stabilize();
    c.restart(1);
    c.heal();
    c.raft(1).campaign(1); // term 2; 1's log is the most up to date
    let mut saw_quorum_on_old_entry = false;
    for _ in 0..200 {
        let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
        let mut moved = false;
        for n in ids {
            moved |= c.process_ready(n);
        }
        if let Some(p) = c.raft(1).progress(1) {
            let holding = p.values().filter(|pr| pr.match_index >= 2).count();
            if holding >= 2 && c.commit(1, 1) < 3 {
                saw_quorum_on_old_entry = true;
                assert!(
                    c.commit(1, 1) < 2,
                    "entry 2 of term 1 committed by counting replicas"
                );
            }
        }
        moved |= c.deliver();
        if !moved {
            break;
        }
    }
    assert!(
        saw_quorum_on_old_entry,
        "the scenario reached a quorum on entry 2 alone"
    );
    assert_eq!(c.role(1, 1), Role::Leader);
    assert!(
        c.commit(1, 1) >= 3,
        "committed together with the term-2 entry"
    );
    assert_eq!(c.applied_data(2, 1), vec!["old"]);
}

#[test]
fn section_6_joint_consensus_needs_both_majorities() {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[1], GroupConfig::new([1, 2, 3]), plain());
    c.quiet = true;
    c.raft(1).campaign(1);
    c.stabilize();
    let voters = [1, 4, 5].into_iter().collect();
    c.raft(1)
        .propose_conf_change(1, voters, Default::default())
        .expect("leader");
    // Run until the leader applies the joint configuration, then cut off the
    // old majority's other members before the leave-joint entry spreads.
    for _ in 0..100 {
        let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
        for n in ids {
            c.process_ready(n);
        }
        if c.raft(1).status(1).expect("group").config.is_joint() {
            break;
        }
        c.deliver();
    }
    assert!(c.raft(1).status(1).expect("group").config.is_joint());
    c.isolate(2);
    c.isolate(3);
    c.stabilize();
    let s = c.raft(1).status(1).expect("group");
    assert!(
        s.config.is_joint(),
        "leaving the joint config needs the old majority too"
    );
    assert!(
        s.commit < s.last_index,
        "new majority {{1,4,5}} alone cannot commit"
    );
    c.heal();
    c.tick_all(3);
    let s = c.raft(1).status(1).expect("group");
    assert!(!s.config.is_joint());
    assert_eq!(s.config.voters, [1, 4, 5].into_iter().collect());
    // Now the old members are irrelevant.
    c.isolate(2);
    c.isolate(3);
    c.propose(1, 1, "new-config").expect("leader");
    c.stabilize();
    assert_eq!(c.applied_data(4, 1), vec!["new-config"]);
}

#[test]
fn section_6_removed_leader_steps_down() {
    let mut c = cluster(&[1, 2, 3], plain());
    c.raft(1).campaign(1);
    c.stabilize();
    let voters = [2, 3].into_iter().collect();
    c.raft(1)
        .propose_conf_change(1, voters, Default::default())
        .expect("leader");
    c.stabilize();
    assert_ne!(c.role(1, 1), Role::Leader);
    c.tick_all(40);
    let leader = c.leader(1).expect("remaining voters elect a leader");
    assert!(leader == 2 || leader == 3);
}

#[test]
fn a_learner_catches_up_without_counting_and_becomes_a_voter_by_joint_consensus() {
    let mut c = Cluster::new(&[1, 2, 3, 4], &[1], GroupConfig::new([1, 2, 3]), plain());
    c.quiet = true;
    c.raft(1).campaign(1);
    c.stabilize();
    c.raft(1)
        .propose_learners(1, [4].into_iter().collect())
        .expect("leader");
    c.stabilize();
    c.propose(1, 1, "caught-up").expect("leader");
    c.stabilize();
    assert_eq!(c.applied_data(4, 1), vec!["caught-up"], "replicated to");
    assert!(c.raft(1).status(1).expect("group").config.is_learner(4));

    // The learner counts in no quorum: with two voters cut off, nothing
    // commits although the learner has the entry.
    c.isolate(2);
    c.isolate(3);
    c.propose(1, 1, "needs-a-voter").expect("leader");
    c.stabilize();
    let s = c.raft(1).status(1).expect("group");
    assert!(s.commit < s.last_index, "committed by leader and learner");
    c.heal();
    c.tick_all(3);
    c.stabilize();
    assert_eq!(c.applied_data(2, 1), vec!["caught-up", "needs-a-voter"]);

    // Alone, it never stands for election.
    c.isolate(4);
    c.tick(4, 200);
    assert_eq!(c.role(4, 1), Role::Follower);
    assert_eq!(c.term(4, 1), c.term(1, 1), "no campaign raised its term");
    c.heal();
    c.stabilize();

    // Promoted by joint consensus, it is a voter and no longer a learner.
    c.raft(1)
        .propose_conf_change(1, [1, 2, 3, 4].into_iter().collect(), Default::default())
        .expect("leader");
    c.stabilize();
    c.tick_all(3);
    let s = c.raft(1).status(1).expect("group");
    assert!(!s.config.is_joint() && s.config.learners.is_empty());
    assert_eq!(s.config.voters, [1, 2, 3, 4].into_iter().collect());
    assert!(c
        .raft(1)
        .propose_learners(1, [2].into_iter().collect())
        .is_err());
}
