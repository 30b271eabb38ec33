//! `waggle restore --backup-id N`: writes this node's partitions of backup N
//! into empty data directories. Each partition gets the backup's state as
//! its snapshot, at the checkpoint's index and term, with an empty log after
//! it; every replica restored from the same backup starts from the same
//! point, and the partitions elect leaders and go on from there.

use std::path::Path;

use anyhow::{bail, Context, Result};
use storage::{DmaDisk, LogConfig};

use crate::backup::BackupStore;
use crate::config::Config;
use crate::placement::ClusterShape;

/// Restores backup `id` for the node `config` describes; returns a line per
/// partition restored.
pub fn run(config: &Config, id: u64) -> Result<Vec<String>> {
    let store = BackupStore::from_config(&config.backup, config.cluster.node_id)
        .context("cannot open the backup store")?
        .context(
            "backups are not configured: backup.store (or backup.directory) names the store to \
             restore from",
        )?;
    let at = store.location();
    let Some(request) = store
        .request(id)
        .with_context(|| format!("cannot read backup {id} from {at}"))?
    else {
        bail!("backup {id} does not exist in {at}");
    };
    let shape = ClusterShape {
        cluster_size: config.cluster.size,
        partitions: config.cluster.partitions,
        replication_factor: config.cluster.replication_factor,
    };
    if request.partitions != shape.partitions {
        bail!(
            "backup {id} holds {} partitions, but cluster.partitions is {}: restore into a \
             cluster of the same shape",
            request.partitions,
            shape.partitions
        );
    }
    let partitions_dir = config.data.directory.join("partitions");
    // The cluster of the backup's shape, as its first start places it.
    let layout = config.cluster.layout();
    let cluster = crate::membership::ClusterConfiguration::placed(&shape, &layout, 0);
    let local = cluster.local_partitions(config.cluster.node_id);
    let mut parts = Vec::new();
    for &p in &local {
        let target = partitions_dir.join(p.to_string());
        if is_non_empty(&target) {
            bail!(
                "{} already holds partition {p}: restore only into empty data directories \
                 (move it away first)",
                target.display()
            );
        }
        let (manifest, state) = store
            .read_part(id, p)
            .map_err(|e| anyhow::anyhow!("backup {id}: {e}"))?;
        parts.push((p, target, manifest, state));
    }
    let io_memory = config.runtime.io_memory_bytes;
    crate::memlock::raise(crate::memlock::needed_bytes(1, io_memory))?;
    let log = LogConfig {
        segment_size_bytes: config.data.segment_size_bytes,
        ..LogConfig::default()
    };
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("restore")
        .io_memory(io_memory as usize)
        .make()
        .map_err(|e| anyhow::anyhow!("cannot start the I/O executor for the restore: {e}"))?;
    executor.run(async move {
        let mut lines = Vec::new();
        for (p, target, manifest, state) in parts {
            replica::restore_group(
                DmaDisk,
                u64::from(p),
                &target,
                log.clone(),
                manifest.checkpoint_position,
                manifest.term,
                &crate::membership::group_config(&cluster, p),
                &state,
            )
            .await
            .with_context(|| format!("cannot restore partition {p} into {}", target.display()))?;
            lines.push(format!(
                "partition {p}: restored backup {id} at index {} into {}",
                manifest.checkpoint_position,
                target.display()
            ));
        }
        Ok(lines)
    })
}

fn is_non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}
