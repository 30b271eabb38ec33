//! Process instance migration (`PROCESS_INSTANCE_MIGRATION MIGRATE`): a
//! running instance moves to another process definition, each active
//! element to the element its mapping instruction names.
//!
//! ```text
//! MIGRATE: check the plan (Zeebe's preconditions; nothing is written on a
//!          rejection): target exists, mapped ids exist and are unique, every
//!          active element is mapped to an element of the same type (and user
//!          task implementation) in the same flow scope, no element kind the
//!          engine cannot move (event subscriptions, multi-instance bodies,
//!          waiting joins, compensation, event sub-processes)
//!       → per element instance, the process first: ELEMENT_MIGRATED; its
//!         job (JOB MIGRATED), user task (USER_TASK MIGRATED) and incident
//!         (INCIDENT MIGRATED) get the target's key, version, id and element
//!       → MIGRATED
//! ```
//!
//! Variables stay where they are (their scopes are element instances, which
//! keep their keys). Jobs keep their type, worker and deadline, as in Zeebe.

use crate::engine::{pi_value, rejection, Ctx, Engine, ResponseValue};
use crate::model::{Behavior, Process};
use crate::modification::type_name;
use crate::record::*;
use crate::state::{DeployedProcess, State};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Element types whose active instances can be migrated.
const SUPPORTED_TYPES: [BpmnElementType; 9] = [
    BpmnElementType::Process,
    BpmnElementType::ServiceTask,
    BpmnElementType::UserTask,
    BpmnElementType::SendTask,
    BpmnElementType::ScriptTask,
    BpmnElementType::BusinessRuleTask,
    BpmnElementType::SubProcess,
    BpmnElementType::CallActivity,
    BpmnElementType::Task,
];

impl Engine {
    /// `PROCESS_INSTANCE_MIGRATION MIGRATE`.
    pub(crate) fn migrate_instance(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        m: &ProcessInstanceMigrationRecord,
    ) -> Result<(), Rejection> {
        let pi_key = m.process_instance_key;
        let root = self
            .state
            .instances
            .get(&pi_key)
            .filter(|i| i.flow_scope_key == NO_KEY)
            .ok_or_else(|| {
                rejection(
                    RejectionType::NotFound,
                    format!("Expected to migrate process instance but no process instance found with key '{pi_key}'"),
                )
            })?;
        let source = self.definition(root.process_definition_key)?;
        let target = self
            .state
            .process(m.target_process_definition_key)
            .cloned()
            .ok_or_else(|| {
                rejection(
                    RejectionType::NotFound,
                    format!(
                        "Expected to migrate process instance to process definition but no process definition found with key '{}'",
                        m.target_process_definition_key
                    ),
                )
            })?;
        let mapping = check_plan(&source, &target, m)?;
        let instances = self.instances_of(pi_key);
        for &key in &instances {
            self.check_element(&source, &target, &mapping, pi_key, key)?;
        }
        if self
            .state
            .compensations
            .values()
            .any(|c| c.process_instance_key == pi_key)
        {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but it has completed activities with compensation handlers. Migrating process instances with compensation subscriptions is not possible yet."
            )));
        }

        for &key in &instances {
            self.migrate_element(ctx, &target, &mapping, key);
        }
        self.emit(
            ctx,
            pi_key,
            Intent::Migrated,
            RecordValue::ProcessInstanceMigration(m.clone()),
        );
        Self::respond(
            ctx,
            cmd,
            ResponseValue::ProcessInstanceMigrated { key: pi_key },
        );
        Ok(())
    }

    /// The element instances of process instance `pi_key` (not those of
    /// called instances), each flow scope before its children.
    fn instances_of(&self, pi_key: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut stack = vec![pi_key];
        while let Some(k) = stack.pop() {
            match self.state.instances.get(&k) {
                Some(i) if i.process_instance_key == pi_key => out.push(k),
                _ => continue,
            }
            let mut children = self.state.children_of(k);
            children.reverse();
            stack.extend(children);
        }
        out
    }

    fn check_element(
        &self,
        source: &DeployedProcess,
        target: &DeployedProcess,
        mapping: &BTreeMap<&str, &str>,
        pi_key: i64,
        key: i64,
    ) -> Result<(), Rejection> {
        let inst = &self.state.instances[&key];
        let el = source.model.element(inst.element);
        if !inst.joins.is_empty() {
            let gateway = inst
                .joins
                .first()
                .map(|&(f, _)| source.model.element(source.model.flow(f).target).id.clone())
                .unwrap_or_else(|| el.id.clone());
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but the joining gateway with id '{gateway}' has taken incoming sequence flows. Migrating instances with waiting joins is not possible yet."
            )));
        }
        if inst.flow_scope_key == NO_KEY {
            return Ok(()); // the process maps to the target process
        }
        if !SUPPORTED_TYPES.contains(&el.element_type) {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{}' has an unsupported type. The migration of a {} is not supported.",
                el.id,
                type_name(el.element_type)
            )));
        }
        let Some(&target_id) = mapping.get(&*el.id) else {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but no mapping instruction defined for active element with id '{}'. Elements cannot be migrated without a mapping.",
                el.id
            )));
        };
        let t = target.model.element(
            target
                .model
                .index_of(target_id)
                .expect("checked in the plan"),
        );
        if t.element_type != el.element_type {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{}' and type '{}' is mapped to an element with id '{target_id}' and different type '{}'. Elements must be mapped to elements of the same type.",
                el.id,
                type_name(el.element_type),
                type_name(t.element_type)
            )));
        }
        let implementation = |b: &Behavior| match b {
            Behavior::UserTask(_) => "zeebe user task",
            _ => "job worker",
        };
        if el.element_type == BpmnElementType::UserTask
            && implementation(&el.behavior) != implementation(&t.behavior)
        {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active user task with id '{}' and implementation '{}' is mapped to an user task with id '{target_id}' and different implementation '{}'. Elements must be mapped to elements of the same implementation.",
                el.id,
                implementation(&el.behavior),
                implementation(&t.behavior)
            )));
        }
        let scope = &self.state.instances[&inst.flow_scope_key];
        let expected: Arc<str> = if scope.flow_scope_key == NO_KEY {
            target.model.element(0).id.clone()
        } else {
            let scope_id = &*source.model.element(scope.element).id;
            Arc::from(mapping.get(scope_id).copied().unwrap_or(scope_id))
        };
        let actual = t
            .flow_scope
            .map(|s| target.model.element(s).id.clone())
            .unwrap_or_else(|| target.model.element(0).id.clone());
        if expected != actual {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but the flow scope of active element with id '{}' is changed. The flow scope of the active element is expected to be '{expected}' but was '{actual}'. The flow scope of an element cannot be changed during migration yet.",
                el.id
            )));
        }
        let source_events = subscription_kinds(&source.model, inst.element);
        if !source_events.is_empty() || self.owns_subscriptions(key) {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{}' has one or more boundary events of types '{}'. Migrating active elements with boundary events of these types is not possible yet.",
                el.id,
                if source_events.is_empty() { "event".to_string() } else { source_events.join("', '") }
            )));
        }
        let target_index = target
            .model
            .index_of(target_id)
            .expect("checked in the plan");
        let target_events = subscription_kinds(&target.model, target_index);
        if !target_events.is_empty() {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but target element with id '{target_id}' has one or more boundary events of types '{}'. Migrating target elements with boundary events of these types is not possible yet.",
                target_events.join("', '")
            )));
        }
        Ok(())
    }

    fn owns_subscriptions(&self, key: i64) -> bool {
        !State::owned(&self.state.timers_by_owner, key).is_empty()
            || !State::owned(&self.state.pms_by_owner, key).is_empty()
            || !State::owned(&self.state.signal_by_owner, key).is_empty()
    }

    fn migrate_element(
        &mut self,
        ctx: &mut Ctx,
        target: &Arc<DeployedProcess>,
        mapping: &BTreeMap<&str, &str>,
        key: i64,
    ) {
        let Some((source, element, flow_scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let inst = self.state.instances[&key].clone();
        let target_element = if flow_scope_key == NO_KEY {
            0
        } else {
            let id = mapping
                .get(&*source.model.element(element).id)
                .copied()
                .expect("every active element is mapped");
            target.model.index_of(id).expect("checked in the plan")
        };
        let mut value = pi_value(target, target_element, pi_key, flow_scope_key);
        if inst.parent_element_instance_key != NO_KEY {
            value.parent_element_instance_key = inst.parent_element_instance_key;
            value.parent_process_instance_key = self
                .state
                .instances
                .get(&inst.parent_element_instance_key)
                .map_or(NO_KEY, |p| p.process_instance_key);
        }
        let meta = &target.metadata;
        let element_id = target.model.element(target_element).id.clone();
        self.emit(
            ctx,
            key,
            Intent::ElementMigrated,
            RecordValue::ProcessInstance(value),
        );
        if inst.job_key != NO_KEY {
            if let Some(job) = self.state.jobs.get(&inst.job_key) {
                let mut record = job.record.clone();
                record.bpmn_process_id = meta.bpmn_process_id.clone();
                record.process_definition_key = meta.process_definition_key;
                record.process_definition_version = meta.version;
                record.element_id = element_id.clone();
                self.emit(
                    ctx,
                    inst.job_key,
                    Intent::Migrated,
                    RecordValue::Job(record),
                );
            }
            if let Some(task) = self.state.user_tasks.get(&inst.job_key) {
                let mut record = task.clone();
                record.bpmn_process_id = meta.bpmn_process_id.clone();
                record.process_definition_key = meta.process_definition_key;
                record.process_definition_version = meta.version;
                record.element_id = element_id.clone();
                self.emit(
                    ctx,
                    inst.job_key,
                    Intent::Migrated,
                    RecordValue::UserTask(record),
                );
            }
        }
        if inst.incident_key != NO_KEY {
            if let Some(incident) = self.state.incidents.get(&inst.incident_key) {
                let mut record = incident.clone();
                record.bpmn_process_id = meta.bpmn_process_id.clone();
                record.process_definition_key = meta.process_definition_key;
                record.element_id = element_id;
                self.emit(
                    ctx,
                    inst.incident_key,
                    Intent::Migrated,
                    RecordValue::Incident(record),
                );
            }
        }
    }
}

/// Checks the mapping instructions against both definitions; returns them
/// as source id → target id.
fn check_plan<'a>(
    source: &DeployedProcess,
    target: &DeployedProcess,
    m: &'a ProcessInstanceMigrationRecord,
) -> Result<BTreeMap<&'a str, &'a str>, Rejection> {
    let pi_key = m.process_instance_key;
    let mut mapping = BTreeMap::new();
    let mut duplicates: Vec<&str> = Vec::new();
    for i in &m.mapping_instructions {
        if mapping
            .insert(i.source_element_id.as_str(), i.target_element_id.as_str())
            .is_some()
            && !duplicates.contains(&i.source_element_id.as_str())
        {
            duplicates.push(&i.source_element_id);
        }
    }
    if !duplicates.is_empty() {
        return Err(rejection(
            RejectionType::InvalidArgument,
            format!(
                "Expected to migrate process instance '{pi_key}' but the mapping instructions contain duplicate source element ids '[{}]'.",
                duplicates.join(", ")
            ),
        ));
    }
    for i in &m.mapping_instructions {
        if source.model.index_of(&i.source_element_id).is_none() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to migrate process instance '{pi_key}' but mapping instructions contain a non-existing source element id '{}'. Elements provided in mapping instructions must exist in the source process definition.",
                    i.source_element_id
                ),
            ));
        }
        if target.model.index_of(&i.target_element_id).is_none() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to migrate process instance '{pi_key}' but mapping instructions contain a non-existing target element id '{}'. Elements provided in mapping instructions must exist in the target process definition.",
                    i.target_element_id
                ),
            ));
        }
    }
    let has_event_subprocess = |model: &Process| {
        model
            .elements
            .iter()
            .any(|e| e.element_type == BpmnElementType::EventSubProcess)
    };
    if has_event_subprocess(&source.model) {
        return Err(invalid_state(
            "Expected to migrate process instance but process instance has an event subprocess. Process instances with event subprocesses cannot be migrated yet.".into(),
        ));
    }
    if has_event_subprocess(&target.model) {
        return Err(invalid_state(
            "Expected to migrate process instance but target process has an event subprocess. Target processes with event subprocesses cannot be migrated yet.".into(),
        ));
    }
    Ok(mapping)
}

/// Kinds (`timer`, `message`, `signal`) of the events an element waits
/// for while active: its boundary events with a subscription.
fn subscription_kinds(model: &Process, element: u32) -> Vec<String> {
    let mut kinds = Vec::new();
    for &s in &model.element(element).subscriptions {
        let kind = format!("{:?}", model.element(s).event_type).to_ascii_uppercase();
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn invalid_state(reason: String) -> Rejection {
    rejection(RejectionType::InvalidState, reason)
}

/// Applies the migration events to the state; false for every other record.
pub(crate) fn apply(state: &mut State, record: &Record) -> bool {
    match (&record.value, record.intent) {
        (RecordValue::ProcessInstance(pi), Intent::ElementMigrated) => {
            let Some(process) = state.processes.get(&pi.process_definition_key) else {
                return true;
            };
            let element = process
                .model
                .instance_element(&pi.element_id, pi.bpmn_element_type)
                .expect("migrated element is in its target model");
            let inst = state
                .instances
                .get_mut(&record.key)
                .expect("migrated element instance is active");
            if inst.flow_scope_key == NO_KEY {
                state
                    .instances_by_definition
                    .remove(&(inst.process_definition_key, record.key));
                state
                    .instances_by_definition
                    .insert((pi.process_definition_key, record.key));
            }
            inst.process_definition_key = pi.process_definition_key;
            inst.element = element;
            true
        }
        (RecordValue::Job(job), Intent::Migrated) => {
            if let Some(j) = state.jobs.get_mut(&record.key) {
                j.record.bpmn_process_id = job.bpmn_process_id.clone();
                j.record.process_definition_key = job.process_definition_key;
                j.record.process_definition_version = job.process_definition_version;
                j.record.element_id = job.element_id.clone();
            }
            true
        }
        (RecordValue::UserTask(task), Intent::Migrated) => {
            if let Some(t) = state.user_tasks.get_mut(&record.key) {
                *t = task.clone();
            }
            true
        }
        (RecordValue::Incident(incident), Intent::Migrated) => {
            if let Some(i) = state.incidents.get_mut(&record.key) {
                *i = incident.clone();
            }
            true
        }
        _ => false,
    }
}
