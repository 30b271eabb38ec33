//! One established connection to a peer: three send streams (control,
//! command, replication, opened in that order, each with its own QUIC
//! priority) fed from the peer's outbound queues, and one reader per stream
//! the peer opens, feeding the inbound channels. A bad frame from the peer
//! closes the connection with `CloseCode::ProtocolViolation` and a logged
//! reason; other connections are not affected. The session ends when the
//! connection closes or a newer connection from the same peer arrives.

use crate::close_code::{close, CloseCode};
use crate::context::{AcceptedConnection, NetContext};
use crate::frame::{hello_payload, FrameHeader, FRAME_HEADER_BYTES};
use crate::identity::NodeId;
use crate::inbound::InboundFrame;
use crate::peer_queue::{OutboundFrame, PeerQueue, PeerReceivers};
use crate::stats::Counters;
use crate::traffic_class::TrafficClass;
use bytes::{Bytes, BytesMut};
use quinn::ReadExactError;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use zerocopy::IntoBytes;

/// Most frames written to a stream in one batch.
pub(crate) const MAX_WRITE_BATCH_FRAMES: usize = 64;

/// Most payload bytes written to a stream in one batch (a batch may exceed
/// it by its last frame).
pub(crate) const MAX_WRITE_BATCH_BYTES: usize = 1024 * 1024;

/// Order in which the send streams are opened: control first, so the
/// dialer's hello is on the peer's first stream.
const OPEN_ORDER: [TrafficClass; 3] = [
    TrafficClass::Control,
    TrafficClass::Command,
    TrafficClass::Replication,
];

/// Why a session ended.
pub(crate) enum SessionEnd {
    /// The connection closed or failed; the reason is for the log.
    Lost(String),
    /// A newer connection from the peer replaced this one.
    Superseded(AcceptedConnection),
}

/// Everything one session needs about its peer.
pub(crate) struct SessionPeer<'a> {
    pub node_id: NodeId,
    pub queue: &'a Arc<PeerQueue>,
    pub receivers: &'a PeerReceivers,
    pub accepted: &'a mut mpsc::Receiver<AcceptedConnection>,
}

/// Runs the session on `connection` until it ends. `control` is the
/// already-accepted first stream of an accepted connection.
pub(crate) async fn run(
    ctx: &Arc<NetContext>,
    peer: SessionPeer<'_>,
    connection: &quinn::Connection,
    control: Option<quinn::RecvStream>,
) -> SessionEnd {
    let dialer = ctx.dials(peer.node_id);
    let mut tasks = JoinSet::new();
    for class in OPEN_ORDER {
        let mut stream = match connection.open_uni().await {
            Ok(stream) => stream,
            Err(error) => return SessionEnd::Lost(error.to_string()),
        };
        // Fails only on a stream already closed, which the write then reports.
        let _ = stream.set_priority(class.stream_priority());
        if dialer && class == TrafficClass::Control {
            let mut hello = FrameHeader::hello().to_bytes().to_vec();
            hello.extend_from_slice(&hello_payload(ctx.node_id));
            if let Err(error) = stream.write_all(&hello).await {
                return SessionEnd::Lost(format!("sending the hello: {error}"));
            }
        }
        tasks.spawn(write_loop(
            stream,
            class,
            peer.receivers[class.index()].clone(),
            peer.queue.clone(),
            ctx.counters.clone(),
        ));
    }
    if let Some(control) = control {
        tasks.spawn(read_stream(
            ctx.clone(),
            connection.clone(),
            peer.node_id,
            control,
        ));
    }
    tasks.spawn(accept_streams(
        ctx.clone(),
        connection.clone(),
        peer.node_id,
    ));
    let accepted = peer.accepted;
    tokio::select! {
        error = connection.closed() => SessionEnd::Lost(error.to_string()),
        Some(next) = accepted.recv(), if !dialer => {
            close(
                connection,
                CloseCode::Superseded,
                "superseded by a newer connection from the same node",
            );
            SessionEnd::Superseded(next)
        }
    }
    // Dropping `tasks` aborts the writers and readers of this connection.
}

/// Writes frames of one class from the peer's queue to one stream, in
/// batches. Frames taken off the queue when the connection fails are lost:
/// delivery is at most once, and Raft retransmits.
async fn write_loop(
    mut stream: quinn::SendStream,
    class: TrafficClass,
    receiver: flume::Receiver<OutboundFrame>,
    queue: Arc<PeerQueue>,
    counters: Arc<Counters>,
) {
    let mut batch: Vec<OutboundFrame> = Vec::with_capacity(MAX_WRITE_BATCH_FRAMES);
    let mut chunks: Vec<Bytes> = Vec::with_capacity(2 * MAX_WRITE_BATCH_FRAMES);
    loop {
        let Ok(first) = receiver.recv_async().await else {
            return;
        };
        let mut batch_bytes = first.payload.len();
        queue.release(first.payload.len());
        batch.push(first);
        while batch.len() < MAX_WRITE_BATCH_FRAMES && batch_bytes < MAX_WRITE_BATCH_BYTES {
            match receiver.try_recv() {
                Ok(frame) => {
                    batch_bytes += frame.payload.len();
                    queue.release(frame.payload.len());
                    batch.push(frame);
                }
                Err(_) => break,
            }
        }
        let mut headers = BytesMut::with_capacity(FRAME_HEADER_BYTES * batch.len());
        for frame in &batch {
            let header = FrameHeader::new(class.into(), frame.partition, frame.payload.len())
                .expect("PeerQueue::try_push refuses payloads above the maximum");
            headers.extend_from_slice(header.as_bytes());
        }
        let mut headers = headers.freeze();
        for frame in batch.drain(..) {
            chunks.push(headers.split_to(FRAME_HEADER_BYTES));
            chunks.push(frame.payload);
        }
        let frames = (chunks.len() / 2) as u64;
        let result = stream.write_all_chunks(&mut chunks).await;
        chunks.clear();
        if let Err(error) = result {
            tracing::debug!(?class, %error, "send stream closed");
            return;
        }
        Counters::add(&counters.frames_sent, frames);
    }
}

/// Accepts the streams the peer opens and reads each.
async fn accept_streams(ctx: Arc<NetContext>, connection: quinn::Connection, peer: NodeId) {
    let mut readers = JoinSet::new();
    while let Ok(stream) = connection.accept_uni().await {
        while readers.try_join_next().is_some() {}
        readers.spawn(read_stream(ctx.clone(), connection.clone(), peer, stream));
    }
}

/// Reads frames from one stream until it ends; a bad frame closes the
/// whole connection.
async fn read_stream(
    ctx: Arc<NetContext>,
    connection: quinn::Connection,
    peer: NodeId,
    mut stream: quinn::RecvStream,
) {
    if let Err(reason) = read_frames(&ctx, peer, &mut stream).await {
        Counters::add(&ctx.counters.protocol_violations, 1);
        tracing::warn!(peer, %reason, "closing connection: protocol violation");
        close(&connection, CloseCode::ProtocolViolation, &reason);
    }
}

/// `Ok` when the stream ended cleanly (or the connection went away);
/// `Err` with the reason on a protocol violation.
async fn read_frames(
    ctx: &NetContext,
    peer: NodeId,
    stream: &mut quinn::RecvStream,
) -> Result<(), String> {
    loop {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        match stream.read_exact(&mut header).await {
            Ok(()) => {}
            Err(ReadExactError::FinishedEarly(0)) => return Ok(()),
            Err(ReadExactError::FinishedEarly(read)) => {
                return Err(format!(
                    "stream ended inside a frame header after {read} bytes"
                ))
            }
            Err(ReadExactError::ReadError(_)) => return Ok(()),
        }
        let valid = FrameHeader::parse(&header).map_err(|e| e.to_string())?;
        let class = valid
            .kind
            .traffic_class()
            .ok_or_else(|| "unexpected hello after the handshake".to_owned())?;
        let mut payload = vec![0u8; valid.length_bytes];
        match stream.read_exact(&mut payload).await {
            Ok(()) => {}
            Err(ReadExactError::FinishedEarly(read)) => {
                return Err(format!(
                    "stream ended inside a frame payload after {read} of {} bytes",
                    valid.length_bytes
                ))
            }
            Err(ReadExactError::ReadError(_)) => return Ok(()),
        }
        let frame = InboundFrame {
            from: peer,
            class,
            partition: valid.partition,
            payload: Bytes::from(payload),
        };
        if ctx.inbound[class.index()].send_async(frame).await.is_err() {
            return Ok(());
        }
        Counters::add(&ctx.counters.frames_received, 1);
    }
}
