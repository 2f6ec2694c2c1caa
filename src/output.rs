//! The output file (`%o`, pacman's `<file>.part`): opened without truncating so an earlier
//! call's bytes can be resumed, written only through `append` so the running SHA-256 always
//! covers exactly what the file holds, and truncated when its bytes cannot be trusted.
//!
//! It is never renamed here: pacman renames `%o` after exit 0, and `pacxfer fetch` does it
//! itself once the bytes are verified.
//!
//! The file is opened without following a link (a symbolic link at `%o` is refused, never
//! written through) and without blocking on a FIFO, must be a regular file, and is locked
//! (`flock`) for as long as the `Output` lives: a second pacxfer writing the same file waits
//! for the first, then judges what it left, so two writers never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use sha2::{Digest, Sha256};

/// The file being written, and the SHA-256 of what it holds.
pub struct Output {
    file: File,
    path: PathBuf,
    len: u64,
    hasher: Sha256,
    /// The length already there when the file was opened.
    found: u64,
}

impl Output {
    /// Opens (or creates) `path` for writing at its end, locks it, and hashes what it
    /// already holds. `waiting` is called once if another process holds the lock.
    pub fn open(path: &Path, waiting: impl FnOnce()) -> io::Result<Output> {
        let mut waiting = Some(waiting);
        // The path may be replaced while we wait for the lock (a `fetch` renames its `.part`
        // when done): then the lock is taken again on what the path names now.
        let mut file = loop {
            let file = open_no_follow(path)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                if let Some(w) = waiting.take() {
                    w();
                }
                flock(&file, FlockOperation::LockExclusive).map_err(io::Error::from)?;
            }
            let held = file.metadata()?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => break file,
                _ => continue,
            }
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        file.seek(SeekFrom::Start(len))?;
        Ok(Output {
            file,
            path: path.to_path_buf(),
            len,
            hasher,
            found: len,
        })
    }

    /// How many bytes the file holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes from an earlier call (a `.part`) the file still holds: those found when
    /// it was opened, 0 once it has been emptied.
    pub fn found(&self) -> u64 {
        self.found
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes and hashes them.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Empties the file.
    pub fn truncate(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.len = 0;
        self.found = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    /// The SHA-256 of what the file holds.
    pub fn sha256(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Flushes the file to the kernel; the bytes are final. The lock stays until the
    /// `Output` is dropped.
    pub fn finish(&mut self) -> io::Result<u64> {
        self.file.flush()?;
        Ok(self.len)
    }
}

/// Opens `path` read-write, created 0644 when missing, never through a link and never
/// blocking on a FIFO; anything but a regular file is refused.
fn open_no_follow(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link, and pacxfer never writes through one (remove it)",
                )
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY)
        .bits() as i32
}
