//! The index of one sync database: a compact file holding, for every entry, what a download
//! needs (file name, name, version, arch, SHA-256, size, CID, and where its signature is), so
//! that a lookup reads a few hundred KiB instead of decompressing and parsing the whole
//! database, which for Arch's `extra` costs 100+ ms on every one of pacman's calls.
//!
//! An index is a cache, never a source of truth: it records the identity of the database it
//! was built from (device, inode, size, mtime) and is rebuilt when any of them changes. A
//! header with a format version and CRC-32 checksums means a corrupt, truncated or foreign
//! file is rebuilt, never trusted. It is written to a temporary name and renamed, so readers
//! and concurrent builders only ever see whole files.
//!
//! Layout (all integers little-endian):
//! ```text
//! header  magic "PXFRIDX\0", version u32, db dev u64, ino u64, size u64, mtime s i64,
//!         mtime ns u32, entry count u32, records length u64, records crc u32,
//!         signatures length u64, problems length u64, problems crc u32,
//!         header crc u32 (of everything before it)
//! records per entry: filename, name, version, arch, cid (u16 length + bytes each),
//!         flags u8, [sha256 32 bytes], [csize u64], [sig offset u64, sig length u32, sig crc u32]
//! signatures: the `%PGPSIG%` texts, read only for the entry that needs one
//! problems: per entry that could not be read, its member directory and why (u16 length +
//!         bytes each), so every lookup that may concern it warns, not just the first
//! ```

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::cache::Places;
use crate::db::entry::{Entry, Query};

const MAGIC: &[u8; 8] = b"PXFRIDX\0";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 8 + 4 + 8 + 8 + 4 + 4;

const HAS_SHA: u8 = 1;
const HAS_CSIZE: u8 = 2;
const HAS_SIG: u8 = 4;

/// What identifies one version of a database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: u32,
}

impl Identity {
    pub fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_s: meta.mtime(),
            mtime_ns: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }
}

/// Why an index file was not used.
#[derive(Debug)]
pub enum Stale {
    /// No file.
    Missing,
    /// Built from another version of the database.
    Outdated,
    /// Not an index of this version, or damaged.
    Corrupt(&'static str),
    /// Could not be read.
    Io(io::Error),
}

/// A loaded, checked index.
pub struct Index {
    file: File,
    records: Vec<u8>,
    count: u32,
    sigs_at: u64,
    sigs_len: u64,
    problems_len: u64,
    problems_crc: u32,
}

/// An entry the database holds but that could not be read: its member directory and why.
pub type Problem = (String, String);

/// The largest index read: Arch's largest database gives under 10 MiB.
pub const INDEX_MAX: u64 = 512 << 20;

/// Opens the index at `path` if it belongs to the database version `id` (for tests and
/// tools; pacxfer itself opens indexes only through the trust rule, see [`lookup`]).
pub fn open(path: &Path, id: &Identity) -> Result<Index, Stale> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Stale::Missing),
        Err(e) => return Err(Stale::Io(e)),
    };
    from_file(file, id)
}

/// Checks an opened index file against the database version `id`.
pub fn from_file(mut file: File, id: &Identity) -> Result<Index, Stale> {
    let mut header = [0u8; HEADER_LEN];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(Stale::Corrupt("shorter than its header"))
        }
        Err(e) => return Err(Stale::Io(e)),
    }
    let h = Header::parse(&header)?;
    if h.id != *id {
        return Err(Stale::Outdated);
    }
    let len = file.metadata().map_err(Stale::Io)?.len();
    let expected = (HEADER_LEN as u64)
        .checked_add(h.records_len)
        .and_then(|n| n.checked_add(h.sigs_len))
        .and_then(|n| n.checked_add(h.problems_len))
        .ok_or(Stale::Corrupt("section lengths overflow"))?;
    if len != expected {
        return Err(Stale::Corrupt("file length does not match its header"));
    }
    let records_len =
        usize::try_from(h.records_len).map_err(|_| Stale::Corrupt("records too large"))?;
    let mut records = vec![0u8; records_len];
    file.read_exact(&mut records).map_err(Stale::Io)?;
    if crc32fast::hash(&records) != h.records_crc {
        return Err(Stale::Corrupt("records checksum"));
    }
    Ok(Index {
        file,
        records,
        count: h.count,
        sigs_at: HEADER_LEN as u64 + h.records_len,
        sigs_len: h.sigs_len,
        problems_len: h.problems_len,
        problems_crc: h.problems_crc,
    })
}

struct Header {
    id: Identity,
    count: u32,
    records_len: u64,
    records_crc: u32,
    sigs_len: u64,
    problems_len: u64,
    problems_crc: u32,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.id.dev.to_le_bytes());
        b.extend_from_slice(&self.id.ino.to_le_bytes());
        b.extend_from_slice(&self.id.size.to_le_bytes());
        b.extend_from_slice(&self.id.mtime_s.to_le_bytes());
        b.extend_from_slice(&self.id.mtime_ns.to_le_bytes());
        b.extend_from_slice(&self.count.to_le_bytes());
        b.extend_from_slice(&self.records_len.to_le_bytes());
        b.extend_from_slice(&self.records_crc.to_le_bytes());
        b.extend_from_slice(&self.sigs_len.to_le_bytes());
        b.extend_from_slice(&self.problems_len.to_le_bytes());
        b.extend_from_slice(&self.problems_crc.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, Stale> {
        if &b[..8] != MAGIC {
            return Err(Stale::Corrupt("not a pacxfer index"));
        }
        let body = &b[..HEADER_LEN - 4];
        let mut r = Cursor::new(&b[8..]);
        let version = r.u32().ok_or(Stale::Corrupt("header"))?;
        if version != VERSION {
            return Err(Stale::Corrupt("another index format version"));
        }
        let h = (|| {
            Some(Header {
                id: Identity {
                    dev: r.u64()?,
                    ino: r.u64()?,
                    size: r.u64()?,
                    mtime_s: r.i64()?,
                    mtime_ns: r.u32()?,
                },
                count: r.u32()?,
                records_len: r.u64()?,
                records_crc: r.u32()?,
                sigs_len: r.u64()?,
                problems_len: r.u64()?,
                problems_crc: r.u32()?,
            })
        })()
        .ok_or(Stale::Corrupt("header"))?;
        let crc = r.u32().ok_or(Stale::Corrupt("header"))?;
        if crc != crc32fast::hash(body) {
            return Err(Stale::Corrupt("header checksum"));
        }
        Ok(h)
    }
}

/// Reads little-endian values and length-prefixed strings from a byte slice.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_le_bytes)
    }

    /// A length-prefixed string, unchecked: only the records that match are validated.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

/// One record, as stored.
struct Record<'a> {
    filename: &'a [u8],
    name: &'a [u8],
    version: &'a [u8],
    arch: &'a [u8],
    cid: &'a [u8],
    sha256: Option<[u8; 32]>,
    csize: Option<u64>,
    sig: Option<(u64, u32, u32)>,
}

fn next_record<'a>(c: &mut Cursor<'a>) -> Option<Record<'a>> {
    let filename = c.bytes()?;
    let name = c.bytes()?;
    let version = c.bytes()?;
    let arch = c.bytes()?;
    let cid = c.bytes()?;
    let flags = c.u8()?;
    let sha256 = if flags & HAS_SHA != 0 {
        Some(c.take(32)?.try_into().ok()?)
    } else {
        None
    };
    let csize = if flags & HAS_CSIZE != 0 {
        Some(c.u64()?)
    } else {
        None
    };
    let sig = if flags & HAS_SIG != 0 {
        Some((c.u64()?, c.u32()?, c.u32()?))
    } else {
        None
    };
    Some(Record {
        filename,
        name,
        version,
        arch,
        cid,
        sha256,
        csize,
        sig,
    })
}

impl Index {
    /// The entries matching `query`, in database order.
    pub fn search(&self, repo: &str, query: Query<'_>) -> Result<Vec<Entry>, Stale> {
        let mut c = Cursor::new(&self.records);
        let mut found = Vec::new();
        for _ in 0..self.count {
            let r = next_record(&mut c).ok_or(Stale::Corrupt("record"))?;
            if !query.matches_fields(r.filename, r.name) {
                continue;
            }
            let text = |b: &[u8]| {
                std::str::from_utf8(b)
                    .map(str::to_string)
                    .map_err(|_| Stale::Corrupt("record text"))
            };
            let pgpsig = match r.sig {
                Some(sig) => Some(self.signature(sig)?),
                None => None,
            };
            let cid = text(r.cid)?;
            let entry = Entry {
                repo: repo.to_string(),
                filename: text(r.filename)?,
                name: text(r.name)?,
                version: text(r.version)?,
                arch: text(r.arch)?,
                sha256: r.sha256,
                csize: r.csize,
                pgpsig,
                cid: (!cid.is_empty()).then_some(cid),
            };
            // Held to the same rules as the database it was made from: a name that could
            // steer a write or a source is never answered, whoever wrote the index.
            crate::db::entry::check_entry(&entry)
                .map_err(|_| Stale::Corrupt("record fails the database's rules"))?;
            found.push(entry);
        }
        Ok(found)
    }

    /// The entries that could not be read when the index was built.
    pub fn problems(&self) -> Result<Vec<Problem>, Stale> {
        if self.problems_len == 0 {
            return Ok(Vec::new());
        }
        let len =
            usize::try_from(self.problems_len).map_err(|_| Stale::Corrupt("problems too large"))?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, self.sigs_at + self.sigs_len)
            .map_err(Stale::Io)?;
        if crc32fast::hash(&buf) != self.problems_crc {
            return Err(Stale::Corrupt("problems checksum"));
        }
        let mut c = Cursor::new(&buf);
        let mut out = Vec::new();
        while !c.b.is_empty() {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let member = c.bytes().ok_or(Stale::Corrupt("problem"))?;
            let why = c.bytes().ok_or(Stale::Corrupt("problem"))?;
            out.push((text(member), text(why)));
        }
        Ok(out)
    }

    fn signature(&self, (offset, len, crc): (u64, u32, u32)) -> Result<String, Stale> {
        if offset.saturating_add(u64::from(len)) > self.sigs_len {
            return Err(Stale::Corrupt("signature outside its section"));
        }
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, self.sigs_at + offset)
            .map_err(Stale::Io)?;
        if crc32fast::hash(&buf) != crc {
            return Err(Stale::Corrupt("signature checksum"));
        }
        String::from_utf8(buf).map_err(|_| Stale::Corrupt("signature text"))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    let n = u16::try_from(s.len()).ok()?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// Encodes entries (and the entries that could not be read) into an index for database
/// version `id`. Entries with a field longer than 64 KiB are left out (no real database has
/// one).
pub fn encode(entries: &[Entry], problems: &[Problem], id: &Identity) -> Vec<u8> {
    let mut records = Vec::with_capacity(entries.len() * 160);
    let mut sigs = Vec::new();
    let mut count = 0u32;
    for e in entries {
        let mut rec = Vec::with_capacity(160);
        let ok = (|| {
            put_str(&mut rec, &e.filename)?;
            put_str(&mut rec, &e.name)?;
            put_str(&mut rec, &e.version)?;
            put_str(&mut rec, &e.arch)?;
            put_str(&mut rec, e.cid.as_deref().unwrap_or(""))?;
            Some(())
        })();
        if ok.is_none() {
            continue;
        }
        let mut flags = 0u8;
        if e.sha256.is_some() {
            flags |= HAS_SHA;
        }
        if e.csize.is_some() {
            flags |= HAS_CSIZE;
        }
        let sig_len = e.pgpsig.as_ref().and_then(|s| u32::try_from(s.len()).ok());
        if sig_len.is_some() {
            flags |= HAS_SIG;
        }
        rec.push(flags);
        if let Some(sha) = &e.sha256 {
            rec.extend_from_slice(sha);
        }
        if let Some(csize) = e.csize {
            rec.extend_from_slice(&csize.to_le_bytes());
        }
        if let (Some(sig), Some(len)) = (&e.pgpsig, sig_len) {
            rec.extend_from_slice(&(sigs.len() as u64).to_le_bytes());
            rec.extend_from_slice(&len.to_le_bytes());
            rec.extend_from_slice(&crc32fast::hash(sig.as_bytes()).to_le_bytes());
            sigs.extend_from_slice(sig.as_bytes());
        }
        records.extend_from_slice(&rec);
        count += 1;
    }
    let mut problem_bytes = Vec::new();
    // Enough to warn about; a hostile database may hold any number.
    for (member, why) in problems.iter().take(1000) {
        let mut one = Vec::new();
        let short = |s: &str| s.chars().take(1000).collect::<String>();
        if put_str(&mut one, &short(member)).is_some() && put_str(&mut one, &short(why)).is_some() {
            problem_bytes.extend_from_slice(&one);
        }
    }
    let header = Header {
        id: *id,
        count,
        records_len: records.len() as u64,
        records_crc: crc32fast::hash(&records),
        sigs_len: sigs.len() as u64,
        problems_len: problem_bytes.len() as u64,
        problems_crc: crc32fast::hash(&problem_bytes),
    };
    let mut out = header.encode();
    out.extend_from_slice(&records);
    out.extend_from_slice(&sigs);
    out.extend_from_slice(&problem_bytes);
    out
}

/// What a search through the index found, and how.
pub enum Lookup {
    /// A valid index answered: the matching entries, and every entry that could not be read.
    Indexed(Vec<Entry>, Vec<Problem>),
    /// No usable index: the caller reads the database, then may call [`store`].
    Miss { id: Identity },
}

/// Answers `query` from the index of `db` if one in `places` is current.
pub fn lookup(places: &Places, db: &Path, repo: &str, query: Query<'_>) -> io::Result<Lookup> {
    let id = Identity::of(&std::fs::metadata(db)?);
    let name = Places::name_for_file(repo, db, "idx");
    for dir in places.trusted() {
        let Ok(Some(file)) = dir.open_file(&name, INDEX_MAX) else {
            continue;
        };
        if let Ok(index) = from_file(file, &id) {
            if let (Ok(found), Ok(problems)) = (index.search(repo, query), index.problems()) {
                return Ok(Lookup::Indexed(found, problems));
            }
        }
    }
    Ok(Lookup::Miss { id })
}

/// Saves an index of `entries` for `db` in the first place that can be written, and says
/// where. Failing everywhere is not an error: lookups then read the database each time.
pub fn store(
    places: &Places,
    db: &Path,
    repo: &str,
    id: &Identity,
    entries: &[Entry],
    problems: &[Problem],
) -> Option<PathBuf> {
    places.write_first(
        &Places::name_for_file(repo, db, "idx"),
        &encode(entries, problems, id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> Entry {
        Entry {
            repo: "core".into(),
            filename: format!("pkg{i}-1.0-1-x86_64.pkg.tar.zst"),
            name: format!("pkg{i}"),
            version: "1.0-1".into(),
            arch: "x86_64".into(),
            sha256: Some([i as u8; 32]),
            csize: Some(1000 + u64::from(i)),
            pgpsig: i.is_multiple_of(2).then(|| format!("c2lnbmF0dXJl{i}")),
            cid: (i == 3).then(|| "bafybeicid".to_string()),
        }
    }

    fn id() -> Identity {
        Identity {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_s: 4,
            mtime_ns: 5,
        }
    }

    fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
        let p = dir.join("x.idx");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().expect("tmp");
        let entries: Vec<Entry> = (0..50).map(entry).collect();
        let p = write(d.path(), &encode(&entries, &[], &id()));
        let index = open(&p, &id()).expect("valid index");
        for e in &entries {
            let got = index
                .search("core", Query::Filename(&e.filename))
                .expect("search");
            assert_eq!(got, vec![e.clone()]);
        }
        let by_name = index.search("core", Query::Name("pkg7")).expect("search");
        assert_eq!(by_name, vec![entry(7)]);
        let none = index.search("core", Query::Either("nope")).expect("search");
        assert!(none.is_empty());
    }

    #[test]
    fn problems_are_kept() {
        let d = tempfile::tempdir().expect("tmp");
        let problems = vec![("bad-1.0-1/desc".to_string(), "no %NAME%".to_string())];
        let p = write(d.path(), &encode(&[entry(1)], &problems, &id()));
        let index = open(&p, &id()).expect("valid index");
        assert_eq!(index.problems().expect("problems"), problems);
        assert_eq!(
            index.search("core", Query::Name("pkg1")).expect("search"),
            vec![entry(1)]
        );
    }

    #[test]
    fn another_database_version_is_outdated() {
        let d = tempfile::tempdir().expect("tmp");
        let p = write(d.path(), &encode(&[entry(1)], &[], &id()));
        let newer = Identity {
            mtime_ns: 6,
            ..id()
        };
        assert!(matches!(open(&p, &newer), Err(Stale::Outdated)));
    }

    #[test]
    fn damage_anywhere_is_caught() {
        let d = tempfile::tempdir().expect("tmp");
        let good = encode(&(0..10).map(entry).collect::<Vec<_>>(), &[], &id());
        // Flip each byte of the header and the records in turn: never a silent wrong answer.
        let sigs_at = good.len()
            - (0..10)
                .filter(|i| i % 2 == 0)
                .map(|i| format!("c2lnbmF0dXJl{i}").len())
                .sum::<usize>();
        for pos in 0..good.len() {
            let mut bad = good.clone();
            bad[pos] ^= 0x40;
            let p = write(d.path(), &bad);
            match open(&p, &id()) {
                Err(_) => {}
                Ok(index) => {
                    // Only a damaged signature can get past the header and records checks,
                    // and it is caught when read.
                    assert!(pos >= sigs_at, "damage at {pos} not caught");
                    let all: Result<Vec<_>, _> = (0..10)
                        .map(|i| index.search("core", Query::Name(&format!("pkg{i}"))))
                        .collect();
                    assert!(all.is_err(), "damaged signature at {pos} not caught");
                }
            }
        }
        // Truncated and foreign files.
        let p = write(d.path(), &good[..good.len() - 1]);
        assert!(matches!(open(&p, &id()), Err(Stale::Corrupt(_))));
        let p = write(
            d.path(),
            b"PK\x03\x04 not an index at all, but long enough to have a header.....",
        );
        assert!(matches!(open(&p, &id()), Err(Stale::Corrupt(_))));
        let p = write(d.path(), b"");
        assert!(matches!(open(&p, &id()), Err(Stale::Corrupt(_))));
    }

    #[test]
    fn store_then_lookup_and_unwritable_places() {
        let d = tempfile::tempdir().expect("tmp");
        let db = d.path().join("core.db");
        std::fs::write(&db, b"db bytes").expect("write db");
        let places = Places::new(Some(&d.path().join("cache")));
        let Lookup::Miss { id } = lookup(&places, &db, "core", Query::Name("pkg1")).expect("stat")
        else {
            panic!("no index yet")
        };
        assert!(store(&places, &db, "core", &id, &[entry(1)], &[]).is_some());
        match lookup(&places, &db, "core", Query::Name("pkg1")).expect("stat") {
            Lookup::Indexed(found, problems) => {
                assert_eq!(found, vec![entry(1)]);
                assert!(problems.is_empty());
            }
            Lookup::Miss { .. } => panic!("index not used"),
        }
        // A place that cannot be created: storing fails quietly.
        let blocked = d.path().join("file");
        std::fs::write(&blocked, b"").expect("write");
        let nowhere = Places::new(Some(&blocked.join("sub")));
        assert!(store(&nowhere, &db, "core", &id, &[entry(1)], &[]).is_none());
    }
}
