//! Message throw events, message end events and send tasks with
//! `zeebe:publishMessage`: the engine publishes the message itself, as Zeebe
//! 8.8 does, instead of a job worker.
//!
//! ```text
//! activate: input mappings → evaluate name, correlation key, message id, TTL
//!           → MESSAGE PUBLISH command to message_partition(correlation key)
//!             (a follow-up command here, a distribution to another partition)
//!           → ELEMENT_ACTIVATED → complete
//! ```
//!
//! The message carries the element's local variables (those its input
//! mappings created), its time to live is one hour unless `timeToLive` says
//! otherwise, and it correlates on its partition like any published message:
//! to the open subscriptions and message start events there. A failing
//! expression is an `EXTRACT_VALUE_ERROR` incident; resolving it evaluates
//! again.

use crate::engine::{Ctx, Engine};
use crate::events::evaluate_text;
use crate::expression::Expression;
use crate::messages::message_partition;
use crate::record::*;
use crate::state::DeployedProcess;
use crate::timer::IsoDuration;
use roxmltree::Node;
use serde_json::Value as Json;

/// Time to live of a published message whose element names none (Zeebe's
/// `BpmnMessageBehavior.DEFAULT_MSG_TTL`).
pub const DEFAULT_PUBLISH_TTL_MS: i64 = 3_600_000;

/// `zeebe:publishMessage` with the name of the referenced `bpmn:message`.
#[derive(Clone, Debug)]
pub struct PublishMessageDefinition {
    /// Message name (static or FEEL).
    pub name: Expression,
    /// `correlationKey`: a string or a number.
    pub correlation_key: Expression,
    /// `messageId`: optional; a second message with the same id is refused.
    pub message_id: Option<Expression>,
    /// `timeToLive`: an ISO 8601 duration (static or FEEL).
    pub time_to_live: Option<Expression>,
}

/// Reads `zeebe:publishMessage` (`publish`) of element `id`; `message` is the
/// name of the `bpmn:message` the element references, if any.
pub(crate) fn publish_definition(
    publish: Node,
    message: Option<&str>,
) -> Result<PublishMessageDefinition, String> {
    let Some(name) = message.filter(|n| !n.trim().is_empty()) else {
        return Err(
            "zeebe:publishMessage needs a message name: reference a bpmn:message with a name (messageRef)"
                .into(),
        );
    };
    let name = Expression::parse(name).map_err(|e| format!("message name: {e}"))?;
    let attribute = |attr: &str| -> Result<Option<Expression>, String> {
        match publish.attribute(attr).map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => Expression::parse(text)
                .map(Some)
                .map_err(|e| format!("zeebe:publishMessage {attr}: {e}")),
        }
    };
    let Some(correlation_key) = attribute("correlationKey")? else {
        return Err(
            "zeebe:publishMessage must have a correlationKey (a FEEL expression such as =orderId, or a static value)"
                .into(),
        );
    };
    let time_to_live = attribute("timeToLive")?;
    if let Some(Expression::Static(text)) = &time_to_live {
        IsoDuration::parse(text).map_err(|e| format!("zeebe:publishMessage timeToLive: {e}"))?;
    }
    Ok(PublishMessageDefinition {
        name,
        correlation_key,
        message_id: attribute("messageId")?,
        time_to_live,
    })
}

impl Engine {
    /// Activates an element that publishes a message: publishes it and
    /// completes, or raises an incident when an expression fails.
    pub(crate) fn activate_publish(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        key: i64,
        publish: &PublishMessageDefinition,
    ) {
        let message = match self.message_to_publish(ctx, key, publish) {
            Ok(m) => m,
            Err(message) => {
                return self.raise_incident(
                    ctx,
                    key,
                    ErrorType::ExtractValueError,
                    message,
                    NO_KEY,
                );
            }
        };
        let partition = message_partition(&message.correlation_key, self.message_partition_count());
        let command = Record::command(NO_KEY, Intent::Publish, RecordValue::Message(message), None);
        self.send(ctx, partition, command);
        self.element_event(ctx, def, key, Intent::ElementActivated);
        self.complete(ctx, key, None);
    }

    fn message_to_publish(
        &self,
        ctx: &Ctx,
        key: i64,
        publish: &PublishMessageDefinition,
    ) -> Result<MessageRecord, String> {
        let vars = self.visible(key);
        let name = evaluate_text(&publish.name, &vars, &self.clock, "message name")?;
        let correlation_key = evaluate_text(
            &publish.correlation_key,
            &vars,
            &self.clock,
            "correlation key",
        )?;
        let message_id = match &publish.message_id {
            Some(e) => evaluate_text(e, &vars, &self.clock, "message id")?,
            None => String::new(),
        };
        let time_to_live_ms = match &publish.time_to_live {
            None => DEFAULT_PUBLISH_TTL_MS,
            Some(e) => {
                let text = match e.evaluate(&vars, &self.clock)? {
                    Json::String(s) => s,
                    other => {
                        return Err(format!(
                            "Expected the time to live '{}' to be a duration, but was '{other}'",
                            e.source()
                        ))
                    }
                };
                let until = IsoDuration::parse(&text)
                    .and_then(|d| d.add_to(ctx.timestamp_ms))
                    .map_err(|err| format!("time to live '{}': {err}", e.source()))?;
                until.saturating_sub(ctx.timestamp_ms)
            }
        };
        Ok(MessageRecord {
            name,
            correlation_key,
            time_to_live_ms,
            message_id,
            variables: self.local_document(key),
            deadline_ms: NO_KEY,
        })
    }

    /// The variables of `scope` itself as a JSON object.
    fn local_document(&self, scope: i64) -> String {
        let mut out = serde_json::Map::new();
        for v in self.state.variables.local(scope) {
            let value = serde_json::from_str(v.value).unwrap_or(Json::Null);
            out.insert(v.name.to_string(), value);
        }
        Json::Object(out).to_string()
    }
}
