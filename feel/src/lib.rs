//! FEEL (DMN 1.5, Camunda dialect) as a sans-IO, deterministic core:
//! compile text once into an [`Expression`], evaluate it many times against
//! a [`Context`] that supplies variables, the current instant and the
//! default time zone. No clock, host time zone, network, threads or async.

mod ast;
mod builtins;
mod display;
mod env;
mod error;
mod eval;
mod json;
mod lexer;
mod number;
mod ops;
mod parser;
mod temporal;
mod value;

pub use env::{Context, JsonTextVariables, NoVariables, UnknownZone, Variables};
pub use error::{EvalError, ParseError};
pub use eval::{MAX_EVAL_DEPTH, MAX_ITEMS};
pub use json::{from_json, to_json, MAX_VALUE_DEPTH};
pub use lexer::MAX_SOURCE_BYTES;
pub use number::{Number, DECIMAL_DIGITS};
pub use parser::MAX_NESTING_DEPTH;
pub use temporal::{DateTime, Time, Zone};
pub use value::{Entries, Function, NativeFunction, Range, Value};

use eval::{Ev, Fail};

// Compiled expressions and values are shared across threads by the engine.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Expression>();
    shareable::<UnaryTests>();
    shareable::<Value>();
};

/// FEEL equality (`=`): `Some(bool)`, or `None` when the types are not comparable.
pub fn equal_values(a: &Value, b: &Value) -> Option<bool> {
    value::equal(a, b)
}

/// FEEL ordering of two values of one ordered type, else `None`.
pub fn compare_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    value::compare(a, b)
}

/// Names of all built-in functions, in table order.
pub fn builtin_names() -> Vec<&'static str> {
    builtins::names()
}

/// A compiled FEEL expression. Immutable; share it between evaluations.
#[derive(Debug)]
pub struct Expression {
    root: ast::Expr,
}

/// The outcome of an evaluation with its suppressed failures.
#[derive(Debug)]
pub struct Outcome {
    /// The value (null if evaluation failed).
    pub value: Value,
    /// Suppressed failures (operations that yielded null), in order.
    pub warnings: Vec<String>,
    /// The evaluation failure, if any (unknown function, failed `assert`, limit).
    pub failure: Option<String>,
}

/// Parses FEEL text into an [`Expression`].
pub fn compile(text: &str) -> Result<Expression, ParseError> {
    compile_with_names(text, &KnownNames::default())
}

/// Parses DMN unary tests (a decision table input entry) into [`UnaryTests`].
pub fn compile_unary_tests(text: &str) -> Result<UnaryTests, ParseError> {
    compile_unary_tests_with_names(text, &KnownNames::default())
}

/// Names in scope that contain spaces or operator characters (`Monthly
/// Salary`, `Is Affordable?`), as a DMN model declares them. FEEL text
/// compiled with them reads such a name as one name without backticks,
/// as the DMN specification's grammar resolves names against the scope.
#[derive(Clone, Debug, Default)]
pub struct KnownNames {
    /// Longest first.
    names: Vec<String>,
}

impl KnownNames {
    /// The names that need it (plain names are read as names anyway).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> KnownNames {
        let mut names: Vec<String> = names
            .into_iter()
            .map(str::trim)
            .filter(|n| {
                n.chars()
                    .any(|c| !(c.is_alphanumeric() || c == '_' || c == '$'))
            })
            .filter(|n| !n.contains('`') && !n.contains('"'))
            .map(str::to_string)
            .collect();
        names.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        names.dedup();
        KnownNames { names }
    }
}

/// Parses FEEL text, reading the given names as single names.
pub fn compile_with_names(text: &str, names: &KnownNames) -> Result<Expression, ParseError> {
    Ok(Expression {
        root: parser::parse_expression(text, &names.names)?,
    })
}

/// Parses unary tests, reading the given names as single names.
pub fn compile_unary_tests_with_names(
    text: &str,
    names: &KnownNames,
) -> Result<UnaryTests, ParseError> {
    Ok(UnaryTests {
        tests: parser::parse_unary_tests(text, &names.names)?,
    })
}

fn outcome(r: Result<Value, Fail>, ev: Ev) -> Outcome {
    let mut warnings = ev.warnings;
    match r {
        Ok(value) => Outcome {
            value,
            warnings,
            failure: None,
        },
        Err(Fail::Soft(m)) => {
            warnings.push(m);
            Outcome {
                value: Value::Null,
                warnings,
                failure: None,
            }
        }
        Err(Fail::Hard(m)) => Outcome {
            value: Value::Null,
            warnings,
            failure: Some(m),
        },
    }
}

impl Outcome {
    /// The value, or the failure with its preceding warnings.
    pub fn into_result(self) -> Result<Value, EvalError> {
        match self.failure {
            None => Ok(self.value),
            Some(message) => Err(EvalError {
                message,
                warnings: self.warnings,
            }),
        }
    }
}

impl Expression {
    /// Evaluates; failures yield null (see [`Expression::evaluate_detailed`]).
    pub fn evaluate(&self, ctx: &Context) -> Value {
        self.evaluate_detailed(ctx).value
    }

    /// Evaluates and reports suppressed failures and any evaluation failure.
    pub fn evaluate_detailed(&self, ctx: &Context) -> Outcome {
        let mut ev = Ev::new(ctx, None);
        let r = ev.eval(&self.root);
        outcome(r, ev)
    }

    /// Evaluates; an evaluation failure (unknown function, failed `assert`,
    /// exceeded limit) is an error, as feel-scala reports it.
    pub fn evaluate_strict(&self, ctx: &Context) -> Result<Value, EvalError> {
        self.evaluate_detailed(ctx).into_result()
    }
}

/// Calls a function value (built-in, FEEL-defined or host) with positional
/// arguments; a value that is not a function is a failure.
pub fn invoke(function: &Value, args: Vec<Value>, ctx: &Context) -> Outcome {
    let mut ev = Ev::new(ctx, None);
    let r = ev.call(function, args);
    outcome(r, ev)
}

/// Calls a function value with arguments by parameter name.
pub fn invoke_named(
    function: &Value,
    args: Vec<(std::sync::Arc<str>, Value)>,
    ctx: &Context,
) -> Outcome {
    let mut ev = Ev::new(ctx, None);
    let r = ev.call_named(function, args);
    outcome(r, ev)
}

/// Compiled unary tests, matched against an input value (`?`).
#[derive(Debug)]
pub struct UnaryTests {
    tests: Vec<ast::Test>,
}

impl UnaryTests {
    /// Whether `input` satisfies the tests: `Bool`, or null when undecidable.
    pub fn evaluate(&self, input: &Value, ctx: &Context) -> Outcome {
        let mut ev = Ev::new(ctx, Some(input.clone()));
        let r = ev.tests(input, &self.tests);
        outcome(r, ev)
    }

    /// Whether `input` satisfies the tests (null and failures count as no).
    pub fn matches(&self, input: &Value, ctx: &Context) -> bool {
        matches!(self.evaluate(input, ctx).value, Value::Bool(true))
    }
}
