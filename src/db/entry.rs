//! One package as a sync database lists it, the rules every entry is held to (read from a
//! database or from an index), and what a search looks for with its one match rule. Below both
//! the database reader (`syncdb`) and the index (`index`), which share it.

use std::fmt;

use crate::pacman::names::is_plain_filename;

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
    pub(super) fn may_hold(&self, text: &str) -> bool {
        match self {
            Query::Filename(s) | Query::Name(s) | Query::Either(s) => text.contains(s),
        }
    }

    /// Whether an entry that could not be read, in member directory `dir`, may be the one
    /// asked for: decides which bad entries are worth a warning. The directory is
    /// `<name>-<pkgver>-<pkgrel>`, but a file name need not repeat it exactly (some
    /// repositories write an epoch `1:` as `1_` in file names), so a file name is only
    /// compared with the package name part.
    pub(super) fn may_concern(&self, dir: &str) -> bool {
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
