//! Partial downloads kept across calls. pacman 7 gives each run a temporary download
//! directory and removes it, `.part` files and all, when the run fails; the next run would
//! start a cut-off package from byte 0. So when a download of a listed file fails with bytes
//! in hand, they are copied into the cache place (`partial-<sha256>`, under the trust rule),
//! and a later call that starts with an empty OUTPUT for the same file takes them back and
//! resumes. The copy is only ever a prefix of a file a database lists: whatever it holds is
//! verified with the rest, and a wrong prefix is thrown away like any other.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::cache::Places;
use crate::transfer::output::Output;
use crate::transfer::verify::Expected;

/// The name a partial download of the file with this SHA-256 is kept under.
fn name(sha256: &[u8; 32]) -> String {
    format!("partial-{}.part", hex::encode(sha256))
}

/// The one file all expectations agree on, if they do.
fn single(expect: &[Expected]) -> Option<Expected> {
    let first = *expect.first()?;
    expect.iter().all(|x| *x == first).then_some(first)
}

/// Keeps the first `len` bytes of `path` (a failed download of the file `expect` lists).
pub fn save(places: &Places, expect: &[Expected], path: &Path, len: u64) {
    let Some(x) = single(expect) else { return };
    if len == 0 || len >= x.size {
        return;
    }
    let Some(place) = places.writable() else {
        return;
    };
    // Prefixes of files nobody came back for within a week (an upgrade replaced them).
    place.remove_older("partial-", std::time::Duration::from_secs(7 * 86_400));
    let Ok(source) = File::open(path) else { return };
    let _ = place.write_with(&name(&x.sha256), |file| {
        let copied = io::copy(&mut source.take(len), file)?;
        if copied == len {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "shorter than it was",
            ))
        }
    });
}

/// Puts a kept prefix into an empty `out`; returns how many bytes it put.
pub fn restore(places: &Places, expect: &[Expected], out: &mut Output) -> io::Result<u64> {
    let Some(x) = single(expect) else {
        return Ok(0);
    };
    if !out.is_empty() {
        return Ok(0);
    }
    for place in places.trusted() {
        let Ok(Some(mut file)) = place.open_file(&name(&x.sha256), x.size) else {
            continue;
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            out.append(&buf[..n])?;
        }
        let _ = place.remove(&name(&x.sha256));
        return Ok(out.len());
    }
    Ok(0)
}

/// Forgets a kept prefix (the file arrived whole).
pub fn forget(places: &Places, expect: &[Expected]) {
    if let Some(x) = single(expect) {
        places.remove_everywhere(&name(&x.sha256));
    }
}
