//! `pacxfer URL OUTPUT`: pacman's XferCommand. One call, one file: its plan, failover across
//! the repository's later Server lines, the output written and verified, the success line and
//! the download log; `deliver` is shared with `fetch`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

use crate::db::entry::Entry;
use crate::ipfs::rpc::RpcError;
use crate::makepkg::sums::Sums;
use crate::pacman::target::{Scheme, Target};
use crate::sources::mirror::Existing;
use crate::transfer::download::{self, Context, DownloadError};
use crate::transfer::output::Output;
use crate::transfer::plan::{self, Plan};
use crate::ui::progress::Progress;

use super::resolve::url_candidates;
use super::Session;
use crate::pacman::target::never_listed;

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
        let own = existing_copy(session, &target, &progress);
        match target.is_sig {
            true => own,
            false => crate::sources::updates::newer_copy(
                &session.config,
                &session.places,
                &target.listed_name,
                own,
                &target.url,
                &|repo| session.pacman_conf.checks_database_signatures(repo),
                &progress,
            ),
        }
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
            sums: None,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The Server lines of the repository pacman's URL came from that pacman lists after it.
pub(super) struct Failover {
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
pub(super) struct Delivery<'a> {
    /// What the error line says comes next (unless `later` says it).
    pub(super) what_next: &'a str,
    /// When the plan fails: the Server lines to try next, worked out only then (pacman's
    /// `%u`), so a call whose first URL serves costs no pacman-conf question.
    pub(super) later: Option<&'a dyn Fn() -> Option<Failover>>,
    /// The copy pacman holds (a database): HTTP mirrors are asked only if it changed.
    pub(super) existing: Option<Existing>,
    /// Give the output the mtime the server gives the file, as pacman's own downloader does
    /// for databases, so that the next `If-Modified-Since` is exact.
    pub(super) server_time: bool,
    /// A build source, and the sums its PKGBUILD pins (see `download::Context::sums`).
    pub(super) sums: Option<Vec<Sums>>,
}

/// Runs a plan into `output` and prints the success line. The output stays locked until
/// what is returned is dropped.
pub(super) fn deliver(
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
    let algos = crate::makepkg::sums::algos(how.sums.as_deref().unwrap_or(&[]));
    let mut out = Output::open_summing(output, &algos, || {
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
    ctx.lan_places = Some(session.places.clone());
    ctx.existing = how.existing;
    ctx.sums = how.sums.clone();
    // makepkg's agent: makepkg judges upstream's own file itself.
    ctx.hand_on_mismatch = how.sums.is_some();
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
                // Positions in that plan are not positions in `plan`: the log goes by label.
                other => result = other.map(|d| download::Delivered { index: None, ..d }),
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
            // A build source's mirror is its upstream server.
            let label = match (&how.sums, done.source) {
                (Some(_), "mirror") => "upstream",
                (_, source) => source,
            };
            progress.done(filename, label, &detail, bytes, done.resumed);
            crate::transfer::log::record(
                &session.places,
                &crate::transfer::log::Record::new(filename, plan, &done, started.elapsed()),
            );
            // A copy from LAN peers is seeded too: the next machine finds it here as well, and
            // keeps finding it when the first one is off. It is added from the verified file,
            // never linked by the peer's CID: a resumed file's first bytes never came from it.
            if session.config.share.after_fetch && matches!(done.source, "mirror" | "lan") {
                match &how.sums {
                    Some(sums) => super::dlagent::share_after_fetch(session, sums, &out, progress),
                    None => share_after_fetch(session, plan, &out, progress),
                }
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

/// Seeds a file that just came from the mirror or LAN peers, verified, into the node, within
/// `[share] after_fetch_timeout`. Whatever happens, the download has succeeded: a node that
/// is down is a note for `-v`, anything else a warning.
fn share_after_fetch(session: &Session, plan: &Plan, out: &Output, progress: &Progress) {
    let (sha256, len) = (out.sha256(), out.len());
    let listed = plan
        .expected()
        .iter()
        .any(|x| x.sha256 == sha256 && x.size == len);
    if !listed {
        return;
    }
    let share = &session.config.share;
    let deadline = std::time::Instant::now() + share.after_fetch_timeout;
    let sharer = match share.sharer(Some(deadline)) {
        Ok(s) => s,
        Err(e) => return progress.warn(&format!("not shared: {e}")),
    };
    report_shared(session, sharer.seed(out.path(), &sha256, len), progress);
}

/// Says what sharing a download did (a node that is down is a note for `-v`, anything else a
/// warning), and publishes the node's directory to LAN peers when something was added.
pub(super) fn report_shared(
    session: &Session,
    outcome: Result<crate::ipfs::seed::Outcome, RpcError>,
    progress: &Progress,
) {
    match outcome {
        Ok(crate::ipfs::seed::Outcome::Added { cid }) => {
            progress.note(&format!("shared through the IPFS node as {cid}"));
            if session.config.share.lan {
                super::announce::start_in_background(session, progress);
            }
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
