//! Multi-tenancy at the client ports (`security.multi_tenancy`).
//!
//! The middleware that authenticates a request also finds the tenants its
//! caller is in (directly, or through its groups, roles and mapping rules)
//! and runs the request's handler within them (`caller::CALLER`). Then:
//!
//! - a request that names a tenant (a deployment, an instance created by
//!   process id, a message, a signal, a decision evaluation, a job
//!   activation's `tenantIds`) is refused `PERMISSION_DENIED` / 403 for a
//!   tenant the caller is not in, and its command acts in that tenant;
//! - every command the dispatcher sends on the caller's behalf carries the
//!   caller's tenants (`caller::within_caller`), and the engine refuses one
//!   about an entity of another tenant as not found; a handler cannot
//!   forget this;
//! - searches and reads of secondary storage see rows of the caller's
//!   tenants only ([`visible`]).
//!
//! Without multi-tenancy (or without authentication) nothing is set: the
//! default tenant is the only one, and a request naming another is invalid.

use std::sync::Arc;

use super::caller::Caller;
use crate::command::{CommandError, PartitionCommand, RejectionKind};
use crate::gateway::validate;

/// The tenants a caller may act in and see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerTenants(pub Arc<[String]>);

impl CallerTenants {
    /// The caller's tenants of the request being handled, if multi-tenancy
    /// is on.
    pub fn current() -> Option<CallerTenants> {
        Caller::current()?.tenants.map(CallerTenants)
    }

    fn holds(&self, tenant: &str) -> bool {
        self.0.iter().any(|t| t == tenant)
    }

    fn refuse(&self, rpc: &str, tenant: &str) -> CommandError {
        CommandError::Rejected {
            intent: rpc.to_string(),
            kind: RejectionKind::Forbidden,
            reason: format!(
                "Expected to handle request {rpc} with tenant identifier '{tenant}', but the caller \
                 is not a member of that tenant (its tenants: {})",
                self.listed()
            ),
        }
    }

    fn listed(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        let quoted: Vec<String> = self.0.iter().map(|t| format!("'{t}'")).collect();
        quoted.join(", ")
    }
}

/// `tenant_id` of a request (empty: `<default>`) for `command`: checked
/// against the caller's tenants, and set as the tenant the command acts in.
pub fn named(tenant_id: &str, command: PartitionCommand) -> Result<PartitionCommand, CommandError> {
    let Some(caller) = CallerTenants::current() else {
        validate::tenant(tenant_id)?;
        return Ok(command);
    };
    let tenant = if tenant_id.is_empty() {
        validate::DEFAULT_TENANT
    } else {
        tenant_id
    };
    if !caller.holds(tenant) {
        return Err(caller.refuse(command.name(), tenant));
    }
    Ok(PartitionCommand::AsCaller {
        tenant: tenant.to_string(),
        tenants: Some(caller.0.to_vec()),
        processes: None,
        command: Box::new(command),
    })
}

/// A job activation for the tenants `tenant_ids` asks for (none:
/// `<default>`), each of which must be one of the caller's: only their jobs
/// are activated.
pub fn asked(
    tenant_ids: &[String],
    command: PartitionCommand,
) -> Result<PartitionCommand, CommandError> {
    Ok(match check_asked(tenant_ids, command.name())? {
        None => command,
        Some(asked) => PartitionCommand::AsCaller {
            tenant: validate::DEFAULT_TENANT.to_string(),
            tenants: Some(asked),
            processes: None,
            command: Box::new(command),
        },
    })
}

/// The tenants a job activation of `rpc` asks for, each one of the
/// caller's; `None` without multi-tenancy.
pub fn check_asked(tenant_ids: &[String], rpc: &str) -> Result<Option<Vec<String>>, CommandError> {
    let Some(caller) = CallerTenants::current() else {
        validate::tenants(tenant_ids)?;
        return Ok(None);
    };
    let asked: Vec<String> = if tenant_ids.is_empty() {
        vec![validate::DEFAULT_TENANT.to_string()]
    } else {
        tenant_ids.to_vec()
    };
    match asked.iter().find(|t| !caller.holds(t)) {
        Some(foreign) => Err(caller.refuse(rpc, foreign)),
        None => Ok(Some(asked)),
    }
}

/// The tenant a request named (`<default>` when it named none), for its
/// answer.
pub fn or_default(tenant_id: String) -> String {
    if tenant_id.is_empty() {
        validate::DEFAULT_TENANT.to_string()
    } else {
        tenant_id
    }
}

/// The tenant ids a search or read of secondary storage is restricted to,
/// `None` for every tenant.
pub fn visible() -> Option<Vec<String>> {
    CallerTenants::current().map(|c| c.0.to_vec())
}

/// Whether an item read from secondary storage (its `tenantId`) is one the
/// caller may see.
pub fn may_see(item: &serde_json::Map<String, serde_json::Value>) -> bool {
    let Some(caller) = CallerTenants::current() else {
        return true;
    };
    let tenant = item
        .get("tenantId")
        .and_then(|t| t.as_str())
        .unwrap_or(validate::DEFAULT_TENANT);
    caller.holds(tenant)
}

#[cfg(test)]
mod tests {
    use super::super::caller::CALLER;
    use super::*;

    fn deploy() -> PartitionCommand {
        PartitionCommand::Deploy { resources: vec![] }
    }

    fn caller(tenants: &[&str]) -> Caller {
        Caller {
            tenants: Some(tenants.iter().map(|t| t.to_string()).collect()),
            processes: None,
        }
    }

    #[tokio::test]
    async fn without_multi_tenancy_only_the_default_tenant_is_named() {
        assert_eq!(named("", deploy()).unwrap(), deploy());
        assert_eq!(named("<default>", deploy()).unwrap(), deploy());
        assert!(matches!(
            named("acme", deploy()),
            Err(CommandError::InvalidArgument(_))
        ));
        assert_eq!(visible(), None);
    }

    #[tokio::test]
    async fn a_caller_names_its_own_tenants_only_and_carries_them() {
        CALLER
            .scope(caller(&["acme", "<default>"]), async {
                let Ok(PartitionCommand::AsCaller {
                    tenant, tenants, ..
                }) = named("acme", deploy())
                else {
                    panic!("scoped")
                };
                assert_eq!(tenant, "acme");
                assert_eq!(tenants.unwrap(), ["acme", "<default>"]);
                let refused = named("globex", deploy()).unwrap_err();
                assert!(
                    matches!(
                        refused,
                        CommandError::Rejected {
                            kind: RejectionKind::Forbidden,
                            ..
                        }
                    ),
                    "{refused:?}"
                );
                let Ok(PartitionCommand::AsCaller { tenants, .. }) = asked(&[], deploy()) else {
                    panic!("scoped")
                };
                assert_eq!(tenants.unwrap(), ["<default>"]);
                assert!(asked(&["globex".into()], deploy()).is_err());
                let mut item = serde_json::Map::new();
                item.insert("tenantId".into(), "globex".into());
                assert!(!may_see(&item));
                item.insert("tenantId".into(), "acme".into());
                assert!(may_see(&item));
            })
            .await;
    }
}
