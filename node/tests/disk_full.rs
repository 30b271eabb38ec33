//! A real `waggle dev` on a small loop-mounted ext4 file system that fills up
//! under load, in both disk-full modes: the kernel's ENOSPC
//! (`data.min_free_space_bytes = 0`) and the free-space guard. New work is
//! refused with RESOURCE_EXHAUSTED naming the directory, `/health` answers
//! 503 naming the partition, jobs can still be activated and completed; once
//! the filler file is deleted the partition resumes by itself, and every
//! instance acknowledged before, during and after completes.
//!
//! Needs root and a loop device (CI has both); skipped with a printed reason
//! otherwise.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{deploy_one_task, runtime, Broker};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use proto::partition::PartitionBrokerHealth as Health;
use tonic::transport::Channel;
use tonic::Code;

/// Size of the file system the broker's data directory lives on.
const FS_SIZE_MIB: u64 = 64;
/// Log segment size: small, so that the log rolls segments while it fills.
const SEGMENT_BYTES: u64 = 1 << 20;
/// Snapshots (and compaction) this often: snapshots meet the full disk too.
const SNAPSHOT_PERIOD_MS: u64 = 2_000;
/// The guard mode's `data.min_free_space_bytes`.
const GUARD_MIN_FREE_BYTES: u64 = 32 << 20;
/// Free space the guard mode leaves: below the guard, above its drain reserve.
const GUARD_LEFT_FREE_BYTES: u64 = 20 << 20;
/// Instances created before the disk fills, and after it is freed.
const INSTANCES_BEFORE: usize = 100;
const INSTANCES_AFTER: usize = 100;
/// Creations in flight at once while filling the log.
const CONCURRENT_CREATES: usize = 32;
/// Most creations tried while waiting for the first refusal.
const MAX_CREATES_WHILE_FULL: usize = 40_000;
/// Jobs completed while the disk is full, in the guard mode (and at least
/// this many in the ENOSPC mode, which drains until its reserve is used).
const MIN_DRAINED_JOBS: usize = 30;
/// Most jobs completed while the disk is full.
const MAX_DRAINED_JOBS: usize = 20_000;
/// Job lock time: short, so that an activation lost to a stalled write is
/// activated again soon.
const JOB_TIMEOUT_MS: i64 = 3_000;
/// The gateway's request timeout: a command stalled by the full disk comes
/// back within it.
const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// Bytes of the variable every instance is created and every job completed
/// with, so that the log fills after a few thousand commands.
const PAD_BYTES: usize = 2_000;
/// Bound on each wait.
const MAX_WAIT: Duration = Duration::from_secs(90);

/// How the disk is full.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `data.min_free_space_bytes = 0`: the kernel says ENOSPC.
    Enospc,
    /// `data.min_free_space_bytes` guards the disk.
    Guard,
}

/// An ext4 image mounted on a loop device for one test; unmounted (and the
/// image removed) on drop, on every path.
struct LoopMount {
    mount_point: PathBuf,
    image_dir: tempfile::TempDir,
    _mount_dir: tempfile::TempDir,
}

impl LoopMount {
    /// Mounts a fresh `size_mib` ext4, or says why it cannot.
    fn new(size_mib: u64) -> Result<LoopMount, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("mounting a loop device needs root".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err("no loop device support (/dev/loop-control is missing)".into());
        }
        let image_dir = tempfile::tempdir().expect("temp dir");
        let image = image_dir.path().join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib << 20))
            .expect("create the image file");
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image)
            .output()
            .expect("run mkfs.ext4 (install e2fsprogs)");
        assert!(
            mkfs.status.success(),
            "mkfs.ext4 failed: {}",
            String::from_utf8_lossy(&mkfs.stderr)
        );
        let mount_dir = tempfile::tempdir().expect("temp dir");
        let mount_point = mount_dir.path().join("data");
        std::fs::create_dir(&mount_point).expect("mount point");
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount_point)
            .output()
            .expect("run mount");
        if !mount.status.success() {
            return Err(format!(
                "mount -o loop failed: {}",
                String::from_utf8_lossy(&mount.stderr).trim()
            ));
        }
        Ok(LoopMount {
            mount_point,
            image_dir,
            _mount_dir: mount_dir,
        })
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        for _ in 0..50 {
            let done = Command::new("umount")
                .arg(&self.mount_point)
                .status()
                .is_ok_and(|s| s.success());
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        eprintln!(
            "{} stayed busy; detached lazily (image in {})",
            self.mount_point.display(),
            self.image_dir.path().display()
        );
    }
}

/// A JSON object of about `PAD_BYTES`.
fn padded_variables() -> String {
    format!(r#"{{"pad": "{}"}}"#, "x".repeat(PAD_BYTES))
}

async fn create(client: &mut GatewayClient<Channel>) -> Result<i64, tonic::Status> {
    client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            variables: padded_variables(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().process_instance_key)
}

/// Creates `count` instances, `CONCURRENT_CREATES` at a time, until one is
/// refused with RESOURCE_EXHAUSTED: the acknowledged keys and that refusal.
/// Other errors (a command caught by a stalled write) are left out.
async fn create_many(
    client: &GatewayClient<Channel>,
    count: usize,
) -> (Vec<i64>, Option<tonic::Status>) {
    let mut keys = Vec::new();
    let mut started = 0;
    while started < count {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT_CREATES.min(count - started) {
            let mut client = client.clone();
            set.spawn(async move { create(&mut client).await });
            started += 1;
        }
        let mut refused = None;
        while let Some(result) = set.join_next().await {
            match result.expect("create task") {
                Ok(key) => keys.push(key),
                Err(status) if status.code() == Code::ResourceExhausted => refused = Some(status),
                Err(_) => {}
            }
        }
        if refused.is_some() {
            return (keys, refused);
        }
    }
    (keys, None)
}

async fn activate(
    client: &mut GatewayClient<Channel>,
    max: i32,
) -> Result<Vec<proto::ActivatedJob>, tonic::Status> {
    let mut stream = client
        .activate_jobs(proto::ActivateJobsRequest {
            r#type: "work".into(),
            worker: "disk-full-test".into(),
            timeout: JOB_TIMEOUT_MS,
            max_jobs_to_activate: max,
            request_timeout: -1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut jobs = Vec::new();
    while let Some(batch) = stream.message().await? {
        jobs.extend(batch.jobs);
    }
    Ok(jobs)
}

async fn complete(client: &mut GatewayClient<Channel>, job_key: i64) -> Result<(), tonic::Status> {
    client
        .complete_job(proto::CompleteJobRequest {
            job_key,
            variables: padded_variables(),
            result: None,
        })
        .await
        .map(|_| ())
}

/// Partition 1's health as `Topology` reports it.
async fn partition_health(client: &mut GatewayClient<Channel>) -> Health {
    let topology = client
        .topology(proto::TopologyRequest {})
        .await
        .expect("topology")
        .into_inner();
    let partition = topology.brokers[0]
        .partitions
        .iter()
        .find(|p| p.partition_id == 1)
        .expect("partition 1 in the topology");
    Health::try_from(partition.health).expect("a known health")
}

/// Fills the file system holding `path` until the kernel says ENOSPC.
fn fill_to_enospc(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    for chunk in [1usize << 20, 4096] {
        let block = vec![0xA5u8; chunk];
        loop {
            match file.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    // Allocated for good: what the broker finds is a full disk.
    let _ = file.sync_all();
}

/// Fills the file system holding `path` until `left_bytes` are free.
fn fill_leaving(path: &Path, dir: &Path, left_bytes: u64) {
    let free = node::shard::free_space_bytes(dir).expect("statvfs");
    assert!(free > left_bytes, "only {free} bytes free to begin with");
    let mut file = std::fs::File::create(path).expect("create the filler");
    let block = vec![0xA5u8; 1 << 20];
    let mut left = free - left_bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("fill");
        left -= n as u64;
    }
    file.sync_all().expect("sync the filler");
}

/// Waits until `/health` answers `code`; its body.
fn wait_health(broker: &Broker, code: u16) -> String {
    let start = Instant::now();
    loop {
        match broker.http_get("/health") {
            Some((got, body)) if got == code => return body,
            other => assert!(
                start.elapsed() < MAX_WAIT,
                "/health did not answer {code}: last {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn disk_full_recovers_by_itself(mode: Mode) {
    let mount = match LoopMount::new(FS_SIZE_MIB) {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("SKIPPED disk_full ({mode:?}): {reason}");
            return;
        }
    };
    let data = mount.mount_point.clone();
    let min_free = match mode {
        Mode::Enospc => 0,
        Mode::Guard => GUARD_MIN_FREE_BYTES,
    };
    let broker = Broker::start_dev(&[
        ("WAGGLE_DATA_DIRECTORY", data.display().to_string()),
        ("WAGGLE_DATA_MIN_FREE_SPACE_BYTES", min_free.to_string()),
        ("WAGGLE_DATA_SEGMENT_SIZE_BYTES", SEGMENT_BYTES.to_string()),
        (
            "WAGGLE_DATA_SNAPSHOT_PERIOD_MS",
            SNAPSHOT_PERIOD_MS.to_string(),
        ),
        (
            "WAGGLE_GATEWAY_REQUEST_TIMEOUT_MS",
            REQUEST_TIMEOUT_MS.to_string(),
        ),
    ]);
    broker.wait_http_ok("/ready");
    let filler = data.join("filler");
    let rt = runtime();
    rt.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect");
        deploy_one_task(&mut client).await;
        let mut acknowledged: BTreeSet<i64> = BTreeSet::new();
        let (before, refused) = create_many(&client, INSTANCES_BEFORE).await;
        assert!(
            refused.is_none(),
            "refused with space to spare: {refused:?}"
        );
        assert_eq!(before.len(), INSTANCES_BEFORE);
        acknowledged.extend(before);

        // The disk fills while instances keep coming.
        match mode {
            Mode::Enospc => fill_to_enospc(&filler),
            Mode::Guard => fill_leaving(&filler, &data, GUARD_LEFT_FREE_BYTES),
        }
        let (during, refused) = create_many(&client, MAX_CREATES_WHILE_FULL).await;
        acknowledged.extend(during);
        let refused = refused.expect("new work is refused on a full disk");
        let message = refused.message();
        eprintln!("{mode:?}: refused: {message}");
        assert!(message.contains("disk full"), "{message}");
        assert!(
            message.contains(&data.display().to_string()),
            "names the directory: {message}"
        );
        let health = wait_health(&broker, 503);
        assert!(health.contains("partition 1: disk full"), "{health}");
        assert!(health.contains(&data.display().to_string()), "{health}");
        let metrics = broker.http_get("/metrics").expect("metrics").1;
        assert!(
            metrics.contains(r#"waggle_partition_healthy{partition="1"} 0"#),
            "{metrics}"
        );
        assert_eq!(partition_health(&mut client).await, Health::Unhealthy);

        // Workers drain: jobs are activated and completed while new work is
        // refused. The ENOSPC mode goes on until its reserve is used up and
        // even those are refused: their writes wait for space.
        let mut completed: BTreeSet<i64> = BTreeSet::new();
        let mut uncertain: Vec<(i64, i64)> = Vec::new();
        let want = match mode {
            Mode::Enospc => MAX_DRAINED_JOBS,
            Mode::Guard => MIN_DRAINED_JOBS,
        };
        let mut stalled = None;
        while stalled.is_none() && completed.len() < want {
            let jobs = match activate(&mut client, CONCURRENT_CREATES as i32).await {
                Ok(jobs) => jobs,
                Err(status) => {
                    stalled = Some(status);
                    break;
                }
            };
            assert!(
                !jobs.is_empty(),
                "no job to drain after {}",
                completed.len()
            );
            let mut set = tokio::task::JoinSet::new();
            for job in jobs {
                let mut client = client.clone();
                set.spawn(async move {
                    let result = complete(&mut client, job.key).await;
                    (job, result)
                });
            }
            while let Some(done) = set.join_next().await {
                match done.expect("complete task") {
                    (job, Ok(())) => {
                        completed.insert(job.process_instance_key);
                    }
                    (job, Err(status)) => {
                        uncertain.push((job.key, job.process_instance_key));
                        stalled = Some(status);
                    }
                }
            }
        }
        eprintln!(
            "{mode:?}: {} instances acknowledged, {} jobs completed on the full disk, then \
             {stalled:?}",
            acknowledged.len(),
            completed.len()
        );
        assert!(
            completed.len() >= MIN_DRAINED_JOBS,
            "only {} jobs completed on the full disk; then {stalled:?}",
            completed.len()
        );
        let still = create(&mut client)
            .await
            .expect_err("the disk is still full");
        assert_eq!(still.code(), Code::ResourceExhausted, "{still:?}");
        if mode == Mode::Enospc {
            let stalled = stalled.expect("the reserve is used up at last");
            assert!(
                matches!(
                    stalled.code(),
                    Code::ResourceExhausted | Code::DeadlineExceeded | Code::Unavailable
                ),
                "{stalled:?}"
            );
            let health = wait_health(&broker, 503);
            assert!(health.contains("writes refused"), "{health}");
        }

        // Space is freed: the partition resumes by itself.
        std::fs::remove_file(&filler).expect("free the disk");
        let start = Instant::now();
        loop {
            match create(&mut client).await {
                Ok(key) => {
                    acknowledged.insert(key);
                    break;
                }
                Err(status) => assert!(
                    start.elapsed() < MAX_WAIT,
                    "new work still refused after space was freed: {status:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = wait_health(&broker, 200);
        assert_eq!(body, "healthy\n");
        let (after, refused) = create_many(&client, INSTANCES_AFTER).await;
        assert!(refused.is_none(), "refused after recovery: {refused:?}");
        acknowledged.extend(after);

        // Every acknowledged instance is there and completes.
        // A completion caught by the stalled write was written once space
        // came back (NOT_FOUND now) or was lost (the job is activated again
        // below once its lock expires).
        for (job, instance) in uncertain {
            match complete(&mut client, job).await {
                Ok(()) => {
                    completed.insert(instance);
                }
                Err(status) if status.code() == Code::NotFound => {
                    completed.insert(instance);
                }
                Err(_) => {}
            }
        }
        let start = Instant::now();
        while !acknowledged.is_subset(&completed) {
            assert!(
                start.elapsed() < MAX_WAIT,
                "{} acknowledged instances never completed, e.g. {:?}",
                acknowledged.difference(&completed).count(),
                acknowledged.difference(&completed).next()
            );
            let jobs = activate(&mut client, 100).await.expect("activate");
            if jobs.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for job in jobs {
                match complete(&mut client, job.key).await {
                    Ok(()) => {
                        completed.insert(job.process_instance_key);
                    }
                    Err(status) if status.code() == Code::NotFound => {
                        completed.insert(job.process_instance_key);
                    }
                    Err(status) => panic!("completing job {}: {status:?}", job.key),
                }
            }
        }
        let metrics = broker.http_get("/metrics").expect("metrics").1;
        assert!(
            metrics.contains(r#"waggle_partition_healthy{partition="1"} 1"#),
            "{metrics}"
        );
        assert_eq!(partition_health(&mut client).await, Health::Healthy);
    });
    drop(rt);
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
    drop(mount);
}

#[test]
fn a_disk_full_with_enospc_recovers_by_itself() {
    disk_full_recovers_by_itself(Mode::Enospc);
}

#[test]
fn a_disk_full_below_the_guard_recovers_by_itself() {
    disk_full_recovers_by_itself(Mode::Guard);
}
