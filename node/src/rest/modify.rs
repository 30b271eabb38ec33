//! `POST /v2/process-instances/{key}/modification` and
//! `POST /v2/process-instances/{key}/migration` (both 204), and the
//! `startInstructions` of `POST /v2/process-instances`. The bodies become the
//! same engine commands as gRPC's `ModifyProcessInstance` and
//! `MigrateProcessInstance`; the engine's rejections come back as problems
//! (400 for `INVALID_ARGUMENT`, 404 for `NOT_FOUND`, 409 for `INVALID_STATE`).

use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::body::{self, Body};
use super::instances::on_key;
use super::keys::{self, Key};
use super::problem::Problem;
use super::Shared;
use crate::command::PartitionCommand;
use engine::{
    ActivateInstruction, MappingInstruction, ProcessInstanceMigrationRecord,
    ProcessInstanceModificationRecord, VariableInstruction, NO_KEY,
};

/// Body of a modification.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Modification {
    #[allow(dead_code)]
    operation_reference: Option<i64>,
    #[serde(default)]
    activate_instructions: Vec<Activate>,
    #[serde(default)]
    terminate_instructions: Vec<Terminate>,
    /// Later API versions (moving all instances of an element); refused
    /// rather than ignored.
    #[serde(default)]
    move_instructions: Vec<Value>,
}

/// One activate instruction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activate {
    element_id: String,
    ancestor_element_instance_key: Option<Key>,
    #[serde(default)]
    variable_instructions: Vec<Variables>,
}

/// Variables of an activate instruction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variables {
    variables: Value,
    #[serde(default)]
    scope_id: String,
}

/// One terminate instruction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminate {
    element_instance_key: Option<Key>,
    /// Later API versions: every instance of an element; refused.
    element_id: Option<String>,
}

/// `POST /v2/process-instances/{processInstanceKey}/modification`.
pub async fn modify(
    rest: Shared,
    Path(key): Path<String>,
    Body(m): Body<Modification>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("processInstanceKey", &key)?;
    if !m.move_instructions.is_empty() {
        return Err(Problem::bad_request(
            "'moveInstructions' are not supported by waggle yet; send 'terminateInstructions' with the element instance keys and 'activateInstructions' with the target elements",
        ));
    }
    let mut terminate_instructions = Vec::with_capacity(m.terminate_instructions.len());
    for t in &m.terminate_instructions {
        match (t.element_instance_key, &t.element_id) {
            (Some(Key(k)), None) => terminate_instructions.push(k),
            (None, Some(_)) => {
                return Err(Problem::bad_request(
                    "'terminateInstructions[].elementId' is not supported by waggle yet; name each element instance with 'elementInstanceKey'",
                ))
            }
            _ => {
                return Err(Problem::bad_request(
                    "'terminateInstructions[]' must each hold an 'elementInstanceKey'",
                ))
            }
        }
    }
    let mut activate_instructions = Vec::with_capacity(m.activate_instructions.len());
    for a in m.activate_instructions {
        if a.element_id.trim().is_empty() {
            return Err(Problem::bad_request(
                "'activateInstructions[].elementId' must be the id of a BPMN element, but it was blank",
            ));
        }
        let mut variable_instructions = Vec::with_capacity(a.variable_instructions.len());
        for v in a.variable_instructions {
            variable_instructions.push(VariableInstruction {
                variables: body::variables(
                    "activateInstructions[].variableInstructions[].variables",
                    Some(&v.variables),
                )?,
                element_id: v.scope_id,
            });
        }
        activate_instructions.push(ActivateInstruction {
            element_id: a.element_id,
            ancestor_scope_key: match a.ancestor_element_instance_key {
                Some(Key(k)) if k > 0 => k,
                _ => NO_KEY,
            },
            variable_instructions,
            ancestor_scope_keys: Vec::new(),
        });
    }
    let command = PartitionCommand::ModifyInstance {
        value: Box::new(ProcessInstanceModificationRecord {
            process_instance_key: key,
            terminate_instructions,
            activate_instructions,
        }),
    };
    on_key(&rest, "processInstanceKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a migration: flat, unlike gRPC's `migrationPlan`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    target_process_definition_key: Key,
    mapping_instructions: Vec<Mapping>,
    #[allow(dead_code)]
    operation_reference: Option<i64>,
}

/// One mapping instruction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mapping {
    source_element_id: String,
    target_element_id: String,
}

/// `POST /v2/process-instances/{processInstanceKey}/migration`.
pub async fn migrate(
    rest: Shared,
    Path(key): Path<String>,
    Body(m): Body<Migration>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("processInstanceKey", &key)?;
    if m.target_process_definition_key.0 <= 0 {
        return Err(Problem::bad_request(format!(
            "'targetProcessDefinitionKey' must be a process definition key, got {}",
            m.target_process_definition_key.0
        )));
    }
    let command = PartitionCommand::MigrateInstance {
        value: Box::new(ProcessInstanceMigrationRecord {
            process_instance_key: key,
            target_process_definition_key: m.target_process_definition_key.0,
            mapping_instructions: m
                .mapping_instructions
                .into_iter()
                .map(|i| MappingInstruction {
                    source_element_id: i.source_element_id,
                    target_element_id: i.target_element_id,
                })
                .collect(),
        }),
    };
    on_key(&rest, "processInstanceKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The element ids of `startInstructions` (`[{"elementId": "..."}]`).
pub fn start_instructions(instructions: &[Value]) -> Result<Vec<String>, Problem> {
    instructions
        .iter()
        .map(|i| match i.get("elementId").and_then(Value::as_str) {
            Some(id) if !id.trim().is_empty() => Ok(id.to_string()),
            _ => Err(Problem::bad_request(
                "'startInstructions[].elementId' must be the id of a BPMN element to start at",
            )),
        })
        .collect()
}
