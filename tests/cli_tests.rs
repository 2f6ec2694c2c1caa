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

#[test]
fn man_pages_and_help_name_every_option_and_key() {
    let help_run = run(pacxfer().arg("--help"));
    let help = help_run.success().stdout();
    let man1 = man_text("pacxfer.1");
    for opt in [
        "--config",
        "--dbpath",
        "--verbose",
        "--quiet",
        "fetch",
        "lookup",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
        assert!(man1.contains(opt), "pacxfer.1 lacks {opt}");
    }
    for word in [
        "--json",
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
