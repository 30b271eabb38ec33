//! Authorizations (Camunda's `AUTHORIZATION` value type), kept in the
//! replicated state beside the users, roles, groups, tenants and mapping
//! rules and changed the same way: on the deployment partition, then
//! distributed (see `identity`).
//!
//! ```text
//! AUTHORIZATION CREATE | UPDATE | DELETE    ownerType, ownerId,
//!                                          resourceType, resourceId,
//!                                          permissionTypes
//! ```
//!
//! An authorization grants its owner (a user, a client, a role, a group or
//! a mapping rule) the permissions on resources of one type: every
//! resource (`*`) or the one with that id. Grants only, no denials. A
//! caller holds what it owns and what the mapping rules its token matches,
//! its groups and its roles own ([`Identity::owners`]). Deleting an owner
//! deletes the authorizations it owns and its memberships.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::collectives::Kind;
use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::identity::{entity_key, valid_username, Identity, MAX_FIELD_CHARS};
use crate::record::*;

/// Owner and member type of a user.
pub const OWNER_USER: &str = "USER";
/// Owner and member type of an application with client credentials.
pub const OWNER_CLIENT: &str = "CLIENT";
/// Owner and member type of a role.
pub const OWNER_ROLE: &str = "ROLE";
/// Owner and member type of a group.
pub const OWNER_GROUP: &str = "GROUP";
/// Owner and member type of a mapping rule.
pub const OWNER_MAPPING_RULE: &str = "MAPPING_RULE";
/// Member type of a tenant (tenants own nothing).
pub const OWNER_TENANT: &str = "TENANT";

/// The resources of a type on which a caller holds a permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// None.
    Nothing,
    /// Those with these ids.
    Only(BTreeSet<String>),
    /// Every one (a `*` authorization).
    All,
}

impl Grant {
    /// Whether the resource with id `id` is granted.
    pub fn covers(&self, id: &str) -> bool {
        match self {
            Grant::Nothing => false,
            Grant::Only(ids) => ids.contains(id),
            Grant::All => true,
        }
    }
}

/// (owner type, owner id) pairs a caller acts as.
pub type Owners = BTreeSet<(String, String)>;
/// The claims of a verified token.
pub type Claims = serde_json::Map<String, serde_json::Value>;

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
    /// Applies an `AUTHORIZATION` event.
    pub(crate) fn apply_authorization(&mut self, intent: Intent, a: &AuthorizationRecord) {
        match intent {
            Intent::Created | Intent::Updated => {
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
        for kind in Kind::ALL {
            for collective in self.collectives_mut(kind).values_mut() {
                collective.members.remove(&membership);
            }
        }
    }

    /// Everything a caller acts as: itself (`entity_type` `entity_id`),
    /// the mapping rules its token's `claims` match, the groups any of
    /// those are in, and the roles any of those are in.
    pub fn owners(&self, entity_type: &str, entity_id: &str, claims: Option<&Claims>) -> Owners {
        let mut owners: Owners = BTreeSet::from([(entity_type.to_string(), entity_id.to_string())]);
        if let Some(claims) = claims {
            owners.extend(
                self.mapping_rules
                    .values()
                    .filter(|r| r.matches(claims))
                    .map(|r| (OWNER_MAPPING_RULE.to_string(), r.mapping_rule_id.clone())),
            );
        }
        for kind in [Kind::Group, Kind::Role] {
            let joined: Vec<_> = self
                .collectives(kind)
                .values()
                .filter(|c| c.members.iter().any(|m| owners.contains(m)))
                .map(|c| (kind.owner_type().to_string(), c.record.id.clone()))
                .collect();
            owners.extend(joined);
        }
        owners
    }

    /// The ids of the tenants any of `owners` is a member of.
    pub fn tenants_of(&self, owners: &Owners) -> Vec<String> {
        self.tenants
            .values()
            .filter(|t| t.members.iter().any(|m| owners.contains(m)))
            .map(|t| t.record.id.clone())
            .collect()
    }

    /// Whether any of `owners` holds `permission` on every resource of
    /// `resource_type` (a `*` grant).
    pub fn allows_all(&self, owners: &Owners, resource_type: &str, permission: &str) -> bool {
        self.grant(owners, resource_type, permission) == Grant::All
    }

    /// The resources of `resource_type` on which any of `owners` holds
    /// `permission`.
    pub fn grant(&self, owners: &Owners, resource_type: &str, permission: &str) -> Grant {
        let mut ids = BTreeSet::new();
        let held = self.authorizations.values().filter(|a| {
            a.resource_type == resource_type
                && a.permission_types.iter().any(|p| p == permission)
                && owners.contains(&(a.owner_type.clone(), a.owner_id.clone()))
        });
        for a in held {
            if a.resource_id == "*" {
                return Grant::All;
            }
            ids.insert(a.resource_id.clone());
        }
        if ids.is_empty() {
            Grant::Nothing
        } else {
            Grant::Only(ids)
        }
    }
}

pub(crate) fn invalid(reason: String) -> Rejection {
    rejection(RejectionType::InvalidArgument, reason)
}

pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Rejection> {
    if valid_username(id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Expected a {what} of 1 to {MAX_FIELD_CHARS} letters, digits or '_~@.+-', but got '{id}'"
        )))
    }
}

impl Engine {
    /// AUTHORIZATION CREATE or DELETE, from a client or distributed.
    pub(crate) fn authorization_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        a: &AuthorizationRecord,
    ) -> Result<(), Rejection> {
        let event = Self::entity_event(cmd)?;
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        let existing = self.state.identity.authorizations.get(&a.authorization_key);
        let value = match (event, existing) {
            (Intent::Created, _) => self.checked_authorization(a)?,
            (Intent::Deleted, Some(existing)) => existing.clone(),
            (_, Some(_)) => self.checked_authorization(a)?,
            (_, None) => {
                return Err(rejection(
                    RejectionType::NotFound,
                    format!(
                        "Expected to {} authorization with key '{}', but none exists",
                        if event == Intent::Deleted {
                            "delete"
                        } else {
                            "update"
                        },
                        a.authorization_key
                    ),
                ))
            }
        };
        let key = self.state.keys.next_key();
        let value = AuthorizationRecord {
            authorization_key: entity_key(event, key, value.authorization_key),
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
            OWNER_GROUP => !identity.groups.contains_key(&a.owner_id),
            OWNER_MAPPING_RULE => !identity.mapping_rules.contains_key(&a.owner_id),
            OWNER_CLIENT => false,
            other => {
                return Err(invalid(format!(
                    "Expected an owner of type USER, CLIENT, ROLE, GROUP or MAPPING_RULE, but got '{other}'"
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
            b.authorization_key != a.authorization_key
                && b.owner_type == a.owner_type
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
