//! Evaluation of decisions and boxed expressions. A run evaluates the
//! requested decision's required decisions first (each once), binds
//! required inputs (conformed to their types), required decisions' results
//! and required knowledge (as FEEL function values) by name, then the
//! decision logic. Decision requirement recursion is bounded by the parser
//! (chain length); function calls share FEEL's depth budget.

use crate::functions::invocable_value;
use crate::model::{Boxed, BoxedKind};
use crate::record::{EvaluatedDecision, EvaluationFailure, EvaluationResult};
use crate::table::TableTrace;
use crate::typing::check_type;
use crate::Graph;
use feel::{Context, Entries, Value, Variables};
use std::sync::Arc;

/// Names bound by the DMN layer over the caller's variables.
pub struct Scope<'p> {
    /// Local names, later ones shadow earlier ones.
    pub locals: Vec<(Arc<str>, Value)>,
    /// The caller's variables (or none, inside a function).
    pub outer: &'p dyn Variables,
}

impl Variables for Scope<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        match self.locals.iter().rev().find(|(k, _)| &**k == name) {
            Some((_, v)) => Some(v.clone()),
            None => self.outer.get(name),
        }
    }
}

impl<'p> Scope<'p> {
    /// A scope with the same names plus `name`.
    fn with(&self, name: Arc<str>, v: Value) -> Scope<'p> {
        let mut locals = self.locals.clone();
        locals.push((name, v));
        Scope {
            locals,
            outer: self.outer,
        }
    }
}

/// One evaluation of decisions: results so far and the records.
pub struct Run<'g> {
    pub(crate) graph: &'g Arc<Graph>,
    pub(crate) variables: &'g dyn Variables,
    /// Results by decision index (pre-set for a service's input decisions).
    pub(crate) results: Vec<Option<Value>>,
    pub(crate) records: Vec<EvaluatedDecision>,
}

/// Evaluates decision `index` of `graph`.
pub fn evaluate(
    graph: &Arc<Graph>,
    index: usize,
    variables: &dyn Variables,
    now_ms: i64,
    zone: &str,
) -> Result<EvaluationResult, EvaluationFailure> {
    let id = &graph.decisions[index].id;
    let ctx = Context::new(variables, now_ms)
        .with_zone(zone)
        .map_err(|e| EvaluationFailure {
            decision_id: id.clone(),
            message: format!("Expected to evaluate decision '{id}', but {e}"),
        })?;
    let mut run = Run::new(graph, variables);
    let output = run.decision(index, &ctx)?;
    Ok(EvaluationResult {
        output,
        decisions: run.records,
    })
}

impl<'g> Run<'g> {
    /// A fresh run over `variables`.
    pub fn new(graph: &'g Arc<Graph>, variables: &'g dyn Variables) -> Run<'g> {
        Run {
            graph,
            variables,
            results: vec![None; graph.decisions.len()],
            records: Vec::new(),
        }
    }

    /// Evaluates decision `index` (once per run), required decisions first.
    pub fn decision(&mut self, index: usize, ctx: &Context) -> Result<Value, EvaluationFailure> {
        if let Some(v) = &self.results[index] {
            return Ok(v.clone());
        }
        let graph = self.graph;
        let d = &graph.decisions[index];
        let fail = |message: String| EvaluationFailure {
            decision_id: d.id.clone(),
            message: format!("Expected to evaluate decision '{}', but {message}", d.id),
        };
        let mut locals = Vec::new();
        for &r in &d.required_decisions {
            let v = self.decision(r, ctx)?;
            locals.push((graph.decisions[r].name.clone(), v));
        }
        for &i in &d.required_inputs {
            let input = &graph.inputs[i];
            if let Some(v) = self.variables.get(&input.name) {
                locals.push((input.name.clone(), check_type(graph, &input.type_ref, v)));
            }
        }
        for k in &d.required_knowledge {
            let (name, f) = invocable_value(graph, *k);
            locals.push((name, f));
        }
        let scope = Scope {
            locals,
            outer: self.variables,
        };
        let mut trace = TableTrace::default();
        let (value, kind) = match &d.logic {
            None => (Value::Null, "UNKNOWN"),
            Some(b) => {
                let v = match &b.kind {
                    BoxedKind::Table(t) => t
                        .evaluate(graph, &scope, ctx, &mut trace)
                        .map(|v| check_type(graph, &b.type_ref, v)),
                    _ => eval_boxed(graph, b, &scope, ctx),
                }
                .map_err(fail)?;
                (v, b.kind.type_name())
            }
        };
        let value = check_type(graph, &d.type_ref, value);
        self.results[index] = Some(value.clone());
        self.records.push(EvaluatedDecision {
            id: d.id.clone(),
            name: d.name.clone(),
            decision_type: kind,
            output: value.clone(),
            inputs: trace.inputs,
            matched_rules: trace.rules,
        });
        Ok(value)
    }
}

/// Evaluates a boxed expression in `scope`; the result conforms to its type.
pub fn eval_boxed(
    graph: &Arc<Graph>,
    b: &Boxed,
    scope: &Scope,
    ctx: &Context,
) -> Result<Value, String> {
    let v = eval_kind(graph, b, scope, ctx)?;
    Ok(check_type(graph, &b.type_ref, v))
}

fn eval_opt(
    graph: &Arc<Graph>,
    b: &Option<Boxed>,
    scope: &Scope,
    ctx: &Context,
) -> Result<Value, String> {
    match b {
        Some(b) => eval_boxed(graph, b, scope, ctx),
        None => Ok(Value::Null),
    }
}

/// The items of an iterator's or filter's collection, which must be a list.
fn items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::List(l) => Ok(l.as_ref().clone()),
        other => Err(format!(
            "expected a list to iterate but found {}",
            other.type_name()
        )),
    }
}

/// A condition's value, which must be a boolean.
fn condition(v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(format!(
            "expected the condition to be a boolean but found {}",
            other.type_name()
        )),
    }
}

fn eval_kind(graph: &Arc<Graph>, b: &Boxed, scope: &Scope, ctx: &Context) -> Result<Value, String> {
    match &b.kind {
        BoxedKind::Literal(None, _) => Ok(Value::Null),
        BoxedKind::Literal(Some(e), text) => {
            let o = e.evaluate_detailed(&ctx.with_variables(scope));
            match o.failure {
                Some(f) => Err(format!("failed to evaluate expression '{text}': {f}")),
                None => Ok(o.value),
            }
        }
        BoxedKind::Table(t) => t.evaluate(graph, scope, ctx, &mut TableTrace::default()),
        BoxedKind::Invalid(m) => Err(m.clone()),
        BoxedKind::Context(entries) => {
            let mut inner = Scope {
                locals: scope.locals.clone(),
                outer: scope.outer,
            };
            let mut out = Entries::new();
            for e in entries {
                let v = eval_opt(graph, &e.value, &inner, ctx)?;
                match &e.variable {
                    Some((name, t)) => {
                        let v = check_type(graph, t, v);
                        inner.locals.push((name.clone(), v.clone()));
                        out.put(name.clone(), v);
                    }
                    None => return Ok(v),
                }
            }
            Ok(Value::Context(Arc::new(out)))
        }
        BoxedKind::Invocation { callee, bindings } => {
            let f = callee.evaluate(&ctx.with_variables(scope));
            let mut args = Vec::with_capacity(bindings.len());
            for (name, e) in bindings {
                args.push((name.clone(), eval_opt(graph, e, scope, ctx)?));
            }
            let o = feel::invoke_named(&f, args, &ctx.with_variables(scope));
            match o.failure {
                Some(m) => Err(format!("failed to invoke function: {m}")),
                None => Ok(o.value),
            }
        }
        BoxedKind::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(eval_boxed(graph, i, scope, ctx)?);
            }
            Ok(Value::list(out))
        }
        BoxedKind::Relation { columns, rows } => {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut e = Entries::new();
                for (c, cell) in columns.iter().zip(row) {
                    e.put(c.clone(), eval_boxed(graph, cell, scope, ctx)?);
                }
                out.push(Value::Context(Arc::new(e)));
            }
            Ok(Value::list(out))
        }
        BoxedKind::Function(def) => Ok(crate::functions::closure(graph, def, scope)),
        BoxedKind::Conditional(parts) => {
            let [c, t, e] = &**parts;
            // Null (an unknown condition) takes the else branch, as FEEL's `if`.
            match eval_boxed(graph, c, scope, ctx)? {
                Value::Bool(true) => eval_boxed(graph, t, scope, ctx),
                Value::Bool(false) | Value::Null => eval_boxed(graph, e, scope, ctx),
                other => Err(format!(
                    "expected the condition to be a boolean but found {}",
                    other.type_name()
                )),
            }
        }
        BoxedKind::For {
            var,
            collection,
            body,
        } => {
            let mut out = Vec::new();
            for item in items(eval_boxed(graph, collection, scope, ctx)?)? {
                out.push(eval_boxed(
                    graph,
                    body,
                    &scope.with(var.clone(), item),
                    ctx,
                )?);
            }
            Ok(Value::list(out))
        }
        BoxedKind::Quantified {
            every,
            var,
            collection,
            condition,
        } => {
            for item in items(eval_boxed(graph, collection, scope, ctx)?)? {
                let hit = eval_boxed(graph, condition, &scope.with(var.clone(), item), ctx)?;
                if self::condition(hit)? != *every {
                    return Ok(Value::Bool(!every));
                }
            }
            Ok(Value::Bool(*every))
        }
        BoxedKind::Filter {
            collection,
            condition,
        } => {
            let mut out = Vec::new();
            for item in items(eval_boxed(graph, collection, scope, ctx)?)? {
                let mut inner = Scope {
                    locals: scope.locals.clone(),
                    outer: scope.outer,
                };
                inner.locals.push((Arc::from("item"), item.clone()));
                if let Value::Context(c) = &item {
                    for (k, x) in c.iter() {
                        inner.locals.push((k.clone(), x.clone()));
                    }
                }
                if self::condition(eval_boxed(graph, condition, &inner, ctx)?)? {
                    out.push(item);
                }
            }
            Ok(Value::list(out))
        }
    }
}
