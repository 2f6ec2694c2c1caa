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
use crate::http::client::{Client, Get};
use crate::sources::mirror::Existing;
use crate::ui::progress::Progress;

/// The largest head taken.
const HEAD_MAX: u64 = 64 << 10;
/// The largest compressed step taken.
const STEP_FETCH_MAX: u64 = 64 << 20;
/// The most all the steps of one update may take, compressed.
const STEPS_FETCH_MAX: u64 = 256 << 20;
/// The most the composed changes of one update may hold in memory.
const COMPOSED_MAX: u64 = 512 << 20;
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

/// The update list of one database, through the node's gateway, until `deadline`.
pub struct List<'a> {
    config: &'a Config,
    client: Client,
    base: String,
    publisher: &'a str,
    repo: &'a str,
    name: &'a str,
    deadline: Instant,
}

impl<'a> List<'a> {
    pub fn new(
        config: &'a Config,
        publisher: &'a str,
        repo: &'a str,
        name: &'a str,
    ) -> Result<List<'a>, String> {
        Ok(List {
            config,
            client: gateway_client(config)?,
            base: base_url(config, publisher, repo, name),
            publisher,
            repo,
            name,
            deadline: Instant::now() + config.databases.timeout,
        })
    }

    /// The head, when it may be used, and the mirror's time it names.
    pub fn head(&self) -> Result<(Head, SystemTime), String> {
        usable_head(
            self.config,
            &self.client,
            &self.base,
            self.repo,
            self.name,
            self.deadline,
        )
    }
}

/// Builds `head`'s version of the list's database (`core.db`, `core.files`) in `place`, with
/// the mirror's time `modified`. `Err` says why not, in words for a note.
pub fn build(
    list: &List<'_>,
    place: &TrustedDir,
    head: Head,
    modified: SystemTime,
) -> Result<Built, String> {
    let (client, base, deadline) = (&list.client, list.base.as_str(), list.deadline);
    let (publisher, repo, name) = (list.publisher, list.repo, list.name);
    let arch = &list.config.databases.arch;
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
        // The same bytes may have a new time on the mirror (written again unchanged).
        set_mtime(place, &copy, modified);
        return done("already current".into(), 0);
    }
    let mut why_not_steps = String::from("no earlier version here");
    if let Some((have, version)) = held {
        let usable =
            have < head.version && have + 1 >= head.first_step && head.version - have <= STEPS_MAX;
        if usable {
            match steps(client, base, have + 1, &head, version, deadline).and_then(
                |(changes, fetched)| {
                    apply(place, &copy, &changes, head.current, modified).map(|_| fetched)
                },
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
        } else if have >= head.version {
            why_not_steps = format!(
                "the publisher's version {} is not after the {have} built here (it started again)",
                head.version
            );
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
        client,
        &format!("{base}/full"),
        place,
        &copy,
        head.current,
        modified,
        deadline,
    )
    .map_err(|e| format!("{why_not_steps}; the whole archive: {e}"))?;
    remember(head.version);
    done(format!("whole ({why_not_steps})"), fetched)
}

/// The local gateway, bounded as for IPFS downloads.
fn gateway_client(config: &Config) -> Result<Client, String> {
    crate::sources::gateway::http_client(config).map_err(|e| e.to_string())
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
    let age = now().saturating_sub(head.checked);
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

/// The body of `url` when it answers 200 before `deadline`, read no later than `deadline`.
fn open(
    client: &Client,
    url: &str,
    deadline: Instant,
) -> Result<Deadline<Box<dyn Read + Send>>, String> {
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
        200 => Ok(Deadline {
            inner: reply.body,
            deadline,
        }),
        404 => Err(format!(
            "{}: the publisher has no such file (404)",
            tail(url)
        )),
        other => Err(format!("{}: HTTP {other}", tail(url))),
    }
}

/// One small answer of at most `max` bytes; only a 200 is taken.
fn get(client: &Client, url: &str, max: u64, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    open(client, url, deadline)?
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
        checked: v["checked"]
            .as_i64()
            .filter(|t| *t >= 0)
            .ok_or_else(|| bad("no time"))?,
        mirror_modified: match &v["mirror_modified"] {
            serde_json::Value::Null => None,
            t => Some(
                t.as_i64()
                    .filter(|t| *t >= 0)
                    .ok_or_else(|| bad("a bad mirror time"))?,
            ),
        },
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
    // The first step alone: one that does not start from the version held here (a publisher
    // that started its count again) ends the chain before the others are fetched.
    let first = get(
        client,
        &format!("{base}/{}", canonical::step_path(from)),
        STEP_FETCH_MAX,
        deadline,
    )?;
    let first_step = chained(&first, from, held)?;
    let first_len = first.len() as u64;
    fetched[0] = Some(Ok(first));
    // What all the steps may hold at once, compressed: each fetch reserves its most before
    // it starts and gives back what it did not use.
    let budget = std::sync::atomic::AtomicU64::new(STEPS_FETCH_MAX.saturating_sub(first_len));
    let budget = &budget;
    let rest = numbers.len() - 1;
    let chunk = rest.div_ceil(PARALLEL).max(1);
    std::thread::scope(|s| {
        for (chunk_numbers, chunk_out) in numbers[1..]
            .chunks(chunk)
            .zip(fetched[1..].chunks_mut(chunk))
        {
            s.spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                for (n, slot) in chunk_numbers.iter().zip(chunk_out.iter_mut()) {
                    let reserved = budget.fetch_update(Relaxed, Relaxed, |left| {
                        (left > 0).then(|| left - left.min(STEP_FETCH_MAX))
                    });
                    let Ok(left) = reserved else {
                        *slot = Some(Err(format!(
                            "the steps hold more than {} MiB in all",
                            STEPS_FETCH_MAX >> 20
                        )));
                        continue;
                    };
                    let mine = left.min(STEP_FETCH_MAX);
                    let got = get(
                        client,
                        &format!("{base}/{}", canonical::step_path(*n)),
                        mine,
                        deadline,
                    );
                    let used = got.as_ref().map_or(0, |b| b.len() as u64);
                    budget.fetch_add(mine - used.min(mine), Relaxed);
                    *slot = Some(got);
                }
            });
        }
    });
    // The composed changes never need more than the result's size, plus one step's worth.
    let held_max = head
        .current
        .size
        .saturating_add(STEP_FETCH_MAX)
        .min(COMPOSED_MAX);
    let mut held_bytes = 0u64;
    let mut changes = Changes::new();
    let mut at = held;
    let mut bytes = 0u64;
    let mut first_step = Some(first_step);
    for (n, got) in numbers.iter().zip(fetched) {
        let got = got.unwrap_or_else(|| Err("not fetched".into()))?;
        bytes += got.len() as u64;
        let step = match first_step.take() {
            Some(step) => step,
            None => chained(&got, *n, at)?,
        };
        at = step.to;
        for (path, change) in step.changes {
            held_bytes += change.as_ref().map_or(0, |c| c.len() as u64) + path.len() as u64;
            changes.insert(path, change);
        }
        if held_bytes > held_max {
            return Err(format!(
                "the steps hold more than {held_max} bytes of changes (the whole archive is fetched instead)"
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

/// Step `n` from its bytes, when it starts from `at` (the version before it).
fn chained(bytes: &[u8], n: u64, at: Version) -> Result<canonical::Step, String> {
    let step = canonical::decode(bytes).map_err(|e| format!("step {n}: {e}"))?;
    if step.from != at {
        return Err(format!(
            "step {n} starts from {}, not from the version before it ({})",
            step.from.hex(),
            at.hex()
        ));
    }
    Ok(step)
}

/// Merges the kept copy with `changes` into a new copy, kept only when it is `want`.
fn apply(
    place: &TrustedDir,
    copy: &str,
    changes: &Changes,
    want: Version,
    modified: SystemTime,
) -> Result<(), String> {
    let base = place
        .open_file(copy, DB_MAX)
        .map_err(|e| e.to_string())?
        .ok_or("the copy went away")?;
    place
        .write_with(copy, |file| {
            let out = io::BufWriter::with_capacity(1 << 20, &mut *file);
            let (mut out, got) =
                canonical::apply(io::BufReader::with_capacity(1 << 20, base), changes, out)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            out.flush()?;
            drop(out);
            if got != want {
                return Err(io::Error::other(format!(
                    "the steps made {got}, not the publisher's version {want}"
                )));
            }
            // The mirror's time, before the copy takes its name.
            file.set_modified(modified)
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
    modified: SystemTime,
    deadline: Instant,
) -> Result<u64, String> {
    let counted = Counted {
        inner: open(client, url, deadline)?.take(want.size.saturating_add(1 << 20)),
        n: 0,
    };
    let mut fetched = 0u64;
    place
        .write_with(copy, |file| {
            let mut decoder = zstd::stream::read::Decoder::new(counted)?;
            let mut hasher = Sha256::new();
            let mut out = io::BufWriter::with_capacity(1 << 20, &mut *file);
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
            drop(out);
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
            file.set_modified(modified)
        })
        .map_err(|e| e.to_string())?;
    Ok(fetched)
}

/// Ends a body that is still arriving at `deadline` (`[databases] timeout` bounds the whole
/// update, not only the wait for each read).
struct Deadline<R> {
    inner: R,
    deadline: Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "out of time ([databases] timeout)",
            ));
        }
        self.inner.read(buf)
    }
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
/// (`[databases]`), asked of the mirror at `mirror_url`: the copy built from the list when it
/// is newer than `own` (the copy pacman or prefetch holds) and is exactly what the mirror has
/// now (its `Last-Modified` is the one the publisher recorded), to be sent to the mirror as
/// `If-Modified-Since` (a 304 hands it on as `updates`, saying how it was built). Otherwise `own`, as
/// without an update list: when there is no `own` (a first sync, or `pacman -Syy`, which
/// removes it: a forced refresh stays forced), when the gateway is not this machine's (only
/// a node of this machine checks the publisher's signature and the blocks for pacxfer), when
/// `db_signatures(repo)` (pacman checks the repository's database signatures) and the mirror
/// has a signature for it, and on any failure.
pub fn newer_copy(
    config: &Config,
    places: &crate::cache::Places,
    name: &str,
    own: Option<Existing>,
    mirror_url: &str,
    db_signatures: &dyn Fn(&str) -> bool,
    progress: &Progress,
) -> Option<Existing> {
    let Some(repo) = database_of(name) else {
        return own;
    };
    let Some(publisher) = config.databases.publisher_for(repo) else {
        return own;
    };
    let not = |why: &str| {
        progress.info(&format!(
            "{name} not through the update list: {why}; asking the mirror as before"
        ))
    };
    let Some(own_copy) = own.as_ref() else {
        progress.note(&format!(
            "{name} not through the update list: no copy here (a first sync or a forced one)"
        ));
        return own;
    };
    if !is_loopback_url(config.gateway_base()) {
        not("[gateway] url is not on this machine, and only a node of this machine is trusted to check the publisher's signature");
        return own;
    }
    let lower = mirror_url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return own;
    }
    let Some(place) = places.writable() else {
        not("no cache directory to build it in");
        return own;
    };
    let list = match List::new(config, publisher, repo, name) {
        Ok(l) => l,
        Err(why) => {
            not(&why);
            return own;
        }
    };
    let (head, modified) = match list.head() {
        Ok(h) => h,
        Err(why) => {
            not(&why);
            return own;
        }
    };
    if own_copy.modified() >= modified {
        progress.note(&format!(
            "{name}: the copy here is as new as version {} of the update list",
            head.version
        ));
        return own;
    }
    // The mirror's own answer: a copy of the publisher's version only when the mirror has
    // exactly that version now (an older one would list packages it does not have yet), and
    // no signature pacman would check against other bytes.
    match mirror_time(config, mirror_url) {
        Ok(Some(t)) if t == modified => {}
        Ok(Some(_)) => {
            not("the mirror's copy is not the publisher's version (its time differs)");
            return own;
        }
        Ok(None) => {
            not("the mirror gives no Last-Modified to compare with");
            return own;
        }
        Err(why) => {
            not(&why);
            return own;
        }
    }
    if db_signatures(repo) && mirror_time(config, &format!("{mirror_url}.sig")).is_ok() {
        not("the mirror signs it, and pacman checks that signature against the exact bytes");
        return own;
    }
    let built = match build(&list, &place, head, modified) {
        Ok(b) => b,
        Err(why) => {
            not(&why);
            return own;
        }
    };
    let how = format!(
        "update list version {} ({}, {} through IPFS)",
        built.head.version,
        built.how,
        crate::ui::progress::size(built.fetched)
    );
    match Existing::open(&built.place, &built.name, DB_MAX) {
        Ok(Some(copy)) => Some(copy.built(how)),
        Ok(None) => own,
        Err(why) => {
            progress.warn(&format!(
                "{name}: the copy built from the update list cannot be used: {why}"
            ));
            own
        }
    }
}

/// The `Last-Modified` the mirror gives `url` (a HEAD); `Err` when it does not answer 200.
fn mirror_time(config: &Config, url: &str) -> Result<Option<SystemTime>, String> {
    let client = crate::sources::mirror::client(config, url).map_err(|e| e.to_string())?;
    let reply = client
        .get(
            url,
            &Get {
                head: true,
                ..Get::default()
            },
        )
        .map_err(|e| format!("the mirror: {e}"))?;
    if reply.status != 200 {
        return Err(format!("the mirror answered HTTP {}", reply.status));
    }
    Ok(reply.last_modified)
}

/// Whether `url`'s host is this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    fn only_a_gateway_on_this_machine_is_trusted() {
        for yes in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "http://127.3.2.1",
        ] {
            assert!(is_loopback_url(yes), "{yes}");
        }
        for no in [
            "http://10.0.0.2:8080",
            "http://gateway.example",
            "http://127.0.0.1.example:80",
            "http://[fe80::1]:8080",
        ] {
            assert!(!is_loopback_url(no), "{no}");
        }
    }

    #[test]
    fn database_names() {
        assert_eq!(database_of("core.db"), Some("core"));
        assert_eq!(database_of("extra.files"), Some("extra"));
        assert_eq!(database_of(".db"), None);
        assert_eq!(database_of("core.db.sig"), None);
    }
}
