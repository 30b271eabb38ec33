//! Shards: one glommio `LocalExecutor` per core, each on its own thread, each
//! owning the partitions `p` with `p mod shards == shard` (see
//! [`crate::consensus`] for what a shard holds per partition).
//!
//! The tokio threads (gateway, transport) talk to a shard only through its
//! bounded request channel carrying owned commands, and get answers on oneshot
//! channels; shards reach each other the same way (deployment distribution).
//! A shard loop turns as follows: take up to `MAX_REQUESTS_PER_TICK`
//! requests and propose them (one batch per partition), tick Raft when a
//! Raft tick is due, run every ready (one write and one `fdatasync` per log
//! for all the commands taken: group commit), answer the commands applied,
//! publish a heartbeat, then sleep until the next request or tick. Writes
//! stalled by a full disk are retried at the start of a turn, and what each
//! partition admits (see [`crate::space`]) is published as its health.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{encode_envelope, Forwarder};
use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::consensus::{broker_node, OpenOptions, ShardReplicas};
use crate::metrics::Metrics;
use crate::partition::encode_command;
use crate::placement::{shard_of, PartitionId};
use crate::space::{self, Admission};
use crate::view::{unix_now_ms, BrokerView};

/// Requests queued per shard before the gateway is told to back off.
pub const MAX_QUEUED_REQUESTS: usize = 4096;
/// Requests a shard takes per turn, so that a burst cannot starve the tick.
pub const MAX_REQUESTS_PER_TICK: usize = 1024;
/// How often a shard checks the free space of the data directory.
pub const DISK_CHECK_INTERVAL_MS: u64 = 250;
/// Longest a stopping shard waits for its partitions' leadership to move.
pub const MAX_HAND_OVER_MS: u64 = 2_000;
/// How often a shard drops the requests whose clients gave up.
const SWEEP_INTERVAL_MS: u64 = 1_000;

/// A shard could not be started.
#[derive(Debug, Error)]
pub enum ShardError {
    /// The glommio executor could not be created (often: locked memory), or
    /// a partition could not be opened.
    #[error("cannot start shard {shard}: {message}")]
    Start {
        /// The shard.
        shard: usize,
        /// What failed.
        message: String,
    },
    /// The shard thread could not be spawned.
    #[error("cannot spawn the thread of shard {shard}: {source}")]
    Thread {
        /// The shard.
        shard: usize,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The answer channel of one command.
pub type ReplySender = oneshot::Sender<Result<CommandReply, CommandError>>;

/// What the tokio side (or another shard) sends a shard.
#[derive(Debug)]
pub enum ShardRequest {
    /// A command for one of the shard's partitions.
    Command {
        /// The partition.
        partition: PartitionId,
        /// The command.
        command: PartitionCommand,
        /// Where the answer goes.
        reply: ReplySender,
    },
    /// An engine command from another partition (deployment distribution).
    Internal {
        /// The partition.
        partition: PartitionId,
        /// The command.
        record: Box<engine::Record>,
        /// It came from another node: a replica that does not lead drops it
        /// instead of passing it on again.
        forwarded: bool,
    },
    /// Raft messages from another node for this shard's partitions.
    Raft(raft::Envelope),
    /// The open incidents of the partitions this node leads.
    Incidents(oneshot::Sender<Vec<serde_json::Value>>),
    /// A step of a cluster change on one of the shard's partitions.
    Membership {
        /// The partition.
        partition: PartitionId,
        /// What to do.
        request: MembershipRequest,
    },
    /// Wakes the loop (shutdown).
    Wake,
}

/// A step of a cluster change on one partition replica (see
/// [`crate::membership`]).
#[derive(Debug)]
pub enum MembershipRequest {
    /// Force the replica to these voters (broker ids); false when the
    /// partition is not open here.
    Force {
        /// The voters.
        voters: BTreeSet<u32>,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
    /// Propose these voters (broker id to priority) as the leader.
    Propose {
        /// The voters and their priorities.
        voters: BTreeMap<u32, u32>,
        /// The answer: why not, if refused.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Propose these learners (broker ids) as the leader.
    Learners {
        /// The learners.
        learners: BTreeSet<u32>,
        /// The answer: why not, if refused.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Open a replica of the partition here (joining its group, or given
    /// to this broker by the cluster configuration); nothing if open.
    Join {
        /// Where the group stood when this broker joined it, from its
        /// leader: for a replica that joins empty (see
        /// [`replica::JoinFence`]); `None` for one the configuration gives
        /// this broker from the start.
        fence: Option<replica::JoinFence>,
        /// The answer: why not, if it could not be opened.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Close the replica and delete its data: it left its group.
    Leave {
        /// The answer: why not, if it could not be deleted.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Where the replica stands; `None` when the partition is not open here.
    Status {
        /// The answer.
        reply: oneshot::Sender<Option<crate::consensus::ReplicaMembership>>,
    },
}

/// How shards are laid out.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// Number of shards.
    pub shards: usize,
    /// Pin shard `i` to the `i`-th online CPU.
    pub pin: bool,
    /// Longest sleep of a shard loop.
    pub tick: Duration,
    /// Period of a Raft tick.
    pub raft_tick: Duration,
    /// Memory each executor registers with io_uring.
    pub io_memory_bytes: usize,
    /// How partitions are opened.
    pub open: OpenOptions,
    /// The data directory, watched for free space.
    pub data_dir: PathBuf,
    /// Below this much free space, new work is refused (see [`crate::space`]).
    pub min_free_space_bytes: u64,
    /// Traffic to other nodes; `None` for a single node.
    pub forwarder: Option<Arc<Forwarder>>,
    /// Prometheus metrics the shards update.
    pub metrics: Arc<Metrics>,
    /// Wake-ups for the gateway's waiting activations.
    pub job_signals: Arc<crate::job_signals::JobSignals>,
    /// The job push streams open on this node.
    pub push_streams: Arc<crate::push_streams::PushStreams>,
    /// The backup store, when `backup.directory` is set.
    pub backups: Option<Arc<crate::backup::BackupStore>>,
}

/// The running shards. Owned by the broker's main thread.
#[derive(Debug)]
pub struct Shards {
    senders: Vec<mpsc::Sender<ShardRequest>>,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

/// Shards still opening their partitions: the answer of each shard once its
/// partitions are open (or could not be). Owned by the broker's start-up.
#[derive(Debug)]
pub struct Opening {
    started: Vec<(usize, std::sync::mpsc::Receiver<Result<(), String>>)>,
}

impl Opening {
    /// Blocks until every shard has opened and recovered its partitions; the
    /// first shard that could not is the error (the caller shuts the shards
    /// down).
    pub fn wait(self) -> Result<(), ShardError> {
        for (shard, rx) in self.started {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(ShardError::Start { shard, message }),
                Err(_) => {
                    return Err(ShardError::Start {
                        shard,
                        message: "the shard thread exited during start-up".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

impl Shards {
    /// Starts `options.shards` executors holding `partitions`. Returns at once:
    /// each executor opens and recovers its partitions on its own thread, and
    /// [`Opening::wait`] waits for them. Requests sent meanwhile queue up.
    pub fn start(
        options: &ShardOptions,
        partitions: &[PartitionId],
        view: Arc<BrokerView>,
    ) -> Result<(Shards, Opening), ShardError> {
        assert!(options.shards > 0);
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = online_cpus();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..options.shards)
            .map(|_| mpsc::channel(MAX_QUEUED_REQUESTS))
            .unzip();
        let mut threads = Vec::with_capacity(options.shards);
        let mut started = Vec::with_capacity(options.shards);
        for (shard, rx) in receivers.into_iter().enumerate() {
            let owned: Vec<PartitionId> = partitions
                .iter()
                .copied()
                .filter(|p| shard_of(*p, options.shards) == shard)
                .collect();
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let placement = if options.pin && !cpus.is_empty() {
                Placement::Fixed(cpus[shard % cpus.len()])
            } else {
                Placement::Unbound
            };
            let builder = LocalExecutorBuilder::new(placement)
                .name(&format!("shard-{shard}"))
                .io_memory(options.io_memory_bytes);
            let ctx = ShardContext {
                shard,
                owned,
                requests: rx,
                peers: senders.clone(),
                view: Arc::clone(&view),
                stop: Arc::clone(&stop),
                options: options.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("shard-{shard}"))
                .spawn(move || {
                    let executor = match builder.make() {
                        Ok(executor) => executor,
                        Err(e) => {
                            let _ = started_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    executor.run(shard_loop(ctx, started_tx));
                })
                .map_err(|source| ShardError::Thread { shard, source })?;
            threads.push(thread);
            started.push((shard, started_rx));
        }
        let shards = Shards {
            senders,
            threads: std::sync::Mutex::new(threads),
            stop,
        };
        Ok((shards, Opening { started }))
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether there are no shards (never, once started).
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Queues a command for `partition` on its shard, or refuses it when the
    /// shard's queue is full.
    pub fn submit(
        &self,
        partition: PartitionId,
        command: PartitionCommand,
    ) -> Result<oneshot::Receiver<Result<CommandReply, CommandError>>, CommandError> {
        let (reply, answer) = oneshot::channel();
        let shard = shard_of(partition, self.senders.len());
        let request = ShardRequest::Command {
            partition,
            command,
            reply,
        };
        match self.senders[shard].try_send(request) {
            Ok(()) => Ok(answer),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(CommandError::ResourceExhausted(format!(
                "shard {shard} of partition {partition} has {MAX_QUEUED_REQUESTS} requests queued"
            )))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CommandError::Unavailable(format!(
                "shard {shard} of partition {partition} has stopped"
            ))),
        }
    }

    /// Hands a request to the shard of `partition` without waiting; a full
    /// queue drops it (the sender retries: Raft retransmits).
    pub fn try_send(&self, partition: PartitionId, request: ShardRequest) -> bool {
        let shard = shard_of(partition, self.senders.len());
        self.senders[shard].try_send(request).is_ok()
    }

    /// Hands a cluster-change step for `partition` to its shard; false when
    /// the shard's queue is full or it stopped (the caller retries).
    pub fn membership(&self, partition: PartitionId, request: MembershipRequest) -> bool {
        self.try_send(partition, ShardRequest::Membership { partition, request })
    }

    /// The open incidents of the partitions this node leads, from every shard.
    pub async fn incidents(&self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        for sender in &self.senders {
            let (reply, answer) = oneshot::channel();
            if sender.try_send(ShardRequest::Incidents(reply)).is_ok() {
                if let Ok(Ok(list)) = tokio::time::timeout(Duration::from_secs(5), answer).await {
                    all.extend(list);
                }
            }
        }
        all
    }

    /// Stops every shard loop (each flushes and fails its waiting requests)
    /// and waits for the threads to exit.
    pub fn shut_down(&self) {
        self.stop.store(true, Ordering::Release);
        for sender in &self.senders {
            // Wakes a sleeping loop; a full queue wakes it anyway.
            let _ = sender.try_send(ShardRequest::Wake);
        }
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .expect("thread list lock is never poisoned"),
        );
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
    }
}

fn online_cpus() -> Vec<usize> {
    match glommio::CpuSet::online() {
        Ok(set) => {
            let mut cpus: Vec<usize> = set.into_iter().map(|l| l.cpu).collect();
            cpus.sort_unstable();
            cpus
        }
        Err(_) => Vec::new(),
    }
}

struct ShardContext {
    shard: usize,
    owned: Vec<PartitionId>,
    requests: mpsc::Receiver<ShardRequest>,
    peers: Vec<mpsc::Sender<ShardRequest>>,
    view: Arc<BrokerView>,
    stop: Arc<AtomicBool>,
    options: ShardOptions,
}

enum Wake {
    Request(Option<ShardRequest>),
    Tick,
}

/// Free bytes of the file system holding `dir`.
pub fn free_space_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte")
    })?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

async fn shard_loop(mut ctx: ShardContext, started: std::sync::mpsc::Sender<Result<(), String>>) {
    let shard = ctx.shard;
    // Opening turns the loop's heartbeat as it goes: `/health` answers
    // healthy while the partitions recover.
    ctx.view.heartbeat(shard);
    let mut replicas = match ShardReplicas::open(
        &ctx.options.open,
        shard,
        &ctx.owned,
        Arc::clone(&ctx.view),
        Arc::clone(&ctx.options.metrics),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return;
        }
    };
    let _ = started.send(Ok(()));
    drop(started);
    let mut pending: Option<ShardRequest> = None;
    let start = Instant::now();
    let mut next_raft_tick = start;
    let mut next_disk_check = start;
    let mut next_sweep = start;
    let mut guard = Admission::Open;
    let mut published: BTreeMap<PartitionId, Option<String>> = BTreeMap::new();
    let mut failed: Option<String> = None;
    let mut hand_over_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= next_disk_check {
            let dir = &ctx.options.data_dir;
            let free = free_space_bytes(dir);
            if let Ok(bytes) = &free {
                ctx.options
                    .metrics
                    .replication
                    .disk_free_bytes
                    .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
            }
            guard = space::guard(dir, free, ctx.options.min_free_space_bytes);
            next_disk_check = now + Duration::from_millis(DISK_CHECK_INTERVAL_MS);
        }
        if failed.is_none() {
            match replicas.retry_space(Instant::now()).await {
                Ok(released) => send_messages(ctx.options.forwarder.as_deref(), released),
                Err(e) => failed = Some(stop_partitions(&ctx, &replicas, &e)),
            }
        }
        let now_ms = unix_now_ms() as i64;
        let mut proposals: BTreeMap<PartitionId, Vec<Bytes>> = BTreeMap::new();
        let mut taken = 0;
        while taken < MAX_REQUESTS_PER_TICK {
            let request = match pending.take() {
                Some(r) => r,
                None => match ctx.requests.try_recv() {
                    Ok(r) => r,
                    Err(_) => break,
                },
            };
            taken += 1;
            let Some(request) = open_or_close(&ctx, &mut replicas, request, &mut proposals).await
            else {
                continue;
            };
            take_request(
                &mut replicas,
                ctx.options.forwarder.as_deref(),
                request,
                now_ms,
                Refusals {
                    failed: failed.as_deref(),
                    guard: &guard,
                },
                &mut proposals,
            );
        }
        for (p, entries) in proposals {
            if let Err(e) = replicas.propose(p, entries.clone()) {
                let partition = replicas
                    .partition_mut(p)
                    .expect("proposed on a local partition");
                for entry in &entries {
                    partition.abandon(entry, e.clone());
                }
            }
        }
        if Instant::now() >= next_raft_tick {
            if let Some(forwarder) = &ctx.options.forwarder {
                let transport = forwarder.handle();
                replicas.set_unreachable(transport.peers().filter(|p| !transport.is_connected(*p)));
            }
            for (target, record) in replicas.tick(now_ms, Instant::now()) {
                route_internal(&ctx, target, record);
            }
            next_raft_tick += ctx.options.raft_tick;
            if next_raft_tick < Instant::now() {
                next_raft_tick = Instant::now() + ctx.options.raft_tick;
            }
        }
        if Instant::now() >= next_sweep {
            replicas.forget_abandoned();
            next_sweep = Instant::now() + Duration::from_millis(SWEEP_INTERVAL_MS);
        }
        while failed.is_none() && replicas.has_ready() {
            let forwarder = ctx.options.forwarder.as_deref();
            let mut send = |messages: Vec<raft::Envelope>| send_messages(forwarder, messages);
            match replicas.run_ready(&mut send, Instant::now()).await {
                Ok(turn) => {
                    send_messages(forwarder, turn.messages);
                    for (target, record) in turn.distributions {
                        route_internal(&ctx, target, record);
                    }
                    for (partition, types) in turn.jobs_available {
                        signal_jobs(&ctx, partition, &types);
                    }
                    for (partition, push) in turn.pushed_jobs {
                        push_job(&ctx, partition, push);
                    }
                    if let Some(store) = &ctx.options.backups {
                        for (partition, checkpoint) in turn.checkpoints {
                            store.write(partition, checkpoint);
                        }
                    }
                }
                Err(e) => failed = Some(stop_partitions(&ctx, &replicas, &e)),
            }
        }
        publish_health(&ctx, &replicas, &guard, failed.as_deref(), &mut published);
        ctx.view.heartbeat(shard);
        if ctx.stop.load(Ordering::Acquire) {
            // Hand leadership over before leaving, so the cluster does not
            // wait an election timeout; bounded by MAX_HAND_OVER_MS.
            let deadline = *hand_over_until
                .get_or_insert_with(|| Instant::now() + Duration::from_millis(MAX_HAND_OVER_MS));
            if failed.is_some() || Instant::now() >= deadline || replicas.hand_over() == 0 {
                break;
            }
        }
        let wait = if hand_over_until.is_some() {
            Duration::from_millis(5)
        } else {
            next_raft_tick
                .saturating_duration_since(Instant::now())
                .min(ctx.options.tick.max(Duration::from_millis(1)) * 100)
        };
        let woke =
            futures_lite::future::or(async { Wake::Request(ctx.requests.recv().await) }, async {
                glommio::timer::sleep(wait).await;
                Wake::Tick
            })
            .await;
        if let Wake::Request(Some(request)) = woke {
            pending = Some(request);
        }
    }
    while let Ok(request) = ctx.requests.try_recv() {
        if let ShardRequest::Command { command, reply, .. } = request {
            let _ = reply.send(Err(CommandError::Unavailable(format!(
                "{} not processed: the broker is shutting down",
                command.name()
            ))));
        }
    }
    replicas.shut_down().await;
}

/// Carries out a request that opens or closes a partition replica (a
/// cluster change, see [`crate::membership`]); any other request is given
/// back.
async fn open_or_close(
    ctx: &ShardContext,
    replicas: &mut ShardReplicas,
    request: ShardRequest,
    proposals: &mut BTreeMap<PartitionId, Vec<Bytes>>,
) -> Option<ShardRequest> {
    let ShardRequest::Membership { partition, request } = request else {
        return Some(request);
    };
    match request {
        MembershipRequest::Join { fence, reply } => {
            let shard = ctx.shard;
            let heartbeat = || ctx.view.heartbeat(shard);
            let result = replicas
                .join(&ctx.options.open, partition, fence, &heartbeat)
                .await
                .map_err(|e| format!("cannot open partition {partition}: {e}"));
            if let Err(why) = &result {
                tracing::error!(partition, "{why}");
            }
            let _ = reply.send(result);
            None
        }
        MembershipRequest::Leave { reply } => {
            // Commands taken this turn for it go with its replica.
            proposals.remove(&partition);
            let result = replicas
                .leave(partition)
                .await
                .map(|_| ())
                .map_err(|e| format!("cannot delete partition {partition}: {e}"));
            if let Err(why) = &result {
                tracing::error!(partition, "{why}");
            }
            let _ = reply.send(result);
            None
        }
        request => Some(ShardRequest::Membership { partition, request }),
    }
}

/// A failed write or sync is never retried: the shard's partitions stop
/// serving and say why. Returns the reason given to refused commands.
fn stop_partitions(
    ctx: &ShardContext,
    replicas: &ShardReplicas,
    error: &crate::consensus::ReplicaError,
) -> String {
    tracing::error!("shard {}: {error}; its partitions stop serving", ctx.shard);
    for p in replicas.partitions() {
        ctx.view
            .set_partition(p, crate::view::Role::Inactive, true, false);
    }
    format!("storage failed: {error}")
}

/// Publishes each partition's health problem (what it admits, or its
/// failure) to the view when it changed.
fn publish_health(
    ctx: &ShardContext,
    replicas: &ShardReplicas,
    guard: &Admission,
    failed: Option<&str>,
    published: &mut BTreeMap<PartitionId, Option<String>>,
) {
    for p in replicas.partitions() {
        let problem = match failed {
            Some(reason) => Some(reason.to_string()),
            None => guard.clone().and(replicas.admission(p)).health_problem(),
        };
        if published.get(&p) != Some(&problem) {
            if let Some(why) = &problem {
                tracing::warn!(partition = p, "partition {p} degraded: {why}");
            } else if published.contains_key(&p) {
                tracing::info!(partition = p, "partition {p} healthy again");
            }
            ctx.view.set_problem(p, problem.clone());
            published.insert(p, problem);
        }
    }
}

/// Why commands are refused on this shard, besides each partition's own
/// storage.
struct Refusals<'a> {
    /// The shard's storage failed.
    failed: Option<&'a str>,
    /// The free-space guard's verdict.
    guard: &'a Admission,
}

fn take_request(
    replicas: &mut ShardReplicas,
    forwarder: Option<&Forwarder>,
    request: ShardRequest,
    now_ms: i64,
    refusals: Refusals<'_>,
    proposals: &mut BTreeMap<PartitionId, Vec<Bytes>>,
) {
    match request {
        ShardRequest::Command {
            partition,
            command,
            reply,
        } => {
            let admission = refusals.guard.clone().and(replicas.admission(partition));
            let refusal = refusals.failed.or(admission.refusal(&command));
            if let Some(reason) = refusal {
                let _ = reply.send(Err(CommandError::ResourceExhausted(format!(
                    "{} refused by partition {partition}: {reason}",
                    command.name()
                ))));
                return;
            }
            let (leading, leader) = replicas.leader(partition);
            if !leading {
                let _ = reply.send(Err(CommandError::NotLeader { partition, leader }));
                return;
            }
            let Some(p) = replicas.partition_mut(partition) else {
                let _ = reply.send(Err(CommandError::Unavailable(format!(
                    "partition {partition} is not held by this shard"
                ))));
                return;
            };
            if let Some(entry) = p.prepare(&command, now_ms, reply) {
                proposals.entry(partition).or_default().push(entry);
            }
        }
        ShardRequest::Internal {
            partition,
            mut record,
            forwarded,
        } => {
            let (leading, leader) = replicas.leader(partition);
            if !leading {
                match (leader, forwarder, forwarded) {
                    (Some(node), Some(f), false) => f.send_internal(node, partition, &record),
                    _ => tracing::warn!(
                        partition,
                        "a distributed command arrived at a replica that does not lead; dropped"
                    ),
                }
                return;
            }
            record.timestamp_ms = now_ms;
            proposals
                .entry(partition)
                .or_default()
                .push(encode_command(&record));
        }
        ShardRequest::Raft(envelope) => replicas.step(envelope),
        ShardRequest::Incidents(reply) => {
            let _ = reply.send(replicas.incidents());
        }
        ShardRequest::Membership { partition, request } => match request {
            MembershipRequest::Force { voters, reply } => {
                let _ = reply.send(replicas.force_voters(partition, &voters));
            }
            MembershipRequest::Propose { voters, reply } => {
                let _ = reply.send(replicas.propose_voters(partition, &voters));
            }
            MembershipRequest::Learners { learners, reply } => {
                let _ = reply.send(replicas.propose_learners(partition, &learners));
            }
            MembershipRequest::Status { reply } => {
                let _ = reply.send(replicas.membership(partition));
            }
            MembershipRequest::Join { .. } | MembershipRequest::Leave { .. } => {
                unreachable!("opened or closed before")
            }
        },
        ShardRequest::Wake => {}
    }
}

fn route_internal(ctx: &ShardContext, target: u32, record: engine::Record) {
    let open = &ctx.options.open;
    let replicas = open.members.replica_nodes(target);
    if !replicas.contains(&open.node) {
        // Every replica gets it; only the leader appends it.
        if let Some(forwarder) = &ctx.options.forwarder {
            for node in replicas {
                forwarder.send_internal(node, target, &record);
            }
        }
        return;
    }
    let peers = &ctx.peers;
    let shard = shard_of(target, peers.len());
    if let Err(e) = peers[shard].try_send(ShardRequest::Internal {
        partition: target,
        record: Box::new(record),
        forwarded: false,
    }) {
        tracing::error!(
            partition = target,
            "cannot hand a distributed command to shard {shard}: {e}"
        );
    }
}

/// Wakes the activations waiting for `types`, here and on the other nodes.
fn signal_jobs(ctx: &ShardContext, partition: PartitionId, types: &[Arc<str>]) {
    for t in types {
        ctx.options.job_signals.signal(t, partition);
    }
    if let Some(forwarder) = &ctx.options.forwarder {
        let transport = forwarder.handle();
        for node in transport.peers().filter(|n| transport.is_connected(*n)) {
            forwarder.send_jobs_available(node, partition, types);
        }
    }
}

/// Delivers a job pushed to a stream: to the stream here, or to the node that
/// owns it; a job that cannot go is given back (see [`crate::push_streams`]).
fn push_job(ctx: &ShardContext, partition: PartitionId, push: engine::JobPush) {
    let streams = &ctx.options.push_streams;
    let owner = crate::push_streams::owner(push.stream_id);
    let job = crate::records::activated_job(push.job);
    if owner == streams.node() {
        return streams.deliver(partition, push.stream_id, job);
    }
    // The transport queues frames for a peer while it reconnects; a job
    // must not wait there for a node that may be gone.
    let connected = ctx
        .options
        .forwarder
        .as_ref()
        .filter(|forwarder| forwarder.handle().is_connected(owner));
    let sent = connected
        .is_some_and(|forwarder| forwarder.send_pushed_job(owner, partition, push.stream_id, &job));
    if !sent {
        streams.undeliverable(crate::push_streams::Undelivered {
            partition,
            job_key: job.key,
            stream_id: push.stream_id,
            gone: connected.is_none(),
        });
    }
}

fn send_messages(forwarder: Option<&Forwarder>, messages: Vec<raft::Envelope>) {
    let Some(forwarder) = forwarder else {
        if !messages.is_empty() {
            tracing::error!("Raft messages for other nodes on a single node; dropped");
        }
        return;
    };
    for envelope in messages {
        let to = broker_node(envelope.to);
        for frame in encode_envelope(envelope, transport::MAX_FRAME_PAYLOAD_BYTES) {
            // A full queue drops the frame: Raft sends again.
            let _ = forwarder
                .handle()
                .try_send(to, transport::TrafficClass::Replication, 0, frame);
        }
    }
}
