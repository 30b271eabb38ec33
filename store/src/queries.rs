//! Reads that are not searches over a resource: a definition's BPMN or DMN XML and
//! the per-element statistics of a process instance.

use serde_json::{json, Value};
use sqlx::Row as _;

use crate::{Store, StoreError};

impl Store {
    /// `SELECT 1`: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The BPMN XML of process definition `key`, if the store has it.
    pub async fn process_definition_xml(&self, key: i64) -> Result<Option<String>, StoreError> {
        self.one_text(
            "SELECT bpmn_xml FROM process_definition WHERE process_definition_key = $1",
            key,
        )
        .await
    }

    /// `ANALYZE`: refreshes the planner's statistics of every table (both
    /// databases take the statement), as autoanalyze does after a while.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The DMN XML of decision requirements `key`, if stored.
    pub async fn decision_requirements_xml(&self, key: i64) -> Result<Option<String>, StoreError> {
        self.one_text(
            "SELECT xml FROM decision_requirements WHERE decision_requirements_key = $1",
            key,
        )
        .await
    }

    /// The DMN XML that holds decision `key`, if stored.
    pub async fn decision_definition_xml(&self, key: i64) -> Result<Option<String>, StoreError> {
        self.one_text(
            "SELECT r.xml FROM decision_definition d JOIN decision_requirements r \
             ON r.decision_requirements_key = d.decision_requirements_key \
             WHERE d.decision_definition_key = $1",
            key,
        )
        .await
    }

    async fn one_text(&self, sql: &str, key: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.map(|(text,)| text))
    }

    /// Per element of process instance `key`: how many of its instances are
    /// active, completed, canceled (terminated), and how many have an open
    /// incident; `{elementId, active, canceled, incidents, completed}` items
    /// sorted by element id.
    pub async fn element_statistics(&self, key: i64) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.element_id, \
             SUM(CASE WHEN e.state = 'ACTIVE' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN e.state = 'TERMINATED' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN EXISTS (SELECT 1 FROM incident i WHERE \
                 i.element_instance_key = e.element_instance_key AND i.state = 'ACTIVE') \
                 THEN 1 ELSE 0 END), \
             SUM(CASE WHEN e.state = 'COMPLETED' THEN 1 ELSE 0 END) \
             FROM element_instance e WHERE e.process_instance_key = $1 \
             GROUP BY e.element_id ORDER BY e.element_id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|r| {
                Ok(json!({
                    "elementId": r.try_get::<String, _>(0)?,
                    "active": r.try_get::<i64, _>(1)?,
                    "canceled": r.try_get::<i64, _>(2)?,
                    "incidents": r.try_get::<i64, _>(3)?,
                    "completed": r.try_get::<i64, _>(4)?,
                }))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| self.error(e))
    }
}
