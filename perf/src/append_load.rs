//! The load of `waggle-perf etcd-compare`: opaque values written to a
//! replicated log, the same shape against etcd (KV Put) and against waggle
//! (`waggle_bench.RawAppend`, Raft and storage without the engine).
//!
//! Structure: one tokio runtime; a `Target` holds `connections` gRPC
//! connections to the leader (etcd's, or each waggle partition's) and hands
//! them out round robin. Two shapes:
//! - closed loop (default): `clients` tasks, each sending its next write as
//!   soon as the previous one is acknowledged. Latency is the service time;
//!   throughput is what the system sustains at that concurrency.
//! - open loop (`--rate`): write `i` is due at `epoch + i / rate` and its
//!   latency counts from that intended time, so stalls are not hidden
//!   (coordinated omission). At most `MAX_IN_FLIGHT` writes wait at once.
//!
//! A warm-up precedes the measured window and is not recorded. Everything is
//! bounded: the window, the write count (`max_requests`) and the drain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use node::gateway::bench_proto::raw_append_client::RawAppendClient;
use node::gateway::bench_proto::AppendRequest;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Code;

use crate::load_report::Latency;

/// Most writes in flight in the open loop.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// Most concurrent clients of the closed loop.
pub const MAX_CLIENTS: usize = 4_096;
/// Largest value written, bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most writes in one run.
pub const MAX_REQUESTS: u64 = 50_000_000;
/// Longest wait for the writes in flight after the window.
pub const DRAIN: Duration = Duration::from_secs(15);
/// Pause of a closed-loop client after a refused write, so a refusing
/// server is not spun against.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(5);
/// Keys written per client in etcd before they are overwritten.
const KEYS_PER_CLIENT: u64 = 1_000;

/// The shape of the load (the same for both systems).
#[derive(clap::Args, Debug, Clone, Serialize)]
pub struct AppendShape {
    /// Concurrent clients of the closed loop (each waits for its write).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Open loop at this many writes per second instead of the closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Size of each value, bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Unrecorded warm-up before the window, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// At most this many writes in one run (warm-up included).
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// gRPC connections to each leader.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

impl AppendShape {
    /// Checks the bounds of every option.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (1..=MAX_CLIENTS).contains(&self.clients),
            "--clients {} must be 1 to {MAX_CLIENTS}",
            self.clients
        );
        if let Some(rate) = self.rate {
            ensure!(
                rate > 0.0 && rate.is_finite(),
                "--rate {rate} must be above 0"
            );
        }
        ensure!(
            (1..=MAX_VALUE_BYTES).contains(&self.value_bytes),
            "--value-bytes {} must be 1 to {MAX_VALUE_BYTES}",
            self.value_bytes
        );
        ensure!(
            self.duration_s > 0.0 && self.duration_s <= 3_600.0,
            "--duration-s {} must be above 0 and at most 3600",
            self.duration_s
        );
        ensure!(
            (0.0..=600.0).contains(&self.warmup_s),
            "--warmup-s {} must be 0 to 600",
            self.warmup_s
        );
        ensure!(
            (1..=MAX_REQUESTS).contains(&self.max_requests),
            "--max-requests {} must be 1 to {MAX_REQUESTS}",
            self.max_requests
        );
        ensure!(
            (1..=64).contains(&self.connections),
            "--connections {} must be 1 to 64",
            self.connections
        );
        Ok(())
    }
}

/// Where the writes go.
#[derive(Clone)]
pub enum Target {
    /// etcd KV Put on the leader, `connections` clients.
    Etcd(Vec<etcd_client::KvClient>),
    /// waggle RawAppend: per partition, clients connected to its leader's
    /// gateway.
    Waggle(Vec<(i32, Vec<RawAppendClient<Channel>>)>),
}

/// Why a write failed.
enum Failure {
    /// Refused for load (RESOURCE_EXHAUSTED).
    Backpressure,
    /// Anything else, with its message.
    Error(String),
}

impl Target {
    /// Connects `connections` clients to etcd at `leader`.
    pub async fn etcd(leader: &str, connections: usize) -> anyhow::Result<Target> {
        let mut clients = Vec::new();
        for _ in 0..connections {
            let options =
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(5));
            let client = etcd_client::Client::connect([leader], Some(options))
                .await
                .with_context(|| format!("connecting to etcd at {leader}"))?;
            clients.push(client.kv_client());
        }
        Ok(Target::Etcd(clients))
    }

    /// Connects `connections` clients to each partition's leader gateway
    /// (`leaders`: partition id and gateway URI).
    pub async fn waggle(leaders: &[(i32, String)], connections: usize) -> anyhow::Result<Target> {
        let mut routes = Vec::new();
        for (partition, uri) in leaders {
            let mut clients = Vec::new();
            for _ in 0..connections {
                let channel = Channel::from_shared(uri.clone())
                    .with_context(|| format!("gateway URI {uri}"))?
                    .connect_timeout(Duration::from_secs(5))
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("connecting to the gateway {uri}"))?;
                clients.push(RawAppendClient::new(channel));
            }
            routes.push((*partition, clients));
        }
        ensure!(!routes.is_empty(), "no partition leader to send to");
        Ok(Target::Waggle(routes))
    }

    /// Writes `value` as write number `n` of client `client`.
    async fn write(&self, client: usize, n: u64, value: &[u8]) -> Result<(), Failure> {
        match self {
            Target::Etcd(clients) => {
                let mut kv = clients[(client + n as usize) % clients.len()].clone();
                let key = format!("perf/{client:05}/{:04}", n % KEYS_PER_CLIENT);
                match kv.put(key, value.to_vec(), None).await {
                    Ok(_) => Ok(()),
                    Err(etcd_client::Error::GRpcStatus(status))
                        if status.code() == Code::ResourceExhausted =>
                    {
                        Err(Failure::Backpressure)
                    }
                    Err(e) => Err(Failure::Error(format!("etcd Put: {e}"))),
                }
            }
            Target::Waggle(routes) => {
                let (partition, clients) = &routes[(client + n as usize) % routes.len()];
                let mut raw = clients[(client / routes.len() + n as usize) % clients.len()].clone();
                let request = AppendRequest {
                    partition_id: *partition,
                    payload: value.to_vec(),
                };
                match raw.append(request).await {
                    Ok(_) => Ok(()),
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        Err(Failure::Backpressure)
                    }
                    Err(status) => Err(Failure::Error(format!(
                        "RawAppend: {:?} {}",
                        status.code(),
                        status.message()
                    ))),
                }
            }
        }
    }
}

/// What one run measured.
pub struct AppendReport {
    /// The shape that was run.
    pub shape: AppendShape,
    /// Writes acknowledged in the window.
    pub ok: u64,
    /// Writes refused for load in the window.
    pub backpressure: u64,
    /// Writes failed otherwise in the window.
    pub errors: u64,
    /// A few error messages.
    pub error_samples: Vec<String>,
    /// Acknowledged writes per second of the window.
    pub throughput_per_s: f64,
    /// Write latency, µs (from the intended time in the open loop).
    pub latency: Histogram<u64>,
}

/// The JSON summary of one run.
#[derive(Serialize, Clone, Debug)]
pub struct AppendSummary {
    /// `etcd` or `waggle`.
    pub system: String,
    /// Concurrent clients (closed loop).
    pub clients: usize,
    /// Target rate (open loop), writes/s.
    pub rate_per_s: Option<f64>,
    /// Value size, bytes.
    pub value_bytes: usize,
    /// Measured window, s.
    pub duration_s: f64,
    /// Writes acknowledged.
    pub ok: u64,
    /// Writes refused for load.
    pub backpressure: u64,
    /// Writes failed otherwise.
    pub errors: u64,
    /// A few error messages.
    pub error_samples: Vec<String>,
    /// Acknowledged writes per second.
    pub throughput_per_s: f64,
    /// Write latency.
    pub latency: Latency,
}

impl AppendSummary {
    /// Summarises `report` of `system`.
    pub fn of(system: &str, report: &AppendReport) -> AppendSummary {
        AppendSummary {
            system: system.to_string(),
            clients: report.shape.clients,
            rate_per_s: report.shape.rate,
            value_bytes: report.shape.value_bytes,
            duration_s: report.shape.duration_s,
            ok: report.ok,
            backpressure: report.backpressure,
            errors: report.errors,
            error_samples: report.error_samples.clone(),
            throughput_per_s: report.throughput_per_s,
            latency: Latency::of(&report.latency),
        }
    }
}

/// Counters and the histogram shared by the tasks of one run.
struct Shared {
    measure_from: Instant,
    measure_until: Instant,
    started: AtomicU64,
    ok: AtomicU64,
    backpressure: AtomicU64,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
    latency: Mutex<Histogram<u64>>,
}

impl Shared {
    /// Counts the outcome of a write intended at `intended` that ended now.
    fn note(&self, intended: Instant, outcome: Result<(), Failure>) {
        if intended < self.measure_from || intended >= self.measure_until {
            return;
        }
        match outcome {
            Ok(()) => {
                let us = intended.elapsed().as_micros() as u64;
                self.latency
                    .lock()
                    .expect("no panics while holding the lock")
                    .saturating_record(us.clamp(1, crate::load::MAX_LATENCY_US));
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(Failure::Backpressure) => {
                self.backpressure.fetch_add(1, Ordering::Relaxed);
            }
            Err(Failure::Error(message)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut samples = self
                    .error_samples
                    .lock()
                    .expect("no panics while holding the lock");
                if samples.len() < crate::load::MAX_ERROR_SAMPLES {
                    samples.push(message);
                }
            }
        }
    }

    /// Takes the next write number, or `None` when the run's budget is spent.
    fn next(&self, max: u64) -> Option<u64> {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        (n < max).then_some(n)
    }
}

/// Runs one load of `shape` against `target`.
pub async fn run(target: &Target, shape: &AppendShape) -> anyhow::Result<AppendReport> {
    shape.validate()?;
    let value: Arc<[u8]> = (0..shape.value_bytes)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into();
    let epoch = Instant::now();
    let measure_from = epoch + Duration::from_secs_f64(shape.warmup_s);
    let window = Duration::from_secs_f64(shape.duration_s);
    let shared = Arc::new(Shared {
        measure_from,
        measure_until: measure_from + window,
        started: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        backpressure: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_samples: Mutex::new(Vec::new()),
        latency: Mutex::new(crate::load::new_histogram()),
    });
    match shape.rate {
        None => closed_loop(target, shape, &shared, &value).await,
        Some(rate) => open_loop(target, shape, rate, epoch, &shared, &value).await,
    }
    let ok = shared.ok.load(Ordering::Relaxed);
    let latency = std::mem::replace(
        &mut *shared
            .latency
            .lock()
            .expect("no panics while holding the lock"),
        crate::load::new_histogram(),
    );
    let error_samples = shared
        .error_samples
        .lock()
        .expect("no panics while holding the lock")
        .clone();
    Ok(AppendReport {
        shape: shape.clone(),
        ok,
        backpressure: shared.backpressure.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        error_samples,
        throughput_per_s: ok as f64 / shape.duration_s,
        latency,
    })
}

async fn closed_loop(
    target: &Target,
    shape: &AppendShape,
    shared: &Arc<Shared>,
    value: &Arc<[u8]>,
) {
    let mut tasks = Vec::with_capacity(shape.clients);
    for client in 0..shape.clients {
        let (target, shared, value) = (target.clone(), shared.clone(), value.clone());
        let max = shape.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < shared.measure_until {
                if shared.next(max).is_none() {
                    break;
                }
                let start = Instant::now();
                let outcome = target.write(client, n, &value).await;
                let failed = outcome.is_err();
                shared.note(start, outcome);
                if failed {
                    tokio::time::sleep(PAUSE_AFTER_FAILURE).await;
                }
                n += 1;
            }
        }));
    }
    let drain_until = shared.measure_until + DRAIN;
    for task in tasks {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(drain_until, task).await.is_err() {
            abort.abort();
        }
    }
}

async fn open_loop(
    target: &Target,
    shape: &AppendShape,
    rate: f64,
    epoch: Instant,
    shared: &Arc<Shared>,
    value: &Arc<[u8]>,
) {
    let interval_ns = 1e9 / rate;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let due_at = |i: u64| epoch + Duration::from_nanos((i as f64 * interval_ns) as u64);
    let mut next = 0u64;
    'send: while Instant::now() < shared.measure_until {
        let now = Instant::now();
        while due_at(next) <= now {
            if due_at(next) >= shared.measure_until || shared.next(shape.max_requests).is_none() {
                break 'send;
            }
            let intended = due_at(next);
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (target, shared, value) = (target.clone(), shared.clone(), value.clone());
            let n = next;
            tokio::spawn(async move {
                let outcome = target.write((n % 1_024) as usize, n / 1_024, &value).await;
                shared.note(intended, outcome);
                drop(permit);
            });
            next += 1;
        }
        let wake = due_at(next).min(now + Duration::from_millis(1));
        tokio::time::sleep_until(wake.max(now + Duration::from_micros(100))).await;
    }
    let drain_until = Instant::now() + DRAIN;
    while in_flight.available_permits() < MAX_IN_FLIGHT && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
