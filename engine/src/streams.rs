//! Job push streams: workers that asked to have jobs of a type pushed to them
//! (Zeebe's `StreamActivatedJobs`).
//!
//! ```text
//! streams: BTreeMap<stream id, JobStream>   cursor: job type -> last stream used
//! ```
//!
//! Replicated: the broker adds and removes streams through log entries that
//! every replica applies in order, and the registry is in the snapshot, so
//! every replica activates a new job for the same stream in the same step
//! that creates it (no second commit), and a new leader pushes to the same
//! streams. Streams of one type are served round-robin.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::tenancy::Tenant;

/// Most streams registered at once on a partition.
pub const MAX_JOB_STREAMS: usize = 65_536;

/// One registered stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStream {
    /// Job type served.
    pub job_type: String,
    /// Worker name.
    pub worker: String,
    /// Activation timeout.
    pub timeout_ms: i64,
    /// Variables to fetch (empty = all).
    pub fetch_variables: Vec<String>,
    /// The tenants whose jobs it takes; `None`: any.
    pub tenants: Option<Vec<Tenant>>,
    /// The processes whose jobs it takes (its worker's grants); `None`: any.
    pub processes: Option<Vec<Arc<str>>>,
}

impl JobStream {
    /// Whether a job of `process` in `tenant` may be pushed to this stream.
    pub fn takes(&self, tenant: &Tenant, process: &str) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.contains(tenant))
            && self
                .processes
                .as_ref()
                .is_none_or(|p| p.iter().any(|id| &**id == process))
    }
}

/// The registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStreams {
    streams: BTreeMap<u64, JobStream>,
    cursor: BTreeMap<String, u64>,
}

impl JobStreams {
    /// Adds (or replaces) a stream. Beyond `MAX_JOB_STREAMS` the stream is
    /// not added (its worker falls back to polling).
    pub fn add(
        &mut self,
        stream_id: u64,
        job_type: &str,
        worker: &str,
        timeout_ms: i64,
        fetch_variables: Vec<String>,
    ) {
        if self.streams.len() >= MAX_JOB_STREAMS && !self.streams.contains_key(&stream_id) {
            return;
        }
        self.streams.insert(
            stream_id,
            JobStream {
                job_type: job_type.to_string(),
                worker: worker.to_string(),
                timeout_ms: timeout_ms.max(1),
                fetch_variables,
                tenants: None,
                processes: None,
            },
        );
    }

    /// Restricts stream `stream_id` to the jobs of `tenants` and
    /// `processes` (`None`: any).
    pub fn restrict(
        &mut self,
        stream_id: u64,
        tenants: Option<Vec<Tenant>>,
        processes: Option<Vec<Arc<str>>>,
    ) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            stream.tenants = tenants;
            stream.processes = processes;
        }
    }

    /// Removes a stream.
    pub fn remove(&mut self, stream_id: u64) {
        self.streams.remove(&stream_id);
    }

    /// The registered streams, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &JobStream)> {
        self.streams.iter().map(|(id, s)| (*id, s))
    }

    /// How many streams are registered.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when no stream is registered.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The next stream (round-robin) for a job of `job_type` and `process`
    /// in `tenant`.
    pub fn next_for(
        &mut self,
        job_type: &str,
        tenant: &Tenant,
        process: &str,
    ) -> Option<(u64, JobStream)> {
        let last = self.cursor.get(job_type).copied();
        let matching =
            |(_, s): &(&u64, &JobStream)| s.job_type == job_type && s.takes(tenant, process);
        let after = last.and_then(|l| {
            self.streams
                .range(l + 1..)
                .find(matching)
                .map(|(k, s)| (*k, s.clone()))
        });
        let chosen = after.or_else(|| {
            self.streams
                .iter()
                .find(matching)
                .map(|(k, s)| (*k, s.clone()))
        })?;
        self.cursor.insert(job_type.to_string(), chosen.0);
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_matching_streams() {
        let mut s = JobStreams::default();
        s.add(1, "a", "w1", 100, vec![]);
        s.add(2, "b", "w2", 100, vec![]);
        s.add(3, "a", "w3", 100, vec![]);
        let any = Tenant::default();
        let picks: Vec<u64> = (0..4)
            .map(|_| s.next_for("a", &any, "p").unwrap().0)
            .collect();
        assert_eq!(picks, [1, 3, 1, 3]);
        assert!(s.next_for("c", &any, "p").is_none());
        s.remove(1);
        assert_eq!(s.next_for("a", &any, "p").unwrap().0, 3);
    }

    #[test]
    fn a_restricted_stream_takes_jobs_of_its_tenants_and_processes_only() {
        let mut s = JobStreams::default();
        s.add(1, "a", "w1", 100, vec![]);
        s.restrict(
            1,
            Some(vec![Tenant::new("acme")]),
            Some(vec![Arc::from("order")]),
        );
        let acme = Tenant::new("acme");
        assert!(s.next_for("a", &Tenant::default(), "order").is_none());
        assert!(s.next_for("a", &acme, "refund").is_none());
        assert_eq!(s.next_for("a", &acme, "order").unwrap().0, 1);
    }
}
