//! The set-up of a new cluster's identities: the initial user
//! (`security.initial_user`), the default roles `admin` (every permission
//! on every resource) and `readonly-admin` (every READ permission), and
//! the initial user and `security.admin_clients` as members of `admin`,
//! and the tenant `<default>` with `admin` in it.
//! Every node does what is missing until nothing is; the deployment
//! partition refuses what another node did first (`ALREADY_EXISTS`).

use std::sync::Arc;
use std::time::Duration;

use engine::access::{
    AuthorizationRecord, OWNER_CLIENT, OWNER_ROLE, OWNER_USER, RESOURCE_PERMISSIONS,
};
use engine::collectives::{CollectiveRecord, DEFAULT_TENANT};
use engine::identity::{Identity, UserRecord};
use engine::{Intent, RecordValue};

use super::config::Authentication;
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

/// The role whose members may do everything.
pub const ADMIN_ROLE: &str = "admin";
/// The role whose members may read everything.
pub const READONLY_ADMIN_ROLE: &str = "readonly-admin";

/// The commands still needed for the set-up: the initial user, the
/// default roles with their authorizations, and the initial user and the
/// admin clients in `admin`.
fn missing(
    identity: &Identity,
    user: Option<&UserRecord>,
    admin_clients: &[String],
) -> Vec<PartitionCommand> {
    let mut out = Vec::new();
    if let Some(user) = user.filter(|u| !identity.users.contains_key(&u.username)) {
        out.push(change(Intent::Create, RecordValue::User(user.clone())));
    }
    for (role_id, name, read_only) in [
        (ADMIN_ROLE, "Admin", false),
        (READONLY_ADMIN_ROLE, "Read-only admin", true),
    ] {
        if !identity.roles.contains_key(role_id) {
            let role = collective(role_id, name, None);
            out.push(change(Intent::Create, RecordValue::Role(role)));
        }
        for (resource_type, permissions) in RESOURCE_PERMISSIONS {
            let permissions: Vec<String> = permissions
                .iter()
                .filter(|p| !read_only || p.starts_with("READ"))
                .map(|p| p.to_string())
                .collect();
            let granted = identity.authorizations.values().any(|a| {
                a.owner_type == OWNER_ROLE
                    && a.owner_id == role_id
                    && a.resource_type == *resource_type
                    && a.resource_id == "*"
            });
            if permissions.is_empty() || granted {
                continue;
            }
            let grant = AuthorizationRecord {
                owner_type: OWNER_ROLE.into(),
                owner_id: role_id.into(),
                resource_type: resource_type.to_string(),
                resource_id: "*".into(),
                permission_types: permissions,
                ..AuthorizationRecord::default()
            };
            out.push(change(Intent::Create, RecordValue::Authorization(grant)));
        }
    }
    let members = user
        .map(|u| (OWNER_USER, u.username.clone()))
        .into_iter()
        .chain(admin_clients.iter().map(|c| (OWNER_CLIENT, c.clone())));
    for (entity_type, entity_id) in members {
        let member = (entity_type.to_string(), entity_id.clone());
        let present = identity
            .roles
            .get(ADMIN_ROLE)
            .is_some_and(|r| r.members.contains(&member));
        if !present {
            let member = collective(ADMIN_ROLE, "", Some((entity_type, entity_id)));
            out.push(change(Intent::AddEntity, RecordValue::Role(member)));
        }
    }
    // The default tenant, with the admins in it.
    let tenant = identity.tenants.get(DEFAULT_TENANT);
    if tenant.is_none() {
        let default = collective(DEFAULT_TENANT, "Default", None);
        out.push(change(Intent::Create, RecordValue::Tenant(default)));
    }
    let admins = (OWNER_ROLE.to_string(), ADMIN_ROLE.to_string());
    if !tenant.is_some_and(|t| t.members.contains(&admins)) {
        let member = collective(DEFAULT_TENANT, "", Some((OWNER_ROLE, ADMIN_ROLE.into())));
        out.push(change(Intent::AddEntity, RecordValue::Tenant(member)));
    }
    out
}

fn change(intent: Intent, value: RecordValue) -> PartitionCommand {
    PartitionCommand::Identity {
        intent,
        value: Box::new(value),
    }
}

/// A role's or tenant's record: `id` and `name`, or a member of it.
fn collective(id: &str, name: &str, member: Option<(&str, String)>) -> CollectiveRecord {
    let (entity_type, entity_id) = member.unwrap_or_default();
    CollectiveRecord {
        id: id.into(),
        name: name.into(),
        entity_type: entity_type.into(),
        entity_id,
        ..CollectiveRecord::default()
    }
}

/// Sets up the initial user, the default roles (`admin`, `readonly-admin`)
/// and the admins, as far as they are missing; returns once all are in
/// place. Nothing to do without authentication.
pub async fn create(context: Arc<BrokerContext>) {
    let security = &context.config.security;
    if security.authentication == Authentication::None {
        return;
    }
    let user = match security.initial_user() {
        Some((name, password)) => {
            let password = password.to_string();
            match tokio::task::spawn_blocking(move || super::users::hash_password(&password)).await
            {
                Ok(hash) => Some(UserRecord {
                    user_key: engine::NO_KEY,
                    username: name.to_string(),
                    name: name.to_string(),
                    email: String::new(),
                    password: hash,
                }),
                Err(e) => {
                    tracing::error!("security.initial_user: hashing the password failed: {e}");
                    return;
                }
            }
        }
        None => None,
    };
    let dispatcher = Dispatcher::new(Arc::clone(&context));
    let mut told = false;
    loop {
        if context.view.stopping() {
            return;
        }
        if let Err(why) = every_node_reads_users(&context) {
            if !std::mem::replace(&mut told, true) {
                tracing::warn!("security: waiting to set up the initial user and roles: {why}");
            }
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let identity = context.view.directory.identity();
        let commands = missing(&identity, user.as_ref(), &security.admin_clients);
        if commands.is_empty() {
            tracing::info!(
                "security: the initial user, the default roles and the admins are set up"
            );
            return;
        }
        for command in commands {
            let what = command.name();
            let timeout = dispatcher.request_timeout();
            match dispatcher
                .execute(DEPLOYMENT_PARTITION, command, timeout)
                .await
            {
                Ok(_)
                | Err(CommandError::Rejected {
                    kind: RejectionKind::AlreadyExists,
                    ..
                }) => {}
                Err(e) => {
                    tracing::debug!("security set-up: {what} not done yet ({e}); trying again");
                    break;
                }
            }
        }
        // The local replica shows what was done once it applied it.
        tokio::time::sleep(RETRY).await;
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
