//! What opening and loading a log costs in disk reads, counted on the
//! simulated disk: recovery and a full read stay linear in the bytes of the
//! log however many frames it holds, also when the tail segment is a recycled
//! file full of stale frames, and a full read hands out payloads without
//! copying each one. Counts, not timings, so the tests hold on any machine.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use futures::FutureExt;
use storage::frame::FRAME_HEADER_BYTES;
use storage::{Disk, DiskFile, Entry, Log, LogConfig, SimDisk};

const DIR: &str = "/data/partition-1";
/// Segment size of the loading test.
const SEGMENT_BYTES: u64 = 256 << 10;
/// Segment size of the recycled-tail test: larger than the read chunk, so
/// that the scan behind the tail's cut needs more than one read.
const LARGE_SEGMENT_BYTES: u64 = 2 << 20;
/// Payload of the recycled-tail test's frames (1 KiB frames).
const SMALL_PAYLOAD_BYTES: usize = 1024 - FRAME_HEADER_BYTES;

/// Drives a future over `SimDisk`, which must complete on its first poll.
fn run<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("SimDisk futures complete on their first poll")
}

/// A [`SimDisk`] that counts the bytes read through it.
#[derive(Clone)]
struct CountingDisk {
    inner: SimDisk,
    read_bytes: Rc<Cell<u64>>,
}

struct CountingFile {
    inner: <SimDisk as Disk>::File,
    read_bytes: Rc<Cell<u64>>,
}

impl DiskFile for CountingFile {
    async fn size_bytes(&self) -> io::Result<u64> {
        self.inner.size_bytes().await
    }
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let out = self.inner.read_at(pos, len).await?;
        self.read_bytes
            .set(self.read_bytes.get() + out.len() as u64);
        Ok(out)
    }
    async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(pos, data).await
    }
    async fn fdatasync(&self) -> io::Result<()> {
        self.inner.fdatasync().await
    }
}

impl Disk for CountingDisk {
    type File = CountingFile;
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir).await
    }
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir).await
    }
    async fn open(&self, path: &Path, create: bool) -> io::Result<CountingFile> {
        Ok(CountingFile {
            inner: self.inner.open(path, create).await?,
            read_bytes: Rc::clone(&self.read_bytes),
        })
    }
    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path).await
    }
    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(dir).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to).await
    }
    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir).await
    }
}

fn config(segment_size_bytes: u64) -> LogConfig {
    LogConfig {
        segment_size_bytes,
        max_recycled_segments: 4,
        max_unsynced_bytes: 4 << 20,
        spare_segments: 0,
    }
}

fn entries(from: u64, count: u64, payload_bytes: usize) -> Vec<Entry> {
    (from..from + count)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Bytes::from(vec![(index % 251) as u8; payload_bytes]),
        })
        .collect()
}

/// Bytes of every file in the log directory.
fn files_bytes(disk: &SimDisk) -> u64 {
    let names = run(disk.list_dir(Path::new(DIR))).expect("list");
    names
        .iter()
        .map(|n| {
            disk.file_bytes(&Path::new(DIR).join(n))
                .map_or(0, |b| b.len() as u64)
        })
        .sum()
}

/// Writes `segments` segments of small frames, compacts all but the last
/// away (their files are recycled) and starts the next segment in a
/// recycled file: its bytes after the few new frames are stale frames
/// written under another sequence number. Returns the last index.
fn log_with_recycled_tail(disk: &SimDisk, segments: u64) -> u64 {
    let config = config(LARGE_SEGMENT_BYTES);
    let mut log = run(Log::open(disk.clone(), DIR, config)).expect("open");
    let per_segment = LARGE_SEGMENT_BYTES / (FRAME_HEADER_BYTES + SMALL_PAYLOAD_BYTES) as u64;
    let mut next = 1;
    for _ in 0..segments {
        for chunk in entries(next, per_segment, SMALL_PAYLOAD_BYTES).chunks(512) {
            log.append(chunk).expect("append");
            run(log.sync()).expect("sync");
        }
        next += per_segment;
        run(log.compact_prefix(next - per_segment / 2)).expect("compact");
    }
    log.append(&entries(next, 3, SMALL_PAYLOAD_BYTES))
        .expect("append");
    run(log.sync()).expect("sync");
    next + 2
}

#[test]
fn recovery_reads_a_recycled_tail_once() {
    let disk = SimDisk::new();
    let last = log_with_recycled_tail(&disk, 8);
    let names = run(disk.list_dir(Path::new(DIR))).expect("list");
    let tail = names
        .iter()
        .filter(|n| !n.starts_with("recycle-"))
        .max()
        .expect("segments");
    let bytes = disk.file_bytes(&Path::new(DIR).join(tail)).expect("tail");
    let written = 3 * (FRAME_HEADER_BYTES + SMALL_PAYLOAD_BYTES);
    assert!(
        bytes[written..].iter().filter(|b| **b != 0).count() > bytes.len() / 2,
        "the tail {tail} is a recycled file with stale frames behind its 3 new ones"
    );
    let counting = CountingDisk {
        inner: disk.clone(),
        read_bytes: Rc::new(Cell::new(0)),
    };
    let log = run(Log::open(
        counting.clone(),
        DIR,
        config(LARGE_SEGMENT_BYTES),
    ))
    .expect("reopen");
    assert_eq!(log.last_index(), last);
    let read = counting.read_bytes.get();
    let held = files_bytes(&disk);
    // Each live segment is read about once; the stale frames behind the
    // tail's cut (thousands of them) must not each cost another read.
    assert!(
        read <= 2 * held,
        "recovery read {read} bytes for {held} bytes of files"
    );
}

#[test]
fn loading_reads_linearly_and_shares_read_buffers() {
    let mut reads = Vec::new();
    for segments in [4u64, 8] {
        let disk = SimDisk::new();
        let mut log = run(Log::open(disk.clone(), DIR, config(SEGMENT_BYTES))).expect("open");
        let per_segment = SEGMENT_BYTES / (FRAME_HEADER_BYTES as u64 + 100);
        let count = segments * per_segment;
        for chunk in entries(1, count, 100).chunks(1024) {
            log.append(chunk).expect("append");
            run(log.sync()).expect("sync");
        }
        drop(log);
        let counting = CountingDisk {
            inner: disk.clone(),
            read_bytes: Rc::new(Cell::new(0)),
        };
        let log = run(Log::open(counting.clone(), DIR, config(SEGMENT_BYTES))).expect("reopen");
        let opened = counting.read_bytes.get();
        let mut loaded = Vec::new();
        let mut next = log.first_index();
        while next <= log.last_index() {
            let batch = run(log.read(next, log.last_index() + 1, 1 << 20)).expect("read");
            next = batch.last().expect("at least one").index + 1;
            loaded.extend(batch);
        }
        assert_eq!(loaded.len() as u64, count);
        let load = counting.read_bytes.get() - opened;
        let live = count * (FRAME_HEADER_BYTES as u64 + 100);
        assert!(
            load <= live + live / 4,
            "loading {live} bytes of frames read {load}"
        );
        // Payloads are slices of the reads: consecutive payloads of one read
        // sit one frame header apart in memory, so very few start a buffer.
        let separate = loaded
            .windows(2)
            .filter(|w| {
                w[0].payload.as_ptr() as usize + w[0].payload.len() + FRAME_HEADER_BYTES
                    != w[1].payload.as_ptr() as usize
            })
            .count();
        assert!(
            separate as u64 <= 2 * segments + load / (1 << 20) + 2,
            "{separate} of {count} payloads are separate allocations"
        );
        reads.push(opened + load);
    }
    // Twice the log, about twice the reads (a fixed part for the tail).
    assert!(
        reads[1] <= 2 * reads[0] + 2 * SEGMENT_BYTES,
        "reads {} then {}",
        reads[0],
        reads[1]
    );
}
