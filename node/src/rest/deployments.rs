//! `POST /v2/deployments` (multipart: one or more file parts named
//! `resources`, an optional `tenantId` field; atomic, processed on the
//! deployment partition) and `POST /v2/resources/{resourceKey}/deletion`.

use axum::extract::{Multipart, Path};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::MaybeBody;
use super::problem::Problem;
use super::{keys, Shared};
use crate::command::{CommandReply, PartitionCommand};
use crate::gateway::proto::deployment::Metadata;
use crate::gateway::validate;
use crate::identity::tenants;
use crate::routing::DEPLOYMENT_PARTITION;

/// Most resources one deployment may carry.
pub const MAX_RESOURCES_PER_DEPLOYMENT: usize = 1_000;

/// `POST /v2/deployments`.
pub async fn deploy(rest: Shared, mut form: Multipart) -> Result<Json<Value>, Problem> {
    let mut resources = Vec::new();
    let mut tenant = String::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(format!("the multipart body is malformed: {e}")))?
    {
        match field.name().unwrap_or("") {
            "resources" => {
                let name = field
                    .file_name()
                    .map(str::to_string)
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| {
                        Problem::bad_request("every 'resources' part needs a file name")
                    })?;
                let content = field.bytes().await.map_err(|e| {
                    Problem::bad_request(format!("resource '{name}' could not be read: {e}"))
                })?;
                if resources.len() == MAX_RESOURCES_PER_DEPLOYMENT {
                    return Err(Problem::bad_request(format!(
                        "a deployment holds at most {MAX_RESOURCES_PER_DEPLOYMENT} resources"
                    )));
                }
                resources.push((name, content.to_vec()));
            }
            "tenantId" => {
                tenant = field.text().await.map_err(|e| {
                    Problem::bad_request(format!("'tenantId' could not be read: {e}"))
                })?;
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown part '{other}': expected 'resources' files and an optional 'tenantId'"
                )))
            }
        }
    }
    if resources.is_empty() {
        return Err(Problem::bad_request(
            "Expected to deploy at least one resource, but none given (send file parts named 'resources')",
        ));
    }
    let reply = rest
        .dispatcher
        .execute(
            DEPLOYMENT_PARTITION,
            tenants::named(&tenant, PartitionCommand::Deploy { resources })?,
            rest.dispatcher.request_timeout(),
        )
        .await?;
    let CommandReply::Deployed(response) = reply else {
        return Err(Problem::from(crate::command::CommandError::Internal(
            format!("deployment answered with an unexpected reply {reply:?}"),
        )));
    };
    let deployments: Vec<Value> = response
        .deployments
        .iter()
        .filter_map(|d| match &d.metadata {
            Some(Metadata::Process(p)) => Some(json!({
                "processDefinition": {
                    "processDefinitionId": p.bpmn_process_id,
                    "processDefinitionVersion": p.version,
                    "resourceName": p.resource_name,
                    "tenantId": p.tenant_id,
                    "processDefinitionKey": keys::to_string(p.process_definition_key),
                }
            })),
            Some(Metadata::Decision(d)) => Some(json!({
                "decisionDefinition": {
                    "decisionDefinitionId": d.dmn_decision_id,
                    "name": d.dmn_decision_name,
                    "version": d.version,
                    "tenantId": d.tenant_id,
                    "decisionRequirementsId": d.dmn_decision_requirements_id,
                    "decisionDefinitionKey": keys::to_string(d.decision_key),
                    "decisionRequirementsKey": keys::to_string(d.decision_requirements_key),
                }
            })),
            Some(Metadata::DecisionRequirements(r)) => Some(json!({
                "decisionRequirements": {
                    "decisionRequirementsId": r.dmn_decision_requirements_id,
                    "decisionRequirementsName": r.dmn_decision_requirements_name,
                    "version": r.version,
                    "resourceName": r.resource_name,
                    "tenantId": r.tenant_id,
                    "decisionRequirementsKey": keys::to_string(r.decision_requirements_key),
                }
            })),
            Some(Metadata::Form(f)) => Some(json!({
                "form": {
                    "formId": f.form_id,
                    "version": f.version,
                    "resourceName": f.resource_name,
                    "tenantId": f.tenant_id,
                    "formKey": keys::to_string(f.form_key),
                }
            })),
            _ => None,
        })
        .collect();
    Ok(Json(json!({
        "deploymentKey": keys::to_string(response.key),
        "tenantId": response.tenant_id,
        "deployments": deployments,
    })))
}

/// Body of a resource deletion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    /// Client's reference, echoed in records (accepted, not used).
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// `POST /v2/resources/{resourceKey}/deletion`.
pub async fn delete(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(_): MaybeBody<Deletion>,
) -> Result<Json<Value>, Problem> {
    let key = keys::parse("resourceKey", &key)?;
    validate::key_partition("resourceKey", key, rest.dispatcher.context().partitions())?;
    rest.dispatcher
        .execute(
            DEPLOYMENT_PARTITION,
            PartitionCommand::DeleteResource { resource_key: key },
            rest.dispatcher.request_timeout(),
        )
        .await?;
    Ok(Json(json!({
        "resourceKey": keys::to_string(key),
        "batchOperation": null,
    })))
}
