//! The sync databases: finding `<dbpath>/sync/*.db`, undoing their compression (found by magic
//! bytes, never by name), walking the tar archive and reading each package's `desc`.
//!
//! This module only reads. It knows nothing of URLs, gateways or downloads: it answers "which
//! entries list this file name (or package name)?" and nothing else.

use crate::pacman::names::is_plain_filename;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cache;
use crate::index;
use crate::tar;

/// The largest `desc` member read; real ones are a few KiB.
const DESC_MAX: u64 = 1 << 20;
/// The most a database may hold once decompressed (Arch's largest is about 50 MB), and the
/// most entries: a hostile database costs bounded time and memory.
const DB_MAX_BYTES: u64 = 2 << 30;
const DB_MAX_ENTRIES: usize = 500_000;

/// One package as a sync database lists it. Only the fields pacxfer uses are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The repository: the database's file name without `.db`.
    pub repo: String,
    /// `%FILENAME%`: the package file, e.g. `zstd-1.5.6-1-x86_64.pkg.tar.zst`.
    pub filename: String,
    /// `%NAME%`.
    pub name: String,
    /// `%VERSION%` (`[epoch:]pkgver-pkgrel`).
    pub version: String,
    /// `%ARCH%`, empty when missing.
    pub arch: String,
    /// `%SHA256SUM%`, when the database has one.
    pub sha256: Option<[u8; 32]>,
    /// `%CSIZE%`: the size of the package file in bytes.
    pub csize: Option<u64>,
    /// `%PGPSIG%`: the base64 of the detached signature, when embedded.
    pub pgpsig: Option<String>,
    /// `%CID%`: an IPFS CID for the file, added by IPFS-aware repositories.
    pub cid: Option<String>,
}

impl Entry {
    /// Whether the bytes of this file can be checked: it needs both a checksum and a size.
    pub fn verifiable(&self) -> Option<([u8; 32], u64)> {
        Some((self.sha256?, self.csize?))
    }
}

/// One sync database file.
#[derive(Debug, Clone)]
pub struct SyncDb {
    /// The repository name (`core` for `core.db`).
    pub repo: String,
    /// Where the file is.
    pub path: PathBuf,
}

/// Why a database, or one entry in it, could not be read.
#[derive(Debug)]
pub enum DbError {
    /// The sync directory could not be listed.
    ListDir { dir: PathBuf, err: io::Error },
    /// The sync directory holds no `*.db` file.
    NoDatabases { dir: PathBuf },
    /// The file could not be opened or read.
    Read { path: PathBuf, err: io::Error },
    /// The first bytes match no known compression and no tar archive.
    UnknownFormat { path: PathBuf, magic: String },
    /// A `desc` member is not valid: the entry is skipped.
    BadEntry {
        path: PathBuf,
        member: String,
        err: String,
    },
    /// The file is empty (an interrupted download).
    Empty { path: PathBuf },
    /// The archive is malformed or breaks a limit of the reader (see `tar`).
    Damaged { path: PathBuf, why: String },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::ListDir { dir, err } => {
                write!(f, "cannot list sync databases in {}: {err}", dir.display())
            }
            DbError::NoDatabases { dir } => write!(
                f,
                "no sync databases in {} (run `pacman -Sy` first, or set --dbpath)",
                dir.display()
            ),
            DbError::Read { path, err } => write!(
                f,
                "cannot read sync database {}: {err} (run `pacman -Syy` to download it again)",
                path.display()
            ),
            DbError::UnknownFormat { path, magic } => write!(
                f,
                "sync database {} is not a tar archive in gzip, zstd, xz or bzip2 (starts with {magic}); run `pacman -Syy` to download it again",
                path.display()
            ),
            DbError::BadEntry { path, member, err } => write!(
                f,
                "sync database {}: entry {member} skipped: {err}",
                path.display()
            ),
            DbError::Empty { path } => write!(
                f,
                "sync database {} is empty; run `pacman -Syy` to download it again",
                path.display()
            ),
            DbError::Damaged { path, why } => write!(
                f,
                "sync database {} is damaged or hostile ({why}); run `pacman -Syy` to download it again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DbError {}

/// Why one `desc` text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescError {
    /// A required key is absent.
    Missing(&'static str),
    /// `%SHA256SUM%` is not 64 hex digits.
    BadChecksum(String),
    /// `%CSIZE%` is not a whole number.
    BadSize(String),
    /// `%FILENAME%` is not a plain file name.
    BadFilename(String),
    /// `%NAME%` is not a plain package name.
    BadName(String),
    /// `%CID%` holds characters no CID has.
    BadCid(String),
    /// `%PGPSIG%` is not base64.
    BadSignature,
    /// A value holds control characters.
    ControlCharacters(&'static str),
    /// The member is larger than any real `desc` or not UTF-8.
    Unreadable(String),
}

/// A value as an error quotes it: at most 100 characters, so that a hostile database cannot
/// make one warning line megabytes long.
fn quoted(v: &str) -> String {
    let mut short: String = v.chars().take(100).collect();
    if short.len() < v.len() {
        short.push_str("...");
    }
    format!("{short:?}")
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescError::Missing(key) => write!(f, "no {key}"),
            DescError::BadChecksum(v) => {
                write!(f, "%SHA256SUM% {} is not 64 hex digits", quoted(v))
            }
            DescError::BadSize(v) => write!(f, "%CSIZE% {} is not a size in bytes", quoted(v)),
            DescError::BadFilename(v) => {
                write!(f, "%FILENAME% {} is not a plain file name", quoted(v))
            }
            DescError::BadName(v) => write!(f, "%NAME% {} is not a plain package name", quoted(v)),
            DescError::BadCid(v) => write!(f, "%CID% {} is not a CID", quoted(v)),
            DescError::BadSignature => write!(f, "%PGPSIG% is not base64"),
            DescError::ControlCharacters(key) => write!(f, "{key} holds control characters"),
            DescError::Unreadable(why) => write!(f, "{why}"),
        }
    }
}

/// Reads one `desc` text: `%KEY%` lines, each followed by value lines up to a blank line.
/// Unknown keys are ignored; `%FILENAME%` and `%NAME%` are required.
pub fn parse_desc(text: &str, repo: &str) -> Result<Entry, DescError> {
    let mut filename = None;
    let mut name = None;
    let mut version = String::new();
    let mut arch = String::new();
    let mut sha256 = None;
    let mut csize = None;
    let mut pgpsig = None;
    let mut cid = None;

    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches('\r');
        if !(line.len() > 2 && line.starts_with('%') && line.ends_with('%')) {
            continue;
        }
        // The first value line of the block; multi-value keys are not needed here.
        let mut value = None;
        for v in lines.by_ref() {
            let v = v.trim_end_matches('\r');
            if v.is_empty() {
                break;
            }
            if value.is_none() {
                value = Some(v.trim().to_string());
            }
        }
        let Some(value) = value else { continue };
        match line {
            "%FILENAME%" => filename = Some(value),
            "%NAME%" => name = Some(value),
            "%VERSION%" => version = value,
            "%ARCH%" => arch = value,
            "%SHA256SUM%" => sha256 = Some(parse_sha256(&value)?),
            "%CSIZE%" => {
                csize = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| DescError::BadSize(value.clone()))?,
                )
            }
            "%PGPSIG%" => pgpsig = Some(value),
            "%CID%" => cid = Some(value),
            _ => {}
        }
    }

    let entry = Entry {
        repo: repo.to_string(),
        filename: filename.ok_or(DescError::Missing("%FILENAME%"))?,
        name: name.ok_or(DescError::Missing("%NAME%"))?,
        version,
        arch,
        sha256,
        csize,
        pgpsig,
        cid,
    };
    check_entry(&entry)?;
    Ok(entry)
}

/// The rules every entry is held to, whether it was read from a database or from an index:
/// the file name is one plain path component (it names the file pacxfer writes), the
/// package name is one too, a CID is letters and digits, a signature is base64, and no value
/// holds control characters.
pub fn check_entry(e: &Entry) -> Result<(), DescError> {
    // Linux file names are at most 255 bytes; no real value comes near the other limits.
    // They bound what a hostile database can make pacxfer hold per entry.
    for (key, value, max) in [
        ("%FILENAME%", &e.filename, 255),
        ("%NAME%", &e.name, 255),
        ("%VERSION%", &e.version, 255),
        ("%ARCH%", &e.arch, 64),
    ] {
        if value.len() > max {
            return Err(DescError::Unreadable(format!(
                "{key} is {} bytes long, more than {max}",
                value.len()
            )));
        }
    }
    if e.cid.as_ref().is_some_and(|c| c.len() > 512) {
        return Err(DescError::Unreadable(
            "%CID% is longer than 512 bytes".into(),
        ));
    }
    if e.pgpsig.as_ref().is_some_and(|s| s.len() > 16 * 1024) {
        return Err(DescError::Unreadable(
            "%PGPSIG% is longer than 16 KiB".into(),
        ));
    }
    if !is_plain_filename(&e.filename) {
        return Err(DescError::BadFilename(e.filename.clone()));
    }
    if !is_plain_filename(&e.name) {
        return Err(DescError::BadName(e.name.clone()));
    }
    for (key, value) in [("%VERSION%", &e.version), ("%ARCH%", &e.arch)] {
        if value.chars().any(crate::ui::shown::is_unsafe) {
            return Err(DescError::ControlCharacters(key));
        }
    }
    if let Some(cid) = &e.cid {
        if cid.is_empty() || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DescError::BadCid(cid.clone()));
        }
    }
    if let Some(sig) = &e.pgpsig {
        if !sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(DescError::BadSignature);
        }
    }
    Ok(())
}

/// 64 hex digits into 32 bytes.
pub fn parse_sha256(value: &str) -> Result<[u8; 32], DescError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|_| DescError::BadChecksum(value.to_string()))?;
    Ok(out)
}

/// The sync databases under `<dbpath>/sync`, sorted by repository name.
pub fn list(dbpath: &Path) -> Result<Vec<SyncDb>, DbError> {
    let dir = dbpath.join("sync");
    let read = std::fs::read_dir(&dir).map_err(|err| DbError::ListDir {
        dir: dir.clone(),
        err,
    })?;
    let mut dbs = Vec::new();
    for item in read {
        let item = item.map_err(|err| DbError::ListDir {
            dir: dir.clone(),
            err,
        })?;
        let file_name = item.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(repo) = file_name.strip_suffix(".db") {
            if !repo.is_empty() {
                dbs.push(SyncDb {
                    repo: repo.to_string(),
                    path: item.path(),
                });
            }
        }
    }
    if dbs.is_empty() {
        return Err(DbError::NoDatabases { dir });
    }
    dbs.sort_by(|a, b| a.repo.cmp(&b.repo));
    Ok(dbs)
}

/// What a search looks for.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    /// A package file name, `%FILENAME%`.
    Filename(&'a str),
    /// A package name, `%NAME%`.
    Name(&'a str),
    /// Either a file name or a package name (what a person types).
    Either(&'a str),
}

impl Query<'_> {
    /// The one rule for what a query matches, used by the index and by the search without
    /// one alike: the file name or package name, exactly.
    pub fn matches_fields(&self, filename: &[u8], name: &[u8]) -> bool {
        match self {
            Query::Filename(f) => filename == f.as_bytes(),
            Query::Name(n) => name == n.as_bytes(),
            Query::Either(s) => filename == s.as_bytes() || name == s.as_bytes(),
        }
    }

    /// Whether an entry matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        self.matches_fields(entry.filename.as_bytes(), entry.name.as_bytes())
    }

    /// Whether a `desc` text may hold a match: every match holds the string asked for, so
    /// texts without it are not parsed. Never a reason to miss an entry.
    fn may_hold(&self, text: &str) -> bool {
        match self {
            Query::Filename(s) | Query::Name(s) | Query::Either(s) => text.contains(s),
        }
    }

    /// Whether an entry that could not be read, in member directory `dir`, may be the one
    /// asked for: decides which bad entries are worth a warning. The directory is
    /// `<name>-<pkgver>-<pkgrel>`, but a file name need not repeat it exactly (some
    /// repositories write an epoch `1:` as `1_` in file names), so a file name is only
    /// compared with the package name part.
    pub fn may_concern(&self, dir: &str) -> bool {
        let Some(name) = dir_name(dir) else {
            return true;
        };
        match self {
            Query::Filename(f) => f
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-')),
            Query::Name(n) => name == *n,
            Query::Either(s) => {
                Query::Filename(s).may_concern(dir) || Query::Name(s).may_concern(dir)
            }
        }
    }
}

/// The package name in a member directory `<name>-<pkgver>-<pkgrel>`.
fn dir_name(dir: &str) -> Option<&str> {
    let (rest, _rel) = dir.rsplit_once('-')?;
    let (name, _ver) = rest.rsplit_once('-')?;
    Some(name)
}

/// Every entry of one database that matches `query`. Bad entries are reported through
/// `warn` and skipped; a database that cannot be read at all is an error.
pub fn search(
    db: &SyncDb,
    query: Query<'_>,
    warn: &mut dyn FnMut(DbError),
) -> Result<Vec<Entry>, DbError> {
    scan(db, Some(query), warn).map(|(entries, _)| entries)
}

/// Every entry of one database, and the metadata of the file as it was read.
pub fn read_all(
    db: &SyncDb,
    warn: &mut dyn FnMut(DbError),
) -> Result<(Vec<Entry>, std::fs::Metadata), DbError> {
    scan(db, None, warn)
}

/// Reads the entries `query` may match (all of them for `None`).
fn scan(
    db: &SyncDb,
    query: Option<Query<'_>>,
    warn: &mut dyn FnMut(DbError),
) -> Result<(Vec<Entry>, std::fs::Metadata), DbError> {
    let read_err = |err| DbError::Read {
        path: db.path.clone(),
        err,
    };
    // Never blocks on a FIFO planted at a database's name; only a regular file is read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(&db.path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() == 0 {
        return Err(DbError::Empty {
            path: db.path.clone(),
        });
    }
    let reader = decompress(BufReader::with_capacity(128 * 1024, file), &db.path)?;
    let mut reader = reader.take(DB_MAX_BYTES + 1);
    let mut found = Vec::new();
    let mut members = 0usize;
    let walked = tar::for_each_file(&mut reader, |path, size, data| {
        members += 1;
        if members > DB_MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "more than {DB_MAX_ENTRIES} members"
            )));
        }
        let Ok(member_name) = std::str::from_utf8(path) else {
            return Ok(());
        };
        let Some(dir) = member_name.strip_suffix("/desc") else {
            return Ok(());
        };
        let mut text = String::new();
        let parsed = match data.take(DESC_MAX).read_to_string(&mut text) {
            Ok(_) if size > DESC_MAX => Err(DescError::Unreadable(format!(
                "larger than {DESC_MAX} bytes"
            ))),
            Ok(_) if query.is_some_and(|q| !q.may_hold(&text) && !q.may_concern(dir)) => {
                return Ok(())
            }
            Ok(_) => parse_desc(&text, &db.repo),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(DescError::Unreadable("not UTF-8 text".to_string()))
            }
            Err(e) => return Err(e),
        };
        match parsed {
            Ok(entry) if query.is_none_or(|q| q.matches(&entry)) => found.push(entry),
            Ok(_) => {}
            Err(err) => warn(DbError::BadEntry {
                path: db.path.clone(),
                member: member_name.to_string(),
                err: err.to_string(),
            }),
        }
        Ok(())
    });
    if reader.limit() == 0 {
        return Err(DbError::Damaged {
            path: db.path.clone(),
            why: format!("larger than {} GiB once decompressed", DB_MAX_BYTES >> 30),
        });
    }
    match walked {
        Ok(()) => {}
        Err(tar::TarError::Io(err)) if err.to_string().starts_with("more than ") => {
            return Err(DbError::Damaged {
                path: db.path.clone(),
                why: err.to_string(),
            })
        }
        Err(tar::TarError::Io(err)) => return Err(read_err(err)),
        Err(err @ tar::TarError::Corrupt { .. }) => {
            return Err(DbError::Damaged {
                path: db.path.clone(),
                why: err.to_string(),
            })
        }
    }
    Ok((found, meta))
}

/// The result of searching every database.
#[derive(Debug, Default)]
pub struct Found {
    /// Matching entries, in repository order.
    pub entries: Vec<Entry>,
    /// Databases or entries that could not be read; the others were still searched.
    pub problems: Vec<DbError>,
    /// How each database was searched (for `-v`).
    pub notes: Vec<String>,
}

/// Searches every database under `dbpath`, through their indexes in `places` when current
/// (building them when not). `repo_order` (pacman.conf's order) sorts the entries;
/// repositories it does not name come after, by name. Only a sync directory with no database
/// at all is an error.
pub fn find(
    dbpath: &Path,
    query: Query<'_>,
    repo_order: &[String],
    places: &cache::Places,
) -> Result<Found, DbError> {
    let mut dbs = list(dbpath)?;
    let rank = |repo: &str| {
        repo_order
            .iter()
            .position(|r| r == repo)
            .unwrap_or(usize::MAX)
    };
    dbs.sort_by(|a, b| rank(&a.repo).cmp(&rank(&b.repo)).then(a.repo.cmp(&b.repo)));
    let mut found = Found::default();
    for db in &dbs {
        match find_in(db, query, places, &mut found) {
            Ok(entries) => found.entries.extend(entries),
            Err(e) => found.problems.push(e),
        }
    }
    Ok(found)
}

/// Keeps a problem unless it is a bad entry that cannot be the one `query` asks for.
fn warn_if_relevant(query: Query<'_>, e: DbError, problems: &mut Vec<DbError>) {
    if let DbError::BadEntry { member, .. } = &e {
        if member
            .strip_suffix("/desc")
            .is_some_and(|dir| !query.may_concern(dir))
        {
            return;
        }
    }
    problems.push(e);
}

/// One database: its index when current; else the whole database read once, indexed for
/// the next call, and answered from memory; with no place for indexes, a targeted read.
fn find_in(
    db: &SyncDb,
    query: Query<'_>,
    places: &cache::Places,
    found: &mut Found,
) -> Result<Vec<Entry>, DbError> {
    let problems = &mut found.problems;
    if places.is_empty() {
        found
            .notes
            .push(format!("{}: no index kept; searched", db.path.display()));
        return search(db, query, &mut |e| warn_if_relevant(query, e, problems));
    }
    // Bad entries are reported only where they may be the one asked for.
    let relevant = |member: &str| {
        member
            .strip_suffix("/desc")
            .is_none_or(|dir| query.may_concern(dir))
    };
    match index::lookup(places, &db.path, &db.repo, query) {
        Ok(index::Lookup::Indexed(entries, bad)) => {
            found
                .notes
                .push(format!("{}: answered from its index", db.path.display()));
            problems.extend(bad.into_iter().filter(|(member, _)| relevant(member)).map(
                |(member, err)| DbError::BadEntry {
                    path: db.path.clone(),
                    member,
                    err,
                },
            ));
            Ok(entries)
        }
        // No index can be written (pacman 7's download user, a read-only cache): a targeted
        // search reads less than building an index that could not be kept.
        Ok(index::Lookup::Miss { .. }) | Err(_) if !places.can_write() => {
            let refused = places.refusals();
            found.notes.push(format!(
                "{}: searched; no index can be written in {}{}",
                db.path.display(),
                places
                    .dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                if refused.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", refused.join("; "))
                }
            ));
            search(db, query, &mut |e| warn_if_relevant(query, e, problems))
        }
        Ok(index::Lookup::Miss { .. }) | Err(_) => {
            let mut bad: Vec<index::Problem> = Vec::new();
            let mut warn = |e: DbError| {
                if let DbError::BadEntry { member, err, .. } = &e {
                    bad.push((member.clone(), err.clone()));
                    if !relevant(member) {
                        return;
                    }
                }
                problems.push(e);
            };
            let (all, meta) = read_all(db, &mut warn)?;
            let stored = index::store(
                places,
                &db.path,
                &db.repo,
                &index::Identity::of(&meta),
                &all,
                &bad,
            );
            found.notes.push(match stored {
                Some(path) => format!("{}: indexed into {}", db.path.display(), path.display()),
                None => format!(
                    "{}: read in full; the index could not be written",
                    db.path.display()
                ),
            });
            Ok(all.into_iter().filter(|e| query.matches(e)).collect())
        }
    }
}

/// The compression of a database, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    None,
}

/// Names the compression from the first 262 bytes (or fewer, for a short file).
pub fn sniff(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if head.starts_with(b"BZh") {
        Some(Compression::Bzip2)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Compression::None)
    } else if head.is_empty() || (head.len() >= 262 && head.iter().all(|b| *b == 0)) {
        // An empty archive: end-of-archive blocks only (or nothing at all).
        Some(Compression::None)
    } else {
        None
    }
}

/// Wraps `reader` in the decoder its magic bytes call for.
fn decompress<R: io::BufRead + 'static>(
    mut reader: R,
    path: &Path,
) -> Result<Box<dyn Read>, DbError> {
    let head = reader.fill_buf().map_err(|err| DbError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    let kind = sniff(head).ok_or_else(|| DbError::UnknownFormat {
        path: path.to_path_buf(),
        magic: head.iter().take(6).map(|b| format!("{b:02x}")).collect(),
    })?;
    let zstd_err = |err| DbError::Read {
        path: path.to_path_buf(),
        err,
    };
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(zstd_err)?)
        }
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Compression::None => Box::new(reader),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESC: &str = "%FILENAME%\nzstd-1.5.6-1-x86_64.pkg.tar.zst\n\n%NAME%\nzstd\n\n\
%BASE%\nzstd\n\n%VERSION%\n1.5.6-1\n\n%DESC%\nZstandard\n\n%CSIZE%\n504123\n\n\
%ISIZE%\n1802000\n\n%SHA256SUM%\n\
a8a7b8f14a2b8cca7fb2b4e32c0c5d57e2e8e0f6c1b8c5d8b2e9c7d6e5f4a3b2\n\n\
%PGPSIG%\niQIzBAABCAAdFiEE\n\n%ARCH%\nx86_64\n\n%FUTUREKEY%\nsomething\nelse\n\n\
%DEPENDS%\nglibc\nxz\n\n";

    #[test]
    fn desc_keeps_the_fields_pacxfer_needs() {
        let e = parse_desc(DESC, "core").expect("valid desc");
        assert_eq!(e.repo, "core");
        assert_eq!(e.filename, "zstd-1.5.6-1-x86_64.pkg.tar.zst");
        assert_eq!(e.name, "zstd");
        assert_eq!(e.version, "1.5.6-1");
        assert_eq!(e.arch, "x86_64");
        assert_eq!(e.csize, Some(504123));
        assert_eq!(
            e.sha256.map(hex::encode).as_deref(),
            Some("a8a7b8f14a2b8cca7fb2b4e32c0c5d57e2e8e0f6c1b8c5d8b2e9c7d6e5f4a3b2")
        );
        assert_eq!(e.pgpsig.as_deref(), Some("iQIzBAABCAAdFiEE"));
        assert_eq!(e.cid, None);
    }

    #[test]
    fn desc_optional_keys_may_be_missing() {
        let e = parse_desc("%FILENAME%\na-1-1-any.pkg.tar.zst\n\n%NAME%\na\n", "x").expect("ok");
        assert_eq!(e.sha256, None);
        assert_eq!(e.csize, None);
        assert_eq!(e.verifiable(), None);
    }

    #[test]
    fn desc_reads_cid_and_crlf() {
        let e = parse_desc(
            "%FILENAME%\r\nb-1-1-any.pkg.tar.zst\r\n\r\n%NAME%\r\nb\r\n\r\n%CID%\r\nbafybeigdyrzt\r\n",
            "x",
        )
        .expect("ok");
        assert_eq!(e.filename, "b-1-1-any.pkg.tar.zst");
        assert_eq!(e.cid.as_deref(), Some("bafybeigdyrzt"));
    }

    #[test]
    fn desc_refuses_bad_values() {
        let bad_sum = "%FILENAME%\na\n\n%NAME%\na\n\n%SHA256SUM%\nxyz\n";
        assert!(matches!(
            parse_desc(bad_sum, "r"),
            Err(DescError::BadChecksum(_))
        ));
        let bad_size = "%FILENAME%\na\n\n%NAME%\na\n\n%CSIZE%\n-5\n";
        assert!(matches!(
            parse_desc(bad_size, "r"),
            Err(DescError::BadSize(_))
        ));
        let bad_name = "%FILENAME%\n../../etc/passwd\n\n%NAME%\na\n";
        assert!(matches!(
            parse_desc(bad_name, "r"),
            Err(DescError::BadFilename(_))
        ));
        assert_eq!(
            parse_desc("%NAME%\na\n", "r"),
            Err(DescError::Missing("%FILENAME%"))
        );
    }

    #[test]
    fn sniff_by_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Compression::Gzip));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Compression::Zstd));
        assert_eq!(sniff(b"\xfd7zXZ\x00rest"), Some(Compression::Xz));
        assert_eq!(sniff(b"BZh91AY"), Some(Compression::Bzip2));
        let mut tar = vec![0u8; 512];
        tar[0] = b'a';
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Compression::None));
        assert_eq!(sniff(&[0u8; 1024]), Some(Compression::None));
        assert_eq!(sniff(b"<html>not a database</html>"), None);
    }

    #[test]
    fn bad_entries_concern_their_package_name() {
        let q = Query::Filename("gtk+foo-1:2.0-1-any.pkg.tar.zst");
        assert!(q.may_concern("gtk+foo-1:2.0-1"));
        // An epoch written as `1_` in the file name but `1:` in the directory.
        assert!(Query::Filename("gtk+foo-1_2.0-1-any.pkg.tar.zst").may_concern("gtk+foo-1:2.0-1"));
        assert!(!q.may_concern("gtk-1:2.0-1"));
        let n = Query::Name("python-foo");
        assert!(n.may_concern("python-foo-1.0-2"));
        assert!(!n.may_concern("python-foo-bar-1.0-2"));
        assert!(!n.may_concern("python-1.0-2"));
    }
}
