//! Variable store: per scope (element instance key), the variables set on it.
//!
//! ```text
//! scopes: BTreeMap<scope key, Vec<Variable>>   each Vec sorted by name
//! Variable { name, key, value (JSON text) }
//! ```
//!
//! Values stay JSON text: they are parsed only when a FEEL expression needs
//! them, and job variables are assembled by concatenating the texts. A scope
//! usually holds a handful of variables, so a sorted vector beats a map in
//! memory and speed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Name.
    pub name: Box<str>,
    /// Key of the variable (stable across updates).
    pub key: i64,
    /// Value as JSON text.
    pub value: Box<str>,
}

/// All variables of a partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variables {
    scopes: BTreeMap<i64, Vec<Variable>>,
}

impl Variables {
    /// The variable `name` set directly on `scope`.
    pub fn get(&self, scope: i64, name: &str) -> Option<&Variable> {
        let vars = self.scopes.get(&scope)?;
        vars.binary_search_by(|v| (*v.name).cmp(name))
            .ok()
            .map(|i| &vars[i])
    }

    /// The variables set directly on `scope`, sorted by name.
    pub fn local(&self, scope: i64) -> &[Variable] {
        self.scopes.get(&scope).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Creates or updates `name` on `scope`.
    pub fn set(&mut self, scope: i64, name: &str, key: i64, value: &str) {
        let vars = self.scopes.entry(scope).or_default();
        match vars.binary_search_by(|v| (*v.name).cmp(name)) {
            Ok(i) => {
                assert_eq!(vars[i].key, key, "variable '{name}' changed its key");
                vars[i].value = Box::from(value);
            }
            Err(i) => vars.insert(
                i,
                Variable {
                    name: Box::from(name),
                    key,
                    value: Box::from(value),
                },
            ),
        }
    }

    /// Drops every variable of `scope` (the element instance ended).
    pub fn remove_scope(&mut self, scope: i64) {
        self.scopes.remove(&scope);
    }

    /// Number of scopes holding variables.
    pub fn scope_count(&self) -> usize {
        self.scopes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_update_remove() {
        let mut v = Variables::default();
        v.set(1, "b", 10, "1");
        v.set(1, "a", 11, "\"x\"");
        v.set(1, "b", 10, "2");
        assert_eq!(&*v.get(1, "b").unwrap().value, "2");
        let names: Vec<_> = v.local(1).iter().map(|v| &*v.name).collect();
        assert_eq!(names, ["a", "b"]);
        v.remove_scope(1);
        assert!(v.get(1, "a").is_none());
    }
}
