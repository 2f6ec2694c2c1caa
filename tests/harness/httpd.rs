//! The tests' HTTP mirror: a static file server on a free loopback port that serves a
//! directory (GET, HEAD, `Range: bytes=N-` and `N-M`), one thread per connection, and keeps an
//! access log that tests read to learn which files the mirror served.
//!
//! Like nginx and Apache, it sends each file's mtime as `Last-Modified` and answers
//! `If-Modified-Since` with 304 and no body when the file's mtime (in whole seconds) is not
//! later than the date asked; `ignore_conditions` makes it a server that ignores the header.
//! HTTP dates are written and read by GNU `date`, not by pacxfer's code.
//!
//! [`Mirror::hold`] stops answers part-way through their body until the test lets them go: a
//! test that needs a download in progress waits for it to be there, never for a time.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the log records it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub user_agent: Option<String>,
    /// The request named an absolute URL: it came through this server as a proxy.
    pub proxied: bool,
    /// The `If-Modified-Since` header, as sent.
    pub if_modified_since: Option<String>,
    pub status: u16,
    pub bytes: u64,
}

/// A running server; stops when dropped.
pub struct Mirror {
    pub port: u16,
    log: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    /// Paths ending so are answered only after that long.
    slow: Arc<Mutex<Vec<(String, Duration)>>>,
    /// Answer every request in full, whatever `If-Modified-Since` says.
    ignore_conditions: Arc<AtomicBool>,
    /// Answers held part-way through their body.
    holds: Arc<Mutex<Vec<Hold>>>,
}

/// Answers for paths ending in a suffix, held after a number of body bytes until released.
#[derive(Clone)]
pub struct Hold {
    suffix: String,
    after: u64,
    state: Arc<(Mutex<HoldState>, Condvar)>,
}

#[derive(Default)]
struct HoldState {
    /// Answers that sent their first bytes and wait.
    arrived: usize,
    released: bool,
}

impl Hold {
    /// Lets every held answer, and every later one, go on.
    pub fn release(&self) {
        let (lock, cvar) = &*self.state;
        lock.lock().expect("hold lock").released = true;
        cvar.notify_all();
    }

    /// Waits until `n` answers have sent their first bytes and are held; a clear failure
    /// when they are not there within a minute.
    #[track_caller]
    pub fn wait_held(&self, n: usize) {
        let (lock, cvar) = &*self.state;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut state = lock.lock().expect("hold lock");
        while state.arrived < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} requests for *{} reached the mirror within 60 s",
                state.arrived,
                self.suffix
            );
            state = cvar.wait_timeout(state, left).expect("hold lock").0;
        }
    }

    /// Called by an answer once its first `after` bytes are out: waits for the release.
    fn hold_here(&self) {
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock().expect("hold lock");
        state.arrived += 1;
        cvar.notify_all();
        while !state.released {
            state = cvar.wait(state).expect("hold lock");
        }
    }
}

impl Mirror {
    /// Serves `root` on 127.0.0.1.
    pub fn serve(root: &Path) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mirror");
        Mirror::serve_on(listener, root)
    }

    /// Serves `root` on `listener` (one made in another network namespace, for instance).
    pub fn serve_on(listener: TcpListener, root: &Path) -> Mirror {
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let slow: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
        let ignore_conditions = Arc::new(AtomicBool::new(false));
        let holds: Arc<Mutex<Vec<Hold>>> = Arc::default();
        let (root2, log2, stop2, slow2, ignore2, holds2) = (
            root.to_path_buf(),
            log.clone(),
            stop.clone(),
            slow.clone(),
            ignore_conditions.clone(),
            holds.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, log, slow) = (root2.clone(), log2.clone(), slow2.clone());
                let honour = !ignore2.load(Ordering::SeqCst);
                let holds = holds2.lock().expect("holds lock").clone();
                thread::spawn(move || {
                    let _ = handle(conn, &root, &log, &slow, honour, &holds);
                });
            }
        });
        Mirror {
            port,
            log,
            stop,
            slow,
            ignore_conditions,
            holds,
        }
    }

    /// From now on, answers for paths ending in `suffix` send their headers and `after` bytes
    /// of body, then wait until the returned [`Hold`] is released (or the mirror dropped).
    pub fn hold(&self, suffix: &str, after: u64) -> Hold {
        let hold = Hold {
            suffix: suffix.to_string(),
            after,
            state: Arc::default(),
        };
        self.holds.lock().expect("holds lock").push(hold.clone());
        hold
    }

    /// From now on, answer in full whatever `If-Modified-Since` says (as some servers do).
    pub fn ignore_conditions(&self) {
        self.ignore_conditions.store(true, Ordering::SeqCst);
    }

    /// Answers requests for paths ending in `suffix` only after `delay`.
    pub fn slow_down(&self, suffix: &str, delay: Duration) {
        self.slow
            .lock()
            .expect("slow lock")
            .push((suffix.to_string(), delay));
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().expect("log lock").clone()
    }

    /// Requests whose path ends with `suffix`.
    pub fn hits_for(&self, suffix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.ends_with(suffix))
            .collect()
    }

    /// The log as text, for assertion messages.
    pub fn log_text(&self) -> String {
        self.hits()
            .iter()
            .map(|h| {
                format!(
                    "{} {} range={:?} ims={:?} -> {} ({} bytes)\n",
                    h.method, h.path, h.range, h.if_modified_since, h.status, h.bytes
                )
            })
            .collect()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for hold in self.holds.lock().expect("holds lock").iter() {
            hold.release();
        }
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_millis(200),
        );
    }
}

/// The request line and the headers the log keeps.
struct Head {
    method: String,
    target: String,
    range: Option<String>,
    user_agent: Option<String>,
    if_modified_since: Option<String>,
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Head> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let mut head = Head {
        method: parts.next().unwrap_or("").to_string(),
        target: parts.next().unwrap_or("/").to_string(),
        range: None,
        user_agent: None,
        if_modified_since: None,
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => head.range = Some(v.trim().to_string()),
                "user-agent" => head.user_agent = Some(v.trim().to_string()),
                "if-modified-since" => head.if_modified_since = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Ok(head)
}

fn handle(
    conn: TcpStream,
    root: &Path,
    log: &Mutex<Vec<Hit>>,
    slow: &Mutex<Vec<(String, Duration)>>,
    honour_conditions: bool,
    holds: &[Hold],
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = read_head(&mut reader)?;
    // As an HTTP proxy: a CONNECT tunnel, whatever its host, leads to this same server.
    let mut proxied = false;
    if head.method == "CONNECT" {
        let mut out = conn.try_clone()?;
        out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        head = read_head(&mut reader)?;
        proxied = true;
    }
    let Head {
        method,
        target,
        range,
        user_agent,
        if_modified_since,
    } = head;
    // A proxy request may also name the whole URL: serve its path from the same tree.
    let (proxied, target) = match target.strip_prefix("http://") {
        Some(rest) => (
            true,
            rest.find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string()),
        ),
        None => (proxied, target),
    };
    let path = target.split('?').next().unwrap_or("/").to_string();
    let delay = slow
        .lock()
        .expect("slow lock")
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, d)| *d);
    if let Some(d) = delay {
        thread::sleep(d);
    }
    let mut out = conn;
    // The hit is logged before the body goes out, so a client that has its bytes always
    // finds its request in the log.
    let record = |status: u16, bytes: u64| {
        log.lock().expect("log lock").push(Hit {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            user_agent: user_agent.clone(),
            proxied,
            if_modified_since: if_modified_since.clone(),
            status,
            bytes,
        });
    };
    let since = if_modified_since
        .as_deref()
        .filter(|_| honour_conditions)
        .and_then(unix_time);
    let asked = Asked {
        method: &method,
        path: &path,
        range: range.as_deref(),
        if_modified_since: since,
        hold: holds.iter().find(|h| path.ends_with(h.suffix.as_str())),
    };
    respond(&mut out, root, &asked, record)?;
    Ok(())
}

/// What a request asks, as `respond` needs it.
struct Asked<'a> {
    method: &'a str,
    path: &'a str,
    range: Option<&'a str>,
    /// `If-Modified-Since` in seconds since the epoch, when honoured.
    if_modified_since: Option<i64>,
    /// The hold its answer waits on, if any.
    hold: Option<&'a Hold>,
}

fn respond(
    out: &mut TcpStream,
    root: &Path,
    asked: &Asked<'_>,
    record: impl FnOnce(u16, u64),
) -> std::io::Result<()> {
    let Asked {
        method,
        path,
        range,
        if_modified_since,
        hold,
    } = *asked;
    // `/redirect/N/<path>` answers 302 N times before `<path>`; `/redirect/loop/...` forever.
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let (n, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let next = match n {
            "loop" => format!("/redirect/loop/{tail}"),
            "0" => format!("/{tail}"),
            n => match n.parse::<u32>() {
                Ok(n) => format!("/redirect/{}/{tail}", n - 1),
                Err(_) => return simple(out, 400, "bad redirect count", record),
            },
        };
        let head = format!(
            "HTTP/1.1 302 Found\r\nLocation: {next}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        record(302, 0);
        return out.write_all(head.as_bytes());
    }
    // `/stall/N/<path>` sends the headers and N bytes of `<path>`, then nothing for 60 s;
    // `/cut/N/<path>` sends N bytes and closes, after announcing the whole length;
    // `/nolength/<path>` sends the whole file with no `Content-Length`, ignoring `Range`, and
    // closes: its end is the end of the body.
    let mut stop_after = None;
    let (no_length, path) = match path.strip_prefix("/nolength/") {
        Some(rest) => (true, format!("/{rest}")),
        None => (false, path.to_string()),
    };
    let range = range.filter(|_| !no_length);
    let mut path = path;
    for (prefix, stall) in [("/stall/", true), ("/cut/", false)] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (n, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let Ok(n) = n.parse::<u64>() else {
                return simple(out, 400, "bad byte count", record);
            };
            stop_after = Some((n, stall));
            path = format!("/{tail}");
            break;
        }
    }
    let decoded = percent_decode(&path);
    let rel = decoded.trim_start_matches('/');
    if rel.split('/').any(|seg| seg == "..") || (method != "GET" && method != "HEAD") {
        return simple(out, 400, "bad request", record);
    }
    let file_path = root.join(rel);
    let Ok(mut file) = std::fs::File::open(&file_path) else {
        return simple(out, 404, "not found", record);
    };
    let len = file.metadata()?.len();
    if !file.metadata()?.is_file() {
        return simple(out, 404, "not found", record);
    }
    let mtime = {
        use std::os::unix::fs::MetadataExt;
        file.metadata()?.mtime()
    };
    let last_modified = http_date(mtime);
    if if_modified_since.is_some_and(|since| mtime <= since) {
        let head = format!(
            "HTTP/1.1 304 Not Modified\r\nLast-Modified: {last_modified}\r\nConnection: close\r\n\r\n"
        );
        record(304, 0);
        return out.write_all(head.as_bytes());
    }
    let (status, start, end) = match range.and_then(|r| parse_range(r, len)) {
        Some(Ok((s, e))) => (206, s, e),
        Some(Err(())) => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            record(416, 0);
            return out.write_all(head.as_bytes());
        }
        None => (200, 0, len.saturating_sub(1)),
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let length = if no_length {
        String::new()
    } else {
        format!("Content-Length: {count}\r\nAccept-Ranges: bytes\r\n")
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/octet-stream\r\n{length}Last-Modified: {last_modified}\r\nConnection: close\r\n",
        if status == 206 { "Partial Content" } else { "OK" }
    );
    if status == 206 {
        head.push_str(&format!("Content-Range: bytes {start}-{end}/{len}\r\n"));
    }
    head.push_str("\r\n");
    let planned = match (method, stop_after) {
        ("HEAD", _) => 0,
        (_, Some((n, _))) => n.min(count),
        _ => count,
    };
    record(status, planned);
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    let mut body = file.take(planned);
    if let Some(hold) = hold {
        std::io::copy(&mut (&mut body).take(hold.after), out)?;
        out.flush()?;
        hold.hold_here();
    }
    std::io::copy(&mut body, out)?;
    out.flush()?;
    if let Some((_, true)) = stop_after {
        thread::sleep(Duration::from_secs(60));
    }
    Ok(())
}

/// `bytes=N-` or `bytes=N-M`: `None` for a header to ignore, `Err` when unsatisfiable.
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = match b.trim() {
        "" => len.saturating_sub(1),
        e => e.parse::<u64>().ok()?.min(len.saturating_sub(1)),
    };
    if start >= len || end < start {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

fn simple(
    out: &mut TcpStream,
    status: u16,
    text: &str,
    record: impl FnOnce(u16, u64),
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    record(status, text.len() as u64);
    out.write_all(head.as_bytes())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `secs` since the epoch as an HTTP date, by GNU `date`.
fn http_date(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .env("LC_ALL", "C")
        .args([
            "-u",
            "-d",
            &format!("@{secs}"),
            "+%a, %d %b %Y %H:%M:%S GMT",
        ])
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An HTTP date as seconds since the epoch, by GNU `date`; `None` when it cannot read it.
fn unix_time(http_date: &str) -> Option<i64> {
    let out = std::process::Command::new("date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", http_date, "+%s"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
