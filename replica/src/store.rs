//! The durable stores of one group and the writes the driver makes to them.
//!
//! ```text
//! <dir>/log/         segment files (storage::Log)
//! <dir>/meta/        Raft term, vote and commit (storage::MetaStore)
//! <dir>/snapshots/   the latest snapshots (storage::SnapshotStore)
//! ```
//!
//! Every write also goes to the in-memory [`MemLog`] Raft reads from: the
//! entries after the latest snapshot, loaded at open.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use raft::{Entry, EntryKind, GroupConfig, GroupId, HardState, LogReader, MemLog, Snapshot};
use storage::{Disk, Log, LogConfig, MetaStore, SnapshotStore, TailLoss};

use crate::codec::{decode_snapshot, encode_snapshot, raft_entry, storage_entry};
use crate::error::{corrupt, storage, ReplicaError};
use crate::stall::Stall;

/// Snapshots kept per group.
pub const SNAPSHOTS_KEPT: usize = 2;
/// Payload bytes read from the log per call while loading it at open (one
/// sequential read; the entries share its buffer).
const LOAD_BATCH_BYTES: usize = 16 << 20;
/// Bytes per chunk when writing a snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;

/// What opening a group found on disk.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The group configuration: the latest configuration entry at or below
    /// the stored commit index (a configuration takes effect when it is
    /// applied), or the snapshot's, or the initial one.
    pub config: GroupConfig,
    /// The latest snapshot's index and state.
    pub snapshot: Option<(u64, Bytes)>,
    /// The persisted hard state.
    pub hard_state: HardState,
    /// The last index held (log or snapshot).
    pub held: u64,
    /// The torn or damaged tail that recovery dropped, if any.
    pub tail_loss: Option<TailLoss>,
    /// The join fence stored when the replica joined its group empty:
    /// the index and term of the leader's entry it votes behind (see
    /// `JoinFence`).
    pub fence: Option<(u64, u64)>,
}

/// The metadata's spare field holding a join fence's index.
const FENCE_INDEX_FIELD: usize = 0;
/// The metadata's spare field holding a join fence's entry term.
const FENCE_TERM_FIELD: usize = 1;

/// The stores of one group. See the module documentation.
pub(crate) struct GroupStore<D: Disk> {
    pub(crate) group: GroupId,
    /// The configuration of the group before any snapshot or entry.
    pub(crate) initial: GroupConfig,
    dir: PathBuf,
    pub(crate) log: Log<D>,
    meta: MetaStore<D>,
    snapshots: SnapshotStore<D>,
    /// Hard state last written to `meta`.
    stored: HardState,
    /// Hard state handed out by Raft and not yet written.
    pub(crate) unstored: Option<HardState>,
    /// When `stored` was last written.
    stored_at_ms: u64,
    pub(crate) snapshot_index: u64,
    /// Writes held back by ENOSPC.
    pub(crate) stall: Option<Stall>,
    /// A snapshot failed for lack of space: none is tried before this.
    pub(crate) snapshot_retry_at_ms: Option<u64>,
    /// The log is short of space: its reserve is made again from this time on.
    pub(crate) spare_retry_at_ms: u64,
}

impl<D: Disk> GroupStore<D> {
    /// Opens (creating or recovering) the stores of `group` in `dir` and
    /// loads its snapshot and entries into `reader`. A log that does not
    /// continue the latest snapshot (an install cut short by a crash) is
    /// dropped.
    pub(crate) async fn open(
        disk: D,
        group: GroupId,
        dir: &Path,
        log_config: LogConfig,
        initial: GroupConfig,
        reader: &mut MemLog,
        heartbeat: &dyn Fn(),
    ) -> Result<(GroupStore<D>, Recovered), ReplicaError> {
        let err = storage(group);
        let mut log = Log::open(disk.clone(), dir.join("log"), log_config)
            .await
            .map_err(&err)?;
        let tail_loss = log.tail_loss().cloned();
        let meta = MetaStore::open(disk.clone(), dir.join("meta"))
            .await
            .map_err(&err)?;
        let snapshots = SnapshotStore::open(disk, dir.join("snapshots"), SNAPSHOTS_KEPT)
            .await
            .map_err(&err)?;
        let m = meta.get();
        let hard_state = HardState {
            term: m.term,
            vote: m.voted_for,
            commit: m.commit,
        };
        let mut config = initial.clone();
        let mut snapshot = None;
        let mut snapshot_index = 0;
        if let Some(m) = snapshots.latest().cloned() {
            let mut data = BytesMut::with_capacity(m.total_bytes as usize);
            for n in 0..m.chunk_lengths.len() {
                data.put_slice(
                    &snapshots
                        .read_chunk(m.index, m.term, n)
                        .await
                        .map_err(&err)?,
                );
            }
            let data = data.freeze();
            let (c, state) = decode_snapshot(&data).map_err(corrupt(group))?;
            let holds = log.first_index() == m.index + 1 || log.term(m.index) == Some(m.term);
            if !holds && log.last_index() >= log.first_index() {
                log.truncate_suffix(log.first_index()).await.map_err(&err)?;
            }
            log.compact_prefix(m.index).await.map_err(&err)?;
            reader.install_snapshot(
                group,
                Snapshot {
                    meta: raft::SnapshotMeta {
                        index: m.index,
                        term: m.term,
                        config: c.clone(),
                        size_bytes: data.len() as u64,
                    },
                    data,
                },
            );
            config = c;
            snapshot_index = m.index;
            snapshot = Some((m.index, state));
        }
        let mut next = log.first_index().max(snapshot_index + 1);
        let last = log.last_index();
        while next <= last {
            let batch = log
                .read(next, last + 1, LOAD_BATCH_BYTES)
                .await
                .map_err(&err)?;
            if batch.is_empty() {
                break;
            }
            let mut entries = Vec::with_capacity(batch.len());
            for stored in batch {
                let entry = raft_entry(stored).map_err(corrupt(group))?;
                if entry.kind == EntryKind::ConfChange && entry.index <= hard_state.commit {
                    if let Ok(c) = raft::decode_config(entry.data.clone()) {
                        config = c;
                    }
                }
                entries.push(entry);
            }
            next = entries.last().expect("non-empty").index + 1;
            reader.append_owned(group, entries);
            heartbeat();
        }
        let store = GroupStore {
            group,
            initial,
            dir: dir.to_path_buf(),
            log,
            meta,
            snapshots,
            stored: hard_state,
            unstored: None,
            stored_at_ms: 0,
            snapshot_index,
            stall: None,
            snapshot_retry_at_ms: None,
            spare_retry_at_ms: 0,
        };
        let fence = (m.extra[FENCE_INDEX_FIELD] > 0)
            .then_some((m.extra[FENCE_INDEX_FIELD], m.extra[FENCE_TERM_FIELD]));
        let recovered = Recovered {
            config,
            snapshot,
            hard_state,
            held: last.max(snapshot_index),
            tail_loss,
            fence,
        };
        Ok((store, recovered))
    }

    /// The directory of the group's stores.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The group's log directory.
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.log.dir().to_path_buf()
    }

    /// Writes the hard state now when its term or vote changed, or its
    /// commit index moved and the last write is `interval_ms` old; keeps it
    /// for later otherwise (Raft recovers the commit index from the leader).
    pub(crate) async fn hard_state(
        &mut self,
        hs: HardState,
        now_ms: u64,
        interval_ms: u64,
        lazy_vote: bool,
    ) -> Result<(), ReplicaError> {
        let commit_due = hs.commit > self.stored.commit
            && now_ms.saturating_sub(self.stored_at_ms) >= interval_ms;
        let vote_changed = hs.term != self.stored.term || hs.vote != self.stored.vote;
        if (vote_changed && !lazy_vote) || commit_due {
            self.store_hard_state(hs, now_ms).await
        } else {
            self.unstored = Some(hs);
            Ok(())
        }
    }

    /// The commit index last written to the metadata store.
    pub(crate) fn stored_commit(&self) -> u64 {
        self.stored.commit
    }

    /// Writes `hs` to the metadata store with a join fence at entry
    /// `(index, term)` (synced).
    pub(crate) async fn store_fence(
        &mut self,
        hs: HardState,
        index: u64,
        term: u64,
    ) -> Result<(), ReplicaError> {
        self.store_meta(
            hs,
            &[(FENCE_INDEX_FIELD, index), (FENCE_TERM_FIELD, term)],
            0,
        )
        .await
    }

    /// Writes `hs` to the metadata store (synced).
    pub(crate) async fn store_hard_state(
        &mut self,
        hs: HardState,
        now_ms: u64,
    ) -> Result<(), ReplicaError> {
        self.store_meta(hs, &[], now_ms).await
    }

    /// Writes `hs` and the spare fields `extra` (field, value) to the
    /// metadata store in one synced write.
    async fn store_meta(
        &mut self,
        hs: HardState,
        extra: &[(usize, u64)],
        now_ms: u64,
    ) -> Result<(), ReplicaError> {
        let mut stored = self.meta.get();
        for &(field, value) in extra {
            stored.extra[field] = value;
        }
        stored.term = hs.term;
        stored.voted_for = hs.vote;
        stored.commit = hs.commit;
        self.meta.store(stored).await.map_err(storage(self.group))?;
        self.stored = hs;
        self.unstored = None;
        self.stored_at_ms = now_ms;
        Ok(())
    }

    /// Writes `entries` into the log buffer (replacing what they conflict
    /// with) and into Raft's reader.
    pub(crate) async fn append(
        &mut self,
        reader: &mut MemLog,
        entries: &[Entry],
    ) -> Result<(), ReplicaError> {
        let err = storage(self.group);
        let first = entries.first().expect("not empty");
        if first.index <= self.log.last_index() {
            self.log.truncate_suffix(first.index).await.map_err(&err)?;
        }
        let stored: Vec<storage::Entry> = entries.iter().map(storage_entry).collect();
        self.log.append(&stored).map_err(&err)?;
        reader.append(self.group, entries);
        Ok(())
    }

    /// Installs a snapshot from the leader: stored (synced), the log
    /// dropped and continued after it. Returns the state it holds.
    pub(crate) async fn install(
        &mut self,
        reader: &mut MemLog,
        snapshot: &Snapshot,
    ) -> Result<Bytes, ReplicaError> {
        let err = storage(self.group);
        let (_, state) = decode_snapshot(&snapshot.data).map_err(corrupt(self.group))?;
        let (index, term) = (snapshot.meta.index, snapshot.meta.term);
        self.write_snapshot(index, term, &snapshot.data)
            .await
            .map_err(&err)?;
        if self.log.last_index() >= self.log.first_index() {
            self.log
                .truncate_suffix(self.log.first_index())
                .await
                .map_err(&err)?;
        }
        self.log.compact_prefix(index).await.map_err(&err)?;
        reader.install_snapshot(self.group, snapshot.clone());
        self.snapshot_index = index;
        Ok(state)
    }

    /// Takes a snapshot of `state` at `index` and compacts the log; returns
    /// its size in bytes (0 when the log does not hold `index`).
    pub(crate) async fn take_snapshot(
        &mut self,
        reader: &mut MemLog,
        index: u64,
        config: GroupConfig,
        state: &[u8],
    ) -> Result<usize, ReplicaError> {
        let Some(term) = reader.term(self.group, index) else {
            return Ok(0);
        };
        let data = encode_snapshot(&config, state);
        let err = storage(self.group);
        self.write_snapshot(index, term, &data)
            .await
            .map_err(&err)?;
        reader.compact(self.group, index, config, data.clone());
        self.log.compact_prefix(index).await.map_err(&err)?;
        self.snapshot_index = index;
        Ok(data.len())
    }

    async fn write_snapshot(
        &mut self,
        index: u64,
        term: u64,
        data: &[u8],
    ) -> Result<(), storage::Error> {
        let mut writer = self.snapshots.begin(index, term).await?;
        let empty: &[u8] = &[];
        let chunks: Box<dyn Iterator<Item = &[u8]>> = if data.is_empty() {
            Box::new(std::iter::once(empty))
        } else {
            Box::new(data.chunks(SNAPSHOT_CHUNK_BYTES))
        };
        for chunk in chunks {
            if let Err(e) = self.snapshots.write_chunk(&mut writer, chunk).await {
                self.snapshots.abort(writer).await;
                return Err(e);
            }
        }
        self.snapshots.finish(writer, None).await?;
        Ok(())
    }
}

/// Writes a snapshot (from a backup) into the empty stores of `group` in
/// `dir`: the snapshot at `index` and `term` holding `config` and `state`,
/// an empty log continuing after it, and the hard state (`term`, commit at
/// `index`). Refuses stores that hold anything.
#[allow(clippy::too_many_arguments)]
pub async fn restore_group<D: Disk>(
    disk: D,
    group: GroupId,
    dir: &Path,
    log_config: LogConfig,
    index: u64,
    term: u64,
    config: &GroupConfig,
    state: &[u8],
) -> Result<(), ReplicaError> {
    let mut reader = MemLog::new();
    let (mut store, found) = GroupStore::open(
        disk,
        group,
        dir,
        log_config,
        config.clone(),
        &mut reader,
        &|| {},
    )
    .await?;
    if found.held > 0 || found.hard_state.term > 0 {
        return Err(ReplicaError::Corrupt {
            group,
            reason: format!(
                "{} is not empty (it holds entries up to {}, term {}): a restore writes only \
                 into empty stores",
                dir.display(),
                found.held,
                found.hard_state.term
            ),
        });
    }
    let err = storage(group);
    let data = encode_snapshot(config, state);
    store
        .write_snapshot(index, term, &data)
        .await
        .map_err(&err)?;
    store.log.compact_prefix(index).await.map_err(&err)?;
    store.log.sync().await.map_err(&err)?;
    store
        .store_hard_state(
            HardState {
                term,
                vote: 0,
                commit: index,
            },
            0,
        )
        .await
}
