//! One local partition replica as its shard holds it: the engine with its
//! replicated state, the durable stores (log, Raft metadata, snapshots) and
//! the client requests waiting for their answer.
//!
//! Owned by exactly one shard thread for the life of the broker.
//!
//! Replication model: the log carries commands, stamped by the leader with
//! the time, and every replica processes every committed command with the
//! same deterministic engine, so followers keep the same state as the leader
//! without the events being written. Follow-up work of a command beyond the
//! engine's step budget goes to a replicated queue that is drained by a
//! bounded number of steps after each applied entry (and by `Continue`
//! entries the leader appends while the queue is not empty), so a runaway
//! process cannot monopolise the partition and every replica drains it at the
//! same points of the log.
//!
//! A command whose processing panics is caught here and handed back from
//! [`Partition::apply`]; [`crate::isolation`] then rebuilds the state and
//! turns the command into a `PROCESSING_ERROR` rejection, the same on every
//! replica.
//!
//! Log entry payload (after the Raft kind byte, see [`crate::consensus`]):
//!
//! ```text
//! u8  kind        0 = command, 1 = continue, 2 = raw, 3 = exported
//! i64 timestamp   leader's clock, ms since the epoch (little endian)
//! ..  record      engine::Record::encode (commands only)
//! ```
//!
//! A raw entry (`gateway.raw_append_enabled`, for benchmarks) carries a u64
//! request id (little endian) and opaque bytes after the timestamp; the engine
//! never sees it, and it is answered with its index once committed. An
//! exported entry carries a u64 position: the records of every entry up to it
//! are exported (see [`crate::exporter`]).

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use engine::{Engine, Intent, JobPush, Record, RecordType, RecordValue};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::exporter::ExportQueue;
use crate::isolation::ProcessingFailure;
use crate::placement::PartitionId;
use crate::push_streams::StreamChange;
use crate::records;
use crate::shard::ReplySender;

/// Follow-up commands processed after each applied entry.
pub const MAX_FOLLOW_UPS_PER_ENTRY: usize = 256;
/// Follow-up commands the replicated queue may hold; past it the partition
/// refuses new commands that start work until it drains.
pub const MAX_QUEUED_FOLLOW_UPS: usize = 1 << 20;
/// Client requests of one partition waiting for their answer.
pub const MAX_PENDING_REQUESTS: usize = 1 << 16;
/// Version byte of the snapshot format (1: without the export queue).
const SNAPSHOT_VERSION: u8 = 2;

const KIND_COMMAND: u8 = 0;
const KIND_CONTINUE: u8 = 1;
const KIND_RAW: u8 = 2;
const KIND_EXPORTED: u8 = 3;
const KIND_CHECKPOINT: u8 = 4;
const KIND_STREAM: u8 = 5;

/// An application entry decoded from the log.
#[derive(Debug)]
pub enum AppEntry {
    /// A command to process.
    Command(Box<Record>),
    /// Nothing to process; drains the follow-up queue.
    Continue {
        /// Leader's time.
        timestamp_ms: i64,
    },
    /// The exporter wrote every record up to `position`.
    Exported {
        /// Raft index.
        position: u64,
    },
    /// A checkpoint of backup `backup_id`.
    Checkpoint {
        /// The backup.
        backup_id: u64,
        /// The request waiting for the answer (0: none).
        request_id: u64,
    },
    /// Opaque bytes appended for a benchmark; only answered.
    Raw {
        /// The request waiting for the answer (on the node that proposed it).
        request_id: u64,
    },
    /// A change of the job push streams.
    Stream {
        /// The request waiting for the answer (on the node that proposed it).
        request_id: u64,
        /// The change.
        entry: StreamEntry,
    },
}

/// A change of the job push streams as the log holds it: the change and the
/// caller's reach (the tenants asked for, the processes granted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// The change.
    pub change: StreamChange,
    /// The tenants whose jobs the stream takes; `None`: any.
    pub tenants: Option<Vec<String>>,
    /// The processes whose jobs the stream takes; `None`: any.
    pub processes: Option<Vec<String>>,
}

impl StreamEntry {
    /// The entry of a `JobStream` command (possibly on behalf of a caller).
    fn of(command: &PartitionCommand) -> Option<StreamEntry> {
        match command {
            PartitionCommand::JobStream(change) => Some(StreamEntry {
                change: change.clone(),
                tenants: None,
                processes: None,
            }),
            PartitionCommand::AsCaller {
                tenants,
                processes,
                command,
                ..
            } => StreamEntry::of(command).map(|inner| StreamEntry {
                tenants: tenants.clone().or(inner.tenants),
                processes: processes.clone().or(inner.processes),
                ..inner
            }),
            _ => None,
        }
    }

    /// Applies it to `engine`'s registry.
    fn apply(self, engine: &mut Engine) {
        match self.change {
            StreamChange::Add {
                stream_id,
                job_type,
                worker,
                timeout_ms,
                fetch_variables,
            } => {
                engine.add_job_stream(stream_id, &job_type, &worker, timeout_ms, fetch_variables);
                engine.restrict_job_stream(
                    stream_id,
                    self.tenants
                        .map(|list| list.iter().map(|t| engine::Tenant::new(t)).collect()),
                    self.processes
                        .map(|list| list.iter().map(|p| Arc::from(p.as_str())).collect()),
                );
            }
            StreamChange::Remove { stream_id } => engine.remove_job_stream(stream_id),
        }
    }
}

/// A log entry that does not decode.
#[derive(Debug, Error)]
#[error("partition {partition}: log entry {index} does not decode: {reason}")]
pub struct BadEntry {
    /// The partition.
    pub partition: PartitionId,
    /// Raft index.
    pub index: u64,
    /// What is wrong.
    pub reason: String,
}

/// Encodes a command entry.
pub fn encode_command(record: &Record) -> Bytes {
    let mut body = Vec::with_capacity(256);
    record.encode(&mut body);
    let mut out = BytesMut::with_capacity(9 + body.len());
    out.put_u8(KIND_COMMAND);
    out.put_i64_le(record.timestamp_ms);
    out.put_slice(&body);
    out.freeze()
}

/// Encodes an exported entry.
pub fn encode_exported(timestamp_ms: i64, position: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(17);
    out.put_u8(KIND_EXPORTED);
    out.put_i64_le(timestamp_ms);
    out.put_u64_le(position);
    out.freeze()
}

/// Encodes a continue entry.
pub fn encode_continue(timestamp_ms: i64) -> Bytes {
    let mut out = BytesMut::with_capacity(9);
    out.put_u8(KIND_CONTINUE);
    out.put_i64_le(timestamp_ms);
    out.freeze()
}

/// Decodes an application entry; `None` for the empty entry a new leader
/// appends.
pub fn decode_entry(
    partition: PartitionId,
    index: u64,
    data: &[u8],
) -> Result<Option<AppEntry>, BadEntry> {
    if data.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| BadEntry {
        partition,
        index,
        reason,
    };
    if data.len() < 9 {
        return Err(bad(format!(
            "{} bytes is shorter than the 9-byte header",
            data.len()
        )));
    }
    let timestamp_ms = i64::from_le_bytes(data[1..9].try_into().expect("8 bytes"));
    match data[0] {
        KIND_COMMAND => {
            let mut record = Record::decode(&data[9..]).map_err(|e| bad(e.to_string()))?;
            record.position = index as i64;
            record.timestamp_ms = timestamp_ms;
            Ok(Some(AppEntry::Command(Box::new(record))))
        }
        KIND_CONTINUE => Ok(Some(AppEntry::Continue { timestamp_ms })),
        KIND_EXPORTED if data.len() >= 17 => Ok(Some(AppEntry::Exported {
            position: u64::from_le_bytes(data[9..17].try_into().expect("8 bytes")),
        })),
        KIND_RAW if data.len() >= 17 => Ok(Some(AppEntry::Raw {
            request_id: u64::from_le_bytes(data[9..17].try_into().expect("8 bytes")),
        })),
        KIND_CHECKPOINT if data.len() >= 25 => Ok(Some(AppEntry::Checkpoint {
            backup_id: u64::from_le_bytes(data[9..17].try_into().expect("8 bytes")),
            request_id: u64::from_le_bytes(data[17..25].try_into().expect("8 bytes")),
        })),
        KIND_STREAM if data.len() >= 17 => Ok(Some(AppEntry::Stream {
            request_id: u64::from_le_bytes(data[9..17].try_into().expect("8 bytes")),
            entry: postcard::from_bytes(&data[17..])
                .map_err(|e| bad(format!("job stream entry: {e}")))?,
        })),
        KIND_CHECKPOINT => Err(bad(format!(
            "checkpoint entry of {} bytes is shorter than its 25 bytes",
            data.len()
        ))),
        KIND_RAW | KIND_EXPORTED | KIND_STREAM => Err(bad(format!(
            "entry of kind {} and {} bytes is shorter than its 17-byte header",
            data[0],
            data.len()
        ))),
        other => Err(bad(format!("unknown entry kind {other}"))),
    }
}

/// The job type of an event that makes a job activatable.
fn activatable_job_type(event: &Record) -> Option<&std::sync::Arc<str>> {
    match (&event.value, event.intent) {
        (
            RecordValue::Job(job),
            Intent::Created
            | Intent::Failed
            | Intent::TimedOut
            | Intent::RetriesUpdated
            | Intent::RecurredAfterBackoff
            | Intent::Yielded,
        ) => Some(&job.job_type),
        _ => None,
    }
}

struct Pending {
    /// The command's intent; `None` for a raw append.
    intent: Option<Intent>,
    reply: ReplySender,
    proposed_at: std::time::Instant,
}

/// A replica's state at a backup's checkpoint, for the backup store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointed {
    /// The backup.
    pub backup_id: u64,
    /// Raft index of the checkpoint entry.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// [`Partition::snapshot`] right after applying it.
    pub state: Vec<u8>,
}

/// What applying entries produced that the shard must act on.
#[derive(Debug, Default)]
pub struct Applied {
    /// Commands for other partitions (deployment distribution), to send when
    /// leading.
    pub distributions: Vec<(u32, Record)>,
    /// Seconds from proposal to answer of the requests answered (commit
    /// latency as the client sees it, without the gateway hop).
    pub answered_after_s: Vec<f64>,
    /// Seconds from each activated job's creation to its activation (on the
    /// node that asked for the activation).
    pub activated_after_s: Vec<f64>,
    /// Job types that got activatable jobs (created, failed with retries,
    /// timed out, back from back-off, yielded), repeated as they came.
    pub jobs_available: Vec<std::sync::Arc<str>>,
    /// What the engine did, for the metrics.
    pub counts: EngineCounts,
    /// Checkpoints of backups, with the state at each.
    pub checkpoints: Vec<Checkpointed>,
    /// Jobs activated for push streams, to deliver when leading.
    pub pushed_jobs: Vec<JobPush>,
}

/// What the engine did with the commands of one turn.
#[derive(Debug, Default)]
pub struct EngineCounts {
    /// Commands processed, by value type name.
    pub commands: Vec<(&'static str, u64)>,
    /// Rejections written, by rejection type name.
    pub rejections: Vec<(&'static str, u64)>,
    /// Process instances started (root and child).
    pub instances_created: u64,
    /// Process instances that completed.
    pub instances_completed: u64,
    /// Incidents raised.
    pub incidents_created: u64,
}

impl EngineCounts {
    fn add(list: &mut Vec<(&'static str, u64)>, name: &'static str) {
        match list.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => list.push((name, 1)),
        }
    }

    fn note(&mut self, record: &Record) {
        match record.record_type {
            RecordType::CommandRejection => {
                if let Some(r) = &record.rejection {
                    Self::add(&mut self.rejections, r.rejection_type.name());
                }
            }
            RecordType::Event => match (&record.value, record.intent) {
                (engine::RecordValue::ProcessInstance(v), Intent::ElementActivated)
                    if v.bpmn_element_type == engine::BpmnElementType::Process =>
                {
                    self.instances_created += 1
                }
                (engine::RecordValue::ProcessInstance(v), Intent::ElementCompleted)
                    if v.bpmn_element_type == engine::BpmnElementType::Process =>
                {
                    self.instances_completed += 1
                }
                (engine::RecordValue::Incident(_), Intent::Created) => self.incidents_created += 1,
                _ => {}
            },
            RecordType::Command => {}
        }
    }
}

/// See the module documentation.
pub struct Partition {
    id: PartitionId,
    engine: Engine,
    /// Last applied Raft index.
    applied: u64,
    /// Replicated queue of follow-up commands (part of the snapshot).
    follow_ups: VecDeque<Record>,
    /// Requests proposed by this node, by request id.
    pending: BTreeMap<u64, Pending>,
    next_request: u64,
    /// Records waiting for the exporter, when one is configured, and the
    /// most it may hold before new work is refused.
    exports: Option<(ExportQueue, usize)>,
    /// Commands whose processing failed, by (Raft index, ordinal within the
    /// entry: 0 for its command, then its follow-ups), with the rejection
    /// reason: rejected without processing when applied again (see
    /// [`crate::isolation`]).
    failed: BTreeMap<(u64, u32), String>,
    /// While rebuilding: commands before this (index, ordinal) were
    /// processed and answered before, so their outputs are not sent again.
    quiet_before: Option<(u64, u32)>,
    /// The users, roles or authorizations in the state may have changed since
    /// [`Partition::take_identity_changed`] last said so.
    identity_changed: bool,
    /// Test seam: panics after processing the commands it matches.
    #[cfg(test)]
    pub(crate) panic_after: Option<fn(&Record) -> bool>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("id", &self.id)
            .field("applied", &self.applied)
            .field("follow_ups", &self.follow_ups.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Partition {
    /// A partition with an empty engine; `node` and `boot_ms` make this
    /// process's request ids unique in the log.
    pub fn new(id: PartitionId, partitions: u32, node: u32, boot_ms: u64) -> Partition {
        Partition {
            id,
            engine: Engine::new(id, partitions),
            applied: 0,
            follow_ups: VecDeque::new(),
            pending: BTreeMap::new(),
            // 8 bits of node id, 56 bits from the boot time and a counter:
            // unique across the nodes and the restarts of a cluster.
            next_request: (u64::from(node & 0xff) << 56) | ((boot_ms << 16) & ((1 << 56) - 1)),
            exports: None,
            failed: BTreeMap::new(),
            quiet_before: None,
            identity_changed: false,
            #[cfg(test)]
            panic_after: None,
        }
    }

    /// Keeps the records this partition produces for an exporter, refusing
    /// new work while more than `max_lag_records` wait.
    pub fn enable_export(&mut self, max_lag_records: usize) {
        self.exports = Some((ExportQueue::default(), max_lag_records));
    }

    /// The export queue, when exporting.
    pub fn exports_mut(&mut self) -> Option<&mut ExportQueue> {
        self.exports.as_mut().map(|(q, _)| q)
    }

    /// The partition's id.
    pub fn id(&self) -> PartitionId {
        self.id
    }

    /// Last applied Raft index.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Whether follow-up work waits in the replicated queue.
    pub fn has_follow_ups(&self) -> bool {
        !self.follow_ups.is_empty()
    }

    /// The engine (read-only: state, due commands).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for the leader-local parts (due commands).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Turns a client command into the log entry to propose, remembering where
    /// its answer goes. Commands answered without the log (an activation
    /// with nothing to activate) are answered here and give `None`.
    pub fn prepare(
        &mut self,
        command: &PartitionCommand,
        now_ms: i64,
        reply: ReplySender,
    ) -> Option<Bytes> {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            let _ = reply.send(Err(CommandError::ResourceExhausted(format!(
                "{} refused: partition {} has {MAX_PENDING_REQUESTS} requests waiting for an answer",
                command.name(),
                self.id
            ))));
            return None;
        }
        if let PartitionCommand::RawAppend { payload } = command {
            let request = self.await_answer(None, reply);
            let mut out = BytesMut::with_capacity(17 + payload.len());
            out.put_u8(KIND_RAW);
            out.put_i64_le(now_ms);
            out.put_u64_le(request);
            out.put_slice(payload);
            return Some(out.freeze());
        }
        if let Some(entry) = StreamEntry::of(command) {
            let request = self.await_answer(None, reply);
            let mut out = BytesMut::with_capacity(64);
            out.put_u8(KIND_STREAM);
            out.put_i64_le(now_ms);
            out.put_u64_le(request);
            out.put_slice(&postcard::to_allocvec(&entry).expect("stream entries serialise"));
            return Some(out.freeze());
        }
        if let PartitionCommand::Checkpoint { backup_id } = command {
            let request = self.await_answer(None, reply);
            let mut out = BytesMut::with_capacity(25);
            out.put_u8(KIND_CHECKPOINT);
            out.put_i64_le(now_ms);
            out.put_u64_le(*backup_id);
            out.put_u64_le(request);
            return Some(out.freeze());
        }
        if let PartitionCommand::ActivateJobs { job_type, .. } = command {
            let any = self
                .engine
                .state()
                .activatable
                .get(job_type.as_str())
                .is_some_and(|keys| !keys.is_empty());
            if !any {
                let _ = reply.send(Ok(CommandReply::Jobs(Vec::new())));
                return None;
            }
        }
        if let Some((queue, max)) = &self.exports {
            if queue.lag_records() > *max && !command.drains_work() {
                let _ = reply.send(Err(CommandError::ResourceExhausted(format!(
                    "{} refused: partition {} has {} records waiting for the exporter \
                     (exporter.max_lag_records = {max}); retry later",
                    command.name(),
                    self.id,
                    queue.lag_records()
                ))));
                return None;
            }
        }
        if self.follow_ups.len() >= MAX_QUEUED_FOLLOW_UPS {
            let _ = reply.send(Err(CommandError::ResourceExhausted(format!(
                "{} refused: partition {} has {} follow-up steps queued; retry later",
                command.name(),
                self.id,
                self.follow_ups.len()
            ))));
            return None;
        }
        let mut record = match records::to_record(command) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(e));
                return None;
            }
        };
        record.request_id = Some(self.await_answer(Some(record.intent), reply));
        record.timestamp_ms = now_ms;
        Some(encode_command(&record))
    }

    /// Gives a request its id and remembers where its answer goes.
    fn await_answer(&mut self, intent: Option<Intent>, reply: ReplySender) -> u64 {
        self.next_request += 1;
        let request = self.next_request;
        self.pending.insert(
            request,
            Pending {
                intent,
                reply,
                proposed_at: std::time::Instant::now(),
            },
        );
        request
    }

    /// Fails every waiting request whose command was not proposed after all.
    pub fn abandon(&mut self, entry: &[u8], error: CommandError) {
        let request = match decode_entry(self.id, 0, entry) {
            Ok(Some(AppEntry::Command(record))) => record.request_id,
            Ok(Some(AppEntry::Raw { request_id }))
            | Ok(Some(AppEntry::Stream { request_id, .. }))
            | Ok(Some(AppEntry::Checkpoint { request_id, .. })) => Some(request_id),
            _ => None,
        };
        if let Some(p) = request.and_then(|r| self.pending.remove(&r)) {
            let _ = p.reply.send(Err(error));
        }
    }

    /// Drops the requests whose client gave up.
    pub fn forget_abandoned(&mut self) {
        self.pending.retain(|_, p| !p.reply.is_closed());
    }

    /// Fails every waiting request (leadership lost, shutting down). Their
    /// commands may still be committed by the next leader.
    pub fn fail_pending(&mut self, reason: &str) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let _ = p
                .reply
                .send(Err(CommandError::Unavailable(reason.to_string())));
        }
    }

    /// Applies one committed application entry at `index`. A command whose
    /// processing panics stops the entry: the state is then half changed and
    /// must be rebuilt with [`crate::isolation::recover`].
    pub fn apply(
        &mut self,
        index: u64,
        entry: Option<AppEntry>,
        out: &mut Applied,
    ) -> Result<(), ProcessingFailure> {
        assert!(
            index > self.applied,
            "partition {}: entry {index} applied after {}",
            self.id,
            self.applied
        );
        self.applied = index;
        let timestamp_ms = match entry {
            None => return Ok(()),
            Some(AppEntry::Continue { timestamp_ms }) => timestamp_ms,
            Some(AppEntry::Exported { position }) => {
                if let Some((queue, _)) = &mut self.exports {
                    queue.exported_up_to(position);
                }
                return Ok(());
            }
            Some(AppEntry::Checkpoint {
                backup_id,
                request_id,
            }) => {
                out.checkpoints.push(Checkpointed {
                    backup_id,
                    index,
                    term: 0,
                    state: self.snapshot(),
                });
                if let Some(p) = self.pending.remove(&request_id) {
                    let _ = p.reply.send(Ok(CommandReply::Key(index as i64)));
                }
                return Ok(());
            }
            Some(AppEntry::Stream { request_id, entry }) => {
                entry.apply(&mut self.engine);
                if let Some(p) = self.pending.remove(&request_id) {
                    let _ = p.reply.send(Ok(CommandReply::Done));
                }
                return Ok(());
            }
            Some(AppEntry::Raw { request_id }) => {
                if let Some(p) = self.pending.remove(&request_id) {
                    out.answered_after_s
                        .push(p.proposed_at.elapsed().as_secs_f64());
                    let _ = p.reply.send(Ok(CommandReply::Key(index as i64)));
                }
                return Ok(());
            }
            Some(AppEntry::Command(record)) => {
                let ts = record.timestamp_ms;
                self.process(index, 0, &record, out)?;
                ts
            }
        };
        for ordinal in 1..=MAX_FOLLOW_UPS_PER_ENTRY as u32 {
            let Some(mut command) = self.follow_ups.pop_front() else {
                break;
            };
            command.position = index as i64;
            command.timestamp_ms = timestamp_ms;
            self.process(index, ordinal, &command, out)?;
        }
        Ok(())
    }

    /// Processes one command, or rejects it when its processing failed
    /// before; a panic is caught and returned.
    fn process(
        &mut self,
        index: u64,
        ordinal: u32,
        command: &Record,
        out: &mut Applied,
    ) -> Result<(), ProcessingFailure> {
        let mut processed = match self.failed.get(&(index, ordinal)) {
            Some(reason) => self.engine.reject_failed(command, reason.clone()),
            None => {
                let engine = &mut self.engine;
                #[cfg(test)]
                let panic_after = self.panic_after;
                catch_unwind(AssertUnwindSafe(|| {
                    let processed = engine.process(command);
                    #[cfg(test)]
                    if panic_after.is_some_and(|matches| matches(command)) {
                        panic!("test seam: processing of a matching command panics");
                    }
                    processed
                }))
                .map_err(|panic| ProcessingFailure::new(index, ordinal, command, panic))?
            }
        };
        self.identity_changed |= processed.records.iter().any(|r| {
            r.record_type == RecordType::Event
                && matches!(
                    r.value_type,
                    engine::ValueType::User
                        | engine::ValueType::Role
                        | engine::ValueType::Authorization
                        | engine::ValueType::Group
                        | engine::ValueType::Tenant
                        | engine::ValueType::MappingRule
                )
        });
        if self.quiet_before.is_some_and(|at| (index, ordinal) < at) {
            // Rebuilding: only the replicated effects matter; the answers,
            // distributions and job signals went out the first time.
            for record in processed.records.drain(..) {
                if record.record_type == RecordType::Command {
                    self.follow_ups.push_back(record);
                } else if let Some((queue, _)) = &mut self.exports {
                    queue.push(index, record);
                }
            }
            self.engine.recycle(processed.records);
            return Ok(());
        }
        EngineCounts::add(&mut out.counts.commands, command.value_type.name());
        let pushed = |key: i64| processed.pushed_jobs.iter().any(|p| p.job.key == key);
        for record in processed.records.drain(..) {
            if record.record_type == RecordType::Command {
                self.follow_ups.push_back(record);
                continue;
            }
            out.counts.note(&record);
            // A job pushed in the step that made it activatable is taken.
            if let Some(job_type) = activatable_job_type(&record).filter(|_| !pushed(record.key)) {
                if out.jobs_available.last() != Some(job_type) {
                    out.jobs_available.push(job_type.clone());
                }
            }
            if let Some((queue, _)) = &mut self.exports {
                queue.push(index, record);
            }
        }
        self.engine.recycle(processed.records);
        for (request, response) in processed.responses {
            if let Some(p) = self.pending.remove(&request) {
                let Some(intent) = p.intent else {
                    continue;
                };
                if intent != Intent::CreateWithAwaitingResult {
                    out.answered_after_s
                        .push(p.proposed_at.elapsed().as_secs_f64());
                }
                if let Ok(engine::ResponseValue::JobBatch { jobs, .. }) = &response {
                    let now_ms = crate::view::unix_now_ms() as i64;
                    out.activated_after_s.extend(
                        jobs.iter()
                            .map(|j| (now_ms - j.created_ms).max(0) as f64 / 1000.0),
                    );
                }
                let _ = p.reply.send(records::to_reply(intent, response));
            }
        }
        out.distributions.extend(processed.distributions);
        out.pushed_jobs.extend(processed.pushed_jobs);
        Ok(())
    }

    /// Whether the users, roles or authorizations may have changed since the last call
    /// (a command changed them, or a snapshot was restored).
    pub fn take_identity_changed(&mut self) -> bool {
        std::mem::take(&mut self.identity_changed)
    }

    /// Remembers that the command at (`index`, `ordinal`) failed: applied
    /// again, it is rejected with `reason` without being processed.
    pub(crate) fn mark_failed(&mut self, index: u64, ordinal: u32, reason: String) {
        self.failed.insert((index, ordinal), reason);
    }

    /// The failed commands remembered, as (Raft index, ordinal).
    #[cfg(test)]
    pub(crate) fn failed_commands(&self) -> Vec<(u64, u32)> {
        self.failed.keys().copied().collect()
    }

    /// Forgets the failed commands at or below `index` (a snapshot covers
    /// them: no rebuild applies them again).
    pub(crate) fn forget_failed_up_to(&mut self, index: u64) {
        self.failed.retain(|&(i, _), _| i > index);
    }

    /// Replaces the replicated state with a snapshot taken at `index` (or,
    /// without one, the empty state) to apply the entries after it again,
    /// keeping what is not replicated: waiting requests, job push streams,
    /// the export hand-off position. The outputs of commands before
    /// `quiet_before` are not sent again until [`Partition::end_rebuild`].
    pub(crate) fn begin_rebuild(
        &mut self,
        snapshot: Option<(u64, &[u8])>,
        quiet_before: (u64, u32),
    ) -> Result<(), String> {
        let local = self.engine.take_leader_local();
        let sent = self.exports.as_ref().map(|(queue, _)| queue.sent());
        let restored = match snapshot {
            Some((index, data)) => self.restore(index, data),
            None => {
                let zone = self.engine.time_zone().to_string();
                self.engine = Engine::new(self.id, self.engine.partition_count());
                self.engine
                    .set_time_zone(&zone)
                    .expect("the zone of an engine is valid");
                self.follow_ups.clear();
                self.applied = 0;
                if let Some((queue, _)) = &mut self.exports {
                    *queue = ExportQueue::default();
                }
                Ok(())
            }
        };
        self.engine.set_leader_local(local);
        if let (Some(sent), Some((queue, _))) = (sent, &mut self.exports) {
            queue.rewind_sent(sent + 1);
        }
        self.quiet_before = Some(quiet_before);
        restored
    }

    /// Ends a rebuild: outputs are sent again.
    pub(crate) fn end_rebuild(&mut self) {
        self.quiet_before = None;
    }

    /// The replicated state as snapshot bytes (engine and follow-up queue).
    pub fn snapshot(&self) -> Vec<u8> {
        let engine = self.engine.snapshot();
        let mut out = Vec::with_capacity(engine.len() + 64);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&(self.follow_ups.len() as u64).to_le_bytes());
        let mut body = Vec::new();
        for record in &self.follow_ups {
            body.clear();
            record.encode(&mut body);
            out.extend_from_slice(&(body.len() as u64).to_le_bytes());
            out.extend_from_slice(&body);
        }
        match &self.exports {
            Some((queue, _)) => {
                out.push(1);
                queue.encode(&mut out);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&engine);
        out
    }

    /// Replaces the replicated state with a snapshot taken at `index`.
    pub fn restore(&mut self, index: u64, data: &[u8]) -> Result<(), String> {
        let mut rest = data;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err(format!(
                    "snapshot ends after {} bytes",
                    data.len() - rest.len()
                ));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let version = take(1)?[0];
        if version != 1 && version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {version}, expected 1 or {SNAPSHOT_VERSION}"
            ));
        }
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        if count > MAX_QUEUED_FOLLOW_UPS as u64 {
            return Err(format!("snapshot claims {count} queued follow-ups"));
        }
        let mut follow_ups = VecDeque::with_capacity(count as usize);
        for _ in 0..count {
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
            let record =
                Record::decode(take(len)?).map_err(|e| format!("queued follow-up: {e}"))?;
            follow_ups.push_back(record);
        }
        let exports = if version >= 2 && take(1)?[0] == 1 {
            let max = self.exports.as_ref().map_or(usize::MAX, |(_, m)| *m);
            Some(ExportQueue::decode(&mut rest, max.saturating_mul(2))?)
        } else {
            None
        };
        let engine = Engine::restore(rest).map_err(|e| e.to_string())?;
        if engine.partition_id() != self.id {
            return Err(format!(
                "snapshot of partition {} given to partition {}",
                engine.partition_id(),
                self.id
            ));
        }
        let zone = self.engine.time_zone().to_string();
        self.engine = engine;
        self.engine
            .set_time_zone(&zone)
            .expect("the zone of an engine is valid");
        self.follow_ups = follow_ups;
        self.applied = index;
        self.identity_changed = true;
        if let Some((queue, _)) = &mut self.exports {
            // A snapshot from a replica that does not export: nothing before
            // it can be exported any more.
            *queue = exports.unwrap_or_else(|| {
                let mut q = ExportQueue::default();
                q.exported_up_to(index);
                q
            });
        }
        Ok(())
    }
}
