//! Decision tables: the parsed table and its evaluation. Inputs are
//! evaluated once, each rule's input entries are tested against them, the
//! matched rules' output entries are evaluated, and the hit policy turns
//! the matches into the result (shapes as Camunda's DMN engine gives them:
//! single hit policies yield a value, multiple hit policies a list, an
//! aggregation a number; one output is its value, several a context).

use crate::eval::Scope;
use crate::model::TypeRef;
use crate::record::{EvaluatedInput, EvaluatedOutput, MatchedRule};
use crate::typing::check_type;
use crate::Graph;
use feel::{Context, Expression, UnaryTests, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// A decision table.
#[derive(Debug)]
pub struct Table {
    /// The hit policy.
    pub hit_policy: HitPolicy,
    /// Input columns.
    pub inputs: Vec<Input>,
    /// Output columns.
    pub outputs: Vec<Output>,
    /// Rules in table order.
    pub rules: Vec<Rule>,
}

/// How matched rules make the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitPolicy {
    /// At most one rule may match.
    Unique,
    /// Matched rules must agree on their outputs.
    Any,
    /// The match with the highest-priority outputs (by output values order).
    Priority,
    /// The first match in rule order.
    First,
    /// All matches in rule order.
    RuleOrder,
    /// All matches in priority order.
    OutputOrder,
    /// All matches, optionally aggregated.
    Collect(Option<Aggregation>),
}

/// Aggregation of a collect table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// `C+`: sum.
    Sum,
    /// `C<`: minimum.
    Min,
    /// `C>`: maximum.
    Max,
    /// `C#`: number of distinct values.
    Count,
}

/// An input column.
#[derive(Debug)]
pub struct Input {
    /// `id` of the `input` element.
    pub id: Arc<str>,
    /// Label, else the input expression's text.
    pub name: Arc<str>,
    /// The input expression.
    pub expression: Expression,
    /// Its declared type.
    pub type_ref: TypeRef,
    /// Allowed input values.
    pub values: Option<UnaryTests>,
}

/// An output column.
#[derive(Debug)]
pub struct Output {
    /// `id` of the `output` element.
    pub id: Arc<str>,
    /// Output name (the context key for several outputs).
    pub name: Arc<str>,
    /// Declared type.
    pub type_ref: TypeRef,
    /// Allowed output values as tests.
    pub values: Option<UnaryTests>,
    /// Output values in priority order (for `P` and `O`).
    pub priority: Option<Expression>,
    /// Output when no rule matches.
    pub default: Option<Expression>,
}

/// A rule.
#[derive(Debug)]
pub struct Rule {
    /// `id` of the `rule` element.
    pub id: Arc<str>,
    /// One test per input.
    pub input_entries: Vec<UnaryTests>,
    /// One expression per output (`None`: empty, null).
    pub output_entries: Vec<Option<Expression>>,
}

/// What evaluating a table reports besides its value.
#[derive(Debug, Default)]
pub struct TableTrace {
    /// Evaluated inputs, in column order.
    pub inputs: Vec<EvaluatedInput>,
    /// Matched rules, in rule order (what the hit policy selected).
    pub rules: Vec<MatchedRule>,
}

fn run(e: &Expression, ctx: &Context, what: impl Fn() -> String) -> Result<Value, String> {
    let o = e.evaluate_detailed(ctx);
    match o.failure {
        Some(f) => Err(format!("failed to evaluate expression '{}': {f}", what())),
        None => Ok(o.value),
    }
}

impl Table {
    /// Evaluates the table in `scope`.
    pub(crate) fn evaluate(
        &self,
        graph: &Graph,
        scope: &Scope,
        ctx: &Context,
        trace: &mut TableTrace,
    ) -> Result<Value, String> {
        let ctx = ctx.with_variables(scope);
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let v = run(&input.expression, &ctx, || input.name.to_string())?;
            let v = check_type(graph, &input.type_ref, v);
            if let Some(values) = &input.values {
                if !v.is_null() && !values.matches(&v, &ctx) {
                    return Err(format!(
                        "Input value '{v}' of input '{}' is not one of its input values",
                        input.name
                    ));
                }
            }
            trace.inputs.push(EvaluatedInput {
                id: input.id.clone(),
                name: input.name.clone(),
                value: v.clone(),
            });
            inputs.push(v);
        }
        let mut matched: Vec<(usize, Vec<Value>)> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let hit = rule
                .input_entries
                .iter()
                .zip(&inputs)
                .all(|(t, v)| t.matches(v, &ctx));
            if !hit {
                continue;
            }
            let mut outs = Vec::with_capacity(self.outputs.len());
            for (o, e) in self.outputs.iter().zip(&rule.output_entries) {
                let v = match e {
                    Some(e) => run(e, &ctx, || format!("output entry of rule '{}'", rule.id))?,
                    None => Value::Null,
                };
                outs.push(self.check_output(graph, o, v, &ctx));
            }
            matched.push((index, outs));
            if self.hit_policy == HitPolicy::First {
                break;
            }
        }
        let selected = self.select(matched, &ctx)?;
        for (index, outs) in &selected {
            let rule = &self.rules[*index];
            trace.rules.push(MatchedRule {
                id: rule.id.clone(),
                index: index + 1,
                outputs: self
                    .outputs
                    .iter()
                    .zip(outs)
                    .map(|(o, v)| EvaluatedOutput {
                        id: o.id.clone(),
                        name: o.name.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            });
        }
        if selected.is_empty() {
            return self.default_result(graph, &ctx);
        }
        let rows: Vec<Value> = selected.into_iter().map(|(_, o)| self.row(o)).collect();
        Ok(match self.hit_policy {
            HitPolicy::Unique | HitPolicy::Any | HitPolicy::Priority | HitPolicy::First => {
                rows.into_iter().next().unwrap_or(Value::Null)
            }
            HitPolicy::RuleOrder | HitPolicy::OutputOrder | HitPolicy::Collect(None) => {
                Value::list(rows)
            }
            HitPolicy::Collect(Some(a)) => aggregate(a, rows, &ctx)?,
        })
    }

    fn check_output(&self, graph: &Graph, o: &Output, v: Value, ctx: &Context) -> Value {
        let v = check_type(graph, &o.type_ref, v);
        match &o.values {
            Some(values) if !v.is_null() && !values.matches(&v, ctx) => Value::Null,
            _ => v,
        }
    }

    /// One matched rule's result: its value, or a context of its outputs.
    fn row(&self, outs: Vec<Value>) -> Value {
        if self.outputs.len() == 1 {
            return outs.into_iter().next().unwrap_or(Value::Null);
        }
        let mut e = feel::Entries::new();
        for (o, v) in self.outputs.iter().zip(outs) {
            e.put(o.name.clone(), v);
        }
        Value::Context(Arc::new(e))
    }

    fn default_result(&self, graph: &Graph, ctx: &Context) -> Result<Value, String> {
        if self.outputs.iter().all(|o| o.default.is_none()) {
            return Ok(match self.hit_policy {
                HitPolicy::RuleOrder | HitPolicy::OutputOrder | HitPolicy::Collect(None) => {
                    Value::list(Vec::new())
                }
                HitPolicy::Collect(Some(Aggregation::Count)) => Value::int(0),
                _ => Value::Null,
            });
        }
        let mut outs = Vec::new();
        for o in &self.outputs {
            let v = match &o.default {
                Some(e) => run(e, ctx, || format!("default output entry of '{}'", o.name))?,
                None => Value::Null,
            };
            outs.push(check_type(graph, &o.type_ref, v));
        }
        Ok(self.row(outs))
    }

    /// Applies the hit policy's selection to the matches (rule order).
    fn select(
        &self,
        mut matched: Vec<(usize, Vec<Value>)>,
        ctx: &Context,
    ) -> Result<Vec<(usize, Vec<Value>)>, String> {
        match self.hit_policy {
            HitPolicy::Unique if matched.len() > 1 => {
                let values: Vec<String> = matched
                    .iter()
                    .map(|(_, o)| self.row(o.clone()).to_string())
                    .collect();
                Err(format!(
                    "multiple values aren't allowed for UNIQUE hit policy. found: '[{}]'",
                    values.join(", ")
                ))
            }
            HitPolicy::Any if matched.len() > 1 => {
                let first = self.row(matched[0].1.clone());
                for (_, o) in &matched[1..] {
                    let r = self.row(o.clone());
                    if feel_equal(&first, &r) != Some(true) {
                        return Err(format!(
                            "different values aren't allowed for ANY hit policy. found: '{first}' and '{r}'"
                        ));
                    }
                }
                matched.truncate(1);
                Ok(matched)
            }
            HitPolicy::Priority | HitPolicy::OutputOrder if matched.len() > 1 => {
                let priorities = self.priorities(ctx);
                let key = |outs: &[Value]| -> Vec<usize> {
                    outs.iter()
                        .zip(&priorities)
                        .map(|(v, p)| {
                            p.iter()
                                .position(|x| feel_equal(x, v) == Some(true))
                                .unwrap_or(usize::MAX)
                        })
                        .collect()
                };
                matched.sort_by(|a, b| key(&a.1).cmp(&key(&b.1)).then(a.0.cmp(&b.0)));
                if self.hit_policy == HitPolicy::Priority {
                    matched.truncate(1);
                }
                Ok(matched)
            }
            _ => Ok(matched),
        }
    }

    /// Each output's values in priority order (empty when not given).
    fn priorities(&self, ctx: &Context) -> Vec<Vec<Value>> {
        self.outputs
            .iter()
            .map(|o| match o.priority.as_ref().map(|e| e.evaluate(ctx)) {
                Some(Value::List(l)) => l.as_ref().clone(),
                _ => Vec::new(),
            })
            .collect()
    }
}

fn feel_equal(a: &Value, b: &Value) -> Option<bool> {
    match feel::compare_values(a, b) {
        Some(o) => Some(o == Ordering::Equal),
        None => feel::equal_values(a, b),
    }
}

fn aggregate(a: Aggregation, rows: Vec<Value>, ctx: &Context) -> Result<Value, String> {
    let name = match a {
        Aggregation::Count => {
            let mut distinct: Vec<Value> = Vec::new();
            for r in rows {
                if !distinct.iter().any(|d| feel_equal(d, &r) == Some(true)) {
                    distinct.push(r);
                }
            }
            return Ok(Value::int(distinct.len() as i64));
        }
        Aggregation::Sum => "sum",
        Aggregation::Min => "min",
        Aggregation::Max => "max",
    };
    let items: Vec<Value> = rows.into_iter().filter(|v| !v.is_null()).collect();
    if items.is_empty() {
        return Ok(Value::Null);
    }
    let f = Value::Function(Arc::new(feel::Function::Builtin(name)));
    let o = feel::invoke(&f, vec![Value::list(items)], ctx);
    match o.failure {
        Some(m) => Err(format!(
            "failed to aggregate the outputs with '{name}': {m}"
        )),
        None => Ok(o.value),
    }
}
