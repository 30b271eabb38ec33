//! Roles and authorizations: `POST /v2/roles`, `GET`, `PUT`, `DELETE
//! /v2/roles/{roleId}`, `POST /v2/roles/search`, `PUT` and `DELETE
//! /v2/roles/{roleId}/users/{username}` and `.../clients/{clientId}`;
//! `POST /v2/authorizations`, `GET` and `DELETE
//! /v2/authorizations/{authorizationKey}`, `POST /v2/authorizations/search`.
//!
//! Changes are `ROLE` and `AUTHORIZATION` commands on the deployment
//! partition (see `users.rs`); reads come from the replicated state this
//! node holds.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use engine::access::{AuthorizationRecord, RoleRecord, OWNER_CLIENT, OWNER_USER};
use engine::Intent;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{Body, MaybeBody};
use super::keys;
use super::problem::Problem;
use super::users::{identity_command, search_views, SearchQuery};
use super::Shared;
use crate::command::PartitionCommand;

/// Body of `POST /v2/roles`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRole {
    role_id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// Body of `PUT /v2/roles/{roleId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleUpdate {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// Body of `POST /v2/authorizations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuthorization {
    owner_id: String,
    owner_type: String,
    resource_id: String,
    resource_type: String,
    permission_types: Vec<String>,
}

fn role_view(role: &RoleRecord) -> Value {
    json!({"roleId": role.role_id, "name": role.name, "description": role.description})
}

fn authorization_view(a: &AuthorizationRecord) -> Value {
    json!({
        "authorizationKey": keys::to_string(a.authorization_key),
        "ownerId": a.owner_id,
        "ownerType": a.owner_type,
        "resourceType": a.resource_type,
        "resourceId": a.resource_id,
        "resourcePropertyName": null,
        "permissionTypes": a.permission_types,
    })
}

async fn role_command(rest: &Shared, intent: Intent, role: RoleRecord) -> Result<i64, Problem> {
    let command = PartitionCommand::Role {
        intent,
        value: Box::new(role),
    };
    identity_command(rest, command).await
}

/// `POST /v2/roles`: 201 with the role.
pub async fn create_role(
    rest: Shared,
    Body(new): Body<NewRole>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let role = RoleRecord {
        role_key: engine::NO_KEY,
        role_id: new.role_id,
        name: new.name,
        description: new.description.unwrap_or_default(),
        ..RoleRecord::default()
    };
    role_command(&rest, Intent::Create, role.clone()).await?;
    Ok((StatusCode::CREATED, Json(role_view(&role))))
}

/// `PUT /v2/roles/{roleId}`.
pub async fn update_role(
    rest: Shared,
    Path(role_id): Path<String>,
    Body(u): Body<RoleUpdate>,
) -> Result<Json<Value>, Problem> {
    let role = RoleRecord {
        role_id,
        name: u.name,
        description: u.description.unwrap_or_default(),
        ..RoleRecord::default()
    };
    role_command(&rest, Intent::Update, role.clone()).await?;
    Ok(Json(role_view(&role)))
}

/// `DELETE /v2/roles/{roleId}`: 204.
pub async fn delete_role(rest: Shared, Path(role_id): Path<String>) -> Result<StatusCode, Problem> {
    let role = RoleRecord {
        role_id,
        ..RoleRecord::default()
    };
    role_command(&rest, Intent::Delete, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/roles/{roleId}`.
pub async fn get_role(rest: Shared, Path(role_id): Path<String>) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    identity
        .roles
        .get(&role_id)
        .map(|r| Json(role_view(&r.record)))
        .ok_or_else(|| Problem::not_found(format!("Role with id '{role_id}' not found")))
}

/// `POST /v2/roles/search`.
pub async fn search_roles(
    rest: Shared,
    MaybeBody(q): MaybeBody<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity
        .roles
        .values()
        .map(|r| role_view(&r.record))
        .collect();
    search_views(views, &q, &["roleId", "name"])
}

async fn membership(
    rest: &Shared,
    intent: Intent,
    role_id: String,
    entity_type: &str,
    entity_id: String,
) -> Result<StatusCode, Problem> {
    let role = RoleRecord {
        role_id,
        entity_type: entity_type.into(),
        entity_id,
        ..RoleRecord::default()
    };
    role_command(rest, intent, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/roles/{roleId}/users/{username}`: 204.
pub async fn add_user(
    rest: Shared,
    Path((role_id, username)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    membership(&rest, Intent::AddEntity, role_id, OWNER_USER, username).await
}

/// `DELETE /v2/roles/{roleId}/users/{username}`: 204.
pub async fn remove_user(
    rest: Shared,
    Path((role_id, username)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    membership(&rest, Intent::RemoveEntity, role_id, OWNER_USER, username).await
}

/// `PUT /v2/roles/{roleId}/clients/{clientId}`: 204.
pub async fn add_client(
    rest: Shared,
    Path((role_id, client_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    membership(&rest, Intent::AddEntity, role_id, OWNER_CLIENT, client_id).await
}

/// `DELETE /v2/roles/{roleId}/clients/{clientId}`: 204.
pub async fn remove_client(
    rest: Shared,
    Path((role_id, client_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    membership(
        &rest,
        Intent::RemoveEntity,
        role_id,
        OWNER_CLIENT,
        client_id,
    )
    .await
}

/// `POST /v2/authorizations`: 201 with its key.
pub async fn create_authorization(
    rest: Shared,
    Body(new): Body<NewAuthorization>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let command = PartitionCommand::Authorization {
        intent: Intent::Create,
        value: Box::new(AuthorizationRecord {
            authorization_key: engine::NO_KEY,
            owner_type: new.owner_type,
            owner_id: new.owner_id,
            resource_type: new.resource_type,
            resource_id: new.resource_id,
            permission_types: new.permission_types,
        }),
    };
    let key = identity_command(&rest, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"authorizationKey": keys::to_string(key)})),
    ))
}

/// `DELETE /v2/authorizations/{authorizationKey}`: 204.
pub async fn delete_authorization(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<StatusCode, Problem> {
    let command = PartitionCommand::Authorization {
        intent: Intent::Delete,
        value: Box::new(AuthorizationRecord {
            authorization_key: keys::parse("authorizationKey", &key)?,
            ..AuthorizationRecord::default()
        }),
    };
    identity_command(&rest, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/authorizations/{authorizationKey}`.
pub async fn get_authorization(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    let key = keys::parse("authorizationKey", &key)?;
    let identity = rest.dispatcher.context().view.directory.identity();
    identity
        .authorizations
        .get(&key)
        .map(|a| Json(authorization_view(a)))
        .ok_or_else(|| Problem::not_found(format!("Authorization with key '{key}' not found")))
}

/// `POST /v2/authorizations/search`.
pub async fn search_authorizations(
    rest: Shared,
    MaybeBody(q): MaybeBody<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity
        .authorizations
        .values()
        .map(authorization_view)
        .collect();
    search_views(
        views,
        &q,
        &["ownerId", "ownerType", "resourceType", "resourceId"],
    )
}
