//! Configuration of one node's transport: identity, addresses, TLS material,
//! queue bounds and connection timing. Every value is checked by
//! [`TransportConfig::validate`] against a named limit.

use crate::error::StartError;
use crate::identity::{validate_cluster_name, NodeId};
use crate::tls::TlsMaterial;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Most peers one node connects to.
pub const MAX_PEERS: usize = 512;

/// Most frames one outbound or inbound queue of one traffic class may hold.
pub const MAX_QUEUE_FRAMES: usize = 65_536;

/// Most bytes the outbound queues of one peer may hold together.
pub const MAX_OUTBOUND_BYTES_PER_PEER: usize = 1024 * 1024 * 1024;

/// Most tokio threads the transport runs.
pub const MAX_NETWORK_THREADS: usize = 2;

/// Bounds of the queues between shards and the network threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// Frames per (peer, traffic class) waiting to be sent.
    pub outbound_frames_per_class: usize,
    /// Payload bytes per peer waiting to be sent, all classes together.
    pub outbound_bytes_per_peer: usize,
    /// Frames per traffic class received and not yet taken by the shards.
    pub inbound_frames_per_class: usize,
}

impl Default for QueueBounds {
    fn default() -> Self {
        QueueBounds {
            outbound_frames_per_class: 1024,
            outbound_bytes_per_peer: 64 * 1024 * 1024,
            inbound_frames_per_class: 4096,
        }
    }
}

/// Keep-alive, idle timeout and reconnection backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTiming {
    /// Interval of QUIC keep-alive packets on an idle connection.
    pub keep_alive_interval_ms: u64,
    /// A connection with no packet from the peer for this long is dead.
    pub idle_timeout_ms: u64,
    /// First delay before redialing a lost or refused connection.
    pub reconnect_backoff_initial_ms: u64,
    /// Cap of the doubling redial delay.
    pub reconnect_backoff_max_ms: u64,
    /// A dialing peer must announce its node id within this time.
    pub hello_timeout_ms: u64,
}

impl Default for ConnectionTiming {
    fn default() -> Self {
        ConnectionTiming {
            keep_alive_interval_ms: 1_000,
            idle_timeout_ms: 10_000,
            reconnect_backoff_initial_ms: 50,
            reconnect_backoff_max_ms: 5_000,
            hello_timeout_ms: 5_000,
        }
    }
}

/// Everything [`crate::Transport::start`] needs.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node's id; its certificate must name `node-<id>.<cluster>`.
    pub node_id: NodeId,
    /// UDP address the QUIC endpoint listens on.
    pub listen_addr: SocketAddr,
    /// Every other node: where to reach it. Of two nodes, the one with the
    /// lower id dials; the other accepts.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The cluster name, the DNS suffix of every node identity.
    pub cluster_name: String,
    /// CA(s), certificate chain and key of this node.
    pub tls: TlsMaterial,
    /// Queue bounds.
    pub queues: QueueBounds,
    /// Keep-alive, idle timeout, backoff.
    pub timing: ConnectionTiming,
    /// Tokio threads running QUIC (1 or 2).
    pub network_threads: usize,
}

impl TransportConfig {
    /// A configuration with default queues and timing and no peers.
    pub fn new(
        node_id: NodeId,
        listen_addr: SocketAddr,
        cluster_name: impl Into<String>,
        tls: TlsMaterial,
    ) -> Self {
        TransportConfig {
            node_id,
            listen_addr,
            peers: BTreeMap::new(),
            cluster_name: cluster_name.into(),
            tls,
            queues: QueueBounds::default(),
            timing: ConnectionTiming::default(),
            network_threads: 1,
        }
    }

    /// Checks every value against its limit; errors name the key.
    pub fn validate(&self) -> Result<(), StartError> {
        validate_cluster_name(&self.cluster_name)?;
        let bad = |key: &'static str, reason: String| Err(StartError::Config { key, reason });
        if self.peers.contains_key(&self.node_id) {
            return bad(
                "peers",
                format!("contains this node's own id {}", self.node_id),
            );
        }
        if self.peers.len() > MAX_PEERS {
            return bad(
                "peers",
                format!("{} given, at most {MAX_PEERS}", self.peers.len()),
            );
        }
        let in_range = |value: usize, max: usize| (1..=max).contains(&value);
        if !in_range(self.queues.outbound_frames_per_class, MAX_QUEUE_FRAMES) {
            return bad(
                "queues.outbound_frames_per_class",
                format!("must be 1..={MAX_QUEUE_FRAMES}"),
            );
        }
        if !in_range(self.queues.inbound_frames_per_class, MAX_QUEUE_FRAMES) {
            return bad(
                "queues.inbound_frames_per_class",
                format!("must be 1..={MAX_QUEUE_FRAMES}"),
            );
        }
        if !in_range(
            self.queues.outbound_bytes_per_peer,
            MAX_OUTBOUND_BYTES_PER_PEER,
        ) {
            return bad(
                "queues.outbound_bytes_per_peer",
                format!("must be 1..={MAX_OUTBOUND_BYTES_PER_PEER}"),
            );
        }
        if !in_range(self.network_threads, MAX_NETWORK_THREADS) {
            return bad(
                "network_threads",
                format!("must be 1..={MAX_NETWORK_THREADS}"),
            );
        }
        let t = &self.timing;
        if t.keep_alive_interval_ms == 0 || t.keep_alive_interval_ms >= t.idle_timeout_ms {
            return bad(
                "timing.keep_alive_interval_ms",
                "must be above 0 and below timing.idle_timeout_ms".to_owned(),
            );
        }
        if t.reconnect_backoff_initial_ms == 0
            || t.reconnect_backoff_initial_ms > t.reconnect_backoff_max_ms
        {
            return bad(
                "timing.reconnect_backoff_initial_ms",
                "must be above 0 and at most timing.reconnect_backoff_max_ms".to_owned(),
            );
        }
        if t.hello_timeout_ms == 0 {
            return bad("timing.hello_timeout_ms", "must be above 0".to_owned());
        }
        Ok(())
    }
}
