//! What every command starts from: the configuration, pacman's settings, the sync databases
//! and their indexes, the cache places, and the verbosity (`Session`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cache::Places;
use crate::config::{self, Config};
use crate::db::entry::{Entry, Query};
use crate::db::syncdb::{self, DbError};
use crate::ipfs::rpc::RpcError;
use crate::pacman::conf::{self as pacman_conf, PacmanConf};
use crate::pacman::target::Target;
use crate::sources::breaker::State;
use crate::sources::views;
use crate::transfer::plan::{self};
use crate::ui::progress::{Progress, Verbosity};

/// A copy of a file the node or LAN peers hold under one of the names asked for
/// (`Session::copies_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeCopy {
    /// The name it was found under.
    pub rel: String,
    pub cid: String,
    /// Its size, as the node gives it (unknown for a LAN peer's copy of one raw block).
    pub size: Option<u64>,
    /// The LAN peers listing it; empty for the node's own copy.
    pub peers: Vec<String>,
}

/// What every command starts from.
pub struct Session {
    pub config: Config,
    pub dbpath: PathBuf,
    /// Where indexes and gateway state live.
    pub places: Places,
    pub pacman_conf: PacmanConf,
    pub verbosity: Verbosity,
    /// The configuration file named on the command line or in `PACXFER_CONFIG`, and the
    /// cache directory given there: what a pacxfer started from this one is given too.
    pub config_path: Option<PathBuf>,
    pub cache_dir_arg: Option<PathBuf>,
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
            config_path: config_path.map(Path::to_path_buf),
            cache_dir_arg: cache_dir.map(Path::to_path_buf),
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
    /// (`/pacxfer/<sha256>` in its MFS, `[share] seeded`), or, when it holds none, the copies
    /// LAN peers list (`[share] lan`), of the size the database lists (see `copies_at`).
    pub(crate) fn seeded_copies(
        &self,
        is_sig: bool,
        candidates: &[Entry],
        url_dirs: &[String],
        progress: &Progress,
    ) -> Vec<plan::Seeded> {
        if is_sig {
            return Vec::new();
        }
        let chosen = plan::choose(candidates, url_dirs);
        let expect = plan::expectations(&chosen);
        let mut rels: Vec<String> = Vec::new();
        for x in &expect {
            let rel = hex::encode(x.sha256);
            if !rels.contains(&rel) {
                rels.push(rel);
            }
        }
        let raw_block_max = self.config.gateway.raw_block_max;
        // The expectation a copy under `rel` of `size` bytes can be (the same SHA-256 may be
        // listed with two sizes by two repositories; the bytes decide).
        let expected = |rel: &str, size: Option<u64>| {
            expect.iter().copied().find(|x| {
                hex::encode(x.sha256) == rel
                    && match size {
                        Some(size) => size == x.size,
                        // One raw block is at most what the profile puts in one chunk.
                        None => x.size <= raw_block_max,
                    }
            })
        };
        let fits = |copy: &NodeCopy| -> Result<(), String> {
            if expected(&copy.rel, copy.size).is_some() {
                return Ok(());
            }
            let sizes: Vec<String> = expect
                .iter()
                .filter(|x| hex::encode(x.sha256) == copy.rel)
                .map(|x| x.size.to_string())
                .collect();
            Err(match copy.size {
                None => format!("one block, too small for {} bytes", sizes.join(" or ")),
                Some(size) => format!("{size} bytes, not {}", sizes.join(" or ")),
            })
        };
        self.copies_at(&rels, &fits, progress)
            .into_iter()
            .filter_map(|c| {
                Some(plan::Seeded {
                    expect: expected(&c.rel, c.size)?,
                    cid: c.cid,
                    peers: c.peers,
                })
            })
            .collect()
    }

    /// The copies of a file the node holds at `/pacxfer/<rel>` for the names `rels` (a
    /// SHA-256, or `sources/<algo>/<hex>` for a build source) when `[share] seeded`, or, when
    /// it holds none, those LAN peers list at `<their root>/<rel>` (`[share] lan`); `fits`
    /// passes over a copy that cannot be the file, saying why. One quick question to the
    /// node's API for each name; a node whose API is down or hangs is skipped by later calls
    /// for `[gateway] breaker`, like the gateway.
    pub(crate) fn copies_at(
        &self,
        rels: &[String],
        fits: &dyn Fn(&NodeCopy) -> Result<(), String>,
        progress: &Progress,
    ) -> Vec<NodeCopy> {
        let share = &self.config.share;
        let lan = share.lan && !self.config.gateway.network_wait().is_zero();
        if rels.is_empty() || !(share.seeded || lan) || !self.config.gateway.enabled {
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
        let mut found: Vec<NodeCopy> = Vec::new();
        for rel in rels.iter().filter(|_| share.seeded) {
            match sharer.seeded_at(rel) {
                Ok(Some(s)) => {
                    let copy = NodeCopy {
                        rel: rel.clone(),
                        cid: s.cid,
                        size: Some(s.size),
                        peers: Vec::new(),
                    };
                    if fits(&copy).is_ok() && !found.iter().any(|c| c.cid == copy.cid) {
                        found.push(copy);
                    }
                }
                Ok(None) => {}
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
        if found.is_empty() && lan {
            // A budget of its own: the lookup above may have used some of its own.
            let deadline = std::time::Instant::now()
                + self.config.gateway.connect_timeout
                + std::time::Duration::from_millis(1500);
            if let Ok(sharer) = share.sharer(Some(deadline)) {
                match self.lan_copies(sharer.rpc(), rels, fits, progress) {
                    Ok(copies) => found = copies,
                    Err(e) => {
                        // A node API that is down or hangs is skipped by later calls, as
                        // when it is asked for a seeded copy.
                        if matches!(e, RpcError::Unreachable { .. } | RpcError::Timeout { .. }) {
                            breaker.trip(&e.to_string());
                        }
                        progress.note(&format!("no LAN peer asked: {e}"));
                    }
                }
            }
        }
        found
    }

    /// The copies of the file that LAN peers' directories list (`ipfs::lan`), under each of
    /// `rels`. Peers known to have no directory are not asked; those that
    /// turn out to have none, or do not answer in time, are remembered in the cache places.
    fn lan_copies(
        &self,
        rpc: &crate::ipfs::rpc::Rpc,
        rels: &[String],
        fits: &dyn Fn(&NodeCopy) -> Result<(), String>,
        progress: &Progress,
    ) -> Result<Vec<NodeCopy>, RpcError> {
        use crate::ipfs::lan;
        let peers = lan::lan_peers(rpc)?;
        let skipped = lan::skipped(&self.places, crate::unix_millis());
        let mut ask: Vec<String> = peers
            .into_iter()
            .filter(|p| !skipped.iter().any(|(s, _)| s == p))
            .collect();
        if ask.is_empty() {
            return Ok(Vec::new());
        }
        // A peer on the LAN resolves within milliseconds; the bound only matters for a node
        // that also knows the internet's DHT, and is kept below the call's own deadline so
        // that such a peer is remembered, not waited for on every file.
        let finder = lan::Finder::new(rpc, std::time::Duration::from_millis(800));
        let mut out: Vec<NodeCopy> = Vec::new();
        for rel in rels {
            if ask.is_empty() {
                break;
            }
            let found = finder.find_at(rel, &ask);
            lan::skip(&self.places, &found.no_view, lan::NO_VIEW_FOR);
            for (peer, why) in &found.failed {
                progress.note(&format!("LAN peer {peer}: {why}"));
            }
            let failed: Vec<String> = found.failed.iter().map(|(p, _)| p.clone()).collect();
            lan::skip(&self.places, &failed, lan::SILENT_FOR);
            if !found.unknown.is_empty() {
                progress.note(&format!(
                    "{} not asked in time",
                    plan::peer_list(&found.unknown)
                ));
            }
            let none = found.copies.is_empty() && found.failed.is_empty();
            for copy in found.copies {
                let copy = NodeCopy {
                    rel: rel.clone(),
                    cid: copy.cid,
                    size: copy.size,
                    peers: copy.peers,
                };
                if let Err(why) = fits(&copy) {
                    progress.note(&format!(
                        "LAN {} list {rel} as {why}: not asked",
                        plan::peer_list(&copy.peers)
                    ));
                    continue;
                }
                progress.note(&format!("LAN {} list {rel}", plan::peer_list(&copy.peers)));
                // One copy by CID, whichever names it was listed under.
                match out.iter_mut().find(|c| c.cid == copy.cid) {
                    Some(c) => {
                        for p in copy.peers {
                            if !c.peers.contains(&p) {
                                c.peers.push(p);
                            }
                        }
                    }
                    None => out.push(copy),
                }
            }
            if none {
                progress.note(&format!(
                    "no LAN peer lists {rel} ({} asked)",
                    ask.len() - found.no_view.len() - found.unknown.len()
                ));
            }
            // The next name is asked only of peers that answered this one.
            ask.retain(|p| {
                !found.no_view.contains(p) && !found.unknown.contains(p) && !failed.contains(p)
            });
        }
        Ok(out)
    }

    /// pacman.conf's repository order, or none when pacman-conf cannot say.
    pub(super) fn repo_order(&self, progress: &Progress) -> Vec<String> {
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
    pub(super) fn refuse_stale_database(&self, target: &Target) -> Result<()> {
        if !crate::pacman::target::never_listed(&target.listed_name) {
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
    pub(super) fn mirror_urls(
        &self,
        entry: &Entry,
        file: &str,
        progress: &Progress,
    ) -> Vec<String> {
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
