//! The tests' IPFS node: the Helia-based gateway in tests/ipfs-node, started on a free
//! loopback port with its blocks in the test's directory, stopped when dropped. Content goes
//! in through its Kubo-compatible `/api/v0/add`; its access log tells what it served.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::repo_root;

/// A running node.
pub struct Node {
    child: Child,
    pub url: String,
    log: PathBuf,
}

/// One line of `/api/v0/add`'s answer.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Added {
    pub name: String,
    pub hash: String,
}

fn node_dir() -> PathBuf {
    repo_root().join("tests").join("ipfs-node")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

impl Node {
    /// Starts a node whose repository is `<dir>/ipfs`.
    pub fn start(dir: &Path) -> Node {
        let node_bin = node_dir().join("node_modules").join(".bin").join("node");
        assert!(
            node_bin.exists(),
            "the test IPFS node is not installed ({} missing): run ./contrib/test.sh, \
             or `npm ci --ignore-scripts` in tests/ipfs-node; PACXFER_SKIP_E2E=1 skips these tests",
            node_bin.display()
        );
        let repo = dir.join("ipfs");
        std::fs::create_dir_all(&repo).expect("mkdir ipfs repo");
        let log = dir.join("ipfs-access.log");
        let stderr = std::fs::File::create(dir.join("ipfs-stderr.log")).expect("stderr log");
        let mut child = Command::new(&node_bin)
            .arg(node_dir().join("server.mjs"))
            .arg("--repo")
            .arg(&repo)
            .args(["--port", "0", "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the IPFS node");
        let stdout = child.stdout.take().expect("node stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the node never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the IPFS node did not start within 60 s");
            }
        };
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| {
                let errors =
                    std::fs::read_to_string(dir.join("ipfs-stderr.log")).unwrap_or_default();
                panic!("unexpected first line from the IPFS node: {line:?}\n{errors}")
            })
            .to_string();
        Node { child, url, log }
    }

    /// `POST /api/v0/add?<params>` with one file per `(name, bytes)`.
    pub fn add_files(&self, files: &[(&str, &[u8])], params: &str) -> Vec<Added> {
        let boundary = "pacxferTestBoundary7c1f";
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut resp = agent()
            .post(&format!("{}/api/v0/add?{params}", self.url))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .expect("POST /api/v0/add");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("add answer");
        assert_eq!(status, 200, "add failed: {text}");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("add line {l:?}: {e}")))
            .collect()
    }

    /// Adds one file; returns its CID.
    pub fn add(&self, name: &str, bytes: &[u8], params: &str) -> String {
        let added = self.add_files(&[(name, bytes)], params);
        added.last().expect("one entry").hash.clone()
    }

    /// Adds files wrapped in one directory; returns the directory's CID.
    pub fn add_dir(&self, files: &[(&str, &[u8])]) -> String {
        let added = self.add_files(files, "cid-version=1&wrap-with-directory=true&pin=true");
        added
            .iter()
            .find(|a| a.name.is_empty())
            .or(added.last())
            .expect("directory entry")
            .hash
            .clone()
    }

    /// Points the local name `key` at `/ipfs/<cid>`.
    pub fn publish(&self, key: &str, cid: &str) {
        let mut resp = agent()
            .post(&format!(
                "{}/api/v0/name/publish?arg=/ipfs/{cid}&key={key}",
                self.url
            ))
            .send_empty()
            .expect("name/publish");
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(resp.status().as_u16(), 200, "publish failed: {text}");
    }

    /// The access log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 3 s: the node writes a line once the response has gone out) until some
    /// log line satisfies `pred`.
    pub fn log_has(&self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            if self.log().lines().any(&pred) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the gateway answered a GET for a path containing `needle` with 200 or 206.
    pub fn served(&self, needle: &str) -> bool {
        self.log_has(|l| {
            let mut f = l.split_whitespace();
            let (method, path, status) = (f.next(), f.next(), f.next());
            method == Some("GET")
                && path.is_some_and(|p| p.contains(needle))
                && matches!(status, Some("200") | Some("206"))
        })
    }

    /// The port, for tests that stop the node and want a dead address.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
