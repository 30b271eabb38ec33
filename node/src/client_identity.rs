//! `waggle identity ...`: users, roles, groups, tenants, mapping rules and
//! authorizations through the REST API (the gRPC gateway has no calls for
//! them), printed as JSON.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Where the REST API is and how to log in to it.
#[derive(Debug, Clone, clap::Args)]
pub struct RestTarget {
    /// URL of the broker's REST API.
    #[arg(
        long,
        env = "WAGGLE_REST_ADDRESS",
        default_value = "http://127.0.0.1:8080"
    )]
    pub rest_address: String,
    /// How to trust the broker and log in.
    #[command(flatten)]
    pub login: HttpLogin,
}

/// How an HTTP client of a broker trusts it and logs in.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpLogin {
    /// PEM CA certificates the broker's certificate must chain to (https).
    #[arg(long, env = "WAGGLE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// User name, for a broker with basic authentication (with --password).
    #[arg(long, env = "WAGGLE_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Password of --username.
    #[arg(
        long,
        env = "WAGGLE_PASSWORD",
        requires = "username",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

/// What to do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum IdentityCommand {
    /// Lists the users.
    Users,
    /// Creates a user.
    CreateUser {
        /// Login name.
        username: String,
        /// The new user's password.
        #[arg(long)]
        user_password: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// E-mail address.
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Deletes a user (its memberships and authorizations too).
    DeleteUser {
        /// Login name.
        username: String,
    },
    /// Lists the roles, groups or tenants.
    List {
        /// role, group or tenant.
        kind: CollectiveKind,
    },
    /// Creates a role, group or tenant.
    Create {
        /// role, group or tenant.
        kind: CollectiveKind,
        /// Its id.
        id: String,
        /// Display name (the id if empty).
        #[arg(long, default_value = "")]
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Deletes a role, group or tenant (its memberships and authorizations
    /// too).
    Delete {
        /// role, group or tenant.
        kind: CollectiveKind,
        /// Its id.
        id: String,
    },
    /// Makes a user, client, group, role or mapping rule a member of a
    /// role, group or tenant, e.g. `add-member role ops user carol`.
    AddMember {
        /// role, group or tenant.
        kind: CollectiveKind,
        /// Its id.
        id: String,
        /// user, client, group, role or mapping-rule.
        member_type: MemberType,
        /// The member's id.
        member_id: String,
    },
    /// Ends a membership, e.g. `remove-member role ops user carol`.
    RemoveMember {
        /// role, group or tenant.
        kind: CollectiveKind,
        /// Its id.
        id: String,
        /// user, client, group, role or mapping-rule.
        member_type: MemberType,
        /// The member's id.
        member_id: String,
    },
    /// Lists the mapping rules.
    MappingRules,
    /// Creates a mapping rule: tokens whose claim has the value act as it.
    CreateMappingRule {
        /// Its id.
        mapping_rule_id: String,
        /// The token claim to look at.
        #[arg(long)]
        claim_name: String,
        /// The value the claim must have (or hold, if it is a list).
        #[arg(long)]
        claim_value: String,
        /// Display name (the id if empty).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Deletes a mapping rule.
    DeleteMappingRule {
        /// Its id.
        mapping_rule_id: String,
    },
    /// Lists the authorizations.
    Authorizations,
    /// Grants permissions on resources of a type to a user, client, role,
    /// group or mapping rule.
    Authorize {
        /// USER, CLIENT, ROLE, GROUP or MAPPING_RULE.
        #[arg(long)]
        owner_type: String,
        /// The user's name, or the client's, role's, group's or rule's id.
        #[arg(long)]
        owner_id: String,
        /// Resource type, e.g. RESOURCE or PROCESS_DEFINITION.
        #[arg(long)]
        resource_type: String,
        /// One resource's id, or * for all.
        #[arg(long, default_value = "*")]
        resource_id: String,
        /// A permission of the resource type (repeat for more).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// Deletes an authorization.
    DeleteAuthorization {
        /// Its key.
        authorization_key: String,
    },
}

/// A role, group or tenant.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CollectiveKind {
    /// A role.
    Role,
    /// A group.
    Group,
    /// A tenant.
    Tenant,
}

impl CollectiveKind {
    fn plural(self) -> &'static str {
        match self {
            CollectiveKind::Role => "roles",
            CollectiveKind::Group => "groups",
            CollectiveKind::Tenant => "tenants",
        }
    }

    fn id_property(self) -> &'static str {
        match self {
            CollectiveKind::Role => "roleId",
            CollectiveKind::Group => "groupId",
            CollectiveKind::Tenant => "tenantId",
        }
    }
}

/// What a member is.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MemberType {
    /// A user.
    User,
    /// An application with client credentials.
    Client,
    /// A group.
    Group,
    /// A role.
    Role,
    /// A mapping rule.
    MappingRule,
}

impl MemberType {
    fn plural(self) -> &'static str {
        match self {
            MemberType::User => "users",
            MemberType::Client => "clients",
            MemberType::Group => "groups",
            MemberType::Role => "roles",
            MemberType::MappingRule => "mapping-rules",
        }
    }
}

/// `name`, or `id` if it is empty.
fn or_id(name: String, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name
    }
}

/// Runs `command` against `target`; the API's answer.
pub async fn run(target: &RestTarget, command: IdentityCommand) -> Result<Value> {
    use reqwest::Method;
    let (method, path, body) = match command {
        IdentityCommand::Users => (Method::POST, "/v2/users/search".into(), Some(json!({}))),
        IdentityCommand::CreateUser {
            username,
            user_password,
            name,
            email,
        } => (
            Method::POST,
            "/v2/users".into(),
            Some(
                json!({"username": username, "password": user_password, "name": name, "email": email}),
            ),
        ),
        IdentityCommand::DeleteUser { username } => {
            (Method::DELETE, format!("/v2/users/{username}"), None)
        }
        IdentityCommand::List { kind } => (
            Method::POST,
            format!("/v2/{}/search", kind.plural()),
            Some(json!({})),
        ),
        IdentityCommand::Create {
            kind,
            id,
            name,
            description,
        } => (
            Method::POST,
            format!("/v2/{}", kind.plural()),
            Some(json!({
                kind.id_property(): id, "name": or_id(name, &id), "description": description,
            })),
        ),
        IdentityCommand::Delete { kind, id } => {
            (Method::DELETE, format!("/v2/{}/{id}", kind.plural()), None)
        }
        IdentityCommand::AddMember {
            kind,
            id,
            member_type,
            member_id,
        } => (
            Method::PUT,
            format!(
                "/v2/{}/{id}/{}/{member_id}",
                kind.plural(),
                member_type.plural()
            ),
            None,
        ),
        IdentityCommand::RemoveMember {
            kind,
            id,
            member_type,
            member_id,
        } => (
            Method::DELETE,
            format!(
                "/v2/{}/{id}/{}/{member_id}",
                kind.plural(),
                member_type.plural()
            ),
            None,
        ),
        IdentityCommand::MappingRules => (
            Method::POST,
            "/v2/mapping-rules/search".into(),
            Some(json!({})),
        ),
        IdentityCommand::CreateMappingRule {
            mapping_rule_id,
            claim_name,
            claim_value,
            name,
        } => (
            Method::POST,
            "/v2/mapping-rules".into(),
            Some(json!({
                "mappingRuleId": mapping_rule_id, "claimName": claim_name,
                "claimValue": claim_value, "name": or_id(name, &mapping_rule_id),
            })),
        ),
        IdentityCommand::DeleteMappingRule { mapping_rule_id } => (
            Method::DELETE,
            format!("/v2/mapping-rules/{mapping_rule_id}"),
            None,
        ),
        IdentityCommand::Authorizations => (
            Method::POST,
            "/v2/authorizations/search".into(),
            Some(json!({})),
        ),
        IdentityCommand::Authorize {
            owner_type,
            owner_id,
            resource_type,
            resource_id,
            permissions,
        } => (
            Method::POST,
            "/v2/authorizations".into(),
            Some(json!({
                "ownerType": owner_type, "ownerId": owner_id, "resourceType": resource_type,
                "resourceId": resource_id, "permissionTypes": permissions,
            })),
        ),
        IdentityCommand::DeleteAuthorization { authorization_key } => (
            Method::DELETE,
            format!("/v2/authorizations/{authorization_key}"),
            None,
        ),
    };
    request(target, method, &path, body).await
}

async fn request(
    target: &RestTarget,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{path}", target.rest_address.trim_end_matches('/'));
    http_json(&url, &target.login, method, body).await
}

/// Calls `url` (HTTP, or HTTPS trusting `login.ca_file`), with `login`'s
/// basic credentials if given, and returns the JSON answer; a failure status is an error naming
/// the call and the answer's `detail` or `message`.
pub(crate) async fn http_json(
    url: &str,
    login: &HttpLogin,
    method: reqwest::Method,
    body: Option<Value>,
) -> Result<Value> {
    let mut client = reqwest::Client::builder();
    if let Some(ca) = &login.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
        client = client.tls_certs_only([certificate]);
    } else if url.starts_with("http://") {
        // Plain HTTP verifies no certificate: the system's CA certificates,
        // which a minimal host may not have, are not needed.
        client = client.tls_certs_only([]);
    }
    let client = client.build().with_context(|| {
        format!(
            "cannot make an HTTP client for {url} (HTTPS without --ca-file trusts the system's \
             CA certificates: install them, e.g. the ca-certificates package, or give --ca-file)"
        )
    })?;
    let mut call = client.request(method.clone(), url);
    if let Some((name, password)) = login.username.as_ref().zip(login.password.as_ref()) {
        call = call.basic_auth(name, Some(password));
    }
    if let Some(body) = body {
        call = call.json(&body);
    }
    let response = call
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = value["detail"]
            .as_str()
            .or(value["message"].as_str())
            .unwrap_or(text.as_str());
        bail!("{method} {url} failed: {status}: {detail}");
    }
    Ok(if value.is_null() {
        json!({"status": status.as_u16()})
    } else {
        value
    })
}
