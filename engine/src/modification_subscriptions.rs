//! Process instance modification: the subscriptions of the flow scopes an
//! activate instruction creates are evaluated before anything is written,
//! and a failure rejects the command, as in Zeebe 8.8
//! (`EventSubscriptionException` → `INVALID_ARGUMENT`, "Expected to subscribe
//! to catch event(s) of '…' but …").
//!
//! ```text
//! per created flow scope, outermost first: its catch events (boundary events,
//! event sub-process start events) evaluated with the variables it will see:
//! the variable instructions for it and for the flow scopes around it
//! (innermost first), the global ones, then those of the existing flow scopes
//! (`open_flow_scopes` sets these instructions before it subscribes)
//! ```

use crate::engine::{rejection, Engine};
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::DeployedProcess;

impl Engine {
    /// Checks the subscriptions of the scopes `create` (outermost first)
    /// that activate instruction `instruction` creates below the existing
    /// flow scopes `found` (element, instance; outermost first).
    pub(crate) fn check_created_scope_subscriptions(
        &self,
        now_ms: i64,
        def: &DeployedProcess,
        found: &[(u32, i64)],
        create: &[u32],
        instruction: &ActivateInstruction,
    ) -> Result<(), Rejection> {
        let model = &def.model;
        // (scope element or None for global, name, value), in instruction order.
        let mut set: Vec<(Option<u32>, String, String)> = Vec::new();
        for v in &instruction.variable_instructions {
            let scope = if v.element_id.is_empty() {
                None
            } else {
                let mut scopes = found.iter().map(|&(e, _)| e).chain(create.iter().copied());
                match scopes.rfind(|&c| *model.element(c).id == *v.element_id) {
                    Some(c) => Some(c),
                    None => continue, // the element itself
                }
            };
            let Ok(vars) = parse_document(&v.variables) else {
                continue; // validated before
            };
            for (name, value) in vars {
                set.push((scope, name, value.get().to_string()));
            }
        }
        let parent = found.last().map(|&(_, k)| k).unwrap_or(NO_KEY);
        let found_elements: Vec<u32> = found.iter().map(|&(e, _)| e).collect();
        for (depth, &scope) in create.iter().enumerate() {
            let el = model.element(scope);
            if el.subscriptions.is_empty() {
                continue;
            }
            // Innermost first: the created scopes, the existing ones, the
            // global instructions, then what the existing scopes hold.
            let mut vars: Vec<(&str, &str)> = Vec::new();
            let outer = create[..=depth]
                .iter()
                .rev()
                .chain(found_elements.iter().rev());
            for &s in outer {
                for (at, name, value) in set.iter().rev() {
                    if *at == Some(s) {
                        vars.push((name, value));
                    }
                }
            }
            for (at, name, value) in set.iter().rev() {
                if at.is_none() {
                    vars.push((name, value));
                }
            }
            vars.extend(self.visible(parent));
            self.evaluate_openings_with(now_ms, def, &vars, &el.subscriptions)
                .map_err(|e| {
                    rejection(
                        RejectionType::InvalidArgument,
                        format!(
                            "Expected to subscribe to catch event(s) of '{}' but {e}",
                            el.id
                        ),
                    )
                })?;
        }
        Ok(())
    }
}
