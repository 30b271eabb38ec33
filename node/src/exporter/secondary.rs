//! The secondary storage sink: exported records written into the search
//! database ([`store::Store`]) by one writer thread.
//!
//! ```text
//! shard threads ── send(partition, entries) ──> bounded channel (SINK_QUEUE_BATCHES)
//! writer thread (own tokio runtime): batches of up to MAX_RECORDS_PER_TRANSACTION
//!     ── Store::write, one transaction per partition ──> acked[partition] = last index
//!     every cleanup_interval: Store::cleanup(now - history_ttl)
//! ```
//!
//! An index is acknowledged only after its transaction committed, so the
//! replicated exported position never passes what the database holds. The
//! writer never drops what it was given: a failed transaction is retried
//! (backing off to [`MAX_RETRY_DELAY`]) until the database takes it, while
//! the partitions' export queues fill up to `exporter.max_lag_records` and
//! then refuse new work with RESOURCE_EXHAUSTED. So the leaders' periodic
//! resends are redundant here: `send` keeps, per partition, the highest
//! index it queued and takes only entries beyond it, which bounds the
//! channel to one copy of each entry.
//!
//! The thread lives as long as the broker; errors are logged naming the
//! database and the cause, once per outage and then every
//! [`REPORT_EVERY`], and the recovery is logged too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{ExportedEntry, Store, StoreError};
use tokio::sync::mpsc;

use super::{ExportEntry, Sink};
use crate::placement::PartitionId;

/// Batches waiting for the writer before `send` refuses more.
const SINK_QUEUE_BATCHES: usize = 1024;
/// Records written in one transaction at most.
pub const MAX_RECORDS_PER_TRANSACTION: usize = 10_000;
/// Longest wait between retries of a failed transaction.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// A database that keeps failing is reported again this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);

struct Batch {
    partition: PartitionId,
    entries: Vec<ExportEntry>,
}

/// How the writer cleans history.
#[derive(Debug, Clone, Copy)]
pub struct Cleanup {
    /// Rows of instances ended longer ago are deleted; `None` keeps them.
    pub ttl: Option<Duration>,
    /// How often.
    pub interval: Duration,
}

/// Handle of the writer thread; shared by the shards for the broker's life.
#[derive(Debug)]
pub struct SecondarySink {
    tx: mpsc::Sender<Batch>,
    /// Per partition: highest index committed.
    acked: Arc<Vec<AtomicU64>>,
    /// Per partition: highest index put into the channel.
    queued: Vec<AtomicU64>,
    name: String,
}

impl SecondarySink {
    /// Starts the writer for `partitions` partitions on database `url`.
    /// Fails only for a URL that cannot be used; a database that is down is
    /// waited for (and reported) by the writer.
    pub fn start(url: &str, partitions: u32, cleanup: Cleanup) -> Result<SecondarySink, String> {
        let acked: Arc<Vec<AtomicU64>> =
            Arc::new((0..=partitions).map(|_| AtomicU64::new(0)).collect());
        let (tx, rx) = mpsc::channel(SINK_QUEUE_BATCHES);
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let thread_acked = Arc::clone(&acked);
        let url = url.to_string();
        std::thread::Builder::new()
            .name("secondary-storage".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = opened_tx.send(Err(format!("cannot start its runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match Store::open(&url, 1) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = opened_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = opened_tx.send(Ok(store.name().to_string()));
                    write_loop(store, rx, &thread_acked, cleanup).await;
                });
            })
            .map_err(|e| format!("cannot start the secondary storage thread: {e}"))?;
        let name = opened_rx
            .recv()
            .map_err(|_| "the secondary storage thread stopped".to_string())??;
        Ok(SecondarySink {
            tx,
            acked,
            queued: (0..=partitions).map(|_| AtomicU64::new(0)).collect(),
            name,
        })
    }

    /// The database, as the log names it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Sink for SecondarySink {
    fn send(&self, partition: PartitionId, mut entries: Vec<ExportEntry>) -> bool {
        let Some(queued) = self.queued.get(partition as usize) else {
            return false;
        };
        let from = queued.load(Ordering::Acquire);
        entries.retain(|e| e.index > from);
        let Some(last) = entries.last().map(|e| e.index) else {
            return true;
        };
        match self.tx.try_send(Batch { partition, entries }) {
            Ok(()) => {
                queued.fetch_max(last, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        }
    }

    fn acknowledged(&self, partition: PartitionId) -> u64 {
        self.acked
            .get(partition as usize)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }
}

/// Logs a failing database once per outage and then every [`REPORT_EVERY`].
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    reported: Option<Instant>,
}

impl Outage {
    fn failed(&mut self, what: &str, error: &StoreError) {
        let now = Instant::now();
        self.since.get_or_insert(now);
        if self.reported.is_none_or(|r| now - r >= REPORT_EVERY) {
            self.reported = Some(now);
            tracing::error!(
                "secondary storage: {what} failed: {error}; the records wait and are written \
                 when the database is back (partitions refuse new work past \
                 exporter.max_lag_records)"
            );
        }
    }

    fn recovered(&mut self, store: &Store) {
        if let Some(since) = self.since.take() {
            self.reported = None;
            tracing::info!(
                "secondary storage: {} is back after {:.1} s; writing the waiting records",
                store.name(),
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// Runs `op` until it succeeds, backing off between tries.
async fn until_done<T, F, Fut>(outage: &mut Outage, store: &Store, what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match op().await {
            Ok(v) => {
                outage.recovered(store);
                return v;
            }
            Err(e) => {
                outage.failed(what, &e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Batch>,
    acked: &[AtomicU64],
    cleanup: Cleanup,
) {
    let mut outage = Outage::default();
    until_done(&mut outage, &store, "creating the schema", || {
        store.migrate()
    })
    .await;
    tracing::info!(
        "secondary storage: writing exported records to {}",
        store.name()
    );
    let mut next_cleanup = tokio::time::Instant::now() + cleanup.interval;
    loop {
        let first = tokio::select! {
            batch = rx.recv() => match batch {
                Some(b) => b,
                None => return,
            },
            () = tokio::time::sleep_until(next_cleanup) => {
                if let Some(ttl) = cleanup.ttl {
                    clean_history(&store, ttl).await;
                }
                next_cleanup = tokio::time::Instant::now() + cleanup.interval;
                continue;
            }
        };
        // Gather what waits, per partition in log order, each entry once.
        let mut records = first.entries.iter().map(|e| e.records.len()).sum::<usize>();
        let mut batches = vec![first];
        while records < MAX_RECORDS_PER_TRANSACTION {
            let Ok(more) = rx.try_recv() else { break };
            records += more.entries.iter().map(|e| e.records.len()).sum::<usize>();
            batches.push(more);
        }
        let mut by_partition: BTreeMap<PartitionId, Vec<ExportEntry>> = BTreeMap::new();
        for batch in batches {
            let done = acked
                .get(batch.partition as usize)
                .map_or(0, |a| a.load(Ordering::Acquire));
            let list = by_partition.entry(batch.partition).or_default();
            for entry in batch.entries {
                let last = list
                    .last()
                    .map_or(done, |e: &ExportEntry| e.index.max(done));
                if entry.index > last {
                    list.push(entry);
                }
            }
        }
        for (partition, entries) in by_partition {
            if entries.is_empty() {
                continue;
            }
            let refs: Vec<ExportedEntry<'_>> = entries
                .iter()
                .map(|e| ExportedEntry {
                    index: e.index,
                    records: &e.records,
                })
                .collect();
            let what = format!("writing partition {partition}'s records");
            let last =
                until_done(&mut outage, &store, &what, || store.write(partition, &refs)).await;
            if let Some(a) = acked.get(partition as usize) {
                a.fetch_max(last, Ordering::AcqRel);
            }
        }
    }
}

/// Deletes the history older than `ttl`, a batch per transaction; a failure
/// is logged and the next round tries again.
async fn clean_history(store: &Store, ttl: Duration) {
    let now_ms = crate::view::unix_now_ms() as i64;
    let cut = now_ms.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let mut deleted = 0;
    loop {
        match store.cleanup(cut).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(store::CLEANUP_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(
                    "secondary storage: history cleanup failed: {e}; next round retries"
                );
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(
            "secondary storage: history cleanup deleted {deleted} finished process instances"
        );
    }
}
