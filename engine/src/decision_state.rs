//! Deployed DMN decisions in the replicated state, and their appliers.
//!
//! ```text
//! drgs               DRG key -> DeployedDrg (metadata, resource, parsed dmn::Drg)
//! drg_versions       DRG id -> version -> key       drg_highest: id -> highest version
//! decisions          decision key -> DecisionMetadata
//! decision_versions  decision id -> version -> key  decision_highest: id -> highest version
//! decisions_by_drg   (DRG key, decision key)
//! deployments        process key -> deployment key; (deployment key, decision id) -> decision key
//! ```
//!
//! A DRG is kept parsed; a snapshot stores its resource and restore parses
//! it again (as processes are). Deleted versions leave the lookups, their
//! version numbers are not reused. Every map is ordered.

use crate::record::*;
use crate::tenancy::{scoped, scoped_arc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A deployed decision requirements graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(
    into = "DecisionRequirementsRecord",
    try_from = "DecisionRequirementsRecord"
)]
pub struct DeployedDrg {
    /// Identity, version and checksum.
    pub metadata: DecisionRequirementsMetadata,
    /// The DMN XML.
    pub resource: Arc<[u8]>,
    /// The parsed graph.
    pub drg: dmn::Drg,
}

impl From<DeployedDrg> for DecisionRequirementsRecord {
    fn from(d: DeployedDrg) -> Self {
        DecisionRequirementsRecord {
            metadata: d.metadata,
            resource: d.resource,
        }
    }
}

impl TryFrom<DecisionRequirementsRecord> for DeployedDrg {
    type Error = String;
    fn try_from(r: DecisionRequirementsRecord) -> Result<Self, String> {
        let text = std::str::from_utf8(&r.resource)
            .map_err(|e| format!("'{}': not UTF-8: {e}", r.metadata.resource_name))?;
        let drg =
            dmn::Drg::parse(text).map_err(|e| format!("'{}': {e}", r.metadata.resource_name))?;
        Ok(DeployedDrg {
            metadata: r.metadata,
            resource: r.resource,
            drg,
        })
    }
}

/// The deployed DRGs and decisions of a partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DecisionState {
    /// DRGs by key.
    pub drgs: BTreeMap<i64, Arc<DeployedDrg>>,
    /// DRG keys by id and version (deleted ones left out).
    pub drg_versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    /// Highest DRG version ever deployed per id.
    pub drg_highest: BTreeMap<Arc<str>, i32>,
    /// Decisions by key.
    pub decisions: BTreeMap<i64, DecisionMetadata>,
    /// Decision keys by id and version (deleted ones left out).
    pub decision_versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    /// Highest decision version ever deployed per id.
    pub decision_highest: BTreeMap<Arc<str>, i32>,
    /// (DRG key, decision key).
    pub decisions_by_drg: BTreeSet<(i64, i64)>,
    /// Process definition key -> key of the deployment that created it.
    pub process_deployment: BTreeMap<i64, i64>,
    /// (deployment key, decision id) -> the decision key that deployment
    /// holds (created or unchanged), for `bindingType="deployment"`.
    pub deployment_decisions: BTreeMap<(i64, Arc<str>), i64>,
}

impl DecisionState {
    /// DRG `key`.
    pub fn drg(&self, key: i64) -> Option<&Arc<DeployedDrg>> {
        self.drgs.get(&key)
    }

    /// Latest version of DRG `id` in `tenant`.
    pub fn latest_drg(&self, tenant: &Tenant, id: &str) -> Option<&Arc<DeployedDrg>> {
        let (_, key) = self
            .drg_versions
            .get(scoped(tenant, id).as_ref())?
            .last_key_value()?;
        self.drgs.get(key)
    }

    /// Decision `key`.
    pub fn decision(&self, key: i64) -> Option<&DecisionMetadata> {
        self.decisions.get(&key)
    }

    /// Latest version of decision `id` in `tenant`.
    pub fn latest_decision(&self, tenant: &Tenant, id: &str) -> Option<&DecisionMetadata> {
        let (_, key) = self
            .decision_versions
            .get(scoped(tenant, id).as_ref())?
            .last_key_value()?;
        self.decisions.get(key)
    }

    /// The highest version of decision `id` ever deployed in `tenant`.
    pub fn highest_decision_version(&self, tenant: &Tenant, id: &str) -> i32 {
        let id = scoped(tenant, id);
        self.decision_highest.get(id.as_ref()).copied().unwrap_or(0)
    }

    /// The highest version of DRG `id` ever deployed in `tenant`.
    pub fn highest_drg_version(&self, tenant: &Tenant, id: &str) -> i32 {
        let id = scoped(tenant, id);
        self.drg_highest.get(id.as_ref()).copied().unwrap_or(0)
    }

    /// Latest version of decision `id` in `tenant` with version tag `tag`.
    pub fn decision_with_tag(
        &self,
        tenant: &Tenant,
        id: &str,
        tag: &str,
    ) -> Option<&DecisionMetadata> {
        self.decision_versions
            .get(scoped(tenant, id).as_ref())?
            .values()
            .rev()
            .filter_map(|k| self.decisions.get(k))
            .find(|d| d.version_tag == tag)
    }

    /// Decision `id` as deployed together with process definition `process_key`.
    pub fn decision_of_deployment(&self, process_key: i64, id: &str) -> Option<&DecisionMetadata> {
        let deployment = self.process_deployment.get(&process_key)?;
        let key = self
            .deployment_decisions
            .get(&(*deployment, Arc::from(id)))?;
        self.decisions.get(key)
    }

    /// Keys of the decisions of DRG `drg_key`.
    pub fn decisions_of(&self, drg_key: i64) -> Vec<i64> {
        crate::state::State::owned(&self.decisions_by_drg, drg_key)
    }

    /// `DECISION_REQUIREMENTS CREATED`.
    pub fn apply_drg_created(&mut self, r: &DecisionRequirementsRecord, tenant: &Tenant) {
        let m = &r.metadata;
        let key = m.decision_requirements_key;
        if self.drgs.contains_key(&key) {
            return;
        }
        let deployed = DeployedDrg::try_from(r.clone())
            .expect("a DRG in a CREATED event was validated when it was deployed");
        let id = scoped_arc(tenant, &m.decision_requirements_id);
        self.drg_versions
            .entry(id.clone())
            .or_default()
            .insert(m.decision_requirements_version, key);
        let highest = self.drg_highest.entry(id).or_insert(0);
        *highest = (*highest).max(m.decision_requirements_version);
        self.drgs.insert(key, Arc::new(deployed));
    }

    /// `DECISION CREATED`.
    pub fn apply_decision_created(&mut self, d: &DecisionMetadata, tenant: &Tenant) {
        if self.decisions.contains_key(&d.decision_key) {
            return;
        }
        let id = scoped_arc(tenant, &d.decision_id);
        self.decision_versions
            .entry(id.clone())
            .or_default()
            .insert(d.version, d.decision_key);
        let highest = self.decision_highest.entry(id).or_insert(0);
        *highest = (*highest).max(d.version);
        self.decisions_by_drg
            .insert((d.decision_requirements_key, d.decision_key));
        self.decisions.insert(d.decision_key, d.clone());
    }

    /// `DEPLOYMENT CREATED | DISTRIBUTED` with key `deployment_key`.
    pub fn apply_deployment(&mut self, deployment_key: i64, d: &DeploymentRecord) {
        for p in d.processes.iter().filter(|p| !p.duplicate) {
            self.process_deployment
                .insert(p.process_definition_key, deployment_key);
        }
        for decision in &d.decisions {
            self.deployment_decisions.insert(
                (deployment_key, decision.decision_id.clone()),
                decision.decision_key,
            );
        }
    }

    /// `DECISION DELETED`.
    pub fn apply_decision_deleted(&mut self, d: &DecisionMetadata, tenant: &Tenant) {
        let Some(d) = self.decisions.remove(&d.decision_key) else {
            return;
        };
        let id = scoped_arc(tenant, &d.decision_id);
        if let Some(versions) = self.decision_versions.get_mut(&id) {
            versions.remove(&d.version);
            if versions.is_empty() {
                self.decision_versions.remove(&id);
            }
        }
        self.decisions_by_drg
            .remove(&(d.decision_requirements_key, d.decision_key));
        self.deployment_decisions
            .retain(|_, k| *k != d.decision_key);
    }

    /// `DECISION_REQUIREMENTS DELETED`.
    pub fn apply_drg_deleted(&mut self, m: &DecisionRequirementsMetadata, tenant: &Tenant) {
        let key = m.decision_requirements_key;
        let Some(drg) = self.drgs.remove(&key) else {
            return;
        };
        let id = scoped_arc(tenant, &drg.metadata.decision_requirements_id);
        if let Some(versions) = self.drg_versions.get_mut(&id) {
            versions.remove(&drg.metadata.decision_requirements_version);
            if versions.is_empty() {
                self.drg_versions.remove(&id);
            }
        }
    }
}
