//! Mutual TLS: peers are accepted only with a certificate that chains to a
//! trusted cluster CA and names the node id they claim; two CAs can be
//! trusted at once during a rotation.

use crate::common::*;
use bytes::Bytes;
use std::time::Duration;
use transport::certs::issue_client_cert;
use transport::{CloseCode, TlsMaterial, TrafficClass, Transport};

fn start_pair(
    m1: TlsMaterial,
    m2: TlsMaterial,
) -> (transport::TransportHandle, transport::TransportHandle, Node) {
    let (s1, s2) = (bind_loopback(), bind_loopback());
    let (a1, a2) = (s1.local_addr().unwrap(), s2.local_addr().unwrap());
    let (h1, _in1) = Transport::start_with_socket(config(1, &s1, &[(2, a2)], m1), s1).unwrap();
    let (h2, in2) = Transport::start_with_socket(config(2, &s2, &[(1, a1)], m2), s2).unwrap();
    let node2 = Node {
        handle: h2.clone(),
        inbound: in2,
    };
    (h1, h2, node2)
}

/// Asserts that no connection forms and no frame gets through while the
/// acceptor refuses at least one attempt.
fn assert_refused(h1: &transport::TransportHandle, node2: &Node) {
    wait_until("a refused connection at node 2", || {
        node2.handle.stats().connections_refused >= 1
    });
    let _ = h1.try_send(2, TrafficClass::Control, 0, Bytes::from_static(b"x"));
    assert!(node2
        .inbound
        .recv_timeout(Duration::from_millis(500))
        .is_err());
    assert!(!h1.is_connected(2));
    assert!(!node2.handle.is_connected(1));
    assert_eq!(node2.handle.stats().frames_received, 0);
}

#[test]
fn nodes_with_certificates_from_two_trusted_cas_connect_during_rotation() {
    let old = Pki::new(CLUSTER);
    let new = Pki::new(CLUSTER);
    let m1 = old.node_material(1, CLUSTER, &[&old, &new]);
    let m2 = new.node_material(2, CLUSTER, &[&old, &new]);
    let (h1, h2, node2) = start_pair(m1, m2);
    h1.try_send(2, TrafficClass::Control, 3, Bytes::from_static(b"rotated"))
        .unwrap();
    let frame = recv(&node2.inbound);
    assert_eq!(
        (frame.from, frame.payload),
        (1, Bytes::from_static(b"rotated"))
    );
    h1.shutdown();
    h2.shutdown();
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let ours = Pki::new(CLUSTER);
    let theirs = Pki::new(CLUSTER);
    // Node 1 dials with a certificate node 2 does not trust.
    let m1 = theirs.node_material(1, CLUSTER, &[&ours, &theirs]);
    let m2 = ours.node_material(2, CLUSTER, &[&ours]);
    let (h1, h2, node2) = start_pair(m1, m2);
    assert_refused(&h1, &node2);
    h1.shutdown();
    h2.shutdown();
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let ours = Pki::new(CLUSTER);
    let theirs = Pki::new(CLUSTER);
    // Node 1 dials a node 2 whose certificate it does not trust.
    let m1 = ours.node_material(1, CLUSTER, &[&ours]);
    let m2 = theirs.node_material(2, CLUSTER, &[&ours, &theirs]);
    let (h1, h2, node2) = start_pair(m1, m2);
    assert_refused(&h1, &node2);
    h1.shutdown();
    h2.shutdown();
}

#[test]
fn a_server_certificate_naming_another_node_is_refused() {
    let pki = Pki::new(CLUSTER);
    // Node 1 believes node 2 is at this address, but node 3 answers there.
    let (s1, s3) = (bind_loopback(), bind_loopback());
    let (a1, a3) = (s1.local_addr().unwrap(), s3.local_addr().unwrap());
    let m1 = pki.node_material(1, CLUSTER, &[&pki]);
    let m3 = pki.node_material(3, CLUSTER, &[&pki]);
    let (h1, _in1) = Transport::start_with_socket(config(1, &s1, &[(2, a3)], m1), s1).unwrap();
    let (h3, in3) = Transport::start_with_socket(config(3, &s3, &[(1, a1)], m3), s3).unwrap();
    let node3 = Node {
        handle: h3.clone(),
        inbound: in3,
    };
    wait_until("node 3 to see the refused handshake", || {
        node3.handle.stats().connections_refused >= 1
    });
    let _ = h1.try_send(2, TrafficClass::Control, 0, Bytes::from_static(b"x"));
    assert!(node3
        .inbound
        .recv_timeout(Duration::from_millis(500))
        .is_err());
    assert!(!h1.is_connected(2));
    h1.shutdown();
    h3.shutdown();
}

/// Connects a raw client presenting `material`, sends a hello claiming
/// `claimed`, and returns how the node closed the connection.
fn raw_hello(
    material: &TlsMaterial,
    server: std::net::SocketAddr,
    claimed: u32,
) -> quinn::ConnectionError {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint = raw_client(material);
        let connection = endpoint
            .connect(server, &transport::identity::node_dns_name(9, CLUSTER))
            .unwrap()
            .await
            .expect("TLS handshake succeeds: the chain is trusted");
        let mut stream = connection.open_uni().await.unwrap();
        // The node may close before the write completes; the close reason
        // is what is checked.
        let _ = stream.write_all(&hello(claimed)).await;
        tokio::time::timeout(WAIT_LIMIT, connection.closed())
            .await
            .expect("the node closes the connection")
    })
}

fn assert_identity_refused(error: quinn::ConnectionError, reason_part: &str) {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                CloseCode::from_code(close.error_code),
                Some(CloseCode::IdentityRefused)
            );
            let reason = String::from_utf8_lossy(&close.reason);
            assert!(reason.contains(reason_part), "reason {reason:?}");
        }
        other => panic!("expected an application close, got {other}"),
    }
}

#[test]
fn a_client_certificate_naming_another_node_is_refused() {
    let pki = Pki::new(CLUSTER);
    let nodes = start_cluster(&pki, &[3, 9]);
    let server = nodes[1].handle.local_addr();
    // A valid node-4 certificate claiming node 3, a configured peer.
    let node4 = pki.node_material(4, CLUSTER, &[&pki]);
    assert_identity_refused(raw_hello(&node4, server, 3), "does not name node-3.test");
    // A client (not node) certificate claiming node 3.
    let client = issue_client_cert(&pki.ca, "ops", CLUSTER, pki.dir()).unwrap();
    let client_material = TlsMaterial {
        trusted_ca_pems: vec![pki.ca.cert_pem().to_owned()],
        cert_chain_pem: client.cert_chain_pem,
        private_key_pem: client.key_pem,
    };
    assert_identity_refused(
        raw_hello(&client_material, server, 3),
        "does not name node-3.test",
    );
    // A node-3 certificate claiming node 1, which node 9 does not know.
    let node3 = pki.node_material(3, CLUSTER, &[&pki]);
    assert_identity_refused(raw_hello(&node3, server, 1), "not a configured peer");
    assert!(nodes[1].handle.stats().connections_refused >= 3);
    // Node 3 itself is still connected and served.
    nodes[0]
        .handle
        .try_send(9, TrafficClass::Command, 1, Bytes::from_static(b"ok"))
        .unwrap();
    assert_eq!(recv(&nodes[1].inbound).from, 3);
    for node in &nodes {
        node.handle.shutdown();
    }
}
