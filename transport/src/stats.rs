//! Counters of one transport, shared by the network tasks and read by the
//! handle. Relaxed atomics: they are statistics, not synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the transport's counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames written to a QUIC stream.
    pub frames_sent: u64,
    /// Frames read from peers and handed to the inbound channels.
    pub frames_received: u64,
    /// Sends refused because a peer's queue was full.
    pub sends_refused_full: u64,
    /// Connections that completed the handshake and identity check.
    pub connections_established: u64,
    /// Connections lost after being established.
    pub connections_lost: u64,
    /// Connections refused: failed handshake, wrong or unknown identity.
    pub connections_refused: u64,
    /// Connections closed for a protocol violation (bad frame).
    pub protocol_violations: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub sends_refused_full: AtomicU64,
    pub connections_established: AtomicU64,
    pub connections_lost: AtomicU64,
    pub connections_refused: AtomicU64,
    pub protocol_violations: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            frames_sent: get(&self.frames_sent),
            frames_received: get(&self.frames_received),
            sends_refused_full: get(&self.sends_refused_full),
            connections_established: get(&self.connections_established),
            connections_lost: get(&self.connections_lost),
            connections_refused: get(&self.connections_refused),
            protocol_violations: get(&self.protocol_violations),
        }
    }
}
