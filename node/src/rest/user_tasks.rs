//! Camunda user tasks: `POST /v2/user-tasks/{key}/assignment`,
//! `DELETE /v2/user-tasks/{key}/assignee`, `PATCH /v2/user-tasks/{key}`,
//! `POST /v2/user-tasks/{key}/completion`, each a `USER_TASK` command on
//! the partition of the user task key, answered 204.
//!
//! As in Camunda's gateway, an assignment with `allowOverride: false` is a
//! claim (`CLAIM`, rejected with 409 when someone else is assigned), the
//! others `ASSIGN`; an unassignment assigns nobody with action `unassign`.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::body::{self, Body, MaybeBody};
use super::instances::on_key;
use super::keys;
use super::problem::Problem;
use super::Shared;
use crate::command::PartitionCommand;
use engine::{Intent, UserTaskRecord};

/// Body of an assignment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    assignee: Option<String>,
    allow_override: Option<bool>,
    action: Option<String>,
}

/// Body of a user task update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    changeset: Option<Changeset>,
    action: Option<String>,
}

/// The attributes an update may change (`null` leaves one as it is).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changeset {
    due_date: Option<String>,
    follow_up_date: Option<String>,
    candidate_users: Option<Vec<String>>,
    candidate_groups: Option<Vec<String>>,
    priority: Option<i64>,
}

/// Body of a completion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    variables: Option<Value>,
    action: Option<String>,
}

async fn send(
    rest: &Shared,
    key: i64,
    intent: Intent,
    value: UserTaskRecord,
) -> Result<StatusCode, Problem> {
    let command = PartitionCommand::UserTask {
        user_task_key: key,
        intent,
        value: Box::new(value),
    };
    on_key(rest, "userTaskKey", key, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/user-tasks/{userTaskKey}/assignment`.
pub async fn assign(
    rest: Shared,
    Path(key): Path<String>,
    Body(a): Body<Assignment>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("userTaskKey", &key)?;
    let assignee = a.assignee.unwrap_or_default();
    if assignee.trim().is_empty() {
        return Err(Problem::bad_request("No assignee provided."));
    }
    let mut value = UserTaskRecord::empty();
    value.assignee = assignee;
    value.action = a.action.unwrap_or_default();
    let intent = if a.allow_override.unwrap_or(true) {
        Intent::Assign
    } else {
        Intent::Claim
    };
    send(&rest, key, intent, value).await
}

/// `DELETE /v2/user-tasks/{userTaskKey}/assignee`.
pub async fn unassign(rest: Shared, Path(key): Path<String>) -> Result<StatusCode, Problem> {
    let key = keys::parse("userTaskKey", &key)?;
    let mut value = UserTaskRecord::empty();
    value.action = "unassign".into();
    send(&rest, key, Intent::Assign, value).await
}

/// `PATCH /v2/user-tasks/{userTaskKey}`.
pub async fn update(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(u): MaybeBody<Update>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("userTaskKey", &key)?;
    let c = u.changeset.unwrap_or_default();
    let mut value = UserTaskRecord::empty();
    let mut changed = |name: &str| value.changed_attributes.push(name.to_string());
    if c.candidate_groups.is_some() {
        changed("candidateGroupsList");
    }
    if c.candidate_users.is_some() {
        changed("candidateUsersList");
    }
    if c.due_date.is_some() {
        changed("dueDate");
    }
    if c.follow_up_date.is_some() {
        changed("followUpDate");
    }
    if let Some(p) = c.priority {
        if !(0..=100).contains(&p) {
            return Err(Problem::bad_request(format!(
                "The value for priority is '{p}' but must be within the [0,100] range."
            )));
        }
        changed("priority");
        value.priority = p as i32;
    }
    if value.changed_attributes.is_empty() && u.action.is_none() {
        return Err(Problem::bad_request(
            "No update data provided. Provide at least an \"action\" or a non-null value for at least one of the changeset attributes.",
        ));
    }
    value.candidate_groups = c.candidate_groups.unwrap_or_default();
    value.candidate_users = c.candidate_users.unwrap_or_default();
    value.due_date = c.due_date.unwrap_or_default();
    value.follow_up_date = c.follow_up_date.unwrap_or_default();
    value.action = u.action.unwrap_or_default();
    send(&rest, key, Intent::Update, value).await
}

/// `POST /v2/user-tasks/{userTaskKey}/completion`.
pub async fn complete(
    rest: Shared,
    Path(key): Path<String>,
    MaybeBody(c): MaybeBody<Completion>,
) -> Result<StatusCode, Problem> {
    let key = keys::parse("userTaskKey", &key)?;
    let mut value = UserTaskRecord::empty();
    value.variables = body::variables("variables", c.variables.as_ref())?;
    value.action = c.action.unwrap_or_default();
    send(&rest, key, Intent::Complete, value).await
}
