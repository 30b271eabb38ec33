//! The state the tokio-side services (gateway, management HTTP, sd-notify)
//! share: configuration, the broker view, metrics, backpressure limits and the
//! shard handles. Built once at start-up, shared by `Arc`, lives until exit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::backpressure::PartitionLimits;
use crate::cluster::Forwarder;
use crate::config::Config;
use crate::gossip::ClusterTopology;
use crate::job_signals::JobSignals;
use crate::metrics::Metrics;
use crate::placement::{ClusterShape, NodeId, PartitionId};
use crate::shard::Shards;
use crate::view::BrokerView;

/// See the module documentation.
#[derive(Debug)]
pub struct BrokerContext {
    /// The configuration the broker runs with.
    pub config: Config,
    /// Cluster shape derived from `config`.
    pub shape: ClusterShape,
    /// Roles, readiness and liveness.
    pub view: Arc<BrokerView>,
    /// Prometheus metrics (shared with the shards).
    pub metrics: Arc<Metrics>,
    /// In-flight limits per partition.
    pub limits: PartitionLimits,
    /// The shards holding the local partitions.
    pub shards: Shards,
    /// Traffic to other nodes; `None` for a single node.
    pub forwarder: Option<Arc<Forwarder>>,
    /// The exporter's sinks (reopened on SIGHUP); `None` without exporter.
    pub export_sink: Option<Arc<dyn crate::exporter::Sink>>,
    /// The leader of each partition as last learned.
    pub leaders: LeaderHints,
    /// Wake-ups for activations waiting for jobs (shared with the shards).
    pub job_signals: Arc<JobSignals>,
    /// The job push streams open on this node (shared with the shards).
    pub push_streams: Arc<crate::push_streams::PushStreams>,
    /// The other nodes' partitions as they last reported them.
    pub topology: ClusterTopology,
    /// The backup store, when `backup.directory` is set.
    pub backups: Option<Arc<crate::backup::BackupStore>>,
    /// Checks the credentials of client requests.
    pub auth: Arc<crate::identity::Authenticator>,
    /// The cluster configuration (see [`crate::membership`]).
    pub membership: Arc<crate::membership::Members>,
}

impl BrokerContext {
    /// The number of partitions requests go to: it grows with a scale up.
    pub fn partitions(&self) -> u32 {
        self.membership.partitions()
    }

    /// The number of partitions messages are correlated by (the count
    /// before the first scale up).
    pub fn message_partitions(&self) -> u32 {
        self.membership.message_partitions()
    }
}

/// The leader of each partition as the gateway last learned it (from an
/// answer or a redirect); a hint, corrected by the next redirect.
#[derive(Debug)]
pub struct LeaderHints {
    nodes: Vec<AtomicU32>,
}

const UNKNOWN: u32 = u32::MAX;

impl LeaderHints {
    /// No leader known for any of `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        LeaderHints {
            nodes: (0..=partitions).map(|_| AtomicU32::new(UNKNOWN)).collect(),
        }
    }

    /// The leader of `partition`, if known.
    pub fn get(&self, partition: PartitionId) -> Option<NodeId> {
        let n = self.nodes.get(partition as usize)?.load(Ordering::Relaxed);
        (n != UNKNOWN).then_some(n)
    }

    /// Records (or forgets) the leader of `partition`.
    pub fn set(&self, partition: PartitionId, leader: Option<NodeId>) {
        if let Some(slot) = self.nodes.get(partition as usize) {
            slot.store(leader.unwrap_or(UNKNOWN), Ordering::Relaxed);
        }
    }
}
