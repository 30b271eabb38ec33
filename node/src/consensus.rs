//! The replicated partitions of one shard: a [`MultiRaft`] over every local
//! partition, each partition's durable stores, and the loop step that turns
//! a Raft ready into disk writes, messages and applied commands.
//!
//! Owned by one shard thread (glommio executor) for the life of the broker.
//!
//! ```text
//! data/partitions/<p>/log/         segment files (storage::Log)
//! data/partitions/<p>/meta/        Raft term, vote and commit (storage::MetaStore)
//! data/partitions/<p>/snapshots/   the latest snapshots (storage::SnapshotStore)
//! ```
//!
//! Storage payload of a log entry: one byte of Raft entry kind (0 normal,
//! 1 configuration) followed by the Raft entry data; the data of a normal
//! entry is the application entry of [`crate::partition`].
//!
//! Snapshot bytes (stored and sent to followers alike): `u32` length of the
//! encoded group configuration, the configuration, then the partition's
//! replicated state.
//!
//! Write path of one ready: every group's snapshot, entries and hard state
//! are written, then each log touched gets one `fdatasync` (group commit:
//! all commands that arrived since the previous ready share it); only then
//! are the writes acknowledged to Raft and the messages that depend on them
//! sent. The term and vote are made durable at once; a commit-only change of
//! the hard state is written at most once per `COMMIT_STORE_INTERVAL`, with
//! the next term or vote change, or at shutdown, since Raft recovers the
//! commit index from the leader. On open, a persisted commit index above the
//! last index of the log means committed entries were lost (a torn or
//! damaged tail): see `check_lost_committed`.
//!
//! A committed command whose processing panics is rejected instead (see
//! [`crate::isolation`]): the state is rebuilt from the snapshot and entries
//! the in-memory Raft reader holds.
//!
//! A full disk is not a failure (see [`crate::space`]): an ENOSPC while
//! writing a group's entries (or installing its snapshot) stalls that group
//! only. Its entries stay buffered in the log and are not reported to Raft as
//! persisted, so a leader does not count them and a follower does not
//! acknowledge them: its messages that depend on the writes are held back.
//! `retry_space` writes them again with a bounded back-off and, once they are
//! durable, reports them and sends what was held. A snapshot that fails with
//! ENOSPC is tried again later. Any other storage error stays fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use raft::{
    Entry, EntryKind, GroupBootstrap, GroupConfig, LogReader, MemLog, MultiRaft, RaftConfig,
    Role as RaftRole,
};
use storage::{DmaDisk, Log, LogConfig, MetaStore, SnapshotStore};
use thiserror::Error;

use crate::command::CommandError;
use crate::divergence::Checkpoint;
use crate::exporter::Sink;
use crate::metrics::{replication, Metrics, PartitionLabel};
use crate::partition::{decode_entry, encode_continue, Applied, Partition};
use crate::placement::{ClusterShape, PartitionId};
use crate::space::{self, Admission, Stall};
use crate::view::{BrokerView, Role};

/// Snapshots kept per partition.
pub const SNAPSHOTS_KEPT: usize = 2;
/// Applied entries after which a partition takes a snapshot and compacts its log.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;
/// Payload bytes read from the log per call while loading it at start-up
/// (one sequential read; the entries share its buffer).
const LOAD_BATCH_BYTES: usize = 16 << 20;
/// Bytes per chunk when writing a snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;
/// A commit index that moved is written to the Raft metadata at least this
/// often while the partition is busy, so that a log tail lost in a crash is
/// noticed against it on restart (see `check_lost_committed`).
const COMMIT_STORE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

const PAYLOAD_NORMAL: u8 = 0;
const PAYLOAD_CONFIG: u8 = 1;

/// A partition could not be opened or its storage failed.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// The storage layer failed.
    #[error("partition {partition}: {source}")]
    Storage {
        /// The partition.
        partition: PartitionId,
        /// The storage error (names the file).
        #[source]
        source: storage::Error,
    },
    /// What is stored does not decode.
    #[error("partition {partition}: {reason}")]
    Corrupt {
        /// The partition.
        partition: PartitionId,
        /// What is wrong.
        reason: String,
    },
    /// The log lost committed entries and no other replica can give them back.
    #[error(
        "partition {partition}: the log in {dir} ends at index {last_index}, but the persisted \
         commit index is {commit_index}: {lost} committed (acknowledged) entries are lost and the \
         partition has no other replica to recover them from. Restore {dir} from a backup, or \
         start without them by setting data.accept_data_loss = true (environment \
         WAGGLE_DATA_ACCEPT_DATA_LOSS=true)",
        lost = commit_index - last_index
    )]
    LostCommitted {
        /// The partition.
        partition: PartitionId,
        /// The partition's log directory.
        dir: PathBuf,
        /// Commit index found in the Raft metadata.
        commit_index: u64,
        /// Last index found in the log (or the snapshot).
        last_index: u64,
    },
}

/// Raft node id of broker node `node` (Raft reserves 0).
pub fn raft_node(node: u32) -> raft::NodeId {
    u64::from(node) + 1
}

/// Broker node id of Raft node `node`.
pub fn broker_node(node: raft::NodeId) -> u32 {
    (node - 1) as u32
}

/// The initial Raft configuration of a partition: its replicas, the first
/// (the preferred leader) with the highest priority.
pub fn initial_config(shape: &ClusterShape, partition: PartitionId) -> GroupConfig {
    let replicas = shape.replicas(partition);
    let count = replicas.len() as u32;
    let mut config = GroupConfig::new(replicas.iter().map(|n| raft_node(*n)));
    for (rank, node) in replicas.iter().enumerate() {
        config = config.with_priority(raft_node(*node), count - rank as u32);
    }
    config
}

fn storage_payload(entry: &Entry) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + entry.data.len());
    out.put_u8(match entry.kind {
        EntryKind::Normal => PAYLOAD_NORMAL,
        EntryKind::ConfChange => PAYLOAD_CONFIG,
    });
    out.put_slice(&entry.data);
    out.freeze()
}

fn raft_entry(partition: PartitionId, stored: storage::Entry) -> Result<Entry, ReplicaError> {
    let kind = match stored.payload.first() {
        Some(&PAYLOAD_NORMAL) => EntryKind::Normal,
        Some(&PAYLOAD_CONFIG) => EntryKind::ConfChange,
        other => {
            return Err(ReplicaError::Corrupt {
                partition,
                reason: format!("log entry {} has payload kind {other:?}", stored.index),
            })
        }
    };
    Ok(Entry {
        term: stored.term,
        index: stored.index,
        kind,
        data: stored.payload.slice(1..),
    })
}

/// Snapshot bytes: the group configuration, then the partition's state.
pub(crate) fn encode_snapshot(config: &GroupConfig, state: &[u8]) -> Bytes {
    let config = raft::encode_config(config);
    let mut out = BytesMut::with_capacity(4 + config.len() + state.len());
    out.put_u32_le(config.len() as u32);
    out.put_slice(&config);
    out.put_slice(state);
    out.freeze()
}

/// Splits snapshot bytes into the group configuration and the partition's
/// replicated state.
pub(crate) fn decode_snapshot(
    partition: PartitionId,
    data: &Bytes,
) -> Result<(GroupConfig, Bytes), ReplicaError> {
    let corrupt = |reason: String| ReplicaError::Corrupt { partition, reason };
    if data.len() < 4 {
        return Err(corrupt(format!(
            "snapshot of {} bytes has no header",
            data.len()
        )));
    }
    let len = u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) as usize;
    if data.len() < 4 + len {
        return Err(corrupt(format!(
            "snapshot configuration of {len} bytes is cut short"
        )));
    }
    let config = raft::decode_config(data.slice(4..4 + len))
        .map_err(|e| corrupt(format!("snapshot configuration: {e}")))?;
    Ok((config, data.slice(4 + len..)))
}

/// One local partition replica with its stores.
struct Replica {
    partition: Partition,
    log: Log<DmaDisk>,
    meta: MetaStore<DmaDisk>,
    snapshots: SnapshotStore<DmaDisk>,
    /// Hard state last written to `meta`.
    stored: raft::HardState,
    /// Hard state handed out by Raft and not yet written.
    unstored: Option<raft::HardState>,
    snapshot_index: u64,
    /// When the last snapshot was taken (or the partition opened).
    snapshot_at: std::time::Instant,
    role: RaftRole,
    /// Whether a leader was known at the last turn.
    leader_known: bool,
    /// The leader seen when the metrics were last published.
    metrics_leader: u64,
    /// A `Continue` entry is proposed and not yet applied.
    continue_pending: bool,
    /// Highest exported position this leader proposed, and when.
    export_proposed: (u64, std::time::Instant),
    /// Highest position the sink acknowledged, and when it last moved.
    export_written: (u64, std::time::Instant),
    /// Index the log must reach again after losing committed entries
    /// (Raft holds back this replica's votes until then); 0 when whole.
    recovering_until: u64,
    /// When `stored` was last written.
    stored_at: std::time::Instant,
    /// Writes held back by ENOSPC.
    stall: Option<Stall>,
    /// A snapshot failed for lack of space: none is tried before this.
    snapshot_retry_at: Option<std::time::Instant>,
    /// The log is short of space: its reserve is made again from this time on.
    spare_retry_at: std::time::Instant,
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
}

/// See the module documentation.
pub struct ShardReplicas {
    raft: MultiRaft<MemLog>,
    replicas: BTreeMap<PartitionId, Replica>,
    view: Arc<BrokerView>,
    snapshot_period: std::time::Duration,
    metrics: Arc<Metrics>,
    exporter: Option<ExportOptions>,
    /// When the Raft gauges were last published.
    metrics_at: std::time::Instant,
    /// `cluster.state_check_entries`.
    state_check_entries: u64,
    replication_factor: u32,
}

/// The Raft gauges are published at most this often.
const RAFT_METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl std::fmt::Debug for ShardReplicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReplicas")
            .field("partitions", &self.replicas.keys().collect::<Vec<_>>())
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
    /// `data/partitions`.
    pub dir: PathBuf,
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

impl ShardReplicas {
    /// Opens (creating or recovering) the partitions `owned` of shard
    /// `shard`, turning the shard's heartbeat in `view` as it goes.
    pub async fn open(
        options: &OpenOptions,
        shard: usize,
        owned: &[PartitionId],
        view: Arc<BrokerView>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ReplicaError> {
        let me = raft_node(options.node);
        let mut reader = MemLog::new();
        let mut replicas = BTreeMap::new();
        let mut boots = Vec::new();
        for &p in owned {
            let (replica, boot) =
                open_replica(options, p, &mut reader, &metrics, &|| view.heartbeat(shard)).await?;
            replicas.insert(p, replica);
            boots.push((p, boot));
        }
        let mut raft = MultiRaft::new(me, options.raft.clone(), reader, options.seed);
        for (p, boot) in boots {
            let single = boot.config.all_voters().len() == 1;
            raft.add_group(u64::from(p), boot)
                .map_err(|e| ReplicaError::Corrupt {
                    partition: p,
                    reason: e.to_string(),
                })?;
            if single {
                // The only voter: no one to wait for.
                raft.campaign(u64::from(p));
            }
        }
        for (&p, replica) in replicas.iter_mut() {
            // The reserve for a full disk (see `crate::space`); without room
            // for it the partition starts short of space and makes it later.
            match replica.log.ensure_spare().await {
                Ok(()) => {}
                Err(e) if e.is_no_space() => {
                    tracing::warn!(partition = p, "no room for the log's spare segment: {e}")
                }
                Err(source) => {
                    return Err(ReplicaError::Storage {
                        partition: p,
                        source,
                    })
                }
            }
        }
        for &p in owned {
            // Opened and its log loaded; ready once a leader is known.
            view.set_partition(p, Role::Follower, false, true);
        }
        Ok(ShardReplicas {
            raft,
            replicas,
            view,
            snapshot_period: options.snapshot_period,
            metrics,
            exporter: options.exporter.clone(),
            metrics_at: std::time::Instant::now(),
            state_check_entries: options.state_check_entries,
            replication_factor: options.shape.replication_factor,
        })
    }

    /// Partitions of this shard.
    pub fn partitions(&self) -> impl Iterator<Item = PartitionId> + '_ {
        self.replicas.keys().copied()
    }

    /// Whether this node leads `partition`, and the leader it knows of.
    pub fn leader(&self, partition: PartitionId) -> (bool, Option<u32>) {
        match self.raft.brief(u64::from(partition)) {
            Some(b) => (
                b.role == RaftRole::Leader,
                (b.leader != raft::NO_NODE).then(|| broker_node(b.leader)),
            ),
            None => (false, None),
        }
    }

    /// The partition, for preparing commands.
    pub fn partition_mut(&mut self, partition: PartitionId) -> Option<&mut Partition> {
        self.replicas.get_mut(&partition).map(|r| &mut r.partition)
    }

    /// Proposes application entries on a partition this node leads; refused
    /// while its writes are stalled by a full disk.
    pub fn propose(
        &mut self,
        partition: PartitionId,
        entries: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        if let Some(stall) = self.replicas.get(&partition).and_then(|r| r.stall.as_ref()) {
            return Err(CommandError::ResourceExhausted(format!(
                "partition {partition}: {}",
                stall.refusal.reason
            )));
        }
        self.raft
            .propose(u64::from(partition), entries)
            .map(|_| ())
            .map_err(|e| {
                CommandError::Unavailable(format!(
                    "partition {partition} cannot take the command: {e}"
                ))
            })
    }

    /// Feeds a message from another node. A group stalled by a full disk
    /// drops appends past `MAX_STALLED_BUFFER_BYTES` (the leader sends them
    /// again, as after a lost message).
    pub fn step(&mut self, mut envelope: raft::Envelope) {
        if self.replicas.values().any(|r| r.stall.is_some()) {
            envelope.messages.retain(|m| {
                let raft::MessageBody::Append { entries, .. } = &m.body else {
                    return true;
                };
                let stall = self
                    .replicas
                    .get_mut(&(m.group as PartitionId))
                    .and_then(|r| r.stall.as_mut());
                let Some(stall) = stall else {
                    return true;
                };
                let bytes: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
                if stall.over_buffer(bytes) {
                    return false;
                }
                stall.buffered_bytes += bytes;
                true
            });
        }
        self.raft.step_envelope(envelope);
    }

    /// One Raft tick; the leader also appends due commands (job time-outs,
    /// back-offs, timers, message expiry) and `Continue` entries for queued
    /// follow-up work. Returns the commands for other partitions that wait
    /// for an acknowledgement, to send again.
    pub fn tick(&mut self, now_ms: i64) -> Vec<(u32, engine::Record)> {
        self.publish_raft_metrics();
        self.raft.tick();
        let mut pending = Vec::new();
        let ids: Vec<PartitionId> = self.replicas.keys().copied().collect();
        for p in ids {
            let (leading, _) = self.leader(p);
            let replica = self.replicas.get_mut(&p).expect("listed");
            if !leading || replica.stall.is_some() {
                // A stalled leader proposes nothing: what is due stays due.
                continue;
            }
            let mut entries: Vec<Bytes> = replica
                .partition
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
            pending.extend(
                replica
                    .partition
                    .engine_mut()
                    .pending_distributions(now_ms, 1024),
            );
            if replica.partition.has_follow_ups() && !replica.continue_pending {
                replica.continue_pending = true;
                entries.push(encode_continue(now_ms));
            }
            if let (Some(export), Some(queue)) = (&self.exporter, replica.partition.exports_mut()) {
                let written = export.sink.acknowledged(p);
                let exported = queue.exported();
                if written > replica.export_written.0 {
                    replica.export_written = (written, std::time::Instant::now());
                } else if queue.sent() > written.max(exported)
                    && replica.export_written.1.elapsed() >= crate::exporter::RESEND_AFTER
                {
                    // The sink dropped what it was given (a failed write):
                    // hand it over again.
                    queue.rewind_sent(written.max(exported) + 1);
                    replica.export_written.1 = std::time::Instant::now();
                    hand_to_sink(p, queue, export.sink.as_ref());
                }
                let (proposed, at) = replica.export_proposed;
                if written > exported.max(proposed) && at.elapsed() >= export.position_interval {
                    replica.export_proposed = (written, std::time::Instant::now());
                    entries.push(crate::partition::encode_exported(now_ms, written));
                }
            }
            if !entries.is_empty() {
                let _ = self.raft.propose(u64::from(p), entries);
            }
        }
        pending
    }

    /// Whether a ready is waiting.
    pub fn has_ready(&self) -> bool {
        self.raft.has_ready()
    }

    /// Writes, syncs and applies one ready. `send_now` gets the messages that
    /// may leave before the writes are durable. A group whose writes meet a
    /// full disk is stalled (see the module documentation), not failed.
    pub async fn run_ready(
        &mut self,
        send_now: &mut dyn FnMut(Vec<raft::Envelope>),
    ) -> Result<Turn, ReplicaError> {
        let ready = self.raft.ready();
        send_now(ready.messages);
        let mut acks = Vec::new();
        let mut committed = Vec::new();
        let mut synced = Vec::new();
        for gr in ready.groups {
            let p = gr.group as PartitionId;
            self.write_group(p, gr.snapshot, gr.entries, &mut acks, &mut synced)
                .await?;
            let replica = self
                .replicas
                .get_mut(&p)
                .expect("Raft only knows local partitions");
            if let Some(hs) = gr.hard_state {
                self.raft.reader_mut().set_hard_state(gr.group, hs);
                let commit_due = hs.commit > replica.stored.commit
                    && replica.stored_at.elapsed() >= COMMIT_STORE_INTERVAL;
                if hs.term != replica.stored.term || hs.vote != replica.stored.vote || commit_due {
                    store_hard_state(p, replica, hs).await?;
                } else {
                    replica.unstored = Some(hs);
                }
            }
            if !gr.committed.is_empty() {
                committed.push((p, gr.committed));
            }
        }
        for p in synced {
            let replica = self.replicas.get_mut(&p).expect("listed");
            let sync_started = std::time::Instant::now();
            let synced = replica.log.sync().await;
            self.metrics
                .replication
                .log_sync_seconds
                .get_or_create(&PartitionLabel { partition: p })
                .observe(sync_started.elapsed().as_secs_f64());
            match synced {
                Ok(_) => {}
                Err(source) if source.is_no_space() => {
                    let mut stall = Stall::new(p, replica.log.dir(), &source);
                    let group = u64::from(p);
                    stall.acks.extend(
                        acks.iter()
                            .filter(|(g, _, _)| *g == group)
                            .map(|(_, index, term)| (*index, *term)),
                    );
                    acks.retain(|(g, _, _)| *g != group);
                    replica.stall = Some(stall);
                }
                Err(source) => {
                    return Err(ReplicaError::Storage {
                        partition: p,
                        source,
                    })
                }
            }
        }
        let mut turn = Turn {
            messages: self.hold_back(ready.messages_after_persist),
            ..Turn::default()
        };
        for (group, index, term) in acks {
            self.raft.persisted(group, index, term);
        }
        for (p, entries) in committed {
            let mut applied = Applied::default();
            let replica = self.replicas.get_mut(&p).expect("listed");
            for e in entries {
                let app = match e.kind {
                    EntryKind::ConfChange => None,
                    EntryKind::Normal => {
                        decode_entry(p, e.index, &e.data).map_err(|b| ReplicaError::Corrupt {
                            partition: p,
                            reason: b.to_string(),
                        })?
                    }
                };
                if matches!(app, Some(crate::partition::AppEntry::Continue { .. })) {
                    replica.continue_pending = false;
                }
                if let Err(failure) = replica.partition.apply(e.index, app, &mut applied) {
                    crate::isolation::recover(
                        &mut replica.partition,
                        self.raft.reader(),
                        &self.metrics,
                        failure,
                        &mut applied,
                    )?;
                }
                if self.state_check_entries > 0 && e.index % self.state_check_entries == 0 {
                    let checkpoint = Checkpoint {
                        index: e.index,
                        fingerprint: replica.partition.engine().fingerprint(),
                    };
                    self.view
                        .checks
                        .record(p, checkpoint, self.replication_factor);
                }
            }
            let applied_since = replica.partition.applied() - replica.snapshot_index;
            let due = applied_since >= SNAPSHOT_EVERY_ENTRIES
                || (applied_since > 0 && replica.snapshot_at.elapsed() >= self.snapshot_period);
            let now = std::time::Instant::now();
            if due && replica.snapshot_retry_at.is_none_or(|at| now >= at) {
                let started = std::time::Instant::now();
                match take_snapshot(p, replica, &mut self.raft).await {
                    Ok(bytes) => {
                        let label = PartitionLabel { partition: p };
                        let m = &self.metrics.replication;
                        m.snapshot_seconds
                            .get_or_create(&label)
                            .observe(started.elapsed().as_secs_f64());
                        m.snapshot_bytes
                            .get_or_create(&label)
                            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                        replica.snapshot_at = now;
                        replica.snapshot_retry_at = None;
                    }
                    Err(ReplicaError::Storage { source, .. }) if source.is_no_space() => {
                        tracing::warn!(
                            partition = p,
                            "snapshot not taken, retried in {} ms: {source}",
                            space::MAX_RETRY_MS
                        );
                        replica.snapshot_retry_at =
                            Some(now + std::time::Duration::from_millis(space::MAX_RETRY_MS));
                    }
                    Err(e) => return Err(e),
                }
            }
            self.metrics.activity.count(p, &applied.counts);
            let histogram = self
                .metrics
                .commit_latency_seconds
                .get_or_create(&PartitionLabel { partition: p });
            for seconds in applied.answered_after_s.drain(..) {
                histogram.observe(seconds);
            }
            for seconds in applied.activated_after_s.drain(..) {
                self.metrics.job_activation_latency_seconds.observe(seconds);
            }
            if let Some(queue) = replica.partition.exports_mut() {
                self.metrics
                    .exporter_lag_records
                    .get_or_create(&PartitionLabel { partition: p })
                    .set(queue.lag_records() as i64);
            }
            let leading = self.leader(p).0;
            if let (true, Some(export)) = (leading, &self.exporter) {
                let replica = self.replicas.get_mut(&p).expect("listed");
                if let Some(queue) = replica.partition.exports_mut() {
                    hand_to_sink(p, queue, export.sink.as_ref());
                }
            }
            // Every replica computes the distributions; the leader sends them.
            if leading {
                turn.distributions.extend(applied.distributions);
                if !applied.jobs_available.is_empty() {
                    let mut types = applied.jobs_available;
                    types.sort_unstable();
                    types.dedup();
                    turn.jobs_available.push((p, types));
                }
            }
        }
        self.publish_roles();
        Ok(turn)
    }

    /// Term, indexes, leader changes and, on leaders, each follower's lag;
    /// at most every [`RAFT_METRICS_INTERVAL`].
    fn publish_raft_metrics(&mut self) {
        if self.metrics_at.elapsed() < RAFT_METRICS_INTERVAL {
            return;
        }
        self.metrics_at = std::time::Instant::now();
        let m = &self.metrics.replication;
        let me = self.raft.id();
        for (p, replica) in self.replicas.iter_mut() {
            let group = u64::from(*p);
            let Some(brief) = self.raft.brief(group) else {
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
            if brief.leader != raft::NO_NODE && brief.leader != replica.metrics_leader {
                if replica.metrics_leader != raft::NO_NODE {
                    m.raft_leader_changes.get_or_create(&label).inc();
                }
                replica.metrics_leader = brief.leader;
            }
            if brief.role != RaftRole::Leader {
                continue;
            }
            for (follower, progress) in self.raft.progress(group).unwrap_or_default() {
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
        for (p, replica) in self.replicas.iter_mut() {
            if replica.recovering_until == 0 {
                continue;
            }
            let group = u64::from(*p);
            let gauge = self
                .metrics
                .log_entries_recovering
                .get_or_create(&PartitionLabel { partition: *p });
            if self.raft.recovering_until(group).is_some() {
                let last = self.raft.brief(group).map_or(0, |b| b.last_index);
                let missing = replica.recovering_until.saturating_sub(last);
                gauge.set(i64::try_from(missing).unwrap_or(i64::MAX));
                continue;
            }
            tracing::info!(
                partition = p,
                index = replica.recovering_until,
                "partition {p}: the lost committed entries up to index {} are recovered from the \
                 other replicas; voting again",
                replica.recovering_until
            );
            gauge.set(0);
            replica.recovering_until = 0;
        }
    }

    /// Hands a group's snapshot and entries to its stores (buffered, not
    /// synced), or queues them behind the group's stall. The acknowledgements
    /// due once they are durable go to `acks`, or to the stall.
    async fn write_group(
        &mut self,
        p: PartitionId,
        snapshot: Option<raft::Snapshot>,
        entries: Vec<Entry>,
        acks: &mut Vec<(u64, u64, u64)>,
        synced: &mut Vec<PartitionId>,
    ) -> Result<(), ReplicaError> {
        let group = u64::from(p);
        let replica = self
            .replicas
            .get_mut(&p)
            .expect("Raft only knows local partitions");
        if let Some(stall) = replica.stall.as_mut().filter(|s| s.snapshot.is_some()) {
            if snapshot.is_some() {
                stall.snapshot = snapshot;
                stall.entries.clear();
            }
            stall.queue_entries(entries);
            return Ok(());
        }
        if let Some(snapshot) = snapshot {
            match install_snapshot(p, replica, self.raft.reader_mut(), &snapshot).await {
                Ok(()) => match replica.stall.as_mut() {
                    Some(stall) => stall.acks.push((snapshot.meta.index, snapshot.meta.term)),
                    None => acks.push((group, snapshot.meta.index, snapshot.meta.term)),
                },
                Err(ReplicaError::Storage { source, .. }) if source.is_no_space() => {
                    let mut stall = replica
                        .stall
                        .take()
                        .unwrap_or_else(|| Stall::new(p, replica.log.dir(), &source));
                    stall.snapshot = Some(snapshot);
                    stall.queue_entries(entries);
                    replica.stall = Some(stall);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        append_entries(p, replica, self.raft.reader_mut(), &entries).await?;
        self.metrics
            .appended_records
            .get_or_create(&PartitionLabel { partition: p })
            .inc_by(entries.len() as u64);
        let last = entries.last().expect("not empty");
        match replica.stall.as_mut() {
            // Synced by the stall's next retry, not before.
            Some(stall) => {
                stall.acks.push((last.index, last.term));
                stall.buffered_bytes += entries.iter().map(|e| e.data.len() as u64).sum::<u64>();
            }
            None => {
                acks.push((group, last.index, last.term));
                synced.push(p);
            }
        }
        Ok(())
    }

    /// Keeps back the messages of stalled groups (they depend on writes that
    /// are not durable) and returns the others.
    fn hold_back(&mut self, envelopes: Vec<raft::Envelope>) -> Vec<raft::Envelope> {
        if self.replicas.values().all(|r| r.stall.is_none()) {
            return envelopes;
        }
        let mut out = Vec::with_capacity(envelopes.len());
        for mut envelope in envelopes {
            let to = envelope.to;
            envelope.messages.retain(|m| {
                let stall = self
                    .replicas
                    .get_mut(&(m.group as PartitionId))
                    .and_then(|r| r.stall.as_mut());
                match stall {
                    Some(stall) => {
                        stall.hold(to, m.clone());
                        false
                    }
                    None => true,
                }
            });
            if !envelope.messages.is_empty() {
                out.push(envelope);
            }
        }
        out
    }

    /// Retries the writes of stalled groups that are due, makes the log's
    /// reserve again where it was used, and retries snapshots; returns the
    /// messages released by writes that became durable. Only errors other
    /// than ENOSPC are returned.
    pub async fn retry_space(&mut self) -> Result<Vec<raft::Envelope>, ReplicaError> {
        let now = std::time::Instant::now();
        let me = self.raft.id();
        let mut released: BTreeMap<raft::NodeId, Vec<raft::GroupMessage>> = BTreeMap::new();
        let ids: Vec<PartitionId> = self.replicas.keys().copied().collect();
        for p in ids {
            let replica = self.replicas.get_mut(&p).expect("listed");
            if replica.stall.as_ref().is_some_and(|s| s.due(now)) {
                let mut stall = replica.stall.take().expect("checked");
                match resume(p, replica, self.raft.reader_mut(), &mut stall).await {
                    Ok(true) => {
                        tracing::info!(partition = p, "disk space is back: writes resumed");
                        for (index, term) in stall.acks {
                            self.raft.persisted(u64::from(p), index, term);
                        }
                        for (to, message) in stall.messages {
                            released.entry(to).or_default().push(message);
                        }
                    }
                    Ok(false) => {
                        stall.back_off(now);
                        replica.stall = Some(stall);
                        // A leader that cannot write holds its partition
                        // up: a healthy replica takes over if there is one.
                        if self.leader(p).0 && self.transfer_to_best(u64::from(p)) {
                            tracing::warn!(
                                partition = p,
                                "disk full: handing leadership of partition {p} over"
                            );
                        }
                    }
                    Err(e) => return Err(e),
                }
            } else if replica.stall.is_none()
                && replica.log.space_shortage().is_some()
                && now >= replica.spare_retry_at
            {
                match replica.log.ensure_spare().await {
                    Ok(()) => tracing::info!(partition = p, "disk space is back: reserve made"),
                    Err(e) if e.is_no_space() => {
                        replica.spare_retry_at =
                            now + std::time::Duration::from_millis(space::MAX_RETRY_MS);
                    }
                    Err(source) => {
                        return Err(ReplicaError::Storage {
                            partition: p,
                            source,
                        })
                    }
                }
            }
        }
        Ok(released
            .into_iter()
            .map(|(to, messages)| raft::Envelope {
                from: me,
                to,
                messages,
            })
            .collect())
    }

    /// What partition `p` admits, as far as its own storage is concerned.
    pub fn admission(&self, p: PartitionId) -> Admission {
        let Some(replica) = self.replicas.get(&p) else {
            return Admission::Open;
        };
        if let Some(stall) = &replica.stall {
            return Admission::Closed(stall.refusal.clone());
        }
        match replica.log.space_shortage() {
            Some(shortage) => space::log_shortage(replica.log.dir(), shortage),
            None => Admission::Open,
        }
    }

    fn publish_roles(&mut self) {
        self.publish_recovery();
        let ids: Vec<PartitionId> = self.replicas.keys().copied().collect();
        for p in ids {
            let (role, leader_known) = self
                .raft
                .brief(u64::from(p))
                .map(|b| (b.role, b.leader != raft::NO_NODE))
                .unwrap_or((RaftRole::Follower, false));
            let replica = self.replicas.get_mut(&p).expect("listed");
            if (role, leader_known) == (replica.role, replica.leader_known) {
                continue;
            }
            replica.leader_known = leader_known;
            if replica.role != role {
                // A new term of leadership exports from the replicated position.
                if let Some(queue) = replica.partition.exports_mut() {
                    queue.reset_sent();
                }
                replica.export_proposed = (0, std::time::Instant::now());
            }
            if replica.role == RaftRole::Leader && role != RaftRole::Leader {
                replica.partition.fail_pending(&format!(
                    "partition {p} lost its leadership; retry on the new leader"
                ));
                replica.continue_pending = false;
            }
            replica.role = role;
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
        for (p, replica) in &self.replicas {
            if !self.leader(*p).0 {
                continue;
            }
            for (key, i) in &replica.partition.engine().state().incidents {
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
        for p in self.replicas.keys().copied().collect::<Vec<_>>() {
            if self.transfer_to_best(u64::from(p)) {
                still += 1;
            }
        }
        still
    }

    /// Hands the leadership of `group` to its most caught-up, recently
    /// active follower; false when there is none.
    fn transfer_to_best(&mut self, group: u64) -> bool {
        let me = self.raft.id();
        let Some(progress) = self.raft.progress(group) else {
            return false;
        };
        let best = progress
            .iter()
            .filter(|(node, pr)| **node != me && pr.recent_active)
            .max_by_key(|(_, pr)| pr.match_index)
            .map(|(node, _)| *node);
        let Some(to) = best else {
            return false;
        };
        if self.raft.transfer_leadership(group, to).is_ok() {
            tracing::info!(
                partition = group,
                to = broker_node(to),
                "handing leadership of partition over"
            );
        }
        true
    }

    /// Drops the waiting requests whose clients gave up.
    pub fn forget_abandoned(&mut self) {
        for r in self.replicas.values_mut() {
            r.partition.forget_abandoned();
        }
    }

    /// Writes the hard state not yet stored and fails waiting requests
    /// (shutdown).
    pub async fn shut_down(&mut self) {
        for (p, replica) in self.replicas.iter_mut() {
            replica
                .partition
                .fail_pending("the broker is shutting down");
            if let Some(hs) = replica.unstored {
                if let Err(e) = store_hard_state(*p, replica, hs).await {
                    tracing::error!("{e}");
                }
            }
            self.view.set_partition(*p, Role::Inactive, false, false);
        }
    }
}

async fn store_hard_state(
    p: PartitionId,
    replica: &mut Replica,
    hs: raft::HardState,
) -> Result<(), ReplicaError> {
    let mut stored = replica.meta.get();
    stored.term = hs.term;
    stored.voted_for = hs.vote;
    stored.commit = hs.commit;
    replica
        .meta
        .store(stored)
        .await
        .map_err(|source| ReplicaError::Storage {
            partition: p,
            source,
        })?;
    replica.stored = hs;
    replica.unstored = None;
    replica.stored_at = std::time::Instant::now();
    Ok(())
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

async fn open_replica(
    options: &OpenOptions,
    p: PartitionId,
    reader: &mut MemLog,
    metrics: &Metrics,
    heartbeat: &dyn Fn(),
) -> Result<(Replica, GroupBootstrap), ReplicaError> {
    let dir: &Path = &options.dir.join(p.to_string());
    let err = |source| ReplicaError::Storage {
        partition: p,
        source,
    };
    let config = LogConfig {
        segment_size_bytes: options.segment_size_bytes,
        ..LogConfig::default()
    };
    let log = Log::open(DmaDisk, dir.join("log"), config)
        .await
        .map_err(err)?;
    if let Some(loss) = log.tail_loss() {
        let loss = storage::TailLoss {
            path: absolute(&loss.path),
            ..loss.clone()
        };
        tracing::warn!(
            partition = p,
            file = %loss.path.display(),
            offset = loss.offset,
            frames_dropped = loss.frames_dropped,
            last_index = loss.last_index,
            "partition {p}: recovery dropped a torn or damaged log tail: {loss}"
        );
        metrics
            .log_tail_frames_dropped
            .get_or_create(&PartitionLabel { partition: p })
            .inc_by(loss.frames_dropped);
    }
    let meta = MetaStore::open(DmaDisk, dir.join("meta"))
        .await
        .map_err(err)?;
    let snapshots = SnapshotStore::open(DmaDisk, dir.join("snapshots"), SNAPSHOTS_KEPT)
        .await
        .map_err(err)?;
    let mut partition = Partition::new(p, options.shape.partitions, options.node, options.boot_ms);
    partition
        .engine_mut()
        .set_time_zone(&options.time_zone)
        .map_err(|reason| ReplicaError::Corrupt {
            partition: p,
            reason: format!("engine.time_zone: {reason}"),
        })?;
    if let Some(export) = &options.exporter {
        partition.enable_export(export.max_lag_records);
    }
    let group = u64::from(p);
    let mut group_config = initial_config(&options.shape, p);
    let mut snapshot_index = 0;
    if let Some(m) = snapshots.latest().cloned() {
        let mut data = BytesMut::with_capacity(m.total_bytes as usize);
        for n in 0..m.chunk_lengths.len() {
            data.put_slice(
                &snapshots
                    .read_chunk(m.index, m.term, n)
                    .await
                    .map_err(err)?,
            );
        }
        let data = data.freeze();
        let (config, state) = decode_snapshot(p, &data)?;
        partition
            .restore(m.index, &state)
            .map_err(|reason| ReplicaError::Corrupt {
                partition: p,
                reason,
            })?;
        reader.install_snapshot(
            group,
            raft::Snapshot {
                meta: raft::SnapshotMeta {
                    index: m.index,
                    term: m.term,
                    config: config.clone(),
                    size_bytes: data.len() as u64,
                },
                data,
            },
        );
        group_config = config;
        snapshot_index = m.index;
    }
    let mut next = log.first_index().max(snapshot_index + 1);
    let last = log.last_index();
    while next <= last {
        let batch = log
            .read(next, last + 1, LOAD_BATCH_BYTES)
            .await
            .map_err(err)?;
        if batch.is_empty() {
            break;
        }
        let mut entries = Vec::with_capacity(batch.len());
        for stored in batch {
            let entry = raft_entry(p, stored)?;
            if entry.kind == EntryKind::ConfChange {
                if let Ok(c) = raft::decode_config(entry.data.clone()) {
                    group_config = c;
                }
            }
            entries.push(entry);
        }
        next = entries.last().expect("non-empty").index + 1;
        reader.append_owned(group, entries);
        heartbeat();
    }
    let stored = meta.get();
    let held = last.max(snapshot_index);
    let recovering_until = check_lost_committed(
        options,
        p,
        &absolute(&dir.join("log")),
        stored.commit,
        held,
        &group_config,
    )?;
    metrics
        .log_entries_recovering
        .get_or_create(&PartitionLabel { partition: p })
        .set(i64::try_from(recovering_until.saturating_sub(held)).unwrap_or(i64::MAX));
    let hs = raft::HardState {
        term: stored.term,
        vote: stored.voted_for,
        commit: stored.commit.min(held),
    };
    reader.set_hard_state(group, hs);
    let boot = GroupBootstrap {
        config: group_config,
        hard_state: hs,
        applied: snapshot_index,
        recovering_until,
    };
    let replica = Replica {
        partition,
        log,
        meta,
        snapshots,
        stored: hs,
        unstored: None,
        snapshot_index,
        snapshot_at: std::time::Instant::now(),
        role: RaftRole::Follower,
        leader_known: false,
        metrics_leader: raft::NO_NODE,
        continue_pending: false,
        export_proposed: (0, std::time::Instant::now()),
        export_written: (0, std::time::Instant::now()),
        recovering_until,
        stored_at: std::time::Instant::now(),
        stall: None,
        snapshot_retry_at: None,
        spare_retry_at: std::time::Instant::now(),
    };
    Ok((replica, boot))
}

/// `path` made absolute (for messages to operators), or as it is.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Compares the persisted commit index with the last index the replica
/// holds (`held`: log or snapshot). Entries below the commit index were
/// acknowledged: when some are gone (a torn or damaged log tail), a
/// replicated partition recovers them from its peers and does not vote until
/// then (returns the index to reach); a single replica refuses to start
/// unless `data.accept_data_loss` is set.
fn check_lost_committed(
    options: &OpenOptions,
    p: PartitionId,
    dir: &Path,
    commit_index: u64,
    held: u64,
    config: &GroupConfig,
) -> Result<u64, ReplicaError> {
    if commit_index <= held {
        return Ok(0);
    }
    let lost = commit_index - held;
    let peers = config
        .all_voters()
        .into_iter()
        .filter(|&n| n != raft_node(options.node))
        .count();
    let what = format!(
        "partition {p}: the log in {} ends at index {held} below the persisted commit index \
         {commit_index}: {lost} committed entries are lost",
        dir.display()
    );
    if options.accept_data_loss {
        tracing::error!(
            partition = p,
            "{what}; starting without them (data.accept_data_loss = true)"
        );
        return Ok(0);
    }
    if peers == 0 {
        return Err(ReplicaError::LostCommitted {
            partition: p,
            dir: dir.to_path_buf(),
            commit_index,
            last_index: held,
        });
    }
    tracing::warn!(
        partition = p,
        "{what} here; recovering them from the {peers} other replica(s), and not voting until \
         the log reaches index {commit_index}"
    );
    Ok(commit_index)
}

/// Writes `entries` into the log buffer (replacing what they conflict with)
/// and into Raft's reader.
async fn append_entries(
    p: PartitionId,
    replica: &mut Replica,
    reader: &mut MemLog,
    entries: &[Entry],
) -> Result<(), ReplicaError> {
    let err = |source| ReplicaError::Storage {
        partition: p,
        source,
    };
    let first = entries.first().expect("not empty");
    if first.index <= replica.log.last_index() {
        replica
            .log
            .truncate_suffix(first.index)
            .await
            .map_err(err)?;
    }
    let stored: Vec<storage::Entry> = entries
        .iter()
        .map(|e| storage::Entry {
            term: e.term,
            index: e.index,
            payload: storage_payload(e),
        })
        .collect();
    replica.log.append(&stored).map_err(err)?;
    reader.append(u64::from(p), entries);
    Ok(())
}

/// Retries a stall's writes: the snapshot, the entries queued behind it and
/// the buffered log. True once everything is durable; false on ENOSPC.
async fn resume(
    p: PartitionId,
    replica: &mut Replica,
    reader: &mut MemLog,
    stall: &mut Stall,
) -> Result<bool, ReplicaError> {
    if let Some(snapshot) = &stall.snapshot {
        match install_snapshot(p, replica, reader, snapshot).await {
            Ok(()) => {}
            Err(ReplicaError::Storage { source, .. }) if source.is_no_space() => return Ok(false),
            Err(e) => return Err(e),
        }
        stall.acks.push((snapshot.meta.index, snapshot.meta.term));
        stall.snapshot = None;
        let entries = std::mem::take(&mut stall.entries);
        if let Some(last) = entries.last() {
            stall.acks.push((last.index, last.term));
            append_entries(p, replica, reader, &entries).await?;
        }
    }
    match replica.log.sync().await {
        Ok(_) => Ok(true),
        Err(source) if source.is_no_space() => Ok(false),
        Err(source) => Err(ReplicaError::Storage {
            partition: p,
            source,
        }),
    }
}

async fn install_snapshot(
    p: PartitionId,
    replica: &mut Replica,
    reader: &mut MemLog,
    snapshot: &raft::Snapshot,
) -> Result<(), ReplicaError> {
    let err = |source| ReplicaError::Storage {
        partition: p,
        source,
    };
    let (_, state) = decode_snapshot(p, &snapshot.data)?;
    write_snapshot(
        replica,
        snapshot.meta.index,
        snapshot.meta.term,
        &snapshot.data,
    )
    .await
    .map_err(err)?;
    let index = snapshot.meta.index;
    if replica.log.last_index() > index && index + 1 >= replica.log.first_index() {
        replica.log.truncate_suffix(index + 1).await.map_err(err)?;
    }
    replica.log.compact_prefix(index).await.map_err(err)?;
    reader.install_snapshot(u64::from(p), snapshot.clone());
    replica
        .partition
        .restore(index, &state)
        .map_err(|reason| ReplicaError::Corrupt {
            partition: p,
            reason,
        })?;
    replica.snapshot_index = index;
    Ok(())
}

async fn write_snapshot(
    replica: &mut Replica,
    index: u64,
    term: u64,
    data: &[u8],
) -> Result<(), storage::Error> {
    let mut writer = replica.snapshots.begin(index, term).await?;
    let empty: &[u8] = &[];
    let chunks = data.chunks(SNAPSHOT_CHUNK_BYTES);
    let chunks: Box<dyn Iterator<Item = &[u8]>> = if data.is_empty() {
        Box::new(std::iter::once(empty))
    } else {
        Box::new(chunks)
    };
    for chunk in chunks {
        if let Err(e) = replica.snapshots.write_chunk(&mut writer, chunk).await {
            replica.snapshots.abort(writer).await;
            return Err(e);
        }
    }
    replica.snapshots.finish(writer, None).await?;
    Ok(())
}

/// Takes a snapshot of `p` and compacts its log; returns its size in bytes
/// (0 when there was nothing to take).
async fn take_snapshot(
    p: PartitionId,
    replica: &mut Replica,
    raft: &mut MultiRaft<MemLog>,
) -> Result<usize, ReplicaError> {
    let group = u64::from(p);
    let index = replica.partition.applied();
    let Some(term) = raft.reader().term(group, index) else {
        return Ok(0);
    };
    let Some(status) = raft.status(group) else {
        return Ok(0);
    };
    let data = encode_snapshot(&status.config, &replica.partition.snapshot());
    let err = |source| ReplicaError::Storage {
        partition: p,
        source,
    };
    write_snapshot(replica, index, term, &data)
        .await
        .map_err(err)?;
    let bytes = data.len();
    raft.reader_mut().compact(group, index, status.config, data);
    replica.log.compact_prefix(index).await.map_err(err)?;
    replica.snapshot_index = index;
    tracing::info!(partition = p, index, "snapshot taken, log compacted");
    Ok(bytes)
}
