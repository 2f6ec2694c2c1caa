//! A client for Kubo's RPC API (`/api/v0/...`): what sharing and publishing need to put files
//! into the user's node. Every call is a POST with its arguments in the query string; answers
//! are one JSON value, or one per line for streaming calls (`add`), bounded in size and time,
//! and parsed a line at a time with the memory each line may take bounded (`crate::ui::answer`);
//! an error's message is shown as one short line.
//! The endpoint is an URL (`http://127.0.0.1:5001`), a multiaddr as Kubo writes it in
//! `$IPFS_PATH/api` (`/ip4/127.0.0.1/tcp/5001`), or a unix socket (`/unix/run/ipfs/api.sock`),
//! which a hook running in its own network namespace can still reach. Kubo's
//! `API.Authorizations` are honoured with the same `basic:USER:PASSWORD` or `bearer:TOKEN`
//! form as `ipfs --api-auth`.
//!
//! It knows nothing of packages: callers say which command, which arguments and which file.
//! [`Rpc::request`] makes any call of another HTTP API with the same transport, limits and
//! authorization (ipfs-cluster's REST API, `publish::cluster`).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};
use ureq::Agent;

/// The largest answer read from one call that is not a file (JSON, lines of JSON).
pub const ANSWER_MAX: u64 = 16 << 20;

/// The longest line of an answer.
pub const LINE_MAX: u64 = 1 << 20;

/// The most lines of an answer that is not a listing.
pub const LINES_MAX: usize = 100_000;

/// The most read of an error answer (its message is shown cut to one short line; the rest
/// is not read).
pub const ERROR_MAX: u64 = 64 << 10;

/// Where the API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `http://host:port`
    Http(String),
    /// A unix socket path.
    Unix(PathBuf),
}

impl Endpoint {
    /// Reads `http://host:port`, `/ip4/A/tcp/P`, `/ip6/A/tcp/P`, `/dns/H/tcp/P` or
    /// `/unix/PATH`.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("/unix/") {
            return Ok(Endpoint::Unix(PathBuf::from(format!("/{rest}"))));
        }
        if t.starts_with("http://") || t.starts_with("https://") {
            return Ok(Endpoint::Http(t.trim_end_matches('/').to_string()));
        }
        let parts: Vec<&str> = t.split('/').collect();
        if let ["", proto, host, "tcp", port] = parts[..] {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{text:?}: {port:?} is not a port"))?;
            return match proto {
                "ip4" | "dns" | "dns4" | "dns6" => {
                    Ok(Endpoint::Http(format!("http://{host}:{port}")))
                }
                "ip6" => Ok(Endpoint::Http(format!("http://[{host}]:{port}"))),
                _ => Err(format!("{text:?}: unknown address kind {proto:?}")),
            };
        }
        Err(format!(
            "{text:?} is not an API address (http://HOST:PORT, /ip4/ADDR/tcp/PORT or /unix/PATH)"
        ))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Http(url) => write!(f, "{}", crate::ui::shown::redact(url)),
            Endpoint::Unix(path) => write!(f, "/unix{}", path.display()),
        }
    }
}

/// Why a call did not give an answer.
#[derive(Debug)]
pub enum RpcError {
    /// No connection: the node is not running, or not there.
    Unreachable { endpoint: String, why: String },
    /// Connected, but no whole answer in time.
    Timeout { endpoint: String, waited: Duration },
    /// The node answered with an error (its `Message`).
    Failed {
        command: String,
        status: u16,
        message: String,
    },
    /// The answer is not what the command gives.
    BadAnswer { command: String, why: String },
    /// A local file to send could not be read.
    File { path: PathBuf, err: io::Error },
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Unreachable { endpoint, why } => write!(
                f,
                "cannot reach the IPFS node's API at {endpoint}: {why} (is the daemon running? see [share] api)"
            ),
            RpcError::Timeout { endpoint, waited } => write!(
                f,
                "the IPFS node's API at {endpoint} did not answer within {}",
                crate::ui::progress::secs(*waited)
            ),
            RpcError::Failed {
                command,
                status,
                message,
            } => write!(f, "the IPFS node refused {command} (HTTP {status}): {message}"),
            RpcError::BadAnswer { command, why } => {
                write!(f, "the IPFS node's answer to {command} is not usable: {why}")
            }
            RpcError::File { path, err } => write!(f, "cannot read {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for RpcError {}

/// A connected-on-demand API client.
pub struct Rpc {
    agent: Agent,
    endpoint: Endpoint,
    /// The URL prefix calls are made to (a fixed loopback host for a unix socket).
    base: String,
    auth: Option<String>,
    timeout: Duration,
    /// When set, no call runs past it, however many are made.
    deadline: Option<Instant>,
    /// The time the latest call was given (milliseconds), for the error that says how long
    /// it waited: by the time a call times out, what is left before `deadline` is nothing.
    last_allowed: std::sync::atomic::AtomicU64,
}

/// The methods [`Rpc::request`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One line of `add`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Added {
    pub name: String,
    pub hash: String,
    #[serde(default)]
    pub size: String,
}

impl Rpc {
    /// A client of `endpoint`; `auth` in `ipfs --api-auth` form; `timeout` bounds each call
    /// (connecting, sending and the whole answer).
    pub fn new(endpoint: &str, auth: Option<&str>, timeout: Duration) -> Result<Rpc, String> {
        let endpoint = Endpoint::parse(endpoint)?;
        let auth = auth.map(authorization).transpose()?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .user_agent(crate::USER_AGENT)
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout))
            .build();
        let (agent, base) = match &endpoint {
            Endpoint::Http(url) => (Agent::new_with_config(config), url.clone()),
            Endpoint::Unix(path) => (
                Agent::with_parts(
                    config,
                    UnixConnector(path.clone()),
                    ureq::unversioned::resolver::DefaultResolver::default(),
                ),
                "http://127.0.0.1".to_string(),
            ),
        };
        Ok(Rpc {
            agent,
            endpoint,
            base,
            auth,
            timeout,
            deadline: None,
            last_allowed: std::sync::atomic::AtomicU64::new(timeout.as_millis() as u64),
        })
    }

    /// The same client, with every call ending by `at` at the latest.
    pub fn until(mut self, at: Instant) -> Rpc {
        self.deadline = Some(at);
        self
    }

    /// How long the latest call was given.
    fn waited(&self) -> Duration {
        Duration::from_millis(self.last_allowed.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The time the next call may take.
    fn allowed(&self) -> Duration {
        match self.deadline {
            Some(at) => self
                .timeout
                .min(at.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1)),
            None => self.timeout,
        }
    }

    /// Where the API is, for messages.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn url(&self, command: &str, args: &[(&str, &str)]) -> String {
        let mut url = format!("{}/api/v0/{command}", self.base);
        for (i, (k, v)) in args.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.extend(percent_encoding::utf8_percent_encode(v, QUERY));
        }
        url
    }

    fn classify(&self, e: ureq::Error) -> RpcError {
        let endpoint = self.endpoint.to_string();
        match e {
            ureq::Error::Timeout(_) => RpcError::Timeout {
                endpoint,
                waited: self.waited(),
            },
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => RpcError::Timeout {
                endpoint,
                waited: self.waited(),
            },
            other => RpcError::Unreachable {
                endpoint,
                why: other.to_string(),
            },
        }
    }

    /// Turns an answer with an error status into [`RpcError::Failed`], its message cut to one
    /// short line; an answer with status 200 is handed back to be read.
    fn check(
        &self,
        command: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, RpcError> {
        let response = response.map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        // Only the head of an error answer is read: a longer one is cut, never refused, so
        // its message (or its first line) is still shown.
        let mut response = response;
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(ERROR_MAX)
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_error(command, e.kind(), e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Kubo's errors: {"Message": "...", "Code": 0, "Type": "error"}.
        #[derive(serde::Deserialize)]
        struct KuboError {
            #[serde(rename = "Message")]
            message: String,
        }
        let message = crate::ui::answer::parse::<KuboError>(text.as_bytes(), 64)
            .map(|e| e.message)
            .unwrap_or(text);
        Err(RpcError::Failed {
            command: command.to_string(),
            status,
            message: crate::ui::answer::one_line(&message),
        })
    }

    /// An answer's status and body, read whole within the time limit and `max` bytes.
    fn answer(
        &self,
        command: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        max: u64,
    ) -> Result<(u16, String), RpcError> {
        let mut response = response.map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_error(command, e.kind(), e.to_string()))?;
        if bytes.len() as u64 > max {
            return Err(RpcError::BadAnswer {
                command: command.to_string(),
                why: format!("longer than {max} bytes"),
            });
        }
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn read_error(&self, command: &str, kind: io::ErrorKind, why: String) -> RpcError {
        match kind {
            io::ErrorKind::TimedOut => RpcError::Timeout {
                endpoint: self.endpoint.to_string(),
                waited: self.waited(),
            },
            _ => RpcError::BadAnswer {
                command: command.to_string(),
                why: crate::ui::answer::one_line(&why),
            },
        }
    }

    /// Reads the JSON lines of a 200 answer, `max` bytes in all, handing each value to `each`:
    /// no line longer than [`LINE_MAX`], none holding more than [`crate::ui::answer::VALUES_MAX`]
    /// values, at most `max_lines` of them.
    fn read_lines(
        &self,
        command: &str,
        mut response: ureq::http::Response<ureq::Body>,
        max: u64,
        max_lines: usize,
        mut each: impl FnMut(serde_json::Value) -> Result<(), RpcError>,
    ) -> Result<(), RpcError> {
        use crate::ui::answer::{AnswerError, Lines, VALUES_MAX};
        let bad = |e: AnswerError| match e {
            AnswerError::Read(kind, why) => self.read_error(command, kind, why),
            other => RpcError::BadAnswer {
                command: command.to_string(),
                why: other.to_string(),
            },
        };
        let mut body = response.body_mut().as_reader().take(max + 1);
        let mut reader = io::BufReader::new(&mut body);
        let lines = Lines {
            max_line: LINE_MAX as usize,
            max_lines,
            skip_long: false,
        };
        // What stopped the reading: the answer's shape, or the caller.
        enum Stop {
            Answer(AnswerError),
            Rpc(RpcError),
        }
        impl From<AnswerError> for Stop {
            fn from(e: AnswerError) -> Stop {
                Stop::Answer(e)
            }
        }
        let read = lines.read(&mut reader, |line| {
            let value = crate::ui::answer::parse(line, VALUES_MAX)?;
            each(value).map_err(Stop::Rpc)
        });
        match read {
            Err(Stop::Answer(e)) => Err(bad(e)),
            Err(Stop::Rpc(e)) => Err(e),
            Ok(_) if reader.into_inner().limit() == 0 => Err(RpcError::BadAnswer {
                command: command.to_string(),
                why: format!("longer than {max} bytes"),
            }),
            Ok(_) => Ok(()),
        }
    }

    /// A request with this client's time limit and authorization.
    fn prepare<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let allowed = self.allowed();
        self.last_allowed.store(
            allowed.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let req = req
            .config()
            .timeout_global(Some(allowed))
            .timeout_connect(Some(allowed))
            .build();
        match &self.auth {
            Some(value) => req.header("Authorization", value.as_str()),
            None => req,
        }
    }

    fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.prepare(self.agent.post(url))
    }

    /// `method` (with no body) to `path_and_query` below the endpoint, for APIs other than
    /// Kubo's: any status is an answer, its body read within the same limits as a call's.
    pub fn request(&self, method: Method, path_and_query: &str) -> Result<(u16, String), RpcError> {
        let url = format!("{}{path_and_query}", self.base);
        let response = match method {
            Method::Get => self.prepare(self.agent.get(&url)).call(),
            Method::Delete => self.prepare(self.agent.delete(&url)).call(),
            Method::Post => self.post(&url).send_empty(),
        };
        let what = format!(
            "{} {}",
            method.as_str(),
            path_and_query.split('?').next().unwrap_or("")
        );
        self.answer(&what, response, ANSWER_MAX)
    }

    /// Runs `command` and hands each JSON line of its answer to `each` as it arrives: for
    /// answers that may be longer than [`ANSWER_MAX`] (a directory of every package), read up
    /// to `max` bytes in all, no line longer than [`LINE_MAX`].
    pub fn each_line(
        &self,
        command: &str,
        args: &[(&str, &str)],
        max: u64,
        each: impl FnMut(serde_json::Value) -> Result<(), RpcError>,
    ) -> Result<(), RpcError> {
        let url = self.url(command, args);
        let response = self.check(command, self.post(&url).send_empty())?;
        self.read_lines(command, response, max, usize::MAX, each)
    }

    /// `cat` of `cid`, streamed into `out`, at most `max` bytes: how many were written.
    pub fn cat_into(&self, cid: &str, out: &mut dyn Write, max: u64) -> Result<u64, RpcError> {
        let url = self.url("cat", &[("arg", cid)]);
        let mut response = self.check("cat", self.post(&url).send_empty())?;
        let mut body = response.body_mut().as_reader().take(max.saturating_add(1));
        let n = io::copy(&mut body, out)
            .map_err(|e| self.read_error("cat", e.kind(), e.to_string()))?;
        if n > max {
            return Err(RpcError::BadAnswer {
                command: "cat".into(),
                why: format!("more than the {max} bytes expected"),
            });
        }
        Ok(n)
    }

    /// Runs `command` and returns the last JSON value of its answer (`null` for none).
    pub fn call(
        &self,
        command: &str,
        args: &[(&str, &str)],
    ) -> Result<serde_json::Value, RpcError> {
        let url = self.url(command, args);
        let response = self.check(command, self.post(&url).send_empty())?;
        self.last_value(command, response)
    }

    /// Sends `body` as the one file of a multipart request to `command`; the last JSON value
    /// of the answer (`null` for none).
    pub fn upload(
        &self,
        command: &str,
        args: &[(&str, &str)],
        name: &str,
        body: impl Read,
    ) -> Result<serde_json::Value, RpcError> {
        let boundary = format!("pacxfer-{:016x}", rand_u64());
        let safe_name: String = name
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            percent_encoding::utf8_percent_encode(&safe_name, QUERY)
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let mut body = io::Cursor::new(head.into_bytes())
            .chain(body)
            .chain(io::Cursor::new(tail.into_bytes()));
        let url = self.url(command, args);
        let response = self
            .post(&url)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(ureq::SendBody::from_reader(&mut body));
        let response = self.check(command, response)?;
        self.last_value(command, response)
    }

    /// The last JSON value of a 200 answer (`null` for none), read as [`Rpc::read_lines`]
    /// reads one that is not a listing.
    fn last_value(
        &self,
        command: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<serde_json::Value, RpcError> {
        let mut last = serde_json::Value::Null;
        self.read_lines(command, response, ANSWER_MAX, LINES_MAX, |v| {
            last = v;
            Ok(())
        })?;
        Ok(last)
    }

    /// Adds the file at `path` under the name `name` with `args` (import settings, pin,
    /// `to-files`...), streaming it; returns the file's line of the answer.
    pub fn add_file(
        &self,
        path: &Path,
        name: &str,
        args: &[(&str, &str)],
    ) -> Result<Added, RpcError> {
        let file = std::fs::File::open(path).map_err(|err| RpcError::File {
            path: path.to_path_buf(),
            err,
        })?;
        self.add_open(file, name, args)
    }

    /// `add` of what `file` reads (an open file, from its current position to its end).
    pub fn add_open(
        &self,
        file: impl Read,
        name: &str,
        args: &[(&str, &str)],
    ) -> Result<Added, RpcError> {
        let last = self.upload("add", args, name, file)?;
        if last.is_null() {
            return Err(RpcError::BadAnswer {
                command: "add".into(),
                why: "no line".into(),
            });
        }
        serde_json::from_value(last).map_err(|e| RpcError::BadAnswer {
            command: "add".into(),
            why: crate::ui::answer::one_line(&e.to_string()),
        })
    }
}

/// Characters escaped in a query value.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The `Authorization` header for `basic:USER:PASSWORD` or `bearer:TOKEN`.
pub fn authorization(spec: &str) -> Result<String, String> {
    use data_encoding::BASE64;
    match spec.split_once(':') {
        Some(("basic", userpass)) if userpass.contains(':') => {
            Ok(format!("Basic {}", BASE64.encode(userpass.as_bytes())))
        }
        Some(("bearer", token)) if !token.is_empty() => Ok(format!("Bearer {token}")),
        _ => Err("the API authorization must be basic:USER:PASSWORD or bearer:TOKEN".into()),
    }
}

/// A little randomness for multipart boundaries (never for anything secret).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Connects every request to one unix socket, whatever the URL says.
#[derive(Debug)]
struct UnixConnector(PathBuf);

impl<In: Transport> Connector<In> for UnixConnector {
    type Out = UnixTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let stream = std::os::unix::net::UnixStream::connect(&self.0)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(UnixTransport { stream, buffers }))
    }
}

/// One connection over a unix socket.
#[derive(Debug)]
struct UnixTransport {
    stream: std::os::unix::net::UnixStream,
    buffers: LazyBuffers,
}

fn timed_out(e: io::Error, timeout: &NextTimeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(timeout.reason),
        _ => ureq::Error::Io(e),
    }
}

impl Transport for UnixTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write;
        let timeout = timeout.for_write();
        self.stream
            .set_write_timeout(timeout.not_zero().map(|d| *d))
            .map_err(ureq::Error::Io)?;
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(|e| timed_out(e, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.stream
            .set_read_timeout(timeout.not_zero().map(|d| *d))
            .map_err(ureq::Error::Io)?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match self.stream.read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(timed_out(e, &timeout)),
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("/ip4/127.0.0.1/tcp/5001"),
            Ok(Endpoint::Http("http://127.0.0.1:5001".into()))
        );
        assert_eq!(
            Endpoint::parse("/ip6/::1/tcp/5001"),
            Ok(Endpoint::Http("http://[::1]:5001".into()))
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:5001/"),
            Ok(Endpoint::Http("http://127.0.0.1:5001".into()))
        );
        assert_eq!(
            Endpoint::parse("/unix/run/ipfs/api.sock"),
            Ok(Endpoint::Unix(PathBuf::from("/run/ipfs/api.sock")))
        );
        assert!(Endpoint::parse("/ip4/1.2.3.4/udp/5").is_err());
        assert!(Endpoint::parse("localhost:5001").is_err());
    }

    #[test]
    fn authorizations() {
        assert_eq!(
            authorization("basic:alice:pw").as_deref(),
            Ok("Basic YWxpY2U6cHc=")
        );
        assert_eq!(authorization("bearer:tok").as_deref(), Ok("Bearer tok"));
        assert!(authorization("basic:nopassword").is_err());
        assert!(authorization("token").is_err());
    }

    /// A call cut short by the client's deadline says how long it was given, not what was
    /// left of the deadline when it ended (nothing).
    #[test]
    fn regression_a_timeout_says_how_long_the_call_was_given() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let rpc = Rpc::new(&endpoint, None, Duration::from_secs(30))
            .expect("client")
            .until(Instant::now() + Duration::from_secs(2));
        let err = rpc.call("id", &[]).expect_err("no answer");
        let _ = held.join();
        match &err {
            RpcError::Timeout { waited, .. } => assert!(
                *waited >= Duration::from_secs(1) && *waited <= Duration::from_secs(2),
                "{err}"
            ),
            other => panic!("not a timeout: {other}"),
        }
    }
}
