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

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn store(context: &BrokerContext) -> Result<&Arc<BackupStore>, Response> {
    context.backups.as_ref().ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "backups are not configured: set backup.directory (WAGGLE_BACKUP_DIRECTORY) to a \
             directory every node can write, then restart"
                .into(),
        )
    })
}

fn parse_id(text: &str) -> Result<u64, Response> {
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!("backup id {text:?} is not a positive integer"),
        )),
    }
}

async fn take(State(context): State<Arc<BrokerContext>>, body: axum::body::Bytes) -> Response {
    let store = match store(&context) {
        Ok(s) => Arc::clone(s),
        Err(r) => return r,
    };
    let id = match serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("backupId").cloned())
    {
        Some(serde_json::Value::Number(n)) => match n.as_u64().filter(|id| *id > 0) {
            Some(id) => id,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("backupId {n} is not a positive integer"),
                )
            }
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object with a positive integer backupId, e.g. \
                 {\"backupId\": 1}"
                    .into(),
            )
        }
    };
    if store.request(id).is_some() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "a backup with id {id} already exists in {}",
                store.dir().display()
            ),
        );
    }
    let mut request = BackupRequest {
        backup_id: id,
        partitions: context.shape.partitions,
        requested_at_ms: crate::view::unix_now_ms(),
        failure_reason: None,
    };
    if let Err(e) = store.record_request(&request) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write backup {id} to {}: {e}", store.dir().display()),
        );
    }
    let dispatcher = Dispatcher::new(Arc::clone(&context));
    let checkpoints: Vec<_> = (1..=context.shape.partitions)
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
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("backup {id} failed: {reason}"),
        );
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "message": format!(
                "A backup with id {id} has been scheduled. Use GET actuator/backupRuntime/{id} \
                 to monitor the status."
            ),
        })),
    )
        .into_response()
}

async fn one(State(context): State<Arc<BrokerContext>>, Path(id): Path<String>) -> Response {
    let store = match store(&context) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let status = store.status(id);
    let code = if store.request(id).is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (code, Json(status)).into_response()
}

async fn list(State(context): State<Arc<BrokerContext>>) -> Response {
    match store(&context) {
        Ok(store) => {
            let all: Vec<_> = store.ids().into_iter().map(|id| store.status(id)).collect();
            Json(all).into_response()
        }
        Err(r) => r,
    }
}

async fn remove(State(context): State<Arc<BrokerContext>>, Path(id): Path<String>) -> Response {
    let store = match store(&context) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match store.delete(id) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no backup with id {id}")),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "cannot delete backup {id} from {}: {e}",
                store.dir().display()
            ),
        ),
    }
}
