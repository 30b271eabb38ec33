//! What the caller of the request being handled may touch, for the
//! commands sent on its behalf.
//!
//! The middleware that authenticates a request runs its handler within
//! [`CALLER`]: the caller's tenants under multi-tenancy (see `tenants`),
//! and the process ids its grants cover when the permission the operation
//! needs covers some processes only (see `scope`). The dispatcher sends
//! every command within them ([`within_caller`]); the engine refuses a
//! command about an entity of another tenant (`NOT_FOUND`) or another
//! process (`FORBIDDEN`), and a job activation takes their jobs only. So no
//! handler can forget the check.

use std::sync::Arc;

use crate::command::{CommandError, PartitionCommand, RejectionKind};
use crate::gateway::validate;

tokio::task_local! {
    /// What the caller of the request being handled may touch.
    pub static CALLER: Caller;
}

/// What a caller may touch; `None`: no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The tenants it is a member of, under multi-tenancy.
    pub tenants: Option<Arc<[String]>>,
    /// The process ids its grants for this operation cover, when they do
    /// not cover every process.
    pub processes: Option<Arc<[String]>>,
}

impl Caller {
    /// The caller of the request being handled, if it is restricted.
    pub fn current() -> Option<Caller> {
        CALLER.try_with(Clone::clone).ok()
    }

    /// Whether nothing is restricted.
    pub fn is_unrestricted(&self) -> bool {
        self.tenants.is_none() && self.processes.is_none()
    }
}

/// `command` as sent on the caller's behalf: within the caller's tenants
/// (unless a handler named the tenants already) and granted processes.
/// Identity commands are about no tenant's or process's data and pass as
/// they are. A caller in no tenant is refused here: it may touch nothing,
/// and so no command with tenants reaches the log before the cluster has
/// tenants (whose set-up waits until every node reads them).
pub fn within_caller(command: PartitionCommand) -> Result<PartitionCommand, CommandError> {
    let Some(caller) = Caller::current() else {
        return Ok(command);
    };
    let to_vec = |list: &Option<Arc<[String]>>| list.as_deref().map(<[String]>::to_vec);
    let about_data = !matches!(
        command,
        PartitionCommand::Identity { .. }
            | PartitionCommand::RawAppend { .. }
            | PartitionCommand::Checkpoint { .. }
            | PartitionCommand::ScaleUp { .. }
    );
    if about_data && caller.tenants.as_deref().is_some_and(<[String]>::is_empty) {
        return Err(CommandError::Rejected {
            intent: command.name().to_string(),
            kind: RejectionKind::Forbidden,
            reason: format!(
                "Expected to handle request {}, but the caller is a member of no tenant",
                command.name()
            ),
        });
    }
    Ok(match command {
        PartitionCommand::Identity { .. }
        | PartitionCommand::RawAppend { .. }
        | PartitionCommand::Checkpoint { .. }
        | PartitionCommand::ScaleUp { .. } => command,
        PartitionCommand::AsCaller {
            tenant,
            tenants,
            processes,
            command,
        } => PartitionCommand::AsCaller {
            tenant,
            tenants: tenants.or_else(|| to_vec(&caller.tenants)),
            processes: processes.or_else(|| to_vec(&caller.processes)),
            command,
        },
        command => PartitionCommand::AsCaller {
            tenant: validate::DEFAULT_TENANT.to_string(),
            tenants: to_vec(&caller.tenants),
            processes: to_vec(&caller.processes),
            command: Box::new(command),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_carry_what_the_caller_may_touch() {
        let cancel = PartitionCommand::CancelInstance {
            process_instance_key: 1,
        };
        assert_eq!(
            within_caller(cancel.clone()).unwrap(),
            cancel,
            "unrestricted"
        );
        let caller = Caller {
            tenants: None,
            processes: Some(Arc::from(vec!["order".to_string()])),
        };
        CALLER
            .scope(caller, async {
                let Ok(PartitionCommand::AsCaller {
                    tenants, processes, ..
                }) = within_caller(cancel.clone())
                else {
                    panic!("wrapped")
                };
                assert_eq!((tenants, processes), (None, Some(vec!["order".into()])));
            })
            .await;
        let in_no_tenant = Caller {
            tenants: Some(Arc::from(Vec::<String>::new())),
            processes: None,
        };
        CALLER
            .scope(in_no_tenant, async {
                let refused = within_caller(cancel.clone()).unwrap_err();
                assert!(refused.to_string().contains("no tenant"), "{refused}");
                let identity = PartitionCommand::Identity {
                    intent: engine::Intent::Create,
                    value: Box::new(engine::RecordValue::User(Default::default())),
                };
                assert_eq!(within_caller(identity.clone()).unwrap(), identity);
            })
            .await;
    }
}
