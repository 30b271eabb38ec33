//! The built-in function table: names, parameter names (for named
//! arguments; `?` marks optional, a variadic function takes its trailing
//! arguments as a list), and argument helpers shared by the families.

mod boolean;
mod context;
mod conversion;
mod list;
mod numeric;
mod range;
mod string;
mod temporal;

use crate::eval::{Ev, EvArgs, Fail, R};
use crate::number::Number;
use crate::value::{Entries, Value};
use std::sync::Arc;

/// A built-in's implementation: evaluation state and bound arguments.
pub type Impl = fn(&mut Ev, &[Value]) -> R;

/// One signature of a built-in.
pub struct Builtin {
    /// Name, with spaces as FEEL spells it.
    pub name: &'static str,
    /// Parameter names; a trailing `?` marks an optional one.
    pub params: &'static [&'static str],
    /// Whether further positional arguments are accepted (and passed on).
    pub variadic: bool,
    /// Implementation.
    pub f: Impl,
}

const fn b(name: &'static str, params: &'static [&'static str], f: Impl) -> Builtin {
    Builtin {
        name,
        params,
        variadic: false,
        f,
    }
}

const fn v(name: &'static str, params: &'static [&'static str], f: Impl) -> Builtin {
    Builtin {
        name,
        params,
        variadic: true,
        f,
    }
}

fn all() -> impl Iterator<Item = &'static Builtin> {
    boolean::TABLE
        .iter()
        .chain(conversion::TABLE)
        .chain(string::TABLE)
        .chain(list::TABLE)
        .chain(numeric::TABLE)
        .chain(context::TABLE)
        .chain(range::TABLE)
        .chain(temporal::TABLE)
}

/// Whether a built-in of this name exists.
pub fn exists(name: &str) -> bool {
    all().any(|b| b.name == name)
}

/// Every built-in name (for documentation and tests).
pub fn names() -> Vec<&'static str> {
    let mut n: Vec<_> = all().map(|b| b.name).collect();
    n.dedup();
    n
}

fn required(b: &Builtin) -> usize {
    b.params.iter().filter(|p| !p.ends_with('?')).count()
}

/// Calls the built-in `name`, choosing the signature that fits the arguments.
pub fn call(ev: &mut Ev, name: &str, args: EvArgs) -> R {
    let candidates = || all().filter(|b| b.name == name);
    let bound = match &args {
        EvArgs::Positional(a) => candidates()
            .find(|b| a.len() >= required(b) && (b.variadic || a.len() <= b.params.len()))
            .map(|b| (b, a.clone())),
        EvArgs::Named(a) => candidates().find_map(|b| bind_named(b, a).map(|x| (b, spread(b, x)))),
    };
    let Some((builtin, values)) = bound else {
        let sigs: Vec<String> = candidates()
            .map(|b| format!("{}({})", b.name, b.params.join(", ")))
            .collect();
        return Err(Fail::Hard(format!(
            "no function found with name '{name}' and these parameters; expected {}",
            sigs.join(" or ")
        )));
    };
    let mut r = (builtin.f)(ev, &values);
    // DMN's implicit conversion from a singleton list: a built-in that
    // refuses a one-item list where it expects a single value gets the item.
    if matches!(r, Err(Fail::Soft(_)))
        && values
            .iter()
            .any(|v| matches!(v, Value::List(l) if l.len() == 1))
    {
        let unwrapped: Vec<Value> = values
            .iter()
            .map(|v| match v {
                Value::List(l) if l.len() == 1 => l[0].clone(),
                other => other.clone(),
            })
            .collect();
        if let Ok(v) = (builtin.f)(ev, &unwrapped) {
            r = Ok(v);
        }
    }
    match r {
        Err(Fail::Soft(m)) => Ok(ev.null(format!("{name}: {m}"))),
        other => other,
    }
}

/// A variadic built-in called by name gets its last parameter's list as
/// separate arguments (`union(lists: [[1], [2]])` is `union([1], [2])`).
fn spread(b: &Builtin, mut values: Vec<Value>) -> Vec<Value> {
    if b.variadic && values.len() == b.params.len() {
        if let Some(Value::List(l)) = values.last() {
            let items = l.as_ref().clone();
            values.pop();
            values.extend(items);
        }
    }
    values
}

fn bind_named(b: &Builtin, args: &[(Arc<str>, Value)]) -> Option<Vec<Value>> {
    let plain = |p: &str| p.trim_end_matches('?').to_string();
    if args
        .iter()
        .any(|(k, _)| !b.params.iter().any(|p| plain(p) == **k))
    {
        return None;
    }
    let mut out = Vec::new();
    let mut last = 0;
    for (i, p) in b.params.iter().enumerate() {
        match args.iter().find(|(k, _)| **k == plain(p)) {
            Some((_, v)) => {
                out.push(v.clone());
                last = i + 1;
            }
            None if p.ends_with('?') => out.push(Value::Null),
            None => return None,
        }
    }
    out.truncate(last.max(required(b)));
    Some(out)
}

fn expected(what: &str, v: &Value) -> Fail {
    Fail::Soft(format!("expected {what} but found {}", v.type_name()))
}

/// A number argument.
pub fn num(v: &Value) -> Result<&Number, Fail> {
    match v {
        Value::Number(n) => Ok(n),
        other => Err(expected("number", other)),
    }
}

/// An integer argument; a fractional number counts by its integer part
/// (as the DMN TCK expects of positions, lengths and scales).
pub fn int(v: &Value) -> Result<i64, Fail> {
    let n = num(v)?.with_scale_round(0, bigdecimal::RoundingMode::Down);
    crate::number::to_i64(&n).ok_or_else(|| expected("integer", v))
}

/// A string argument.
pub fn text(v: &Value) -> Result<&str, Fail> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(expected("string", other)),
    }
}

/// A list argument.
pub fn list(v: &Value) -> Result<&[Value], Fail> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(expected("list", other)),
    }
}

/// A context argument.
pub fn ctx(v: &Value) -> Result<&Entries, Fail> {
    match v {
        Value::Context(c) => Ok(c),
        other => Err(expected("context", other)),
    }
}

/// The items of a variadic call: one list argument, or the arguments themselves.
pub fn items(args: &[Value]) -> &[Value] {
    match args {
        [Value::List(l)] => l,
        other => other,
    }
}

/// An optional argument (absent or null is `None`).
pub fn opt(args: &[Value], i: usize) -> Option<&Value> {
    args.get(i).filter(|v| !v.is_null())
}
