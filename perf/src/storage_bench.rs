//! `waggle-perf storage`: durable appends to the log against two baselines
//! measured in the same run, on the same directory.
//!
//! - Baseline (a), the latency floor: 4 KiB O_DIRECT `pwrite` + `fdatasync` in a
//!   loop over a preallocated, already written file.
//! - Baseline (b), the bandwidth ceiling: O_DIRECT sequential 256 KiB writes,
//!   each followed by `fdatasync`, over the same kind of file.
//! - Appends: `Log<DmaDisk>` (io_uring) with records of 128 B, 1 KiB and 16 KiB
//!   at concurrency 1, 16 and 256. Concurrency C means C appends outstanding in
//!   a closed loop: each is resubmitted as soon as it is durable, so one group
//!   commit (one write, one `fdatasync`) serves the C waiting appends. Latency
//!   is from the append to the sync that made it durable (hdrhistogram).
//!
//! Both baselines are also measured through the log's own I/O path (glommio
//! DMA file, io_uring, polled completions), which shows what the disk costs
//! without the scheduler's wake-up latency of a thread sleeping in a system
//! call. The two target comparisons (c1 1 KiB against (a), c256 1 KiB
//! against (b)) run in alternating slices, baselines then appends, so that
//! all sides see the same disk and CPU conditions. The log is compacted as it goes, so segment
//! files are recycled as in steady state; a warm-up run creates the first
//! segments before anything is measured.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use storage::{frame, Disk, DiskFile, DmaDisk, DmaDiskFile, Entry, Log, LogConfig};

/// Records sizes measured, in bytes, with their labels.
const RECORD_SIZES: [(usize, &str); 3] = [(128, "128b"), (1024, "1k"), (16 << 10, "16k")];
/// Concurrency levels measured.
const CONCURRENCIES: [u64; 3] = [1, 16, 256];
/// Size of the preallocated baseline file.
const BASELINE_FILE_BYTES: u64 = 64 << 20;
/// Write size of baseline (a).
const BASELINE_LATENCY_WRITE_BYTES: usize = 4 << 10;
/// Write size of baseline (b).
const BASELINE_BANDWIDTH_WRITE_BYTES: usize = 256 << 10;
/// Upper bound on the operations of one measurement, whatever its duration.
const MAX_OPS_PER_RUN: u64 = 5_000_000;
/// Largest latency the histograms hold, in nanoseconds.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Alternating slices of a paired baseline and append measurement.
const PAIRED_SLICES: u32 = 6;
/// O_DIRECT buffer alignment.
const DIRECT_ALIGN_BYTES: usize = 4096;

/// Options of this subcommand.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per measurement (11 in all: 2 baselines, 9 append cells).
    #[arg(long, default_value_t = 3)]
    duration_s: u64,
    /// Print one JSON object on stdout (the table still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Directory under which a scratch directory is created and removed
    /// afterwards; default: the current directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Segment size of the log, in MiB.
    #[arg(long, default_value_t = 64)]
    segment_size_mib: u64,
}

/// Latency percentiles in microseconds and throughput of one measurement.
struct Figures {
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    ops_s: f64,
    mib_s: f64,
}

/// What a measurement accumulates, possibly over several time slices.
struct Tally {
    latencies: Histogram<u64>,
    ops: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .context("histogram bounds")?,
            ops: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        })
    }

    /// Records `count` operations that all took from `began` until now.
    fn record_since(&mut self, began: Instant, count: u64) {
        let latency_ns = began.elapsed().as_nanos() as u64;
        self.latencies.saturating_record_n(latency_ns, count);
    }

    /// Adds a run of `ops` operations of `op_bytes` each, started at `start`.
    fn add_run(&mut self, ops: u64, op_bytes: usize, start: Instant) {
        self.ops += ops;
        self.bytes += ops * op_bytes as u64;
        self.elapsed += start.elapsed();
    }

    fn figures(&self) -> Figures {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let us = |q| self.latencies.value_at_quantile(q) as f64 / 1000.0;
        Figures {
            p50_us: us(0.50),
            p99_us: us(0.99),
            p999_us: us(0.999),
            ops_s: self.ops as f64 / secs,
            mib_s: self.bytes as f64 / secs / (1 << 20) as f64,
        }
    }
}

/// A zeroed buffer of `len` bytes aligned for O_DIRECT, carved out of a Vec.
struct AlignedBuf {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize, fill: u8) -> AlignedBuf {
        let mut storage = vec![fill; len + DIRECT_ALIGN_BYTES];
        let offset = storage.as_mut_ptr().align_offset(DIRECT_ALIGN_BYTES);
        AlignedBuf {
            storage,
            offset,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }
}

/// Creates `path` with O_DIRECT and writes it full, then syncs it, so that
/// later overwrites need no block allocation.
fn prewritten_file(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .with_context(|| format!("creating {} with O_DIRECT", path.display()))?;
    let chunk = AlignedBuf::new(1 << 20, 0x5a);
    let mut pos = 0;
    while pos < BASELINE_FILE_BYTES {
        file.write_all_at(chunk.bytes(), pos)
            .with_context(|| format!("writing {}", path.display()))?;
        pos += chunk.len as u64;
    }
    file.sync_all()
        .with_context(|| format!("fsync of {}", path.display()))?;
    Ok(file)
}

/// The baseline file and where its next write goes.
struct Baseline {
    file: File,
    next_write: u64,
}

impl Baseline {
    /// Writes `write_bytes` blocks sequentially (wrapping) with an
    /// `fdatasync` after each, for `duration`.
    fn write_sync_loop(
        &mut self,
        write_bytes: usize,
        duration: Duration,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let buffer = AlignedBuf::new(write_bytes, 0xa5);
        let slots = BASELINE_FILE_BYTES / write_bytes as u64;
        let start = Instant::now();
        let mut ops = 0;
        while start.elapsed() < duration && ops < MAX_OPS_PER_RUN {
            let began = Instant::now();
            let pos = (self.next_write % slots) * write_bytes as u64;
            self.file
                .write_all_at(buffer.bytes(), pos)
                .context("baseline pwrite")?;
            self.file.sync_data().context("baseline fdatasync")?;
            tally.record_since(began, 1);
            self.next_write += 1;
            ops += 1;
        }
        tally.add_run(ops, write_bytes, start);
        Ok(())
    }
}

/// The same baseline through the log's own I/O path: a glommio DMA file
/// (io_uring, O_DIRECT), whose reactor polls for completions instead of
/// sleeping in a system call. On a busy machine a sleeping thread waits for
/// the scheduler after every completion; this baseline shows what the disk
/// costs without that wait.
struct UringBaseline {
    file: DmaDiskFile,
    next_write: u64,
}

impl UringBaseline {
    async fn open(path: &Path) -> anyhow::Result<UringBaseline> {
        let file = DmaDisk
            .open(path, true)
            .await
            .with_context(|| format!("creating {}", path.display()))?;
        let chunk = vec![0x5au8; 1 << 20];
        let mut pos = 0;
        while pos < BASELINE_FILE_BYTES {
            file.write_at(pos, &chunk)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            pos += chunk.len() as u64;
        }
        file.fdatasync()
            .await
            .with_context(|| format!("fdatasync of {}", path.display()))?;
        Ok(UringBaseline {
            file,
            next_write: 0,
        })
    }

    /// As [`Baseline::write_sync_loop`], through io_uring.
    async fn write_sync_loop(
        &mut self,
        write_bytes: usize,
        duration: Duration,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let buffer = vec![0xa5u8; write_bytes];
        let slots = BASELINE_FILE_BYTES / write_bytes as u64;
        let start = Instant::now();
        let mut ops = 0;
        while start.elapsed() < duration && ops < MAX_OPS_PER_RUN {
            let began = Instant::now();
            let pos = (self.next_write % slots) * write_bytes as u64;
            self.file
                .write_at(pos, &buffer)
                .await
                .context("io_uring baseline write")?;
            self.file
                .fdatasync()
                .await
                .context("io_uring baseline fdatasync")?;
            tally.record_since(began, 1);
            self.next_write += 1;
            ops += 1;
        }
        tally.add_run(ops, write_bytes, start);
        Ok(())
    }
}

/// Closed-loop durable appends: `concurrency` records per group commit.
async fn append_loop(
    log: &mut Log<DmaDisk>,
    record_bytes: usize,
    concurrency: u64,
    duration: Duration,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let payload = Bytes::from(vec![0xa5u8; record_bytes]);
    let keep_entries = log_keep_entries(log, record_bytes);
    let mut entries = Vec::with_capacity(concurrency as usize);
    let start = Instant::now();
    let mut records = 0;
    while start.elapsed() < duration && records < MAX_OPS_PER_RUN {
        let began = Instant::now();
        let first = log.last_index() + 1;
        entries.clear();
        entries.extend((0..concurrency).map(|k| Entry {
            term: 1,
            index: first + k,
            payload: payload.clone(),
        }));
        log.append(&entries)?;
        let durable = log.sync().await?;
        let latency_ns = began.elapsed().as_nanos() as u64;
        ensure!(
            durable == first + concurrency - 1,
            "sync left entries behind"
        );
        tally.latencies.saturating_record_n(latency_ns, concurrency);
        records += concurrency;
        let last = log.last_index();
        if last - log.first_index() > keep_entries {
            log.compact_prefix(last - keep_entries).await?;
        }
    }
    tally.add_run(records, record_bytes, start);
    Ok(())
}

/// Entries of `record_bytes` kept in the log: about one segment's worth, so
/// that compaction recycles segment files as in steady state.
fn log_keep_entries(log: &Log<DmaDisk>, record_bytes: usize) -> u64 {
    log.config().segment_size_bytes / frame::frame_bytes(record_bytes) as u64
}

/// The figures of one paired comparison.
struct Paired {
    baseline: Figures,
    uring_baseline: Figures,
    append: Figures,
}

/// Runs both baselines and an append measurement in alternating slices, so
/// that all three see the same disk and CPU conditions (other processes'
/// I/O shows up in the flush latency of a shared device, and their CPU use
/// in the wake-up latency of a thread sleeping in a system call).
async fn paired(
    baselines: &mut (Baseline, UringBaseline),
    baseline_write_bytes: usize,
    log: &mut Log<DmaDisk>,
    record_bytes: usize,
    concurrency: u64,
    duration: Duration,
) -> anyhow::Result<Paired> {
    let slice = duration / PAIRED_SLICES;
    let mut base = Tally::new()?;
    let mut uring = Tally::new()?;
    let mut append = Tally::new()?;
    for _ in 0..PAIRED_SLICES {
        baselines
            .0
            .write_sync_loop(baseline_write_bytes, slice, &mut base)?;
        baselines
            .1
            .write_sync_loop(baseline_write_bytes, slice, &mut uring)
            .await?;
        append_loop(log, record_bytes, concurrency, slice, &mut append).await?;
    }
    Ok(Paired {
        baseline: base.figures(),
        uring_baseline: uring.figures(),
        append: append.figures(),
    })
}

fn row(name: &str, f: &Figures) {
    eprintln!(
        "{name:<34} p50 {:>9.1} us  p99 {:>9.1} us  p99.9 {:>9.1} us  {:>10.0} ops/s  {:>8.1} MiB/s",
        f.p50_us, f.p99_us, f.p999_us, f.ops_s, f.mib_s
    );
}

fn put(out: &mut Map<String, Value>, prefix: &str, f: &Figures) {
    out.insert(format!("{prefix}_p50_us"), json!(f.p50_us));
    out.insert(format!("{prefix}_p99_us"), json!(f.p99_us));
    out.insert(format!("{prefix}_p999_us"), json!(f.p999_us));
    out.insert(format!("{prefix}_ops_s"), json!(f.ops_s));
    out.insert(format!("{prefix}_mib_s"), json!(f.mib_s));
}

async fn measure(args: &Args, dir: &Path) -> anyhow::Result<Map<String, Value>> {
    let duration = Duration::from_secs(args.duration_s);
    let mut out = Map::new();
    out.insert("duration_s".into(), json!(args.duration_s));
    out.insert("dir".into(), json!(dir.display().to_string()));
    out.insert("paired_slices".into(), json!(PAIRED_SLICES));

    let mut baselines = (
        Baseline {
            file: prewritten_file(&dir.join("baseline.dat"))?,
            next_write: 0,
        },
        UringBaseline::open(&dir.join("baseline-uring.dat")).await?,
    );
    let segment_bytes = args.segment_size_mib << 20;
    let config = LogConfig {
        segment_size_bytes: segment_bytes,
        max_recycled_segments: 4,
        max_unsynced_bytes: 64 << 20,
        spare_segments: 0,
    };
    let mut log = Log::open(DmaDisk, dir.join("log"), config).await?;
    // Warm-up: create the first segments so that measured runs recycle them.
    while log.last_index() * (16 << 10) < 4 * segment_bytes {
        append_loop(
            &mut log,
            16 << 10,
            256,
            Duration::from_millis(1),
            &mut Tally::new()?,
        )
        .await?;
    }

    // The two targets: each append measurement paired with its baselines:
    // (write size, concurrency, row label of the baseline, JSON names).
    let targets = [
        (
            BASELINE_LATENCY_WRITE_BYTES,
            1,
            "(a) 4 KiB pwrite+fdatasync",
            ["baseline_fsync", "baseline_uring_fsync", "append_c1_1k"],
        ),
        (
            BASELINE_BANDWIDTH_WRITE_BYTES,
            256,
            "(b) 256 KiB O_DIRECT+sync",
            [
                "baseline_bandwidth",
                "baseline_uring_bandwidth",
                "append_c256_1k",
            ],
        ),
    ];
    for (write_bytes, concurrency, label, [base_key, uring_key, append_key]) in targets {
        let figures = paired(
            &mut baselines,
            write_bytes,
            &mut log,
            1024,
            concurrency,
            duration,
        )
        .await?;
        row(&format!("baseline {label}"), &figures.baseline);
        row("  same through io_uring", &figures.uring_baseline);
        row(
            &format!("append c{concurrency} 1k (paired)"),
            &figures.append,
        );
        put(&mut out, base_key, &figures.baseline);
        put(&mut out, uring_key, &figures.uring_baseline);
        put(&mut out, append_key, &figures.append);
    }

    for (record_bytes, label) in RECORD_SIZES {
        for concurrency in CONCURRENCIES {
            let key = format!("append_c{concurrency}_{label}");
            if out.contains_key(&format!("{key}_p50_us")) {
                continue;
            }
            let mut tally = Tally::new()?;
            append_loop(&mut log, record_bytes, concurrency, duration, &mut tally).await?;
            let f = tally.figures();
            row(&format!("append c{concurrency} {label}"), &f);
            put(&mut out, &key, &f);
        }
    }
    drop(baselines);
    for name in ["baseline.dat", "baseline-uring.dat"] {
        std::fs::remove_file(dir.join(name)).with_context(|| format!("removing {name}"))?;
    }

    let get = |key: &str| out.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let latency_ratio = get("append_c1_1k_p50_us") / get("baseline_fsync_p50_us");
    let bandwidth_ratio = get("append_c256_1k_mib_s") / get("baseline_bandwidth_mib_s");
    let uring_latency_ratio = get("append_c1_1k_p50_us") / get("baseline_uring_fsync_p50_us");
    let uring_bandwidth_ratio = get("append_c256_1k_mib_s") / get("baseline_uring_bandwidth_mib_s");
    let mut ratios = Map::new();
    for (_, label) in RECORD_SIZES {
        ratios.insert(
            format!("ratio_c1_{label}_p50_vs_fsync_p50"),
            json!(get(&format!("append_c1_{label}_p50_us")) / get("baseline_fsync_p50_us")),
        );
        ratios.insert(
            format!("ratio_c256_{label}_mib_s_vs_bandwidth"),
            json!(get(&format!("append_c256_{label}_mib_s")) / get("baseline_bandwidth_mib_s")),
        );
    }
    ratios.insert(
        "ratio_c1_1k_p50_vs_uring_fsync_p50".into(),
        json!(uring_latency_ratio),
    );
    ratios.insert(
        "ratio_c256_1k_mib_s_vs_uring_bandwidth".into(),
        json!(uring_bandwidth_ratio),
    );
    out.extend(ratios);
    out.insert("target_c1_p50_max_ratio".into(), json!(1.5));
    out.insert("target_c1_p50_met".into(), json!(latency_ratio <= 1.5));
    out.insert("target_c256_1k_min_bandwidth_ratio".into(), json!(0.5));
    out.insert(
        "target_c256_1k_bandwidth_met".into(),
        json!(bandwidth_ratio >= 0.5),
    );
    eprintln!(
        "c1 1k p50 / baseline (a) p50 = {latency_ratio:.2} (target <= 1.5); \
         c256 1k MiB/s / baseline (b) = {bandwidth_ratio:.2} (target >= 0.5)"
    );
    eprintln!(
        "against the io_uring baselines: c1 1k p50 ratio {uring_latency_ratio:.2}, \
         c256 1k bandwidth ratio {uring_bandwidth_ratio:.2}"
    );
    Ok(out)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.duration_s > 0, "--duration-s must be at least 1");
    ensure!(
        (1..=4096).contains(&args.segment_size_mib),
        "--segment-size-mib must be between 1 and 4096"
    );
    storage::raise_memlock_limit()?;
    let name = format!("waggle-perf-storage-{}", std::process::id());
    let dir = match &args.dir {
        Some(parent) => parent.join(name),
        None => PathBuf::from(name),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("perf-storage")
        .make()
        .map_err(|e| anyhow::anyhow!("starting the glommio executor: {e}"))?;
    let result = executor.run(measure(&args, &dir));
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    let out = result?;
    if args.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}
