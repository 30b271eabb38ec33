//! The gRPC messages of deployments and decision evaluations, built from the
//! engine's responses: `DeployResourceResponse` with its process, decision,
//! decision requirements and form entries (in that order, as Zeebe's gateway
//! lists them), and `EvaluateDecisionResponse`.
//!
//! Pure functions; used on the shard thread of the partition leader.

use engine::{
    DecisionEvaluationRecord, DecisionMetadata, DecisionRequirementsMetadata, ProcessMetadata,
};

use crate::gateway::proto;

/// `DeployResourceResponse` of deployment `key`.
pub fn deployed(
    key: i64,
    processes: Vec<ProcessMetadata>,
    decision_requirements: Vec<DecisionRequirementsMetadata>,
    decisions: Vec<DecisionMetadata>,
    forms: Vec<engine::forms::FormMetadata>,
    tenant: &engine::Tenant,
) -> proto::DeployResourceResponse {
    use proto::deployment::Metadata;
    let processes = processes.into_iter().map(|p| {
        Metadata::Process(proto::ProcessMetadata {
            bpmn_process_id: p.bpmn_process_id.to_string(),
            version: p.version,
            process_definition_key: p.process_definition_key,
            resource_name: p.resource_name,
            tenant_id: tenant.to_string(),
        })
    });
    let decisions = decisions.into_iter().map(|d| {
        Metadata::Decision(proto::DecisionMetadata {
            dmn_decision_id: d.decision_id.to_string(),
            dmn_decision_name: d.decision_name.to_string(),
            version: d.version,
            decision_key: d.decision_key,
            dmn_decision_requirements_id: d.decision_requirements_id.to_string(),
            decision_requirements_key: d.decision_requirements_key,
            tenant_id: tenant.to_string(),
        })
    });
    let drgs = decision_requirements.into_iter().map(|r| {
        Metadata::DecisionRequirements(proto::DecisionRequirementsMetadata {
            dmn_decision_requirements_id: r.decision_requirements_id.to_string(),
            dmn_decision_requirements_name: r.decision_requirements_name,
            version: r.decision_requirements_version,
            decision_requirements_key: r.decision_requirements_key,
            resource_name: r.resource_name,
            tenant_id: tenant.to_string(),
        })
    });
    let forms = forms.into_iter().map(|f| {
        Metadata::Form(proto::FormMetadata {
            form_id: f.form_id.to_string(),
            version: f.version,
            form_key: f.form_key,
            resource_name: f.resource_name,
            tenant_id: tenant.to_string(),
        })
    });
    proto::DeployResourceResponse {
        key,
        deployments: processes
            .chain(decisions)
            .chain(drgs)
            .chain(forms)
            .map(|m| proto::Deployment { metadata: Some(m) })
            .collect(),
        tenant_id: tenant.to_string(),
    }
}

/// `EvaluateDecisionResponse` of evaluation `key` (the decision instance key).
pub fn evaluated(
    key: i64,
    e: DecisionEvaluationRecord,
    tenant: &engine::Tenant,
) -> proto::EvaluateDecisionResponse {
    proto::EvaluateDecisionResponse {
        decision_key: e.decision_key,
        decision_id: e.decision_id.to_string(),
        decision_name: e.decision_name.to_string(),
        decision_version: e.decision_version,
        decision_requirements_id: e.decision_requirements_id.to_string(),
        decision_requirements_key: e.decision_requirements_key,
        decision_output: e.decision_output,
        evaluated_decisions: e
            .evaluated_decisions
            .into_iter()
            .map(|d| proto::EvaluatedDecision {
                decision_key: d.decision_key,
                decision_id: d.decision_id,
                decision_name: d.decision_name,
                decision_version: d.decision_version,
                decision_type: d.decision_type,
                decision_output: d.decision_output,
                matched_rules: d
                    .matched_rules
                    .into_iter()
                    .map(|r| proto::MatchedDecisionRule {
                        rule_id: r.rule_id,
                        rule_index: r.rule_index,
                        evaluated_outputs: r
                            .evaluated_outputs
                            .into_iter()
                            .map(|o| proto::EvaluatedDecisionOutput {
                                output_id: o.output_id,
                                output_name: o.output_name,
                                output_value: o.output_value,
                            })
                            .collect(),
                    })
                    .collect(),
                evaluated_inputs: d
                    .evaluated_inputs
                    .into_iter()
                    .map(|i| proto::EvaluatedDecisionInput {
                        input_id: i.input_id,
                        input_name: i.input_name,
                        input_value: i.input_value,
                    })
                    .collect(),
                tenant_id: tenant.to_string(),
            })
            .collect(),
        failed_decision_id: e.failed_decision_id,
        failure_message: e.evaluation_failure_message,
        tenant_id: tenant.to_string(),
        decision_instance_key: key,
    }
}
