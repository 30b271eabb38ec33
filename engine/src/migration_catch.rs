//! Event subscriptions under process instance migration: what happens to
//! the timers, message and signal subscriptions an element instance holds
//! (for its boundary events, itself as a catch event or receive task, the
//! events after an event-based gateway, the start events of the event
//! sub-processes of a scope), as in Zeebe 8.8.
//!
//! ```text
//! check    each catch event of the source element that is mapped stays attached to
//!          the target element, keeps its event type, and no two map to the same one
//! plan     held subscription whose catch event is mapped   → kept (migrated)
//!          held subscription whose catch event is unmapped → closed
//!          target catch event no mapping instruction names → opened (evaluated now;
//!          a failure, or a message the instance already waits for, rejects)
//! write    TIMER CANCELED | PROCESS_MESSAGE_SUBSCRIPTION DELETING | SIGNAL_SUBSCRIPTION DELETED
//!          then the new subscriptions (as on activation)
//!          then TIMER MIGRATED (due date kept) | PROCESS_MESSAGE_SUBSCRIPTION MIGRATED
//!          (correlation key kept; → MESSAGE_SUBSCRIPTION MIGRATE on the message
//!          partition: a follow-up command, or a command distribution to another
//!          partition, sent until acknowledged) | SIGNAL_SUBSCRIPTION MIGRATED
//! reject   while an earlier MIGRATE of a subscription is still being distributed
//! ```
//!
//! Subscriptions are opened only for an instance that is `Activated` and not
//! interrupted (one in another state, or whose scope an interrupting event
//! sub-process took over, subscribes to nothing more), as an element that
//! is still activating subscribes when it is activated.

use crate::engine::{rejection, Ctx, Engine};
use crate::events::Opening;
use crate::messages::message_partition;
use crate::model::Process;
use crate::record::*;
use crate::state::{DeployedProcess, State, SubscriptionState};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What migration does with the subscriptions of one element instance.
#[derive(Default)]
pub(crate) struct CatchPlan {
    /// Timers kept: (timer key, target catch event id).
    timers: Vec<(i64, Arc<str>)>,
    /// Process message subscriptions kept: (key, target catch event id,
    /// interrupting as in the target).
    messages: Vec<(i64, Arc<str>, bool)>,
    /// Signal subscriptions kept: (key, target catch event id).
    signals: Vec<(i64, Arc<str>)>,
    /// Timers of unmapped catch events.
    close_timers: Vec<i64>,
    /// Message subscriptions of unmapped catch events.
    close_messages: Vec<i64>,
    /// Signal subscriptions of unmapped catch events.
    close_signals: Vec<i64>,
    /// Target catch events that no mapping instruction names.
    open: Vec<Opening>,
}

/// Every catch event of `element`: itself (catch event, receive task), the
/// events after an event-based gateway, its boundary events (errors and
/// escalations too) and the start events of its event sub-processes.
pub(crate) fn catch_events(model: &Process, element: u32) -> Vec<u32> {
    let el = model.element(element);
    let mut out = el.subscriptions.clone();
    let starts = el
        .event_subprocesses
        .iter()
        .filter_map(|&esp| model.element(esp).start_event);
    for c in el.boundary_events.iter().copied().chain(starts) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn invalid_state(reason: String) -> Rejection {
    rejection(RejectionType::InvalidState, reason)
}

fn event_type_name(t: BpmnEventType) -> String {
    format!("{t:?}").to_ascii_uppercase()
}

/// Zeebe's checks of the catch events of an active element mapped from
/// `source_element` to `target_element`.
pub(crate) fn check_catch_events(
    pi_key: i64,
    source: &Process,
    target: &Process,
    mapping: &BTreeMap<&str, &str>,
    source_element: u32,
    target_element: u32,
) -> Result<(), Rejection> {
    let source_id = &source.element(source_element).id;
    let target_id = &target.element(target_element).id;
    let target_catches: Vec<&str> = catch_events(target, target_element)
        .into_iter()
        .map(|c| &*target.element(c).id)
        .collect();
    let mut by_target: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in catch_events(source, source_element) {
        let catch = source.element(c);
        let Some(&mapped) = mapping.get(&*catch.id) else {
            continue;
        };
        if !target_catches.contains(&mapped) {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' is mapped to an element with id '{target_id}' and has a catch event with id '{}' that is mapped to a catch event with id '{mapped}'. These mappings detach the catch event from the element in the target process. Catch events must stay attached to the same element instance.",
                catch.id
            )));
        }
        by_target.entry(mapped).or_default().push(&catch.id);
        let mapped_el = target.element(target.index_of(mapped).expect("checked in the plan"));
        if mapped_el.event_type != catch.event_type {
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' has a catch event with id '{}' that is mapped to a catch event with id '{mapped}'. These catch events have different event types: '{}' and '{}'. The event type of a catch event cannot be changed by process instance migration. Please ensure the event type of the catch event remains the same or remove the mapping instruction for these catch events.",
                catch.id,
                event_type_name(catch.event_type),
                event_type_name(mapped_el.event_type)
            )));
        }
    }
    for (mapped, mut sources) in by_target {
        if sources.len() > 1 {
            sources.sort_unstable();
            return Err(invalid_state(format!(
                "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' has a catch event attached that is mapped to a catch event with id '{mapped}'. There are multiple mapping instructions that target this catch event: '{}'. Catch events cannot be merged by process instance migration. Please ensure the mapping instructions target a catch event only once.",
                sources.join("', '")
            )));
        }
    }
    Ok(())
}

impl Engine {
    /// Plans the subscriptions of element instance `key` (source element id
    /// `source_id`) moving to `target_element` of `target`; writes nothing.
    #[allow(clippy::too_many_arguments)] // the instance and both sides of the mapping
    pub(crate) fn plan_catch_events(
        &self,
        now_ms: i64,
        target: &DeployedProcess,
        mapping: &BTreeMap<&str, &str>,
        pi_key: i64,
        key: i64,
        source_id: &str,
        target_element: u32,
        open_new: bool,
    ) -> Result<CatchPlan, Rejection> {
        let mut plan = CatchPlan::default();
        let mapped_to = |id: &str| mapping.get(id).map(|&t| Arc::<str>::from(t));
        for k in State::owned(&self.state.timers_by_owner, key) {
            let timer = &self.state.timers[&k];
            match mapped_to(&timer.target_element_id) {
                Some(t) => plan.timers.push((k, t)),
                None => plan.close_timers.push(k),
            }
        }
        for k in State::owned(&self.state.pms_by_owner, key) {
            let sub = &self.state.process_message_subscriptions[&k];
            if sub.state == SubscriptionState::Closing {
                continue;
            }
            if self.migration_distribution_pending(&sub.record) {
                return Err(invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' has a pending message subscription migration distribution for event with id '{}'.",
                    sub.record.element_id
                )));
            }
            match mapped_to(&sub.record.element_id) {
                Some(t) => {
                    let interrupting = target
                        .model
                        .index_of(&t)
                        .map_or(sub.record.interrupting, |i| {
                            target.model.element(i).interrupting
                        });
                    plan.messages.push((k, t, interrupting));
                }
                None => plan.close_messages.push(k),
            }
        }
        for k in State::owned(&self.state.signal_by_owner, key) {
            let sub = &self.state.signal_subscriptions[&k];
            match mapped_to(&sub.element_id) {
                Some(t) => plan.signals.push((k, t)),
                None => plan.close_signals.push(k),
            }
        }
        if !open_new {
            return Ok(plan);
        }
        let fresh: Vec<u32> = target
            .model
            .element(target_element)
            .subscriptions
            .iter()
            .copied()
            .filter(|&c| {
                let id = &*target.model.element(c).id;
                !mapping.values().any(|&v| v == id)
            })
            .collect();
        let target_id = &target.model.element(target_element).id;
        let open = self
            .evaluate_openings(now_ms, target, key, &fresh)
            .map_err(|e| {
                invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' is mapped to element with id '{target_id}' that must be subscribed to a catch event. {e}"
                ))
            })?;
        for o in &open {
            let Opening::Message(catch, name, _) = o else {
                continue;
            };
            let subscribed = State::owned(&self.state.pms_by_owner, key)
                .into_iter()
                .any(|k| {
                    self.state.process_message_subscriptions[&k]
                        .record
                        .message_name
                        == *name
                });
            if subscribed {
                return Err(invalid_state(format!(
                    "Expected to migrate process instance '{pi_key}' but active element with id '{source_id}' attempts to subscribe to a message it is already subscribed to with name '{name}'. Migrating active elements that subscribe to a message they are already subscribed to is not possible yet. Please provide a mapping instruction to message catch event with id '{}' to migrate the respective message subscription.",
                    target.model.element(*catch).id
                )));
            }
        }
        plan.open = open;
        Ok(plan)
    }

    /// Whether an earlier migration of subscription `sub` is still being
    /// distributed to its message partition (Zeebe rejects then: the two
    /// distributions could arrive out of order).
    fn migration_distribution_pending(&self, sub: &MessageSubscriptionRecord) -> bool {
        self.state.distributed_commands.values().any(|d| {
            d.intent == Intent::Migrate
                && matches!(
                    d.command_value.as_deref(),
                    Some(RecordValue::MessageSubscription(m))
                        if m.element_instance_key == sub.element_instance_key
                            && m.message_name == sub.message_name
                )
        })
    }

    /// Writes `plan` for element instance `key`, which already moved to
    /// `target`.
    pub(crate) fn migrate_catch_events(
        &mut self,
        ctx: &mut Ctx,
        target: &DeployedProcess,
        key: i64,
        pi_key: i64,
        plan: CatchPlan,
    ) {
        for k in plan.close_timers {
            if let Some(t) = self.state.timers.get(&k).cloned() {
                self.emit(ctx, k, Intent::Canceled, RecordValue::Timer(t));
            }
        }
        for k in plan.close_messages {
            self.close_message_subscription(ctx, k);
        }
        for k in plan.close_signals {
            if let Some(s) = self.state.signal_subscriptions.get(&k).cloned() {
                self.emit(ctx, k, Intent::Deleted, RecordValue::SignalSubscription(s));
            }
        }
        self.write_openings(ctx, target, key, pi_key, plan.open);
        let definition_key = target.metadata.process_definition_key;
        for (k, catch) in plan.timers {
            let mut timer = self.state.timers[&k].clone();
            timer.target_element_id = catch;
            timer.process_definition_key = definition_key;
            self.emit(ctx, k, Intent::Migrated, RecordValue::Timer(timer));
        }
        for (k, catch, interrupting) in plan.messages {
            let mut record = self.state.process_message_subscriptions[&k].record.clone();
            record.bpmn_process_id = target.metadata.bpmn_process_id.clone();
            record.element_id = catch;
            record.interrupting = interrupting;
            self.emit(
                ctx,
                k,
                Intent::Migrated,
                RecordValue::ProcessMessageSubscription(record.clone()),
            );
            // The message partition learns the new process id, catch event
            // and interrupting flag: a follow-up command when it is this
            // partition, else a distribution sent until acknowledged.
            let partition =
                message_partition(&record.correlation_key, self.message_partition_count());
            let value = RecordValue::MessageSubscription(record);
            if partition == self.partition_id {
                let command = Record::command(NO_KEY, Intent::Migrate, value, None);
                self.send(ctx, partition, command);
            } else {
                let distribution_key = self.state.keys.next_key();
                self.distribute_to(ctx, distribution_key, Intent::Migrate, value, &[partition]);
            }
        }
        for (k, catch) in plan.signals {
            let mut sub = self.state.signal_subscriptions[&k].clone();
            sub.element_id = catch;
            sub.process_definition_key = definition_key;
            self.emit(
                ctx,
                k,
                Intent::Migrated,
                RecordValue::SignalSubscription(sub),
            );
        }
    }
}

/// Applies the subscription migration events; false for every other record.
pub(crate) fn apply(state: &mut State, record: &Record) -> bool {
    if record.intent != Intent::Migrated {
        return false;
    }
    match &record.value {
        RecordValue::Timer(t) => {
            if let Some(timer) = state.timers.get_mut(&record.key) {
                timer.target_element_id = t.target_element_id.clone();
                timer.process_definition_key = t.process_definition_key;
            }
            true
        }
        RecordValue::ProcessMessageSubscription(m) => {
            if let Some(sub) = state.process_message_subscriptions.get_mut(&record.key) {
                sub.record.bpmn_process_id = m.bpmn_process_id.clone();
                sub.record.element_id = m.element_id.clone();
                sub.record.interrupting = m.interrupting;
            }
            true
        }
        RecordValue::MessageSubscription(m) => {
            if let Some(sub) = state.message_subscriptions.get_mut(&record.key) {
                sub.record.bpmn_process_id = m.bpmn_process_id.clone();
                sub.record.element_id = m.element_id.clone();
                sub.record.interrupting = m.interrupting;
            }
            true
        }
        RecordValue::SignalSubscription(s) => {
            if let Some(sub) = state.signal_subscriptions.get_mut(&record.key) {
                sub.element_id = s.element_id.clone();
                sub.process_definition_key = s.process_definition_key;
            }
            true
        }
        _ => false,
    }
}
