//! `pacxfer publish`: fill and refresh a package cache in IPFS from a mirror (or from this
//! machine's pacman cache), for a LAN, a community network or a third-party repository.
//! The command of its engine: the work is in the `publish` folder; this file turns arguments into a job and the outcome into lines.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::Session;
use crate::cli::PublishArgs;
use crate::publish::{Job, Publisher};
use crate::ui::progress::Progress;

/// Where the state lives unless `--state` says: root's in /var/lib/pacxfer, a user's under
/// `$XDG_STATE_HOME` (default ~/.local/state).
fn default_state() -> PathBuf {
    if crate::cache::trust::euid() == 0 {
        return PathBuf::from("/var/lib/pacxfer/publish.sqlite");
    }
    let base = crate::cache::xdg_dir("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("pacxfer/publish.sqlite")
}

pub fn publish(session: &Session, args: PublishArgs) -> Result<ExitCode> {
    let mirror = match (&args.mirror, args.from_cache) {
        (Some(m), false) => {
            if !(m.starts_with("http://") || m.starts_with("https://") || m.starts_with("file://"))
            {
                bail!("--mirror {m:?} is not an http://, https:// or file:// URL");
            }
            Some(m.clone())
        }
        (None, true) => None,
        (None, false) if args.repos.is_empty() => None,
        _ => bail!("give either --mirror URL (a Server line with $repo and $arch) or --from-cache"),
    };
    let mut config = session.config.clone();
    if let Some(api) = &args.api {
        crate::ipfs::rpc::Endpoint::parse(api).map_err(|e| anyhow::anyhow!("--api: {e}"))?;
        config.share.api = api.clone();
    }
    if let Some(url) = &args.cluster {
        crate::ipfs::rpc::Endpoint::parse(url).map_err(|e| anyhow::anyhow!("--cluster: {e}"))?;
        config.publish.cluster = Some(url.clone());
    }

    let state = args.state.clone().unwrap_or_else(default_state);
    let work = state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join("publish-work");
    let cache_dirs = if mirror.is_none() && !args.repos.is_empty() {
        session
            .pacman_conf
            .cache_dirs()
            .map_err(|e| anyhow::anyhow!("{e}; --from-cache needs pacman's CacheDir"))?
    } else {
        Vec::new()
    };
    let job = Job {
        mirror,
        repos: args.repos,
        arch: args.arch,
        state,
        work,
        keep_days: args.keep_days,
        keep_versions: args.keep_versions,
        databases_only: args.databases_only,
        ipns_key: args.ipns_key,
        dbpath: session.dbpath.clone(),
        cache_dirs,
        sources: args.sources,
    };
    let progress = Progress::plain(session.verbosity);
    let publisher = Publisher::new(&config, &job, &progress)?;
    let report = publisher.run()?;
    let summary = &report.summary;
    progress.info(&format!(
        "published /ipfs/{} as /ipns/{}: {} added ({}), {} already there, {} pruned{}{} in {:.1}s",
        summary.root,
        summary.name,
        summary.added,
        crate::ui::progress::size(summary.bytes),
        summary.present,
        summary.pruned,
        if summary.skipped > 0 {
            format!(", {} not in the cache", summary.skipped)
        } else {
            String::new()
        },
        if summary.failed > 0 {
            format!(", {} failed", summary.failed)
        } else {
            String::new()
        },
        summary.seconds
    ));
    let mut pin_failed = false;
    if let (Some(pinned), Some(url)) = (&report.pinned, &config.publish.cluster) {
        progress.info(&cluster_line(&summary.root, url, pinned));
        if !pinned.failed.is_empty() {
            pin_failed = true;
            progress.warn(&format!(
                "the cluster could not pin the root on {} peer{}: {} (see the cluster's own log; the next run pins it again)",
                pinned.failed.total,
                if pinned.failed.total == 1 { "" } else { "s" },
                pinned.failed.summary()
            ));
        }
    }
    if args.json {
        println!("{}", crate::ui::answer::json_line(summary)?);
    }
    if let Some(e) = report.cluster_error {
        return Err(e.into());
    }
    Ok(if summary.failed > 0 || pin_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What the cluster did with the root, in one line.
fn cluster_line(root: &str, url: &str, p: &crate::publish::cluster::Pinned) -> String {
    let mut line = format!(
        "pinned /ipfs/{root} in the ipfs-cluster at {}{}: on {} of {} peers",
        crate::ui::shown::redact(url),
        if p.updated { " (pin update)" } else { "" },
        p.pinned,
        p.allocated
    );
    if !p.unpinned.is_empty() {
        line.push_str(&format!("; unpinned {}", p.unpinned.join(", ")));
    }
    if !p.left.is_empty() {
        line.push_str(&format!(
            "; {} stays pinned until the root is pinned on every peer (a later run unpins it)",
            p.left.join(", ")
        ));
    }
    line
}
