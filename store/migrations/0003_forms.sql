-- Deployed Camunda Forms (FORM records): the form JSON as `schema`, for the
-- form of a user task and the start form of a process definition.
CREATE TABLE form (
    form_key BIGINT PRIMARY KEY,
    form_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    version_tag TEXT,
    resource_name TEXT NOT NULL,
    schema TEXT NOT NULL,
    tenant_id TEXT NOT NULL
);
CREATE INDEX form_by_id ON form (form_id, version);
