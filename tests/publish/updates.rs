//! Sync databases through a publisher's update lists (`[databases]`), with real pacman 6.0
//! `-Sy` and `-Fy`, a real Kubo node and the test mirror: a week of a 15,000-entry
//! repository, each day about 2% of its entries rebuilt and a few added and removed, published
//! with `publish --databases-only`; every database pacman ends up with holds exactly the
//! mirror's entries, built from one step a day while the mirror answers 304. Then what a
//! publisher cannot do: be older than the mirror (the mirror's database is taken), serve a
//! wrong step or skip one (the whole archive, checked), serve a wrong whole archive too (the
//! mirror), stop publishing for longer than `max_age` (the mirror); and the mirror alone still
//! works.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::chroot::Pacman7;
use crate::harness::fixtures::REPO;
use crate::harness::history::{contents, History};
use crate::harness::util::{pacxfer_bin, Run};
use crate::harness::world::World;
use crate::pacman::pacman7::World7;

use super::runs::{publish, summary};

const DAY: u64 = 86_400;
const T0: u64 = 1_780_000_000;

fn repo_dir(w: &World) -> PathBuf {
    w.dir.join("mirror").join(REPO).join("os/x86_64")
}

/// pacxfer's config with `[databases]` naming `publisher` for the test repository, and
/// `gateway_extra` in `[gateway]`.
fn configure(w: &mut World, publisher: &str, gateway_extra: &str) {
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], gateway_extra);
    let mut text = std::fs::read_to_string(&w.config).expect("read config");
    text.push_str(&format!(
        "\n[databases]\npublisher = {publisher:?}\nrepos = [{REPO:?}]\narch = \"x86_64\"\n"
    ));
    std::fs::write(&w.config, text).expect("write config");
}

/// Writes the history's databases on the mirror with `mtime` and publishes them: the IPNS name.
fn publish_version(w: &World, h: &History, mtime: u64) -> String {
    h.write(&repo_dir(w), REPO, mtime);
    let r = publish(w, &["--databases-only"]);
    r.success();
    summary(&r)["name"].as_str().expect("IPNS name").to_string()
}

/// Asserts pacman's copy of `file` holds the mirror's entries.
#[track_caller]
fn same_as_mirror(w: &World, file: &str, r: &Run) {
    let mine = contents(&w.dbpath.join("sync").join(file));
    let mirror = contents(&repo_dir(w).join(file));
    assert!(
        mine == mirror,
        "{file}: pacman holds {} entries, the mirror {}{}",
        mine.len(),
        mirror.len(),
        r.explain("databases")
    );
}

/// The mirror's answers to GETs of `file` since `before` hits (its HEADs left out).
fn answers(w: &World, file: &str, before: usize) -> Vec<(u16, u64)> {
    w.mirror.hits_for(&format!("/{file}"))[before..]
        .iter()
        .filter(|h| h.method == "GET")
        .map(|h| (h.status, h.bytes))
        .collect()
}

/// Real pacman 6 on the host, or pacman 7 in its root (as `World7::pacman`).
fn pacman(w: &World, p7: Option<&Pacman7>, args: &[&str]) -> Run {
    let Some(p7) = p7 else {
        return w.pacman(args);
    };
    let dirs = w.dir.path().parent().expect("the tests' directories");
    let bin = pacxfer_bin();
    let conf = w.pacman_conf.to_str().expect("utf8").to_string();
    let mut argv = vec!["pacman", "--config", &conf];
    argv.extend_from_slice(args);
    p7.run(&[dirs, &bin], &argv, Duration::from_secs(300))
}

#[test]
fn a_week_of_a_large_repository_moves_one_step_a_day_with_pacman6() {
    let mut w = World::new("dbupdates-week6", true);
    a_week(&mut w, None);
}

#[test]
fn a_week_of_a_large_repository_moves_one_step_a_day_with_pacman7() {
    let mut w7 = World7::new("dbupdates-week7", true, "Required DatabaseOptional");
    // As contrib/tmpfiles.d makes /var/cache/pacxfer: the cache belongs to the download user.
    w7.cache_of_download_user();
    let p7 = Pacman7::get();
    a_week(&mut w7.w, Some(&p7));
}

/// Seven days of a 15,000-entry repository through `pacman -Sy` and `-Fy`.
fn a_week(w: &mut World, p7: Option<&Pacman7>) {
    let mut h = History::new(15_000, 7);
    assert_eq!(h.len(), 15_000);
    let name = publish_version(w, &h, T0);
    configure(w, &name, "");
    // No copy yet (a first sync, as after `pacman -Syy`): the mirror's whole database.
    for (args, file) in [
        (&["-Sy"][..], "testrepo.db"),
        (&["-Fy"][..], "testrepo.files"),
    ] {
        let r = pacman(w, p7, args);
        r.success()
            .stderr_has(&format!("{file} "))
            .stderr_has("from mirror");
        same_as_mirror(w, file, &r);
    }
    for day in 1..=7u64 {
        h.advance(300, 15, 10);
        publish_version(w, &h, T0 + day * DAY);
        for (args, file) in [
            (&["-Sy"][..], "testrepo.db"),
            (&["-Fy"][..], "testrepo.files"),
        ] {
            let before = w.mirror.hits_for(&format!("/{file}")).len();
            let r = pacman(w, p7, args);
            // The first update takes the whole archive through the node (nothing built here
            // yet), every later one a step.
            let how = if day == 1 { "whole" } else { "1 step," };
            r.success().stderr_has(&format!(
                "built from the update list version {} ({how}",
                day + 1
            ));
            same_as_mirror(w, file, &r);
            assert_eq!(
                answers(w, file, before),
                vec![(304, 0)],
                "day {day}{}",
                r.explain(file)
            );
            // pacman reads every entry of it.
            if file.ends_with(".db") {
                let q = pacman(w, p7, &["-Sl", REPO]);
                q.success();
                assert_eq!(q.stdout().lines().count(), h.len(), "{}", q.explain("-Sl"));
            }
        }
    }
    // Nothing new: no step, the mirror 304, pacman keeps its copy.
    let before = w.mirror.hits_for("/testrepo.db").len();
    let r = pacman(w, p7, &["-Sy"]);
    r.success().stderr_has("unchanged on the mirror (304)");
    assert_eq!(answers(w, "testrepo.db", before), vec![(304, 0)]);
    if p7.is_none() {
        let s = w.pacxfer(&["stats", "--json"]);
        s.success();
        let stats: serde_json::Value = serde_json::from_str(s.stdout().trim()).expect("stats JSON");
        assert_eq!(stats["sources"]["updates"]["files"], 14, "{stats}");
    }
}

/// The bytes at `path` below `/ipfs/<root>`, through the node's gateway.
fn get(w: &World, root: &str, path: &str) -> Vec<u8> {
    let mut resp = crate::harness::kubo::agent()
        .get(&format!("{}/ipfs/{root}/{path}", w.node().url))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.body_mut().as_reader(), &mut bytes).expect("body");
    bytes
}

/// A copy of the publisher's `root` with the files at `paths` (below the database's update
/// list) replaced (`Some`) or removed (`None`), published under the key `evil`: its name.
fn hostile(w: &World, root: &str, changes: &[(&str, Option<Vec<u8>>)]) -> String {
    let node = w.node();
    let copy = format!(
        "/evil-{}",
        std::process::id() as u64 * 1000 + changes.len() as u64
    );
    let _ = node.rpc_raw(&format!("files/rm?arg={copy}&recursive=true"), None);
    node.rpc(&format!("files/cp?arg=/ipfs/{root}&arg={copy}"));
    for (path, bytes) in changes {
        let at = format!("{copy}/updates/{REPO}/x86_64/{REPO}.db/{path}");
        node.rpc(&format!("files/rm?arg={at}"));
        if let Some(bytes) = bytes {
            let cid = node.add("replacement", bytes);
            node.rpc(&format!("files/cp?arg=/ipfs/{cid}&arg={at}"));
        }
    }
    let evil = node.rpc(&format!("files/stat?arg={copy}"))["Hash"]
        .as_str()
        .expect("root")
        .to_string();
    node.publish("evil", &evil)
}

/// A step with one byte of its last file changed: its versions still claim the real ones.
fn tampered(step: &[u8]) -> Vec<u8> {
    let mut raw = zstd::bulk::decompress(step, 64 << 20).expect("a zstd step");
    let at = raw.len() - 3;
    raw[at] ^= 0x20;
    zstd::bulk::compress(&raw, 3).expect("compress")
}

#[test]
fn a_publisher_is_caught_when_it_is_behind_lies_or_stops() {
    let mut w = World::new("dbupdates-faults", true);
    let mut h = History::new(2_000, 11);
    let name = publish_version(&w, &h, T0);
    configure(&mut w, &name, "");
    w.pacman(&["-Sy"]).success().stderr_has("from mirror");

    // The mirror has a newer database than the publisher: the mirror's is taken.
    h.advance(40, 3, 2);
    h.write(&repo_dir(&w), REPO, T0 + DAY);
    let before = w.mirror.hits_for("/testrepo.db").len();
    let r = w.pacman(&["-Sy"]);
    r.success().stderr_has("from mirror");
    same_as_mirror(&w, "testrepo.db", &r);
    assert_eq!(
        answers(&w, "testrepo.db", before)[0].0,
        200,
        "{}",
        r.explain("mirror")
    );
    // Once published, that version is pacman's already: kept, nothing moves.
    publish_version(&w, &h, T0 + DAY);
    let r = w.pacman(&["-Sy"]);
    r.success().stderr_has("unchanged on the mirror (304)");
    same_as_mirror(&w, "testrepo.db", &r);

    // Another publisher's copy of the same versions, taken whole once.
    let next_version = |w: &World, h: &mut History, day: u64| {
        h.advance(40, 3, 2);
        h.write(&repo_dir(w), REPO, T0 + day * DAY);
        summary(&publish(w, &["--databases-only"]))["root"]
            .as_str()
            .expect("root")
            .to_string()
    };
    let root = next_version(&w, &mut h, 2);
    let evil = hostile(&w, &root, &[]);
    configure(&mut w, &evil, "");
    w.pacman(&["-Sy"])
        .success()
        .stderr_has("built from the update list version 3 (whole");

    // A step whose bytes were changed (its versions still the real ones): refused, the whole
    // archive is checked and taken instead.
    let root = next_version(&w, &mut h, 3);
    let step = get(
        &w,
        &root,
        &format!("updates/{REPO}/x86_64/{REPO}.db/steps/0/0/4"),
    );
    let evil2 = hostile(&w, &root, &[("steps/0/0/4", Some(tampered(&step)))]);
    assert_eq!(evil2, evil, "one key");
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("built from the update list version 4 (whole (the steps made ")
        .stderr_has("not the publisher's version");
    same_as_mirror(&w, "testrepo.db", &r);

    // A skipped step and a whole archive that is not the recorded version: the mirror.
    let root = next_version(&w, &mut h, 4);
    let full = get(&w, &root, &format!("updates/{REPO}/x86_64/{REPO}.db/full"));
    hostile(
        &w,
        &root,
        &[("steps/0/0/5", None), ("full", Some(tampered(&full)))],
    );
    let before = w.mirror.hits_for("/testrepo.db").len();
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("steps/0/0/5: the publisher has no such file (404)")
        .stderr_has("not the publisher's version")
        .stderr_has("from mirror");
    same_as_mirror(&w, "testrepo.db", &r);
    assert_eq!(
        answers(&w, "testrepo.db", before)[0].0,
        200,
        "{}",
        r.explain("mirror")
    );

    // A head dated in the future (any mirror would answer 304 to it): the mirror.
    let root = next_version(&w, &mut h, 5);
    let head = get(&w, &root, &format!("updates/{REPO}/x86_64/{REPO}.db/head"));
    let mut head: serde_json::Value = serde_json::from_slice(&head).expect("head JSON");
    head["mirror_modified"] = serde_json::json!(T0 + 4000 * DAY);
    hostile(&w, &root, &[("head", Some(head.to_string().into_bytes()))]);
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("dated in the future")
        .stderr_has("from mirror");
    same_as_mirror(&w, "testrepo.db", &r);

    // A publisher that stopped: older than max_age, not used, whatever the mirror says.
    configure(&mut w, &name, "max_age = \"2s\"");
    std::thread::sleep(std::time::Duration::from_secs(3));
    h.advance(40, 3, 2);
    h.write(&repo_dir(&w), REPO, T0 + 6 * DAY);
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("more than [gateway] max_age")
        .stderr_has("from mirror");
    same_as_mirror(&w, "testrepo.db", &r);

    // The node is gone: the mirror alone.
    configure(&mut w, &name, "");
    if let Some(node) = w.node.take() {
        node.stop();
    }
    h.advance(40, 3, 2);
    h.write(&repo_dir(&w), REPO, T0 + 7 * DAY);
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("not through the update list")
        .stderr_has("from mirror");
    same_as_mirror(&w, "testrepo.db", &r);
}

/// The prefetch timer's refresh goes through the update list, a few entries at a time, and
/// the `pacman -Sy` after it moves no database: the mirror answers 304 to the prefetched copy.
#[test]
fn a_background_refresh_leaves_nothing_for_pacman_sy_to_move() {
    let mut w = World::new("dbupdates-prefetch", true);
    let mut h = History::new(2_000, 5);
    let name = publish_version(&w, &h, T0);
    configure(&mut w, &name, "");
    w.pacman(&["-Sy"]).success().stderr_has("from mirror");
    // The private copy starts from the mirror, then the node's whole archive once, then steps.
    for (version, at, how) in [
        (2, 900, None),
        (3, 1800, Some("whole")),
        (4, 2700, Some("1 step,")),
    ] {
        // A quarter of an hour: three entries rebuilt.
        h.advance(3, 0, 0);
        if version == 4 {
            // The publisher's work directory lost its copy of version 3: the step is made
            // from the whole archive the node holds.
            let work = w
                .dir
                .join("publisher/publish-work")
                .join(format!("{REPO}-x86_64"));
            let mut removed = 0;
            for e in std::fs::read_dir(&work).expect("work dir").flatten() {
                if e.file_name().to_string_lossy().ends_with(".canon") {
                    std::fs::remove_file(e.path()).expect("rm canon");
                    removed += 1;
                }
            }
            assert_eq!(
                removed, 2,
                "one canonical copy per database (.db, .files) kept"
            );
        }
        publish_version(&w, &h, T0 + at);
        let before = w.mirror.hits_for("/testrepo.db").len();
        let r = w.pacxfer(&["prefetch"]);
        r.success();
        match how {
            None => assert_eq!(answers(&w, "testrepo.db", before)[0].0, 200),
            Some(how) => {
                r.stderr_has(&format!(
                    "testrepo.db: update list version {version} ({how}"
                ));
                assert_eq!(
                    answers(&w, "testrepo.db", before),
                    vec![(304, 0)],
                    "{}",
                    r.explain("prefetch")
                );
            }
        }
    }
    let before = w.mirror.hits_for("/testrepo.db").len();
    let r = w.pacman(&["-Sy"]);
    r.success().stderr_has("unchanged on the mirror (304)");
    assert_eq!(answers(&w, "testrepo.db", before), vec![(304, 0)]);
    same_as_mirror(&w, "testrepo.db", &r);
    // doctor reads the same head.
    let d = w.pacxfer(&["doctor"]);
    assert!(
        d.stdout().lines().any(
            |l| l.starts_with("ok   update lists") && l.contains("testrepo version 4 (checked")
        ),
        "{}",
        d.explain("doctor")
    );
}

/// A publisher the user named can hand pacman a database of its own making, with the mirror's
/// time so that the mirror answers 304: here `tiny` keeps its name, version and signature but
/// lists another package's bytes, which the publisher also serves through IPFS. pacxfer takes
/// that file (it is what the database lists), and pacman 7 (`SigLevel = Required`, Arch's
/// default for packages) refuses to install it: the package signature still guards.
#[test]
fn a_hostile_publisher_cannot_get_an_unsigned_package_installed() {
    let mut w7 = World7::new("dbupdates-hostile", true, "Required DatabaseOptional");
    w7.cache_of_download_user();
    let fx = w7.fx;
    let w = &mut w7.w;
    // pacman holds the mirror's database; then the mirror makes a new one (same entries, a new
    // time), which the real publisher publishes.
    let name = summary(&publish(w, &["--databases-only"]))["name"]
        .as_str()
        .expect("name")
        .to_string();
    configure(w, &name, "");
    w7.pacman(&["-Sy"]).success().stderr_has("from mirror");
    let w = &mut w7.w;
    let db_file = repo_dir(w).join(format!("{REPO}.db"));
    std::fs::File::options()
        .write(true)
        .open(&db_file)
        .expect("open db")
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .expect("mtime");
    let root = summary(&publish(w, &["--databases-only"]))["root"]
        .as_str()
        .expect("root")
        .to_string();
    let real_head: serde_json::Value = serde_json::from_slice(&get(
        w,
        &root,
        &format!("updates/{REPO}/x86_64/{REPO}.db/head"),
    ))
    .expect("head");

    // The publisher's own database: tiny's entry points at `other`'s bytes.
    let mut entries = contents(&repo_dir(w).join(format!("{REPO}.db")));
    let (tiny_desc, text) = entries
        .iter_mut()
        .find(|(k, _)| k.starts_with("tiny-") && k.ends_with("/desc"))
        .expect("tiny's entry");
    let tiny_desc = tiny_desc.clone();
    let mut forged = String::new();
    let mut lines = std::str::from_utf8(text).expect("utf8").lines().peekable();
    while let Some(line) = lines.next() {
        forged.push_str(line);
        forged.push('\n');
        let value = match line {
            "%SHA256SUM%" => Some(fx.other.sha256.clone()),
            "%CSIZE%" => Some(fx.other.size.to_string()),
            _ => None,
        };
        if let Some(v) = value {
            lines.next();
            forged.push_str(&v);
            forged.push('\n');
        }
    }
    *text = forged.into_bytes();
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, &data[..]).expect("member");
    }
    let forged_db = tar.into_inner().expect("tar");
    let mut head = real_head.clone();
    head["sha256"] = serde_json::json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        &forged_db
    )));
    head["size"] = serde_json::json!(forged_db.len());
    let evil = hostile(
        w,
        &root,
        &[
            ("head", Some(head.to_string().into_bytes())),
            (
                "full",
                Some(zstd::bulk::compress(&forged_db, 3).expect("zstd")),
            ),
        ],
    );
    // The publisher serves the other bytes under tiny's entry too.
    let payload = std::fs::read(&fx.other.path).expect("other");
    w.node().add("payload", &payload);
    configure(w, &evil, "");

    let r = w7.pacman(&["-Sy"]);
    r.success()
        .stderr_has("built from the update list version 1 (whole");
    let held = contents(&w7.dbpath.join("sync").join(format!("{REPO}.db")));
    assert_ne!(
        held.get(&tiny_desc),
        contents(&repo_dir(&w7).join(format!("{REPO}.db"))).get(&tiny_desc),
        "pacman holds the publisher's database"
    );
    let r = w7.pacman(&["-S", "--noconfirm", "tiny"]);
    // pacxfer delivered the bytes the forged entry lists (from the publisher's node), and
    // pacman's signature check refused them.
    r.failure()
        .stderr_has(&format!("{} ", fx.tiny.filename))
        .stderr_has("from ipfs")
        .stderr_has("is invalid");
    assert!(
        !w7.dir.join("root/usr/share/tiny/hello.txt").exists(),
        "{}",
        r.explain("tiny installed")
    );
}

/// A repository whose database the mirror signs gets no update list, and one that becomes
/// signed loses it: pacman gets the mirror's exact bytes, which its signature covers.
#[test]
fn a_signed_database_comes_whole_from_the_mirror() {
    let mut w = World::new("dbupdates-signed", true);
    let h = History::new(500, 3);
    let name = publish_version(&w, &h, T0);
    configure(&mut w, &name, "");
    w.pacman(&["-Sy"]).success().stderr_has("from mirror");
    let mut h = h;
    h.advance(10, 1, 1);
    publish_version(&w, &h, T0 + DAY / 2);
    w.pacman(&["-Sy"])
        .success()
        .stderr_has("built from the update list version 2 (whole");
    // The mirror starts signing its database.
    std::fs::write(
        repo_dir(&w).join(format!("{REPO}.db.sig")),
        b"a detached signature",
    )
    .expect("write sig");
    h.advance(10, 1, 1);
    let root = {
        h.write(&repo_dir(&w), REPO, T0 + DAY);
        summary(&publish(&w, &["--databases-only"]))["root"]
            .as_str()
            .expect("root")
            .to_string()
    };
    let listed = w.node().rpc(&format!("ls?arg=/ipfs/{root}"));
    assert!(
        !listed.to_string().contains("\"updates\""),
        "no update list is published for a signed repository: {listed}"
    );
    let r = w.pacman(&["-Sy"]);
    r.success()
        .stderr_has("not through the update list")
        .stderr_has("from mirror");
    assert_eq!(
        crate::harness::util::sha256_hex(&w.dbpath.join("sync").join(format!("{REPO}.db"))),
        crate::harness::util::sha256_hex(&repo_dir(&w).join(format!("{REPO}.db"))),
        "{}",
        r.explain("the mirror's exact bytes")
    );
}
