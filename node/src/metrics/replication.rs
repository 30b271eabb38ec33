//! Raft, storage and snapshot families: what an operator watches to see
//! whether the partitions replicate and the disks keep up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{latency_histogram, HistogramFamily, PartitionLabel};

/// Labels of a leader's view of one follower.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabel {
    /// Partition id.
    pub partition: u32,
    /// The follower's node id.
    pub follower: u64,
}

/// Labels of a certificate.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabel {
    /// `node` or `ca-<n>`.
    pub certificate: String,
}

/// Labels of a peer node.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// The peer's node id.
    pub peer: u64,
}

/// See the module documentation.
pub struct ReplicationMetrics {
    /// 1 while a QUIC connection to the peer is established.
    pub peer_connected: Family<PeerLabel, Gauge>,
    /// QUIC's round-trip time estimate to the peer, in microseconds.
    pub peer_rtt_microseconds: Family<PeerLabel, Gauge>,
    /// Connections lost after being established, since start.
    pub peer_connections_lost: Gauge,
    /// When each node-to-node TLS certificate expires (UNIX seconds).
    pub certificate_expiry_timestamp_seconds: Family<CertificateLabel, Gauge>,
    /// Current Raft term, per partition.
    pub raft_term: Family<PartitionLabel, Gauge>,
    /// Commit index, per partition.
    pub raft_commit_index: Family<PartitionLabel, Gauge>,
    /// Last index of the local log, per partition.
    pub raft_last_index: Family<PartitionLabel, Gauge>,
    /// Times this replica saw the leader change, per partition.
    pub raft_leader_changes: Family<PartitionLabel, Counter>,
    /// On the leader: entries each follower has not yet matched.
    pub raft_replication_lag_entries: Family<FollowerLabel, Gauge>,
    /// Duration of the `fdatasync` of a log, per partition.
    pub log_sync_seconds: HistogramFamily<PartitionLabel>,
    /// Time to write a snapshot and compact the log, per partition.
    pub snapshot_seconds: HistogramFamily<PartitionLabel>,
    /// Size of the latest snapshot, per partition.
    pub snapshot_bytes: Family<PartitionLabel, Gauge>,
    /// Free bytes on the data directory's file system.
    pub disk_free_bytes: Gauge,
}

impl ReplicationMetrics {
    /// The families, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            peer_connected: Family::default(),
            peer_rtt_microseconds: Family::default(),
            peer_connections_lost: Gauge::default(),
            certificate_expiry_timestamp_seconds: Family::default(),
            raft_term: Family::default(),
            raft_commit_index: Family::default(),
            raft_last_index: Family::default(),
            raft_leader_changes: Family::default(),
            raft_replication_lag_entries: Family::default(),
            log_sync_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            snapshot_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            snapshot_bytes: Family::default(),
            disk_free_bytes: Gauge::default(),
        };
        registry.register(
            "peer_connected",
            "1 while a QUIC connection to the peer node is established",
            m.peer_connected.clone(),
        );
        registry.register(
            "peer_rtt_microseconds",
            "QUIC round-trip time estimate to the peer node",
            m.peer_rtt_microseconds.clone(),
        );
        registry.register(
            "peer_connections_lost",
            "Node-to-node connections lost after being established, since start",
            m.peer_connections_lost.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When each TLS certificate expires (UNIX seconds): node-to-node (node, ca-N) and the client ports (client-ports)",
            m.certificate_expiry_timestamp_seconds.clone(),
        );
        registry.register("raft_term", "Current Raft term", m.raft_term.clone());
        registry.register(
            "raft_commit_index",
            "Highest log index known to be committed",
            m.raft_commit_index.clone(),
        );
        registry.register(
            "raft_last_index",
            "Last index of the local log",
            m.raft_last_index.clone(),
        );
        registry.register(
            "raft_leader_changes",
            "Times this replica saw the partition's leader change",
            m.raft_leader_changes.clone(),
        );
        registry.register(
            "raft_replication_lag_entries",
            "On the leader: log entries a follower has not yet matched",
            m.raft_replication_lag_entries.clone(),
        );
        registry.register(
            "log_sync_seconds",
            "Duration of a log's fdatasync (group commit)",
            m.log_sync_seconds.clone(),
        );
        registry.register(
            "snapshot_seconds",
            "Time to write a snapshot and compact the log",
            m.snapshot_seconds.clone(),
        );
        registry.register(
            "snapshot_bytes",
            "Size of the latest snapshot",
            m.snapshot_bytes.clone(),
        );
        registry.register(
            "disk_free_bytes",
            "Free bytes on the data directory's file system",
            m.disk_free_bytes.clone(),
        );
        m
    }

    /// Mirrors the transport's view of its peers.
    pub fn set_peers(&self, transport: &transport::TransportHandle) {
        for peer in transport.peers() {
            let label = PeerLabel {
                peer: u64::from(peer),
            };
            self.peer_connected
                .get_or_create(&label)
                .set(i64::from(transport.is_connected(peer)));
            let rtt = transport.rtt(peer).map_or(0, |d| d.as_micros());
            self.peer_rtt_microseconds
                .get_or_create(&label)
                .set(i64::try_from(rtt).unwrap_or(i64::MAX));
        }
        let lost = transport.stats().connections_lost;
        self.peer_connections_lost
            .set(i64::try_from(lost).unwrap_or(i64::MAX));
    }

    /// Series for `p` in every per-partition family.
    pub fn register_partition(&self, p: u32) {
        let label = PartitionLabel { partition: p };
        let _ = self.raft_term.get_or_create(&label);
        let _ = self.raft_commit_index.get_or_create(&label);
        let _ = self.raft_last_index.get_or_create(&label);
        let _ = self.raft_leader_changes.get_or_create(&label);
        let _ = self.log_sync_seconds.get_or_create(&label);
        let _ = self.snapshot_seconds.get_or_create(&label);
        let _ = self.snapshot_bytes.get_or_create(&label);
    }
}
