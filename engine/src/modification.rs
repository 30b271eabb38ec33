//! Process instance modification (`PROCESS_INSTANCE_MODIFICATION MODIFY`)
//! and the start instructions of instance creation.
//!
//! ```text
//! MODIFY: validate every instruction (nothing is written on a rejection;
//!         the subscriptions of the flow scopes to create must evaluate, see
//!         `modification_subscriptions`)
//!         → per activate instruction: find the flow scope instances of the
//!           element (the one active instance of each, or below the given
//!           ancestor), create the missing ones (ELEMENT_ACTIVATING, their
//!           variable instructions, subscriptions, ELEMENT_ACTIVATED), set the
//!           other variable instructions,
//!           queue the element's activation
//!         → per terminate instruction: ELEMENT_TERMINATING top-down (job,
//!           user task, incident and subscriptions closed), ELEMENT_TERMINATED
//!           bottom-up; then each flow scope left without active children,
//!           flows or activations is terminated the same way, up to the
//!           process instance
//!         → MODIFIED (with the flow scope keys each activation used)
//! ```
//!
//! The rules and rejection messages are Zeebe 8.8's
//! (`ProcessInstanceModificationModifyProcessor`). Start instructions
//! (`CreateProcessInstance.startInstructions`) use the same placement: the
//! process is activated without its start event and each element is
//! activated in new flow scope instances.

use crate::engine::{pi_value, rejection, Ctx, Engine, ResponseValue, Step};
use crate::model::Process;
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::{DeployedProcess, ElementState};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Most instructions (activate plus terminate) one modification carries.
pub const MAX_MODIFICATION_INSTRUCTIONS: usize = 1000;

/// Element types an instruction cannot activate (Zeebe's list; the start
/// event of a scope is taken by activating the scope itself).
const UNSUPPORTED_TYPES: [BpmnElementType; 3] = [
    BpmnElementType::StartEvent,
    BpmnElementType::SequenceFlow,
    BpmnElementType::BoundaryEvent,
];

/// Every element type, in Zeebe's order, for the list of supported ones.
const ALL_TYPES: [BpmnElementType; 23] = [
    BpmnElementType::Process,
    BpmnElementType::SubProcess,
    BpmnElementType::EventSubProcess,
    BpmnElementType::StartEvent,
    BpmnElementType::IntermediateCatchEvent,
    BpmnElementType::IntermediateThrowEvent,
    BpmnElementType::BoundaryEvent,
    BpmnElementType::EndEvent,
    BpmnElementType::ServiceTask,
    BpmnElementType::ReceiveTask,
    BpmnElementType::UserTask,
    BpmnElementType::ManualTask,
    BpmnElementType::Task,
    BpmnElementType::ExclusiveGateway,
    BpmnElementType::ParallelGateway,
    BpmnElementType::EventBasedGateway,
    BpmnElementType::InclusiveGateway,
    BpmnElementType::SequenceFlow,
    BpmnElementType::MultiInstanceBody,
    BpmnElementType::CallActivity,
    BpmnElementType::BusinessRuleTask,
    BpmnElementType::ScriptTask,
    BpmnElementType::SendTask,
];

/// Zeebe's name of an element type (`SERVICE_TASK`).
pub(crate) fn type_name(element_type: BpmnElementType) -> String {
    let camel = format!("{element_type:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn supported_types() -> String {
    let names: Vec<String> = ALL_TYPES
        .iter()
        .filter(|t| !UNSUPPORTED_TYPES.contains(t) && **t != BpmnElementType::Process)
        .map(|t| type_name(*t))
        .collect();
    format!("[{}]", names.join(", "))
}

/// The flow scopes of `element`, outermost (the process, index 0) first.
pub(crate) fn flow_scopes(model: &Process, element: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut scope = model.element(element).flow_scope;
    while let Some(s) = scope {
        chain.push(s);
        scope = model.element(s).flow_scope;
    }
    chain.reverse();
    chain
}

/// True if `element` is a catch event after an event-based gateway.
fn after_event_gateway(model: &Process, element: u32) -> bool {
    model.element(element).incoming.iter().any(|&f| {
        model.element(model.flow(f).source).element_type == BpmnElementType::EventBasedGateway
    })
}

/// Where an activate instruction puts its element.
struct Placement {
    /// (flow scope element, its instance) found, outermost first.
    found: Vec<(u32, i64)>,
    /// Flow scope elements to create below the last found one, outermost first.
    create: Vec<u32>,
}

/// Why an element cannot be placed.
enum PlacementError {
    /// More than one active instance of this flow scope element.
    Ambiguous(u32),
    /// The multi-instance body would have to be created.
    MultiInstance(u32),
}

impl Engine {
    /// `PROCESS_INSTANCE_MODIFICATION MODIFY`.
    pub(crate) fn modify_instance(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        m: &ProcessInstanceModificationRecord,
    ) -> Result<(), Rejection> {
        let pi_key = m.process_instance_key;
        let event_key = if cmd.key > 0 { cmd.key } else { pi_key };
        let root = self
            .state
            .instances
            .get(&pi_key)
            .filter(|i| i.flow_scope_key == NO_KEY)
            .ok_or_else(|| {
                rejection(
                    RejectionType::NotFound,
                    format!("Expected to modify process instance but no process instance found with key '{event_key}'"),
                )
            })?;
        let def = self.definition(root.process_definition_key)?;
        let count = m.activate_instructions.len() + m.terminate_instructions.len();
        if count > MAX_MODIFICATION_INSTRUCTIONS {
            return Err(invalid(format!(
                "Expected at most {MAX_MODIFICATION_INSTRUCTIONS} instructions in one modification of process instance '{pi_key}', but got {count}. Please split the modification into multiple commands."
            )));
        }
        self.validate_modification(&def, m)?;
        let process_id = def.metadata.bpmn_process_id.clone();
        // Placement is checked before anything is written; it is found
        // again when activating, as an earlier instruction may have created
        // a flow scope a later one shares.
        let mut required = BTreeSet::new();
        let mut activations = Vec::with_capacity(m.activate_instructions.len());
        for a in &m.activate_instructions {
            let element = def.model.index_of(&a.element_id).expect("validated");
            let placement = self
                .place(&def.model, pi_key, element, a.ancestor_scope_key)
                .map_err(|e| placement_rejection(&def, &process_id, e))?;
            self.check_created_scope_subscriptions(
                ctx.timestamp_ms,
                &def,
                &placement.found,
                &placement.create,
                a,
            )?;
            required.extend(placement.found.iter().map(|&(_, k)| k));
            activations.push((a, element));
        }
        self.check_child_process_survives(&def, m, &required)?;

        let mut record = ProcessInstanceModificationRecord {
            process_instance_key: pi_key,
            terminate_instructions: Vec::with_capacity(m.terminate_instructions.len()),
            activate_instructions: Vec::with_capacity(m.activate_instructions.len()),
        };
        for (instruction, element) in activations {
            let Ok(placement) =
                self.place(&def.model, pi_key, element, instruction.ancestor_scope_key)
            else {
                continue; // a created scope has one instance: cannot fail now
            };
            let scopes = self.open_flow_scopes(ctx, &def, pi_key, placement, Some(instruction));
            let key = self.state.keys.next_key();
            self.apply_variable_instructions(ctx, &def, pi_key, element, key, &scopes, instruction);
            let flow_scope_key = scopes.last().map_or(pi_key, |&(_, k)| k);
            ctx.steps.push_back(Step::Activate {
                process_definition_key: def.metadata.process_definition_key,
                element,
                flow_scope_key,
                process_instance_key: pi_key,
                key,
            });
            let mut done = instruction.clone();
            done.ancestor_scope_keys = scopes.iter().map(|&(_, k)| k).collect();
            record.activate_instructions.push(done);
        }
        for &key in &m.terminate_instructions {
            record.terminate_instructions.push(key);
            let Some(inst) = self.state.instances.get(&key) else {
                continue; // ended with an earlier instruction
            };
            let flow_scope_key = inst.flow_scope_key;
            self.terminate_subtree(ctx, key);
            self.terminate_empty_scopes(ctx, flow_scope_key, &required);
        }
        self.emit(
            ctx,
            event_key,
            Intent::Modified,
            RecordValue::ProcessInstanceModification(record),
        );
        Self::respond(
            ctx,
            cmd,
            ResponseValue::ProcessInstanceModified { key: event_key },
        );
        Ok(())
    }

    fn validate_modification(
        &self,
        def: &DeployedProcess,
        m: &ProcessInstanceModificationRecord,
    ) -> Result<(), Rejection> {
        let model = &def.model;
        let id = &def.metadata.bpmn_process_id;
        let unknown: BTreeSet<&str> = m
            .activate_instructions
            .iter()
            .map(|a| a.element_id.as_str())
            .filter(|e| model.index_of(e).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions with an element that could not be found: '{}'",
                join(unknown)
            )));
        }
        let elements: Vec<u32> = m
            .activate_instructions
            .iter()
            .map(|a| model.index_of(&a.element_id).expect("checked above"))
            .collect();
        let mut gateway_events: Vec<&str> = Vec::new();
        for &e in &elements {
            let el_id = &*model.element(e).id;
            if after_event_gateway(model, e) && !gateway_events.contains(&el_id) {
                gateway_events.push(el_id);
            }
        }
        if !gateway_events.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions for elements that are unsupported: '{}'. The activation of events belonging to an event-based gateway is not supported.",
                gateway_events.join("', '")
            )));
        }
        let mut bad_ids: Vec<&str> = Vec::new();
        let mut bad_types: Vec<String> = Vec::new();
        for &e in &elements {
            let el = model.element(e);
            // The process itself is activated only by creating an instance.
            let unsupported = UNSUPPORTED_TYPES.contains(&el.element_type) || e == 0;
            if unsupported && !bad_ids.contains(&&*el.id) {
                bad_ids.push(&el.id);
                let name = type_name(el.element_type);
                if !bad_types.contains(&name) {
                    bad_types.push(name);
                }
            }
        }
        if !bad_ids.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions for elements that are unsupported: '{}'. The activation of elements with type '{}' is not supported. Supported element types are: {}.",
                bad_ids.join("', '"),
                bad_types.join("', '"),
                supported_types()
            )));
        }
        let mut missing: Vec<String> = Vec::new();
        for &key in &m.terminate_instructions {
            let found = self
                .state
                .instances
                .get(&key)
                .is_some_and(|i| i.process_instance_key == m.process_instance_key);
            if !found && !missing.contains(&key.to_string()) {
                missing.push(key.to_string());
            }
        }
        if !missing.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more terminate instructions with an element instance that could not be found: '{}'",
                missing.join("', '")
            )));
        }
        let unknown_scopes: BTreeSet<&str> = m
            .activate_instructions
            .iter()
            .flat_map(|a| &a.variable_instructions)
            .map(|v| v.element_id.as_str())
            .filter(|e| !e.is_empty() && model.index_of(e).is_none())
            .collect();
        if !unknown_scopes.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more variable instructions with a scope element id that could not be found: '{}'",
                join(unknown_scopes)
            )));
        }
        for (a, &e) in m.activate_instructions.iter().zip(&elements) {
            let chain = flow_scopes(model, e);
            for v in &a.variable_instructions {
                let ok = v.element_id.is_empty()
                    || v.element_id == a.element_id
                    || chain.iter().any(|&s| *model.element(s).id == *v.element_id);
                if !ok {
                    return Err(invalid(format!(
                        "Expected to modify instance of process '{id}' but it contains one or more variable instructions with a scope element that doesn't belong to the activating element's flow scope. These variables should be set before or after the modification."
                    )));
                }
                if let Err(e) = parse_document(&v.variables) {
                    return Err(invalid(format!(
                        "Expected to modify instance of process '{id}' but the variables of the activate instruction for element '{}' are invalid: {e}",
                        a.element_id
                    )));
                }
            }
        }
        self.validate_ancestors(def, m, &elements)?;
        let mut conflicts = Vec::new();
        for &key in &m.terminate_instructions {
            let Some(terminated) = self.state.instances.get(&key) else {
                continue;
            };
            for (a, &e) in m.activate_instructions.iter().zip(&elements) {
                let conflict = if a.ancestor_scope_key > 0 {
                    a.ancestor_scope_key == key
                } else {
                    let terminated_id = &model.element(terminated.element).id;
                    flow_scopes(model, e)
                        .iter()
                        .any(|&s| model.element(s).id == *terminated_id)
                };
                if conflict {
                    conflicts.push(format!(
                        "element '{}' requires flow scope instance '{key}' which is being terminated",
                        a.element_id
                    ));
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions for elements whose required flow scope instance is also being terminated: {}. Please provide a valid ancestor scope key for the activation or avoid terminating the required flow scope.",
                conflicts.join(", ")
            )));
        }
        Ok(())
    }

    fn validate_ancestors(
        &self,
        def: &DeployedProcess,
        m: &ProcessInstanceModificationRecord,
        elements: &[u32],
    ) -> Result<(), Rejection> {
        let model = &def.model;
        let id = &def.metadata.bpmn_process_id;
        let mut inactive: Vec<String> = Vec::new();
        let mut foreign: Vec<String> = Vec::new();
        let mut not_ancestor = String::new();
        for (a, &e) in m.activate_instructions.iter().zip(elements) {
            let key = a.ancestor_scope_key;
            if key <= 0 {
                continue;
            }
            match self.state.instances.get(&key) {
                Some(i) if i.state == ElementState::Activated => {
                    if i.process_instance_key != m.process_instance_key {
                        if !foreign.contains(&key.to_string()) {
                            foreign.push(key.to_string());
                        }
                        continue;
                    }
                    let ancestor_id = &model.element(i.element).id;
                    let is_ancestor = flow_scopes(model, e)
                        .iter()
                        .any(|&s| model.element(s).id == *ancestor_id);
                    if !is_ancestor {
                        not_ancestor.push_str(&format!(
                            "\n- instance '{key}' of element '{ancestor_id}' is not an ancestor of element '{}'",
                            a.element_id
                        ));
                    }
                }
                _ => {
                    if !inactive.contains(&key.to_string()) {
                        inactive.push(key.to_string());
                    }
                }
            }
        }
        if !inactive.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions with an ancestor scope key that does not exist, or is not in an active state: '{}'",
                inactive.join("', '")
            )));
        }
        if !foreign.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions with an ancestor scope key that does not belong to the modified process instance: '{}'",
                foreign.join("', '")
            )));
        }
        if !not_ancestor.is_empty() {
            return Err(invalid(format!(
                "Expected to modify instance of process '{id}' but it contains one or more activate instructions with an ancestor scope key that is not an ancestor of the element to activate:{not_ancestor}"
            )));
        }
        Ok(())
    }

    /// Finds the flow scope instances `element` is activated in: below
    /// `ancestor` (or the process instance), the one active instance of
    /// each flow scope element, and the elements to create where none is.
    fn place(
        &self,
        model: &Process,
        pi_key: i64,
        element: u32,
        ancestor: i64,
    ) -> Result<Placement, PlacementError> {
        let chain = flow_scopes(model, element);
        let (mut found, start) = match self.state.instances.get(&ancestor) {
            Some(a) if ancestor > 0 => {
                let pos = chain
                    .iter()
                    .rposition(|&s| s == a.element)
                    .or_else(|| {
                        chain
                            .iter()
                            .rposition(|&s| model.element(s).id == model.element(a.element).id)
                    })
                    .unwrap_or(0);
                let mut found = Vec::new();
                // The ancestor's own flow scopes are its ancestors.
                let mut k = a.flow_scope_key;
                let mut outer = Vec::new();
                while let Some(i) = self.state.instances.get(&k) {
                    outer.push((i.element, k));
                    k = i.flow_scope_key;
                }
                outer.reverse();
                found.extend(outer);
                found.push((chain[pos], ancestor));
                (found, pos + 1)
            }
            _ => (vec![(0, pi_key)], 1),
        };
        let mut scope_key = pi_key;
        if let Some(&(_, k)) = found.last() {
            scope_key = k;
        }
        let mut create = Vec::new();
        for (i, &s) in chain.iter().enumerate().skip(start) {
            let active: Vec<i64> = self
                .state
                .children_of(scope_key)
                .into_iter()
                .filter(|c| {
                    self.state.instances.get(c).is_some_and(|inst| {
                        inst.element == s && inst.state == ElementState::Activated
                    })
                })
                .collect();
            match active.as_slice() {
                [] => {
                    create = chain[i..].to_vec();
                    break;
                }
                [only] => {
                    scope_key = *only;
                    found.push((s, *only));
                }
                _ => return Err(PlacementError::Ambiguous(s)),
            }
        }
        if let Some(&body) = create
            .iter()
            .find(|&&s| model.element(s).element_type == BpmnElementType::MultiInstanceBody)
        {
            return Err(PlacementError::MultiInstance(body));
        }
        Ok(Placement { found, create })
    }

    /// Creates the missing flow scopes of a placement; returns every flow
    /// scope (element, instance), outermost first.
    fn open_flow_scopes(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        pi_key: i64,
        placement: Placement,
        instruction: Option<&ActivateInstruction>,
    ) -> Vec<(u32, i64)> {
        let mut scopes = placement.found;
        // The variable instructions for the flow scopes are set before the
        // subscriptions of the created ones, which may need them (as in
        // Zeebe); setting them again afterwards changes nothing.
        let of = |id: Option<&str>| -> Vec<(String, String)> {
            instruction
                .into_iter()
                .flat_map(|i| &i.variable_instructions)
                .filter(|v| match id {
                    Some(id) => *v.element_id == *id,
                    None => v.element_id.is_empty(),
                })
                .filter_map(|v| parse_document(&v.variables).ok())
                .flatten()
                .map(|(name, value)| (name, value.get().to_string()))
                .collect()
        };
        if !placement.create.is_empty() {
            let mut early: Vec<(i64, Vec<(String, String)>)> = vec![(pi_key, of(None))];
            for &(element, key) in &scopes {
                early.push((key, of(Some(&def.model.element(element).id))));
            }
            for (key, variables) in early {
                for (name, value) in variables {
                    self.set_local(ctx, key, pi_key, &name, &value);
                }
            }
        }
        for element in placement.create {
            let parent = scopes.last().map_or(pi_key, |&(_, k)| k);
            let variables = of(Some(&def.model.element(element).id));
            let key = self.open_scope(ctx, def, element, parent, pi_key, &variables);
            scopes.push((element, key));
        }
        scopes
    }

    /// Activates a container without entering its start event:
    /// ELEMENT_ACTIVATING, the local `variables`, its event subscriptions,
    /// ELEMENT_ACTIVATED.
    pub(crate) fn open_scope(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        element: u32,
        flow_scope_key: i64,
        pi_key: i64,
        variables: &[(String, String)],
    ) -> i64 {
        let key = if flow_scope_key == NO_KEY {
            pi_key
        } else {
            self.state.keys.next_key()
        };
        let value = pi_value(def, element, pi_key, flow_scope_key);
        self.emit(
            ctx,
            key,
            Intent::ElementActivating,
            RecordValue::ProcessInstance(value),
        );
        for (name, value) in variables {
            self.set_local(ctx, key, pi_key, name, value);
        }
        if !def.model.element(element).subscriptions.is_empty() {
            if let Err(message) = self.open_subscriptions(ctx, key) {
                // As on a normal activation: the scope waits in ACTIVATING
                // until the incident is resolved.
                self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY);
                return key;
            }
        }
        self.element_event(ctx, def, key, Intent::ElementActivated);
        key
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_variable_instructions(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        pi_key: i64,
        element: u32,
        element_key: i64,
        scopes: &[(u32, i64)],
        instruction: &ActivateInstruction,
    ) {
        let model = &def.model;
        for v in &instruction.variable_instructions {
            let scope = if v.element_id.is_empty() {
                pi_key
            } else if *model.element(element).id == *v.element_id {
                element_key
            } else {
                match scopes
                    .iter()
                    .rev()
                    .find(|&&(s, _)| *model.element(s).id == *v.element_id)
                {
                    Some(&(_, k)) => k,
                    None => continue,
                }
            };
            let Ok(vars) = parse_document(&v.variables) else {
                continue; // validated before anything was written
            };
            let vars: Vec<(String, String)> = vars
                .into_iter()
                .map(|(n, v)| (n, v.get().to_string()))
                .collect();
            for (name, value) in vars {
                self.set_local(ctx, scope, pi_key, &name, &value);
            }
        }
    }

    /// Rejects a modification that would terminate a process instance
    /// called by a call activity (Zeebe asks to modify the parent instead).
    fn check_child_process_survives(
        &self,
        def: &DeployedProcess,
        m: &ProcessInstanceModificationRecord,
        required: &BTreeSet<i64>,
    ) -> Result<(), Rejection> {
        let mut ended: BTreeSet<i64> = BTreeSet::new();
        for &key in &m.terminate_instructions {
            let mut stack = vec![key];
            while let Some(k) = stack.pop() {
                if ended.insert(k) {
                    stack.extend(self.state.children_of(k));
                }
            }
            let mut scope = self
                .state
                .instances
                .get(&key)
                .map_or(NO_KEY, |i| i.flow_scope_key);
            while let Some(inst) = self.state.instances.get(&scope) {
                let empty = inst.active_flows == 0
                    && !required.contains(&scope)
                    && self
                        .state
                        .children_of(scope)
                        .iter()
                        .all(|c| ended.contains(c));
                if !empty {
                    break;
                }
                ended.insert(scope);
                scope = inst.flow_scope_key;
            }
        }
        let root = m.process_instance_key;
        let called = self
            .state
            .instances
            .get(&root)
            .is_some_and(|i| i.parent_element_instance_key != NO_KEY);
        if called && ended.contains(&root) {
            return Err(invalid(format!(
                "Expected to modify instance of process '{}' but the given instructions would terminate the instance. The instance was created by a call activity in the parent process. To terminate this instance please modify the parent process instead.",
                def.metadata.bpmn_process_id
            )));
        }
        Ok(())
    }

    /// Terminates `key` and everything below it within this command:
    /// ELEMENT_TERMINATING top-down, ELEMENT_TERMINATED bottom-up.
    pub(crate) fn terminate_subtree(&mut self, ctx: &mut Ctx, key: i64) {
        let mut order = Vec::new();
        let mut stack = vec![key];
        while let Some(k) = stack.pop() {
            let Some((def, element, _, _)) = self.instance_parts(k) else {
                continue;
            };
            let inst = self
                .state
                .instances
                .get(&k)
                .expect("instance exists")
                .clone();
            if inst.state == ElementState::Terminating {
                continue; // its termination is already under way
            }
            let has_subscriptions = !def.model.element(element).subscriptions.is_empty();
            if self.close_held_work(ctx, k, &inst, has_subscriptions) {
                // A modification terminates within its command: a user
                // task's canceling listeners do not run, the task ends here.
                if let Some(task) = self.state.user_tasks.get(&inst.job_key).cloned() {
                    self.emit(
                        ctx,
                        inst.job_key,
                        Intent::Canceled,
                        RecordValue::UserTask(Box::new(task)),
                    );
                }
            }
            self.element_event(ctx, &def, k, Intent::ElementTerminating);
            order.push((def, k));
            stack.extend(self.state.children_of(k));
        }
        for (def, k) in order.into_iter().rev() {
            let Some(inst) = self.state.instances.get(&k) else {
                continue;
            };
            if inst.flow_scope_key == NO_KEY {
                if let Some(waiting) = self.state.awaiting.get(&k).cloned() {
                    ctx.out.responses.push((
                        waiting.request_id,
                        Err(rejection(
                            RejectionType::InvalidState,
                            format!("process instance '{k}' was terminated before it completed"),
                        )),
                    ));
                }
            }
            self.element_event(ctx, &def, k, Intent::ElementTerminated);
        }
    }

    /// Terminates `scope` and its flow scopes upwards while each is left
    /// without active children, flows or required activations.
    fn terminate_empty_scopes(&mut self, ctx: &mut Ctx, mut scope: i64, required: &BTreeSet<i64>) {
        while let Some(inst) = self.state.instances.get(&scope) {
            if inst.active_children > 0
                || inst.active_flows > 0
                || inst.state != ElementState::Activated
                || required.contains(&scope)
            {
                return;
            }
            let parent = inst.flow_scope_key;
            self.terminate_subtree(ctx, scope);
            scope = parent;
        }
    }

    /// Start instructions of `CreateProcessInstance`: rejects element ids
    /// that cannot start an instance, before anything is written.
    pub(crate) fn validate_start_instructions(
        &self,
        def: &DeployedProcess,
        ids: &[String],
    ) -> Result<Vec<u32>, Rejection> {
        let model = &def.model;
        let mut elements = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(e) = model.index_of(id) else {
                return Err(invalid(format!(
                    "Expected to create instance of process with start instructions but no element found with id '{id}'."
                )));
            };
            let el = model.element(e);
            if UNSUPPORTED_TYPES.contains(&el.element_type) || e == 0 {
                return Err(invalid(format!(
                    "Expected to create instance of process with start instructions but the element with id '{id}' targets unsupported element type '{}'. Supported element types are: {}",
                    type_name(el.element_type),
                    supported_types()
                )));
            }
            if after_event_gateway(model, e) {
                return Err(invalid(format!(
                    "Expected to create instance of process with start instructions but the element with id '{id}' belongs to an event-based gateway. The creation of elements belonging to an event-based gateway is not supported."
                )));
            }
            if flow_scopes(model, e)
                .iter()
                .any(|&s| model.element(s).element_type == BpmnElementType::MultiInstanceBody)
            {
                return Err(invalid(format!(
                    "Expected to create instance of process with start instructions but the element with id '{id}' is inside a multi-instance subprocess. The creation of elements inside a multi-instance subprocess is not supported."
                )));
            }
            elements.push(e);
        }
        Ok(elements)
    }

    /// Activates a new process instance at `elements` instead of its start
    /// event; flow scopes shared by several elements are created once.
    pub(crate) fn start_at(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        pi_key: i64,
        elements: &[u32],
    ) {
        self.open_scope(ctx, def, 0, NO_KEY, pi_key, &[]);
        for &element in elements {
            let Ok(placement) = self.place(&def.model, pi_key, element, NO_KEY) else {
                continue; // new scopes have one instance each; validated above
            };
            let scopes = self.open_flow_scopes(ctx, def, pi_key, placement, None);
            let flow_scope_key = scopes.last().map_or(pi_key, |&(_, k)| k);
            ctx.steps.push_back(Step::Activate {
                process_definition_key: def.metadata.process_definition_key,
                element,
                flow_scope_key,
                process_instance_key: pi_key,
                key: NO_KEY,
            });
        }
    }
}

fn invalid(reason: String) -> Rejection {
    rejection(RejectionType::InvalidArgument, reason)
}

fn join(ids: BTreeSet<&str>) -> String {
    ids.into_iter().collect::<Vec<_>>().join("', '")
}

fn placement_rejection(def: &DeployedProcess, process_id: &str, e: PlacementError) -> Rejection {
    match e {
        PlacementError::Ambiguous(s) => invalid(format!(
            "Expected to modify instance of process '{process_id}' but it contains one or more activate instructions for an element that has a flow scope with more than one active instance: '{}'. Can't decide in which instance of the flow scope the element should be activated. Please specify an ancestor element instance key for this activate instruction.",
            def.model.element(s).id
        )),
        PlacementError::MultiInstance(s) => invalid(format!(
            "Expected to modify instance of process '{process_id}' but it contains one or more activate instructions that would result in the activation of multi-instance element '{}', which is currently unsupported.",
            def.model.element(s).id
        )),
    }
}
