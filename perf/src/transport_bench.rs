//! `waggle-perf transport`: QUIC+TLS between two nodes against raw UDP, in one
//! run, on loopback and through the WAN relay.
//!
//! For each path (loopback, then through a relay adding `--relay-delay-ms` in
//! each direction):
//! - baseline: round trips of a small UDP datagram to an echo thread;
//! - round trips of a small frame from node 1 to node 2 and back over the
//!   transport (QUIC, mutual TLS, control class), one outstanding at a time;
//! - bulk: 64 KiB replication frames from node 1 to node 2 as fast as the
//!   bounded queues accept them, after a warm-up; frames/s and MiB/s as
//!   received.
//!
//! Every loop is bounded in count and time. Certificates come from a scratch
//! cluster CA that is removed afterwards.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use transport::certs::{create_ca, issue_node_cert, CertificateAuthority};
use transport::{Inbound, TlsMaterial, TrafficClass, Transport, TransportConfig, TransportHandle};

use crate::relay::{self, Impairment};

/// Cluster name of the scratch CA.
const CLUSTER: &str = "perf";
/// Size of the bulk frames.
const BULK_FRAME_BYTES: usize = 64 << 10;
/// Largest round-trip time the histograms hold, in nanoseconds.
const MAX_RTT_NS: u64 = 10_000_000_000;
/// How long one round trip may take before the run fails.
const RTT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the two nodes may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause of the bulk sender when the outbound queue is full.
const FULL_QUEUE_PAUSE: Duration = Duration::from_micros(100);
/// Upper bound on bulk frames of one measurement.
const MAX_BULK_FRAMES: u64 = 10_000_000;

/// Options of this subcommand.
#[derive(clap::Args)]
pub struct Args {
    /// Most round trips per latency measurement.
    #[arg(long, default_value_t = 5_000)]
    round_trips: u64,
    /// Longest time per latency measurement, in seconds.
    #[arg(long, default_value_t = 5)]
    rtt_duration_s: u64,
    /// Payload of the small frames and datagrams, in bytes.
    #[arg(long, default_value_t = 64)]
    small_bytes: usize,
    /// Duration of each bulk measurement after its warm-up, in seconds.
    #[arg(long, default_value_t = 5)]
    bulk_duration_s: u64,
    /// Warm-up of each bulk measurement, in seconds (congestion window growth).
    #[arg(long, default_value_t = 2)]
    bulk_warmup_s: u64,
    /// Delay the relay adds in each direction, in milliseconds.
    #[arg(long, default_value_t = 40)]
    relay_delay_ms: u64,
    /// Print one JSON object on stdout (the table still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Round-trip latency figures in microseconds.
struct Rtt {
    p50_us: f64,
    p99_us: f64,
    count: u64,
}

/// Bulk throughput figures.
struct Bulk {
    frames_s: f64,
    mib_s: f64,
}

fn rtt_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_RTT_NS, 3).context("histogram bounds")
}

fn rtt_figures(histogram: &Histogram<u64>) -> Rtt {
    Rtt {
        p50_us: histogram.value_at_quantile(0.50) as f64 / 1000.0,
        p99_us: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        count: histogram.len(),
    }
}

/// A UDP echo thread on loopback; stops when `stop` is set.
fn udp_echo(stop: Arc<AtomicBool>) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the echo socket")?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .context("echo timeout")?;
    let addr = socket.local_addr().context("echo address")?;
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((len, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..len], from);
            }
        }
    });
    Ok((addr, thread))
}

/// Round trips of `small_bytes` datagrams to `target` (an echo, maybe
/// behind the relay).
fn udp_round_trips(target: SocketAddr, args: &Args) -> anyhow::Result<Rtt> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the client socket")?;
    socket
        .set_read_timeout(Some(RTT_TIMEOUT))
        .context("client timeout")?;
    let mut histogram = rtt_histogram()?;
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(args.rtt_duration_s);
    for k in 0..args.round_trips {
        if Instant::now() >= deadline {
            break;
        }
        let mut datagram = vec![0u8; args.small_bytes.max(8)];
        datagram[..8].copy_from_slice(&k.to_le_bytes());
        let began = Instant::now();
        socket.send_to(&datagram, target).context("sending")?;
        loop {
            let (len, _) = socket
                .recv_from(&mut buf)
                .with_context(|| format!("no echo of datagram {k} within {RTT_TIMEOUT:?}"))?;
            // A late echo of an earlier datagram is skipped.
            if len >= 8 && buf[..8] == k.to_le_bytes() {
                break;
            }
        }
        histogram.saturating_record(began.elapsed().as_nanos() as u64);
    }
    Ok(rtt_figures(&histogram))
}

/// The scratch cluster CA and its directory.
struct Pki {
    dir: PathBuf,
    ca: CertificateAuthority,
}

impl Pki {
    fn new() -> anyhow::Result<Pki> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "waggle-perf-transport-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let ca = create_ca(&dir.join("ca"), CLUSTER).context("creating the scratch CA")?;
        Ok(Pki { dir, ca })
    }

    fn material(&self, node: u32) -> anyhow::Result<TlsMaterial> {
        let issued = issue_node_cert(&self.ca, node, CLUSTER, &self.dir.join("nodes"))
            .with_context(|| format!("issuing the certificate of node {node}"))?;
        Ok(TlsMaterial {
            trusted_ca_pems: vec![self.ca.cert_pem().to_owned()],
            cert_chain_pem: issued.cert_chain_pem,
            private_key_pem: issued.key_pem,
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two started nodes: 1 dials 2, at `dial_addr` (node 2 itself or a relay).
struct Pair {
    node1: (TransportHandle, Inbound),
    node2: (TransportHandle, Inbound),
}

impl Pair {
    /// Starts node 2 and then node 1, which reaches node 2 at the address
    /// `route(node 2's address)` returns, with whatever must live as long as
    /// the pair (a relay).
    fn start<T>(
        pki: &Pki,
        route: impl FnOnce(SocketAddr) -> anyhow::Result<(SocketAddr, T)>,
    ) -> anyhow::Result<(Pair, T)> {
        let socket1 = UdpSocket::bind("127.0.0.1:0").context("binding node 1")?;
        let socket2 = UdpSocket::bind("127.0.0.1:0").context("binding node 2")?;
        let addr1 = socket1.local_addr().context("node 1 address")?;
        let addr2 = socket2.local_addr().context("node 2 address")?;
        let (dial_addr, extra) = route(addr2)?;
        let config = |node: u32, socket: &UdpSocket, peer: (u32, SocketAddr)| {
            let listen = socket.local_addr().context("local address")?;
            let mut config = TransportConfig::new(node, listen, CLUSTER, pki.material(node)?);
            config.peers.insert(peer.0, peer.1);
            anyhow::Ok(config)
        };
        let node2 = Transport::start_with_socket(config(2, &socket2, (1, addr1))?, socket2)
            .context("starting node 2")?;
        let node1 = Transport::start_with_socket(config(1, &socket1, (2, dial_addr))?, socket1)
            .context("starting node 1")?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while !(node1.0.is_connected(2) && node2.0.is_connected(1)) {
            ensure!(Instant::now() < deadline, "nodes 1 and 2 did not connect");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((Pair { node1, node2 }, extra))
    }

    fn shutdown(self) {
        self.node1.0.shutdown();
        self.node2.0.shutdown();
    }
}

/// Echoes every control frame node 2 receives back to its sender, until
/// `stop` is set.
fn echo_control(pair: &Pair, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let receiver = pair.node2.1.receiver(TrafficClass::Control);
    let handle = pair.node2.0.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(frame) = receiver.recv_timeout(Duration::from_millis(100)) {
                let _ = handle.try_send(
                    frame.from,
                    TrafficClass::Control,
                    frame.partition,
                    frame.payload,
                );
            }
        }
    })
}

/// Round trips of small control frames from node 1 to node 2 and back.
fn quic_round_trips(pair: &Pair, args: &Args) -> anyhow::Result<Rtt> {
    let stop = Arc::new(AtomicBool::new(false));
    let echo = echo_control(pair, stop.clone());
    let replies = pair.node1.1.receiver(TrafficClass::Control);
    let mut histogram = rtt_histogram()?;
    let payload = Bytes::from(vec![0x5au8; args.small_bytes]);
    let deadline = Instant::now() + Duration::from_secs(args.rtt_duration_s);
    let mut result = Ok(());
    for k in 0..args.round_trips {
        if Instant::now() >= deadline {
            break;
        }
        // The partition field carries the sequence number.
        let seq = k as u32;
        let began = Instant::now();
        if let Err(error) = pair
            .node1
            .0
            .try_send(2, TrafficClass::Control, seq, payload.clone())
        {
            result = Err(anyhow::anyhow!("sending round trip {k}: {error}"));
            break;
        }
        let reply = loop {
            match replies.recv_timeout(RTT_TIMEOUT) {
                Ok(frame) if frame.partition == seq => break Ok(()),
                Ok(_) => continue,
                Err(_) => break Err(anyhow::anyhow!("no reply to round trip {k}")),
            }
        };
        if let Err(error) = reply {
            result = Err(error);
            break;
        }
        histogram.saturating_record(began.elapsed().as_nanos() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    echo.join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))?;
    result?;
    Ok(rtt_figures(&histogram))
}

/// 64 KiB replication frames from node 1 to node 2 as fast as accepted.
fn quic_bulk(pair: &Pair, args: &Args) -> anyhow::Result<Bulk> {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = pair.node1.0.clone();
    let sender_stop = stop.clone();
    let sender = std::thread::spawn(move || {
        let frame = Bytes::from(vec![0xa5u8; BULK_FRAME_BYTES]);
        let mut sent = 0u64;
        while !sender_stop.load(Ordering::Relaxed) && sent < MAX_BULK_FRAMES {
            match handle.try_send(2, TrafficClass::Replication, 1, frame.clone()) {
                Ok(()) => sent += 1,
                Err(_) => std::thread::sleep(FULL_QUEUE_PAUSE),
            }
        }
    });
    let receiver = pair.node2.1.receiver(TrafficClass::Replication);
    let warmup_end = Instant::now() + Duration::from_secs(args.bulk_warmup_s);
    let end = warmup_end + Duration::from_secs(args.bulk_duration_s);
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut result = Ok(());
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        match receiver.recv_timeout(end - now) {
            Ok(frame) if Instant::now() >= warmup_end => {
                frames += 1;
                bytes += frame.payload.len() as u64;
            }
            Ok(_) => {}
            Err(_) if Instant::now() >= end => break,
            Err(_) => {
                result = Err(anyhow::anyhow!("the bulk receiver stopped"));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("bulk sender panicked"))?;
    // Drain what is in flight so that the next measurement starts clean.
    while receiver.recv_timeout(Duration::from_millis(200)).is_ok() {}
    result?;
    let secs = args.bulk_duration_s as f64;
    Ok(Bulk {
        frames_s: frames as f64 / secs,
        mib_s: bytes as f64 / secs / (1 << 20) as f64,
    })
}

fn rtt_row(name: &str, rtt: &Rtt) {
    eprintln!(
        "{name:<40} p50 {:>10.1} us  p99 {:>10.1} us  ({} round trips)",
        rtt.p50_us, rtt.p99_us, rtt.count
    );
}

fn bulk_row(name: &str, bulk: &Bulk) {
    eprintln!(
        "{name:<40} {:>10.0} frames/s  {:>8.1} MiB/s",
        bulk.frames_s, bulk.mib_s
    );
}

/// Measures one path; `prefix` names its JSON fields.
fn measure_path(
    out: &mut Map<String, Value>,
    prefix: &str,
    udp: &Rtt,
    pair: &Pair,
    args: &Args,
) -> anyhow::Result<()> {
    rtt_row(&format!("{prefix}: raw UDP echo"), udp);
    let rtt = quic_round_trips(pair, args)?;
    rtt_row(&format!("{prefix}: QUIC+TLS frame round trip"), &rtt);
    let bulk = quic_bulk(pair, args)?;
    bulk_row(&format!("{prefix}: QUIC+TLS 64 KiB frames"), &bulk);
    let ratio_p50 = rtt.p50_us / udp.p50_us;
    let ratio_p99 = rtt.p99_us / udp.p99_us;
    eprintln!("{prefix}: QUIC/UDP round trip p50 x{ratio_p50:.2}, p99 x{ratio_p99:.2}");
    for (key, value) in [
        ("udp_rtt_p50_us", udp.p50_us),
        ("udp_rtt_p99_us", udp.p99_us),
        ("quic_rtt_p50_us", rtt.p50_us),
        ("quic_rtt_p99_us", rtt.p99_us),
        ("ratio_rtt_p50_quic_vs_udp", ratio_p50),
        ("ratio_rtt_p99_quic_vs_udp", ratio_p99),
        ("bulk_64k_frames_s", bulk.frames_s),
        ("bulk_64k_mib_s", bulk.mib_s),
    ] {
        out.insert(format!("{prefix}_{key}"), json!(value));
    }
    out.insert(format!("{prefix}_udp_round_trips"), json!(udp.count));
    out.insert(format!("{prefix}_quic_round_trips"), json!(rtt.count));
    Ok(())
}

fn measure(args: &Args, pki: &Pki) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    out.insert("small_bytes".into(), json!(args.small_bytes));
    out.insert("bulk_frame_bytes".into(), json!(BULK_FRAME_BYTES));
    out.insert("relay_delay_ms_each_way".into(), json!(args.relay_delay_ms));

    let stop_echo = Arc::new(AtomicBool::new(false));
    let (echo_addr, echo) = udp_echo(stop_echo.clone())?;
    let measured = (|| {
        let udp = udp_round_trips(echo_addr, args)?;
        let (pair, ()) = Pair::start(pki, |addr| Ok((addr, ())))?;
        let result = measure_path(&mut out, "loopback", &udp, &pair, args);
        pair.shutdown();
        result?;

        let impairment = Impairment {
            delay: Duration::from_millis(args.relay_delay_ms),
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        let udp_relay = relay::spawn(any_port, echo_addr, impairment)?;
        let udp = udp_round_trips(udp_relay.local_addr, args);
        udp_relay.stop()?;
        let udp = udp?;
        let (pair, quic_relay) = Pair::start(pki, |addr| {
            let relay = relay::spawn(any_port, addr, impairment)?;
            Ok((relay.local_addr, relay))
        })?;
        let result = measure_path(&mut out, "relay", &udp, &pair, args);
        pair.shutdown();
        let counters = &quic_relay.counters;
        out.insert(
            "relay_forwarded_datagrams".into(),
            json!(counters.forwarded.load(Ordering::Relaxed)),
        );
        out.insert(
            "relay_overflowed_datagrams".into(),
            json!(counters.overflowed.load(Ordering::Relaxed)),
        );
        quic_relay.stop()?;
        result
    })();
    stop_echo.store(true, Ordering::Relaxed);
    echo.join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))?;
    measured?;
    Ok(out)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.round_trips > 0, "--round-trips must be at least 1");
    ensure!(
        args.rtt_duration_s > 0,
        "--rtt-duration-s must be at least 1"
    );
    ensure!(
        args.bulk_duration_s > 0,
        "--bulk-duration-s must be at least 1"
    );
    ensure!(
        (8..=60_000).contains(&args.small_bytes),
        "--small-bytes must be between 8 and 60000"
    );
    let pki = Pki::new()?;
    let out = measure(&args, &pki)?;
    if args.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_args() -> Args {
        Args {
            round_trips: 20,
            rtt_duration_s: 5,
            small_bytes: 64,
            bulk_duration_s: 1,
            bulk_warmup_s: 0,
            relay_delay_ms: 5,
            json: false,
        }
    }

    #[test]
    fn nodes_talk_through_the_relay_with_its_delay_added() {
        let args = small_args();
        let pki = Pki::new().expect("scratch CA");
        let impairment = Impairment {
            delay: Duration::from_millis(args.relay_delay_ms),
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        let (pair, relay) = Pair::start(&pki, |addr| {
            let relay = relay::spawn("127.0.0.1:0".parse().expect("address"), addr, impairment)?;
            Ok((relay.local_addr, relay))
        })
        .expect("nodes connect through the relay");
        let rtt = quic_round_trips(&pair, &args).expect("round trips");
        assert_eq!(rtt.count, args.round_trips);
        // Both directions wait in the relay: no round trip beats twice the
        // delay.
        assert!(rtt.p50_us >= 2.0 * 1000.0 * args.relay_delay_ms as f64);
        let bulk = quic_bulk(&pair, &args).expect("bulk");
        assert!(bulk.frames_s > 0.0);
        assert!(relay.counters.forwarded.load(Ordering::Relaxed) > 0);
        pair.shutdown();
        relay.stop().expect("stop the relay");
    }
}
