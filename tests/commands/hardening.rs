//! The commands against hostile input and a full disk's kin: names that would be paths, a
//! node API (or whoever answers on its port) sending huge answers and huge error messages, a
//! cluster reporting a flood of failed peers, numbers beyond any clock, a damaged download
//! log, a line on standard input longer than memory should hold, and a download that fails
//! before its first byte. Each refusal comes with its control: the same run with sane input
//! does the work.
//!
//! The hostile API and cluster here are a fault server of this file's own: they answer every
//! request with one canned reply, as anybody listening on the node's port could.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::harness::util::Run;
use crate::harness::world::World;
use crate::publish::runs::{publish, repo_dir, repo_tool, summary};

/// The most memory (max RSS) a bounded run may take: pacxfer itself needs about 10 MB; the
/// answers here would cost from 1 to 1.5 GB parsed whole.
const RSS_MAX_KB: u64 = 150 * 1024;

/// A server answering every request with `reply(request line)`: its URL.
fn hostile(reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    crate::harness::canned::Canned::start(move |line| Some(reply(line))).url
}

/// An HTTP answer with a JSON body.
fn answer(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Points the world's `[share] api` at `api`.
pub(crate) fn use_api(w: &World, api: &str) {
    let text = std::fs::read_to_string(&w.config).expect("read config");
    assert!(
        text.lines().any(|l| l.starts_with("api = ")),
        "no [share] api line in\n{text}"
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("api = ") {
                format!("api = {api:?}")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&w.config, text).expect("write config");
}

/// What writes a run's standard input.
type Feed<'a> = &'a dyn Fn(&mut dyn Write);

/// Runs `cmd` under GNU time: its result and its peak memory (max RSS, KiB).
fn measured(cmd: &mut Command, dir: &Path, stdin: Option<Feed<'_>>) -> (Run, u64) {
    let report = dir.join("time.out");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    // The harness's environment and nothing of the machine's: `cmd` was made with a cleared
    // environment and the test's own variables, which are all it names.
    timed.env_clear();
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let cmdline = format!("{timed:?}");
    let mut child = timed
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/time (Debian package time, installed by contrib/deps.sh)");
    if let Some(feed) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        feed(&mut pipe);
    }
    let output = child.wait_with_output().expect("wait");
    let rss = std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no max RSS from {cmdline}"));
    (Run { cmdline, output }, rss)
}

/// `pacxfer --config <world> ARGS` as `World::pacxfer` runs it.
fn pacxfer_cmd(w: &World, args: &[&str]) -> Command {
    let mut cmd = crate::harness::util::pacxfer();
    cmd.arg("--config").arg(&w.config).args(args);
    cmd
}

/// Every line of standard error is short: no remote text was printed whole.
#[track_caller]
fn short_lines(r: &Run, max_lines: usize) {
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() <= max_lines && lines.iter().all(|l| l.len() <= 600),
        "{} lines, the longest {} bytes: {}",
        lines.len(),
        lines.iter().map(|l| l.len()).max().unwrap_or(0),
        err.chars().take(2000).collect::<String>()
    );
}

#[test]
fn key_and_repository_names_that_are_paths_are_refused_before_the_node_is_asked() {
    let w = World::new("names-as-paths", true);
    // Something else of the node's MFS, which a key named `.` or `..` would have replaced.
    w.node().rpc("files/mkdir?arg=/keepme&parents=true");
    let mfs_root = || -> Vec<String> {
        let ls = w.node().rpc("files/ls?arg=/");
        ls["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["Name"].as_str().map(str::to_string))
            .collect()
    };
    // Whoever listens on the node's API port, counting what it is asked: here, a server of this
    // file's own that answers every question with an error.
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    let counting = hostile(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        answer(
            "500 Internal Server Error",
            br#"{"Message":"no","Code":0,"Type":"error"}"#,
        )
    });
    let node_api = w.node().api.clone();
    for (flag, value, says) in [
        (
            "--ipns-key",
            ".",
            "the IPNS key name \".\" cannot be used: it names a directory",
        ),
        (
            "--ipns-key",
            "..",
            "the IPNS key name \"..\" cannot be used: it names a directory",
        ),
        ("--ipns-key", "a/b", "it holds a path separator"),
        ("--ipns-key", "", "it is empty"),
        ("--ipns-key", "k\u{1b}[2J", "control or bidirectional"),
        ("--repo", "..", "the repository name \"..\" cannot be used"),
        ("--arch", ".", "the architecture \".\" cannot be used"),
    ] {
        let r = publish(&w, &[flag, value]);
        r.failure().one_error_line().stderr_has(says);
        assert!(
            !r.stderr().contains('\u{1b}'),
            "{}",
            r.explain("raw escape")
        );
        let top = mfs_root();
        assert!(
            top.contains(&"keepme".to_string()) && !top.iter().any(|n| n == "pacxfer-publish"),
            "{flag} {value:?}: the MFS root changed: {top:?}"
        );
        // The same refusal with the counting server on the API port: not one question.
        use_api(&w, &counting);
        let r = publish(&w, &[flag, value]);
        r.failure().one_error_line().stderr_has(says);
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{}",
            r.explain(&format!("{flag} {value:?}: the node was asked"))
        );
        use_api(&w, &node_api);
    }
    // The counting server does count: a plain name gets as far as asking it.
    use_api(&w, &counting);
    publish(&w, &["--ipns-key", "k.1"]).failure();
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) > 0);
    use_api(&w, &node_api);
    // Control: a plain key name publishes, beside what the MFS root already held.
    let s = summary(publish(&w, &["--ipns-key", "k.1"]).success());
    assert_eq!(s["added"], 4, "{s}");
    let top = mfs_root();
    assert!(
        top.contains(&"keepme".to_string()) && top.contains(&"pacxfer-publish".to_string()),
        "{top:?}"
    );
}

#[test]
fn a_huge_answer_on_the_node_api_port_is_refused_in_bounded_memory() {
    let w = World::new("huge-answer", false);
    // 16 MiB of the smallest JSON lines: about 5.6 million values.
    let api = hostile(|_| answer("200 OK", &b"{}\n".repeat((16 << 20) / 3)));
    use_api(&w, &api);
    let tiny = w.fx.tiny.clone();

    // Every download asks the node for a seeded copy: the answer is refused, the file comes
    // from the mirror all the same.
    let out = w.out(&format!("{}.part", tiny.filename));
    let (r, rss) = measured(
        &mut pacxfer_cmd(&w, &[&w.url(&tiny.filename), out.to_str().expect("utf8")]),
        w.dir.path(),
        None,
    );
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    assert!(
        rss < RSS_MAX_KB,
        "{}",
        r.explain(&format!("max RSS {rss} KiB"))
    );
    short_lines(&r, 5);

    // seed asks the node first: one short error line.
    let (r, rss) = measured(
        &mut pacxfer_cmd(&w, &["seed", tiny.path.to_str().expect("utf8")]),
        w.dir.path(),
        None,
    );
    r.failure()
        .one_error_line()
        .stderr_has("is not usable: more than");
    assert!(
        rss < RSS_MAX_KB,
        "{}",
        r.explain(&format!("max RSS {rss} KiB"))
    );
}

#[test]
fn a_huge_error_message_from_the_node_is_shown_as_one_short_line() {
    let w = World::new("huge-error", false);
    let api = hostile(|_| {
        let mut body = br#"{"Message":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', 15 << 20));
        body.extend(br#"","Code":0,"Type":"error"}"#);
        answer("500 Internal Server Error", &body)
    });
    use_api(&w, &api);
    let (r, rss) = measured(
        &mut pacxfer_cmd(&w, &["seed", w.fx.tiny.path.to_str().expect("utf8")]),
        w.dir.path(),
        None,
    );
    r.failure().one_error_line();
    short_lines(&r, 1);
    assert!(
        rss < RSS_MAX_KB,
        "{}",
        r.explain(&format!("max RSS {rss} KiB"))
    );

    // Control: a short message is shown as the node wrote it, escaped.
    let api = hostile(|_| {
        answer(
            "500 Internal Server Error",
            br#"{"Message":"no such thing\u001b[2J here","Code":0,"Type":"error"}"#,
        )
    });
    use_api(&w, &api);
    let r = w.pacxfer(&["seed", w.fx.tiny.path.to_str().expect("utf8")]);
    r.failure()
        .one_error_line()
        .stderr_has("(HTTP 500): no such thing\\u{1b}[2J here");
}

/// A cluster whose every peer failed to pin: `peers` of them.
fn failing_cluster(peers: usize) -> String {
    let mut map = String::from("{");
    for i in 0..peers {
        if i > 0 {
            map.push(',');
        }
        map.push_str(&format!(r#""12D3KooWpeer{i}":{{"status":"pin_error"}}"#));
    }
    map.push('}');
    let status = format!(r#"{{"cid":"x","peer_map":{map}}}"#).into_bytes();
    hostile(move |line| {
        if line.starts_with("GET /pins/") {
            answer("200 OK", &status)
        } else if line.starts_with("POST /pins/") {
            answer("200 OK", b"{}")
        } else {
            answer("404 Not Found", br#"{"code":404,"message":"not found"}"#)
        }
    })
}

#[test]
fn peers_that_fail_to_pin_are_one_summarised_warning_and_exit_1() {
    let w = World::new("cluster-flood", true);
    let r = publish(&w, &["--cluster", &failing_cluster(50)]);
    r.failure()
        .stderr_has("could not pin the root on 50 peers: 12D3KooWpeer0: pin_error;")
        .stderr_has("(and 45 more)");
    assert_eq!(
        summary(&r)["added"],
        4,
        "the root is published all the same"
    );
    short_lines(&r, 8);

    // 300,000 failed peers: the answer is refused unparsed, one error line, exit 1.
    let (r, rss) = measured(
        &mut pacxfer_cmd(
            &w,
            &{
                let mut args = crate::publish::runs::publish_args(&w);
                args.extend(["--cluster".to_string(), failing_cluster(300_000)]);
                args
            }
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ),
        w.dir.path(),
        None,
    );
    r.failure().stderr_has("more than 200000 JSON values");
    short_lines(&r, 8);
    assert!(
        rss < RSS_MAX_KB,
        "{}",
        r.explain(&format!("max RSS {rss} KiB"))
    );
}

#[test]
fn keep_beyond_any_clock_prunes_nothing() {
    let w = World::new("keep-huge", true);
    assert_eq!(summary(publish(&w, &[]).success())["added"], 4);
    repo_tool(&repo_dir(&w), "repo-remove", "other");
    for days in [
        "9223372036854775808",
        "18446744073709551615",
        "106751991167300",
    ] {
        let s = summary(publish(&w, &["--keep", days]).success());
        assert_eq!(s["pruned"], 0, "--keep {days}: {s}");
    }
    // Control: the same package is pruned when the days say so.
    let s = summary(publish(&w, &["--keep", "0"]).success());
    assert_eq!(s["pruned"], 1, "{s}");
}

#[test]
fn stats_counts_beyond_any_clock_and_skips_damaged_log_lines() {
    let w = World::new("stats-hostile", false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let rec = |at: u64, source: &str, bytes: &str| {
        format!(
            r#"{{"at":{at},"file":"a-1-1-any.pkg.tar.zst","kind":"package","source":"{source}","bytes":{bytes},"resumed":0,"seconds":1.0}}"#
        )
    };
    let ten_days_ago = now - 10 * 86_400;
    let lines = [
        rec(now, "mirror", "1000"),
        rec(ten_days_ago, "node", "1000"),
        // Damaged or forged: sums that would wrap, what pacxfer never writes.
        rec(now, "node", "18446744073709551615"),
        rec(now, "node\\u202e\\u001b[2J", "5"),
        rec(now, "mirror", "1e400"),
        r#"{"at":1,"file":"x\u001b]0;owned\u0007","kind":"package","source":"mirror","bytes":1,"resumed":0,"seconds":1}"#.to_string(),
        format!("{}{}", rec(now, "mirror", "7"), " ".repeat(100_000)),
    ];
    let dir = w.cache_dir();
    std::fs::create_dir_all(&dir).expect("mkdir cache");
    std::fs::write(dir.join("downloads.log"), lines.join("\n") + "\n").expect("write log");

    let stats = |days: &str| -> serde_json::Value {
        let r = w.pacxfer(&["stats", "--json", "--days", days]);
        let out = r.success().stdout();
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{out}"
        );
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{}", r.explain(&e.to_string())))
    };
    // Control: one day sees the one sane record of today.
    let v = stats("1");
    assert_eq!(
        (v["files"].as_u64(), v["bytes"].as_u64()),
        (Some(1), Some(1000)),
        "{v}"
    );
    for days in ["1000000000000000", "18446744073709551615"] {
        let v = stats(days);
        assert_eq!(
            (v["files"].as_u64(), v["bytes"].as_u64()),
            (Some(2), Some(2000)),
            "--days {days}: {v}"
        );
        assert_eq!(v["byte_hit_rate"], 0.5, "--days {days}: {v}");
    }
    let text = w.pacxfer(&["stats", "--days", "18446744073709551615"]);
    text.success()
        .stdout_has("packages from IPFS: 50% of files");
    assert!(!text.stdout().contains("200%"), "{}", text.stdout());
}

#[test]
fn seed_stdin_passes_over_a_line_longer_than_any_name_in_bounded_memory() {
    let w = World::new("seed-long-line", true);
    let tiny = w.fx.tiny.clone();
    w.pacman(&["-Sw", "--noconfirm", "tiny"]).success();
    let feed = |pipe: &mut dyn Write| {
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..512 {
            if pipe.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = pipe.write_all(b"\ntiny\n");
    };
    let (r, rss) = measured(
        &mut pacxfer_cmd(&w, &["seed", "--stdin"]),
        w.dir.path(),
        Some(&feed),
    );
    r.success()
        .stderr_has("skipped 1 line of standard input longer than 4096 bytes");
    assert!(
        rss < RSS_MAX_KB,
        "{}",
        r.explain(&format!("max RSS {rss} KiB"))
    );
    let stat = w
        .node()
        .rpc_raw(&format!("files/stat?arg=/pacxfer/{}", tiny.sha256), None);
    assert_eq!(
        stat.0, 200,
        "tiny is seeded after the long line: {}",
        stat.1
    );
}

#[test]
fn doctor_json_escapes_what_the_node_answers() {
    let w = World::new("doctor-escape", false);
    let api = hostile(|_| {
        answer(
            "200 OK",
            br#"{"Version":"0.43\u001b[2J\u202eevil\u0085","Value":false}"#,
        )
    });
    use_api(&w, &api);
    let r = w.pacxfer(&["doctor", "--json"]);
    let out = r.stdout();
    for c in ['\u{1b}', '\u{202e}', '\u{85}'] {
        assert!(
            !out.contains(c),
            "{}",
            r.explain(&format!("raw {c:?} in the JSON"))
        );
    }
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{}", r.explain(&e.to_string())));
    // Read back, the text is the node's own.
    assert!(
        v.to_string().contains("0.43\\u001b[2J\u{202e}evil\u{85}"),
        "{}",
        r.explain("the version as the node gave it")
    );
    // The text output escapes the same characters.
    let r = w.pacxfer(&["doctor"]);
    let text = r.stdout() + &r.stderr();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}') && text.contains("0.43"),
        "{}",
        r.explain("doctor's text")
    );
}

#[test]
fn a_download_that_fails_before_its_first_byte_leaves_no_empty_part() {
    let w = World::new("no-empty-part", false);
    let tiny = w.fx.tiny.clone();
    std::fs::remove_file(repo_dir(&w).join(&tiny.filename)).expect("rm from the mirror");
    // Through real pacman: nothing is left in its cache.
    w.pacman(&["-Sw", "--noconfirm", "tiny"]).failure();
    let left: Vec<String> = std::fs::read_dir(w.dir.join("cache"))
        .expect("list cache")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "pacman's cache holds {left:?}");

    // Called directly, the same.
    let out = w.out(&format!("{}.part", tiny.filename));
    w.xfer(&w.url(&tiny.filename), &out)
        .failure()
        .stderr_has("could not download");
    assert!(!out.exists(), "an empty {} was left", out.display());

    // Control: a .part holding bytes from an earlier call stays for the next one.
    let head = &std::fs::read(&tiny.path).expect("read")[..1000];
    std::fs::write(&out, head).expect("write part");
    w.xfer(&w.url(&tiny.filename), &out).failure();
    assert_eq!(std::fs::read(&out).expect("kept"), head);
}
