//! `SimDisk`: an in-memory disk for tests and the deterministic simulator.
//!
//! Structure: a tree of directory inodes and file inodes. Every directory keeps
//! two name tables, `current` and `durable` (the table as of its last
//! `sync_dir`); every file keeps its `durable` bytes, its `current` bytes and
//! the ordered list of writes since its last `fdatasync`. A crash
//! ([`SimDisk::crash`]) puts every directory back to its durable table and every
//! file to its durable bytes plus a random prefix of its unsynced writes, the
//! last of them torn at a random 512-byte boundary.
//!
//! Faults, all deterministic: one-shot EIO or ENOSPC at a named operation on a
//! path (`inject`), ENOSPC once files would outgrow a capacity
//! (`set_capacity_bytes`), a halt after N mutating operations to crash in the
//! middle of a multi-step operation (`halt_after_mutations`), and bit flips
//! (`flip_bit`). The only randomness is the seed passed to `crash` and
//! `flip_random_bit`.
//!
//! Every future returned by `SimDisk` completes on its first poll, so a
//! single-threaded simulator can drive it with `now_or_never`. `SimDisk` is a
//! cheap handle (`Rc<RefCell<..>>`): clones share one disk. It lives on one
//! thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::disk::{Disk, DiskFile, BLOCK_BYTES};

/// Granularity of a torn write: sectors are written whole or not at all.
pub const SECTOR_BYTES: usize = 512;

/// The operations a fault can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOp {
    /// `Disk::open`.
    Open,
    /// `DiskFile::read_at`.
    Read,
    /// `DiskFile::write_at`.
    Write,
    /// `DiskFile::fdatasync`.
    Sync,
    /// `Disk::sync_dir`.
    SyncDir,
    /// `Disk::rename`.
    Rename,
    /// `Disk::remove_file` and `Disk::remove_dir_all`.
    Remove,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// EIO.
    Io,
    /// ENOSPC.
    NoSpace,
}

impl FaultError {
    fn to_io(self) -> io::Error {
        match self {
            FaultError::Io => io::Error::from_raw_os_error(libc::EIO),
            FaultError::NoSpace => io::Error::from_raw_os_error(libc::ENOSPC),
        }
    }
}

/// A one-shot fault: the `skip + 1`-th matching operation fails.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The operation.
    pub op: DiskOp,
    /// Only paths whose text contains this match (empty: every path).
    pub path_contains: String,
    /// Matching operations to let pass first.
    pub skip: u64,
    /// The error returned.
    pub error: FaultError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Default, Clone)]
struct DirInode {
    current: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
}

#[derive(Default)]
struct FileInode {
    durable: Vec<u8>,
    current: Vec<u8>,
    unsynced: Vec<(u64, Vec<u8>)>,
}

struct State {
    dirs: BTreeMap<u64, DirInode>,
    files: BTreeMap<u64, FileInode>,
    next_inode: u64,
    boot: u64,
    faults: Vec<Fault>,
    capacity_bytes: Option<u64>,
    mutations_left: Option<u64>,
    mutations: u64,
}

const ROOT: u64 = 0;

/// The simulated disk (see the module documentation).
#[derive(Clone)]
pub struct SimDisk {
    state: Rc<RefCell<State>>,
}

impl Default for SimDisk {
    fn default() -> Self {
        SimDisk::new()
    }
}

fn names(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl State {
    fn check(&mut self, op: DiskOp, path: &Path, mutating: bool) -> io::Result<()> {
        if let Some(left) = self.mutations_left {
            if left == 0 {
                return Err(io::Error::other("simulated disk halted"));
            }
            if mutating {
                self.mutations_left = Some(left - 1);
            }
        }
        if mutating {
            self.mutations += 1;
        }
        let text = path.to_string_lossy();
        if let Some(pos) = self
            .faults
            .iter()
            .position(|f| f.op == op && text.contains(f.path_contains.as_str()))
        {
            if self.faults[pos].skip == 0 {
                let fault = self.faults.remove(pos);
                return Err(fault.error.to_io());
            }
            self.faults[pos].skip -= 1;
        }
        Ok(())
    }

    fn lookup(&self, path: &Path) -> Option<Node> {
        let mut node = Node::Dir(ROOT);
        for name in names(path) {
            let Node::Dir(dir) = node else { return None };
            node = *self.dirs.get(&dir)?.current.get(&name)?;
        }
        Some(node)
    }

    fn parent_dir(&self, path: &Path) -> io::Result<(u64, String)> {
        let mut parts = names(path);
        let name = parts.pop().ok_or_else(|| not_found(path))?;
        let parent: PathBuf = parts.iter().collect();
        match self.lookup(&parent) {
            Some(Node::Dir(dir)) => Ok((dir, name)),
            _ => Err(not_found(&parent)),
        }
    }

    fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.current.len() as u64).sum()
    }

    fn new_inode(&mut self) -> u64 {
        self.next_inode += 1;
        self.next_inode
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        let mut dirs = BTreeMap::new();
        dirs.insert(ROOT, DirInode::default());
        SimDisk {
            state: Rc::new(RefCell::new(State {
                dirs,
                files: BTreeMap::new(),
                next_inode: ROOT,
                boot: 0,
                faults: Vec::new(),
                capacity_bytes: None,
                mutations_left: None,
                mutations: 0,
            })),
        }
    }

    /// Power loss: every directory returns to its last synced names, every
    /// file to its synced bytes plus a random prefix of its unsynced writes,
    /// the last kept write torn at a random 512-byte boundary. Handles opened
    /// before the crash fail from now on; a halt is lifted.
    pub fn crash(&self, seed: u64) {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut state = self.state.borrow_mut();
        state.boot += 1;
        state.mutations_left = None;
        for dir in state.dirs.values_mut() {
            dir.current = dir.durable.clone();
        }
        for file in state.files.values_mut() {
            let unsynced = std::mem::take(&mut file.unsynced);
            let kept = rng.random_range(0..=unsynced.len());
            for (i, (pos, data)) in unsynced.into_iter().take(kept).enumerate() {
                let keep_bytes = if i + 1 == kept {
                    let sectors = data.len().div_ceil(SECTOR_BYTES);
                    (rng.random_range(0..=sectors) * SECTOR_BYTES).min(data.len())
                } else {
                    data.len()
                };
                write_bytes(&mut file.durable, pos, &data[..keep_bytes]);
            }
            file.current = file.durable.clone();
        }
    }

    /// Adds a one-shot fault.
    pub fn inject(&self, fault: Fault) {
        self.state.borrow_mut().faults.push(fault);
    }

    /// One-shot faults injected and not yet fired.
    pub fn pending_faults(&self) -> usize {
        self.state.borrow().faults.len()
    }

    /// Writes that would make the files together larger than `capacity` fail
    /// with ENOSPC (`None`: unlimited). Overwrites need no space.
    pub fn set_capacity_bytes(&self, capacity: Option<u64>) {
        self.state.borrow_mut().capacity_bytes = capacity;
    }

    /// After `count` more mutating operations (writes, syncs, renames,
    /// removals, creations) every operation fails with EIO until `crash`.
    pub fn halt_after_mutations(&self, count: u64) {
        self.state.borrow_mut().mutations_left = Some(count);
    }

    /// Mutating operations performed so far.
    pub fn mutations(&self) -> u64 {
        self.state.borrow().mutations
    }

    /// Bytes used by all files.
    pub fn used_bytes(&self) -> u64 {
        self.state.borrow().used_bytes()
    }

    /// Flips bit `bit` (0..8) of byte `offset` of `path`, in its current and
    /// its durable bytes (a media error).
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        let Some(Node::File(inode)) = state.lookup(path) else {
            return Err(not_found(path));
        };
        let file = state.files.get_mut(&inode).ok_or_else(|| not_found(path))?;
        let offset = offset as usize;
        if offset >= file.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} beyond {}", path.display()),
            ));
        }
        file.current[offset] ^= 1 << (bit % 8);
        if offset < file.durable.len() {
            file.durable[offset] ^= 1 << (bit % 8);
        }
        Ok(())
    }

    /// Flips one random bit among the first `within_bytes` bytes of `path`;
    /// returns the byte offset.
    pub fn flip_random_bit(&self, path: &Path, within_bytes: u64, seed: u64) -> io::Result<u64> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let len = self.file_bytes(path).ok_or_else(|| not_found(path))?.len() as u64;
        let limit = within_bytes.min(len);
        if limit == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty file"));
        }
        let offset = rng.random_range(0..limit);
        self.flip_bit(path, offset, rng.random_range(0..8))?;
        Ok(offset)
    }

    /// The current bytes of `path`, if it is a file.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        match state.lookup(path)? {
            Node::File(inode) => Some(state.files.get(&inode)?.current.clone()),
            Node::Dir(_) => None,
        }
    }

    /// Replaces the bytes of `path` (current and durable), creating the file
    /// durably if needed: for tests that cut or forge files.
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        let (dir, name) = state.parent_dir(path)?;
        let inode = match state.dirs[&dir].current.get(&name) {
            Some(Node::File(inode)) => *inode,
            Some(Node::Dir(_)) => return Err(io::Error::other("is a directory")),
            None => {
                let inode = state.new_inode();
                state.files.insert(inode, FileInode::default());
                let entry = state.dirs.get_mut(&dir).expect("parent exists");
                entry.current.insert(name.clone(), Node::File(inode));
                entry.durable.insert(name, Node::File(inode));
                inode
            }
        };
        let file = state.files.get_mut(&inode).expect("inode exists");
        file.durable = bytes.clone();
        file.current = bytes;
        file.unsynced.clear();
        Ok(())
    }
}

fn write_bytes(target: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let pos = pos as usize;
    if target.len() < pos + data.len() {
        target.resize(pos + data.len(), 0);
    }
    target[pos..pos + data.len()].copy_from_slice(data);
}

/// An open file of a [`SimDisk`].
pub struct SimFile {
    disk: SimDisk,
    inode: u64,
    boot: u64,
    path: PathBuf,
}

impl SimFile {
    fn with_file<T>(
        &self,
        op: DiskOp,
        mutating: bool,
        f: impl FnOnce(&mut State, u64) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.disk.state.borrow_mut();
        if state.boot != self.boot {
            return Err(io::Error::other(format!(
                "{} was opened before a crash",
                self.path.display()
            )));
        }
        state.check(op, &self.path, mutating)?;
        f(&mut state, self.inode)
    }
}

impl DiskFile for SimFile {
    async fn size_bytes(&self) -> io::Result<u64> {
        self.with_file(DiskOp::Read, false, |state, inode| {
            Ok(state.files[&inode].current.len() as u64)
        })
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.with_file(DiskOp::Read, false, |state, inode| {
            let bytes = &state.files[&inode].current;
            let start = (pos as usize).min(bytes.len());
            let end = start.saturating_add(len).min(bytes.len());
            Ok(bytes[start..end].to_vec())
        })
    }

    async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        assert!(
            pos % BLOCK_BYTES == 0 && data.len() as u64 % BLOCK_BYTES == 0,
            "unaligned write of {} bytes at {pos} to {}",
            data.len(),
            self.path.display()
        );
        self.with_file(DiskOp::Write, true, |state, inode| {
            let len = state.files[&inode].current.len() as u64;
            let growth = (pos + data.len() as u64).saturating_sub(len);
            if let Some(capacity) = state.capacity_bytes {
                if growth > 0 && state.used_bytes() + growth > capacity {
                    return Err(FaultError::NoSpace.to_io());
                }
            }
            let file = state.files.get_mut(&inode).expect("open file has an inode");
            write_bytes(&mut file.current, pos, data);
            file.unsynced.push((pos, data.to_vec()));
            Ok(())
        })
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.with_file(DiskOp::Sync, true, |state, inode| {
            let file = state.files.get_mut(&inode).expect("open file has an inode");
            file.durable = file.current.clone();
            file.unsynced.clear();
            Ok(())
        })
    }
}

impl Disk for SimDisk {
    type File = SimFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::Open, dir, true)?;
        let mut current = ROOT;
        for name in names(dir) {
            let next = match state.dirs[&current].current.get(&name) {
                Some(Node::Dir(next)) => *next,
                Some(Node::File(_)) => return Err(io::Error::other("a file is in the way")),
                None => {
                    let next = state.new_inode();
                    state.dirs.insert(next, DirInode::default());
                    let parent = state.dirs.get_mut(&current).expect("walked here");
                    parent.current.insert(name.clone(), Node::Dir(next));
                    parent.durable.insert(name, Node::Dir(next));
                    next
                }
            };
            current = next;
        }
        Ok(())
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::Read, dir, false)?;
        match state.lookup(dir) {
            Some(Node::Dir(inode)) => Ok(state.dirs[&inode].current.keys().cloned().collect()),
            _ => Err(not_found(dir)),
        }
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<SimFile> {
        let mut state = self.state.borrow_mut();
        let inode = match state.lookup(path) {
            Some(Node::File(inode)) => {
                state.check(DiskOp::Open, path, false)?;
                inode
            }
            Some(Node::Dir(_)) => return Err(io::Error::other("is a directory")),
            None if create => {
                state.check(DiskOp::Open, path, true)?;
                let (dir, name) = state.parent_dir(path)?;
                let inode = state.new_inode();
                state.files.insert(inode, FileInode::default());
                let parent = state.dirs.get_mut(&dir).expect("parent exists");
                parent.current.insert(name, Node::File(inode));
                inode
            }
            None => return Err(not_found(path)),
        };
        Ok(SimFile {
            disk: self.clone(),
            inode,
            boot: state.boot,
            path: path.to_path_buf(),
        })
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::Remove, path, true)?;
        let (dir, name) = state.parent_dir(path)?;
        match state.dirs[&dir].current.get(&name) {
            Some(Node::File(_)) => {
                state
                    .dirs
                    .get_mut(&dir)
                    .expect("exists")
                    .current
                    .remove(&name);
                Ok(())
            }
            _ => Err(not_found(path)),
        }
    }

    async fn remove_dir_all(&self, dir_path: &Path) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::Remove, dir_path, true)?;
        let (dir, name) = state.parent_dir(dir_path)?;
        match state.dirs[&dir].current.get(&name) {
            Some(Node::Dir(_)) => {
                state
                    .dirs
                    .get_mut(&dir)
                    .expect("exists")
                    .current
                    .remove(&name);
                Ok(())
            }
            _ => Err(not_found(dir_path)),
        }
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::Rename, from, true)?;
        let (from_dir, from_name) = state.parent_dir(from)?;
        let (to_dir, to_name) = state.parent_dir(to)?;
        let node = state
            .dirs
            .get_mut(&from_dir)
            .expect("exists")
            .current
            .remove(&from_name)
            .ok_or_else(|| not_found(from))?;
        state
            .dirs
            .get_mut(&to_dir)
            .expect("exists")
            .current
            .insert(to_name, node);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check(DiskOp::SyncDir, dir, true)?;
        match state.lookup(dir) {
            Some(Node::Dir(inode)) => {
                let entry = state.dirs.get_mut(&inode).expect("exists");
                entry.durable = entry.current.clone();
                Ok(())
            }
            _ => Err(not_found(dir)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn block(n: u8) -> Vec<u8> {
        vec![n; BLOCK_BYTES as usize]
    }

    #[test]
    fn synced_data_and_names_survive_a_crash_and_unsynced_names_do_not() {
        let disk = SimDisk::new();
        block_on(async {
            disk.create_dir_all(Path::new("/d")).await.unwrap();
            let a = disk.open(Path::new("/d/a"), true).await.unwrap();
            a.write_at(0, &block(1)).await.unwrap();
            a.fdatasync().await.unwrap();
            disk.sync_dir(Path::new("/d")).await.unwrap();
            let b = disk.open(Path::new("/d/b"), true).await.unwrap();
            b.write_at(0, &block(2)).await.unwrap();
            b.fdatasync().await.unwrap();
        });
        disk.crash(1);
        assert_eq!(disk.file_bytes(Path::new("/d/a")), Some(block(1)));
        assert_eq!(disk.file_bytes(Path::new("/d/b")), None);
    }

    #[test]
    fn unsynced_writes_are_lost_or_torn_at_sector_boundaries() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let disk = SimDisk::new();
            let path = Path::new("/f");
            block_on(async {
                let f = disk.open(path, true).await.unwrap();
                f.write_at(0, &block(0)).await.unwrap();
                f.fdatasync().await.unwrap();
                disk.sync_dir(Path::new("/")).await.unwrap();
                f.write_at(0, &block(7)).await.unwrap();
            });
            disk.crash(seed);
            let bytes = disk.file_bytes(path).unwrap();
            let new_bytes = bytes.iter().take_while(|b| **b == 7).count();
            assert_eq!(new_bytes % SECTOR_BYTES, 0);
            assert!(bytes[new_bytes..].iter().all(|b| *b == 0));
            outcomes.insert(new_bytes);
        }
        assert!(outcomes.contains(&0));
        assert!(outcomes.contains(&(BLOCK_BYTES as usize)));
        assert!(
            outcomes.len() > 3,
            "tears should land at several boundaries"
        );
    }

    #[test]
    fn handles_from_before_a_crash_fail() {
        let disk = SimDisk::new();
        let f = block_on(disk.open(Path::new("/f"), true)).unwrap();
        disk.crash(0);
        assert!(block_on(f.read_at(0, 1)).is_err());
    }

    #[test]
    fn injected_faults_fire_once_at_the_named_operation() {
        let disk = SimDisk::new();
        disk.inject(Fault {
            op: DiskOp::Sync,
            path_contains: "log".into(),
            skip: 1,
            error: FaultError::Io,
        });
        block_on(async {
            let other = disk.open(Path::new("/other"), true).await.unwrap();
            other.fdatasync().await.unwrap();
            let log = disk.open(Path::new("/log"), true).await.unwrap();
            log.fdatasync().await.unwrap();
            let err = log.fdatasync().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EIO));
            log.fdatasync().await.unwrap();
        });
    }

    #[test]
    fn capacity_limits_growth_but_not_overwrites() {
        let disk = SimDisk::new();
        disk.set_capacity_bytes(Some(2 * BLOCK_BYTES));
        block_on(async {
            let f = disk.open(Path::new("/f"), true).await.unwrap();
            f.write_at(0, &[block(1), block(1)].concat()).await.unwrap();
            let err = f.write_at(2 * BLOCK_BYTES, &block(2)).await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
            f.write_at(BLOCK_BYTES, &block(3)).await.unwrap();
        });
    }

    #[test]
    fn every_future_completes_on_first_poll() {
        use futures::FutureExt;
        let disk = SimDisk::new();
        let f = disk
            .open(Path::new("/f"), true)
            .now_or_never()
            .unwrap()
            .unwrap();
        f.write_at(0, &block(1)).now_or_never().unwrap().unwrap();
        f.fdatasync().now_or_never().unwrap().unwrap();
        assert_eq!(
            f.read_at(0, 3).now_or_never().unwrap().unwrap(),
            vec![1, 1, 1]
        );
    }
}
