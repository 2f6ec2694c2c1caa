//! `pacxfer prefetch [PKG...]`: fetch the next upgrade (or the packages named and their missing
//! dependencies) into pacman's cache ahead of time, in parallel, so that `pacman -Syu` only
//! installs. The command of its engine: the work is in the `prefetch` folder; this file checks the ground, plans each file and
//! says what happened.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Session;
use crate::cli::PrefetchArgs;
use crate::db::entry::Entry;
use crate::prefetch::batch;
use crate::prefetch::private::{self, Private};
use crate::prefetch::space;
use crate::prefetch::Job;
use crate::transfer::plan;
use crate::ui::progress::{size, Batch, Progress};

/// Whether this process may create files in `dir`.
fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
        && std::fs::metadata(dir).is_ok_and(|m| m.is_dir())
}

pub fn prefetch(session: &Session, args: PrefetchArgs) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let started = Instant::now();
    let lock = session.dbpath.join("db.lck");
    if lock.exists() {
        bail!(
            "pacman is running ({} exists): prefetch again once it is done (remove the file \
             only if no pacman is running)",
            lock.display()
        );
    }
    let Some(place) = session.places.writable() else {
        bail!(
            "no cache directory pacxfer may write ({}): prefetch keeps its own copy of the \
             databases there; run as root, or create it for the download user (contrib/tmpfiles.d)",
            session
                .places
                .dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let cache_dirs = session
        .pacman_conf
        .cache_dirs()
        .map_err(|e| anyhow::anyhow!("{e}; prefetch needs pacman's CacheDir"))?;
    let Some(target_dir) = cache_dirs.iter().find(|d| writable(d)).cloned() else {
        bail!(
            "pacman's CacheDir ({}) is not writable by this user: run prefetch as root, or as \
             pacman's DownloadUser when the cache belongs to it",
            cache_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };

    // 1. The private copy of the databases.
    let private =
        Private::prepare(place.path(), &session.dbpath).map_err(|e| anyhow::anyhow!(e))?;
    let repos = session.pacman_conf.repos()?;
    let mut servers: HashMap<String, Vec<String>> = HashMap::new();
    // Repositories whose database could not be had this time (the result cannot be complete),
    // each with whether an earlier run's copy is there.
    let mut unsynced: Vec<(String, bool)> = Vec::new();
    for repo in &repos {
        let mut list = session.pacman_conf.servers(repo)?;
        // A published view whose publisher stopped would hold the system back: not asked.
        list.retain(|url| match session.stale_view(url) {
            Some((view, old)) => {
                progress.warn(&format!(
                    "[{repo}] {view} was last published {} ago, more than [gateway] max_age: \
                     its databases are not used",
                    crate::sources::views::shown_age(old)
                ));
                false
            }
            None => true,
        });
        if let Err(why) = private::sync_db(
            &session.config,
            &session.places,
            &private,
            repo,
            &list,
            session.pacman_conf.checks_database_signatures(repo),
            &progress,
        ) {
            let earlier = private.sync_dir().join(format!("{repo}.db")).is_file();
            progress.warn(&format!(
                "[{repo}] its database could not be had: {why}; {}",
                if earlier {
                    "the copy an earlier run fetched is used, and may be out of date"
                } else {
                    "no earlier run fetched a copy of it"
                }
            ));
            unsynced.push((repo.clone(), earlier));
        }
        servers.insert(repo.clone(), list);
    }
    let unsynced_names = || {
        unsynced
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // pacman plans an upgrade only with every repository's database (with one missing it
    // fails, with all missing it sees nothing to do): without a copy there is nothing to ask.
    let never_had: Vec<&str> = unsynced
        .iter()
        .filter(|(_, earlier)| !earlier)
        .map(|(r, _)| r.as_str())
        .collect();
    if !never_had.is_empty() {
        bail!(
            "cannot tell what to prefetch: pacman needs every repository's database to plan the \
             upgrade, and the database of {} could not be had ({} of {} repositories); \
             prefetch again once the Servers answer",
            never_had.join(", "),
            never_had.len(),
            repos.len()
        );
    }

    // 2. What pacman would download.
    let targets = private::pacman_targets(
        session.config.pacman_conf.as_deref(),
        &private,
        &args.packages,
    )
    .map_err(|e| {
        if unsynced.is_empty() {
            anyhow::anyhow!(e)
        } else {
            anyhow::anyhow!(
                "{e} (judged with an earlier copy of the database of {}, which could not be had)",
                unsynced_names()
            )
        }
    })?;
    // Said instead of "up to date" or "complete" when a database could not be had.
    let incomplete = (!unsynced.is_empty()).then(|| {
        format!(
            "the database of {} could not be had ({} of {} repositories) and an earlier copy was \
             used, so newer packages it may list are not known; prefetch again once the Servers \
             answer",
            unsynced_names(),
            unsynced.len(),
            repos.len()
        )
    });

    // 3. Each file not already there, planned.
    let config = session.fresh_config(&progress);
    let mut entries: HashMap<String, HashMap<String, Entry>> = HashMap::new();
    let mut jobs = Vec::new();
    let mut present = 0u64;
    let mut unknown = Vec::new();
    let mut checks_sigs: HashMap<String, bool> = HashMap::new();
    for (repo, file) in &targets {
        if !entries.contains_key(repo) {
            let map = private::entries(&private, repo, &progress)
                .map_err(|e| anyhow::anyhow!("[{repo}]: {e}"))?;
            entries.insert(repo.clone(), map);
        }
        let Some(entry) = entries.get(repo).and_then(|m| m.get(file)) else {
            unknown.push(file.clone());
            continue;
        };
        let sig_wanted = entry.pgpsig.is_none()
            && *checks_sigs
                .entry(repo.clone())
                .or_insert_with(|| session.pacman_conf.checks_package_signatures(repo))
            && !cache_dirs
                .iter()
                .any(|d| d.join(format!("{file}.sig")).is_file());
        let there = private::already_there(&cache_dirs, entry).is_some();
        if there {
            present += 1;
            if !sig_wanted {
                continue;
            }
        }
        // pacman's order for a package: its CacheServer lines, then its Server lines.
        let mirrors: Vec<String> = session
            .pacman_conf
            .cache_servers(repo)
            .unwrap_or_default()
            .iter()
            .chain(servers.get(repo).into_iter().flatten())
            .map(|s| format!("{}/{file}", s.trim_end_matches('/')))
            .collect();
        let dirs = vec![repo.clone()];
        let candidates = vec![entry.clone()];
        let plan = (!there).then(|| {
            let seeded = session.seeded_copies(false, &candidates, &dirs, &progress);
            plan::plan(false, &candidates, &dirs, &config, &seeded, &mirrors)
        });
        let sig = sig_wanted.then(|| {
            let sig_urls: Vec<String> = mirrors.iter().map(|u| format!("{u}.sig")).collect();
            plan::plan(true, &candidates, &dirs, &config, &[], &sig_urls)
        });
        jobs.push(Job {
            filename: file.clone(),
            entry: entry.clone(),
            plan,
            sig,
            dir: target_dir.clone(),
        });
    }
    for file in &unknown {
        progress.warn(&format!(
            "{file}: pacman wants it but its database copy does not list it; not prefetched"
        ));
    }
    if targets.is_empty() {
        if let Some(why) = &incomplete {
            bail!("nothing to prefetch from the databases at hand, but {why}");
        }
        progress.info(if args.packages.is_empty() {
            "nothing to prefetch: the system is up to date with the mirrors' databases"
        } else {
            "nothing to prefetch"
        });
        return Ok(ExitCode::SUCCESS);
    }

    // 4. Room for it all before the first byte, as pacman checks it (an upgrade larger than
    // the filesystem would fill it and still not arrive).
    if jobs.iter().any(|j| j.plan.is_some() || j.sig.is_some()) {
        match space::check_space(&target_dir, &jobs) {
            Ok(room) if !room.fits() => bail!("{}", space::no_room(&target_dir, &room)),
            Ok(_) => {}
            Err(e) => progress.warn(&format!(
                "cannot tell how much space is free in {}: {e}; prefetching without that check",
                target_dir.display()
            )),
        }
    }

    // 5. The downloads, side by side.
    let packages = jobs.iter().filter(|j| j.plan.is_some()).count();
    let total: u64 = jobs
        .iter()
        .filter(|j| j.plan.is_some())
        .filter_map(|j| j.entry.csize)
        .sum();
    let batch = Batch::new(jobs.len() as u64, total, session.verbosity);
    let share = &session.config.share;
    let seed = |job: &Job, path: &Path| {
        if args.seed {
            seed_one(share, job, path, &batch);
        }
    };
    let outcomes = batch::run_batch(
        &session.config,
        &session.places,
        &jobs,
        usize::from(args.jobs),
        &batch,
        &seed,
    );

    // Here, not in the background: under systemd the unit's processes end with it.
    if args.seed && share.lan && outcomes.iter().any(|o| o.result.is_ok()) {
        if let Err(e) = super::announce::announce(session, false) {
            progress.warn(&format!("{e:#}"));
        }
    }

    // 6. The summary.
    let mut by_source: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut sig_missing = 0;
    let out_of_space = outcomes.iter().any(|o| o.no_space);
    for o in &outcomes {
        match &o.result {
            Ok(f) => {
                if let Some(source) = f.source {
                    let e = by_source.entry(source).or_default();
                    e.0 += 1;
                    e.1 += f.bytes;
                }
                if matches!(f.sig, Some(Err(_))) {
                    sig_missing += 1;
                }
            }
            Err(_) => failed.push(o.filename.clone()),
        }
    }
    let elapsed = started.elapsed();
    let fetched: u64 = by_source.values().map(|v| v.1).sum();
    let sources: Vec<String> = by_source
        .iter()
        .map(|(s, (n, b))| format!("{n} from {s} ({})", size(*b)))
        .collect();
    progress.info(&format!(
        "prefetched {} of {packages} files in {} ({}/s){}{}; {present} already in the cache",
        by_source.values().map(|v| v.0).sum::<u64>(),
        crate::ui::progress::secs(elapsed),
        size(crate::ui::progress::rate(fetched, elapsed)),
        if sources.is_empty() { "" } else { ": " },
        sources.join(", "),
    ));
    if sig_missing > 0 {
        progress.warn(&format!(
            "{sig_missing} signatures could not be had from the mirrors; pacman will ask for \
             them itself"
        ));
    }
    if out_of_space {
        if !failed.is_empty() {
            progress.warn(&format!(
                "not prefetched ({}): {}",
                failed.len(),
                failed.join(" ")
            ));
        }
        bail!(
            "pacman's CacheDir {} ran out of space: nothing this run wrote of the files that \
             did not arrive is left (an earlier run's partial download is cut back to what it \
             held, or removed once found wrong); free some space there (paccache -r, pacman \
             -Sc) and prefetch again",
            target_dir.display()
        );
    }
    if !failed.is_empty() {
        progress.warn(&format!(
            "not prefetched ({}): {}; pacman will download them itself",
            failed.len(),
            failed.join(" ")
        ));
    }
    if let Some(why) = &incomplete {
        progress.warn(&format!("the upgrade prefetched may be incomplete: {why}"));
    }
    if !failed.is_empty() || incomplete.is_some() {
        return Ok(ExitCode::FAILURE);
    }
    if unknown.is_empty() && sig_missing == 0 {
        let what = format!(
            "a complete upgrade is ready: {} packages in pacman's cache; pacman -Syu will only install",
            targets.len()
        );
        progress.info(&what);
        // Said once, by the run that completed it, not again by every later run.
        if args.notify && !by_source.is_empty() {
            notify(&what);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--seed`: the file, verified, into the node like `pacxfer seed` does.
fn seed_one(share: &crate::config::ShareConfig, job: &Job, path: &Path, batch: &Batch) {
    let Some((sha256, size)) = job.entry.verifiable() else {
        return;
    };
    let sharer = match share.sharer(None) {
        Ok(s) => s,
        Err(e) => return batch.line(&format!("{}: not seeded: {e}", job.filename)),
    };
    if let Err(e) = sharer.seed(path, &sha256, size) {
        batch.line(&format!("{}: not seeded: {e}", job.filename));
    }
}

/// Tells the logged-in users (a desktop notification where `notify-send` and their session
/// bus are there); the line on stderr goes to the journal under systemd in any case.
fn notify(text: &str) {
    if crate::cache::trust::euid() != 0 {
        return;
    }
    let Ok(dirs) = std::fs::read_dir("/run/user") else {
        return;
    };
    for dir in dirs.flatten() {
        let Some(uid) = dir.file_name().to_str().and_then(|u| u.parse::<u32>().ok()) else {
            continue;
        };
        let bus: PathBuf = dir.path().join("bus");
        let Ok(meta) = std::fs::metadata(dir.path()) else {
            continue;
        };
        if uid == 0 || !bus.exists() {
            continue;
        }
        let gid = std::os::unix::fs::MetadataExt::gid(&meta);
        let mut cmd = std::process::Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("notify-send")
            .args(["--app-name=pacxfer", "Updates ready", text])
            .env_clear()
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", bus.display()),
            )
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _ = crate::pacman::conf::run_bounded(&mut cmd, Duration::from_secs(5));
    }
}
