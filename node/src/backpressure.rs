//! Backpressure: a bounded, adaptive limit on commands in flight per partition.
//!
//! Additive increase, multiplicative decrease on latency: a command answered
//! within `latency_target_ms` while the partition is busy (at least half the
//! limit in flight) raises the limit by one; a slower answer cuts it by
//! `DECREASE_FACTOR`. The limit stays within `[min_limit, max_limit]`. Past the
//! limit a command is refused, and the gateway answers `RESOURCE_EXHAUSTED`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::BackpressureConfig;
use crate::placement::PartitionId;

/// Factor applied to the limit after a command slower than the target.
pub const DECREASE_FACTOR: f64 = 0.9;

#[derive(Debug)]
struct LimitState {
    limit: f64,
    in_flight: u32,
    rejected_total: u64,
}

/// The limit of one partition. Shared between gateway tasks on the tokio
/// threads; lives as long as the broker.
#[derive(Debug)]
pub struct AdaptiveLimit {
    config: BackpressureConfig,
    state: Mutex<LimitState>,
}

/// One admitted command. Dropping it without [`Permit::complete`] releases the
/// slot without adjusting the limit (the command failed for another reason).
#[derive(Debug)]
pub struct Permit {
    limit: Arc<AdaptiveLimit>,
    started: Instant,
    released: bool,
}

/// A snapshot of a partition's limit, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitStats {
    /// Current limit.
    pub limit: u32,
    /// Commands in flight.
    pub in_flight: u32,
    /// Commands refused since start.
    pub rejected_total: u64,
}

impl AdaptiveLimit {
    /// A limit starting at `config.initial_limit`.
    pub fn new(config: BackpressureConfig) -> Arc<Self> {
        let limit = config.initial_limit as f64;
        Arc::new(Self {
            config,
            state: Mutex::new(LimitState {
                limit,
                in_flight: 0,
                rejected_total: 0,
            }),
        })
    }

    /// Admits one command, or refuses it when the limit is reached.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut state = self.state.lock().expect("limit lock is never poisoned");
        if self.config.enabled && state.in_flight >= state.limit as u32 {
            state.rejected_total += 1;
            return None;
        }
        state.in_flight += 1;
        Some(Permit {
            limit: Arc::clone(self),
            started: Instant::now(),
            released: false,
        })
    }

    /// Current figures.
    pub fn stats(&self) -> LimitStats {
        let state = self.state.lock().expect("limit lock is never poisoned");
        LimitStats {
            limit: state.limit as u32,
            in_flight: state.in_flight,
            rejected_total: state.rejected_total,
        }
    }

    fn release(&self, latency: Option<Duration>) {
        let mut state = self.state.lock().expect("limit lock is never poisoned");
        assert!(state.in_flight > 0, "released more permits than acquired");
        let busy = state.in_flight as f64 >= state.limit / 2.0;
        state.in_flight -= 1;
        let Some(latency) = latency else { return };
        let target = Duration::from_millis(self.config.latency_target_ms);
        let (min, max) = (self.config.min_limit as f64, self.config.max_limit as f64);
        if latency > target {
            state.limit = (state.limit * DECREASE_FACTOR).max(min);
        } else if busy {
            state.limit = (state.limit + 1.0).min(max);
        }
    }
}

impl Permit {
    /// The command was answered; its latency adjusts the limit.
    pub fn complete(mut self) {
        self.released = true;
        self.limit.release(Some(self.started.elapsed()));
    }

    #[cfg(test)]
    fn complete_with(mut self, latency: Duration) {
        self.released = true;
        self.limit.release(Some(latency));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.released {
            self.limit.release(None);
        }
    }
}

/// The limits of every partition, created on first use.
#[derive(Debug)]
pub struct PartitionLimits {
    config: BackpressureConfig,
    limits: Mutex<BTreeMap<PartitionId, Arc<AdaptiveLimit>>>,
}

impl PartitionLimits {
    /// Limits configured by `config`.
    pub fn new(config: BackpressureConfig) -> Self {
        Self {
            config,
            limits: Mutex::new(BTreeMap::new()),
        }
    }

    /// The limit of `partition`.
    pub fn get(&self, partition: PartitionId) -> Arc<AdaptiveLimit> {
        let mut limits = self.limits.lock().expect("limits lock is never poisoned");
        Arc::clone(
            limits
                .entry(partition)
                .or_insert_with(|| AdaptiveLimit::new(self.config.clone())),
        )
    }

    /// Figures of every partition seen so far.
    pub fn stats(&self) -> Vec<(PartitionId, LimitStats)> {
        let limits = self.limits.lock().expect("limits lock is never poisoned");
        limits.iter().map(|(p, l)| (*p, l.stats())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(initial: u32) -> BackpressureConfig {
        BackpressureConfig {
            enabled: true,
            initial_limit: initial,
            min_limit: 2,
            max_limit: 8,
            latency_target_ms: 100,
        }
    }

    #[test]
    fn refuses_past_the_limit_and_admits_after_release() {
        let limit = AdaptiveLimit::new(config(3));
        let permits: Vec<_> = (0..3)
            .map(|_| limit.try_acquire().expect("below limit"))
            .collect();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.stats().rejected_total, 1);
        drop(permits);
        assert_eq!(limit.stats().in_flight, 0);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn fast_answers_under_load_grow_the_limit_up_to_max() {
        let limit = AdaptiveLimit::new(config(4));
        for _ in 0..20 {
            let permits: Vec<_> = (0..limit.stats().limit)
                .map(|_| limit.try_acquire().expect("admitted"))
                .collect();
            for p in permits {
                p.complete_with(Duration::from_millis(1));
            }
        }
        assert_eq!(limit.stats().limit, 8);
    }

    #[test]
    fn slow_answers_shrink_the_limit_down_to_min() {
        let limit = AdaptiveLimit::new(config(8));
        for _ in 0..50 {
            limit
                .try_acquire()
                .expect("admitted")
                .complete_with(Duration::from_millis(500));
        }
        assert_eq!(limit.stats().limit, 2);
    }

    #[test]
    fn disabled_never_refuses() {
        let mut c = config(2);
        c.enabled = false;
        let limit = AdaptiveLimit::new(c);
        let permits: Vec<_> = (0..10)
            .map(|_| limit.try_acquire().expect("never refused"))
            .collect();
        assert_eq!(limit.stats().in_flight, 10);
        drop(permits);
    }
}
