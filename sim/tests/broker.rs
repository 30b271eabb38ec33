//! Whole brokers' partitions, with the engine, under faults: the broker's
//! own replicas, clients and workers, checked against what was exported.

use sim::broker::{run_broker_seed, run_broker_seeds, BrokerOptions};
use sim::Planted;

#[test]
fn one_seed_without_faults_completes_every_instance() {
    let opts = BrokerOptions {
        faults: false,
        ..BrokerOptions::default()
    };
    let s = run_broker_seed(1, &opts).unwrap_or_else(|f| panic!("{f}"));
    assert!(s.created > 10, "{s:?}");
    assert!(s.completions >= 2 * s.created, "{s:?}");
    assert!(s.instances_completed >= s.created, "{s:?}");
    assert!(s.fingerprints_compared > 0, "{s:?}");
}

#[test]
fn two_hundred_seeds_with_faults_keep_every_invariant() {
    let r = run_broker_seeds(0, 200, &BrokerOptions::default(), 2);
    assert!(
        r.failures.is_empty(),
        "{}\n{}",
        r.failures.first().expect("a failure"),
        r.describe()
    );
    let crashes: u64 = r.passed.iter().map(|s| s.crashes).sum();
    let jumps: u64 = r.passed.iter().map(|s| s.clock_jumps).sum();
    let compared: u64 = r.passed.iter().map(|s| s.entries_compared).sum();
    assert!(
        crashes > 100 && jumps > 20 && compared > 1000,
        "{}",
        r.describe()
    );
    println!("{}", r.describe());
}

#[test]
fn a_broker_seed_replays_exactly() {
    let a = run_broker_seed(7, &BrokerOptions::default()).expect("seed 7 passes");
    let b = run_broker_seed(7, &BrokerOptions::default()).expect("seed 7 passes");
    assert_eq!(
        (a.events, a.created, a.completions, a.entries, a.sim_ms),
        (b.events, b.created, b.completions, b.entries, b.sim_ms)
    );
}

fn finds(bug: Planted, within_seeds: u64) {
    let opts = BrokerOptions {
        bug: Some(bug),
        ..BrokerOptions::default()
    };
    let r = run_broker_seeds(0, within_seeds, &opts, 2);
    assert!(
        !r.failures.is_empty(),
        "{bug:?} went unnoticed for {within_seeds} broker seeds"
    );
}

#[test]
fn finds_a_log_reported_persisted_without_a_sync() {
    finds(Planted::Driver(replica::Bug::SkipSync), 50);
}

#[test]
fn finds_a_vote_that_is_not_durable() {
    finds(Planted::Driver(replica::Bug::VoteStoredLazily), 120);
}

#[test]
fn finds_a_snapshot_installed_without_its_state() {
    finds(Planted::Driver(replica::Bug::InstallWithoutRestore), 50);
}

#[test]
fn finds_a_raft_append_accepted_with_a_mismatched_previous_term() {
    finds(Planted::Raft(raft::Bug::AcceptMismatchedPrevTerm), 150);
}
