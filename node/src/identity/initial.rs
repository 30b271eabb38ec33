//! The initial user (`security.initial_user`): created when no user of
//! that name exists, so that a new cluster has someone who can log in.
//! Every node tries until the user exists; the deployment partition
//! creates it once and refuses the others' attempts (`ALREADY_EXISTS`).

use std::sync::Arc;
use std::time::Duration;

use engine::identity::UserRecord;

use crate::command::{CommandError, PartitionCommand, RejectionKind};
use crate::context::BrokerContext;
use crate::gateway::dispatch::Dispatcher;
use crate::routing::DEPLOYMENT_PARTITION;

/// Pause between attempts while partition 1 has no leader.
const RETRY: Duration = Duration::from_secs(1);
/// The first release whose replicas read `USER` records.
pub const USERS_SINCE: (u64, u64, u64) = (0, 2, 0);

/// Why users cannot be changed yet: during a rolling upgrade from a
/// release that does not know `USER` records, one in the log would stop
/// the replicas of the old release. So every node must be heard from, at
/// [`USERS_SINCE`] or later.
pub fn every_node_reads_users(context: &BrokerContext) -> Result<(), String> {
    let live = context.topology.live();
    let me = context.config.cluster.node_id;
    for node in (0..context.config.cluster.size).filter(|n| *n != me) {
        let Some(state) = live.iter().find(|s| s.node == node) else {
            return Err(format!(
                "node {node} is not reachable, so it may run a release that cannot read users"
            ));
        };
        if !at_least(&state.version, USERS_SINCE) {
            return Err(format!(
                "node {node} runs waggle {}, which cannot read users; finish the upgrade first",
                state.version
            ));
        }
    }
    Ok(())
}

/// Whether `version` ("major.minor.patch", maybe with a suffix) is at
/// least `min`.
fn at_least(version: &str, min: (u64, u64, u64)) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= min
}

/// Creates the configured initial user unless it exists; returns once it
/// does.
pub async fn create(context: Arc<BrokerContext>) {
    let Some((name, password)) = context.config.security.initial_user() else {
        return;
    };
    let (name, password) = (name.to_string(), password.to_string());
    let hash =
        match tokio::task::spawn_blocking(move || super::users::hash_password(&password)).await {
            Ok(hash) => hash,
            Err(e) => {
                tracing::error!("security.initial_user: hashing the password failed: {e}");
                return;
            }
        };
    let dispatcher = Dispatcher::new(Arc::clone(&context));
    let user = UserRecord {
        user_key: engine::NO_KEY,
        username: name.clone(),
        name: name.clone(),
        email: String::new(),
        password: hash,
    };
    let mut told = false;
    loop {
        if context.view.users.user(&name).is_some() || context.view.stopping() {
            return;
        }
        if let Err(why) = every_node_reads_users(&context) {
            if !std::mem::replace(&mut told, true) {
                tracing::warn!("security.initial_user: waiting to create '{name}': {why}");
            }
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let command = PartitionCommand::User {
            intent: engine::Intent::Create,
            value: Box::new(user.clone()),
        };
        let timeout = dispatcher.request_timeout();
        match dispatcher
            .execute(DEPLOYMENT_PARTITION, command, timeout)
            .await
        {
            Ok(_) => {
                tracing::info!("security.initial_user: created the user '{name}'");
                return;
            }
            Err(CommandError::Rejected {
                kind: RejectionKind::AlreadyExists,
                ..
            }) => return,
            Err(e) => {
                tracing::debug!("security.initial_user: not created yet ({e}); trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(at_least("0.2.0", USERS_SINCE));
        assert!(at_least("0.10.0", USERS_SINCE));
        assert!(at_least("1.0.0-rc1", USERS_SINCE));
        assert!(!at_least("0.1.0", USERS_SINCE));
        assert!(!at_least("0.1.9", USERS_SINCE));
        assert!(!at_least("garbage", USERS_SINCE));
    }
}
