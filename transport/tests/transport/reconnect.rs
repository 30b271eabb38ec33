//! Reconnection: after a peer restarts on the same address, the link comes
//! back (the dialer redials with backoff; the acceptor takes the new
//! connection) and queued frames are delivered.

use crate::common::*;
use bytes::Bytes;
use std::net::UdpSocket;
use transport::{TrafficClass, Transport};

fn exchange(a: &Node, b: &Node, partition: u32) {
    let (ida, idb) = (a.handle.node_id(), b.handle.node_id());
    a.handle
        .try_send(
            idb,
            TrafficClass::Replication,
            partition,
            Bytes::from_static(b"ping"),
        )
        .unwrap();
    let frame = recv(&b.inbound);
    assert_eq!((frame.from, frame.partition), (ida, partition));
    b.handle
        .try_send(
            ida,
            TrafficClass::Replication,
            partition,
            Bytes::from_static(b"pong"),
        )
        .unwrap();
    let frame = recv(&a.inbound);
    assert_eq!((frame.from, frame.partition), (idb, partition));
}

fn restart(
    pki: &Pki,
    id: u32,
    socket_addr: std::net::SocketAddr,
    peer: (u32, std::net::SocketAddr),
) -> Node {
    let socket = UdpSocket::bind(socket_addr).expect("rebind the same port");
    let config = config(id, &socket, &[peer], pki.node_material(id, CLUSTER, &[pki]));
    let (handle, inbound) = Transport::start_with_socket(config, socket).unwrap();
    Node { handle, inbound }
}

#[test]
fn the_dialer_reconnects_after_the_acceptor_restarts() {
    let pki = Pki::new(CLUSTER);
    let mut nodes = start_cluster(&pki, &[1, 2]);
    exchange(&nodes[0], &nodes[1], 1);
    let addr1 = nodes[0].handle.local_addr();
    let addr2 = nodes[1].handle.local_addr();
    let old = nodes.pop().unwrap();
    old.handle.shutdown();
    wait_until("node 1 to notice the loss", || {
        !nodes[0].handle.is_connected(2)
    });
    // Queued while node 2 is down; delivered after it is back.
    nodes[0]
        .handle
        .try_send(2, TrafficClass::Command, 77, Bytes::from_static(b"queued"))
        .unwrap();
    let new2 = restart(&pki, 2, addr2, (1, addr1));
    let frame = recv(&new2.inbound);
    assert_eq!((frame.from, frame.partition), (1, 77));
    exchange(&nodes[0], &new2, 2);
    let stats = nodes[0].handle.stats();
    assert!(stats.connections_established >= 2, "{stats:?}");
    assert!(stats.connections_lost >= 1, "{stats:?}");
    nodes[0].handle.shutdown();
    new2.handle.shutdown();
}

#[test]
fn the_acceptor_takes_the_new_connection_after_the_dialer_restarts() {
    let pki = Pki::new(CLUSTER);
    let mut nodes = start_cluster(&pki, &[1, 2]);
    exchange(&nodes[0], &nodes[1], 1);
    let addr1 = nodes[0].handle.local_addr();
    let addr2 = nodes[1].handle.local_addr();
    let old = nodes.remove(0);
    old.handle.shutdown();
    wait_until("node 2 to notice the loss", || {
        !nodes[0].handle.is_connected(1)
    });
    nodes[0]
        .handle
        .try_send(1, TrafficClass::Control, 5, Bytes::from_static(b"queued"))
        .unwrap();
    let new1 = restart(&pki, 1, addr1, (2, addr2));
    let frame = recv(&new1.inbound);
    assert_eq!((frame.from, frame.partition), (2, 5));
    exchange(&new1, &nodes[0], 2);
    assert!(nodes[0].handle.stats().connections_established >= 2);
    new1.handle.shutdown();
    nodes[0].handle.shutdown();
}
