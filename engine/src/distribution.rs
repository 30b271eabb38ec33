//! Command distribution: a command of this partition (a deployment, a
//! resource deletion to every other partition; a message subscription
//! migration to the message's partition) that its targets must apply, sent
//! until each acknowledged it, as Zeebe's `CommandDistributionBehavior` does.
//!
//! ```text
//! source  COMMAND_DISTRIBUTION STARTED       key, the command (kept in the state)
//!         COMMAND_DISTRIBUTION DISTRIBUTING  per target: pending (target, key)
//!         -> target: the command with the distribution key (only when no older
//!            distribution to that target is pending: one at a time, in key order)
//! target  applies it (events under the key; the appliers raise the highest key
//!         received from the source), or, for a key at or below that, nothing
//!         -> source: COMMAND_DISTRIBUTION ACKNOWLEDGE (key, target)
//! source  ACKNOWLEDGED (target, key); FINISHED when no target is left;
//!         -> target: the next pending command, if any
//! ```
//!
//! `Engine::pending_distributions` sends the oldest pending command of each
//! target again every `DISTRIBUTION_RETRY_MS` (at once after a restore), so a
//! lost command, a lost acknowledgement or a leader change loses nothing;
//! when each was last sent is leader-local bookkeeping. Because every source
//! sends one command per target at a time in key order, the target knows a
//! duplicate from the highest key it applied, and keeps one key per source.

use crate::engine::{rejection, Ctx, Engine};
use crate::key::partition_of;
use crate::record::*;

/// Time after which an unacknowledged distributed command is sent again.
pub const DISTRIBUTION_RETRY_MS: i64 = 10_000;

impl Engine {
    /// Distributes `value` with `intent` under `key` to every other partition.
    pub(crate) fn distribute(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        intent: Intent,
        value: RecordValue,
    ) {
        if self.partition_count == 1 {
            return;
        }
        let others: Vec<u32> = (1..=self.partition_count)
            .filter(|&p| p != self.partition_id)
            .collect();
        self.distribute_to(ctx, key, intent, value, &others);
    }

    /// Distributes `value` with `intent` under `key` to the partitions
    /// `targets` (none of them this one).
    pub(crate) fn distribute_to(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        intent: Intent,
        value: RecordValue,
        targets: &[u32],
    ) {
        let value_type = value.value_type();
        self.emit(
            ctx,
            key,
            Intent::Started,
            RecordValue::CommandDistribution(CommandDistributionRecord {
                partition_id: self.partition_id,
                value_type,
                intent,
                command_value: Some(Box::new(value)),
            }),
        );
        for &partition in targets {
            assert_ne!(
                partition, self.partition_id,
                "a distribution goes elsewhere"
            );
            let idle = self.state.distribution_head(partition).is_none();
            self.emit(
                ctx,
                key,
                Intent::Distributing,
                RecordValue::CommandDistribution(CommandDistributionRecord {
                    partition_id: partition,
                    value_type,
                    intent,
                    command_value: None,
                }),
            );
            if idle {
                self.send_distribution(ctx, partition, key);
            }
        }
    }

    /// Sends the distributed command `key` to `partition` now.
    fn send_distribution(&mut self, ctx: &mut Ctx, partition: u32, key: i64) {
        if let Some(command) = self.distributed_command(key, ctx.timestamp_ms) {
            self.distribution_sent
                .insert((partition, key), ctx.timestamp_ms);
            ctx.out.distributions.push((partition, command));
        }
    }

    /// The command stored for distribution `key`, stamped `timestamp_ms`.
    fn distributed_command(&self, key: i64, timestamp_ms: i64) -> Option<Record> {
        let d = self.state.distributed_commands.get(&key)?;
        let value = d
            .command_value
            .as_deref()
            .expect("a STARTED distribution carries its command")
            .clone();
        let mut command = Record::command(key, d.intent, value, None);
        command.timestamp_ms = timestamp_ms;
        command.tenant = self.state.tenancy.of(key);
        Some(command)
    }

    /// The partition a distributed command `cmd` came from (the partition of
    /// its key), checked to be another one.
    pub(crate) fn distribution_source(&self, cmd: &Record) -> Result<u32, Rejection> {
        let source = partition_of(cmd.key);
        if cmd.key <= 0
            || source == 0
            || source == self.partition_id
            || source > self.partition_count
        {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected a distributed {} {} to carry a key of another of the {} partitions, but key '{}' is of partition {source}",
                    cmd.value_type.name(),
                    cmd.intent.name(),
                    self.partition_count,
                    cmd.key
                ),
            ));
        }
        Ok(source)
    }

    /// Tells `source` that the distributed command `cmd` is applied here.
    pub(crate) fn acknowledge_distribution(&mut self, ctx: &mut Ctx, cmd: &Record, source: u32) {
        let ack = Record::command(
            cmd.key,
            Intent::Acknowledge,
            RecordValue::CommandDistribution(CommandDistributionRecord {
                partition_id: self.partition_id,
                value_type: cmd.value_type,
                intent: cmd.intent,
                command_value: None,
            }),
            None,
        );
        self.send(ctx, source, ack);
    }

    /// COMMAND_DISTRIBUTION ACKNOWLEDGE from a target partition.
    pub(crate) fn command_distribution_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        d: &CommandDistributionRecord,
    ) -> Result<(), Rejection> {
        if cmd.intent != Intent::Acknowledge {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "command COMMAND_DISTRIBUTION {} is not supported",
                    cmd.intent.name()
                ),
            ));
        }
        let (key, target) = (cmd.key, d.partition_id);
        if !self.state.distribution_pending.contains(&(target, key)) {
            return Err(rejection(
                RejectionType::NotFound,
                format!(
                    "Expected to acknowledge the distribution '{key}' to partition {target}, but it is not pending"
                ),
            ));
        }
        let stored = self
            .state
            .distributed_commands
            .get(&key)
            .expect("a pending distribution has its command")
            .clone();
        let (value_type, intent) = (stored.value_type, stored.intent);
        self.emit(
            ctx,
            key,
            Intent::Acknowledged,
            RecordValue::CommandDistribution(CommandDistributionRecord {
                partition_id: target,
                value_type,
                intent,
                command_value: None,
            }),
        );
        let done = (1..=self.partition_count)
            .all(|p| !self.state.distribution_pending.contains(&(p, key)));
        if done {
            self.emit(
                ctx,
                key,
                Intent::Finished,
                RecordValue::CommandDistribution(CommandDistributionRecord {
                    partition_id: self.partition_id,
                    value_type,
                    intent,
                    command_value: None,
                }),
            );
        }
        if (value_type, intent) == (ValueType::Scale, Intent::Bootstrap) {
            self.partition_bootstrapped(ctx, key, target);
        }
        if let Some(next) = self.state.distribution_head(target) {
            self.send_distribution(ctx, target, next);
        }
        Ok(())
    }

    /// The oldest unacknowledged distributed command of each target that was
    /// not sent within `DISTRIBUTION_RETRY_MS`, at most `max`.
    pub(crate) fn pending_command_distributions(
        &mut self,
        now_ms: i64,
        max: usize,
        out: &mut Vec<(u32, Record)>,
    ) {
        let state = &self.state;
        self.distribution_sent
            .retain(|entry, _| state.distribution_pending.contains(entry));
        for partition in 1..=self.partition_count {
            if out.len() >= max {
                return;
            }
            let Some(key) = self.state.distribution_head(partition) else {
                continue;
            };
            if let Some(&at) = self.distribution_sent.get(&(partition, key)) {
                if now_ms - at < DISTRIBUTION_RETRY_MS {
                    continue;
                }
            }
            if let Some(command) = self.distributed_command(key, now_ms) {
                self.distribution_sent.insert((partition, key), now_ms);
                out.push((partition, command));
            }
        }
    }
}
