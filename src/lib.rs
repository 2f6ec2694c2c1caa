//! pacxfer: pacman's downloader that fetches packages from IPFS first and verifies every byte
//! against the sync databases' SHA-256, falling back to the HTTP mirror.
//!
//! One folder per layer; each uses only the layers listed before it (no import runs the other
//! way, and there are no import circles):
//!
//! 1. `ui`: what is printed (`shown`), bars and lines (`progress`), answers from outside read
//!    with bounded memory (`answer`).
//! 2. `cache`: the places caches live in, and the trust rule.
//! 3. `pacman`: pacman's URL (`target`), its name rule (`names`), `pacman-conf` (`conf`) and its
//!    remembered answers (`conf_cache`).
//! 4. `db`: an entry and its rules with the one match rule (`entry`), `desc`, `tar`, the
//!    reader (`syncdb`), the `index`, and the `canonical` form with steps between versions.
//! 5. `http`: the client, proxies, dates.
//! 6. `ipfs`: CIDs, gateway templates, the RPC client, seeding (`seed`, the engine of
//!    `commands::seed`), LAN peers (`lan`).
//! 7. `config`: the settings (it checks addresses and templates with `ipfs`).
//! 8. `sources`: the gateway, mirrors, the breaker, published views, their `error`, and
//!    databases built from a publisher's update lists (`updates`).
//! 9. `transfer`: the `plan`, the main loop (`download`), `verify`, `output`, `partial`
//!    downloads kept across calls, the download `log`.
//! 10. `publish` and `prefetch`: the engines of those commands.
//! 11. `cli` and `commands`: the command line, and one thin file per command.
//!
//! One download, in order: `pacman::target` parses pacman's URL, `db::syncdb` finds the file's
//! entry, `transfer::plan` lists the sources, `transfer::download` walks them with
//! `sources::gateway` and `sources::mirror` fetching over `http`, `transfer::verify` judging
//! the bytes while `transfer::output` writes them, and `ui::progress` telling the user;
//! `commands::xfer` ties it together for pacman's call.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod http;
pub mod ipfs;
pub mod makepkg;
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

/// The time now, in milliseconds since 1970 (0 for a clock before that).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
