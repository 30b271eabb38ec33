//! Broker configuration: a TOML document with one table per concern
//! (`[cluster]`, `[network]`, `[data]`, `[runtime]`, `[gateway]`,
//! `[backpressure]`), layered as built-in defaults ← file ← `WAGGLE_<TABLE>_<KEY>`
//! environment variables.
//!
//! Every key has a default that serves a single-node development broker. An
//! unknown key (in the file or in a `WAGGLE_` variable) or a bad value stops
//! start-up with an error that names the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::exporter::secondary_config::{SecondaryStorageConfig, StorageType};

/// Highest partition count: Zeebe keys carry the partition id in 13 bits.
pub const MAX_PARTITIONS: u32 = 8192;
/// Largest cluster we accept; placement and topology are quadratic in it.
pub const MAX_CLUSTER_SIZE: u32 = 256;
/// Largest gRPC message the gateway accepts (Zeebe's default is 4 MiB).
pub const MAX_MESSAGE_SIZE_BYTES: u64 = 64 << 20;
/// Shortest `cluster.peer_timeout_ms`: keep-alives every quarter of it.
pub const MIN_PEER_TIMEOUT_MS: u64 = 100;
/// Longest `cluster.peer_timeout_ms`.
pub const MAX_PEER_TIMEOUT_MS: u64 = 600_000;

/// Longest shard tick: commit latency is bounded below by it.
pub const MAX_TICK_MS: u64 = 1000;
/// `WAGGLE_` variables that are not configuration keys.
pub const NON_CONFIG_ENV_VARS: [&str; 8] = [
    "WAGGLE_LOG",
    "WAGGLE_ADDRESS",
    "WAGGLE_REST_ADDRESS",
    "WAGGLE_CA_FILE",
    "WAGGLE_CERT_FILE",
    "WAGGLE_KEY_FILE",
    "WAGGLE_USERNAME",
    "WAGGLE_PASSWORD",
];
/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "WAGGLE_";

/// A configuration that cannot be used; each variant names the offending key,
/// variable or file.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line and column.
        message: String,
    },
    /// A key is unknown or its value has the wrong type.
    #[error("configuration key `{key}`: {message}")]
    Key {
        /// Dotted path of the key, e.g. `cluster.node_id`.
        key: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A `WAGGLE_` environment variable names no configuration key or holds a
    /// value that cannot be parsed.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
}

/// The whole broker configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Cluster shape and this node's place in it.
    pub cluster: ClusterConfig,
    /// Listening addresses and ports.
    pub network: NetworkConfig,
    /// Where and how partitions store their logs and snapshots.
    pub data: DataConfig,
    /// Shard threads.
    pub runtime: RuntimeConfig,
    /// The client gateway.
    pub gateway: GatewayConfig,
    /// The in-flight command limit per partition.
    pub backpressure: BackpressureConfig,
    /// Mutual TLS between nodes (needed when `cluster.size > 1`).
    pub tls: TlsConfig,
    /// The record exporter.
    pub exporter: ExporterConfig,
    /// The REST API v2.
    pub rest: RestConfig,
    /// Secondary storage: the database searches read.
    pub secondary_storage: SecondaryStorageConfig,
    /// Log level and format.
    pub log: LogConfig,
    /// How the engine evaluates models.
    pub engine: EngineConfig,
    /// Hot backups.
    pub backup: BackupConfig,
    /// Authentication on the client ports.
    pub security: crate::identity::SecurityConfig,
}

/// Hot backups (see `node/src/backup/README.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// `filesystem`, `s3` or `none`; empty: `filesystem` when `directory`
    /// is set, else `none` (backups off).
    pub store: String,
    /// The `filesystem` store: a directory every node can write (a shared
    /// mount in a cluster).
    pub directory: PathBuf,
    /// The `s3` store's bucket.
    pub s3_bucket: String,
    /// An S3-compatible server's URL (`http://10.0.0.5:9000`); empty: AWS.
    pub s3_endpoint: String,
    /// The region; empty: `AWS_REGION`, else `us-east-1`.
    pub s3_region: String,
    /// A prefix for every object of the store, so that clusters can share
    /// a bucket.
    pub s3_base_path: String,
    /// The access key; empty: `AWS_ACCESS_KEY_ID`.
    pub s3_access_key: String,
    /// The secret key; empty: `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_key: String,
}

/// The kind of backup store [`BackupConfig`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupStoreKind {
    /// Backups are off.
    None,
    /// A directory.
    Filesystem,
    /// An S3 bucket.
    S3,
}

impl BackupConfig {
    /// The kind of store (after [`Config::validate`]).
    pub fn kind(&self) -> BackupStoreKind {
        match self.store.to_ascii_lowercase().as_str() {
            "s3" => BackupStoreKind::S3,
            "filesystem" => BackupStoreKind::Filesystem,
            "" if !self.directory.as_os_str().is_empty() => BackupStoreKind::Filesystem,
            _ => BackupStoreKind::None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.store.to_ascii_lowercase().as_str() {
            "" | "none" => Ok(()),
            "filesystem" if self.directory.as_os_str().is_empty() => Err(invalid(
                "backup.directory",
                "must name a directory when backup.store is `filesystem`".into(),
            )),
            "s3" if self.s3_bucket.is_empty() => Err(invalid(
                "backup.s3_bucket",
                "must name a bucket when backup.store is `s3`".into(),
            )),
            "s3" if !self.s3_endpoint.is_empty()
                && !self.s3_endpoint.starts_with("http://")
                && !self.s3_endpoint.starts_with("https://") =>
            {
                Err(invalid(
                    "backup.s3_endpoint",
                    format!("`{}` is not an http:// or https:// URL", self.s3_endpoint),
                ))
            }
            "filesystem" | "s3" => Ok(()),
            other => Err(invalid(
                "backup.store",
                format!("`{other}` is not one of filesystem, s3, none"),
            )),
        }
    }
}

/// How the engine evaluates models; must be the same on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The time zone of FEEL's `now()` and `today()`: an IANA name
    /// (`Europe/Berlin`) or an offset (`+01:00`). The host's zone is never
    /// used, so every replica computes the same values.
    pub time_zone: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            time_zone: "UTC".to_string(),
        }
    }
}

/// Where and how the broker logs (see [`crate::logging`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Level or filter directives (`info`, `warn,node::consensus=debug`);
    /// the `WAGGLE_LOG` variable, if set, takes precedence.
    pub level: String,
    /// `auto` (journald when stderr is the journal, else text), `text`,
    /// `json` (one object per line) or `journald`.
    pub format: LogFormat,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Native journald entries when stderr is connected to the journal,
    /// else text.
    Auto,
    /// Human-readable lines on stderr, coloured only on a terminal.
    Text,
    /// One JSON object per event on stderr.
    Json,
    /// Native journald entries: priority per level, structured fields.
    Journald,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: LogFormat::Auto,
        }
    }
}

/// The Orchestration Cluster REST API (v2), on `network.host`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestConfig {
    /// Serve the REST API.
    pub enabled: bool,
    /// Its TCP port.
    pub port: u16,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 8080,
        }
    }
}

/// The JSON-lines record exporter (see `exporter` in the crate docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterConfig {
    /// Export every record the partitions produce.
    pub enabled: bool,
    /// Where `partition-<id>.jsonl` files are written; empty means
    /// `<data.directory>/exports`.
    pub directory: PathBuf,
    /// Records a partition may hold for the exporter before it refuses new
    /// work (RESOURCE_EXHAUSTED).
    pub max_lag_records: u64,
    /// How often a leader records the exported position in the log.
    pub position_interval_ms: u64,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            directory: PathBuf::new(),
            max_lag_records: 1_000_000,
            position_interval_ms: 100,
        }
    }
}

impl ExporterConfig {
    /// The directory the exporter writes into.
    pub fn directory_in(&self, data: &Path) -> PathBuf {
        if self.directory.as_os_str().is_empty() {
            data.join("exports")
        } else {
            self.directory.clone()
        }
    }
}

/// Certificates for node-to-node QUIC, as `waggle certs` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM of the cluster CA that peers' certificates must chain to.
    pub ca_file: PathBuf,
    /// PEM of a second trusted CA, while certificates are rotated; empty if none.
    pub extra_ca_file: PathBuf,
    /// PEM of this node's certificate (naming `node-<id>.<cluster.name>`).
    pub cert_file: PathBuf,
    /// PEM of this node's private key (mode 0600).
    pub key_file: PathBuf,
}

/// Zeebe's cluster knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's id, `0 <= node_id < size`.
    pub node_id: u32,
    /// Number of nodes in the cluster.
    pub size: u32,
    /// Number of partitions, numbered from 1.
    pub partitions: u32,
    /// Replicas per partition, `<= size`.
    pub replication_factor: u32,
    /// `host:port` of every node's internal (QUIC) endpoint, in node id
    /// order (entry `i` is node `i`); empty for a single node.
    pub contact_points: Vec<String>,
    /// This node's zone label; `zones[node_id]` when `zones` is given.
    pub zone: String,
    /// This node's region label; `regions[node_id]` when `regions` is given.
    pub region: String,
    /// The zone of every broker, in node id order (as `contact_points`);
    /// empty: all in one zone. With more than one place, each partition's
    /// replicas spread over the regions, then the zones (see
    /// `crate::placement::Layout`); identical on every node.
    pub zones: Vec<String>,
    /// The region of every broker, in node id order; empty: all in one.
    pub regions: Vec<String>,
    /// The region the preferred leaders sit in (one of `regions`); empty:
    /// any region.
    pub primary_region: String,
    /// The zone the preferred leaders sit in (one of `zones`); empty: any.
    pub primary_zone: String,
    /// Cluster name; nodes of different clusters refuse each other.
    pub name: String,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Raft election timeout.
    pub election_timeout_ms: u64,
    /// A peer silent this long is lost: its QUIC connection closes, commands
    /// forwarded to it fail at once (UNAVAILABLE, for the client to retry)
    /// and elections stop waiting for it. Keep-alive packets go out every
    /// quarter of it, so a live peer is never silent that long.
    pub peer_timeout_ms: u64,
    /// Replicas compare fingerprints of their state every this many applied
    /// entries (see `crate::divergence`); 0 turns the check off. A
    /// fingerprint reads the whole state as a snapshot does, so the default
    /// is one per snapshot's worth of entries.
    pub state_check_entries: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            size: 1,
            partitions: 1,
            replication_factor: 1,
            contact_points: Vec::new(),
            zone: "default".into(),
            region: "default".into(),
            zones: Vec::new(),
            regions: Vec::new(),
            primary_region: String::new(),
            primary_zone: String::new(),
            name: "waggle".into(),
            heartbeat_interval_ms: 250,
            election_timeout_ms: 2500,
            peer_timeout_ms: 1000,
            state_check_entries: 20_000,
        }
    }
}

impl ClusterConfig {
    /// Where the brokers are, as placement reads it.
    pub fn layout(&self) -> crate::placement::Layout {
        let brokers = self.zones.len().max(self.regions.len());
        let label = |list: &[String], n: usize| list.get(n).cloned().unwrap_or_default();
        let locations = (0..brokers)
            .map(|n| {
                let at = crate::placement::Location {
                    region: label(&self.regions, n),
                    zone: label(&self.zones, n),
                };
                (n as crate::placement::NodeId, at)
            })
            .collect();
        crate::placement::Layout {
            locations,
            primary_region: self.primary_region.clone(),
            primary_zone: self.primary_zone.clone(),
        }
    }

    /// `zones`, `regions` and the primary place against the `brokers`
    /// brokers and this node's own labels.
    fn validate_layout(&self, brokers: u32) -> Result<(), ConfigError> {
        for (key, list, own, primary_key, primary) in [
            (
                "cluster.zones",
                &self.zones,
                &self.zone,
                "cluster.primary_zone",
                &self.primary_zone,
            ),
            (
                "cluster.regions",
                &self.regions,
                &self.region,
                "cluster.primary_region",
                &self.primary_region,
            ),
        ] {
            if list.is_empty() {
                if !primary.is_empty() {
                    return Err(invalid(
                        primary_key,
                        format!("`{primary}` needs {key}, the label of every broker"),
                    ));
                }
                continue;
            }
            if list.len() != brokers as usize {
                return Err(invalid(
                    key,
                    format!(
                        "has {} entries; it needs one per broker ({brokers}: cluster.size or \
                         the length of cluster.contact_points), in node id order",
                        list.len()
                    ),
                ));
            }
            if let Some(n) = list.iter().position(|l| l.trim().is_empty()) {
                return Err(invalid(key, format!("entry {n} (broker {n}) is empty")));
            }
            let mine = &list[self.node_id as usize];
            if own != "default" && own != mine {
                return Err(invalid(
                    key,
                    format!(
                        "names `{mine}` for broker {}, but this broker's own label is `{own}`: \
                         leave the own label out or make them agree",
                        self.node_id
                    ),
                ));
            }
            if !primary.is_empty() && !list.contains(primary) {
                return Err(invalid(
                    primary_key,
                    format!("`{primary}` is not in {key} ({})", list.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// Listening addresses and ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Address every listener binds to (loopback unless set: see
    /// `security.authentication`).
    pub host: String,
    /// Address other nodes and clients are told to use; empty means `host`.
    pub advertised_host: String,
    /// Zeebe gRPC gateway port.
    pub gateway_port: u16,
    /// Node-to-node QUIC port.
    pub internal_port: u16,
    /// Management HTTP port (`/ready`, `/health`, `/startup`, `/metrics`).
    pub management_port: u16,
    /// Largest gRPC message accepted or sent.
    pub max_message_size_bytes: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            advertised_host: String::new(),
            gateway_port: 26500,
            internal_port: 26502,
            management_port: 9600,
            max_message_size_bytes: 4 << 20,
        }
    }
}

impl NetworkConfig {
    /// The host other nodes and clients should use.
    pub fn advertised(&self) -> &str {
        if self.advertised_host.is_empty() {
            &self.host
        } else {
            &self.advertised_host
        }
    }
}

/// Storage of logs and snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory holding one sub-directory per partition.
    pub directory: PathBuf,
    /// Size of each preallocated log segment.
    pub segment_size_bytes: u64,
    /// Time between snapshots of a partition's state.
    pub snapshot_period_ms: u64,
    /// Below this much free space, writes are refused with `RESOURCE_EXHAUSTED`.
    pub min_free_space_bytes: u64,
    /// Start a partition whose log lost committed (acknowledged) entries
    /// that no other replica can give back: a single-replica partition, or
    /// a replicated one where every replica lost them. Off, such a
    /// partition refuses to start; a replicated partition recovers the
    /// entries from the other replicas either way unless this is on.
    pub accept_data_loss: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            directory: PathBuf::from("data"),
            segment_size_bytes: 128 << 20,
            snapshot_period_ms: 5 * 60 * 1000,
            min_free_space_bytes: 256 << 20,
            accept_data_loss: false,
        }
    }
}

/// Shard threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Number of shards (glommio executors, one pinned per core); 0 means one per
    /// available core.
    pub shards: u32,
    /// Shard loop period: group commit happens at most once per tick.
    pub tick_ms: u64,
    /// Memory each shard registers with io_uring for DMA buffers (locked memory).
    pub io_memory_bytes: u64,
    /// Pin each shard to its own core.
    pub pin_shards: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            tick_ms: 1,
            io_memory_bytes: 2 << 20,
            pin_shards: true,
        }
    }
}

/// The client gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// How long the gateway waits for a partition to answer a command.
    pub request_timeout_ms: u64,
    /// Default long-polling time of `ActivateJobs`.
    pub long_polling_timeout_ms: u64,
    /// Serve `waggle_bench.RawAppend` (opaque records through Raft and
    /// storage, without the engine) for benchmarks. Never in production: it
    /// lets any client fill the log.
    pub raw_append_enabled: bool,
    /// PEM certificate chain of the client ports (gRPC gateway, REST,
    /// management): with `tls_key_file`, they all speak TLS only. Empty:
    /// plaintext. Reloaded when the file changes.
    pub tls_cert_file: PathBuf,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: PathBuf,
    /// PEM CA certificates: when set, clients of those ports must present a
    /// certificate that chains to one of them.
    pub tls_client_ca_file: PathBuf,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 15_000,
            long_polling_timeout_ms: 10_000,
            raw_append_enabled: false,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            tls_client_ca_file: PathBuf::new(),
        }
    }
}

impl GatewayConfig {
    /// The client ports' TLS files; `None` for plaintext.
    pub fn tls_files(&self) -> Option<crate::identity::TlsFiles> {
        if self.tls_cert_file.as_os_str().is_empty() {
            return None;
        }
        Some(crate::identity::TlsFiles {
            cert: self.tls_cert_file.clone(),
            key: self.tls_key_file.clone(),
            client_ca: (!self.tls_client_ca_file.as_os_str().is_empty())
                .then(|| self.tls_client_ca_file.clone()),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        match (set(&self.tls_cert_file), set(&self.tls_key_file)) {
            (true, false) => Err(invalid(
                "gateway.tls_key_file",
                "must be set with gateway.tls_cert_file".into(),
            )),
            (false, true) => Err(invalid(
                "gateway.tls_cert_file",
                "must be set with gateway.tls_key_file".into(),
            )),
            (false, false) if set(&self.tls_client_ca_file) => Err(invalid(
                "gateway.tls_client_ca_file",
                "needs gateway.tls_cert_file and gateway.tls_key_file (client certificates need TLS)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The adaptive in-flight command limit per partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackpressureConfig {
    /// Turn the limit off entirely (never refuse for load).
    pub enabled: bool,
    /// Limit at start-up.
    pub initial_limit: u32,
    /// The limit never shrinks below this.
    pub min_limit: u32,
    /// The limit never grows above this.
    pub max_limit: u32,
    /// Commands answered faster than this grow the limit; slower ones shrink it.
    pub latency_target_ms: u64,
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_limit: 100,
            min_limit: 10,
            max_limit: 1000,
            latency_target_ms: 200,
        }
    }
}

impl Config {
    /// The configuration `waggle dev` starts from: the defaults, with every
    /// listener on loopback.
    pub fn dev() -> Self {
        let mut config = Self::default();
        config.network.host = "127.0.0.1".into();
        config.secondary_storage.kind = StorageType::Sqlite;
        config
    }

    /// Layers the optional TOML file and the `WAGGLE_` variables in `env` over
    /// `base`, then validates the result.
    pub fn load(
        base: Config,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let defaults =
            toml::Table::try_from(&base).expect("the configuration serialises as a table");
        let mut merged = defaults.clone();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?;
            merge(&mut merged, table);
        }
        apply_env(&defaults, &mut merged, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                ConfigError::Key {
                    key: e.path().to_string(),
                    message: e.into_inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between keys that types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        engine::expression::check_time_zone(&self.engine.time_zone)
            .map_err(|e| invalid("engine.time_zone", e))?;
        self.backup.validate()?;
        let c = &self.cluster;
        if c.size == 0 || c.size > MAX_CLUSTER_SIZE {
            return Err(invalid(
                "cluster.size",
                format!("{} is not in 1..={MAX_CLUSTER_SIZE}", c.size),
            ));
        }
        // Brokers beyond `size` are the ones a cluster change can add: they
        // have an address in contact_points.
        let brokers = c.size.max(c.contact_points.len() as u32);
        if c.node_id >= brokers {
            return Err(invalid(
                "cluster.node_id",
                format!(
                    "{} must be below cluster.size ({}) or name a broker of cluster.contact_points",
                    c.node_id, c.size
                ),
            ));
        }
        if c.partitions == 0 || c.partitions > MAX_PARTITIONS {
            return Err(invalid(
                "cluster.partitions",
                format!("{} is not in 1..={MAX_PARTITIONS}", c.partitions),
            ));
        }
        if c.replication_factor == 0 || c.replication_factor > c.size {
            return Err(invalid(
                "cluster.replication_factor",
                format!(
                    "{} is not in 1..=cluster.size ({})",
                    c.replication_factor, c.size
                ),
            ));
        }
        for point in &c.contact_points {
            if !valid_host_port(point) {
                return Err(invalid(
                    "cluster.contact_points",
                    format!("`{point}` is not of the form host:port"),
                ));
            }
        }
        if brokers > 1 {
            if c.contact_points.len() < c.size as usize {
                return Err(invalid(
                    "cluster.contact_points",
                    format!(
                        "has {} entries; a cluster of {} nodes needs one host:port per node, in node id order",
                        c.contact_points.len(),
                        c.size
                    ),
                ));
            }
            for (key, path) in [
                ("tls.ca_file", &self.tls.ca_file),
                ("tls.cert_file", &self.tls.cert_file),
                ("tls.key_file", &self.tls.key_file),
            ] {
                if path.as_os_str().is_empty() {
                    return Err(invalid(
                        key,
                        "is required when cluster.size > 1 (create the files with `waggle certs`)"
                            .into(),
                    ));
                }
            }
        }
        c.validate_layout(brokers)?;
        if c.heartbeat_interval_ms == 0 || c.election_timeout_ms <= c.heartbeat_interval_ms {
            return Err(invalid(
                "cluster.election_timeout_ms",
                format!(
                    "{} must be above cluster.heartbeat_interval_ms ({}), which must be above 0",
                    c.election_timeout_ms, c.heartbeat_interval_ms
                ),
            ));
        }
        if !(MIN_PEER_TIMEOUT_MS..=MAX_PEER_TIMEOUT_MS).contains(&c.peer_timeout_ms) {
            return Err(invalid(
                "cluster.peer_timeout_ms",
                format!(
                    "{} is not in {MIN_PEER_TIMEOUT_MS}..={MAX_PEER_TIMEOUT_MS}",
                    c.peer_timeout_ms
                ),
            ));
        }
        let n = &self.network;
        if n.host.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "network.host",
                format!("`{}` is not an IP address", n.host),
            ));
        }
        let mut ports = vec![
            ("network.gateway_port", n.gateway_port),
            ("network.internal_port", n.internal_port),
            ("network.management_port", n.management_port),
        ];
        if self.rest.enabled {
            ports.push(("rest.port", self.rest.port));
        }
        for (i, (key, port)) in ports.iter().enumerate() {
            if *port == 0 {
                return Err(invalid(key, "0 is not a port".into()));
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(invalid(
                    key,
                    format!("port {port} is already used by {other}"),
                ));
            }
        }
        if n.max_message_size_bytes < 1024 || n.max_message_size_bytes > MAX_MESSAGE_SIZE_BYTES {
            return Err(invalid(
                "network.max_message_size_bytes",
                format!(
                    "{} is not in 1024..={MAX_MESSAGE_SIZE_BYTES}",
                    n.max_message_size_bytes
                ),
            ));
        }
        if self.exporter.max_lag_records == 0 || self.exporter.max_lag_records > 1 << 32 {
            return Err(invalid(
                "exporter.max_lag_records",
                format!("{} is not in 1..=2^32", self.exporter.max_lag_records),
            ));
        }
        if self.exporter.position_interval_ms == 0 || self.exporter.position_interval_ms > 60_000 {
            return Err(invalid(
                "exporter.position_interval_ms",
                format!("{} is not in 1..=60000", self.exporter.position_interval_ms),
            ));
        }
        self.secondary_storage.validate()?;
        self.gateway.validate()?;
        self.security.validate(&n.host)?;
        if self.data.directory.as_os_str().is_empty() {
            return Err(invalid("data.directory", "must not be empty".into()));
        }
        if self.data.segment_size_bytes < (1 << 20) || self.data.segment_size_bytes % 4096 != 0 {
            return Err(invalid(
                "data.segment_size_bytes",
                format!(
                    "{} must be a multiple of 4096 and at least 1 MiB",
                    self.data.segment_size_bytes
                ),
            ));
        }
        let r = &self.runtime;
        if r.tick_ms == 0 || r.tick_ms > MAX_TICK_MS {
            return Err(invalid(
                "runtime.tick_ms",
                format!("{} is not in 1..={MAX_TICK_MS}", r.tick_ms),
            ));
        }
        if r.io_memory_bytes < (256 << 10) {
            return Err(invalid(
                "runtime.io_memory_bytes",
                format!("{} is below 256 KiB", r.io_memory_bytes),
            ));
        }
        if !valid_log_filter(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!(
                    "`{}` is not a level or filter: use off, error, warn, info, debug or trace, \
                     or a list such as `info,node::consensus=debug`",
                    self.log.level
                ),
            ));
        }
        if self.gateway.request_timeout_ms == 0 {
            return Err(invalid(
                "gateway.request_timeout_ms",
                "must be above 0".into(),
            ));
        }
        let b = &self.backpressure;
        if b.min_limit == 0 || b.min_limit > b.initial_limit || b.initial_limit > b.max_limit {
            return Err(invalid(
                "backpressure.initial_limit",
                format!(
                    "need 0 < min_limit ({}) <= initial_limit ({}) <= max_limit ({})",
                    b.min_limit, b.initial_limit, b.max_limit
                ),
            ));
        }
        Ok(())
    }

    /// The address the gateway listens on.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.socket_addr(self.network.gateway_port)
    }

    /// The address the REST API listens on.
    pub fn rest_addr(&self) -> SocketAddr {
        self.socket_addr(self.rest.port)
    }

    /// The address the management HTTP server listens on.
    pub fn management_addr(&self) -> SocketAddr {
        self.socket_addr(self.network.management_port)
    }

    fn socket_addr(&self, port: u16) -> SocketAddr {
        let ip = self
            .network
            .host
            .parse()
            .expect("network.host is validated as an IP address");
        SocketAddr::new(ip, port)
    }
}

/// A log filter of levels and `target=level` directives, comma separated.
/// Stricter than tracing's own syntax, where a bare word is a target name
/// and `loud` would silently mean "everything from target loud".
fn valid_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter
            .split(',')
            .all(|directive| match directive.rsplit_once('=') {
                Some((target, l)) => !target.trim().is_empty() && level(l),
                None => level(directive),
            })
        && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Key {
        key: key.to_string(),
        message,
    }
}

fn valid_host_port(point: &str) -> bool {
    match point.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

/// Overlays `over` onto `base`, table by table; unknown keys are kept so that
/// deserialisation reports them.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The environment variable that overrides `table.key`.
pub fn env_var_name(table: &str, key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}_{}",
        table.to_uppercase(),
        key.to_uppercase()
    )
}

fn apply_env(
    defaults: &toml::Table,
    merged: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut known = std::collections::BTreeMap::new();
    for (table, value) in defaults {
        if let toml::Value::Table(keys) = value {
            for (key, default) in keys {
                known.insert(
                    env_var_name(table, key),
                    (table.clone(), key.clone(), default.clone()),
                );
            }
        }
    }
    let ignored: BTreeSet<&str> = NON_CONFIG_ENV_VARS.into_iter().collect();
    for (var, raw) in env {
        if !var.starts_with(ENV_PREFIX) || ignored.contains(var.as_str()) {
            continue;
        }
        let Some((table, key, default)) = known.get(&var) else {
            return Err(ConfigError::Env {
                message: "names no configuration key (variables are WAGGLE_<TABLE>_<KEY>, e.g. WAGGLE_CLUSTER_NODE_ID)"
                    .into(),
                var,
            });
        };
        let value = env_value(default, &raw).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message: format!("value `{raw}` for `{table}.{key}`: {message}"),
        })?;
        if let Some(toml::Value::Table(t)) = merged.get_mut(table) {
            t.insert(key.clone(), value);
        }
    }
    Ok(())
}

/// Reads a variable's text as the type of the key's default: strings are taken
/// verbatim, lists may be comma-separated, everything else is a TOML value.
fn env_value(default: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_string())),
        toml::Value::Array(_) if !raw.trim_start().starts_with('[') => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        _ => {
            let doc: toml::Table = format!("v = {raw}")
                .parse()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            doc.get("v").cloned().ok_or_else(|| "no value".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("waggle.toml");
        std::fs::write(&path, text).expect("temp file");
        path
    }

    #[test]
    fn log_filters_are_levels_or_target_levels() {
        for good in ["info", "WARN", "info,node::consensus=debug", "off"] {
            assert!(valid_log_filter(good), "{good}");
        }
        for bad in ["loud", "", "info,", "node=loud", "=debug"] {
            assert!(!valid_log_filter(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_serve_a_single_node_dev_broker() {
        let config = Config::load(Config::dev(), None, env(&[])).expect("defaults are valid");
        assert_eq!(config.cluster.size, 1);
        assert_eq!(config.cluster.replication_factor, 1);
        assert_eq!(config.network.gateway_port, 26500);
        assert_eq!(config.network.management_port, 9600);
        assert_eq!(config.data.directory, PathBuf::from("data"));
        assert_eq!(config.gateway_addr().to_string(), "127.0.0.1:26500");
    }

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(
            &dir,
            "[cluster]\nsize = 3\nnode_id = 1\nreplication_factor = 3\npartitions = 3\n[network]\ngateway_port = 1234\n\
             [tls]\nca_file = \"ca.pem\"\ncert_file = \"node.pem\"\nkey_file = \"node-key.pem\"\n",
        );
        let config = Config::load(
            Config::default(),
            Some(&path),
            env(&[
                ("WAGGLE_CLUSTER_NODE_ID", "2"),
                ("WAGGLE_CLUSTER_CONTACT_POINTS", "a:1, b:2, c:3"),
                ("WAGGLE_CLUSTER_ZONE", "z1"),
                ("WAGGLE_LOG", "debug"),
                ("HOME", "/root"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.cluster.size, 3);
        assert_eq!(config.cluster.node_id, 2);
        assert_eq!(
            config.cluster.contact_points,
            vec!["a:1".to_string(), "b:2".to_string(), "c:3".to_string()]
        );
        assert_eq!(config.cluster.zone, "z1");
        assert_eq!(config.network.gateway_port, 1234);
        assert_eq!(config.network.management_port, 9600);
    }

    #[test]
    fn a_cluster_needs_every_contact_point_and_its_certificates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(
            &dir,
            "[cluster]\nsize = 3\nreplication_factor = 3\ncontact_points = [\"a:1\"]\n",
        );
        let e = Config::load(Config::default(), Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("cluster.contact_points"), "{e}");
        let path = write(
            &dir,
            "[cluster]\nsize = 2\ncontact_points = [\"a:1\", \"b:1\"]\n",
        );
        let e = Config::load(Config::default(), Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("tls.ca_file"), "{e}");
        // Brokers beyond `size` with an address can be added by a change.
        let five = "contact_points = [\"a:1\", \"b:1\", \"c:1\", \"d:1\", \"e:1\"]";
        let path = write(&dir, &format!("[cluster]\nsize = 3\nnode_id = 4\n{five}\n"));
        let e = Config::load(Config::default(), Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("tls.ca_file"), "{e}");
        let path = write(&dir, &format!("[cluster]\nsize = 3\nnode_id = 5\n{five}\n"));
        let e = Config::load(Config::default(), Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("cluster.node_id"), "{e}");
    }

    #[test]
    fn zones_and_regions_name_every_broker_and_the_primary_place() {
        let mut config = Config::default();
        config.cluster.size = 4;
        config.cluster.replication_factor = 4;
        config.cluster.node_id = 1;
        config.cluster.contact_points = (0..4).map(|n| format!("h{n}:1")).collect();
        config.tls.ca_file = "ca.pem".into();
        config.tls.cert_file = "node.pem".into();
        config.tls.key_file = "node-key.pem".into();
        config.cluster.regions = ["east", "west", "east", "west"].map(String::from).to_vec();
        config.cluster.primary_region = "east".into();
        config.validate().expect("a dual-region cluster");
        let layout = config.cluster.layout();
        assert_eq!(layout.locations[&3].region, "west");
        assert_eq!(layout.primary_region, "east");

        let refused = |config: &Config, key: &str, text: &str| {
            let e = config.validate().expect_err(key).to_string();
            assert!(e.contains(key) && e.contains(text), "{key}: {e}");
        };
        let mut bad = config.clone();
        bad.cluster.primary_region = "north".into();
        refused(&bad, "cluster.primary_region", "`north` is not in");
        let mut bad = config.clone();
        bad.cluster.regions.pop();
        refused(&bad, "cluster.regions", "has 3 entries");
        let mut bad = config.clone();
        bad.cluster.region = "east".into();
        refused(&bad, "cluster.regions", "own label is `east`");
        let mut bad = config.clone();
        bad.cluster.primary_zone = "a".into();
        refused(&bad, "cluster.primary_zone", "needs cluster.zones");
        let mut bad = config;
        bad.cluster.zones = vec!["a".into(), " ".into(), "b".into(), "c".into()];
        refused(&bad, "cluster.zones", "entry 1");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, "[cluster]\nnode_idd = 1\n");
        let err = Config::load(Config::default(), Some(&path), env(&[])).expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("cluster"), "{text}");
        assert!(text.contains("node_idd"), "{text}");
        let path = write(&dir, "[clusterr]\nnode_id = 1\n");
        let text = Config::load(Config::default(), Some(&path), env(&[]))
            .expect_err("unknown table")
            .to_string();
        assert!(text.contains("clusterr"), "{text}");
    }

    #[test]
    fn bad_value_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, "[network]\ngateway_port = \"high\"\n");
        let text = Config::load(Config::default(), Some(&path), env(&[]))
            .expect_err("bad type")
            .to_string();
        assert!(text.contains("network.gateway_port"), "{text}");
        let path = write(&dir, "[network]\ngateway_port = 70000\n");
        let text = Config::load(Config::default(), Some(&path), env(&[]))
            .expect_err("out of range")
            .to_string();
        assert!(text.contains("network.gateway_port"), "{text}");
        let path = write(&dir, "[cluster]\nsize = 3\nnode_id = 3\n");
        let text = Config::load(Config::default(), Some(&path), env(&[]))
            .expect_err("node id")
            .to_string();
        assert!(text.contains("cluster.node_id"), "{text}");
        let path = write(&dir, "[cluster]\nreplication_factor = 2\n");
        let text = Config::load(Config::default(), Some(&path), env(&[]))
            .expect_err("rf")
            .to_string();
        assert!(text.contains("cluster.replication_factor"), "{text}");
        for bad in [0, 99, 600_001] {
            let path = write(&dir, &format!("[cluster]\npeer_timeout_ms = {bad}\n"));
            let text = Config::load(Config::default(), Some(&path), env(&[]))
                .expect_err("peer timeout")
                .to_string();
            assert!(text.contains("cluster.peer_timeout_ms"), "{text}");
        }
        let path = write(&dir, "[cluster\n");
        let err = Config::load(Config::default(), Some(&path), env(&[])).expect_err("syntax");
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn the_backup_store_is_a_directory_or_a_bucket_and_a_bad_one_is_named() {
        let load = |pairs: &[(&str, &str)]| Config::load(Config::default(), None, env(pairs));
        let kind = |pairs: &[(&str, &str)]| load(pairs).expect("valid").backup.kind();
        assert_eq!(kind(&[]), BackupStoreKind::None);
        assert_eq!(
            kind(&[("WAGGLE_BACKUP_DIRECTORY", "/b")]),
            BackupStoreKind::Filesystem
        );
        assert_eq!(
            kind(&[
                ("WAGGLE_BACKUP_STORE", "S3"),
                ("WAGGLE_BACKUP_S3_BUCKET", "backups"),
                ("WAGGLE_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ]),
            BackupStoreKind::S3
        );
        for (pairs, key) in [
            (&[("WAGGLE_BACKUP_STORE", "s3")][..], "backup.s3_bucket"),
            (
                &[("WAGGLE_BACKUP_STORE", "filesystem")][..],
                "backup.directory",
            ),
            (&[("WAGGLE_BACKUP_STORE", "tape")][..], "backup.store"),
            (
                &[
                    ("WAGGLE_BACKUP_STORE", "s3"),
                    ("WAGGLE_BACKUP_S3_BUCKET", "b"),
                    ("WAGGLE_BACKUP_S3_ENDPOINT", "127.0.0.1:9000"),
                ][..],
                "backup.s3_endpoint",
            ),
        ] {
            let text = load(pairs).expect_err("invalid").to_string();
            assert!(text.contains(key), "{key}: {text}");
        }
    }

    #[test]
    fn client_tls_needs_a_certificate_and_its_key() {
        let load = |pairs: &[(&str, &str)]| Config::load(Config::default(), None, env(pairs));
        assert_eq!(load(&[]).expect("valid").gateway.tls_files(), None);
        let files = load(&[
            ("WAGGLE_GATEWAY_TLS_CERT_FILE", "/c.pem"),
            ("WAGGLE_GATEWAY_TLS_KEY_FILE", "/k.pem"),
        ])
        .expect("valid")
        .gateway
        .tls_files()
        .expect("tls");
        assert_eq!(
            (files.cert.to_str(), files.client_ca),
            (Some("/c.pem"), None)
        );
        for (pairs, key) in [
            (
                &[("WAGGLE_GATEWAY_TLS_CERT_FILE", "/c.pem")][..],
                "gateway.tls_key_file",
            ),
            (
                &[("WAGGLE_GATEWAY_TLS_KEY_FILE", "/k.pem")][..],
                "gateway.tls_cert_file",
            ),
            (
                &[("WAGGLE_GATEWAY_TLS_CLIENT_CA_FILE", "/ca.pem")][..],
                "gateway.tls_client_ca_file",
            ),
        ] {
            let text = load(pairs).expect_err("invalid").to_string();
            assert!(text.contains(key), "{key}: {text}");
        }
    }

    #[test]
    fn bad_env_is_named() {
        let err = Config::load(
            Config::default(),
            None,
            env(&[("WAGGLE_CLUSTER_NODEID", "1")]),
        )
        .expect_err("unknown");
        assert!(err.to_string().contains("WAGGLE_CLUSTER_NODEID"), "{err}");
        let err = Config::load(
            Config::default(),
            None,
            env(&[("WAGGLE_NETWORK_GATEWAY_PORT", "x")]),
        )
        .expect_err("bad value");
        let text = err.to_string();
        assert!(
            text.contains("WAGGLE_NETWORK_GATEWAY_PORT") && text.contains("network.gateway_port"),
            "{text}"
        );
        let err = Config::load(
            Config::default(),
            None,
            env(&[("WAGGLE_NETWORK_GATEWAY_PORT", "9600")]),
        )
        .expect_err("clash");
        assert!(err.to_string().contains("network.management_port"), "{err}");
    }
}
