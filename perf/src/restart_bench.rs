//! `waggle-perf restart`: time from start to `/ready` of a single-node broker
//! after `kill -9`, against the time to read the same data directory
//! sequentially, at one or more data sizes.
//!
//! One run per size, in a fresh directory below `--out`:
//! 1. `waggle dev` (one shard, one partition, default segments; a snapshot
//!    every `SNAPSHOT_EVERY_ENTRIES` applied commands and not by time) is
//!    loaded with `2 × SNAPSHOT_EVERY_ENTRIES - 1` instances of a start → end
//!    process, each carrying `size / SNAPSHOT_EVERY_ENTRIES` bytes of
//!    variables (at least `--min-payload-bytes`). At the kill the log since
//!    the last snapshot holds about `size` bytes of commands, the segments
//!    compacted away wait as recycled files, and the tail segment is usually
//!    one of them, with stale frames behind the last write: the state a busy
//!    broker is in at any moment.
//! 2. The broker gets SIGKILL.
//! 3. Baseline: the page cache is dropped (`echo 3 > /proc/sys/vm/drop_caches`
//!    after `sync`), then every file of the data directory is read front to
//!    back (1 MiB reads, like `cat`).
//! 4. The page cache is dropped again, the broker is started on the same
//!    directory, and the times until `/health` answers and until `/ready`
//!    is 200 are taken from the spawn, and until a new instance is created
//!    (which waits for the replay of every command before it).
//!
//! Reported: data directory bytes, the baseline read, the restart, and
//! restart / read. Restart time growing faster than the data (the ratio
//! rising with the size) means recovery is not linear.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use serde::Serialize;

use node::consensus::SNAPSHOT_EVERY_ENTRIES;

use crate::brokers::{find_waggle, free_port, http_status, stop_children};

/// Process started by the load: start → end, so instances finish at once
/// and the engine state stays small while the log grows.
pub const PROCESS_ID: &str = "restart_bench";
const PROCESS_BPMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="restart_bench" targetNamespace="waggle-perf">
  <bpmn:process id="restart_bench" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"#;
/// Snapshot period of the loaded broker: longer than any load, so that
/// snapshots come only every `SNAPSHOT_EVERY_ENTRIES` commands.
pub const SNAPSHOT_PERIOD_MS: u64 = 6 * 60 * 60 * 1000;
/// Instances created per run: one short of a second snapshot, so the log
/// holds the most commands it ever holds.
pub const INSTANCES: u64 = 2 * SNAPSHOT_EVERY_ENTRIES - 1;
/// Largest data size one run accepts.
pub const MAX_DATA_GB: f64 = 64.0;
/// Largest variable payload per instance (below the gateway's message limit).
pub const MAX_PAYLOAD_BYTES: usize = 2 << 20;
/// Longest the load of one size may take.
pub const MAX_LOAD: Duration = Duration::from_secs(1800);
/// Longest wait for a broker to become ready.
pub const MAX_READY_WAIT: Duration = Duration::from_secs(600);
/// Most create requests in flight while loading.
pub const MAX_IN_FLIGHT: usize = 64;
/// Attempts at one create while the broker pushes back or is not yet
/// serving (20 ms apart).
const MAX_CREATE_ATTEMPTS: usize = 1500;
/// Bytes per read of the baseline.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Interval of the readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Options of `waggle-perf restart`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data sizes in GB (10^9 bytes of commands), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub data_gb: Vec<f64>,
    /// Smallest variables carried by an instance, in bytes.
    #[arg(long, default_value_t = 64)]
    pub min_payload_bytes: usize,
    /// Create requests in flight while loading.
    #[arg(long, default_value_t = 32)]
    pub in_flight: usize,
    /// Instances created per size (default `INSTANCES`: one short of the
    /// second snapshot; fewer for a quick check).
    #[arg(long, default_value_t = INSTANCES)]
    pub instances: u64,
    /// The `waggle` binary (default: `$WAGGLE_BIN`, else beside `waggle-perf`).
    #[arg(long)]
    pub waggle: Option<PathBuf>,
    /// Where the brokers' directories and `restart.json` go.
    #[arg(long, default_value = "perf/out")]
    pub out: PathBuf,
    /// Leave the page cache alone (the read and the restart may then be
    /// served from memory).
    #[arg(long)]
    pub no_drop_caches: bool,
    /// Write the figures into this RESULTS.md (section `RESTART_SECTION`).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Variables per instance for `gb` of commands in the log.
fn payload_bytes(gb: f64, min: usize) -> usize {
    ((gb * 1e9) as u64 / SNAPSHOT_EVERY_ENTRIES).max(min as u64) as usize
}

/// Figures of one size.
#[derive(Debug, Clone, Serialize)]
pub struct RestartRun {
    /// Size asked for, in GB.
    pub target_gb: f64,
    /// Variables per instance, in bytes.
    pub payload_bytes: usize,
    /// Instances created by the load.
    pub instances: u64,
    /// Seconds the load took.
    pub load_s: f64,
    /// Bytes of all files in the data directory at the kill.
    pub data_bytes: u64,
    /// Files in the data directory at the kill.
    pub files: u64,
    /// Seconds to read every file of the data directory (baseline).
    pub read_s: f64,
    /// Seconds from spawn until `/health` answered (any status).
    pub health_answer_s: f64,
    /// Seconds from spawn until `/ready` was 200.
    pub ready_s: f64,
    /// Seconds from spawn until a new instance was created.
    pub served_s: f64,
    /// `ready_s / read_s`.
    pub ratio: f64,
    /// Whether the page cache was dropped before the read and the restart.
    pub caches_dropped: bool,
    /// Load average before the load and after the restart.
    pub load_average: (String, String),
}

/// Heading of the section `--markdown` writes (and `waggle-perf results`
/// keeps).
pub const RESTART_SECTION: &str = "## Restart to ready";

/// Runs `waggle-perf restart`.
pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        !args.data_gb.is_empty(),
        "--data-gb needs at least one size"
    );
    for gb in &args.data_gb {
        ensure!(
            *gb > 0.0 && *gb <= MAX_DATA_GB,
            "--data-gb {gb}: expected a size above 0 and at most {MAX_DATA_GB}"
        );
    }
    for gb in &args.data_gb {
        let payload = payload_bytes(*gb, args.min_payload_bytes);
        ensure!(
            payload <= MAX_PAYLOAD_BYTES,
            "--data-gb {gb} needs {payload} bytes of variables per instance, more than {MAX_PAYLOAD_BYTES}"
        );
    }
    ensure!(
        (1..=MAX_IN_FLIGHT).contains(&args.in_flight),
        "--in-flight {}: expected 1 to {MAX_IN_FLIGHT}",
        args.in_flight
    );
    ensure!(
        (1..=INSTANCES).contains(&args.instances),
        "--instances {}: expected 1 to {INSTANCES}",
        args.instances
    );
    // Absolute: the broker runs in its own directory.
    let waggle = find_waggle(args.waggle.as_deref())?
        .canonicalize()
        .context("resolving the waggle binary")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = args
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", args.out.display()))?;
    let mut runs = Vec::new();
    for gb in &args.data_gb {
        let run = run_size(&waggle, &out, *gb, &args)?;
        println!(
            "restart {:.2} GB: {} in {} files, read {:.2} s, health answers {:.2} s, ready {:.2} s, first instance {:.2} s, ready/read {:.2}{}",
            run.target_gb,
            human_bytes(run.data_bytes),
            run.files,
            run.read_s,
            run.health_answer_s,
            run.ready_s,
            run.served_s,
            run.ratio,
            if run.caches_dropped { "" } else { " (page cache not dropped)" },
        );
        runs.push(run);
    }
    if let [first, .., last] = runs.as_slice() {
        println!(
            "growth: data ×{:.1}, ready time ×{:.1}",
            last.data_bytes as f64 / first.data_bytes.max(1) as f64,
            last.ready_s / first.ready_s.max(1e-9),
        );
    }
    let json = out.join("restart.json");
    std::fs::write(&json, serde_json::to_string_pretty(&runs)?)
        .with_context(|| format!("writing {}", json.display()))?;
    println!("wrote {}", json.display());
    if let Some(path) = &args.markdown {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let text = replace_section(&old, RESTART_SECTION, &markdown(&runs, &args));
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A broker process started here; killed by PID when dropped.
struct Broker {
    child: Option<Child>,
    management: u16,
    gateway: u16,
}

impl Broker {
    fn spawn(waggle: &Path, dir: &Path, ports: (u16, u16, u16)) -> anyhow::Result<Broker> {
        let (gateway, management, internal) = ports;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("waggle.log"))
            .with_context(|| format!("creating {}/waggle.log", dir.display()))?;
        let child = Command::new(waggle)
            .arg("dev")
            .current_dir(dir)
            .env("WAGGLE_NETWORK_HOST", "127.0.0.1")
            .env("WAGGLE_NETWORK_GATEWAY_PORT", gateway.to_string())
            .env("WAGGLE_NETWORK_MANAGEMENT_PORT", management.to_string())
            .env("WAGGLE_NETWORK_INTERNAL_PORT", internal.to_string())
            .env("WAGGLE_RUNTIME_SHARDS", "1")
            .env("WAGGLE_RUNTIME_PIN_SHARDS", "false")
            .env(
                "WAGGLE_DATA_SNAPSHOT_PERIOD_MS",
                SNAPSHOT_PERIOD_MS.to_string(),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} dev", waggle.display()))?;
        Ok(Broker {
            child: Some(child),
            management,
            gateway,
        })
    }

    /// Waits for `/ready`; returns (first answer of `/health`, ready), both
    /// from `since`.
    fn wait_ready(&mut self, since: Instant, dir: &Path) -> anyhow::Result<(Duration, Duration)> {
        let mut health = None;
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait().context("checking the broker")? {
                    anyhow::bail!("the broker exited with {status}: {}", log_tail(dir));
                }
            }
            if health.is_none() && http_status(self.management, "/health").is_some() {
                health = Some(since.elapsed());
            }
            if http_status(self.management, "/ready") == Some(200) {
                let ready = since.elapsed();
                return Ok((health.unwrap_or(ready), ready));
            }
            ensure!(
                since.elapsed() < MAX_READY_WAIT,
                "the broker was not ready within {MAX_READY_WAIT:?}: {}",
                log_tail(dir)
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL of the broker")?;
            child.wait().context("waiting for the killed broker")?;
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_children(&mut [child], Duration::from_secs(10));
        }
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("waggle.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn run_size(waggle: &Path, out: &Path, gb: f64, args: &Args) -> anyhow::Result<RestartRun> {
    let dir = out.join(format!("restart-{}-{gb}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure(waggle, &dir, gb, args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(waggle: &Path, dir: &Path, gb: f64, args: &Args) -> anyhow::Result<RestartRun> {
    let load_before = crate::scenario::load_average();
    let ports = (free_port()?, free_port()?, free_port()?);
    let mut broker = Broker::spawn(waggle, dir, ports)?;
    broker.wait_ready(Instant::now(), dir)?;
    let payload = payload_bytes(gb, args.min_payload_bytes);
    let loaded_at = Instant::now();
    let runtime = crate::load::runtime()?;
    let instances = runtime.block_on(load(
        broker.gateway,
        payload,
        args.instances,
        args.in_flight,
    ))?;
    let load_s = loaded_at.elapsed().as_secs_f64();
    broker.kill9()?;
    let data = dir.join("data");
    let (data_bytes, files) = tree_size(&data)?;

    let caches_dropped = !args.no_drop_caches && drop_caches();
    let read_at = Instant::now();
    let read_bytes = read_tree(&data)?;
    let read_s = read_at.elapsed().as_secs_f64();
    ensure!(
        read_bytes == data_bytes,
        "the baseline read {read_bytes} bytes of {data_bytes}"
    );

    if caches_dropped {
        drop_caches();
    }
    let spawned = Instant::now();
    let mut broker = Broker::spawn(waggle, dir, ports)?;
    let (health, ready) = broker.wait_ready(spawned, dir)?;
    runtime.block_on(create_one(broker.gateway))?;
    let served_s = spawned.elapsed().as_secs_f64();
    drop(broker);
    let ready_s = ready.as_secs_f64();
    Ok(RestartRun {
        target_gb: gb,
        payload_bytes: payload,
        served_s,
        instances,
        load_s,
        data_bytes,
        files,
        read_s,
        health_answer_s: health.as_secs_f64(),
        ready_s,
        ratio: ready_s / read_s.max(1e-9),
        caches_dropped,
        load_average: (load_before, crate::scenario::load_average()),
    })
}

/// Deploys the process and creates `count` instances carrying
/// `payload_bytes` of variables each; returns how many were created.
async fn load(
    gateway: u16,
    payload_bytes: usize,
    count: u64,
    in_flight: usize,
) -> anyhow::Result<u64> {
    let channel = crate::load::connect(&[format!("http://127.0.0.1:{gateway}")], 1)
        .await?
        .remove(0);
    let mut client = GatewayClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    client
        .deploy_resource(proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: "restart_bench.bpmn".into(),
                content: PROCESS_BPMN.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        })
        .await
        .context("deploying restart_bench.bpmn")?;
    let deadline = tokio::time::Instant::now() + MAX_LOAD;
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    let mut done = 0u64;
    while done < count {
        while sent < count && tasks.len() < in_flight {
            let client = client.clone();
            tasks.spawn(create(client, payload_bytes, sent));
            sent += 1;
        }
        let joined = tokio::time::timeout_at(deadline, tasks.join_next())
            .await
            .with_context(|| format!("the load did not finish within {MAX_LOAD:?}"))?;
        match joined {
            Some(result) => {
                result.context("a create task panicked")??;
                done += 1;
            }
            None => break,
        }
    }
    Ok(done)
}

/// Creates one instance with `payload_bytes` of variables, retrying while
/// the broker pushes back or is not yet serving.
async fn create(
    mut client: GatewayClient<tonic::transport::Channel>,
    payload_bytes: usize,
    seq: u64,
) -> anyhow::Result<()> {
    let pad = payload_bytes.saturating_sub(40);
    let variables = format!("{{\"seq\":{seq},\"blob\":\"{}\"}}", "x".repeat(pad));
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let request = proto::CreateProcessInstanceRequest {
            bpmn_process_id: PROCESS_ID.into(),
            version: -1,
            variables: variables.clone(),
            ..Default::default()
        };
        match client.create_process_instance(request).await {
            Ok(_) => return Ok(()),
            // Pushed back, or the partition is still between leader and
            // replay right after a restart: try again shortly.
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => anyhow::bail!("creating instance {seq} failed: {status}"),
        }
    }
    anyhow::bail!("instance {seq}: backpressure did not let up")
}

/// Creates one small instance on a restarted broker.
async fn create_one(gateway: u16) -> anyhow::Result<()> {
    let channel = crate::load::connect(&[format!("http://127.0.0.1:{gateway}")], 1)
        .await?
        .remove(0);
    create(GatewayClient::new(channel), 64, u64::MAX)
        .await
        .context("the restarted broker does not serve")
}

/// Bytes and number of the files below `dir`.
fn tree_size(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut bytes = 0;
    let mut files = 0;
    for path in files_below(dir)? {
        bytes += std::fs::metadata(&path)
            .with_context(|| format!("measuring {}", path.display()))?
            .len();
        files += 1;
    }
    Ok((bytes, files))
}

/// Reads every file below `dir` front to back; returns the bytes read.
fn read_tree(dir: &Path) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut total = 0u64;
    for path in files_below(dir)? {
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Every regular file below `dir`, in name order.
fn files_below(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .with_context(|| format!("listing {}", d.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("listing {}", d.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type().context("file type")?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// `sync` and `echo 3 > /proc/sys/vm/drop_caches`; false when not allowed.
fn drop_caches() -> bool {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    match std::fs::write("/proc/sys/vm/drop_caches", "3") {
        Ok(()) => true,
        Err(e) => {
            eprintln!("restart: cannot drop the page cache ({e}); figures include cached reads");
            false
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn markdown(runs: &[RestartRun], args: &Args) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "{RESTART_SECTION}\n");
    let _ = writeln!(
        md,
        "`waggle-perf restart --data-gb {}`: a single-node broker (`waggle dev`, one shard, one \
         partition, default 128 MiB segments) gets {INSTANCES} instances of a start → end \
         process, each with size / {SNAPSHOT_EVERY_ENTRIES} bytes of variables: one short of \
         the second snapshot, so the log since the last snapshot holds about the size asked, \
         the segments compacted away wait as recycled files, and the tail segment is one of \
         them with stale frames behind the last write. Then SIGKILL. Baseline: every file of \
         the data directory read front to back (1 MiB reads) after dropping the page cache. \
         Then the page cache is dropped again and the broker restarted on the same directory: \
         time from spawn to `/health` answering, to `/ready` 200, and to the first new \
         instance created (which waits for the replay of every command before it through the \
         engine).\n",
        args.data_gb
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    let _ = writeln!(
        md,
        "| data asked | variables / instance | data dir | files | read (baseline) | /health answers | /ready | first instance | ready / read | page cache dropped | load average before → after |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(
            md,
            "| {} GB | {} B | {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | **{:.2}** | {} | {} → {} |",
            r.target_gb,
            r.payload_bytes,
            human_bytes(r.data_bytes),
            r.files,
            r.read_s,
            r.health_answer_s,
            r.ready_s,
            r.served_s,
            r.ratio,
            if r.caches_dropped { "yes" } else { "no" },
            r.load_average.0,
            r.load_average.1,
        );
    }
    md
}

/// `old` with the section headed `heading` replaced by `section` (appended
/// when absent); a section runs to the next `## ` heading or the end.
pub fn replace_section(old: &str, heading: &str, section: &str) -> String {
    let Some(start) = old.find(heading) else {
        let mut text = old.trim_end().to_string();
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(section);
        return text;
    };
    let after = start + heading.len();
    let end = old[after..]
        .find("\n## ")
        .map_or(old.len(), |i| after + i + 1);
    format!("{}{}{}", &old[..start], section.trim_end(), {
        let rest = &old[end..];
        if rest.is_empty() {
            "\n".to_string()
        } else {
            format!("\n\n{rest}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_appended() {
        let old = "# r\n\n## A\n\na\n\n## Restart to ready\n\nold\n\n## B\n\nb\n";
        let new = replace_section(old, RESTART_SECTION, "## Restart to ready\n\nnew\n");
        assert_eq!(
            new,
            "# r\n\n## A\n\na\n\n## Restart to ready\n\nnew\n\n## B\n\nb\n"
        );
        let appended = replace_section(
            "# r\n\n## A\n\na\n",
            RESTART_SECTION,
            "## Restart to ready\n\nx\n",
        );
        assert_eq!(appended, "# r\n\n## A\n\na\n\n## Restart to ready\n\nx\n");
        let last = replace_section(
            "# r\n\n## Restart to ready\n\nold\n",
            RESTART_SECTION,
            "## Restart to ready\n\nx\n",
        );
        assert_eq!(last, "# r\n\n## Restart to ready\n\nx\n");
    }
}
