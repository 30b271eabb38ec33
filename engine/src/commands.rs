//! Commands on deployments, process instances and variables: deploy BPMN
//! and DMN resources (on partition 1, then distributed; DMN in `decisions`),
//! receive a distributed deployment, create an
//! instance (with or without awaiting the result), cancel it, set variables.

use crate::bpmn::parse_bpmn;
use crate::decisions::{distributed_resource, is_dmn, parse_dmn};
use crate::engine::{rejection, Ctx, Engine, ResponseValue, Step};
use crate::forms::{is_form, parse_form};
use crate::record::*;
use crate::scope_variables::parse_document;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The partition that processes deployments and resource deletions and
/// distributes them to the others (Zeebe's deployment partition); start
/// timers live there.
pub const DEPLOYMENT_PARTITION: u32 = 1;

/// Most resources in one deployment.
pub const MAX_RESOURCES_PER_DEPLOYMENT: usize = 100;

/// FNV-1a over the resource bytes: recognises a redeployment of identical content.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Engine {
    pub(crate) fn deploy(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        d: &DeploymentRecord,
    ) -> Result<(), Rejection> {
        if d.resources.is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                "Expected to deploy at least one resource, but none given".into(),
            ));
        }
        if d.resources.len() > MAX_RESOURCES_PER_DEPLOYMENT {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected at most {MAX_RESOURCES_PER_DEPLOYMENT} resources, but got {}",
                    d.resources.len()
                ),
            ));
        }
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        let mut ids = BTreeSet::new();
        let mut dmns = Vec::new();
        let mut decision_ids = BTreeMap::new();
        let mut drg_ids = BTreeMap::new();
        let mut forms = Vec::new();
        let mut form_ids = BTreeMap::new();
        for r in &d.resources {
            if is_form(&r.name) {
                match parse_form(r) {
                    Ok(parsed) => {
                        if let Some(first) = form_ids.insert(parsed.form_id.clone(), &r.name) {
                            problems.push(format!(
                                "Expected the form ids to be unique within a deployment but found a duplicated id '{}' in the resources '{first}' and '{}'.",
                                parsed.form_id, r.name
                            ));
                        }
                        forms.push(parsed);
                    }
                    Err(e) => problems.push(e),
                }
                continue;
            }
            if is_dmn(&r.name) {
                match parse_dmn(r) {
                    Ok(parsed) => {
                        let drg_id = parsed.drg.id().to_string();
                        if let Some(first) = drg_ids.insert(drg_id.clone(), &r.name) {
                            problems.push(format!(
                                "Expected the decision requirements ids to be unique within a deployment but found a duplicated id '{drg_id}' in the resources '{first}' and '{}'.",
                                r.name
                            ));
                        }
                        for (id, _) in parsed.drg.decisions() {
                            if let Some(first) = decision_ids.insert(id.to_string(), &r.name) {
                                problems.push(format!(
                                    "Expected the decision ids to be unique within a deployment but found a duplicated id '{id}' in the resources '{first}' and '{}'.",
                                    r.name
                                ));
                            }
                        }
                        dmns.push(parsed);
                    }
                    Err(e) => problems.push(e),
                }
                continue;
            }
            if !(r.name.ends_with(".bpmn") || r.name.ends_with(".xml")) {
                problems.push(format!(
                    "'{}': only BPMN (.bpmn, .xml), DMN (.dmn) and form (.form) resources are supported",
                    r.name
                ));
                continue;
            }
            match parse_bpmn(&r.name, &r.content) {
                Ok(processes) => {
                    for p in processes {
                        if !ids.insert(p.bpmn_process_id.clone()) {
                            problems.push(format!(
                                "'{}': process '{}' is defined more than once in the deployment",
                                r.name, p.bpmn_process_id
                            ));
                        }
                        parsed.push((r, p.bpmn_process_id.clone()));
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to deploy new resources, but encountered the following errors:\n{}",
                    problems.join("\n")
                ),
            ));
        }
        let deployment_key = self.state.keys.next_key();
        let mut drgs = Vec::new();
        let mut decisions = Vec::new();
        for parsed in &dmns {
            let (drg, metas) = self.deploy_drg(ctx, parsed);
            drgs.push(drg);
            decisions.extend(metas);
        }
        let forms = self.deploy_forms(ctx, deployment_key, &forms);
        let mut metadata = Vec::new();
        let mut resources_by_name: Vec<(&str, Arc<[u8]>)> = Vec::new();
        for (resource, id) in parsed {
            let sum = checksum(&resource.content);
            let latest = self
                .state
                .latest_process(&ctx.tenant, &id)
                .map(|p| p.metadata.clone());
            let meta = match latest {
                Some(m) if m.checksum == sum => ProcessMetadata {
                    duplicate: true,
                    resource_name: resource.name.clone(),
                    ..m
                },
                _ => ProcessMetadata {
                    bpmn_process_id: id.clone(),
                    version: self.state.highest_version(&ctx.tenant, &id) + 1,
                    process_definition_key: self.state.keys.next_key(),
                    resource_name: resource.name.clone(),
                    checksum: sum,
                    duplicate: false,
                },
            };
            if !meta.duplicate {
                let bytes = match resources_by_name.iter().find(|(n, _)| *n == resource.name) {
                    Some((_, b)) => b.clone(),
                    None => {
                        let b: Arc<[u8]> = Arc::from(resource.content.as_slice());
                        resources_by_name.push((&resource.name, b.clone()));
                        b
                    }
                };
                self.emit(
                    ctx,
                    meta.process_definition_key,
                    Intent::Created,
                    RecordValue::Process(ProcessRecord {
                        metadata: meta.clone(),
                        resource: bytes,
                    }),
                );
                // Timer start events run on the deployment partition only, as in Zeebe.
                if self.partition_id == DEPLOYMENT_PARTITION {
                    if let Some(def) = self.state.process(meta.process_definition_key).cloned() {
                        self.schedule_start_timers(ctx, &def);
                    }
                }
            }
            metadata.push(meta);
        }
        let record = DeploymentRecord {
            resources: d.resources.clone(),
            processes: metadata.clone(),
            decision_requirements: drgs.clone(),
            decisions: decisions.clone(),
            forms: forms.clone(),
        };
        self.emit(
            ctx,
            deployment_key,
            Intent::Created,
            RecordValue::Deployment(record.clone()),
        );
        self.distribute(
            ctx,
            deployment_key,
            Intent::Distribute,
            RecordValue::Deployment(record),
        );
        Self::respond(
            ctx,
            cmd,
            ResponseValue::Deployment {
                key: deployment_key,
                processes: metadata,
                decision_requirements: drgs,
                decisions,
                forms,
                tenant: ctx.tenant.clone(),
            },
        );
        Ok(())
    }

    pub(crate) fn receive_distribution(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        d: &DeploymentRecord,
    ) -> Result<(), Rejection> {
        let source = self.distribution_source(cmd)?;
        if self.state.distribution_received(source, cmd.key) {
            self.acknowledge_distribution(ctx, cmd, source);
            return Ok(());
        }
        self.receive_drgs(ctx, d)
            .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        self.receive_forms(ctx, d)
            .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        for meta in &d.processes {
            if meta.duplicate || self.state.process(meta.process_definition_key).is_some() {
                continue;
            }
            let resource = distributed_resource(d, &meta.resource_name)
                .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
            if let Err(e) = parse_bpmn(&resource.name, &resource.content) {
                return Err(rejection(RejectionType::InvalidArgument, e.to_string()));
            }
            self.emit(
                ctx,
                meta.process_definition_key,
                Intent::Created,
                RecordValue::Process(ProcessRecord {
                    metadata: meta.clone(),
                    resource: Arc::from(resource.content.as_slice()),
                }),
            );
        }
        self.emit(
            ctx,
            cmd.key,
            Intent::Distributed,
            RecordValue::Deployment(d.clone()),
        );
        self.acknowledge_distribution(ctx, cmd, source);
        Ok(())
    }

    pub(crate) fn create_instance(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        c: &ProcessInstanceCreationRecord,
        await_result: bool,
    ) -> Result<(), Rejection> {
        let def = if c.process_definition_key >= 0 {
            let key = c.process_definition_key;
            if self.state.is_deleting(key) {
                return Err(rejection(
                    RejectionType::NotFound,
                    format!("Expected to find process definition with key '{key}', but it is being deleted"),
                ));
            }
            self.definition(key)?
        } else {
            let found = if c.version < 0 {
                self.state.latest_process(&ctx.tenant, &c.bpmn_process_id)
            } else {
                self.state
                    .process_version(&ctx.tenant, &c.bpmn_process_id, c.version)
            };
            found.cloned().ok_or_else(|| {
                let version = if c.version < 0 { "latest".to_string() } else { c.version.to_string() };
                rejection(
                    RejectionType::NotFound,
                    format!(
                        "Expected to find process definition with process ID '{}' and version '{version}', but none found",
                        c.bpmn_process_id
                    ),
                )
            })?
        };
        let start_at = self.validate_start_instructions(&def, &c.start_instructions)?;
        if start_at.is_empty() && def.model.element(0).start_event.is_none() {
            return Err(rejection(
                RejectionType::InvalidState,
                format!(
                    "Expected to create instance of process with none start event, but process '{}' has only message, timer or signal start events",
                    def.metadata.bpmn_process_id
                ),
            ));
        }
        let vars = parse_document(&c.variables)
            .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        let pi_key = self.state.keys.next_key();
        let created = ProcessInstanceCreationRecord {
            bpmn_process_id: def.metadata.bpmn_process_id.to_string(),
            version: def.metadata.version,
            process_definition_key: def.metadata.process_definition_key,
            process_instance_key: pi_key,
            variables: c.variables.clone(),
            fetch_variables: c.fetch_variables.clone(),
            await_result,
            start_instructions: c.start_instructions.clone(),
        };
        let request = if await_result { cmd.request_id } else { None };
        self.emit_for(
            ctx,
            pi_key,
            Intent::Created,
            RecordValue::ProcessInstanceCreation(created),
            request,
        );
        for (name, value) in vars {
            let key = self.state.keys.next_key();
            self.emit(
                ctx,
                key,
                Intent::Created,
                RecordValue::Variable(VariableRecord {
                    name,
                    value: value.get().to_string(),
                    scope_key: pi_key,
                    process_instance_key: pi_key,
                    process_definition_key: def.metadata.process_definition_key,
                    bpmn_process_id: def.metadata.bpmn_process_id.clone(),
                }),
            );
        }
        if start_at.is_empty() {
            ctx.steps.push_back(Step::Activate {
                process_definition_key: def.metadata.process_definition_key,
                element: 0,
                flow_scope_key: NO_KEY,
                process_instance_key: pi_key,
                key: pi_key,
            });
        } else {
            self.start_at(ctx, &def, pi_key, &start_at);
        }
        if !await_result {
            Self::respond(
                ctx,
                cmd,
                ResponseValue::ProcessInstanceCreated {
                    process_definition_key: def.metadata.process_definition_key,
                    bpmn_process_id: def.metadata.bpmn_process_id.clone(),
                    version: def.metadata.version,
                    process_instance_key: pi_key,
                    tenant: ctx.tenant.clone(),
                },
            );
        }
        Ok(())
    }

    pub(crate) fn cancel_instance(&mut self, ctx: &mut Ctx, cmd: &Record) -> Result<(), Rejection> {
        let key = cmd.key;
        let not_found = || {
            rejection(
                RejectionType::NotFound,
                format!("Expected to cancel a process instance with key '{key}', but no such process instance was found"),
            )
        };
        let inst = self.state.instances.get(&key).ok_or_else(not_found)?;
        if inst.flow_scope_key != NO_KEY {
            return Err(not_found());
        }
        if inst.parent_element_instance_key != NO_KEY {
            return Err(rejection(
                RejectionType::InvalidState,
                format!("Expected to cancel a process instance with key '{key}', but it is created by a parent process instance. Cancel the root process instance instead."),
            ));
        }
        if inst.state == crate::state::ElementState::Terminating {
            return Err(rejection(
                RejectionType::InvalidState,
                format!("Expected to cancel process instance '{key}', but it is already being terminated"),
            ));
        }
        ctx.steps.push_back(Step::Terminate(key));
        Self::respond(
            ctx,
            cmd,
            ResponseValue::ProcessInstanceCanceled {
                process_instance_key: key,
            },
        );
        Ok(())
    }

    pub(crate) fn set_variables(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        d: &VariableDocumentRecord,
    ) -> Result<(), Rejection> {
        let scope = d.scope_key;
        let pi_key = self
            .state
            .instances
            .get(&scope)
            .map(|i| i.process_instance_key)
            .ok_or_else(|| {
                rejection(
                    RejectionType::NotFound,
                    format!("Expected to update variables for element with key '{scope}', but no such element was found"),
                )
            })?;
        let vars = parse_document(&d.variables)
            .map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::Updated,
            RecordValue::VariableDocument(d.clone()),
        );
        for (name, value) in vars {
            if d.local {
                self.set_local(ctx, scope, pi_key, &name, value.get());
            } else {
                self.merge(ctx, scope, pi_key, &name, value.get());
            }
        }
        Self::respond(ctx, cmd, ResponseValue::VariablesSet { key });
        Ok(())
    }
}
