//! The log on a full simulated disk: the spare segment kept in reserve, the
//! shortage it reports, the retry of buffered entries once space is back, and
//! a failed `fdatasync` that stays fatal even when the kernel says ENOSPC.

use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use futures::FutureExt;
use storage::{recycle_name, DiskOp, Entry, Error, Fault, FaultError, Log, LogConfig, SimDisk};

const DIR: &str = "/data/partition-1";
/// Segment size of these tests: 68 frames of 240 bytes fill one.
const SEGMENT_BYTES: u64 = 16 << 10;
/// Payload bytes per entry.
const PAYLOAD_BYTES: usize = 200;
/// Entries that fill one segment.
const PER_SEGMENT: u64 = 68;

fn run<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("SimDisk futures complete on their first poll")
}

fn config() -> LogConfig {
    LogConfig {
        segment_size_bytes: SEGMENT_BYTES,
        max_recycled_segments: 2,
        max_unsynced_bytes: 1 << 20,
        spare_segments: 1,
    }
}

fn open(disk: &SimDisk) -> Log<SimDisk> {
    run(Log::open(disk.clone(), DIR, config())).expect("open")
}

fn entries(indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes
        .map(|i| {
            let mut bytes = format!("{i}:").into_bytes();
            bytes.resize(PAYLOAD_BYTES, (i % 251) as u8);
            Entry {
                term: 1,
                index: i,
                payload: Bytes::from(bytes),
            }
        })
        .collect()
}

fn names(disk: &SimDisk) -> Vec<String> {
    run(storage::Disk::list_dir(disk, Path::new(DIR))).expect("list")
}

#[test]
fn the_reserve_takes_the_next_segment_on_enospc_and_the_log_resumes_once_space_is_back() {
    let disk = SimDisk::new();
    let mut log = open(&disk);
    run(log.ensure_spare()).expect("room for the spare");
    assert_eq!(log.recycled_segments(), 1);
    assert!(names(&disk).iter().any(|n| n.starts_with("recycle-")));
    log.append(&entries(1..=PER_SEGMENT)).expect("append");
    assert_eq!(run(log.sync()).expect("sync"), PER_SEGMENT);
    assert_eq!(log.space_shortage(), None);

    // The disk is full: the next segment cannot be created, the spare is used.
    disk.set_capacity_bytes(Some(disk.used_bytes()));
    let second = 2 * PER_SEGMENT;
    log.append(&entries(PER_SEGMENT + 1..=second))
        .expect("append");
    assert_eq!(run(log.sync()).expect("the reserve holds them"), second);
    let shortage = log.space_shortage().expect("short of space").to_string();
    assert!(shortage.contains(DIR), "names the directory: {shortage}");
    assert_eq!(log.recycled_segments(), 0);

    // The reserve is full too: the entries stay buffered, nothing is lost.
    let third = 3 * PER_SEGMENT;
    log.append(&entries(second + 1..=third)).expect("append");
    let error = run(log.sync()).expect_err("no room left");
    assert!(error.is_no_space(), "{error}");
    assert!(!log.is_poisoned());
    assert_eq!(log.durable_index(), second);
    assert_eq!(log.last_index(), third);
    assert!(log.unsynced_bytes() > 0);
    assert!(run(log.ensure_spare())
        .expect_err("still full")
        .is_no_space());
    assert!(log.space_shortage().is_some());

    // Space is back: the retried sync writes the buffered entries; the log
    // stays short until the reserve is made again.
    disk.set_capacity_bytes(None);
    assert_eq!(run(log.sync()).expect("retry"), third);
    assert_eq!(log.unsynced_bytes(), 0);
    assert!(log.space_shortage().is_some(), "the reserve is still used");
    run(log.ensure_spare()).expect("space is back");
    assert_eq!(log.space_shortage(), None);
    assert!(log.recycled_segments() >= 1);
    let read = run(log.read(1, third + 1, usize::MAX)).expect("read");
    assert_eq!(read, entries(1..=third));
    drop(log);
    let log = open(&disk);
    assert_eq!(log.last_index(), third);
    assert_eq!(run(log.read(1, third + 1, usize::MAX)).expect("read"), read);
}

#[test]
fn without_a_reserve_a_full_disk_buffers_the_entries() {
    let disk = SimDisk::new();
    let mut log = open(&disk);
    log.append(&entries(1..=PER_SEGMENT)).expect("append");
    run(log.sync()).expect("sync");
    disk.set_capacity_bytes(Some(disk.used_bytes()));
    assert!(run(log.ensure_spare()).expect_err("full").is_no_space());
    assert!(
        !names(&disk).iter().any(|n| n.starts_with("recycle-")),
        "a partly made spare is removed: {:?}",
        names(&disk)
    );
    log.append(&entries(PER_SEGMENT + 1..=PER_SEGMENT + 5))
        .expect("append");
    assert!(run(log.sync()).expect_err("full").is_no_space());
    assert_eq!(log.durable_index(), PER_SEGMENT);
    disk.set_capacity_bytes(None);
    assert_eq!(run(log.sync()).expect("retry"), PER_SEGMENT + 5);
}

#[test]
fn a_failed_fdatasync_with_enospc_is_not_a_retryable_no_space() {
    let disk = SimDisk::new();
    let mut log = open(&disk);
    log.append(&entries(1..=3)).expect("append");
    run(log.sync()).expect("sync");
    disk.inject(Fault {
        op: DiskOp::Sync,
        path_contains: String::new(),
        skip: 0,
        error: FaultError::NoSpace,
    });
    log.append(&entries(4..=4)).expect("append");
    let error = run(log.sync()).expect_err("injected");
    assert!(!error.is_no_space(), "{error}");
    assert!(error.is_sync_failure(), "{error}");
    assert!(log.is_poisoned());
    assert!(matches!(run(log.sync()), Err(Error::Poisoned { .. })));
    assert!(matches!(
        run(log.ensure_spare()),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn a_spare_file_is_kept_while_only_the_reserve_is_recycled() {
    let disk = SimDisk::new();
    let mut log = open(&disk);
    run(log.ensure_spare()).expect("spare");
    let spare = names(&disk)
        .into_iter()
        .find(|n| n.starts_with("recycle-"))
        .expect("spare made");
    assert_eq!(spare, recycle_name(1));
    log.append(&entries(1..=3 * PER_SEGMENT)).expect("append");
    run(log.sync()).expect("sync");
    assert!(
        names(&disk).contains(&spare),
        "new segments are created while only the reserve is recycled"
    );
    assert_eq!(log.space_shortage(), None);
}

#[test]
fn an_entry_larger_than_the_spare_waits_for_space_instead_of_failing() {
    let disk = SimDisk::new();
    let config = LogConfig {
        segment_size_bytes: 32 << 20,
        max_recycled_segments: 2,
        max_unsynced_bytes: 64 << 20,
        spare_segments: 1,
    };
    let mut log = run(Log::open(disk.clone(), DIR, config.clone())).expect("open");
    run(log.ensure_spare()).expect("spare");
    assert!(names(&disk)
        .iter()
        .all(|n| n != storage::SPARE_FILLING_NAME));
    disk.set_capacity_bytes(Some(disk.used_bytes()));
    let big = Entry {
        term: 1,
        index: 1,
        payload: Bytes::from(vec![7u8; config.max_payload_bytes()]),
    };
    log.append(std::slice::from_ref(&big)).expect("append");
    assert!(run(log.sync()).expect_err("no room").is_no_space());
    assert_eq!(log.durable_index(), 0);
    disk.set_capacity_bytes(None);
    assert_eq!(run(log.sync()).expect("space is back"), 1);
    assert_eq!(run(log.read(1, 2, usize::MAX)).expect("read"), vec![big]);
}
