//! Searches: a request body of the Orchestration Cluster API (`filter`,
//! `sort`, `page`) becomes one counting and one selecting statement over a
//! [`Resource`]; rows become result items with the API's field names.
//!
//! Filters: `field: value` (equality) or `field: {"$eq" | "$neq" | "$gt" |
//! "$gte" | "$lt" | "$lte" | "$like" | "$in" | "$notIn" | "$exists": ...}`,
//! all ANDed; `$or: [filter, ...]` ANDs the alternatives' disjunction with
//! the rest, and on process instances `variables: [{name, value}]` asks for
//! a variable of that name and serialized JSON value (or value operators).
//! An unknown field is refused naming it (a filter silently ignored would
//! return wrong results). Pages: `{limit}`, `{from, limit}`,
//! `{after, limit}` or `{before, limit}`. Cursors are keyset cursors: the
//! sort values and key of a page's first or last item (a JSON list in
//! standard base64, as the specification's cursor pattern asks), and the
//! next page is the items after that one in the sort order. Items written
//! between two requests therefore neither repeat nor hide items of the
//! next page, as offsets would, and a deep page costs what the first does.

use base64::Engine as _;
use serde_json::{Map, Value};
use sqlx::Row as _;

use crate::resources::{Field, Kind, Resource};
use crate::{time, Store, StoreError};

/// Items per page when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most items one page may ask for.
pub const MAX_LIMIT: u32 = 10_000;
/// Most filter conditions one request may hold (each is a bound parameter).
const MAX_CONDITIONS: usize = 256;

/// The value of a variable, as the `variables` filter compares it.
static VARIABLE_VALUE: Field = Field {
    name: "variables.value",
    sql: "v.value",
    kind: Kind::Text,
    when_true: None,
    not_null: true,
    in_results: false,
};

/// Which page to return.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Index of the first item (after the cursor's item, if any).
    pub from: u64,
    /// Most items returned.
    pub limit: u32,
    /// The items after (or before) the item this cursor names.
    pub cursor: Option<Cursor>,
}

/// A keyset cursor: the sort values and key of one item, as SQL values.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The page holds the items before the cursor's item, not after it.
    pub before: bool,
    /// The values of the sort fields and then the key.
    values: Vec<Value>,
}

/// One sort criterion.
#[derive(Debug, Clone)]
pub struct Sort {
    /// The field.
    field: &'static Field,
    /// Its column in a result row.
    column: usize,
    /// Descending.
    descending: bool,
}

impl Sort {
    /// The `ORDER BY` term: NULLs last in both directions, on both
    /// databases (or, `reversed`, the exact reverse order: for a page
    /// before a cursor). A field that is never NULL is sorted without the
    /// clause, so that an index in its order (SQLite's take no NULLS
    /// clause, and PostgreSQL's `DESC` ones put NULLs first) can deliver
    /// the order.
    fn order_by(&self, reversed: bool) -> String {
        let direction = if self.descending != reversed {
            "DESC"
        } else {
            "ASC"
        };
        let nulls = if reversed { "FIRST" } else { "LAST" };
        if self.field.not_null {
            format!("{} {direction}", self.field.sql)
        } else {
            format!("{} {direction} NULLS {nulls}", self.field.sql)
        }
    }

    /// The condition "comes strictly after `value`" in this order (or,
    /// `backwards`, strictly before), with NULLs last; `None` when nothing
    /// can (after a NULL). `p` is the value's parameter.
    fn beyond(&self, value_is_null: bool, p: &str, backwards: bool) -> Option<String> {
        let sql = self.field.sql;
        match (value_is_null, backwards) {
            (true, false) => None,
            (true, true) => Some(format!("{sql} IS NOT NULL")),
            (false, _) => {
                let compare = if self.descending != backwards {
                    "<"
                } else {
                    ">"
                };
                Some(if self.field.not_null || backwards {
                    format!("{sql} {compare} {p}")
                } else {
                    format!("({sql} {compare} {p} OR {sql} IS NULL)")
                })
            }
        }
    }
}

/// A parsed search request over one resource.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    resource: &'static Resource,
    conditions: Vec<String>,
    binds: Vec<Bind>,
    sort: Vec<Sort>,
    /// The cursor's condition, with its parameters after `binds`: the
    /// count leaves it out.
    keyset: Option<(String, Vec<Bind>)>,
    /// Filter fields seen, in `$or` alternatives too.
    filters: usize,
    /// The page asked for.
    pub page: Page,
}

#[derive(Debug, Clone, PartialEq)]
enum Bind {
    Int(i64),
    Text(String),
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// The items, with API field names.
    pub items: Vec<Map<String, Value>>,
    /// Items matching the filter, on every page, counted up to
    /// [`MAX_COUNTED_ITEMS`].
    pub total_items: i64,
    /// More items match than `total_items` says (the count stopped).
    pub has_more_total_items: bool,
    /// Cursor to the page before (`page.before`), `None` when empty.
    pub start_cursor: Option<String>,
    /// Cursor to the page after (`page.after`), `None` when empty.
    pub end_cursor: Option<String>,
}

impl SearchResult {
    /// The API's response body: `{items, page: {totalItems,
    /// hasMoreTotalItems, startCursor, endCursor}}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "items": self.items,
            "page": {
                "totalItems": self.total_items,
                "hasMoreTotalItems": self.has_more_total_items,
                "startCursor": self.start_cursor,
                "endCursor": self.end_cursor,
            }
        })
    }
}

/// A search counts its matches up to this many, as Camunda's does
/// (`hasMoreTotalItems` says the count stopped): counting every row of a
/// large table would cost more than the page itself.
pub const MAX_COUNTED_ITEMS: i64 = 10_000;

fn bad(message: String) -> StoreError {
    StoreError::BadRequest(message)
}

fn encode_cursor(values: &[Value]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Value::from(values).to_string())
}

fn decode_cursor(field: &str, cursor: &Value) -> Result<Vec<Value>, StoreError> {
    cursor
        .as_str()
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
        .filter(|values| !values.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "page.{field} must be a cursor from an earlier response's page, got {cursor}"
            ))
        })
}

fn parse_page(page: Option<&Value>) -> Result<Page, StoreError> {
    let Some(page) = page.filter(|p| !p.is_null()) else {
        return Ok(Page {
            from: 0,
            limit: DEFAULT_LIMIT,
            cursor: None,
        });
    };
    let page = page
        .as_object()
        .ok_or_else(|| bad(format!("page must be an object, got {page}")))?;
    let limit = match page.get("limit").filter(|v| !v.is_null()) {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .as_u64()
            .filter(|l| *l <= u64::from(MAX_LIMIT))
            .ok_or_else(|| {
                bad(format!(
                    "page.limit must be an integer in 0..={MAX_LIMIT}, got {v}"
                ))
            })? as u32,
    };
    let get = |name: &str| page.get(name).filter(|v| !v.is_null());
    match (get("from"), get("after"), get("before")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(bad(
            "page takes either from (offset) or after/before (cursor), not both".into(),
        )),
        (_, Some(_), Some(_)) => Err(bad("page takes after or before, not both".into())),
        (Some(from), None, None) => Ok(Page {
            from: from
                .as_u64()
                .ok_or_else(|| bad(format!("page.from must be an integer >= 0, got {from}")))?,
            limit,
            cursor: None,
        }),
        (None, Some(after), None) => Ok(Page {
            from: 0,
            limit,
            cursor: Some(Cursor {
                before: false,
                values: decode_cursor("after", after)?,
            }),
        }),
        (None, None, Some(before)) => Ok(Page {
            from: 0,
            limit,
            cursor: Some(Cursor {
                before: true,
                values: decode_cursor("before", before)?,
            }),
        }),
        (None, None, None) => Ok(Page {
            from: 0,
            limit,
            cursor: None,
        }),
    }
}

/// The value of filter `field` as a parameter.
fn bind_value(resource: &Resource, field: &Field, value: &Value) -> Result<Bind, StoreError> {
    let wrong = |what: &str| {
        bad(format!(
            "filter.{} of {} must be {what}, got {value}",
            field.name, resource.name
        ))
    };
    match field.kind {
        Kind::Key => match value {
            Value::String(s) => s.trim().parse().map(Bind::Int).map_err(|_| wrong("a key")),
            Value::Number(n) => n.as_i64().map(Bind::Int).ok_or_else(|| wrong("a key")),
            _ => Err(wrong("a key (a string of digits)")),
        },
        Kind::Int => value
            .as_i64()
            .map(Bind::Int)
            .ok_or_else(|| wrong("an integer")),
        Kind::Text => value
            .as_str()
            .map(|s| Bind::Text(s.to_string()))
            .ok_or_else(|| wrong("a string")),
        Kind::Date => value
            .as_str()
            .and_then(time::parse_ms)
            .map(Bind::Int)
            .ok_or_else(|| wrong("an RFC 3339 date-time")),
        Kind::Bool => value
            .as_bool()
            .map(|b| Bind::Int(i64::from(b)))
            .ok_or_else(|| wrong("true or false")),
        Kind::Json => Err(bad(format!(
            "filter.{} of {} is not supported",
            field.name, resource.name
        ))),
    }
}

/// `text` matched literally by a LIKE pattern escaped by `\`.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `*` and `?` wildcards (with `\` escaping) as a LIKE pattern escaped by `\`.
fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(n);
                }
                Some(n) => out.push(n),
                None => out.push_str("\\\\"),
            },
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

impl SearchRequest {
    /// Parses a search body (`null` or `{}` for everything) over `resource`.
    pub fn parse(resource: &'static Resource, body: &Value) -> Result<SearchRequest, StoreError> {
        SearchRequest::parse_within(resource, body, &[])
    }

    /// [`SearchRequest::parse`], the results narrowed further to those
    /// whose filter field `within.0` is one of `within.1` (the resources a
    /// caller is authorized for; none, nothing is found).
    pub fn parse_within(
        resource: &'static Resource,
        body: &Value,
        within: &[(&str, Vec<String>)],
    ) -> Result<SearchRequest, StoreError> {
        let empty = Map::new();
        let body = match body {
            Value::Null => &empty,
            Value::Object(o) => o,
            other => {
                return Err(bad(format!(
                    "the search body must be an object, got {other}"
                )))
            }
        };
        let mut request = SearchRequest {
            resource,
            conditions: Vec::new(),
            binds: Vec::new(),
            sort: Vec::new(),
            keyset: None,
            filters: 0,
            page: parse_page(body.get("page"))?,
        };
        match body.get("filter") {
            None | Some(Value::Null) => {}
            Some(Value::Object(filter)) => {
                for (name, value) in filter {
                    request.add_filter(name, value)?;
                }
            }
            Some(other) => return Err(bad(format!("filter must be an object, got {other}"))),
        }
        for (name, ids) in within {
            let field = request.field(name, "filter")?;
            let ids: Vec<Value> = ids.iter().cloned().map(Value::String).collect();
            let conditions =
                request.field_conditions(field, name, &serde_json::json!({"$in": ids}))?;
            request.conditions.extend(conditions);
        }
        match body.get("sort") {
            None | Some(Value::Null) => {}
            Some(Value::Array(sorts)) => {
                for s in sorts {
                    request.add_sort(s)?;
                }
            }
            Some(other) => return Err(bad(format!("sort must be a list, got {other}"))),
        }
        request.keyset = match &request.page.cursor {
            Some(cursor) => Some(request.keyset(cursor)?),
            None => None,
        };
        Ok(request)
    }

    /// The sort terms a page is ordered by: the requested ones, then the
    /// key (unique, so that the order is total and a cursor names one
    /// place in it).
    fn order(&self) -> Vec<Sort> {
        let resource = self.resource;
        let mut order = self.sort.clone();
        order.push(Sort {
            field: resource.key_field(),
            column: resource
                .fields
                .iter()
                .position(|f| f.name == resource.key)
                .expect("a resource's key is one of its fields"),
            descending: false,
        });
        order
    }

    /// The condition selecting the items after (or before) `cursor`'s item
    /// in the sort order, and its parameters: for sort terms t1..tn with
    /// the cursor's values v1..vn, the disjunction over i of "t1..ti-1
    /// equal v1..vi-1 and ti beyond vi".
    fn keyset(&self, cursor: &Cursor) -> Result<(String, Vec<Bind>), StoreError> {
        let order = self.order();
        let mismatch = || {
            bad(format!(
                "page.{} is a cursor of another search (other sort fields) of {}",
                if cursor.before { "before" } else { "after" },
                self.resource.name
            ))
        };
        if cursor.values.len() != order.len() {
            return Err(mismatch());
        }
        let mut binds = Vec::new();
        let mut param = |bind: Bind| {
            binds.push(bind);
            format!("${}", self.binds.len() + binds.len())
        };
        let mut alternatives = Vec::new();
        let mut equal_so_far: Vec<String> = Vec::new();
        for (term, value) in order.iter().zip(&cursor.values) {
            let p = if value.is_null() {
                String::new()
            } else {
                let bind = match term.field.kind {
                    Kind::Text => value.as_str().map(|t| Bind::Text(t.to_string())),
                    _ => value.as_i64().map(Bind::Int),
                };
                param(bind.ok_or_else(mismatch)?)
            };
            if let Some(beyond) = term.beyond(value.is_null(), &p, cursor.before) {
                let mut terms = equal_so_far.clone();
                terms.push(beyond);
                alternatives.push(format!("({})", terms.join(" AND ")));
            }
            equal_so_far.push(if value.is_null() {
                format!("{} IS NULL", term.field.sql)
            } else {
                format!("{} = {p}", term.field.sql)
            });
        }
        let condition = if alternatives.is_empty() {
            "1 = 0".to_string()
        } else {
            format!("({})", alternatives.join(" OR "))
        };
        Ok((condition, binds))
    }

    /// Adds an equality condition on `field` (used by paths such as
    /// `/process-instances/{key}`).
    pub fn with_equal(mut self, field: &str, value: &Value) -> Result<SearchRequest, StoreError> {
        self.add_filter(field, value)?;
        Ok(self)
    }

    fn field(&self, name: &str, what: &str) -> Result<&'static Field, StoreError> {
        let resource = self.resource;
        resource
            .field(name)
            .filter(|f| f.kind != Kind::Json)
            .ok_or_else(|| {
                let known: Vec<&str> = resource
                    .fields
                    .iter()
                    .filter(|f| f.kind != Kind::Json)
                    .map(|f| f.name)
                    .chain(resource.members.iter().map(|(n, _)| *n))
                    .collect();
                bad(format!(
                    "{what} '{name}' is not a field of {}; known: {}",
                    resource.name,
                    known.join(", ")
                ))
            })
    }

    fn push(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    fn add_filter(&mut self, name: &str, value: &Value) -> Result<(), StoreError> {
        if value.is_null() {
            return Ok(());
        }
        self.filters += 1;
        if self.filters > MAX_CONDITIONS || self.binds.len() > MAX_CONDITIONS * 4 {
            return Err(bad(format!(
                "a filter holds at most {MAX_CONDITIONS} conditions"
            )));
        }
        match (name, self.resource.variables_of) {
            ("$or", _) => return self.add_or(value),
            ("variables", Some(of)) => return self.add_variables(of, value),
            _ => {}
        }
        if let Some(&(_, column)) = self.resource.members.iter().find(|(n, _)| *n == name) {
            let condition = self.member_condition(name, column, value)?;
            self.conditions.push(condition);
            return Ok(());
        }
        let field = self.field(name, "filter")?;
        let conditions = self.field_conditions(field, name, value)?;
        self.conditions.extend(conditions);
        Ok(())
    }

    /// A filter on a list (`candidateGroup`): `column`, a JSON list of
    /// strings, holds the value, or one of the values of `$in`.
    fn member_condition(
        &mut self,
        name: &str,
        column: &str,
        value: &Value,
    ) -> Result<String, StoreError> {
        let resource = self.resource.name;
        let wrong = || {
            bad(format!(
                "filter.{name} of {resource} takes a string, {{\"$eq\": string}} or \
                 {{\"$in\": [strings]}}, got {value}"
            ))
        };
        let wanted: Vec<&str> = match value {
            Value::String(s) => vec![s],
            Value::Object(operators) if operators.len() == 1 => match operators.iter().next() {
                Some((op, Value::String(s))) if op == "$eq" => vec![s],
                Some((op, Value::Array(items))) if op == "$in" => items
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<_>>()
                    .ok_or_else(wrong)?,
                _ => return Err(wrong()),
            },
            _ => return Err(wrong()),
        };
        if wanted.len() > MAX_CONDITIONS {
            return Err(bad(format!(
                "filter.{name}.$in holds more than {MAX_CONDITIONS} values"
            )));
        }
        if wanted.is_empty() {
            return Ok("1 = 0".to_string());
        }
        let alternatives: Vec<String> = wanted
            .into_iter()
            .map(|w| {
                // The list is written by serde_json, so the element is the
                // value as serde_json quotes it.
                let quoted = Value::String(w.to_string()).to_string();
                let p = self.push(Bind::Text(format!("%{}%", like_literal(&quoted))));
                format!("{column} LIKE {p} ESCAPE '\\'")
            })
            .collect();
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    /// `$or`: a list of filter objects, the item matching at least one
    /// (each alternative's fields ANDed; the whole ANDed with the other
    /// fields). An empty list constrains nothing.
    fn add_or(&mut self, value: &Value) -> Result<(), StoreError> {
        let alternatives = value.as_array().ok_or_else(|| {
            bad(format!(
                "filter.$or must be a list of filter objects, got {value}"
            ))
        })?;
        if alternatives.is_empty() {
            return Ok(());
        }
        let outer = std::mem::take(&mut self.conditions);
        let mut groups = Vec::with_capacity(alternatives.len());
        for alternative in alternatives {
            let fields = alternative.as_object().ok_or_else(|| {
                bad(format!(
                    "each entry of filter.$or must be a filter object, got {alternative}"
                ))
            })?;
            for (name, value) in fields {
                if name == "$or" {
                    return Err(bad(
                        "an entry of filter.$or cannot hold another $or".to_string()
                    ));
                }
                self.add_filter(name, value)?;
            }
            let group = std::mem::take(&mut self.conditions);
            groups.push(if group.is_empty() {
                "1 = 1".to_string()
            } else {
                format!("({})", group.join(" AND "))
            });
        }
        self.conditions = outer;
        self.conditions.push(format!("({})", groups.join(" OR ")));
        Ok(())
    }

    /// `variables`: a list of `{name, value}`, each matching the items
    /// (instances, by the key SQL `of`) that have a variable of that name
    /// whose value, serialized JSON, equals `value` (or matches its
    /// operators: `{"$like": "\"ord*\""}`).
    fn add_variables(&mut self, of: &str, value: &Value) -> Result<(), StoreError> {
        let entries = value.as_array().ok_or_else(|| {
            bad(format!(
                "filter.variables must be a list of {{name, value}} objects, got {value}"
            ))
        })?;
        for entry in entries {
            let name = entry.get("name").and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "each entry of filter.variables needs a name (a string), got {entry}"
                ))
            })?;
            let wanted = entry.get("value").filter(|v| !v.is_null()).ok_or_else(|| {
                bad(format!(
                    "each entry of filter.variables needs a value (serialized JSON, \
                         such as \"\\\"text\\\"\" or \"42\"), got {entry}"
                ))
            })?;
            let p = self.push(Bind::Text(name.to_string()));
            let mut conditions = vec![format!("v.name = {p}")];
            conditions.extend(self.field_conditions(&VARIABLE_VALUE, "variables.value", wanted)?);
            self.conditions.push(format!(
                "{of} IN (SELECT v.process_instance_key FROM variable v WHERE {})",
                conditions.join(" AND ")
            ));
        }
        Ok(())
    }

    /// The conditions of filter `name` on `field`: a value (equality), or
    /// an object of operators.
    fn field_conditions(
        &mut self,
        field: &Field,
        name: &str,
        value: &Value,
    ) -> Result<Vec<String>, StoreError> {
        let sql = field.sql;
        let Value::Object(operators) = value else {
            if let (Some(when_true), Some(wanted)) = (field.when_true, value.as_bool()) {
                return Ok(vec![if wanted {
                    format!("({when_true})")
                } else {
                    format!("NOT ({when_true})")
                }]);
            }
            let p = bind_value(self.resource, field, value)?;
            let p = self.push(p);
            return Ok(vec![format!("{sql} = {p}")]);
        };
        let mut conditions = Vec::with_capacity(operators.len());
        for (op, operand) in operators {
            let condition = match op.as_str() {
                "$exists" => match operand.as_bool() {
                    Some(true) => format!("{sql} IS NOT NULL"),
                    Some(false) => format!("{sql} IS NULL"),
                    None => {
                        return Err(bad(format!("filter.{name}.$exists must be true or false")))
                    }
                },
                "$in" | "$notIn" => {
                    let items = operand.as_array().ok_or_else(|| {
                        bad(format!("filter.{name}.{op} must be a list, got {operand}"))
                    })?;
                    if items.len() > MAX_CONDITIONS {
                        return Err(bad(format!(
                            "filter.{name}.{op} holds more than {MAX_CONDITIONS} values"
                        )));
                    }
                    if items.is_empty() {
                        (if op == "$in" { "1 = 0" } else { "1 = 1" }).to_string()
                    } else {
                        let mut params = Vec::with_capacity(items.len());
                        for item in items {
                            let p = bind_value(self.resource, field, item)?;
                            params.push(self.push(p));
                        }
                        let not = if op == "$in" { "" } else { "NOT " };
                        format!("{sql} {not}IN ({})", params.join(", "))
                    }
                }
                "$like" => {
                    let pattern = operand.as_str().ok_or_else(|| {
                        bad(format!(
                            "filter.{name}.$like must be a string, got {operand}"
                        ))
                    })?;
                    let p = self.push(Bind::Text(like_pattern(pattern)));
                    format!("{sql} LIKE {p} ESCAPE '\\'")
                }
                "$eq" | "$neq" | "$gt" | "$gte" | "$lt" | "$lte" => {
                    let compare = match op.as_str() {
                        "$eq" => "=",
                        "$neq" => "<>",
                        "$gt" => ">",
                        "$gte" => ">=",
                        "$lt" => "<",
                        _ => "<=",
                    };
                    let p = bind_value(self.resource, field, operand)?;
                    let p = self.push(p);
                    format!("{sql} {compare} {p}")
                }
                other => {
                    return Err(bad(format!(
                        "filter.{name}: unknown operator '{other}'; known: $eq, $neq, $gt, $gte, \
                         $lt, $lte, $like, $in, $notIn, $exists"
                    )))
                }
            };
            conditions.push(condition);
        }
        Ok(conditions)
    }

    fn add_sort(&mut self, sort: &Value) -> Result<(), StoreError> {
        let name = sort
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("each sort entry needs a field, got {sort}")))?;
        let field = self.field(name, "sort field")?;
        let descending = match sort.get("order").and_then(Value::as_str) {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("asc") => false,
            Some(o) if o.eq_ignore_ascii_case("desc") => true,
            Some(o) => {
                return Err(bad(format!(
                    "sort order of '{name}' must be ASC or DESC, got '{o}'"
                )))
            }
        };
        if !field.is_constant() {
            let column = self
                .resource
                .fields
                .iter()
                .position(|f| std::ptr::eq(f, field))
                .expect("a resource's field");
            self.sort.push(Sort {
                field,
                column,
                descending,
            });
        }
        Ok(())
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// Binds the filter's parameters, and the cursor's with `keyset`.
    fn bind<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        keyset: bool,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let cursor = self.keyset.iter().filter(|_| keyset);
        for b in self.binds.iter().chain(cursor.flat_map(|(_, b)| b)) {
            query = match b {
                Bind::Int(i) => query.bind(*i),
                Bind::Text(t) => query.bind(t.as_str()),
            };
        }
        query
    }
}

/// The cursor of a result row: its values of the `order` terms.
fn row_cursor(order: &[Sort], row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
    let mut values = Vec::with_capacity(order.len());
    for term in order {
        values.push(match term.field.kind {
            Kind::Text | Kind::Json => row
                .try_get::<Option<String>, _>(term.column)?
                .map_or(Value::Null, Value::String),
            _ => row
                .try_get::<Option<i64>, _>(term.column)?
                .map_or(Value::Null, Value::from),
        });
    }
    Ok(encode_cursor(&values))
}

/// A row as an item: every field of `resource` under its API name.
fn item(resource: &Resource, row: &sqlx::any::AnyRow) -> Result<Map<String, Value>, sqlx::Error> {
    let mut out = Map::new();
    for (i, field) in resource.fields.iter().enumerate() {
        if !field.in_results {
            continue;
        }
        let value = match field.kind {
            Kind::Key => row
                .try_get::<Option<i64>, _>(i)?
                .map_or(Value::Null, |k| Value::String(k.to_string())),
            Kind::Int => row
                .try_get::<Option<i64>, _>(i)?
                .map_or(Value::Null, Value::from),
            Kind::Date => row
                .try_get::<Option<i64>, _>(i)?
                .map_or(Value::Null, |ms| Value::String(time::format_ms(ms))),
            Kind::Bool => row
                .try_get::<Option<i64>, _>(i)?
                .map_or(Value::Null, |b| Value::Bool(b != 0)),
            Kind::Text => row
                .try_get::<Option<String>, _>(i)?
                .map_or(Value::Null, Value::String),
            Kind::Json => row
                .try_get::<Option<String>, _>(i)?
                .map_or(Value::Null, |t| {
                    serde_json::from_str(&t).unwrap_or(Value::String(t))
                }),
        };
        out.insert(field.name.to_string(), value);
    }
    Ok(out)
}

impl Store {
    /// Runs `request`: the matching items of its page and the total count.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResult, StoreError> {
        let resource = request.resource;
        let filter = request.where_clause();
        let count_sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 AS one FROM {}{filter} LIMIT {}) counted",
            resource.from,
            MAX_COUNTED_ITEMS + 1
        );
        let counted: i64 = request
            .bind(sqlx::query(&count_sql), false)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| self.error(e))?;
        let columns: Vec<&str> = resource.fields.iter().map(|f| f.sql).collect();
        let order = request.order();
        let before = request.page.cursor.as_ref().is_some_and(|c| c.before);
        let order_by: Vec<String> = order.iter().map(|s| s.order_by(before)).collect();
        let mut filter = filter;
        if let Some((condition, _)) = &request.keyset {
            filter.push_str(if filter.is_empty() {
                " WHERE "
            } else {
                " AND "
            });
            filter.push_str(condition);
        }
        let select_sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY {} LIMIT {} OFFSET {}",
            columns.join(", "),
            resource.from,
            order_by.join(", "),
            request.page.limit,
            request.page.from
        );
        let mut rows = request
            .bind(sqlx::query(&select_sql), true)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        if before {
            rows.reverse();
        }
        let items = rows
            .iter()
            .map(|r| item(resource, r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        let cursor = |row: Option<&sqlx::any::AnyRow>| {
            row.map(|r| row_cursor(&order, r))
                .transpose()
                .map_err(|e| self.error(e))
        };
        let start_cursor = cursor(rows.first())?;
        let end_cursor = cursor(rows.last())?;
        Ok(SearchResult {
            items,
            total_items: counted.min(MAX_COUNTED_ITEMS),
            has_more_total_items: counted > MAX_COUNTED_ITEMS,
            start_cursor,
            end_cursor,
        })
    }

    /// The item of `resource` whose key is `key`, if the store has it.
    pub async fn get(
        &self,
        resource: &'static Resource,
        key: i64,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.get_by(resource, &Value::from(key)).await
    }

    /// The item of `resource` whose key field equals `key` (a number, or
    /// text for a text key such as a decision evaluation instance key).
    pub async fn get_by(
        &self,
        resource: &'static Resource,
        key: &Value,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let request =
            SearchRequest::parse(resource, &Value::Null)?.with_equal(resource.key, key)?;
        Ok(self.search(&request).await?.items.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::PROCESS_INSTANCES;
    use serde_json::json;

    #[test]
    fn like_patterns_take_wildcards_and_escapes() {
        assert_eq!(like_pattern("ord*_?"), "ord%\\__");
        assert_eq!(like_pattern("a\\*b"), "a*b");
        assert_eq!(like_pattern("100%"), "100\\%");
    }

    #[test]
    fn pages_and_cursors() {
        let p = parse_page(Some(&json!({"from": 5, "limit": 2}))).unwrap();
        assert_eq!((p.from, p.limit, p.cursor), (5, 2, None));
        let after = encode_cursor(&[json!(7), json!("x"), Value::Null]);
        let p = parse_page(Some(&json!({"after": after, "limit": 3}))).unwrap();
        let cursor = p.cursor.unwrap();
        assert_eq!((p.from, p.limit, cursor.before), (0, 3, false));
        assert_eq!(cursor.values, [json!(7), json!("x"), Value::Null]);
        let p = parse_page(Some(&json!({"before": after, "limit": 5}))).unwrap();
        assert!(p.cursor.unwrap().before);
        assert!(parse_page(Some(&json!({"from": 1, "after": after}))).is_err());
        assert!(parse_page(Some(&json!({"limit": 10001}))).is_err());
        assert!(parse_page(Some(&json!({"after": "nonsense"}))).is_err());
        assert!(parse_page(Some(&json!({"after": encode_cursor(&[])}))).is_err());
    }

    #[test]
    fn keyset_conditions_follow_the_sort_with_nulls_last() {
        let body = |cursor: &str, values: Value| {
            json!({
                "sort": [{"field": "endDate", "order": "DESC"}],
                "page": {cursor: encode_cursor(values.as_array().unwrap())},
                "filter": {"state": "ACTIVE"},
            })
        };
        let r = SearchRequest::parse(&PROCESS_INSTANCES, &body("after", json!([5, 9]))).unwrap();
        let (condition, binds) = r.keyset.unwrap();
        assert_eq!(
            condition,
            "(((p.end_ms < $2 OR p.end_ms IS NULL)) OR (p.end_ms = $2 AND p.process_instance_key > $3))"
        );
        // After the filter's parameter, one per cursor value.
        assert_eq!(binds, [Bind::Int(5), Bind::Int(9)]);
        // After a NULL only the NULLs with a higher key; before it every
        // value, and the NULLs with a lower key.
        let r = SearchRequest::parse(&PROCESS_INSTANCES, &body("after", json!([null, 9]))).unwrap();
        assert_eq!(
            r.keyset.unwrap().0,
            "((p.end_ms IS NULL AND p.process_instance_key > $2))"
        );
        let r =
            SearchRequest::parse(&PROCESS_INSTANCES, &body("before", json!([null, 9]))).unwrap();
        assert_eq!(
            r.keyset.unwrap().0,
            "((p.end_ms IS NOT NULL) OR (p.end_ms IS NULL AND p.process_instance_key < $2))"
        );
        // A cursor of another sort, or with values of the wrong type.
        for values in [json!([9]), json!(["x", 9]), json!([5, 9, 1])] {
            let e = SearchRequest::parse(&PROCESS_INSTANCES, &body("after", values))
                .unwrap_err()
                .to_string();
            assert!(e.contains("page.after") && e.contains("cursor"), "{e}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_naming_them() {
        let e = SearchRequest::parse(&PROCESS_INSTANCES, &json!({"filter": {"colour": "red"}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("colour") && e.contains("processInstanceKey"),
            "{e}"
        );
        let e = SearchRequest::parse(
            &PROCESS_INSTANCES,
            &json!({"filter": {"processInstanceKey": "x1"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("processInstanceKey") && e.contains("x1"), "{e}");
        let e = SearchRequest::parse(
            &PROCESS_INSTANCES,
            &json!({"sort": [{"field": "state", "order": "UP"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("UP"), "{e}");
        let r = SearchRequest::parse(
            &PROCESS_INSTANCES,
            &json!({"filter": {"state": {"$in": ["ACTIVE", "COMPLETED"]}, "hasIncident": false}}),
        )
        .unwrap();
        // The flag filters through its indexed condition, with no parameter.
        assert_eq!(r.binds.len(), 2);
        assert_eq!(r.conditions.len(), 2);
        assert!(
            r.conditions.iter().any(|c| c == "NOT (p.has_incident = 1)"),
            "{:?}",
            r.conditions
        );
        let e = SearchRequest::parse(
            &crate::resources::USER_TASKS,
            &json!({"filter": {"candidateGroup": {"$like": "sal*"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("candidateGroup") && e.contains("$in"), "{e}");
        let e = SearchRequest::parse(
            &crate::resources::USER_TASKS,
            &json!({"filter": {"colour": 1}}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("candidateUser"),
            "the list filters are known: {e}"
        );
    }
}
