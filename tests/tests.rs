//! pacxfer's integration tests: one binary, each module a set of user sessions.
//!
//! The end-to-end modules drive the real IPFS node (tests/ipfs-node) and real pacman; they
//! fail when either is missing, unless PACXFER_SKIP_E2E=1 is set by hand.

mod fixtures;
mod httpd;
mod ipfs;
mod util;
mod world;

mod cli_tests;
mod pacman_tests;
mod xfer_tests;
