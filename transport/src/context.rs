//! State shared by the tasks of one transport's network thread: the QUIC
//! endpoint, the client configuration used to dial, the peers and the
//! inbound channels. Created on the network thread at start, dropped with
//! its runtime at shutdown.

use crate::config::ConnectionTiming;
use crate::identity::NodeId;
use crate::inbound::InboundFrame;
use crate::stats::Counters;
use crate::traffic_class::TRAFFIC_CLASS_COUNT;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most verified connections from one peer waiting for its link task.
pub(crate) const MAX_PENDING_ACCEPTED: usize = 2;

/// A connection accepted from a lower-numbered peer whose hello and
/// certificate were verified; `control` is its first stream, hello consumed.
pub(crate) struct AcceptedConnection {
    pub connection: quinn::Connection,
    pub control: quinn::RecvStream,
}

/// How to reach one peer and how to hand it accepted connections.
pub(crate) struct PeerSlot {
    pub addr: SocketAddr,
    pub accepted: mpsc::Sender<AcceptedConnection>,
}

pub(crate) struct NetContext {
    pub node_id: NodeId,
    pub cluster_name: String,
    pub endpoint: quinn::Endpoint,
    pub client_config: quinn::ClientConfig,
    pub peers: BTreeMap<NodeId, PeerSlot>,
    pub inbound: [flume::Sender<InboundFrame>; TRAFFIC_CLASS_COUNT],
    pub counters: Arc<Counters>,
    pub timing: ConnectionTiming,
}

impl NetContext {
    /// Of two nodes, the lower id dials and the higher accepts, so each pair
    /// shares exactly one connection.
    pub fn dials(&self, peer: NodeId) -> bool {
        self.node_id < peer
    }
}
