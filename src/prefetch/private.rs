//! The private copy of the sync databases that prefetch plans from (never pacman's own), kept
//! in pacxfer's cache and synced conditionally from the Server lines, and what `pacman -Sp`
//! says it would download with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::db::entry::Entry;
use crate::db::syncdb::{self, SyncDb};
use crate::transfer::download::{self, Context, Delivered};
use crate::transfer::plan::{self, Plan};
use crate::ui::progress::Progress;

/// The largest database and database signature taken (pacman's own limits).
const DB_CAP: u64 = 128 << 20;
const SIG_CAP: u64 = 16 << 10;

/// The most of `pacman -Sp`'s output read (a line per package: far more than any upgrade).
const PACMAN_OUTPUT_MAX: u64 = 32 << 20;

/// How long `pacman -Sp` may take.
const PACMAN_LIMIT: Duration = Duration::from_secs(120);

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
    places: &crate::cache::Places,
    private: &Private,
    repo: &str,
    servers: &[String],
    db_signatures: bool,
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
        // A repository synced through a publisher's update list: built from it, and the
        // mirror asked only whether it has something newer.
        let existing = match required {
            true => crate::sources::updates::newer_copy(
                config,
                places,
                &name,
                existing,
                urls.first().map_or("", String::as_str),
                &|_| db_signatures,
                progress,
            ),
            false => existing,
        };
        match download_since(&mirror_only, &plan, &dest, existing, progress) {
            Ok(done) if done.source == "updates" => {
                progress.info(&format!(
                    "{name}: {}; the mirror has nothing newer",
                    done.url
                ));
            }
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
