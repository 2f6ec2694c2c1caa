//! `pacxfer seed [FILE...]`: share package files this machine holds through its own IPFS
//! node. With no argument, every package file in pacman's CacheDir; with `--stdin`, the
//! packages whose names an ALPM hook passes (`NeedsTargets`). A file is shared only when a
//! sync database lists its file name with its exact SHA-256 and size; the rest are skipped
//! and counted. The command of the seeding engine `ipfs::seed`. A file the node already holds is not read at all.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::Session;
use crate::db::entry::Query;
use crate::ipfs::rpc::RpcError;
use crate::ipfs::seed::Outcome;
use crate::transfer::verify::Expected;
use crate::ui::progress::{self, Progress};

/// What `seed` was asked to share.
pub enum Which<'a> {
    /// These files.
    Files(&'a [PathBuf]),
    /// The packages named on standard input, one per line, from pacman's CacheDir.
    StdinNames,
    /// Every package file in pacman's CacheDir.
    CacheDir,
    /// The build sources in these PKGBUILD directories (`seed --sources`).
    Sources(&'a [PathBuf]),
}

/// Counts for the summary line.
#[derive(Debug, Default)]
struct Tally {
    added: u64,
    added_bytes: u64,
    present: u64,
    unlisted: u64,
    differs: u64,
    missing: u64,
    failed: u64,
}

/// Whether a file name is a package (not a signature, a partial download or anything else).
fn is_package(name: &str) -> bool {
    name.contains(".pkg.tar") && !name.ends_with(".sig") && !name.ends_with(".part")
}

/// The package files in pacman's cache directories.
fn cache_files(session: &Session, progress: &Progress) -> Result<Vec<PathBuf>> {
    let dirs = session.pacman_conf.cache_dirs().map_err(|e| {
        anyhow::anyhow!("{e}; give the files to seed, or fix pacman.conf's CacheDir")
    })?;
    let mut files = Vec::new();
    for dir in dirs {
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) => {
                progress.warn(&format!("cannot list {}: {e}", dir.display()));
                continue;
            }
        };
        let mut here: Vec<PathBuf> = read
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.file_name().to_str().is_some_and(is_package))
            .map(|e| e.path())
            .collect();
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

/// The longest line of standard input taken as a package name (pacman's names are at most
/// 255 bytes).
const NAME_LINE_MAX: usize = 4096;

/// The most package names taken from standard input.
const NAMES_MAX: usize = 100_000;

/// The cache files of the packages named on standard input.
fn named_files(session: &Session, progress: &Progress) -> Result<Vec<PathBuf>> {
    let dirs = session.pacman_conf.cache_dirs().unwrap_or_default();
    let mut files = Vec::new();
    // A hook passes one package name per line: a line longer than any name is skipped
    // unread (never held whole), and the input ends after as many lines as any upgrade has.
    let lines = crate::ui::answer::Lines {
        max_line: NAME_LINE_MAX,
        max_lines: NAMES_MAX,
        skip_long: true,
    };
    let stdin = std::io::stdin();
    let mut names: Vec<String> = Vec::new();
    let mut named = std::collections::HashSet::new();
    let read = lines.read(&mut stdin.lock(), |line| {
        if let Ok(name) = std::str::from_utf8(line) {
            let name = name.trim();
            if crate::pacman::names::is_plain_filename(name) && named.insert(name.to_string()) {
                names.push(name.to_string());
            }
        }
        Ok::<(), crate::ui::answer::AnswerError>(())
    });
    match read {
        Ok(seen) if seen.too_long > 0 => progress.warn(&format!(
            "skipped {} line{} of standard input longer than {NAME_LINE_MAX} bytes (one package name per line)",
            seen.too_long,
            if seen.too_long == 1 { "" } else { "s" }
        )),
        Ok(_) => {}
        Err(e) => bail!("standard input: {e} (one package name per line, as an ALPM hook's NeedsTargets passes them)"),
    }
    let mut listed = std::collections::HashSet::new();
    for name in &names {
        let found = session
            .find(Query::Name(name), &[], progress)
            .unwrap_or_default();
        for entry in found {
            if let Some(path) = dirs
                .iter()
                .map(|d| d.join(&entry.filename))
                .find(|p| p.is_file())
            {
                if listed.insert(path.clone()) {
                    files.push(path);
                }
            }
        }
    }
    Ok(files)
}

/// Whether an error means the node is not there at all (then nothing else can work).
fn node_gone(e: &RpcError) -> bool {
    matches!(e, RpcError::Unreachable { .. } | RpcError::Timeout { .. })
}

/// Runs `seed`. `if_running`: a node that cannot be reached is a note and exit 0 (for hooks).
pub fn seed(session: &Session, which: Which<'_>, if_running: bool) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let sharer = session
        .config
        .share
        .sharer(None)
        .map_err(|e| anyhow::anyhow!(e))?;
    // One question first, so that a node that is not running is one line, not one per file.
    if let Err(e) = sharer.seeded(&[0u8; 32]) {
        if if_running && node_gone(&e) {
            progress.note(&format!("{e}; nothing seeded"));
            return Ok(ExitCode::SUCCESS);
        }
        bail!("{e}");
    }
    let files = match which {
        Which::Sources(dirs) => {
            return super::seed_sources::seed_sources(session, &sharer, dirs, &progress)
        }
        Which::Files(f) => f.to_vec(),
        Which::StdinNames => named_files(session, &progress)?,
        Which::CacheDir => cache_files(session, &progress)?,
    };
    let mut tally = Tally::default();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let shown = path.display().to_string();
        let entries = if crate::pacman::names::is_plain_filename(&name) {
            session
                .find(Query::Filename(&name), &[], &progress)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let expected: Vec<Expected> = entries
            .iter()
            .filter_map(|e| e.verifiable())
            .map(|(sha256, size)| Expected { sha256, size })
            .collect();
        if expected.is_empty() {
            tally.unlisted += 1;
            progress.note(&format!("{shown}: skipped, no sync database lists it"));
            continue;
        }
        let size_now = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) | Err(_) => {
                tally.missing += 1;
                progress.warn(&format!("{shown}: skipped, not a readable regular file"));
                continue;
            }
        };
        // A copy the node already holds needs no reading of the file at all.
        let mut present = None;
        for x in expected.iter().filter(|x| x.size == size_now) {
            match sharer.seeded(&x.sha256) {
                Ok(Some(s)) if s.size == x.size => {
                    present = Some(s.cid);
                    break;
                }
                Ok(_) => {}
                Err(e) if node_gone(&e) => bail!("{e}"),
                Err(e) => {
                    progress.warn(&format!("{shown}: {e}"));
                }
            }
        }
        if let Some(cid) = present {
            tally.present += 1;
            progress.note(&format!("{shown}: already in the node ({cid})"));
            continue;
        }
        let (sha256, size) = match crate::ipfs::seed::hash_file(path) {
            Ok(h) => h,
            Err(e) => {
                tally.missing += 1;
                progress.warn(&format!("{shown}: skipped, cannot read it: {e}"));
                continue;
            }
        };
        if !expected
            .iter()
            .any(|x| x.sha256 == sha256 && x.size == size)
        {
            tally.differs += 1;
            progress.warn(&format!(
                "{shown}: skipped, its SHA-256 is not the one the database lists (a damaged or older file?)"
            ));
            continue;
        }
        match sharer.seed(path, &sha256, size) {
            Ok(Outcome::Added { cid }) => {
                tally.added += 1;
                tally.added_bytes += size;
                progress.note(&format!("{shown}: seeded as {cid}"));
            }
            Ok(Outcome::Present { cid }) => {
                tally.present += 1;
                progress.note(&format!("{shown}: already in the node ({cid})"));
            }
            Err(e) if node_gone(&e) => bail!("{e}"),
            Err(e) => {
                tally.failed += 1;
                progress.warn(&format!("{shown}: not seeded: {e}"));
            }
        }
    }
    let skipped = tally.unlisted + tally.differs + tally.missing;
    // Publishing can take a minute on the internet's DHT: the seed hook must not hold up
    // pacman's transaction for it.
    if session.config.share.lan && tally.added + tally.present > 0 {
        super::announce::start_in_background(session, &progress);
    }
    progress.info(&format!(
        "seed: {} added ({}), {} already in the node, {} skipped ({} not in any sync database, {} differing from it, {} unreadable){}; node API {}",
        tally.added,
        progress::size(tally.added_bytes),
        tally.present,
        skipped,
        tally.unlisted,
        tally.differs,
        tally.missing,
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
