//! Record values of DMN decisions, modelled on Zeebe's
//! `DecisionRequirementsRecord`, `DecisionRecord` and
//! `DecisionEvaluationRecord`:
//!
//! ```text
//! DECISION_REQUIREMENTS CREATED | DELETED   one per deployed .dmn resource (DRG)
//! DECISION CREATED | DELETED                one per <decision> of a DRG
//! DECISION_EVALUATION EVALUATE (command)    EvaluateDecision by key or id
//! DECISION_EVALUATION EVALUATED | FAILED    a business rule task or EvaluateDecision
//! ```
//!
//! Outputs and values are JSON text, as Zeebe's records carry them.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A DRG that a deployment produced (Zeebe's `DecisionRequirementsMetadata`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRequirementsMetadata {
    /// `definitions id` of the DMN resource.
    pub decision_requirements_id: Arc<str>,
    /// `definitions name`.
    pub decision_requirements_name: String,
    /// Version, starting at 1 per DRG id.
    pub decision_requirements_version: i32,
    /// Key of the DRG.
    pub decision_requirements_key: i64,
    /// `definitions namespace`.
    pub namespace: String,
    /// Name of the resource.
    pub resource_name: String,
    /// Checksum of the resource, to recognise a redeployment of identical content.
    pub checksum: u64,
    /// True when the same content was deployed before: key and version are the old ones.
    pub duplicate: bool,
}

/// A decision that a deployment produced (Zeebe's `DecisionRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionMetadata {
    /// `decision id`.
    pub decision_id: Arc<str>,
    /// `decision name`.
    pub decision_name: Arc<str>,
    /// Version, starting at 1 per decision id.
    pub version: i32,
    /// Key of the decision.
    pub decision_key: i64,
    /// Id of its DRG.
    pub decision_requirements_id: Arc<str>,
    /// Key of its DRG.
    pub decision_requirements_key: i64,
    /// `zeebe:versionTag value` of the decision, empty when none.
    pub version_tag: String,
    /// True when the same content was deployed before: key and version are the old ones.
    pub duplicate: bool,
}

/// `DECISION_REQUIREMENTS` value: one DRG with its resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRequirementsRecord {
    /// Identity and version.
    pub metadata: DecisionRequirementsMetadata,
    /// The DMN XML (empty in `DELETED`).
    pub resource: Arc<[u8]>,
}

/// An evaluated decision table input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatedInputValue {
    /// Input id.
    pub input_id: String,
    /// Input label (or expression text).
    pub input_name: String,
    /// Value as JSON text.
    pub input_value: String,
}

/// An evaluated output of a matched rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatedOutputValue {
    /// Output id.
    pub output_id: String,
    /// Output name.
    pub output_name: String,
    /// Value as JSON text.
    pub output_value: String,
}

/// A matched rule of a decision table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRuleValue {
    /// Rule id.
    pub rule_id: String,
    /// 1-based position in the table.
    pub rule_index: i32,
    /// Its outputs.
    pub evaluated_outputs: Vec<EvaluatedOutputValue>,
}

/// One decision evaluated on the way (Zeebe's `EvaluatedDecisionRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatedDecisionValue {
    /// Decision id.
    pub decision_id: String,
    /// Decision name.
    pub decision_name: String,
    /// Key of the decision, `-1` when not deployed as such.
    pub decision_key: i64,
    /// Version of the decision, `-1` when not deployed as such.
    pub decision_version: i32,
    /// `DECISION_TABLE`, `LITERAL_EXPRESSION`, ...
    pub decision_type: String,
    /// Output as JSON text.
    pub decision_output: String,
    /// `<evaluation key>-<1-based index>`.
    pub decision_evaluation_instance_key: String,
    /// Inputs (decision tables).
    pub evaluated_inputs: Vec<EvaluatedInputValue>,
    /// Matched rules (decision tables).
    pub matched_rules: Vec<MatchedRuleValue>,
}

/// `DECISION_EVALUATION` value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvaluationRecord {
    /// Key of the evaluated decision (`EVALUATE`: the one asked for, or `-1`).
    pub decision_key: i64,
    /// Id of the evaluated decision (`EVALUATE`: used when the key is `-1`).
    pub decision_id: Arc<str>,
    /// Its name.
    pub decision_name: Arc<str>,
    /// Its version.
    pub decision_version: i32,
    /// Id of its DRG.
    pub decision_requirements_id: Arc<str>,
    /// Key of its DRG.
    pub decision_requirements_key: i64,
    /// Output as JSON text (`null` when `FAILED`, empty in `EVALUATE`).
    pub decision_output: String,
    /// Variables of an `EVALUATE` command (JSON object), else empty.
    pub variables: String,
    /// Process of the business rule task, else empty.
    pub bpmn_process_id: Arc<str>,
    /// Process definition, else `-1`.
    pub process_definition_key: i64,
    /// Process instance, else `-1`.
    pub process_instance_key: i64,
    /// The business rule task, else empty.
    pub element_id: Arc<str>,
    /// Its element instance, else `-1`.
    pub element_instance_key: i64,
    /// Decisions evaluated, required ones first.
    pub evaluated_decisions: Vec<EvaluatedDecisionValue>,
    /// Why the evaluation failed (`FAILED`), else empty.
    pub evaluation_failure_message: String,
    /// The decision that failed (`FAILED`), else empty.
    pub failed_decision_id: String,
}

impl DecisionEvaluationRecord {
    /// An `EVALUATE` command value: by `decision_key` (if not `-1`), else by
    /// `decision_id` (latest version).
    pub fn command(decision_key: i64, decision_id: &str, variables: String) -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            decision_key,
            decision_id: Arc::from(decision_id),
            decision_name: empty.clone(),
            decision_version: -1,
            decision_requirements_id: empty.clone(),
            decision_requirements_key: crate::record::NO_KEY,
            decision_output: String::new(),
            variables,
            bpmn_process_id: empty.clone(),
            process_definition_key: crate::record::NO_KEY,
            process_instance_key: crate::record::NO_KEY,
            element_id: empty,
            element_instance_key: crate::record::NO_KEY,
            evaluated_decisions: Vec::new(),
            evaluation_failure_message: String::new(),
            failed_decision_id: String::new(),
        }
    }
}
