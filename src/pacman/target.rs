//! What pacman asked for: the URL (`%u`), split into what the rest of pacxfer needs: the
//! scheme, the file name at its end (the key into the sync databases), whether it is a
//! detached signature, and the path segments that may name a repository.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::pacman::names::is_plain_filename;

/// How the bytes of a URL are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// A local repository: `file:///path/to/file`.
    File,
}

/// A parsed download URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given, used as is for the mirror.
    pub url: String,
    pub scheme: Scheme,
    /// The last path segment, percent-decoded.
    pub filename: String,
    /// The file the database lists: `filename` without `.sig` for a signature.
    pub listed_name: String,
    /// Whether this is a detached signature (`<file>.sig`).
    pub is_sig: bool,
    /// The decoded path segments before the file name (`core`, `os`, `x86_64`, ...).
    pub dirs: Vec<String>,
}

/// A URL pacxfer cannot download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not `http://`, `https://` or `file://`.
    Scheme(String),
    /// No host after `http(s)://`.
    NoHost(String),
    /// No file name at the end of the path.
    NoFilename(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Scheme(u) => write!(
                f,
                "unsupported URL {u:?}: pacxfer downloads http://, https:// and file:// URLs"
            ),
            TargetError::NoHost(u) => write!(f, "URL {u:?} has no host"),
            TargetError::NoFilename(u) => {
                write!(f, "URL {u:?} does not end in a file name")
            }
        }
    }
}

impl std::error::Error for TargetError {}

/// The file a name refers to in the databases, and whether the name is its detached
/// signature (`<file>.sig`).
pub fn split_sig(name: &str) -> (&str, bool) {
    match name.strip_suffix(".sig") {
        Some(base) if !base.is_empty() => (base, true),
        _ => (name, false),
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| TargetError::Scheme(url.to_string()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "file" => Scheme::File,
            _ => return Err(TargetError::Scheme(url.to_string())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if scheme != Scheme::File && authority.is_empty() {
            return Err(TargetError::NoHost(url.to_string()));
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        if path.ends_with('/') {
            return Err(TargetError::NoFilename(url.to_string()));
        }
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let filename = segments
            .pop()
            .filter(|f| is_plain_filename(f))
            .ok_or_else(|| TargetError::NoFilename(url.to_string()))?;
        let (listed_name, is_sig) = split_sig(&filename);
        let listed_name = listed_name.to_string();
        Ok(Target {
            url: url.to_string(),
            scheme,
            filename,
            listed_name,
            is_sig,
            dirs: segments,
        })
    }

    /// The local path of a `file://` URL.
    pub fn file_path(&self) -> Option<String> {
        if self.scheme != Scheme::File {
            return None;
        }
        let rest = self.url.split_once("://")?.1;
        // file://host/path: only an empty host or localhost is local.
        let path = match rest.find('/') {
            Some(i) => &rest[i..],
            None => return None,
        };
        let path = path.split(['?', '#']).next().unwrap_or(path);
        Some(percent_decode_str(path).decode_utf8_lossy().into_owned())
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::File => "file",
        })
    }
}

/// Files that no database lists as a package, so no lookup is needed.
pub fn never_listed(name: &str) -> bool {
    name.ends_with(".db")
        || name.ends_with(".files")
        || name.contains(".db.tar")
        || name.contains(".files.tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacman_urls() {
        let t =
            Target::parse("https://mirror.example/core/os/x86_64/gtk+foo-1:2.0-1-any.pkg.tar.zst")
                .expect("valid");
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.filename, "gtk+foo-1:2.0-1-any.pkg.tar.zst");
        assert!(!t.is_sig);
        assert_eq!(t.dirs, vec!["core", "os", "x86_64"]);
    }

    #[test]
    fn signatures_find_their_package() {
        let t = Target::parse("http://m/extra/os/x86_64/a-1-1-any.pkg.tar.zst.sig").expect("ok");
        assert!(t.is_sig);
        assert_eq!(t.listed_name, "a-1-1-any.pkg.tar.zst");
    }

    #[test]
    fn percent_encoded_names_are_decoded() {
        let t = Target::parse("http://m/r/a%2Bb-1-1-any.pkg.tar.zst?x=1").expect("ok");
        assert_eq!(t.filename, "a+b-1-1-any.pkg.tar.zst");
    }

    #[test]
    fn file_urls() {
        let t = Target::parse("file:///srv/repo/core.db").expect("ok");
        assert_eq!(t.scheme, Scheme::File);
        assert_eq!(t.file_path().as_deref(), Some("/srv/repo/core.db"));
    }

    #[test]
    fn bad_urls() {
        assert!(matches!(
            Target::parse("ftp://m/a"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("/just/a/path"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("http:///a"),
            Err(TargetError::NoHost(_))
        ));
        assert!(matches!(
            Target::parse("http://m/dir/"),
            Err(TargetError::NoFilename(_))
        ));
        assert!(matches!(
            Target::parse("http://m/dir/.."),
            Err(TargetError::NoFilename(_))
        ));
        assert!(matches!(
            Target::parse("http://m/a%2Fb"),
            Err(TargetError::NoFilename(_))
        ));
    }
}
