//! One exported record into rows: which table, which columns, keyed by the
//! entity's key. Rows are gathered in a [`Batch`] and written with
//! multi-row upserts ([`crate::upsert`]). An upsert updates a row only when
//! the record's position is higher than the row's, and a key seen first
//! inserts; so writing a record again, or an earlier record after a later
//! one, changes nothing.

use engine::{
    BpmnElementType, IncidentRecord, Intent, JobRecord, MessageSubscriptionRecord,
    ProcessInstanceRecord, ProcessRecord, Record, RecordType, RecordValue, UserTaskRecord,
    VariableRecord,
};
use sqlx::AnyConnection;

use crate::upsert::{Pending, Table, Val};

mod decisions;
mod forms;
mod incident_flags;
mod migrated;
mod roots;

/// The tenant of everything in a cluster without multi-tenancy.
pub const DEFAULT_TENANT: &str = "<default>";

static PROCESS_DEFINITION: Table = Table {
    name: "process_definition",
    columns: &[
        "process_definition_key",
        "process_definition_id",
        "name",
        "version",
        "version_tag",
        "resource_name",
        "bpmn_xml",
        "tenant_id",
    ],
    key_columns: 1,
    keep_first: &[],
    on_conflict: "DO NOTHING",
};

static PROCESS_INSTANCE: Table = Table {
    name: "process_instance",
    columns: &[
        "process_instance_key",
        "process_definition_key",
        "process_definition_id",
        "process_definition_version",
        "parent_process_instance_key",
        "parent_element_instance_key",
        "state",
        "start_ms",
        "end_ms",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &["start_ms"],
    on_conflict: "DO UPDATE SET state = excluded.state, end_ms = excluded.end_ms, \
        position = excluded.position WHERE excluded.position > process_instance.position",
};

static ELEMENT_INSTANCE: Table = Table {
    name: "element_instance",
    columns: &[
        "element_instance_key",
        "process_instance_key",
        "process_definition_key",
        "process_definition_id",
        "flow_scope_key",
        "element_id",
        "type",
        "state",
        "start_ms",
        "end_ms",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &["start_ms"],
    on_conflict: "DO UPDATE SET state = excluded.state, end_ms = excluded.end_ms, \
        position = excluded.position WHERE excluded.position > element_instance.position",
};

static VARIABLE: Table = Table {
    name: "variable",
    columns: &[
        "variable_key",
        "name",
        "value",
        "scope_key",
        "process_instance_key",
        "process_definition_key",
        "process_definition_id",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &[],
    on_conflict: "DO UPDATE SET value = excluded.value, position = excluded.position \
        WHERE excluded.position > variable.position",
};

static JOB: Table = Table {
    name: "job",
    columns: &[
        "job_key",
        "type",
        "worker",
        "state",
        "kind",
        "retries",
        "deadline_ms",
        "creation_ms",
        "updated_ms",
        "end_ms",
        "error_message",
        "error_code",
        "custom_headers",
        "element_id",
        "element_instance_key",
        "process_instance_key",
        "process_definition_key",
        "process_definition_id",
        "process_definition_version",
        "has_failed_with_retries_left",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &["creation_ms"],
    on_conflict: "DO UPDATE SET worker = excluded.worker, state = excluded.state, \
        retries = excluded.retries, deadline_ms = excluded.deadline_ms, \
        updated_ms = excluded.updated_ms, end_ms = excluded.end_ms, \
        error_message = excluded.error_message, error_code = excluded.error_code, \
        has_failed_with_retries_left = excluded.has_failed_with_retries_left, \
        position = excluded.position WHERE excluded.position > job.position",
};

static INCIDENT: Table = Table {
    name: "incident",
    columns: &[
        "incident_key",
        "process_definition_key",
        "process_definition_id",
        "process_instance_key",
        "element_instance_key",
        "element_id",
        "error_type",
        "error_message",
        "state",
        "creation_ms",
        "end_ms",
        "job_key",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &["creation_ms"],
    on_conflict: "DO UPDATE SET state = excluded.state, end_ms = excluded.end_ms, \
        position = excluded.position WHERE excluded.position > incident.position",
};

static MESSAGE_SUBSCRIPTION: Table = Table {
    name: "message_subscription",
    columns: &[
        "element_instance_key",
        "message_name",
        "process_instance_key",
        "process_definition_id",
        "element_id",
        "correlation_key",
        "state",
        "updated_ms",
        "tenant_id",
        "partition_id",
        "position",
        "message_subscription_key",
    ],
    key_columns: 2,
    keep_first: &[],
    on_conflict: "DO UPDATE SET state = excluded.state, \
        correlation_key = excluded.correlation_key, updated_ms = excluded.updated_ms, \
        message_subscription_key = excluded.message_subscription_key, \
        position = excluded.position WHERE excluded.position > message_subscription.position",
};

static USER_TASK: Table = Table {
    name: "user_task",
    columns: &[
        "user_task_key",
        "state",
        "assignee",
        "candidate_groups",
        "candidate_users",
        "element_id",
        "element_instance_key",
        "process_instance_key",
        "process_definition_key",
        "process_definition_id",
        "process_definition_version",
        "form_key",
        "external_form_reference",
        "custom_headers",
        "priority",
        "creation_ms",
        "completion_ms",
        "due_date",
        "follow_up_date",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &["creation_ms"],
    on_conflict: "DO UPDATE SET state = excluded.state, assignee = excluded.assignee, \
        candidate_groups = excluded.candidate_groups, candidate_users = excluded.candidate_users, \
        priority = excluded.priority, completion_ms = excluded.completion_ms, \
        due_date = excluded.due_date, follow_up_date = excluded.follow_up_date, \
        position = excluded.position WHERE excluded.position > user_task.position",
};

/// Keys per statement of [`update_keys`] (each a bound parameter).
const KEYS_PER_STATEMENT: usize = 500;

/// Runs the statement `sql(list)` for the keys in chunks, `list` being the
/// chunk's parameters (`$1, $2, ...`) for an `IN (...)`.
async fn update_keys(
    conn: &mut AnyConnection,
    keys: impl IntoIterator<Item = i64>,
    sql: impl Fn(&str) -> String,
) -> Result<(), sqlx::Error> {
    let keys: Vec<i64> = keys.into_iter().collect();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let params: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = sql(&params.join(", "));
        let mut query = sqlx::query(&sql);
        for k in chunk {
            query = query.bind(*k);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const DELETE_PROCESS: &str = "DELETE FROM process_definition WHERE process_definition_key = $1";

/// The rows of one transaction, per table.
#[derive(Debug)]
pub struct Batch {
    definitions: Pending,
    instances: Pending,
    elements: Pending,
    variables: Pending,
    jobs: Pending,
    incidents: Pending,
    subscriptions: Pending,
    user_tasks: Pending,
    decision_requirements: Pending,
    decision_definitions: Pending,
    decision_instances: Pending,
    forms: Pending,
    /// Rows to delete after the upserts: the statement and the key.
    deleted: Vec<(&'static str, i64)>,
    /// `UPDATE`s after the upserts, in record order: the statement and its
    /// parameters (migrations).
    updates: Vec<(&'static str, Vec<Val>)>,
    /// Instances whose incident flags are computed again after the upserts.
    incident_flags: incident_flags::Touched,
    /// Called instances whose root is looked up after the upserts.
    called: roots::Called,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            definitions: Pending::new(&PROCESS_DEFINITION),
            instances: Pending::new(&PROCESS_INSTANCE),
            elements: Pending::new(&ELEMENT_INSTANCE),
            variables: Pending::new(&VARIABLE),
            jobs: Pending::new(&JOB),
            incidents: Pending::new(&INCIDENT),
            subscriptions: Pending::new(&MESSAGE_SUBSCRIPTION),
            user_tasks: Pending::new(&USER_TASK),
            decision_requirements: Pending::new(&decisions::DECISION_REQUIREMENTS),
            decision_definitions: Pending::new(&decisions::DECISION_DEFINITION),
            decision_instances: Pending::new(&decisions::DECISION_INSTANCE),
            forms: Pending::new(&forms::FORM),
            deleted: Vec::new(),
            updates: Vec::new(),
            incident_flags: incident_flags::Touched::default(),
            called: roots::Called::default(),
        }
    }
}

impl Batch {
    /// Adds the rows of `record` (exported by `partition`, at row position
    /// `position`). Commands and rejections change nothing.
    pub fn apply(&mut self, partition: u32, position: i64, record: &Record) {
        if record.record_type != RecordType::Event {
            return;
        }
        let at = Row {
            tenant: record.tenant.clone(),
            partition: i64::from(partition),
            position,
            time_ms: record.timestamp_ms,
            key: record.key,
            intent: record.intent,
        };
        match (&record.value, record.intent) {
            (RecordValue::ProcessInstance(p), Intent::ElementMigrated) => {
                return self.element_migrated(&at, p)
            }
            (RecordValue::Job(j), Intent::Migrated) => return self.job_migrated(&at, j),
            (RecordValue::UserTask(t), Intent::Migrated) => return self.user_task_migrated(&at, t),
            (RecordValue::Incident(i), Intent::Migrated) => return self.incident_migrated(&at, i),
            (RecordValue::ProcessMessageSubscription(s), Intent::Migrated) => {
                return self.subscription_migrated(s)
            }
            _ => {}
        }
        match &record.value {
            RecordValue::Process(p) => self.process(&at, p),
            RecordValue::ProcessInstance(p) => self.element(&at, p),
            RecordValue::Variable(v) => self.variable(&at, v),
            RecordValue::Job(j) => self.job(&at, j),
            RecordValue::Incident(i) => self.incident(&at, i),
            RecordValue::ProcessMessageSubscription(s) => self.subscription(&at, s),
            RecordValue::UserTask(t) => self.user_task(&at, t),
            RecordValue::DecisionRequirements(r) => self.decision_requirements(&at, r),
            RecordValue::Decision(d) => self.decision(&at, d),
            RecordValue::DecisionEvaluation(e) => self.decision_evaluation(&at, e),
            RecordValue::Form(f) => self.form(&at, f),
            _ => {}
        }
    }

    /// Writes every row gathered, then the deletions, then the incident
    /// flags of the instances whose incidents were written. On PostgreSQL
    /// (`postgres`) the rows go as JSON ([`crate::upsert`]).
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        postgres: bool,
    ) -> Result<(), sqlx::Error> {
        for pending in [
            &mut self.definitions,
            &mut self.instances,
            &mut self.elements,
            &mut self.variables,
            &mut self.jobs,
            &mut self.incidents,
            &mut self.subscriptions,
            &mut self.user_tasks,
            &mut self.decision_requirements,
            &mut self.decision_definitions,
            &mut self.decision_instances,
            &mut self.forms,
        ] {
            pending.flush(conn, postgres).await?;
        }
        for (statement, params) in self.updates.drain(..) {
            let mut query = sqlx::query(statement);
            for value in params {
                query = match value {
                    Val::Int(i) => query.bind(i),
                    Val::Text(s) => query.bind(s),
                };
            }
            query.execute(&mut *conn).await?;
        }
        for (statement, key) in self.deleted.drain(..) {
            sqlx::query(statement).bind(key).execute(&mut *conn).await?;
        }
        self.called.resolve(conn).await?;
        self.incident_flags.refresh(conn).await
    }

    fn process(&mut self, at: &Row, p: &ProcessRecord) {
        let m = &p.metadata;
        match at.intent {
            Intent::Created => {
                let xml = String::from_utf8_lossy(&p.resource).into_owned();
                self.definitions.push(vec![
                    m.process_definition_key.into(),
                    m.bpmn_process_id.as_ref().into(),
                    process_attribute(&xml, &m.bpmn_process_id, name).into(),
                    i64::from(m.version).into(),
                    process_attribute(&xml, &m.bpmn_process_id, version_tag).into(),
                    m.resource_name.as_str().into(),
                    Val::Text(Some(xml)),
                    at.tenant.as_str().into(),
                ]);
            }
            Intent::Deleted => {
                self.definitions.remove(&[m.process_definition_key.into()]);
                self.deleted
                    .push((DELETE_PROCESS, m.process_definition_key));
            }
            _ => {}
        }
    }

    fn element(&mut self, at: &Row, p: &ProcessInstanceRecord) {
        if p.bpmn_element_type == BpmnElementType::SequenceFlow {
            return;
        }
        let (state, end) = match at.intent {
            Intent::ElementActivating => ("ACTIVE", None),
            Intent::ElementCompleted => ("COMPLETED", Some(at.time_ms)),
            Intent::ElementTerminated => ("TERMINATED", Some(at.time_ms)),
            _ => return,
        };
        if p.bpmn_element_type == BpmnElementType::Process {
            if p.parent_process_instance_key >= 0 {
                self.called.instance(p.process_instance_key);
            }
            self.instances.push(vec![
                p.process_instance_key.into(),
                p.process_definition_key.into(),
                p.bpmn_process_id.as_ref().into(),
                i64::from(p.version).into(),
                optional_key(p.parent_process_instance_key).into(),
                optional_key(p.parent_element_instance_key).into(),
                state.into(),
                at.time_ms.into(),
                end.into(),
                at.tenant.as_str().into(),
                at.partition.into(),
                at.position.into(),
            ]);
        } else {
            self.elements.push(vec![
                at.key.into(),
                p.process_instance_key.into(),
                p.process_definition_key.into(),
                p.bpmn_process_id.as_ref().into(),
                optional_key(p.flow_scope_key).into(),
                p.element_id.as_ref().into(),
                element_type_name(p.bpmn_element_type).as_str().into(),
                state.into(),
                at.time_ms.into(),
                end.into(),
                at.tenant.as_str().into(),
                at.partition.into(),
                at.position.into(),
            ]);
        }
    }

    fn variable(&mut self, at: &Row, v: &VariableRecord) {
        if !matches!(at.intent, Intent::Created | Intent::Updated) {
            return;
        }
        self.variables.push(vec![
            at.key.into(),
            v.name.as_str().into(),
            v.value.as_str().into(),
            v.scope_key.into(),
            v.process_instance_key.into(),
            v.process_definition_key.into(),
            v.bpmn_process_id.as_ref().into(),
            at.tenant.as_str().into(),
            at.partition.into(),
            at.position.into(),
        ]);
    }

    fn job(&mut self, at: &Row, j: &JobRecord) {
        let Some(state) = job_state(at.intent) else {
            return;
        };
        let ended = matches!(
            at.intent,
            Intent::Completed | Intent::Canceled | Intent::ErrorThrown
        );
        let text = |s: &str| Val::Text((!s.is_empty()).then(|| s.to_string()));
        self.jobs.push(vec![
            at.key.into(),
            j.job_type.as_ref().into(),
            j.worker.as_str().into(),
            state.into(),
            j.job_kind.name().into(),
            i64::from(j.retries).into(),
            optional_key(j.deadline_ms).into(),
            at.time_ms.into(),
            at.time_ms.into(),
            ended.then_some(at.time_ms).into(),
            text(&j.error_message),
            text(&j.error_code),
            j.custom_headers.as_ref().into(),
            j.element_id.as_ref().into(),
            j.element_instance_key.into(),
            j.process_instance_key.into(),
            j.process_definition_key.into(),
            j.bpmn_process_id.as_ref().into(),
            i64::from(j.process_definition_version).into(),
            i64::from(at.intent == Intent::Failed && j.retries > 0).into(),
            at.tenant.as_str().into(),
            at.partition.into(),
            at.position.into(),
        ]);
    }

    fn incident(&mut self, at: &Row, i: &IncidentRecord) {
        let (state, end) = match at.intent {
            Intent::Created => ("ACTIVE", None),
            Intent::Resolved => ("RESOLVED", Some(at.time_ms)),
            _ => return,
        };
        self.incident_flags
            .incident(i.process_instance_key, i.element_instance_key);
        self.incidents.push(vec![
            at.key.into(),
            i.process_definition_key.into(),
            i.bpmn_process_id.as_ref().into(),
            i.process_instance_key.into(),
            i.element_instance_key.into(),
            i.element_id.as_ref().into(),
            i.error_type.name().into(),
            i.error_message.as_str().into(),
            state.into(),
            at.time_ms.into(),
            end.into(),
            optional_key(i.job_key).into(),
            at.tenant.as_str().into(),
            at.partition.into(),
            at.position.into(),
        ]);
    }

    fn subscription(&mut self, at: &Row, s: &MessageSubscriptionRecord) {
        let state = match at.intent {
            Intent::Created => "CREATED",
            Intent::Correlated => "CORRELATED",
            Intent::Deleted => "DELETED",
            _ => return,
        };
        self.subscriptions.push(vec![
            s.element_instance_key.into(),
            s.message_name.as_str().into(),
            s.process_instance_key.into(),
            s.bpmn_process_id.as_ref().into(),
            s.element_id.as_ref().into(),
            s.correlation_key.as_str().into(),
            state.into(),
            at.time_ms.into(),
            at.tenant.as_str().into(),
            at.partition.into(),
            at.position.into(),
            at.key.into(),
        ]);
    }

    fn user_task(&mut self, at: &Row, t: &UserTaskRecord) {
        let Some(state) = user_task_state(at.intent) else {
            return;
        };
        let text = |s: &str| Val::Text((!s.is_empty()).then(|| s.to_string()));
        let list = |l: &[String]| serde_json::to_string(l).expect("a list of strings is JSON");
        self.user_tasks.push(vec![
            t.user_task_key.into(),
            state.into(),
            text(&t.assignee),
            list(&t.candidate_groups).as_str().into(),
            list(&t.candidate_users).as_str().into(),
            t.element_id.as_ref().into(),
            t.element_instance_key.into(),
            t.process_instance_key.into(),
            t.process_definition_key.into(),
            t.bpmn_process_id.as_ref().into(),
            i64::from(t.process_definition_version).into(),
            optional_key(t.form_key).into(),
            text(&t.external_form_reference),
            t.custom_headers.as_ref().into(),
            i64::from(t.priority).into(),
            // Every event carries the creation time: right in any order.
            if t.creation_timestamp > 0 {
                t.creation_timestamp
            } else {
                at.time_ms
            }
            .into(),
            matches!(state, "COMPLETED" | "CANCELED")
                .then_some(at.time_ms)
                .into(),
            text(&t.due_date),
            text(&t.follow_up_date),
            at.tenant.as_str().into(),
            at.partition.into(),
            at.position.into(),
        ]);
    }
}

struct Row {
    tenant: engine::Tenant,
    partition: i64,
    position: i64,
    time_ms: i64,
    key: i64,
    intent: Intent,
}

fn optional_key(key: i64) -> Option<i64> {
    (key > 0).then_some(key)
}

/// The API state a job event leaves a job in; `None` for events that do
/// not change what the store shows.
fn job_state(intent: Intent) -> Option<&'static str> {
    Some(match intent {
        Intent::Created => "CREATED",
        Intent::Completed => "COMPLETED",
        Intent::Failed => "FAILED",
        Intent::TimedOut => "TIMED_OUT",
        Intent::ErrorThrown => "ERROR_THROWN",
        Intent::RetriesUpdated => "RETRIES_UPDATED",
        Intent::Canceled => "CANCELED",
        _ => return None,
    })
}

/// The API state a user task event leaves a task in (Camunda's
/// `UserTaskStateEnum`); `None` for events that change nothing shown.
fn user_task_state(intent: Intent) -> Option<&'static str> {
    Some(match intent {
        Intent::Creating => "CREATING",
        Intent::Assigning => "ASSIGNING",
        Intent::Updating => "UPDATING",
        Intent::Completing => "COMPLETING",
        Intent::Canceling => "CANCELING",
        Intent::Created | Intent::Assigned | Intent::Updated => "CREATED",
        Intent::Completed => "COMPLETED",
        Intent::Canceled => "CANCELED",
        _ => return None,
    })
}

/// `ServiceTask` -> `SERVICE_TASK`, Zeebe's spelling of element types.
pub fn element_type_name(t: BpmnElementType) -> String {
    let debug = format!("{t:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What `read` finds on process `id` in `xml` (its `name`, its version tag).
fn process_attribute(
    xml: &str,
    id: &str,
    read: impl for<'a, 'i> Fn(roxmltree::Node<'a, 'i>) -> Option<&'a str>,
) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == "process" && n.attribute("id") == Some(id))
        .and_then(read)
        .map(str::to_string)
}

/// The `name` attribute.
fn name<'a>(process: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    process.attribute("name")
}

/// The `zeebe:versionTag value` in a process's extension elements.
fn version_tag<'a>(process: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    process
        .children()
        .filter(|n| n.tag_name().name() == "extensionElements")
        .flat_map(|e| e.children())
        .find(|n| n.tag_name().name() == "versionTag")
        .and_then(|n| n.attribute("value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_are_spelled_as_zeebe_does() {
        assert_eq!(
            element_type_name(BpmnElementType::ServiceTask),
            "SERVICE_TASK"
        );
        assert_eq!(element_type_name(BpmnElementType::Process), "PROCESS");
    }

    #[test]
    fn a_process_name_comes_from_its_bpmn() {
        let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
            <process id="order" name="Order handling"/></definitions>"#;
        assert_eq!(
            process_attribute(xml, "order", name).as_deref(),
            Some("Order handling")
        );
        assert_eq!(process_attribute(xml, "other", name), None);
        assert_eq!(process_attribute("<not xml", "order", name), None);
    }

    #[test]
    fn a_version_tag_comes_from_the_process_extension_elements() {
        let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
            xmlns:zeebe="http://camunda.org/schema/zeebe/1.0">
            <process id="tagged"><extensionElements><zeebe:versionTag value="v2.1"/>
            </extensionElements></process><process id="plain"/></definitions>"#;
        assert_eq!(
            process_attribute(xml, "tagged", version_tag).as_deref(),
            Some("v2.1")
        );
        assert_eq!(process_attribute(xml, "plain", version_tag), None);
    }
}
