//! Streaming verification: copying a source into the output while the SHA-256 runs, never
//! letting a source write past the largest size the database allows, and judging the result
//! against what the database lists.

use std::io::{self, Read};

use crate::output::Output;
use crate::progress::Progress;

/// What the bytes must be, from one database entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub sha256: [u8; 32],
    pub size: u64,
}

/// How bytes compare with what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Length and SHA-256 match one expectation.
    Match,
    /// Fewer bytes than every expectation still possible: more may come.
    Short,
    /// The length fits no expectation still possible, or the checksum is wrong.
    Mismatch,
}

/// Judges `len` bytes with checksum `sha256` against `expect` (not empty).
pub fn judge(expect: &[Expected], len: u64, sha256: &[u8; 32]) -> Verdict {
    if expect.iter().any(|e| e.size == len && e.sha256 == *sha256) {
        Verdict::Match
    } else if expect.iter().any(|e| e.size > len) {
        Verdict::Short
    } else {
        Verdict::Mismatch
    }
}

/// The largest size any expectation allows: no source may write past it.
pub fn limit(expect: &[Expected]) -> Option<u64> {
    expect.iter().map(|e| e.size).max()
}

/// Why copying stopped before the end of the source.
#[derive(Debug)]
pub enum PumpError {
    /// Reading the source failed (a reset, a stall, a broken chunked body).
    Read(io::Error),
    /// The source sent more than `limit` bytes in all.
    TooLarge(u64),
    /// Writing the output failed (disk full, I/O error): fatal for the whole download.
    Write(io::Error),
}

/// The copy buffer: large reads keep syscalls and hashing calls few.
const BUF: usize = 256 * 1024;

/// Copies `src` to the end of `out` until EOF, hashing as it goes. Stops the moment the file
/// would grow past `limit`.
pub fn pump(
    src: &mut dyn Read,
    out: &mut Output,
    limit: Option<u64>,
    progress: &Progress,
) -> Result<u64, PumpError> {
    let mut buf = vec![0u8; BUF];
    let mut copied = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        if let Some(limit) = limit {
            if out.len() + n as u64 > limit {
                return Err(PumpError::TooLarge(limit));
            }
        }
        out.append(&buf[..n]).map_err(PumpError::Write)?;
        copied += n as u64;
        progress.advance(out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(size: u64, byte: u8) -> Expected {
        Expected {
            sha256: [byte; 32],
            size,
        }
    }

    #[test]
    fn judging() {
        let one = [e(10, 1)];
        assert_eq!(judge(&one, 10, &[1; 32]), Verdict::Match);
        assert_eq!(judge(&one, 10, &[2; 32]), Verdict::Mismatch);
        assert_eq!(judge(&one, 4, &[2; 32]), Verdict::Short);
        assert_eq!(judge(&one, 11, &[1; 32]), Verdict::Mismatch);
        let two = [e(10, 1), e(20, 2)];
        assert_eq!(judge(&two, 20, &[2; 32]), Verdict::Match);
        assert_eq!(judge(&two, 10, &[2; 32]), Verdict::Short);
        assert_eq!(limit(&two), Some(20));
    }
}
