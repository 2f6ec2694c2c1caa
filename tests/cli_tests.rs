//! The command line and bad input: every mistake ends in one error line and a non-zero exit.

use crate::util::{pacxfer, run, TestDir};

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
    let r = run(&mut pacxfer());
    assert_eq!(r.code(), Some(2), "{}", r.explain("usage error"));
    let r = run(pacxfer().arg("http://m/a.pkg.tar.zst"));
    assert_eq!(r.code(), Some(2), "{}", r.explain("usage error"));
}

#[test]
fn a_named_config_file_must_exist() {
    let d = TestDir::new("cfg-missing");
    let missing = d.join("nope.conf");
    let r = run(pacxfer()
        .arg("--config")
        .arg(&missing)
        .args(["lookup", "x"]));
    r.failure().one_error_line().stderr_has("nope.conf");
    // The same through the environment.
    let r = run(pacxfer()
        .env("PACXFER_CONFIG", &missing)
        .args(["lookup", "x"]));
    r.failure().one_error_line().stderr_has("nope.conf");
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
    for (i, (text, key)) in cases.iter().enumerate() {
        let conf = d.write(&format!("bad{i}.conf"), text);
        let r = run(pacxfer()
            .arg("--config")
            .arg(&conf)
            .args(["http://127.0.0.1:1/a-1-1-any.pkg.tar.zst"])
            .arg(d.join("out.part")));
        r.failure()
            .one_error_line()
            .stderr_has(key)
            .stderr_has(&format!("bad{i}.conf"));
        assert!(!d.join("out.part").exists(), "no output on a config error");
    }
}

#[test]
fn bad_urls_are_refused() {
    let d = TestDir::new("bad-url");
    let conf = d.write("empty.conf", "");
    for url in ["ftp://m/a.pkg.tar.zst", "not a url", "http://m/dir/"] {
        let r = run(pacxfer()
            .arg("--config")
            .arg(&conf)
            .arg("--dbpath")
            .arg(d.path())
            .arg(url)
            .arg(d.join("o.part")));
        r.failure().one_error_line();
    }
}

#[test]
fn an_output_in_a_missing_directory_is_one_error() {
    let d = TestDir::new("bad-out");
    let conf = d.write("empty.conf", "[gateway]\nenabled = false\n");
    let target = d.write("src/a-1-1-any.pkg.tar.zst", "bytes");
    let r = run(pacxfer()
        .arg("--config")
        .arg(&conf)
        .arg("--dbpath")
        .arg(d.path())
        .arg(format!("file://{}", target.display()))
        .arg(d.join("no/such/dir/o.part")));
    r.failure()
        .one_error_line()
        .stderr_has("no/such/dir/o.part");
}

#[test]
fn lookup_with_no_databases_says_what_to_do() {
    let d = TestDir::new("no-dbs");
    let conf = d.write("empty.conf", "");
    std::fs::create_dir_all(d.join("sync")).expect("mkdir");
    let r = run(pacxfer()
        .arg("--config")
        .arg(&conf)
        .arg("--dbpath")
        .arg(d.path())
        .args(["lookup", "zstd"]));
    r.failure().one_error_line().stderr_has("pacman -Sy");
}

#[test]
fn a_corrupt_database_is_reported_and_the_others_still_work() {
    let d = TestDir::new("corrupt-db");
    let conf = d.write("empty.conf", "");
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
    let r = run(pacxfer()
        .arg("--config")
        .arg(&conf)
        .arg("--dbpath")
        .arg(d.path())
        .args(["lookup", "--json", "ok"]));
    r.success()
        .stdout_has("\"repo\": \"good\"")
        .stderr_has("broken.db")
        .stderr_has("pacman -Syy");
}

/// roff source as plain text: escapes and font changes removed.
fn man_text(name: &str) -> String {
    let raw = std::fs::read_to_string(crate::util::repo_root().join("man").join(name))
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

/// A directory with a config, `sync/` and a copy of the fixture repository's database.
fn with_fixture_db(name: &str, config: &str) -> (TestDir, std::path::PathBuf) {
    let d = TestDir::new(name);
    let conf = d.write(
        "pacxfer.conf",
        format!(
            "dbpath = {:?}\ncache_dir = \"\"\n{config}",
            d.path().display().to_string()
        ),
    );
    std::fs::create_dir_all(d.join("sync")).expect("mkdir sync");
    std::fs::copy(
        crate::fixtures::get().db(),
        d.join(format!("sync/{}.db", crate::fixtures::REPO)),
    )
    .expect("copy db");
    (d, conf)
}

/// `pacxfer --config CONF ARGS...`
fn with_config(conf: &std::path::Path, args: &[&std::ffi::OsStr]) -> crate::util::Run {
    run(pacxfer().arg("--config").arg(conf).args(args))
}

#[test]
fn a_truncated_or_unknown_database_is_named_and_the_others_still_work() {
    let (d, conf) = with_fixture_db("cut-db", "");
    let whole = std::fs::read(crate::fixtures::get().db()).expect("read db");
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
    let conf = d.write("empty.conf", "cache_dir = \"\"\n");
    d.write("sync/core.db", b"\x1f\x8b\x08\x00garbage");
    let r = run(pacxfer()
        .arg("--config")
        .arg(&conf)
        .arg("--dbpath")
        .arg(d.path())
        .args(["lookup", "zstd"]));
    r.failure().stderr_has("core.db").stderr_has("pacman -Sy");
    ends_in_error_naming(&r, "zstd");
}

/// The last line of stderr is the error line, and names `what`.
#[track_caller]
fn ends_in_error_naming(r: &crate::util::Run, what: &str) {
    let last = r.stderr().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("pacxfer: error: ") && last.contains(what),
        "{}",
        r.explain("the error line last")
    );
}

#[test]
fn desc_entries_with_a_bad_checksum_or_size_are_skipped_with_a_warning() {
    let d = TestDir::new("bad-desc");
    let conf = d.write("empty.conf", "cache_dir = \"\"\n");
    let cases = [
        ("badsum", "%SHA256SUM%\nnot-hex\n", "%SHA256SUM%"),
        ("badsize", "%CSIZE%\n12kB\n", "%CSIZE%"),
        (
            "escape",
            "%FILENAME%\n../../escape-1.0-1-any.pkg.tar.zst\n",
            "%FILENAME%",
        ),
    ];
    for (name, extra, why) in cases {
        // One database per case: each entry's warning comes with the first read.
        let dir = format!("{name}-1.0-1");
        let text = if extra.starts_with("%FILENAME%") {
            format!("{extra}\n%NAME%\n{name}\n")
        } else {
            format!("%FILENAME%\n{dir}-any.pkg.tar.zst\n\n%NAME%\n{name}\n\n{extra}")
        };
        d.write(&format!("{name}/staging/{dir}/desc"), text);
        std::fs::create_dir_all(d.join(format!("{name}/sync"))).expect("mkdir sync");
        run(std::process::Command::new("bsdtar")
            .arg("-czf")
            .arg(d.join(format!("{name}/sync/bad.db")))
            .arg("-C")
            .arg(d.join(format!("{name}/staging")))
            .arg(&dir))
        .success();
        let r = run(pacxfer()
            .arg("--config")
            .arg(&conf)
            .arg("--dbpath")
            .arg(d.join(name))
            .args(["fetch", name, "-o"])
            .arg(d.join("out")));
        r.failure()
            .stderr_has(why)
            .stderr_has("skipped")
            .stderr_has(&format!("{name} is not in any sync database"));
    }
    // Nothing was written anywhere, least of all outside the output directory.
    assert!(!d.join("out").exists());
    assert!(!d.path().join("../escape-1.0-1-any.pkg.tar.zst").exists());
}

#[test]
fn an_output_that_is_a_directory_or_in_an_unusable_place_is_one_error() {
    let (d, conf) = with_fixture_db("out-dir", "[gateway]\nenabled = false\n");
    let tiny = &crate::fixtures::get().tiny;
    let url = format!("file://{}", tiny.path.display());
    std::fs::create_dir_all(d.join("adir")).expect("mkdir");
    d.write("afile", "x");
    for out in [d.join("adir"), d.join("afile/o.part")] {
        let r = with_config(&conf, &[url.as_ref(), out.as_os_str()]);
        r.failure()
            .one_error_line()
            .stderr_has(&out.display().to_string());
    }
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_one_error_and_never_a_whole_file() {
    let (d, conf) = with_fixture_db("full-disk", "[gateway]\nenabled = false\n");
    let tiny = &crate::fixtures::get().tiny;
    let url = format!("file://{}", tiny.path.display());
    let disk = d.join("disk");
    std::fs::create_dir_all(&disk).expect("mkdir");
    let out = disk.join("tiny.part");
    let is_root = run(std::process::Command::new("id").arg("-u"))
        .stdout()
        .trim()
        == "0";
    let r = if is_root {
        run(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&disk))
        .success();
        let _mounted = SmallDisk(disk.clone());
        with_config(&conf, &[url.as_ref(), out.as_os_str()])
    } else {
        // Without root: a file size limit, its signal ignored so writes fail with EFBIG.
        run(std::process::Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 64; exec \"$@\"")
            .arg("sh")
            .arg(crate::util::pacxfer_bin())
            .arg("--config")
            .arg(&conf)
            .arg(&url)
            .arg(&out))
    };
    r.failure()
        .one_error_line()
        .stderr_has("is the disk full?")
        .stderr_has("tiny.part");
    let left = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(left < tiny.size, "{}", r.explain("a whole-sized file left"));
}

#[test]
fn an_unreadable_config_and_non_http_gateways_are_one_error() {
    let d = TestDir::new("cfg-more");
    std::fs::create_dir_all(d.join("conf.d")).expect("mkdir");
    let r = with_config(&d.join("conf.d"), &["lookup".as_ref(), "x".as_ref()]);
    r.failure()
        .one_error_line()
        .stderr_has("cannot read config file")
        .stderr_has("conf.d");
    for url in [
        "file:///srv/ipfs",
        "127.0.0.1:8080",
        "http://",
        "ipfs://bafy",
    ] {
        let conf = d.write("gw.conf", format!("[gateway]\nurl = {url:?}\n"));
        let r = with_config(&conf, &["lookup".as_ref(), "x".as_ref()]);
        r.failure().one_error_line().stderr_has("gateway.url");
    }
}

#[test]
fn without_pacman_conf_fetch_by_name_and_lookup_say_what_is_missing() {
    let (d, conf) = with_fixture_db(
        "no-pacman-conf",
        &format!(
            "[gateway]\nurl = \"http://127.0.0.1:{}\"\n",
            crate::util::dead_port()
        ),
    );
    let fetch = |args: &[&str]| {
        run(pacxfer()
            .env("PATH", d.join("empty-path"))
            .arg("--config")
            .arg(&conf)
            .args(args))
    };
    let r = fetch(&["fetch", "other", "-o", &d.path().display().to_string()]);
    r.failure().stderr_has("pacman-conf");
    ends_in_error_naming(&r, "other");
    assert!(!d.join(&crate::fixtures::get().other.filename).exists());
    // lookup needs no Server line: it still answers.
    let r = fetch(&["lookup", "other"]);
    r.success().stdout_has("repo:      testrepo");
}

#[test]
fn urls_that_would_leave_the_output_directory_are_refused() {
    let d = TestDir::new("traversal");
    let conf = d.write("empty.conf", "cache_dir = \"\"\n");
    std::fs::create_dir_all(d.join("out")).expect("mkdir");
    for url in [
        "http://127.0.0.1:1/repo/..",
        "http://127.0.0.1:1/repo/%2e%2e",
        "http://127.0.0.1:1/repo/..%2f..%2fescape.pkg.tar.zst",
        "http://127.0.0.1:1/repo/a%5cb.pkg.tar.zst",
        "http://127.0.0.1:1/repo/a%00b.pkg.tar.zst",
    ] {
        let r = run(pacxfer()
            .arg("--config")
            .arg(&conf)
            .arg("--dbpath")
            .arg(d.path())
            .args(["fetch", url, "-o"])
            .arg(d.join("out")));
        r.failure()
            .one_error_line()
            .stderr_has("does not end in a file name");
    }
    let left: Vec<_> = std::fs::read_dir(d.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "only empty.conf and out/: {left:?}");
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
            .arg(crate::util::repo_root().join("man").join(page))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("PAGER", "cat"));
        r.success();
        assert_eq!(r.stderr().trim(), "", "{}", r.explain(page));
        assert!(r.stdout().contains("pacxfer"), "{page} rendered empty");
    }
}
