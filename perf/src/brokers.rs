//! Brokers started as local processes on 127.0.0.1 for a scenario, with WAN
//! relays between them.
//!
//! Layout: a fresh directory holds `certs/` (from `waggle certs`) and one
//! `node-<i>/` per node with its `waggle.toml`, its data and its log. Nodes
//! sit in sites (zones or regions); between two sites every node-to-node
//! datagram passes a relay (`crate::relay`) that delays it by half the
//! round trip in each direction. In waggle the lower node id dials the
//! higher one and the connection carries both directions, so node `i` gets
//! one relay listening on its own port and forwarding to its internal port;
//! node `j < i` in another site names that relay as `contact_points[i]`. The
//! relay keeps one upstream socket per dialer, so node `i` sees a fixed
//! source address and its replies return through the same delay line: QUIC
//! needs nothing more.
//!
//! Every process started here is killed by its PID when the `Brokers` value
//! is dropped, and the directory is removed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::relay::{self, Impairment, RelayHandle};

/// Longest wait for a cluster to become ready.
pub const MAX_READY_WAIT: Duration = Duration::from_secs(90);
/// Most nodes a scenario starts.
pub const MAX_NODES: usize = 9;
/// Most attempts at starting a cluster whose ports were taken meanwhile.
pub const MAX_START_ATTEMPTS: usize = 3;

/// The shape of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Nodes; 1 starts `waggle dev`.
    pub nodes: usize,
    /// Partitions.
    pub partitions: u32,
    /// Replication factor.
    pub replication_factor: u32,
    /// Site (zone or region) of each node.
    pub site_of: Vec<usize>,
    /// Round trip between two sites, in ms (0: no relays).
    pub rtt_ms: u64,
    /// Serve the raw replicated append (`gateway.raw_append_enabled`).
    pub raw_append: bool,
    /// Environment of every node after the defaults (`WAGGLE_<TABLE>_<KEY>`
    /// overrides, e.g. secondary storage).
    pub env: Vec<(String, String)>,
    /// Brokers beyond `nodes` with an address in every node's contact
    /// points, not started: for a cluster change to add
    /// ([`Brokers::start_spare`]).
    pub spare: usize,
}

impl ClusterSpec {
    /// One `waggle dev` node with `env` over its defaults.
    pub fn single_node(env: Vec<(String, String)>) -> ClusterSpec {
        ClusterSpec {
            nodes: 1,
            partitions: 1,
            replication_factor: 1,
            site_of: vec![0],
            rtt_ms: 0,
            raw_append: false,
            env,
            spare: 0,
        }
    }
}

/// The binary, configuration file and environment of one node of a cluster.
type BrokerCommand = (PathBuf, PathBuf, Vec<(String, String)>);

/// Running brokers (and relays) of one scenario.
pub struct Brokers {
    root: PathBuf,
    children: Vec<Child>,
    relays: Vec<RelayHandle>,
    management_ports: Vec<u16>,
    /// How each node of a cluster was started: its command line (to start
    /// it again after a kill) and its log.
    commands: Vec<BrokerCommand>,
    /// Gateway URIs, one per node.
    pub gateways: Vec<String>,
    /// The gateway and management ports of the spare brokers, by id.
    spares: BTreeMap<usize, (u16, u16)>,
}

/// Ports handed out in this process. The kernel may hand the same ephemeral
/// port out again once a probe closes: never give one out twice (a broker
/// with two equal ports refuses its configuration).
static GIVEN_PORTS: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port from `probe` not handed out before in this process.
fn distinct_port(probe: impl Fn() -> anyhow::Result<u16>) -> anyhow::Result<u16> {
    let mut given = GIVEN_PORTS
        .lock()
        .map_err(|_| anyhow::anyhow!("port list poisoned"))?;
    loop {
        let port = probe()?;
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
}

/// A free loopback TCP port.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    distinct_port(|| {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
        Ok(listener.local_addr().context("local address")?.port())
    })
}

/// A free loopback UDP port.
fn free_udp_port() -> anyhow::Result<u16> {
    distinct_port(|| {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a free UDP port")?;
        Ok(socket.local_addr().context("local address")?.port())
    })
}

/// The `waggle` binary: `explicit`, else `$WAGGLE_BIN`, else next to this
/// executable.
pub fn find_waggle(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        ensure!(path.is_file(), "--waggle {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("WAGGLE_BIN") {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "WAGGLE_BIN={}: no such file",
            path.display()
        );
        return Ok(path);
    }
    let me = std::env::current_exe().context("locating waggle-perf")?;
    let beside = me.with_file_name("waggle");
    ensure!(
        beside.is_file(),
        "no `waggle` next to {} (build it with `cargo build --release -p node`, or pass --waggle / WAGGLE_BIN)",
        me.display()
    );
    Ok(beside)
}

/// A minimal HTTP/1.0 GET on the loopback: the status code.
pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

impl Brokers {
    /// Starts the cluster `spec` with `waggle` in a new directory below
    /// `parent`, and waits until every node is ready. The free ports are
    /// picked before the nodes bind them, so another process (an outgoing
    /// connection's ephemeral port) may take one in between: then the
    /// cluster is started again on new ports, `MAX_START_ATTEMPTS` times.
    pub fn start(waggle: &Path, spec: &ClusterSpec, parent: &Path) -> anyhow::Result<Brokers> {
        let mut attempt = 1;
        loop {
            match Self::start_once(waggle, spec, parent) {
                Err(e)
                    if attempt < MAX_START_ATTEMPTS
                        && (format!("{e:#}").contains("Address already in use")
                            || format!("{e:#}").contains("is already used by")) =>
                {
                    eprintln!("a port was taken while the brokers started; starting again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(waggle: &Path, spec: &ClusterSpec, parent: &Path) -> anyhow::Result<Brokers> {
        ensure!(
            (1..=MAX_NODES).contains(&spec.nodes) && spec.site_of.len() == spec.nodes,
            "a scenario has 1 to {MAX_NODES} nodes, each with a site"
        );
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        // Absolute: each node runs in its own directory and reads its files by path.
        let parent = parent
            .canonicalize()
            .with_context(|| format!("resolving {}", parent.display()))?;
        let root = parent.join(format!("brokers-{}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("clearing {}", root.display()))?;
        }
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let mut brokers = Brokers {
            root,
            children: Vec::new(),
            relays: Vec::new(),
            management_ports: Vec::new(),
            commands: Vec::new(),
            gateways: Vec::new(),
            spares: BTreeMap::new(),
        };
        if spec.nodes == 1 {
            brokers.start_dev(waggle, spec)?;
        } else {
            brokers.start_cluster(waggle, spec)?;
        }
        brokers.wait_ready()?;
        Ok(brokers)
    }

    fn log_file(&self, node: usize) -> anyhow::Result<std::fs::File> {
        let path = self.root.join(format!("node-{node}.log"));
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
    }

    fn start_dev(&mut self, waggle: &Path, spec: &ClusterSpec) -> anyhow::Result<()> {
        let dir = self.root.join("node-0");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (gateway, management, internal) = (free_port()?, free_port()?, free_port()?);
        let child = Command::new(waggle)
            .arg("dev")
            .current_dir(&dir)
            .env("WAGGLE_NETWORK_HOST", "127.0.0.1")
            .env("WAGGLE_NETWORK_GATEWAY_PORT", gateway.to_string())
            .env("WAGGLE_NETWORK_MANAGEMENT_PORT", management.to_string())
            .env("WAGGLE_NETWORK_INTERNAL_PORT", internal.to_string())
            .env("WAGGLE_RUNTIME_SHARDS", "1")
            .env("WAGGLE_RUNTIME_PIN_SHARDS", "false")
            .env(
                "WAGGLE_GATEWAY_RAW_APPEND_ENABLED",
                spec.raw_append.to_string(),
            )
            .env("WAGGLE_REST_ENABLED", "false")
            // The published figures are the broker's own; secondary storage
            // (SQLite by default in `waggle dev`) is measured apart.
            .env("WAGGLE_SECONDARY_STORAGE_TYPE", "none")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(self.log_file(0)?)
            .spawn()
            .with_context(|| format!("starting {} dev", waggle.display()))?;
        self.children.push(child);
        self.management_ports.push(management);
        self.gateways.push(format!("http://127.0.0.1:{gateway}"));
        Ok(())
    }

    fn start_cluster(&mut self, waggle: &Path, spec: &ClusterSpec) -> anyhow::Result<()> {
        let output = Command::new(waggle)
            .args([
                "certs",
                "--dir",
                "certs",
                "--cluster-name",
                "perf",
                "--nodes",
            ])
            .arg((spec.nodes + spec.spare).to_string())
            .current_dir(&self.root)
            .output()
            .context("running waggle certs")?;
        ensure!(
            output.status.success(),
            "waggle certs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let certs: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("waggle certs printed no JSON")?;
        let file = |v: &serde_json::Value| -> anyhow::Result<String> {
            let name = v.as_str().context("waggle certs JSON lacks a file name")?;
            Ok(self.root.join(name).display().to_string())
        };
        let ca = file(&certs["ca_file"])?;
        let brokers = spec.nodes + spec.spare;
        ensure!(
            spec.rtt_ms == 0 || spec.spare == 0,
            "spare brokers run on plain loopback"
        );
        let internal: Vec<u16> = (0..brokers)
            .map(|_| free_udp_port())
            .collect::<anyhow::Result<_>>()?;
        // The relay in front of each node that is dialed across sites.
        let mut relayed: Vec<Option<u16>> = vec![None; spec.nodes];
        let crosses = |i: usize| (0..i).any(|j| spec.site_of[j] != spec.site_of[i]);
        if spec.rtt_ms > 0 {
            let impairment = Impairment {
                delay: Duration::from_micros(spec.rtt_ms * 500),
                jitter: Duration::ZERO,
                loss: 0.0,
            };
            for i in 0..spec.nodes {
                if !crosses(i) {
                    continue;
                }
                let forward = SocketAddr::from(([127, 0, 0, 1], internal[i]));
                let handle =
                    relay::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), forward, impairment)
                        .with_context(|| format!("starting the relay in front of node {i}"))?;
                relayed[i] = Some(handle.local_addr.port());
                self.relays.push(handle);
            }
        }
        for id in 0..brokers {
            let dir = self.root.join(format!("node-{id}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let (gateway, management) = (free_port()?, free_port()?);
            let points: Vec<String> = (0..brokers)
                .map(|i| {
                    let port = match relayed.get(i).copied().flatten() {
                        Some(port) if spec.site_of[i] != spec.site_of[id] => port,
                        _ => internal[i],
                    };
                    format!("\"127.0.0.1:{port}\"")
                })
                .collect();
            let issued = &certs["issued"][id];
            let config = format!(
                r#"[cluster]
node_id = {id}
size = {size}
partitions = {partitions}
replication_factor = {rf}
contact_points = [{points}]
name = "perf"
zone = "site-{site}"
region = "site-{site}"
heartbeat_interval_ms = 100
election_timeout_ms = 1000

[network]
host = "127.0.0.1"
gateway_port = {gateway}
internal_port = {internal_port}
management_port = {management}

[rest]
enabled = false

[data]
directory = "data"
min_free_space_bytes = 0

[runtime]
shards = 1
pin_shards = false

[gateway]
raw_append_enabled = {raw_append}

[tls]
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
"#,
                size = spec.nodes,
                partitions = spec.partitions,
                rf = spec.replication_factor,
                points = points.join(", "),
                site = spec.site_of.get(id).copied().unwrap_or_default(),
                internal_port = internal[id],
                raw_append = spec.raw_append,
                cert = file(&issued["cert_file"])?,
                key = file(&issued["key_file"])?,
            );
            let path = dir.join("waggle.toml");
            std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
            self.commands
                .push((waggle.to_path_buf(), path.clone(), spec.env.clone()));
            if id >= spec.nodes {
                self.spares.insert(id, (gateway, management));
                continue;
            }
            let child = self.spawn_broker(id)?;
            self.children.push(child);
            self.management_ports.push(management);
            self.gateways.push(format!("http://127.0.0.1:{gateway}"));
        }
        Ok(())
    }

    /// Starts the next spare broker (ids in order): it has no data and takes
    /// the cluster's configuration; not waited for.
    pub fn start_spare(&mut self) -> anyhow::Result<usize> {
        let id = self.children.len();
        let (gateway, management) = self.spares.remove(&id).context("no spare broker left")?;
        let child = self.spawn_broker(id)?;
        self.children.push(child);
        self.management_ports.push(management);
        self.gateways.push(format!("http://127.0.0.1:{gateway}"));
        Ok(id)
    }

    /// Starts node `id` again (after [`Brokers::kill9`]), with its data
    /// deleted first if `empty`; not waited for.
    pub fn respawn(&mut self, id: usize, empty: bool) -> anyhow::Result<()> {
        if empty {
            let data = self.root.join(format!("node-{id}/data"));
            if data.exists() {
                std::fs::remove_dir_all(&data)
                    .with_context(|| format!("deleting {}", data.display()))?;
            }
        }
        let child = self.spawn_broker(id)?;
        self.children[id] = child;
        Ok(())
    }

    fn spawn_broker(&self, id: usize) -> anyhow::Result<Child> {
        let (waggle, path, env) = self
            .commands
            .get(id)
            .context("only the nodes of a cluster start again")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{id}.log")))
            .context("opening a broker's log")?;
        Command::new(waggle)
            .args(["broker", "--config"])
            .arg(path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(path.parent().expect("a node directory"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} broker", waggle.display()))
    }

    /// Kills node `id` of a cluster with SIGKILL and reaps it.
    pub fn kill9(&mut self, id: usize) -> anyhow::Result<()> {
        let child = self.children.get_mut(id).context("no such node")?;
        child.kill().context("SIGKILL of a broker")?;
        child.wait().context("reaping a killed broker")?;
        Ok(())
    }

    /// Starts node `id` of a cluster again on its data (after `kill9`) and
    /// waits until every node is ready.
    pub fn restart(&mut self, id: usize) -> anyhow::Result<()> {
        let child = self.spawn_broker(id)?;
        self.children[id] = child;
        self.wait_ready()
    }

    /// Waits until every node is ready (`/ready`); fails if one exited.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Some(status) = child.try_wait().context("checking a broker")? {
                    anyhow::bail!("node {i} exited with {status}: {}", self.log_tail(i));
                }
            }
            if self
                .management_ports
                .iter()
                .all(|p| http_status(*p, "/ready") == Some(200))
            {
                return Ok(());
            }
            if start.elapsed() > MAX_READY_WAIT {
                let tails: Vec<String> =
                    (0..self.children.len()).map(|i| self.log_tail(i)).collect();
                anyhow::bail!(
                    "the brokers were not ready within {MAX_READY_WAIT:?}:\n{}",
                    tails.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let log =
            std::fs::read_to_string(self.root.join(format!("node-{i}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(15);
        format!("--- node {i} ---\n{}", lines[from..].join("\n"))
    }

    /// The process id of node `i`'s broker.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children.get(i).map(|c| c.id())
    }

    /// The management (health, metrics) port of node `i`.
    pub fn management_port(&self, i: usize) -> Option<u16> {
        self.management_ports.get(i).copied()
    }

    /// Datagrams the relays forwarded and dropped for a full queue:
    /// (forwarded, overflowed).
    pub fn relay_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        self.relays.iter().fold((0, 0), |(f, o), r| {
            (
                f + r.counters.forwarded.load(Ordering::Relaxed),
                o + r.counters.overflowed.load(Ordering::Relaxed),
            )
        })
    }
}

impl Drop for Brokers {
    fn drop(&mut self) {
        stop_children(&mut self.children, Duration::from_secs(10));
        for relay in self.relays.drain(..) {
            let _ = relay.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Stops processes started here, by their PIDs: SIGTERM to each one still
/// running, then SIGKILL to those still running after `wait`.
pub fn stop_children(children: &mut [Child], wait: Duration) {
    for child in children.iter_mut() {
        if let Ok(None) = child.try_wait() {
            // SAFETY: signalling a child process started here, by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + wait;
    for child in children.iter_mut() {
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
