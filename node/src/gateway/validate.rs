//! Request checks done at the gateway, before a command is routed: JSON
//! documents must be objects, required fields present, numbers in range, tenant
//! ids those of a broker without multi-tenancy. Each error names the field.

use crate::command::CommandError;
use crate::placement::PartitionId;
use crate::routing::partition_of_key;

/// The only tenant of a broker without multi-tenancy.
pub const DEFAULT_TENANT: &str = "<default>";

/// Checks that `document` (the request field `field`) is empty or a JSON
/// object; returns the document to store (`{}` when empty).
pub fn variables(field: &str, document: &str) -> Result<String, CommandError> {
    if document.trim().is_empty() {
        return Ok("{}".to_string());
    }
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(_)) => Ok(document.to_string()),
        Ok(other) => Err(CommandError::InvalidArgument(format!(
            "Property '{field}' is invalid: expected a JSON object, but got a JSON {}",
            json_kind(&other)
        ))),
        Err(e) => Err(CommandError::InvalidArgument(format!(
            "Property '{field}' is invalid: not a JSON document ({e})"
        ))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Checks that a required text field is not blank.
pub fn not_blank(field: &str, value: &str) -> Result<(), CommandError> {
    if value.trim().is_empty() {
        Err(CommandError::InvalidArgument(format!(
            "Expected to provide a non-blank '{field}', but it was blank"
        )))
    } else {
        Ok(())
    }
}

/// Checks that a number field is at least `min`.
pub fn at_least(field: &str, value: i64, min: i64) -> Result<(), CommandError> {
    if value < min {
        Err(CommandError::InvalidArgument(format!(
            "Expected '{field}' to be at least {min}, but it was {value}"
        )))
    } else {
        Ok(())
    }
}

/// Checks a tenant id: empty or `<default>`, as multi-tenancy is off.
pub fn tenant(tenant_id: &str) -> Result<(), CommandError> {
    if tenant_id.is_empty() || tenant_id == DEFAULT_TENANT {
        Ok(())
    } else {
        Err(CommandError::InvalidArgument(format!(
            "Expected to use tenant '{DEFAULT_TENANT}' (multi-tenancy is disabled), but got tenant '{tenant_id}'"
        )))
    }
}

/// Checks every tenant id of a list.
pub fn tenants(tenant_ids: &[String]) -> Result<(), CommandError> {
    tenant_ids.iter().try_for_each(|t| tenant(t))
}

/// The command of an EvaluateDecision request: by `decision_key` when it
/// is set (positive), else the latest version of `decision_id`.
pub fn evaluate_decision(
    decision_key: i64,
    decision_id: String,
    variables: &str,
    partitions: u32,
) -> Result<crate::command::PartitionCommand, CommandError> {
    let decision_key = if decision_key > 0 {
        key_partition("decisionKey", decision_key, partitions)?;
        decision_key
    } else if decision_id.trim().is_empty() {
        return Err(CommandError::InvalidArgument(
            "Expected either a decision id or a valid decision key, but none provided".into(),
        ));
    } else {
        -1
    };
    Ok(crate::command::PartitionCommand::EvaluateDecision {
        decision_key,
        decision_id,
        variables: self::variables("variables", variables)?,
    })
}

/// The partition that holds the entity with `key` (the request field `field`).
pub fn key_partition(field: &str, key: i64, partitions: u32) -> Result<PartitionId, CommandError> {
    partition_of_key(key, partitions).ok_or_else(|| {
        CommandError::NotFound(format!(
            "Expected '{field}' to be a key of partition 1..={partitions}, but {key} is not; nothing with this key exists"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_variables_are_refused_without_recursing_through_them() {
        // serde_json stops at 128 levels; the engine applies the same limit
        // to documents that reach it otherwise.
        let deep = format!(
            r#"{{"a": {}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = variables("variables", &deep).expect_err("too deep");
        assert!(
            matches!(&err, CommandError::InvalidArgument(m) if m.contains("recursion limit")),
            "{err:?}"
        );
        let fits = format!(r#"{{"a": {}1{}}}"#, "[".repeat(120), "]".repeat(120));
        assert!(variables("variables", &fits).is_ok());
    }

    #[test]
    fn variables_must_be_objects() {
        assert_eq!(variables("variables", "").expect("empty"), "{}");
        assert_eq!(
            variables("variables", r#"{"a":1}"#).expect("object"),
            r#"{"a":1}"#
        );
        for bad in ["[1,2]", "42", "\"s\"", "null", "{not json"] {
            let err = variables("variables", bad).expect_err(bad);
            assert!(matches!(err, CommandError::InvalidArgument(_)), "{bad}");
            assert!(err.to_string().contains("'variables'"), "{err}");
        }
    }

    #[test]
    fn blank_and_range_checks_name_the_field() {
        assert!(not_blank("type", "  ")
            .expect_err("blank")
            .to_string()
            .contains("'type'"));
        assert!(not_blank("type", "x").is_ok());
        assert!(at_least("timeout", 0, 1)
            .expect_err("low")
            .to_string()
            .contains("'timeout'"));
        assert!(tenant("").is_ok() && tenant(DEFAULT_TENANT).is_ok());
        assert!(tenant("acme").is_err());
    }

    #[test]
    fn keys_of_unknown_partitions_are_not_found() {
        let err = key_partition("jobKey", 5, 3).expect_err("no partition 0");
        assert_eq!(tonic::Status::from(err).code(), tonic::Code::NotFound);
        assert_eq!(
            key_partition("jobKey", (2i64 << 51) + 5, 3).expect("partition 2"),
            2
        );
    }
}
