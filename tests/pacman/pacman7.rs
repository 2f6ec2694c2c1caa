//! Real pacman 7.0 (Debian trixie's `pacman-package-manager`, run in the root that
//! `contrib/deps.sh` makes, see tests/harness/chroot.rs) with pacxfer as its XferCommand, as Arch
//! users run it: `DownloadUser = alpm` with pacman's default sandbox, against the test mirror
//! and a real Kubo node on the host's loopback. Which source served each file is read from the
//! mirror's log and the node's own response counts; the bytes from pacman's cache.
//!
//! What pacman 7.0 was seen to do here:
//! - it runs the XferCommand as `alpm` (no supplementary groups, HOME=/root) with no landlock
//!   and no seccomp (NoNewPrivs 0, Seccomp 0; it could write the root's /tmp): the sandbox
//!   applies to its built-in downloader, which restricts itself with landlock ABI 7 on this
//!   kernel, so `DisableSandbox` is not needed;
//! - `%o` is `<sync or cache dir>/download-XXXXXX/<file>.part`, a directory it makes for the
//!   download (alpm, 0700), also the working directory; a `.part` already in CacheDir is moved
//!   into it; the finished file is moved into place owned by root;
//! - the directory, and a `.part` in it, lasts from one Server's call to the next within a run,
//!   and is removed when the run's download ends, failed or not;
//! - it asks for `<file>.sig` after every package when its SigLevel checks package signatures
//!   (Optional too), and for `<repo>.db.sig` after each database unless DatabaseNever; a failed
//!   call (a 404 `.sig`) costs a 2 s sleep, then pacman goes on when the signature is optional.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::chroot::Pacman7;
use crate::harness::faultd::{Fault, FaultServer};
use crate::harness::fixtures::{Fixtures, Pkg, REPO};
use crate::harness::util::{pacxfer_bin, run, sha256_hex, Run};
use crate::harness::world::World;

/// How long one pacman call may take (a few 2 s sleeps at most in these tests).
const LIMIT: Duration = Duration::from_secs(180);

/// The SigLevel of Arch's shipped pacman.conf.
const ARCH_SIGLEVEL: &str = "Required DatabaseOptional";

/// A World whose pacman is pacman 7 in the chroot.
pub(crate) struct World7 {
    pub(crate) w: World,
    pub(crate) p7: Pacman7,
}

impl std::ops::Deref for World7 {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl std::ops::DerefMut for World7 {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.w
    }
}

impl World7 {
    /// A World with a pacman.conf for pacman 7 (`DownloadUser = alpm`, `siglevel`, the mirror
    /// as the only Server) and a keyring that trusts the fixtures' signing key.
    pub(crate) fn new(name: &str, with_node: bool, siglevel: &str) -> World7 {
        let p7 = Pacman7::get();
        let w = World::new(name, with_node);
        // The download user must walk into the World (temporary directories are 0700).
        std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod world");
        let w7 = World7 { w, p7 };
        w7.make_keyring();
        let server = format!("{}/$repo/os/$arch", w7.mirror.url());
        w7.write_conf(siglevel, &[server.as_str()], true);
        w7
    }

    /// Rewrites the World's pacman.conf (the file pacxfer's config names too).
    fn write_conf(&self, siglevel: &str, servers: &[&str], download_user: bool) {
        let xfer = format!(
            "{} --config {}",
            pacxfer_bin().display(),
            self.config.display()
        );
        self.write_conf_with(siglevel, servers, download_user, &xfer);
    }

    /// Like `write_conf`, with `xfer` as the XferCommand (followed by `%u %o`).
    pub(crate) fn write_conf_with(
        &self,
        siglevel: &str,
        servers: &[&str],
        download_user: bool,
        xfer: &str,
    ) {
        let servers: String = servers.iter().map(|s| format!("Server = {s}\n")).collect();
        let text = format!(
            "[options]\nRootDir = {root}\nDBPath = {db}/\nCacheDir = {cache}/\nLogFile = {log}\n\
             GPGDir = {gpg}/\nHookDir = {hooks}/\nArchitecture = x86_64\nSigLevel = {siglevel}\n\
             {user}XferCommand = {xfer} %u %o\n\n[{REPO}]\n{servers}",
            root = self.dir.join("root").display(),
            db = self.dbpath.display(),
            cache = self.dir.join("cache").display(),
            log = self.dir.join("pacman.log").display(),
            gpg = self.dir.join("gnupg").display(),
            hooks = self.dir.join("hooks").display(),
            user = if download_user {
                "DownloadUser = alpm\n"
            } else {
                ""
            },
        );
        std::fs::write(&self.pacman_conf, text).expect("write pacman.conf");
    }

    /// GPGDir: the fixtures' public key with ultimate trust, as `pacman-key --add` and
    /// `--lsign-key` would leave it; `pubring.gpg` first, as `pacman-key --init` makes it.
    fn make_keyring(&self) {
        let gnupg = self.dir.join("gnupg");
        let _ = std::fs::remove_dir_all(&gnupg);
        std::fs::create_dir_all(&gnupg).expect("mkdir gnupg");
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::write(gnupg.join("pubring.gpg"), "").expect("touch pubring.gpg");
        let fixture_home = fixture_gnupg(self.fx);
        let gpg = |home: &Path, args: &[&str]| {
            let mut c = Command::new("gpg");
            c.arg("--homedir")
                .arg(home)
                .args(["--batch", "--no-autostart"])
                .args(args);
            let r = run(&mut c);
            r.success();
            r
        };
        let key = self.dir.join("fixture-key.gpg");
        let key_s = key.to_str().expect("utf8");
        gpg(&fixture_home, &["--yes", "--output", key_s, "--export"]);
        let fpr = gpg(&fixture_home, &["--with-colons", "--list-keys"])
            .stdout()
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("fixture key fingerprint");
        gpg(&gnupg, &["--import", key_s]);
        let trust = self.dir.join("ownertrust.txt");
        std::fs::write(&trust, format!("{fpr}:6:\n")).expect("write ownertrust");
        gpg(
            &gnupg,
            &["--import-ownertrust", trust.to_str().expect("utf8")],
        );
    }

    /// `pacman --config <World's pacman.conf> ARGS...` inside the pacman 7 root.
    pub(crate) fn pacman(&self, args: &[&str]) -> Run {
        let dirs = self.dir.path().parent().expect("the tests' directories");
        let bin = pacxfer_bin();
        let mut argv = vec!["pacman", "--config"];
        let conf = self.pacman_conf.to_str().expect("utf8").to_string();
        argv.push(&conf);
        argv.extend_from_slice(args);
        self.p7.run(&[dirs, &bin], &argv, LIMIT)
    }

    fn cache(&self, name: &str) -> PathBuf {
        self.dir.join("cache").join(name)
    }

    /// The download user's uid and gid inside the root.
    pub(crate) fn alpm(&self) -> (u32, u32) {
        self.p7.user("alpm")
    }

    /// pacxfer's cache directory made as contrib/tmpfiles.d makes /var/cache/pacxfer: the
    /// download user's own (0700). Its uid and gid.
    pub(crate) fn cache_of_download_user(&self) -> (u32, u32) {
        let (uid, gid) = self.alpm();
        std::fs::create_dir_all(self.cache_dir()).expect("mkdir cache");
        std::os::unix::fs::chown(self.cache_dir(), Some(uid), Some(gid)).expect("chown cache");
        std::fs::set_permissions(self.cache_dir(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod cache");
        (uid, gid)
    }

    /// `download-*` directories pacman 7 left behind in CacheDir or the sync directory.
    fn leftover_download_dirs(&self) -> Vec<PathBuf> {
        [self.dir.join("cache"), self.dbpath.join("sync")]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("download-"))
            })
            .collect()
    }

    /// Asserts the cache holds exactly `expected`'s bytes under `name`.
    #[track_caller]
    pub(crate) fn assert_cached(&self, name: &str, expected: &Path, r: &Run) {
        let cached = self.cache(name);
        assert!(
            cached.exists() && sha256_hex(&cached) == sha256_hex(expected),
            "{}",
            r.explain(&format!(
                "{} does not hold the bytes of {}\nmirror log:\n{}",
                cached.display(),
                expected.display(),
                self.mirror.log_text()
            ))
        );
    }

    /// Statuses of the mirror's answers for paths ending with `suffix`.
    fn statuses(&self, suffix: &str) -> Vec<u16> {
        self.mirror
            .hits_for(suffix)
            .iter()
            .map(|h| h.status)
            .collect()
    }
}

/// The fixtures' gpg home (it holds the key that signed `tiny` and `big`).
fn fixture_gnupg(fx: &Fixtures) -> PathBuf {
    fx.root.parent().expect("fixtures base").join("gnupg")
}

/// `tiny` 1.1-1, signed with the fixtures' key: the newer package `-Syu` finds. Built once
/// with makepkg (`fixtures::makepkg`, as the fixtures' `builder` user when root) and reused
/// from target/.
fn newer_tiny(fx: &'static Fixtures) -> &'static Pkg {
    static NEWER: OnceLock<Pkg> = OnceLock::new();
    NEWER.get_or_init(|| {
        let base = fx.root.parent().expect("fixtures base").join("pacman7-v1");
        let out = base.join("out");
        let done = base.join("done");
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(&out).expect("mkdir out");
            // fixtures::get() made the builder user.
            crate::harness::fixtures::makepkg(
                "pkgname='tiny'\npkgver=1.1\npkgrel=1\npkgdesc='pacxfer test package tiny, newer'\n\
                 arch=(any)\nlicense=(MIT)\noptions=(!strip !debug)\n\npackage() {\n  \
                 install -d \"$pkgdir/usr/share/tiny\"\n  \
                 echo 'hello from tiny 1.1' > \"$pkgdir/usr/share/tiny/hello.txt\"\n}\n",
                &out,
            );
            let file = "tiny-1.1-1-any.pkg.tar.zst";
            let home = fixture_gnupg(fx);
            let mut sign = Command::new("gpg");
            sign.arg("--homedir")
                .arg(&home)
                .args(["--batch", "--yes", "--detach-sign", "--no-armor", "-o"])
                .arg(out.join(format!("{file}.sig")))
                .arg(out.join(file));
            run(&mut sign).success();
            let _ = run(Command::new("gpgconf")
                .arg("--homedir")
                .arg(&home)
                .args(["--kill", "gpg-agent"]));
            std::fs::write(&done, "").expect("mark done");
        }
        let path = out.join("tiny-1.1-1-any.pkg.tar.zst");
        Pkg {
            filename: "tiny-1.1-1-any.pkg.tar.zst".into(),
            sha256: sha256_hex(&path),
            size: std::fs::metadata(&path).expect("stat").len(),
            path,
        }
    })
}

#[test]
fn the_root_has_pacman_7_and_the_download_user() {
    let p7 = Pacman7::get();
    let version = p7.version();
    assert!(version.starts_with("7."), "pacman {version}");
    let (uid, _) = p7.user("alpm");
    assert_ne!(uid, 0);
}

#[test]
fn pacman7_syncs_downloads_and_installs_as_the_download_user() {
    let mut w = World7::new("pacman7-e2e", true, ARCH_SIGLEVEL);
    let (tiny, big) = (w.fx.tiny.clone(), w.fx.big.clone());
    w.ipfs_holds_tiny_and_big();

    // -Sy: the database from the mirror; its .sig asked too (DatabaseOptional), 404, skipped.
    let r = w.pacman(&["-Sy"]);
    r.success();
    assert_eq!(w.statuses("testrepo.db"), [200], "{}", w.mirror.log_text());
    assert_eq!(
        w.statuses("testrepo.db.sig"),
        [404],
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(
        sha256_hex(&w.dbpath.join("sync/testrepo.db")),
        sha256_hex(&w.fx.db()),
        "{}",
        r.explain("synced db")
    );
    // pacxfer ran as alpm: root would have made its cache directory; alpm may not.
    assert!(
        !w.cache_dir().exists(),
        "{}",
        r.explain("pacxfer's cache directory was made: pacxfer did not run as alpm")
    );

    // -Sw: both packages and both signatures, with a package signature check on each.
    let r = w.pacman(&["-Sw", "--noconfirm", "tiny", "big"]);
    r.success();
    for pkg in [&tiny, &big] {
        w.assert_cached(&pkg.filename, &pkg.path, &r);
        let sig = format!("{}.sig", pkg.filename);
        w.assert_cached(&sig, &w.fx.repo_dir().join(&sig), &r);
    }
    // tiny and big from IPFS, tiny's .sig from the database (no request), big's from the mirror.
    assert!(
        w.mirror.hits_for(&tiny.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert!(
        w.mirror.hits_for(&big.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert!(
        w.mirror
            .hits_for(&format!("{}.sig", tiny.filename))
            .is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(
        w.statuses(&format!("{}.sig", big.filename)),
        [200],
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(w.node().answered(200), 2, "{:?}", w.node().responses());
    let err = r.stderr();
    for (file, source) in [
        (tiny.filename.clone(), "from ipfs"),
        (big.filename.clone(), "from ipfs"),
        (format!("{}.sig", tiny.filename), "from db-signature"),
        (format!("{}.sig", big.filename), "from mirror"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{file} ")) && l.contains(source)),
            "{}",
            r.explain(&format!("no source line for {file} {source}"))
        );
    }
    assert!(
        w.leftover_download_dirs().is_empty(),
        "{:?}",
        w.leftover_download_dirs()
    );

    // -S: from the cache, nothing asked again; installed in RootDir.
    let before = (w.mirror.hits().len(), w.node().responses());
    let r = w.pacman(&["-S", "--noconfirm", "tiny", "big"]);
    r.success();
    assert_eq!(
        (w.mirror.hits().len(), w.node().responses()),
        before,
        "{}",
        r.explain("-S downloaded again")
    );
    let root = w.dir.join("root");
    let hello = std::fs::read_to_string(root.join("usr/share/tiny/hello.txt")).unwrap_or_default();
    assert_eq!(
        hello,
        "hello from tiny\n",
        "{}",
        r.explain("installed file")
    );
    let blob = std::fs::metadata(root.join("usr/share/big/blob"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(blob, 3 * 1024 * 1024, "{}", r.explain("installed blob"));
    let q = w.pacman(&["-Q"]);
    q.success().stdout_has("tiny 1.0-1").stdout_has("big 1.0-1");
}

#[test]
fn pacman7_upgrades_with_syu_when_the_repo_gets_a_newer_package() {
    let w = World7::new("pacman7-syu", true, ARCH_SIGLEVEL);
    let newer = newer_tiny(w.fx).clone();
    // As contrib/tmpfiles.d makes /var/cache/pacxfer: pacxfer's cache belongs to the download user.
    let (uid, _) = w.cache_of_download_user();

    let r = w.pacman(&["-S", "--noconfirm", "tiny"]);
    r.success();
    w.assert_cached(&w.fx.tiny.filename, &w.fx.tiny.path, &r);
    let kept: Vec<_> = std::fs::read_dir(w.cache_dir())
        .expect("list cache")
        .flatten()
        .map(|e| (e.file_name(), e.metadata().expect("stat").uid()))
        .collect();
    assert!(
        !kept.is_empty() && kept.iter().all(|(_, owner)| *owner == uid),
        "pacxfer as alpm kept {kept:?}{}",
        r.explain("")
    );

    // The repository gets tiny 1.1 (signature embedded by repo-add), and the node has it.
    let repo = w.dir.join("mirror").join(REPO).join("os").join("x86_64");
    std::fs::copy(&newer.path, repo.join(&newer.filename)).expect("copy newer");
    std::fs::copy(
        newer.path.with_file_name(format!("{}.sig", newer.filename)),
        repo.join(format!("{}.sig", newer.filename)),
    )
    .expect("copy newer sig");
    let mut add = Command::new("repo-add");
    add.arg(format!("{REPO}.db.tar.gz"))
        .arg(&newer.filename)
        .current_dir(&repo);
    run(&mut add).success();
    w.add_raw(&newer);
    let db_hits = w.mirror.hits_for("testrepo.db").len();

    let r = w.pacman(&["-Syu", "--noconfirm"]);
    r.success();
    assert_eq!(
        w.mirror.hits_for("testrepo.db").len(),
        db_hits + 1,
        "{}",
        w.mirror.log_text()
    );
    // The new database's entry was found (the index noticed the renamed database): tiny 1.1
    // came from IPFS, its signature from the database.
    w.assert_cached(&newer.filename, &newer.path, &r);
    assert!(
        w.mirror.hits_for(&newer.filename).is_empty(),
        "{}",
        r.explain(&w.mirror.log_text())
    );
    assert!(
        w.mirror
            .hits_for(&format!("{}.sig", newer.filename))
            .is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    let hello =
        std::fs::read_to_string(w.dir.join("root/usr/share/tiny/hello.txt")).unwrap_or_default();
    assert_eq!(hello, "hello from tiny 1.1\n", "{}", r.explain("upgraded"));
    w.pacman(&["-Q", "tiny"]).success().stdout_has("tiny 1.1-1");
    assert!(
        w.leftover_download_dirs().is_empty(),
        "{:?}",
        w.leftover_download_dirs()
    );
}

#[test]
fn pacman7_installs_an_epoch_name_and_goes_on_without_signatures_nobody_has() {
    // PackageOptional: pacman 7 asks for every package's .sig and accepts none.
    let w = World7::new("pacman7-epoch", true, "Optional");
    // No `dbpath` in pacxfer's config: it asks pacman 7's own pacman-conf, as the download
    // user, for the DBPath (`%o` is in a temporary directory that does not tell it).
    let conf = std::fs::read_to_string(&w.config).expect("read config");
    let conf: String = conf
        .lines()
        .filter(|l| !l.starts_with("dbpath"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&w.config, conf).expect("write config");
    let (plus, other) = (w.fx.plus.clone(), w.fx.other.clone());
    assert!(plus.filename.contains("-1:2.0-1"), "{}", plus.filename);
    w.add_raw(&plus);

    let r = w.pacman(&["-S", "--noconfirm", "plus+pkg", "other"]);
    r.success();
    w.assert_cached(&plus.filename, &plus.path, &r);
    w.assert_cached(&other.filename, &other.path, &r);
    // plus+pkg-1:2.0-1 from IPFS (so found in the database at the DBPath pacman-conf gave),
    // other from the mirror; neither .sig exists anywhere: one
    // request each, 404, and pacman goes on.
    assert!(
        w.mirror.hits_for(&plus.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    assert_eq!(
        w.statuses(&other.filename),
        [200],
        "{}",
        w.mirror.log_text()
    );
    for pkg in [&plus, &other] {
        assert_eq!(
            w.statuses(&format!("{}.sig", pkg.filename)),
            [404],
            "{}",
            r.explain(&w.mirror.log_text())
        );
        assert!(!w.cache(&format!("{}.sig", pkg.filename)).exists());
    }
    let file = std::fs::read_to_string(w.dir.join("root/usr/share/plus/file")).unwrap_or_default();
    assert_eq!(file, "plus\n", "{}", r.explain("installed plus"));
    w.pacman(&["-Q", "plus+pkg"])
        .success()
        .stdout_has("plus+pkg 1:2.0-1");
}

#[test]
fn pacman7_resumes_a_part_file_left_in_the_cache() {
    let w = World7::new("pacman7-resume", false, ARCH_SIGLEVEL);
    let big = w.fx.big.clone();
    let bytes = std::fs::read(&big.path).expect("read");
    let third = bytes.len() / 3;
    // As pacman 6 or pacman's own downloader leaves it: pacman 7 moves it into its download
    // directory for the call.
    std::fs::write(w.cache(&format!("{}.part", big.filename)), &bytes[..third])
        .expect("write part");

    let r = w.pacman(&["-Sw", "--noconfirm", "big"]);
    r.success();
    w.assert_cached(&big.filename, &big.path, &r);
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(
        hits[0].range.as_deref(),
        Some(format!("bytes={third}-").as_str()),
        "{}",
        r.explain("range")
    );
    assert!(!w.cache(&format!("{}.part", big.filename)).exists());
}

/// `pacman -Sw big` once per entry of `runs`, each with those Servers, all played by one fault
/// server that holds `big` (SigLevel Never: it would answer a `.sig` with big's bytes too).
/// Returns each run and the fault server's log: `(fault, Range start)` per request.
fn fetch_big_through_faults(
    w: &World7,
    pacman7: bool,
    runs: &[&[Fault]],
) -> (Vec<Run>, Vec<(String, Option<u64>)>) {
    let faults = FaultServer::start(std::fs::read(&w.fx.big.path).expect("read big"));
    let mut done = Vec::new();
    for servers in runs {
        let servers: Vec<String> = servers.iter().map(|f| faults.base(*f)).collect();
        let servers: Vec<&str> = servers.iter().map(String::as_str).collect();
        w.write_conf("Never", &servers, pacman7);
        done.push(if pacman7 {
            w.pacman(&["-Sw", "--noconfirm", "big"])
        } else {
            w.w.pacman(&["-Sw", "--noconfirm", "big"])
        });
    }
    let log = faults
        .log()
        .into_iter()
        .map(|h| {
            let fault = h
                .path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            (fault.to_string(), h.from)
        })
        .collect();
    (done, log)
}

/// What a resumed download of `big` looks like in the fault server's log.
fn cut_then_resumed(half: u64) -> Vec<(String, Option<u64>)> {
    vec![
        ("trunc-lying".to_string(), None),
        ("good".to_string(), Some(half)),
    ]
}

#[test]
fn pacman7_resumes_on_the_next_server_a_download_the_first_cut_off() {
    // One pacman call, two Servers: pacman 7 keeps its download directory, and the .part
    // in it, from one Server's call to the next.
    let w = World7::new("pacman7-next-server", false, "Never");
    let big = w.fx.big.clone();
    let (runs, log) = fetch_big_through_faults(&w, true, &[&[Fault::TruncLying, Fault::Good]]);
    runs[0].success();
    w.assert_cached(&big.filename, &big.path, &runs[0]);
    assert_eq!(
        log,
        cut_then_resumed(big.size / 2),
        "{}",
        runs[0].explain("requests")
    );
    assert!(w.leftover_download_dirs().is_empty());
}

#[test]
fn pacman6_resumes_in_the_next_run_a_download_cut_off_in_a_failed_one() {
    // The contrast for the next test: pacman 6.0 (the host's) leaves the .part in CacheDir
    // when every Server failed, and pacxfer resumes it in the next run.
    let w = World7::new("pacman6-next-run", false, "Never");
    let big = w.fx.big.clone();
    let (runs, log) = fetch_big_through_faults(&w, false, &[&[Fault::TruncLying], &[Fault::Good]]);
    runs[0].failure();
    runs[1].success();
    w.assert_cached(&big.filename, &big.path, &runs[1]);
    assert_eq!(
        log,
        cut_then_resumed(big.size / 2),
        "{}",
        runs[1].explain("requests")
    );
}

/// pacman 7 removes its download directory, `.part` and all, after a failed run; pacxfer
/// keeps the bytes of a failed call in its own cache place and the next run resumes there.
#[test]
fn pacman7_resumes_in_the_next_run_a_download_cut_off_in_a_failed_one() {
    let w = World7::new("pacman7-next-run", false, "Never");
    let big = w.fx.big.clone();
    // As contrib/tmpfiles.d makes /var/cache/pacxfer: the download user's own place.
    w.cache_of_download_user();
    let (runs, log) = fetch_big_through_faults(&w, true, &[&[Fault::TruncLying], &[Fault::Good]]);
    runs[0].failure();
    // What pacman 7 leaves after the failed run: no download directory, no .part.
    assert!(
        w.leftover_download_dirs().is_empty(),
        "{:?}",
        w.leftover_download_dirs()
    );
    runs[1].success();
    w.assert_cached(&big.filename, &big.path, &runs[1]);
    assert_eq!(
        log,
        cut_then_resumed(big.size / 2),
        "{}",
        runs[1].explain("the second run should resume where the first was cut off")
    );
}

/// `-Sy` twice, `-Syy`, then `-Sy` once the mirror's database changed, by pacman 7 in the
/// root or by the host's pacman 6.0: each database (and, for pacman 7, its signature) is
/// downloaded in full once, asked for with `If-Modified-Since` from the copy in sync/ after
/// that and answered 304 with no body, in full again on pacman 6's `-Syy` (pacman removed the
/// database first), and in full once it changed.
fn sync_asks_only_for_changes(pacman7: bool) {
    use crate::pacman::unchanged::{mirror_db, mtime, set_mtime, PAST};
    let (name, siglevel) = if pacman7 {
        ("pacman7-unchanged", ARCH_SIGLEVEL)
    } else {
        ("pacman6-unchanged", "Never")
    };
    let w = World7::new(name, false, siglevel);
    let server = format!("{}/$repo/os/$arch", w.mirror.url());
    w.write_conf(siglevel, &[server.as_str()], pacman7);
    let db = mirror_db(&w);
    let db_sig = db.with_file_name(format!("{REPO}.db.sig"));
    let sync_db = w.dbpath.join(format!("sync/{REPO}.db"));
    if pacman7 {
        let home = fixture_gnupg(w.fx);
        let mut sign = Command::new("gpg");
        sign.arg("--homedir")
            .arg(&home)
            .args(["--batch", "--yes", "--detach-sign", "--no-armor", "-o"])
            .arg(&db_sig)
            .arg(&db);
        run(&mut sign).success();
        set_mtime(&db_sig, PAST);
    }
    set_mtime(&db, PAST);
    std::fs::remove_file(&sync_db).expect("rm db");
    let pacman = |args: &[&str]| {
        if pacman7 {
            w.pacman(args)
        } else {
            w.w.pacman(args)
        }
    };
    // What the mirror answered for `file` in the last call: (status, If-Modified-Since sent,
    // bytes).
    let seen = std::cell::Cell::new(0usize);
    let answers = |file: &str| -> Vec<(u16, bool, u64)> {
        w.mirror.hits()[seen.get()..]
            .iter()
            .filter(|h| h.path.ends_with(&format!("/{file}")))
            .map(|h| (h.status, h.if_modified_since.is_some(), h.bytes))
            .collect()
    };
    let size = std::fs::metadata(&db).expect("stat").len();
    let sig_size = std::fs::metadata(&db_sig).map(|m| m.len()).unwrap_or(0);
    let db_name = format!("{REPO}.db");
    let sig_name = format!("{REPO}.db.sig");

    // First sync: in full, and the copy gets the mirror's time.
    let r = pacman(&["-Sy"]);
    r.success();
    assert_eq!(
        answers(&db_name),
        [(200, false, size)],
        "{}",
        w.mirror.log_text()
    );
    if pacman7 {
        assert_eq!(
            answers(&sig_name),
            [(200, false, sig_size)],
            "{}",
            w.mirror.log_text()
        );
    }
    assert_eq!(sha256_hex(&sync_db), sha256_hex(&db), "{}", r.explain("db"));
    assert_eq!(mtime(&sync_db), PAST as i64, "{}", r.explain("db mtime"));
    seen.set(w.mirror.hits().len());

    // Again: one conditional request each, 304, no bytes; the copy stays as it was.
    let r = pacman(&["-Sy"]);
    r.success()
        .stderr_has(&format!("{db_name} "))
        .stderr_has("unchanged");
    assert_eq!(
        answers(&db_name),
        [(304, true, 0)],
        "{}",
        w.mirror.log_text()
    );
    if pacman7 {
        assert_eq!(
            answers(&sig_name),
            [(304, true, 0)],
            "{}",
            w.mirror.log_text()
        );
    }
    assert_eq!(sha256_hex(&sync_db), sha256_hex(&db), "{}", r.explain("db"));
    assert_eq!(mtime(&sync_db), PAST as i64, "{}", r.explain("db mtime"));
    // pacman reads the database it was handed.
    let si = pacman(&["-Si", "tiny"]);
    si.success().stdout_has("tiny");
    seen.set(w.mirror.hits().len());

    // -Syy: pacman 6 removed the database first, so it is asked for with no condition.
    // pacman 7 leaves it in sync/ (it downloads into its own directory) and gives the
    // XferCommand no sign of the force: asked with the condition, the mirror says the copy is
    // its file.
    let r = pacman(&["-Syy"]);
    r.success();
    let expected = if pacman7 {
        (304, true, 0)
    } else {
        (200, false, size)
    };
    assert_eq!(answers(&db_name), [expected], "{}", w.mirror.log_text());
    assert_eq!(sha256_hex(&sync_db), sha256_hex(&db), "{}", r.explain("db"));
    seen.set(w.mirror.hits().len());

    // The mirror's database changes: downloaded in full, with its new time.
    set_mtime(&db, PAST + 86_400);
    let r = pacman(&["-Sy"]);
    r.success();
    assert_eq!(
        answers(&db_name),
        [(200, true, size)],
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(
        mtime(&sync_db),
        (PAST + 86_400) as i64,
        "{}",
        r.explain("db mtime")
    );
}

#[test]
fn pacman7_sync_asks_only_for_databases_that_changed() {
    sync_asks_only_for_changes(true);
}

#[test]
fn pacman6_sync_asks_only_for_databases_that_changed() {
    sync_asks_only_for_changes(false);
}
