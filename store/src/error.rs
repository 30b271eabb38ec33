//! What can go wrong in secondary storage: a database that refuses (named,
//! with its cause) or a search request that does not fit (naming the field).

/// Errors of the secondary storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL cannot be used.
    #[error("secondary storage URL {url}: {message}")]
    Url {
        /// The URL, without password.
        url: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A statement failed (the database is down, full, or refused it).
    #[error("{database}: {source}")]
    Database {
        /// Which database.
        database: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The schema could not be created or upgraded.
    #[error("{database}: schema migration failed: {message}")]
    Migrate {
        /// Which database.
        database: String,
        /// The cause.
        message: String,
    },
    /// A search request names a field or value that does not fit.
    #[error("{0}")]
    BadRequest(String),
}
