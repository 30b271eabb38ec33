//! The engine of one partition: `process` turns a committed command into
//! events (applied at once), rejections, responses, commands for other
//! partitions and job pushes; `replay` applies records read from the log.
//!
//! ```text
//! Engine { partition_id, partition_count, state, streams (both replicated) }
//! ```
//!
//! Follow-up work of a command (activating the next element, completing a
//! scope, ...) runs inside the same `process` call, up to
//! `MAX_STEPS_PER_COMMAND` steps; what is left is returned as follow-up
//! `PROCESS_INSTANCE` commands (`ACTIVATE_ELEMENT`, `COMPLETE_ELEMENT`,
//! `TERMINATE_ELEMENT`) to append and process later like any command. Only
//! events change the state, so replaying the events gives the same state.
//!
//! Owned by the shard thread of its partition; lives as long as the partition
//! is open on that node.

use crate::collectives::Kind;
use crate::expression::Clock;
use crate::record::*;
use crate::state::{DeployedProcess, State};
use crate::streams::JobStreams;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use thiserror::Error;

/// Most BPMN steps one command runs before the rest is deferred to follow-up commands.
pub const MAX_STEPS_PER_COMMAND: usize = 1024;
/// Records most commands write (sizes the output vector once: records are
/// large, and growing the vector copies them).
const RECORDS_PER_COMMAND_HINT: usize = 32;
/// Largest output vector (in records) kept for the next command by
/// [`Engine::recycle`]; a larger one, from a rare large command, is freed.
const MAX_RECYCLED_RECORDS: usize = 1024;
/// Version of the snapshot format. Version 4 adds the deployed DRGs and
/// decisions and the Camunda user tasks; version 5 the listener progress of
/// element instances, the open user task transitions and forms. An earlier
/// snapshot is refused with `UnsupportedVersion` (its pending distributions
/// hold records of an earlier record format), as are logs of an earlier
/// record format: data of a previous format is not upgraded. Version 6 is
/// version 5 followed by the identity state (users, roles, authorizations);
/// 7 adds groups, tenants and mapping rules to it, and 6 is still read.
/// The identity state is written only when it holds something, so a
/// release that reads 5 alone can follow a broker without any. Version 8
/// is version 7 followed by the tenancy (see `tenancy`), written only when
/// something belongs to a tenant other than the default. Version 9 is
/// version 8 (identity and tenancy always there) followed by the job push
/// streams, written only when a stream is registered. Version 10 is
/// version 9 (streams always there) followed by the scaling state, written
/// only once partitions were added.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 10;
/// The snapshot format with job streams, without a scaling state.
pub const SNAPSHOT_FORMAT_STREAMS: u8 = 9;
/// The snapshot format with identity and tenancy, without job streams.
pub const SNAPSHOT_FORMAT_TENANCY: u8 = 8;
/// The snapshot format with an identity state and without tenancy.
pub const SNAPSHOT_FORMAT_IDENTITY: u8 = 7;
/// The snapshot format of identity states without groups, tenants and
/// mapping rules, still read.
pub const SNAPSHOT_FORMAT_IDENTITY_V6: u8 = 6;
/// The snapshot format written when the identity state is empty.
pub const SNAPSHOT_FORMAT_WITHOUT_IDENTITY: u8 = 5;

/// A due command handed out (see [`Engine::due_commands`]) that the state
/// does not reflect after this long is handed out again.
pub const DUE_RESEND_MS: i64 = 5_000;

/// A job handed to a worker (activation response or push).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivatedJob {
    /// Job key.
    pub key: i64,
    /// The job, with worker, deadline and fetched variables.
    pub job: JobRecord,
    /// When the job was created (timestamp of the command that created it,
    /// epoch ms): activation latency is the activation's timestamp minus this.
    pub created_ms: i64,
    /// Tenant of the job's process.
    pub tenant: Tenant,
}

/// What a client receives for a processed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseValue {
    /// DeployResource.
    Deployment {
        /// Deployment key.
        key: i64,
        /// Deployed processes.
        processes: Vec<ProcessMetadata>,
        /// Deployed DRGs (one per DMN resource).
        decision_requirements: Vec<DecisionRequirementsMetadata>,
        /// Deployed decisions.
        decisions: Vec<DecisionMetadata>,
        /// Deployed forms (one per `.form` resource).
        forms: Vec<crate::forms::FormMetadata>,
        /// The tenant deployed to.
        tenant: Tenant,
    },
    /// EvaluateDecision: the `EVALUATED` or `FAILED` event.
    DecisionEvaluated {
        /// Key of the evaluation (the decision instance key).
        key: i64,
        /// The event's value.
        evaluation: Box<DecisionEvaluationRecord>,
        /// Tenant of the decision.
        tenant: Tenant,
    },
    /// CreateProcessInstance.
    ProcessInstanceCreated {
        /// Definition key.
        process_definition_key: i64,
        /// Process id.
        bpmn_process_id: Arc<str>,
        /// Definition version.
        version: i32,
        /// New instance.
        process_instance_key: i64,
        /// Tenant of the process.
        tenant: Tenant,
    },
    /// CreateProcessInstanceWithResult, once the instance completed.
    ProcessInstanceResult {
        /// Definition key.
        process_definition_key: i64,
        /// Process id.
        bpmn_process_id: Arc<str>,
        /// Definition version.
        version: i32,
        /// The instance.
        process_instance_key: i64,
        /// Root variables (or the fetched ones) as a JSON object.
        variables: String,
        /// Tenant of the process.
        tenant: Tenant,
    },
    /// CancelProcessInstance.
    ProcessInstanceCanceled {
        /// The instance.
        process_instance_key: i64,
    },
    /// ActivateJobs.
    JobBatch {
        /// Activated jobs.
        jobs: Vec<ActivatedJob>,
        /// More jobs were activatable than returned.
        truncated: bool,
    },
    /// CompleteJob, FailJob, ThrowError, UpdateJobRetries, UpdateJobTimeout.
    Job {
        /// Job key.
        key: i64,
        /// The resulting event intent.
        intent: Intent,
    },
    /// ResolveIncident.
    IncidentResolved {
        /// Incident key.
        key: i64,
    },
    /// SetVariables.
    VariablesSet {
        /// Key of the variable document.
        key: i64,
    },
    /// PublishMessage.
    MessagePublished {
        /// Key of the message.
        key: i64,
    },
    /// BroadcastSignal.
    SignalBroadcasted {
        /// Key of the signal.
        key: i64,
    },
    /// DeleteResource (the gateway answers `DeleteResourceResponse {}`).
    ResourceDeleted {
        /// Key of the resource deletion.
        key: i64,
        /// The deleted resource (process definition key).
        resource_key: i64,
    },
    /// Assign, claim, update or complete a user task.
    UserTask {
        /// User task key.
        key: i64,
        /// The resulting event intent.
        intent: Intent,
    },
    /// Activate elements of an ad-hoc sub-process.
    AdHocActivated {
        /// Key of the ad-hoc sub-process instance.
        key: i64,
    },
    /// ModifyProcessInstance.
    ProcessInstanceModified {
        /// Key of the `MODIFIED` event (the process instance key).
        key: i64,
    },
    /// MigrateProcessInstance.
    ProcessInstanceMigrated {
        /// Key of the `MIGRATED` event (the process instance key).
        key: i64,
    },
    /// Create, update or delete a user: the user as stored (with the hash
    /// of its password, which the gateway does not pass on).
    User(crate::identity::UserRecord),
    /// Create, change or delete a role or an authorization: its key.
    IdentityChanged {
        /// Key of the role or authorization.
        key: i64,
    },
    /// SCALE_UP: the partition count from now on.
    Scaled {
        /// The partition count.
        partitions: u32,
    },
}

/// A job pushed to a stream: the activation is in `Processed::records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobPush {
    /// Stream that gets the job.
    pub stream_id: u64,
    /// The activated job.
    pub job: ActivatedJob,
}

/// Everything `process` produced for one command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Records to append to this partition's log, in order.
    pub records: Vec<Record>,
    /// Responses to client requests, by request id.
    pub responses: Vec<(u64, Result<ResponseValue, Rejection>)>,
    /// Commands for other partitions.
    pub distributions: Vec<(u32, Record)>,
    /// Jobs activated for push streams; push after the records are committed.
    pub pushed_jobs: Vec<JobPush>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// Empty input.
    #[error("snapshot is empty")]
    Empty,
    /// Unknown version byte.
    #[error(
        "snapshot format version {found} is not supported (expected {SNAPSHOT_FORMAT_WITHOUT_IDENTITY} to {SNAPSHOT_FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// Version found.
        found: u8,
    },
    /// The body does not decode.
    #[error("snapshot body is malformed: {reason}")]
    Malformed {
        /// Decoder message.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    partition_id: u32,
    partition_count: u32,
    state: State,
}

/// [`SnapshotBody`] borrowing the state: the same encoding, no copy; the
/// identity state follows when there is one (version 6).
#[derive(Serialize)]
struct SnapshotBodyRef<'a> {
    partition_id: u32,
    partition_count: u32,
    state: &'a State,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a crate::identity::Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenancy: Option<&'a crate::tenancy::Tenancy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    streams: Option<&'a JobStreams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scaling: Option<&'a crate::scaling::Scaling>,
}

/// A step of BPMN execution inside one command.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Activate {
        process_definition_key: i64,
        element: u32,
        flow_scope_key: i64,
        process_instance_key: i64,
        key: i64,
    },
    ContinueActivation(i64),
    Complete(i64),
    ContinueCompletion(i64),
    Terminate(i64),
}

/// Working set of one `process` call.
pub(crate) struct Ctx {
    pub position: i64,
    pub timestamp_ms: i64,
    /// The tenant the command acts in; every record it writes carries it.
    pub tenant: Tenant,
    pub out: Processed,
    pub steps: VecDeque<Step>,
}

/// The parts of an engine that are not replicated; see
/// [`Engine::take_leader_local`].
#[derive(Default)]
pub struct LeaderLocal {
    due_requested: BTreeMap<(i64, i64), i64>,
    last_sent: BTreeMap<i64, (i64, Intent)>,
    distribution_sent: BTreeMap<(u32, i64), i64>,
}

impl std::fmt::Debug for LeaderLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLocal").finish_non_exhaustive()
    }
}

/// The engine of one partition.
pub struct Engine {
    pub(crate) partition_id: u32,
    pub(crate) partition_count: u32,
    pub(crate) state: State,
    /// Job push streams (replicated: added and removed by log entries).
    pub(crate) streams: JobStreams,
    /// Partitions added at run time (replicated).
    pub(crate) scaling: crate::scaling::Scaling,
    /// (key, due time) of due commands handed out and not yet reflected in
    /// the state -> when they were handed out; leader-local, not
    /// replicated.
    due_requested: BTreeMap<(i64, i64), i64>,
    /// Subscription key -> (when, what) its command was last sent by
    /// `pending_distributions`; leader-local, not replicated.
    pub(crate) last_sent: BTreeMap<i64, (i64, Intent)>,
    /// (target partition, distribution key) -> when the distributed command
    /// was last sent; leader-local, not replicated.
    pub(crate) distribution_sent: BTreeMap<(u32, i64), i64>,
    /// What FEEL reads as the current time: the timestamp of the command
    /// being processed, in the configured zone (configuration, the same on
    /// every replica; not in the snapshot).
    pub(crate) clock: Clock,
    /// An empty output vector handed back by [`Engine::recycle`], for the
    /// next command: a command's records take several kilobytes, which the
    /// allocator would otherwise hand out and take back each time.
    spare_records: Vec<Record>,
}

impl Engine {
    /// An empty engine for `partition_id` (1-based) of `partition_count`.
    pub fn new(partition_id: u32, partition_count: u32) -> Self {
        assert!(
            partition_id >= 1 && partition_id <= partition_count,
            "partition {partition_id} out of 1..={partition_count}"
        );
        Self {
            partition_id,
            partition_count,
            state: State::new(partition_id),
            streams: JobStreams::default(),
            scaling: crate::scaling::Scaling::default(),
            due_requested: BTreeMap::new(),
            last_sent: BTreeMap::new(),
            distribution_sent: BTreeMap::new(),
            clock: Clock::utc(0),
            spare_records: Vec::new(),
        }
    }

    /// Partition of this engine.
    pub fn partition_id(&self) -> u32 {
        self.partition_id
    }

    /// Number of partitions of the cluster.
    pub fn partition_count(&self) -> u32 {
        self.partition_count
    }

    /// Highest command position whose events are in the state; commands
    /// above it still need `process` after a leader change.
    pub fn last_processed_position(&self) -> i64 {
        self.state.last_processed_position
    }

    /// Read access to the state (tests, metrics, exporters).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies a record read from the log (followers, restart). Commands are
    /// not processed again.
    pub fn replay(&mut self, record: &Record) {
        self.state.apply(record);
    }

    /// Sets the time zone of FEEL's `now()` and `today()` (an IANA name such
    /// as `Europe/Berlin`, or an offset); UTC by default. It must be the same
    /// on every replica of a partition.
    pub fn set_time_zone(&mut self, zone: &str) -> Result<(), String> {
        crate::expression::check_time_zone(zone)?;
        self.clock.zone = (zone != "UTC").then(|| Arc::from(zone));
        Ok(())
    }

    /// The time zone set by [`Engine::set_time_zone`].
    pub fn time_zone(&self) -> &str {
        self.clock.zone.as_deref().unwrap_or("UTC")
    }

    /// Processes one committed command (leader).
    pub fn process(&mut self, command: &Record) -> Processed {
        self.clock.now_ms = command.timestamp_ms;
        let mut ctx = Ctx {
            position: command.position,
            timestamp_ms: command.timestamp_ms,
            tenant: Tenant::default(),
            out: Processed {
                records: self.take_spare_records(),
                ..Processed::default()
            },
            steps: VecDeque::with_capacity(8),
        };
        if command.record_type != RecordType::Command {
            return ctx.out;
        }
        let owner = self.command_owner(command);
        ctx.tenant = owner.tenant.clone();
        let dispatched = crate::owner::check_caller(command, &owner)
            .and_then(|()| self.dispatch(&mut ctx, command));
        if let Err(rejection) = dispatched {
            self.reject(&mut ctx, command, rejection);
            return ctx.out;
        }
        self.run_steps(&mut ctx);
        ctx.out
    }

    /// Hands back the (drained) records vector of a [`Processed`], to hold
    /// the next command's records without a new allocation.
    pub fn recycle(&mut self, mut records: Vec<Record>) {
        if records.capacity() <= MAX_RECYCLED_RECORDS
            && records.capacity() > self.spare_records.capacity()
        {
            records.clear();
            self.spare_records = records;
        }
    }

    fn take_spare_records(&mut self) -> Vec<Record> {
        let spare = std::mem::take(&mut self.spare_records);
        if spare.capacity() == 0 {
            Vec::with_capacity(RECORDS_PER_COMMAND_HINT)
        } else {
            spare
        }
    }

    /// Rejects a command whose processing failed unexpectedly (a panic
    /// caught by the broker, which then rebuilt the state to what it was
    /// before the command): a `PROCESSING_ERROR` rejection, written and
    /// answered as any rejection, and nothing else. `reason` must be the same
    /// on every replica.
    pub fn reject_failed(&mut self, command: &Record, reason: String) -> Processed {
        let mut ctx = Ctx {
            position: command.position,
            timestamp_ms: command.timestamp_ms,
            tenant: self.command_owner(command).tenant,
            out: Processed::default(),
            steps: VecDeque::new(),
        };
        if command.record_type == RecordType::Command {
            let failed = rejection(RejectionType::ProcessingError, reason);
            self.reject(&mut ctx, command, failed);
        }
        ctx.out
    }

    /// Takes the parts of the engine that are not replicated (what due and
    /// distributed commands were handed out), to keep
    /// them across a rebuild of the replicated state.
    pub fn take_leader_local(&mut self) -> LeaderLocal {
        LeaderLocal {
            due_requested: std::mem::take(&mut self.due_requested),
            last_sent: std::mem::take(&mut self.last_sent),
            distribution_sent: std::mem::take(&mut self.distribution_sent),
        }
    }

    /// Puts back what [`Engine::take_leader_local`] took.
    pub fn set_leader_local(&mut self, local: LeaderLocal) {
        self.due_requested = local.due_requested;
        self.last_sent = local.last_sent;
        self.distribution_sent = local.distribution_sent;
    }

    fn dispatch(&mut self, ctx: &mut Ctx, cmd: &Record) -> Result<(), Rejection> {
        match (&cmd.value, cmd.intent) {
            (RecordValue::Deployment(d), Intent::Create) => self.deploy(ctx, cmd, d),
            (RecordValue::Deployment(d), Intent::Distribute) => {
                self.receive_distribution(ctx, cmd, d)
            }
            (
                RecordValue::ProcessInstanceCreation(c),
                Intent::Create | Intent::CreateWithAwaitingResult,
            ) => self.create_instance(ctx, cmd, c, cmd.intent == Intent::CreateWithAwaitingResult),
            (RecordValue::ProcessInstance(_), Intent::Cancel) => self.cancel_instance(ctx, cmd),
            (RecordValue::ProcessInstance(pi), Intent::ActivateElement) => {
                let def = self.definition(pi.process_definition_key)?;
                let element = def
                    .model
                    .instance_element(&pi.element_id, pi.bpmn_element_type)
                    .ok_or_else(|| {
                        rejection(
                            RejectionType::NotFound,
                            format!("no element '{}'", pi.element_id),
                        )
                    })?;
                ctx.steps.push_back(Step::Activate {
                    process_definition_key: pi.process_definition_key,
                    element,
                    flow_scope_key: pi.flow_scope_key,
                    process_instance_key: pi.process_instance_key,
                    key: NO_KEY,
                });
                Ok(())
            }
            (RecordValue::ProcessInstance(_), Intent::CompleteElement) => {
                ctx.steps.push_back(Step::Complete(cmd.key));
                Ok(())
            }
            (RecordValue::ProcessInstance(_), Intent::TerminateElement) => {
                ctx.steps.push_back(Step::Terminate(cmd.key));
                Ok(())
            }
            (RecordValue::JobBatch(b), Intent::Activate) => self.activate_jobs(ctx, cmd, b),
            (RecordValue::Job(j), _) => self.job_command(ctx, cmd, j),
            (RecordValue::UserTask(t), _) => self.user_task_command(ctx, cmd, t),
            (RecordValue::Incident(_), Intent::Resolve) => self.resolve_incident(ctx, cmd),
            (RecordValue::VariableDocument(d), Intent::Update) => self.set_variables(ctx, cmd, d),
            (RecordValue::Timer(_), Intent::Trigger) => self.trigger_timer(ctx, cmd),
            (RecordValue::Message(m), _) => self.message_command(ctx, cmd, m),
            (RecordValue::MessageSubscription(m), _) => {
                self.message_subscription_command(ctx, cmd, m)
            }
            (RecordValue::ProcessMessageSubscription(m), _) => {
                self.process_message_subscription_command(ctx, cmd, m)
            }
            (RecordValue::Signal(s), Intent::Broadcast) => self.broadcast_command(ctx, cmd, s),
            (RecordValue::ResourceDeletion(r), Intent::Delete) => self.delete_resource(ctx, cmd, r),
            (RecordValue::DecisionEvaluation(e), Intent::Evaluate) => {
                self.evaluate_decision_command(ctx, cmd, e)
            }
            (RecordValue::AdHocSubProcessInstruction(i), Intent::Activate) => {
                self.ad_hoc_instruction_command(ctx, cmd, i)
            }
            (RecordValue::CommandDistribution(d), _) => {
                self.command_distribution_command(ctx, cmd, d)
            }
            (RecordValue::ProcessInstanceModification(m), Intent::Modify) => {
                self.modify_instance(ctx, cmd, m)
            }
            (RecordValue::ProcessInstanceMigration(m), Intent::Migrate) => {
                self.migrate_instance(ctx, cmd, m)
            }
            (RecordValue::User(u), _) => self.user_command(ctx, cmd, u),
            (RecordValue::Role(c), _) => self.collective_command(ctx, cmd, Kind::Role, c),
            (RecordValue::Group(c), _) => self.collective_command(ctx, cmd, Kind::Group, c),
            (RecordValue::Tenant(c), _) => self.collective_command(ctx, cmd, Kind::Tenant, c),
            (RecordValue::MappingRule(r), _) => self.mapping_rule_command(ctx, cmd, r),
            (RecordValue::Authorization(a), _) => self.authorization_command(ctx, cmd, a),
            (RecordValue::Scale(s), _) => self.scale_command(ctx, cmd, s),
            _ => Err(unsupported(cmd)),
        }
    }

    pub(crate) fn definition(&self, key: i64) -> Result<Arc<DeployedProcess>, Rejection> {
        self.state.process(key).cloned().ok_or_else(|| {
            rejection(
                RejectionType::NotFound,
                format!("Expected to find process definition with key '{key}', but none found"),
            )
        })
    }

    fn reject(&mut self, ctx: &mut Ctx, cmd: &Record, rejection: Rejection) {
        let record = Record {
            position: NO_KEY,
            key: cmd.key,
            record_type: RecordType::CommandRejection,
            value_type: cmd.value_type,
            intent: cmd.intent,
            timestamp_ms: ctx.timestamp_ms,
            source_record_position: ctx.position,
            rejection: Some(rejection.clone()),
            request_id: cmd.request_id,
            value: cmd.value.clone(),
            tenant: ctx.tenant.clone(),
            authorized_tenants: None,
            authorized_processes: None,
        };
        self.state.apply(&record);
        ctx.out.records.push(record);
        if let Some(id) = cmd.request_id {
            ctx.out.responses.push((id, Err(rejection)));
        }
    }

    /// Writes an event and applies it.
    pub(crate) fn emit(&mut self, ctx: &mut Ctx, key: i64, intent: Intent, value: RecordValue) {
        self.emit_for(ctx, key, intent, value, None);
    }

    /// Writes an event that carries a client's request id, and applies it.
    pub(crate) fn emit_for(
        &mut self,
        ctx: &mut Ctx,
        key: i64,
        intent: Intent,
        value: RecordValue,
        request_id: Option<u64>,
    ) {
        let record = Record {
            position: NO_KEY,
            key,
            record_type: RecordType::Event,
            value_type: value.value_type(),
            intent,
            timestamp_ms: ctx.timestamp_ms,
            source_record_position: ctx.position,
            rejection: None,
            request_id,
            value,
            tenant: ctx.tenant.clone(),
            authorized_tenants: None,
            authorized_processes: None,
        };
        // Applied where it lies in the output, so the record moves once.
        ctx.out.records.push(record);
        self.state
            .apply(ctx.out.records.last().expect("just pushed"));
    }

    pub(crate) fn respond(ctx: &mut Ctx, cmd: &Record, value: ResponseValue) {
        if let Some(id) = cmd.request_id {
            ctx.out.responses.push((id, Ok(value)));
        }
    }

    fn run_steps(&mut self, ctx: &mut Ctx) {
        let mut run = 0;
        while let Some(step) = ctx.steps.pop_front() {
            if run >= MAX_STEPS_PER_COMMAND {
                ctx.steps.push_front(step);
                self.defer_steps(ctx);
                return;
            }
            run += 1;
            self.run_step(ctx, step);
        }
    }

    fn defer_steps(&mut self, ctx: &mut Ctx) {
        while let Some(step) = ctx.steps.pop_front() {
            let (key, intent, value) = match step {
                Step::Activate {
                    process_definition_key,
                    element,
                    flow_scope_key,
                    process_instance_key,
                    ..
                } => {
                    let Some(def) = self.state.process(process_definition_key).cloned() else {
                        continue;
                    };
                    let value = pi_value(&def, element, process_instance_key, flow_scope_key);
                    (NO_KEY, Intent::ActivateElement, value)
                }
                Step::Complete(key) | Step::ContinueCompletion(key) => {
                    let Some(value) = self.instance_value(key) else {
                        continue;
                    };
                    (key, Intent::CompleteElement, value)
                }
                Step::Terminate(key) => {
                    let Some(value) = self.instance_value(key) else {
                        continue;
                    };
                    (key, Intent::TerminateElement, value)
                }
                Step::ContinueActivation(_) => continue,
            };
            let mut record =
                Record::command(key, intent, RecordValue::ProcessInstance(value), None);
            record.timestamp_ms = ctx.timestamp_ms;
            record.source_record_position = ctx.position;
            record.tenant = ctx.tenant.clone();
            ctx.out.records.push(record);
        }
    }

    pub(crate) fn instance_value(&self, key: i64) -> Option<ProcessInstanceRecord> {
        let inst = self.state.instances.get(&key)?;
        let def = self.state.process(inst.process_definition_key)?;
        Some(pi_value(
            def,
            inst.element,
            inst.process_instance_key,
            inst.flow_scope_key,
        ))
    }

    /// Registers a job push stream. Replicated state: call it when applying a
    /// log entry, in the same order on every replica.
    pub fn add_job_stream(
        &mut self,
        stream_id: u64,
        job_type: &str,
        worker: &str,
        timeout_ms: i64,
        fetch_variables: Vec<String>,
    ) {
        self.streams
            .add(stream_id, job_type, worker, timeout_ms, fetch_variables);
    }

    /// Restricts job push stream `stream_id` to the jobs of `tenants` (the
    /// tenant ids its worker asked for) and `processes` (those its worker's
    /// grants cover); `None`: any.
    pub fn restrict_job_stream(
        &mut self,
        stream_id: u64,
        tenants: Option<Vec<Tenant>>,
        processes: Option<Vec<Arc<str>>>,
    ) {
        self.streams.restrict(stream_id, tenants, processes);
    }

    /// Removes a job push stream.
    pub fn remove_job_stream(&mut self, stream_id: u64) {
        self.streams.remove(stream_id);
    }

    /// The registered job push streams.
    pub fn job_streams(&self) -> &JobStreams {
        &self.streams
    }

    /// Commands that are due at `now_ms` (job time-outs, back-off expiry,
    /// `TIMER TRIGGER`, `MESSAGE EXPIRE`), at most `max`, oldest due first
    /// per kind. Commands already handed out are not repeated until the state
    /// changes, or until [`DUE_RESEND_MS`] passed without it changing: the
    /// command was lost (not committed before a leader change, refused by a
    /// full disk), and a leader that keeps or regains its leadership would
    /// otherwise never hand it out again, leaving a job activated or a
    /// timer waiting forever. A command applied twice is rejected the second
    /// time (the state no longer has it due). The broker appends them like
    /// client commands; a flood of due timers is thus handed out in batches
    /// of `max` between other commands.
    pub fn due_commands(&mut self, now_ms: i64, max: usize) -> Vec<Record> {
        let mut out = Vec::new();
        let state = &self.state;
        self.due_requested.retain(|&(k, at), _| {
            state.deadlines.contains(&(at, k))
                || state.backoffs.contains(&(at, k))
                || state.timer_due.contains(&(at, k))
                || state.message_deadlines.contains(&(at, k))
        });
        let timers: Vec<(i64, i64)> = self
            .state
            .timer_due
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .filter(|&&(at, k)| self.may_hand_out(k, at, now_ms))
            .take(max)
            .copied()
            .collect();
        for (at, key) in timers {
            self.due_requested.insert((key, at), now_ms);
            let timer = self.state.timers[&key].clone();
            let mut record = Record::command(key, Intent::Trigger, RecordValue::Timer(timer), None);
            record.timestamp_ms = now_ms;
            out.push(record);
        }
        let expired: Vec<(i64, i64)> = self
            .state
            .message_deadlines
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .filter(|&&(at, k)| self.may_hand_out(k, at, now_ms))
            .take(max.saturating_sub(out.len()))
            .copied()
            .collect();
        for (at, key) in expired {
            self.due_requested.insert((key, at), now_ms);
            let message = self.state.messages[&key].clone();
            let mut record =
                Record::command(key, Intent::Expire, RecordValue::Message(message), None);
            record.timestamp_ms = now_ms;
            out.push(record);
        }
        let due: Vec<(i64, i64, Intent)> = self
            .state
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .map(|&(at, k)| (k, at, Intent::TimeOut))
            .chain(
                self.state
                    .backoffs
                    .iter()
                    .take_while(|(at, _)| *at <= now_ms)
                    .map(|&(at, k)| (k, at, Intent::RecurAfterBackoff)),
            )
            .collect();
        for (key, at, intent) in due {
            if out.len() >= max {
                break;
            }
            if !self.may_hand_out(key, at, now_ms) {
                continue;
            }
            self.due_requested.insert((key, at), now_ms);
            let mut value = JobRecord::empty();
            if let Some(job) = self.state.jobs.get(&key) {
                value.job_type = job.record.job_type.clone();
            }
            let mut record = Record::command(key, intent, RecordValue::Job(Box::new(value)), None);
            record.timestamp_ms = now_ms;
            out.push(record);
        }
        out
    }

    /// Whether the due command of `key` at `at` was not handed out, or
    /// handed out long enough ago to be lost.
    fn may_hand_out(&self, key: i64, at: i64, now_ms: i64) -> bool {
        self.due_requested
            .get(&(key, at))
            .is_none_or(|&sent| now_ms.saturating_sub(sent) >= DUE_RESEND_MS)
    }

    fn snapshot_body(&self) -> SnapshotBodyRef<'_> {
        let (identity, tenancy) = (&self.state.identity, &self.state.tenancy);
        let scaling = (!self.scaling.is_empty()).then_some(&self.scaling);
        let streams = (scaling.is_some() || !self.streams.is_empty()).then_some(&self.streams);
        let tenancy = (streams.is_some() || !tenancy.is_empty()).then_some(tenancy);
        SnapshotBodyRef {
            partition_id: self.partition_id,
            partition_count: self.partition_count,
            state: &self.state,
            identity: (tenancy.is_some() || !identity.is_empty()).then_some(identity),
            tenancy,
            streams,
            scaling,
        }
    }

    /// Deterministic bytes of the replicated state.
    pub fn snapshot(&self) -> Vec<u8> {
        let body = self.snapshot_body();
        let version = match (body.identity, body.tenancy, body.streams, body.scaling) {
            (_, _, _, Some(_)) => SNAPSHOT_FORMAT_VERSION,
            (_, _, Some(_), None) => SNAPSHOT_FORMAT_STREAMS,
            (_, Some(_), None, _) => SNAPSHOT_FORMAT_TENANCY,
            (Some(_), None, None, _) => SNAPSHOT_FORMAT_IDENTITY,
            (None, None, None, _) => SNAPSHOT_FORMAT_WITHOUT_IDENTITY,
        };
        postcard::to_extend(&body, vec![version]).expect("encoding into a Vec cannot fail")
    }

    /// A fingerprint of the replicated state: the first eight bytes of the
    /// SHA-256 of its snapshot encoding, computed without building it.
    /// Replicas that applied the same entries have the same fingerprint;
    /// different ones mean their states diverged.
    pub fn fingerprint(&self) -> u64 {
        crate::fingerprint::of(&self.snapshot_body())
    }

    /// Rebuilds an engine from `snapshot()` bytes.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let (&version, body) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        if !(SNAPSHOT_FORMAT_WITHOUT_IDENTITY..=SNAPSHOT_FORMAT_VERSION).contains(&version) {
            return Err(SnapshotError::UnsupportedVersion { found: version });
        }
        let malformed = |e: postcard::Error| SnapshotError::Malformed {
            reason: e.to_string(),
        };
        let (body, rest): (SnapshotBody, &[u8]) =
            postcard::take_from_bytes(body).map_err(malformed)?;
        let mut state = body.state;
        let mut streams = JobStreams::default();
        let mut scaling = crate::scaling::Scaling::default();
        if version != SNAPSHOT_FORMAT_WITHOUT_IDENTITY {
            // `SnapshotBodyRef::identity`, an option that is always there.
            let (identity, rest) = if version == SNAPSHOT_FORMAT_IDENTITY_V6 {
                let (v6, rest): (Option<crate::identity::IdentityV6>, _) =
                    postcard::take_from_bytes(rest).map_err(malformed)?;
                (v6.map(Into::into), rest)
            } else {
                postcard::take_from_bytes::<Option<crate::identity::Identity>>(rest)
                    .map_err(malformed)?
            };
            state.identity = identity.unwrap_or_default();
            let rest = if version >= SNAPSHOT_FORMAT_TENANCY {
                // `SnapshotBodyRef::tenancy`, an option that is always there.
                let (tenancy, rest): (Option<crate::tenancy::Tenancy>, _) =
                    postcard::take_from_bytes(rest).map_err(malformed)?;
                state.tenancy = tenancy.unwrap_or_default();
                rest
            } else {
                rest
            };
            let rest = if version >= SNAPSHOT_FORMAT_STREAMS {
                // `SnapshotBodyRef::streams`, an option that is always there.
                let (registered, rest): (Option<JobStreams>, _) =
                    postcard::take_from_bytes(rest).map_err(malformed)?;
                streams = registered.unwrap_or_default();
                rest
            } else {
                rest
            };
            let rest = if version == SNAPSHOT_FORMAT_VERSION {
                // `SnapshotBodyRef::scaling`, an option that is always there.
                let (scaled, rest): (Option<crate::scaling::Scaling>, _) =
                    postcard::take_from_bytes(rest).map_err(malformed)?;
                scaling = scaled.unwrap_or_default();
                rest
            } else {
                rest
            };
            if !rest.is_empty() {
                return Err(SnapshotError::Malformed {
                    reason: format!("{} trailing bytes", rest.len()),
                });
            }
        }
        Ok(Engine {
            partition_id: body.partition_id,
            partition_count: body.partition_count,
            state,
            streams,
            scaling,
            due_requested: BTreeMap::new(),
            last_sent: BTreeMap::new(),
            distribution_sent: BTreeMap::new(),
            clock: Clock::utc(0),
            spare_records: Vec::new(),
        })
    }
}

/// The rejection of a command no processor takes.
pub(crate) fn unsupported(cmd: &Record) -> Rejection {
    rejection(
        RejectionType::InvalidArgument,
        format!(
            "command {} {} is not supported",
            cmd.value_type.name(),
            cmd.intent.name()
        ),
    )
}

/// Builds a rejection.
pub(crate) fn rejection(rejection_type: RejectionType, reason: String) -> Rejection {
    Rejection {
        rejection_type,
        reason,
    }
}

/// The process instance value of `element` of `def`.
pub(crate) fn pi_value(
    def: &DeployedProcess,
    element: u32,
    process_instance_key: i64,
    flow_scope_key: i64,
) -> ProcessInstanceRecord {
    let el = def.model.element(element);
    ProcessInstanceRecord {
        bpmn_process_id: def.metadata.bpmn_process_id.clone(),
        version: def.metadata.version,
        process_definition_key: def.metadata.process_definition_key,
        process_instance_key,
        element_id: el.id.clone(),
        flow_scope_key,
        bpmn_element_type: el.element_type,
        bpmn_event_type: el.event_type,
        parent_process_instance_key: NO_KEY,
        parent_element_instance_key: NO_KEY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_output_vector_comes_back_empty() {
        let mut engine = Engine::new(1, 1);
        let mut complete = Record::command(
            42,
            Intent::Complete,
            RecordValue::Job(Box::new(JobRecord::empty())),
            Some(1),
        );
        complete.position = 1;
        let first = engine.process(&complete);
        assert_eq!(first.records.len(), 1, "a rejection: {:?}", first.records);
        // Handed back undrained: its records must not reach the next output.
        engine.recycle(first.records);
        complete.position = 2;
        let second = engine.process(&complete);
        assert_eq!(second.records.len(), 1);
        assert_eq!(second.records[0].source_record_position, 2);
    }
}
