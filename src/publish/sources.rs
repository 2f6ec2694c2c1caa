//! A source cache (`publish --sources DIR…`): for every PKGBUILD directory given (with its
//! `.SRCINFO`; AUR clones have one), each source fetched over HTTP(S) and pinned by a strong
//! sum is downloaded from upstream through pacxfer's own path (resume, timeouts, proxies),
//! judged against the PKGBUILD's sums, hashed with SHA-256, SHA-512 and BLAKE2b besides what
//! it pins, added to the node and recorded; the view links it as `sources/<algo>/<hex>` for
//! every one of those sums and as `sources/names/<pkgbase>/<file>`. A source already held
//! under any of its sums is not fetched again. Sources no PKGBUILD has named for `keep_days`
//! are pruned, except those of package bases that failed this run (they stay as last
//! published). A PKGBUILD is never run: a directory without a `.SRCINFO` is skipped, and one
//! older than its PKGBUILD is read all the same, since every file is judged by its sums.

use super::state::SourceListing;
use super::{file_progress, PublishError, Publisher};
use crate::makepkg::caller;
use crate::makepkg::srcinfo::SourceEntry;
use crate::makepkg::sums::Sums;
use crate::transfer::download::{self, Context};
use crate::transfer::plan;

/// What one source came to.
enum Outcome {
    Added(u64),
    Present,
}

impl Publisher<'_> {
    /// Fetches, adds and records the sources of the PKGBUILD directories in the job.
    pub(super) fn sources(&mut self) -> Result<(), PublishError> {
        let dirs = caller::pkgbuild_dirs(&self.job.sources);
        if dirs.is_empty() {
            return Err(PublishError::Setting(format!(
                "no PKGBUILD directory in {}: give directories holding a PKGBUILD and its \
                 .SRCINFO, or directories of them",
                self.job
                    .sources
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (mut added, mut present, mut unpinned, mut bytes) = (0u64, 0u64, 0u64, 0u64);
        let mut seen: Vec<SourceListing> = Vec::new();
        // Package bases (or, unread, their directories' names) that failed this run: what
        // they had stays as last published, whatever its age.
        let mut spared: Vec<String> = Vec::new();
        for dir in &dirs {
            let info = match caller::srcinfo_in(dir) {
                Ok(Some(info)) => info,
                Ok(None) => continue,
                Err(why) => {
                    self.summary.failed += 1;
                    self.progress
                        .warn(&format!("{why}; its sources stay as last published"));
                    spared.extend(dir.file_name().map(|n| n.to_string_lossy().into_owned()));
                    continue;
                }
            };
            if !crate::pacman::names::is_plain_filename(&info.pkgbase) {
                self.summary.failed += 1;
                self.progress.warn(&format!(
                    "{}: pkgbase {:?} cannot be a directory name; its sources are skipped",
                    dir.display(),
                    crate::ui::answer::one_line(&info.pkgbase)
                ));
                continue;
            }
            for problem in &info.problems {
                self.progress.warn(&format!("{}: {problem}", dir.display()));
            }
            for entry in &info.sources {
                if !fetched_over_http(entry) {
                    continue;
                }
                if !entry.sums.pins_content() {
                    unpinned += 1;
                    self.progress.note(&format!(
                        "[{}] {}: not pinned by a strong sum, not published",
                        info.pkgbase, entry.name
                    ));
                    continue;
                }
                if !crate::pacman::names::is_plain_filename(&entry.name) {
                    self.summary.failed += 1;
                    self.progress.warn(&format!(
                        "[{}] {:?} cannot be a file name; not published",
                        info.pkgbase,
                        crate::ui::answer::one_line(&entry.name)
                    ));
                    continue;
                }
                match self.source(&info.pkgbase, entry, &mut seen) {
                    Ok(Outcome::Added(size)) => {
                        added += 1;
                        bytes += size;
                    }
                    Ok(Outcome::Present) => present += 1,
                    Err(PublishError::Database { why, .. }) => {
                        self.summary.failed += 1;
                        spared.push(info.pkgbase.clone());
                        self.progress.warn(&format!(
                            "[{}] {} not published: {why}",
                            info.pkgbase, entry.name
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.state.sources_seen(&seen)?;
        // What this run saw stays, whatever `keep_days` says.
        let pruned = self
            .state
            .prune_sources(self.horizon().min(self.started - 1), &spared)?;
        self.summary.added += added;
        self.summary.present += present;
        self.summary.pruned += pruned;
        self.summary.bytes += bytes;
        self.progress.info(&format!(
            "[sources] {} PKGBUILDs: {added} sources added ({}), {present} already published, \
             {unpinned} not pinned by a strong sum, {pruned} pruned",
            dirs.len(),
            crate::ui::progress::size(bytes)
        ));
        Ok(())
    }

    /// One source: already held under one of its sums, or fetched, judged and added. A
    /// failure of the download itself is a `Database` error (the source alone is skipped).
    fn source(
        &mut self,
        pkgbase: &str,
        entry: &SourceEntry,
        seen: &mut Vec<SourceListing>,
    ) -> Result<Outcome, PublishError> {
        let listing = |sha256: String| SourceListing {
            pkgbase: pkgbase.to_string(),
            name: entry.name.clone(),
            url: entry.url.clone(),
            sha256,
            first_seen: self.started,
            last_seen: self.started,
        };
        for sum in entry.sums.strong() {
            if let Some(sha256) = self.state.source_by_sum(sum.algo.name(), &sum.hex())? {
                seen.push(listing(sha256));
                return Ok(Outcome::Present);
            }
        }
        let skipped = |why: String| PublishError::Database {
            repo: "sources".into(),
            why,
        };
        let dir = self.job.work.join("sources");
        std::fs::create_dir_all(&dir).map_err(|e| PublishError::Io(dir.clone(), e))?;
        let first = entry
            .sums
            .strong()
            .next()
            .map(|s| s.hex())
            .unwrap_or_default();
        let dest = dir.join(format!("{}.src", &first[..first.len().min(64)]));
        let mut mirror_only = self.config.clone();
        mirror_only.gateway.enabled = false;
        let pinned = vec![entry.sums.clone()];
        let plan = plan::for_source(&pinned, &mirror_only, &[], std::slice::from_ref(&entry.url));
        let mut ctx = Context::new(&mirror_only);
        ctx.sums = Some(pinned);
        download::into_file(
            &ctx,
            &plan,
            &dest,
            &file_progress(None, self.progress),
            download::keep_what_arrived,
        )
        .map_err(|e| skipped(e.why))?;
        // Added while hashed with SHA-256, SHA-512 and BLAKE2b besides what it pins: one
        // more read of the file, and what the node got is what is recorded.
        let file = std::fs::File::open(&dest).map_err(|e| PublishError::Io(dest.clone(), e))?;
        let (cid, all, size) = crate::ipfs::seed::add_hashed(
            &self.rpc,
            file,
            &entry.name,
            &entry.sums.shared_algos(),
        )?;
        let _ = std::fs::remove_file(&dest);
        if !entry.sums.matched_by(&all) {
            return Err(skipped("it changed after it was checked".into()));
        }
        let strong = Sums(all.into_iter().filter(|s| s.algo.strong()).collect());
        let Some(sha256) = strong.sha256().map(hex::encode) else {
            return Err(skipped("no SHA-256 computed".into()));
        };
        let links: Vec<(String, String)> = strong
            .0
            .iter()
            .map(|s| (s.algo.name().to_string(), s.hex()))
            .collect();
        self.state
            .add_source(&sha256, &cid, size, &links, &listing(sha256.clone()))?;
        Ok(Outcome::Added(size))
    }
}

/// Whether makepkg fetches this source over HTTP(S) (through its agent).
fn fetched_over_http(entry: &SourceEntry) -> bool {
    matches!(entry.protocol.as_str(), "http" | "https")
}
