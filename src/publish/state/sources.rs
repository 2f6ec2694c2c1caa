//! The build sources a source cache holds (`publish --sources`): each file by SHA-256 with
//! its CID and size, every strong sum it was verified against or hashed to, and where a
//! PKGBUILD names it (package base, file name, URL) with when that was first and last seen.
//! Made beside an older state's tables, which older pacxfer versions leave alone.

use rusqlite::{params, Connection};

use super::{State, StateError};

pub(super) const SOURCE_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS source_files (sha256 TEXT PRIMARY KEY, cid TEXT NOT NULL,
        size INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS source_sums (algo TEXT NOT NULL, hex TEXT NOT NULL,
        sha256 TEXT NOT NULL, PRIMARY KEY (algo, hex));
    CREATE TABLE IF NOT EXISTS source_listings (pkgbase TEXT NOT NULL, name TEXT NOT NULL,
        url TEXT NOT NULL, sha256 TEXT NOT NULL, first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL, PRIMARY KEY (pkgbase, name, sha256));";

/// Where a PKGBUILD names a source the cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceListing {
    pub pkgbase: String,
    pub name: String,
    pub url: String,
    pub sha256: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// One link of the published `sources/<algo>/<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLink {
    pub algo: String,
    pub hex: String,
    pub cid: String,
}

impl State {
    /// The SHA-256 of the held source with this sum, if any.
    pub fn source_by_sum(&self, algo: &str, hex: &str) -> Result<Option<String>, StateError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT s.sha256 FROM source_sums s JOIN source_files f ON f.sha256 = s.sha256
                 WHERE s.algo = ?1 AND s.hex = ?2",
                params![algo, hex],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Records a source the node now holds, its sums and its listing, in one transaction.
    pub fn add_source(
        &mut self,
        sha256: &str,
        cid: &str,
        size: u64,
        sums: &[(String, String)],
        listing: &SourceListing,
    ) -> Result<(), StateError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO source_files (sha256, cid, size) VALUES (?1, ?2, ?3)",
                params![sha256, cid, size as i64],
            )?;
            for (algo, hex) in sums {
                tx.execute(
                    "INSERT OR REPLACE INTO source_sums (algo, hex, sha256) VALUES (?1, ?2, ?3)",
                    params![algo, hex, sha256],
                )?;
            }
            upsert_source_listing(tx, listing)
        })
    }

    /// Marks listings of held sources as seen now, in one transaction.
    pub fn sources_seen(&mut self, listings: &[SourceListing]) -> Result<(), StateError> {
        self.write(|tx| {
            for l in listings {
                upsert_source_listing(tx, l)?;
            }
            Ok(())
        })
    }

    /// Every listing, newest last.
    pub fn source_listings(&self) -> Result<Vec<SourceListing>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pkgbase, name, url, sha256, first_seen, last_seen FROM source_listings
                 ORDER BY pkgbase, name, last_seen, first_seen",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceListing {
                    pkgbase: r.get(0)?,
                    name: r.get(1)?,
                    url: r.get(2)?,
                    sha256: r.get(3)?,
                    first_seen: r.get(4)?,
                    last_seen: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// The CID of each held source, by SHA-256.
    pub fn source_cids(&self) -> Result<Vec<(String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256, cid FROM source_files ORDER BY sha256")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Every `sources/<algo>/<hex>` link of held sources.
    pub fn source_links(&self) -> Result<Vec<SourceLink>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.algo, s.hex, f.cid FROM source_sums s
                 JOIN source_files f ON f.sha256 = s.sha256 ORDER BY s.algo, s.hex",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceLink {
                    algo: r.get(0)?,
                    hex: r.get(1)?,
                    cid: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    /// Forgets listings last seen at or before `horizon`, except those of the package bases
    /// in `spared`, then the sources and sums no listing names, in one transaction; returns
    /// how many sources went.
    pub fn prune_sources(&mut self, horizon: i64, spared: &[String]) -> Result<u64, StateError> {
        let old: Vec<SourceListing> = self
            .source_listings()?
            .into_iter()
            .filter(|l| l.last_seen <= horizon && !spared.contains(&l.pkgbase))
            .collect();
        self.write(|tx| {
            for l in &old {
                tx.execute(
                    "DELETE FROM source_listings WHERE pkgbase = ?1 AND name = ?2 AND sha256 = ?3",
                    params![l.pkgbase, l.name, l.sha256],
                )?;
            }
            let gone = tx.execute(
                "DELETE FROM source_files WHERE sha256 NOT IN (SELECT sha256 FROM source_listings)",
                [],
            )?;
            tx.execute(
                "DELETE FROM source_sums WHERE sha256 NOT IN (SELECT sha256 FROM source_files)",
                [],
            )?;
            Ok(gone as u64)
        })
    }
}

fn upsert_source_listing(conn: &Connection, l: &SourceListing) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO source_listings (pkgbase, name, url, sha256, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (pkgbase, name, sha256) DO UPDATE SET
             url = excluded.url, last_seen = excluded.last_seen",
        params![
            l.pkgbase,
            l.name,
            l.url,
            l.sha256,
            l.first_seen,
            l.last_seen
        ],
    )
    .map(|_| ())
}
