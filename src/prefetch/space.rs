//! Room on the disk: what a batch still has to write, pacman's rule for the room a download
//! needs (checked before the first byte), and what a file that failed gives back once the disk
//! is full.

use std::path::Path;

use super::Job;
use crate::transfer::output::Output;
use crate::ui::progress::size;

/// pacman's cushion (libalpm's `_alpm_check_downloadspace`): besides the files, a download
/// must leave free about 5 % of the filesystem, at most 20 MiB.
const CUSHION_SHARE: u64 = 20;
const CUSHION_MAX: u64 = 20 << 20;

/// How a batch fits on its CacheDir's filesystem, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// What the files will take, each rounded up to whole blocks.
    pub files: u64,
    /// pacman's cushion on this filesystem.
    pub cushion: u64,
    /// What this user may still take (`f_bavail`, without the blocks reserved for root).
    pub free: u64,
}

impl Room {
    /// Whether the files and the cushion fit.
    pub fn fits(&self) -> bool {
        self.files.saturating_add(self.cushion) <= self.free
    }
}

/// What the batch still has to write: for each package to fetch, its size less what a `.part`
/// of it in its CacheDir already holds (that is resumed, as pacman counts it), and a `.sig` for
/// each signature to fetch (its size is in no database: counted as one block, as each
/// signature takes, a few hundred bytes).
fn to_write(jobs: &[Job]) -> (Vec<u64>, u64) {
    let files = jobs
        .iter()
        .filter(|j| j.plan.is_some())
        .map(|j| {
            let whole = j.entry.csize.unwrap_or(0);
            let part = j.dir.join(format!("{}.part", j.filename));
            let kept = std::fs::symlink_metadata(&part)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len());
            // A `.part` longer than the file is wrong and starts over from byte 0.
            if kept <= whole {
                whole - kept
            } else {
                whole
            }
        })
        .collect();
    let sigs = jobs.iter().filter(|j| j.sig.is_some()).count() as u64;
    (files, sigs)
}

/// pacman's rule for the room a download needs (libalpm's `_alpm_check_downloadspace` and
/// `check_mountpoint`): every file rounded up to whole blocks of `block` bytes, plus a cushion
/// of 5 % of the filesystem's `blocks` + 1 block, at most 20 MiB + 1 block, against the
/// `avail` blocks an unprivileged user may still take.
pub fn room(files: &[u64], sigs: u64, block: u64, blocks: u64, avail: u64) -> Room {
    let block = block.max(1);
    let file_blocks: u64 = files
        .iter()
        .map(|b| b.div_ceil(block))
        .fold(sigs, u64::saturating_add);
    let cushion = (blocks / CUSHION_SHARE + 1).min(CUSHION_MAX / block + 1);
    Room {
        files: file_blocks.saturating_mul(block),
        cushion: cushion.saturating_mul(block),
        free: avail.saturating_mul(block),
    }
}

/// The room `jobs` need on the filesystem of their CacheDir `dir`, and what it has.
pub fn check_space(dir: &Path, jobs: &[Job]) -> std::io::Result<Room> {
    let fs = rustix::fs::statvfs(dir)?;
    // f_blocks and f_bavail count fragments of f_frsize bytes (the same as f_bsize on Linux's
    // filesystems).
    let block = if fs.f_frsize > 0 {
        fs.f_frsize
    } else {
        fs.f_bsize
    };
    let (files, sigs) = to_write(jobs);
    Ok(room(&files, sigs, block, fs.f_blocks, fs.f_bavail))
}

/// The error line for a batch that does not fit.
pub fn no_room(dir: &Path, room: &Room) -> String {
    format!(
        "not enough free space in pacman's CacheDir {}: the download needs {} ({} of files and \
         the {} pacman keeps free), {} is free; free some space there (paccache -r, pacman -Sc) \
         or name fewer packages, then prefetch again",
        dir.display(),
        size(room.files.saturating_add(room.cushion)),
        size(room.files),
        size(room.cushion),
        size(room.free)
    )
}

/// Gives back the space this run took for a file that did not arrive, `out` (whose lock is
/// held) being its `.part`: a `.part` this run made, or whose earlier bytes it found wrong and
/// replaced, is removed (nothing in it can be completed from what an earlier run had); one that
/// still holds an earlier run's bytes is cut back to them, so the filesystem is left as the run
/// found it and the next run, or pacman, still resumes from there. Says what it did.
pub fn give_back(out: &Output) -> String {
    let path = out.path();
    let earlier = out.found();
    if earlier == 0 {
        return match std::fs::remove_file(path) {
            Ok(()) => format!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} is gone", path.display())
            }
            Err(e) => format!("could not remove {}: {e}", path.display()),
        };
    }
    if out.len() <= earlier {
        return format!("{} kept as an earlier run left it", path.display());
    }
    match cut_back(path, earlier) {
        Ok(()) => format!(
            "{} cut back to the {} an earlier run left",
            path.display(),
            size(earlier)
        ),
        Err(e) => format!("could not cut {} back: {e}", path.display()),
    }
}

/// Shortens the regular file `path` to `len` bytes, never through a link.
fn cut_back(path: &Path, len: u64) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.set_len(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entry::Entry;
    use crate::transfer::plan::Plan;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn room_rounds_each_file_up_and_keeps_pacmans_cushion() {
        // A 2 MiB filesystem of 4 KiB blocks: 512 blocks, a cushion of 512/20 + 1 = 26.
        let r = room(&[1, 4 * KIB, 4 * KIB + 1], 2, 4 * KIB, 512, 512);
        assert_eq!(r.files, (1 + 1 + 2 + 2) * 4 * KIB);
        assert_eq!(r.cushion, 26 * 4 * KIB);
        assert_eq!(r.free, 2 * MIB);
        assert!(r.fits());
        // On a large filesystem the cushion is 20 MiB and a block.
        let big = room(&[], 0, 4 * KIB, 1 << 30, 1 << 30);
        assert_eq!(big.cushion, 20 * MIB + 4 * KIB);
        // Exactly enough fits; a block less does not.
        let exact = room(&[10 * 4 * KIB], 0, 4 * KIB, 512, 10 + 26);
        assert!(exact.fits());
        let short = room(&[10 * 4 * KIB], 0, 4 * KIB, 512, 10 + 25);
        assert!(!short.fits());
        // Nonsense from the filesystem is no panic.
        assert!(!room(&[u64::MAX, u64::MAX], u64::MAX, 0, u64::MAX, 0).fits());
    }

    #[test]
    fn the_room_error_says_what_where_and_what_to_do() {
        let r = room(&[3 * MIB], 0, 4 * KIB, 512, 300);
        let line = no_room(Path::new("/var/cache/pacman/pkg"), &r);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("not enough free space in pacman's CacheDir /var/cache/pacman/pkg"),
            "{line}"
        );
        assert!(line.contains("is free"), "{line}");
        assert!(line.contains("paccache -r"), "{line}");
    }

    fn job(dir: &Path, name: &str, size: u64, sig: bool) -> Job {
        let entry = Entry {
            repo: "core".into(),
            filename: name.into(),
            name: "x".into(),
            version: "1-1".into(),
            arch: "any".into(),
            sha256: Some([0; 32]),
            csize: Some(size),
            pgpsig: None,
            cid: None,
        };
        let plan = || Plan {
            sources: Vec::new(),
            notes: Vec::new(),
        };
        Job {
            filename: name.into(),
            entry,
            plan: Some(plan()),
            sig: sig.then(plan),
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_part_in_the_cache_counts_as_already_written() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("a.pkg.part"), vec![0u8; 1000]).expect("part");
        std::fs::write(d.path().join("b.pkg.part"), vec![0u8; 5000]).expect("long part");
        let jobs = [
            job(d.path(), "a.pkg", 3000, true),
            // Longer than the file: it starts over.
            job(d.path(), "b.pkg", 4000, false),
            job(d.path(), "c.pkg", 700, false),
        ];
        assert_eq!(to_write(&jobs), (vec![2000, 4000, 700], 1));
    }

    fn output_holding(path: &Path, bytes: &[u8]) -> Output {
        if !bytes.is_empty() {
            std::fs::write(path, bytes).expect("earlier part");
        }
        Output::open(path, || {}).expect("open output")
    }

    #[test]
    fn giving_back_removes_what_this_run_wrote_and_keeps_an_earlier_prefix() {
        let d = tempfile::tempdir().expect("tempdir");
        // Made by this run: removed.
        let new = d.path().join("new.part");
        let mut out = output_holding(&new, b"");
        out.append(b"this run").expect("append");
        assert!(give_back(&out).starts_with("removed "));
        assert!(!new.exists());
        drop(out);

        // An earlier run's prefix, extended by this run: cut back to it, still locked.
        let kept = d.path().join("kept.part");
        let mut out = output_holding(&kept, b"earlier");
        out.append(b" and this run").expect("append");
        let said = give_back(&out);
        assert!(said.contains("cut back"), "{said}");
        assert_eq!(std::fs::read(&kept).expect("read"), b"earlier");
        drop(out);

        // An earlier run's prefix that this run found wrong and replaced: removed.
        let wrong = d.path().join("wrong.part");
        let mut out = output_holding(&wrong, b"wrong bytes");
        out.truncate().expect("truncate");
        out.append(b"right start").expect("append");
        assert!(give_back(&out).starts_with("removed "));
        assert!(!wrong.exists());
        drop(out);

        // An earlier run's prefix this run added nothing to: left alone.
        let same = d.path().join("same.part");
        let out = output_holding(&same, b"earlier");
        assert!(give_back(&out).contains("kept as an earlier run left it"));
        assert_eq!(std::fs::read(&same).expect("read"), b"earlier");
    }

    #[test]
    fn only_a_full_filesystem_or_quota_counts_as_no_space() {
        use crate::transfer::download::is_no_space;
        use std::io::{Error, ErrorKind};
        assert!(is_no_space(&Error::from_raw_os_error(
            rustix::io::Errno::NOSPC.raw_os_error()
        )));
        assert!(is_no_space(&Error::from_raw_os_error(
            rustix::io::Errno::DQUOT.raw_os_error()
        )));
        assert!(!is_no_space(&Error::from_raw_os_error(
            rustix::io::Errno::IO.raw_os_error()
        )));
        assert!(!is_no_space(&Error::from(ErrorKind::PermissionDenied)));
    }
}
