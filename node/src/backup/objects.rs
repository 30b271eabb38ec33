//! Where backups are kept: named objects (`<id>/backup.json`,
//! `<id>/partition-<p>.state`, …) in a directory or an S3 bucket. Both
//! stores write an object whole or not at all, and report a failure to
//! reach the store as an error naming it, never as a missing object.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A store of named objects, written whole.
pub trait Objects: Send + Sync + std::fmt::Debug {
    /// The object `key`, or `None` when there is none.
    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Writes `bytes` as `key`, durably and whole.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Removes `key`; removing what is not there is no error.
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Whether `key` exists.
    fn exists(&self, key: &str) -> io::Result<bool>;
    /// The first path segments of every object: `1` for `1/backup.json`.
    fn folders(&self) -> io::Result<Vec<String>>;
    /// Removes every object under `folder/`.
    fn delete_folder(&self, folder: &str) -> io::Result<()>;
    /// Where the store is, for messages: a path or `s3://bucket/prefix`.
    fn location(&self) -> String;
}

/// Objects as files under a directory (a shared mount in a cluster).
#[derive(Debug)]
pub struct Directory {
    dir: PathBuf,
    node: u32,
}

impl Directory {
    /// The store in `dir` (created if missing); `node` tells its temporary
    /// files apart from other nodes' on a shared mount.
    pub fn open(dir: &Path, node: u32) -> io::Result<Directory> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("backup.directory {}: {e}", dir.display()))
        })?;
        Ok(Directory {
            dir: dir.to_path_buf(),
            node,
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }
}

/// Writes `bytes` to `path` durably: a temporary file, `fsync`, `rename`,
/// and an `fsync` of the directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8], node: u32) -> io::Result<()> {
    let parent = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.tmp-{node}",
        path.file_name().expect("a file name").to_string_lossy()
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(parent)?.sync_all()
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Objects for Directory {
    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(named(&path, e)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        write_durably(&path, bytes, self.node).map_err(|e| named(&path, e))
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(named(&path, e)),
            _ => Ok(()),
        }
    }

    fn exists(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key);
        path.try_exists().map_err(|e| named(&path, e))
    }

    fn folders(&self) -> io::Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| named(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| named(&self.dir, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(entry.file_name().to_str().map(str::to_string));
            }
        }
        Ok(out)
    }

    fn delete_folder(&self, folder: &str) -> io::Result<()> {
        let path = self.path(folder);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(named(&path, e)),
            _ => Ok(()),
        }
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_objects_in_folders_and_deletes_a_folder_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Directory::open(&dir.path().join("store"), 1).expect("open");
        assert_eq!(store.get("1/a").expect("get"), None);
        store.put("1/a", b"one").expect("put");
        store.put("1/b", b"two").expect("put");
        store.put("2/a", b"three").expect("put");
        assert_eq!(store.get("1/a").expect("get").as_deref(), Some(&b"one"[..]));
        assert!(store.exists("1/b").expect("exists"));
        let mut folders = store.folders().expect("folders");
        folders.sort();
        assert_eq!(folders, ["1", "2"]);
        store.delete("1/b").expect("delete");
        store.delete("1/b").expect("deleting nothing is no error");
        assert!(!store.exists("1/b").expect("exists"));
        store.delete_folder("1").expect("delete");
        store
            .delete_folder("1")
            .expect("deleting nothing is no error");
        assert!(!store.exists("1/a").expect("exists"));
        assert_eq!(store.folders().expect("folders"), ["2"]);
        // No temporary file is left beside an object.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("store/2"))
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a"]);
    }
}
