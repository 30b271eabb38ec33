//! List built-ins, including Camunda's `duplicate values` and `partition`.
//! Aggregates accept one list or the values as separate arguments.

use super::{b, int, items, list, num, opt, v, Builtin};
use crate::eval::{Ev, Fail, MAX_ITEMS, R};
use crate::number::{self, Number};
use crate::value::{compare, equal, Value};
use std::cmp::Ordering;

pub(super) const TABLE: &[Builtin] = &[
    b("list contains", &["list", "element"], list_contains),
    b("count", &["list"], count),
    v("min", &["list"], min),
    v("max", &["list"], max),
    v("sum", &["list"], sum),
    v("product", &["list"], product),
    v("mean", &["list"], mean),
    v("median", &["list"], median),
    v("stddev", &["list"], stddev),
    v("mode", &["list"], mode),
    v("and", &["list"], all),
    v("all", &["list"], all),
    v("or", &["list"], any),
    v("any", &["list"], any),
    b("sublist", &["list", "start position", "length?"], sublist),
    v("append", &["list", "items"], append),
    v("concatenate", &["lists"], concatenate),
    b(
        "insert before",
        &["list", "position", "newItem"],
        insert_before,
    ),
    b("remove", &["list", "position"], remove),
    b(
        "list replace",
        &["list", "position", "newItem"],
        list_replace,
    ),
    b("list replace", &["list", "match", "newItem"], list_replace),
    b("reverse", &["list"], reverse),
    b("index of", &["list", "match"], index_of),
    v("union", &["lists"], union),
    b("distinct values", &["list"], distinct),
    b("duplicate values", &["list"], duplicates),
    b("flatten", &["list"], flatten),
    b("sort", &["list", "precedes?"], sort),
    b("is empty", &["list"], is_empty),
    b("partition", &["list", "size"], partition),
];

fn l(v: Vec<Value>) -> R {
    Ok(Value::list(v))
}

fn contains(items: &[Value], x: &Value) -> bool {
    items.iter().any(|i| equal(i, x) == Some(true))
}

fn list_contains(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(contains(list(&a[0])?, &a[1])))
}

fn count(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::int(list(&a[0])?.len() as i64))
}

fn extreme(a: &[Value], want: Ordering) -> R {
    let xs = items(a);
    let Some(mut best) = xs.first() else {
        return Ok(Value::Null);
    };
    for x in &xs[1..] {
        match compare(x, best) {
            Some(o) if o == want => best = x,
            Some(_) => {}
            None => return Err("values are not comparable".into()),
        }
    }
    if compare(best, best).is_none() {
        return Err("values are not comparable".into());
    }
    Ok(best.clone())
}

fn min(_: &mut Ev, a: &[Value]) -> R {
    extreme(a, Ordering::Less)
}

fn max(_: &mut Ev, a: &[Value]) -> R {
    extreme(a, Ordering::Greater)
}

fn numbers(a: &[Value]) -> Result<Vec<&Number>, Fail> {
    items(a).iter().map(num).collect()
}

fn sum(_: &mut Ev, a: &[Value]) -> R {
    let ns = numbers(a)?;
    if ns.is_empty() {
        return Ok(Value::Null);
    }
    Ok(Value::Number(number::round(ns.into_iter().sum())))
}

fn product(_: &mut Ev, a: &[Value]) -> R {
    let ns = numbers(a)?;
    if ns.is_empty() {
        return Ok(Value::Null);
    }
    let mut p = Number::from(1);
    for n in ns {
        p = number::mul(&p, n);
    }
    Ok(Value::Number(p))
}

fn mean_of(ns: &[&Number]) -> Option<Number> {
    let total: Number = ns.iter().copied().sum();
    number::div(&total, &Number::from(ns.len() as i64))
}

fn mean(_: &mut Ev, a: &[Value]) -> R {
    Ok(mean_of(&numbers(a)?).map_or(Value::Null, Value::Number))
}

fn median(_: &mut Ev, a: &[Value]) -> R {
    let mut ns = numbers(a)?;
    if ns.is_empty() {
        return Ok(Value::Null);
    }
    ns.sort();
    let n = ns.len();
    Ok(Value::Number(if n % 2 == 1 {
        ns[n / 2].clone()
    } else {
        number::div(&(ns[n / 2 - 1] + ns[n / 2]), &Number::from(2)).ok_or("division")?
    }))
}

fn stddev(_: &mut Ev, a: &[Value]) -> R {
    let ns = numbers(a)?;
    if ns.len() < 2 {
        return Ok(Value::Null);
    }
    let m = mean_of(&ns).ok_or("empty")?;
    let sq: Number = ns.iter().map(|x| (*x - &m).square()).sum();
    let var = number::div(&sq, &Number::from(ns.len() as i64 - 1)).ok_or("division")?;
    Ok(var
        .sqrt()
        .map_or(Value::Null, |r| Value::Number(number::round(r))))
}

fn mode(_: &mut Ev, a: &[Value]) -> R {
    let xs = items(a);
    let mut counts: Vec<(&Value, usize)> = Vec::new();
    for x in xs {
        match counts.iter_mut().find(|(v, _)| equal(v, x) == Some(true)) {
            Some(c) => c.1 += 1,
            None => counts.push((x, 1)),
        }
    }
    let top = counts.iter().map(|c| c.1).max().unwrap_or(0);
    let mut modes: Vec<Value> = counts
        .into_iter()
        .filter(|c| c.1 == top)
        .map(|c| c.0.clone())
        .collect();
    modes.sort_by(|x, y| compare(x, y).unwrap_or(Ordering::Equal));
    l(modes)
}

fn all(_: &mut Ev, a: &[Value]) -> R {
    let mut unknown = false;
    for x in items(a) {
        match x {
            Value::Bool(false) => return Ok(Value::Bool(false)),
            Value::Bool(true) => {}
            _ => unknown = true,
        }
    }
    Ok(if unknown {
        Value::Null
    } else {
        Value::Bool(true)
    })
}

fn any(_: &mut Ev, a: &[Value]) -> R {
    let mut unknown = false;
    for x in items(a) {
        match x {
            Value::Bool(true) => return Ok(Value::Bool(true)),
            Value::Bool(false) => {}
            _ => unknown = true,
        }
    }
    Ok(if unknown {
        Value::Null
    } else {
        Value::Bool(false)
    })
}

/// Zero-based index of a 1-based (negative: from the end) position.
fn position(len: usize, p: i64) -> Option<usize> {
    let len = len as i64;
    let i = if p > 0 {
        p - 1
    } else if p < 0 {
        len + p
    } else {
        return None;
    };
    (0..len).contains(&i).then_some(i as usize)
}

fn sublist(_: &mut Ev, a: &[Value]) -> R {
    let xs = list(&a[0])?;
    let from = position(xs.len(), int(&a[1])?).ok_or("start position out of range")?;
    let to = match opt(a, 2) {
        Some(n) => from.saturating_add(usize::try_from(int(n)?).map_err(|_| "negative length")?),
        None => xs.len(),
    };
    if to > xs.len() {
        return Err("length out of range".into());
    }
    l(xs[from..to].to_vec())
}

fn bounded(v: Vec<Value>) -> R {
    if v.len() > MAX_ITEMS {
        return Err(Fail::Hard(format!("list longer than {MAX_ITEMS} items")));
    }
    l(v)
}

fn append(_: &mut Ev, a: &[Value]) -> R {
    let mut out = list(&a[0])?.to_vec();
    out.extend_from_slice(&a[1..]);
    bounded(out)
}

fn concatenate(_: &mut Ev, a: &[Value]) -> R {
    let mut out = Vec::new();
    for x in a {
        out.extend_from_slice(list(x)?);
    }
    bounded(out)
}

fn insert_before(_: &mut Ev, a: &[Value]) -> R {
    let mut out = list(&a[0])?.to_vec();
    let p = int(&a[1])?;
    let at = if p == out.len() as i64 + 1 {
        out.len()
    } else {
        position(out.len(), p).ok_or("position out of range")?
    };
    out.insert(at, a[2].clone());
    l(out)
}

fn remove(_: &mut Ev, a: &[Value]) -> R {
    let mut out = list(&a[0])?.to_vec();
    let at = position(out.len(), int(&a[1])?).ok_or("position out of range")?;
    out.remove(at);
    l(out)
}

/// `list replace(list, position, newItem)` or, with a function
/// `match(item, newItem)` in place of the position, every matching item.
fn list_replace(ev: &mut Ev, a: &[Value]) -> R {
    let mut out = match &a[0] {
        Value::List(l) => l.as_ref().clone(),
        Value::Null => return Err("expected a list but found null".into()),
        other => vec![other.clone()],
    };
    match &a[1] {
        f @ Value::Function(func) => {
            if let crate::value::Function::User { params, .. } = &**func {
                if params.len() != 2 {
                    return Err(
                        "the match function must take two parameters (item, newItem)".into(),
                    );
                }
            }
            for x in out.iter_mut() {
                match ev.call(f, vec![x.clone(), a[2].clone()])? {
                    Value::Bool(true) => *x = a[2].clone(),
                    Value::Bool(false) => {}
                    other => {
                        return Err(format!(
                            "the match function returned {} instead of a boolean",
                            other.type_name()
                        )
                        .into())
                    }
                }
            }
        }
        p => {
            // A fractional position counts by its integer part (DMN 1.5 TCK).
            let p = super::num(p)?.with_scale_round(0, bigdecimal::RoundingMode::Down);
            let p = crate::number::to_i64(&p).ok_or("position out of range")?;
            let at = position(out.len(), p).ok_or("position out of range")?;
            out[at] = a[2].clone();
        }
    }
    l(out)
}

fn reverse(_: &mut Ev, a: &[Value]) -> R {
    let mut out = list(&a[0])?.to_vec();
    out.reverse();
    l(out)
}

fn index_of(_: &mut Ev, a: &[Value]) -> R {
    let xs = list(&a[0])?;
    l(xs.iter()
        .enumerate()
        .filter(|(_, x)| equal(x, &a[1]) == Some(true))
        .map(|(i, _)| Value::int(i as i64 + 1))
        .collect())
}

fn distinct_of<'v>(xs: impl Iterator<Item = &'v Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for x in xs {
        if !contains(&out, x) {
            out.push(x.clone());
        }
    }
    out
}

fn union(_: &mut Ev, a: &[Value]) -> R {
    let mut all = Vec::new();
    for x in a {
        all.extend(list(x)?.iter());
    }
    bounded(distinct_of(all.into_iter()))
}

fn distinct(_: &mut Ev, a: &[Value]) -> R {
    l(distinct_of(list(&a[0])?.iter()))
}

fn duplicates(_: &mut Ev, a: &[Value]) -> R {
    let xs = list(&a[0])?;
    let repeated = |x: &Value| xs.iter().filter(|y| equal(x, y) == Some(true)).count() > 1;
    l(distinct_of(xs.iter())
        .into_iter()
        .filter(|x| repeated(x))
        .collect())
}

fn flatten(_: &mut Ev, a: &[Value]) -> R {
    let mut out = Vec::new();
    // An explicit stack: nesting depth costs heap, not call stack.
    let mut stack: Vec<std::slice::Iter<Value>> = vec![list(&a[0])?.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(Value::List(inner)) => stack.push(inner.iter()),
            Some(x) => {
                out.push(x.clone());
                if out.len() > MAX_ITEMS {
                    return bounded(out);
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    l(out)
}

fn sort(ev: &mut Ev, a: &[Value]) -> R {
    let xs = list(&a[0])?;
    let mut out: Vec<Value> = Vec::with_capacity(xs.len());
    let precedes = opt(a, 1).cloned();
    // Binary insertion keeps it stable and lets the comparison fail.
    for x in xs {
        let (mut lo, mut hi) = (0, out.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let before = match &precedes {
                Some(f) => matches!(
                    ev.call(f, vec![x.clone(), out[mid].clone()])?,
                    Value::Bool(true)
                ),
                None => compare(x, &out[mid]).ok_or("values are not comparable")? == Ordering::Less,
            };
            if before {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        out.insert(lo, x.clone());
    }
    l(out)
}

fn is_empty(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(list(&a[0])?.is_empty()))
}

fn partition(_: &mut Ev, a: &[Value]) -> R {
    let xs = list(&a[0])?;
    let size = usize::try_from(int(&a[1])?)
        .ok()
        .filter(|s| *s > 0)
        .ok_or("size must be a positive integer")?;
    l(xs.chunks(size).map(|c| Value::list(c.to_vec())).collect())
}
