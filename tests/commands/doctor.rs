//! `pacxfer doctor` on a test world: a working setup is all `ok` and exits 0; a broken
//! XferCommand line is a failing check with its fix and exit 1; a mirror without `.db.sig`
//! under `DatabaseOptional` is a warning naming the SigLevel line; `--json` says the same.

use crate::harness::world::World;

fn checks(w: &World) -> (Option<i32>, Vec<serde_json::Value>) {
    let r = w.pacxfer(&["doctor", "--json"]);
    let all: Vec<serde_json::Value> = serde_json::from_str(r.stdout().trim())
        .unwrap_or_else(|e| panic!("{}", r.explain(&e.to_string())));
    (r.code(), all)
}

fn status<'a>(all: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {all:?}"))
}

fn set_pacman_conf(w: &World, from: &str, to: &str) {
    let text = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    assert!(text.contains(from), "{text}");
    std::fs::write(&w.pacman_conf, text.replacen(from, to, 1)).expect("write pacman.conf");
}

#[test]
fn a_working_setup_is_all_ok_and_each_problem_names_its_fix() {
    let w = World::new("doctor", true);
    let r = w.pacxfer(&["doctor"]);
    r.success();
    let text = r.stdout();
    for name in [
        "pacman",
        "xfercommand",
        "databases",
        "gateway",
        "breaker",
        "templates",
        "api",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok ") && l.contains(name)),
            "{}",
            r.explain(name)
        );
    }
    assert!(text.contains("answers a missing block with 412"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");

    // %u%o as one word: pacman would pass one argument.
    set_pacman_conf(&w, " %u %o", " %u%o");
    let (code, all) = checks(&w);
    assert_eq!(code, Some(1));
    let x = status(&all, "xfercommand");
    assert_eq!(x["status"], "fail", "{x}");
    assert!(
        x["fix"].as_str().is_some_and(|f| f.contains("%u %o")),
        "{x}"
    );
    set_pacman_conf(&w, " %u%o", " %u %o");

    // The mirror has no testrepo.db.sig, and SigLevel asks for an optional one.
    set_pacman_conf(
        &w,
        "SigLevel = Never",
        "SigLevel = PackageNever DatabaseOptional",
    );
    let (code, all) = checks(&w);
    assert_eq!(code, Some(0));
    let s = status(&all, "db-signatures");
    assert_eq!(s["status"], "warn", "{s}");
    assert!(
        s["detail"].as_str().is_some_and(|d| d.contains("testrepo")),
        "{s}"
    );
    assert!(
        s["fix"]
            .as_str()
            .is_some_and(|f| f.contains("SigLevel = Required DatabaseNever")),
        "{s}"
    );

    // The node is gone: a warning (the mirror still serves), not a failure.
    let mut w = w;
    w.node.take().expect("node").stop();
    let (code, all) = checks(&w);
    assert_eq!(code, Some(0));
    assert_eq!(status(&all, "gateway")["status"], "warn");
    assert_eq!(status(&all, "api")["status"], "warn");
}

/// `stats` counts what pacman's downloads through pacxfer really did: one package from the
/// node, one from the mirror.
#[test]
fn stats_count_each_source() {
    let w = World::new("stats", true);
    let fx = w.fx;
    w.add_raw(&fx.tiny);
    let r = w.pacman(&["-Sw", "--noconfirm", "tiny", "big"]);
    r.success();
    // What really happened, from the servers' own records: tiny from the node, big from the
    // mirror.
    assert!(
        w.mirror.hits_for(&fx.tiny.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );
    assert_eq!(w.mirror.hits_for(&fx.big.filename).len(), 1);
    assert_eq!(w.node().answered(200), 1, "{:?}", w.node().responses());
    let s = w.pacxfer(&["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(s.success().stdout().trim())
        .unwrap_or_else(|e| panic!("{}", s.explain(&e.to_string())));
    assert_eq!(v["sources"]["node"]["files"], 1, "{v}");
    assert_eq!(v["sources"]["node"]["bytes"], fx.tiny.size, "{v}");
    assert_eq!(v["sources"]["mirror"]["files"], 1, "{v}");
    assert_eq!(v["sources"]["mirror"]["bytes"], fx.big.size, "{v}");
    assert_eq!(v["hit_rate"], 0.5, "{v}");
    assert!(v["seconds_saved"].is_number(), "{v}");
    let text = w.pacxfer(&["stats"]);
    text.success()
        .stdout_has("packages from IPFS: 50% of files")
        .stdout_has("IPFS, this node");
}
