//! Test helpers: a fresh directory per test, the pacxfer binary, and commands whose whole
//! session (argv, cwd, exit status, stdout, stderr) is printed when an assertion fails.
//!
//! Each test's directory and the pacxfer binary the tests run live below /tmp
//! ([`shared_root`]), not below the checkout: other users work in them (pacman 7's download
//! user, `runuser`, the fixtures' `builder`, squid's `proxy`), and they must reach them
//! wherever the checkout lies, /root (0700) included.

use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Where the tests' shared places are made, one per build of pacxfer.
pub const SHARED_PREFIX: &str = "/tmp/pacxfer-tests-";

/// The place below /tmp that holds each test's directory and the pacxfer binary the tests
/// run: `/tmp/pacxfer-tests-<uid>-<key>`, a directory of the user running the tests that
/// every user may enter (0755) and nobody else may write, one per build of pacxfer (keyed by
/// the binary's path, so two checkouts never share one) and reused by later runs. /tmp above
/// it is sticky, as pacxfer's trust rule accepts above a cache place. A name there that is
/// not such a directory (a link, another user's, writable by others) is never used.
pub fn shared_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let uid = rustix::process::geteuid().as_raw();
        let mut key = std::hash::DefaultHasher::new();
        env!("CARGO_BIN_EXE_pacxfer").hash(&mut key);
        let root = PathBuf::from(format!("{SHARED_PREFIX}{uid}-{:016x}", key.finish()));
        match std::fs::DirBuilder::new().mode(0o755).create(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot make {}: {e}", root.display()),
        }
        let meta = std::fs::symlink_metadata(&root)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", root.display()));
        assert!(
            meta.is_dir() && meta.uid() == uid && meta.mode() & 0o022 == 0,
            "{} is not a directory of uid {uid} that only it may write (a {:?} of uid {}, mode \
             {:o}): the tests will not use it; remove it",
            root.display(),
            meta.file_type(),
            meta.uid(),
            meta.mode() & 0o7777
        );
        reachable_dir(&root);
        root
    })
}

/// Makes `dir` (and what is missing above it) a directory every user may enter, whatever the
/// umask.
fn reachable_dir(dir: &Path) {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dir.display()));
}

/// The built pacxfer binary, as the tests run it: `<shared_root>/bin/pacxfer`, put there
/// anew by each test run (a hard link to cargo's, or a copy on another file system), so
/// that every user can run it.
pub fn pacxfer_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = Path::new(env!("CARGO_BIN_EXE_pacxfer"));
        let dir = shared_root().join("bin");
        reachable_dir(&dir);
        let bin = dir.join("pacxfer");
        // Under a name of this process, then renamed over the last run's: a test run beside
        // this one never sees a half-made file.
        let fresh = dir.join(format!(".pacxfer-{}", std::process::id()));
        let _ = std::fs::remove_file(&fresh);
        if std::fs::hard_link(built, &fresh).is_err() {
            std::fs::copy(built, &fresh).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    built.display(),
                    fresh.display()
                )
            });
        }
        std::fs::rename(&fresh, &bin)
            .unwrap_or_else(|e| panic!("cannot rename {}: {e}", fresh.display()));
        // A rename between two links to one file (cargo's binary unchanged since the last
        // run) leaves both names.
        let _ = std::fs::remove_file(&fresh);
        bin
    })
    .clone()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test (mode 0700, in `<shared_root>/dirs`), removed when the
/// test passes.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let base = shared_root().join("dirs");
        reachable_dir(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(base)
            .expect("make test dir");
        TestDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write file");
        p
    }
}

/// One finished command, kept for assertions that print it all when they fail.
pub struct Run {
    pub cmdline: String,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn report(&self) -> String {
        format!(
            "\n--- command: {}\n--- exit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n",
            self.cmdline,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        assert!(
            self.output.status.success(),
            "expected success{}",
            self.report()
        );
        self
    }

    #[track_caller]
    pub fn failure(&self) -> &Run {
        assert!(
            !self.output.status.success(),
            "expected failure{}",
            self.report()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "panic instead of an error{}",
            self.report()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}{}",
            self.report()
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}{}",
            self.report()
        );
        self
    }

    /// The error output is exactly one line.
    #[track_caller]
    pub fn one_error_line(&self) -> &Run {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line{}", self.report());
        assert!(
            lines[0].starts_with("pacxfer: error: "),
            "error line format{}",
            self.report()
        );
        self
    }

    #[track_caller]
    pub fn explain(&self, what: &str) -> String {
        format!("{what}{}", self.report())
    }
}

/// A command as a shell would show it.
fn cmdline(cmd: &Command) -> String {
    format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Runs a command to completion with stdin closed.
pub fn run(cmd: &mut Command) -> Run {
    let cmdline = cmdline(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    Run { cmdline, output }
}

/// A pacxfer command with no configuration from the environment leaking in.
pub fn pacxfer() -> Command {
    let mut cmd = Command::new(pacxfer_bin());
    // Caches go to the build directory, never to the machine's /var/cache/pacxfer, and each
    // test has its own (libtest names each test's thread after the test): what one test's
    // calls leave (a breaker, a kept partial download) is never another test's.
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    cmd.env(
        "PACXFER_CACHE_DIR",
        repo_root().join("target").join("test-cache").join(test),
    );
    for var in [
        "PACXFER_CONFIG",
        "PACXFER_DBPATH",
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "HTTP_USER_AGENT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The SHA-256 of a file, in hex, computed by `sha256sum` (not by pacxfer's code).
pub fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// Runs a command with stdin closed, killing it if it has not ended within `limit`; returns
/// the finished command and how long it took.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> (Run, std::time::Duration) {
    use std::io::Read;
    let cmdline = cmdline(cmd);
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let took = started.elapsed();
    let output = Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    (Run { cmdline, output }, took)
}

/// Prints past the test harness's capture: for figures that belong in every run's output.
pub fn show(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Ends a daemon a test started (by its process, never by name) and waits for it.
pub fn kill_daemon(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// When the test is failing, prints the last `lines` lines of a daemon's log.
pub fn print_log_if_failing(what: &str, log: &Path, lines: usize) {
    if !std::thread::panicking() {
        return;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    eprintln!(
        "--- {what} log ({}), last lines:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// Waits (60 s at most) until the log of a daemon a test started says it is `ready`; its text.
pub fn wait_for_log(
    child: &mut Option<std::process::Child>,
    log: &Path,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ready(&text) {
            return text;
        }
        let exited = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || started.elapsed() > std::time::Duration::from_secs(60) {
            panic!("{what} did not start:\n{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
