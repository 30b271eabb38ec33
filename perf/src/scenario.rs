//! `waggle-perf scenario NAME`: starts the brokers of one scenario on
//! 127.0.0.1 (with WAN relays between sites), deploys one_task, and either
//! runs one fixed-rate load or searches the maximum sustainable throughput:
//! the rate rises by `--step-factor` until a step fails (end-to-end p99 above
//! the SLO, backpressure above the limit, an error, or instances left
//! unfinished), then one step halfway between the last good and the first
//! bad rate refines the answer. The highest rate that held is reported.
//!
//! In the zone and region scenarios every replicated command crosses sites:
//! distance adds latency by design, and these scenarios measure what it
//! costs in throughput. There a step holds on throughput alone (no latency
//! SLO) unless `--slo-rtt-factor` sets the SLO to `--slo-p99-ms + factor ×
//! RTT`. The latencies are reported either way.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::brokers::{Brokers, ClusterSpec};
use crate::load::{self, LoadReport, Shape};
use crate::load_report::{self, Summary};

/// A step keeps up when it completes at least this share of its rate per
/// second (the rest is the tail after the window).
pub const MIN_KEEP_UP: f64 = 0.9;
/// Most steps of one search.
pub const MAX_SEARCH_STEPS: usize = 16;
/// Across sites each worker's capacity grows by this factor per ms of
/// round trip (see `worker_capacity`).
pub const CAPACITY_PER_RTT_MS: f64 = 0.2;

/// The jobs one worker may hold in a scenario whose sites are `rtt_ms`
/// apart: `capacity × (1 + 0.2 × rtt_ms)`. A job is held from activation
/// until its completion is acknowledged, which across sites takes a
/// forward to the leader and a commit, two round trips or more. Without
/// the growth, workers × capacity / holding time would cap the throughput
/// (Little's law) and the scenario would measure the load generator.
pub fn worker_capacity(capacity: usize, rtt_ms: u64) -> usize {
    let grown = capacity as f64 * (1.0 + CAPACITY_PER_RTT_MS * rtt_ms as f64);
    (grown.ceil() as usize).clamp(capacity, load::MAX_WORKER_CAPACITY)
}

/// The scenarios of the benchmark.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// One node (`waggle dev`), one partition.
    Single,
    /// 3 nodes, replication factor 3, 3 partitions, one zone.
    ThreeNodes,
    /// 3 nodes in 3 zones, 1 ms round trip between zones.
    #[value(name = "zones-1ms")]
    Zones1ms,
    /// 3 nodes in 3 regions, 40 ms round trip between regions.
    #[value(name = "regions-40ms")]
    Regions40ms,
    /// 3 nodes in 3 regions, 80 ms round trip between regions.
    #[value(name = "regions-80ms")]
    Regions80ms,
    /// 4 nodes in 2 regions (2 + 2), replication factor 4, 40 ms round trip.
    #[value(name = "dual-region-40ms")]
    DualRegion40ms,
}

impl Name {
    /// Every scenario, in report order.
    pub const ALL: [Name; 6] = [
        Name::Single,
        Name::ThreeNodes,
        Name::Zones1ms,
        Name::Regions40ms,
        Name::Regions80ms,
        Name::DualRegion40ms,
    ];

    /// The name used on the command line and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Single => "single",
            Name::ThreeNodes => "three-nodes",
            Name::Zones1ms => "zones-1ms",
            Name::Regions40ms => "regions-40ms",
            Name::Regions80ms => "regions-80ms",
            Name::DualRegion40ms => "dual-region-40ms",
        }
    }

    /// The cluster this scenario starts.
    pub fn spec(self) -> ClusterSpec {
        let three = |rtt_ms| ClusterSpec {
            nodes: 3,
            partitions: 3,
            replication_factor: 3,
            site_of: if rtt_ms == 0 {
                vec![0, 0, 0]
            } else {
                vec![0, 1, 2]
            },
            rtt_ms,
            raw_append: false,
            env: Vec::new(),
            spare: 0,
        };
        match self {
            Name::Single => ClusterSpec::single_node(Vec::new()),
            Name::ThreeNodes => three(0),
            Name::Zones1ms => three(1),
            Name::Regions40ms => three(40),
            Name::Regions80ms => three(80),
            Name::DualRegion40ms => ClusterSpec {
                nodes: 4,
                partitions: 4,
                replication_factor: 4,
                site_of: vec![0, 0, 1, 1],
                rtt_ms: 40,
                raw_append: false,
                env: Vec::new(),
                spare: 0,
            },
        }
    }
}

/// Options of `waggle-perf scenario`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The scenario.
    pub name: Name,
    #[command(flatten)]
    pub run: RunOptions,
}

/// How a scenario is run (shared with `waggle-perf results`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    /// The waggle binary (default: $WAGGLE_BIN, else next to waggle-perf).
    #[arg(long)]
    pub waggle: Option<PathBuf>,
    /// Run once at --rate instead of searching the sustainable maximum.
    #[arg(long)]
    pub fixed: bool,
    /// End-to-end p99 above this fails a search step, in ms.
    #[arg(long, default_value_t = 100.0)]
    pub slo_p99_ms: f64,
    /// Across sites, apply the SLO plus this many inter-site round trips;
    /// without it, steps across sites hold on throughput alone
    /// (backpressure, errors, every instance finished).
    #[arg(long)]
    pub slo_rtt_factor: Option<f64>,
    /// Backpressure above this share of creates fails a search step.
    #[arg(long, default_value_t = 0.01)]
    pub max_backpressure: f64,
    /// The search multiplies the rate by this after a step that held.
    #[arg(long, default_value_t = 1.5)]
    pub step_factor: f64,
    /// The search stops at this rate.
    #[arg(long, default_value_t = 50_000.0)]
    pub max_rate: f64,
    /// Warm-up before measuring, in seconds (not reported).
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// Directory for the outputs and the brokers' working directories.
    #[arg(long, default_value = "perf/out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub shape: Shape,
}

/// One step of a scenario.
#[derive(Serialize, Clone, Debug)]
pub struct Step {
    /// The run's summary.
    pub summary: Summary,
    /// Whether it met the SLO and the backpressure limit.
    pub held: bool,
    /// Why not, if it did not.
    pub failed_because: Option<String>,
}

/// The JSON summary of a scenario.
#[derive(Serialize, Clone, Debug)]
pub struct ScenarioSummary {
    /// Scenario name.
    pub scenario: String,
    /// Nodes.
    pub nodes: usize,
    /// Partitions.
    pub partitions: u32,
    /// Replication factor.
    pub replication_factor: u32,
    /// Round trip between sites, ms.
    pub rtt_ms: u64,
    /// End-to-end p99 SLO applied, ms (`null`: none, across sites).
    pub slo_p99_ms: Option<f64>,
    /// Highest rate that held (instances/s), if any.
    pub max_sustainable_rate_per_s: Option<f64>,
    /// Completed instances per second (steady part) in the step that set it.
    pub max_sustainable_throughput_per_s: Option<f64>,
    /// /proc/loadavg before the brokers started and after they stopped
    /// (other work on the machine shows here).
    pub load_average: [String; 2],
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

impl ScenarioSummary {
    /// The step that held at the highest rate.
    pub fn best(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.held)
            .max_by(|a, b| a.summary.rate_per_s.total_cmp(&b.summary.rate_per_s))
    }
}

/// Why `report` does not hold, or `None` if it does.
pub(crate) fn verdict(
    report: &LoadReport,
    slo_p99_ms: f64,
    max_backpressure: f64,
) -> Option<String> {
    let p99_ms = report.end_to_end.value_at_quantile(0.99) as f64 / 1_000.0;
    if report.errors() > 0 {
        Some(format!("{} errors", report.errors()))
    } else if report.backpressure_ratio() > max_backpressure {
        Some(format!(
            "backpressure {:.2} %",
            100.0 * report.backpressure_ratio()
        ))
    } else if report.sent < report.shape.instances() {
        Some(format!(
            "the starter sent {} of {}",
            report.sent,
            report.shape.instances()
        ))
    } else if report.completed < report.created {
        Some(format!(
            "{} of {} instances unfinished after the drain",
            report.created - report.completed,
            report.created
        ))
    } else if report.steady_per_s() < MIN_KEEP_UP * report.shape.rate {
        Some(format!(
            "{:.0} completed/s (steady) < {:.0} % of the rate",
            report.steady_per_s(),
            100.0 * MIN_KEEP_UP
        ))
    } else if p99_ms > slo_p99_ms {
        Some(format!(
            "end-to-end p99 {p99_ms:.1} ms > {slo_p99_ms:.1} ms"
        ))
    } else {
        None
    }
}

/// Runs scenario `name`, printing its table and writing its outputs.
pub fn run_scenario(name: Name, options: &RunOptions) -> anyhow::Result<ScenarioSummary> {
    let waggle = crate::brokers::find_waggle(options.waggle.as_deref())?;
    let spec = name.spec();
    let slo_p99_ms = match (spec.rtt_ms, options.slo_rtt_factor) {
        (0, _) => options.slo_p99_ms,
        (rtt, Some(factor)) => options.slo_p99_ms + factor * rtt as f64,
        (_, None) => f64::INFINITY,
    };
    let work = options.out.join("work");
    std::fs::create_dir_all(&work)?;
    eprintln!(
        "{}: starting {} node(s) ({} partitions, RF {}, {} ms between sites)",
        name.as_str(),
        spec.nodes,
        spec.partitions,
        spec.replication_factor,
        spec.rtt_ms
    );
    let load_before = load_average();
    let brokers = Brokers::start(&waggle, &spec, &work)?;
    let runtime = load::runtime()?;
    let result = runtime.block_on(drive(name, &brokers, options, slo_p99_ms));
    let (forwarded, overflowed) = brokers.relay_counts();
    if forwarded > 0 {
        eprintln!(
            "{}: relays forwarded {forwarded} datagrams, dropped {overflowed} for full queues",
            name.as_str()
        );
    }
    if result.is_err() {
        for i in 0..spec.nodes {
            eprintln!("{}", brokers.log_tail(i));
        }
    }
    drop(brokers);
    let load_after = load_average();
    let (steps, best) = result?;
    let summary = ScenarioSummary {
        scenario: name.as_str().to_string(),
        nodes: spec.nodes,
        partitions: spec.partitions,
        replication_factor: spec.replication_factor,
        rtt_ms: spec.rtt_ms,
        slo_p99_ms: slo_p99_ms.is_finite().then_some(slo_p99_ms),
        max_sustainable_rate_per_s: best.as_ref().map(|(_, r)| r.shape.rate),
        max_sustainable_throughput_per_s: best.as_ref().map(|(_, r)| r.steady_per_s()),
        load_average: [load_before, load_after],
        steps,
    };
    if let Some((_, report)) = &best {
        load_report::write_outputs(&options.out, name.as_str(), report)?;
    }
    let path = options.out.join(format!("{}-scenario.json", name.as_str()));
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(
        options.out.join(format!("{}-steps.svg", name.as_str())),
        crate::svg::bar_plot(
            &format!("{}: completed instances/s per step", name.as_str()),
            "target rate (instances/s); * = held",
            &summary
                .steps
                .iter()
                .map(|s| {
                    let mark = if s.held { "*" } else { "" };
                    (
                        format!("{:.0}{mark}", s.summary.rate_per_s),
                        s.summary.steady_per_s,
                    )
                })
                .collect::<Vec<_>>(),
        ),
    )?;
    match (summary.max_sustainable_rate_per_s, options.fixed) {
        (_, true) => {}
        (Some(rate), false) => println!(
            "{}: maximum sustainable rate {rate:.0} instances/s (end-to-end p99 ≤ {} ms, backpressure ≤ {:.1} %)",
            name.as_str(),
            if slo_p99_ms.is_finite() { format!("{slo_p99_ms:.0}") } else { "any".into() },
            100.0 * options.max_backpressure
        ),
        (None, false) => println!("{}: no rate held", name.as_str()),
    }
    Ok(summary)
}

type Outcome = (Vec<Step>, Option<(Summary, LoadReport)>);

async fn drive(
    name: Name,
    brokers: &Brokers,
    options: &RunOptions,
    slo_p99_ms: f64,
) -> anyhow::Result<Outcome> {
    let channels = load::connect(&brokers.gateways, options.shape.connections).await?;
    let mut base = options.shape.clone();
    base.capacity = worker_capacity(base.capacity, name.spec().rtt_ms);
    load::deploy(channels[0].clone(), Duration::from_secs(60)).await?;
    if options.warmup_s > 0.0 {
        let mut warm = base.clone();
        warm.rate = options.shape.rate.min(200.0);
        warm.duration_s = options.warmup_s;
        warm.drain_s = 5.0;
        load::run_load(channels.clone(), warm, load_report::run_id()).await?;
    }
    let mut steps = Vec::new();
    let mut best: Option<(Summary, LoadReport)> = None;
    let mut rate = options.shape.rate;
    let mut failed_rate: Option<f64> = None;
    let mut refined = false;
    let mut retried_rate: Option<f64> = None;
    for _ in 0..MAX_SEARCH_STEPS {
        let mut shape = base.clone();
        shape.rate = rate;
        let report = load::run_load(channels.clone(), shape, load_report::run_id()).await?;
        let step_name = format!("{}@{rate:.0}", name.as_str());
        load_report::print_table(&[(&step_name, &report)]);
        let failed_because = verdict(&report, slo_p99_ms, options.max_backpressure);
        let summary = Summary::of(&step_name, &report);
        let held = failed_because.is_none();
        if let Some(why) = &failed_because {
            println!("    did not hold: {why}");
        }
        steps.push(Step {
            summary: summary.clone(),
            held,
            failed_because,
        });
        if options.fixed {
            best = Some((summary, report));
            break;
        }
        if !held && retried_rate != Some(rate) {
            // One failure may be noise from the shared machine: the same
            // rate runs once more before it counts as failed.
            retried_rate = Some(rate);
            continue;
        }
        if held {
            best = Some((summary, report));
        } else {
            failed_rate = Some(rate);
        }
        let good = best.as_ref().map(|(s, _)| s.rate_per_s);
        rate = match (good, failed_rate) {
            (Some(good), None) if good * options.step_factor <= options.max_rate => {
                good * options.step_factor
            }
            (Some(good), Some(bad)) if !refined && bad > good * 1.1 => {
                refined = true;
                (good + bad) / 2.0
            }
            (None, Some(bad)) if bad > 20.0 && !refined => {
                // Even the first rate failed: try a much lower one once.
                refined = true;
                bad / 4.0
            }
            _ => break,
        };
    }
    Ok((steps, best))
}

/// Runs `waggle-perf scenario`.
pub fn run(args: Args) -> anyhow::Result<()> {
    run_scenario(args.name, &args.run).map(|_| ())
}
