//! Sharing on a LAN (`ipfs::lan`), end to end: three machines in their own network
//! namespaces on one bridge, each with its own Kubo node (mDNS, no bootstrap peers), pacman
//! root and pacxfer config, and the mirror behind an uplink in a fourth namespace. Real pacman
//! 6 downloads through pacxfer; the mirror's log says what crossed the uplink, each machine's
//! pacxfer log (`pacxfer stats`) where its bytes came from.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::lan::{Lan, Machine};
use crate::harness::util::{spawn, Run};

/// `pacman -Sy`, then `pacman -S` of `names`, on `m`.
fn upgrade(m: &Machine, names: &[&str]) -> Run {
    m.pacman(&["-Sy", "--noconfirm"]).success();
    let mut args = vec!["-S", "--noconfirm"];
    args.extend_from_slice(names);
    m.pacman(&args)
}

/// Packages (not databases) by source in `m`'s download log.
fn package_sources(m: &Machine) -> BTreeMap<String, u64> {
    let stats = m.stats();
    let mut out = BTreeMap::new();
    if let Some(sources) = stats["sources"].as_object() {
        for (k, v) in sources {
            out.insert(k.clone(), v["files"].as_u64().unwrap_or(0));
        }
    }
    out
}

#[test]
fn three_machines_take_each_package_from_the_uplink_once() {
    let lan = Lan::new("lan-three", 3, "400mbit");
    let names = lan.names();
    let pkgs = &lan.repo.pkgs;
    let total: u64 = pkgs.iter().map(|p| p.size).sum();
    assert!(total > 90 << 20, "the repository is about 100 MB ({total})");

    // Machine 1 upgrades first: everything crosses the uplink, once.
    let m1 = &lan.machines[0];
    let r1 = upgrade(m1, &names);
    r1.success();
    m1.assert_has_all(pkgs, &r1);
    let hits = lan.package_hits();
    assert_eq!(
        hits.len(),
        pkgs.len(),
        "{}",
        r1.explain("every package from the mirror")
    );
    assert!(hits.values().all(|n| *n == 1), "{hits:?}");
    m1.node.wait_published();

    // Machines 2 and 3 upgrade at the same moment: nothing more crosses the uplink.
    let (r2, r3) = std::thread::scope(|s| {
        let a = s.spawn(|| upgrade(&lan.machines[1], &names));
        let b = s.spawn(|| upgrade(&lan.machines[2], &names));
        (a.join().expect("machine 2"), b.join().expect("machine 3"))
    });
    for (m, r) in [(&lan.machines[1], &r2), (&lan.machines[2], &r3)] {
        r.success();
        m.assert_has_all(pkgs, r);
        let by_source = package_sources(m);
        assert_eq!(
            by_source.get("lan").copied(),
            Some(pkgs.len() as u64),
            "{}",
            r.explain(&format!(
                "{}: every package from LAN peers: {by_source:?}",
                m.ns
            ))
        );
    }
    let hits = lan.package_hits();
    assert!(
        hits.len() == pkgs.len() && hits.values().all(|n| *n == 1),
        "each package crossed the uplink once: {hits:?}\n{}",
        r2.explain("machine 2")
    );
    // The first machine's node sent blocks; the mirror sent each package once.
    assert!(m1.node.blocks_sent() > 0);
}

#[test]
fn a_lan_peer_that_lies_or_goes_away_is_passed_over_for_the_mirror() {
    let mut lan = Lan::new("lan-faults", 3, "400mbit");
    let repo = lan.repo;
    let names: Vec<&str> = repo.pkgs.iter().map(|p| p.name.as_str()).collect();
    let pkgs = &repo.pkgs;
    let (m1, m2) = (&lan.machines[0], &lan.machines[1]);
    upgrade(m1, &names).success();
    assert_eq!(lan.package_hits().len(), pkgs.len());
    m1.node.wait_published();

    // Machine 1 serves wrong bytes of the right size for one package.
    let liar = &pkgs[20];
    let fake = lan.dir.join("fake");
    let garbage: Vec<u8> = (0..liar.size).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&fake, &garbage).expect("write fake");
    let fake_cid = m1
        .node
        .cli(&[
            "add",
            "-Q",
            "--cid-version=1",
            "--raw-leaves",
            "--chunker=size-1048576",
            &fake.display().to_string(),
        ])
        .trim()
        .to_string();
    let entry = format!("/pacxfer/{}", liar.sha256);
    m1.node.cli(&["files", "rm", &entry]);
    m1.node
        .cli(&["files", "cp", &format!("/ipfs/{fake_cid}"), &entry]);
    let root = m1.node.cli(&["files", "stat", "--hash", "/pacxfer"]);
    m1.node.cli(&[
        "name",
        "publish",
        "--key=self",
        "--ttl=15s",
        &format!("/ipfs/{}", root.trim()),
    ]);
    m2.pacman(&["-Sy", "--noconfirm"]).success();
    let r = m2.pacman(&["-S", "--noconfirm", &liar.name]);
    r.success();
    m2.assert_has_all(std::slice::from_ref(liar), &r);
    let out = format!("{}{}", r.stdout(), r.stderr());
    assert!(
        out.contains("SHA-256 does not match") && out.contains("LAN"),
        "{}",
        r.explain("the lying peer is named")
    );
    assert_eq!(
        lan.package_hits().get(&liar.filename),
        Some(&2),
        "{}",
        r.explain("mirror")
    );

    // The liar is not asked again for a while: machine 2 remembers it. Forgotten here, so
    // that the next part starts with machine 1 trusted again.
    let m1_id = m1.node.cli(&["id", "-f", "<id>"]).trim().to_string();
    let skipped = m2.dir.join("pacxfer-cache").join("lan-skipped");
    let remembered = std::fs::read_to_string(&skipped).unwrap_or_default();
    assert!(
        remembered.contains(&m1_id),
        "{}",
        r.explain(&format!("{m1_id} remembered as a liar: {remembered:?}"))
    );
    std::fs::remove_file(&skipped).expect("forget the liar");

    // Machine 1 goes away in the middle of machine 2's upgrade: its link to the LAN is
    // slowed so that the upgrade is still running when its node is killed.
    let rest: Vec<&str> = names.iter().copied().filter(|n| *n != liar.name).collect();
    crate::harness::util::run(std::process::Command::new("ip").args([
        "netns", "exec", &m1.ns, "tc", "qdisc", "add", "dev", &m1.veth, "root", "tbf", "rate",
        "16mbit", "burst", "64kb", "latency", "400ms",
    ]))
    .success();
    let before = m1.node.blocks_sent();
    let mut args = vec!["-S", "--noconfirm"];
    args.extend_from_slice(&rest);
    let running = spawn(&mut m2.pacman_cmd(&args));
    let started = Instant::now();
    while m1.node.blocks_sent() < before + 8 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "machine 2 never fetched from machine 1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lan.machines[0].node.kill();
    let (r, took) = running.finish_within(Duration::from_secs(600));
    r.success();
    eprintln!("machine 2 finished {took:?} after machine 1 went away");
    let m2 = &lan.machines[1];
    m2.assert_has_all(pkgs, &r);
    let by_source = package_sources(m2);
    let from_lan = by_source.get("lan").copied().unwrap_or(0);
    let from_mirror = by_source.get("mirror").copied().unwrap_or(0);
    eprintln!("machine 2's files by source: {by_source:?}");
    assert!(
        from_lan >= 1 && from_mirror >= 2,
        "{}",
        r.explain(&format!(
            "some from LAN before, the rest from the mirror: {by_source:?}"
        ))
    );

    // Machine 2 now lists every package (what it fetched from the LAN is linked into its
    // node, what came from the mirror seeded). Its cable is pulled in the middle of machine
    // 3's upgrade: no connection is closed, the node just stops answering.
    let (m2, m3) = (&lan.machines[1], &lan.machines[2]);
    m2.node.wait_published();
    crate::harness::util::run(std::process::Command::new("ip").args([
        "netns", "exec", &m2.ns, "tc", "qdisc", "add", "dev", &m2.veth, "root", "tbf", "rate",
        "16mbit", "burst", "64kb", "latency", "400ms",
    ]))
    .success();
    m3.pacman(&["-Sy", "--noconfirm"]).success();
    let before = m2.node.blocks_sent();
    let mut args = vec!["-S", "--noconfirm"];
    args.extend_from_slice(&names);
    let running = spawn(&mut m3.pacman_cmd(&args));
    let started = Instant::now();
    while m2.node.blocks_sent() < before + 8 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "machine 3 never fetched from machine 2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::harness::util::run(
        std::process::Command::new("ip").args(["-n", &m2.ns, "link", "set", &m2.veth, "down"]),
    )
    .success();
    let (r, took) = running.finish_within(Duration::from_secs(600));
    r.success();
    eprintln!("machine 3 finished {took:?} after machine 2's link went down");
    m3.assert_has_all(pkgs, &r);
    let by_source = package_sources(m3);
    eprintln!("machine 3's files by source: {by_source:?}");
    assert!(
        by_source.get("lan").copied().unwrap_or(0) >= 1
            && by_source.get("mirror").copied().unwrap_or(0) >= 2,
        "{}",
        r.explain(&format!(
            "some from LAN before, the rest from the mirror: {by_source:?}"
        ))
    );
}

/// `pacxfer announce` publishes `/pacxfer` under the node's own key, and never replaces a
/// record of that key that it did not publish (a site the user published) without `--force`.
#[test]
fn announce_never_replaces_a_record_it_did_not_publish() {
    let w = crate::harness::world::World::new("lan-announce-owner", true);
    let node = w.node();
    let site = node.add("index.html", b"<p>my site</p>");
    let file = node.add("seeded", b"a seeded file");
    node.rpc("files/mkdir?arg=/pacxfer&parents=true");
    node.rpc(&format!(
        "files/cp?arg=/ipfs/{file}&arg=/pacxfer/{}",
        "ab".repeat(32)
    ));
    let own = |n: &crate::harness::kubo::Node| {
        n.rpc("name/resolve?offline=true")["Path"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    // The user's own record under the self key: refused, named, kept.
    node.publish("self", &site);
    let r = w.pacxfer(&["announce"]);
    r.failure()
        .one_error_line()
        .stderr_has("which pacxfer did not publish");
    assert_eq!(own(node), format!("/ipfs/{site}"), "{}", r.explain("kept"));

    // --force replaces it; from then on the record is pacxfer's and plain announce goes on.
    w.pacxfer(&["announce", "--force"]).success();
    let root = node.rpc("files/stat?arg=/pacxfer&hash=true")["Hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(own(node), format!("/ipfs/{root}"));
    node.rpc(&format!(
        "files/cp?arg=/ipfs/{file}&arg=/pacxfer/{}",
        "cd".repeat(32)
    ));
    w.pacxfer(&["announce"]).success();
    let root = node.rpc("files/stat?arg=/pacxfer&hash=true")["Hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(own(node), format!("/ipfs/{root}"));

    // With the cache cleared, the marker in the directory still says it is pacxfer's.
    let _ = std::fs::remove_dir_all(w.cache_dir());
    node.rpc(&format!(
        "files/cp?arg=/ipfs/{file}&arg=/pacxfer/{}",
        "ef".repeat(32)
    ));
    w.pacxfer(&["announce"]).success();
}

/// A build source pinned by BLAKE2b alone: the first machine's agent fetches it from
/// upstream and shares it (`sources/b2/<hex>` in its directory); the second machine's agent
/// finds it on the LAN by that sum, and upstream sends it once.
#[test]
fn a_build_source_crosses_the_uplink_once() {
    use blake2::Digest;
    let lan = Lan::new("lan-sources", 2, "400mbit");
    let bytes: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let b2 = hex::encode(blake2::Blake2b512::digest(&bytes));
    let rel = "upstream/src-1.0.tar";
    let path = lan.dir.join("mirror").join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir upstream");
    std::fs::write(&path, &bytes).expect("write source");
    let url = format!("http://{}:8000/{rel}", crate::harness::lan::MIRROR_IP);
    for m in &lan.machines {
        let pkg = m.dir.join("pkg");
        std::fs::create_dir_all(&pkg).expect("mkdir pkg");
        std::fs::write(
            pkg.join(".SRCINFO"),
            format!("pkgbase = src\n\tsource = {url}\n\tb2sums = {b2}\n\npkgname = src\n"),
        )
        .expect("write .SRCINFO");
    }
    let fetch = |m: &Machine| {
        let pkg = m.dir.join("pkg");
        let out = pkg.join("src-1.0.tar.part");
        let r = m.pacxfer(&[
            "-v",
            "dlagent",
            "--srcinfo",
            pkg.to_str().expect("utf8"),
            &url,
            out.to_str().expect("utf8"),
        ]);
        r.success();
        assert!(
            std::fs::read(&out).expect("read source") == bytes,
            "{}",
            r.explain("the source's bytes")
        );
        r
    };
    let (m1, m2) = (&lan.machines[0], &lan.machines[1]);
    fetch(m1).stderr_has("from upstream");
    m1.node.wait_published();
    let r = fetch(m2);
    r.stderr_has(&format!("list sources/b2/{b2}"))
        .stderr_has("src-1.0.tar 5.7 MiB from lan");
    let hits: Vec<_> = lan
        .mirror
        .hits()
        .into_iter()
        .filter(|h| h.path.ends_with("src-1.0.tar"))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{}",
        r.explain(&format!("upstream sent it once: {hits:?}"))
    );
}
