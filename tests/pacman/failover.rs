//! Failover inside one call, as pacman's own downloader does it: when the URL pacman gave
//! fails, pacxfer tries the repository's later Server lines (pacman-conf's order) before it
//! exits non-zero, with the same resume and verification rules, and never a server pacman does
//! not list. And pacman-conf's refusals are remembered like its answers, so that a repository
//! pacman.conf no longer lists costs no process on every call.
//!
//! pacman 6 (the host's) and pacman 7 (in the root, tests/harness/chroot.rs) run with an XferCommand
//! wrapper that logs each call, so a test sees that pacman called pacxfer once per file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::faultd::{Fault, FaultServer};
use crate::harness::fixtures::REPO;
use crate::harness::util::{dead_port, pacxfer_bin, run, Run};
use crate::harness::world::World;
use crate::pacman::pacman7::World7;

/// An XferCommand that logs its URL to `<dir>/xfer-calls.log` and runs pacxfer with the
/// World's config; the log is writable by pacman 7's download user.
fn logging_xfer(w: &World) -> (String, PathBuf) {
    let log = w.dir.join("xfer-calls.log");
    std::fs::write(&log, "").expect("create log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let script = w.dir.join("xfer.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {log}\nexec {bin} --config {conf} \"$@\"\n",
            log = log.display(),
            bin = pacxfer_bin().display(),
            conf = w.config.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script.display().to_string(), log)
}

fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .expect("read log")
        .lines()
        .map(str::to_string)
        .collect()
}

/// `-Sy` then `-Sw big` with two Servers, the first `first`: each file is one XferCommand call
/// that fails over to the second Server.
fn one_call_fails_over(pacman7: bool, name: &str, first: &str, faults: Option<&FaultServer>) {
    let w = World7::new(name, false, "Never");
    let (xfer, log) = logging_xfer(&w);
    let second = format!("{}/$repo/os/$arch", w.mirror.url());
    w.write_conf_with("Never", &[first, second.as_str()], pacman7, &xfer);
    std::fs::remove_file(w.dbpath.join(format!("sync/{REPO}.db"))).expect("rm db");
    let pacman = |args: &[&str]| {
        if pacman7 {
            w.pacman(args)
        } else {
            w.w.pacman(args)
        }
    };
    let first_url = |file: &str| {
        format!(
            "{}/{file}",
            first.replace("$repo", REPO).replace("$arch", "x86_64")
        )
    };
    let big = w.fx.big.clone();

    let r = pacman(&["-Sy"]);
    r.success().stderr_has("trying the next Server");
    let db = format!("{REPO}.db");
    assert_eq!(calls(&log), [first_url(&db)], "{}", r.explain("one call"));
    assert_eq!(w.mirror.hits_for(&db).len(), 1, "{}", w.mirror.log_text());

    let r = pacman(&["-Sw", "--noconfirm", "big"]);
    r.success();
    assert_eq!(
        calls(&log),
        [first_url(&db), first_url(&big.filename)],
        "{}",
        r.explain("one call per file")
    );
    w.assert_cached(&big.filename, &big.path, &r);
    assert_eq!(
        w.mirror.hits_for(&big.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
    if let Some(f) = faults {
        // The failing Server was asked once per file, and pacman never came back to it.
        assert_eq!(f.log().len(), 2, "{}", f.log_text());
    }
}

/// pacman 6, first Server refusing connections: one XferCommand call per file moves on to the
/// second Server itself.
#[test]
fn pacman6_one_call_moves_past_a_server_that_refuses_connections() {
    let dead = format!("http://127.0.0.1:{}/$repo/os/$arch", dead_port());
    one_call_fails_over(false, "failover6-refused", &dead, None);
}

/// pacman 7 (download user, sandbox), first Server refusing connections: one call per file.
#[test]
fn pacman7_one_call_moves_past_a_server_that_refuses_connections() {
    let dead = format!("http://127.0.0.1:{}/$repo/os/$arch", dead_port());
    one_call_fails_over(true, "failover7-refused", &dead, None);
}

/// pacman 6, first Server answering 500: one call per file, the failing Server asked once per
/// file.
#[test]
fn pacman6_one_call_moves_past_a_server_that_answers_500() {
    let faults = FaultServer::start(b"unused".to_vec());
    let first = format!("{}/$repo/os/$arch", faults.base(Fault::Status(500)));
    one_call_fails_over(false, "failover6-500", &first, Some(&faults));
}

/// pacman 7, first Server answering 500: one call per file, the failing Server asked once per
/// file.
#[test]
fn pacman7_one_call_moves_past_a_server_that_answers_500() {
    let faults = FaultServer::start(b"unused".to_vec());
    let first = format!("{}/$repo/os/$arch", faults.base(Fault::Status(500)));
    one_call_fails_over(true, "failover7-500", &first, Some(&faults));
}

/// Rewrites the World's pacman.conf with these Server lines for the repository.
fn servers(w: &World, servers: &[String]) {
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let (head, _) = conf.split_once(&format!("[{REPO}]")).expect("repo section");
    let lines: String = servers.iter().map(|s| format!("Server = {s}\n")).collect();
    std::fs::write(&w.pacman_conf, format!("{head}[{REPO}]\n{lines}")).expect("write");
}

/// From the Server pacman gave, only the ones after it are tried, in pacman.conf's order, each
/// resumed where the last one broke off; the error line says whether pacman has another
/// Server to try.
#[test]
fn only_the_servers_after_the_one_pacman_gave_are_tried_in_pacmans_order() {
    let w = World::new("failover-order", false);
    let faults = FaultServer::start(std::fs::read(&w.fx.tiny.path).expect("read tiny"));
    let a = format!("{}/$repo/os/$arch", faults.base(Fault::Status(404)));
    let b = format!("{}/$repo/os/$arch", faults.base(Fault::Status(500)));
    let c = format!("{}/$repo/os/$arch", faults.base(Fault::TruncLying));
    let d = format!("{}/$repo/os/$arch", w.mirror.url());
    servers(&w, &[a.clone(), b.clone(), c, d]);
    let tiny = w.fx.tiny.clone();
    let on = |s: &str| {
        format!(
            "{}/{}",
            s.replace("$repo", REPO).replace("$arch", "x86_64"),
            tiny.filename
        )
    };
    let out = w.out(&format!("{}.part", tiny.filename));

    // pacman gave Server 2: 3 and 4 are tried after it, 1 never.
    let r = w.xfer(&on(&b), &out);
    r.success()
        .stderr_has(&format!(
            "HTTP 500; trying the next Server: {}",
            on(&format!(
                "{}/$repo/os/$arch",
                faults.base(Fault::TruncLying)
            ))
        ))
        .stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);
    assert_eq!(faults.hits(Fault::Status(404)), 0, "{}", faults.log_text());
    assert_eq!(faults.hits(Fault::Status(500)), 1, "{}", faults.log_text());
    assert_eq!(faults.hits(Fault::TruncLying), 1, "{}", faults.log_text());
    // Server 3 cut the file off halfway: Server 4 was asked only for the rest.
    let hits = w.mirror.hits_for(&tiny.filename);
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(
        hits[0].range.as_deref(),
        Some(format!("bytes={}-", tiny.size / 2).as_str()),
        "{}",
        w.mirror.log_text()
    );

    // The last Server failing: nothing after it to try, and the error line says so.
    servers(&w, &[a.clone(), b.clone()]);
    let out = w.out("again.part");
    let r = w.xfer(&on(&b), &out);
    r.failure()
        .one_error_line()
        .stderr_has("HTTP 500")
        .stderr_has(&format!(
            "it was the last Server of [{REPO}], so pacman has no other to try"
        ));
    assert_eq!(faults.hits(Fault::Status(404)), 0, "{}", faults.log_text());

    // From Server 1, with Server 2 failing too: both named, and pacman goes on.
    let out = w.out("third.part");
    let r = w.xfer(&on(&a), &out);
    r.failure()
        .stderr_has("HTTP 404; trying the next Server")
        .stderr_has(&format!(
            "the 1 Server of [{REPO}] after it failed too; pacman will try its next Server"
        ));
}

/// A URL that is none of the repository's Server lines fails alone: the repository's Server
/// (the mirror) is never asked.
#[test]
fn a_url_that_is_no_server_of_the_repository_is_the_only_one_tried() {
    let w = World::new("failover-foreign", false);
    let faults = FaultServer::start(b"unused".to_vec());
    let tiny = w.fx.tiny.clone();
    let out = w.out(&format!("{}.part", tiny.filename));
    let url = format!(
        "{}/elsewhere/{}",
        faults.base(Fault::Status(500)),
        tiny.filename
    );
    let r = w.xfer(&url, &out);
    r.failure()
        .one_error_line()
        .stderr_has("HTTP 500")
        .stderr_has("pacman will try its next Server, if it has one");
    assert!(w.mirror.hits().is_empty(), "{}", w.mirror.log_text());
}

/// Runs `pacxfer --config <World's> ARGS` (the harness's command, its environment cleaned)
/// with `/usr/bin/pacman-conf` replaced, in a mount namespace of pacxfer's own, by a wrapper
/// that logs each run to `log` and then runs a copy of the real program.
fn counting_pacman_conf(w: &World, args: &[&str], log: &Path) -> Run {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let real = w.dir.join("pacman-conf.real");
    let wrapper = w.dir.join("pacman-conf.wrapper");
    if !real.exists() {
        std::fs::copy("/usr/bin/pacman-conf", &real).expect("copy pacman-conf");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
                log.display(),
                real.display()
            ),
        )
        .expect("write wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let wrapper = std::ffi::CString::new(wrapper.as_os_str().as_bytes()).expect("no NUL");
    let mut cmd = crate::harness::util::pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(args);
    // SAFETY: between fork and exec only system calls run, on memory made before the fork.
    unsafe {
        cmd.pre_exec(move || bind_over_pacman_conf(&wrapper));
    }
    run(&mut cmd)
}

/// In the calling process (a child between fork and exec): a private mount namespace in which
/// `file` is bind-mounted over `/usr/bin/pacman-conf`.
fn bind_over_pacman_conf(file: &std::ffi::CStr) -> std::io::Result<()> {
    use std::ffi::{c_char, c_int, c_ulong, c_void};
    extern "C" {
        fn unshare(flags: c_int) -> c_int;
        fn mount(
            source: *const c_char,
            target: *const c_char,
            fstype: *const c_char,
            flags: c_ulong,
            data: *const c_void,
        ) -> c_int;
    }
    const CLONE_NEWNS: c_int = 0x0002_0000;
    const MS_BIND: c_ulong = 4096;
    const MS_REC: c_ulong = 16384;
    const MS_PRIVATE: c_ulong = 1 << 18;
    let check = |rc: c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let none = std::ptr::null();
    // SAFETY: valid NUL-terminated strings and null pointers where the calls allow them.
    unsafe {
        check(unshare(CLONE_NEWNS))?;
        check(mount(
            none,
            c"/".as_ptr(),
            none,
            MS_REC | MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(mount(
            file.as_ptr(),
            c"/usr/bin/pacman-conf".as_ptr(),
            none,
            MS_BIND,
            std::ptr::null(),
        ))
    }
}

/// pacman-conf's refusal (a repository pacman.conf no longer lists) is remembered like its
/// answers: the same lookup and download run pacman-conf no more, until pacman.conf changes.
#[test]
fn pacman_conf_refusals_are_remembered_until_pacman_conf_changes() {
    // The database of a repository pacman.conf no longer lists, still in sync/: `lookup` asks
    // for its Server lines (and a failing download for the Server lines after pacman's URL).
    let w = World::new("conf-refusals", false);
    let sync = w.dbpath.join("sync");
    std::fs::rename(sync.join(format!("{REPO}.db")), sync.join("gone.db")).expect("rename");
    let log = w.dir.join("pacman-conf.log");
    let tiny = w.fx.tiny.clone();
    let asked = || std::fs::read_to_string(&log).unwrap_or_default();
    let count = || asked().lines().count();

    let r = counting_pacman_conf(&w, &["lookup", &tiny.filename], &log);
    r.success().stdout_has("repo:      gone");
    assert!(
        asked().contains("--repo gone Server"),
        "{}",
        r.explain(&format!("pacman-conf was asked:\n{}", asked()))
    );
    // A download from a URL that fails: the later Servers of [gone] are asked for.
    let faults = FaultServer::start(b"unused".to_vec());
    let url = format!(
        "{}/gone/os/x86_64/{}",
        faults.base(Fault::Status(404)),
        tiny.filename
    );
    let out = w.out("1.part");
    let r = counting_pacman_conf(&w, &[&url, out.to_str().expect("utf8")], &log);
    r.failure().one_error_line();

    // Answers and refusals remembered: the same calls run pacman-conf no more.
    let before = count();
    let r = counting_pacman_conf(&w, &["lookup", &tiny.filename], &log);
    r.success().stdout_has("repo:      gone");
    let out = w.out("2.part");
    let r2 = counting_pacman_conf(&w, &[&url, out.to_str().expect("utf8")], &log);
    r2.failure().one_error_line();
    assert_eq!(
        count(),
        before,
        "{}{}",
        r.explain(&format!("pacman-conf ran again:\n{}", asked())),
        r2.explain("")
    );

    // pacman.conf changes: asked again.
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read");
    std::fs::write(&w.pacman_conf, format!("{conf}\n")).expect("write");
    let r = counting_pacman_conf(&w, &["lookup", &tiny.filename], &log);
    r.success();
    assert!(
        count() > before,
        "{}",
        r.explain("pacman-conf not asked again")
    );
}
