//! One test's world: its directory, a copy of the fixture repository served by its own
//! mirror, a DBPath holding the repository's sync database, optionally a running IPFS node,
//! a pacxfer config pointing at all of them, and a pacman.conf whose only Server is the mirror.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::fixtures::{self, copy_tree, Fixtures, Pkg, REPO};
use crate::harness::httpd::Mirror;
use crate::harness::kubo::Node;
use crate::harness::util::{pacxfer, pacxfer_bin, run, test_env, Run, TestDir};

pub struct World {
    pub dir: TestDir,
    pub fx: &'static Fixtures,
    pub mirror: Mirror,
    pub node: Option<Node>,
    pub config: PathBuf,
    pub dbpath: PathBuf,
    pub pacman_conf: PathBuf,
    /// Extra `[share]` lines for the next `configure`.
    pub share_extra: String,
    /// `[mirror] stall_timeout` for the next `configure`.
    pub mirror_stall: &'static str,
}

impl World {
    /// A world; `with_node` starts an IPFS node (empty).
    pub fn new(name: &str, with_node: bool) -> World {
        let fx = fixtures::get();
        let dir = TestDir::new(name);
        copy_tree(&fx.root, &dir.join("mirror"));
        let mirror = Mirror::serve(&dir.join("mirror"));
        let dbpath = dir.join("db");
        std::fs::create_dir_all(dbpath.join("sync")).expect("mkdir sync");
        std::fs::copy(fx.db(), dbpath.join("sync").join(format!("{REPO}.db"))).expect("copy db");
        let node = with_node.then(|| Node::start(dir.path()));
        let mut world = World {
            config: dir.join("pacxfer.conf"),
            pacman_conf: dir.join("pacman.conf"),
            dir,
            fx,
            mirror,
            node,
            dbpath,
            share_extra: String::new(),
            mirror_stall: "5s",
        };
        let gateway = world
            .node
            .as_ref()
            .map(|n| n.url.clone())
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", crate::harness::util::dead_port()));
        world.configure(&gateway, &["/ipfs/{cid}"], "");
        world.write_pacman_conf();
        world
    }

    /// Rewrites the pacxfer config: gateway URL, path templates, and extra `[gateway]` lines.
    /// The node's RPC API is this world's node's, or a dead port, never the machine's own.
    pub fn configure(&mut self, gateway: &str, paths: &[&str], gateway_extra: &str) {
        let paths: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
        let api = self
            .node
            .as_ref()
            .map(|n| n.api.clone())
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", crate::harness::util::dead_port()));
        let text = format!(
            "dbpath = {:?}\npacman_conf = {:?}\ncache_dir = {:?}\n\n[gateway]\nurl = {gateway:?}\npaths = [{}]\n{gateway_extra}\n\n[mirror]\nstall_timeout = {:?}\n\n[share]\napi = {api:?}\n{}\n",
            self.dbpath.display().to_string(),
            self.pacman_conf.display().to_string(),
            self.cache_dir().display().to_string(),
            paths.join(", "),
            self.mirror_stall,
            self.share_extra
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    fn write_pacman_conf(&self) {
        for d in ["root", "cache", "gnupg", "hooks"] {
            std::fs::create_dir_all(self.dir.join(d)).expect("mkdir");
        }
        let text = format!(
            "[options]\nRootDir = {root}\nDBPath = {db}/\nCacheDir = {cache}/\nLogFile = {log}\n\
             GPGDir = {gpg}/\nHookDir = {hooks}/\nArchitecture = x86_64\nSigLevel = Never\n\
             XferCommand = {bin} --config {conf} %u %o\n\n[{REPO}]\nServer = {mirror}/$repo/os/$arch\n",
            root = self.dir.join("root").display(),
            db = self.dbpath.display(),
            cache = self.dir.join("cache").display(),
            log = self.dir.join("pacman.log").display(),
            gpg = self.dir.join("gnupg").display(),
            hooks = self.dir.join("hooks").display(),
            bin = pacxfer_bin().display(),
            conf = self.config.display(),
            mirror = self.mirror.url(),
        );
        std::fs::write(&self.pacman_conf, text).expect("write pacman.conf");
    }

    /// This world's index and gateway-state directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join("pacxfer-cache")
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("this world has an IPFS node")
    }

    /// The mirror URL pacman would pass for a file of the repository.
    pub fn url(&self, file: &str) -> String {
        format!("{}/{REPO}/os/x86_64/{file}", self.mirror.url())
    }

    /// Puts a package in the node with the `unixfs-v1-2025` settings: one raw block when it
    /// is at most 1 MiB.
    pub fn add_raw(&self, pkg: &Pkg) -> String {
        let bytes = std::fs::read(&pkg.path).expect("read package");
        self.node().add(&pkg.filename, &bytes)
    }

    /// The end-to-end setup of the pacman tests: no database yet (pacman -Sy fetches it through
    /// pacxfer), tiny in the node as one raw block, big in a directory by SHA-256 published to
    /// an IPNS name, and both templates configured.
    pub fn ipfs_holds_tiny_and_big(&mut self) {
        let (tiny, big) = (self.fx.tiny.clone(), self.fx.big.clone());
        std::fs::remove_file(self.dbpath.join(format!("sync/{REPO}.db"))).expect("rm db");
        self.add_raw(&tiny);
        let bytes = std::fs::read(&big.path).expect("read big");
        let dir = self.node().add_dir(&[(big.sha256.as_str(), &bytes)]);
        let name = self.node().publish("pkgcache", &dir);
        let gateway = self.node().url.clone();
        let by_sha = format!("/ipns/{name}/{{sha256}}");
        self.configure(&gateway, &["/ipfs/{cid}", &by_sha], "");
    }

    /// `pacxfer --config <world config> ARGS...`, not yet run.
    pub fn pacxfer_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = pacxfer();
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `pacxfer --config <world config> ARGS...`
    pub fn pacxfer(&self, args: &[&str]) -> Run {
        run(&mut self.pacxfer_cmd(args))
    }

    /// The XferCommand form: `pacxfer URL OUTPUT`.
    pub fn xfer(&self, url: &str, out: &Path) -> Run {
        let mut cmd = pacxfer();
        cmd.arg("--config").arg(&self.config).arg(url).arg(out);
        run(&mut cmd)
    }

    /// `pacxfer -v URL OUTPUT`: the XferCommand form, saying which sources it tried.
    pub fn xfer_verbose(&self, url: &str, out: &Path) -> Run {
        let out = out.to_string_lossy();
        self.pacxfer(&["-v", url, &out])
    }

    /// Real pacman on this world's pacman.conf, with the test's environment, which pacman
    /// passes on to its XferCommand.
    pub fn pacman(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("pacman");
        test_env(&mut cmd)
            .arg("--config")
            .arg(&self.pacman_conf)
            .args(args);
        run(&mut cmd)
    }

    pub fn out(&self, name: &str) -> PathBuf {
        let d = self.dir.join("out");
        std::fs::create_dir_all(&d).expect("mkdir out");
        d.join(name)
    }

    /// Asserts `path` holds exactly the bytes of `pkg`.
    #[track_caller]
    pub fn assert_same(&self, path: &Path, expected: &Path, run: &Run) {
        let got = std::fs::read(path).unwrap_or_default();
        let want = std::fs::read(expected).expect("read expected");
        assert!(
            got == want,
            "{}",
            run.explain(&format!(
                "{} holds {} bytes, not the {} bytes of {}\nmirror log:\n{}",
                path.display(),
                got.len(),
                want.len(),
                expected.display(),
                self.mirror.log_text()
            ))
        );
    }
}
