//! pacxfer's integration tests: one binary, each module a set of user sessions.
//!
//! The end-to-end modules drive real Kubo nodes (`ipfs`, built or found by contrib/deps.sh),
//! real ipfs-cluster peers (`.cluster/bin`, built by contrib/deps.sh) and real pacman; they fail
//! when one is missing (nothing skips them).

mod chroot;
mod cluster;
mod faultd;
mod fixtures;
mod httpd;
mod ipfs;
mod util;
mod world;

mod breaker_tests;
mod cli_tests;
mod cluster_tests;
mod doctor_tests;
mod failover_tests;
mod faults;
mod fuzz;
mod hardening_tests;
mod index_tests;
mod kubo_tests;
mod package_tests;
mod pacman7_tests;
mod pacman_tests;
mod prefetch_tests;
mod privilege;
mod promises_tests;
mod proxy_tests;
mod publish_tests;
mod rpc_tests;
mod security;
mod security_http;
mod share_tests;
mod unchanged_tests;
mod xfer_tests;
