//! Authorizations and mapping rules:
//!
//! ```text
//! POST   /v2/authorizations                     201 {authorizationKey}
//! PUT    /v2/authorizations/{authorizationKey}  204
//! GET    /v2/authorizations/{authorizationKey}
//! DELETE /v2/authorizations/{authorizationKey}  204
//! POST   /v2/authorizations/search
//! POST   /v2/mapping-rules                      201 the rule
//! GET    /v2/mapping-rules/{mappingRuleId}
//! PUT    /v2/mapping-rules/{mappingRuleId}      the rule
//! DELETE /v2/mapping-rules/{mappingRuleId}      204
//! POST   /v2/mapping-rules/search
//! ```
//!
//! Changes are `AUTHORIZATION` and `MAPPING_RULE` commands on the
//! deployment partition (see `users.rs`); reads come from the replicated
//! state this node holds.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use engine::access::AuthorizationRecord;
use engine::mapping_rules::MappingRuleRecord;
use engine::{Intent, RecordValue};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{Body, MaybeBody};
use super::entity_search::{search_views, SearchQuery};
use super::keys;
use super::problem::Problem;
use super::users::identity_command;
use super::Shared;
use crate::command::PartitionCommand;

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

/// An authorization key of a path: one that is no key names nothing
/// (404, as the operations document no 400).
fn authorization_key(text: &str) -> Result<i64, Problem> {
    keys::parse("authorizationKey", text)
        .map_err(|_| Problem::not_found(format!("Authorization with key '{text}' not found")))
}

async fn send_authorization(
    rest: &Shared,
    intent: Intent,
    authorization_key: i64,
    body: NewAuthorization,
) -> Result<i64, Problem> {
    let command = PartitionCommand::Identity {
        intent,
        value: Box::new(RecordValue::Authorization(AuthorizationRecord {
            authorization_key,
            owner_type: body.owner_type,
            owner_id: body.owner_id,
            resource_type: body.resource_type,
            resource_id: body.resource_id,
            permission_types: body.permission_types,
        })),
    };
    identity_command(rest, command).await
}

/// `POST /v2/authorizations`: 201 with its key.
pub async fn create_authorization(
    rest: Shared,
    Body(new): Body<NewAuthorization>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let key = send_authorization(&rest, Intent::Create, engine::NO_KEY, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"authorizationKey": keys::to_string(key)})),
    ))
}

/// `PUT /v2/authorizations/{authorizationKey}`: 204; the owner, resource
/// and permissions all replaced.
pub async fn update_authorization(
    rest: Shared,
    Path(key): Path<String>,
    Body(new): Body<NewAuthorization>,
) -> Result<StatusCode, Problem> {
    let key = authorization_key(&key)?;
    send_authorization(&rest, Intent::Update, key, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/authorizations/{authorizationKey}`: 204.
pub async fn delete_authorization(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<StatusCode, Problem> {
    let command = PartitionCommand::Identity {
        intent: Intent::Delete,
        value: Box::new(RecordValue::Authorization(AuthorizationRecord {
            authorization_key: authorization_key(&key)?,
            ..AuthorizationRecord::default()
        })),
    };
    identity_command(&rest, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/authorizations/{authorizationKey}`.
pub async fn get_authorization(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    let key = authorization_key(&key)?;
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

/// Body of `POST /v2/mapping-rules` and (without the id) of `PUT`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingRuleBody {
    #[serde(default)]
    mapping_rule_id: Option<String>,
    claim_name: String,
    claim_value: String,
    name: String,
}

impl MappingRuleBody {
    fn record(self, mapping_rule_id: String) -> MappingRuleRecord {
        MappingRuleRecord {
            mapping_rule_key: engine::NO_KEY,
            mapping_rule_id,
            claim_name: self.claim_name,
            claim_value: self.claim_value,
            name: self.name,
        }
    }
}

/// A mapping rule as the API shows it.
pub fn mapping_rule_view(rule: &MappingRuleRecord) -> Value {
    json!({
        "mappingRuleId": rule.mapping_rule_id,
        "claimName": rule.claim_name,
        "claimValue": rule.claim_value,
        "name": rule.name,
    })
}

async fn send_rule(rest: &Shared, intent: Intent, rule: MappingRuleRecord) -> Result<(), Problem> {
    let command = PartitionCommand::Identity {
        intent,
        value: Box::new(RecordValue::MappingRule(rule)),
    };
    identity_command(rest, command).await.map(|_| ())
}

/// `POST /v2/mapping-rules`: 201 with the rule.
pub async fn create_mapping_rule(
    rest: Shared,
    Body(body): Body<MappingRuleBody>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let id = body
        .mapping_rule_id
        .clone()
        .ok_or_else(|| Problem::bad_request("'mappingRuleId' is required"))?;
    let rule = body.record(id);
    send_rule(&rest, Intent::Create, rule.clone()).await?;
    Ok((StatusCode::CREATED, Json(mapping_rule_view(&rule))))
}

/// `PUT /v2/mapping-rules/{mappingRuleId}`: the rule.
pub async fn update_mapping_rule(
    rest: Shared,
    Path(id): Path<String>,
    Body(body): Body<MappingRuleBody>,
) -> Result<Json<Value>, Problem> {
    let rule = body.record(id);
    send_rule(&rest, Intent::Update, rule.clone()).await?;
    Ok(Json(mapping_rule_view(&rule)))
}

/// `DELETE /v2/mapping-rules/{mappingRuleId}`: 204.
pub async fn delete_mapping_rule(
    rest: Shared,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let rule = MappingRuleRecord {
        mapping_rule_id: id,
        ..MappingRuleRecord::default()
    };
    send_rule(&rest, Intent::Delete, rule).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/mapping-rules/{mappingRuleId}`.
pub async fn get_mapping_rule(
    rest: Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    identity
        .mapping_rules
        .get(&id)
        .map(|r| Json(mapping_rule_view(r)))
        .ok_or_else(|| Problem::not_found(format!("Mapping rule with id '{id}' not found")))
}

/// `POST /v2/mapping-rules/search`.
pub async fn search_mapping_rules(
    rest: Shared,
    MaybeBody(q): MaybeBody<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity
        .mapping_rules
        .values()
        .map(mapping_rule_view)
        .collect();
    search_views(
        views,
        &q,
        &["mappingRuleId", "claimName", "claimValue", "name"],
    )
}
