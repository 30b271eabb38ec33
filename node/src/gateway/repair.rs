//! `ModifyProcessInstance`, `MigrateProcessInstance` and the start
//! instructions of `CreateProcessInstance`: the gRPC requests checked and
//! turned into the engine's commands. The engine checks the instructions
//! against the instance (Zeebe's rejections); here only what needs no
//! state: keys, blank ids, variable documents that are not JSON objects.

use super::proto;
use super::validate;
use crate::command::{CommandError, PartitionCommand};
use engine::{
    ActivateInstruction, MappingInstruction, ProcessInstanceMigrationRecord,
    ProcessInstanceModificationRecord, VariableInstruction, NO_KEY,
};

/// The modification command of a `ModifyProcessInstance` request.
pub fn modify_command(
    request: proto::ModifyProcessInstanceRequest,
) -> Result<PartitionCommand, CommandError> {
    let mut activate_instructions = Vec::with_capacity(request.activate_instructions.len());
    for a in request.activate_instructions {
        validate::not_blank("activateInstructions.elementId", &a.element_id)?;
        let mut variable_instructions = Vec::with_capacity(a.variable_instructions.len());
        for v in a.variable_instructions {
            variable_instructions.push(VariableInstruction {
                variables: validate::variables(
                    "activateInstructions.variableInstructions.variables",
                    &v.variables,
                )?,
                element_id: v.scope_id,
            });
        }
        activate_instructions.push(ActivateInstruction {
            element_id: a.element_id,
            ancestor_scope_key: if a.ancestor_element_instance_key > 0 {
                a.ancestor_element_instance_key
            } else {
                NO_KEY
            },
            variable_instructions,
            ancestor_scope_keys: Vec::new(),
        });
    }
    Ok(PartitionCommand::ModifyInstance {
        value: Box::new(ProcessInstanceModificationRecord {
            process_instance_key: request.process_instance_key,
            terminate_instructions: request
                .terminate_instructions
                .iter()
                .map(|t| t.element_instance_key)
                .collect(),
            activate_instructions,
        }),
    })
}

/// The migration command of a `MigrateProcessInstance` request.
pub fn migrate_command(
    request: proto::MigrateProcessInstanceRequest,
) -> Result<PartitionCommand, CommandError> {
    let Some(plan) = request.migration_plan else {
        return Err(CommandError::InvalidArgument(
            "Expected 'migrationPlan' to hold the target process definition and the mapping instructions, but it was missing".into(),
        ));
    };
    if plan.target_process_definition_key <= 0 {
        return Err(CommandError::InvalidArgument(format!(
            "Expected 'migrationPlan.targetProcessDefinitionKey' to be a process definition key, but it was {}",
            plan.target_process_definition_key
        )));
    }
    let mut mapping_instructions = Vec::with_capacity(plan.mapping_instructions.len());
    for m in plan.mapping_instructions {
        validate::not_blank("mappingInstructions.sourceElementId", &m.source_element_id)?;
        validate::not_blank("mappingInstructions.targetElementId", &m.target_element_id)?;
        mapping_instructions.push(MappingInstruction {
            source_element_id: m.source_element_id,
            target_element_id: m.target_element_id,
        });
    }
    Ok(PartitionCommand::MigrateInstance {
        value: Box::new(ProcessInstanceMigrationRecord {
            process_instance_key: request.process_instance_key,
            target_process_definition_key: plan.target_process_definition_key,
            mapping_instructions,
        }),
    })
}

/// The element ids of `startInstructions`, none blank.
pub fn start_instructions(
    instructions: Vec<proto::ProcessInstanceCreationStartInstruction>,
) -> Result<Vec<String>, CommandError> {
    instructions
        .into_iter()
        .map(|i| {
            validate::not_blank("startInstructions.elementId", &i.element_id)?;
            Ok(i.element_id)
        })
        .collect()
}
