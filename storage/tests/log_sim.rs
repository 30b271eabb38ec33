//! The log on the simulated disk: a model-based property test, crashes at every
//! I/O step of a workload, and injected faults.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::FutureExt;
use proptest::prelude::*;
use storage::{
    segment_name, DiskOp, Entry, Error, Fault, FaultError, Log, LogConfig, SimDisk, TailDamage,
};

const DIR: &str = "/data/partition-1";

/// Drives a future over `SimDisk`, which must complete on its first poll.
fn run<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("SimDisk futures complete on their first poll")
}

fn config() -> LogConfig {
    LogConfig {
        segment_size_bytes: 16 << 10,
        max_recycled_segments: 2,
        max_unsynced_bytes: 1 << 20,
        spare_segments: 0,
    }
}

fn open(disk: &SimDisk) -> Result<Log<SimDisk>, Error> {
    run(Log::open(disk.clone(), DIR, config()))
}

/// A payload that names its index and version, so that every append is unique.
fn payload(index: u64, version: u64, len: usize) -> Bytes {
    let mut bytes = format!("{index}:{version}:").into_bytes();
    bytes.resize(len.max(bytes.len()), (index % 251) as u8);
    Bytes::from(bytes)
}

fn all_entries(log: &Log<SimDisk>) -> Vec<Entry> {
    run(log.read(log.first_index(), log.last_index() + 1, usize::MAX)).expect("read all")
}

/// The reference: the entries the log must hold, and every entry ever appended.
#[derive(Default)]
struct Model {
    first: u64,
    entries: Vec<Entry>,
    durable: u64,
    term: u64,
    version: u64,
    history: BTreeMap<u64, BTreeSet<(u64, Bytes)>>,
}

impl Model {
    fn new() -> Model {
        Model {
            first: 1,
            term: 1,
            ..Model::default()
        }
    }

    fn last(&self) -> u64 {
        self.first + self.entries.len() as u64 - 1
    }

    fn next_entries(&mut self, sizes: &[usize]) -> Vec<Entry> {
        let mut out = Vec::new();
        for (index, &size) in (self.last() + 1..).zip(sizes) {
            self.version += 1;
            let entry = Entry {
                term: self.term,
                index,
                payload: payload(index, self.version, size),
            };
            self.history
                .entry(index)
                .or_default()
                .insert((entry.term, entry.payload.clone()));
            out.push(entry);
        }
        out
    }

    fn truncate(&mut self, from: u64) {
        if from <= self.last() {
            self.entries.truncate((from - self.first) as usize);
            self.durable = self.durable.min(from - 1);
        }
    }

    fn compact(&mut self, through: u64) {
        if through < self.first {
            return;
        }
        let drop = ((through + 1 - self.first) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.durable = self.durable.max(through);
        self.first = through + 1;
    }

    /// Checks that a recovered log keeps every durable entry and holds nothing
    /// that was never appended, then adopts what it holds.
    fn adopt_recovered(&mut self, log: &mut Log<SimDisk>) {
        if log.first_index() < self.first {
            run(log.compact_prefix(self.first - 1)).expect("re-compact after reopen");
        }
        assert_eq!(log.first_index(), self.first, "first index after recovery");
        assert!(
            log.last_index() >= self.durable,
            "durable index {} lost: recovered up to {}",
            self.durable,
            log.last_index()
        );
        let recovered = all_entries(log);
        for entry in &recovered {
            if entry.index <= self.durable {
                assert_eq!(
                    entry,
                    &self.entries[(entry.index - self.first) as usize],
                    "durable entry changed"
                );
            }
            assert!(
                self.history
                    .get(&entry.index)
                    .is_some_and(|h| h.contains(&(entry.term, entry.payload.clone()))),
                "entry {} was never appended",
                entry.index
            );
        }
        self.entries = recovered;
        self.durable = log.last_index();
        self.term = self.term.max(self.entries.last().map_or(0, |e| e.term));
    }

    fn check(&self, log: &Log<SimDisk>) {
        assert_eq!(log.first_index(), self.first);
        assert_eq!(log.last_index(), self.last());
        assert_eq!(log.durable_index(), self.durable);
        assert_eq!(all_entries(log), self.entries);
        for entry in &self.entries {
            assert_eq!(log.term(entry.index), Some(entry.term));
        }
        assert_eq!(log.term(self.last() + 1), None);
        if let Some(first) = self.entries.first() {
            let limited = run(log.read(first.index, self.last() + 1, 1)).expect("read");
            assert_eq!(limited.len(), 1, "a byte limit still returns one entry");
            let budget = self.entries.iter().take(3).map(|e| e.payload.len()).sum();
            let limited = run(log.read(first.index, self.last() + 1, budget)).expect("read");
            assert_eq!(limited.as_slice(), &self.entries[..limited.len()]);
            assert!(limited.len() >= self.entries.len().min(3));
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<usize>),
    Sync,
    Truncate(u64),
    Compact(u64),
    NewTerm,
    Reopen,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0usize..3000, 1..6).prop_map(Op::Append),
        4 => Just(Op::Sync),
        1 => (0u64..1000).prop_map(Op::Truncate),
        1 => (0u64..1000).prop_map(Op::Compact),
        1 => Just(Op::NewTerm),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn apply(op: &Op, disk: &SimDisk, log: &mut Option<Log<SimDisk>>, model: &mut Model) {
    let current = log.as_mut().expect("log is open");
    match op {
        Op::Append(sizes) => {
            let entries = model.next_entries(sizes);
            current.append(&entries).expect("append");
            model.entries.extend(entries);
        }
        Op::Sync => {
            let durable = run(current.sync()).expect("sync");
            assert_eq!(durable, model.last());
            model.durable = durable;
        }
        Op::Truncate(pick) => {
            let span = model.entries.len() as u64 + 1;
            let from = model.first + pick % span;
            run(current.truncate_suffix(from)).expect("truncate");
            model.truncate(from);
        }
        Op::Compact(pick) => {
            let span = model.entries.len() as u64 + 2;
            let through = (model.first - 1) + pick % span;
            run(current.compact_prefix(through)).expect("compact");
            model.compact(through);
        }
        Op::NewTerm => model.term += 1,
        Op::Reopen => {
            *log = None;
            let mut reopened = open(disk).expect("reopen");
            model
                .entries
                .truncate((model.durable + 1 - model.first) as usize);
            model.adopt_recovered(&mut reopened);
            *log = Some(reopened);
        }
        Op::Crash(seed) => {
            *log = None;
            disk.crash(*seed);
            let mut reopened = open(disk).expect("reopen after crash");
            model.adopt_recovered(&mut reopened);
            *log = Some(reopened);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let disk = SimDisk::new();
        let mut log = Some(open(&disk).expect("open"));
        let mut model = Model::new();
        for op in &ops {
            apply(op, &disk, &mut log, &mut model);
            model.check(log.as_ref().expect("open"));
        }
    }
}

/// A fixed workload touching every write path: appends across segments,
/// syncs, truncations of durable entries, compactions with recycling.
fn workload() -> Vec<Op> {
    let mut ops = Vec::new();
    for round in 0..6u64 {
        ops.push(Op::Append(vec![900, 40, 2500, 10]));
        ops.push(Op::Sync);
        ops.push(Op::Append(vec![3000, 3000, 700]));
        ops.push(Op::Append(vec![1]));
        ops.push(Op::Sync);
        if round % 2 == 1 {
            ops.push(Op::Truncate(round * 7 + 3));
            ops.push(Op::NewTerm);
            ops.push(Op::Append(vec![100, 200]));
            ops.push(Op::Sync);
        }
        if round % 3 == 2 {
            ops.push(Op::Compact(round * 5));
        }
    }
    ops
}

/// Runs the workload until the disk halts; returns whether it finished.
fn run_until_halt(disk: &SimDisk, model: &mut Model) -> bool {
    let Ok(log) = open(disk) else { return false };
    let mut log = Some(log);
    for op in workload() {
        let current = log.as_mut().expect("open");
        let outcome = match &op {
            Op::Append(sizes) => {
                let entries = model.next_entries(sizes);
                let result = current.append(&entries);
                if result.is_ok() {
                    model.entries.extend(entries);
                }
                result
            }
            Op::Sync => run(current.sync()).map(|durable| {
                assert_eq!(durable, model.last());
                model.durable = durable;
            }),
            Op::Truncate(pick) => {
                let from = model.first + pick % (model.entries.len() as u64 + 1);
                // Whether or not the truncation completes, entries from `from`
                // on are no longer promised.
                model.truncate(from);
                run(current.truncate_suffix(from))
            }
            Op::Compact(pick) => {
                let through = (model.first - 1) + pick % (model.entries.len() as u64 + 2);
                model.compact(through);
                run(current.compact_prefix(through))
            }
            Op::NewTerm => {
                model.term += 1;
                Ok(())
            }
            Op::Reopen | Op::Crash(_) => unreachable!("not in the workload"),
        };
        if outcome.is_err() {
            return false;
        }
    }
    true
}

#[test]
fn crash_at_every_io_step_keeps_durable_entries_and_invents_nothing() {
    let full = SimDisk::new();
    let mut model = Model::new();
    assert!(
        run_until_halt(&full, &mut model),
        "the workload runs without faults"
    );
    let steps = full.mutations();
    assert!(steps > 50, "the workload performs many I/O steps ({steps})");
    for step in 0..=steps {
        for seed in 0..3 {
            let disk = SimDisk::new();
            disk.halt_after_mutations(step);
            let mut model = Model::new();
            run_until_halt(&disk, &mut model);
            disk.crash(step * 7 + seed);
            let mut log = open(&disk).unwrap_or_else(|e| panic!("step {step}: reopen failed: {e}"));
            model.adopt_recovered(&mut log);
            // The recovered log accepts new writes.
            let entries = model.next_entries(&[64, 5000]);
            log.append(&entries).expect("append after recovery");
            assert_eq!(
                run(log.sync()).expect("sync after recovery"),
                model.last() + 2
            );
        }
    }
}

fn segment_path(seq: u64) -> PathBuf {
    Path::new(DIR).join(segment_name(seq))
}

/// Entries `indexes` of term `term`, with payloads of `size` bytes.
fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64, size: usize) -> Vec<Entry> {
    indexes
        .map(|i| Entry {
            term,
            index: i,
            payload: payload(i, term - 1, size),
        })
        .collect()
}

fn filled_log(disk: &SimDisk, count: u64, size: usize) -> Log<SimDisk> {
    let mut log = open(disk).expect("open");
    let entries = entries(1..=count, 1, size);
    log.append(&entries).expect("append");
    assert_eq!(run(log.sync()).expect("sync"), count);
    log
}

#[test]
fn a_corrupt_frame_followed_by_valid_ones_names_the_segment_and_offset() {
    let frame = 40 + 100;
    for victim in [0u64, 3, 17, 40] {
        let disk = SimDisk::new();
        drop(filled_log(&disk, 50, 100));
        let offset = victim * frame + 45;
        disk.flip_bit(&segment_path(1), offset, 3).expect("flip");
        match open(&disk) {
            Err(Error::Corrupt { path, offset, .. }) => {
                assert_eq!(path, segment_path(1));
                assert_eq!(offset, victim * frame);
            }
            Err(other) => panic!("expected a corruption error, got {other}"),
            Ok(log) => panic!(
                "corrupt frame {victim} went unnoticed: last {}",
                log.last_index()
            ),
        }
    }
}

#[test]
fn a_corrupt_last_frame_is_cut_like_a_torn_write() {
    let disk = SimDisk::new();
    drop(filled_log(&disk, 50, 100));
    disk.flip_bit(&segment_path(1), 49 * 140 + 60, 0)
        .expect("flip");
    let log = open(&disk).expect("open");
    assert_eq!(log.last_index(), 49);
}

#[test]
fn random_bit_flips_never_return_corrupt_data() {
    for seed in 0..200 {
        let disk = SimDisk::new();
        let expected = all_entries(&filled_log(&disk, 60, 150));
        disk.flip_random_bit(&segment_path(1), 60 * 190, seed)
            .expect("flip");
        match open(&disk) {
            Ok(log) => {
                let got = all_entries(&log);
                assert_eq!(got.as_slice(), &expected[..got.len()], "seed {seed}");
            }
            Err(Error::Corrupt { path, .. }) => assert_eq!(path, segment_path(1)),
            Err(other) => panic!("seed {seed}: unexpected error {other}"),
        }
    }
}

#[test]
fn truncated_frames_never_come_back() {
    let disk = SimDisk::new();
    let mut log = filled_log(&disk, 30, 200);
    run(log.truncate_suffix(10)).expect("truncate");
    let replacement = entries(10..=12, 2, 200);
    log.append(&replacement).expect("append");
    assert_eq!(run(log.sync()).expect("sync"), 12);
    drop(log);
    let log = open(&disk).expect("reopen");
    assert_eq!(log.last_index(), 12);
    assert_eq!(&all_entries(&log)[9..], replacement.as_slice());
    assert_eq!(log.term(12), Some(2));
    assert_eq!(log.term(9), Some(1));
}

#[test]
fn a_failed_fdatasync_poisons_the_log_but_reads_go_on() {
    let disk = SimDisk::new();
    let mut log = filled_log(&disk, 10, 100);
    disk.inject(Fault {
        op: DiskOp::Sync,
        path_contains: String::new(),
        skip: 0,
        error: FaultError::Io,
    });
    let next = Entry {
        term: 1,
        index: 11,
        payload: payload(11, 0, 100),
    };
    log.append(std::slice::from_ref(&next)).expect("append");
    assert!(matches!(run(log.sync()), Err(Error::Io { .. })));
    assert!(log.is_poisoned());
    // Never retried, even though the disk would now succeed.
    assert!(matches!(run(log.sync()), Err(Error::Poisoned { .. })));
    assert!(matches!(log.append(&[]), Err(Error::Poisoned { .. })));
    assert!(matches!(
        run(log.truncate_suffix(5)),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(log.durable_index(), 10);
    assert_eq!(run(log.read(1, 11, usize::MAX)).expect("read").len(), 10);
}

#[test]
fn enospc_is_a_distinct_error_and_durable_entries_stay_readable() {
    let disk = SimDisk::new();
    let mut log = filled_log(&disk, 100, 100);
    // The first segment is nearly full; the next one cannot be created.
    disk.set_capacity_bytes(Some(disk.used_bytes()));
    let more = entries(101..=130, 1, 100);
    log.append(&more).expect("append");
    let error = run(log.sync()).expect_err("no space for a new segment");
    assert!(error.is_no_space(), "got {error}");
    assert!(
        error.to_string().contains("partition-1"),
        "names the file: {error}"
    );
    assert!(!log.is_poisoned());
    let durable = log.durable_index();
    assert!(durable >= 100);
    assert_eq!(
        run(log.read(1, durable + 1, usize::MAX))
            .expect("read")
            .len() as u64,
        durable
    );
    disk.set_capacity_bytes(None);
    assert_eq!(run(log.sync()).expect("sync after space was freed"), 130);
    drop(log);
    assert_eq!(open(&disk).expect("reopen").last_index(), 130);
}

#[test]
fn enospc_on_a_write_leaves_the_log_usable() {
    let disk = SimDisk::new();
    let mut log = filled_log(&disk, 5, 100);
    disk.inject(Fault {
        op: DiskOp::Write,
        path_contains: segment_name(1),
        skip: 0,
        error: FaultError::NoSpace,
    });
    log.append(&[Entry {
        term: 1,
        index: 6,
        payload: payload(6, 0, 10),
    }])
    .expect("append");
    assert!(run(log.sync()).expect_err("injected").is_no_space());
    assert_eq!(run(log.sync()).expect("retry"), 6);
}

#[test]
fn compaction_recycles_segment_files() {
    let disk = SimDisk::new();
    let mut log = open(&disk).expect("open");
    let mut index = 1;
    let mut peak = 0;
    for _ in 0..40 {
        let entries: Vec<Entry> = (0..8)
            .map(|k| Entry {
                term: 1,
                index: index + k,
                payload: payload(index + k, 0, 1000),
            })
            .collect();
        index += 8;
        log.append(&entries).expect("append");
        run(log.sync()).expect("sync");
        run(log.compact_prefix(index.saturating_sub(30))).expect("compact");
        peak = peak.max(disk.used_bytes());
    }
    // Live data stays within a few segments and freed files are reused, so
    // the disk use stays bounded however much was written.
    assert!(peak <= 6 * (16 << 10), "disk use grew to {peak}");
    let dir = run(storage::Disk::list_dir(&disk, Path::new(DIR))).expect("list");
    assert!(dir.iter().any(|n| n.starts_with("recycle-")), "{dir:?}");
    drop(log);
    let log = open(&disk).expect("reopen");
    assert_eq!(log.last_index(), index - 1);
}

#[test]
fn appends_must_be_contiguous_and_fit_a_segment() {
    let disk = SimDisk::new();
    let mut log = open(&disk).expect("open");
    let gap = log.append(&[Entry {
        term: 1,
        index: 2,
        payload: Bytes::new(),
    }]);
    assert!(matches!(
        gap,
        Err(Error::NonContiguous {
            expected: 1,
            got: 2
        })
    ));
    let huge = log.append(&[Entry {
        term: 1,
        index: 1,
        payload: Bytes::from(vec![0u8; 20 << 10]),
    }]);
    assert!(matches!(huge, Err(Error::TooLarge { .. })));
    assert_eq!(log.last_index(), 0);
    assert!(matches!(
        run(log.read(1, 2, 10)),
        Err(Error::OutOfRange { .. })
    ));
}

/// Runs `setup`, then appends and syncs once more with the disk halted after
/// each possible number of I/O steps and crashed with several seeds: the log
/// must reopen, keep every durable entry and hold nothing never appended.
fn crash_during_the_sync_after(setup: &[Op]) {
    let prepare = |disk: &SimDisk, model: &mut Model| {
        let mut log = Some(open(disk).expect("open"));
        for op in setup {
            apply(op, disk, &mut log, model);
        }
        let mut log = log.expect("open");
        let entries = model.next_entries(&[1000, 30, 700]);
        log.append(&entries).expect("append");
        model.entries.extend(entries);
        log
    };
    let full = SimDisk::new();
    let mut log = prepare(&full, &mut Model::new());
    let before = full.mutations();
    run(log.sync()).expect("the final sync runs without faults");
    let steps = full.mutations() - before;
    for halt in 0..=steps {
        for seed in 0..12 {
            let disk = SimDisk::new();
            let mut model = Model::new();
            let mut log = prepare(&disk, &mut model);
            disk.halt_after_mutations(halt);
            let synced = run(log.sync());
            assert_eq!(synced.is_ok(), halt == steps, "halt after {halt}");
            drop(log);
            disk.crash(halt * 101 + seed);
            let mut log = open(&disk)
                .unwrap_or_else(|e| panic!("halt after {halt}, seed {seed}: reopen failed: {e}"));
            if let Some(loss) = log.tail_loss() {
                assert_eq!(loss.last_index, log.last_index(), "halt after {halt}");
                assert!(loss.frames_dropped >= 1, "halt after {halt}");
            }
            model.adopt_recovered(&mut log);
        }
    }
}

fn thirty_entries_then_truncate_at_10() -> Vec<Op> {
    vec![
        Op::Append(vec![200; 30]),
        Op::Sync,
        Op::Truncate(9),
        Op::NewTerm,
    ]
}

#[test]
fn a_torn_write_after_a_truncation_is_not_taken_for_corruption() {
    crash_during_the_sync_after(&thirty_entries_then_truncate_at_10());
}

#[test]
fn a_torn_write_after_truncating_back_to_a_segment_end_is_not_taken_for_corruption() {
    let mut setup = thirty_entries_then_truncate_at_10();
    // The replacement goes to a new segment; cutting it away again leaves the
    // first segment as the tail, ending where its cut-off frames begin.
    setup.extend([
        Op::Append(vec![200; 3]),
        Op::Sync,
        Op::Truncate(9),
        Op::NewTerm,
    ]);
    crash_during_the_sync_after(&setup);
}

#[test]
fn a_segment_whose_first_write_failed_is_retired_not_left_empty() {
    let disk = SimDisk::new();
    // 68 frames of 240 bytes fill the first 16 KiB segment: the next frame
    // needs a new one.
    let mut log = filled_log(&disk, 68, 200);
    disk.inject(Fault {
        op: DiskOp::Write,
        path_contains: segment_name(2),
        // The first write to the new segment zero-fills it; the second one,
        // carrying frames, fails.
        skip: 1,
        error: FaultError::NoSpace,
    });
    let more = entries(69..=78, 1, 200);
    log.append(&more).expect("append");
    assert!(run(log.sync()).expect_err("injected").is_no_space());
    assert_eq!(log.durable_index(), 68);
    assert_eq!(run(log.sync()).expect("sync after the fault"), 78);
    let names = run(storage::Disk::list_dir(&disk, Path::new(DIR))).expect("list");
    assert!(
        !names.contains(&segment_name(2)),
        "the empty segment is retired: {names:?}"
    );
    drop(log);
    let log = open(&disk).expect("reopen");
    assert_eq!(log.last_index(), 78);
    assert_eq!(all_entries(&log)[68..], more[..]);
}

/// Bytes of one frame of `filled_log(_, _, 100)`.
const FRAME_OF_100: u64 = 40 + 100;

#[test]
fn a_clean_log_reports_no_tail_loss() {
    let disk = SimDisk::new();
    assert_eq!(open(&disk).expect("open empty").tail_loss(), None);
    drop(filled_log(&disk, 50, 100));
    let log = open(&disk).expect("reopen");
    assert_eq!(log.last_index(), 50);
    assert_eq!(
        log.tail_loss(),
        None,
        "zeros after the last frame are no loss"
    );
    // Frames cut off by a truncation stay behind the cut: no loss either.
    let disk = SimDisk::new();
    let mut log = filled_log(&disk, 30, 200);
    run(log.truncate_suffix(10)).expect("truncate");
    log.append(&entries(10..=12, 2, 200)).expect("append");
    run(log.sync()).expect("sync");
    drop(log);
    assert_eq!(open(&disk).expect("reopen").tail_loss(), None);
}

#[test]
fn bytes_cut_off_the_tail_are_reported_with_file_offset_and_frames() {
    let count = 50;
    let end = count * FRAME_OF_100;
    let disk = SimDisk::new();
    drop(filled_log(&disk, count, 100));
    let path = segment_path(1);
    let original = disk.file_bytes(&path).expect("segment");
    for cut in (end - 600..end).step_by(7) {
        let whole = cut / FRAME_OF_100;
        let into_frame = cut % FRAME_OF_100;
        // A torn write: the bytes from the cut on are zeros.
        let mut torn = original.clone();
        torn[cut as usize..].fill(0);
        // A file cut short.
        let short = original[..cut as usize].to_vec();
        for (what, bytes) in [("zeroed", torn), ("cut short", short)] {
            disk.set_file_bytes(&path, bytes).expect("damage");
            let log = open(&disk).unwrap_or_else(|e| panic!("{what} at {cut}: {e}"));
            assert_eq!(log.last_index(), whole, "{what} at {cut}");
            let Some(loss) = log.tail_loss() else {
                // Zeros over the whole frame, or over all but a prefix of
                // its magic number, leave nothing to recognise.
                assert!(
                    what == "zeroed" && into_frame < 4,
                    "{what} at {cut} ({into_frame} bytes into frame {}) went unreported",
                    whole + 1
                );
                continue;
            };
            assert_eq!(loss.path, path, "{what} at {cut}");
            assert_eq!(loss.offset, whole * FRAME_OF_100, "{what} at {cut}");
            assert_eq!(loss.last_index, whole, "{what} at {cut}");
            assert_eq!(loss.frames_dropped, 1, "{what} at {cut}");
            if what == "cut short" {
                assert_eq!(loss.damage, TailDamage::CutShort, "at {cut}");
            }
            let text = loss.to_string();
            assert!(
                text.contains(&path.display().to_string())
                    && text.contains(&format!("offset {}", loss.offset)),
                "{text}"
            );
        }
    }
}

#[test]
fn a_tail_frame_failing_its_checksum_is_reported() {
    let disk = SimDisk::new();
    drop(filled_log(&disk, 50, 100));
    disk.flip_bit(&segment_path(1), 49 * FRAME_OF_100 + 60, 0)
        .expect("flip");
    let log = open(&disk).expect("open");
    assert_eq!(log.last_index(), 49);
    let loss = log.tail_loss().expect("reported");
    assert_eq!(loss.path, segment_path(1));
    assert_eq!(loss.offset, 49 * FRAME_OF_100);
    assert_eq!((loss.frames_dropped, loss.last_index), (1, 49));
    assert_eq!(loss.damage, TailDamage::Checksum);

    // Several damaged frames in a row are counted.
    let disk = SimDisk::new();
    drop(filled_log(&disk, 50, 100));
    for victim in 46..50 {
        disk.flip_bit(&segment_path(1), victim * FRAME_OF_100 + 70, 2)
            .expect("flip");
    }
    let log = open(&disk).expect("open");
    let loss = log.tail_loss().expect("reported");
    assert_eq!((loss.offset, loss.frames_dropped), (46 * FRAME_OF_100, 4));
    assert_eq!(loss.last_index, 46);

    // A damaged magic number on the next frame is still recognised.
    let disk = SimDisk::new();
    drop(filled_log(&disk, 50, 100));
    disk.flip_bit(&segment_path(1), 49 * FRAME_OF_100 + 1, 4)
        .expect("flip");
    let loss = open(&disk).expect("open").tail_loss().cloned();
    assert_eq!(loss.map(|l| l.damage), Some(TailDamage::Header));
}

#[test]
fn frames_left_in_a_recycled_file_are_not_taken_for_loss() {
    // The frames of indexes 10.. written under segment 1, as a truncated
    // segment recycled into segment 2 holds them until its first write.
    let old = SimDisk::new();
    drop(filled_log(&old, 30, 100));
    let stale = old.file_bytes(&segment_path(1)).expect("segment")[9 * 140..].to_vec();
    let disk = SimDisk::new();
    drop(filled_log(&disk, 9, 100));
    let mut second = stale;
    second.resize(config().segment_size_bytes as usize, 0);
    disk.set_file_bytes(&segment_path(2), second)
        .expect("recycled file");
    let log = open(&disk).expect("open");
    assert_eq!(log.last_index(), 9);
    assert_eq!(log.tail_loss(), None);
}
