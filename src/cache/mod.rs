//! Where pacxfer keeps what it remembers between calls (database indexes, pacman-conf answers,
//! the gateway's breaker state): the places, in order of preference, and how a file is written
//! there so that readers only ever see whole files.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where indexes may be read from and written to, in order of preference.
#[derive(Debug, Clone, Default)]
pub struct Places {
    dirs: Vec<PathBuf>,
}

impl Places {
    /// `configured`: a directory, or `None` for the defaults: `/var/cache/pacxfer`, then
    /// `$XDG_CACHE_HOME/pacxfer` (default `~/.cache/pacxfer`). An empty path turns indexes off.
    pub fn new(configured: Option<&Path>) -> Places {
        match configured {
            Some(p) if p.as_os_str().is_empty() => Places::default(),
            Some(p) => Places {
                dirs: vec![p.to_path_buf()],
            },
            None => {
                let mut dirs = vec![PathBuf::from("/var/cache/pacxfer")];
                let xdg = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .or_else(|| {
                        std::env::var_os("HOME")
                            .map(PathBuf::from)
                            .filter(|p| p.is_absolute())
                            .map(|h| h.join(".cache"))
                    });
                if let Some(x) = xdg {
                    dirs.push(x.join("pacxfer"));
                }
                Places { dirs }
            }
        }
    }

    /// Whether indexes are off.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether any place can be written now (creating it if needed).
    pub fn can_write(&self) -> bool {
        self.dirs.iter().any(|dir| {
            let probe = dir.join(format!(".probe-{}", std::process::id()));
            let ok = std::fs::create_dir_all(dir).is_ok()
                && std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&probe)
                    .is_ok();
            let _ = std::fs::remove_file(&probe);
            ok
        })
    }

    /// A file name for the state kept about `key` (a path or URL): `prefix-<hash>.suffix`.
    pub fn name_for(prefix: &str, key: &[u8], suffix: &str) -> String {
        let digest = Sha256::digest(key);
        format!("{prefix}-{}.{suffix}", hex::encode(&digest[..8]))
    }

    /// The file name of state kept about the file at `path`, whatever path names it.
    pub fn name_for_file(prefix: &str, path: &Path, suffix: &str) -> String {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Places::name_for(prefix, abs.as_os_str().as_encoded_bytes(), suffix)
    }

    /// Writes `bytes` as `name` in the first place that can be written, and says where.
    pub fn write_first(&self, name: &str, bytes: &[u8]) -> Option<PathBuf> {
        self.dirs
            .iter()
            .find(|dir| write_atomically(dir, name, bytes).is_ok())
            .map(|dir| dir.join(name))
    }
}

/// Writes `bytes` as `dir/name` through a temporary file and a rename. The file is readable by
/// everyone, so an index built by root serves pacman 7's unprivileged download user too.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_off_and_configured() {
        assert!(Places::new(Some(Path::new(""))).is_empty());
        let d = tempfile::tempdir().expect("tmp");
        assert!(Places::new(Some(&d.path().join("new"))).can_write());
        let file = d.path().join("file");
        std::fs::write(&file, b"").expect("write");
        assert!(!Places::new(Some(&file.join("sub"))).can_write());
        assert_eq!(
            Places::new(Some(Path::new("/x"))).dirs(),
            &[PathBuf::from("/x")]
        );
        assert_eq!(
            Places::new(None).dirs()[0],
            PathBuf::from("/var/cache/pacxfer")
        );
    }
}
