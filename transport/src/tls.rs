//! Mutual TLS for node-to-node QUIC.
//!
//! Both directions use TLS 1.3 only, the `ring` provider, ALPN
//! [`ALPN_PROTOCOL`] and the same trust store: every CA in
//! [`TlsMaterial::trusted_ca_pems`] (two during a CA rotation). The server
//! side requires a client certificate that chains to one of them; the client
//! side checks that the server's certificate names `node-<id>.<cluster>` of
//! the node it dials. Binding a client certificate to the node id the peer
//! claims happens after the handshake (see [`crate::identity`]).

use crate::error::TlsError;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use std::path::Path;
use std::sync::Arc;

/// ALPN protocol id of waggle's node-to-node protocol.
pub const ALPN_PROTOCOL: &[u8] = b"waggle/1";

/// Most CA certificates trusted at once (old and new during a rotation, with
/// room for intermediates).
pub const MAX_TRUSTED_CAS: usize = 8;

/// When a DER certificate expires, in UNIX seconds; `what` names it in the
/// error.
pub fn not_after(der: &CertificateDer<'_>, what: &str) -> Result<i64, TlsError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .map_err(|e| TlsError::BadPem {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

/// The TLS material of one node, in PEM.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Trusted cluster CA certificates. Two during a CA rotation.
    pub trusted_ca_pems: Vec<String>,
    /// This node's certificate chain: leaf first.
    pub cert_chain_pem: String,
    /// This node's private key (PKCS#8, SEC1 or PKCS#1).
    pub private_key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("trusted_ca_count", &self.trusted_ca_pems.len())
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads the material from PEM files.
    pub fn from_files(
        trusted_ca_paths: &[&Path],
        cert_chain_path: &Path,
        private_key_path: &Path,
    ) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(TlsMaterial {
            trusted_ca_pems: trusted_ca_paths
                .iter()
                .map(|p| read(p))
                .collect::<Result<_, _>>()?,
            cert_chain_pem: read(cert_chain_path)?,
            private_key_pem: read(private_key_path)?,
        })
    }

    /// When each certificate expires (UNIX seconds): `node` (the leaf of the
    /// chain) and `ca-<n>` for each trusted CA, for the expiry metric.
    pub fn expiries(&self) -> Result<Vec<(String, i64)>, TlsError> {
        let mut out = Vec::new();
        let chain = parse_certs(&self.cert_chain_pem, "node certificate chain")?;
        if let Some(leaf) = chain.first() {
            out.push(("node".to_owned(), not_after(leaf, "node certificate")?));
        }
        for (i, pem) in self.trusted_ca_pems.iter().enumerate() {
            let what = format!("trusted CA #{i}");
            for cert in parse_certs(pem, &what)? {
                out.push((format!("ca-{i}"), not_after(&cert, &what)?));
            }
        }
        Ok(out)
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        if self.trusted_ca_pems.is_empty() {
            return Err(TlsError::NoTrustedCa);
        }
        let mut roots = RootCertStore::empty();
        for (i, pem) in self.trusted_ca_pems.iter().enumerate() {
            let what = format!("trusted CA #{i}");
            for cert in parse_certs(pem, &what)? {
                roots.add(cert).map_err(|e| TlsError::Config {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        if roots.len() > MAX_TRUSTED_CAS {
            return Err(TlsError::Config {
                what: "trusted CAs".to_owned(),
                reason: format!("{} given, at most {MAX_TRUSTED_CAS}", roots.len()),
            });
        }
        Ok(Arc::new(roots))
    }

    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = parse_certs(&self.cert_chain_pem, "node certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(self.private_key_pem.as_bytes()).map_err(|e| {
            TlsError::BadPem {
                what: "node private key".to_owned(),
                reason: e.to_string(),
            }
        })?;
        Ok((chain, key))
    }
}

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadPem {
            what: what.to_owned(),
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: &str) -> impl Fn(rustls::Error) -> TlsError + '_ {
    move |e| TlsError::Config {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// The QUIC server crypto: TLS 1.3, client certificate required and checked
/// against the trusted CAs.
pub fn quic_server_crypto(material: &TlsMaterial) -> Result<QuicServerConfig, TlsError> {
    let roots = material.roots()?;
    let (chain, key) = material.identity()?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config {
            what: "client certificate verifier".to_owned(),
            reason: e.to_string(),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error("server protocol versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(config_error("node certificate and key"))?;
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    QuicServerConfig::try_from(config).map_err(|e| TlsError::Config {
        what: "QUIC server crypto".to_owned(),
        reason: e.to_string(),
    })
}

/// The QUIC client crypto: TLS 1.3, this node's certificate as client
/// certificate, servers checked against the trusted CAs and the dialed name.
pub fn quic_client_crypto(material: &TlsMaterial) -> Result<QuicClientConfig, TlsError> {
    let roots = material.roots()?;
    let (chain, key) = material.identity()?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error("client protocol versions"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(config_error("node certificate and key"))?;
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    QuicClientConfig::try_from(config).map_err(|e| TlsError::Config {
        what: "QUIC client crypto".to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_bad_material_is_refused_with_its_name() {
        let material = TlsMaterial {
            trusted_ca_pems: Vec::new(),
            cert_chain_pem: String::new(),
            private_key_pem: String::new(),
        };
        assert!(matches!(
            quic_server_crypto(&material),
            Err(TlsError::NoTrustedCa)
        ));
        let material = TlsMaterial {
            trusted_ca_pems: vec!["not pem".to_owned()],
            ..material
        };
        let error = match quic_client_crypto(&material) {
            Ok(_) => panic!("bad PEM was accepted"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("trusted CA #0"), "{error}");
    }

    #[test]
    fn expiries_name_the_node_certificate_and_each_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::certs::create_ca(dir.path(), "prod").unwrap();
        let issued = crate::certs::issue_node_cert(&ca, 1, "prod", dir.path()).unwrap();
        let material = TlsMaterial {
            trusted_ca_pems: vec![ca.cert_pem().to_owned()],
            cert_chain_pem: issued.cert_chain_pem,
            private_key_pem: issued.key_pem,
        };
        let expiries = material.expiries().unwrap();
        let day = 86_400;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let node = expiries.iter().find(|(n, _)| n == "node").unwrap().1;
        let ca_at = expiries.iter().find(|(n, _)| n == "ca-0").unwrap().1;
        // Issued today for LEAF_VALIDITY_DAYS and CA_VALIDITY_DAYS (give or
        // take the clock-skew allowance and a day of test time).
        assert!(
            (node - now - crate::certs::LEAF_VALIDITY_DAYS * day).abs() <= day,
            "{node}"
        );
        assert!(
            (ca_at - now - crate::certs::CA_VALIDITY_DAYS * day).abs() <= day,
            "{ca_at}"
        );
    }
}
