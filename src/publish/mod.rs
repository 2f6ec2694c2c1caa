//! Publishing a package cache into IPFS (the engine of `commands/publish.rs`, the command): for each repository, the sync database from a mirror
//! (or from this machine), every package it lists that the cache lacks, fetched through
//! pacxfer's own download path (resume, timeouts, verification against the database), added
//! to the node with the `unixfs-v1-2025` settings, recorded in the state, and linked into one
//! root directory with two views of the same blocks:
//!
//! - `<root>/<sha256>`: for clients, with the template `/ipns/<name>/{sha256}` or
//!   `/ipfs/<root>/{sha256}`;
//! - `<root>/<repo>/os/<arch>/<filename>` and the repository's database files: the mirror
//!   layout, so a plain `Server = http://127.0.0.1:8080/ipns/<name>/$repo/os/$arch` works;
//! - `<root>/pacxfer.json`: when, from where, which repositories and database checksums;
//! - `<root>/updates/<repo>/<arch>/<db>/`: each database's update list (`updates`);
//! - `<root>/sources/<algo>/<hex>` and `<root>/sources/names/<pkgbase>/<file>`: a source
//!   cache's build sources (`sources`), for the template `/ipns/<name>/sources/{algo}/{hex}`.
//!
//! The state (`state`) is the record; the root lives in the node's MFS at
//! `/pacxfer-publish/<key>` and is changed in place only when it is still exactly the root the
//! state last recorded, otherwise rebuilt from the state (`view`). Files no database has
//! listed for `keep_days`, or beyond `keep_versions` of a package, are unlinked. The root is
//! then published to an IPNS key, and, with `[publish] cluster`, pinned in an ipfs-cluster in
//! place of the previous root (`cluster`).

pub mod cluster;
mod sources;
pub mod state;
pub mod updates;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::db::entry::Entry;
use crate::db::syncdb::{self, SyncDb};
use crate::ipfs::rpc::{Rpc, RpcError};
use crate::ipfs::seed::PROFILE;
use crate::transfer::download::{self, Context};
use crate::transfer::plan;
use crate::ui::progress::{Progress, Verbosity};
use indicatif::ProgressBar;

use state::{DbFile, FileRow, Listing, State};

/// What to publish.
#[derive(Debug, Clone)]
pub struct Job {
    /// A Server-style URL with `$repo` and `$arch`; `None` publishes from this machine
    /// (its sync databases and pacman's CacheDir).
    pub mirror: Option<String>,
    pub repos: Vec<String>,
    pub arch: String,
    pub state: PathBuf,
    /// Where downloads wait to be added (resumed by the next run when interrupted).
    pub work: PathBuf,
    pub keep_days: u64,
    /// Keep at most this many versions of each package name per repository (0: no limit).
    pub keep_versions: usize,
    /// The databases and their update lists only: no package is fetched, listed or pruned.
    pub databases_only: bool,
    pub ipns_key: String,
    /// `from_cache`: the sync databases (DBPath) and cache directories to take files from.
    pub dbpath: PathBuf,
    pub cache_dirs: Vec<PathBuf>,
    /// PKGBUILD directories (or directories of them) whose sources are published
    /// (`sources`).
    pub sources: Vec<PathBuf>,
}

impl Job {
    /// Refuses names that cannot be one path component (`crate::pacman::names::check_name`), and an IPNS key
    /// name Kubo would not take (letters, digits, `-`, `_`, `.`).
    pub fn check(&self) -> Result<(), String> {
        if self.repos.is_empty() && self.sources.is_empty() {
            return Err(
                "name the repositories to publish with --repo (e.g. --repo core --repo extra)"
                    .into(),
            );
        }
        for repo in &self.repos {
            crate::pacman::names::check_name("the repository name", repo)?;
        }
        crate::pacman::names::check_name("the architecture", &self.arch)?;
        crate::pacman::names::check_name("the IPNS key name", &self.ipns_key)?;
        if !self
            .ipns_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "the IPNS key name {:?} cannot be used: only letters, digits, - _ and . (choose another --ipns-key)",
                crate::ui::answer::one_line(&self.ipns_key)
            ));
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub root: String,
    pub name: String,
    pub added: u64,
    pub present: u64,
    pub pruned: u64,
    pub failed: u64,
    /// Packages not published because `--from-cache` found no copy.
    pub skipped: u64,
    /// Links of the published view made or removed (0: it already matched the state).
    pub relinked: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// The root as pinned in the cluster (`None`: no cluster, or it failed).
    pub cluster: Option<String>,
}

/// A run's outcome: the root is published even when the cluster failed.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    /// What the cluster did with the root.
    pub pinned: Option<cluster::Pinned>,
    /// Why the root is not pinned in the cluster; the next run tries again.
    pub cluster_error: Option<PublishError>,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum PublishError {
    Rpc(RpcError),
    State(state::StateError),
    /// A repository's database could not be had: nothing of it is published.
    Database {
        repo: String,
        why: String,
    },
    Io(PathBuf, std::io::Error),
    Cluster(cluster::ClusterError),
    /// A setting that cannot work.
    Setting(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Rpc(e) => write!(f, "{e}"),
            PublishError::State(e) => write!(f, "{e}"),
            PublishError::Database { repo, why } => write!(f, "[{repo}]: {why}"),
            PublishError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            PublishError::Cluster(e) => write!(f, "{e}"),
            PublishError::Setting(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<RpcError> for PublishError {
    fn from(e: RpcError) -> Self {
        PublishError::Rpc(e)
    }
}

impl From<cluster::ClusterError> for PublishError {
    fn from(e: cluster::ClusterError) -> Self {
        PublishError::Cluster(e)
    }
}

impl From<state::StateError> for PublishError {
    fn from(e: state::StateError) -> Self {
        PublishError::State(e)
    }
}

use crate::unix_time as now;

/// Why `--from-cache` publishes a package not.
const NOT_IN_CACHE: &str = "not in pacman's CacheDir";

/// The database files a repository may have, and whether each must be there.
const DB_FILES: &[(&str, bool)] = &[(".db", true), (".db.sig", false), (".files", false)];

/// Downloads `url` into `dest` through pacxfer's own path, verified against `entry` when
/// given; mirror only.
fn download_to(
    config: &Config,
    url: &str,
    entry: Option<&Entry>,
    dest: &Path,
    progress: &Progress,
) -> Result<(), String> {
    let mut mirror_only = config.clone();
    mirror_only.gateway.enabled = false;
    let candidates: Vec<Entry> = entry.cloned().into_iter().collect();
    let plan = plan::plan(
        false,
        &candidates,
        &[],
        &mirror_only,
        &[],
        &[url.to_string()],
    );
    download::into_file(
        &Context::new(&mirror_only),
        &plan,
        dest,
        progress,
        download::keep_what_arrived,
    )
    .map(|_| ())
    .map_err(|e| e.why)
}

/// The display of one download of a run: its line only with `-v` (a run says one line per
/// repository), warnings above the repository's bar.
fn file_progress(bar: Option<&ProgressBar>, run: &Progress) -> Progress {
    let verbosity = match run.verbosity() {
        Verbosity::Verbose => Verbosity::Verbose,
        _ => Verbosity::Quiet,
    };
    Progress::under(bar.cloned(), verbosity)
}

/// Whether an HTTP failure of a database file means "not on this mirror".
fn is_absent(why: &str) -> bool {
    why.contains("HTTP 404") || why.contains("HTTP 410")
}

/// The publisher: the node, the state, and what this run has done.
pub struct Publisher<'a> {
    config: &'a Config,
    job: &'a Job,
    rpc: Rpc,
    cluster: Option<cluster::Cluster>,
    state: State,
    progress: &'a Progress,
    started: i64,
    summary: Summary,
    /// The listings the databases of this run hold: (repo, arch, filename).
    listed_now: std::collections::HashSet<(String, String, String)>,
}

impl<'a> Publisher<'a> {
    pub fn new(
        config: &'a Config,
        job: &'a Job,
        progress: &'a Progress,
    ) -> Result<Publisher<'a>, PublishError> {
        // Every name here becomes a path in the node's MFS or in the published root: all are
        // checked before the node is asked anything.
        job.check().map_err(PublishError::Setting)?;
        let rpc = Rpc::new(
            &config.share.api,
            config.share.api_auth.as_deref(),
            Duration::from_secs(300),
        )
        .map_err(|why| PublishError::Database {
            repo: "share".into(),
            why,
        })?;
        // The node first: a node that is not there is one line, before any download.
        rpc.call("id", &[])?;
        // `[publish] cluster` (or `--cluster`).
        let cluster = config
            .publish
            .cluster
            .as_deref()
            .map(|url| cluster::Cluster::new(url, config.publish.cluster_auth.as_deref()))
            .transpose()
            .map_err(|why| PublishError::Setting(format!("[publish] cluster: {why}")))?;
        let state = State::open(&job.state)?;
        std::fs::create_dir_all(&job.work).map_err(|e| PublishError::Io(job.work.clone(), e))?;
        Ok(Publisher {
            config,
            job,
            rpc,
            cluster,
            state,
            progress,
            started: now(),
            summary: Summary::default(),
            listed_now: Default::default(),
        })
    }

    /// The whole run: an error stops it before the root is published; a cluster that fails
    /// after that is in the report.
    pub fn run(mut self) -> Result<Report, PublishError> {
        let clock = std::time::Instant::now();
        let mut judged = Vec::new();
        for repo in &self.job.repos {
            match self.repo(repo) {
                Ok(()) if self.job.databases_only => {}
                Ok(()) => judged.push(repo.clone()),
                // That repository keeps what it had; the others are published.
                Err(e @ PublishError::Database { .. }) => {
                    self.summary.failed += 1;
                    self.progress
                        .warn(&format!("{e}; its packages stay as last published"));
                }
                Err(e) => return Err(e),
            }
        }
        if !self.job.sources.is_empty() {
            self.sources()?;
        }
        self.prune(&judged)?;
        let updated = view::update(&self.rpc, &mut self.state, self.job)?;
        if updated.changes == 0 {
            self.progress
                .info("the published view already matched the state: nothing relinked");
        } else {
            self.progress.info(&format!(
                "the published view: {} links made or removed",
                updated.changes
            ));
        }
        let root = updated.root;
        let (mut pinned, mut cluster_error) = (None, None);
        if let Some(client) = &self.cluster {
            match cluster::pin_root(
                client,
                &self.config.publish,
                &mut self.state,
                &root,
                &self.job.ipns_key,
                cluster::PIN_WAIT,
            ) {
                Ok(p) => {
                    self.summary.cluster = Some(root.clone());
                    pinned = Some(p);
                }
                Err(e) => cluster_error = Some(e),
            }
        }
        self.summary.root = root;
        self.summary.name = updated.name;
        self.summary.relinked = updated.changes;
        self.summary.seconds = clock.elapsed().as_secs_f64();
        Ok(Report {
            summary: self.summary,
            pinned,
            cluster_error,
        })
    }

    fn base(&self, repo: &str) -> Option<String> {
        self.job.mirror.as_ref().map(|m| {
            m.replace("$repo", repo)
                .replace("$arch", &self.job.arch)
                .trim_end_matches('/')
                .to_string()
        })
    }

    /// Adds a local file to the node with the profile's settings.
    fn add(&self, path: &Path, name: &str) -> Result<String, PublishError> {
        let mut args: Vec<(&str, &str)> = PROFILE.to_vec();
        args.push(("pin", "false"));
        let added = self.rpc.add_file(path, name, &args)?;
        Ok(crate::ipfs::seed::checked_cid(added.hash)?)
    }

    /// One repository: its database files, then every package it lists.
    fn repo(&mut self, repo: &str) -> Result<(), PublishError> {
        let arch = self.job.arch.clone();
        let dbdir = self.job.work.join(format!("{repo}-{arch}"));
        std::fs::create_dir_all(&dbdir).map_err(|e| PublishError::Io(dbdir.clone(), e))?;
        // Every database file first: a repository is recorded only with all of them, after
        // its packages, so a signature or file list that failed never leaves a new database
        // beside an old signature, or listing packages the cache lacks.
        let mut fetched: Vec<(String, Option<PathBuf>)> = Vec::new();
        for (suffix, required) in DB_FILES {
            let name = format!("{repo}{suffix}");
            let dest = dbdir.join(&name);
            let got = match self.base(repo) {
                Some(base) => {
                    let _ = std::fs::remove_file(&dest);
                    let mut part = dest.clone().into_os_string();
                    part.push(".part");
                    let _ = std::fs::remove_file(PathBuf::from(part));
                    download_to(
                        self.config,
                        &format!("{base}/{name}"),
                        None,
                        &dest,
                        &file_progress(None, self.progress),
                    )
                }
                None => {
                    let local = self.job.dbpath.join("sync").join(&name);
                    // With its mtime: pacman set it from the mirror's Last-Modified, which the
                    // update list's head passes on.
                    std::fs::copy(&local, &dest)
                        .and_then(|_| {
                            let time = std::fs::metadata(&local)?.modified()?;
                            std::fs::File::options()
                                .write(true)
                                .open(&dest)?
                                .set_modified(time)
                        })
                        .map_err(|e| format!("{}: {e}", local.display()))
                }
            };
            match got {
                Ok(()) => fetched.push((name, Some(dest))),
                Err(why) if !required && (is_absent(&why) || self.job.mirror.is_none()) => {
                    fetched.push((name, None));
                }
                Err(why) => {
                    return Err(PublishError::Database {
                        repo: repo.to_string(),
                        why: format!("cannot get {name}: {why}"),
                    })
                }
            }
        }
        let db_path = fetched
            .iter()
            .find(|(n, _)| n.ends_with(".db"))
            .and_then(|(_, p)| p.clone());
        let Some(db_path) = db_path else {
            return Ok(());
        };
        if self.job.databases_only {
            self.record_dbfiles(repo, &fetched)?;
            return self.update_lists(repo, &fetched);
        }
        let db = SyncDb {
            repo: repo.to_string(),
            path: db_path,
        };
        let progress = self.progress;
        let (entries, _) =
            syncdb::read_all(&db, &mut |e| progress.warn(&e.to_string())).map_err(|e| {
                PublishError::Database {
                    repo: repo.to_string(),
                    why: e.to_string(),
                }
            })?;
        let (mut added, mut present, mut bytes) = (0u64, 0u64, 0u64);
        // What the node holds for the publisher, read once: sha256 -> size.
        let held: std::collections::HashMap<String, u64> = self
            .state
            .files()?
            .into_iter()
            .map(|f| (f.sha256, f.size))
            .collect();
        let mut seen = Vec::new();
        let bar = crate::ui::progress::packages_bar(
            repo,
            entries.len() as u64,
            self.progress.verbosity(),
        );
        let say = Progress::under(bar.clone(), self.progress.verbosity());
        for entry in &entries {
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!(
                    "{added} added, {}",
                    crate::ui::progress::size(bytes)
                ));
            }
            let Some((sha, size)) = entry.verifiable() else {
                say.warn(&format!(
                    "[{repo}] {}: no SHA-256 or size in the database, not published",
                    entry.filename
                ));
                continue;
            };
            let sha_hex = hex::encode(sha);
            self.listed_now
                .insert((repo.to_string(), arch.clone(), entry.filename.clone()));
            let listing = Listing {
                repo: repo.to_string(),
                arch: arch.clone(),
                filename: entry.filename.clone(),
                name: entry.name.clone(),
                sha256: sha_hex.clone(),
                first_seen: self.started,
                last_seen: self.started,
            };
            if held.get(&sha_hex) == Some(&size) {
                seen.push(listing);
                present += 1;
                continue;
            }
            match self.fetch_package(repo, entry, bar.as_ref()) {
                Ok((path, downloaded)) => {
                    let cid = self.add(&path, &sha_hex)?;
                    self.state.add(
                        &FileRow {
                            sha256: sha_hex,
                            cid,
                            size,
                        },
                        &listing,
                    )?;
                    if downloaded {
                        let _ = std::fs::remove_file(&path);
                    }
                    added += 1;
                    bytes += size;
                }
                Err(why) if self.job.mirror.is_none() && why == NOT_IN_CACHE => {
                    self.summary.skipped += 1;
                }
                Err(why) => {
                    self.summary.failed += 1;
                    say.warn(&format!("[{repo}] {} not published: {why}", entry.filename));
                }
            }
        }
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        self.state.seen(&seen)?;
        self.record_dbfiles(repo, &fetched)?;
        self.update_lists(repo, &fetched)?;
        self.summary.added += added;
        self.summary.present += present;
        self.summary.bytes += bytes;
        self.progress.info(&format!(
            "[{repo}] {} packages: {added} added ({}), {present} already published",
            entries.len(),
            crate::ui::progress::size(bytes)
        ));
        Ok(())
    }

    /// Adds the database files that changed to the node and records them all (and the ones
    /// the mirror no longer has as gone) in one transaction.
    fn record_dbfiles(
        &mut self,
        repo: &str,
        fetched: &[(String, Option<PathBuf>)],
    ) -> Result<(), PublishError> {
        let arch = self.job.arch.clone();
        let old = self.state.dbfiles()?;
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for (name, dest) in fetched {
            let Some(dest) = dest else {
                absent.push(name.clone());
                continue;
            };
            let (sha256, size) = crate::ipfs::seed::hash_file(dest)
                .map_err(|e| PublishError::Io(dest.clone(), e))?;
            let sha256 = hex::encode(sha256);
            let same = old
                .iter()
                .find(|f| f.repo == repo && f.arch == arch && &f.name == name)
                .filter(|f| f.sha256 == sha256);
            let cid = match same {
                Some(f) => f.cid.clone(),
                None => self.add(dest, name)?,
            };
            present.push(DbFile {
                repo: repo.to_string(),
                arch: arch.clone(),
                name: name.clone(),
                cid,
                sha256,
                size,
            });
        }
        self.state.set_dbfiles(repo, &arch, &present, &absent)?;
        Ok(())
    }

    /// A package file, verified against its entry: downloaded (`true`: remove it once added),
    /// or found in the CacheDir.
    fn fetch_package(
        &self,
        repo: &str,
        entry: &Entry,
        bar: Option<&ProgressBar>,
    ) -> Result<(PathBuf, bool), String> {
        let dest = self.job.work.join(&entry.filename);
        match self.base(repo) {
            Some(base) => {
                download_to(
                    self.config,
                    &format!("{base}/{}", entry.filename),
                    Some(entry),
                    &dest,
                    &file_progress(bar, self.progress),
                )?;
                Ok((dest, true))
            }
            None => {
                let Some((sha, size)) = entry.verifiable() else {
                    return Err("not verifiable".into());
                };
                for dir in &self.job.cache_dirs {
                    let path = dir.join(&entry.filename);
                    if let Ok((got, len)) = crate::ipfs::seed::hash_file(&path) {
                        if got == sha && len == size {
                            return Ok((path, false));
                        }
                        return Err(format!("{} differs from the database", path.display()));
                    }
                }
                Err(NOT_IN_CACHE.into())
            }
        }
    }

    /// What was last seen before this time is older than `keep_days`. Saturating: a number
    /// of days beyond any clock keeps everything, never wraps round into a horizon in the
    /// future that would prune it all.
    fn horizon(&self) -> i64 {
        let keep = i64::try_from(self.job.keep_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        self.started.saturating_sub(keep)
    }

    /// Unlinks what no database has listed for `keep_days`, and versions beyond
    /// `keep_versions`.
    fn prune(&mut self, judged: &[String]) -> Result<(), PublishError> {
        // Only the repositories whose databases this run read are judged, and only what those
        // databases no longer list.
        let listings: Vec<Listing> = self
            .state
            .listings()?
            .into_iter()
            .filter(|l| l.arch == self.job.arch && judged.contains(&l.repo))
            .collect();
        let unlisted = |l: &Listing| {
            !self
                .listed_now
                .contains(&(l.repo.clone(), l.arch.clone(), l.filename.clone()))
        };
        let horizon = self.horizon();
        let mut gone: Vec<Listing> = listings
            .iter()
            .filter(|l| unlisted(l) && l.last_seen <= horizon)
            .cloned()
            .collect();
        if self.job.keep_versions > 0 {
            let mut by_name: std::collections::BTreeMap<(String, String, String), Vec<&Listing>> =
                Default::default();
            for l in &listings {
                by_name
                    .entry((l.repo.clone(), l.arch.clone(), l.name.clone()))
                    .or_default()
                    .push(l);
            }
            for versions in by_name.values_mut() {
                // Newest first: last seen, then first seen.
                versions.sort_by_key(|v| std::cmp::Reverse((v.last_seen, v.first_seen)));
                for old in versions.iter().skip(self.job.keep_versions) {
                    if unlisted(old) && !gone.contains(old) {
                        gone.push((*old).clone());
                    }
                }
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let files = self.state.prune(&gone)?;
        self.summary.pruned += files;
        self.progress.info(&format!(
            "pruned {} listings, {files} files no repository lists",
            gone.len()
        ));
        Ok(())
    }
}
