//! Test helpers: a fresh directory per test, the pacxfer binary run with the test's own
//! environment and nothing of the machine's ([`pacxfer`]), and commands whose whole session
//! (argv, exit status, stdout, stderr) is printed when an assertion fails.
//!
//! Each test's directory and the pacxfer binary the tests run live below /tmp
//! ([`shared_root`]), not below the checkout: other users work in them (pacman 7's download
//! user, `runuser`, the fixtures' `builder`, squid's `proxy`), and they must reach them
//! wherever the checkout lies, /root (0700) included.

use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

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
/// test ends.
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
    settle_cache_dir(cmd);
    let cmdline = cmdline(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    Run { cmdline, output }
}

/// The only PATH the commands of a test see: the system's directories, in the usual order.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

thread_local! {
    /// This test's own directory (libtest runs each test on a thread of its own).
    static OWN: std::cell::OnceCell<TestDir> = const { std::cell::OnceCell::new() };
}

/// This test's own directory, made on first use and removed when the test ends: the HOME of
/// every pacxfer it runs, the configuration a pacxfer called without `--config` reads
/// (`pacxfer.conf`: its own `cache/`, `db/` and `pacman.conf`, a gateway and a node API
/// where nothing listens), and the cache of a pacxfer whose configuration names none.
pub fn own_dir() -> PathBuf {
    OWN.with(|own| {
        own.get_or_init(|| {
            let name = std::thread::current()
                .name()
                .unwrap_or("thread")
                .rsplit("::")
                .next()
                .unwrap_or("thread")
                .to_string();
            let dir = TestDir::new(&format!("own-{name}"));
            std::fs::create_dir_all(dir.join("home")).expect("mkdir home");
            std::fs::create_dir_all(dir.join("db/sync")).expect("mkdir db");
            let pacman_conf = dir.write(
                "pacman.conf",
                format!("[options]\nDBPath = {}/\n", dir.join("db").display()),
            );
            let nowhere = format!("http://127.0.0.1:{}", dead_port());
            dir.write(
                "pacxfer.conf",
                format!(
                    "dbpath = {:?}\npacman_conf = {:?}\ncache_dir = {:?}\n\n[gateway]\nurl = \
                     {nowhere:?}\n\n[share]\napi = {nowhere:?}\n",
                    dir.join("db").display().to_string(),
                    pacman_conf.display().to_string(),
                    dir.join("cache").display().to_string(),
                ),
            );
            dir
        })
        .path()
        .to_path_buf()
    })
}

/// Gives `cmd` this test's environment and nothing of the machine's: PATH ([`PATH`]), HOME
/// in [`own_dir`], the C locale, and `PACXFER_CONFIG` naming the test's own configuration
/// (so a pacxfer called without `--config` never reads /etc/pacxfer.conf). No proxy, no
/// `PACXFER_*` of the caller, no `XDG_*`, no `HTTP_USER_AGENT`: a test that wants one sets
/// it on the command itself. For pacxfer and for whatever runs it (pacman, runuser, ...).
pub fn test_env(cmd: &mut Command) -> &mut Command {
    let own = own_dir();
    cmd.env_clear()
        .env("PATH", PATH)
        .env("HOME", own.join("home"))
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .env("PACXFER_CONFIG", own.join("pacxfer.conf"))
}

/// The pacxfer binary with this test's environment ([`test_env`]): every test runs pacxfer
/// through this or [`pacxfer_via`], and [`run`], [`run_within`] or [`spawn`].
///
/// What a test's configuration says is never overridden: a `cache_dir` it names (`""` for
/// none) is the cache pacxfer uses. A configuration that names none would send pacxfer to
/// the machine's own places (`/var/cache/pacxfer`, root's `~/.cache`), so when those run
/// it, such a call gets `PACXFER_CACHE_DIR` = `<own_dir>/cache`; a test that sets
/// `PACXFER_CACHE_DIR`, passes `--cache-dir`, or asks for pacxfer's own default places with
/// [`default_places`] decides itself.
pub fn pacxfer() -> Command {
    let mut cmd = Command::new(pacxfer_bin());
    test_env(&mut cmd);
    cmd
}

/// pacxfer run by another program (`runuser -u USER --`, `prlimit ... --`, `sh -c ...`):
/// `wrapper` then the binary, with this test's environment given to the wrapper.
pub fn pacxfer_via<S: AsRef<OsStr>>(wrapper: &[S]) -> Command {
    let (program, args) = wrapper.split_first().expect("a wrapper program");
    let mut cmd = Command::new(program);
    cmd.args(args).arg(pacxfer_bin());
    test_env(&mut cmd);
    cmd
}

/// A mount in the private mount namespace of [`pacxfer_with_mounts`].
pub enum Mount<'a> {
    /// `source` bind-mounted on `target`.
    Bind(&'a Path, &'a Path),
    /// An empty tmpfs (root's, mode 0755) on `target`: what was there is out of sight.
    Empty(&'a Path),
}

/// pacxfer in a private mount namespace (root only) in which `mounts` are made first, in
/// order: machine places a test must neither read nor write (`/var/cache`, root's home)
/// replaced by the test's own, or programs hidden (an empty `/usr/bin`, given last). Nothing
/// is mounted outside it; it ends with the call.
pub fn pacxfer_with_mounts(mounts: &[Mount<'_>]) -> Command {
    assert_eq!(
        rustix::process::geteuid().as_raw(),
        0,
        "a private mount namespace needs root"
    );
    // The command's own PATH is the one pacxfer gets; the mounts are made with the system's.
    const SCRIPT: &str = r#"set -e
given=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
while [ "$1" != -- ]; do
    if [ "$1" = empty ]; then
        mount -t tmpfs -o mode=0755 tmpfs "$2"
        shift 2
    else
        mount --bind "$2" "$3"
        shift 3
    fi
done
shift
export PATH="$given"
exec "$@"
"#;
    let mut wrapper: Vec<std::ffi::OsString> = [
        "/usr/bin/unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        SCRIPT,
        "sh",
    ]
    .iter()
    .map(Into::into)
    .collect();
    for m in mounts {
        match m {
            Mount::Bind(source, target) => {
                wrapper.extend(["bind".into(), source.into(), target.into()]);
            }
            Mount::Empty(target) => wrapper.extend(["empty".into(), target.into()]),
        }
    }
    wrapper.push("--".into());
    pacxfer_via(&wrapper)
}

/// Marks a pacxfer command whose configuration names no `cache_dir` as one that must use
/// pacxfer's default places (`/var/cache/pacxfer`, root's `~/.cache`): only in a private
/// mount namespace where they are the test's own ([`pacxfer_with_mounts`]).
pub fn default_places(cmd: &mut Command) -> &mut Command {
    cmd.env(DEFAULT_PLACES, "1")
}

const DEFAULT_PLACES: &str = "PACXFER_TESTS_DEFAULT_PLACES";

/// For a command that runs pacxfer (itself, or through a wrapper) whose configuration names
/// no `cache_dir`, sets `PACXFER_CACHE_DIR` to the test's own (see [`pacxfer`]), unless the
/// test chose the cache itself.
fn settle_cache_dir(cmd: &mut Command) {
    if cmd
        .get_envs()
        .any(|(k, v)| k == OsStr::new(DEFAULT_PLACES) && v.is_some())
    {
        cmd.env_remove(DEFAULT_PLACES);
        return;
    }
    let bin = pacxfer_bin();
    let argv: Vec<&OsStr> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .collect();
    let Some(at) = argv.iter().position(|a| Path::new(a) == bin) else {
        return;
    };
    let args = &argv[at + 1..];
    let chosen_by_test = cmd
        .get_envs()
        .any(|(k, _)| k == OsStr::new("PACXFER_CACHE_DIR"))
        || args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == "--cache-dir" || a.starts_with("--cache-dir=")
        });
    if chosen_by_test {
        return;
    }
    let from_args = args.iter().enumerate().find_map(|(i, a)| {
        let text = a.to_string_lossy();
        if text == "--config" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            text.strip_prefix("--config=").map(PathBuf::from)
        }
    });
    let config = from_args.or_else(|| {
        cmd.get_envs()
            .find(|(k, _)| *k == OsStr::new("PACXFER_CONFIG"))
            .and_then(|(_, v)| v.map(PathBuf::from))
    });
    // pacxfer refuses a configuration it cannot read or parse before it looks at a cache.
    let names_cache = config
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|text| text.parse::<toml::Table>().ok())
        .map(|table| table.contains_key("cache_dir"));
    if names_cache == Some(false) {
        cmd.env("PACXFER_CACHE_DIR", own_dir().join("cache"));
    }
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

/// Gives a daemon or tool a test starts (Kubo, ipfs-cluster, makepkg, unshare) a clean
/// environment: [`PATH`], `HOME` = `home`, the C locale, and nothing else of the machine's.
pub fn daemon_env<'c>(cmd: &'c mut Command, home: &Path) -> &'c mut Command {
    cmd.env_clear()
        .env("PATH", PATH)
        .env("HOME", home)
        .env("LANG", "C")
        .env("LC_ALL", "C")
}

/// A command started with stdin closed whose output is collected while it runs.
pub struct Running {
    cmdline: String,
    child: std::process::Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Starts a command with stdin closed, its stdout and stderr collected as they come.
pub fn spawn(cmd: &mut Command) -> Running {
    use std::io::Read;
    settle_cache_dir(cmd);
    let cmdline = cmdline(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    let collect = |pipe: Box<dyn Read + Send>, into: Arc<Mutex<Vec<u8>>>| {
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => into.lock().expect("output").extend_from_slice(&buf[..n]),
                }
            }
        })
    };
    let (stdout, stderr) = (Arc::default(), Arc::default());
    let readers = vec![
        collect(
            Box::new(child.stdout.take().expect("stdout")),
            Arc::clone(&stdout),
        ),
        collect(
            Box::new(child.stderr.take().expect("stderr")),
            Arc::clone(&stderr),
        ),
    ];
    Running {
        cmdline,
        child,
        stdout,
        stderr,
        readers,
    }
}

impl Running {
    /// What it wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned()
    }

    /// Waits until its stderr holds `needle`; fails (after killing it) when it ends first
    /// or has not said it within `limit`.
    #[track_caller]
    pub fn wait_for_stderr(&mut self, needle: &str, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while !self.stderr_so_far().contains(needle) {
            let ended = self.child.try_wait().expect("wait for child").is_some();
            if ended || started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} never said {needle:?} ({}):\n{}",
                    self.cmdline,
                    if ended {
                        "it ended".to_string()
                    } else {
                        format!("{}s", limit.as_secs())
                    },
                    self.stderr_so_far()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits for it to end: killed when it has not ended within `limit` (then its status says
    /// it was killed by a signal, and [`Run::code`] is `None`).
    pub fn finish_within(mut self, limit: std::time::Duration) -> (Run, std::time::Duration) {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for child") {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                break self.child.wait().expect("wait for killed child");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let took = started.elapsed();
        for r in self.readers.drain(..) {
            r.join().expect("output reader");
        }
        let take = |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().expect("output"));
        let output = Output {
            status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        };
        (
            Run {
                cmdline: self.cmdline,
                output,
            },
            took,
        )
    }

    /// Waits for it to end (10 minutes at most, then it is killed).
    pub fn finish(self) -> Run {
        self.finish_within(std::time::Duration::from_secs(600)).0
    }
}

/// Runs a command with stdin closed, killing it if it has not ended within `limit`; returns
/// the finished command and how long it took.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> (Run, std::time::Duration) {
    spawn(cmd).finish_within(limit)
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
