//! The log of completed downloads that `pacxfer stats` reads: one JSON line per file that
//! arrived whole (by XferCommand, `fetch` or `prefetch`), appended to `downloads.log` in the
//! first cache place that can be written, under the trust rule; past [`LOG_MAX`] it is moved to
//! `downloads.log.1` and a new one begun, so at most twice that is kept. Where no place can be
//! written there is no log, and downloads go on as ever.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::Places;
use crate::transfer::download::Delivered;
use crate::transfer::plan::{Plan, Source};

/// The log's file name.
pub const NAME: &str = "downloads.log";
/// The older half.
pub const OLDER: &str = "downloads.log.1";
/// The most one file holds before it is rotated.
pub const LOG_MAX: u64 = 4 << 20;

/// Where a file's bytes came from, as the log and `stats` count them.
pub fn origin(plan: &Plan, done: &Delivered) -> &'static str {
    match done.source {
        "unchanged" => return "unchanged",
        "updates" => return "updates",
        "partial" => return "partial",
        _ => {}
    }
    let source = done.index.and_then(|i| plan.sources.get(i));
    match source {
        Some(Source::Gateway { url, .. }) if is_view(url) => "view",
        Some(Source::Gateway {
            cached_only: true, ..
        }) => "node",
        Some(Source::Gateway { .. }) => "network",
        Some(Source::Lan { .. }) => "lan",
        Some(Source::Mirror { .. }) => "mirror",
        Some(Source::DbSignature { .. }) => "db-signature",
        None => match done.source {
            "db-signature" => "db-signature",
            "partial" => "partial",
            "unchanged" => "unchanged",
            "mirror" => "mirror",
            _ => "other",
        },
    }
}

/// Whether a gateway URL reads from a published view (`/ipns/<name>/...` or
/// `/ipfs/<root>/<path>`) rather than a bare CID.
fn is_view(url: &str) -> bool {
    let Some(at) = url.find("/ipns/").or_else(|| url.find("/ipfs/")) else {
        return false;
    };
    crate::sources::views::view_of(&url[at..]).is_some()
}

/// What a file is to pacman.
pub fn kind(file: &str) -> &'static str {
    if file.ends_with(".sig") {
        "signature"
    } else if file.ends_with(".db") || file.ends_with(".files") {
        "database"
    } else {
        "package"
    }
}

/// One completed download.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time it ended.
    pub at: i64,
    pub file: String,
    /// `package`, `signature` or `database`.
    pub kind: String,
    /// `node`, `network`, `view`, `db-signature`, `mirror`, `unchanged`, `partial`.
    pub source: String,
    pub bytes: u64,
    /// Bytes that were there from an earlier try.
    #[serde(default)]
    pub resumed: u64,
    pub seconds: f64,
}

impl Record {
    pub fn new(file: &str, plan: &Plan, done: &Delivered, took: Duration) -> Record {
        Record {
            at: crate::unix_time(),
            file: file.to_string(),
            kind: kind(file).to_string(),
            source: origin(plan, done).to_string(),
            bytes: done.bytes,
            resumed: done.resumed,
            seconds: took.as_secs_f64(),
        }
    }

    /// Whether the record could have been written by pacxfer: known kinds and sources, sizes
    /// a file can have, a time that is a time. Anything else is a damaged or forged line and
    /// is not counted (it could make the sums wrap, or print what pacxfer never wrote).
    fn plausible(&self) -> bool {
        const SOURCES: [&str; 10] = [
            "node",
            "updates",
            "lan",
            "network",
            "view",
            "db-signature",
            "mirror",
            "unchanged",
            "partial",
            "other",
        ];
        ["package", "signature", "database"].contains(&self.kind.as_str())
            && SOURCES.contains(&self.source.as_str())
            && self.bytes <= BYTES_MAX
            && self.resumed <= self.bytes
            && self.seconds.is_finite()
            && (0.0..=1e9).contains(&self.seconds)
            && crate::pacman::names::is_plain_filename(&self.file)
    }
}

/// Appends `record`; silently nothing when no place can be written.
pub fn record(places: &Places, record: &Record) {
    let Ok(mut line) = serde_json::to_vec(record) else {
        return;
    };
    line.push(b'\n');
    // The first place the line can be appended to: an append is its own probe.
    for dir in places
        .dirs()
        .iter()
        .filter_map(|d| crate::cache::TrustedDir::open(d, true).ok())
    {
        match dir.append(NAME, &line, LOG_MAX) {
            Ok(()) => return,
            // Full: start a new one, keeping the last as the older half.
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                let _ = dir.rename(NAME, OLDER);
                if dir.append(NAME, &line, LOG_MAX).is_ok() {
                    return;
                }
            }
            // Not writable here, or refused by the trust rule: the next place.
            Err(_) => {}
        }
    }
}

/// The most read of one log file: appends racing each other may pass the limit by a few
/// lines.
const READ_MAX: u64 = LOG_MAX + (64 << 10);

/// The longest line taken from a log: a record pacxfer writes is about 200 bytes.
const LINE_MAX: usize = 4096;

/// The most records taken from one log file (a full one holds about 25,000).
const RECORDS_MAX: usize = 100_000;

/// The largest file a record may claim: more is a damaged line, not a download.
const BYTES_MAX: u64 = 1 << 50;

fn parse(bytes: &[u8], since: i64, out: &mut Vec<Record>) {
    let mut taken = 0;
    for line in bytes.split(|b| *b == b'\n') {
        if line.len() > LINE_MAX || taken >= RECORDS_MAX {
            continue;
        }
        if let Ok(r) = crate::ui::answer::parse::<Record>(line, 64) {
            if r.at >= since && r.plausible() {
                out.push(r);
                taken += 1;
            }
        }
    }
}

/// Every record since `since` (Unix time), oldest first; lines that do not parse, or that
/// pacxfer could not have written, are skipped, and at most `RECORDS_MAX` are taken of a file.
pub fn read(places: &Places, since: i64) -> Vec<Record> {
    let mut out = Vec::new();
    for name in [OLDER, NAME] {
        if let Some(bytes) = places.read_first(name, READ_MAX) {
            parse(&bytes, since, &mut out);
        }
    }
    out
}

/// The records another user's pacxfer keeps in `dir` (pacman 7's DownloadUser, whose cache
/// the trust rule does not let root use): read only, for counting, when `dir` and the files
/// belong to `owner`, with no link followed and no FIFO waited on.
pub fn read_owned_by(dir: &std::path::Path, owner: u32, since: i64) -> Vec<Record> {
    use rustix::fs::{self as rfs, Mode, OFlags};
    use std::io::Read;
    let mut out = Vec::new();
    let Ok(dfd) = rfs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return out;
    };
    if !rfs::fstat(&dfd).is_ok_and(|st| st.st_uid == owner) {
        return out;
    }
    for name in [OLDER, NAME] {
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let Ok(fd) = rfs::openat(&dfd, name, flags, Mode::empty()) else {
            continue;
        };
        let ok = rfs::fstat(&fd).is_ok_and(|st| {
            rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile
                && st.st_uid == owner
                && u64::try_from(st.st_size).is_ok_and(|n| n <= READ_MAX)
        });
        if !ok {
            continue;
        }
        let mut bytes = Vec::new();
        if std::fs::File::from(fd)
            .take(READ_MAX)
            .read_to_end(&mut bytes)
            .is_ok()
        {
            parse(&bytes, since, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: i64) -> Record {
        Record {
            at,
            file: "a-1-1-any.pkg.tar.zst".into(),
            kind: "package".into(),
            source: "mirror".into(),
            bytes: 10,
            resumed: 0,
            seconds: 0.5,
        }
    }

    #[test]
    fn records_append_rotate_and_read_back() {
        let d = tempfile::tempdir().expect("tmp");
        let places = Places::new(Some(d.path()));
        for at in 1..=3 {
            record(&places, &rec(at));
        }
        assert_eq!(read(&places, 2), vec![rec(2), rec(3)]);
        // A log at its limit is moved aside and a new one begun.
        let big = vec![b'x'; LOG_MAX as usize];
        std::fs::write(d.path().join(NAME), &big).expect("fill");
        record(&places, &rec(9));
        assert_eq!(
            std::fs::metadata(d.path().join(OLDER))
                .expect("older")
                .len(),
            LOG_MAX
        );
        assert_eq!(read(&places, 0), vec![rec(9)]);
    }

    #[test]
    fn another_users_log_is_read_only_when_theirs_and_no_link() {
        let d = tempfile::tempdir().expect("tmp");
        let me = crate::cache::trust::euid();
        let line = serde_json::to_string(&rec(5)).expect("json") + "\n";
        std::fs::write(d.path().join(NAME), &line).expect("write");
        assert_eq!(read_owned_by(d.path(), me, 0), vec![rec(5)]);
        assert!(read_owned_by(d.path(), me + 1, 0).is_empty());
        std::fs::remove_file(d.path().join(NAME)).expect("rm");
        let elsewhere = d.path().join("elsewhere");
        std::fs::write(&elsewhere, &line).expect("write");
        std::os::unix::fs::symlink(&elsewhere, d.path().join(NAME)).expect("link");
        assert!(read_owned_by(d.path(), me, 0).is_empty());
    }

    #[test]
    fn kinds_and_views() {
        assert_eq!(kind("core.db"), "database");
        assert_eq!(kind("core.db.sig"), "signature");
        assert_eq!(kind("zstd-1.5-1-x86_64.pkg.tar.zst"), "package");
        assert!(is_view("http://127.0.0.1:8080/ipns/k51abc/0123"));
        assert!(!is_view("http://127.0.0.1:8080/ipfs/bafkreiabc"));
    }
}
