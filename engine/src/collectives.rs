//! Roles, groups and tenants (Camunda's `ROLE`, `GROUP` and `TENANT` value
//! types): each an id, a name, a description and members, kept in the
//! replicated state and changed like users (see `identity`).
//!
//! ```text
//! ROLE | GROUP | TENANT  CREATE | UPDATE | DELETE    id, name, description
//! ROLE | GROUP | TENANT  ADD_ENTITY | REMOVE_ENTITY  id, entityType, entityId
//! ```
//!
//! | kind   | members                                        |
//! |--------|------------------------------------------------|
//! | role   | users, clients, groups, mapping rules          |
//! | group  | users, clients, mapping rules                  |
//! | tenant | users, clients, groups, roles, mapping rules   |
//!
//! A member must exist, clients aside (an application is known by its
//! token only). Deleting a role, group or tenant deletes its memberships
//! and the authorizations it owns.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::access::{
    check_id, invalid, OWNER_CLIENT, OWNER_GROUP, OWNER_MAPPING_RULE, OWNER_ROLE, OWNER_TENANT,
    OWNER_USER,
};
use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::identity::{entity_key, Identity, MAX_FIELD_CHARS};
use crate::record::*;

/// The tenant of everything without one.
pub const DEFAULT_TENANT: &str = "<default>";
/// Longest tenant id (Camunda's limit).
pub const MAX_TENANT_ID_CHARS: usize = 31;

/// Which collective a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A role: what its members may do, through its authorizations.
    Role,
    /// A group: a set of users, clients and mapping rules.
    Group,
    /// A tenant: whose data its members see.
    Tenant,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Role, Kind::Group, Kind::Tenant];

    /// The word for one, in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Group => "group",
            Kind::Tenant => "tenant",
        }
    }

    /// Its owner and member type.
    pub fn owner_type(self) -> &'static str {
        match self {
            Kind::Role => OWNER_ROLE,
            Kind::Group => OWNER_GROUP,
            Kind::Tenant => OWNER_TENANT,
        }
    }

    /// The member types it takes.
    pub fn member_types(self) -> &'static [&'static str] {
        match self {
            Kind::Role => &[OWNER_USER, OWNER_CLIENT, OWNER_GROUP, OWNER_MAPPING_RULE],
            Kind::Group => &[OWNER_USER, OWNER_CLIENT, OWNER_MAPPING_RULE],
            Kind::Tenant => &[
                OWNER_USER,
                OWNER_CLIENT,
                OWNER_GROUP,
                OWNER_ROLE,
                OWNER_MAPPING_RULE,
            ],
        }
    }

    /// Its record value.
    pub fn value(self, record: CollectiveRecord) -> RecordValue {
        match self {
            Kind::Role => RecordValue::Role(record),
            Kind::Group => RecordValue::Group(record),
            Kind::Tenant => RecordValue::Tenant(record),
        }
    }
}

/// `ROLE`, `GROUP` or `TENANT` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectiveRecord {
    /// Key of the role, group or tenant (of its `CREATED` event).
    pub key: i64,
    /// Unique id (`roleId`, `groupId`, `tenantId`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// ADD_ENTITY, REMOVE_ENTITY: the member's type (`USER`, `CLIENT`, ...).
    pub entity_type: String,
    /// ADD_ENTITY, REMOVE_ENTITY: the member's id.
    pub entity_id: String,
}

/// A role, group or tenant in the state: its record and its members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collective {
    /// Id, name, description and key (entity fields empty).
    pub record: CollectiveRecord,
    /// (entity type, entity id) of every member.
    pub members: BTreeSet<(String, String)>,
}

impl Collective {
    /// The ids of its members of type `entity_type`.
    pub fn members_of_type<'a>(&'a self, entity_type: &'a str) -> impl Iterator<Item = &'a str> {
        self.members
            .iter()
            .filter(move |(t, _)| t == entity_type)
            .map(|(_, id)| id.as_str())
    }
}

impl Identity {
    /// The roles, groups or tenants.
    pub fn collectives(&self, kind: Kind) -> &BTreeMap<String, Collective> {
        match kind {
            Kind::Role => &self.roles,
            Kind::Group => &self.groups,
            Kind::Tenant => &self.tenants,
        }
    }

    pub(crate) fn collectives_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, Collective> {
        match kind {
            Kind::Role => &mut self.roles,
            Kind::Group => &mut self.groups,
            Kind::Tenant => &mut self.tenants,
        }
    }

    /// Whether member `entity_type` `entity_id` exists (clients always do).
    fn has_entity(&self, entity_type: &str, entity_id: &str) -> bool {
        match entity_type {
            OWNER_USER => self.users.contains_key(entity_id),
            OWNER_GROUP => self.groups.contains_key(entity_id),
            OWNER_ROLE => self.roles.contains_key(entity_id),
            OWNER_MAPPING_RULE => self.mapping_rules.contains_key(entity_id),
            _ => true,
        }
    }

    /// Applies a `ROLE`, `GROUP` or `TENANT` event.
    pub(crate) fn apply_collective(&mut self, kind: Kind, intent: Intent, c: &CollectiveRecord) {
        let member = (c.entity_type.clone(), c.entity_id.clone());
        let entries = self.collectives_mut(kind);
        match intent {
            Intent::Created => {
                let record = CollectiveRecord {
                    entity_type: String::new(),
                    entity_id: String::new(),
                    ..c.clone()
                };
                let members = BTreeSet::new();
                entries.insert(c.id.clone(), Collective { record, members });
            }
            Intent::Updated => {
                if let Some(e) = entries.get_mut(&c.id) {
                    e.record.name = c.name.clone();
                    e.record.description = c.description.clone();
                }
            }
            Intent::Deleted => {
                entries.remove(&c.id);
                self.forget_owner(kind.owner_type(), &c.id);
            }
            Intent::EntityAdded => {
                if let Some(e) = entries.get_mut(&c.id) {
                    e.members.insert(member);
                }
            }
            Intent::EntityRemoved => {
                if let Some(e) = entries.get_mut(&c.id) {
                    e.members.remove(&member);
                }
            }
            _ => {}
        }
    }
}

/// Checks the id of a new `kind`: a tenant's is 1 to 31 word characters,
/// `.` or `-` (or `<default>`), the others Camunda's general id pattern.
fn check_collective_id(kind: Kind, id: &str) -> Result<(), Rejection> {
    if kind != Kind::Tenant {
        return check_id(&format!("{} id", kind.noun()), id);
    }
    let valid = id == DEFAULT_TENANT
        || (!id.is_empty()
            && id.chars().count() <= MAX_TENANT_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "Expected a tenant id of 1 to {MAX_TENANT_ID_CHARS} letters, digits or '_.-' (or '{DEFAULT_TENANT}'), but got '{id}'"
        )))
    }
}

impl Engine {
    /// ROLE, GROUP and TENANT commands, from a client or distributed.
    pub(crate) fn collective_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        kind: Kind,
        change: &CollectiveRecord,
    ) -> Result<(), Rejection> {
        let event = Self::identity_event(cmd)?;
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        let noun = kind.noun();
        let existing = self.state.identity.collectives(kind).get(&change.id);
        let not_found = || {
            rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to find a {noun} with id '{}', but none exists",
                    change.id
                ),
            )
        };
        if change.name.chars().count() > MAX_FIELD_CHARS {
            return Err(invalid(format!(
                "Expected a name of at most {MAX_FIELD_CHARS} characters"
            )));
        }
        let value = match event {
            Intent::Created if existing.is_some() => {
                return Err(rejection(
                    RejectionType::AlreadyExists,
                    format!(
                        "Expected to create a {noun} with id '{}', but one exists",
                        change.id
                    ),
                ))
            }
            Intent::Created => {
                check_collective_id(kind, &change.id)?;
                CollectiveRecord {
                    entity_type: String::new(),
                    entity_id: String::new(),
                    ..change.clone()
                }
            }
            Intent::Deleted => existing.ok_or_else(not_found)?.record.clone(),
            _ => {
                let existing = existing.ok_or_else(not_found)?;
                let value = CollectiveRecord {
                    key: existing.record.key,
                    ..change.clone()
                };
                if event != Intent::Updated {
                    self.check_member(kind, existing, &value, event)?;
                }
                value
            }
        };
        let key = self.state.keys.next_key();
        let value = CollectiveRecord {
            key: entity_key(event, key, value.key),
            ..value
        };
        let response = ResponseValue::IdentityChanged { key: value.key };
        self.identity_commit(ctx, cmd, key, event, kind.value(value), response);
        Ok(())
    }

    fn check_member(
        &self,
        kind: Kind,
        collective: &Collective,
        change: &CollectiveRecord,
        event: Intent,
    ) -> Result<(), Rejection> {
        let (entity_type, entity_id) = (change.entity_type.as_str(), change.entity_id.as_str());
        let allowed = kind.member_types();
        if !allowed.contains(&entity_type) {
            return Err(invalid(format!(
                "Expected a member of type {}, but got '{entity_type}'",
                allowed.join(", ")
            )));
        }
        check_id("member id", entity_id)?;
        let identity = &self.state.identity;
        let member = (entity_type.to_string(), entity_id.to_string());
        let present = collective.members.contains(&member);
        if event == Intent::EntityAdded && !identity.has_entity(entity_type, entity_id) {
            return Err(rejection(
                RejectionType::NotFound,
                format!("Expected to find the {entity_type} '{entity_id}', but none exists"),
            ));
        }
        let id = &collective.record.id;
        let noun = kind.noun();
        match (event, present) {
            (Intent::EntityAdded, true) => Err(rejection(
                RejectionType::AlreadyExists,
                format!("'{entity_id}' is already a member of {noun} '{id}'"),
            )),
            (Intent::EntityRemoved, false) => Err(rejection(
                RejectionType::NotFound,
                format!("'{entity_id}' is not a member of {noun} '{id}'"),
            )),
            _ => Ok(()),
        }
    }
}
