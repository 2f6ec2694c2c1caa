//! A build machine for PKGBUILD tests: an upstream server holding the sources (the test
//! mirror, its log telling which source was asked for), a Kubo node, and real makepkg run as
//! the unprivileged `builder` user with a makepkg.conf whose `DLAGENTS` call `pacxfer
//! dlagent`, reading a pacxfer configuration and cache of the builder's own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::httpd::Mirror;
use crate::harness::kubo::{Node, Options};
use crate::harness::util::{pacxfer_bin, run, Run, TestDir, PATH};

pub struct Build {
    pub dir: TestDir,
    /// `None` once stopped.
    pub upstream: Option<Mirror>,
    pub node: Node,
    /// The builder's pacxfer configuration.
    pub config: PathBuf,
    pub makepkg_conf: PathBuf,
    /// Extra `[share]` lines for the next `configure`.
    pub share_extra: String,
    /// Extra `[gateway]` lines for the next `configure`.
    pub gateway_extra: String,
}

/// Whether the tests run as root (then builds run as `builder`).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives `path` (and what is below it) to the builder.
pub fn give_to_builder(path: &Path) {
    if is_root() {
        run(Command::new("chown").args(["-R", "builder:"]).arg(path)).success();
    }
}

impl Build {
    /// A build machine with an offline node.
    pub fn new(name: &str) -> Build {
        Build::with_node(name, Options::default())
    }

    /// A build machine whose node starts with `opts` (online, to fetch from other nodes).
    pub fn with_node(name: &str, opts: Options) -> Build {
        if is_root() {
            let _ = run(Command::new("useradd").args(["-m", "builder"]));
        }
        let dir = TestDir::new(name);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod build dir");
        std::fs::create_dir_all(dir.join("upstream")).expect("mkdir upstream");
        let upstream = Mirror::serve(&dir.join("upstream"));
        let node = Node::start_with(dir.path(), "ipfs", opts);
        for d in ["pkgs", "cache", "home", "out", "srcdest"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
            give_to_builder(&dir.join(d));
        }
        let config = dir.join("pacxfer.conf");
        let makepkg_conf = dir.join("makepkg.conf");
        let base = std::fs::read_to_string("/etc/makepkg.conf").expect("read /etc/makepkg.conf");
        // The drop-in pacxfer ships, with the tests' binary and configuration in place of
        // /usr/bin/pacxfer: makepkg reads it after its own DLAGENTS and after setting
        // `startdir`. `makepkg-plain.conf` has the lines without `--srcinfo $startdir`.
        let dropin = std::fs::read_to_string(
            crate::harness::util::repo_root().join("contrib/makepkg.conf.d/pacxfer.conf"),
        )
        .expect("read contrib/makepkg.conf.d/pacxfer.conf");
        let ours = format!(
            "{} --config {} dlagent",
            pacxfer_bin().display(),
            config.display()
        );
        let dropin = dropin.replace("/usr/bin/pacxfer dlagent", &ours);
        assert!(
            dropin.contains(&ours),
            "the drop-in names /usr/bin/pacxfer dlagent"
        );
        let tail = "\nPKGEXT=.pkg.tar.zst\nCARCH=x86_64\nCHOST=x86_64-pc-linux-gnu\n";
        std::fs::write(&makepkg_conf, format!("{base}\n{dropin}{tail}"))
            .expect("write makepkg.conf");
        std::fs::write(
            dir.join("makepkg-plain.conf"),
            format!(
                "{base}\n{}{tail}",
                dropin.replace(" --srcinfo $startdir", "")
            ),
        )
        .expect("write makepkg-plain.conf");
        let mut build = Build {
            dir,
            upstream: Some(upstream),
            node,
            config,
            makepkg_conf,
            share_extra: "after_fetch = true\nlan = false\n".into(),
            gateway_extra: String::new(),
        };
        build.configure();
        build
    }

    /// Rewrites the builder's pacxfer configuration: this node's gateway and API, templates
    /// `paths`.
    pub fn configure_with(&self, paths: &[&str]) {
        let paths: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
        let text = format!(
            "cache_dir = {:?}\n\n[gateway]\nurl = {:?}\npaths = [{}]\n{}\n\n[share]\napi = {:?}\n{}\n",
            self.dir.join("cache").display().to_string(),
            self.node.url,
            paths.join(", "),
            self.gateway_extra,
            self.node.api,
            self.share_extra
        );
        std::fs::write(&self.config, text).expect("write config");
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o644))
            .expect("chmod config");
    }

    pub fn configure(&mut self) {
        self.configure_with(&["/ipfs/{cid}"]);
    }

    /// Puts a file on the upstream server at `/<rel>`.
    pub fn upstream_file(&self, rel: &str, bytes: &[u8]) {
        let p = self.dir.join("upstream").join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write upstream file");
    }

    pub fn upstream(&self) -> &Mirror {
        self.upstream.as_ref().expect("upstream is running")
    }

    /// The upstream URL of `/<rel>`.
    pub fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.upstream().url())
    }

    /// Stops the upstream server: nothing listens on its port any more.
    pub fn stop_upstream(&mut self) {
        let port = self.upstream().port;
        drop(self.upstream.take());
        // The server's loop ends at its next connection.
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "upstream still listens"
        );
    }

    /// A package's directory.
    pub fn pkg_dir(&self, pkg: &str) -> PathBuf {
        self.dir.join("pkgs").join(pkg)
    }

    /// Writes a PKGBUILD (and local files beside it) for the builder, and its `.SRCINFO` as
    /// `makepkg --printsrcinfo` writes it.
    pub fn pkgbuild(&self, pkg: &str, text: &str, local: &[(&str, &[u8])]) {
        let dir = self.pkg_dir(pkg);
        std::fs::create_dir_all(&dir).expect("mkdir pkg");
        std::fs::write(dir.join("PKGBUILD"), text).expect("write PKGBUILD");
        for (name, bytes) in local {
            std::fs::write(dir.join(name), bytes).expect("write local source");
        }
        give_to_builder(&dir);
        let r = self.as_builder(&dir, &["makepkg", "--printsrcinfo"], &[]);
        r.success();
        std::fs::write(dir.join(".SRCINFO"), r.stdout()).expect("write .SRCINFO");
        give_to_builder(&dir.join(".SRCINFO"));
    }

    /// Runs `args` as the builder in `cwd`, with a clean environment and `env` added.
    pub fn as_builder(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "builder", "--", "env", "-i"]);
            c
        } else {
            let mut c = Command::new("env");
            c.arg("-i");
            c
        };
        cmd.arg(format!("PATH={PATH}"))
            .arg(format!("HOME={}", self.dir.join("home").display()))
            .arg("LANG=C");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(args).current_dir(cwd);
        run(&mut cmd)
    }

    /// Builds `pkg` with makepkg (`-f --nodeps`), packages into `out/`, and `env` added
    /// (`SRCDEST`, for instance).
    pub fn makepkg(&self, pkg: &str, env: &[(&str, &str)]) -> Run {
        self.makepkg_with(&self.makepkg_conf, pkg, env)
    }

    /// [`Build::makepkg`] with the agent line that does not name `$startdir`: the agent
    /// finds the PKGBUILD from its working directory and its parent alone.
    pub fn makepkg_plain(&self, pkg: &str, env: &[(&str, &str)]) -> Run {
        self.makepkg_with(&self.dir.join("makepkg-plain.conf"), pkg, env)
    }

    fn makepkg_with(&self, conf: &Path, pkg: &str, env: &[(&str, &str)]) -> Run {
        let out = self.dir.join("out").display().to_string();
        let mut all: Vec<(&str, &str)> = vec![("PKGDEST", &out)];
        all.extend_from_slice(env);
        let conf = conf.display().to_string();
        self.as_builder(
            &self.pkg_dir(pkg),
            &[
                "makepkg",
                "--config",
                &conf,
                "-f",
                "--nodeps",
                "--noconfirm",
            ],
            &all,
        )
    }

    /// Removes what a build left in a package's directory and in `srcdest/` (downloaded
    /// sources, src/, pkg/), keeping the PKGBUILD, `.SRCINFO` and the files named in `keep`.
    pub fn clean(&self, pkg: &str, keep: &[&str]) {
        let dir = self.pkg_dir(pkg);
        for e in std::fs::read_dir(&dir).expect("read pkg dir").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "PKGBUILD" || name == ".SRCINFO" || keep.contains(&name.as_str()) {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                // makepkg leaves read-only directories in pkg/.
                let _ = run(Command::new("chmod").args(["-R", "u+w"]).arg(&p));
                std::fs::remove_dir_all(&p).expect("remove build dir");
            } else {
                std::fs::remove_file(&p).expect("remove build file");
            }
        }
        for e in std::fs::read_dir(self.dir.join("srcdest"))
            .expect("read srcdest")
            .flatten()
        {
            std::fs::remove_file(e.path()).expect("remove srcdest file");
        }
    }

    /// The packages built so far.
    pub fn built(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.join("out"))
            .expect("read out")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
