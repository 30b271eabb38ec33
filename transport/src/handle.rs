//! The sending side handed to shards: cheap to clone, `Send + Sync`, never
//! blocks. Each peer has bounded outbound queues per traffic class; a slow
//! or unreachable peer fills them and `try_send` returns `Full` instead of
//! growing a queue.

use crate::error::SendError;
use crate::identity::NodeId;
use crate::peer_queue::PeerQueue;
use crate::stats::{Counters, TransportStats};
use crate::traffic_class::TrafficClass;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Handle to a running transport. Clones share the transport; it shuts
/// down on [`TransportHandle::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

struct Shared {
    node_id: NodeId,
    local_addr: SocketAddr,
    peers: BTreeMap<NodeId, Arc<PeerQueue>>,
    counters: Arc<Counters>,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The network thread exits on its own; joining here could block a
        // shard's executor.
        self.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportHandle")
            .field("node_id", &self.shared.node_id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl TransportHandle {
    pub(crate) fn new(
        node_id: NodeId,
        local_addr: SocketAddr,
        peers: BTreeMap<NodeId, Arc<PeerQueue>>,
        counters: Arc<Counters>,
        shutdown: watch::Sender<bool>,
        thread: JoinHandle<()>,
    ) -> Self {
        TransportHandle {
            shared: Arc::new(Shared {
                node_id,
                local_addr,
                peers,
                counters,
                closed: AtomicBool::new(false),
                shutdown,
                thread: Mutex::new(Some(thread)),
            }),
        }
    }

    /// Queues `payload` for `to`, without waiting. `Full` means the peer is
    /// slow or unreachable: the frame was not queued (cloning `Bytes` before
    /// the call keeps it for a retry at no copy).
    pub fn try_send(
        &self,
        to: NodeId,
        class: TrafficClass,
        partition: u32,
        payload: Bytes,
    ) -> Result<(), SendError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let queue = self
            .shared
            .peers
            .get(&to)
            .ok_or(SendError::UnknownPeer { node_id: to })?;
        let result = queue.try_push(class, partition, payload);
        if result == Err(SendError::Full) {
            Counters::add(&self.shared.counters.sends_refused_full, 1);
        }
        result
    }

    /// Whether a connection to `peer` is currently established.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.shared
            .peers
            .get(&peer)
            .is_some_and(|queue| queue.connected.load(Ordering::Acquire))
    }

    /// Watches the connections to `peer` that ended (lost, or superseded by
    /// a newer one): the value counts them and changes when one ends. A
    /// frame queued before a change may not have reached the peer, and an
    /// answer to it may never come; waiting for a change lets the caller
    /// stop waiting at once. `None` for an unknown peer.
    pub fn connection_ends(&self, peer: NodeId) -> Option<watch::Receiver<u64>> {
        Some(self.shared.peers.get(&peer)?.ended.subscribe())
    }

    /// The current round-trip time estimate to `peer`, while connected.
    pub fn rtt(&self, peer: NodeId) -> Option<std::time::Duration> {
        let queue = self.shared.peers.get(&peer)?;
        let connection = queue.connection.lock().expect("never poisoned");
        connection.as_ref().map(quinn::Connection::rtt)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// The UDP address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The configured peers.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.shared.peers.keys().copied()
    }

    /// Counters since start.
    pub fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }

    /// Closes every connection (peers see `CloseCode::Shutdown`), stops the
    /// network thread and waits for it. Later sends return `Closed`; the
    /// inbound channels drain and then report `Closed`. Idempotent.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.shutdown.send_replace(true);
        let thread = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                tracing::error!(node = self.shared.node_id, "network thread panicked");
            }
        }
    }
}
