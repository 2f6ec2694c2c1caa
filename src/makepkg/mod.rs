//! What makepkg's files say of a PKGBUILD's sources: the checksum algorithms and running
//! hashers (`sums`), `.SRCINFO` (`srcinfo`), and which PKGBUILD a download agent call is for
//! (`caller`), and the agents makepkg.conf sets (`conf`). Uses `ui`, `cache` (XDG places) and
//! `pacman` (its bounded command runner).

pub mod caller;
pub mod conf;
pub mod srcinfo;
pub mod sums;

/// The first `max` bytes of a file (a makepkg.conf, a process's command line or
/// environment), or `None` when it cannot be read.
fn read_at_most(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}
