//! `[secondary_storage]`: where the exported records are kept for searches
//! (see [`super::secondary`]).
//!
//! ```toml
//! [secondary_storage]
//! type = "postgresql"               # "none" | "sqlite" | "postgresql"
//! url = "postgres://waggle:secret@db.example:5432/waggle"
//! path = ""                         # SQLite file; empty: <data.directory>/secondary.db
//! history_ttl_s = 2592000           # rows of instances ended longer ago are deleted; 0 keeps them
//! cleanup_interval_ms = 60000
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Which database holds the secondary storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// No secondary storage: searches answer that none is configured.
    None,
    /// An SQLite file (embedded; the `waggle dev` default).
    Sqlite,
    /// A PostgreSQL server.
    Postgresql,
}

/// `[secondary_storage]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecondaryStorageConfig {
    /// `none`, `sqlite` or `postgresql`.
    #[serde(rename = "type")]
    pub kind: StorageType,
    /// `postgres://user:password@host:port/database` for PostgreSQL.
    pub url: String,
    /// The SQLite file; empty means `<data.directory>/secondary.db`.
    pub path: PathBuf,
    /// Rows of a process instance are deleted this long after it ended;
    /// 0 keeps them.
    pub history_ttl_s: u64,
    /// How often the history cleanup runs.
    pub cleanup_interval_ms: u64,
}

impl Default for SecondaryStorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageType::None,
            url: String::new(),
            path: PathBuf::new(),
            history_ttl_s: 30 * 24 * 3600,
            cleanup_interval_ms: 60_000,
        }
    }
}

impl SecondaryStorageConfig {
    /// The database URL, `None` without secondary storage.
    pub fn database_url(&self, data: &Path) -> Option<String> {
        match self.kind {
            StorageType::None => None,
            StorageType::Postgresql => Some(self.url.clone()),
            StorageType::Sqlite => {
                let path = if self.path.as_os_str().is_empty() {
                    data.join("secondary.db")
                } else {
                    self.path.clone()
                };
                Some(format!("sqlite://{}?mode=rwc", path.display()))
            }
        }
    }

    /// Checks the keys against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Key {
            key: format!("secondary_storage.{key}"),
            message,
        };
        if self.kind == StorageType::Postgresql
            && !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "url",
                "must be postgres://user:password@host:port/database when type = \"postgresql\""
                    .into(),
            ));
        }
        if self.cleanup_interval_ms == 0 || self.cleanup_interval_ms > 24 * 3600 * 1000 {
            return Err(invalid(
                "cleanup_interval_ms",
                format!("{} is not in 1..=86400000", self.cleanup_interval_ms),
            ));
        }
        if self.history_ttl_s > 100 * 365 * 24 * 3600 {
            return Err(invalid(
                "history_ttl_s",
                format!("{} is more than 100 years", self.history_ttl_s),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Config::dev(), None, env)
    }

    #[test]
    fn dev_keeps_sqlite_in_the_data_directory_and_bad_keys_are_named() {
        let dev = load(&[]).expect("defaults are valid");
        assert_eq!(dev.secondary_storage.kind, StorageType::Sqlite);
        assert_eq!(
            dev.secondary_storage
                .database_url(Path::new("/var/lib/waggle"))
                .as_deref(),
            Some("sqlite:///var/lib/waggle/secondary.db?mode=rwc")
        );
        assert_eq!(Config::default().secondary_storage.kind, StorageType::None);
        let none = load(&[("WAGGLE_SECONDARY_STORAGE_TYPE", "none")]).expect("none");
        assert_eq!(none.secondary_storage.database_url(Path::new("d")), None);

        let err = load(&[("WAGGLE_SECONDARY_STORAGE_TYPE", "postgresql")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("secondary_storage.url"), "{err}");
        let err = load(&[("WAGGLE_SECONDARY_STORAGE_TYPE", "mysql")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("secondary_storage.type"), "{err}");
        let pg = load(&[
            ("WAGGLE_SECONDARY_STORAGE_TYPE", "postgresql"),
            (
                "WAGGLE_SECONDARY_STORAGE_URL",
                "postgres://w@127.0.0.1:5432/w",
            ),
        ])
        .expect("postgresql with a url");
        assert_eq!(
            pg.secondary_storage.database_url(Path::new("d")).as_deref(),
            Some("postgres://w@127.0.0.1:5432/w")
        );
    }
}
