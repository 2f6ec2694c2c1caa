//! Published cache views and their age. A template whose path starts with `/ipns/<name>/` or
//! `/ipfs/<root>/` reads from a view that `pacxfer publish` made, and that view's
//! `pacxfer.json` says when it was published. With `[gateway] max_age`, a view older than that
//! is not asked for packages, and its databases are refused when pacman asks the gateway's
//! mirror view for them: a cache whose publisher stopped must not freeze anyone's upgrades.
//!
//! What a view said is remembered in pacxfer's cache for [`RECHECK`], so an XferCommand call
//! costs no request; a view that holds no `pacxfer.json` (not made by pacxfer) is never
//! refused; a gateway that does not answer leaves the decision to the normal rules of the
//! download (timeouts, breaker).

use std::time::Duration;

use crate::cache::Places;
use crate::config::Config;

/// How long what a view said is trusted before it is asked again.
pub const RECHECK: Duration = Duration::from_secs(600);

/// The largest `pacxfer.json` read.
const JSON_MAX: u64 = 64 * 1024;

/// The format `pacxfer publish` writes.
pub const FORMAT: &str = "pacxfer-cache-1";

/// The view a template or gateway path reads from: `/ipns/<name>` or `/ipfs/<root>`, when
/// the path starts with one whose name has no placeholder.
pub fn view_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/ipns/")
        .or_else(|| path.strip_prefix("/ipfs/"))?;
    let name = rest.split('/').next().unwrap_or_default();
    if name.is_empty() || name.contains(['{', '}', '?', '#']) || !rest.contains('/') {
        return None;
    }
    Some(&path[..6 + name.len()])
}

/// What a view said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Published at this Unix time.
    Published(i64),
    /// No `pacxfer.json` in pacxfer's format: not a view pacxfer judges.
    Unknown,
}

use crate::unix_time as now;

/// How long ago `at` (Unix time) was.
pub fn since(at: i64) -> Duration {
    Duration::from_secs(now().saturating_sub(at).max(0) as u64)
}

/// Reads `pacxfer.json` of `view` the way a file is read from the gateway (`gateway::open`):
/// first from the node's own blocks, then, when `[gateway] network_timeout` allows, from the
/// IPFS network within that time. A gateway that does not answer the first question opens the
/// breaker, as it does for a file, so the same call does not wait on it twice. `Err` when the
/// gateway gave no usable answer.
fn ask(config: &Config, view: &str) -> Result<Age, String> {
    use crate::sources::error::SourceError;
    let gateway = crate::sources::gateway::client(config).map_err(|e| e.to_string())?;
    let url = format!("{}{view}/pacxfer.json", config.gateway_base());
    let opened = match crate::sources::gateway::open(&gateway, &url, true, 0, None) {
        // Not in this node: only the network can say, when pacxfer may wait for it.
        Err(SourceError::NotCached) if config.gateway.searches_network() => {
            let budget = Some(config.gateway.network_wait());
            crate::sources::gateway::open(&gateway, &url, false, 0, budget)
        }
        other => other,
    };
    let mut stream = match opened {
        Ok(s) => s,
        Err(SourceError::Status(404 | 410)) => return Ok(Age::Unknown),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut stream.body, JSON_MAX + 1),
        &mut text,
    )
    .map_err(|e| e.to_string())?;
    if text.len() as u64 > JSON_MAX {
        return Ok(Age::Unknown);
    }
    Ok(parse(&text))
}

/// The age a `pacxfer.json` gives.
pub fn parse(text: &[u8]) -> Age {
    // The publisher's document is a handful of values; a view is anybody's answer.
    let Ok(doc) = crate::ui::answer::parse::<serde_json::Value>(text, 4096) else {
        return Age::Unknown;
    };
    match (doc["format"].as_str(), doc["published"].as_i64()) {
        (Some(FORMAT), Some(at)) if at > 0 => Age::Published(at),
        _ => Age::Unknown,
    }
}

/// What is remembered of a view: when it was last asked, and the last answer it gave
/// (`None`: it never answered). Kept as `<checked> <published|-|?>`.
struct Memory {
    checked: i64,
    age: Option<Age>,
}

fn remembered(places: &Places, name: &str) -> Option<Memory> {
    let bytes = places.read_first(name, 256)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (checked, age) = text.trim().split_once(' ')?;
    let age = match age {
        "-" => Some(Age::Unknown),
        "?" => None,
        at => Some(Age::Published(at.parse().ok()?)),
    };
    Some(Memory {
        checked: checked.parse().ok()?,
        age,
    })
}

fn remember(places: &Places, name: &str, age: Option<Age>) {
    let text = match age {
        Some(Age::Published(at)) => format!("{} {at}\n", now()),
        Some(Age::Unknown) => format!("{} -\n", now()),
        None => format!("{} ?\n", now()),
    };
    places.write_first(name, text.as_bytes());
}

/// How old `view` is; `None` when the gateway never said. Asked at most once per
/// [`RECHECK`], not while the gateway's breaker is open, and a view that does not answer keeps
/// its last answer (a view found too old stays too old until it says otherwise), so a hung
/// name costs one wait per [`RECHECK`], not one per call.
pub fn age(config: &Config, places: &Places, view: &str) -> Option<Age> {
    let key = format!("{} {view}", config.gateway_base());
    let name = Places::name_for("view", key.as_bytes(), "age");
    let memory = remembered(places, &name);
    let last = memory.as_ref().and_then(|m| m.age);
    let fresh = memory
        .as_ref()
        .is_some_and(|m| (0..RECHECK.as_secs() as i64).contains(&(now() - m.checked)));
    if fresh {
        return last;
    }
    if matches!(
        crate::sources::gateway::breaker(config).state(),
        crate::sources::breaker::State::Open { .. }
    ) {
        return last;
    }
    match ask(config, view) {
        Ok(age) => {
            remember(places, &name, Some(age));
            Some(age)
        }
        Err(_) => {
            remember(places, &name, last);
            last
        }
    }
}

/// When `view` is older than `max_age`: how old, for the message.
pub fn too_old(config: &Config, places: &Places, view: &str) -> Option<Duration> {
    let max = config.gateway.max_age;
    if max.is_zero() {
        return None;
    }
    match age(config, places, view)? {
        Age::Published(at) => {
            let old = since(at);
            (old > max).then_some(old)
        }
        Age::Unknown => None,
    }
}

/// `old` in days and hours, for messages.
pub fn shown_age(old: Duration) -> String {
    let hours = old.as_secs() / 3600;
    match (hours / 24, hours % 24) {
        (0, h) => format!("{h} h"),
        (d, 0) => format!("{d} days"),
        (d, h) => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_of_templates() {
        assert_eq!(view_of("/ipns/k51abc/{sha256}"), Some("/ipns/k51abc"));
        assert_eq!(
            view_of("/ipfs/bafyroot/{repo}/os/{arch}/{filename}"),
            Some("/ipfs/bafyroot")
        );
        assert_eq!(
            view_of("/ipns/cache.example.org/x"),
            Some("/ipns/cache.example.org")
        );
        assert_eq!(view_of("/ipfs/{cid}"), None);
        assert_eq!(view_of("/ipns/{name}/x"), None);
        assert_eq!(view_of("/ipns/k51abc"), None);
        assert_eq!(view_of("/other/x/y"), None);
    }

    #[test]
    fn ages_from_json() {
        assert_eq!(
            parse(br#"{"format":"pacxfer-cache-1","published":1700000000}"#),
            Age::Published(1_700_000_000)
        );
        assert_eq!(parse(br#"{"format":"other","published":1}"#), Age::Unknown);
        assert_eq!(parse(br#"{"format":"pacxfer-cache-1"}"#), Age::Unknown);
        assert_eq!(parse(b"not json"), Age::Unknown);
        assert_eq!(
            shown_age(Duration::from_secs(3 * 86400 + 7200)),
            "3 days 2 h"
        );
        assert_eq!(shown_age(Duration::from_secs(7200)), "2 h");
    }
}
