//! The sync databases: finding `<dbpath>/sync/*.db`, undoing their compression (found by magic
//! bytes, never by name), walking the tar archive and reading each package's `desc`.
//!
//! This module only reads. It knows nothing of URLs, gateways or downloads: it answers "which
//! entries list this file name (or package name)?" and nothing else.

use std::fmt;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::desc::parse_desc;
use super::entry::{DescError, Entry, Query};
use crate::cache;
use crate::db::index;
use crate::db::tar;

/// The largest `desc` member read; real ones are a few KiB.
const DESC_MAX: u64 = 1 << 20;
/// The most a database may hold once decompressed (Arch's largest is about 50 MB), and the
/// most entries: a hostile database costs bounded time and memory.
const DB_MAX_BYTES: u64 = 2 << 30;
const DB_MAX_ENTRIES: usize = 500_000;

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
pub(crate) fn decompress<R: io::BufRead + 'static>(
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
