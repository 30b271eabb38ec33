//! Translation between the gateway's commands and the engine's records: a
//! [`PartitionCommand`] becomes the engine command [`Record`] that goes into
//! the partition log, and the engine's response (or rejection) becomes the
//! gRPC answer.
//!
//! Pure functions; used on the shard thread of the partition leader.

use engine::{
    ActivatedJob, DecisionEvaluationRecord, DeploymentRecord, DeploymentResource, ErrorType,
    IncidentRecord, Intent, JobBatchRecord, JobRecord, MessageRecord,
    ProcessInstanceCreationRecord, ProcessInstanceRecord, Record, RecordValue, Rejection,
    RejectionType, ResourceDeletionRecord, ResponseValue, SignalRecord, VariableDocumentRecord,
    NO_KEY,
};

use crate::command::{CommandError, CommandReply, PartitionCommand, RejectionKind};
use crate::gateway::proto;

/// The engine command for `command`, or an error for a command the engine of
/// this build does not process.
pub fn to_record(command: &PartitionCommand) -> Result<Record, CommandError> {
    let record = match command {
        PartitionCommand::Deploy { resources } => Record::command(
            NO_KEY,
            Intent::Create,
            RecordValue::Deployment(DeploymentRecord {
                resources: resources
                    .iter()
                    .map(|(name, content)| DeploymentResource {
                        name: name.clone(),
                        content: content.clone(),
                    })
                    .collect(),
                processes: Vec::new(),
                decision_requirements: Vec::new(),
                decisions: Vec::new(),
                forms: Vec::new(),
            }),
            None,
        ),
        PartitionCommand::CreateInstance {
            definition_key,
            bpmn_process_id,
            version,
            variables,
            await_result,
            start_instructions,
        } => Record::command(
            NO_KEY,
            if await_result.is_some() {
                Intent::CreateWithAwaitingResult
            } else {
                Intent::Create
            },
            RecordValue::ProcessInstanceCreation(ProcessInstanceCreationRecord {
                bpmn_process_id: bpmn_process_id.clone(),
                version: *version,
                process_definition_key: if *definition_key > 0 {
                    *definition_key
                } else {
                    NO_KEY
                },
                process_instance_key: NO_KEY,
                variables: variables.clone(),
                fetch_variables: await_result
                    .as_ref()
                    .map(|a| a.fetch_variables.clone())
                    .unwrap_or_default(),
                await_result: await_result.is_some(),
                start_instructions: start_instructions.clone(),
            }),
            None,
        ),
        PartitionCommand::CancelInstance {
            process_instance_key,
        } => Record::command(
            *process_instance_key,
            Intent::Cancel,
            RecordValue::ProcessInstance(ProcessInstanceRecord {
                bpmn_process_id: "".into(),
                version: -1,
                process_definition_key: NO_KEY,
                process_instance_key: *process_instance_key,
                element_id: "".into(),
                flow_scope_key: NO_KEY,
                bpmn_element_type: engine::BpmnElementType::Process,
                bpmn_event_type: engine::BpmnEventType::None,
                parent_process_instance_key: NO_KEY,
                parent_element_instance_key: NO_KEY,
            }),
            None,
        ),
        PartitionCommand::ActivateJobs {
            job_type,
            worker,
            timeout_ms,
            max_jobs,
            fetch_variables,
        } => Record::command(
            NO_KEY,
            Intent::Activate,
            RecordValue::JobBatch(JobBatchRecord {
                job_type: job_type.clone(),
                worker: worker.clone(),
                timeout_ms: *timeout_ms,
                max_jobs_to_activate: i32::try_from(*max_jobs).unwrap_or(i32::MAX),
                fetch_variables: fetch_variables.clone(),
                job_keys: Vec::new(),
                jobs: Vec::new(),
                truncated: false,
            }),
            None,
        ),
        PartitionCommand::CompleteJob { job_key, variables } => {
            job(*job_key, Intent::Complete, |j| {
                j.variables = variables.clone();
            })
        }
        PartitionCommand::CompleteJobWithResult {
            job_key,
            variables,
            result,
        } => job(*job_key, Intent::Complete, |j| {
            j.variables = variables.clone();
            j.result = (**result).clone();
        }),
        PartitionCommand::FailJob {
            job_key,
            retries,
            error_message,
            retry_backoff_ms,
            variables,
        } => job(*job_key, Intent::Fail, |j| {
            j.retries = *retries;
            j.error_message = error_message.clone();
            j.retry_backoff_ms = *retry_backoff_ms;
            j.variables = variables.clone();
        }),
        PartitionCommand::ThrowError {
            job_key,
            error_code,
            error_message,
            variables,
        } => job(*job_key, Intent::ThrowError, |j| {
            j.error_code = error_code.clone();
            j.error_message = error_message.clone();
            j.variables = variables.clone();
        }),
        PartitionCommand::UpdateJobRetries { job_key, retries } => {
            job(*job_key, Intent::UpdateRetries, |j| {
                j.retries = *retries;
            })
        }
        PartitionCommand::UpdateJobTimeout {
            job_key,
            timeout_ms,
        } => job(*job_key, Intent::UpdateTimeout, |j| {
            j.timeout_ms = *timeout_ms;
        }),
        PartitionCommand::SetVariables {
            element_instance_key,
            variables,
            local,
        } => Record::command(
            *element_instance_key,
            Intent::Update,
            RecordValue::VariableDocument(VariableDocumentRecord {
                scope_key: *element_instance_key,
                local: *local,
                variables: variables.clone(),
            }),
            None,
        ),
        PartitionCommand::ResolveIncident { incident_key } => Record::command(
            *incident_key,
            Intent::Resolve,
            RecordValue::Incident(IncidentRecord {
                error_type: ErrorType::JobNoRetries,
                error_message: String::new(),
                bpmn_process_id: "".into(),
                process_definition_key: NO_KEY,
                process_instance_key: NO_KEY,
                element_id: "".into(),
                element_instance_key: NO_KEY,
                job_key: NO_KEY,
                variable_scope_key: NO_KEY,
            }),
            None,
        ),
        PartitionCommand::PublishMessage {
            name,
            correlation_key,
            time_to_live_ms,
            message_id,
            variables,
        } => Record::command(
            NO_KEY,
            Intent::Publish,
            RecordValue::Message(MessageRecord {
                name: name.clone(),
                correlation_key: correlation_key.clone(),
                time_to_live_ms: *time_to_live_ms,
                message_id: message_id.clone(),
                variables: variables.clone(),
                deadline_ms: NO_KEY,
            }),
            None,
        ),
        PartitionCommand::BroadcastSignal {
            signal_name,
            variables,
        } => Record::command(
            NO_KEY,
            Intent::Broadcast,
            RecordValue::Signal(SignalRecord {
                signal_name: signal_name.clone(),
                variables: variables.clone(),
            }),
            None,
        ),
        PartitionCommand::DeleteResource { resource_key } => Record::command(
            NO_KEY,
            Intent::Delete,
            RecordValue::ResourceDeletion(ResourceDeletionRecord {
                resource_key: *resource_key,
            }),
            None,
        ),
        PartitionCommand::Identity { intent, value } => {
            Record::command(NO_KEY, *intent, (**value).clone(), None)
        }
        PartitionCommand::ScaleUp {
            desired_partition_count,
        } => Record::command(
            NO_KEY,
            Intent::ScaleUp,
            RecordValue::Scale(engine::scaling::ScaleRecord {
                desired_partition_count: *desired_partition_count,
                message_partition_count: 0,
                redistributed_partitions: Vec::new(),
                global_state: std::sync::Arc::from([]),
            }),
            None,
        ),
        PartitionCommand::AsCaller {
            tenant,
            tenants,
            processes,
            command,
        } => {
            let mut record = to_record(command)?;
            record.tenant = engine::Tenant::new(tenant);
            record.authorized_tenants = tenants
                .as_ref()
                .map(|list| list.iter().map(|t| engine::Tenant::new(t)).collect());
            record.authorized_processes = processes.as_ref().map(|list| {
                list.iter()
                    .map(|p| std::sync::Arc::from(p.as_str()))
                    .collect()
            });
            record
        }
        PartitionCommand::UserTask {
            user_task_key,
            intent,
            value,
        } => Record::command(
            *user_task_key,
            *intent,
            RecordValue::UserTask(Box::new((**value).clone())),
            None,
        ),
        PartitionCommand::ActivateAdHocElements { value } => Record::command(
            NO_KEY,
            Intent::Activate,
            RecordValue::AdHocSubProcessInstruction((**value).clone()),
            None,
        ),
        PartitionCommand::EvaluateDecision {
            decision_key,
            decision_id,
            variables,
        } => Record::command(
            NO_KEY,
            Intent::Evaluate,
            RecordValue::DecisionEvaluation(Box::new(DecisionEvaluationRecord::command(
                *decision_key,
                decision_id,
                variables.clone(),
            ))),
            None,
        ),
        PartitionCommand::ModifyInstance { value } => Record::command(
            value.process_instance_key,
            Intent::Modify,
            RecordValue::ProcessInstanceModification((**value).clone()),
            None,
        ),
        PartitionCommand::MigrateInstance { value } => Record::command(
            value.process_instance_key,
            Intent::Migrate,
            RecordValue::ProcessInstanceMigration((**value).clone()),
            None,
        ),
        PartitionCommand::YieldJob { job_key } => job(*job_key, Intent::Yield, |_| {}),
        PartitionCommand::RawAppend { .. }
        | PartitionCommand::Checkpoint { .. }
        | PartitionCommand::JobStream(_) => {
            return Err(CommandError::Internal(format!(
                "{} has no engine record",
                command.name()
            )))
        }
    };
    Ok(record)
}

fn job(key: i64, intent: Intent, fill: impl FnOnce(&mut JobRecord)) -> Record {
    let mut value = JobRecord::empty();
    fill(&mut value);
    Record::command(key, intent, RecordValue::Job(Box::new(value)), None)
}

/// The gRPC answer to the engine's response for `command`.
pub fn to_reply(
    command_intent: Intent,
    response: Result<ResponseValue, Rejection>,
) -> Result<CommandReply, CommandError> {
    let value = response.map_err(|rejection| rejected(command_intent, rejection))?;
    Ok(match value {
        ResponseValue::Deployment {
            key,
            processes,
            decision_requirements,
            decisions,
            forms,
            tenant,
        } => CommandReply::Deployed(crate::decision_replies::deployed(
            key,
            processes,
            decision_requirements,
            decisions,
            forms,
            &tenant,
        )),
        ResponseValue::DecisionEvaluated {
            key,
            evaluation,
            tenant,
        } => CommandReply::Evaluated(crate::decision_replies::evaluated(
            key,
            *evaluation,
            &tenant,
        )),
        ResponseValue::ProcessInstanceCreated {
            process_definition_key,
            bpmn_process_id,
            version,
            process_instance_key,
            tenant,
        } => CommandReply::Created(proto::CreateProcessInstanceResponse {
            process_definition_key,
            bpmn_process_id: bpmn_process_id.to_string(),
            version,
            process_instance_key,
            tenant_id: tenant.to_string(),
        }),
        ResponseValue::ProcessInstanceResult {
            process_definition_key,
            bpmn_process_id,
            version,
            process_instance_key,
            variables,
            tenant,
        } => CommandReply::Completed(proto::CreateProcessInstanceWithResultResponse {
            process_definition_key,
            bpmn_process_id: bpmn_process_id.to_string(),
            version,
            process_instance_key,
            variables,
            tenant_id: tenant.to_string(),
        }),
        ResponseValue::JobBatch { jobs, .. } => {
            CommandReply::Jobs(jobs.into_iter().map(activated_job).collect())
        }
        ResponseValue::ProcessInstanceCanceled { .. }
        | ResponseValue::Job { .. }
        | ResponseValue::ResourceDeleted { .. }
        | ResponseValue::UserTask { .. }
        | ResponseValue::AdHocActivated { .. }
        | ResponseValue::ProcessInstanceModified { .. }
        | ResponseValue::ProcessInstanceMigrated { .. } => CommandReply::Done,
        ResponseValue::IncidentResolved { key }
        | ResponseValue::VariablesSet { key }
        | ResponseValue::MessagePublished { key }
        | ResponseValue::SignalBroadcasted { key } => CommandReply::Key(key),
        ResponseValue::User(user) => CommandReply::Key(user.user_key),
        ResponseValue::IdentityChanged { key } => CommandReply::Key(key),
        ResponseValue::Scaled { partitions } => CommandReply::Key(i64::from(partitions)),
        #[allow(unreachable_patterns)]
        other => {
            return Err(CommandError::Internal(format!(
                "the engine answered {} with an unexpected response {other:?}",
                command_intent.name()
            )))
        }
    })
}

/// A job as the gateway hands it to a worker.
pub fn activated_job(job: ActivatedJob) -> proto::ActivatedJob {
    let j = job.job;
    proto::ActivatedJob {
        key: job.key,
        r#type: j.job_type.to_string(),
        process_instance_key: j.process_instance_key,
        bpmn_process_id: j.bpmn_process_id.to_string(),
        process_definition_version: j.process_definition_version,
        process_definition_key: j.process_definition_key,
        element_id: j.element_id.to_string(),
        element_instance_key: j.element_instance_key,
        custom_headers: if j.custom_headers.is_empty() {
            "{}".into()
        } else {
            j.custom_headers.to_string()
        },
        worker: j.worker,
        retries: j.retries,
        deadline: j.deadline_ms,
        variables: if j.variables.is_empty() {
            "{}".into()
        } else {
            j.variables
        },
        tenant_id: job.tenant.to_string(),
        kind: match j.job_kind {
            engine::JobKind::BpmnElement => proto::activated_job::JobKind::BpmnElement,
            engine::JobKind::ExecutionListener => proto::activated_job::JobKind::ExecutionListener,
            engine::JobKind::TaskListener => proto::activated_job::JobKind::TaskListener,
        } as i32,
        listener_event_type: listener_event_type(j.listener_event_type) as i32,
        user_task: j.user_task.map(|t| user_task_properties(*t)),
    }
}

/// A task listener job's user task, as Zeebe's `UserTaskProperties`.
fn user_task_properties(t: engine::UserTaskRecord) -> proto::UserTaskProperties {
    let text = |s: String| (!s.is_empty()).then_some(s);
    proto::UserTaskProperties {
        action: text(t.action),
        assignee: text(t.assignee),
        candidate_groups: t.candidate_groups,
        candidate_users: t.candidate_users,
        changed_attributes: t.changed_attributes,
        due_date: text(t.due_date),
        follow_up_date: text(t.follow_up_date),
        form_key: (t.form_key != engine::NO_KEY).then_some(t.form_key),
        priority: Some(t.priority),
        user_task_key: Some(t.user_task_key),
    }
}

fn listener_event_type(
    event: engine::ListenerEventType,
) -> proto::activated_job::ListenerEventType {
    use engine::ListenerEventType as E;
    use proto::activated_job::ListenerEventType as P;
    match event {
        E::Unspecified => P::Unspecified,
        E::Start => P::Start,
        E::End => P::End,
        E::Creating => P::Creating,
        E::Assigning => P::Assigning,
        E::Updating => P::Updating,
        E::Completing => P::Completing,
        E::Canceling => P::Canceling,
    }
}

fn rejected(intent: Intent, rejection: Rejection) -> CommandError {
    let kind = match rejection.rejection_type {
        RejectionType::InvalidArgument => RejectionKind::InvalidArgument,
        RejectionType::NotFound => RejectionKind::NotFound,
        RejectionType::AlreadyExists => RejectionKind::AlreadyExists,
        RejectionType::InvalidState => RejectionKind::InvalidState,
        RejectionType::ProcessingError => RejectionKind::ProcessingError,
        RejectionType::Forbidden => RejectionKind::Forbidden,
        #[allow(unreachable_patterns)]
        _ => RejectionKind::ProcessingError,
    };
    CommandError::Rejected {
        intent: intent.name().to_string(),
        kind,
        reason: rejection.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_keep_the_engine_reason_and_map_the_type() {
        let err = to_reply(
            Intent::Complete,
            Err(Rejection {
                rejection_type: RejectionType::NotFound,
                reason: "Expected to complete job with key '5', but no such job was found".into(),
            }),
        )
        .unwrap_err();
        let status: tonic::Status = err.into();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status
            .message()
            .contains("Command 'COMPLETE' rejected with code 'NOT_FOUND'"));
        assert!(status.message().contains("key '5'"));
    }

    #[test]
    fn every_job_command_carries_the_job_key() {
        let commands = [
            PartitionCommand::CompleteJob {
                job_key: 7,
                variables: "{}".into(),
            },
            PartitionCommand::UpdateJobRetries {
                job_key: 7,
                retries: 3,
            },
            PartitionCommand::UpdateJobTimeout {
                job_key: 7,
                timeout_ms: 10,
            },
        ];
        for c in commands {
            let r = to_record(&c).expect("supported");
            assert_eq!(r.key, 7, "{c:?}");
            assert_eq!(r.value_type, engine::ValueType::Job);
        }
    }

    #[test]
    fn user_task_commands_carry_the_key_intent_and_value() {
        let mut value = engine::UserTaskRecord::empty();
        value.assignee = "anna".into();
        let r = to_record(&PartitionCommand::UserTask {
            user_task_key: 9,
            intent: Intent::Claim,
            value: Box::new(value.clone()),
        })
        .expect("built");
        assert_eq!((r.key, r.intent), (9, Intent::Claim));
        assert_eq!(r.value, RecordValue::UserTask(Box::new(value)));
        let reply = to_reply(
            Intent::Claim,
            Ok(ResponseValue::UserTask {
                key: 9,
                intent: Intent::Assigned,
            }),
        );
        assert_eq!(reply.unwrap(), CommandReply::Done);
    }

    #[test]
    fn delete_resource_goes_to_the_engine_as_a_deletion() {
        let r = to_record(&PartitionCommand::DeleteResource { resource_key: 42 }).expect("built");
        assert_eq!(r.key, NO_KEY, "a client deletion, not a distributed copy");
        assert_eq!(r.intent, Intent::Delete);
        assert!(matches!(
            r.value,
            RecordValue::ResourceDeletion(ResourceDeletionRecord { resource_key: 42 })
        ));
    }
}
