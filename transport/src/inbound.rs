//! The receiving side handed to the broker: one bounded channel per traffic
//! class, shared by all peers. The network threads wait when a channel is
//! full, which stops reading that QUIC stream, so the peer's flow control
//! window closes and its sender sees `SendError::Full`: nothing grows
//! without bound. The channels are runtime-agnostic (`flume`): receive
//! from a glommio executor, a plain thread or tokio.

use crate::error::RecvError;
use crate::identity::NodeId;
use crate::traffic_class::{TrafficClass, TRAFFIC_CLASS_COUNT};
use bytes::Bytes;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// One frame received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFrame {
    /// The node that sent it (verified by its certificate).
    pub from: NodeId,
    /// Its traffic class.
    pub class: TrafficClass,
    /// The partition it belongs to.
    pub partition: u32,
    /// The payload.
    pub payload: Bytes,
}

/// Receivers of inbound frames, per traffic class or all together.
///
/// Owned by whoever routes frames to shards; it may be cloned per class with
/// [`Inbound::receiver`]. Lives until dropped; once the transport is shut
/// down, receiving drains what is queued and then returns `Closed`.
#[derive(Debug, Clone)]
pub struct Inbound {
    receivers: [flume::Receiver<InboundFrame>; TRAFFIC_CLASS_COUNT],
}

/// Classes in the order [`Inbound`] serves them when several have frames.
const PRIORITY: [TrafficClass; TRAFFIC_CLASS_COUNT] = [
    TrafficClass::Control,
    TrafficClass::Command,
    TrafficClass::Replication,
];

impl Inbound {
    pub(crate) fn new(receivers: [flume::Receiver<InboundFrame>; TRAFFIC_CLASS_COUNT]) -> Self {
        Inbound { receivers }
    }

    /// The receiver of one traffic class (a clone: receivers are MPMC).
    pub fn receiver(&self, class: TrafficClass) -> flume::Receiver<InboundFrame> {
        self.receivers[class.index()].clone()
    }

    /// Takes a frame of any class if one is queued: control first, then
    /// commands, then replication.
    pub fn try_recv(&self) -> Result<Option<InboundFrame>, RecvError> {
        let mut disconnected = 0;
        for class in PRIORITY {
            match self.receivers[class.index()].try_recv() {
                Ok(frame) => return Ok(Some(frame)),
                Err(flume::TryRecvError::Empty) => {}
                Err(flume::TryRecvError::Disconnected) => disconnected += 1,
            }
        }
        if disconnected == TRAFFIC_CLASS_COUNT {
            Err(RecvError::Closed)
        } else {
            Ok(None)
        }
    }

    /// Waits for a frame of any class (async, any executor).
    pub async fn recv(&self) -> Result<InboundFrame, RecvError> {
        if let Some(frame) = self.try_recv()? {
            return Ok(frame);
        }
        let [replication, command, control] = &self.receivers;
        let mut futures = [
            pin!(control.recv_async()),
            pin!(command.recv_async()),
            pin!(replication.recv_async()),
        ];
        std::future::poll_fn(|cx| {
            let mut disconnected = 0;
            for future in futures.iter_mut() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(frame)) => return Poll::Ready(Ok(frame)),
                    Poll::Ready(Err(flume::RecvError::Disconnected)) => disconnected += 1,
                    Poll::Pending => {}
                }
            }
            if disconnected == TRAFFIC_CLASS_COUNT {
                Poll::Ready(Err(RecvError::Closed))
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Blocks the calling thread until a frame of any class arrives or the
    /// timeout passes.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<InboundFrame, RecvError> {
        if let Some(frame) = self.try_recv()? {
            return Ok(frame);
        }
        let mut selector = flume::Selector::new();
        for class in PRIORITY {
            selector = selector.recv(&self.receivers[class.index()], |result| {
                result.map_err(|_| RecvError::Closed)
            });
        }
        match selector.wait_timeout(timeout) {
            Ok(result) => result,
            Err(flume::select::SelectError::Timeout) => Err(RecvError::Timeout),
        }
    }
}
