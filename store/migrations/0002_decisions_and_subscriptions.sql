-- What the decision and message subscription searches of the API return
-- beyond the first schema: the subscription's own key, and per evaluated
-- decision its name, version, inputs and matched rules.
ALTER TABLE message_subscription ADD COLUMN message_subscription_key BIGINT;
ALTER TABLE decision_instance ADD COLUMN decision_definition_name TEXT;
ALTER TABLE decision_instance ADD COLUMN decision_definition_version INTEGER;
ALTER TABLE decision_instance ADD COLUMN evaluated_inputs TEXT;
ALTER TABLE decision_instance ADD COLUMN matched_rules TEXT;
ALTER TABLE decision_instance ADD COLUMN root_decision_definition_key BIGINT;
CREATE INDEX decision_instance_by_definition ON decision_instance (decision_definition_key);
