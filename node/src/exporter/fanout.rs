//! What the partitions' leaders hand records to: a [`Sink`] takes batches of
//! entries and reports, per partition, the highest index it made durable.
//! [`Fanout`] hands every batch to several sinks (the JSON-lines file and
//! secondary storage) and acknowledges what all of them hold.

use std::sync::Arc;

use super::ExportEntry;
use crate::placement::PartitionId;

/// A destination of exported records. Shared by every shard thread (which
/// call `send` and `acknowledged` without blocking) for the broker's life.
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// Hands entries of `partition`, in log order, to the sink; `false` when
    /// it cannot take them now (the caller hands them again later).
    fn send(&self, partition: PartitionId, entries: Vec<ExportEntry>) -> bool;

    /// Highest index of `partition` the sink holds durably.
    fn acknowledged(&self, partition: PartitionId) -> u64;

    /// Reopens the files it writes (after a log rotation renamed them; on
    /// SIGHUP). Nothing for sinks without files.
    fn reopen(&self) {}
}

/// Several sinks as one: a batch goes to each; an index is acknowledged once
/// every sink holds it.
#[derive(Debug)]
pub struct Fanout {
    sinks: Vec<Arc<dyn Sink>>,
}

impl Fanout {
    /// The sinks, at least one.
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Fanout {
        assert!(!sinks.is_empty(), "a fanout needs a sink");
        Fanout { sinks }
    }
}

impl Sink for Fanout {
    fn send(&self, partition: PartitionId, entries: Vec<ExportEntry>) -> bool {
        // A sink that refuses gets the entries again later; one that took
        // them takes them twice then (every sink is at least once).
        let mut all = true;
        for sink in &self.sinks {
            all &= sink.send(partition, entries.clone());
        }
        all
    }

    fn acknowledged(&self, partition: PartitionId) -> u64 {
        self.sinks
            .iter()
            .map(|s| s.acknowledged(partition))
            .min()
            .unwrap_or(0)
    }

    fn reopen(&self) {
        for sink in &self.sinks {
            sink.reopen();
        }
    }
}
