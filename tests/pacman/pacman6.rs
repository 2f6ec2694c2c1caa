//! Real pacman (Debian's pacman-package-manager) with pacxfer as its XferCommand: `-Sy`, `-Sw`
//! and `-S` against the test mirror and a real Kubo node. Which source served each package
//! is read from the mirror's log and the node's own response counts; installed files are read from the root.

use crate::harness::util::sha256_hex;
use crate::harness::world::World;

#[test]
fn pacman_syncs_downloads_and_installs_through_pacxfer() {
    let mut w = World::new("pacman-e2e", true);
    let (tiny, big, other) = (w.fx.tiny.clone(), w.fx.big.clone(), w.fx.other.clone());
    // Start from nothing: pacman -Sy downloads the database through pacxfer.
    w.ipfs_holds_tiny_and_big();

    let r = w.pacman(&["-Sy"]);
    r.success();
    assert_eq!(
        w.mirror.hits_for("testrepo.db").len(),
        1,
        "{}",
        w.mirror.log_text()
    );

    let r = w.pacman(&["-Sw", "--noconfirm", "tiny", "big", "other"]);
    r.success();
    let cache = w.dir.join("cache");
    for pkg in [&tiny, &big, &other] {
        let cached = cache.join(&pkg.filename);
        assert_eq!(
            sha256_hex(&cached),
            pkg.sha256,
            "{}",
            r.explain(&pkg.filename)
        );
    }
    // tiny and big came from IPFS, other from the mirror.
    assert!(
        w.mirror.hits_for(&tiny.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert!(
        w.mirror.hits_for(&big.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(
        w.mirror.hits_for(&other.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
    // The node's own count: two whole files served.
    assert_eq!(w.node().answered(200), 2, "{:?}", w.node().responses());
    let err = r.stderr();
    assert!(
        err.contains(&format!("{} ", tiny.filename)) && err.contains("from ipfs"),
        "{}",
        r.explain("source lines")
    );

    let r = w.pacman(&["-S", "--noconfirm", "tiny", "big"]);
    r.success();
    let root = w.dir.join("root");
    let hello = std::fs::read_to_string(root.join("usr/share/tiny/hello.txt")).unwrap_or_default();
    assert_eq!(
        hello,
        "hello from tiny\n",
        "{}",
        r.explain("installed file")
    );
    let blob = std::fs::metadata(root.join("usr/share/big/blob"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(blob, 3 * 1024 * 1024, "{}", r.explain("installed blob"));
}

/// The node serves tiny's size with one byte changed: only the SHA-256 tells, and pacman gets
/// the mirror's bytes; then the node is gone, and the mirror serves too.
#[test]
fn pacman_keeps_working_when_the_node_is_down_or_lies() {
    let mut w = World::new("pacman-faults", true);
    let (tiny, other) = (w.fx.tiny.clone(), w.fx.other.clone());
    // The node serves bytes of tiny's size, one byte flipped, under tiny's checksum.
    let mut wrong = std::fs::read(&tiny.path).expect("read");
    let middle = wrong.len() / 2;
    wrong[middle] ^= 0x55;
    let dir = w.node().add_dir(&[(tiny.sha256.as_str(), &wrong)]);
    let gateway = w.node().url.clone();
    let template = format!("/ipfs/{dir}/{{sha256}}");
    w.configure(&gateway, &[template.as_str()], "");

    let r = w.pacman(&["-Sw", "--noconfirm", "tiny"]);
    r.success()
        .stderr_has("wrong bytes: SHA-256 does not match the database");
    assert_eq!(
        sha256_hex(&w.dir.join("cache").join(&tiny.filename)),
        tiny.sha256
    );
    assert_eq!(
        w.node().answered(200),
        1,
        "the node was asked: {:?}",
        w.node().responses()
    );
    assert_eq!(
        w.mirror.hits_for(&tiny.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );

    // Now the node is gone.
    w.node.take().expect("node").stop();
    let r = w.pacman(&["-Sw", "--noconfirm", "other"]);
    r.success();
    assert_eq!(
        sha256_hex(&w.dir.join("cache").join(&other.filename)),
        other.sha256
    );
    assert_eq!(w.mirror.hits_for(&other.filename).len(), 1);
}

#[test]
fn pacman_resumes_a_part_file_left_in_the_cache() {
    let w = World::new("pacman-resume", false);
    let big = &w.fx.big;
    let bytes = std::fs::read(&big.path).expect("read");
    let third = bytes.len() / 3;
    let part = w.dir.join("cache").join(format!("{}.part", big.filename));
    std::fs::write(&part, &bytes[..third]).expect("write part");

    let r = w.pacman(&["-Sw", "--noconfirm", "big"]);
    r.success();
    assert_eq!(
        sha256_hex(&w.dir.join("cache").join(&big.filename)),
        big.sha256
    );
    let hits = w.mirror.hits_for(&big.filename);
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(
        hits[0].range.as_deref(),
        Some(format!("bytes={third}-").as_str()),
        "{}",
        r.explain("range")
    );
}
