//! Certificate tooling for a cluster (the library half of `waggle certs`).
//!
//! Files written into the target directory, all PEM:
//!
//! | file                     | content                          | mode |
//! |--------------------------|----------------------------------|------|
//! | `ca.pem`                 | cluster CA certificate           | 0644 |
//! | `ca-key.pem`             | cluster CA private key           | 0600 |
//! | `node-<id>.pem`          | node certificate, then the CA    | 0644 |
//! | `node-<id>-key.pem`      | node private key                 | 0600 |
//! | `client-<name>.pem`      | client certificate, then the CA  | 0644 |
//! | `client-<name>-key.pem`  | client private key               | 0600 |
//!
//! The CA is constrained to names under the cluster name. A node certificate
//! carries the single DNS name `node-<id>.<cluster>` and may act as TLS
//! server and client; a client certificate carries `client-<name>.<cluster>`
//! and may act as TLS client only. Keys are ECDSA P-256. Private keys are
//! written to a fresh 0600 file and renamed into place, so they are never
//! readable by others, not even briefly.

use crate::error::CertError;
use crate::identity::{
    client_dns_name, node_dns_name, validate_client_name, validate_cluster_name, NodeId,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Validity of a cluster CA, in days.
pub const CA_VALIDITY_DAYS: i64 = 3650;

/// Validity of node and client certificates, in days.
pub const LEAF_VALIDITY_DAYS: i64 = 825;

/// Back-dating of `not_before`, in hours, to tolerate clock skew between nodes.
pub const CLOCK_SKEW_ALLOWANCE_HOURS: i64 = 1;

/// File name of the CA certificate.
pub const CA_CERT_FILE: &str = "ca.pem";

/// File name of the CA private key.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Mode of private key files.
pub const PRIVATE_KEY_MODE: u32 = 0o600;

/// A cluster CA able to issue node and client certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the CA written by [`create_ca`] from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = read_text(&cert_path)?;
        let key_pem = read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| generate_error(&key_path, e))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| generate_error(&cert_path, e))?;
        Ok(CertificateAuthority {
            cert_pem,
            cert_path,
            issuer,
        })
    }

    /// The CA certificate in PEM, to be trusted by every node.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is stored.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

/// A certificate and key written to disk.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate chain file (leaf, then the CA).
    pub cert_path: PathBuf,
    /// The private key file (mode 0600).
    pub key_path: PathBuf,
    /// The certificate chain in PEM (leaf, then the CA).
    pub cert_chain_pem: String,
    /// The private key in PEM.
    pub key_pem: String,
}

/// Creates a new cluster CA in `dir` (created if missing). Refuses to
/// replace an existing CA key.
pub fn create_ca(dir: &Path, cluster_name: &str) -> Result<CertificateAuthority, CertError> {
    validate_cluster_name(cluster_name)?;
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let key_path = dir.join(CA_KEY_FILE);
    if key_path.exists() {
        return Err(CertError::AlreadyExists { path: key_path });
    }
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "waggle");
    name.push(
        DnType::CommonName,
        format!("waggle cluster CA {cluster_name}"),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(cluster_name.to_owned())],
        excluded_subtrees: Vec::new(),
    });
    set_validity(&mut params, CA_VALIDITY_DAYS);
    let key = KeyPair::generate().map_err(|e| generate_error(&key_path, e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| generate_error(&dir.join(CA_CERT_FILE), e))?;
    let cert_path = dir.join(CA_CERT_FILE);
    write_private_key(&key_path, &key.serialize_pem())?;
    write_public(&cert_path, &cert.pem())?;
    Ok(CertificateAuthority {
        cert_pem: cert.pem(),
        cert_path,
        issuer: Issuer::new(params, key),
    })
}

/// Issues the certificate of node `node_id` (DNS name `node-<id>.<cluster>`)
/// into `dir` as `node-<id>.pem` and `node-<id>-key.pem`.
pub fn issue_node_cert(
    ca: &CertificateAuthority,
    node_id: NodeId,
    cluster_name: &str,
    dir: &Path,
) -> Result<IssuedCert, CertError> {
    validate_cluster_name(cluster_name)?;
    issue_leaf(
        ca,
        &node_dns_name(node_id, cluster_name),
        &format!("node-{node_id}"),
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        dir,
    )
}

/// Issues a client certificate (DNS name `client-<name>.<cluster>`, TLS
/// client use only) into `dir` as `client-<name>.pem` and
/// `client-<name>-key.pem`.
pub fn issue_client_cert(
    ca: &CertificateAuthority,
    client_name: &str,
    cluster_name: &str,
    dir: &Path,
) -> Result<IssuedCert, CertError> {
    validate_cluster_name(cluster_name)?;
    validate_client_name(client_name)?;
    issue_leaf(
        ca,
        &client_dns_name(client_name, cluster_name),
        &format!("client-{client_name}"),
        &[ExtendedKeyUsagePurpose::ClientAuth],
        dir,
    )
}

fn issue_leaf(
    ca: &CertificateAuthority,
    dns_name: &str,
    file_stem: &str,
    usages: &[ExtendedKeyUsagePurpose],
    dir: &Path,
) -> Result<IssuedCert, CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let cert_path = dir.join(format!("{file_stem}.pem"));
    let key_path = dir.join(format!("{file_stem}-key.pem"));
    let mut params = CertificateParams::new(vec![dns_name.to_owned()])
        .map_err(|e| generate_error(&cert_path, e))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "waggle");
    name.push(DnType::CommonName, dns_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY_DAYS);
    let key = KeyPair::generate().map_err(|e| generate_error(&key_path, e))?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(|e| generate_error(&cert_path, e))?;
    let cert_chain_pem = format!("{}{}", cert.pem(), ca.cert_pem);
    let key_pem = key.serialize_pem();
    write_private_key(&key_path, &key_pem)?;
    write_public(&cert_path, &cert_chain_pem)?;
    Ok(IssuedCert {
        cert_path,
        key_path,
        cert_chain_pem,
        key_pem,
    })
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(CLOCK_SKEW_ALLOWANCE_HOURS);
    params.not_after = now + time::Duration::days(days);
}

fn generate_error(path: &Path, error: rcgen::Error) -> CertError {
    CertError::Generate {
        what: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn read_text(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_public(path: &Path, text: &str) -> Result<(), CertError> {
    fs::write(path, text).map_err(|source| CertError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes `pem` to a new 0600 file next to `path`, syncs it and renames it
/// into place, then checks the mode of the result.
fn write_private_key(path: &Path, pem: &str) -> Result<(), CertError> {
    let io_error = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp_path = PathBuf::from(tmp_name);
    match fs::remove_file(&tmp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_KEY_MODE)
        .open(&tmp_path)
        .map_err(io_error)?;
    // The process umask can only remove bits; set the mode explicitly anyway.
    file.set_permissions(fs::Permissions::from_mode(PRIVATE_KEY_MODE))
        .map_err(io_error)?;
    file.write_all(pem.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    fs::rename(&tmp_path, path).map_err(io_error)?;
    let mode = fs::metadata(path).map_err(io_error)?.permissions().mode() & 0o777;
    if mode != PRIVATE_KEY_MODE {
        return Err(CertError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::verify_node_certificate;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    fn leaf_der(chain_pem: &str) -> CertificateDer<'static> {
        CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .next()
            .expect("chain has a leaf")
            .expect("leaf parses")
    }

    #[test]
    fn keys_are_private_and_node_certs_name_their_node() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca(dir.path(), "prod").unwrap();
        let node = issue_node_cert(&ca, 3, "prod", dir.path()).unwrap();
        for key in [dir.path().join(CA_KEY_FILE), node.key_path.clone()] {
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        assert_eq!(node.cert_path, dir.path().join("node-3.pem"));
        let leaf = leaf_der(&node.cert_chain_pem);
        assert!(verify_node_certificate(&leaf, 3, "prod").is_ok());
        assert!(verify_node_certificate(&leaf, 4, "prod").is_err());
        assert!(verify_node_certificate(&leaf, 3, "staging").is_err());
    }

    #[test]
    fn client_certs_name_no_node() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca(dir.path(), "prod").unwrap();
        let client = issue_client_cert(&ca, "ops", "prod", dir.path()).unwrap();
        assert_eq!(client.key_path, dir.path().join("client-ops-key.pem"));
        let mode = fs::metadata(&client.key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leaf = leaf_der(&client.cert_chain_pem);
        assert!(verify_node_certificate(&leaf, 0, "prod").is_err());
        assert!(issue_client_cert(&ca, "Bad Name", "prod", dir.path()).is_err());
    }

    #[test]
    fn an_existing_ca_is_not_replaced_and_can_be_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca(dir.path(), "prod").unwrap();
        assert!(matches!(
            create_ca(dir.path(), "prod"),
            Err(CertError::AlreadyExists { .. })
        ));
        let loaded = CertificateAuthority::load(dir.path()).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        let node = issue_node_cert(&loaded, 1, "prod", dir.path()).unwrap();
        assert!(node.cert_chain_pem.ends_with(ca.cert_pem()));
    }

    #[test]
    fn bad_cluster_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            create_ca(dir.path(), "Bad_Name"),
            Err(CertError::Identity(_))
        ));
    }
}
