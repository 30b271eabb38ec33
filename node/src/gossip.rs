//! What each node knows of the others: every node sends its partitions' roles
//! and health to every other node twice a second (a `Control` frame), so that
//! `Topology` (and `waggle status`) shows the whole cluster from any node, and
//! gateways learn partition leaders before their first forwarded command.
//!
//! A node also sends its state at once when one of its partitions changes
//! role, so that a new leader is known across the cluster within a round
//! trip of its election, and commands waiting on the old one are retried on
//! it (see [`crate::cluster::Forwarder::leader_changed`]).
//!
//! A node not heard from for `STALE_AFTER` is left out of the topology, as
//! Zeebe's gateway drops brokers it lost.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::context::BrokerContext;
use crate::divergence::Checkpoint;
use crate::placement::{NodeId, PartitionId};
use crate::view::Role;

/// How often a node sends its state.
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(500);
/// A node silent for this long is considered gone.
pub const STALE_AFTER: Duration = Duration::from_secs(3);

/// One node's state as it sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// Sender.
    pub node: NodeId,
    /// Its version.
    pub version: String,
    /// `(partition, role, healthy)` of each of its replicas; the role as
    /// [`Role`]'s number.
    pub partitions: Vec<(PartitionId, u8, bool)>,
    /// The newest state checkpoint of each of its replicas (see
    /// [`crate::divergence`]); absent from nodes without the check.
    #[serde(default)]
    pub checkpoints: Vec<(PartitionId, Checkpoint)>,
    /// The sender's cluster configuration (see [`crate::membership`]): a
    /// newer one is taken; absent from nodes before 0.3.
    #[serde(default)]
    pub configuration: Option<crate::membership::ClusterConfiguration>,
    /// Where each of its replicas stands in a cluster change.
    #[serde(default)]
    pub replicas: Vec<(PartitionId, crate::membership::change::ReplicaReport)>,
}

/// The last state heard from each other node.
#[derive(Debug, Default)]
pub struct ClusterTopology {
    nodes: Mutex<BTreeMap<NodeId, (NodeState, Instant)>>,
}

impl ClusterTopology {
    /// Records a state received from `from`; `None` if it does not decode or
    /// claims another sender.
    pub fn receive(&self, from: NodeId, bytes: &[u8]) -> Option<NodeState> {
        let state: NodeState = serde_json::from_slice(bytes).ok()?;
        if state.node != from {
            return None;
        }
        self.nodes
            .lock()
            .expect("never poisoned")
            .insert(from, (state.clone(), Instant::now()));
        Some(state)
    }

    /// How to encode commands forwarded to `node`: by the version it last
    /// gossiped (JSON until it is heard from).
    pub fn command_encoding(&self, node: NodeId) -> crate::cluster::CommandEncoding {
        let nodes = self.nodes.lock().expect("never poisoned");
        let version = nodes.get(&node).map(|(state, _)| state.version.as_str());
        crate::cluster::CommandEncoding::for_version(version)
    }

    /// The nodes heard from within `STALE_AFTER`, by id.
    pub fn live(&self) -> Vec<NodeState> {
        self.nodes
            .lock()
            .expect("never poisoned")
            .values()
            .filter(|(_, seen)| seen.elapsed() < STALE_AFTER)
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// This node's state.
pub fn local_state(context: &BrokerContext) -> NodeState {
    NodeState {
        node: context.config.cluster.node_id,
        version: env!("CARGO_PKG_VERSION").to_string(),
        partitions: context
            .view
            .roles()
            .into_iter()
            .map(|(p, role)| (p, role as u8, context.view.healthy(p)))
            .collect(),
        checkpoints: context.view.checks.latest(),
        configuration: context.membership.shared(),
        replicas: context
            .membership
            .reports()
            .remove(&context.config.cluster.node_id)
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

/// Sends this node's state to every other node until the broker stops.
pub async fn run(context: std::sync::Arc<BrokerContext>) {
    let Some(forwarder) = context.forwarder.clone() else {
        return;
    };
    let me = context.config.cluster.node_id;
    let mut interval = tokio::time::interval(GOSSIP_INTERVAL);
    while !context.view.stopping() {
        tokio::select! {
            _ = interval.tick() => {}
            () = context.view.roles_changed.notified() => {}
        }
        track_round_trips(&context, forwarder.handle());
        for (p, role) in context.view.roles() {
            if role == Role::Leader {
                learn_leader(&context, p, me);
            }
        }
        let Ok(bytes) = serde_json::to_vec(&local_state(&context)) else {
            continue;
        };
        let bytes = bytes::Bytes::from(bytes);
        let peers: Vec<NodeId> = forwarder.handle().peers().collect();
        for node in peers.into_iter().filter(|n| *n != me) {
            // Best effort: the next round repeats it.
            let _ = forwarder.handle().try_send(
                node,
                transport::TrafficClass::Control,
                0,
                bytes.clone(),
            );
        }
    }
}

/// `leader` leads `partition` now: the gateway routes there, and commands
/// forwarded to its former leader stop waiting for it.
fn learn_leader(context: &BrokerContext, partition: PartitionId, leader: NodeId) {
    let changed = context.leaders.get(partition) != Some(leader);
    context.leaders.set(partition, Some(leader));
    if let (true, Some(forwarder)) = (changed, &context.forwarder) {
        forwarder.leader_changed(partition, leader);
    }
}

/// Sets each partition's backpressure target from the round trip to its
/// farthest replica (see [`crate::backpressure`]); replicas not connected
/// count as near, so a lost peer does not loosen the limit.
fn track_round_trips(context: &BrokerContext, transport: &transport::TransportHandle) {
    let me = context.config.cluster.node_id;
    for p in 1..=context.partitions() {
        let farthest = context
            .membership
            .replica_nodes(p)
            .iter()
            .filter(|n| **n != me)
            .filter_map(|n| transport.rtt(*n))
            .max()
            .unwrap_or_default();
        context.limits.set_round_trip(p, farthest);
    }
}

/// Applies a received state: remembered for `Topology`, and its leaders as
/// routing hints.
pub fn on_received(context: &BrokerContext, from: NodeId, bytes: &[u8]) {
    let Some(state) = context.topology.receive(from, bytes) else {
        tracing::debug!(from, "undecodable topology frame dropped");
        return;
    };
    for (p, role, _) in state.partitions {
        if Role::from_u8(role) == Role::Leader && p <= crate::config::MAX_PARTITIONS {
            learn_leader(context, p, from);
        }
    }
    context
        .membership
        .report(from, state.replicas.into_iter().collect());
    if let Some(configuration) = state.configuration {
        match context.membership.adopt(configuration) {
            Ok(true) => tracing::info!(from, "took a newer cluster configuration from node {from}"),
            Ok(false) => {}
            Err(e) => tracing::error!("cannot store the cluster configuration: {e:#}"),
        }
    }
    let replication_factor = context.shape.replication_factor;
    for (p, checkpoint) in state.checkpoints {
        context
            .view
            .checks
            .receive(p, from, checkpoint, replication_factor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_kept_per_sender_and_checked() {
        let topology = ClusterTopology::default();
        let state = NodeState {
            node: 2,
            version: "0.1.0".into(),
            partitions: vec![
                (1, Role::Leader as u8, true),
                (3, Role::Follower as u8, true),
            ],
            checkpoints: vec![(
                1,
                Checkpoint {
                    index: 100,
                    fingerprint: 7,
                },
            )],
            configuration: None,
            replicas: Vec::new(),
        };
        let bytes = serde_json::to_vec(&state).unwrap();
        assert_eq!(topology.receive(2, &bytes), Some(state.clone()));
        assert_eq!(topology.receive(1, &bytes), None, "claims another sender");
        assert_eq!(topology.receive(2, b"garbage"), None);
        assert_eq!(topology.live(), vec![state]);
        // A node without state checks sends no checkpoints.
        let older = br#"{"node": 2, "version": "0.1.0", "partitions": []}"#;
        assert_eq!(topology.receive(2, older).unwrap().checkpoints, vec![]);
    }
}
