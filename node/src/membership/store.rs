//! The configuration in the data directory: `cluster-configuration.json`,
//! written durably (temporary file, `fsync`, `rename`, `fsync` of the
//! directory) on the first start and after every change.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{ClusterConfiguration, FORMAT_VERSION};
use crate::placement::{ClusterShape, NodeId};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "cluster-configuration.json";

/// The file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The stored configuration, if there is one.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<ClusterConfiguration>> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let config: ClusterConfiguration = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a cluster configuration", path.display()))?;
    if config.format > FORMAT_VERSION {
        bail!(
            "{} has layout {} but this waggle reads layout {FORMAT_VERSION} and older: \
             it was written by a newer release",
            path.display(),
            config.format
        );
    }
    Ok(Some(config))
}

/// Writes `config` durably.
pub fn store(data_dir: &Path, config: &ClusterConfiguration, node: NodeId) -> anyhow::Result<()> {
    let path = path(data_dir);
    let bytes = serde_json::to_vec_pretty(config).expect("the configuration serializes");
    crate::backup::objects::write_durably(&path, &bytes, node)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The configuration a node starts with: the stored one, or on the first
/// start the one of `shape`, stored at once. A stored configuration whose
/// shape is not `shape` is refused by name: `[cluster]` changed under a
/// cluster that keeps its shape in the data directory.
pub fn open(
    data_dir: &Path,
    shape: &ClusterShape,
    node: NodeId,
    now_ms: u64,
) -> anyhow::Result<ClusterConfiguration> {
    if let Some(config) = load(data_dir)? {
        let stored = config.shape();
        if stored != *shape {
            bail!(
                "{} (version {}) holds a cluster of {} brokers, {} partitions and replication \
                 factor {}, but [cluster] says size {}, partitions {} and replication_factor {}: \
                 set [cluster] back to the cluster's shape",
                path(data_dir).display(),
                config.version,
                stored.cluster_size,
                stored.partitions,
                stored.replication_factor,
                shape.cluster_size,
                shape.partitions,
                shape.replication_factor
            );
        }
        return Ok(config);
    }
    let config = ClusterConfiguration::initial(shape, now_ms);
    store(data_dir, &config, node)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ClusterShape = ClusterShape {
        cluster_size: 3,
        partitions: 2,
        replication_factor: 3,
    };

    #[test]
    fn written_on_the_first_start_and_read_back_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path(), &SHAPE, 0, 5).unwrap();
        assert!(path(dir.path()).exists());
        let again = open(dir.path(), &SHAPE, 0, 99).unwrap();
        assert_eq!(again, first, "read back, not made again");
    }

    #[test]
    fn a_changed_cluster_section_or_a_bad_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), &SHAPE, 0, 5).unwrap();
        let wider = ClusterShape {
            partitions: 3,
            ..SHAPE
        };
        let err = format!("{:#}", open(dir.path(), &wider, 0, 5).unwrap_err());
        assert!(
            err.contains(FILE_NAME) && err.contains("partitions 3"),
            "{err}"
        );
        std::fs::write(path(dir.path()), b"{ not json").unwrap();
        let err = format!("{:#}", open(dir.path(), &SHAPE, 0, 5).unwrap_err());
        assert!(err.contains("is not a cluster configuration"), "{err}");
        let mut newer = ClusterConfiguration::initial(&SHAPE, 0);
        newer.format = FORMAT_VERSION + 1;
        store(dir.path(), &newer, 0).unwrap();
        let err = format!("{:#}", open(dir.path(), &SHAPE, 0, 5).unwrap_err());
        assert!(err.contains("newer release"), "{err}");
    }
}
