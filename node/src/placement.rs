//! Partition placement: which nodes hold a replica of which partition, and which
//! shard of a node owns a local partition.
//!
//! Round-robin as in Zeebe: replica `j` (0-based) of partition `p` (1-based)
//! sits on node `(p - 1 + j) mod cluster_size`, so partition 1's first replica
//! (its preferred leader) is on node 0. Within a node, partition `p` lives on
//! shard `p mod shards`.

/// A partition id, numbered from 1 as in Zeebe.
pub type PartitionId = u32;
/// A node id, `0 <= id < cluster_size`.
pub type NodeId = u32;

/// The cluster shape placement is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    /// Number of nodes.
    pub cluster_size: u32,
    /// Number of partitions.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u32,
}

impl ClusterShape {
    /// The nodes holding partition `partition`, preferred leader first.
    pub fn replicas(&self, partition: PartitionId) -> Vec<NodeId> {
        assert!(
            (1..=self.partitions).contains(&partition),
            "partition {partition} outside 1..={}",
            self.partitions
        );
        assert!(self.replication_factor <= self.cluster_size);
        (0..self.replication_factor)
            .map(|j| (partition - 1 + j) % self.cluster_size)
            .collect()
    }

    /// The partitions with a replica on `node`, ascending.
    pub fn local_partitions(&self, node: NodeId) -> Vec<PartitionId> {
        (1..=self.partitions)
            .filter(|p| self.replicas(*p).contains(&node))
            .collect()
    }

    /// All partition ids.
    pub fn all_partitions(&self) -> impl Iterator<Item = PartitionId> {
        1..=self.partitions
    }
}

/// The shard (0-based) that owns `partition` on a node with `shards` shards.
pub fn shard_of(partition: PartitionId, shards: usize) -> usize {
    assert!(shards > 0, "a node has at least one shard");
    partition as usize % shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_nodes_three_partitions_full_replication() {
        let shape = ClusterShape {
            cluster_size: 3,
            partitions: 3,
            replication_factor: 3,
        };
        assert_eq!(shape.replicas(1), vec![0, 1, 2]);
        assert_eq!(shape.replicas(2), vec![1, 2, 0]);
        assert_eq!(shape.replicas(3), vec![2, 0, 1]);
        for node in 0..3 {
            assert_eq!(shape.local_partitions(node), vec![1, 2, 3]);
        }
    }

    #[test]
    fn partial_replication_spreads_partitions() {
        let shape = ClusterShape {
            cluster_size: 4,
            partitions: 4,
            replication_factor: 2,
        };
        assert_eq!(shape.replicas(4), vec![3, 0]);
        assert_eq!(shape.local_partitions(0), vec![1, 4]);
        assert_eq!(shape.local_partitions(2), vec![2, 3]);
        let total: usize = (0..4).map(|n| shape.local_partitions(n).len()).sum();
        assert_eq!(total, 8);
    }

    #[test]
    fn shards_split_partitions() {
        assert_eq!(shard_of(1, 1), 0);
        assert_eq!(shard_of(1, 2), 1);
        assert_eq!(shard_of(2, 2), 0);
    }
}
