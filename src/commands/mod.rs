//! What pacxfer does, each from its parsed arguments to its exit status: `xfer` (pacman's
//! `%u %o`), `fetch` (a shell download) and `lookup` (what would happen) here; `seed` (sharing
//! files through the node) in its own file.
//! Each turns a request into a target, candidates and a plan, and hands downloads to
//! `download::run`.

pub mod doctor;
pub mod prefetch;
pub mod publish;
pub mod seed;
pub mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::cache::Places;
use crate::config::{self, Config};
use crate::db::entry::{Entry, Query};
use crate::db::syncdb::{self, DbError};
use crate::ipfs::cid::{self, KnownCid};
use crate::ipfs::rpc::RpcError;
use crate::pacman::conf::{self as pacman_conf, PacmanConf};
use crate::pacman::target::{split_sig, Scheme, Target};
use crate::sources::breaker::State;
use crate::sources::mirror::Existing;
use crate::sources::views;
use crate::transfer::download::{self, Context, DownloadError};
use crate::transfer::output::Output;
use crate::transfer::plan::{self, Plan};
use crate::ui::progress::{Progress, Verbosity};

/// What every command starts from.
pub struct Session {
    pub config: Config,
    pub dbpath: PathBuf,
    /// Where indexes and gateway state live.
    pub places: Places,
    pub pacman_conf: PacmanConf,
    pub verbosity: Verbosity,
}

impl Session {
    /// Reads the configuration and settles the database path.
    pub fn open(
        config_path: Option<&Path>,
        dbpath: Option<&Path>,
        cache_dir: Option<&Path>,
        verbosity: Verbosity,
    ) -> Result<Session> {
        let mut config = match config_path {
            Some(path) => Config::load(path, true)?,
            None => Config::load(Path::new(config::DEFAULT_PATH), false)?,
        };
        if let Some(dir) = cache_dir {
            config.cache_dir = Some(dir.to_path_buf());
        }
        let places = Places::new(config.cache_dir.as_deref());
        let pacman_conf = PacmanConf::new(config.pacman_conf.clone(), places.clone());
        let dbpath = pacman_conf::resolve_dbpath(dbpath, config.dbpath.as_deref(), &pacman_conf);
        Ok(Session {
            config,
            dbpath,
            places,
            pacman_conf,
            verbosity,
        })
    }

    /// The entries listing `query`, with unreadable databases reported as warnings.
    pub(crate) fn find(
        &self,
        query: Query<'_>,
        repo_order: &[String],
        progress: &Progress,
    ) -> Result<Vec<Entry>, DbError> {
        let found = syncdb::find(&self.dbpath, query, repo_order, &self.places)?;
        // A hostile database may hold any number of bad entries: a few lines say enough.
        const SHOWN: usize = 10;
        for problem in found.problems.iter().take(SHOWN) {
            progress.warn(&problem.to_string());
        }
        if found.problems.len() > SHOWN {
            progress.warn(&format!(
                "and {} more entries that could not be read",
                found.problems.len() - SHOWN
            ));
        }
        for note in &found.notes {
            progress.note(note);
        }
        Ok(found.entries)
    }

    /// The copies of the file the node holds because this machine seeded them
    /// (`/pacxfer/<sha256>` in its MFS). One quick question to the node's API; a node whose
    /// API is down or hangs is skipped by later calls for `[gateway] breaker`, like the
    /// gateway.
    pub(crate) fn seeded_copies(
        &self,
        is_sig: bool,
        candidates: &[Entry],
        url_dirs: &[String],
        progress: &Progress,
    ) -> Vec<plan::Seeded> {
        let share = &self.config.share;
        if is_sig || !share.seeded || !self.config.gateway.enabled {
            return Vec::new();
        }
        let chosen = plan::choose(candidates, url_dirs);
        let expect = plan::expectations(&chosen);
        if expect.is_empty() {
            return Vec::new();
        }
        let breaker = crate::sources::breaker::Breaker::new(
            self.places.clone(),
            &format!("api {}", share.api),
            self.config.gateway.breaker,
        );
        if let State::Open { left, reason } = breaker.state() {
            progress.note(&format!(
                "node API {} skipped for {}s more (after: {reason})",
                share.api,
                left.as_secs()
            ));
            return Vec::new();
        }
        let deadline = std::time::Instant::now()
            + self.config.gateway.connect_timeout
            + std::time::Duration::from_secs(1);
        let Ok(sharer) = share.sharer(Some(deadline)) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for x in expect {
            match sharer.seeded(&x.sha256) {
                Ok(Some(s)) if s.size == x.size => found.push(plan::Seeded {
                    expect: x,
                    cid: s.cid,
                }),
                Ok(_) => {}
                Err(e) => {
                    if matches!(e, RpcError::Unreachable { .. } | RpcError::Timeout { .. }) {
                        breaker.trip(&e.to_string());
                    }
                    progress.note(&format!("no seeded copy looked for: {e}"));
                    return found;
                }
            }
        }
        breaker.reset();
        found
    }

    /// pacman.conf's repository order, or none when pacman-conf cannot say.
    fn repo_order(&self, progress: &Progress) -> Vec<String> {
        self.pacman_conf.repos().unwrap_or_else(|e| {
            progress.note(&format!("{e}; repositories taken in name order"));
            Vec::new()
        })
    }

    /// The configuration for planning one file: the templates that read from a published
    /// view older than `[gateway] max_age` left out, each with a warning.
    pub(crate) fn fresh_config(&self, progress: &Progress) -> std::borrow::Cow<'_, Config> {
        let config = &self.config;
        if !config.gateway.enabled || config.gateway.max_age.is_zero() {
            return std::borrow::Cow::Borrowed(config);
        }
        let stale: Vec<&String> = config
            .gateway
            .paths
            .iter()
            .filter(|t| {
                let Some(view) = views::view_of(t) else {
                    return false;
                };
                let Some(old) = views::too_old(config, &self.places, view) else {
                    return false;
                };
                progress.warn(&format!(
                    "{view} was last published {} ago, more than [gateway] max_age: not used \
                     (its publisher may have stopped)",
                    views::shown_age(old)
                ));
                true
            })
            .collect();
        if stale.is_empty() {
            return std::borrow::Cow::Borrowed(config);
        }
        let mut fresh = config.clone();
        fresh.gateway.paths.retain(|t| !stale.contains(&t));
        std::borrow::Cow::Owned(fresh)
    }

    /// The published view `url` reads from through the configured gateway, and its age, when
    /// it is older than `[gateway] max_age`.
    pub(crate) fn stale_view(&self, url: &str) -> Option<(String, std::time::Duration)> {
        let config = &self.config;
        if config.gateway.max_age.is_zero() {
            return None;
        }
        let path = url
            .strip_prefix(config.gateway_base())
            .filter(|p| p.starts_with('/'))?;
        let view = views::view_of(path)?;
        views::too_old(config, &self.places, view).map(|old| (view.to_string(), old))
    }

    /// Refuses a database pacman asks from a published view older than `[gateway] max_age`
    /// (a `Server` line pointing at the gateway's mirror view): pacman then tries its next
    /// server instead of syncing from a cache that stopped.
    fn refuse_stale_database(&self, target: &Target) -> Result<()> {
        if !never_listed(&target.listed_name) {
            return Ok(());
        }
        if let Some((view, old)) = self.stale_view(&target.url) {
            bail!(
                "{view} was last published {} ago, more than [gateway] max_age: its {} is \
                 refused so that a cache that stopped cannot hold back upgrades; pacman will \
                 try its next server",
                views::shown_age(old),
                target.filename
            );
        }
        Ok(())
    }

    /// The mirror URLs of `entry`'s repository, from its Server lines.
    fn mirror_urls(&self, entry: &Entry, file: &str, progress: &Progress) -> Vec<String> {
        match self.pacman_conf.servers(&entry.repo) {
            Ok(servers) => servers
                .iter()
                .map(|s| format!("{}/{file}", s.trim_end_matches('/')))
                .collect(),
            Err(e) => {
                progress.warn(&format!("{e}: no mirror URLs for [{}]", entry.repo));
                Vec::new()
            }
        }
    }
}

/// Files that no database lists as a package, so no lookup is needed.
fn never_listed(name: &str) -> bool {
    name.ends_with(".db")
        || name.ends_with(".files")
        || name.contains(".db.tar")
        || name.contains(".files.tar")
}

/// The entries listing the file a URL names. Before the first `pacman -Sy` there is nothing
/// to look up: then the file is downloaded as it is.
fn url_candidates(session: &Session, target: &Target, progress: &Progress) -> Vec<Entry> {
    if never_listed(&target.listed_name) {
        return Vec::new();
    }
    session
        .find(Query::Filename(&target.listed_name), &[], progress)
        .unwrap_or_else(|e| {
            progress.note(&e.to_string());
            Vec::new()
        })
}

/// `pacxfer URL OUTPUT`: pacman's XferCommand. Exit 0 only with verified bytes in OUTPUT.
pub fn xfer(session: &Session, url: &str, output: &Path) -> Result<ExitCode> {
    let target = Target::parse(url)?;
    let progress = Progress::new(&target.filename, session.verbosity);
    session.refuse_stale_database(&target)?;
    let candidates = url_candidates(session, &target, &progress);
    if candidates.is_empty() {
        progress.note(&format!(
            "{} is not listed in any sync database; downloading it unverified",
            target.listed_name
        ));
    }
    let seeded = session.seeded_copies(target.is_sig, &candidates, &target.dirs, &progress);
    let database = never_listed(&target.listed_name);
    let plan = plan::plan(
        target.is_sig,
        &candidates,
        &target.dirs,
        &session.fresh_config(&progress),
        &seeded,
        std::slice::from_ref(&target.url),
    );
    let existing = if database && target.scheme != Scheme::File {
        existing_copy(session, &target, &progress)
    } else {
        None
    };
    deliver(
        session,
        &target.filename,
        &plan,
        output,
        &progress,
        Delivery {
            what_next: "",
            later: Some(&|| later_servers(session, &target, &candidates, database, &progress)),
            existing,
            server_time: database,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The Server lines of the repository pacman's URL came from that pacman lists after it.
struct Failover {
    repo: String,
    /// The file's URL on each of those Servers, in pacman's order.
    later: Vec<String>,
}

/// What the error line says pacman does after a failed call.
fn what_next(failover: Option<&Failover>) -> String {
    match failover {
        None => "pacman will try its next Server, if it has one".to_string(),
        Some(f) if f.later.is_empty() => format!(
            "it was the last Server of [{}], so pacman has no other to try",
            f.repo
        ),
        Some(f) => format!(
            "the {} Server{} of [{}] after it failed too; pacman will try its next Server",
            f.later.len(),
            if f.later.len() == 1 { "" } else { "s" },
            f.repo
        ),
    }
}

/// The repository whose Server line (or, for a package, CacheServer line) pacman built `%u`
/// from, and that repository's later lines in pacman's order (CacheServer lines first, and none
/// for databases, as pacman uses them). `None` when the URL is not one of a repository's
/// Server lines: then only that URL is tried, as pacman asked.
///
/// Asked of pacman-conf (answers and refusals remembered) only for the repositories the file
/// can belong to: those whose databases list it, the one a database file names, and path
/// segments of the URL that name a repository.
fn later_servers(
    session: &Session,
    target: &Target,
    candidates: &[Entry],
    database: bool,
    progress: &Progress,
) -> Option<Failover> {
    let (base, raw_name) = target.url.rsplit_once('/')?;
    let mut repos: Vec<String> = Vec::new();
    let mut add = |r: &str| {
        if !r.is_empty() && !repos.iter().any(|x| x == r) {
            repos.push(r.to_string());
        }
    };
    for e in plan::choose(candidates, &target.dirs) {
        add(&e.repo);
    }
    if database {
        let name = target.listed_name.as_str();
        let repo = [".db", ".files"].iter().find_map(|ext| {
            name.strip_suffix(ext)
                .or_else(|| name.rsplit_once(&format!("{ext}.tar")).map(|(r, _)| r))
        });
        if let Some(repo) = repo {
            add(repo);
        }
    }
    if !target.dirs.is_empty() {
        if let Ok(listed) = session.pacman_conf.repos() {
            for dir in target.dirs.iter().filter(|d| listed.contains(d)) {
                add(dir);
            }
        }
    }
    for repo in repos {
        let mut lines = Vec::new();
        if !database {
            // pacman 6.1 and later; older pacman-conf refuses the question (remembered).
            lines.extend(session.pacman_conf.cache_servers(&repo).unwrap_or_default());
        }
        match session.pacman_conf.servers(&repo) {
            Ok(servers) => lines.extend(servers),
            Err(e) => {
                progress.note(&format!("no Server lines of [{repo}]: {e}"));
                continue;
            }
        }
        let bases: Vec<&str> = lines.iter().map(|l| l.trim_end_matches('/')).collect();
        let Some(at) = bases.iter().position(|b| *b == base) else {
            continue;
        };
        let mut later: Vec<String> = Vec::new();
        for b in &bases[at + 1..] {
            let url = format!("{b}/{raw_name}");
            if *b != base && !later.contains(&url) {
                later.push(url);
            }
        }
        progress.note(&format!(
            "{} is Server {} of {} of [{repo}]",
            target.url,
            at + 1,
            bases.len()
        ));
        return Some(Failover { repo, later });
    }
    None
}

/// The copy of a database (or of its signature) pacman holds in `<DBPath>/sync/`, which makes
/// the request conditional. None when pacman removed it first (`-Syy`), or when it may not be
/// used (`-v` says why).
fn existing_copy(session: &Session, target: &Target, progress: &Progress) -> Option<Existing> {
    let sync = session.dbpath.join("sync");
    let cap = download::unlisted_cap(&target.filename)?;
    let own = match Existing::open(&sync, &target.filename, cap) {
        Ok(found) => found,
        Err(why) => {
            progress.note(&format!(
                "{} in {} not used to ask only for a change: {why}",
                target.filename,
                sync.display()
            ));
            None
        }
    }?;
    // A newer copy `pacxfer prefetch` fetched from the same Server lines: asked against it,
    // a `-Sy` after a prefetch downloads no database twice. Only beside pacman's own copy,
    // so a forced refresh (pacman removed its copy) stays forced.
    let prefetched = session.places.trusted().into_iter().find_map(|place| {
        Existing::open(&place.path().join("prefetch/sync"), &target.filename, cap)
            .ok()
            .flatten()
    });
    match prefetched {
        Some(p) if p.modified() > own.modified() => {
            progress.note(&format!(
                "asking only for a change since the copy pacxfer prefetch fetched of {}",
                target.filename
            ));
            Some(p)
        }
        _ => Some(own),
    }
}

/// How `deliver` goes about one file besides its plan.
struct Delivery<'a> {
    /// What the error line says comes next (unless `later` says it).
    what_next: &'a str,
    /// When the plan fails: the Server lines to try next, worked out only then (pacman's
    /// `%u`), so a call whose first URL serves costs no pacman-conf question.
    later: Option<&'a dyn Fn() -> Option<Failover>>,
    /// The copy pacman holds (a database): HTTP mirrors are asked only if it changed.
    existing: Option<Existing>,
    /// Give the output the mtime the server gives the file, as pacman's own downloader does
    /// for databases, so that the next `If-Modified-Since` is exact.
    server_time: bool,
}

/// Runs a plan into `output` and prints the success line. The output stays locked until
/// what is returned is dropped.
fn deliver(
    session: &Session,
    filename: &str,
    plan: &Plan,
    output: &Path,
    progress: &Progress,
    how: Delivery<'_>,
) -> Result<Output> {
    let started = std::time::Instant::now();
    let what_next = how.what_next;
    for note in &plan.notes {
        progress.warn(note);
    }
    let mut out = Output::open(output, || {
        progress.info(&format!(
            "waiting for another pacxfer that is writing {}",
            output.display()
        ))
    })
    .with_context(|| {
        format!(
            "cannot open output file {} for {filename}",
            output.display()
        )
    })?;
    let expect = plan.expected();
    match crate::transfer::partial::restore(&session.places, &expect, &mut out) {
        Ok(0) => {}
        Ok(n) => progress.note(&format!(
            "took back {} kept from an earlier failed call",
            crate::ui::progress::size(n)
        )),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot write {} for {filename} (is the disk full?)",
                output.display()
            )))
        }
    }
    let mut ctx = Context::new(&session.config);
    ctx.existing = how.existing;
    let mut result = download::run(plan, &mut out, &ctx, progress);
    let mut what_next = what_next.to_string();
    if let (Err(DownloadError::AllFailed(failed)), Some(later)) = (&mut result, how.later) {
        let failover = later();
        what_next = self::what_next(failover.as_ref());
        if let Some(f) = failover.filter(|f| !f.later.is_empty()) {
            if let Some((url, why)) = failed.last() {
                progress.info(&format!(
                    "{url}: {why}; trying the next Server: {}",
                    f.later[0]
                ));
            }
            match download::run(&plan.mirrors_only(&f.later), &mut out, &ctx, progress) {
                Err(DownloadError::AllFailed(more)) => failed.extend(more),
                other => result = other,
            }
        }
    }
    match result {
        Ok(done) => {
            crate::transfer::partial::forget(&session.places, &expect);
            let bytes = out
                .finish()
                .with_context(|| format!("cannot write output file {}", output.display()))?;
            if let Some(time) = done.modified.filter(|_| how.server_time) {
                if let Err(e) = out.set_mtime(time) {
                    progress.warn(&format!(
                        "cannot set the mtime of {}: {e} (the next sync downloads it again)",
                        output.display()
                    ));
                }
            }
            let mut detail = done.url.clone();
            if let Some(miss) = &done.ipfs_miss {
                detail.push_str(&format!("; ipfs: {miss}"));
            }
            progress.done(filename, done.source, &detail, bytes, done.resumed);
            crate::transfer::log::record(
                &session.places,
                &crate::transfer::log::Record::new(filename, plan, &done, started.elapsed()),
            );
            if session.config.share.after_fetch && done.source == "mirror" {
                share_after_fetch(session, plan, &out, progress);
            }
            Ok(out)
        }
        Err(e) => {
            progress.abandon();
            // pacman 7 removes OUTPUT's directory after a failure: keep what arrived.
            crate::transfer::partial::save(&session.places, &expect, output, out.len());
            // Nothing arrived: no empty `.part` is left where pacman keeps its downloads.
            if let Err(e) = out.remove_if_empty() {
                progress.warn(&format!(
                    "cannot remove the empty {}: {e}",
                    output.display()
                ));
            }
            match e {
                DownloadError::Output(e) => Err(anyhow::Error::new(e).context(format!(
                    "cannot write {} for {filename} (is the disk full?)",
                    output.display()
                ))),
                other => bail!("could not download {filename}: {other}; {what_next}"),
            }
        }
    }
}

/// Seeds a file that just came from the mirror, verified, into the node, within
/// `[share] after_fetch_timeout`. Whatever happens, the download has succeeded: a node that
/// is down is a note for `-v`, anything else a warning.
fn share_after_fetch(session: &Session, plan: &Plan, out: &Output, progress: &Progress) {
    let (sha256, len) = (out.sha256(), out.len());
    let listed = plan.sources.iter().any(|s| match s {
        plan::Source::Mirror { expect, .. } => {
            expect.iter().any(|x| x.sha256 == sha256 && x.size == len)
        }
        _ => false,
    });
    if !listed {
        return;
    }
    let share = &session.config.share;
    let deadline = std::time::Instant::now() + share.after_fetch_timeout;
    let sharer = match share.sharer(Some(deadline)) {
        Ok(s) => s,
        Err(e) => return progress.warn(&format!("not shared: {e}")),
    };
    match sharer.seed(out.path(), &sha256, len) {
        Ok(crate::ipfs::seed::Outcome::Added { cid }) => {
            progress.note(&format!("shared through the IPFS node as {cid}"))
        }
        Ok(crate::ipfs::seed::Outcome::Present { cid }) => {
            progress.note(&format!("the IPFS node already shares it ({cid})"))
        }
        Err(e @ (RpcError::Unreachable { .. } | RpcError::Timeout { .. })) => {
            progress.note(&format!("not shared: {e}"))
        }
        Err(e) => progress.warn(&format!("not shared: {e}")),
    }
}

/// What `fetch` and `lookup` were given, resolved.
struct Resolved {
    /// The file to download (a `.sig` when asked for one).
    file: String,
    is_sig: bool,
    /// The entry chosen first (repository order), when the databases list it.
    entry: Option<Entry>,
    candidates: Vec<Entry>,
    /// URL path segments that may name a repository.
    dirs: Vec<String>,
    mirrors: Vec<String>,
}

impl Resolved {
    /// The sources for the file, the node's seeded copy first when it has one.
    fn plan(&self, session: &Session, progress: &Progress) -> Plan {
        let seeded = session.seeded_copies(self.is_sig, &self.candidates, &self.dirs, progress);
        plan::plan(
            self.is_sig,
            &self.candidates,
            &self.dirs,
            &session.fresh_config(progress),
            &seeded,
            &self.mirrors,
        )
    }
}

fn resolve(session: &Session, what: &str, progress: &Progress) -> Result<Resolved> {
    if what.contains("://") {
        let target = Target::parse(what)?;
        let candidates = url_candidates(session, &target, progress);
        return Ok(Resolved {
            entry: plan::choose(&candidates, &target.dirs)
                .first()
                .map(|e| (*e).clone()),
            file: target.filename,
            is_sig: target.is_sig,
            candidates,
            dirs: target.dirs,
            mirrors: vec![target.url],
        });
    }
    if !crate::pacman::names::is_plain_filename(what) {
        bail!("{what:?} is not a URL, a package file name or a package name");
    }
    let order = session.repo_order(progress);
    let (listed, is_sig) = split_sig(what);
    let query = if is_sig {
        Query::Filename(listed)
    } else {
        Query::Either(what)
    };
    let mut candidates = session.find(query, &order, progress)?;
    // A file name wins over a package name that happens to be spelled the same.
    if candidates.iter().any(|e| e.filename == listed) {
        candidates.retain(|e| e.filename == listed);
    }
    let Some(entry) = candidates.first().cloned() else {
        bail!(
            "{what} is not in any sync database under {} (check the name, or run `pacman -Sy`)",
            session.dbpath.join("sync").display()
        );
    };
    // A package name: every repository's entry for it is a different file; keep the first.
    candidates.retain(|e| e.filename == entry.filename);
    let file = if is_sig {
        format!("{}.sig", entry.filename)
    } else {
        entry.filename.clone()
    };
    let mirrors = session.mirror_urls(&entry, &file, progress);
    Ok(Resolved {
        file,
        is_sig,
        dirs: vec![entry.repo.clone()],
        entry: Some(entry),
        candidates,
        mirrors,
    })
}

/// `pacxfer fetch WHAT [-o PATH]`: a download from a shell, written to `PATH.part` and renamed
/// once verified.
pub fn fetch(session: &Session, what: &str, output: Option<&Path>) -> Result<ExitCode> {
    let early = Progress::plain(session.verbosity);
    let resolved = resolve(session, what, &early)?;
    let dest = match output {
        Some(p) if p.is_dir() => p.join(&resolved.file),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(&resolved.file),
    };
    let mut part = dest.clone().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let progress = Progress::new(&resolved.file, session.verbosity);
    let plan = resolved.plan(session, &progress);
    let locked = deliver(
        session,
        &resolved.file,
        &plan,
        &part,
        &progress,
        Delivery {
            what_next: "run it again to resume",
            later: None,
            existing: None,
            server_time: false,
        },
    )?;
    std::fs::rename(&part, &dest)
        .with_context(|| format!("cannot rename {} to {}", part.display(), dest.display()))?;
    drop(locked);
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of `lookup`.
#[derive(Serialize)]
struct LookupJson<'a> {
    repo: &'a str,
    filename: &'a str,
    name: &'a str,
    version: &'a str,
    arch: &'a str,
    sha256: Option<String>,
    csize: Option<u64>,
    signature: bool,
    cid: Option<&'a str>,
    cid_source: Option<&'static str>,
    sources: Vec<String>,
    /// The gateway's circuit breaker: `null` when closed.
    gateway_skipped: Option<BreakerJson>,
}

#[derive(Serialize)]
struct BreakerJson {
    seconds_left: u64,
    reason: String,
}

/// Prints one line of `lookup`, masked and escaped like every other line pacxfer prints.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", crate::ui::shown::shown(&format!($($arg)*)))
    };
}

/// `pacxfer lookup WHAT [--json]`.
pub fn lookup(session: &Session, what: &str, json: bool) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let resolved = resolve(session, what, &progress)?;
    let Some(entry) = &resolved.entry else {
        bail!(
            "{} is not in any sync database under {}",
            resolved.file,
            session.dbpath.join("sync").display()
        );
    };
    let plan = resolved.plan(session, &progress);
    let sources: Vec<String> = plan
        .sources
        .iter()
        .map(|s| {
            crate::ui::shown::redact(&s.url().map_or_else(|| s.describe(), str::to_string))
                .into_owned()
        })
        .collect();
    let known = cid::for_entry(entry, session.config.gateway.raw_block_max);
    let cid_source = known.as_ref().map(|k| match k {
        KnownCid::Database(_) => "database",
        KnownCid::RawBlock(_) => "raw-block",
    });
    let circuit = match crate::sources::gateway::breaker(&session.config).state() {
        State::Open { left, reason } if session.config.gateway.enabled => Some(BreakerJson {
            seconds_left: left.as_secs(),
            reason,
        }),
        _ => None,
    };
    if json {
        let doc = LookupJson {
            repo: &entry.repo,
            filename: &entry.filename,
            name: &entry.name,
            version: &entry.version,
            arch: &entry.arch,
            sha256: entry.sha256.map(hex::encode),
            csize: entry.csize,
            signature: entry.pgpsig.is_some(),
            cid: known.as_ref().map(KnownCid::as_str),
            cid_source,
            sources,
            gateway_skipped: circuit,
        };
        println!("{}", crate::ui::answer::json_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "(none)".to_string());
    say!("repo:      {}", entry.repo);
    say!("filename:  {}", entry.filename);
    say!("name:      {}", entry.name);
    say!("version:   {}", entry.version);
    say!("arch:      {}", entry.arch);
    say!("sha256:    {}", or_none(entry.sha256.map(hex::encode)));
    say!(
        "csize:     {}",
        or_none(
            entry
                .csize
                .map(|c| format!("{c} ({})", crate::ui::progress::size(c)))
        )
    );
    say!(
        "signature: {}",
        if entry.pgpsig.is_some() {
            "embedded in the database"
        } else {
            "not embedded"
        }
    );
    say!(
        "cid:       {}",
        match &known {
            Some(KnownCid::Database(c)) => format!("{c} (from the database)"),
            Some(KnownCid::RawBlock(c)) => format!("{c} (raw block, derived from sha256)"),
            None => "(unknown)".to_string(),
        }
    );
    if resolved.candidates.len() > 1 {
        let repos: Vec<&str> = resolved
            .candidates
            .iter()
            .map(|e| e.repo.as_str())
            .collect();
        say!("also in:   {}", repos[1..].join(", "));
    }
    if session.config.gateway.enabled {
        say!(
            "gateway:   {} ({})",
            session.config.gateway_base(),
            match &circuit {
                Some(c) => format!(
                    "skipped for {}s more: circuit open after: {}",
                    c.seconds_left, c.reason
                ),
                None => "circuit closed: tried first".to_string(),
            }
        );
    }
    say!("sources:");
    for (i, source) in plan.sources.iter().enumerate() {
        say!("  {}. [{}] {}", i + 1, source.label(), source.describe());
    }
    Ok(ExitCode::SUCCESS)
}
