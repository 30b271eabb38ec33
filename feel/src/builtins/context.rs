//! Context built-ins: `get value` and `context put` with a key or a key
//! path, `get entries` / `context` (inverse of each other), `context merge`.

use super::{b, ctx, items, list, text, v, Builtin};
use crate::eval::{Ev, Fail, R};
use crate::parser::MAX_NESTING_DEPTH;
use crate::value::{Entries, Value};
use std::sync::Arc;

pub(super) const TABLE: &[Builtin] = &[
    b("get value", &["context", "key"], get_value),
    b("get value", &["context", "keys"], get_value),
    b("get value", &["m", "key"], get_value),
    b("get entries", &["context"], get_entries),
    b("get entries", &["m"], get_entries),
    b("context", &["entries"], context),
    b("context put", &["context", "key", "value"], put),
    b("context put", &["context", "keys", "value"], put),
    b("put", &["context", "key", "value"], put),
    v("context merge", &["contexts"], merge),
    v("put all", &["contexts"], merge),
];

fn keys(k: &Value) -> Result<Vec<&str>, Fail> {
    match k {
        Value::List(l) => {
            if l.is_empty() || l.len() > MAX_NESTING_DEPTH {
                return Err(format!("key path must have 1 to {MAX_NESTING_DEPTH} keys").into());
            }
            l.iter().map(text).collect()
        }
        other => Ok(vec![text(other)?]),
    }
}

fn get_value(_: &mut Ev, a: &[Value]) -> R {
    let mut cur = &a[0];
    for k in keys(&a[1])? {
        cur = match cur {
            Value::Context(c) => match c.get(k) {
                Some(x) => x,
                None => return Ok(Value::Null),
            },
            _ => return Ok(Value::Null),
        };
    }
    Ok(cur.clone())
}

fn get_entries(_: &mut Ev, a: &[Value]) -> R {
    let c = ctx(&a[0])?;
    Ok(Value::list(
        c.iter()
            .map(|(k, x)| {
                let mut e = Entries::new();
                e.put(Arc::from("key"), Value::String(k.clone()));
                e.put(Arc::from("value"), x.clone());
                Value::Context(Arc::new(e))
            })
            .collect(),
    ))
}

fn context(_: &mut Ev, a: &[Value]) -> R {
    let mut out = Entries::new();
    let single;
    let entries = match &a[0] {
        Value::Context(_) => {
            single = [a[0].clone()];
            &single[..]
        }
        other => list(other)?,
    };
    for e in entries {
        let e = ctx(e)?;
        let (Some(Value::String(k)), Some(x)) = (e.get("key"), e.get("value")) else {
            return Err("each entry needs a string 'key' and a 'value'".into());
        };
        out.put(k.clone(), x.clone());
    }
    Ok(Value::Context(Arc::new(out)))
}

fn put_path(base: &Entries, path: &[&str], value: Value) -> Entries {
    let mut out = base.clone();
    let (first, rest) = path.split_first().expect("key paths are not empty");
    let inner = if rest.is_empty() {
        value
    } else {
        let nested = match base.get(first) {
            Some(Value::Context(c)) => c.as_ref().clone(),
            _ => Entries::new(),
        };
        Value::Context(Arc::new(put_path(&nested, rest, value)))
    };
    out.put(Arc::from(*first), inner);
    out
}

fn put(_: &mut Ev, a: &[Value]) -> R {
    let c = ctx(&a[0])?;
    let path = keys(&a[1])?;
    Ok(Value::Context(Arc::new(put_path(c, &path, a[2].clone()))))
}

fn merge(_: &mut Ev, a: &[Value]) -> R {
    let mut out = Entries::new();
    for c in items(a) {
        for (k, x) in ctx(c)?.iter() {
            out.put(k.clone(), x.clone());
        }
    }
    Ok(Value::Context(Arc::new(out)))
}
