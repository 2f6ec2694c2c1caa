//! Remembered `pacman-conf` answers. Asking `pacman-conf` costs a process start (~5 ms); a
//! `lookup` or a call without `dbpath` configured would pay it on every one of pacman's calls.
//! Answers are kept in the cache places together with the identity (device, inode, size,
//! mtime) of every file they depend on: pacman.conf, each file its `Include` lines name
//! (recursively), and the directory a glob pattern reads. Any change there, and the answers are
//! asked again. A configuration this reader cannot follow (a glob in a directory part) is
//! never remembered.
//!
//! A question pacman-conf refused (it ran and failed, such as `--repo X Server` for a
//! repository pacman.conf no longer lists while its database is still in sync/) is remembered
//! too, under the same rule, so that it does not cost a process on every call either; one that
//! pacman-conf could not be run for, or did not answer in time, is not.
//!
//! File format, one record per line, fields separated by TAB, values by US (0x1f):
//! `pacxfer-conf-2`, then `dep PATH IDENTITY|missing` lines, then `ans ARGS LINES` and
//! `err ARGS MESSAGE` lines, then `crc CRC32` of everything before it.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cache::Places;

const TAG: &str = "pacxfer-conf-2";
/// The longest refusal message kept.
const MESSAGE_MAX: usize = 1000;
const SEP: char = '\u{1f}';
/// The largest answers file read.
const FILE_MAX: u64 = 1 << 20;

/// The answers remembered for one pacman.conf.
pub struct ConfCache {
    places: Places,
    name: String,
    /// The files the answers depend on, and their identities now; `None` when they cannot be
    /// worked out (then nothing is remembered).
    deps: Option<Vec<(PathBuf, String)>>,
    answers: BTreeMap<String, Vec<String>>,
    /// Questions pacman-conf refused, and what it said.
    refusals: BTreeMap<String, String>,
}

fn identity(meta: &Metadata) -> String {
    format!(
        "{} {} {} {} {}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

fn identity_of(path: &Path) -> String {
    std::fs::metadata(path)
        .map(|m| identity(&m))
        .unwrap_or_else(|_| "missing".to_string())
}

/// Whether `name` matches a glob `pattern` of `*`, `?` and plain characters (a `[` set makes
/// the pattern unsupported: `None`).
fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    if pattern.contains('[') {
        return None;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return Some(false);
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    Some(pi == p.len())
}

/// A configuration file's text: a regular file (a FIFO is never waited on) of at most 1 MiB.
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(1 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The files (and glob directories) a pacman.conf depends on, or `None` when they cannot be
/// followed.
pub fn dependencies(conf: &Path) -> Option<Vec<PathBuf>> {
    let mut deps = Vec::new();
    let mut queue = vec![(conf.to_path_buf(), 0)];
    while let Some((file, depth)) = queue.pop() {
        if depth > 10 || deps.contains(&file) {
            continue;
        }
        deps.push(file.clone());
        let Some(text) = read_small(&file) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.trim() != "Include" {
                continue;
            }
            let pattern = PathBuf::from(value.trim());
            let name = pattern.file_name()?.to_str()?.to_string();
            let dir = pattern.parent()?.to_path_buf();
            if dir.to_str()?.contains(['*', '?', '[']) {
                return None;
            }
            if !name.contains(['*', '?', '[']) {
                queue.push((pattern, depth + 1));
                continue;
            }
            deps.push(dir.clone());
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let entry_name = entry.file_name();
                    if glob_match(&name, &entry_name.to_string_lossy())? {
                        queue.push((entry.path(), depth + 1));
                    }
                }
            }
        }
    }
    Some(deps)
}

impl ConfCache {
    /// Loads what is remembered for `conf`, if it is still current. Only a file that passes the
    /// trust rule is read (see `cache::trust`), and every answer is checked again by
    /// `PacmanConf` before it is used.
    pub fn load(places: &Places, conf: &Path) -> ConfCache {
        let abs = std::fs::canonicalize(conf).unwrap_or_else(|_| conf.to_path_buf());
        let name = Places::name_for("pacman-conf", abs.as_os_str().as_encoded_bytes(), "cache");
        let deps = if places.is_empty() {
            None
        } else {
            dependencies(&abs).map(|files| {
                files
                    .into_iter()
                    .map(|p| {
                        let id = identity_of(&p);
                        (p, id)
                    })
                    .collect()
            })
        };
        let mut cache = ConfCache {
            places: places.clone(),
            name,
            deps,
            answers: BTreeMap::new(),
            refusals: BTreeMap::new(),
        };
        if let Some(deps) = &cache.deps {
            for dir in places.trusted() {
                let Ok(Some(bytes)) = dir.read(&cache.name, FILE_MAX) else {
                    continue;
                };
                if let Some((answers, refusals)) = read(&bytes, deps) {
                    cache.answers = answers;
                    cache.refusals = refusals;
                    break;
                }
            }
        }
        cache
    }

    /// What pacman-conf said when it refused `args`, if it did under this configuration.
    pub fn refusal(&self, args: &[&str]) -> Option<&String> {
        self.refusals.get(&args.join(&SEP.to_string()))
    }

    /// Remembers that pacman-conf refused `args`, saying `message` (control characters become
    /// spaces; at most 1000 characters are kept).
    pub fn put_refusal(&mut self, args: &[&str], message: &str) {
        if self.deps.is_none() {
            return;
        }
        let message: String = message
            .chars()
            .map(|c| if c.is_control() || c == SEP { ' ' } else { c })
            .take(MESSAGE_MAX)
            .collect();
        let key = args.join(&SEP.to_string());
        self.answers.remove(&key);
        self.refusals.insert(key, message);
        self.save();
    }

    /// A remembered answer to `args`.
    pub fn get(&self, args: &[&str]) -> Option<&Vec<String>> {
        self.answers.get(&args.join(&SEP.to_string()))
    }

    /// Remembers an answer (and writes the file) when the configuration can be followed.
    pub fn put(&mut self, args: &[&str], lines: &[String]) {
        if self.deps.is_none() {
            return;
        }
        let key = args.join(&SEP.to_string());
        self.refusals.remove(&key);
        self.answers.insert(key, lines.to_vec());
        self.save();
    }

    /// Writes what is remembered, unless a value cannot be written in the format.
    fn save(&self) {
        let Some(deps) = &self.deps else { return };
        let mut text = format!("{TAG}\n");
        for (path, id) in deps {
            let Some(p) = path.to_str() else { return };
            if p.contains(['\t', '\n']) {
                return;
            }
            text.push_str(&format!("dep\t{p}\t{id}\n"));
        }
        for (key, lines) in &self.answers {
            if lines.iter().any(|l| l.contains(['\n', '\t', SEP])) {
                return;
            }
            let joined = lines.join(&SEP.to_string());
            text.push_str(&format!("ans\t{key}\t{joined}\n"));
        }
        for (key, message) in &self.refusals {
            if key.contains(['\n', '\t']) || message.contains(['\n', '\t']) {
                return;
            }
            text.push_str(&format!("err\t{key}\t{message}\n"));
        }
        let crc = crc32fast::hash(text.as_bytes());
        text.push_str(&format!("crc\t{crc}\n"));
        self.places.write_first(&self.name, text.as_bytes());
    }
}

/// Remembered answers and refusals.
type Remembered = (BTreeMap<String, Vec<String>>, BTreeMap<String, String>);

/// Reads a cache file whose dependencies are exactly `deps` as they are now.
fn read(bytes: &[u8], deps: &[(PathBuf, String)]) -> Option<Remembered> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (body, crc_line) = text.trim_end_matches('\n').rsplit_once('\n')?;
    let crc: u32 = crc_line.strip_prefix("crc\t")?.parse().ok()?;
    let body = format!("{body}\n");
    if crc32fast::hash(body.as_bytes()) != crc {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != TAG {
        return None;
    }
    let mut seen_deps = Vec::new();
    let mut answers = BTreeMap::new();
    let mut refusals = BTreeMap::new();
    for line in lines {
        let mut f = line.splitn(3, '\t');
        match (f.next()?, f.next()?, f.next()) {
            ("dep", p, Some(id)) => seen_deps.push((PathBuf::from(p), id.to_string())),
            ("ans", key, Some(value)) => {
                let values = if value.is_empty() {
                    Vec::new()
                } else {
                    value.split(SEP).map(str::to_string).collect()
                };
                answers.insert(key.to_string(), values);
            }
            ("err", key, Some(message)) => {
                refusals.insert(key.to_string(), message.to_string());
            }
            _ => return None,
        }
    }
    (seen_deps == deps).then_some((answers, refusals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert_eq!(glob_match("*.conf", "extra.conf"), Some(true));
        assert_eq!(glob_match("*.conf", "extra.conf.bak"), Some(false));
        assert_eq!(glob_match("mirror?ist", "mirrorlist"), Some(true));
        assert_eq!(glob_match("*", ""), Some(true));
        assert_eq!(glob_match("[ab].conf", "a.conf"), None);
    }

    #[test]
    fn answers_survive_until_a_dependency_changes() {
        let d = tempfile::tempdir().expect("tmp");
        let conf = d.path().join("pacman.conf");
        let inc = d.path().join("repos.d");
        std::fs::create_dir_all(&inc).expect("mkdir");
        std::fs::write(
            &conf,
            format!("[options]\nInclude = {}/*.conf\n", inc.display()),
        )
        .expect("write");
        std::fs::write(inc.join("a.conf"), "[a]\nServer = http://x\n").expect("write");
        let places = Places::new(Some(&d.path().join("cache")));

        let mut c = ConfCache::load(&places, &conf);
        assert!(c.get(&["--repo-list"]).is_none());
        c.put(&["--repo-list"], &["a".to_string()]);
        c.put(&["--repo", "a", "Server"], &["http://x".to_string()]);
        let c = ConfCache::load(&places, &conf);
        assert_eq!(c.get(&["--repo-list"]), Some(&vec!["a".to_string()]));
        assert_eq!(
            c.get(&["--repo", "a", "Server"]),
            Some(&vec!["http://x".to_string()])
        );

        // A new file matching the glob: everything is asked again.
        std::fs::write(inc.join("b.conf"), "[b]\n").expect("write");
        let c = ConfCache::load(&places, &conf);
        assert!(c.get(&["--repo-list"]).is_none());
    }

    #[test]
    fn refusals_are_remembered_under_the_same_rule() {
        let d = tempfile::tempdir().expect("tmp");
        let conf = d.path().join("pacman.conf");
        let inc = d.path().join("mirrorlist");
        std::fs::write(&conf, format!("[a]\nInclude = {}\n", inc.display())).expect("write");
        std::fs::write(&inc, "Server = http://x\n").expect("write");
        let places = Places::new(Some(&d.path().join("cache")));
        let gone = ["--repo", "gone", "Server"];

        let mut c = ConfCache::load(&places, &conf);
        c.put(&["--repo-list"], &["a".to_string()]);
        c.put_refusal(&gone, "error: repo 'gone'\tnot configured\n");
        let c = ConfCache::load(&places, &conf);
        assert_eq!(
            c.refusal(&gone).map(String::as_str),
            Some("error: repo 'gone' not configured ")
        );
        assert_eq!(c.get(&["--repo-list"]), Some(&vec!["a".to_string()]));
        assert!(c.get(&gone).is_none());

        // An answer replaces a refusal.
        let mut c = ConfCache::load(&places, &conf);
        c.put(&gone, &["http://y".to_string()]);
        let c = ConfCache::load(&places, &conf);
        assert!(c.refusal(&gone).is_none());
        assert_eq!(c.get(&gone), Some(&vec!["http://y".to_string()]));

        // A changed Include file: the refusal is forgotten with the answers.
        let mut c = ConfCache::load(&places, &conf);
        c.put_refusal(&gone, "not configured");
        std::fs::write(&inc, "Server = http://z\n").expect("write");
        let c = ConfCache::load(&places, &conf);
        assert!(c.refusal(&gone).is_none());
    }

    #[test]
    fn damaged_files_and_unfollowable_configs_are_not_used() {
        let d = tempfile::tempdir().expect("tmp");
        let conf = d.path().join("pacman.conf");
        std::fs::write(&conf, "[options]\n").expect("write");
        let places = Places::new(Some(&d.path().join("cache")));
        let mut c = ConfCache::load(&places, &conf);
        c.put(&["DBPath"], &["/var/lib/pacman/".to_string()]);
        let file = d.path().join("cache").join(&c.name);
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, text.replace("/var/lib", "/tmp/lib")).expect("damage");
        assert!(ConfCache::load(&places, &conf).get(&["DBPath"]).is_none());

        std::fs::write(&conf, "Include = /etc/*/mirrorlist\n").expect("write");
        let mut c = ConfCache::load(&places, &conf);
        c.put(&["DBPath"], &["/x".to_string()]);
        assert!(ConfCache::load(&places, &conf).get(&["DBPath"]).is_none());
    }
}
