//! Call activities and multi-instance activities.
//!
//! ```text
//! call activity   activated: evaluate the process id, copy the visible variables
//!                 into a new instance of the version its bindingType names: latest,
//!                 deployment or versionTag (whose process record
//!                 names the parent), wait; the child's root counts as a child of
//!                 the call activity, so terminating one terminates the other and
//!                 the child's completion completes it (child variables propagate)
//! multi-instance  the body (MULTI_INSTANCE_BODY, same element id) evaluates the
//!                 input collection, sets the output collection to nulls, and
//!                 activates the inner activity once per item (all at once, or one
//!                 after the other); each inner instance gets `loopCounter` and the
//!                 input element, and on completion writes its output element and
//!                 checks the completion condition
//! ```

use crate::engine::{Ctx, Engine, Step};
use crate::events::evaluate_text;
use crate::model::{Behavior, CallDefinition, DecisionBinding, MultiInstanceDefinition};
use crate::record::*;
use crate::state::DeployedProcess;
use serde_json::Value as Json;
use std::sync::Arc;

/// Most items a multi-instance input collection may hold.
pub const MAX_MULTI_INSTANCE_ITEMS: usize = 100_000;

impl Engine {
    /// The version of `process_id` that call activity `key` calls, by its
    /// `bindingType`; `Err` is the incident message (Zeebe's wording).
    fn called_process(
        &self,
        key: i64,
        process_id: &str,
        binding: &DecisionBinding,
    ) -> Result<Arc<DeployedProcess>, String> {
        let tenant = self.state.instance_tenant(key).unwrap_or_default();
        let found = match binding {
            DecisionBinding::Latest => self.state.latest_process(&tenant, process_id).ok_or_else(|| {
                format!("Expected process with BPMN process id '{process_id}' to be deployed, but not found.")
            }),
            DecisionBinding::Deployment => {
                let caller = self.instance_parts(key).map(|p| p.0.metadata.process_definition_key);
                let deployment = caller.and_then(|k| self.state.decisions.process_deployment.get(&k));
                deployment
                    .and_then(|&d| self.state.process_of_deployment(&tenant, d, process_id))
                    .ok_or_else(|| {
                        format!(
                            "Expected to call process with BPMN process id '{process_id}' with binding type 'deployment', but no such process found in the deployment with key {} which contained the current process. To resolve this incident, migrate the process instance to a process definition that is deployed together with the intended process to call.",
                            deployment.copied().unwrap_or(NO_KEY)
                        )
                    })
            }
            DecisionBinding::VersionTag(tag) => {
                self.state.process_with_tag(&tenant, process_id, tag).ok_or_else(|| {
                    format!(
                        "Expected to call process with BPMN process id '{process_id}' and version tag '{tag}', but no such process found. To resolve the incident, deploy a process with the given process id and version tag."
                    )
                })
            }
        };
        found.cloned()
    }

    /// Starts the child instance of call activity `key`; `Err` is the
    /// incident message.
    pub(crate) fn call(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        pi_key: i64,
        call: &CallDefinition,
    ) -> Result<(), String> {
        let process_id = {
            let vars = self.visible(key);
            evaluate_text(&call.process_id, &vars, &self.clock, "called process id")?
        };
        let child = self.called_process(key, &process_id, &call.binding)?;
        if child.model.element(0).start_event.is_none() {
            return Err(format!(
                "Expected process '{process_id}' to have a none start event to be called, but it has none"
            ));
        }
        // Without propagation only the call activity's own variables (its
        // input mappings) go to the child.
        let variables = if call.propagate_all_parent_variables {
            self.variables_json(key, &[])
        } else {
            let locals: serde_json::Map<String, Json> = self
                .state
                .variables
                .local(key)
                .map(|v| {
                    let value = serde_json::from_str(v.value).unwrap_or(Json::Null);
                    (v.name.to_string(), value)
                })
                .collect();
            Json::Object(locals).to_string()
        };
        let Some(def) = self.instance_parts(key).map(|p| p.0) else {
            return Ok(());
        };
        self.element_event(ctx, &def, key, Intent::ElementActivated);
        let child_pi = self.state.keys.next_key();
        let vars = crate::scope_variables::parse_document(&variables)?;
        for (name, value) in vars {
            let var_key = self.state.keys.next_key();
            self.emit(
                ctx,
                var_key,
                Intent::Created,
                RecordValue::Variable(VariableRecord {
                    name,
                    value: value.get().to_string(),
                    scope_key: child_pi,
                    process_instance_key: child_pi,
                    process_definition_key: child.metadata.process_definition_key,
                    bpmn_process_id: child.metadata.bpmn_process_id.clone(),
                }),
            );
        }
        let mut value = crate::engine::pi_value(&child, 0, child_pi, NO_KEY);
        value.parent_process_instance_key = pi_key;
        value.parent_element_instance_key = key;
        self.emit(
            ctx,
            child_pi,
            Intent::ElementActivating,
            RecordValue::ProcessInstance(value),
        );
        ctx.steps.push_back(Step::ContinueActivation(child_pi));
        Ok(())
    }

    /// Before the root of a called instance completes: its variables go to
    /// the call activity.
    pub(crate) fn return_to_caller(&mut self, ctx: &mut Ctx, child_pi: i64) {
        let Some(parent) = self
            .state
            .instances
            .get(&child_pi)
            .map(|i| i.parent_element_instance_key)
            .filter(|&p| p != NO_KEY)
        else {
            return;
        };
        let Some((def, element, _, parent_pi)) = self.instance_parts(parent) else {
            return;
        };
        let el = def.model.element(element);
        let Behavior::CallActivity(call) = &el.behavior else {
            return;
        };
        let local = !el.outputs.is_empty();
        if !local && !call.propagate_all_child_variables {
            return;
        }
        let vars: Vec<(String, String)> = self
            .state
            .variables
            .local(child_pi)
            .map(|v| (v.name.to_string(), v.value.to_string()))
            .collect();
        for (name, value) in vars {
            if local {
                self.set_local(ctx, parent, parent_pi, &name, &value);
            } else {
                self.merge(ctx, parent, parent_pi, &name, &value);
            }
        }
    }

    /// The input collection of multi-instance body `body`.
    fn input_collection(
        &self,
        mi: &MultiInstanceDefinition,
        body: i64,
    ) -> Result<Vec<Json>, String> {
        let vars = self.visible(body);
        match mi.input_collection.evaluate(&vars, &self.clock)? {
            Json::Array(items) if items.len() <= MAX_MULTI_INSTANCE_ITEMS => Ok(items),
            Json::Array(items) => Err(format!(
                "the input collection has {} items, more than {MAX_MULTI_INSTANCE_ITEMS}",
                items.len()
            )),
            other => Err(format!(
                "Expected result of the expression '{}' to be 'ARRAY', but was '{other}'",
                mi.input_collection.source()
            )),
        }
    }

    /// Activation of multi-instance body `key`; `Err` is the incident message.
    pub(crate) fn activate_body(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        key: i64,
        pi_key: i64,
        mi: &MultiInstanceDefinition,
    ) -> Result<(), String> {
        let items = self.input_collection(mi, key)?;
        self.element_event(ctx, def, key, Intent::ElementActivated);
        if let Some(output) = &mi.output_collection {
            let nulls = Json::Array(vec![Json::Null; items.len()]).to_string();
            self.set_local(ctx, key, pi_key, output, &nulls);
        }
        if items.is_empty() {
            ctx.steps.push_back(Step::Complete(key));
            return Ok(());
        }
        let count = if mi.sequential { 1 } else { items.len() };
        for _ in 0..count {
            ctx.steps
                .push_back(crate::events::activate_step(def, mi.inner, key, pi_key));
        }
        Ok(())
    }

    /// On activation of an inner instance: `loopCounter` and the input element.
    pub(crate) fn set_loop_variables(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        body: i64,
        pi_key: i64,
        mi: &MultiInstanceDefinition,
    ) -> Result<(), String> {
        let counter = self.state.instances.get(&key).map_or(0, |i| i.loop_counter);
        self.set_local(ctx, key, pi_key, "loopCounter", &counter.to_string());
        if let Some(name) = &mi.input_element {
            let items = self.input_collection(mi, body)?;
            let item = items
                .get(counter.saturating_sub(1) as usize)
                .cloned()
                .unwrap_or(Json::Null);
            self.set_local(ctx, key, pi_key, name, &item.to_string());
        }
        // An output element that is a variable starts as a local null, so
        // that what the inner instance writes to it stays there (Zeebe).
        if let Some(name) = mi.output_element.as_ref().and_then(|e| e.variable_name()) {
            if Some(name) != mi.input_element.as_deref() && name != "loopCounter" {
                let name = name.to_string();
                self.set_local(ctx, key, pi_key, &name, "null");
            }
        }
        Ok(())
    }

    /// Before inner instance `key` completes: writes its output element.
    /// Returns whether the completion condition is fulfilled.
    pub(crate) fn complete_inner(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        body: i64,
        pi_key: i64,
        mi: &MultiInstanceDefinition,
    ) -> Result<bool, String> {
        let counter = self.state.instances.get(&key).map_or(0, |i| i.loop_counter);
        if let (Some(collection), Some(element)) = (&mi.output_collection, &mi.output_element) {
            let value = {
                let vars = self.visible(key);
                match element {
                    crate::expression::Expression::Static(s) => {
                        // A static output element names a variable.
                        vars.iter()
                            .find(|(n, _)| *n == &**s)
                            .map(|(_, v)| serde_json::from_str(v).unwrap_or(Json::Null))
                            .unwrap_or(Json::Null)
                    }
                    e => e.evaluate(&vars, &self.clock)?,
                }
            };
            let mut list: Vec<Json> = self
                .state
                .variables
                .get(body, collection)
                .and_then(|v| serde_json::from_str(v.value).ok())
                .unwrap_or_default();
            let index = counter.saturating_sub(1) as usize;
            if index >= list.len() {
                list.resize(index + 1, Json::Null);
            }
            list[index] = value;
            self.set_local(
                ctx,
                body,
                pi_key,
                collection,
                &Json::Array(list).to_string(),
            );
        }
        match &mi.completion_condition {
            None => Ok(false),
            Some(c) => {
                let vars = self.visible(key);
                match c.evaluate(&vars, &self.clock)? {
                    Json::Bool(b) => Ok(b),
                    Json::Null => Ok(false),
                    other => Err(format!(
                        "Expected result of the completion condition '{}' to be a boolean, but was '{other}'",
                        c.source()
                    )),
                }
            }
        }
    }

    /// After inner instance completed in `body`: the next item, the end of
    /// the body, or (condition fulfilled) termination of the others.
    pub(crate) fn after_inner(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        body: i64,
        pi_key: i64,
        mi: &MultiInstanceDefinition,
        fulfilled: bool,
    ) {
        if fulfilled {
            let others = self.state.children_of(body);
            if others.is_empty() {
                self.child_ended(ctx, body);
            }
            for other in others {
                ctx.steps.push_back(Step::Terminate(other));
            }
            return;
        }
        if mi.sequential {
            let started = self
                .state
                .instances
                .get(&body)
                .map_or(0, |i| i.loop_counter);
            let total = self
                .input_collection(mi, body)
                .map_or(0, |items| items.len());
            if (started as usize) < total {
                ctx.steps
                    .push_back(crate::events::activate_step(def, mi.inner, body, pi_key));
                return;
            }
        }
        self.child_ended(ctx, body);
    }

    /// Before multi-instance body `key` completes: its output collection goes
    /// to the enclosing scopes.
    pub(crate) fn propagate_output_collection(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        scope_key: i64,
        pi_key: i64,
        mi: &MultiInstanceDefinition,
    ) {
        let Some(name) = &mi.output_collection else {
            return;
        };
        if let Some(v) = self
            .state
            .variables
            .get(key, name)
            .map(|v| v.value.to_string())
        {
            self.merge(ctx, scope_key, pi_key, name, &v);
        }
    }
}
