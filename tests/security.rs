//! A hostile local user against root's pacxfer: caches owned or writable by someone else
//! (`nobody`), forged indexes and pacman-conf answers, links and FIFOs planted at every name
//! pacxfer reads or writes, a user's `$XDG_CACHE_HOME`, credentials in a private Include,
//! control characters in URLs, concurrent writers, hostile database archives, and database
//! entries whose file name does not repeat their directory. Each test is named after the
//! defect it pins, and where a forgery is involved it first shows that the forgery would work
//! if it were trusted, so that the refusal is what the test measures.

use std::io::Write;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pacxfer::cache::Places;
use pacxfer::db::entry::Entry;
use pacxfer::db::index::{self, Identity};
use sha2::{Digest, Sha256};

use crate::faultd::{Fault, FaultServer};
use crate::fixtures::{Pkg, REPO};
use crate::httpd::Mirror;
use crate::util::{pacxfer, run, run_within, sha256_hex, Run};
use crate::world::World;

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

#[test]
fn index_written_by_another_user_is_not_trusted() {
    let w = World::new("sec-index-owner", false);
    let other = w.fx.other.clone();
    let evil = b"not the package the database lists".repeat(100);
    replace_on_mirror(&w, &other, &evil);
    let forged = vec![entry_claiming(&pkg_name(&other), &other.filename, &evil)];

    // Trusted (root's own file in root's own directory), the forgery would be believed.
    forge_index(&w, &w.cache_dir(), &forged);
    let out = w.out("control.part");
    w.xfer(&w.url(&other.filename), &out).success();
    assert_eq!(
        std::fs::read(&out).expect("read"),
        evil,
        "control: forgery used"
    );

    // The directory belongs to nobody: nothing in it is read, the database decides.
    std::fs::remove_dir_all(w.cache_dir()).expect("clean");
    let index = forge_index(&w, &w.cache_dir(), &forged);
    chown_nobody(&w.cache_dir());
    chown_nobody(&index);
    let out = w.out("owned-dir.part");
    let r = w.xfer_verbose(&w.url(&other.filename), &out);
    r.failure()
        .stderr_has("wrong bytes")
        .stderr_has("owned by nobody");
    assert_ne!(std::fs::read(&out).unwrap_or_default(), evil);

    // Root's directory, but the file belongs to nobody, or anyone may write it.
    chown(w.cache_dir(), Some(0), Some(0)).expect("chown root");
    let out = w.out("owned-file.part");
    w.xfer(&w.url(&other.filename), &out)
        .failure()
        .stderr_has("wrong bytes");
    chown(&index, Some(0), Some(0)).expect("chown root");
    chmod(&index, 0o666);
    let out = w.out("loose-file.part");
    w.xfer(&w.url(&other.filename), &out)
        .failure()
        .stderr_has("wrong bytes");
    // pacxfer never wrote into the directory while it was not trusted, and now rebuilds.
    assert!(std::fs::metadata(&index).is_ok());
}

#[test]
fn forged_filename_in_a_trusted_index_cannot_steer_a_write() {
    let w = World::new("sec-index-filename", false);
    let tiny = w.fx.tiny.clone();
    let bytes = std::fs::read(&tiny.path).expect("read tiny");
    let fetch_dir = w.dir.join("fetch/a/b");
    std::fs::create_dir_all(&fetch_dir).expect("mkdir");
    let escape = w.dir.join("fetch/escaped");
    for forged_name in ["../../escaped".to_string(), escape.display().to_string()] {
        let forged = vec![entry_claiming(&pkg_name(&tiny), &forged_name, &bytes)];
        forge_index(&w, &w.cache_dir(), &forged);
        let r = w.pacxfer(&[
            "fetch",
            &pkg_name(&tiny),
            "-o",
            fetch_dir.to_str().expect("utf8"),
        ]);
        r.success();
        assert!(!escape.exists(), "{}", r.explain("wrote outside -o"));
        assert_eq!(sha256_hex(&fetch_dir.join(&tiny.filename)), tiny.sha256);
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
    crate::fixtures::copy_tree(&w.fx.root, &evil_root);
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

#[test]
fn root_never_reads_a_users_xdg_cache() {
    let w = World::new("sec-xdg", false);
    let other = w.fx.other.clone();
    let evil = b"from the user's cache".repeat(50);
    replace_on_mirror(&w, &other, &evil);
    // A config with no cache_dir: the default places, /var/cache/pacxfer then XDG's.
    let config = w.dir.join("default-places.conf");
    std::fs::write(
        &config,
        format!(
            "dbpath = {:?}\npacman_conf = {:?}\n[gateway]\nenabled = false\n",
            w.dbpath.display().to_string(),
            w.pacman_conf.display().to_string()
        ),
    )
    .expect("write config");
    let xdg = w.dir.join("home-of-nobody/.cache");
    let user_place = xdg.join("pacxfer");
    let forged = vec![entry_claiming(&pkg_name(&other), &other.filename, &evil)];
    let index = forge_index(&w, &user_place, &forged);
    for p in [
        w.dir.join("home-of-nobody"),
        xdg.clone(),
        user_place.clone(),
        index.clone(),
    ] {
        chown_nobody(&p);
    }
    let out = w.out("xdg.part");
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .env("XDG_CACHE_HOME", &xdg)
        .arg("--config")
        .arg(&config)
        .arg(w.url(&other.filename))
        .arg(&out);
    let r = run(&mut cmd);
    // Root's own place may hold this database's index now; it is this test's to remove.
    let _ = std::fs::remove_file(Path::new("/var/cache/pacxfer").join(index_name(&w)));
    r.failure().stderr_has("wrong bytes");
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
}

/// The next process ids the kernel will hand out, roughly.
fn next_pids(n: u32) -> Vec<u32> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    (last + 1..last + 1 + n).collect()
}

#[test]
fn planted_links_in_the_cache_are_never_followed() {
    let mut w = World::new("sec-links", false);
    let dead = format!("http://127.0.0.1:{}", crate::util::dead_port());
    w.configure(&dead, &["/ipfs/{cid}"], "");
    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"root's file").expect("write victim");
    let cache = w.cache_dir();
    std::fs::create_dir_all(&cache).expect("mkdir");
    let mut planted = vec![
        index_name(&w),
        Places::name_for("gateway", dead.as_bytes(), "state"),
    ];
    // The write probe and temporary names of the next processes.
    for pid in next_pids(200) {
        planted.push(format!(".tmp.{pid}.probe"));
        planted.push(format!(".probe-{pid}"));
    }
    for name in &planted {
        symlink(&victim, cache.join(name)).expect("plant symlink");
    }
    let tiny = w.fx.tiny.clone();
    let out = w.out("links.part");
    w.xfer(&w.url(&tiny.filename), &out).success();
    let r = w.pacxfer(&[
        "fetch",
        &tiny.filename,
        "-o",
        w.dir.join("f").to_str().expect("utf8"),
    ]);
    r.success();
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");
    // The index and the breaker state replaced their links with files of their own.
    for name in &planted[..2] {
        let meta = std::fs::symlink_metadata(cache.join(name)).expect("stat");
        assert!(meta.is_file(), "{name} is still a link");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn fifos_and_devices_at_cache_names_neither_hang_nor_fill_memory() {
    let mut w = World::new("sec-fifos", false);
    let dead = format!("http://127.0.0.1:{}", crate::util::dead_port());
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
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .arg(w.url(&tiny.filename))
        .arg(&out);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(60));
    r.success();
    w.assert_same(&out, &tiny.path, &r);

    // A link to /dev/zero at the index's name is a link, and never read.
    std::fs::remove_file(cache.join(index_name(&w))).expect("rm");
    symlink("/dev/zero", cache.join(index_name(&w))).expect("symlink");
    // The address space is capped: reading /dev/zero into memory would fail, not swap.
    let out = w.out("zero.part");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--as=2000000000")
        .arg("--")
        .arg(crate::util::pacxfer_bin())
        .arg("--config")
        .arg(&w.config)
        .arg(w.url(&tiny.filename))
        .arg(&out);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(60));
    r.success();
    w.assert_same(&out, &tiny.path, &r);
}

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
    symlink(&victim, dest.join(format!("{}.part", tiny.filename))).expect("plant");
    w.pacxfer(&["fetch", &tiny.filename, "-o", dest.to_str().expect("utf8")])
        .failure()
        .one_error_line()
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");

    // A FIFO at OUTPUT: an error, not a hang.
    let fifo = w.out("fifo.part");
    run(Command::new("mkfifo").arg(&fifo)).success();
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .arg(w.url(&tiny.filename))
        .arg(&fifo);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(60));
    r.failure()
        .one_error_line()
        .stderr_has("not a regular file");
}

#[test]
fn concurrent_writers_on_one_output_never_interleave() {
    let w = World::new("sec-concurrent", false);
    let big = w.fx.big.clone();
    let faults = FaultServer::start(std::fs::read(&big.path).expect("read big"));
    // A slow source, so that every writer starts while the first is still writing.
    let url = format!(
        "{}/{REPO}/os/x86_64/{}",
        faults.base(Fault::Drip),
        big.filename
    );
    let out = w.out("big.part");
    let children: Vec<_> = (0..4)
        .map(|_| {
            pacxfer()
                .env_remove("PACXFER_CACHE_DIR")
                .arg("--config")
                .arg(&w.config)
                .arg(&url)
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn pacxfer")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run {
            cmdline: format!("pacxfer {url} {}", out.display()),
            output: c.wait_with_output().expect("wait"),
        })
        .collect();
    for r in &runs {
        r.success();
    }
    w.assert_same(&out, &big.path, &runs[0]);
    assert!(
        runs.iter()
            .any(|r| r.stderr().contains("waiting for another pacxfer")),
        "no writer waited: {}",
        runs[0].explain("")
    );
}

#[test]
fn credentials_in_server_lines_are_never_shown_or_kept_readable() {
    let w = World::new("sec-credentials", false);
    let tiny = w.fx.tiny.clone();
    let private = w.dir.join("private.conf");
    let dead = crate::util::dead_port();
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
    for e in std::fs::read_dir(w.cache_dir()).expect("list").flatten() {
        let text = std::fs::read(e.path()).unwrap_or_default();
        if String::from_utf8_lossy(&text).contains("s3cret-pw") {
            let mode = e.metadata().expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} holds the password", e.path().display());
        }
    }
}

#[test]
fn control_characters_from_urls_are_escaped() {
    let w = World::new("sec-escapes", false);
    let dead = crate::util::dead_port();
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

#[test]
fn interrupted_index_builds_leave_no_temporaries() {
    let w = World::new("sec-stale", false);
    let cache = w.cache_dir();
    std::fs::create_dir_all(&cache).expect("mkdir");
    // What a killed writer leaves: a temporary of a process that no longer runs.
    let stale = cache.join(format!(".tmp.999999999.12345.{}", index_name(&w)));
    std::fs::write(&stale, vec![0u8; 1 << 20]).expect("write");
    chmod(&stale, 0o600);
    w.pacxfer(&["lookup", &w.fx.tiny.filename]).success();
    assert!(!stale.exists(), "the stale temporary is still there");
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
    for (label, cache) in [("indexed", None), ("no index", Some(""))] {
        let with_cache = |args: &[&str]| {
            let mut all: Vec<&str> = Vec::new();
            if let Some(c) = cache {
                all.extend(["--cache-dir", c]);
            }
            all.extend(args);
            w.pacxfer(&all)
        };
        // Twice: the first call may build the index, the second answers from it.
        for _ in 0..2 {
            let r = with_cache(&["lookup", &filename]);
            assert!(r.output.status.success(), "{}", r.explain(label));
            r.stdout_has(&sha);
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
        let mut cmd = Command::new("prlimit");
        cmd.arg("--as=600000000")
            .arg("--")
            .arg(crate::util::pacxfer_bin())
            .arg("--config")
            .arg(&w.config)
            .args(["--cache-dir", "", "lookup", "bomb"]);
        let (r, _) = run_within(&mut cmd, Duration::from_secs(120));
        r.failure()
            .stderr_has("bomb.db")
            .stderr_has(what)
            .stderr_has("not in any sync database");
        // The other databases are still read.
        w.pacxfer(&["--cache-dir", "", "lookup", &w.fx.tiny.filename])
            .success()
            .stdout_has(&w.fx.tiny.sha256);
        std::fs::remove_file(&db).expect("rm");
    }
}

/// A database whose entries each carry a 1 MiB `%FILENAME%` that is not a plain file name:
/// every one is refused, and the refusals must cost neither memory nor screenfuls.
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
    let r = w.pacxfer(&["--cache-dir", "", "lookup", "zstd"]);
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
/// there is never waited on.
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
            &format!("[options]\n#Include = {}\n", fifo.display()),
        ),
    )
    .expect("write");
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read");
    std::fs::write(&w.pacman_conf, conf.replace("#Include", "Include")).expect("write");
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(["-v", "lookup", "tiny"]);
    let (r, took) = run_within(&mut cmd, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(20),
        "{}",
        r.explain("hung on the FIFO")
    );
}

/// A broken config line holding Kubo's API password is named, never printed.
#[test]
fn a_config_error_never_prints_the_api_password() {
    let d = crate::util::TestDir::new("sec-config-secret");
    let conf = d.write("c.conf", "[share]\napi_auth = \"basic:alice:hunter2\n");
    let r = run(pacxfer().arg("--config").arg(&conf).args(["lookup", "x"]));
    r.failure().one_error_line().stderr_has("api_auth = ***");
    assert!(
        !r.stderr().contains("hunter2"),
        "{}",
        r.explain("secret shown")
    );
}

/// OUTPUT is private while pacxfer writes it, so nobody else can open it, let alone hold
/// its lock and make root's next call wait; it is readable by all once whole.
#[test]
fn output_is_private_until_whole_so_no_user_can_hold_its_lock() {
    let w = World::new("sec-output-lock", false);
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = w.out("left.part");
    std::fs::set_permissions(
        out.parent().expect("dir"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    // A failed download leaves the bytes it has in its .part, as pacman 6 keeps it: here an
    // earlier call's first kilobyte (readable by all), and the mirror no longer has the file.
    let tiny = w.fx.tiny.clone();
    let head = std::fs::read(&tiny.path).expect("read tiny")[..1024].to_vec();
    std::fs::write(&out, &head).expect("write part");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let on_mirror = w
        .dir
        .join("mirror")
        .join(crate::fixtures::REPO)
        .join("os/x86_64")
        .join(&tiny.filename);
    let kept = w.dir.join("tiny.kept");
    std::fs::rename(&on_mirror, &kept).expect("take tiny off the mirror");
    w.xfer(&w.url(&tiny.filename), &out).failure();
    assert_eq!(std::fs::read(&out).expect("the .part stays"), head);
    std::fs::rename(&kept, &on_mirror).expect("put tiny back");
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a .part in progress is private");
    let r = run(Command::new("runuser")
        .args(["-u", "nobody", "--", "flock", "-n"])
        .arg(&out)
        .arg("true"));
    assert!(
        !r.output.status.success(),
        "{}",
        r.explain("nobody took the lock")
    );
    // Whole, it is readable like any package.
    let done = w.out("tiny.part");
    w.xfer(&w.url(&w.fx.tiny.filename), &done).success();
    let mode = std::fs::metadata(&done).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

/// An OUTPUT another user owns (planted in a sticky directory), one with other hard links,
/// or one in a directory others may write: refused, and left as it was.
#[test]
fn outputs_owned_by_others_linked_elsewhere_or_in_open_directories_are_refused() {
    let w = World::new("sec-output-owner", false);
    let tiny = w.fx.tiny.clone();
    let sticky = w.dir.join("sticky");
    std::fs::create_dir_all(&sticky).expect("mkdir");
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let planted = sticky.join("tiny.part");
    std::fs::write(&planted, b"nobody's").expect("write");
    chmod(&planted, 0o666);
    chown_nobody(&planted);
    w.xfer(&w.url(&tiny.filename), &planted)
        .failure()
        .one_error_line()
        .stderr_has("belongs to another user");
    assert_eq!(std::fs::read(&planted).expect("read"), b"nobody's");

    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"root's file").expect("write");
    let link = w.out("linked.part");
    std::fs::hard_link(&victim, &link).expect("hard link");
    w.xfer(&w.url(&tiny.filename), &link)
        .failure()
        .one_error_line()
        .stderr_has("other hard links");
    assert_eq!(std::fs::read(&victim).expect("read"), b"root's file");

    let open = w.dir.join("open");
    std::fs::create_dir_all(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    w.xfer(&w.url(&tiny.filename), &open.join("tiny.part"))
        .failure()
        .one_error_line()
        .stderr_has("can be written by other users");
}
