//! A simulated LAN (root only): machines, each in its own network namespace joined to one
//! bridge by a veth pair, each with its own Kubo node (default profile, mDNS on, no bootstrap
//! peers), its own pacman root and its own pacxfer config; and the mirror, the tests' own
//! static server, in a namespace of its own on the same bridge behind an "uplink" whose rate
//! `tc tbf` limits. Only addresses inside these namespaces are used: 10.77.0.1, .2, ... for
//! the machines, 10.77.0.100 for the mirror.
//!
//! The repository is 30 packages of about 100 MB in all, most above 1 MiB, built once with
//! makepkg and repo-add and kept in `target/` like the other fixtures.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::fixtures::{copy_tree, makepkg};
use crate::harness::httpd::Mirror;
use crate::harness::kubo::ipfs_bin;
use crate::harness::util::{pacxfer_bin, repo_root, run, sha256_hex, test_env, Run, TestDir};

/// The repository's name.
pub const REPO: &str = "lanrepo";

/// The mirror's address on the LAN.
pub const MIRROR_IP: &str = "10.77.0.100";

/// Package sizes in KiB: a spread like an upgrade's, four of them one raw block or less.
const SIZES_KIB: [u64; 30] = [
    40, 180, 600, 1000, 1100, 1300, 1500, 1700, 1900, 2100, 2300, 2500, 2700, 2900, 3100, 3300,
    3500, 3700, 3900, 4100, 4300, 4500, 4700, 4900, 5100, 5300, 5500, 5700, 6000, 6500,
];

/// One package of the repository.
#[derive(Debug, Clone)]
pub struct LanPkg {
    pub name: String,
    pub filename: String,
    pub sha256: String,
    pub size: u64,
}

/// The repository, built once.
#[derive(Debug)]
pub struct LanRepo {
    /// `<root>/lanrepo/os/x86_64/`.
    pub root: PathBuf,
    pub pkgs: Vec<LanPkg>,
}

static REPO_BUILT: OnceLock<LanRepo> = OnceLock::new();

/// The 30-package repository (built on first use, then reused from `target/`).
pub fn repo() -> &'static LanRepo {
    REPO_BUILT.get_or_init(build_repo)
}

fn build_repo() -> LanRepo {
    let base = repo_root().join("target/pacxfer-fixtures/lan-v1");
    let root = base.join("mirror");
    let dir = root.join(REPO).join("os").join("x86_64");
    let done = base.join("done");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&dir).expect("mkdir lan repo");
        let _ = run(Command::new("useradd").args(["-m", "builder"]));
        let names: Vec<String> = (1..=SIZES_KIB.len())
            .map(|i| format!("lan{i:02}"))
            .collect();
        let mut text = format!(
            "pkgbase=lanset\npkgname=({})\npkgver=1.0\npkgrel=1\npkgdesc='pacxfer LAN test package'\n\
             arch=(x86_64)\nlicense=(MIT)\noptions=(!strip !debug)\n",
            names.join(" ")
        );
        for (name, kib) in names.iter().zip(SIZES_KIB) {
            text.push_str(&format!(
                "\npackage_{name}() {{\n  install -d \"$pkgdir/usr/share/{name}\"\n  \
                 head -c {} /dev/urandom > \"$pkgdir/usr/share/{name}/blob\"\n}}\n",
                kib * 1024
            ));
        }
        makepkg(&text, &dir);
        let mut add = Command::new("repo-add");
        add.arg(format!("{REPO}.db.tar.gz")).current_dir(&dir);
        for name in &names {
            add.arg(format!("{name}-1.0-1-x86_64.pkg.tar.zst"));
        }
        run(&mut add).success();
        std::fs::write(&done, "").expect("mark lan repo done");
    }
    let pkgs = (1..=SIZES_KIB.len())
        .map(|i| {
            let name = format!("lan{i:02}");
            let filename = format!("{name}-1.0-1-x86_64.pkg.tar.zst");
            let path = dir.join(&filename);
            LanPkg {
                sha256: sha256_hex(&path),
                size: std::fs::metadata(&path).expect("stat package").len(),
                name,
                filename,
            }
        })
        .collect();
    LanRepo { root, pkgs }
}

/// A Kubo daemon inside a namespace; its API and gateway are on the namespace's own
/// loopback (127.0.0.1:5001 and :8080), reached by pacxfer inside it and by the test through
/// `ipfs` run inside it.
pub struct NsNode {
    child: Option<Child>,
    ns: String,
    repo: PathBuf,
    log: PathBuf,
}

impl NsNode {
    fn start(ns: &str, dir: &Path) -> NsNode {
        let repo = dir.join("ipfs");
        let log = dir.join("ipfs-daemon.log");
        let mut init = Command::new("ip");
        crate::harness::util::daemon_env(&mut init, dir)
            .args(["netns", "exec", ns])
            .arg(ipfs_bin())
            .arg("init")
            .env("IPFS_PATH", &repo)
            .stdin(Stdio::null());
        run(&mut init).success();
        let config_path = repo.join("config");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).expect("read config"))
                .expect("config is JSON");
        for (key, value) in [
            (
                "Addresses.API",
                serde_json::json!("/ip4/127.0.0.1/tcp/5001"),
            ),
            (
                "Addresses.Gateway",
                serde_json::json!("/ip4/127.0.0.1/tcp/8080"),
            ),
            (
                "Addresses.Swarm",
                serde_json::json!(["/ip4/0.0.0.0/tcp/4001"]),
            ),
            ("Bootstrap", serde_json::json!([])),
            ("Discovery.MDNS.Enabled", serde_json::json!(true)),
        ] {
            crate::harness::kubo::set_path(&mut config, key, value);
        }
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("config"),
        )
        .expect("write config");
        let out = std::fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let mut cmd = Command::new("ip");
        crate::harness::util::daemon_env(&mut cmd, dir)
            .args(["netns", "exec", ns])
            .arg(ipfs_bin())
            .arg("daemon")
            .env("IPFS_PATH", &repo)
            .env("GOLOG_LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("start ipfs daemon");
        let mut node = NsNode {
            child: Some(child),
            ns: ns.to_string(),
            repo,
            log,
        };
        crate::harness::util::wait_for_log(&mut node.child, &node.log, "the Kubo daemon", |t| {
            t.contains("Daemon is ready")
        });
        node
    }

    /// `ipfs ARGS...` against this node, inside its namespace; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        crate::harness::util::daemon_env(&mut cmd, self.repo.parent().unwrap_or(&self.repo))
            .args(["netns", "exec", &self.ns])
            .arg(ipfs_bin())
            .args(args)
            .env("IPFS_PATH", &self.repo)
            .stdin(Stdio::null());
        run(&mut cmd).success().stdout()
    }

    /// The distinct peers the node is connected to.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .cli(&["swarm", "peers"])
            .lines()
            .filter_map(|l| l.rsplit("/p2p/").next().map(str::to_string))
            .filter(|p| !p.is_empty())
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// Waits until the node's name points at its current `/pacxfer` directory: pacxfer
    /// publishes it in the background after each download it shared.
    pub fn wait_published(&self) {
        let started = Instant::now();
        loop {
            let root = self.cli(&["files", "stat", "--hash", "/pacxfer"]);
            let mut cmd = Command::new("ip");
            crate::harness::util::daemon_env(&mut cmd, self.repo.parent().unwrap_or(&self.repo))
                .args(["netns", "exec", &self.ns])
                .arg(ipfs_bin())
                .args(["name", "resolve", "--nocache"])
                .env("IPFS_PATH", &self.repo)
                .stdin(Stdio::null());
            let named = run(&mut cmd).stdout();
            if named.trim() == format!("/ipfs/{}", root.trim()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{}'s /pacxfer ({}) was not published within 120 s (its name: {named:?})",
                self.ns,
                root.trim()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Blocks this node has sent to its peers.
    pub fn blocks_sent(&self) -> u64 {
        let stat: serde_json::Value =
            serde_json::from_str(&self.cli(&["stats", "bitswap", "--enc=json"]))
                .expect("bitswap stats are JSON");
        stat["BlocksSent"].as_u64().unwrap_or(0)
    }

    /// Kills the daemon at once (SIGKILL): a machine switched off.
    pub fn kill(&mut self) {
        crate::harness::util::kill_daemon(&mut self.child);
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        self.kill();
        crate::harness::util::print_log_if_failing("Kubo daemon", &self.log, 40);
    }
}

/// One machine of the LAN.
pub struct Machine {
    pub ns: String,
    /// Its veth's name inside its namespace.
    pub veth: String,
    pub dir: PathBuf,
    pub node: NsNode,
    pub config: PathBuf,
    pub pacman_conf: PathBuf,
}

impl Machine {
    /// Real pacman inside the machine's namespace, on its own pacman.conf (its XferCommand
    /// is pacxfer with this machine's config), not yet run.
    pub fn pacman_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        test_env(&mut cmd)
            .args(["netns", "exec", &self.ns, "pacman", "--config"])
            .arg(&self.pacman_conf)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    pub fn pacman(&self, args: &[&str]) -> Run {
        run(&mut self.pacman_cmd(args))
    }

    /// pacxfer inside the machine's namespace with its config.
    pub fn pacxfer(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("ip");
        test_env(&mut cmd)
            .args(["netns", "exec", &self.ns])
            .arg(pacxfer_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null());
        run(&mut cmd)
    }

    /// Where pacman keeps the packages it downloaded.
    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// Asserts that pacman's cache holds every package with the database's SHA-256.
    #[track_caller]
    pub fn assert_has_all(&self, pkgs: &[LanPkg], run: &Run) {
        for p in pkgs {
            let path = self.cache().join(&p.filename);
            assert!(
                path.exists() && sha256_hex(&path) == p.sha256,
                "{}",
                run.explain(&format!(
                    "{} in {} is missing or not the database's bytes",
                    p.filename, self.ns
                ))
            );
        }
    }

    /// The sources pacxfer's download log counts for packages, from `pacxfer stats --json`.
    pub fn stats(&self) -> serde_json::Value {
        let r = self.pacxfer(&["stats", "--json"]);
        r.success();
        let last = r.stdout().lines().last().unwrap_or("{}").to_string();
        serde_json::from_str(&last).expect("stats --json is JSON")
    }
}

/// The whole LAN; its namespaces are removed when it is dropped.
pub struct Lan {
    pub dir: TestDir,
    pub machines: Vec<Machine>,
    pub mirror: Mirror,
    pub repo: &'static LanRepo,
    switch: String,
    wan: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args)).success();
}

/// Makes a socket listening on `addr` inside the namespace `ns`: a thread of its own enters
/// the namespace, so this one stays where it is.
fn listen_in(ns: &str, addr: &str) -> TcpListener {
    let (ns, addr) = (ns.to_string(), addr.to_string());
    std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the namespace");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        TcpListener::bind(&addr).expect("bind in the namespace")
    })
    .join()
    .expect("listener thread")
}

impl Lan {
    /// `count` machines and the mirror; the uplink carries at most `uplink` (a `tc` rate such
    /// as "400mbit") from the mirror to the LAN.
    pub fn new(name: &str, count: usize, uplink: &str) -> Lan {
        assert_eq!(
            rustix::process::geteuid().as_raw(),
            0,
            "a simulated LAN needs root (network namespaces)"
        );
        let repo = repo();
        let dir = TestDir::new(name);
        let tag = format!(
            "px{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("{tag}s");
        let wan = format!("{tag}w");
        for ns in [&switch, &wan] {
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // A plain switch: multicast (mDNS) flooded to every port, no snooping, no STP delay.
        ip(&[
            "-n",
            &switch,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        let plug = |ns: &str, inside: &str, port: &str, addr: &str| {
            ip(&[
                "link", "add", inside, "netns", ns, "type", "veth", "peer", "name", port, "netns",
                &switch,
            ]);
            ip(&["-n", &switch, "link", "set", port, "master", "br0"]);
            ip(&["-n", &switch, "link", "set", port, "up"]);
            ip(&["-n", ns, "addr", "add", addr, "dev", inside]);
            ip(&["-n", ns, "link", "set", inside, "up"]);
            // Multicast (mDNS) needs a route.
            ip(&["-n", ns, "route", "add", "default", "dev", inside]);
        };
        plug(&wan, "up0", "pw", &format!("{MIRROR_IP}/24"));
        run(Command::new("ip").args([
            "netns", "exec", &wan, "tc", "qdisc", "add", "dev", "up0", "root", "tbf", "rate",
            uplink, "burst", "256kb", "latency", "400ms",
        ]))
        .success();
        copy_tree(&repo.root, &dir.join("mirror"));
        let listener = listen_in(&wan, &format!("{MIRROR_IP}:8000"));
        let mirror = Mirror::serve_on(listener, &dir.join("mirror"));
        let mirror_url = format!("http://{MIRROR_IP}:8000");

        let mut machines = Vec::new();
        for i in 1..=count {
            let ns = format!("{tag}m{i}");
            let _ = run(Command::new("ip").args(["netns", "del", &ns]));
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let ip_addr = format!("10.77.0.{i}");
            plug(&ns, "lan0", &format!("p{i}"), &format!("{ip_addr}/24"));
            let mdir = dir.join(format!("m{i}"));
            for d in ["root", "db", "cache", "gnupg", "hooks", "pacxfer-cache"] {
                std::fs::create_dir_all(mdir.join(d)).expect("mkdir machine");
            }
            let node = NsNode::start(&ns, &mdir);
            let config = mdir.join("pacxfer.conf");
            let pacman_conf = mdir.join("pacman.conf");
            std::fs::write(
                &config,
                format!(
                    "dbpath = {db:?}\npacman_conf = {pc:?}\ncache_dir = {cache:?}\n\n[gateway]\n\
                     url = \"http://127.0.0.1:8080\"\n\n[share]\napi = \"http://127.0.0.1:5001\"\n\
                     after_fetch = true\nafter_fetch_timeout = \"30s\"\n",
                    db = mdir.join("db").display().to_string(),
                    pc = pacman_conf.display().to_string(),
                    cache = mdir.join("pacxfer-cache").display().to_string(),
                ),
            )
            .expect("write pacxfer.conf");
            std::fs::write(
                &pacman_conf,
                format!(
                    "[options]\nRootDir = {d}/root\nDBPath = {d}/db/\nCacheDir = {d}/cache/\n\
                     LogFile = {d}/pacman.log\nGPGDir = {d}/gnupg/\nHookDir = {d}/hooks/\n\
                     Architecture = x86_64\nSigLevel = Never\n\
                     XferCommand = {bin} --config {conf} %u %o\n\n[{REPO}]\n\
                     Server = {mirror_url}/$repo/os/$arch\n",
                    d = mdir.display(),
                    bin = pacxfer_bin().display(),
                    conf = config.display(),
                ),
            )
            .expect("write pacman.conf");
            machines.push(Machine {
                ns,
                veth: "lan0".to_string(),
                dir: mdir,
                node,
                config,
                pacman_conf,
            });
        }
        let lan = Lan {
            dir,
            machines,
            mirror,
            repo,
            switch,
            wan,
        };
        lan.wait_connected();
        lan
    }

    /// Waits until every node has found every other one by mDNS. Kubo's mDNS was seen to
    /// leave a pair of nodes that started seconds apart unconnected for minutes now and then:
    /// pairs still apart after 30 s are connected by address, and the test goes on (it is
    /// about pacxfer on a LAN, not about mDNS).
    fn wait_connected(&self) {
        let want = self.machines.len() - 1;
        let started = Instant::now();
        loop {
            let counts: Vec<usize> = self.machines.iter().map(|m| m.node.peers().len()).collect();
            if counts.iter().all(|c| *c >= want) {
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let ids: Vec<String> = self
            .machines
            .iter()
            .map(|m| m.node.cli(&["id", "-f", "<id>"]).trim().to_string())
            .collect();
        for (i, m) in self.machines.iter().enumerate() {
            let peers = m.node.peers();
            for (j, id) in ids.iter().enumerate() {
                if i != j && !peers.contains(id) {
                    eprintln!(
                        "LAN: mDNS left {} and {} apart; connecting them",
                        m.ns, self.machines[j].ns
                    );
                    m.node.cli(&[
                        "swarm",
                        "connect",
                        &format!("/ip4/10.77.0.{}/tcp/4001/p2p/{id}", j + 1),
                    ]);
                }
            }
        }
    }

    /// How many times the mirror sent each package (whole or in part), by file name.
    pub fn package_hits(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for hit in self.mirror.hits() {
            if hit.method == "GET" && hit.path.ends_with(".pkg.tar.zst") {
                let name = hit.path.rsplit('/').next().unwrap_or("").to_string();
                *out.entry(name).or_insert(0) += 1;
            }
        }
        out
    }

    /// Every package name, for `pacman -S`.
    pub fn names(&self) -> Vec<&str> {
        self.repo.pkgs.iter().map(|p| p.name.as_str()).collect()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for m in &mut self.machines {
            m.node.kill();
        }
        for m in &self.machines {
            let _ = run(Command::new("ip").args(["netns", "del", &m.ns]));
        }
        for ns in [&self.switch, &self.wan] {
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
        }
    }
}
