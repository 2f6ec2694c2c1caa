//! The sync database index: built on first use, used after, rebuilt when the database
//! changes or the index is damaged, and never needed for a correct answer.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::harness::util::run;
use crate::harness::world::World;

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

/// The first lookup reads the database and writes one index; the next is answered from that
/// index, with the same SHA-256, and the embedded signature comes out of it byte for byte.
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

/// `bsdtar` on `args` in `dir`, which must succeed.
fn bsdtar(dir: &Path, args: &[&str]) {
    run(Command::new("bsdtar").args(args).current_dir(dir)).success();
}

/// A database replaced as `pacman -Sy` replaces it (a new file renamed over the old) is
/// noticed, and so is one rewritten in place (same inode, same size) whose only other sign of
/// change is its mtime, set a whole second apart: each time the index is rebuilt and answers
/// what the new database says.
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

    // Two uncompressed databases of the same size that differ only in big's SHA-256.
    let big = &w.fx.big;
    let staging = w.dir.join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir staging");
    bsdtar(&staging, &["-xf", synced.to_str().expect("utf8")]);
    let desc = std::fs::read_dir(&staging)
        .expect("staging")
        .flatten()
        .map(|e| e.path().join("desc"))
        .find(|d| {
            std::fs::read_to_string(d).is_ok_and(|t| t.contains(&format!("\n{}\n", big.sha256)))
        })
        .expect("big's desc");
    let members: Vec<String> = std::fs::read_dir(&staging)
        .expect("staging")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let tar_to = |name: &str| {
        let mut args = vec!["--format=ustar", "-cf", name];
        args.extend(&members);
        bsdtar(&staging, &args);
        std::fs::read(staging.join(name)).expect("read tar")
    };
    let before = tar_to("../before.tar");
    let other_sha: String = big
        .sha256
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let text = std::fs::read_to_string(&desc).expect("read desc");
    std::fs::write(&desc, text.replace(&big.sha256, &other_sha)).expect("write desc");
    let after = tar_to("../after.tar");
    assert_eq!(before.len(), after.len(), "the two databases have one size");
    assert_ne!(before, after);

    std::fs::write(&synced, &before).expect("write db");
    crate::pacman::unchanged::set_mtime(&synced, crate::pacman::unchanged::PAST);
    let r = w.pacxfer(&["-v", "lookup", &big.filename]);
    r.success()
        .stderr_has("indexed into")
        .stdout_has(&big.sha256);
    let inode = std::fs::metadata(&synced).expect("stat").ino();
    // Rewritten in place: the same file, the same size, an mtime one second later.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&synced)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &after))
        .expect("rewrite db in place");
    crate::pacman::unchanged::set_mtime(&synced, crate::pacman::unchanged::PAST + 1);
    let meta = std::fs::metadata(&synced).expect("stat");
    assert_eq!((meta.ino(), meta.len()), (inode, before.len() as u64));
    let r = w.pacxfer(&["-v", "lookup", &big.filename]);
    r.success()
        .stderr_has("indexed into")
        .stdout_has(&other_sha);
    // Unchanged since: answered from the new index.
    w.pacxfer(&["-v", "lookup", &big.filename])
        .success()
        .stderr_has("answered from its index")
        .stdout_has(&other_sha);
}

/// An index that is empty, cut short, someone else's file, or has one byte of a SHA-256
/// flipped (which only its checksum shows) is not used: the lookup answers from the database
/// and writes the index anew, byte for byte the undamaged one.
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

/// With no index writable (a file stands where the cache directory would be) or indexes
/// turned off (`--cache-dir ""`), lookups and downloads still give the database's answers.
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

/// Replaces the world's sync database with the fixture's entries and `extra` generated ones,
/// so that reading and indexing it takes a while.
fn grow_database(w: &World, extra: usize) {
    let staging = w.dir.join("grown");
    std::fs::create_dir_all(&staging).expect("mkdir");
    bsdtar(&staging, &["-xf", w.fx.db().to_str().expect("utf8")]);
    for i in 0..extra {
        let dir = staging.join(format!("filler{i}-1.0-1"));
        std::fs::create_dir_all(&dir).expect("mkdir entry");
        std::fs::write(
            dir.join("desc"),
            format!(
                "%FILENAME%\nfiller{i}-1.0-1-any.pkg.tar.zst\n\n%NAME%\nfiller{i}\n\n\
                 %VERSION%\n1.0-1\n\n%ARCH%\nany\n\n%CSIZE%\n{}\n\n%SHA256SUM%\n{:064x}\n\n",
                1000 + i,
                i
            ),
        )
        .expect("write desc");
    }
    let members: Vec<String> = std::fs::read_dir(&staging)
        .expect("staging")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let db = w.dbpath.join("sync/testrepo.db");
    let mut args = vec!["-czf", db.to_str().expect("utf8")];
    args.extend(members.iter().map(String::as_str));
    bsdtar(&staging, &args);
}

/// Eight lookups started together on a database with no index yet, each of which may build
/// it: every one answers right, and what is left is one whole index (byte for byte the one a
/// lookup alone writes, and answering) and none of the temporary files (`.tmp.<pid>.…`)
/// writers make.
#[test]
fn concurrent_builders_all_answer_right() {
    let w = World::new("index-race", false);
    let fx = w.fx;
    grow_database(&w, 5000);
    let pkgs = [&fx.tiny, &fx.big, &fx.plus, &fx.other];
    // All started before any is waited for.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let pkg = pkgs[i % pkgs.len()];
            let mut cmd = crate::harness::util::pacxfer();
            cmd.env_remove("PACXFER_CACHE_DIR")
                .arg("--config")
                .arg(&w.config)
                .args(["-v", "lookup", "--json", &pkg.filename])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            (pkg, cmd.spawn().expect("spawn lookup"))
        })
        .collect();
    let mut built = 0;
    for (pkg, child) in children {
        let out = child.wait_with_output().expect("wait for lookup");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains(&pkg.sha256),
            "{}: {:?}\n{stdout}\n{stderr}",
            pkg.filename,
            out.status
        );
        built += usize::from(stderr.contains("indexed into"));
    }
    crate::harness::util::show(&format!(
        "index race: {built} of 8 concurrent lookups built the index\n"
    ));
    assert!(built >= 1, "nobody built the index");
    let names: Vec<String> = std::fs::read_dir(w.cache_dir())
        .expect("cache dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let leftovers: Vec<&String> = names.iter().filter(|n| n.starts_with(".tmp.")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {names:?}");
    let idx = index_files(&w);
    assert_eq!(idx.len(), 1, "{names:?}");
    let raced = std::fs::read(&idx[0]).expect("read index");
    let r = w.pacxfer(&["-v", "lookup", &fx.plus.filename]);
    r.success()
        .stderr_has("answered from its index")
        .stdout_has(&fx.plus.sha256);
    // Whole: the same bytes as an index one lookup builds alone.
    std::fs::remove_file(&idx[0]).expect("rm index");
    w.pacxfer(&["-v", "lookup", &fx.plus.filename])
        .success()
        .stderr_has("indexed into");
    assert!(
        std::fs::read(&idx[0]).expect("read index") == raced,
        "the index left by the race differs from one built alone"
    );
}

/// An entry that cannot be read is warned about on every lookup it may concern, the one that
/// builds the index and the ones answered from it, and on no other.
#[test]
fn a_bad_entry_is_reported_on_every_lookup_not_only_the_first() {
    let d = crate::harness::util::TestDir::new("index-bad-entry");
    let pacman_conf = d.write("pacman.conf", "[options]\nArchitecture = x86_64\n");
    let conf = d.write(
        "pacxfer.conf",
        format!(
            "cache_dir = {:?}\npacman_conf = {:?}\n[gateway]\nenabled = false\n[share]\napi = \"http://127.0.0.1:{}\"\n",
            d.join("cache").display().to_string(),
            pacman_conf.display().to_string(),
            crate::harness::util::dead_port()
        ),
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
        run(crate::harness::util::pacxfer()
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
