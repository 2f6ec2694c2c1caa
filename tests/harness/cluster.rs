//! The tests' ipfs-cluster: real `ipfs-cluster-service` peers (v1.1.6, which
//! `contrib/deps.sh` builds into `.cluster/bin`), one per Kubo node given, forming one cluster
//! over loopback: CRDT consensus, a shared secret, each peer's `IPFS_CLUSTER_PATH` in the
//! test's directory, its `ipfshttp.node_multiaddress` the Kubo node's RPC API, its REST API and
//! cluster listener on loopback ports the kernel picks, no mDNS, no bootstrap peers but the
//! first peer, no IPFS proxy or pinning-service API; the first peer's REST API may ask for a
//! password (`basic_auth_credentials`). The cluster is ready when every peer
//! lists every peer (`ipfs-cluster-ctl peers ls`) and holds every peer's free-space metric,
//! which allocations need. Peers are killed (by their process) when dropped, and their logs
//! printed when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::kubo::Node;
use crate::harness::util::repo_root;

/// One running cluster peer.
pub struct Peer {
    child: Option<Child>,
    /// The REST API's base URL.
    pub api: String,
    /// The REST API as a multiaddr (for `ipfs-cluster-ctl --host`).
    pub api_maddr: String,
    /// The peer's id.
    pub id: String,
    /// `USER:PASSWORD` when its REST API asks for them.
    login: Option<String>,
    log: PathBuf,
}

/// A cluster of peers, each in front of its own Kubo node.
pub struct Cluster {
    pub peers: Vec<Peer>,
}

/// A binary of `.cluster/bin`, else the one on PATH.
pub fn bin(name: &str) -> PathBuf {
    let built = repo_root().join(".cluster").join("bin").join(name);
    if built.exists() {
        built
    } else {
        PathBuf::from(name)
    }
}

/// Two online Kubo nodes connected to each other, for a cluster's peers.
pub fn two_nodes(dir: &Path) -> (Node, Node) {
    let online = crate::harness::kubo::Options {
        online: true,
        ..Default::default()
    };
    let a = Node::start_with(dir, "kubo1", online.clone());
    let b = Node::start_with(dir, "kubo2", online);
    b.connect(&a);
    (a, b)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `/ip4/127.0.0.1/tcp/PORT` for `http://127.0.0.1:PORT`.
fn maddr(url: &str) -> String {
    let port = url.rsplit(':').next().expect("port");
    format!("/ip4/127.0.0.1/tcp/{port}")
}

impl Cluster {
    /// One peer per node, in `<dir>/cluster<N>`; returns once they form one cluster.
    pub fn start(dir: &Path, nodes: &[&Node]) -> Cluster {
        Cluster::start_with(dir, nodes, None)
    }

    /// The same, the first peer's REST API asking for `(user, password)` when given.
    pub fn start_with(dir: &Path, nodes: &[&Node], first_login: Option<(&str, &str)>) -> Cluster {
        let mut cluster = Cluster { peers: Vec::new() };
        let mut secret: Option<serde_json::Value> = None;
        for (i, node) in nodes.iter().enumerate() {
            let path = dir.join(format!("cluster{}", i + 1));
            let init = crate::harness::util::daemon_env(
                &mut Command::new(bin("ipfs-cluster-service")),
                dir,
            )
            .args(["init", "--consensus", "crdt", "--datastore", "leveldb"])
            .args(["--randomports", "--force"])
            .env("IPFS_CLUSTER_PATH", &path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run ipfs-cluster-service ({e}): run ./contrib/deps.sh, which \
                         builds it"
                )
            });
            assert!(
                init.status.success(),
                "ipfs-cluster-service init: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            let service = path.join("service.json");
            let mut config = read_json(&service);
            let secret = secret.get_or_insert_with(|| config["cluster"]["secret"].clone());
            let c = &mut config["cluster"];
            c["secret"] = secret.clone();
            c["peername"] = serde_json::json!(format!("peer{}", i + 1));
            c["listen_multiaddress"] = serde_json::json!(["/ip4/127.0.0.1/tcp/0"]);
            c["mdns_interval"] = serde_json::json!("0s");
            c["peer_addresses"] = serde_json::json!([]);
            // Peers and their metrics known in seconds, not in the default 15 to 30.
            c["monitor_ping_interval"] = serde_json::json!("1s");
            for informer in ["disk", "pinqueue", "tags"] {
                if config["informer"][informer].is_object() {
                    config["informer"][informer]["metric_ttl"] = serde_json::json!("2s");
                }
            }
            let rest = config["api"]["restapi"].clone();
            config["api"] = serde_json::json!({ "restapi": rest });
            config["api"]["restapi"]["http_listen_multiaddress"] =
                serde_json::json!("/ip4/127.0.0.1/tcp/0");
            let login = first_login.filter(|_| i == 0);
            if let Some((user, password)) = login {
                config["api"]["restapi"]["basic_auth_credentials"] =
                    serde_json::json!({ user: password });
            }
            config["ipfs_connector"]["ipfshttp"]["node_multiaddress"] =
                serde_json::json!(maddr(&node.api));
            std::fs::write(
                &service,
                serde_json::to_vec_pretty(&config).expect("service.json"),
            )
            .expect("write service.json");
            let id = read_json(&path.join("identity.json"))["id"]
                .as_str()
                .expect("peer id")
                .to_string();

            let bootstrap = cluster.peers.first().map(|first| first.cluster_addr());
            let log = dir.join(format!("cluster{}-daemon.log", i + 1));
            let out = std::fs::File::create(&log).expect("peer log");
            let err = out.try_clone().expect("peer log");
            let mut cmd = Command::new(bin("ipfs-cluster-service"));
            crate::harness::util::daemon_env(&mut cmd, dir).arg("daemon");
            if let Some(addr) = bootstrap {
                cmd.args(["--bootstrap", &addr]);
            }
            let child = cmd
                .env("IPFS_CLUSTER_PATH", &path)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start ipfs-cluster-service");
            let mut peer = Peer {
                child: Some(child),
                api: String::new(),
                api_maddr: String::new(),
                id,
                login: login.map(|(user, password)| format!("{user}:{password}")),
                log,
            };
            peer.wait_started();
            cluster.peers.push(peer);
        }
        cluster.wait_formed();
        cluster
    }

    /// Until every peer lists every peer and has every peer's free-space metric.
    fn wait_formed(&self) {
        let started = Instant::now();
        let want: std::collections::BTreeSet<&str> =
            self.peers.iter().map(|p| p.id.as_str()).collect();
        for peer in &self.peers {
            loop {
                let listed: std::collections::BTreeSet<String> = peer
                    .ctl(&["peers", "ls"])
                    .iter()
                    .filter(|p| p["error"].as_str().unwrap_or_default().is_empty())
                    .filter_map(|p| p["id"].as_str().map(str::to_string))
                    .collect();
                let metrics: std::collections::BTreeSet<String> = peer
                    .ctl(&["health", "metrics", "freespace"])
                    .iter()
                    .filter_map(|m| m["peer"].as_str().map(str::to_string))
                    .collect();
                let all = |got: &std::collections::BTreeSet<String>| {
                    want.iter().all(|id| got.contains(*id))
                };
                if all(&listed) && all(&metrics) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(90),
                    "the cluster did not form: {} lists {listed:?} and has metrics of {metrics:?}, \
                     not all of {want:?}\n{}",
                    peer.id,
                    peer.log()
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Peer {
    /// Until the REST API listens; reads its port from the daemon's log.
    fn wait_started(&mut self) {
        let rest = |text: &str| {
            text.lines()
                // "RESTAPI (HTTP): /ip4/...", or "(HTTP - authenticated)" with a password.
                .filter(|l| l.contains("RESTAPI (HTTP"))
                .find_map(|l| l.split_once("): ").map(|(_, a)| a.trim()))
                .map(str::to_string)
        };
        let text = crate::harness::util::wait_for_log(
            &mut self.child,
            &self.log,
            "the cluster peer",
            |t| rest(t).is_some() && t.contains("IPFS Cluster is READY"),
        );
        let addr = rest(&text).unwrap_or_default();
        let port = addr.rsplit('/').next().unwrap_or_default();
        self.api = format!("http://127.0.0.1:{port}");
        self.api_maddr = addr;
    }

    /// Where other peers reach this one: its loopback cluster address with its id.
    pub fn cluster_addr(&self) -> String {
        let id = &self.ctl(&["id"])[0];
        id["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .unwrap_or_else(|| panic!("no loopback cluster address: {id}"))
            .to_string()
    }

    /// `ipfs-cluster-ctl --host <this peer> --enc json ARGS`: its JSON values.
    pub fn ctl(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let home = self.log.parent().unwrap_or(Path::new("/"));
        let out =
            crate::harness::util::daemon_env(&mut Command::new(bin("ipfs-cluster-ctl")), home)
                .args([
                    "--host",
                    &self.api_maddr,
                    "--enc",
                    "json",
                    "--timeout",
                    "30",
                ])
                .args(
                    self.login
                        .iter()
                        .flat_map(|l| ["--basic-auth", l, "--force-http"]),
                )
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run ipfs-cluster-ctl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ipfs-cluster-ctl {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut values = Vec::new();
        for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            match v.unwrap_or_else(|e| panic!("ipfs-cluster-ctl {args:?}: {e}: {text}")) {
                serde_json::Value::Array(items) => values.extend(items),
                other => values.push(other),
            }
        }
        values
    }

    /// `GET <path>` on the REST API: status and JSON answer (`null` when not JSON).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let req = agent().get(&format!("{}{path}", self.api));
        let req = match &self.login {
            Some(login) => req.header(
                "Authorization",
                format!("Basic {}", data_encoding::BASE64.encode(login.as_bytes())),
            ),
            None => req,
        };
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The cluster's pin of `cid` (`GET /allocations/<cid>`), `None` when it has none.
    pub fn pin_of(&self, cid: &str) -> Option<serde_json::Value> {
        match self.get(&format!("/allocations/{cid}")) {
            (200, pin) => Some(pin),
            (404, _) => None,
            (status, v) => panic!("GET /allocations/{cid}: {status} {v}"),
        }
    }

    /// How each peer holds `cid` (`GET /pins/<cid>`): peer id -> status.
    pub fn statuses(&self, cid: &str) -> std::collections::BTreeMap<String, String> {
        let (status, info) = self.get(&format!("/pins/{cid}"));
        assert_eq!(status, 200, "GET /pins/{cid}: {info}");
        info["peer_map"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(peer, i)| {
                (
                    peer.clone(),
                    i["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The daemon's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        crate::harness::util::kill_daemon(&mut self.child);
        crate::harness::util::print_log_if_failing("ipfs-cluster-service", &self.log, 40);
    }
}
