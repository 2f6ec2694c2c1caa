//! `pacxfer publish` with `[publish] cluster` against a real two-peer ipfs-cluster in front of
//! two real Kubo nodes (the publisher's and another): the root pinned on both peers with the
//! configured replication and expiry; a new root pinned by a pin update and the old one
//! unpinned; a cluster that is down, then one that refuses the password (`cluster_auth`): one
//! error line each, the IPNS root published all the same, and the next run pins it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::harness::cluster::{two_nodes, Cluster};
use crate::harness::util::dead_port;
use crate::harness::world::World;
use crate::publish::runs::{publish, repo_dir, repo_tool, state, summary};

/// A value of the publisher state's `meta` table.
fn meta(w: &World, key: &str) -> Option<String> {
    let conn =
        rusqlite::Connection::open_with_flags(state(w), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open state");
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .ok()
}

/// Days since 1970-01-01 of an RFC 3339 time's date (`2026-12-26T...`).
fn days_of(rfc3339: &str) -> i64 {
    let date: Vec<i64> = rfc3339
        .get(..10)
        .unwrap_or_default()
        .split('-')
        .filter_map(|p| p.parse().ok())
        .collect();
    let [y, m, d] = date[..] else {
        panic!("not a date: {rfc3339:?}");
    };
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    (secs / 86_400) as i64
}

/// A world whose IPFS node is the first of two online, connected Kubo nodes; the second is
/// returned for a cluster's second peer.
fn world_with_two_nodes(name: &str, publish_conf: &str) -> (World, crate::harness::kubo::Node) {
    let mut w = World::new(name, false);
    let (first, second) = two_nodes(w.dir.path());
    w.node = Some(first);
    let gateway = w.node().url.clone();
    w.configure(&gateway, &["/ipfs/{cid}"], "");
    let mut text = std::fs::read_to_string(&w.config).expect("read config");
    text.push_str(&format!("\n[publish]\n{publish_conf}\n"));
    std::fs::write(&w.config, text).expect("write config");
    (w, second)
}

/// Whether `node` holds `cid` with a recursive pin.
fn kubo_pinned(node: &crate::harness::kubo::Node, cid: &str) -> bool {
    let (status, _) = node.rpc_raw(&format!("pin/ls?arg={cid}&type=recursive"), None);
    status == 200
}

#[test]
fn the_root_is_pinned_on_both_peers_and_a_new_root_replaces_it_by_a_pin_update() {
    let (w, kubo2) = world_with_two_nodes(
        "cluster-publish",
        "replication_min = 2\nreplication_max = 2\nexpire_days = 30",
    );
    let cluster = Cluster::start(w.dir.path(), &[w.node(), &kubo2]);
    let (peer1, peer2) = (&cluster.peers[0], &cluster.peers[1]);
    // One package is not in the repository yet.
    repo_tool(&repo_dir(&w), "repo-remove", "other");

    let r = publish(&w, &["--cluster", &peer1.api]);
    r.success();
    let s = summary(&r);
    let root = s["root"].as_str().expect("root").to_string();
    assert_eq!(s["added"], 3, "{s}");
    assert_eq!(s["cluster"].as_str(), Some(root.as_str()), "{s}");
    r.stderr_has(&format!(
        "pinned /ipfs/{root} in the ipfs-cluster at {}: on 2 of 2 peers",
        peer1.api
    ));

    // As the other peer sees it: pinned on both, with the options asked for.
    let pin = peer2
        .pin_of(&root)
        .expect("the root is pinned in the cluster");
    assert_eq!(pin["replication_factor_min"], 2, "{pin}");
    assert_eq!(pin["replication_factor_max"], 2, "{pin}");
    assert_eq!(pin["name"], "pacxfer-pacxfer", "{pin}");
    let expires = days_of(pin["expire_at"].as_str().expect("expire_at"));
    assert!(
        (today() + 29..=today() + 31).contains(&expires),
        "expires on day {expires}, not about 30 days after day {}: {pin}",
        today()
    );
    let statuses = peer2.statuses(&root);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(statuses.values().all(|s| s == "pinned"), "{statuses:?}");
    assert!(
        kubo_pinned(&kubo2, &root),
        "the second Kubo node holds no pin of the root"
    );
    assert_eq!(meta(&w, "cluster_root").as_deref(), Some(root.as_str()));

    // A package is added: the new root replaces the old one by a pin update.
    repo_tool(&repo_dir(&w), "repo-add", &w.fx.other.filename);
    let r = publish(&w, &["--cluster", &peer1.api]);
    r.success();
    let s = summary(&r);
    let new_root = s["root"].as_str().expect("root").to_string();
    assert_ne!(new_root, root);
    assert_eq!(s["added"], 1, "{s}");
    assert_eq!(s["cluster"].as_str(), Some(new_root.as_str()), "{s}");
    r.stderr_has(&format!(
        "pinned /ipfs/{new_root} in the ipfs-cluster at {} (pin update): on 2 of 2 peers; unpinned {root}",
        peer1.api
    ));
    let pin = peer2.pin_of(&new_root).expect("the new root is pinned");
    assert_eq!(
        (
            pin["replication_factor_min"].as_i64(),
            pin["replication_factor_max"].as_i64()
        ),
        (Some(2), Some(2)),
        "{pin}"
    );
    assert!(
        days_of(pin["expire_at"].as_str().expect("expire_at")) >= today() + 29,
        "{pin}"
    );
    let statuses = peer2.statuses(&new_root);
    assert!(
        statuses.len() == 2 && statuses.values().all(|s| s == "pinned"),
        "{statuses:?}"
    );
    assert!(
        peer2.pin_of(&root).is_none(),
        "the previous root is still pinned in the cluster"
    );
    assert_eq!(meta(&w, "cluster_root").as_deref(), Some(new_root.as_str()));
    assert_eq!(meta(&w, "cluster_unpin").as_deref(), Some(""));
    // The peers let the old root go (asynchronously), and keep the new one.
    let started = std::time::Instant::now();
    while kubo_pinned(&kubo2, &root) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the second Kubo node still pins the previous root"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(kubo_pinned(&kubo2, &new_root));
    assert!(kubo_pinned(w.node(), &new_root));
}

#[test]
fn a_cluster_that_is_down_or_refuses_the_password_is_one_error_line_and_the_next_run_pins_the_root()
{
    let (w, kubo2) =
        world_with_two_nodes("cluster-down", "replication_min = -1\nreplication_max = -1");
    let dead = format!("http://pacxfer:s3cret@127.0.0.1:{}", dead_port());
    let r = publish(&w, &["-q", "--cluster", &dead]);
    r.failure()
        .one_error_line()
        .stderr_has("the ipfs-cluster REST API at http://pacxfer:***@127.0.0.1:")
        .stderr_has("did not answer");
    assert!(!r.stderr().contains("s3cret"), "{}", r.stderr());
    // The root is published in IPFS all the same.
    let s = summary(&r);
    assert_eq!(s["added"], 4, "{s}");
    assert!(s["cluster"].is_null(), "{s}");
    let root = s["root"].as_str().expect("root").to_string();
    let name = s["name"].as_str().expect("name").to_string();
    let resolved = w
        .node()
        .rpc(&format!("name/resolve?arg=/ipns/{name}&offline=true"));
    assert_eq!(resolved["Path"], format!("/ipfs/{root}"), "{resolved}");
    assert_eq!(meta(&w, "root").as_deref(), Some(root.as_str()));
    assert_eq!(meta(&w, "cluster_root"), None);

    // The cluster is up, its REST API asking for a password: a wrong one is refused, in one
    // line that does not show it.
    let cluster = Cluster::start_with(
        w.dir.path(),
        &[w.node(), &kubo2],
        Some(("pacxfer", "right")),
    );
    let peer2 = &cluster.peers[1];
    let with_auth = |auth: &str| {
        let text = std::fs::read_to_string(&w.config).expect("read config");
        let text = text.replace(
            "[publish]\n",
            &format!("[publish]\ncluster_auth = {auth:?}\n"),
        );
        std::fs::write(&w.config, text).expect("write config");
    };
    with_auth("basic:pacxfer:wrong");
    let r = publish(&w, &["-q", "--cluster", &cluster.peers[0].api]);
    r.failure()
        .one_error_line()
        .stderr_has(&format!(
            "the ipfs-cluster at {} refused POST /pins/",
            cluster.peers[0].api
        ))
        .stderr_has("(HTTP 401)");
    assert!(!r.stderr().contains("wrong"), "{}", r.stderr());
    assert!(summary(&r)["cluster"].is_null());
    assert_eq!(meta(&w, "cluster_root"), None);

    // With the right password, the next run pins the root it publishes (a new one:
    // pacxfer.json says when), with nothing else to do.
    let text = std::fs::read_to_string(&w.config).expect("read config");
    std::fs::write(&w.config, text.replace("pacxfer:wrong", "pacxfer:right")).expect("write");
    let r = publish(&w, &["--cluster", &cluster.peers[0].api]);
    r.success();
    let s = summary(&r);
    assert_eq!(
        (s["added"].as_u64(), s["present"].as_u64()),
        (Some(0), Some(4)),
        "{s}"
    );
    let root = s["root"].as_str().expect("root").to_string();
    assert_eq!(s["cluster"].as_str(), Some(root.as_str()), "{s}");
    assert_eq!(meta(&w, "root").as_deref(), Some(root.as_str()));
    let pin = peer2.pin_of(&root).expect("pinned in the cluster");
    assert_eq!(pin["replication_factor_min"], -1, "{pin}");
    assert!(
        pin["expire_at"]
            .as_str()
            .is_none_or(|t| t.starts_with("0001-01-01")),
        "expire_days = 0 sets no expiry: {pin}"
    );
    let statuses = peer2.statuses(&root);
    assert!(
        statuses.len() == 2 && statuses.values().all(|s| s == "pinned"),
        "{statuses:?}"
    );
    assert_eq!(meta(&w, "cluster_root").as_deref(), Some(root.as_str()));
}
