//! What pacxfer does, one thin file per command, each from its parsed arguments to its exit
//! status: `xfer` (pacman's `%u %o`), `fetch` (a shell download), `lookup` (what would
//! happen), `seed`, `publish`, `prefetch` (each the command of its engine: `ipfs::seed`,
//! `publish`, `prefetch`), `announce` (`ipfs::lan`), `doctor` and `stats`. What they share: the `session` every command
//! starts from, and `resolve` (from a name or URL to entries and a plan). The top layer: it
//! may use every other.

pub mod announce;
pub mod dlagent;
pub mod doctor;
pub mod fetch;
pub mod lookup;
mod lookup_sources;
pub mod prefetch;
pub mod publish;
pub mod resolve;
pub mod seed;
mod seed_sources;
pub mod session;
pub mod stats;
pub mod xfer;

pub use fetch::fetch;
pub use lookup::lookup;
pub use session::Session;
pub use xfer::xfer;
