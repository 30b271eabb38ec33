//! Range built-ins (DMN 1.4 "Range functions"): relations between points
//! and ranges. A point is treated as the closed range `[p..p]`; a missing
//! bound (`< 10`, `> 10`) lies below or above every value.

use super::{b, Builtin};
use crate::ast::{Args, Expr};
use crate::eval::{Ev, Fail, R};
use crate::value::{compare, Value};
use std::cmp::Ordering;

/// Named arguments use the DMN names of the two-range signature.
pub(super) const TABLE: &[Builtin] = &[
    b("before", &["range1", "range2"], before),
    b("after", &["range1", "range2"], after),
    b("meets", &["range1", "range2"], meets),
    b("met by", &["range1", "range2"], met_by),
    b("overlaps", &["range1", "range2"], overlaps),
    b("overlaps before", &["range1", "range2"], overlaps_before),
    b("overlaps after", &["range1", "range2"], overlaps_after),
    b("finishes", &["range1", "range2"], finishes),
    b("finished by", &["range1", "range2"], finished_by),
    b("includes", &["range1", "range2"], includes),
    b("during", &["range1", "range2"], during),
    b("starts", &["range1", "range2"], starts),
    b("started by", &["range1", "range2"], started_by),
    b("coincides", &["range1", "range2"], coincides),
    b("range", &["from"], range_from),
];

/// `range(from)`: a range literal (`"[1..10)"`, `"<= 5"`) read from text;
/// its bounds may be any expression without variables.
fn range_from(ev: &mut Ev, a: &[Value]) -> R {
    let text = super::text(&a[0])?;
    let e = crate::parser::parse_expression(text.trim(), &[])
        .map_err(|e| Fail::Soft(format!("'{text}' is not a range: {e}")))?;
    let not_literal = || Fail::Soft(format!("'{text}' is not a range literal"));
    let Expr::Range { start, end, .. } = &e else {
        return Err(not_literal());
    };
    let (Some(start), Some(end)) = (start, end) else {
        return Err(not_literal());
    };
    if !literal_endpoint(start) || !literal_endpoint(end) {
        return Err(not_literal());
    }
    let Value::Range(r) = ev.eval_isolated(&e)? else {
        return Err(not_literal());
    };
    match (&r.start, &r.end) {
        (Some(s), Some(e)) if !(s.is_null() && e.is_null()) => match compare(s, e) {
            Some(Ordering::Greater) => {
                Err(Fail::Soft(format!("'{text}': the start is after the end")))
            }
            Some(_) => Ok(Value::Range(r.clone())),
            None if s.is_null() || e.is_null() => Ok(Value::Range(r.clone())),
            None => Err(Fail::Soft(format!(
                "'{text}': the endpoints are of different types"
            ))),
        },
        _ => Err(not_literal()),
    }
}

/// A literal, or a temporal constructor applied to a string literal.
fn literal_endpoint(e: &Expr) -> bool {
    match e {
        Expr::Literal(_) => true,
        Expr::Neg(x) => matches!(**x, Expr::Literal(Value::Number(_))),
        Expr::Call(callee, Args::Positional(args)) => {
            matches!(&**callee, Expr::Name(n) if matches!(&**n, "date" | "time" | "date and time" | "duration"))
                && args.len() == 1
                && matches!(args[0], Expr::Literal(Value::String(_)))
        }
        _ => false,
    }
}

/// A bound: a value, or unbounded below / above (`< 10`, `> 10`).
#[derive(Clone, Copy)]
enum B<'v> {
    Below,
    At(&'v Value),
    Above,
}

/// Bounds of a point or range: start, start included, end, end included.
struct Span<'v> {
    s: B<'v>,
    si: bool,
    e: B<'v>,
    ei: bool,
    point: bool,
}

fn span(v: &Value) -> Result<Span<'_>, Fail> {
    match v {
        Value::Range(r) => Ok(Span {
            s: r.start.as_ref().map_or(B::Below, B::At),
            si: r.start_included,
            e: r.end.as_ref().map_or(B::Above, B::At),
            ei: r.end_included,
            point: false,
        }),
        Value::Null => Err("expected point or range but found Null".into()),
        p => Ok(Span {
            s: B::At(p),
            si: true,
            e: B::At(p),
            ei: true,
            point: true,
        }),
    }
}

fn cmp(a: B, b: B) -> Result<Ordering, Fail> {
    Ok(match (a, b) {
        (B::Below, B::Below) | (B::Above, B::Above) => Ordering::Equal,
        (B::Below, _) | (_, B::Above) => Ordering::Less,
        (B::Above, _) | (_, B::Below) => Ordering::Greater,
        (B::At(x), B::At(y)) => compare(x, y).ok_or_else(|| {
            Fail::Soft(format!(
                "can't compare {} with {}",
                x.type_name(),
                y.type_name()
            ))
        })?,
    })
}

fn two(a: &[Value]) -> Result<(Span<'_>, Span<'_>), Fail> {
    Ok((span(&a[0])?, span(&a[1])?))
}

fn yes(b: bool) -> R {
    Ok(Value::Bool(b))
}

fn is_before(x: &Span, y: &Span) -> Result<bool, Fail> {
    let o = cmp(x.e, y.s)?;
    Ok(o == Ordering::Less || (o == Ordering::Equal && !(x.ei && y.si)))
}

fn before(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(is_before(&x, &y)?)
}

fn after(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(is_before(&y, &x)?)
}

fn do_meets(x: &Span, y: &Span) -> Result<bool, Fail> {
    Ok(x.ei && y.si && cmp(x.e, y.s)? == Ordering::Equal)
}

fn meets(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_meets(&x, &y)?)
}

fn met_by(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_meets(&y, &x)?)
}

fn overlaps(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(!is_before(&x, &y)? && !is_before(&y, &x)?)
}

fn do_overlaps_before(x: &Span, y: &Span) -> Result<bool, Fail> {
    let ss = cmp(x.s, y.s)?;
    let es = cmp(x.e, y.s)?;
    let ee = cmp(x.e, y.e)?;
    Ok(
        (ss == Ordering::Less || (ss == Ordering::Equal && x.si && !y.si))
            && (es == Ordering::Greater || (es == Ordering::Equal && x.ei && y.si))
            && (ee == Ordering::Less || (ee == Ordering::Equal && (!x.ei || y.ei))),
    )
}

fn overlaps_before(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_overlaps_before(&x, &y)?)
}

fn overlaps_after(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_overlaps_before(&y, &x)?)
}

fn do_finishes(x: &Span, y: &Span) -> Result<bool, Fail> {
    if x.point {
        return Ok(y.ei && cmp(x.e, y.e)? == Ordering::Equal);
    }
    let ss = cmp(x.s, y.s)?;
    Ok(x.ei == y.ei
        && cmp(x.e, y.e)? == Ordering::Equal
        && (ss == Ordering::Greater || (ss == Ordering::Equal && (!x.si || y.si))))
}

fn finishes(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_finishes(&x, &y)?)
}

fn finished_by(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_finishes(&y, &x)?)
}

fn do_includes(x: &Span, y: &Span) -> Result<bool, Fail> {
    let ss = cmp(x.s, y.s)?;
    let ee = cmp(x.e, y.e)?;
    Ok(
        (ss == Ordering::Less || (ss == Ordering::Equal && (x.si || !y.si)))
            && (ee == Ordering::Greater || (ee == Ordering::Equal && (x.ei || !y.ei))),
    )
}

fn includes(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_includes(&x, &y)?)
}

fn during(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_includes(&y, &x)?)
}

fn do_starts(x: &Span, y: &Span) -> Result<bool, Fail> {
    if x.point {
        return Ok(y.si && cmp(x.s, y.s)? == Ordering::Equal);
    }
    let ee = cmp(x.e, y.e)?;
    Ok(x.si == y.si
        && cmp(x.s, y.s)? == Ordering::Equal
        && (ee == Ordering::Less || (ee == Ordering::Equal && (!x.ei || y.ei))))
}

fn starts(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_starts(&x, &y)?)
}

fn started_by(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(do_starts(&y, &x)?)
}

fn coincides(_: &mut Ev, a: &[Value]) -> R {
    let (x, y) = two(a)?;
    yes(x.si == y.si
        && x.ei == y.ei
        && cmp(x.s, y.s)? == Ordering::Equal
        && cmp(x.e, y.e)? == Ordering::Equal)
}
