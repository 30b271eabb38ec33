//! Partition placement: which nodes hold a replica of which partition, with
//! what election priority, and which shard of a node owns a local partition.
//!
//! Nodes all in one place are placed round-robin as in Zeebe: replica `j`
//! (0-based) of partition `p` (1-based) sits on the `(p - 1 + j) mod n`-th
//! node in id order, so partition 1's first replica (its preferred leader)
//! is on the lowest node. Nodes in several zones or regions ([`Layout`]) are
//! placed so that each partition's replicas spread over the regions, then
//! over the zones within them, and the preferred leaders sit in the primary
//! zone or region when one is named. Within a node, partition `p` lives on
//! shard `p mod shards`.

use std::collections::BTreeMap;

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

/// Where a node runs: `[cluster]`'s region and zone labels. A zone is named
/// within its region.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The region.
    pub region: String,
    /// The zone.
    pub zone: String,
}

/// The nodes' locations and the preferred place of the leaders, as
/// `[cluster]` gives them (`zones`, `regions`, `primary_region`,
/// `primary_zone`). Nodes it does not name are in the default place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The location of each node it names.
    pub locations: BTreeMap<NodeId, Location>,
    /// The region the preferred leaders sit in; empty: any.
    pub primary_region: String,
    /// The zone (of `primary_region`, or of any region) the preferred
    /// leaders sit in; empty: any.
    pub primary_zone: String,
}

/// One partition's replicas with their election priorities, highest (the
/// preferred leader) first.
pub type Replicas = Vec<(NodeId, u32)>;

impl Layout {
    /// Every node in the one default place: round-robin placement.
    pub fn uniform() -> Layout {
        Layout::default()
    }

    fn location(&self, node: NodeId) -> Location {
        self.locations.get(&node).cloned().unwrap_or_default()
    }

    /// How far `node` is from where leaders should be: 0 in the primary
    /// zone (and region), 1 in the primary region, 2 elsewhere.
    fn remoteness(&self, node: NodeId) -> u8 {
        let at = self.location(node);
        let in_region = self.primary_region.is_empty() || at.region == self.primary_region;
        let in_zone = self.primary_zone.is_empty() || at.zone == self.primary_zone;
        match (in_region, in_zone) {
            (true, true) => 0,
            (true, false) => 1,
            _ => 2,
        }
    }

    /// The replicas of each partition `1..=partitions` over `nodes`, each
    /// with its priority (`replication_factor` for the preferred leader,
    /// then down to 1). Nodes all in one place are placed round-robin in
    /// ascending id order, as a first start of `[cluster]` always placed
    /// them. Otherwise each partition in turn takes as preferred leader the
    /// node nearest the primary place with the fewest preferred
    /// leaderships, then the nodes of the regions, and within them of the
    /// zones, that hold fewest of its replicas (the least loaded node of
    /// those first); its replicas in the primary place get the higher
    /// priorities, so that a leader that fails is replaced there.
    pub fn place(
        &self,
        nodes: &[NodeId],
        partitions: u32,
        replication_factor: u32,
    ) -> BTreeMap<PartitionId, Replicas> {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        assert!(
            replication_factor as usize <= nodes.len(),
            "replication factor {replication_factor} over {} nodes",
            nodes.len()
        );
        let places: std::collections::BTreeSet<Location> =
            nodes.iter().map(|n| self.location(*n)).collect();
        let ranked = |chosen: Vec<NodeId>| -> Replicas {
            let count = chosen.len() as u32;
            chosen
                .into_iter()
                .enumerate()
                .map(|(rank, n)| (n, count - rank as u32))
                .collect()
        };
        if places.len() <= 1 {
            return (1..=partitions)
                .map(|p| {
                    let chosen = (0..replication_factor)
                        .map(|j| nodes[(p - 1 + j) as usize % nodes.len()])
                        .collect();
                    (p, ranked(chosen))
                })
                .collect();
        }
        let mut load: BTreeMap<NodeId, u32> = nodes.iter().map(|n| (*n, 0)).collect();
        let mut leads = load.clone();
        (1..=partitions)
            .map(|p| {
                let leader = *nodes
                    .iter()
                    .min_by_key(|n| (self.remoteness(**n), leads[n], load[n], **n))
                    .expect("a node");
                let mut chosen = vec![leader];
                while chosen.len() < replication_factor as usize {
                    // Replicas of this partition already in n's region and zone.
                    let held_in = |n: NodeId| {
                        let at = self.location(n);
                        let placed: Vec<Location> =
                            chosen.iter().map(|c| self.location(*c)).collect();
                        let in_region = placed.iter().filter(|l| l.region == at.region).count();
                        let in_zone = placed.iter().filter(|l| **l == at).count();
                        (in_region, in_zone)
                    };
                    let next = *nodes
                        .iter()
                        .filter(|n| !chosen.contains(n))
                        .min_by_key(|n| (held_in(**n), load[n], **n))
                        .expect("replication factor within the nodes");
                    chosen.push(next);
                }
                // The preferred leader stays first: it is the nearest.
                chosen.sort_by_key(|n| self.remoteness(*n));
                *leads.get_mut(&leader).expect("a node") += 1;
                for n in &chosen {
                    *load.get_mut(n).expect("a node") += 1;
                }
                (p, ranked(chosen))
            })
            .collect()
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

    fn layout(places: &[(&str, &str)], primary_region: &str, primary_zone: &str) -> Layout {
        let locations = places
            .iter()
            .enumerate()
            .map(|(n, (region, zone))| {
                let at = Location {
                    region: region.to_string(),
                    zone: zone.to_string(),
                };
                (n as NodeId, at)
            })
            .collect();
        Layout {
            locations,
            primary_region: primary_region.into(),
            primary_zone: primary_zone.into(),
        }
    }

    #[test]
    fn nodes_in_one_place_are_placed_round_robin() {
        for (size, partitions, rf) in [(3, 3, 3), (4, 4, 2), (5, 7, 3), (1, 2, 1)] {
            let shape = ClusterShape {
                cluster_size: size,
                partitions,
                replication_factor: rf,
            };
            let nodes: Vec<NodeId> = (0..size).collect();
            let same = layout(&vec![("r", "z"); size as usize], "r", "");
            for placed in [Layout::uniform(), same] {
                let placed = placed.place(&nodes, partitions, rf);
                for p in 1..=partitions {
                    let replicas: Vec<NodeId> = placed[&p].iter().map(|(n, _)| *n).collect();
                    assert_eq!(replicas, shape.replicas(p), "partition {p} of {shape:?}");
                    let priorities: Vec<u32> = placed[&p].iter().map(|(_, pr)| *pr).collect();
                    assert_eq!(priorities, (1..=rf).rev().collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn replicas_spread_over_the_zones_whatever_the_order_of_the_nodes() {
        // Round-robin would put partition 1 on nodes 0, 1, 2: twice zone a.
        let zones = layout(
            &[
                ("r", "a"),
                ("r", "a"),
                ("r", "b"),
                ("r", "b"),
                ("r", "c"),
                ("r", "c"),
            ],
            "",
            "",
        );
        let nodes: Vec<NodeId> = (0..6).collect();
        let placed = zones.place(&nodes, 6, 3);
        let mut load = [0; 6];
        let mut leads = [0; 6];
        for (p, replicas) in &placed {
            let mut in_zones: Vec<String> = replicas
                .iter()
                .map(|(n, _)| zones.location(*n).zone)
                .collect();
            in_zones.sort();
            assert_eq!(in_zones, ["a", "b", "c"], "partition {p}: {replicas:?}");
            for (n, _) in replicas {
                load[*n as usize] += 1;
            }
            leads[replicas[0].0 as usize] += 1;
        }
        assert_eq!(load, [3; 6], "every node holds as many replicas");
        assert_eq!(leads, [1; 6], "and leads as many partitions");
    }

    #[test]
    fn preferred_leaders_sit_in_the_primary_region_and_every_partition_in_both() {
        let regions = layout(
            &[
                ("east", "e1"),
                ("west", "w1"),
                ("east", "e2"),
                ("west", "w2"),
            ],
            "east",
            "",
        );
        let placed = regions.place(&[0, 1, 2, 3], 4, 4);
        for (p, replicas) in &placed {
            let order: Vec<String> = replicas
                .iter()
                .map(|(n, _)| regions.location(*n).region)
                .collect();
            assert_eq!(order, ["east", "east", "west", "west"], "partition {p}");
        }
        let leaders: Vec<NodeId> = placed.values().map(|r| r[0].0).collect();
        assert_eq!(
            leaders,
            [0, 2, 0, 2],
            "leaderships shared in the primary region"
        );

        // Two replicas of four brokers: one in each region.
        for (p, replicas) in regions.place(&[0, 1, 2, 3], 4, 2) {
            let ids: Vec<NodeId> = replicas.iter().map(|(n, _)| *n).collect();
            assert_eq!(ids[0] % 2, 0, "partition {p} led from east: {ids:?}");
            assert_eq!(ids[1] % 2, 1, "partition {p} also in west: {ids:?}");
        }
    }

    #[test]
    fn the_primary_zone_holds_the_preferred_leaders() {
        let zones = layout(&[("r", "a"), ("r", "b"), ("r", "c")], "", "b");
        for (p, replicas) in zones.place(&[0, 1, 2], 3, 3) {
            assert_eq!(replicas[0], (1, 3), "partition {p}");
        }
    }

    #[test]
    fn shards_split_partitions() {
        assert_eq!(shard_of(1, 1), 0);
        assert_eq!(shard_of(1, 2), 1);
        assert_eq!(shard_of(2, 2), 0);
    }
}
