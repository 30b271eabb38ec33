//! The simulator's acceptance tests: thousands of seeded runs with faults
//! keep every invariant, runs replay exactly, and each deliberately broken
//! variant of the core is caught within a bounded number of seeds.

use sim::{run_seeds, Membership, Planted, SimOptions, Simulation};

/// Seeds run with faults by the suite.
const FAULT_SEEDS: u64 = 2_000;
/// Worker threads (CI has two cores).
const THREADS: usize = 2;

fn describe(r: &sim::SeedsReport) -> String {
    r.failures
        .iter()
        .take(3)
        .map(|f| {
            format!(
                "{f} (replay: cargo run -p sim --release -- --seed {})",
                f.seed
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_thousand_seeds_with_faults_keep_every_invariant() {
    let opts = SimOptions::default();
    let r = run_seeds(0, FAULT_SEEDS, &opts, THREADS, 1);
    assert!(r.failures.is_empty(), "{}", describe(&r));
    assert_eq!(r.passed, FAULT_SEEDS);
    // The faults were real and the cluster still made progress.
    assert!(r.crashes > FAULT_SEEDS, "too few crashes: {}", r.crashes);
    assert!(
        r.elections > 2 * FAULT_SEEDS,
        "too few elections: {}",
        r.elections
    );
    assert!(
        r.acked > 100 * FAULT_SEEDS,
        "too few acknowledged entries: {}",
        r.acked
    );
    assert!(r.max_recovery_ms <= sim::LIVENESS_BOUND_MS);
    // Voters changed under faults (a fifth of the seeds), and a lost region
    // was failed over and back (another fifth) without losing an
    // acknowledged entry (leader completeness above).
    assert!(
        r.reconfigurations > FAULT_SEEDS / 2,
        "too few membership changes: {}",
        r.reconfigurations
    );
    // Nodes deleted from a group were added back under their id, fenced.
    assert!(
        r.rejoins > FAULT_SEEDS / 100,
        "too few rejoins: {}",
        r.rejoins
    );
    assert!(
        r.failovers > FAULT_SEEDS / 10,
        "too few failovers: {}",
        r.failovers
    );
}

#[test]
fn a_seed_replays_exactly() {
    let opts = SimOptions {
        trace: true,
        ..SimOptions::default()
    };
    let a = Simulation::new(42, opts.clone())
        .run()
        .expect("seed 42 passes");
    let b = Simulation::new(42, opts).run().expect("seed 42 passes");
    assert_eq!(a.events, b.events);
    assert_eq!(a.acked, b.acked);
    assert_eq!(a.sim_ms, b.sim_ms);
}

fn finds(bug: Planted, within_seeds: u64) {
    finds_in(bug, None, within_seeds);
}

fn finds_in(bug: Planted, membership: Option<Membership>, within_seeds: u64) {
    let opts = SimOptions {
        bug: Some(bug),
        membership,
        ..SimOptions::default()
    };
    let r = run_seeds(0, within_seeds, &opts, THREADS, 1);
    assert!(
        !r.failures.is_empty(),
        "{bug:?} went unnoticed for {within_seeds} seeds"
    );
}

#[test]
fn finds_a_vote_counted_twice() {
    finds(Planted::Raft(raft::Bug::CountOwnVoteTwice), 50);
}

#[test]
fn finds_append_accepted_with_mismatched_previous_term() {
    finds(Planted::Raft(raft::Bug::AcceptMismatchedPrevTerm), 300);
}

#[test]
fn finds_earlier_term_committed_by_counting_replicas() {
    finds(Planted::Raft(raft::Bug::CommitPreviousTermByCount), 100);
}

#[test]
fn finds_entries_reported_persisted_without_a_sync() {
    finds(Planted::Driver(replica::Bug::SkipSync), 100);
}

#[test]
fn finds_a_vote_that_is_not_durable_before_it_is_sent() {
    finds(Planted::Driver(replica::Bug::VoteStoredLazily), 200);
}

#[test]
fn finds_a_snapshot_installed_without_restoring_the_state() {
    finds(Planted::Driver(replica::Bug::InstallWithoutRestore), 100);
}

/// A node deleted from a group and added back under its id, empty, without
/// its join fence: a replica that missed the removal (cut off meanwhile)
/// counts it in the configuration from before, and its vote elects a
/// leader that lacks committed entries.
#[test]
fn finds_a_replica_that_rejoins_without_its_fence() {
    finds_in(
        Planted::Driver(replica::Bug::JoinWithoutFence),
        Some(Membership::Changes),
        1_500,
    );
}
