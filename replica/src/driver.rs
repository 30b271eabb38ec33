//! The driver: one node's replicas of its groups, and the handling of a Raft
//! ready that both the broker and the simulator run.
//!
//! One ready is handled in three calls, so that a simulator can let time
//! pass while a sync is in flight:
//! 1. the caller takes `ready()` and sends its `messages` at once;
//! 2. [`Driver::write`]: per group, install the snapshot (synced by the
//!    snapshot store), write the entries into the log buffer, and store the
//!    hard state: the term and vote at once, a commit-only change at most
//!    every `commit_store_interval_ms` (Raft recovers the commit index from
//!    the leader; a commit index stored above the log's end on open means
//!    committed entries were lost, see [`Options::accept_data_loss`]);
//! 3. [`Driver::sync`]: one `fdatasync` per log written (group commit), then
//!    the writes are reported to Raft as persisted, and the messages that
//!    depend on them are released. The committed entries come back for
//!    [`Driver::apply`].
//!
//! A full disk stalls a group, it does not fail it (see [`crate::stall`]):
//! an ENOSPC while installing a snapshot, writing or syncing keeps that
//! group's writes buffered and unreported, and holds back its messages;
//! [`Driver::retry_space`] writes them again. Any other storage error is
//! returned, and the caller stops the replicas.
//!
//! The driver decides nothing by a clock: every call that decides by time
//! takes `now_ms`, a monotonic time in milliseconds. (It times each sync, for
//! the caller's metrics only.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use raft::{
    Entry, EntryKind, Envelope, GroupBootstrap, GroupConfig, GroupId, GroupMessage, GroupReady,
    LogReader, MemLog, MultiRaft, NodeId, RaftConfig, Ready, Role, SnapshotMeta,
};
use storage::{Disk, LogConfig, TailLoss};

use crate::error::{storage, ReplicaError};
use crate::machine::StateMachine;
use crate::stall::{Stall, MAX_RETRY_MS};
use crate::store::GroupStore;

/// How a driver opens its groups.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's Raft id.
    pub me: NodeId,
    /// Raft timing and limits.
    pub raft: RaftConfig,
    /// Seed of the election jitter.
    pub seed: u64,
    /// Segment size and other settings of the logs.
    pub log: LogConfig,
    /// Start a group whose log lost committed entries that no peer can give
    /// back (`data.accept_data_loss`).
    pub accept_data_loss: bool,
    /// A commit index that moved is stored at least this often while the
    /// group is busy.
    pub commit_store_interval_ms: u64,
    /// A deliberately broken variant (effective only with the
    /// `bug-injection` feature).
    pub bug: Option<Bug>,
}

/// Deliberately broken variants of the driver: the simulator's tests prove
/// that it finds each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// The log is not synced before its entries are reported persisted.
    SkipSync,
    /// A changed term or vote is stored lazily, like a commit-only change.
    VoteStoredLazily,
    /// A snapshot from the leader is stored but not restored into the machine.
    InstallWithoutRestore,
    /// A replica that joins its group empty ignores its [`JoinFence`].
    JoinWithoutFence,
}

impl Options {
    /// Whether the broken variant `bug` is active.
    pub fn has_bug(&self, bug: Bug) -> bool {
        cfg!(feature = "bug-injection") && self.bug == Some(bug)
    }
}

/// One group to open.
#[derive(Debug)]
pub struct GroupSpec<S> {
    /// The group.
    pub group: GroupId,
    /// The directory of its stores.
    pub dir: PathBuf,
    /// Its configuration when nothing is stored yet.
    pub initial: GroupConfig,
    /// Its state machine, empty.
    pub machine: S,
    /// For a replica that joins its group (nothing stored yet): where the
    /// group stood when it joined, from its leader ([`Driver::join_fence`]).
    /// Ignored when the group's stores hold anything.
    pub fence: Option<JoinFence>,
}

/// Where a group stood when a replica joined it, taken from its leader: the
/// new replica starts at the leader's term, so that no leader deposed before
/// it joined is followed, and votes only for candidates whose log holds the
/// leader's last applied entry until its own log does. A node deleted from
/// the group and added back under its id thus gives no vote to a replica
/// still in a configuration from before its removal (which would count it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinFence {
    /// The leader's term.
    pub term: u64,
    /// The leader's last applied (so committed) index.
    pub index: u64,
    /// The term of the entry at `index`.
    pub index_term: u64,
}

/// What opening a group found, for the caller's logs and metrics.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The group.
    pub group: GroupId,
    /// The torn or damaged log tail that recovery dropped.
    pub tail_loss: Option<TailLoss>,
    /// The index the log must reach again after losing committed entries
    /// (the replica does not vote until then); 0 when whole.
    pub recovering_until: u64,
    /// The last index held (log or snapshot).
    pub held: u64,
}

/// The writes of one ready, between [`Driver::write`] and [`Driver::sync`].
#[derive(Debug, Default)]
#[must_use = "a written ready must be synced"]
pub struct Flight {
    acks: Vec<(GroupId, u64, u64)>,
    to_sync: Vec<GroupId>,
    committed: Vec<(GroupId, Vec<Entry>)>,
    after_persist: Vec<Envelope>,
    installed: Vec<(GroupId, SnapshotMeta)>,
    /// Entries written per group.
    pub appended: Vec<(GroupId, usize)>,
    /// Which opening of each written group the writes are of: a group
    /// closed and opened again (a node that left and rejoins) while they
    /// were in flight gets none of its earlier replica's acknowledgements,
    /// messages or entries to apply.
    openings: Vec<(GroupId, u64)>,
}

/// A ready whose writes are durable (or stalled).
#[derive(Debug, Default)]
pub struct Landed {
    /// Messages to send now (those of stalled groups are held back).
    pub messages: Vec<Envelope>,
    /// Committed entries to apply, per group, in order.
    pub committed: Vec<(GroupId, Vec<Entry>)>,
    /// Snapshots installed from a leader (the machine is restored).
    pub installed: Vec<(GroupId, SnapshotMeta)>,
    /// Seconds each log's sync took (for metrics only).
    pub sync_seconds: Vec<(GroupId, f64)>,
}

struct Replica<D: Disk, S> {
    store: GroupStore<D>,
    machine: S,
    /// Tells this replica from an earlier one of its group on this node.
    opening: u64,
}

/// See the module documentation.
pub struct Driver<D: Disk, S> {
    raft: MultiRaft<MemLog>,
    replicas: BTreeMap<GroupId, Replica<D, S>>,
    disk: D,
    options: Options,
    commit_store_interval_ms: u64,
    bug: Option<Bug>,
    /// Groups opened so far (see [`Replica::opening`]).
    openings: u64,
}

impl<D: Disk, S> std::fmt::Debug for Driver<D, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("me", &self.raft.id())
            .field("groups", &self.replicas.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<D: Disk, S: StateMachine> Driver<D, S> {
    /// Opens (creating or recovering) `groups` on `disk`, restoring each
    /// machine from its snapshot; `heartbeat` is called as the logs load.
    pub async fn open(
        disk: D,
        options: &Options,
        groups: Vec<GroupSpec<S>>,
        heartbeat: &dyn Fn(),
    ) -> Result<(Self, Vec<Opened>), ReplicaError> {
        let raft = MultiRaft::new(
            options.me,
            options.raft.clone(),
            MemLog::new(),
            options.seed,
        );
        let mut driver = Driver {
            raft,
            replicas: BTreeMap::new(),
            openings: 0,
            disk,
            options: options.clone(),
            commit_store_interval_ms: options.commit_store_interval_ms,
            bug: options.bug.filter(|b| options.has_bug(*b)),
        };
        let mut opened = Vec::with_capacity(groups.len());
        for spec in groups {
            opened.push(driver.add_group(spec, heartbeat).await?);
        }
        Ok((driver, opened))
    }

    /// Opens (creating or recovering) one more group while the others run:
    /// a replica that joins its group starts empty, with the group's
    /// configuration of the moment as `spec.initial` (it votes once a
    /// configuration that names it is applied). A group that fails to open
    /// (a failing or full disk) leaves nothing behind in Raft or the log
    /// reader: it can be opened again.
    pub async fn add_group(
        &mut self,
        spec: GroupSpec<S>,
        heartbeat: &dyn Fn(),
    ) -> Result<Opened, ReplicaError> {
        let g = spec.group;
        if self.replicas.contains_key(&g) {
            return Err(ReplicaError::Corrupt {
                group: g,
                reason: "the group is already open".into(),
            });
        }
        let opened = self.open_group(spec, heartbeat).await;
        if opened.is_err() {
            self.raft.remove_group(g);
            self.raft.reader_mut().remove_group(g);
        }
        opened
    }

    async fn open_group(
        &mut self,
        spec: GroupSpec<S>,
        heartbeat: &dyn Fn(),
    ) -> Result<Opened, ReplicaError> {
        let g = spec.group;
        let options = &self.options;
        let (mut store, found) = GroupStore::open(
            self.disk.clone(),
            g,
            &spec.dir,
            options.log.clone(),
            spec.initial,
            self.raft.reader_mut(),
            heartbeat,
        )
        .await?;
        if let Some(loss) = &found.tail_loss {
            let path = std::path::absolute(&loss.path).unwrap_or(loss.path.clone());
            tracing::warn!(
                partition = g,
                file = %path.display(),
                offset = loss.offset,
                frames_dropped = loss.frames_dropped,
                last_index = loss.last_index,
                "partition {g}: recovery dropped a torn or damaged log tail: {}",
                TailLoss {
                    path: path.clone(),
                    ..loss.clone()
                }
            );
        }
        let mut machine = spec.machine;
        if let Some((index, state)) = &found.snapshot {
            machine
                .restore(*index, state)
                .map_err(|reason| ReplicaError::Corrupt { group: g, reason })?;
        }
        let fence = spec
            .fence
            .filter(|_| found.held == 0 && found.hard_state == raft::HardState::default())
            .filter(|_| !options.has_bug(Bug::JoinWithoutFence));
        let mut found_hs = found.hard_state;
        let mut stored_fence = found.fence;
        if let Some(fence) = fence {
            // Stored first: a restart before the log reaches the fence keeps
            // it.
            found_hs = raft::HardState {
                term: fence.term,
                vote: raft::NO_NODE,
                commit: fence.index,
            };
            store
                .store_fence(found_hs, fence.index, fence.index_term)
                .await?;
            stored_fence = Some((fence.index, fence.index_term));
            tracing::info!(
                partition = g,
                term = fence.term,
                index = fence.index,
                "partition {g}: a new replica joins at term {}; it votes only for candidates \
                 holding entry {} until its log does",
                fence.term,
                fence.index
            );
        }
        // Behind its join fence still (nothing committed beyond it was
        // stored since), a replica votes for candidates holding the fence's
        // entry; one that lost committed entries beyond it, for none.
        let (recovering_until, recovering_term) = match stored_fence {
            Some((index, term)) if found_hs.commit == index && found.held < index => {
                (index, Some(term))
            }
            _ => {
                let until = check_lost_committed(
                    options,
                    g,
                    &store.log_dir(),
                    found_hs.commit,
                    found.held,
                    &found.config,
                )?;
                (until, None)
            }
        };
        let hs = raft::HardState {
            commit: found_hs.commit.min(found.held),
            ..found_hs
        };
        self.raft.reader_mut().set_hard_state(g, hs);
        let single = found.config.all_voters().len() == 1;
        let single_voter_is_me = found.config.is_voter(options.me);
        let boot = GroupBootstrap {
            config: found.config,
            hard_state: hs,
            applied: machine.applied(),
            recovering_until,
            recovering_term,
        };
        self.raft
            .add_group(g, boot)
            .map_err(|e| ReplicaError::Corrupt {
                group: g,
                reason: e.to_string(),
            })?;
        if single && single_voter_is_me {
            // The only voter: no one to wait for.
            self.raft.campaign(g);
        }
        // The reserve for a full disk; without room for it the group starts
        // short of space and makes it later.
        match store.log.ensure_spare().await {
            Ok(()) => {}
            Err(e) if e.is_no_space() => {
                tracing::warn!(partition = g, "no room for the log's spare segment: {e}")
            }
            Err(source) => return Err(ReplicaError::Storage { group: g, source }),
        }
        self.openings += 1;
        let opening = self.openings;
        self.replicas.insert(
            g,
            Replica {
                store,
                machine,
                opening,
            },
        );
        Ok(Opened {
            group: g,
            tail_loss: found.tail_loss,
            recovering_until,
            held: found.held,
        })
    }

    /// Stops hosting `group` and deletes its stores (a replica that left
    /// its group); false when it is not open here.
    pub async fn remove_group(&mut self, group: GroupId) -> Result<bool, ReplicaError> {
        let Some(replica) = self.replicas.remove(&group) else {
            return Ok(false);
        };
        self.raft.remove_group(group);
        self.raft.reader_mut().remove_group(group);
        let dir = replica.store.dir().to_path_buf();
        drop(replica);
        self.disk
            .remove_dir_all(&dir)
            .await
            .map_err(|source| ReplicaError::Storage {
                group,
                source: storage::Error::Io {
                    op: "removing",
                    path: dir.clone(),
                    source,
                },
            })?;
        Ok(true)
    }

    /// The Raft core.
    pub fn raft(&self) -> &MultiRaft<MemLog> {
        &self.raft
    }

    /// On the leader of `group`, where it stands, for a replica that joins
    /// it ([`GroupSpec::fence`]); `None` elsewhere.
    pub fn join_fence(&self, group: GroupId) -> Option<JoinFence> {
        let brief = self.raft.brief(group)?;
        if brief.role != raft::Role::Leader {
            return None;
        }
        let applied = self.raft.status(group)?.applied;
        Some(JoinFence {
            term: brief.term,
            index: applied,
            index_term: self.raft.term_at(group, applied)?,
        })
    }

    /// The Raft core, to tick, campaign or transfer leadership.
    pub fn raft_mut(&mut self) -> &mut MultiRaft<MemLog> {
        &mut self.raft
    }

    /// The groups.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.replicas.keys().copied()
    }

    /// A group's state machine.
    pub fn machine(&self, group: GroupId) -> Option<&S> {
        self.replicas.get(&group).map(|r| &r.machine)
    }

    /// A group's state machine, to prepare commands.
    pub fn machine_mut(&mut self, group: GroupId) -> Option<&mut S> {
        self.replicas.get_mut(&group).map(|r| &mut r.machine)
    }

    /// Every group's state machine.
    pub fn machines(&self) -> impl Iterator<Item = (GroupId, &S)> + '_ {
        self.replicas.iter().map(|(g, r)| (*g, &r.machine))
    }

    /// Whether this node leads `group`.
    pub fn leads(&self, group: GroupId) -> bool {
        self.raft
            .brief(group)
            .is_some_and(|b| b.role == Role::Leader)
    }

    /// The stall of `group`, while a full disk holds its writes back.
    pub fn stall(&self, group: GroupId) -> Option<&Stall> {
        self.replicas
            .get(&group)
            .and_then(|r| r.store.stall.as_ref())
    }

    /// The log directory of `group` and, when its log is short of space
    /// (it used its reserve), why.
    pub fn space_shortage(&self, group: GroupId) -> Option<(&Path, &str)> {
        let log = &self.replicas.get(&group)?.store.log;
        log.space_shortage().map(|s| (log.dir(), s))
    }

    /// Entries applied since the latest snapshot of `group`.
    pub fn applied_since_snapshot(&self, group: GroupId) -> u64 {
        self.replicas.get(&group).map_or(0, |r| {
            r.machine.applied().saturating_sub(r.store.snapshot_index)
        })
    }

    /// Proposes entries on a group this node leads; refused while its
    /// writes are stalled by a full disk.
    pub fn propose(&mut self, group: GroupId, entries: Vec<bytes::Bytes>) -> Result<(), String> {
        if let Some(stall) = self.stall(group) {
            return Err(stall.refusal.reason.clone());
        }
        self.raft
            .propose(group, entries)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Feeds a message from another node. A stalled group drops appends past
    /// its buffer bound (the leader sends them again, as after a loss).
    pub fn step(&mut self, mut envelope: Envelope) {
        if self.replicas.values().any(|r| r.store.stall.is_some()) {
            envelope.messages.retain(|m| {
                let raft::MessageBody::Append { entries, .. } = &m.body else {
                    return true;
                };
                let stall = self
                    .replicas
                    .get_mut(&m.group)
                    .and_then(|r| r.store.stall.as_mut());
                let Some(stall) = stall else {
                    return true;
                };
                let bytes: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
                if stall.over_buffer(bytes) {
                    return false;
                }
                stall.buffered_bytes += bytes;
                true
            });
        }
        self.raft.step_envelope(envelope);
    }

    /// Whether a ready is waiting.
    pub fn has_ready(&self) -> bool {
        self.raft.has_ready()
    }

    /// The next ready: send its `messages` at once, then pass its groups and
    /// `messages_after_persist` to [`Driver::write`].
    pub fn ready(&mut self) -> Ready {
        self.raft.ready()
    }

    /// Step 2 of the module documentation.
    pub async fn write(
        &mut self,
        groups: Vec<GroupReady>,
        after_persist: Vec<Envelope>,
        now_ms: u64,
    ) -> Result<Flight, ReplicaError> {
        let mut flight = Flight {
            after_persist,
            ..Flight::default()
        };
        for gr in groups {
            let g = gr.group;
            flight.openings.push((g, self.replica(g).opening));
            self.write_group(g, gr.snapshot, gr.entries, &mut flight, now_ms)
                .await?;
            if let Some(hs) = gr.hard_state {
                self.raft.reader_mut().set_hard_state(g, hs);
                // A committed configuration is stored at once: a replica
                // restarts with the configuration its stored commit covers,
                // and one two changes behind could count a quorum that no
                // longer overlaps the group's.
                let conf_committed = gr.committed.iter().any(|e| e.kind == EntryKind::ConfChange);
                let interval = if conf_committed {
                    0
                } else {
                    self.commit_store_interval_ms
                };
                let lazy_vote = self.bug == Some(Bug::VoteStoredLazily);
                self.replica(g)
                    .store
                    .hard_state(hs, now_ms, interval, lazy_vote)
                    .await?;
            }
            if !gr.committed.is_empty() {
                flight.committed.push((g, gr.committed));
            }
        }
        Ok(flight)
    }

    fn replica(&mut self, group: GroupId) -> &mut Replica<D, S> {
        self.replicas
            .get_mut(&group)
            .expect("Raft only knows the driver's groups")
    }

    /// Hands a group's snapshot and entries to its stores (buffered, not
    /// synced), or queues them behind the group's stall.
    async fn write_group(
        &mut self,
        g: GroupId,
        snapshot: Option<raft::Snapshot>,
        entries: Vec<Entry>,
        flight: &mut Flight,
        now_ms: u64,
    ) -> Result<(), ReplicaError> {
        let replica = self
            .replicas
            .get_mut(&g)
            .expect("Raft only knows the driver's groups");
        let store = &mut replica.store;
        if let Some(stall) = store.stall.as_mut().filter(|s| s.snapshot.is_some()) {
            if snapshot.is_some() {
                stall.snapshot = snapshot;
                stall.entries.clear();
            }
            stall.queue_entries(entries);
            return Ok(());
        }
        if let Some(snapshot) = snapshot {
            match store.install(self.raft.reader_mut(), &snapshot).await {
                Ok(state) => {
                    let meta = snapshot.meta.clone();
                    if self.bug != Some(Bug::InstallWithoutRestore) {
                        replica
                            .machine
                            .restore(meta.index, &state)
                            .map_err(|reason| ReplicaError::Corrupt { group: g, reason })?;
                    }
                    match store.stall.as_mut() {
                        Some(stall) => stall.acks.push((meta.index, meta.term)),
                        None => flight.acks.push((g, meta.index, meta.term)),
                    }
                    flight.installed.push((g, meta));
                }
                Err(e) if e.is_no_space() => {
                    let dir = store.log_dir();
                    let mut stall = store
                        .stall
                        .take()
                        .unwrap_or_else(|| Stall::new(g, &dir, &e, now_ms));
                    stall.snapshot = Some(snapshot);
                    stall.queue_entries(entries);
                    store.stall = Some(stall);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let (index, term) = (last.index, last.term);
        store.append(self.raft.reader_mut(), &entries).await?;
        flight.appended.push((g, entries.len()));
        match store.stall.as_mut() {
            // Synced by the stall's next retry, not before.
            Some(stall) => {
                stall.acks.push((index, term));
                stall.buffered_bytes += entries.iter().map(|e| e.data.len() as u64).sum::<u64>();
            }
            None => {
                flight.acks.push((g, index, term));
                flight.to_sync.push(g);
            }
        }
        Ok(())
    }

    /// Step 3 of the module documentation.
    pub async fn sync(&mut self, flight: Flight, now_ms: u64) -> Result<Landed, ReplicaError> {
        let Flight {
            mut acks,
            to_sync,
            committed,
            mut after_persist,
            installed,
            appended: _,
            openings,
        } = flight;
        // Groups removed, or removed and opened again, while their writes
        // were in flight: what was written for them is dropped.
        let gone: BTreeSet<GroupId> = openings
            .iter()
            .filter(|(g, opening)| self.replicas.get(g).map(|r| r.opening) != Some(*opening))
            .map(|(g, _)| *g)
            .collect();
        acks.retain(|(g, _, _)| !gone.contains(g));
        for envelope in &mut after_persist {
            envelope.messages.retain(|m| !gone.contains(&m.group));
        }
        after_persist.retain(|e| !e.messages.is_empty());
        let mut sync_seconds = Vec::with_capacity(to_sync.len());
        for g in to_sync.into_iter().filter(|g| !gone.contains(g)) {
            if self.bug == Some(Bug::SkipSync) {
                continue;
            }
            let Some(replica) = self.replicas.get_mut(&g) else {
                continue;
            };
            let store = &mut replica.store;
            let started = std::time::Instant::now();
            let synced = store.log.sync().await;
            sync_seconds.push((g, started.elapsed().as_secs_f64()));
            match synced {
                Ok(_) => {}
                Err(source) if source.is_no_space() => {
                    let mut stall = Stall::new(g, &store.log_dir(), &source, now_ms);
                    stall.acks.extend(
                        acks.iter()
                            .filter(|(group, _, _)| *group == g)
                            .map(|(_, index, term)| (*index, *term)),
                    );
                    acks.retain(|(group, _, _)| *group != g);
                    store.stall = Some(stall);
                }
                Err(source) => return Err(ReplicaError::Storage { group: g, source }),
            }
        }
        let messages = self.hold_back(after_persist);
        for (g, index, term) in acks {
            self.raft.persisted(g, index, term);
        }
        let open = |g: &GroupId| self.replicas.contains_key(g) && !gone.contains(g);
        Ok(Landed {
            messages,
            committed: committed.into_iter().filter(|(g, _)| open(g)).collect(),
            installed: installed.into_iter().filter(|(g, _)| open(g)).collect(),
            sync_seconds,
        })
    }

    /// Applies `group`'s committed entries to its machine, in order.
    pub fn apply(
        &mut self,
        group: GroupId,
        entries: &[Entry],
        out: &mut S::Output,
    ) -> Result<(), ReplicaError> {
        let replica = self
            .replicas
            .get_mut(&group)
            .expect("Raft only knows the driver's groups");
        for e in entries {
            replica
                .machine
                .apply(e, self.raft.reader(), out)
                .map_err(|reason| ReplicaError::Corrupt { group, reason })?;
        }
        Ok(())
    }

    /// The configuration of `group` as of `index`: its latest configuration
    /// entry at or below it, else its snapshot's, else its initial one.
    pub fn config_at(&self, group: GroupId, index: u64) -> GroupConfig {
        let reader = self.raft.reader();
        let found = reader
            .conf_change_at(group, index)
            .and_then(|e| raft::decode_config(e.data.clone()).ok());
        found
            .or_else(|| reader.snapshot(group).map(|s| s.config))
            .or_else(|| self.replicas.get(&group).map(|r| r.store.initial.clone()))
            .unwrap_or_default()
    }

    /// The configuration `group` would restart with: the one its stored
    /// commit index covers. A membership change is complete on a replica
    /// once this is the new configuration.
    pub fn durable_config(&self, group: GroupId) -> GroupConfig {
        let commit = self
            .replicas
            .get(&group)
            .map(|r| r.store.stored_commit())
            .unwrap_or(0);
        self.config_at(group, commit)
    }

    /// Takes a snapshot of `group` at its machine's applied index and
    /// compacts the log; returns its size in bytes, or `None` when a full
    /// disk refused it (tried again after `MAX_RETRY_MS`) or the last such
    /// refusal is too recent.
    pub async fn snapshot(
        &mut self,
        group: GroupId,
        now_ms: u64,
    ) -> Result<Option<usize>, ReplicaError> {
        let Some(replica) = self.replicas.get(&group) else {
            return Ok(None);
        };
        let config = self.config_at(group, replica.machine.applied());
        let replica = self
            .replicas
            .get_mut(&group)
            .expect("Raft only knows the driver's groups");
        if replica
            .store
            .snapshot_retry_at_ms
            .is_some_and(|at| now_ms < at)
        {
            return Ok(None);
        }
        let index = replica.machine.applied();
        let state = replica.machine.snapshot();
        let reader = self.raft.reader_mut();
        match replica
            .store
            .take_snapshot(reader, index, config, &state)
            .await
        {
            Ok(bytes) => {
                replica.store.snapshot_retry_at_ms = None;
                if bytes > 0 {
                    tracing::info!(partition = group, index, "snapshot taken, log compacted");
                }
                Ok(Some(bytes))
            }
            Err(e) if e.is_no_space() => {
                tracing::warn!(
                    partition = group,
                    "snapshot not taken, retried in {MAX_RETRY_MS} ms: {e}"
                );
                replica.store.snapshot_retry_at_ms = Some(now_ms + MAX_RETRY_MS);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps back the messages of stalled groups (they depend on writes that
    /// are not durable) and returns the others.
    fn hold_back(&mut self, envelopes: Vec<Envelope>) -> Vec<Envelope> {
        if self.replicas.values().all(|r| r.store.stall.is_none()) {
            return envelopes;
        }
        let mut out = Vec::with_capacity(envelopes.len());
        for mut envelope in envelopes {
            let to = envelope.to;
            envelope.messages.retain(|m| {
                let stall = self
                    .replicas
                    .get_mut(&m.group)
                    .and_then(|r| r.store.stall.as_mut());
                match stall {
                    Some(stall) => {
                        stall.hold(to, m.clone());
                        false
                    }
                    None => true,
                }
            });
            if !envelope.messages.is_empty() {
                out.push(envelope);
            }
        }
        out
    }

    /// Retries the writes of stalled groups that are due, makes the log's
    /// reserve again where it was used; returns the messages released by
    /// writes that became durable. Only errors other than ENOSPC are
    /// returned.
    pub async fn retry_space(&mut self, now_ms: u64) -> Result<Vec<Envelope>, ReplicaError> {
        let me = self.raft.id();
        let mut released: BTreeMap<NodeId, Vec<GroupMessage>> = BTreeMap::new();
        let ids: Vec<GroupId> = self.replicas.keys().copied().collect();
        for g in ids {
            let replica = self.replicas.get_mut(&g).expect("listed");
            let store = &mut replica.store;
            if store.stall.as_ref().is_some_and(|s| s.due(now_ms)) {
                let mut stall = store.stall.take().expect("checked");
                let resumed = resume(
                    store,
                    &mut replica.machine,
                    self.raft.reader_mut(),
                    &mut stall,
                )
                .await?;
                if resumed {
                    tracing::info!(partition = g, "disk space is back: writes resumed");
                    for (index, term) in stall.acks {
                        self.raft.persisted(g, index, term);
                    }
                    for (to, message) in stall.messages {
                        released.entry(to).or_default().push(message);
                    }
                } else {
                    stall.back_off(now_ms);
                    store.stall = Some(stall);
                    // A leader that cannot write holds its group up: a
                    // healthy replica takes over if there is one.
                    if self.leads(g) && self.transfer_to_best(g) {
                        tracing::warn!(
                            partition = g,
                            "disk full: handing leadership of partition {g} over"
                        );
                    }
                }
            } else if store.stall.is_none()
                && store.log.space_shortage().is_some()
                && now_ms >= store.spare_retry_at_ms
            {
                match store.log.ensure_spare().await {
                    Ok(()) => tracing::info!(partition = g, "disk space is back: reserve made"),
                    Err(e) if e.is_no_space() => store.spare_retry_at_ms = now_ms + MAX_RETRY_MS,
                    Err(source) => return Err(ReplicaError::Storage { group: g, source }),
                }
            }
        }
        Ok(released
            .into_iter()
            .map(|(to, messages)| Envelope {
                from: me,
                to,
                messages,
            })
            .collect())
    }

    /// Hands the leadership of `group` to its most caught-up, recently
    /// active follower; false when there is none.
    pub fn transfer_to_best(&mut self, group: GroupId) -> bool {
        let me = self.raft.id();
        let Some(progress) = self.raft.progress(group) else {
            return false;
        };
        let best = progress
            .iter()
            .filter(|(node, pr)| **node != me && pr.recent_active)
            .max_by_key(|(_, pr)| pr.match_index)
            .map(|(node, _)| *node);
        let Some(to) = best else {
            return false;
        };
        if self.raft.transfer_leadership(group, to).is_ok() {
            tracing::info!(
                partition = group,
                to,
                "handing leadership of partition over"
            );
        }
        true
    }

    /// Writes every hard state not yet stored (shutdown); returns the
    /// errors, which are not fatal then.
    pub async fn store_hard_states(&mut self, now_ms: u64) -> Vec<ReplicaError> {
        let mut errors = Vec::new();
        for replica in self.replicas.values_mut() {
            if let Some(hs) = replica.store.unstored {
                if let Err(e) = replica.store.store_hard_state(hs, now_ms).await {
                    errors.push(e);
                }
            }
        }
        errors
    }
}

/// Retries a stall's writes: the snapshot, the entries queued behind it and
/// the buffered log. True once everything is durable; false on ENOSPC.
async fn resume<D: Disk, S: StateMachine>(
    store: &mut GroupStore<D>,
    machine: &mut S,
    reader: &mut MemLog,
    stall: &mut Stall,
) -> Result<bool, ReplicaError> {
    let g = store.group;
    if let Some(snapshot) = &stall.snapshot {
        match store.install(reader, snapshot).await {
            Ok(state) => machine
                .restore(snapshot.meta.index, &state)
                .map_err(|reason| ReplicaError::Corrupt { group: g, reason })?,
            Err(e) if e.is_no_space() => return Ok(false),
            Err(e) => return Err(e),
        }
        stall.acks.push((snapshot.meta.index, snapshot.meta.term));
        stall.snapshot = None;
        let entries = std::mem::take(&mut stall.entries);
        if let Some(last) = entries.last() {
            stall.acks.push((last.index, last.term));
            store.append(reader, &entries).await?;
        }
    }
    match store.log.sync().await {
        Ok(_) => Ok(true),
        Err(source) if source.is_no_space() => Ok(false),
        Err(source) => Err(storage(g)(source)),
    }
}

/// Compares the persisted commit index with the last index the replica
/// holds. Entries below the commit index were acknowledged: when some are
/// gone (a torn or damaged log tail), a replicated group recovers them from
/// its peers and does not vote until then (returns the index to reach); a
/// single replica refuses to start unless `accept_data_loss` is set.
fn check_lost_committed(
    options: &Options,
    g: GroupId,
    dir: &Path,
    commit_index: u64,
    held: u64,
    config: &GroupConfig,
) -> Result<u64, ReplicaError> {
    if commit_index <= held {
        return Ok(0);
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let lost = commit_index - held;
    let peers = config
        .all_voters()
        .into_iter()
        .filter(|&n| n != options.me)
        .count();
    let what = format!(
        "partition {g}: the log in {} ends at index {held} below the persisted commit index \
         {commit_index}: {lost} committed entries are lost",
        dir.display()
    );
    if options.accept_data_loss {
        tracing::error!(
            partition = g,
            "{what}; starting without them (data.accept_data_loss = true)"
        );
        return Ok(0);
    }
    if peers == 0 {
        return Err(ReplicaError::LostCommitted {
            group: g,
            dir,
            commit_index,
            last_index: held,
        });
    }
    tracing::warn!(
        partition = g,
        "{what} here; recovering them from the {peers} other replica(s), and not voting until \
         the log reaches index {commit_index}"
    );
    Ok(commit_index)
}
