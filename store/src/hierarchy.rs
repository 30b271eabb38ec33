//! The call hierarchy of a process instance: the chain of process instances
//! that called it through call activities, read from the parent keys of the
//! `process_instance` rows.

use serde_json::{json, Value};
use sqlx::Row as _;

use crate::{Store, StoreError};

/// Most ancestors followed (a chain longer than any real one means a cycle
/// in broken data, which must not loop forever).
const MAX_DEPTH: i64 = 1_000;

impl Store {
    /// The ancestors of process instance `key`, the root first and its
    /// direct parent last, as `{processInstanceKey, processDefinitionKey,
    /// processDefinitionName}` (the name falls back to the BPMN process
    /// id); empty for a root instance. `None` when the store does not have
    /// the instance. An ancestor not (yet, or no longer) stored ends the
    /// chain there.
    pub async fn call_hierarchy(&self, key: i64) -> Result<Option<Vec<Value>>, StoreError> {
        let known: Option<(i64,)> = sqlx::query_as(
            "SELECT process_instance_key FROM process_instance WHERE process_instance_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        if known.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE chain (ancestor, depth) AS ( \
               SELECT parent_process_instance_key, 1 FROM process_instance \
               WHERE process_instance_key = $1 AND parent_process_instance_key IS NOT NULL \
             UNION ALL \
               SELECT p.parent_process_instance_key, c.depth + 1 FROM chain c \
               JOIN process_instance p ON p.process_instance_key = c.ancestor \
               WHERE p.parent_process_instance_key IS NOT NULL AND c.depth < {MAX_DEPTH} \
             ) \
             SELECT p.process_instance_key, p.process_definition_key, \
               COALESCE(NULLIF(TRIM(d.name), ''), p.process_definition_id) \
             FROM chain c JOIN process_instance p ON p.process_instance_key = c.ancestor \
             LEFT JOIN process_definition d ON d.process_definition_key = p.process_definition_key \
             ORDER BY c.depth DESC"
        ))
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|r| {
                Ok(json!({
                    "processInstanceKey": r.try_get::<i64, _>(0)?.to_string(),
                    "processDefinitionKey": r.try_get::<i64, _>(1)?.to_string(),
                    "processDefinitionName": r.try_get::<String, _>(2)?,
                }))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map(Some)
            .map_err(|e| self.error(e))
    }
}
