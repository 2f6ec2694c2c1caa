//! The mirror as a source: the URL pacman gave (`%u`) or a repository's Server line, over
//! HTTP(S) with proxies, pacman's User-Agent, bounded redirects and `Range` for resuming; or a
//! `file://` URL read from disk with the same verification.
//!
//! A database pacman already holds is asked for only if it changed (`If-Modified-Since`, from
//! the copy in `<DBPath>/sync/`), as pacman's own downloader does: a 304 makes that copy the
//! answer, read like any other body.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use crate::cache::TrustedDir;
use crate::http::client::{Client, ClientOptions, Get, RangeError, Stream};
use crate::pacman::target::{Scheme, Target};
use crate::sources::error::SourceError;

/// The copy of a database (or of its signature) that pacman holds in `<DBPath>/sync/`: the
/// mirror is asked for the file only if it changed since this copy's mtime.
#[derive(Debug)]
pub struct Existing {
    file: File,
    len: u64,
    modified: SystemTime,
    /// How the copy was made, when pacxfer built it from an update list
    /// (`sources::updates`): a 304 then delivers it as `updates`.
    built: Option<String>,
}

impl Existing {
    /// Opens `<sync_dir>/<name>` when it is there and may be used: the directory and the file
    /// pass the trust rule (root's or this user's, written by nobody else), the file is regular
    /// (a link or a FIFO is refused, never followed or waited on), at most `cap` bytes, and its
    /// mtime is a server's (whole seconds, as set from `Last-Modified`).
    /// `Err` says why a file that is there is not used; `Ok(None)`: no such file.
    pub fn open(sync_dir: &Path, name: &str, cap: u64) -> Result<Option<Existing>, String> {
        let dir = match TrustedDir::open(sync_dir, false) {
            Ok(d) => d,
            Err(crate::cache::PlaceError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(file) = dir.open_file(name, cap).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        let modified = meta.modified().map_err(|e| e.to_string())?;
        // A server's time has whole seconds (pacman's own downloader and pacxfer set it from
        // Last-Modified). Any other mtime is when the copy was written here: asked against
        // it, a file the mirror changed in the same second, or a clock ahead of the mirror's,
        // would be answered 304 and an old database kept.
        let whole = modified
            .duration_since(std::time::UNIX_EPOCH)
            .is_ok_and(|d| d.subsec_nanos() == 0);
        if !whole {
            return Err("its mtime is not a time the mirror gave (it was written here, not set from Last-Modified)".into());
        }
        Ok(Some(Existing {
            file,
            len: meta.len(),
            modified,
            built: None,
        }))
    }

    /// The same copy, said to be built from an update list (`how`).
    pub fn built(self, how: String) -> Existing {
        Existing {
            built: Some(how),
            ..self
        }
    }

    /// How the copy was built from an update list, when it was.
    pub fn built_how(&self) -> Option<&str> {
        self.built.as_deref()
    }

    /// The copy's mtime: the `If-Modified-Since` sent.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    /// The copy as the body of a 304 answer, from its first byte.
    fn stream(&self, url: &str) -> Result<Stream, SourceError> {
        let mut file = self.file.try_clone().map_err(SourceError::Local)?;
        file.seek(SeekFrom::Start(0)).map_err(SourceError::Local)?;
        Ok(Stream {
            body: Box::new(file),
            start: 0,
            total: Some(self.len),
            url: url.to_string(),
            html: false,
            last_modified: Some(self.modified),
            not_modified: true,
        })
    }
}

/// The agent for one mirror URL: the proxy curl would pick for it, pacman's User-Agent.
pub fn client(
    config: &crate::config::Config,
    url: &str,
) -> Result<Client, crate::http::client::HttpError> {
    // pacman passes its environment through; a value that cannot be a header is not sent.
    let user_agent = std::env::var("HTTP_USER_AGENT")
        .ok()
        .and_then(|ua| crate::http::client::header_value(&ua))
        .unwrap_or_else(|| crate::USER_AGENT.to_string());
    Client::new(&ClientOptions {
        connect_timeout: config.mirror.connect_timeout,
        stall_timeout: config.mirror.stall_timeout,
        max_redirects: config.mirror.max_redirects,
        proxy: crate::http::client::proxy_for(url, |k| std::env::var(k).ok()),
        user_agent,
    })
}

/// Opens `url` from byte `from` on. `client` makes the agent for HTTP(S) URLs on first use.
/// With `existing` (a whole file asked for over HTTP), the mirror is asked only if its file
/// changed since that copy, and a 304 answer streams the copy.
pub fn open(
    url: &str,
    from: u64,
    existing: Option<&Existing>,
    client: impl FnOnce() -> Result<Client, crate::http::client::HttpError>,
) -> Result<Stream, SourceError> {
    let target = Target::parse(url).map_err(|e| SourceError::Other(e.to_string()))?;
    if target.scheme == Scheme::File {
        return open_file(&target, from);
    }
    let existing = existing.filter(|_| from == 0);
    let client = client().map_err(SourceError::Request)?;
    let reply = client
        .get(
            url,
            &Get {
                from,
                if_modified_since: existing.map(Existing::modified),
                ..Get::default()
            },
        )
        .map_err(SourceError::Request)?;
    match (reply.status, existing) {
        // The body of a 304 is never read: the copy pacman holds is the answer.
        (304, Some(copy)) => copy.stream(&reply.url),
        (304, None) => Err(SourceError::UnaskedNotModified),
        (200 | 206 | 416, _) => reply.into_stream(from).map_err(SourceError::Range),
        (status, _) => Err(SourceError::Status(status)),
    }
}

fn open_file(target: &Target, from: u64) -> Result<Stream, SourceError> {
    let path = target
        .file_path()
        .ok_or_else(|| SourceError::Other(format!("{} is not a local file URL", target.url)))?;
    // Never blocks on a FIFO; anything but a regular file is refused below.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(&path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SourceError::Status(404),
            _ => SourceError::Local(e),
        })?;
    let meta = file.metadata().map_err(SourceError::Local)?;
    if !meta.is_file() {
        return Err(SourceError::Other(format!("{path} is not a regular file")));
    }
    let total = meta.len();
    if from > total {
        return Err(SourceError::Range(RangeError::NotSatisfiable));
    }
    file.seek(SeekFrom::Start(from))
        .map_err(SourceError::Local)?;
    Ok(Stream {
        body: Box::new(file),
        start: from,
        total: Some(total),
        url: target.url.clone(),
        html: false,
        last_modified: meta.modified().ok(),
        not_modified: false,
    })
}
