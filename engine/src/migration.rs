//! Process instance migration (`PROCESS_INSTANCE_MIGRATION MIGRATE`): a
//! running instance moves to another process definition, each active
//! element to the element its mapping instruction names.
//!
//! ```text
//! MIGRATE: check the plan (Zeebe 8.8's preconditions; nothing is written on
//!          a rejection): target exists, mapped ids exist and are unique, every
//!          active element is mapped to an element of the same type (and user
//!          task implementation, and multi-instance loop kind) in the same flow
//!          scope; its catch events stay attached and keep their event types
//!          (see `migration_catch`); the joining gateways with taken flows are
//!          mapped to gateways of the same type that have those flows (by id);
//!          no event waits to activate its element in a scope (Zeebe's
//!          concurrent command); no message subscription migration still
//!          being distributed; no compensation subscriptions
//!       → per element instance, the process first, each scope before its
//!         children: ELEMENT_MIGRATED; the taken sequence flows of its waiting
//!         joins (ELEMENT_MIGRATED, type SEQUENCE_FLOW); its job (JOB
//!         MIGRATED), user task (USER_TASK MIGRATED) and incident (INCIDENT
//!         MIGRATED) get the target's key, version, id and element; its
//!         subscriptions are kept, closed or opened (`migration_catch`)
//!       → MIGRATED
//! ```
//!
//! Supported active elements: tasks (service, user, send, script, business
//! rule, undefined), sub-processes, call activities, event sub-processes,
//! intermediate catch events (message, timer, signal) not after an
//! event-based gateway, receive tasks, event-based and exclusive gateways,
//! and multi-instance bodies: mapping a multi-instance activity maps its
//! body, and each inner instance moves to the target body's inner activity.
//!
//! Variables stay where they are (their scopes are element instances, which
//! keep their keys). Jobs keep their type, worker and deadline, timers their
//! due date, message subscriptions their correlation key, as in Zeebe. The
//! rejection texts are Zeebe's, except those of waiting joins (an unmapped
//! gateway, another gateway type or scope, a taken flow the target gateway
//! lacks), which are this engine's in Zeebe's form.

use crate::engine::{pi_value, rejection, Ctx, Engine, ResponseValue};
use crate::migration_catch::{check_catch_events, CatchPlan};
use crate::model::Behavior;
use crate::modification::type_name;
use crate::record::*;
use crate::state::{DeployedProcess, ElementState, State};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Element types whose active instances can be migrated.
const SUPPORTED_TYPES: [BpmnElementType; 15] = [
    BpmnElementType::Process,
    BpmnElementType::ServiceTask,
    BpmnElementType::UserTask,
    BpmnElementType::SendTask,
    BpmnElementType::ScriptTask,
    BpmnElementType::BusinessRuleTask,
    BpmnElementType::SubProcess,
    BpmnElementType::CallActivity,
    BpmnElementType::Task,
    BpmnElementType::IntermediateCatchEvent,
    BpmnElementType::ReceiveTask,
    BpmnElementType::EventSubProcess,
    BpmnElementType::ExclusiveGateway,
    BpmnElementType::EventBasedGateway,
    BpmnElementType::MultiInstanceBody,
];

/// What migration does with one element instance.
struct ElementPlan {
    key: i64,
    /// Element index in the target model.
    target_element: u32,
    /// Its subscriptions.
    catch: CatchPlan,
    /// Ids of the taken sequence flows of its waiting joins.
    flows: Vec<Arc<str>>,
}

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
        let mut plans = Vec::with_capacity(instances.len());
        for &key in &instances {
            plans.push(self.plan_element(
                ctx.timestamp_ms,
                &source,
                &target,
                &mapping,
                pi_key,
                key,
            )?);
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

        for plan in plans {
            self.migrate_element(ctx, &target, plan);
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

    /// Checks element instance `key` against the mapping and plans its move.
    fn plan_element(
        &self,
        now_ms: i64,
        source: &DeployedProcess,
        target: &DeployedProcess,
        mapping: &BTreeMap<&str, &str>,
        pi_key: i64,
        key: i64,
    ) -> Result<ElementPlan, Rejection> {
        let inst = &self.state.instances[&key];
        let el = source.model.element(inst.element);
        if !State::owned(&self.state.triggers_by_scope, key).is_empty() {
            // An event waits to activate its element in this scope (an
            // interrupting event whose element is still terminating).
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but a concurrent command was executed on the process instance. Please retry the migration."
            )));
        }
        let target_element = if inst.flow_scope_key == NO_KEY {
            0 // the process maps to the target process
        } else {
            self.check_mapped_element(source, target, mapping, pi_key, key)?
        };
        let flows = check_joins(source, target, mapping, pi_key, inst, target_element)?;
        check_catch_events(
            pi_key,
            &source.model,
            &target.model,
            mapping,
            inst.element,
            target_element,
        )?;
        let open_new = inst.state == ElementState::Activated && !self.interrupted(source, key);
        let catch = self.plan_catch_events(
            now_ms,
            target,
            mapping,
            pi_key,
            key,
            &el.id,
            target_element,
            open_new,
        )?;
        Ok(ElementPlan {
            key,
            target_element,
            catch,
            flows,
        })
    }

    /// True when scope instance `key` takes no more events: a terminate end
    /// event ended it, or an interrupting event sub-process runs in it.
    fn interrupted(&self, source: &DeployedProcess, key: i64) -> bool {
        let inst = &self.state.instances[&key];
        inst.interrupted
            || self.state.children_of(key).into_iter().any(|c| {
                let child = &self.state.instances[&c];
                if child.process_instance_key != inst.process_instance_key {
                    return false; // a called process instance
                }
                let el = source.model.element(child.element);
                el.element_type == BpmnElementType::EventSubProcess && el.interrupting
            })
    }

    /// Zeebe's checks of an active element that is not the process; returns
    /// the index of its target element.
    fn check_mapped_element(
        &self,
        source: &DeployedProcess,
        target: &DeployedProcess,
        mapping: &BTreeMap<&str, &str>,
        pi_key: i64,
        key: i64,
    ) -> Result<u32, Rejection> {
        let inst = &self.state.instances[&key];
        let el = source.model.element(inst.element);
        if !SUPPORTED_TYPES.contains(&el.element_type) {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{}' has an unsupported type. The migration of a {} is not supported.",
                el.id,
                type_name(el.element_type)
            )));
        }
        if el.element_type == BpmnElementType::IntermediateCatchEvent {
            if !matches!(
                el.event_type,
                BpmnEventType::Message | BpmnEventType::Timer | BpmnEventType::Signal
            ) {
                return Err(invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{}' is intermediate catch event of type '{}'. Migrating active intermediate catch event of this type is not possible yet.",
                    el.id,
                    format!("{:?}", el.event_type).to_ascii_uppercase()
                )));
            }
            let after_event_gateway = el.incoming.iter().any(|&f| {
                matches!(
                    source.model.element(source.model.flow(f).source).behavior,
                    Behavior::EventGateway
                )
            });
            if after_event_gateway {
                return Err(invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{}' is an intermediate catch event attached to an event-based gateway. Migrating active events attached to an event-based gateway is not possible yet.",
                    el.id
                )));
            }
        }
        let Some(&target_id) = mapping.get(&*el.id) else {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but no mapping instruction defined for active element with id '{}'. Elements cannot be migrated without a mapping.",
                el.id
            )));
        };
        let mut target_element = target
            .model
            .index_of(target_id)
            .expect("checked in the plan");
        // An inner instance of a multi-instance body moves to the inner
        // activity of the target body (the mapping names the activity, whose
        // id the body shares).
        let is_inner = el.flow_scope.is_some_and(|s| {
            source.model.element(s).element_type == BpmnElementType::MultiInstanceBody
        });
        if let Behavior::MultiInstance(mi) = &target.model.element(target_element).behavior {
            if is_inner {
                target_element = mi.inner;
            }
        }
        let t = target.model.element(target_element);
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
        if let (Behavior::MultiInstance(s), Behavior::MultiInstance(t)) =
            (&el.behavior, &t.behavior)
        {
            if s.sequential != t.sequential {
                return Err(invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{}' has a different loop characteristics than the target element with id '{target_id}'. Both elements must have either sequential or parallel loop characteristics.",
                    el.id
                )));
            }
        }
        Ok(target_element)
    }

    fn migrate_element(&mut self, ctx: &mut Ctx, target: &Arc<DeployedProcess>, plan: ElementPlan) {
        let key = plan.key;
        let Some((_, _, flow_scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let inst = self.state.instances[&key].clone();
        let target_element = plan.target_element;
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
            RecordValue::ProcessInstance(value.clone()),
        );
        for flow in plan.flows {
            let mut record = value.clone();
            record.element_id = flow;
            record.bpmn_element_type = BpmnElementType::SequenceFlow;
            record.bpmn_event_type = BpmnEventType::None;
            record.flow_scope_key = key;
            let flow_key = self.state.keys.next_key();
            self.emit(
                ctx,
                flow_key,
                Intent::ElementMigrated,
                RecordValue::ProcessInstance(record),
            );
        }
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
                    RecordValue::Job(Box::new(record)),
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
                    RecordValue::UserTask(Box::new(record)),
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
        self.migrate_catch_events(ctx, target, key, pi_key, plan.catch);
    }
}

/// Zeebe's checks of the waiting joins of scope instance `inst` (moving to
/// `target_scope`): each joining gateway with taken incoming flows is mapped
/// to a gateway of the same type in the same scope that has those flows (by
/// id). Returns the ids of the taken flows.
fn check_joins(
    source: &DeployedProcess,
    target: &DeployedProcess,
    mapping: &BTreeMap<&str, &str>,
    pi_key: i64,
    inst: &crate::state::ElementInstance,
    target_scope: u32,
) -> Result<Vec<Arc<str>>, Rejection> {
    let mut flows = Vec::new();
    for &(f, _) in &inst.joins {
        let flow = source.model.flow(f);
        let gateway = source.model.element(flow.target);
        let Some(&target_id) = mapping.get(&*gateway.id) else {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but no mapping instruction defined for active gateway with id '{}' that has taken incoming sequence flows. Joining gateways with taken sequence flows must be mapped.",
                gateway.id
            )));
        };
        let t = target.model.element(
            target
                .model
                .index_of(target_id)
                .expect("checked in the plan"),
        );
        if t.element_type != gateway.element_type {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active gateway with id '{}' and type '{}' is mapped to an element with id '{target_id}' and different type '{}'. Elements must be mapped to elements of the same type.",
                gateway.id,
                type_name(gateway.element_type),
                type_name(t.element_type)
            )));
        }
        if t.flow_scope != Some(target_scope) {
            let actual = t.flow_scope.map_or_else(
                || target.model.element(0).id.clone(),
                |s| target.model.element(s).id.clone(),
            );
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but the flow scope of active gateway with id '{}' is changed. The flow scope of the active gateway is expected to be '{}' but was '{actual}'. The flow scope of an element cannot be changed during migration yet.",
                gateway.id,
                target.model.element(target_scope).id
            )));
        }
        let has_flow = target
            .model
            .flow_index_of(&flow.id)
            .is_some_and(|tf| target.model.element(target.model.flow(tf).target).id == t.id);
        if !has_flow {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active gateway with id '{}' has a taken incoming sequence flow with id '{}' that is not an incoming sequence flow of the target gateway with id '{target_id}'. Taken sequence flows are migrated by id and must exist in the target process.",
                gateway.id, flow.id
            )));
        }
        if !flows.contains(&flow.id) {
            flows.push(flow.id.clone());
        }
    }
    Ok(flows)
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
    Ok(mapping)
}

fn invalid_state(reason: String) -> Rejection {
    rejection(RejectionType::InvalidState, reason)
}

/// Applies the migration events to the state; false for every other record.
pub(crate) fn apply(state: &mut State, record: &Record) -> bool {
    if crate::migration_catch::apply(state, record) {
        return true;
    }
    match (&record.value, record.intent) {
        (RecordValue::ProcessInstance(pi), Intent::ElementMigrated)
            if pi.bpmn_element_type == BpmnElementType::SequenceFlow =>
        {
            // A taken flow of a waiting join: its scope's ELEMENT_MIGRATED
            // already moved it (by id).
            true
        }
        (RecordValue::ProcessInstance(pi), Intent::ElementMigrated) => {
            let Some(process) = state.processes.get(&pi.process_definition_key).cloned() else {
                return true;
            };
            let element = process
                .model
                .instance_element(&pi.element_id, pi.bpmn_element_type)
                .expect("migrated element is in its target model");
            let old = state
                .instances
                .get(&record.key)
                .and_then(|i| state.processes.get(&i.process_definition_key))
                .cloned();
            let inst = state
                .instances
                .get_mut(&record.key)
                .expect("migrated element instance is active");
            if let Some(old) = old {
                // Taken flows of waiting joins, by id (the plan checked that
                // the target has each of them).
                for (flow, _) in &mut inst.joins {
                    let id = &old.model.flow(*flow).id;
                    *flow = process
                        .model
                        .flow_index_of(id)
                        .expect("taken flow of a waiting join is in the target model");
                }
            }
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
                *t = (**task).clone();
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
