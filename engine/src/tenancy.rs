//! Multi-tenancy: every record belongs to a tenant, and names are unique
//! within a tenant only.
//!
//! ```text
//! Record.tenant              the tenant of the record (<default> unless set)
//! Record.authorized_tenants  on a client command: the tenants its caller may act in
//! State.tenancy.owners       key -> tenant, for definitions, messages and
//!                            subscriptions of a tenant other than <default>
//! scoped(tenant, name)       how the state indexes a process id, decision id,
//!                            form id, message or signal name
//! ```
//!
//! A command acts in one tenant: the one it names (a deployment, an instance
//! created by process id, a message, a signal, a decision evaluated by id),
//! or the one of the entity it is about (a job, an instance, an incident, a
//! user task: the tenant of its process definition). Everything it writes
//! carries that tenant. A client command about an entity outside its
//! `authorized_tenants` is rejected as if the entity did not exist.
//!
//! Nothing of this shows while everything is in `<default>`: a record of the
//! default tenant encodes as before (record format 3), its names index as
//! themselves and the owners map stays empty, so a snapshot keeps its
//! layout.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::collectives::DEFAULT_TENANT;

/// The tenant a record belongs to; [`DEFAULT_TENANT`] unless set, and then
/// costs nothing.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(Option<Arc<str>>);

impl Tenant {
    /// The tenant `id`; `""` and `<default>` are the default tenant.
    pub fn new(id: &str) -> Self {
        if id.is_empty() || id == DEFAULT_TENANT {
            Tenant(None)
        } else {
            Tenant(Some(Arc::from(id)))
        }
    }

    /// The tenant's id.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(DEFAULT_TENANT)
    }

    /// Whether this is [`DEFAULT_TENANT`].
    pub fn is_default(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Tenant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Tenant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Ok(Tenant::new(&id))
    }
}

/// Separates a tenant from a name in [`scoped`]; no tenant id holds it.
const SEPARATOR: char = '\u{1f}';

/// The name under which the state indexes `name` of `tenant`: `name` itself
/// in the default tenant, else `␟tenant␟name`. Names starting with the
/// separator are scoped in the default tenant too, so two different
/// (tenant, name) pairs never share an index entry.
pub fn scoped<'a>(tenant: &Tenant, name: &'a str) -> Cow<'a, str> {
    if tenant.is_default() && !name.starts_with(SEPARATOR) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{SEPARATOR}{tenant}{SEPARATOR}{name}"))
    }
}

/// [`scoped`] as a shared string, for index keys.
pub fn scoped_arc(tenant: &Tenant, name: &Arc<str>) -> Arc<str> {
    match scoped(tenant, name) {
        Cow::Borrowed(_) => name.clone(),
        Cow::Owned(s) => Arc::from(s),
    }
}

/// The replicated tenancy of a partition: which tenant owns the keyed
/// entities that are not found through a process definition. Encoded
/// after the rest of the snapshot, only when not empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenancy {
    /// Key of a process, DRG, decision or form definition, a message, a
    /// message or signal subscription, or a distributed command -> its
    /// tenant; the default tenant's keys are left out.
    pub owners: BTreeMap<i64, Tenant>,
}

impl Tenancy {
    /// Whether everything is in the default tenant.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The tenant of `key`.
    pub fn of(&self, key: i64) -> Tenant {
        self.owners.get(&key).cloned().unwrap_or_default()
    }

    /// Records that `key` belongs to `tenant`.
    pub fn own(&mut self, key: i64, tenant: &Tenant) {
        if !tenant.is_default() {
            self.owners.insert(key, tenant.clone());
        }
    }

    /// Forgets `key`.
    pub fn release(&mut self, key: i64) {
        self.owners.remove(&key);
    }
}

/// Whether a command restricted to `authorized` tenants may act in `tenant`.
pub fn authorized(authorized: Option<&[Tenant]>, tenant: &Tenant) -> bool {
    authorized.is_none_or(|list| list.contains(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_index_as_themselves_and_others_never_collide() {
        let default = Tenant::default();
        let acme = Tenant::new("acme");
        assert_eq!(scoped(&default, "order"), "order");
        assert!(matches!(scoped(&default, "order"), Cow::Borrowed(_)));
        assert_ne!(scoped(&acme, "order"), scoped(&default, "order"));
        let forged = format!("{SEPARATOR}acme{SEPARATOR}order");
        assert_ne!(scoped(&default, &forged), scoped(&acme, "order"));
        assert_eq!(Tenant::new("<default>"), default);
        assert_eq!(Tenant::new(""), default);
        assert_eq!(acme.as_str(), "acme");
    }

    #[test]
    fn only_other_tenants_are_owned() {
        let mut t = Tenancy::default();
        t.own(1, &Tenant::default());
        assert!(t.is_empty());
        t.own(2, &Tenant::new("acme"));
        assert_eq!(t.of(2).as_str(), "acme");
        assert!(t.of(1).is_default());
        t.release(2);
        assert!(t.is_empty());
    }
}
