//! Streaming verification: copying a source into the output while the SHA-256 runs, never
//! letting a source write past the largest size the database allows, and judging the result
//! against what the database lists.
//!
//! The copy reads into the output's own buffers (`output::Appender`): each is written as it
//! arrives and hashed on another thread, so receiving and writing the next buffer overlap the
//! hash of this one.

use std::io::{self, Read};

use crate::transfer::output::Output;
use crate::ui::progress::Progress;

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

/// Copies `src` to the end of `out` until EOF, hashing as it goes. Stops the moment the file
/// would grow past `limit`. Read errors come through as they are (a stall keeps its kind).
pub fn pump(
    src: &mut dyn Read,
    out: &mut Output,
    limit: Option<u64>,
    progress: &Progress,
) -> Result<u64, PumpError> {
    out.appending(|sink| {
        let mut copied = 0u64;
        loop {
            let n = match src.read(sink.space()) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PumpError::Read(e)),
            };
            if let Some(limit) = limit {
                if sink.len() + n as u64 > limit {
                    return Err(PumpError::TooLarge(limit));
                }
            }
            sink.commit(n).map_err(PumpError::Write)?;
            copied += n as u64;
            progress.advance(sink.len());
        }
    })
    .map_err(PumpError::Write)?
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

    /// Gives `data` in pieces of at most `step` bytes, an `Interrupted` now and then, and
    /// `end` (or EOF) once it is all given.
    struct Source {
        data: Vec<u8>,
        at: usize,
        step: usize,
        reads: usize,
        end: Option<io::ErrorKind>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads % 5 == 4 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.at == self.data.len() {
                return match self.end {
                    Some(kind) => Err(io::Error::new(kind, "source failed")),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn source(len: usize, step: usize, end: Option<io::ErrorKind>) -> Source {
        Source {
            data: (0..len).map(|i| (i % 251) as u8).collect(),
            at: 0,
            step,
            reads: 0,
            end,
        }
    }

    fn output(dir: &tempfile::TempDir) -> Output {
        Output::open(&dir.path().join("f.part"), || {}).expect("open")
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(bytes).into()
    }

    #[test]
    fn pumping() {
        let progress = Progress::plain(crate::ui::progress::Verbosity::Quiet);
        let dir = tempfile::tempdir().expect("tmp");
        let mut out = output(&dir);

        // A whole body, in pieces smaller and larger than the buffers.
        let mut src = source(5 << 20, 700_000, None);
        let got = pump(&mut src, &mut out, Some(5 << 20), &progress).expect("pump");
        assert_eq!((got, out.len()), (5 << 20, 5 << 20));
        assert_eq!(out.sha256(), sha(&src.data));

        // One byte over the limit: stopped before it lands.
        out.truncate().expect("truncate");
        let mut src = source(3_000_001, 65_536, None);
        match pump(&mut src, &mut out, Some(3_000_000), &progress) {
            Err(PumpError::TooLarge(3_000_000)) => {}
            other => panic!("{other:?}"),
        }
        assert!(out.len() <= 3_000_000);
        let held = std::fs::read(out.path()).expect("read");
        assert_eq!(out.len(), held.len() as u64);
        assert_eq!(out.sha256(), sha(&held));

        // A stall keeps its kind, and what came before it is kept and hashed.
        out.truncate().expect("truncate");
        let mut src = source(1_500_000, 100_000, Some(io::ErrorKind::TimedOut));
        match pump(&mut src, &mut out, None, &progress) {
            Err(PumpError::Read(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        assert_eq!(out.len(), 1_500_000);
        assert_eq!(out.sha256(), sha(&src.data));
    }
}
