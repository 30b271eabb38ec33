//! Backups in an S3 bucket (AWS or any S3-compatible server), through the
//! `object_store` crate. Its client runs on a small runtime of its own, so
//! that the writer thread, the API's handlers and `waggle restore` call it
//! alike; each call waits for its answer.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::backup::objects::Objects;
use crate::config::BackupConfig;

/// How long one request may take, and how long it is retried for: a store
/// that cannot be reached fails a backup call within about a minute, not
/// the client's default of minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_FOR: Duration = Duration::from_secs(20);

/// A bucket, with an optional prefix (`backup.s3_base_path`).
pub struct S3 {
    client: Arc<AmazonS3>,
    prefix: String,
    location: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("location", &self.location)
            .finish()
    }
}

impl S3 {
    /// The bucket `config` names. Keys not set in `config` come from the
    /// usual AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, …), as with any AWS client.
    pub fn open(config: &BackupConfig) -> io::Result<S3> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.s3_bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: RETRY_FOR,
                ..RetryConfig::default()
            });
        let mut options = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        if !config.s3_endpoint.is_empty() {
            builder = builder
                .with_endpoint(&config.s3_endpoint)
                .with_virtual_hosted_style_request(false);
            options = options.with_allow_http(config.s3_endpoint.starts_with("http://"));
        }
        if !config.s3_region.is_empty() {
            builder = builder.with_region(&config.s3_region);
        }
        if !config.s3_access_key.is_empty() {
            builder = builder.with_access_key_id(&config.s3_access_key);
        }
        if !config.s3_secret_key.is_empty() {
            builder = builder.with_secret_access_key(&config.s3_secret_key);
        }
        let prefix = config.s3_base_path.trim_matches('/').to_string();
        let location = match prefix.is_empty() {
            true => format!("s3://{}", config.s3_bucket),
            false => format!("s3://{}/{prefix}", config.s3_bucket),
        };
        let client = builder
            .with_client_options(options)
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{location}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("backup-s3")
            .enable_all()
            .build()?;
        Ok(S3 {
            client: Arc::new(client),
            prefix,
            location,
            runtime: Some(runtime),
        })
    }

    fn path(&self, key: &str) -> Path {
        match self.prefix.is_empty() {
            true => Path::from(key),
            false => Path::from(format!("{}/{key}", self.prefix)),
        }
    }

    /// Runs `call` with the client on the store's runtime and waits for it.
    fn run<T, F>(&self, what: &str, call: impl FnOnce(Arc<AmazonS3>) -> F) -> io::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let future = call(Arc::clone(&self.client));
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
            .spawn(async move {
                let _ = tx.send(future.await);
            });
        let answer = rx
            .recv()
            .map_err(|_| io::Error::other(format!("{}: the S3 client stopped", self.location)))?;
        answer.map_err(|e| {
            let text = e.to_string();
            let kind = io::Error::from(e).kind();
            io::Error::new(kind, format!("{} ({what}): {text}", self.location))
        })
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        // Dropping a runtime blocks; a store may be dropped on a runtime's
        // thread (the API's), where blocking is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Objects for S3 {
    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(key);
        self.run(&format!("GET {path}"), |c| async move {
            match c.get(&path).await {
                Ok(object) => Ok(Some(object.bytes().await?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        let payload = PutPayload::from(bytes.to_vec());
        self.run(&format!("PUT {path}"), |c| async move {
            c.put(&path, payload).await.map(|_| ())
        })
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.path(key);
        self.run(&format!("DELETE {path}"), |c| async move {
            match c.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn exists(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key);
        self.run(&format!("HEAD {path}"), |c| async move {
            match c.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn folders(&self) -> io::Result<Vec<String>> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        self.run("LIST", |c| async move {
            let listed = c.list_with_delimiter(prefix.as_ref()).await?;
            Ok(listed
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect())
        })
    }

    fn delete_folder(&self, folder: &str) -> io::Result<()> {
        let folder = self.path(folder);
        self.run(&format!("DELETE {folder}/"), |c| async move {
            let mut objects = c.list(Some(&folder));
            let mut paths = Vec::new();
            while let Some(object) = objects.next().await {
                paths.push(object?.location);
            }
            for path in paths {
                match c.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}
