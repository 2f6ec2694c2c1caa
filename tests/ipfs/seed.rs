//! Sharing back through real Kubo nodes: `pacxfer seed` over pacman's CacheDir (only files a
//! database lists with their exact SHA-256), the node's own `/pacxfer/<sha256>` as a source
//! found by SHA-256 alone, `after_fetch`, the ALPM hook under real pacman, a file seeded on
//! one node and fetched through another, and a node that is down.

use std::time::Duration;

use crate::harness::fixtures::{Pkg, REPO};
use crate::harness::kubo::{Node, Options};
use crate::harness::util::{dead_port, run_within};
use crate::harness::world::World;

/// The node's answer to `files/stat /pacxfer/<sha256>`, or `None`.
fn seeded(node: &Node, pkg: &Pkg) -> Option<serde_json::Value> {
    let (status, text) = node.rpc_raw(&format!("files/stat?arg=/pacxfer/{}", pkg.sha256), None);
    (status == 200).then(|| serde_json::from_str(&text).expect("stat JSON"))
}

/// A URL for `pkg` on a mirror that is gone.
fn gone_mirror_url(pkg: &Pkg) -> String {
    format!(
        "http://127.0.0.1:{}/{REPO}/os/x86_64/{}",
        dead_port(),
        pkg.filename
    )
}

#[test]
fn seed_shares_the_cache_and_skips_what_no_database_lists() {
    let w = World::new("seed-cache", true);
    let fx = w.fx;
    w.pacman(&["-Sw", "--noconfirm", "tiny", "big", "other"])
        .success();
    let cache = w.dir.join("cache");
    std::fs::write(
        cache.join("stray-1-1-any.pkg.tar.zst"),
        b"no database lists me",
    )
    .expect("stray");
    let mut damaged = std::fs::read(&fx.plus.path).expect("read plus");
    damaged[10] ^= 1;
    std::fs::write(cache.join(&fx.plus.filename), damaged).expect("damaged");

    let r = w.pacxfer(&["seed"]);
    r.success()
        .stderr_has("seed: 3 added")
        .stderr_has("2 skipped (1 not in any sync database, 1 differing from it, 0 unreadable)")
        .stderr_has("its SHA-256 is not the one the database lists");
    for pkg in [&fx.tiny, &fx.big, &fx.other] {
        let stat = seeded(w.node(), pkg).unwrap_or_else(|| panic!("{} not seeded", pkg.filename));
        assert_eq!(stat["Type"], "file");
        assert_eq!(stat["Size"].as_u64(), Some(pkg.size));
    }
    assert!(
        seeded(w.node(), &fx.plus).is_none(),
        "the damaged file was shared"
    );
    // A small package keeps the CID pacxfer derives from its SHA-256.
    let doc: serde_json::Value = serde_json::from_str(
        &w.pacxfer(&["lookup", "--json", &fx.tiny.filename])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(
        seeded(w.node(), &fx.tiny).expect("tiny")["Hash"],
        doc["cid"],
        "same CID as derived"
    );

    // Again: nothing new, nothing read.
    w.pacxfer(&["seed"])
        .success()
        .stderr_has("seed: 0 added (0 B), 3 already in the node");
}

#[test]
fn a_seeded_file_is_found_by_sha256_with_the_mirror_gone() {
    let w = World::new("seeded-source", true);
    let big = w.fx.big.clone();
    // The default templates alone cannot name a file of several blocks.
    w.pacxfer(&["seed", big.path.to_str().expect("utf8")])
        .success()
        .stderr_has("seed: 1 added");
    let cid = seeded(w.node(), &big).expect("seeded")["Hash"]
        .as_str()
        .expect("cid")
        .to_string();
    let out = w.out("big.part");
    let r = w.xfer_verbose(&gone_mirror_url(&big), &out);
    r.success()
        .stderr_has("from ipfs")
        .stderr_has(&format!("[{}/ipfs/{cid}]", w.node().url));
    w.assert_same(&out, &big.path, &r);
    // The node's own count: the one whole file its gateway served.
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    // lookup lists the seeded copy first.
    let r = w.pacxfer(&["lookup", &big.filename]);
    r.success()
        .stdout_has(&format!("1. [ipfs] {}/ipfs/{cid}", w.node().url));
}

#[test]
fn after_fetch_shares_what_came_from_the_mirror() {
    let mut w = World::new("after-fetch", true);
    w.share_extra = "after_fetch = true\n".into();
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let big = w.fx.big.clone();
    let out = w.out("first.part");
    let r = w.xfer_verbose(&w.url(&big.filename), &out);
    r.success()
        .stderr_has("from mirror")
        .stderr_has("shared through the IPFS node as");
    assert!(
        seeded(w.node(), &big).is_some(),
        "not seeded after the fetch"
    );
    // Nothing from the node's gateway yet: big is too large for a derived CID.
    assert_eq!(w.node().answered(200), 0, "{:?}", w.node().responses());
    let out = w.out("second.part");
    let r = w.xfer(&gone_mirror_url(&big), &out);
    r.success().stderr_has("from ipfs");
    w.assert_same(&out, &big.path, &r);
    assert_eq!(w.mirror.hits_for(&big.filename).len(), 1);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
}

#[test]
fn a_node_that_is_down_never_fails_a_download_or_a_hook() {
    let mut w = World::new("share-down", false);
    w.share_extra = "after_fetch = true\nafter_fetch_timeout = \"2s\"\n".into();
    let gateway = format!("http://127.0.0.1:{}", dead_port());
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let other = w.fx.other.clone();
    let out = w.out("other.part");
    let mut cmd = crate::harness::util::pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .arg(w.url(&other.filename))
        .arg(&out);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(30));
    r.success().stderr_has("from mirror");
    assert!(!r.stderr().contains("warning"), "{}", r.explain("quiet"));
    w.assert_same(&out, &other.path, &r);

    let r = w.pacxfer(&["seed", other.path.to_str().expect("utf8")]);
    r.failure()
        .one_error_line()
        .stderr_has("cannot reach the IPFS node's API");
    let r = w.pacxfer(&["seed", "--if-running", other.path.to_str().expect("utf8")]);
    r.success();
    assert!(r.stderr().is_empty(), "{}", r.explain("quiet hook"));
}

/// The hook as pacman runs it: its Exec line, with the transaction's package names on
/// standard input (`NeedsTargets`). Real pacman runs a hook inside `RootDir` (chroot), which in
/// these tests is an empty directory, so the test runs the Exec line itself after a real
/// `pacman -Sw`.
#[test]
fn the_alpm_hook_seeds_each_transaction() {
    let w = World::new("seed-hook", true);
    let hook = std::fs::read_to_string(
        crate::harness::util::repo_root().join("contrib/pacxfer-seed.hook"),
    )
    .expect("read hook");
    for line in [
        "[Trigger]",
        "Operation = Install",
        "Operation = Upgrade",
        "Type = Package",
        "Target = *",
        "[Action]",
        "When = PostTransaction",
        "NeedsTargets",
    ] {
        assert!(hook.lines().any(|l| l == line), "hook lacks {line:?}");
    }
    let exec = hook
        .lines()
        .find_map(|l| l.strip_prefix("Exec = "))
        .expect("Exec line");
    let mut argv = exec.split_whitespace();
    assert_eq!(argv.next(), Some("/usr/bin/pacxfer"));
    let args: Vec<&str> = argv.collect();
    assert_eq!(args.first(), Some(&"seed"));

    let (tiny, other) = (w.fx.tiny.clone(), w.fx.other.clone());
    w.pacman(&["-Sw", "--noconfirm", "tiny", "other"]).success();
    let mut child = crate::harness::util::pacxfer()
        .env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the hook's command");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"tiny\n").expect("targets");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stat = seeded(w.node(), &tiny).expect("tiny seeded");
    assert_eq!(stat["Size"].as_u64(), Some(tiny.size));
    assert!(
        seeded(w.node(), &other).is_none(),
        "only the transaction's packages"
    );
}

#[test]
fn seeded_on_one_node_fetched_through_another() {
    let mut w = World::new("seed-lan", false);
    let online = || Options {
        online: true,
        ..Options::default()
    };
    let a = Node::start_with(w.dir.path(), "peer-a", online());
    let b = Node::start_with(w.dir.path(), "user-b", online());
    b.connect(&a);
    let tiny = w.fx.tiny.clone();
    // Seeded on A, by A's own pacxfer.
    let conf_a = w.dir.join("pacxfer-a.conf");
    std::fs::write(
        &conf_a,
        format!(
            "dbpath = {:?}\ncache_dir = \"\"\n[share]\napi = {:?}\n",
            w.dbpath.display().to_string(),
            a.api
        ),
    )
    .expect("write config");
    // cache_dir = "" is the config's word only without PACXFER_CACHE_DIR.
    let r = crate::harness::util::run(
        crate::harness::util::pacxfer()
            .env_remove("PACXFER_CACHE_DIR")
            .arg("--config")
            .arg(&conf_a)
            .args(["seed", tiny.path.to_str().expect("utf8")]),
    );
    r.success().stderr_has("seed: 1 added");
    // Fetched on B's side, with the mirror gone: B gets it from A by bitswap.
    w.configure(&b.url, &["/ipfs/{cid}"], "network_timeout = \"20s\"");
    let out = w.out("tiny.part");
    let r = w.xfer_verbose(&gone_mirror_url(&tiny), &out);
    r.success()
        .stderr_has("from ipfs")
        .stderr_has("(from the IPFS network)");
    w.assert_same(&out, &tiny.path, &r);
    assert!(a.blocks_sent() >= 1, "{}", a.bitswap());
}

/// Whether `node` holds `cid` with a recursive pin.
fn pinned(node: &Node, cid: &str) -> bool {
    node.rpc_raw(&format!("pin/ls?arg={cid}&type=recursive"), None)
        .0
        == 200
}

/// `[share] pin = true` pins what `seed` adds (besides linking it into MFS); by default a
/// seeded file is linked, not pinned.
#[test]
fn seed_pins_only_with_share_pin_true() {
    let mut w = World::new("seed-pin", true);
    let (tiny, other) = (w.fx.tiny.clone(), w.fx.other.clone());
    let seed = |w: &World, pkg: &Pkg| {
        w.pacxfer(&["seed", pkg.path.to_str().expect("utf8")])
            .success()
            .stderr_has("seed: 1 added");
        seeded(w.node(), pkg).expect("seeded")["Hash"]
            .as_str()
            .expect("cid")
            .to_string()
    };
    let cid = seed(&w, &tiny);
    assert!(!pinned(w.node(), &cid), "pinned without [share] pin");
    w.share_extra = "pin = true\n".into();
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let cid = seed(&w, &other);
    assert!(pinned(w.node(), &cid), "not pinned with [share] pin = true");
}

/// `[share] api` as a multiaddr, as Kubo writes it in `$IPFS_PATH/api`, and `api_auth` with
/// Kubo's `API.Authorizations`: seed goes through. The control: the same node refuses a
/// client without the secret.
#[test]
fn the_api_as_a_multiaddr_with_api_auth_is_used() {
    let mut w = World::new("seed-multiaddr", false);
    let node = Node::start_with(
        w.dir.path(),
        "ipfs",
        Options {
            online: false,
            config: vec![(
                "API.Authorizations",
                serde_json::json!({"pacxfer": {"AuthSecret": "bearer:s3cr3t", "AllowedPaths": ["/api/v0"]}}),
            )],
        },
    );
    let port = node.api.rsplit(':').next().expect("port").to_string();
    w.node = Some(node);
    let tiny = w.fx.tiny.clone();
    let gateway = w.node().url.clone();
    let with = |w: &mut World, auth: &str| {
        w.configure(&gateway, &["/ipfs/{cid}"], "");
        let text = std::fs::read_to_string(&w.config).expect("read config");
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("api = ") {
                    format!("api = \"/ip4/127.0.0.1/tcp/{port}\"\n{auth}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&w.config, text).expect("write config");
    };
    with(&mut w, "");
    w.pacxfer(&["seed", tiny.path.to_str().expect("utf8")])
        .failure()
        .one_error_line()
        .stderr_has("(HTTP 403)");
    with(&mut w, "api_auth = \"bearer:s3cr3t\"");
    let r = w.pacxfer(&["seed", tiny.path.to_str().expect("utf8")]);
    r.success().stderr_has("seed: 1 added");
    assert!(
        !r.stderr().contains("s3cr3t"),
        "{}",
        r.explain("secret shown")
    );
    // Asked with the secret too: the node holds the seeded copy.
    let stat = ureq::post(&format!(
        "{}/api/v0/files/stat?arg=/pacxfer/{}",
        w.node().api,
        tiny.sha256
    ))
    .header("Authorization", "Bearer s3cr3t")
    .send_empty()
    .map(|r| r.status().as_u16());
    assert_eq!(stat.ok(), Some(200), "tiny is not seeded");
}
