//! Mapping rules (Camunda's `MAPPING_RULE` value type): a token whose
//! claim `claimName` is `claimValue` (or a list holding it) acts as the
//! rule, and so as the roles, groups and tenants the rule is a member of
//! and with the authorizations it owns. Kept and changed like users (see
//! `identity`).
//!
//! ```text
//! MAPPING_RULE CREATE | UPDATE | DELETE   mappingRuleId, claimName,
//!                                         claimValue, name
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{check_id, invalid, Claims, OWNER_MAPPING_RULE};
use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::identity::{entity_key, Identity, MAX_FIELD_CHARS};
use crate::record::*;

/// `MAPPING_RULE` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRuleRecord {
    /// Key of the rule (of its `CREATED` event).
    pub mapping_rule_key: i64,
    /// Unique id.
    pub mapping_rule_id: String,
    /// The claim to look at (a top-level claim of the token).
    pub claim_name: String,
    /// The value it must have, or hold if it is a list.
    pub claim_value: String,
    /// Display name.
    pub name: String,
}

impl MappingRuleRecord {
    /// Whether a token with `claims` matches: the claim equals the value
    /// (numbers and booleans compared as text) or is a list holding it.
    pub fn matches(&self, claims: &Claims) -> bool {
        let equal = |v: &Value| match v {
            Value::String(s) => *s == self.claim_value,
            Value::Number(n) => n.to_string() == self.claim_value,
            Value::Bool(b) => b.to_string() == self.claim_value,
            _ => false,
        };
        match claims.get(&self.claim_name) {
            Some(Value::Array(values)) => values.iter().any(equal),
            Some(value) => equal(value),
            None => false,
        }
    }
}

impl Identity {
    /// Applies a `MAPPING_RULE` event.
    pub(crate) fn apply_mapping_rule(&mut self, intent: Intent, rule: &MappingRuleRecord) {
        match intent {
            Intent::Created | Intent::Updated => {
                self.mapping_rules
                    .insert(rule.mapping_rule_id.clone(), rule.clone());
            }
            Intent::Deleted => {
                self.mapping_rules.remove(&rule.mapping_rule_id);
                self.forget_owner(OWNER_MAPPING_RULE, &rule.mapping_rule_id);
            }
            _ => {}
        }
    }
}

impl Engine {
    /// MAPPING_RULE CREATE, UPDATE or DELETE, from a client or distributed.
    pub(crate) fn mapping_rule_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        rule: &MappingRuleRecord,
    ) -> Result<(), Rejection> {
        let event = Self::entity_event(cmd)?;
        if self.identity_distributed(ctx, cmd, event)? {
            return Ok(());
        }
        let value = self.checked_mapping_rule(event, rule)?;
        let key = self.state.keys.next_key();
        let value = MappingRuleRecord {
            mapping_rule_key: entity_key(event, key, value.mapping_rule_key),
            ..value
        };
        let response = ResponseValue::IdentityChanged {
            key: value.mapping_rule_key,
        };
        let value = RecordValue::MappingRule(value);
        self.identity_commit(ctx, cmd, key, event, value, response);
        Ok(())
    }

    /// The event value of a client's MAPPING_RULE command, or why it is
    /// refused.
    fn checked_mapping_rule(
        &self,
        event: Intent,
        rule: &MappingRuleRecord,
    ) -> Result<MappingRuleRecord, Rejection> {
        let id = &rule.mapping_rule_id;
        if event == Intent::Created {
            check_id("mapping rule id", id)?;
        }
        let rules = &self.state.identity.mapping_rules;
        let existing = rules.get(id);
        match (event, existing) {
            (Intent::Created, Some(_)) => {
                return Err(rejection(
                    RejectionType::AlreadyExists,
                    format!("Expected to create a mapping rule with id '{id}', but one exists"),
                ))
            }
            (Intent::Created, None) => {}
            (_, None) => {
                return Err(rejection(
                    RejectionType::NotFound,
                    format!("Expected to find a mapping rule with id '{id}', but none exists"),
                ))
            }
            (Intent::Deleted, Some(old)) => return Ok(old.clone()),
            (_, Some(_)) => {}
        }
        for (field, value) in [
            ("claimName", &rule.claim_name),
            ("claimValue", &rule.claim_value),
        ] {
            if value.is_empty() || value.chars().count() > MAX_FIELD_CHARS {
                return Err(invalid(format!(
                    "Expected a {field} of 1 to {MAX_FIELD_CHARS} characters, but got '{value}'"
                )));
            }
        }
        let same_claim = rules.values().find(|r| {
            r.mapping_rule_id != *id
                && r.claim_name == rule.claim_name
                && r.claim_value == rule.claim_value
        });
        if let Some(other) = same_claim {
            return Err(rejection(
                RejectionType::AlreadyExists,
                format!(
                    "Expected a mapping rule for claim '{}' = '{}' apart from '{}', but that one maps it",
                    rule.claim_name, rule.claim_value, other.mapping_rule_id
                ),
            ));
        }
        Ok(MappingRuleRecord {
            mapping_rule_key: existing.map_or(NO_KEY, |r| r.mapping_rule_key),
            ..rule.clone()
        })
    }
}
