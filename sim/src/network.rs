//! Simulated network: per-link latency by zone and region, random drop,
//! duplication and reordering (independent delays), and partitions as a set
//! of blocked directed links.

use std::collections::{BTreeMap, BTreeSet};

use raft::NodeId;

use crate::prng::Prng;

/// Latency between nodes in the same region (one zone), in ms.
pub const ZONE_LATENCY_MS: (u64, u64) = (1, 2);
/// Latency between nodes in different regions, in ms.
pub const REGION_LATENCY_MS: (u64, u64) = (40, 80);
/// Most copies of one message the network delivers.
pub const MAX_COPIES: usize = 2;

/// The network between the simulated nodes.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Region of each node.
    pub region: BTreeMap<NodeId, u8>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Probability of dropping a message, per mille.
    pub drop_per_mille: u64,
    /// Probability of delivering a message twice, per mille.
    pub dup_per_mille: u64,
}

impl Network {
    /// A healed network with the given regions.
    pub fn new(region: BTreeMap<NodeId, u8>) -> Self {
        Network {
            region,
            ..Network::default()
        }
    }

    /// One-way latency of one message from `from` to `to`.
    pub fn latency_ms(&self, rng: &mut Prng, from: NodeId, to: NodeId) -> u64 {
        let (lo, hi) = if self.region.get(&from) == self.region.get(&to) {
            ZONE_LATENCY_MS
        } else {
            REGION_LATENCY_MS
        };
        rng.range(lo, hi)
    }

    /// Delays of the copies of one message that will arrive (none if
    /// dropped or the link is cut).
    pub fn deliveries(&self, rng: &mut Prng, from: NodeId, to: NodeId) -> Vec<u64> {
        if self.blocked.contains(&(from, to)) || rng.chance(self.drop_per_mille) {
            return Vec::new();
        }
        let copies = if rng.chance(self.dup_per_mille) {
            MAX_COPIES
        } else {
            1
        };
        (0..copies)
            .map(|_| self.latency_ms(rng, from, to))
            .collect()
    }

    /// Cuts the link `from -> to` only (asymmetric partition).
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Cuts every link between the two sides, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                self.blocked.insert((x, y));
                self.blocked.insert((y, x));
            }
        }
    }

    /// Unblocks every link to and from `n`.
    pub fn reconnect(&mut self, n: NodeId) {
        self.blocked.retain(|&(a, b)| a != n && b != n);
    }

    /// Restores every link and stops dropping and duplicating.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.drop_per_mille = 0;
        self.dup_per_mille = 0;
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }
}
