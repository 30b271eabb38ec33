//! `waggle cluster ...`: the cluster API on a broker's management port
//! (see `crate::membership`), printed as JSON.

use anyhow::Result;
use serde_json::Value;

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

/// What to do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// Shows the cluster configuration: the brokers, the partitions each
    /// holds with their priorities, the last change (GET /actuator/cluster).
    Show,
}

/// Runs `command` against `target`.
pub async fn run(target: &ManagementTarget, command: ClusterCommand) -> Result<Value> {
    let path = match command {
        ClusterCommand::Show => "/actuator/cluster",
    };
    let url = format!("{}{path}", target.management_address.trim_end_matches('/'));
    crate::client_identity::http_json(&url, &target.login, reqwest::Method::GET, None).await
}
