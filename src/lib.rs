//! pacxfer: pacman's downloader that fetches packages from IPFS first and verifies every byte
//! against the sync databases' SHA-256, falling back to the HTTP mirror.
//!
//! One download, in order: `target` parses pacman's URL, `syncdb` finds the file's entry,
//! `plan` lists the sources (`ipfs::cid` and `ipfs::template` make the gateway URLs), `download` walks
//! them, with `gateway`, `mirror` and `http` fetching, `verify` checking while `output`
//! writes, and `progress` telling the user. `commands` ties these together for each command.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod http;
pub mod ipfs;
pub mod pacman;
pub mod prefetch;
pub mod publish;
pub mod sources;
pub mod transfer;
pub mod ui;

/// Sent to gateways, and to mirrors when pacman sets no `HTTP_USER_AGENT`.
pub const USER_AGENT: &str = concat!("pacxfer/", env!("CARGO_PKG_VERSION"));

/// The time now, in whole seconds since 1970 (0 for a clock before that).
pub fn unix_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
