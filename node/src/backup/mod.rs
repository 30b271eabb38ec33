//! Hot backups: a consistent checkpoint of every partition, taken while the
//! cluster serves, kept in a backup store, and restored into empty data
//! directories (`waggle restore`). See `README.md` in this folder.
//!
//! ```text
//! POST /actuator/backupRuntime {"backupId": N}
//!   → <store>/N/backup.json                       the request (the backup exists)
//!   → a Checkpoint entry in every partition's log  (PartitionCommand::Checkpoint)
//! every replica applying it hands its state at that index to the store:
//!   → <store>/N/partition-<p>.state               the partition's state (snapshot encoding)
//!   → <store>/N/partition-<p>.json                its manifest: index, term, time, version
//! ```
//!
//! The store is a directory (`objects::Directory`) or an S3 bucket
//! (`s3::S3`); either writes an object whole or not at all. A partition's
//! part is complete once its manifest exists (written after its state); the
//! backup is COMPLETED when every partition's is. Replicas of a partition
//! write the same bytes, so with a shared store (a bucket, or a mount every
//! node sees) the first to finish wins and the others find it done; with a
//! local directory each node keeps its own partitions' parts.

pub mod api;
pub mod objects;
pub mod restore;
pub mod s3;

use std::io;
use std::sync::{mpsc, Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::backup::objects::{Directory, Objects};
use crate::config::{BackupConfig, BackupStoreKind};
use crate::partition::Checkpointed;
use crate::placement::PartitionId;

/// A partition's part of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartManifest {
    /// The partition.
    pub partition_id: PartitionId,
    /// Raft index of the checkpoint entry (Zeebe's checkpoint position).
    pub checkpoint_position: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// Bytes of the state file.
    pub state_bytes: u64,
    /// When the part was written (Unix ms).
    pub created_at_ms: u64,
    /// The broker version that wrote it.
    pub broker_version: String,
    /// The node that wrote it.
    pub node_id: u32,
}

/// The request of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRequest {
    /// The backup.
    pub backup_id: u64,
    /// Partitions the cluster had.
    pub partitions: u32,
    /// When it was asked for (Unix ms).
    pub requested_at_ms: u64,
    /// Why it failed, when a partition refused its checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

/// The state of a backup, as Zeebe's API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupState {
    /// Every partition's part is written.
    Completed,
    /// Some parts are still being written.
    InProgress,
    /// A partition did not take its checkpoint.
    Failed,
    /// No such backup.
    DoesNotExist,
}

struct Job {
    partition: PartitionId,
    checkpoint: Checkpointed,
}

/// The backup store (a directory or an S3 bucket) and the thread that
/// writes to it.
#[derive(Debug)]
pub struct BackupStore {
    objects: Arc<dyn Objects>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

fn request_key(id: u64) -> String {
    format!("{id}/backup.json")
}

fn state_key(id: u64, p: PartitionId) -> String {
    format!("{id}/partition-{p}.state")
}

fn manifest_key(id: u64, p: PartitionId) -> String {
    format!("{id}/partition-{p}.json")
}

impl BackupStore {
    /// The store `config` names, or `None` when backups are off.
    pub fn from_config(config: &BackupConfig, node: u32) -> io::Result<Option<Arc<BackupStore>>> {
        let objects: Arc<dyn Objects> = match config.kind() {
            BackupStoreKind::None => return Ok(None),
            BackupStoreKind::Filesystem => Arc::new(Directory::open(&config.directory, node)?),
            BackupStoreKind::S3 => Arc::new(s3::S3::open(config)?),
        };
        BackupStore::open(objects, node).map(Some)
    }

    /// The store over `objects`, written by node `node`.
    pub fn open(objects: Arc<dyn Objects>, node: u32) -> io::Result<Arc<BackupStore>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = Arc::clone(&objects);
        std::thread::Builder::new()
            .name("backup-writer".into())
            .spawn(move || {
                for job in rx {
                    write_with_retries(&*writer, node, &job);
                }
            })?;
        Ok(Arc::new(BackupStore {
            objects,
            jobs: Mutex::new(tx),
        }))
    }

    /// Where the store is: a directory or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        self.objects.location()
    }

    /// Hands a partition's checkpoint to the writer thread.
    pub fn write(&self, partition: PartitionId, checkpoint: Checkpointed) {
        let jobs = self.jobs.lock().expect("backup queue lock");
        let _ = jobs.send(Job {
            partition,
            checkpoint,
        });
    }

    /// The request of backup `id`, if it exists.
    pub fn request(&self, id: u64) -> io::Result<Option<BackupRequest>> {
        read_json(&*self.objects, &request_key(id))
    }

    /// Records the request of backup `id` (it exists from now on).
    pub fn record_request(&self, request: &BackupRequest) -> io::Result<()> {
        record_request(&*self.objects, request)
    }

    /// A partition's manifest in backup `id`.
    pub fn manifest(&self, id: u64, p: PartitionId) -> io::Result<Option<PartManifest>> {
        read_json(&*self.objects, &manifest_key(id, p))
    }

    /// A partition's part of backup `id`: its manifest and state.
    pub fn read_part(&self, id: u64, p: PartitionId) -> Result<(PartManifest, Vec<u8>), String> {
        let at = self.location();
        let manifest = self
            .manifest(id, p)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "backup {id} has no complete part for partition {p} in {at} (no {})",
                    manifest_key(id, p)
                )
            })?;
        let key = state_key(id, p);
        let state = self
            .objects
            .get(&key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{at}/{key} is missing, though its manifest is there"))?;
        if state.len() as u64 != manifest.state_bytes {
            return Err(format!(
                "{at}/{key} holds {} bytes, its manifest says {}",
                state.len(),
                manifest.state_bytes
            ));
        }
        Ok((manifest, state))
    }

    /// The status of backup `id` as Zeebe's API reports it.
    pub fn status(&self, id: u64) -> io::Result<serde_json::Value> {
        match self.request(id)? {
            Some(request) => self.status_of(&request),
            None => Ok(serde_json::json!({
                "backupId": id,
                "state": BackupState::DoesNotExist,
                "details": [],
            })),
        }
    }

    /// The status of every backup in the store, by ascending id.
    pub fn statuses(&self) -> io::Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for id in self.folder_ids()? {
            if let Some(request) = self.request(id)? {
                out.push(self.status_of(&request)?);
            }
        }
        Ok(out)
    }

    fn status_of(&self, request: &BackupRequest) -> io::Result<serde_json::Value> {
        let id = request.backup_id;
        let mut details = Vec::new();
        let mut done = 0;
        for p in 1..=request.partitions {
            let detail = match self.manifest(id, p)? {
                Some(m) => {
                    done += 1;
                    serde_json::json!({
                        "partitionId": p,
                        "state": BackupState::Completed,
                        "checkpointPosition": m.checkpoint_position,
                        "createdAt": m.created_at_ms,
                        "brokerVersion": m.broker_version,
                    })
                }
                None => serde_json::json!({
                    "partitionId": p,
                    "state": if request.failure_reason.is_some() {
                        BackupState::Failed
                    } else {
                        BackupState::InProgress
                    },
                }),
            };
            details.push(detail);
        }
        let state = if done == request.partitions {
            BackupState::Completed
        } else if request.failure_reason.is_some() {
            BackupState::Failed
        } else {
            BackupState::InProgress
        };
        let mut out = serde_json::json!({
            "backupId": id,
            "state": state,
            "details": details,
        });
        if let (Some(reason), BackupState::Failed) = (&request.failure_reason, state) {
            out["failureReason"] = serde_json::Value::String(reason.clone());
        }
        Ok(out)
    }

    /// The ids of the store's folders, ascending (a backup's, or what is
    /// left of one whose request was never written).
    fn folder_ids(&self) -> io::Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .objects
            .folders()?
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The ids of every backup in the store, ascending.
    pub fn ids(&self) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        for id in self.folder_ids()? {
            if self.objects.exists(&request_key(id))? {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Removes backup `id`; false when there was none.
    pub fn delete(&self, id: u64) -> io::Result<bool> {
        let Some(request) = self.request(id)? else {
            return Ok(false);
        };
        // The parts first, the request last: a backup half deleted is
        // still listed, deleting it again finishes the job, and no part of
        // it is left to pass for a part of a later backup with its id.
        for p in 1..=request.partitions {
            self.objects.delete(&manifest_key(id, p))?;
            self.objects.delete(&state_key(id, p))?;
        }
        self.objects.delete_folder(&id.to_string())?;
        Ok(true)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    objects: &dyn Objects,
    key: &str,
) -> io::Result<Option<T>> {
    let Some(bytes) = objects.get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}/{key} is not a backup's JSON: {e}", objects.location()),
        )
    })
}

fn record_request(objects: &dyn Objects, request: &BackupRequest) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(request).expect("serializable");
    objects.put(&request_key(request.backup_id), &bytes)
}

/// How often the writer tries a part before it fails the backup, and how
/// long it waits before the first retry (doubled each time).
const WRITE_ATTEMPTS: u32 = 5;
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Writes a part, retrying a store that does not answer; a part that cannot
/// be written fails its backup (FAILED, with the reason), if the store can
/// take that much.
fn write_with_retries(objects: &dyn Objects, node: u32, job: &Job) {
    let (id, p) = (job.checkpoint.backup_id, job.partition);
    let mut wait = FIRST_RETRY;
    for attempt in 1..=WRITE_ATTEMPTS {
        let Err(e) = write_part(objects, node, p, &job.checkpoint) else {
            return;
        };
        if attempt < WRITE_ATTEMPTS {
            tracing::warn!(
                partition = p,
                backup = id,
                "backup {id} of partition {p} not written to {} (attempt {attempt} of \
                 {WRITE_ATTEMPTS}, retrying in {wait:?}): {e}",
                objects.location()
            );
            std::thread::sleep(wait);
            wait *= 2;
            continue;
        }
        tracing::error!(
            partition = p,
            backup = id,
            "backup {id} of partition {p} not written to {}: {e}; the backup fails",
            objects.location()
        );
        if let Ok(Some(mut request)) = read_json::<BackupRequest>(objects, &request_key(id)) {
            request.failure_reason = Some(format!("partition {p}: not written: {e}"));
            let _ = record_request(objects, &request);
        }
    }
}

/// Checks off the shard threads that the store answers, and says so in the
/// log: a bucket that cannot be reached should show at start-up, not at the
/// first backup. The broker starts either way.
pub fn probe(store: &Arc<BackupStore>) {
    let store = Arc::clone(store);
    let spawned = std::thread::Builder::new()
        .name("backup-probe".into())
        .spawn(move || match store.ids() {
            Ok(ids) => tracing::info!("backup store {}: {} backup(s)", store.location(), ids.len()),
            Err(e) => tracing::warn!(
                "backup store {} cannot be read, backups will fail until it can: {e}",
                store.location()
            ),
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the backup store's probe: {e}");
    }
}

fn write_part(
    objects: &dyn Objects,
    node: u32,
    p: PartitionId,
    c: &Checkpointed,
) -> io::Result<()> {
    if objects.exists(&manifest_key(c.backup_id, p))? {
        // Another replica wrote the same part.
        return Ok(());
    }
    objects.put(&state_key(c.backup_id, p), &c.state)?;
    let manifest = PartManifest {
        partition_id: p,
        checkpoint_position: c.index,
        term: c.term,
        state_bytes: c.state.len() as u64,
        created_at_ms: crate::view::unix_now_ms(),
        broker_version: env!("CARGO_PKG_VERSION").into(),
        node_id: node,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("serializable");
    objects.put(&manifest_key(c.backup_id, p), &bytes)?;
    tracing::info!(
        partition = p,
        backup = c.backup_id,
        index = c.index,
        "backup {} of partition {p} written at index {} to {}",
        c.backup_id,
        c.index,
        objects.location()
    );
    Ok(())
}
