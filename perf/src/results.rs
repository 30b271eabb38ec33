//! `waggle-perf results`: runs every scenario's throughput search and the
//! etcd comparison (`etcd-compare --search`), and rewrites `perf/RESULTS.md`
//! (with the machine's description, the figures against the targets of the
//! benchmark and every step) and the plots it shows, in `perf/results/`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use crate::append_load::AppendShape;
use crate::etcd_compare::{self, CompareSummary, System};
use crate::scenario::{self, Name, RunOptions, ScenarioSummary};

/// Options of `waggle-perf results`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The report to write.
    #[arg(long, default_value = "perf/RESULTS.md")]
    pub markdown: PathBuf,
    /// Scenarios to run (default: all).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<Name>,
    /// The etcd binary of the comparison (default: `etcd` on the PATH).
    #[arg(long)]
    pub etcd: Option<PathBuf>,
    /// Leave the etcd comparison out.
    #[arg(long)]
    pub no_etcd: bool,
    /// Measured window of each step of the etcd comparison, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub etcd_duration_s: f64,
    /// Highest concurrency of the etcd comparison's search.
    #[arg(long, default_value_t = 512)]
    pub etcd_max_clients: usize,
    /// Partitions of the waggle cluster in the etcd comparison.
    #[arg(long, default_value_t = 1)]
    pub etcd_partitions: u32,
    /// Value size of the etcd comparison, bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    #[command(flatten)]
    pub run: RunOptions,
}

/// What became of the etcd comparison.
pub enum EtcdOutcome {
    /// It ran.
    Ran(Box<CompareSummary>),
    /// It did not, and why.
    Skipped(String),
}

impl Args {
    /// The `etcd-compare` options of this run.
    fn compare_args(&self) -> etcd_compare::Args {
        etcd_compare::Args {
            etcd: self.etcd.clone(),
            waggle: self.run.waggle.clone(),
            partitions: self.etcd_partitions,
            systems: vec![System::Etcd, System::Waggle],
            search: true,
            max_clients: self.etcd_max_clients,
            slo_p99_ms: self.run.slo_p99_ms,
            out: self.run.out.clone(),
            shape: AppendShape {
                clients: 1,
                rate: None,
                value_bytes: self.value_bytes,
                duration_s: self.etcd_duration_s,
                warmup_s: 1.0,
                max_requests: 10_000_000,
                connections: 4,
            },
        }
    }
}

/// One line of text from a command, or "unknown".
fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The machine, as RESULTS.md describes it.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    format!(
        "- CPU: {model}, {cores} cores available (load generator and brokers share them)\n\
         - Memory: {memory_gib:.1} GiB\n\
         - Kernel: {}\n\
         - Data directories on: {} (the brokers' and etcd's, same filesystem)\n\
         - waggle commit: {}\n\
         - Date: {}\n",
        command_line("uname", &["-sr"]),
        command_line(
            "findmnt",
            &["-n", "-o", "SOURCE,FSTYPE", "--target", "/tmp"]
        ),
        command_line("git", &["rev-parse", "--short", "HEAD"]),
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    )
}

fn slo(s: &ScenarioSummary) -> String {
    s.slo_p99_ms
        .map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "none".into())
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1_000.0)
}

/// The section on the etcd comparison.
fn etcd_section(md: &mut String, outcome: &EtcdOutcome) {
    let _ = writeln!(md, "## Raw replicated append vs etcd\n");
    let c = match outcome {
        EtcdOutcome::Skipped(why) => {
            let _ = writeln!(md, "Not measured: {why}.\n");
            return;
        }
        EtcdOutcome::Ran(c) => c,
    };
    let _ = writeln!(
        md,
        "`waggle-perf etcd-compare --search`: {} B values written by N concurrent clients (closed loop), \
         each waiting for its acknowledgement, N = 1, 2, 4, ... until the p99 exceeds {:.0} ms or two steps \
         in a row add less than 5 % throughput. etcd: {} members on 127.0.0.1, KV Put on the leader \
         ({}; fsync on commit, its default). waggle: 3 nodes, replication factor 3, {} partition(s), \
         `waggle_bench.RawAppend` on each partition's leader: the records go through Raft and the log \
         (synced, replicated to a quorum) without the engine. The two run one after the other, never at once; \
         the load generator shares the cores with them.\n",
        c.value_bytes,
        c.slo_p99_ms,
        crate::etcd::MEMBERS,
        c.etcd_version.as_deref().unwrap_or("etcd"),
        c.partitions
    );
    let _ = writeln!(
        md,
        "| system | clients | writes/s | p50 | p99 | p99.9 | max | held |\n|---|---|---|---|---|---|---|---|"
    );
    for run in [&c.etcd, &c.waggle].into_iter().flatten() {
        for (i, step) in run.steps.iter().enumerate() {
            let s = &step.summary;
            let mark = if run.best == Some(i) { "**" } else { "" };
            let _ = writeln!(
                md,
                "| {} | {} | {mark}{:.0}{mark} | {} ms | {} ms | {} ms | {} ms | {} |",
                s.system,
                s.clients,
                s.throughput_per_s,
                ms(s.latency.p50_us),
                ms(s.latency.p99_us),
                ms(s.latency.p999_us),
                ms(s.latency.max_us),
                match &step.failed_because {
                    None => "yes".to_string(),
                    Some(why) => format!("no: {why}"),
                }
            );
        }
    }
    let _ = writeln!(
        md,
        "\nBold: the step compared (the highest throughput that held).\n"
    );
    if let Some(r) = &c.ratios {
        let _ = writeln!(
            md,
            "- waggle / etcd, best against best: throughput **{:.2}×**, p99 {:.2}×",
            r.throughput, r.p99
        );
        match (r.throughput_at_etcd_p99, r.clients_at_etcd_p99) {
            (Some(ratio), Some(clients)) => {
                let _ = writeln!(
                    md,
                    "- waggle's throughput at or below etcd's p99 ({clients} clients) over etcd's best: **{ratio:.2}×** (target ≥ 5)"
                );
            }
            _ => {
                let _ = writeln!(md, "- no waggle step held at or below etcd's p99");
            }
        }
    }
    let _ = writeln!(
        md,
        "- plots: [latency of the steps compared](results/etcd-compare-latency.svg), \
         [writes per second per step](results/etcd-compare-steps.svg); load average {} → {}\n",
        c.load_average[0], c.load_average[1]
    );
}

/// Writes RESULTS.md from `summaries` and the etcd comparison.
pub fn markdown(summaries: &[ScenarioSummary], etcd: &EtcdOutcome, options: &RunOptions) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# waggle-perf results\n");
    let _ = writeln!(
        md,
        "Regenerate with `cargo build --release -p node -p perf && target/release/waggle-perf results` \
         (every scenario, a few minutes each, then the etcd comparison, which needs `apt-get install etcd-server`). \
         One scenario: `waggle-perf scenario NAME`; the comparison alone: `waggle-perf etcd-compare --search`.\n"
    );
    let _ = writeln!(md, "## Machine\n\n{}", machine());
    let _ = writeln!(
        md,
        "## Load\n\nZeebe's benchmark shape: the one_task process (start → service task → end), \
         variables of about {} B, {} workers with capacity {} each (across zones or regions \
         capacity × (1 + 0.2 × RTT in ms), so the jobs the workers hold during the round trips do not cap \
         the throughput), completion delay {} ms. \
         The starter is open loop; every latency is measured from the intended start time. \
         Activation is start → job at the worker; end to end is start → job completion acknowledged. \
         Each search step runs {} s and drains for up to {} s. A step holds when the end-to-end p99 \
         is within the SLO ({} ms; across zones or regions {}), backpressure is at most {:.1} %, \
         there is no error, every instance finished, and the steady completions per second reach 90 % of the rate \
         (done/s: the mean of the whole seconds from the median end-to-end latency to the end of the window).\n",
        options.shape.payload_bytes,
        options.shape.workers,
        options.shape.capacity,
        options.shape.completion_delay_ms,
        options.shape.duration_s,
        options.shape.drain_s,
        options.slo_p99_ms,
        match options.slo_rtt_factor {
            Some(f) => format!("plus {f} × the round trip"),
            None => "none: distance adds latency by design, the steps there hold on throughput".into(),
        },
        100.0 * options.max_backpressure
    );
    let _ = writeln!(md, "## Maximum sustainable throughput\n");
    let _ = writeln!(
        md,
        "| scenario | nodes / partitions / RF | RTT | SLO p99 | max rate held | done/s | create p50 / p99 | activation p50 / p99 | end to end p50 / p99 | jobs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for s in summaries {
        match s.best() {
            Some(best) => {
                let b = &best.summary;
                let _ = writeln!(
                    md,
                    "| {} | {} / {} / {} | {} ms | {} | {:.0}/s | {:.0} | {} / {} ms | {} / {} ms | {} / {} ms | {:?} |",
                    s.scenario,
                    s.nodes,
                    s.partitions,
                    s.replication_factor,
                    s.rtt_ms,
                    slo(s),
                    b.rate_per_s,
                    b.steady_per_s,
                    ms(b.create.p50_us),
                    ms(b.create.p99_us),
                    ms(b.activation.p50_us),
                    ms(b.activation.p99_us),
                    ms(b.end_to_end.p50_us),
                    ms(b.end_to_end.p99_us),
                    b.job_mode
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {} | {} / {} / {} | {} ms | {} | none held | | | | | |",
                    s.scenario,
                    s.nodes,
                    s.partitions,
                    s.replication_factor,
                    s.rtt_ms,
                    slo(s)
                );
            }
        }
    }
    let rate = |name: Name| {
        summaries
            .iter()
            .find(|s| s.scenario == name.as_str())
            .and_then(|s| s.max_sustainable_throughput_per_s)
    };
    let _ = writeln!(md, "\n## Against the targets\n");
    if let (Some(far), Some(near)) = (rate(Name::Regions80ms), rate(Name::ThreeNodes)) {
        let _ = writeln!(
            md,
            "- throughput(80 ms) / throughput(0 ms) = {far:.0} / {near:.0} = **{:.2}** (target ≥ 0.90; the 0 ms figure also holds the p99 SLO, the 80 ms one throughput alone)",
            far / near
        );
    }
    if let Some(single) = rate(Name::Single) {
        let _ = writeln!(md, "- single node: {single:.0}/s (target ≥ 10,000/s)");
    }
    if let Some(s) = summaries
        .iter()
        .find(|s| s.scenario == Name::ThreeNodes.as_str())
    {
        if let Some(best) = s.best() {
            let _ = writeln!(
                md,
                "- 3 nodes, RF 3: {:.0}/s at end-to-end p99 {} ms (target ≥ 3,000/s at p99 ≤ 50 ms); job activation p50 {} ms (target ≤ 2 ms)",
                best.summary.steady_per_s,
                ms(best.summary.end_to_end.p99_us),
                ms(best.summary.activation.p50_us)
            );
        }
    }
    match etcd {
        EtcdOutcome::Ran(c) => match &c.ratios {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "- raw replicated append vs etcd: {} × etcd's throughput at or below etcd's p99 (target ≥ 5); best against best {:.2}× the throughput at {:.2}× the p99\n",
                    r.throughput_at_etcd_p99
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "no step".into()),
                    r.throughput,
                    r.p99
                );
            }
            None => {
                let _ = writeln!(md, "- raw replicated append vs etcd: no step held\n");
            }
        },
        EtcdOutcome::Skipped(why) => {
            let _ = writeln!(
                md,
                "- raw replicated append vs etcd: not measured ({why})\n"
            );
        }
    }
    etcd_section(&mut md, etcd);
    let _ = writeln!(md, "## Plots\n");
    for s in summaries {
        let _ = writeln!(
            md,
            "- {0}: [latency](results/{0}-latency.svg), [completions per second](results/{0}-throughput.svg), [steps](results/{0}-steps.svg)",
            s.scenario
        );
    }
    let _ = writeln!(
        md,
        "\nLoad average (1, 5, 15 min) before and after each scenario; \
         above the core count, other work shared the machine:\n"
    );
    for s in summaries {
        let _ = writeln!(
            md,
            "- {}: {} → {}",
            s.scenario, s.load_average[0], s.load_average[1]
        );
    }
    let _ = writeln!(md, "\n## Every step\n");
    let _ = writeln!(
        md,
        "| step | done/s | completed | backpressure | create p99 | activation p50 / p99 | end to end p50 / p99 / max | held |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for s in summaries {
        for step in &s.steps {
            let m = &step.summary;
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {:.2} % | {} ms | {} / {} ms | {} / {} / {} ms | {} |",
                m.name,
                m.steady_per_s,
                m.completed,
                100.0 * m.backpressure_ratio,
                ms(m.create.p99_us),
                ms(m.activation.p50_us),
                ms(m.activation.p99_us),
                ms(m.end_to_end.p50_us),
                ms(m.end_to_end.p99_us),
                ms(m.end_to_end.max_us),
                match &step.failed_because {
                    None => "yes".to_string(),
                    Some(why) => format!("no: {why}"),
                }
            );
        }
    }
    md
}

/// The `## ` sections of `md`: (heading line, whole section).
fn sections(md: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(start) = rest
        .find("## ")
        .filter(|&i| i == 0 || rest[..i].ends_with('\n'))
    {
        let section = &rest[start..];
        let end = section.find("\n## ").map_or(section.len(), |i| i + 1);
        let heading = section.lines().next().unwrap_or_default();
        out.push((heading, &section[..end]));
        rest = &section[end..];
    }
    out
}

/// Appends to `text` every section of `old` that `text` does not have: the
/// hand-written analysis (`## What limits it`) and the figures of the commands
/// this one does not run (restart, export, failover, search, FEEL, nemesis,
/// simulator), in their order in `old`.
fn keep_other_sections(text: &mut String, old: &str) {
    let generated: Vec<String> = sections(text).iter().map(|(h, _)| h.to_string()).collect();
    for (heading, section) in sections(old) {
        if !generated.iter().any(|g| g == heading) {
            text.push('\n');
            text.push_str(section.trim_end());
            text.push('\n');
        }
    }
}

/// Runs `waggle-perf results`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let names = if args.scenarios.is_empty() {
        Name::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    let mut summaries = Vec::new();
    for name in names {
        summaries.push(scenario::run_scenario(name, &args.run)?);
    }
    let dir = args
        .markdown
        .parent()
        .map(|p| p.join("results"))
        .unwrap_or_else(|| PathBuf::from("results"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for s in &summaries {
        for suffix in ["latency.svg", "throughput.svg", "steps.svg"] {
            let file = format!("{}-{suffix}", s.scenario);
            let from = args.run.out.join(&file);
            if from.exists() {
                std::fs::copy(&from, dir.join(&file))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
    }
    let etcd = if args.no_etcd {
        EtcdOutcome::Skipped("left out with --no-etcd".into())
    } else if crate::etcd::find_etcd(args.etcd.as_deref()).is_err() {
        eprintln!("results: {}", crate::etcd::INSTALL_HINT);
        EtcdOutcome::Skipped("etcd is not installed (`apt-get install etcd-server`)".into())
    } else {
        let compare = etcd_compare::run_compare(&args.compare_args())?;
        for file in ["etcd-compare-latency.svg", "etcd-compare-steps.svg"] {
            let from = args.run.out.join(file);
            std::fs::copy(&from, dir.join(file))
                .with_context(|| format!("copying {}", from.display()))?;
        }
        EtcdOutcome::Ran(Box::new(compare))
    };
    let mut text = markdown(&summaries, &etcd, &args.run);
    let old = std::fs::read_to_string(&args.markdown).unwrap_or_default();
    keep_other_sections(&mut text, &old);
    std::fs::write(&args.markdown, &text)
        .with_context(|| format!("writing {}", args.markdown.display()))?;
    let all = args.run.out.join("results.json");
    let compare = match &etcd {
        EtcdOutcome::Ran(c) => serde_json::to_value(c)?,
        EtcdOutcome::Skipped(why) => serde_json::json!({ "skipped": why }),
    };
    let json = serde_json::json!({ "scenarios": summaries, "etcd_compare": compare });
    std::fs::write(&all, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", all.display()))?;
    println!("wrote {} and {}", args.markdown.display(), all.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regeneration_keeps_every_section_it_does_not_write() {
        let old = "# r\n\n## Plots\n\nold plots\n\n## What limits it\n\nCPU.\n\n\
                   ## Nemesis\n\n0 lost\n\n## Failover: kill -9 of a leader, 0 ms between nodes\n\n710 ms\n";
        let mut text = "# r\n\n## Plots\n\nnew plots\n".to_string();
        keep_other_sections(&mut text, old);
        assert_eq!(
            text,
            "# r\n\n## Plots\n\nnew plots\n\n## What limits it\n\nCPU.\n\n## Nemesis\n\n0 lost\n\n\
             ## Failover: kill -9 of a leader, 0 ms between nodes\n\n710 ms\n"
        );
    }
}
