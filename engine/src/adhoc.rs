//! Ad-hoc sub-processes (`bpmn:adHocSubProcess` with `zeebe:adHoc`), as in
//! Zeebe 8.8.
//!
//! ```text
//! activate:  input mappings → activeElementsCollection (a list of element ids,
//!            each an ad-hoc activity: a flow node of the sub-process without
//!            incoming flows) → ELEMENT_ACTIVATED → activate each, in order
//! a path ends (an element without outgoing flows completes):
//!            completionCondition absent  → complete when nothing is active
//!            true, cancelRemainingInstances → terminate the others, then complete
//!            true, otherwise             → complete when nothing is active
//!            false                       → stay active (more can be activated)
//! a child terminates (scope still active) → complete when nothing is active
//! AD_HOC_SUB_PROCESS_INSTRUCTION ACTIVATE (key -1, the sub-process instance
//!            key in the value): activates the named activities with their
//!            variables → ACTIVATED
//! ```
//!
//! Nothing here is state of its own: the sub-process is an element instance
//! like any other, so snapshots and replay need nothing new.
//!
//! Difference from Zeebe 8.8: the variables of an activation are set as
//! local variables of the ad-hoc sub-process instance (visible to every
//! element in it), not of a separate inner instance per activation.

use crate::engine::{rejection, Ctx, Engine, ResponseValue, Step};
use crate::expression::Expression;
use crate::model::{Behavior, Process};
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::{DeployedProcess, ElementState};
use roxmltree::Node;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Most elements one activation command may name.
pub const MAX_ACTIVATE_ELEMENTS: usize = 1_000;

/// `zeebe:adHoc` with `bpmn:completionCondition` and `cancelRemainingInstances`.
#[derive(Clone, Debug)]
pub struct AdHocDefinition {
    /// `activeElementsCollection`: FEEL giving the ids to activate on entry.
    pub active_elements: Option<Expression>,
    /// `bpmn:completionCondition`: FEEL checked whenever a path ends.
    pub completion_condition: Option<Expression>,
    /// `cancelRemainingInstances` (BPMN's default: true).
    pub cancel_remaining: bool,
}

/// One element to activate and the variables it gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdHocActivateElement {
    /// Id of an ad-hoc activity of the sub-process.
    pub element_id: String,
    /// Variables as a JSON object document (may be empty).
    pub variables: String,
}

/// `AD_HOC_SUB_PROCESS_INSTRUCTION` value: activate elements of an active
/// ad-hoc sub-process (Zeebe's `AdHocSubProcessInstructionRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdHocSubProcessInstructionRecord {
    /// Element instance key of the ad-hoc sub-process.
    pub ad_hoc_sub_process_instance_key: i64,
    /// The elements to activate, in order.
    pub activate_elements: Vec<AdHocActivateElement>,
}

/// Reads `bpmn:adHocSubProcess` node `n`.
pub(crate) fn ad_hoc_definition(n: Node) -> Result<AdHocDefinition, String> {
    let extension = |name: &str| {
        n.children()
            .find(|c| c.tag_name().name() == "extensionElements")
            .and_then(|ext| ext.children().find(|c| c.tag_name().name() == name))
    };
    if extension("taskDefinition").is_some() {
        return Err("zeebe:taskDefinition on an ad-hoc sub-process (a job worker choosing the elements) is not supported; use zeebe:adHoc activeElementsCollection or activate elements through the API".into());
    }
    let ad_hoc = extension("adHoc");
    let active_elements = match ad_hoc
        .and_then(|a| a.attribute("activeElementsCollection"))
        .map(str::trim)
    {
        None | Some("") => None,
        Some(text) => Some(
            Expression::parse_feel(text)
                .map_err(|e| format!("zeebe:adHoc activeElementsCollection: {e}"))?,
        ),
    };
    let completion_condition = match n
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "completionCondition")
        .and_then(|c| c.text())
        .map(str::trim)
    {
        None | Some("") => None,
        Some(text) => Some(
            Expression::parse_feel(text).map_err(|e| format!("bpmn:completionCondition: {e}"))?,
        ),
    };
    let cancel_remaining = match n.attribute("cancelRemainingInstances") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(format!(
                "cancelRemainingInstances must be true or false, not '{other}'"
            ))
        }
    };
    Ok(AdHocDefinition {
        active_elements,
        completion_condition,
        cancel_remaining,
    })
}

/// Checks the content of ad-hoc sub-process `index` once its scope is read:
/// at least one activity, no start or end events (Zeebe's messages).
pub(crate) fn check_content(model_elements: &[crate::model::Element], index: u32) -> Vec<String> {
    let inside: Vec<&crate::model::Element> = model_elements
        .iter()
        .filter(|e| e.flow_scope == Some(index))
        .collect();
    let mut errors = Vec::new();
    if inside.is_empty() {
        errors.push("Must have at least one activity.".to_string());
    }
    if inside
        .iter()
        .any(|e| e.element_type == BpmnElementType::StartEvent)
    {
        errors.push("Must not contain a start event.".to_string());
    }
    if inside
        .iter()
        .any(|e| e.element_type == BpmnElementType::EndEvent)
    {
        errors.push("Must not contain an end event.".to_string());
    }
    errors
}

/// The ad-hoc activity `id` of ad-hoc sub-process `ad_hoc`: a flow node
/// directly in it without incoming flows (not a boundary event nor an event
/// sub-process).
fn ad_hoc_activity(model: &Process, ad_hoc: u32, id: &str) -> Option<u32> {
    let index = model.index_of(id)?;
    let el = model.element(index);
    let direct = el.flow_scope == Some(ad_hoc);
    let activity = el.incoming.is_empty()
        && el.attached_to.is_none()
        && el.element_type != BpmnElementType::EventSubProcess;
    (direct && activity).then_some(index)
}

/// Ids of `ids` that are not ad-hoc activities of `ad_hoc`, as Zeebe lists
/// them (`[a, b]`), or `None` when all are.
fn missing(model: &Process, ad_hoc: u32, ids: &[String]) -> Option<String> {
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| ad_hoc_activity(model, ad_hoc, id).is_none())
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| format!("[{}]", missing.join(", ")))
}

impl Engine {
    /// Activates ad-hoc sub-process instance `key`: the elements its
    /// activeElementsCollection names, or an incident.
    pub(crate) fn activate_ad_hoc(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        pi_key: i64,
        ad_hoc: &AdHocDefinition,
    ) {
        let Some(element) = self.state.instances.get(&key).map(|i| i.element) else {
            return;
        };
        let ids = match self.active_elements(&def.model, element, key, ad_hoc) {
            Ok(ids) => ids,
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
        self.element_event(ctx, def, key, Intent::ElementActivated);
        for id in ids {
            if let Some(target) = ad_hoc_activity(&def.model, element, &id) {
                ctx.steps
                    .push_back(crate::events::activate_step(def, target, key, pi_key));
            }
        }
    }

    fn active_elements(
        &self,
        model: &Process,
        element: u32,
        key: i64,
        ad_hoc: &AdHocDefinition,
    ) -> Result<Vec<String>, String> {
        let Some(expression) = &ad_hoc.active_elements else {
            return Ok(Vec::new());
        };
        let fail = |why: String| format!("Failed to activate ad-hoc elements. {why}");
        let value = {
            let vars = self.visible(key);
            expression.evaluate(&vars, &self.clock).map_err(fail)?
        };
        let ids: Vec<String> = match &value {
            Json::Array(items) => items
                .iter()
                .map(|i| match i {
                    Json::String(s) => Ok(s.clone()),
                    other => Err(fail(format!(
                        "Expected result of the expression '{}' to be 'ARRAY' of 'STRING', but was an item '{other}'",
                        expression.source()
                    ))),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(fail(format!(
                    "Expected result of the expression '{}' to be 'ARRAY', but was '{other}'",
                    expression.source()
                )))
            }
        };
        if let Some(list) = missing(model, element, &ids) {
            return Err(format!(
                "Expected to activate activities for ad-hoc sub-process with key '{key}', but the given elements {list} do not exist."
            ));
        }
        Ok(ids)
    }

    /// The definition of flow scope instance `scope_key` if it is an ad-hoc
    /// sub-process.
    pub(crate) fn ad_hoc_scope_of(
        &self,
        def: &DeployedProcess,
        scope_key: i64,
    ) -> Option<AdHocDefinition> {
        let scope = self.state.instances.get(&scope_key)?;
        match &def.model.element(scope.element).behavior {
            Behavior::AdHoc(a) => Some((**a).clone()),
            _ => None,
        }
    }

    /// Evaluates the completion condition of ad-hoc scope `scope_key` when a
    /// path in it ends (`None`: there is none).
    pub(crate) fn ad_hoc_condition(
        &self,
        ad_hoc: &AdHocDefinition,
        scope_key: i64,
    ) -> Result<Option<bool>, String> {
        let Some(condition) = &ad_hoc.completion_condition else {
            return Ok(None);
        };
        let vars = self.visible(scope_key);
        match condition.evaluate(&vars, &self.clock) {
            Ok(Json::Bool(b)) => Ok(Some(b)),
            Ok(other) => Err(format!(
                "Failed to evaluate completion condition. Expected result of the expression '{}' to be 'BOOLEAN', but was '{other}'",
                condition.source()
            )),
            Err(e) => Err(format!("Failed to evaluate completion condition. {e}")),
        }
    }

    /// A path of ad-hoc scope `scope_key` ended; `satisfied` is the result of
    /// the completion condition (`None`: there is none).
    pub(crate) fn ad_hoc_path_ended(
        &mut self,
        ctx: &mut Ctx,
        scope_key: i64,
        ad_hoc: &AdHocDefinition,
        satisfied: Option<bool>,
    ) {
        // An element activated in the same step batch (several activations
        // at once) has not started yet: its own path end decides.
        let pending = ctx.steps.iter().any(
            |s| matches!(s, Step::Activate { flow_scope_key, .. } if *flow_scope_key == scope_key),
        );
        if pending && satisfied != Some(true) {
            return;
        }
        match satisfied {
            None => self.child_ended(ctx, scope_key),
            Some(false) => {}
            Some(true) if ad_hoc.cancel_remaining => {
                let others = self.state.children_of(scope_key);
                if others.is_empty() {
                    self.child_ended(ctx, scope_key);
                }
                for child in others {
                    ctx.steps.push_back(Step::Terminate(child));
                }
            }
            Some(true) if !pending => self.child_ended(ctx, scope_key),
            Some(true) => {}
        }
    }

    /// AD_HOC_SUB_PROCESS_INSTRUCTION ACTIVATE.
    pub(crate) fn ad_hoc_instruction_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        instruction: &AdHocSubProcessInstructionRecord,
    ) -> Result<(), Rejection> {
        let key = instruction.ad_hoc_sub_process_instance_key;
        let not_found = || {
            rejection(
                RejectionType::NotFound,
                format!("Expected to activate activities for ad-hoc sub-process but no ad-hoc sub-process instance found with key '{key}'."),
            )
        };
        let inst = self
            .state
            .instances
            .get(&key)
            .cloned()
            .ok_or_else(not_found)?;
        let def = self.definition(inst.process_definition_key)?;
        let Behavior::AdHoc(_) = &def.model.element(inst.element).behavior else {
            return Err(not_found());
        };
        if inst.state != ElementState::Activated {
            return Err(rejection(
                RejectionType::InvalidState,
                format!("Expected to activate activities for ad-hoc sub-process with key '{key}', but it is not active."),
            ));
        }
        let elements = &instruction.activate_elements;
        if elements.len() > MAX_ACTIVATE_ELEMENTS {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!("Expected to activate at most {MAX_ACTIVATE_ELEMENTS} activities for ad-hoc sub-process with key '{key}', but {} were given.", elements.len()),
            ));
        }
        let ids: Vec<String> = elements.iter().map(|e| e.element_id.clone()).collect();
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != ids.len() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!("Expected to activate activities for ad-hoc sub-process with key '{key}', but duplicate activities were given."),
            ));
        }
        if let Some(list) = missing(&def.model, inst.element, &ids) {
            return Err(rejection(
                RejectionType::NotFound,
                format!("Expected to activate activities for ad-hoc sub-process with key '{key}', but the given elements {list} do not exist."),
            ));
        }
        let mut documents = Vec::with_capacity(elements.len());
        for e in elements {
            let text = if e.variables.trim().is_empty() {
                "{}"
            } else {
                e.variables.as_str()
            };
            let document = parse_document(text).map_err(|why| {
                rejection(
                    RejectionType::InvalidArgument,
                    format!("variables of element '{}': {why}", e.element_id),
                )
            })?;
            documents.push(
                document
                    .into_iter()
                    .map(|(name, value)| (name, value.get().to_string()))
                    .collect::<Vec<_>>(),
            );
        }
        let pi_key = inst.process_instance_key;
        for (e, variables) in elements.iter().zip(documents) {
            for (name, value) in variables {
                self.set_local(ctx, key, pi_key, &name, &value);
            }
            let target =
                ad_hoc_activity(&def.model, inst.element, &e.element_id).expect("checked above");
            ctx.steps
                .push_back(crate::events::activate_step(&def, target, key, pi_key));
        }
        let value = RecordValue::AdHocSubProcessInstruction(instruction.clone());
        self.emit(ctx, key, Intent::Activated, value);
        Self::respond(ctx, cmd, ResponseValue::AdHocActivated { key });
        Ok(())
    }
}
