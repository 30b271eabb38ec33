//! `waggle`: the broker (`waggle dev`, `waggle broker --config FILE`) and a thin
//! client over its gateway (`status`, `deploy`, `create-instance`,
//! `publish-message`, `cancel`, `resolve-incident`, `certs`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use node::broker::{self, Mode};
use node::client;
use node::config::{Config, ConfigError};

/// Default gateway address of the client commands.
const DEFAULT_ADDRESS: &str = "http://127.0.0.1:26500";

#[derive(Debug, Parser)]
#[command(
    name = "waggle",
    version,
    about = "A BPMN workflow engine that speaks the Zeebe gateway protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Address {
    /// Gateway address of the broker (`host:port`; `https://host:port` for TLS).
    #[arg(long, env = "WAGGLE_ADDRESS", default_value = DEFAULT_ADDRESS)]
    address: String,
    /// PEM CA certificates the gateway's certificate must chain to (TLS).
    #[arg(long, env = "WAGGLE_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// PEM client certificate, for a gateway that requires one (with --key-file).
    #[arg(long, env = "WAGGLE_CERT_FILE", requires = "key_file")]
    cert_file: Option<PathBuf>,
    /// PEM private key of --cert-file.
    #[arg(long, env = "WAGGLE_KEY_FILE", requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// User name, for a broker with basic authentication (with --password).
    #[arg(long, env = "WAGGLE_USERNAME", requires = "password")]
    username: Option<String>,
    /// Password of --username.
    #[arg(
        long,
        env = "WAGGLE_PASSWORD",
        requires = "username",
        hide_env_values = true
    )]
    password: Option<String>,
}

impl Address {
    fn gateway(&self) -> client::Gateway {
        client::Gateway {
            address: self.address.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.cert_file.clone().zip(self.key_file.clone()),
            credentials: self.username.clone().zip(self.password.clone()),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a single-node development broker (data in ./data, listeners on loopback).
    Dev {
        /// Optional TOML file layered over the development defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs a cluster member configured by a TOML file (and WAGGLE_* variables).
    Broker {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Restores this node's partitions of a backup into empty data
    /// directories (see node/src/backup/README.md).
    Restore {
        /// The backup.
        #[arg(long)]
        backup_id: u64,
        /// The broker's configuration file.
        #[arg(long, conflicts_with = "dev")]
        config: Option<PathBuf>,
        /// Use the development broker's defaults (`waggle dev`).
        #[arg(long)]
        dev: bool,
    },
    /// Prints the configuration: the built-in defaults (--default), or what
    /// FILE and the WAGGLE_* variables make of them, as TOML.
    Config {
        /// Print the built-in defaults of `waggle broker`.
        #[arg(long, conflicts_with = "file")]
        default: bool,
        /// A configuration file to check and print with its defaults filled in.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Users, roles and authorizations, through the REST API.
    Identity {
        #[command(flatten)]
        target: node::client_identity::RestTarget,
        #[command(subcommand)]
        command: node::client_identity::IdentityCommand,
    },
    /// The cluster configuration, through the cluster API of a broker's
    /// management port.
    Cluster {
        #[command(flatten)]
        target: node::client_cluster::ManagementTarget,
        #[command(subcommand)]
        command: node::client_cluster::ClusterCommand,
    },
    /// Prints the cluster topology, like `zbctl status`.
    Status {
        #[command(flatten)]
        address: Address,
    },
    /// Deploys BPMN and DMN resources.
    Deploy {
        #[command(flatten)]
        address: Address,
        /// The files to deploy.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Creates a process instance.
    CreateInstance {
        #[command(flatten)]
        address: Address,
        /// BPMN process id.
        bpmn_process_id: String,
        /// Process version; -1 is the latest.
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        version: i32,
        /// Variables, a JSON object.
        #[arg(long, default_value = "{}")]
        variables: String,
        /// Waits for the instance to complete and prints its variables.
        #[arg(long)]
        with_result: bool,
        /// How long to wait with --with-result, in ms (0: the gateway's timeout).
        #[arg(long, default_value_t = 0)]
        request_timeout_ms: i64,
    },
    /// Publishes a message.
    PublishMessage {
        #[command(flatten)]
        address: Address,
        /// Message name.
        name: String,
        /// Correlation key.
        #[arg(long)]
        correlation_key: String,
        /// Variables, a JSON object.
        #[arg(long, default_value = "{}")]
        variables: String,
        /// How long the message stays buffered, in ms.
        #[arg(long, default_value_t = 3_600_000)]
        ttl_ms: i64,
        /// Uniqueness id.
        #[arg(long, default_value = "")]
        message_id: String,
    },
    /// Activates jobs of a type (waits up to --request-timeout-ms for one).
    ActivateJobs {
        #[command(flatten)]
        address: Address,
        /// Job type.
        job_type: String,
        /// Worker name shown on the jobs.
        #[arg(long, default_value = "waggle-cli")]
        worker: String,
        /// Most jobs to activate.
        #[arg(long, default_value_t = 10)]
        max_jobs: i32,
        /// How long the jobs stay locked to this worker, in ms.
        #[arg(long, default_value_t = 300_000)]
        timeout_ms: i64,
        /// How long to wait for a job, in ms.
        #[arg(long, default_value_t = 10_000)]
        request_timeout_ms: i64,
    },
    /// Completes a job.
    CompleteJob {
        #[command(flatten)]
        address: Address,
        /// Job key.
        job_key: i64,
        /// Variables, a JSON object.
        #[arg(long, default_value = "{}")]
        variables: String,
    },
    /// Cancels a process instance.
    Cancel {
        #[command(flatten)]
        address: Address,
        /// Process instance key.
        process_instance_key: i64,
    },
    /// Resolves an incident.
    ResolveIncident {
        #[command(flatten)]
        address: Address,
        /// Incident key.
        incident_key: i64,
    },
    /// Creates the cluster CA (if missing) and the node certificates for
    /// mutual TLS between nodes, private keys with mode 0600.
    Certs {
        /// Directory for the CA and the certificates.
        #[arg(long)]
        dir: PathBuf,
        /// Cluster name (cluster.name), part of every certificate's name.
        #[arg(long, default_value = "waggle")]
        cluster_name: String,
        /// Issue certificates for nodes 0..N.
        #[arg(long, default_value_t = 0)]
        nodes: u32,
        /// Issue a client certificate with this name (repeatable).
        #[arg(long)]
        client: Vec<String>,
    },
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn print(value: serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dev { config } => {
            let config = Config::load(Config::dev(), config.as_deref(), env_vars())?;
            node::logging::init(&config.log)?;
            broker::run(config, Mode::Dev)
        }
        Command::Broker { config } => {
            let config = Config::load(Config::default(), Some(&config), env_vars())?;
            node::logging::init(&config.log)?;
            broker::run(config, Mode::Broker)
        }
        Command::Restore {
            backup_id,
            config,
            dev,
        } => {
            let base = if dev {
                Config::dev()
            } else {
                Config::default()
            };
            if !dev && config.is_none() {
                anyhow::bail!("waggle restore needs --config FILE (or --dev)");
            }
            let config = Config::load(base, config.as_deref(), env_vars())?;
            for line in node::backup::restore::run(&config, backup_id)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Config { default, file } => {
            let config = if default {
                Config::default()
            } else {
                Config::load(Config::default(), file.as_deref(), env_vars())?
            };
            print!(
                "{}",
                toml::to_string(&config).context("cannot print the configuration")?
            );
            Ok(())
        }
        Command::Identity { target, command } => {
            print(client_runtime()?.block_on(node::client_identity::run(&target, command))?)
        }
        Command::Cluster { target, command } => {
            print(client_runtime()?.block_on(node::client_cluster::run(&target, command))?)
        }
        Command::Status { address } => {
            print(client_runtime()?.block_on(client::status(&address.gateway()))?)
        }
        Command::Deploy { address, files } => {
            print(client_runtime()?.block_on(client::deploy(&address.gateway(), &files))?)
        }
        Command::CreateInstance {
            address,
            bpmn_process_id,
            version,
            variables,
            with_result,
            request_timeout_ms,
        } => print(client_runtime()?.block_on(client::create_instance(
            &address.gateway(),
            client::CreateInstance {
                bpmn_process_id,
                version,
                variables,
                with_result,
                request_timeout_ms,
            },
        ))?),
        Command::PublishMessage {
            address,
            name,
            correlation_key,
            variables,
            ttl_ms,
            message_id,
        } => print(client_runtime()?.block_on(client::publish_message(
            &address.gateway(),
            client::PublishMessage {
                name,
                correlation_key,
                variables,
                time_to_live_ms: ttl_ms,
                message_id,
            },
        ))?),
        Command::ActivateJobs {
            address,
            job_type,
            worker,
            max_jobs,
            timeout_ms,
            request_timeout_ms,
        } => print(client_runtime()?.block_on(client::activate_jobs(
            &address.gateway(),
            &job_type,
            &worker,
            max_jobs,
            timeout_ms,
            request_timeout_ms,
        ))?),
        Command::CompleteJob {
            address,
            job_key,
            variables,
        } => print(client_runtime()?.block_on(client::complete_job(
            &address.gateway(),
            job_key,
            variables,
        ))?),
        Command::Cancel {
            address,
            process_instance_key,
        } => print(
            client_runtime()?.block_on(client::cancel(&address.gateway(), process_instance_key))?,
        ),
        Command::ResolveIncident {
            address,
            incident_key,
        } => print(
            client_runtime()?
                .block_on(client::resolve_incident(&address.gateway(), incident_key))?,
        ),
        Command::Certs {
            dir,
            cluster_name,
            nodes,
            client,
        } => print(certs(&dir, &cluster_name, nodes, &client)?),
    }
}

fn certs(
    dir: &std::path::Path,
    cluster_name: &str,
    nodes: u32,
    clients: &[String],
) -> Result<serde_json::Value> {
    use transport::certs;
    let ca = if dir.join(certs::CA_KEY_FILE).exists() {
        certs::CertificateAuthority::load(dir)
            .with_context(|| format!("cannot load the CA in {}", dir.display()))?
    } else {
        certs::create_ca(dir, cluster_name)
            .with_context(|| format!("cannot create a CA in {}", dir.display()))?
    };
    let mut issued = Vec::new();
    for node in 0..nodes {
        let cert = certs::issue_node_cert(&ca, node, cluster_name, dir)
            .with_context(|| format!("cannot issue the certificate of node {node}"))?;
        issued.push(serde_json::json!({"node": node, "cert_file": cert.cert_path, "key_file": cert.key_path}));
    }
    for name in clients {
        let cert = certs::issue_client_cert(&ca, name, cluster_name, dir)
            .with_context(|| format!("cannot issue the client certificate {name}"))?;
        issued.push(serde_json::json!({"client": name, "cert_file": cert.cert_path, "key_file": cert.key_path}));
    }
    Ok(serde_json::json!({"ca_file": ca.cert_path(), "issued": issued}))
}

/// Exit status of a configuration error (sysexits' EX_CONFIG): the unit's
/// `RestartPreventExitStatus` keeps systemd from restarting a broker that
/// cannot start with its configuration.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waggle: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
