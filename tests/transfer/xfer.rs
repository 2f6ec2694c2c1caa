//! pacxfer called the way pacman calls its XferCommand (`pacxfer URL OUTPUT`), against the real
//! IPFS node and the test mirror; which source served each file is read from their logs.

use sha2::Digest;

use crate::harness::util::pacxfer;
use crate::harness::world::World;

/// A package of at most 1 MiB added as one raw block is fetched by the CID its SHA-256
/// gives: the node answered it (one 200) and the mirror was never asked.
#[test]
fn small_package_comes_from_ipfs_by_raw_cid() {
    let w = World::new("small-ipfs", true);
    let tiny = &w.fx.tiny;
    let cid = w.add_raw(tiny);
    assert!(cid.starts_with("bafkrei"), "one raw block: {cid}");
    let out = w.out(&format!("{}.part", tiny.filename));

    let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
    r.success()
        .stderr_has("from ipfs")
        .stderr_has(&format!("[{}/ipfs/{cid}]", w.node().url));
    w.assert_same(&out, &tiny.path, &r);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    assert!(
        w.mirror.hits_for(&tiny.filename).is_empty(),
        "mirror: {}",
        w.mirror.log_text()
    );
}

/// The CIDs `lookup` derives from the database's SHA-256 are the ones Kubo computes for the
/// packages (`add --only-hash`); a package of more than one block gets none.
#[test]
fn derived_raw_cids_match_the_node() {
    let w = World::new("cid-vectors", true);
    for pkg in [&w.fx.tiny, &w.fx.plus, &w.fx.other] {
        let bytes = std::fs::read(&pkg.path).expect("read");
        let node_cid = w.node().add_with(&pkg.filename, &bytes, "only-hash=true");
        let r = w.pacxfer(&["lookup", "--json", &pkg.filename]);
        r.success();
        let doc: serde_json::Value = serde_json::from_str(&r.stdout()).expect("json");
        assert_eq!(
            doc["cid"].as_str(),
            Some(node_cid.as_str()),
            "{}",
            pkg.filename
        );
        assert_eq!(doc["cid_source"].as_str(), Some("raw-block"));
    }
    // The big package is more than one block: no CID can be derived.
    let r = w.pacxfer(&["lookup", "--json", &w.fx.big.filename]);
    let doc: serde_json::Value = serde_json::from_str(&r.success().stdout()).expect("json");
    assert!(doc["cid"].is_null(), "{doc}");
}

/// Around the 1 MiB chunk (0, 1, 1 MiB - 1, 1 MiB, 1 MiB + 1 bytes) a CID is derived exactly
/// when Kubo makes one raw block, and it is Kubo's.
#[test]
fn derived_raw_cids_match_kubo_around_the_chunk_boundary() {
    let w = World::new("cid-boundary", true);
    const MIB: usize = 1 << 20;
    for size in [0, 1, MIB - 1, MIB, MIB + 1] {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let node_cid = w.node().add_with("f", &bytes, "only-hash=true");
        let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let entry = pacxfer::db::entry::Entry {
            repo: "r".into(),
            filename: "f-1-1-any.pkg.tar.zst".into(),
            name: "f".into(),
            version: "1-1".into(),
            arch: "any".into(),
            sha256: Some(sha),
            csize: Some(size as u64),
            pgpsig: None,
            cid: None,
        };
        let derived = pacxfer::ipfs::cid::for_entry(&entry, MIB as u64);
        if size <= MIB {
            assert_eq!(
                derived.as_ref().map(|c| c.as_str()),
                Some(node_cid.as_str()),
                "{size} bytes"
            );
            assert!(node_cid.starts_with("bafkrei"), "{size} bytes: {node_cid}");
        } else {
            // One byte past the chunk: a dag-pb root that no SHA-256 can name.
            assert!(derived.is_none(), "{size} bytes: {derived:?}");
            assert!(node_cid.starts_with("bafybei"), "{size} bytes: {node_cid}");
        }
    }
}

/// A multi-block package is fetched through an IPNS name whose directory names entries by
/// SHA-256: the node answered it and the mirror was never asked.
#[test]
fn large_package_comes_from_a_sha256_named_directory() {
    let mut w = World::new("large-ipfs", true);
    let big = w.fx.big.clone();
    let bytes = std::fs::read(&big.path).expect("read big");
    let dir = w.node().add_dir(&[(big.sha256.as_str(), &bytes)]);
    let name = w.node().publish("pkgcache", &dir);
    let gateway = w.node().url.clone();
    let by_sha = format!("/ipns/{name}/{{sha256}}");
    w.configure(&gateway, &["/ipfs/{cid}", &by_sha], "");
    let out = w.out("big.part");

    let r = w.xfer_verbose(&w.url(&big.filename), &out);
    r.success()
        .stderr_has("from ipfs")
        .stderr_has(&format!("/ipns/{name}/{}]", big.sha256));
    w.assert_same(&out, &big.path, &r);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    assert!(
        w.mirror.hits_for(&big.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
}

/// A package the node lacks: the node's 412 to the cache-only question, then the mirror.
#[test]
fn package_the_node_lacks_comes_from_the_mirror() {
    let w = World::new("node-lacks", true);
    let other = &w.fx.other;
    let out = w.out("other.part");

    let r = w.xfer(&w.url(&other.filename), &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &other.path, &r);
    assert_eq!(
        w.mirror.hits_for(&other.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(
        w.node().answered(412),
        1,
        "asked only-if-cached: {:?}",
        w.node().responses()
    );
}

/// A gateway nobody listens on is tried (and found dead: "cannot connect"), and the mirror
/// serves the file in the same call.
#[test]
fn a_dead_gateway_falls_back_to_the_mirror() {
    let w = World::new("node-down", false);
    let tiny = &w.fx.tiny;
    let out = w.out("tiny.part");

    let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
    r.success()
        .stderr_has("/ipfs/bafkrei")
        .stderr_has("cannot connect")
        .stderr_has("from mirror");
    assert!(
        !r.stderr().contains("circuit open"),
        "{}",
        r.explain("the gateway was not tried")
    );
    w.assert_same(&out, &tiny.path, &r);
    assert_eq!(
        w.mirror.hits_for(&tiny.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
}

/// The node serves, under tiny's SHA-256, a file of tiny's exact size with its last byte
/// flipped: only the SHA-256 check can refuse it, and it does. The mirror then serves the
/// whole file from byte 0; with the mirror down too the call fails and OUTPUT holds none of the
/// node's bytes. The same directory layout holding the right bytes is served from IPFS.
#[test]
fn wrong_bytes_from_ipfs_never_reach_the_output() {
    let mut w = World::new("wrong-bytes", true);
    let tiny = w.fx.tiny.clone();
    let right = std::fs::read(&tiny.path).expect("read tiny");
    let mut wrong = right.clone();
    *wrong.last_mut().expect("tiny is not empty") ^= 0x01;
    assert_eq!(wrong.len(), right.len());
    let bad_dir = w.node().add_dir(&[(tiny.sha256.as_str(), &wrong)]);
    let gateway = w.node().url.clone();
    let template = format!("/ipfs/{bad_dir}/{{sha256}}");
    w.configure(&gateway, &[template.as_str()], "");
    let out = w.out("tiny.part");

    let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
    r.success()
        .stderr_has("wrong bytes: SHA-256 does not match the database")
        .stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    let hits = w.mirror.hits_for(&tiny.filename);
    assert!(
        hits.len() == 1 && hits[0].range.is_none(),
        "the mirror is asked for the whole file: {}",
        w.mirror.log_text()
    );

    // Nothing else can deliver: the call fails, and the node's bytes are not in OUTPUT.
    let dead = format!(
        "http://127.0.0.1:{}/{}/os/x86_64/{}",
        crate::harness::util::dead_port(),
        crate::harness::fixtures::REPO,
        tiny.filename
    );
    let out = w.out("tiny-nowhere.part");
    let r = w.xfer(&dead, &out);
    r.failure().one_error_line();
    assert_eq!(w.node().answered(200), 2, "{:?}", w.node().responses());
    let left = std::fs::read(&out).unwrap_or_default();
    assert!(
        left.is_empty(),
        "{}",
        r.explain(&format!("OUTPUT holds {} bytes", left.len()))
    );

    // Control: the right bytes in the same layout are taken from the node.
    let good_dir = w.node().add_dir(&[(tiny.sha256.as_str(), &right)]);
    let template = format!("/ipfs/{good_dir}/{{sha256}}");
    w.configure(&gateway, &[template.as_str()], "");
    let out = w.out("tiny-right.part");
    let r = w.xfer(&dead, &out);
    r.success().stderr_has("from ipfs");
    w.assert_same(&out, &tiny.path, &r);
}

/// A `.part` holding the right first half is resumed: the mirror is asked only for the rest
/// (`Range: bytes=HALF-`) and the whole is right.
#[test]
fn a_part_file_from_an_earlier_failure_is_resumed() {
    let w = World::new("resume", false);
    let big = &w.fx.big;
    let bytes = std::fs::read(&big.path).expect("read big");
    let out = w.out("big.part");
    let half = bytes.len() / 2;
    std::fs::write(&out, &bytes[..half]).expect("write half");

    let r = w.xfer(&w.url(&big.filename), &out);
    r.success().stderr_has("resumed at");
    w.assert_same(&out, &big.path, &r);
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(
        hits[0].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(hits[0].bytes as usize, bytes.len() - half);
}

/// A `.part` of wrong bytes is resumed, found wrong once whole, and fetched again from byte
/// 0: two requests, the second without `Range`, and the right file.
#[test]
fn a_wrong_part_file_is_fetched_again_from_zero() {
    let w = World::new("resume-wrong", false);
    let big = &w.fx.big;
    let out = w.out("big.part");
    std::fs::write(&out, vec![0x55u8; 100_000]).expect("write garbage");

    let r = w.xfer(&w.url(&big.filename), &out);
    r.success();
    w.assert_same(&out, &big.path, &r);
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(
        hits.len(),
        2,
        "resume, then from zero: {}",
        w.mirror.log_text()
    );
    assert_eq!(hits[0].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(hits[1].range, None);
}

/// A `.part` that already holds the whole file is checked and kept: neither the node nor the
/// mirror is asked anything. Without it, both are.
#[test]
fn a_complete_part_file_needs_no_network() {
    let w = World::new("resume-complete", true);
    let tiny = &w.fx.tiny;
    let out = w.out("tiny.part");
    std::fs::copy(&tiny.path, &out).expect("copy");
    let r = w.xfer(&w.url(&tiny.filename), &out);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    assert!(w.mirror.hits().is_empty(), "{}", w.mirror.log_text());
    assert!(!w.node().asked(), "{:?}", w.node().responses());

    // Control: with no `.part`, the node is asked (it lacks the file) and the mirror serves.
    let out = w.out("tiny-fresh.part");
    let r = w.xfer(&w.url(&tiny.filename), &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);
    assert_eq!(w.node().answered(412), 1, "{:?}", w.node().responses());
    assert_eq!(w.mirror.hits_for(&tiny.filename).len(), 1);
}

/// A `.sig` the database embeds (`%PGPSIG%`) is written from it, byte for byte the detached
/// signature, with no request to the mirror.
#[test]
fn signature_comes_from_the_database_without_network() {
    let w = World::new("sig-db", false);
    let tiny = &w.fx.tiny;
    let sig_name = format!("{}.sig", tiny.filename);
    let out = w.out(&format!("{sig_name}.part"));

    // As pacman 6.1+ calls it right after the package.
    let r = w.xfer(&w.url(&sig_name), &out);
    r.success().stderr_has("from db-signature");
    w.assert_same(&out, &w.fx.repo_dir().join(&sig_name), &r);
    assert!(w.mirror.hits().is_empty(), "{}", w.mirror.log_text());
}

/// A `.sig` the database does not embed comes from the mirror.
#[test]
fn signature_not_in_the_database_comes_from_the_mirror() {
    let w = World::new("sig-mirror", false);
    let sig_name = format!("{}.sig", w.fx.big.filename);
    let out = w.out(&format!("{sig_name}.part"));
    let r = w.xfer(&w.url(&sig_name), &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &w.fx.repo_dir().join(&sig_name), &r);
    assert_eq!(w.mirror.hits_for(&sig_name).len(), 1);
}

/// A file no database lists (the database itself) comes from the mirror as it is, and the
/// node is never asked for it.
#[test]
fn unlisted_files_are_downloaded_as_they_are() {
    let w = World::new("unlisted", true);
    // The mirror's database is newer than the copy in sync/ (an unchanged one is kept: see
    // unchanged_tests).
    let copy = w.dbpath.join("sync/testrepo.db");
    crate::pacman::unchanged::set_mtime(&copy, crate::pacman::unchanged::PAST);
    let out = w.out("testrepo.db.part");
    let r = w.xfer(&w.url("testrepo.db"), &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &w.fx.db(), &r);
    assert!(
        !w.node().asked(),
        "no gateway for unlisted files: {:?}",
        w.node().responses()
    );
}

/// A file nobody has: exit non-zero with one error line naming the file, the 404 and that no
/// other Server follows, and no OUTPUT bytes.
#[test]
fn a_file_missing_everywhere_fails_with_one_line() {
    let w = World::new("missing", false);
    let out = w.out("nope.part");
    let r = w.xfer(&w.url("nope-1.0-1-any.pkg.tar.zst"), &out);
    r.failure()
        .one_error_line()
        .stderr_has("nope-1.0-1-any.pkg.tar.zst")
        .stderr_has("HTTP 404")
        .stderr_has("it was the last Server of [testrepo], so pacman has no other to try");
    assert_eq!(std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0), 0);
}

/// A file name with an epoch (`:`) and a `+` is found in the database and served from IPFS.
#[test]
fn epoch_and_plus_in_file_names() {
    let w = World::new("plus", true);
    let plus = &w.fx.plus;
    assert!(plus.filename.contains(':') && plus.filename.contains('+'));
    w.add_raw(plus);
    let out = w.out("plus.part");
    let r = w.xfer(&w.url(&plus.filename), &out);
    r.success().stderr_has("from ipfs");
    w.assert_same(&out, &plus.path, &r);
}

/// `file://` URLs are served, and verified like any source: another file, or one byte
/// changed, under the listed name is refused (one error line, no OUTPUT bytes).
#[test]
fn local_file_urls_are_verified_too() {
    let w = World::new("file-url", false);
    let tiny = &w.fx.tiny;
    let local = w.dir.join("mirror/testrepo/os/x86_64").join(&tiny.filename);
    let out = w.out("tiny.part");
    let r = w.xfer(&format!("file://{}", local.display()), &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);

    // A local repository holding wrong bytes under the listed name: another file, and one of
    // the same size with one byte changed.
    let bad_dir = w.dir.join("badrepo");
    std::fs::create_dir_all(&bad_dir).expect("mkdir");
    let mut flipped = std::fs::read(&tiny.path).expect("read tiny");
    flipped[0] ^= 0x01;
    for (what, bytes, why) in [
        (
            "another file",
            std::fs::read(&w.fx.other.path).expect("read other"),
            "wrong bytes: its file is",
        ),
        (
            "one byte changed",
            flipped,
            "wrong bytes: SHA-256 does not match the database",
        ),
    ] {
        std::fs::write(bad_dir.join(&tiny.filename), bytes).expect("write bad file");
        let out2 = w.out("tiny-bad.part");
        let r = w.xfer(
            &format!("file://{}/{}", bad_dir.display(), tiny.filename),
            &out2,
        );
        r.failure().one_error_line().stderr_has(why);
        assert_eq!(
            std::fs::metadata(&out2).map(|m| m.len()).unwrap_or(0),
            0,
            "{what}"
        );
    }
}

/// Every request to the mirror, redirects included, carries pacman's `HTTP_USER_AGENT`;
/// four redirects are followed, and a redirect loop ends in one error line.
#[test]
fn mirror_gets_pacmans_user_agent_and_redirects_are_followed() {
    let w = World::new("ua", false);
    let tiny = &w.fx.tiny;
    let out = w.out("tiny.part");
    let url = format!(
        "{}/redirect/3/testrepo/os/x86_64/{}",
        w.mirror.url(),
        tiny.filename
    );
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .env(
            "HTTP_USER_AGENT",
            "pacman/6.0.2 (Linux x86_64) libalpm/13.0.2",
        )
        .arg("--config")
        .arg(&w.config)
        .arg(&url)
        .arg(&out);
    let r = crate::harness::util::run(&mut cmd);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    let hits = w.mirror.hits_for(&tiny.filename);
    assert_eq!(
        hits.len(),
        5,
        "4 redirects, then the file: {}",
        w.mirror.log_text()
    );
    assert!(hits
        .iter()
        .all(|h| h.user_agent.as_deref() == Some("pacman/6.0.2 (Linux x86_64) libalpm/13.0.2")));

    let looped = format!("{}/redirect/loop/{}", w.mirror.url(), tiny.filename);
    let r = w.xfer(&looped, &w.out("loop.part"));
    r.failure().one_error_line().stderr_has("redirects");
}

/// With `http_proxy` set, the mirror (whose name does not resolve) is reached through the
/// proxy, and the loopback gateway is not proxied.
#[test]
fn the_mirror_goes_through_http_proxy_but_the_gateway_does_not() {
    let w = World::new("proxy", true);
    let (tiny, other) = (&w.fx.tiny, &w.fx.other);
    w.add_raw(tiny);
    // The mirror's host does not resolve: only the proxy can reach it.
    let url = |f: &str| format!("http://mirror.invalid/testrepo/os/x86_64/{f}");
    let run_with_proxy = |u: String, out: std::path::PathBuf| {
        let mut cmd = pacxfer();
        cmd.env_remove("PACXFER_CACHE_DIR")
            .env("http_proxy", w.mirror.url())
            .arg("--config")
            .arg(&w.config)
            .arg(u)
            .arg(out);
        crate::harness::util::run(&mut cmd)
    };
    let out = w.out("other.part");
    let r = run_with_proxy(url(&other.filename), out.clone());
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &other.path, &r);
    let hits = w.mirror.hits_for(&other.filename);
    assert!(
        hits.len() == 1 && hits[0].proxied,
        "{}",
        w.mirror.log_text()
    );

    let out = w.out("tiny.part");
    let r = run_with_proxy(url(&tiny.filename), out.clone());
    r.success().stderr_has("from ipfs");
    assert!(
        w.mirror.hits_for(&tiny.filename).is_empty(),
        "gateway was proxied: {}",
        w.mirror.log_text()
    );
}

/// `fetch NAME` and `fetch FILENAME` find the file through pacman's Server lines: from IPFS
/// when the node holds it, else from the mirror (asked once), leaving no `.part`.
#[test]
fn fetch_by_package_name_uses_the_server_lines() {
    let w = World::new("fetch-name", true);
    let (tiny, other) = (&w.fx.tiny, &w.fx.other);
    w.add_raw(tiny);
    let dest = w.dir.join("downloads");
    std::fs::create_dir_all(&dest).expect("mkdir");

    let r = w.pacxfer(&["fetch", "tiny", "-o", dest.to_str().expect("utf8")]);
    r.success().stderr_has("from ipfs");
    w.assert_same(&dest.join(&tiny.filename), &tiny.path, &r);

    let r = w.pacxfer(&["fetch", &other.filename, "-o", dest.to_str().expect("utf8")]);
    r.success().stderr_has("from mirror");
    w.assert_same(&dest.join(&other.filename), &other.path, &r);
    assert!(!dest.join(format!("{}.part", other.filename)).exists());
    assert_eq!(w.mirror.hits_for(&other.filename).len(), 1);
}

/// `lookup` shows the database's entry (repository, file name, SHA-256, size, signature) and
/// the sources in the order they are tried; an unknown name is exit 1 with one error line.
#[test]
fn lookup_shows_the_entry_and_the_sources_in_order() {
    let w = World::new("lookup", false);
    let tiny = &w.fx.tiny;
    let r = w.pacxfer(&["lookup", "--json", "tiny"]);
    r.success();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout()).expect("json");
    assert_eq!(doc["repo"], "testrepo");
    assert_eq!(doc["filename"].as_str(), Some(tiny.filename.as_str()));
    assert_eq!(doc["sha256"].as_str(), Some(tiny.sha256.as_str()));
    assert_eq!(doc["csize"].as_u64(), Some(tiny.size));
    assert_eq!(doc["signature"], true);
    let sources: Vec<&str> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(sources[0].contains("/ipfs/bafkrei"));
    assert_eq!(sources[1], w.url(&tiny.filename));

    let r = w.pacxfer(&["lookup", &w.fx.big.filename]);
    r.success()
        .stdout_has(&w.fx.big.sha256)
        .stdout_has("not embedded")
        .stdout_has("(unknown)");

    let r = w.pacxfer(&["lookup", "no-such-package"]);
    assert_eq!(r.code(), Some(1), "{}", r.explain("exit 1"));
    r.failure().one_error_line().stderr_has("no-such-package");
}

/// A mirror that sends 1 MiB and goes silent is given up after the stall timeout ("stalled",
/// not the server closing a minute later), the 1 MiB is kept, and the next call resumes at
/// it.
#[test]
fn a_stalled_mirror_fails_and_the_next_call_resumes() {
    let mut w = World::new("stall", false);
    let big = w.fx.big.clone();
    let gateway = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let conf = std::fs::read_to_string(&w.config).expect("read config");
    let mirror_stall = "[mirror]\nstall_timeout = \"5s\"";
    assert!(conf.contains(mirror_stall), "{conf}");
    std::fs::write(
        &w.config,
        conf.replace(mirror_stall, "[mirror]\nstall_timeout = \"1s\""),
    )
    .expect("write config");
    let out = w.out("big.part");

    // The first server sends 1 MiB and goes silent: pacxfer gives up after the stall timeout,
    // exits non-zero and leaves the verified-so-far prefix for the next call.
    let stalled = format!(
        "{}/stall/1048576/testrepo/os/x86_64/{}",
        w.mirror.url(),
        big.filename
    );
    let r = w.xfer(&stalled, &out);
    r.failure().one_error_line().stderr_has("stalled");
    assert_eq!(std::fs::metadata(&out).expect("part kept").len(), 1048576);

    // pacman's next call (its next Server line) resumes from there.
    let r = w.xfer(&w.url(&big.filename), &out);
    r.success().stderr_has("resumed at 1.0 MiB");
    w.assert_same(&out, &big.path, &r);
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(
        hits.last().and_then(|h| h.range.clone()).as_deref(),
        Some("bytes=1048576-")
    );
}

/// A server announces the whole file, sends its first 500,000 bytes and closes: the call
/// fails, keeping exactly those bytes, and pacman's next call (the next Server) asks only for
/// the rest (`Range: bytes=500000-`) and completes the file.
#[test]
fn a_body_cut_short_is_resumed_from_the_next_source() {
    let w = World::new("cut", false);
    let big = &w.fx.big;
    let out = w.out("big.part");
    let cut = format!(
        "{}/cut/500000/testrepo/os/x86_64/{}",
        w.mirror.url(),
        big.filename
    );
    let r = w.xfer(&cut, &out);
    r.failure().one_error_line().stderr_has("broke off");
    let kept = std::fs::read(&out).expect("part kept");
    let whole = std::fs::read(&big.path).expect("read big");
    assert!(
        kept.len() == 500_000 && whole.starts_with(&kept),
        "{}",
        r.explain(&format!("kept {} bytes", kept.len()))
    );
    let r = w.xfer(&w.url(&big.filename), &out);
    r.success().stderr_has("resumed at");
    w.assert_same(&out, &big.path, &r);
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(hits.len(), 2, "{}", w.mirror.log_text());
    assert!(hits[0].path.starts_with("/cut/"), "{}", w.mirror.log_text());
    assert_eq!(
        (hits[1].range.as_deref(), hits[1].bytes),
        (Some("bytes=500000-"), big.size - 500_000),
        "{}",
        w.mirror.log_text()
    );
}

/// With `network_timeout` the node is asked twice, cache-only (412) then allowing a network
/// search (404 from this offline node), before the mirror.
#[test]
fn with_network_timeout_the_node_may_search_before_the_mirror() {
    let mut w = World::new("network", true);
    let other = w.fx.other.clone();
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], "network_timeout = \"5s\"");
    let out = w.out("other.part");
    let r = w.xfer_verbose(&w.url(&other.filename), &out);
    r.success()
        .stderr_has("from the IPFS network")
        .stderr_has("from mirror");
    w.assert_same(&out, &other.path, &r);
    // First the cache-only question (412), then the network one, which this offline node
    // answers 404: it has nowhere to look.
    let responses = w.node().responses();
    assert_eq!(responses.get(&412), Some(&1), "{responses:?}");
    assert_eq!(responses.get(&404), Some(&1), "{responses:?}");
}

/// A gateway that accepts connections and never answers costs one stall timeout: its second
/// template is not tried, and the mirror serves.
#[test]
fn a_hung_gateway_is_waited_for_once_then_skipped() {
    let mut w = World::new("hung", false);
    // Accepts connections (the kernel's backlog) and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gateway = format!("http://{}", hung.local_addr().expect("addr"));
    w.configure(
        &gateway,
        &["/ipfs/{cid}", "/ipns/cache/{sha256}"],
        "stall_timeout = \"1s\"",
    );
    let tiny = w.fx.tiny.clone();
    let out = w.out("tiny.part");
    let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
    r.success()
        .stderr_has("no answer within 1.0")
        .stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);
    let tried = r.stderr().matches(&format!("trying {gateway}")).count();
    assert_eq!(tried, 1, "{}", r.explain("the second template is skipped"));
    drop(hung);
}
