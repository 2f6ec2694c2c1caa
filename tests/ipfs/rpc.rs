//! pacxfer's client of Kubo's RPC API against a real Kubo daemon: over TCP, over a unix
//! socket (Kubo listens on both when told to), with Kubo's API authorization, and with the
//! daemon gone.

use std::time::Duration;

use pacxfer::ipfs::rpc::{Rpc, RpcError};

use crate::harness::kubo::{Node, Options, PROFILE};
use crate::harness::util::TestDir;

fn profile_args() -> Vec<(&'static str, &'static str)> {
    PROFILE
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[test]
fn the_rpc_client_adds_files_over_tcp_and_a_unix_socket() {
    let d = TestDir::new("rpc");
    let sock = d.join("api.sock");
    let node = Node::start_with(
        d.path(),
        "ipfs",
        Options {
            online: false,
            config: vec![(
                "Addresses.API",
                serde_json::json!(["/ip4/127.0.0.1/tcp/0", format!("/unix{}", sock.display())]),
            )],
        },
    );
    let file = d.write("pkg.pkg.tar.zst", vec![7u8; 3 << 20]);
    let want = node.add_with(
        "pkg.pkg.tar.zst",
        &std::fs::read(&file).expect("read"),
        "only-hash=true",
    );
    let unix = format!("/unix{}", sock.display());
    for endpoint in [node.api.as_str(), unix.as_str()] {
        let rpc = Rpc::new(endpoint, None, Duration::from_secs(30)).expect("client");
        let id = rpc.call("id", &[]).expect("id");
        assert!(id["ID"].as_str().is_some_and(|s| !s.is_empty()), "{id}");
        let mut args = profile_args();
        args.push(("pin", "false"));
        let added = rpc.add_file(&file, "pkg.pkg.tar.zst", &args).expect("add");
        assert_eq!(added.hash, want, "{endpoint}");
        // A command Kubo refuses: its own message, one line.
        match rpc.call("files/stat", &[("arg", "/no/such/path")]) {
            Err(RpcError::Failed {
                status, message, ..
            }) => {
                assert_eq!(status, 500);
                assert!(message.contains("does not exist"), "{message}");
            }
            other => panic!("files/stat of nothing: {other:?}"),
        }
    }
    node.stop();
    let rpc = Rpc::new(&unix, None, Duration::from_secs(5)).expect("client");
    let err = rpc.call("id", &[]).expect_err("daemon gone");
    assert!(matches!(err, RpcError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("is the daemon running"), "{err}");
}

#[test]
fn the_rpc_client_sends_kubos_api_authorization() {
    let d = TestDir::new("rpc-auth");
    let node = Node::start_with(
        d.path(),
        "ipfs",
        Options {
            online: false,
            config: vec![(
                "API.Authorizations",
                serde_json::json!({"pacxfer": {"AuthSecret": "bearer:s3cr3t", "AllowedPaths": ["/api/v0"]}}),
            )],
        },
    );
    let without = Rpc::new(&node.api, None, Duration::from_secs(10)).expect("client");
    match without.call("id", &[]) {
        Err(RpcError::Failed { status, .. }) => assert_eq!(status, 403),
        other => panic!("no authorization: {other:?}"),
    }
    let with = Rpc::new(&node.api, Some("bearer:s3cr3t"), Duration::from_secs(10)).expect("client");
    assert!(with.call("id", &[]).expect("id")["ID"].is_string());
    let wrong =
        Rpc::new(&node.api, Some("basic:alice:nope"), Duration::from_secs(10)).expect("client");
    match wrong.call("id", &[]) {
        Err(RpcError::Failed { status, .. }) => assert_eq!(status, 403),
        other => panic!("a wrong authorization: {other:?}"),
    }
}
