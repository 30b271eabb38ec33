//! A 3-member etcd cluster started as local processes on 127.0.0.1, the
//! baseline of `waggle-perf etcd-compare`.
//!
//! Layout: a fresh temporary directory holds `member-<i>/` (each member's
//! data directory) and `member-<i>.log` (its stderr). Client and peer ports
//! are picked free on the loopback. etcd runs with its defaults (fsync on
//! every commit, like waggle) except a larger backend quota, so a long
//! benchmark does not hit the 2 GiB alarm.
//!
//! Every process started here is stopped by its PID (SIGTERM, then SIGKILL
//! after `STOP_WAIT`) when the `Etcd` value is dropped, and the directory is
//! removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// Members of the cluster.
pub const MEMBERS: usize = 3;
/// Longest wait for the cluster to elect a leader.
pub const MAX_READY_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for a member to exit after SIGTERM.
pub const STOP_WAIT: Duration = Duration::from_secs(10);
/// Backend quota, bytes (etcd's default of 2 GiB raises an alarm under a
/// long run of 1 KiB puts; 8 GiB is etcd's suggested maximum).
pub const QUOTA_BACKEND_BYTES: u64 = 8 << 30;

/// What to tell a user whose machine has no etcd.
pub const INSTALL_HINT: &str = "etcd is not installed: on Debian or Ubuntu run \
     `apt-get install etcd-server` (or pass --etcd PATH)";

/// A running etcd cluster.
pub struct Etcd {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    /// Client URLs (http://127.0.0.1:port), one per member.
    pub endpoints: Vec<String>,
    /// The `etcd --version` first line.
    pub version: String,
}

/// The etcd binary: `explicit`, else `etcd` on the PATH.
pub fn find_etcd(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--etcd {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .context(INSTALL_HINT)
}

impl Etcd {
    /// Starts `MEMBERS` members of `etcd` and waits until they have a leader;
    /// starts again on other ports when one was taken meanwhile (a port is
    /// probed free, then bound by etcd: another process may take it between).
    pub fn start(etcd: &Path) -> anyhow::Result<Etcd> {
        let mut attempt = 1;
        loop {
            match Self::start_once(etcd) {
                Err(e)
                    if attempt < crate::brokers::MAX_START_ATTEMPTS
                        && format!("{e:#}").contains("address already in use") =>
                {
                    eprintln!("a port was taken while etcd started; starting again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(etcd: &Path) -> anyhow::Result<Etcd> {
        let version = Command::new(etcd)
            .arg("--version")
            .output()
            .with_context(|| format!("running {} --version", etcd.display()))?;
        ensure!(
            version.status.success(),
            "{} --version failed: {}",
            etcd.display(),
            String::from_utf8_lossy(&version.stderr)
        );
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("etcd")
            .trim()
            .to_string();
        let dir = tempfile::Builder::new()
            .prefix("waggle-perf-etcd-")
            .tempdir()
            .context("creating a temporary directory for etcd")?;
        let client: Vec<u16> = (0..MEMBERS)
            .map(|_| crate::brokers::free_port())
            .collect::<Result<_, _>>()?;
        let peer: Vec<u16> = (0..MEMBERS)
            .map(|_| crate::brokers::free_port())
            .collect::<Result<_, _>>()?;
        let initial_cluster: Vec<String> = (0..MEMBERS)
            .map(|i| format!("member-{i}=http://127.0.0.1:{}", peer[i]))
            .collect();
        let mut cluster = Etcd {
            children: Vec::new(),
            endpoints: client
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            version,
            dir,
        };
        for (i, peer_port) in peer.iter().enumerate() {
            let log_path = cluster.dir.path().join(format!("member-{i}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let child = Command::new(etcd)
                .arg(format!("--name=member-{i}"))
                .arg(format!(
                    "--data-dir={}",
                    cluster.dir.path().join(format!("member-{i}")).display()
                ))
                .arg(format!("--listen-client-urls={}", cluster.endpoints[i]))
                .arg(format!("--advertise-client-urls={}", cluster.endpoints[i]))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
                ))
                .arg(format!("--initial-cluster={}", initial_cluster.join(",")))
                .arg(format!(
                    "--initial-cluster-token=waggle-perf-{}",
                    std::process::id()
                ))
                .arg("--initial-cluster-state=new")
                .arg(format!("--quota-backend-bytes={QUOTA_BACKEND_BYTES}"))
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", etcd.display()))?;
            cluster.children.push(child);
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        loop {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Some(status) = child.try_wait().context("checking an etcd member")? {
                    bail!("etcd member {i} exited with {status}: {}", self.log_tail(i));
                }
            }
            if runtime.block_on(self.leader()).is_ok() {
                return Ok(());
            }
            if start.elapsed() > MAX_READY_WAIT {
                let tails: Vec<String> = (0..MEMBERS).map(|i| self.log_tail(i)).collect();
                bail!(
                    "etcd had no leader within {MAX_READY_WAIT:?}:\n{}",
                    tails.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The client URL of the current leader, once every member names the
    /// same one.
    pub async fn leader(&self) -> anyhow::Result<String> {
        let mut leader_of_all = None;
        let mut leader_endpoint = None;
        for endpoint in &self.endpoints {
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let mut client = etcd_client::Client::connect([endpoint], Some(options))
                .await
                .with_context(|| format!("connecting to etcd at {endpoint}"))?;
            let status = client
                .status()
                .await
                .with_context(|| format!("etcd status at {endpoint}"))?;
            let leader = status.leader();
            ensure!(leader != 0, "{endpoint} knows no leader yet");
            ensure!(
                leader_of_all.is_none_or(|l| l == leader),
                "the members disagree on the leader"
            );
            leader_of_all = Some(leader);
            if status.header().map(|h| h.member_id()) == Some(leader) {
                leader_endpoint = Some(endpoint.clone());
            }
        }
        leader_endpoint.context("no member says it is the leader")
    }

    /// The last lines of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(format!("member-{i}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(15);
        format!("--- etcd member {i} ---\n{}", lines[from..].join("\n"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        crate::brokers::stop_children(&mut self.children, STOP_WAIT);
    }
}
