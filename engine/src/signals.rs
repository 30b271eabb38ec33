//! Signals: a broadcast reaches every partition. The partition that receives
//! the client's `SIGNAL BROADCAST` writes `BROADCASTED` and sends the same
//! command (with the signal's key) to every other partition; each partition
//! then triggers its signal subscriptions (catch events, boundary events,
//! event sub-process starts); partition 1 also starts the processes whose
//! latest version has a signal start event of that name (one instance each).

use crate::engine::{rejection, Ctx, Engine, ResponseValue};
use crate::events::evaluate_text;
use crate::model::EventDefinition;
use crate::record::*;
use crate::scope_variables::parse_document;

impl Engine {
    /// SIGNAL BROADCAST: from a client (key `-1`) or distributed (key set).
    pub(crate) fn broadcast_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        s: &SignalRecord,
    ) -> Result<(), Rejection> {
        if s.signal_name.trim().is_empty() {
            return Err(rejection(
                RejectionType::InvalidArgument,
                "Expected to broadcast a signal with a name, but the name is empty".into(),
            ));
        }
        parse_document(&s.variables).map_err(|e| rejection(RejectionType::InvalidArgument, e))?;
        let key = self.broadcast(ctx, cmd.key, s);
        Self::respond(ctx, cmd, ResponseValue::SignalBroadcasted { key });
        Ok(())
    }

    /// Writes the broadcast, distributes it when it starts here, and
    /// triggers this partition's subscriptions. Returns the signal key.
    pub(crate) fn broadcast(&mut self, ctx: &mut Ctx, key: i64, s: &SignalRecord) -> i64 {
        let distributed = key != NO_KEY;
        let key = if distributed {
            key
        } else {
            self.state.keys.next_key()
        };
        self.emit(
            ctx,
            key,
            Intent::Broadcasted,
            RecordValue::Signal(s.clone()),
        );
        if !distributed {
            for p in 1..=self.partition_count {
                if p != self.partition_id {
                    let mut command = Record::command(
                        key,
                        Intent::Broadcast,
                        RecordValue::Signal(s.clone()),
                        None,
                    );
                    command.timestamp_ms = ctx.timestamp_ms;
                    command.source_record_position = ctx.position;
                    command.tenant = ctx.tenant.clone();
                    ctx.out.distributions.push((p, command));
                }
            }
        }
        let name = crate::tenancy::scoped(&ctx.tenant, &s.signal_name).into_owned();
        let subs: Vec<i64> = self
            .state
            .signal_by_name
            .range((name.clone(), i64::MIN)..)
            .take_while(|(n, _)| *n == name)
            .map(|&(_, k)| k)
            .collect();
        for sub_key in subs {
            let Some(sub) = self.state.signal_subscriptions.get(&sub_key).cloned() else {
                continue; // closed by an earlier trigger of this broadcast
            };
            let catch = self
                .state
                .process(sub.process_definition_key)
                .and_then(|d| d.model.index_of(&sub.element_id));
            if let Some(catch) = catch {
                self.trigger(ctx, sub.element_instance_key, catch, &s.variables);
            }
        }
        if self.partition_id != 1 {
            // Signal start events start one instance, on partition 1.
            return key;
        }
        let latest = self.state.latest_processes(&ctx.tenant);
        for def in latest {
            let start = def
                .model
                .element(0)
                .event_starts
                .iter()
                .copied()
                .find(|&st| match &def.model.element(st).event {
                    Some(EventDefinition::Signal { name }) => {
                        evaluate_text(name, &[], &self.clock, "signal name")
                            .is_ok_and(|n| n == s.signal_name)
                    }
                    _ => false,
                });
            if let Some(start) = start {
                self.start_instance_at(ctx, &def, start, &s.variables, None);
            }
        }
        key
    }
}
