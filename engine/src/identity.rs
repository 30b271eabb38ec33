//! Users of basic authentication, kept in the replicated state (Camunda's
//! `USER` value type), and how every identity entity (users, roles,
//! groups, tenants, mapping rules, authorizations) is changed.
//!
//! ```text
//! USER CREATE | UPDATE | DELETE   (from a client, on the deployment partition)
//!   -> CREATED | UPDATED | DELETED under a new key, answered with the user,
//!      and the event's value distributed to every other partition
//! the same command, distributed   (on the other partitions)
//!   -> the same event under the distribution key, acknowledged
//! ```
//!
//! So every replica of every partition knows every user, and a gateway
//! checks credentials against any local replica. Passwords reach the engine
//! hashed (a PHC string: the gateway hashes with a random salt, which the
//! deterministic engine could not do); an UPDATE with an empty password
//! keeps the stored one.
//!
//! The state is encoded apart from the rest of the snapshot and only when
//! a user exists, so a broker without users writes the snapshot layout of
//! the release before (see `Engine::snapshot`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collectives::Collective;
use crate::commands::DEPLOYMENT_PARTITION;
use crate::engine::{rejection, unsupported, Ctx, Engine, ResponseValue};
use crate::record::*;

/// Longest username, name or e-mail address (Camunda's limit for ids).
pub const MAX_FIELD_CHARS: usize = 256;

/// `USER` value: a user of basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Key of the user (of its `CREATED` event), `-1` in a CREATE.
    pub user_key: i64,
    /// Unique login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail address (not checked).
    pub email: String,
    /// PHC string of the password hash; empty in an UPDATE that keeps it.
    pub password: String,
}

/// The identity part of the replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Users by username.
    pub users: BTreeMap<String, UserRecord>,
    /// Roles by id, with their members.
    pub roles: BTreeMap<String, Collective>,
    /// Authorizations by key.
    pub authorizations: BTreeMap<i64, crate::access::AuthorizationRecord>,
    /// Groups by id, with their members.
    pub groups: BTreeMap<String, Collective>,
    /// Tenants by id, with their members.
    pub tenants: BTreeMap<String, Collective>,
    /// Mapping rules by id.
    pub mapping_rules: BTreeMap<String, crate::mapping_rules::MappingRuleRecord>,
}

/// The identity section of snapshot layout 6 (users, roles and
/// authorizations only), read into an [`Identity`].
#[derive(Deserialize)]
pub(crate) struct IdentityV6 {
    users: BTreeMap<String, UserRecord>,
    roles: BTreeMap<String, Collective>,
    authorizations: BTreeMap<i64, crate::access::AuthorizationRecord>,
}

impl From<IdentityV6> for Identity {
    fn from(v6: IdentityV6) -> Identity {
        Identity {
            users: v6.users,
            roles: v6.roles,
            authorizations: v6.authorizations,
            ..Identity::default()
        }
    }
}

impl Identity {
    /// Whether nothing is stored (the snapshot then leaves the section out).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.roles.is_empty()
            && self.authorizations.is_empty()
            && self.groups.is_empty()
            && self.tenants.is_empty()
            && self.mapping_rules.is_empty()
    }

    /// Applies a `USER` event.
    pub(crate) fn apply_user(&mut self, intent: Intent, user: &UserRecord) {
        match intent {
            Intent::Created | Intent::Updated => {
                self.users.insert(user.username.clone(), user.clone());
            }
            Intent::Deleted => {
                self.users.remove(&user.username);
                self.forget_owner(crate::access::OWNER_USER, &user.username);
            }
            _ => {}
        }
    }
}

/// The key of an identity entity after `event`: the new event's `key` for
/// a creation, else the one it has (`old`).
pub(crate) fn entity_key(event: Intent, key: i64, old: i64) -> i64 {
    if event == Intent::Created {
        key
    } else {
        old
    }
}

/// Whether `username` is a valid login name: 1 to 256 characters of
/// letters, digits and `_~@.+-` (Camunda's id pattern).
pub fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.chars().count() <= MAX_FIELD_CHARS
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_~@.+-".contains(c))
}

impl Engine {
    /// The event of an identity command's intent.
    pub(crate) fn identity_event(cmd: &Record) -> Result<Intent, Rejection> {
        match cmd.intent {
            Intent::Create => Ok(Intent::Created),
            Intent::Update => Ok(Intent::Updated),
            Intent::Delete => Ok(Intent::Deleted),
            Intent::AddEntity => Ok(Intent::EntityAdded),
            Intent::RemoveEntity => Ok(Intent::EntityRemoved),
            _ => Err(unsupported(cmd)),
        }
    }

    /// The event of a command on an entity without members (users,
    /// mapping rules, authorizations): CREATE, UPDATE or DELETE only.
    pub(crate) fn entity_event(cmd: &Record) -> Result<Intent, Rejection> {
        match Self::identity_event(cmd)? {
            event @ (Intent::Created | Intent::Updated | Intent::Deleted) => Ok(event),
            _ => Err(unsupported(cmd)),
        }
    }

    /// A distributed identity command (`cmd.key` set): its value is the
    /// event's, checked on the deployment partition; applied once and
    /// acknowledged. `Ok(false)` for a client's command, which only the
    /// deployment partition takes.
    pub(crate) fn identity_distributed(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        event: Intent,
    ) -> Result<bool, Rejection> {
        if cmd.key == NO_KEY {
            if self.partition_id != DEPLOYMENT_PARTITION {
                return Err(rejection(
                    RejectionType::InvalidArgument,
                    format!(
                        "Expected to change {} on the deployment partition {DEPLOYMENT_PARTITION}, but this is partition {}",
                        cmd.value_type.name(),
                        self.partition_id
                    ),
                ));
            }
            return Ok(false);
        }
        let source = self.distribution_source(cmd)?;
        if !self.state.distribution_received(source, cmd.key) {
            self.emit(ctx, cmd.key, event, cmd.value.clone());
        }
        self.acknowledge_distribution(ctx, cmd, source);
        Ok(true)
    }

    /// Writes the event of a client's identity command under `key`,
    /// distributes it to the other partitions, and answers with `response`.
    pub(crate) fn identity_commit(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        key: i64,
        event: Intent,
        value: RecordValue,
        response: ResponseValue,
    ) {
        self.emit(ctx, key, event, value.clone());
        self.distribute(ctx, key, cmd.intent, value);
        Self::respond(ctx, cmd, response);
    }

    /// USER CREATE, UPDATE or DELETE, from a client or distributed.
    pub(crate) fn user_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        user: &UserRecord,
    ) -> Result<(), Rejection> {
        let event = Self::entity_event(cmd)?;
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        let value = self.checked_user(cmd.intent, user)?;
        let key = self.state.keys.next_key();
        let value = UserRecord {
            user_key: entity_key(event, key, value.user_key),
            ..value
        };
        let response = ResponseValue::User(value.clone());
        self.identity_commit(ctx, cmd, key, event, RecordValue::User(value), response);
        Ok(())
    }

    /// The event value of a client's USER command, or why it is refused.
    fn checked_user(&self, intent: Intent, user: &UserRecord) -> Result<UserRecord, Rejection> {
        let existing = self.state.identity.users.get(&user.username);
        let invalid = |reason: String| Err(rejection(RejectionType::InvalidArgument, reason));
        if !valid_username(&user.username) {
            return invalid(format!(
                "Expected a username of 1 to {MAX_FIELD_CHARS} letters, digits or '_~@.+-', but got '{}'",
                user.username
            ));
        }
        for (field, value) in [("name", &user.name), ("email", &user.email)] {
            if value.chars().count() > MAX_FIELD_CHARS {
                return invalid(format!(
                    "Expected a {field} of at most {MAX_FIELD_CHARS} characters, but got {}",
                    value.chars().count()
                ));
            }
        }
        match (intent, existing) {
            (Intent::Create, Some(_)) => Err(rejection(
                RejectionType::AlreadyExists,
                format!(
                    "Expected to create user with username '{}', but a user with this username already exists",
                    user.username
                ),
            )),
            (Intent::Create, None) if user.password.is_empty() => {
                invalid("Expected a password for the new user, but got none".into())
            }
            (Intent::Create, None) => Ok(user.clone()),
            (_, None) => Err(rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to {} user with username '{}', but no user with this username exists",
                    if intent == Intent::Update { "update" } else { "delete" },
                    user.username
                ),
            )),
            (Intent::Update, Some(old)) => Ok(UserRecord {
                user_key: old.user_key,
                username: old.username.clone(),
                name: user.name.clone(),
                email: user.email.clone(),
                password: if user.password.is_empty() {
                    old.password.clone()
                } else {
                    user.password.clone()
                },
            }),
            (_, Some(old)) => Ok(old.clone()),
        }
    }
}
