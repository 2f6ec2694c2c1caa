//! contrib/PKGBUILD proven with the tools Arch uses: Debian's `makepkg`, run as an unprivileged
//! user on a source tarball of the working tree, builds the package (prepare, build, check and
//! package, with the crates fetched once under the lock file and the build offline); `pacman
//! -Qlp` lists every file it should hold; real pacman installs it into a throwaway root; the
//! installed binary runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::util::{repo_root, run, TestDir};

/// The unprivileged user makepkg runs as (the fixtures make it too).
const BUILDER: &str = "builder";

fn ensure_builder() {
    if !run(Command::new("id").arg(BUILDER)).output.status.success() {
        run(Command::new("useradd").args(["-m", BUILDER])).success();
    }
}

/// The directory of a Rust toolchain (holding `bin/cargo`) that the builder can run: the one
/// this test runs with, or, when it sits where the builder cannot reach (`/root`), a copy of it
/// in `dir`, the test's own directory (hard links when on the same file system).
fn toolchain_for_builder(dir: &Path) -> PathBuf {
    let found =
        run(Command::new("sh").args(["-c", "rustup which cargo 2>/dev/null || command -v cargo"]));
    let cargo = PathBuf::from(found.success().stdout().trim());
    let cargo = std::fs::canonicalize(&cargo).unwrap_or(cargo);
    let toolchain = cargo
        .parent()
        .and_then(Path::parent)
        .expect("cargo lives in <toolchain>/bin")
        .to_path_buf();
    let usable = |d: &Path| {
        run(Command::new("runuser")
            .args(["-u", BUILDER, "--"])
            .arg(d.join("bin/cargo"))
            .arg("--version"))
        .output
        .status
        .success()
    };
    if usable(&toolchain) {
        return toolchain;
    }
    let copy = dir.join("toolchain");
    // Hard links when on the same file system (seconds), a copy otherwise.
    let linked = run(Command::new("cp").arg("-al").arg(&toolchain).arg(&copy));
    if !linked.output.status.success() {
        let _ = std::fs::remove_dir_all(&copy);
        run(Command::new("cp").arg("-a").arg(&toolchain).arg(&copy)).success();
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(usable(&copy), "the builder cannot run {}", copy.display());
    copy
}

/// A tarball of the working tree's tracked files as `pacxfer-0.1.0/...`.
fn source_tarball(dest: &Path) {
    let script = format!(
        "git ls-files -z | tar --null -T - -czf {} --transform 's,^,pacxfer-0.1.0/,'",
        dest.display()
    );
    run(Command::new("sh")
        .args(["-c", &script])
        .current_dir(repo_root()))
    .success();
}

#[test]
fn makepkg_builds_the_package_and_pacman_installs_it() {
    ensure_builder();
    let dir = TestDir::new("package");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let toolchain = toolchain_for_builder(dir.path());
    let build = dir.join("build");
    std::fs::create_dir_all(&build).expect("mkdir");
    std::fs::copy(repo_root().join("contrib/PKGBUILD"), build.join("PKGBUILD")).expect("copy");
    source_tarball(&build.join("pacxfer-0.1.0.tar.gz"));
    run(Command::new("chown")
        .args(["-R", &format!("{BUILDER}:")])
        .arg(&build))
    .success();
    let path = format!("{}:/usr/bin:/bin", toolchain.join("bin").display());
    let r = run(Command::new("runuser")
        .args(["-u", BUILDER, "--", "env"])
        .arg(format!("PATH={path}"))
        .arg(format!("CARGO_HOME={}", build.join("cargo-home").display()))
        .args(["CARCH=x86_64", "PKGEXT=.pkg.tar.zst", "SRCEXT=.src.tar.gz"])
        .args(["makepkg", "--nodeps", "--noconfirm"])
        .current_dir(&build));
    r.success();
    let pkg = build.join("pacxfer-0.1.0-1-x86_64.pkg.tar.zst");
    assert!(pkg.is_file(), "{}", r.explain("no package"));
    assert!(
        r.stderr().contains("Starting check()") || r.stdout().contains("Starting check()"),
        "{}",
        r.explain("check() did not run")
    );

    let list = run(Command::new("pacman").arg("-Qlpq").arg(&pkg));
    let files = list.success().stdout();
    for want in [
        "/usr/bin/pacxfer",
        "/etc/pacxfer.conf",
        "/usr/share/man/man1/pacxfer.1.gz",
        "/usr/share/man/man5/pacxfer.conf.5.gz",
        "/usr/share/pacxfer/pacxfer-seed.hook",
        "/usr/lib/tmpfiles.d/pacxfer.conf",
        "/usr/lib/systemd/system/pacxfer-prefetch.service",
        "/usr/lib/systemd/system/pacxfer-prefetch.timer",
        "/usr/share/bash-completion/completions/pacxfer",
        "/usr/share/zsh/site-functions/_pacxfer",
        "/usr/share/fish/vendor_completions.d/pacxfer.fish",
        "/usr/share/licenses/pacxfer/LICENSE",
    ] {
        assert!(
            files.lines().any(|l| l == want),
            "{want} missing from the package:\n{files}"
        );
    }
    // The configuration is a backup= file: pacman keeps the user's edits on upgrade.
    let pkginfo = run(Command::new("bsdtar").arg("-xOf").arg(&pkg).arg(".PKGINFO"));
    pkginfo.success().stdout_has("backup = etc/pacxfer.conf");

    // Real pacman installs it into a throwaway root.
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("var/lib/pacman")).expect("mkdir db");
    let conf = dir.write(
        "pacman.conf",
        format!(
            "[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n\
             HookDir = {}/\n",
            dir.join("no-hooks").display()
        ),
    );
    std::fs::create_dir_all(dir.join("no-hooks")).expect("mkdir hooks");
    let installed = run(Command::new("pacman")
        .arg("--config")
        .arg(&conf)
        .arg("--root")
        .arg(&root)
        .arg("--dbpath")
        .arg(root.join("var/lib/pacman"))
        .args(["-U", "--noconfirm", "-dd", "--noscriptlet"])
        .arg(&pkg));
    installed.success();
    let version = run(Command::new(root.join("usr/bin/pacxfer")).arg("--version"));
    version.success().stdout_has("pacxfer 0.1.0");
}
