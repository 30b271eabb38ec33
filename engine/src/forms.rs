//! Camunda Forms: deploying `.form` resources, their state, linking them to
//! user tasks, deleting them.
//!
//! ```text
//! DEPLOYMENT CREATE with a .form resource (on DEPLOYMENT_PARTITION)
//!   parse: JSON object (size and nesting bounded) with a string `id`
//!   unchanged content (same checksum as the latest form of the id): duplicate,
//!     the old key and version, no event
//!   else FORM CREATED   key: new, version: highest of the id + 1
//! DEPLOYMENT DISTRIBUTE: the same FORM CREATED under the same keys
//! RESOURCE_DELETION DELETE with a form key: FORM DELETED
//! user task activation with zeebe:formDefinition formId:
//!   latest | deployment | versionTag -> UserTaskRecord.form_key, or a
//!   FORM_NOT_FOUND incident
//! ```
//!
//! State (every map ordered, so the snapshot is deterministic):
//!
//! ```text
//! forms             form key -> FormRecord (metadata and JSON resource)
//! versions          form id -> version -> key   highest: id -> highest version
//! deployment_forms  (deployment key, form id) -> form key
//! ```
//!
//! Deleted versions leave the lookups; their version numbers are not reused.

use crate::engine::{Ctx, Engine};
use crate::model::DecisionBinding;
use crate::record::*;
use crate::state::DeployedProcess;
use crate::tenancy::{scoped, scoped_arc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Deepest nesting of arrays and objects accepted in a form's JSON.
pub const MAX_FORM_DEPTH: usize = crate::scope_variables::MAX_DOCUMENT_DEPTH;

/// A form that a deployment produced (Zeebe's `FormMetadataRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormMetadata {
    /// `id` of the form JSON.
    pub form_id: Arc<str>,
    /// Version, starting at 1 per form id.
    pub version: i32,
    /// Key of the form.
    pub form_key: i64,
    /// Name of the resource.
    pub resource_name: String,
    /// Checksum of the resource, to recognise a redeployment of identical content.
    pub checksum: u64,
    /// `versionTag` of the form JSON, empty when none.
    pub version_tag: String,
    /// Key of the deployment that created the form.
    pub deployment_key: i64,
    /// True when the same content was deployed before: key and version are the old ones.
    pub duplicate: bool,
}

/// `FORM` value (Zeebe's `FormRecord`): one form with its JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormRecord {
    /// Identity and version.
    pub metadata: FormMetadata,
    /// The form JSON (empty in `DELETED`).
    pub resource: Arc<[u8]>,
}

/// Whether `name` is a Camunda Form resource.
pub(crate) fn is_form(name: &str) -> bool {
    name.ends_with(".form")
}

/// A `.form` resource of a deployment, checked.
pub(crate) struct ParsedForm<'a> {
    pub resource: &'a DeploymentResource,
    pub form_id: String,
    pub version_tag: String,
}

/// Checks a form resource: bounded JSON object with a string `id`; the
/// error names the resource.
pub(crate) fn parse_form(resource: &DeploymentResource) -> Result<ParsedForm<'_>, String> {
    let name = &resource.name;
    if resource.content.len() > crate::bpmn::MAX_RESOURCE_BYTES {
        return Err(format!(
            "'{name}': resource of {} bytes exceeds the limit of {} bytes",
            resource.content.len(),
            crate::bpmn::MAX_RESOURCE_BYTES
        ));
    }
    let text = std::str::from_utf8(&resource.content)
        .map_err(|e| format!("'{name}': resource is not UTF-8: {e}"))?;
    if let Some(depth) = crate::scope_variables::nesting_beyond(text, MAX_FORM_DEPTH) {
        return Err(format!(
            "'{name}': Expected the form to nest at most {MAX_FORM_DEPTH} levels deep, but it nests {depth} levels or more"
        ));
    }
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("'{name}': Expected the form to be JSON, but it is not: {e}"))?;
    let serde_json::Value::Object(fields) = json else {
        return Err(format!(
            "'{name}': Expected the form to be a JSON object, but it is not"
        ));
    };
    let form_id = match fields.get("id") {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => {
            return Err(format!(
                "'{name}': Expected the form to have a non-empty string 'id', but it has none"
            ))
        }
    };
    let version_tag = match fields.get("versionTag") {
        Some(serde_json::Value::String(tag)) => tag.clone(),
        _ => String::new(),
    };
    Ok(ParsedForm {
        resource,
        form_id,
        version_tag,
    })
}

/// The `bindingType` (and `versionTag`) of a `zeebe:<extension>` that links
/// a deployed resource: `zeebe:formDefinition`, `zeebe:calledDecision` and
/// `zeebe:calledElement` read it the same way.
pub(crate) fn resource_binding(
    extension: &str,
    binding_type: Option<&str>,
    version_tag: Option<&str>,
) -> Result<DecisionBinding, String> {
    match binding_type.unwrap_or("latest") {
        "latest" => Ok(DecisionBinding::Latest),
        "deployment" => Ok(DecisionBinding::Deployment),
        "versionTag" => match version_tag {
            Some(tag) if !tag.trim().is_empty() => Ok(DecisionBinding::VersionTag(tag.to_string())),
            _ => Err(format!(
                "zeebe:{extension} with bindingType 'versionTag' needs a versionTag"
            )),
        },
        other => Err(format!(
            "zeebe:{extension} bindingType '{other}' is not one of latest, deployment, versionTag"
        )),
    }
}

/// The deployed forms of a partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FormState {
    /// Forms by key.
    pub forms: BTreeMap<i64, Arc<FormRecord>>,
    /// Form keys by id and version (deleted ones left out).
    pub versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    /// Highest version ever deployed per id.
    pub highest: BTreeMap<Arc<str>, i32>,
    /// (deployment key, form id) -> the form key that deployment holds
    /// (created or unchanged), for `bindingType="deployment"`.
    pub deployment_forms: BTreeMap<(i64, Arc<str>), i64>,
}

impl FormState {
    /// Form `key`.
    pub fn form(&self, key: i64) -> Option<&Arc<FormRecord>> {
        self.forms.get(&key)
    }

    /// Latest version of form `id` in `tenant`.
    pub fn latest(&self, tenant: &Tenant, id: &str) -> Option<&Arc<FormRecord>> {
        let (_, key) = self
            .versions
            .get(scoped(tenant, id).as_ref())?
            .last_key_value()?;
        self.forms.get(key)
    }

    /// The highest version of form `id` ever deployed in `tenant`.
    pub fn highest_version(&self, tenant: &Tenant, id: &str) -> i32 {
        let id = scoped(tenant, id);
        self.highest.get(id.as_ref()).copied().unwrap_or(0)
    }

    /// Latest version of form `id` in `tenant` with version tag `tag`.
    pub fn with_tag(&self, tenant: &Tenant, id: &str, tag: &str) -> Option<&Arc<FormRecord>> {
        self.versions
            .get(scoped(tenant, id).as_ref())?
            .values()
            .rev()
            .filter_map(|k| self.forms.get(k))
            .find(|f| f.metadata.version_tag == tag)
    }

    /// Form `id` as held by deployment `deployment_key`.
    pub fn of_deployment(&self, deployment_key: i64, id: &str) -> Option<&Arc<FormRecord>> {
        let key = self
            .deployment_forms
            .get(&(deployment_key, Arc::from(id)))?;
        self.forms.get(key)
    }

    /// `FORM CREATED`.
    pub fn apply_created(&mut self, r: &FormRecord, tenant: &Tenant) {
        let m = &r.metadata;
        if self.forms.contains_key(&m.form_key) {
            return;
        }
        let id = scoped_arc(tenant, &m.form_id);
        self.versions
            .entry(id.clone())
            .or_default()
            .insert(m.version, m.form_key);
        let highest = self.highest.entry(id).or_insert(0);
        *highest = (*highest).max(m.version);
        self.forms.insert(m.form_key, Arc::new(r.clone()));
    }

    /// `DEPLOYMENT CREATED | DISTRIBUTED` with key `deployment_key`.
    pub fn apply_deployment(&mut self, deployment_key: i64, d: &DeploymentRecord) {
        for f in &d.forms {
            self.deployment_forms
                .insert((deployment_key, f.form_id.clone()), f.form_key);
        }
    }

    /// `FORM DELETED`.
    pub fn apply_deleted(&mut self, m: &FormMetadata, tenant: &Tenant) {
        let Some(form) = self.forms.remove(&m.form_key) else {
            return;
        };
        let id = scoped_arc(tenant, &form.metadata.form_id);
        if let Some(versions) = self.versions.get_mut(&id) {
            versions.remove(&form.metadata.version);
            if versions.is_empty() {
                self.versions.remove(&id);
            }
        }
        self.deployment_forms.retain(|_, k| *k != m.form_key);
    }
}

impl Engine {
    /// Writes the forms of a deployment (nothing for unchanged content) and
    /// returns their metadata.
    pub(crate) fn deploy_forms(
        &mut self,
        ctx: &mut Ctx,
        deployment_key: i64,
        parsed: &[ParsedForm],
    ) -> Vec<FormMetadata> {
        let mut out = Vec::with_capacity(parsed.len());
        for p in parsed {
            let sum = crate::commands::checksum(&p.resource.content);
            let id: Arc<str> = Arc::from(p.form_id.as_str());
            if let Some(latest) = self.state.forms.latest(&ctx.tenant, &id) {
                if latest.metadata.checksum == sum {
                    out.push(FormMetadata {
                        duplicate: true,
                        resource_name: p.resource.name.clone(),
                        ..latest.metadata.clone()
                    });
                    continue;
                }
            }
            let meta = FormMetadata {
                form_id: id.clone(),
                version: self.state.forms.highest_version(&ctx.tenant, &id) + 1,
                form_key: self.state.keys.next_key(),
                resource_name: p.resource.name.clone(),
                checksum: sum,
                version_tag: p.version_tag.clone(),
                deployment_key,
                duplicate: false,
            };
            self.emit(
                ctx,
                meta.form_key,
                Intent::Created,
                RecordValue::Form(FormRecord {
                    metadata: meta.clone(),
                    resource: Arc::from(p.resource.content.as_slice()),
                }),
            );
            out.push(meta);
        }
        out
    }

    /// A distributed deployment's forms, created here under the keys of the
    /// deployment partition.
    pub(crate) fn receive_forms(
        &mut self,
        ctx: &mut Ctx,
        d: &DeploymentRecord,
    ) -> Result<(), String> {
        for meta in &d.forms {
            if meta.duplicate || self.state.forms.form(meta.form_key).is_some() {
                continue;
            }
            let resource = crate::decisions::distributed_resource(d, &meta.resource_name)?;
            parse_form(resource)?;
            self.emit(
                ctx,
                meta.form_key,
                Intent::Created,
                RecordValue::Form(FormRecord {
                    metadata: meta.clone(),
                    resource: Arc::from(resource.content.as_slice()),
                }),
            );
        }
        Ok(())
    }

    /// Deletes form `key`; false when there is no such form.
    pub(crate) fn delete_form(&mut self, ctx: &mut Ctx, key: i64) -> bool {
        let Some(form) = self.state.forms.form(key).cloned() else {
            return false;
        };
        self.emit(
            ctx,
            key,
            Intent::Deleted,
            RecordValue::Form(FormRecord {
                metadata: form.metadata.clone(),
                resource: Arc::from(&[][..]),
            }),
        );
        true
    }

    /// The key of the form a user task of `def` links with `formId`
    /// `form_id`, by `binding`; the error is the incident message
    /// (`FORM_NOT_FOUND`).
    pub(crate) fn resolve_form(
        &self,
        def: &DeployedProcess,
        form_id: &str,
        binding: &DecisionBinding,
    ) -> Result<i64, String> {
        let forms = &self.state.forms;
        let tenant = self
            .state
            .process_tenant(def.metadata.process_definition_key);
        let found = match binding {
            DecisionBinding::Latest => forms.latest(&tenant, form_id).ok_or_else(|| {
                format!(
                    "Expected to find a form with id '{form_id}', but no form with this id is found, at least a form with this id should be available. To resolve the Incident please deploy a form with the same id"
                )
            }),
            DecisionBinding::Deployment => {
                let process_key = def.metadata.process_definition_key;
                let deployment = self.state.decisions.process_deployment.get(&process_key);
                deployment
                    .and_then(|d| forms.of_deployment(*d, form_id))
                    .ok_or_else(|| {
                        format!(
                            "Expected to use a form with id '{form_id}' with binding type 'deployment', but no such form found in the deployment with key {} which contained the current process. To resolve this incident, migrate the process instance to a process definition that is deployed together with the intended form to use.",
                            deployment.copied().unwrap_or(NO_KEY)
                        )
                    })
            }
            DecisionBinding::VersionTag(tag) => forms.with_tag(&tenant, form_id, tag).ok_or_else(|| {
                format!(
                    "Expected to use a form with id '{form_id}' and version tag '{tag}', but no such form found. To resolve the incident, deploy a form with the given id and version tag."
                )
            }),
        };
        found.map(|f| f.metadata.form_key)
    }
}
