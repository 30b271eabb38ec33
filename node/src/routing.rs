//! Request routing: which partition a request goes to.
//!
//! Keys are 64-bit with the partition id in the top 13 bits (Zeebe's
//! `KEY_BITS = 51`); messages go to the partition chosen by Zeebe's hash of the
//! correlation key; new instances go round-robin; deployments go to partition 1.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::placement::PartitionId;

/// Bits of a key below the partition id.
pub const KEY_BITS: u32 = 51;
/// The partition that processes deployments and distributes them.
pub const DEPLOYMENT_PARTITION: PartitionId = 1;

/// The partition encoded in `key`, if it is one of `1..=partitions`.
pub fn partition_of_key(key: i64, partitions: u32) -> Option<PartitionId> {
    if key <= 0 {
        return None;
    }
    let partition = (key as u64 >> KEY_BITS) as u32;
    (1..=partitions).contains(&partition).then_some(partition)
}

/// Zeebe's partition for a message's correlation key: a Java-style hash over the
/// UTF-8 bytes taken as signed bytes, `abs(hash % partitions) + 1`.
pub fn partition_of_correlation_key(correlation_key: &str, partitions: u32) -> PartitionId {
    assert!(partitions > 0);
    // The engine places the message by the same function.
    engine::messages::message_partition(correlation_key, partitions)
}

/// Hands out partitions in turn, for requests that may go anywhere. Shared by
/// all gateway tasks; lives as long as the gateway.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU32,
}

impl RoundRobin {
    /// The partitions to try, in order: every partition once, starting from the
    /// next one in turn.
    pub fn order(&self, partitions: u32) -> Vec<PartitionId> {
        assert!(partitions > 0);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % partitions;
        (0..partitions)
            .map(|i| (start + i) % partitions + 1)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_carries_partition() {
        let key = (3i64 << KEY_BITS) + 17;
        assert_eq!(partition_of_key(key, 3), Some(3));
        assert_eq!(partition_of_key(key, 2), None);
        assert_eq!(partition_of_key(17, 3), None);
        assert_eq!(partition_of_key(-1, 3), None);
    }

    #[test]
    fn correlation_hash_matches_java_string_hash_for_ascii() {
        let mut java: i32 = 0;
        for c in "order-123".chars() {
            java = java.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(
            (java % 3).unsigned_abs() + 1,
            partition_of_correlation_key("order-123", 3)
        );
        assert_eq!(partition_of_correlation_key("", 5), 1);
        for p in 1..=7 {
            let got = partition_of_correlation_key("ünïcode-key", p);
            assert!((1..=p).contains(&got));
        }
    }

    #[test]
    fn round_robin_visits_every_partition_and_rotates() {
        let rr = RoundRobin::default();
        let first = rr.order(3);
        let second = rr.order(3);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 3]);
        assert_ne!(first[0], second[0]);
    }
}
