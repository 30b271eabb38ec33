//! Exporters: the records a partition produces, handed in log order to a sink
//! outside the broker, with the exported position kept in the replicated
//! state.
//!
//! ```text
//! every replica: apply entry i ──events──> ExportQueue (replicated, in the snapshot)
//! leader:        queue ──unsent entries──> ExportSink thread ──JSON lines──> file, fdatasync
//!                sink acknowledged i ──> leader proposes an `exported` entry
//! every replica: apply `exported i` ──> queue drops entries <= i
//! ```
//!
//! The queue holds the events of the entries not yet exported, so the log can
//! be compacted independently of the exporter and a new leader exports from
//! the replicated position (at least once: records exported by the old leader
//! after its last `exported` entry are exported again; `(partitionId,
//! position, sequence)` identifies a record). A stalled exporter is bounded:
//! past `exporter.max_lag_records` queued records the partition refuses new
//! work with RESOURCE_EXHAUSTED, and the lag is a metric.
//!
//! Sinks ([`Sink`]): [`ExportSink`] writes one JSON object per line to
//! `<exporter.directory>/partition-<id>.jsonl`, appending, for a log shipper
//! (Vector, Fluent Bit, Filebeat) to take from there; [`secondary`] writes
//! into the secondary storage database; [`Fanout`] feeds both.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use engine::{Record, RecordValue};
use serde::Serialize;

use crate::placement::PartitionId;

mod fanout;
pub mod secondary;
pub mod secondary_config;

pub use fanout::{Fanout, Sink};

/// A leader hands records to the sink again when it acknowledged nothing
/// new for this long (a failed write or sync drops what it was given).
pub const RESEND_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Batches waiting for the sink thread before leaders stop handing it more
/// (they hand the rest over later).
const SINK_QUEUE_BATCHES: usize = 1024;

/// The records of one log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportEntry {
    /// Raft index of the entry.
    pub index: u64,
    /// Its records, in order.
    pub records: Vec<Record>,
}

/// The replicated part: what is exported, what waits.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportQueue {
    exported: u64,
    entries: VecDeque<ExportEntry>,
    records: usize,
    /// Leader-local: highest index handed to the sink.
    sent: u64,
}

impl ExportQueue {
    /// The replicated exported position.
    pub fn exported(&self) -> u64 {
        self.exported
    }

    /// Records waiting to be exported.
    pub fn lag_records(&self) -> usize {
        self.records
    }

    /// Adds a record produced by the entry at `index`.
    pub fn push(&mut self, index: u64, record: Record) {
        match self.entries.back_mut() {
            Some(last) if last.index == index => last.records.push(record),
            _ => self.entries.push_back(ExportEntry {
                index,
                records: vec![record],
            }),
        }
        self.records += 1;
    }

    /// Applies an `exported` entry: everything up to `position` is out.
    pub fn exported_up_to(&mut self, position: u64) {
        if position <= self.exported {
            return;
        }
        self.exported = position;
        while self.entries.front().is_some_and(|e| e.index <= position) {
            let e = self.entries.pop_front().expect("checked");
            self.records -= e.records.len();
        }
    }

    /// Entries not yet handed to the sink (leader); marks them handed.
    pub fn take_unsent(&mut self) -> Vec<ExportEntry> {
        let from = self.sent.max(self.exported);
        let out: Vec<ExportEntry> = self
            .entries
            .iter()
            .filter(|e| e.index > from)
            .cloned()
            .collect();
        if let Some(last) = out.last() {
            self.sent = last.index;
        }
        out
    }

    /// Highest index handed to the sink (leader).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The entries from `index` on were not taken by the sink: hand them
    /// again next time.
    pub fn rewind_sent(&mut self, index: u64) {
        self.sent = index.saturating_sub(1);
    }

    /// Forgets what was handed to the sink (leadership changed): a new term of
    /// leadership exports from the replicated position.
    pub fn reset_sent(&mut self) {
        self.sent = 0;
    }

    /// Appends the queue to a snapshot.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.exported.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        let mut body = Vec::new();
        for e in &self.entries {
            out.extend_from_slice(&e.index.to_le_bytes());
            out.extend_from_slice(&(e.records.len() as u64).to_le_bytes());
            for r in &e.records {
                body.clear();
                r.encode(&mut body);
                out.extend_from_slice(&(body.len() as u64).to_le_bytes());
                out.extend_from_slice(&body);
            }
        }
    }

    /// Reads a queue written by `encode` from the front of `input`, leaving
    /// `input` after it.
    pub fn decode(input: &mut &[u8], max_records: usize) -> Result<ExportQueue, String> {
        fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
            if input.len() < n {
                return Err(format!("exporter {what}: snapshot ends early"));
            }
            let (head, tail) = input.split_at(n);
            *input = tail;
            Ok(head)
        }
        fn u64_at(input: &mut &[u8], what: &str) -> Result<u64, String> {
            let b = take(input, 8, what)?;
            Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
        }
        let exported = u64_at(input, "position")?;
        let count = u64_at(input, "entry count")?;
        let mut queue = ExportQueue {
            exported,
            ..ExportQueue::default()
        };
        for _ in 0..count {
            let index = u64_at(input, "entry index")?;
            let n = u64_at(input, "record count")?;
            if queue.records as u64 + n > max_records as u64 {
                return Err(format!(
                    "snapshot holds more than {max_records} records to export"
                ));
            }
            let mut records = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let len = u64_at(input, "record length")? as usize;
                let bytes = take(input, len, "record")?;
                records.push(Record::decode(bytes).map_err(|e| format!("record to export: {e}"))?);
            }
            queue.records += records.len();
            queue.entries.push_back(ExportEntry { index, records });
        }
        Ok(queue)
    }
}

/// One record as the sink writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportedLine<'a> {
    partition_id: PartitionId,
    /// Raft index of the entry that produced the record.
    position: u64,
    /// The record's place among the entry's records.
    sequence: usize,
    /// The tenant the record belongs to.
    tenant_id: &'a str,
    record: &'a Record,
}

/// `record` as files may show it: a user's password hash left out.
fn without_secrets(record: &Record) -> std::borrow::Cow<'_, Record> {
    match &record.value {
        RecordValue::User(user) if !user.password.is_empty() => {
            let mut redacted = record.clone();
            redacted.value = RecordValue::User(engine::identity::UserRecord {
                password: String::new(),
                ..user.clone()
            });
            std::borrow::Cow::Owned(redacted)
        }
        _ => std::borrow::Cow::Borrowed(record),
    }
}

struct Batch {
    partition: PartitionId,
    entries: Vec<ExportEntry>,
}

/// The writer thread and the positions it made durable.
#[derive(Debug)]
pub struct ExportSink {
    tx: mpsc::SyncSender<Batch>,
    acked: Arc<Vec<AtomicU64>>,
    directory: PathBuf,
    /// Set by [`Sink::reopen`]; the writer reopens its files before its next
    /// write.
    reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl ExportSink {
    /// Starts the writer thread for `partitions` partitions, writing into
    /// `directory` (created if missing).
    pub fn start(directory: &Path, partitions: u32) -> std::io::Result<ExportSink> {
        std::fs::create_dir_all(directory)?;
        let acked: Arc<Vec<AtomicU64>> =
            Arc::new((0..=partitions).map(|_| AtomicU64::new(0)).collect());
        let (tx, rx) = mpsc::sync_channel(SINK_QUEUE_BATCHES);
        let thread_acked = Arc::clone(&acked);
        let reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_reopen = Arc::clone(&reopen);
        let dir = directory.to_path_buf();
        std::thread::Builder::new()
            .name("exporter".into())
            .spawn(move || write_loop(&dir, rx, &thread_acked, &thread_reopen))?;
        Ok(ExportSink {
            tx,
            acked,
            directory: directory.to_path_buf(),
            reopen,
        })
    }

    /// Where the sink writes.
    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

impl Sink for ExportSink {
    /// Hands entries of `partition` to the writer; `false` when its queue is
    /// full or it stopped (the caller hands them again later).
    fn send(&self, partition: PartitionId, entries: Vec<ExportEntry>) -> bool {
        self.tx.try_send(Batch { partition, entries }).is_ok()
    }

    /// Highest index of `partition` written and synced by this sink.
    fn acknowledged(&self, partition: PartitionId) -> u64 {
        self.acked
            .get(partition as usize)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }

    fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }
}

/// Opens an export file for appending. A crash in the middle of a write can
/// leave a torn last line; it is cut off, so that every line stays one JSON
/// object. Its records were never acknowledged, so they are written again.
fn open_for_append(path: &Path) -> std::io::Result<File> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::options()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    // Find the end of the last complete line, reading backwards in chunks.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        tracing::warn!(
            "exporter: {} ended in a torn line ({} bytes); cut off, its records are written again",
            path.display(),
            len - end
        );
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(file)
}

fn write_loop(
    dir: &Path,
    rx: mpsc::Receiver<Batch>,
    acked: &[AtomicU64],
    reopen: &std::sync::atomic::AtomicBool,
) {
    let mut files: std::collections::HashMap<PartitionId, BufWriter<File>> =
        std::collections::HashMap::new();
    // Partitions whose last write failed: logged once, until one succeeds.
    let mut failing: std::collections::HashSet<PartitionId> = std::collections::HashSet::new();
    fn fail(failing: &mut std::collections::HashSet<PartitionId>, p: PartitionId, what: String) {
        if failing.insert(p) {
            tracing::error!("exporter: {what}; partition {p}'s records wait until it succeeds");
        }
    }
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
            if batches.len() >= SINK_QUEUE_BATCHES {
                break;
            }
        }
        // Every file was flushed and synced after the previous batches, so
        // closing them loses nothing; a rotated (renamed) file is complete.
        if reopen.swap(false, Ordering::AcqRel) && !files.is_empty() {
            files.clear();
            tracing::info!("exporter: files in {} reopened", dir.display());
        }
        let mut written: Vec<(PartitionId, u64)> = Vec::new();
        for batch in batches {
            let p = batch.partition;
            let file = match files.entry(p) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let path = dir.join(format!("partition-{p}.jsonl"));
                    match open_for_append(&path) {
                        Ok(f) => v.insert(BufWriter::with_capacity(1 << 20, f)),
                        Err(e) => {
                            fail(
                                &mut failing,
                                p,
                                format!("cannot open {}: {e}", path.display()),
                            );
                            continue;
                        }
                    }
                }
            };
            let mut last = 0;
            let mut failed = false;
            for entry in &batch.entries {
                for (sequence, record) in entry.records.iter().enumerate() {
                    let line = ExportedLine {
                        partition_id: p,
                        position: entry.index,
                        sequence,
                        tenant_id: record.tenant.as_str(),
                        record: &without_secrets(record),
                    };
                    if let Err(e) = serde_json::to_writer(&mut *file, &line)
                        .map_err(std::io::Error::from)
                        .and_then(|()| file.write_all(b"\n"))
                    {
                        fail(&mut failing, p, format!("cannot write: {e}"));
                        failed = true;
                        break;
                    }
                }
                if failed {
                    break;
                }
                last = entry.index;
            }
            if last > 0 {
                written.push((p, last));
            }
        }
        for (p, last) in written {
            let Some(file) = files.get_mut(&p) else {
                continue;
            };
            match file.flush().and_then(|()| file.get_ref().sync_data()) {
                Ok(()) => {
                    if failing.remove(&p) {
                        tracing::info!("exporter: partition {p} exports again");
                    }
                    if let Some(a) = acked.get(p as usize) {
                        a.fetch_max(last, Ordering::AcqRel);
                    }
                }
                Err(e) => {
                    fail(&mut failing, p, format!("cannot sync: {e}"));
                    // Reopen on the next batch; the records are handed again.
                    files.remove(&p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Intent;

    fn record(key: i64) -> Record {
        Record::command(
            key,
            Intent::Broadcast,
            RecordValue::Signal(engine::SignalRecord {
                signal_name: "s".into(),
                variables: "{}".into(),
            }),
            None,
        )
    }

    #[test]
    fn the_queue_trims_at_the_exported_position_and_survives_a_snapshot() {
        let mut q = ExportQueue::default();
        q.push(3, record(1));
        q.push(3, record(2));
        q.push(5, record(3));
        assert_eq!(q.lag_records(), 3);
        let sent = q.take_unsent();
        assert_eq!(sent.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 5]);
        assert!(q.take_unsent().is_empty(), "handed once");
        q.exported_up_to(3);
        assert_eq!((q.exported(), q.lag_records()), (3, 1));
        q.reset_sent();
        assert_eq!(q.take_unsent()[0].index, 5, "a new leader hands 5 again");

        let mut bytes = Vec::new();
        q.encode(&mut bytes);
        let mut rest = &bytes[..];
        let back = ExportQueue::decode(&mut rest, 10).expect("decodes");
        assert!(rest.is_empty(), "reads exactly what was written");
        assert_eq!(back.exported(), 3);
        assert_eq!(back.lag_records(), 1);
        assert_eq!(back.entries, q.entries);
        let mut short = &bytes[..bytes.len() - 1];
        assert!(ExportQueue::decode(&mut short, 10).is_err());
    }

    #[test]
    fn password_hashes_are_not_exported() {
        let user = Record::command(
            5,
            engine::Intent::Created,
            RecordValue::User(engine::identity::UserRecord {
                username: "demo".into(),
                password: "$argon2id$v=19$secret".into(),
                ..Default::default()
            }),
            None,
        );
        let shown = serde_json::to_string(&*without_secrets(&user)).unwrap();
        assert!(
            shown.contains("demo") && !shown.contains("argon2"),
            "{shown}"
        );
        assert!(matches!(without_secrets(&user), std::borrow::Cow::Owned(_)));
    }

    #[test]
    fn the_sink_writes_json_lines_and_acknowledges_after_sync() {
        let dir = tempfile::tempdir().expect("dir");
        let sink = ExportSink::start(dir.path(), 2).expect("sink");
        let mut of_acme = record(12);
        of_acme.tenant = engine::Tenant::new("acme");
        assert!(sink.send(
            2,
            vec![ExportEntry {
                index: 7,
                records: vec![record(11), of_acme],
            }],
        ));
        let start = std::time::Instant::now();
        while sink.acknowledged(2) < 7 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(sink.acknowledged(2), 7);
        assert_eq!(sink.acknowledged(1), 0);
        let text = std::fs::read_to_string(dir.path().join("partition-2.jsonl")).expect("file");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["partitionId"], 2);
        assert_eq!(lines[1]["position"], 7);
        assert_eq!(lines[1]["sequence"], 1);
        assert_eq!(lines[1]["record"]["key"], 12);
        assert_eq!(lines[0]["tenantId"], "<default>");
        assert_eq!(lines[1]["tenantId"], "acme");
    }

    #[test]
    fn reopen_after_a_rotation_writes_a_new_file() {
        let dir = tempfile::tempdir().expect("dir");
        let sink = ExportSink::start(dir.path(), 1).expect("sink");
        let send_and_wait = |index: u64, key: i64| {
            assert!(sink.send(
                1,
                vec![ExportEntry {
                    index,
                    records: vec![record(key)],
                }],
            ));
            let start = std::time::Instant::now();
            while sink.acknowledged(1) < index
                && start.elapsed() < std::time::Duration::from_secs(10)
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(sink.acknowledged(1), index);
        };
        let file = dir.path().join("partition-1.jsonl");
        let rotated = dir.path().join("partition-1.jsonl.1");
        send_and_wait(1, 101);
        std::fs::rename(&file, &rotated).expect("rotate");
        // Without a reopen the writer keeps the renamed file.
        send_and_wait(2, 102);
        assert!(!file.exists());
        sink.reopen();
        send_and_wait(3, 103);
        let keys = |path: &Path| -> Vec<i64> {
            std::fs::read_to_string(path)
                .expect("file")
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
                .map(|v| v["record"]["key"].as_i64().expect("key"))
                .collect()
        };
        assert_eq!(keys(&rotated), vec![101, 102]);
        assert_eq!(keys(&file), vec![103]);
    }

    #[test]
    fn a_torn_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("partition-1.jsonl");
        // A complete line, then a line a crash cut in the middle.
        std::fs::write(&file, "{\"a\":1}\n{\"partitionId\":1,\"posi").expect("write");
        let mut f = open_for_append(&file).expect("open");
        f.write_all(b"{\"b\":2}\n").expect("append");
        drop(f);
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        // A file with no complete line at all is emptied.
        std::fs::write(&file, "{\"torn").expect("write");
        drop(open_for_append(&file).expect("open"));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "");
        // A clean file is left alone.
        std::fs::write(&file, "{\"a\":1}\n").expect("write");
        drop(open_for_append(&file).expect("open"));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "{\"a\":1}\n");
    }

    #[test]
    fn decision_records_are_exported_like_the_others() {
        let dir = tempfile::tempdir().expect("dir");
        let sink = ExportSink::start(dir.path(), 1).expect("sink");
        let mut evaluation =
            engine::DecisionEvaluationRecord::command(5, "dish", r#"{"season":"Winter"}"#.into());
        evaluation.decision_output = r#""Stew""#.into();
        let mut record = Record::command(
            9,
            Intent::Evaluated,
            RecordValue::DecisionEvaluation(Box::new(evaluation)),
            None,
        );
        record.record_type = engine::RecordType::Event;
        assert!(sink.send(
            1,
            vec![ExportEntry {
                index: 3,
                records: vec![record]
            }]
        ));
        let start = std::time::Instant::now();
        while sink.acknowledged(1) < 3 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let text = std::fs::read_to_string(dir.path().join("partition-1.jsonl")).expect("file");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        let r = &line["record"];
        assert_eq!(r["value_type"], "DecisionEvaluation", "{line}");
        assert_eq!(r["intent"], "Evaluated");
        let value = &r["value"]["DecisionEvaluation"];
        assert_eq!(value["decision_id"], "dish", "{line}");
        assert_eq!(value["decision_key"], 5);
        assert_eq!(value["decision_output"], "\"Stew\"");
    }
}
