//! A loopback HTTP server that answers every request with one canned reply: for the faults no
//! real server makes on purpose (a node API port taken by somebody else, answers of 16 MiB of
//! tiny JSON lines, a 15 MiB error message, a cluster of failing peers, a connection accepted
//! and never answered). It records each request line, reads and drops a request's body (so a
//! client is never cut off while sending), answers `reply(request line)` and closes; a reply
//! of `None` holds the connection open, answering nothing, until the client goes away.
//! Never a stand-in for Kubo, ipfs-cluster or a mirror on the happy path.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct Canned {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    pub fn start(reply: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (log, reply) = (requests.clone(), Arc::new(reply));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, reply) = (log.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while head.len() < 64 << 10 && !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_string();
                    log.lock().expect("log").push(line.clone());
                    match reply(&line) {
                        Some(bytes) => {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<u64>().ok())?
                                })
                                .unwrap_or(0);
                            let _ = std::io::copy(
                                &mut (&mut stream).take(length),
                                &mut std::io::sink(),
                            );
                            let _ = stream.write_all(&bytes);
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                        }
                        // Held until the client goes away.
                        None => while matches!(stream.read(&mut byte), Ok(n) if n > 0) {},
                    }
                });
            }
        });
        Canned { url, requests }
    }

    /// Every request line so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("log").clone()
    }
}
