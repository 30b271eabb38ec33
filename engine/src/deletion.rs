//! Resource deletion (DeleteResource): the deployment partition deletes a
//! process definition or a DRG (with its decisions: `DECISION DELETED` each,
//! then `DECISION_REQUIREMENTS DELETED`) and distributes the deletion to
//! every other partition, which deletes its copy the same way.
//!
//! ```text
//! RESOURCE_DELETION DELETE (client, key -1, on DEPLOYMENT_PARTITION)
//!   RESOURCE_DELETION DELETING                     key: new deletion key
//!   PROCESS DELETING        the definition leaves the lookups by id and version:
//!                           the previous version is the latest again
//!   TIMER CANCELED / CREATED  start timers of the deleted version; those of the
//!                           previous version when the latest was deleted
//!   terminate every instance of the definition (its root instance, as cancel does)
//!   PROCESS DELETED         at once when no instance runs, else when the last ends
//!   RESOURCE_DELETION DELETED
//!   -> every other partition: RESOURCE_DELETION DELETE with the deletion key
//! ```
//!
//! On another partition the distributed DELETE (key of the deployment
//! partition) writes the same events under the deletion key; a definition it
//! does not know is skipped (the deletion still completes there).

use crate::commands::DEPLOYMENT_PARTITION;
use crate::engine::{rejection, Ctx, Engine, ResponseValue, Step};
use crate::record::*;
use crate::state::{DeployedProcess, ElementState, State};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Engine {
    /// RESOURCE_DELETION DELETE: from a client (key `-1`) or distributed
    /// from the deployment partition (key = the deletion key there).
    pub(crate) fn delete_resource(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        r: &ResourceDeletionRecord,
    ) -> Result<(), Rejection> {
        let resource_key = r.resource_key;
        let source = if cmd.key == NO_KEY {
            if self.partition_id != DEPLOYMENT_PARTITION {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!(
                        "Expected to delete resource '{resource_key}' on the deployment partition {DEPLOYMENT_PARTITION}, but this is partition {}",
                        self.partition_id
                    ),
                ));
            }
            None
        } else {
            let source = self.distribution_source(cmd)?;
            if self.state.distribution_received(source, cmd.key) {
                self.acknowledge_distribution(ctx, cmd, source);
                return Ok(());
            }
            Some(source)
        };
        let deleting = self.state.is_deleting(resource_key);
        let process = match self.state.process(resource_key) {
            Some(p) if !deleting => Some(p.clone()),
            // A distributed deletion completes on this partition even when
            // the definition is unknown here.
            _ if source.is_some() => None,
            // A DRG: deleted with its decisions below.
            None if self.state.decisions.drg(resource_key).is_some() => None,
            // A form: deleted below.
            None if self.state.forms.form(resource_key).is_some() => None,
            Some(_) => {
                return Err(rejection(
                    RejectionType::InvalidState,
                    format!("Expected to delete resource with key '{resource_key}', but it is already being deleted"),
                ));
            }
            None => {
                return Err(rejection(
                    RejectionType::NotFound,
                    format!("Expected to delete resource but no resource found with key '{resource_key}'"),
                ));
            }
        };
        let key = match source {
            Some(_) => cmd.key,
            None => self.state.keys.next_key(),
        };
        let value = RecordValue::ResourceDeletion(r.clone());
        self.emit(ctx, key, Intent::Deleting, value.clone());
        match process {
            Some(process) => self.delete_process(ctx, &process),
            None => {
                if !self.delete_form(ctx, resource_key) {
                    self.delete_drg(ctx, resource_key);
                }
            }
        }
        self.emit(ctx, key, Intent::Deleted, value.clone());
        if let Some(source) = source {
            self.acknowledge_distribution(ctx, cmd, source);
        } else {
            self.distribute(ctx, key, Intent::Delete, value);
            Self::respond(
                ctx,
                cmd,
                ResponseValue::ResourceDeleted { key, resource_key },
            );
        }
        Ok(())
    }

    fn delete_process(&mut self, ctx: &mut Ctx, process: &Arc<DeployedProcess>) {
        let key = process.metadata.process_definition_key;
        let id = process.metadata.bpmn_process_id.clone();
        let tenant = self.state.process_tenant(key);
        let was_latest = self
            .state
            .latest_process(&tenant, &id)
            .is_some_and(|p| p.metadata.process_definition_key == key);
        self.emit(ctx, key, Intent::Deleting, deleted_value(process));
        self.cancel_start_timers(ctx, key);
        if was_latest && self.partition_id == DEPLOYMENT_PARTITION {
            if let Some(previous) = self.state.latest_process(&tenant, &id).cloned() {
                self.schedule_start_timers(ctx, &previous);
            }
        }
        let roots: BTreeSet<i64> = self
            .state
            .instances_of_definition(key)
            .into_iter()
            .map(|pi| self.state.root_process_instance(pi))
            .collect();
        if roots.is_empty() {
            self.emit(ctx, key, Intent::Deleted, deleted_value(process));
            return;
        }
        for root in roots {
            let terminating = self
                .state
                .instances
                .get(&root)
                .is_some_and(|i| i.state == ElementState::Terminating);
            if !terminating {
                ctx.steps.push_back(Step::Terminate(root));
            }
        }
    }

    fn cancel_start_timers(&mut self, ctx: &mut Ctx, process_definition_key: i64) {
        let timers: Vec<(i64, TimerRecord)> = State::owned(&self.state.timers_by_owner, NO_KEY)
            .into_iter()
            .filter_map(|k| {
                let t = self.state.timers.get(&k)?;
                (t.process_definition_key == process_definition_key).then(|| (k, t.clone()))
            })
            .collect();
        for (k, t) in timers {
            self.emit(ctx, k, Intent::Canceled, RecordValue::Timer(t));
        }
    }

    /// After a process instance of definition `process_definition_key`
    /// ended: a definition being deleted is deleted with its last instance.
    pub(crate) fn after_instance_ended(&mut self, ctx: &mut Ctx, process_definition_key: i64) {
        if !self.state.is_deleting(process_definition_key)
            || !self
                .state
                .instances_of_definition(process_definition_key)
                .is_empty()
        {
            return;
        }
        if let Some(process) = self.state.process(process_definition_key).cloned() {
            self.emit(
                ctx,
                process_definition_key,
                Intent::Deleted,
                deleted_value(&process),
            );
        }
    }
}

/// The `PROCESS` value of a deletion event: without the resource, as in
/// Zeebe, so that the event stays small.
fn deleted_value(process: &DeployedProcess) -> RecordValue {
    RecordValue::Process(ProcessRecord {
        metadata: process.metadata.clone(),
        resource: Arc::from(&[][..]),
    })
}
