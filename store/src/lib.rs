//! Secondary storage: the records the partitions export, kept in a
//! relational database (PostgreSQL in production, SQLite embedded), and the
//! searches the REST API serves from it.
//!
//! ```text
//! exporter sink thread ── Store::write(partition, entries) ──> one transaction:
//!     upserts per record (guarded by position) + exporter_position
//! REST handlers ── Store::search / Store::get ──> SELECT ... (filter, sort, page)
//! cleanup task ── Store::cleanup(now, ttl) ──> delete finished instances
//! ```
//!
//! One code path for both databases: sqlx's `Any` driver with `$n`
//! placeholders (both read them) and one schema text
//! (`migrations/0001_secondary_storage.sql`) that uses only what both
//! accept. A `Store` is a connection pool; it belongs to the tokio runtime
//! that first uses it (a PostgreSQL socket lives on one reactor), so the
//! writer thread and the REST handlers each open their own.

mod cleanup;
mod error;
mod forms;
mod hierarchy;
mod queries;
pub mod resources;
mod rows;
mod search;
mod time;
mod upsert;
mod write;

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyPool;

pub use cleanup::CLEANUP_BATCH;
pub use error::StoreError;
pub use forms::FormLookup;
pub use resources::Resource;
pub use search::{Page, SearchRequest, SearchResult, Sort, DEFAULT_LIMIT, MAX_COUNTED_ITEMS};
pub use write::ExportedEntry;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite (embedded, the development default).
    Sqlite,
}

/// A statement waits this long for a connection before it fails (with the
/// cause of the last failed connection attempt).
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The migrations, in order; applied by [`Store::migrate`].
const MIGRATIONS: [(i64, &str, &str); 5] = [
    (
        1,
        "secondary storage",
        include_str!("../migrations/0001_secondary_storage.sql"),
    ),
    (
        2,
        "decisions and message subscriptions",
        include_str!("../migrations/0002_decisions_and_subscriptions.sql"),
    ),
    (3, "forms", include_str!("../migrations/0003_forms.sql")),
    (
        4,
        "search indexes and incident flags",
        include_str!("../migrations/0004_search_indexes.sql"),
    ),
    (
        5,
        "roots of called instances",
        include_str!("../migrations/0005_root_instances.sql"),
    ),
];

/// A pool of connections to the secondary storage database.
///
/// Lives as long as its owner (the exporter's writer thread or the REST
/// state); used from the tokio runtime it was first used on.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    name: String,
    /// Every migration was found applied (checked until it is).
    schema_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// A pool for `url` (`postgres://user:pass@host:port/db` or
    /// `sqlite://path`), connecting lazily: a database that is down is
    /// reported by the first statement, not here.
    pub fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Url {
                url: redact(url),
                message: "must start with postgres://, postgresql:// or sqlite:".into(),
            });
        };
        let options = AnyConnectOptions::from_str(url).map_err(|e| StoreError::Url {
            url: redact(url),
            message: e.to_string(),
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        let name = match backend {
            Backend::Postgres => format!("PostgreSQL database {}", redact(url)),
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                format!("SQLite database {}", path.split('?').next().unwrap_or(path))
            }
        };
        Ok(Store {
            pool,
            backend,
            name,
            schema_ready: Default::default(),
        })
    }

    /// The SQLite database in file `path` (created if missing).
    pub fn open_sqlite(path: &std::path::Path, max_connections: u32) -> Result<Store, StoreError> {
        Store::open(
            &format!("sqlite://{}?mode=rwc", path.display()),
            max_connections,
        )
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database as errors name it (`PostgreSQL database
    /// postgres://waggle@127.0.0.1:5432/waggle`, password left out).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the schema is complete: every migration applied (by this
    /// process's writer or another). Once true it is not asked again. A
    /// database that cannot be asked is an error; one without the
    /// migrations table is not ready.
    pub async fn schema_ready(&self) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        if self.schema_ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        let latest = MIGRATIONS.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
        let row: Result<(Option<i64>,), sqlx::Error> =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await;
        let applied = match row {
            Ok((v,)) => v.unwrap_or(0),
            Err(e) if e.to_string().contains("_sqlx_migrations") => 0,
            Err(e) => return Err(self.error(e)),
        };
        let ready = applied >= latest;
        self.schema_ready.store(ready, Ordering::Release);
        Ok(ready)
    }

    /// Creates or upgrades the schema (idempotent; concurrent callers are
    /// serialised by sqlx's migration lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_up_to(i64::MAX).await
    }

    /// Applies the migrations up to version `last`.
    async fn migrate_up_to(&self, last: i64) -> Result<(), StoreError> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .filter(|(version, _, _)| *version <= last)
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate {
                database: self.name.clone(),
                message: e.to_string(),
            })
    }

    /// Highest exported Raft index of `partition` the database holds (0 if
    /// none).
    pub async fn exported_position(&self, partition: u32) -> Result<u64, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM exporter_position WHERE partition_id = $1")
                .bind(i64::from(partition))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
        Ok(row.map_or(0, |(p,)| p.max(0) as u64))
    }

    /// The exporter's progress on `partition`: the highest exported Raft
    /// index the database holds and the timestamp (ms since the epoch, as the
    /// leader stamped it) of the last record written with it; `None` before
    /// the first write. Under steady load, now minus that timestamp is how far
    /// the database trails the log.
    pub async fn exporter_progress(
        &self,
        partition: u32,
    ) -> Result<Option<(u64, i64)>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT position, updated_ms FROM exporter_position WHERE partition_id = $1",
        )
        .bind(i64::from(partition))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(row.map(|(p, t)| (p.max(0) as u64, t)))
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn error(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            database: self.name.clone(),
            source,
        }
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of an earlier version, with instance 1 on an active
    /// incident and instance 2 on a resolved one, gets the incident flags
    /// from its incident rows when migrated.
    #[tokio::test]
    async fn the_incident_flags_migration_fills_the_flags_of_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("old.db"), 1).unwrap();
        store.migrate_up_to(3).await.unwrap();
        for (key, state) in [(1, "ACTIVE"), (2, "RESOLVED")] {
            sqlx::query(
                "INSERT INTO process_instance (process_instance_key, process_definition_key, \
                 process_definition_id, process_definition_version, state, start_ms, tenant_id, \
                 partition_id, position) VALUES ($1, 9, 'p', 1, 'ACTIVE', 0, 't', 1, 0)",
            )
            .bind(key)
            .execute(&store.pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO element_instance (element_instance_key, process_instance_key, \
                 process_definition_key, process_definition_id, element_id, type, state, \
                 start_ms, tenant_id, partition_id, position) \
                 VALUES ($1, $2, 9, 'p', 'task', 'SERVICE_TASK', 'ACTIVE', 0, 't', 1, 0)",
            )
            .bind(key * 10)
            .bind(key)
            .execute(&store.pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO incident (incident_key, process_definition_key, \
                 process_definition_id, process_instance_key, element_instance_key, element_id, \
                 error_type, error_message, state, creation_ms, tenant_id, partition_id, \
                 position) VALUES ($1, 9, 'p', $2, $3, 'task', 'JOB_NO_RETRIES', 'm', $4, 0, \
                 't', 1, 0)",
            )
            .bind(key * 100)
            .bind(key)
            .bind(key * 10)
            .bind(state)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();
        let flags: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT process_instance_key, has_incident FROM process_instance \
             ORDER BY process_instance_key",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(flags, [(1, 1), (2, 0)]);
        let flags: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT element_instance_key, has_incident FROM element_instance \
             ORDER BY element_instance_key",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(flags, [(10, 1), (20, 0)]);
        store.close().await;
    }

    /// A database of version 4 with a call chain 1 → 2 → 3 and a lone
    /// instance 5 gets the roots of the called instances when migrated.
    #[tokio::test]
    async fn the_schema_is_ready_only_once_every_migration_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("new.db"), 2).unwrap();
        assert!(!store.schema_ready().await.unwrap(), "no schema at all");
        store.migrate_up_to(4).await.unwrap();
        assert!(!store.schema_ready().await.unwrap(), "a migration missing");
        let reader = store.clone();
        store.migrate().await.unwrap();
        assert!(reader.schema_ready().await.unwrap());
    }

    #[tokio::test]
    async fn the_roots_migration_fills_the_roots_of_existing_called_instances() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("old.db"), 1).unwrap();
        store.migrate_up_to(4).await.unwrap();
        for (key, parent) in [(1, None), (2, Some(1)), (3, Some(2)), (5, None)] {
            sqlx::query(
                "INSERT INTO process_instance (process_instance_key, process_definition_key, \
                 process_definition_id, process_definition_version, \
                 parent_process_instance_key, state, start_ms, tenant_id, partition_id, \
                 position) VALUES ($1, 9, 'p', 1, $2, 'ACTIVE', 0, 't', 1, 0)",
            )
            .bind(key)
            .bind(parent)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();
        let roots: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT process_instance_key, root_process_instance_key FROM process_instance \
             ORDER BY process_instance_key",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(roots, [(1, None), (2, Some(1)), (3, Some(1)), (5, None)]);
        store.close().await;
    }

    #[test]
    fn urls_are_named_without_passwords_and_bad_schemes_are_refused() {
        assert_eq!(
            redact("postgres://waggle:secret@127.0.0.1:5432/db"),
            "postgres://waggle@127.0.0.1:5432/db"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        let err = Store::open("mysql://h/db", 1).unwrap_err().to_string();
        assert!(
            err.contains("mysql://h/db") && err.contains("postgres://"),
            "{err}"
        );
    }
}
