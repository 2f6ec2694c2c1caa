//! pacxfer as pacman 7 runs it with `DownloadUser`: an unprivileged user that can read the
//! root-owned sync databases and write only the output's directory, with HOME still /root.
//! Also real pacman with `runuser` in its XferCommand, the nearest pacman 6.0 comes to it,
//! and TLS to a server whose certificate no system store trusts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::util::{
    pacxfer_bin, pacxfer_via, run, sha256_hex, Run, TestDir, SHARED_PREFIX,
};
use crate::harness::world::World;

/// The unprivileged user, made when missing.
const USER: &str = "alpmtest";

fn ensure_user() {
    if run(Command::new("id").arg(USER)).output.status.success() {
        return;
    }
    run(Command::new("useradd").args([
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        USER,
    ]))
    .success();
}

/// A directory only `USER` may write.
fn writable_by_user(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    run(Command::new("chown").arg(format!("{USER}:")).arg(dir)).success();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
}

/// Lets `USER` walk into the test's directory (temporary directories are made 0700).
fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `pacxfer --config CONF ARGS...` as `USER`, with HOME=/root as pacman 7 leaves it.
fn as_user(config: &Path, args: &[&str]) -> Run {
    let mut cmd = pacxfer_via(&["runuser", "-u", USER, "--", "env", "HOME=/root"]);
    cmd.arg("--config").arg(config).args(args);
    run(&mut cmd)
}

/// Files `USER` owns in the places anyone may write and in the test's own directory `world`,
/// but for those under `except` (the output's directory). The tests' shared places below /tmp
/// (`util::shared_root`: the user's, mode 0755) are nobody else's to write, and in them only
/// `world` is looked at: the directories tests running beside this one gave `USER` are theirs.
fn owned_by_user_in_tmp(world: &Path, except: &Path) -> Vec<String> {
    let uid = rustix::process::geteuid().as_raw().to_string();
    let r = run(Command::new("find")
        .args(["/tmp", "/var/tmp", "/dev/shm"])
        .arg(world)
        .args(["-xdev", "(", "-path"])
        .arg(format!("{SHARED_PREFIX}*"))
        .args(["!", "-path"])
        .arg(format!("{SHARED_PREFIX}*/*"))
        .args(["-uid", &uid, "!", "-perm", "/022", "-prune", ")"])
        .args(["-o", "-user", USER, "-print"]));
    r.stdout()
        .lines()
        .filter(|l| !Path::new(l).starts_with(except))
        .map(str::to_string)
        .collect()
}

#[test]
fn as_the_download_user_only_the_output_is_written() {
    ensure_user();
    let w = World::new("download-user", false);
    open_to_all(w.dir.path());
    let other = w.fx.other.clone();
    let out_dir = w.dir.join("download-XXXXXX");
    writable_by_user(&out_dir);
    let out = out_dir.join(format!("{}.part", other.filename));
    let before = owned_by_user_in_tmp(w.dir.path(), &out_dir);
    // Control: a file the user makes in /tmp is seen.
    let mark = std::path::PathBuf::from(format!("/tmp/.pacxfer-test-mark-{}", std::process::id()));
    run(Command::new("runuser")
        .args(["-u", USER, "--", "touch"])
        .arg(&mark))
    .success();
    let seen = owned_by_user_in_tmp(w.dir.path(), &out_dir);
    std::fs::remove_file(&mark).expect("rm mark");
    assert!(
        seen.contains(&mark.display().to_string()),
        "the user's file in /tmp was not seen: {seen:?}"
    );

    let r = as_user(
        &w.config,
        &[&w.url(&other.filename), out.to_str().expect("utf8")],
    );
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &other.path, &r);
    assert_eq!(
        owned_by_user_in_tmp(w.dir.path(), &out_dir),
        before,
        "wrote outside OUTPUT"
    );
    // Only the output file is in its directory, and the sync directory is as it was.
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("read out dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read_dir(w.dbpath.join("sync"))
            .expect("read sync")
            .count(),
        1
    );

    // A directory the user may not write, and a config it may not read: one line each.
    let root_only = w.dir.join("root-only");
    std::fs::create_dir_all(&root_only).expect("mkdir");
    open_to_all(&root_only);
    let denied = root_only.join("x.part");
    let r = as_user(
        &w.config,
        &[&w.url(&other.filename), denied.to_str().expect("utf8")],
    );
    r.failure()
        .one_error_line()
        .stderr_has("cannot open output file")
        .stderr_has("Permission denied");
    let secret = w.dir.join("secret.conf");
    std::fs::copy(&w.config, &secret).expect("copy config");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = as_user(
        &secret,
        &[&w.url(&other.filename), out.to_str().expect("utf8")],
    );
    r.failure()
        .one_error_line()
        .stderr_has("cannot read config file")
        .stderr_has("secret.conf");
}

#[test]
fn pacman_with_runuser_in_its_xfercommand_downloads_as_the_user() {
    ensure_user();
    let w = World::new("pacman-runuser", false);
    open_to_all(w.dir.path());
    writable_by_user(&w.dir.join("cache"));
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let xfer = format!(
        "XferCommand = /usr/sbin/runuser -u {USER} -- {} --config {} %u %o",
        pacxfer_bin().display(),
        w.config.display()
    );
    let conf: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("XferCommand") {
                xfer.clone()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&w.pacman_conf, conf).expect("write pacman.conf");

    let (tiny, other) = (w.fx.tiny.clone(), w.fx.other.clone());
    let r = w.pacman(&["-Sw", "--noconfirm", "tiny", "other"]);
    r.success();
    for pkg in [&tiny, &other] {
        let cached = w.dir.join("cache").join(&pkg.filename);
        assert_eq!(sha256_hex(&cached), pkg.sha256, "{}", r.explain("cached"));
        let owner = run(Command::new("stat").args(["-c", "%U"]).arg(&cached));
        assert_eq!(owner.stdout().trim(), USER, "written by {USER}");
    }
    assert_eq!(w.mirror.hits_for(&other.filename).len(), 1);
}

/// A server whose certificate no system store trusts is refused, and nothing is written;
/// the control is the same server trusted through `SSL_CERT_FILE`, whose file then arrives.
#[test]
fn a_self_signed_https_mirror_is_refused() {
    let d = TestDir::new("self-signed");
    let openssl = |args: &[&str]| {
        let mut c = Command::new("openssl");
        crate::harness::util::daemon_env(&mut c, d.path())
            .args(args)
            .current_dir(d.path());
        c
    };
    run(&mut openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        // A server's own certificate, not a CA's (webpki refuses a CA as a server).
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]))
    .success();
    // `-WWW` serves the files of its directory.
    let served = d.write("served/core.db", b"a database no database lists".repeat(10));
    let port = crate::harness::util::dead_port();
    let log = d.join("s_server.log");
    let mut server = Some(
        openssl(&[
            "s_server",
            "-WWW",
            "-cert",
            "../cert.pem",
            "-key",
            "../key.pem",
            "-accept",
            &port.to_string(),
        ])
        .current_dir(d.join("served"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start openssl s_server"),
    );
    crate::harness::util::wait_for_log(&mut server, &log, "openssl s_server", |t| {
        t.contains("ACCEPT")
    });
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    let pacman_conf = d.write(
        "pacman.conf",
        format!("[options]\nDBPath = {}/\n", d.path().display()),
    );
    let conf = d.write(
        "c.conf",
        format!(
            "dbpath = {:?}\npacman_conf = {:?}\ncache_dir = \"\"\n[gateway]\nenabled = false\n\
             [share]\napi = \"http://127.0.0.1:{}\"\n",
            d.path().display().to_string(),
            pacman_conf.display().to_string(),
            crate::harness::util::dead_port()
        ),
    );
    let url = format!("https://127.0.0.1:{port}/core.db");
    let fetch = |out: &Path, trust: bool| {
        let mut cmd = crate::harness::util::pacxfer();
        if trust {
            cmd.env("SSL_CERT_FILE", d.join("cert.pem"));
        }
        run(cmd.arg("--config").arg(&conf).arg(&url).arg(out))
    };
    let out = d.join("x.part");
    let refused = fetch(&out, false);
    let trusted_out = d.join("trusted.part");
    let trusted = fetch(&trusted_out, true);
    crate::harness::util::kill_daemon(&mut server);
    refused
        .failure()
        .one_error_line()
        .stderr_has("invalid peer certificate");
    assert_eq!(std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0), 0);
    trusted.success();
    assert_eq!(
        std::fs::read(&trusted_out).expect("read"),
        std::fs::read(&served).expect("read"),
        "{}",
        trusted.explain("the file over TLS")
    );
}

#[test]
fn the_download_user_keeps_its_own_cache_and_root_never_uses_it() {
    ensure_user();
    let w = World::new("download-user-cache", false);
    open_to_all(w.dir.path());
    // As the tmpfiles.d entry makes /var/cache/pacxfer: owned by the download user.
    writable_by_user(&w.cache_dir());
    let out_dir = w.dir.join("download-XXXXXX");
    writable_by_user(&out_dir);
    let tiny = w.fx.tiny.clone();
    let out = out_dir.join(format!("{}.part", tiny.filename));
    let out_s = out.to_str().expect("utf8");

    // The download user builds its index there, then answers from it.
    let r = as_user(&w.config, &["-v", &w.url(&tiny.filename), out_s]);
    r.success().stderr_has("indexed into");
    std::fs::remove_file(&out).expect("rm");
    let r = as_user(&w.config, &["-v", &w.url(&tiny.filename), out_s]);
    r.success().stderr_has("answered from its index");
    for e in std::fs::read_dir(w.cache_dir()).expect("list").flatten() {
        let mode = e.metadata().expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is not private", e.path().display());
    }

    // Root, with the same configuration, refuses the user's directory and still succeeds.
    let before: Vec<_> = std::fs::read_dir(w.cache_dir())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let root_out = w.out("root.part");
    let r = w.xfer_verbose(&w.url(&tiny.filename), &root_out);
    r.success()
        .stderr_has(&format!("owned by {USER}"))
        .stderr_has("searched; no index can be written");
    w.assert_same(&root_out, &tiny.path, &r);
    let after: Vec<_> = std::fs::read_dir(w.cache_dir())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "root wrote into the download user's cache");
}

/// `prefetch` as the download user: refused, each time with what to change, while pacxfer's
/// cache or pacman's CacheDir is not the user's; then it fills the cache with files that user
/// owns, readable by all.
#[test]
fn prefetch_as_the_download_user() {
    ensure_user();
    let w = World::new("prefetch-user", false);
    crate::prefetch::upgrade::old_system(&w);
    open_to_all(w.dir.path());
    as_user(&w.config, &["prefetch"])
        .failure()
        .one_error_line()
        .stderr_has("no cache directory pacxfer may write");
    writable_by_user(&w.cache_dir());
    as_user(&w.config, &["prefetch"])
        .failure()
        .one_error_line()
        .stderr_has("is not writable by this user");
    let cache = w.dir.join("cache");
    writable_by_user(&cache);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let r = as_user(&w.config, &["prefetch"]);
    r.success().stderr_has("prefetched 4 of 4 files");
    let uid = run(Command::new("id").args(["-u", USER]))
        .stdout()
        .trim()
        .to_string();
    for pkg in [&w.fx.tiny, &w.fx.big, &w.fx.plus, &w.fx.other] {
        let path = cache.join(&pkg.filename);
        assert_eq!(
            sha256_hex(&path),
            pkg.sha256,
            "{}",
            r.explain(&pkg.filename)
        );
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta).to_string(), uid);
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    }
}
