//! Where pacxfer keeps what it remembers between calls (database indexes, pacman-conf answers,
//! the gateway's breaker state): the places, in order of preference, each used only when it
//! passes the trust rule of [`trust`], and read and written only through it. What is kept
//! there for a transfer (partial downloads, the download log) is the transfer's own
//! (`transfer::partial`, `transfer::log`). Uses nothing of pacxfer's.

pub mod trust;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use trust::{PlaceError, TrustedDir};

/// The system's cache place (made by the tmpfiles.d entry, owned by pacman 7's DownloadUser).
pub const SYSTEM_DIR: &str = "/var/cache/pacxfer";

/// A user's XDG base directory: `$VAR` when absolute, else `$HOME/<fallback>`.
pub fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(fallback))
        })
}

/// Where indexes may be read from and written to, in order of preference.
#[derive(Debug, Clone, Default)]
pub struct Places {
    dirs: Vec<PathBuf>,
}

impl Places {
    /// `configured`: a directory, or `None` for the defaults: `/var/cache/pacxfer`, then
    /// `$XDG_CACHE_HOME/pacxfer` (default `~/.cache/pacxfer`; for root always root's own home
    /// from the password database). An empty path turns indexes off.
    pub fn new(configured: Option<&Path>) -> Places {
        match configured {
            Some(p) if p.as_os_str().is_empty() => Places::default(),
            Some(p) => Places {
                dirs: vec![p.to_path_buf()],
            },
            None => {
                let mut dirs = vec![PathBuf::from(SYSTEM_DIR)];
                // Root never takes its cache directory from the environment: `su` and
                // `sudo -E` can carry a user's XDG_CACHE_HOME or HOME into it. It uses the
                // home directory the password database gives root.
                let own = if trust::euid() == 0 {
                    trust::home_of_root().map(|h| h.join(".cache"))
                } else {
                    xdg_dir("XDG_CACHE_HOME", ".cache")
                };
                if let Some(x) = own {
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

    /// The places that pass the trust rule now and exist, in order.
    pub fn trusted(&self) -> Vec<TrustedDir> {
        self.dirs
            .iter()
            .filter_map(|d| TrustedDir::open(d, false).ok())
            .collect()
    }

    /// Why each place that is not used now is not, for `-v`.
    pub fn refusals(&self) -> Vec<String> {
        self.dirs
            .iter()
            .filter_map(|d| match TrustedDir::open(d, false) {
                Err(PlaceError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => Some(e.to_string()),
                Ok(_) => None,
            })
            .collect()
    }

    /// The first place that passes the trust rule and can be written now, created if needed.
    pub fn writable(&self) -> Option<TrustedDir> {
        self.dirs
            .iter()
            .filter_map(|d| TrustedDir::open(d, true).ok())
            .find(TrustedDir::writable)
    }

    /// Whether any place can be written now (creating it if needed).
    pub fn can_write(&self) -> bool {
        self.writable().is_some()
    }

    /// The contents of `name` in the first place holding a trusted copy of at most `max`
    /// bytes.
    pub fn read_first(&self, name: &str, max: u64) -> Option<Vec<u8>> {
        self.trusted()
            .iter()
            .find_map(|d| d.read(name, max).ok().flatten())
    }

    /// Removes `name` from every trusted place.
    pub fn remove_everywhere(&self, name: &str) {
        for d in self.trusted() {
            let _ = d.remove(name);
        }
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
            .filter_map(|d| TrustedDir::open(d, true).ok())
            .find_map(|d| d.write(name, bytes).ok().map(|()| d.path().join(name)))
    }
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
