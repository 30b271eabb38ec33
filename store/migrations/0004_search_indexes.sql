-- Searches over a large history: indexes that deliver the common filters
-- in the common sort order (newest first, the key breaking ties), so that a
-- page reads its rows in order instead of sorting every match, and the
-- hasIncident flag of process and element instances as a column the writer
-- keeps (recomputed from the incident rows whenever an incident of the
-- instance is written, so writing a record twice still changes nothing),
-- with partial indexes over the few flagged rows.
-- Index columns are plain `DESC`: SQLite takes no NULLS FIRST/LAST in an
-- index, and the columns are NOT NULL, so the searches sort them without
-- a NULLS clause.
ALTER TABLE process_instance ADD COLUMN has_incident INTEGER NOT NULL DEFAULT 0;
ALTER TABLE element_instance ADD COLUMN has_incident INTEGER NOT NULL DEFAULT 0;
UPDATE process_instance SET has_incident = 1 WHERE process_instance_key IN
    (SELECT process_instance_key FROM incident WHERE state = 'ACTIVE');
UPDATE element_instance SET has_incident = 1 WHERE element_instance_key IN
    (SELECT element_instance_key FROM incident WHERE state = 'ACTIVE');
CREATE INDEX process_instance_with_incident ON process_instance (process_instance_key)
    WHERE has_incident = 1;
CREATE INDEX element_instance_with_incident ON element_instance (element_instance_key)
    WHERE has_incident = 1;

DROP INDEX process_instance_by_definition;
CREATE INDEX process_instance_by_definition_state_start
    ON process_instance (process_definition_key, state, start_ms DESC, process_instance_key);
CREATE INDEX process_instance_by_definition_id_state_start
    ON process_instance (process_definition_id, state, start_ms DESC, process_instance_key);
CREATE INDEX process_instance_by_state_start
    ON process_instance (state, start_ms DESC, process_instance_key);
CREATE INDEX process_instance_by_parent ON process_instance (parent_process_instance_key)
    WHERE parent_process_instance_key IS NOT NULL;
CREATE INDEX incident_active ON incident (incident_key) WHERE state = 'ACTIVE';
