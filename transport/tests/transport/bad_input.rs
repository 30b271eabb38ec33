//! Bad input after a successful handshake and hello: an oversized frame, an
//! unknown message type or garbage closes that connection with a reason,
//! and the node keeps serving its other peers.

use crate::common::*;
use bytes::Bytes;
use std::net::SocketAddr;
use transport::frame::{FrameHeader, FrameKind};
use transport::{CloseCode, TlsMaterial, TrafficClass, Transport, MAX_FRAME_PAYLOAD_BYTES};

/// A node 9 whose peers are node 1 (played by a raw client) and node 2 (a
/// real transport).
struct Setup {
    pki: Pki,
    node9: Node,
    node2: Node,
}

fn setup() -> Setup {
    let pki = Pki::new(CLUSTER);
    let (s9, s2) = (bind_loopback(), bind_loopback());
    let (a9, a2) = (s9.local_addr().unwrap(), s2.local_addr().unwrap());
    // Node 1 never listens: node 9 waits for it to dial.
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let c9 = config(
        9,
        &s9,
        &[(1, unused), (2, a2)],
        pki.node_material(9, CLUSTER, &[&pki]),
    );
    let c2 = config(2, &s2, &[(9, a9)], pki.node_material(2, CLUSTER, &[&pki]));
    let (h9, in9) = Transport::start_with_socket(c9, s9).unwrap();
    let (h2, in2) = Transport::start_with_socket(c2, s2).unwrap();
    Setup {
        pki,
        node9: Node {
            handle: h9,
            inbound: in9,
        },
        node2: Node {
            handle: h2,
            inbound: in2,
        },
    }
}

/// Sends a hello claiming node 1, then `bytes` on the same stream, and
/// returns how node 9 closed the connection.
fn send_after_hello(
    runtime: &tokio::runtime::Runtime,
    material: &TlsMaterial,
    server: SocketAddr,
    bytes: Vec<u8>,
) -> quinn::ConnectionError {
    runtime.block_on(async {
        let endpoint = raw_client(material);
        let connection = endpoint
            .connect(server, &transport::identity::node_dns_name(9, CLUSTER))
            .unwrap()
            .await
            .expect("handshake");
        let mut stream = connection.open_uni().await.unwrap();
        let mut all = hello(1);
        all.extend_from_slice(&bytes);
        let _ = stream.write_all(&all).await;
        tokio::time::timeout(WAIT_LIMIT, connection.closed())
            .await
            .expect("node 9 closes the connection")
    })
}

fn assert_violation(error: quinn::ConnectionError, reason_part: &str) {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                CloseCode::from_code(close.error_code),
                Some(CloseCode::ProtocolViolation)
            );
            let reason = String::from_utf8_lossy(&close.reason);
            assert!(reason.contains(reason_part), "reason {reason:?}");
        }
        other => panic!("expected an application close, got {other}"),
    }
}

/// Node 9 still exchanges frames with node 2.
fn assert_still_serving(setup: &Setup, round: u32) {
    setup
        .node2
        .handle
        .try_send(
            9,
            TrafficClass::Replication,
            round,
            Bytes::from_static(b"to 9"),
        )
        .unwrap();
    let frame = recv(&setup.node9.inbound);
    assert_eq!((frame.from, frame.partition), (2, round));
    setup
        .node9
        .handle
        .try_send(2, TrafficClass::Command, round, Bytes::from_static(b"to 2"))
        .unwrap();
    let frame = recv(&setup.node2.inbound);
    assert_eq!((frame.from, frame.partition), (9, round));
}

#[test]
fn bad_frames_close_only_the_offending_connection() {
    let setup = setup();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = setup.node9.handle.local_addr();
    let node1 = setup.pki.node_material(1, CLUSTER, &[&setup.pki]);
    assert_still_serving(&setup, 0);

    // Oversized: a header announcing one byte more than the maximum.
    let mut oversized = FrameHeader::new(FrameKind::Command, 0, 0)
        .unwrap()
        .to_bytes();
    oversized[..4].copy_from_slice(&(MAX_FRAME_PAYLOAD_BYTES as u32 + 1).to_le_bytes());
    let error = send_after_hello(&runtime, &node1, server, oversized.to_vec());
    assert_violation(error, "exceeds the maximum");
    assert_still_serving(&setup, 1);

    // Unknown message type.
    let mut unknown = FrameHeader::new(FrameKind::Command, 0, 2)
        .unwrap()
        .to_bytes()
        .to_vec();
    unknown[7] = 0xee;
    unknown.extend_from_slice(b"hi");
    let error = send_after_hello(&runtime, &node1, server, unknown);
    assert_violation(error, "unknown message type 238");
    assert_still_serving(&setup, 2);

    // Garbage.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let error = send_after_hello(&runtime, &node1, server, garbage);
    assert_violation(error, "bad frame magic");
    assert_still_serving(&setup, 3);

    // A second hello after the handshake.
    let error = send_after_hello(&runtime, &node1, server, hello(1));
    assert_violation(error, "unexpected hello");
    assert_still_serving(&setup, 4);

    assert_eq!(setup.node9.handle.stats().protocol_violations, 4);

    // A well-behaved node 1 is still accepted afterwards.
    let delivered = runtime.block_on(async {
        let endpoint = raw_client(&node1);
        let connection = endpoint
            .connect(server, &transport::identity::node_dns_name(9, CLUSTER))
            .unwrap()
            .await
            .unwrap();
        let mut stream = connection.open_uni().await.unwrap();
        let mut bytes = hello(1);
        bytes.extend_from_slice(
            &FrameHeader::new(FrameKind::Control, 5, 4)
                .unwrap()
                .to_bytes(),
        );
        bytes.extend_from_slice(b"good");
        stream.write_all(&bytes).await.unwrap();
        let frame = tokio::task::spawn_blocking({
            let inbound = setup.node9.inbound.clone();
            move || recv(&inbound)
        })
        .await
        .unwrap();
        connection.close(0u32.into(), b"done");
        frame
    });
    assert_eq!(
        (
            delivered.from,
            delivered.class,
            delivered.partition,
            delivered.payload
        ),
        (1, TrafficClass::Control, 5, Bytes::from_static(b"good"))
    );
    setup.node9.handle.shutdown();
    setup.node2.handle.shutdown();
}

#[test]
fn garbage_instead_of_a_hello_is_refused() {
    let setup = setup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = setup.node9.handle.local_addr();
    let node1 = setup.pki.node_material(1, CLUSTER, &[&setup.pki]);
    let error = runtime.block_on(async {
        let endpoint = raw_client(&node1);
        let connection = endpoint
            .connect(server, &transport::identity::node_dns_name(9, CLUSTER))
            .unwrap()
            .await
            .unwrap();
        let mut stream = connection.open_uni().await.unwrap();
        let _ = stream.write_all(&[0xab; 64]).await;
        tokio::time::timeout(WAIT_LIMIT, connection.closed())
            .await
            .unwrap()
    });
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                CloseCode::from_code(close.error_code),
                Some(CloseCode::IdentityRefused)
            );
            assert!(String::from_utf8_lossy(&close.reason).contains("bad hello"));
        }
        other => panic!("expected an application close, got {other}"),
    }
    assert_still_serving(&setup, 0);
    setup.node9.handle.shutdown();
    setup.node2.handle.shutdown();
}
