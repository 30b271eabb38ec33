//! Fingerprints of serializable values: SHA-256 over their postcard
//! encoding, fed to the hash in blocks as the encoder produces it, so that
//! a large state is hashed without being encoded into memory first.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Bytes gathered before they are handed to the hash.
const BLOCK: usize = 64 * 1024;

/// A postcard output that hashes what it is given.
struct Hashing {
    hash: Sha256,
    pending: Vec<u8>,
}

impl Hashing {
    fn drain(&mut self) {
        self.hash.update(&self.pending);
        self.pending.clear();
    }
}

impl postcard::ser_flavors::Flavor for Hashing {
    type Output = [u8; 32];

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.pending.push(byte);
        if self.pending.len() >= BLOCK {
            self.drain();
        }
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if self.pending.len() + bytes.len() > BLOCK {
            self.drain();
        }
        if bytes.len() >= BLOCK {
            self.hash.update(bytes);
        } else {
            self.pending.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<[u8; 32]> {
        self.drain();
        Ok(self.hash.finalize().into())
    }
}

/// The first eight bytes (big-endian) of the SHA-256 of `value`'s postcard
/// encoding.
pub(crate) fn of<T: Serialize>(value: &T) -> u64 {
    let digest = postcard::serialize_with_flavor(
        value,
        Hashing {
            hash: Sha256::new(),
            pending: Vec::with_capacity(BLOCK),
        },
    )
    .expect("hashing an encoding cannot fail");
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_hash_of_the_encoding_in_every_block_size() {
        for len in [0usize, 1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7] {
            let value: (Vec<u8>, Vec<u32>, String) = (
                (0..len).map(|i| (i * 7 % 251) as u8).collect(),
                (0..len as u32 / 3).collect(),
                "x".repeat(len % 1000),
            );
            let encoded = postcard::to_stdvec(&value).unwrap();
            let digest = Sha256::digest(&encoded);
            let expected = u64::from_be_bytes(digest[..8].try_into().unwrap());
            assert_eq!(of(&value), expected, "length {len}");
        }
        assert_ne!(of(&(1u8, 2u8)), of(&(2u8, 1u8)));
    }
}
