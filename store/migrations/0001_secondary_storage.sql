-- Secondary storage, version 1. One text for PostgreSQL and SQLite: only
-- types and statements both read the same way (BIGINT, INTEGER, TEXT,
-- ON CONFLICT upserts). Times are epoch milliseconds (UTC). Every row that a
-- record updates carries `position`: (Raft index << 20) + the record's place
-- in its entry, so a re-exported or late record never overwrites a newer one.
-- Derived facts (an instance has an incident, an element's incident) are
-- computed by the searches, never counted here, so writing a record twice
-- changes nothing.

CREATE TABLE exporter_position (
    partition_id INTEGER PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE process_definition (
    process_definition_key BIGINT PRIMARY KEY,
    process_definition_id TEXT NOT NULL,
    name TEXT,
    version INTEGER NOT NULL,
    version_tag TEXT,
    resource_name TEXT NOT NULL,
    bpmn_xml TEXT NOT NULL,
    tenant_id TEXT NOT NULL
);
CREATE INDEX process_definition_by_id ON process_definition (process_definition_id, version);

CREATE TABLE process_instance (
    process_instance_key BIGINT PRIMARY KEY,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    process_definition_version INTEGER NOT NULL,
    parent_process_instance_key BIGINT,
    parent_element_instance_key BIGINT,
    state TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX process_instance_by_definition ON process_instance (process_definition_key);
CREATE INDEX process_instance_by_end ON process_instance (end_ms);

CREATE TABLE element_instance (
    element_instance_key BIGINT PRIMARY KEY,
    process_instance_key BIGINT NOT NULL,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    flow_scope_key BIGINT,
    element_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX element_instance_by_instance ON element_instance (process_instance_key);

CREATE TABLE variable (
    variable_key BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    scope_key BIGINT NOT NULL,
    process_instance_key BIGINT NOT NULL,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX variable_by_instance ON variable (process_instance_key);
CREATE INDEX variable_by_scope ON variable (scope_key, name);

CREATE TABLE job (
    job_key BIGINT PRIMARY KEY,
    type TEXT NOT NULL,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    retries INTEGER NOT NULL,
    deadline_ms BIGINT,
    creation_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    end_ms BIGINT,
    error_message TEXT,
    error_code TEXT,
    custom_headers TEXT NOT NULL,
    element_id TEXT NOT NULL,
    element_instance_key BIGINT NOT NULL,
    process_instance_key BIGINT NOT NULL,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    process_definition_version INTEGER NOT NULL,
    has_failed_with_retries_left INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX job_by_instance ON job (process_instance_key);
CREATE INDEX job_by_type ON job (type, state);

CREATE TABLE incident (
    incident_key BIGINT PRIMARY KEY,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    process_instance_key BIGINT NOT NULL,
    element_instance_key BIGINT NOT NULL,
    element_id TEXT NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    state TEXT NOT NULL,
    creation_ms BIGINT NOT NULL,
    end_ms BIGINT,
    job_key BIGINT,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX incident_by_instance ON incident (process_instance_key, state);
CREATE INDEX incident_by_element ON incident (element_instance_key, state);

CREATE TABLE user_task (
    user_task_key BIGINT PRIMARY KEY,
    name TEXT,
    state TEXT NOT NULL,
    assignee TEXT,
    candidate_groups TEXT,
    candidate_users TEXT,
    element_id TEXT NOT NULL,
    element_instance_key BIGINT NOT NULL,
    process_instance_key BIGINT NOT NULL,
    process_definition_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    process_definition_version INTEGER NOT NULL,
    form_key BIGINT,
    external_form_reference TEXT,
    custom_headers TEXT,
    priority INTEGER NOT NULL,
    creation_ms BIGINT NOT NULL,
    completion_ms BIGINT,
    due_date TEXT,
    follow_up_date TEXT,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX user_task_by_instance ON user_task (process_instance_key);

CREATE TABLE message_subscription (
    element_instance_key BIGINT NOT NULL,
    message_name TEXT NOT NULL,
    process_instance_key BIGINT NOT NULL,
    process_definition_id TEXT NOT NULL,
    element_id TEXT NOT NULL,
    correlation_key TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (element_instance_key, message_name)
);
CREATE INDEX message_subscription_by_instance ON message_subscription (process_instance_key);

CREATE TABLE decision_requirements (
    decision_requirements_key BIGINT PRIMARY KEY,
    decision_requirements_id TEXT NOT NULL,
    name TEXT,
    version INTEGER NOT NULL,
    resource_name TEXT NOT NULL,
    xml TEXT NOT NULL,
    tenant_id TEXT NOT NULL
);

CREATE TABLE decision_definition (
    decision_definition_key BIGINT PRIMARY KEY,
    decision_definition_id TEXT NOT NULL,
    name TEXT,
    version INTEGER NOT NULL,
    decision_requirements_key BIGINT NOT NULL,
    decision_requirements_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL
);

CREATE TABLE decision_instance (
    decision_instance_id TEXT PRIMARY KEY,
    decision_instance_key BIGINT NOT NULL,
    state TEXT NOT NULL,
    evaluation_ms BIGINT NOT NULL,
    evaluation_failure TEXT,
    decision_definition_key BIGINT NOT NULL,
    decision_definition_id TEXT NOT NULL,
    decision_type TEXT NOT NULL,
    result TEXT,
    process_definition_key BIGINT,
    process_instance_key BIGINT,
    element_instance_key BIGINT,
    tenant_id TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX decision_instance_by_instance ON decision_instance (process_instance_key);
