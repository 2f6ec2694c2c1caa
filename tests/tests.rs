//! pacxfer's integration tests: one binary. `harness` holds what every test uses (servers,
//! Kubo nodes, pacman roots, fixtures); then one folder per area, mirroring `src/`, each module
//! a set of user sessions.
//!
//! The end-to-end modules drive real Kubo nodes (`ipfs`, built or found by contrib/deps.sh),
//! real ipfs-cluster peers (`.cluster/bin`, built by contrib/deps.sh) and real pacman; they fail
//! when one is missing (nothing skips them).

mod harness;

mod cache;
mod commands;
mod db;
mod http;
mod ipfs;
mod makepkg;
mod pacman;
mod prefetch;
mod publish;
mod sources;
mod transfer;
