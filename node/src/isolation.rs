//! Processing isolation: a committed command whose processing fails
//! unexpectedly (a panic in the engine) becomes a `PROCESSING_ERROR`
//! rejection instead of taking the replica down.
//!
//! Every replica processes every committed command with the same
//! deterministic engine, so a command that panics on one replica panics on
//! all of them, and again on each after a restart: left alone it would stop
//! the whole cluster for good at that log entry. Instead:
//!
//! ```text
//! Partition::apply(i) ── catch_unwind ──> ProcessingFailure { index i, ordinal k }
//! recover:  remember (i, k) as failed
//!           restore the snapshot the Raft log reader holds (or the empty state)
//!           apply its entries up to and including i again, outputs of
//!             the commands before (i, k) discarded (they went out already)
//!           (i, k) is now rejected without being processed; the commands
//!             after it in entry i run and answer as usual
//! ```
//!
//! The engine applies events to its state as it emits them, so after a panic
//! the state may be half changed; the rebuild puts it exactly where it would
//! be had the command been rejected up front, on every replica alike.
//! Leader-local parts (waiting requests, job push streams, the export
//! hand-off position) are kept. The failed set lives in memory only (what a
//! snapshot covers is dropped from it at the next failure): after
//! a restart the same command fails the same way when its entry is applied
//! again, and is caught and rejected again with the same result.
//!
//! The ordinal counts the commands of one entry: 0 is the entry's command,
//! 1.. are the follow-ups drained after it.

use std::any::Any;

use engine::{Intent, Record, ValueType};
use raft::{EntryKind, LogReader, MemLog};

use crate::metrics::{Metrics, PartitionLabel};
use crate::partition::{decode_entry, Applied, Partition};
use replica::codec::decode_snapshot;

/// Failures one recovery handles (each one rebuilds the state) before it
/// gives up; every command of an entry failing is far below it.
pub const MAX_FAILURES_PER_RECOVERY: usize = 1024;
/// Bytes of log entries read per call while rebuilding.
const REPLAY_BATCH_BYTES: u64 = 4 << 20;
/// Longest panic message kept in a rejection reason.
const MAX_MESSAGE_CHARS: usize = 512;

/// A command whose processing panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingFailure {
    /// Raft index of the entry.
    pub index: u64,
    /// The command's ordinal in the entry (0: the entry's command).
    pub ordinal: u32,
    /// What the command was.
    pub value_type: ValueType,
    /// Its intent.
    pub intent: Intent,
    /// The panic message.
    pub message: String,
}

impl ProcessingFailure {
    /// A failure from a caught panic's payload.
    pub fn new(
        index: u64,
        ordinal: u32,
        command: &Record,
        panic: Box<dyn Any + Send + 'static>,
    ) -> Self {
        let message = if let Some(s) = panic.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic without a message".to_string()
        };
        ProcessingFailure {
            index,
            ordinal,
            value_type: command.value_type,
            intent: command.intent,
            message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
        }
    }

    /// The rejection reason the client and the exported record get. It is
    /// part of the replicated state, so it leaves out the panic message
    /// (which only the log carries): the same on every replica whatever a
    /// message might hold.
    pub fn reason(&self) -> String {
        format!(
            "Expected to process command {} {} at position {}, but processing failed \
             unexpectedly (the broker log names the cause); the command was rejected \
             and changed nothing",
            self.value_type.name(),
            self.intent.name(),
            self.index,
        )
    }
}

/// Turns `failure` into a rejection: rebuilds `partition`'s replicated state
/// from the snapshot and entries `reader` holds for it, rejecting the
/// failed command and applying the rest of its entry; `out` gets the
/// outputs of the commands after the failed one (and the rejection's
/// answer). An error only when the log reader lacks what the rebuild needs,
/// or more than [`MAX_FAILURES_PER_RECOVERY`] commands fail.
pub fn recover(
    partition: &mut Partition,
    reader: &MemLog,
    metrics: &Metrics,
    failure: ProcessingFailure,
    out: &mut Applied,
) -> Result<(), String> {
    let p = partition.id();
    let group = u64::from(p);
    let mut failure = failure;
    // Outputs before the latest failure point went out already.
    let mut quiet = (failure.index, failure.ordinal);
    for _ in 0..MAX_FAILURES_PER_RECOVERY {
        quiet = quiet.max((failure.index, failure.ordinal));
        tracing::error!(
            partition = p,
            position = failure.index,
            ordinal = failure.ordinal,
            value_type = failure.value_type.name(),
            intent = failure.intent.name(),
            panic = %failure.message,
            "processing a committed command failed; rejecting it and rebuilding the state"
        );
        metrics
            .processing_errors
            .get_or_create(&PartitionLabel { partition: p })
            .inc();
        let snapshot = reader.snapshot(group);
        let snapshot_index = snapshot.as_ref().map_or(0, |m| m.index);
        partition.forget_failed_up_to(snapshot_index);
        partition.mark_failed(failure.index, failure.ordinal, failure.reason());
        if reader.first_index(group) > snapshot_index + 1 || reader.last_index(group) < quiet.0 {
            return Err(format!(
                "cannot rebuild the state to reject the failed command at {}: the log \
                 holds entries {}..={} after the snapshot at {snapshot_index}",
                quiet.0,
                reader.first_index(group),
                reader.last_index(group)
            ));
        }
        let data = snapshot.map(|_| reader.snapshot_chunk(group, 0, u64::MAX));
        let state = match &data {
            Some(data) => Some(decode_snapshot(data).map_err(|e| e.0)?.1),
            None => None,
        };
        partition.begin_rebuild(state.as_ref().map(|s| (snapshot_index, &s[..])), quiet)?;
        match replay(partition, reader, snapshot_index + 1, quiet.0, out)? {
            None => {
                partition.end_rebuild();
                return Ok(());
            }
            Some(next) => failure = next,
        }
    }
    Err(format!(
        "more than {MAX_FAILURES_PER_RECOVERY} commands failed while rebuilding the state \
         up to entry {}",
        failure.index
    ))
}

/// Applies the entries `from..=to` again; a further failure is returned.
fn replay(
    partition: &mut Partition,
    reader: &MemLog,
    from: u64,
    to: u64,
    out: &mut Applied,
) -> Result<Option<ProcessingFailure>, String> {
    let p = partition.id();
    let group = u64::from(p);
    let mut next = from;
    let mut batch = Vec::new();
    while next <= to {
        batch.clear();
        reader.entries(group, next, to + 1, REPLAY_BATCH_BYTES, &mut batch);
        if batch.is_empty() {
            return Err(format!(
                "entry {next} is missing from the log while rebuilding"
            ));
        }
        for e in batch.drain(..) {
            next = e.index + 1;
            let app = match e.kind {
                EntryKind::ConfChange => None,
                EntryKind::Normal => {
                    decode_entry(p, e.index, &e.data).map_err(|b| b.to_string())?
                }
            };
            if let Err(failure) = partition.apply(e.index, app, out) {
                return Ok(Some(failure));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandError, PartitionCommand, RejectionKind};
    use bytes::Bytes;
    use engine::RecordValue;
    use raft::{Entry, GroupConfig};
    use replica::codec::encode_snapshot;
    use tokio::sync::oneshot;

    const NOW_MS: i64 = 1_700_000_000_000;
    const PROCESS: &str = r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d"><bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="work"/></bpmn:extensionElements></bpmn:serviceTask><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="t"/></bpmn:process></bpmn:definitions>"#;

    type Reply = oneshot::Receiver<Result<crate::command::CommandReply, CommandError>>;

    /// Instance creations whose variables name `boom` panic after the engine
    /// applied their events.
    fn booms(command: &Record) -> bool {
        matches!(&command.value, RecordValue::ProcessInstanceCreation(c) if c.variables.contains("boom"))
    }

    fn create(variables: &str) -> PartitionCommand {
        PartitionCommand::CreateInstance {
            definition_key: 0,
            bpmn_process_id: "p".into(),
            version: -1,
            variables: variables.into(),
            await_result: None,
            start_instructions: Vec::new(),
        }
    }

    /// One replica: a partition over an in-memory Raft log.
    struct Replica {
        partition: Partition,
        log: MemLog,
        metrics: Metrics,
    }

    impl Replica {
        fn new(panics: bool) -> Self {
            Self::panicking_on(panics.then_some(booms))
        }

        fn panicking_on(seam: Option<fn(&Record) -> bool>) -> Self {
            let mut partition = Partition::new(1, 1, 0, 0);
            partition.enable_export(1 << 20);
            partition.panic_after = seam;
            Replica {
                partition,
                log: MemLog::new(),
                metrics: Metrics::new(),
            }
        }

        fn submit(&mut self, command: PartitionCommand) -> Reply {
            let (tx, rx) = oneshot::channel();
            let data = self
                .partition
                .prepare(&command, NOW_MS, tx)
                .expect("the command is proposed");
            self.append(data);
            rx
        }

        fn append(&mut self, data: Bytes) {
            let index = self.log.last_index(1) + 1;
            self.log.append(
                1,
                &[Entry {
                    term: 1,
                    index,
                    kind: EntryKind::Normal,
                    data,
                }],
            );
            self.apply_up_to(index);
        }

        fn apply_up_to(&mut self, last: u64) {
            let mut entries = Vec::new();
            let from = self.partition.applied() + 1;
            self.log.entries(1, from, last + 1, u64::MAX, &mut entries);
            for e in entries {
                let app = decode_entry(1, e.index, &e.data).expect("decodes");
                let mut out = Applied::default();
                if let Err(failure) = self.partition.apply(e.index, app, &mut out) {
                    recover(
                        &mut self.partition,
                        &self.log,
                        &self.metrics,
                        failure,
                        &mut out,
                    )
                    .expect("recovers");
                }
            }
        }

        fn take_snapshot(&mut self) {
            let config = GroupConfig::new([1]);
            let data = encode_snapshot(&config, &self.partition.snapshot());
            self.log.compact(1, self.partition.applied(), config, data);
        }

        /// Live process instances.
        fn instances(&self) -> usize {
            let state = self.partition.engine().state();
            let keys: std::collections::BTreeSet<i64> = state
                .instances
                .values()
                .map(|i| i.process_instance_key)
                .collect();
            keys.len()
        }

        fn errors(&self) -> u64 {
            self.metrics
                .processing_errors
                .get_or_create(&PartitionLabel { partition: 1 })
                .get()
        }
    }

    fn answer(mut rx: Reply) -> Result<crate::command::CommandReply, CommandError> {
        rx.try_recv().expect("answered")
    }

    #[test]
    fn a_panicking_command_is_rejected_and_changes_nothing() {
        let mut a = Replica::new(true);
        assert!(answer(a.submit(PartitionCommand::Deploy {
            resources: vec![("p.bpmn".into(), PROCESS.as_bytes().to_vec())],
        }))
        .is_ok());
        assert!(answer(a.submit(create("{}"))).is_ok());
        a.take_snapshot();
        assert!(answer(a.submit(create("{}"))).is_ok());
        let boom_index = a.log.last_index(1) + 1;
        match answer(a.submit(create(r#"{"boom": 1}"#))) {
            Err(CommandError::Rejected { kind, reason, .. }) => {
                assert_eq!(kind, RejectionKind::ProcessingError);
                assert!(
                    reason.contains("processing failed unexpectedly"),
                    "{reason}"
                );
                assert!(
                    reason.contains("PROCESS_INSTANCE_CREATION CREATE"),
                    "{reason}"
                );
            }
            other => panic!("expected a processing error, got {other:?}"),
        }
        assert_eq!(a.errors(), 1);
        // The engine had created the instance when it panicked: the rebuild
        // took it back.
        assert_eq!(a.instances(), 2);
        assert!(answer(a.submit(create("{}"))).is_ok());
        assert_eq!(a.instances(), 3);

        // The same log, the command rejected up front.
        let mut b = Replica::new(false);
        let reason = ProcessingFailure {
            index: boom_index,
            ordinal: 0,
            value_type: ValueType::ProcessInstanceCreation,
            intent: Intent::Create,
            message: "test seam: processing of a matching command panics".into(),
        }
        .reason();
        b.partition.mark_failed(boom_index, 0, reason);
        let snapshot = a.log.snapshot(1).expect("taken");
        let data = a.log.snapshot_chunk(1, 0, snapshot.size_bytes);
        let (_, state) = decode_snapshot(&data).expect("decodes");
        b.partition
            .restore(snapshot.index, &state)
            .expect("restores");
        b.log = a.log.clone();
        b.apply_up_to(a.log.last_index(1));
        assert_eq!(b.errors(), 0);
        assert_eq!(a.partition.snapshot(), b.partition.snapshot());

        // A restart: the snapshot before the failure, the entries after it;
        // the command fails again, is caught again, with the same result.
        let mut c = Replica::new(true);
        c.log = a.log.clone();
        c.partition
            .restore(snapshot.index, &state)
            .expect("restores");
        c.apply_up_to(a.log.last_index(1));
        assert_eq!(c.errors(), 1);
        assert_eq!(a.partition.snapshot(), c.partition.snapshot());
    }

    #[test]
    fn a_failure_without_a_snapshot_rebuilds_from_the_empty_state() {
        let mut a = Replica::new(true);
        a.submit(PartitionCommand::Deploy {
            resources: vec![("p.bpmn".into(), PROCESS.as_bytes().to_vec())],
        });
        let first = answer(a.submit(create("{}")));
        let boom = answer(a.submit(create(r#"{"boom": 2}"#)));
        assert!(first.is_ok());
        assert!(matches!(
            boom,
            Err(CommandError::Rejected {
                kind: RejectionKind::ProcessingError,
                ..
            })
        ));
        assert_eq!(a.instances(), 1);
        let exported: usize = a
            .partition
            .exports_mut()
            .map(|q| q.lag_records())
            .unwrap_or_default();
        let mut again = Replica::new(true);
        again.log = a.log.clone();
        again.apply_up_to(a.log.last_index(1));
        assert_eq!(again.errors(), 1);
        assert_eq!(a.partition.snapshot(), again.partition.snapshot());
        assert_eq!(
            again.partition.exports_mut().map(|q| q.lag_records()),
            Some(exported)
        );
    }

    /// Message correlations to a waiting instance panic: a follow-up command
    /// of the publish entry.
    fn correlations(command: &Record) -> bool {
        matches!(command.value, RecordValue::ProcessMessageSubscription(_))
            && command.intent == Intent::Correlate
    }

    const WAITING: &str = r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d"><bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message><bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/><bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="e"/></bpmn:process></bpmn:definitions>"#;

    #[test]
    fn a_panicking_follow_up_is_rejected_and_the_commands_before_it_answer_once() {
        let mut a = Replica::panicking_on(Some(correlations));
        let deploy = PartitionCommand::Deploy {
            resources: vec![("w.bpmn".into(), WAITING.as_bytes().to_vec())],
        };
        assert!(answer(a.submit(deploy)).is_ok());
        assert!(answer(a.submit(create(r#"{"orderId": "o1"}"#))).is_ok());
        let published = a.submit(PartitionCommand::PublishMessage {
            name: "paid".into(),
            correlation_key: "o1".into(),
            time_to_live_ms: 60_000,
            message_id: String::new(),
            variables: "{}".into(),
        });
        // The publish itself was processed and answered before its
        // follow-up failed.
        assert!(answer(published).is_ok());
        assert_eq!(a.errors(), 1);
        let failed = a.partition.failed_commands();
        assert_eq!(failed.len(), 1);
        let (index, ordinal) = failed[0];
        assert!(ordinal > 0, "a follow-up failed, not the entry's command");
        assert_eq!(a.instances(), 1, "the correlation changed nothing");

        let mut b = Replica::new(false);
        let reason = ProcessingFailure {
            index,
            ordinal,
            value_type: ValueType::ProcessMessageSubscription,
            intent: Intent::Correlate,
            message: String::new(),
        }
        .reason();
        b.partition.mark_failed(index, ordinal, reason);
        b.log = a.log.clone();
        b.apply_up_to(a.log.last_index(1));
        assert_eq!(a.partition.snapshot(), b.partition.snapshot());

        let mut c = Replica::panicking_on(Some(correlations));
        c.log = a.log.clone();
        c.apply_up_to(a.log.last_index(1));
        assert_eq!(c.errors(), 1);
        assert_eq!(a.partition.snapshot(), c.partition.snapshot());
    }
}
