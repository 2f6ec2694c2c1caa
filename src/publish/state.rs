//! The publisher's record: which files it added to the node (SHA-256 -> CID and size), which
//! repository listed each under which file name and when it was first and last seen, the
//! database files of each repository, and the root it last published. It is the truth the
//! published view is built from; the node's MFS is rebuilt from it, never trusted as the
//! record. A source cache's build sources are recorded beside (`sources`).
//!
//! SQLite (rusqlite, bundled), every change in a transaction, so a publisher killed at any
//! moment loses nothing it had finished and the next run continues. The file follows the
//! trust rule of `cache::trust` (a regular file of root or this user in a directory nobody
//! else can write, never through a link), and a file that is not a pacxfer publisher state
//! is refused with one clear error, never changed.

mod sources;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::cache::trust::{PlaceError, TrustedDir};

pub use sources::{SourceLink, SourceListing};

/// The schema's name and version, kept in the `meta` table.
const SCHEMA: &str = "pacxfer-publish-1";

/// Why the state cannot be used.
#[derive(Debug)]
pub enum StateError {
    /// Its directory or the file breaks the trust rule, or cannot be reached.
    Place(String),
    /// Not a SQLite database, or not one pacxfer wrote.
    Foreign { path: PathBuf, why: String },
    /// SQLite failed (disk full, read-only file...).
    Sql { path: PathBuf, err: rusqlite::Error },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Place(why) => write!(f, "publisher state: {why}"),
            StateError::Foreign { path, why } => write!(
                f,
                "{} is not a pacxfer publisher state ({why}); give another --state, or move it away to start afresh",
                path.display()
            ),
            StateError::Sql { path, err } => {
                write!(f, "publisher state {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for StateError {}

/// One file the node holds for the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub sha256: String,
    pub cid: String,
    pub size: u64,
}

/// One listing: a repository's file name for a file, and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub repo: String,
    pub arch: String,
    pub filename: String,
    pub name: String,
    pub sha256: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A database file of a repository (`core.db`, `core.db.sig`, `core.files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFile {
    pub repo: String,
    pub arch: String,
    pub name: String,
    pub cid: String,
    pub sha256: String,
    pub size: u64,
}

/// One published version of a database (`core.db`, `core.files`) in canonical form
/// (`db::canonical`): its number in the repository's chain, the step from the version before
/// it (`None` when that version's canonical copy was not at hand) and the whole archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbVersion {
    pub repo: String,
    pub arch: String,
    pub name: String,
    pub seq: i64,
    pub sha256: String,
    pub size: u64,
    pub step_cid: Option<String>,
    pub step_size: u64,
    pub full_cid: String,
    pub published: i64,
}

/// What the head of a database's update list says besides its current version (the small
/// file a client reads first; written by the view on every run, with the run's time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHead {
    pub repo: String,
    pub arch: String,
    pub name: String,
    /// The mirror's `Last-Modified` for the current version, when it gave one.
    pub mirror_modified: Option<i64>,
    /// When the publisher last read this database from the mirror.
    pub checked: i64,
}

const UPDATE_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS db_versions (repo TEXT NOT NULL, arch TEXT NOT NULL,
        name TEXT NOT NULL, seq INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        step_cid TEXT, step_size INTEGER NOT NULL, full_cid TEXT NOT NULL,
        published INTEGER NOT NULL, PRIMARY KEY (repo, arch, name, seq));
    CREATE TABLE IF NOT EXISTS db_heads (repo TEXT NOT NULL, arch TEXT NOT NULL,
        name TEXT NOT NULL, mirror_modified INTEGER,
        checked INTEGER NOT NULL, PRIMARY KEY (repo, arch, name));";

/// The columns of `db_heads`: a table made with others (by an earlier build) is made again,
/// since every run writes each head anew.
const HEAD_COLUMNS: &[&str] = &["repo", "arch", "name", "mirror_modified", "checked"];

/// The open state.
pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl State {
    /// Opens (creating when missing) the state at `path`.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StateError::Place(format!("{} names no file", path.display())))?;
        let place = TrustedDir::open(dir, true).map_err(|e| StateError::Place(e.to_string()))?;
        // The file itself: a regular file of root or this user, not writable by others.
        match place.open_file(name, u64::MAX) {
            Ok(_) => {}
            Err(PlaceError::Untrusted(u)) => return Err(StateError::Place(u.to_string())),
            Err(PlaceError::Io(p, e)) => {
                return Err(StateError::Place(format!("{}: {e}", p.display())))
            }
        }
        let full = place.path().join(name);
        let sql = |err| StateError::Sql {
            path: full.clone(),
            err,
        };
        let conn = Connection::open_with_flags(
            &full,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NOFOLLOW
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        std::fs::set_permissions(
            &full,
            std::os::unix::fs::PermissionsExt::from_mode(crate::cache::trust::FILE_MODE),
        )
        .map_err(|e| StateError::Place(format!("{}: {e}", full.display())))?;
        let foreign = |why: String| StateError::Foreign {
            path: full.clone(),
            why,
        };
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| foreign(e.to_string()))?;
        if tables.is_empty() {
            // The schema record in the same transaction: a publisher killed while making a
            // new state leaves nothing or a whole one.
            conn.execute_batch(&format!(
                "BEGIN;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE files (sha256 TEXT PRIMARY KEY, cid TEXT NOT NULL, size INTEGER NOT NULL);
                 CREATE TABLE listings (repo TEXT NOT NULL, arch TEXT NOT NULL, filename TEXT NOT NULL,
                     name TEXT NOT NULL, sha256 TEXT NOT NULL REFERENCES files(sha256),
                     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
                     PRIMARY KEY (repo, arch, filename));
                 CREATE TABLE dbfiles (repo TEXT NOT NULL, arch TEXT NOT NULL, name TEXT NOT NULL,
                     cid TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                     PRIMARY KEY (repo, arch, name));
                 INSERT INTO meta (key, value) VALUES ('schema', '{SCHEMA}');
                 COMMIT;"
            ))
            .map_err(sql)?;
        } else {
            let schema: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| foreign(e.to_string()))?;
            match schema.as_deref() {
                Some(SCHEMA) => {}
                Some(other) => return Err(foreign(format!("schema {other:?}"))),
                None => return Err(foreign("no schema record".into())),
            }
        }
        // The update lists' tables came later: made beside an older state's own, which
        // older pacxfer versions leave alone.
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('db_heads')")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql)?;
        if !columns.is_empty() && columns != HEAD_COLUMNS {
            conn.execute_batch("DROP TABLE db_heads").map_err(sql)?;
        }
        conn.execute_batch(UPDATE_TABLES).map_err(sql)?;
        conn.execute_batch(sources::SOURCE_TABLES).map_err(sql)?;
        Ok(State { conn, path: full })
    }

    /// Runs `change` in one transaction: committed when it returns `Ok`, rolled back
    /// otherwise.
    fn write<T>(
        &mut self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let sql = |err| StateError::Sql {
            path: self.path.clone(),
            err,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let done = change(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(done)
    }

    fn sql(&self, err: rusqlite::Error) -> StateError {
        StateError::Sql {
            path: self.path.clone(),
            err,
        }
    }

    /// The file with this SHA-256 (hex), when the node holds it for the publisher.
    pub fn file(&self, sha256: &str) -> Result<Option<FileRow>, StateError> {
        self.conn
            .query_row(
                "SELECT sha256, cid, size FROM files WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(FileRow {
                        sha256: r.get(0)?,
                        cid: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Records a file the node now holds and its listing, in one transaction.
    pub fn add(&mut self, file: &FileRow, listing: &Listing) -> Result<(), StateError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO files (sha256, cid, size) VALUES (?1, ?2, ?3)",
                params![file.sha256, file.cid, file.size as i64],
            )?;
            upsert_listing(tx, listing)?;
            Ok(())
        })
    }

    /// Marks listings as seen now (adding those that are new) for files already held, in one
    /// transaction: a repository's worth costs one commit, not one per package.
    pub fn seen(&mut self, listings: &[Listing]) -> Result<(), StateError> {
        self.write(|tx| {
            for l in listings {
                upsert_listing(tx, l)?;
            }
            Ok(())
        })
    }

    /// Records a repository's database files, and forgets those in `absent`, in one
    /// transaction.
    pub fn set_dbfiles(
        &mut self,
        repo: &str,
        arch: &str,
        present: &[DbFile],
        absent: &[String],
    ) -> Result<(), StateError> {
        self.write(|tx| {
            for f in present {
                tx.execute(
                    "INSERT OR REPLACE INTO dbfiles (repo, arch, name, cid, sha256, size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![f.repo, f.arch, f.name, f.cid, f.sha256, f.size as i64],
                )?;
            }
            for name in absent {
                tx.execute(
                    "DELETE FROM dbfiles WHERE repo = ?1 AND arch = ?2 AND name = ?3",
                    params![repo, arch, name],
                )?;
            }
            Ok(())
        })
    }

    /// Every file held.
    pub fn files(&self) -> Result<Vec<FileRow>, StateError> {
        let mut s = self
            .conn
            .prepare("SELECT sha256, cid, size FROM files ORDER BY sha256")
            .map_err(|e| self.sql(e))?;
        let rows = s
            .query_map([], |r| {
                Ok(FileRow {
                    sha256: r.get(0)?,
                    cid: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Every listing.
    pub fn listings(&self) -> Result<Vec<Listing>, StateError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT repo, arch, filename, name, sha256, first_seen, last_seen FROM listings
                 ORDER BY repo, arch, filename",
            )
            .map_err(|e| self.sql(e))?;
        let rows = s
            .query_map([], |r| {
                Ok(Listing {
                    repo: r.get(0)?,
                    arch: r.get(1)?,
                    filename: r.get(2)?,
                    name: r.get(3)?,
                    sha256: r.get(4)?,
                    first_seen: r.get(5)?,
                    last_seen: r.get(6)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Every database file.
    pub fn dbfiles(&self) -> Result<Vec<DbFile>, StateError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT repo, arch, name, cid, sha256, size FROM dbfiles ORDER BY repo, arch, name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = s
            .query_map([], |r| {
                Ok(DbFile {
                    repo: r.get(0)?,
                    arch: r.get(1)?,
                    name: r.get(2)?,
                    cid: r.get(3)?,
                    sha256: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Removes listings and the files no listing names any more, in one transaction; returns
    /// how many files went.
    pub fn prune(&mut self, listings: &[Listing]) -> Result<u64, StateError> {
        self.write(|tx| {
            for l in listings {
                tx.execute(
                    "DELETE FROM listings WHERE repo = ?1 AND arch = ?2 AND filename = ?3",
                    params![l.repo, l.arch, l.filename],
                )?;
            }
            let gone = tx.execute(
                "DELETE FROM files WHERE sha256 NOT IN (SELECT sha256 FROM listings)",
                [],
            )?;
            Ok(gone as u64)
        })
    }

    /// Every published database version, oldest first within each database.
    pub fn db_versions(&self) -> Result<Vec<DbVersion>, StateError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT repo, arch, name, seq, sha256, size, step_cid, step_size, full_cid,
                 published FROM db_versions ORDER BY repo, arch, name, seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = s
            .query_map([], |r| {
                Ok(DbVersion {
                    repo: r.get(0)?,
                    arch: r.get(1)?,
                    name: r.get(2)?,
                    seq: r.get(3)?,
                    sha256: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                    step_cid: r.get(6)?,
                    step_size: r.get::<_, i64>(7)? as u64,
                    full_cid: r.get(8)?,
                    published: r.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Every database head.
    pub fn db_heads(&self) -> Result<Vec<DbHead>, StateError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT repo, arch, name, mirror_modified, checked FROM db_heads
                 ORDER BY repo, arch, name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = s
            .query_map([], |r| {
                Ok(DbHead {
                    repo: r.get(0)?,
                    arch: r.get(1)?,
                    name: r.get(2)?,
                    mirror_modified: r.get(3)?,
                    checked: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Records a new version (when there is one) and the head, and forgets the database's
    /// versions published before `horizon` (never the newest), in one transaction.
    pub fn set_db_version(
        &mut self,
        version: Option<&DbVersion>,
        head: &DbHead,
        horizon: i64,
    ) -> Result<(), StateError> {
        self.write(|tx| {
            if let Some(v) = version {
                tx.execute(
                    "INSERT OR REPLACE INTO db_versions (repo, arch, name, seq, sha256, size,
                     step_cid, step_size, full_cid, published)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        v.repo,
                        v.arch,
                        v.name,
                        v.seq,
                        v.sha256,
                        v.size as i64,
                        v.step_cid,
                        v.step_size as i64,
                        v.full_cid,
                        v.published
                    ],
                )?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO db_heads (repo, arch, name, mirror_modified, checked)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    head.repo,
                    head.arch,
                    head.name,
                    head.mirror_modified,
                    head.checked
                ],
            )?;
            tx.execute(
                "DELETE FROM db_versions WHERE repo = ?1 AND arch = ?2 AND name = ?3
                 AND published < ?4 AND seq < (SELECT MAX(seq) FROM db_versions
                     WHERE repo = ?1 AND arch = ?2 AND name = ?3)",
                params![head.repo, head.arch, head.name, horizon],
            )?;
            Ok(())
        })
    }

    /// Forgets a database's update list (its repository became signed, or is no longer read
    /// as one).
    pub fn drop_db_updates(
        &mut self,
        repo: &str,
        arch: &str,
        name: &str,
    ) -> Result<(), StateError> {
        self.write(|tx| {
            for table in ["db_versions", "db_heads"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE repo = ?1 AND arch = ?2 AND name = ?3"),
                    params![repo, arch, name],
                )?;
            }
            Ok(())
        })
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Sets values of the `meta` table, all or none.
    pub fn set_meta(&mut self, pairs: &[(&str, &str)]) -> Result<(), StateError> {
        self.write(|tx| {
            for (key, value) in pairs {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![key, value],
                )?;
            }
            Ok(())
        })
    }
}

fn upsert_listing(conn: &Connection, l: &Listing) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO listings (repo, arch, filename, name, sha256, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (repo, arch, filename) DO UPDATE SET
             name = excluded.name, sha256 = excluded.sha256, last_seen = excluded.last_seen",
        params![
            l.repo,
            l.arch,
            l.filename,
            l.name,
            l.sha256,
            l.first_seen,
            l.last_seen
        ],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(file: &str, sha: &str, seen: i64) -> Listing {
        Listing {
            repo: "core".into(),
            arch: "x86_64".into(),
            filename: file.into(),
            name: file.split('-').next().unwrap_or("x").into(),
            sha256: sha.into(),
            first_seen: seen,
            last_seen: seen,
        }
    }

    #[test]
    fn records_survive_reopening_and_prune_takes_unlisted_files() {
        let d = tempfile::tempdir().expect("tmp");
        let path = d.path().join("state.sqlite");
        let mut s = State::open(&path).expect("new state");
        let f = FileRow {
            sha256: "aa".into(),
            cid: "bafkreiaa".into(),
            size: 5,
        };
        s.add(&f, &listing("a-1-1-any.pkg.tar.zst", "aa", 10))
            .expect("add");
        s.seen(&[listing("a-1-1-any.pkg.tar.zst", "aa", 20)])
            .expect("seen");
        drop(s);
        let mut s = State::open(&path).expect("reopen");
        assert_eq!(s.file("aa").expect("get"), Some(f));
        let l = s.listings().expect("listings");
        assert_eq!((l[0].first_seen, l[0].last_seen), (10, 20));
        assert_eq!(s.prune(&l).expect("prune"), 1);
        assert!(s.files().expect("files").is_empty());
        let mode = std::fs::metadata(&path).expect("stat").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn foreign_files_are_refused_not_changed() {
        let d = tempfile::tempdir().expect("tmp");
        let junk = d.path().join("junk.sqlite");
        std::fs::write(&junk, b"this is no database at all, just some text").expect("write");
        assert!(matches!(
            State::open(&junk),
            Err(StateError::Foreign { .. })
        ));
        assert_eq!(
            std::fs::read(&junk).expect("read"),
            b"this is no database at all, just some text"
        );
        let other = d.path().join("other.sqlite");
        let c = Connection::open(&other).expect("sqlite");
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("other db");
        drop(c);
        assert!(matches!(
            State::open(&other),
            Err(StateError::Foreign { .. })
        ));
        let link = d.path().join("link.sqlite");
        std::os::unix::fs::symlink(&other, &link).expect("symlink");
        assert!(matches!(State::open(&link), Err(StateError::Place(_))));
    }
}
