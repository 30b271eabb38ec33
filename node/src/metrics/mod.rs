//! Prometheus metrics of the broker, rendered in the text format on `/metrics`.
//!
//! Families (all prefixed `waggle_`): partition role, partition health (1 or 0),
//! commit latency histogram, appended records (a counter; its rate is the append
//! rate), backpressure (limit, in flight, refused), exporter lag, job
//! activation latency, processing errors (commands whose processing failed
//! and that were rejected instead, see [`crate::isolation`]), and what log
//! recovery lost (tail frames dropped, entries being recovered). Gauges that
//! mirror state held elsewhere (roles, health, backpressure) are refreshed from
//! it at every scrape. One instance per process, shared by reference.
//! [`replication`] adds Raft, storage and snapshot families, [`activity`] the
//! engine's work and the client requests; `waggle_build_info` carries the
//! version.

pub mod activity;
pub mod replication;

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::backpressure::PartitionLimits;
use crate::placement::PartitionId;
use crate::view::{BrokerView, Role};

/// Latency histogram buckets: 50 µs doubling 18 times, up to about 6.5 s.
const LATENCY_BUCKET_START_SECONDS: f64 = 50e-6;
/// Number of latency buckets.
const LATENCY_BUCKETS: u16 = 18;

/// Labels of per-partition metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    /// Partition id.
    pub partition: u32,
}

/// Labels of the role metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// Partition id.
    pub partition: u32,
    /// Role name.
    pub role: String,
}

/// Labels of the build information.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    /// Package version.
    pub version: String,
}

pub(crate) type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub(crate) fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_BUCKET_START_SECONDS,
        2.0,
        LATENCY_BUCKETS,
    ))
}

/// See the module documentation.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The partitions the last exposition showed the replica gauges of: a
    /// replica that left this broker (a cluster change) leaves them too.
    shown: Mutex<std::collections::BTreeSet<PartitionId>>,
    /// 1 for the partition's current role, 0 for the others.
    pub partition_role: Family<RoleLabel, Gauge>,
    /// 1 while the partition is healthy, 0 while degraded (a full disk, a
    /// failed store: see `/health`).
    pub partition_healthy: Family<PartitionLabel, Gauge>,
    /// Time from append to commit, per partition.
    pub commit_latency_seconds: HistogramFamily<PartitionLabel>,
    /// Records appended to the log, per partition.
    pub appended_records: Family<PartitionLabel, Counter>,
    /// Current in-flight limit, per partition.
    pub backpressure_limit: Family<PartitionLabel, Gauge>,
    /// Commands in flight, per partition.
    pub backpressure_in_flight: Family<PartitionLabel, Gauge>,
    /// Commands refused by the limit, per partition.
    pub backpressure_rejected: Family<PartitionLabel, Gauge>,
    /// Records committed but not yet exported, per partition.
    pub exporter_lag_records: Family<PartitionLabel, Gauge>,
    /// Time from a job becoming activatable to its activation.
    pub job_activation_latency_seconds: Histogram,
    /// Commands whose processing failed and that were rejected, per partition.
    pub processing_errors: Family<PartitionLabel, Counter>,
    /// Frames recovery dropped from a torn or damaged log tail, per partition.
    pub log_tail_frames_dropped: Family<PartitionLabel, Counter>,
    /// Committed entries this replica lost and is recovering from its peers
    /// (it does not vote until they are back), per partition.
    pub log_entries_recovering: Family<PartitionLabel, Gauge>,
    /// Peers' state fingerprints compared with this replica's, per partition.
    pub state_fingerprints_compared: Family<PartitionLabel, Gauge>,
    /// Of those, the ones that differed.
    pub state_fingerprint_mismatches: Family<PartitionLabel, Gauge>,
    /// 1 once a majority of the partition's replicas outvoted this one's state.
    pub state_diverged: Family<PartitionLabel, Gauge>,
    /// Raft, storage and snapshots.
    pub replication: replication::ReplicationMetrics,
    /// Engine work and client requests.
    pub activity: activity::ActivityMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const ROLES: [Role; 5] = [
    Role::Starting,
    Role::Leader,
    Role::Follower,
    Role::Candidate,
    Role::Inactive,
];

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("waggle");
        let partition_role = Family::<RoleLabel, Gauge>::default();
        registry.register(
            "partition_role",
            "Role of each local partition replica (1 = current)",
            partition_role.clone(),
        );
        let partition_healthy = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "partition_healthy",
            "1 while the local partition replica is healthy, 0 while degraded (disk full: writes \
             refused; failed storage)",
            partition_healthy.clone(),
        );
        let commit_latency_seconds: HistogramFamily<PartitionLabel> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "commit_latency_seconds",
            "Time from appending an entry to its commit",
            commit_latency_seconds.clone(),
        );
        let appended_records = Family::<PartitionLabel, Counter>::default();
        registry.register(
            "appended_records",
            "Records appended to the log",
            appended_records.clone(),
        );
        let backpressure_limit = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "backpressure_limit",
            "Current in-flight command limit",
            backpressure_limit.clone(),
        );
        let backpressure_in_flight = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "backpressure_in_flight",
            "Commands in flight",
            backpressure_in_flight.clone(),
        );
        let backpressure_rejected = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "backpressure_rejected_commands",
            "Commands refused with RESOURCE_EXHAUSTED by the limit since start",
            backpressure_rejected.clone(),
        );
        let exporter_lag_records = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "exporter_lag_records",
            "Committed records not yet exported (holds back compaction)",
            exporter_lag_records.clone(),
        );
        let job_activation_latency_seconds = latency_histogram();
        registry.register(
            "job_activation_latency_seconds",
            "Time from a job becoming activatable to its activation",
            job_activation_latency_seconds.clone(),
        );
        let processing_errors = Family::<PartitionLabel, Counter>::default();
        registry.register(
            "processing_errors",
            "Commands whose processing failed unexpectedly and that were rejected",
            processing_errors.clone(),
        );
        let log_tail_frames_dropped = Family::<PartitionLabel, Counter>::default();
        registry.register(
            "log_tail_frames_dropped",
            "Frames dropped from a torn or damaged log tail when the log was opened",
            log_tail_frames_dropped.clone(),
        );
        let log_entries_recovering = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "log_entries_recovering",
            "Committed entries lost from this replica's log and not yet recovered from its peers",
            log_entries_recovering.clone(),
        );
        let state_fingerprints_compared = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "state_fingerprints_compared",
            "Peers' state fingerprints compared with this replica's at the same applied index",
            state_fingerprints_compared.clone(),
        );
        let state_fingerprint_mismatches = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "state_fingerprint_mismatches",
            "Peers' state fingerprints that differed from this replica's at the same index",
            state_fingerprint_mismatches.clone(),
        );
        let state_diverged = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "state_diverged",
            "1 once a majority of the partition's replicas holds another state than this one \
             at the same applied index (the replica is unhealthy until restarted)",
            state_diverged.clone(),
        );
        let build_info = Family::<BuildLabel, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the label carries the broker's version",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        let replication = replication::ReplicationMetrics::register(&mut registry);
        let activity = activity::ActivityMetrics::register(&mut registry);
        Self {
            replication,
            activity,
            registry: Mutex::new(registry),
            shown: Mutex::new(std::collections::BTreeSet::new()),
            partition_role,
            partition_healthy,
            commit_latency_seconds,
            appended_records,
            backpressure_limit,
            backpressure_in_flight,
            backpressure_rejected,
            exporter_lag_records,
            job_activation_latency_seconds,
            processing_errors,
            log_tail_frames_dropped,
            log_entries_recovering,
            state_fingerprints_compared,
            state_fingerprint_mismatches,
            state_diverged,
        }
    }

    /// Makes sure every local partition has a series in each family, so that a
    /// scrape shows the partition even before it has done anything.
    pub fn register_partitions(&self, partitions: &[PartitionId]) {
        for p in partitions {
            let label = PartitionLabel { partition: *p };
            let _ = self.commit_latency_seconds.get_or_create(&label);
            let _ = self.appended_records.get_or_create(&label);
            let _ = self.exporter_lag_records.get_or_create(&label);
            let _ = self.processing_errors.get_or_create(&label);
            let _ = self.log_tail_frames_dropped.get_or_create(&label);
            let _ = self.log_entries_recovering.get_or_create(&label);
            self.replication.register_partition(*p);
            self.activity.register_partition(*p);
        }
    }

    /// Drops the gauges of a replica this broker no longer holds.
    fn forget_replica(&self, partition: PartitionId) {
        let label = PartitionLabel { partition };
        self.partition_healthy.remove(&label);
        self.state_fingerprints_compared.remove(&label);
        self.state_fingerprint_mismatches.remove(&label);
        self.state_diverged.remove(&label);
        for r in ROLES {
            self.partition_role.remove(&RoleLabel {
                partition,
                role: r.name().to_string(),
            });
        }
    }

    /// Sets the expiry time (UNIX seconds) of each named certificate.
    pub fn set_certificate_expiries(&self, expiries: &[(String, i64)]) {
        for (certificate, at) in expiries {
            self.replication
                .certificate_expiry_timestamp_seconds
                .get_or_create(&replication::CertificateLabel {
                    certificate: certificate.clone(),
                })
                .set(*at);
        }
    }

    /// The text exposition, with mirrored gauges refreshed from `view` and
    /// `limits`.
    pub fn render(&self, view: &BrokerView, limits: &PartitionLimits) -> String {
        let roles = view.roles();
        {
            let mut shown = self.shown.lock().expect("never poisoned");
            let now: std::collections::BTreeSet<PartitionId> =
                roles.iter().map(|(p, _)| *p).collect();
            for &partition in shown.difference(&now) {
                self.forget_replica(partition);
            }
            *shown = now;
        }
        for (partition, role) in roles {
            let label = PartitionLabel { partition };
            self.partition_healthy
                .get_or_create(&label)
                .set(i64::from(view.healthy(partition)));
            let counts = view.checks.counts(partition);
            self.state_fingerprints_compared
                .get_or_create(&label)
                .set(i64::try_from(counts.compared).unwrap_or(i64::MAX));
            self.state_fingerprint_mismatches
                .get_or_create(&label)
                .set(i64::try_from(counts.mismatches).unwrap_or(i64::MAX));
            self.state_diverged
                .get_or_create(&label)
                .set(i64::from(view.checks.diverged(partition).is_some()));
            for r in ROLES {
                let label = RoleLabel {
                    partition,
                    role: r.name().to_string(),
                };
                self.partition_role
                    .get_or_create(&label)
                    .set(i64::from(r == role));
            }
        }
        for (partition, stats) in limits.stats() {
            let label = PartitionLabel { partition };
            self.backpressure_limit
                .get_or_create(&label)
                .set(i64::from(stats.limit));
            self.backpressure_in_flight
                .get_or_create(&label)
                .set(i64::from(stats.in_flight));
            self.backpressure_rejected
                .get_or_create(&label)
                .set(i64::try_from(stats.rejected_total).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .expect("registry lock is never poisoned");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackpressureConfig;

    #[test]
    fn exposition_carries_every_family_and_current_roles() {
        let metrics = Metrics::new();
        let view = BrokerView::new(&[1, 2], 1);
        view.set_partition(1, Role::Leader, true, true);
        view.set_partition(2, Role::Follower, true, true);
        view.set_problem(2, Some("disk full (/d): writes refused".into()));
        metrics.register_partitions(&[1, 2]);
        let limits = PartitionLimits::new(BackpressureConfig::default());
        let permit = limits.get(1).try_acquire().expect("admitted");
        metrics
            .commit_latency_seconds
            .get_or_create(&PartitionLabel { partition: 1 })
            .observe(0.001);
        let text = metrics.render(&view, &limits);
        for family in [
            "waggle_partition_role",
            "waggle_commit_latency_seconds_bucket",
            "waggle_appended_records_total",
            "waggle_backpressure_limit",
            "waggle_backpressure_in_flight",
            "waggle_exporter_lag_records",
            "waggle_job_activation_latency_seconds_count",
            "waggle_processing_errors_total",
            "waggle_log_tail_frames_dropped_total",
            "waggle_log_entries_recovering",
            "waggle_state_fingerprints_compared",
            "waggle_state_fingerprint_mismatches",
            "waggle_state_diverged",
            "waggle_build_info",
            "waggle_raft_term",
            "waggle_raft_commit_index",
            "waggle_raft_leader_changes_total",
            "waggle_log_sync_seconds_bucket",
            "waggle_snapshot_bytes",
            "waggle_disk_free_bytes",
            "waggle_instances_created_total",
            "waggle_incidents_created_total",
        ] {
            assert!(text.contains(family), "{family} missing from:\n{text}");
        }
        assert!(
            text.contains(r#"waggle_partition_role{partition="1",role="leader"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"waggle_partition_role{partition="2",role="leader"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"waggle_backpressure_in_flight{partition="1"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"waggle_partition_healthy{partition="1"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"waggle_partition_healthy{partition="2"} 0"#),
            "{text}"
        );
        drop(permit);

        // Partition 2 leaves this broker (a cluster change): its replica's
        // gauges go, so that no health check counts it still.
        view.remove_partition(2);
        let text = metrics.render(&view, &limits);
        assert!(
            !text.contains(r#"waggle_partition_role{partition="2""#)
                && !text.contains(r#"waggle_partition_healthy{partition="2"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"waggle_partition_role{partition="1",role="leader"} 1"#),
            "{text}"
        );
    }
}
