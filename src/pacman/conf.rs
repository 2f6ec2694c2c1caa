//! Questions for `pacman-conf`: DBPath, the repository list and each repository's Server
//! lines, exactly as pacman itself resolves them (Include files, `$repo`, `$arch`).
//!
//! `pacman-conf` runs with a fixed argv, never through a shell, and its answers are taken as
//! data: one value per line. Answers are remembered between calls (see `conf_cache`).

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cache::Places;
use crate::pacman::conf_cache::ConfCache;

/// How long pacman-conf may take: it answers in milliseconds, unless what pacman.conf
/// includes can block it.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of its output read.
const ANSWER_MAX: u64 = 1 << 20;

/// Runs `cmd` to its end, reading at most `ANSWER_MAX` of each stream; kills it after
/// `limit` (an error of kind `TimedOut`).
pub fn run_bounded(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    run_bounded_max(cmd, limit, ANSWER_MAX)
}

/// [`run_bounded`] keeping at most `max` bytes of each stream: the rest is read and dropped
/// (so the program never blocks on a full pipe), and a stdout longer than `max` is an error
/// of kind `InvalidData`.
pub fn run_bounded_max(
    cmd: &mut Command,
    limit: std::time::Duration,
    max: u64,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    let mut child = cmd.spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut over = false;
            if let Some(mut p) = pipe {
                let _ = (&mut p).take(max).read_to_end(&mut buf);
                over = std::io::copy(&mut p, &mut std::io::sink()).is_ok_and(|n| n > 0);
            }
            (buf, over)
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
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "pacman-conf did not answer",
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    };
    let (stdout, over) = stdout.join().unwrap_or_default();
    if over {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("its output was longer than {max} bytes"),
        ));
    }
    Ok(std::process::Output {
        status,
        stdout,
        stderr: stderr.join().unwrap_or_default().0,
    })
}

/// pacman-conf's own default configuration file.
const DEFAULT_CONF: &str = "/etc/pacman.conf";

/// Asks `pacman-conf`, optionally about a given pacman.conf.
pub struct PacmanConf {
    /// `--config` for pacman-conf; pacman's default file when `None`.
    config: Option<PathBuf>,
    places: Places,
    cache: OnceCell<RefCell<ConfCache>>,
    /// pacman-conf already ran out of time once in this process: not asked again.
    timed_out: std::cell::Cell<bool>,
}

/// `pacman-conf` could not answer.
#[derive(Debug)]
pub enum PacmanConfError {
    /// The program could not be started (usually: not installed).
    Spawn(std::io::Error),
    /// It ran and failed.
    Failed { args: String, stderr: String },
    /// It ran and failed on an earlier call, under the same pacman.conf (remembered).
    Refused { args: String, stderr: String },
    /// It did not answer in time (now or earlier in this process).
    TimedOut { args: String },
}

impl fmt::Display for PacmanConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacmanConfError::Spawn(e) => write!(f, "cannot run pacman-conf: {e}"),
            PacmanConfError::Failed { args, stderr } => {
                write!(f, "`pacman-conf {args}` failed")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            PacmanConfError::Refused { args, stderr } => {
                write!(f, "`pacman-conf {args}` failed")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                write!(f, " (remembered until pacman.conf changes)")
            }
            PacmanConfError::TimedOut { args } => write!(
                f,
                "`pacman-conf {args}` gave no answer within {}s (does pacman.conf include a FIFO or a slow file system?)",
                ASK_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for PacmanConfError {}

impl PacmanConf {
    /// Questions about `config` (pacman's default when `None`); answers are remembered in
    /// `places`.
    pub fn new(config: Option<PathBuf>, places: Places) -> PacmanConf {
        PacmanConf {
            config,
            places,
            cache: OnceCell::new(),
            timed_out: std::cell::Cell::new(false),
        }
    }

    fn run(&self, args: &[&str]) -> Result<Vec<String>, PacmanConfError> {
        let cache = self.cache.get_or_init(|| {
            let conf = self.config.as_deref().unwrap_or(Path::new(DEFAULT_CONF));
            RefCell::new(ConfCache::load(&self.places, conf))
        });
        if let Some(lines) = cache.borrow().get(args) {
            if plausible(args, lines) {
                return Ok(lines.clone());
            }
        }
        if let Some(stderr) = cache.borrow().refusal(args) {
            return Err(PacmanConfError::Refused {
                args: args.join(" "),
                stderr: stderr.clone(),
            });
        }
        match self.ask(args) {
            Ok(lines) => {
                cache.borrow_mut().put(args, &lines);
                Ok(lines)
            }
            Err(PacmanConfError::Failed { args: a, stderr }) => {
                cache.borrow_mut().put_refusal(args, &stderr);
                Err(PacmanConfError::Failed { args: a, stderr })
            }
            Err(e) => Err(e),
        }
    }

    fn ask(&self, args: &[&str]) -> Result<Vec<String>, PacmanConfError> {
        if self.timed_out.get() {
            return Err(PacmanConfError::TimedOut {
                args: args.join(" "),
            });
        }
        // pacman's own copy where it is, rather than whatever PATH names first.
        let program = ["/usr/bin/pacman-conf", "/bin/pacman-conf"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("pacman-conf");
        let mut cmd = Command::new(program);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        let out = run_bounded(
            cmd.args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .stdout(Stdio::piped()),
            ASK_TIMEOUT,
        )
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => {
                self.timed_out.set(true);
                PacmanConfError::TimedOut {
                    args: args.join(" "),
                }
            }
            _ => PacmanConfError::Spawn(e),
        })?;
        if !out.status.success() {
            return Err(PacmanConfError::Failed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// pacman's DBPath.
    pub fn dbpath(&self) -> Result<PathBuf, PacmanConfError> {
        let lines = self.run(&["DBPath"])?;
        if !plausible(&["DBPath"], &lines) {
            return Err(PacmanConfError::Failed {
                args: "DBPath".into(),
                stderr: "not one absolute path".into(),
            });
        }
        lines
            .into_iter()
            .next()
            .map(PathBuf::from)
            .ok_or_else(|| PacmanConfError::Failed {
                args: "DBPath".into(),
                stderr: "no value".into(),
            })
    }

    /// pacman's package cache directories (CacheDir), in order.
    pub fn cache_dirs(&self) -> Result<Vec<PathBuf>, PacmanConfError> {
        Ok(self
            .run(&["CacheDir"])?
            .into_iter()
            .map(PathBuf::from)
            .collect())
    }

    /// The repositories in pacman.conf order.
    pub fn repos(&self) -> Result<Vec<String>, PacmanConfError> {
        self.run(&["--repo-list"])
    }

    /// The Server URLs of one repository, in order.
    pub fn servers(&self, repo: &str) -> Result<Vec<String>, PacmanConfError> {
        self.run(&["--repo", repo, "Server"])
    }

    /// The CacheServer URLs of one repository, in order (pacman 6.1 and later; older
    /// pacman-conf refuses the question).
    pub fn cache_servers(&self, repo: &str) -> Result<Vec<String>, PacmanConfError> {
        self.run(&["--repo", repo, "CacheServer"])
    }

    /// Any other question (`XferCommand`, `DownloadUser`, ...): the lines of its answer,
    /// remembered like the others.
    pub fn lines(&self, args: &[&str]) -> Result<Vec<String>, PacmanConfError> {
        self.run(args)
    }

    /// The SigLevel that applies to `repo`: its own, or the global one when it has none.
    pub fn sig_level(&self, repo: &str) -> Vec<String> {
        let own = self.run(&["--repo", repo, "SigLevel"]).unwrap_or_default();
        if own.is_empty() {
            self.run(&["SigLevel"]).unwrap_or_default()
        } else {
            own
        }
    }

    /// Whether pacman checks `repo`'s database against a signature when there is one: its
    /// SigLevel does not say `Never` or `DatabaseNever`.
    pub fn checks_database_signatures(&self, repo: &str) -> bool {
        !self
            .sig_level(repo)
            .iter()
            .any(|l| l == "Never" || l == "DatabaseNever")
    }

    /// Whether pacman checks the packages of `repo` against signatures: its SigLevel does not
    /// say `Never` or `PackageNever`.
    pub fn checks_package_signatures(&self, repo: &str) -> bool {
        !self
            .sig_level(repo)
            .iter()
            .any(|l| l == "Never" || l == "PackageNever")
    }
}

/// Whether an answer is one pacman-conf could give: DBPath one absolute path, repository
/// names plain names, Server lines URLs; nothing with control characters. A remembered
/// answer that is not is asked again.
fn plausible(args: &[&str], lines: &[String]) -> bool {
    if lines.iter().any(|l| l.chars().any(char::is_control)) {
        return false;
    }
    match args {
        ["DBPath"] => lines.len() == 1 && Path::new(&lines[0]).is_absolute(),
        ["CacheDir"] => lines.iter().all(|l| Path::new(l).is_absolute()),
        ["--repo-list"] => lines
            .iter()
            .all(|r| crate::pacman::names::is_plain_filename(r)),
        ["--repo", _, "Server" | "CacheServer"] => lines.iter().all(|url| {
            url.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                    && !rest.is_empty()
                    && !rest.contains(char::is_whitespace)
            })
        }),
        _ => true,
    }
}

/// Where the sync databases are: the first of the command line, the config file,
/// `pacman-conf DBPath`, and `/var/lib/pacman/`.
pub fn resolve_dbpath(
    given: Option<&Path>,
    configured: Option<&Path>,
    pacman_conf: &PacmanConf,
) -> PathBuf {
    if let Some(p) = given.or(configured) {
        return p.to_path_buf();
    }
    pacman_conf
        .dbpath()
        .unwrap_or_else(|_| PathBuf::from("/var/lib/pacman/"))
}
