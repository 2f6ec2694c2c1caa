//! `pacxfer publish` against a real Kubo node and the test mirror: a cache filled from the
//! mirror that real pacman then uses with the mirror gone, through pacxfer (template
//! `/ipfs/<root>/{sha256}`) and without it (`Server =` the gateway's mirror view); a second
//! run that adds nothing; a removed package pruned and added back (exactly one added); a
//! mirror serving a wrong package; `--from-cache`; and bad input (a foreign state file, a node
//! that is down).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::fixtures::REPO;
use crate::harness::httpd::Mirror;
use crate::harness::util::{dead_port, run, sha256_hex, Run};
use crate::harness::world::World;

pub(crate) fn state(w: &World) -> PathBuf {
    w.dir.join("publisher/state.sqlite")
}

/// `publish` from the world's mirror into its node, with the world's state file.
pub(crate) fn publish_args(w: &World) -> Vec<String> {
    let mirror = format!("{}/$repo/os/$arch", w.mirror.url());
    let state = state(w).to_str().expect("utf8").to_string();
    [
        "publish", "--mirror", &mirror, "--repo", REPO, "--state", &state,
    ]
    .map(str::to_string)
    .to_vec()
}

pub(crate) fn publish(w: &World, extra: &[&str]) -> Run {
    let args = publish_args(w);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--json");
    args.extend_from_slice(extra);
    w.pacxfer(&args)
}

/// The JSON summary on the last line of stdout.
pub(crate) fn summary(r: &Run) -> serde_json::Value {
    let out = r.stdout();
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{}", r.explain(&format!("JSON: {e}"))))
}

/// Rewrites the world's pacman.conf: its Server line and whether pacxfer is the downloader.
fn pacman_conf(w: &World, server: &str, with_pacxfer: bool) {
    let text = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let text: String = text
        .lines()
        .filter(|l| with_pacxfer || !l.starts_with("XferCommand"))
        .map(|l| {
            if l.starts_with("Server = ") {
                format!("Server = {server}")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&w.pacman_conf, text).expect("write pacman.conf");
}

fn listed(node: &crate::harness::kubo::Node, dir: &str) -> Vec<String> {
    let ls = node.rpc(&format!("files/ls?arg={dir}"));
    let mut names: Vec<String> = ls["Entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["Name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn a_published_cache_serves_pacman_with_and_without_pacxfer_when_the_mirror_is_gone() {
    let mut w = World::new("publish", true);
    let fx = w.fx;
    let r = publish(&w, &[]);
    r.success().stderr_has("[testrepo] 4 packages: 4 added");
    // One line per repository, not one per file.
    assert!(
        !r.stderr().contains(" from mirror "),
        "{}",
        r.explain("lines")
    );
    let s = summary(&r);
    assert_eq!(s["added"], 4, "{s}");
    assert_eq!(s["present"], 0, "{s}");
    let root = s["root"].as_str().expect("root").to_string();
    assert!(
        s["name"].as_str().is_some_and(|n| n.starts_with("k51")),
        "{s}"
    );

    // Both views, and what clients read.
    let mfs = "/pacxfer-publish/pacxfer";
    let top = listed(w.node(), mfs);
    for pkg in [&fx.tiny, &fx.big, &fx.plus, &fx.other] {
        assert!(top.contains(&pkg.sha256), "{top:?}");
    }
    assert!(top.contains(&"pacxfer.json".to_string()) && top.contains(&REPO.to_string()));
    let mirror_view = listed(w.node(), &format!("{mfs}/{REPO}/os/x86_64"));
    for name in [
        fx.tiny.filename.as_str(),
        fx.plus.filename.as_str(),
        "testrepo.db",
    ] {
        assert!(mirror_view.iter().any(|n| n == name), "{mirror_view:?}");
    }

    // The mirror is gone; pacman with pacxfer finds everything by SHA-256 under the root.
    let gone = format!("http://127.0.0.1:{}/$repo/os/$arch", dead_port());
    pacman_conf(&w, &gone, true);
    let gateway = w.node().url.clone();
    let template = format!("/ipfs/{root}/{{sha256}}");
    w.configure(&gateway, &[&template], "");
    let served = w.node().answered(200);
    let r = w.pacman(&["-Sw", "--noconfirm", "tiny", "big", "plus+pkg", "other"]);
    r.success();
    assert_eq!(
        r.stderr().matches("from ipfs").count(),
        4,
        "{}",
        r.explain("sources")
    );
    // The node's own count: four whole files served by its gateway, and the view's
    // pacxfer.json once (its age is remembered for ten minutes).
    assert_eq!(
        w.node().answered(200),
        served + 5,
        "{:?}",
        w.node().responses()
    );
    for pkg in [&fx.tiny, &fx.big, &fx.plus, &fx.other] {
        assert_eq!(
            sha256_hex(&w.dir.join("cache").join(&pkg.filename)),
            pkg.sha256
        );
    }

    // Plain pacman, its own downloader, with the gateway's mirror view as its Server.
    for pkg in [&fx.tiny, &fx.big] {
        std::fs::remove_file(w.dir.join("cache").join(&pkg.filename)).expect("rm");
    }
    pacman_conf(&w, &format!("{gateway}/ipfs/{root}/$repo/os/$arch"), false);
    std::fs::remove_file(w.dbpath.join("sync/testrepo.db")).expect("rm db");
    let r = w.pacman(&["-Syw", "--noconfirm", "tiny", "big"]);
    r.success();
    for pkg in [&fx.tiny, &fx.big] {
        assert_eq!(
            sha256_hex(&w.dir.join("cache").join(&pkg.filename)),
            pkg.sha256,
            "{}",
            r.explain("plain pacman")
        );
    }
}

/// A view whose `pacxfer.json` is older than `[gateway] max_age` is not used: its template is
/// skipped for the mirror, and its databases are refused so that pacman syncs from its next
/// Server; with `max_age = "0"` the same view serves.
#[test]
fn a_stale_published_view_is_not_used() {
    let mut w = World::new("publish-stale", true);
    let fx = w.fx;
    summary(publish(&w, &[]).success());
    // The publisher stopped ten days ago.
    let mfs = "/pacxfer-publish/pacxfer";
    let ten_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 10 * 86_400;
    let json = format!(r#"{{"format":"pacxfer-cache-1","published":{ten_days_ago}}}"#);
    let cid = w.node().add("pacxfer.json", json.as_bytes());
    w.node().rpc(&format!("files/rm?arg={mfs}/pacxfer.json"));
    w.node()
        .rpc(&format!("files/cp?arg=/ipfs/{cid}&arg={mfs}/pacxfer.json"));
    let root = w.node().rpc(&format!("files/stat?arg={mfs}"))["Hash"]
        .as_str()
        .expect("root")
        .to_string();
    let gateway = w.node().url.clone();
    let template = format!("/ipfs/{root}/{{sha256}}");

    // The publisher fetched each package once.
    let hits = |w: &World| w.mirror.hits_for(&fx.tiny.filename).len();
    assert_eq!(hits(&w), 1);
    w.configure(&gateway, &[&template], "");
    let out = w.out("stale");
    let r = w.xfer(&w.url(&fx.tiny.filename), &out);
    r.success()
        .stderr_has(&format!("/ipfs/{root} was last published 10 days ago"))
        .stderr_has("from mirror");
    assert_eq!(hits(&w), 2);

    w.configure(&gateway, &[&template], "max_age = \"0\"");
    let out = w.out("any-age");
    w.xfer(&w.url(&fx.tiny.filename), &out)
        .success()
        .stderr_has("from ipfs");
    assert_eq!(hits(&w), 2);

    // pacman's first Server is the stale view's mirror layout, its second the mirror.
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let text = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let text = text.replace(
        "Server = ",
        &format!("Server = {gateway}/ipfs/{root}/$repo/os/$arch\nServer = "),
    );
    std::fs::write(&w.pacman_conf, text).expect("write pacman.conf");
    let dbs_before = w.mirror.hits_for("testrepo.db").len();
    let r = w.pacman(&["-Syy"]);
    r.success()
        .stderr_has("more than [gateway] max_age: its testrepo.db is refused");
    assert_eq!(
        w.mirror.hits_for("testrepo.db").len(),
        dbs_before + 1,
        "{}",
        r.explain("the database from the mirror")
    );
}

/// A view whose name hangs costs one wait per ten minutes, not one per call: the failure is
/// remembered like an answer.
#[test]
fn a_view_that_does_not_answer_is_asked_once() {
    let mut w = World::new("view-hang", false);
    let faults = crate::harness::faultd::FaultServer::start(Vec::new());
    let gateway = faults.base(crate::harness::faultd::Fault::Hang);
    w.configure(
        &gateway,
        &["/ipns/k51qzi5uqu5dviewhang/{sha256}"],
        "stall_timeout = \"1s\"\nbreaker = \"0\"",
    );
    let asked = |f: &crate::harness::faultd::FaultServer| {
        f.log()
            .iter()
            .filter(|h| h.path.ends_with("/pacxfer.json"))
            .count()
    };
    for i in 0..2 {
        let out = w.out(&format!("tiny-{i}"));
        w.xfer(&w.url(&w.fx.tiny.filename), &out)
            .success()
            .stderr_has("from mirror");
    }
    assert_eq!(asked(&faults), 1, "{}", faults.log_text());
}

/// A repository whose signature cannot be had (the mirror hangs on it) keeps its last
/// published database: a new database is never linked beside an old signature.
#[test]
fn a_database_is_recorded_only_with_all_its_files() {
    let w = World::new("publish-dbfiles", true);
    summary(publish(&w, &[]).success());
    let db_cid = |w: &World| {
        let conn = rusqlite::Connection::open(state(w)).expect("open state");
        conn.query_row(
            "SELECT cid FROM dbfiles WHERE name = 'testrepo.db'",
            [],
            |r| r.get::<_, String>(0),
        )
        .expect("db row")
    };
    let before = db_cid(&w);
    repo_tool(&repo_dir(&w), "repo-remove", "other");
    // Never answered while the publisher waits (its stall timeout is 5 s), however slowly
    // the machine runs.
    w.mirror
        .slow_down(".db.sig", std::time::Duration::from_secs(3600));
    let r = publish(&w, &[]);
    r.failure()
        .stderr_has("[testrepo]: cannot get testrepo.db.sig")
        .stderr_has("its packages stay as last published");
    assert_eq!(
        db_cid(&w),
        before,
        "{}",
        r.explain("the new database was recorded")
    );
    let view = listed(
        w.node(),
        &format!("/pacxfer-publish/pacxfer/{REPO}/os/x86_64"),
    );
    assert!(view.contains(&w.fx.other.filename), "{view:?}");
}

/// A gateway that does not answer the view's question opens the breaker, as it would for a
/// file: the same call does not wait on it a second time for the package.
#[test]
fn a_hung_gateway_is_waited_on_once_per_call() {
    let mut w = World::new("view-hang-breaker", false);
    let faults = crate::harness::faultd::FaultServer::start(Vec::new());
    let gateway = faults.base(crate::harness::faultd::Fault::Hang);
    w.configure(
        &gateway,
        &["/ipns/k51qzi5uqu5dviewhang/{sha256}"],
        "stall_timeout = \"1s\"",
    );
    let out = w.out("tiny");
    w.xfer(&w.url(&w.fx.tiny.filename), &out)
        .success()
        .stderr_has("from mirror");
    let asked: Vec<String> = faults.log().iter().map(|h| h.path.clone()).collect();
    assert_eq!(asked.len(), 1, "{}", faults.log_text());
    assert!(asked[0].ends_with("/pacxfer.json"), "{asked:?}");
}

/// On a terminal, a bar per repository (packages done of all), then the same summary line.
#[test]
fn a_terminal_shows_a_bar_per_repository() {
    let w = World::new("publish-tty", true);
    let mut argv = vec![
        crate::harness::util::pacxfer_bin()
            .to_str()
            .expect("utf8")
            .to_string(),
        "--config".into(),
        w.config.to_str().expect("utf8").to_string(),
    ];
    argv.extend(publish_args(&w));
    let line = argv
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // `script` runs the command on a pseudo-terminal and copies what it draws, in the
    // environment the harness gives every pacxfer it runs (the config names the cache).
    let mut script = Command::new("script");
    for (key, value) in crate::harness::util::pacxfer().get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    script.env_remove("PACXFER_CACHE_DIR");
    let r = run(script.args(["-qec", &line, "/dev/null"]));
    r.success();
    let drawn = r.stdout();
    assert!(
        drawn.contains(&format!("[{REPO}]")) && drawn.contains("/4      packages ["),
        "{}",
        r.explain("the bar")
    );
    assert!(drawn.contains("[testrepo] 4 packages: 4 added"), "{drawn}");
}

/// The mirror's repository directory, for repo-add and repo-remove.
pub(crate) fn repo_dir(w: &World) -> PathBuf {
    w.dir.join("mirror").join(REPO).join("os/x86_64")
}

pub(crate) fn repo_tool(dir: &Path, tool: &str, arg: &str) {
    run(Command::new(tool)
        .arg("-q")
        .arg(format!("{REPO}.db.tar.gz"))
        .arg(arg)
        .current_dir(dir))
    .success();
}

#[test]
fn publishing_again_adds_only_what_is_new_and_prunes_what_went() {
    let w = World::new("publish-again", true);
    let other = w.fx.other.clone();
    assert_eq!(summary(publish(&w, &[]).success())["added"], 4);

    // Nothing new: nothing added, everything present.
    let s = summary(publish(&w, &[]).success());
    assert_eq!(
        (s["added"].as_u64(), s["present"].as_u64()),
        (Some(0), Some(4)),
        "{s}"
    );
    let root_before = s["root"].clone();

    // A package leaves the repository: kept while --keep allows, pruned with --keep 0.
    repo_tool(&repo_dir(&w), "repo-remove", "other");
    let s = summary(publish(&w, &[]).success());
    assert_eq!(s["pruned"], 0, "{s}");
    let s = summary(publish(&w, &["--keep", "0"]).success());
    assert_eq!(s["pruned"], 1, "{s}");
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(!top.contains(&other.sha256), "{top:?}");
    let view = listed(
        w.node(),
        &format!("/pacxfer-publish/pacxfer/{REPO}/os/x86_64"),
    );
    assert!(!view.contains(&other.filename), "{view:?}");
    assert_ne!(s["root"], root_before);

    // It comes back: exactly one added.
    repo_tool(&repo_dir(&w), "repo-add", &other.filename);
    let s = summary(publish(&w, &[]).success());
    assert_eq!(
        (s["added"].as_u64(), s["present"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(top.contains(&other.sha256), "{top:?}");
}

#[test]
fn a_root_changed_behind_the_publishers_back_is_rebuilt_from_the_state() {
    let w = World::new("publish-repair", true);
    let tiny = w.fx.tiny.clone();
    let s = summary(publish(&w, &[]).success());
    let root = s["root"].as_str().expect("root").to_string();
    // Someone removes a link and plants another.
    w.node().rpc(&format!(
        "files/rm?arg=/pacxfer-publish/pacxfer/{}",
        tiny.sha256
    ));
    w.node().rpc(&format!(
        "files/cp?arg=/ipfs/{root}/{}&arg=/pacxfer-publish/pacxfer/planted",
        w.fx.other.sha256
    ));
    let s = summary(publish(&w, &[]).success());
    assert_eq!(s["added"], 0);
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(top.contains(&tiny.sha256), "{top:?}");
    assert!(!top.contains(&"planted".to_string()), "{top:?}");
}

/// The view follows the state, not the run: a run with nothing new relinks nothing; a package
/// a killed run recorded but never linked is linked by the next run even though it adds
/// nothing; a repository whose database cannot be had fails alone and keeps what it had.
#[test]
fn the_view_follows_the_state_and_a_missing_database_fails_alone() {
    let w = World::new("publish-view", true);
    let other = w.fx.other.clone();
    repo_tool(&repo_dir(&w), "repo-remove", "other");
    let s = summary(publish(&w, &[]).success());
    assert_eq!(s["added"], 3, "{s}");
    assert!(s["relinked"].as_u64() > Some(3), "{s}");

    let r = publish(&w, &[]);
    r.success()
        .stderr_has("the published view already matched the state: nothing relinked");
    let s = summary(&r);
    assert_eq!(
        (s["added"].as_u64(), s["relinked"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // What a run killed between recording `other` and linking it leaves behind: the node
    // holds it, the state records it, the view lacks it.
    let cid = w.add_raw(&other);
    let conn = rusqlite::Connection::open(state(&w)).expect("open state");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    conn.execute(
        "INSERT INTO files (sha256, cid, size) VALUES (?1, ?2, ?3)",
        rusqlite::params![other.sha256, cid, other.size as i64],
    )
    .expect("insert file");
    conn.execute(
        "INSERT INTO listings VALUES (?1, 'x86_64', ?2, 'other', ?3, ?4, ?4)",
        rusqlite::params![REPO, other.filename, other.sha256, now],
    )
    .expect("insert listing");
    drop(conn);
    let s = summary(publish(&w, &[]).success());
    assert_eq!(
        (s["added"].as_u64(), s["present"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    assert_eq!(s["relinked"], 2, "{s}");
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(top.contains(&other.sha256), "{top:?}");
    let view = listed(
        w.node(),
        &format!("/pacxfer-publish/pacxfer/{REPO}/os/x86_64"),
    );
    assert!(view.contains(&other.filename), "{view:?}");

    // A repository the mirror does not have: that one fails, the other is published and
    // nothing of it is pruned.
    let r = publish(&w, &["--repo", "gone", "--keep", "0"]);
    r.failure()
        .stderr_has("[gone]: cannot get gone.db")
        .stderr_has("HTTP 404");
    let s = summary(&r);
    assert_eq!(
        (s["failed"].as_u64(), s["present"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(top.contains(&w.fx.tiny.sha256), "{top:?}");
}

#[test]
fn a_mirror_serving_a_wrong_package_is_refused_and_nothing_wrong_is_linked() {
    let w = World::new("publish-wrong", true);
    let big = w.fx.big.clone();
    let mut wrong = std::fs::read(&big.path).expect("read");
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    std::fs::write(repo_dir(&w).join(&big.filename), &wrong).expect("corrupt");
    let r = publish(&w, &[]);
    r.failure()
        .stderr_has(&format!("{} not published", big.filename))
        .stderr_has("SHA-256 does not match the database");
    let s = summary(&r);
    assert_eq!(
        (s["added"].as_u64(), s["failed"].as_u64()),
        (Some(3), Some(1)),
        "{s}"
    );
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(!top.contains(&big.sha256), "{top:?}");
    let view = listed(
        w.node(),
        &format!("/pacxfer-publish/pacxfer/{REPO}/os/x86_64"),
    );
    assert!(!view.contains(&big.filename), "{view:?}");
}

#[test]
fn from_cache_publishes_what_this_machine_holds() {
    let w = World::new("publish-cache", true);
    w.pacman(&["-Sw", "--noconfirm", "tiny", "other"]).success();
    let state = state(&w);
    let r = w.pacxfer(&[
        "publish",
        "--from-cache",
        "--repo",
        REPO,
        "--state",
        state.to_str().expect("utf8"),
        "--json",
    ]);
    r.success().stderr_has("2 not in the cache");
    let s = summary(&r);
    assert_eq!(
        (s["added"].as_u64(), s["skipped"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    let hits = w.mirror.hits().len();
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    assert!(top.contains(&w.fx.tiny.sha256) && top.contains(&w.fx.other.sha256));
    assert_eq!(w.mirror.hits().len(), hits, "nothing downloaded");
}

#[test]
fn bad_state_files_and_a_node_that_is_down_are_one_error_line() {
    let mut w = World::new("publish-bad", true);
    let junk = w.dir.join("publisher/state.sqlite");
    std::fs::create_dir_all(junk.parent().expect("dir")).expect("mkdir");
    std::fs::write(&junk, b"some text that is not a database at all........").expect("write");
    publish(&w, &[])
        .failure()
        .one_error_line()
        .stderr_has("is not a pacxfer publisher state");
    assert_eq!(
        std::fs::read(&junk).expect("read"),
        b"some text that is not a database at all........"
    );
    std::fs::remove_file(&junk).expect("rm");
    // A state under a regular file cannot be made.
    let blocked = w.dir.join("blocked");
    std::fs::write(&blocked, b"").expect("write");
    let bad = blocked.join("state.sqlite");
    let mirror = format!("{}/$repo/os/$arch", w.mirror.url());
    w.pacxfer(&[
        "publish",
        "--mirror",
        &mirror,
        "--repo",
        REPO,
        "--state",
        bad.to_str().expect("utf8"),
    ])
    .failure()
    .one_error_line()
    .stderr_has("publisher state");
    // The node's API is down.
    w.node.take().expect("node").stop();
    publish(&w, &[])
        .failure()
        .one_error_line()
        .stderr_has("cannot reach the IPFS node's API");
}

/// A publisher killed with SIGKILL while it waits for the last package loses nothing: the
/// next run adds only that one, and the root holds all four.
#[test]
fn a_publisher_killed_mid_run_loses_nothing() {
    let w = World::new("publish-kill", true);
    let tiny = w.fx.tiny.clone();
    // Packages are fetched in database order; tiny comes last, and is never answered (within
    // an hour, with a stall timeout as long): the publisher is still waiting for it when it is
    // killed, however slowly the machine runs.
    w.mirror
        .slow_down(&tiny.filename, std::time::Duration::from_secs(3600));
    let text = std::fs::read_to_string(&w.config).expect("read config");
    let patient = text.replace(
        "[mirror]\nstall_timeout = \"5s\"",
        "[mirror]\nstall_timeout = \"1h\"",
    );
    assert_ne!(patient, text, "no [mirror] stall_timeout to lengthen");
    std::fs::write(&w.config, patient).expect("write config");
    let mirror = format!("{}/$repo/os/$arch", w.mirror.url());
    let state = state(&w);
    let mut child = crate::harness::util::pacxfer()
        .env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(["publish", "--mirror", &mirror, "--repo", REPO, "--state"])
        .arg(&state)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start publish");
    // Wait until the three packages before tiny are recorded; tiny is then being waited for.
    let started = std::time::Instant::now();
    let recorded = || -> i64 {
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM files", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    while recorded() < 3 {
        if started.elapsed() > std::time::Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the first three packages were never recorded");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the publisher ended before it was killed"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // The state holds the three packages that were done.
    let conn = rusqlite::Connection::open(&state).expect("open state");
    let files: i64 = conn
        .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .expect("count");
    assert_eq!(files, 3);
    drop(conn);

    w.mirror
        .slow_down("never-matches", std::time::Duration::ZERO);
    let w2 = &w;
    let s = {
        // The slow path no longer applies to a second Mirror; serve the same tree afresh.
        let fresh = Mirror::serve(&w2.dir.join("mirror"));
        let mirror = format!("{}/$repo/os/$arch", fresh.url());
        let r = w2.pacxfer(&[
            "publish",
            "--mirror",
            &mirror,
            "--repo",
            REPO,
            "--state",
            state.to_str().expect("utf8"),
            "--json",
        ]);
        summary(r.success())
    };
    assert_eq!(
        (s["added"].as_u64(), s["present"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );
    let top = listed(w.node(), "/pacxfer-publish/pacxfer");
    for pkg in [&w.fx.tiny, &w.fx.big, &w.fx.plus, &w.fx.other] {
        assert!(top.contains(&pkg.sha256), "{top:?}");
    }
}
