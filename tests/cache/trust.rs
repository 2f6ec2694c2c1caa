//! A hostile local user against root's pacxfer: caches owned or writable by someone else
//! (`nobody`), forged indexes and pacman-conf answers, links and FIFOs planted at every name
//! pacxfer reads or writes, a user's `$XDG_CACHE_HOME`, credentials in a private Include,
//! control characters in URLs, concurrent writers, hostile database archives, and database
//! entries whose file name does not repeat their directory. Each test is named after the
//! defect it pins, and where a forgery is involved it first shows that the forgery would work
//! if it were trusted, so that the refusal is what the test measures.

use std::io::Write;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pacxfer::cache::Places;
use pacxfer::db::entry::Entry;
use pacxfer::db::index::{self, Identity};
use sha2::{Digest, Sha256};

use crate::harness::fixtures::{Pkg, REPO};
use crate::harness::httpd::Mirror;
use crate::harness::util::{pacxfer, run, run_within, sha256_hex, Run};
use crate::harness::world::World;

/// The user the hostile files belong to.
const NOBODY: u32 = 65534;

fn chown_nobody(path: &Path) {
    chown(path, Some(NOBODY), Some(NOBODY)).expect("chown nobody");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn db_path(w: &World) -> PathBuf {
    w.dbpath.join("sync").join(format!("{REPO}.db"))
}

/// The name of the index of the world's database.
fn index_name(w: &World) -> String {
    Places::name_for_file(REPO, &db_path(w), "idx")
}

/// An entry for package `name` in file `filename` that claims `bytes` as its contents.
fn entry_claiming(name: &str, filename: &str, bytes: &[u8]) -> Entry {
    Entry {
        repo: REPO.to_string(),
        filename: filename.to_string(),
        name: name.to_string(),
        version: "1.0-1".to_string(),
        arch: "any".to_string(),
        sha256: Some(Sha256::digest(bytes).into()),
        csize: Some(bytes.len() as u64),
        pgpsig: None,
        cid: None,
    }
}

/// Writes an index for the world's database (as it is now) holding `entries`, in `dir`.
fn forge_index(w: &World, dir: &Path, entries: &[Entry]) -> PathBuf {
    let meta = std::fs::metadata(db_path(w)).expect("stat db");
    let bytes = index::encode(entries, &[], &Identity::of(&meta));
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(index_name(w));
    std::fs::write(&path, bytes).expect("write forged index");
    chmod(&path, 0o600);
    path
}

/// The package name in a file name `<name>-<ver>-<rel>-<arch>.pkg.tar.zst`.
fn pkg_name(pkg: &Pkg) -> String {
    let parts: Vec<&str> = pkg.filename.rsplitn(4, '-').collect();
    parts[3].to_string()
}

/// Replaces `pkg` on the world's mirror with `bytes`.
fn replace_on_mirror(w: &World, pkg: &Pkg, bytes: &[u8]) {
    let path = w
        .dir
        .join("mirror")
        .join(REPO)
        .join("os/x86_64")
        .join(&pkg.filename);
    std::fs::write(path, bytes).expect("replace package on the mirror");
}

/// An index pacxfer would believe (the control: root's own file in root's own directory
/// steers the download to bytes the database does not list) is not read when its directory
/// belongs to nobody, when the file belongs to nobody, or when anyone may write it: the
/// database decides each time. A directory it does not trust is never written; in its own
/// directory pacxfer replaces the untrusted file with an index of its own.
#[test]
fn index_written_by_another_user_is_not_trusted() {
    let w = World::new("sec-index-owner", false);
    let other = w.fx.other.clone();
    let evil = b"not the package the database lists".repeat(100);
    replace_on_mirror(&w, &other, &evil);
    let forged = vec![entry_claiming(&pkg_name(&other), &other.filename, &evil)];
    let cache = w.cache_dir();

    // Trusted (root's own file in root's own directory), the forgery would be believed.
    forge_index(&w, &cache, &forged);
    let out = w.out("control.part");
    let r = w.xfer_verbose(&w.url(&other.filename), &out);
    r.success().stderr_has("answered from its index");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        evil,
        "control: forgery used"
    );

    // The directory belongs to nobody: nothing in it is read or written.
    std::fs::remove_dir_all(&cache).expect("clean");
    let index = forge_index(&w, &cache, &forged);
    let forged_bytes = std::fs::read(&index).expect("read forgery");
    chown_nobody(&cache);
    chown_nobody(&index);
    let out = w.out("owned-dir.part");
    let r = w.xfer_verbose(&w.url(&other.filename), &out);
    r.failure()
        .stderr_has("wrong bytes")
        .stderr_has(&format!("{} not used: owned by nobody", cache.display()));
    assert_ne!(std::fs::read(&out).unwrap_or_default(), evil);
    assert_eq!(
        std::fs::read_dir(&cache).expect("list").count(),
        1,
        "pacxfer wrote into a directory of nobody's"
    );
    assert_eq!(std::fs::read(&index).expect("read"), forged_bytes);

    // Root's directory, but the file belongs to nobody, or anyone may write it.
    chown(&cache, Some(0), Some(0)).expect("chown root");
    chmod(&cache, 0o700);
    for (case, why) in [
        ("owned-file", "owned by nobody"),
        ("loose-file", "writable by others"),
    ] {
        let index = forge_index(&w, &cache, &forged);
        if case == "owned-file" {
            chown_nobody(&index);
        } else {
            chmod(&index, 0o666);
        }
        let out = w.out(&format!("{case}.part"));
        let r = w.xfer_verbose(&w.url(&other.filename), &out);
        r.failure()
            .stderr_has("wrong bytes")
            .stderr_has("indexed into");
        assert_ne!(std::fs::read(&out).unwrap_or_default(), evil, "{case}");
        // In its own directory, pacxfer put an index of its own in the forgery's place.
        let meta = std::fs::metadata(&index).expect("stat index");
        assert!(
            meta.uid() == 0 && meta.permissions().mode() & 0o777 == 0o600,
            "{case} ({why}): the index was not rebuilt"
        );
        assert_ne!(std::fs::read(&index).expect("read"), forged_bytes, "{case}");
        w.pacxfer(&["-v", "lookup", &other.filename])
            .success()
            .stderr_has("answered from its index")
            .stdout_has(&other.sha256);
    }
}

/// A trusted index (root's own) is read, and a plain file name in it is where `fetch` writes
/// (the control); a file name that is a path (`../../escaped`, or absolute) is refused like
/// one in the database: the index is rebuilt from the database and nothing is written
/// outside `-o`.
#[test]
fn forged_filename_in_a_trusted_index_cannot_steer_a_write() {
    let w = World::new("sec-index-filename", false);
    let tiny = w.fx.tiny.clone();
    let bytes = std::fs::read(&tiny.path).expect("read tiny");
    let fetch_dir = w.dir.join("fetch/a/b");
    std::fs::create_dir_all(&fetch_dir).expect("mkdir");
    let escape = w.dir.join("fetch/escaped");
    let fetch = || {
        w.pacxfer(&[
            "-v",
            "fetch",
            &pkg_name(&tiny),
            "-o",
            fetch_dir.to_str().expect("utf8"),
        ])
    };

    // Control: a plain name from a trusted index is used.
    let steered = "steered-1.0-1-any.pkg.tar.zst";
    std::fs::write(
        w.dir
            .join("mirror")
            .join(REPO)
            .join("os/x86_64")
            .join(steered),
        &bytes,
    )
    .expect("put the steered name on the mirror");
    forge_index(
        &w,
        &w.cache_dir(),
        &[entry_claiming(&pkg_name(&tiny), steered, &bytes)],
    );
    let r = fetch();
    r.success().stderr_has("answered from its index");
    assert_eq!(sha256_hex(&fetch_dir.join(steered)), tiny.sha256, "control");
    std::fs::remove_file(fetch_dir.join(steered)).expect("rm");

    for forged_name in ["../../escaped".to_string(), escape.display().to_string()] {
        let forged = vec![entry_claiming(&pkg_name(&tiny), &forged_name, &bytes)];
        forge_index(&w, &w.cache_dir(), &forged);
        let r = fetch();
        r.success().stderr_has("indexed into");
        assert!(!escape.exists(), "{}", r.explain("wrote outside -o"));
        let mut written: Vec<PathBuf> = Vec::new();
        let mut todo = vec![w.dir.join("fetch")];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).expect("list").flatten() {
                if e.file_type().expect("type").is_dir() {
                    todo.push(e.path());
                } else {
                    written.push(e.path());
                }
            }
        }
        assert_eq!(
            written,
            vec![fetch_dir.join(&tiny.filename)],
            "{}",
            r.explain(&format!("{forged_name}: what fetch wrote"))
        );
        assert_eq!(sha256_hex(&fetch_dir.join(&tiny.filename)), tiny.sha256);
        std::fs::remove_file(fetch_dir.join(&tiny.filename)).expect("rm");
    }
}

/// Rewrites a remembered-answers file so that `from` reads `to`, with a valid checksum.
fn forge_answers(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read answers");
    let body_end = text
        .trim_end_matches('\n')
        .rfind("\ncrc\t")
        .expect("crc line")
        + 1;
    let body = text[..body_end].replace(from, to);
    let crc = crc32fast::hash(body.as_bytes());
    std::fs::write(path, format!("{body}crc\t{crc}\n")).expect("write forged answers");
    chmod(path, 0o600);
}

fn answers_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("list cache")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pacman-conf-"))
        })
        .expect("remembered pacman-conf answers")
}

#[test]
fn forged_pacman_conf_answers_from_another_user_are_not_used() {
    let w = World::new("sec-answers", false);
    let tiny = w.fx.tiny.clone();
    let evil_root = w.dir.join("evil");
    crate::harness::fixtures::copy_tree(&w.fx.root, &evil_root);
    let evil = Mirror::serve(&evil_root);
    let fetch = |name: &str| {
        let out = w.dir.join(name);
        w.pacxfer(&["fetch", &tiny.filename, "-o", out.to_str().expect("utf8")])
    };
    fetch("first").success();
    let answers = answers_file(&w.cache_dir());
    forge_answers(&answers, &w.mirror.url(), &evil.url());

    // Trusted, the forged Server line would send fetch to the other server.
    fetch("control").success();
    assert!(
        !evil.hits_for(&tiny.filename).is_empty(),
        "control: the forged answer was not used"
    );
    let evil_hits = evil.hits().len();
    let real_hits = w.mirror.hits_for(&tiny.filename).len();

    // Owned by nobody: asked of pacman-conf again.
    chown_nobody(&answers);
    fetch("after").success();
    assert_eq!(evil.hits().len(), evil_hits, "the other server was asked");
    assert_eq!(w.mirror.hits_for(&tiny.filename).len(), real_hits + 1);
}

/// Root's home directory, from the password database as pacxfer reads it.
fn home_of_root() -> PathBuf {
    std::fs::read_to_string("/etc/passwd")
        .expect("read /etc/passwd")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2] == "0").then(|| PathBuf::from(f[5]))
        })
        .expect("root in /etc/passwd")
}

/// With no `cache_dir`, root keeps its caches in `/var/cache/pacxfer` (else its own
/// `~/.cache`), never under a user's `$XDG_CACHE_HOME` or `$HOME`, even when that place
/// would pass the ownership rule. Run in a private mount namespace whose `/var/cache` and
/// root's home are the test's own directories, so the machine's are neither read nor written.
/// The control: the same forged index in root's own place is believed.
#[test]
fn root_never_reads_a_users_xdg_cache() {
    let w = World::new("sec-xdg", false);
    let other = w.fx.other.clone();
    let evil = b"from the user's cache".repeat(50);
    replace_on_mirror(&w, &other, &evil);
    // A config with no cache_dir: the default places.
    let config = w.dir.join("default-places.conf");
    std::fs::write(
        &config,
        format!(
            "dbpath = {:?}\npacman_conf = {:?}\n[gateway]\nenabled = false\n[share]\napi = \
             \"http://127.0.0.1:{}\"\n",
            w.dbpath.display().to_string(),
            w.pacman_conf.display().to_string(),
            crate::harness::util::dead_port()
        ),
    )
    .expect("write config");
    let var_cache = w.dir.join("var-cache");
    let root_home = w.dir.join("root-home");
    for d in [&var_cache, &root_home] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    chmod(&var_cache, 0o755);
    chmod(&root_home, 0o700);
    let system_place = var_cache.join("pacxfer");
    let home = w.dir.join("home-of-a-user");
    let xdg = home.join(".cache");
    let user_place = xdg.join("pacxfer");
    let forged = vec![entry_claiming(&pkg_name(&other), &other.filename, &evil)];
    let call = |out: &Path| {
        let root_home_path = home_of_root();
        let mut cmd = crate::harness::util::pacxfer_with_mounts(&[
            crate::harness::util::Mount::Bind(&var_cache, Path::new("/var/cache")),
            crate::harness::util::Mount::Bind(&root_home, &root_home_path),
        ]);
        // The default places are what this test is about: no cache from the harness.
        crate::harness::util::default_places(&mut cmd)
            .env("XDG_CACHE_HOME", &xdg)
            .env("HOME", &home)
            .arg("-v")
            .arg("--config")
            .arg(&config)
            .arg(w.url(&other.filename))
            .arg(out);
        run(&mut cmd)
    };

    // Control: in root's own place (/var/cache/pacxfer), the forgery is believed.
    forge_index(&w, &system_place, &forged);
    chmod(&system_place, 0o700);
    let out = w.out("control.part");
    let r = call(&out);
    r.success().stderr_has("answered from its index");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        evil,
        "control: forgery used"
    );
    std::fs::remove_dir_all(&system_place).expect("rm");

    // The user's place, owned by root as the ownership rule wants, or by the user: never read.
    let index_in_user_place = forge_index(&w, &user_place, &forged);
    let forged_bytes = std::fs::read(&index_in_user_place).expect("read");
    for owner in ["root", "nobody"] {
        if owner == "nobody" {
            for p in [&home, &xdg, &user_place, &index_in_user_place] {
                chown_nobody(p);
            }
        }
        let out = w.out(&format!("{owner}.part"));
        let r = call(&out);
        r.failure().stderr_has("wrong bytes").stderr_has(&format!(
            "indexed into /var/cache/pacxfer/{}",
            index_name(&w)
        ));
        // Root wrote its index into its own place (the test's /var/cache), nothing into the
        // user's, and its home's ~/.cache was not needed.
        assert!(
            system_place.join(index_name(&w)).is_file(),
            "{}",
            r.explain("no index in root's place")
        );
        let names: Vec<String> = std::fs::read_dir(&user_place)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![index_name(&w)],
            "root wrote into the user's cache"
        );
        assert_eq!(
            std::fs::read(&index_in_user_place).expect("read"),
            forged_bytes
        );
        std::fs::remove_dir_all(&system_place).expect("rm");
    }
}

/// Links planted at the names pacxfer reads and writes in its cache are never followed: an
/// index reached through a link is not read, though the same file in its place is believed
/// (the control), and neither the index nor the breaker state is written through a link:
/// each is replaced by a file of pacxfer's own, and what the links led to is unchanged.
#[test]
fn planted_links_in_the_cache_are_never_followed() {
    let mut w = World::new("sec-links", false);
    let dead = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&dead, &["/ipfs/{cid}"], "");
    let other = w.fx.other.clone();
    let evil = b"bytes an index reached through a link would accept".repeat(40);
    replace_on_mirror(&w, &other, &evil);
    let forged = vec![entry_claiming(&pkg_name(&other), &other.filename, &evil)];
    let cache = w.cache_dir();
    let index = cache.join(index_name(&w));
    let breaker = cache.join(Places::name_for("gateway", dead.as_bytes(), "state"));

    // Control: the forged index itself, in the cache, is believed.
    forge_index(&w, &cache, &forged);
    let out = w.out("control.part");
    w.xfer_verbose(&w.url(&other.filename), &out)
        .success()
        .stderr_has("answered from its index");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        evil,
        "control: forgery used"
    );
    std::fs::remove_dir_all(&cache).expect("clean");

    // The same forgery in a trusted directory beside the cache, reached through links at
    // the index's name; the breaker state's name leads to a file of root's.
    let elsewhere = forge_index(&w, &w.dir.join("elsewhere"), &forged);
    let forged_bytes = std::fs::read(&elsewhere).expect("read");
    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"root's file").expect("write victim");
    std::fs::create_dir_all(&cache).expect("mkdir");
    symlink(&elsewhere, &index).expect("plant index link");
    symlink(&victim, &breaker).expect("plant breaker link");
    let out = w.out("links.part");
    let r = w.xfer_verbose(&w.url(&other.filename), &out);
    r.failure()
        .stderr_has("wrong bytes")
        .stderr_has("indexed into");
    assert_ne!(std::fs::read(&out).unwrap_or_default(), evil);
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");
    assert_eq!(std::fs::read(&elsewhere).expect("read"), forged_bytes);
    // The index and the breaker state replaced their links with files of their own.
    for path in [&index, &breaker] {
        let meta = std::fs::symlink_metadata(path).expect("stat");
        assert!(meta.is_file(), "{} is still a link", path.display());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

/// Asserts that a command run with [`run_within`] ended by itself with an exit status: not
/// killed at the limit (which only makes a hang fail fast), nor by a signal of its own (an
/// allocation that failed aborts).
#[track_caller]
fn ended_on_its_own(r: &Run) {
    assert!(
        r.code().is_some(),
        "{}",
        r.explain("ended by a signal: killed at the limit, or aborted")
    );
}

/// FIFOs at the index's and the breaker state's names are opened without waiting for a
/// writer (without `O_NONBLOCK` the first call never ends). Neither a link to /dev/zero nor a
/// /dev/zero device node at the index's name fills memory: with the address space capped
/// below what reading /dev/zero up to the index's 512 MiB limit takes, the download still
/// succeeds. (That half holds by three layers at once: links are not followed, only regular
/// files are read, and the index reader checks a fixed-size header before reading more.)
#[test]
fn fifos_and_devices_at_cache_names_neither_hang_nor_fill_memory() {
    let mut w = World::new("sec-fifos", false);
    let dead = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&dead, &["/ipfs/{cid}"], "");
    let cache = w.cache_dir();
    std::fs::create_dir_all(&cache).expect("mkdir");
    let fifo = |name: &str| {
        run(Command::new("mkfifo").arg(cache.join(name))).success();
    };
    fifo(&index_name(&w));
    fifo(&Places::name_for("gateway", dead.as_bytes(), "state"));
    let tiny = w.fx.tiny.clone();
    let out = w.out("fifo.part");
    let mut cmd = w.pacxfer_cmd(&[&w.url(&tiny.filename), out.to_str().expect("utf8")]);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(120));
    ended_on_its_own(&r);
    r.success();
    w.assert_same(&out, &tiny.path, &r);

    // A link to /dev/zero at the index's name is a link, and never read.
    let capped = |out: &Path| {
        let mut cmd = crate::harness::util::pacxfer_via(&["prlimit", "--as=400000000", "--"]);
        cmd.arg("--config")
            .arg(&w.config)
            .arg(w.url(&tiny.filename))
            .arg(out);
        run_within(&mut cmd, Duration::from_secs(120)).0
    };
    // Control: under the same cap, a download with no index at all succeeds.
    std::fs::remove_file(cache.join(index_name(&w))).expect("rm");
    let r = capped(&w.out("capped.part"));
    r.success();
    std::fs::remove_file(cache.join(index_name(&w))).expect("rm");
    symlink("/dev/zero", cache.join(index_name(&w))).expect("symlink");
    let out = w.out("zero.part");
    let r = capped(&out);
    ended_on_its_own(&r);
    r.success();
    w.assert_same(&out, &tiny.path, &r);

    // The device itself (a node like /dev/zero's, not a link) at the index's name: not a
    // regular file, never read.
    std::fs::remove_file(cache.join(index_name(&w))).expect("rm");
    run(Command::new("mknod")
        .arg(cache.join(index_name(&w)))
        .args(["c", "1", "5"]))
    .success();
    let out = w.out("device.part");
    let r = capped(&out);
    ended_on_its_own(&r);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
}

/// OUTPUT that is a link, or a `.part` of `fetch` that is a link, is refused and what the
/// link leads to is untouched, whether the download would succeed or fail; a FIFO at OUTPUT
/// is an error, not a wait. The same download to a plain OUTPUT succeeds (the control).
#[test]
fn symlinked_or_special_output_is_refused() {
    let w = World::new("sec-output", false);
    let tiny = w.fx.tiny.clone();
    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"root's file").expect("write victim");
    let out = w.out("tiny.part");
    symlink(&victim, &out).expect("plant");
    w.xfer(&w.url(&tiny.filename), &out)
        .failure()
        .one_error_line()
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");
    // A failing download must not empty the target either.
    let missing = w.url("no-such-file-1-1-any.pkg.tar.zst");
    w.xfer(&missing, &out).failure().one_error_line();
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");

    // `fetch` writes `<dest>.part`: a link there is refused the same way.
    let dest = w.dir.join("fetched");
    std::fs::create_dir_all(&dest).expect("mkdir");
    let part = dest.join(format!("{}.part", tiny.filename));
    symlink(&victim, &part).expect("plant");
    w.pacxfer(&["fetch", &tiny.filename, "-o", dest.to_str().expect("utf8")])
        .failure()
        .one_error_line()
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");

    // A FIFO at OUTPUT: an error, not a hang.
    let fifo = w.out("fifo.part");
    run(Command::new("mkfifo").arg(&fifo)).success();
    let mut cmd = w.pacxfer_cmd(&[&w.url(&tiny.filename), fifo.to_str().expect("utf8")]);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(120));
    ended_on_its_own(&r);
    r.failure()
        .one_error_line()
        .stderr_has("not a regular file");

    // Control: plain files at the same names are written.
    for p in [&out, &part] {
        std::fs::remove_file(p).expect("rm link");
    }
    let r = w.xfer(&w.url(&tiny.filename), &out);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    w.pacxfer(&["fetch", &tiny.filename, "-o", dest.to_str().expect("utf8")])
        .success();
    assert_eq!(sha256_hex(&dest.join(&tiny.filename)), tiny.sha256);
}

/// Four pacxfer writing one OUTPUT at once: while the first holds it (its download held
/// part-way by the mirror), each other one says it waits for it; once the first is done, all
/// succeed, the file is whole, and the mirror served it once: the others judged what the
/// first left instead of writing beside it.
#[test]
fn concurrent_writers_on_one_output_never_interleave() {
    let mut w = World::new("sec-concurrent", false);
    // The first download stays in progress for as long as the test needs: the mirror holds it.
    w.mirror_stall = "10m";
    let gateway = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let big = w.fx.big.clone();
    let hold = w.mirror.hold(&big.filename, 1 << 20);
    let url = w.url(&big.filename);
    let out = w.out("big.part");
    let start =
        || crate::harness::util::spawn(&mut w.pacxfer_cmd(&[&url, out.to_str().expect("utf8")]));
    let first = start();
    hold.wait_held(1);
    // The first holds the lock now: it takes it before it asks any source.
    let r = run(Command::new("flock").arg("-n").arg(&out).arg("true"));
    assert!(
        !r.output.status.success(),
        "{}",
        r.explain("OUTPUT is not locked")
    );
    let mut others: Vec<_> = (0..3).map(|_| start()).collect();
    for o in &mut others {
        o.wait_for_stderr("waiting for another pacxfer", Duration::from_secs(120));
    }
    hold.release();
    let runs: Vec<Run> = std::iter::once(first)
        .chain(others)
        .map(crate::harness::util::Running::finish)
        .collect();
    for r in &runs {
        r.success();
    }
    w.assert_same(&out, &big.path, &runs[0]);
    assert_eq!(
        w.mirror.hits_for(&big.filename).len(),
        1,
        "{}",
        runs[1].explain(&w.mirror.log_text())
    );
}

#[test]
fn credentials_in_server_lines_are_never_shown_or_kept_readable() {
    let w = World::new("sec-credentials", false);
    let tiny = w.fx.tiny.clone();
    let private = w.dir.join("private.conf");
    let dead = crate::harness::util::dead_port();
    std::fs::write(
        &private,
        format!(
            "Server = http://alice:s3cret-pw@{}/$repo/os/$arch\n",
            w.mirror.url().trim_start_matches("http://")
        ),
    )
    .expect("write include");
    chmod(&private, 0o600);
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let server_line = conf
        .lines()
        .find(|l| l.starts_with("Server = "))
        .expect("Server line")
        .to_string();
    std::fs::write(
        &w.pacman_conf,
        conf.replace(&server_line, &format!("Include = {}", private.display())),
    )
    .expect("write pacman.conf");

    let out = w.dir.join("fetched");
    std::fs::create_dir_all(&out).expect("mkdir");
    let runs = [
        w.pacxfer(&[
            "-v",
            "fetch",
            &tiny.filename,
            "-o",
            out.to_str().expect("utf8"),
        ]),
        w.pacxfer(&["lookup", &tiny.filename]),
        w.pacxfer(&["lookup", "--json", &tiny.filename]),
    ];
    runs[0].success().stderr_has("alice:***@");
    runs[1].success().stdout_has("alice:***@");
    runs[2].success().stdout_has("alice:***@");
    // An error line with the URL in it, from a server that is down.
    let failing = w.xfer(
        &format!(
            "http://bob:hunter2@127.0.0.1:{dead}/{REPO}/os/x86_64/nothing-1-1-any.pkg.tar.zst"
        ),
        &w.out("fail.part"),
    );
    failing.failure().one_error_line().stderr_has("bob:***@");
    for r in runs.iter().chain([&failing]) {
        for secret in ["s3cret-pw", "hunter2"] {
            assert!(
                !r.stdout().contains(secret) && !r.stderr().contains(secret),
                "{}",
                r.explain("a password was printed")
            );
        }
    }
    // The remembered answers hold the password (they must, to reach the server): private.
    let mut holding = Vec::new();
    for e in std::fs::read_dir(w.cache_dir()).expect("list").flatten() {
        let text = std::fs::read(e.path()).unwrap_or_default();
        if String::from_utf8_lossy(&text).contains("s3cret-pw") {
            let mode = e.metadata().expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} holds the password", e.path().display());
            holding.push(e.file_name());
        }
    }
    assert!(
        holding
            .iter()
            .any(|n| n.to_string_lossy().starts_with("pacman-conf-")),
        "no remembered answers hold the Server line: {holding:?}"
    );
    // And the mirror was reached with them.
    assert!(
        !w.mirror.hits_for(&tiny.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
}

#[test]
fn control_characters_from_urls_are_escaped() {
    let w = World::new("sec-escapes", false);
    let dead = crate::harness::util::dead_port();
    let url = format!(
        "http://127.0.0.1:{dead}/\x1b[2J\r\npacxfer: forged line\x07/x-1-1-any.pkg.tar.zst"
    );
    let r = w.xfer(&url, &w.out("esc.part"));
    r.failure()
        .one_error_line()
        .stderr_has("\\u{1b}[2J\\r\\npacxfer: forged line");
    assert!(
        !r.stderr().contains('\x1b') && !r.stderr().contains('\r') && !r.stderr().contains('\x07'),
        "{}",
        r.explain("raw control characters reached the terminal")
    );
}

/// What a killed writer leaves (a temporary `.tmp.<pid>.<nanos>.<name>` of a process that no
/// longer runs, or one older than an hour) is removed by the next writer; the temporary of a
/// writer still running is left to it.
#[test]
fn interrupted_index_builds_leave_no_temporaries() {
    let w = World::new("sec-stale", false);
    let cache = w.cache_dir();
    std::fs::create_dir_all(&cache).expect("mkdir");
    let temporary = |pid: u32| {
        let path = cache.join(format!(".tmp.{pid}.12345.{}", index_name(&w)));
        std::fs::write(&path, vec![0u8; 1 << 20]).expect("write");
        chmod(&path, 0o600);
        path
    };
    // A process that no longer runs (beyond any pid the kernel hands out).
    let dead = temporary(999_999_999);
    // A writer that still runs: this test; and one of it more than an hour old.
    let me = std::process::id();
    let running = temporary(me);
    let old = cache.join(format!(".tmp.{me}.777.{}", index_name(&w)));
    std::fs::write(&old, b"old").expect("write");
    chmod(&old, 0o600);
    run(Command::new("touch").args(["-d", "2 hours ago"]).arg(&old)).success();
    w.pacxfer(&["-v", "lookup", &w.fx.tiny.filename])
        .success()
        .stderr_has("indexed into");
    assert!(!dead.exists(), "the dead writer's temporary is still there");
    assert!(!old.exists(), "the hour-old temporary is still there");
    assert!(running.exists(), "a running writer's temporary was removed");
    assert!(cache.join(index_name(&w)).exists(), "no index was written");
}

/// A sync database made by hand, as some third-party repositories write them: the epoch is
/// `1:` in the entry's directory and `1_` in its file name.
fn epoch_db(w: &World, payload: &[u8]) -> (String, PathBuf) {
    let filename = "epochpkg-1_2.0-1-any.pkg.tar.zst".to_string();
    let tree = w.dir.join("epoch-db");
    let member = tree.join("epochpkg-1:2.0-1");
    std::fs::create_dir_all(&member).expect("mkdir");
    std::fs::write(
        member.join("desc"),
        format!(
            "%FILENAME%\n{filename}\n\n%NAME%\nepochpkg\n\n%VERSION%\n1:2.0-1\n\n\
             %CSIZE%\n{}\n\n%SHA256SUM%\n{}\n\n%ARCH%\nany\n\n",
            payload.len(),
            hex::encode(Sha256::digest(payload))
        ),
    )
    .expect("write desc");
    let db = w.dbpath.join("sync/arm.db");
    run(Command::new("bsdtar")
        .arg("-czf")
        .arg(&db)
        .arg("-C")
        .arg(&tree)
        .arg("epochpkg-1:2.0-1"))
    .success();
    (filename, db)
}

#[test]
fn epoch_written_as_underscore_is_found_with_and_without_an_index() {
    let w = World::new("sec-epoch", false);
    let payload = b"an ARM package whose file name spells its epoch 1_".repeat(200);
    let (filename, _db) = epoch_db(&w, &payload);
    let on_mirror = w
        .dir
        .join("mirror")
        .join(REPO)
        .join("os/x86_64")
        .join(&filename);
    let mut corrupt = payload.clone();
    corrupt[100] ^= 1;
    let sha = hex::encode(Sha256::digest(&payload));
    for (label, cache) in [("no index", Some("")), ("indexed", None)] {
        let with_cache = |args: &[&str]| {
            let mut all: Vec<&str> = Vec::new();
            if let Some(c) = cache {
                all.extend(["--cache-dir", c]);
            }
            all.extend(args);
            w.pacxfer(&all)
        };
        // Twice: without an index, both search the database; with one, the first builds it
        // and the second answers from it.
        let notes = match cache {
            Some(_) => ["no index kept; searched", "no index kept; searched"],
            None => ["indexed into", "answered from its index"],
        };
        let before = std::fs::read_dir(w.cache_dir()).map_or(0, |d| d.count());
        for note in notes {
            let r = with_cache(&["-v", "lookup", &filename]);
            assert!(r.output.status.success(), "{}", r.explain(label));
            r.stdout_has(&sha).stderr_has(note);
        }
        if cache.is_some() {
            assert_eq!(
                std::fs::read_dir(w.cache_dir()).map_or(0, |d| d.count()),
                before,
                "a search without an index wrote into the cache"
            );
        }
        std::fs::write(&on_mirror, &corrupt).expect("write corrupt");
        let out = w.out(&format!("{label}-bad.part"));
        let out_s = out.to_str().expect("utf8").to_string();
        let r = with_cache(&[&w.url(&filename), &out_s]);
        assert!(!r.output.status.success(), "{}", r.explain(label));
        r.stderr_has("SHA-256 does not match the database");
        std::fs::write(&on_mirror, &payload).expect("write payload");
        let out = w.out(&format!("{label}-good.part"));
        let out_s = out.to_str().expect("utf8").to_string();
        let r = with_cache(&[&w.url(&filename), &out_s]);
        assert!(r.output.status.success(), "{}", r.explain(label));
        assert_eq!(std::fs::read(&out).expect("read"), payload);
    }
}

/// Writes a tar stream whose first member is an extension header (`L` or `x`) declaring
/// `declared` bytes and carrying them, then one valid entry; zstd-compressed by the `zstd`
/// tool, so that a few hundred KiB on disk expand to a gigabyte.
fn bomb_db(path: &Path, typeflag: u8, declared: u64) {
    fn header(name: &str, typeflag: u8, size: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }
    let file = std::fs::File::create(path).expect("create db");
    let mut zstd = Command::new("zstd")
        .args(["-q", "-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .expect("run zstd");
    let mut stdin = zstd.stdin.take().expect("stdin");
    stdin
        .write_all(&header("././@LongLink", typeflag, declared))
        .expect("write");
    let chunk = vec![b'a'; 1 << 20];
    let mut left = declared;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stdin.write_all(&chunk[..n]).expect("write");
        left -= n as u64;
    }
    let pad = (512 - declared % 512) % 512;
    stdin.write_all(&vec![0u8; pad as usize]).expect("pad");
    let desc = b"%FILENAME%\nbomb-1-1-any.pkg.tar.zst\n\n%NAME%\nbomb\n\n";
    stdin
        .write_all(&header("bomb-1-1/desc", b'0', desc.len() as u64))
        .expect("write");
    stdin.write_all(desc).expect("write");
    stdin
        .write_all(&vec![0u8; 512 - desc.len() + 1024])
        .expect("write");
    drop(stdin);
    assert!(zstd.wait().expect("wait zstd").success());
}

#[test]
fn tar_header_bombs_in_a_database_cost_no_memory() {
    let w = World::new("sec-tar-bomb", false);
    for (typeflag, what) in [(b'L', "long name"), (b'x', "pax header")] {
        let db = w.dbpath.join("sync/bomb.db");
        bomb_db(&db, typeflag, 1 << 30);
        let small = std::fs::metadata(&db).expect("stat").len();
        assert!(small < 1 << 20, "the bomb is {small} bytes");
        // Reading the database without an index, in an address space far below 1 GiB of
        // header: a reader that held the header would fail to allocate.
        let capped = |what: &str| {
            let mut cmd = crate::harness::util::pacxfer_via(&["prlimit", "--as=600000000", "--"]);
            cmd.arg("--config")
                .arg(&w.config)
                .args(["--cache-dir", "", "lookup", what]);
            let (r, _) = run_within(&mut cmd, Duration::from_secs(300));
            ended_on_its_own(&r);
            r
        };
        capped("bomb")
            .failure()
            .stderr_has("bomb.db")
            .stderr_has(what)
            .stderr_has("not in any sync database");
        // The other databases are still read, under the same cap.
        capped(&w.fx.tiny.filename)
            .success()
            .stdout_has(&w.fx.tiny.sha256);
        std::fs::remove_file(&db).expect("rm");
    }
}

/// A database whose entries each carry a 1 MiB `%FILENAME%` that is not a plain file name:
/// every one is refused, and the refusals cost neither memory (the lookup runs in an address
/// space far below the 300 MiB of names) nor screenfuls.
#[test]
fn a_database_of_huge_bad_entries_says_little() {
    let w = World::new("sec-huge-entries", false);
    let db = w.dbpath.join("sync/huge.db");
    let file = std::fs::File::create(&db).expect("create db");
    let mut zstd = Command::new("zstd")
        .args(["-q", "-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .expect("run zstd");
    {
        let mut stdin = zstd.stdin.take().expect("stdin");
        let mut builder = tar::Builder::new(&mut stdin);
        let long = format!("{}/x", "a".repeat(1 << 20));
        for i in 0..300 {
            let desc = format!("%FILENAME%\n{long}\n\n%NAME%\nx{i}\n\n");
            let mut h = tar::Header::new_gnu();
            h.set_size(desc.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder
                .append_data(&mut h, format!("x{i}/desc"), desc.as_bytes())
                .expect("append");
        }
        builder.finish().expect("finish");
    }
    assert!(zstd.wait().expect("zstd").success());
    // In an address space that could not hold the 300 MiB of names.
    let mut cmd = crate::harness::util::pacxfer_via(&["prlimit", "--as=250000000", "--"]);
    cmd.arg("--config")
        .arg(&w.config)
        .args(["--cache-dir", "", "lookup", "zstd"]);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(300));
    ended_on_its_own(&r);
    r.failure();
    let err = r.stderr();
    assert!(
        err.len() < 20_000 && err.lines().count() <= 12,
        "{} bytes, {} lines of stderr",
        err.len(),
        err.lines().count()
    );
    assert!(
        err.contains("and 290 more entries that could not be read"),
        "{err}"
    );
}

/// A cache directory reached through a symbolic link: followed when root (or the user)
/// owns the link, refused when another user does, whatever the link points at.
#[test]
fn cache_paths_through_links_another_user_owns_are_refused() {
    let mut w = World::new("sec-cache-links", false);
    let target = w.dir.join("roots-own-dir");
    std::fs::create_dir_all(&target).expect("mkdir");
    let users = w.dir.join("users-dir");
    std::fs::create_dir_all(&users).expect("mkdir");
    let link = users.join("cache");
    symlink(&target, &link).expect("symlink");
    let use_cache = |w: &mut World, dir: &Path| {
        let text = std::fs::read_to_string(&w.config).expect("read config");
        let old = format!("cache_dir = {:?}", w.cache_dir().display().to_string());
        assert!(text.contains(&old));
        std::fs::write(
            &w.config,
            text.replace(
                &old,
                &format!("cache_dir = {:?}", dir.display().to_string()),
            ),
        )
        .expect("write config");
    };
    use_cache(&mut w, &link);
    let tiny = w.fx.tiny.clone();
    // Root's link in root's directory: followed, the index lands in the target.
    w.pacxfer(&["-v", "lookup", &tiny.filename])
        .success()
        .stderr_has("indexed into");
    assert!(std::fs::read_dir(&target).expect("list").count() > 0);
    for e in std::fs::read_dir(&target).expect("list").flatten() {
        std::fs::remove_file(e.path()).expect("rm");
    }
    // The same link owned by nobody (in a directory nobody owns): never followed.
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).expect("lchown");
    w.pacxfer(&["-v", "lookup", &tiny.filename])
        .success()
        .stderr_has("a symbolic link owned by nobody");
    assert_eq!(
        std::fs::read_dir(&target).expect("list").count(),
        0,
        "root wrote through another user's link"
    );
}

/// pacman.conf's `Include` lines are read to know when remembered answers go stale: a FIFO
/// there is opened without waiting for a writer. pacman-conf itself waits on it and is given
/// up after its 10 s; the lookup still answers from the database.
#[test]
fn an_include_that_is_a_fifo_does_not_hang() {
    let w = World::new("sec-include-fifo", false);
    let fifo = w.dir.join("include.fifo");
    run(Command::new("mkfifo").arg(&fifo)).success();
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read");
    std::fs::write(
        &w.pacman_conf,
        conf.replace(
            "[options]\n",
            &format!("[options]\nInclude = {}\n", fifo.display()),
        ),
    )
    .expect("write");
    let mut cmd = w.pacxfer_cmd(&["-v", "lookup", "tiny"]);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(120));
    ended_on_its_own(&r);
    r.success()
        .stdout_has(&w.fx.tiny.sha256)
        .stderr_has("gave no answer within 10s");
}

/// A broken config line holding Kubo's API password (`api_auth`, or a password in `api`'s
/// URL) is named, never printed; the same broken line without a secret is shown as written
/// (the control).
#[test]
fn a_config_error_never_prints_the_api_password() {
    let d = crate::harness::util::TestDir::new("sec-config-secret");
    let cases = [
        ("api_auth = \"basic:alice:hunter2", "api_auth = ***"),
        (
            "api = \"http://alice:hunter2@127.0.0.1:5001",
            "api = \"http://alice:***@127.0.0.1:5001",
        ),
    ];
    for (i, (line, shown)) in cases.iter().enumerate() {
        let conf = d.write(&format!("c{i}.conf"), format!("[share]\n{line}\n"));
        let r = run(pacxfer().arg("--config").arg(&conf).args(["lookup", "x"]));
        r.failure()
            .one_error_line()
            .stderr_has("line 2")
            .stderr_has(shown);
        assert!(
            !r.stderr().contains("hunter2"),
            "{}",
            r.explain("secret shown")
        );
    }
    let conf = d.write("plain.conf", "[share]\napi = \"http://127.0.0.1:5001\n");
    run(pacxfer().arg("--config").arg(&conf).args(["lookup", "x"]))
        .failure()
        .one_error_line()
        .stderr_has("line 2 (api = \"http://127.0.0.1:5001)");
}

/// OUTPUT is private (0600) while pacxfer writes it, so nobody else can open it, let alone
/// hold its lock and make root's next call wait; once whole it is 0644, and then anybody may
/// lock it (the control: the same `flock` as `nobody` works on a file it can open).
#[test]
fn output_is_private_until_whole_so_no_user_can_hold_its_lock() {
    let mut w = World::new("sec-output-lock", false);
    // The download stays in progress for as long as the test needs: the mirror holds it.
    w.mirror_stall = "10m";
    let gateway = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tiny = w.fx.tiny.clone();
    let out = w.out("tiny.part");
    std::fs::set_permissions(
        out.parent().expect("dir"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let hold = w.mirror.hold(&tiny.filename, 1000);
    let writer = crate::harness::util::spawn(
        &mut w.pacxfer_cmd(&[&w.url(&tiny.filename), out.to_str().expect("utf8")]),
    );
    hold.wait_held(1);
    let nobody_locks = || {
        run(Command::new("runuser")
            .args(["-u", "nobody", "--", "flock", "-n"])
            .arg(&out)
            .arg("true"))
    };
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a .part in progress is private");
    let r = nobody_locks();
    assert!(
        !r.output.status.success() && r.stderr().contains("Permission denied"),
        "{}",
        r.explain("nobody could open the file in progress")
    );
    hold.release();
    let r = writer.finish();
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    // Whole, it is readable like any package, and anybody may open (and lock) it.
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    nobody_locks().success();
}

/// An OUTPUT another user owns (planted in a sticky directory), one with other hard links,
/// or one in a directory others may write (with no sticky bit): refused, and left as it
/// was. Each control is the same call with that one thing changed (the file root's, the
/// other link gone, the directory closed): it succeeds.
#[test]
fn outputs_owned_by_others_linked_elsewhere_or_in_open_directories_are_refused() {
    let w = World::new("sec-output-owner", false);
    let tiny = w.fx.tiny.clone();
    let url = w.url(&tiny.filename);
    let sticky = w.dir.join("sticky");
    std::fs::create_dir_all(&sticky).expect("mkdir");
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let planted = sticky.join("tiny.part");
    std::fs::write(&planted, b"nobody's").expect("write");
    chmod(&planted, 0o666);
    chown_nobody(&planted);
    w.xfer(&url, &planted)
        .failure()
        .one_error_line()
        .stderr_has("belongs to another user");
    assert_eq!(std::fs::read(&planted).expect("read"), b"nobody's");
    chown(&planted, Some(0), Some(0)).expect("chown root");
    let r = w.xfer(&url, &planted);
    r.success();
    w.assert_same(&planted, &tiny.path, &r);

    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"root's file").expect("write");
    let link = w.out("linked.part");
    std::fs::hard_link(&victim, &link).expect("hard link");
    w.xfer(&url, &link)
        .failure()
        .one_error_line()
        .stderr_has("other hard links");
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");
    std::fs::remove_file(&victim).expect("rm the other link");
    let r = w.xfer(&url, &link);
    r.success();
    w.assert_same(&link, &tiny.path, &r);

    let open = w.dir.join("open");
    std::fs::create_dir_all(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = open.join("tiny.part");
    w.xfer(&url, &out)
        .failure()
        .one_error_line()
        .stderr_has("can be written by other users");
    assert!(!out.exists(), "an OUTPUT was made in the open directory");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let r = w.xfer(&url, &out);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
}
