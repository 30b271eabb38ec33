//! The configuration in the data directory: `cluster-configuration.json`,
//! written durably (temporary file, `fsync`, `rename`, `fsync` of the
//! directory) on the first start and after every change.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{ClusterConfiguration, FORMAT_VERSION};
use crate::placement::{ClusterShape, Layout, NodeId};

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

/// How a node starts: with the stored configuration, or without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The configuration is known: the stored one, or on the very first
    /// start of a single broker (or of a broker whose data directory holds
    /// partitions from before the file existed) the one of `[cluster]`,
    /// stored at once.
    Known(ClusterConfiguration),
    /// The data directory is empty and the cluster has other brokers: the
    /// configuration comes from them if they have one (this broker was
    /// recreated, or is new), from `[cluster]` once a majority of its
    /// brokers say they have none (a new cluster). Until then the broker
    /// opens no partition and votes in no group. Holds the one of
    /// `[cluster]`, not stored.
    Unknown(ClusterConfiguration),
}

/// The configuration a node starts with (see [`Start`]), placing a new
/// cluster's replicas by `layout`. A stored configuration that never changed
/// and whose shape is not `shape` is refused by name: `[cluster]` changed
/// under a cluster that keeps its shape in the data directory. Once a change
/// was made, the file alone gives the shape. A data directory that holds
/// partitions but no file is of a cluster made before the file existed,
/// which placed its replicas round-robin whatever the zones: so it stays.
pub fn open(
    data_dir: &Path,
    shape: &ClusterShape,
    layout: &Layout,
    node: NodeId,
    now_ms: u64,
) -> anyhow::Result<Start> {
    if let Some(config) = load(data_dir)? {
        let stored = config.shape();
        let changed = config.last_change.is_some() || config.pending_change.is_some();
        if stored != *shape && !changed {
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
        return Ok(Start::Known(config));
    }
    let partitions = data_dir.join("partitions");
    let holds_partitions = std::fs::read_dir(&partitions).is_ok_and(|mut d| d.next().is_some());
    if shape.cluster_size > 1 && !holds_partitions {
        let config = ClusterConfiguration::placed(shape, layout, now_ms);
        return Ok(Start::Unknown(config));
    }
    let layout = match holds_partitions {
        true => &Layout::uniform(),
        false => layout,
    };
    let config = ClusterConfiguration::placed(shape, layout, now_ms);
    store(data_dir, &config, node)?;
    Ok(Start::Known(config))
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
        std::fs::create_dir_all(dir.path().join("partitions/1")).unwrap();
        let Start::Known(first) = open(dir.path(), &SHAPE, &Layout::uniform(), 0, 5).unwrap()
        else {
            panic!("a data directory with partitions keeps them");
        };
        assert!(path(dir.path()).exists());
        let again = open(dir.path(), &SHAPE, &Layout::uniform(), 0, 99).unwrap();
        assert_eq!(again, Start::Known(first), "read back, not made again");
    }

    #[test]
    fn an_empty_data_directory_of_a_cluster_waits_for_its_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let Start::Unknown(config) = open(dir.path(), &SHAPE, &Layout::uniform(), 1, 5).unwrap()
        else {
            panic!("a broker of three on an empty disk does not know its cluster");
        };
        assert_eq!(config.shape(), SHAPE);
        assert!(!path(dir.path()).exists(), "nothing stored until known");
        let single = ClusterShape {
            cluster_size: 1,
            partitions: 2,
            replication_factor: 1,
        };
        assert!(matches!(
            open(dir.path(), &single, &Layout::uniform(), 0, 5).unwrap(),
            Start::Known(_)
        ));
    }

    #[test]
    fn a_new_cluster_is_placed_by_its_zones_and_one_from_before_the_file_round_robin() {
        let zones = Layout {
            locations: (0..3)
                .map(|n| {
                    let at = crate::placement::Location {
                        region: "r".into(),
                        zone: ["a", "b", "c"][n as usize].into(),
                    };
                    (n, at)
                })
                .collect(),
            primary_region: String::new(),
            primary_zone: "b".into(),
        };
        let leader = |start: Start| match start {
            Start::Known(c) | Start::Unknown(c) => c.replicas(1)[0].0,
        };
        let new = tempfile::tempdir().unwrap();
        assert_eq!(leader(open(new.path(), &SHAPE, &zones, 0, 5).unwrap()), 1);
        let legacy = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(legacy.path().join("partitions/1")).unwrap();
        assert_eq!(
            leader(open(legacy.path(), &SHAPE, &zones, 0, 5).unwrap()),
            0
        );
    }

    #[test]
    fn once_changed_the_file_alone_gives_the_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ClusterConfiguration::initial(&SHAPE, 0);
        config.members.get_mut(&2).unwrap().state = crate::membership::MemberState::Left;
        config.last_change = Some(crate::membership::CompletedChange {
            id: 1,
            status: "COMPLETED".into(),
            started_ms: 1,
            completed_ms: 2,
        });
        store(dir.path(), &config, 0).unwrap();
        assert_eq!(
            open(dir.path(), &SHAPE, &Layout::uniform(), 0, 5).unwrap(),
            Start::Known(config)
        );
    }

    #[test]
    fn a_changed_cluster_section_or_a_bad_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), &ClusterConfiguration::initial(&SHAPE, 0), 0).unwrap();
        let wider = ClusterShape {
            partitions: 3,
            ..SHAPE
        };
        let err = format!(
            "{:#}",
            open(dir.path(), &wider, &Layout::uniform(), 0, 5).unwrap_err()
        );
        assert!(
            err.contains(FILE_NAME) && err.contains("partitions 3"),
            "{err}"
        );
        std::fs::write(path(dir.path()), b"{ not json").unwrap();
        let err = format!(
            "{:#}",
            open(dir.path(), &SHAPE, &Layout::uniform(), 0, 5).unwrap_err()
        );
        assert!(err.contains("is not a cluster configuration"), "{err}");
        let mut newer = ClusterConfiguration::initial(&SHAPE, 0);
        newer.format = FORMAT_VERSION + 1;
        store(dir.path(), &newer, 0).unwrap();
        let err = format!(
            "{:#}",
            open(dir.path(), &SHAPE, &Layout::uniform(), 0, 5).unwrap_err()
        );
        assert!(err.contains("newer release"), "{err}");
    }
}
