//! Users of basic authentication: `POST /v2/users`, `PUT`, `GET` and
//! `DELETE /v2/users/{username}`, `POST /v2/users/search`, and
//! `GET /v2/authentication/me`.
//!
//! Changes are `USER` commands on the deployment partition (the password
//! hashed here with Argon2id, off the async threads), so they are as
//! durable as a deployment and reach every partition. Reads come from the
//! users this node's replicas hold ([`crate::identity::users::Directory`]),
//! not from secondary storage: a user is there once a local replica applied
//! its creation. Responses never carry passwords or their hashes.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::access::{OWNER_GROUP, OWNER_ROLE};
use engine::collectives::Kind;
use engine::identity::UserRecord;
use engine::{Intent, RecordValue};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{Body, MaybeBody};
use super::entity_search::{search_views, SearchQuery};
use super::problem::Problem;
use super::Shared;
use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::identity::auth::{owners_of, TokenClaims};
use crate::identity::users::hash_password;
use crate::identity::Principal;
use crate::routing::DEPLOYMENT_PARTITION;

/// Body of `POST /v2/users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Body of `PUT /v2/users/{username}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    password: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

fn view(user: &UserRecord) -> Value {
    json!({"username": user.username, "name": user.name, "email": user.email})
}

/// Hashes `password` on a blocking thread.
async fn hashed(password: String) -> Result<String, Problem> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| CommandError::Internal(format!("hashing the password failed: {e}")).into())
}

/// Sends an identity command (`USER`, `ROLE`, ...) to the deployment
/// partition once every node can read it; the key it answers.
pub(super) async fn identity_command(
    rest: &Shared,
    command: PartitionCommand,
) -> Result<i64, Problem> {
    crate::identity::initial::every_node_reads_users(rest.dispatcher.context()).map_err(|why| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!("identities cannot be changed yet: {why}"),
        )
    })?;
    let timeout = rest.dispatcher.request_timeout();
    match rest
        .dispatcher
        .execute(DEPLOYMENT_PARTITION, command, timeout)
        .await?
    {
        CommandReply::Key(key) => Ok(key),
        other => {
            Err(CommandError::Internal(format!("an identity change was answered {other:?}")).into())
        }
    }
}

async fn send(rest: &Shared, intent: Intent, user: UserRecord) -> Result<(), Problem> {
    let command = PartitionCommand::Identity {
        intent,
        value: Box::new(RecordValue::User(user)),
    };
    identity_command(rest, command).await.map(|_| ())
}

/// `POST /v2/users`: 201 with the user.
pub async fn create(
    rest: Shared,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    if new.password.is_empty() {
        return Err(Problem::bad_request("No password provided."));
    }
    let user = UserRecord {
        user_key: engine::NO_KEY,
        username: new.username,
        name: new.name.unwrap_or_default(),
        email: new.email.unwrap_or_default(),
        password: hashed(new.password).await?,
    };
    send(&rest, Intent::Create, user.clone()).await?;
    Ok((StatusCode::CREATED, Json(view(&user))))
}

/// `PUT /v2/users/{username}`: the user as changed (an absent password
/// keeps the old one).
pub async fn update(
    rest: Shared,
    Path(username): Path<String>,
    MaybeBody(u): MaybeBody<UserUpdate>,
) -> Result<Json<Value>, Problem> {
    let old = rest.dispatcher.context().view.directory.user(&username);
    let password = match u.password.filter(|p| !p.is_empty()) {
        Some(p) => hashed(p).await?,
        None => String::new(),
    };
    let user = UserRecord {
        user_key: engine::NO_KEY,
        name: u
            .name
            .or_else(|| old.as_ref().map(|o| o.name.clone()))
            .unwrap_or_default(),
        email: u
            .email
            .or_else(|| old.as_ref().map(|o| o.email.clone()))
            .unwrap_or_default(),
        username,
        password,
    };
    send(&rest, Intent::Update, user.clone()).await?;
    Ok(Json(view(&user)))
}

/// `DELETE /v2/users/{username}`: 204.
pub async fn delete(rest: Shared, Path(username): Path<String>) -> Result<StatusCode, Problem> {
    let user = UserRecord {
        username,
        ..UserRecord::default()
    };
    send(&rest, Intent::Delete, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/users/{username}`.
pub async fn get(rest: Shared, Path(username): Path<String>) -> Result<Json<Value>, Problem> {
    match rest.dispatcher.context().view.directory.user(&username) {
        Some(user) => Ok(Json(view(&user))),
        None => Err(Problem::not_found(format!(
            "User with username '{username}' not found"
        ))),
    }
}

/// `POST /v2/users/search`.
pub async fn search(
    rest: Shared,
    MaybeBody(q): MaybeBody<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let identity = rest.dispatcher.context().view.directory.identity();
    let views = identity.users.values().map(view).collect();
    search_views(views, &q, &["username", "name", "email"])
}

/// `GET /v2/authentication/me`: who the credentials belong to, and the
/// tenants, groups and roles it acts in (its own memberships and those of
/// the mapping rules its token matches).
pub async fn me(
    rest: Shared,
    principal: Option<Extension<Principal>>,
    claims: Option<Extension<TokenClaims>>,
) -> Json<Value> {
    let principal = principal.map_or(Principal::Anonymous, |Extension(p)| p);
    let identity = rest.dispatcher.context().view.directory.identity();
    let user = match &principal {
        Principal::User(name) => identity.users.get(name),
        Principal::Anonymous | Principal::Client(_) => None,
    };
    let owners = owners_of(&identity, &principal, claims.as_ref().map(|c| &c.0));
    let ids = |owner_type: &str| -> Vec<&str> {
        owners
            .iter()
            .filter(|(t, _)| t == owner_type)
            .map(|(_, id)| id.as_str())
            .collect()
    };
    let tenants: Vec<Value> = identity
        .tenants_of(&owners)
        .iter()
        .filter_map(|id| identity.tenants.get(id))
        .map(|t| super::collectives::view(Kind::Tenant, &t.record))
        .collect();
    Json(json!({
        "username": principal.name(),
        "displayName": user.map_or(principal.name(), |u| if u.name.is_empty() { &u.username } else { &u.name }),
        "email": user.map(|u| u.email.clone()),
        "authorizedComponents": ["*"],
        "tenants": tenants,
        "groups": ids(OWNER_GROUP),
        "roles": ids(OWNER_ROLE),
        "salesPlanType": null,
        "c8Links": {},
        "canLogout": !matches!(principal, Principal::Anonymous),
    }))
}
