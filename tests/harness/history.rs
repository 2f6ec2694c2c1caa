//! A synthetic history of a large sync database, for the update-list tests and benchmark: a
//! repository of `n` entries whose `desc` members look like Arch's (checksums, sizes, a
//! base64 signature of 400 characters, dependencies), and a `.files` database beside it; each
//! day a share of the entries gets a new version (new checksum and signature), a few are added
//! and a few removed. Written as repo-add writes them (gzip, a directory member per entry).
//! Deterministic: the same seed gives the same bytes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// One entry: its name and version, and what changes with each build.
#[derive(Clone)]
struct Entry {
    version: u32,
    seed: u64,
}

pub struct History {
    entries: BTreeMap<String, Entry>,
    rng: u64,
    next_name: u32,
}

fn step(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

const WORDS: &[&str] = &[
    "lib", "python", "perl", "qt6", "kde", "gnome", "xorg", "rust", "go", "node", "font", "tool",
    "utils", "data", "server", "client", "plugin", "theme", "docs", "core",
];

impl History {
    pub fn new(n: u32, seed: u64) -> History {
        let mut h = History {
            entries: BTreeMap::new(),
            rng: seed | 1,
            next_name: 0,
        };
        for _ in 0..n {
            h.add();
        }
        h
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn add(&mut self) {
        let i = self.next_name;
        self.next_name += 1;
        let a = WORDS[(step(&mut self.rng) % WORDS.len() as u64) as usize];
        let b = WORDS[(step(&mut self.rng) % WORDS.len() as u64) as usize];
        let seed = step(&mut self.rng);
        self.entries
            .insert(format!("{a}-{b}-{i}"), Entry { version: 1, seed });
    }

    /// One day (or refresh): `changed` entries rebuilt, `added` new, `removed` gone.
    pub fn advance(&mut self, changed: usize, added: usize, removed: usize) {
        for _ in 0..removed {
            let at = (step(&mut self.rng) % self.entries.len() as u64) as usize;
            if let Some(k) = self.entries.keys().nth(at).cloned() {
                self.entries.remove(&k);
            }
        }
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for _ in 0..changed {
            let at = (step(&mut self.rng) % names.len() as u64) as usize;
            let seed = step(&mut self.rng);
            if let Some(e) = self.entries.get_mut(&names[at]) {
                e.version += 1;
                e.seed = seed;
            }
        }
        for _ in 0..added {
            self.add();
        }
    }

    /// (directory, desc, files) of every entry.
    fn members(&self) -> Vec<(String, String, String)> {
        self.entries
            .iter()
            .map(|(name, e)| {
                let mut r = e.seed | 1;
                let mut hex = String::new();
                for _ in 0..4 {
                    hex.push_str(&format!("{:016x}", step(&mut r)));
                }
                let mut sig_bytes = Vec::new();
                for _ in 0..38 {
                    sig_bytes.extend_from_slice(&step(&mut r).to_le_bytes());
                }
                let sig = base64(&sig_bytes[..300]);
                let ver = format!("{}.{}-1", e.version, r % 10);
                let csize = 10_000 + step(&mut r) % 5_000_000;
                let dir = format!("{name}-{ver}");
                let desc = format!(
                    "%FILENAME%\n{name}-{ver}-x86_64.pkg.tar.zst\n\n%NAME%\n{name}\n\n%BASE%\n{name}\n\n\
                     %VERSION%\n{ver}\n\n%DESC%\nThe {name} package, built for the update-list tests\n\n\
                     %CSIZE%\n{csize}\n\n%ISIZE%\n{}\n\n%SHA256SUM%\n{hex}\n\n%PGPSIG%\n{sig}\n\n\
                     %URL%\nhttps://example.org/{name}\n\n%LICENSE%\nGPL-3.0-or-later\n\n%ARCH%\nx86_64\n\n\
                     %BUILDDATE%\n{}\n\n%PACKAGER%\nArch Builder <builder@example.org>\n\n\
                     %DEPENDS%\nglibc\n{}\n\n",
                    csize * 3,
                    1_700_000_000 + step(&mut r) % 10_000_000,
                    self.entries.keys().nth((r % 50) as usize).cloned().unwrap_or_default(),
                );
                let mut files = String::from("%FILES%\nusr/\nusr/share/\n");
                for k in 0..(8 + r % 16) {
                    files.push_str(&format!("usr/share/{name}/file-{k}.dat\n"));
                }
                (dir, desc, files)
            })
            .collect()
    }

    /// Writes `<repo>.db` and `<repo>.files` (gzip, as repo-add) into `dir`, with `mtime`.
    pub fn write(&self, dir: &Path, repo: &str, mtime: u64) {
        let members = self.members();
        for (suffix, with_files) in [(".db", false), (".files", true)] {
            let path = dir.join(format!("{repo}{suffix}"));
            let file = std::fs::File::create(&path).expect("create db");
            let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            let mut b = tar::Builder::new(gz);
            for (d, desc, files) in &members {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(mtime);
                b.append_data(&mut h, format!("{d}/"), std::io::empty())
                    .expect("dir");
                let mut put = |name: &str, text: &str| {
                    let mut h = tar::Header::new_ustar();
                    h.set_mode(0o644);
                    h.set_size(text.len() as u64);
                    h.set_mtime(mtime);
                    b.append_data(&mut h, format!("{d}/{name}"), text.as_bytes())
                        .expect("member");
                };
                put("desc", desc);
                if with_files {
                    put("files", files);
                }
            }
            let gz = b.into_inner().expect("tar");
            gz.finish().expect("gzip").flush().expect("flush");
            let f = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open db");
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
                .expect("mtime");
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The regular files of a database (any compression the tar and flate2 crates read, or
/// none): path -> content, to compare what pacman holds with what the mirror serves.
pub fn contents(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .read_to_end(&mut raw)
        .expect("read db");
    let plain = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    };
    let mut archive = tar::Archive::new(&plain[..]);
    let mut files = BTreeMap::new();
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().expect("path").display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("data");
        files.insert(name, data);
    }
    files
}
