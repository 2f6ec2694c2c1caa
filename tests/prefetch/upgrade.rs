//! `pacxfer prefetch` against real pacman (6.0): older versions of the fixture packages are
//! installed (local database entries, as pacman's own test suite writes them), the mirror has
//! the new ones; prefetch fills pacman's cache from the mirror and the IPFS node without
//! touching pacman's sync databases, and `pacman -Syu` then downloads no package. Partial
//! failure, packages named on the command line, and refusals.

use crate::harness::fixtures::{Pkg, REPO};
use crate::harness::util::sha256_hex;
use crate::harness::world::World;

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
    let w = World::new("prefetch", true);
    let fx = w.fx;
    old_system(&w);
    // The node holds tiny already.
    w.add_raw(&fx.tiny);
    // pacman's copy of the database is an old one, with a server's time.
    let db = w.dbpath.join("sync").join(format!("{REPO}.db"));
    crate::harness::util::run(
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
    // Which source served what, from the servers' own records: tiny from the node (its one
    // whole answer), the others from the mirror.
    assert_eq!(w.mirror.hits_for(&fx.tiny.filename).len(), 0);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    for pkg in [&fx.big, &fx.plus, &fx.other] {
        assert_eq!(
            w.mirror.hits_for(&pkg.filename).len(),
            1,
            "{}",
            w.mirror.log_text()
        );
    }
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
    let hits = package_hits(&w);
    w.pacxfer(&["prefetch", "tiny"])
        .failure()
        .one_error_line()
        .stderr_has("pacman is running");
    assert_eq!(package_hits(&w), hits, "{}", w.mirror.log_text());
    std::fs::remove_file(&lock).expect("unlock");

    // Another prefetch holds the lock: this one says so and does nothing. The holder keeps
    // it until its standard input is closed (`cat` then ends, and flock with it), however
    // slowly anything here runs.
    let prefetch_lock = w.cache_dir().join("prefetch/lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&prefetch_lock)
        .arg("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("flock");
    let release = |holder: &mut std::process::Child| {
        drop(holder.stdin.take());
        let _ = holder.wait();
    };
    // Until flock holds it (`flock -n` then fails); bounded only to fail with a message.
    let started = std::time::Instant::now();
    while crate::harness::util::run(
        std::process::Command::new("flock")
            .args(["-n"])
            .arg(&prefetch_lock)
            .arg("true"),
    )
    .output
    .status
    .success()
    {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            release(&mut holder);
            panic!("flock never held the lock");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = w.pacxfer(&["prefetch", "tiny"]);
    release(&mut holder);
    r.failure()
        .one_error_line()
        .stderr_has("another pacxfer prefetch is running");
    assert!(!cached(&w, &fx.tiny));
    // Control: with the lock free, the same call fetches it.
    w.pacxfer(&["prefetch", "tiny"])
        .success()
        .stderr_has("prefetched 1 of 1 files");
    assert!(cached(&w, &fx.tiny));
}

/// The systemd units pass `systemd-analyze verify` without a word, and the service's command
/// line is one pacxfer accepts.
#[test]
fn the_prefetch_units_are_valid() {
    let dir = crate::harness::util::TestDir::new("prefetch-units");
    let src = crate::harness::util::repo_root().join("contrib/systemd");
    let bin = crate::harness::util::pacxfer_bin();
    let service = std::fs::read_to_string(src.join("pacxfer-prefetch.service"))
        .expect("read service")
        .replace("/usr/bin/pacxfer", bin.to_str().expect("utf8"));
    std::fs::write(dir.join("pacxfer-prefetch.service"), &service).expect("write");
    std::fs::copy(
        src.join("pacxfer-prefetch.timer"),
        dir.join("pacxfer-prefetch.timer"),
    )
    .expect("copy timer");
    let r = crate::harness::util::run(
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
    crate::harness::util::run(
        std::process::Command::new(program)
            .args(words)
            .arg("--help"),
    )
    .success()
    .stdout_has("Usage: pacxfer prefetch");
}

/// A tmpfs of `size` mounted on `dir` for one test (as root), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mkdir mount point");
        crate::harness::util::run(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
                .arg("tmpfs")
                .arg(dir),
        )
        .success();
        SmallDisk(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        crate::harness::util::run(
            std::process::Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(&self.0),
        )
        .success();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The names in pacman's cache.
fn cache_listing(w: &World) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache(w))
        .expect("ls cache")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An upgrade larger than the CacheDir's free space is refused before a byte is written, as
/// pacman refuses it (its room for the files plus its cushion), and fetched once it fits.
#[test]
fn regression_an_upgrade_larger_than_the_free_space_is_refused_before_any_byte() {
    let w = World::new("prefetch-no-room", false);
    let fx = w.fx;
    old_system(&w);
    // About 3.3 MiB to fetch, on a 2 MiB filesystem.
    let disk = SmallDisk::mount(&cache(&w), "2m");
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .one_error_line()
        .stderr_has(&format!(
            "not enough free space in pacman's CacheDir {}",
            cache(&w).display()
        ))
        .stderr_has("2.0 MiB is free")
        .stderr_has("free some space there (paccache -r, pacman -Sc)");
    assert_eq!(r.code(), Some(1));
    assert!(
        !r.stderr().contains("prefetched"),
        "{}",
        r.explain("summary")
    );
    assert_eq!(cache_listing(&w), Vec::<String>::new());
    assert_eq!(package_hits(&w), 0, "{}", w.mirror.log_text());

    // With room for the files and pacman's cushion (5 % of 4 MiB), it is all fetched.
    disk.resize("4m");
    let r = w.pacxfer(&["prefetch"]);
    r.success()
        .stderr_has("prefetched 4 of 4 files")
        .stderr_has("a complete upgrade is ready: 4 packages");
    for pkg in [&fx.tiny, &fx.big, &fx.plus, &fx.other] {
        assert!(cached(&w, pkg), "{}", r.explain(&pkg.filename));
    }
    assert_eq!(cache_listing(&w).len(), 4, "{:?}", cache_listing(&w));
}

/// A filesystem that fills up during the batch anyway (here: big's `.part` from an earlier run
/// holds wrong bytes, counted as resumable by the check, so its download starts over from byte
/// 0 and needs more than there is) ends in one error line saying so; what the run wrote of the
/// file that failed is removed, no further file is started, and no `.part` is left.
#[test]
fn regression_a_filesystem_filling_up_during_prefetch_leaves_no_part() {
    let w = World::new("prefetch-enospc", false);
    let fx = w.fx;
    old_system(&w);
    let _disk = SmallDisk::mount(&cache(&w), "2m");
    // All but the last 64 KiB of big, as zeros, in a sparse file: it takes no room yet.
    let part = cache(&w).join(format!("{}.part", fx.big.filename));
    std::fs::File::create(&part)
        .and_then(|f| f.set_len(fx.big.size - 64 * 1024))
        .expect("sparse part");
    let r = w.pacxfer(&["prefetch", "--jobs", "1"]);
    r.failure()
        .stderr_has(&format!(
            "{}: not prefetched: cannot write the output file: No space left on device",
            fx.big.filename
        ))
        .stderr_has(&format!("removed {}", part.display()))
        .stderr_has(&format!(
            "pacxfer: error: pacman's CacheDir {}",
            cache(&w).display()
        ))
        .stderr_has(
            "ran out of space: nothing this run wrote of the files that did not arrive is left \
             (an earlier run's partial download is cut back to what it held, or removed once \
             found wrong); free some space there (paccache -r, pacman -Sc) and prefetch again",
        );
    assert_eq!(r.code(), Some(1));
    let err = r.stderr();
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("pacxfer: error:"))
            .count(),
        1,
        "{}",
        r.explain("one error line")
    );
    assert!(!err.contains("a complete upgrade is ready"), "{err}");
    // Whatever is left is a whole package, never a `.part`.
    let left = cache_listing(&w);
    assert!(
        !left.iter().any(|n| n.ends_with(".part")),
        "{left:?}\n{}",
        r.explain("a .part was left")
    );
    assert!(!left.contains(&fx.big.filename), "{left:?}");
    for name in &left {
        let pkg = [&fx.tiny, &fx.plus, &fx.other]
            .into_iter()
            .find(|p| &p.filename == name)
            .unwrap_or_else(|| panic!("{name} left in the cache"));
        assert!(cached(&w, pkg), "{}", r.explain(name));
    }
    // The files after big in pacman's order were not started: at most one request for each
    // package, none after big's failure.
    let order: Vec<String> = w
        .mirror
        .hits_for(".pkg.tar.zst")
        .iter()
        .map(|h| h.path.clone())
        .collect();
    let big_at = order
        .iter()
        .rposition(|p| p.ends_with(&fx.big.filename))
        .expect("big was asked for");
    assert_eq!(big_at, order.len() - 1, "{order:?}");
}

/// A repository whose database cannot be had is named, with why, and never reported as up to
/// date. Without any copy of it pacman cannot plan the upgrade: nothing is claimed, exit 1.
/// With an earlier run's copy, the other repositories' upgrade is fetched with it and the
/// result said to be possibly incomplete, exit 1.
#[test]
fn regression_a_database_that_cannot_be_had_is_not_an_up_to_date_system() {
    let w = World::new("prefetch-no-db", false);
    let fx = w.fx;
    old_system(&w);
    let served = w.dir.join("mirror").join(REPO).join("os/x86_64");
    let db = served.join(format!("{REPO}.db"));
    let db_bytes = std::fs::read(&db).expect("read served db");

    // The only repository's Server answers 404 for its database, and no run fetched it yet.
    std::fs::remove_file(&db).expect("rm served db");
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .stderr_has(&format!(
            "pacxfer: warning: [{REPO}] its database could not be had: cannot get {REPO}.db"
        ))
        .stderr_has(": HTTP 404; no earlier run fetched a copy of it")
        .stderr_has(&format!(
            "pacxfer: error: cannot tell what to prefetch: pacman needs every repository's \
             database to plan the upgrade, and the database of {REPO} could not be had (1 of 1 \
             repositories); prefetch again once the Servers answer"
        ));
    assert_eq!(r.code(), Some(1));
    assert_eq!(r.stderr().lines().count(), 2, "{}", r.explain("two lines"));
    assert!(
        !r.stderr().contains("up to date"),
        "{}",
        r.explain("up to date")
    );
    assert_eq!(package_hits(&w), 0);

    // A second repository (the same packages, listed after testrepo) is fetched once, with
    // one package.
    std::fs::write(&db, &db_bytes).expect("serve db again");
    let second = w.dir.join("mirror/second/os/x86_64");
    std::fs::create_dir_all(&second).expect("mkdir second");
    std::fs::write(second.join("second.db"), &db_bytes).expect("second db");
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let with_second = |server: &str| {
        std::fs::write(
            &w.pacman_conf,
            format!("{conf}\n[second]\nServer = {server}/$repo/os/$arch\n"),
        )
        .expect("write pacman.conf")
    };
    with_second(&w.mirror.url());
    w.pacxfer(&["prefetch", "tiny"])
        .success()
        .stderr_has("prefetched 1 of 1 files");

    // Now its Server answers 500: the copy fetched above is used, testrepo's upgrade is
    // fetched, and the result is said to be incomplete.
    let faults = crate::harness::faultd::FaultServer::start(Vec::new());
    let broken = crate::harness::faultd::Fault::Status(500);
    with_second(&faults.base(broken));
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .stderr_has(
            "pacxfer: warning: [second] its database could not be had: cannot get second.db",
        )
        .stderr_has(": HTTP 500; the copy an earlier run fetched is used, and may be out of date")
        .stderr_has("prefetched 3 of 3 files")
        .stderr_has("1 already in the cache")
        .stderr_has(
            "pacxfer: warning: the upgrade prefetched may be incomplete: the database of second \
             could not be had (1 of 2 repositories) and an earlier copy was used",
        );
    assert_eq!(r.code(), Some(1));
    assert!(faults.hits(broken) > 0, "{}", faults.log_text());
    assert!(
        !r.stderr().contains("complete upgrade is ready"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("up to date"), "{}", r.stderr());
    for pkg in [&fx.tiny, &fx.big, &fx.plus, &fx.other] {
        assert!(cached(&w, pkg), "{}", r.explain(&pkg.filename));
    }

    // Nothing left to fetch, but the same failure: still not "up to date".
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .stderr_has("prefetched 0 of 0 files")
        .stderr_has("4 already in the cache")
        .stderr_has("the upgrade prefetched may be incomplete");
    assert_eq!(r.code(), Some(1));
    assert!(!r.stderr().contains("up to date"), "{}", r.stderr());
    assert!(
        !r.stderr().contains("complete upgrade is ready"),
        "{}",
        r.stderr()
    );

    // Without its copy, pacman cannot plan the upgrade: nothing is claimed.
    std::fs::remove_file(w.cache_dir().join("prefetch/sync/second.db")).expect("rm copy");
    let r = w.pacxfer(&["prefetch"]);
    r.failure()
        .stderr_has("[second] its database could not be had")
        .stderr_has("no earlier run fetched a copy of it")
        .stderr_has(
            "pacxfer: error: cannot tell what to prefetch: pacman needs every repository's \
             database to plan the upgrade, and the database of second could not be had (1 of 2 \
             repositories)",
        );
    assert_eq!(r.code(), Some(1));
}
