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
//! A partition's part is complete once its manifest exists (written after
//! its state, each through a temporary file, `fsync` and `rename`); the
//! backup is COMPLETED when every partition's is. Replicas of a partition
//! write the same bytes, so with a shared store (a mount every node sees)
//! the first to finish wins and the others find it done; with a local
//! directory each node keeps its own partitions' parts.

pub mod api;
pub mod restore;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use serde::{Deserialize, Serialize};

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

/// The backup store (a directory) and the thread that writes to it.
#[derive(Debug)]
pub struct BackupStore {
    dir: PathBuf,
    node: u32,
    jobs: Mutex<mpsc::Sender<Job>>,
}

fn backup_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(id.to_string())
}

fn state_path(dir: &Path, id: u64, p: PartitionId) -> PathBuf {
    backup_dir(dir, id).join(format!("partition-{p}.state"))
}

fn manifest_path(dir: &Path, id: u64, p: PartitionId) -> PathBuf {
    backup_dir(dir, id).join(format!("partition-{p}.json"))
}

/// Writes `bytes` to `path` durably: a temporary file, `fsync`, `rename`,
/// and an `fsync` of the directory.
fn write_durably(path: &Path, bytes: &[u8], node: u32) -> std::io::Result<()> {
    let parent = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.tmp-{node}",
        path.file_name().expect("a file name").to_string_lossy()
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(parent)?.sync_all()
}

impl BackupStore {
    /// The store in `dir` (created if missing), written by node `node`.
    pub fn open(dir: &Path, node: u32) -> std::io::Result<Arc<BackupStore>> {
        std::fs::create_dir_all(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("backup.directory {}: {e}", dir.display()))
        })?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("backup-writer".into())
            .spawn(move || {
                for job in rx {
                    if let Err(e) = write_part(&writer_dir, node, job.partition, &job.checkpoint) {
                        tracing::error!(
                            partition = job.partition,
                            backup = job.checkpoint.backup_id,
                            "backup {} of partition {} not written to {}: {e}",
                            job.checkpoint.backup_id,
                            job.partition,
                            writer_dir.display()
                        );
                    }
                }
            })?;
        Ok(Arc::new(BackupStore {
            dir: dir.to_path_buf(),
            node,
            jobs: Mutex::new(tx),
        }))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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
    pub fn request(&self, id: u64) -> Option<BackupRequest> {
        let text = std::fs::read(backup_dir(&self.dir, id).join("backup.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Records the request of backup `id` (it exists from now on).
    pub fn record_request(&self, request: &BackupRequest) -> std::io::Result<()> {
        let path = backup_dir(&self.dir, request.backup_id).join("backup.json");
        let bytes = serde_json::to_vec_pretty(request).expect("serializable");
        write_durably(&path, &bytes, self.node)
    }

    /// A partition's manifest in backup `id`.
    pub fn manifest(&self, id: u64, p: PartitionId) -> Option<PartManifest> {
        let text = std::fs::read(manifest_path(&self.dir, id, p)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// A partition's part of backup `id`: its manifest and state.
    pub fn read_part(&self, id: u64, p: PartitionId) -> Result<(PartManifest, Vec<u8>), String> {
        let manifest = self.manifest(id, p).ok_or_else(|| {
            format!(
                "backup {id} has no complete part for partition {p} in {} (no {})",
                self.dir.display(),
                manifest_path(&self.dir, id, p).display()
            )
        })?;
        let path = state_path(&self.dir, id, p);
        let state = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if state.len() as u64 != manifest.state_bytes {
            return Err(format!(
                "{} holds {} bytes, its manifest says {}",
                path.display(),
                state.len(),
                manifest.state_bytes
            ));
        }
        Ok((manifest, state))
    }

    /// The status of backup `id` as Zeebe's API reports it.
    pub fn status(&self, id: u64) -> serde_json::Value {
        let Some(request) = self.request(id) else {
            return serde_json::json!({
                "backupId": id,
                "state": BackupState::DoesNotExist,
                "details": [],
            });
        };
        let mut details = Vec::new();
        let mut done = 0;
        for p in 1..=request.partitions {
            let detail = match self.manifest(id, p) {
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
        out
    }

    /// The ids of every backup in the store, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|id| self.request(*id).is_some())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Removes backup `id`; false when there was none.
    pub fn delete(&self, id: u64) -> std::io::Result<bool> {
        let dir = backup_dir(&self.dir, id);
        if self.request(id).is_none() {
            return Ok(false);
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(true)
    }
}

fn write_part(dir: &Path, node: u32, p: PartitionId, c: &Checkpointed) -> std::io::Result<()> {
    if manifest_path(dir, c.backup_id, p).exists() {
        // Another replica wrote the same part.
        return Ok(());
    }
    write_durably(&state_path(dir, c.backup_id, p), &c.state, node)?;
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
    write_durably(&manifest_path(dir, c.backup_id, p), &bytes, node)?;
    tracing::info!(
        partition = p,
        backup = c.backup_id,
        index = c.index,
        "backup {} of partition {p} written at index {}",
        c.backup_id,
        c.index
    );
    Ok(())
}
