//! Who may use the client ports: TLS on the gRPC gateway, the REST API and
//! the management port (see README.md in this folder).

pub mod tls;

pub use tls::{ClientTls, Port, TlsFileError, TlsFiles, TlsListener};
