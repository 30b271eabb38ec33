//! String built-ins. Positions count Unicode code points from 1; negative
//! positions count from the end. Patterns are regular expressions.

use super::{b, int, list, opt, text, Builtin};
use crate::eval::{Ev, Fail, R};
use crate::value::Value;
use base64::Engine;
use regex::Regex;

/// Longest regular expression pattern accepted.
pub const MAX_PATTERN_BYTES: usize = 4096;

pub(super) const TABLE: &[Builtin] = &[
    b(
        "substring",
        &["string", "start position", "length?"],
        substring,
    ),
    b("string length", &["string"], length),
    b("upper case", &["string"], upper),
    b("lower case", &["string"], lower),
    b("substring before", &["string", "match"], before),
    b("substring after", &["string", "match"], after),
    b(
        "replace",
        &["input", "pattern", "replacement", "flags?"],
        replace,
    ),
    b("contains", &["string", "match"], contains),
    b("starts with", &["string", "match"], starts_with),
    b("ends with", &["string", "match"], ends_with),
    b("matches", &["input", "pattern", "flags?"], matches),
    b("split", &["string", "delimiter"], split),
    b("extract", &["string", "pattern"], extract),
    b("trim", &["string"], trim),
    b("is blank", &["string"], is_blank),
    b("to base64", &["value"], to_base64),
    b("from base64", &["value"], from_base64),
    b(
        "string join",
        &["list", "delimiter?", "prefix?", "suffix?"],
        join,
    ),
    b("uuid", &[], uuid),
];

fn s(v: impl Into<String>) -> R {
    Ok(Value::string(v.into()))
}

fn substring(_: &mut Ev, a: &[Value]) -> R {
    let chars: Vec<char> = text(&a[0])?.chars().collect();
    let len = chars.len() as i64;
    let start = int(&a[1])?;
    let from = if start > 0 {
        start - 1
    } else if start < 0 {
        (len + start).max(0)
    } else {
        0
    };
    let n = match opt(a, 2) {
        Some(l) => int(l)?.max(0),
        None => len,
    };
    let from = from.clamp(0, len) as usize;
    let to = (from as i64).saturating_add(n).clamp(0, len) as usize;
    s(chars[from..to].iter().collect::<String>())
}

fn length(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::int(text(&a[0])?.chars().count() as i64))
}

fn upper(_: &mut Ev, a: &[Value]) -> R {
    s(text(&a[0])?.to_uppercase())
}

fn lower(_: &mut Ev, a: &[Value]) -> R {
    s(text(&a[0])?.to_lowercase())
}

fn before(_: &mut Ev, a: &[Value]) -> R {
    let (x, m) = (text(&a[0])?, text(&a[1])?);
    s(x.find(m).map_or("", |i| &x[..i]))
}

fn after(_: &mut Ev, a: &[Value]) -> R {
    let (x, m) = (text(&a[0])?, text(&a[1])?);
    s(x.find(m).map_or("", |i| &x[i + m.len()..]))
}

/// Compiles a FEEL (XML Schema style) pattern with optional flags `s m i x`.
fn pattern(p: &str, flags: Option<&Value>) -> Result<Regex, Fail> {
    if p.len() > MAX_PATTERN_BYTES {
        return Err(format!("pattern longer than {MAX_PATTERN_BYTES} bytes").into());
    }
    let mut prefix = String::new();
    if let Some(f) = flags {
        let f = text(f)?;
        if !f.chars().all(|c| "smix".contains(c)) {
            return Err(format!("invalid flags '{f}': expected any of s, m, i, x").into());
        }
        if !f.is_empty() {
            prefix = format!("(?{f})");
        }
    }
    Regex::new(&format!("{prefix}{p}"))
        .map_err(|e| Fail::Soft(format!("invalid pattern '{p}': {e}")))
}

fn replace(_: &mut Ev, a: &[Value]) -> R {
    let re = pattern(text(&a[1])?, opt(a, 3))?;
    let replacement = java_replacement(text(&a[2])?);
    s(re.replace_all(text(&a[0])?, replacement.as_str())
        .into_owned())
}

/// Java-style `$1` group references become `${1}` for the regex crate.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn contains(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(text(&a[0])?.contains(text(&a[1])?)))
}

fn starts_with(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(text(&a[0])?.starts_with(text(&a[1])?)))
}

fn ends_with(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(text(&a[0])?.ends_with(text(&a[1])?)))
}

fn matches(_: &mut Ev, a: &[Value]) -> R {
    let re = pattern(text(&a[1])?, opt(a, 2))?;
    Ok(Value::Bool(re.is_match(text(&a[0])?)))
}

fn split(_: &mut Ev, a: &[Value]) -> R {
    let re = pattern(text(&a[1])?, None)?;
    Ok(Value::list(
        re.split(text(&a[0])?).map(Value::string).collect(),
    ))
}

fn extract(_: &mut Ev, a: &[Value]) -> R {
    let re = pattern(text(&a[1])?, None)?;
    Ok(Value::list(
        re.find_iter(text(&a[0])?)
            .map(|m| Value::string(m.as_str()))
            .collect(),
    ))
}

fn trim(_: &mut Ev, a: &[Value]) -> R {
    s(text(&a[0])?.trim())
}

fn is_blank(_: &mut Ev, a: &[Value]) -> R {
    Ok(Value::Bool(text(&a[0])?.trim().is_empty()))
}

fn to_base64(_: &mut Ev, a: &[Value]) -> R {
    s(base64::engine::general_purpose::STANDARD.encode(text(&a[0])?))
}

fn from_base64(_: &mut Ev, a: &[Value]) -> R {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text(&a[0])?)
        .map_err(|e| Fail::Soft(format!("not base64: {e}")))?;
    s(String::from_utf8(bytes).map_err(|_| Fail::Soft("decoded bytes are not UTF-8".into()))?)
}

fn join(_: &mut Ev, a: &[Value]) -> R {
    if a.len() == 3 {
        return Err("expected a suffix after the prefix".into());
    }
    let single;
    let items = match &a[0] {
        Value::String(_) => {
            single = [a[0].clone()];
            &single[..]
        }
        other => list(other)?,
    };
    let delim = opt(a, 1).map(text).transpose()?.unwrap_or("");
    let mut parts = Vec::new();
    for i in items {
        match i {
            Value::Null => {}
            other => parts.push(text(other)?),
        }
    }
    let prefix = opt(a, 2).map(text).transpose()?.unwrap_or("");
    let suffix = opt(a, 3).map(text).transpose()?.unwrap_or("");
    s(format!("{prefix}{}{suffix}", parts.join(delim)))
}

fn uuid(_: &mut Ev, _: &[Value]) -> R {
    Err(Fail::Hard(
        "uuid() is not supported: a random value would make replicas diverge; pass an id in a variable".into(),
    ))
}
