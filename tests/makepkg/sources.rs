//! Build sources by checksum: real makepkg, run as the `builder` user with `DLAGENTS` set to
//! `pacxfer dlagent`, builds packages whose sources live on a local upstream server; once
//! they are shared, they build again from the Kubo node with that server stopped. A node
//! that serves wrong bytes is passed over, and sources their PKGBUILD does not pin by a
//! strong sum come from upstream only.

use sha2::Digest;

use crate::harness::builder::{give_to_builder, Build};
use crate::harness::kubo::{Node, Options};
use crate::harness::util::run;

fn hex_sum<D: Digest>(bytes: &[u8]) -> String {
    hex::encode(D::digest(bytes))
}

fn sha256(bytes: &[u8]) -> String {
    hex_sum::<sha2::Sha256>(bytes)
}

fn random(len: usize, seed: u8) -> Vec<u8> {
    // Distinct, incompressible enough, and cheap: a counter run through SHA-256.
    let mut out = Vec::with_capacity(len + 32);
    let mut n = 0u64;
    while out.len() < len {
        let mut h = sha2::Sha256::new();
        h.update([seed]);
        h.update(n.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        n += 1;
    }
    out.truncate(len);
    out
}

/// The names a node's directory `/ipfs/<path>` links.
fn links(node: &Node, path: &str) -> Vec<String> {
    node.rpc(&format!("ls?arg=/ipfs/{path}"))["Objects"][0]["Links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["Name"].as_str().expect("name").to_string())
        .collect()
}

fn pkgbuild(head: &str, body: &str) -> String {
    format!(
        "pkgver=1.0\npkgrel=1\npkgdesc='pacxfer build source test'\nlicense=(MIT)\n\
         options=(!strip !debug)\n{head}\n{body}\n"
    )
}

#[test]
fn three_packages_build_again_from_ipfs_with_upstream_stopped() {
    let mut b = Build::new("build-sources");
    // alpha: a renamed source pinned by sha256, and a local patch.
    let alpha_src = random(3_000_000, 1);
    b.upstream_file("dl/v1.0.bin", &alpha_src);
    let patch = b"--- a\n+++ b\n";
    b.pkgbuild(
        "alpha",
        &pkgbuild(
            &format!(
                "pkgname=alpha\narch=(any)\nsource=(\"alpha-$pkgver.bin::{}\" alpha.patch)\nsha256sums=('{}' '{}')",
                b.url("dl/v1.0.bin"),
                sha256(&alpha_src),
                sha256(patch)
            ),
            "package() { install -Dm644 \"$srcdir/alpha-$pkgver.bin\" \"$pkgdir/usr/share/alpha/src.bin\"; }",
        ),
        &[("alpha.patch", patch)],
    );
    // beta: a split package with per-architecture sources pinned by sha512.
    let beta_x86 = random(500_000, 2);
    let beta_arm = random(400_000, 3);
    b.upstream_file("beta-x86_64.bin", &beta_x86);
    b.upstream_file("beta-aarch64.bin", &beta_arm);
    b.pkgbuild(
        "beta",
        &pkgbuild(
            &format!(
                "pkgbase=beta\npkgname=(beta beta-doc)\narch=(x86_64 aarch64)\n\
                 source_x86_64=(\"{}\")\nsource_aarch64=(\"{}\")\n\
                 sha512sums_x86_64=('{}')\nsha512sums_aarch64=('{}')",
                b.url("beta-x86_64.bin"),
                b.url("beta-aarch64.bin"),
                hex_sum::<sha2::Sha512>(&beta_x86),
                hex_sum::<sha2::Sha512>(&beta_arm),
            ),
            "package_beta() { install -Dm644 \"$srcdir/beta-x86_64.bin\" \"$pkgdir/usr/share/beta/blob\"; }\n\
             package_beta-doc() { install -d \"$pkgdir/usr/share/doc/beta\"; }",
        ),
        &[],
    );
    // gamma: 100 MB pinned by BLAKE2b only, built with SRCDEST set.
    let gamma_src = random(100 << 20, 4);
    b.upstream_file("gamma-big.bin", &gamma_src);
    b.pkgbuild(
        "gamma",
        &pkgbuild(
            &format!(
                "pkgname=gamma\narch=(any)\nsource=(\"{}\")\nb2sums=('{}')",
                b.url("gamma-big.bin"),
                hex_sum::<blake2::Blake2b512>(&gamma_src)
            ),
            "package() { install -d \"$pkgdir/usr/share/gamma\"; sha256sum \"$srcdir/gamma-big.bin\" | cut -d' ' -f1 > \"$pkgdir/usr/share/gamma/sum\"; }",
        ),
        &[],
    );
    let srcdest = b.dir.join("srcdest").display().to_string();
    let with_srcdest = [("SRCDEST", srcdest.as_str())];

    // First builds: from upstream. alpha and beta are shared by the agent itself.
    b.makepkg_plain("alpha", &[])
        .success()
        .stderr_has("from upstream");
    b.makepkg("beta", &[]).success().stderr_has("from upstream");
    // gamma without after_fetch, then shared by `seed --sources`.
    b.share_extra = "after_fetch = false\nlan = false\n".into();
    b.configure();
    b.makepkg("gamma", &with_srcdest)
        .success()
        .stderr_has("gamma-big.bin 100.0 MiB from upstream");
    assert!(
        b.dir.join("srcdest/gamma-big.bin").is_file(),
        "SRCDEST holds gamma's source"
    );
    for name in ["dl/v1.0.bin", "beta-x86_64.bin", "gamma-big.bin"] {
        assert_eq!(
            b.upstream().hits_for(name).len(),
            1,
            "{name}: {}",
            b.upstream().log_text()
        );
    }
    assert!(b.upstream().hits_for("beta-aarch64.bin").is_empty());
    // The agent linked alpha by SHA-256 and beta by SHA-512 too.
    let stat = |path: &str| b.node.rpc_raw(&format!("files/stat?arg={path}"), None).0;
    assert_eq!(stat(&format!("/pacxfer/{}", sha256(&alpha_src))), 200);
    assert_eq!(
        stat(&format!(
            "/pacxfer/sources/sha512/{}",
            hex_sum::<sha2::Sha512>(&beta_x86)
        )),
        200
    );
    assert_eq!(
        stat(&format!(
            "/pacxfer/sources/b2/{}",
            hex_sum::<blake2::Blake2b512>(&gamma_src)
        )),
        500,
        "gamma is not shared yet"
    );
    let pkgs = b.dir.join("pkgs").display().to_string();
    let bin = crate::harness::util::pacxfer_bin().display().to_string();
    let conf = b.config.display().to_string();
    let r = b.as_builder(
        &b.dir.join("home"),
        &[&bin, "--config", &conf, "seed", "--sources", &pkgs],
        &with_srcdest,
    );
    r.success()
        .stderr_has("seed: 1 sources added (100.0 MiB), 2 already in the node");
    assert_eq!(
        stat(&format!(
            "/pacxfer/sources/b2/{}",
            hex_sum::<blake2::Blake2b512>(&gamma_src)
        )),
        200
    );

    // Upstream gone: every source comes from the node, checked against its sums.
    b.stop_upstream();
    for pkg in ["alpha", "beta", "gamma"] {
        b.clean(pkg, &["alpha.patch"]);
    }
    std::fs::remove_dir_all(b.dir.join("out")).expect("rm out");
    std::fs::create_dir_all(b.dir.join("out")).expect("mkdir out");
    give_to_builder(&b.dir.join("out"));
    let before = b.node.answered(200);
    b.makepkg_plain("alpha", &[])
        .success()
        .stderr_has("alpha-1.0.bin 2.9 MiB from ipfs");
    b.makepkg("beta", &[])
        .success()
        .stderr_has("beta-x86_64.bin 488.3 KiB from ipfs");
    b.makepkg("gamma", &with_srcdest)
        .success()
        .stderr_has("gamma-big.bin 100.0 MiB from ipfs");
    assert_eq!(b.node.answered(200) - before, 3, "{:?}", b.node.responses());
    assert!(
        std::fs::read(b.dir.join("srcdest/gamma-big.bin")).expect("read gamma") == gamma_src,
        "gamma's source is upstream's bytes"
    );
    assert_eq!(
        b.built(),
        vec![
            "alpha-1.0-1-any.pkg.tar.zst",
            "beta-1.0-1-x86_64.pkg.tar.zst",
            "beta-doc-1.0-1-x86_64.pkg.tar.zst",
            "gamma-1.0-1-any.pkg.tar.zst"
        ]
    );
}

#[test]
fn wrong_bytes_skip_and_weak_sums_come_from_upstream() {
    let b = Build::new("build-sources-faults");
    let good = random(700_000, 5);
    let notes = b"release notes\n".to_vec();
    let old = random(20_000, 6);
    b.upstream_file("delta.bin", &good);
    b.upstream_file("notes.txt", &notes);
    b.upstream_file("old.bin", &old);
    b.pkgbuild(
        "delta",
        &pkgbuild(
            &format!(
                "pkgname=delta\narch=(any)\nsource=(\"{}\" \"{}\" \"{}\")\n\
                 sha256sums=('{}' SKIP SKIP)\nmd5sums=(SKIP SKIP '{}')",
                b.url("delta.bin"),
                b.url("notes.txt"),
                b.url("old.bin"),
                sha256(&good),
                hex_sum::<md5::Md5>(&old),
            ),
            "package() { install -d \"$pkgdir/usr/share/delta\"; }",
        ),
        &[],
    );
    // The node links other bytes where delta.bin's SHA-256 says, and holds the SKIP and the
    // md5-only sources under their own SHA-256: none of them may be taken.
    let wrong = random(600_000, 7);
    let cid = b.node.add("wrong", &wrong);
    let link = |cid: &str, at: &str| {
        b.node.rpc("files/mkdir?arg=/pacxfer&parents=true");
        b.node
            .rpc(&format!("files/cp?arg=/ipfs/{cid}&arg=/pacxfer/{at}"));
    };
    link(&cid, &sha256(&good));
    link(&b.node.add("notes", &notes), &sha256(&notes));
    link(&b.node.add("old", &old), &sha256(&old));

    let r = b.makepkg("delta", &[]);
    r.success()
        .stderr_has("wrong bytes: they do not match the PKGBUILD's sums")
        .stderr_has("delta.bin 683.6 KiB from upstream")
        .stderr_has("notes.txt 14 B from upstream")
        .stderr_has("old.bin 19.5 KiB from upstream");
    for name in ["delta.bin", "notes.txt", "old.bin"] {
        assert_eq!(b.upstream().hits_for(name).len(), 1, "{name}");
    }
    // Only the wrong copy was fetched from the node.
    assert_eq!(b.node.answered(200), 1, "{:?}", b.node.responses());
    assert_eq!(
        std::fs::read(b.pkg_dir("delta").join("delta.bin")).expect("read"),
        good
    );

    // `makepkg -g` (what updpkgsums runs) makes new sums from upstream's files: the node is
    // not asked, whatever it holds under the old ones.
    b.clean("delta", &[]);
    let conf = b.makepkg_conf.display().to_string();
    let r = b.as_builder(
        &b.pkg_dir("delta"),
        &["makepkg", "--config", &conf, "-g"],
        &[],
    );
    r.success()
        .stdout_has(&format!("sha256sums=('{}'", sha256(&good)))
        .stderr_has("delta.bin 683.6 KiB from upstream");
    assert_eq!(b.node.answered(200), 1, "{:?}", b.node.responses());
    assert_eq!(b.upstream().hits_for("delta.bin").len(), 2);
}

#[test]
fn the_agent_outside_makepkg_is_one_error_line_or_an_unchecked_download() {
    let mut b = Build::new("build-sources-cli");
    // Nothing shared: every call below goes upstream.
    b.share_extra = "after_fetch = false\nlan = false\n".into();
    b.configure();
    b.upstream_file("x.bin", b"bytes");
    let bin = crate::harness::util::pacxfer_bin().display().to_string();
    let conf = b.config.display().to_string();
    let home = b.dir.join("home");
    let r = b.as_builder(
        &home,
        &[
            &bin,
            "--config",
            &conf,
            "dlagent",
            "ftp://host/x.bin",
            "x.bin.part",
        ],
        &[],
    );
    r.failure()
        .one_error_line()
        .stderr_has("pacxfer dlagent downloads http:// and https:// sources");
    // No PKGBUILD names it: fetched from upstream as it is, said with -v.
    let url = b.url("x.bin");
    let r = b.as_builder(
        &home,
        &[&bin, "-v", "--config", &conf, "dlagent", &url, "x.bin.part"],
        &[],
    );
    r.success()
        .stderr_has("no PKGBUILD found that lists x.bin")
        .stderr_has("from upstream");
    assert_eq!(
        std::fs::read(home.join("x.bin.part")).expect("read"),
        b"bytes"
    );
    // Upstream bytes that do not match the sums (a PKGBUILD whose sums `updpkgsums` is about
    // to update, or `--skipinteg`): handed to makepkg with a warning, which checks them. The
    // .SRCINFO is in a directory whose name has a space: makepkg splits the agent line there.
    let spaced = home.join("with space");
    std::fs::create_dir_all(&spaced).expect("mkdir");
    std::fs::write(
        spaced.join(".SRCINFO"),
        format!(
            "pkgbase = x\n\tsource = {url}\n\tsha256sums = {}\n\npkgname = x\n",
            "00".repeat(32)
        ),
    )
    .expect("write .SRCINFO");
    give_to_builder(&spaced);
    std::fs::remove_file(home.join("x.bin.part")).expect("rm part");
    let first = format!("{}/with", home.display());
    let r = b.as_builder(
        &home,
        &[
            &bin,
            "-v",
            "--config",
            &conf,
            "dlagent",
            "--srcinfo",
            &first,
            "space",
            &url,
            "x.bin.part",
        ],
        &[],
    );
    r.success()
        .stderr_has("with space/.SRCINFO pins x.bin by sha256")
        .stderr_has("the file does not match the sums its PKGBUILD pins; handing it to makepkg");
    assert_eq!(
        std::fs::read(home.join("x.bin.part")).expect("read"),
        b"bytes"
    );
    std::fs::remove_file(home.join("x.bin.part")).expect("rm part");

    // A part left by an interrupted download is resumed, and judged whole at its end; a part
    // of other bytes is resumed, found wrong, and fetched again from byte 0.
    let big = random(300_000, 9);
    b.upstream_file("big.bin", &big);
    let url = b.url("big.bin");
    std::fs::write(
        home.join(".SRCINFO"),
        format!(
            "pkgbase = x\n\tsource = {url}\n\tsha512sums = {}\n\npkgname = x\n",
            hex_sum::<sha2::Sha512>(&big)
        ),
    )
    .expect("write .SRCINFO");
    let part = home.join("big.bin.part");
    for (prefix, hits) in [(big[..100_000].to_vec(), 1), (random(100_000, 10), 3)] {
        std::fs::write(&part, &prefix).expect("write part");
        give_to_builder(&part);
        let r = b.as_builder(
            &home,
            &[&bin, "--config", &conf, "dlagent", &url, "big.bin.part"],
            &[],
        );
        r.success();
        assert!(
            std::fs::read(&part).expect("read") == big,
            "{}",
            r.explain("the whole source")
        );
        let got = b.upstream().hits_for("big.bin");
        assert_eq!(got.len(), hits, "{}", b.upstream().log_text());
        assert_eq!(
            got[hits - 1 - usize::from(hits == 3)].range.as_deref(),
            Some("bytes=100000-")
        );
        std::fs::remove_file(&part).expect("rm part");
    }
}

#[test]
fn a_source_cache_serves_builds_with_upstream_stopped_and_prunes_what_went() {
    let online = || Options {
        online: true,
        ..Options::default()
    };
    let mut b = Build::with_node("build-source-cache", online());
    let publisher = Node::start_with(b.dir.path(), "publisher", online());
    b.node.connect(&publisher);
    let one = random(1_500_000, 11);
    let two = random(300_000, 12);
    let old = random(50_000, 13);
    b.upstream_file("one-1.0.bin", &one);
    b.upstream_file("two.bin", &two);
    b.upstream_file("old.bin", &old);
    let write_one = |b: &Build, file: &str, bytes: &[u8]| {
        b.pkgbuild(
            "one",
            &pkgbuild(
                &format!(
                    "pkgname=one\narch=(any)\nsource=(\"{}\" \"{}\")\nsha256sums=('{}' SKIP)",
                    b.url(file),
                    b.url("old.bin"),
                    sha256(bytes)
                ),
                "package() { install -d \"$pkgdir/usr/share/one\"; }",
            ),
            &[],
        )
    };
    write_one(&b, "one-1.0.bin", &one);
    b.pkgbuild(
        "two",
        &pkgbuild(
            &format!(
                "pkgname=two\narch=(any)\nsource=(\"{}\")\nb2sums=('{}')",
                b.url("two.bin"),
                hex_sum::<blake2::Blake2b512>(&two)
            ),
            "package() { install -d \"$pkgdir/usr/share/two\"; }",
        ),
        &[],
    );
    // The publisher, as root with its own state, reads the .SRCINFO files (it never runs a
    // PKGBUILD) and publishes to its own node.
    let conf = b.dir.join("publisher.conf");
    std::fs::write(
        &conf,
        format!("cache_dir = \"\"\n[share]\napi = {:?}\n", publisher.api),
    )
    .expect("write publisher config");
    let state = b.dir.join("publisher/state.sqlite");
    let pkgs = b.dir.join("pkgs");
    let publish = |keep: &str| {
        run(crate::harness::util::pacxfer()
            .env_remove("PACXFER_CACHE_DIR")
            .arg("--config")
            .arg(&conf)
            .args(["publish", "--sources"])
            .arg(&pkgs)
            .arg("--state")
            .arg(&state)
            .args(["--ipns-key", "sources", "--keep", keep, "--json"]))
    };
    let r = publish("60");
    r.success().stderr_has(
        "[sources] 2 PKGBUILDs: 2 sources added (1.7 MiB), 0 already published, 1 not pinned",
    );
    let root = crate::publish::runs::summary(&r)["root"]
        .as_str()
        .expect("root")
        .to_string();
    for name in ["one-1.0.bin", "two.bin"] {
        assert_eq!(b.upstream().hits_for(name).len(), 1, "{name}");
    }
    assert!(
        b.upstream().hits_for("old.bin").is_empty(),
        "SKIP is not published"
    );
    // Every sum a file hashed to, and the names of each package base.
    let ls = |path: &str| links(&publisher, &format!("{root}/{path}"));
    assert_eq!(ls("sources"), vec!["b2", "names", "sha256", "sha512"]);
    assert_eq!(ls("sources/sha256"), {
        let mut v = vec![sha256(&one), sha256(&two)];
        v.sort();
        v
    });
    assert_eq!(ls("sources/names/one"), vec!["one-1.0.bin"]);
    // Incremental: nothing fetched again.
    publish("60")
        .success()
        .stderr_has("0 sources added (0 B), 2 already published");
    assert_eq!(b.upstream().hits_for("one-1.0.bin").len(), 1);

    // Builders name the cache by its root; upstream is gone.
    b.gateway_extra = "network_timeout = \"20s\"\n".into();
    b.share_extra = "after_fetch = false\nlan = false\n".into();
    b.configure_with(&[&format!("/ipfs/{root}/sources/{{algo}}/{{hex}}")]);
    b.upstream_file("old.bin", &old);
    // lookup says what the agent would try, in the order it would.
    let r = run(crate::harness::util::pacxfer()
        .arg("--config")
        .arg(&b.config)
        .arg("lookup")
        .arg(b.pkg_dir("one")));
    r.success()
        .stdout_has(&format!(
            "one: one-1.0.bin ({})\n  pinned by sha256:{}\n  1. {}/ipfs/{root}/sources/sha256/{}\n",
            b.url("one-1.0.bin"),
            sha256(&one),
            b.node.url,
            sha256(&one)
        ))
        .stdout_has(&format!(
            "one: old.bin ({})\n  no sum (SKIP): not pinned by a strong sum, from upstream only\n  1. {}\n",
            b.url("old.bin"),
            b.url("old.bin")
        ));
    let old_hits = b.upstream().hits_for("old.bin").len();
    b.makepkg("one", &[])
        .success()
        .stderr_has("one-1.0.bin 1.4 MiB from ipfs")
        .stderr_has("old.bin 48.8 KiB from upstream");
    assert_eq!(b.upstream().hits_for("old.bin").len(), old_hits + 1);
    b.stop_upstream();
    b.makepkg("two", &[])
        .success()
        .stderr_has("two.bin 293.0 KiB from ipfs");

    // A new version: published, and the old one pruned once no PKGBUILD names it.
    let b2 = Build::new("build-source-cache-upstream2");
    let one2 = random(100_000, 14);
    b2.upstream_file("one-2.0.bin", &one2);
    let moved = b2.url("one-2.0.bin");
    b.pkgbuild(
        "one",
        &pkgbuild(
            &format!(
                "pkgname=one\narch=(any)\nsource=(\"{moved}\")\nsha256sums=('{}')",
                sha256(&one2)
            ),
            "package() { install -d \"$pkgdir/usr/share/one\"; }",
        ),
        &[],
    );
    let r = publish("0");
    r.success().stderr_has(
        "1 sources added (97.7 KiB), 1 already published, 0 not pinned by a strong sum, 1 pruned",
    );
    let root = crate::publish::runs::summary(&r)["root"]
        .as_str()
        .expect("root")
        .to_string();
    let ls = |path: &str| links(&publisher, &format!("{root}/{path}"));
    let mut want = vec![sha256(&one2), sha256(&two)];
    want.sort();
    assert_eq!(ls("sources/sha256"), want);
    assert_eq!(ls("sources/names/one"), vec!["one-2.0.bin"]);
}

#[test]
fn doctor_says_whether_makepkg_fetches_sources_through_pacxfer() {
    let dir = crate::harness::util::TestDir::new("doctor-dlagents");
    let doctor = |conf: Option<&str>| {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("mkdir home");
        let _ = std::fs::remove_file(home.join(".makepkg.conf"));
        if let Some(text) = conf {
            std::fs::write(home.join(".makepkg.conf"), text).expect("write makepkg.conf");
        }
        let r = run(crate::harness::util::pacxfer()
            .env("HOME", &home)
            .args(["doctor", "--json"]));
        let checks: serde_json::Value =
            serde_json::from_str(r.stdout().trim()).expect("doctor JSON");
        checks
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check"] == "build sources")
            .cloned()
            .expect("a build sources check")
    };
    assert_eq!(doctor(None)["status"], "skip");
    let both = "DLAGENTS=(\"http::/usr/bin/pacxfer dlagent --srcinfo $startdir %u %o\"\n  \"https::/usr/bin/pacxfer dlagent --srcinfo $startdir %u %o\")\n";
    let c = doctor(Some(both));
    assert_eq!(c["status"], "ok", "{c}");
    // Without --srcinfo: works, but not with SRCDEST outside a shell.
    let plain = "DLAGENTS=('http::/usr/bin/pacxfer dlagent %u %o' 'https::/usr/bin/pacxfer dlagent %u %o')\n";
    let c = doctor(Some(plain));
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["fix"]
        .as_str()
        .expect("fix")
        .contains("--srcinfo $startdir"));
    let one = "DLAGENTS=('https::/usr/bin/pacxfer dlagent %u %o')\n";
    let c = doctor(Some(one));
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["detail"]
        .as_str()
        .expect("detail")
        .contains("only one of http and https"));
    // $startdir in single quotes is not expanded.
    let single = "DLAGENTS=('http::/usr/bin/pacxfer dlagent --srcinfo $startdir %u %o' 'https::/usr/bin/pacxfer dlagent --srcinfo $startdir %u %o')\n";
    let c = doctor(Some(single));
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["detail"]
        .as_str()
        .expect("detail")
        .contains("single quotes"));
    // The drop-in pacxfer ships, after makepkg.conf's own agents.
    let dropin = std::fs::read_to_string(
        crate::harness::util::repo_root().join("contrib/makepkg.conf.d/pacxfer.conf"),
    )
    .expect("read the drop-in");
    assert_eq!(doctor(Some(&dropin))["status"], "ok");
    // Appended after /etc/makepkg.conf's curl lines: makepkg takes the first, so not used.
    let appended = "DLAGENTS+=('https::/usr/bin/pacxfer dlagent %u %o')\n";
    assert_eq!(doctor(Some(appended))["status"], "skip");
}
