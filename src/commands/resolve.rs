//! From what a user or pacman names (a URL, a file name, a package name) to the entries that
//! list it and the plan that fetches it: shared by `xfer`, `fetch` and `lookup`.

use anyhow::{bail, Result};

use crate::db::entry::{Entry, Query};
use crate::pacman::target::{split_sig, Target};
use crate::transfer::plan::{self, Plan};
use crate::ui::progress::Progress;

use super::Session;

/// The entries listing the file a URL names. Before the first `pacman -Sy` there is nothing
/// to look up: then the file is downloaded as it is.
pub(super) fn url_candidates(
    session: &Session,
    target: &Target,
    progress: &Progress,
) -> Vec<Entry> {
    if crate::pacman::target::never_listed(&target.listed_name) {
        return Vec::new();
    }
    session
        .find(Query::Filename(&target.listed_name), &[], progress)
        .unwrap_or_else(|e| {
            progress.note(&e.to_string());
            Vec::new()
        })
}

/// What `fetch` and `lookup` were given, resolved.
pub(super) struct Resolved {
    /// The file to download (a `.sig` when asked for one).
    pub(super) file: String,
    pub(super) is_sig: bool,
    /// The entry chosen first (repository order), when the databases list it.
    pub(super) entry: Option<Entry>,
    pub(super) candidates: Vec<Entry>,
    /// URL path segments that may name a repository.
    pub(super) dirs: Vec<String>,
    pub(super) mirrors: Vec<String>,
}

impl Resolved {
    /// The sources for the file, the node's seeded copy first when it has one.
    pub(super) fn plan(&self, session: &Session, progress: &Progress) -> Plan {
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

pub(super) fn resolve(session: &Session, what: &str, progress: &Progress) -> Result<Resolved> {
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
