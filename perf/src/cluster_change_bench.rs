//! `waggle-perf cluster-change`: cluster changes under load, on real brokers
//! on loopback, carried out by the operator's own command (`waggle cluster`,
//! a separate process, as an operator or a playbook runs it).
//!
//! `--scenario region-failover`: four brokers, even ids in one site and odd
//! ids in the other, every partition on all four (replication factor 4). A
//! client creates one_task instances at `--rate` (open loop, each request
//! retried on `UNAVAILABLE`, `RESOURCE_EXHAUSTED` and `DEADLINE_EXCEEDED`)
//! through broker 0. Then:
//! 1. brokers 1 and 3 (one site) are killed with SIGKILL, and at once
//!    `waggle cluster remove 1 3 --force --wait` runs against broker 0. The
//!    **gap** is the longest a request waited past the loss: the time from
//!    losing the region to serving again, counting the operator's command;
//! 2. the failback: brokers 1 and 3 start again on empty data directories
//!    and `waggle cluster add 1 3 --replication-factor 4 --wait` runs under
//!    the same load: its duration, and the p99 create latency meanwhile.
//!
//! `--scenario scale-out`: three brokers (`--partitions` partitions,
//! replication factor 3) with addresses for five. `--concurrency` clients
//! create instances in a closed loop through brokers 0 to 2; then brokers 3
//! and 4 start and `waggle cluster add 3 4 --wait` moves the partitions
//! round-robin over five. Throughput (acknowledged creations per second)
//! before, during and after the change, with the p99 latency.
//!
//! `--scenario scale-partitions`: three brokers (`--partitions` partitions,
//! replication factor 3) under the same closed loop; `waggle cluster scale
//! --partitions N --wait` adds partitions (`--to-partitions`). Throughput
//! before, during and after, and the share of the creations after the
//! change that the new partitions took.
//!
//! The baseline is the same run's load before the change. Every loop is
//! bounded: the load by `MAX_LOAD`, each request by `MAX_REQUEST_WAIT`
//! (see `failover_bench`), the commands by their `--timeout-s`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use node::gateway::proto::gateway_client::GatewayClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::brokers::{find_waggle, Brokers, ClusterSpec};
use crate::failover_bench::{create, measure, nearest_rank, wait_for_distribution, Sent};
use crate::load::{connect, deploy};
use crate::restart_bench::replace_section;
use crate::scenario::load_average;

/// Load before the change (the baseline's window).
const LOAD_BEFORE: Duration = Duration::from_secs(3);
/// Load after the change, to see the throughput settle.
const LOAD_AFTER: Duration = Duration::from_secs(3);
/// Longest the load runs.
const MAX_LOAD: Duration = Duration::from_secs(600);
/// Longest a `waggle cluster` command may wait for its change.
const COMMAND_TIMEOUT_S: u64 = 300;
/// Highest request rate.
const MAX_RATE: u64 = 5_000;
/// Most closed-loop clients.
const MAX_CONCURRENCY: usize = 512;

/// Heading of the section `--markdown` writes.
pub const SECTION: &str = "## Cluster changes under load";

/// Which change.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Lose a region of 2+2 brokers, fail over by forced removal, fail back.
    RegionFailover,
    /// Scale 3 brokers to 5 under a closed-loop load.
    ScaleOut,
    /// Add partitions (`--to-partitions`) to 3 brokers under a closed-loop
    /// load.
    ScalePartitions,
}

/// Options of `waggle-perf cluster-change`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The change.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Partitions.
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Instances created per second (region-failover, open loop).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Clients in flight (scale-out and scale-partitions, closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The partition count scale-partitions makes (default: twice
    /// `--partitions`).
    #[arg(long)]
    pub to_partitions: Option<u32>,
    /// The `waggle` binary (default: `$WAGGLE_BIN`, else beside `waggle-perf`).
    #[arg(long)]
    pub waggle: Option<PathBuf>,
    /// Where the brokers' directories and `cluster-change-<scenario>.json` go.
    #[arg(long, default_value = "perf/out")]
    pub out: PathBuf,
    /// Write the figures into this RESULTS.md (section `SECTION`).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Requests in one window of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Its length, in seconds.
    pub seconds: f64,
    /// Creations acknowledged in it, per second.
    pub per_second: f64,
    /// p99 latency of the requests started in it, in ms.
    pub p99_ms: f64,
}

/// The figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRun {
    /// The scenario.
    pub scenario: Scenario,
    /// Options.
    pub partitions: u32,
    /// Options.
    pub rate: u64,
    /// Options.
    pub concurrency: usize,
    /// Region failover: the longest wait past the loss, in ms.
    pub gap_ms: Option<f64>,
    /// Each command, with how long it ran (ms).
    pub commands: Vec<(String, f64)>,
    /// Before the change (the baseline).
    pub before: Window,
    /// While the (last) change ran.
    pub during: Window,
    /// After it.
    pub after: Window,
    /// Scale-partitions: the partitions after the change, and the share of
    /// the creations acknowledged after it that the new partitions took.
    pub new_partitions: Option<(u32, f64)>,
    /// Requests sent, and those never acknowledged.
    pub requests: usize,
    /// See `requests`.
    pub failed: usize,
    /// Load average before and after.
    pub load_average: (String, String),
}

/// Runs `waggle-perf cluster-change`.
pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_RATE).contains(&args.rate),
        "--rate {}: expected 1 to {MAX_RATE}",
        args.rate
    );
    ensure!(
        (1..=MAX_CONCURRENCY).contains(&args.concurrency),
        "--concurrency {}: expected 1 to {MAX_CONCURRENCY}",
        args.concurrency
    );
    ensure!(
        (1..=64).contains(&args.partitions),
        "--partitions {}: expected 1 to 64",
        args.partitions
    );
    let waggle = find_waggle(args.waggle.as_deref())?
        .canonicalize()
        .context("resolving the waggle binary")?;
    let (nodes, spare, replication_factor) = match args.scenario {
        Scenario::RegionFailover => (4, 0, 4),
        Scenario::ScaleOut => (3, 2, 3),
        Scenario::ScalePartitions => (3, 0, 3),
    };
    let to_partitions = args.to_partitions.unwrap_or(2 * args.partitions);
    ensure!(
        !matches!(args.scenario, Scenario::ScalePartitions)
            || (args.partitions + 1..=64).contains(&to_partitions),
        "--to-partitions {to_partitions}: expected {} to 64",
        args.partitions + 1
    );
    let spec = ClusterSpec {
        nodes,
        partitions: args.partitions,
        replication_factor,
        site_of: (0..nodes).map(|i| i % 2).collect(),
        rtt_ms: 0,
        raw_append: false,
        env: Vec::new(),
        spare,
    };
    let before_load = load_average();
    let mut brokers = Brokers::start(&waggle, &spec, &args.out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let first = runtime
        .block_on(connect(&brokers.gateways[..1], 1))?
        .remove(0);
    runtime.block_on(deploy(first.clone(), Duration::from_secs(60)))?;
    runtime.block_on(wait_for_distribution(first, args.partitions))?;
    let outcome = match args.scenario {
        Scenario::RegionFailover => region_failover(&runtime, &mut brokers, &waggle, &args),
        Scenario::ScaleOut => scale_out(&runtime, &mut brokers, &waggle, &args),
        Scenario::ScalePartitions => {
            scale_partitions(&runtime, &mut brokers, &waggle, &args, to_partitions)
        }
    };
    let mut result = match outcome {
        Ok(result) => result,
        Err(e) => {
            let tails: Vec<String> = (0..nodes + spare).map(|i| brokers.log_tail(i)).collect();
            return Err(e.context(tails.join("\n")));
        }
    };
    drop(brokers);
    result.load_average = (before_load, load_average());
    std::fs::create_dir_all(&args.out)?;
    let name = match args.scenario {
        Scenario::RegionFailover => "region-failover",
        Scenario::ScaleOut => "scale-out",
        Scenario::ScalePartitions => "scale-partitions",
    };
    let json = args.out.join(format!("cluster-change-{name}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let section = markdown(&result);
    println!("{section}");
    if let Some(path) = &args.markdown {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let heading = heading(args.scenario);
        std::fs::write(path, replace_section(&old, &heading, &section))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn heading(scenario: Scenario) -> String {
    match scenario {
        Scenario::RegionFailover => format!("{SECTION}: a region lost, failed over and back"),
        Scenario::ScaleOut => format!("{SECTION}: 3 to 5 brokers"),
        Scenario::ScalePartitions => format!("{SECTION}: partitions added"),
    }
}

/// The load of a run: what every request did, since `epoch`.
struct Load {
    epoch: tokio::time::Instant,
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Open loop: a request every `1 / rate` s through `channel`.
    fn open(runtime: &tokio::runtime::Runtime, channel: Channel, rate: u64) -> Load {
        let (epoch, sent, stop) = Self::parts();
        let task = {
            let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
            runtime.spawn(async move {
                let mut tasks = Vec::new();
                for i in 0.. {
                    let intended = Duration::from_secs_f64(i as f64 / rate as f64);
                    if stop.load(Ordering::Acquire) || intended > MAX_LOAD {
                        break;
                    }
                    tokio::time::sleep_until(epoch + intended).await;
                    let (channel, sent) = (channel.clone(), Arc::clone(&sent));
                    tasks.push(tokio::spawn(record(channel, epoch, intended, sent)));
                }
                for task in tasks {
                    let _ = task.await;
                }
            })
        };
        Load {
            epoch,
            sent,
            stop,
            task,
        }
    }

    /// Closed loop: `concurrency` clients over `channels`, each sending its
    /// next request when the last is answered.
    fn closed(
        runtime: &tokio::runtime::Runtime,
        channels: Vec<Channel>,
        concurrency: usize,
    ) -> Load {
        let (epoch, sent, stop) = Self::parts();
        let task = {
            let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
            runtime.spawn(async move {
                let mut tasks = Vec::new();
                for c in 0..concurrency {
                    let channel = channels[c % channels.len()].clone();
                    let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
                    tasks.push(tokio::spawn(async move {
                        while !stop.load(Ordering::Acquire) && epoch.elapsed() < MAX_LOAD {
                            let intended = epoch.elapsed();
                            record(channel.clone(), epoch, intended, Arc::clone(&sent)).await;
                        }
                    }));
                }
                for task in tasks {
                    let _ = task.await;
                }
            })
        };
        Load {
            epoch,
            sent,
            stop,
            task,
        }
    }

    fn parts() -> (tokio::time::Instant, Arc<Mutex<Vec<Sent>>>, Arc<AtomicBool>) {
        (tokio::time::Instant::now(), Arc::default(), Arc::default())
    }

    /// Time since the load started.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Stops the load and gives every request's fate.
    fn finish(self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Sent>> {
        self.stop.store(true, Ordering::Release);
        runtime
            .block_on(self.task)
            .context("the load generator stopped")?;
        let sent = self.sent.lock().expect("never poisoned").clone();
        Ok(sent)
    }
}

/// Creates one instance (retrying) and records its fate in `sent`.
async fn record(
    channel: Channel,
    epoch: tokio::time::Instant,
    intended: Duration,
    sent: Arc<Mutex<Vec<Sent>>>,
) {
    let (acked, retried, partition) = create(GatewayClient::new(channel), epoch).await;
    sent.lock().expect("never poisoned").push(Sent {
        intended,
        acked,
        retried,
        partition,
    });
}

/// The requests of `sent` started in `[from, to)`: acknowledgements per
/// second over the window, and their p99 latency.
fn window(sent: &[Sent], from: Duration, to: Duration) -> Window {
    let seconds = to.saturating_sub(from).as_secs_f64();
    let acked = sent
        .iter()
        .filter(|s| s.acked.is_some_and(|a| a >= from && a < to))
        .count();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter(|s| s.intended >= from && s.intended < to)
        .filter_map(|s| s.acked.map(|a| a.saturating_sub(s.intended)))
        .collect();
    latencies.sort();
    Window {
        seconds,
        per_second: if seconds > 0.0 {
            acked as f64 / seconds
        } else {
            0.0
        },
        p99_ms: nearest_rank(&latencies, 0.99).as_secs_f64() * 1e3,
    }
}

/// Runs `waggle cluster <args>` against broker `node`'s management port:
/// its output as JSON, and how long it ran.
fn cluster_command(
    waggle: &Path,
    brokers: &Brokers,
    node: usize,
    args: &[&str],
) -> anyhow::Result<(serde_json::Value, Duration)> {
    let port = brokers.management_port(node).context("no such broker")?;
    let address = format!("http://127.0.0.1:{port}");
    let timeout = COMMAND_TIMEOUT_S.to_string();
    let start = Instant::now();
    let output = std::process::Command::new(waggle)
        .args(["cluster", "--management-address", &address])
        .args(args)
        .args(["--timeout-s", &timeout])
        .output()
        .context("running waggle cluster")?;
    let took = start.elapsed();
    ensure!(
        output.status.success(),
        "waggle cluster {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let shown = serde_json::from_slice(&output.stdout).context("waggle cluster printed no JSON")?;
    Ok((shown, took))
}

fn region_failover(
    runtime: &tokio::runtime::Runtime,
    brokers: &mut Brokers,
    waggle: &Path,
    args: &Args,
) -> anyhow::Result<ChangeRun> {
    let channel = runtime
        .block_on(connect(&brokers.gateways[..1], 1))?
        .remove(0);
    let load = Load::open(runtime, channel, args.rate);
    std::thread::sleep(LOAD_BEFORE);
    let lost_at = load.now();
    brokers.kill9(1)?;
    brokers.kill9(3)?;
    let removal = cluster_command(
        waggle,
        brokers,
        0,
        &["remove", "1", "3", "--force", "--wait"],
    );
    let (_, failover_took) = removal?;
    eprintln!("failover: the forced removal completed in {failover_took:?}");
    std::thread::sleep(LOAD_AFTER);
    brokers.respawn(1, true)?;
    brokers.respawn(3, true)?;
    brokers.wait_ready()?;
    let failback_from = load.now();
    let add = ["add", "1", "3", "--replication-factor", "4", "--wait"];
    let (_, failback_took) = cluster_command(waggle, brokers, 0, &add)?;
    let failback_to = load.now();
    eprintln!("failback: the brokers were added back in {failback_took:?}");
    std::thread::sleep(LOAD_AFTER);
    let end = load.now();
    let sent = load.finish(runtime)?;
    let (gap, _) = measure(&sent, lost_at);
    Ok(ChangeRun {
        scenario: args.scenario,
        partitions: args.partitions,
        rate: args.rate,
        concurrency: 0,
        gap_ms: Some(gap.as_secs_f64() * 1e3),
        commands: vec![
            (
                "waggle cluster remove 1 3 --force --wait".into(),
                failover_took.as_secs_f64() * 1e3,
            ),
            (
                "waggle cluster add 1 3 --replication-factor 4 --wait".into(),
                failback_took.as_secs_f64() * 1e3,
            ),
        ],
        before: window(&sent, Duration::ZERO, lost_at),
        during: window(&sent, failback_from, failback_to),
        after: window(&sent, failback_to, end),
        new_partitions: None,
        requests: sent.len(),
        failed: sent.iter().filter(|s| s.acked.is_none()).count(),
        load_average: Default::default(),
    })
}

fn scale_out(
    runtime: &tokio::runtime::Runtime,
    brokers: &mut Brokers,
    waggle: &Path,
    args: &Args,
) -> anyhow::Result<ChangeRun> {
    let (run, _, _) = under_closed_load(runtime, brokers, args, |brokers| {
        brokers.start_spare()?;
        brokers.start_spare()?;
        brokers.wait_ready()?;
        let command = ["add", "3", "4", "--wait"];
        let (_, took) = cluster_command(waggle, brokers, 0, &command)?;
        Ok((command.join(" "), took))
    })?;
    Ok(run)
}

fn scale_partitions(
    runtime: &tokio::runtime::Runtime,
    brokers: &mut Brokers,
    waggle: &Path,
    args: &Args,
    to: u32,
) -> anyhow::Result<ChangeRun> {
    let count = to.to_string();
    let (mut run, sent, change_to) = under_closed_load(runtime, brokers, args, |brokers| {
        let command = ["scale", "--partitions", count.as_str(), "--wait"];
        let (_, took) = cluster_command(waggle, brokers, 0, &command)?;
        Ok((command.join(" "), took))
    })?;
    run.new_partitions = Some((to, new_share(&sent, change_to, args.partitions)));
    Ok(run)
}

/// Runs `change` (which gives the `waggle cluster` arguments it ran and
/// how long it took) under `--concurrency` closed-loop clients through
/// every broker, with [`LOAD_BEFORE`] of load before it (the baseline) and
/// [`LOAD_AFTER`] after: the figures, every request's fate, and when the
/// change ended.
fn under_closed_load(
    runtime: &tokio::runtime::Runtime,
    brokers: &mut Brokers,
    args: &Args,
    change: impl FnOnce(&mut Brokers) -> anyhow::Result<(String, Duration)>,
) -> anyhow::Result<(ChangeRun, Vec<Sent>, Duration)> {
    let channels = runtime.block_on(connect(&brokers.gateways, 1))?;
    let load = Load::closed(runtime, channels, args.concurrency);
    std::thread::sleep(LOAD_BEFORE);
    let change_from = load.now();
    let (command, took) = change(brokers)?;
    let change_to = load.now();
    eprintln!("waggle cluster {command}: {took:?}");
    std::thread::sleep(LOAD_AFTER);
    let end = load.now();
    let sent = load.finish(runtime)?;
    let run = ChangeRun {
        scenario: args.scenario,
        partitions: args.partitions,
        rate: 0,
        concurrency: args.concurrency,
        gap_ms: None,
        commands: vec![(
            format!("waggle cluster {command}"),
            took.as_secs_f64() * 1e3,
        )],
        before: window(&sent, Duration::ZERO, change_from),
        during: window(&sent, change_from, change_to),
        after: window(&sent, change_to, end),
        new_partitions: None,
        requests: sent.len(),
        failed: sent.iter().filter(|s| s.acked.is_none()).count(),
        load_average: Default::default(),
    };
    Ok((run, sent, change_to))
}

/// The share of the creations acknowledged from `from` on that were made on
/// partitions above `old`.
fn new_share(sent: &[Sent], from: Duration, old: u32) -> f64 {
    let after: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.acked.is_some_and(|a| a >= from))
        .collect();
    let new = after
        .iter()
        .filter(|s| s.partition.is_some_and(|p| p > old))
        .count();
    ratio(new as f64, after.len() as f64)
}

fn markdown(run: &ChangeRun) -> String {
    let mut out = format!("{}\n\n", heading(run.scenario));
    match run.scenario {
        Scenario::RegionFailover => out.push_str(&format!(
            "`waggle-perf cluster-change --scenario region-failover --partitions {p} --rate {rate}`: four brokers on \
             loopback, even ids in one site and odd ids in the other, {p} partitions on all four (replication factor 4). \
             A client creates one_task instances at {rate}/s (open loop, retrying UNAVAILABLE, RESOURCE_EXHAUSTED and \
             DEADLINE_EXCEEDED) through broker 0. Brokers 1 and 3 are killed with SIGKILL and at once \
             `waggle cluster remove 1 3 --force --wait` runs; the gap is the longest a request waited past the loss \
             (region lost to serving again, counting the operator's command). Then brokers 1 and 3 start on empty disks \
             and `waggle cluster add 1 3 --replication-factor 4 --wait` runs under the same load. Baseline of the same \
             run: the load before the loss.\n\n",
            p = run.partitions,
            rate = run.rate,
        )),
        Scenario::ScaleOut => out.push_str(&format!(
            "`waggle-perf cluster-change --scenario scale-out --partitions {p} --concurrency {c}`: three brokers on \
             loopback, {p} partitions of replication factor 3, with addresses for five. {c} clients create one_task \
             instances in a closed loop through brokers 0 to 2; brokers 3 and 4 start on empty disks and \
             `waggle cluster add 3 4 --wait` moves the replicas round-robin over five (joins, priorities, leaves) \
             while the load runs. Baseline of the same run: the throughput before the change.\n\n",
            p = run.partitions,
            c = run.concurrency,
        )),
        Scenario::ScalePartitions => out.push_str(&format!(
            "`waggle-perf cluster-change --scenario scale-partitions --partitions {p} --to-partitions {to} \
             --concurrency {c}`: three brokers on loopback, {p} partitions of replication factor 3. {c} clients \
             create one_task instances in a closed loop through brokers 0 to 2 while \
             `waggle cluster scale --partitions {to} --wait` adds partitions (Zeebe 8.8's scale up: the new \
             partitions bootstrap from partition 1, then take new instances). Baseline of the same run: the \
             throughput before the change.\n\n",
            p = run.partitions,
            to = run.new_partitions.map_or(0, |(to, _)| to),
            c = run.concurrency,
        )),
    }
    if let Some(gap) = run.gap_ms {
        out.push_str(&format!(
            "Region lost to serving again (gap), counting the forced removal: **{gap:.0} ms**.\n\n"
        ));
    }
    out.push_str("| command | ran for |\n|---|---|\n");
    for (command, ms) in &run.commands {
        out.push_str(&format!("| `{command}` | {:.1} s |\n", ms / 1e3));
    }
    let during = match run.scenario {
        Scenario::RegionFailover => "during the failback",
        Scenario::ScaleOut | Scenario::ScalePartitions => "during the change",
    };
    out.push_str(&format!(
        "\n| window | length | acknowledged creations/s | p99 create latency | throughput / before |\n|---|---|---|---|---|\n\
         | before (baseline) | {:.1} s | {:.0} | {:.1} ms | 1.00 |\n\
         | {during} | {:.1} s | {:.0} | {:.1} ms | {:.2} |\n\
         | after | {:.1} s | {:.0} | {:.1} ms | {:.2} |\n\n",
        run.before.seconds,
        run.before.per_second,
        run.before.p99_ms,
        run.during.seconds,
        run.during.per_second,
        run.during.p99_ms,
        ratio(run.during.per_second, run.before.per_second),
        run.after.seconds,
        run.after.per_second,
        run.after.p99_ms,
        ratio(run.after.per_second, run.before.per_second),
    ));
    if let Some((to, share)) = run.new_partitions {
        out.push_str(&format!(
            "After the change, partitions {} to {to} took {:.0} % of the acknowledged creations \
             (an even share: {:.0} %).\n\n",
            run.partitions + 1,
            share * 100.0,
            ratio(f64::from(to - run.partitions), f64::from(to)) * 100.0
        ));
    }
    out.push_str(&format!(
        "Requests never acknowledged: {} of {}. Load average {} → {}.\n",
        run.failed, run.requests, run.load_average.0, run.load_average.1
    ));
    out
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn sent(intended: u64, acked: Option<u64>) -> Sent {
        Sent {
            intended: at(intended),
            acked: acked.map(at),
            retried: 0,
            partition: None,
        }
    }

    #[test]
    fn a_window_counts_the_acknowledgements_in_it_and_the_latency_of_the_requests_it_started() {
        let sent = [
            sent(0, Some(10)),
            sent(900, Some(1_100)),
            sent(1_500, Some(1_520)),
            sent(1_600, None),
        ];
        let first = window(&sent, at(0), at(1_000));
        assert_eq!(
            first.per_second, 1.0,
            "one acknowledged in the first second"
        );
        assert_eq!(first.p99_ms, 200.0, "the slowest started in it");
        let second = window(&sent, at(1_000), at(2_000));
        assert_eq!(second.per_second, 2.0);
        assert_eq!(second.p99_ms, 20.0);
        assert_eq!(window(&sent, at(5), at(5)).per_second, 0.0);
    }

    #[test]
    fn the_new_partitions_share_counts_the_creations_acknowledged_after_the_change() {
        let on = |acked: u64, partition: u32| Sent {
            partition: Some(partition),
            ..sent(0, Some(acked))
        };
        let sent = [
            on(10, 3),
            on(900, 1),
            on(1_000, 3),
            on(1_100, 2),
            sent(1_200, None),
        ];
        // From 1000 ms on: partitions 3 and 2, one of them new.
        assert_eq!(new_share(&sent, at(1_000), 2), 0.5);
        assert_eq!(new_share(&sent, at(0), 2), 0.5);
        assert_eq!(new_share(&sent, at(5_000), 2), 0.0, "nothing after");
    }
}
