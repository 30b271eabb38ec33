//! `POST /v2/messages/publication`, `POST /v2/signals/broadcast` and
//! `POST /v2/incidents/{key}/resolution`.

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
use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::gateway::validate;
use crate::identity::tenants;
use crate::routing::{partition_of_correlation_key, DEPLOYMENT_PARTITION};

/// Body of a message publication.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publication {
    name: String,
    #[serde(default)]
    correlation_key: String,
    #[serde(default)]
    time_to_live: i64,
    #[serde(default)]
    message_id: String,
    variables: Option<Value>,
    tenant_id: Option<String>,
}

fn unexpected(what: &str, reply: CommandReply) -> Problem {
    CommandError::Internal(format!(
        "{what} answered with an unexpected reply {reply:?}"
    ))
    .into()
}

/// `POST /v2/messages/publication`.
pub async fn publish(rest: Shared, Body(p): Body<Publication>) -> Result<Json<Value>, Problem> {
    validate::not_blank("name", &p.name)?;
    validate::at_least("timeToLive", p.time_to_live, 0)?;
    let tenant = p.tenant_id.unwrap_or_default();
    let partitions = rest.dispatcher.context().message_partitions();
    let partition = partition_of_correlation_key(&p.correlation_key, partitions);
    let command = PartitionCommand::PublishMessage {
        name: p.name,
        correlation_key: p.correlation_key,
        time_to_live_ms: p.time_to_live,
        message_id: p.message_id,
        variables: body::variables("variables", p.variables.as_ref())?,
    };
    let command = tenants::named(&tenant, command)?;
    let reply = rest
        .dispatcher
        .execute(partition, command, rest.dispatcher.request_timeout())
        .await?;
    match reply {
        CommandReply::Key(key) => Ok(Json(json!({
            "messageKey": keys::to_string(key),
            "tenantId": tenants::or_default(tenant),
        }))),
        other => Err(unexpected("message publication", other)),
    }
}

/// Body of a signal broadcast.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Broadcast {
    signal_name: String,
    variables: Option<Value>,
    tenant_id: Option<String>,
}

/// `POST /v2/signals/broadcast`: partition 1 takes the signal and
/// distributes it to the others.
pub async fn broadcast(rest: Shared, Body(b): Body<Broadcast>) -> Result<Json<Value>, Problem> {
    validate::not_blank("signalName", &b.signal_name)?;
    let tenant = b.tenant_id.unwrap_or_default();
    let command = PartitionCommand::BroadcastSignal {
        signal_name: b.signal_name,
        variables: body::variables("variables", b.variables.as_ref())?,
    };
    let command = tenants::named(&tenant, command)?;
    let reply = rest
        .dispatcher
        .execute(
            DEPLOYMENT_PARTITION,
            command,
            rest.dispatcher.request_timeout(),
        )
        .await?;
    match reply {
        CommandReply::Key(key) => Ok(Json(json!({
            "signalKey": keys::to_string(key),
            "tenantId": tenants::or_default(tenant),
        }))),
        other => Err(unexpected("signal broadcast", other)),
    }
}

/// Body of an incident resolution.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// `POST /v2/incidents/{incidentKey}/resolution`.
pub async fn resolve_incident(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(_): MaybeBody<Resolution>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("incidentKey", &key)?;
    on_key(
        &rest,
        "incidentKey",
        key,
        PartitionCommand::ResolveIncident { incident_key: key },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
