//! Keys: 64-bit identifiers of every entity (process definitions, element
//! instances, jobs, variables, incidents), laid out as in Zeebe:
//!
//! ```text
//! bit 63..51: partition id (13 bits, at most MAX_PARTITIONS)
//! bit 50..0 : local counter, strictly increasing per partition
//! ```
//!
//! The counter is part of the replicated state: it is advanced by the event
//! appliers from the keys they see, so that a follower or a restored engine hands
//! out exactly the keys the old leader would have.

use serde::{Deserialize, Serialize};

/// Bits of a key that hold the local counter.
pub const KEY_BITS: u32 = 51;
/// Bits of a key that hold the partition id.
pub const PARTITION_BITS: u32 = 13;
/// Highest partition id a key can carry (Zeebe's limit of 8192 partitions).
pub const MAX_PARTITIONS: u32 = (1 << PARTITION_BITS) - 1;
const LOCAL_MASK: i64 = (1 << KEY_BITS) - 1;

/// Builds a key from a partition id and a local counter value.
pub fn encode_key(partition_id: u32, local: i64) -> i64 {
    assert!(
        partition_id <= MAX_PARTITIONS,
        "partition id {partition_id} too large"
    );
    assert!(
        (0..=LOCAL_MASK).contains(&local),
        "local key {local} out of range"
    );
    ((partition_id as i64) << KEY_BITS) | local
}

/// The partition id a key was generated on.
pub fn partition_of(key: i64) -> u32 {
    ((key >> KEY_BITS) & MAX_PARTITIONS as i64) as u32
}

/// The local counter part of a key.
pub fn local_of(key: i64) -> i64 {
    key & LOCAL_MASK
}

/// Generates the keys of one partition.
///
/// Owned by the engine of that partition (one shard thread); lives as long as
/// the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGenerator {
    partition_id: u32,
    next_local: i64,
}

impl KeyGenerator {
    /// A generator whose first key is local value 1 on `partition_id`.
    pub fn new(partition_id: u32) -> Self {
        Self {
            partition_id,
            next_local: 1,
        }
    }

    /// The partition whose keys this generator hands out.
    pub fn partition_id(&self) -> u32 {
        self.partition_id
    }

    /// Hands out the next key.
    pub fn next_key(&mut self) -> i64 {
        let key = encode_key(self.partition_id, self.next_local);
        self.next_local += 1;
        key
    }

    /// Advances the counter past `key` if the key was generated on this
    /// partition; called by the appliers for every key they see.
    pub fn observe(&mut self, key: i64) {
        if key > 0 && partition_of(key) == self.partition_id {
            let local = local_of(key);
            if local >= self.next_local {
                self.next_local = local + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_in_the_top_13_bits() {
        let key = encode_key(3, 42);
        assert_eq!(key, (3_i64 << 51) + 42);
        assert_eq!(partition_of(key), 3);
        assert_eq!(local_of(key), 42);
        assert_eq!(partition_of(encode_key(MAX_PARTITIONS, 1)), MAX_PARTITIONS);
    }

    #[test]
    fn observe_advances_only_for_own_partition() {
        let mut keys = KeyGenerator::new(2);
        keys.observe(encode_key(1, 100));
        assert_eq!(keys.next_key(), encode_key(2, 1));
        keys.observe(encode_key(2, 10));
        assert_eq!(keys.next_key(), encode_key(2, 11));
    }
}
