//! BPMN element behaviour: the steps that move element instances through
//! their lifecycle, and the sequence flows between them.
//!
//! ```text
//! activate:  ELEMENT_ACTIVATING → input mappings → (per element type)
//!            pass-through / gateway: ELEMENT_ACTIVATED → complete
//!            job task: JOB CREATED, ELEMENT_ACTIVATED (waits for the job)
//!            script task: evaluate, ELEMENT_ACTIVATED, result variable → complete
//!            business rule task (called decision): see `decision_eval`
//!            process / sub-process: ELEMENT_ACTIVATED → activate its start event
//! complete:  ELEMENT_COMPLETING → output mappings → ELEMENT_COMPLETED
//!            → take outgoing flows, or tell the flow scope a child ended
//! terminate: cancel job, resolve incident, ELEMENT_TERMINATING, terminate
//!            children, ELEMENT_TERMINATED once none are left
//! ```
//!
//! A failing expression raises an incident and leaves the element in
//! ACTIVATING or COMPLETING; resolving the incident runs the rest of the step.

use crate::engine::{pi_value, rejection, Ctx, Engine, ResponseValue, Step};
use crate::expression::Expression;
use crate::model::{Behavior, Mapping};
use crate::record::*;
use crate::scope_variables::set_path;
use crate::state::{DeployedProcess, ElementInstance, ElementState};
use serde_json::Value as Json;
use std::sync::Arc;

impl Engine {
    pub(crate) fn run_step(&mut self, ctx: &mut Ctx, step: Step) {
        match step {
            Step::Activate {
                process_definition_key,
                element,
                flow_scope_key,
                process_instance_key,
                key,
            } => self.activate(
                ctx,
                process_definition_key,
                element,
                flow_scope_key,
                process_instance_key,
                key,
            ),
            Step::ContinueActivation(key) => self.continue_activation(ctx, key),
            Step::Complete(key) => self.complete(ctx, key, None),
            Step::ContinueCompletion(key) => self.continue_completion(ctx, key, None),
            Step::Terminate(key) => self.terminate(ctx, key),
        }
    }

    fn activate(
        &mut self,
        ctx: &mut Ctx,
        def_key: i64,
        element: u32,
        scope_key: i64,
        pi_key: i64,
        key: i64,
    ) {
        let Some(def) = self.state.process(def_key).cloned() else {
            return;
        };
        let el = def.model.element(element);
        if scope_key != NO_KEY {
            // An interrupting event sub-process runs in a scope it interrupted.
            let esp = el.element_type == BpmnElementType::EventSubProcess;
            match self.state.instances.get(&scope_key) {
                Some(s) if s.state == ElementState::Activated && (!s.interrupted || esp) => {}
                _ => return, // the scope ended or is terminating: the token is dropped
            }
        }
        let may_be_triggered =
            el.event.is_some() || el.element_type == BpmnElementType::EventSubProcess;
        let key = if key == NO_KEY {
            self.state.keys.next_key()
        } else {
            key
        };
        let pi_key = if scope_key == NO_KEY { key } else { pi_key };
        let value = pi_value(&def, element, pi_key, scope_key);
        self.emit(
            ctx,
            key,
            Intent::ElementActivating,
            RecordValue::ProcessInstance(value),
        );
        // With start listeners the trigger is consumed once they ran.
        let has_start_listeners = el.listeners.as_ref().is_some_and(|l| !l.start.is_empty());
        let triggered = may_be_triggered
            && scope_key != NO_KEY
            && !has_start_listeners
            && self.consume_trigger(ctx, &def, key, scope_key, pi_key, element);
        self.continue_activation_with(ctx, key, triggered);
    }

    pub(crate) fn continue_activation(&mut self, ctx: &mut Ctx, key: i64) {
        self.continue_activation_with(ctx, key, false);
    }

    fn continue_activation_with(&mut self, ctx: &mut Ctx, key: i64, triggered: bool) {
        let Some((def, element, scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let el = def.model.element(element);
        if let Some(body) = el.flow_scope.map(|b| def.model.element(b)) {
            if let Behavior::MultiInstance(mi) = &body.behavior {
                if let Err(message) = self.set_loop_variables(ctx, key, scope_key, pi_key, mi) {
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::ExtractValueError,
                        message,
                        NO_KEY,
                    );
                }
            }
        }
        if !el.inputs.is_empty() {
            match self.evaluate_mappings(&el.inputs, scope_key) {
                Ok(values) => {
                    for (name, value) in values {
                        self.set_local(ctx, key, pi_key, &name, &value.to_string());
                    }
                }
                Err(message) => {
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::IoMappingError,
                        message,
                        NO_KEY,
                    );
                }
            }
        }
        if self.start_listener_pending(ctx, key) {
            return;
        }
        self.finish_activation(ctx, key, triggered);
    }

    /// Activation after the last start listener: consumes a deferred
    /// trigger, then runs the element's behaviour.
    pub(crate) fn resume_activation(&mut self, ctx: &mut Ctx, key: i64) {
        if self.start_listener_pending(ctx, key) {
            return;
        }
        let Some((def, element, scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let el = def.model.element(element);
        let may_be_triggered =
            el.event.is_some() || el.element_type == BpmnElementType::EventSubProcess;
        let triggered = may_be_triggered
            && scope_key != NO_KEY
            && self.consume_trigger(ctx, &def, key, scope_key, pi_key, element);
        self.finish_activation(ctx, key, triggered);
    }

    /// The element's own behaviour: subscriptions, then per element type.
    fn finish_activation(&mut self, ctx: &mut Ctx, key: i64, triggered: bool) {
        let Some((def, element, scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let el = def.model.element(element);
        let waits_for_own_event = matches!(el.behavior, Behavior::Catch) && triggered;
        if !el.subscriptions.is_empty() && !waits_for_own_event && !self.has_subscriptions(key) {
            if let Err(message) = self.open_subscriptions(ctx, key) {
                return self.raise_incident(
                    ctx,
                    key,
                    ErrorType::ExtractValueError,
                    message,
                    NO_KEY,
                );
            }
        }
        match &el.behavior {
            Behavior::PassThrough | Behavior::Terminate => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                self.complete(ctx, key, None);
            }
            Behavior::Container => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                let start = if element == 0 {
                    self.start_event_of(&def.model, key, element)
                } else {
                    el.start_event
                };
                if let Some(start) = start {
                    ctx.steps.push_back(Step::Activate {
                        process_definition_key: def.metadata.process_definition_key,
                        element: start,
                        flow_scope_key: key,
                        process_instance_key: pi_key,
                        key: NO_KEY,
                    });
                }
            }
            Behavior::Catch => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                if triggered {
                    self.complete(ctx, key, None);
                }
            }
            Behavior::EventGateway => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
            }
            Behavior::ThrowError(code) => {
                if !self.throw_error(ctx, key, code, "") {
                    let message = format!(
                        "Expected to throw an error event with the code '{code}', but it was not caught. No error events are available in the scope."
                    );
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::UnhandledErrorEvent,
                        message,
                        NO_KEY,
                    );
                }
                self.element_event(ctx, &def, key, Intent::ElementActivated);
            }
            Behavior::ThrowEscalation(code) => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                if self.throw_escalation(ctx, key, code) != Some(true) {
                    self.complete(ctx, key, None);
                }
            }
            Behavior::ThrowSignal(name) => {
                let name = {
                    let vars = self.visible(key);
                    crate::events::evaluate_text(name, &vars, &self.clock, "signal name")
                };
                match name {
                    Ok(signal_name) => {
                        self.element_event(ctx, &def, key, Intent::ElementActivated);
                        let signal = SignalRecord {
                            signal_name,
                            variables: String::from("{}"),
                        };
                        self.broadcast(ctx, NO_KEY, &signal);
                        self.complete(ctx, key, None);
                    }
                    Err(message) => {
                        self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
                    }
                }
            }
            Behavior::CallActivity(call) => {
                if let Err(message) = self.call(ctx, key, pi_key, call) {
                    self.raise_incident(ctx, key, ErrorType::CalledElementError, message, NO_KEY)
                }
            }
            Behavior::ThrowLink(target) => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                // The catch event is active before the throw event ends, so
                // the scope does not complete in between.
                ctx.steps.push_back(crate::events::activate_step(
                    &def, *target, scope_key, pi_key,
                ));
                ctx.steps.push_back(Step::Complete(key));
            }
            Behavior::ThrowCompensation(activity) => {
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                if !self.throw_compensation(ctx, &def, scope_key, pi_key, activity.as_deref()) {
                    self.complete(ctx, key, None);
                }
            }
            Behavior::MultiInstance(mi) => {
                if let Err(message) = self.activate_body(ctx, &def, key, pi_key, mi) {
                    self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
                }
            }
            Behavior::Job(job) => {
                let job = job.clone();
                let record = match self.job_for(&def, element, key, pi_key, &job) {
                    Ok(r) => r,
                    Err(message) => {
                        return self.raise_incident(
                            ctx,
                            key,
                            ErrorType::ExtractValueError,
                            message,
                            NO_KEY,
                        );
                    }
                };
                let job_key = self.state.keys.next_key();
                self.emit(
                    ctx,
                    job_key,
                    Intent::Created,
                    RecordValue::Job(Box::new(record)),
                );
                self.element_event(ctx, &def, key, Intent::ElementActivated);
                self.push_job(ctx, job_key);
            }
            Behavior::UserTask(ut) => {
                let ut = ut.clone();
                if let Err(message) = self.create_user_task(ctx, &def, element, key, pi_key, &ut) {
                    self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
                }
            }
            Behavior::Script(script) => {
                let result = {
                    let vars = self.visible(key);
                    script.expression.evaluate(&vars, &self.clock)
                };
                match result {
                    Ok(value) => {
                        self.element_event(ctx, &def, key, Intent::ElementActivated);
                        let text = value.to_string();
                        if el.outputs.is_empty() {
                            self.merge(ctx, key, pi_key, &script.result_variable, &text);
                        } else {
                            self.set_local(ctx, key, pi_key, &script.result_variable, &text);
                        }
                        self.complete(ctx, key, None);
                    }
                    Err(message) => {
                        self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
                    }
                }
            }
            Behavior::AdHoc(ad_hoc) => {
                let ad_hoc = ad_hoc.clone();
                self.activate_ad_hoc(ctx, &def, key, pi_key, &ad_hoc)
            }
            Behavior::PublishMessage(publish) => {
                let publish = publish.clone();
                self.activate_publish(ctx, &def, key, &publish)
            }
            Behavior::Decision(called) => {
                let local = !el.outputs.is_empty();
                self.activate_business_rule_task(ctx, &def, key, pi_key, called, local)
            }
            Behavior::Exclusive | Behavior::Inclusive | Behavior::Parallel => {
                match self.choose_flows(&def, element, key) {
                    Ok(flows) => {
                        self.element_event(ctx, &def, key, Intent::ElementActivated);
                        self.complete(ctx, key, Some(flows));
                    }
                    Err(message) => {
                        self.raise_incident(ctx, key, ErrorType::ConditionError, message, NO_KEY)
                    }
                }
            }
        }
    }

    fn choose_flows(
        &self,
        def: &DeployedProcess,
        element: u32,
        key: i64,
    ) -> Result<Vec<u32>, String> {
        let el = def.model.element(element);
        if matches!(el.behavior, Behavior::Parallel) {
            return Ok(el.outgoing.clone());
        }
        let exclusive = matches!(el.behavior, Behavior::Exclusive);
        if el.outgoing.len() == 1 && def.model.flow(el.outgoing[0]).condition.is_none() {
            return Ok(el.outgoing.clone());
        }
        let vars = self.visible(key);
        let mut chosen = Vec::new();
        for &f in &el.outgoing {
            if Some(f) == el.default_flow {
                continue;
            }
            let flow = def.model.flow(f);
            let Some(condition) = &flow.condition else {
                continue;
            };
            match condition.evaluate(&vars, &self.clock) {
                Ok(Json::Bool(true)) => {
                    chosen.push(f);
                    if exclusive {
                        break;
                    }
                }
                Ok(Json::Bool(false)) | Ok(Json::Null) => {}
                Ok(other) => {
                    return Err(format!(
                        "Expected result of the condition '{}' of sequence flow '{}' to be a boolean, but was '{other}'",
                        condition.source(),
                        flow.id
                    ))
                }
                Err(e) => return Err(format!("sequence flow '{}': {e}", flow.id)),
            }
        }
        if chosen.is_empty() {
            match el.default_flow {
                Some(d) => chosen.push(d),
                None if el.outgoing.is_empty() => {}
                None => {
                    return Err(format!(
                        "Expected at least one condition to evaluate to true, or to have a default flow (gateway '{}')",
                        el.id
                    ))
                }
            }
        }
        Ok(chosen)
    }

    /// Completes element instance `key` taking `flows` (a gateway's choice).
    pub(crate) fn complete_with_flows(&mut self, ctx: &mut Ctx, key: i64, flows: Vec<u32>) {
        self.complete(ctx, key, Some(flows));
    }

    /// True when element instance `key` holds a timer, message or signal subscription.
    fn has_subscriptions(&self, key: i64) -> bool {
        let any = |index: &std::collections::BTreeSet<(i64, i64)>| {
            index
                .range((key, i64::MIN)..=(key, i64::MAX))
                .next()
                .is_some()
        };
        any(&self.state.timers_by_owner)
            || any(&self.state.pms_by_owner)
            || any(&self.state.signal_by_owner)
    }

    pub(crate) fn complete(&mut self, ctx: &mut Ctx, key: i64, flows: Option<Vec<u32>>) {
        let Some((def, element, _, _)) = self.instance_parts(key) else {
            return;
        };
        match self.state.instances.get(&key).map(|i| i.state) {
            Some(ElementState::Activated) => {}
            _ => return,
        }
        if !def.model.element(element).subscriptions.is_empty() {
            self.close_subscriptions(ctx, key);
        }
        self.element_event(ctx, &def, key, Intent::ElementCompleting);
        self.continue_completion(ctx, key, flows);
    }

    fn continue_completion(&mut self, ctx: &mut Ctx, key: i64, flows: Option<Vec<u32>>) {
        let Some((def, element, scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let el = def.model.element(element);
        if !el.outputs.is_empty() {
            match self.evaluate_mappings(&el.outputs, key) {
                Ok(values) => {
                    for (name, value) in values {
                        self.merge(ctx, scope_key, pi_key, &name, &value.to_string());
                    }
                }
                Err(message) => {
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::IoMappingError,
                        message,
                        NO_KEY,
                    );
                }
            }
        }
        if self.end_listener_pending(ctx, key) {
            return;
        }
        self.finish_completion(ctx, key, flows);
    }

    /// Completion after the last end listener.
    pub(crate) fn resume_completion(&mut self, ctx: &mut Ctx, key: i64) {
        if self.end_listener_pending(ctx, key) {
            return;
        }
        self.finish_completion(ctx, key, None);
    }

    /// `ELEMENT_COMPLETED` and leaving the element.
    fn finish_completion(&mut self, ctx: &mut Ctx, key: i64, flows: Option<Vec<u32>>) {
        let Some((def, element, scope_key, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let el = def.model.element(element);
        let body = el
            .flow_scope
            .map(|b| def.model.element(b))
            .and_then(|b| match &b.behavior {
                Behavior::MultiInstance(mi) => Some(mi.clone()),
                _ => None,
            });
        let ends_path = flows.as_ref().map_or(el.outgoing.is_empty(), Vec::is_empty);
        let ad_hoc = ends_path
            .then(|| self.ad_hoc_scope_of(&def, scope_key))
            .flatten();
        let mut ad_hoc_satisfied = None;
        if let Some(a) = &ad_hoc {
            match self.ad_hoc_condition(a, scope_key) {
                Ok(s) => ad_hoc_satisfied = s,
                Err(message) => {
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::ExtractValueError,
                        message,
                        NO_KEY,
                    );
                }
            }
        }
        let mut fulfilled = false;
        if let Some(mi) = &body {
            match self.complete_inner(ctx, key, scope_key, pi_key, mi) {
                Ok(f) => fulfilled = f,
                Err(message) => {
                    return self.raise_incident(
                        ctx,
                        key,
                        ErrorType::ExtractValueError,
                        message,
                        NO_KEY,
                    );
                }
            }
        }
        if let Behavior::MultiInstance(mi) = &el.behavior {
            self.propagate_output_collection(ctx, key, scope_key, pi_key, mi);
        }
        let parent = self
            .state
            .instances
            .get(&key)
            .map_or(NO_KEY, |i| i.parent_element_instance_key);
        if scope_key == NO_KEY && parent != NO_KEY {
            self.return_to_caller(ctx, key);
        }
        if scope_key == NO_KEY {
            if let Some(waiting) = self.state.awaiting.get(&key).cloned() {
                let variables = self.variables_json(key, &waiting.fetch_variables);
                ctx.out.responses.push((
                    waiting.request_id,
                    Ok(ResponseValue::ProcessInstanceResult {
                        process_definition_key: def.metadata.process_definition_key,
                        bpmn_process_id: def.metadata.bpmn_process_id.clone(),
                        version: def.metadata.version,
                        process_instance_key: key,
                        variables,
                        tenant: ctx.tenant.clone(),
                    }),
                ));
            }
        }
        self.element_event(ctx, &def, key, Intent::ElementCompleted);
        if matches!(el.behavior, Behavior::Container | Behavior::AdHoc(_)) {
            let to = (scope_key != NO_KEY).then_some(scope_key);
            self.hand_over_compensations(ctx, key, to);
        }
        if scope_key != NO_KEY && el.compensation_handler.is_some() {
            self.subscribe_compensation(ctx, &def, element, scope_key, pi_key);
        }
        if el.for_compensation {
            self.compensation_handler_done(ctx, &def, scope_key);
        }
        if scope_key == NO_KEY {
            if parent != NO_KEY {
                self.child_ended(ctx, parent);
            }
            return;
        }
        if let Some(mi) = &body {
            return self.after_inner(ctx, &def, scope_key, pi_key, mi, fulfilled);
        }
        if matches!(el.behavior, Behavior::Terminate) {
            let others = self.state.children_of(scope_key);
            if others.is_empty() {
                self.child_ended(ctx, scope_key);
            }
            for child in others {
                ctx.steps.push_back(Step::Terminate(child));
            }
            return;
        }
        if let Some(a) = &ad_hoc {
            return self.ad_hoc_path_ended(ctx, scope_key, a, ad_hoc_satisfied);
        }
        let flows = flows.unwrap_or_else(|| el.outgoing.clone());
        if flows.is_empty() {
            self.child_ended(ctx, scope_key);
            return;
        }
        for f in flows {
            self.take_flow(ctx, &def, f, scope_key, pi_key);
        }
    }

    fn take_flow(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        f: u32,
        scope_key: i64,
        pi_key: i64,
    ) {
        let flow = def.model.flow(f);
        let value = ProcessInstanceRecord {
            bpmn_process_id: def.metadata.bpmn_process_id.clone(),
            version: def.metadata.version,
            process_definition_key: def.metadata.process_definition_key,
            process_instance_key: pi_key,
            element_id: flow.id.clone(),
            flow_scope_key: scope_key,
            bpmn_element_type: BpmnElementType::SequenceFlow,
            bpmn_event_type: BpmnEventType::None,
            parent_process_instance_key: NO_KEY,
            parent_element_instance_key: NO_KEY,
        };
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::SequenceFlowTaken,
            RecordValue::ProcessInstance(value),
        );
        let target = def.model.element(flow.target);
        if target.is_join() && !self.join_ready(ctx, def, flow.target, scope_key) {
            return;
        }
        ctx.steps.push_back(Step::Activate {
            process_definition_key: def.metadata.process_definition_key,
            element: flow.target,
            flow_scope_key: scope_key,
            process_instance_key: pi_key,
            key: NO_KEY,
        });
    }

    fn join_ready(&self, ctx: &Ctx, def: &DeployedProcess, gateway: u32, scope_key: i64) -> bool {
        let Some(scope) = self.state.instances.get(&scope_key) else {
            return false;
        };
        let el = def.model.element(gateway);
        let taken = |f: u32| scope.joins.iter().any(|&(jf, n)| jf == f && n > 0);
        if el.incoming.iter().all(|&f| taken(f)) {
            return true;
        }
        if matches!(el.behavior, Behavior::Parallel) {
            return false;
        }
        // Inclusive join: wait only while a token that can still arrive exists.
        let can_reach = |e: u32| el.reachable_from.binary_search(&e).is_ok();
        let active_reaches = self
            .state
            .children_of(scope_key)
            .iter()
            .filter_map(|c| self.state.instances.get(c))
            .any(|c| can_reach(c.element));
        let pending_reaches = ctx.steps.iter().any(|s| match s {
            Step::Activate {
                element,
                flow_scope_key,
                ..
            } => *flow_scope_key == scope_key && (can_reach(*element) || *element == gateway),
            _ => false,
        });
        !active_reaches && !pending_reaches
    }

    /// A child of `scope_key` completed without outgoing flows or terminated.
    pub(crate) fn child_ended(&mut self, ctx: &mut Ctx, scope_key: i64) {
        let Some(scope) = self.state.instances.get(&scope_key) else {
            return;
        };
        if scope.active_children > 0 {
            return;
        }
        match scope.state {
            ElementState::Terminating => {
                let parent = scope.flow_scope_key;
                let Some((def, _, _, _)) = self.instance_parts(scope_key) else {
                    return;
                };
                self.terminated(ctx, &def, scope_key, parent);
            }
            ElementState::Activated => {
                let flows = scope.active_flows;
                if self.activate_waiting_event_subprocess(ctx, scope_key) {
                    return;
                }
                if flows == 0 {
                    ctx.steps.push_back(Step::Complete(scope_key));
                }
            }
            _ => {}
        }
    }

    /// Closes what element instance `key` holds open before it terminates:
    /// its subscriptions (when it has any), an open task listener job, its
    /// job or user task, and its incident. Returns whether its user task
    /// waits for canceling listeners (only `CANCELING` was written).
    pub(crate) fn close_held_work(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        inst: &ElementInstance,
        has_subscriptions: bool,
    ) -> bool {
        if has_subscriptions {
            self.close_subscriptions(ctx, key);
        }
        self.cancel_task_listener_job(ctx, key);
        let mut waits_for_listeners = false;
        if inst.job_key != NO_KEY {
            waits_for_listeners = self.cancel_user_task(ctx, inst.job_key);
            if let Some(job) = self.state.jobs.get(&inst.job_key) {
                let record = job.record.clone();
                self.emit(
                    ctx,
                    inst.job_key,
                    Intent::Canceled,
                    RecordValue::Job(Box::new(record)),
                );
            }
        }
        if inst.incident_key != NO_KEY {
            if let Some(incident) = self.state.incidents.get(&inst.incident_key).cloned() {
                self.emit(
                    ctx,
                    inst.incident_key,
                    Intent::Resolved,
                    RecordValue::Incident(incident),
                );
            }
        }
        waits_for_listeners
    }

    pub(crate) fn terminate(&mut self, ctx: &mut Ctx, key: i64) {
        let Some((def, _, scope_key, _)) = self.instance_parts(key) else {
            return;
        };
        let inst = self
            .state
            .instances
            .get(&key)
            .expect("instance exists")
            .clone();
        if inst.state == ElementState::Terminating {
            return;
        }
        let has_subscriptions = !def.model.element(inst.element).subscriptions.is_empty();
        let waits_for_listeners = self.close_held_work(ctx, key, &inst, has_subscriptions);
        self.element_event(ctx, &def, key, Intent::ElementTerminating);
        if waits_for_listeners {
            return self.next_task_listener(ctx, inst.job_key);
        }
        let children = self.state.children_of(key);
        if children.is_empty() {
            self.terminated(ctx, &def, key, scope_key);
        } else {
            for child in children {
                ctx.steps.push_back(Step::Terminate(child));
            }
        }
    }

    pub(crate) fn terminated(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        key: i64,
        scope_key: i64,
    ) {
        if scope_key == NO_KEY {
            if let Some(waiting) = self.state.awaiting.get(&key).cloned() {
                ctx.out.responses.push((
                    waiting.request_id,
                    Err(rejection(
                        RejectionType::InvalidState,
                        format!("process instance '{key}' was terminated before it completed"),
                    )),
                ));
            }
        }
        let parent = self
            .state
            .instances
            .get(&key)
            .map_or(NO_KEY, |i| i.parent_element_instance_key);
        self.element_event(ctx, def, key, Intent::ElementTerminated);
        self.hand_over_compensations(ctx, key, None);
        if scope_key != NO_KEY {
            self.after_interrupted(ctx, key, scope_key);
            self.child_ended(ctx, scope_key);
        } else if parent != NO_KEY {
            self.child_ended(ctx, parent);
        }
    }

    /// Writes a lifecycle event of element instance `key`.
    pub(crate) fn element_event(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        intent: Intent,
    ) {
        let inst = self
            .state
            .instances
            .get(&key)
            .expect("element instance exists");
        let mut value = pi_value(
            def,
            inst.element,
            inst.process_instance_key,
            inst.flow_scope_key,
        );
        let parent = inst.parent_element_instance_key;
        let process_ended = inst.flow_scope_key == NO_KEY
            && matches!(intent, Intent::ElementCompleted | Intent::ElementTerminated);
        let process_definition_key = inst.process_definition_key;
        if parent != NO_KEY {
            value.parent_element_instance_key = parent;
            value.parent_process_instance_key = self
                .state
                .instances
                .get(&parent)
                .map_or(NO_KEY, |p| p.process_instance_key);
        }
        self.emit(ctx, key, intent, RecordValue::ProcessInstance(value));
        if process_ended {
            self.after_instance_ended(ctx, process_definition_key);
        }
    }

    pub(crate) fn instance_parts(&self, key: i64) -> Option<(Arc<DeployedProcess>, u32, i64, i64)> {
        let inst = self.state.instances.get(&key)?;
        let def = self.state.process(inst.process_definition_key)?.clone();
        Some((
            def,
            inst.element,
            inst.flow_scope_key,
            inst.process_instance_key,
        ))
    }

    /// Raises an incident on element instance `key` (and job `job_key`).
    pub(crate) fn raise_incident(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        error_type: ErrorType,
        error_message: String,
        job_key: i64,
    ) {
        let Some((def, element, _, pi_key)) = self.instance_parts(key) else {
            return;
        };
        let incident = IncidentRecord {
            error_type,
            error_message,
            bpmn_process_id: def.metadata.bpmn_process_id.clone(),
            process_definition_key: def.metadata.process_definition_key,
            process_instance_key: pi_key,
            element_id: def.model.element(element).id.clone(),
            element_instance_key: key,
            job_key,
            variable_scope_key: key,
        };
        let incident_key = self.state.keys.next_key();
        self.emit(
            ctx,
            incident_key,
            Intent::Created,
            RecordValue::Incident(incident),
        );
    }

    fn evaluate_mappings(
        &self,
        mappings: &[Mapping],
        scope: i64,
    ) -> Result<Vec<(String, Json)>, String> {
        let mut results = serde_json::Map::new();
        let mut texts: Vec<(String, String)> = Vec::new();
        for m in mappings {
            let value = {
                let mut vars: Vec<(&str, &str)> = texts
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                vars.extend(self.visible(scope));
                match &m.source {
                    Expression::Static(s) => Ok(Json::String(s.to_string())),
                    e => e.evaluate(&vars, &self.clock),
                }
            }
            .map_err(|e| format!("failed to evaluate mapping to '{}': {e}", m.target))?;
            set_path(&mut results, &m.target, value);
            let root = m.target.split('.').next().unwrap_or(&m.target).to_string();
            let text = results
                .get(&root)
                .map(|v| v.to_string())
                .unwrap_or_default();
            texts.retain(|(n, _)| *n != root);
            texts.insert(0, (root, text));
        }
        Ok(results.into_iter().collect())
    }
}
