//! The tree-walking evaluator. Invalid operations become null and add a
//! suppressed failure (warning); unknown functions, failed assertions and
//! exceeded limits are hard failures. Recursion is bounded by
//! [`MAX_EVAL_DEPTH`] (AST height is bounded by the parser; user-defined
//! function calls add frames and count here too).

use crate::ast::{Args, BinOp, Expr, Iteration, Test, Type};
use crate::env::Context;
use crate::ops;
use crate::value::{compare, equal, Entries, Function, Range, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// Deepest evaluation recursion (nodes plus function calls) before failing.
pub const MAX_EVAL_DEPTH: usize = 256;
/// Most items a `for`, a numeric range iteration or a built-in may produce.
pub const MAX_ITEMS: usize = 1_000_000;

/// Why evaluation stopped or a value became null.
#[derive(Debug)]
pub enum Fail {
    /// Null with a suppressed failure.
    Soft(String),
    /// An evaluation failure.
    Hard(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Soft(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::Soft(s.to_string())
    }
}

/// Result of evaluating a node.
pub type R = Result<Value, Fail>;

/// Evaluation state for one call of an expression.
pub struct Ev<'a, 'c> {
    pub(crate) ctx: &'a Context<'c>,
    locals: Vec<(Arc<str>, Value)>,
    pub(crate) warnings: Vec<String>,
    depth: usize,
}

impl<'a, 'c> Ev<'a, 'c> {
    /// Fresh state; `input` binds `?` for unary tests.
    pub fn new(ctx: &'a Context<'c>, input: Option<Value>) -> Ev<'a, 'c> {
        let mut locals = Vec::new();
        if let Some(v) = input {
            locals.push((Arc::from("?"), v));
        }
        Ev {
            ctx,
            locals,
            warnings: Vec::new(),
            depth: ctx.depth,
        }
    }

    /// Records a suppressed failure and yields null.
    pub fn null(&mut self, msg: impl Into<String>) -> Value {
        self.warnings.push(msg.into());
        Value::Null
    }

    fn soft(&mut self, r: Result<Value, String>) -> Value {
        match r {
            Ok(v) => v,
            Err(m) => self.null(m),
        }
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.locals.iter().rev().find(|(k, _)| &**k == name) {
            return Some(v.clone());
        }
        self.ctx.variables.get(name)
    }

    /// Evaluates a node.
    pub fn eval(&mut self, e: &Expr) -> R {
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            self.depth -= 1;
            return Err(Fail::Hard(format!(
                "evaluation nests deeper than {MAX_EVAL_DEPTH} levels (recursive function calls?)"
            )));
        }
        let r = self.eval_inner(e);
        self.depth -= 1;
        r
    }

    /// Dispatch only: arms with many temporaries live in their own
    /// functions so that the recursive path keeps small frames.
    fn eval_inner(&mut self, e: &Expr) -> R {
        match e {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Name(n) => Ok(self.name(n)),
            Expr::Input => Ok(self.lookup("?").unwrap_or(Value::Null)),
            Expr::Neg(x) => self.neg(x),
            Expr::Binary(op, a, b) => self.binary_expr(*op, a, b),
            Expr::Chain(first, rest) => self.chain(first, rest),
            Expr::And(operands) => self.logic(operands, false),
            Expr::Or(operands) => self.logic(operands, true),
            Expr::Between(x, lo, hi) => self.between(x, lo, hi),
            Expr::In(x, tests) => {
                let x = self.eval(x)?;
                self.tests(&x, tests)
            }
            Expr::InstanceOf(x, t) => {
                let x = self.eval(x)?;
                Ok(Value::Bool(instance_of(&x, t)))
            }
            Expr::If(c, a, b) => match self.eval(c)? {
                Value::Bool(true) => self.eval(a),
                _ => self.eval(b),
            },
            Expr::For {
                iterations,
                body,
                uses_partial,
            } => self.for_expr(iterations, body, *uses_partial),
            Expr::Quantified {
                every,
                iterations,
                condition,
            } => self.quantified(*every, iterations, condition),
            Expr::List(items) => self.list(items),
            Expr::Context(entries) => self.context(entries),
            Expr::Range {
                start,
                start_included,
                end,
                end_included,
            } => self.range(
                start.as_deref(),
                *start_included,
                end.as_deref(),
                *end_included,
            ),
            Expr::Path(x, key) => {
                let v = self.eval(x)?;
                Ok(self.path(&v, key))
            }
            Expr::Filter(x, f) => {
                let v = self.eval(x)?;
                self.filter(v, f)
            }
            Expr::Call(callee, args) => self.call_expr(callee, args),
            Expr::Function(params, body) => Ok(self.function_value(params, body)),
        }
    }

    /// A function value capturing its environment: the local names and
    /// the variables its body names (variables are not enumerable, so
    /// those the body reads are looked up now).
    #[inline(never)]
    fn function_value(&mut self, params: &[Arc<str>], body: &Arc<Expr>) -> Value {
        let mut captured = self.locals.clone();
        let mut names = Vec::new();
        body.referenced_names(&mut names);
        for n in names {
            if params.contains(&n) || captured.iter().any(|(k, _)| *k == n) {
                continue;
            }
            if let Some(v) = self.ctx.variables.get(&n) {
                captured.insert(0, (n, v));
            }
        }
        Value::Function(Arc::new(Function::User {
            params: params.to_vec(),
            body: body.clone(),
            captured,
        }))
    }

    #[inline(never)]
    fn name(&mut self, n: &str) -> Value {
        match self.lookup(n) {
            Some(v) => v,
            None => match self.dotted(n) {
                Some(v) => v,
                None => self.null(format!("No variable found with name '{n}'")),
            },
        }
    }

    /// A name with dots that is not bound (read as one name because the
    /// model declares it elsewhere) is read as a path: `a.b.c`.
    fn dotted(&mut self, n: &str) -> Option<Value> {
        let mut parts = n.split('.');
        let mut v = self.lookup(parts.next()?.trim())?;
        let mut any = false;
        for key in parts {
            any = true;
            v = self.path(&v, key.trim());
        }
        any.then_some(v)
    }

    #[inline(never)]
    fn neg(&mut self, x: &Expr) -> R {
        let v = self.eval(x)?;
        let r = ops::negate(&v);
        Ok(self.soft(r))
    }

    #[inline(never)]
    fn binary_expr(&mut self, op: BinOp, a: &Expr, b: &Expr) -> R {
        let (a, b) = (self.eval(a)?, self.eval(b)?);
        Ok(self.binary(op, &a, &b))
    }

    #[inline(never)]
    fn chain(&mut self, first: &Expr, rest: &[(BinOp, Expr)]) -> R {
        let mut acc = self.eval(first)?;
        for (op, e) in rest {
            let r = self.eval(e)?;
            acc = self.binary(*op, &acc, &r);
        }
        Ok(acc)
    }

    #[inline(never)]
    fn between(&mut self, x: &Expr, lo: &Expr, hi: &Expr) -> R {
        let (x, lo, hi) = (self.eval(x)?, self.eval(lo)?, self.eval(hi)?);
        Ok(match (compare(&x, &lo), compare(&x, &hi)) {
            (Some(a), Some(b)) => Value::Bool(a != Ordering::Less && b != Ordering::Greater),
            _ => self.null(format!(
                "can't compare {} with {} and {}",
                x.type_name(),
                lo.type_name(),
                hi.type_name()
            )),
        })
    }

    #[inline(never)]
    fn for_expr(
        &mut self,
        iterations: &[(Arc<str>, Iteration)],
        body: &Expr,
        uses_partial: bool,
    ) -> R {
        let mut out = Vec::new();
        self.for_each(iterations, 0, &mut |ev: &mut Ev, _| {
            if out.len() >= MAX_ITEMS {
                return Err(Fail::Hard(format!(
                    "for produces more than {MAX_ITEMS} items"
                )));
            }
            if uses_partial {
                ev.locals
                    .push((Arc::from("partial"), Value::list(out.clone())));
            }
            let v = ev.eval(body);
            if uses_partial {
                ev.locals.pop();
            }
            out.push(v?);
            Ok(true)
        })?;
        Ok(Value::list(out))
    }

    #[inline(never)]
    fn quantified(
        &mut self,
        every: bool,
        iterations: &[(Arc<str>, Iteration)],
        condition: &Expr,
    ) -> R {
        let mut result = every;
        self.for_each(iterations, 0, &mut |ev: &mut Ev, _| {
            let hit = matches!(ev.eval(condition)?, Value::Bool(true));
            if hit != every {
                result = !every;
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(Value::Bool(result))
    }

    #[inline(never)]
    fn list(&mut self, items: &[Expr]) -> R {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            out.push(self.eval(i)?);
        }
        Ok(Value::list(out))
    }

    #[inline(never)]
    fn context(&mut self, entries: &[(Arc<str>, Expr)]) -> R {
        let mark = self.locals.len();
        let mut ctx = Entries::new();
        for (k, e) in entries {
            let v = match self.eval(e) {
                Ok(v) => v,
                Err(f) => {
                    self.locals.truncate(mark);
                    return Err(f);
                }
            };
            self.locals.push((k.clone(), v.clone()));
            ctx.put(k.clone(), v);
        }
        self.locals.truncate(mark);
        Ok(Value::Context(Arc::new(ctx)))
    }

    #[inline(never)]
    fn range(
        &mut self,
        start: Option<&Expr>,
        start_included: bool,
        end: Option<&Expr>,
        end_included: bool,
    ) -> R {
        let start = match start {
            Some(s) => Some(self.eval(s)?),
            None => None,
        };
        let end = match end {
            Some(s) => Some(self.eval(s)?),
            None => None,
        };
        Ok(Value::Range(Arc::new(Range {
            start,
            start_included,
            end,
            end_included,
        })))
    }

    /// Three-valued `and` (`wins` = false) or `or` (`wins` = true):
    /// the first operand equal to `wins` decides; else any non-boolean makes null.
    #[inline(never)]
    fn logic(&mut self, operands: &[Expr], wins: bool) -> R {
        let mut unknown = false;
        for e in operands {
            match self.eval(e)? {
                Value::Bool(b) if b == wins => return Ok(Value::Bool(wins)),
                Value::Bool(_) => {}
                _ => unknown = true,
            }
        }
        Ok(if unknown {
            Value::Null
        } else {
            Value::Bool(!wins)
        })
    }

    #[inline(never)]
    fn binary(&mut self, op: BinOp, a: &Value, b: &Value) -> Value {
        match op {
            BinOp::Eq | BinOp::Ne => match equal(a, b) {
                Some(eq) => Value::Bool(eq == (op == BinOp::Eq)),
                None => self.null(format!(
                    "can't compare {} with {}",
                    a.type_name(),
                    b.type_name()
                )),
            },
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(a, b) {
                Some(o) => Value::Bool(match op {
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::Le => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
                None => self.null(format!(
                    "can't compare {} with {}",
                    a.type_name(),
                    b.type_name()
                )),
            },
            _ => {
                let r = ops::arith(op, a, b);
                self.soft(r)
            }
        }
    }

    /// Calls `f` for each combination of iteration values, outer first;
    /// `f` returns whether to go on.
    fn for_each(
        &mut self,
        its: &[(Arc<str>, Iteration)],
        at: usize,
        f: &mut dyn FnMut(&mut Ev<'a, 'c>, usize) -> Result<bool, Fail>,
    ) -> Result<bool, Fail> {
        let Some((name, it)) = its.get(at) else {
            return f(self, at);
        };
        let items = self.iteration_items(it)?;
        for item in items {
            self.locals.push((name.clone(), item));
            let go = self.for_each(its, at + 1, f);
            self.locals.pop();
            if !go? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    #[inline(never)]
    fn iteration_items(&mut self, it: &Iteration) -> Result<Vec<Value>, Fail> {
        match it {
            Iteration::In(e) => match self.eval(e)? {
                Value::List(l) => Ok(l.as_ref().clone()),
                Value::Range(r) => {
                    if let (Some(a), Some(b)) = (&r.start, &r.end) {
                        if compare(a, b) == Some(Ordering::Greater) {
                            return Err("a range to iterate must not descend".into());
                        }
                    }
                    numeric_span(
                        r.start.as_ref(),
                        r.end.as_ref(),
                        r.start_included,
                        r.end_included,
                    )
                }
                Value::Null => Ok(Vec::new()),
                other => Ok(vec![other]),
            },
            Iteration::Span(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                numeric_span(Some(&a), Some(&b), true, true)
            }
        }
    }

    #[inline(never)]
    fn path(&mut self, v: &Value, key: &str) -> Value {
        match v {
            Value::Null => Value::Null,
            Value::Context(c) => match c.get(key) {
                Some(x) => x.clone(),
                None => self.null(format!("No context entry found with key '{key}'")),
            },
            Value::List(l) => {
                let items = l.iter().map(|x| self.path(x, key)).collect();
                Value::list(items)
            }
            other => match ops::property(other, key) {
                Some(x) => x,
                None => self.null(format!(
                    "No property found with name '{key}' of value '{}'",
                    other.type_name()
                )),
            },
        }
    }

    #[inline(never)]
    fn filter(&mut self, v: Value, f: &Expr) -> R {
        let list = match v {
            Value::List(l) => l,
            Value::Null => return Ok(Value::Null),
            other => Arc::new(vec![other]),
        };
        if let Expr::Literal(Value::Number(n)) = f {
            return Ok(index(&list, n));
        }
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let mark = self.locals.len();
            // The item's own entries shadow `item` (`[{item: 1}][item > 0]`).
            self.locals.push((Arc::from("item"), item.clone()));
            if let Value::Context(c) = item {
                for (k, x) in c.iter() {
                    self.locals.push((k.clone(), x.clone()));
                }
            }
            let r = self.eval(f);
            self.locals.truncate(mark);
            match r? {
                Value::Bool(true) => out.push(item.clone()),
                Value::Number(n) if i == 0 => return Ok(index(&list, &n)),
                _ => {}
            }
        }
        Ok(Value::list(out))
    }

    #[inline(never)]
    fn call_expr(&mut self, callee: &Expr, args: &Args) -> R {
        if let Expr::Name(name) = callee {
            if let Some(f) = self.lookup(name) {
                let args = self.eval_args(args)?;
                return self.call_value(&f, args);
            }
            if &**name == "is defined" {
                return self.is_defined(args);
            }
            if crate::builtins::exists(name) {
                let args = self.eval_args(args)?;
                return crate::builtins::call(self, name, args);
            }
            return Err(Fail::Hard(format!("no function found with name '{name}'")));
        }
        let f = self.eval(callee)?;
        let args = self.eval_args(args)?;
        self.call_value(&f, args)
    }

    #[inline(never)]
    fn is_defined(&mut self, args: &Args) -> R {
        let arg = match args {
            Args::Positional(a) if a.len() == 1 => &a[0],
            Args::Named(a) if a.len() == 1 && &*a[0].0 == "value" => &a[0].1,
            _ => return Err(Fail::Hard(
                "no function found with name 'is defined' and these parameters: expected (value)"
                    .into(),
            )),
        };
        let mark = self.warnings.len();
        let v = self.eval(arg)?;
        self.warnings.truncate(mark);
        Ok(Value::Bool(!v.is_null()))
    }

    #[inline(never)]
    fn eval_args(&mut self, args: &Args) -> Result<EvArgs, Fail> {
        Ok(match args {
            Args::Positional(a) => {
                let mut out = Vec::with_capacity(a.len());
                for e in a {
                    out.push(self.eval(e)?);
                }
                EvArgs::Positional(out)
            }
            Args::Named(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (k, e) in a {
                    out.push((k.clone(), self.eval(e)?));
                }
                EvArgs::Named(out)
            }
        })
    }

    /// Calls a function value with positional arguments.
    pub fn call(&mut self, f: &Value, args: Vec<Value>) -> R {
        self.call_value(f, EvArgs::Positional(args))
    }

    /// Evaluates `e` without the local names in scope (text read at run
    /// time, such as `range("[1..3]")`), on the same depth budget.
    pub fn eval_isolated(&mut self, e: &Expr) -> R {
        let outer = std::mem::take(&mut self.locals);
        let r = self.eval(e);
        self.locals = outer;
        r
    }

    /// Calls a function value with arguments by parameter name.
    pub fn call_named(&mut self, f: &Value, args: Vec<(Arc<str>, Value)>) -> R {
        self.call_value(f, EvArgs::Named(args))
    }

    #[inline(never)]
    fn call_value(&mut self, f: &Value, args: EvArgs) -> R {
        let Value::Function(func) = f else {
            return Err(Fail::Hard(format!(
                "can't invoke a value of type {}: it is not a function",
                f.type_name()
            )));
        };
        match &**func {
            Function::Builtin(name) => crate::builtins::call(self, name, args),
            Function::Native(native) => self.call_native(&**native, args),
            Function::User {
                params,
                body,
                captured,
            } => {
                let mut frame = captured.clone();
                match args {
                    EvArgs::Positional(a) => {
                        let mut a = a.into_iter();
                        for p in params {
                            frame.push((p.clone(), a.next().unwrap_or(Value::Null)));
                        }
                    }
                    EvArgs::Named(mut a) => {
                        for p in params {
                            let v = match a.iter().position(|(k, _)| k == p) {
                                Some(i) => a.swap_remove(i).1,
                                None => Value::Null,
                            };
                            frame.push((p.clone(), v));
                        }
                        if let Some((k, _)) = a.first() {
                            return Err(Fail::Hard(format!(
                                "function has no parameter named '{k}'"
                            )));
                        }
                    }
                }
                let outer = std::mem::replace(&mut self.locals, frame);
                // A call costs a level of its own on top of its body's nodes.
                self.depth += 1;
                let r = self.eval(body);
                self.depth -= 1;
                self.locals = outer;
                r
            }
        }
    }

    #[inline(never)]
    fn call_native(&mut self, native: &dyn crate::value::NativeFunction, args: EvArgs) -> R {
        let params = native.params();
        let values = match args {
            EvArgs::Positional(a) if a.len() != params.len() => {
                return Err(Fail::Hard(format!(
                    "expected {} arguments ({}), got {}",
                    params.len(),
                    params.iter().map(|p| &**p).collect::<Vec<_>>().join(", "),
                    a.len()
                )))
            }
            EvArgs::Positional(a) => a,
            EvArgs::Named(mut a) => {
                let mut out = Vec::with_capacity(params.len());
                for p in params {
                    out.push(match a.iter().position(|(k, _)| k == p) {
                        Some(i) => a.swap_remove(i).1,
                        None => Value::Null,
                    });
                }
                if let Some((k, _)) = a.first() {
                    return Err(Fail::Hard(format!("function has no parameter named '{k}'")));
                }
                out
            }
        };
        if self.depth + 1 > MAX_EVAL_DEPTH {
            return Err(Fail::Hard(format!(
                "evaluation nests deeper than {MAX_EVAL_DEPTH} levels (recursive function calls?)"
            )));
        }
        let ctx = crate::env::Context {
            variables: self.ctx.variables,
            now_ms: self.ctx.now_ms,
            zone: self.ctx.zone,
            depth: self.depth,
        };
        native.invoke(values, &ctx).map_err(Fail::Hard)
    }

    /// Evaluates unary tests against `x`.
    pub fn tests(&mut self, x: &Value, tests: &[Test]) -> R {
        let mut unknown = false;
        for t in tests {
            match self.test(x, t)? {
                Some(true) => return Ok(Value::Bool(true)),
                Some(false) => {}
                None => unknown = true,
            }
        }
        Ok(if unknown {
            Value::Null
        } else {
            Value::Bool(false)
        })
    }

    #[inline(never)]
    fn test(&mut self, x: &Value, t: &Test) -> Result<Option<bool>, Fail> {
        match t {
            Test::Any => Ok(Some(true)),
            Test::Not(inner) => Ok(match self.tests(x, inner)? {
                Value::Bool(b) => Some(!b),
                _ => None,
            }),
            Test::Compare(op, e) => {
                let v = self.with_input(x, e)?;
                Ok(match self.binary(*op, x, &v) {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
            }
            Test::Expr { expr, uses_input } => {
                let v = self.with_input(x, expr)?;
                Ok(match (&v, uses_input) {
                    (Value::Bool(b), true) => Some(*b),
                    (Value::Range(r), _) => r.contains(x),
                    (Value::List(l), _) => {
                        if matches!(x, Value::List(_)) && equal(x, &v) == Some(true) {
                            Some(true)
                        } else {
                            Some(l.iter().any(|i| match i {
                                Value::Range(r) => r.contains(x) == Some(true),
                                _ => equal(x, i) == Some(true),
                            }))
                        }
                    }
                    (Value::Bool(b), false) if !matches!(x, Value::Bool(_)) => Some(*b),
                    _ => equal(x, &v),
                })
            }
        }
    }

    #[inline(never)]
    fn with_input(&mut self, x: &Value, e: &Expr) -> R {
        self.locals.push((Arc::from("?"), x.clone()));
        let r = self.eval(e);
        self.locals.pop();
        r
    }
}

/// Evaluated call arguments.
pub enum EvArgs {
    /// In order.
    Positional(Vec<Value>),
    /// By parameter name.
    Named(Vec<(Arc<str>, Value)>),
}

fn index(list: &[Value], n: &crate::number::Number) -> Value {
    let Some(i) = crate::number::to_i64(n) else {
        return Value::Null;
    };
    let len = list.len() as i64;
    let at = if i > 0 {
        i - 1
    } else if i < 0 {
        len + i
    } else {
        return Value::Null;
    };
    if (0..len).contains(&at) {
        list[at as usize].clone()
    } else {
        Value::Null
    }
}

fn numeric_span(
    a: Option<&Value>,
    b: Option<&Value>,
    a_in: bool,
    b_in: bool,
) -> Result<Vec<Value>, Fail> {
    if let (Some(Value::Date(a)), Some(Value::Date(b))) = (a, b) {
        return date_span(*a, *b, a_in, b_in);
    }
    let (Some(Value::Number(a)), Some(Value::Number(b))) = (a, b) else {
        return Err("iteration range bounds must be numbers or dates".into());
    };
    let (Some(mut a), Some(mut b)) = (crate::number::to_i64(a), crate::number::to_i64(b)) else {
        return Err("iteration range bounds must be integers".into());
    };
    let step = if a <= b { 1 } else { -1 };
    if !a_in {
        a += step;
    }
    if !b_in {
        b -= step;
    }
    if (b - a) * step < 0 {
        return Ok(Vec::new());
    }
    let n = (b - a).unsigned_abs() + 1;
    if n > MAX_ITEMS as u64 {
        return Err(Fail::Hard(format!(
            "iteration range has more than {MAX_ITEMS} items"
        )));
    }
    Ok((0..n as i64).map(|k| Value::int(a + k * step)).collect())
}

/// The days from `a` to `b` (either direction), as `for` iterates them.
fn date_span(
    a: chrono::NaiveDate,
    b: chrono::NaiveDate,
    a_in: bool,
    b_in: bool,
) -> Result<Vec<Value>, Fail> {
    let days = (b - a).num_days();
    if days.unsigned_abs() >= MAX_ITEMS as u64 {
        return Err(Fail::Hard(format!(
            "iteration range has more than {MAX_ITEMS} items"
        )));
    }
    let step = if days >= 0 { 1 } else { -1 };
    let mut out = Vec::new();
    for k in 0..=days.abs() {
        if (k == 0 && !a_in) || (k == days.abs() && !b_in) {
            continue;
        }
        if let Some(d) = a.checked_add_signed(chrono::TimeDelta::days(k * step)) {
            out.push(Value::Date(d));
        }
    }
    Ok(out)
}

/// Whether `v` is an instance of type `t`.
pub fn instance_of(v: &Value, t: &Type) -> bool {
    match t {
        Type::Any => !v.is_null(),
        Type::Named(n) => match n.as_str() {
            "Null" => v.is_null(),
            "days and time duration" => matches!(v, Value::DayTime(_)),
            "years and months duration" => matches!(v, Value::YearMonth(_)),
            "context" => matches!(v, Value::Context(_)),
            "list" => matches!(v, Value::List(_)),
            "range" => matches!(v, Value::Range(_)),
            "function" => matches!(v, Value::Function(_)),
            other => v.type_name() == other,
        },
        Type::List(inner) => match v {
            Value::List(l) => l.iter().all(|x| x.is_null() || instance_of(x, inner)),
            _ => false,
        },
        Type::Context(fields) => match v {
            Value::Context(c) => fields
                .iter()
                .all(|(k, ft)| c.get(k).is_some_and(|x| instance_of(x, ft))),
            _ => false,
        },
        Type::Range(inner) => match v {
            Value::Range(r) => [&r.start, &r.end]
                .iter()
                .all(|b| b.as_ref().is_none_or(|x| instance_of(x, inner))),
            _ => false,
        },
        Type::Function(..) => matches!(v, Value::Function(_)),
    }
}
