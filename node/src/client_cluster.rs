//! `waggle cluster ...`: the cluster API on a broker's management port
//! (see `crate::membership`), printed as JSON.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Where the management port is and how to log in to it.
#[derive(Debug, Clone, clap::Args)]
pub struct ManagementTarget {
    /// URL of a broker's management port.
    #[arg(
        long,
        env = "WAGGLE_MANAGEMENT_ADDRESS",
        default_value = "http://127.0.0.1:9600"
    )]
    pub management_address: String,
    /// How to trust the broker and log in.
    #[command(flatten)]
    pub login: crate::client_identity::HttpLogin,
}

/// How a change is asked for.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeOptions {
    /// Only plan the change: print the operations and the expected
    /// configuration, change nothing (?dryRun=true).
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the change is complete, printing the configuration then.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait with --wait, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
}

/// What to do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// Shows the cluster configuration: the brokers, the partitions each
    /// holds with their priorities, the last change (GET /actuator/cluster).
    Show,
    /// Adds brokers, moving partition replicas to them (placed as on a first start), and
    /// optionally sets the replication factor (failback, scaling out).
    Add {
        /// Broker ids.
        #[arg(required = true)]
        brokers: Vec<u32>,
        /// Replicas per partition after the change.
        #[arg(long)]
        replication_factor: Option<u32>,
        /// How the change is asked for.
        #[command(flatten)]
        change: ChangeOptions,
    },
    /// Removes brokers, moving their replicas to the others; with --force,
    /// the failover after losing them for good: the surviving replicas are
    /// forced to the survivors (entries only the removed held are lost).
    Remove {
        /// Broker ids.
        #[arg(required = true)]
        brokers: Vec<u32>,
        /// Forced removal (?force=true).
        #[arg(long)]
        force: bool,
        /// How the change is asked for.
        #[command(flatten)]
        change: ChangeOptions,
    },
    /// Sets the number of brokers (ids from 0), of partitions (only ever
    /// more: new ones take new instances, messages keep their partition)
    /// and of replicas per partition.
    Scale {
        /// Brokers after the change.
        #[arg(long)]
        brokers: Option<u32>,
        /// Partitions after the change.
        #[arg(long)]
        partitions: Option<u32>,
        /// Replicas per partition after the change.
        #[arg(long)]
        replication_factor: Option<u32>,
        /// How the change is asked for.
        #[command(flatten)]
        change: ChangeOptions,
    },
    /// Waits until no change is pending, then shows the configuration.
    Wait {
        /// Longest wait, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
}

/// Runs `command` against `target`.
pub async fn run(target: &ManagementTarget, command: ClusterCommand) -> Result<Value> {
    let url = format!(
        "{}/actuator/cluster",
        target.management_address.trim_end_matches('/')
    );
    let get = || crate::client_identity::http_json(&url, &target.login, reqwest::Method::GET, None);
    let (body, force, change) = match command {
        ClusterCommand::Show => return get().await,
        ClusterCommand::Wait { timeout_s } => return wait(&url, target, timeout_s).await,
        ClusterCommand::Add {
            brokers,
            replication_factor,
            change,
        } => (
            with_factor(json!({"brokers": {"add": brokers}}), replication_factor),
            false,
            change,
        ),
        ClusterCommand::Remove {
            brokers,
            force,
            change,
        } => (json!({"brokers": {"remove": brokers}}), force, change),
        ClusterCommand::Scale {
            brokers,
            partitions,
            replication_factor,
            change,
        } => {
            if brokers.is_none() && partitions.is_none() && replication_factor.is_none() {
                bail!("waggle cluster scale needs --brokers, --partitions or --replication-factor");
            }
            let mut body = match brokers {
                Some(count) => json!({"brokers": {"count": count}}),
                None => json!({}),
            };
            body = with_factor(body, replication_factor);
            if let Some(count) = partitions {
                body["partitions"]["count"] = json!(count);
            }
            (body, false, change)
        }
    };
    let patch = format!("{url}?dryRun={}&force={force}", change.dry_run);
    let planned = crate::client_identity::http_json(
        &patch,
        &target.login,
        reqwest::Method::PATCH,
        Some(body),
    )
    .await?;
    if change.dry_run || !change.wait {
        return Ok(planned);
    }
    wait(&url, target, change.timeout_s).await
}

fn with_factor(mut body: Value, replication_factor: Option<u32>) -> Value {
    if let Some(factor) = replication_factor {
        body["partitions"] = json!({ "replicationFactor": factor });
    }
    body
}

/// Polls the configuration until no change is pending; the configuration
/// then, or an error naming the pending change after `timeout_s`.
async fn wait(url: &str, target: &ManagementTarget, timeout_s: u64) -> Result<Value> {
    let start = Instant::now();
    loop {
        let current =
            crate::client_identity::http_json(url, &target.login, reqwest::Method::GET, None)
                .await?;
        let Some(pending) = current.get("pendingChange") else {
            return Ok(current);
        };
        if start.elapsed() >= Duration::from_secs(timeout_s) {
            bail!("the cluster change is still pending after {timeout_s} s: {pending}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
