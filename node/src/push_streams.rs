//! Job push streams across the cluster: the gRPC `StreamActivatedJobs`
//! streams open on this node, and the delivery of the jobs partition leaders
//! push to them.
//!
//! ```text
//! gateway: open(tx) -> stream id (owner node in the top 16 bits)
//!          JobStream::Add ──log──> every replica's engine registry
//! leader:  job created ─engine─> JobPush{stream id} ─after commit─> route()
//!          owner == this node ──> deliver() ──> the stream's channel
//!          owner elsewhere ──KIND_PUSHED_JOB frame──> its deliver()
//! failed:  channel full or gone, owner unreachable ──> undelivered queue
//!          ──> YieldJob (the job is activatable again for pollers) and,
//!              for a stream that is gone, JobStream::Remove
//! ```
//!
//! The registry in the engine is replicated, so the step that creates a job
//! activates it for a stream on every replica alike: no second commit. A
//! stream of a node that restarted is found gone at its first push and
//! removed then. The channel's bound is the stream's credit: a job that finds
//! it full goes back to the partition for others.
//!
//! A leader pushes the jobs of the entries it applies while it leads; a new
//! leader that applies entries its predecessor pushed already pushes them
//! again, identical (the same key and deadline: the same activation). The
//! owner delivers an activation once ([`RECENT_PUSHES`]); a job activated
//! again (after a yield or a timeout) has another deadline and goes through.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tonic::Status;

use crate::command::PartitionCommand;
use crate::gateway::proto;
use crate::placement::{NodeId, PartitionId};

/// Bits of a stream id below its owner's node id.
const OWNER_SHIFT: u32 = 48;

/// Activations (job key and deadline) delivered lately that a second push
/// of is dropped.
const RECENT_PUSHES: usize = 65_536;

/// A job's activation: its key and deadline.
type Activation = (i64, i64);

/// The sending half of a push stream: activated jobs for the worker.
pub type JobSender = mpsc::Sender<Result<proto::ActivatedJob, Status>>;

/// A change of the replicated stream registry of a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamChange {
    /// Push jobs of `job_type` to stream `stream_id`.
    Add {
        /// The stream (see [`owner`]).
        stream_id: u64,
        /// Job type served.
        job_type: String,
        /// Worker name written into the activations.
        worker: String,
        /// Activation timeout.
        timeout_ms: i64,
        /// Variables to fetch; empty fetches all.
        fetch_variables: Vec<String>,
    },
    /// Stop pushing to stream `stream_id`.
    Remove {
        /// The stream.
        stream_id: u64,
    },
}

/// A pushed job that did not reach its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undelivered {
    /// Its partition.
    pub partition: PartitionId,
    /// The job.
    pub job_key: i64,
    /// The stream it was pushed to.
    pub stream_id: u64,
    /// Whether the stream is gone (closed, or its node unreachable) and must
    /// be removed from the registry.
    pub gone: bool,
}

/// The node that owns stream `stream_id` (where its worker is connected).
pub fn owner(stream_id: u64) -> NodeId {
    (stream_id >> OWNER_SHIFT) as NodeId
}

/// The push streams open on this node.
#[derive(Debug)]
pub struct PushStreams {
    node: NodeId,
    next: AtomicU64,
    open: Mutex<HashMap<u64, JobSender>>,
    undelivered: mpsc::UnboundedSender<Undelivered>,
    returns: Mutex<Option<mpsc::UnboundedReceiver<Undelivered>>>,
    /// The last [`RECENT_PUSHES`] activations delivered, oldest first.
    recent: Mutex<(HashSet<Activation>, VecDeque<Activation>)>,
}

impl PushStreams {
    /// The streams of `node`; ids start at a point drawn from `seed` (the
    /// start time), so a restarted node does not reuse the ids of streams
    /// its previous run left registered.
    pub fn new(node: NodeId, seed: u64) -> Self {
        let (undelivered, returns) = mpsc::unbounded_channel();
        PushStreams {
            node,
            next: AtomicU64::new(seed.wrapping_mul(1 << 12)),
            open: Mutex::new(HashMap::new()),
            undelivered,
            returns: Mutex::new(Some(returns)),
            recent: Mutex::default(),
        }
    }

    /// Opens a stream feeding `tx`; its id.
    pub fn open(&self, tx: JobSender) -> u64 {
        let low = self.next.fetch_add(1, Ordering::Relaxed) & ((1 << OWNER_SHIFT) - 1);
        let id = (u64::from(self.node) << OWNER_SHIFT) | low;
        self.open.lock().expect("never poisoned").insert(id, tx);
        id
    }

    /// Closes stream `stream_id`: jobs pushed to it from now on are returned.
    pub fn close(&self, stream_id: u64) {
        self.open.lock().expect("never poisoned").remove(&stream_id);
    }

    /// Whether `stream_id` is open here.
    #[cfg(test)]
    fn is_open(&self, stream_id: u64) -> bool {
        self.open
            .lock()
            .expect("never poisoned")
            .contains_key(&stream_id)
    }

    /// Hands a job pushed to stream `stream_id` (owned by this node) to its
    /// worker, or returns it when the stream is full or gone.
    pub fn deliver(&self, partition: PartitionId, stream_id: u64, job: proto::ActivatedJob) {
        let job_key = job.key;
        let activation = (job.key, job.deadline);
        if self
            .recent
            .lock()
            .expect("never poisoned")
            .0
            .contains(&activation)
        {
            tracing::debug!(
                partition,
                job = job_key,
                "a job pushed again by a new leader was delivered already"
            );
            return;
        }
        let sender = self
            .open
            .lock()
            .expect("never poisoned")
            .get(&stream_id)
            .cloned();
        let gone = match sender {
            None => true,
            Some(tx) => match tx.try_send(Ok(job)) {
                Ok(()) => {
                    let mut recent = self.recent.lock().expect("never poisoned");
                    let (set, order) = &mut *recent;
                    if set.insert(activation) {
                        order.push_back(activation);
                    }
                    if order.len() > RECENT_PUSHES {
                        if let Some(old) = order.pop_front() {
                            set.remove(&old);
                        }
                    }
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => true,
            },
        };
        if gone {
            self.close(stream_id);
        }
        self.undeliverable(Undelivered {
            partition,
            job_key,
            stream_id,
            gone,
        });
    }

    /// Queues a job that did not reach its worker, for [`return_undelivered`].
    pub fn undeliverable(&self, undelivered: Undelivered) {
        let _ = self.undelivered.send(undelivered);
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The queue of undelivered jobs (once).
    pub fn take_returns(&self) -> Option<mpsc::UnboundedReceiver<Undelivered>> {
        self.returns.lock().expect("never poisoned").take()
    }
}

/// Gives every undelivered job back to its partition (`JOB YIELD`: the job
/// is activatable again, for pollers and the streams' own sweeps) and
/// removes the streams that are gone; runs until the broker stops.
pub async fn return_undelivered(
    dispatcher: crate::gateway::dispatch::Dispatcher,
    mut returns: mpsc::UnboundedReceiver<Undelivered>,
) {
    while let Some(u) = returns.recv().await {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            let timeout = dispatcher.request_timeout();
            let yielded = PartitionCommand::YieldJob { job_key: u.job_key };
            if let Err(e) = dispatcher.execute(u.partition, yielded, timeout).await {
                tracing::debug!(
                    partition = u.partition,
                    job = u.job_key,
                    "an undelivered pushed job was not yielded ({e}); it times out instead"
                );
            }
            if u.gone {
                let remove = PartitionCommand::JobStream(StreamChange::Remove {
                    stream_id: u.stream_id,
                });
                let _ = dispatcher.execute(u.partition, remove, timeout).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: i64) -> proto::ActivatedJob {
        proto::ActivatedJob {
            key,
            ..Default::default()
        }
    }

    #[test]
    fn ids_name_their_owner_and_differ_across_restarts() {
        let first = PushStreams::new(3, 1_000);
        let (tx, _rx) = mpsc::channel(1);
        let a = first.open(tx.clone());
        let b = first.open(tx.clone());
        assert_ne!(a, b);
        assert_eq!((owner(a), owner(b)), (3, 3));
        let restarted = PushStreams::new(3, 2_000);
        assert_ne!(restarted.open(tx), a, "a restart draws new ids");
    }

    #[test]
    fn a_full_or_closed_stream_returns_the_job() {
        let streams = PushStreams::new(1, 0);
        let mut returns = streams.take_returns().unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let id = streams.open(tx);
        streams.deliver(2, id, job(10));
        assert_eq!(rx.try_recv().unwrap().unwrap().key, 10);
        streams.deliver(2, id, job(11));
        streams.deliver(2, id, job(12));
        let full = returns.try_recv().unwrap();
        assert_eq!((full.job_key, full.gone), (12, false), "over the credit");
        assert!(streams.is_open(id));
        drop(rx);
        streams.deliver(2, id, job(13));
        let gone = returns.try_recv().unwrap();
        assert_eq!((gone.partition, gone.job_key, gone.gone), (2, 13, true));
        assert!(!streams.is_open(id), "a closed stream is forgotten");
        streams.deliver(2, 999, job(14));
        assert!(returns.try_recv().unwrap().gone, "an unknown stream");
    }

    #[test]
    fn an_activation_pushed_twice_is_delivered_once() {
        let streams = PushStreams::new(1, 0);
        let mut returns = streams.take_returns().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let id = streams.open(tx);
        let at = |deadline| proto::ActivatedJob {
            deadline,
            ..job(10)
        };
        streams.deliver(2, id, at(500));
        // A new leader pushes the same activation again.
        streams.deliver(2, id, at(500));
        // The job activated again later (after a yield) has a new deadline.
        streams.deliver(2, id, at(900));
        let got: Vec<i64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|j| j.unwrap().deadline)
            .collect();
        assert_eq!(got, [500, 900]);
        assert!(returns.try_recv().is_err(), "nothing returned");
    }
}
