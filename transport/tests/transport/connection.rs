//! Frames flow between nodes on every class; queues are bounded and a slow
//! consumer makes senders see `Full` without stalling other classes.

use crate::common::*;
use bytes::Bytes;
use std::time::{Duration, Instant};
use transport::{
    QueueBounds, RecvError, SendError, StartError, TrafficClass, Transport, MAX_FRAME_PAYLOAD_BYTES,
};

#[test]
fn frames_flow_between_every_pair_on_every_class() {
    let pki = Pki::new(CLUSTER);
    let ids = [1, 2, 3];
    let nodes = start_cluster(&pki, &ids);
    for (i, from) in nodes.iter().enumerate() {
        for to in ids.iter().filter(|&&to| to != ids[i]) {
            for class in TrafficClass::ALL {
                let payload = format!("{}->{} {:?}", ids[i], to, class);
                from.handle
                    .try_send(*to, class, 40 + class.index() as u32, Bytes::from(payload))
                    .expect("queued");
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        for class in TrafficClass::ALL {
            let receiver = node.inbound.receiver(class);
            let mut senders = Vec::new();
            for _ in 0..ids.len() - 1 {
                let frame = receiver.recv_timeout(WAIT_LIMIT).expect("frame");
                assert_eq!(frame.class, class);
                assert_eq!(frame.partition, 40 + class.index() as u32);
                assert_eq!(
                    frame.payload,
                    Bytes::from(format!("{}->{} {:?}", frame.from, ids[i], class))
                );
                senders.push(frame.from);
            }
            senders.sort_unstable();
            let expected: Vec<_> = ids.iter().copied().filter(|&id| id != ids[i]).collect();
            assert_eq!(senders, expected);
        }
    }
    for node in &nodes {
        assert!(node.handle.peers().all(|p| node.handle.is_connected(p)));
        // The counter is bumped just after the frame is handed over.
        wait_until("frames_received to count 6", || {
            node.handle.stats().frames_received == 6
        });
        assert_eq!(node.handle.stats().protocol_violations, 0);
    }
    for node in &nodes {
        node.handle.shutdown();
    }
}

#[test]
fn frames_of_one_class_arrive_in_order_and_intact() {
    let pki = Pki::new(CLUSTER);
    let nodes = start_cluster(&pki, &[1, 2]);
    const FRAMES: usize = 200;
    let mut sent = 0;
    let deadline = Instant::now() + WAIT_LIMIT;
    while sent < FRAMES {
        assert!(Instant::now() < deadline, "sending stalled");
        let payload = Bytes::from(vec![sent as u8; 1 + sent * 97 % 20_000]);
        match nodes[1]
            .handle
            .try_send(1, TrafficClass::Replication, sent as u32, payload)
        {
            Ok(()) => sent += 1,
            Err(SendError::Full) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("send failed: {e}"),
        }
    }
    for i in 0..FRAMES {
        let frame = recv(&nodes[0].inbound);
        assert_eq!(frame.from, 2);
        assert_eq!(frame.partition, i as u32);
        assert_eq!(frame.payload.len(), 1 + i * 97 % 20_000);
        assert!(frame.payload.iter().all(|&b| b == i as u8));
    }
    // The largest allowed frame passes.
    let big = Bytes::from(vec![7u8; MAX_FRAME_PAYLOAD_BYTES]);
    nodes[0]
        .handle
        .try_send(2, TrafficClass::Replication, 1, big.clone())
        .unwrap();
    assert_eq!(recv(&nodes[1].inbound).payload, big);
    for node in &nodes {
        node.handle.shutdown();
    }
}

#[test]
fn a_full_replication_queue_refuses_sends_but_control_still_flows() {
    let pki = Pki::new(CLUSTER);
    let (s1, s2) = (bind_loopback(), bind_loopback());
    let (a1, a2) = (s1.local_addr().unwrap(), s2.local_addr().unwrap());
    let mut c1 = config(1, &s1, &[(2, a2)], pki.node_material(1, CLUSTER, &[&pki]));
    c1.queues = QueueBounds {
        outbound_frames_per_class: 8,
        ..QueueBounds::default()
    };
    let mut c2 = config(2, &s2, &[(1, a1)], pki.node_material(2, CLUSTER, &[&pki]));
    c2.queues = QueueBounds {
        inbound_frames_per_class: 4,
        ..QueueBounds::default()
    };
    let (h1, _in1) = Transport::start_with_socket(c1, s1).unwrap();
    let (h2, in2) = Transport::start_with_socket(c2, s2).unwrap();
    wait_until("connection", || h1.is_connected(2));

    // Node 2 does not read replication: its inbound channel, then the QUIC
    // flow-control window, then node 1's queue fill up.
    const MAX_ATTEMPTS: usize = 5_000;
    let chunk = Bytes::from(vec![1u8; 64 * 1024]);
    let mut accepted = 0usize;
    let mut refused = false;
    let deadline = Instant::now() + WAIT_LIMIT;
    for _ in 0..MAX_ATTEMPTS {
        match h1.try_send(2, TrafficClass::Replication, 0, chunk.clone()) {
            Ok(()) => accepted += 1,
            Err(SendError::Full) => {
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(refused, "no Full after {accepted} frames of 64 KiB");
    assert!(h1.stats().sends_refused_full >= 1);
    let window_frames = (transport::STREAM_RECEIVE_WINDOW_BYTES as usize) / chunk.len();
    assert!(
        accepted <= window_frames + 80,
        "{accepted} frames accepted: more than queue, window and channel hold"
    );

    // Control is a separate stream and channel: it still arrives.
    h1.try_send(
        2,
        TrafficClass::Control,
        9,
        Bytes::from_static(b"heartbeat"),
    )
    .unwrap();
    let control = in2
        .receiver(TrafficClass::Control)
        .recv_timeout(WAIT_LIMIT)
        .unwrap();
    assert_eq!(control.payload, Bytes::from_static(b"heartbeat"));

    // Draining replication lets everything accepted through, in order.
    let replication = in2.receiver(TrafficClass::Replication);
    for _ in 0..accepted {
        let frame = replication.recv_timeout(WAIT_LIMIT).unwrap();
        assert_eq!(frame.payload.len(), chunk.len());
    }
    h1.try_send(2, TrafficClass::Replication, 0, chunk.clone())
        .expect("queue has room again");
    assert_eq!(replication.recv_timeout(WAIT_LIMIT).unwrap().payload, chunk);
    h1.shutdown();
    h2.shutdown();
}

#[test]
fn refusals_name_their_cause_and_shutdown_closes_both_sides() {
    let pki = Pki::new(CLUSTER);
    let nodes = start_cluster(&pki, &[1, 2]);
    let h = &nodes[0].handle;
    assert_eq!(
        h.try_send(7, TrafficClass::Command, 0, Bytes::new()),
        Err(SendError::UnknownPeer { node_id: 7 })
    );
    assert!(matches!(
        h.try_send(
            2,
            TrafficClass::Command,
            0,
            Bytes::from(vec![0; MAX_FRAME_PAYLOAD_BYTES + 1])
        ),
        Err(SendError::TooLarge { .. })
    ));
    h.shutdown();
    h.shutdown();
    assert_eq!(
        h.try_send(2, TrafficClass::Command, 0, Bytes::new()),
        Err(SendError::Closed)
    );
    assert_eq!(
        nodes[0].inbound.recv_timeout(Duration::from_secs(5)),
        Err(RecvError::Closed)
    );
    nodes[1].handle.shutdown();
}

#[test]
fn invalid_config_names_the_key() {
    let pki = Pki::new(CLUSTER);
    let socket = bind_loopback();
    let addr = socket.local_addr().unwrap();
    let mut bad = config(
        1,
        &socket,
        &[(1, addr)],
        pki.node_material(1, CLUSTER, &[&pki]),
    );
    let error = Transport::start_with_socket(bad.clone(), socket.try_clone().unwrap()).unwrap_err();
    assert!(
        matches!(error, StartError::Config { key: "peers", .. }),
        "{error}"
    );
    bad.peers.clear();
    bad.queues.inbound_frames_per_class = 0;
    let error = Transport::start_with_socket(bad.clone(), socket.try_clone().unwrap()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("queues.inbound_frames_per_class"),
        "{error}"
    );
    bad.queues = QueueBounds::default();
    bad.tls.trusted_ca_pems.clear();
    let error = Transport::start_with_socket(bad, socket).unwrap_err();
    assert!(matches!(error, StartError::Tls(_)), "{error}");
}
