//! `MIGRATED` events (`ELEMENT_MIGRATED`, and `MIGRATED` of jobs, user
//! tasks, incidents and process message subscriptions): a process instance moved to another process
//! definition. Its rows keep their keys, states and times; what changes is
//! the definition they name (key, id, version) and the element id. These
//! are plain `UPDATE`s run after the batch's upserts, in record order:
//! an upsert never touches these columns of an existing row, so a row
//! inserted by the same batch, or updated by a later record of it, ends
//! with the target definition, and writing the batch again changes nothing.

use engine::{
    BpmnElementType, IncidentRecord, JobRecord, MessageSubscriptionRecord, ProcessInstanceRecord,
    UserTaskRecord,
};

use super::{Batch, Row};
use crate::upsert::Val;

const INSTANCE: &str = "UPDATE process_instance SET process_definition_key = $1, \
    process_definition_id = $2, process_definition_version = $3 WHERE process_instance_key = $4";
const INSTANCE_VARIABLES: &str = "UPDATE variable SET process_definition_key = $1, \
    process_definition_id = $2 WHERE process_instance_key = $3";
const ELEMENT: &str = "UPDATE element_instance SET process_definition_key = $1, \
    process_definition_id = $2, element_id = $3 WHERE element_instance_key = $4";
const JOB: &str = "UPDATE job SET process_definition_key = $1, process_definition_id = $2, \
    process_definition_version = $3, element_id = $4 WHERE job_key = $5";
const USER_TASK: &str = "UPDATE user_task SET process_definition_key = $1, \
    process_definition_id = $2, process_definition_version = $3, element_id = $4 \
    WHERE user_task_key = $5";
const SUBSCRIPTION: &str = "UPDATE message_subscription SET process_definition_id = $1, \
    element_id = $2 WHERE element_instance_key = $3 AND message_name = $4";
const INCIDENT: &str = "UPDATE incident SET process_definition_key = $1, \
    process_definition_id = $2, element_id = $3 WHERE incident_key = $4";

impl Batch {
    /// `PROCESS_INSTANCE ELEMENT_MIGRATED`: the process or one element (a
    /// taken sequence flow has no row).
    pub(super) fn element_migrated(&mut self, at: &Row, p: &ProcessInstanceRecord) {
        if p.bpmn_element_type == BpmnElementType::SequenceFlow {
            return;
        }
        let key: Val = p.process_definition_key.into();
        let id: Val = p.bpmn_process_id.as_ref().into();
        if p.bpmn_element_type == BpmnElementType::Process {
            let version: Val = i64::from(p.version).into();
            let instance: Val = p.process_instance_key.into();
            self.updates.push((
                INSTANCE,
                vec![key.clone(), id.clone(), version, instance.clone()],
            ));
            self.updates
                .push((INSTANCE_VARIABLES, vec![key, id, instance]));
        } else {
            let element: Val = p.element_id.as_ref().into();
            self.updates
                .push((ELEMENT, vec![key, id, element, at.key.into()]));
        }
    }

    /// `JOB MIGRATED`.
    pub(super) fn job_migrated(&mut self, at: &Row, j: &JobRecord) {
        self.updates.push((
            JOB,
            vec![
                j.process_definition_key.into(),
                j.bpmn_process_id.as_ref().into(),
                i64::from(j.process_definition_version).into(),
                j.element_id.as_ref().into(),
                at.key.into(),
            ],
        ));
    }

    /// `USER_TASK MIGRATED`.
    pub(super) fn user_task_migrated(&mut self, at: &Row, t: &UserTaskRecord) {
        self.updates.push((
            USER_TASK,
            vec![
                t.process_definition_key.into(),
                t.bpmn_process_id.as_ref().into(),
                i64::from(t.process_definition_version).into(),
                t.element_id.as_ref().into(),
                at.key.into(),
            ],
        ));
    }

    /// `INCIDENT MIGRATED`.
    pub(super) fn incident_migrated(&mut self, at: &Row, i: &IncidentRecord) {
        self.updates.push((
            INCIDENT,
            vec![
                i.process_definition_key.into(),
                i.bpmn_process_id.as_ref().into(),
                i.element_id.as_ref().into(),
                at.key.into(),
            ],
        ));
    }

    /// `PROCESS_MESSAGE_SUBSCRIPTION MIGRATED`: same waiting element instance
    /// and message, the target's catch event.
    pub(super) fn subscription_migrated(&mut self, s: &MessageSubscriptionRecord) {
        self.updates.push((
            SUBSCRIPTION,
            vec![
                s.bpmn_process_id.as_ref().into(),
                s.element_id.as_ref().into(),
                s.element_instance_key.into(),
                s.message_name.as_str().into(),
            ],
        ));
    }
}
