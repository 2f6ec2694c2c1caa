//! Plain `http://` requests through an HTTP proxy, sent as curl (and so pacman's own
//! downloader) sends them: `GET http://mirror/path HTTP/1.1` to the proxy (RFC 9112's absolute
//! form), with `Proxy-Authorization` when the proxy URL has a user. `https://` goes through
//! the proxy with `CONNECT`, which ureq does itself.
//!
//! ureq 3 speaks to an HTTP proxy only with `CONNECT`, for `http://` URLs too, and a proxy may
//! refuse to tunnel to port 80 (squid's default `http_access deny CONNECT !SSL_ports`). So an
//! agent for plain HTTP through a proxy is assembled from ureq's own parts: a resolver that
//! gives the proxy's address for every host, its TCP connector, and a transport that rewrites
//! the request line of each request it sends into the absolute form. ureq still builds the
//! request, reads the answer, and applies every timeout and size rule.
//!
//! Not for SOCKS or HTTPS proxies (ureq handles them whole), nor for anything but GET.

use ureq::config::Config as UreqConfig;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};
use ureq::{Agent, Error};

/// An HTTP proxy for plain HTTP: where it is, and the credentials it gets.
#[derive(Debug, Clone)]
pub struct PlainProxy {
    /// `http://host:port/`: what the resolver resolves instead of each target.
    at: Uri,
    /// `Basic ...`, when the proxy URL names a user.
    authorization: Option<String>,
}

impl PlainProxy {
    /// The proxy `url` names, when it is an HTTP proxy (`http://`, or no scheme); `None` for a
    /// SOCKS or HTTPS proxy, which ureq uses for plain HTTP itself.
    pub fn from_url(url: &str) -> Result<Option<PlainProxy>, String> {
        let proxy = ureq::Proxy::new(url).map_err(|e| e.to_string())?;
        if proxy.protocol() != ureq::ProxyProtocol::Http {
            return Ok(None);
        }
        let at: Uri = format!("http://{}:{}/", proxy.host(), proxy.port())
            .parse()
            .map_err(|e: ureq::http::uri::InvalidUri| e.to_string())?;
        let authorization = proxy.username().map(|user| {
            let pair = format!("{user}:{}", proxy.password().unwrap_or(""));
            format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes()))
        });
        Ok(Some(PlainProxy { at, authorization }))
    }

    /// An agent that sends every request to this proxy in the absolute form. `config` must
    /// name no proxy of its own.
    pub fn agent(&self, config: UreqConfig) -> Agent {
        Agent::with_parts(
            config,
            TcpConnector::default().chain(AbsoluteForm {
                authorization: self.authorization.clone(),
            }),
            ToProxy {
                proxy: self.at.clone(),
                inner: DefaultResolver::default(),
            },
        )
    }
}

/// Resolves the proxy's address, whatever host a request names.
#[derive(Debug)]
struct ToProxy {
    proxy: Uri,
    inner: DefaultResolver,
}

impl Resolver for ToProxy {
    fn resolve(
        &self,
        _uri: &Uri,
        config: &UreqConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        self.inner.resolve(&self.proxy, config, timeout)
    }
}

/// Wraps the connection to the proxy in an [`AbsoluteFormTransport`] for the request's origin.
#[derive(Debug)]
struct AbsoluteForm {
    authorization: Option<String>,
}

impl<In: Transport> Connector<In> for AbsoluteForm {
    type Out = AbsoluteFormTransport<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        let Some(inner) = chained else {
            return Ok(None);
        };
        if details.uri.scheme_str() != Some("http") {
            return Err(Error::Io(std::io::Error::other(
                "only plain http:// goes to a proxy in the absolute form",
            )));
        }
        // The origin without user info: credentials for the mirror are never sent to the
        // proxy in the request line.
        let authority = details
            .uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        Ok(Some(AbsoluteFormTransport {
            inner,
            origin: format!("http://{host}"),
            authorization: self.authorization.clone(),
        }))
    }
}

/// A connection to the proxy that sends each request line in the absolute form.
#[derive(Debug)]
struct AbsoluteFormTransport<T> {
    inner: T,
    /// `http://host[:port]` of the requests on this connection (ureq pools connections per
    /// origin).
    origin: String,
    authorization: Option<String>,
}

impl<T: Transport> Transport for AbsoluteFormTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let out = self.inner.buffers().output();
        let Some(rewritten) = absolute_form(
            &out[..amount.min(out.len())],
            &self.origin,
            self.authorization.as_deref(),
        ) else {
            return self.inner.transmit_output(amount, timeout);
        };
        if rewritten.len() > out.len() {
            return Err(Error::Io(std::io::Error::other(
                "request too large for the output buffer once addressed to the proxy",
            )));
        }
        out[..rewritten.len()].copy_from_slice(&rewritten);
        self.inner.transmit_output(rewritten.len(), timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// `sent` with its request line in the absolute form (`GET /p HTTP/1.1` becomes
/// `GET http://host/p HTTP/1.1`) and `Proxy-Authorization` after it; `None` when `sent` does
/// not start with an origin-form request line (the rest of a request already sent).
fn absolute_form(sent: &[u8], origin: &str, authorization: Option<&str>) -> Option<Vec<u8>> {
    let end = sent.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&sent[..end]).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !version.starts_with("HTTP/")
    {
        return None;
    }
    let mut out = format!("{method} {origin}{target} {version}\r\n").into_bytes();
    if let Some(auth) = authorization {
        out.extend_from_slice(format!("Proxy-Authorization: {auth}\r\n").as_bytes());
    }
    out.extend_from_slice(&sent[end + 2..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_become_absolute() {
        let sent = b"GET /core/os/x86_64/a.pkg?x=1 HTTP/1.1\r\nHost: m:8080\r\n\r\n";
        assert_eq!(
            absolute_form(sent, "http://m:8080", None).as_deref(),
            Some(
                &b"GET http://m:8080/core/os/x86_64/a.pkg?x=1 HTTP/1.1\r\nHost: m:8080\r\n\r\n"[..]
            )
        );
        assert_eq!(
            absolute_form(b"GET / HTTP/1.1\r\n\r\n", "http://m", Some("Basic dTpw")).as_deref(),
            Some(&b"GET http://m/ HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n"[..])
        );
    }

    #[test]
    fn anything_else_is_left_alone() {
        for sent in [
            &b"Host: m\r\n\r\n"[..],
            b"GET http://m/ HTTP/1.1\r\n\r\n",
            b"CONNECT m:443 HTTP/1.1\r\n\r\n",
            b"GET /no-line-end",
            b"body bytes",
        ] {
            assert_eq!(absolute_form(sent, "http://m", None), None, "{sent:?}");
        }
    }

    #[test]
    fn only_http_proxies_are_taken() {
        let p = PlainProxy::from_url("http://user:p%40ss@proxy.lan:3128")
            .expect("valid")
            .expect("an http proxy");
        assert_eq!(p.at.to_string(), "http://proxy.lan:3128/");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {}", data_encoding::BASE64.encode(b"user:p@ss")).as_str())
        );
        assert!(PlainProxy::from_url("socks5://proxy.lan:1080")
            .expect("valid")
            .is_none());
        assert!(PlainProxy::from_url("proxy.lan:3128")
            .expect("valid")
            .is_some());
    }
}
