//! Deploying and deleting DMN resources.
//!
//! ```text
//! DEPLOYMENT CREATE with a .dmn resource (on DEPLOYMENT_PARTITION)
//!   parse (dmn::Drg::parse; errors name the resource and the decision)
//!   unchanged content (same checksum as the latest DRG of the id): duplicate,
//!     the old keys and versions, no events
//!   else DECISION_REQUIREMENTS CREATED   key: new, version: highest + 1
//!        DECISION CREATED per decision   key: new, version: highest of its id + 1
//!   (then the processes, DEPLOYMENT CREATED and its distribution, as for BPMN)
//! DEPLOYMENT DISTRIBUTE: the same CREATED events under the same keys
//! RESOURCE_DELETION DELETE with a DRG key:
//!   DECISION DELETED per decision, DECISION_REQUIREMENTS DELETED
//! ```

use crate::engine::{Ctx, Engine};
use crate::record::*;
use std::sync::Arc;

/// A DMN resource of a deployment, parsed.
pub(crate) struct ParsedDmn<'a> {
    pub resource: &'a DeploymentResource,
    pub drg: dmn::Drg,
    /// `zeebe:versionTag` per decision id (empty when none).
    pub version_tags: Vec<(String, String)>,
}

/// Whether `name` is a DMN resource.
pub(crate) fn is_dmn(name: &str) -> bool {
    name.ends_with(".dmn")
}

/// Parses a DMN resource; the error names the resource and, where the
/// problem lies inside a decision, the decision.
pub(crate) fn parse_dmn(resource: &DeploymentResource) -> Result<ParsedDmn<'_>, String> {
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
    let drg = dmn::Drg::parse(text).map_err(|e| {
        let element = match &e {
            dmn::ParseError::Feel { element, .. }
            | dmn::ParseError::UnknownReference { element, .. }
            | dmn::ParseError::Missing { element, .. }
            | dmn::ParseError::Invalid { element, .. }
            | dmn::ParseError::ChainTooLong { element, .. } => Some(element.as_str()),
            _ => None,
        };
        match element.and_then(|el| enclosing_decision(text, el)) {
            Some(decision) => format!("'{name}': decision '{decision}': {e}"),
            None => format!("'{name}': {e}"),
        }
    })?;
    let version_tags = version_tags(text);
    Ok(ParsedDmn {
        resource,
        drg,
        version_tags,
    })
}

/// The id of the `decision` element that is or contains the element with
/// id `element` (the XML depth was checked by the DMN parser before).
fn enclosing_decision(xml: &str, element: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let node = doc
        .descendants()
        .find(|n| n.is_element() && n.attribute("id") == Some(element))?;
    node.ancestors()
        .find(|n| n.is_element() && n.tag_name().name() == "decision")
        .and_then(|n| n.attribute("id"))
        .map(str::to_string)
}

/// `zeebe:versionTag value` of each decision that has one.
fn version_tags(xml: &str) -> Vec<(String, String)> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "decision")
        .filter_map(|d| {
            let tag = d
                .children()
                .filter(|c| c.tag_name().name() == "extensionElements")
                .flat_map(|e| e.children())
                .find(|c| c.is_element() && c.tag_name().name() == "versionTag")?
                .attribute("value")?;
            Some((d.attribute("id")?.to_string(), tag.to_string()))
        })
        .collect()
}

/// The resource `name` of a distributed deployment.
pub(crate) fn distributed_resource<'a>(
    d: &'a DeploymentRecord,
    name: &str,
) -> Result<&'a DeploymentResource, String> {
    d.resources
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("distributed deployment lacks resource '{name}'"))
}

impl Engine {
    /// Writes the DRG and decisions of a parsed DMN resource (nothing for
    /// unchanged content) and returns their metadata.
    pub(crate) fn deploy_drg(
        &mut self,
        ctx: &mut Ctx,
        parsed: &ParsedDmn,
    ) -> (DecisionRequirementsMetadata, Vec<DecisionMetadata>) {
        let sum = crate::commands::checksum(&parsed.resource.content);
        let id: Arc<str> = Arc::from(parsed.drg.id());
        let decisions = &self.state.decisions;
        if let Some(latest) = decisions.latest_drg(&ctx.tenant, &id) {
            if latest.metadata.checksum == sum {
                let drg = DecisionRequirementsMetadata {
                    duplicate: true,
                    resource_name: parsed.resource.name.clone(),
                    ..latest.metadata.clone()
                };
                let metas = decisions
                    .decisions_of(drg.decision_requirements_key)
                    .into_iter()
                    .filter_map(|k| decisions.decision(k))
                    .map(|d| DecisionMetadata {
                        duplicate: true,
                        ..d.clone()
                    })
                    .collect();
                return (drg, metas);
            }
        }
        let drg = DecisionRequirementsMetadata {
            decision_requirements_id: id.clone(),
            decision_requirements_name: parsed.drg.name().to_string(),
            decision_requirements_version: decisions.highest_drg_version(&ctx.tenant, &id) + 1,
            decision_requirements_key: self.state.keys.next_key(),
            namespace: parsed.drg.namespace().to_string(),
            resource_name: parsed.resource.name.clone(),
            checksum: sum,
            duplicate: false,
        };
        self.emit(
            ctx,
            drg.decision_requirements_key,
            Intent::Created,
            RecordValue::DecisionRequirements(DecisionRequirementsRecord {
                metadata: drg.clone(),
                resource: Arc::from(parsed.resource.content.as_slice()),
            }),
        );
        let mut metas = Vec::new();
        for (decision_id, name) in parsed.drg.decisions() {
            let version = self
                .state
                .decisions
                .highest_decision_version(&ctx.tenant, decision_id)
                + 1;
            let meta = DecisionMetadata {
                decision_id: Arc::from(decision_id),
                decision_name: Arc::from(name),
                version,
                decision_key: self.state.keys.next_key(),
                decision_requirements_id: id.clone(),
                decision_requirements_key: drg.decision_requirements_key,
                version_tag: parsed
                    .version_tags
                    .iter()
                    .find(|(d, _)| d == decision_id)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default(),
                duplicate: false,
            };
            self.emit(
                ctx,
                meta.decision_key,
                Intent::Created,
                RecordValue::Decision(meta.clone()),
            );
            metas.push(meta);
        }
        (drg, metas)
    }

    /// A distributed deployment's DRGs and decisions, created here under
    /// the keys of the deployment partition.
    pub(crate) fn receive_drgs(
        &mut self,
        ctx: &mut Ctx,
        d: &DeploymentRecord,
    ) -> Result<(), String> {
        for meta in &d.decision_requirements {
            let key = meta.decision_requirements_key;
            if meta.duplicate || self.state.decisions.drg(key).is_some() {
                continue;
            }
            let resource = distributed_resource(d, &meta.resource_name)?;
            parse_dmn(resource)?;
            self.emit(
                ctx,
                key,
                Intent::Created,
                RecordValue::DecisionRequirements(DecisionRequirementsRecord {
                    metadata: meta.clone(),
                    resource: Arc::from(resource.content.as_slice()),
                }),
            );
        }
        for meta in &d.decisions {
            if meta.duplicate || self.state.decisions.decision(meta.decision_key).is_some() {
                continue;
            }
            self.emit(
                ctx,
                meta.decision_key,
                Intent::Created,
                RecordValue::Decision(meta.clone()),
            );
        }
        Ok(())
    }

    /// Deletes DRG `key` and its decisions; false when there is no such DRG.
    pub(crate) fn delete_drg(&mut self, ctx: &mut Ctx, key: i64) -> bool {
        let Some(drg) = self.state.decisions.drg(key).cloned() else {
            return false;
        };
        for decision_key in self.state.decisions.decisions_of(key) {
            if let Some(d) = self.state.decisions.decision(decision_key).cloned() {
                self.emit(ctx, decision_key, Intent::Deleted, RecordValue::Decision(d));
            }
        }
        self.emit(
            ctx,
            key,
            Intent::Deleted,
            RecordValue::DecisionRequirements(DecisionRequirementsRecord {
                metadata: drg.metadata.clone(),
                resource: Arc::from(&[][..]),
            }),
        );
        true
    }
}
