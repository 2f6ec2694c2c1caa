//! The canonical form of a sync database, and the steps from one of its versions to the next.
//!
//! Canonical: an uncompressed ustar archive of the database's regular files sorted by their
//! path bytes, each directory's header just before its first member, every header with mode
//! 0644 (files) or 0755 (directories), owner 0 and mtime 0, and a pax `path` record for a path
//! longer than the header's 100 bytes. Its SHA-256 depends only on the files' paths and
//! contents, never on the compression, member order, owners or times of the database it was
//! made from: a publisher and a client that hold the same entries agree on it. pacman reads it
//! as it reads the compressed database (libarchive takes any filter).
//!
//! A step: the files removed and the files put (new or changed) from one canonical version to
//! another, with both versions' SHA-256 and size, zstd-compressed. Steps compose (the later
//! change of a path wins), and [`apply`] merges a canonical base with the composed changes in
//! one streaming pass whose result is hashed as it is written: memory holds the changes,
//! never the database.
//!
//! Not for: verifying what the result means. The caller compares the result's [`Version`]
//! with the one the publisher recorded; bytes that do not match are never handed on.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::tar;

/// A database's files: path -> content.
pub type Files = BTreeMap<Vec<u8>, Vec<u8>>;

/// Changes from one version to another: path -> new content, or `None` for removed.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The longest member path taken (pacman's entries are `name-version/desc`).
pub const PATH_MAX: usize = 4096;

/// The most a decompressed step may hold.
pub const STEP_MAX: u64 = 256 << 20;

/// The format number of an update list's head (`publish::updates`, `sources::updates`).
pub const HEAD_FORMAT: u64 = 1;

/// Where step `n` lives in an update list: `steps/<n/4096>/<n/64 % 64>/<n>`, so that the
/// directories below `steps` hold at most 64 links (`steps` itself one per 4,096 versions)
/// and a client that follows the path to the newest step fetches a few KiB of directories
/// however long the history is.
pub fn step_path(n: u64) -> String {
    format!("steps/{}/{}/{n}", n >> 12, (n >> 6) & 63)
}

const MAGIC: &[u8] = b"pacxfer-db-step 1\n";
const BLOCK: usize = 512;

/// One version of a database in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub sha256: [u8; 32],
    pub size: u64,
}

impl Version {
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.hex(), self.size)
    }
}

/// The changes from one version to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub from: Version,
    pub to: Version,
    pub changes: Changes,
}

/// Why a database, a step or a base could not be read.
#[derive(Debug)]
pub enum CanonError {
    Io(io::Error),
    /// The input is not what it claims to be.
    Bad(String),
}

impl fmt::Display for CanonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanonError::Io(e) => write!(f, "{e}"),
            CanonError::Bad(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for CanonError {}

impl From<io::Error> for CanonError {
    fn from(e: io::Error) -> Self {
        CanonError::Io(e)
    }
}

impl From<tar::TarError> for CanonError {
    fn from(e: tar::TarError) -> Self {
        match e {
            tar::TarError::Io(e) => CanonError::Io(e),
            other => CanonError::Bad(other.to_string()),
        }
    }
}

/// Reads every regular file of the database at `path` (any compression pacman reads), at
/// most `cap` bytes of content in all. A leading `./` is dropped from paths; a later member
/// of the same path replaces an earlier one, as extracting would.
pub fn read_files(path: &Path, cap: u64) -> Result<Files, CanonError> {
    let file = std::fs::File::open(path)?;
    let reader = super::syncdb::decompress(BufReader::with_capacity(128 * 1024, file), path)
        .map_err(|e| CanonError::Bad(e.to_string()))?;
    let mut files = Files::new();
    let mut total = 0u64;
    tar::for_each_file(reader, |name, size, data| {
        let name = name.strip_prefix(b"./").unwrap_or(name);
        if name.is_empty() || name.len() > PATH_MAX {
            return Err(io::Error::other(format!(
                "a member path of {} bytes",
                name.len()
            )));
        }
        total = total.saturating_add(size);
        if total > cap {
            return Err(io::Error::other(format!(
                "more than {cap} bytes of files once decompressed"
            )));
        }
        let mut content = Vec::with_capacity(size.min(1 << 20) as usize);
        data.take(size).read_to_end(&mut content)?;
        files.insert(name.to_vec(), content);
        Ok(())
    })?;
    Ok(files)
}

/// Writes a canonical archive, hashing it as it goes. Files must come in path order.
pub struct Writer<W: Write> {
    out: W,
    hasher: Sha256,
    size: u64,
    dirs: HashSet<Vec<u8>>,
    last: Option<Vec<u8>>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            hasher: Sha256::new(),
            size: 0,
            dirs: HashSet::new(),
            last: None,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rest = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.put(&[0u8; BLOCK][..rest as usize])
    }

    fn header(&mut self, path: &[u8], size: u64, dir: bool) -> io::Result<()> {
        if path.len() > 100 {
            let mut record = Vec::new();
            let body = [b"path=".as_slice(), path, b"\n"].concat();
            // The record's length counts its own digits.
            let mut len = body.len() + 2;
            while format!("{len} ").len() + body.len() != len {
                len = format!("{len} ").len() + body.len();
            }
            record.extend_from_slice(format!("{len} ").as_bytes());
            record.extend_from_slice(&body);
            let block = ustar(b"././@PaxHeader", record.len() as u64, b'x', 0o644);
            self.put(&block)?;
            self.put(&record)?;
            self.pad(record.len() as u64)?;
            let short = &path[path.len() - 100..];
            let block = ustar(short, size, if dir { b'5' } else { b'0' }, mode(dir));
            return self.put(&block);
        }
        let block = ustar(path, size, if dir { b'5' } else { b'0' }, mode(dir));
        self.put(&block)
    }

    /// Opens every directory above `path` not yet written.
    fn parents(&mut self, path: &[u8]) -> io::Result<()> {
        if path.is_empty() || path.len() > PATH_MAX || path.ends_with(b"/") {
            return Err(io::Error::other(format!(
                "{:?} cannot be a member path",
                String::from_utf8_lossy(path)
            )));
        }
        if let Some(last) = &self.last {
            if path <= last.as_slice() {
                return Err(io::Error::other(format!(
                    "{:?} is out of order",
                    String::from_utf8_lossy(path)
                )));
            }
        }
        self.last = Some(path.to_vec());
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' && i > 0 && !self.dirs.contains(&path[..i]) {
                self.dirs.insert(path[..i].to_vec());
                let dir = [&path[..=i], b""].concat();
                self.header(&dir, 0, true)?;
            }
        }
        Ok(())
    }

    /// A file with its whole content.
    pub fn file(&mut self, path: &[u8], data: &[u8]) -> io::Result<()> {
        self.parents(path)?;
        self.header(path, data.len() as u64, false)?;
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// A file of `size` bytes read from `data`.
    pub fn file_from(&mut self, path: &[u8], size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.parents(path)?;
        self.header(path, size, false)?;
        let mut left = size;
        let mut buf = [0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = data.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a member ends early",
                ));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        self.pad(size)
    }

    /// Ends the archive (two zero blocks): the output and the version written.
    pub fn finish(mut self) -> io::Result<(W, Version)> {
        self.put(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        let version = Version {
            sha256: self.hasher.finalize().into(),
            size: self.size,
        };
        Ok((self.out, version))
    }
}

fn mode(dir: bool) -> u32 {
    if dir {
        0o755
    } else {
        0o644
    }
}

/// One ustar header block.
fn ustar(name: &[u8], size: u64, kind: u8, mode: u32) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Writes `files` in canonical form.
pub fn write<W: Write>(files: &Files, out: W) -> io::Result<(W, Version)> {
    let mut w = Writer::new(out);
    for (path, data) in files {
        w.file(path, data)?;
    }
    w.finish()
}

/// The changes that turn `old` into `new`.
pub fn diff(old: &Files, new: &Files) -> Changes {
    let mut changes = Changes::new();
    for path in old.keys() {
        if !new.contains_key(path) {
            changes.insert(path.clone(), None);
        }
    }
    for (path, data) in new {
        if old.get(path) != Some(data) {
            changes.insert(path.clone(), Some(data.clone()));
        }
    }
    changes
}

/// Merges the canonical archive `base` with `changes` into `out`: the version written. A base
/// that is not in canonical order is refused (its version would not be the recorded one
/// anyway).
pub fn apply<R: Read, W: Write>(
    base: R,
    changes: &Changes,
    out: W,
) -> Result<(W, Version), CanonError> {
    let mut w = Writer::new(out);
    let mut pending = changes.iter().peekable();
    tar::for_each_file(base, |path, size, data| {
        while let Some((p, change)) = pending.next_if(|(p, _)| p.as_slice() < path) {
            if let Some(content) = change {
                w.file(p, content)?;
            }
        }
        match pending.next_if(|(p, _)| p.as_slice() == path) {
            Some((p, Some(content))) => w.file(p, content),
            Some((_, None)) => Ok(()),
            None => w.file_from(path, size, data),
        }
    })?;
    for (p, change) in pending {
        if let Some(content) = change {
            w.file(p, content)?;
        }
    }
    Ok(w.finish()?)
}

fn bad(why: &str) -> CanonError {
    CanonError::Bad(format!("not a pacxfer database step: {why}"))
}

/// Reads a decoded step from the front.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CanonError> {
        if self.0.len() < n {
            return Err(bad("it ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, CanonError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, CanonError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn version(&mut self) -> Result<Version, CanonError> {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(self.take(32)?);
        Ok(Version {
            sha256,
            size: self.u64()?,
        })
    }
}

/// A step, zstd-compressed at `level`.
pub fn encode(step: &Step, level: i32) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    raw.extend_from_slice(MAGIC);
    for v in [&step.from, &step.to] {
        raw.extend_from_slice(&v.sha256);
        raw.extend_from_slice(&v.size.to_be_bytes());
    }
    for (path, change) in &step.changes {
        raw.push(if change.is_some() { b'p' } else { b'd' });
        raw.extend_from_slice(&(path.len() as u32).to_be_bytes());
        raw.extend_from_slice(path);
        if let Some(data) = change {
            raw.extend_from_slice(&(data.len() as u64).to_be_bytes());
            raw.extend_from_slice(data);
        }
    }
    raw.push(b'e');
    zstd::bulk::compress(&raw, level)
}

/// Reads a step from its compressed bytes, at most [`STEP_MAX`] once decompressed; paths in
/// strictly increasing order, each at most [`PATH_MAX`] bytes.
pub fn decode(compressed: &[u8]) -> Result<Step, CanonError> {
    let decoder = zstd::stream::read::Decoder::new(compressed)?;
    let mut raw = Vec::new();
    decoder.take(STEP_MAX + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > STEP_MAX {
        return Err(CanonError::Bad(format!(
            "a step larger than {} MiB",
            STEP_MAX >> 20
        )));
    }
    let rest = raw
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no step header"))?;
    let mut at = Cursor(rest);
    let from = at.version()?;
    let to = at.version()?;
    let mut changes = Changes::new();
    let mut last: Option<Vec<u8>> = None;
    loop {
        let kind = at.take(1)?[0];
        if kind == b'e' {
            break;
        }
        if kind != b'p' && kind != b'd' {
            return Err(bad("an unknown change"));
        }
        let len = at.u32()?;
        if len == 0 || len as usize > PATH_MAX {
            return Err(bad("a path of a wrong length"));
        }
        let path = at.take(len as usize)?.to_vec();
        if last.as_ref().is_some_and(|l| *l >= path) {
            return Err(bad("paths out of order"));
        }
        last = Some(path.clone());
        let change = if kind == b'p' {
            let n = usize::try_from(at.u64()?).map_err(|_| bad("a file too large"))?;
            Some(at.take(n)?.to_vec())
        } else {
            None
        };
        changes.insert(path, change);
    }
    let at = at.0;
    if !at.is_empty() {
        return Err(bad("bytes after its end"));
    }
    Ok(Step { from, to, changes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs
            .iter()
            .map(|(p, c)| (p.as_bytes().to_vec(), c.as_bytes().to_vec()))
            .collect()
    }

    fn tar_of(f: &Files) -> (Vec<u8>, Version) {
        write(f, Vec::new()).expect("write")
    }

    fn read_back(bytes: &[u8]) -> Files {
        let mut got = Files::new();
        tar::for_each_file(bytes, |p, _, d| {
            let mut c = Vec::new();
            d.read_to_end(&mut c)?;
            got.insert(p.to_vec(), c);
            Ok(())
        })
        .expect("read");
        got
    }

    #[test]
    fn canonical_form_reads_back_and_depends_only_on_content() {
        let long = format!("{}-1.0-1/desc", "x".repeat(150));
        let a = files(&[
            ("zlib-1.3-1/desc", "%NAME%\nzlib\n"),
            ("a-1.5-1/desc", "%NAME%\na\n"),
            ("a-1-1/desc", "%NAME%\na\n"),
            ("a-1-1/files", "%FILES%\nusr/\n"),
            (&long, "%NAME%\nlong\n"),
        ]);
        let (bytes, v) = tar_of(&a);
        assert_eq!(read_back(&bytes), a);
        assert_eq!(v.size, bytes.len() as u64);
        let (again, v2) = tar_of(&read_back(&bytes));
        assert_eq!((again, v2), (bytes, v));
        // The tar crate (as libarchive would) sees the directories and the long path.
        let bytes = tar_of(&a).0;
        let mut archive = ::tar::Archive::new(&bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert!(names.iter().any(|n| n.trim_end_matches('/') == "a-1-1"));
        assert!(names.contains(&long));
    }

    #[test]
    fn a_step_turns_one_version_into_the_next() {
        let old = files(&[
            ("a-1-1/desc", "a1"),
            ("b-1-1/desc", "b1"),
            ("c-1-1/desc", "c1"),
        ]);
        let new = files(&[
            ("a-1-1/desc", "a1"),
            ("b-2-1/desc", "b2"),
            ("d-1-1/desc", "d"),
        ]);
        let (old_tar, from) = tar_of(&old);
        let (new_tar, to) = tar_of(&new);
        let step = Step {
            from,
            to,
            changes: diff(&old, &new),
        };
        let decoded = decode(&encode(&step, 3).expect("encode")).expect("decode");
        assert_eq!(decoded, step);
        let (out, got) = apply(&old_tar[..], &decoded.changes, Vec::new()).expect("apply");
        assert_eq!((out, got), (new_tar, to));
    }

    #[test]
    fn damaged_steps_are_refused() {
        let step = Step {
            from: Version {
                sha256: [1; 32],
                size: 1,
            },
            to: Version {
                sha256: [2; 32],
                size: 2,
            },
            changes: files(&[("a/desc", "x")])
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        let good = encode(&step, 3).expect("encode");
        let raw = zstd::bulk::decompress(&good, 1 << 20).expect("raw");
        for cut in [0, 10, raw.len() - 1] {
            let bad = zstd::bulk::compress(&raw[..cut], 3).expect("c");
            assert!(decode(&bad).is_err(), "cut at {cut}");
        }
        assert!(decode(b"not zstd").is_err());
    }
}
