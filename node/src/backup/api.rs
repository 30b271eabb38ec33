//! Zeebe's backup API on the management port: `/actuator/backupRuntime`
//! (8.8's path) and `/actuator/backups` (the earlier one) alike.
//!
//! - `POST {"backupId": N}`: 202 once every partition committed its
//!   checkpoint; 400 for a bad id or without `backup.directory`; 409 when N
//!   exists.
//! - `GET /{id}`: `state` COMPLETED, IN_PROGRESS, FAILED or DOES_NOT_EXIST
//!   (404), with `details` per partition.
//! - `GET`: every backup, by ascending id.
//! - `DELETE /{id}`: 204, or 404.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::backup::{BackupRequest, BackupStore};
use crate::command::PartitionCommand;
use crate::context::BrokerContext;
use crate::gateway::dispatch::Dispatcher;

/// How long a POST waits for every partition's checkpoint to commit.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// The backup routes, under both paths.
pub fn routes() -> Router<Arc<BrokerContext>> {
    let mut router = Router::new();
    for base in ["/actuator/backupRuntime", "/actuator/backups"] {
        router = router
            .route(base, post(take).get(list))
            .route(&format!("{base}/{{id}}"), get(one).delete(remove));
    }
    router
}

/// A refusal: its status and a message naming what is wrong.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

fn error(status: StatusCode, message: String) -> ApiError {
    ApiError { status, message }
}

fn store(context: &BrokerContext) -> Result<&Arc<BackupStore>, ApiError> {
    context.backups.as_ref().ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "backups are not configured: set backup.directory (WAGGLE_BACKUP_DIRECTORY) to a \
             directory every node can write, or backup.store = \"s3\" with backup.s3_bucket, \
             then restart"
                .into(),
        )
    })
}

/// The store could not be read or written: 500, naming it.
fn unavailable(e: std::io::Error) -> ApiError {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("backup store: {e}"),
    )
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!("backupId {text} is not a positive integer"),
        )),
    }
}

async fn take(
    State(context): State<Arc<BrokerContext>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let store = Arc::clone(store(&context)?);
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("backupId").cloned())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object with a positive integer backupId, e.g. \
                 {\"backupId\": 1}"
                    .into(),
            )
        })?;
    let id = parse_id(&id.to_string())?;
    if store.request(id).map_err(unavailable)?.is_some() {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "a backup with id {id} already exists in {}",
                store.location()
            ),
        ));
    }
    let mut request = BackupRequest {
        backup_id: id,
        partitions: context.partitions(),
        requested_at_ms: crate::view::unix_now_ms(),
        failure_reason: None,
    };
    store.record_request(&request).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write backup {id} to {}: {e}", store.location()),
        )
    })?;
    let dispatcher = Dispatcher::new(Arc::clone(&context));
    let checkpoints: Vec<_> = (1..=context.partitions())
        .map(|p| {
            let dispatcher = dispatcher.clone();
            tokio::spawn(async move {
                let command = PartitionCommand::Checkpoint { backup_id: id };
                (p, dispatcher.execute(p, command, CHECKPOINT_TIMEOUT).await)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for checkpoint in checkpoints {
        match checkpoint.await {
            Ok((_, Ok(_))) => {}
            Ok((p, Err(e))) => failures.push(format!("partition {p}: {e}")),
            Err(e) => failures.push(format!("a checkpoint task failed: {e}")),
        }
    }
    if !failures.is_empty() {
        let reason = failures.join("; ");
        request.failure_reason = Some(reason.clone());
        let _ = store.record_request(&request);
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("backup {id} failed: {reason}"),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "message": format!(
                "A backup with id {id} has been scheduled. Use GET actuator/backupRuntime/{id} \
                 to monitor the status."
            ),
        })),
    )
        .into_response())
}

async fn one(
    State(context): State<Arc<BrokerContext>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store(&context)?;
    let id = parse_id(&id)?;
    let status = store.status(id).map_err(unavailable)?;
    let code = if status["state"] == "DOES_NOT_EXIST" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((code, Json(status)).into_response())
}

async fn list(State(context): State<Arc<BrokerContext>>) -> Result<Response, ApiError> {
    let store = store(&context)?;
    let all = store.statuses().map_err(unavailable)?;
    Ok(Json(all).into_response())
}

async fn remove(
    State(context): State<Arc<BrokerContext>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store(&context)?;
    let id = parse_id(&id)?;
    match store.delete(id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(error(
            StatusCode::NOT_FOUND,
            format!("no backup with id {id}"),
        )),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot delete backup {id} from {}: {e}", store.location()),
        )),
    }
}
