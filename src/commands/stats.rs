//! `pacxfer stats`: what the log of completed downloads says about the last days: files and
//! bytes by source, the IPFS hit rate for packages, unchanged databases, and an estimate of
//! the time IPFS saved.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Session;
use crate::transfer::log;
use crate::ui::progress::{secs, size};

/// Files and bytes of one source.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// What `stats` prints.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub days: u64,
    pub files: u64,
    pub bytes: u64,
    /// By source: node, lan, network, view, db-signature, mirror, unchanged, partial.
    pub sources: BTreeMap<String, Tally>,
    /// Packages served by IPFS (node, LAN, network, views) over all packages, by count.
    pub hit_rate: Option<f64>,
    /// The same by bytes.
    pub byte_hit_rate: Option<f64>,
    /// Databases a mirror said were unchanged (no bytes moved).
    pub unchanged_databases: u64,
    /// The mirror's rate over these days, bytes/s (what IPFS's bytes would have cost).
    pub mirror_rate: Option<f64>,
    /// Seconds IPFS saved against that rate (negative: it cost time).
    pub seconds_saved: Option<f64>,
    /// Where the log is, or why there is none.
    pub log: String,
}

const IPFS: [&str; 4] = ["node", "lan", "network", "view"];

pub fn compute(records: &[log::Record], days: u64) -> Stats {
    let mut s = Stats {
        days,
        ..Stats::default()
    };
    let (mut pkgs, mut pkg_bytes, mut ipfs_pkgs, mut ipfs_pkg_bytes) = (0u64, 0u64, 0u64, 0u64);
    for r in records {
        // Saturating sums: no log, however damaged, makes a figure wrap round.
        s.files = s.files.saturating_add(1);
        let fresh = r.bytes.saturating_sub(r.resumed);
        // A database built from an update list moved its steps, not its size: counted as
        // files, not bytes.
        let moved = !matches!(r.source.as_str(), "unchanged" | "updates");
        if moved {
            s.bytes = s.bytes.saturating_add(fresh);
        }
        let t = s.sources.entry(r.source.clone()).or_default();
        t.files = t.files.saturating_add(1);
        t.bytes = t.bytes.saturating_add(if moved { fresh } else { 0 });
        t.seconds += r.seconds;
        if r.source == "unchanged" && r.kind == "database" {
            s.unchanged_databases = s.unchanged_databases.saturating_add(1);
        }
        if r.kind == "package" {
            pkgs = pkgs.saturating_add(1);
            pkg_bytes = pkg_bytes.saturating_add(r.bytes);
            if IPFS.contains(&r.source.as_str()) {
                ipfs_pkgs = ipfs_pkgs.saturating_add(1);
                ipfs_pkg_bytes = ipfs_pkg_bytes.saturating_add(r.bytes);
            }
        }
    }
    if pkgs > 0 {
        s.hit_rate = Some(ipfs_pkgs as f64 / pkgs as f64);
    }
    if pkg_bytes > 0 {
        s.byte_hit_rate = Some(ipfs_pkg_bytes as f64 / pkg_bytes as f64);
    }
    if let Some(m) = s.sources.get("mirror") {
        if m.seconds > 0.0 && m.bytes > 0 {
            let rate = m.bytes as f64 / m.seconds;
            s.mirror_rate = Some(rate);
            let (ipfs_bytes, ipfs_secs) = IPFS
                .iter()
                .filter_map(|k| s.sources.get(*k))
                .fold((0u64, 0f64), |(b, t), x| {
                    (b.saturating_add(x.bytes), t + x.seconds)
                });
            s.seconds_saved = Some(ipfs_bytes as f64 / rate - ipfs_secs);
        }
    }
    s
}

/// Seconds from the log as a duration: a damaged value is no panic.
fn duration(seconds: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(seconds.clamp(0.0, 1e12)).unwrap_or_default()
}

fn label(source: &str) -> &str {
    match source {
        "node" => "IPFS, this node",
        "lan" => "IPFS, LAN peers",
        "network" => "IPFS, the network",
        "view" => "IPFS, cache views",
        "db-signature" => "signatures in the databases",
        "mirror" => "the mirror",
        "unchanged" => "databases unchanged on the mirror",
        "updates" => "databases built from update lists",
        "partial" => "kept from an earlier try",
        other => other,
    }
}

pub fn stats(session: &Session, days: u64, json: bool) -> Result<ExitCode> {
    let now = crate::unix_time();
    let since = now.saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX));
    let mut records = log::read(&session.places, since);
    // pacman 7 runs its XferCommand as DownloadUser, which keeps its own log.
    let mut also = None;
    if let Some(user) = super::doctor::pacman_conf_value(session, "DownloadUser") {
        let uid = super::doctor::uid_of(&user);
        if let Some(uid) = uid.filter(|u| *u != crate::cache::trust::euid()) {
            let dir = std::path::Path::new(crate::cache::SYSTEM_DIR);
            let theirs = log::read_owned_by(dir, uid, since);
            if !theirs.is_empty() {
                also = Some(format!("{} ({user})", dir.join(log::NAME).display()));
            }
            records.extend(theirs);
        }
    }
    records.sort_by_key(|r| r.at);
    let mut s = compute(&records, days);
    s.log = match session.places.writable() {
        Some(d) => d.path().join(log::NAME).display().to_string(),
        None => format!(
            "none: no cache directory pacxfer may write ({})",
            session.places.refusals().join("; ")
        ),
    };
    if let Some(also) = also {
        s.log.push_str(&format!(" and {also}"));
    }
    if json {
        println!("{}", crate::ui::answer::json_line(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "last {days} days: {} files, {} received (log: {})",
        s.files,
        size(s.bytes),
        s.log
    );
    for (source, t) in &s.sources {
        println!(
            "  {:<38} {:>6} files {:>11}  in {}",
            crate::ui::shown::shown(label(source)),
            t.files,
            size(t.bytes),
            secs(duration(t.seconds))
        );
    }
    if let (Some(h), Some(b)) = (s.hit_rate, s.byte_hit_rate) {
        println!(
            "  packages from IPFS: {:.0}% of files, {:.0}% of bytes",
            h * 100.0,
            b * 100.0
        );
    }
    if s.unchanged_databases > 0 {
        println!(
            "  {} database downloads avoided (unchanged on the mirror)",
            s.unchanged_databases
        );
    }
    match (s.seconds_saved, s.mirror_rate) {
        (Some(saved), Some(rate)) => println!(
            "  time saved by IPFS: about {} (against the mirror's {}/s)",
            secs(duration(saved)),
            size(rate as u64)
        ),
        _ => println!("  time saved by IPFS: unknown (no mirror download to compare with)"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(source: &str, kind: &str, bytes: u64, seconds: f64) -> log::Record {
        log::Record {
            at: 1,
            file: "f".into(),
            kind: kind.into(),
            source: source.into(),
            bytes,
            resumed: 0,
            seconds,
        }
    }

    #[test]
    fn rates_and_savings() {
        let s = compute(
            &[
                rec("mirror", "package", 1000, 1.0),
                rec("node", "package", 3000, 0.5),
                rec("unchanged", "database", 500, 0.1),
                rec("db-signature", "signature", 100, 0.0),
            ],
            30,
        );
        assert_eq!(s.files, 4);
        assert_eq!(s.bytes, 4100);
        assert_eq!(s.hit_rate, Some(0.5));
        assert_eq!(s.byte_hit_rate, Some(0.75));
        assert_eq!(s.unchanged_databases, 1);
        assert_eq!(s.mirror_rate, Some(1000.0));
        assert_eq!(s.seconds_saved, Some(2.5));
    }
}
