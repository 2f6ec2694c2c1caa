//! What makepkg's files say of a PKGBUILD's sources: the checksum algorithms and running
//! hashers (`sums`), `.SRCINFO` (`srcinfo`), and which PKGBUILD a download agent call is for
//! (`caller`), and the agents makepkg.conf sets (`conf`). Uses `ui`, `cache` (XDG places) and
//! `pacman` (its bounded command runner).

pub mod caller;
pub mod conf;
pub mod srcinfo;
pub mod sums;
