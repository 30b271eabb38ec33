//! Roles, groups and tenants, all three the same way (`{kind}` is
//! `roles`, `groups` or `tenants`, `{id}` its `roleId`, `groupId` or
//! `tenantId`):
//!
//! ```text
//! POST   /v2/{kind}                        201 {id, name, description}
//! POST   /v2/{kind}/search
//! GET    /v2/{kind}/{id}
//! PUT    /v2/{kind}/{id}                   {name, description}
//! DELETE /v2/{kind}/{id}                   204
//! PUT    /v2/{kind}/{id}/{members}/{member} 204   add a member
//! DELETE /v2/{kind}/{id}/{members}/{member} 204   remove it
//! POST   /v2/{kind}/{id}/{members}/search        list the members
//! POST   /v2/groups/{id}/roles/search            the roles a group is in
//! ```
//!
//! `{members}` is `users`, `clients`, `groups`, `roles` or
//! `mapping-rules`, as far as the kind takes them (see
//! `engine::collectives`). Changes are `ROLE`, `GROUP` and `TENANT`
//! commands on the deployment partition; reads come from the replicated
//! state this node holds.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use engine::access::{OWNER_CLIENT, OWNER_GROUP, OWNER_MAPPING_RULE, OWNER_ROLE, OWNER_USER};
use engine::collectives::{CollectiveRecord, Kind};
use engine::identity::Identity;
use engine::Intent;
use serde_json::{json, Value};

use super::body::{Body, MaybeBody};
use super::entity_search::{search_views, SearchQuery};
use super::problem::Problem;
use super::users::identity_command;
use super::{Rest, Shared};
use crate::command::PartitionCommand;

/// The path segment of `kind`.
fn plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Role => "roles",
        Kind::Group => "groups",
        Kind::Tenant => "tenants",
    }
}

/// The id property of `kind` (`roleId`, ...).
fn id_property(kind: Kind) -> String {
    format!("{}Id", kind.noun())
}

/// The path segment and id property of members of `member_type`.
fn member_names(member_type: &str) -> (&'static str, &'static str) {
    match member_type {
        OWNER_USER => ("users", "username"),
        OWNER_CLIENT => ("clients", "clientId"),
        OWNER_GROUP => ("groups", "groupId"),
        OWNER_ROLE => ("roles", "roleId"),
        _ => ("mapping-rules", "mappingRuleId"),
    }
}

/// A role, group or tenant as the API shows it.
pub fn view(kind: Kind, record: &CollectiveRecord) -> Value {
    json!({
        id_property(kind): record.id,
        "name": record.name,
        "description": record.description,
    })
}

/// A required string property of `body`.
fn text(body: &Value, property: &str) -> Result<String, Problem> {
    match body.get(property) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Problem::bad_request(format!(
            "'{property}' must be a string, but is {other}"
        ))),
        None => Err(Problem::bad_request(format!("'{property}' is required"))),
    }
}

/// An optional string property of `body` (empty when absent or null).
fn optional_text(body: &Value, property: &str) -> Result<String, Problem> {
    match body.get(property) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => text(body, property),
    }
}

async fn send(
    rest: &Shared,
    kind: Kind,
    intent: Intent,
    record: CollectiveRecord,
) -> Result<(), Problem> {
    let command = PartitionCommand::Identity {
        intent,
        value: Box::new(kind.value(record)),
    };
    identity_command(rest, command).await.map(|_| ())
}

async fn create(
    kind: Kind,
    rest: Shared,
    body: Value,
) -> Result<(StatusCode, Json<Value>), Problem> {
    if !body.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    let record = CollectiveRecord {
        key: engine::NO_KEY,
        id: text(&body, &id_property(kind))?,
        name: text(&body, "name")?,
        description: optional_text(&body, "description")?,
        ..CollectiveRecord::default()
    };
    send(&rest, kind, Intent::Create, record.clone()).await?;
    Ok((StatusCode::CREATED, Json(view(kind, &record))))
}

async fn update(kind: Kind, rest: Shared, id: String, body: Value) -> Result<Json<Value>, Problem> {
    if !body.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    let record = CollectiveRecord {
        id,
        name: text(&body, "name")?,
        description: optional_text(&body, "description")?,
        ..CollectiveRecord::default()
    };
    send(&rest, kind, Intent::Update, record.clone()).await?;
    Ok(Json(view(kind, &record)))
}

async fn delete(kind: Kind, rest: Shared, id: String) -> Result<StatusCode, Problem> {
    let record = CollectiveRecord {
        id,
        ..CollectiveRecord::default()
    };
    send(&rest, kind, Intent::Delete, record).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(kind: Kind, id: &str) -> Problem {
    Problem::not_found(format!(
        "{} with id '{id}' not found",
        capitalized(kind.noun())
    ))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn get_one(kind: Kind, rest: Shared, id: String) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    identity
        .collectives(kind)
        .get(&id)
        .map(|c| Json(view(kind, &c.record)))
        .ok_or_else(|| not_found(kind, &id))
}

fn search(kind: Kind, rest: Shared, q: SearchQuery) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity
        .collectives(kind)
        .values()
        .map(|c| view(kind, &c.record))
        .collect();
    search_views(views, &q, &[&id_property(kind), "name"])
}

async fn membership(
    kind: Kind,
    intent: Intent,
    member_type: &'static str,
    rest: Shared,
    (id, member): (String, String),
) -> Result<StatusCode, Problem> {
    let record = CollectiveRecord {
        id,
        entity_type: member_type.into(),
        entity_id: member,
        ..CollectiveRecord::default()
    };
    send(&rest, kind, intent, record).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member as the member searches show it: roles and mapping rules in
/// full, the others by id.
fn member_view(identity: &Identity, member_type: &str, id: &str) -> Value {
    let (_, property) = member_names(member_type);
    match member_type {
        OWNER_ROLE => identity.roles.get(id).map(|r| view(Kind::Role, &r.record)),
        OWNER_MAPPING_RULE => identity
            .mapping_rules
            .get(id)
            .map(super::access::mapping_rule_view),
        _ => None,
    }
    .unwrap_or_else(|| json!({ property: id }))
}

/// The fields the member searches of `member_type` filter and sort on.
fn member_fields(member_type: &str) -> &'static [&'static str] {
    match member_type {
        OWNER_ROLE => &["roleId", "name"],
        OWNER_MAPPING_RULE => &["mappingRuleId", "claimName", "claimValue", "name"],
        OWNER_USER => &["username"],
        OWNER_CLIENT => &["clientId"],
        _ => &["groupId"],
    }
}

/// The members of `member_type` of `kind` `id`: none if there is no
/// such role, group or tenant (a search finds nothing).
fn members(
    kind: Kind,
    member_type: &'static str,
    rest: Shared,
    id: String,
    q: SearchQuery,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity
        .collectives(kind)
        .get(&id)
        .map(|c| {
            c.members_of_type(member_type)
                .map(|m| member_view(&identity, member_type, m))
                .collect()
        })
        .unwrap_or_default();
    search_views(views, &q, member_fields(member_type))
}

/// `POST /v2/groups/{groupId}/roles/search`: the roles the group is in.
fn group_roles(rest: Shared, id: String, q: SearchQuery) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    if !identity.groups.contains_key(&id) {
        return Err(not_found(Kind::Group, &id));
    }
    let group = (OWNER_GROUP.to_string(), id);
    let views = identity
        .roles
        .values()
        .filter(|r| r.members.contains(&group))
        .map(|r| view(Kind::Role, &r.record))
        .collect();
    search_views(views, &q, &["roleId", "name"])
}

/// Adds the routes of roles, groups and tenants to `router`.
pub fn routes(mut router: Router<Arc<Rest>>) -> Router<Arc<Rest>> {
    for kind in Kind::ALL {
        let base = format!("/{}", plural(kind));
        router = router
            .route(
                &base,
                post(move |rest: Shared, Body(body): Body<Value>| create(kind, rest, body)),
            )
            .route(
                &format!("{base}/search"),
                post(
                    move |rest: Shared, MaybeBody(q): MaybeBody<SearchQuery>| async move {
                        search(kind, rest, q)
                    },
                ),
            )
            .route(
                &format!("{base}/{{id}}"),
                axum::routing::get(move |rest: Shared, Path(id): Path<String>| async move {
                    get_one(kind, rest, id)
                })
                .put(
                    move |rest: Shared, Path(id): Path<String>, Body(body): Body<Value>| {
                        update(kind, rest, id, body)
                    },
                )
                .delete(move |rest: Shared, Path(id): Path<String>| delete(kind, rest, id)),
            );
        for &member_type in kind.member_types() {
            let (segment, _) = member_names(member_type);
            router = router
                .route(
                    &format!("{base}/{{id}}/{segment}/{{member}}"),
                    put(move |rest: Shared, Path(ids): Path<(String, String)>| {
                        membership(kind, Intent::AddEntity, member_type, rest, ids)
                    })
                    .delete(
                        move |rest: Shared, Path(ids): Path<(String, String)>| {
                            membership(kind, Intent::RemoveEntity, member_type, rest, ids)
                        },
                    ),
                )
                .route(
                    &format!("{base}/{{id}}/{segment}/search"),
                    post(
                        move |rest: Shared,
                              Path(id): Path<String>,
                              MaybeBody(q): MaybeBody<SearchQuery>| async move {
                            members(kind, member_type, rest, id, q)
                        },
                    ),
                );
        }
    }
    router.route(
        "/groups/{id}/roles/search",
        post(
            |rest: Shared, Path(id): Path<String>, MaybeBody(q): MaybeBody<SearchQuery>| async move {
                group_roles(rest, id, q)
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_name_their_id_by_kind() {
        let record = CollectiveRecord {
            id: "acme".into(),
            name: "Acme".into(),
            ..CollectiveRecord::default()
        };
        assert_eq!(view(Kind::Tenant, &record)["tenantId"], "acme");
        assert_eq!(view(Kind::Group, &record)["groupId"], "acme");
        assert_eq!(capitalized("role"), "Role");
    }
}
