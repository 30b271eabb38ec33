//! Searches and reads of entities, served from secondary storage (the
//! exported records in PostgreSQL or SQLite, see the `store` crate): the
//! `POST /v2/<resource>/search` endpoints, `GET`s by key, a definition's
//! XML and an instance's per-element statistics.
//!
//! These read what the exporter committed, never the partitions' state, so
//! they are eventually consistent (an entity just created may not be found
//! yet). Without `[secondary_storage]` every one answers 403 with a problem
//! that says how to configure it. A database that fails answers 503 naming
//! the database and the cause.
//!
//! The pool is opened when the router is built and connects lazily; it
//! lives on the broker's tokio threads with the handlers.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;
use store::resources::{
    DECISION_DEFINITIONS, DECISION_INSTANCES, DECISION_INSTANCE_DETAILS, DECISION_REQUIREMENTS,
    ELEMENT_INSTANCES, INCIDENTS, JOBS, MESSAGE_SUBSCRIPTIONS, PROCESS_DEFINITIONS,
    PROCESS_INSTANCES, USER_TASKS, VARIABLES,
};
use store::{Resource, SearchRequest, Store, StoreError};

use super::body::MaybeBody;
use super::keys;
use super::problem::Problem;
use super::Shared;
use crate::identity::scope::Scope;
use crate::identity::tenants;

/// Longest wait of a search for the schema to be complete.
const SCHEMA_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Connections the REST handlers may hold to the database.
const MAX_CONNECTIONS: u32 = 8;

/// Opens the search pool for the configured secondary storage, if any.
pub fn open(config: &crate::config::Config) -> Option<Store> {
    let url = config
        .secondary_storage
        .database_url(&config.data.directory)?;
    match Store::open(&url, MAX_CONNECTIONS) {
        Ok(store) => Some(store),
        Err(e) => {
            tracing::error!("REST searches: {e}");
            None
        }
    }
}

fn not_configured() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "this endpoint reads secondary storage, and none is configured: set \
         [secondary_storage] type = \"sqlite\" or \"postgresql\" (with url) in the configuration \
         (WAGGLE_SECONDARY_STORAGE_TYPE)",
    )
}

pub(super) fn problem(error: StoreError) -> Problem {
    match error {
        StoreError::BadRequest(detail) => Problem::bad_request(detail),
        other => {
            tracing::warn!("REST search: {other}");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                format!("secondary storage cannot answer: {other}"),
            )
        }
    }
}

/// The search pool, once its schema is complete: a broker that just
/// started may still be creating it (the exporter's writer runs the
/// migrations), and a search in that window waits up to
/// [`SCHEMA_WAIT`] instead of failing on a missing table or column.
pub(super) async fn store(rest: &Shared) -> Result<&Store, Problem> {
    let store = rest.search.as_ref().ok_or_else(not_configured)?;
    let deadline = tokio::time::Instant::now() + SCHEMA_WAIT;
    while !store.schema_ready().await.map_err(problem)? {
        if tokio::time::Instant::now() >= deadline {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                format!(
                    "secondary storage cannot answer yet: {} is still being migrated to the \
                     current schema; retry shortly",
                    store.name()
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(store)
}

/// The filter field holding the ids a [`Scope`] grants: process or
/// decision ids.
fn scoped_field(scope: &Scope) -> Option<&'static str> {
    match scope.resource_type {
        "PROCESS_DEFINITION" => Some("processDefinitionId"),
        "DECISION_DEFINITION" => Some("decisionDefinitionId"),
        _ => None,
    }
}

async fn search(
    rest: Shared,
    resource: &'static Resource,
    scope: Option<Extension<Scope>>,
    body: Value,
) -> Result<Json<Value>, Problem> {
    let store = store(&rest).await?;
    let mut within = Vec::new();
    if let Some(scope) = scope.as_deref() {
        let field = scoped_field(scope).ok_or_else(|| {
            Problem::forbidden(format!(
                "Insufficient permissions: the caller holds {} on some {} only",
                scope.permission, scope.resource_type
            ))
        })?;
        within.push((field, scope.id_list()));
    }
    if let Some(visible) = tenants::visible() {
        within.push(("tenantId", visible));
    }
    let request = SearchRequest::parse_within(resource, &body, &within).map_err(problem)?;
    let result = store.search(&request).await.map_err(problem)?;
    Ok(Json(result.to_json()))
}

async fn get(
    rest: Shared,
    resource: &'static Resource,
    field: &str,
    key: &str,
) -> Result<Json<Value>, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse(field, key)?;
    match store.get(resource, key).await.map_err(problem)? {
        Some(item) if tenants::may_see(&item) => Ok(Json(Value::Object(item))),
        _ => Err(Problem::not_found(format!(
            "no {} with key {key} in secondary storage (it may not be exported yet)",
            resource.name.trim_end_matches('s')
        ))),
    }
}

macro_rules! search_handler {
    ($name:ident, $resource:expr) => {
        /// `POST /v2/.../search` of this resource.
        pub async fn $name(
            rest: Shared,
            scope: Option<Extension<Scope>>,
            MaybeBody(body): MaybeBody<Value>,
        ) -> Result<Json<Value>, Problem> {
            search(rest, &$resource, scope, body).await
        }
    };
}

search_handler!(process_definitions, PROCESS_DEFINITIONS);
search_handler!(process_instances, PROCESS_INSTANCES);
search_handler!(element_instances, ELEMENT_INSTANCES);
search_handler!(variables, VARIABLES);
search_handler!(jobs, JOBS);
search_handler!(incidents, INCIDENTS);
search_handler!(user_tasks, USER_TASKS);
search_handler!(decision_definitions, DECISION_DEFINITIONS);
search_handler!(decision_requirements, DECISION_REQUIREMENTS);
search_handler!(decision_instances, DECISION_INSTANCES);
search_handler!(message_subscriptions, MESSAGE_SUBSCRIPTIONS);

macro_rules! get_handler {
    ($name:ident, $resource:expr, $path:literal) => {
        #[doc = concat!("`GET /v2/", $path, "`.")]
        pub async fn $name(rest: Shared, Path(key): Path<String>) -> Result<Json<Value>, Problem> {
            get(rest, &$resource, $resource.key, &key).await
        }
    };
}

get_handler!(
    process_definition,
    PROCESS_DEFINITIONS,
    "process-definitions/{processDefinitionKey}"
);
get_handler!(
    process_instance,
    PROCESS_INSTANCES,
    "process-instances/{processInstanceKey}"
);
get_handler!(
    element_instance,
    ELEMENT_INSTANCES,
    "element-instances/{elementInstanceKey}"
);
get_handler!(variable, VARIABLES, "variables/{variableKey}");
get_handler!(incident, INCIDENTS, "incidents/{incidentKey}");
get_handler!(user_task, USER_TASKS, "user-tasks/{userTaskKey}");
get_handler!(
    decision_definition,
    DECISION_DEFINITIONS,
    "decision-definitions/{decisionDefinitionKey}"
);
get_handler!(
    decision_requirements_by_key,
    DECISION_REQUIREMENTS,
    "decision-requirements/{decisionRequirementsKey}"
);

/// `GET /v2/decision-instances/{decisionEvaluationInstanceKey}`: one
/// evaluated decision, with its inputs and matched rules; the key is
/// `<evaluation key>-<n>`.
pub async fn decision_instance(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    let store = store(&rest).await?;
    let well_formed = key
        .split_once('-')
        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u32>().is_ok());
    if !well_formed {
        return Err(Problem::bad_request(format!(
            "'decisionEvaluationInstanceKey' must be '<decision evaluation key>-<index>', got '{key}'"
        )));
    }
    match store
        .get_by(&DECISION_INSTANCE_DETAILS, &Value::from(key.as_str()))
        .await
        .map_err(problem)?
    {
        Some(item) if tenants::may_see(&item) => Ok(Json(Value::Object(item))),
        _ => Err(Problem::not_found(format!(
            "no decision instance with key {key} in secondary storage (it may not be exported yet)"
        ))),
    }
}

/// Under multi-tenancy, 404 for entity `key` of `resource` when it belongs
/// to a tenant the caller is not in (as if it were not there).
pub async fn visible_to_caller(
    store: &Store,
    resource: &'static Resource,
    key: i64,
) -> Result<(), Problem> {
    if tenants::visible().is_none() {
        return Ok(());
    }
    match store.get(resource, key).await.map_err(problem)? {
        Some(item) if !tenants::may_see(&item) => Err(Problem::not_found(format!(
            "no {} with key {key} in secondary storage",
            resource.name.trim_end_matches('s')
        ))),
        _ => Ok(()),
    }
}

/// `text/xml` of a definition, or 404 naming what is missing.
fn xml_answer(xml: Option<String>, what: &str, key: i64) -> Result<Response, Problem> {
    match xml {
        Some(xml) => Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()),
        None => Err(Problem::not_found(format!(
            "no {what} with key {key} in secondary storage"
        ))),
    }
}

/// `GET /v2/process-definitions/{processDefinitionKey}/xml`: the BPMN as
/// `text/xml`.
pub async fn process_definition_xml(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("processDefinitionKey", &key)?;
    visible_to_caller(store, &PROCESS_DEFINITIONS, key).await?;
    let xml = store.process_definition_xml(key).await.map_err(problem)?;
    xml_answer(xml, "process definition", key)
}

/// `GET /v2/decision-definitions/{decisionDefinitionKey}/xml`: the DMN
/// resource that holds the decision.
pub async fn decision_definition_xml(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("decisionDefinitionKey", &key)?;
    visible_to_caller(store, &DECISION_DEFINITIONS, key).await?;
    let xml = store.decision_definition_xml(key).await.map_err(problem)?;
    xml_answer(xml, "decision definition", key)
}

/// `GET /v2/decision-requirements/{decisionRequirementsKey}/xml`.
pub async fn decision_requirements_xml(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("decisionRequirementsKey", &key)?;
    visible_to_caller(store, &DECISION_REQUIREMENTS, key).await?;
    let xml = store
        .decision_requirements_xml(key)
        .await
        .map_err(problem)?;
    xml_answer(xml, "decision requirements", key)
}

/// `GET /v2/process-instances/{processInstanceKey}/statistics/element-instances`:
/// `{items: [{elementId, active, canceled, incidents, completed}]}`.
pub async fn element_statistics(
    rest: Shared,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    let store = store(&rest).await?;
    let key = keys::parse("processInstanceKey", &key)?;
    visible_to_caller(store, &PROCESS_INSTANCES, key).await?;
    // An instance not (yet) in secondary storage has no element instances:
    // an empty list, as the API documents no 404 here.
    let items = store.element_statistics(key).await.map_err(problem)?;
    Ok(Json(serde_json::json!({ "items": items })))
}
