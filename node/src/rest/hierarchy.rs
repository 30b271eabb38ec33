//! `GET /v2/process-instances/{processInstanceKey}/call-hierarchy`: the
//! process instances that called this one through call activities, the root
//! first, from secondary storage (eventually consistent, as the searches).

use axum::extract::Path;
use axum::Json;
use serde_json::Value;

use super::keys;
use super::problem::Problem;
use super::search::{problem, store, visible_to_caller};
use super::Shared;

/// The ancestors of the instance (an empty list for a root instance); 404
/// when secondary storage does not have the instance.
pub async fn call_hierarchy(rest: Shared, Path(key): Path<String>) -> Result<Json<Value>, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("processInstanceKey", &key)?;
    visible_to_caller(store, &store::resources::PROCESS_INSTANCES, key).await?;
    match store.call_hierarchy(key).await.map_err(problem)? {
        Some(entries) => Ok(Json(Value::Array(entries))),
        None => Err(Problem::not_found(format!(
            "no process instance with key {key} in secondary storage (it may not be exported yet)"
        ))),
    }
}
