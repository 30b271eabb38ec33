//! Variable store: per scope (element instance key), the variables set on it.
//!
//! ```text
//! scopes: BTreeMap<scope key, ScopeVariables>
//! ScopeVariables { text: names and values back to back (JSON text values),
//!                  entries: Vec<Entry { key, name and value offsets }> sorted by name,
//!                  garbage: bytes of text no entry points to any more }
//! ```
//!
//! Values stay JSON text: they are parsed only when a FEEL expression needs
//! them, and job variables are assembled by concatenating the texts. A scope
//! keeps all its text in one allocation: an instance with fifteen variables
//! costs two allocations instead of thirty. An update appends the new value
//! and leaves the old one as garbage; the text is compacted when garbage is
//! more than half of it. Snapshots hold the (name, key, value) triples in name
//! order, so equal variables give equal bytes whatever the layout.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest variable name or value text a scope stores (offsets are `u32`).
pub const MAX_VARIABLE_TEXT_BYTES: usize = u32::MAX as usize / 2;

/// One variable, borrowed from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable<'a> {
    /// Name.
    pub name: &'a str,
    /// Key of the variable (stable across updates).
    pub key: i64,
    /// Value as JSON text.
    pub value: &'a str,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: i64,
    name_start: u32,
    name_len: u32,
    value_start: u32,
    value_len: u32,
}

#[derive(Clone, Debug, Default)]
struct ScopeVariables {
    text: String,
    entries: Vec<Entry>,
    garbage: usize,
}

impl ScopeVariables {
    fn name(&self, e: &Entry) -> &str {
        &self.text[e.name_start as usize..(e.name_start + e.name_len) as usize]
    }

    fn value(&self, e: &Entry) -> &str {
        &self.text[e.value_start as usize..(e.value_start + e.value_len) as usize]
    }

    fn view(&self, e: &Entry) -> Variable<'_> {
        Variable {
            name: self.name(e),
            key: e.key,
            value: self.value(e),
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        // A document's variables arrive sorted by name: each new one goes
        // after the last, found with one comparison.
        match self.entries.last() {
            None => return Err(0),
            Some(last) if self.name(last) < name => return Err(self.entries.len()),
            Some(_) => {}
        }
        self.entries.binary_search_by(|e| self.name(e).cmp(name))
    }

    /// Appends `s` and returns its (start, len).
    fn append(&mut self, s: &str) -> (u32, u32) {
        assert!(
            s.len() <= MAX_VARIABLE_TEXT_BYTES && self.text.len() + s.len() <= u32::MAX as usize,
            "variable text of a scope exceeds {MAX_VARIABLE_TEXT_BYTES} bytes"
        );
        if self.text.capacity() - self.text.len() < s.len() {
            // Grow by half at least: appends stay amortised, slack stays small.
            self.text.reserve_exact(s.len().max(self.text.len() / 2));
        }
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, s.len() as u32)
    }

    fn set(&mut self, name: &str, key: i64, value: &str) {
        match self.find(name) {
            Ok(i) => {
                assert_eq!(
                    self.entries[i].key, key,
                    "variable '{name}' changed its key"
                );
                self.garbage += self.entries[i].value_len as usize;
                let (start, len) = self.append(value);
                self.entries[i].value_start = start;
                self.entries[i].value_len = len;
                if self.garbage * 2 > self.text.len() {
                    self.compact();
                }
            }
            Err(i) => {
                let (name_start, name_len) = self.append(name);
                let (value_start, value_len) = self.append(value);
                self.entries.insert(
                    i,
                    Entry {
                        key,
                        name_start,
                        name_len,
                        value_start,
                        value_len,
                    },
                );
            }
        }
    }

    fn compact(&mut self) {
        let mut fresh = ScopeVariables {
            text: String::with_capacity(self.text.len() - self.garbage),
            entries: Vec::with_capacity(self.entries.len()),
            garbage: 0,
        };
        for e in &self.entries {
            let v = self.view(e);
            let (name_start, name_len) = fresh.append(v.name);
            let (value_start, value_len) = fresh.append(v.value);
            fresh.entries.push(Entry {
                key: e.key,
                name_start,
                name_len,
                value_start,
                value_len,
            });
        }
        *self = fresh;
    }
}

/// All variables of a partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(into = "Vec<(i64, Vec<(String, i64, String)>)>")]
#[serde(from = "Vec<(i64, Vec<(String, i64, String)>)>")]
pub struct Variables {
    scopes: BTreeMap<i64, ScopeVariables>,
}

impl From<Variables> for Vec<(i64, Vec<(String, i64, String)>)> {
    fn from(v: Variables) -> Self {
        v.scopes
            .iter()
            .filter(|(_, vars)| !vars.entries.is_empty())
            .map(|(&scope, vars)| {
                let list = vars
                    .entries
                    .iter()
                    .map(|e| {
                        let v = vars.view(e);
                        (v.name.to_string(), v.key, v.value.to_string())
                    })
                    .collect();
                (scope, list)
            })
            .collect()
    }
}

impl From<Vec<(i64, Vec<(String, i64, String)>)>> for Variables {
    fn from(list: Vec<(i64, Vec<(String, i64, String)>)>) -> Self {
        let mut out = Variables::default();
        for (scope, vars) in list {
            for (name, key, value) in vars {
                out.set(scope, &name, key, &value);
            }
        }
        out
    }
}

impl Variables {
    /// The variable `name` set directly on `scope`.
    pub fn get(&self, scope: i64, name: &str) -> Option<Variable<'_>> {
        let vars = self.scopes.get(&scope)?;
        vars.find(name).ok().map(|i| vars.view(&vars.entries[i]))
    }

    /// The variables set directly on `scope`, sorted by name.
    pub fn local(&self, scope: i64) -> impl Iterator<Item = Variable<'_>> + '_ {
        self.scopes
            .get(&scope)
            .into_iter()
            .flat_map(|vars| vars.entries.iter().map(move |e| vars.view(e)))
    }

    /// Makes room for `bytes` of names and values on `scope` (a new process
    /// instance with a variable document of that size).
    pub fn reserve(&mut self, scope: i64, bytes: usize) {
        let vars = self.scopes.entry(scope).or_default();
        vars.text.reserve_exact(bytes.min(MAX_VARIABLE_TEXT_BYTES));
    }

    /// Creates or updates `name` on `scope`.
    pub fn set(&mut self, scope: i64, name: &str, key: i64, value: &str) {
        self.scopes.entry(scope).or_default().set(name, key, value);
    }

    /// Drops every variable of `scope` (the element instance ended).
    pub fn remove_scope(&mut self, scope: i64) {
        self.scopes.remove(&scope);
    }

    /// Number of scopes holding variables.
    pub fn scope_count(&self) -> usize {
        self.scopes
            .values()
            .filter(|v| !v.entries.is_empty())
            .count()
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
        assert_eq!(v.get(1, "b").unwrap().value, "2");
        let names: Vec<_> = v.local(1).map(|v| v.name).collect();
        assert_eq!(names, ["a", "b"]);
        v.remove_scope(1);
        assert!(v.get(1, "a").is_none());
    }

    #[test]
    fn names_stay_sorted_in_any_order_of_arrival() {
        let mut v = Variables::default();
        for (key, name) in [(1, "a"), (2, "c"), (3, "e"), (4, "d"), (5, "b")] {
            v.set(1, name, key, &key.to_string());
        }
        v.set(1, "e", 3, "\"last, updated\"");
        v.set(1, "a", 1, "\"first, updated\"");
        let seen: Vec<_> = v.local(1).map(|v| (v.name, v.key, v.value)).collect();
        assert_eq!(
            seen,
            [
                ("a", 1, "\"first, updated\""),
                ("b", 5, "5"),
                ("c", 2, "2"),
                ("d", 4, "4"),
                ("e", 3, "\"last, updated\""),
            ]
        );
    }

    #[test]
    fn updates_compact_and_snapshots_ignore_the_layout() {
        let mut churned = Variables::default();
        let mut fresh = Variables::default();
        for i in 0..100 {
            churned.set(7, "counter", 1, &i.to_string());
            churned.set(7, "big", 2, &"x".repeat(i));
        }
        assert!(
            churned.scopes[&7].text.len() < 4 * 200,
            "garbage is compacted"
        );
        fresh.set(7, "big", 2, &"x".repeat(99));
        fresh.set(7, "counter", 1, "99");
        let a = postcard::to_allocvec(&churned).unwrap();
        let b = postcard::to_allocvec(&fresh).unwrap();
        assert_eq!(a, b);
        let back: Variables = postcard::from_bytes(&a).unwrap();
        assert_eq!(back.get(7, "counter").unwrap().value, "99");
    }
}
