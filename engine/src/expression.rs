//! Expressions in a model: a static value, or a FEEL expression (text after a
//! leading `=`), compiled once at deployment and evaluated per instance.
//!
//! FEEL is parsed and evaluated by the dsntk crates. Evaluation builds a FEEL
//! context from the visible variables (JSON text → FEEL values) and converts the
//! result back to JSON. An evaluation that yields a FEEL null carrying an error
//! message (dsntk's way of reporting failures) is an error here.
//!
//! Before dsntk sees a text, [`crate::feel_shape`] bounds its bracket nesting
//! and operator chains (the tree dsntk builds is walked recursively) and cuts
//! out comments; the text without comments is what is kept and evaluated.

use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value as FeelValue;
use dsntk_feel::{FeelNumber, FeelScope, Name};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest expression text accepted in a model.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// Deepest JSON nesting converted to FEEL (deeper values are an error).
pub const MAX_VALUE_DEPTH: usize = 64;
/// Characters of an expression quoted in an error about its shape.
const EXCERPT_CHARS: usize = 80;

/// A compiled FEEL expression.
pub struct FeelExpression {
    source: String,
    /// Variables used as `context put` keys, checked before each evaluation.
    key_bounds: Vec<crate::feel_calls::KeyBound>,
}

impl fmt::Debug for FeelExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "={}", self.source)
    }
}

/// A model attribute value: static text or a FEEL expression.
#[derive(Clone, Debug)]
pub enum Expression {
    /// Used as is.
    Static(Arc<str>),
    /// Evaluated against the visible variables.
    Feel(Arc<FeelExpression>),
}

impl Expression {
    /// Parses an attribute: FEEL if it starts with `=`, else static text.
    pub fn parse(text: &str) -> Result<Expression, String> {
        match text.trim_start().strip_prefix('=') {
            Some(feel) => Self::compile(feel),
            None => Ok(Expression::Static(Arc::from(text))),
        }
    }

    /// Parses text that must be a FEEL expression starting with `=`.
    pub fn parse_feel(text: &str) -> Result<Expression, String> {
        match text.trim_start().strip_prefix('=') {
            Some(feel) => Self::compile(feel),
            None => Err(format!(
                "expected a FEEL expression starting with '=', found '{text}'"
            )),
        }
    }

    fn compile(feel: &str) -> Result<Expression, String> {
        if feel.len() > MAX_EXPRESSION_BYTES {
            return Err(format!(
                "expression of {} bytes exceeds the limit of {MAX_EXPRESSION_BYTES} bytes",
                feel.len()
            ));
        }
        // The parsed tree is walked recursively: bound its depth first.
        let feel =
            crate::feel_shape::check(feel).map_err(|e| format!("'={}': {e}", excerpt(feel)))?;
        let feel: &str = &feel;
        // Calls whose evaluation recursion grows with a run-time value.
        let key_bounds =
            crate::feel_calls::check(feel).map_err(|e| format!("'={}': {e}", excerpt(feel)))?;
        let scope = FeelScope::default();
        let ast = dsntk_feel_parser::parse_expression(&scope, feel, false)
            .map_err(|e| format!("'={feel}' is not a valid FEEL expression: {e}"))?;
        // Function definitions may name external (Java/PMML) functions, which
        // dsntk would call over the network: an engine does no I/O.
        if format!("{ast:?}").contains("FunctionDefinition") {
            return Err(format!(
                "'={feel}': function definitions are not supported in expressions"
            ));
        }
        Ok(Expression::Feel(Arc::new(FeelExpression {
            source: feel.to_string(),
            key_bounds,
        })))
    }

    /// The text of the expression as written in the model.
    pub fn source(&self) -> String {
        match self {
            Expression::Static(s) => s.to_string(),
            Expression::Feel(f) => format!("={}", f.source),
        }
    }

    /// True for static values.
    pub fn is_static(&self) -> bool {
        matches!(self, Expression::Static(_))
    }

    /// Evaluates against `variables` (name, JSON text), innermost scope first;
    /// the first occurrence of a name wins. Static values evaluate to a string.
    pub fn evaluate(&self, variables: &[(&str, &str)]) -> Result<Json, String> {
        match self {
            Expression::Static(s) => Ok(Json::String(s.to_string())),
            Expression::Feel(f) => {
                for bound in &f.key_bounds {
                    bound.check(variables).map_err(|e| {
                        format!("failed to evaluate expression '={}': {e}", f.source)
                    })?;
                }
                let mut ctx = FeelContext::default();
                for (name, text) in variables.iter().rev() {
                    let json: Json = serde_json::from_str(text)
                        .map_err(|e| format!("variable '{name}' is not valid JSON: {e}"))?;
                    ctx.set_entry(&Name::from(*name), json_to_feel(&json, 0)?);
                }
                let scope = FeelScope::from(ctx);
                // FEEL names may contain spaces and operator characters, so dsntk
                // resolves them against the names in scope: parse again with the
                // variables known (the deployment-time parse checked the syntax).
                let ast = dsntk_feel_parser::parse_expression(&scope, &f.source, false)
                    .map_err(|e| format!("failed to parse expression '={}': {e}", f.source))?;
                let result = dsntk_feel_evaluator::evaluate(&scope, &ast);
                if let FeelValue::Null(Some(reason)) = &result {
                    return Err(format!(
                        "failed to evaluate expression '={}': {reason}",
                        f.source
                    ));
                }
                feel_to_json(&result, 0)
                    .map_err(|e| format!("failed to evaluate expression '={}': {e}", f.source))
            }
        }
    }
}

/// The start of a long expression, for error messages.
fn excerpt(feel: &str) -> Cow<'_, str> {
    match feel.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}...", &feel[..end])),
        None => Cow::Borrowed(feel),
    }
}

fn json_to_feel(json: &Json, depth: usize) -> Result<FeelValue, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("value nested deeper than {MAX_VALUE_DEPTH} levels"));
    }
    Ok(match json {
        Json::Null => FeelValue::Null(None),
        Json::Bool(b) => FeelValue::Boolean(*b),
        Json::Number(n) => {
            let number = match n.as_i64() {
                Some(i) => FeelNumber::from(i),
                None => FeelNumber::from_str(&n.to_string())
                    .map_err(|e| format!("number {n} cannot be converted to FEEL: {e}"))?,
            };
            FeelValue::Number(number)
        }
        Json::String(s) => FeelValue::String(s.clone()),
        Json::Array(items) => FeelValue::List(
            items
                .iter()
                .map(|v| json_to_feel(v, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Json::Object(map) => {
            let mut ctx = FeelContext::default();
            for (k, v) in map {
                ctx.set_entry(&Name::from(k.as_str()), json_to_feel(v, depth + 1)?);
            }
            FeelValue::Context(ctx)
        }
    })
}

fn feel_to_json(value: &FeelValue, depth: usize) -> Result<Json, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("value nested deeper than {MAX_VALUE_DEPTH} levels"));
    }
    Ok(match value {
        FeelValue::Null(_) => Json::Null,
        FeelValue::Boolean(b) => Json::Bool(*b),
        FeelValue::Number(n) => {
            let text = n.to_string();
            match text.parse::<i64>() {
                Ok(i) => Json::from(i),
                Err(_) => match text.parse::<f64>() {
                    Ok(f) => serde_json::Number::from_f64(f)
                        .map(Json::Number)
                        .ok_or_else(|| format!("number {text} has no JSON form"))?,
                    Err(_) => return Err(format!("number {text} has no JSON form")),
                },
            }
        }
        FeelValue::String(s) => Json::String(s.clone()),
        FeelValue::List(items) => Json::Array(
            items
                .iter()
                .map(|v| feel_to_json(v, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        FeelValue::Context(ctx) => {
            let mut map = serde_json::Map::new();
            for (name, v) in ctx.iter() {
                map.insert(name.to_string(), feel_to_json(v, depth + 1)?);
            }
            Json::Object(map)
        }
        FeelValue::Date(_)
        | FeelValue::DateTime(_)
        | FeelValue::Time(_)
        | FeelValue::DaysAndTimeDuration(_)
        | FeelValue::YearsAndMonthsDuration(_) => Json::String(value.to_string()),
        other => return Err(format!("result '{other}' cannot be converted to JSON")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, &str)]) -> Result<Json, String> {
        Expression::parse(text)?.evaluate(vars)
    }

    #[test]
    fn static_and_feel_values() {
        assert_eq!(eval("abc", &[]).unwrap(), Json::from("abc"));
        assert_eq!(eval("= 1 + 2", &[]).unwrap(), Json::from(3));
        assert_eq!(eval("=x > 5", &[("x", "7")]).unwrap(), Json::Bool(true));
        assert_eq!(
            eval("=progress = \"in bed\"", &[("progress", "\"in bed\"")]).unwrap(),
            Json::Bool(true)
        );
        assert_eq!(
            eval("=order.total * 2", &[("order", "{\"total\": 2.5}")]).unwrap(),
            Json::from(5)
        );
        assert_eq!(
            eval("={a: x, b: [1, 2]}", &[("x", "\"v\"")]).unwrap(),
            serde_json::json!({"a": "v", "b": [1, 2]})
        );
    }

    #[test]
    fn innermost_variable_wins() {
        assert_eq!(
            eval("=x", &[("x", "1"), ("x", "2")]).unwrap(),
            Json::from(1)
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = Expression::parse("= 1 +").unwrap_err();
        assert!(err.contains("not a valid FEEL expression"), "{err}");
        let err = Expression::parse_feel("x > 1").unwrap_err();
        assert!(err.contains("starting with '='"), "{err}");
    }
}
