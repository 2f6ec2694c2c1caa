//! A database through a publisher's update list (`[databases]`): the client's half of
//! `publish::updates`.
//!
//! Through the local node's gateway, it reads the head the publisher's IPNS name points at
//! (`/ipns/<name>/updates/<repo>/<arch>/<db>/head`), and turns the canonical copy it built
//! last time (kept in the cache, with the version it is) into the head's version: with the
//! steps from its version on, fetched in parallel, composed into one set of changes and
//! merged with the copy in one streaming pass; or, with no usable copy or steps, with the
//! whole canonical archive (`full`). The result is kept only when its SHA-256 and size are
//! the ones the head names, and its mtime is the mirror's `Last-Modified` the publisher
//! recorded for that version, which the caller sends to the mirror as `If-Modified-Since`:
//! a mirror with something newer answers with it, as it would without pacxfer.
//!
//! Refused, so the caller asks the mirror as before: a head older than `[gateway] max_age`
//! (a publisher that stopped cannot hold back updates longer), one without the mirror's time,
//! a missing step or a step that does not chain, a result that is not the recorded version,
//! and anything past `[databases] timeout`. Every answer is bounded in size.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::cache::TrustedDir;
use crate::config::Config;
use crate::db::canonical::{self, Changes, Version};
use crate::http::client::{Client, ClientOptions, Get};
use crate::sources::mirror::Existing;
use crate::ui::progress::Progress;

/// The largest head taken.
const HEAD_MAX: u64 = 64 << 10;
/// The largest compressed step taken.
const STEP_FETCH_MAX: u64 = 64 << 20;
/// The most all the steps of one update may take, compressed.
const STEPS_FETCH_MAX: u64 = 256 << 20;
/// The largest database built (pacman's own limit on a database download is 128 MiB of
/// compressed bytes; a `.files` database is several times that uncompressed).
pub const DB_MAX: u64 = 2 << 30;
/// More steps than this are not worth their round trips: the whole archive is fetched.
const STEPS_MAX: u64 = 512;
/// How far ahead of this clock a head's times may be.
const CLOCK_SKEW: i64 = 600;
/// Steps fetched at once.
const PARALLEL: usize = 8;

/// What a publisher's head says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version: u64,
    pub current: Version,
    pub first_step: u64,
    /// When the publisher last compared its version with the mirror.
    pub checked: i64,
    /// The mirror's `Last-Modified` for this version.
    pub mirror_modified: Option<i64>,
}

/// A database built to the head's version.
#[derive(Debug)]
pub struct Built {
    /// The cache file that holds it (a canonical archive).
    pub name: String,
    pub place: PathBuf,
    pub head: Head,
    /// The mirror's time for it: the copy's mtime.
    pub modified: SystemTime,
    /// How it was built, for the success line: "already current", "3 steps", "whole".
    pub how: String,
    /// Bytes fetched through the node.
    pub fetched: u64,
}

/// The database `name` (`core.db`, `core.files`) of `repo` through `publisher`'s update
/// list, built in `place`. `Err` says why not, in words for a note.
pub fn build(
    config: &Config,
    place: &TrustedDir,
    publisher: &str,
    repo: &str,
    name: &str,
) -> Result<Built, String> {
    let deadline = Instant::now() + config.databases.timeout;
    let arch = &config.databases.arch;
    let client = gateway_client(config)?;
    let base = base_url(config, publisher, repo, name);
    let (head, modified) = usable_head(config, &client, &base, repo, name, deadline)?;
    if head.current.size > DB_MAX {
        return Err(format!(
            "the publisher's version is larger than {} GiB",
            DB_MAX >> 30
        ));
    }
    let key = format!("{publisher}\0{repo}\0{arch}\0{name}");
    let copy = crate::cache::Places::name_for("dbupdate", key.as_bytes(), "tar");
    let record = crate::cache::Places::name_for("dbupdate", key.as_bytes(), "json");
    let held = held_version(place, &copy, &record);
    let done = |how: String, fetched: u64| {
        set_mtime(place, &copy, modified);
        Ok(Built {
            name: copy.clone(),
            place: place.path().to_path_buf(),
            head: head.clone(),
            modified,
            how,
            fetched,
        })
    };
    let remember = |version: u64| {
        let text = serde_json::json!({"version": version, "sha256": head.current.hex(), "size": head.current.size});
        let _ = place.write(&record, text.to_string().as_bytes());
    };
    if let Some((number, _)) = held.filter(|(_, version)| *version == head.current) {
        // The same bytes under another number (a publisher that started its count again).
        if number != head.version {
            remember(head.version);
        }
        return done("already current".into(), 0);
    }
    let mut why_not_steps = String::from("no earlier version here");
    if let Some((have, version)) = held {
        let usable =
            have < head.version && have + 1 >= head.first_step && head.version - have <= STEPS_MAX;
        if usable {
            match steps(&client, &base, have + 1, &head, version, deadline).and_then(
                |(changes, fetched)| apply(place, &copy, &changes, head.current).map(|_| fetched),
            ) {
                Ok(fetched) => {
                    remember(head.version);
                    let n = head.version - have;
                    return done(
                        format!("{n} step{}", if n == 1 { "" } else { "s" }),
                        fetched,
                    );
                }
                Err(why) => why_not_steps = why,
            }
        } else {
            why_not_steps = format!(
                "the steps from version {have} to {} are not all published",
                head.version
            );
        }
    }
    if Instant::now() >= deadline {
        return Err(format!(
            "{why_not_steps}; out of time for the whole archive"
        ));
    }
    let fetched = full(
        &client,
        &format!("{base}/full"),
        place,
        &copy,
        head.current,
        deadline,
    )
    .map_err(|e| format!("{why_not_steps}; the whole archive: {e}"))?;
    remember(head.version);
    done(format!("whole ({why_not_steps})"), fetched)
}

/// The local gateway, bounded as for IPFS downloads.
fn gateway_client(config: &Config) -> Result<Client, String> {
    Client::new(&ClientOptions {
        connect_timeout: config.gateway.connect_timeout,
        stall_timeout: config.gateway.stall_timeout,
        max_redirects: 3,
        proxy: crate::http::client::proxy_for(config.gateway_base(), |k| std::env::var(k).ok()),
        user_agent: crate::USER_AGENT.to_string(),
    })
    .map_err(|e| e.to_string())
}

fn base_url(config: &Config, publisher: &str, repo: &str, name: &str) -> String {
    format!(
        "{}/ipns/{publisher}/updates/{repo}/{}/{name}",
        config.gateway_base(),
        config.databases.arch
    )
}

/// The head of `name`'s update list, when it may be used: not older than `[gateway]
/// max_age`, not dated in the future, with the mirror's time; and that time.
fn usable_head(
    config: &Config,
    client: &Client,
    base: &str,
    repo: &str,
    name: &str,
    deadline: Instant,
) -> Result<(Head, SystemTime), String> {
    let bytes = get(client, &format!("{base}/head"), HEAD_MAX, deadline)?;
    let head = parse_head(&bytes, repo, &config.databases.arch, name)?;
    // A time ahead of this clock would make any mirror answer 304 for ever, and an age
    // below zero: a head dated in the future is not used.
    let ahead = |t: i64| t > now() + CLOCK_SKEW;
    if ahead(head.checked) || head.mirror_modified.is_some_and(ahead) {
        return Err("the publisher's head is dated in the future".into());
    }
    let age = now() - head.checked;
    let max_age = config.gateway.max_age;
    if !max_age.is_zero() && age > max_age.as_secs() as i64 {
        return Err(format!(
            "the publisher last checked the mirror {} ago, more than [gateway] max_age",
            crate::sources::views::shown_age(Duration::from_secs(age.max(0) as u64))
        ));
    }
    let Some(modified) = head.mirror_modified else {
        return Err("the publisher does not know when the mirror changed it".into());
    };
    Ok((
        head,
        UNIX_EPOCH + Duration::from_secs(modified.max(0) as u64),
    ))
}

/// The head of `repo`'s database `name` through `publisher`, when it may be used (for
/// `doctor`): its version, and how long ago the publisher checked the mirror.
pub fn head_of(
    config: &Config,
    publisher: &str,
    repo: &str,
    name: &str,
) -> Result<(u64, Duration), String> {
    let deadline = Instant::now() + config.databases.timeout;
    let client = gateway_client(config)?;
    let (head, _) = usable_head(
        config,
        &client,
        &base_url(config, publisher, repo, name),
        repo,
        name,
        deadline,
    )?;
    Ok((
        head.version,
        Duration::from_secs((now() - head.checked).max(0) as u64),
    ))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One small answer of at most `max` bytes; only a 200 is taken.
fn get(client: &Client, url: &str, max: u64, deadline: Instant) -> Result<Vec<u8>, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("out of time ([databases] timeout)".into());
    }
    let reply = client
        .get(
            url,
            &Get {
                response_timeout: Some(left),
                ..Get::default()
            },
        )
        .map_err(|e| format!("{}: {e}", tail(url)))?;
    match reply.status {
        200 => {}
        404 => {
            return Err(format!(
                "{}: the publisher has no such file (404)",
                tail(url)
            ))
        }
        other => return Err(format!("{}: HTTP {other}", tail(url))),
    }
    let mut body = Vec::new();
    reply
        .body
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("{}: {e}", tail(url)))?;
    if body.len() as u64 > max {
        return Err(format!("{}: larger than {max} bytes", tail(url)));
    }
    Ok(body)
}

/// The part of an update-list URL worth naming.
fn tail(url: &str) -> &str {
    url.find("/updates/").map_or(url, |i| &url[i + 1..])
}

/// Reads and checks a head.
pub fn parse_head(bytes: &[u8], repo: &str, arch: &str, name: &str) -> Result<Head, String> {
    let bad = |why: &str| format!("the publisher's head is not usable: {why}");
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    if v["pacxfer_db_updates"].as_u64() != Some(canonical::HEAD_FORMAT) {
        return Err(bad("an unknown format"));
    }
    if v["repo"].as_str() != Some(repo)
        || v["arch"].as_str() != Some(arch)
        || v["name"].as_str() != Some(name)
    {
        return Err(bad("it is another database's"));
    }
    let sha = v["sha256"]
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad("no SHA-256"))?;
    let field = |k: &str| v[k].as_u64().ok_or_else(|| bad(&format!("no {k}")));
    Ok(Head {
        version: field("version")?,
        current: Version {
            sha256: sha,
            size: field("size")?,
        },
        first_step: field("first_step")?,
        checked: v["checked"].as_i64().ok_or_else(|| bad("no time"))?,
        mirror_modified: v["mirror_modified"].as_i64(),
    })
}

/// The version number and version of the copy kept here, when the copy is still that version.
fn held_version(place: &TrustedDir, copy: &str, record: &str) -> Option<(u64, Version)> {
    let text = place.read(record, 4096).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let number = v["version"].as_u64()?;
    let file = place.open_file(copy, DB_MAX).ok()??;
    let mut hasher = Sha256::new();
    let size = io::copy(
        &mut io::BufReader::with_capacity(1 << 20, file),
        &mut HashWriter(&mut hasher),
    )
    .ok()?;
    let version = Version {
        sha256: hasher.finalize().into(),
        size,
    };
    (v["sha256"].as_str() == Some(version.hex().as_str()) && v["size"].as_u64() == Some(size))
        .then_some((number, version))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Steps `from..=head.version`, fetched in parallel, checked to chain from `held` to the
/// head's version, composed: the changes and the bytes fetched.
fn steps(
    client: &Client,
    base: &str,
    from: u64,
    head: &Head,
    held: Version,
    deadline: Instant,
) -> Result<(Changes, u64), String> {
    let numbers: Vec<u64> = (from..=head.version).collect();
    let mut fetched: Vec<Option<Result<Vec<u8>, String>>> = vec![None; numbers.len()];
    // What all the steps may hold at once, compressed: each fetch may take what is left.
    let budget = std::sync::atomic::AtomicU64::new(STEPS_FETCH_MAX);
    let budget = &budget;
    std::thread::scope(|s| {
        for (chunk_numbers, chunk_out) in numbers
            .chunks(numbers.len().div_ceil(PARALLEL).max(1))
            .zip(fetched.chunks_mut(numbers.len().div_ceil(PARALLEL).max(1)))
        {
            s.spawn(move || {
                for (n, slot) in chunk_numbers.iter().zip(chunk_out.iter_mut()) {
                    let left = budget.load(std::sync::atomic::Ordering::Relaxed);
                    let got = get(
                        client,
                        &format!("{base}/{}", canonical::step_path(*n)),
                        STEP_FETCH_MAX.min(left),
                        deadline,
                    );
                    if let Ok(bytes) = &got {
                        budget.fetch_sub(
                            (bytes.len() as u64).min(left),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    *slot = Some(got);
                }
            });
        }
    });
    if budget.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return Err(format!(
            "the steps hold more than {} MiB",
            STEPS_FETCH_MAX >> 20
        ));
    }
    // The composed changes never need more than the result's size, plus one step's worth.
    let held_max = head.current.size.saturating_add(STEP_FETCH_MAX);
    let mut held_bytes = 0u64;
    let mut changes = Changes::new();
    let mut at = held;
    let mut bytes = 0u64;
    for (n, got) in numbers.iter().zip(fetched) {
        let got = got.unwrap_or_else(|| Err("not fetched".into()))?;
        bytes += got.len() as u64;
        let step = canonical::decode(&got).map_err(|e| format!("step {n}: {e}"))?;
        if step.from != at {
            return Err(format!(
                "step {n} starts from {}, not from the version before it ({})",
                step.from.hex(),
                at.hex()
            ));
        }
        at = step.to;
        for (path, change) in step.changes {
            held_bytes += change.as_ref().map_or(0, |c| c.len() as u64) + path.len() as u64;
            changes.insert(path, change);
        }
        if held_bytes > held_max {
            return Err(format!(
                "the steps change more than the {} bytes of the database they make",
                head.current.size
            ));
        }
    }
    if at != head.current {
        return Err(format!(
            "the steps end at {}, not at the head's version {}",
            at.hex(),
            head.current.hex()
        ));
    }
    Ok((changes, bytes))
}

/// Merges the kept copy with `changes` into a new copy, kept only when it is `want`.
fn apply(place: &TrustedDir, copy: &str, changes: &Changes, want: Version) -> Result<(), String> {
    let base = place
        .open_file(copy, DB_MAX)
        .map_err(|e| e.to_string())?
        .ok_or("the copy went away")?;
    place
        .write_with(copy, |file| {
            let out = io::BufWriter::with_capacity(1 << 20, file);
            let (mut out, got) =
                canonical::apply(io::BufReader::with_capacity(1 << 20, base), changes, out)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            out.flush()?;
            if got != want {
                return Err(io::Error::other(format!(
                    "the steps made {got}, not the publisher's version {want}"
                )));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

/// The whole canonical archive, decompressed into the copy and kept only when it is `want`:
/// the compressed bytes fetched.
fn full(
    client: &Client,
    url: &str,
    place: &TrustedDir,
    copy: &str,
    want: Version,
    deadline: Instant,
) -> Result<u64, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    let reply = client
        .get(
            url,
            &Get {
                response_timeout: Some(left),
                ..Get::default()
            },
        )
        .map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("HTTP {}", reply.status));
    }
    let counted = Counted {
        inner: reply.body.take(want.size.saturating_add(1 << 20)),
        n: 0,
    };
    let mut fetched = 0u64;
    place
        .write_with(copy, |file| {
            let mut decoder = zstd::stream::read::Decoder::new(counted)?;
            let mut hasher = Sha256::new();
            let mut out = io::BufWriter::with_capacity(1 << 20, file);
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            loop {
                let n = decoder.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > want.size {
                    return Err(io::Error::other("larger than the publisher's version"));
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.flush()?;
            fetched = decoder.get_ref().get_ref().n;
            let got = Version {
                sha256: hasher.finalize().into(),
                size,
            };
            if got != want {
                return Err(io::Error::other(format!(
                    "it is {got}, not the publisher's version {want}"
                )));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(fetched)
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn set_mtime(place: &TrustedDir, copy: &str, time: SystemTime) {
    if let Ok(Some(file)) = place.open_file(copy, DB_MAX) {
        let _ = file.set_modified(time);
    }
}

/// The repository of a sync database's file name (`core.db`, `core.files`).
pub fn database_of(name: &str) -> Option<&str> {
    [".db", ".files"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .filter(|repo| !repo.is_empty())
}

/// For the database file `name` of a repository synced through a publisher's update list
/// (`[databases]`): the copy built from it when it is newer than `own` (the copy pacman or
/// prefetch holds), to be sent to the mirror as `If-Modified-Since` (a 304 hands it on), and
/// how it was built. Otherwise `own`, as without an update list.
pub fn newer_copy(
    config: &Config,
    places: &crate::cache::Places,
    name: &str,
    own: Option<Existing>,
    progress: &Progress,
) -> (Option<Existing>, Option<String>) {
    let Some(repo) = database_of(name) else {
        return (own, None);
    };
    let Some(publisher) = config.databases.publisher_for(repo) else {
        return (own, None);
    };
    let Some(place) = places.writable() else {
        progress.note(&format!(
            "{name} not through the update list: no cache directory to build it in"
        ));
        return (own, None);
    };
    let built = match build(config, &place, publisher, repo, name) {
        Ok(b) => b,
        Err(why) => {
            progress.info(&format!(
                "{name} not through the update list: {why}; asking the mirror for the whole database"
            ));
            return (own, None);
        }
    };
    if own.as_ref().is_some_and(|o| o.modified() >= built.modified) {
        progress.note(&format!(
            "{name}: the copy here is as new as version {} of the update list",
            built.head.version
        ));
        return (own, None);
    }
    let how = format!(
        "update list version {} ({}, {} through IPFS)",
        built.head.version,
        built.how,
        crate::ui::progress::size(built.fetched)
    );
    match Existing::open(&built.place, &built.name, DB_MAX) {
        Ok(Some(copy)) => (Some(copy), Some(how)),
        Ok(None) => (own, None),
        Err(why) => {
            progress.warn(&format!(
                "{name}: the copy built from the update list cannot be used: {why}"
            ));
            (own, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(extra: &[(&str, serde_json::Value)]) -> Vec<u8> {
        let mut v = serde_json::json!({
            "pacxfer_db_updates": 1, "repo": "core", "arch": "x86_64", "name": "core.db",
            "version": 3, "sha256": "ab".repeat(32), "size": 10240, "first_step": 2,
            "checked": 1_790_000_000, "mirror_modified": 1_789_999_000,
        });
        for (k, val) in extra {
            v[*k] = val.clone();
        }
        v.to_string().into_bytes()
    }

    #[test]
    fn a_head_is_read_and_checked() {
        let h = parse_head(&head(&[]), "core", "x86_64", "core.db").expect("head");
        assert_eq!((h.version, h.first_step, h.current.size), (3, 2, 10240));
        assert_eq!(h.mirror_modified, Some(1_789_999_000));
        let none = parse_head(
            &head(&[("mirror_modified", serde_json::Value::Null)]),
            "core",
            "x86_64",
            "core.db",
        )
        .expect("head");
        assert_eq!(none.mirror_modified, None);
        for (bad, why) in [
            (head(&[("pacxfer_db_updates", 2.into())]), "unknown format"),
            (head(&[("repo", "extra".into())]), "another database"),
            (head(&[("sha256", "xyz".into())]), "no SHA-256"),
            (head(&[("sha256", "ab".repeat(31).into())]), "no SHA-256"),
            (head(&[("size", (-1).into())]), "no size"),
            (b"<html>".to_vec(), "not JSON"),
        ] {
            let e = parse_head(&bad, "core", "x86_64", "core.db").expect_err(why);
            assert!(e.contains(why), "{e}");
        }
        assert!(parse_head(&head(&[]), "core", "aarch64", "core.db").is_err());
        assert!(parse_head(&head(&[]), "core", "x86_64", "core.files").is_err());
    }

    #[test]
    fn database_names() {
        assert_eq!(database_of("core.db"), Some("core"));
        assert_eq!(database_of("extra.files"), Some("extra"));
        assert_eq!(database_of(".db"), None);
        assert_eq!(database_of("core.db.sig"), None);
    }
}
