//! History cleanup: the rows of process instances that ended more than the
//! time to live ago are deleted, oldest first, a bounded batch per
//! transaction, the instance's rows in the same transaction as the
//! instance (a cleanup cut short leaves no row without its instance).

use crate::{Store, StoreError};

/// Instances deleted per transaction.
pub const CLEANUP_BATCH: u32 = 1000;

/// Tables whose rows belong to a process instance, deleted with it.
const CHILD_TABLES: [&str; 7] = [
    "element_instance",
    "variable",
    "job",
    "incident",
    "user_task",
    "message_subscription",
    "decision_instance",
];

impl Store {
    /// Deletes up to [`CLEANUP_BATCH`] instances that ended before
    /// `ended_before_ms`, with their element instances, variables, jobs,
    /// incidents, user tasks, subscriptions and decision instances, in one
    /// transaction; returns how many instances went. Call again while it
    /// returns the full batch.
    pub async fn cleanup(&self, ended_before_ms: i64) -> Result<u64, StoreError> {
        let due = format!(
            "SELECT process_instance_key FROM process_instance WHERE end_ms IS NOT NULL \
             AND end_ms < $1 ORDER BY end_ms, process_instance_key LIMIT {CLEANUP_BATCH}"
        );
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        for table in CHILD_TABLES {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE process_instance_key IN ({due})"
            ))
            .bind(ended_before_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        }
        let done = sqlx::query(&format!(
            "DELETE FROM process_instance WHERE process_instance_key IN ({due})"
        ))
        .bind(ended_before_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .rows_affected();
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(done)
    }
}
