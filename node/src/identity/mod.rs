//! Who may use the client ports: TLS on the gRPC gateway, the REST API and
//! the management port, and authentication of their clients (see README.md
//! in this folder).

pub mod auth;
pub mod authorize;
pub mod caller;
pub mod config;
pub mod initial;
pub mod oidc;
pub mod scope;
pub mod tenants;
pub mod tls;
pub mod users;

pub use auth::{Authenticator, Principal};
pub use config::{Authentication, SecurityConfig};
pub use tls::{ClientTls, Port, TlsFileError, TlsFiles, TlsListener};
