//! TLS on the client ports: the gRPC gateway, the REST API and the
//! management port.
//!
//! [`ClientTls`] holds the server configurations built from the files named
//! by `gateway.tls_cert_file`, `gateway.tls_key_file` and, when clients must
//! present a certificate, `gateway.tls_client_ca_file`. [`ClientTls::watch`]
//! looks at the files every [`RELOAD_CHECK`] and rebuilds the configurations
//! when one changed: new connections get the new certificate, open ones keep
//! theirs. A change that does not load (a key that does not match the
//! certificate, a half-written file) is logged and the old configuration
//! stays until the files change again.
//!
//! [`TlsListener`] accepts TCP connections and runs each handshake on its own
//! task (bounded by [`HANDSHAKE_TIMEOUT`]), so a slow or silent client holds
//! up no one. It is an axum listener, and [`TlsListener::into_incoming`]
//! gives tonic its stream of connections.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How often [`ClientTls::watch`] looks at the files.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Longest TLS handshake; the connection is closed after it.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// A file of the client TLS configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{key} ({path}): {message}")]
pub struct TlsFileError {
    /// The configuration key naming the file.
    pub key: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// The files of the client TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to; `None`:
    /// clients present none.
    pub client_ca: Option<PathBuf>,
}

/// Which protocols a port offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The gRPC gateway: HTTP/2 only.
    Grpc,
    /// REST and management: HTTP/1.1.
    Http,
}

/// The server configurations of the client ports, reloaded when their files
/// change.
pub struct ClientTls {
    files: TlsFiles,
    configs: RwLock<Configs>,
    /// The files' stamps when last loaded, or last failed to load.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

struct Configs {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    /// When the certificate (the chain's leaf) expires, in UNIX seconds.
    not_after: i64,
}

impl ClientTls {
    /// Loads the files; an error names the key and file that cannot be used.
    pub fn load(files: TlsFiles) -> Result<Self, TlsFileError> {
        let stamps = stamps(&files);
        let configs = build(&files)?;
        Ok(Self {
            files,
            configs: RwLock::new(configs),
            stamps: Mutex::new(stamps),
        })
    }

    /// The files.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The configuration new connections to `port` get.
    pub fn config(&self, port: Port) -> Arc<ServerConfig> {
        let configs = self.configs.read().expect("tls configs");
        match port {
            Port::Grpc => Arc::clone(&configs.grpc),
            Port::Http => Arc::clone(&configs.http),
        }
    }

    /// When the certificate in use expires, in UNIX seconds.
    pub fn not_after(&self) -> i64 {
        self.configs.read().expect("tls configs").not_after
    }

    /// Reloads the files if one changed since the last look: `Some(Ok)` when
    /// the new ones are in use, `Some(Err)` when they do not load (the old
    /// ones stay), `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsFileError>> {
        let now = stamps(&self.files);
        {
            let mut last = self.stamps.lock().expect("tls stamps");
            if *last == now {
                return None;
            }
            *last = now;
        }
        Some(build(&self.files).map(|configs| {
            *self.configs.write().expect("tls configs") = configs;
        }))
    }

    /// Looks at the files every [`RELOAD_CHECK`], for as long as the runtime
    /// runs; `reloaded` is called after each reload.
    pub async fn watch(self: Arc<Self>, reloaded: impl Fn(&ClientTls) + Send + 'static) {
        loop {
            tokio::time::sleep(RELOAD_CHECK).await;
            match self.reload_if_changed() {
                None => {}
                Some(Ok(())) => {
                    tracing::info!(
                        "client TLS: reloaded {} and {}; new connections get the new certificate",
                        self.files.cert.display(),
                        self.files.key.display()
                    );
                    reloaded(&self);
                }
                Some(Err(e)) => tracing::warn!(
                    "client TLS: the changed files do not load, the previous certificate stays in use: {e}"
                ),
            }
        }
    }
}

/// Modification time and length of each file (`None` if it cannot be read).
fn stamps(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    let mut paths = vec![&files.cert, &files.key];
    paths.extend(files.client_ca.as_ref());
    paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn build(files: &TlsFiles) -> Result<Configs, TlsFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs("gateway.tls_cert_file", &files.cert)?;
    let not_after = transport::tls::not_after(&chain[0], "the certificate")
        .map_err(|e| file_error("gateway.tls_cert_file", &files.cert, e))?;
    let key = read(
        "gateway.tls_key_file",
        &files.key,
        PrivateKeyDer::from_pem_slice,
    )?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let key = "gateway.tls_client_ca_file";
            let mut roots = RootCertStore::empty();
            for cert in read_certs(key, path)? {
                roots.add(cert).map_err(|e| file_error(key, path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| file_error(key, path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut grpc = builder
        .with_single_cert(chain, key)
        .map_err(|e| file_error("gateway.tls_key_file", &files.key, e))?;
    let mut http = grpc.clone();
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Configs {
        grpc: Arc::new(grpc),
        http: Arc::new(http),
        not_after,
    })
}

fn file_error(key: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsFileError {
    TlsFileError {
        key,
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn read<T>(
    key: &'static str,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, rustls::pki_types::pem::Error>,
) -> Result<T, TlsFileError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(key, path, e))?;
    parse(&bytes).map_err(|e| file_error(key, path, format!("not PEM of the expected kind: {e}")))
}

fn read_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = read(key, path, |bytes| {
        CertificateDer::pem_slice_iter(bytes).collect::<Result<Vec<_>, _>>()
    })?;
    if certs.is_empty() {
        return Err(file_error(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Accepts TLS connections on a TCP listener.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current tokio runtime), with
    /// `tls`'s configuration for `port`, and TCP_NODELAY if `nodelay`. The
    /// accepting task ends when the listener is dropped.
    pub fn spawn(
        listener: TcpListener,
        tls: Arc<ClientTls>,
        port: Port,
        nodelay: bool,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors, mostly: wait, then go on.
                            tracing::warn!("cannot accept a connection on {local}: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = tx.closed() => return,
                };
                if nodelay {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("cannot set TCP_NODELAY on a connection from {addr}: {e}");
                    }
                }
                let acceptor = TlsAcceptor::from(tls.config(port));
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {addr} on {local} failed: {e}")
                        }
                        Err(_) => tracing::debug!(
                            "TLS handshake with {addr} on {local}: no answer within {HANDSHAKE_TIMEOUT:?}"
                        ),
                    }
                });
            }
        });
        Ok(Self { accepted, local })
    }

    /// The connections as tonic takes them.
    pub fn into_incoming(
        self,
    ) -> impl tokio_stream::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
        use tokio_stream::StreamExt;
        tokio_stream::wrappers::ReceiverStream::new(self.accepted).map(|(stream, _)| Ok(stream))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended: no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for localhost: (certificate PEM, key PEM).
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn files(dir: &Path, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: client_ca.then(|| dir.join("ca.pem")),
        }
    }

    fn write(files: &TlsFiles, (cert, key): &(String, String)) {
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
    }

    #[test]
    fn bad_files_are_named_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path(), false);
        let err = ClientTls::load(f.clone()).err().unwrap();
        assert_eq!(err.key, "gateway.tls_cert_file");
        assert!(err.to_string().contains("cert.pem"), "{err}");

        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        write(&f, &(cert.clone(), other_key));
        let err = ClientTls::load(f.clone()).err().unwrap();
        assert_eq!(err.key, "gateway.tls_key_file", "{err}");

        write(&f, &(cert.clone(), "not a key".into()));
        let err = ClientTls::load(f.clone()).err().unwrap();
        assert_eq!(err.key, "gateway.tls_key_file", "{err}");

        write(&f, &self_signed());
        let with_ca = files(dir.path(), true);
        std::fs::write(with_ca.client_ca.as_ref().unwrap(), "garbage").unwrap();
        let err = ClientTls::load(with_ca).err().unwrap();
        assert_eq!(err.key, "gateway.tls_client_ca_file", "{err}");
        assert!(err.message.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn changed_files_are_reloaded_and_bad_ones_leave_the_old_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path(), false);
        write(&f, &self_signed());
        let tls = ClientTls::load(f.clone()).unwrap();
        assert_eq!(tls.config(Port::Grpc).alpn_protocols, vec![b"h2".to_vec()]);
        assert_eq!(
            tls.config(Port::Http).alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
        assert!(tls.reload_if_changed().is_none(), "nothing changed");

        let first = tls.config(Port::Http);
        let (cert, key) = self_signed();
        // A longer file, so that the stamp changes even within one tick of
        // the file system's clock.
        write(&f, &(format!("{cert}\n"), key));
        assert!(matches!(tls.reload_if_changed(), Some(Ok(()))));
        let second = tls.config(Port::Http);
        assert!(!Arc::ptr_eq(&first, &second));

        std::fs::write(&f.key, "half written").unwrap();
        assert!(matches!(tls.reload_if_changed(), Some(Err(_))));
        assert!(Arc::ptr_eq(&second, &tls.config(Port::Http)), "old stays");
        assert!(
            tls.reload_if_changed().is_none(),
            "a bad file is reported once"
        );
    }
}
