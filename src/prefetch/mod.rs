//! Prefetching the next upgrade into pacman's cache, without touching pacman's own sync
//! databases (a `pacman -Sy` behind the user's back is how partial upgrades happen).
//!
//! 1. A private copy of every repository's database (and its `.sig`) is kept in pacxfer's
//!    cache directory (`<cache>/prefetch/sync/`), refreshed through pacxfer's own download
//!    path from the repository's Server lines in order, beside a link to pacman's own local
//!    database (`<cache>/prefetch/local`), as `checkupdates` does.
//! 2. `pacman -Sp --dbpath <that copy>` (with `-u`, or the packages named) says what pacman
//!    would download: pacman itself resolves versions, IgnorePkg, replacements and missing
//!    dependencies, and checks the databases' signatures under pacman.conf's SigLevel. It
//!    needs no root and changes nothing.
//! 3. Each file not already in a CacheDir with the database's SHA-256 is planned like a single
//!    call (node's seeded copy, gateway templates, the repository's mirrors) and the plans run
//!    in a bounded pool of threads into the first writable CacheDir, through `<file>.part`
//!    renamed only once verified; a package's `.sig` follows it when the database does not
//!    embed the signature.
//! 4. Before the first byte, the CacheDir's filesystem must have room for the whole batch with
//!    pacman's own cushion ([`check_space`]). When it fills up anyway (another writer, a `.part`
//!    whose earlier bytes turn out wrong), no further file is started and each file that
//!    failed gives back what this run wrote of it ([`give_back`]).
//!
//! The engine of `pacxfer prefetch` (`commands/prefetch.rs` is the command): the private
//! database copy and what pacman would download (`private`), the room a batch needs and what
//! is given back when the disk fills (`space`), and the pool that fetches the batch (`batch`).
//! Uses the transfer and everything below it.

pub mod batch;
pub mod private;
pub mod space;

use std::path::PathBuf;

use crate::db::entry::Entry;
use crate::transfer::plan::Plan;

/// One file to fetch.
#[derive(Debug)]
pub struct Job {
    pub filename: String,
    pub entry: Entry,
    /// The package's plan; `None` when only its `.sig` is missing.
    pub plan: Option<Plan>,
    /// The plan for the package's `.sig`, when pacman will want one that the database does
    /// not embed.
    pub sig: Option<Plan>,
    /// Where it goes.
    pub dir: PathBuf,
}
