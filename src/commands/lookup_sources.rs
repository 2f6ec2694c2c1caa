//! `pacxfer lookup DIR`: for a PKGBUILD directory (its `.SRCINFO`), each source, the sums
//! that pin it, and the sources `pacxfer dlagent` would try for it, in order.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::makepkg::caller;
use crate::makepkg::srcinfo;
use crate::transfer::plan;
use crate::ui::progress::Progress;

use super::Session;

#[derive(Serialize)]
struct SourceJson {
    pkgbase: String,
    arch: Option<String>,
    name: String,
    url: String,
    /// `algo` -> hex.
    sums: std::collections::BTreeMap<String, String>,
    /// Whether a copy from IPFS may be taken (some strong sum).
    pinned: bool,
    /// What the agent would try, in order (empty: makepkg does not use its agent for it).
    sources: Vec<String>,
}

/// Whether `what` names a PKGBUILD directory (a path, not a package name).
pub(super) fn is_pkgbuild_dir(what: &str) -> bool {
    (what.contains('/') || what == ".")
        && Path::new(what).is_dir()
        && !caller::pkgbuild_dirs(&[what.into()]).is_empty()
}

/// `pacxfer lookup DIR [--json]`.
pub(super) fn lookup_sources(session: &Session, dir: &str, json: bool) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let config = session.fresh_config(&progress);
    let mut out: Vec<SourceJson> = Vec::new();
    for dir in caller::pkgbuild_dirs(&[dir.into()]) {
        let info = match caller::srcinfo_in(&dir) {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(why) => bail!("{why}"),
        };
        for problem in &info.problems {
            progress.warn(&format!("{}: {problem}", dir.display()));
        }
        for entry in &info.sources {
            let by_agent = srcinfo::fetched_by_agent(&entry.protocol);
            let sums = std::slice::from_ref(&entry.sums);
            let pinned = entry.sums.pins_content();
            // What `dlagent` would try: the same plan (upstream alone when not pinned).
            let sources = if !by_agent {
                Vec::new()
            } else {
                let copies = if pinned {
                    super::dlagent::source_copies(session, sums, &progress)
                } else {
                    Vec::new()
                };
                plan::for_source(sums, &config, &copies, std::slice::from_ref(&entry.url))
                    .sources
                    .iter()
                    .map(|s| crate::ui::shown::redact(&s.describe()).into_owned())
                    .collect()
            };
            out.push(SourceJson {
                pkgbase: info.pkgbase.clone(),
                arch: entry.arch.clone(),
                name: entry.name.clone(),
                url: crate::ui::shown::redact(&entry.url).into_owned(),
                sums: entry
                    .sums
                    .0
                    .iter()
                    .map(|s| (s.algo.name().to_string(), s.hex()))
                    .collect(),
                pinned,
                sources,
            });
        }
    }
    if json {
        println!("{}", crate::ui::answer::json_line(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for s in &out {
        let arch = s
            .arch
            .as_deref()
            .map(|a| format!(" [{a}]"))
            .unwrap_or_default();
        println!(
            "{}",
            crate::ui::shown::shown(&format!("{}: {}{arch} ({})", s.pkgbase, s.name, s.url))
        );
        let pins = if s.sums.is_empty() {
            "no sum (SKIP)".to_string()
        } else {
            s.sums
                .iter()
                .map(|(a, h)| format!("{a}:{h}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let how = match (s.sources.is_empty(), s.pinned) {
            (true, _) => "not fetched by makepkg's download agent".to_string(),
            (false, true) => format!("pinned by {pins}"),
            (false, false) => format!("{pins}: not pinned by a strong sum, from upstream only"),
        };
        println!("{}", crate::ui::shown::shown(&format!("  {how}")));
        for (i, src) in s.sources.iter().enumerate() {
            println!(
                "{}",
                crate::ui::shown::shown(&format!("  {}. {src}", i + 1))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
