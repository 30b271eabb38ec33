//! The metadata store and the snapshot store on the simulated disk: crashes at
//! every I/O step, torn slots, corruption and checksum checks.

use std::future::Future;
use std::path::Path;

use futures::FutureExt;
use storage::{
    DiskOp, Error, Fault, FaultError, HardState, MetaStore, SimDisk, SnapshotStore, META_FILE_NAME,
};

const DIR: &str = "/data/partition-7";
const SNAPSHOTS: &str = "/data/partition-7/snapshots";

fn run<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("SimDisk futures complete on their first poll")
}

fn state(term: u64) -> HardState {
    HardState {
        term,
        voted_for: term % 3 + 1,
        commit: term * 10,
        extra: [term; 5],
    }
}

#[test]
fn meta_store_round_trips_and_alternates_slots() {
    let disk = SimDisk::new();
    let mut meta = run(MetaStore::open(disk.clone(), DIR)).expect("open");
    assert_eq!(meta.get(), HardState::default());
    for term in 1..=5 {
        run(meta.store(state(term))).expect("store");
        assert_eq!(meta.get(), state(term));
    }
    drop(meta);
    let meta = run(MetaStore::open(disk.clone(), DIR)).expect("reopen");
    assert_eq!(meta.get(), state(5));
    // Both slots hold a state: the older one is the previous generation.
    let bytes = disk
        .file_bytes(&Path::new(DIR).join(META_FILE_NAME))
        .expect("file");
    assert_eq!(bytes.len(), 8192);
    assert!(bytes[..96].iter().any(|b| *b != 0) && bytes[4096..4192].iter().any(|b| *b != 0));
}

#[test]
fn meta_store_survives_a_crash_at_every_step_with_the_old_or_new_state() {
    let full = SimDisk::new();
    let mut meta = run(MetaStore::open(full.clone(), DIR)).expect("open");
    for term in 1..=6 {
        run(meta.store(state(term))).expect("store");
    }
    let steps = full.mutations();
    for step in 0..=steps {
        for seed in 0..4 {
            let disk = SimDisk::new();
            disk.halt_after_mutations(step);
            let mut stored = 0;
            if let Ok(mut meta) = run(MetaStore::open(disk.clone(), DIR)) {
                for term in 1..=6 {
                    if run(meta.store(state(term))).is_err() {
                        break;
                    }
                    stored = term;
                }
            }
            disk.crash(step * 10 + seed);
            let meta = run(MetaStore::open(disk.clone(), DIR)).expect("reopen after crash");
            let got = meta.get();
            let acceptable = if stored == 0 {
                got == HardState::default() || got == state(1)
            } else {
                got == state(stored) || got == state(stored + 1)
            };
            assert!(
                acceptable,
                "step {step}: stored {stored}, recovered {got:?}"
            );
        }
    }
}

#[test]
fn meta_store_with_both_slots_corrupt_is_an_error() {
    let disk = SimDisk::new();
    let mut meta = run(MetaStore::open(disk.clone(), DIR)).expect("open");
    run(meta.store(state(1))).expect("store");
    run(meta.store(state(2))).expect("store");
    drop(meta);
    let path = Path::new(DIR).join(META_FILE_NAME);
    disk.flip_bit(&path, 20, 1).expect("flip");
    assert_eq!(
        run(MetaStore::open(disk.clone(), DIR))
            .expect("one slot left")
            .get(),
        state(1)
    );
    disk.flip_bit(&path, 4096 + 30, 1).expect("flip");
    assert!(matches!(
        run(MetaStore::open(disk.clone(), DIR)),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn meta_store_refuses_writes_after_a_failed_fdatasync() {
    let disk = SimDisk::new();
    let mut meta = run(MetaStore::open(disk.clone(), DIR)).expect("open");
    disk.inject(Fault {
        op: DiskOp::Sync,
        path_contains: META_FILE_NAME.into(),
        skip: 0,
        error: FaultError::Io,
    });
    assert!(run(meta.store(state(1))).is_err());
    assert!(matches!(
        run(meta.store(state(1))),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(meta.get(), HardState::default());
}

fn chunks(seed: u8) -> Vec<Vec<u8>> {
    vec![
        vec![seed; 5000],
        (0..3000u32).map(|i| (i % 256) as u8 ^ seed).collect(),
        vec![],
        vec![seed.wrapping_add(1); 1],
    ]
}

fn write_snapshot(store: &mut SnapshotStore<SimDisk>, index: u64, term: u64) -> Result<(), Error> {
    let mut writer = run(store.begin(index, term))?;
    for chunk in chunks(index as u8) {
        run(store.write_chunk(&mut writer, &chunk))?;
    }
    run(store.finish(writer, None)).map(|_| ())
}

#[test]
fn snapshots_round_trip_in_chunks_and_only_the_newest_are_kept() {
    let disk = SimDisk::new();
    let mut store = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 2)).expect("open");
    for index in [10, 20, 30] {
        write_snapshot(&mut store, index, 2).expect("snapshot");
    }
    drop(store);
    let store = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 2)).expect("reopen");
    let kept: Vec<u64> = store.list().iter().map(|m| m.index).collect();
    assert_eq!(kept, vec![20, 30]);
    let latest = store.latest().expect("latest").clone();
    assert_eq!((latest.index, latest.term), (30, 2));
    let expected = chunks(30);
    assert_eq!(
        latest.total_bytes,
        expected.iter().map(|c| c.len() as u64).sum::<u64>()
    );
    for (n, chunk) in expected.iter().enumerate() {
        assert_eq!(
            run(store.read_chunk(30, 2, n)).expect("chunk").as_ref(),
            chunk.as_slice()
        );
    }
    assert_eq!(latest.checksum, crc32c::crc32c(&expected.concat()));
    assert!(
        run(store.read_chunk(10, 2, 0)).is_err(),
        "pruned snapshot is gone"
    );
}

#[test]
fn a_snapshot_is_installed_from_received_chunks_only_if_checksums_match() {
    let source_disk = SimDisk::new();
    let mut source = run(SnapshotStore::open(source_disk, SNAPSHOTS, 2)).expect("open");
    write_snapshot(&mut source, 40, 3).expect("snapshot");
    let meta = source.latest().expect("latest").clone();

    let disk = SimDisk::new();
    let mut target = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 2)).expect("open");
    let mut writer = run(target.begin(meta.index, meta.term)).expect("begin");
    for n in 0..meta.chunk_lengths.len() {
        let chunk = run(source.read_chunk(40, 3, n)).expect("read");
        run(target.write_chunk(&mut writer, &chunk)).expect("write");
    }
    let installed = run(target.finish(writer, Some(meta.checksum))).expect("install");
    assert_eq!(installed, meta);

    let mut writer = run(target.begin(50, 3)).expect("begin");
    run(target.write_chunk(&mut writer, b"not what was sent")).expect("write");
    let refused = run(target.finish(writer, Some(meta.checksum)));
    assert!(matches!(refused, Err(Error::Snapshot { .. })));
    assert_eq!(target.latest().expect("latest").index, 40);
}

#[test]
fn a_crash_at_every_step_leaves_no_snapshot_or_a_complete_one() {
    let full = SimDisk::new();
    let mut store = run(SnapshotStore::open(full.clone(), SNAPSHOTS, 1)).expect("open");
    write_snapshot(&mut store, 10, 1).expect("first");
    let before = full.mutations();
    write_snapshot(&mut store, 20, 1).expect("second");
    let steps = full.mutations() - before;
    for step in 0..=steps {
        let disk = SimDisk::new();
        let mut store = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 1)).expect("open");
        write_snapshot(&mut store, 10, 1).expect("first");
        disk.halt_after_mutations(step);
        let finished = write_snapshot(&mut store, 20, 1).is_ok();
        disk.crash(step);
        let store = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 1)).expect("reopen");
        let latest = store
            .latest()
            .expect("a complete snapshot survives")
            .clone();
        if finished {
            assert_eq!(latest.index, 20, "step {step}");
        }
        let got: Vec<u8> = (0..latest.chunk_lengths.len())
            .flat_map(|n| {
                run(store.read_chunk(latest.index, 1, n))
                    .expect("chunk")
                    .to_vec()
            })
            .collect();
        assert_eq!(got, chunks(latest.index as u8).concat(), "step {step}");
    }
}

#[test]
fn a_corrupt_chunk_is_reported_not_returned() {
    let disk = SimDisk::new();
    let mut store = run(SnapshotStore::open(disk.clone(), SNAPSHOTS, 1)).expect("open");
    write_snapshot(&mut store, 10, 1).expect("snapshot");
    let chunk = Path::new(SNAPSHOTS)
        .join(format!("{:020}-{:020}", 10, 1))
        .join("chunk-00000001");
    disk.flip_bit(&chunk, 100, 4).expect("flip");
    assert!(matches!(
        run(store.read_chunk(10, 1, 1)),
        Err(Error::Corrupt { .. })
    ));
}
