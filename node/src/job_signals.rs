//! Wake-ups for the gateway's job push streams and long-polling activations:
//! when a partition leader has new activatable jobs of a type, the requests
//! waiting for that type ask that partition at once, instead of asking every
//! partition on a timer.
//!
//! ```text
//! shard (leader applies a job event) ──signal(type, partition)──┐
//! other node's shard ──QUIC frame──> route_inbound ──signal────┤
//!                                                               v
//!        JobSignals: type -> [Weak<Waiter>]   each Waiter: dirty partitions + Notify
//! ```
//!
//! A waiter keeps the partitions signalled since it last looked, and its
//! `Notify` keeps a permit, so a signal that arrives while the waiter is busy
//! asking partitions is not lost. Signals are hints: a waiter still asks
//! every partition now and then (frames between nodes may be dropped).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::placement::PartitionId;

/// Waiters of every job type on this node.
#[derive(Debug, Default)]
pub struct JobSignals {
    types: Mutex<HashMap<Arc<str>, Vec<Weak<Waiter>>>>,
}

/// One waiting request (a push stream or a long poll) for one job type.
#[derive(Debug, Default)]
pub struct Waiter {
    dirty: Mutex<BTreeSet<PartitionId>>,
    notify: Notify,
}

impl JobSignals {
    /// Registers a waiter for `job_type`; it stops receiving signals when
    /// dropped.
    pub fn subscribe(&self, job_type: &str) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter::default());
        let mut types = self.types.lock().expect("never poisoned");
        let list = types.entry(Arc::from(job_type)).or_default();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&waiter));
        waiter
    }

    /// `partition` has new activatable jobs of `job_type`: wakes its waiters.
    pub fn signal(&self, job_type: &str, partition: PartitionId) {
        let mut types = self.types.lock().expect("never poisoned");
        let Some(list) = types.get_mut(job_type) else {
            return;
        };
        list.retain(|w| match w.upgrade() {
            Some(waiter) => {
                waiter.mark(partition);
                waiter.notify.notify_one();
                true
            }
            None => false,
        });
        if list.is_empty() {
            types.remove(job_type);
        }
    }
}

impl Waiter {
    /// Marks `partition` to be asked (again).
    pub fn mark(&self, partition: PartitionId) {
        self.dirty.lock().expect("never poisoned").insert(partition);
    }

    /// Whether a partition is marked.
    pub fn is_marked(&self) -> bool {
        !self.dirty.lock().expect("never poisoned").is_empty()
    }

    /// The partitions signalled since the last call.
    pub fn take(&self) -> BTreeSet<PartitionId> {
        std::mem::take(&mut *self.dirty.lock().expect("never poisoned"))
    }

    /// Waits for the next signal (returns at once if one came since the last
    /// wait).
    pub async fn signalled(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_reaches_the_waiters_of_its_type_only() {
        let signals = JobSignals::default();
        let a = signals.subscribe("a");
        let b = signals.subscribe("b");
        // Signalled before anyone waits: the permit is kept.
        signals.signal("a", 3);
        signals.signal("a", 1);
        tokio::time::timeout(Duration::from_secs(5), a.signalled())
            .await
            .expect("woken");
        assert_eq!(a.take(), BTreeSet::from([1, 3]));
        assert!(a.take().is_empty());
        assert!(b.take().is_empty());
        let quiet = tokio::time::timeout(Duration::from_millis(20), b.signalled()).await;
        assert!(quiet.is_err(), "no signal for b");
    }

    #[test]
    fn dropped_waiters_stop_listening() {
        let signals = JobSignals::default();
        let a = signals.subscribe("a");
        signals.signal("a", 1);
        assert_eq!(a.take(), BTreeSet::from([1]));
        drop(a);
        signals.signal("a", 2);
        assert!(
            signals.types.lock().unwrap().is_empty(),
            "the type is forgotten"
        );
    }
}
