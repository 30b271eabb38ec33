//! Evaluating deployed decisions: business rule tasks with
//! `zeebe:calledDecision` and the EvaluateDecision command.
//!
//! ```text
//! business rule task, activating (after input mappings):
//!   decision id (static or FEEL) -> decision by binding (latest | deployment | versionTag)
//!     not found: incident CALLED_DECISION_ERROR
//!   evaluate with the visible variables at the command's timestamp, engine zone
//!   DECISION_EVALUATION EVALUATED (or FAILED, then incident DECISION_EVALUATION_ERROR)
//!   ELEMENT_ACTIVATED, result variable, complete (output mappings apply)
//! DECISION_EVALUATION EVALUATE (by key, else latest by id):
//!   not found: rejection NOT_FOUND; else EVALUATED or FAILED, answered with it
//! ```
//!
//! Resolving an incident runs the activation again, so the decision is
//! evaluated anew with the variables as they are then.

use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::model::{CalledDecision, DecisionBinding};
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::DeployedProcess;
use std::sync::Arc;

/// Where an evaluation comes from: a business rule task, or a client.
struct Origin<'a> {
    process: Option<(&'a DeployedProcess, i64, i64)>,
    variables: String,
}

impl Engine {
    /// Runs the called decision of business rule task instance `key`.
    pub(crate) fn activate_business_rule_task(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        pi_key: i64,
        called: &CalledDecision,
        result_is_local: bool,
    ) {
        let decision_id = {
            let vars = self.visible(key);
            crate::events::evaluate_text(&called.decision_id, &vars, &self.clock, "decision id")
        };
        let decision_id = match decision_id {
            Ok(id) => id,
            Err(message) => {
                return self.raise_incident(ctx, key, ErrorType::ExtractValueError, message, NO_KEY)
            }
        };
        let decisions = &self.state.decisions;
        let tenant = self
            .state
            .process_tenant(def.metadata.process_definition_key);
        let found = match &called.binding {
            DecisionBinding::Latest => decisions.latest_decision(&tenant, &decision_id).ok_or_else(|| {
                format!("Expected to evaluate decision '{decision_id}', but no decision found for id '{decision_id}'")
            }),
            DecisionBinding::Deployment => decisions
                .decision_of_deployment(def.metadata.process_definition_key, &decision_id)
                .ok_or_else(|| {
                    format!(
                        "Expected to evaluate decision '{decision_id}' with binding type 'deployment', but no such decision found in the deployment which contained the current process. To resolve this incident, deploy the decision together with the process."
                    )
                }),
            DecisionBinding::VersionTag(tag) => decisions
                .decision_with_tag(&tenant, &decision_id, tag)
                .ok_or_else(|| {
                    format!(
                        "Expected to evaluate decision with id '{decision_id}' and version tag '{tag}', but no such decision found. To resolve this incident, deploy a decision with the given id and version tag."
                    )
                }),
        };
        let decision = match found {
            Ok(d) => d.clone(),
            Err(message) => {
                return self.raise_incident(
                    ctx,
                    key,
                    ErrorType::CalledDecisionError,
                    message,
                    NO_KEY,
                )
            }
        };
        let origin = Origin {
            process: Some((def, pi_key, key)),
            variables: String::new(),
        };
        let (_, evaluation) = self.evaluate(ctx, &decision, &origin);
        if !evaluation.evaluation_failure_message.is_empty() {
            let message = evaluation.evaluation_failure_message.clone();
            return self.raise_incident(
                ctx,
                key,
                ErrorType::DecisionEvaluationError,
                message,
                NO_KEY,
            );
        }
        self.element_event(ctx, def, key, Intent::ElementActivated);
        let output = evaluation.decision_output;
        if result_is_local {
            self.set_local(ctx, key, pi_key, &called.result_variable, &output);
        } else {
            self.merge(ctx, key, pi_key, &called.result_variable, &output);
        }
        self.complete(ctx, key, None);
    }

    /// DECISION_EVALUATION EVALUATE (EvaluateDecision).
    pub(crate) fn evaluate_decision_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        e: &DecisionEvaluationRecord,
    ) -> Result<(), Rejection> {
        let decisions = &self.state.decisions;
        let decision = if e.decision_key >= 0 {
            decisions.decision(e.decision_key).ok_or_else(|| {
                let key = e.decision_key;
                rejection(
                    RejectionType::NotFound,
                    format!("Expected to evaluate decision '{key}', but no decision found for key '{key}'"),
                )
            })?
        } else if e.decision_id.is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                "Expected either a decision id or a valid decision key, but none provided".into(),
            ));
        } else {
            let id = &e.decision_id;
            decisions.latest_decision(&ctx.tenant, id).ok_or_else(|| {
                rejection(
                    RejectionType::NotFound,
                    format!("Expected to evaluate decision '{id}', but no decision found for id '{id}'"),
                )
            })?
        }
        .clone();
        parse_document(&e.variables).map_err(|m| rejection(RejectionType::InvalidArgument, m))?;
        let origin = Origin {
            process: None,
            variables: e.variables.clone(),
        };
        let (key, evaluation) = self.evaluate(ctx, &decision, &origin);
        Self::respond(
            ctx,
            cmd,
            ResponseValue::DecisionEvaluated {
                key,
                evaluation: Box::new(evaluation),
                tenant: ctx.tenant.clone(),
            },
        );
        Ok(())
    }

    /// Evaluates `decision` and writes `DECISION_EVALUATION EVALUATED` or
    /// `FAILED`; returns the event's key and value.
    fn evaluate(
        &mut self,
        ctx: &mut Ctx,
        decision: &DecisionMetadata,
        origin: &Origin,
    ) -> (i64, DecisionEvaluationRecord) {
        let drg = self
            .state
            .decisions
            .drg(decision.decision_requirements_key)
            .cloned()
            .expect("a deployed decision's DRG is deployed");
        let zone = self.time_zone().to_string();
        let result = match origin.process {
            Some((_, _, element_instance_key)) => {
                let vars = self.visible(element_instance_key);
                drg.drg.evaluate(
                    &decision.decision_id,
                    &feel::JsonTextVariables(&vars),
                    ctx.timestamp_ms,
                    &zone,
                )
            }
            None => {
                let pairs = parse_document(&origin.variables).unwrap_or_default();
                let vars: Vec<(&str, &str)> =
                    pairs.iter().map(|(n, v)| (n.as_str(), v.get())).collect();
                drg.drg.evaluate(
                    &decision.decision_id,
                    &feel::JsonTextVariables(&vars),
                    ctx.timestamp_ms,
                    &zone,
                )
            }
        };
        let evaluation_key = self.state.keys.next_key();
        let empty: Arc<str> = Arc::from("");
        let mut value = DecisionEvaluationRecord {
            decision_key: decision.decision_key,
            decision_id: decision.decision_id.clone(),
            decision_name: decision.decision_name.clone(),
            decision_version: decision.version,
            decision_requirements_id: decision.decision_requirements_id.clone(),
            decision_requirements_key: decision.decision_requirements_key,
            decision_output: String::new(),
            variables: origin.variables.clone(),
            bpmn_process_id: empty.clone(),
            process_definition_key: NO_KEY,
            process_instance_key: NO_KEY,
            element_id: empty,
            element_instance_key: NO_KEY,
            evaluated_decisions: Vec::new(),
            evaluation_failure_message: String::new(),
            failed_decision_id: String::new(),
        };
        if let Some((def, pi_key, element_instance_key)) = origin.process {
            value.bpmn_process_id = def.metadata.bpmn_process_id.clone();
            value.process_definition_key = def.metadata.process_definition_key;
            value.process_instance_key = pi_key;
            value.element_instance_key = element_instance_key;
            if let Some(inst) = self.state.instances.get(&element_instance_key) {
                value.element_id = def.model.element(inst.element).id.clone();
            }
        }
        let intent = match result {
            Ok(result) => {
                value.decision_output = feel::to_json(&result.output).to_string();
                value.evaluated_decisions = result
                    .decisions
                    .iter()
                    .enumerate()
                    .map(|(i, d)| self.evaluated_value(decision, d, evaluation_key, i + 1))
                    .collect();
                Intent::Evaluated
            }
            Err(failure) => {
                // Zeebe's record leaves the output nil: JSON `null`.
                value.decision_output = String::from("null");
                value.evaluation_failure_message = failure.message;
                value.failed_decision_id = failure.decision_id.to_string();
                Intent::Failed
            }
        };
        self.emit(
            ctx,
            evaluation_key,
            intent,
            RecordValue::DecisionEvaluation(Box::new(value.clone())),
        );
        (evaluation_key, value)
    }

    /// The record of one evaluated decision, with the key and version of
    /// the deployed decision of that id in the same DRG.
    fn evaluated_value(
        &self,
        requested: &DecisionMetadata,
        d: &dmn::EvaluatedDecision,
        evaluation_key: i64,
        index: usize,
    ) -> EvaluatedDecisionValue {
        let decisions = &self.state.decisions;
        let deployed = decisions
            .decisions_of(requested.decision_requirements_key)
            .into_iter()
            .filter_map(|k| decisions.decision(k))
            .find(|m| *m.decision_id == *d.id);
        let json = |v: &feel::Value| feel::to_json(v).to_string();
        EvaluatedDecisionValue {
            decision_id: d.id.to_string(),
            decision_name: d.name.to_string(),
            decision_key: deployed.map_or(NO_KEY, |m| m.decision_key),
            decision_version: deployed.map_or(-1, |m| m.version),
            decision_type: d.decision_type.to_string(),
            decision_output: json(&d.output),
            decision_evaluation_instance_key: format!("{evaluation_key}-{index}"),
            evaluated_inputs: d
                .inputs
                .iter()
                .map(|i| EvaluatedInputValue {
                    input_id: i.id.to_string(),
                    input_name: i.name.to_string(),
                    input_value: json(&i.value),
                })
                .collect(),
            matched_rules: d
                .matched_rules
                .iter()
                .map(|r| MatchedRuleValue {
                    rule_id: r.id.to_string(),
                    rule_index: i32::try_from(r.index).unwrap_or(i32::MAX),
                    evaluated_outputs: r
                        .outputs
                        .iter()
                        .map(|o| EvaluatedOutputValue {
                            output_id: o.id.to_string(),
                            output_name: o.name.to_string(),
                            output_value: json(&o.value),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
