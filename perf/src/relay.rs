//! `waggle-perf relay`: a UDP relay that adds delay, jitter and loss, to put
//! zone or region distances between nodes on one machine (QUIC runs over UDP,
//! and the kernel here has no `netem`).
//!
//! Structure: one socket listens; every client address seen there gets a
//! session with its own upstream socket connected to the forward address, so
//! replies find their way back. Each direction of a session is a delay line:
//! a bounded FIFO of `(due time, datagram)` drained by one task that sleeps
//! until the head is due. A datagram is dropped with probability `loss`;
//! otherwise it is due after `delay ± jitter` (uniform), but never before the
//! datagram ahead of it, so the relay delays without reordering. Delay and
//! jitter apply to each direction: the round trip gains twice the delay.
//!
//! Everything is bounded: `MAX_SESSIONS` sessions, `MAX_QUEUED_DATAGRAMS` per
//! delay line (a full line drops, like a router queue), and sessions idle for
//! `SESSION_IDLE_S` are closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Most client addresses relayed at once.
pub const MAX_SESSIONS: usize = 1024;
/// Most datagrams waiting in one direction of one session.
pub const MAX_QUEUED_DATAGRAMS: usize = 16_384;
/// Largest datagram relayed, in bytes (the UDP maximum).
pub const MAX_DATAGRAM_BYTES: usize = 65_535;
/// A session with no datagram in either direction for this long is closed.
pub const SESSION_IDLE_S: u64 = 120;
/// Largest delay or jitter accepted, in milliseconds.
pub const MAX_DELAY_MS: u64 = 10_000;

/// Options of this subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to receive datagrams on.
    #[arg(long)]
    listen: SocketAddr,
    /// Address to forward them to.
    #[arg(long)]
    forward: SocketAddr,
    /// Delay added to every datagram, in each direction.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Uniform jitter around the delay (delay ± jitter), in each direction.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Probability of dropping a datagram, 0.0 to 1.0, in each direction.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
}

/// What the relay does to every datagram.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Added delay.
    pub delay: Duration,
    /// Uniform jitter around the delay.
    pub jitter: Duration,
    /// Drop probability.
    pub loss: f64,
}

impl Impairment {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (0.0..=1.0).contains(&self.loss),
            "--loss {} must be between 0.0 and 1.0",
            self.loss
        );
        let max = Duration::from_millis(MAX_DELAY_MS);
        ensure!(
            self.delay <= max && self.jitter <= max,
            "--delay-ms and --jitter-ms must be at most {MAX_DELAY_MS}"
        );
        Ok(())
    }

    /// The due time of a datagram arriving now, or `None` when it is lost.
    fn due(&self, now: Instant, behind: Instant) -> Option<Instant> {
        if self.loss > 0.0 && fastrand::f64() < self.loss {
            return None;
        }
        let jitter_ns = self.jitter.as_nanos() as u64;
        let offset_ns = if jitter_ns == 0 {
            0
        } else {
            fastrand::u64(0..=2 * jitter_ns)
        };
        let due = (now + self.delay + Duration::from_nanos(offset_ns))
            .checked_sub(self.jitter)
            .unwrap_or(now)
            .max(now);
        Some(due.max(behind))
    }
}

/// Counters of a running relay.
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Datagrams sent on after their delay.
    pub forwarded: AtomicU64,
    /// Datagrams dropped on purpose (`loss`).
    pub lost: AtomicU64,
    /// Datagrams dropped because a delay line or the session table was full.
    pub overflowed: AtomicU64,
}

/// A delay line: datagrams wait here until due, then go out on `socket`.
struct DelayLine {
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    last_due: Instant,
}

impl DelayLine {
    /// Starts the draining task; `to` is `None` for a connected socket.
    fn start(
        socket: Arc<UdpSocket>,
        to: Option<SocketAddr>,
        counters: Arc<RelayCounters>,
    ) -> DelayLine {
        let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(MAX_QUEUED_DATAGRAMS);
        tokio::spawn(async move {
            while let Some((due, datagram)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                let sent = match to {
                    Some(addr) => socket.send_to(&datagram, addr).await,
                    None => socket.send(&datagram).await,
                };
                // A refused or unreachable peer is a lost datagram, as on a
                // real network.
                if sent.is_ok() {
                    counters.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        DelayLine {
            tx,
            last_due: Instant::now(),
        }
    }

    fn push(&mut self, impairment: &Impairment, counters: &RelayCounters, datagram: &[u8]) {
        let Some(due) = impairment.due(Instant::now(), self.last_due) else {
            counters.lost.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match self.tx.try_send((due, datagram.to_vec())) {
            Ok(()) => self.last_due = due,
            Err(_) => {
                counters.overflowed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One client address: its upstream socket and the line towards the target.
struct Session {
    upstream: DelayLine,
    last_seen: Arc<AtomicU64>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Milliseconds since `epoch`, for idle tracking shared between tasks.
fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// Opens a session for `client`: an upstream socket connected to `forward`,
/// a delay line towards it, and a reader sending replies back through a
/// delay line on the listening socket.
async fn open_session(
    listener: &Arc<UdpSocket>,
    client: SocketAddr,
    forward: SocketAddr,
    impairment: Impairment,
    counters: &Arc<RelayCounters>,
    epoch: Instant,
) -> anyhow::Result<Session> {
    let bind: SocketAddr = if forward.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid address")
    } else {
        "[::]:0".parse().expect("valid address")
    };
    let socket = UdpSocket::bind(bind).await.context("binding upstream")?;
    socket
        .connect(forward)
        .await
        .with_context(|| format!("connecting upstream to {forward}"))?;
    let socket = Arc::new(socket);
    let last_seen = Arc::new(AtomicU64::new(millis_since(epoch)));
    let upstream = DelayLine::start(socket.clone(), None, counters.clone());
    let mut downstream = DelayLine::start(listener.clone(), Some(client), counters.clone());
    let reader_seen = last_seen.clone();
    let reader_counters = counters.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
        // Errors here (an ICMP refusal from a stopped target) are transient.
        loop {
            if let Ok(len) = socket.recv(&mut buf).await {
                reader_seen.store(millis_since(epoch), Ordering::Relaxed);
                downstream.push(&impairment, &reader_counters, &buf[..len]);
            }
        }
    });
    Ok(Session {
        upstream,
        last_seen,
        reader,
    })
}

/// Relays datagrams from `listener` to `forward` and back until `stop`
/// turns true.
pub async fn serve(
    listener: UdpSocket,
    forward: SocketAddr,
    impairment: Impairment,
    counters: Arc<RelayCounters>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    impairment.validate()?;
    let listener = Arc::new(listener);
    let epoch = Instant::now();
    let idle_ms = SESSION_IDLE_S * 1000;
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    let mut sweep = tokio::time::interval(Duration::from_secs(SESSION_IDLE_S.div_ceil(4)));
    loop {
        let (len, client) = tokio::select! {
            received = listener.recv_from(&mut buf) => match received {
                Ok(received) => received,
                // An ICMP error for an earlier reply to a vanished client.
                Err(_) => continue,
            },
            _ = sweep.tick() => {
                let now = millis_since(epoch);
                sessions.retain(|_, s| now - s.last_seen.load(Ordering::Relaxed) < idle_ms);
                continue;
            }
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
        };
        if !sessions.contains_key(&client) {
            if sessions.len() >= MAX_SESSIONS {
                counters.overflowed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match open_session(&listener, client, forward, impairment, &counters, epoch).await {
                Ok(session) => {
                    sessions.insert(client, session);
                }
                Err(error) => {
                    eprintln!("relay: dropping a datagram from {client}: {error:#}");
                    counters.overflowed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let session = sessions.get_mut(&client).expect("inserted above");
        session
            .last_seen
            .store(millis_since(epoch), Ordering::Relaxed);
        session.upstream.push(&impairment, &counters, &buf[..len]);
    }
}

/// A relay running on its own thread, for benchmarks and tests.
pub struct RelayHandle {
    /// The address clients send to.
    pub local_addr: SocketAddr,
    /// Live counters.
    pub counters: Arc<RelayCounters>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RelayHandle {
    /// Stops the relay and waits for its thread.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("relay thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Starts a relay from `listen` (port 0 picks one) to `forward` on a new
/// thread with its own tokio runtime.
pub fn spawn(
    listen: SocketAddr,
    forward: SocketAddr,
    impairment: Impairment,
) -> anyhow::Result<RelayHandle> {
    impairment.validate()?;
    let std_socket =
        std::net::UdpSocket::bind(listen).with_context(|| format!("binding {listen}"))?;
    std_socket.set_nonblocking(true).context("non-blocking")?;
    let local_addr = std_socket.local_addr().context("local address")?;
    let counters = Arc::new(RelayCounters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread_counters = counters.clone();
    let thread = std::thread::Builder::new()
        .name("waggle-relay".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("relay runtime")?;
            runtime.block_on(async move {
                let socket = UdpSocket::from_std(std_socket).context("relay socket")?;
                serve(socket, forward, impairment, thread_counters, stop_rx).await
            })
        })
        .context("starting the relay thread")?;
    Ok(RelayHandle {
        local_addr,
        counters,
        stop: stop_tx,
        thread: Some(thread),
    })
}

/// Runs the subcommand: relays until interrupted.
pub fn run(args: Args) -> anyhow::Result<()> {
    let impairment = Impairment {
        delay: Duration::from_millis(args.delay_ms),
        jitter: Duration::from_millis(args.jitter_ms),
        loss: args.loss,
    };
    impairment.validate()?;
    eprintln!(
        "relaying {} -> {} with delay {} ms, jitter {} ms, loss {} (each direction)",
        args.listen, args.forward, args.delay_ms, args.jitter_ms, args.loss
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let socket = UdpSocket::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let counters = Arc::new(RelayCounters::default());
        // Never set: the relay runs until the process is interrupted.
        let (_stop_tx, stop_rx) = watch::channel(false);
        serve(socket, args.forward, impairment, counters, stop_rx).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket as StdUdpSocket;

    /// A UDP echo server on loopback, answering `count` datagrams at most.
    fn echo_server(count: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for _ in 0..count {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    return;
                };
                let _ = socket.send_to(&buf[..len], from);
            }
        });
        (addr, thread)
    }

    fn client() -> StdUdpSocket {
        let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        socket
    }

    fn impairment(delay_ms: u64, jitter_ms: u64, loss: f64) -> Impairment {
        Impairment {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss,
        }
    }

    #[test]
    fn datagrams_come_back_in_order_after_twice_the_delay() {
        let (echo, server) = echo_server(25);
        let relay =
            spawn("127.0.0.1:0".parse().unwrap(), echo, impairment(15, 5, 0.0)).expect("relay");
        let socket = client();
        let mut buf = [0u8; 2048];
        // The baseline: the fastest of 5 round trips to the echo server
        // without the relay.
        let direct = (0..5)
            .map(|_| {
                let direct_started = std::time::Instant::now();
                socket.send_to(b"direct", echo).expect("send");
                socket.recv_from(&mut buf).expect("direct echo");
                direct_started.elapsed()
            })
            .min()
            .expect("5 round trips");
        let started = std::time::Instant::now();
        for k in 0..20u8 {
            socket.send_to(&[k; 100], relay.local_addr).expect("send");
        }
        for k in 0..20u8 {
            let (len, from) = socket.recv_from(&mut buf).expect("echo through the relay");
            assert_eq!(from, relay.local_addr);
            assert_eq!(&buf[..len], &[k; 100], "datagram {k} out of order");
        }
        // Each direction holds a datagram at least delay - jitter: what the
        // relay added to the direct round trip, over that configured
        // minimum, is at least 1.
        let added = started.elapsed().saturating_sub(direct);
        let minimum = Duration::from_millis(2 * (15 - 5));
        let ratio = added.as_secs_f64() / minimum.as_secs_f64();
        assert!(
            ratio >= 1.0,
            "added {added:?} over minimum {minimum:?} = {ratio:.2}"
        );
        // The counter moves just after the send that delivered the echo.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while relay.counters.forwarded.load(Ordering::Relaxed) < 40 {
            assert!(std::time::Instant::now() < deadline, "forwarded count");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(relay.counters.forwarded.load(Ordering::Relaxed), 40);
        relay.stop().expect("stop");
        server.join().expect("echo server");
    }

    #[test]
    fn full_loss_drops_everything_and_counts_it() {
        let (echo, _server) = echo_server(1);
        let relay =
            spawn("127.0.0.1:0".parse().unwrap(), echo, impairment(0, 0, 1.0)).expect("relay");
        let socket = client();
        for _ in 0..10 {
            socket.send_to(b"gone", relay.local_addr).expect("send");
        }
        let mut buf = [0u8; 64];
        assert!(socket.recv_from(&mut buf).is_err(), "nothing gets through");
        assert_eq!(relay.counters.lost.load(Ordering::Relaxed), 10);
        assert_eq!(relay.counters.forwarded.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let target = "127.0.0.1:9".parse().unwrap();
        let listen = "127.0.0.1:0".parse().unwrap();
        assert!(spawn(listen, target, impairment(0, 0, 1.5)).is_err());
        assert!(spawn(listen, target, impairment(MAX_DELAY_MS + 1, 0, 0.0)).is_err());
    }
}
