//! Shared fixtures: a cluster CA in a temporary directory, node configs on
//! loopback sockets bound to port 0, raw QUIC clients for bad-input tests.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::certs::{create_ca, issue_node_cert, CertificateAuthority};
use transport::{
    ConnectionTiming, Inbound, InboundFrame, NodeId, TlsMaterial, Transport, TransportConfig,
    TransportHandle,
};

pub const CLUSTER: &str = "test";

/// Upper bound of any wait in these tests.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: CertificateAuthority,
}

impl Pki {
    pub fn new(cluster: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = create_ca(&dir.path().join("ca"), cluster).expect("create CA");
        Pki { dir, ca }
    }

    /// TLS material of `node`, trusting `trusted` CAs.
    pub fn node_material(&self, node: NodeId, cluster: &str, trusted: &[&Pki]) -> TlsMaterial {
        let issued = issue_node_cert(&self.ca, node, cluster, &self.dir.path().join("nodes"))
            .expect("issue node cert");
        TlsMaterial {
            trusted_ca_pems: trusted.iter().map(|p| p.ca.cert_pem().to_owned()).collect(),
            cert_chain_pem: issued.cert_chain_pem,
            private_key_pem: issued.key_pem,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub fn bind_loopback() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind loopback")
}

/// Timing suited to tests: fast keep-alive, short idle timeout and backoff.
pub fn fast_timing() -> ConnectionTiming {
    ConnectionTiming {
        keep_alive_interval_ms: 200,
        idle_timeout_ms: 2_000,
        reconnect_backoff_initial_ms: 20,
        reconnect_backoff_max_ms: 200,
        hello_timeout_ms: 2_000,
    }
}

pub fn config(
    node: NodeId,
    socket: &UdpSocket,
    peers: &[(NodeId, SocketAddr)],
    tls: TlsMaterial,
) -> TransportConfig {
    let mut config = TransportConfig::new(node, socket.local_addr().unwrap(), CLUSTER, tls);
    config.peers = peers.iter().copied().collect::<BTreeMap<_, _>>();
    config.timing = fast_timing();
    config
}

pub struct Node {
    pub handle: TransportHandle,
    pub inbound: Inbound,
}

/// Starts one node per id, all trusting `pki`, each knowing all others.
pub fn start_cluster(pki: &Pki, ids: &[NodeId]) -> Vec<Node> {
    let sockets: Vec<UdpSocket> = ids.iter().map(|_| bind_loopback()).collect();
    let addrs: Vec<(NodeId, SocketAddr)> = ids
        .iter()
        .zip(&sockets)
        .map(|(id, s)| (*id, s.local_addr().unwrap()))
        .collect();
    ids.iter()
        .zip(sockets)
        .map(|(&id, socket)| {
            let peers: Vec<_> = addrs.iter().copied().filter(|(p, _)| *p != id).collect();
            let config = config(id, &socket, &peers, pki.node_material(id, CLUSTER, &[pki]));
            let (handle, inbound) = Transport::start_with_socket(config, socket).expect("start");
            Node { handle, inbound }
        })
        .collect()
}

/// Waits until `condition` holds, panicking after `WAIT_LIMIT`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn recv(inbound: &Inbound) -> InboundFrame {
    inbound
        .recv_timeout(WAIT_LIMIT)
        .expect("a frame within the wait limit")
}

/// A raw QUIC client endpoint presenting `material`, for tests that speak
/// the wire protocol by hand.
pub fn raw_client(material: &TlsMaterial) -> quinn::Endpoint {
    let crypto = transport::tls::quic_client_crypto(material).expect("client crypto");
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("client");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// The hello frame claiming `node`.
pub fn hello(node: NodeId) -> Vec<u8> {
    let mut bytes = transport::frame::FrameHeader::hello().to_bytes().to_vec();
    bytes.extend_from_slice(&transport::frame::hello_payload(node));
    bytes
}
