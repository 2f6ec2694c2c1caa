//! The command line and bad input: every mistake ends in one error line and a non-zero exit.
//! Each refusal is shown beside the same call without the mistake, which gets past it.
//!
//! Every configuration here owns what pacxfer reads ([`own_config`]): its database directory,
//! its pacman.conf, no cache or its own, and a gateway and node API where nothing listens.

use std::path::{Path, PathBuf};

use crate::harness::util::{pacxfer, run, test_env, Run, TestDir};

/// Writes `<d>/own.conf`: `dbpath` = `d`, `pacman_conf` = `<d>/pacman.conf` (made here when
/// missing: `[options]` with that DBPath, no repository), `cache_dir = ""` (nothing kept), a
/// gateway and a node API on a port where nothing listens, and `gateway` lines under
/// `[gateway]`.
fn own_config(d: &TestDir, gateway: &str) -> PathBuf {
    let pacman_conf = d.join("pacman.conf");
    if !pacman_conf.exists() {
        d.write(
            "pacman.conf",
            format!("[options]\nDBPath = {}/\n", d.path().display()),
        );
    }
    let nowhere = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    d.write(
        "own.conf",
        format!(
            "dbpath = {:?}\npacman_conf = {:?}\ncache_dir = \"\"\n\n[gateway]\nurl = {nowhere:?}\n\
             {gateway}\n\n[share]\napi = {nowhere:?}\n",
            d.path().display().to_string(),
            pacman_conf.display().to_string(),
        ),
    )
}

/// `pacxfer --config CONF ARGS...`
fn with_config(conf: &Path, args: &[&std::ffi::OsStr]) -> Run {
    run(pacxfer().arg("--config").arg(conf).args(args))
}

/// The files below `dir`, as paths relative to it (links not followed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(dir).expect("below").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// Every pacxfer a test runs sees only the test's environment, and a configuration's
/// `cache_dir` is what pacxfer uses: `""` keeps nothing, a named directory is used, and only
/// a configuration that names none is given the test's own (never the machine's).
#[test]
fn the_harness_gives_pacxfer_nothing_of_the_machine() {
    let r = run(test_env(&mut std::process::Command::new("env")));
    let mut names: Vec<String> = r
        .success()
        .stdout()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["HOME", "LANG", "LC_ALL", "PACXFER_CONFIG", "PATH"],
        "{}",
        r.explain("the environment")
    );
    let home = r
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("HOME=").map(PathBuf::from))
        .expect("HOME");
    assert!(
        home.starts_with(crate::harness::util::own_dir()),
        "HOME {} is not the test's",
        home.display()
    );

    let d = TestDir::new("harness");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    std::fs::copy(
        crate::harness::fixtures::get().db(),
        d.join(format!("sync/{}.db", crate::harness::fixtures::REPO)),
    )
    .expect("copy db");
    let tiny = &crate::harness::fixtures::get().tiny.filename;
    let lookup =
        |conf: &Path| with_config(conf, &["-v".as_ref(), "lookup".as_ref(), tiny.as_ref()]);
    // No cache: pacxfer keeps no index, and nothing appears in the test's directories.
    let conf = own_config(&d, "");
    let before = (
        files_under(d.path()),
        files_under(&crate::harness::util::own_dir()),
    );
    lookup(&conf)
        .success()
        .stderr_has("no index kept; searched");
    assert_eq!(
        (
            files_under(d.path()),
            files_under(&crate::harness::util::own_dir())
        ),
        before,
        "a call with cache_dir = \"\" wrote a file"
    );
    // A named cache is used.
    let text = std::fs::read_to_string(&conf).expect("read config");
    let named = d.join("named-cache");
    let conf = d.write(
        "named.conf",
        text.replace(
            "cache_dir = \"\"",
            &format!("cache_dir = {:?}", named.display().to_string()),
        ),
    );
    lookup(&conf)
        .success()
        .stderr_has(&format!("indexed into {}", named.display()));
    // None named: the test's own, never /var/cache/pacxfer or root's ~/.cache.
    let conf = d.write("unnamed.conf", text.replace("cache_dir = \"\"\n", ""));
    let own = crate::harness::util::own_dir().join("cache");
    lookup(&conf)
        .success()
        .stderr_has(&format!("indexed into {}", own.display()));
}

#[test]
fn help_shows_the_pacman_conf_line() {
    let r = run(pacxfer().arg("--help"));
    r.success()
        .stdout_has("XferCommand = /usr/bin/pacxfer %u %o")
        .stdout_has("fetch")
        .stdout_has("lookup")
        .stdout_has("--config")
        .stdout_has("--dbpath");
}

#[test]
fn missing_arguments_are_a_usage_error() {
    for args in [&[][..], &["http://m/a.pkg.tar.zst"][..]] {
        let r = run(pacxfer().args(args));
        assert_eq!(r.code(), Some(2), "{}", r.explain("usage error"));
        r.stderr_has("required arguments were not provided")
            .stderr_has("<OUTPUT>")
            .stderr_has("Usage: pacxfer ");
    }
}

#[test]
fn a_named_config_file_must_exist() {
    let d = TestDir::new("cfg-missing");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    let missing = d.join("nope.conf");
    let r = run(pacxfer()
        .arg("--config")
        .arg(&missing)
        .args(["lookup", "x"]));
    r.failure()
        .one_error_line()
        .stderr_has("cannot read config file")
        .stderr_has("nope.conf");
    // The same through the environment.
    let r = run(pacxfer()
        .env("PACXFER_CONFIG", &missing)
        .args(["lookup", "x"]));
    r.failure()
        .one_error_line()
        .stderr_has("cannot read config file")
        .stderr_has("nope.conf");
    // Once it exists, both are read: the call gets as far as the (empty) databases.
    let text = std::fs::read_to_string(own_config(&d, "")).expect("read config");
    std::fs::write(&missing, text).expect("write config");
    for r in [
        run(pacxfer()
            .arg("--config")
            .arg(&missing)
            .args(["lookup", "x"])),
        run(pacxfer()
            .env("PACXFER_CONFIG", &missing)
            .args(["lookup", "x"])),
    ] {
        r.failure().one_error_line().stderr_has(&format!(
            "no sync databases in {}",
            d.join("sync").display()
        ));
    }
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let d = TestDir::new("cfg-bad");
    let cases = [
        ("[gateway]\nurll = \"http://x\"\n", "urll"),
        ("[mirror]\nstall_timeout = 10\n", "stall_timeout"),
        ("[gateway]\nconnect_timeout = \"fast\"\n", "connect_timeout"),
        ("[gateway]\nurl = \"ipfs://x\"\n", "gateway.url"),
        ("[gateway]\npaths = [\"/ipfs/{hash}\"]\n", "{hash}"),
        ("[gateway\n", "line 1"),
    ];
    let call = |conf: &Path| {
        run(pacxfer()
            .arg("--config")
            .arg(conf)
            .args(["http://127.0.0.1:1/a-1-1-any.pkg.tar.zst"])
            .arg(d.join("out.part")))
    };
    for (i, (text, key)) in cases.iter().enumerate() {
        let conf = d.write(&format!("bad{i}.conf"), text);
        call(&conf)
            .failure()
            .one_error_line()
            .stderr_has(key)
            .stderr_has(&format!("bad{i}.conf"));
        assert!(!d.join("out.part").exists(), "no output on a config error");
    }
    // A good configuration: the same call gets past it, to the download.
    let r = call(&own_config(&d, ""));
    r.failure()
        .one_error_line()
        .stderr_has("http://127.0.0.1:1/a-1-1-any.pkg.tar.zst: cannot connect");
    assert!(
        !r.stderr().contains(".conf"),
        "{}",
        r.explain("a config error")
    );
}

#[test]
fn bad_urls_are_refused() {
    let d = TestDir::new("bad-url");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    let conf = own_config(&d, "");
    let out = d.join("o.part");
    let call = |url: &str| with_config(&conf, &[url.as_ref(), out.as_os_str()]);
    for (url, why) in [
        (
            "ftp://m/a.pkg.tar.zst",
            "pacxfer downloads http://, https:// and file:// URLs",
        ),
        (
            "not a url",
            "pacxfer downloads http://, https:// and file:// URLs",
        ),
        ("http://m/dir/", "does not end in a file name"),
    ] {
        call(url)
            .failure()
            .one_error_line()
            .stderr_has(&format!("URL {url:?}"))
            .stderr_has(why);
        assert!(!out.exists(), "an output for {url}");
    }
    // A URL with a file name, on a port where nothing listens: taken, and tried.
    call("http://127.0.0.1:1/m/a-1-1-any.pkg.tar.zst")
        .failure()
        .one_error_line()
        .stderr_has("could not download a-1-1-any.pkg.tar.zst")
        .stderr_has("cannot connect");
}

#[test]
fn an_output_in_a_missing_directory_is_one_error() {
    let d = TestDir::new("bad-out");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    let conf = own_config(&d, "enabled = false");
    let target = d.write("src/a-1-1-any.pkg.tar.zst", "bytes");
    let url = format!("file://{}", target.display());
    let missing = d.join("no/such/dir/o.part");
    with_config(&conf, &[url.as_ref(), missing.as_os_str()])
        .failure()
        .one_error_line()
        .stderr_has("cannot open output file")
        .stderr_has("no/such/dir/o.part");
    assert!(!d.join("no").exists(), "the missing directory was made");
    // The same file into a directory that exists.
    std::fs::create_dir_all(d.join("there")).expect("mkdir");
    let out = d.join("there/o.part");
    with_config(&conf, &[url.as_ref(), out.as_os_str()]).success();
    assert_eq!(std::fs::read(&out).expect("read output"), b"bytes");
}

#[test]
fn lookup_with_no_databases_says_what_to_do() {
    let d = TestDir::new("no-dbs");
    let conf = own_config(&d, "");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir");
    let lookup = || with_config(&conf, &["lookup".as_ref(), "tiny".as_ref()]);
    lookup()
        .failure()
        .one_error_line()
        .stderr_has(&format!(
            "no sync databases in {}",
            d.join("sync").display()
        ))
        .stderr_has("run `pacman -Sy` first");
    // With a database there, the same lookup answers.
    std::fs::copy(
        crate::harness::fixtures::get().db(),
        d.join(format!("sync/{}.db", crate::harness::fixtures::REPO)),
    )
    .expect("copy db");
    lookup()
        .success()
        .stdout_has(&crate::harness::fixtures::get().tiny.sha256);
}

#[test]
fn a_corrupt_database_is_reported_and_the_others_still_work() {
    let d = TestDir::new("corrupt-db");
    let conf = own_config(&d, "");
    d.write("sync/broken.db", "<html>this is not a database</html>");
    // A hand-made uncompressed database with one entry.
    let desc = "%FILENAME%\nok-1.0-1-any.pkg.tar.zst\n\n%NAME%\nok\n\n%VERSION%\n1.0-1\n\n\
                %CSIZE%\n5\n\n%SHA256SUM%\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n";
    let staging = d.join("staging/ok-1.0-1");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::write(staging.join("desc"), desc).expect("write desc");
    let r = run(std::process::Command::new("bsdtar")
        .arg("-cf")
        .arg(d.join("sync/good.db"))
        .arg("-C")
        .arg(d.join("staging"))
        .arg("ok-1.0-1"));
    r.success();
    let r = with_config(
        &conf,
        &["lookup".as_ref(), "--json".as_ref(), "ok".as_ref()],
    );
    r.success()
        .stdout_has("\"repo\": \"good\"")
        .stdout_has("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        .stderr_has("broken.db")
        .stderr_has("pacman -Syy");
    // Alone, the corrupt database answers nothing.
    std::fs::remove_file(d.join("sync/good.db")).expect("rm");
    with_config(&conf, &["lookup".as_ref(), "ok".as_ref()])
        .failure()
        .stderr_has("broken.db");
}

/// roff source as plain text: escapes and font changes removed.
fn man_text(name: &str) -> String {
    let raw = std::fs::read_to_string(crate::harness::util::repo_root().join("man").join(name))
        .expect("read man page");
    raw.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
}

/// Every subcommand and long option clap knows, as (subcommand or "", --option).
fn clap_words() -> Vec<(String, String)> {
    let cli = <pacxfer::cli::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    let options = |c: &clap::Command| -> Vec<String> {
        c.get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help" && *l != "version")
            .map(|l| format!("--{l}"))
            .collect()
    };
    for opt in options(&cli) {
        out.push((String::new(), opt));
    }
    for sub in cli.get_subcommands() {
        out.push((sub.get_name().to_string(), String::new()));
        for opt in options(sub) {
            out.push((sub.get_name().to_string(), opt));
        }
    }
    out
}

#[test]
fn man_pages_and_help_name_every_option_and_key() {
    let help_run = run(pacxfer().arg("--help"));
    let help = help_run.success().stdout();
    let man1 = man_text("pacxfer.1");
    for (sub, opt) in clap_words() {
        let word = if opt.is_empty() { &sub } else { &opt };
        assert!(man1.contains(word.as_str()), "pacxfer.1 lacks {sub} {opt}");
        if sub.is_empty() {
            assert!(help.contains(word.as_str()), "--help lacks {word}");
        } else if opt.is_empty() {
            assert!(help.contains(sub.as_str()), "--help lacks {sub}");
        } else {
            let sub_help = run(pacxfer().args([&sub, "--help"])).success().stdout();
            assert!(sub_help.contains(opt.as_str()), "{sub} --help lacks {opt}");
        }
    }
    for word in [
        "-o PATH",
        "PACXFER_CONFIG",
        "PACXFER_DBPATH",
        "HTTP_USER_AGENT",
    ] {
        assert!(man1.contains(word), "pacxfer.1 lacks {word}");
    }
    // The example config is checked key by key in config.rs's unit tests.
    let man5 = man_text("pacxfer.conf.5");
    for key in pacxfer::config::KEYS {
        assert!(
            man5.contains(&format!("{key} =")),
            "pacxfer.conf.5 lacks {key}"
        );
    }
    for key in [
        "stall_timeout",
        "network_timeout",
        "raw_block_max",
        "max_redirects",
    ] {
        assert!(
            man5.contains(&format!("{key} =")),
            "pacxfer.conf.5 lacks {key}"
        );
    }
}

/// A directory with its own config ([`own_config`], `gateway` lines under `[gateway]`),
/// `sync/` and a copy of the fixture repository's database.
fn with_fixture_db(name: &str, gateway: &str) -> (TestDir, PathBuf) {
    let d = TestDir::new(name);
    let conf = own_config(&d, gateway);
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    std::fs::copy(
        crate::harness::fixtures::get().db(),
        d.join(format!("sync/{}.db", crate::harness::fixtures::REPO)),
    )
    .expect("copy db");
    (d, conf)
}

#[test]
fn a_truncated_or_unknown_database_is_named_and_the_others_still_work() {
    let (d, conf) = with_fixture_db("cut-db", "");
    let whole = std::fs::read(crate::harness::fixtures::get().db()).expect("read db");
    d.write("sync/cut.db", &whole[..whole.len() / 2]);
    d.write("sync/zip.db", b"PK\x03\x04\x14\x00\x00\x00 not a database");
    d.write("sync/empty.db", b"");
    let r = with_config(&conf, &["lookup".as_ref(), "tiny".as_ref()]);
    r.success()
        .stdout_has("repo:      testrepo")
        .stderr_has("cut.db")
        .stderr_has("zip.db")
        .stderr_has("starts with 504b0304")
        .stderr_has("pacman -Syy");
    assert!(
        !r.stderr().contains("panicked"),
        "{}",
        r.explain("no panic")
    );
    // Each problem is one line naming its file; a 0-byte database (an interrupted download)
    // is one of them.
    r.stderr_has("empty.db is empty");
    for line in r.stderr().lines().filter(|l| l.contains("sync database")) {
        assert!(
            line.contains("cut.db") || line.contains("zip.db") || line.contains("empty.db"),
            "{}",
            r.explain("stray line")
        );
    }
}

#[test]
fn a_sync_dir_of_only_broken_databases_fails_with_one_line_each() {
    let d = TestDir::new("only-broken");
    let conf = own_config(&d, "");
    d.write("sync/core.db", b"\x1f\x8b\x08\x00garbage");
    d.write("sync/extra.db", b"PK\x03\x04 not a database");
    let r = with_config(&conf, &["lookup".as_ref(), "zstd".as_ref()]);
    r.failure().stderr_has("pacman -Sy");
    ends_in_error_naming(&r, "zstd");
    // One line for each database, and the error line: nothing else.
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.explain("three lines"));
    for db in ["core.db", "extra.db"] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(db)).count(),
            1,
            "{}",
            r.explain(&format!("one line naming {db}"))
        );
    }
}

/// The last line of stderr is the error line, and names `what`.
#[track_caller]
fn ends_in_error_naming(r: &Run, what: &str) {
    let last = r.stderr().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("pacxfer: error: ") && last.contains(what),
        "{}",
        r.explain("the error line last")
    );
}

/// Each bad entry is passed over with a warning naming the field, and only it: a good entry
/// of the same database is still found.
#[test]
fn desc_entries_with_a_bad_checksum_or_size_are_skipped_with_a_warning() {
    let d = TestDir::new("bad-desc");
    let conf = own_config(&d, "");
    let cases = [
        ("badsum", "%SHA256SUM%\nnot-hex\n", "%SHA256SUM%"),
        ("badsize", "%CSIZE%\n12kB\n", "%CSIZE%"),
        (
            "escape",
            "%FILENAME%\n../../escape-1.0-1-any.pkg.tar.zst\n",
            "%FILENAME%",
        ),
    ];
    let good = "%FILENAME%\ngood-1.0-1-any.pkg.tar.zst\n\n%NAME%\ngood\n\n%CSIZE%\n5\n\n\
                %SHA256SUM%\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n";
    for (name, extra, why) in cases {
        // One database per case: each entry's warning comes with the first read.
        let dir = format!("{name}-1.0-1");
        let text = if extra.starts_with("%FILENAME%") {
            format!("{extra}\n%NAME%\n{name}\n")
        } else {
            format!("%FILENAME%\n{dir}-any.pkg.tar.zst\n\n%NAME%\n{name}\n\n{extra}")
        };
        d.write(&format!("{name}/staging/{dir}/desc"), text);
        d.write(&format!("{name}/staging/good-1.0-1/desc"), good);
        std::fs::create_dir_all(d.join(format!("{name}/sync"))).expect("mkdir sync");
        run(std::process::Command::new("bsdtar")
            .arg("-czf")
            .arg(d.join(format!("{name}/sync/bad.db")))
            .arg("-C")
            .arg(d.join(format!("{name}/staging")))
            .arg(&dir)
            .arg("good-1.0-1"))
        .success();
        let with_db = |args: &[&str]| {
            run(pacxfer()
                .arg("--config")
                .arg(&conf)
                .arg("--dbpath")
                .arg(d.join(name))
                .args(args))
        };
        let r = with_db(&["fetch", name, "-o", d.join("out").to_str().expect("utf8")]);
        r.failure()
            .stderr_has(why)
            .stderr_has("skipped")
            .stderr_has(&format!("{name} is not in any sync database"));
        with_db(&["lookup", "good"])
            .success()
            .stdout_has("good-1.0-1-any.pkg.tar.zst");
    }
    // Nothing was written anywhere, least of all outside the output directory.
    assert!(!d.join("out").exists());
    assert!(!d.path().join("../escape-1.0-1-any.pkg.tar.zst").exists());
}

#[test]
fn an_output_that_is_a_directory_or_in_an_unusable_place_is_one_error() {
    let (d, conf) = with_fixture_db("out-dir", "enabled = false");
    let tiny = &crate::harness::fixtures::get().tiny;
    let url = format!("file://{}", tiny.path.display());
    std::fs::create_dir_all(d.join("adir")).expect("mkdir");
    d.write("afile", "x");
    for out in [d.join("adir"), d.join("afile/o.part")] {
        let r = with_config(&conf, &[url.as_ref(), out.as_os_str()]);
        r.failure()
            .one_error_line()
            .stderr_has(&out.display().to_string());
    }
    assert_eq!(std::fs::read(d.join("afile")).expect("read"), b"x");
    // A file in a directory: the same download succeeds.
    let out = d.join("adir/o.part");
    let r = with_config(&conf, &[url.as_ref(), out.as_os_str()]);
    r.success();
    assert_eq!(
        crate::harness::util::sha256_hex(&out),
        tiny.sha256,
        "{}",
        r.explain("the file")
    );
}

/// A tmpfs of `size` mounted on `dir` for one test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mkdir");
        run(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir))
        .success();
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk (a 64 KiB tmpfs for a package of about 150 KiB) is one error line, and what is
/// left is shorter than the file; the same download on a 1 MiB tmpfs succeeds. No cache is
/// configured, so no earlier run's kept bytes take part.
#[test]
fn a_full_disk_is_one_error_and_never_a_whole_file() {
    let (d, conf) = with_fixture_db("full-disk", "enabled = false");
    let tiny = &crate::harness::fixtures::get().tiny;
    assert!(tiny.size > 64 * 1024, "tiny must not fit in 64 KiB");
    let url = format!("file://{}", tiny.path.display());
    let is_root = rustix::process::geteuid().as_raw() == 0;
    let call = |disk: &Path| {
        let out = disk.join("tiny.part");
        if is_root {
            with_config(&conf, &[url.as_ref(), out.as_os_str()])
        } else {
            // Without root: a file size limit, its signal ignored so writes fail with EFBIG.
            run(crate::harness::util::pacxfer_via(&[
                "sh",
                "-c",
                "trap '' XFSZ; ulimit -f 64; exec \"$@\"",
                "sh",
            ])
            .arg("--config")
            .arg(&conf)
            .arg(&url)
            .arg(&out))
        }
    };
    let full = d.join("full");
    let r = {
        let _mounted = is_root.then(|| SmallDisk::mount(&full, "64k"));
        std::fs::create_dir_all(&full).expect("mkdir");
        let r = call(&full);
        let left = std::fs::metadata(full.join("tiny.part"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(left < tiny.size, "{}", r.explain("a whole-sized file left"));
        r
    };
    r.failure()
        .one_error_line()
        .stderr_has("is the disk full?")
        .stderr_has("tiny.part");
    if is_root {
        let roomy = d.join("roomy");
        let _mounted = SmallDisk::mount(&roomy, "1m");
        let r = call(&roomy);
        r.success();
        assert_eq!(
            crate::harness::util::sha256_hex(&roomy.join("tiny.part")),
            tiny.sha256,
            "{}",
            r.explain("the file")
        );
    }
}

#[test]
fn an_unreadable_config_and_non_http_gateways_are_one_error() {
    let d = TestDir::new("cfg-more");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    std::fs::create_dir_all(d.join("conf.d")).expect("mkdir");
    let r = with_config(&d.join("conf.d"), &["lookup".as_ref(), "x".as_ref()]);
    r.failure()
        .one_error_line()
        .stderr_has("cannot read config file")
        .stderr_has("conf.d");
    let base = std::fs::read_to_string(own_config(&d, "")).expect("read config");
    let (head, _) = base.split_once("url = ").expect("gateway url line");
    let gateway = |url: &str| {
        let rest = base[head.len()..].split_once('\n').expect("line").1;
        d.write("gw.conf", format!("{head}url = {url:?}\n{rest}"))
    };
    for url in [
        "file:///srv/ipfs",
        "127.0.0.1:8080",
        "http://",
        "ipfs://bafy",
    ] {
        let r = with_config(&gateway(url), &["lookup".as_ref(), "x".as_ref()]);
        r.failure().one_error_line().stderr_has("gateway.url");
    }
    // An http:// gateway in the same file: the lookup gets past the config.
    let r = with_config(
        &gateway("http://127.0.0.1:8080"),
        &["lookup".as_ref(), "x".as_ref()],
    );
    r.failure().one_error_line().stderr_has("no sync databases");
}

/// pacman-conf is really out of reach (an empty /usr/bin in a private mount namespace, and a
/// PATH with nothing in it): `fetch` by name, which needs pacman's Server lines, says so and
/// writes nothing; `lookup` still answers. With pacman-conf there, the same fetch succeeds.
#[test]
fn without_pacman_conf_fetch_by_name_and_lookup_say_what_is_missing() {
    let (d, conf) = with_fixture_db("no-pacman-conf", "");
    let fx = crate::harness::fixtures::get();
    crate::harness::fixtures::copy_tree(&fx.root, &d.join("mirror"));
    let mirror = crate::harness::httpd::Mirror::serve(&d.join("mirror"));
    d.write(
        "pacman.conf",
        format!(
            "[options]\nDBPath = {}/\nArchitecture = x86_64\n\n[{}]\nServer = {}/$repo/os/$arch\n",
            d.path().display(),
            crate::harness::fixtures::REPO,
            mirror.url()
        ),
    );
    let other = &fx.other;
    let fetched = d.join("fetched");
    std::fs::create_dir_all(&fetched).expect("mkdir");
    let fetch = ["fetch", "other", "-o", fetched.to_str().expect("utf8")];

    let empty_bin = d.join("empty");
    std::fs::create_dir_all(&empty_bin).expect("mkdir");
    let without = |args: &[&str]| {
        run(
            crate::harness::util::pacxfer_with_mounts(&[crate::harness::util::Mount::Empty(
                Path::new("/usr/bin"),
            )])
            .env("PATH", &empty_bin)
            .arg("--config")
            .arg(&conf)
            .args(args),
        )
    };
    let r = without(&fetch);
    r.failure().stderr_has("cannot run pacman-conf");
    ends_in_error_naming(&r, "other");
    assert!(
        files_under(&fetched).is_empty(),
        "{}",
        r.explain("a file was written")
    );
    assert!(mirror.hits().is_empty(), "{}", mirror.log_text());
    // lookup needs no Server line: it still answers.
    let r = without(&["lookup", "other"]);
    r.success().stdout_has("repo:      testrepo");

    // With pacman-conf: the Server line is found and the mirror serves.
    let r = run(pacxfer().arg("--config").arg(&conf).args(fetch));
    r.success();
    assert_eq!(
        crate::harness::util::sha256_hex(&fetched.join(&other.filename)),
        other.sha256,
        "{}",
        r.explain("fetched")
    );
    assert_eq!(
        mirror.hits_for(&other.filename).len(),
        1,
        "{}",
        mirror.log_text()
    );
}

#[test]
fn urls_that_would_leave_the_output_directory_are_refused() {
    let d = TestDir::new("traversal");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    let conf = own_config(&d, "");
    std::fs::create_dir_all(d.join("out")).expect("mkdir");
    let before = files_under(d.path());
    let fetch = |url: &str| {
        run(pacxfer()
            .arg("--config")
            .arg(&conf)
            .args(["fetch", url, "-o"])
            .arg(d.join("out")))
    };
    for url in [
        "http://127.0.0.1:1/repo/..",
        "http://127.0.0.1:1/repo/%2e%2e",
        "http://127.0.0.1:1/repo/..%2f..%2fescape.pkg.tar.zst",
        "http://127.0.0.1:1/repo/a%5cb.pkg.tar.zst",
        "http://127.0.0.1:1/repo/a%00b.pkg.tar.zst",
    ] {
        fetch(url)
            .failure()
            .one_error_line()
            .stderr_has("does not end in a file name");
    }
    assert_eq!(files_under(d.path()), before, "a file was written");
    assert!(!d.path().join("../escape.pkg.tar.zst").exists());
    // A plain file name is taken, and tried.
    fetch("http://127.0.0.1:1/repo/a-1-1-any.pkg.tar.zst")
        .failure()
        .one_error_line()
        .stderr_has("cannot connect");
}

/// The completion scripts come from the same definition as `--help`: each names every
/// subcommand and option, and each shell accepts its script.
#[test]
fn completions_cover_every_subcommand_and_option() {
    let dir = TestDir::new("completions");
    for (shell, check) in [
        ("bash", vec!["bash", "-n"]),
        ("zsh", vec!["zsh", "-n"]),
        ("fish", vec!["fish", "--no-execute"]),
    ] {
        let r = run(pacxfer().args(["completions", shell]));
        let script = r.success().stdout();
        for (sub, opt) in clap_words() {
            let word = if opt.is_empty() { &sub } else { &opt };
            // fish names options without their dashes.
            let bare = word.trim_start_matches('-');
            assert!(
                script.contains(word.as_str()) || (shell == "fish" && script.contains(bare)),
                "{shell} completion lacks {sub} {opt}"
            );
        }
        let path = dir.write(&format!("pacxfer.{shell}"), script);
        let mut cmd = std::process::Command::new(check[0]);
        cmd.args(&check[1..]).arg(&path);
        run(&mut cmd).success();
    }
}

/// The man pages render with man-db and groff without a warning.
#[test]
fn man_pages_render_without_warnings() {
    for page in ["pacxfer.1", "pacxfer.conf.5"] {
        let r = run(std::process::Command::new("man")
            .args(["--warnings", "-l"])
            .arg(crate::harness::util::repo_root().join("man").join(page))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("PAGER", "cat"));
        r.success();
        assert_eq!(r.stderr().trim(), "", "{}", r.explain(page));
        assert!(r.stdout().contains("pacxfer"), "{page} rendered empty");
    }
}
