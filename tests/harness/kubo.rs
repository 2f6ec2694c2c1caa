//! The tests' IPFS nodes: real Kubo daemons (`contrib/deps.sh` builds or finds the `ipfs`
//! binary), each with a temporary `IPFS_PATH` made by `ipfs init --profile=test` (loopback
//! only, no bootstrap peers, no mDNS), gateway, RPC API and swarm on ports the kernel picks,
//! stopped when dropped, and its daemon log printed when the test fails. Several nodes may run
//! in one test; `connect` joins two over loopback.
//!
//! Content goes in through Kubo's RPC API as users and publishers add it: `add` with the
//! import settings of Kubo's `unixfs-v1-2025` profile passed explicitly ([`PROFILE`]). What
//! the gateway answered is read from Kubo's own metrics (`ipfs_http_gw_responses_total` by
//! status code) and what crossed between nodes from `bitswap/stat`: Kubo keeps no access log.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::util::repo_root;

/// Kubo's `unixfs-v1-2025` import settings, spelled out so that every Kubo version gives the
/// same CIDs: CIDv1, raw leaves, 1 MiB chunks, sha2-256.
pub const PROFILE: &str = "cid-version=1&raw-leaves=true&chunker=size-1048576&hash=sha2-256";

/// A running Kubo daemon.
pub struct Node {
    child: Option<Child>,
    /// The gateway's base URL.
    pub url: String,
    /// The RPC API's base URL.
    pub api: String,
    log: PathBuf,
}

/// How a node is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Start with the swarm (`ipfs daemon`), not `--offline`.
    pub online: bool,
    /// Config keys set before the daemon starts (dotted paths, JSON values).
    pub config: Vec<(&'static str, serde_json::Value)>,
}

/// One line of `/api/v0/add`'s answer.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Added {
    pub name: String,
    pub hash: String,
}

/// The `ipfs` binary: the one `contrib/deps.sh` built, else the one on PATH.
pub fn ipfs_bin() -> PathBuf {
    let built = repo_root().join(".kubo").join("bin").join("ipfs");
    if built.exists() {
        built
    } else {
        PathBuf::from("ipfs")
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Sets `path` (dotted) in a JSON document to `value`.
pub fn set_path(doc: &mut serde_json::Value, path: &str, value: serde_json::Value) {
    let mut at = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !at.get(*part).is_some_and(|v| v.is_object()) {
            at[*part] = serde_json::json!({});
        }
        at = &mut at[*part];
    }
    at[parts[parts.len() - 1]] = value;
}

impl Node {
    /// An offline node whose repository is `<dir>/ipfs`.
    pub fn start(dir: &Path) -> Node {
        Node::start_with(dir, "ipfs", Options::default())
    }

    /// A node whose repository is `<dir>/<name>`.
    pub fn start_with(dir: &Path, name: &str, opts: Options) -> Node {
        let bin = ipfs_bin();
        let repo = dir.join(name);
        let log = dir.join(format!("{name}-daemon.log"));
        let init = crate::harness::util::daemon_env(&mut Command::new(&bin), dir)
            .args(["init", "--profile=test"])
            .env("IPFS_PATH", &repo)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): run ./contrib/deps.sh, which builds Kubo",
                    bin.display()
                )
            });
        assert!(
            init.status.success(),
            "ipfs init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let config_path = repo.join("config");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).expect("read config"))
                .expect("config is JSON");
        // Ports the kernel picks, read back from the daemon's own lines.
        set_path(
            &mut config,
            "Addresses.API",
            serde_json::json!("/ip4/127.0.0.1/tcp/0"),
        );
        set_path(
            &mut config,
            "Addresses.Gateway",
            serde_json::json!("/ip4/127.0.0.1/tcp/0"),
        );
        set_path(
            &mut config,
            "Addresses.Swarm",
            serde_json::json!(["/ip4/127.0.0.1/tcp/0"]),
        );
        for (key, value) in &opts.config {
            set_path(&mut config, key, value.clone());
        }
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("config"),
        )
        .expect("write config");

        let out = std::fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let mut cmd = Command::new(&bin);
        crate::harness::util::daemon_env(&mut cmd, dir).arg("daemon");
        if !opts.online {
            cmd.arg("--offline");
        }
        let child = cmd
            .env("IPFS_PATH", &repo)
            .env("GOLOG_LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start ipfs daemon");
        let mut node = Node {
            child: Some(child),
            url: String::new(),
            api: String::new(),
            log,
        };
        let text = crate::harness::util::wait_for_log(
            &mut node.child,
            &node.log,
            "the Kubo daemon",
            |text| text.contains("Daemon is ready"),
        );
        let port = |prefix: &str| {
            text.lines()
                .filter(|l| l.contains("/tcp/"))
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|addr| addr.trim().rsplit('/').next())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
        };
        node.api = format!("http://127.0.0.1:{}", port("RPC API server listening on "));
        node.url = format!("http://127.0.0.1:{}", port("Gateway server listening on "));
        node
    }

    /// `POST /api/v0/<call>` with an optional body and content type; the status and text.
    pub fn rpc_raw(&self, call: &str, body: Option<(&str, Vec<u8>)>) -> (u16, String) {
        let req = agent().post(&format!("{}/api/v0/{call}", self.api));
        let resp = match body {
            Some((ctype, bytes)) => req.header("Content-Type", ctype).send(&bytes[..]),
            None => req.send_empty(),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("POST {call}: {e}"));
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut text)
            .expect("RPC answer");
        (status, text)
    }

    /// An RPC call that must succeed; its last JSON line.
    pub fn rpc(&self, call: &str) -> serde_json::Value {
        let (status, text) = self.rpc_raw(call, None);
        assert_eq!(status, 200, "{call}: {text}");
        text.lines()
            .rfind(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{call}: {l:?}: {e}")))
            .unwrap_or(serde_json::Value::Null)
    }

    /// `add?<params>` with one multipart file per `(name, bytes)`.
    pub fn add_files(&self, files: &[(&str, &[u8])], params: &str) -> Vec<Added> {
        let boundary = "pacxferTestBoundary7c1f";
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let (status, text) = self.rpc_raw(
            &format!("add?{params}"),
            Some((&format!("multipart/form-data; boundary={boundary}"), body)),
        );
        assert_eq!(status, 200, "add failed: {text}");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("add line {l:?}: {e}")))
            .collect()
    }

    /// Adds and pins one file with the profile's settings; returns its CID.
    pub fn add(&self, name: &str, bytes: &[u8]) -> String {
        self.add_with(name, bytes, "pin=true")
    }

    /// Adds one file with the profile's settings and `extra` parameters.
    pub fn add_with(&self, name: &str, bytes: &[u8], extra: &str) -> String {
        let added = self.add_files(&[(name, bytes)], &format!("{PROFILE}&{extra}"));
        added.last().expect("one entry").hash.clone()
    }

    /// Adds files wrapped in one directory (profile settings, pinned); the directory's CID.
    pub fn add_dir(&self, files: &[(&str, &[u8])]) -> String {
        let added = self.add_files(
            files,
            &format!("{PROFILE}&wrap-with-directory=true&pin=true"),
        );
        added
            .iter()
            .find(|a| a.name.is_empty())
            .or(added.last())
            .expect("directory entry")
            .hash
            .clone()
    }

    /// Points the key `key` (made when missing) at `/ipfs/<cid>`; returns the IPNS name.
    pub fn publish(&self, key: &str, cid: &str) -> String {
        let (status, _) = self.rpc_raw(&format!("key/gen?arg={key}&type=ed25519"), None);
        assert!(status == 200 || status == 500, "key/gen: {status}");
        let done = self.rpc(&format!(
            "name/publish?arg=/ipfs/{cid}&key={key}&allow-offline=true&lifetime=1h"
        ));
        done["Name"].as_str().expect("published name").to_string()
    }

    /// The gateway's responses so far, by status code (Kubo's own counter).
    ///
    /// Kubo counts a response once its handler returns, which can be a moment after the
    /// client has read the last byte and exited; the counter is read until two reads 150 ms
    /// apart agree (at most 3 s), so a count is never taken mid-update.
    pub fn responses(&self) -> BTreeMap<u16, u64> {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut last = self.responses_now();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.responses_now();
            if now == last || std::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    fn responses_now(&self) -> BTreeMap<u16, u64> {
        let mut resp = agent()
            .get(&format!("{}/debug/metrics/prometheus", self.api))
            .call()
            .expect("metrics");
        let text = resp.body_mut().read_to_string().expect("metrics text");
        text.lines()
            .filter_map(|l| l.strip_prefix("ipfs_http_gw_responses_total{code=\""))
            .filter_map(|rest| {
                let (code, value) = rest.split_once("\"} ")?;
                Some((code.parse().ok()?, value.trim().parse::<f64>().ok()? as u64))
            })
            .collect()
    }

    /// How many responses with `code` the gateway has sent.
    pub fn answered(&self, code: u16) -> u64 {
        self.responses().get(&code).copied().unwrap_or(0)
    }

    /// Whether the gateway has sent any response at all.
    pub fn asked(&self) -> bool {
        self.responses().values().sum::<u64>() > 0
    }

    /// `bitswap/stat`.
    pub fn bitswap(&self) -> serde_json::Value {
        self.rpc("bitswap/stat")
    }

    /// Blocks this node received from peers by bitswap.
    pub fn blocks_received(&self) -> u64 {
        self.bitswap()["BlocksReceived"].as_u64().unwrap_or(0)
    }

    /// Blocks this node sent to peers by bitswap.
    pub fn blocks_sent(&self) -> u64 {
        self.bitswap()["BlocksSent"].as_u64().unwrap_or(0)
    }

    /// Where other nodes reach this one: its loopback swarm address with its peer id.
    pub fn swarm_addr(&self) -> String {
        let id = self.rpc("id");
        id["Addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .unwrap_or_else(|| panic!("no loopback swarm address: {id}"))
            .to_string()
    }

    /// Connects this node to `other`.
    pub fn connect(&self, other: &Node) {
        let addr = other.swarm_addr();
        self.rpc(&format!("swarm/connect?arg={addr}"));
    }

    /// Stops the daemon.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        crate::harness::util::kill_daemon(&mut self.child);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        crate::harness::util::print_log_if_failing("Kubo daemon", &self.log, 60);
    }
}
