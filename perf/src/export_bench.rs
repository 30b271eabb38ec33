//! `waggle-perf export`: what the PostgreSQL exporter costs a single node,
//! and how far the database trails the log under load.
//!
//! The same single node (`waggle dev`, one shard, one partition, the same
//! binary) is started twice, one after the other on the same machine:
//! without secondary storage, then with `[secondary_storage] type =
//! "postgresql"` on a throwaway PostgreSQL (`store/tests/support/postgres.rs`:
//! Debian's server, loopback, `fsync=off`; a fresh server for every such
//! start) or `--postgres-url`. `--rounds 2` repeats the pair.
//!
//! Each start searches its maximum sustainable one_task rate with the open
//! loop of `waggle-perf scenario` (`crate::load`, the same verdict: end-to-end
//! p99 within the SLO, backpressure at most 1 %, no error, every instance
//! finished, 90 % of the rate completed): from `--rate` the rate grows by
//! `--step-factor` until a step fails (a failure is run once more before it
//! counts), then `--refine` bisections between the highest rate that held
//! and the lowest that failed. With PostgreSQL a step also fails when the
//! database trails the log by more than `--max-export-lag-ms` during the
//! window: an exporter that cannot keep up only shows as backpressure once
//! `exporter.max_lag_records` records wait, long after a 10 s step.
//!
//! Export lag, sampled every `--sample-ms` while a PostgreSQL step runs:
//! - *behind*: now minus the timestamp of the newest record the database
//!   holds (`exporter_position.updated_ms`, the time the leader stamped the
//!   command: proposal, commit, processing, the writer's queue and its
//!   transaction). Under steady load that is how old the freshest row is.
//! - *queued records*: the node's `waggle_exporter_lag_records` gauge (from
//!   `/metrics`), the records committed and not yet acknowledged by the
//!   exported position; backpressure refuses new work past
//!   `exporter.max_lag_records`.
//!
//! Between steps the next one waits until the queue is empty again
//! (at most `MAX_DRAIN`). At the end a longer PostgreSQL step at
//! `--lag-share` of the rate the node held without secondary storage prints
//! the lag second by second. Reported: both maxima, their ratio, the lag
//! percentiles. Loops are bounded: `MAX_STEPS` per search, every step by
//! its window and drain.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use serde::Serialize;
use store::Store;
use tonic::transport::Channel;

use crate::brokers::{Brokers, ClusterSpec};
use crate::load::{self, LoadReport, Shape};
use crate::load_report::{self, Summary};
use crate::scenario::{self, load_average};
use crate::search_bench::postgres;

/// Most steps of one search.
pub const MAX_STEPS: usize = 24;
/// Longest wait after a step for the export queue to empty.
pub const MAX_DRAIN: Duration = Duration::from_secs(60);
/// Most rounds (pairs of starts).
pub const MAX_ROUNDS: u32 = 4;
/// The partition a single node has.
const PARTITION: u32 = 1;

/// Command line of `waggle-perf export`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The waggle binary (default: $WAGGLE_BIN, else next to waggle-perf).
    #[arg(long)]
    waggle: Option<PathBuf>,
    /// An existing PostgreSQL database (`postgres://...`) instead of a
    /// throwaway server; it should be empty.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Pairs of starts (without, then with PostgreSQL).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// The search multiplies the rate by this after a step that held.
    #[arg(long, default_value_t = 1.5)]
    step_factor: f64,
    /// Bisections between the highest rate held and the lowest failed.
    #[arg(long, default_value_t = 3)]
    refine: u32,
    /// The search stops at this rate.
    #[arg(long, default_value_t = 50_000.0)]
    max_rate: f64,
    /// End-to-end p99 above this fails a step, in ms.
    #[arg(long, default_value_t = 100.0)]
    slo_p99_ms: f64,
    /// Backpressure above this share of creates fails a step.
    #[arg(long, default_value_t = 0.01)]
    max_backpressure: f64,
    /// With PostgreSQL, the database trailing the log by more than this
    /// (behind, in any sample of the window) fails a step, in ms.
    #[arg(long, default_value_t = 1_000.0)]
    max_export_lag_ms: f64,
    /// Export lag sampling interval, in ms.
    #[arg(long, default_value_t = 100)]
    sample_ms: u64,
    /// The final PostgreSQL step runs at this share of the rate held without
    /// secondary storage.
    #[arg(long, default_value_t = 0.8)]
    lag_share: f64,
    /// Its sending window, in seconds.
    #[arg(long, default_value_t = 30.0)]
    lag_run_s: f64,
    /// Warm-up before each search, in seconds (not reported).
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Directory for the JSON summary and the brokers' working directories.
    #[arg(long, default_value = "perf/out")]
    out: PathBuf,
    #[command(flatten)]
    shape: Shape,
}

/// With or without secondary storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Variant {
    /// `secondary_storage.type = "none"`.
    None,
    /// `secondary_storage.type = "postgresql"`.
    Postgresql,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Variant::None => "none",
            Variant::Postgresql => "postgresql",
        }
    }
}

/// One lag sample.
#[derive(Serialize, Clone, Copy, Debug)]
struct Sample {
    /// Seconds since the step's start.
    at_s: f64,
    /// Now minus the newest exported record's timestamp, ms (`None` before
    /// the first write).
    behind_ms: Option<i64>,
    /// `waggle_exporter_lag_records`.
    queued_records: Option<u64>,
}

/// The lag of one step's window.
#[derive(Serialize, Clone, Debug)]
struct Lag {
    /// Samples in the window (after its first second).
    samples: usize,
    behind_p50_ms: u64,
    behind_p99_ms: u64,
    behind_max_ms: u64,
    queued_p50: u64,
    queued_max: u64,
    /// From the end of the window until the queue was empty, s.
    drained_after_s: f64,
}

/// CPU time a step cost, from its start until the export queue was empty.
#[derive(Serialize, Clone, Copy, Debug)]
struct CpuUse {
    /// The broker process, s.
    broker_s: f64,
    /// Every `postgres` process, s.
    postgres_s: f64,
    /// The load generator (this process), s.
    load_s: f64,
    /// Instances completed in the step.
    completed: u64,
}

impl CpuUse {
    /// The broker's CPU per completed instance, µs.
    fn broker_us_per_instance(&self) -> f64 {
        1e6 * self.broker_s / self.completed.max(1) as f64
    }

    /// PostgreSQL's CPU per completed instance, µs.
    fn postgres_us_per_instance(&self) -> f64 {
        1e6 * self.postgres_s / self.completed.max(1) as f64
    }
}

/// CPU seconds so far of the broker, PostgreSQL and this process.
fn cpu_now(broker: Option<u32>) -> [f64; 3] {
    [
        broker.map_or(0.0, crate::cpu::of_process),
        crate::cpu::of_processes_named("postgres"),
        crate::cpu::of_self(),
    ]
}

/// One step of a search.
#[derive(Serialize, Clone, Debug)]
struct Step {
    summary: Summary,
    held: bool,
    failed_because: Option<String>,
    lag: Option<Lag>,
    cpu: CpuUse,
    series: Vec<Sample>,
}

/// One start of the node.
#[derive(Serialize, Clone, Debug)]
struct Search {
    variant: Variant,
    round: u32,
    /// Highest rate that held.
    max_rate_per_s: Option<f64>,
    /// Steady completions per second of that step.
    max_done_per_s: Option<f64>,
    load_average: [String; 2],
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Output {
    searches: Vec<Search>,
    lag_run: Option<Step>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_ROUNDS).contains(&args.rounds),
        "--rounds must be 1 to {MAX_ROUNDS}"
    );
    ensure!(
        args.step_factor > 1.0 && args.refine <= 8,
        "--step-factor must be above 1 and --refine at most 8"
    );
    ensure!(
        (10..=10_000).contains(&args.sample_ms),
        "--sample-ms must be 10 to 10000"
    );
    ensure!(
        args.lag_share > 0.0 && args.lag_share <= 2.0 && args.lag_run_s >= 0.0,
        "--lag-share must be in (0, 2], --lag-run-s at least 0"
    );
    let waggle = crate::brokers::find_waggle(args.waggle.as_deref())?;
    let work = args.out.join("work");
    std::fs::create_dir_all(&work)?;
    let runtime = load::runtime()?;
    let mut searches = Vec::new();
    for round in 1..=args.rounds {
        for variant in [Variant::None, Variant::Postgresql] {
            if let Done::Search(search) = with_node(
                &waggle,
                &work,
                &args,
                variant,
                &runtime,
                Job::Search { round },
            )? {
                searches.push(search);
            }
        }
    }
    let held_without = searches
        .iter()
        .filter(|s| s.variant == Variant::None)
        .filter_map(|s| s.max_rate_per_s)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let lag_run = match held_without {
        Some(rate) if args.lag_run_s > 0.0 => {
            let rate = (rate * args.lag_share).round();
            eprintln!(
                "export: postgresql at {rate:.0}/s ({:.0} % of the rate held without) for {} s",
                100.0 * args.lag_share,
                args.lag_run_s
            );
            match with_node(
                &waggle,
                &work,
                &args,
                Variant::Postgresql,
                &runtime,
                Job::LagRun { rate },
            )? {
                Done::LagRun(step) => Some(*step),
                Done::Search(_) => None,
            }
        }
        _ => None,
    };
    report(&searches, lag_run.as_ref(), &args);
    let path = args.out.join("export-bench.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&Output { searches, lag_run })?,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    println!("summary in {}", path.display());
    Ok(())
}

/// What to do with a node.
enum Job {
    /// Search its maximum sustainable rate.
    Search { round: u32 },
    /// One long step at this rate.
    LagRun { rate: f64 },
}

enum Done {
    Search(Search),
    LagRun(Box<Step>),
}

/// Starts a node of `variant` (and its database), runs `job` on the load
/// runtime, and stops both.
fn with_node(
    waggle: &std::path::Path,
    work: &std::path::Path,
    args: &Args,
    variant: Variant,
    runtime: &tokio::runtime::Runtime,
    job: Job,
) -> anyhow::Result<Done> {
    let mut server = None;
    let url = match (variant, &args.postgres_url) {
        (Variant::None, _) => None,
        (Variant::Postgresql, Some(url)) => Some(url.clone()),
        (Variant::Postgresql, None) => {
            let pg = postgres::Postgres::start();
            let url = pg.url.clone();
            server = Some(pg);
            Some(url)
        }
    };
    let mut env = Vec::new();
    if let Some(url) = &url {
        env.push(("WAGGLE_SECONDARY_STORAGE_TYPE".into(), "postgresql".into()));
        env.push(("WAGGLE_SECONDARY_STORAGE_URL".into(), url.clone()));
    }
    let spec = ClusterSpec::single_node(env);
    eprintln!(
        "export: starting a single node, secondary storage {}",
        variant.as_str()
    );
    let brokers = Brokers::start(waggle, &spec, work)?;
    let result = runtime.block_on(async {
        let store = match &url {
            Some(url) => Some(Store::open(url, 1).with_context(|| format!("opening {url}"))?),
            None => None,
        };
        let result = match job {
            Job::Search { round } => search(&brokers, store.as_ref(), args, variant, round)
                .await
                .map(Done::Search),
            Job::LagRun { rate } => lag_run(&brokers, store.as_ref(), args, rate)
                .await
                .map(|step| Done::LagRun(Box::new(step))),
        };
        if let Some(store) = store {
            store.close().await;
        }
        result
    });
    if result.is_err() {
        eprintln!("{}", brokers.log_tail(0));
    }
    drop(brokers);
    drop(server);
    result
}

async fn connect(brokers: &Brokers, args: &Args) -> anyhow::Result<Vec<Channel>> {
    let channels = load::connect(&brokers.gateways, args.shape.connections).await?;
    load::deploy(channels[0].clone(), Duration::from_secs(60)).await?;
    if args.warmup_s > 0.0 {
        let mut warm = args.shape.clone();
        warm.rate = args.shape.rate.min(200.0);
        warm.duration_s = args.warmup_s;
        warm.drain_s = 5.0;
        load::run_load(channels.clone(), warm, load_report::run_id()).await?;
    }
    Ok(channels)
}

async fn search(
    brokers: &Brokers,
    store: Option<&Store>,
    args: &Args,
    variant: Variant,
    round: u32,
) -> anyhow::Result<Search> {
    let load_before = load_average();
    let channels = connect(brokers, args).await?;
    let mut steps = Vec::new();
    let mut rate = args.shape.rate;
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut retried: Option<f64> = None;
    let mut bisections = 0;
    let mut lowered = false;
    for _ in 0..MAX_STEPS {
        let name = format!("{}@{rate:.0}", variant.as_str());
        let mut shape = args.shape.clone();
        shape.rate = rate;
        let step = run_step(&name, brokers, store, &channels, shape, args).await?;
        let held = step.held;
        steps.push(step);
        if !held && retried != Some(rate) {
            // One failure may be noise from the shared machine.
            retried = Some(rate);
            continue;
        }
        if held {
            good = Some(good.map_or(rate, |g: f64| g.max(rate)));
        } else {
            bad = Some(bad.map_or(rate, |b: f64| b.min(rate)));
        }
        rate = match (good, bad) {
            (Some(g), None) if g * args.step_factor <= args.max_rate => g * args.step_factor,
            (Some(g), Some(b)) if bisections < args.refine && b > g * 1.02 => {
                bisections += 1;
                ((g + b) / 2.0).round()
            }
            (None, Some(b)) if !lowered && b / 4.0 >= 20.0 => {
                lowered = true;
                b / 4.0
            }
            _ => break,
        };
    }
    let best = steps
        .iter()
        .filter(|s| s.held)
        .max_by(|a, b| a.summary.rate_per_s.total_cmp(&b.summary.rate_per_s));
    let search = Search {
        variant,
        round,
        max_rate_per_s: best.map(|s| s.summary.rate_per_s),
        max_done_per_s: best.map(|s| s.summary.steady_per_s),
        load_average: [load_before, load_average()],
        steps,
    };
    match search.max_rate_per_s {
        Some(rate) => println!(
            "export: {} (round {round}): maximum sustainable rate {rate:.0}/s",
            variant.as_str()
        ),
        None => println!("export: {} (round {round}): no rate held", variant.as_str()),
    }
    Ok(search)
}

async fn lag_run(
    brokers: &Brokers,
    store: Option<&Store>,
    args: &Args,
    rate: f64,
) -> anyhow::Result<Step> {
    let channels = connect(brokers, args).await?;
    let mut shape = args.shape.clone();
    shape.rate = rate;
    shape.duration_s = args.lag_run_s;
    run_step(
        &format!("postgresql@{rate:.0} for {} s", args.lag_run_s),
        brokers,
        store,
        &channels,
        shape,
        args,
    )
    .await
}

/// One load step; with a store, its lag sampled meanwhile and the drain of
/// the export queue waited for afterwards.
async fn run_step(
    name: &str,
    brokers: &Brokers,
    store: Option<&Store>,
    channels: &[Channel],
    shape: Shape,
    args: &Args,
) -> anyhow::Result<Step> {
    let window_s = shape.duration_s;
    let metrics_port = brokers
        .management_port(0)
        .context("the node has no management port")?;
    let cpu_before = cpu_now(brokers.pid(0));
    let started = Instant::now();
    let load = tokio::spawn(load::run_load(
        channels.to_vec(),
        shape,
        load_report::run_id(),
    ));
    let mut series = Vec::new();
    if let Some(store) = store {
        let interval = Duration::from_millis(args.sample_ms);
        // Bounded by the load's own bound (window plus drain).
        while !load.is_finished() {
            let tick = Instant::now();
            series.push(sample(store, metrics_port, started).await);
            tokio::time::sleep(interval.saturating_sub(tick.elapsed())).await;
        }
    }
    let report: LoadReport = load.await.context("the load task")??;
    let window_end = started + Duration::from_secs_f64(window_s);
    let drained_after_s = match store {
        Some(_) => Some(drain(metrics_port, window_end).await),
        None => None,
    };
    let cpu_after = cpu_now(brokers.pid(0));
    let cpu = CpuUse {
        broker_s: cpu_after[0] - cpu_before[0],
        postgres_s: cpu_after[1] - cpu_before[1],
        load_s: cpu_after[2] - cpu_before[2],
        completed: report.completed,
    };
    load_report::print_table(&[(name, &report)]);
    println!(
        "    CPU: broker {:.1} s ({:.0} µs per instance), PostgreSQL {:.1} s ({:.0} µs per \
         instance), load generator {:.1} s",
        cpu.broker_s,
        cpu.broker_us_per_instance(),
        cpu.postgres_s,
        cpu.postgres_us_per_instance(),
        cpu.load_s
    );
    let summary = Summary::of(name, &report);
    let mut failed_because = scenario::verdict(&report, args.slo_p99_ms, args.max_backpressure);
    let lag = drained_after_s.map(|drained| lag_of(&series, window_s, drained));
    if let Some(lag) = &lag {
        println!(
            "    export lag: behind p50 {} / p99 {} / max {} ms, queued records p50 {} / max {}, \
             queue empty {:.1} s after the window",
            lag.behind_p50_ms,
            lag.behind_p99_ms,
            lag.behind_max_ms,
            lag.queued_p50,
            lag.queued_max,
            lag.drained_after_s
        );
        if failed_because.is_none() && lag.behind_max_ms as f64 > args.max_export_lag_ms {
            failed_because = Some(format!(
                "export lag {} ms > {:.0} ms",
                lag.behind_max_ms, args.max_export_lag_ms
            ));
        }
    }
    if let Some(why) = &failed_because {
        println!("    did not hold: {why}");
    }
    Ok(Step {
        summary,
        held: failed_because.is_none(),
        failed_because,
        lag,
        cpu,
        series,
    })
}

async fn sample(store: &Store, metrics_port: u16, started: Instant) -> Sample {
    let progress = store.exporter_progress(PARTITION).await.ok().flatten();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let queued_records = queued_records(metrics_port).await;
    Sample {
        at_s: started.elapsed().as_secs_f64(),
        behind_ms: progress.map(|(_, t)| (now_ms - t).max(0)),
        queued_records,
    }
}

/// `waggle_exporter_lag_records` of the node, from `/metrics`.
async fn queued_records(port: u16) -> Option<u64> {
    let text = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .ok()??;
    text.lines()
        .filter(|l| l.starts_with("waggle_exporter_lag_records{"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .reduce(|a, b| a + b)
}

/// A minimal HTTP/1.0 GET on the loopback: the body of a 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// Waits until the node's export queue is empty (at most [`MAX_DRAIN`]
/// after the window's end); seconds from the window's end.
async fn drain(metrics_port: u16, window_end: Instant) -> f64 {
    let deadline = Instant::now() + MAX_DRAIN;
    while Instant::now() < deadline {
        if queued_records(metrics_port).await == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Instant::now()
        .saturating_duration_since(window_end)
        .as_secs_f64()
}

/// The lag over the window of `series` (its first second left out: the
/// database holds nothing recent before the load starts).
fn lag_of(series: &[Sample], window_s: f64, drained_after_s: f64) -> Lag {
    let mut behind = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).expect("static bounds");
    let mut queued = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).expect("static bounds");
    let mut samples = 0;
    for s in series
        .iter()
        .filter(|s| s.at_s >= 1.0 && s.at_s <= window_s)
    {
        samples += 1;
        if let Some(ms) = s.behind_ms {
            behind.saturating_record((ms as u64).max(1));
        }
        if let Some(q) = s.queued_records {
            queued.saturating_record(q.max(1));
        }
    }
    Lag {
        samples,
        behind_p50_ms: behind.value_at_quantile(0.5),
        behind_p99_ms: behind.value_at_quantile(0.99),
        behind_max_ms: behind.max(),
        queued_p50: queued.value_at_quantile(0.5),
        queued_max: queued.max(),
        drained_after_s,
    }
}

/// The step at the highest rate that held.
fn best(search: &Search) -> Option<&Step> {
    search
        .steps
        .iter()
        .filter(|x| x.held)
        .max_by(|a, b| a.summary.rate_per_s.total_cmp(&b.summary.rate_per_s))
}

fn report(searches: &[Search], lag_run: Option<&Step>, args: &Args) {
    println!();
    println!("| start | max rate held | done/s | end to end p99 | export lag behind p50 / p99 / max | queued records max | broker / PostgreSQL CPU per instance | load average |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in searches {
        let best = best(s);
        let lag = best.and_then(|b| b.lag.as_ref());
        println!(
            "| {} (round {}) | {} | {} | {} | {} | {} | {} | {} → {} |",
            s.variant.as_str(),
            s.round,
            s.max_rate_per_s
                .map_or("none".into(), |r| format!("{r:.0}/s")),
            s.max_done_per_s.map_or("-".into(), |r| format!("{r:.0}")),
            best.map_or("-".into(), |b| format!(
                "{:.1} ms",
                b.summary.end_to_end.p99_us as f64 / 1e3
            )),
            lag.map_or("-".into(), |l| format!(
                "{} / {} / {} ms",
                l.behind_p50_ms, l.behind_p99_ms, l.behind_max_ms
            )),
            lag.map_or("-".into(), |l| l.queued_max.to_string()),
            best.map_or("-".into(), |b| format!(
                "{:.0} / {:.0} µs",
                b.cpu.broker_us_per_instance(),
                b.cpu.postgres_us_per_instance()
            )),
            s.load_average[0],
            s.load_average[1],
        );
    }
    for round in 1..=args.rounds {
        let of = |v: Variant| {
            searches
                .iter()
                .find(|s| s.round == round && s.variant == v)
                .and_then(|s| s.max_done_per_s)
        };
        if let (Some(without), Some(with)) = (of(Variant::None), of(Variant::Postgresql)) {
            println!(
                "round {round}: with PostgreSQL / without = {with:.0} / {without:.0} = {:.2}",
                with / without
            );
        }
    }
    if let Some(step) = lag_run {
        println!();
        println!(
            "{}: {} ({:.0} done/s)",
            step.summary.name,
            if step.held {
                "held".to_string()
            } else {
                format!(
                    "did not hold: {}",
                    step.failed_because.as_deref().unwrap_or("")
                )
            },
            step.summary.steady_per_s
        );
        println!("| second | done | behind max ms | queued records max |");
        println!("|---|---|---|---|");
        let seconds = step.series.last().map_or(0, |s| s.at_s.ceil() as usize);
        for second in 0..seconds {
            let within = step
                .series
                .iter()
                .filter(|s| s.at_s >= second as f64 && s.at_s < (second + 1) as f64);
            let (behind, queued) = within.fold((None, None), |(b, q), s| {
                (s.behind_ms.max(b), s.queued_records.max(q))
            });
            println!(
                "| {second} | {} | {} | {} |",
                step.summary
                    .completions_per_s
                    .get(second)
                    .copied()
                    .unwrap_or(0),
                behind.map_or("-".into(), |b: i64| b.to_string()),
                queued.map_or("-".into(), |q: u64| q.to_string()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at_s: f64, behind_ms: i64, queued: u64) -> Sample {
        Sample {
            at_s,
            behind_ms: Some(behind_ms),
            queued_records: Some(queued),
        }
    }

    #[test]
    fn the_lag_counts_only_the_window_after_its_first_second() {
        let series = vec![
            // Before the first second: the database holds nothing recent.
            at(0.5, 90_000, 1),
            at(1.0, 100, 10),
            at(2.0, 200, 30),
            at(3.0, 400, 20),
            // After the window: nothing new is written, the age grows.
            at(4.5, 50_000, 0),
            Sample {
                at_s: 2.5,
                behind_ms: None,
                queued_records: None,
            },
        ];
        let lag = lag_of(&series, 4.0, 0.7);
        assert_eq!(lag.samples, 4);
        assert_eq!(lag.behind_p50_ms, 200);
        assert_eq!(lag.behind_max_ms, 400);
        assert_eq!(lag.queued_max, 30);
        assert_eq!(lag.drained_after_s, 0.7);
    }
}
