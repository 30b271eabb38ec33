//! The `has_incident` flags of process and element instances: after the
//! incident rows of a batch are written, the flag of every instance and
//! element instance they belong to is computed again from the incident
//! table (an active incident of it exists), so that a record written twice,
//! or late, leaves the same flag. Searches filter by the flag through
//! partial indexes over the few flagged rows.

use std::collections::BTreeSet;

use sqlx::AnyConnection;

/// Instances and element instances whose incidents changed in a batch.
#[derive(Debug, Default)]
pub struct Touched {
    instances: BTreeSet<i64>,
    elements: BTreeSet<i64>,
}

impl Touched {
    /// An incident row of `instance` at `element` is written.
    pub fn incident(&mut self, instance: i64, element: i64) {
        self.instances.insert(instance);
        self.elements.insert(element);
    }

    /// Computes the flags of everything touched again, then forgets it.
    pub async fn refresh(&mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        refresh(
            conn,
            "process_instance",
            "process_instance_key",
            &self.instances,
        )
        .await?;
        refresh(
            conn,
            "element_instance",
            "element_instance_key",
            &self.elements,
        )
        .await?;
        self.instances.clear();
        self.elements.clear();
        Ok(())
    }
}

async fn refresh(
    conn: &mut AnyConnection,
    table: &str,
    key: &str,
    keys: &BTreeSet<i64>,
) -> Result<(), sqlx::Error> {
    super::update_keys(conn, keys.iter().copied(), |list| {
        format!(
            "UPDATE {table} SET has_incident = CASE WHEN EXISTS (SELECT 1 FROM incident i \
             WHERE i.{key} = {table}.{key} AND i.state = 'ACTIVE') THEN 1 ELSE 0 END \
             WHERE {key} IN ({list})"
        )
    })
    .await
}
