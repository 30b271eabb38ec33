//! waggle's storage: the per-partition Raft log (segments of checksummed
//! frames, group commit, recovery), the Raft metadata store, the snapshot
//! store, and the `Disk` boundary with an io_uring implementation (glommio DMA
//! files) and a simulated one. See the crate README for the design.

mod disk;
mod dma_disk;
mod error;
pub mod frame;
mod log;
mod memlock;
mod meta;
mod recovery;
mod segment;
mod sim_disk;
mod snapshot;

pub use disk::{align_down, align_up, Disk, DiskFile, BLOCK_BYTES};
pub use dma_disk::{DmaDisk, DmaDiskFile};
pub use error::{Error, Result};
pub use log::{
    Entry, Log, LogConfig, DEFAULT_SEGMENT_SIZE_BYTES, MAX_SPARE_SEGMENT_BYTES, SPARE_FILLING_NAME,
};
pub use memlock::{raise_memlock_limit, MIN_MEMLOCK_BYTES};
pub use meta::{HardState, MetaStore, META_EXTRA_FIELDS, META_FILE_NAME};
pub use recovery::{TailDamage, TailLoss};
pub use segment::{parse_name, recycle_name, segment_name, FileKind};
pub use sim_disk::{DiskOp, Fault, FaultError, SimDisk, SimFile, SECTOR_BYTES};
pub use snapshot::{SnapshotMeta, SnapshotStore, SnapshotWriter, MAX_CHUNKS, MAX_CHUNK_BYTES};
