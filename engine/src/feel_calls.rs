//! Built-in calls whose evaluation recursion grows with a run-time value.
//!
//! dsntk's `context put(context, keys, value)` builds the nested context by
//! recursing once per key, so a key list of 100,000 strings (from a variable
//! or a `for` loop) exhausts a shard's stack, which no handler can catch.
//! Every `context put` call in an expression is therefore checked before the
//! expression is accepted: its `keys` argument must be a string literal, a
//! list literal of at most [`MAX_CONTEXT_PUT_KEYS`] string literals, or a
//! variable name or path, whose value is checked against the same limit
//! before each evaluation (see [`KeyBound::check`]). Anything else is refused
//! at deployment, naming the call.
//!
//! The scan works on the text the parser gets (comments already cut out by
//! [`crate::feel_shape`]) with an explicit bracket stack: no recursion.

use serde_json::Value as Json;

/// Most keys one `context put` may nest.
pub const MAX_CONTEXT_PUT_KEYS: usize = 64;

/// A variable (name, then path segments) used as the keys of a
/// `context put`; its value is checked before each evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBound {
    path: Vec<String>,
}

impl KeyBound {
    /// Fails when the variable holds a list of more than
    /// [`MAX_CONTEXT_PUT_KEYS`] keys. `variables` are (name, JSON text),
    /// innermost scope first.
    pub fn check(&self, variables: &[(&str, &str)]) -> Result<(), String> {
        let Some((_, text)) = variables.iter().find(|(n, _)| *n == self.path[0]) else {
            return Ok(());
        };
        let Ok(mut value) = serde_json::from_str::<Json>(text) else {
            return Ok(());
        };
        for segment in &self.path[1..] {
            value = match value {
                Json::Object(mut map) => map.remove(segment).unwrap_or(Json::Null),
                _ => Json::Null,
            };
        }
        match value {
            Json::Array(items) if items.len() > MAX_CONTEXT_PUT_KEYS => Err(format!(
                "'context put' got {} keys from '{}'; at most {MAX_CONTEXT_PUT_KEYS} are accepted",
                items.len(),
                self.path.join(".")
            )),
            _ => Ok(()),
        }
    }
}

/// Checks every `context put` call in `text`; returns the variables whose
/// values need checking at evaluation.
pub fn check(text: &str) -> Result<Vec<KeyBound>, String> {
    let bytes = text.as_bytes();
    let mut bounds = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b'c' if starts_word(bytes, i) => {
                if let Some(open) = context_put_at(text, i) {
                    let args = arguments(text, open)?;
                    let keys = match args.len() {
                        3 => keys_argument(&args),
                        _ => None,
                    };
                    if let Some(keys) = keys {
                        if let Some(bound) = check_keys(keys)? {
                            bounds.push(bound);
                        }
                    }
                    i = open + 1;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(bounds)
}

fn starts_word(bytes: &[u8], i: usize) -> bool {
    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
}

/// The index of the `(` if `context put (` starts at `i`.
fn context_put_at(text: &str, i: usize) -> Option<usize> {
    let rest = text[i..].strip_prefix("context")?;
    let trimmed = rest.trim_start();
    if trimmed.len() == rest.len() {
        return None;
    }
    let after_put = trimmed.strip_prefix("put")?;
    let call = after_put.trim_start();
    call.starts_with('(').then(|| text.len() - call.len())
}

/// Index just past the string literal starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The top-level arguments of the call whose `(` is at `open`.
fn arguments(text: &str, open: usize) -> Result<Vec<&str>, String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut args = Vec::new();
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    args.push(&text[start..i]);
                    return Ok(args);
                }
            }
            b',' if depth == 1 => {
                args.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    Err("'context put' call is not closed".to_string())
}

/// The keys argument: the second positional one, or the one named `keys`.
fn keys_argument<'a>(args: &[&'a str]) -> Option<&'a str> {
    let named = args.iter().find_map(|a| {
        let (name, value) = a.split_once(':')?;
        (name.trim() == "keys").then_some(value)
    });
    named.or_else(|| {
        let second = args[1];
        let (name, _) = second.split_once(':').unwrap_or(("", second));
        // Named arguments in another order: `keys` was not among them.
        (!matches!(name.trim(), "context" | "value")).then_some(second)
    })
}

fn is_string_literal(text: &str) -> bool {
    let t = text.trim();
    t.len() >= 2 && t.starts_with('"') && skip_string(t.as_bytes(), 0) == t.len()
}

fn check_keys(keys: &str) -> Result<Option<KeyBound>, String> {
    let t = keys.trim();
    if is_string_literal(t) {
        return Ok(None);
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let items = if inner.trim().is_empty() {
            Vec::new()
        } else {
            arguments(&format!("({inner})"), 0)?
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        if items.len() <= MAX_CONTEXT_PUT_KEYS && items.iter().all(|k| is_string_literal(k)) {
            return Ok(None);
        }
    } else if let Some(path) = variable_path(t) {
        return Ok(Some(KeyBound { path }));
    }
    Err(format!(
        "'context put' takes its keys as a string, a list of at most {MAX_CONTEXT_PUT_KEYS} \
         string literals, or a variable holding such a list; '{t}' is none of these"
    ))
}

/// `name` or `name.field.field` of plain identifiers.
fn variable_path(text: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = text.split('.').map(|s| s.trim().to_string()).collect();
    let plain = |s: &String| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    segments.iter().all(plain).then_some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_keys_pass() {
        assert_eq!(check(r#"context put({}, "a", 1)"#), Ok(vec![]));
        assert_eq!(check(r#"context put({}, ["a", "b,c"], 1)"#), Ok(vec![]));
        assert_eq!(
            check(r#"context put(context: {}, keys: ["a"], value: 1)"#),
            Ok(vec![])
        );
        assert_eq!(check(r#""context put(x, y, z)" + "s""#), Ok(vec![]));
    }

    #[test]
    fn variable_keys_are_checked_when_evaluated() {
        let bounds = check("context put({}, order.keys, 1)").unwrap();
        assert_eq!(bounds.len(), 1);
        let few = r#"{"keys": ["a", "b"]}"#;
        assert!(bounds[0].check(&[("order", few)]).is_ok());
        let many = serde_json::json!({ "keys": vec!["k"; 100_000] }).to_string();
        let err = bounds[0].check(&[("order", &many)]).unwrap_err();
        assert!(err.contains("100000 keys from 'order.keys'"), "{err}");
    }

    #[test]
    fn computed_keys_are_refused() {
        for text in [
            r#"context put({}, for i in 1..100000 return "k", 1)"#,
            r#"context put(keys: split(s, ","), context: {}, value: 1)"#,
        ] {
            let err = check(text).unwrap_err();
            assert!(
                err.contains("'context put' takes its keys"),
                "{text}: {err}"
            );
        }
        let long = format!("context put({{}}, [{}], 1)", vec![r#""k""#; 65].join(","));
        assert!(check(&long).is_err());
    }
}
