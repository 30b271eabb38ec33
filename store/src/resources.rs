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
    /// For a computed flag: a condition that holds exactly when the flag is
    /// true, written so that the database can use its indexes (a semi-join
    /// instead of the flag's expression for every row). Filters by the
    /// flag's value use it.
    pub when_true: Option<&'static str>,
    /// The SQL is never NULL (a NOT NULL column of the resource's first
    /// table): a sort by it needs no NULLS clause, so an index in the
    /// field's order can deliver it.
    pub not_null: bool,
    /// Results carry it; false for a field that only filters and sorts
    /// (`elementInstanceScopeKey`).
    pub in_results: bool,
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
    /// The instance key the `variables` filter (`[{name, value}]`: the
    /// instance has a variable of that name whose JSON value matches)
    /// matches against; `None` when the resource takes no such filter.
    pub variables_of: Option<&'static str>,
    /// Filters on lists, by name and the SQL of a column holding a JSON
    /// list of strings: the item's list holds the value (`candidateGroup:
    /// "sales"`). Not fields of the results.
    pub members: &'static [(&'static str, &'static str)],
}

impl Field {
    /// The same field, never NULL.
    pub const fn not_null(self) -> Field {
        Field {
            not_null: true,
            ..self
        }
    }

    /// The same field, filtering and sorting only: not in the results.
    pub const fn filter_only(self) -> Field {
        Field {
            in_results: false,
            ..self
        }
    }

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
    Field {
        name,
        sql,
        kind,
        when_true: None,
        not_null: false,
        in_results: true,
    }
}

/// A field whose SQL is never NULL.
const fn nn(name: &'static str, sql: &'static str, kind: Kind) -> Field {
    f(name, sql, kind).not_null()
}

/// A computed boolean flag with the condition that filters by it.
const fn flag(name: &'static str, sql: &'static str, when_true: &'static str) -> Field {
    Field {
        name,
        sql,
        kind: Kind::Bool,
        when_true: Some(when_true),
        not_null: true,
        in_results: true,
    }
}

use Kind::{Bool, Date, Int, Json, Key, Text};

const NO_TEXT: &str = "CAST(NULL AS TEXT)";
const NO_KEY: &str = "CAST(NULL AS BIGINT)";

/// `POST /v2/process-definitions/search`.
pub static PROCESS_DEFINITIONS: Resource = Resource {
    name: "process definitions",
    from: "process_definition d",
    key: "processDefinitionKey",
    variables_of: None,
    members: &[],
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

/// The root of a process instance row `$row`: a top-level instance is its
/// own, a called one's is kept by the writer.
macro_rules! root_of_row {
    ($row:literal) => {
        concat!(
            "CASE WHEN ",
            $row,
            ".parent_process_instance_key IS NULL THEN ",
            $row,
            ".process_instance_key ELSE ",
            $row,
            ".root_process_instance_key END"
        )
    };
}

/// The root of the process instance whose key is `$key` (a column).
macro_rules! root_of_instance {
    ($key:literal) => {
        concat!(
            "(SELECT ",
            root_of_row!("ri"),
            " FROM process_instance ri WHERE ri.process_instance_key = ",
            $key,
            ")"
        )
    };
}

const ROOT: &str = root_of_row!("p");

/// `POST /v2/process-instances/search`.
pub static PROCESS_INSTANCES: Resource = Resource {
    name: "process instances",
    from: "process_instance p LEFT JOIN process_definition d \
           ON d.process_definition_key = p.process_definition_key",
    key: "processInstanceKey",
    variables_of: Some("p.process_instance_key"),
    members: &[],
    fields: &[
        nn("processInstanceKey", "p.process_instance_key", Key),
        nn("processDefinitionId", "p.process_definition_id", Text),
        f("processDefinitionName", "d.name", Text),
        nn(
            "processDefinitionVersion",
            "p.process_definition_version",
            Int,
        ),
        f("processDefinitionVersionTag", "d.version_tag", Text),
        nn("processDefinitionKey", "p.process_definition_key", Key),
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
        nn("startDate", "p.start_ms", Date),
        f("endDate", "p.end_ms", Date),
        f("suspendedDate", NO_KEY, Date),
        nn("state", "p.state", Text),
        flag("hasIncident", "p.has_incident", "p.has_incident = 1"),
        nn("tenantId", "p.tenant_id", Text),
        f("tags", "'[]'", Json),
        f("rootProcessInstanceKey", ROOT, Key),
        f("businessId", NO_TEXT, Text),
    ],
};

const ELEMENT_INCIDENT: &str = "(SELECT MIN(i.incident_key) FROM incident i WHERE \
    i.element_instance_key = e.element_instance_key AND i.state = 'ACTIVE')";

/// `POST /v2/element-instances/search`.
pub static ELEMENT_INSTANCES: Resource = Resource {
    name: "element instances",
    from: "element_instance e",
    key: "elementInstanceKey",
    variables_of: None,
    members: &[],
    fields: &[
        nn("elementInstanceKey", "e.element_instance_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("e.process_instance_key"),
            Key,
        ),
        nn("processInstanceKey", "e.process_instance_key", Key),
        nn("processDefinitionKey", "e.process_definition_key", Key),
        nn("processDefinitionId", "e.process_definition_id", Text),
        nn("elementId", "e.element_id", Text),
        f("elementName", NO_TEXT, Text),
        nn("type", "e.type", Text),
        nn("state", "e.state", Text),
        nn("startDate", "e.start_ms", Date),
        f("endDate", "e.end_ms", Date),
        flag("hasIncident", "e.has_incident", "e.has_incident = 1"),
        f("incidentKey", ELEMENT_INCIDENT, Key),
        nn("tenantId", "e.tenant_id", Text),
        // The element instance or process instance it runs in: its parent
        // in the instance's tree.
        f("elementInstanceScopeKey", "e.flow_scope_key", Key).filter_only(),
    ],
};

/// `POST /v2/variables/search`.
pub static VARIABLES: Resource = Resource {
    name: "variables",
    from: "variable v",
    key: "variableKey",
    variables_of: None,
    members: &[],
    fields: &[
        nn("variableKey", "v.variable_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("v.process_instance_key"),
            Key,
        ),
        nn("name", "v.name", Text),
        nn("value", "v.value", Text),
        f("isTruncated", "0", Bool),
        nn("scopeKey", "v.scope_key", Key),
        nn("processInstanceKey", "v.process_instance_key", Key),
        nn("tenantId", "v.tenant_id", Text),
    ],
};

/// `POST /v2/jobs/search`.
pub static JOBS: Resource = Resource {
    name: "jobs",
    from: "job j",
    key: "jobKey",
    variables_of: None,
    members: &[],
    fields: &[
        nn("jobKey", "j.job_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("j.process_instance_key"),
            Key,
        ),
        f("businessId", NO_TEXT, Text),
        nn("creationTime", "j.creation_ms", Date),
        nn("lastUpdateTime", "j.updated_ms", Date),
        f("priority", "0", Int),
        nn("type", "j.type", Text),
        nn("worker", "j.worker", Text),
        nn("state", "j.state", Text),
        nn("kind", "j.kind", Text),
        f("listenerEventType", "'UNSPECIFIED'", Text),
        nn("retries", "j.retries", Int),
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
        nn("elementId", "j.element_id", Text),
        nn("elementInstanceKey", "j.element_instance_key", Key),
        nn("processInstanceKey", "j.process_instance_key", Key),
        nn("processDefinitionKey", "j.process_definition_key", Key),
        nn("processDefinitionId", "j.process_definition_id", Text),
        nn(
            "processDefinitionVersion",
            "j.process_definition_version",
            Int,
        ),
        nn("tenantId", "j.tenant_id", Text),
    ],
};

/// `POST /v2/incidents/search`.
pub static INCIDENTS: Resource = Resource {
    name: "incidents",
    from: "incident i",
    key: "incidentKey",
    variables_of: None,
    members: &[],
    fields: &[
        nn("incidentKey", "i.incident_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("i.process_instance_key"),
            Key,
        ),
        nn("processDefinitionKey", "i.process_definition_key", Key),
        nn("processDefinitionId", "i.process_definition_id", Text),
        nn("processInstanceKey", "i.process_instance_key", Key),
        nn("elementInstanceKey", "i.element_instance_key", Key),
        nn("elementId", "i.element_id", Text),
        nn("errorType", "i.error_type", Text),
        nn("errorMessage", "i.error_message", Text),
        nn("creationTime", "i.creation_ms", Date),
        nn("state", "i.state", Text),
        f("jobKey", "i.job_key", Key),
        nn("tenantId", "i.tenant_id", Text),
    ],
};

/// `POST /v2/user-tasks/search`.
pub static USER_TASKS: Resource = Resource {
    name: "user tasks",
    from: "user_task u LEFT JOIN process_definition d \
           ON d.process_definition_key = u.process_definition_key",
    key: "userTaskKey",
    variables_of: None,
    members: &[
        ("candidateGroup", "u.candidate_groups"),
        ("candidateUser", "u.candidate_users"),
    ],
    fields: &[
        nn("userTaskKey", "u.user_task_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("u.process_instance_key"),
            Key,
        ),
        f("businessId", NO_TEXT, Text),
        f("processName", "d.name", Text),
        f("tags", "'[]'", Json),
        f("name", "u.name", Text),
        nn("state", "u.state", Text),
        f("assignee", "u.assignee", Text),
        nn("elementId", "u.element_id", Text),
        nn("elementInstanceKey", "u.element_instance_key", Key),
        f(
            "candidateGroups",
            "COALESCE(u.candidate_groups, '[]')",
            Json,
        ),
        f("candidateUsers", "COALESCE(u.candidate_users, '[]')", Json),
        nn("processDefinitionId", "u.process_definition_id", Text),
        nn("processDefinitionKey", "u.process_definition_key", Key),
        nn(
            "processDefinitionVersion",
            "u.process_definition_version",
            Int,
        ),
        nn("processInstanceKey", "u.process_instance_key", Key),
        f("formKey", "u.form_key", Key),
        nn("creationDate", "u.creation_ms", Date),
        f("completionDate", "u.completion_ms", Date),
        f("dueDate", "u.due_date", Text),
        f("followUpDate", "u.follow_up_date", Text),
        f("externalFormReference", "u.external_form_reference", Text),
        f("customHeaders", "COALESCE(u.custom_headers, '{}')", Json),
        nn("priority", "u.priority", Int),
        nn("tenantId", "u.tenant_id", Text),
    ],
};

/// `POST /v2/decision-definitions/search`.
pub static DECISION_DEFINITIONS: Resource = Resource {
    name: "decision definitions",
    from: "decision_definition dd LEFT JOIN decision_requirements r \
           ON r.decision_requirements_key = dd.decision_requirements_key",
    key: "decisionDefinitionKey",
    variables_of: None,
    members: &[],
    fields: &[
        f("decisionDefinitionKey", "dd.decision_definition_key", Key),
        f("decisionDefinitionId", "dd.decision_definition_id", Text),
        f("name", "COALESCE(dd.name, dd.decision_definition_id)", Text),
        f("version", "dd.version", Int),
        f(
            "decisionRequirementsKey",
            "dd.decision_requirements_key",
            Key,
        ),
        f(
            "decisionRequirementsId",
            "dd.decision_requirements_id",
            Text,
        ),
        f(
            "decisionRequirementsName",
            "COALESCE(r.name, dd.decision_requirements_id)",
            Text,
        ),
        f("decisionRequirementsVersion", "COALESCE(r.version, 0)", Int),
        f("tenantId", "dd.tenant_id", Text),
    ],
};

/// `POST /v2/decision-requirements/search`.
pub static DECISION_REQUIREMENTS: Resource = Resource {
    name: "decision requirements",
    from: "decision_requirements r",
    key: "decisionRequirementsKey",
    variables_of: None,
    members: &[],
    fields: &[
        f(
            "decisionRequirementsKey",
            "r.decision_requirements_key",
            Key,
        ),
        f("decisionRequirementsId", "r.decision_requirements_id", Text),
        f(
            "decisionRequirementsName",
            "COALESCE(r.name, r.decision_requirements_id)",
            Text,
        ),
        f("version", "r.version", Int),
        f("resourceName", "r.resource_name", Text),
        f("tenantId", "r.tenant_id", Text),
    ],
};

/// `POST /v2/decision-instances/search`; `GET` by key adds the inputs and
/// the matched rules ([`DECISION_INSTANCE_DETAILS`]).
pub static DECISION_INSTANCES: Resource = Resource {
    name: "decision instances",
    from: "decision_instance di",
    key: "decisionEvaluationInstanceKey",
    variables_of: None,
    members: &[],
    fields: DECISION_INSTANCE_FIELDS
        .split_at(DECISION_INSTANCE_FIELDS.len() - 2)
        .0,
};

/// `GET /v2/decision-instances/{decisionEvaluationInstanceKey}`.
pub static DECISION_INSTANCE_DETAILS: Resource = Resource {
    name: "decision instances",
    from: "decision_instance di",
    key: "decisionEvaluationInstanceKey",
    variables_of: None,
    members: &[],
    fields: &DECISION_INSTANCE_FIELDS,
};

static DECISION_INSTANCE_FIELDS: [Field; 20] = [
    f(
        "decisionEvaluationInstanceKey",
        "di.decision_instance_id",
        Text,
    ),
    f("decisionEvaluationKey", "di.decision_instance_key", Key),
    f("state", "di.state", Text),
    f("evaluationDate", "di.evaluation_ms", Date),
    f("evaluationFailure", "di.evaluation_failure", Text),
    f(
        "decisionDefinitionKey",
        "COALESCE(di.decision_definition_key, 0)",
        Key,
    ),
    f("decisionDefinitionId", "di.decision_definition_id", Text),
    f(
        "decisionDefinitionName",
        "COALESCE(di.decision_definition_name, di.decision_definition_id)",
        Text,
    ),
    f(
        "decisionDefinitionVersion",
        "COALESCE(di.decision_definition_version, 0)",
        Int,
    ),
    f("decisionDefinitionType", "di.decision_type", Text),
    f("result", "COALESCE(di.result, 'null')", Text),
    f(
        "rootDecisionDefinitionKey",
        "COALESCE(di.root_decision_definition_key, di.decision_definition_key, 0)",
        Key,
    ),
    f("processDefinitionKey", "di.process_definition_key", Key),
    f("processInstanceKey", "di.process_instance_key", Key),
    f("elementInstanceKey", "di.element_instance_key", Key),
    f(
        "rootProcessInstanceKey",
        root_of_instance!("di.process_instance_key"),
        Key,
    ),
    f("businessId", NO_TEXT, Text),
    f("tenantId", "di.tenant_id", Text),
    // Only in a GET by key: the last two.
    f(
        "evaluatedInputs",
        "COALESCE(di.evaluated_inputs, '[]')",
        Json,
    ),
    f("matchedRules", "COALESCE(di.matched_rules, '[]')", Json),
];

/// `POST /v2/message-subscriptions/search`: the subscriptions of waiting
/// message catch events, boundary events and receive tasks.
pub static MESSAGE_SUBSCRIPTIONS: Resource = Resource {
    name: "message subscriptions",
    from: "message_subscription s \
           LEFT JOIN process_instance p ON p.process_instance_key = s.process_instance_key \
           LEFT JOIN process_definition d ON d.process_definition_key = p.process_definition_key",
    key: "messageSubscriptionKey",
    variables_of: None,
    members: &[],
    fields: &[
        f(
            "messageSubscriptionKey",
            "COALESCE(s.message_subscription_key, s.element_instance_key)",
            Key,
        ),
        f("processDefinitionId", "s.process_definition_id", Text),
        f("processDefinitionKey", "p.process_definition_key", Key),
        f("processDefinitionName", "d.name", Text),
        f("processDefinitionVersion", "d.version", Int),
        f("processInstanceKey", "s.process_instance_key", Key),
        f(
            "rootProcessInstanceKey",
            root_of_instance!("s.process_instance_key"),
            Key,
        ),
        f("elementId", "s.element_id", Text),
        f("elementInstanceKey", "s.element_instance_key", Key),
        f("messageSubscriptionState", "s.state", Text),
        f("messageSubscriptionType", "'PROCESS_EVENT'", Text),
        f("lastUpdatedDate", "s.updated_ms", Date),
        f("messageName", "s.message_name", Text),
        f("correlationKey", "s.correlation_key", Text),
        f("toolName", NO_TEXT, Text),
        f("toolProperties", "'{}'", Json),
        f("inboundConnectorType", NO_TEXT, Text),
        f("businessId", NO_TEXT, Text),
        f("tenantId", "s.tenant_id", Text),
    ],
};
