//! `pacxfer dlagent URL OUTPUT`: makepkg's download agent, one `DLAGENTS` line per protocol
//! (`'https::/usr/bin/pacxfer dlagent %u %o'`). It finds the PKGBUILD the call is for
//! (`makepkg::caller`), takes the sums it pins for that file, and fetches the file from IPFS
//! by those sums (the node's own copy, the gateway templates, LAN peers), from upstream
//! otherwise, writing `%o` only with bytes that match them. A `SKIP` source, or one pinned
//! only by md5, sha1 or the CRC, comes from upstream alone; makepkg checks every sum again
//! after its downloads.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::makepkg::caller;
use crate::makepkg::sums::{self, Algo, Sums};
use crate::transfer::output::Output;
use crate::transfer::plan::{self, SourceCopy};
use crate::ui::progress::Progress;

use super::xfer::{deliver, Delivery};
use super::Session;

/// The `--srcinfo` path, URL and output of a `dlagent` call: the last two words are `%u` and
/// `%o`; words before them continue a `--srcinfo` path that holds spaces, which makepkg split
/// (it splits its agent line at every space).
pub fn split_args(
    srcinfo: Option<String>,
    mut args: Vec<String>,
) -> Result<(Option<std::path::PathBuf>, String, std::path::PathBuf)> {
    let (Some(output), Some(url)) = (args.pop(), args.pop()) else {
        bail!("give a URL and an OUTPUT: `pacxfer dlagent --srcinfo $startdir %u %o` in DLAGENTS");
    };
    let srcinfo = match (srcinfo, args.is_empty()) {
        (s, true) => s,
        (Some(s), false) => Some(format!("{s} {}", args.join(" "))),
        (None, false) => bail!(
            "dlagent takes a URL and an OUTPUT, not {} words: `pacxfer dlagent --srcinfo \
             $startdir %u %o` in DLAGENTS",
            args.len() + 2
        ),
    };
    Ok((srcinfo.map(std::path::PathBuf::from), url, output.into()))
}

/// `pacxfer dlagent URL OUTPUT [--srcinfo PATH]`.
pub fn dlagent(
    session: &Session,
    url: &str,
    output: &Path,
    srcinfo: Option<&Path>,
) -> Result<ExitCode> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        bail!(
            "unsupported URL {:?}: pacxfer dlagent downloads http:// and https:// sources; give \
             makepkg another agent for this protocol in DLAGENTS",
            crate::ui::shown::shown(url)
        );
    }
    // makepkg passes `<file name>.part`, relative to its working directory, where the file
    // name is a `name::` prefix as it is (a path, even) or the URL's last segment.
    let file = if output.is_absolute() {
        output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        output.to_string_lossy().into_owned()
    };
    let name = file.strip_suffix(".part").unwrap_or(&file).to_string();
    if name.is_empty() {
        bail!(
            "no file name in {}: makepkg gives `%o` as <file>.part",
            output.display()
        );
    }
    let progress = Progress::new(&name, session.verbosity);
    // `$startdir` unexpanded: the DLAGENTS line was single-quoted.
    let srcinfo = srcinfo.filter(|p| !p.as_os_str().to_string_lossy().starts_with('$'));
    let found = caller::entries_for(url, &name, srcinfo);
    for note in &found.notes {
        progress.note(note);
    }
    let sums: Vec<Sums> = match found.upstream_only {
        Some(why) => {
            // Not the sums the file will be judged by: nothing is looked up by them, and the
            // file is not judged by them either.
            progress.note(&format!("{why}: {name} from upstream only"));
            Vec::new()
        }
        None => found
            .entries
            .iter()
            .map(|e| e.sums.clone())
            .filter(|s| s.0.iter().any(|x| x.algo.computed()))
            .collect(),
    };
    let pinned = !sums.is_empty() && sums.iter().all(Sums::pins_content);
    match (&found.from, pinned) {
        _ if found.upstream_only.is_some() => {}
        (None, _) => progress.note(&format!(
            "no PKGBUILD found that lists {name} from this URL; downloading it from upstream unchecked"
        )),
        (Some(from), _) if sums.is_empty() => progress.note(&format!(
            "{} pins no checksum for {name} (SKIP): from upstream only",
            from.display()
        )),
        (Some(from), false) => progress.note(&format!(
            "{} pins {name} by md5, sha1 or cksum only: from upstream only",
            from.display()
        )),
        (Some(from), true) => progress.note(&format!(
            "{} pins {name} by {}",
            from.display(),
            sums.iter()
                .flat_map(|s| s.strong())
                .map(|s| s.algo.name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let copies = if pinned {
        source_copies(session, &sums, &progress)
    } else {
        Vec::new()
    };
    let plan = plan::for_source(
        &sums,
        &session.fresh_config(&progress),
        &copies,
        &[url.to_string()],
    );
    deliver(
        session,
        &name,
        &plan,
        output,
        &progress,
        Delivery {
            what_next: "makepkg stops here",
            later: None,
            existing: None,
            server_time: false,
            sums: Some(sums),
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The copies of a build source the node holds (`/pacxfer/…` by any of its strong sums), or,
/// when it holds none, those LAN peers list (`Session::copies_at`).
pub(super) fn source_copies(
    session: &Session,
    sums: &[Sums],
    progress: &Progress,
) -> Vec<SourceCopy> {
    let mut rels: Vec<String> = Vec::new();
    for s in sums.iter().flat_map(|s| s.strong()) {
        let rel = crate::ipfs::seed::Sharer::rel_of(s);
        if !rels.contains(&rel) {
            rels.push(rel);
        }
    }
    session
        .copies_at(&rels, &|_| Ok(()), progress)
        .into_iter()
        .map(|c| {
            if c.peers.is_empty() {
                progress.note(&format!("the node holds /pacxfer/{} ({})", c.rel, c.cid));
            }
            SourceCopy {
                cid: c.cid,
                peers: c.peers,
            }
        })
        .collect()
}

/// Seeds a build source that just came from upstream or LAN peers and matched its PKGBUILD's
/// strong sums, within `[share] after_fetch_timeout`: linked by SHA-256 like a package and
/// under `sources/<algo>/<hex>` for SHA-512 and BLAKE2b (and any other strong sum pinned).
/// Whatever happens, the download has succeeded.
pub(super) fn share_after_fetch(
    session: &Session,
    sums: &[Sums],
    out: &Output,
    progress: &Progress,
) {
    let computed = out.sums();
    let verified = sums
        .iter()
        .any(|s| s.pins_content() && s.matched_by(&computed));
    if !verified {
        return;
    }
    let mut all = computed;
    let missing: Vec<Algo> = sums::SHARED
        .into_iter()
        .filter(|a| !all.iter().any(|s| s.algo == *a))
        .collect();
    let file = match crate::cache::trust::open_foreign_path(out.path()) {
        Ok(f) => f,
        Err(e) => return progress.warn(&format!("not shared: {}: {e}", out.path().display())),
    };
    let share = &session.config.share;
    let deadline = std::time::Instant::now() + share.after_fetch_timeout;
    let sharer = match share.sharer(Some(deadline)) {
        Ok(s) => s,
        Err(e) => return progress.warn(&format!("not shared: {e}")),
    };
    // What the node gets is hashed on the way: linked only when it is what was checked.
    let sha256 = out.sha256();
    let mut algos = vec![Algo::Sha256];
    algos.extend(missing);
    let added = crate::ipfs::seed::add_hashed(sharer.rpc(), file, &hex::encode(sha256), &algos);
    let (cid, more, len) = match added {
        Ok(added) => added,
        Err(e) => return super::xfer::report_shared(session, Err(e), progress),
    };
    let same = len == out.len()
        && more
            .iter()
            .any(|s| s.algo == Algo::Sha256 && s.digest == sha256);
    if !same {
        return progress.warn("not shared: the file changed while it was being added");
    }
    all.extend(more.into_iter().filter(|s| s.algo != Algo::Sha256));
    let outcome = sharer.link_source(&cid, &sha256, &all);
    super::xfer::report_shared(session, outcome, progress);
}
