//! Prefetching the next upgrade into pacman's cache, without touching pacman's own sync
//! databases (a `pacman -Sy` behind the user's back is how partial upgrades happen).
//!
//! 1. A private copy of every repository's database (and its `.sig`) is kept in pacxfer's
//!    cache directory (`<cache>/prefetch/sync/`), refreshed through pacxfer's own download
//!    path from the repository's Server lines in order, beside a link to pacman's own local
//!    database (`<cache>/prefetch/local`), as `checkupdates` does.
//! 2. `pacman -Sp --dbpath <that copy>` (with `-u`, or the packages named) says what pacman
//!    would download: pacman itself resolves versions, IgnorePkg, replacements and missing
//!    dependencies, and checks the databases' signatures under pacman.conf's SigLevel. It
//!    needs no root and changes nothing.
//! 3. Each file not already in a CacheDir with the database's SHA-256 is planned like a single
//!    call (node's seeded copy, gateway templates, the repository's mirrors) and the plans run
//!    in a bounded pool of threads into the first writable CacheDir, through `<file>.part`
//!    renamed only once verified; a package's `.sig` follows it when the database does not
//!    embed the signature.
//! 4. Before the first byte, the CacheDir's filesystem must have room for the whole batch with
//!    pacman's own cushion ([`check_space`]). When it fills up anyway (another writer, a `.part`
//!    whose earlier bytes turn out wrong), no further file is started and each file that
//!    failed gives back what this run wrote of it ([`give_back`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;
use crate::db::entry::Entry;
use crate::db::syncdb::{self, SyncDb};
use crate::transfer::download::{self, Context, Delivered, Undelivered};
use crate::transfer::output::Output;
use crate::transfer::plan::{self, Plan};
use crate::ui::progress::{size, Batch, Progress};

/// The largest database and database signature taken (pacman's own limits).
const DB_CAP: u64 = 128 << 20;
const SIG_CAP: u64 = 16 << 10;

/// The most of `pacman -Sp`'s output read (a line per package: far more than any upgrade).
const PACMAN_OUTPUT_MAX: u64 = 32 << 20;

/// How long `pacman -Sp` may take.
const PACMAN_LIMIT: Duration = Duration::from_secs(120);

/// One file to fetch.
#[derive(Debug)]
pub struct Job {
    pub filename: String,
    pub entry: Entry,
    /// The package's plan; `None` when only its `.sig` is missing.
    pub plan: Option<Plan>,
    /// The plan for the package's `.sig`, when pacman will want one that the database does
    /// not embed.
    pub sig: Option<Plan>,
    /// Where it goes.
    pub dir: PathBuf,
}

/// What became of one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub filename: String,
    pub result: Result<Fetched, String>,
    /// The file or its `.sig` could not be written for lack of space (or quota), or was not
    /// started because another file of the batch had run out of it.
    pub no_space: bool,
}

/// A file that arrived.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// `this node`, `IPFS network`, `mirror`, ...; `None` when it was there already and only
    /// its signature was fetched.
    pub source: Option<&'static str>,
    pub bytes: u64,
    /// What happened to its `.sig`, when it has one to fetch: `Err` when it could not be had.
    pub sig: Option<Result<(), String>>,
}

/// Where a delivery came from, in words for the summary.
pub fn source_kind(plan: &Plan, done: &Delivered) -> &'static str {
    match crate::transfer::log::origin(plan, done) {
        "node" => "this node",
        "network" => "the IPFS network",
        "view" => "a cache view",
        "db-signature" => "the database",
        "partial" => "an earlier try",
        _ => "mirror",
    }
}

/// The private copy of the sync databases.
pub struct Private {
    /// `<cache>/prefetch`: pacman's `--dbpath` for `-Sp`.
    pub dbpath: PathBuf,
    /// Held for the run: one prefetch at a time (a timer's and one by hand).
    _lock: std::fs::File,
}

impl Private {
    /// Makes `<place>/prefetch/{sync,local}`; `local` links to pacman's own local database.
    pub fn prepare(place: &Path, pacman_dbpath: &Path) -> Result<Private, String> {
        let dbpath = place.join("prefetch");
        let sync = dbpath.join("sync");
        std::fs::create_dir_all(&sync).map_err(|e| format!("{}: {e}", sync.display()))?;
        let lock = {
            use std::os::unix::fs::OpenOptionsExt;
            let path = dbpath.join("lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
            {
                return Err("another pacxfer prefetch is running".into());
            }
            file
        };
        let local = dbpath.join("local");
        let target = pacman_dbpath.join("local");
        if !target.is_dir() {
            // Even a system with nothing installed has one: a wrong DBPath would make every
            // package look new.
            return Err(format!(
                "pacman's local database {} is missing: is DBPath right (pacman-conf DBPath, \
                 dbpath in pacxfer.conf, --dbpath)?",
                target.display()
            ));
        }
        let right = std::fs::read_link(&local).is_ok_and(|t| t == target);
        if !right {
            match std::fs::symlink_metadata(&local) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&local)
                    .map_err(|e| format!("{}: {e}", local.display()))?,
                Ok(_) => {
                    std::fs::remove_file(&local).map_err(|e| format!("{}: {e}", local.display()))?
                }
                Err(_) => {}
            }
            std::os::unix::fs::symlink(&target, &local)
                .map_err(|e| format!("{}: {e}", local.display()))?;
        }
        Ok(Private {
            dbpath,
            _lock: lock,
        })
    }

    pub fn sync_dir(&self) -> PathBuf {
        self.dbpath.join("sync")
    }
}

/// [`download::into_file`], asking the mirror only for a file that changed since `existing` (a
/// database copy): on 304 that copy is the result. The file gets the mirror's Last-Modified.
fn download_since(
    config: &Config,
    plan: &Plan,
    dest: &Path,
    existing: Option<crate::sources::mirror::Existing>,
    progress: &Progress,
) -> Result<Delivered, String> {
    let mut ctx = Context::new(config);
    ctx.existing = existing;
    download::into_file(&ctx, plan, dest, progress, download::keep_what_arrived).map_err(|e| e.why)
}

/// Refreshes the private copy of `repo`'s database (and `.db.sig`) from `servers` in order.
/// The signature is optional: when no server has one, any old copy is removed.
pub fn sync_db(
    config: &Config,
    private: &Private,
    repo: &str,
    servers: &[String],
    progress: &Progress,
) -> Result<(), String> {
    let mut mirror_only = config.clone();
    mirror_only.gateway.enabled = false;
    for (suffix, required) in [(".db", true), (".db.sig", false)] {
        let name = format!("{repo}{suffix}");
        let urls: Vec<String> = servers
            .iter()
            .map(|s| format!("{}/{name}", s.trim_end_matches('/')))
            .collect();
        let plan = plan::plan(false, &[], &[], &mirror_only, &[], &urls);
        let dest = private.sync_dir().join(&name);
        // A whole database is never resumed into: a new one starts from byte 0.
        let mut part = dest.clone().into_os_string();
        part.push(".part");
        let _ = std::fs::remove_file(PathBuf::from(part));
        let cap = if required { DB_CAP } else { SIG_CAP };
        let existing = crate::sources::mirror::Existing::open(&private.sync_dir(), &name, cap)
            .ok()
            .flatten();
        match download_since(&mirror_only, &plan, &dest, existing, progress) {
            Ok(_) => {}
            Err(why) if !required => {
                let _ = std::fs::remove_file(&dest);
                progress.note(&format!("no {name}: {why}"));
            }
            Err(why) => return Err(format!("cannot get {name}: {why}")),
        }
    }
    Ok(())
}

/// What `pacman -Sp` says it would download: (repository, file name) in its order.
pub fn pacman_targets(
    pacman_conf: Option<&Path>,
    private: &Private,
    packages: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut cmd = std::process::Command::new("pacman");
    cmd.arg("-Sp")
        .arg("--noconfirm")
        .arg("--dbpath")
        .arg(&private.dbpath)
        .args(["--print-format", "%r %l"])
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(conf) = pacman_conf {
        cmd.arg("--config").arg(conf);
    }
    if packages.is_empty() {
        cmd.arg("-u");
    } else {
        cmd.arg("--").args(packages);
    }
    let out = crate::pacman::conf::run_bounded_max(&mut cmd, PACMAN_LIMIT, PACMAN_OUTPUT_MAX)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => format!(
                "pacman -Sp did not finish within {}s",
                PACMAN_LIMIT.as_secs()
            ),
            std::io::ErrorKind::InvalidData => format!("pacman -Sp: {e}"),
            _ => format!("cannot run pacman: {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why: Vec<&str> = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect();
        return Err(format!("pacman -Sp failed: {}", why.join("; ")));
    }
    let mut targets = Vec::new();
    for line in stdout.lines() {
        let Some((repo, location)) = line.trim().split_once(' ') else {
            continue;
        };
        let Some(file) = location.rsplit('/').next() else {
            continue;
        };
        // pacman prints the file name as the database has it, not URL-encoded.
        let file = file.to_string();
        if crate::pacman::names::is_plain_filename(repo)
            && crate::pacman::names::is_plain_filename(&file)
        {
            targets.push((repo.to_string(), file));
        }
    }
    Ok(targets)
}

/// Every entry of the private database of `repo`, by file name.
pub fn entries(
    private: &Private,
    repo: &str,
    progress: &Progress,
) -> Result<HashMap<String, Entry>, String> {
    let db = SyncDb {
        repo: repo.to_string(),
        path: private.sync_dir().join(format!("{repo}.db")),
    };
    let (all, _) =
        syncdb::read_all(&db, &mut |e| progress.warn(&e.to_string())).map_err(|e| e.to_string())?;
    Ok(all.into_iter().map(|e| (e.filename.clone(), e)).collect())
}

/// Whether `dir/name` is already the file `entry` lists.
pub fn already_there(dirs: &[PathBuf], entry: &Entry) -> Option<PathBuf> {
    let (sha, size) = entry.verifiable()?;
    dirs.iter().map(|d| d.join(&entry.filename)).find(|p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() == size)
            && crate::ipfs::seed::hash_file(p).is_ok_and(|(got, _)| got == sha)
    })
}

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

/// `dest` through `dest.part` ([`download::into_file`]), with a failure for lack of space
/// told apart: it marks the batch `full`, and once the batch is full, a file that fails gives
/// back what this run wrote of it ([`give_back`]) while its lock is still held. Otherwise what
/// arrived stays in the `.part` for the next try.
fn into_cache(
    ctx: &Context<'_>,
    plan: &Plan,
    dest: &Path,
    progress: &Progress,
    full: &AtomicBool,
) -> Result<Delivered, Undelivered> {
    let result = download::into_file(ctx, plan, dest, progress, |out, no_space| {
        if no_space {
            full.store(true, Ordering::SeqCst);
        }
        if full.load(Ordering::SeqCst) {
            Some(give_back(out))
        } else {
            download::keep_what_arrived(out, no_space)
        }
    });
    if let Err(Undelivered { no_space: true, .. }) = &result {
        full.store(true, Ordering::SeqCst);
    }
    result
}

/// Gives back the space this run took for a file that did not arrive, `out` (whose lock is
/// held) being its `.part`: a `.part` this run made, or whose earlier bytes it found wrong and
/// replaced, is removed (nothing in it can be completed from what an earlier run had); one that
/// still holds an earlier run's bytes is cut back to them, so the filesystem is left as the run
/// found it and the next run, or pacman, still resumes from there. Says what it did.
fn give_back(out: &Output) -> String {
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

/// Runs `jobs` with `threads` at a time; each ends with `after` (seeding) when it arrived.
/// Once a file could not be written for lack of space, no further file is started: each
/// would fail the same way after taking what space is left.
pub fn run_batch(
    config: &Config,
    places: &crate::cache::Places,
    jobs: &[Job],
    threads: usize,
    batch: &Batch,
    after: &(dyn Fn(&Job, &Path) + Sync),
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let full = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::new());
    let files = jobs.len() as u64;
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                // One context per worker: its agents keep their connections from one file
                // to the next.
                let ctx = Context::new(config);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else {
                        return;
                    };
                    let (result, no_space) = if full.load(Ordering::SeqCst) {
                        let why = format!("not started: {} is out of space", job.dir.display());
                        (Err(why), true)
                    } else {
                        match fetch_one(&ctx, places, job, batch, after, &full) {
                            Ok((fetched, sig_no_space)) => (Ok(fetched), sig_no_space),
                            Err(missed) => {
                                batch.line(&format!(
                                    "{}: not prefetched: {}",
                                    job.filename, missed.why
                                ));
                                (Err(missed.why), missed.no_space)
                            }
                        }
                    };
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    batch.file_over(result.as_ref().map(|f| f.bytes).unwrap_or(0), n, files);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push(Outcome {
                            filename: job.filename.clone(),
                            result,
                            no_space,
                        });
                    }
                }
            });
        }
    });
    batch.finish();
    outcomes.into_inner().unwrap_or_default()
}

/// One job: the package (unless only its `.sig` is missing), then its `.sig`. With the
/// package, whether the `.sig` failed for lack of space.
fn fetch_one(
    ctx: &Context<'_>,
    places: &crate::cache::Places,
    job: &Job,
    batch: &Batch,
    after: &(dyn Fn(&Job, &Path) + Sync),
    full: &AtomicBool,
) -> Result<(Fetched, bool), Undelivered> {
    // A bar only for a package that moves; a signature alone goes quietly.
    let progress = match job.plan {
        Some(_) => batch.file(&job.filename),
        None => Progress::plain(crate::ui::progress::Verbosity::Quiet),
    };
    let dest = job.dir.join(&job.filename);
    let started = std::time::Instant::now();
    let (source, bytes) = match &job.plan {
        Some(plan) => {
            let d = into_cache(ctx, plan, &dest, &progress, full)?;
            let source = source_kind(plan, &d);
            progress.done(&job.filename, source, &d.url, d.bytes, d.resumed);
            crate::transfer::log::record(
                places,
                &crate::transfer::log::Record::new(&job.filename, plan, &d, started.elapsed()),
            );
            after(job, &dest);
            (Some(source), d.bytes)
        }
        None => (None, 0),
    };
    let mut sig_no_space = false;
    let sig = job.sig.as_ref().map(|plan| {
        let name = format!("{}.sig", job.filename);
        let quiet = Progress::plain(crate::ui::progress::Verbosity::Quiet);
        into_cache(ctx, plan, &job.dir.join(&name), &quiet, full)
            .map(|_| ())
            .map_err(|m| {
                sig_no_space = m.no_space;
                m.why
            })
    });
    Ok((Fetched { source, bytes, sig }, sig_no_space))
}

#[cfg(test)]
mod tests {
    use super::*;

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
