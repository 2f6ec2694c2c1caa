//! The gateway's circuit breaker across calls: a dead gateway is tried once, then skipped
//! until the breaker's time is up; an answer from the gateway closes it.

use std::time::Duration;

use pacxfer::cache::Places;
use pacxfer::sources::breaker::Breaker;

use crate::world::World;

#[test]
fn a_dead_gateway_is_skipped_by_later_calls() {
    let mut w = World::new("breaker-open", false);
    let gateway = format!("http://127.0.0.1:{}", crate::util::dead_port());
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

#[test]
fn the_breaker_reopens_the_way_once_its_time_is_up_and_an_answer_closes_it() {
    let mut w = World::new("breaker-close", false);
    // The mirror stands in as a gateway that answers (404 for /ipfs paths).
    let gateway = w.mirror.url();
    w.configure(&gateway, &["/ipfs/{cid}"], "breaker = \"6s\"");
    let breaker = Breaker::new(
        Places::new(Some(&w.cache_dir())),
        &gateway,
        Duration::from_secs(6),
    );
    breaker.trip("cannot connect: test");
    let tiny = w.fx.tiny.clone();

    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("1.part"));
    r.success()
        .stderr_has("circuit open after: cannot connect: test");
    assert!(
        w.mirror
            .hits()
            .iter()
            .all(|h| !h.path.starts_with("/ipfs/")),
        "{}",
        w.mirror.log_text()
    );

    std::thread::sleep(Duration::from_millis(6100));
    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("2.part"));
    r.success().stderr_has("HTTP 404");
    assert!(
        w.mirror.hits().iter().any(|h| h.path.starts_with("/ipfs/")),
        "{}",
        w.mirror.log_text()
    );
    let r = w.pacxfer(&["lookup", &tiny.filename]);
    r.success().stdout_has("circuit closed");
}
