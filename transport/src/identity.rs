//! Node and client identities as they appear in certificates.
//!
//! A node's certificate carries exactly one DNS subject alternative name,
//! `node-<id>.<cluster>`; a client's carries `client-<name>.<cluster>`. The
//! cluster name is a DNS name (lowercase letters, digits, `-`, `.`), so every
//! identity is a valid DNS name that rustls and webpki check natively.

use crate::error::IdentityError;
use rustls::pki_types::{CertificateDer, DnsName, ServerName};

/// Identifier of a broker node in the cluster (Zeebe's `nodeId`).
pub type NodeId = u32;

/// Longest cluster name accepted, in bytes (a DNS name is at most 253).
pub const MAX_CLUSTER_NAME_BYTES: usize = 200;

/// Longest client name accepted, in bytes (one DNS label).
pub const MAX_CLIENT_NAME_BYTES: usize = 63;

/// A name that no certificate of ours ever carries: a certificate valid for it
/// is a wildcard certificate and names more than one node.
const WILDCARD_PROBE_LABEL: &str = "wildcard-probe";

/// Checks that `cluster_name` can be used as the DNS suffix of identities.
pub fn validate_cluster_name(cluster_name: &str) -> Result<(), IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidClusterName {
        name: cluster_name.to_owned(),
        reason: reason.to_owned(),
    };
    if cluster_name.is_empty() || cluster_name.len() > MAX_CLUSTER_NAME_BYTES {
        return Err(invalid("must be 1 to 200 bytes long"));
    }
    for label in cluster_name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("each dot-separated label must be 1 to 63 bytes"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label must not start or end with '-'"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "only lowercase letters, digits, '-' and '.' are accepted",
            ));
        }
    }
    Ok(())
}

/// Checks a client name: one DNS label of lowercase letters, digits and `-`.
pub fn validate_client_name(client_name: &str) -> Result<(), IdentityError> {
    let ok = !client_name.is_empty()
        && client_name.len() <= MAX_CLIENT_NAME_BYTES
        && !client_name.starts_with('-')
        && !client_name.ends_with('-')
        && client_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidClientName {
            name: client_name.to_owned(),
        })
    }
}

/// The DNS name a node's certificate carries: `node-<id>.<cluster>`.
pub fn node_dns_name(node_id: NodeId, cluster_name: &str) -> String {
    format!("node-{node_id}.{cluster_name}")
}

/// The DNS name a client's certificate carries: `client-<name>.<cluster>`.
pub fn client_dns_name(client_name: &str, cluster_name: &str) -> String {
    format!("client-{client_name}.{cluster_name}")
}

/// Checks that the end-entity certificate `cert` names node `node_id` of
/// `cluster_name`, and names no other node (no wildcard).
///
/// The chain to a trusted CA is checked by rustls during the handshake; this
/// only binds the verified certificate to the node id a peer claims.
pub fn verify_node_certificate(
    cert: &CertificateDer<'_>,
    node_id: NodeId,
    cluster_name: &str,
) -> Result<(), IdentityError> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| {
        IdentityError::UnreadableCertificate {
            node_id,
            reason: e.to_string(),
        }
    })?;
    let expected = node_dns_name(node_id, cluster_name);
    let expected_name = dns_server_name(&expected)?;
    if parsed
        .verify_is_valid_for_subject_name(&expected_name)
        .is_err()
    {
        return Err(IdentityError::WrongNode {
            claimed: node_id,
            expected_name: expected,
        });
    }
    let probe = format!("{WILDCARD_PROBE_LABEL}.{cluster_name}");
    let probe_name = dns_server_name(&probe)?;
    if parsed.verify_is_valid_for_subject_name(&probe_name).is_ok() {
        return Err(IdentityError::Wildcard { node_id });
    }
    Ok(())
}

fn dns_server_name(name: &str) -> Result<ServerName<'static>, IdentityError> {
    DnsName::try_from(name.to_owned())
        .map(ServerName::DnsName)
        .map_err(|_| IdentityError::InvalidClusterName {
            name: name.to_owned(),
            reason: "not a valid DNS name".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_are_dns_names() {
        assert!(validate_cluster_name("prod-eu").is_ok());
        assert!(validate_cluster_name("prod.example.org").is_ok());
        for bad in ["", "Prod", "a..b", "-a", "a-", "a_b", "a b"] {
            assert!(validate_cluster_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(validate_cluster_name(&"a".repeat(MAX_CLUSTER_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn identities_use_the_cluster_suffix() {
        assert_eq!(node_dns_name(3, "prod"), "node-3.prod");
        assert_eq!(client_dns_name("ops", "prod"), "client-ops.prod");
        assert!(validate_client_name("ops-1").is_ok());
        assert!(validate_client_name("Ops").is_err());
        assert!(validate_client_name("").is_err());
    }
}
