//! The trust rule for everything pacxfer keeps on disk. pacxfer runs as root, and what it
//! remembers (indexes that give SHA-256s, pacman-conf answers that name servers, breaker
//! state) steers what it accepts and where it writes, so a cache is only as trustworthy as
//! whoever can change it:
//!
//! - a directory is used only when it, and every directory above it, belongs to root or to
//!   the effective user and cannot be written by group or others (a directory above it may be
//!   world-writable with the sticky bit, like `/tmp`); it is walked one component at a time
//!   without following links and then held open, so it cannot be swapped afterwards;
//! - a file in it is read only when it is a regular file (opened with `O_NOFOLLOW` and
//!   `O_NONBLOCK`, so neither a link nor a FIFO can redirect or hang the read), belongs to
//!   root or the effective user, cannot be written by group or others, and is no larger than
//!   its reader allows;
//! - a file is written under a fresh temporary name (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600)
//!   and renamed into place, so no planted link is ever followed and readers see whole files;
//!   temporary files that an interrupted writer left are removed by the next writer.
//!
//! So root never uses a place another user owns or can write (under pacman 7 the download
//! user's cache is its own, not root's), and a place a user owns is used by that user alone.
//! What this module does not do: judge the content. Readers still validate what they read as
//! strictly as the source it was made from.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

/// The mode of every file pacxfer keeps: private to its owner.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a directory pacxfer creates for itself.
const DIR_MODE: u32 = 0o700;
/// A temporary file of another process older than this is stale even if its process id is
/// in use again.
const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Temporary names: `.tmp.<pid>.<nanos>.<name>`.
const TMP_PREFIX: &str = ".tmp.";

/// Why a place or a file was not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    pub path: PathBuf,
    pub why: String,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} not used: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for Untrusted {}

/// What went wrong with a place: it breaks the rule, or it could not be reached.
#[derive(Debug)]
pub enum PlaceError {
    Untrusted(Untrusted),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::Untrusted(u) => write!(f, "{u}"),
            PlaceError::Io(p, e) => write!(f, "{} not used: {e}", p.display()),
        }
    }
}

/// Opens a file someone else may control (a PKGBUILD's `.SRCINFO`, a build source, a
/// download to share) for reading: never through a symbolic link at its last component (nor,
/// with `dir_too`, at `dir`'s), without blocking on a FIFO, and only a regular file (else an
/// error of kind `InvalidInput`, "not a regular file"). Its owner and contents are the
/// caller's to judge.
pub fn open_foreign(dir: &Path, name: &OsStr, dir_too: bool) -> io::Result<File> {
    let mut dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if dir_too {
        dir_flags |= OFlags::NOFOLLOW;
    }
    let d = rfs::open(dir, dir_flags, Mode::empty())?;
    let fd = rfs::openat(
        &d,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// [`open_foreign`] of a path: its directory is followed, its last component is not.
pub fn open_foreign_path(path: &Path) -> io::Result<File> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    open_foreign(dir, name, false)
}

/// The effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn owner_trusted(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// Root's home directory from the password database (`/root` on every usual system).
pub fn home_of_root() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2] == "0" && f[5].starts_with('/')).then(|| PathBuf::from(f[5]))
    })
}

/// Whom a user id names, for messages.
fn owner_name(uid: u32) -> String {
    // /etc/passwd is world-readable and owned by root; a name is only for people to read.
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next()?;
                (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .map(|n| format!("{n} (uid {uid})"))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Checks one directory of a place's path; `last` is the place itself.
fn check_dir(st: &rfs::Stat, last: bool) -> Result<(), String> {
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err("not a directory".into());
    }
    if !owner_trusted(st.st_uid) {
        return Err(format!(
            "owned by {}, not by root or this user",
            owner_name(st.st_uid)
        ));
    }
    let writable_by_others = st.st_mode & 0o022 != 0;
    let sticky = st.st_mode & 0o1000 != 0;
    if writable_by_others && (last || !sticky) {
        return Err(format!(
            "writable by {} (mode {:o})",
            if st.st_mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

/// Checks a file opened without following links.
fn check_file(st: &rfs::Stat, max: u64) -> Result<(), String> {
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err("not a regular file".into());
    }
    if !owner_trusted(st.st_uid) {
        return Err(format!(
            "owned by {}, not by root or this user",
            owner_name(st.st_uid)
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    if size > max {
        return Err(format!("{size} bytes, more than the {max} allowed"));
    }
    Ok(())
}

/// A directory that passed the trust rule, held open.
#[derive(Debug)]
pub struct TrustedDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno_io(e: rustix::io::Errno) -> io::Error {
    io::Error::from(e)
}

fn is_link_refusal(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR
}

impl TrustedDir {
    /// Opens the place at `path`, creating what is missing of it when `create` is set.
    ///
    /// The path is walked as written, one component at a time from `/`, never resolved
    /// beforehand. A symbolic link on the way is followed only when it belongs to root or
    /// this user, in a directory that already passed the rule (so nobody less trusted could
    /// have placed it); whatever it leads to is then walked and checked the same way.
    pub fn open(path: &Path, create: bool) -> Result<TrustedDir, PlaceError> {
        let io_err = |e: io::Error| PlaceError::Io(path.to_path_buf(), e);
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(io_err)?.join(path)
        };
        let untrusted = |at: &Path, why: String| {
            PlaceError::Untrusted(Untrusted {
                path: at.to_path_buf(),
                why,
            })
        };
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let root = || rfs::open("/", dir_flags, Mode::empty()).map_err(|e| io_err(errno_io(e)));
        let components = |p: &Path| -> Vec<std::ffi::OsString> {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some(OsStr::new("..").to_os_string()),
                    _ => None,
                })
                .collect()
        };
        let mut todo: std::collections::VecDeque<std::ffi::OsString> = components(&abs).into();
        let mut fd = root()?;
        let mut walked = PathBuf::from("/");
        // The directories above the current one, to step back to on `..`.
        let mut stack: Vec<(OwnedFd, PathBuf)> = Vec::new();
        let mut links = 0;
        let st = rfs::fstat(&fd).map_err(|e| io_err(errno_io(e)))?;
        check_dir(&st, todo.is_empty()).map_err(|why| untrusted(&walked, why))?;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                if let Some((up, p)) = stack.pop() {
                    fd = up;
                    walked = p;
                }
                continue;
            }
            let at = walked.join(&part);
            let last = todo.is_empty();
            let next = match rfs::openat(&fd, part.as_os_str(), dir_flags, Mode::empty()) {
                Ok(next) => next,
                Err(e) if e == rustix::io::Errno::NOENT && create => {
                    match rfs::mkdirat(&fd, part.as_os_str(), Mode::from_raw_mode(DIR_MODE)) {
                        Ok(()) => {}
                        Err(e) if e == rustix::io::Errno::EXIST => {}
                        Err(e) => return Err(PlaceError::Io(at, errno_io(e))),
                    }
                    rfs::openat(&fd, part.as_os_str(), dir_flags, Mode::empty())
                        .map_err(|e| PlaceError::Io(at.clone(), errno_io(e)))?
                }
                Err(e) if is_link_refusal(e) => {
                    let st = rfs::statat(&fd, part.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| PlaceError::Io(at.clone(), errno_io(e)))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(untrusted(&at, "not a directory".into()));
                    }
                    if !owner_trusted(st.st_uid) {
                        return Err(untrusted(
                            &at,
                            format!(
                                "a symbolic link owned by {}, not by root or this user",
                                owner_name(st.st_uid)
                            ),
                        ));
                    }
                    links += 1;
                    if links > 40 {
                        return Err(untrusted(&at, "too many symbolic links".into()));
                    }
                    let target = rfs::readlinkat(&fd, part.as_os_str(), Vec::new())
                        .map_err(|e| PlaceError::Io(at.clone(), errno_io(e)))?;
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    for c in components(&target).into_iter().rev() {
                        todo.push_front(c);
                    }
                    if target.is_absolute() {
                        fd = root()?;
                        walked = PathBuf::from("/");
                        stack.clear();
                    }
                    continue;
                }
                Err(e) => return Err(PlaceError::Io(at, errno_io(e))),
            };
            let st = rfs::fstat(&next).map_err(|e| PlaceError::Io(at.clone(), errno_io(e)))?;
            check_dir(&st, last).map_err(|why| untrusted(&at, why))?;
            stack.push((std::mem::replace(&mut fd, next), walked.clone()));
            walked = at;
        }
        // The place itself was checked as the last component (or is `/`).
        let st = rfs::fstat(&fd).map_err(|e| PlaceError::Io(walked.clone(), errno_io(e)))?;
        check_dir(&st, true).map_err(|why| untrusted(&walked, why))?;
        Ok(TrustedDir { fd, path: walked })
    }

    /// Where the place is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` for reading if it passes the rule for files; `Ok(None)` when missing.
    pub fn open_file(&self, name: &str, max: u64) -> Result<Option<File>, PlaceError> {
        let at = self.path.join(name);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if e == rustix::io::Errno::NOENT => return Ok(None),
            Err(e) if e == rustix::io::Errno::LOOP => {
                return Err(PlaceError::Untrusted(Untrusted {
                    path: at,
                    why: "a symbolic link".into(),
                }))
            }
            Err(e) => return Err(PlaceError::Io(at, errno_io(e))),
        };
        let st = rfs::fstat(&fd).map_err(|e| PlaceError::Io(at.clone(), errno_io(e)))?;
        check_file(&st, max).map_err(|why| PlaceError::Untrusted(Untrusted { path: at, why }))?;
        Ok(Some(File::from(fd)))
    }

    /// Reads `name` whole if it passes the rule for files; `Ok(None)` when missing.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, PlaceError> {
        let Some(file) = self.open_file(name, max)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| PlaceError::Io(self.path.join(name), e))?;
        if bytes.len() as u64 > max {
            return Err(PlaceError::Untrusted(Untrusted {
                path: self.path.join(name),
                why: format!("grew past the {max} bytes allowed"),
            }));
        }
        Ok(Some(bytes))
    }

    /// Writes `bytes` as `name` (mode 0600) through a temporary file and a rename, after
    /// removing stale temporary files.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_with(name, |file| file.write_all(bytes))
    }

    /// Like [`TrustedDir::write`], with the contents written by `fill` into the new file.
    pub fn write_with(
        &self,
        name: &str,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<()> {
        self.sweep();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = format!("{TMP_PREFIX}{}.{nanos}.{name}", std::process::id());
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let fd = rfs::openat(
            &self.fd,
            tmp.as_str(),
            flags,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map_err(errno_io)?;
        let result = (|| {
            rfs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE)).map_err(errno_io)?;
            let mut file = File::from(fd);
            fill(&mut file)?;
            drop(file);
            rfs::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(errno_io)
        })();
        if result.is_err() {
            let _ = rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    /// Appends `line` to `name` (made 0600 when missing) in one write, so that lines of
    /// processes appending at once never mix; a file that fails the rule for files is left
    /// alone (an error), and one that would grow past `max` says so with `FileTooLarge`.
    pub fn append(&self, name: &str, line: &[u8], max: u64) -> io::Result<()> {
        let flags = OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let fd =
            rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE)).map_err(errno_io)?;
        let st = rfs::fstat(&fd).map_err(errno_io)?;
        check_file(&st, u64::MAX)
            .map_err(|why| io::Error::new(io::ErrorKind::PermissionDenied, why))?;
        let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        if size.saturating_add(line.len() as u64) > max {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "full"));
        }
        let mut file = File::from(fd);
        file.write_all(line)
    }

    /// Renames `from` to `to` inside the place.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rfs::renameat(&self.fd, from, &self.fd, to).map_err(errno_io)
    }

    /// Whether a file can be created here now (tried with a fresh name, removed at once).
    pub fn writable(&self) -> bool {
        // Unique per call: threads of one process probe at the same time.
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = format!("{TMP_PREFIX}{}.probe{n}", std::process::id());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        match rfs::openat(
            &self.fd,
            probe.as_str(),
            flags,
            Mode::from_raw_mode(FILE_MODE),
        ) {
            Ok(_) => {
                let _ = rfs::unlinkat(&self.fd, probe.as_str(), AtFlags::empty());
                true
            }
            Err(_) => false,
        }
    }

    /// Removes `name` (a link is removed, never followed).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::NOENT => Ok(()),
            Err(e) => Err(errno_io(e)),
        }
    }

    /// Removes the files whose names start with `prefix` and that were last changed more than
    /// `age` ago (kept partial downloads nobody came back for).
    pub fn remove_older(&self, prefix: &str, age: Duration) {
        let Ok(mut dir) = rfs::Dir::read_from(&self.fd) else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut old = Vec::new();
        while let Some(Ok(entry)) = dir.read() {
            if !entry.file_name().to_bytes().starts_with(prefix.as_bytes()) {
                continue;
            }
            let Ok(st) = rfs::statat(&self.fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if now - st.st_mtime > age.as_secs() as i64 {
                old.push(entry.file_name().to_owned());
            }
        }
        for name in old {
            let _ = rfs::unlinkat(&self.fd, name.as_c_str(), AtFlags::empty());
        }
    }

    /// Removes temporary files whose writer is gone (its process no longer runs, or the
    /// file is older than an hour).
    pub fn sweep(&self) {
        let Ok(mut dir) = rfs::Dir::read_from(&self.fd) else {
            return;
        };
        let me = std::process::id();
        let mut stale = Vec::new();
        while let Some(Ok(entry)) = dir.read() {
            let name = entry.file_name().to_bytes();
            let Some(rest) = name.strip_prefix(TMP_PREFIX.as_bytes()) else {
                continue;
            };
            let pid = rest
                .split(|b| *b == b'.')
                .next()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.parse::<u32>().ok());
            let Some(pid) = pid else { continue };
            if pid == me {
                continue;
            }
            let Ok(st) = rfs::statat(&self.fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let age = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64 - st.st_mtime)
                .unwrap_or(0);
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            if gone || age > STALE_AFTER.as_secs() as i64 {
                stale.push(entry.file_name().to_owned());
            }
        }
        for name in stale {
            let _ = rfs::unlinkat(&self.fd, name.as_c_str(), AtFlags::empty());
        }
    }
}

impl AsFd for TrustedDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether a name is one of the temporary files of [`TrustedDir::write`].
pub fn is_temporary(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TMP_PREFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn places_are_created_private_and_used() {
        let d = tempfile::tempdir().expect("tmp");
        let place = d.path().join("a/b");
        let dir = TrustedDir::open(&place, true).expect("trusted");
        dir.write("x", b"hello").expect("write");
        assert_eq!(dir.read("x", 10).expect("read"), Some(b"hello".to_vec()));
        assert_eq!(dir.read("missing", 10).expect("read"), None);
        let meta = std::fs::metadata(place.join("x")).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, FILE_MODE);
        let meta = std::fs::metadata(&place).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, DIR_MODE);
        // Larger than allowed.
        assert!(matches!(dir.read("x", 4), Err(PlaceError::Untrusted(_))));
    }

    #[test]
    fn writable_places_links_and_fifos_are_refused() {
        let d = tempfile::tempdir().expect("tmp");
        let open = d.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        chmod(&open, 0o777);
        assert!(matches!(
            TrustedDir::open(&open, false),
            Err(PlaceError::Untrusted(_))
        ));
        // Below a world-writable directory without the sticky bit: refused too.
        assert!(matches!(
            TrustedDir::open(&open.join("sub"), true),
            Err(PlaceError::Untrusted(_))
        ));
        assert!(!open.join("sub").exists(), "nothing created below it");
        // With the sticky bit, the directory below may be used.
        chmod(&open, 0o1777);
        assert!(TrustedDir::open(&open.join("sub"), true).is_ok());

        let good = d.path().join("good");
        let dir = TrustedDir::open(&good, true).expect("trusted");
        let target = d.path().join("target");
        std::fs::write(&target, b"secret").expect("write");
        std::os::unix::fs::symlink(&target, good.join("link")).expect("symlink");
        assert!(matches!(
            dir.read("link", 100),
            Err(PlaceError::Untrusted(_))
        ));
        rustix::fs::mkfifoat(&dir.fd, "fifo", Mode::from_raw_mode(0o600)).expect("mkfifo");
        assert!(matches!(
            dir.read("fifo", 100),
            Err(PlaceError::Untrusted(_))
        ));
        std::fs::write(good.join("loose"), b"x").expect("write");
        chmod(&good.join("loose"), 0o666);
        assert!(matches!(
            dir.read("loose", 100),
            Err(PlaceError::Untrusted(_))
        ));
        // Writing over a planted link replaces the link, never its target.
        dir.write("link", b"new").expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"secret");
        assert_eq!(dir.read("link", 100).expect("read"), Some(b"new".to_vec()));
    }

    #[test]
    fn stale_temporary_files_are_swept() {
        let d = tempfile::tempdir().expect("tmp");
        let dir = TrustedDir::open(d.path(), false).expect("trusted");
        // A process id far above any the kernel hands out.
        let dead = d.path().join(format!("{TMP_PREFIX}999999999.1.core.idx"));
        std::fs::write(&dead, b"partial").expect("write");
        let live = d
            .path()
            .join(format!("{TMP_PREFIX}{}.1.core.idx", std::process::id()));
        std::fs::write(&live, b"mine").expect("write");
        dir.write("y", b"1").expect("write");
        assert!(!dead.exists(), "a dead writer's file is removed");
        assert!(live.exists(), "a live writer's file is kept");
    }
}
