//! What an evaluation reports: the output and every decision evaluated on
//! the way, in evaluation order (required decisions first) — the shape of
//! Zeebe's `EvaluatedDecisionRecord` with its inputs and matched rules.

use feel::Value;
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// A successful evaluation.
#[derive(Debug)]
pub struct EvaluationResult {
    /// The requested decision's output.
    pub output: Value,
    /// Decisions evaluated, required decisions first; the last is the
    /// requested one.
    pub decisions: Vec<EvaluatedDecision>,
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvaluationFailure {
    /// Id of the decision whose evaluation failed.
    pub decision_id: Arc<str>,
    /// Zeebe's incident text: "Expected to evaluate decision '<id>', but ...".
    pub message: String,
}

/// One evaluated decision.
#[derive(Debug, Clone)]
pub struct EvaluatedDecision {
    /// Decision id.
    pub id: Arc<str>,
    /// Decision name.
    pub name: Arc<str>,
    /// `DECISION_TABLE`, `LITERAL_EXPRESSION`, `CONTEXT`, ...
    pub decision_type: &'static str,
    /// The decision's output.
    pub output: Value,
    /// Evaluated inputs (decision tables only).
    pub inputs: Vec<EvaluatedInput>,
    /// Matched rules (decision tables only).
    pub matched_rules: Vec<MatchedRule>,
}

/// An evaluated decision table input.
#[derive(Debug, Clone)]
pub struct EvaluatedInput {
    /// Input id.
    pub id: Arc<str>,
    /// Input label (or expression text).
    pub name: Arc<str>,
    /// Its value.
    pub value: Value,
}

/// A matched rule.
#[derive(Debug, Clone)]
pub struct MatchedRule {
    /// Rule id.
    pub id: Arc<str>,
    /// 1-based position in the table.
    pub index: usize,
    /// Its evaluated outputs.
    pub outputs: Vec<EvaluatedOutput>,
}

/// An evaluated output entry of a matched rule.
#[derive(Debug, Clone)]
pub struct EvaluatedOutput {
    /// Output id.
    pub id: Arc<str>,
    /// Output name.
    pub name: Arc<str>,
    /// Its value.
    pub value: Value,
}

impl EvaluatedDecision {
    /// The record as JSON, with Zeebe's field names (values as JSON, not
    /// as their JSON text).
    pub fn to_json(&self) -> Json {
        json!({
            "decisionId": &*self.id,
            "decisionName": &*self.name,
            "decisionType": self.decision_type,
            "decisionOutput": feel::to_json(&self.output),
            "evaluatedInputs": self.inputs.iter().map(|i| json!({
                "inputId": &*i.id,
                "inputName": &*i.name,
                "inputValue": feel::to_json(&i.value),
            })).collect::<Vec<_>>(),
            "matchedRules": self.matched_rules.iter().map(|r| json!({
                "ruleId": &*r.id,
                "ruleIndex": r.index,
                "evaluatedOutputs": r.outputs.iter().map(|o| json!({
                    "outputId": &*o.id,
                    "outputName": &*o.name,
                    "outputValue": feel::to_json(&o.value),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}
