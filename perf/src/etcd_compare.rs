//! `waggle-perf etcd-compare`: replicated writes of opaque values, side by
//! side with etcd. Both systems get the same load (`crate::append_load`)
//! one after the other on the same machine, never at once:
//! 1. etcd: 3 members on 127.0.0.1 (`crate::etcd`), KV Put on the leader;
//! 2. waggle: 3 nodes, replication factor 3, `--partitions` (default 1, one
//!    Raft group like etcd), `gateway.raw_append_enabled`, RawAppend on each
//!    partition's leader: records go through Raft and storage, acknowledged
//!    on commit, without the engine.
//!
//! Either one load at `--clients` (or `--rate`), or with `--search` a
//! ladder of concurrencies (1, 2, 4, ... `--max-clients`) that stops when
//! the p99 exceeds `--slo-p99-ms`, a write fails, or two steps in a row add
//! less than 5 % throughput. Reported: throughput and p50/p99/p99.9 of both,
//! waggle/etcd throughput and waggle p99 / etcd p99, and with `--search`
//! the waggle throughput at or below etcd's p99 against etcd's best.
//!
//! Outputs in `--out`: a table on stdout, `etcd-compare.json`,
//! `etcd-compare-{etcd,waggle}.hgrm` (the step compared) and the plots
//! `etcd-compare-latency.svg` and `etcd-compare-steps.svg`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use serde::Serialize;
use tokio::time::Instant;

use crate::append_load::{self, AppendReport, AppendShape, AppendSummary, Target};
use crate::brokers::{Brokers, ClusterSpec};
use crate::etcd::Etcd;
use crate::load_report;

/// Most steps of a concurrency ladder.
pub const MAX_LADDER_STEPS: usize = 14;
/// A ladder step must add this share of throughput to count as progress.
pub const MIN_GAIN: f64 = 0.05;
/// Longest wait for every waggle partition to have a leader.
pub const MAX_LEADER_WAIT: Duration = Duration::from_secs(60);

/// The two systems.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// etcd (3 members).
    Etcd,
    /// waggle's raw replicated append (3 nodes, RF 3).
    Waggle,
}

/// Options of `waggle-perf etcd-compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The etcd binary (default: `etcd` on the PATH).
    #[arg(long)]
    pub etcd: Option<PathBuf>,
    /// The waggle binary (default: $WAGGLE_BIN, else next to waggle-perf).
    #[arg(long)]
    pub waggle: Option<PathBuf>,
    /// Partitions of the waggle cluster (each its own Raft group).
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Systems to run (default: both).
    #[arg(long, value_delimiter = ',', default_values = ["etcd", "waggle"])]
    pub systems: Vec<System>,
    /// Raise the concurrency 1, 2, 4, ... until the p99 degrades, instead of
    /// one load at --clients.
    #[arg(long)]
    pub search: bool,
    /// Highest concurrency of the search.
    #[arg(long, default_value_t = 512)]
    pub max_clients: usize,
    /// A search step whose p99 is above this ends the search, ms.
    #[arg(long, default_value_t = 100.0)]
    pub slo_p99_ms: f64,
    /// Directory for the outputs and the brokers' working directories.
    #[arg(long, default_value = "perf/out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub shape: AppendShape,
}

/// One system's steps.
#[derive(Serialize, Clone, Debug)]
pub struct SystemRun {
    /// Every step, in order.
    pub steps: Vec<LadderStep>,
    /// Index in `steps` of the step compared: the highest throughput among
    /// the steps that held.
    pub best: Option<usize>,
}

/// One step of a run.
#[derive(Serialize, Clone, Debug)]
pub struct LadderStep {
    /// What was measured.
    pub summary: AppendSummary,
    /// Why the step ended the search, if it did.
    pub failed_because: Option<String>,
}

impl SystemRun {
    /// The step compared.
    pub fn best_summary(&self) -> Option<&AppendSummary> {
        self.best.map(|i| &self.steps[i].summary)
    }
}

/// The ratios of the comparison (waggle over etcd).
#[derive(Serialize, Clone, Debug)]
pub struct Ratios {
    /// waggle's best throughput / etcd's best throughput.
    pub throughput: f64,
    /// waggle's p99 / etcd's p99, in the steps compared.
    pub p99: f64,
    /// With a search: waggle's highest throughput in a step whose p99 is at
    /// or below the p99 of etcd's best step, over etcd's best throughput.
    pub throughput_at_etcd_p99: Option<f64>,
    /// The waggle step that sets `throughput_at_etcd_p99`: its clients.
    pub clients_at_etcd_p99: Option<usize>,
}

/// The JSON summary of `etcd-compare`.
#[derive(Serialize, Clone, Debug)]
pub struct CompareSummary {
    /// `etcd --version`.
    pub etcd_version: Option<String>,
    /// waggle partitions.
    pub partitions: u32,
    /// Value size, bytes.
    pub value_bytes: usize,
    /// Whether the concurrency was searched.
    pub search: bool,
    /// p99 limit of the search, ms.
    pub slo_p99_ms: f64,
    /// /proc/loadavg before and after.
    pub load_average: [String; 2],
    /// etcd's steps.
    pub etcd: Option<SystemRun>,
    /// waggle's steps.
    pub waggle: Option<SystemRun>,
    /// waggle over etcd, when both ran and both have a step that held.
    pub ratios: Option<Ratios>,
}

/// Why `summary` ends a search, or `None` if it holds.
fn verdict(summary: &AppendSummary, slo_p99_ms: f64) -> Option<String> {
    let p99_ms = summary.latency.p99_us as f64 / 1_000.0;
    let refused = summary.backpressure as f64 / (summary.ok + summary.backpressure).max(1) as f64;
    if summary.errors > 0 {
        Some(format!("{} errors", summary.errors))
    } else if summary.ok == 0 {
        Some("no write acknowledged".into())
    } else if refused > 0.01 {
        Some(format!("backpressure {:.2} %", 100.0 * refused))
    } else if p99_ms > slo_p99_ms {
        Some(format!("p99 {p99_ms:.1} ms > {slo_p99_ms:.1} ms"))
    } else {
        None
    }
}

/// Runs the load (one step, or the ladder) against `target`; returns the
/// steps and the report of the step compared.
async fn measure(
    name: &str,
    target: &Target,
    args: &Args,
) -> anyhow::Result<(SystemRun, Option<AppendReport>)> {
    let mut steps = Vec::new();
    let mut best: Option<(usize, AppendReport)> = None;
    let mut clients = if args.search { 1 } else { args.shape.clients };
    let mut stalled = 0;
    for _ in 0..MAX_LADDER_STEPS {
        let mut shape = args.shape.clone();
        shape.clients = clients;
        let report = append_load::run(target, &shape).await?;
        let summary = AppendSummary::of(name, &report);
        print_row(&summary);
        let failed_because = verdict(&summary, args.slo_p99_ms);
        let held = failed_because.is_none();
        if let Some(why) = &failed_because {
            println!("    did not hold: {why}");
        }
        steps.push(LadderStep {
            summary,
            failed_because,
        });
        let best_throughput = best.as_ref().map_or(0.0, |(_, r)| r.throughput_per_s);
        let gained = report.throughput_per_s > best_throughput * (1.0 + MIN_GAIN);
        // One fixed load is compared whatever it measured; a search compares
        // its best step that held.
        let fixed = !args.search && report.ok > 0;
        if fixed || (held && report.throughput_per_s > best_throughput) {
            best = Some((steps.len() - 1, report));
        }
        if !args.search || !held || clients >= args.max_clients {
            break;
        }
        stalled = if gained { 0 } else { stalled + 1 };
        if stalled >= 2 {
            break;
        }
        clients = (clients * 2).min(args.max_clients);
    }
    let (index, report) = best.unzip();
    Ok((SystemRun { steps, best: index }, report))
}

fn print_header() {
    println!(
        "{:<8} {:>7} {:>9} {:>10} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "system",
        "clients",
        "rate/s",
        "writes/s",
        "ok",
        "bp",
        "errors",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
}

fn print_row(s: &AppendSummary) {
    let ms = |us: u64| us as f64 / 1_000.0;
    println!(
        "{:<8} {:>7} {:>9} {:>10.0} {:>8} {:>6} {:>8} {:>8.2} {:>8.2} {:>9.2} {:>8.2}",
        s.system,
        s.clients,
        s.rate_per_s
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| "closed".into()),
        s.throughput_per_s,
        s.ok,
        s.backpressure,
        s.errors,
        ms(s.latency.p50_us),
        ms(s.latency.p99_us),
        ms(s.latency.p999_us),
        ms(s.latency.max_us)
    );
    for e in &s.error_samples {
        println!("    error: {e}");
    }
}

/// The gateway of each partition's leader, once every partition 1..=
/// `partitions` has exactly one node that reports itself its leader.
async fn waggle_leaders(
    gateways: &[String],
    partitions: u32,
) -> anyhow::Result<Vec<(i32, String)>> {
    let deadline = Instant::now() + MAX_LEADER_WAIT;
    let channels = crate::load::connect(gateways, 1).await?;
    loop {
        let mut leaders: Vec<Vec<usize>> = vec![Vec::new(); partitions as usize];
        for (node, channel) in channels.iter().enumerate() {
            let Ok(response) = GatewayClient::new(channel.clone())
                .topology(proto::TopologyRequest {})
                .await
            else {
                continue;
            };
            let me = response
                .into_inner()
                .brokers
                .into_iter()
                .find(|b| b.node_id == node as i32);
            for partition in me.into_iter().flat_map(|b| b.partitions) {
                let leads = partition.role == proto::partition::PartitionBrokerRole::Leader as i32;
                let slot = usize::try_from(partition.partition_id - 1)
                    .ok()
                    .and_then(|i| leaders.get_mut(i));
                if let (true, Some(slot)) = (leads, slot) {
                    slot.push(node);
                }
            }
        }
        if leaders.iter().all(|l| l.len() == 1) {
            return Ok(leaders
                .iter()
                .enumerate()
                .map(|(i, l)| (i as i32 + 1, gateways[l[0]].clone()))
                .collect());
        }
        if Instant::now() > deadline {
            bail!("waggle partitions without exactly one leader after {MAX_LEADER_WAIT:?}: {leaders:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ratios of the runs, when both have a step compared.
fn ratios(etcd: &SystemRun, waggle: &SystemRun, search: bool) -> Option<Ratios> {
    let (e, w) = (etcd.best_summary()?, waggle.best_summary()?);
    let at_p99 = search
        .then(|| {
            waggle
                .steps
                .iter()
                .filter(|s| s.failed_because.is_none())
                .map(|s| &s.summary)
                .filter(|s| s.latency.p99_us <= e.latency.p99_us)
                .max_by(|a, b| a.throughput_per_s.total_cmp(&b.throughput_per_s))
        })
        .flatten();
    Some(Ratios {
        throughput: w.throughput_per_s / e.throughput_per_s.max(f64::MIN_POSITIVE),
        p99: w.latency.p99_us as f64 / e.latency.p99_us.max(1) as f64,
        throughput_at_etcd_p99: at_p99
            .map(|s| s.throughput_per_s / e.throughput_per_s.max(f64::MIN_POSITIVE)),
        clients_at_etcd_p99: at_p99.map(|s| s.clients),
    })
}

/// Runs the comparison and writes its outputs.
pub fn run_compare(args: &Args) -> anyhow::Result<CompareSummary> {
    args.shape.validate()?;
    ensure!(
        (1..=64).contains(&args.partitions),
        "--partitions {} must be 1 to 64",
        args.partitions
    );
    ensure!(
        (1..=append_load::MAX_CLIENTS).contains(&args.max_clients),
        "--max-clients {} must be 1 to {}",
        args.max_clients,
        append_load::MAX_CLIENTS
    );
    let want = |s: System| args.systems.contains(&s);
    // Both binaries are looked up before anything starts, so a missing one
    // fails at once.
    let etcd_bin = want(System::Etcd)
        .then(|| crate::etcd::find_etcd(args.etcd.as_deref()))
        .transpose()?;
    let waggle_bin = want(System::Waggle)
        .then(|| crate::brokers::find_waggle(args.waggle.as_deref()))
        .transpose()?;
    let runtime = crate::load::runtime()?;
    let load_before = crate::scenario::load_average();
    print_header();

    let mut etcd_version = None;
    let (etcd_run, etcd_report) = match etcd_bin {
        Some(bin) => {
            eprintln!("etcd-compare: starting 3 etcd members");
            let cluster = Etcd::start(&bin)?;
            etcd_version = Some(cluster.version.clone());
            let result = runtime.block_on(async {
                let leader = cluster.leader().await?;
                let target = Target::etcd(&leader, args.shape.connections).await?;
                measure("etcd", &target, args).await
            });
            if result.is_err() {
                for i in 0..crate::etcd::MEMBERS {
                    eprintln!("{}", cluster.log_tail(i));
                }
            }
            drop(cluster);
            let (run, report) = result?;
            (Some(run), report)
        }
        None => (None, None),
    };

    let (waggle_run, waggle_report) = match waggle_bin {
        Some(bin) => {
            eprintln!(
                "etcd-compare: starting 3 waggle nodes (RF 3, {} partition(s), raw append)",
                args.partitions
            );
            let spec = ClusterSpec {
                nodes: 3,
                partitions: args.partitions,
                replication_factor: 3,
                site_of: vec![0, 0, 0],
                rtt_ms: 0,
                raw_append: true,
                env: Vec::new(),
                spare: 0,
            };
            let work = args.out.join("work");
            let brokers = Brokers::start(&bin, &spec, &work)?;
            let result = runtime.block_on(async {
                let leaders = waggle_leaders(&brokers.gateways, args.partitions).await?;
                let target = Target::waggle(&leaders, args.shape.connections).await?;
                measure("waggle", &target, args).await
            });
            if result.is_err() {
                for i in 0..spec.nodes {
                    eprintln!("{}", brokers.log_tail(i));
                }
            }
            drop(brokers);
            let (run, report) = result?;
            (Some(run), report)
        }
        None => (None, None),
    };

    let ratios = match (&etcd_run, &waggle_run) {
        (Some(e), Some(w)) => ratios(e, w, args.search),
        _ => None,
    };
    let summary = CompareSummary {
        etcd_version,
        partitions: args.partitions,
        value_bytes: args.shape.value_bytes,
        search: args.search,
        slo_p99_ms: args.slo_p99_ms,
        load_average: [load_before, crate::scenario::load_average()],
        etcd: etcd_run,
        waggle: waggle_run,
        ratios,
    };
    print_comparison(&summary);
    write_outputs(args, &summary, etcd_report.as_ref(), waggle_report.as_ref())?;
    Ok(summary)
}

fn print_comparison(summary: &CompareSummary) {
    let best = |run: &Option<SystemRun>| run.as_ref().and_then(|r| r.best_summary().cloned());
    println!("\ncompared (highest throughput that held):");
    print_header();
    for s in [best(&summary.etcd), best(&summary.waggle)]
        .into_iter()
        .flatten()
    {
        print_row(&s);
    }
    if let Some(r) = &summary.ratios {
        println!(
            "waggle / etcd: throughput {:.2}x, p99 {:.2}x",
            r.throughput, r.p99
        );
        match (r.throughput_at_etcd_p99, r.clients_at_etcd_p99) {
            (Some(ratio), Some(clients)) => println!(
                "waggle at or below etcd's p99: {ratio:.2}x etcd's throughput ({clients} clients)"
            ),
            _ if summary.search => println!("waggle at or below etcd's p99: no step"),
            _ => {}
        }
    }
}

fn write_outputs(
    args: &Args,
    summary: &CompareSummary,
    etcd: Option<&AppendReport>,
    waggle: Option<&AppendReport>,
) -> anyhow::Result<()> {
    let dir = &args.out;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |file: &str, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        "etcd-compare.json",
        serde_json::to_string_pretty(summary).context("summary JSON")?,
    )?;
    let mut series = Vec::new();
    for (name, report) in [("etcd", etcd), ("waggle", waggle)] {
        if let Some(report) = report {
            write(
                &format!("etcd-compare-{name}.hgrm"),
                load_report::hgrm(&report.latency),
            )?;
            series.push((name, &report.latency));
        }
    }
    write(
        "etcd-compare-latency.svg",
        crate::svg::latency_plot("replicated write latency by percentile", &series),
    )?;
    let bars: Vec<(String, f64)> = [&summary.etcd, &summary.waggle]
        .into_iter()
        .flatten()
        .flat_map(|run| &run.steps)
        .map(|s| {
            let mark = if s.failed_because.is_none() { "" } else { "!" };
            (
                format!("{} {}{mark}", s.summary.system, s.summary.clients),
                s.summary.throughput_per_s,
            )
        })
        .collect();
    write(
        "etcd-compare-steps.svg",
        crate::svg::bar_plot(
            "replicated writes per second by system and clients",
            "system and concurrent clients; ! = did not hold",
            &bars,
        ),
    )?;
    println!("outputs in {}", dir.display());
    Ok(())
}

/// Runs `waggle-perf etcd-compare`.
pub fn run(args: Args) -> anyhow::Result<()> {
    run_compare(&args).map(|_| ())
}
