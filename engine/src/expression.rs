//! Expressions in a model: a static value, or a FEEL expression (text after a
//! leading `=`), compiled once at deployment and evaluated per instance.
//!
//! FEEL is the workspace's own `feel` crate: parsed once into a tree whose
//! depth is bounded, evaluated against the visible variables (their JSON text
//! is converted only when an expression names them). The current instant is
//! the timestamp of the command being processed and the time zone is the
//! engine's configured one, so every replica computes the same value.
//!
//! Failures follow Zeebe: a missing variable or an operation on the wrong
//! types gives null (the caller's type check then reports it, with the
//! suppressed failures as warnings); an evaluation failure (an unknown
//! function, a failed `assert`, an exceeded limit) is an error.

use serde_json::Value as Json;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Longest expression text accepted in a model.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// Characters of an expression quoted in an error about it.
const EXCERPT_CHARS: usize = 80;

/// What an evaluation reads besides the variables: the current instant (the
/// command's timestamp, epoch ms) and the default time zone.
#[derive(Clone, Debug)]
pub struct Clock {
    /// The current instant, epoch milliseconds.
    pub now_ms: i64,
    /// IANA zone name or offset; `None` is UTC.
    pub zone: Option<Arc<str>>,
}

impl Clock {
    /// The instant `now_ms` in UTC.
    pub fn utc(now_ms: i64) -> Clock {
        Clock { now_ms, zone: None }
    }
}

/// Checks a time zone name for [`Clock::zone`].
pub fn check_time_zone(name: &str) -> Result<(), String> {
    feel::Context::new(&feel::NoVariables, 0)
        .with_zone(name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A compiled FEEL expression.
pub struct FeelExpression {
    source: String,
    compiled: feel::Expression,
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
        let compiled = feel::compile(feel).map_err(|e| {
            format!(
                "'={}' is not a valid FEEL expression: {e}",
                excerpt(feel.trim())
            )
        })?;
        Ok(Expression::Feel(Arc::new(FeelExpression {
            source: feel.trim().to_string(),
            compiled,
        })))
    }

    /// The text of the expression as written in the model.
    pub fn source(&self) -> String {
        match self {
            Expression::Static(s) => s.to_string(),
            Expression::Feel(f) => format!("={}", f.source),
        }
    }

    /// The variable an expression reads when it is nothing but a variable
    /// or a path into one (`=result`, `=order.total`), or a static name.
    pub fn variable_name(&self) -> Option<&str> {
        let text: &str = match self {
            Expression::Static(s) => s,
            Expression::Feel(f) => &f.source,
        };
        let is_name = |part: &str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        let first = text.split('.').next()?;
        (text.split('.').all(is_name) && !matches!(first, "null" | "true" | "false"))
            .then_some(first)
    }

    /// True for static values.
    pub fn is_static(&self) -> bool {
        matches!(self, Expression::Static(_))
    }

    /// Evaluates against `variables` (name, JSON text), innermost scope first;
    /// the first occurrence of a name wins. Static values evaluate to a string.
    /// A null result from suppressed failures is `Ok(Null)`; see
    /// [`Expression::evaluate_detailed`] for the warnings.
    pub fn evaluate(&self, variables: &[(&str, &str)], clock: &Clock) -> Result<Json, String> {
        self.evaluate_detailed(variables, clock).map(|(v, _)| v)
    }

    /// As [`Expression::evaluate`], with the suppressed failures (a missing
    /// variable, an operation on wrong types) that produced nulls, for the
    /// message of a type mismatch.
    pub fn evaluate_detailed(
        &self,
        variables: &[(&str, &str)],
        clock: &Clock,
    ) -> Result<(Json, Vec<String>), String> {
        let f = match self {
            Expression::Static(s) => return Ok((Json::String(s.to_string()), Vec::new())),
            Expression::Feel(f) => f,
        };
        let vars = feel::JsonTextVariables(variables);
        let mut ctx = feel::Context::new(&vars, clock.now_ms);
        if let Some(zone) = &clock.zone {
            ctx = ctx.with_zone(zone).map_err(|e| e.to_string())?;
        }
        let outcome = f.compiled.evaluate_detailed(&ctx);
        if let Some(failure) = outcome.failure {
            return Err(format!(
                "failed to evaluate expression '={}': {failure}",
                excerpt(&f.source)
            ));
        }
        Ok((feel::to_json(&outcome.value), outcome.warnings))
    }
}

/// The start of a long expression, for error messages.
fn excerpt(feel: &str) -> Cow<'_, str> {
    match feel.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}...", &feel[..end])),
        None => Cow::Borrowed(feel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, &str)]) -> Result<Json, String> {
        Expression::parse(text)?.evaluate(vars, &Clock::utc(0))
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
    fn missing_variables_are_null_with_a_warning() {
        let e = Expression::parse("=missing").unwrap();
        let (value, warnings) = e.evaluate_detailed(&[], &Clock::utc(0)).unwrap();
        assert_eq!(value, Json::Null);
        assert!(
            warnings.iter().any(|w| w.contains("missing")),
            "{warnings:?}"
        );
    }

    #[test]
    fn failures_are_errors_naming_the_expression() {
        let err = eval("=no such function(1)", &[]).unwrap_err();
        assert!(err.contains("'=no such function(1)'"), "{err}");
    }

    #[test]
    fn now_is_the_clock_in_its_zone() {
        let e = Expression::parse("=string(now())").unwrap();
        let utc = e.evaluate(&[], &Clock::utc(86_400_000)).unwrap();
        assert!(
            utc.as_str().unwrap().starts_with("1970-01-02T00:00"),
            "{utc}"
        );
        let berlin = Clock {
            now_ms: 86_400_000,
            zone: Some(Arc::from("Europe/Berlin")),
        };
        let there = e.evaluate(&[], &berlin).unwrap();
        assert!(
            there.as_str().unwrap().starts_with("1970-01-02T01:00"),
            "{there}"
        );
        assert_eq!(
            Expression::parse("=string(today())")
                .unwrap()
                .evaluate(&[], &Clock::utc(86_400_000 * 365))
                .unwrap(),
            Json::from("1971-01-01")
        );
        assert!(check_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn variable_names_of_plain_references() {
        let name = |t: &str| {
            Expression::parse(t)
                .unwrap()
                .variable_name()
                .map(String::from)
        };
        assert_eq!(name("=result").as_deref(), Some("result"));
        assert_eq!(name("= order.total").as_deref(), Some("order"));
        assert_eq!(name("plain").as_deref(), Some("plain"));
        assert_eq!(name("=a + 1"), None);
        assert_eq!(name("=null"), None);
        assert_eq!(name("=f(x)"), None);
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = Expression::parse("= 1 +").unwrap_err();
        assert!(err.contains("not a valid FEEL expression"), "{err}");
        let err = Expression::parse_feel("x > 1").unwrap_err();
        assert!(err.contains("starting with '='"), "{err}");
    }
}
