//! The result a worker gives when it completes a task listener job
//! (`CompleteJobRequest.result` over gRPC, `result` of
//! `POST /v2/jobs/{jobKey}/completion` over REST): deny the user task
//! transition, or correct the task's attributes. Both surfaces translate it
//! into the engine's [`engine::JobResult`], naming each corrected attribute
//! as Zeebe's record does (`candidateUsersList`, `candidateGroupsList`).

use crate::command::CommandError;
use crate::gateway::proto;
use serde_json::Value;

/// Result types Zeebe knows; only user task results are supported here.
const USER_TASK: &str = "userTask";

fn check_type(kind: Option<&str>) -> Result<(), String> {
    match kind {
        None | Some("") | Some(USER_TASK) => Ok(()),
        Some("adHocSubProcess") => Err(
            "Property 'result.type' is invalid: ad-hoc sub-process job results are not supported by waggle yet".into(),
        ),
        Some(other) => Err(format!(
            "Property 'result.type' is invalid: expected 'userTask' or 'adHocSubProcess', but was '{other}'"
        )),
    }
}

/// The engine's job result from the gRPC message.
pub fn from_proto(result: proto::JobResult) -> Result<engine::JobResult, CommandError> {
    check_type(result.r#type.as_deref()).map_err(CommandError::InvalidArgument)?;
    let mut out = engine::JobResult {
        denied: result.denied.unwrap_or(false),
        denied_reason: result.denied_reason.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(c) = result.corrections {
        if let Some(v) = c.assignee {
            out.assignee = v;
            out.corrected_attributes.push("assignee".into());
        }
        if let Some(v) = c.due_date {
            out.due_date = v;
            out.corrected_attributes.push("dueDate".into());
        }
        if let Some(v) = c.follow_up_date {
            out.follow_up_date = v;
            out.corrected_attributes.push("followUpDate".into());
        }
        if let Some(v) = c.candidate_users {
            out.candidate_users = v.values;
            out.corrected_attributes.push("candidateUsersList".into());
        }
        if let Some(v) = c.candidate_groups {
            out.candidate_groups = v.values;
            out.corrected_attributes.push("candidateGroupsList".into());
        }
        if let Some(v) = c.priority {
            out.priority = v;
            out.corrected_attributes.push("priority".into());
        }
    }
    Ok(out)
}

fn string_list(field: &str, value: &Value) -> Result<Vec<String>, String> {
    let invalid =
        || format!("Property 'result.corrections.{field}' is invalid: expected a list of strings");
    value
        .as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|v| v.as_str().map(String::from).ok_or_else(invalid))
        .collect()
}

fn text(field: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!(
            "Property 'result.corrections.{field}' is invalid: expected a string"
        )),
    }
}

/// The engine's job result from the REST body's `result` object.
pub fn from_json(result: &Value) -> Result<engine::JobResult, String> {
    let Value::Object(map) = result else {
        return Err("Property 'result' is invalid: expected a JSON object".into());
    };
    check_type(map.get("type").and_then(Value::as_str))?;
    let mut out = engine::JobResult::default();
    match map.get("denied") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => out.denied = *b,
        Some(_) => return Err("Property 'result.denied' is invalid: expected a boolean".into()),
    }
    match map.get("deniedReason") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.denied_reason = s.clone(),
        Some(_) => {
            return Err("Property 'result.deniedReason' is invalid: expected a string".into())
        }
    }
    let Some(corrections) = map.get("corrections").filter(|c| !c.is_null()) else {
        return Ok(out);
    };
    let Value::Object(c) = corrections else {
        return Err("Property 'result.corrections' is invalid: expected a JSON object".into());
    };
    for (name, value) in c {
        if value.is_null() {
            continue;
        }
        let attribute = match name.as_str() {
            "assignee" => {
                out.assignee = text(name, value)?;
                "assignee"
            }
            "dueDate" => {
                out.due_date = text(name, value)?;
                "dueDate"
            }
            "followUpDate" => {
                out.follow_up_date = text(name, value)?;
                "followUpDate"
            }
            "candidateUsers" => {
                out.candidate_users = string_list(name, value)?;
                "candidateUsersList"
            }
            "candidateGroups" => {
                out.candidate_groups = string_list(name, value)?;
                "candidateGroupsList"
            }
            "priority" => {
                out.priority = value
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| {
                        "Property 'result.corrections.priority' is invalid: expected an integer"
                            .to_string()
                    })?;
                "priority"
            }
            other => {
                return Err(format!(
                    "Property 'result.corrections.{other}' is invalid: correctable are assignee, dueDate, followUpDate, candidateUsers, candidateGroups, priority"
                ))
            }
        };
        out.corrected_attributes.push(attribute.into());
    }
    // The order of the gRPC message's fields, whatever the JSON's order.
    out.corrected_attributes
        .sort_by_key(|a| ORDER.iter().position(|o| o == a));
    Ok(out)
}

/// Corrected attributes in the order Zeebe's corrections list them.
const ORDER: [&str; 6] = [
    "assignee",
    "dueDate",
    "followUpDate",
    "candidateUsersList",
    "candidateGroupsList",
    "priority",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_corrections_name_zeebes_attributes() {
        let result = from_proto(proto::JobResult {
            denied: Some(false),
            corrections: Some(proto::JobResultCorrections {
                assignee: Some("ann".into()),
                candidate_groups: Some(proto::StringList {
                    values: vec!["ops".into()],
                }),
                priority: Some(80),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            result.corrected_attributes,
            ["assignee", "candidateGroupsList", "priority"]
        );
        assert_eq!(result.assignee, "ann");
        assert_eq!(result.candidate_groups, ["ops"]);
        assert_eq!(result.priority, 80);
        assert!(from_proto(proto::JobResult {
            r#type: Some("adHocSubProcess".into()),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn rest_results_are_read_and_checked() {
        let result = from_json(&serde_json::json!({
            "denied": true,
            "deniedReason": "no",
            "corrections": {"dueDate": "2030-01-01T00:00:00Z", "candidateUsers": ["a"]}
        }))
        .unwrap();
        assert!(result.denied);
        assert_eq!(result.denied_reason, "no");
        assert_eq!(
            result.corrected_attributes,
            ["dueDate", "candidateUsersList"]
        );
        let err = from_json(&serde_json::json!({"corrections": {"name": "x"}})).unwrap_err();
        assert!(err.contains("result.corrections.name"), "{err}");
        let err = from_json(&serde_json::json!({"corrections": {"priority": "high"}})).unwrap_err();
        assert!(err.contains("priority"), "{err}");
    }
}
