//! `waggle-perf`: the benchmarks that produce waggle's published figures.
//!
//! Every subcommand measures a baseline in the same run (raw `fdatasync`, raw
//! UDP round trip, ...) and reports its figures as ratios against it, so that
//! numbers from different machines can be compared.

use clap::{Parser, Subcommand};

mod append_load;
mod brokers;
mod cluster_change_bench;
mod cpu;
mod engine_bench;
mod etcd;
mod etcd_compare;
mod export_bench;
mod failover_bench;
mod load;
mod load_report;
mod raft_bench;
mod relay;
mod restart_bench;
mod results;
mod scenario;
mod search_bench;
mod storage_bench;
mod svg;
mod transport_bench;

/// Command line of `waggle-perf`.
#[derive(Parser)]
#[command(
    name = "waggle-perf",
    version,
    about = "Latency and throughput benchmarks for waggle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Durable appends to the log against raw fdatasync and O_DIRECT baselines.
    Storage(storage_bench::Args),
    /// Committed entries per second of the Raft core alone, in memory.
    Raft(raft_bench::Args),
    /// QUIC+TLS round trips and bulk frames against a raw UDP echo.
    Transport(transport_bench::Args),
    /// A UDP relay that adds delay, jitter and loss (WAN emulation).
    Relay(relay::Args),
    /// one_task instances per second of the engine alone, with no I/O.
    Engine(engine_bench::Args),
    /// Zeebe-protocol load (one_task instances, open loop) against running gateways.
    Load(load::Args),
    /// Starts the brokers of a scenario locally and searches its sustainable throughput.
    Scenario(scenario::Args),
    /// Replicated writes side by side: etcd (3 members) and waggle's raw append (3 nodes).
    EtcdCompare(etcd_compare::Args),
    /// Runs every scenario and the etcd comparison, and rewrites perf/RESULTS.md.
    Results(results::Args),
    /// Time to `/ready` after kill -9 of a loaded single node, against a sequential read of its data.
    Restart(restart_bench::Args),
    /// Search latency of secondary storage holding a large history, against `SELECT 1`.
    Search(search_bench::Args),
    /// Single-node throughput with and without the PostgreSQL exporter, and the export lag.
    Export(export_bench::Args),
    /// Clients' stall when a partition leader is killed with kill -9 under load, over many kills.
    Failover(failover_bench::Args),
    /// Cluster changes under load: a region lost, failed over and back; 3 to 5 brokers.
    ClusterChange(cluster_change_bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Storage(args) => storage_bench::run(args),
        Command::Raft(args) => raft_bench::run(args),
        Command::Transport(args) => transport_bench::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Engine(args) => engine_bench::run(args),
        Command::Load(args) => load::run(args),
        Command::Scenario(args) => scenario::run(args),
        Command::EtcdCompare(args) => etcd_compare::run(args),
        Command::Results(args) => results::run(args),
        Command::Restart(args) => restart_bench::run(args),
        Command::Search(args) => search_bench::run(args),
        Command::Export(args) => export_bench::run(args),
        Command::Failover(args) => failover_bench::run(args),
        Command::ClusterChange(args) => cluster_change_bench::run(args),
    }
}
