//! The Raft hard state of one partition (term, vote, commit and a few spare
//! fields), stored atomically in the file `raft-meta`:
//!
//! ```text
//! block 0 (4 KiB): slot A      block 1 (4 KiB): slot B
//! slot: magic u32 "WGLM" | version u16 | reserved u16 | crc u32 | reserved u32
//!       | generation u64 | term u64 | voted_for u64 | commit u64
//!       | extra [u64; META_EXTRA_FIELDS] | zeros to the end of the block
//! ```
//!
//! Generation g is written to slot g % 2 and synced, so the other slot keeps
//! the previous state while the write is in flight; on open the valid slot with
//! the highest generation wins. The CRC32C covers the slot's 88 bytes with the
//! crc field as zero. A failed write or `fdatasync` poisons the store, as for
//! the log.

use std::path::{Path, PathBuf};

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::disk::{Disk, DiskFile, BLOCK_BYTES};
use crate::error::{Error, Result};
use crate::segment::io_err;

/// Spare u64 fields for later use.
pub const META_EXTRA_FIELDS: usize = 5;
/// File name of the metadata store inside the partition directory.
pub const META_FILE_NAME: &str = "raft-meta";
const META_MAGIC: u32 = u32::from_le_bytes(*b"WGLM");
const META_VERSION: u16 = 1;
const SLOT_BYTES: usize = 88;

/// The durable Raft state of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Node voted for in `term` (0: none).
    pub voted_for: u64,
    /// Highest index known committed.
    pub commit: u64,
    /// Spare fields, zero until used.
    pub extra: [u64; META_EXTRA_FIELDS],
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Slot {
    magic: U32,
    version: U16,
    reserved: U16,
    crc: U32,
    reserved2: U32,
    generation: U64,
    term: U64,
    voted_for: U64,
    commit: U64,
    extra: [U64; META_EXTRA_FIELDS],
}

const _: () = assert!(size_of::<Slot>() == SLOT_BYTES);
const _: () = assert!(SLOT_BYTES <= BLOCK_BYTES as usize);

fn slot_crc(slot: &Slot) -> u32 {
    let mut bytes = [0u8; SLOT_BYTES];
    bytes.copy_from_slice(slot.as_bytes());
    bytes[8..12].fill(0);
    crc32c::crc32c(&bytes)
}

fn decode_slot(block: &[u8]) -> Option<(u64, HardState)> {
    let (slot, _) = Slot::ref_from_prefix(block).ok()?;
    if slot.magic.get() != META_MAGIC
        || slot.version.get() != META_VERSION
        || slot_crc(slot) != slot.crc.get()
    {
        return None;
    }
    Some((
        slot.generation.get(),
        HardState {
            term: slot.term.get(),
            voted_for: slot.voted_for.get(),
            commit: slot.commit.get(),
            extra: slot.extra.map(|v| v.get()),
        },
    ))
}

/// The metadata store of one partition; owned by the partition's shard.
pub struct MetaStore<D: Disk> {
    path: PathBuf,
    file: D::File,
    generation: u64,
    state: HardState,
    poisoned: Option<String>,
}

impl<D: Disk> MetaStore<D> {
    /// Opens (creating if needed) `dir/raft-meta` and loads the newest valid
    /// slot. A file that holds data but no valid slot is `Error::Corrupt`.
    pub async fn open(disk: D, dir: impl AsRef<Path>) -> Result<MetaStore<D>> {
        let dir = dir.as_ref();
        disk.create_dir_all(dir)
            .await
            .map_err(io_err("creating", dir))?;
        let path = dir.join(META_FILE_NAME);
        let exists = disk
            .list_dir(dir)
            .await
            .map_err(io_err("listing", dir))?
            .iter()
            .any(|name| name == META_FILE_NAME);
        let file = disk
            .open(&path, !exists)
            .await
            .map_err(io_err("opening", &path))?;
        if !exists {
            let zeros = vec![0u8; 2 * BLOCK_BYTES as usize];
            file.write_at(0, &zeros)
                .await
                .map_err(io_err("writing", &path))?;
            file.fdatasync()
                .await
                .map_err(io_err("fdatasync of", &path))?;
            disk.sync_dir(dir)
                .await
                .map_err(io_err("fsync of directory", dir))?;
        }
        let bytes = file
            .read_at(0, 2 * BLOCK_BYTES as usize)
            .await
            .map_err(io_err("reading", &path))?;
        let block = BLOCK_BYTES as usize;
        let slots = [
            bytes.get(..block).and_then(decode_slot),
            bytes.get(block..2 * block).and_then(decode_slot),
        ];
        let newest = slots
            .into_iter()
            .flatten()
            .max_by_key(|(generation, _)| *generation);
        let (generation, state) = match newest {
            Some(found) => found,
            None if bytes.iter().all(|b| *b == 0) => (0, HardState::default()),
            None => {
                return Err(Error::Corrupt {
                    path,
                    offset: 0,
                    reason: "neither metadata slot is valid".into(),
                })
            }
        };
        Ok(MetaStore {
            path,
            file,
            generation,
            state,
            poisoned: None,
        })
    }

    /// The last stored state.
    pub fn get(&self) -> HardState {
        self.state
    }

    /// Stores `state` durably (one block write and one `fdatasync`).
    pub async fn store(&mut self, state: HardState) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                reason: reason.clone(),
            });
        }
        let generation = self.generation + 1;
        let mut slot = Slot {
            magic: META_MAGIC.into(),
            version: META_VERSION.into(),
            reserved: 0.into(),
            crc: 0.into(),
            reserved2: 0.into(),
            generation: generation.into(),
            term: state.term.into(),
            voted_for: state.voted_for.into(),
            commit: state.commit.into(),
            extra: state.extra.map(U64::new),
        };
        slot.crc = slot_crc(&slot).into();
        let mut block = vec![0u8; BLOCK_BYTES as usize];
        block[..SLOT_BYTES].copy_from_slice(slot.as_bytes());
        assert_eq!(decode_slot(&block), Some((generation, state)));
        let pos = (generation % 2) * BLOCK_BYTES;
        let result = match self.file.write_at(pos, &block).await {
            Ok(()) => self
                .file
                .fdatasync()
                .await
                .map_err(io_err("fdatasync of", &self.path)),
            Err(e) => Err(Error::io("writing", &self.path, e)),
        };
        if let Err(error) = result {
            self.poisoned = Some(error.to_string());
            return Err(error);
        }
        self.generation = generation;
        self.state = state;
        Ok(())
    }
}
