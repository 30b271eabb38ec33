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
//! the hard state is written with the next term or vote change or at
//! shutdown, since Raft recovers the commit index from the leader.

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
use crate::exporter::ExportSink;
use crate::metrics::{Metrics, PartitionLabel};
use crate::partition::{decode_entry, encode_continue, Applied, Partition};
use crate::placement::{ClusterShape, PartitionId};
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

fn encode_snapshot(config: &GroupConfig, state: &[u8]) -> Bytes {
    let config = raft::encode_config(config);
    let mut out = BytesMut::with_capacity(4 + config.len() + state.len());
    out.put_u32_le(config.len() as u32);
    out.put_slice(&config);
    out.put_slice(state);
    out.freeze()
}

fn decode_snapshot(
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
    /// A `Continue` entry is proposed and not yet applied.
    continue_pending: bool,
    /// Highest exported position this leader proposed, and when.
    export_proposed: (u64, std::time::Instant),
    /// Highest position the sink acknowledged, and when it last moved.
    export_written: (u64, std::time::Instant),
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
}

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
}

/// How partitions export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The writer.
    pub sink: Arc<ExportSink>,
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
                open_replica(options, p, &mut reader, &|| view.heartbeat(shard)).await?;
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

    /// Proposes application entries on a partition this node leads.
    pub fn propose(
        &mut self,
        partition: PartitionId,
        entries: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        self.raft
            .propose(u64::from(partition), entries)
            .map(|_| ())
            .map_err(|e| {
                CommandError::Unavailable(format!(
                    "partition {partition} cannot take the command: {e}"
                ))
            })
    }

    /// Feeds a message from another node.
    pub fn step(&mut self, envelope: raft::Envelope) {
        self.raft.step_envelope(envelope);
    }

    /// One Raft tick; the leader also appends due commands (job time-outs,
    /// back-offs, timers, message expiry) and `Continue` entries for queued
    /// follow-up work. Returns the commands for other partitions that wait
    /// for an acknowledgement, to send again.
    pub fn tick(&mut self, now_ms: i64) -> Vec<(u32, engine::Record)> {
        self.raft.tick();
        let mut pending = Vec::new();
        let ids: Vec<PartitionId> = self.replicas.keys().copied().collect();
        for p in ids {
            let (leading, _) = self.leader(p);
            let replica = self.replicas.get_mut(&p).expect("listed");
            if !leading {
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
                    hand_to_sink(p, queue, &export.sink);
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
    /// may leave before the writes are durable.
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
            let replica = self
                .replicas
                .get_mut(&p)
                .expect("Raft only knows local partitions");
            if let Some(snapshot) = gr.snapshot {
                install_snapshot(p, replica, self.raft.reader_mut(), &snapshot).await?;
                acks.push((gr.group, snapshot.meta.index, snapshot.meta.term));
            }
            if let (Some(first), Some(last)) = (gr.entries.first(), gr.entries.last()) {
                let err = |source| ReplicaError::Storage {
                    partition: p,
                    source,
                };
                if first.index <= replica.log.last_index() {
                    replica
                        .log
                        .truncate_suffix(first.index)
                        .await
                        .map_err(err)?;
                }
                let stored: Vec<storage::Entry> = gr
                    .entries
                    .iter()
                    .map(|e| storage::Entry {
                        term: e.term,
                        index: e.index,
                        payload: storage_payload(e),
                    })
                    .collect();
                replica.log.append(&stored).map_err(err)?;
                self.raft.reader_mut().append(gr.group, &gr.entries);
                self.metrics
                    .appended_records
                    .get_or_create(&PartitionLabel { partition: p })
                    .inc_by(gr.entries.len() as u64);
                acks.push((gr.group, last.index, last.term));
                synced.push(p);
            }
            if let Some(hs) = gr.hard_state {
                self.raft.reader_mut().set_hard_state(gr.group, hs);
                if hs.term != replica.stored.term || hs.vote != replica.stored.vote {
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
            replica
                .log
                .sync()
                .await
                .map_err(|source| ReplicaError::Storage {
                    partition: p,
                    source,
                })?;
        }
        let mut turn = Turn {
            messages: ready.messages_after_persist,
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
                replica.partition.apply(e.index, app, &mut applied);
            }
            let applied_since = replica.partition.applied() - replica.snapshot_index;
            if applied_since >= SNAPSHOT_EVERY_ENTRIES
                || (applied_since > 0 && replica.snapshot_at.elapsed() >= self.snapshot_period)
            {
                take_snapshot(p, replica, &mut self.raft).await?;
                replica.snapshot_at = std::time::Instant::now();
            }
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
                    hand_to_sink(p, queue, &export.sink);
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

    fn publish_roles(&mut self) {
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
        let me = self.raft.id();
        let mut still = 0;
        for p in self.replicas.keys().copied().collect::<Vec<_>>() {
            let group = u64::from(p);
            let Some(progress) = self.raft.progress(group) else {
                continue;
            };
            let best = progress
                .iter()
                .filter(|(node, pr)| **node != me && pr.recent_active)
                .max_by_key(|(_, pr)| pr.match_index)
                .map(|(node, _)| *node);
            if let Some(to) = best {
                still += 1;
                if self.raft.transfer_leadership(group, to).is_ok() {
                    tracing::info!(
                        partition = p,
                        to = broker_node(to),
                        "handing leadership of partition over"
                    );
                }
            }
        }
        still
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
    Ok(())
}

/// Hands the records not yet given to the sink (leader).
fn hand_to_sink(p: PartitionId, queue: &mut crate::exporter::ExportQueue, sink: &ExportSink) {
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
    let meta = MetaStore::open(DmaDisk, dir.join("meta"))
        .await
        .map_err(err)?;
    let snapshots = SnapshotStore::open(DmaDisk, dir.join("snapshots"), SNAPSHOTS_KEPT)
        .await
        .map_err(err)?;
    let mut partition = Partition::new(p, options.shape.partitions, options.node, options.boot_ms);
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
    let hs = raft::HardState {
        term: stored.term,
        vote: stored.voted_for,
        commit: stored.commit.min(last).max(snapshot_index),
    };
    reader.set_hard_state(group, hs);
    let boot = GroupBootstrap {
        config: group_config,
        hard_state: hs,
        applied: snapshot_index,
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
        continue_pending: false,
        export_proposed: (0, std::time::Instant::now()),
        export_written: (0, std::time::Instant::now()),
    };
    Ok((replica, boot))
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
    for chunk in data.chunks(SNAPSHOT_CHUNK_BYTES) {
        replica.snapshots.write_chunk(&mut writer, chunk).await?;
    }
    if data.is_empty() {
        replica.snapshots.write_chunk(&mut writer, &[]).await?;
    }
    replica.snapshots.finish(writer, None).await?;
    Ok(())
}

async fn take_snapshot(
    p: PartitionId,
    replica: &mut Replica,
    raft: &mut MultiRaft<MemLog>,
) -> Result<(), ReplicaError> {
    let group = u64::from(p);
    let index = replica.partition.applied();
    let Some(term) = raft.reader().term(group, index) else {
        return Ok(());
    };
    let Some(status) = raft.status(group) else {
        return Ok(());
    };
    let data = encode_snapshot(&status.config, &replica.partition.snapshot());
    let err = |source| ReplicaError::Storage {
        partition: p,
        source,
    };
    write_snapshot(replica, index, term, &data)
        .await
        .map_err(err)?;
    raft.reader_mut().compact(group, index, status.config, data);
    replica.log.compact_prefix(index).await.map_err(err)?;
    replica.snapshot_index = index;
    tracing::info!(partition = p, index, "snapshot taken, log compacted");
    Ok(())
}
