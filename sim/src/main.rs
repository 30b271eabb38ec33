//! `sim`: runs many seeds (`--seeds 10000`) or replays one (`--seed N`,
//! printing its event trace); `--engine` simulates whole brokers' partitions
//! with the engine.

use clap::Parser;
use sim::broker::{run_broker_seeds, BrokerOptions};
use sim::{run_seeds, Membership, Planted, SimOptions, Simulation};

/// Command line of the simulator.
#[derive(Parser)]
#[command(name = "sim", about = "Deterministic simulation of waggle's Raft core")]
struct Cli {
    /// Number of seeds to run, starting at `--start`.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// First seed.
    #[arg(long, alias = "seed-start", default_value_t = 0)]
    start: u64,
    /// Replay exactly this seed and print its event trace.
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated ms of the fault phase.
    #[arg(long, default_value_t = 3000)]
    chaos_ms: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Run without faults.
    #[arg(long)]
    no_faults: bool,
    /// Deliberately broken variant (needs the `bug-injection` feature): of
    /// Raft (count-own-vote-twice, commit-previous-term-by-count,
    /// accept-mismatched-prev-term) or of the replica driver
    /// (skip-sync, vote-stored-lazily, install-without-restore,
    /// join-without-fence).
    #[arg(long)]
    bug: Option<String>,
    /// Simulate whole brokers' partitions with the engine (clients, workers,
    /// messages, clock jumps) instead of the Raft core alone.
    #[arg(long)]
    engine: bool,
    /// Chance (per mille) that a new leader is crashed or isolated within a
    /// few ms of its election.
    #[arg(long, default_value_t = SimOptions::default().strike_per_mille)]
    strike_per_mille: u64,
    /// Every seed in this membership mode (fixed, changes or
    /// region-failover) instead of its own draw.
    #[arg(long)]
    membership: Option<String>,
}

fn parse_membership(name: &str) -> anyhow::Result<Membership> {
    match name {
        "fixed" => Ok(Membership::Fixed),
        "changes" => Ok(Membership::Changes),
        "region-failover" => Ok(Membership::RegionFailover),
        _ => anyhow::bail!("--membership {name}: expected one of fixed, changes, region-failover"),
    }
}

fn parse_bug(name: &str) -> anyhow::Result<Planted> {
    Planted::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Planted::ALL.iter().map(|(n, _)| *n).collect();
        anyhow::anyhow!("--bug {name}: expected one of {}", names.join(", "))
    })
}

/// `--engine`: broker seeds.
fn run_engine(cli: &Cli) -> anyhow::Result<()> {
    let opts = BrokerOptions {
        chaos_ms: cli.chaos_ms,
        faults: !cli.no_faults,
        trace: cli.seed.is_some(),
        bug: cli.bug.as_deref().map(parse_bug).transpose()?,
    };
    let (first, count) = match cli.seed {
        Some(seed) => (seed, 1),
        None => (cli.start, cli.seeds),
    };
    let started = std::time::Instant::now();
    let r = run_broker_seeds(first, count, &opts, cli.threads);
    println!(
        "{} in {:.1} s",
        r.describe(),
        started.elapsed().as_secs_f64()
    );
    for f in &r.failures {
        for line in &f.trace {
            println!("{line}");
        }
        println!("{f}");
    }
    match r.failures.len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} broker seeds failed (replay one with --engine --seed N)"),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.engine {
        return run_engine(&cli);
    }
    let bug = cli.bug.as_deref().map(parse_bug).transpose()?;
    if bug.is_some() && !cfg!(feature = "bug-injection") {
        anyhow::bail!("--bug needs the simulator built with `--features bug-injection`");
    }
    let mut opts = SimOptions {
        chaos_ms: cli.chaos_ms,
        faults: !cli.no_faults,
        trace: false,
        bug,
        strike_per_mille: cli.strike_per_mille,
        membership: cli
            .membership
            .as_deref()
            .map(parse_membership)
            .transpose()?,
    };
    if let Some(seed) = cli.seed {
        opts.trace = true;
        match Simulation::new(seed, opts).run() {
            Ok(s) => {
                println!("seed {seed} passed: {s:?}");
                Ok(())
            }
            Err(f) => {
                for line in &f.trace {
                    println!("{line}");
                }
                anyhow::bail!("{f}")
            }
        }
    } else {
        let started = std::time::Instant::now();
        let r = run_seeds(cli.start, cli.seeds, &opts, cli.threads, 0);
        println!(
            "{} seeds passed, {} failed in {:.1} s; {} elections, {} acknowledged entries, {} crashes, {} faults, {} membership changes ({} learners made voters, {} deleted replicas added back under their id), {} groups failed over and back, max recovery {} ms",
            r.passed,
            r.failures.len(),
            started.elapsed().as_secs_f64(),
            r.elections,
            r.acked,
            r.crashes,
            r.faults,
            r.reconfigurations,
            r.promotions,
            r.rejoins,
            r.failovers,
            r.max_recovery_ms
        );
        for f in &r.failures {
            println!("{f}");
        }
        if r.failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "{} seeds failed (replay one with --seed N)",
                r.failures.len()
            )
        }
    }
}
