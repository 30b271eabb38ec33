//! The replicated partitions of one shard: the replica driver (`replica`
//! crate) over every local partition, and the broker's side of each turn:
//! due commands, exports, snapshots by time, metrics and roles.
//!
//! Owned by one shard thread (glommio executor) for the life of the broker.
//!
//! ```text
//! data/partitions/<p>/log/         segment files (storage::Log)
//! data/partitions/<p>/meta/        Raft term, vote and commit (storage::MetaStore)
//! data/partitions/<p>/snapshots/   the latest snapshots (storage::SnapshotStore)
//! ```
//!
//! The write path of a ready (group commit, hard-state ordering, the entry
//! and snapshot formats, a full disk stalling a partition rather than
//! failing it) is the driver's, the same code the simulator runs: see
//! `replica::Driver`. The data of a normal entry is the application entry of
//! [`crate::partition`]; the snapshot state is the partition's.
//!
//! A committed command whose processing panics is rejected instead (see
//! [`crate::isolation`]): the state is rebuilt from the snapshot and entries
//! the in-memory Raft reader holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use raft::{Entry, EntryKind, MemLog, RaftConfig, Role as RaftRole};
use replica::{Driver, Flight, GroupSpec, StateMachine};
use storage::{Disk, DmaDisk, LogConfig};

use crate::command::CommandError;
use crate::divergence::Checkpoint;
use crate::exporter::Sink;
use crate::metrics::{replication, Metrics, PartitionLabel};
use crate::partition::{decode_entry, encode_continue, AppEntry, Applied, Partition};
use crate::placement::{ClusterShape, PartitionId};
use crate::space::{self, Admission};
use crate::view::{BrokerView, Role};

pub use replica::ReplicaError;

/// A replica's view of its partition's voters (broker ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMembership {
    /// This replica leads.
    pub leader: bool,
    /// The voters of its applied configuration (the incoming ones while
    /// joint).
    pub voters: BTreeSet<u32>,
    /// Their election priorities in the applied configuration.
    pub priorities: BTreeMap<u32, u32>,
    /// A joint-consensus change is under way.
    pub joint: bool,
    /// The voters it would restart with.
    pub durable_voters: BTreeSet<u32>,
    /// Their election priorities in that configuration.
    pub durable_priorities: BTreeMap<u32, u32>,
    /// The learners of its applied configuration: replicas that are sent
    /// the log but neither vote nor count in a quorum.
    pub learners: BTreeSet<u32>,
    /// On the leader, the learners whose log is within
    /// [`LEARNER_CAUGHT_UP`] entries of the commit index: ready to vote.
    pub caught_up: BTreeSet<u32>,
    /// On the leader of partition 1: where a scale up stands.
    pub scaling: Option<crate::membership::change::ScalingReport>,
    /// On the leader: where the group stands, for a broker that joins it.
    pub fence: Option<replica::JoinFence>,
}

/// A learner this close to the leader's commit index (in entries) has
/// caught up: made a voter now, it does not hold back the quorum.
pub const LEARNER_CAUGHT_UP: u64 = 64;

/// Applied entries after which a partition takes a snapshot and compacts its log.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;
/// A commit index that moved is written to the Raft metadata at least this
/// often while the partition is busy, so that a log tail lost in a crash is
/// noticed against it on restart.
const COMMIT_STORE_INTERVAL_MS: u64 = 1_000;

/// Raft node id of broker node `node` (Raft reserves 0).
pub fn raft_node(node: u32) -> raft::NodeId {
    u64::from(node) + 1
}

/// Broker node id of Raft node `node`.
pub fn broker_node(node: raft::NodeId) -> u32 {
    (node - 1) as u32
}

/// A partition as the driver's state machine: applies application entries,
/// rejects a command whose processing panics, and records state checkpoints.
pub(crate) struct PartitionMachine {
    partition: Partition,
    /// A `Continue` entry is proposed and not yet applied.
    continue_pending: bool,
    metrics: Arc<Metrics>,
    view: Arc<BrokerView>,
    /// `cluster.state_check_entries`.
    state_check_entries: u64,
    replication_factor: u32,
}

impl StateMachine for PartitionMachine {
    type Output = Applied;

    fn applied(&self) -> u64 {
        self.partition.applied()
    }

    fn apply(&mut self, e: &Entry, log: &MemLog, out: &mut Applied) -> Result<(), String> {
        let p = self.partition.id();
        let app = match e.kind {
            EntryKind::ConfChange => None,
            EntryKind::Normal => decode_entry(p, e.index, &e.data).map_err(|b| b.to_string())?,
        };
        if matches!(app, Some(AppEntry::Continue { .. })) {
            self.continue_pending = false;
        }
        if let Err(failure) = self.partition.apply(e.index, app, out) {
            crate::isolation::recover(&mut self.partition, log, &self.metrics, failure, out)?;
        }
        self.publish_identity();
        if let Some(c) = out.checkpoints.last_mut().filter(|c| c.index == e.index) {
            c.term = e.term;
        }
        if self.state_check_entries > 0 && e.index % self.state_check_entries == 0 {
            let checkpoint = Checkpoint {
                index: e.index,
                fingerprint: self.partition.engine().fingerprint(),
            };
            self.view
                .checks
                .record(p, checkpoint, self.replication_factor);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        self.partition.snapshot()
    }

    fn restore(&mut self, index: u64, state: &[u8]) -> Result<(), String> {
        self.partition.restore(index, state)?;
        self.publish_identity();
        Ok(())
    }
}

impl PartitionMachine {
    /// Hands the partition's identity state to the gateway when it changed.
    fn publish_identity(&mut self) {
        if self.partition.take_identity_changed() {
            let identity = &self.partition.engine().state().identity;
            self.view.directory.publish(self.partition.id(), identity);
        }
    }
}

/// The broker's own bookkeeping of one local partition replica.
struct Local {
    /// When the last snapshot was taken (or the partition opened).
    snapshot_at: Instant,
    role: RaftRole,
    /// Whether a leader was known at the last turn.
    leader_known: bool,
    /// The Raft term at the last turn.
    term: u64,
    /// The leader seen when the metrics were last published.
    metrics_leader: u64,
    /// Highest exported position this leader proposed, and when.
    export_proposed: (u64, Instant),
    /// Highest position the sink acknowledged, and when it last moved.
    export_written: (u64, Instant),
    /// Index the log must reach again after losing committed entries
    /// (Raft holds back this replica's votes until then); 0 when whole.
    recovering_until: u64,
}

/// Everything a shard needs to know after one turn.
#[derive(Debug, Default)]
pub struct Turn {
    /// Raft messages to send, one envelope per destination node.
    pub messages: Vec<raft::Envelope>,
    /// Commands for other partitions.
    pub distributions: Vec<(u32, engine::Record)>,
    /// Led partitions with new activatable jobs, and their job types.
    pub jobs_available: Vec<(PartitionId, Vec<std::sync::Arc<str>>)>,
    /// Backup checkpoints applied (on every replica), for the backup store.
    pub checkpoints: Vec<(PartitionId, crate::partition::Checkpointed)>,
    /// Jobs led partitions pushed to streams, to deliver.
    pub pushed_jobs: Vec<(PartitionId, engine::JobPush)>,
}

/// See the module documentation.
pub struct ShardReplicas<D: Disk = DmaDisk> {
    driver: Driver<D, PartitionMachine>,
    locals: BTreeMap<PartitionId, Local>,
    view: Arc<BrokerView>,
    snapshot_period: std::time::Duration,
    metrics: Arc<Metrics>,
    exporter: Option<ExportOptions>,
    /// When the Raft gauges were last published.
    metrics_at: Instant,
    /// The origin of the driver's monotonic milliseconds.
    epoch: Instant,
    /// The time of the current turn (given by the caller: the shard's clock,
    /// or a simulator's).
    now: Instant,
}

/// The Raft gauges are published at most this often.
const RAFT_METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl<D: Disk> std::fmt::Debug for ShardReplicas<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReplicas")
            .field("partitions", &self.locals.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How a shard opens its partitions.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// This node.
    pub node: u32,
    /// Cluster shape.
    pub shape: ClusterShape,
    /// The cluster configuration: the Raft configuration each partition
    /// starts with, and the nodes a distributed command goes to.
    pub members: Arc<crate::membership::Members>,
    /// `data/partitions`.
    pub dir: std::path::PathBuf,
    /// Segment size of the logs.
    pub segment_size_bytes: u64,
    /// `data.accept_data_loss`: start a partition whose log lost committed
    /// entries that no peer can give back.
    pub accept_data_loss: bool,
    /// Raft timing in ticks.
    pub raft: RaftConfig,
    /// Seed of the election jitter.
    pub seed: u64,
    /// Start time, for unique request ids.
    pub boot_ms: u64,
    /// A partition with applied commands takes a snapshot at least this often.
    pub snapshot_period: std::time::Duration,
    /// The exporter, when enabled.
    pub exporter: Option<ExportOptions>,
    /// `engine.time_zone` (validated with the configuration).
    pub time_zone: String,
    /// `cluster.state_check_entries`: a checkpoint of the state every this
    /// many applied entries (0: none).
    pub state_check_entries: u64,
    /// A deliberately broken replica driver (the simulator's planted bugs;
    /// effective only with `replica/bug-injection`).
    pub driver_bug: Option<replica::Bug>,
}

/// How partitions export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The writer.
    pub sink: Arc<dyn Sink>,
    /// `exporter.max_lag_records`.
    pub max_lag_records: usize,
    /// `exporter.position_interval_ms`.
    pub position_interval: std::time::Duration,
}

fn new_machine(
    options: &OpenOptions,
    p: PartitionId,
    view: &Arc<BrokerView>,
    metrics: &Arc<Metrics>,
) -> Result<PartitionMachine, ReplicaError> {
    // A partition's engine starts with the partition count of its first
    // entry, so that every replica replays its log alike: the count before
    // any scale up for the partitions of then; its own id for one added at
    // run time (partition 1's bootstrap tells it the count). Scale ups in
    // the log raise it.
    let first = options.members.message_partitions();
    let count = if p <= first { first } else { p };
    let mut partition = Partition::new(p, count, options.node, options.boot_ms);
    partition
        .engine_mut()
        .set_time_zone(&options.time_zone)
        .map_err(|reason| ReplicaError::Corrupt {
            group: u64::from(p),
            reason: format!("engine.time_zone: {reason}"),
        })?;
    if let Some(export) = &options.exporter {
        partition.enable_export(export.max_lag_records);
    }
    Ok(PartitionMachine {
        partition,
        continue_pending: false,
        metrics: metrics.clone(),
        view: view.clone(),
        state_check_entries: options.state_check_entries,
        replication_factor: options.shape.replication_factor,
    })
}

/// The bookkeeping of a replica just opened, its recovery published.
fn opened_local(o: &replica::Opened, metrics: &Metrics, now: Instant) -> Local {
    let label = PartitionLabel {
        partition: o.group as PartitionId,
    };
    if let Some(loss) = &o.tail_loss {
        metrics
            .log_tail_frames_dropped
            .get_or_create(&label)
            .inc_by(loss.frames_dropped);
    }
    metrics
        .log_entries_recovering
        .get_or_create(&label)
        .set(i64::try_from(o.recovering_until.saturating_sub(o.held)).unwrap_or(i64::MAX));
    Local {
        snapshot_at: now,
        role: RaftRole::Follower,
        leader_known: false,
        term: 0,
        metrics_leader: raft::NO_NODE,
        export_proposed: (0, now),
        export_written: (0, now),
        recovering_until: o.recovering_until,
    }
}

impl ShardReplicas<DmaDisk> {
    /// Opens (creating or recovering) the partitions `owned` of shard
    /// `shard` in the data directory, turning the shard's heartbeat in
    /// `view` as it goes.
    pub async fn open(
        options: &OpenOptions,
        shard: usize,
        owned: &[PartitionId],
        view: Arc<BrokerView>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ReplicaError> {
        Self::open_on(
            DmaDisk,
            options,
            shard,
            owned,
            view,
            metrics,
            Instant::now(),
        )
        .await
    }
}

impl<D: Disk> ShardReplicas<D> {
    /// Opens the partitions `owned` on `disk` (the simulator's disk, or the
    /// data directory through [`ShardReplicas::open`]) at `now` (the
    /// simulator's clock, or the wall clock).
    pub async fn open_on(
        disk: D,
        options: &OpenOptions,
        shard: usize,
        owned: &[PartitionId],
        view: Arc<BrokerView>,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> Result<Self, ReplicaError> {
        let mut specs = Vec::with_capacity(owned.len());
        for &p in owned {
            specs.push(GroupSpec {
                group: u64::from(p),
                dir: options.dir.join(p.to_string()),
                initial: options.members.group_config(p),
                machine: new_machine(options, p, &view, &metrics)?,
                fence: None,
            });
        }
        let driver_options = replica::Options {
            me: raft_node(options.node),
            raft: options.raft.clone(),
            seed: options.seed,
            log: LogConfig {
                segment_size_bytes: options.segment_size_bytes,
                ..LogConfig::default()
            },
            accept_data_loss: options.accept_data_loss,
            commit_store_interval_ms: COMMIT_STORE_INTERVAL_MS,
            bug: options.driver_bug,
        };
        let (driver, opened) =
            Driver::open(disk, &driver_options, specs, &|| view.heartbeat(shard)).await?;
        let mut locals = BTreeMap::new();
        for o in opened {
            let p = o.group as PartitionId;
            locals.insert(p, opened_local(&o, &metrics, now));
            // Opened and its log loaded; ready once a leader is known.
            view.set_partition(p, Role::Follower, false, true);
        }
        Ok(ShardReplicas {
            driver,
            locals,
            view,
            snapshot_period: options.snapshot_period,
            metrics,
            exporter: options.exporter.clone(),
            metrics_at: now,
            epoch: now,
            now,
        })
    }

    /// The driver's monotonic milliseconds.
    fn now_ms(&self) -> u64 {
        self.now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Sets the time of this turn (never backwards).
    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Time since `then`, on the turn's clock.
    fn since(&self, then: Instant) -> std::time::Duration {
        self.now.saturating_duration_since(then)
    }

    /// Partitions of this shard.
    pub fn partitions(&self) -> impl Iterator<Item = PartitionId> + '_ {
        self.locals.keys().copied()
    }

    /// Whether this node leads `partition`, and the leader it knows of.
    pub fn leader(&self, partition: PartitionId) -> (bool, Option<u32>) {
        match self.driver.raft().brief(u64::from(partition)) {
            Some(b) => (
                b.role == RaftRole::Leader,
                (b.leader != raft::NO_NODE).then(|| broker_node(b.leader)),
            ),
            None => (false, None),
        }
    }

    /// The partition, for preparing commands.
    pub fn partition_mut(&mut self, partition: PartitionId) -> Option<&mut Partition> {
        self.driver
            .machine_mut(u64::from(partition))
            .map(|m| &mut m.partition)
    }

    fn partition(&self, partition: PartitionId) -> &Partition {
        &self
            .driver
            .machine(u64::from(partition))
            .expect("a local partition")
            .partition
    }

    /// Proposes application entries on a partition this node leads; refused
    /// while its writes are stalled by a full disk.
    pub fn propose(
        &mut self,
        partition: PartitionId,
        entries: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        let group = u64::from(partition);
        if let Some(stall) = self.driver.stall(group) {
            return Err(CommandError::ResourceExhausted(format!(
                "partition {partition}: {}",
                stall.refusal.reason
            )));
        }
        self.driver.propose(group, entries).map_err(|e| {
            CommandError::Unavailable(format!(
                "partition {partition} cannot take the command: {e}"
            ))
        })
    }

    /// **Unsafe**, the failover after a region is lost: forces this replica
    /// of `partition` to `voters` without consensus (see
    /// `raft::MultiRaft::force_reconfiguration`). Run on every surviving
    /// replica with the same voters; entries only the lost replicas held are
    /// lost. False when the partition is not open here.
    pub fn force_voters(&mut self, partition: PartitionId, voters: &BTreeSet<u32>) -> bool {
        if !self.locals.contains_key(&partition) {
            return false;
        }
        let voters = voters.iter().map(|n| raft_node(*n)).collect();
        self.driver.raft_mut().force_reconfiguration(
            u64::from(partition),
            voters,
            raft::UnsafeForce::IAcceptDataLoss,
        );
        true
    }

    /// Proposes new voters (and priorities) for `partition`, which this node
    /// leads: a change by joint consensus, complete once every replica's
    /// [`ReplicaMembership::durable_voters`] are `voters`.
    pub fn propose_voters(
        &mut self,
        partition: PartitionId,
        voters: &BTreeMap<u32, u32>,
    ) -> Result<(), String> {
        let group = u64::from(partition);
        let priorities: BTreeMap<raft::NodeId, u32> =
            voters.iter().map(|(n, p)| (raft_node(*n), *p)).collect();
        let voters = priorities.keys().copied().collect();
        self.driver
            .raft_mut()
            .propose_conf_change(group, voters, priorities)
            .map(|_| ())
            .map_err(|e| format!("partition {partition}: {e}"))
    }

    /// Opens a replica of `partition` while the others run: one joining its
    /// group (empty, with the configuration the cluster configuration gives
    /// the group now: it votes once a configuration naming it is applied),
    /// or one the cluster configuration gives this node after it started.
    /// Nothing happens if it is open already.
    pub async fn join(
        &mut self,
        options: &OpenOptions,
        partition: PartitionId,
        fence: Option<replica::JoinFence>,
        heartbeat: &dyn Fn(),
    ) -> Result<(), ReplicaError> {
        if self.locals.contains_key(&partition) {
            return Ok(());
        }
        let spec = GroupSpec {
            group: u64::from(partition),
            dir: options.dir.join(partition.to_string()),
            initial: options.members.group_config(partition),
            machine: new_machine(options, partition, &self.view, &self.metrics)?,
            fence,
        };
        let opened = self.driver.add_group(spec, heartbeat).await?;
        self.metrics.register_partitions(&[partition]);
        self.view.add_partition(partition);
        self.view
            .set_partition(partition, Role::Follower, false, true);
        self.locals
            .insert(partition, opened_local(&opened, &self.metrics, self.now));
        tracing::info!(
            partition,
            "partition {partition} opened on this broker (cluster change)"
        );
        Ok(())
    }

    /// Closes the replica of `partition` and deletes its data: it left its
    /// group (a cluster change). Commands waiting on it are dropped. False
    /// when it is not open here.
    pub async fn leave(&mut self, partition: PartitionId) -> Result<bool, ReplicaError> {
        if self.locals.remove(&partition).is_none() {
            return Ok(false);
        }
        self.view.remove_partition(partition);
        let removed = self.driver.remove_group(u64::from(partition)).await?;
        tracing::info!(
            partition,
            "partition {partition} left this broker; its data is deleted (cluster change)"
        );
        Ok(removed)
    }

    /// Where this replica of `partition` stands in a membership change.
    pub fn membership(&self, partition: PartitionId) -> Option<ReplicaMembership> {
        let group = u64::from(partition);
        let status = self.driver.raft().status(group)?;
        let brokers = |c: &raft::GroupConfig| c.voters.iter().map(|n| broker_node(*n)).collect();
        let durable = self.driver.durable_config(group);
        Some(ReplicaMembership {
            leader: status.role == RaftRole::Leader,
            voters: brokers(&status.config),
            priorities: status
                .config
                .voters
                .iter()
                .map(|n| (broker_node(*n), status.config.priority(*n)))
                .collect(),
            joint: status.config.is_joint(),
            durable_voters: brokers(&durable),
            durable_priorities: durable
                .voters
                .iter()
                .map(|n| (broker_node(*n), durable.priority(*n)))
                .collect(),
            learners: status
                .config
                .learners
                .iter()
                .map(|n| broker_node(*n))
                .collect(),
            caught_up: self
                .driver
                .raft()
                .progress(group)
                .unwrap_or_default()
                .iter()
                .filter(|(n, p)| {
                    status.config.is_learner(**n)
                        && p.match_index + LEARNER_CAUGHT_UP >= status.commit
                })
                .map(|(n, _)| broker_node(*n))
                .collect(),
            scaling: (partition == crate::routing::DEPLOYMENT_PARTITION
                && status.role == RaftRole::Leader)
                .then(|| {
                    let progress = self.partition(partition).engine().scaling_progress();
                    crate::membership::change::ScalingReport {
                        partitions: progress.partitions,
                        complete: progress.complete,
                    }
                }),
            fence: self.driver.join_fence(group),
        })
    }

    /// Proposes `learners` (broker ids) as the learners of `partition`,
    /// which this node leads: a joining replica catches up as one before it
    /// votes.
    pub fn propose_learners(
        &mut self,
        partition: PartitionId,
        learners: &BTreeSet<u32>,
    ) -> Result<(), String> {
        let learners = learners.iter().map(|n| raft_node(*n)).collect();
        self.driver
            .raft_mut()
            .propose_learners(u64::from(partition), learners)
            .map(|_| ())
            .map_err(|e| format!("partition {partition}: {e}"))
    }

    /// Feeds a message from another node (a partition stalled by a full disk
    /// drops appends past its buffer bound).
    pub fn step(&mut self, envelope: raft::Envelope) {
        self.driver.step(envelope);
    }

    /// The nodes the transport has no connection to now: the priority
    /// election does not wait for them (see `raft::MultiRaft::set_unreachable`).
    pub fn set_unreachable(&mut self, nodes: impl IntoIterator<Item = u32>) {
        let nodes = nodes.into_iter().map(raft_node).collect();
        self.driver.raft_mut().set_unreachable(nodes);
    }

    /// One Raft tick; the leader also appends due commands (job time-outs,
    /// back-offs, timers, message expiry) and `Continue` entries for queued
    /// follow-up work. Returns the commands for other partitions that wait
    /// for an acknowledgement, to send again.
    pub fn tick(&mut self, now_ms: i64, now: Instant) -> Vec<(u32, engine::Record)> {
        self.advance(now);
        let now = self.now;
        self.publish_raft_metrics();
        self.driver.raft_mut().tick();
        let mut pending = Vec::new();
        let ids: Vec<PartitionId> = self.locals.keys().copied().collect();
        for p in ids {
            let group = u64::from(p);
            if !self.driver.leads(group) || self.driver.stall(group).is_some() {
                // A stalled leader proposes nothing: what is due stays due.
                continue;
            }
            let local = self.locals.get_mut(&p).expect("listed");
            let machine = self.driver.machine_mut(group).expect("listed");
            let partition = &mut machine.partition;
            let mut entries: Vec<Bytes> = partition
                .engine_mut()
                .due_commands(now_ms, 1024)
                .into_iter()
                .map(|mut c| {
                    c.timestamp_ms = now_ms;
                    crate::partition::encode_command(&c)
                })
                .collect();
            // Subscription commands for other partitions not yet
            // acknowledged there (lost or sent before a leader change).
            pending.extend(partition.engine_mut().pending_distributions(now_ms, 1024));
            if partition.has_follow_ups() && !machine.continue_pending {
                machine.continue_pending = true;
                entries.push(encode_continue(now_ms));
            }
            if let (Some(export), Some(queue)) = (&self.exporter, partition.exports_mut()) {
                let written = export.sink.acknowledged(p);
                let exported = queue.exported();
                if written > local.export_written.0 {
                    local.export_written = (written, now);
                } else if queue.sent() > written.max(exported)
                    && now.saturating_duration_since(local.export_written.1)
                        >= crate::exporter::RESEND_AFTER
                {
                    // The sink dropped what it was given (a failed write):
                    // hand it over again.
                    queue.rewind_sent(written.max(exported) + 1);
                    local.export_written.1 = now;
                    hand_to_sink(p, queue, export.sink.as_ref());
                }
                let (proposed, at) = local.export_proposed;
                if written > exported.max(proposed)
                    && now.saturating_duration_since(at) >= export.position_interval
                {
                    local.export_proposed = (written, now);
                    entries.push(crate::partition::encode_exported(now_ms, written));
                }
            }
            if !entries.is_empty() {
                let _ = self.driver.propose(group, entries);
            }
        }
        pending
    }

    /// Whether a ready is waiting.
    pub fn has_ready(&self) -> bool {
        self.driver.has_ready()
    }

    /// Writes, syncs and applies one ready. `send_now` gets the messages that
    /// may leave before the writes are durable. A partition whose writes
    /// meet a full disk is stalled, not failed.
    pub async fn run_ready(
        &mut self,
        send_now: &mut dyn FnMut(Vec<raft::Envelope>),
        now: Instant,
    ) -> Result<Turn, ReplicaError> {
        let flight = self.write_ready(send_now, now).await?;
        self.finish_ready(flight, now).await
    }

    /// The first half of [`ShardReplicas::run_ready`]: takes the ready, hands
    /// its messages to `send_now` and writes (without syncing).
    pub async fn write_ready(
        &mut self,
        send_now: &mut dyn FnMut(Vec<raft::Envelope>),
        now: Instant,
    ) -> Result<Flight, ReplicaError> {
        self.advance(now);
        let ready = self.driver.ready();
        send_now(ready.messages);
        let now_ms = self.now_ms();
        let flight = self
            .driver
            .write(ready.groups, ready.messages_after_persist, now_ms)
            .await?;
        for (g, count) in &flight.appended {
            self.metrics
                .appended_records
                .get_or_create(&PartitionLabel {
                    partition: *g as PartitionId,
                })
                .inc_by(*count as u64);
        }
        Ok(flight)
    }

    /// The second half of [`ShardReplicas::run_ready`]: syncs what
    /// [`ShardReplicas::write_ready`] wrote, then applies.
    pub async fn finish_ready(
        &mut self,
        flight: Flight,
        now: Instant,
    ) -> Result<Turn, ReplicaError> {
        self.advance(now);
        let now_ms = self.now_ms();
        let landed = self.driver.sync(flight, now_ms).await?;
        for (g, seconds) in &landed.sync_seconds {
            self.metrics
                .replication
                .log_sync_seconds
                .get_or_create(&PartitionLabel {
                    partition: *g as PartitionId,
                })
                .observe(*seconds);
        }
        let mut turn = Turn {
            messages: landed.messages,
            ..Turn::default()
        };
        for (group, entries) in landed.committed {
            let p = group as PartitionId;
            let mut applied = Applied::default();
            self.driver.apply(group, &entries, &mut applied)?;
            self.snapshot_if_due(p).await?;
            self.publish_applied(p, applied, &mut turn);
        }
        self.publish_roles();
        Ok(turn)
    }

    /// Takes a snapshot of `p` when enough entries were applied since the
    /// last one, or enough time passed.
    async fn snapshot_if_due(&mut self, p: PartitionId) -> Result<(), ReplicaError> {
        let group = u64::from(p);
        let applied_since = self.driver.applied_since_snapshot(group);
        let local = self.locals.get_mut(&p).expect("listed");
        let due = applied_since >= SNAPSHOT_EVERY_ENTRIES
            || (applied_since > 0
                && self.now.saturating_duration_since(local.snapshot_at) >= self.snapshot_period);
        if !due {
            return Ok(());
        }
        let started = Instant::now();
        let now_ms = self.now_ms();
        if let Some(bytes) = self.driver.snapshot(group, now_ms).await? {
            let label = PartitionLabel { partition: p };
            let m = &self.metrics.replication;
            m.snapshot_seconds
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64());
            m.snapshot_bytes
                .get_or_create(&label)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            self.locals.get_mut(&p).expect("listed").snapshot_at = self.now;
        }
        Ok(())
    }

    /// Metrics, exports, distributions and available jobs of what `p`
    /// applied.
    fn publish_applied(&mut self, p: PartitionId, mut applied: Applied, turn: &mut Turn) {
        self.metrics.activity.count(p, &applied.counts);
        {
            let histogram = self
                .metrics
                .commit_latency_seconds
                .get_or_create(&PartitionLabel { partition: p });
            for seconds in applied.answered_after_s.drain(..) {
                histogram.observe(seconds);
            }
        }
        for seconds in applied.activated_after_s.drain(..) {
            self.metrics.job_activation_latency_seconds.observe(seconds);
        }
        let leading = self.leader(p).0;
        let machine = self.driver.machine_mut(u64::from(p)).expect("listed");
        let streams = machine.partition.engine().job_streams().len();
        self.metrics
            .activity
            .job_streams
            .get_or_create(&PartitionLabel { partition: p })
            .set(i64::try_from(streams).unwrap_or(i64::MAX));
        if let Some(queue) = machine.partition.exports_mut() {
            let lag = queue.lag_records() as i64;
            if let (true, Some(export)) = (leading, &self.exporter) {
                hand_to_sink(p, queue, export.sink.as_ref());
            }
            self.metrics
                .exporter_lag_records
                .get_or_create(&PartitionLabel { partition: p })
                .set(lag);
        }
        turn.checkpoints
            .extend(applied.checkpoints.drain(..).map(|c| (p, c)));
        // Every replica computes the distributions; the leader sends them.
        if leading {
            turn.distributions.extend(applied.distributions);
            if !applied.jobs_available.is_empty() {
                let mut types = applied.jobs_available;
                types.sort_unstable();
                types.dedup();
                turn.jobs_available.push((p, types));
            }
            if !applied.pushed_jobs.is_empty() {
                let now_ms = crate::view::unix_now_ms() as i64;
                for push in &applied.pushed_jobs {
                    let waited = (now_ms - push.job.created_ms).max(0) as f64 / 1000.0;
                    self.metrics.job_activation_latency_seconds.observe(waited);
                }
                turn.pushed_jobs
                    .extend(applied.pushed_jobs.into_iter().map(|push| (p, push)));
            }
        }
    }
    /// Term, indexes, leader changes and, on leaders, each follower's lag;
    /// at most every [`RAFT_METRICS_INTERVAL`].
    fn publish_raft_metrics(&mut self) {
        if self.since(self.metrics_at) < RAFT_METRICS_INTERVAL {
            return;
        }
        self.metrics_at = self.now;
        let m = &self.metrics.replication;
        let raft = self.driver.raft();
        let me = raft.id();
        for (p, local) in self.locals.iter_mut() {
            let group = u64::from(*p);
            let Some(brief) = raft.brief(group) else {
                continue;
            };
            let label = PartitionLabel { partition: *p };
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            m.raft_term.get_or_create(&label).set(gauge(brief.term));
            m.raft_commit_index
                .get_or_create(&label)
                .set(gauge(brief.commit));
            m.raft_last_index
                .get_or_create(&label)
                .set(gauge(brief.last_index));
            if brief.leader != raft::NO_NODE && brief.leader != local.metrics_leader {
                if local.metrics_leader != raft::NO_NODE {
                    m.raft_leader_changes.get_or_create(&label).inc();
                }
                local.metrics_leader = brief.leader;
            }
            if brief.role != RaftRole::Leader {
                continue;
            }
            for (follower, progress) in raft.progress(group).unwrap_or_default() {
                if follower == me {
                    continue;
                }
                let lag = brief.last_index.saturating_sub(progress.match_index);
                m.raft_replication_lag_entries
                    .get_or_create(&replication::FollowerLabel {
                        partition: *p,
                        follower,
                    })
                    .set(gauge(lag));
            }
        }
    }

    /// Reports the end of a lost tail's recovery (and its progress).
    fn publish_recovery(&mut self) {
        let raft = self.driver.raft();
        for (p, local) in self.locals.iter_mut() {
            if local.recovering_until == 0 {
                continue;
            }
            let group = u64::from(*p);
            let gauge = self
                .metrics
                .log_entries_recovering
                .get_or_create(&PartitionLabel { partition: *p });
            if raft.recovering_until(group).is_some() {
                let last = raft.brief(group).map_or(0, |b| b.last_index);
                let missing = local.recovering_until.saturating_sub(last);
                gauge.set(i64::try_from(missing).unwrap_or(i64::MAX));
                continue;
            }
            tracing::info!(
                partition = p,
                index = local.recovering_until,
                "partition {p}: the lost committed entries up to index {} are recovered from the \
                 other replicas; voting again",
                local.recovering_until
            );
            gauge.set(0);
            local.recovering_until = 0;
        }
    }

    /// Retries the writes of partitions stalled by a full disk, and makes
    /// the logs' reserves again; returns the messages released by writes
    /// that became durable. Only errors other than ENOSPC are returned.
    pub async fn retry_space(&mut self, now: Instant) -> Result<Vec<raft::Envelope>, ReplicaError> {
        self.advance(now);
        let now_ms = self.now_ms();
        self.driver.retry_space(now_ms).await
    }

    /// What partition `p` admits, as far as its own storage is concerned.
    pub fn admission(&self, p: PartitionId) -> Admission {
        let group = u64::from(p);
        if let Some(stall) = self.driver.stall(group) {
            return Admission::Closed(stall.refusal.clone());
        }
        match self.driver.space_shortage(group) {
            Some((dir, shortage)) => space::log_shortage(dir, shortage),
            None => Admission::Open,
        }
    }

    fn publish_roles(&mut self) {
        self.publish_recovery();
        let ids: Vec<PartitionId> = self.locals.keys().copied().collect();
        for p in ids {
            let group = u64::from(p);
            let (role, leader_known, term) = self
                .driver
                .raft()
                .brief(group)
                .map(|b| (b.role, b.leader != raft::NO_NODE, b.term))
                .unwrap_or((RaftRole::Follower, false, 0));
            let local = self.locals.get_mut(&p).expect("listed");
            // Leading again in a later term (stepped down and re-elected
            // between two turns) is a new leadership: the uncommitted
            // entries of the earlier one may be gone.
            let releading =
                role == RaftRole::Leader && local.role == RaftRole::Leader && term != local.term;
            local.term = term;
            if (role, leader_known) == (local.role, local.leader_known) && !releading {
                continue;
            }
            local.leader_known = leader_known;
            let was = local.role;
            local.role = role;
            let changed = was != role || releading;
            if changed {
                local.export_proposed = (0, self.now);
            }
            let machine = self.driver.machine_mut(group).expect("listed");
            if changed {
                // A new term of leadership exports from the replicated position.
                if let Some(queue) = machine.partition.exports_mut() {
                    queue.reset_sent();
                }
            }
            if was == RaftRole::Leader && (role != RaftRole::Leader || releading) {
                machine.partition.fail_pending(&format!(
                    "partition {p} lost its leadership; retry on the new leader"
                ));
                machine.continue_pending = false;
            }
            let shown = match role {
                RaftRole::Leader => Role::Leader,
                RaftRole::Follower => Role::Follower,
                RaftRole::PreCandidate | RaftRole::Candidate => Role::Candidate,
            };
            self.view.set_partition(p, shown, leader_known, true);
        }
    }

    /// The open incidents of the partitions this node leads, as JSON.
    pub fn incidents(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for p in self.partitions() {
            if !self.leader(p).0 {
                continue;
            }
            for (key, i) in &self.partition(p).engine().state().incidents {
                out.push(serde_json::json!({
                    "incidentKey": key,
                    "partitionId": p,
                    "errorType": i.error_type.name(),
                    "errorMessage": i.error_message,
                    "bpmnProcessId": &*i.bpmn_process_id,
                    "processInstanceKey": i.process_instance_key,
                    "elementId": &*i.element_id,
                    "elementInstanceKey": i.element_instance_key,
                    "jobKey": i.job_key,
                }));
            }
        }
        out
    }

    /// Hands the leadership of every partition this node leads to its most
    /// caught-up, recently active follower (shutdown). Returns how many
    /// partitions are still led here with a follower to hand over to.
    pub fn hand_over(&mut self) -> usize {
        let mut still = 0;
        for p in self.locals.keys().copied().collect::<Vec<_>>() {
            if self.driver.transfer_to_best(u64::from(p)) {
                still += 1;
            }
        }
        still
    }

    /// Drops the waiting requests whose clients gave up.
    pub fn forget_abandoned(&mut self) {
        for p in self.locals.keys().copied().collect::<Vec<_>>() {
            if let Some(partition) = self.partition_mut(p) {
                partition.forget_abandoned();
            }
        }
    }

    /// Writes the hard state not yet stored and fails waiting requests
    /// (shutdown).
    pub async fn shut_down(&mut self) {
        for p in self.locals.keys().copied().collect::<Vec<_>>() {
            if let Some(partition) = self.partition_mut(p) {
                partition.fail_pending("the broker is shutting down");
            }
            self.view.set_partition(p, Role::Inactive, false, false);
        }
        let now_ms = self.now_ms();
        for e in self.driver.store_hard_states(now_ms).await {
            tracing::error!("{e}");
        }
    }
}

/// Hands the records not yet given to the sink (leader).
fn hand_to_sink(p: PartitionId, queue: &mut crate::exporter::ExportQueue, sink: &dyn Sink) {
    let unsent = queue.take_unsent();
    if let Some(first) = unsent.first().map(|e| e.index) {
        if !sink.send(p, unsent) {
            // The writer is behind: hand these over again later.
            queue.rewind_sent(first);
        }
    }
}
