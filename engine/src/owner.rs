//! Whose data a command is about, and whether its caller may touch it.
//!
//! A command acts in the tenant and on the process of the entity it is
//! about (an instance, job, incident, timer or user task: its process
//! definition's; a message or a definition: its own tenant), else on the
//! ones it names (an instance created by process id; a deployment, message,
//! signal or decision evaluation names its tenant only). A client command
//! carries what its caller may touch (`Record::authorized_tenants`,
//! `Record::authorized_processes`): an entity of another tenant is not
//! found, one of another process is forbidden.

use std::sync::Arc;

use crate::engine::{rejection, Engine};
use crate::record::*;

/// The tenant and process a command is about.
pub(crate) struct Owner {
    /// The tenant it acts in.
    pub tenant: Tenant,
    /// The process id of the entity it is about (or that it names), if any
    /// and if the command carries `authorized_processes`.
    pub process: Option<Arc<str>>,
}

impl Engine {
    /// The tenant and process of `cmd` (see the module).
    pub(crate) fn command_owner(&self, cmd: &Record) -> Owner {
        let s = &self.state;
        let instance = |key: i64| s.instances.get(&key).map(|i| i.process_definition_key);
        let definition = match &cmd.value {
            RecordValue::ProcessInstance(_)
            | RecordValue::VariableDocument(_)
            | RecordValue::ProcessInstanceModification(_)
            | RecordValue::ProcessInstanceMigration(_) => instance(cmd.key),
            RecordValue::AdHocSubProcessInstruction(i) => {
                instance(i.ad_hoc_sub_process_instance_key)
            }
            RecordValue::Job(_) => s
                .jobs
                .get(&cmd.key)
                .map(|j| j.record.process_definition_key),
            RecordValue::UserTask(_) => {
                s.user_tasks.get(&cmd.key).map(|t| t.process_definition_key)
            }
            RecordValue::Incident(_) => s.incidents.get(&cmd.key).map(|i| i.process_definition_key),
            RecordValue::Timer(_) => s.timers.get(&cmd.key).map(|t| t.process_definition_key),
            RecordValue::ProcessInstanceCreation(c) if c.process_definition_key > 0 => {
                Some(c.process_definition_key)
            }
            _ => None,
        };
        // The process id only matters to a caller with grants on some
        // processes; nothing is copied for the others.
        let restricted = cmd.authorized_processes.is_some();
        if let Some(process) = definition.and_then(|key| s.process(key)) {
            return Owner {
                tenant: s.process_tenant(process.metadata.process_definition_key),
                process: restricted.then(|| process.metadata.bpmn_process_id.clone()),
            };
        }
        let tenant = match &cmd.value {
            RecordValue::Message(_) if cmd.intent == Intent::Expire => s.tenancy.of(cmd.key),
            RecordValue::ResourceDeletion(r) => s.tenancy.of(r.resource_key),
            RecordValue::DecisionEvaluation(e) if e.decision_key > 0 => {
                s.tenancy.of(e.decision_key)
            }
            _ => cmd.tenant.clone(),
        };
        let process = match &cmd.value {
            RecordValue::ProcessInstanceCreation(c)
                if restricted && c.process_definition_key <= 0 =>
            {
                Some(Arc::from(c.bpmn_process_id.as_str()))
            }
            _ => None,
        };
        Owner { tenant, process }
    }
}

/// Whether the caller of `cmd` may touch what it is about: `NOT_FOUND` for
/// an entity of another tenant (as if it were not there), `FORBIDDEN` for
/// one of a process its grants do not cover. Job batches are filtered
/// instead; users, roles, groups, tenants, mapping rules and authorizations
/// belong to no tenant.
pub(crate) fn check_caller(cmd: &Record, owner: &Owner) -> Result<(), Rejection> {
    if !cmd.value_type.is_tenant_owned() {
        return Ok(());
    }
    if !crate::tenancy::authorized(cmd.authorized_tenants.as_deref(), &owner.tenant) {
        return Err(rejection(
            RejectionType::NotFound,
            format!(
                "Expected to process {} {} for key '{}', but none was found in the tenants the caller is authorized for",
                cmd.value_type.name(),
                cmd.intent.name(),
                cmd.key
            ),
        ));
    }
    if let (Some(granted), Some(process)) = (&cmd.authorized_processes, &owner.process) {
        if !granted.contains(process) {
            let listed: Vec<String> = granted.iter().map(|p| format!("'{p}'")).collect();
            return Err(rejection(
                RejectionType::Forbidden,
                format!(
                    "Insufficient permissions to {} {} of process '{process}': the caller's grants cover the processes {} only",
                    cmd.intent.name(),
                    cmd.value_type.name(),
                    listed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a job of `process` in `tenant` may go to a job activation `cmd`.
pub(crate) fn may_activate(cmd: &Record, tenant: &Tenant, process: &str) -> bool {
    crate::tenancy::authorized(cmd.authorized_tenants.as_deref(), tenant)
        && cmd
            .authorized_processes
            .as_deref()
            .is_none_or(|granted| granted.iter().any(|p| &**p == process))
}
