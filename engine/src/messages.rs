//! Messages: publish, buffer with a TTL, correlate to subscriptions and
//! message start events; the subscription exchange between the partition of
//! a process instance (P_i) and the partition of the message (P_m, chosen by
//! the hash of the correlation key), as in Zeebe.
//!
//! ```text
//! P_i  catch element active   PROCESS_MESSAGE_SUBSCRIPTION CREATING  -> P_m MESSAGE_SUBSCRIPTION CREATE
//! P_m  CREATE                 CREATED (+ CORRELATING a buffered message) -> P_i PMS CREATE (ack)
//! P_m  MESSAGE PUBLISH        PUBLISHED; per process id, the first open subscription
//!                             not yet correlating: CORRELATING -> P_i PMS CORRELATE
//! P_i  PMS CORRELATE          CORRELATED, trigger the event   -> P_m MESSAGE_SUBSCRIPTION CORRELATE (ack)
//!                             (element gone: rejected          -> P_m MESSAGE_SUBSCRIPTION REJECT)
//! P_i  element left           PMS DELETING                    -> P_m MESSAGE_SUBSCRIPTION DELETE
//! P_m  DELETE                 DELETED                         -> P_i PMS DELETE (ack) -> DELETED
//! P_m  MESSAGE EXPIRE         EXPIRED (from `due_commands` when the TTL ran out)
//! P_i  instance migrated      PMS MIGRATED                    -> P_m MESSAGE_SUBSCRIPTION MIGRATE
//!                             (another partition: a command distribution, see `distribution`)
//! P_m  MIGRATE                MIGRATED (new process id, catch event, interrupting), acknowledged
//! ```
//!
//! Commands for another partition go to `Processed::distributions`; for this
//! partition they are follow-up commands in `Processed::records`.
//! `Engine::pending_distributions` sends again what is not acknowledged (a
//! subscription still OPENING or CLOSING; a correlation still CORRELATING),
//! so a lost command or a leader change loses nothing. P_i remembers the
//! messages it correlated while the instance lives and acknowledges a
//! repeated correlation instead of applying it twice; a correlation for an
//! element that is gone deletes the stale subscription on P_m.

use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::key::partition_of;
use crate::model::EventDefinition;
use crate::record::*;
use crate::scope_variables::parse_document;
use crate::state::{DeployedProcess, SubscriptionState};
use crate::tenancy::{scoped, scoped_arc};

/// Longest message name and correlation key accepted.
pub const MAX_MESSAGE_NAME_BYTES: usize = 32 * 1024;
/// Time after which an unacknowledged subscription command is sent again.
pub const SUBSCRIPTION_RESEND_MS: i64 = 10_000;

/// Partition of a message with `correlation_key`: Zeebe's Java `String`
/// hash over the UTF-8 bytes, modulo the partition count, plus one.
pub fn message_partition(correlation_key: &str, partition_count: u32) -> u32 {
    let mut hash: i32 = 0;
    for &b in correlation_key.as_bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(b as i8 as i32);
    }
    (hash % partition_count as i32).unsigned_abs() + 1
}

impl Engine {
    /// Sends `command` to `partition` (this one: a follow-up command).
    pub(crate) fn send(&mut self, ctx: &mut Ctx, partition: u32, mut command: Record) {
        command.timestamp_ms = ctx.timestamp_ms;
        command.source_record_position = ctx.position;
        command.tenant = ctx.tenant.clone();
        if partition == self.partition_id {
            ctx.out.records.push(command);
        } else {
            ctx.out.distributions.push((partition, command));
        }
    }

    #[allow(clippy::too_many_arguments)] // the subscription's parts
    pub(crate) fn open_message_subscription(
        &mut self,
        ctx: &mut Ctx,
        def: &DeployedProcess,
        owner: i64,
        pi_key: i64,
        catch: u32,
        name: String,
        correlation_key: String,
    ) {
        let el = def.model.element(catch);
        let interrupting = el.interrupting;
        let record = MessageSubscriptionRecord {
            element_instance_key: owner,
            process_instance_key: pi_key,
            bpmn_process_id: def.metadata.bpmn_process_id.clone(),
            element_id: el.id.clone(),
            message_name: name,
            correlation_key,
            interrupting,
            message_key: NO_KEY,
            variables: String::new(),
            subscription_partition_id: self.partition_id,
        };
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::Creating,
            RecordValue::ProcessMessageSubscription(record.clone()),
        );
        self.send_subscription_command(ctx, Intent::Create, record);
    }

    fn send_subscription_command(
        &mut self,
        ctx: &mut Ctx,
        intent: Intent,
        record: MessageSubscriptionRecord,
    ) {
        let partition = message_partition(&record.correlation_key, self.message_partition_count());
        let command = Record::command(
            NO_KEY,
            intent,
            RecordValue::MessageSubscription(record),
            None,
        );
        self.send(ctx, partition, command);
    }

    pub(crate) fn close_message_subscription(&mut self, ctx: &mut Ctx, key: i64) {
        let Some(sub) = self.state.process_message_subscriptions.get(&key).cloned() else {
            return;
        };
        if sub.state == SubscriptionState::Closing {
            return;
        }
        self.emit(
            ctx,
            key,
            Intent::Deleting,
            RecordValue::ProcessMessageSubscription(sub.record.clone()),
        );
        self.send_subscription_command(ctx, Intent::Delete, sub.record);
    }

    /// Commands for other partitions that are not acknowledged yet, at most
    /// `max`: distributed deployments and resource deletions (the oldest per
    /// partition, every `DISTRIBUTION_RETRY_MS`), then subscription commands
    /// last sent more than `SUBSCRIPTION_RESEND_MS` ago (all of them after a
    /// leader change). The broker sends them like `Processed::distributions`.
    pub fn pending_distributions(&mut self, now_ms: i64, max: usize) -> Vec<(u32, Record)> {
        let mut out = Vec::new();
        self.pending_command_distributions(now_ms, max, &mut out);
        // Instance side: opening and closing subscriptions, to the message
        // partition. Message side: correlations not yet acknowledged, to the
        // instance partition (which acknowledges a repeated one again).
        let state = &self.state;
        let mut pending: Vec<(i64, Intent, u32, RecordValue, Tenant)> = state
            .process_message_subscriptions
            .iter()
            .filter_map(|(&k, s)| {
                let intent = match s.state {
                    SubscriptionState::Opening => Intent::Create,
                    SubscriptionState::Closing => Intent::Delete,
                    SubscriptionState::Opened => return None,
                };
                let partition =
                    message_partition(&s.record.correlation_key, self.message_partition_count());
                let tenant = state.instance_tenant(s.record.process_instance_key);
                Some((
                    k,
                    intent,
                    partition,
                    RecordValue::MessageSubscription(s.record.clone()),
                    tenant.unwrap_or_default(),
                ))
            })
            .collect();
        pending.extend(
            self.state
                .message_subscriptions
                .iter()
                .filter(|(_, s)| s.correlating)
                .map(|(&k, s)| {
                    let value = RecordValue::ProcessMessageSubscription(s.record.clone());
                    (
                        k,
                        Intent::Correlate,
                        s.record.subscription_partition_id,
                        value,
                        state.tenancy.of(k),
                    )
                }),
        );
        self.last_sent.retain(|k, _| {
            state.process_message_subscriptions.contains_key(k)
                || state.message_subscriptions.contains_key(k)
        });
        for (key, intent, partition, value, tenant) in pending {
            if out.len() >= max {
                break;
            }
            match self.last_sent.get(&key) {
                Some(&(at, i)) if i == intent && now_ms - at < SUBSCRIPTION_RESEND_MS => continue,
                _ => {}
            }
            self.last_sent.insert(key, (now_ms, intent));
            let mut command = Record::command(NO_KEY, intent, value, None);
            command.timestamp_ms = now_ms;
            command.tenant = tenant;
            out.push((partition, command));
        }
        out
    }

    /// MESSAGE PUBLISH (client) and MESSAGE EXPIRE (from `due_commands`).
    pub(crate) fn message_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        m: &MessageRecord,
    ) -> Result<(), Rejection> {
        match cmd.intent {
            Intent::Publish => self.publish(ctx, cmd, m),
            Intent::Expire => {
                let key = cmd.key;
                let message = self.state.messages.get(&key).cloned().ok_or_else(|| {
                    rejection(
                        RejectionType::NotFound,
                        format!(
                            "Expected to expire message with key '{key}', but it is not buffered"
                        ),
                    )
                })?;
                if message.deadline_ms > ctx.timestamp_ms {
                    return Err(rejection(
                        RejectionType::InvalidState,
                        format!(
                            "Expected to expire message with key '{key}', but it lives until {}",
                            message.deadline_ms
                        ),
                    ));
                }
                self.emit(ctx, key, Intent::Expired, RecordValue::Message(message));
                Ok(())
            }
            other => Err(rejection(
                RejectionType::InvalidArgument,
                format!("command MESSAGE {} is not supported", other.name()),
            )),
        }
    }

    fn publish(&mut self, ctx: &mut Ctx, cmd: &Record, m: &MessageRecord) -> Result<(), Rejection> {
        if m.name.trim().is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                "Expected to publish a message with a name, but the name is empty".into(),
            ));
        }
        if m.name.len() > MAX_MESSAGE_NAME_BYTES || m.correlation_key.len() > MAX_MESSAGE_NAME_BYTES
        {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!("Expected message name and correlation key of at most {MAX_MESSAGE_NAME_BYTES} bytes"),
            ));
        }
        let expected = message_partition(&m.correlation_key, self.message_partition_count());
        if expected != self.partition_id {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to publish the message with correlation key '{}' on partition {expected}, but this is partition {}",
                    m.correlation_key, self.partition_id
                ),
            ));
        }
        parse_document(&m.variables).map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        if !m.message_id.is_empty()
            && self.state.message_ids.contains_key(&(
                scoped(&ctx.tenant, &m.name).into_owned(),
                m.correlation_key.clone(),
                m.message_id.clone(),
            ))
        {
            return Err(rejection(
                RejectionType::AlreadyExists,
                format!(
                    "Expected to publish a new message with id '{}', but a message with that id was already published",
                    m.message_id
                ),
            ));
        }
        let mut message = m.clone();
        message.time_to_live_ms = m.time_to_live_ms.max(0);
        message.deadline_ms = ctx.timestamp_ms.saturating_add(message.time_to_live_ms);
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::Published,
            RecordValue::Message(message.clone()),
        );
        Self::respond(ctx, cmd, ResponseValue::MessagePublished { key });
        self.correlate_to_start_events(ctx, key, &message);
        self.correlate_message(ctx, key, NO_KEY);
        if message.time_to_live_ms == 0 {
            self.emit(ctx, key, Intent::Expired, RecordValue::Message(message));
        }
        Ok(())
    }

    /// Message start events of the latest versions: one new instance per process.
    fn correlate_to_start_events(&mut self, ctx: &mut Ctx, message_key: i64, m: &MessageRecord) {
        let latest = self.state.latest_processes(&ctx.tenant);
        for def in latest {
            let id = def.metadata.bpmn_process_id.clone();
            let scoped_id = scoped_arc(&ctx.tenant, &id);
            if self
                .state
                .message_correlated
                .contains(&(message_key, id.clone()))
            {
                continue;
            }
            if !m.correlation_key.is_empty()
                && self
                    .state
                    .message_started
                    .contains_key(&(scoped_id, m.correlation_key.clone()))
            {
                continue;
            }
            let start = def
                .model
                .element(0)
                .event_starts
                .iter()
                .copied()
                .find(|&s| match &def.model.element(s).event {
                    Some(EventDefinition::Message { name, .. }) => {
                        crate::events::evaluate_text(name, &[], &self.clock, "message name")
                            .is_ok_and(|n| n == m.name)
                    }
                    _ => false,
                });
            let Some(start) = start else {
                continue;
            };
            let correlated = MessageSubscriptionRecord {
                element_instance_key: NO_KEY,
                process_instance_key: NO_KEY,
                bpmn_process_id: id,
                element_id: def.model.element(start).id.clone(),
                message_name: m.name.clone(),
                correlation_key: m.correlation_key.clone(),
                interrupting: true,
                message_key,
                variables: m.variables.clone(),
                subscription_partition_id: self.partition_id,
            };
            self.start_instance_at(ctx, &def, start, &m.variables, Some(correlated));
        }
    }

    /// Sends buffered message `message_key` to every open subscription that
    /// matches (except `skip`, which refused it), once per process id.
    fn correlate_message(&mut self, ctx: &mut Ctx, message_key: i64, skip: i64) {
        let Some(m) = self.state.messages.get(&message_key).cloned() else {
            return;
        };
        let name = scoped(&self.state.tenancy.of(message_key), &m.name).into_owned();
        let subs: Vec<i64> = self
            .state
            .ms_by_name
            .range((name.clone(), m.correlation_key.clone(), i64::MIN)..)
            .take_while(|(n, c, _)| *n == name && *c == m.correlation_key)
            .map(|&(_, _, k)| k)
            .collect();
        for sub_key in subs.into_iter().filter(|&k| k != skip) {
            let Some(sub) = self.state.message_subscriptions.get(&sub_key) else {
                continue;
            };
            if sub.correlating
                || self
                    .state
                    .message_correlated
                    .contains(&(message_key, sub.record.bpmn_process_id.clone()))
            {
                continue;
            }
            let record = sub.record.clone();
            self.send_correlation(ctx, sub_key, record, message_key, &m.variables);
        }
    }

    fn send_correlation(
        &mut self,
        ctx: &mut Ctx,
        sub_key: i64,
        mut record: MessageSubscriptionRecord,
        message_key: i64,
        variables: &str,
    ) {
        record.message_key = message_key;
        record.variables = variables.to_string();
        self.emit(
            ctx,
            sub_key,
            Intent::Correlating,
            RecordValue::MessageSubscription(record.clone()),
        );
        let partition = record.subscription_partition_id;
        let command = Record::command(
            NO_KEY,
            Intent::Correlate,
            RecordValue::ProcessMessageSubscription(record),
            None,
        );
        self.send(ctx, partition, command);
    }

    /// The first buffered message for subscription `sub_key` that its
    /// process has not received yet.
    fn correlate_buffered(&mut self, ctx: &mut Ctx, sub_key: i64) {
        let Some(sub) = self.state.message_subscriptions.get(&sub_key) else {
            return;
        };
        if sub.correlating {
            return;
        }
        let r = sub.record.clone();
        let name = scoped(&self.state.tenancy.of(sub_key), &r.message_name).into_owned();
        let found = self
            .state
            .messages_by_name
            .range((name.clone(), r.correlation_key.clone(), i64::MIN)..)
            .take_while(|(n, c, _)| *n == name && *c == r.correlation_key)
            .map(|&(_, _, k)| k)
            .find(|&k| {
                !self
                    .state
                    .message_correlated
                    .contains(&(k, r.bpmn_process_id.clone()))
            });
        if let Some(message_key) = found {
            let variables = self.state.messages[&message_key].variables.clone();
            self.send_correlation(ctx, sub_key, r, message_key, &variables);
        }
    }

    /// MESSAGE_SUBSCRIPTION commands, on the message's partition.
    pub(crate) fn message_subscription_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        m: &MessageSubscriptionRecord,
    ) -> Result<(), Rejection> {
        let existing = self
            .state
            .ms_by_owner
            .get(&(m.element_instance_key, m.message_name.clone()))
            .copied();
        let ack = |intent| {
            Record::command(
                NO_KEY,
                intent,
                RecordValue::ProcessMessageSubscription(m.clone()),
                None,
            )
        };
        match cmd.intent {
            Intent::Create => {
                if existing.is_none() {
                    let key = self.state.keys.next_key();
                    self.emit(
                        ctx,
                        key,
                        Intent::Created,
                        RecordValue::MessageSubscription(m.clone()),
                    );
                    self.correlate_buffered(ctx, key);
                }
                self.send(ctx, m.subscription_partition_id, ack(Intent::Create));
                Ok(())
            }
            Intent::Correlate | Intent::Reject => {
                let key = existing.ok_or_else(|| not_open(m))?;
                let result = if cmd.intent == Intent::Correlate {
                    Intent::Correlated
                } else {
                    Intent::Rejected
                };
                let mut value = self.state.message_subscriptions[&key].record.clone();
                value.message_key = m.message_key;
                self.emit(ctx, key, result, RecordValue::MessageSubscription(value));
                if result == Intent::Rejected {
                    self.correlate_message(ctx, m.message_key, key);
                } else if self.state.message_subscriptions.contains_key(&key) {
                    self.correlate_buffered(ctx, key);
                }
                Ok(())
            }
            Intent::Delete => {
                if let Some(key) = existing {
                    let value = self.state.message_subscriptions[&key].record.clone();
                    self.emit(
                        ctx,
                        key,
                        Intent::Deleted,
                        RecordValue::MessageSubscription(value),
                    );
                }
                self.send(ctx, m.subscription_partition_id, ack(Intent::Delete));
                Ok(())
            }
            Intent::Migrate => {
                // The instance moved to another process definition: the
                // subscription names its new process id and catch event. From
                // another partition it comes distributed, and is acknowledged
                // (applying it again changes nothing).
                let source = if cmd.key > 0 && partition_of(cmd.key) != self.partition_id {
                    Some(self.distribution_source(cmd)?)
                } else {
                    None
                };
                if let Some(key) = existing {
                    let mut value = self.state.message_subscriptions[&key].record.clone();
                    value.bpmn_process_id = m.bpmn_process_id.clone();
                    value.element_id = m.element_id.clone();
                    value.interrupting = m.interrupting;
                    self.emit(
                        ctx,
                        key,
                        Intent::Migrated,
                        RecordValue::MessageSubscription(value),
                    );
                }
                if let Some(source) = source {
                    self.acknowledge_distribution(ctx, cmd, source);
                }
                Ok(())
            }
            other => Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "command MESSAGE_SUBSCRIPTION {} is not supported",
                    other.name()
                ),
            )),
        }
    }

    /// PROCESS_MESSAGE_SUBSCRIPTION commands, on the instance's partition.
    pub(crate) fn process_message_subscription_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        m: &MessageSubscriptionRecord,
    ) -> Result<(), Rejection> {
        let found = crate::state::State::owned(&self.state.pms_by_owner, m.element_instance_key)
            .into_iter()
            .find(|k| {
                self.state.process_message_subscriptions[k]
                    .record
                    .message_name
                    == m.message_name
            });
        match cmd.intent {
            Intent::Create => {
                let key = found.ok_or_else(|| not_open(m))?;
                let sub = &self.state.process_message_subscriptions[&key];
                if sub.state != SubscriptionState::Opening {
                    return Err(rejection(
                        RejectionType::InvalidState,
                        format!("subscription '{key}' is not opening"),
                    ));
                }
                let value = sub.record.clone();
                self.emit(
                    ctx,
                    key,
                    Intent::Created,
                    RecordValue::ProcessMessageSubscription(value),
                );
                Ok(())
            }
            Intent::Correlate
                if self
                    .state
                    .pms_correlated
                    .contains_key(&(m.element_instance_key, m.message_key)) =>
            {
                // A correlation sent again (its acknowledgement was lost).
                let partition =
                    message_partition(&m.correlation_key, self.message_partition_count());
                let command = Record::command(
                    NO_KEY,
                    Intent::Correlate,
                    RecordValue::MessageSubscription(m.clone()),
                    None,
                );
                self.send(ctx, partition, command);
                Err(rejection(
                    RejectionType::AlreadyExists,
                    format!(
                        "message '{}' was already correlated to element instance '{}'",
                        m.message_key, m.element_instance_key
                    ),
                ))
            }
            Intent::Correlate => {
                let open = found.filter(|k| {
                    self.state.process_message_subscriptions[k].state != SubscriptionState::Closing
                });
                // The message goes back to the message partition: refused
                // (it may correlate elsewhere) while the waiting element
                // exists; when the element is gone, the subscription there is
                // stale and is deleted, and the message stays correlated to
                // this process (a repeated correlation whose first copy was
                // applied must not correlate twice).
                let reject = |this: &mut Self, ctx: &mut Ctx| {
                    let partition =
                        message_partition(&m.correlation_key, this.message_partition_count());
                    let gone = !this.state.instances.contains_key(&m.element_instance_key);
                    let intent = if gone { Intent::Delete } else { Intent::Reject };
                    let command = Record::command(
                        NO_KEY,
                        intent,
                        RecordValue::MessageSubscription(m.clone()),
                        None,
                    );
                    this.send(ctx, partition, command);
                };
                let Some(key) = open else {
                    reject(self, ctx);
                    return Err(not_open(m));
                };
                let mut value = self.state.process_message_subscriptions[&key]
                    .record
                    .clone();
                value.message_key = m.message_key;
                value.variables = m.variables.clone();
                let owner = m.element_instance_key;
                let catch = self
                    .state
                    .instances
                    .get(&owner)
                    .and_then(|i| self.state.process(i.process_definition_key))
                    .and_then(|d| d.model.index_of(&value.element_id));
                let Some(catch) = catch else {
                    reject(self, ctx);
                    return Err(not_open(m));
                };
                self.emit(
                    ctx,
                    key,
                    Intent::Correlated,
                    RecordValue::ProcessMessageSubscription(value.clone()),
                );
                if !self.trigger(ctx, owner, catch, &value.variables) {
                    reject(self, ctx);
                    return Ok(());
                }
                let partition =
                    message_partition(&m.correlation_key, self.message_partition_count());
                let command = Record::command(
                    NO_KEY,
                    Intent::Correlate,
                    RecordValue::MessageSubscription(value),
                    None,
                );
                self.send(ctx, partition, command);
                Ok(())
            }
            Intent::Delete => {
                let key = found.ok_or_else(|| not_open(m))?;
                let value = self.state.process_message_subscriptions[&key]
                    .record
                    .clone();
                self.emit(
                    ctx,
                    key,
                    Intent::Deleted,
                    RecordValue::ProcessMessageSubscription(value),
                );
                Ok(())
            }
            other => Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "command PROCESS_MESSAGE_SUBSCRIPTION {} is not supported",
                    other.name()
                ),
            )),
        }
    }
}

fn not_open(m: &MessageSubscriptionRecord) -> Rejection {
    rejection(
        RejectionType::NotFound,
        format!(
            "Expected a subscription of element instance '{}' for message '{}', but none is open",
            m.element_instance_key, m.message_name
        ),
    )
}
