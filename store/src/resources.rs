//! The searchable resources: for each, the rows it reads (`FROM`), its key,
//! and every API field with the SQL that computes it and its kind. Field
//! names are those of the Orchestration Cluster API (v2) search results; a
//! field whose feature waggle does not have yet is a constant.

/// How a field is read from SQL and written as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit key: BIGINT, written as a decimal string.
    Key,
    /// A number: INTEGER or BIGINT.
    Int,
    /// Text.
    Text,
    /// Epoch milliseconds, written as RFC 3339.
    Date,
    /// 0 or 1, written as a boolean.
    Bool,
    /// Text holding JSON, written as that JSON (not filterable).
    Json,
}

/// One API field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The API name (`processInstanceKey`).
    pub name: &'static str,
    /// The SQL expression that computes it.
    pub sql: &'static str,
    /// How it is read and written.
    pub kind: Kind,
}

/// A searchable resource.
#[derive(Debug)]
pub struct Resource {
    /// What errors call it (`process instances`).
    pub name: &'static str,
    /// Tables, with joins.
    pub from: &'static str,
    /// The key field's API name, the default sort and the tie breaker.
    pub key: &'static str,
    /// Every field of a result item.
    pub fields: &'static [Field],
}

impl Field {
    /// Whether the field is a constant (a feature waggle does not have yet):
    /// sorting by it orders nothing, and an integer literal in `ORDER BY`
    /// would name a column by position.
    pub fn is_constant(&self) -> bool {
        self.sql.parse::<i64>().is_ok() || self.sql.starts_with("CAST(NULL ")
    }
}

impl Resource {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The key field.
    pub fn key_field(&self) -> &Field {
        self.field(self.key)
            .expect("a resource lists its key field")
    }
}

const fn f(name: &'static str, sql: &'static str, kind: Kind) -> Field {
    Field { name, sql, kind }
}

use Kind::{Bool, Date, Int, Json, Key, Text};

const NO_TEXT: &str = "CAST(NULL AS TEXT)";
const NO_KEY: &str = "CAST(NULL AS BIGINT)";

/// `POST /v2/process-definitions/search`.
pub static PROCESS_DEFINITIONS: Resource = Resource {
    name: "process definitions",
    from: "process_definition d",
    key: "processDefinitionKey",
    fields: &[
        f("processDefinitionKey", "d.process_definition_key", Key),
        f("processDefinitionId", "d.process_definition_id", Text),
        f("name", "d.name", Text),
        f("version", "d.version", Int),
        f("versionTag", "d.version_tag", Text),
        f("resourceName", "d.resource_name", Text),
        f("tenantId", "d.tenant_id", Text),
        f("hasStartForm", "0", Bool),
        f("state", "'ACTIVE'", Text),
    ],
};

/// A top-level instance is its own root; a child's root is not tracked yet.
const ROOT: &str =
    "CASE WHEN p.parent_process_instance_key IS NULL THEN p.process_instance_key END";

const INSTANCE_INCIDENT: &str = "CASE WHEN EXISTS (SELECT 1 FROM incident i WHERE \
    i.process_instance_key = p.process_instance_key AND i.state = 'ACTIVE') THEN 1 ELSE 0 END";

/// `POST /v2/process-instances/search`.
pub static PROCESS_INSTANCES: Resource = Resource {
    name: "process instances",
    from: "process_instance p LEFT JOIN process_definition d \
           ON d.process_definition_key = p.process_definition_key",
    key: "processInstanceKey",
    fields: &[
        f("processInstanceKey", "p.process_instance_key", Key),
        f("processDefinitionId", "p.process_definition_id", Text),
        f("processDefinitionName", "d.name", Text),
        f(
            "processDefinitionVersion",
            "p.process_definition_version",
            Int,
        ),
        f("processDefinitionVersionTag", "d.version_tag", Text),
        f("processDefinitionKey", "p.process_definition_key", Key),
        f(
            "parentProcessInstanceKey",
            "p.parent_process_instance_key",
            Key,
        ),
        f(
            "parentElementInstanceKey",
            "p.parent_element_instance_key",
            Key,
        ),
        f("startDate", "p.start_ms", Date),
        f("endDate", "p.end_ms", Date),
        f("suspendedDate", NO_KEY, Date),
        f("state", "p.state", Text),
        f("hasIncident", INSTANCE_INCIDENT, Bool),
        f("tenantId", "p.tenant_id", Text),
        f("tags", "'[]'", Json),
        f("rootProcessInstanceKey", ROOT, Key),
        f("businessId", NO_TEXT, Text),
    ],
};

const ELEMENT_INCIDENT: &str = "(SELECT MIN(i.incident_key) FROM incident i WHERE \
    i.element_instance_key = e.element_instance_key AND i.state = 'ACTIVE')";
const ELEMENT_HAS_INCIDENT: &str = "CASE WHEN EXISTS (SELECT 1 FROM incident i WHERE \
    i.element_instance_key = e.element_instance_key AND i.state = 'ACTIVE') THEN 1 ELSE 0 END";

/// `POST /v2/element-instances/search`.
pub static ELEMENT_INSTANCES: Resource = Resource {
    name: "element instances",
    from: "element_instance e",
    key: "elementInstanceKey",
    fields: &[
        f("elementInstanceKey", "e.element_instance_key", Key),
        f("rootProcessInstanceKey", NO_KEY, Key),
        f("processInstanceKey", "e.process_instance_key", Key),
        f("processDefinitionKey", "e.process_definition_key", Key),
        f("processDefinitionId", "e.process_definition_id", Text),
        f("elementId", "e.element_id", Text),
        f("elementName", NO_TEXT, Text),
        f("type", "e.type", Text),
        f("state", "e.state", Text),
        f("startDate", "e.start_ms", Date),
        f("endDate", "e.end_ms", Date),
        f("hasIncident", ELEMENT_HAS_INCIDENT, Bool),
        f("incidentKey", ELEMENT_INCIDENT, Key),
        f("tenantId", "e.tenant_id", Text),
    ],
};

/// `POST /v2/variables/search`.
pub static VARIABLES: Resource = Resource {
    name: "variables",
    from: "variable v",
    key: "variableKey",
    fields: &[
        f("variableKey", "v.variable_key", Key),
        f("rootProcessInstanceKey", NO_KEY, Key),
        f("name", "v.name", Text),
        f("value", "v.value", Text),
        f("isTruncated", "0", Bool),
        f("scopeKey", "v.scope_key", Key),
        f("processInstanceKey", "v.process_instance_key", Key),
        f("tenantId", "v.tenant_id", Text),
    ],
};

/// `POST /v2/jobs/search`.
pub static JOBS: Resource = Resource {
    name: "jobs",
    from: "job j",
    key: "jobKey",
    fields: &[
        f("jobKey", "j.job_key", Key),
        f("rootProcessInstanceKey", NO_KEY, Key),
        f("businessId", NO_TEXT, Text),
        f("creationTime", "j.creation_ms", Date),
        f("lastUpdateTime", "j.updated_ms", Date),
        f("priority", "0", Int),
        f("type", "j.type", Text),
        f("worker", "j.worker", Text),
        f("state", "j.state", Text),
        f("kind", "j.kind", Text),
        f("listenerEventType", "'UNSPECIFIED'", Text),
        f("retries", "j.retries", Int),
        f("deadline", "j.deadline_ms", Date),
        f("endTime", "j.end_ms", Date),
        f("errorMessage", "j.error_message", Text),
        f("errorCode", "j.error_code", Text),
        f("customHeaders", "j.custom_headers", Json),
        f(
            "hasFailedWithRetriesLeft",
            "j.has_failed_with_retries_left",
            Bool,
        ),
        f("isDenied", "CAST(NULL AS INTEGER)", Bool),
        f("deniedReason", NO_TEXT, Text),
        f("elementId", "j.element_id", Text),
        f("elementInstanceKey", "j.element_instance_key", Key),
        f("processInstanceKey", "j.process_instance_key", Key),
        f("processDefinitionKey", "j.process_definition_key", Key),
        f("processDefinitionId", "j.process_definition_id", Text),
        f(
            "processDefinitionVersion",
            "j.process_definition_version",
            Int,
        ),
        f("tenantId", "j.tenant_id", Text),
    ],
};

/// `POST /v2/incidents/search`.
pub static INCIDENTS: Resource = Resource {
    name: "incidents",
    from: "incident i",
    key: "incidentKey",
    fields: &[
        f("incidentKey", "i.incident_key", Key),
        f("rootProcessInstanceKey", NO_KEY, Key),
        f("processDefinitionKey", "i.process_definition_key", Key),
        f("processDefinitionId", "i.process_definition_id", Text),
        f("processInstanceKey", "i.process_instance_key", Key),
        f("elementInstanceKey", "i.element_instance_key", Key),
        f("elementId", "i.element_id", Text),
        f("errorType", "i.error_type", Text),
        f("errorMessage", "i.error_message", Text),
        f("creationTime", "i.creation_ms", Date),
        f("state", "i.state", Text),
        f("jobKey", "i.job_key", Key),
        f("tenantId", "i.tenant_id", Text),
    ],
};

/// `POST /v2/user-tasks/search`.
pub static USER_TASKS: Resource = Resource {
    name: "user tasks",
    from: "user_task u LEFT JOIN process_definition d \
           ON d.process_definition_key = u.process_definition_key",
    key: "userTaskKey",
    fields: &[
        f("userTaskKey", "u.user_task_key", Key),
        f("rootProcessInstanceKey", NO_KEY, Key),
        f("businessId", NO_TEXT, Text),
        f("processName", "d.name", Text),
        f("tags", "'[]'", Json),
        f("name", "u.name", Text),
        f("state", "u.state", Text),
        f("assignee", "u.assignee", Text),
        f("elementId", "u.element_id", Text),
        f("elementInstanceKey", "u.element_instance_key", Key),
        f(
            "candidateGroups",
            "COALESCE(u.candidate_groups, '[]')",
            Json,
        ),
        f("candidateUsers", "COALESCE(u.candidate_users, '[]')", Json),
        f("processDefinitionId", "u.process_definition_id", Text),
        f("processDefinitionKey", "u.process_definition_key", Key),
        f(
            "processDefinitionVersion",
            "u.process_definition_version",
            Int,
        ),
        f("processInstanceKey", "u.process_instance_key", Key),
        f("formKey", "u.form_key", Key),
        f("creationDate", "u.creation_ms", Date),
        f("completionDate", "u.completion_ms", Date),
        f("dueDate", "u.due_date", Text),
        f("followUpDate", "u.follow_up_date", Text),
        f("externalFormReference", "u.external_form_reference", Text),
        f("customHeaders", "COALESCE(u.custom_headers, '{}')", Json),
        f("priority", "u.priority", Int),
        f("tenantId", "u.tenant_id", Text),
    ],
};
