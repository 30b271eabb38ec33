//! Reads of deployed forms (`form` rows, migration 3): the form linked to a
//! user task (by the task's `form_key`) and the start form of a process
//! definition (the `zeebe:formDefinition formId` of its none start event,
//! read from the stored BPMN, resolved to the latest version of the form).

use serde_json::{json, Value};

use crate::rows::DEFAULT_TENANT;
use crate::{Store, StoreError};

/// What a form lookup found.
#[derive(Debug, PartialEq)]
pub enum FormLookup {
    /// The user task or process definition is not in the store.
    Unknown,
    /// It exists and links no form.
    NoForm,
    /// It links a form that is not (or no longer) deployed: the form id or key.
    Missing(String),
    /// The form as `{formKey, formId, version, schema, tenantId}`.
    Found(Value),
}

const FORM_COLUMNS: &str =
    "CAST(form_key AS BIGINT), form_id, CAST(version AS BIGINT), schema, tenant_id FROM form";

impl Store {
    /// The form linked to user task `key`.
    pub async fn user_task_form(&self, key: i64) -> Result<FormLookup, StoreError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT form_key FROM user_task WHERE user_task_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        let form_key = match row {
            None => return Ok(FormLookup::Unknown),
            Some((None,)) => return Ok(FormLookup::NoForm),
            Some((Some(k),)) if k < 0 => return Ok(FormLookup::NoForm),
            Some((Some(k),)) => k,
        };
        let sql = format!("SELECT {FORM_COLUMNS} WHERE form_key = $1");
        let form = self.form_row(sqlx::query_as(&sql).bind(form_key)).await?;
        Ok(form.unwrap_or(FormLookup::Missing(form_key.to_string())))
    }

    /// The start form of process definition `key`: the latest version of
    /// the form its none start event links with `formId`.
    pub async fn start_form(&self, key: i64) -> Result<FormLookup, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT process_definition_id, bpmn_xml FROM process_definition \
             WHERE process_definition_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let Some((process_id, xml)) = row else {
            return Ok(FormLookup::Unknown);
        };
        let Some(form_id) = start_form_id(&xml, &process_id) else {
            return Ok(FormLookup::NoForm);
        };
        let sql = format!("SELECT {FORM_COLUMNS} WHERE form_id = $1 ORDER BY version DESC LIMIT 1");
        let form = self.form_row(sqlx::query_as(&sql).bind(&form_id)).await?;
        Ok(form.unwrap_or(FormLookup::Missing(form_id)))
    }

    async fn form_row<'q>(
        &self,
        query: sqlx::query::QueryAs<
            'q,
            sqlx::Any,
            (i64, String, i64, String, String),
            sqlx::any::AnyArguments<'q>,
        >,
    ) -> Result<Option<FormLookup>, StoreError> {
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(row.map(|(form_key, form_id, version, schema, tenant_id)| {
            FormLookup::Found(json!({
                "formKey": form_key.to_string(),
                "formId": form_id,
                "version": version,
                "schema": schema,
                "tenantId": if tenant_id.is_empty() { DEFAULT_TENANT.to_string() } else { tenant_id },
            }))
        }))
    }
}

/// `formId` of the `zeebe:formDefinition` of the none start event directly
/// in process `process_id` (the XML was validated at deployment; the
/// parser's own limits apply).
fn start_form_id(xml: &str, process_id: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let process = doc
        .descendants()
        .find(|n| n.tag_name().name() == "process" && n.attribute("id") == Some(process_id))?;
    process
        .children()
        .filter(|n| n.tag_name().name() == "startEvent")
        .filter(|n| {
            !n.children()
                .any(|c| c.tag_name().name().ends_with("EventDefinition"))
        })
        .flat_map(|n| n.children())
        .filter(|c| c.tag_name().name() == "extensionElements")
        .flat_map(|e| e.children())
        .find(|c| c.tag_name().name() == "formDefinition")
        .and_then(|f| f.attribute("formId"))
        .filter(|id| !id.trim().is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_form_is_the_form_id_of_the_none_start_event() {
        let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0">
          <process id="p"><startEvent id="m"><extensionElements><zeebe:formDefinition formId="wrong"/></extensionElements><messageEventDefinition/></startEvent>
          <startEvent id="s"><extensionElements><zeebe:formDefinition formId="start"/></extensionElements></startEvent></process>
          <process id="q"><startEvent id="t"/></process></definitions>"#;
        assert_eq!(start_form_id(xml, "p").as_deref(), Some("start"));
        assert_eq!(start_form_id(xml, "q"), None);
        assert_eq!(start_form_id(xml, "unknown"), None);
    }
}
