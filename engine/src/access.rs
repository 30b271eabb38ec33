//! Roles and authorizations (Camunda's `ROLE` and `AUTHORIZATION` value
//! types), kept in the replicated state beside the users and changed the
//! same way: on the deployment partition, then distributed (see
//! `identity`).
//!
//! ```text
//! ROLE CREATE | UPDATE | DELETE             roleId, name, description
//! ROLE ADD_ENTITY | REMOVE_ENTITY           roleId, entityType, entityId
//! AUTHORIZATION CREATE | DELETE             ownerType, ownerId, resourceType,
//!                                           resourceId, permissionTypes
//! ```
//!
//! An authorization grants its owner (a user, a client or a role) the
//! permissions on resources of one type: every resource (`*`) or the one
//! with that id. Grants only, no denials. Deleting a user or a role deletes
//! the authorizations it owns and its memberships.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::identity::{valid_username, Identity, MAX_FIELD_CHARS};
use crate::record::*;

/// Owner and member type of a user.
pub const OWNER_USER: &str = "USER";
/// Owner and member type of an application with client credentials.
pub const OWNER_CLIENT: &str = "CLIENT";
/// Owner type of a role.
pub const OWNER_ROLE: &str = "ROLE";

/// Resource types and the permissions each takes (Camunda 8.8).
pub const RESOURCE_PERMISSIONS: &[(&str, &[&str])] = &[
    ("AUTHORIZATION", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("GROUP", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("MAPPING_RULE", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("ROLE", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("TENANT", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("USER", &["CREATE", "READ", "UPDATE", "DELETE"]),
    ("COMPONENT", &["ACCESS"]),
    (
        "DECISION_DEFINITION",
        &[
            "CREATE_DECISION_INSTANCE",
            "DELETE_DECISION_INSTANCE",
            "READ_DECISION_DEFINITION",
            "READ_DECISION_INSTANCE",
        ],
    ),
    ("DECISION_REQUIREMENTS_DEFINITION", &["READ"]),
    (
        "RESOURCE",
        &[
            "CREATE",
            "READ",
            "DELETE_DRD",
            "DELETE_FORM",
            "DELETE_PROCESS",
            "DELETE_RESOURCE",
        ],
    ),
    ("MESSAGE", &["CREATE", "READ"]),
    (
        "PROCESS_DEFINITION",
        &[
            "CANCEL_PROCESS_INSTANCE",
            "CREATE_PROCESS_INSTANCE",
            "DELETE_PROCESS_INSTANCE",
            "MODIFY_PROCESS_INSTANCE",
            "READ_PROCESS_DEFINITION",
            "READ_PROCESS_INSTANCE",
            "UPDATE_PROCESS_INSTANCE",
            "READ_USER_TASK",
            "UPDATE_USER_TASK",
        ],
    ),
    ("SYSTEM", &["READ", "READ_USAGE_METRIC", "UPDATE"]),
];

/// The permissions resource type `resource_type` takes, if it is one.
pub fn permissions_of(resource_type: &str) -> Option<&'static [&'static str]> {
    RESOURCE_PERMISSIONS
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, p)| *p)
}

/// `ROLE` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    /// Key of the role (of its `CREATED` event).
    pub role_key: i64,
    /// Unique id.
    pub role_id: String,
    /// Display name.
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// ADD_ENTITY, REMOVE_ENTITY: the member's type (`USER`, `CLIENT`).
    pub entity_type: String,
    /// ADD_ENTITY, REMOVE_ENTITY: the member's id.
    pub entity_id: String,
}

/// A role in the state: its record and its members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Id, name, description and key (entity fields empty).
    pub record: RoleRecord,
    /// (entity type, entity id) of every member.
    pub members: BTreeSet<(String, String)>,
}

/// `AUTHORIZATION` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRecord {
    /// Key of the authorization (of its `CREATED` event).
    pub authorization_key: i64,
    /// `USER`, `CLIENT` or `ROLE`.
    pub owner_type: String,
    /// The user's name, the client's id or the role's id.
    pub owner_id: String,
    /// One of [`RESOURCE_PERMISSIONS`]' types.
    pub resource_type: String,
    /// `*` for every resource of the type, else one resource's id.
    pub resource_id: String,
    /// Permissions of the resource type.
    pub permission_types: Vec<String>,
}

impl Identity {
    /// Applies a `ROLE` event.
    pub(crate) fn apply_role(&mut self, intent: Intent, role: &RoleRecord) {
        let id = role.role_id.clone();
        match intent {
            Intent::Created => {
                let record = RoleRecord {
                    entity_type: String::new(),
                    entity_id: String::new(),
                    ..role.clone()
                };
                self.roles.insert(
                    id,
                    Role {
                        record,
                        members: BTreeSet::new(),
                    },
                );
            }
            Intent::Updated => {
                if let Some(r) = self.roles.get_mut(&id) {
                    r.record.name = role.name.clone();
                    r.record.description = role.description.clone();
                }
            }
            Intent::Deleted => {
                self.roles.remove(&id);
                self.forget_owner(OWNER_ROLE, &id);
            }
            Intent::EntityAdded => {
                if let Some(r) = self.roles.get_mut(&id) {
                    r.members
                        .insert((role.entity_type.clone(), role.entity_id.clone()));
                }
            }
            Intent::EntityRemoved => {
                if let Some(r) = self.roles.get_mut(&id) {
                    r.members
                        .remove(&(role.entity_type.clone(), role.entity_id.clone()));
                }
            }
            _ => {}
        }
    }

    /// Applies an `AUTHORIZATION` event.
    pub(crate) fn apply_authorization(&mut self, intent: Intent, a: &AuthorizationRecord) {
        match intent {
            Intent::Created => {
                self.authorizations.insert(a.authorization_key, a.clone());
            }
            Intent::Deleted => {
                self.authorizations.remove(&a.authorization_key);
            }
            _ => {}
        }
    }

    /// Removes what `owner_type` `owner_id` (deleted) owned or was a
    /// member of.
    pub(crate) fn forget_owner(&mut self, owner_type: &str, owner_id: &str) {
        self.authorizations
            .retain(|_, a| !(a.owner_type == owner_type && a.owner_id == owner_id));
        let membership = (owner_type.to_string(), owner_id.to_string());
        for role in self.roles.values_mut() {
            role.members.remove(&membership);
        }
    }

    /// The roles `entity_type` `entity_id` is a member of.
    pub fn roles_of(&self, entity_type: &str, entity_id: &str) -> Vec<&str> {
        let membership = (entity_type.to_string(), entity_id.to_string());
        self.roles
            .values()
            .filter(|r| r.members.contains(&membership))
            .map(|r| r.record.role_id.as_str())
            .collect()
    }

    /// Whether `entity_type` `entity_id` (or a role of it) holds
    /// `permission` on every resource of `resource_type` (a `*` grant).
    pub fn allows_all(
        &self,
        entity_type: &str,
        entity_id: &str,
        resource_type: &str,
        permission: &str,
    ) -> bool {
        let roles = self.roles_of(entity_type, entity_id);
        self.authorizations.values().any(|a| {
            let owner = (a.owner_type == entity_type && a.owner_id == entity_id)
                || (a.owner_type == OWNER_ROLE && roles.contains(&a.owner_id.as_str()));
            owner
                && a.resource_type == resource_type
                && a.resource_id == "*"
                && a.permission_types.iter().any(|p| p == permission)
        })
    }
}

fn invalid(reason: String) -> Rejection {
    rejection(RejectionType::InvalidArgument, reason)
}

fn check_id(what: &str, id: &str) -> Result<(), Rejection> {
    if valid_username(id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Expected a {what} of 1 to {MAX_FIELD_CHARS} letters, digits or '_~@.+-', but got '{id}'"
        )))
    }
}

impl Engine {
    /// ROLE commands, from a client or distributed.
    pub(crate) fn role_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        role: &RoleRecord,
    ) -> Result<(), Rejection> {
        let event = Self::identity_event(cmd)?;
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        check_id("role id", &role.role_id)?;
        let existing = self.state.identity.roles.get(&role.role_id);
        let not_found = || {
            rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to find a role with id '{}', but none exists",
                    role.role_id
                ),
            )
        };
        let value = match event {
            Intent::Created if existing.is_some() => {
                return Err(rejection(
                    RejectionType::AlreadyExists,
                    format!(
                        "Expected to create a role with id '{}', but one exists",
                        role.role_id
                    ),
                ))
            }
            Intent::Created => RoleRecord {
                entity_type: String::new(),
                entity_id: String::new(),
                ..role.clone()
            },
            Intent::Deleted => existing.ok_or_else(not_found)?.record.clone(),
            _ => {
                let existing = existing.ok_or_else(not_found)?;
                let value = RoleRecord {
                    role_key: existing.record.role_key,
                    ..role.clone()
                };
                if event != Intent::Updated {
                    self.check_member(existing, &value, event)?;
                }
                value
            }
        };
        let key = self.state.keys.next_key();
        let value = RoleRecord {
            role_key: if event == Intent::Created {
                key
            } else {
                value.role_key
            },
            ..value
        };
        let response = ResponseValue::IdentityChanged {
            key: value.role_key,
        };
        self.identity_commit(ctx, cmd, key, event, RecordValue::Role(value), response);
        Ok(())
    }

    fn check_member(
        &self,
        role: &Role,
        change: &RoleRecord,
        event: Intent,
    ) -> Result<(), Rejection> {
        let member = (change.entity_type.clone(), change.entity_id.clone());
        match change.entity_type.as_str() {
            OWNER_USER if !self.state.identity.users.contains_key(&change.entity_id) => {
                return Err(rejection(
                    RejectionType::NotFound,
                    format!(
                        "Expected to find a user with username '{}', but none exists",
                        change.entity_id
                    ),
                ))
            }
            OWNER_USER | OWNER_CLIENT => check_id("member id", &change.entity_id)?,
            other => {
                return Err(invalid(format!(
                    "Expected a member of type USER or CLIENT, but got '{other}'"
                )))
            }
        }
        let present = role.members.contains(&member);
        match (event, present) {
            (Intent::EntityAdded, true) => Err(rejection(
                RejectionType::AlreadyExists,
                format!(
                    "'{}' is already a member of role '{}'",
                    change.entity_id, role.record.role_id
                ),
            )),
            (Intent::EntityRemoved, false) => Err(rejection(
                RejectionType::NotFound,
                format!(
                    "'{}' is not a member of role '{}'",
                    change.entity_id, role.record.role_id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// AUTHORIZATION CREATE or DELETE, from a client or distributed.
    pub(crate) fn authorization_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        a: &AuthorizationRecord,
    ) -> Result<(), Rejection> {
        let event = Self::identity_event(cmd)?;
        if !matches!(event, Intent::Created | Intent::Deleted) {
            return Err(invalid(format!(
                "command AUTHORIZATION {} is not supported",
                cmd.intent.name()
            )));
        }
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        let value = if event == Intent::Deleted {
            self.state
                .identity
                .authorizations
                .get(&a.authorization_key)
                .cloned()
                .ok_or_else(|| {
                    rejection(
                        RejectionType::NotFound,
                        format!(
                            "Expected to delete authorization with key '{}', but none exists",
                            a.authorization_key
                        ),
                    )
                })?
        } else {
            self.checked_authorization(a)?
        };
        let key = self.state.keys.next_key();
        let value = AuthorizationRecord {
            authorization_key: if event == Intent::Created {
                key
            } else {
                value.authorization_key
            },
            ..value
        };
        let response = ResponseValue::IdentityChanged {
            key: value.authorization_key,
        };
        self.identity_commit(
            ctx,
            cmd,
            key,
            event,
            RecordValue::Authorization(value),
            response,
        );
        Ok(())
    }

    fn checked_authorization(
        &self,
        a: &AuthorizationRecord,
    ) -> Result<AuthorizationRecord, Rejection> {
        let identity = &self.state.identity;
        let owner_missing = match a.owner_type.as_str() {
            OWNER_USER => !identity.users.contains_key(&a.owner_id),
            OWNER_ROLE => !identity.roles.contains_key(&a.owner_id),
            OWNER_CLIENT => false,
            other => {
                return Err(invalid(format!(
                    "Expected an owner of type USER, CLIENT or ROLE, but got '{other}'"
                )))
            }
        };
        check_id("owner id", &a.owner_id)?;
        if owner_missing {
            return Err(rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to find the owner {} '{}', but none exists",
                    a.owner_type, a.owner_id
                ),
            ));
        }
        let permissions = permissions_of(&a.resource_type)
            .ok_or_else(|| invalid(format!("'{}' is not a resource type", a.resource_type)))?;
        if a.resource_id.is_empty() || a.resource_id.chars().count() > MAX_FIELD_CHARS {
            return Err(invalid(
                "Expected a resource id ('*' for every resource), but got none".into(),
            ));
        }
        if a.permission_types.is_empty() {
            return Err(invalid(
                "Expected at least one permission, but got none".into(),
            ));
        }
        if let Some(bad) = a
            .permission_types
            .iter()
            .find(|p| !permissions.contains(&p.as_str()))
        {
            return Err(invalid(format!(
                "'{bad}' is not a permission of {} (those are {})",
                a.resource_type,
                permissions.join(", ")
            )));
        }
        let duplicate = identity.authorizations.values().any(|b| {
            b.owner_type == a.owner_type
                && b.owner_id == a.owner_id
                && b.resource_type == a.resource_type
                && b.resource_id == a.resource_id
        });
        if duplicate {
            return Err(rejection(
                RejectionType::AlreadyExists,
                format!(
                    "Expected to create an authorization for {} '{}' on {} '{}', but one exists; delete it first",
                    a.owner_type, a.owner_id, a.resource_type, a.resource_id
                ),
            ));
        }
        let mut value = a.clone();
        value.permission_types.sort();
        value.permission_types.dedup();
        Ok(value)
    }
}
