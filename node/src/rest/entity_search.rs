//! Searches over identity entities as the API shows them (users, roles,
//! groups, tenants, mapping rules, authorizations, members): the entities
//! are few and held in memory by every node, so the filter, sort and page
//! of Camunda's search requests are applied here, not in secondary
//! storage. Filters take a value or an operator object (`$eq`, `$neq`,
//! `$in`, `$notIn`, `$like`, `$exists`), and `$or` alternatives.

use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::problem::Problem;

/// Body of the searches of identity entities.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    #[serde(default)]
    filter: serde_json::Map<String, Value>,
    #[serde(default)]
    sort: Vec<Sort>,
    #[serde(default)]
    page: Page,
}

/// One sort criterion.
#[derive(Debug, Deserialize)]
pub struct Sort {
    field: String,
    #[serde(default)]
    order: Option<String>,
}

/// Offset pagination.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    from: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            from: 0,
            limit: default_limit(),
        }
    }
}

fn default_limit() -> usize {
    store::DEFAULT_LIMIT as usize
}

/// Whether `value` (a user's field) passes `filter` (a string, or an
/// object of `$eq`, `$neq`, `$in`, `$notIn`, `$like`, `$exists`).
fn matches(field: &str, value: &str, filter: &Value) -> Result<bool, Problem> {
    let Some(ops) = filter.as_object() else {
        return match filter {
            Value::String(s) => Ok(value == s),
            _ => Err(Problem::bad_request(format!(
                "'filter.{field}' must be a string or an object of operators"
            ))),
        };
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (op, arg) in ops {
        let text = arg.as_str().unwrap_or_default();
        let ok = match op.as_str() {
            "$eq" => value == text,
            "$neq" => value != text,
            "$in" => strings(arg).iter().any(|s| s == value),
            "$notIn" => !strings(arg).iter().any(|s| s == value),
            "$like" => like(text, value),
            "$exists" => arg.as_bool().unwrap_or(true) != value.is_empty(),
            other => {
                return Err(Problem::bad_request(format!(
                    "'filter.{field}' has the operator '{other}', not one of $eq, $neq, $in, $notIn, $like, $exists"
                )))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// SQL-like wildcard match: `*` any run, `?` one character, `\` escapes.
fn like(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| go(rest, &v[i..])),
            Some(('?', rest)) => !v.is_empty() && go(rest, &v[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                v.first() == Some(&rest[0]) && go(&rest[1..], &v[1..])
            }
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

/// The text of `view`'s field `name`, if it is one of `fields`.
fn field<'a>(view: &'a Value, name: &str, fields: &[&str]) -> Option<&'a str> {
    fields
        .contains(&name)
        .then(|| view.get(name).and_then(Value::as_str).unwrap_or_default())
}

/// Whether `view` passes `filter`: every field's condition, and one of
/// the `$or` alternatives when there are any.
fn passes(
    view: &Value,
    filter: &serde_json::Map<String, Value>,
    fields: &[&str],
) -> Result<bool, Problem> {
    let mut keep = true;
    for (name, condition) in filter {
        if name == "$or" {
            let alternatives = match condition {
                Value::Array(a) => a,
                Value::Null => continue,
                _ => {
                    return Err(Problem::bad_request(
                        "'filter.$or' must be an array of filters",
                    ))
                }
            };
            let mut any = alternatives.is_empty();
            for alternative in alternatives {
                let Some(alternative) = alternative.as_object() else {
                    return Err(Problem::bad_request("'filter.$or' must hold objects"));
                };
                any |= passes(view, alternative, fields)?;
            }
            keep &= any;
            continue;
        }
        let value = field(view, name, fields).ok_or_else(|| {
            Problem::bad_request(format!(
                "'filter.{name}' is not a field to filter on ({})",
                fields.join(", ")
            ))
        })?;
        keep &= matches(name, value, condition)?;
    }
    Ok(keep)
}

/// A search over `views` (the entities as the API shows them): filters
/// and sorts on `fields`, pages by `from` and `limit`.
pub(super) fn search_views(
    views: Vec<Value>,
    q: &SearchQuery,
    fields: &[&str],
) -> Result<Json<Value>, Problem> {
    let mut found = Vec::new();
    for view in views {
        if passes(&view, &q.filter, fields)? {
            found.push(view);
        }
    }
    for sort in q.sort.iter().rev() {
        if !fields.contains(&sort.field.as_str()) {
            return Err(Problem::bad_request(format!(
                "'sort.field' is '{}', not one of {}",
                sort.field,
                fields.join(", ")
            )));
        }
        let descending = sort
            .order
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
        found.sort_by(|a, b| {
            let order = field(a, &sort.field, fields).cmp(&field(b, &sort.field, fields));
            if descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    let total = found.len();
    let items: Vec<Value> = found
        .into_iter()
        .skip(q.page.from)
        .take(q.page.limit)
        .collect();
    Ok(Json(json!({
        "items": items,
        "page": {"totalItems": total, "hasMoreTotalItems": false, "startCursor": null, "endCursor": null},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_wildcards() {
        assert!(like("de*", "demo"));
        assert!(like("d?mo", "demo"));
        assert!(!like("d?mo", "dmo"));
        assert!(like("a\\*", "a*"));
        assert!(!like("a\\*", "ab"));
    }

    #[test]
    fn filters_take_strings_and_operators() {
        assert!(matches("username", "demo", &json!("demo")).unwrap());
        assert!(!matches("username", "demo", &json!({"$neq": "demo"})).unwrap());
        assert!(matches("username", "demo", &json!({"$in": ["x", "demo"]})).unwrap());
        assert!(matches("username", "demo", &json!({"$like": "d*"})).unwrap());
        assert!(matches("username", "demo", &json!({"$gt": "a"})).is_err());
    }

    #[test]
    fn or_takes_any_alternative() {
        let demo = json!({"username": "demo", "name": "Demo", "email": ""});
        let fields = ["username", "name", "email"];
        let filter = |v: Value| v.as_object().unwrap().clone();
        let either = filter(json!({"$or": [{"username": "x"}, {"name": "Demo"}]}));
        assert!(passes(&demo, &either, &fields).unwrap());
        let neither = filter(json!({"$or": [{"username": "x"}, {"name": "y"}]}));
        assert!(!passes(&demo, &neither, &fields).unwrap());
        let and = filter(json!({"username": "x", "$or": [{"name": "Demo"}]}));
        assert!(!passes(&demo, &and, &fields).unwrap());
        assert!(passes(&demo, &filter(json!({"password": "x"})), &fields).is_err());
    }
}
