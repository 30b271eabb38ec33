-- The root of a called process instance (the top of its call chain), so
-- that every instance of a chain answers `rootProcessInstanceKey` and can be
-- searched by it. The writer sets it for called instances when they are
-- written (top-level instances keep NULL: they are their own root), and
-- this fills it for the instances written before.
ALTER TABLE process_instance ADD COLUMN root_process_instance_key BIGINT;
UPDATE process_instance SET root_process_instance_key = (
    WITH RECURSIVE caller (instance_key, parent_key) AS (
        SELECT c.process_instance_key, c.parent_process_instance_key FROM process_instance c
        WHERE c.process_instance_key = process_instance.parent_process_instance_key
        UNION ALL
        SELECT c.process_instance_key, c.parent_process_instance_key
        FROM process_instance c JOIN caller ON c.process_instance_key = caller.parent_key
    )
    SELECT instance_key FROM caller WHERE parent_key IS NULL)
WHERE parent_process_instance_key IS NOT NULL;
CREATE INDEX process_instance_by_root ON process_instance (root_process_instance_key)
    WHERE root_process_instance_key IS NOT NULL;
