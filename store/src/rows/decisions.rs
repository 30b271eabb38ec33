//! Rows of the DMN records: a deployed DRG (`decision_requirements`, with
//! its XML), each of its decisions (`decision_definition`), and per
//! evaluation one `decision_instance` row for every decision evaluated on
//! the way, keyed `<evaluation key>-<n>` as Zeebe's
//! `decisionEvaluationInstanceKey`.

use engine::{DecisionEvaluationRecord, DecisionMetadata, DecisionRequirementsRecord, Intent};

use super::{optional_key, Batch, Row};
use crate::upsert::{Table, Val};

pub(super) static DECISION_REQUIREMENTS: Table = Table {
    name: "decision_requirements",
    columns: &[
        "decision_requirements_key",
        "decision_requirements_id",
        "name",
        "version",
        "resource_name",
        "xml",
        "tenant_id",
    ],
    key_columns: 1,
    keep_first: &[],
    on_conflict: "DO NOTHING",
};

pub(super) static DECISION_DEFINITION: Table = Table {
    name: "decision_definition",
    columns: &[
        "decision_definition_key",
        "decision_definition_id",
        "name",
        "version",
        "decision_requirements_key",
        "decision_requirements_id",
        "tenant_id",
    ],
    key_columns: 1,
    keep_first: &[],
    on_conflict: "DO NOTHING",
};

pub(super) static DECISION_INSTANCE: Table = Table {
    name: "decision_instance",
    columns: &[
        "decision_instance_id",
        "decision_instance_key",
        "state",
        "evaluation_ms",
        "evaluation_failure",
        "decision_definition_key",
        "decision_definition_id",
        "decision_definition_name",
        "decision_definition_version",
        "decision_type",
        "result",
        "evaluated_inputs",
        "matched_rules",
        "root_decision_definition_key",
        "process_definition_key",
        "process_instance_key",
        "element_instance_key",
        "tenant_id",
        "partition_id",
        "position",
    ],
    key_columns: 1,
    keep_first: &[],
    // An evaluation is written once; a record exported again changes nothing.
    on_conflict: "DO NOTHING",
};

/// `DELETE` statements for the deletion of a DRG and of a decision.
pub(super) const DELETE_REQUIREMENTS: &str =
    "DELETE FROM decision_requirements WHERE decision_requirements_key = $1";
pub(super) const DELETE_DECISION: &str =
    "DELETE FROM decision_definition WHERE decision_definition_key = $1";

impl Batch {
    pub(super) fn decision_requirements(&mut self, at: &Row, r: &DecisionRequirementsRecord) {
        let m = &r.metadata;
        match at.intent {
            Intent::Created => self.decision_requirements.push(vec![
                m.decision_requirements_key.into(),
                m.decision_requirements_id.as_ref().into(),
                text(&m.decision_requirements_name),
                i64::from(m.decision_requirements_version).into(),
                m.resource_name.as_str().into(),
                Val::Text(Some(String::from_utf8_lossy(&r.resource).into_owned())),
                at.tenant.as_str().into(),
            ]),
            Intent::Deleted => {
                let key = [m.decision_requirements_key.into()];
                self.decision_requirements.remove(&key);
                self.deleted
                    .push((DELETE_REQUIREMENTS, m.decision_requirements_key));
            }
            _ => {}
        }
    }

    pub(super) fn decision(&mut self, at: &Row, d: &DecisionMetadata) {
        match at.intent {
            Intent::Created => self.decision_definitions.push(vec![
                d.decision_key.into(),
                d.decision_id.as_ref().into(),
                text(&d.decision_name),
                i64::from(d.version).into(),
                d.decision_requirements_key.into(),
                d.decision_requirements_id.as_ref().into(),
                at.tenant.as_str().into(),
            ]),
            Intent::Deleted => {
                self.decision_definitions.remove(&[d.decision_key.into()]);
                self.deleted.push((DELETE_DECISION, d.decision_key));
            }
            _ => {}
        }
    }

    pub(super) fn decision_evaluation(&mut self, at: &Row, e: &DecisionEvaluationRecord) {
        let failed = match at.intent {
            Intent::Evaluated => false,
            Intent::Failed => true,
            _ => return,
        };
        // The decision called first is the root; the others are its required
        // decisions, evaluated on the way.
        let root = e
            .evaluated_decisions
            .iter()
            .find(|d| *d.decision_id == *e.decision_id)
            .map_or(e.decision_key, |d| d.decision_key);
        for (i, d) in e.evaluated_decisions.iter().enumerate() {
            let id = if d.decision_evaluation_instance_key.is_empty() {
                format!("{}-{}", at.key, i + 1)
            } else {
                d.decision_evaluation_instance_key.clone()
            };
            // The failure belongs to the decision that failed.
            let this_failed = failed && d.decision_id == e.failed_decision_id;
            let inputs: Vec<serde_json::Value> = d
                .evaluated_inputs
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "inputId": v.input_id,
                        "inputName": v.input_name,
                        "inputValue": v.input_value,
                    })
                })
                .collect();
            let rules: Vec<serde_json::Value> = d
                .matched_rules
                .iter()
                .map(|r| {
                    let outputs: Vec<serde_json::Value> = r
                        .evaluated_outputs
                        .iter()
                        .map(|o| {
                            serde_json::json!({
                                "outputId": o.output_id,
                                "outputName": o.output_name,
                                "outputValue": o.output_value,
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "ruleId": r.rule_id,
                        "ruleIndex": r.rule_index,
                        "evaluatedOutputs": outputs,
                    })
                })
                .collect();
            self.decision_instances.push(vec![
                id.as_str().into(),
                at.key.into(),
                if this_failed { "FAILED" } else { "EVALUATED" }.into(),
                at.time_ms.into(),
                if this_failed {
                    text(&e.evaluation_failure_message)
                } else {
                    Val::Text(None)
                },
                optional_key(d.decision_key).into(),
                d.decision_id.as_str().into(),
                text(&d.decision_name),
                (d.decision_version > 0)
                    .then_some(i64::from(d.decision_version))
                    .into(),
                d.decision_type.as_str().into(),
                text(&d.decision_output),
                serde_json::Value::from(inputs).to_string().as_str().into(),
                serde_json::Value::from(rules).to_string().as_str().into(),
                optional_key(root).into(),
                optional_key(e.process_definition_key).into(),
                optional_key(e.process_instance_key).into(),
                optional_key(e.element_instance_key).into(),
                at.tenant.as_str().into(),
                at.partition.into(),
                at.position.into(),
            ]);
        }
        // A failure before any decision ran (a required decision missing)
        // still leaves a trace of the one called.
        if e.evaluated_decisions.is_empty() && failed {
            self.decision_instances.push(vec![
                format!("{}-1", at.key).as_str().into(),
                at.key.into(),
                "FAILED".into(),
                at.time_ms.into(),
                text(&e.evaluation_failure_message),
                optional_key(e.decision_key).into(),
                e.decision_id.as_ref().into(),
                text(&e.decision_name),
                (e.decision_version > 0)
                    .then_some(i64::from(e.decision_version))
                    .into(),
                "UNSPECIFIED".into(),
                Val::Text(None),
                "[]".into(),
                "[]".into(),
                optional_key(e.decision_key).into(),
                optional_key(e.process_definition_key).into(),
                optional_key(e.process_instance_key).into(),
                optional_key(e.element_instance_key).into(),
                at.tenant.as_str().into(),
                at.partition.into(),
                at.position.into(),
            ]);
        }
    }
}

fn text(s: &str) -> Val {
    Val::Text((!s.is_empty()).then(|| s.to_string()))
}
