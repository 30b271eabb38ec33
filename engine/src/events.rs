//! Event subscriptions and triggers: timers, message and signal
//! subscriptions opened while an element instance waits, and what happens
//! when one of their events arrives (or an error or escalation is thrown).
//!
//! ```text
//! open (element activated)   one subscription per catch element in `Element::subscriptions`:
//!                            TIMER CREATED | PROCESS_MESSAGE_SUBSCRIPTION CREATING | SIGNAL_SUBSCRIPTION CREATED
//! close (complete/terminate) TIMER CANCELED | PROCESS_MESSAGE_SUBSCRIPTION DELETING | SIGNAL_SUBSCRIPTION DELETED
//! trigger(owner, catch element, variables):
//!   catch event / receive task     close, set variables, complete it
//!   event-based gateway            close, PROCESS_EVENT TRIGGERING in its scope, complete it
//!                                  towards the event (which completes at once)
//!   boundary event                 PROCESS_EVENT TRIGGERING in the activity's scope;
//!                                  interrupting: terminate the activity, then activate it;
//!                                  else activate it now
//!   event sub-process start        PROCESS_EVENT TRIGGERING in the owner scope;
//!                                  interrupting: terminate the scope's children, then activate it
//! ```
//!
//! A trigger waits in the state until its target is activated, which
//! consumes it (PROCESS_EVENT TRIGGERED) and takes its variables; while it
//! waits it counts as a pending token of its scope, so the scope does not
//! complete early.

use crate::engine::{Ctx, Engine, Step};
use crate::model::{Behavior, EventDefinition, Process};
use crate::record::*;
use crate::state::{DeployedProcess, ElementState, State};
use crate::timer::Schedule;
use serde_json::Value as Json;
use std::sync::Arc;

/// Most due timers (and expired messages) handed out per `due_commands` call
/// when the caller asks for more.
pub const MAX_DUE_PER_CALL: usize = 1_000;

/// One subscription to open, with its expressions evaluated: the catch
/// element, and its schedule, message name and correlation key, or signal name.
pub(crate) enum Opening {
    Timer(u32, Schedule),
    Message(u32, String, String),
    Signal(u32, String),
}

/// Evaluates an expression that must give a non-empty string (message and
/// signal names, correlation keys, process ids); numbers are turned into text.
pub(crate) fn evaluate_text(
    expression: &crate::expression::Expression,
    vars: &[(&str, &str)],
    clock: &crate::expression::Clock,
    what: &str,
) -> Result<String, String> {
    match expression.evaluate(vars, clock)? {
        Json::String(s) => Ok(s),
        Json::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "Expected the {what} '{}' to be a string or a number, but was '{other}'",
            expression.source()
        )),
    }
}

/// The text of a timer expression (a FEEL result may be a string or a duration).
pub(crate) fn timer_text(
    def: &crate::model::TimerDefinition,
    vars: &[(&str, &str)],
    clock: &crate::expression::Clock,
) -> Result<String, String> {
    match def.expression.evaluate(vars, clock)? {
        Json::String(s) => Ok(s),
        other => Err(format!(
            "Expected the timer expression '{}' to give a date, duration or cycle, but was '{other}'",
            def.expression.source()
        )),
    }
}

impl Engine {
    /// Evaluates and opens the subscriptions of element instance `key`.
    /// Nothing is written when an expression fails.
    pub(crate) fn open_subscriptions(&mut self, ctx: &mut Ctx, key: i64) -> Result<(), String> {
        let Some((def, element, _, pi_key)) = self.instance_parts(key) else {
            return Ok(());
        };
        let subs = def.model.element(element).subscriptions.clone();
        if subs.is_empty() {
            return Ok(());
        }
        let opening = self.evaluate_openings(ctx.timestamp_ms, &def, key, &subs)?;
        self.write_openings(ctx, &def, key, pi_key, opening);
        Ok(())
    }

    /// Evaluates the subscriptions of catch elements `catches` (of `def`)
    /// for element instance `key`, with the variables visible from it;
    /// writes nothing.
    pub(crate) fn evaluate_openings(
        &self,
        now_ms: i64,
        def: &DeployedProcess,
        key: i64,
        catches: &[u32],
    ) -> Result<Vec<Opening>, String> {
        self.evaluate_openings_with(now_ms, def, &self.visible(key), catches)
    }

    /// `evaluate_openings` with the variables `vars` (innermost first).
    pub(crate) fn evaluate_openings_with(
        &self,
        now_ms: i64,
        def: &DeployedProcess,
        vars: &[(&str, &str)],
        catches: &[u32],
    ) -> Result<Vec<Opening>, String> {
        let mut opening = Vec::new();
        for &catch in catches {
            let el = def.model.element(catch);
            let fail = |e: String| format!("event '{}': {e}", el.id);
            match &el.event {
                Some(EventDefinition::Timer(t)) => {
                    let text = timer_text(t, vars, &self.clock).map_err(fail)?;
                    let schedule = Schedule::parse(t.kind, &text, now_ms).map_err(fail)?;
                    opening.push(Opening::Timer(catch, schedule));
                }
                Some(EventDefinition::Message {
                    name,
                    correlation_key,
                }) => {
                    let name =
                        evaluate_text(name, vars, &self.clock, "message name").map_err(fail)?;
                    let ck = match correlation_key {
                        Some(e) => {
                            evaluate_text(e, vars, &self.clock, "correlation key").map_err(fail)?
                        }
                        None => String::new(),
                    };
                    opening.push(Opening::Message(catch, name, ck));
                }
                Some(EventDefinition::Signal { name }) => {
                    let name =
                        evaluate_text(name, vars, &self.clock, "signal name").map_err(fail)?;
                    opening.push(Opening::Signal(catch, name));
                }
                _ => {}
            }
        }
        Ok(opening)
    }

    /// Writes the subscriptions `evaluate_openings` gave, owned by `key`.
    pub(crate) fn write_openings(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        pi_key: i64,
        opening: Vec<Opening>,
    ) {
        for o in opening {
            match o {
                Opening::Timer(catch, schedule) => {
                    let timer = TimerRecord {
                        element_instance_key: key,
                        process_instance_key: pi_key,
                        process_definition_key: def.metadata.process_definition_key,
                        target_element_id: def.model.element(catch).id.clone(),
                        due_date_ms: schedule.first_due_ms,
                        repetitions: schedule.repetitions,
                    };
                    let timer_key = self.state.keys.next_key();
                    self.emit(ctx, timer_key, Intent::Created, RecordValue::Timer(timer));
                }
                Opening::Message(catch, name, ck) => {
                    self.open_message_subscription(ctx, def, key, pi_key, catch, name, ck)
                }
                Opening::Signal(catch, name) => {
                    let sub = SignalSubscriptionRecord {
                        signal_name: name,
                        element_instance_key: key,
                        process_instance_key: pi_key,
                        process_definition_key: def.metadata.process_definition_key,
                        element_id: def.model.element(catch).id.clone(),
                    };
                    let sub_key = self.state.keys.next_key();
                    self.emit(
                        ctx,
                        sub_key,
                        Intent::Created,
                        RecordValue::SignalSubscription(sub),
                    );
                }
            }
        }
    }

    /// Closes every subscription element instance `key` holds.
    pub(crate) fn close_subscriptions(&mut self, ctx: &mut Ctx, key: i64) {
        for timer_key in State::owned(&self.state.timers_by_owner, key) {
            if let Some(t) = self.state.timers.get(&timer_key).cloned() {
                self.emit(ctx, timer_key, Intent::Canceled, RecordValue::Timer(t));
            }
        }
        for sub_key in State::owned(&self.state.pms_by_owner, key) {
            self.close_message_subscription(ctx, sub_key);
        }
        for sub_key in State::owned(&self.state.signal_by_owner, key) {
            if let Some(s) = self.state.signal_subscriptions.get(&sub_key).cloned() {
                self.emit(
                    ctx,
                    sub_key,
                    Intent::Deleted,
                    RecordValue::SignalSubscription(s),
                );
            }
        }
    }

    /// An event for catch element `catch` arrived at element instance
    /// `owner`. Returns false when the owner can no longer take it.
    pub(crate) fn trigger(
        &mut self,
        ctx: &mut Ctx,
        owner: i64,
        catch: u32,
        variables: &str,
    ) -> bool {
        let Some(inst) = self.state.instances.get(&owner) else {
            return false;
        };
        if inst.state != ElementState::Activated || inst.interrupted {
            return false;
        }
        let (owner_element, scope_key, pi_key) =
            (inst.element, inst.flow_scope_key, inst.process_instance_key);
        let Some(def) = self.state.process(inst.process_definition_key).cloned() else {
            return false;
        };
        let model = &def.model;
        let catch_el = model.element(catch);
        let owner_el = model.element(owner_element);
        if catch == owner_element {
            // Intermediate catch event or receive task.
            self.close_subscriptions(ctx, owner);
            self.apply_event_variables(ctx, owner, pi_key, variables);
            ctx.steps.push_back(Step::Complete(owner));
            return true;
        }
        if catch_el.attached_to == Some(owner_element) {
            let interrupted_key = if catch_el.interrupting {
                self.close_subscriptions(ctx, owner);
                owner
            } else {
                NO_KEY
            };
            self.emit_trigger(
                ctx,
                &def,
                scope_key,
                pi_key,
                catch,
                variables,
                interrupted_key,
            );
            if catch_el.interrupting {
                ctx.steps.push_back(Step::Terminate(owner));
            } else {
                ctx.steps
                    .push_back(activate_step(&def, catch, scope_key, pi_key));
            }
            return true;
        }
        if matches!(owner_el.behavior, Behavior::EventGateway) {
            let Some(&flow) = owner_el
                .outgoing
                .iter()
                .find(|&&f| model.flow(f).target == catch)
            else {
                return false;
            };
            self.close_subscriptions(ctx, owner);
            self.emit_trigger(ctx, &def, scope_key, pi_key, catch, variables, NO_KEY);
            self.complete_with_flows(ctx, owner, vec![flow]);
            return true;
        }
        // The start event of an event sub-process of the owner scope.
        let Some(esp) = catch_el.flow_scope else {
            return false;
        };
        if model.element(esp).flow_scope != Some(owner_element) {
            return false;
        }
        self.trigger_event_subprocess(ctx, &def, owner, pi_key, esp, variables)
    }

    fn trigger_event_subprocess(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        owner: i64,
        pi_key: i64,
        esp: u32,
        variables: &str,
    ) -> bool {
        let interrupting = def.model.element(esp).interrupting;
        if interrupting {
            self.close_subscriptions(ctx, owner);
            self.emit_trigger(ctx, def, owner, pi_key, esp, variables, owner);
            let children = self.state.children_of(owner);
            if children.is_empty() {
                ctx.steps.push_back(activate_step(def, esp, owner, pi_key));
            }
            for child in children {
                ctx.steps.push_back(Step::Terminate(child));
            }
        } else {
            self.emit_trigger(ctx, def, owner, pi_key, esp, variables, NO_KEY);
            ctx.steps.push_back(activate_step(def, esp, owner, pi_key));
        }
        true
    }

    #[allow(clippy::too_many_arguments)] // one record's fields
    pub(crate) fn emit_trigger(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        scope_key: i64,
        pi_key: i64,
        target: u32,
        variables: &str,
        interrupted_key: i64,
    ) {
        let value = ProcessEventRecord {
            scope_key,
            target_element_id: def.model.element(target).id.clone(),
            variables: variables.to_string(),
            interrupted_key,
            process_definition_key: def.metadata.process_definition_key,
            process_instance_key: pi_key,
        };
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::Triggering,
            RecordValue::ProcessEvent(value),
        );
    }

    /// On activation of element `element` in `scope_key`: takes the oldest
    /// trigger waiting for it, and gives its variables to instance `key`.
    /// Returns whether there was one.
    pub(crate) fn consume_trigger(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        scope_key: i64,
        pi_key: i64,
        element: u32,
    ) -> bool {
        let id = &def.model.element(element).id;
        let found = State::owned(&self.state.triggers_by_scope, scope_key)
            .into_iter()
            .find(|k| {
                self.state
                    .event_triggers
                    .get(k)
                    .is_some_and(|t| t.target_element_id == *id)
            });
        let Some(trigger_key) = found else {
            return false;
        };
        let trigger = self.state.event_triggers[&trigger_key].clone();
        let variables = trigger.variables.clone();
        self.emit(
            ctx,
            trigger_key,
            Intent::Triggered,
            RecordValue::ProcessEvent(trigger),
        );
        self.apply_event_variables(ctx, key, pi_key, &variables);
        true
    }

    /// Variables of an event: local when the element has output mappings
    /// (they decide what is propagated), else propagated.
    fn apply_event_variables(&mut self, ctx: &mut Ctx, key: i64, pi_key: i64, variables: &str) {
        let Ok(vars) = crate::scope_variables::parse_document(variables) else {
            return;
        };
        if vars.is_empty() {
            return;
        }
        let local = self
            .instance_parts(key)
            .is_some_and(|(def, el, _, _)| !def.model.element(el).outputs.is_empty());
        for (name, value) in vars {
            if local {
                self.set_local(ctx, key, pi_key, &name, value.get());
            } else {
                self.merge(ctx, key, pi_key, &name, value.get());
            }
        }
    }

    /// After element instance `key` of scope `scope_key` terminated: the
    /// interrupting boundary event that caused it is activated.
    pub(crate) fn after_interrupted(&mut self, ctx: &mut Ctx, key: i64, scope_key: i64) {
        let waiting = State::owned(&self.state.triggers_by_scope, scope_key)
            .into_iter()
            .find_map(|k| {
                let t = self.state.event_triggers.get(&k)?;
                (t.interrupted_key == key).then(|| t.clone())
            });
        let Some(t) = waiting else {
            return;
        };
        let Some(def) = self.state.process(t.process_definition_key).cloned() else {
            return;
        };
        if let Some(target) = def.model.index_of(&t.target_element_id) {
            ctx.steps.push_back(activate_step(
                &def,
                target,
                scope_key,
                t.process_instance_key,
            ));
        }
    }

    /// When scope `scope_key` has no active children left: an interrupting
    /// event sub-process waiting for that is activated. Returns whether one was.
    pub(crate) fn activate_waiting_event_subprocess(
        &mut self,
        ctx: &mut Ctx,
        scope_key: i64,
    ) -> bool {
        let waiting = State::owned(&self.state.triggers_by_scope, scope_key)
            .into_iter()
            .find_map(|k| {
                let t = self.state.event_triggers.get(&k)?;
                (t.interrupted_key == scope_key).then(|| t.clone())
            });
        let Some(t) = waiting else {
            return false;
        };
        let Some(def) = self.state.process(t.process_definition_key).cloned() else {
            return false;
        };
        let Some(target) = def.model.index_of(&t.target_element_id) else {
            return false;
        };
        let pending = ctx.steps.iter().any(|s| {
            matches!(s, Step::Activate { element, flow_scope_key, .. } if *element == target && *flow_scope_key == scope_key)
        });
        if !pending {
            ctx.steps.push_back(activate_step(
                &def,
                target,
                scope_key,
                t.process_instance_key,
            ));
        }
        true
    }

    /// TIMER TRIGGER (from `due_commands`).
    pub(crate) fn trigger_timer(&mut self, ctx: &mut Ctx, cmd: &Record) -> Result<(), Rejection> {
        let key = cmd.key;
        let timer = self.state.timers.get(&key).cloned().ok_or_else(|| {
            crate::engine::rejection(
                RejectionType::NotFound,
                format!("Expected to trigger timer with key '{key}', but no such timer was found"),
            )
        })?;
        if timer.due_date_ms > ctx.timestamp_ms {
            return Err(crate::engine::rejection(
                RejectionType::InvalidState,
                format!(
                    "Expected to trigger timer with key '{key}', but it is due at {} and the command was written at {}",
                    timer.due_date_ms, ctx.timestamp_ms
                ),
            ));
        }
        let Some(def) = self.state.process(timer.process_definition_key).cloned() else {
            return Ok(());
        };
        let Some(catch) = def.model.index_of(&timer.target_element_id) else {
            return Ok(());
        };
        self.emit(
            ctx,
            key,
            Intent::Triggered,
            RecordValue::Timer(timer.clone()),
        );
        let catch_el = def.model.element(catch);
        let repeats = timer.repetitions != 1
            && (catch_el.element_type == BpmnElementType::StartEvent || !catch_el.interrupting);
        if repeats {
            self.rearm_timer(ctx, &def, catch, &timer);
        }
        if timer.element_instance_key == NO_KEY {
            self.start_instance_at(ctx, &def, catch, "", None);
        } else {
            self.trigger(ctx, timer.element_instance_key, catch, "");
        }
        Ok(())
    }

    fn rearm_timer(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        catch: u32,
        timer: &TimerRecord,
    ) {
        let Some(EventDefinition::Timer(t)) = &def.model.element(catch).event else {
            return;
        };
        let owner = timer.element_instance_key;
        let text = {
            let vars = if owner == NO_KEY {
                Vec::new()
            } else {
                self.visible(owner)
            };
            timer_text(t, &vars, &self.clock)
        };
        let next = text
            .and_then(|text| Schedule::parse(t.kind, &text, timer.due_date_ms))
            .and_then(|s| s.next_after(timer.due_date_ms));
        // A cycle whose expression no longer evaluates stops repeating.
        let Ok(due) = next else {
            return;
        };
        let next = TimerRecord {
            due_date_ms: due,
            repetitions: if timer.repetitions < 0 {
                -1
            } else {
                timer.repetitions - 1
            },
            ..timer.clone()
        };
        let key = self.state.keys.next_key();
        self.emit(ctx, key, Intent::Created, RecordValue::Timer(next));
    }

    /// Creates a process instance that starts at event start `start`
    /// (timer, message, signal start events), with `variables`.
    pub(crate) fn start_instance_at(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        start: u32,
        variables: &str,
        correlated: Option<MessageSubscriptionRecord>,
    ) -> i64 {
        let pi_key = self.state.keys.next_key();
        if let Some(mut c) = correlated {
            c.process_instance_key = pi_key;
            let key = self.state.keys.next_key();
            self.emit(
                ctx,
                key,
                Intent::Correlated,
                RecordValue::MessageSubscription(c),
            );
        }
        self.emit_trigger(ctx, def, pi_key, pi_key, start, variables, NO_KEY);
        ctx.steps.push_back(Step::Activate {
            process_definition_key: def.metadata.process_definition_key,
            element: 0,
            flow_scope_key: NO_KEY,
            process_instance_key: pi_key,
            key: pi_key,
        });
        pi_key
    }

    /// The start event a process container activates: the one a trigger
    /// waits for (message, timer, signal start), else its none start event.
    pub(crate) fn start_event_of(&self, model: &Process, key: i64, container: u32) -> Option<u32> {
        let el = model.element(container);
        if !el.event_starts.is_empty() {
            for t in State::owned(&self.state.triggers_by_scope, key) {
                if let Some(trigger) = self.state.event_triggers.get(&t) {
                    if let Some(start) = model.index_of(&trigger.target_element_id) {
                        if el.event_starts.contains(&start) {
                            return Some(start);
                        }
                    }
                }
            }
        }
        el.start_event
    }

    /// On deployment of a new version (partition 1): cancels the start timers
    /// of the versions before and opens those of `def`.
    pub(crate) fn schedule_start_timers(&mut self, ctx: &mut Ctx, def: &Arc<DeployedProcess>) {
        let id = def.metadata.bpmn_process_id.clone();
        let old: Vec<(i64, TimerRecord)> = State::owned(&self.state.timers_by_owner, NO_KEY)
            .into_iter()
            .filter_map(|k| {
                let t = self.state.timers.get(&k)?;
                let p = self.state.process(t.process_definition_key)?;
                (p.metadata.bpmn_process_id == id
                    && t.process_definition_key != def.metadata.process_definition_key)
                    .then(|| (k, t.clone()))
            })
            .collect();
        for (k, t) in old {
            self.emit(ctx, k, Intent::Canceled, RecordValue::Timer(t));
        }
        for &start in &def.model.element(0).event_starts {
            let el = def.model.element(start);
            let Some(EventDefinition::Timer(t)) = &el.event else {
                continue;
            };
            // Start timers see no variables; a failing expression opens no timer
            // (static ones were checked at deployment).
            let Ok(schedule) = timer_text(t, &[], &self.clock)
                .and_then(|text| Schedule::parse(t.kind, &text, ctx.timestamp_ms))
            else {
                continue;
            };
            let timer = TimerRecord {
                element_instance_key: NO_KEY,
                process_instance_key: NO_KEY,
                process_definition_key: def.metadata.process_definition_key,
                target_element_id: el.id.clone(),
                due_date_ms: schedule.first_due_ms,
                repetitions: schedule.repetitions,
            };
            let key = self.state.keys.next_key();
            self.emit(ctx, key, Intent::Created, RecordValue::Timer(timer));
        }
    }
}

/// A step that activates `element` in `scope_key`.
pub(crate) fn activate_step(
    def: &DeployedProcess,
    element: u32,
    scope_key: i64,
    pi_key: i64,
) -> Step {
    Step::Activate {
        process_definition_key: def.metadata.process_definition_key,
        element,
        flow_scope_key: scope_key,
        process_instance_key: pi_key,
        key: NO_KEY,
    }
}
