//! Deterministic simulator for waggle's Raft core: N nodes × M groups in one
//! thread, seeded PRNG, simulated time, network faults (drop, duplicate,
//! reorder, delay, partitions, region loss), crashes with lost unsynced
//! writes and torn tails, clients that record acknowledgements, and the
//! Raft safety invariants checked after every event. Each node runs the
//! broker's own replica driver (`replica` crate) over a simulated disk. A failing seed replays
//! exactly (`--seed N` prints its trace).

pub mod broker;
mod checker;
mod network;
mod node;
mod options;
mod prng;
mod runner;
mod simulation;

pub use checker::{chain_hash, payload_hash, Violation};
pub use network::{Network, REGION_LATENCY_MS, ZONE_LATENCY_MS};
pub use node::{now, HashMachine, SimNode, SmState};
pub use options::{
    Membership, Planted, Scenario, SimOptions, COMPACT_EVERY_ENTRIES, LIVENESS_BOUND_MS,
    MAX_EVENTS_PER_RUN, TICK_MS,
};
pub use prng::Prng;
pub use runner::{run_seeds, SeedsReport};
pub use simulation::{
    Failure, RunSummary, Simulation, MAX_COMMIT_STORE_INTERVAL_MS, MAX_HALT_MUTATIONS,
    SIM_SEGMENT_SIZE_BYTES,
};
