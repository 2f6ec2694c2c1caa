//! The tests' fault-injecting HTTP server: serves one file, with the fault named by the first
//! path segment of each request (`/<fault>/anything...`), so one server plays every broken
//! gateway and every broken mirror at once. It listens on a free port of 127.0.0.1, and on
//! 127.0.0.2 as "another host" for redirects; one thread per connection.
//!
//! A fault that models a server holding another file (wrong bytes, a shorter or longer file)
//! answers consistently, ranges included; a fault that models a broken transfer (a stall, a
//! reset, a lying length) breaks whatever part of the file was asked for.
//!
//! Every request is logged (its path and any `Range`), so a test can tell whether a source
//! was asked at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One way to serve the file badly (or well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The right bytes, ranges honoured.
    Good,
    /// Another file of the same length.
    WrongBytes,
    /// The right file with its last byte flipped.
    FlipLast,
    /// Announces the whole length, sends half of it, closes.
    TruncLying,
    /// Holds only the first half of the file, and says so.
    TruncHonest,
    /// Holds the file and 4 KiB more, and says so.
    Oversize,
    /// Sends the file and 4 KiB more with no length, closing to end the body.
    OversizeUnannounced,
    /// Sends half of what was asked, then nothing.
    Stall,
    /// Reads the request and never answers.
    Hang,
    /// Sends everything in eight pieces, each gap below the stall timeout.
    Drip,
    /// `200 OK` with an HTML error page.
    Html200,
    /// That status, with a short text body.
    Status(u16),
    /// Sends the headers and 1000 bytes, then resets the connection.
    Reset,
    /// Redirects to itself forever.
    RedirectLoop,
    /// Redirects to another host (127.0.0.2) that serves the right file.
    RedirectOtherHost,
    /// Answers any `Range` with `200` and the whole file.
    RangeIgnored,
    /// Answers with `206` and a `Content-Range` that starts one byte off.
    WrongContentRange,
    /// Nothing listens.
    Down,
    /// Sends the status line, then one harmless header line a second for up to a minute,
    /// never ending the headers.
    HeaderDrip,
    /// The right headers (with `Content-Length`), then one byte every `SLOW_DRIP_GAP`, for up
    /// to a minute.
    SlowDrip,
    /// Answers every request, with or without `Range`, with `206`, `Content-Range: bytes
    /// 0-{half-1}/*` and the first half of the file.
    PartialStar,
    /// Announces the file's length, sends the file and 4 KiB more, closes.
    LongerThanAnnounced,
    /// Announces the file's length in `Content-Length` but sends the body chunked (which, by
    /// HTTP's rules, overrides the length): the file and 4 KiB more.
    ChunkedOverLength,
    /// Redirects to itself forever, each `302` taking `SLOW_REDIRECT` to arrive: every hop
    /// within a stall timeout, the chain far beyond it.
    SlowRedirect,
}

/// How long each hop of `SlowRedirect` takes.
pub const SLOW_REDIRECT: Duration = Duration::from_secs(4);

/// The gap between two pieces of a drip.
pub const DRIP_GAP: Duration = Duration::from_millis(250);
/// How many pieces a drip sends.
pub const DRIP_PIECES: u32 = 8;
/// How long a stalled or hung connection is held open at most (it ends sooner when the client
/// goes away): longer than any test lets a run go on, so that only the client's own timeout
/// can end its wait.
const HOLD: Duration = Duration::from_secs(600);
const JUNK: usize = 4096;
/// The gap between two bytes of a slow drip: below any stall timeout the tests use, and
/// below the speed floor of 1 byte/s.
pub const SLOW_DRIP_GAP: Duration = Duration::from_millis(1500);
/// How long a header drip or a slow drip goes on at most.
const DRIP_FOR: Duration = Duration::from_secs(60);

impl Fault {
    /// Every fault, in the order the matrix prints them.
    pub const ALL: &'static [Fault] = &[
        Fault::Good,
        Fault::WrongBytes,
        Fault::FlipLast,
        Fault::TruncLying,
        Fault::TruncHonest,
        Fault::Oversize,
        Fault::OversizeUnannounced,
        Fault::Stall,
        Fault::Hang,
        Fault::Drip,
        Fault::Html200,
        Fault::Status(404),
        Fault::Status(412),
        Fault::Status(429),
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(504),
        Fault::Reset,
        Fault::RedirectLoop,
        Fault::RedirectOtherHost,
        Fault::RangeIgnored,
        Fault::WrongContentRange,
        Fault::Down,
    ];

    /// Faults for single regression tests, outside the matrix.
    pub const EXTRA: &'static [Fault] = &[
        Fault::HeaderDrip,
        Fault::SlowDrip,
        Fault::PartialStar,
        Fault::LongerThanAnnounced,
        Fault::ChunkedOverLength,
        Fault::SlowRedirect,
        // 304 Not Modified to anything, with a text body (which a 304 may not carry) and no
        // Last-Modified.
        Fault::Status(304),
    ];

    pub fn name(&self) -> String {
        match self {
            Fault::Good => "good".into(),
            Fault::WrongBytes => "wrong-bytes".into(),
            Fault::FlipLast => "flip-last".into(),
            Fault::TruncLying => "trunc-lying".into(),
            Fault::TruncHonest => "trunc-honest".into(),
            Fault::Oversize => "oversize".into(),
            Fault::OversizeUnannounced => "oversize-nolen".into(),
            Fault::Stall => "stall".into(),
            Fault::Hang => "hang".into(),
            Fault::Drip => "drip".into(),
            Fault::Html200 => "html-200".into(),
            Fault::Status(s) => format!("status-{s}"),
            Fault::Reset => "reset".into(),
            Fault::RedirectLoop => "redirect-loop".into(),
            Fault::RedirectOtherHost => "redirect-host".into(),
            Fault::RangeIgnored => "range-ignored".into(),
            Fault::WrongContentRange => "wrong-range".into(),
            Fault::Down => "down".into(),
            Fault::HeaderDrip => "header-drip".into(),
            Fault::SlowDrip => "slow-drip".into(),
            Fault::PartialStar => "partial-star".into(),
            Fault::LongerThanAnnounced => "longer-than-announced".into(),
            Fault::ChunkedOverLength => "chunked-over-length".into(),
            Fault::SlowRedirect => "slow-redirect".into(),
        }
    }

    fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL
            .iter()
            .chain(Fault::EXTRA)
            .copied()
            .find(|f| f.name() == name)
    }

    /// Whether a client that resumes, verifies and follows redirects gets the right file.
    pub fn delivers(&self) -> bool {
        matches!(
            self,
            Fault::Good | Fault::Drip | Fault::RedirectOtherHost | Fault::RangeIgnored
        )
    }

    /// Whether the server consistently holds another file that HTTP cannot tell from the
    /// right one (an HTML page it can): only a checksum, or pacman's signature check, can.
    pub fn serves_another_file(&self) -> bool {
        matches!(
            self,
            Fault::WrongBytes
                | Fault::FlipLast
                | Fault::TruncHonest
                | Fault::Oversize
                | Fault::OversizeUnannounced
        )
    }

    /// The longest this fault can make a client wait, beyond moving bytes, given the
    /// client's stall timeout.
    pub fn wait(&self, stall: Duration) -> Duration {
        match self {
            Fault::Stall | Fault::Hang => stall,
            Fault::Drip => DRIP_GAP * DRIP_PIECES,
            _ => Duration::ZERO,
        }
    }
}

/// A running server; stops accepting when dropped.
pub struct FaultServer {
    pub port: u16,
    dead_port: u16,
    stop: Arc<AtomicBool>,
    other_port: u16,
    log: Arc<Mutex<Vec<Hit>>>,
}

/// One request as the log records it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    /// N of `Range: bytes=N-`, when the request had one.
    pub from: Option<u64>,
}

/// What every connection handler needs.
struct Shared {
    file: Vec<u8>,
    other_port: u16,
    log: Arc<Mutex<Vec<Hit>>>,
}

impl FaultServer {
    /// Serves `file` with every fault.
    pub fn start(file: Vec<u8>) -> FaultServer {
        let main = TcpListener::bind("127.0.0.1:0").expect("bind fault server");
        let other = TcpListener::bind("127.0.0.2:0").expect("bind fault server on 127.0.0.2");
        let port = main.local_addr().expect("addr").port();
        let other_port = other.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            file,
            other_port,
            log: log.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        for listener in [main, other] {
            let (shared, stop) = (shared.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    thread::spawn(move || {
                        let _ = handle(conn, &shared);
                    });
                }
            });
        }
        FaultServer {
            port,
            dead_port: crate::harness::util::dead_port(),
            stop,
            other_port,
            log,
        }
    }

    /// Every request so far, on either address.
    pub fn log(&self) -> Vec<Hit> {
        self.log.lock().expect("fault log lock").clone()
    }

    /// How many requests were served with `fault` (their first path segment names it).
    pub fn hits(&self, fault: Fault) -> usize {
        let name = fault.name();
        self.log()
            .iter()
            .filter(|h| h.path.trim_start_matches('/').split('/').next() == Some(name.as_str()))
            .count()
    }

    /// The log as text, for assertion messages.
    pub fn log_text(&self) -> String {
        self.log()
            .iter()
            .map(|h| format!("GET {} range from {:?}\n", h.path, h.from))
            .collect()
    }

    /// The base URL that serves with `fault`; paths below it are served the same way.
    pub fn base(&self, fault: Fault) -> String {
        match fault {
            Fault::Down => format!("http://127.0.0.1:{}/down", self.dead_port),
            f => format!("http://127.0.0.1:{}/{}", self.port, f.name()),
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for addr in [
            ([127, 0, 0, 1], self.port),
            ([127, 0, 0, 2], self.other_port),
        ] {
            let _ = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200));
        }
    }
}

/// The parts of a request the faults look at.
struct Request {
    path: String,
    /// N of `Range: bytes=N-`.
    from: Option<u64>,
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut from = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                from = v
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|n| n.parse().ok());
            }
        }
    }
    Ok(Request { path, from })
}

fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = read_request(&mut BufReader::new(conn.try_clone()?))?;
    shared.log.lock().expect("fault log lock").push(Hit {
        path: req.path.clone(),
        from: req.from,
    });
    let (name, rest) = req
        .path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((req.path.trim_start_matches('/'), ""));
    let Some(fault) = Fault::from_name(name) else {
        return status(&mut conn, 400, "no such fault");
    };
    let file = &shared.file;
    let len = file.len() as u64;
    match fault {
        Fault::Good | Fault::Drip | Fault::Stall | Fault::TruncLying | Fault::Reset => {
            let Some((head, body)) = ranged(file, req.from) else {
                return unsatisfiable(&mut conn, len);
            };
            conn.write_all(head.as_bytes())?;
            match fault {
                Fault::Drip => drip(&mut conn, body),
                Fault::Stall => {
                    conn.write_all(&body[..body.len() / 2])?;
                    conn.flush()?;
                    hold(&mut conn);
                    Ok(())
                }
                Fault::TruncLying => conn.write_all(&body[..body.len() / 2]),
                Fault::Reset => {
                    conn.write_all(&body[..body.len().min(1000)])?;
                    conn.flush()?;
                    thread::sleep(Duration::from_millis(50));
                    reset(conn);
                    Ok(())
                }
                _ => conn.write_all(body),
            }
        }
        Fault::WrongBytes | Fault::FlipLast | Fault::TruncHonest | Fault::Oversize => {
            let other: Vec<u8> = match fault {
                Fault::WrongBytes => file.iter().map(|b| b ^ 0x5a).collect(),
                Fault::FlipLast => {
                    let mut f = file.clone();
                    if let Some(last) = f.last_mut() {
                        *last ^= 0x01;
                    }
                    f
                }
                Fault::TruncHonest => file[..file.len() / 2].to_vec(),
                _ => [file.as_slice(), &[b'x'; JUNK]].concat(),
            };
            match ranged(&other, req.from) {
                Some((head, body)) => {
                    conn.write_all(head.as_bytes())?;
                    conn.write_all(body)
                }
                None => unsatisfiable(&mut conn, other.len() as u64),
            }
        }
        Fault::OversizeUnannounced => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            )?;
            conn.write_all(file)?;
            conn.write_all(&[b'x'; JUNK])
        }
        Fault::Hang => {
            hold(&mut conn);
            Ok(())
        }
        Fault::Html200 => {
            let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                        <body><h1>Bad Gateway</h1><p>The upstream server is not responding.</p>\
                        </body></html>\n";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(page.as_bytes())
        }
        Fault::Status(code) => status(&mut conn, code, "fault"),
        Fault::RedirectLoop => redirect(&mut conn, &req.path),
        Fault::SlowRedirect => {
            conn.write_all(b"HTTP/1.1 302 Found\r\n")?;
            conn.flush()?;
            thread::sleep(SLOW_REDIRECT);
            conn.write_all(
                format!(
                    "Location: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    req.path
                )
                .as_bytes(),
            )
        }
        Fault::RedirectOtherHost => redirect(
            &mut conn,
            &format!("http://127.0.0.2:{}/good/{rest}", shared.other_port),
        ),
        Fault::RangeIgnored => {
            let (head, body) = ranged(file, None).expect("a whole file is always satisfiable");
            conn.write_all(head.as_bytes())?;
            conn.write_all(body)
        }
        Fault::WrongContentRange => {
            let asked = req.from.unwrap_or(0);
            let start = if asked > 0 { asked - 1 } else { 1 };
            let body = &file[start as usize..];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nConnection: close\r\n\r\n",
                body.len(),
                len - 1
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(body)
        }
        Fault::Down => status(&mut conn, 500, "down is not served"),
        Fault::HeaderDrip => {
            conn.write_all(b"HTTP/1.1 200 OK\r\n")?;
            conn.flush()?;
            let until = Instant::now() + DRIP_FOR;
            let mut i = 0u32;
            while Instant::now() < until {
                thread::sleep(Duration::from_secs(1));
                i += 1;
                // A write error means the client went away.
                conn.write_all(format!("X-Drip-{i}: {i}\r\n").as_bytes())?;
                conn.flush()?;
            }
            Ok(())
        }
        Fault::SlowDrip => {
            let Some((head, body)) = ranged(file, req.from) else {
                return unsatisfiable(&mut conn, len);
            };
            conn.write_all(head.as_bytes())?;
            conn.flush()?;
            let until = Instant::now() + DRIP_FOR;
            for byte in body {
                if Instant::now() >= until {
                    break;
                }
                thread::sleep(SLOW_DRIP_GAP);
                conn.write_all(std::slice::from_ref(byte))?;
                conn.flush()?;
            }
            Ok(())
        }
        Fault::PartialStar => {
            let half = &file[..file.len() / 2];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nContent-Range: bytes 0-{}/*\r\nConnection: close\r\n\r\n",
                half.len(),
                half.len().saturating_sub(1)
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(half)
        }
        Fault::LongerThanAnnounced => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(file)?;
            conn.write_all(&[b'x'; JUNK])
        }
        Fault::ChunkedOverLength => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(head.as_bytes())?;
            for chunk in [file.as_slice(), &[b'x'; JUNK]] {
                if chunk.is_empty() {
                    continue;
                }
                conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                conn.write_all(chunk)?;
                conn.write_all(b"\r\n")?;
            }
            conn.write_all(b"0\r\n\r\n")
        }
    }
}

/// The head and body for `file` from `from` on: 200 for the whole, 206 for a range, `None`
/// when the range starts at or past the end.
fn ranged(file: &[u8], from: Option<u64>) -> Option<(String, &[u8])> {
    let len = file.len() as u64;
    match from {
        None => Some((
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
            ),
            file,
        )),
        Some(n) if n < len => Some((
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nContent-Range: bytes {n}-{}/{len}\r\nConnection: close\r\n\r\n",
                len - n,
                len - 1
            ),
            &file[n as usize..],
        )),
        Some(_) => None,
    }
}

fn unsatisfiable(conn: &mut TcpStream, len: u64) -> std::io::Result<()> {
    conn.write_all(
        format!(
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn status(conn: &mut TcpStream, code: u16, text: &str) -> std::io::Result<()> {
    let extra = if code == 429 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    conn.write_all(
        format!(
            "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    )
}

fn redirect(conn: &mut TcpStream, to: &str) -> std::io::Result<()> {
    conn.write_all(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

fn drip(conn: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let piece = body.len().div_ceil(DRIP_PIECES as usize).max(1);
    for (i, chunk) in body.chunks(piece).enumerate() {
        if i > 0 {
            thread::sleep(DRIP_GAP);
        }
        conn.write_all(chunk)?;
        conn.flush()?;
    }
    Ok(())
}

/// Keeps the connection open and silent until the client goes away (or `HOLD` passes).
fn hold(conn: &mut TcpStream) {
    let until = Instant::now() + HOLD;
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Closes with a TCP reset (`SO_LINGER` of 0) instead of an orderly end.
fn reset(conn: TcpStream) {
    #[repr(C)]
    struct Linger {
        onoff: i32,
        linger: i32,
    }
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        linger: 0,
    };
    // SAFETY: a valid open socket, and a pointer to a live `struct linger` of the size given.
    let rc = unsafe {
        setsockopt(
            conn.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(conn);
}
