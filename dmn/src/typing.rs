//! Type conformance of values to a `typeRef` (FEEL built-in type or item
//! definition), as the DMN specification applies it where values are bound
//! (inputs, parameters, context entries, decision and expression results):
//! a conforming value stays, a singleton list becomes its item where a
//! single value is expected, a value becomes a singleton list where a
//! collection is expected, and any other value becomes null. Unknown type
//! names do not restrict. Item definitions may refer to each other, so the
//! walk is bounded by [`MAX_TYPE_DEPTH`].

use crate::model::{ItemDefinition, TypeRef};
use crate::Graph;
use feel::{Entries, NoVariables, Value};
use std::sync::Arc;

/// Deepest nesting of type references followed when checking a value.
pub const MAX_TYPE_DEPTH: usize = 32;

/// `v` conformed to `type_ref`: itself, converted, or null.
pub fn check_type(graph: &Graph, type_ref: &TypeRef, v: Value) -> Value {
    match type_ref {
        None => v,
        Some(t) => conform_named(graph, t, v, 0).unwrap_or(Value::Null),
    }
}

fn builtin(name: &str, v: &Value) -> Option<bool> {
    Some(match name {
        "Any" | "any" => true,
        "number" => matches!(v, Value::Number(_)),
        "string" => matches!(v, Value::String(_)),
        "boolean" => matches!(v, Value::Bool(_)),
        "date" => matches!(v, Value::Date(_)),
        "time" => matches!(v, Value::Time(_)),
        "dateTime" | "date and time" => matches!(v, Value::DateTime(_)),
        "dayTimeDuration" | "days and time duration" => matches!(v, Value::DayTime(_)),
        "yearMonthDuration" | "years and months duration" => matches!(v, Value::YearMonth(_)),
        "duration" => matches!(v, Value::DayTime(_) | Value::YearMonth(_)),
        "context" => matches!(v, Value::Context(_)),
        "list" => matches!(v, Value::List(_)),
        "range" => matches!(v, Value::Range(_)),
        "function" => matches!(v, Value::Function(_)),
        _ => return None,
    })
}

fn find<'g>(graph: &'g Graph, name: &str) -> Option<&'g ItemDefinition> {
    graph
        .item_definitions
        .iter()
        .find(|d| &*d.name == name)
        .or_else(|| {
            let (_, local) = name.rsplit_once('.')?;
            graph.item_definitions.iter().find(|d| &*d.name == local)
        })
}

/// Conforms `v` to the type named `t`; `None` when it does not conform.
fn conform_named(graph: &Graph, t: &str, v: Value, depth: usize) -> Option<Value> {
    if v.is_null() || depth > MAX_TYPE_DEPTH {
        return Some(v);
    }
    let t = t.trim();
    let t = t.strip_prefix("feel:").unwrap_or(t);
    if let Some(inner) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
        return conform_list(v, &|x| conform_named(graph, inner, x, depth + 1));
    }
    if t.contains('<') {
        // context<...>, range<...>, function<...>: checked by kind only.
        let kind = t.split('<').next().unwrap_or("");
        return conform_single(v, &|x| match builtin(kind, &x) {
            Some(false) => None,
            _ => Some(x),
        });
    }
    if let Some(ok) = builtin(t, &v) {
        if ok {
            return Some(v);
        }
        if t == "list" {
            return Some(Value::list(vec![v]));
        }
        return conform_single(v, &|x| builtin(t, &x).unwrap_or(true).then_some(x));
    }
    match find(graph, t) {
        Some(def) => conform_def(graph, def, v, depth + 1),
        None => Some(v),
    }
}

/// A singleton list where a single value is expected: its item, if that conforms.
fn conform_single(v: Value, f: &dyn Fn(Value) -> Option<Value>) -> Option<Value> {
    match &v {
        Value::List(l) if l.len() == 1 => f(l[0].clone()),
        _ => None,
    }
}

fn conform_list(v: Value, item: &dyn Fn(Value) -> Option<Value>) -> Option<Value> {
    match v {
        Value::List(l) => {
            let mut out = Vec::with_capacity(l.len());
            for x in l.iter() {
                out.push(item(x.clone())?);
            }
            Some(Value::list(out))
        }
        other => Some(Value::list(vec![item(other)?])),
    }
}

fn conform_def(graph: &Graph, def: &ItemDefinition, v: Value, depth: usize) -> Option<Value> {
    if depth > MAX_TYPE_DEPTH {
        return Some(v);
    }
    if def.collection {
        return conform_list(v, &|x| conform_item(graph, def, x, depth));
    }
    match conform_item(graph, def, v.clone(), depth) {
        Some(x) => Some(x),
        None => conform_single(v, &|x| conform_item(graph, def, x, depth)),
    }
}

/// One value (not the collection) against a definition.
fn conform_item(graph: &Graph, def: &ItemDefinition, v: Value, depth: usize) -> Option<Value> {
    if v.is_null() {
        return Some(v);
    }
    let v = if def.function {
        matches!(v, Value::Function(_)).then_some(v)?
    } else if !def.components.is_empty() {
        let Value::Context(c) = &v else {
            return None;
        };
        // Every component must be present (DMN 1.5, 7.3.2: a context
        // conforms to a structure when it has all its components).
        if def.components.iter().any(|d| c.get(&d.name).is_none()) {
            return None;
        }
        let mut out = Entries::new();
        for (k, x) in c.iter() {
            match def.components.iter().find(|d| d.name == *k) {
                Some(d) => out.put(k.clone(), conform_def(graph, d, x.clone(), depth + 1)?),
                None => out.put(k.clone(), x.clone()),
            }
        }
        Value::Context(Arc::new(out))
    } else {
        match &def.type_ref {
            Some(t) => {
                let x = conform_named(graph, t, v.clone(), depth + 1)?;
                // A singleton list is unwrapped by the caller, not by the base type.
                if matches!(v, Value::List(_)) && !matches!(x, Value::List(_)) {
                    return None;
                }
                x
            }
            None => v,
        }
    };
    if let Some(allowed) = &def.allowed_values {
        let ctx = feel::Context::new(&NoVariables, 0);
        if !allowed.matches(&v, &ctx) {
            return None;
        }
    }
    Some(v)
}
