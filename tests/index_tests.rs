//! The sync database index: built on first use, used after, rebuilt when the database
//! changes or the index is damaged, and never needed for a correct answer.

use std::process::Command;

use crate::util::run;
use crate::world::World;

fn index_files(w: &World) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(w.cache_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "idx"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_index_is_built_once_then_used() {
    let w = World::new("index-used", false);
    let tiny = &w.fx.tiny;
    let r = w.pacxfer(&["-v", "lookup", &tiny.filename]);
    r.success()
        .stderr_has("indexed into")
        .stdout_has(&tiny.sha256);
    assert_eq!(index_files(&w).len(), 1);
    let r = w.pacxfer(&["-v", "lookup", &tiny.filename]);
    r.success()
        .stderr_has("answered from its index")
        .stdout_has(&tiny.sha256)
        .stdout_has("embedded in the database");
    // The signature comes out of the index byte for byte.
    let sig = format!("{}.sig", tiny.filename);
    let out = w.out("tiny.sig.part");
    let r = w.xfer(&w.url(&sig), &out);
    r.success().stderr_has("from db-signature");
    w.assert_same(&out, &w.fx.repo_dir().join(&sig), &r);
}

#[test]
fn a_changed_database_rebuilds_the_index() {
    let w = World::new("index-stale", false);
    let tiny = &w.fx.tiny;
    w.pacxfer(&["lookup", &tiny.filename]).success();
    // A new database without tiny replaces the old one, as `pacman -Sy` does.
    let repo = w.dir.join("mirror/testrepo/os/x86_64");
    run(Command::new("repo-remove")
        .arg("testrepo.db.tar.gz")
        .arg("tiny")
        .current_dir(&repo))
    .success();
    let synced = w.dbpath.join("sync/testrepo.db");
    let fresh = w.dbpath.join("sync/.testrepo.db.new");
    std::fs::copy(repo.join("testrepo.db.tar.gz"), &fresh).expect("copy db");
    std::fs::rename(&fresh, &synced).expect("replace db");

    let r = w.pacxfer(&["-v", "lookup", &tiny.filename]);
    r.failure()
        .stderr_has("indexed into")
        .stderr_has("is not in any sync database");
    w.pacxfer(&["lookup", &w.fx.big.filename]).success();
}

#[test]
fn a_damaged_index_is_rebuilt_not_trusted() {
    let w = World::new("index-corrupt", false);
    let big = &w.fx.big;
    w.pacxfer(&["lookup", &big.filename]).success();
    let idx = index_files(&w).pop().expect("an index");
    let good = std::fs::read(&idx).expect("read index");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "foreign",
            b"not an index, just some other file that happens to be here".repeat(4),
        ),
        ("checksum byte sha256 flipped", {
            // Flip a byte inside big's SHA-256 in the records: only the checksum can tell.
            let sha = hex::decode(&big.sha256).expect("hex");
            let at = good
                .windows(32)
                .position(|win| win == sha.as_slice())
                .expect("sha in index");
            let mut bad = good.clone();
            bad[at] ^= 1;
            bad
        }),
    ];
    for (what, bytes) in variants {
        std::fs::write(&idx, &bytes).expect("damage index");
        let r = w.pacxfer(&["-v", "lookup", &big.filename]);
        r.success()
            .stdout_has(&big.sha256)
            .stderr_has("indexed into");
        assert_eq!(
            std::fs::read(&idx).expect("reread"),
            good,
            "{what}: index rebuilt"
        );
    }
}

#[test]
fn an_unwritable_cache_still_gives_right_answers() {
    let mut w = World::new("index-unwritable", true);
    let tiny = w.fx.tiny.clone();
    // A regular file stands where the cache directory would be.
    std::fs::write(w.cache_dir(), b"in the way").expect("block cache dir");
    w.add_raw(&tiny);
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let r = w.pacxfer(&["-v", "lookup", &tiny.filename]);
    r.success()
        .stdout_has(&tiny.sha256)
        .stderr_has("no index can be written");
    let out = w.out("tiny.part");
    let r = w.xfer(&w.url(&tiny.filename), &out);
    r.success().stderr_has("from ipfs");
    w.assert_same(&out, &tiny.path, &r);
    // With indexes turned off entirely.
    let r = w.pacxfer(&["-v", "--cache-dir", "", "lookup", &tiny.filename]);
    r.success()
        .stdout_has(&tiny.sha256)
        .stderr_has("no index kept");
}

#[test]
fn concurrent_builders_all_answer_right() {
    let w = World::new("index-race", false);
    let fx = w.fx;
    let pkgs = [&fx.tiny, &fx.big, &fx.plus, &fx.other];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (w, pkg) = (&w, pkgs[i % pkgs.len()]);
                s.spawn(move || {
                    let r = w.pacxfer(&["lookup", "--json", &pkg.filename]);
                    r.success().stdout_has(&pkg.sha256);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("lookup thread");
        }
    });
    // Whatever the interleaving, one whole index is left, and it answers.
    assert_eq!(index_files(&w).len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(w.cache_dir())
        .expect("cache dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let r = w.pacxfer(&["-v", "lookup", &fx.plus.filename]);
    r.success()
        .stderr_has("answered from its index")
        .stdout_has(&fx.plus.sha256);
}

#[test]
fn a_bad_entry_is_reported_on_every_lookup_not_only_the_first() {
    let d = crate::util::TestDir::new("index-bad-entry");
    let conf = d.write(
        "pacxfer.conf",
        format!("cache_dir = {:?}\n", d.join("cache").display().to_string()),
    );
    d.write(
        "staging/bad-1.0-1/desc",
        "%FILENAME%\nbad-1.0-1-any.pkg.tar.zst\n\n%NAME%\nbad\n\n%CSIZE%\nlots\n",
    );
    d.write(
        "staging/good-1.0-1/desc",
        "%FILENAME%\ngood-1.0-1-any.pkg.tar.zst\n\n%NAME%\ngood\n",
    );
    std::fs::create_dir_all(d.join("sync")).expect("mkdir");
    run(Command::new("bsdtar")
        .arg("-czf")
        .arg(d.join("sync/r.db"))
        .arg("-C")
        .arg(d.join("staging"))
        .args(["bad-1.0-1", "good-1.0-1"]))
    .success();
    let lookup = |what: &str| {
        run(crate::util::pacxfer()
            .env_remove("PACXFER_CACHE_DIR")
            .arg("--config")
            .arg(&conf)
            .arg("--dbpath")
            .arg(d.path())
            .args(["-v", "lookup", what]))
    };
    let first = lookup("bad");
    first
        .failure()
        .stderr_has("indexed into")
        .stderr_has("bad-1.0-1/desc skipped");
    let again = lookup("bad");
    again
        .failure()
        .stderr_has("answered from its index")
        .stderr_has("bad-1.0-1/desc skipped: %CSIZE%");
    // Lookups it cannot concern stay quiet.
    let other = lookup("good");
    other.success();
    assert!(
        !other.stderr().contains("skipped"),
        "{}",
        other.explain("no warning")
    );
}
