//! HTTP for both kinds of source: one blocking `ureq` agent per kind, a GET that may ask for a
//! byte range, and the answer reduced to what the download loop needs (status, lengths, a body
//! reader). It does not decide what a status means for a source; `gateway` and `mirror` do.
//!
//! Timeouts follow pacman's downloader: a connect timeout, then a per-read timeout so that a
//! transfer that sends nothing for `stall_timeout` ends, however long the whole file takes.

use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use ureq::config::Config as UreqConfig;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;

/// How one agent behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// No byte for this long (while waiting for the headers or in the body) ends the request.
    pub stall_timeout: Duration,
    pub max_redirects: u32,
    /// The proxy to go through, as a URL; `None` for a direct connection.
    pub proxy: Option<String>,
    pub user_agent: String,
}

/// One agent: keep it for every request of a process (a clone shares its connections).
#[derive(Clone)]
pub struct Client {
    agent: Agent,
    /// For plain `http://` through an HTTP proxy: the proxy asked in the absolute form, as
    /// curl does (see `proxy`); `https://` goes through `agent`, with `CONNECT`.
    plain: Option<Agent>,
    connect_timeout: Duration,
    stall_timeout: Duration,
    max_redirects: u32,
}

/// What one GET asks for beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct Get {
    /// Ask for the bytes from this offset on (`Range: bytes=N-`) when above 0.
    pub from: u64,
    /// Send `Cache-Control: only-if-cached`: an IPFS gateway then answers 412 instead of
    /// fetching from the network.
    pub only_if_cached: bool,
    /// How long to wait for the response headers, instead of the stall timeout.
    pub response_timeout: Option<Duration>,
    /// Send `If-Modified-Since`: a server whose file has not changed since then answers 304.
    pub if_modified_since: Option<std::time::SystemTime>,
    /// Ask with HEAD: the status and headers only.
    pub head: bool,
}

/// A response, reduced.
pub struct Reply {
    pub status: u16,
    /// `Content-Length`, when given.
    pub content_length: Option<u64>,
    /// `Content-Range: bytes START-END/TOTAL`, when given and readable.
    pub content_range: Option<ContentRange>,
    /// The URL that answered, after redirects.
    pub url: String,
    /// `Content-Type` names an HTML page.
    pub html: bool,
    /// `Last-Modified`, when given and readable.
    pub last_modified: Option<std::time::SystemTime>,
    pub body: Box<dyn Read + Send>,
}

/// A parsed `Content-Range` of a 206 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

/// Why a request brought no response.
#[derive(Debug)]
pub enum HttpError {
    /// No connection: refused, unreachable, name not found, connect timeout, TLS.
    Connect(String),
    /// Connected, but no response headers in time.
    Timeout(Duration),
    /// Redirected more often than allowed.
    TooManyRedirects(u32),
    /// Anything else (protocol error, a bad URL, a reset).
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(why) => write!(f, "cannot connect: {why}"),
            HttpError::Timeout(d) => {
                write!(f, "no answer within {}", crate::ui::progress::secs(*d))
            }
            HttpError::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            HttpError::Other(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Client, HttpError> {
        let proxy = match &opts.proxy {
            Some(p) => Some(
                ureq::Proxy::new(p)
                    .map_err(|e| HttpError::Other(format!("proxy {p:?} is not usable: {e}")))?,
            ),
            None => None,
        };
        let plain = match &opts.proxy {
            Some(p) => crate::http::proxy::PlainProxy::from_url(p)
                .map_err(|e| HttpError::Other(format!("proxy {p:?} is not usable: {e}")))?,
            None => None,
        };
        let config = |proxy: Option<ureq::Proxy>| -> UreqConfig {
            Agent::config_builder()
                .http_status_as_error(false)
                // Redirects are followed here, under one deadline for the whole chain.
                .max_redirects(0)
                .user_agent(opts.user_agent.as_str())
                // Package files are already compressed: ask for the bytes as they are stored.
                .accept_encoding("identity")
                .proxy(proxy)
                .timeout_connect(Some(opts.connect_timeout))
                // The status line and headers must all arrive within the stall timeout of the
                // request being sent, however slowly a server drips them.
                .timeout_recv_response(Some(opts.stall_timeout))
                .timeout_per_read(Some(opts.stall_timeout))
                .timeout_per_write(Some(opts.stall_timeout))
                // A body read returns what the socket holds, up to this much: 1 MiB instead of
                // ureq's 128 KiB makes a fast transfer 8 times fewer reads, writes and hand-overs
                // to the hashing thread (verify::pump), for less CPU and more speed.
                .input_buffer_size(1024 * 1024)
                .tls_config(
                    TlsConfig::builder()
                        .root_certs(RootCerts::PlatformVerifier)
                        .build(),
                )
                .build()
        };
        Ok(Client {
            plain: plain.map(|p| p.agent(config(None))),
            agent: config(proxy).into(),
            connect_timeout: opts.connect_timeout,
            stall_timeout: opts.stall_timeout,
            max_redirects: opts.max_redirects,
        })
    }

    /// One GET (or HEAD, `Get::head`). Any status is a `Reply`; only a missing response is an error. The final
    /// answer's status line and headers must arrive, redirects and all, within the connect
    /// timeout plus the stall timeout (or `response_timeout`) of the start.
    pub fn get(&self, url: &str, get: &Get) -> Result<Reply, HttpError> {
        let allowed = get
            .response_timeout
            .unwrap_or(self.connect_timeout + self.stall_timeout);
        let started = Instant::now();
        let deadline = started + allowed;
        let per_read = get.response_timeout.unwrap_or(self.stall_timeout);
        let mut current = url.to_string();
        let mut hops = 0;
        let response = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout(allowed));
            }
            let plain_http = current
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            let agent = match &self.plain {
                Some(plain) if plain_http => plain,
                _ => &self.agent,
            };
            let mut req = if get.head {
                agent.head(&current)
            } else {
                agent.get(&current)
            };
            if get.from > 0 {
                req = req.header("Range", format!("bytes={}-", get.from));
            }
            if get.only_if_cached {
                req = req.header("Cache-Control", "only-if-cached");
            }
            if let Some(since) = get.if_modified_since {
                req = req.header("If-Modified-Since", crate::http::date::format(since));
            }
            let req = req
                .config()
                .timeout_connect(Some(self.connect_timeout.min(left)))
                .timeout_recv_response(Some(left))
                .timeout_per_read(Some(per_read))
                .build();
            // A timeout says how long was really waited: a per-read timeout may end the
            // wait for headers before the deadline does.
            let response = req
                .call()
                .map_err(|e| classify(e, self.max_redirects, started.elapsed().min(allowed)))?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(to)) => {
                    hops += 1;
                    if hops > self.max_redirects {
                        return Err(HttpError::TooManyRedirects(self.max_redirects));
                    }
                    current = resolve_location(&current, &to).ok_or_else(|| {
                        HttpError::Other(format!(
                            "redirected to {to:?}, which is not an http(s) URL"
                        ))
                    })?;
                }
                _ => break response,
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers();
        let content_length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let content_range = headers
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range);
        let html = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_html);
        let last_modified = headers
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::http::date::parse);
        let body = SpeedFloor::new(response.into_body().into_reader(), self.stall_timeout);
        Ok(Reply {
            status,
            content_length,
            content_range,
            url: current,
            html,
            last_modified,
            body: Box::new(body),
        })
    }
}

/// Where a `Location` header sends a request for `base`: absolute, scheme-relative,
/// host-relative or path-relative; `None` for anything but http(s).
fn resolve_location(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location.to_string());
    }
    if location.contains("://") || location.is_empty() {
        return None;
    }
    let (scheme, rest) = base.split_once("://")?;
    if let Some(net) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{net}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = rest[authority.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// A body that must keep moving: fewer than one byte a second over a whole stall timeout
/// ends it as a stall, like pacman's own downloader (curl's low-speed limit). A source that
/// drips a byte now and then is as useless as a silent one, and the per-read timeout alone
/// would wait on it forever.
pub struct SpeedFloor<R> {
    inner: R,
    window: Duration,
    min_bytes: u64,
    started: Instant,
    got: u64,
}

impl<R: Read> SpeedFloor<R> {
    pub fn new(inner: R, window: Duration) -> SpeedFloor<R> {
        SpeedFloor {
            inner,
            window,
            min_bytes: window.as_secs().max(1),
            started: Instant::now(),
            got: 0,
        }
    }
}

impl<R: Read> Read for SpeedFloor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.got += n as u64;
        let elapsed = self.started.elapsed();
        if n > 0 && elapsed >= self.window {
            // At least one byte for every second that has passed, and the window's worth.
            if self.got < self.min_bytes || (self.got as f64) < elapsed.as_secs_f64() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} bytes in {}: slower than 1 byte/s",
                        self.got,
                        crate::ui::progress::secs(self.started.elapsed())
                    ),
                ));
            }
            self.started = Instant::now();
            self.got = 0;
        }
        Ok(n)
    }
}

/// A body positioned in the file: what a source is sending and where it starts.
pub struct Stream {
    pub body: Box<dyn Read + Send>,
    /// The offset in the file of the first byte of `body`.
    pub start: u64,
    /// The size of the whole file, when the source says it.
    pub total: Option<u64>,
    /// The URL that answered.
    pub url: String,
    /// The source labelled it an HTML page.
    pub html: bool,
    /// When the source says the file last changed (`Last-Modified`).
    pub last_modified: Option<std::time::SystemTime>,
    /// The source answered 304 (not modified): the body is the copy already held.
    pub not_modified: bool,
}

/// Why a reply cannot be used as the rest of the file.
#[derive(Debug)]
pub enum RangeError {
    /// 416: the source has no bytes from the offset asked for.
    NotSatisfiable,
    /// A 206 without a usable `Content-Range`, or one that starts elsewhere.
    Wrong(String),
}

impl Reply {
    /// Turns a 200 or 206 reply to a request `from` an offset into a positioned stream.
    /// Callers handle every other status before this.
    pub fn into_stream(self, from: u64) -> Result<Stream, RangeError> {
        match self.status {
            // A part is only ever taken as the rest of a file when it answers our own Range
            // and says how large the whole file is.
            206 if from == 0 => Err(RangeError::Wrong(
                "206 (a part) to a request for the whole file".to_string(),
            )),
            206 => {
                let cr = self
                    .content_range
                    .ok_or_else(|| RangeError::Wrong("206 without a Content-Range".to_string()))?;
                if cr.total.is_none() {
                    return Err(RangeError::Wrong(
                        "206 without the size of the whole file".to_string(),
                    ));
                }
                if cr.start != from {
                    return Err(RangeError::Wrong(format!(
                        "asked for bytes from {from}, got {}-{}",
                        cr.start, cr.end
                    )));
                }
                Ok(Stream {
                    body: self.body,
                    start: cr.start,
                    total: cr.total,
                    url: self.url,
                    html: self.html,
                    last_modified: self.last_modified,
                    not_modified: false,
                })
            }
            416 => Err(RangeError::NotSatisfiable),
            _ => Ok(Stream {
                body: self.body,
                start: 0,
                total: self.content_length,
                url: self.url,
                html: self.html,
                last_modified: self.last_modified,
                not_modified: false,
            }),
        }
    }
}

fn classify(e: ureq::Error, max_redirects: u32, waited: Duration) -> HttpError {
    use ureq::Error as E;
    match e {
        E::Timeout(ureq::Timeout::Connect) | E::Timeout(ureq::Timeout::Resolve) => {
            HttpError::Connect("timed out".into())
        }
        E::Timeout(_) => HttpError::Timeout(waited),
        E::HostNotFound => HttpError::Connect("host not found".into()),
        E::ConnectionFailed => HttpError::Connect("connection failed".into()),
        E::Tls(why) => HttpError::Connect(format!("TLS: {why}")),
        E::Rustls(why) => HttpError::Connect(format!("TLS: {why}")),
        // A failed handshake (a certificate refused, a server that speaks no TLS) comes as
        // an I/O error around rustls's: no usable connection, like a refused one.
        E::Io(io) if is_tls_failure(&io) => HttpError::Connect(format!("TLS: {io}")),
        E::TooManyRedirects => HttpError::TooManyRedirects(max_redirects),
        E::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => HttpError::Connect(io.to_string()),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpError::Timeout(waited),
            _ => HttpError::Other(io.to_string()),
        },
        other => HttpError::Other(other.to_string()),
    }
}

/// Whether an I/O error is rustls's (a TLS handshake that failed).
fn is_tls_failure(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// Whether a body read failed because the source went silent.
pub fn is_stall(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return true;
    }
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| match u {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => {
                matches!(
                    io.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                )
            }
            _ => false,
        })
}

/// A header value taken from the environment, made safe to send: control characters (a
/// CR/LF would end the header) become spaces, runs of spaces one; `None` when nothing is
/// left.
pub fn header_value(raw: &str) -> Option<String> {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!clean.is_empty() && ureq::http::HeaderValue::from_str(&clean).is_ok()).then_some(clean)
}

/// Whether a `Content-Type` value names HTML: no package, database or signature is one, but
/// captive portals and error pages are.
pub fn is_html(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}

/// Reads `bytes START-END/TOTAL` (TOTAL may be `*`).
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (end >= start).then_some(ContentRange { start, end, total })
}

/// The proxy curl would use for `url`: `http_proxy` for http (lower case only, as curl),
/// `https_proxy`/`HTTPS_PROXY` for https, then `all_proxy`/`ALL_PROXY`; none when the host
/// matches `no_proxy`/`NO_PROXY` or is a loopback address.
pub fn proxy_for(url: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = host_of(rest);
    if is_loopback(&host) {
        return None;
    }
    let no_proxy = env("no_proxy")
        .or_else(|| env("NO_PROXY"))
        .unwrap_or_default();
    if no_proxy_matches(&no_proxy, &host) {
        return None;
    }
    let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let specific = match scheme.to_ascii_lowercase().as_str() {
        "http" => nonempty("http_proxy"),
        "https" => nonempty("https_proxy").or_else(|| nonempty("HTTPS_PROXY")),
        _ => None,
    };
    specific
        .or_else(|| nonempty("all_proxy"))
        .or_else(|| nonempty("ALL_PROXY"))
}

/// The host of `authority/path` without user info, port or brackets, lower case.
fn host_of(rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// curl's `no_proxy`: comma-separated hosts or domains (a leading dot optional), `*` for all.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    list.split(',').map(str::trim).any(|pat| {
        if pat.is_empty() {
            return false;
        }
        if pat == "*" {
            return true;
        }
        let pat = pat.trim_start_matches("*.").trim_start_matches('.');
        let pat = pat.to_ascii_lowercase();
        host == pat || host.ends_with(&format!(".{pat}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                start: 100,
                end: 199,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange {
                start: 5,
                end: 9,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn redirect_locations() {
        let base = "http://m.example:8080/core/os/x86_64/a.pkg?x=1";
        assert_eq!(
            resolve_location(base, "https://other/x").as_deref(),
            Some("https://other/x")
        );
        assert_eq!(
            resolve_location(base, "//cdn.example/y").as_deref(),
            Some("http://cdn.example/y")
        );
        assert_eq!(
            resolve_location(base, "/extra/b.pkg").as_deref(),
            Some("http://m.example:8080/extra/b.pkg")
        );
        assert_eq!(
            resolve_location(base, "b.pkg").as_deref(),
            Some("http://m.example:8080/core/os/x86_64/b.pkg")
        );
        assert_eq!(resolve_location(base, "ftp://x/y"), None);
        assert_eq!(resolve_location(base, "file:///etc/passwd"), None);
    }

    #[test]
    fn html_content_types() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("application/octet-stream"));
        assert!(!is_html("application/x-tar"));
        assert!(!is_html(""));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn proxy_per_scheme_like_curl() {
        let vars = [
            ("http_proxy", "http://p:3128"),
            ("HTTPS_PROXY", "http://s:3128"),
        ];
        assert_eq!(
            proxy_for("http://mirror.example/x", env(&vars)).as_deref(),
            Some("http://p:3128")
        );
        assert_eq!(
            proxy_for("https://mirror.example/x", env(&vars)).as_deref(),
            Some("http://s:3128")
        );
        // Upper-case HTTP_PROXY is ignored, as curl does.
        let upper = [("HTTP_PROXY", "http://p:3128")];
        assert_eq!(proxy_for("http://mirror.example/x", env(&upper)), None);
        let all = [("ALL_PROXY", "socks5://a:1080")];
        assert_eq!(
            proxy_for("http://m/x", env(&all)).as_deref(),
            Some("socks5://a:1080")
        );
    }

    #[test]
    fn no_proxy_and_loopback_go_direct() {
        let vars = [
            ("http_proxy", "http://p:3128"),
            ("no_proxy", "localhost, .lan,example.org"),
        ];
        assert_eq!(proxy_for("http://127.0.0.1:8080/ipfs/x", env(&vars)), None);
        assert_eq!(proxy_for("http://[::1]:8080/ipfs/x", env(&vars)), None);
        assert_eq!(proxy_for("http://cache.lan/x", env(&vars)), None);
        assert_eq!(
            proxy_for("http://mirror.example.org:80/x", env(&vars)),
            None
        );
        assert_eq!(proxy_for("http://user@example.org/x", env(&vars)), None);
        assert!(proxy_for("http://notexample.org/x", env(&vars)).is_some());
        let star = [("http_proxy", "http://p:3128"), ("NO_PROXY", "*")];
        assert_eq!(proxy_for("http://m/x", env(&star)), None);
    }
}
