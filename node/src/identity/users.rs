//! The users, roles and authorizations as this node's replicas hold them,
//! and the hashing of passwords.
//!
//! Every partition's replicated state holds all of them (the engine
//! distributes each change from partition 1). After a shard applies a
//! command that changed them, or restores a snapshot, it publishes its
//! partition's identity state here; the gateway reads the lowest local
//! partition's copy (partition 1's when this node has a replica of it, the
//! most up to date). Written by the shard threads, read by the tokio
//! threads.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use engine::identity::{Identity, UserRecord};

use crate::placement::PartitionId;

/// Each local partition's identity state (users, roles,
/// authorizations), as last published.
#[derive(Debug, Default)]
pub struct Directory {
    by_partition: RwLock<BTreeMap<PartitionId, Arc<Identity>>>,
}

impl Directory {
    /// Publishes the identity state of `partition`.
    pub fn publish(&self, partition: PartitionId, identity: &Identity) {
        let identity = Arc::new(identity.clone());
        self.by_partition
            .write()
            .expect("the directory lock is never poisoned")
            .insert(partition, identity);
    }

    /// The identity state of the lowest local partition (empty before any
    /// partition published).
    pub fn identity(&self) -> Arc<Identity> {
        self.by_partition
            .read()
            .expect("the directory lock is never poisoned")
            .values()
            .next()
            .cloned()
            .unwrap_or_default()
    }

    /// The user named `username`.
    pub fn user(&self, username: &str) -> Option<UserRecord> {
        self.identity().users.get(username).cloned()
    }
}

/// The PHC string of `password` hashed with Argon2id (the crate's default
/// parameters, OWASP's minimum: 19 MiB, 2 passes) and a random salt. Takes
/// tens of milliseconds: call it off the async threads.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with its default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (false for a hash that
/// does not parse). As slow as [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("s3cret");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(hash, hash_password("s3cret"), "salted");
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret!", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn the_lowest_partition_answers() {
        let directory = Directory::default();
        assert!(directory.user("demo").is_none());
        let mut two = Identity::default();
        two.users.insert(
            "demo".into(),
            UserRecord {
                username: "demo".into(),
                name: "from 2".into(),
                ..UserRecord::default()
            },
        );
        directory.publish(2, &two);
        assert_eq!(directory.user("demo").unwrap().name, "from 2");
        directory.publish(1, &Identity::default());
        assert!(
            directory.user("demo").is_none(),
            "partition 1 has no demo yet"
        );
    }
}
