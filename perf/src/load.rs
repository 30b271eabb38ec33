//! `waggle-perf load`: a load generator that speaks the Zeebe gateway
//! protocol (gRPC), shaped like Zeebe's own benchmark (starter + workers on
//! the one_task process).
//!
//! Structure: one tokio runtime holds
//! - the starter, open loop: instance `i` is due at `epoch + i / rate`. Every
//!   latency is measured from that intended time, not from the moment the
//!   request left, so a stall of the broker (or of this process) shows up in
//!   the percentiles instead of silently lowering the rate (coordinated
//!   omission). Requests in flight are bounded by `MAX_IN_FLIGHT_CREATES`;
//!   past it the starter waits, and the waiting is charged to the latency.
//! - `workers` workers, each holding at most `capacity` jobs: on job push
//!   (StreamActivatedJobs) when the broker offers it, else ActivateJobs long
//!   polling. A job is completed after `completion_delay_ms`.
//!
//! Each instance carries its intended start time (µs since the run's epoch)
//! and the run's id in its variables, so a worker can time the job's arrival
//! (activation latency) and its completion (end to end) without shared maps;
//! jobs left over from another run are completed but not counted.
//!
//! Everything is bounded: the instance count (`rate × duration`, at most
//! `max_instances`), the sending window, and the drain after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Code;

/// The process deployed and started: start → service task → end.
pub const PROCESS_ID: &str = "benchmark";
/// Job type of the service task (as in Zeebe's benchmark).
pub const JOB_TYPE: &str = "benchmark-task";
/// Zeebe's `one_task.bpmn`, with this crate's ids.
pub const ONE_TASK_BPMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="one_task" targetNamespace="waggle-perf">
  <bpmn:process id="benchmark" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="benchmark-task" retries="3"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"#;

/// Most create requests in flight at once.
pub const MAX_IN_FLIGHT_CREATES: usize = 20_000;
/// Most instances in one run.
pub const MAX_INSTANCES: u64 = 10_000_000;
/// Longest run: sending window plus drain.
pub const MAX_RUN_S: f64 = 3_600.0;
/// Most jobs one worker holds.
pub const MAX_WORKER_CAPACITY: usize = 10_000;
/// Most error messages kept for the report.
pub const MAX_ERROR_SAMPLES: usize = 8;
/// Longest latency a histogram holds, in µs (longer values are clamped).
pub const MAX_LATENCY_US: u64 = 120_000_000;
/// How long one ActivateJobs long poll may be held by the broker.
const LONG_POLL_MS: i64 = 1_000;
/// Variable carrying the intended start time, µs since the run's epoch.
const START_VAR: &str = "perf_start_us";
/// Variable carrying the run's id.
const RUN_VAR: &str = "perf_run";

/// Options of `waggle-perf load`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Gateway addresses (http://host:port), used round robin; repeat or
    /// separate with commas.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:26500")]
    pub gateway: Vec<String>,
    #[command(flatten)]
    pub shape: Shape,
    /// Directory for the .hgrm files, the JSON summary and the plots.
    #[arg(long, default_value = "perf/out/load")]
    pub out: std::path::PathBuf,
}

/// The shape of the load: what is started, how fast, how it is worked.
#[derive(clap::Args, Debug, Clone)]
pub struct Shape {
    /// Instances started per second (open loop).
    #[arg(long, default_value_t = 300.0)]
    pub rate: f64,
    /// Length of the sending window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// At most this many instances (the window ends early when reached).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_instances: u64,
    /// Approximate size of the variables document of each instance, in bytes.
    #[arg(long, default_value_t = 500)]
    pub payload_bytes: usize,
    /// Number of workers.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Jobs one worker holds at most.
    #[arg(long, default_value_t = 60)]
    pub capacity: usize,
    /// Time a worker spends on a job before completing it, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub completion_delay_ms: u64,
    /// How long to wait for outstanding instances after the window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain_s: f64,
    /// Job delivery: `auto` (push when the broker offers it, else polling) or
    /// `poll` (ActivateJobs only).
    #[arg(long, default_value = "auto")]
    pub jobs: JobMode,
    /// gRPC connections per gateway.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
}

/// How workers receive jobs.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobMode {
    /// StreamActivatedJobs when answered, else ActivateJobs.
    Auto,
    /// StreamActivatedJobs (job push).
    Push,
    /// ActivateJobs long polling.
    Poll,
}

impl Shape {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.rate > 0.0 && self.rate.is_finite(),
            "--rate {} must be above 0",
            self.rate
        );
        ensure!(
            self.duration_s > 0.0 && self.duration_s + self.drain_s <= MAX_RUN_S,
            "--duration-s {} plus --drain-s {} must be above 0 and at most {MAX_RUN_S}",
            self.duration_s,
            self.drain_s
        );
        ensure!(
            (1..=MAX_INSTANCES).contains(&self.max_instances),
            "--max-instances {} must be 1 to {MAX_INSTANCES}",
            self.max_instances
        );
        ensure!(
            (1..=1024).contains(&self.workers),
            "--workers {} must be 1 to 1024",
            self.workers
        );
        ensure!(
            (1..=MAX_WORKER_CAPACITY).contains(&self.capacity),
            "--capacity {} must be 1 to {MAX_WORKER_CAPACITY}",
            self.capacity
        );
        ensure!(
            (1..=64).contains(&self.connections),
            "--connections {} must be 1 to 64",
            self.connections
        );
        ensure!(
            self.payload_bytes <= 1 << 20,
            "--payload-bytes {} must be at most 1 MiB",
            self.payload_bytes
        );
        Ok(())
    }

    /// Instances this shape starts.
    pub fn instances(&self) -> u64 {
        ((self.rate * self.duration_s).ceil() as u64).clamp(1, self.max_instances)
    }
}

/// A latency histogram in µs.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Everything measured in one run.
pub struct LoadReport {
    /// The shape that was run.
    pub shape: Shape,
    /// How jobs reached the workers.
    pub job_mode: JobMode,
    /// Instances the starter sent.
    pub sent: u64,
    /// Instances the broker acknowledged.
    pub created: u64,
    /// Creates refused with RESOURCE_EXHAUSTED.
    pub backpressure: u64,
    /// Creates that failed otherwise.
    pub create_errors: u64,
    /// Jobs of this run that reached a worker.
    pub activated: u64,
    /// Jobs of this run completed (acknowledged), i.e. finished instances.
    pub completed: u64,
    /// CompleteJob calls refused (RESOURCE_EXHAUSTED included).
    pub complete_errors: u64,
    /// Jobs of other runs completed without being counted.
    pub foreign_jobs: u64,
    /// Errors of the job channel (activation or stream), backpressure aside.
    pub job_channel_errors: u64,
    /// Activations refused with RESOURCE_EXHAUSTED (retried after a pause).
    pub job_backpressure: u64,
    /// A few error messages, for the report.
    pub error_samples: Vec<String>,
    /// From the epoch to the last completion, in seconds.
    pub elapsed_s: f64,
    /// Completed instances per second of the sending window plus the tail.
    pub throughput_per_s: f64,
    /// Completions in each second since the epoch.
    pub completions_per_s: Vec<u64>,
    /// Create-instance acknowledgement latency (µs).
    pub create: Histogram<u64>,
    /// Intended start → job at the worker (µs).
    pub activation: Histogram<u64>,
    /// Intended start → job completion acknowledged (µs).
    pub end_to_end: Histogram<u64>,
}

impl LoadReport {
    /// Share of create attempts refused for load.
    pub fn backpressure_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.backpressure as f64 / self.sent as f64
        }
    }

    /// Completions per second in the steady part of the run: the mean of
    /// the whole seconds from the median end-to-end latency (when the first
    /// instances finish) to the end of the sending window. A cluster that
    /// keeps up completes the rate there whatever its latency; one that
    /// falls behind completes less. `throughput_per_s` when the window
    /// holds no such second (latency longer than the window).
    pub fn steady_per_s(&self) -> f64 {
        let p50_s = self.end_to_end.value_at_quantile(0.5) as f64 / 1e6;
        let from = (p50_s.ceil() as usize).max(1);
        let until = (self.shape.duration_s.floor() as usize).min(self.completions_per_s.len());
        if until <= from {
            return self.throughput_per_s;
        }
        let seconds = &self.completions_per_s[from..until];
        seconds.iter().sum::<u64>() as f64 / seconds.len() as f64
    }

    /// Errors other than backpressure.
    pub fn errors(&self) -> u64 {
        self.create_errors + self.complete_errors + self.job_channel_errors
    }
}

/// Counters and histograms shared by the tasks of one run.
struct Shared {
    run_id: u64,
    epoch: Instant,
    stop: AtomicBool,
    sent: AtomicU64,
    created: AtomicU64,
    backpressure: AtomicU64,
    create_errors: AtomicU64,
    activated: AtomicU64,
    completed: AtomicU64,
    complete_errors: AtomicU64,
    foreign_jobs: AtomicU64,
    job_channel_errors: AtomicU64,
    job_backpressure: AtomicU64,
    last_completion_us: AtomicU64,
    errors: Mutex<Vec<String>>,
    timeline: Mutex<Vec<u64>>,
    create: Mutex<Histogram<u64>>,
    activation: Mutex<Histogram<u64>>,
    end_to_end: Mutex<Histogram<u64>>,
}

impl Shared {
    fn since_epoch_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn note_error(&self, what: &str, status: &tonic::Status) {
        let mut errors = self
            .errors
            .lock()
            .expect("no panics while holding the lock");
        if errors.len() < MAX_ERROR_SAMPLES {
            errors.push(format!("{what}: {:?} {}", status.code(), status.message()));
        }
    }
}

fn record(histogram: &Mutex<Histogram<u64>>, us: u64) {
    histogram
        .lock()
        .expect("no panics while holding the lock")
        .saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// Connects `connections` channels to each gateway.
pub async fn connect(gateways: &[String], connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for uri in gateways {
        for _ in 0..connections {
            let channel = Channel::from_shared(uri.clone())
                .with_context(|| format!("--gateway `{uri}` is not a URI like http://host:port"))?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("cannot connect to the gateway {uri}"))?;
            channels.push(channel);
        }
    }
    ensure!(!channels.is_empty(), "no --gateway given");
    Ok(channels)
}

/// Deploys the one_task process; retries for up to `wait` while the cluster
/// is still electing leaders.
pub async fn deploy(channel: Channel, wait: Duration) -> anyhow::Result<()> {
    let mut client = GatewayClient::new(channel);
    let deadline = Instant::now() + wait;
    loop {
        let request = proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: "one_task.bpmn".into(),
                content: ONE_TASK_BPMN.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        };
        match client.deploy_resource(request).await {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => anyhow::bail!("deploying one_task.bpmn failed: {status}"),
        }
    }
}

/// The variables of every instance after the start time and run id: about
/// `bytes` of simple variables, like Zeebe's `typical_payload.json`.
fn payload_tail(bytes: usize) -> String {
    let mut tail = String::new();
    let mut i = 0;
    while tail.len() + 40 < bytes {
        let value = match i % 3 {
            0 => format!("\"value-{i:04}-abcdefghij\""),
            1 => format!("{}", 1_000_000 + i * 7919),
            _ => (i % 2 == 0).to_string(),
        };
        tail.push_str(&format!(",\"var{i:02}\":{value}"));
        i += 1;
    }
    if tail.len() + 24 < bytes {
        let pad = bytes - tail.len() - 20;
        tail.push_str(&format!(",\"padding\":\"{}\"", "x".repeat(pad)));
    }
    tail.push('}');
    tail
}

/// Reads a non-negative integer variable out of a JSON document without
/// parsing all of it (the workers do this for every job).
fn read_u64_var(json: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let at = json.find(&key)? + key.len();
    let digits: &str = json[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Runs one load against already connected `channels`. `run_id` must differ
/// between runs against the same cluster.
pub async fn run_load(
    channels: Vec<Channel>,
    shape: Shape,
    run_id: u64,
) -> anyhow::Result<LoadReport> {
    shape.validate()?;
    let job_mode = match shape.jobs {
        JobMode::Poll => JobMode::Poll,
        JobMode::Push | JobMode::Auto => {
            if push_available(channels[0].clone()).await? {
                JobMode::Push
            } else if shape.jobs == JobMode::Push {
                anyhow::bail!("--jobs push: the broker does not answer StreamActivatedJobs");
            } else {
                JobMode::Poll
            }
        }
    };
    let total = shape.instances();
    let window = Duration::from_secs_f64(shape.duration_s);
    let seconds = (shape.duration_s + shape.drain_s).ceil() as usize + 2;
    let shared = Arc::new(Shared {
        run_id,
        epoch: Instant::now(),
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        created: AtomicU64::new(0),
        backpressure: AtomicU64::new(0),
        create_errors: AtomicU64::new(0),
        activated: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        complete_errors: AtomicU64::new(0),
        foreign_jobs: AtomicU64::new(0),
        job_channel_errors: AtomicU64::new(0),
        job_backpressure: AtomicU64::new(0),
        last_completion_us: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        timeline: Mutex::new(vec![0; seconds]),
        create: Mutex::new(new_histogram()),
        activation: Mutex::new(new_histogram()),
        end_to_end: Mutex::new(new_histogram()),
    });

    let mut worker_tasks = Vec::new();
    for w in 0..shape.workers {
        let channel = channels[w % channels.len()].clone();
        let shared = shared.clone();
        let shape = shape.clone();
        worker_tasks.push(tokio::spawn(async move {
            match job_mode {
                JobMode::Push => push_worker(channel, shared, shape, w).await,
                _ => poll_worker(channel, shared, shape, w).await,
            }
        }));
    }

    // The starter: open loop, bounded by count and by the window (plus the
    // drain, should the starter itself fall behind).
    let tail = payload_tail(shape.payload_bytes);
    let interval_ns = 1e9 / shape.rate;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_CREATES));
    let send_deadline = shared.epoch + window + Duration::from_secs_f64(shape.drain_s);
    let mut next: u64 = 0;
    let mut round_robin = 0usize;
    while next < total {
        let now = Instant::now();
        if now >= send_deadline {
            break;
        }
        let due_at = |i: u64| shared.epoch + Duration::from_nanos((i as f64 * interval_ns) as u64);
        while next < total && due_at(next) <= now {
            let intended = due_at(next);
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let start_us = (intended - shared.epoch).as_micros() as u64;
            let variables = format!("{{\"{START_VAR}\":{start_us},\"{RUN_VAR}\":{run_id}{tail}");
            let mut client = GatewayClient::new(channels[round_robin % channels.len()].clone());
            round_robin += 1;
            let shared = shared.clone();
            shared.sent.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let request = proto::CreateProcessInstanceRequest {
                    bpmn_process_id: PROCESS_ID.into(),
                    version: -1,
                    variables,
                    ..Default::default()
                };
                match client.create_process_instance(request).await {
                    Ok(_) => {
                        record(&shared.create, intended.elapsed().as_micros() as u64);
                        shared.created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        shared.backpressure.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => {
                        shared.create_errors.fetch_add(1, Ordering::Relaxed);
                        shared.note_error("CreateProcessInstance", &status);
                    }
                }
                drop(permit);
            });
            next += 1;
        }
        let wake = if next < total {
            due_at(next).min(now + Duration::from_millis(1))
        } else {
            now
        };
        tokio::time::sleep_until(wake.max(now + Duration::from_micros(200))).await;
    }

    // Drain: every create answered, then every created instance completed,
    // within the drain time after the window.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(shape.drain_s);
    loop {
        let answered = in_flight.available_permits() == MAX_IN_FLIGHT_CREATES;
        let created = shared.created.load(Ordering::Relaxed);
        if answered && shared.completed.load(Ordering::Relaxed) >= created {
            break;
        }
        if Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for task in worker_tasks {
        // A worker notices the stop within a long poll; past that it is cut.
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_millis(LONG_POLL_MS as u64 + 2_000), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    let completed = shared.completed.load(Ordering::Relaxed);
    let last_us = shared.last_completion_us.load(Ordering::Relaxed);
    let elapsed_s = (last_us as f64 / 1e6).max(shape.duration_s.min(1e-3));
    let take = |h: &Mutex<Histogram<u64>>| {
        std::mem::replace(
            &mut *h.lock().expect("no panics while holding the lock"),
            new_histogram(),
        )
    };
    let mut timeline = shared
        .timeline
        .lock()
        .expect("no panics while holding the lock")
        .clone();
    while timeline.len() > 1 && timeline.last() == Some(&0) {
        timeline.pop();
    }
    let error_samples = shared
        .errors
        .lock()
        .expect("no panics while holding the lock")
        .clone();
    Ok(LoadReport {
        job_mode,
        sent: shared.sent.load(Ordering::Relaxed),
        created: shared.created.load(Ordering::Relaxed),
        backpressure: shared.backpressure.load(Ordering::Relaxed),
        create_errors: shared.create_errors.load(Ordering::Relaxed),
        activated: shared.activated.load(Ordering::Relaxed),
        completed,
        complete_errors: shared.complete_errors.load(Ordering::Relaxed),
        foreign_jobs: shared.foreign_jobs.load(Ordering::Relaxed),
        job_channel_errors: shared.job_channel_errors.load(Ordering::Relaxed),
        job_backpressure: shared.job_backpressure.load(Ordering::Relaxed),
        error_samples,
        elapsed_s,
        throughput_per_s: completed as f64 / elapsed_s,
        completions_per_s: timeline,
        create: take(&shared.create),
        activation: take(&shared.activation),
        end_to_end: take(&shared.end_to_end),
        shape,
    })
}

/// Whether the broker answers StreamActivatedJobs (anything but
/// UNIMPLEMENTED counts as yes).
async fn push_available(channel: Channel) -> anyhow::Result<bool> {
    let mut client = GatewayClient::new(channel);
    let request = stream_request("waggle-perf-probe");
    match tokio::time::timeout(
        Duration::from_secs(5),
        client.stream_activated_jobs(request),
    )
    .await
    {
        Ok(Ok(_stream)) => Ok(true),
        Ok(Err(status)) if status.code() == Code::Unimplemented => Ok(false),
        Ok(Err(status)) => anyhow::bail!("probing StreamActivatedJobs: {status}"),
        Err(_) => anyhow::bail!("probing StreamActivatedJobs: no answer within 5 s"),
    }
}

fn stream_request(worker: &str) -> proto::StreamActivatedJobsRequest {
    proto::StreamActivatedJobsRequest {
        r#type: JOB_TYPE.into(),
        worker: worker.into(),
        timeout: 60_000,
        fetch_variable: Vec::new(),
        tenant_ids: Vec::new(),
    }
}

/// Takes a job that reached a worker: times its arrival and completes it
/// after the delay, on its own task (holding `permit`, one unit of the
/// worker's capacity).
fn take_job(
    job: proto::ActivatedJob,
    channel: &Channel,
    shared: &Arc<Shared>,
    delay: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let now_us = shared.since_epoch_us();
    let ours = read_u64_var(&job.variables, RUN_VAR) == Some(shared.run_id);
    let start_us = read_u64_var(&job.variables, START_VAR).filter(|_| ours);
    if let Some(start_us) = start_us {
        shared.activated.fetch_add(1, Ordering::Relaxed);
        record(&shared.activation, now_us.saturating_sub(start_us));
    }
    let mut client = GatewayClient::new(channel.clone());
    let shared = shared.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let request = proto::CompleteJobRequest {
            job_key: job.key,
            variables: String::new(),
            result: None,
        };
        match client.complete_job(request).await {
            Ok(_) => match start_us {
                Some(start_us) => {
                    let done_us = shared.since_epoch_us();
                    record(&shared.end_to_end, done_us.saturating_sub(start_us));
                    shared.completed.fetch_add(1, Ordering::Relaxed);
                    shared
                        .last_completion_us
                        .fetch_max(done_us, Ordering::Relaxed);
                    let second = (done_us / 1_000_000) as usize;
                    let mut timeline = shared
                        .timeline
                        .lock()
                        .expect("no panics while holding the lock");
                    if let Some(slot) = timeline.get_mut(second) {
                        *slot += 1;
                    }
                }
                None => {
                    shared.foreign_jobs.fetch_add(1, Ordering::Relaxed);
                }
            },
            Err(status) => {
                shared.complete_errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error("CompleteJob", &status);
            }
        }
        drop(permit);
    });
}

/// A worker on ActivateJobs long polling.
async fn poll_worker(channel: Channel, shared: Arc<Shared>, shape: Shape, index: usize) {
    let mut client = GatewayClient::new(channel.clone());
    let capacity = Arc::new(Semaphore::new(shape.capacity));
    let delay = Duration::from_millis(shape.completion_delay_ms);
    let worker = format!("waggle-perf-{index}");
    let mut failures = VecDeque::new();
    while !shared.stop.load(Ordering::Relaxed) {
        // Wait for room for at least one job.
        let free = match capacity.clone().acquire_owned().await {
            Ok(permit) => {
                drop(permit);
                capacity.available_permits()
            }
            Err(_) => return,
        };
        let request = proto::ActivateJobsRequest {
            r#type: JOB_TYPE.into(),
            worker: worker.clone(),
            timeout: 60_000,
            max_jobs_to_activate: free as i32,
            fetch_variable: Vec::new(),
            request_timeout: LONG_POLL_MS,
            tenant_ids: Vec::new(),
        };
        let mut stream = match client.activate_jobs(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                channel_error(&shared, &mut failures, "ActivateJobs", &status).await;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(batch)) => {
                    for job in batch.jobs {
                        let Ok(permit) = capacity.clone().acquire_owned().await else {
                            return;
                        };
                        take_job(job, &channel, &shared, delay, permit);
                    }
                }
                Ok(None) => break,
                Err(status) => {
                    channel_error(&shared, &mut failures, "ActivateJobs", &status).await;
                    break;
                }
            }
        }
    }
}

/// A worker on job push: one StreamActivatedJobs stream, reopened if it
/// ends. When the worker is at capacity it stops reading, which holds the
/// stream back through HTTP/2 flow control.
async fn push_worker(channel: Channel, shared: Arc<Shared>, shape: Shape, index: usize) {
    let mut client = GatewayClient::new(channel.clone());
    let capacity = Arc::new(Semaphore::new(shape.capacity));
    let delay = Duration::from_millis(shape.completion_delay_ms);
    let worker = format!("waggle-perf-{index}");
    let mut failures = VecDeque::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let mut stream = match client.stream_activated_jobs(stream_request(&worker)).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                channel_error(&shared, &mut failures, "StreamActivatedJobs", &status).await;
                continue;
            }
        };
        while !shared.stop.load(Ordering::Relaxed) {
            let Ok(permit) = capacity.clone().acquire_owned().await else {
                return;
            };
            let message = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
            match message {
                Err(_) => continue,
                Ok(Ok(Some(job))) => take_job(job, &channel, &shared, delay, permit),
                Ok(Ok(None)) => break,
                Ok(Err(status)) => {
                    channel_error(&shared, &mut failures, "StreamActivatedJobs", &status).await;
                    break;
                }
            }
        }
    }
}

/// Counts a failed activation and pauses before the next attempt, longer
/// when failures come in a burst (at most 10 remembered, pause at most 1 s).
async fn channel_error(
    shared: &Shared,
    failures: &mut VecDeque<Instant>,
    what: &str,
    status: &tonic::Status,
) {
    if shared.stop.load(Ordering::Relaxed) {
        return;
    }
    if status.code() == Code::ResourceExhausted {
        shared.job_backpressure.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.job_channel_errors.fetch_add(1, Ordering::Relaxed);
        shared.note_error(what, status);
    }
    let now = Instant::now();
    failures.push_back(now);
    while failures.len() > 10 {
        failures.pop_front();
    }
    let recent = failures
        .iter()
        .filter(|t| now - **t < Duration::from_secs(1))
        .count() as u64;
    tokio::time::sleep(Duration::from_millis((20 * recent * recent).min(1_000))).await;
}

/// Runs `waggle-perf load` against running gateways.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let channels = connect(&args.gateway, args.shape.connections).await?;
        deploy(channels[0].clone(), Duration::from_secs(30)).await?;
        run_load(channels, args.shape.clone(), crate::load_report::run_id()).await
    })?;
    crate::load_report::print_table(&[("load", &report)]);
    crate::load_report::write_outputs(&args.out, "load", &report)?;
    println!("outputs in {}", args.out.display());
    Ok(())
}

/// The runtime the load runs on: two threads (the brokers share the machine).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime for the load")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_parses() {
        for bytes in [0, 100, 500, 4_000] {
            let doc = format!(
                "{{\"{START_VAR}\":123,\"{RUN_VAR}\":7{}",
                payload_tail(bytes)
            );
            let value: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
            assert_eq!(value[START_VAR], 123);
            if bytes >= 100 {
                assert!(
                    doc.len() + 40 >= bytes && doc.len() <= bytes + 60,
                    "{bytes}: {}",
                    doc.len()
                );
            }
        }
    }

    #[test]
    fn reads_integer_variables() {
        let doc = r#"{"a":1,"perf_start_us": 42,"perf_run":9,"x":"y"}"#;
        assert_eq!(read_u64_var(doc, START_VAR), Some(42));
        assert_eq!(read_u64_var(doc, RUN_VAR), Some(9));
        assert_eq!(read_u64_var(doc, "missing"), None);
    }
}
