//! The outbound queues of one peer: one bounded channel per traffic class,
//! plus a byte budget over all three. Shards push with `try_send` from any
//! thread; the peer's link task on the network thread pops and writes.

use crate::error::SendError;
use crate::frame::MAX_FRAME_PAYLOAD_BYTES;
use crate::traffic_class::{TrafficClass, TRAFFIC_CLASS_COUNT};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A frame waiting to be sent.
#[derive(Debug)]
pub(crate) struct OutboundFrame {
    pub partition: u32,
    pub payload: Bytes,
}

/// Shared between the handle (producers) and the link task (consumer).
#[derive(Debug)]
pub(crate) struct PeerQueue {
    senders: [flume::Sender<OutboundFrame>; TRAFFIC_CLASS_COUNT],
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    /// Whether a connection to the peer is currently established.
    pub connected: AtomicBool,
    /// The established connection, for its round-trip time.
    pub connection: std::sync::Mutex<Option<quinn::Connection>>,
    /// Connections to the peer that ended (lost or superseded), so far.
    pub ended: tokio::sync::watch::Sender<u64>,
}

/// The consumer ends of one peer's queues.
pub(crate) type PeerReceivers = [flume::Receiver<OutboundFrame>; TRAFFIC_CLASS_COUNT];

impl PeerQueue {
    pub fn new(frames_per_class: usize, max_queued_bytes: usize) -> (Self, PeerReceivers) {
        let (s0, r0) = flume::bounded(frames_per_class);
        let (s1, r1) = flume::bounded(frames_per_class);
        let (s2, r2) = flume::bounded(frames_per_class);
        let queue = PeerQueue {
            senders: [s0, s1, s2],
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes,
            connected: AtomicBool::new(false),
            connection: std::sync::Mutex::new(None),
            ended: tokio::sync::watch::Sender::new(0),
        };
        (queue, [r0, r1, r2])
    }

    /// Queues a frame without waiting.
    pub fn try_push(
        &self,
        class: TrafficClass,
        partition: u32,
        payload: Bytes,
    ) -> Result<(), SendError> {
        let length_bytes = payload.len();
        if length_bytes > MAX_FRAME_PAYLOAD_BYTES {
            return Err(SendError::TooLarge {
                length_bytes,
                max_bytes: MAX_FRAME_PAYLOAD_BYTES,
            });
        }
        let before = self.queued_bytes.fetch_add(length_bytes, Ordering::AcqRel);
        // A single frame is always admitted into an empty budget, so a budget
        // below the frame size cannot wedge the peer.
        if before > 0 && before + length_bytes > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(length_bytes, Ordering::AcqRel);
            return Err(SendError::Full);
        }
        match self.senders[class.index()].try_send(OutboundFrame { partition, payload }) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.queued_bytes.fetch_sub(length_bytes, Ordering::AcqRel);
                match error {
                    flume::TrySendError::Full(_) => Err(SendError::Full),
                    flume::TrySendError::Disconnected(_) => Err(SendError::Closed),
                }
            }
        }
    }

    /// Returns the budget of a frame taken off a queue.
    pub fn release(&self, length_bytes: usize) {
        let before = self.queued_bytes.fetch_sub(length_bytes, Ordering::AcqRel);
        assert!(before >= length_bytes, "released more bytes than queued");
    }

    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bound_refuses_with_full() {
        let (queue, receivers) = PeerQueue::new(2, 1 << 20);
        let class = TrafficClass::Command;
        assert!(queue.try_push(class, 1, Bytes::from_static(b"a")).is_ok());
        assert!(queue.try_push(class, 1, Bytes::from_static(b"b")).is_ok());
        assert_eq!(
            queue.try_push(class, 1, Bytes::from_static(b"c")),
            Err(SendError::Full)
        );
        // Other classes have their own bound.
        assert!(queue
            .try_push(TrafficClass::Control, 1, Bytes::from_static(b"d"))
            .is_ok());
        let frame = receivers[class.index()].try_recv().unwrap();
        queue.release(frame.payload.len());
        assert!(queue.try_push(class, 1, Bytes::from_static(b"e")).is_ok());
        assert_eq!(queue.queued_bytes(), 3);
    }

    #[test]
    fn byte_budget_refuses_with_full_and_admits_one_large_frame() {
        let (queue, receivers) = PeerQueue::new(100, 1000);
        let class = TrafficClass::Replication;
        assert!(queue.try_push(class, 0, Bytes::from(vec![0; 600])).is_ok());
        assert_eq!(
            queue.try_push(class, 0, Bytes::from(vec![0; 600])),
            Err(SendError::Full)
        );
        let frame = receivers[class.index()].try_recv().unwrap();
        queue.release(frame.payload.len());
        assert!(queue.try_push(class, 0, Bytes::from(vec![0; 1500])).is_ok());
        assert_eq!(
            queue.try_push(class, 0, Bytes::from(vec![0; MAX_FRAME_PAYLOAD_BYTES + 1])),
            Err(SendError::TooLarge {
                length_bytes: MAX_FRAME_PAYLOAD_BYTES + 1,
                max_bytes: MAX_FRAME_PAYLOAD_BYTES
            })
        );
        let frame = receivers[class.index()].try_recv().unwrap();
        queue.release(frame.payload.len());
        drop(receivers);
        assert_eq!(
            queue.try_push(TrafficClass::Control, 0, Bytes::new()),
            Err(SendError::Closed)
        );
    }
}
