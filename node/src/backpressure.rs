//! Backpressure: a bounded, adaptive limit on commands in flight per partition.
//!
//! Additive increase, multiplicative decrease on latency: a command answered
//! within `latency_target_ms` while the partition is busy (at least half the
//! limit in flight) raises the limit by one; a slower answer cuts it by
//! `DECREASE_FACTOR`. The limit stays within `[min_limit, max_limit]`. Past the
//! limit a command is refused, and the gateway answers `RESOURCE_EXHAUSTED`.
//!
//! Distance is not load: a command forwarded to a leader in another region
//! needs a round trip to the leader and one from the leader to a quorum
//! before it can be answered. So the target of a partition is
//! `latency_target_ms` plus twice the measured round trip to its farthest
//! replica (kept up to date by [`PartitionLimits::set_round_trip`]), and the
//! limit can grow to the bandwidth-delay product of the link instead of
//! shrinking because the link is long.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Round trip to the partition's farthest replica, in µs.
    round_trip_us: AtomicU64,
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
            round_trip_us: AtomicU64::new(0),
        })
    }

    /// The latency under which an answer counts as fast.
    pub fn target(&self) -> Duration {
        let round_trip = Duration::from_micros(self.round_trip_us.load(Ordering::Relaxed));
        Duration::from_millis(self.config.latency_target_ms) + 2 * round_trip
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
        let target = self.target();
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

    /// The measured round trip from this node to the farthest replica of
    /// `partition` (see the module documentation).
    pub fn set_round_trip(&self, partition: PartitionId, round_trip: Duration) {
        let us = u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX);
        self.get(partition)
            .round_trip_us
            .store(us, Ordering::Relaxed);
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
    fn the_target_allows_for_the_round_trip_to_the_replicas() {
        let limits = PartitionLimits::new(config(4));
        let answer_in = |ms| {
            let limit = limits.get(1);
            for _ in 0..20 {
                let permits: Vec<_> = (0..limit.stats().limit)
                    .map(|_| limit.try_acquire().expect("admitted"))
                    .collect();
                for p in permits {
                    p.complete_with(Duration::from_millis(ms));
                }
            }
            limit.stats().limit
        };
        // 250 ms is slow against the 100 ms target...
        assert_eq!(answer_in(250), 2);
        // ... but not across an 80 ms round trip: 100 + 2 × 80 ms.
        limits.set_round_trip(1, Duration::from_millis(80));
        assert_eq!(limits.get(1).target(), Duration::from_millis(260));
        assert_eq!(answer_in(250), 8);
        // Each partition has its own replicas.
        assert_eq!(limits.get(2).target(), Duration::from_millis(100));
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
