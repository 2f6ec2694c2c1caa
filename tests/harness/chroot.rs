//! Real pacman 7.0: Debian trixie's `pacman-package-manager`, in the minimal trixie root that
//! `contrib/deps.sh` makes once with debootstrap (`.pacman7/root`, with the `alpm` user that
//! `DownloadUser = alpm` switches to).
//!
//! Each call runs in a private mount namespace (`unshare --mount --propagation private`): the
//! host directories a test names (its World, the pacxfer binary) are bind-mounted into the root
//! at the same absolute paths, with /proc and /dev, and pacman runs under `chroot`. Nothing is
//! mounted outside that namespace, so nothing outlives the call. The root shares the host's
//! network namespace: the test mirror and the Kubo nodes on 127.0.0.1 are reachable from it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::util::{repo_root, run_within, Run};

/// What `contrib/deps.sh` writes once the root is complete.
const STAMP: &str = "root.done";

/// Mounts what it is given, then runs the rest of its arguments under chroot:
/// `sh -c SCRIPT sh ROOT PATH... -- PROGRAM ARGS...`. Run inside a fresh mount namespace.
const SCRIPT: &str = r#"set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
while [ "$1" != -- ]; do
    if [ -d "$1" ]; then
        mkdir -p "$root$1"
    else
        mkdir -p "$root$(dirname "$1")"
        [ -e "$root$1" ] || : >"$root$1"
    fi
    mount --bind "$1" "$root$1"
    shift
done
shift
exec chroot "$root" "$@"
"#;

/// The pacman 7 root.
pub struct Pacman7 {
    pub root: PathBuf,
}

impl Pacman7 {
    /// The root `contrib/deps.sh` made; a clear failure when it is missing or unfinished.
    pub fn get() -> Pacman7 {
        let dir = repo_root().join(".pacman7");
        let root = dir.join("root");
        assert!(
            dir.join(STAMP).exists() && root.join("usr/bin/pacman").exists(),
            "no pacman 7 root at {}: run ./contrib/deps.sh, which makes it with debootstrap \
            ",
            root.display()
        );
        let euid = std::fs::metadata("/proc/self").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        assert_eq!(
            euid.ok(),
            Some(0),
            "the pacman 7 tests run pacman under chroot in a mount namespace: run them as root"
        );
        Pacman7 { root }
    }

    /// The numeric uid and gid of `user` inside the root, from its /etc/passwd.
    pub fn user(&self, user: &str) -> (u32, u32) {
        let passwd = std::fs::read_to_string(self.root.join("etc/passwd")).expect("read passwd");
        passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.first() != Some(&user) {
                    return None;
                }
                Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
            })
            .unwrap_or_else(|| panic!("no user {user} in {}/etc/passwd", self.root.display()))
    }

    /// Runs `argv` inside the root as root, with `visible` (host directories or files) mounted
    /// at the same paths, a clean environment and stdin closed; at most `limit`.
    pub fn run<S: AsRef<OsStr>>(&self, visible: &[&Path], argv: &[S], limit: Duration) -> Run {
        let mut cmd = Command::new("unshare");
        crate::harness::util::daemon_env(&mut cmd, Path::new("/root"))
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(SCRIPT)
            .arg("sh")
            .arg(&self.root);
        for p in visible {
            assert!(p.is_absolute(), "{} is not absolute", p.display());
            cmd.arg(p);
        }
        cmd.arg("--")
            .args([
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
            ])
            .args(argv);
        let (run, _took) = run_within(&mut cmd, limit);
        run
    }

    /// `pacman VERSION` as the root has it, e.g. "7.0.0".
    pub fn version(&self) -> String {
        let r = self.run(&[], &["pacman", "--version"], Duration::from_secs(30));
        r.success();
        r.stdout()
            .split("Pacman v")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    }
}
