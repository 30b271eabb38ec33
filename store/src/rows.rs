//! One exported record into rows: which table, which columns, keyed by the
//! entity's key. Inserts ignore a row that exists; updates are guarded by
//! `position` (a row written by a later record is never overwritten by an
//! earlier one), so writing a record again changes nothing.

use engine::{
    BpmnElementType, IncidentRecord, Intent, JobRecord, MessageSubscriptionRecord,
    ProcessInstanceRecord, ProcessRecord, Record, RecordType, RecordValue, VariableRecord,
};
use sqlx::AnyConnection;

/// The only tenant until multi-tenancy lands.
pub const DEFAULT_TENANT: &str = "<default>";

type Result = std::result::Result<(), sqlx::Error>;

/// Applies `record` (exported by `partition`, at row position `position`).
/// Commands and rejections change nothing.
pub async fn apply(
    conn: &mut AnyConnection,
    partition: u32,
    position: i64,
    record: &Record,
) -> Result {
    if record.record_type != RecordType::Event {
        return Ok(());
    }
    let at = Row {
        partition: i64::from(partition),
        position,
        time_ms: record.timestamp_ms,
        key: record.key,
        intent: record.intent,
    };
    match &record.value {
        RecordValue::Process(p) => process(conn, &at, p).await,
        RecordValue::ProcessInstance(p) => element(conn, &at, p).await,
        RecordValue::Variable(v) => variable(conn, &at, v).await,
        RecordValue::Job(j) => job(conn, &at, j).await,
        RecordValue::Incident(i) => incident(conn, &at, i).await,
        RecordValue::ProcessMessageSubscription(s) => subscription(conn, &at, s).await,
        _ => Ok(()),
    }
}

struct Row {
    partition: i64,
    position: i64,
    time_ms: i64,
    key: i64,
    intent: Intent,
}

fn optional_key(key: i64) -> Option<i64> {
    (key > 0).then_some(key)
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

/// The `name` of process `id` in `xml`, if the BPMN gives one.
fn process_name(xml: &str, id: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == "process" && n.attribute("id") == Some(id))
        .and_then(|n| n.attribute("name"))
        .map(str::to_string)
}

async fn process(conn: &mut AnyConnection, at: &Row, p: &ProcessRecord) -> Result {
    let m = &p.metadata;
    match at.intent {
        Intent::Created => {
            let xml = String::from_utf8_lossy(&p.resource);
            sqlx::query(
                "INSERT INTO process_definition (process_definition_key, process_definition_id, \
                 name, version, version_tag, resource_name, bpmn_xml, tenant_id) \
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, $7) \
                 ON CONFLICT (process_definition_key) DO NOTHING",
            )
            .bind(m.process_definition_key)
            .bind(m.bpmn_process_id.to_string())
            .bind(process_name(&xml, &m.bpmn_process_id))
            .bind(m.version)
            .bind(m.resource_name.clone())
            .bind(xml.into_owned())
            .bind(DEFAULT_TENANT)
            .execute(conn)
            .await?;
        }
        Intent::Deleted => {
            sqlx::query("DELETE FROM process_definition WHERE process_definition_key = $1")
                .bind(m.process_definition_key)
                .execute(conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The API state an ended element takes.
fn end_state(intent: Intent) -> Option<&'static str> {
    match intent {
        Intent::ElementCompleted => Some("COMPLETED"),
        Intent::ElementTerminated => Some("TERMINATED"),
        _ => None,
    }
}

async fn element(conn: &mut AnyConnection, at: &Row, p: &ProcessInstanceRecord) -> Result {
    let is_process = p.bpmn_element_type == BpmnElementType::Process;
    if p.bpmn_element_type == BpmnElementType::SequenceFlow {
        return Ok(());
    }
    let (table, key_column) = if is_process {
        ("process_instance", "process_instance_key")
    } else {
        ("element_instance", "element_instance_key")
    };
    if at.intent == Intent::ElementActivating {
        if is_process {
            sqlx::query(
                "INSERT INTO process_instance (process_instance_key, process_definition_key, \
                 process_definition_id, process_definition_version, parent_process_instance_key, \
                 parent_element_instance_key, state, start_ms, end_ms, tenant_id, partition_id, \
                 position) VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7, NULL, $8, $9, $10) \
                 ON CONFLICT (process_instance_key) DO NOTHING",
            )
            .bind(p.process_instance_key)
            .bind(p.process_definition_key)
            .bind(p.bpmn_process_id.to_string())
            .bind(p.version)
            .bind(optional_key(p.parent_process_instance_key))
            .bind(optional_key(p.parent_element_instance_key))
            .bind(at.time_ms)
            .bind(DEFAULT_TENANT)
            .bind(at.partition)
            .bind(at.position)
            .execute(conn)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO element_instance (element_instance_key, process_instance_key, \
                 process_definition_key, process_definition_id, flow_scope_key, element_id, type, \
                 state, start_ms, end_ms, tenant_id, partition_id, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'ACTIVE', $8, NULL, $9, $10, $11) \
                 ON CONFLICT (element_instance_key) DO NOTHING",
            )
            .bind(at.key)
            .bind(p.process_instance_key)
            .bind(p.process_definition_key)
            .bind(p.bpmn_process_id.to_string())
            .bind(optional_key(p.flow_scope_key))
            .bind(p.element_id.to_string())
            .bind(element_type_name(p.bpmn_element_type))
            .bind(at.time_ms)
            .bind(DEFAULT_TENANT)
            .bind(at.partition)
            .bind(at.position)
            .execute(conn)
            .await?;
        }
    } else if let Some(state) = end_state(at.intent) {
        sqlx::query(&format!(
            "UPDATE {table} SET state = $1, end_ms = $2, position = $3 \
             WHERE {key_column} = $4 AND position < $3"
        ))
        .bind(state)
        .bind(at.time_ms)
        .bind(at.position)
        .bind(at.key)
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn variable(conn: &mut AnyConnection, at: &Row, v: &VariableRecord) -> Result {
    if !matches!(at.intent, Intent::Created | Intent::Updated) {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO variable (variable_key, name, value, scope_key, process_instance_key, \
         process_definition_key, process_definition_id, tenant_id, partition_id, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (variable_key) DO UPDATE SET value = excluded.value, \
         position = excluded.position WHERE excluded.position > variable.position",
    )
    .bind(at.key)
    .bind(v.name.clone())
    .bind(v.value.clone())
    .bind(v.scope_key)
    .bind(v.process_instance_key)
    .bind(v.process_definition_key)
    .bind(v.bpmn_process_id.to_string())
    .bind(DEFAULT_TENANT)
    .bind(at.partition)
    .bind(at.position)
    .execute(conn)
    .await?;
    Ok(())
}

/// The API state a job event leaves a job in; `None` keeps the state.
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

async fn job(conn: &mut AnyConnection, at: &Row, j: &JobRecord) -> Result {
    let Some(state) = job_state(at.intent) else {
        return Ok(());
    };
    let ended = matches!(
        at.intent,
        Intent::Completed | Intent::Canceled | Intent::ErrorThrown
    );
    let failed_with_retries = i32::from(at.intent == Intent::Failed && j.retries > 0);
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    sqlx::query(
        "INSERT INTO job (job_key, type, worker, state, kind, retries, deadline_ms, end_ms, \
         error_message, error_code, custom_headers, element_id, element_instance_key, \
         process_instance_key, process_definition_key, process_definition_id, \
         process_definition_version, has_failed_with_retries_left, tenant_id, partition_id, \
         position, creation_ms, updated_ms) VALUES ($1, $2, $3, $4, 'BPMN_ELEMENT', $5, $6, $7, \
         $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21) \
         ON CONFLICT (job_key) DO UPDATE SET worker = excluded.worker, state = excluded.state, \
         updated_ms = excluded.updated_ms, \
         retries = excluded.retries, deadline_ms = excluded.deadline_ms, \
         end_ms = excluded.end_ms, error_message = excluded.error_message, \
         error_code = excluded.error_code, \
         has_failed_with_retries_left = excluded.has_failed_with_retries_left, \
         position = excluded.position WHERE excluded.position > job.position",
    )
    .bind(at.key)
    .bind(j.job_type.to_string())
    .bind(j.worker.clone())
    .bind(state)
    .bind(j.retries)
    .bind(optional_key(j.deadline_ms))
    .bind(ended.then_some(at.time_ms))
    .bind(text(&j.error_message))
    .bind(text(&j.error_code))
    .bind(j.custom_headers.to_string())
    .bind(j.element_id.to_string())
    .bind(j.element_instance_key)
    .bind(j.process_instance_key)
    .bind(j.process_definition_key)
    .bind(j.bpmn_process_id.to_string())
    .bind(j.process_definition_version)
    .bind(failed_with_retries)
    .bind(DEFAULT_TENANT)
    .bind(at.partition)
    .bind(at.position)
    .bind(at.time_ms)
    .execute(conn)
    .await?;
    Ok(())
}

async fn incident(conn: &mut AnyConnection, at: &Row, i: &IncidentRecord) -> Result {
    match at.intent {
        Intent::Created => {
            sqlx::query(
                "INSERT INTO incident (incident_key, process_definition_key, \
                 process_definition_id, process_instance_key, element_instance_key, element_id, \
                 error_type, error_message, state, creation_ms, end_ms, job_key, tenant_id, \
                 partition_id, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ACTIVE', $9, NULL, $10, $11, $12, $13) \
                 ON CONFLICT (incident_key) DO NOTHING",
            )
            .bind(at.key)
            .bind(i.process_definition_key)
            .bind(i.bpmn_process_id.to_string())
            .bind(i.process_instance_key)
            .bind(i.element_instance_key)
            .bind(i.element_id.to_string())
            .bind(i.error_type.name())
            .bind(i.error_message.clone())
            .bind(at.time_ms)
            .bind(optional_key(i.job_key))
            .bind(DEFAULT_TENANT)
            .bind(at.partition)
            .bind(at.position)
            .execute(conn)
            .await?;
        }
        Intent::Resolved => {
            sqlx::query(
                "UPDATE incident SET state = 'RESOLVED', end_ms = $1, position = $2 \
                 WHERE incident_key = $3 AND position < $2",
            )
            .bind(at.time_ms)
            .bind(at.position)
            .bind(at.key)
            .execute(conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn subscription(conn: &mut AnyConnection, at: &Row, s: &MessageSubscriptionRecord) -> Result {
    let state = match at.intent {
        Intent::Created => "CREATED",
        Intent::Correlated => "CORRELATED",
        Intent::Deleted => "DELETED",
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO message_subscription (element_instance_key, message_name, \
         process_instance_key, process_definition_id, element_id, correlation_key, state, \
         updated_ms, tenant_id, partition_id, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (element_instance_key, message_name) DO UPDATE SET state = excluded.state, \
         correlation_key = excluded.correlation_key, updated_ms = excluded.updated_ms, \
         position = excluded.position WHERE excluded.position > message_subscription.position",
    )
    .bind(s.element_instance_key)
    .bind(s.message_name.clone())
    .bind(s.process_instance_key)
    .bind(s.bpmn_process_id.to_string())
    .bind(s.element_id.to_string())
    .bind(s.correlation_key.clone())
    .bind(state)
    .bind(at.time_ms)
    .bind(DEFAULT_TENANT)
    .bind(at.partition)
    .bind(at.position)
    .execute(conn)
    .await?;
    Ok(())
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
            process_name(xml, "order").as_deref(),
            Some("Order handling")
        );
        assert_eq!(process_name(xml, "other"), None);
        assert_eq!(process_name("<not xml", "order"), None);
    }
}
