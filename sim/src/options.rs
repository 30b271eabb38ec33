//! Options of a simulation run and the scenario a seed draws from them.

use crate::prng::Prng;

/// Simulated milliseconds between two ticks of a node.
pub const TICK_MS: u64 = 10;
/// Once faults heal, a leader must be elected and a proposal committed in
/// every group within this much simulated time.
pub const LIVENESS_BOUND_MS: u64 = 20_000;
/// Hard cap on events per run (a run normally takes far fewer).
pub const MAX_EVENTS_PER_RUN: u64 = 3_000_000;
/// Applied entries between two snapshots of a group on a node.
pub const COMPACT_EVERY_ENTRIES: u64 = 30;

/// A planted bug (needs the `bug-injection` feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// In the Raft core.
    Raft(raft::Bug),
    /// In the replica driver.
    Driver(replica::Bug),
}

impl Planted {
    /// Every planted bug, by its command-line name.
    pub const ALL: [(&'static str, Planted); 7] = [
        (
            "count-own-vote-twice",
            Planted::Raft(raft::Bug::CountOwnVoteTwice),
        ),
        (
            "commit-previous-term-by-count",
            Planted::Raft(raft::Bug::CommitPreviousTermByCount),
        ),
        (
            "accept-mismatched-prev-term",
            Planted::Raft(raft::Bug::AcceptMismatchedPrevTerm),
        ),
        ("skip-sync", Planted::Driver(replica::Bug::SkipSync)),
        (
            "vote-stored-lazily",
            Planted::Driver(replica::Bug::VoteStoredLazily),
        ),
        (
            "install-without-restore",
            Planted::Driver(replica::Bug::InstallWithoutRestore),
        ),
        (
            "join-without-fence",
            Planted::Driver(replica::Bug::JoinWithoutFence),
        ),
    ];

    /// The bug named `name` on the command line.
    pub fn parse(name: &str) -> Option<Planted> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// The Raft bug, if it is one.
    pub fn raft(self) -> Option<raft::Bug> {
        match self {
            Planted::Raft(b) => Some(b),
            Planted::Driver(_) => None,
        }
    }

    /// The driver bug, if it is one.
    pub fn driver(self) -> Option<replica::Bug> {
        match self {
            Planted::Driver(b) => Some(b),
            Planted::Raft(_) => None,
        }
    }
}

/// Options shared by all seeds of one invocation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Simulated duration of the fault phase.
    pub chaos_ms: u64,
    /// Inject faults (crashes, partitions, drops, ...).
    pub faults: bool,
    /// Record an event trace.
    pub trace: bool,
    /// A deliberately broken variant of Raft or of the replica driver.
    pub bug: Option<Planted>,
    /// Chance (per mille) that a new leader is struck (crashed, or isolated
    /// for a while) within a few ms of its election: the window between its
    /// first appends and the first entry of its own term reaching a quorum is
    /// where the commit rules are tested.
    pub strike_per_mille: u64,
    /// Every seed in this membership mode instead of its own draw (a
    /// planted bug of membership changes is looked for where it can show).
    pub membership: Option<Membership>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            chaos_ms: 3_000,
            faults: true,
            trace: false,
            bug: None,
            strike_per_mille: 150,
            membership: None,
        }
    }
}

/// How the voters of the groups change during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Every node votes in every group, as configured at boot.
    Fixed,
    /// Five nodes, three of them voters at boot: the chaos phase adds and
    /// removes voters (one or two at a time, by joint consensus) and changes
    /// priorities, through the leader of a group.
    Changes,
    /// Four nodes, two per region, all voters (quorum 3): one region is lost
    /// for good during the chaos phase, the operator forces the survivors to
    /// a configuration of their own, and later the region comes back on empty
    /// disks and is added back. No acknowledged entry may be lost: a quorum
    /// of 3 of 4 always holds a replica in each region.
    RegionFailover,
}

impl Membership {
    /// Draws the membership mode of a seed from its own stream, so that the
    /// seeds of fixed membership run as they did before modes existed.
    pub fn draw(seed: u64) -> Membership {
        let mut rng = Prng::new(seed ^ 0x6d65_6d62_6572_7321);
        match rng.below(10) {
            0..=5 => Membership::Fixed,
            6..=7 => Membership::Changes,
            _ => Membership::RegionFailover,
        }
    }
}

/// Cluster shape and fault mix drawn for one seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Number of nodes (3 or 5).
    pub nodes: u64,
    /// Number of groups, each replicated on every node.
    pub groups: u64,
    /// Whether nodes sit in two regions (40-80 ms apart) instead of one.
    pub two_regions: bool,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Entries per append message bound (small values force partial acks).
    pub max_append_bytes: u64,
    /// Appends in flight per follower.
    pub max_inflight_msgs: usize,
    /// Mean simulated ms between two faults.
    pub fault_every_ms: u64,
    /// Whether nodes take snapshots and compact.
    pub compaction: bool,
    /// Whether the groups use priority election.
    pub priorities: bool,
    /// How the voters change during the run.
    pub membership: Membership,
}

impl Scenario {
    /// Draws the scenario of `seed` from its stream `rng`.
    pub fn draw(seed: u64, rng: &mut Prng, membership: Option<Membership>) -> Scenario {
        let two_regions = rng.chance(300);
        let election_ticks = if two_regions {
            30
        } else {
            rng.range(8, 15) as u32
        };
        let mut sc = Scenario {
            nodes: if rng.chance(500) { 3 } else { 5 },
            groups: rng.range(1, 2),
            two_regions,
            election_ticks,
            heartbeat_ticks: if two_regions { 5 } else { 2 },
            max_append_bytes: if !two_regions && rng.chance(500) {
                1
            } else {
                4096
            },
            max_inflight_msgs: rng.pick(&[1, 1, 2, 4, 8]),
            fault_every_ms: rng.range(30, 400),
            compaction: rng.chance(600),
            priorities: rng.chance(400),
            membership: membership.unwrap_or_else(|| Membership::draw(seed)),
        };
        match sc.membership {
            Membership::Fixed => {}
            Membership::Changes => sc.nodes = 5,
            Membership::RegionFailover => {
                sc.nodes = 4;
                sc.two_regions = true;
                sc.election_ticks = 30;
                sc.heartbeat_ticks = 5;
                sc.max_append_bytes = 4096;
            }
        }
        sc
    }

    /// The voters of every group at boot.
    pub fn initial_voters(&self) -> std::ops::RangeInclusive<u64> {
        match self.membership {
            Membership::Changes => 1..=3,
            Membership::Fixed | Membership::RegionFailover => 1..=self.nodes,
        }
    }
}
