//! QUIC with mutual TLS between waggle brokers.
//!
//! A [`Transport`] runs on its own tokio network thread and talks to the
//! shards through bounded, runtime-agnostic channels: shards send with the
//! non-blocking [`TransportHandle::try_send`] and receive from [`Inbound`].
//! Each pair of nodes shares one QUIC connection (the lower id dials), with
//! one stream per [`TrafficClass`] in each direction. Frames are a
//! 12-byte header ([`frame`]) and a payload of at most
//! [`MAX_FRAME_PAYLOAD_BYTES`]. Peers authenticate with certificates issued
//! by the cluster CA ([`certs`]) that name their node id.

mod accept;
mod backoff;
pub mod certs;
pub mod close_code;
mod config;
mod context;
mod error;
pub mod frame;
mod handle;
pub mod identity;
mod inbound;
mod link;
mod peer_queue;
mod session;
mod stats;
pub mod tls;
mod traffic_class;
mod transport;

pub use bytes::Bytes;
pub use close_code::CloseCode;
pub use config::{
    ConnectionTiming, QueueBounds, TransportConfig, MAX_NETWORK_THREADS,
    MAX_OUTBOUND_BYTES_PER_PEER, MAX_PEERS, MAX_QUEUE_FRAMES,
};
pub use error::{CertError, FrameError, IdentityError, RecvError, SendError, StartError, TlsError};
pub use frame::MAX_FRAME_PAYLOAD_BYTES;
pub use handle::TransportHandle;
pub use identity::NodeId;
pub use inbound::{Inbound, InboundFrame};
pub use stats::TransportStats;
pub use tls::TlsMaterial;
pub use traffic_class::{TrafficClass, TRAFFIC_CLASS_COUNT};
pub use transport::{
    Transport, CONNECTION_RECEIVE_WINDOW_BYTES, MAX_UNI_STREAMS_PER_CONNECTION, SEND_WINDOW_BYTES,
    SHUTDOWN_DRAIN_MS, STREAM_RECEIVE_WINDOW_BYTES,
};
