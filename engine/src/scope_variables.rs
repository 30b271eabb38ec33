//! Variable semantics on top of the store: what a scope sees (its own
//! variables, then its flow scopes' up to the process instance), local set,
//! and propagating merge (update where the variable exists on the way up,
//! else create on the process instance), as Zeebe does.

use crate::engine::{Ctx, Engine};
use crate::record::*;
use serde_json::value::RawValue;

/// Most variables in one document (SetVariables, job completion, creation).
pub const MAX_VARIABLES_PER_DOCUMENT: usize = 10_000;
/// Deepest nesting of arrays and objects in a variable document (serde_json's
/// own limit for parsed values, so every stored value can be read back; raw
/// values are skipped without that check).
pub const MAX_DOCUMENT_DEPTH: usize = 128;

/// Parses a JSON object document into (name, JSON text) pairs, sorted by
/// name (a repeated name: the last one wins). Empty text means no variables.
/// Values borrow from `text`.
pub fn parse_document(text: &str) -> Result<Vec<(String, &RawValue)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    if let Some(depth) = nesting_beyond(text, MAX_DOCUMENT_DEPTH) {
        return Err(format!(
            "Expected document to be a JSON object of variables nesting at most \
             {MAX_DOCUMENT_DEPTH} levels deep, but it nests {depth} levels or more"
        ));
    }
    let Document(mut list) = serde_json::from_str(text).map_err(|e| {
        format!("Expected document to be a JSON object of variables, but it is not: {e}")
    })?;
    if list.len() > MAX_VARIABLES_PER_DOCUMENT {
        return Err(format!(
            "document has {} variables, more than {MAX_VARIABLES_PER_DOCUMENT}",
            list.len()
        ));
    }
    // Stable sort keeps repeated names in document order; keep the last.
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, &RawValue)> = Vec::with_capacity(list.len());
    for (name, value) in list {
        match out.last_mut() {
            Some(last) if last.0 == name => last.1 = value,
            _ => out.push((name, value)),
        }
    }
    Ok(out)
}

/// The depth at which `json` first nests arrays and objects deeper than
/// `limit`, scanning without recursion (strings skipped); `None` within it.
pub(crate) fn nesting_beyond(json: &str, limit: usize) -> Option<usize> {
    let bytes = json.as_bytes();
    // Nesting deeper than `limit` needs more than `limit` opening brackets;
    // counting them is a vectorised pass, much cheaper than the scan below,
    // and settles almost every document.
    if bytes.iter().filter(|&&b| b == b'[' || b == b'{').count() <= limit {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A JSON object read as (name, raw value) pairs in document order.
struct Document<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Document<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Document<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    if list.len() > MAX_VARIABLES_PER_DOCUMENT {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_VARIABLES_PER_DOCUMENT} variables"
                        )));
                    }
                    list.push(entry);
                }
                Ok(Document(list))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl Engine {
    /// Variables visible from `scope`, innermost first (shadowed names repeat;
    /// the first occurrence wins).
    pub(crate) fn visible(&self, mut scope: i64) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        while scope != NO_KEY {
            for v in self.state.variables.local(scope) {
                out.push((v.name, v.value));
            }
            scope = self
                .state
                .instances
                .get(&scope)
                .map(|i| i.flow_scope_key)
                .unwrap_or(NO_KEY);
        }
        out
    }

    /// The visible variables of `scope` as a JSON object, restricted to
    /// `fetch` unless it is empty.
    pub(crate) fn variables_json(&self, scope: i64, fetch: &[String]) -> String {
        let mut seen = self.visible(scope);
        if !fetch.is_empty() {
            seen.retain(|(name, _)| fetch.iter().any(|f| f == name));
        }
        // Innermost first, and the sort is stable: the first of equal names
        // is the visible one.
        seen.sort_by(|a, b| a.0.cmp(b.0));
        seen.dedup_by(|later, first| later.0 == first.0);
        let mut out = String::with_capacity(
            2 + seen
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>(),
        );
        out.push('{');
        for (i, (name, value)) in seen.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                out.push('"');
                out.push_str(name);
                out.push('"');
            } else {
                out.push_str(&serde_json::to_string(name).expect("a string serializes"));
            }
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        out
    }

    /// Sets `name` on `scope` itself.
    pub(crate) fn set_local(
        &mut self,
        ctx: &mut Ctx,
        scope: i64,
        pi_key: i64,
        name: &str,
        value: &str,
    ) {
        let existing = self
            .state
            .variables
            .get(scope, name)
            .map(|v| (v.key, *v.value == *value));
        let (key, intent) = match existing {
            Some((_, true)) => return,
            Some((key, false)) => (key, Intent::Updated),
            None => (self.state.keys.next_key(), Intent::Created),
        };
        let (def_key, process_id) = self.process_of_instance(pi_key);
        self.emit(
            ctx,
            key,
            intent,
            RecordValue::Variable(VariableRecord {
                name: name.to_string(),
                value: value.to_string(),
                scope_key: scope,
                process_instance_key: pi_key,
                process_definition_key: def_key,
                bpmn_process_id: process_id,
            }),
        );
    }

    /// Sets `name` where it is visible from `scope`, else on the process instance.
    pub(crate) fn merge(
        &mut self,
        ctx: &mut Ctx,
        scope: i64,
        pi_key: i64,
        name: &str,
        value: &str,
    ) {
        let mut s = scope;
        let mut target = pi_key;
        while s != NO_KEY {
            if self.state.variables.get(s, name).is_some() {
                target = s;
                break;
            }
            s = self
                .state
                .instances
                .get(&s)
                .map(|i| i.flow_scope_key)
                .unwrap_or(NO_KEY);
        }
        self.set_local(ctx, target, pi_key, name, value);
    }

    fn process_of_instance(&self, pi_key: i64) -> (i64, std::sync::Arc<str>) {
        self.state
            .instances
            .get(&pi_key)
            .and_then(|i| self.state.process(i.process_definition_key))
            .map(|d| {
                (
                    d.metadata.process_definition_key,
                    d.metadata.bpmn_process_id.clone(),
                )
            })
            .unwrap_or((NO_KEY, std::sync::Arc::from("")))
    }
}

/// Writes `value` at a dotted `path` into `target` (a JSON object), creating
/// nested objects as needed.
pub fn set_path(
    target: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
    value: serde_json::Value,
) {
    match path.split_once('.') {
        None => {
            target.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = target
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nesting_beyond;

    #[test]
    fn nesting_counts_depth_not_brackets() {
        let deep = format!("{}{}", "[".repeat(5), "]".repeat(5));
        assert_eq!(nesting_beyond(&deep, 4), Some(5));
        assert_eq!(nesting_beyond(&deep, 5), None);
        // Many brackets, shallow: more than the limit in all, 1 deep.
        let wide = format!("[{}]", ["[]"; 10].join(","));
        assert_eq!(nesting_beyond(&wide, 3), None);
        // Brackets in strings do not nest.
        let quoted = r#"{"a":"[[[[[[\"[[[["}"#;
        assert_eq!(nesting_beyond(quoted, 2), None);
        assert_eq!(nesting_beyond(r#"{"a":[[[1]]]}"#, 3), Some(4));
    }
}
