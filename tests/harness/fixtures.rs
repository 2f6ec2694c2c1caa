//! Real packages and a real repository, made once with the tools Arch uses and kept in
//! `target/`: `makepkg` builds the packages (as an unprivileged `builder` user when run as
//! root, in a directory below /tmp that user can reach wherever the checkout lies), `gpg`
//! signs one of them, and `repo-add` writes the sync database (embedding the signature that
//! sits next to its package). Each test copies the finished tree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::util::{repo_root, run, sha256_hex, TestDir};

/// The repository name.
pub const REPO: &str = "testrepo";

/// One built package.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub filename: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// The finished repository.
#[derive(Debug)]
pub struct Fixtures {
    /// `<root>/testrepo/os/x86_64/`: the packages, `.sig` files and `testrepo.db`.
    pub root: PathBuf,
    /// ~150 KiB, one raw block; its `.sig` is embedded in the database.
    pub tiny: Pkg,
    /// ~3 MiB of random bytes: more than one block; its `.sig` is only on the mirror.
    pub big: Pkg,
    /// An epoch and a `+` in the file name: `plus+pkg-1:2.0-1-any.pkg.tar.zst`.
    pub plus: Pkg,
    /// Small, and never put in any IPFS node.
    pub other: Pkg,
}

impl Fixtures {
    pub fn repo_dir(&self) -> PathBuf {
        self.root.join(REPO).join("os").join("x86_64")
    }

    pub fn db(&self) -> PathBuf {
        self.repo_dir().join(format!("{REPO}.db"))
    }
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

/// The packages and repository, built on first use (and reused from `target/` after that).
pub fn get() -> &'static Fixtures {
    FIXTURES.get_or_init(build)
}

const BUILD_VERSION: &str = "v2";

fn build() -> Fixtures {
    let base = repo_root()
        .join("target")
        .join("pacxfer-fixtures")
        .join(BUILD_VERSION);
    let root = base.join("mirror");
    let repo_dir = root.join(REPO).join("os").join("x86_64");
    let done = base.join("done");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&repo_dir).expect("mkdir fixtures");
        make_all(&base, &repo_dir);
        std::fs::write(&done, "").expect("mark fixtures done");
    }
    let pkg = |name: &str| find_pkg(&repo_dir, name);
    Fixtures {
        tiny: pkg("tiny"),
        big: pkg("big"),
        plus: pkg("plus+pkg"),
        other: pkg("other"),
        root,
    }
}

fn find_pkg(dir: &Path, name: &str) -> Pkg {
    let prefix = format!("{name}-");
    let entry = std::fs::read_dir(dir)
        .expect("read repo dir")
        .filter_map(Result::ok)
        .find(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            f.starts_with(&prefix)
                && f.ends_with(".pkg.tar.zst")
                && f[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("package {name} missing in {}", dir.display()));
    let path = entry.path();
    Pkg {
        filename: entry.file_name().to_string_lossy().into_owned(),
        sha256: sha256_hex(&path),
        size: std::fs::metadata(&path).expect("stat").len(),
        path,
    }
}

fn pkgbuild(name: &str, version: &str, epoch: Option<&str>, arch: &str, body: &str) -> String {
    let epoch = epoch.map(|e| format!("epoch={e}\n")).unwrap_or_default();
    format!(
        "pkgname='{name}'\npkgver={version}\npkgrel=1\n{epoch}pkgdesc='pacxfer test package {name}'\n\
         arch=({arch})\nlicense=(MIT)\noptions=(!strip !debug)\n\npackage() {{\n{body}\n}}\n"
    )
}

/// Runs makepkg on `pkgbuild` and copies the packages it made into `dest`. It builds in a
/// fresh directory below /tmp ([`TestDir`], opened to all) as the `builder` user when run as
/// root, who owns the build directory and reaches it whatever the checkout's own permissions;
/// the directory is removed afterwards.
pub fn makepkg(pkgbuild: &str, dest: &Path) {
    let place = TestDir::new("makepkg");
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod makepkg dir");
    let dir = place.join("build");
    std::fs::create_dir_all(&dir).expect("mkdir build");
    std::fs::write(dir.join("PKGBUILD"), pkgbuild).expect("write PKGBUILD");
    let is_root = run(Command::new("id").arg("-u")).stdout().trim() == "0";
    let mut cmd = if is_root {
        run(Command::new("chown").args(["-R", "builder:"]).arg(&dir)).success();
        let mut c = Command::new("runuser");
        c.args(["-u", "builder", "--", "env", "-i"]);
        c
    } else {
        let mut c = Command::new("env");
        c.arg("-i");
        c
    };
    // Nothing of the caller's environment (PKGDEST, BUILDDIR, PACKAGER, MAKEFLAGS, a HOME
    // with its own makepkg.conf) reaches makepkg.
    cmd.arg(format!("PATH={}", crate::harness::util::PATH))
        .arg(format!("HOME={}", dir.display()))
        .arg("LANG=C")
        .arg("PKGEXT=.pkg.tar.zst")
        .arg("CARCH=x86_64")
        .arg(format!("PKGDEST={}", dir.display()))
        .args(["makepkg", "--nodeps", "--noconfirm", "--force"])
        .current_dir(&dir);
    run(&mut cmd).success();
    for entry in std::fs::read_dir(&dir).expect("read build dir").flatten() {
        let f = entry.file_name().to_string_lossy().into_owned();
        if f.ends_with(".pkg.tar.zst") {
            std::fs::copy(entry.path(), dest.join(&f)).expect("copy package");
        }
    }
}

fn make_all(base: &Path, repo_dir: &Path) {
    let is_root = run(Command::new("id").arg("-u")).stdout().trim() == "0";
    if is_root {
        // makepkg refuses to run as root.
        let _ = run(Command::new("useradd").args(["-m", "builder"]));
    }
    let pkgbuilds = [
        pkgbuild(
            "tiny",
            "1.0",
            None,
            "any",
            "  install -d \"$pkgdir/usr/share/tiny\"\n  echo 'hello from tiny' > \"$pkgdir/usr/share/tiny/hello.txt\"\n  head -c 120000 /dev/urandom | base64 > \"$pkgdir/usr/share/tiny/data.txt\"",
        ),
        pkgbuild(
            "big",
            "1.0",
            None,
            "x86_64",
            "  install -d \"$pkgdir/usr/share/big\"\n  head -c 3145728 /dev/urandom > \"$pkgdir/usr/share/big/blob\"",
        ),
        pkgbuild(
            "plus+pkg",
            "2.0",
            Some("1"),
            "any",
            "  install -d \"$pkgdir/usr/share/plus\"\n  echo 'plus' > \"$pkgdir/usr/share/plus/file\"",
        ),
        pkgbuild(
            "other",
            "1.0",
            None,
            "any",
            "  install -d \"$pkgdir/usr/share/other\"\n  head -c 50000 /dev/urandom | base64 > \"$pkgdir/usr/share/other/data.txt\"",
        ),
    ];
    for text in &pkgbuilds {
        makepkg(text, repo_dir);
    }

    // A throwaway signing key; `tiny` is signed before repo-add so its signature is embedded.
    let gnupg = base.join("gnupg");
    std::fs::create_dir_all(&gnupg).expect("mkdir gnupg");
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--yes"])
            .args(args);
        run(&mut c).success();
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "pacxfer test <test@pacxfer.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let tiny = find_pkg(repo_dir, "tiny");
    let sign = |pkg: &Pkg| {
        let sig = format!("{}.sig", pkg.path.display());
        gpg(&[
            "--detach-sign",
            "--no-armor",
            "-o",
            &sig,
            &pkg.path.display().to_string(),
        ]);
    };
    sign(&tiny);

    let mut add = Command::new("repo-add");
    add.arg(format!("{REPO}.db.tar.gz")).current_dir(repo_dir);
    for entry in std::fs::read_dir(repo_dir).expect("read repo").flatten() {
        let f = entry.file_name().to_string_lossy().into_owned();
        if f.ends_with(".pkg.tar.zst") {
            add.arg(f);
        }
    }
    run(&mut add).success();
    // Signed after repo-add: this signature is on the mirror only.
    sign(&find_pkg(repo_dir, "big"));
    let _ = run(Command::new("gpgconf")
        .arg("--homedir")
        .arg(&gnupg)
        .args(["--kill", "gpg-agent"]));
}

/// Copies the repository tree into `dest` (symlinks followed), for a test's own mirror.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read dir").flatten() {
        let from = entry.path();
        let to = dest.join(entry.file_name());
        if std::fs::metadata(&from).expect("stat").is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}
