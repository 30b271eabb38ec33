//! The log on real files through io_uring (glommio DMA files): round trips,
//! files cut at many offsets, and bytes corrupted at many offsets, including
//! in the middle of the log, which must be detected.

use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use storage::{segment_name, DmaDisk, Entry, Error, Log, LogConfig};

const PAYLOAD_BYTES: usize = 200;
const FRAME_BYTES: u64 = 40 + PAYLOAD_BYTES as u64;

fn in_executor<T>(future: impl Future<Output = T>) -> T {
    storage::raise_memlock_limit().expect("RLIMIT_MEMLOCK");
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor")
        .run(future)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("log-dma-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

fn config() -> LogConfig {
    LogConfig {
        segment_size_bytes: 64 << 10,
        max_recycled_segments: 2,
        max_unsynced_bytes: 8 << 20,
        spare_segments: 0,
    }
}

fn entry(index: u64, term: u64) -> Entry {
    let mut payload = vec![(index % 251) as u8; PAYLOAD_BYTES];
    payload[..8].copy_from_slice(&index.to_le_bytes());
    Entry {
        term,
        index,
        payload: Bytes::from(payload),
    }
}

async fn open(dir: &Path) -> Result<Log<DmaDisk>, Error> {
    Log::open(DmaDisk, dir, config()).await
}

async fn everything(log: &Log<DmaDisk>) -> Vec<Entry> {
    log.read(log.first_index(), log.last_index() + 1, usize::MAX)
        .await
        .expect("read")
}

#[test]
fn round_trip_across_segments_with_truncation_and_compaction() {
    let dir = temp_dir();
    in_executor(async {
        let mut log = open(dir.path()).await.expect("open");
        let mut expected = Vec::new();
        for batch in 0..40u64 {
            let entries: Vec<Entry> = (0..25).map(|k| entry(batch * 25 + k + 1, 1)).collect();
            log.append(&entries).expect("append");
            expected.extend(entries);
            assert_eq!(log.sync().await.expect("sync"), (batch + 1) * 25);
        }
        assert_eq!(everything(&log).await, expected);
        log.truncate_suffix(901).await.expect("truncate");
        expected.truncate(900);
        let replacement: Vec<Entry> = (901..=950).map(|i| entry(i, 2)).collect();
        log.append(&replacement).expect("append");
        expected.extend(replacement);
        assert_eq!(log.sync().await.expect("sync"), 950);
        log.compact_prefix(500).await.expect("compact");
        drop(log);

        let mut log = open(dir.path()).await.expect("reopen");
        assert!(log.first_index() <= 501);
        log.compact_prefix(500).await.expect("compact again");
        assert_eq!(log.last_index(), 950);
        assert_eq!(everything(&log).await, expected[500..].to_vec());
        assert_eq!(log.term(950), Some(2));
        assert_eq!(log.term(900), Some(1));
    });
}

/// Writes `count` entries into one segment and returns the segment's path.
fn one_segment(dir: &Path, count: u64) -> PathBuf {
    in_executor(async {
        let mut log = open(dir).await.expect("open");
        let entries: Vec<Entry> = (1..=count).map(|i| entry(i, 1)).collect();
        log.append(&entries).expect("append");
        assert_eq!(log.sync().await.expect("sync"), count);
    });
    let path = dir.join(segment_name(1));
    assert!(path.exists());
    path
}

#[test]
fn files_cut_at_many_offsets_recover_every_whole_frame() {
    let dir = temp_dir();
    let count = 60;
    let path = one_segment(dir.path(), count);
    let original = std::fs::read(&path).expect("read segment");
    let end = count * FRAME_BYTES;
    let mut cuts: Vec<u64> = (0..=end + 600).step_by(41).collect();
    cuts.extend([512, 4096, 8192, end - 1, end, end + 1]);
    in_executor(async {
        for cut in cuts {
            std::fs::write(&path, &original[..cut as usize]).expect("restore and cut");
            let mut log = open(dir.path())
                .await
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let whole = (cut / FRAME_BYTES).min(count);
            assert_eq!(log.last_index(), whole, "cut at {cut}");
            // A cut inside a frame is reported; a cut between frames or in
            // the zeros after the last one leaves nothing to report.
            let inside = cut < end && cut % FRAME_BYTES != 0;
            match log.tail_loss() {
                Some(loss) => {
                    assert!(inside, "cut at {cut} between frames reported: {loss}");
                    assert_eq!((loss.offset, loss.last_index), (whole * FRAME_BYTES, whole));
                    assert_eq!(loss.path, path);
                }
                None => assert!(!inside, "cut at {cut} inside a frame went unreported"),
            }
            let got = everything(&log).await;
            assert!(got.iter().zip(1..).all(|(e, i)| *e == entry(i, 1)));
            // The log goes on after a cut.
            log.append(&[entry(whole + 1, 1)]).expect("append");
            assert_eq!(log.sync().await.expect("sync"), whole + 1);
            drop(log);
            std::fs::remove_file(dir.path().join(segment_name(2))).ok();
        }
    });
}

#[test]
fn bytes_corrupted_at_many_offsets_are_detected() {
    let dir = temp_dir();
    let count = 60;
    let path = one_segment(dir.path(), count);
    let original = std::fs::read(&path).expect("read segment");
    let end = count * FRAME_BYTES;
    in_executor(async {
        for offset in (0..end).step_by(29) {
            let mut bytes = original.clone();
            bytes[offset as usize] ^= 0x20;
            std::fs::write(&path, &bytes).expect("corrupt");
            let victim = offset / FRAME_BYTES;
            match open(dir.path()).await {
                Ok(log) if victim == count - 1 => {
                    // The last frame is indistinguishable from a torn write,
                    // and reported as one.
                    assert_eq!(log.last_index(), count - 1);
                    let loss = log.tail_loss().unwrap_or_else(|| {
                        panic!("corruption at {offset} in the last frame went unreported")
                    });
                    assert_eq!(loss.offset, victim * FRAME_BYTES);
                }
                Ok(log) => panic!(
                    "corruption at {offset} (frame {victim}) missed; last {}",
                    log.last_index()
                ),
                Err(Error::Corrupt {
                    path: named,
                    offset: at,
                    ..
                }) => {
                    assert_eq!(named, path, "the error names the segment");
                    assert_eq!(at, victim * FRAME_BYTES, "the error names the frame offset");
                }
                Err(other) => panic!("corruption at {offset}: unexpected {other}"),
            }
        }
        // A lost sector in the middle (zeros where frames were) is detected too.
        let mut bytes = original.clone();
        bytes[4096..4608].fill(0);
        std::fs::write(&path, &bytes).expect("zero a sector");
        assert!(matches!(open(dir.path()).await, Err(Error::Corrupt { .. })));
    });
}

#[test]
fn meta_and_snapshots_on_real_files() {
    use storage::{HardState, MetaStore, SnapshotStore};
    let dir = temp_dir();
    in_executor(async {
        let mut meta = MetaStore::open(DmaDisk, dir.path())
            .await
            .expect("open meta");
        for term in 1..=3 {
            let state = HardState {
                term,
                voted_for: 2,
                commit: term * 5,
                extra: [0; 5],
            };
            meta.store(state).await.expect("store");
        }
        drop(meta);
        let meta = MetaStore::open(DmaDisk, dir.path())
            .await
            .expect("reopen meta");
        assert_eq!((meta.get().term, meta.get().commit), (3, 15));

        let snapshots = dir.path().join("snapshots");
        let mut store = SnapshotStore::open(DmaDisk, &snapshots, 2)
            .await
            .expect("open");
        let mut writer = store.begin(100, 4).await.expect("begin");
        let chunks = [vec![1u8; 10_000], vec![2u8; 333]];
        for chunk in &chunks {
            store.write_chunk(&mut writer, chunk).await.expect("chunk");
        }
        store.finish(writer, None).await.expect("finish");
        drop(store);
        let store = SnapshotStore::open(DmaDisk, &snapshots, 2)
            .await
            .expect("reopen");
        assert_eq!(store.latest().expect("latest").index, 100);
        for (n, chunk) in chunks.iter().enumerate() {
            assert_eq!(
                store.read_chunk(100, 4, n).await.expect("read").as_ref(),
                chunk.as_slice()
            );
        }
    });
}
