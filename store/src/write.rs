//! Writing exported records: one transaction per call, many records each,
//! the partition's exported position in the same transaction. A caller
//! acknowledges the returned index only after this returned `Ok`, so the
//! replicated exported position never passes what the database holds.

use engine::Record;

use crate::{rows, Store, StoreError};

/// Records per entry above this cannot be told apart by
/// [`row_position`] (an entry holds at most a few thousand).
pub const MAX_RECORDS_PER_ENTRY: usize = 1 << 20;

/// The records of one log entry, as the exporter hands them over.
#[derive(Debug, Clone, Copy)]
pub struct ExportedEntry<'a> {
    /// Raft index of the entry.
    pub index: u64,
    /// Its records, in order.
    pub records: &'a [Record],
}

/// The position a row written by record `sequence` of entry `index` carries:
/// later records of a partition have higher positions.
pub fn row_position(index: u64, sequence: usize) -> i64 {
    assert!(
        index < 1 << 43,
        "Raft index {index} is beyond the row position range"
    );
    assert!(
        sequence < MAX_RECORDS_PER_ENTRY,
        "entry {index} holds more than 2^20 records"
    );
    ((index << 20) | sequence as u64) as i64
}

impl Store {
    /// Writes the records of `entries` (of `partition`, in log order) in one
    /// transaction and records the partition's exported position; returns
    /// the highest index written. Writing the same entries again changes
    /// nothing.
    pub async fn write(
        &self,
        partition: u32,
        entries: &[ExportedEntry<'_>],
    ) -> Result<u64, StoreError> {
        let Some(last) = entries.iter().map(|e| e.index).max() else {
            return Ok(0);
        };
        let mut batch = rows::Batch::default();
        for entry in entries {
            for (sequence, record) in entry.records.iter().enumerate() {
                batch.apply(partition, row_position(entry.index, sequence), record);
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        batch
            .flush(&mut tx, self.backend == crate::Backend::Postgres)
            .await
            .map_err(|e| self.error(e))?;
        sqlx::query(
            "INSERT INTO exporter_position (partition_id, position, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (partition_id) DO UPDATE SET position = excluded.position, \
             updated_ms = excluded.updated_ms WHERE excluded.position > exporter_position.position",
        )
        .bind(i64::from(partition))
        .bind(last as i64)
        .bind(entries.last().and_then(|e| e.records.last()).map_or(0, |r| r.timestamp_ms))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(last)
    }
}
