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
use crate::makepkg::caller;
use crate::makepkg::srcinfo;
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
    for dir in &pkgdirs {
        let info = match caller::srcinfo_in(dir) {
            Ok(Some(info)) => info,
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
            let Some((path, file)) = [Some(dir.as_path()), srcdest.as_deref()]
                .into_iter()
                .flatten()
                .find_map(|d| {
                    // Neither the directory nor the file through a link: a user who owns a
                    // PKGBUILD directory cannot make it a way to another file.
                    crate::cache::trust::open_foreign(d, std::ffi::OsStr::new(&entry.name), true)
                        .ok()
                        .map(|f| (d.join(&entry.name), f))
                })
            else {
                tally.absent += 1;
                progress.note(&format!("{shown}: skipped, not downloaded here"));
                continue;
            };
            // Added while hashed: what the node got is what is judged, and only linked when
            // it matches (an unlinked addition goes with the node's garbage collection).
            let added = crate::ipfs::seed::add_hashed(
                sharer.rpc(),
                file,
                &entry.name,
                &entry.sums.shared_algos(),
            );
            let (cid, all, len) = match added {
                Ok(added) => added,
                Err(e @ (RpcError::Unreachable { .. } | RpcError::Timeout { .. })) => {
                    bail!("{e}")
                }
                Err(e) => {
                    tally.failed += 1;
                    progress.warn(&format!("{}: not seeded: {e}", path.display()));
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
            let Some(sha256) = crate::makepkg::sums::sha256_of(&all) else {
                continue;
            };
            match sharer.link_source(&cid, &sha256, &all) {
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
