//! The broker's shared view of itself: the role and readiness of every local
//! partition, the liveness of every shard loop, and the identities the local
//! partitions hold.
//!
//! Written by the shard threads (each writes only its own partitions and its own
//! heartbeat), read by the gateway, the management server and sd-notify on the
//! tokio threads. Plain atomics, no locks on the shard loop's path; the text of
//! a partition's health problem (a full disk, a failed store) sits behind a
//! mutex taken only when the problem changes or `/health` reads it. Lives as
//! long as the process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::divergence::StateChecks;
use crate::placement::PartitionId;

/// The role of a local partition replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// Opening its log and replaying it.
    Starting = 0,
    /// Leader of its Raft group.
    Leader = 1,
    /// Follower in its Raft group.
    Follower = 2,
    /// Candidate in an election.
    Candidate = 3,
    /// Not serving: no log, stopped, or failed.
    Inactive = 4,
}

impl Role {
    /// The role numbered `v` (unknown numbers are `Inactive`).
    pub fn from_u8(v: u8) -> Role {
        match v {
            0 => Role::Starting,
            1 => Role::Leader,
            2 => Role::Follower,
            3 => Role::Candidate,
            _ => Role::Inactive,
        }
    }

    /// Lower-case name, as in metrics and `STATUS=` lines.
    pub fn name(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Inactive => "inactive",
        }
    }
}

#[derive(Debug)]
struct PartitionSlot {
    role: AtomicU8,
    /// Joined its group and replayed its log.
    ready: AtomicBool,
    healthy: AtomicBool,
    /// Why the partition is degraded (writes refused), if it is.
    problem: Mutex<Option<String>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct BrokerView {
    /// The local partitions: the cluster configuration's, which change when
    /// a replica joins or leaves this node.
    partitions: RwLock<BTreeMap<PartitionId, PartitionSlot>>,
    /// Milliseconds since `epoch` of each shard's last loop turn.
    heartbeats_ms: Vec<AtomicU64>,
    epoch: Instant,
    stopping: AtomicBool,
    started: AtomicBool,
    /// The node knows the cluster configuration and opened the partitions
    /// it gives it (see `crate::membership::store::Start`).
    configured: AtomicBool,
    /// Whether each local partition's state agrees with its peers'.
    pub checks: StateChecks,
    /// The users, roles and authorizations, as the local partitions hold
    /// them.
    pub directory: std::sync::Arc<crate::identity::users::Directory>,
    /// Woken when a local partition changes role, so that the other nodes
    /// hear of a new leader at once (see [`crate::gossip`]).
    pub roles_changed: tokio::sync::Notify,
}

impl PartitionSlot {
    fn starting() -> Self {
        PartitionSlot {
            role: AtomicU8::new(Role::Starting as u8),
            ready: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
            problem: Mutex::new(None),
        }
    }
}

impl BrokerView {
    /// A view of `partitions` (all starting) and `shards` shard loops.
    pub fn new(partitions: &[PartitionId], shards: usize) -> Self {
        Self {
            partitions: RwLock::new(
                partitions
                    .iter()
                    .map(|p| (*p, PartitionSlot::starting()))
                    .collect(),
            ),
            heartbeats_ms: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            stopping: AtomicBool::new(false),
            started: AtomicBool::new(false),
            configured: AtomicBool::new(true),
            checks: StateChecks::new(partitions),
            directory: Default::default(),
            roles_changed: tokio::sync::Notify::new(),
        }
    }

    /// A replica of `partition` opens on this node (a cluster change): it
    /// starts as [`Role::Starting`].
    pub fn add_partition(&self, partition: PartitionId) {
        self.slots_mut()
            .entry(partition)
            .or_insert_with(PartitionSlot::starting);
        self.checks.add(partition);
        self.roles_changed.notify_one();
    }

    /// The replica of `partition` left this node (a cluster change).
    pub fn remove_partition(&self, partition: PartitionId) {
        self.slots_mut().remove(&partition);
        self.checks.remove(partition);
        self.roles_changed.notify_one();
    }

    /// Whether this node holds a replica of `partition`.
    pub fn is_local(&self, partition: PartitionId) -> bool {
        self.slots().contains_key(&partition)
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<PartitionId, PartitionSlot>> {
        self.partitions.read().expect("never poisoned")
    }

    fn slots_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<PartitionId, PartitionSlot>> {
        self.partitions.write().expect("never poisoned")
    }

    /// Sets a local partition's role; `ready` once it has joined and replayed.
    pub fn set_partition(&self, partition: PartitionId, role: Role, ready: bool, healthy: bool) {
        let slots = self.slots();
        // A replica that just left this node: nothing to show.
        let Some(slot) = slots.get(&partition) else {
            return;
        };
        if slot.role.swap(role as u8, Ordering::AcqRel) != role as u8 {
            self.roles_changed.notify_one();
        }
        slot.ready.store(ready, Ordering::Release);
        slot.healthy.store(healthy, Ordering::Release);
    }

    /// Role of a local partition, `None` if it is not local.
    pub fn role(&self, partition: PartitionId) -> Option<Role> {
        self.slots()
            .get(&partition)
            .map(|s| Role::from_u8(s.role.load(Ordering::Acquire)))
    }

    /// Whether a local partition is healthy: not failed, not degraded, its
    /// state not diverged from its peers'.
    pub fn healthy(&self, partition: PartitionId) -> bool {
        self.slots().get(&partition).is_some_and(|s| {
            s.healthy.load(Ordering::Acquire)
                && s.problem
                    .lock()
                    .expect("problem lock is never poisoned")
                    .is_none()
        }) && self.checks.diverged(partition).is_none()
    }

    /// Sets (or clears, with `None`) why a local partition is degraded.
    pub fn set_problem(&self, partition: PartitionId, problem: Option<String>) {
        let slots = self.slots();
        // A replica that just left this node: nothing to show.
        let Some(slot) = slots.get(&partition) else {
            return;
        };
        *slot.problem.lock().expect("problem lock is never poisoned") = problem;
    }

    /// The degraded or diverged local partitions with why, ascending.
    pub fn problems(&self) -> Vec<(PartitionId, String)> {
        self.slots()
            .iter()
            .filter_map(|(p, s)| {
                let problem = s.problem.lock().expect("problem lock is never poisoned");
                let diverged = self.checks.diverged(*p);
                match (problem.clone(), diverged) {
                    (Some(problem), Some(diverged)) => Some((*p, format!("{problem}; {diverged}"))),
                    (problem, diverged) => problem.or(diverged).map(|why| (*p, why)),
                }
            })
            .collect()
    }

    /// Local partitions with their roles, ascending.
    pub fn roles(&self) -> Vec<(PartitionId, Role)> {
        self.slots()
            .iter()
            .map(|(p, s)| (*p, Role::from_u8(s.role.load(Ordering::Acquire))))
            .collect()
    }

    /// Whether the node knows the cluster configuration and opened the
    /// partitions it gives it.
    pub fn set_configured(&self, configured: bool) {
        self.configured.store(configured, Ordering::Release);
    }

    /// The node knows its partitions, and every one has joined its group
    /// and replayed its log.
    pub fn all_ready(&self) -> bool {
        self.configured.load(Ordering::Acquire)
            && self
                .slots()
                .values()
                .all(|s| s.ready.load(Ordering::Acquire))
    }

    /// Records a turn of shard `shard`'s loop.
    pub fn heartbeat(&self, shard: usize) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.heartbeats_ms[shard].store(now_ms.max(1), Ordering::Release);
    }

    /// Every shard loop turned within the last `max_age_ms`.
    pub fn shards_alive(&self, max_age_ms: u64) -> bool {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.heartbeats_ms.iter().all(|h| {
            let last = h.load(Ordering::Acquire);
            last != 0 && now_ms.saturating_sub(last) <= max_age_ms
        })
    }

    /// The broker is shutting down and accepts no new commands.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the broker as shutting down.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Start-up (listeners bound, shards running) is complete.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Marks start-up as complete.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// `partition 1: leader, partition 2: follower`, for `STATUS=`.
    pub fn status_line(&self) -> String {
        let roles: Vec<String> = self
            .roles()
            .iter()
            .map(|(p, r)| format!("partition {p}: {}", r.name()))
            .collect();
        roles.join(", ")
    }
}

/// Milliseconds since the Unix epoch, for record timestamps and deadlines.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_partition_is() {
        let view = BrokerView::new(&[1, 2], 1);
        assert!(!view.all_ready());
        view.set_partition(1, Role::Leader, true, true);
        assert!(!view.all_ready());
        view.set_partition(2, Role::Follower, true, true);
        assert!(view.all_ready());
        assert_eq!(
            view.status_line(),
            "partition 1: leader, partition 2: follower"
        );
    }

    #[test]
    fn a_problem_makes_a_partition_unhealthy_until_cleared() {
        let view = BrokerView::new(&[1, 2], 1);
        assert!(view.healthy(1));
        view.set_problem(1, Some("disk full (/d): writes refused".into()));
        assert!(!view.healthy(1));
        assert!(view.healthy(2));
        assert_eq!(
            view.problems(),
            vec![(1, "disk full (/d): writes refused".to_string())]
        );
        view.set_problem(1, None);
        assert!(view.healthy(1));
        assert!(view.problems().is_empty());
    }

    #[test]
    fn shard_liveness_needs_every_shard() {
        let view = BrokerView::new(&[1], 2);
        assert!(!view.shards_alive(1000));
        view.heartbeat(0);
        assert!(!view.shards_alive(1000));
        view.heartbeat(1);
        assert!(view.shards_alive(1000));
    }
}
