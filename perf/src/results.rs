//! `waggle-perf results`: runs every scenario's throughput search and
//! rewrites `perf/RESULTS.md` (with the machine's description, the figures
//! against the targets of the benchmark and every step) and the plots it
//! shows, in `perf/results/`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

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
    #[command(flatten)]
    pub run: RunOptions,
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
         - waggle commit: {}\n\
         - Date: {}\n",
        command_line("uname", &["-sr"]),
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

/// Writes RESULTS.md from `summaries`.
pub fn markdown(summaries: &[ScenarioSummary], options: &RunOptions) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# waggle-perf results\n");
    let _ = writeln!(
        md,
        "Regenerate with `cargo build --release -p node -p perf && target/release/waggle-perf results` \
         (every scenario, a few minutes each). One scenario: `waggle-perf scenario NAME`.\n"
    );
    let _ = writeln!(md, "## Machine\n\n{}", machine());
    let _ = writeln!(
        md,
        "## Load\n\nZeebe's benchmark shape: the one_task process (start → service task → end), \
         variables of about {} B, {} workers with capacity {} each, completion delay {} ms. \
         The starter is open loop; every latency is measured from the intended start time. \
         Activation is start → job at the worker; end to end is start → job completion acknowledged. \
         Each search step runs {} s and drains for up to {} s. A step holds when the end-to-end p99 \
         is within the SLO ({} ms; across zones or regions {}), backpressure is at most {:.1} %, \
         there is no error and every instance finished.\n",
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
                    b.throughput_per_s,
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
            "- throughput(80 ms) / throughput(0 ms) = {far:.0} / {near:.0} = **{:.2}** (target ≥ 0.90)",
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
                best.summary.throughput_per_s,
                ms(best.summary.end_to_end.p99_us),
                ms(best.summary.activation.p50_us)
            );
        }
    }
    let _ = writeln!(
        md,
        "- raw replicated append vs etcd: not measured; it needs a broker mode that appends opaque \
         records through Raft and storage without the engine (see perf/README.md).\n"
    );
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
                m.throughput_per_s,
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
    let text = markdown(&summaries, &args.run);
    std::fs::write(&args.markdown, &text)
        .with_context(|| format!("writing {}", args.markdown.display()))?;
    let all = args.run.out.join("results.json");
    std::fs::write(&all, serde_json::to_string_pretty(&summaries)?)
        .with_context(|| format!("writing {}", all.display()))?;
    println!("wrote {} and {}", args.markdown.display(), all.display());
    Ok(())
}
