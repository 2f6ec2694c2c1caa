//! Regression tests for what a hostile or broken HTTP server could do to pacxfer, one test per
//! defect that was found and fixed, each against the real binary with the fault-injecting
//! server (`faultd`) as the gateway or as the mirror pacman names:
//!
//! - headers dripped one line a second held pacxfer forever: the headers are now due within
//!   the stall timeout;
//! - a body dripped below 1 byte/s was never a stall: the speed floor now ends it, whatever
//!   the stall timeout;
//! - a gateway that answered its cache-only request, then stalled, closed the breaker, so
//!   every later call paid the whole stall again: it now opens it;
//! - a `206` with an unknown total (`bytes 0-99/*`) to a request without `Range` was taken
//!   as a complete file no database lists, with exit 0: it is now refused;
//! - an `HTTP_USER_AGENT` holding CR/LF (pacman passes its environment on) made pacxfer
//!   panic: control characters are now replaced by spaces;
//! - a file no database lists whose body ran past the server's own length was blamed on "the
//!   database": the error now names the server's length.
//!
//! Each hang test asserts that pacxfer ended on its own with the error the fix gives; the
//! limit after which it is killed is far above what the fixed code needs, and there only to
//! fail fast: without the fix each ends with another error (when the fault ends) or not at
//! all, never with the one asserted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::faultd::{Fault, FaultServer};
use crate::harness::fixtures::REPO;
use crate::harness::util::{run_within, Run};
use crate::harness::world::World;

/// A file name no database lists.
const UNLISTED: &str = "unlisted-1.0-1-any.pkg.tar.zst";
/// How long a hang test waits before killing pacxfer, only to fail fast: the fixed code ends
/// within a few stall timeouts, a drip goes on for 60 s.
const LIMIT: Duration = Duration::from_secs(180);

/// A world whose gateway is nowhere, and a fault server serving the package no IPFS node
/// holds (the one `World` lists in its database).
fn setup(name: &str) -> (World, FaultServer, Vec<u8>) {
    let w = World::new(name, false);
    let file = std::fs::read(&w.fx.other.path).expect("read package");
    let faults = FaultServer::start(file.clone());
    (w, faults, file)
}

/// The URL pacman would pass for `file` on a mirror that serves with `fault`.
fn mirror_url(faults: &FaultServer, fault: Fault, file: &str) -> String {
    format!("{}/{REPO}/os/x86_64/{file}", faults.base(fault))
}

/// `pacxfer [-v] --config <world config> URL OUTPUT`, ended after `LIMIT` at the latest.
fn xfer_within(w: &World, verbose: bool, url: &str, out: &Path) -> Run {
    let out = out.to_str().expect("utf8");
    let args: &[&str] = if verbose {
        &["-v", url, out]
    } else {
        &[url, out]
    };
    bounded(&mut w.pacxfer_cmd(args))
}

/// Runs `cmd`, asserting that it ended on its own (it is killed after `LIMIT`).
#[track_caller]
fn bounded(cmd: &mut Command) -> Run {
    let (run, _) = run_within(cmd, LIMIT);
    assert!(
        run.code().is_some(),
        "{}",
        run.explain(&format!("still running after {}s: killed", LIMIT.as_secs()))
    );
    run
}

/// What OUTPUT holds (nothing when absent).
fn holds(out: &Path) -> Vec<u8> {
    std::fs::read(out).unwrap_or_default()
}

/// Pins `.timeout_recv_response(Some(opts.stall_timeout))` in `http::Client::new`: without
/// it ureq waits for the end of the headers with no limit, since each dripped line restarts
/// the per-read timeout.
#[test]
fn header_drip_is_bounded_by_the_stall_timeout() {
    let (mut w, faults, _) = setup("header-drip");

    // As the mirror of a file no database lists: the only source, so the error line is its.
    let out = w.out("mirror.part");
    let r = xfer_within(
        &w,
        false,
        &mirror_url(&faults, Fault::HeaderDrip, UNLISTED),
        &out,
    );
    r.failure().one_error_line().stderr_has("no answer within");
    assert!(holds(&out).is_empty(), "{}", r.explain("OUTPUT not empty"));
    assert_eq!(
        faults.hits(Fault::HeaderDrip),
        1,
        "{}",
        r.explain(&faults.log_text())
    );

    // As the gateway, for a listed file: given up after its own stall timeout, and the
    // mirror serves.
    w.configure(
        &faults.base(Fault::HeaderDrip),
        &["/ipfs/{cid}"],
        "stall_timeout = \"2s\"",
    );
    let out = w.out("gateway.part");
    let r = xfer_within(&w, true, &w.url(&w.fx.other.filename), &out);
    r.success()
        .stderr_has("from mirror")
        .stderr_has("no answer within 2.");
    w.assert_same(&out, &w.fx.other.path, &r);
    assert_eq!(
        faults.hits(Fault::HeaderDrip),
        2,
        "{}",
        r.explain(&faults.log_text())
    );
}

/// Pins `http::SpeedFloor` (wrapped around every body in `Client::get`): a byte every 1.5 s
/// never lets the 5 s per-read timeout fire, so without the floor the transfer goes on for
/// as long as the server drips.
#[test]
fn slow_body_drip_ends_as_a_stall() {
    let (w, faults, file) = setup("slow-drip");
    let out = w.out("drip.part");
    let r = xfer_within(
        &w,
        false,
        &mirror_url(&faults, Fault::SlowDrip, UNLISTED),
        &out,
    );
    r.failure()
        .one_error_line()
        .stderr_has("stalled: no data within the stall timeout");
    // What arrived may stay, but only as a prefix pacman never renames (exit is non-zero).
    let got = holds(&out);
    assert!(
        got.len() < file.len() && file.starts_with(&got),
        "{}",
        r.explain(&format!("OUTPUT holds {} bytes, not a prefix", got.len()))
    );
}

/// The speed floor with a stall timeout of 2 s, at the gateway: the same drip (1 byte every
/// 1.5 s, 0.67 byte/s) must end as a stall, and the mirror serve. A floor that compared the
/// bytes with the window's length instead of the time really passed looked at this drip
/// every 3 s, found 2 bytes, and let it run forever.
#[test]
fn slow_body_drip_ends_as_a_stall_under_a_short_stall_timeout() {
    let (mut w, faults, _) = setup("slow-drip-2s");
    w.configure(
        &faults.base(Fault::SlowDrip),
        &["/ipfs/{cid}"],
        "stall_timeout = \"2s\"",
    );
    let out = w.out("drip.part");
    let r = xfer_within(&w, true, &w.url(&w.fx.other.filename), &out);
    r.success()
        .stderr_has("stalled: no data within the stall timeout")
        .stderr_has("from mirror");
    w.assert_same(&out, &w.fx.other.path, &r);
}

/// Pins `Gateway::settle` tripping the breaker on `Failure::Stalled` after a cache-only
/// answer: before, the 200 itself closed the breaker, so every later call asked the same
/// hung gateway again and paid its whole stall. Both ways of stalling: silence after half
/// the body (the per-read timeout), and a drip below the speed floor.
#[test]
fn gateway_that_stalls_after_answering_is_skipped_by_the_next_call() {
    for (fault, stall) in [(Fault::Stall, "2s"), (Fault::SlowDrip, "5s")] {
        let (mut w, faults, _) = setup(&format!("gateway-{}", fault.name()));
        w.configure(
            &faults.base(fault),
            &["/ipfs/{cid}"],
            &format!("stall_timeout = \"{stall}\"\nbreaker = \"120s\""),
        );
        let pkg = w.fx.other.clone();
        let url = w.url(&pkg.filename);

        let out = w.out("1.part");
        let r = xfer_within(&w, true, &url, &out);
        r.success()
            .stderr_has("stalled: no data within the stall timeout")
            .stderr_has("from mirror");
        w.assert_same(&out, &pkg.path, &r);
        assert_eq!(
            faults.hits(fault),
            1,
            "{}",
            r.explain(&format!(
                "{}: gateway log:\n{}",
                fault.name(),
                faults.log_text()
            ))
        );

        let out = w.out("2.part");
        let r = xfer_within(&w, true, &url, &out);
        r.success()
            .stderr_has("circuit open after: answered, then stalled")
            .stderr_has("from mirror");
        w.assert_same(&out, &pkg.path, &r);
        assert_eq!(
            faults.hits(fault),
            1,
            "{}",
            r.explain(&format!(
                "{}: the second call asked the gateway again; gateway log:\n{}",
                fault.name(),
                faults.log_text()
            ))
        );

        let r = w.pacxfer(&["lookup", &pkg.filename]);
        r.success()
            .stdout_has("skipped for")
            .stdout_has("answered, then stalled");
    }
}

/// Pins the `206 if from == 0` arm of `Reply::into_stream`: a part sent to a request for the
/// whole file, with no total, was streamed as the whole of a file no database lists (its
/// length unknown, so nothing to compare) and pacxfer exited 0, so pacman would have renamed
/// half a file into place.
#[test]
fn partial_206_with_unknown_total_is_not_a_complete_file() {
    let (w, faults, _) = setup("partial-star");
    let out = w.out("partial.part");
    let r = xfer_within(
        &w,
        false,
        &mirror_url(&faults, Fault::PartialStar, UNLISTED),
        &out,
    );
    r.failure()
        .one_error_line()
        .stderr_has("206 (a part) to a request for the whole file");
    assert!(
        holds(&out).is_empty(),
        "{}",
        r.explain(&format!(
            "OUTPUT holds {} bytes of the part",
            holds(&out).len()
        ))
    );
    let log = faults.log();
    assert!(
        !log.is_empty() && log.iter().all(|h| h.from.is_none()),
        "{}",
        r.explain(&format!(
            "expected requests without Range only:\n{}",
            faults.log_text()
        ))
    );
}

/// Pins `http::header_value` in `mirror::client`: a CR/LF in `HTTP_USER_AGENT` went into
/// ureq's config as it was, and pacxfer panicked (exit 101) instead of downloading.
#[test]
fn crlf_user_agent_is_cleaned_not_a_panic() {
    let w = World::new("crlf-ua", false);
    let pkg = w.fx.tiny.clone();
    let cases = [
        (
            "pacman/6.0.2 (Linux x86_64) libalpm/13.0.2\r\nX-Injected: yes",
            "pacman/6.0.2 (Linux x86_64) libalpm/13.0.2 X-Injected: yes".to_string(),
        ),
        // Nothing left once cleaned: pacxfer's own User-Agent.
        ("\r\n\t", format!("pacxfer/{}", env!("CARGO_PKG_VERSION"))),
    ];
    for (i, (raw, sent)) in cases.iter().enumerate() {
        let out = w.out(&format!("{i}.part"));
        let before = w.mirror.hits_for(&pkg.filename).len();
        let mut cmd = w.pacxfer_cmd(&[&w.url(&pkg.filename), out.to_str().expect("utf8")]);
        let r = bounded(cmd.env("HTTP_USER_AGENT", raw));
        r.success().stderr_has("from mirror");
        w.assert_same(&out, &pkg.path, &r);
        let hits = w.mirror.hits_for(&pkg.filename);
        assert!(
            hits.len() > before
                && hits[before..]
                    .iter()
                    .all(|h| h.user_agent.as_deref() == Some(sent.as_str())),
            "{}",
            r.explain(&format!(
                "HTTP_USER_AGENT {raw:?}: expected User-Agent {sent:?}, mirror saw {:?}",
                hits[before..]
                    .iter()
                    .map(|h| h.user_agent.clone())
                    .collect::<Vec<_>>()
            ))
        );
    }
}

/// Pins `Failure::LongerThanAnnounced` in `download::transfer`: for a file no database
/// lists, a body longer than the server's own `Content-Length` was reported as "more than
/// the N bytes the database lists", naming a database that lists nothing.
///
/// ureq stops a plain body at its `Content-Length`, so a server that merely sends extra
/// bytes after it cannot reach that check: the user gets the announced bytes, and the extra
/// ones never reach OUTPUT. The check is reached when the body is chunked (which, by HTTP's
/// rules, overrides `Content-Length`) and runs past the length the server also announced.
#[test]
fn unlisted_body_longer_than_announced_names_the_server_not_the_database() {
    let (w, faults, file) = setup("longer-than-announced");

    let out = w.out("chunked.part");
    let r = xfer_within(
        &w,
        false,
        &mirror_url(&faults, Fault::ChunkedOverLength, UNLISTED),
        &out,
    );
    r.failure().one_error_line().stderr_has(&format!(
        "sent more than the {} bytes the server announced",
        file.len()
    ));
    assert!(
        !r.stderr().contains("database lists"),
        "{}",
        r.explain("blamed on a database")
    );
    assert!(
        holds(&out).is_empty(),
        "{}",
        r.explain(&format!(
            "OUTPUT holds {} bytes after the refusal",
            holds(&out).len()
        ))
    );

    let out = w.out("plain.part");
    let r = xfer_within(
        &w,
        false,
        &mirror_url(&faults, Fault::LongerThanAnnounced, UNLISTED),
        &out,
    );
    r.success().stderr_has("from mirror");
    assert!(
        holds(&out) == file,
        "{}",
        r.explain(&format!(
            "OUTPUT holds {} bytes, not the {} announced",
            holds(&out).len(),
            file.len()
        ))
    );
}

/// Files no database lists have no checksum to hold them to; pacman's own downloader caps
/// their size by kind. A signature larger than 16 KiB (the package file played by the fault
/// server is 50 KiB) is cut off; a sync database over 128 MiB is refused before a byte moves
/// when its server announces the length, and cut off at 128 MiB when it does not. The same
/// bytes as a package of a repository this machine has not synced, and a small database
/// without a length, are taken whole.
#[test]
fn unlisted_signatures_and_databases_are_capped_like_pacmans_own() {
    let (w, faults, file) = setup("unlisted-caps");
    let out = w.dir.join("x.sig.part");
    let url = mirror_url(&faults, Fault::Good, &format!("{UNLISTED}.sig"));
    let r = xfer_within(&w, false, &url, &out);
    r.failure()
        .one_error_line()
        .stderr_has("sent more than 16384 bytes, more than pacman accepts");
    assert!(holds(&out).is_empty(), "{}", r.explain("OUTPUT emptied"));
    // The same bytes as a package of a repository this machine has not synced: no cap.
    let out = w.dir.join("unlisted.part");
    let url = mirror_url(&faults, Fault::Good, UNLISTED);
    let r = xfer_within(&w, false, &url, &out);
    r.success();
    assert!(holds(&out) == file, "{}", r.explain("the whole file"));

    // A database of 128 MiB and one byte (a sparse file: nothing on disk) on the world's
    // mirror, with and without its length.
    const CAP: u64 = 128 << 20;
    let repo_dir = w.dir.join("mirror").join(REPO).join("os/x86_64");
    let huge = std::fs::File::create(repo_dir.join("huge.db")).expect("create huge.db");
    huge.set_len(CAP + 1).expect("sparse huge.db");
    let cut = format!("sent more than {CAP} bytes, more than pacman accepts");
    let out = w.dir.join("announced.db.part");
    let r = xfer_within(&w, false, &w.url("huge.db"), &out);
    r.failure().one_error_line().stderr_has(&cut);
    assert!(holds(&out).is_empty(), "{}", r.explain("OUTPUT emptied"));
    let nolength = |file: &str| format!("{}/nolength/{REPO}/os/x86_64/{file}", w.mirror.url());
    let out = w.dir.join("unannounced.db.part");
    let r = xfer_within(&w, false, &nolength("huge.db"), &out);
    r.failure().one_error_line().stderr_has(&cut);
    assert!(holds(&out).is_empty(), "{}", r.explain("OUTPUT emptied"));
    // Control: a database within the cap, without a length, is taken whole.
    let out = w.dir.join("small.db.part");
    let r = xfer_within(&w, false, &nolength(&format!("{REPO}.db")), &out);
    r.success();
    assert!(
        holds(&out) == std::fs::read(w.fx.db()).expect("read db"),
        "{}",
        r.explain("the whole database")
    );
}

/// Each hop of a redirect chain used to get the whole header deadline again: ten slow 302s
/// held a call for ten times the stall timeout. The deadline now covers the chain: the
/// connect timeout plus the stall timeout from the first request (World: 10 s + 5 s).
#[test]
fn a_chain_of_slow_redirects_shares_one_header_deadline() {
    let (w, faults, _) = setup("slow-redirects");
    let out = w.dir.join("redirected.part");
    let url = mirror_url(&faults, Fault::SlowRedirect, UNLISTED);
    let r = xfer_within(&w, false, &url, &out);
    r.failure().one_error_line().stderr_has("no answer within");
    // Four hops fit in the 15 s; ten (the limit) would take 40 s.
    assert!(
        faults.hits(Fault::SlowRedirect) <= 5,
        "{} hops: {}",
        faults.hits(Fault::SlowRedirect),
        r.explain("")
    );
}
