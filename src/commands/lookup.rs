//! `pacxfer lookup WHAT [--json]`: what the sync databases say about a file or package, and
//! the sources a download would try, in order (the plan, which is pure, so this is exactly
//! what a download would do).

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::ipfs::cid::{self, KnownCid};
use crate::sources::breaker::State;
use crate::ui::progress::Progress;

use super::resolve::resolve;
use super::Session;

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
    /// The LAN peers whose directories list the file (`ipfs::lan`).
    lan_peers: Vec<String>,
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
    if super::lookup_sources::is_pkgbuild_dir(what) {
        return super::lookup_sources::lookup_sources(session, what, json);
    }
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
    let mut lan_peers: Vec<String> = Vec::new();
    for s in &plan.sources {
        if let crate::transfer::plan::Source::Lan { peers, .. } = s {
            for p in peers {
                if !lan_peers.contains(p) {
                    lan_peers.push(p.clone());
                }
            }
        }
    }
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
            lan_peers,
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
    if !lan_peers.is_empty() {
        say!(
            "lan:       listed by {}",
            crate::transfer::plan::peer_list(&lan_peers)
        );
    }
    say!("sources:");
    for (i, source) in plan.sources.iter().enumerate() {
        say!("  {}. [{}] {}", i + 1, source.label(), source.describe());
    }
    Ok(ExitCode::SUCCESS)
}
