//! Keep-alive and idle timeout: an idle but healthy connection stays up
//! longer than the idle timeout; a peer that goes silent (no close, no
//! packets) is declared lost after the idle timeout and redialed once it is
//! reachable again.

use crate::common::*;
use bytes::Bytes;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use transport::{TrafficClass, Transport};

/// Most datagrams the forwarder passes in one direction, whatever happens.
const MAX_FORWARDED: u64 = 1_000_000;

/// A loopback UDP forwarder between one client and one target that can be
/// told to drop everything (a silent network partition).
struct Forwarder {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Forwarder {
    fn start(target: SocketAddr) -> Forwarder {
        let listen = UdpSocket::bind("127.0.0.1:0").expect("bind the forwarder");
        let upstream = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
        upstream.connect(target).expect("connect upstream");
        for socket in [&listen, &upstream] {
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
        }
        let addr = listen.local_addr().expect("address");
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let (listen, upstream) = (Arc::new(listen), Arc::new(upstream));
        let outbound = {
            let (listen, upstream) = (listen.clone(), upstream.clone());
            let (silent, stop, client) = (silent.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut forwarded = 0;
                while !stop.load(Ordering::Relaxed) && forwarded < MAX_FORWARDED {
                    let Ok((len, from)) = listen.recv_from(&mut buf) else {
                        continue;
                    };
                    *client.lock().expect("lock") = Some(from);
                    if !silent.load(Ordering::Relaxed) {
                        let _ = upstream.send(&buf[..len]);
                        forwarded += 1;
                    }
                }
            })
        };
        let inbound = {
            let (silent, stop) = (silent.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut forwarded = 0;
                while !stop.load(Ordering::Relaxed) && forwarded < MAX_FORWARDED {
                    let Ok(len) = upstream.recv(&mut buf) else {
                        continue;
                    };
                    let to = *client.lock().expect("lock");
                    if let (Some(to), false) = (to, silent.load(Ordering::Relaxed)) {
                        let _ = listen.send_to(&buf[..len], to);
                        forwarded += 1;
                    }
                }
            })
        };
        Forwarder {
            addr,
            silent,
            stop,
            threads: vec![outbound, inbound],
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn ping(from: &Node, to: &Node, partition: u32) {
    from.handle
        .try_send(
            to.handle.node_id(),
            TrafficClass::Control,
            partition,
            Bytes::from_static(b"ping"),
        )
        .expect("queued");
    let frame = recv(&to.inbound);
    assert_eq!(
        (frame.from, frame.partition),
        (from.handle.node_id(), partition)
    );
}

#[test]
fn keep_alive_holds_an_idle_connection_open_past_the_idle_timeout() {
    let pki = Pki::new(CLUSTER);
    let nodes = start_cluster(&pki, &[1, 2]);
    ping(&nodes[0], &nodes[1], 1);
    // No frames for three idle timeouts: only keep-alive packets flow.
    std::thread::sleep(Duration::from_millis(3 * fast_timing().idle_timeout_ms));
    for node in &nodes {
        let stats = node.handle.stats();
        assert_eq!(stats.connections_lost, 0, "{stats:?}");
        assert_eq!(stats.connections_established, 1, "{stats:?}");
    }
    ping(&nodes[1], &nodes[0], 2);
    for node in &nodes {
        node.handle.shutdown();
    }
}

#[test]
fn a_silent_peer_is_dropped_after_the_idle_timeout_and_redialed() {
    let pki = Pki::new(CLUSTER);
    let socket1 = bind_loopback();
    let socket2 = bind_loopback();
    let addr1 = socket1.local_addr().expect("address");
    let addr2 = socket2.local_addr().expect("address");
    let forwarder = Forwarder::start(addr2);
    // Node 1 dials node 2 through the forwarder; node 2 never dials.
    let config2 = config(
        2,
        &socket2,
        &[(1, addr1)],
        pki.node_material(2, CLUSTER, &[&pki]),
    );
    let config1 = config(
        1,
        &socket1,
        &[(2, forwarder.addr)],
        pki.node_material(1, CLUSTER, &[&pki]),
    );
    let (handle2, inbound2) = Transport::start_with_socket(config2, socket2).expect("start 2");
    let (handle1, inbound1) = Transport::start_with_socket(config1, socket1).expect("start 1");
    let node1 = Node {
        handle: handle1,
        inbound: inbound1,
    };
    let node2 = Node {
        handle: handle2,
        inbound: inbound2,
    };
    ping(&node1, &node2, 1);
    ping(&node2, &node1, 2);

    let ends1 = node1.handle.connection_ends(2).expect("a peer");
    let ends2 = node2.handle.connection_ends(1).expect("a peer");
    assert_eq!((*ends1.borrow(), *ends2.borrow()), (0, 0));
    assert!(node1.handle.connection_ends(9).is_none(), "not a peer");

    // The network goes silent: no close frame reaches either side.
    forwarder.silent.store(true, Ordering::Relaxed);
    wait_until("both sides to drop the silent connection", || {
        !node1.handle.is_connected(2) && !node2.handle.is_connected(1)
    });
    // Whoever waits for an answer over the lost connection hears of it.
    assert!(ends1.has_changed().expect("open") && *ends1.borrow() >= 1);
    assert!(ends2.has_changed().expect("open") && *ends2.borrow() >= 1);
    assert!(node1.handle.stats().connections_lost >= 1);
    assert!(node2.handle.stats().connections_lost >= 1);

    // Reachable again: node 1 redials and frames flow both ways.
    forwarder.silent.store(false, Ordering::Relaxed);
    wait_until("node 1 to redial node 2", || {
        node1.handle.is_connected(2) && node2.handle.is_connected(1)
    });
    ping(&node1, &node2, 3);
    ping(&node2, &node1, 4);
    assert!(node1.handle.stats().connections_established >= 2);
    node1.handle.shutdown();
    node2.handle.shutdown();
}
