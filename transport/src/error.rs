//! Errors of the transport crate. Each names the input that caused it.

use crate::identity::NodeId;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A certificate or a claimed identity that does not name the expected node.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The cluster name cannot be the DNS suffix of identities.
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidClusterName {
        /// The name given.
        name: String,
        /// What would be accepted.
        reason: String,
    },
    /// The client name is not one DNS label.
    #[error("invalid client name {name:?}: use 1 to 63 lowercase letters, digits or '-'")]
    InvalidClientName {
        /// The name given.
        name: String,
    },
    /// The peer's certificate could not be parsed.
    #[error("certificate of the peer claiming node {node_id} is unreadable: {reason}")]
    UnreadableCertificate {
        /// The node id the peer claimed.
        node_id: NodeId,
        /// Parser message.
        reason: String,
    },
    /// The certificate does not name the node the peer claims to be.
    #[error("peer claims node {claimed} but its certificate does not name {expected_name}")]
    WrongNode {
        /// The node id the peer claimed.
        claimed: NodeId,
        /// The DNS name the certificate would have to carry.
        expected_name: String,
    },
    /// The certificate is a wildcard that names every node.
    #[error("certificate of the peer claiming node {node_id} is a wildcard naming every node")]
    Wildcard {
        /// The node id the peer claimed.
        node_id: NodeId,
    },
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoCertificate,
}

/// Loading or using TLS material failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM text held no usable item of the kind needed.
    #[error("{what}: {reason}")]
    BadPem {
        /// Which input (for example "node certificate chain").
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// No trusted CA was given: every peer would be refused.
    #[error("no trusted cluster CA certificate was given (tls.trusted_ca_pems is empty)")]
    NoTrustedCa,
    /// rustls refused the configuration.
    #[error("TLS configuration for {what} was refused: {reason}")]
    Config {
        /// Which part of the configuration.
        what: String,
        /// rustls' message.
        reason: String,
    },
}

/// Creating a CA or issuing a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Refused to overwrite an existing CA key.
    #[error("{path} already exists; refusing to replace a CA key (use another directory)")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A private key file would be readable by others.
    #[error("{path} has mode {mode:o}, expected 600")]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// rcgen could not build or parse a certificate or key.
    #[error("{what}: {reason}")]
    Generate {
        /// What was being built or parsed.
        what: String,
        /// rcgen's message.
        reason: String,
    },
    /// An invalid cluster or client name.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// A frame header that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload length is larger than the named maximum.
    #[error("frame payload of {length_bytes} bytes exceeds the maximum of {max_bytes}")]
    TooLarge {
        /// The announced length.
        length_bytes: usize,
        /// `MAX_FRAME_PAYLOAD_BYTES`.
        max_bytes: usize,
    },
    /// The header does not start with the frame magic: garbage on the stream.
    #[error("bad frame magic {found:02x?} (expected {expected:02x?})")]
    BadMagic {
        /// The bytes found.
        found: [u8; 2],
        /// The magic expected.
        expected: [u8; 2],
    },
    /// A frame version this build does not speak.
    #[error("unsupported frame version {found} (this build speaks {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version supported.
        supported: u8,
    },
    /// A message type this build does not know.
    #[error("unknown message type {found}")]
    UnknownKind {
        /// The type byte found.
        found: u8,
    },
}

/// A frame was not queued for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer's queue for this traffic class is full (slow or unreachable
    /// peer); the frame was not queued. Retry later or drop it.
    #[error("outbound queue to the peer is full")]
    Full,
    /// The node is not among the configured peers.
    #[error("node {node_id} is not a configured peer")]
    UnknownPeer {
        /// The node id given.
        node_id: NodeId,
    },
    /// The payload is larger than `MAX_FRAME_PAYLOAD_BYTES`.
    #[error("payload of {length_bytes} bytes exceeds the frame maximum of {max_bytes}")]
    TooLarge {
        /// The payload length.
        length_bytes: usize,
        /// `MAX_FRAME_PAYLOAD_BYTES`.
        max_bytes: usize,
    },
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Closed,
}

/// Receiving from [`crate::Inbound`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The transport has been shut down and every queued frame was taken.
    #[error("the transport is shut down")]
    Closed,
    /// No frame arrived within the timeout.
    #[error("no frame arrived within the timeout")]
    Timeout,
}

/// Starting the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration value is out of range.
    #[error("transport config key {key}: {reason}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// What would be accepted.
        reason: String,
    },
    /// The cluster name is invalid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be bound or set up.
    #[error("cannot bind the QUIC endpoint on {addr}: {source}")]
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The network thread could not be started.
    #[error("cannot start the network thread: {0}")]
    Thread(std::io::Error),
}
