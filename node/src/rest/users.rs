//! Users of basic authentication: `POST /v2/users`, `PUT`, `GET` and
//! `DELETE /v2/users/{username}`, `POST /v2/users/search`, and
//! `GET /v2/authentication/me`.
//!
//! Changes are `USER` commands on the deployment partition (the password
//! hashed here with Argon2id, off the async threads), so they are as
//! durable as a deployment and reach every partition. Reads come from the
//! users this node's replicas hold ([`crate::identity::users::Directory`]),
//! not from secondary storage: a user is there once a local replica applied
//! its creation. Responses never carry passwords or their hashes.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::identity::UserRecord;
use engine::Intent;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{Body, MaybeBody};
use super::problem::Problem;
use super::Shared;
use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::identity::users::hash_password;
use crate::identity::Principal;
use crate::routing::DEPLOYMENT_PARTITION;

/// Body of `POST /v2/users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Body of `PUT /v2/users/{username}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    password: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

/// Body of the searches of users, roles and authorizations.
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

fn view(user: &UserRecord) -> Value {
    json!({"username": user.username, "name": user.name, "email": user.email})
}

/// Hashes `password` on a blocking thread.
async fn hashed(password: String) -> Result<String, Problem> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| CommandError::Internal(format!("hashing the password failed: {e}")).into())
}

/// Sends a `USER`, `ROLE` or `AUTHORIZATION` command to the deployment
/// partition once every node can read it; the key it answers.
pub(super) async fn identity_command(
    rest: &Shared,
    command: PartitionCommand,
) -> Result<i64, Problem> {
    crate::identity::initial::every_node_reads_users(rest.dispatcher.context()).map_err(|why| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!("identities cannot be changed yet: {why}"),
        )
    })?;
    let timeout = rest.dispatcher.request_timeout();
    match rest
        .dispatcher
        .execute(DEPLOYMENT_PARTITION, command, timeout)
        .await?
    {
        CommandReply::Key(key) => Ok(key),
        other => {
            Err(CommandError::Internal(format!("an identity change was answered {other:?}")).into())
        }
    }
}

async fn send(rest: &Shared, intent: Intent, user: UserRecord) -> Result<(), Problem> {
    let command = PartitionCommand::User {
        intent,
        value: Box::new(user),
    };
    identity_command(rest, command).await.map(|_| ())
}

/// `POST /v2/users`: 201 with the user.
pub async fn create(
    rest: Shared,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    if new.password.is_empty() {
        return Err(Problem::bad_request("No password provided."));
    }
    let user = UserRecord {
        user_key: engine::NO_KEY,
        username: new.username,
        name: new.name.unwrap_or_default(),
        email: new.email.unwrap_or_default(),
        password: hashed(new.password).await?,
    };
    send(&rest, Intent::Create, user.clone()).await?;
    Ok((StatusCode::CREATED, Json(view(&user))))
}

/// `PUT /v2/users/{username}`: the user as changed (an absent password
/// keeps the old one).
pub async fn update(
    rest: Shared,
    Path(username): Path<String>,
    MaybeBody(u): MaybeBody<UserUpdate>,
) -> Result<Json<Value>, Problem> {
    let old = rest.dispatcher.context().view.directory.user(&username);
    let password = match u.password.filter(|p| !p.is_empty()) {
        Some(p) => hashed(p).await?,
        None => String::new(),
    };
    let user = UserRecord {
        user_key: engine::NO_KEY,
        name: u
            .name
            .or_else(|| old.as_ref().map(|o| o.name.clone()))
            .unwrap_or_default(),
        email: u
            .email
            .or_else(|| old.as_ref().map(|o| o.email.clone()))
            .unwrap_or_default(),
        username,
        password,
    };
    send(&rest, Intent::Update, user.clone()).await?;
    Ok(Json(view(&user)))
}

/// `DELETE /v2/users/{username}`: 204.
pub async fn delete(rest: Shared, Path(username): Path<String>) -> Result<StatusCode, Problem> {
    let user = UserRecord {
        username,
        ..UserRecord::default()
    };
    send(&rest, Intent::Delete, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/users/{username}`.
pub async fn get(rest: Shared, Path(username): Path<String>) -> Result<Json<Value>, Problem> {
    match rest.dispatcher.context().view.directory.user(&username) {
        Some(user) => Ok(Json(view(&user))),
        None => Err(Problem::not_found(format!(
            "User with username '{username}' not found"
        ))),
    }
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

/// `POST /v2/users/search`.
pub async fn search(
    rest: Shared,
    MaybeBody(q): MaybeBody<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity.users.values().map(view).collect();
    search_views(views, &q, &["username", "name", "email"])
}

/// `GET /v2/authentication/me`: who the credentials belong to.
pub async fn me(rest: Shared, principal: Option<Extension<Principal>>) -> Json<Value> {
    let principal = principal.map_or(Principal::Anonymous, |Extension(p)| p);
    let user = match &principal {
        Principal::User(name) => rest.dispatcher.context().view.directory.user(name),
        Principal::Anonymous | Principal::Client(_) => None,
    };
    Json(json!({
        "username": principal.name(),
        "displayName": user.as_ref().map_or(principal.name(), |u| if u.name.is_empty() { &u.username } else { &u.name }),
        "email": user.as_ref().map(|u| u.email.clone()),
        "authorizedComponents": ["*"],
        "tenants": [],
        "groups": [],
        "roles": [],
        "salesPlanType": null,
        "c8Links": {},
        "canLogout": !matches!(principal, Principal::Anonymous),
    }))
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
