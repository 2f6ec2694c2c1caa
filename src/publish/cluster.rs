//! Pinning the published root in an ipfs-cluster (`[publish] cluster`, `--cluster`), through
//! the cluster's REST API (v1): `POST /pins/<cid>` with the replication factors, a name
//! (`pacxfer-<key>`) and `expire-in`; `pin-update=<previous root>` when the previous root is
//! still pinned there with the same factors, so each peer turns its old pin into the new one
//! (`ipfs pin update`) and fetches only the blocks that changed. ipfs-cluster keeps the old pin
//! after a pin update, so the previous root is unpinned (`DELETE /pins/<cid>`) once the new one
//! is pinned on every peer it is allocated to (`GET /pins/<cid>`); a root still being pinned
//! when the run ends leaves its predecessor pinned for a later run to unpin.
//!
//! What the cluster holds is kept in the state's `meta` table, each value written only after
//! the cluster accepted the change: `cluster` (the API the roots were pinned in),
//! `cluster_root` (the root last pinned there) and `cluster_unpin` (replaced roots still
//! pinned, space-separated). A cluster that does not answer changes none of them: the root is
//! published in IPFS all the same, and the next run pins it.
//!
//! Not for: adding content to the cluster (the publisher's node holds it, and the peers fetch
//! it from there), nor managing the cluster's peers. Every request is bounded in time
//! ([`TIMEOUT`]) and answer size (the RPC client's limits, `ipfs::rpc`).

use std::time::{Duration, Instant};

use super::state::State;
use super::PublishError;
use crate::config::PublishConfig;
use crate::ipfs::rpc::{Method, Rpc, RpcError};

/// The longest one request to the cluster may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How long a run waits for the new root to be pinned on its peers before it leaves the
/// previous root pinned for a later run to unpin.
pub const PIN_WAIT: Duration = Duration::from_secs(120);

/// Why the root could not be pinned.
#[derive(Debug)]
pub enum ClusterError {
    /// No whole answer: not running, not there, or too slow.
    Unreachable { url: String, why: String },
    /// The cluster answered a request with an error.
    Refused {
        url: String,
        what: String,
        status: u16,
        message: String,
    },
    /// An answer that is not what the REST API gives.
    BadAnswer {
        url: String,
        what: String,
        why: String,
    },
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Unreachable { url, why } => write!(
                f,
                "the ipfs-cluster REST API at {url} did not answer: {why} (the root is published; the next run pins it; see [publish] cluster)"
            ),
            ClusterError::Refused {
                url,
                what,
                status,
                message,
            } => write!(
                f,
                "the ipfs-cluster at {url} refused {what} (HTTP {status}): {message}"
            ),
            ClusterError::BadAnswer { url, what, why } => write!(
                f,
                "the answer of the ipfs-cluster at {url} to {what} is not usable: {why}"
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

/// A client of one cluster's REST API.
pub struct Cluster {
    rpc: Rpc,
    /// The API as messages and the state name it (no password).
    url: String,
}

impl Cluster {
    /// A client of the REST API at `url` (`http://HOST:PORT`, `/ip4/ADDR/tcp/PORT` or
    /// `/unix/PATH`), `auth` being `basic:USER:PASSWORD` or `bearer:TOKEN`.
    pub fn new(url: &str, auth: Option<&str>) -> Result<Cluster, String> {
        let rpc = Rpc::new(url, auth, TIMEOUT)?;
        let url = rpc.endpoint().to_string();
        Ok(Cluster { rpc, url })
    }

    /// The API, without any password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One request; its status and JSON answer (`null` for an empty body).
    fn call(&self, method: Method, path: &str) -> Result<(u16, serde_json::Value), ClusterError> {
        let what = format!(
            "{} {}",
            method.as_str(),
            path.split('?').next().unwrap_or_default()
        );
        let (status, text) = self.rpc.request(method, path).map_err(|e| match e {
            RpcError::Unreachable { why, .. } => ClusterError::Unreachable {
                url: self.url.clone(),
                why: crate::ui::shown::redact(&why).into_owned(),
            },
            RpcError::Timeout { waited, .. } => ClusterError::Unreachable {
                url: self.url.clone(),
                why: format!("no answer within {}", crate::ui::progress::secs(waited)),
            },
            other => ClusterError::BadAnswer {
                url: self.url.clone(),
                what: what.clone(),
                why: other.to_string(),
            },
        })?;
        let value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            match crate::ui::answer::parse(text.as_bytes(), crate::ui::answer::VALUES_MAX) {
                Ok(v) => v,
                Err(_) if !(200..300).contains(&status) => serde_json::Value::String(text),
                Err(e) => {
                    return Err(ClusterError::BadAnswer {
                        url: self.url.clone(),
                        what,
                        why: e.to_string(),
                    })
                }
            }
        };
        if (200..300).contains(&status) || status == 404 {
            return Ok((status, value));
        }
        // The REST API's errors: {"code": 500, "message": "..."}.
        let message = crate::ui::answer::one_line(
            value["message"]
                .as_str()
                .or(value.as_str())
                .unwrap_or_default(),
        );
        Err(ClusterError::Refused {
            url: self.url.clone(),
            what,
            status,
            message,
        })
    }

    /// A request that must succeed.
    fn must(&self, method: Method, path: &str) -> Result<serde_json::Value, ClusterError> {
        match self.call(method, path)? {
            (404, value) => Err(ClusterError::Refused {
                url: self.url.clone(),
                what: format!("{} {path}", method.as_str()),
                status: 404,
                message: crate::ui::answer::one_line(value["message"].as_str().unwrap_or_default()),
            }),
            (_, value) => Ok(value),
        }
    }

    /// The cluster's pin of `cid` (its options and allocations), or `None` when it has none.
    pub fn allocation(&self, cid: &str) -> Result<Option<serde_json::Value>, ClusterError> {
        match self.call(Method::Get, &format!("/allocations/{cid}"))? {
            (404, _) => Ok(None),
            (_, value) if value.is_object() => Ok(Some(value)),
            (_, value) => Err(ClusterError::BadAnswer {
                url: self.url.clone(),
                what: "GET /allocations".into(),
                why: format!(
                    "not a pin: {}",
                    crate::ui::answer::one_line(&value.to_string())
                ),
            }),
        }
    }

    /// Pins `cid` with `query` (the pin options).
    pub fn pin(&self, cid: &str, query: &str) -> Result<serde_json::Value, ClusterError> {
        self.must(Method::Post, &format!("/pins/{cid}?{query}"))
    }

    /// How each peer holds `cid`: peer id -> status (`pinned`, `pinning`, `remote`...).
    pub fn status(&self, cid: &str) -> Result<Vec<(String, String)>, ClusterError> {
        let value = self.must(Method::Get, &format!("/pins/{cid}"))?;
        let map = value["peer_map"]
            .as_object()
            .ok_or_else(|| ClusterError::BadAnswer {
                url: self.url.clone(),
                what: "GET /pins".into(),
                why: "no peer_map".into(),
            })?;
        Ok(map
            .iter()
            .map(|(peer, info)| {
                (
                    peer.clone(),
                    info["status"]
                        .as_str()
                        .unwrap_or("undefined")
                        .chars()
                        .take(64)
                        .collect(),
                )
            })
            .collect())
    }

    /// Unpins `cid`; `false` when the cluster did not have it pinned.
    pub fn unpin(&self, cid: &str) -> Result<bool, ClusterError> {
        Ok(self.call(Method::Delete, &format!("/pins/{cid}"))?.0 != 404)
    }
}

/// What became of the root in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Pinned {
    /// Peers that hold it pinned, and peers that should.
    pub pinned: usize,
    pub allocated: usize,
    /// Whether it replaced the previous root with a pin update.
    pub updated: bool,
    /// Replaced roots unpinned in this run.
    pub unpinned: Vec<String>,
    /// Replaced roots left pinned until the root is pinned everywhere (a later run).
    pub left: Vec<String>,
    /// Peers that failed to pin it, with their status: the first few, and how many.
    pub failed: crate::ui::answer::FirstFew,
}

/// Where a peer's pin of the root stands.
#[derive(Debug, PartialEq, Eq)]
enum Stand {
    Pinned,
    /// Allocated to other peers, or the peer is not reachable from the cluster: not waited for.
    Elsewhere,
    Failed,
    Pending,
}

fn stand(status: &str) -> Stand {
    match status {
        "pinned" => Stand::Pinned,
        "remote" | "cluster_error" | "sharded" => Stand::Elsewhere,
        "pin_error" | "error" => Stand::Failed,
        _ => Stand::Pending,
    }
}

/// The pin options as query arguments.
fn pin_query(job: &PublishConfig, name: &str, update_from: Option<&str>) -> String {
    let mut q = format!(
        "name={}&mode=recursive&replication-min={}&replication-max={}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC),
        job.replication_min,
        job.replication_max
    );
    if job.expire_days > 0 {
        q.push_str(&format!(
            "&expire-in={}h",
            job.expire_days.saturating_mul(24)
        ));
    }
    if let Some(from) = update_from {
        q.push_str(&format!("&pin-update={from}"));
    }
    q
}

/// Whether a pin update from the pin `old` gives the options asked for: the cluster copies
/// the replication factors (and, when none is asked for, the expiry) of the old pin.
fn update_keeps_options(job: &PublishConfig, old: &serde_json::Value) -> bool {
    let factor = |key: &str| old[key].as_i64();
    let same_factors = (job.replication_min == 0
        || factor("replication_factor_min") == Some(i64::from(job.replication_min)))
        && (job.replication_max == 0
            || factor("replication_factor_max") == Some(i64::from(job.replication_max)));
    // Go's zero time means "never expires".
    let old_expires = old["expire_at"]
        .as_str()
        .is_some_and(|t| !t.is_empty() && !t.starts_with("0001-01-01"));
    same_factors && (job.expire_days > 0 || !old_expires)
}

fn is_cid(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Pins `root` (named `pacxfer-<key>`) in the cluster in place of the previous root, waits up
/// to `wait` for it to be pinned on its peers, then unpins the roots it replaced.
pub fn pin_root(
    cluster: &Cluster,
    job: &PublishConfig,
    state: &mut State,
    root: &str,
    key: &str,
    wait: Duration,
) -> Result<Pinned, PublishError> {
    // Roots pinned in another cluster (or with another URL) are not this one's to replace.
    let same_cluster = state.meta("cluster")?.as_deref() == Some(cluster.url());
    let previous = state
        .meta("cluster_root")?
        .filter(|p| same_cluster && is_cid(p) && p != root);
    let mut replaced: Vec<String> = state
        .meta("cluster_unpin")?
        .filter(|_| same_cluster)
        .unwrap_or_default()
        .split_whitespace()
        .filter(|c| is_cid(c) && *c != root)
        .map(str::to_string)
        .collect();

    let mut pinned = Pinned::default();
    let update_from = match &previous {
        Some(old) => match cluster.allocation(old)? {
            Some(pin) if update_keeps_options(job, &pin) => Some(old.as_str()),
            _ => None,
        },
        None => None,
    };
    cluster.pin(
        root,
        &pin_query(job, &format!("pacxfer-{key}"), update_from),
    )?;
    pinned.updated = update_from.is_some();
    if let Some(old) = previous {
        if !replaced.contains(&old) {
            replaced.push(old);
        }
    }
    state.set_meta(&[
        ("cluster", cluster.url()),
        ("cluster_root", root),
        ("cluster_unpin", &replaced.join(" ")),
    ])?;

    // The root pinned where it is allocated, then the roots it replaced unpinned.
    let until = Instant::now() + wait;
    loop {
        let statuses = cluster.status(root)?;
        let (mut pending, mut failed) = (0, crate::ui::answer::FirstFew::default());
        pinned.pinned = 0;
        pinned.allocated = 0;
        for (peer, status) in &statuses {
            match stand(status) {
                Stand::Pinned => pinned.pinned += 1,
                Stand::Elsewhere => continue,
                Stand::Failed => {
                    failed.push(|| crate::ui::answer::one_line(&format!("{peer}: {status}")))
                }
                Stand::Pending => pending += 1,
            }
            pinned.allocated += 1;
        }
        if !failed.is_empty() || pending == 0 || Instant::now() >= until {
            pinned.failed = failed;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if pinned.failed.is_empty() && pinned.pinned > 0 && pinned.pinned == pinned.allocated {
        while let Some(old) = replaced.first().cloned() {
            if cluster.unpin(&old)? {
                pinned.unpinned.push(old);
            }
            replaced.remove(0);
            state.set_meta(&[("cluster_unpin", &replaced.join(" "))])?;
        }
    }
    pinned.left = replaced;
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(min: i32, max: i32, days: u64) -> PublishConfig {
        PublishConfig {
            replication_min: min,
            replication_max: max,
            expire_days: days,
            ..Default::default()
        }
    }

    #[test]
    fn pin_options_as_the_rest_api_reads_them() {
        assert_eq!(
            pin_query(&job(0, 0, 0), "pacxfer-main", None),
            "name=pacxfer%2Dmain&mode=recursive&replication-min=0&replication-max=0"
        );
        assert_eq!(
            pin_query(&job(2, -1, 3), "pacxfer-k", Some("bafyold")),
            "name=pacxfer%2Dk&mode=recursive&replication-min=2&replication-max=-1&expire-in=72h&pin-update=bafyold"
        );
    }

    #[test]
    fn a_pin_update_is_used_only_when_it_keeps_the_options_asked_for() {
        let old = serde_json::json!({
            "replication_factor_min": 2, "replication_factor_max": 2,
            "expire_at": "0001-01-01T00:00:00Z",
        });
        assert!(update_keeps_options(&job(2, 2, 0), &old));
        assert!(update_keeps_options(&job(0, 0, 5), &old));
        assert!(!update_keeps_options(&job(1, 2, 0), &old));
        assert!(!update_keeps_options(&job(-1, -1, 0), &old));
        let expiring = serde_json::json!({
            "replication_factor_min": -1, "replication_factor_max": -1,
            "expire_at": "2030-01-01T00:00:00Z",
        });
        // The old expiry would be copied onto a root that should never expire.
        assert!(!update_keeps_options(&job(-1, -1, 0), &expiring));
        assert!(update_keeps_options(&job(-1, -1, 9), &expiring));
    }

    #[test]
    fn statuses() {
        assert_eq!(stand("pinned"), Stand::Pinned);
        assert_eq!(stand("remote"), Stand::Elsewhere);
        assert_eq!(stand("pin_error"), Stand::Failed);
        assert_eq!(stand("pinning"), Stand::Pending);
        assert_eq!(stand("pin_queued"), Stand::Pending);
        assert_eq!(stand("something new"), Stand::Pending);
    }
}
