//! `POST /v2/decision-definitions/evaluation`: evaluates a deployed
//! decision by `decisionDefinitionKey`, or the latest version of
//! `decisionDefinitionId`, on any partition (deployments reach all). A
//! failed evaluation is a 200 with `failedDecisionDefinitionId` and
//! `failureMessage`, as in Camunda; an unknown decision is a 404.

use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body};
use super::keys::{self, Key};
use super::problem::Problem;
use super::Shared;
use crate::command::{CommandError, CommandReply};
use crate::gateway::proto;
use crate::gateway::validate;
use crate::identity::scope::Scope;
use crate::identity::tenants;

/// Body of an evaluation: by id (latest version) or by key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    decision_definition_id: Option<String>,
    decision_definition_key: Option<Key>,
    variables: Option<Value>,
    tenant_id: Option<String>,
}

/// `POST /v2/decision-definitions/evaluation`.
pub async fn evaluate(
    rest: Shared,
    scope: Option<Extension<Scope>>,
    Body(e): Body<Evaluation>,
) -> Result<Json<Value>, Problem> {
    let (key, id) = match (e.decision_definition_key, e.decision_definition_id) {
        (Some(Key(key)), None) if key > 0 => (key, String::new()),
        (None, Some(id)) if !id.trim().is_empty() => (-1, id),
        _ => return Err(Problem::bad_request(
            "Expected either a 'decisionDefinitionId' or a 'decisionDefinitionKey', and not both",
        )),
    };
    Scope::check(scope.as_deref(), &id, "decision").map_err(Problem::forbidden)?;
    let variables = body::variables("variables", e.variables.as_ref())?;
    let partitions = rest.dispatcher.context().partitions();
    let command = validate::evaluate_decision(key, id, &variables, partitions)?;
    let command = tenants::named(e.tenant_id.as_deref().unwrap_or(""), command)?;
    let order = rest.round_robin.order(partitions);
    let (_, reply) = rest
        .dispatcher
        .execute_anywhere(&order, command, rest.dispatcher.request_timeout())
        .await?;
    let CommandReply::Evaluated(r) = reply else {
        return Err(CommandError::Internal(format!(
            "the evaluation answered with an unexpected reply {reply:?}"
        ))
        .into());
    };
    Ok(Json(to_json(&r)))
}

/// The response body of the specification's `EvaluateDecisionResult`.
fn to_json(r: &proto::EvaluateDecisionResponse) -> Value {
    let evaluated: Vec<Value> = r
        .evaluated_decisions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "decisionDefinitionId": d.decision_id,
                "decisionDefinitionName": d.decision_name,
                "decisionDefinitionVersion": d.decision_version,
                "decisionDefinitionType": d.decision_type,
                "decisionDefinitionKey": keys::to_string(d.decision_key),
                "decisionEvaluationInstanceKey": format!("{}-{}", r.decision_instance_key, i + 1),
                "output": d.decision_output,
                "tenantId": d.tenant_id,
                "matchedRules": d.matched_rules.iter().map(|m| json!({
                    "ruleId": m.rule_id,
                    "ruleIndex": m.rule_index,
                    "evaluatedOutputs": m.evaluated_outputs.iter().map(|o| json!({
                        "outputId": o.output_id,
                        "outputName": o.output_name,
                        "outputValue": o.output_value,
                        "ruleId": m.rule_id,
                        "ruleIndex": m.rule_index,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "evaluatedInputs": d.evaluated_inputs.iter().map(|i| json!({
                    "inputId": i.input_id,
                    "inputName": i.input_name,
                    "inputValue": i.input_value,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let failed = !r.failure_message.is_empty();
    json!({
        "decisionDefinitionId": r.decision_id,
        "decisionDefinitionName": r.decision_name,
        "decisionDefinitionVersion": r.decision_version,
        "decisionDefinitionKey": keys::to_string(r.decision_key),
        "decisionRequirementsId": r.decision_requirements_id,
        "decisionRequirementsKey": keys::to_string(r.decision_requirements_key),
        "output": r.decision_output,
        "failedDecisionDefinitionId": if failed { Value::from(r.failed_decision_id.clone()) } else { Value::Null },
        "failureMessage": if failed { Value::from(r.failure_message.clone()) } else { Value::Null },
        "tenantId": r.tenant_id,
        "decisionInstanceKey": keys::to_string(r.decision_instance_key),
        "decisionEvaluationKey": keys::to_string(r.decision_instance_key),
        "evaluatedDecisions": evaluated,
    })
}
