//! `POST /v2/process-instances` (by id or by key, optionally awaiting
//! completion), `POST /v2/process-instances/{key}/cancellation` and
//! `PUT /v2/element-instances/{key}/variables`.

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body, MaybeBody};
use super::keys::{self, Key};
use super::problem::Problem;
use super::Shared;
use crate::command::{AwaitResult, CommandError, CommandReply, PartitionCommand};
use crate::gateway::validate;
use crate::identity::scope::Scope;
use crate::identity::tenants;

/// Body of `POST /v2/process-instances`: by `processDefinitionId` (with an
/// optional version, latest by default) or by `processDefinitionKey`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Creation {
    process_definition_id: Option<String>,
    process_definition_version: Option<i32>,
    process_definition_key: Option<Key>,
    variables: Option<Value>,
    tenant_id: Option<String>,
    operation_reference: Option<i64>,
    #[serde(default)]
    start_instructions: Vec<Value>,
    #[serde(default)]
    runtime_instructions: Vec<Value>,
    await_completion: Option<bool>,
    #[serde(default)]
    fetch_variables: Vec<String>,
    request_timeout: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
}

/// `POST /v2/process-instances`.
pub async fn create(
    rest: Shared,
    scope: Option<Extension<Scope>>,
    Body(c): Body<Creation>,
) -> Result<Json<Value>, Problem> {
    let _ = c.operation_reference;
    let (definition_key, bpmn_process_id) =
        match (&c.process_definition_key, &c.process_definition_id) {
            (Some(Key(key)), None) if *key > 0 => (*key, String::new()),
            (None, Some(id)) if !id.trim().is_empty() => (0, id.clone()),
            _ => return Err(Problem::bad_request(
                "Expected either a 'processDefinitionId' or a 'processDefinitionKey', and not both",
            )),
        };
    if definition_key == 0 {
        // By key, the engine checks the process of the key (see `caller`).
        Scope::check(scope.as_deref(), &bpmn_process_id, "process").map_err(Problem::forbidden)?;
    }
    if !c.runtime_instructions.is_empty() {
        // A request a client may send, not a server fault: 400, not 501.
        return Err(Problem::bad_request(
            "'runtimeInstructions' are not supported by waggle; send the instance without them",
        ));
    }
    let start_instructions = super::modify::start_instructions(&c.start_instructions)?;
    if !c.tags.is_empty() {
        return Err(Problem::bad_request(
            "'tags' are not supported by waggle yet; send the instance without tags",
        ));
    }
    let context = rest.dispatcher.context();
    let default_timeout = rest.dispatcher.request_timeout();
    let timeout = match c.request_timeout {
        Some(t) if t > 0 => Duration::from_millis(t as u64),
        _ => default_timeout,
    };
    let awaiting = c.await_completion.unwrap_or(false);
    let command = PartitionCommand::CreateInstance {
        definition_key,
        bpmn_process_id,
        version: c
            .process_definition_version
            .filter(|v| *v > 0)
            .unwrap_or(-1),
        variables: body::variables("variables", c.variables.as_ref())?,
        await_result: awaiting.then(|| AwaitResult {
            fetch_variables: c.fetch_variables.clone(),
            timeout_ms: timeout.as_millis() as u64,
        }),
        start_instructions,
    };
    let command = tenants::named(c.tenant_id.as_deref().unwrap_or(""), command)?;
    let order = rest.round_robin.order(context.partitions());
    let wait = if awaiting { timeout } else { default_timeout };
    let (_, reply) = rest
        .dispatcher
        .execute_anywhere(&order, command, wait)
        .await?;
    let result = match reply {
        CommandReply::Created(r) => json!({
            "processDefinitionId": r.bpmn_process_id,
            "processDefinitionVersion": r.version,
            "tenantId": r.tenant_id,
            "variables": {},
            "processDefinitionKey": keys::to_string(r.process_definition_key),
            "processInstanceKey": keys::to_string(r.process_instance_key),
            "tags": [],
            "businessId": null,
        }),
        CommandReply::Completed(r) => json!({
            "processDefinitionId": r.bpmn_process_id,
            "processDefinitionVersion": r.version,
            "tenantId": r.tenant_id,
            "variables": body::document(&r.variables),
            "processDefinitionKey": keys::to_string(r.process_definition_key),
            "processInstanceKey": keys::to_string(r.process_instance_key),
            "tags": [],
            "businessId": null,
        }),
        other => {
            return Err(CommandError::Internal(format!(
                "instance creation answered with an unexpected reply {other:?}"
            ))
            .into())
        }
    };
    Ok(Json(result))
}

/// Body of a cancellation.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// `POST /v2/process-instances/{processInstanceKey}/cancellation`.
pub async fn cancel(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(_): MaybeBody<Cancellation>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("processInstanceKey", &key)?;
    on_key(
        &rest,
        "processInstanceKey",
        key,
        PartitionCommand::CancelInstance {
            process_instance_key: key,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /v2/element-instances/{key}/variables`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variables {
    variables: Value,
    #[serde(default)]
    local: bool,
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// `PUT /v2/element-instances/{elementInstanceKey}/variables`.
pub async fn set_variables(
    rest: Shared,
    Path(key): Path<String>,
    Body(v): Body<Variables>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("elementInstanceKey", &key)?;
    let variables = body::variables("variables", Some(&v.variables))?;
    on_key(
        &rest,
        "elementInstanceKey",
        key,
        PartitionCommand::SetVariables {
            element_instance_key: key,
            variables,
            local: v.local,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs `command` on the partition that `key` belongs to.
pub async fn on_key(
    rest: &super::Rest,
    field: &str,
    key: i64,
    command: PartitionCommand,
) -> Result<CommandReply, Problem> {
    let partition = validate::key_partition(field, key, rest.dispatcher.context().partitions())?;
    Ok(rest
        .dispatcher
        .execute(partition, command, rest.dispatcher.request_timeout())
        .await?)
}
