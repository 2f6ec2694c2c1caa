//! The gateway's circuit breaker across calls: a dead gateway is tried once, then skipped
//! until the breaker's time is up; an answer from the gateway closes it.

use std::time::{Duration, SystemTime};

use pacxfer::cache::Places;
use pacxfer::sources::breaker::Breaker;

use crate::harness::world::World;

/// A gateway nobody listens on is tried once ("cannot connect"); the next call skips it
/// ("circuit open") and still gets the file from the mirror, and `lookup` says for how long.
#[test]
fn a_dead_gateway_is_skipped_by_later_calls() {
    let mut w = World::new("breaker-open", false);
    let gateway = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let tiny = w.fx.tiny.clone();

    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("1.part"));
    r.success()
        .stderr_has("cannot connect")
        .stderr_has("from mirror");

    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("2.part"));
    r.success()
        .stderr_has("circuit open after")
        .stderr_has("from mirror");
    w.assert_same(&w.out("2.part"), &tiny.path, &r);

    let r = w.pacxfer(&["lookup", &tiny.filename]);
    r.success()
        .stdout_has("skipped for")
        .stdout_has("Connection refused");
    let r = w.pacxfer(&["lookup", "--json", &tiny.filename]);
    let doc: serde_json::Value = serde_json::from_str(&r.success().stdout()).expect("json");
    assert!(
        doc["gateway_skipped"]["seconds_left"].as_u64().is_some(),
        "{doc}"
    );
}

/// Whether the world's cache holds a breaker state for `gateway`.
fn has_state(w: &World, gateway: &str) -> bool {
    w.cache_dir()
        .join(Places::name_for("gateway", gateway.as_bytes(), "state"))
        .exists()
}

/// An open breaker skips the gateway; once its time is up the next call asks the gateway
/// again, and the gateway's answer (any answer: a 404 here) closes the breaker, its state
/// removed, rather than leaving it to expire.
#[test]
fn the_breaker_reopens_the_way_once_its_time_is_up_and_an_answer_closes_it() {
    let mut w = World::new("breaker-close", false);
    // The mirror stands in as a gateway that answers (404 for /ipfs paths).
    let gateway = w.mirror.url();
    w.configure(&gateway, &["/ipfs/{cid}"], "breaker = \"1h\"");
    let breaker =
        |open_for: Duration| Breaker::new(Places::new(Some(&w.cache_dir())), &gateway, open_for);
    breaker(Duration::from_secs(3600)).trip("cannot connect: test");
    let tiny = w.fx.tiny.clone();
    let gateway_asked = || {
        w.mirror
            .hits()
            .iter()
            .filter(|h| h.path.starts_with("/ipfs/"))
            .count()
    };

    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("1.part"));
    r.success()
        .stderr_has("circuit open after: cannot connect: test")
        .stderr_has("from mirror");
    assert_eq!(gateway_asked(), 0, "{}", w.mirror.log_text());

    // Tripped again for one millisecond: a state whose time is up once that has passed.
    breaker(Duration::from_millis(1)).trip("cannot connect: test");
    assert!(has_state(&w, &gateway));
    // Its end (whole milliseconds) lies before this moment plus one.
    let up = SystemTime::now() + Duration::from_millis(2);
    while SystemTime::now() < up {
        std::thread::yield_now();
    }
    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("2.part"));
    r.success().stderr_has("HTTP 404").stderr_has("from mirror");
    assert_eq!(gateway_asked(), 1, "{}", w.mirror.log_text());
    assert!(
        !has_state(&w, &gateway),
        "{}",
        r.explain("the gateway answered, yet its breaker state is still there")
    );
    let r = w.pacxfer(&["lookup", &tiny.filename]);
    r.success().stdout_has("circuit closed");
}
