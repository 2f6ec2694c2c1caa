//! Databases that did not change cost no transfer: pacxfer asks the mirror with
//! `If-Modified-Since` from the copy pacman holds in `<DBPath>/sync/`, copies that copy into
//! OUTPUT on 304, and gives a database it downloads the mirror's `Last-Modified` as mtime, as
//! pacman's own downloader does. Called the way pacman calls it; pacman 6 and 7 themselves are in
//! tests/pacman/pacman7.rs. What the mirror answered is read from its log.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::harness::faultd::{Fault, FaultServer};
use crate::harness::fixtures::REPO;
use crate::harness::world::World;

/// A fixed time in the past: 2024-01-01T00:00:00Z.
pub const PAST: u64 = 1_704_067_200;

/// The mirror's database file (repo-add's `.db` is a link to the `.db.tar.gz`: the target).
pub fn mirror_db(w: &World) -> PathBuf {
    w.dir
        .join("mirror")
        .join(REPO)
        .join("os/x86_64")
        .join(format!("{REPO}.db"))
}

/// Sets a file's mtime (through links) to `secs` since the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

pub fn mtime(path: &Path) -> i64 {
    std::fs::metadata(path).expect("stat").mtime()
}

fn sync_db(w: &World) -> PathBuf {
    w.dbpath.join("sync").join(format!("{REPO}.db"))
}

/// A copy with the mirror's time is asked against (`If-Modified-Since` of that time); on the
/// 304 it is copied into OUTPUT, keeping its mtime, mode 0644.
#[test]
fn an_unchanged_database_is_asked_for_conditionally_and_copied_on_304() {
    let w = World::new("unchanged-304", false);
    set_mtime(&mirror_db(&w), PAST);
    // The copy pacman holds, as pacman's downloader (or pacxfer) left it: the mirror's time.
    set_mtime(&sync_db(&w), PAST);
    let out = w.out(&format!("{REPO}.db.part"));

    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("unchanged");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(
        hits[0].if_modified_since.as_deref(),
        Some("Mon, 01 Jan 2024 00:00:00 GMT"),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!((hits[0].status, hits[0].bytes), (304, 0));
    w.assert_same(&out, &sync_db(&w), &r);
    assert_eq!(mtime(&out), PAST as i64, "{}", r.explain("mtime kept"));
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{}", r.explain("mode at finish"));
}

/// A database the mirror changed since the copy is downloaded (200) and gets the mirror's
/// `Last-Modified` as mtime.
#[test]
fn a_changed_database_is_downloaded_and_gets_the_mirrors_time() {
    let w = World::new("unchanged-changed", false);
    set_mtime(&sync_db(&w), PAST);
    set_mtime(&mirror_db(&w), PAST + 3600);
    let out = w.out(&format!("{REPO}.db.part"));

    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("from mirror");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(
        hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        [200],
        "{}",
        w.mirror.log_text()
    );
    assert!(hits[0].if_modified_since.is_some());
    w.assert_same(&out, &mirror_db(&w), &r);
    assert_eq!(mtime(&out), (PAST + 3600) as i64, "{}", r.explain("mtime"));
}

/// With no copy (after `pacman -Syy`) the database is asked for without a condition.
#[test]
fn without_a_copy_the_database_is_asked_for_without_condition() {
    // As after `pacman -Syy`, which removes the database first.
    let w = World::new("unchanged-none", false);
    std::fs::remove_file(sync_db(&w)).expect("rm db");
    set_mtime(&mirror_db(&w), PAST);
    let out = w.out(&format!("{REPO}.db.part"));
    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("from mirror");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert_eq!(hits[0].if_modified_since, None);
    assert_eq!(hits[0].status, 200);
    w.assert_same(&out, &mirror_db(&w), &r);
    assert_eq!(mtime(&out), PAST as i64);
}

/// A server that ignores `If-Modified-Since` and answers 200: the mirror's bytes arrive, not
/// the copy's.
#[test]
fn a_server_that_ignores_the_condition_still_serves_the_database() {
    let w = World::new("unchanged-ignored", false);
    set_mtime(&mirror_db(&w), PAST);
    set_mtime(&sync_db(&w), PAST);
    // The copy pacman holds differs from the mirror's: only the mirror's bytes may arrive.
    std::fs::write(sync_db(&w), b"an older database").expect("write");
    set_mtime(&sync_db(&w), PAST);
    w.mirror.ignore_conditions();
    let out = w.out(&format!("{REPO}.db.part"));
    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("from mirror");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(hits.len(), 1, "{}", w.mirror.log_text());
    assert!(hits[0].if_modified_since.is_some());
    assert_eq!(hits[0].status, 200);
    w.assert_same(&out, &mirror_db(&w), &r);
}

/// A 304 with a body: the copy is kept, never the body. A 304 to a request without a
/// condition is no file: one error line, no OUTPUT bytes.
#[test]
fn a_304_body_is_never_taken_and_a_304_nobody_asked_for_fails() {
    // The fault server's 304 has a text body and no Last-Modified.
    let w = World::new("unchanged-faults", false);
    let faults = FaultServer::start(b"the fault server's file".to_vec());
    let url = format!("{}/{REPO}.db", faults.base(Fault::Status(304)));
    set_mtime(&sync_db(&w), PAST);
    let out = w.out(&format!("{REPO}.db.part"));
    let r = w.xfer(&url, &out);
    r.success().stderr_has("unchanged");
    w.assert_same(&out, &sync_db(&w), &r);
    assert_eq!(mtime(&out), PAST as i64);

    // No copy, so no condition: a 304 is no file.
    std::fs::remove_file(sync_db(&w)).expect("rm db");
    let out = w.out(&format!("{REPO}.db.2.part"));
    let r = w.xfer(&url, &out);
    r.failure()
        .one_error_line()
        .stderr_has("304")
        .stderr_has("no condition");
    assert_eq!(std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0), 0);
    assert_eq!(faults.hits(Fault::Status(304)), 2, "{}", faults.log_text());
}

/// A copy whose mtime is when it was written here (not a whole second, as a time set from
/// `Last-Modified` is) is never asked against: the mirror's database changed within that same
/// second, and a server comparing whole seconds would answer 304 and the old database would
/// stay. The same copy with a whole-second mtime is asked against (and, here, kept on 304).
#[test]
fn a_copy_written_here_rather_than_given_the_mirrors_time_is_not_asked_against() {
    let w = World::new("unchanged-local-time", false);
    // The mirror's database changed at PAST, the copy was written half a second later.
    set_mtime(&mirror_db(&w), PAST);
    std::fs::write(sync_db(&w), b"an older database").expect("write");
    std::fs::File::options()
        .write(true)
        .open(sync_db(&w))
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::new(PAST, 500_000_000)))
        .expect("set mtime");
    let out = w.out(&format!("{REPO}.db.part"));
    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("from mirror");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(
        hits.iter()
            .map(|h| (h.status, h.if_modified_since.is_some()))
            .collect::<Vec<_>>(),
        [(200, false)],
        "{}",
        w.mirror.log_text()
    );
    w.assert_same(&out, &mirror_db(&w), &r);

    // Control: the same copy given a whole second is asked against, and this server's 304
    // keeps it.
    set_mtime(&sync_db(&w), PAST);
    let out = w.out(&format!("{REPO}.db.2.part"));
    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("unchanged");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(
        hits.iter()
            .map(|h| (h.status, h.if_modified_since.is_some()))
            .collect::<Vec<_>>(),
        [(200, false), (304, true)],
        "{}",
        w.mirror.log_text()
    );
    w.assert_same(&out, &sync_db(&w), &r);
}

/// A copy that others may write, or a symbolic link, is never asked against nor copied:
/// anyone could have put other bytes there. The same copy as a regular file only its owner may
/// write is.
#[test]
fn a_copy_that_others_may_write_or_a_link_is_not_used() {
    let w = World::new("unchanged-untrusted", false);
    set_mtime(&mirror_db(&w), PAST);
    let out = w.out(&format!("{REPO}.db.part"));
    // Writable by everyone: anyone could have put other bytes there.
    set_mtime(&sync_db(&w), PAST);
    std::fs::set_permissions(sync_db(&w), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let r = w.xfer(&w.url(&format!("{REPO}.db")), &out);
    r.success().stderr_has("from mirror");
    // A symbolic link: never followed.
    std::fs::remove_file(sync_db(&w)).expect("rm");
    let elsewhere = w.dir.join("elsewhere.db");
    std::fs::copy(mirror_db(&w), &elsewhere).expect("copy");
    set_mtime(&elsewhere, PAST);
    std::os::unix::fs::symlink(&elsewhere, sync_db(&w)).expect("symlink");
    let out2 = w.out(&format!("{REPO}.db.2.part"));
    let r2 = w.xfer(&w.url(&format!("{REPO}.db")), &out2);
    r2.success().stderr_has("from mirror");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(
        hits.iter()
            .map(|h| (h.status, h.if_modified_since.is_some()))
            .collect::<Vec<_>>(),
        [(200, false), (200, false)],
        "{}",
        w.mirror.log_text()
    );
    w.assert_same(&out2, &mirror_db(&w), &r2);

    // Control: the link's target as a regular file, mode 0644, is asked against.
    std::fs::remove_file(sync_db(&w)).expect("rm link");
    std::fs::rename(&elsewhere, sync_db(&w)).expect("move");
    std::fs::set_permissions(sync_db(&w), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out3 = w.out(&format!("{REPO}.db.3.part"));
    let r3 = w.xfer(&w.url(&format!("{REPO}.db")), &out3);
    r3.success().stderr_has("unchanged");
    let hits = w.mirror.hits_for(&format!("{REPO}.db"));
    assert_eq!(
        hits.last()
            .map(|h| (h.status, h.if_modified_since.is_some())),
        Some((304, true)),
        "{}",
        w.mirror.log_text()
    );
    w.assert_same(&out3, &mirror_db(&w), &r3);
}
