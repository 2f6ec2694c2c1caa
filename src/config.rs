//! Configuration: `/etc/pacxfer.conf` (TOML). Every key is optional; the defaults are what a
//! Kubo user on this machine wants. Reading is strict: an unknown key or a bad value is an
//! error that names the key and the file, because a typo silently ignored would leave the
//! user wondering why IPFS is never used.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::ipfs::template;

/// The default location.
pub const DEFAULT_PATH: &str = "/etc/pacxfer.conf";

/// Every key a configuration may hold (in any table), for documentation checks.
pub const KEYS: &[&str] = &[
    "dbpath",
    "pacman_conf",
    "cache_dir",
    "enabled",
    "url",
    "paths",
    "connect_timeout",
    "stall_timeout",
    "network_timeout",
    "raw_block_max",
    "breaker",
    "max_redirects",
    "api",
    "api_auth",
    "pin",
    "after_fetch",
    "after_fetch_timeout",
    "seeded",
    "lan",
    "cluster",
    "cluster_auth",
    "replication_min",
    "replication_max",
    "expire_days",
    "publisher",
    "repos",
    "arch",
    "timeout",
];

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// pacman's DBPath (holds `sync/*.db`); asked of `pacman-conf` when unset.
    pub dbpath: Option<PathBuf>,
    /// The pacman.conf that `pacman-conf` reads for DBPath and Server lines.
    pub pacman_conf: Option<PathBuf>,
    /// Where database indexes and the gateway's state are kept; "" keeps none.
    pub cache_dir: Option<PathBuf>,
    pub gateway: GatewayConfig,
    pub mirror: MirrorConfig,
    pub share: ShareConfig,
    pub publish: PublishConfig,
    pub databases: DatabasesConfig,
}

/// `[databases]`: repositories whose sync databases are kept current through a publisher's
/// update lists (`sources::updates`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabasesConfig {
    /// The publisher's IPNS name (`k51...`, with or without `/ipns/`); unset: none.
    pub publisher: Option<String>,
    /// The repositories synced through it; the others as before.
    pub repos: Vec<String>,
    /// The architecture of the publisher's update lists.
    pub arch: String,
    /// How long building one database through the update list may take before the mirror's
    /// whole database is fetched instead.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for DatabasesConfig {
    fn default() -> Self {
        DatabasesConfig {
            publisher: None,
            repos: Vec::new(),
            arch: std::env::consts::ARCH.to_string(),
            timeout: Duration::from_secs(15),
        }
    }
}

impl DatabasesConfig {
    /// The publisher's IPNS name when `repo` is synced through it.
    pub fn publisher_for(&self, repo: &str) -> Option<&str> {
        let name = self.publisher.as_deref()?;
        self.repos
            .iter()
            .any(|r| r == repo)
            .then(|| name.trim_start_matches("/ipns/").trim_end_matches('/'))
    }
}

/// `[publish]`: what `pacxfer publish` does besides filling the node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// An ipfs-cluster REST API (`http://HOST:9094`, `/ip4/ADDR/tcp/PORT` or `/unix/PATH`)
    /// that pins every published root; unset: no cluster.
    pub cluster: Option<String>,
    /// The REST API's credentials, `basic:USER:PASSWORD` or `bearer:TOKEN`.
    pub cluster_auth: Option<String>,
    /// The root's replication factors in the cluster: -1 every peer, 0 the cluster's own
    /// `replication_factor_min`/`_max`.
    pub replication_min: i32,
    pub replication_max: i32,
    /// The cluster unpins the root this many days after the last run that pinned it;
    /// 0: never.
    pub expire_days: u64,
}

/// `[share]`: putting what this machine holds into its own IPFS node, and finding it there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShareConfig {
    /// The node's RPC API: `http://HOST:PORT`, `/ip4/ADDR/tcp/PORT` or `/unix/PATH`.
    pub api: String,
    /// Kubo's API authorization, `basic:USER:PASSWORD` or `bearer:TOKEN`.
    pub api_auth: Option<String>,
    /// Pin what is seeded (the node's MFS keeps it from garbage collection anyway).
    pub pin: bool,
    /// After a download from the mirror, seed the file before exiting.
    pub after_fetch: bool,
    /// The most seeding after a download may add to it.
    #[serde(deserialize_with = "duration")]
    pub after_fetch_timeout: Duration,
    /// Ask the node for files seeded into it (`/pacxfer/<sha256>` in its MFS) before the
    /// gateway templates.
    pub seeded: bool,
    /// Share on the LAN: after seeding, publish the `/pacxfer` directory under the node's
    /// own key; before the templates, ask the LAN peers' directories (see `ipfs::lan`).
    pub lan: bool,
}

impl ShareConfig {
    /// The node these settings name, for seeding; calls end by `deadline` when one is given.
    pub fn sharer(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<crate::ipfs::seed::Sharer, String> {
        crate::ipfs::seed::Sharer::new(&self.api, self.api_auth.as_deref(), self.pin, deadline)
    }
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            api: "http://127.0.0.1:5001".to_string(),
            api_auth: None,
            pin: false,
            after_fetch: false,
            after_fetch_timeout: Duration::from_secs(5),
            seeded: true,
            lan: true,
        }
    }
}

/// `[gateway]`: the IPFS node's HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Whether to ask the gateway at all.
    pub enabled: bool,
    /// Base URL, `http://` or `https://`.
    pub url: String,
    /// Path templates tried in order (see `template`).
    pub paths: Vec<String>,
    /// How long to wait for a TCP connection to the gateway.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long the gateway may go silent: before answering a cache-only request, and
    /// between two reads of a body.
    #[serde(deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// How long the node may take to start answering while it fetches from other peers.
    /// Unset: [`LAN_WAIT`] for copies LAN peers list, and no search of the IPFS network for
    /// the templates; set: that long for both; 0: no fetching from other peers at all. Read
    /// it through [`GatewayConfig::network_wait`] and [`GatewayConfig::searches_network`].
    #[serde(deserialize_with = "opt_duration")]
    pub network_timeout: Option<Duration>,
    /// Files no larger than this (bytes) are taken to be one raw block, so their CID is
    /// derived from the SHA-256.
    pub raw_block_max: u64,
    /// After the gateway was down or hung, skip it for this long. 0 turns this off.
    #[serde(deserialize_with = "duration")]
    pub breaker: Duration,
    /// A published cache view (`/ipns/<name>/...` or `/ipfs/<root>/...`) whose
    /// `pacxfer.json` is older than this is not used. 0 turns this off.
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
}

/// How long the node may take to start sending a copy LAN peers list, when
/// `network_timeout` is not set: a peer on the LAN answers within milliseconds, so waiting
/// longer only delays the mirror when the peer has just gone away.
pub const LAN_WAIT: Duration = Duration::from_secs(2);

impl GatewayConfig {
    /// How long the node may take to start sending what it fetches from other peers (LAN
    /// copies, and the templates' network step); zero: never fetch from other peers.
    pub fn network_wait(&self) -> Duration {
        self.network_timeout.unwrap_or(LAN_WAIT)
    }

    /// Whether the node may search the whole IPFS network for the templates (only when the
    /// user set `network_timeout` to more than 0).
    pub fn searches_network(&self) -> bool {
        self.network_timeout.is_some_and(|d| !d.is_zero())
    }
}

/// `[mirror]`: the HTTP mirror pacman gave (`%u`) and the Server lines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    /// How long to wait for a connection (pacman's own downloader: 10 s).
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// No byte for this long ends the transfer (pacman's own rule: 10 s).
    #[serde(deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// How many redirects to follow.
    pub max_redirects: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: true,
            url: "http://127.0.0.1:8080".to_string(),
            paths: vec!["/ipfs/{cid}".to_string()],
            connect_timeout: Duration::from_millis(500),
            stall_timeout: Duration::from_secs(5),
            network_timeout: None,
            raw_block_max: 1 << 20,
            breaker: Duration::from_secs(120),
            max_age: Duration::from_secs(3 * 86_400),
        }
    }
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            max_redirects: 10,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, err: std::io::Error },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    Parse {
        path: PathBuf,
        line: Option<usize>,
        text: String,
        message: String,
    },
    /// A value that parses but cannot work.
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, err } => {
                write!(f, "cannot read config file {}: {err}", path.display())
            }
            ConfigError::Parse {
                path,
                line,
                text,
                message,
            } => {
                write!(f, "config file {}", path.display())?;
                if let Some(line) = line {
                    write!(f, " line {line}")?;
                }
                if !text.is_empty() {
                    write!(f, " ({text})")?;
                }
                write!(f, ": {message}; fix or remove it (see pacxfer.conf(5))")
            }
            ConfigError::Invalid { path, key, message } => write!(
                f,
                "config file {}: {key}: {message}; fix or remove it (see pacxfer.conf(5))",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Deserializes a duration written like `"500ms"`, `"10s"`, `"1m"` or `"0"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Deserializes an optional duration (see [`duration`]).
fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Reads a duration such as `"500ms"`, `"10s"`, `"2m"`, or `"0"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{text:?} is not a duration like \"500ms\" or \"10s\" ({e})"))
}

impl Config {
    /// Reads `path`. When `required` is false a missing file gives the defaults.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(err) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                err,
            }),
        }
    }

    /// Parses configuration text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, snippet) = match e.span() {
                Some(span) => {
                    let start = span.start.min(text.len());
                    let line_no = text[..start].matches('\n').count() + 1;
                    let snippet = text.lines().nth(line_no - 1).unwrap_or("").trim();
                    // A line holding a secret is named, never shown.
                    let snippet = if let Some(key) = ["api_auth", "cluster_auth"]
                        .into_iter()
                        .find(|k| snippet.trim_start().starts_with(k))
                    {
                        format!("{key} = ***")
                    } else {
                        crate::ui::shown::redact(snippet).into_owned()
                    };
                    (Some(line_no), snippet)
                }
                None => (None, String::new()),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                text: snippet,
                message: e.message().trim().to_string(),
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let url = self.gateway.url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                invalid(
                    "gateway.url",
                    format!("{url:?} is not an http:// or https:// URL"),
                )
            })?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
            return Err(invalid(
                "gateway.url",
                format!("{url:?} is not a gateway base URL like \"http://127.0.0.1:8080\""),
            ));
        }
        for p in &self.gateway.paths {
            template::validate(p)
                .map_err(|e| invalid("gateway.paths", format!("template {p:?}: {e}")))?;
        }
        if self.gateway.connect_timeout.is_zero() {
            return Err(invalid("gateway.connect_timeout", "must be above 0".into()));
        }
        if self.gateway.stall_timeout.is_zero() {
            return Err(invalid("gateway.stall_timeout", "must be above 0".into()));
        }
        if self.mirror.connect_timeout.is_zero() {
            return Err(invalid("mirror.connect_timeout", "must be above 0".into()));
        }
        if self.mirror.stall_timeout.is_zero() {
            return Err(invalid("mirror.stall_timeout", "must be above 0".into()));
        }
        crate::ipfs::rpc::Endpoint::parse(&self.share.api).map_err(|e| invalid("share.api", e))?;
        if let Some(auth) = &self.share.api_auth {
            crate::ipfs::rpc::authorization(auth).map_err(|e| invalid("share.api_auth", e))?;
        }
        if let Some(url) = &self.publish.cluster {
            crate::ipfs::rpc::Endpoint::parse(url).map_err(|e| invalid("publish.cluster", e))?;
        }
        if let Some(auth) = &self.publish.cluster_auth {
            crate::ipfs::rpc::authorization(auth)
                .map_err(|e| invalid("publish.cluster_auth", e))?;
        }
        for (key, factor) in [
            ("publish.replication_min", self.publish.replication_min),
            ("publish.replication_max", self.publish.replication_max),
        ] {
            if factor < -1 {
                return Err(invalid(key, format!("{factor} is below -1 (every peer)")));
            }
        }
        let (min, max) = (self.publish.replication_min, self.publish.replication_max);
        if min > 0 && max > 0 && min > max {
            return Err(invalid(
                "publish.replication_min",
                format!("{min} is above replication_max {max}"),
            ));
        }
        if self.publish.expire_days > 36_500 {
            return Err(invalid(
                "publish.expire_days",
                "must be at most 36500 (0: never)".into(),
            ));
        }
        if let Some(name) = &self.databases.publisher {
            let bare = name.trim_start_matches("/ipns/").trim_end_matches('/');
            if bare.is_empty()
                || bare.len() > 128
                || !bare.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(invalid(
                    "databases.publisher",
                    format!(
                        "{:?} is not an IPNS name (the k51... name `pacxfer publish` prints)",
                        crate::ui::answer::one_line(name)
                    ),
                ));
            }
        }
        for repo in &self.databases.repos {
            crate::pacman::names::check_name("a repository name", repo)
                .map_err(|e| invalid("databases.repos", e))?;
        }
        crate::pacman::names::check_name("the architecture", &self.databases.arch)
            .map_err(|e| invalid("databases.arch", e))?;
        if self.databases.timeout.is_zero() {
            return Err(invalid("databases.timeout", "must be above 0".into()));
        }
        Ok(())
    }

    /// The gateway base URL without a trailing slash.
    pub fn gateway_base(&self) -> &str {
        self.gateway.url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/pacxfer.conf"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").expect("defaults");
        assert!(c.gateway.enabled);
        assert_eq!(c.gateway.url, "http://127.0.0.1:8080");
        assert_eq!(c.gateway.paths, vec!["/ipfs/{cid}"]);
        assert_eq!(c.gateway.connect_timeout, Duration::from_millis(500));
        assert_eq!(c.gateway.network_timeout, None);
        assert_eq!(c.gateway.network_wait(), LAN_WAIT);
        assert!(!c.gateway.searches_network());
        assert!(c.share.lan);
        assert_eq!(c.gateway.raw_block_max, 1048576);
        assert_eq!(c.mirror.stall_timeout, Duration::from_secs(10));
    }

    #[test]
    fn full_file() {
        let c = parse(
            "dbpath = \"/tmp/db\"\n[gateway]\nurl = \"http://10.0.0.2:8080/\"\n\
             paths = [\"/ipfs/{cid}\", \"/ipns/k51x/{sha256}\"]\nnetwork_timeout = \"20s\"\n\
             [mirror]\nstall_timeout = \"1m\"\n",
        )
        .expect("valid");
        assert_eq!(c.dbpath.as_deref(), Some(Path::new("/tmp/db")));
        assert_eq!(c.gateway_base(), "http://10.0.0.2:8080");
        assert_eq!(c.gateway.paths.len(), 2);
        assert_eq!(c.gateway.network_timeout, Some(Duration::from_secs(20)));
        assert!(c.gateway.searches_network());
        let off = parse("[gateway]\nnetwork_timeout = \"0\"\n").expect("valid");
        assert!(off.gateway.network_wait().is_zero() && !off.gateway.searches_network());
        assert_eq!(c.mirror.stall_timeout, Duration::from_secs(60));
    }

    #[test]
    fn unknown_key_names_key_line_and_file() {
        let e = parse("[gateway]\nurl = \"http://x:1\"\ntimeout = \"5s\"\n")
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("/etc/pacxfer.conf line 3"), "{e}");
        assert!(e.contains("timeout"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn bad_values() {
        let e = parse("[mirror]\nstall_timeout = \"ten\"\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("stall_timeout"), "{e}");
        let e = parse("[gateway]\nraw_block_max = \"big\"\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("raw_block_max"), "{e}");
        let e = parse("[gateway]\nurl = \"ftp://x\"\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("gateway.url"), "{e}");
        let e = parse("[gateway]\npaths = [\"/ipfs/{hash}\"]\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("gateway.paths") && e.contains("{hash}"), "{e}");
        let e = parse("[gateway]\nconnect_timeout = \"0\"\n")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("gateway.connect_timeout"), "{e}");
    }

    #[test]
    fn shipped_example_names_every_key_with_its_default() {
        let example = include_str!("../contrib/pacxfer.conf");
        // Uncomment every `#key = value` line: the result must parse to the defaults.
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&uncommented).expect("example parses");
        let d = Config::default();
        assert_eq!(c.gateway.url, d.gateway.url);
        assert_eq!(c.gateway.paths, d.gateway.paths);
        assert_eq!(c.gateway.connect_timeout, d.gateway.connect_timeout);
        assert_eq!(c.gateway.stall_timeout, d.gateway.stall_timeout);
        // Setting network_timeout, even to the LAN wait, also lets the node search the
        // network: only the wait is the default.
        assert_eq!(c.gateway.network_wait(), d.gateway.network_wait());
        assert_eq!(c.gateway.raw_block_max, d.gateway.raw_block_max);
        assert_eq!(c.gateway.breaker, d.gateway.breaker);
        assert_eq!(c.mirror.connect_timeout, d.mirror.connect_timeout);
        assert_eq!(c.mirror.stall_timeout, d.mirror.stall_timeout);
        assert_eq!(c.mirror.max_redirects, d.mirror.max_redirects);
        assert_eq!(c.share.api, d.share.api);
        assert_eq!(c.share.pin, d.share.pin);
        assert_eq!(c.share.after_fetch, d.share.after_fetch);
        assert_eq!(c.share.after_fetch_timeout, d.share.after_fetch_timeout);
        assert_eq!(c.share.seeded, d.share.seeded);
        assert_eq!(c.share.lan, d.share.lan);
        assert_eq!(c.publish.replication_min, d.publish.replication_min);
        assert_eq!(c.publish.replication_max, d.publish.replication_max);
        assert_eq!(c.publish.expire_days, d.publish.expire_days);
        assert_eq!(c.databases.arch, d.databases.arch);
        assert_eq!(c.databases.timeout, d.databases.timeout);
        for key in KEYS {
            assert!(
                uncommented.contains(&format!("\n{key} = ")),
                "example lacks {key}"
            );
        }
    }

    #[test]
    fn publish_cluster_keys() {
        let c = parse(
            "[publish]\ncluster = \"/ip4/127.0.0.1/tcp/9094\"\ncluster_auth = \"basic:a:b\"\n\
             replication_min = 2\nreplication_max = 3\nexpire_days = 120\n",
        )
        .expect("valid");
        assert_eq!(
            c.publish.cluster.as_deref(),
            Some("/ip4/127.0.0.1/tcp/9094")
        );
        assert_eq!(
            (c.publish.replication_min, c.publish.replication_max),
            (2, 3)
        );
        assert_eq!(c.publish.expire_days, 120);
        let d = parse("").expect("defaults");
        assert_eq!(d.publish.cluster, None);
        assert_eq!(
            (d.publish.replication_min, d.publish.replication_max),
            (0, 0)
        );
        assert_eq!(d.publish.expire_days, 0);
        for (text, key) in [
            ("cluster = \"localhost:9094\"", "publish.cluster"),
            ("replication_min = -2", "publish.replication_min"),
            (
                "replication_min = 3\nreplication_max = 2",
                "publish.replication_min",
            ),
            ("expire_days = 99999", "publish.expire_days"),
        ] {
            let e = parse(&format!("[publish]\n{text}\n"))
                .expect_err(text)
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        // A secret in a line that does not parse, or in a bad form, is named, never shown.
        for (line, named) in [
            ("cluster_auth = \"basic:me:s3cret\" x", "cluster_auth = ***"),
            ("cluster_auth = \"s3cret\"", "publish.cluster_auth"),
        ] {
            let e = parse(&format!("[publish]\n{line}\n"))
                .expect_err(line)
                .to_string();
            assert!(!e.contains("s3cret") && e.contains(named), "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }
}
