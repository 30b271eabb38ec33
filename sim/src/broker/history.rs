//! What the partitions committed, as their leaders exported it, and the
//! checks against what clients were told.
//!
//! Every leader hands the records of each applied entry to the run's
//! [`RecordingSink`] (the broker's exporter path). An entry index seen twice
//! (from two leaders, or again after a restart) must carry the same records:
//! replicas that drifted apart would show here. From the records:
//!
//! - an acknowledged instance creation must have its instance in the
//!   history, committed no later than the acknowledgement;
//! - an acknowledged job completion must have its `Job COMPLETED` event,
//!   committed no later than the acknowledgement;
//! - a job is completed at most once;
//! - a message correlates at most once per instance (the model has one
//!   `finish` job per correlation);
//! - at the end, every acknowledged instance completed.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use engine::{BpmnElementType, Intent, RecordType, RecordValue};
use node::exporter::{ExportEntry, Sink};
use node::placement::PartitionId;

use crate::checker::{violation, Violation};

/// Where an event sits in the history: its partition, entry index and the
/// simulated time a leader first exported it (which can be well after the
/// entry committed: a leader that lost its leadership answers but does not
/// export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// Partition.
    pub partition: PartitionId,
    /// Raft index of the entry.
    pub index: u64,
    /// Simulated ms when a leader first exported it.
    pub first_seen_ms: u64,
}

/// The facts the checks need.
#[derive(Debug, Default)]
pub struct Facts {
    /// Process instance key → where it started.
    pub started: BTreeMap<i64, At>,
    /// Process instances that completed.
    pub completed: BTreeSet<i64>,
    /// Job key → where it was completed (each completion).
    pub job_completions: BTreeMap<i64, Vec<At>>,
    /// Process instance → `finish` jobs created in it.
    pub finish_jobs: BTreeMap<i64, BTreeSet<i64>>,
    /// Exported entries checked.
    pub entries: u64,
    /// Entries seen again (another leader, or a restart) and found equal.
    pub entries_compared: u64,
}

#[derive(Debug, Default)]
struct State {
    /// (partition, index) → hash of the entry's records.
    seen: BTreeMap<(PartitionId, u64), u64>,
    /// Highest index received per partition.
    acknowledged: BTreeMap<PartitionId, u64>,
    facts: Facts,
    violations: Vec<Violation>,
}

/// The run's exporter sink: keeps the facts and notices differing entries.
#[derive(Debug, Default)]
pub struct RecordingSink {
    now_ms: AtomicU64,
    state: Mutex<State>,
}

fn records_hash(entry: &ExportEntry) -> u64 {
    let mut h = DefaultHasher::new();
    for r in &entry.records {
        // The debug form covers every field of every record.
        format!("{r:?}").hash(&mut h);
    }
    h.finish()
}

impl RecordingSink {
    /// Sets the simulated time stamped on what arrives next.
    pub fn set_now(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Runs `f` over the facts so far.
    pub fn with_facts<T>(&self, f: impl FnOnce(&Facts) -> T) -> T {
        f(&self.state.lock().expect("sink lock").facts)
    }

    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<Violation> {
        self.state
            .lock()
            .expect("sink lock")
            .violations
            .first()
            .cloned()
    }
}

impl Sink for RecordingSink {
    fn send(&self, partition: PartitionId, entries: Vec<ExportEntry>) -> bool {
        let now_ms = self.now_ms.load(Ordering::Relaxed);
        let mut state = self.state.lock().expect("sink lock");
        for entry in entries {
            let hash = records_hash(&entry);
            let key = (partition, entry.index);
            if let Some(&known) = state.seen.get(&key) {
                if known != hash {
                    let v = violation(
                        "replicas commit the same records",
                        format!(
                            "partition {partition} entry {}: two leaders exported different records",
                            entry.index
                        ),
                    );
                    state.violations.push(v);
                }
                state.facts.entries_compared += 1;
                continue;
            }
            state.seen.insert(key, hash);
            let top = state.acknowledged.entry(partition).or_default();
            *top = (*top).max(entry.index);
            state.facts.entries += 1;
            let at = At {
                partition,
                index: entry.index,
                first_seen_ms: now_ms,
            };
            for r in &entry.records {
                if r.record_type != RecordType::Event {
                    continue;
                }
                let facts = &mut state.facts;
                match &r.value {
                    RecordValue::ProcessInstance(pi)
                        if pi.bpmn_element_type == BpmnElementType::Process =>
                    {
                        match r.intent {
                            Intent::ElementActivating => {
                                facts.started.insert(r.key, at);
                            }
                            Intent::ElementCompleted => {
                                facts.completed.insert(r.key);
                            }
                            _ => {}
                        }
                    }
                    RecordValue::Job(job) => match r.intent {
                        Intent::Completed => {
                            facts.job_completions.entry(r.key).or_default().push(at)
                        }
                        Intent::Created if &*job.job_type == "finish" => {
                            facts
                                .finish_jobs
                                .entry(job.process_instance_key)
                                .or_default()
                                .insert(r.key);
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        true
    }

    fn acknowledged(&self, partition: PartitionId) -> u64 {
        let state = self.state.lock().expect("sink lock");
        state.acknowledged.get(&partition).copied().unwrap_or(0)
    }
}

/// An operation a client was told succeeded.
#[derive(Clone, Copy, Debug)]
pub enum Acked {
    /// An instance was created with this key.
    Created {
        /// Instance key.
        key: i64,
        /// When the request was sent.
        sent_ms: u64,
        /// When the answer came.
        acked_ms: u64,
    },
    /// A job was completed.
    Completed {
        /// Job key.
        job: i64,
        /// When the request was sent.
        sent_ms: u64,
        /// When the answer came.
        acked_ms: u64,
    },
}

/// Safety checks of the history so far against the acknowledgements;
/// `applied_at` tells when a replica first applied an entry of a partition.
/// An acknowledged operation missing from the history is a violation only
/// when `complete` (everything committed has been exported by then).
pub fn check(
    facts: &Facts,
    acked: &[Acked],
    applied_at: &BTreeMap<(PartitionId, u64), u64>,
    complete: bool,
) -> Result<(), Violation> {
    for (job, completions) in &facts.job_completions {
        if completions.len() > 1 {
            return Err(violation(
                "a job is completed once",
                format!("job {job} completed at {completions:?}"),
            ));
        }
    }
    for (instance, jobs) in &facts.finish_jobs {
        if jobs.len() > 1 {
            return Err(violation(
                "a message correlates once per subscription",
                format!("instance {instance} got {} finish jobs", jobs.len()),
            ));
        }
    }
    for a in acked {
        let (what, at, sent_ms, acked_ms) = match *a {
            Acked::Created {
                key,
                sent_ms,
                acked_ms,
            } => (
                format!("instance {key}"),
                facts.started.get(&key).copied(),
                sent_ms,
                acked_ms,
            ),
            Acked::Completed {
                job,
                sent_ms,
                acked_ms,
            } => (
                format!("completion of job {job}"),
                facts
                    .job_completions
                    .get(&job)
                    .and_then(|c| c.first().copied()),
                sent_ms,
                acked_ms,
            ),
        };
        let Some(at) = at else {
            if !complete {
                continue;
            }
            return Err(violation(
                "no acknowledged command is lost",
                format!("{what}, acknowledged at {acked_ms} ms, is not in the history"),
            ));
        };
        let applied_ms = applied_at.get(&(at.partition, at.index)).copied();
        if !applied_ms.is_some_and(|t| (sent_ms..=acked_ms).contains(&t)) {
            return Err(violation(
                "acknowledgements are linearizable",
                format!(
                    "{what}: sent at {sent_ms} ms, acknowledged at {acked_ms} ms, first applied \
                     at {applied_ms:?} ms ({at:?})"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, first_seen_ms: u64) -> At {
        At {
            partition: 1,
            index,
            first_seen_ms,
        }
    }

    fn applied(entries: &[(u64, u64)]) -> BTreeMap<(PartitionId, u64), u64> {
        entries.iter().map(|&(i, t)| ((1, i), t)).collect()
    }

    #[test]
    fn each_check_fails_on_what_it_guards() {
        let mut facts = Facts::default();
        facts.started.insert(10, at(3, 50));
        facts.job_completions.insert(20, vec![at(5, 70)]);
        let ok = [
            Acked::Created {
                key: 10,
                sent_ms: 40,
                acked_ms: 60,
            },
            Acked::Completed {
                job: 20,
                sent_ms: 60,
                acked_ms: 80,
            },
        ];
        let times = applied(&[(3, 55), (5, 75)]);
        assert_eq!(check(&facts, &ok, &times, true), Ok(()));

        let lost = [Acked::Created {
            key: 11,
            sent_ms: 40,
            acked_ms: 60,
        }];
        assert_eq!(
            check(&facts, &lost, &times, false),
            Ok(()),
            "may still come"
        );
        let e = check(&facts, &lost, &times, true).unwrap_err();
        assert_eq!(e.invariant, "no acknowledged command is lost");

        let early = applied(&[(3, 65), (5, 75)]);
        let e = check(&facts, &ok, &early, true).unwrap_err();
        assert_eq!(e.invariant, "acknowledgements are linearizable");

        facts.job_completions.get_mut(&20).unwrap().push(at(9, 90));
        let e = check(&facts, &ok, &times, true).unwrap_err();
        assert_eq!(e.invariant, "a job is completed once");

        facts.job_completions.get_mut(&20).unwrap().pop();
        facts.finish_jobs.insert(10, [30, 31].into());
        let e = check(&facts, &ok, &times, true).unwrap_err();
        assert_eq!(e.invariant, "a message correlates once per subscription");
    }
}
