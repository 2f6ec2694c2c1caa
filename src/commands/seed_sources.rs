//! `pacxfer seed --sources [DIR...]`: share the build sources a machine holds. Each DIR is a
//! PKGBUILD directory (with `.SRCINFO`) or a directory of them (an AUR clone tree); each
//! source its PKGBUILD fetches from the network and pins by a strong sum is looked for there
//! and in `$SRCDEST`, hashed, and shared only when it matches: linked by SHA-256 like a
//! package and under `/pacxfer/sources/<algo>/<hex>` for SHA-512 and BLAKE2b.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::Session;
use crate::ipfs::rpc::RpcError;
use crate::ipfs::seed::{Outcome, Sharer};
use crate::makepkg::caller::{self, Place};
use crate::makepkg::srcinfo;
use crate::makepkg::sums::{self, Algo};
use crate::ui::progress::{self, Progress};

/// Counts for the summary line.
#[derive(Debug, Default)]
struct Tally {
    added: u64,
    added_bytes: u64,
    present: u64,
    unpinned: u64,
    differs: u64,
    absent: u64,
    failed: u64,
}

/// A directory only this process writes in, for private copies; removed when dropped.
struct Private(PathBuf);

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Private {
    fn new() -> std::io::Result<Private> {
        use std::os::unix::fs::DirBuilderExt;
        for n in 0..100 {
            let dir = std::env::temp_dir().join(format!("pacxfer-seed-{}-{n}", std::process::id()));
            // Made here (never one that was there), 0700.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Private(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no private directory could be made"))
    }
}

/// A source file opened once (never through a link, never a FIFO) and hashed: the file to
/// add, its sums and length. When it belongs to another user than this process's (root
/// reading a builder's directory), what was hashed is copied, in the same pass, to a private
/// file, and that copy is what is added: its owner cannot change the bytes, or swap the file,
/// between the hash and the add.
fn hashed(
    path: &std::path::Path,
    algos: &[Algo],
    private: &mut Option<Private>,
) -> std::io::Result<(std::fs::File, Vec<sums::Sum>, u64)> {
    use std::io::Seek;
    use std::os::unix::fs::MetadataExt;
    let file = crate::ipfs::seed::open_regular(path)?;
    if file.metadata()?.uid() == rustix::process::geteuid().as_raw() {
        let (all, len) = sums::hash_reader(&file, algos, None)?;
        (&file).seek(std::io::SeekFrom::Start(0))?;
        return Ok((file, all, len));
    }
    if private.is_none() {
        *private = Some(Private::new()?);
    }
    let dir = private.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let copy_path = dir.join("source");
    let mut copy = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&copy_path)?;
    let (all, len) = sums::hash_reader(&file, algos, Some(&mut copy))?;
    copy.seek(std::io::SeekFrom::Start(0))?;
    // The name goes; the open file stays readable until it is added.
    std::fs::remove_file(&copy_path)?;
    Ok((copy, all, len))
}

/// Runs `seed --sources`.
pub(super) fn seed_sources(
    session: &Session,
    sharer: &Sharer,
    dirs: &[PathBuf],
    progress: &Progress,
) -> Result<ExitCode> {
    let given: Vec<PathBuf> = if dirs.is_empty() {
        vec![std::env::current_dir()?]
    } else {
        dirs.to_vec()
    };
    let pkgdirs = caller::pkgbuild_dirs(&given);
    if pkgdirs.is_empty() {
        bail!(
            "no PKGBUILD directory in {}: give directories holding a .SRCINFO (run `makepkg \
             --printsrcinfo > .SRCINFO` there) or directories of them",
            given
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let srcdest = std::env::var_os("SRCDEST")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let mut tally = Tally::default();
    let mut private: Option<Private> = None;
    for dir in &pkgdirs {
        let place = Place {
            dir: dir.clone(),
            buildfile: "PKGBUILD".into(),
        };
        let info = match caller::srcinfo_of(&place, caller::Reading::AnyAge) {
            Ok(Some((text, _))) => srcinfo::parse(&text),
            Ok(None) => continue,
            Err(why) => {
                progress.warn(&format!("{why}; its sources are skipped"));
                continue;
            }
        };
        for entry in info.sources.iter().filter(|e| e.protocol != "local") {
            let shown = format!("{} ({})", entry.name, dir.display());
            if !entry.sums.pins_content() || !srcinfo::fetched_by_agent(&entry.protocol) {
                tally.unpinned += 1;
                progress.note(&format!(
                    "{shown}: skipped, not pinned by sha256, sha512, b2, sha224 or sha384"
                ));
                continue;
            }
            if !crate::pacman::names::is_plain_filename(&entry.name) {
                tally.absent += 1;
                progress.warn(&format!(
                    "{shown}: skipped, its file name is not one path component"
                ));
                continue;
            }
            let Some(path) = [Some(dir.as_path()), srcdest.as_deref()]
                .into_iter()
                .flatten()
                .map(|d| d.join(&entry.name))
                .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            else {
                tally.absent += 1;
                progress.note(&format!("{shown}: skipped, not downloaded here"));
                continue;
            };
            let mut algos: Vec<Algo> = entry.sums.0.iter().map(|s| s.algo).collect();
            algos.extend(sums::SHARED);
            let (file, all, len) = match hashed(&path, &algos, &mut private) {
                Ok(h) => h,
                Err(e) => {
                    tally.absent += 1;
                    progress.warn(&format!("{}: skipped, cannot read it: {e}", path.display()));
                    continue;
                }
            };
            if !entry.sums.matched_by(&all) {
                tally.differs += 1;
                progress.warn(&format!(
                    "{}: skipped, it does not match the sums its PKGBUILD pins (an older download?)",
                    path.display()
                ));
                continue;
            }
            let Some(sha256) = all
                .iter()
                .find(|s| s.algo == Algo::Sha256)
                .and_then(|s| <[u8; 32]>::try_from(s.digest.as_slice()).ok())
            else {
                continue;
            };
            match sharer.seed_source(file, &sha256, &all) {
                Ok(Outcome::Added { cid }) => {
                    tally.added += 1;
                    tally.added_bytes += len;
                    progress.note(&format!("{}: seeded as {cid}", path.display()));
                }
                Ok(Outcome::Present { cid }) => {
                    tally.present += 1;
                    progress.note(&format!("{}: already in the node ({cid})", path.display()));
                }
                Err(e @ (RpcError::Unreachable { .. } | RpcError::Timeout { .. })) => {
                    bail!("{e}")
                }
                Err(e) => {
                    tally.failed += 1;
                    progress.warn(&format!("{}: not seeded: {e}", path.display()));
                }
            }
        }
    }
    if session.config.share.lan && tally.added + tally.present > 0 {
        super::announce::start_in_background(session, progress);
    }
    progress.info(&format!(
        "seed: {} sources added ({}), {} already in the node, {} skipped ({} not pinned by a strong sum, {} not downloaded, {} differing from their sums){}; node API {}",
        tally.added,
        progress::size(tally.added_bytes),
        tally.present,
        tally.unpinned + tally.absent + tally.differs,
        tally.unpinned,
        tally.absent,
        tally.differs,
        if tally.failed > 0 {
            format!(", {} failed", tally.failed)
        } else {
            String::new()
        },
        sharer.endpoint()
    ));
    Ok(if tally.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
