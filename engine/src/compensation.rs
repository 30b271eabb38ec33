//! Compensation: an activity with a compensation boundary event leaves a
//! `COMPENSATION_SUBSCRIPTION` in its flow scope when it completes. A
//! compensation throw or end event in that scope activates the handler of
//! every such activity (or of the one it names) and waits until all handlers
//! completed. When a scope completes, its subscriptions move to the enclosing
//! scope (so a throw there compensates inside completed sub-processes); when
//! a scope terminates, or the process instance ends, they are deleted.

use crate::engine::{Ctx, Engine, Step};
use crate::model::Behavior;
use crate::record::*;
use crate::state::{DeployedProcess, ElementState, State};
use std::sync::Arc;

impl Engine {
    /// After activity instance `key` of `scope_key` completed.
    pub(crate) fn subscribe_compensation(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        element: u32,
        scope_key: i64,
        pi_key: i64,
    ) {
        let el = def.model.element(element);
        let Some(handler) = el.compensation_handler else {
            return;
        };
        let value = CompensationSubscriptionRecord {
            process_instance_key: pi_key,
            process_definition_key: def.metadata.process_definition_key,
            scope_key,
            element_id: el.id.clone(),
            handler_id: def.model.element(handler).id.clone(),
        };
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::Created,
            RecordValue::CompensationSubscription(value),
        );
    }

    /// Scope `key` ended: its subscriptions move to `parent` (completed) or
    /// are deleted (terminated, or no parent).
    pub(crate) fn hand_over_compensations(&mut self, ctx: &mut Ctx, key: i64, parent: Option<i64>) {
        for sub_key in State::owned(&self.state.compensations_by_scope, key) {
            let Some(sub) = self.state.compensations.get(&sub_key).cloned() else {
                continue;
            };
            self.emit(
                ctx,
                sub_key,
                Intent::Deleted,
                RecordValue::CompensationSubscription(sub.clone()),
            );
            if let Some(parent) = parent {
                let moved = CompensationSubscriptionRecord {
                    scope_key: parent,
                    ..sub
                };
                let new_key = self.state.keys.next_key();
                self.emit(
                    ctx,
                    new_key,
                    Intent::Created,
                    RecordValue::CompensationSubscription(moved),
                );
            }
        }
    }

    /// Compensation throw event `key` in `scope_key`: activates the handlers.
    /// Returns whether it must wait for them.
    pub(crate) fn throw_compensation(
        &mut self,
        ctx: &mut Ctx,
        def: &Arc<DeployedProcess>,
        scope_key: i64,
        pi_key: i64,
        activity: Option<&str>,
    ) -> bool {
        let subs: Vec<(i64, CompensationSubscriptionRecord)> =
            State::owned(&self.state.compensations_by_scope, scope_key)
                .into_iter()
                .rev() // the latest completed activity is compensated first
                .filter_map(|k| Some((k, self.state.compensations.get(&k)?.clone())))
                .filter(|(_, s)| activity.is_none_or(|a| &*s.element_id == a))
                .collect();
        let mut waiting = false;
        for (sub_key, sub) in subs {
            let Some(handler) = def.model.index_of(&sub.handler_id) else {
                continue;
            };
            self.emit(
                ctx,
                sub_key,
                Intent::Triggered,
                RecordValue::CompensationSubscription(sub),
            );
            ctx.steps.push_back(crate::events::activate_step(
                def, handler, scope_key, pi_key,
            ));
            waiting = true;
        }
        waiting
    }

    /// A compensation handler completed in `scope_key`: when none is left
    /// running (or about to run), the waiting throw events complete.
    pub(crate) fn compensation_handler_done(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        scope_key: i64,
    ) {
        let children = self.state.children_of(scope_key);
        let is = |this: &Self, k: i64, f: &dyn Fn(&crate::model::Element) -> bool| {
            this.state
                .instances
                .get(&k)
                .is_some_and(|i| f(def.model.element(i.element)))
        };
        let handler_running = children
            .iter()
            .any(|&c| is(self, c, &|e| e.for_compensation))
            || ctx.steps.iter().any(|s| {
                matches!(s, Step::Activate { element, flow_scope_key, .. }
                    if *flow_scope_key == scope_key && def.model.element(*element).for_compensation)
            });
        if handler_running {
            return;
        }
        for c in children {
            let waiting = self.state.instances.get(&c).is_some_and(|i| {
                i.state == ElementState::Activated
                    && matches!(
                        def.model.element(i.element).behavior,
                        Behavior::ThrowCompensation(_)
                    )
            });
            if waiting {
                ctx.steps.push_back(Step::Complete(c));
            }
        }
    }
}
