//! The roots of called process instances: after the instance rows of a
//! batch are written, every called instance of the batch that has no root
//! yet gets the top of its call chain, found by walking up the callers'
//! rows (a caller is always written before the instances it calls, in the
//! same batch or an earlier one). A top-level instance keeps NULL and is
//! its own root. Writing a record twice finds the root set and changes
//! nothing.

use std::collections::BTreeSet;

use sqlx::AnyConnection;

/// The root of the instance `process_instance` (the row being updated):
/// its callers, walked up until the one that has no caller.
const ROOT_OF_ROW: &str = "(WITH RECURSIVE caller (instance_key, parent_key) AS (
        SELECT c.process_instance_key, c.parent_process_instance_key FROM process_instance c
        WHERE c.process_instance_key = process_instance.parent_process_instance_key
        UNION ALL
        SELECT c.process_instance_key, c.parent_process_instance_key
        FROM process_instance c JOIN caller ON c.process_instance_key = caller.parent_key
    )
    SELECT instance_key FROM caller WHERE parent_key IS NULL)";

/// Called instances written in a batch.
#[derive(Debug, Default)]
pub struct Called {
    instances: BTreeSet<i64>,
}

impl Called {
    /// Called instance `instance` is written.
    pub fn instance(&mut self, instance: i64) {
        self.instances.insert(instance);
    }

    /// Sets the roots of the instances written, then forgets them.
    pub async fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let keys = std::mem::take(&mut self.instances);
        super::update_keys(conn, keys, |list| {
            format!(
                "UPDATE process_instance SET root_process_instance_key = {ROOT_OF_ROW} \
                 WHERE root_process_instance_key IS NULL AND process_instance_key IN ({list})"
            )
        })
        .await
    }
}
