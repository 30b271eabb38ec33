//! Runs many seeds, spread over a few threads, and summarises them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::options::SimOptions;
use crate::simulation::{Failure, RunSummary, Simulation};

/// Most worker threads used for a batch of seeds.
pub const MAX_THREADS: usize = 8;

/// Outcome of a batch of seeds.
#[derive(Debug, Default)]
pub struct SeedsReport {
    /// Seeds that passed.
    pub passed: u64,
    /// Failures, by ascending seed.
    pub failures: Vec<Failure>,
    /// Sum of elections over passing runs.
    pub elections: u64,
    /// Sum of acknowledged entries over passing runs.
    pub acked: u64,
    /// Sum of injected crashes over passing runs.
    pub crashes: u64,
    /// Sum of injected faults over passing runs.
    pub faults: u64,
    /// Longest recovery (heal to probe commit) in simulated ms.
    pub max_recovery_ms: u64,
    /// Sum of membership changes accepted by a leader over passing runs.
    pub reconfigurations: u64,
    /// Sum of learners made voters over passing runs.
    pub promotions: u64,
    /// Sum of deleted replicas added back under their id over passing runs.
    pub rejoins: u64,
    /// Sum of groups failed over (and back) over passing runs.
    pub failovers: u64,
}

impl SeedsReport {
    fn add(&mut self, s: &RunSummary) {
        self.passed += 1;
        self.elections += s.elections;
        self.acked += s.acked;
        self.crashes += s.crashes;
        self.faults += s.faults;
        self.max_recovery_ms = self.max_recovery_ms.max(s.recovery_ms);
        self.reconfigurations += s.reconfigurations;
        self.promotions += s.promotions;
        self.rejoins += s.rejoins;
        self.failovers += s.failovers;
    }
}

/// Runs seeds `first..first + count` on up to `threads` threads; stops
/// early after `stop_after_failures` failures (0 = never).
pub fn run_seeds(
    first: u64,
    count: u64,
    opts: &SimOptions,
    threads: usize,
    stop_after_failures: usize,
) -> SeedsReport {
    let next = AtomicU64::new(first);
    let report = Mutex::new(SeedsReport::default());
    let threads = threads.clamp(1, MAX_THREADS);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    return;
                }
                {
                    let r = report.lock().expect("report lock");
                    if stop_after_failures > 0 && r.failures.len() >= stop_after_failures {
                        return;
                    }
                }
                let result = Simulation::new(seed, opts.clone()).run();
                let mut r = report.lock().expect("report lock");
                match result {
                    Ok(s) => r.add(&s),
                    Err(f) => r.failures.push(f),
                }
            });
        }
    });
    let mut r = report.into_inner().expect("report lock");
    r.failures.sort_by_key(|f| f.seed);
    r
}
