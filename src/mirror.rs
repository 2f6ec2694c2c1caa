//! The mirror as a source: the URL pacman gave (`%u`) or a repository's Server line, over
//! HTTP(S) with proxies, pacman's User-Agent, bounded redirects and `Range` for resuming; or a
//! `file://` URL read from disk with the same verification.

use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

use crate::download::Failure;
use crate::http::{Client, ClientOptions, Get, RangeError, Stream};
use crate::target::{Scheme, Target};

/// The agent for one mirror URL: the proxy curl would pick for it, pacman's User-Agent.
pub fn client(config: &crate::config::Config, url: &str) -> Result<Client, crate::http::HttpError> {
    // pacman passes its environment through; a value that cannot be a header is not sent.
    let user_agent = std::env::var("HTTP_USER_AGENT")
        .ok()
        .and_then(|ua| crate::http::header_value(&ua))
        .unwrap_or_else(|| crate::USER_AGENT.to_string());
    Client::new(&ClientOptions {
        connect_timeout: config.mirror.connect_timeout,
        stall_timeout: config.mirror.stall_timeout,
        max_redirects: config.mirror.max_redirects,
        proxy: crate::http::proxy_for(url, |k| std::env::var(k).ok()),
        user_agent,
    })
}

/// Opens `url` from byte `from` on. `client` makes the agent for HTTP(S) URLs on first use.
pub fn open(
    url: &str,
    from: u64,
    client: impl FnOnce() -> Result<Client, crate::http::HttpError>,
) -> Result<Stream, Failure> {
    let target = Target::parse(url).map_err(|e| Failure::Other(e.to_string()))?;
    if target.scheme == Scheme::File {
        return open_file(&target, from);
    }
    let client = client().map_err(Failure::Request)?;
    let reply = client
        .get(
            url,
            &Get {
                from,
                ..Get::default()
            },
        )
        .map_err(Failure::Request)?;
    match reply.status {
        200 | 206 | 416 => reply.into_stream(from).map_err(Failure::Range),
        status => Err(Failure::Status(status)),
    }
}

fn open_file(target: &Target, from: u64) -> Result<Stream, Failure> {
    let path = target
        .file_path()
        .ok_or_else(|| Failure::Other(format!("{} is not a local file URL", target.url)))?;
    // Never blocks on a FIFO; anything but a regular file is refused below.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(&path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Failure::Status(404),
            _ => Failure::Local(e),
        })?;
    let meta = file.metadata().map_err(Failure::Local)?;
    if !meta.is_file() {
        return Err(Failure::Other(format!("{path} is not a regular file")));
    }
    let total = meta.len();
    if from > total {
        return Err(Failure::Range(RangeError::NotSatisfiable));
    }
    file.seek(SeekFrom::Start(from)).map_err(Failure::Local)?;
    Ok(Stream {
        body: Box::new(file),
        start: from,
        total: Some(total),
        url: target.url.clone(),
        html: false,
    })
}
