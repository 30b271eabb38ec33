//! Engine and gateway families: what the partitions did with the commands,
//! and what the clients asked for.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{latency_histogram, HistogramFamily, PartitionLabel};
use crate::partition::EngineCounts;

/// Labels of a count by kind within a partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Partition id.
    pub partition: u32,
    /// Value type or rejection type (Zeebe's names).
    pub kind: String,
}

/// Labels of a client request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `grpc` or `rest`.
    pub api: String,
    /// gRPC method or REST route.
    pub method: String,
    /// gRPC status code name or HTTP status.
    pub code: String,
}

/// Labels of a request latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// `grpc` or `rest`.
    pub api: String,
    /// gRPC method or REST route.
    pub method: String,
}

/// See the module documentation.
pub struct ActivityMetrics {
    /// Commands processed, per partition and value type.
    pub commands_processed: Family<KindLabel, Counter>,
    /// Commands rejected, per partition and rejection type.
    pub commands_rejected: Family<KindLabel, Counter>,
    /// Process instances started, per partition.
    pub instances_created: Family<PartitionLabel, Counter>,
    /// Process instances completed, per partition.
    pub instances_completed: Family<PartitionLabel, Counter>,
    /// Incidents raised, per partition.
    pub incidents_created: Family<PartitionLabel, Counter>,
    /// Job push streams registered, per partition.
    pub job_streams: Family<PartitionLabel, Gauge>,
    /// Client requests, per API, method and result code.
    pub gateway_requests: Family<RequestLabel, Counter>,
    /// Client request latency, per API and method.
    pub gateway_request_seconds: HistogramFamily<MethodLabel>,
}

impl ActivityMetrics {
    /// The families, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            commands_processed: Family::default(),
            commands_rejected: Family::default(),
            instances_created: Family::default(),
            instances_completed: Family::default(),
            incidents_created: Family::default(),
            job_streams: Family::default(),
            gateway_requests: Family::default(),
            gateway_request_seconds: Family::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            ),
        };
        registry.register(
            "commands_processed",
            "Commands processed by the engine, by value type",
            m.commands_processed.clone(),
        );
        registry.register(
            "commands_rejected",
            "Commands the engine rejected, by rejection type",
            m.commands_rejected.clone(),
        );
        registry.register(
            "instances_created",
            "Process instances started",
            m.instances_created.clone(),
        );
        registry.register(
            "instances_completed",
            "Process instances completed",
            m.instances_completed.clone(),
        );
        registry.register(
            "incidents_created",
            "Incidents raised",
            m.incidents_created.clone(),
        );
        registry.register(
            "job_streams",
            "Job push streams registered (replicated on every replica)",
            m.job_streams.clone(),
        );
        registry.register(
            "gateway_requests",
            "Client requests, by API, method and result code",
            m.gateway_requests.clone(),
        );
        registry.register(
            "gateway_request_seconds",
            "Client request latency, by API and method",
            m.gateway_request_seconds.clone(),
        );
        m
    }

    /// Series for `p` in every per-partition family.
    pub fn register_partition(&self, p: u32) {
        let label = PartitionLabel { partition: p };
        let _ = self.instances_created.get_or_create(&label);
        let _ = self.instances_completed.get_or_create(&label);
        let _ = self.incidents_created.get_or_create(&label);
    }

    /// Adds what partition `p`'s engine did in one turn.
    pub fn count(&self, p: u32, counts: &EngineCounts) {
        for (kind, n) in &counts.commands {
            self.commands_processed
                .get_or_create(&KindLabel {
                    partition: p,
                    kind: kind.to_string(),
                })
                .inc_by(*n);
        }
        for (kind, n) in &counts.rejections {
            self.commands_rejected
                .get_or_create(&KindLabel {
                    partition: p,
                    kind: kind.to_string(),
                })
                .inc_by(*n);
        }
        let label = PartitionLabel { partition: p };
        for (family, n) in [
            (&self.instances_created, counts.instances_created),
            (&self.instances_completed, counts.instances_completed),
            (&self.incidents_created, counts.incidents_created),
        ] {
            if n > 0 {
                family.get_or_create(&label).inc_by(n);
            }
        }
    }

    /// Counts one client request that ended with `code` after `seconds`.
    pub fn request(&self, api: &str, method: &str, code: &str, seconds: f64) {
        self.gateway_requests
            .get_or_create(&RequestLabel {
                api: api.to_string(),
                method: method.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.gateway_request_seconds
            .get_or_create(&MethodLabel {
                api: api.to_string(),
                method: method.to_string(),
            })
            .observe(seconds);
    }
}
