//! `POST /v2/jobs/activation` (long polling like gRPC `ActivateJobs`),
//! `POST /v2/jobs/{key}/completion`, `/failure`, `/error`, and
//! `PATCH /v2/jobs/{key}` (retries and timeout).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body, MaybeBody};
use super::instances::on_key;
use super::keys;
use super::problem::Problem;
use super::Shared;
use crate::command::PartitionCommand;
use crate::gateway::activation::{self, Activation, MAX_JOBS_PER_ACTIVATION};
use crate::gateway::{proto, validate};

/// Body of `POST /v2/jobs/activation`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationRequest {
    #[serde(rename = "type")]
    job_type: String,
    worker: Option<String>,
    timeout: i64,
    max_jobs_to_activate: i32,
    #[serde(default)]
    fetch_variable: Vec<String>,
    request_timeout: Option<i64>,
    #[serde(default)]
    tenant_ids: Vec<String>,
}

fn job(j: proto::ActivatedJob) -> Value {
    json!({
        "type": j.r#type,
        "processDefinitionId": j.bpmn_process_id,
        "processDefinitionVersion": j.process_definition_version,
        "elementId": j.element_id,
        "customHeaders": body::document(&j.custom_headers),
        "worker": j.worker,
        "retries": j.retries,
        "deadline": j.deadline,
        "variables": body::document(&j.variables),
        "tenantId": j.tenant_id,
        "physicalTenantId": null,
        "jobKey": keys::to_string(j.key),
        "processInstanceKey": keys::to_string(j.process_instance_key),
        "processDefinitionKey": keys::to_string(j.process_definition_key),
        "elementInstanceKey": keys::to_string(j.element_instance_key),
        "kind": j.kind().as_str_name(),
        "listenerEventType": j.listener_event_type().as_str_name(),
        "userTask": j.user_task.as_ref().map(|t| json!({
            "action": t.action,
            "assignee": t.assignee,
            "candidateGroups": t.candidate_groups,
            "candidateUsers": t.candidate_users,
            "changedAttributes": t.changed_attributes,
            "dueDate": t.due_date,
            "followUpDate": t.follow_up_date,
            "formKey": t.form_key.map(keys::to_string),
            "priority": t.priority,
            "userTaskKey": t.user_task_key.map(keys::to_string),
        })),
        "tags": [],
        "rootProcessInstanceKey": null,
        "businessId": null,
        "priority": 0,
    })
}

/// `POST /v2/jobs/activation`.
pub async fn activate(
    rest: Shared,
    Body(r): Body<ActivationRequest>,
) -> Result<Json<Value>, Problem> {
    validate::not_blank("type", &r.job_type)?;
    validate::at_least("timeout", r.timeout, 1)?;
    validate::at_least("maxJobsToActivate", i64::from(r.max_jobs_to_activate), 1)?;
    let default_poll_ms = rest
        .dispatcher
        .context()
        .config
        .gateway
        .long_polling_timeout_ms;
    let request = Activation {
        job_type: r.job_type,
        worker: r.worker.unwrap_or_default(),
        timeout_ms: r.timeout,
        max_jobs: r.max_jobs_to_activate.min(MAX_JOBS_PER_ACTIVATION) as u32,
        fetch_variables: r.fetch_variable,
        long_poll: Activation::long_poll_of(r.request_timeout.unwrap_or(0), default_poll_ms),
        tenant_ids: r.tenant_ids,
    };
    let batches = activation::activate(&rest.dispatcher, &rest.round_robin, &request).await?;
    let jobs: Vec<Value> = batches.into_iter().flatten().map(job).collect();
    Ok(Json(json!({ "jobs": jobs })))
}

/// Body of a job completion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    variables: Option<Value>,
    result: Option<Value>,
}

/// `POST /v2/jobs/{jobKey}/completion`.
pub async fn complete(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(c): MaybeBody<Completion>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("jobKey", &key)?;
    let variables = body::variables("variables", c.variables.as_ref())?;
    let command = match c.result.as_ref().filter(|r| !r.is_null()) {
        None => PartitionCommand::CompleteJob {
            job_key: key,
            variables,
        },
        Some(result) => PartitionCommand::CompleteJobWithResult {
            job_key: key,
            variables,
            result: Box::new(
                crate::gateway::job_result::from_json(result).map_err(Problem::bad_request)?,
            ),
        },
    };
    on_key(&rest, "jobKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a job failure.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(default)]
    retries: i32,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    retry_back_off: i64,
    variables: Option<Value>,
}

/// `POST /v2/jobs/{jobKey}/failure`.
pub async fn fail(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(f): MaybeBody<Failure>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("jobKey", &key)?;
    validate::at_least("retryBackOff", f.retry_back_off, 0)?;
    let command = PartitionCommand::FailJob {
        job_key: key,
        retries: f.retries,
        error_message: f.error_message,
        retry_backoff_ms: f.retry_back_off,
        variables: body::variables("variables", f.variables.as_ref())?,
    };
    on_key(&rest, "jobKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a BPMN error thrown from a job.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrownError {
    error_code: String,
    #[serde(default)]
    error_message: String,
    variables: Option<Value>,
}

/// `POST /v2/jobs/{jobKey}/error`.
pub async fn throw_error(
    rest: Shared,
    Path(key): Path<String>,
    Body(e): Body<ThrownError>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("jobKey", &key)?;
    validate::not_blank("errorCode", &e.error_code)?;
    let command = PartitionCommand::ThrowError {
        job_key: key,
        error_code: e.error_code,
        error_message: e.error_message,
        variables: body::variables("variables", e.variables.as_ref())?,
    };
    on_key(&rest, "jobKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The fields `PATCH /v2/jobs/{jobKey}` may change.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changeset {
    retries: Option<i32>,
    timeout: Option<i64>,
}

/// Body of `PATCH /v2/jobs/{jobKey}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    changeset: Changeset,
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// `PATCH /v2/jobs/{jobKey}`: retries first, then the timeout.
pub async fn update(
    rest: Shared,
    Path(key): Path<String>,
    Body(u): Body<Update>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("jobKey", &key)?;
    let Changeset { retries, timeout } = u.changeset;
    if retries.is_none() && timeout.is_none() {
        return Err(Problem::bad_request(
            "'changeset' must name 'retries', 'timeout' or both",
        ));
    }
    if let Some(retries) = retries {
        validate::at_least("changeset.retries", i64::from(retries), 1)?;
        let command = PartitionCommand::UpdateJobRetries {
            job_key: key,
            retries,
        };
        on_key(&rest, "jobKey", key, command).await?;
    }
    if let Some(timeout) = timeout {
        validate::at_least("changeset.timeout", timeout, 1)?;
        let command = PartitionCommand::UpdateJobTimeout {
            job_key: key,
            timeout_ms: timeout,
        };
        on_key(&rest, "jobKey", key, command).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
