//! The forms of user tasks and process definitions, read from secondary
//! storage (the exported `FORM` records, see `store::FormLookup`):
//!
//! ```text
//! GET /v2/user-tasks/{userTaskKey}/form                   the task's linked form
//! GET /v2/process-definitions/{processDefinitionKey}/form the start event's form
//!   200 {formKey, formId, version, schema, tenantId}
//!   204 the task or definition links no form
//!   404 unknown task or definition, or its form is not deployed
//! ```

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::FormLookup;

use super::keys;
use super::problem::Problem;
use super::search::{problem, store, visible_to_caller};
use super::Shared;

/// `GET /v2/user-tasks/{userTaskKey}/form`.
pub async fn user_task_form(rest: Shared, Path(key): Path<String>) -> Result<Response, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("userTaskKey", &key)?;
    visible_to_caller(store, &store::resources::USER_TASKS, key).await?;
    let found = store.user_task_form(key).await.map_err(problem)?;
    answer(found, "user task", key)
}

/// `GET /v2/process-definitions/{processDefinitionKey}/form`.
pub async fn start_form(rest: Shared, Path(key): Path<String>) -> Result<Response, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("processDefinitionKey", &key)?;
    visible_to_caller(store, &store::resources::PROCESS_DEFINITIONS, key).await?;
    let found = store.start_form(key).await.map_err(problem)?;
    answer(found, "process definition", key)
}

fn answer(found: FormLookup, what: &str, key: i64) -> Result<Response, Problem> {
    match found {
        FormLookup::Found(form) => Ok(Json(form).into_response()),
        FormLookup::NoForm => Ok(StatusCode::NO_CONTENT.into_response()),
        FormLookup::Unknown => Err(Problem::not_found(format!(
            "no {what} with key {key} in secondary storage (it may not be exported yet)"
        ))),
        FormLookup::Missing(form) => Err(Problem::not_found(format!(
            "the form '{form}' of {what} {key} is not deployed (or not exported yet)"
        ))),
    }
}
