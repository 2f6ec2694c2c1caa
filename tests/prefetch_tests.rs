//! `pacxfer prefetch` against real pacman (6.0): older versions of the fixture packages are
//! installed (local database entries, as pacman's own test suite writes them), the mirror has
//! the new ones; prefetch fills pacman's cache from the mirror and the IPFS node without
//! touching pacman's sync databases, and `pacman -Syu` then downloads no package. Partial
//! failure, packages named on the command line, and refusals.

use crate::fixtures::{Pkg, REPO};
use crate::util::sha256_hex;
use crate::world::World;

/// Records `name` `version` as installed in the world's local database.
pub fn installed(w: &World, name: &str, version: &str) {
    let local = w.dbpath.join("local");
    std::fs::create_dir_all(&local).expect("mkdir local");
    std::fs::write(local.join("ALPM_DB_VERSION"), "9\n").expect("db version");
    let dir = local.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir).expect("mkdir entry");
    std::fs::write(
        dir.join("desc"),
        format!(
            "%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%ARCH%\nany\n\n%INSTALLDATE%\n1700000000\n\n\
             %SIZE%\n1\n\n%REASON%\n0\n\n"
        ),
    )
    .expect("desc");
    std::fs::write(dir.join("files"), "%FILES%\n\n").expect("files");
}

/// All four fixture packages installed at an older version.
pub fn old_system(w: &World) {
    installed(w, "tiny", "0.9-1");
    installed(w, "big", "0.9-1");
    installed(w, "plus+pkg", "1:1.0-1");
    installed(w, "other", "0.9-1");
}

fn cache(w: &World) -> std::path::PathBuf {
    w.dir.join("cache")
}

fn cached(w: &World, pkg: &Pkg) -> bool {
    let path = cache(w).join(&pkg.filename);
    path.is_file() && sha256_hex(&path) == pkg.sha256
}

fn package_hits(w: &World) -> usize {
    w.mirror.hits_for(".pkg.tar.zst").len()
}

/// The sync database's bytes and modification time.
fn sync_state(w: &World) -> (Vec<u8>, std::time::SystemTime) {
    let db = w.dbpath.join("sync").join(format!("{REPO}.db"));
    (
        std::fs::read(&db).expect("read db"),
        std::fs::metadata(&db)
            .and_then(|m| m.modified())
            .expect("mtime"),
    )
}

#[test]
fn prefetch_fills_the_cache_and_pacman_then_downloads_nothing() {
    e2e!();
    let w = World::new("prefetch", true);
    let fx = w.fx;
    old_system(&w);
    // The node holds tiny already.
    w.add_raw(&fx.tiny);
    // pacman's copy of the database is an old one, with a server's time.
    let db = w.dbpath.join("sync").join(format!("{REPO}.db"));
    crate::util::run(
        std::process::Command::new("touch")
            .args(["-d", "2020-01-01 00:00:00"])
            .arg(&db),
    )
    .success();
    let before = sync_state(&w);
    let r = w.pacxfer(&["prefetch", "--jobs", "3"]);
    r.success()
        .stderr_has("prefetched 4 of 4 files")
        .stderr_has("1 from this node")
        .stderr_has("3 from mirror")
        .stderr_has("a complete upgrade is ready: 4 packages");
    for pkg in [&fx.tiny, &fx.big, &fx.plus, &fx.other] {
        assert!(cached(&w, pkg), "{}", r.explain(&pkg.filename));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(cache(&w).join(&pkg.filename))
                .expect("stat")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o644, "{}", pkg.filename);
    }
    // SigLevel = Never: no signature is asked for.
    assert!(!cache(&w).join(format!("{}.sig", fx.big.filename)).exists());
    assert!(
        w.mirror.hits_for(".pkg.tar.zst.sig").is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert!(!std::fs::read_dir(cache(&w))
        .expect("ls cache")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".part")));
    assert_eq!(w.mirror.hits_for(&fx.tiny.filename).len(), 0);
    // pacman's own databases were not touched.
    assert!(sync_state(&w) == before, "the sync database changed");

    // Nothing left to do: a second run fetches nothing.
    let hits = package_hits(&w);
    w.pacxfer(&["prefetch"])
        .success()
        .stderr_has("prefetched 0 of 0 files")
        .stderr_has("4 already in the cache");
    assert_eq!(package_hits(&w), hits);

    // pacman -Syu installs from the cache: no package is downloaded, and the database
    // prefetch already fetched is not downloaded again (asked against that copy: 304).
    let db_hits = w.mirror.hits_for(&format!("{REPO}.db")).len();
    let r = w.pacman(&["-Syu", "--noconfirm"]);
    r.success();
    assert_eq!(package_hits(&w), hits, "{}", r.explain("pacman -Syu"));
    let asked = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(asked.len(), db_hits + 1, "{}", w.mirror.log_text());
    assert_eq!(asked.last().map(|h| (h.status, h.bytes)), Some((304, 0)));
    assert!(w.dir.join("root/usr/share/tiny/hello.txt").is_file());
}

#[test]
fn a_partial_prefetch_keeps_what_arrived_and_says_what_did_not() {
    e2e!();
    let w = World::new("prefetch-partial", false);
    let fx = w.fx;
    old_system(&w);
    let gone = w.dir.join("mirror").join(REPO).join("os/x86_64");
    std::fs::remove_file(gone.join(&fx.other.filename)).expect("rm other");
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .stderr_has("prefetched 3 of 4 files")
        .stderr_has(&format!(
            "not prefetched (1): {}; pacman will download them itself",
            fx.other.filename
        ));
    for pkg in [&fx.tiny, &fx.big, &fx.plus] {
        assert!(cached(&w, pkg), "{}", r.explain(&pkg.filename));
    }
    assert!(!cache(&w).join(&fx.other.filename).exists());
    assert!(!r.stderr().contains("a complete upgrade is ready"));
}

#[test]
fn packages_named_are_fetched_alone_and_pacman_running_is_refused() {
    e2e!();
    let w = World::new("prefetch-named", false);
    let fx = w.fx;
    // No local database: a wrong DBPath, not "everything is new".
    w.pacxfer(&["prefetch", "big"])
        .failure()
        .one_error_line()
        .stderr_has("pacman's local database")
        .stderr_has("is missing");
    // Nothing installed yet, and pacman checks package signatures.
    std::fs::create_dir_all(w.dbpath.join("local")).expect("mkdir local");
    std::fs::write(w.dbpath.join("local/ALPM_DB_VERSION"), "9\n").expect("db version");
    let text = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    std::fs::write(
        &w.pacman_conf,
        text.replace(
            "SigLevel = Never",
            "SigLevel = PackageRequired DatabaseNever",
        ),
    )
    .expect("write pacman.conf");
    // Named, it is fetched with nothing else, and its signature (not in the database) from
    // the mirror.
    w.pacxfer(&["prefetch", "big"])
        .success()
        .stderr_has("prefetched 1 of 1 files");
    assert!(cached(&w, &fx.big));
    assert!(!cached(&w, &fx.tiny));
    assert_eq!(
        std::fs::read(cache(&w).join(format!("{}.sig", fx.big.filename))).expect("big.sig"),
        std::fs::read(format!("{}.sig", fx.big.path.display())).expect("fixture sig")
    );

    // A package no repository has: pacman's own words, one error line.
    w.pacxfer(&["prefetch", "no-such-package"])
        .failure()
        .one_error_line()
        .stderr_has("pacman -Sp failed")
        .stderr_has("no-such-package");

    // pacman holds its lock: nothing is done.
    let lock = w.dbpath.join("db.lck");
    std::fs::write(&lock, b"").expect("lock");
    w.pacxfer(&["prefetch"])
        .failure()
        .one_error_line()
        .stderr_has("pacman is running");
    std::fs::remove_file(&lock).expect("unlock");

    // Another prefetch holds the lock: this one says so and does nothing.
    let prefetch_lock = w.cache_dir().join("prefetch/lock");
    let mut holder = std::process::Command::new("flock")
        // -o: the lock stays with flock itself, so killing it frees the lock.
        .arg("-o")
        .arg(&prefetch_lock)
        .args(["sleep", "5"])
        .spawn()
        .expect("flock");
    // Until flock holds it (`flock -n` then fails).
    let started = std::time::Instant::now();
    while crate::util::run(
        std::process::Command::new("flock")
            .args(["-n"])
            .arg(&prefetch_lock)
            .arg("true"),
    )
    .output
    .status
    .success()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "flock never held the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = w.pacxfer(&["prefetch", "tiny"]);
    let _ = holder.kill();
    let _ = holder.wait();
    r.failure()
        .one_error_line()
        .stderr_has("another pacxfer prefetch is running");
    assert!(!cached(&w, &fx.tiny));
}

/// The systemd units pass `systemd-analyze verify` without a word, and the service's command
/// line is one pacxfer accepts.
#[test]
fn the_prefetch_units_are_valid() {
    let dir = crate::util::TestDir::new("prefetch-units");
    let src = crate::util::repo_root().join("contrib/systemd");
    let bin = crate::util::pacxfer_bin();
    let service = std::fs::read_to_string(src.join("pacxfer-prefetch.service"))
        .expect("read service")
        .replace("/usr/bin/pacxfer", bin.to_str().expect("utf8"));
    std::fs::write(dir.join("pacxfer-prefetch.service"), &service).expect("write");
    std::fs::copy(
        src.join("pacxfer-prefetch.timer"),
        dir.join("pacxfer-prefetch.timer"),
    )
    .expect("copy timer");
    let r = crate::util::run(
        std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.join("pacxfer-prefetch.service"))
            .arg(dir.join("pacxfer-prefetch.timer")),
    );
    r.success();
    assert_eq!(r.stderr().trim(), "", "{}", r.explain("systemd-analyze"));
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        !exec.contains("pacman"),
        "the service must never run pacman itself"
    );
    let mut words = exec.split_whitespace();
    let program = words.next().expect("program");
    crate::util::run(
        std::process::Command::new(program)
            .args(words)
            .arg("--help"),
    )
    .success()
    .stdout_has("Usage: pacxfer prefetch");
}
