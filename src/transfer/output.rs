//! The output file (`%o`, pacman's `<file>.part`): opened without truncating so an earlier
//! call's bytes can be resumed, written only through `append` or an `Appender` so the running
//! SHA-256 always covers exactly what the file holds, and truncated when its bytes cannot be
//! trusted.
//!
//! Bytes are written at the offset the `Output` counts (`pwrite`), never at the file
//! position, and counted and hashed only once the kernel has taken them: after a failed or
//! short write the length and the hash still describe exactly the file's bytes, and a failed
//! truncate changes nothing.
//!
//! A download goes through an `Appender` (`Output::appending`), which hashes on a second
//! thread: SHA-256 on one core (about 1.5 GiB/s on the benchmark machine) costs about as much
//! as receiving and writing together, so doing all three in turn on one thread made a fast
//! source wait for the hash. The receiving thread writes each buffer, hands it to the hashing
//! thread and goes on with the next; a pool of four 1 MiB buffers, reused, bounds how far the
//! hash may lag, and `appending` returns only once it has caught up.
//!
//! It is never renamed here: pacman renames `%o` after exit 0, and `pacxfer fetch` does it
//! itself once the bytes are verified.
//!
//! The file is opened without following a link (a symbolic link at `%o` is refused, never
//! written through) and without blocking on a FIFO, must be a regular file, and is locked
//! (`flock`) for as long as the `Output` lives: a second pacxfer writing the same file waits
//! for the first, then judges what it left, so two writers never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use rustix::fs::{flock, FlockOperation};

use sha2::{Digest, Sha256};

use crate::makepkg::sums::{Algo, Hashers, Sum};

/// The size of an `Appender`'s buffers: large writes and hashing calls keep the per-call costs
/// (syscalls, handing a buffer to the other thread) small next to the bytes.
const BUF: usize = 1024 * 1024;

/// How many buffers an `Appender` uses at most: the one being filled and up to three the hash
/// has not reached yet (2 was measurably slower, 8 no faster).
const POOL: usize = 4;

/// The file being written, and the SHA-256 of what it holds.
pub struct Output {
    file: File,
    path: PathBuf,
    len: u64,
    hasher: Sha256,
    /// Other checksums kept beside the SHA-256 (a PKGBUILD's sources pin other algorithms).
    extra: Hashers,
    /// The length already there when the file was opened.
    found: u64,
}

impl Output {
    /// Opens (or creates) `path` for writing at its end, locks it, and hashes what it
    /// already holds. `waiting` is called once if another process holds the lock.
    pub fn open(path: &Path, waiting: impl FnOnce()) -> io::Result<Output> {
        Output::open_summing(path, &[], waiting)
    }

    /// [`Output::open`], also keeping the checksums `algos` of what the file holds.
    pub fn open_summing(path: &Path, algos: &[Algo], waiting: impl FnOnce()) -> io::Result<Output> {
        let mut extra = Hashers::new(algos.iter().copied().filter(|a| *a != Algo::Sha256));
        let mut waiting = Some(waiting);
        // The path may be replaced while we wait for the lock (a `fetch` renames its `.part`
        // when done): then the lock is taken again on what the path names now.
        let mut file = loop {
            let file = open_no_follow(path)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                if let Some(w) = waiting.take() {
                    w();
                }
                // Bounded: whoever holds the lock (another pacxfer, or anyone who could open
                // the file before it was made private) is waited for, not forever.
                let started = std::time::Instant::now();
                while flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                    if started.elapsed() > LOCK_WAIT {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            format!(
                                "another process has held its lock for {}s; if no pacxfer is running, remove it",
                                LOCK_WAIT.as_secs()
                            ),
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
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
            extra.update(&buf[..n]);
            len += n as u64;
        }
        Ok(Output {
            file,
            path: path.to_path_buf(),
            len,
            hasher,
            extra,
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

    /// After a failure: removes the file when it holds nothing and its path still names it,
    /// so that a download that failed before its first byte leaves no empty `.part` behind
    /// (as curl leaves none). A file with bytes stays, for the next call to resume.
    pub fn remove_if_empty(&self) -> io::Result<bool> {
        if self.len != 0 || self.file.metadata()?.len() != 0 {
            return Ok(false);
        }
        let held = self.file.metadata()?;
        match std::fs::symlink_metadata(&self.path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                std::fs::remove_file(&self.path)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Appends bytes and hashes them. On an error, what was written is counted and hashed.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let (written, result) = write_at_end(&self.file, &mut self.len, buf);
        self.hasher.update(&buf[..written]);
        self.extra.update(&buf[..written]);
        result
    }

    /// Runs `f` with an `Appender`, which appends as `append` does but hashes on a second
    /// thread; returns once every byte it wrote is hashed. An error only if that thread cannot
    /// be started.
    pub fn appending<T>(&mut self, f: impl FnOnce(&mut Appender<'_>) -> T) -> io::Result<T> {
        let Output {
            file,
            len,
            hasher,
            extra,
            ..
        } = self;
        thread::scope(|scope| {
            // Unbounded channels, bounded by the pool: at most `POOL` buffers exist.
            let (to_hash, queued) = channel::<(Vec<u8>, usize)>();
            let (give_back, free) = channel();
            thread::Builder::new()
                .name("sha256".into())
                .spawn_scoped(scope, move || {
                    for (buf, n) in queued {
                        hasher.update(&buf[..n]);
                        extra.update(&buf[..n]);
                        // The appender may be gone already; the buffer is then simply freed.
                        let _ = give_back.send(buf);
                    }
                })?;
            let mut appender = Appender {
                file,
                len,
                to_hash,
                free,
                current: None,
                made: 0,
            };
            Ok(f(&mut appender))
            // `appender` is dropped here, which ends the hashing thread's queue; the scope
            // waits for it to hash what is left.
        })
    }

    /// Empties the file.
    pub fn truncate(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        self.found = 0;
        self.hasher = Sha256::new();
        self.extra.reset();
        Ok(())
    }

    /// The SHA-256 of what the file holds.
    pub fn sha256(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// The SHA-256 and the other checksums kept (`open_summing`) of what the file holds.
    pub fn sums(&self) -> Vec<Sum> {
        let mut sums = self.extra.sums();
        sums.push(Sum {
            algo: Algo::Sha256,
            digest: self.sha256().to_vec(),
        });
        sums
    }

    /// The bytes are final (every write went straight to the kernel). The lock stays until
    /// the `Output` is dropped.
    pub fn finish(&mut self) -> io::Result<u64> {
        // Private while being written (nobody else can open it, or lock it); readable like
        // any package file once whole.
        rustix::fs::fchmod(&self.file, rustix::fs::Mode::from_raw_mode(0o644))?;
        Ok(self.len)
    }
}

impl Output {
    /// Sets the file's mtime (and atime) to `time`, as pacman's own downloader does with a
    /// server's `Last-Modified`, so that the next `If-Modified-Since` is exact.
    pub fn set_mtime(&self, time: std::time::SystemTime) -> io::Result<()> {
        let since = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a time before 1970"))?;
        let at = rustix::fs::Timespec {
            tv_sec: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: since.subsec_nanos().into(),
        };
        rustix::fs::futimens(
            &self.file,
            &rustix::fs::Timestamps {
                last_access: at,
                last_modification: at,
            },
        )?;
        Ok(())
    }
}

/// Appends to an `Output` from its `appending`, the hashing done by another thread: fill
/// `space()`, then `commit` what was filled.
pub struct Appender<'a> {
    file: &'a File,
    len: &'a mut u64,
    /// Written buffers and how many of their bytes to hash, to the hashing thread.
    to_hash: Sender<(Vec<u8>, usize)>,
    /// Buffers the hashing thread is done with.
    free: Receiver<Vec<u8>>,
    /// The buffer `space` handed out and `commit` has not taken yet.
    current: Option<Vec<u8>>,
    /// How many buffers were made (at most `POOL`).
    made: usize,
}

impl Appender<'_> {
    /// How many bytes the file holds.
    pub fn len(&self) -> u64 {
        *self.len
    }

    /// Whether the file holds nothing.
    pub fn is_empty(&self) -> bool {
        *self.len == 0
    }

    /// The buffer to fill next. It waits for the hash when all `POOL` buffers are ahead of it.
    pub fn space(&mut self) -> &mut [u8] {
        let Appender {
            free,
            made,
            current,
            ..
        } = self;
        current.get_or_insert_with(|| match free.try_recv() {
            Ok(buf) => buf,
            Err(_) if *made < POOL => {
                *made += 1;
                vec![0; BUF]
            }
            // Every other buffer is queued for the hash, which gives it back; if the hashing
            // thread is gone, `commit` says so.
            Err(_) => free.recv().unwrap_or_else(|_| vec![0; BUF]),
        })
    }

    /// Appends the first `n` bytes of the buffer `space` gave, and queues them for the hash.
    /// On an error, what was written is counted and hashed all the same.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        let Some(buf) = self.current.take() else {
            return Ok(());
        };
        let (written, result) = write_at_end(self.file, self.len, &buf[..n.min(buf.len())]);
        if written == 0 {
            self.current = Some(buf);
        } else if self.to_hash.send((buf, written)).is_err() {
            return Err(io::Error::other("the hashing thread ended"));
        }
        result
    }
}

/// Writes `buf` at offset `*len` and adds what was written to `*len`: how many bytes that
/// was, and whether all of them were.
fn write_at_end(file: &File, len: &mut u64, buf: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < buf.len() {
        match file.write_at(&buf[written..], *len) {
            Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                *len += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

/// Opens `path` read-write, created 0644 when missing, never through a link and never
/// blocking on a FIFO; anything but a regular file is refused.
fn open_no_follow(path: &Path) -> io::Result<File> {
    refuse_open_directory(path)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
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
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // A file someone else owns, or one with other names (a hard link to a file elsewhere),
    // is never written to: its bytes could be changed after they were verified, or the
    // write would land in the other file.
    if meta.uid() != crate::cache::trust::euid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it belongs to another user (uid {}); remove it, pacxfer makes its own",
                meta.uid()
            ),
        ));
    }
    if meta.nlink() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it has other hard links; remove it, pacxfer makes its own",
        ));
    }
    rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(0o600))?;
    Ok(file)
}

/// Refuses a directory that others may write without the sticky bit: anyone could swap the
/// file there after it was checked.
fn refuse_open_directory(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "its directory {} can be written by other users (mode {:o}, no sticky bit)",
                dir.display(),
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// How long a lock held by another process is waited for.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY)
        .bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// The length and the hash describe exactly the file's bytes.
    fn consistent(out: &Output) -> Vec<u8> {
        let held = std::fs::read(out.path()).expect("read");
        assert_eq!(out.len(), held.len() as u64);
        assert_eq!(out.sha256(), sha(&held));
        held
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    #[test]
    fn appending_hashes_what_is_written_across_buffers() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f.part");
        std::fs::write(&path, b"earlier").expect("write");
        let mut out = Output::open(&path, || {}).expect("open");
        assert_eq!(out.found(), 7);
        // More than the pool holds, in uneven pieces, so buffers are reused.
        let data = bytes(POOL * BUF * 2 + 12345);
        let pieces = out
            .appending(|sink| {
                let mut at = 0;
                let mut pieces = 0;
                while at < data.len() {
                    let space = sink.space();
                    let n = space
                        .len()
                        .min(data.len() - at)
                        .min(300_000 + pieces * 1000);
                    space[..n].copy_from_slice(&data[at..at + n]);
                    sink.commit(n).expect("commit");
                    at += n;
                    pieces += 1;
                }
                // Nothing handed out, nothing appended.
                sink.commit(0).expect("empty commit");
                pieces
            })
            .expect("thread");
        assert!(pieces > POOL * 2);
        let held = consistent(&out);
        assert_eq!(&held[..7], b"earlier");
        assert_eq!(&held[7..], &data[..]);

        out.append(b"tail").expect("append");
        consistent(&out);
        out.truncate().expect("truncate");
        assert_eq!((out.len(), out.found()), (0, 0));
        consistent(&out);
        out.appending(|sink| {
            sink.space()[..3].copy_from_slice(b"new");
            sink.commit(3)
        })
        .expect("thread")
        .expect("commit");
        assert_eq!(consistent(&out), b"new");
        assert_eq!(out.finish().expect("finish"), 3);
    }

    #[test]
    fn a_failed_write_leaves_the_hash_consistent() {
        // A file opened read-only cannot be written: nothing is counted or hashed.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f.part");
        std::fs::write(&path, b"abc").expect("write");
        let mut out = Output::open(&path, || {}).expect("open");
        out.file = File::open(&path).expect("reopen read-only");
        assert!(out.append(b"more").is_err());
        let failed = out
            .appending(|sink| {
                sink.space()[..4].copy_from_slice(b"more");
                sink.commit(4)
            })
            .expect("thread");
        assert!(failed.is_err());
        assert_eq!(consistent(&out), b"abc");
    }
}
