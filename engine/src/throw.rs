//! Errors and escalations: finding the catch event of a thrown error
//! (a worker's `ThrowError`, an error end event) or escalation.
//!
//! The search starts at the throwing element instance with its own boundary
//! events, then walks up the flow scopes: at each scope first the start
//! events of its event sub-processes, then the boundary events attached to
//! it; at the root of a called instance it goes on at the call activity in
//! the parent instance. A catch event with the thrown code wins over one
//! without a code (which catches every code) at the same place.

use crate::engine::{Ctx, Engine};
use crate::model::{EventDefinition, Process};
use crate::record::*;
use crate::state::{ElementState, MAX_CALL_DEPTH};

/// Error or escalation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Thrown {
    Error,
    Escalation,
}

/// The best catch element for `code` among `candidates`.
fn best_catch(model: &Process, candidates: &[u32], kind: Thrown, code: &str) -> Option<u32> {
    let code_of = |e: u32| match (&model.element(e).event, kind) {
        (Some(EventDefinition::Error { code }), Thrown::Error) => Some(code.clone()),
        (Some(EventDefinition::Escalation { code }), Thrown::Escalation) => Some(code.clone()),
        _ => None,
    };
    candidates
        .iter()
        .copied()
        .find(|&e| code_of(e).is_some_and(|c| c.as_deref() == Some(code)))
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|&e| matches!(code_of(e), Some(None)))
        })
}

impl Engine {
    /// The (owner element instance, catch element) for a `kind` thrown with
    /// `code` at element instance `from`.
    pub(crate) fn find_catch(&self, from: i64, kind: Thrown, code: &str) -> Option<(i64, u32)> {
        let mut key = from;
        for _ in 0..MAX_CALL_DEPTH * 64 {
            let inst = self.state.instances.get(&key)?;
            let def = self.state.process(inst.process_definition_key)?;
            let model = &def.model;
            let el = model.element(inst.element);
            let can_take = inst.state == ElementState::Activated && !inst.interrupted;
            if can_take {
                if key != from {
                    let starts: Vec<u32> = el
                        .event_subprocesses
                        .iter()
                        .filter_map(|&esp| model.element(esp).start_event)
                        .collect();
                    if let Some(catch) = best_catch(model, &starts, kind, code) {
                        return Some((key, catch));
                    }
                }
                if let Some(catch) = best_catch(model, &el.boundary_events, kind, code) {
                    return Some((key, catch));
                }
            }
            key = if inst.flow_scope_key != NO_KEY {
                inst.flow_scope_key
            } else if inst.parent_element_instance_key != NO_KEY {
                inst.parent_element_instance_key
            } else {
                return None;
            };
        }
        None
    }

    /// Throws a BPMN error at element instance `from`; returns whether a
    /// catch event took it.
    pub(crate) fn throw_error(
        &mut self,
        ctx: &mut Ctx,
        from: i64,
        code: &str,
        variables: &str,
    ) -> bool {
        match self.find_catch(from, Thrown::Error, code) {
            Some((owner, catch)) => self.trigger(ctx, owner, catch, variables),
            None => false,
        }
    }

    /// Throws an escalation at element instance `from`. Returns `None` when
    /// nothing caught it, else whether the catch event interrupts.
    pub(crate) fn throw_escalation(
        &mut self,
        ctx: &mut Ctx,
        from: i64,
        code: &str,
    ) -> Option<bool> {
        let (owner, catch) = self.find_catch(from, Thrown::Escalation, code)?;
        let interrupting = {
            let inst = self.state.instances.get(&owner)?;
            let def = self.state.process(inst.process_definition_key)?;
            let el = def.model.element(catch);
            match el.attached_to {
                Some(_) => el.interrupting,
                None => el
                    .flow_scope
                    .is_some_and(|esp| def.model.element(esp).interrupting),
            }
        };
        self.trigger(ctx, owner, catch, "").then_some(interrupting)
    }
}
