//! Partition scaling: more partitions at run time, as Zeebe 8.8's dynamic
//! scaling does in its redistribution phase.
//!
//! ```text
//! partition 1      SCALE SCALE_UP (desired count)
//!                  -> SCALING_UP: its partition count is the desired one, so
//!                     each later distribution (deployments, identity) also
//!                     goes to the new partitions, queued behind:
//!                  COMMAND_DISTRIBUTION of SCALE BOOTSTRAP to each new
//!                  partition, carrying the global state as of SCALING_UP
//!                  (processes, DRGs and decisions, forms, identity, their
//!                  tenants)
//! new partition    SCALE BOOTSTRAP -> PARTITION_BOOTSTRAPPED: installs it,
//!                  acknowledges
//! partition 1      on each acknowledgement, PARTITION_BOOTSTRAPPED; after
//!                  the last, SCALED_UP, and distributes SCALE SCALE_UP to its
//!                  other old partitions
//! old partition    SCALE SCALE_UP (distributed) -> SCALED_UP: signal
//!                  broadcasts and distributions reach the new partitions
//! ```
//!
//! Message correlation keeps the partition count of before the first scale
//! up (the routing's `messageCorrelation`): a message and the subscriptions
//! waiting for it meet on the partition they met on before, so nothing that
//! waits is moved. The scaling is complete ([`ScalingProgress::complete`])
//! once every old partition acknowledged the SCALE_UP: then the gateways
//! may create instances on the new partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commands::DEPLOYMENT_PARTITION;
use crate::decision_state::DecisionState;
use crate::engine::{rejection, Ctx, Engine};
use crate::forms::FormState;
use crate::identity::Identity;
use crate::record::*;
use crate::state::DeployedProcess;
use crate::tenancy::Tenant;

/// The most partitions a cluster can have: the partition id has 13 bits
/// of a key.
pub const MAX_PARTITIONS: u32 = 8191;

/// `SCALE` value (Zeebe's `ScaleRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRecord {
    /// The partition count asked for.
    pub desired_partition_count: u32,
    /// The partition count messages are correlated by.
    pub message_partition_count: u32,
    /// The new partitions bootstrapped so far (PARTITION_BOOTSTRAPPED,
    /// SCALED_UP).
    pub redistributed_partitions: Vec<u32>,
    /// BOOTSTRAP only: partition 1's global state as of SCALING_UP,
    /// encoded.
    pub global_state: Arc<[u8]>,
}

/// The replicated scaling state of an engine, in the snapshot once a
/// scale up began.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    /// The partition count messages are correlated by; 0 before any scale
    /// up (the partition count).
    pub message_partition_count: u32,
    /// Partition 1: the new partitions not yet bootstrapped.
    pub bootstrapping: BTreeSet<u32>,
    /// Partition 1: the new partitions bootstrapped.
    pub bootstrapped: BTreeSet<u32>,
    /// Partition 1: the distribution key of the SCALE_UP to the old
    /// partitions, once every new partition is bootstrapped.
    pub announced: Option<i64>,
}

impl Scaling {
    /// Whether no scale up ever began here.
    pub fn is_empty(&self) -> bool {
        *self == Scaling::default()
    }
}

/// Where a scale up stands, on partition 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalingProgress {
    /// The partition count (the desired one once a scale up began).
    pub partitions: u32,
    /// The partition count messages are correlated by.
    pub message_partitions: u32,
    /// The new partitions bootstrapped.
    pub bootstrapped: BTreeSet<u32>,
    /// Every new partition is bootstrapped and every old one knows them.
    pub complete: bool,
}

/// What a new partition takes from partition 1: the state every partition
/// holds the same (Zeebe's `GLOBAL` column families).
#[derive(Serialize, Deserialize)]
struct GlobalState {
    processes: Vec<Arc<DeployedProcess>>,
    process_versions: BTreeMap<Arc<str>, BTreeMap<i32, i64>>,
    highest_versions: BTreeMap<Arc<str>, i32>,
    decisions: DecisionState,
    forms: FormState,
    identity: Identity,
    /// Tenants of the definitions above (the default one left out).
    owners: BTreeMap<i64, Tenant>,
}

impl Engine {
    /// The partition count messages are correlated by: the count before
    /// the first scale up.
    pub fn message_partition_count(&self) -> u32 {
        match self.scaling.message_partition_count {
            0 => self.partition_count,
            n => n,
        }
    }

    /// Where a scale up stands (partition 1 knows).
    pub fn scaling_progress(&self) -> ScalingProgress {
        let s = &self.scaling;
        let announced = s
            .announced
            .is_some_and(|key| !self.state.distributed_commands.contains_key(&key));
        ScalingProgress {
            partitions: self.partition_count,
            message_partitions: self.message_partition_count(),
            bootstrapped: s.bootstrapped.clone(),
            complete: s.bootstrapping.is_empty() && (announced || s.bootstrapped.is_empty()),
        }
    }

    /// SCALE commands.
    pub(crate) fn scale_command(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        s: &ScaleRecord,
    ) -> Result<(), Rejection> {
        match cmd.intent {
            Intent::ScaleUp if cmd.key > 0 => self.receive_scaled_up(ctx, cmd, s),
            Intent::ScaleUp => self.scale_up(ctx, cmd, s),
            Intent::Bootstrap => self.bootstrap(ctx, cmd, s),
            _ => Err(crate::engine::unsupported(cmd)),
        }
    }

    /// SCALE_UP on partition 1, from a cluster change.
    fn scale_up(&mut self, ctx: &mut Ctx, cmd: &Record, s: &ScaleRecord) -> Result<(), Rejection> {
        let desired = s.desired_partition_count;
        let invalid = |reason: String| Err(rejection(RejectionType::InvalidArgument, reason));
        if self.partition_id != DEPLOYMENT_PARTITION {
            return invalid(format!(
                "Expected to scale up on partition {DEPLOYMENT_PARTITION}, but this is partition {}",
                self.partition_id
            ));
        }
        if !self.scaling.bootstrapping.is_empty() {
            return Err(rejection(
                RejectionType::InvalidState,
                format!(
                    "Expected no scale up in progress, but partitions {:?} are still being bootstrapped",
                    self.scaling.bootstrapping
                ),
            ));
        }
        if desired == self.partition_count {
            // Asked again (a retried cluster change): nothing to do.
            Self::respond_scale(ctx, cmd, self.partition_count);
            return Ok(());
        }
        if desired < self.partition_count || desired > MAX_PARTITIONS {
            return invalid(format!(
                "Expected a partition count in {}..={MAX_PARTITIONS}, but got {desired} (partitions are never removed)",
                self.partition_count
            ));
        }
        let old = self.partition_count;
        let message_partition_count = self.message_partition_count();
        let record = |global_state: Arc<[u8]>| ScaleRecord {
            desired_partition_count: desired,
            message_partition_count,
            redistributed_partitions: Vec::new(),
            global_state,
        };
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::ScalingUp,
            RecordValue::Scale(record(Arc::from([]))),
        );
        self.partition_count = desired;
        self.scaling.message_partition_count = message_partition_count;
        let new: Vec<u32> = (old + 1..=desired).collect();
        self.scaling.bootstrapping.extend(new.iter().copied());
        self.scaling.announced = None;
        let global = Arc::from(self.global_state());
        let key = self.state.keys.next_key();
        self.distribute_to(
            ctx,
            key,
            Intent::Bootstrap,
            RecordValue::Scale(record(global)),
            &new,
        );
        Self::respond_scale(ctx, cmd, desired);
        Ok(())
    }

    fn respond_scale(ctx: &mut Ctx, cmd: &Record, partitions: u32) {
        Self::respond(
            ctx,
            cmd,
            crate::engine::ResponseValue::Scaled { partitions },
        );
    }

    /// The state a new partition starts from, encoded.
    fn global_state(&self) -> Vec<u8> {
        let state = &self.state;
        let processes: Vec<Arc<DeployedProcess>> = state
            .processes
            .iter()
            .filter(|(key, _)| !state.processes_deleting.contains(key))
            .map(|(_, p)| p.clone())
            .collect();
        let decisions = &state.decisions;
        let definitions: BTreeSet<i64> = processes
            .iter()
            .map(|p| p.metadata.process_definition_key)
            .chain(decisions.drgs.keys().copied())
            .chain(decisions.decisions.keys().copied())
            .chain(state.forms.forms.keys().copied())
            .collect();
        let global = GlobalState {
            processes,
            process_versions: state.process_versions.clone(),
            highest_versions: state.highest_versions.clone(),
            decisions: decisions.clone(),
            forms: state.forms.clone(),
            identity: state.identity.clone(),
            owners: state
                .tenancy
                .owners
                .iter()
                .filter(|(key, _)| definitions.contains(key))
                .map(|(k, t)| (*k, t.clone()))
                .collect(),
        };
        postcard::to_allocvec(&global).expect("encoding into a Vec cannot fail")
    }

    /// BOOTSTRAP on a new partition: takes partition 1's global state.
    fn bootstrap(&mut self, ctx: &mut Ctx, cmd: &Record, s: &ScaleRecord) -> Result<(), Rejection> {
        let source = self.distribution_source(cmd)?;
        if self.state.distribution_received(source, cmd.key) {
            self.acknowledge_distribution(ctx, cmd, source);
            return Ok(());
        }
        if self.partition_id > s.desired_partition_count {
            return Err(rejection(
                RejectionType::InvalidArgument,
                format!(
                    "Expected to bootstrap one of partitions ..={}, but this is partition {}",
                    s.desired_partition_count, self.partition_id
                ),
            ));
        }
        let global: GlobalState = postcard::from_bytes(&s.global_state).map_err(|e| {
            rejection(
                RejectionType::InvalidArgument,
                format!("Expected the global state of partition {source} to bootstrap from, but it does not decode: {e}"),
            )
        })?;
        let state = &mut self.state;
        for p in global.processes {
            state.processes.insert(p.metadata.process_definition_key, p);
        }
        state.process_versions = global.process_versions;
        state.highest_versions = global.highest_versions;
        state.decisions = global.decisions;
        state.forms = global.forms;
        state.identity = global.identity;
        state.tenancy.owners.extend(global.owners);
        self.partition_count = s.desired_partition_count;
        self.scaling.message_partition_count = s.message_partition_count;
        self.emit(
            ctx,
            cmd.key,
            Intent::PartitionBootstrapped,
            RecordValue::Scale(ScaleRecord {
                redistributed_partitions: vec![self.partition_id],
                global_state: Arc::from([]),
                ..s.clone()
            }),
        );
        self.acknowledge_distribution(ctx, cmd, source);
        Ok(())
    }

    /// Partition 1: the new partition `target` acknowledged its BOOTSTRAP;
    /// once all did, the old partitions are told.
    pub(crate) fn partition_bootstrapped(&mut self, ctx: &mut Ctx, key: i64, target: u32) {
        if !self.scaling.bootstrapping.remove(&target) {
            return;
        }
        self.scaling.bootstrapped.insert(target);
        let record = ScaleRecord {
            desired_partition_count: self.partition_count,
            message_partition_count: self.message_partition_count(),
            redistributed_partitions: self.scaling.bootstrapped.iter().copied().collect(),
            global_state: Arc::from([]),
        };
        self.emit(
            ctx,
            key,
            Intent::PartitionBootstrapped,
            RecordValue::Scale(record.clone()),
        );
        if !self.scaling.bootstrapping.is_empty() {
            return;
        }
        let key = self.state.keys.next_key();
        self.emit(
            ctx,
            key,
            Intent::ScaledUp,
            RecordValue::Scale(record.clone()),
        );
        let old: Vec<u32> = (1..=self.partition_count)
            .filter(|p| *p != self.partition_id && !self.scaling.bootstrapped.contains(p))
            .collect();
        self.scaling.announced = Some(key);
        if old.is_empty() {
            return;
        }
        self.distribute_to(ctx, key, Intent::ScaleUp, RecordValue::Scale(record), &old);
    }

    /// SCALE_UP distributed by partition 1 to an old partition.
    fn receive_scaled_up(
        &mut self,
        ctx: &mut Ctx,
        cmd: &Record,
        s: &ScaleRecord,
    ) -> Result<(), Rejection> {
        let source = self.distribution_source(cmd)?;
        if !self.state.distribution_received(source, cmd.key) {
            self.scaling.message_partition_count = s.message_partition_count;
            self.partition_count = self.partition_count.max(s.desired_partition_count);
            self.emit(
                ctx,
                cmd.key,
                Intent::ScaledUp,
                RecordValue::Scale(s.clone()),
            );
        }
        self.acknowledge_distribution(ctx, cmd, source);
        Ok(())
    }
}
