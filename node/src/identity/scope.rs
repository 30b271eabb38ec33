//! Grants on single resources. An operation that names its resource (an
//! instance created by process id, a decision evaluated by id, a search of
//! process or decision data) is let through by the middleware when the
//! caller holds its permission on some resources only: the request then
//! carries a [`Scope`], and the operation checks its resource against it
//! (creations, evaluations) or narrows its results to it (searches). Other
//! operations need the permission on every resource (`*`).

use std::collections::BTreeSet;
use std::sync::Arc;

/// The resources a caller's permission for this request covers, when it
/// does not cover every one; in the request's extensions.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The permission's resource type.
    pub resource_type: &'static str,
    /// The permission.
    pub permission: &'static str,
    /// Ids of the resources it covers.
    pub ids: Arc<BTreeSet<String>>,
}

impl Scope {
    /// Whether an operation on the resource `id` (empty when the request
    /// names it by key) may go on under `scope` (none: every resource):
    /// the refusal's text if not. `what` names the resource in it.
    pub fn check(scope: Option<&Scope>, id: &str, what: &str) -> Result<(), String> {
        let Some(scope) = scope else {
            return Ok(());
        };
        if id.is_empty() {
            return Err(format!(
                "Insufficient permissions: the caller holds {} on {} {} only; name the {what} by its id, not by its key",
                scope.permission,
                scope.resource_type,
                scope.listed()
            ));
        }
        if scope.ids.contains(id) {
            Ok(())
        } else {
            Err(format!(
                "Insufficient permissions: the caller holds {} on {} {}, not on '{id}'",
                scope.permission,
                scope.resource_type,
                scope.listed()
            ))
        }
    }

    fn listed(&self) -> String {
        let ids: Vec<String> = self.ids.iter().map(|id| format!("'{id}'")).collect();
        ids.join(", ")
    }

    /// The ids, for a search's filter.
    pub fn id_list(&self) -> Vec<String> {
        self.ids.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_admits_its_resources_by_id_only() {
        let scope = Scope {
            resource_type: "PROCESS_DEFINITION",
            permission: "CREATE_PROCESS_INSTANCE",
            ids: Arc::new(["order".to_string()].into()),
        };
        assert!(Scope::check(None, "", "process").is_ok());
        assert!(Scope::check(Some(&scope), "order", "process").is_ok());
        let other = Scope::check(Some(&scope), "refund", "process").unwrap_err();
        assert!(other.contains("not on 'refund'"), "{other}");
        let by_key = Scope::check(Some(&scope), "", "process").unwrap_err();
        assert!(by_key.contains("by its id"), "{by_key}");
    }
}
